// raft-data: on a real data directory it prints what is there and says OK;
// on a torn tail it names file and offset and exits 1, on corruption it
// names file and offset and exits 2, on garbage it exits 2 without crashing.
// After every run the directory is byte-for-byte what it was, and each
// verdict is checked against what data_dir::open then actually does.
#include "storage/file_store.hpp"
#include "storage/record_format.hpp"
#include "tests/storage/temp_dir.hpp"
#include "tests/tools/tool_runner.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>

using namespace raft_actor;
namespace stdfs = std::filesystem;

namespace {

// Records of 100 bytes (12 header + 25 fixed + 63 payload) in segments that
// close at 1020 bytes hold exactly 10 entries each: 1..10, 11..20, ...
constexpr size_t payload_bytes = 63;
constexpr size_t record_bytes = 100;
constexpr uint64_t segment_bytes = 1020;

std::string seg(index_t first) {
  return disk::segment_name(first);
}

log_entry entry(term_t term, index_t index, entry_kind kind) {
  log_entry e;
  e.id = {term, index};
  e.kind = kind;
  e.leader_time_ms = 1'732'496'940'000 + static_cast<int64_t>(index);
  e.payload.assign(payload_bytes, static_cast<uint8_t>(index));
  return e;
}

/// A data directory of node 1 in cluster 42: term 2 voted for 3, entries
/// 1..45 (term 1 up to 30, then 2), a snapshot at 15 and the log purged to
/// it (the first segment dropped), and a partial snapshot 9 of 100 bytes.
/// Leaves segments 11, 21, 31, 41 with 35 records.
void make_data_dir(const std::string& path) {
  file_log_options opts;
  opts.segment_bytes = segment_bytes;
  auto d = data_dir::open(posix_file_system(), path, 1, 42, opts);
  d.stable->save({2, 3});
  std::vector<log_entry> es;
  for (index_t i = 1; i <= 45; ++i)
    es.push_back(entry(i <= 30 ? 1 : 2, i,
                       i == 1 || i == 31 ? entry_kind::blank
                       : i == 2          ? entry_kind::membership
                                         : entry_kind::normal));
  d.log->append(es);
  d.log->sync();
  d.snapshots->begin(7);
  d.snapshots->write(7, 0, std::vector<uint8_t>(1000, 0xAB));
  snapshot_meta meta;
  meta.last_included = {1, 15};
  meta.config.voters = {{1, "a:1"}, {2, "b:2"}, {3, "c:3"}};
  meta.config.learners = {{4, "d:4"}};
  d.snapshots->finish(7, meta);
  d.log->purge_to({1, 15});
  d.log->sync();
  d.snapshots->begin(9);
  d.snapshots->write(9, 0, std::vector<uint8_t>(100, 0xCD));
}

/// Every file (relative path -> contents) and directory under `root`.
std::map<std::string, std::string> tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : stdfs::recursive_directory_iterator(root)) {
    auto rel = stdfs::relative(e.path(), root).string();
    if (e.is_directory()) {
      out[rel + "/"] = "";
    } else {
      std::ifstream in(e.path(), std::ios::binary);
      out[rel] = std::string((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    }
  }
  return out;
}

/// Runs raft-data on `dir` and checks it changed nothing and did not crash.
test::tool_run inspect(const std::string& dir,
                       std::vector<std::string> flags = {}) {
  auto before = tree(dir);
  flags.push_back(dir);
  auto r = test::run_tool(RAFT_DATA_BIN, flags);
  INFO(r.output);
  CHECK(r.signal == 0);
  CHECK(tree(dir) == before);
  return r;
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

void copy_dir(const std::string& from, const std::string& to) {
  stdfs::copy(from, to, stdfs::copy_options::recursive);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  if (n > 0 && s[0] == 0)
    s[0] = 1; // never all zeros (that would be a torn tail, not garbage)
  return s;
}

data_dir open_copy(const std::string& dir, const std::string& scratch) {
  copy_dir(dir, scratch);
  return data_dir::open(posix_file_system(), scratch, 1, 42);
}

} // namespace

TEST_CASE("raft-data: a healthy directory is shown and verified") {
  test::temp_dir tmp;
  auto dir = tmp / "node";
  make_data_dir(dir);
  auto r = inspect(dir);
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "OK: 35 entries in 4 segments, checksums verified"));
  CHECK(contains(r.output, "node 1, cluster 42, format version 1"));
  CHECK(contains(r.output, "term 2, voted_for 3"));
  CHECK(contains(r.output, "log base     index 15, term 1"));
  CHECK(contains(r.output, "entries 16..45 (30 live), last term 2"));
  CHECK(contains(r.output, seg(11) + "  first 11  last 20  records 10  bytes "
                             + std::to_string(20 + 10 * record_bytes)
                             + "  terms 1..1"));
  CHECK(contains(r.output, seg(41) + "  first 41  last 45  records 5  bytes "
                             + std::to_string(20 + 5 * record_bytes)
                             + "  terms 2..2"));
  CHECK(contains(r.output, "id 7, last_included index 15 term 1, 1000 bytes"));
  CHECK(contains(r.output, "voters {1 a:1, 2 b:2, 3 c:3}, learners {4 d:4}"));
  CHECK(contains(r.output, "snapshot 9, 100 bytes written"));
  CHECK_FALSE(contains(r.output, "\n    index ")); // records only if verbose

  // What opening finds agrees.
  auto d = open_copy(dir, tmp / "copy");
  CHECK(d.notes.empty());
  CHECK(d.log->last_id() == log_id{2, 45});
}

