# Fails if the pure core (or the plain message headers it uses) includes
# anything that does I/O, threads, clocks or CAF. Run by ctest.
file(GLOB_RECURSE sources
  "${SOURCE_DIR}/libraft_actor/core/*.hpp" "${SOURCE_DIR}/libraft_actor/core/*.cpp"
  "${SOURCE_DIR}/messages/types.hpp" "${SOURCE_DIR}/messages/rpc.hpp"
  "${SOURCE_DIR}/messages/membership_codec.hpp"
  "${SOURCE_DIR}/messages/membership_codec.cpp")
set(forbidden
  "#include <caf/" "#include \"caf/" "#include <spdlog" "#include <thread>"
  "#include <mutex>" "#include <fstream>" "#include <iostream>"
  "#include <cstdio>" "#include <random>" "#include <future>"
  "steady_clock" "system_clock" "high_resolution_clock" "std::cout"
  "std::cerr" "printf(" "getenv(")
set(bad "")
foreach(f IN LISTS sources)
  file(READ "${f}" text)
  foreach(pattern IN LISTS forbidden)
    string(FIND "${text}" "${pattern}" pos)
    if(NOT pos EQUAL -1)
      list(APPEND bad "${f}: ${pattern}")
    endif()
  endforeach()
endforeach()
list(LENGTH sources n)
if(n LESS 10)
  message(FATAL_ERROR "purity check found only ${n} files; paths are wrong")
endif()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "the pure core must not do I/O, threads or clocks:\n  ${bad}")
endif()
message(STATUS "pure core: ${n} files checked, no I/O, thread, clock or CAF use")
