// The durable log's basic contract: what is synced survives reopening,
// across segment boundaries, truncation, compaction and reset.
#include "storage/file_store.hpp"
#include "tests/storage/temp_dir.hpp"

#include <doctest/doctest.h>

using namespace raft_actor;

namespace {

log_entry entry(term_t term, index_t index, size_t bytes = 10) {
  log_entry e;
  e.id = {term, index};
  e.kind = entry_kind::normal;
  e.leader_time_ms = static_cast<int64_t>(index * 7);
  e.payload.assign(bytes, static_cast<uint8_t>(index));
  return e;
}

std::vector<log_entry> entries(term_t term, index_t from, index_t to,
                               size_t bytes = 10) {
  std::vector<log_entry> out;
  for (auto i = from; i <= to; ++i)
    out.push_back(entry(term, i, bytes));
  return out;
}

} // namespace

TEST_CASE("file log: synced entries survive reopening, across segments") {
  test::temp_dir dir;
  auto fs = posix_file_system();
  file_log_options small;
  small.segment_bytes = 300; // a few records per segment
  {
    file_log_store log(fs, dir.path(), small);
    CHECK(log.last_id() == log_id{});
    log.append(entries(1, 1, 20));
    log.append(entries(2, 21, 30));
    CHECK(log.read(5, 6) == entries(1, 5, 6)); // readable before sync
    log.sync();
    CHECK(log.segment_count() > 3);
  }
  file_log_store log(fs, dir.path(), small);
  CHECK(log.recovery_notes().empty());
  CHECK(log.last_id() == log_id{2, 30});
  auto all = log.read(1, 30);
  auto expected = entries(1, 1, 20);
  auto tail = entries(2, 21, 30);
  expected.insert(expected.end(), tail.begin(), tail.end());
  CHECK(all == expected);
}

TEST_CASE("file log: truncation, compaction and reset persist") {
  test::temp_dir dir;
  auto fs = posix_file_system();
  file_log_options small;
  small.segment_bytes = 300;
  {
    file_log_store log(fs, dir.path(), small);
    log.append(entries(1, 1, 40));
    log.sync();
    log.truncate_from(25); // inside a segment, later segments removed
    log.append(entries(3, 25, 27));
    log.sync();
    log.purge_to({1, 10});
    log.sync();
    CHECK(log.base() == log_id{1, 10});
  }
  {
    file_log_store log(fs, dir.path(), small);
    CHECK(log.base() == log_id{1, 10});
    CHECK(log.last_id() == log_id{3, 27});
    CHECK(log.read(11, 11) == entries(1, 11, 11));
    CHECK(log.read(25, 27) == entries(3, 25, 27));
    log.reset({5, 100});
    log.append(entries(5, 101, 102));
    log.sync();
  }
  file_log_store log(fs, dir.path(), small);
  CHECK(log.base() == log_id{5, 100});
  CHECK(log.last_id() == log_id{5, 102});
  CHECK(log.read(101, 102) == entries(5, 101, 102));
}

TEST_CASE("file log: misuse is rejected without damaging the store") {
  test::temp_dir dir;
  file_log_store log(posix_file_system(), dir.path());
  log.append(entries(2, 1, 3));
  CHECK_THROWS_AS(log.append(entries(2, 5, 5)), std::invalid_argument);
  CHECK_THROWS_AS(log.append(entries(1, 4, 4)), std::invalid_argument);
  CHECK_THROWS_AS(log.purge_to({9, 2}), std::invalid_argument);
  log.sync();
  CHECK(log.last_id() == log_id{2, 3});
}

TEST_CASE("data dir: identity, hard state and snapshots") {
  test::temp_dir dir;
  auto fs = posix_file_system();
  auto path = dir / "node";
  {
    auto d = data_dir::open(fs, path, 3, 77);
    CHECK(d.created);
    CHECK(d.stable->load() == hard_state{});
    d.stable->save({4, 2});
    d.log->append(entries(4, 1, 5));
    d.log->sync();
    d.snapshots->begin(9);
    d.snapshots->write(9, 0, {1, 2, 3});
    d.snapshots->write(9, 3, {4, 5});
    snapshot_meta m;
    m.last_included = {4, 3};
    m.config.voters = {{3, "a"}, {4, "b"}};
    m.framework_state = {7};
    d.snapshots->finish(9, m);
  }
  auto d = data_dir::open(fs, path, 3, 77);
  CHECK_FALSE(d.created);
  CHECK(d.stable->load() == hard_state{4, 2});
  REQUIRE(d.snapshots->latest());
  CHECK(d.snapshots->latest()->last_included == log_id{4, 3});
  CHECK(d.snapshots->latest()->size == 5);
  CHECK(d.snapshots->latest()->framework_state == std::vector<uint8_t>{7});
  CHECK(d.snapshots->read(9, 1, 10) == std::vector<uint8_t>{2, 3, 4, 5});
  CHECK(d.log->last_id() == log_id{4, 5});
  CHECK_THROWS_AS(data_dir::open(fs, path, 4, 77), storage_error);
  CHECK_THROWS_AS(data_dir::open(fs, path, 3, 78), storage_error);
}
