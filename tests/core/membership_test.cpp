// Rule-by-rule tests of cluster membership changes (thesis §4, paper §6):
// joint consensus C(old,new) -> C(new), configurations taking effect when
// appended, one change at a time, removed servers, and learners.
#include "tests/core/core_fixture.hpp"

#include <set>

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

std::set<node_id> peer_ids(const raft_core& c) {
  std::set<node_id> out;
  for (const auto& kv : c.peers())
    out.insert(kv.first);
  return out;
}

change_membership change_to(uint64_t request_id, std::set<node_id> voters) {
  change_membership c;
  c.request_id = request_id;
  c.voters = std::move(voters);
  return c;
}

add_learner learner_request(uint64_t request_id, node_id id,
                            std::string address = "",
                            bool wait_caught_up = false) {
  add_learner a;
  a.request_id = request_id;
  a.id = id;
  a.address = std::move(address);
  a.wait_caught_up = wait_caught_up;
  return a;
}

} // namespace

// -- joint consensus (thesis §4.3) --------------------------------------------

TEST_CASE("thesis §4.3 change_membership appends C(old,new); a joint "
          "configuration commits only with majorities of both C(old) and "
          "C(new), then the leader appends C(new) and answers once it "
          "commits") {
  auto old_cfg = members_of({1, 2, 3}, {4, 5});
  auto h = make_settled_leader(1, old_cfg);
  h.step(change_to(7, {1, 4, 5}));
  CHECK(trace(h.last)
        == "append_log send:append->2 send:append->3 send:append->4 "
           "send:append->5");
  auto appended = pick<append_log>(h.last).at(0).entries;
  REQUIRE(appended.size() == 1);
  CHECK(appended[0].id == log_id{2, 3});
  auto joint = joint_of(old_cfg, {1, 4, 5});
  CHECK(decoded(appended[0]) == joint);
  CHECK(joint.joint);
  CHECK(joint.old_voters == voters_of({1, 2, 3}).voters);
  CHECK(h.core.config() == joint);
  h.persist_all();
  CHECK(trace(h.last).empty());

  SUBCASE("a majority of C(old) alone does not commit") {
    h.deliver(append_ack(2, 1, 2, 3));
    h.deliver(append_ack(3, 1, 2, 3));
    CHECK(h.core.commit_index() == 2);
    CHECK(pick<append_log>(h.history).size() == 1);
  }
  SUBCASE("a majority of C(new) alone does not commit; adding C(old)'s "
          "majority does, and C(new) follows; the request is answered only "
          "when C(new) commits") {
    h.deliver(append_ack(4, 1, 2, 3));
    CHECK(trace(h.last).empty());
    h.deliver(append_ack(5, 1, 2, 3));
    CHECK(trace(h.last).empty());
    CHECK(h.core.commit_index() == 2);

    h.deliver(append_ack(2, 1, 2, 3));
    CHECK(h.core.commit_index() == 3);
    // C(new) goes to the removed voters too, so they learn of their removal.
    CHECK(trace(h.last)
          == "apply append_log send:append->2 send:append->3 "
             "send:append->4 send:append->5");
    auto cnew = pick<append_log>(h.last).at(0).entries.at(0);
    CHECK(cnew.id == log_id{2, 4});
    CHECK(decoded(cnew) == new_half(joint));
    CHECK_FALSE(decoded(cnew).joint);
    CHECK(h.core.config() == new_half(joint));
    CHECK(pick<request_succeeded>(h.history).empty());

    h.persist_all();
    CHECK(trace(h.last).empty());
    h.deliver(append_ack(4, 1, 2, 4));
    CHECK(h.core.commit_index() == 4);
    CHECK(trace(h.last) == "apply request_succeeded");
    CHECK(pick<request_succeeded>(h.last).at(0).request_id == 7);
    // Once C(new) is committed, the removed voters are no longer tracked.
    CHECK(peer_ids(h.core) == std::set<node_id>{4, 5});
  }
}

