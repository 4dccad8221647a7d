// Runs a built tool as a child process and captures what it prints.
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/wait.h>

namespace raft_actor::test {

/// How a tool run ended.
struct tool_run {
  /// Exit status, or -1 if the process died of a signal.
  int exit_code = -1;
  /// Signal that killed the process, or 0.
  int signal = 0;
  /// stdout and stderr, interleaved.
  std::string output;
};

/// Quotes `s` for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

/// Runs `bin` with `args` through /bin/sh and waits for it.
inline tool_run run_tool(const std::string& bin,
                         const std::vector<std::string>& args) {
  std::string cmd = shell_quote(bin);
  for (const auto& a : args)
    cmd += " " + shell_quote(a);
  cmd += " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p)
    throw std::runtime_error("popen failed: " + cmd);
  tool_run r;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
    r.output.append(buf, n);
  int status = ::pclose(p);
  if (status == -1)
    throw std::runtime_error("pclose failed: " + cmd);
  if (WIFEXITED(status))
    r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    r.signal = WTERMSIG(status);
  return r;
}

} // namespace raft_actor::test
