# Operator tools for the durable storage (included from tools/CMakeLists.txt).

# raft-data: prints a data directory and verifies its checksums, read-only.
add_executable(raft-data ${CMAKE_CURRENT_LIST_DIR}/raft_data.cpp)
target_link_libraries(raft-data
  PRIVATE raft_actor_storage raft_actor_include raft_actor_warnings)

# raft-storage-bench: append throughput of the durable log with fsync on.
add_executable(raft-storage-bench
  ${CMAKE_CURRENT_LIST_DIR}/raft_storage_bench.cpp)
target_link_libraries(raft-storage-bench
  PRIVATE raft_actor_storage raft_actor_include raft_actor_warnings)