TEST_CASE("raft-data: --verbose lists records, bounded by --entries") {
  test::temp_dir tmp;
  auto dir = tmp / "node";
  make_data_dir(dir);
  auto r = inspect(dir, {"--verbose", "--entries", "3"});
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "    index 11  term 1  normal      payload 63 B  "
                           "leader time 2024-11-25T01:09:00.011Z"));
  CHECK(contains(r.output, "    index 13  term 1"));
  CHECK_FALSE(contains(r.output, "    index 14  "));
  CHECK(contains(r.output, "32 more records not shown"));

  auto all = inspect(dir, {"--verbose", "--entries", "0"});
  size_t lines = 0;
  for (auto pos = all.output.find("\n    index "); pos != std::string::npos;
       pos = all.output.find("\n    index ", pos + 1))
    ++lines;
  CHECK(lines == 35);
  CHECK(contains(all.output, "    index 31  term 2  blank "));
}

TEST_CASE("raft-data: a torn tail is named and exits 1") {
  test::temp_dir tmp;
  auto dir = tmp / "node";
  make_data_dir(dir);
  auto last = dir + "/log/" + seg(41);
  // Cut the last segment in the middle of its last record (index 45).
  auto cut_at = 20 + 4 * record_bytes;
  stdfs::resize_file(last, cut_at + 50);
  auto r = inspect(dir);
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.output,
                 "TORN: " + last + " at offset " + std::to_string(cut_at)));
  CHECK(contains(r.output, "would be truncated on open"));
  CHECK_FALSE(contains(r.output, "OK:"));
  CHECK(contains(r.output, "REPAIRABLE"));

  // Opening repairs exactly there.
  auto d = open_copy(dir, tmp / "copy");
  REQUIRE(d.notes.size() == 1);
  CHECK(contains(d.notes[0], "at offset " + std::to_string(cut_at)));
  CHECK(d.log->last_id() == log_id{2, 44});
}

TEST_CASE("raft-data: zeroed blocks after the last record are a torn tail") {
  test::temp_dir tmp;
  auto dir = tmp / "node";
  make_data_dir(dir);
  auto last = dir + "/log/" + seg(41);
  auto size = stdfs::file_size(last);
  stdfs::resize_file(last, size + 4096); // zero-filled
  auto r = inspect(dir);
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(
    contains(r.output, "TORN: " + last + " at offset " + std::to_string(size)));
  CHECK(contains(r.output, "zeroed bytes"));
}

TEST_CASE("raft-data: a flipped bit in a middle record exits 2") {
  test::temp_dir tmp;
  auto dir = tmp / "node";
  make_data_dir(dir);
  auto middle = dir + "/log/" + seg(21);
  auto record_at = 20 + 2 * record_bytes; // index 23
  auto bytes = read_bytes(middle);
  bytes[record_at + 12 + 30] ^= 0x10; // a payload byte
  write_bytes(middle, bytes);
  auto r = inspect(dir);
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "CORRUPT: " + middle + " at offset "
                             + std::to_string(record_at)));
  CHECK(contains(r.output, "record checksum mismatch"));
  CHECK(contains(r.output, "refused on open"));
  CHECK_FALSE(contains(r.output, "OK:"));

  // Opening refuses at the same place.
  try {
    open_copy(dir, tmp / "copy");
    FAIL("data_dir::open accepted a corrupt record");
  } catch (const storage_error& e) {
    CHECK(e.path() == tmp / "copy/log/" + seg(21));
    CHECK(e.offset() == static_cast<int64_t>(record_at));
  }
}

TEST_CASE("raft-data: a flipped length bit is corruption, not a torn tail") {
  test::temp_dir tmp;
  auto dir = tmp / "node";
  make_data_dir(dir);
  auto last = dir + "/log/" + seg(41);
  auto record_at = 20 + 4 * record_bytes; // the last record
  auto bytes = read_bytes(last);
  bytes[record_at + 1] ^= 0x01; // body length + 256
  write_bytes(last, bytes);
  auto r = inspect(dir);
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "CORRUPT: " + last + " at offset "
                             + std::to_string(record_at)));
}

