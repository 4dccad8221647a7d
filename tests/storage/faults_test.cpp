// Write errors in the durable stores: a full disk (ENOSPC), a failing device
// (EIO) or a failing fsync, injected with faulty_file_system.
//
// The contract (issue 4): a write error makes the store fail the call and
// every later call; nothing acknowledged (a sync(), save(), write() or
// finish() that returned) is lost, and nothing half-written is reported as
// present unless it is a clean prefix of what was being written. A failed
// fsync is never retried into success (thesis §3.8: an answer may only leave
// after its persist completed; after a failed fsync the kernel may have
// dropped the dirty pages, so a second fsync "succeeding" proves nothing).
//
// The sweep runs one scenario that touches every kind of write (append and
// sync batches across segments, truncate, purge, reset, snapshot
// begin/write/finish, hard state save) and injects the failure at each of its
// mutating file operations in turn, then reopens with a healthy file system
// and checks what survived against a model of the scenario.
#include "storage/crc32c.hpp"
#include "tests/storage/storage_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <map>

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

constexpr node_id me = 2;
constexpr uint64_t cluster = 5;

/// The POSIX file system without the flushes. The sweep below reopens the
/// stores in the same process, where the page cache makes every completed
/// write visible whether or not it was flushed, so the real fsync calls only
/// cost time (a few ms each, thousands of them). The faulty layer above still
/// counts and fails every flush; one pass of the sweep runs on the real file
/// system to keep the flushing code path honest.
class no_flush_file_system final : public file_system {
public:
  explicit no_flush_file_system(std::shared_ptr<file_system> inner)
      : inner_(std::move(inner)) {}
  file_handle open(const std::string& path, bool create) override {
    return inner_->open(path, create);
  }
  void close(file_handle& f) noexcept override { inner_->close(f); }
  void pwrite(const file_handle& f, const void* data, size_t n,
              uint64_t offset) override {
    inner_->pwrite(f, data, n, offset);
  }
  size_t pread(const file_handle& f, void* data, size_t n,
               uint64_t offset) override {
    return inner_->pread(f, data, n, offset);
  }
  void fdatasync(const file_handle&) override {}
  void fsync(const file_handle&) override {}
  void truncate(const file_handle& f, uint64_t size) override {
    inner_->truncate(f, size);
  }
  uint64_t size(const file_handle& f) override { return inner_->size(f); }
  void rename(const std::string& from, const std::string& to) override {
    inner_->rename(from, to);
  }
  void remove(const std::string& path) override { inner_->remove(path); }
  void make_dirs(const std::string& path) override { inner_->make_dirs(path); }
  bool exists(const std::string& path) override { return inner_->exists(path); }
  std::vector<std::string> list(const std::string& dir) override {
    return inner_->list(dir);
  }
  void sync_dir(const std::string&) override {}

private:
  std::shared_ptr<file_system> inner_;
};

std::shared_ptr<file_system> fast_fs() {
  static auto fs = std::make_shared<no_flush_file_system>(posix_file_system());
  return fs;
}

// -- a model of what the scenario has written ---------------------------------

/// The log as the caller sees it.
struct log_state {
  log_id base;
  std::vector<log_entry> entries; ///< indices base+1 .. last

  log_id last() const { return entries.empty() ? base : entries.back().id; }
  const log_entry* at(index_t i) const {
    if (i <= base.index || i > last().index)
      return nullptr;
    return &entries[i - base.index - 1];
  }
};

/// Everything the scenario has written, as the caller sees it.
struct model {
  log_state log;
  hard_state hard;
  std::optional<snapshot_meta> latest;
  std::vector<uint8_t> latest_data;
  uint64_t partial_id = 0; ///< snapshot being written (0: none)
  std::vector<uint8_t> partial;
};

enum class store_kind { open, log, stable, snapshots };

/// One call of the scenario: what it does to the stores and to the model.
struct step {
  std::string name;
  store_kind kind;
  std::function<void(data_dir&)> run;
  std::function<void(model&)> apply;
};

std::vector<uint8_t> bytes_of(uint8_t seed, size_t n) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<uint8_t>(seed * 13 + i * 7);
  return out;
}

