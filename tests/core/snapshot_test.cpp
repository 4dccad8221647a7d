// Rule-by-rule tests of snapshots and log compaction (§7): when to build a
// snapshot, purging the log, streaming one to a follower in chunks, and
// installing a received one.
#include "tests/core/core_fixture.hpp"

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

core_config snapshot_config(node_id id, index_t interval, index_t trailing) {
  auto cfg = make_config(id);
  cfg.snapshot_interval = interval;
  cfg.snapshot_trailing_entries = trailing;
  return cfg;
}

/// Follower 2 of {1,2,3} in term 2 receives entries (2,2)..(2,last) from
/// leader 1 with leader_commit `last`, and makes them durable.
void feed(harness& f, index_t from, index_t last) {
  std::vector<term_t> terms(last - from + 1, 2);
  auto prev = f.core.log().last_id();
  f.deliver(append_request(1, f.core.id(), 2, prev,
                           entries_with_terms(from, terms), last));
  f.persist_every_write();
}

/// Leader 1 of {1,2,3} in term 2 recovered from snapshot (1,4) (id 77) with
/// no log entries after it; its blank entry is (2,5).
harness leader_with_snapshot(core_config cfg) {
  harness h(cfg, make_recovered_snapshot(voters_of({1, 2, 3}), {1, no_node},
                                         {1, 4}, 77, {1, 4}, {}, 4));
  elect(h);
  h.persist_all();
  h.clear();
  return h;
}

/// Makes the leader's follower 2 reject its probe with an empty log: it needs
/// the compacted entries.
void reject_from_empty_follower(harness& h) {
  h.deliver(append_reject(2, 1, 2, 4, 0, 1, 0));
}

} // namespace

// -- taking snapshots ---------------------------------------------------------

TEST_CASE("§7 with snapshot_interval N the core asks for a snapshot of "
          "last_applied (with the membership there) only when nothing is "
          "being applied and N entries were applied since the last one") {
  auto f = make_node_with(2, members_of({1, 2, 3}, {4}), {2, no_node}, {},
                          snapshot_config(2, 3, 1024));
  feed(f, 2, 4);
  REQUIRE(pick<apply_entries>(f.last).size() == 1);
  f.step(entries_applied{3}); // 4 is still being applied
  CHECK(full_trace(f.last).empty());
  f.step(entries_applied{4});
  CHECK(full_trace(f.last) == "build_snapshot");
  auto b = pick<build_snapshot>(f.last).at(0);
  CHECK(b.last_included == log_id{2, 4});
  CHECK(b.config == members_of({1, 2, 3}, {4}));
  f.step(snapshot_built{11, {2, 4}});
  CHECK(full_trace(f.last).empty()); // 1024 trailing entries: no purge
  CHECK(f.core.snapshot_last_included() == log_id{2, 4});

  feed(f, 5, 6);
  f.step(entries_applied{6}); // only 2 since the snapshot
  CHECK(full_trace(f.last).empty());
  feed(f, 7, 7);
  f.step(entries_applied{7});
  CHECK(full_trace(f.last) == "build_snapshot");
  CHECK(pick<build_snapshot>(f.last).at(0).last_included == log_id{2, 7});
}

TEST_CASE("§7 once the snapshot is built the core purges the log up to "
          "last_included - snapshot_trailing_entries") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node}, {}, snapshot_config(2, 3, 1));
  feed(f, 2, 4);
  f.step(entries_applied{4});
  REQUIRE(pick<build_snapshot>(f.last).size() == 1);
  f.step(snapshot_built{11, {2, 4}});
  CHECK(full_trace(f.last) == "purge_log");
  auto p = pick<purge_log>(f.last).at(0);
  CHECK(p.up_to == 3);
  CHECK(p.seq > f.issued_seq);
  CHECK(f.core.log().base_id() == log_id{2, 3});
  CHECK(log_ids(f.core.log()) == std::vector<log_id>{{2, 4}});
  CHECK(f.core.snapshot_last_included() == log_id{2, 4});
  f.persist_every_write();
  CHECK(full_trace(f.last).empty());
}

