// The storage worker under CAF's deterministic test scheduler: group
// commit, write ordering, snapshots, failure reporting, and recovery.
#include "actors/storage_worker.hpp"
#include "storage/memory_store.hpp"
#include "storage/storage_error.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace raft_actor;

namespace {

/// A memory log store that records the order of operations and can fail.
struct recording_log : memory_log_store {
  std::shared_ptr<std::vector<std::string>> ops;
  bool fail_sync = false;
  void append(const std::vector<log_entry>& es) override {
    ops->push_back("append");
    memory_log_store::append(es);
  }
  void sync() override {
    ops->push_back("sync");
    if (fail_sync)
      throw storage_error("fsync failed (test)", "/fake/segment", 42, 5);
  }
};

struct recording_stable : memory_stable_store {
  std::shared_ptr<std::vector<std::string>> ops;
  void save(const hard_state& hs) override {
    ops->push_back("save");
    memory_stable_store::save(hs);
  }
};

/// What the listener saw.
struct seen {
  std::vector<std::string> order;
  std::vector<snapshot_installed> installed;
  std::vector<uint64_t> persisted;
  std::vector<snapshot_built> built;
  std::vector<std::string> failures;
};

storage_listener_actor::behavior_type listener(std::shared_ptr<seen> s) {
  return {
    [s](writes_persisted w) {
      s->order.push_back("persisted");
      s->persisted.push_back(w.seq);
    },
    [s](snapshot_built b) { s->built.push_back(b); },
    [s](storage_failed f) { s->failures.push_back(f.what); },
    [s](snapshot_installed& i) {
      s->order.push_back("installed");
      s->installed.push_back(i);
    },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<std::vector<std::string>> ops
    = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<recording_log> log = std::make_shared<recording_log>();
  std::shared_ptr<recording_stable> stable
    = std::make_shared<recording_stable>();
  std::shared_ptr<memory_snapshot_store> snaps
    = std::make_shared<memory_snapshot_store>();
  std::shared_ptr<seen> events = std::make_shared<seen>();
  storage_listener_actor core;
  storage_worker_actor worker;

  fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sys->await_actors_before_shutdown(false);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    log->ops = ops;
    stable->ops = ops;
    core = sys->spawn(listener, events);
    worker = spawn_storage_worker(*sys, node_stores{stable, log, snaps}, core,
                                  false);
  }

  ~fixture() {
    caf::anon_send_exit(worker, caf::exit_reason::kill);
    caf::anon_send_exit(core, caf::exit_reason::kill);
    sched->run();
  }

  void send(std::vector<command> writes) {
    caf::anon_send(worker, storage_writes{std::move(writes)});
  }
};

log_entry entry(term_t term, index_t index) {
  log_entry e;
  e.id = {term, index};
  e.payload = {static_cast<uint8_t>(index)};
  return e;
}

} // namespace

TEST_CASE("storage worker: queued batches share one group commit") {
  fixture f;
  for (index_t i = 1; i <= 50; ++i)
    f.send({append_log{i, {entry(1, i)}}});
  f.sched->run();
  // All 50 batches were queued before the worker ran: one sync, one report
  // naming the last write.
  CHECK(f.events->persisted == std::vector<uint64_t>{50});
  CHECK(std::count(f.ops->begin(), f.ops->end(), "sync") == 1);
  CHECK(f.log->last_id() == log_id{1, 50});
  // A later batch is a new commit.
  f.send({append_log{51, {entry(1, 51)}}});
  f.sched->run();
  CHECK(f.events->persisted == std::vector<uint64_t>{50, 51});
}

TEST_CASE("storage worker: log writes are durable before a later hard state") {
  fixture f;
  f.send({append_log{1, {entry(1, 1)}}, save_hard_state{2, {2, 3}},
          append_log{3, {entry(2, 2)}}});
  f.sched->run();
  CHECK(
    *f.ops
    == std::vector<std::string>{"append", "sync", "save", "append", "sync"});
  CHECK(f.stable->load() == hard_state{2, 3});
  CHECK(f.events->persisted == std::vector<uint64_t>{3});
}

TEST_CASE("storage worker: truncation, compaction and snapshot install") {
  fixture f;
  std::vector<log_entry> es;
  for (index_t i = 1; i <= 10; ++i)
    es.push_back(entry(1, i));
  f.send({append_log{1, es}, truncate_log{2, 8}, purge_log{3, 4}});
  f.sched->run();
  CHECK(f.log->base() == log_id{1, 4});
  CHECK(f.log->last_id() == log_id{1, 7});
  membership m;
  m.voters = {{1, "a"}};
  // Receive a snapshot that the log holds: keep the suffix.
  f.send({write_snapshot_chunk{4, 77, 0, {1, 2}},
          write_snapshot_chunk{5, 77, 2, {3}},
          install_snapshot{6, 77, {1, 5}, m, true}});
  f.sched->run();
  REQUIRE(f.snaps->latest());
  CHECK(f.snaps->latest()->last_included == log_id{1, 5});
  CHECK(f.snaps->read(77, 0, 10) == std::vector<uint8_t>{1, 2, 3});
  CHECK(f.log->base() == log_id{1, 5});
  CHECK(f.log->last_id() == log_id{1, 7});
  // One that replaces the whole log.
  f.send({write_snapshot_chunk{7, 78, 0, {9}},
          install_snapshot{8, 78, {3, 20}, m, false}});
  f.sched->run();
  CHECK(f.log->base() == log_id{3, 20});
  CHECK(f.log->last_id() == log_id{3, 20});
  CHECK(f.events->persisted.back() == 8);
  // Each install hands the data to the core before the batch's report.
  REQUIRE(f.events->installed.size() == 2);
  CHECK(f.events->installed[0].data == std::vector<uint8_t>{1, 2, 3});
  CHECK(f.events->installed[1].last_included == log_id{3, 20});
  CHECK(f.events->order
        == std::vector<std::string>{"persisted", "installed", "persisted",
                                    "installed", "persisted"});
}