snapshot_meta meta_for(log_id last, uint8_t tag) {
  snapshot_meta m;
  m.last_included = last;
  m.config.voters = {{1, "n1"}, {2, "n2"}, {3, "n3"}};
  m.framework_state = {tag, static_cast<uint8_t>(tag + 1)};
  return m;
}

/// Index a snapshot covers (helper for the model's "is it newer").
index_t last_index(const snapshot_meta& m) {
  return m.last_included.index;
}

/// The scenario: every kind of durable write, in the order a node makes them.
std::vector<step> scenario() {
  std::vector<step> s;
  auto append = [&](term_t t, index_t from, index_t to) {
    auto batch = make_entries(t, from, to);
    s.push_back(
      {"append " + std::to_string(from) + ".." + std::to_string(to),
       store_kind::log, [batch](data_dir& d) { d.log->append(batch); },
       [batch](model& m) {
         m.log.entries.insert(m.log.entries.end(), batch.begin(), batch.end());
       }});
  };
  auto sync = [&] {
    s.push_back({"sync", store_kind::log, [](data_dir& d) { d.log->sync(); },
                 [](model&) {}});
  };
  auto truncate = [&](index_t from) {
    s.push_back({"truncate_from " + std::to_string(from), store_kind::log,
                 [from](data_dir& d) { d.log->truncate_from(from); },
                 [from](model& m) {
                   m.log.entries.resize(from - m.log.base.index - 1);
                 }});
  };
  auto purge = [&](log_id id) {
    s.push_back({"purge_to " + std::to_string(id.index), store_kind::log,
                 [id](data_dir& d) { d.log->purge_to(id); },
                 [id](model& m) {
                   m.log.entries.erase(m.log.entries.begin(),
                                       m.log.entries.begin()
                                         + static_cast<std::ptrdiff_t>(
                                           id.index - m.log.base.index));
                   m.log.base = id;
                 }});
  };
  auto reset = [&](log_id id) {
    s.push_back({"reset " + std::to_string(id.index), store_kind::log,
                 [id](data_dir& d) { d.log->reset(id); },
                 [id](model& m) {
                   m.log.entries.clear();
                   m.log.base = id;
                 }});
  };
  auto save = [&](hard_state h) {
    s.push_back({"save term " + std::to_string(h.current_term),
                 store_kind::stable, [h](data_dir& d) { d.stable->save(h); },
                 [h](model& m) { m.hard = h; }});
  };
  // A whole snapshot: begin, one write per chunk, finish.
  auto snapshot = [&](uint64_t id, std::vector<size_t> chunks, log_id last) {
    s.push_back({"begin " + std::to_string(id), store_kind::snapshots,
                 [id](data_dir& d) { d.snapshots->begin(id); },
                 [id](model& m) {
                   m.partial_id = id;
                   m.partial.clear();
                 }});
    uint64_t offset = 0;
    for (auto n : chunks) {
      auto data = bytes_of(static_cast<uint8_t>(id + offset), n);
      s.push_back({"write " + std::to_string(id) + "@" + std::to_string(offset),
                   store_kind::snapshots,
                   [id, offset, data](data_dir& d) {
                     d.snapshots->write(id, offset, data);
                   },
                   [data](model& m) {
                     m.partial.insert(m.partial.end(), data.begin(),
                                      data.end());
                   }});
      offset += n;
    }
    auto meta = meta_for(last, static_cast<uint8_t>(id));
    s.push_back({"finish " + std::to_string(id), store_kind::snapshots,
                 [id, meta](data_dir& d) {
                   auto stored = d.snapshots->finish(id, meta);
                   CHECK(stored.id == id);
                 },
                 [id, meta](model& m) {
                   auto full = meta;
                   full.id = id;
                   full.size = m.partial.size();
                   full.data_crc = crc32c(m.partial.data(), m.partial.size());
                   if (!m.latest || last_index(full) > last_index(*m.latest)) {
                     m.latest = full;
                     m.latest_data = m.partial;
                   }
                   m.partial_id = 0;
                   m.partial.clear();
                 }});
  };

  save({1, 0});
  append(1, 1, 6);
  sync();
  save({2, 3});
  append(2, 7, 14); // crosses segment boundaries
  sync();
  truncate(10);
  append(3, 10, 13);
  sync();
  snapshot(1, {40, 25}, {2, 8});
  purge({2, 8});
  sync();
  append(3, 14, 20);
  sync();
  save({3, 0});
  snapshot(2, {30}, {3, 15});     // newer: replaces snapshot 1
  snapshot(5, {10}, {3, 12});     // older than the latest: dropped
  snapshot(3, {50, 10}, {4, 30}); // installed from a leader ...
  reset({4, 30});                 // ... replaces the log
  append(4, 31, 35);
  sync();
  save({4, 0});
  truncate(33);
  sync();
  snapshot(6, {20}, {4, 32});
  purge({4, 32});
  append(4, 33, 34);
  sync();
  return s;
}