TEST_CASE("§7 a leader streaming a snapshot postpones the next one (it "
          "would restart the transfer) until the log grew four intervals") {
  auto cfg = make_config(1);
  cfg.snapshot_interval = 2;
  cfg.snapshot_trailing_entries = 1024;
  auto h = leader_with_snapshot(cfg); // snapshot at 4, blank entry at 5
  reject_from_empty_follower(h);      // follower 2 now needs the snapshot
  REQUIRE(h.core.peers().at(2).state == replication_state::snapshot);
  std::vector<index_t> built_at;
  auto commit_and_apply = [&](index_t idx) {
    h.deliver(append_ack(3, 1, 2, idx));
    REQUIRE(h.core.commit_index() == idx);
    h.step(entries_applied{idx});
    if (!pick<build_snapshot>(h.last).empty())
      built_at.push_back(idx);
  };
  commit_and_apply(5);
  for (uint64_t r = 1; r <= 7; ++r) {
    h.propose(r);
    h.persist_all();
    commit_and_apply(5 + r);
  }
  // Without the transfer a snapshot would be due at 6; with it, at 4 + 4*2.
  CHECK(built_at == std::vector<index_t>{12});
}

// -- sending snapshots (leader) -----------------------------------------------

TEST_CASE("§7 a leader whose follower needs compacted entries sends the "
          "first snapshot chunk") {
  auto cfg = make_config(1);
  cfg.snapshot_chunk_bytes = 100;
  auto h = leader_with_snapshot(cfg);
  reject_from_empty_follower(h);
  CHECK(full_trace(h.last) == "send_snapshot_chunk->2");
  auto c = pick<send_snapshot_chunk>(h.last).at(0);
  CHECK(c.max_bytes == 100);
  CHECK(c.request.term == 2);
  CHECK(c.request.header.from == 1);
  CHECK(c.request.snapshot_id == 77);
  CHECK(c.request.last_included == log_id{1, 4});
  CHECK(c.request.config == voters_of({1, 2, 3}));
  CHECK(c.request.offset == 0);
  CHECK(h.core.peers().at(2).state == replication_state::snapshot);
}

TEST_CASE("§7 the leader sends the next chunk at next_offset, and on done "
          "sets match to last_included and resumes AppendEntries") {
  auto h = leader_with_snapshot(make_config(1));
  reject_from_empty_follower(h);
  h.deliver(snapshot_ack(2, 1, 2, 77, 100, false));
  CHECK(full_trace(h.last) == "send_snapshot_chunk->2");
  CHECK(pick<send_snapshot_chunk>(h.last).at(0).request.offset == 100);
  h.deliver(snapshot_ack(2, 1, 2, 77, 250, true));
  CHECK(full_trace(h.last) == "send:append->2");
  CHECK(h.core.peers().at(2).match_index == 4);
  CHECK(h.core.peers().at(2).state == replication_state::probe);
  auto a = sent<append_entries_request>(h.last).at(0);
  CHECK(a.prev_log == log_id{1, 4});
  CHECK(ids_of(a.entries) == std::vector<log_id>{{2, 5}});
  h.deliver(append_ack(2, 1, 2, 5));
  CHECK(h.core.commit_index() == 5);
  CHECK(h.core.peers().at(2).state == replication_state::replicate);
}

TEST_CASE("§7 a snapshot chunk without an answer is sent again after two "
          "heartbeat intervals") {
  auto h = leader_with_snapshot(make_config(1));
  auto sent_at = h.now;
  reject_from_empty_follower(h);
  h.deliver(snapshot_ack(2, 1, 2, 77, 100, false)); // chunk at 100 goes out
  h.fire_deadline();
  CHECK(h.now == sent_at + heartbeat);
  CHECK(pick<send_snapshot_chunk>(h.last).empty());
  h.fire_deadline();
  CHECK(h.now == sent_at + 2 * heartbeat);
  auto again = pick<send_snapshot_chunk>(h.last);
  REQUIRE(again.size() == 1);
  CHECK(again[0].request.offset == 100);
  CHECK(again[0].request.snapshot_id == 77);
}

// -- receiving snapshots (follower) -------------------------------------------

TEST_CASE("§7 a follower writes a chunk at the expected offset and answers "
          "next_offset only once the write is durable") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  auto m = voters_of({1, 2, 3});
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 4}, m, 0, 3, false));
  CHECK(full_trace(f.last) == "write_snapshot_chunk role_changed");
  auto w = pick<write_snapshot_chunk>(f.last).at(0);
  CHECK(w.snapshot_id == 77);
  CHECK(w.offset == 0);
  CHECK(w.data.size() == 3);
  f.persist_every_write();
  CHECK(full_trace(f.last) == "send:install_snapshot_resp->1");
  auto r = sent<install_snapshot_response>(f.last).at(0);
  CHECK(r.next_offset == 3);
  CHECK_FALSE(r.done);
  CHECK(r.snapshot_id == 77);
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 4}, m, 3, 4, false));
  CHECK(full_trace(f.last) == "write_snapshot_chunk");
  CHECK(pick<write_snapshot_chunk>(f.last).at(0).offset == 3);
  f.persist_every_write();
  CHECK(sent<install_snapshot_response>(f.last).at(0).next_offset == 7);
}

