#include "tests/network/test_certs.hpp"

#include <doctest/doctest.h>

#include <cstdlib>

namespace raft_actor::test {

namespace {

/// Runs a shell command quietly; fails the test if it fails.
void run(const std::string& cmd) {
  auto rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  REQUIRE_MESSAGE(rc == 0, "command failed: " << cmd);
}

} // namespace

std::string make_ca(const std::string& dir, const std::string& name) {
  run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -days 2 -subj /CN="
      + name + " -keyout " + dir + "/" + name + ".key -out " + dir + "/" + name
      + ".pem");
  return dir + "/" + name;
}

cert_files make_leaf(const std::string& dir, const std::string& ca,
                     const std::string& name) {
  auto base = dir + "/" + name;
  run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-subj /CN="
      + name + " -keyout " + base + ".key -out " + base + ".csr");
  run("openssl x509 -req -days 2 -in " + base + ".csr -CA " + ca
      + ".pem -CAkey " + ca + ".key -CAcreateserial -out " + base + ".pem");
  return {base + ".pem", base + ".key", ca + ".pem"};
}

} // namespace raft_actor::test