// -- checking what survived ---------------------------------------------------

/// The log read back from a store.
log_state read_log(const log_store& log) {
  log_state out;
  out.base = log.base();
  if (log.last_id().index > out.base.index)
    out.entries = log.read(out.base.index + 1, log.last_id().index);
  return out;
}

/// True if `r` is a clean prefix of `m`: same base, and each of its entries
/// is the model's.
bool is_prefix_of(const log_state& r, const log_state& m) {
  if (r.base != m.base || r.entries.size() > m.entries.size())
    return false;
  return std::equal(r.entries.begin(), r.entries.end(), m.entries.begin());
}

/// What one run of the scenario acknowledged, and what it may have done
/// without acknowledging.
struct outcome {
  /// Log states from the last acknowledged one (a returned sync) to the one
  /// the failing call was making.
  std::vector<log_state> log_candidates;
  log_state acked_log;
  std::vector<hard_state> hard_candidates;
  /// Latest snapshot: acknowledged one first, then the one being finished.
  std::vector<std::optional<snapshot_meta>> snap_candidates;
  std::map<uint64_t, std::vector<uint8_t>> snap_data;
  /// Partial snapshot being written: id, bytes acknowledged, bytes possibly
  /// written by the failing call.
  uint64_t partial_id = 0;
  size_t partial_acked = 0;
  size_t partial_max = 0;
  bool failed_in_finish = false;
};

std::string describe(const std::optional<snapshot_meta>& m) {
  if (!m)
    return "none";
  return "{id " + std::to_string(m->id) + ", last "
         + std::to_string(m->last_included.term) + "/"
         + std::to_string(m->last_included.index) + ", size "
         + std::to_string(m->size) + ", "
         + std::to_string(m->config.voters.size()) + " voters, "
         + std::to_string(m->framework_state.size()) + " state bytes "
         + (m->framework_state.empty() ? std::string()
                                       : std::to_string(m->framework_state[0]))
         + (m->config.voters.empty() ? std::string()
                                     : m->config.voters.begin()->second)
         + "}";
}

std::string describe(const std::vector<std::optional<snapshot_meta>>& ms) {
  std::string out;
  for (const auto& m : ms)
    out += (out.empty() ? "" : " or ") + describe(m);
  return out;
}

/// Opens the data directory as a restarted node would.
std::optional<data_dir> reopen(const std::string& path,
                               const file_log_options& opts) {
  try {
    return data_dir::open(fast_fs(), path, me, cluster, opts);
  } catch (const std::exception& e) {
    FAIL_CHECK("reopening failed: " << std::string(e.what()));
    return std::nullopt;
  }
}

