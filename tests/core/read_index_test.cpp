// Rule-by-rule tests of reads without log writes (thesis §6.4): ReadIndex on
// the leader with batched heartbeat rounds, reads served by followers
// through the leader, and leader leases (thesis §6.4.1).
#include "tests/core/core_fixture.hpp"

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

read_request read(uint64_t id, read_mode mode = read_mode::linearizable) {
  return read_request{id, mode};
}

/// A leader of {1,2,3} with lease reads (and check-quorum, which they need).
core_config lease_config(node_id id) {
  auto cfg = make_config(id, false, true);
  cfg.lease_reads = true;
  return cfg;
}

std::vector<uint64_t> ready_ids(const std::vector<command>& cmds) {
  std::vector<uint64_t> out;
  for (const auto& r : pick<read_ready>(cmds))
    out.push_back(r.request_id);
  return out;
}

} // namespace

TEST_CASE("thesis §6.4 a read on a new leader waits until an entry of its "
          "term commits, then needs a quorum round and the state machine at "
          "the read index") {
  auto h = make_leader(1, {1, 2, 3});
  h.clear();
  h.step(read(1));
  CHECK(full_trace(h.last).empty());
  h.persist_all();
  CHECK(full_trace(h.last).empty());
  h.deliver(append_ack(2, 1, 2, 2)); // the blank entry commits
  CHECK(h.core.commit_index() == 2);
  CHECK(full_trace(h.last) == "send:append->2 send:append->3 apply");
  for (const auto& beat : sent<append_entries_request>(h.last))
    CHECK(beat.round == 1);
  h.deliver(append_ack_round(3, 1, 2, 2, 1)); // round 1 confirmed
  CHECK(full_trace(h.last).empty());          // but 2 is not applied yet
  h.step(entries_applied{2});
  CHECK(full_trace(h.last) == "read_ready");
  auto r = pick<read_ready>(h.last).at(0);
  CHECK(r.request_id == 1);
  CHECK(r.read_index == 2);
}

TEST_CASE("thesis §6.4 reads arriving while a round is in flight share the "
          "next round: one round serves several reads") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.step(read(1));
  CHECK(full_trace(h.last) == "send:append->2 send:append->3");
  h.step(read(2));
  CHECK(full_trace(h.last).empty());
  h.step(read(3));
  CHECK(full_trace(h.last).empty());
  h.deliver(append_ack_round(2, 1, 2, 2, 1));
  CHECK(full_trace(h.last) == "read_ready send:append->2 send:append->3");
  CHECK(ready_ids(h.last) == std::vector<uint64_t>{1});
  for (const auto& beat : sent<append_entries_request>(h.last))
    CHECK(beat.round == 2);
  h.deliver(append_ack_round(3, 1, 2, 2, 2));
  CHECK(full_trace(h.last) == "read_ready read_ready");
  CHECK(ready_ids(h.last) == std::vector<uint64_t>{2, 3});
  CHECK(sent<append_entries_request>(h.history).size() == 4); // two rounds
}

TEST_CASE("thesis §6.4 a response to a round sent before the read arrived "
          "does not confirm the read") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.fire_deadline(); // heartbeat round 1, before the read
  REQUIRE(sent<append_entries_request>(h.last).at(0).round == 1);
  h.step(read(1));
  CHECK(full_trace(h.last).empty()); // round 1 is still in flight
  h.deliver(append_ack_round(2, 1, 2, 2, 1));
  CHECK(pick<read_ready>(h.last).empty());
  CHECK(full_trace(h.last) == "send:append->2 send:append->3"); // round 2
  h.deliver(append_ack_round(3, 1, 2, 2, 1));
  CHECK(full_trace(h.last).empty());
  h.deliver(append_ack_round(3, 1, 2, 2, 2));
  CHECK(full_trace(h.last) == "read_ready");
}

TEST_CASE("thesis §6.4 a single-voter leader confirms a read by itself and "
          "answers once the read index is applied") {
  auto h = make_leader_with(1, voters_of({1}));
  h.persist_all();
  REQUIRE(h.core.commit_index() == 2);
  h.clear();
  h.step(read(1));
  CHECK(full_trace(h.last).empty());
  h.step(entries_applied{2});
  CHECK(full_trace(h.last) == "read_ready");
  h.step(read(2));
  CHECK(full_trace(h.last) == "read_ready");
  CHECK(pick<read_ready>(h.last).at(0).read_index == 2);
}