TEST_CASE("thesis §4.1 a follower uses a configuration as soon as it is in "
          "its log, before it is committed") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  auto joint = joint_of(voters_of({1, 2, 3}), {1, 2});
  f.deliver(append_request(
    1, 2, 2, {0, 1},
    {make_entry(2, 2, entry_kind::blank), membership_entry(2, 3, joint)}, 1));
  CHECK(trace(f.last) == "append_log role_changed");
  CHECK(f.core.commit_index() == 1);
  CHECK(f.core.config() == joint);
  f.persist_all();
  // C(new) likewise takes effect at once, before C(old,new) committed.
  f.deliver(append_request(1, 2, 2, {2, 3},
                           {membership_entry(2, 4, new_half(joint))}, 1));
  CHECK(f.core.config() == voters_of({1, 2}));
  CHECK(f.core.commit_index() == 1);
}

TEST_CASE("thesis §4.1 a follower whose uncommitted configuration entry is "
          "truncated rolls back to the previous configuration") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  auto joint = joint_of(voters_of({1, 2, 3}), {1, 2});
  f.deliver(append_request(
    1, 2, 2, {0, 1},
    {make_entry(2, 2, entry_kind::blank), membership_entry(2, 3, joint)}, 1));
  f.persist_all();
  REQUIRE(f.core.config() == joint);
  // A leader of term 3 never had the configuration entry.
  f.deliver(append_request(3, 2, 3, {2, 2}, {make_entry(3, 3)}, 1));
  CHECK(trace(f.last)
        == "save_hard_state truncate_log append_log role_changed");
  CHECK(pick<truncate_log>(f.last).at(0).from == 3);
  CHECK(f.core.config() == voters_of({1, 2, 3}));
  CHECK(log_ids(f.core.log()) == std::vector<log_id>{{0, 1}, {2, 2}, {3, 3}});
}

TEST_CASE("thesis §4.3 only one configuration change is in flight: a second "
          "request fails with config_change_in_progress until C(new) "
          "commits") {
  auto old_cfg = members_of({1, 2, 3}, {4});
  auto h = make_settled_leader(1, old_cfg);
  h.step(change_to(7, {1, 2, 4}));
  REQUIRE(h.core.config().joint);
  auto expect_busy = [&](uint64_t id) {
    CHECK(trace(h.last) == "request_failed");
    auto f = pick<request_failed>(h.last).at(0);
    CHECK(f.request_id == id);
    CHECK(f.error == raft_error::config_change_in_progress);
  };
  h.step(change_to(8, {1, 2, 3, 4}));
  expect_busy(8);
  h.step(learner_request(9, 5));
  expect_busy(9);
  // C(old,new) commits and C(new) is appended, but not yet committed.
  h.persist_all();
  h.deliver(append_ack(2, 1, 2, 3));
  h.deliver(append_ack(4, 1, 2, 3));
  REQUIRE(h.core.commit_index() == 3);
  REQUIRE_FALSE(h.core.config().joint);
  h.step(learner_request(10, 5));
  expect_busy(10);
  CHECK(h.core.config() == new_half(joint_of(old_cfg, {1, 2, 4})));
  // Once C(new) commits, the next change is accepted.
  h.persist_all();
  h.deliver(append_ack(2, 1, 2, 4));
  REQUIRE(pick<request_succeeded>(h.last).size() == 1);
  h.step(learner_request(11, 5));
  CHECK(trace(h.last).rfind("append_log", 0) == 0);
  CHECK(h.core.config().learners.count(5) == 1);
}

TEST_CASE("thesis §4.1 a new leader changes the configuration only after an "
          "entry of its own term committed") {
  auto h = make_leader(1, {1, 2, 3});
  h.clear();
  h.step(change_to(7, {1, 2}));
  CHECK(trace(h.last) == "request_failed");
  CHECK(pick<request_failed>(h.last).at(0).error
        == raft_error::config_change_in_progress);
  CHECK(h.core.config() == voters_of({1, 2, 3}));
  settle_leader(h);
  h.step(change_to(8, {1, 2}));
  CHECK(trace(h.last) == "append_log send:append->2 send:append->3");
  CHECK(h.core.config().joint);
}

