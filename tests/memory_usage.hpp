// Test support: how much memory a process holds, from /proc (Linux), for
// tests that check hostile input is refused without allocating what it
// announces.
#pragma once

#include <fstream>
#include <string>

#include <sys/types.h>

namespace raft_actor::test {

/// A "Vm...:" field of /proc/<pid>/status in KiB (0 if unknown).
inline long proc_status_kb(const std::string& pid, const std::string& field) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0)
      return std::stol(line.substr(field.size() + 1));
  return 0;
}

/// Resident memory of process `pid` in KiB (0 if unknown).
inline long rss_kb(pid_t pid) {
  return proc_status_kb(std::to_string(pid), "VmRSS");
}

/// Peak resident memory of this process in KiB (0 if unknown).
inline long peak_rss_kb() {
  return proc_status_kb("self", "VmHWM");
}

} // namespace raft_actor::test
