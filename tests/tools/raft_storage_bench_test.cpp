// raft-storage-bench: a smoke run (it runs, writes JSON with one result per
// batch size and cleans up after itself). No speed is asserted: timings
// depend on the machine.
#include "tests/storage/temp_dir.hpp"
#include "tests/tools/tool_runner.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

using namespace raft_actor;

namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos;
       pos = text.find(what, pos + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("raft-storage-bench: a short run reports every batch size") {
  test::temp_dir work;
  test::temp_dir out;
  auto json = out / "bench.json";
  auto r = test::run_tool(RAFT_STORAGE_BENCH_BIN,
                          {"--seconds", "0.2", "--batches", "1,16", "--dir",
                           work.path(), "--json", json});
  INFO(r.output);
  REQUIRE(r.signal == 0);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("entries/s") != std::string::npos);
  std::ifstream in(json);
  REQUIRE(in.good());
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  INFO(text);
  CHECK(text.find("{\"payload\":256,") == 0);
  CHECK(count(text, "\"batch\":") == 2);
  CHECK(count(text, "\"entries_per_sec\":") == 2);
  CHECK(count(text, "\"sync_p99_us\":") == 2);
  CHECK(text.find("\"batch\":1,") != std::string::npos);
  CHECK(text.find("\"batch\":16,") != std::string::npos);
  // Its temporary log directory is gone.
  CHECK(std::filesystem::is_empty(work.path()));
}

TEST_CASE("raft-storage-bench: usage errors exit 64") {
  CHECK(test::run_tool(RAFT_STORAGE_BENCH_BIN, {"--batches", "0"}).exit_code
        == 64);
  CHECK(test::run_tool(RAFT_STORAGE_BENCH_BIN, {"--seconds", "-1"}).exit_code
        == 64);
  CHECK(test::run_tool(RAFT_STORAGE_BENCH_BIN, {"--bogus"}).exit_code == 64);
}