TEST_CASE("thesis §6.4 a follower read: the leader confirms a round and "
          "answers the read index; the follower serves it once applied") {
  auto l = make_settled_leader(1, voters_of({1, 2, 3}));
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  f.deliver(
    append_request(1, 2, 2, {0, 1}, {make_entry(2, 2, entry_kind::blank)}, 1));
  f.persist_all();
  f.clear();

  f.step(read(5));
  CHECK(full_trace(f.last) == "send:read_index->1");
  auto req = sent<read_index_request>(f.last).at(0);
  CHECK(req.term == 2);
  relay(f.last, l, false);
  CHECK(full_trace(l.last) == "send:append->2 send:append->3");
  auto answers = relay(l.last, f); // f acks round 1, commits and applies 2
  CHECK(pick<apply_entries>(answers).size() == 1);
  relay(answers, l, false);
  CHECK(full_trace(l.last) == "send:read_index_resp->2");
  auto resp = sent<read_index_response>(l.last).at(0);
  CHECK(resp.success);
  CHECK(resp.read_id == req.read_id);
  CHECK(resp.read_index == 2);
  relay(l.last, f, false);
  CHECK(full_trace(f.last).empty()); // 2 is not applied yet
  f.step(entries_applied{2});
  CHECK(full_trace(f.last) == "read_ready");
  CHECK(pick<read_ready>(f.last).at(0).request_id == 5);
  CHECK(pick<read_ready>(f.last).at(0).read_index == 2);
}

TEST_CASE("thesis §6.4 a follower read fails with not_leader when the "
          "leader changes, and with timeout after election_timeout_max") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  f.deliver(append_request(1, 2, 2, {0, 1}, {}, 1));
  f.clear();
  f.step(read(5));
  SUBCASE("leader change") {
    f.deliver(append_request(3, 2, 3, {0, 1}, {}, 1));
    auto failed = pick<request_failed>(f.last);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].request_id == 5);
    CHECK(failed[0].error == raft_error::not_leader);
    // A late answer of the old leader changes nothing.
    f.deliver(read_index_resp(1, 2, 2, 1, true, 1));
    CHECK(pick<read_ready>(f.last).empty());
    CHECK(pick<request_failed>(f.last).empty());
  }
  SUBCASE("no answer") {
    auto asked = f.now;
    f.now += election_timeout / 2;
    f.deliver(append_request(1, 2, 2, {0, 1}, {}, 1)); // leader still alive
    f.fire_deadline();
    CHECK(f.now == asked + election_timeout);
    CHECK(trace(f.last) == "request_failed set_timer");
    auto e = pick<request_failed>(f.last).at(0);
    CHECK(e.request_id == 5);
    CHECK(e.error == raft_error::timeout);
    CHECK(f.core.role() == node_role::follower);
  }
}

TEST_CASE("thesis §6.4 a leader that loses leadership fails its unconfirmed "
          "reads with not_leader, local and forwarded") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.step(read(1));
  h.deliver(read_index_req(3, 1, 2, 77));
  REQUIRE(pick<read_ready>(h.history).empty());
  h.deliver(append_ack(2, 1, 3, 2)); // a newer term
  CHECK(full_trace(h.last)
        == "request_failed send:read_index_resp->3 save_hard_state set_timer "
           "role_changed");
  auto e = pick<request_failed>(h.last).at(0);
  CHECK(e.request_id == 1);
  CHECK(e.error == raft_error::not_leader);
  auto r = sent<read_index_response>(h.last).at(0);
  CHECK(r.read_id == 77);
  CHECK_FALSE(r.success);
  // A late confirmation of the old round serves nothing.
  h.deliver(append_ack_round(3, 1, 2, 2, 1));
  CHECK(pick<read_ready>(h.last).empty());
}