TEST_CASE("raft-data: a torn record before the last segment exits 2") {
  test::temp_dir tmp;
  auto dir = tmp / "node";
  make_data_dir(dir);
  auto middle = dir + "/log/" + seg(31);
  stdfs::resize_file(middle, 20 + 3 * record_bytes + 10);
  auto r = inspect(dir);
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "CORRUPT: " + middle + " at offset "
                             + std::to_string(20 + 3 * record_bytes)));
  CHECK(contains(r.output, "is not the last segment"));
}

TEST_CASE("raft-data: damaged metadata files exit 2") {
  test::temp_dir tmp;
  auto dir = tmp / "node";
  make_data_dir(dir);
  int round = 0;
  for (const char* name :
       {"identity", "hard_state", "log/base", "snapshots/7.meta"}) {
    CAPTURE(name);
    auto copy = tmp / ("bad-" + std::to_string(round++));
    copy_dir(dir, copy);
    auto path = copy + "/" + name;
    auto bytes = read_bytes(path);
    bytes[bytes.size() / 2] ^= 0x04;
    write_bytes(path, bytes);
    auto r = inspect(copy);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "CORRUPT: " + path));
    CHECK_THROWS_AS(open_copy(copy, copy + "-opened"), storage_error);
  }
}

TEST_CASE("raft-data: random garbage exits 2 and never crashes") {
  test::temp_dir tmp;
  std::mt19937_64 rng(20241125);
  auto size = [&](size_t lo, size_t hi) {
    return lo + static_cast<size_t>(rng() % (hi - lo + 1));
  };
  for (int round = 0; round < 25; ++round) {
    CAPTURE(round);
    // A whole directory of garbage with the right names.
    auto junk = tmp / ("junk-" + std::to_string(round));
    stdfs::create_directories(junk + "/log");
    stdfs::create_directories(junk + "/snapshots");
    write_bytes(junk + "/identity", random_bytes(rng, size(1, 64)));
    write_bytes(junk + "/hard_state", random_bytes(rng, size(1, 64)));
    write_bytes(junk + "/log/base", random_bytes(rng, size(1, 64)));
    for (int k = 0; k < 3; ++k)
      write_bytes(junk + "/log/" + seg(rng() % 100 + 1),
                  random_bytes(rng, size(20, 5000)));
    write_bytes(junk + "/snapshots/" + std::to_string(rng() % 9 + 1) + ".meta",
                random_bytes(rng, size(1, 300)));
    write_bytes(junk + "/snapshots/3.snap", random_bytes(rng, size(1, 300)));
    write_bytes(junk + "/snapshots/4.partial", random_bytes(rng, 10));
    auto r = inspect(junk);
    INFO(r.output);
    CHECK(r.exit_code == 2);

    // A healthy directory with one segment replaced by garbage, or garbage
    // appended to a middle segment.
    auto one = tmp / ("one-" + std::to_string(round));
    make_data_dir(one);
    auto victim = one + "/log/" + seg(11 + 10 * (rng() % 4));
    if (round % 2 == 0) {
      write_bytes(victim, random_bytes(rng, size(20, 3000)));
    } else {
      auto bytes = read_bytes(victim);
      bytes.replace(20 + (rng() % (bytes.size() - 20)), 40,
                    random_bytes(rng, 40));
      write_bytes(victim, bytes);
    }
    r = inspect(one);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "CORRUPT: " + victim + " at offset "));
    stdfs::remove_all(one);
  }
}

TEST_CASE("raft-data: odd directories and usage errors") {
  test::temp_dir tmp;
  // Empty: nothing to verify, opening would initialise it.
  auto r = inspect(tmp.path());
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "OK: 0 entries in 0 segments"));
  // Not empty but no identity: refused on open.
  write_bytes(tmp / "stray", "x");
  r = inspect(tmp.path());
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "no identity file"));
  // Missing directory.
  r = test::run_tool(RAFT_DATA_BIN, {tmp / "missing"});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "no such directory"));
  CHECK_FALSE(stdfs::exists(tmp / "missing"));
  // Usage.
  CHECK(test::run_tool(RAFT_DATA_BIN, {}).exit_code == 64);
  CHECK(test::run_tool(RAFT_DATA_BIN, {"--bogus", tmp.path()}).exit_code == 64);
  CHECK(test::run_tool(RAFT_DATA_BIN, {"--entries", "x", tmp.path()}).exit_code
        == 64);
  CHECK(test::run_tool(RAFT_DATA_BIN, {"a", "b"}).exit_code == 64);
  CHECK(test::run_tool(RAFT_DATA_BIN, {"--help"}).exit_code == 0);
}
