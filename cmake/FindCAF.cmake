# FindCAF
# -------
# Finds the C++ Actor Framework (CAF) 0.17, which ships no CMake package of its
# own on Debian.
#
# Components: core (always searched), io, openssl.
#
# Imported targets:
#   CAF::core     libcaf_core (needs Threads::Threads)
#   CAF::io       libcaf_io (depends on CAF::core)
#   CAF::openssl  libcaf_openssl (depends on CAF::io)
#
# Result variables:
#   CAF_FOUND, CAF_VERSION, CAF_INCLUDE_DIR, CAF_<comp>_LIBRARY,
#   CAF_<comp>_FOUND
#
# Usage: find_package(CAF 0.17 REQUIRED COMPONENTS core io)

include(FindPackageHandleStandardArgs)

if(NOT TARGET Threads::Threads)
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  find_package(Threads REQUIRED)
endif()

find_path(CAF_INCLUDE_DIR NAMES caf/all.hpp caf/config.hpp
          DOC "Directory that holds caf/all.hpp")

# caf/config.hpp has "#define CAF_VERSION 1706" for 0.17.6.
if(CAF_INCLUDE_DIR AND EXISTS "${CAF_INCLUDE_DIR}/caf/config.hpp")
  file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" caf_version_line
       REGEX "^#define CAF_VERSION [0-9]+")
  if(caf_version_line MATCHES "CAF_VERSION ([0-9]+)")
    set(caf_version_number "${CMAKE_MATCH_1}")
    math(EXPR caf_major "${caf_version_number} / 10000")
    math(EXPR caf_minor "(${caf_version_number} / 100) % 100")
    math(EXPR caf_patch "${caf_version_number} % 100")
    set(CAF_VERSION "${caf_major}.${caf_minor}.${caf_patch}")
  endif()
  unset(caf_version_line)
  unset(caf_version_number)
endif()

# core is always needed: io and openssl build on it.
set(caf_components core ${CAF_FIND_COMPONENTS})
list(REMOVE_DUPLICATES caf_components)

foreach(comp IN LISTS caf_components)
  if(NOT comp MATCHES "^(core|io|openssl)$")
    message(FATAL_ERROR "FindCAF: unknown component '${comp}'")
  endif()
  find_library(CAF_${comp}_LIBRARY NAMES caf_${comp}
               DOC "Path to libcaf_${comp}")
  if(CAF_${comp}_LIBRARY)
    set(CAF_${comp}_FOUND TRUE)
  else()
    set(CAF_${comp}_FOUND FALSE)
  endif()
  mark_as_advanced(CAF_${comp}_LIBRARY)
endforeach()
# openssl needs io.
if("openssl" IN_LIST caf_components AND NOT "io" IN_LIST caf_components)
  find_library(CAF_io_LIBRARY NAMES caf_io DOC "Path to libcaf_io")
  mark_as_advanced(CAF_io_LIBRARY)
endif()
mark_as_advanced(CAF_INCLUDE_DIR)

find_package_handle_standard_args(CAF
  REQUIRED_VARS CAF_INCLUDE_DIR CAF_core_LIBRARY
  VERSION_VAR CAF_VERSION
  HANDLE_COMPONENTS)

if(CAF_FOUND)
  if(NOT TARGET CAF::core)
    add_library(CAF::core UNKNOWN IMPORTED)
    set_target_properties(CAF::core PROPERTIES
      IMPORTED_LOCATION "${CAF_core_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
      INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES Threads::Threads)
  endif()
  if(CAF_io_LIBRARY AND NOT TARGET CAF::io)
    add_library(CAF::io UNKNOWN IMPORTED)
    set_target_properties(CAF::io PROPERTIES
      IMPORTED_LOCATION "${CAF_io_LIBRARY}"
      INTERFACE_LINK_LIBRARIES CAF::core)
  endif()
  if(CAF_openssl_LIBRARY AND TARGET CAF::io AND NOT TARGET CAF::openssl)
    add_library(CAF::openssl UNKNOWN IMPORTED)
    set_target_properties(CAF::openssl PROPERTIES
      IMPORTED_LOCATION "${CAF_openssl_LIBRARY}"
      INTERFACE_LINK_LIBRARIES CAF::io)
  endif()
endif()
