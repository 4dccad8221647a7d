// Rule-by-rule tests of leadership transfer (thesis §3.10): the leader
// stops taking requests, brings the target up to date, sends TimeoutNow;
// the target campaigns at once and its votes bypass leader stickiness.
#include "tests/core/core_fixture.hpp"

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

transfer_leadership transfer_to(uint64_t request_id, node_id target) {
  transfer_leadership t;
  t.request_id = request_id;
  t.target = target;
  return t;
}

/// Follower `id` of {1,2,3} in term 2 that just heard from leader 1, with
/// pre-vote and check-quorum on (so it is in the leader's lease).
harness sticky_follower(node_id id) {
  auto f
    = make_node(id, {1, 2, 3}, {2, no_node}, {}, make_config(id, true, true));
  f.deliver(append_request(1, id, 2, {0, 1}, {}, 1));
  REQUIRE(f.core.leader_id() == 1);
  f.clear();
  return f;
}

} // namespace

TEST_CASE("thesis §3.10 a transfer to a caught-up voter sends TimeoutNow at "
          "once") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.step(transfer_to(9, 2));
  CHECK(full_trace(h.last) == "send:timeout_now->2");
  auto t = sent<timeout_now_request>(h.last).at(0);
  CHECK(t.term == 2);
  CHECK(t.header.from == 1);
  CHECK(h.core.role() == node_role::leader);
}

TEST_CASE("thesis §3.10 a transfer to a lagging voter first replicates and "
          "sends TimeoutNow when the target's ack reaches the last index") {
  auto cfg = make_config(1);
  cfg.max_entries_per_append = 1;
  cfg.max_inflight_appends = 1;
  auto h = make_settled_leader(1, voters_of({1, 2, 3}), {1, no_node}, {}, cfg);
  h.propose(1); // entry 3 goes out
  h.propose(2); // entry 4 waits for the window
  REQUIRE(sent_to<append_entries_request>(h.last, 2).empty());
  h.step(transfer_to(9, 2));
  CHECK(full_trace(h.last).empty());
  h.deliver(append_ack(2, 1, 2, 3));
  CHECK(full_trace(h.last) == "send:append->2");
  CHECK(ids_of(sent<append_entries_request>(h.last).at(0).entries)
        == std::vector<log_id>{{2, 4}});
  h.deliver(append_ack(2, 1, 2, 4));
  CHECK(full_trace(h.last) == "send:timeout_now->2");
}

TEST_CASE("thesis §3.10 during a transfer the leader refuses proposals, "
          "reads and changes with leadership_transfer_in_progress naming the "
          "target") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.step(transfer_to(9, 2));
  auto last = h.core.log().last_id();
  auto expect_refused = [&](uint64_t id) {
    CHECK(full_trace(h.last) == "request_failed");
    auto f = pick<request_failed>(h.last).at(0);
    CHECK(f.request_id == id);
    CHECK(f.error == raft_error::leadership_transfer_in_progress);
    CHECK(f.leader_hint == 2);
  };
  h.propose(10);
  expect_refused(10);
  h.step(read_request{11, read_mode::linearizable});
  expect_refused(11);
  h.step(read_request{12, read_mode::lease});
  expect_refused(12);
  h.step(transfer_to(13, 3));
  expect_refused(13);
  CHECK(h.core.log().last_id() == last);
}

TEST_CASE("thesis §3.10 the target of TimeoutNow campaigns at once, without "
          "pre-vote, flagging its vote requests as a leadership transfer") {
  auto f = sticky_follower(2);
  f.deliver(timeout_now(1, 2, 2));
  CHECK(f.core.role() == node_role::candidate);
  CHECK(f.core.current_term() == 3);
  CHECK(f.core.voted_for() == 2);
  CHECK(trace(f.last) == "save_hard_state role_changed");
  f.persist_all();
  CHECK(trace(f.last) == "send:vote->1 send:vote->3");
  for (const auto& v : sent<request_vote_request>(f.last)) {
    CHECK(v.term == 3);
    CHECK_FALSE(v.pre_vote);
    CHECK(v.leadership_transfer);
  }
}