TEST_CASE("storage worker: snapshot chunks are read for the snapshot "
          "sender, and a replaced snapshot is not served") {
  fixture f;
  snapshot_meta meta;
  meta.id = 5;
  meta.last_included = {2, 9};
  meta.config.voters = {{1, "a"}};
  caf::anon_send(f.worker, store_snapshot{meta, {1, 2, 3, 4, 5}});
  f.sched->run();
  send_snapshot_chunk cmd;
  cmd.request.snapshot_id = 5;
  cmd.request.offset = 2;
  cmd.max_bytes = 2;
  // A snapshot sender asks and waits for each answer.
  auto chunks = std::make_shared<std::vector<install_snapshot_request>>();
  auto errors = std::make_shared<std::vector<std::string>>();
  auto ask = [&](send_snapshot_chunk c) {
    f.sys->spawn(
      [chunks, errors](caf::event_based_actor* self, storage_worker_actor w,
                       send_snapshot_chunk c) {
        self->request(w, std::chrono::seconds(10), read_snapshot_chunk{c})
          .then(
            [chunks](snapshot_chunk_ready& r) {
              chunks->push_back(std::move(r.request));
            },
            [errors, self](caf::error& e) {
              errors->push_back(self->system().render(e));
            });
      },
      f.worker, c);
    f.sched->run();
  };
  ask(cmd);
  cmd.request.offset = 4;
  ask(cmd);
  cmd.request.snapshot_id = 4; // not the latest
  ask(cmd);
  REQUIRE(chunks->size() == 2);
  CHECK((*chunks)[0].data == std::vector<uint8_t>{3, 4});
  CHECK_FALSE((*chunks)[0].done);
  CHECK((*chunks)[1].data == std::vector<uint8_t>{5});
  CHECK((*chunks)[1].done);
  REQUIRE(errors->size() == 1);
  CHECK(errors->at(0).find("no longer the latest") != std::string::npos);
  CHECK(f.events->failures.empty()); // a stale request is not a failure
}

TEST_CASE("storage worker: a locally built snapshot is stored and reported") {
  fixture f;
  snapshot_meta meta;
  meta.id = 5;
  meta.last_included = {2, 9};
  meta.config.voters = {{1, "a"}};
  caf::anon_send(f.worker, store_snapshot{meta, {4, 5, 6}});
  f.sched->run();
  REQUIRE(f.events->built.size() == 1);
  CHECK(f.events->built[0].snapshot_id == 5);
  CHECK(f.events->built[0].last_included == log_id{2, 9});
  CHECK(f.snaps->latest()->size == 3);
}

TEST_CASE("storage worker: a failed sync is reported and stops the worker") {
  fixture f;
  f.log->fail_sync = true;
  f.send({append_log{1, {entry(1, 1)}}});
  f.sched->run();
  CHECK(f.events->persisted.empty());
  REQUIRE(f.events->failures.size() == 1);
  CHECK(f.events->failures[0].find("/fake/segment") != std::string::npos);
  // Nothing more is acknowledged after the failure.
  f.log->fail_sync = false;
  f.send({append_log{2, {entry(1, 2)}}});
  f.sched->run();
  CHECK(f.events->persisted.empty());
}

TEST_CASE("recover: what the stores hold becomes the core's recovered state") {
  node_stores s{std::make_shared<memory_stable_store>(),
                std::make_shared<memory_log_store>(),
                std::make_shared<memory_snapshot_store>()};
  s.stable->save({4, 2});
  std::vector<log_entry> es;
  for (index_t i = 1; i <= 6; ++i)
    es.push_back(entry(3, i));
  s.log->append(es);
  s.log->purge_to({3, 2});
  s.snapshots->begin(1);
  s.snapshots->write(1, 0, {1});
  snapshot_meta meta;
  meta.last_included = {3, 4};
  meta.config.voters = {{1, "a"}};
  s.snapshots->finish(1, meta);
  auto rec = recover(s);
  CHECK(rec.state == hard_state{4, 2});
  CHECK(rec.snapshot == log_id{3, 4});
  CHECK(rec.snapshot_config == meta.config);
  CHECK(rec.log_base == log_id{3, 2});
  CHECK(rec.entries.size() == 4);
  CHECK(rec.last_applied == 4);
  // And a core accepts it.
  core_config cfg;
  cfg.id = 1;
  raft_core core(cfg, rec, clock_reading{});
  CHECK(core.commit_index() == 4);
  CHECK(core.log().last_index() == 6);
}
