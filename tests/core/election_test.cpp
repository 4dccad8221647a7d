// Rule-by-rule tests of leader election: terms (§5.1), elections (§5.2), the
// election restriction (§5.4.1), pre-vote (thesis §9.6), and check-quorum with
// leader stickiness (thesis §4.2.3, §6.2).
#include "tests/core/core_fixture.hpp"

#include <set>

using namespace raft_actor;
using namespace raft_actor::test;

// -- §5.1 terms ---------------------------------------------------------------

namespace {

enum class start_role { follower, pre_candidate, candidate, leader };

/// Node 1 of {1,2,3} in term 2 (or 3 once it won an election), in `r`.
harness node_in_role(start_role r) {
  switch (r) {
    case start_role::follower:
      return make_node(1, {1, 2, 3}, {2, no_node});
    case start_role::pre_candidate: {
      auto h = make_node(1, {1, 2, 3}, {2, no_node}, {}, make_config(1, true));
      h.fire_deadline();
      REQUIRE(h.core.role() == node_role::pre_candidate);
      return h;
    }
    case start_role::candidate: {
      auto h = make_node(1, {1, 2, 3}, {2, no_node});
      h.fire_deadline();
      h.persist_all();
      REQUIRE(h.core.role() == node_role::candidate);
      return h;
    }
    case start_role::leader:
      break;
  }
  auto h = make_leader(1, {1, 2, 3}, {2, no_node});
  h.persist_all();
  return h;
}

} // namespace

TEST_CASE("§5.1 a message with a higher term makes any role a follower in that "
          "term, and the new term is persisted") {
  const std::pair<start_role, const char*> roles[]
    = {{start_role::follower, "follower"},
       {start_role::pre_candidate, "pre_candidate"},
       {start_role::candidate, "candidate"},
       {start_role::leader, "leader"}};
  const std::pair<raft_message, const char*> messages[] = {
    {append_request(2, 1, 9, {0, 1}, {}), "append_entries_request"},
    {append_reject(2, 1, 9, 0, 0, 0, 1), "append_entries_response"},
    {vote_response(2, 1, 9, false), "request_vote_response"},
    {vote_response(2, 1, 9, false, true), "pre-vote response"},
    {vote_request(3, 1, 9, {9, 9}), "request_vote_request"},
  };
  for (const auto& [role, role_name] : roles)
    for (const auto& [msg, msg_name] : messages) {
      std::string role_s = role_name, msg_s = msg_name;
      CAPTURE(role_s);
      CAPTURE(msg_s);
      auto h = node_in_role(role);
      REQUIRE(h.core.current_term() < 9);
      h.deliver(msg);
      CHECK(h.core.role() == node_role::follower);
      CHECK(h.core.current_term() == 9);
      auto saves = pick<save_hard_state>(h.last);
      REQUIRE_FALSE(saves.empty());
      CHECK(saves.front().state == hard_state{9, no_node});
      CHECK(h.core.peers().empty());
      if (std::holds_alternative<append_entries_request>(msg))
        CHECK(h.core.leader_id() == 2);
      else
        CHECK(h.core.leader_id() == no_node);
      auto changes = pick<role_changed>(h.last);
      REQUIRE(changes.size() == 1);
      CHECK(changes[0].role == node_role::follower);
      CHECK(changes[0].term == 9);
    }
}

TEST_CASE("§5.1 a request with a stale term is rejected with our term and "
          "changes nothing") {
  auto h = make_node(1, {1, 2, 3}, {5, no_node}, entries_with_terms(2, {3}));

  h.deliver(append_request(2, 1, 4, {3, 2}, {make_entry(4, 3)}, 2));
  CHECK(trace(h.last) == "send:append_resp->2");
  auto resp = sent<append_entries_response>(h.last).at(0);
  CHECK(resp.term == 5);
  CHECK_FALSE(resp.success);
  CHECK(h.core.log().last_id() == log_id{3, 2});
  CHECK(h.core.leader_id() == no_node);
  CHECK(h.core.commit_index() == 1);

  h.deliver(vote_request(3, 1, 4, {4, 9}));
  CHECK(trace(h.last) == "send:vote_resp->3");
  auto vote = sent<request_vote_response>(h.last).at(0);
  CHECK(vote.term == 5);
  CHECK_FALSE(vote.vote_granted);
  CHECK(h.core.voted_for() == no_node);
  CHECK(h.core.current_term() == 5);
}