TEST_CASE("thesis §4.2.1 new voters must be members (unknown_node), and a "
          "learner more than max_learner_lag entries behind is not promoted "
          "(learner_behind)") {
  auto cfg = make_config(1);
  cfg.max_learner_lag = 2;
  auto h = make_leader_with(1, members_of({1, 2, 3}, {4}), {1, no_node},
                            entries_with_terms(2, {1, 1, 1}), cfg);
  REQUIRE(h.core.log().last_index() == 5);
  h.persist_all();
  h.deliver(append_ack(2, 1, 2, 5));
  h.deliver(append_ack(3, 1, 2, 5));
  REQUIRE(h.core.commit_index() == 5);
  h.clear();

  h.step(change_to(7, {1, 2, 9}));
  CHECK(trace(h.last) == "request_failed");
  CHECK(pick<request_failed>(h.last).at(0).error == raft_error::unknown_node);

  h.step(change_to(8, {1, 2, 4}));
  CHECK(trace(h.last) == "request_failed");
  CHECK(pick<request_failed>(h.last).at(0).error == raft_error::learner_behind);
  CHECK(h.core.config() == members_of({1, 2, 3}, {4}));

  h.deliver(append_ack(4, 1, 2, 3)); // now exactly max_learner_lag behind
  h.step(change_to(9, {1, 2, 4}));
  CHECK(pick<request_failed>(h.last).empty());
  CHECK(h.core.config() == joint_of(members_of({1, 2, 3}, {4}), {1, 2, 4}));
}

TEST_CASE("thesis §4.2.2 a leader removed from the configuration keeps "
          "leading until C(new) commits, does not count itself in C(new)'s "
          "majority, then steps down without an election timer") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.step(change_to(7, {2, 3}));
  h.persist_all();
  // C(new) = {2,3} needs both of them, even though the leader holds it.
  h.deliver(append_ack(2, 1, 2, 3));
  CHECK(h.core.commit_index() == 2);
  h.deliver(append_ack(3, 1, 2, 3));
  CHECK(h.core.commit_index() == 3);
  CHECK(trace(h.last) == "apply append_log send:append->2 send:append->3");
  CHECK(h.core.config() == voters_of({2, 3}));
  CHECK(h.core.role() == node_role::leader);
  h.persist_all();

  h.deliver(append_ack(2, 1, 2, 4));
  CHECK(h.core.commit_index() == 3); // leader + node 2 are not a majority
  CHECK(h.core.role() == node_role::leader);
  h.fire_deadline(); // still heartbeats
  CHECK(sent<append_entries_request>(h.last).size() == 2);

  h.deliver(append_ack(3, 1, 2, 4));
  CHECK(h.core.commit_index() == 4);
  CHECK(trace(h.last)
        == "apply request_succeeded diagnostic set_timer role_changed");
  CHECK(pick<request_succeeded>(h.last).at(0).request_id == 7);
  CHECK(pick<set_timer>(h.last).at(0).deadline == raft_duration{0});
  CHECK(h.core.role() == node_role::follower);
  CHECK(h.core.next_deadline() == raft_duration{0});
  h.advance(10 * election_timeout);
  CHECK(h.core.role() == node_role::follower);
  CHECK(h.core.current_term() == 2);
}

TEST_CASE("thesis §4.2.2 a follower removed by C(new) gets no election timer "
          "and never campaigns") {
  auto f = make_node(3, {1, 2, 3}, {2, no_node});
  auto joint = joint_of(voters_of({1, 2, 3}), {1, 2});
  f.deliver(append_request(
    1, 3, 2, {0, 1},
    {make_entry(2, 2, entry_kind::blank), membership_entry(2, 3, joint)}, 1));
  f.persist_all();
  CHECK(f.core.next_deadline() > raft_duration{0}); // still an old voter
  f.deliver(append_request(1, 3, 2, {2, 3},
                           {membership_entry(2, 4, new_half(joint))}, 3));
  CHECK(trace(f.last) == "append_log apply set_timer");
  CHECK(pick<set_timer>(f.last).at(0).deadline == raft_duration{0});
  CHECK(f.core.next_deadline() == raft_duration{0});
  f.persist_all();
  f.advance(10 * election_timeout);
  CHECK(trace(f.last) == "set_timer");
  CHECK(f.core.role() == node_role::follower);
  CHECK(f.core.current_term() == 2);
  CHECK(pick<save_hard_state>(f.history).empty());
}