/// Reopens with a healthy file system and checks the contract against `o`.
void check_recovered(const std::string& path, const file_log_options& opts,
                     const outcome& o) {
  auto opened = reopen(path, opts);
  if (!opened)
    return;
  auto& d = *opened;

  // Hard state: the acknowledged one, or the one being saved.
  auto hs = d.stable->load();
  bool hard_ok = false;
  for (const auto& h : o.hard_candidates)
    hard_ok = hard_ok || hs == h;
  CHECK_MESSAGE(hard_ok, "hard state term " << hs.current_term);

  // Latest snapshot: the acknowledged one, or the one being finished; and
  // its data intact.
  auto latest = d.snapshots->latest();
  bool snap_ok = false;
  for (const auto& c : o.snap_candidates)
    snap_ok = snap_ok || latest == c;
  CHECK_MESSAGE(snap_ok, "latest snapshot " << describe(latest) << ", expected "
                                            << describe(o.snap_candidates));
  if (latest && o.snap_data.count(latest->id))
    CHECK(d.snapshots->read(latest->id, 0, 1 << 20)
          == o.snap_data.at(latest->id));

  // A partial snapshot keeps every acknowledged chunk (so the transfer can
  // resume), and holds no more than was written.
  if (o.partial_id != 0 && !(latest && latest->id == o.partial_id)) {
    auto n = d.snapshots->partial_size(o.partial_id);
    if (o.failed_in_finish && n == 0) {
      // finish() renamed the data before failing; it was older than the
      // latest, so it was dropped: acceptable, it never became the latest.
    } else {
      CHECK_MESSAGE(n >= o.partial_acked, "partial snapshot lost "
                                            << o.partial_acked - n
                                            << " acknowledged bytes");
      CHECK(n <= o.partial_max);
    }
  }

  // The log: a clean prefix of a state the scenario went through since the
  // last returned sync, holding every acknowledged entry that no later call
  // removed. Opening may also have replaced a log that does not reach the
  // latest snapshot by that snapshot (a crash while installing one, §7).
  auto r = read_log(*d.log);
  bool matches = false;
  for (const auto& c : o.log_candidates)
    matches = matches || is_prefix_of(r, c);
  if (!matches && latest && r.entries.empty()
      && r.base == latest->last_included) {
    for (const auto& n : d.notes)
      matches = matches || contains(n, "replaced the log");
  }
  CHECK_MESSAGE(matches, "recovered log base " << r.base.index << " last "
                                               << r.last().index);
  for (const auto& e : o.acked_log.entries) {
    if (e.id.index <= r.base.index)
      continue;
    bool kept_by_all = true;
    for (const auto& c : o.log_candidates) {
      auto* ce = c.at(e.id.index);
      kept_by_all = kept_by_all && ce && *ce == e;
    }
    if (kept_by_all) {
      auto* re = r.at(e.id.index);
      CHECK_MESSAGE((re && *re == e),
                    "acknowledged entry " << e.id.index << " lost");
    }
  }
}

/// Every call on the failed store must throw storage_error.
void expect_store_failed(data_dir& d, store_kind kind, const model& m) {
  auto must_fail = [](const char* call, const std::function<void()>& f) {
    auto e = catch_storage_error(f);
    CHECK_MESSAGE(e.has_value(), call << " did not throw storage_error");
  };
  switch (kind) {
    case store_kind::open:
      break;
    case store_kind::log: {
      auto last = d.log->last_id();
      auto base = d.log->base();
      must_fail("append", [&] {
        d.log->append({make_entry(last.term + 1, last.index + 1, 3)});
      });
      must_fail("sync", [&] { d.log->sync(); });
      must_fail("read", [&] { d.log->read(base.index + 1, last.index); });
      must_fail("truncate_from", [&] { d.log->truncate_from(base.index + 1); });
      must_fail("purge_to", [&] { d.log->purge_to(last); });
      must_fail("reset", [&] { d.log->reset(last); });
      break;
    }
    case store_kind::stable:
      must_fail("save", [&] { d.stable->save({m.hard.current_term + 1, 0}); });
      must_fail("load", [&] { d.stable->load(); });
      break;
    case store_kind::snapshots: {
      must_fail("write", [&] {
        d.snapshots->write(m.partial_id, m.partial.size(), {1});
      });
      must_fail("finish",
                [&] { d.snapshots->finish(m.partial_id, meta_for({}, 0)); });
      if (auto l = d.snapshots->latest())
        must_fail("read", [&] { d.snapshots->read(l->id, 0, 1); });
      must_fail("begin", [&] { d.snapshots->begin(99); });
      break;
    }
  }
}