TEST_CASE("§7 a chunk at an unexpected offset is not written and is answered "
          "with the expected offset") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  auto m = voters_of({1, 2, 3});
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 4}, m, 0, 3, false));
  f.persist_every_write();
  for (uint64_t offset : {uint64_t{0}, uint64_t{10}}) {
    CAPTURE(offset);
    f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 4}, m, offset, 3, false));
    CHECK(full_trace(f.last) == "send:install_snapshot_resp->1");
    CHECK(sent<install_snapshot_response>(f.last).at(0).next_offset == 3);
  }
}

TEST_CASE("§7 a chunk with offset > 0 of an unknown snapshot is answered "
          "next_offset 0 and starts nothing (regression \"a chunk with "
          "offset > 0 starting a new session\")") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  auto m = voters_of({1, 2, 3});
  f.deliver(snapshot_chunk(1, 2, 2, 78, {2, 4}, m, 3, 3, true));
  CHECK(full_trace(f.last) == "send:install_snapshot_resp->1 role_changed");
  auto r = sent<install_snapshot_response>(f.last).at(0);
  CHECK(r.next_offset == 0);
  CHECK_FALSE(r.done);
  CHECK(f.core.commit_index() == 1);
  // The same chunk again still does not count as a session.
  f.deliver(snapshot_chunk(1, 2, 2, 78, {2, 4}, m, 3, 3, true));
  CHECK(full_trace(f.last) == "send:install_snapshot_resp->1");
  CHECK(sent<install_snapshot_response>(f.last).at(0).next_offset == 0);
}

TEST_CASE("§7 a zero-length final chunk completes the install (regression)") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  auto m = voters_of({1, 2, 3});
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 4}, m, 0, 3, false));
  f.persist_every_write();
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 4}, m, 3, 0, true));
  CHECK(full_trace(f.last) == "install_snapshot");
  f.persist_every_write();
  CHECK(full_trace(f.last) == "send:install_snapshot_resp->1");
  auto r = sent<install_snapshot_response>(f.last).at(0);
  CHECK(r.done);
  CHECK(r.next_offset == 3);
  CHECK(f.core.commit_index() == 4);
}

TEST_CASE("§7 on the last chunk the follower installs the snapshot, keeping "
          "the log suffix only if its log holds last_included") {
  struct row {
    const char* name;
    std::vector<term_t> log_terms; // from index 2
    log_id last_included;
    bool keep;
    std::vector<log_id> log_after;
  };
  for (const auto& r :
       {row{"log holds last_included",
            {1, 1, 1, 1, 1},
            {1, 4},
            true,
            {{1, 5}, {1, 6}}},
        row{"log is shorter", {1}, {2, 4}, false, {}},
        row{
          "log has another term there", {1, 1, 1, 1, 1}, {2, 4}, false, {}}}) {
    std::string name = r.name;
    CAPTURE(name);
    auto f = make_node(2, {1, 2, 3}, {2, no_node},
                       entries_with_terms(2, r.log_terms));
    f.deliver(snapshot_chunk(1, 2, 2, 77, r.last_included, voters_of({1, 2, 3}),
                             0, 3, true));
    CHECK(full_trace(f.last)
          == "write_snapshot_chunk install_snapshot role_changed");
    auto i = pick<install_snapshot>(f.last).at(0);
    CHECK(i.keep_log_suffix == r.keep);
    CHECK(i.last_included == r.last_included);
    CHECK(i.snapshot_id == 77);
    CHECK(i.seq > pick<write_snapshot_chunk>(f.last).at(0).seq);
    CHECK(f.core.log().base_id() == r.last_included);
    CHECK(log_ids(f.core.log()) == r.log_after);
    CHECK(f.core.snapshot_last_included() == r.last_included);
    CHECK(sent<install_snapshot_response>(f.last).empty());
    f.persist_every_write();
    CHECK(sent<install_snapshot_response>(f.last).at(0).done);
  }
}