TEST_CASE("thesis §4.3 a new leader that inherits a committed joint "
          "configuration appends C(new) itself once its term commits") {
  auto joint = joint_of(voters_of({1, 2, 3}), {1, 2});
  auto h = make_leader_with(1, voters_of({1, 2, 3}), {1, no_node},
                            {membership_entry(1, 2, joint)});
  REQUIRE(h.core.config() == joint);
  h.persist_all();
  h.clear();
  h.deliver(append_ack(2, 1, 2, 3));
  CHECK(h.core.commit_index() == 3);
  CHECK(trace(h.last) == "apply append_log send:append->2");
  auto cnew = pick<append_log>(h.last).at(0).entries.at(0);
  CHECK(cnew.id == log_id{2, 4});
  CHECK(decoded(cnew) == voters_of({1, 2}));
  CHECK(peer_ids(h.core) == std::set<node_id>{2, 3}); // 3 until C(new) commits
  h.persist_all();
  h.deliver(append_ack(2, 1, 2, 4));
  CHECK(h.core.commit_index() == 4);
  CHECK(trace(h.last) == "apply"); // nobody asked: nothing to answer
  CHECK(peer_ids(h.core) == std::set<node_id>{2});
}

TEST_CASE("thesis §4.3 a leader that loses leadership with a change pending "
          "answers it unknown_outcome") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.step(change_to(7, {1, 2}));
  h.deliver(append_ack(2, 1, 3, 2)); // a newer term
  CHECK(trace(h.last)
        == "request_failed save_hard_state set_timer role_changed");
  auto f = pick<request_failed>(h.last).at(0);
  CHECK(f.request_id == 7);
  CHECK(f.error == raft_error::unknown_outcome);
  CHECK(h.core.role() == node_role::follower);
  CHECK(h.core.config().joint); // the entry stays in the log and may commit
}

// -- learners (thesis §4.2.1) -------------------------------------------------

TEST_CASE("thesis §4.2.1 add_learner appends a configuration with the "
          "learner, which then receives the log but never counts toward "
          "commit") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.step(learner_request(5, 4, "n4"));
  // The new learner is probed at once with the entry that adds it.
  CHECK(trace(h.last)
        == "append_log send:append->2 send:append->3 send:append->4");
  membership expected = voters_of({1, 2, 3});
  expected.learners[4] = "n4";
  CHECK(decoded(pick<append_log>(h.last).at(0).entries.at(0)) == expected);
  CHECK(h.core.config() == expected);
  CHECK(peer_ids(h.core) == std::set<node_id>{2, 3, 4});
  h.persist_all();

  // A brand-new node with an empty log.
  harness learner(make_config(4), recovered_state{});
  CHECK(learner.core.next_deadline() == raft_duration{0});
  auto pending = h.fire_deadline();
  for (int i = 0; i < 4 && learner.core.log().last_index() < 3; ++i) {
    auto answers = relay(pending, learner);
    pending = relay(answers, h, false);
  }
  CHECK(log_ids(learner.core.log()) == log_ids(h.core.log()));
  CHECK(learner.core.config() == expected);
  CHECK(learner.core.config().is_learner(4));
  CHECK(learner.core.next_deadline() == raft_duration{0});
  CHECK(h.core.peers().at(4).match_index == 3);
  CHECK(h.core.commit_index() == 2); // the learner's ack does not count
  CHECK(pick<request_succeeded>(h.history).empty());

  h.deliver(append_ack(2, 1, 2, 3));
  CHECK(h.core.commit_index() == 3);
  CHECK(trace(h.last) == "apply request_succeeded");
  CHECK(pick<request_succeeded>(h.last).at(0).request_id == 5);
}

TEST_CASE("thesis §4.2.1 a learner never votes: it is asked for no vote and "
          "its vote responses are ignored") {
  auto c = make_node_with(1, members_of({1, 2, 3}, {4}));
  c.fire_deadline();
  c.persist_all();
  CHECK(trace(c.last) == "send:vote->2 send:vote->3");
  c.deliver(vote_response(4, 1, 2, true));
  CHECK(c.core.role() == node_role::candidate);
  CHECK(diagnostics(c.last, severity::warning).size() == 1);
  c.deliver(vote_response(2, 1, 2, true));
  CHECK(c.core.role() == node_role::leader);
}