TEST_CASE("§5.1 responses with a stale term are ignored") {
  SUBCASE("a leader ignores an acknowledgement from an earlier term") {
    auto h = make_leader(1, {1, 2, 3}, {1, no_node});
    REQUIRE(h.core.current_term() == 2);
    h.deliver(append_ack(2, 1, 1, 2));
    CHECK(trace(h.last).empty());
    CHECK(h.core.peers().at(2).match_index == 0);
    // The same acknowledgement in the current term does count.
    h.deliver(append_ack(2, 1, 2, 2));
    CHECK(h.core.peers().at(2).match_index == 2);
  }
  SUBCASE("a candidate does not count a grant from an earlier term") {
    auto h = make_node(1, {1, 2, 3}, {2, no_node});
    h.fire_deadline();
    h.persist_all();
    REQUIRE(h.core.current_term() == 3);
    h.deliver(vote_response(2, 1, 2, true));
    CHECK(h.core.role() == node_role::candidate);
    CHECK(trace(h.last).empty());
    h.deliver(vote_response(2, 1, 3, true));
    CHECK(h.core.role() == node_role::leader);
  }
}

// -- §5.2 leader election -----------------------------------------------------

TEST_CASE("§5.2 a follower that hears nothing becomes a candidate, votes for "
          "itself and persists before asking for votes") {
  auto h = make_node(1, {1, 2, 3}, {1, no_node});
  h.advance(election_timeout - 1us);
  CHECK(h.core.role() == node_role::follower);
  CHECK(trace(h.last) == "set_timer"); // an early timer is only re-armed
  CHECK(pick<set_timer>(h.last)[0].deadline == h.now + 1us);

  h.advance(1us);
  CHECK(h.core.role() == node_role::candidate);
  CHECK(h.core.current_term() == 2);
  CHECK(h.core.voted_for() == 1);
  CHECK(h.core.leader_id() == no_node);
  CHECK(trace(h.last) == "save_hard_state set_timer role_changed");
  CHECK(pick<save_hard_state>(h.last)[0].state == hard_state{2, 1});
  CHECK(pick<set_timer>(h.last)[0].deadline == h.now + election_timeout);
  auto rc = pick<role_changed>(h.last)[0];
  CHECK(rc.role == node_role::candidate);
  CHECK(rc.term == 2);

  // Vote requests leave only once the vote for ourselves is durable.
  auto seq = pick<save_hard_state>(h.last)[0].seq;
  h.step(writes_persisted{seq});
  CHECK(trace(h.last) == "send:vote->2 send:vote->3");
  for (const auto& req : sent<request_vote_request>(h.last)) {
    CHECK(req.term == 2);
    CHECK(req.last_log == log_id{0, 1});
    CHECK_FALSE(req.pre_vote);
    CHECK_FALSE(req.leadership_transfer);
    CHECK(req.header.from == 1);
    CHECK(req.header.cluster_id == test_cluster);
  }
  // One durable vote out of three is not a majority.
  CHECK(h.core.role() == node_role::candidate);
}