TEST_CASE("§7 after an install commit_index is last_included, last_applied "
          "waits for entries_applied, and the membership is the snapshot's "
          "(regressions \"last_applied advanced before entries were actually "
          "applied\", \"membership read from a log about to be replaced by a "
          "snapshot\")") {
  auto stale = members_of({1, 2, 3}, {9});
  auto f
    = make_node(2, {1, 2, 3}, {2, no_node}, {membership_entry(1, 2, stale)});
  REQUIRE(f.core.config() == stale);
  auto snap_cfg = members_of({1, 2, 3}, {4});
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 5}, snap_cfg, 0, 3, true));
  REQUIRE(pick<install_snapshot>(f.last).size() == 1);
  CHECK(pick<install_snapshot>(f.last).at(0).config == snap_cfg);
  CHECK(f.core.config() == snap_cfg);
  CHECK(f.core.commit_index() == 5);
  CHECK(f.core.last_applied() == 1);
  f.persist_every_write();
  CHECK(f.core.last_applied() == 1);
  f.step(entries_applied{5});
  CHECK(f.core.last_applied() == 5);
  feed(f, 6, 6);
  CHECK(ids_of(pick<apply_entries>(f.last).at(0).entries)
        == std::vector<log_id>{{2, 6}});
}

TEST_CASE("§7 a snapshot at or below commit_index is answered done without "
          "installing it") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node},
                     entries_with_terms(2, {1, 1, 1}), {}, 4);
  REQUIRE(f.core.commit_index() == 4);
  f.deliver(
    snapshot_chunk(1, 2, 2, 77, {1, 3}, voters_of({1, 2, 3}), 0, 3, false));
  CHECK(full_trace(f.last) == "send:install_snapshot_resp->1 role_changed");
  auto r = sent<install_snapshot_response>(f.last).at(0);
  CHECK(r.done);
  CHECK(r.next_offset == 3);
  CHECK(f.core.log().base_id() == log_id{});
  CHECK(f.core.snapshot_last_included() == log_id{});
}

TEST_CASE("§7 entries handed out for applying before an install are not "
          "handed out again and last_applied never goes backwards "
          "(regression \"snapshot installation racing with applying "
          "entries\")") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  feed(f, 2, 4);
  REQUIRE(ids_of(pick<apply_entries>(f.last).at(0).entries)
          == std::vector<log_id>{{2, 2}, {2, 3}, {2, 4}});
  f.deliver(
    snapshot_chunk(1, 2, 2, 77, {2, 6}, voters_of({1, 2, 3}), 0, 3, true));
  REQUIRE(pick<install_snapshot>(f.last).size() == 1);
  f.persist_every_write();
  feed(f, 7, 7);
  CHECK(ids_of(pick<apply_entries>(f.last).at(0).entries)
        == std::vector<log_id>{{2, 7}});
  CHECK(pick<apply_entries>(f.history).size() == 2);
  f.step(entries_applied{4});
  CHECK(f.core.last_applied() == 4);
  f.step(entries_applied{7});
  CHECK(f.core.last_applied() == 7);
  f.step(entries_applied{6}); // a late report
  CHECK(f.core.last_applied() == 7);
}

TEST_CASE("§7 the membership survives two compactions without a membership "
          "entry in between and a restart from the snapshot (regression "
          "\"membership lost after two compactions\")") {
  auto m = members_of({1, 2, 3}, {4});
  auto f = make_node_with(2, m, {2, no_node}, {}, snapshot_config(2, 2, 0));
  feed(f, 2, 3);
  f.step(entries_applied{3});
  REQUIRE(pick<build_snapshot>(f.last).size() == 1);
  f.step(snapshot_built{1, {2, 3}});
  REQUIRE(f.core.log().base_id() == log_id{2, 3});
  feed(f, 4, 5);
  f.step(entries_applied{5});
  auto b = pick<build_snapshot>(f.last);
  REQUIRE(b.size() == 1);
  CHECK(b[0].last_included == log_id{2, 5});
  CHECK(b[0].config == m);
  f.step(snapshot_built{2, {2, 5}});
  CHECK(f.core.log().base_id() == log_id{2, 5});
  CHECK(f.core.config() == m);

  SUBCASE("restart with the log starting at the snapshot") {
    harness r(make_config(2),
              make_recovered_snapshot(b[0].config, {2, no_node}, {2, 5}, 2,
                                      {2, 5}, {}, 5));
    CHECK(r.core.config() == m);
    CHECK(r.core.commit_index() == 5);
  }
  SUBCASE("restart with trailing entries before the snapshot") {
    harness r(make_config(2), make_recovered_snapshot(
                                b[0].config, {2, no_node}, {2, 5}, 2, {2, 3},
                                entries_with_terms(4, {2, 2}), 5));
    CHECK(r.core.config() == m);
  }
}