TEST_CASE("thesis §4.2.1 learner acknowledgements never commit: regressions "
          "\"a leader committing when no voter replicated\" and \"a learner "
          "outside the joint configuration blocking replication or "
          "commit\"") {
  auto old_cfg = members_of({1, 2, 3}, {4, 5});
  auto h = make_settled_leader(1, old_cfg);

  // Only learners replicated entry 3 (plus the leader itself).
  h.propose(1);
  h.persist_all();
  h.deliver(append_ack(4, 1, 2, 3));
  h.deliver(append_ack(5, 1, 2, 3));
  CHECK(h.core.commit_index() == 2);
  h.deliver(append_ack(2, 1, 2, 3));
  CHECK(h.core.commit_index() == 3);
  h.step(entries_applied{3});
  h.clear();

  // Promote 4; learner 5 stays outside the joint configuration, never
  // answers, yet neither blocks commit nor is left without entries.
  h.step(change_to(7, {1, 2, 4}));
  CHECK(sent_to<append_entries_request>(h.last, 5).size() == 1);
  h.persist_all();
  h.deliver(append_ack(2, 1, 2, 4)); // {1,2}: majorities of both halves
  CHECK(h.core.commit_index() == 4);
  CHECK(trace(h.last)
        == "apply append_log send:append->2 send:append->3 send:append->4 "
           "send:append->5");
  CHECK(sent_to<append_entries_request>(h.last, 5).size() == 1); // C(new)
  h.persist_all();
  h.deliver(append_ack(2, 1, 2, 5));
  CHECK(h.core.commit_index() == 5);
  CHECK(trace(h.last) == "apply request_succeeded");
  CHECK(h.core.config() == members_of({1, 2, 4}, {5}));
}

TEST_CASE("thesis §4.2.1 learners stay tracked in peers() with their match "
          "index through a membership change (regression \"learners left "
          "out of match-index tracking during a membership change\")") {
  auto old_cfg = members_of({1, 2, 3}, {4, 5});
  auto h = make_settled_leader(1, old_cfg);
  REQUIRE(h.core.peers().at(5).match_index == 2);
  h.step(change_to(7, {1, 2, 4}));
  CHECK(peer_ids(h.core) == std::set<node_id>{2, 3, 4, 5});
  CHECK(h.core.peers().at(5).match_index == 2);
  h.persist_all();
  h.deliver(append_ack(2, 1, 2, 3));
  h.deliver(append_ack(4, 1, 2, 3));
  REQUIRE_FALSE(h.core.config().joint);
  // Removed voter 3 stays tracked until C(new) commits.
  CHECK(peer_ids(h.core) == std::set<node_id>{2, 3, 4, 5});
  CHECK(h.core.peers().at(5).match_index == 2);
  h.deliver(append_ack(5, 1, 2, 4));
  CHECK(h.core.peers().at(5).match_index == 4);
}

TEST_CASE("thesis §4.2.1 add_learner with wait_caught_up answers only once "
          "the learner's match reached the configuration entry") {
  auto h = make_settled_leader(1, voters_of({1, 2, 3}));
  h.step(learner_request(5, 4, "", true));
  h.persist_all();
  h.deliver(append_ack(2, 1, 2, 3));
  CHECK(h.core.commit_index() == 3);
  CHECK(trace(h.last) == "apply");
  h.deliver(append_ack(4, 1, 2, 2));
  CHECK(pick<request_succeeded>(h.last).empty());
  h.deliver(append_ack(4, 1, 2, 3));
  CHECK(trace(h.last) == "request_succeeded");
  CHECK(pick<request_succeeded>(h.last).at(0).request_id == 5);
}

TEST_CASE("thesis §4.2.1 remove_learner appends a configuration without the "
          "learner and stops tracking it; only learners can be removed") {
  auto h = make_settled_leader(1, members_of({1, 2, 3}, {4}));
  remove_learner r;
  r.request_id = 6;
  r.id = 4;
  h.step(r);
  // The learner still receives the entry that removes it...
  CHECK(trace(h.last)
        == "append_log send:append->2 send:append->3 send:append->4");
  CHECK(h.core.config() == voters_of({1, 2, 3}));
  CHECK(peer_ids(h.core) == std::set<node_id>{2, 3, 4});
  h.persist_all();
  h.deliver(append_ack(2, 1, 2, 3));
  CHECK(trace(h.last) == "apply request_succeeded");
  // ...and is no longer tracked once it commits.
  CHECK(peer_ids(h.core) == std::set<node_id>{2, 3});
  for (node_id not_a_learner : {node_id{2}, node_id{9}}) {
    CAPTURE(not_a_learner);
    r.request_id = 7;
    r.id = not_a_learner;
    h.step(r);
    CHECK(trace(h.last) == "request_failed");
    CHECK(pick<request_failed>(h.last).at(0).error == raft_error::unknown_node);
  }
}