TEST_CASE("thesis §4.2.3 a follower in its leader's lease still grants a "
          "vote flagged as a leadership transfer") {
  auto f = sticky_follower(3);
  auto req = vote_request(2, 3, 3, {2, 2});
  SUBCASE("not flagged: refused, term unchanged") {
    f.deliver(req);
    CHECK(trace(f.last) == "send:vote_resp->2");
    CHECK_FALSE(sent<request_vote_response>(f.last).at(0).vote_granted);
    CHECK(f.core.current_term() == 2);
  }
  SUBCASE("flagged: granted once the vote is durable") {
    req.leadership_transfer = true;
    f.deliver(req);
    CHECK(f.core.current_term() == 3);
    CHECK(f.core.voted_for() == 2);
    f.persist_all();
    auto r = sent<request_vote_response>(f.last).at(0);
    CHECK(r.vote_granted);
    CHECK(r.term == 3);
  }
}

TEST_CASE("thesis §3.10 the old leader answers the transfer once it learns "
          "that the target leads") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.step(transfer_to(9, 2));
  auto vote = vote_request(2, 1, 3, {2, 2});
  vote.leadership_transfer = true;
  h.deliver(vote);
  CHECK(h.core.role() == node_role::follower);
  CHECK(pick<request_succeeded>(h.last).empty());
  CHECK(pick<request_failed>(h.last).empty());
  h.persist_all();
  CHECK(sent<request_vote_response>(h.last).at(0).vote_granted);
  h.deliver(
    append_request(2, 1, 3, {2, 2}, {make_entry(3, 3, entry_kind::blank)}, 2));
  CHECK(h.core.leader_id() == 2);
  REQUIRE(pick<request_succeeded>(h.last).size() == 1);
  CHECK(pick<request_succeeded>(h.last)[0].request_id == 9);
  // The next heartbeat does not answer it again.
  h.deliver(append_request(2, 1, 3, {3, 3}, {}, 3));
  CHECK(pick<request_succeeded>(h.last).empty());
}

TEST_CASE("thesis §3.10 a transfer that does not finish within "
          "election_timeout_max fails with timeout and the leader accepts "
          "proposals again") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  auto started = h.now;
  h.step(transfer_to(9, 2));
  REQUIRE(sent<timeout_now_request>(h.last).size() == 1);
  while (pick<request_failed>(h.last).empty()) {
    REQUIRE(h.now < started + election_timeout);
    h.fire_deadline();
  }
  CHECK(h.now == started + election_timeout);
  auto f = pick<request_failed>(h.last).at(0);
  CHECK(f.request_id == 9);
  CHECK(f.error == raft_error::timeout);
  CHECK(h.core.role() == node_role::leader);
  h.propose(10);
  CHECK(pick<proposal_accepted>(h.last).size() == 1);
}

TEST_CASE("thesis §3.10 a transfer to the leader itself succeeds at once; to "
          "a non-voter it fails with unknown_node; on a follower with "
          "not_leader") {
  auto h = make_settled_leader(1, members_of({1, 2, 3}, {4}));
  h.step(transfer_to(9, 1));
  CHECK(full_trace(h.last) == "request_succeeded");
  h.propose(10); // no transfer is in progress
  CHECK(pick<proposal_accepted>(h.last).size() == 1);
  for (node_id target : {node_id{4}, node_id{7}}) {
    CAPTURE(target);
    h.step(transfer_to(11, target));
    CHECK(full_trace(h.last) == "request_failed");
    CHECK(pick<request_failed>(h.last).at(0).error == raft_error::unknown_node);
  }
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  f.deliver(append_request(1, 2, 2, {0, 1}, {}, 1));
  f.step(transfer_to(12, 3));
  CHECK(full_trace(f.last) == "request_failed");
  auto e = pick<request_failed>(f.last).at(0);
  CHECK(e.error == raft_error::not_leader);
  CHECK(e.leader_hint == 1);
}

TEST_CASE("thesis §3.10 only the election started by TimeoutNow is flagged "
          "as a leadership transfer; a later election of the same node is "
          "not") {
  // Regression: transfer_campaign_ was cleared only in become_follower and
  // become_leader, so a target whose transfer election timed out kept
  // flagging every later (pre-)vote request and bypassed leader stickiness
  // (thesis §4.2.3) indefinitely.
  auto f = sticky_follower(2);
  f.deliver(timeout_now(1, 2, 2));
  f.persist_all();
  REQUIRE(f.core.role() == node_role::candidate);
  f.fire_deadline(); // the transfer election failed: campaign normally
  f.persist_all();
  auto reqs = sent<request_vote_request>(f.history);
  REQUIRE(reqs.size() == 4);
  CHECK(reqs[2].pre_vote);
  CHECK_FALSE(reqs[2].leadership_transfer);
  CHECK_FALSE(reqs[3].leadership_transfer);
}