TEST_CASE("§7 a recovered snapshot that does not fit the log is rejected "
          "with invalid_argument") {
  auto m = voters_of({1, 2, 3});
  auto build = [&](log_id snapshot, log_id base, std::vector<log_entry> es) {
    return raft_core(make_config(2),
                     make_recovered_snapshot(m, {2, no_node}, snapshot, 7, base,
                                             std::move(es), snapshot.index),
                     clock_reading{start_time, 0});
  };
  CHECK_THROWS_AS(build({1, 3}, {1, 5}, entries_with_terms(6, {1})),
                  std::invalid_argument); // log starts beyond the snapshot
  CHECK_THROWS_AS(build({2, 4}, {1, 2}, entries_with_terms(3, {1, 1})),
                  std::invalid_argument); // the log's entry 4 has term 1
  CHECK_NOTHROW(build({1, 4}, {1, 2}, entries_with_terms(3, {1, 1})));
}

TEST_CASE("§7 the snapshot store has one slot for a snapshot in the making: "
          "a chunk arriving while our own snapshot is stored is dropped, and "
          "starting our own abandons a transfer we were receiving "
          "(regression found by the 5-node actor test)") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node}, {}, snapshot_config(2, 3, 1));
  auto m = voters_of({1, 2, 3});
  // A transfer of a snapshot far ahead starts...
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 40}, m, 0, 3, false));
  REQUIRE(pick<write_snapshot_chunk>(f.last).size() == 1);
  f.persist_every_write();
  // ...then the follower applies enough to build its own: the transfer is
  // abandoned (the store's begin() discards the partial one).
  feed(f, 2, 4);
  f.step(entries_applied{4});
  REQUIRE(pick<build_snapshot>(f.last).size() == 1);
  // While ours is being stored, chunks are neither written nor answered.
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 40}, m, 3, 4, false));
  CHECK(pick<write_snapshot_chunk>(f.last).empty());
  CHECK(sent<install_snapshot_response>(f.last).empty());
  f.deliver(snapshot_chunk(1, 2, 2, 78, {2, 40}, m, 0, 4, false));
  CHECK(pick<write_snapshot_chunk>(f.last).empty());
  CHECK(sent<install_snapshot_response>(f.last).empty());
  // Once stored, the transfer starts over from offset 0.
  f.step(snapshot_built{11, {2, 4}});
  f.persist_every_write();
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 40}, m, 3, 4, false));
  CHECK(full_trace(f.last) == "send:install_snapshot_resp->1");
  CHECK(sent<install_snapshot_response>(f.last).at(0).next_offset == 0);
  f.deliver(snapshot_chunk(1, 2, 2, 77, {2, 40}, m, 0, 3, false));
  CHECK(full_trace(f.last) == "write_snapshot_chunk");
}

// -- snapshots on request -----------------------------------------------------

TEST_CASE("§7 trigger_snapshot builds a snapshot of last_applied even with "
          "compaction off, and answers once it is durable") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node}, {}, snapshot_config(2, 0, 1));
  feed(f, 2, 4);
  f.step(entries_applied{4});
  CHECK(full_trace(f.last).empty()); // interval 0: never on its own
  f.step(trigger_snapshot{41});
  CHECK(full_trace(f.last) == "build_snapshot");
  CHECK(pick<build_snapshot>(f.last).at(0).last_included == log_id{2, 4});
  f.step(snapshot_built{12, {2, 4}});
  CHECK(full_trace(f.last) == "purge_log request_succeeded");
  CHECK(pick<request_succeeded>(f.last).at(0).request_id == 41);
  // Nothing applied since: a second trigger is answered at once.
  f.step(trigger_snapshot{42});
  CHECK(full_trace(f.last) == "request_succeeded");
}

TEST_CASE("§7 a trigger waits for entries being applied, and one that "
          "arrives while an older snapshot is built gets a newer one") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node}, {}, snapshot_config(2, 0, 99));
  feed(f, 2, 4);
  f.step(trigger_snapshot{1}); // 2..4 handed out, not yet applied
  CHECK(full_trace(f.last).empty());
  f.step(entries_applied{4});
  CHECK(full_trace(f.last) == "build_snapshot");
  feed(f, 5, 6);
  f.step(entries_applied{6});
  f.step(trigger_snapshot{2}); // wants 6; the snapshot in the making is 4
  CHECK(full_trace(f.last).empty());
  f.step(snapshot_built{12, {2, 4}});
  CHECK(full_trace(f.last) == "request_succeeded build_snapshot");
  CHECK(pick<request_succeeded>(f.last).at(0).request_id == 1);
  CHECK(pick<build_snapshot>(f.last).at(0).last_included == log_id{2, 6});
  f.step(snapshot_built{13, {2, 6}});
  CHECK(full_trace(f.last) == "request_succeeded");
  CHECK(pick<request_succeeded>(f.last).at(0).request_id == 2);
}