TEST_CASE("§5.2 a candidate that wins a majority becomes leader, appends a "
          "blank entry of its term and sends AppendEntries") {
  auto h = make_node(1, {1, 2, 3}, {1, no_node});
  h.fire_deadline();
  h.persist_all();
  h.clear();
  h.deliver(vote_response(2, 1, 2, true));
  CHECK(h.core.role() == node_role::leader);
  CHECK(h.core.leader_id() == 1);
  CHECK(h.core.current_term() == 2);
  CHECK(trace(h.last)
        == "append_log send:append->2 send:append->3 set_timer role_changed");
  auto app = pick<append_log>(h.last).at(0);
  REQUIRE(app.entries.size() == 1);
  CHECK(app.entries[0].id == log_id{2, 2});
  CHECK(app.entries[0].kind == entry_kind::blank);
  CHECK(app.entries[0].leader_time_ms == h.wall_ms);
  CHECK(h.core.log().last_id() == log_id{2, 2});
  for (const auto& req : sent<append_entries_request>(h.last)) {
    CHECK(req.term == 2);
    CHECK(req.prev_log == log_id{0, 1});
    CHECK(ids_of(req.entries) == std::vector<log_id>{{2, 2}});
    CHECK(req.leader_commit == 1);
  }
  CHECK(pick<set_timer>(h.last)[0].deadline == h.now + heartbeat);
  // Not committed: the leader's own write is not durable and nobody acked.
  CHECK(h.core.commit_index() == 1);
}

TEST_CASE("§5.2 a candidate rejected by a majority returns to follower") {
  auto h = make_node(1, {1, 2, 3}, {1, no_node});
  h.fire_deadline();
  h.persist_all();
  h.now += 10ms;
  h.deliver(vote_response(2, 1, 2, false));
  CHECK(h.core.role() == node_role::candidate);
  CHECK(trace(h.last).empty());
  h.deliver(vote_response(3, 1, 2, false));
  CHECK(h.core.role() == node_role::follower);
  CHECK(h.core.current_term() == 2);
  CHECK(h.core.voted_for() == 1); // the vote of this term stays cast
  CHECK(trace(h.last) == "set_timer role_changed");
  CHECK(pick<save_hard_state>(h.last).empty());
}

TEST_CASE("§5.2 a node votes at most once per term: the first candidate gets "
          "the vote, another does not, the same one asking again does") {
  auto h = make_node(1, {1, 2, 3}, {1, no_node});
  h.deliver(vote_request(2, 1, 2, {0, 1}));
  CHECK(h.core.voted_for() == 2);
  CHECK(h.core.current_term() == 2);
  CHECK(trace(h.last) == "save_hard_state save_hard_state role_changed");
  CHECK(pick<save_hard_state>(h.last).back().state == hard_state{2, 2});
  h.persist_all();
  CHECK(trace(h.last) == "send:vote_resp->2");
  auto first = sent<request_vote_response>(h.last).at(0);
  CHECK(first.vote_granted);
  CHECK(first.term == 2);

  h.deliver(vote_request(3, 1, 2, {0, 1}));
  CHECK(trace(h.last) == "send:vote_resp->3");
  auto second = sent<request_vote_response>(h.last).at(0);
  CHECK_FALSE(second.vote_granted);
  CHECK(second.term == 2);
  CHECK(h.core.voted_for() == 2);

  h.deliver(vote_request(2, 1, 2, {0, 1}));
  CHECK(trace(h.last) == "send:vote_resp->2"); // no new write needed
  CHECK(sent<request_vote_response>(h.last).at(0).vote_granted);
}