TEST_CASE("thesis §4.2.1 a learner restarting from its recovered log stays a "
          "non-voter without an election timer (regression \"a learner "
          "restarting as a follower\")") {
  auto with_learner = members_of({1, 2, 3}, {4});
  harness l(make_config(4),
            make_recovered(voters_of({1, 2, 3}), {1, no_node},
                           {membership_entry(1, 2, with_learner)}, 2));
  CHECK(l.core.config() == with_learner);
  CHECK(l.core.role() == node_role::follower);
  CHECK(l.core.next_deadline() == raft_duration{0});
  l.advance(10 * election_timeout);
  CHECK(trace(l.last) == "set_timer");
  l.deliver(timeout_now(1, 4, 1));
  CHECK(l.core.role() == node_role::follower);
  CHECK(l.core.current_term() == 1);
  CHECK(pick<save_hard_state>(l.history).empty());
  CHECK(sent<request_vote_request>(l.history).empty());
}

TEST_CASE("thesis §4.3 an election in a joint configuration needs a majority "
          "of both C(old) and C(new)") {
  auto joint = joint_of(members_of({1, 2, 3}, {4, 5}), {1, 4, 5});
  auto c = make_node(1, {1, 2, 3}, {1, no_node},
                     {membership_entry(1, 2, joint)}, {}, 2);
  REQUIRE(c.core.config() == joint);
  c.fire_deadline();
  c.persist_all();
  CHECK(trace(c.last) == "send:vote->4 send:vote->5 send:vote->2 send:vote->3");
  SUBCASE("C(old)'s majority alone does not win") {
    c.deliver(vote_response(2, 1, 2, true));
    c.deliver(vote_response(3, 1, 2, true));
    CHECK(c.core.role() == node_role::candidate);
    c.deliver(vote_response(4, 1, 2, true));
    CHECK(c.core.role() == node_role::leader);
  }
  SUBCASE("C(new)'s majority alone does not win") {
    c.deliver(vote_response(4, 1, 2, true));
    c.deliver(vote_response(5, 1, 2, true));
    CHECK(c.core.role() == node_role::candidate);
    c.deliver(vote_response(2, 1, 2, true));
    CHECK(c.core.role() == node_role::leader);
  }
  SUBCASE("losing C(new) loses the election") {
    c.deliver(vote_response(2, 1, 2, true));
    c.deliver(vote_response(3, 1, 2, true));
    c.deliver(vote_response(4, 1, 2, false));
    c.deliver(vote_response(5, 1, 2, false));
    CHECK(c.core.role() == node_role::follower);
  }
}

TEST_CASE("unsafe recovery: a survivor of a lost majority makes itself the "
          "only voter in a new term, keeps its log and learners, and elects "
          "itself") {
  auto cfg = members_of({1, 2, 3}, {4});
  auto h = make_node_with(2, cfg, {3, 1}, entries_with_terms(2, {2, 3}),
                          make_config(2));
  auto last = h.core.log().last_id();
  unsafe_force_sole_voter req;
  req.request_id = 9;
  h.step(req);
  CHECK(pick<request_succeeded>(h.last).at(0).request_id == 9);
  CHECK(h.core.current_term() == 4);
  CHECK(h.core.voted_for() == 2);
  CHECK(h.core.config() == members_of({2}, {4}));
  auto appended = pick<append_log>(h.last).at(0).entries.at(0);
  CHECK(appended.id == log_id{4, last.index + 1});
  CHECK(decoded(appended) == members_of({2}, {4}));
  CHECK(diagnostics(h.last, severity::error).size() == 1); // loudly
  h.persist_all();
  h.fire_deadline();
  h.persist_all();
  CHECK(h.core.role() == node_role::leader);
  CHECK(h.core.current_term() == 5);
  // Its blank entry commits alone, and with it everything before.
  h.persist_all();
  CHECK(h.core.commit_index() == h.core.log().last_index());
}

TEST_CASE("unsafe recovery: refused on a node without a configuration") {
  auto h = make_node_with(5, membership{}, {0, no_node}, {}, make_config(5));
  unsafe_force_sole_voter req;
  req.request_id = 3;
  h.step(req);
  CHECK(pick<request_failed>(h.last).at(0).error
        == raft_error::not_initialized);
  CHECK(h.core.current_term() == 0);
}