/// Runs the scenario with the `fail_at`-th mutating operation failing with
/// `error_number` (never, if past the end); returns the number of mutating
/// operations the run performed.
uint64_t run_with_failure(const std::shared_ptr<file_system>& inner,
                          uint64_t fail_at, int error_number) {
  temp_dir root;
  auto path = root / "node";
  file_log_options opts;
  opts.segment_bytes = 300;
  // Created before the faults start: the sweep is about a running node.
  data_dir::open(inner, path, me, cluster, opts);

  auto faulty = std::make_shared<faulty_file_system>(inner);
  faulty->fail_after(fail_at, error_number);
  model m;
  outcome o;
  o.log_candidates = {m.log};
  o.hard_candidates = {m.hard};
  o.snap_candidates = {m.latest};

  std::optional<data_dir> d;
  const step* failed = nullptr;
  std::optional<storage_error> error;
  auto steps = scenario();
  std::vector<step> all;
  all.push_back({"open", store_kind::open,
                 [&](data_dir&) {
                   d.emplace(data_dir::open(faulty, path, me, cluster, opts));
                 },
                 [](model&) {}});
  all.insert(all.end(), steps.begin(), steps.end());
  data_dir none;
  for (const auto& s : all) {
    model next = m;
    s.apply(next);
    // What the call may leave behind if it fails half-way.
    if (s.kind == store_kind::log)
      o.log_candidates.push_back(next.log);
    if (s.kind == store_kind::stable)
      o.hard_candidates.push_back(next.hard);
    if (s.kind == store_kind::snapshots) {
      if (!(next.latest == m.latest)) {
        o.snap_candidates.push_back(next.latest);
        o.snap_data[next.latest->id] = next.latest_data;
      }
      o.partial_id = m.partial_id != 0 ? m.partial_id : next.partial_id;
      o.partial_acked = m.partial.size();
      o.partial_max = std::max(m.partial.size(), next.partial.size());
      o.failed_in_finish = s.name.rfind("finish", 0) == 0;
    }
    try {
      s.run(d ? *d : none);
    } catch (const storage_error& e) {
      failed = &s;
      error = e;
      break;
    }
    m = next;
    // What the call acknowledged by returning.
    if (s.name == "sync") {
      o.acked_log = m.log;
      o.log_candidates = {m.log};
    }
    if (s.kind == store_kind::stable)
      o.hard_candidates = {m.hard};
    if (s.kind == store_kind::snapshots) {
      o.snap_candidates = {m.latest};
      o.snap_data.clear();
      if (m.latest)
        o.snap_data[m.latest->id] = m.latest_data;
      o.partial_id = m.partial_id;
      o.partial_acked = o.partial_max = m.partial.size();
      o.failed_in_finish = false;
    }
  }
  auto ops = faulty->operations();
  CAPTURE(fail_at);
  CAPTURE(error_number);
  if (fail_at < ops) {
    REQUIRE_MESSAGE(failed != nullptr, "the injected failure was swallowed");
    CAPTURE(failed->name);
    CHECK(error->error_number() == error_number);
    CHECK(contains(error->what(), error->path()));
    if (d) {
      expect_store_failed(*d, failed->kind, m);
      faulty->heal(); // a healed disk does not revive a failed store
      expect_store_failed(*d, failed->kind, m);
    }
  } else {
    CHECK(failed == nullptr);
  }
  d.reset();
  check_recovered(path, opts, o);
  return ops;
}

} // namespace

TEST_CASE("faults: the scenario without faults ends in the modelled state") {
  auto ops = run_with_failure(posix_file_system(), UINT64_MAX, ENOSPC);
  CHECK(ops > 50);
}

TEST_CASE("faults: ENOSPC at every mutating operation of the scenario") {
  auto total = run_with_failure(fast_fs(), UINT64_MAX, ENOSPC);
  for (uint64_t n = 0; n <= total; ++n)
    run_with_failure(fast_fs(), n, ENOSPC);
}

TEST_CASE("faults: EIO at every mutating operation of the scenario") {
  auto total = run_with_failure(fast_fs(), UINT64_MAX, EIO);
  for (uint64_t n = 0; n <= total; ++n)
    run_with_failure(fast_fs(), n, EIO);
}

TEST_CASE("faults: EIO on the real file system, every 5th operation") {
  auto total = run_with_failure(posix_file_system(), UINT64_MAX, EIO);
  for (uint64_t n = 2; n <= total; n += 5)
    run_with_failure(posix_file_system(), n, EIO);
}

// -- failing fsync ------------------------------------------------------------

namespace {

struct synced_dir {
  temp_dir root;
  std::string path = root / "node";
  std::shared_ptr<faulty_file_system> fs
    = std::make_shared<faulty_file_system>(fast_fs());
  std::optional<data_dir> d;

  synced_dir() {
    d.emplace(data_dir::open(fs, path, me, cluster));
    d->stable->save({7, 1});
    d->log->append(make_entries(7, 1, 5));
    d->log->sync();
    d->snapshots->begin(4);
    d->snapshots->write(4, 0, {1, 2, 3});
  }