TEST_CASE("thesis §6.4.1 with lease_reads a leader serves lease reads "
          "without a round until election_timeout_min - max_clock_drift "
          "after the last confirmed round was sent, then uses a round") {
  auto cfg = lease_config(1);
  auto h = make_settled_leader(1, voters_of({1, 2, 3}), {1, no_node}, {}, cfg);
  auto lease = cfg.election_timeout_min - cfg.max_clock_drift;
  auto sent_at = h.now;
  h.step(read(1, read_mode::lease)); // no lease yet: a round
  CHECK(full_trace(h.last) == "send:append->2 send:append->3");
  h.now += 5ms;
  h.deliver(append_ack_round(2, 1, 2, 2, 1));
  CHECK(full_trace(h.last) == "read_ready");

  h.now = sent_at + lease - 1ms;
  h.step(read(2, read_mode::lease));
  CHECK(full_trace(h.last) == "read_ready");
  CHECK(pick<read_ready>(h.last).at(0).read_index == 2);

  h.now = sent_at + lease;
  h.step(read(3, read_mode::lease));
  CHECK(full_trace(h.last) == "send:append->2 send:append->3");
  h.deliver(append_ack_round(3, 1, 2, 2, 2));
  CHECK(full_trace(h.last) == "read_ready");
  // The new round renewed the lease from when it was sent.
  h.now = sent_at + 2 * lease - 1ms;
  h.step(read(4, read_mode::lease));
  CHECK(full_trace(h.last) == "read_ready");
  // A linearizable read always takes a round.
  h.step(read(5));
  CHECK(full_trace(h.last) == "send:append->2 send:append->3");
}

TEST_CASE("thesis §6.4.1 lease reads are off by default: read_mode::lease "
          "then takes a round like a linearizable read") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}), {1, no_node}, {},
                               make_config(1, false, true));
  REQUIRE_FALSE(h.core.configuration().lease_reads);
  h.step(read(1, read_mode::lease));
  CHECK(full_trace(h.last) == "send:append->2 send:append->3");
  h.deliver(append_ack_round(2, 1, 2, 2, 1));
  CHECK(full_trace(h.last) == "read_ready");
  h.now += 1ms;
  h.step(read(2, read_mode::lease));
  CHECK(full_trace(h.last) == "send:append->2 send:append->3");
}

TEST_CASE("thesis §6.4.1 a configuration with lease_reads but without "
          "check_quorum is rejected") {
  auto cfg = make_config(1, false, false);
  cfg.lease_reads = true;
  CHECK(cfg.validate().find("check_quorum") != std::string::npos);
  CHECK_THROWS_AS(raft_core(cfg, make_recovered(voters_of({1, 2, 3}), {1, 0}),
                            clock_reading{start_time, 0}),
                  std::invalid_argument);
  cfg.check_quorum = true;
  CHECK(cfg.validate().empty());
  CHECK_NOTHROW(raft_core(cfg, make_recovered(voters_of({1, 2, 3}), {1, 0}),
                          clock_reading{start_time, 0}));
}

TEST_CASE("thesis §6.4.1 with lease_reads a freshly started node refuses "
          "votes for election_timeout_min") {
  SUBCASE("lease reads on") {
    auto f = make_node(2, {1, 2, 3}, {1, no_node}, {}, lease_config(2));
    f.now += election_timeout - 1ms;
    f.deliver(vote_request(3, 2, 2, {1, 1}));
    CHECK(trace(f.last) == "send:vote_resp->3");
    CHECK_FALSE(sent<request_vote_response>(f.last).at(0).vote_granted);
    CHECK(f.core.current_term() == 1);
    f.now += 1ms;
    f.deliver(vote_request(3, 2, 2, {1, 1}));
    CHECK(f.core.voted_for() == 3);
    f.persist_all();
    CHECK(sent<request_vote_response>(f.last).at(0).vote_granted);
  }
  SUBCASE("lease reads off: the same vote is granted at once") {
    auto f
      = make_node(2, {1, 2, 3}, {1, no_node}, {}, make_config(2, false, true));
    f.now += election_timeout - 1ms;
    f.deliver(vote_request(3, 2, 2, {1, 1}));
    CHECK(f.core.voted_for() == 3);
  }
}

TEST_CASE("thesis §6.4 with 5 voters two follower answers (three with the "
          "leader) confirm a round and one does not (regression \"read "
          "quorum computed as majority - 1\")") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3, 4, 5}));
  h.step(read(1));
  REQUIRE(sent<append_entries_request>(h.last).size() == 4);
  h.deliver(append_ack_round(2, 1, 2, 2, 1));
  CHECK(pick<read_ready>(h.last).empty());
  h.deliver(append_ack_round(3, 1, 2, 2, 1));
  CHECK(full_trace(h.last) == "read_ready");
}