TEST_CASE("§5.2 the randomized election timeout stays within [min, max] "
          "for every seed") {
  std::set<int64_t> seen;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    auto cfg = make_config(1);
    cfg.election_timeout_max = 150ms;
    cfg.random_seed = seed;
    auto h = make_node(1, {1, 2, 3}, {1, no_node}, {}, cfg);
    auto first = h.core.next_deadline() - h.now;
    CHECK(first >= cfg.election_timeout_min);
    CHECK(first <= cfg.election_timeout_max);
    seen.insert(first.count());
    // The timeout is drawn anew for each election.
    h.fire_deadline();
    REQUIRE(h.core.role() == node_role::candidate);
    auto second = h.core.next_deadline() - h.now;
    CHECK(second >= cfg.election_timeout_min);
    CHECK(second <= cfg.election_timeout_max);
    seen.insert(second.count());
  }
  // The jitter actually varies (split votes would be common otherwise).
  CHECK(seen.size() > 100);

  SUBCASE("an injected generator decides the jitter") {
    for (auto [bits, expected] : {std::pair<uint64_t, raft_duration>{0, 100ms},
                                  {50'000, 150ms},
                                  {50'001, 100ms},
                                  {25'000, 125ms}}) {
      auto cfg = make_config(1);
      cfg.election_timeout_max = 150ms;
      cfg.random = [b = bits] { return b; };
      auto h = make_node(1, {1, 2, 3}, {1, no_node}, {}, cfg);
      CHECK(h.core.next_deadline() - h.now == expected);
    }
  }
}

TEST_CASE("§5.2 a leader sends heartbeats every heartbeat_interval") {
  auto h = make_leader(1, {1, 2, 3});
  h.deliver(append_ack(2, 1, 2, 2));
  h.deliver(append_ack(3, 1, 2, 2));
  REQUIRE(h.core.commit_index() == 2);
  h.advance(heartbeat - 1us);
  CHECK(trace(h.last) == "set_timer");
  h.advance(1us);
  CHECK(trace(h.last) == "send:append->2 send:append->3 set_timer");
  auto beats = sent<append_entries_request>(h.last);
  for (const auto& b : beats) {
    CHECK(b.term == 2);
    CHECK(b.entries.empty());
    CHECK(b.prev_log == log_id{2, 2});
    CHECK(b.leader_commit == 2);
  }
  CHECK(pick<set_timer>(h.last)[0].deadline == h.now + heartbeat);
  h.advance(heartbeat);
  CHECK(trace(h.last) == "send:append->2 send:append->3 set_timer");
  CHECK(sent<append_entries_request>(h.last)[0].round > beats[0].round);
  CHECK(h.core.role() == node_role::leader);
}

TEST_CASE("§5.2 a single-voter cluster elects itself once its vote is durable "
          "and commits its own entries once durable") {
  auto h = make_node(1, {1}, {1, no_node});
  h.fire_deadline();
  CHECK(h.core.role() == node_role::candidate);
  CHECK(trace(h.last) == "save_hard_state set_timer role_changed");

  h.persist_all();
  CHECK(h.core.role() == node_role::leader);
  CHECK(h.core.current_term() == 2);
  CHECK(trace(h.last) == "append_log set_timer role_changed");
  CHECK(h.core.commit_index() == 1); // the blank entry is not durable yet

  h.persist_all();
  CHECK(h.core.commit_index() == 2);
  CHECK(trace(h.last) == "apply");
  CHECK(ids_of(pick<apply_entries>(h.last)[0].entries)
        == std::vector<log_id>{{2, 2}});

  h.propose(77);
  CHECK(trace(h.last) == "append_log proposal_accepted");
  auto acc = pick<proposal_accepted>(h.last)[0];
  CHECK(acc.request_id == 77);
  CHECK(acc.id == log_id{2, 3});
  CHECK(h.core.commit_index() == 2);
  h.persist_all();
  CHECK(h.core.commit_index() == 3);
  CHECK(trace(h.last) == "apply");
  CHECK(ids_of(pick<apply_entries>(h.last)[0].entries)
        == std::vector<log_id>{{2, 3}});
  CHECK(h.core.last_applied() == 1); // until the state machine says so
  h.step(entries_applied{3});
  CHECK(h.core.last_applied() == 3);
}

// -- §5.4.1 election restriction ----------------------------------------------

TEST_CASE("§5.4.1 a vote is refused to a candidate whose log is less "
          "up-to-date: last terms are compared first, then last indexes") {
  // The voter's log ends at (2,3). Regression from async-raft: comparing the
  // index first refused (3,2), whose log is more up-to-date.
  struct row {
    log_id candidate_last;
    bool granted;
  };
  for (auto [last, granted] :
       {row{{1, 10}, false}, row{{2, 2}, false}, row{{2, 3}, true},
        row{{2, 4}, true}, row{{3, 2}, true}}) {
    CAPTURE(last.term);
    CAPTURE(last.index);
    auto h
      = make_node(1, {1, 2, 3}, {2, no_node}, entries_with_terms(2, {2, 2}));
    h.deliver(vote_request(2, 1, 3, last));
    h.persist_all();
    auto resp = sent<request_vote_response>(h.history);
    REQUIRE(resp.size() == 1);
    CHECK(resp[0].vote_granted == granted);
    CHECK(resp[0].term == 3);
    CHECK(h.core.current_term() == 3);
    CHECK(h.core.voted_for() == (granted ? 2 : no_node));
  }
}

// -- thesis §9.6 pre-vote -----------------------------------------------------

TEST_CASE("§9.6 a pre-candidate does not change its term or vote and asks "
          "with term+1 at once") {
  auto h = make_node(1, {1, 2, 3}, {4, 2}, {}, make_config(1, true));
  h.fire_deadline();
  CHECK(h.core.role() == node_role::pre_candidate);
  CHECK(h.core.current_term() == 4);
  CHECK(h.core.voted_for() == 2);
  CHECK(trace(h.last) == "send:vote->2 send:vote->3 set_timer role_changed");
  for (const auto& req : sent<request_vote_request>(h.last)) {
    CHECK(req.pre_vote);
    CHECK(req.term == 5);
    CHECK(req.last_log == log_id{0, 1});
  }
}

TEST_CASE("§9.6 a granted pre-vote answers with the candidate's prospective "
          "term and changes nothing on the voter") {
  auto h = make_node(2, {1, 2, 3}, {4, no_node});
  h.deliver(vote_request(1, 2, 5, {0, 1}, true));
  CHECK(trace(h.last) == "send:vote_resp->1");
  auto resp = sent<request_vote_response>(h.last)[0];
  CHECK(resp.vote_granted);
  CHECK(resp.pre_vote);
  CHECK(resp.term == 5);
  CHECK(h.core.current_term() == 4);
  CHECK(h.core.voted_for() == no_node);

  // A refused pre-vote answers with the voter's own term.
  auto g = make_node(2, {1, 2, 3}, {4, no_node}, entries_with_terms(2, {4}));
  g.deliver(vote_request(1, 2, 5, {0, 1}, true));
  auto no = sent<request_vote_response>(g.last).at(0);
  CHECK_FALSE(no.vote_granted);
  CHECK(no.pre_vote);
  CHECK(no.term == 4);
}

TEST_CASE("§9.6 after a majority of pre-votes the pre-candidate starts a real "
          "election") {
  auto h = make_node(1, {1, 2, 3}, {4, no_node}, {}, make_config(1, true));
  h.fire_deadline();
  h.now += 1ms;
  h.deliver(vote_response(2, 1, 5, true, true));
  CHECK(h.core.role() == node_role::candidate);
  CHECK(h.core.current_term() == 5);
  CHECK(h.core.voted_for() == 1);
  CHECK(trace(h.last) == "save_hard_state set_timer role_changed");
  h.persist_all();
  CHECK(trace(h.last) == "send:vote->2 send:vote->3");
  for (const auto& req : sent<request_vote_request>(h.last)) {
    CHECK_FALSE(req.pre_vote);
    CHECK(req.term == 5);
  }
}

TEST_CASE("§9.6 a pre-vote grant that does not carry term+1 is not counted") {
  auto h = make_node(1, {1, 2, 3}, {4, no_node}, {}, make_config(1, true));
  h.fire_deadline();
  h.deliver(vote_response(2, 1, 4, true, true));
  CHECK(h.core.role() == node_role::pre_candidate);
  CHECK(h.core.current_term() == 4);
}

TEST_CASE("§9.6 a node partitioned away times out repeatedly but rejoins "
          "without raising the leader's term") {
  auto leader = make_leader(1, {1, 2, 3});
  leader.persist_all();
  leader.deliver(append_ack(2, 1, 2, 2));
  leader.propose(1);
  leader.persist_all();
  leader.deliver(append_ack(2, 1, 2, 3));
  REQUIRE(leader.core.commit_index() == 3);

  // Node 3 knew term 2 and the blank entry, then lost touch.
  auto iso = make_node(3, {1, 2, 3}, {2, 1}, entries_with_terms(2, {2}),
                       make_config(3, true));
  for (int i = 0; i < 5; ++i) {
    iso.fire_deadline();
    CHECK(iso.core.role() == node_role::pre_candidate);
    CHECK(iso.core.current_term() == 2);
    CHECK(pick<save_hard_state>(iso.last).empty());
  }
  // Its pre-vote finally arrives: the leader's log is longer, so it is
  // refused, and the leader keeps its term and role.
  auto req = sent_to<request_vote_request>(iso.last, 1).at(0);
  CHECK(req.term == 3);
  leader.deliver(req);
  CHECK(leader.core.role() == node_role::leader);
  CHECK(leader.core.current_term() == 2);
  auto resp = sent<request_vote_response>(leader.last).at(0);
  CHECK_FALSE(resp.vote_granted);
  iso.deliver(resp);
  CHECK(iso.core.current_term() == 2);

  // The next heartbeat brings it back as a follower of term 2.
  leader.fire_deadline();
  auto beat = sent_to<append_entries_request>(leader.last, 3).at(0);
  iso.deliver(beat);
  CHECK(iso.core.role() == node_role::follower);
  CHECK(iso.core.current_term() == 2);
  CHECK(iso.core.leader_id() == 1);
  iso.persist_all(); // it acknowledges the missing entry once durable
  auto answer = sent<append_entries_response>(iso.last).at(0);
  CHECK(answer.success);
  CHECK(answer.match_index == 3);
  leader.deliver(answer);
  CHECK(leader.core.role() == node_role::leader);
  CHECK(leader.core.current_term() == 2);
}

TEST_CASE("§9.6 with check-quorum, a rejoining node whose log is as "
          "up-to-date as the cluster's still cannot disturb the leader") {
  auto leader
    = make_leader(1, {1, 2, 3}, {1, no_node}, {}, make_config(1, false, true));
  leader.persist_all();
  auto f2
    = make_node(2, {1, 2, 3}, {1, no_node}, {}, make_config(2, true, true));
  relay(relay(leader.history, f2), leader, false);
  auto iso = make_node(3, {1, 2, 3}, {2, 1}, entries_with_terms(2, {2}),
                       make_config(3, true, true));
  iso.now = f2.now = leader.now;
  for (int i = 0; i < 3; ++i) {
    iso.fire_deadline();
    CHECK(iso.core.current_term() == 2);
  }
  f2.now = iso.now - election_timeout / 2; // still hears its leader
  relay(leader.history, f2, false);
  f2.now = iso.now;
  auto answers = relay(iso.last, f2, false);
  auto leader_answer = relay(iso.last, leader, false);
  CHECK_FALSE(sent<request_vote_response>(answers).at(0).vote_granted);
  CHECK_FALSE(sent<request_vote_response>(leader_answer).at(0).vote_granted);
  relay(answers, iso, false);
  relay(leader_answer, iso, false);
  CHECK(iso.core.current_term() == 2);
  CHECK(leader.core.current_term() == 2);
  CHECK(f2.core.current_term() == 2);
}

TEST_CASE("§9.6 a single voter with pre-vote wins its pre-vote at once and "
          "becomes a candidate") {
  auto h = make_node(1, {1}, {1, no_node}, {}, make_config(1, true));
  h.fire_deadline();
  CHECK(h.core.role() == node_role::candidate);
  CHECK(h.core.current_term() == 2);
  h.persist_all();
  CHECK(h.core.role() == node_role::leader);
}

// -- check-quorum and leader stickiness (thesis §4.2.3, §6.2) -----------------

TEST_CASE("§4.2.3 a follower that heard from its leader within "
          "election_timeout_min refuses (pre-)votes of a higher term without "
          "adopting it, unless the election is a leadership transfer") {
  auto fresh = [] {
    auto h
      = make_node(2, {1, 2, 3}, {2, no_node}, {}, make_config(2, true, true));
    h.deliver(append_request(1, 2, 2, {0, 1}, {}, 1));
    REQUIRE(h.core.leader_id() == 1);
    h.now += election_timeout - 1us;
    h.clear();
    return h;
  };
  SUBCASE("real vote") {
    auto h = fresh();
    h.deliver(vote_request(3, 2, 3, {2, 5}));
    CHECK(trace(h.last) == "send:vote_resp->3");
    auto r = sent<request_vote_response>(h.last)[0];
    CHECK_FALSE(r.vote_granted);
    CHECK(r.term == 2);
    CHECK(h.core.current_term() == 2);
    CHECK(h.core.voted_for() == no_node);
    CHECK(h.core.leader_id() == 1);
  }
  SUBCASE("pre-vote") {
    auto h = fresh();
    h.deliver(vote_request(3, 2, 3, {2, 5}, true));
    auto r = sent<request_vote_response>(h.last).at(0);
    CHECK_FALSE(r.vote_granted);
    CHECK(r.term == 2);
  }
  SUBCASE("leadership transfer bypasses stickiness") {
    auto h = fresh();
    auto req = vote_request(3, 2, 3, {2, 5});
    req.leadership_transfer = true;
    h.deliver(req);
    CHECK(h.core.current_term() == 3);
    CHECK(h.core.voted_for() == 3);
    h.persist_all();
    CHECK(sent<request_vote_response>(h.last).at(0).vote_granted);
  }
  SUBCASE("once the lease is over the vote is granted") {
    auto h = fresh();
    h.now += 1us;
    h.deliver(vote_request(3, 2, 3, {2, 5}));
    CHECK(h.core.current_term() == 3);
    CHECK(h.core.voted_for() == 3);
  }
}

TEST_CASE("§6.2 a leader that hears from no majority for an election timeout "
          "steps down in the same term") {
  SUBCASE("no follower answers") {
    auto h = make_leader(1, {1, 2, 3}, {1, no_node}, {},
                         make_config(1, false, true));
    auto elected = h.now;
    while (h.now < elected + election_timeout - heartbeat)
      h.fire_deadline();
    CHECK(h.core.role() == node_role::leader);
    h.fire_deadline();
    CHECK(h.now == elected + election_timeout);
    CHECK(h.core.role() == node_role::follower);
    CHECK(h.core.current_term() == 2);
    CHECK(h.core.leader_id() == no_node);
    CHECK(pick<save_hard_state>(h.last).empty());
    CHECK(diagnostics(h.last, severity::info).size() == 1);
    auto rc = pick<role_changed>(h.last).at(0);
    CHECK(rc.role == node_role::follower);
    CHECK(rc.term == 2);
  }
  SUBCASE("one follower of two answering keeps a quorum") {
    auto h = make_leader(1, {1, 2, 3}, {1, no_node}, {},
                         make_config(1, false, true));
    auto elected = h.now;
    for (int round = 1; round <= 3; ++round) {
      h.deliver(append_ack(2, 1, 2, 2));
      while (h.now < elected + round * election_timeout)
        h.fire_deadline();
      CHECK(h.core.role() == node_role::leader);
    }
    // ...until it falls silent too.
    while (h.now < elected + 4 * election_timeout)
      h.fire_deadline();
    CHECK(h.core.role() == node_role::follower);
  }
}