  data_dir reopen() {
    d.reset();
    return data_dir::open(fast_fs(), path, me, cluster);
  }
};

} // namespace

TEST_CASE("failing fsync: the log's sync fails and the log stays failed") {
  synced_dir s;
  s.fs->fail_syncs(EIO);
  s.d->log->append(make_entries(7, 6, 8));
  auto e = catch_storage_error([&] { s.d->log->sync(); });
  REQUIRE(e);
  CHECK(e->error_number() == EIO);
  for (int healed = 0; healed < 2; ++healed) {
    CAPTURE(healed);
    CHECK(catch_storage_error([&] { s.d->log->sync(); }));
    CHECK(catch_storage_error([&] { s.d->log->read(1, 5); }));
    CHECK(
      catch_storage_error([&] { s.d->log->append(make_entries(7, 9, 9)); }));
    CHECK(catch_storage_error([&] { s.d->log->truncate_from(2); }));
    s.fs->heal();
  }
  auto d = s.reopen();
  REQUIRE(d.log->last_id().index >= 5); // 6..8 may or may not be there
  CHECK(d.log->read(1, 5) == make_entries(7, 1, 5));
}

TEST_CASE("failing fsync: a hard state save fails, stays failed, and the old "
          "state survives") {
  synced_dir s;
  s.fs->fail_syncs(EIO);
  auto e = catch_storage_error([&] { s.d->stable->save({8, 2}); });
  REQUIRE(e);
  CHECK(e->error_number() == EIO);
  s.fs->heal();
  CHECK(catch_storage_error([&] { s.d->stable->save({8, 2}); }));
  CHECK(catch_storage_error([&] { s.d->stable->load(); }));
  auto d = s.reopen();
  CHECK(d.stable->load() == hard_state{7, 1});
}

TEST_CASE("failing fsync: a snapshot chunk fails, the store stays failed, "
          "acknowledged chunks survive") {
  synced_dir s;
  s.fs->fail_syncs(EIO);
  auto e = catch_storage_error([&] { s.d->snapshots->write(4, 3, {4, 5}); });
  REQUIRE(e);
  CHECK(e->error_number() == EIO);
  s.fs->heal();
  CHECK(catch_storage_error([&] { s.d->snapshots->write(4, 3, {4, 5}); }));
  CHECK(catch_storage_error([&] { s.d->snapshots->write(4, 5, {6}); }));
  CHECK(catch_storage_error([&] {
    s.d->snapshots->finish(4, meta_for({7, 3}, 1));
  }));
  CHECK(catch_storage_error([&] { s.d->snapshots->begin(5); }));
  auto d = s.reopen();
  CHECK(d.snapshots->partial_size(4) >= 3);
  CHECK(d.snapshots->partial_size(4) <= 5);
  CHECK_FALSE(d.snapshots->latest());
}

TEST_CASE("failing fsync: finishing a snapshot fails and nothing is "
          "reported complete") {
  synced_dir s;
  s.fs->fail_syncs(EIO);
  CHECK(catch_storage_error([&] {
    s.d->snapshots->finish(4, meta_for({7, 3}, 1));
  }));
  CHECK_FALSE(s.d->snapshots->latest());
  s.fs->heal();
  CHECK(catch_storage_error([&] {
    s.d->snapshots->finish(4, meta_for({7, 3}, 1));
  }));
  auto d = s.reopen();
  CHECK_FALSE(d.snapshots->latest());
  CHECK(d.snapshots->partial_size(4) == 3);
}

TEST_CASE("failing fsync: repairing a torn tail on open must be durable, or "
          "the open fails") {
  synced_dir s;
  s.d.reset();
  auto seg = segment_paths(s.path + "/log").back();
  append_zeros(seg, 40);
  s.fs->fail_syncs(EIO);
  auto e
    = catch_storage_error([&] { data_dir::open(s.fs, s.path, me, cluster); });
  REQUIRE(e);
  CHECK(e->error_number() == EIO);
  s.fs->heal();
  auto d = data_dir::open(s.fs, s.path, me, cluster);
  CHECK(d.log->read(1, 5) == make_entries(7, 1, 5));
}
