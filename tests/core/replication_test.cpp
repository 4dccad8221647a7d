// Rule-by-rule tests of log replication (§5.3) on both sides and of the
// commit rule (§5.4.2), including the scenario of Figure 8.
#include "tests/core/core_fixture.hpp"

using namespace raft_actor;
using namespace raft_actor::test;

// -- follower side (§5.3) -----------------------------------------------------

TEST_CASE("§5.3 a follower appends new entries and acknowledges match_index "
          "only once they are durable") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  f.deliver(append_request(1, 2, 2, {0, 1}, entries_with_terms(2, {2, 2}), 1));
  CHECK(trace(f.last) == "append_log role_changed");
  CHECK(ids_of(pick<append_log>(f.last)[0].entries)
        == std::vector<log_id>{{2, 2}, {2, 3}});
  CHECK(log_ids(f.core.log()) == std::vector<log_id>{{0, 1}, {2, 2}, {2, 3}});
  CHECK(f.core.leader_id() == 1);
  CHECK(f.core.durable_index() == 1);

  f.persist_all();
  CHECK(trace(f.last) == "send:append_resp->1");
  auto ack = sent<append_entries_response>(f.last)[0];
  CHECK(ack.success);
  CHECK(ack.term == 2);
  CHECK(ack.match_index == 3);
  CHECK(ack.last_log_index == 3);
  CHECK(f.core.durable_index() == 3);
}

TEST_CASE("§5.3 a follower whose log lacks prev_log rejects with conflict "
          "term 0 and conflict index last+1") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node}, entries_with_terms(2, {1}));
  f.deliver(append_request(1, 2, 2, {2, 5}, {make_entry(2, 6)}));
  CHECK(trace(f.last) == "send:append_resp->1 role_changed");
  auto r = sent<append_entries_response>(f.last)[0];
  CHECK_FALSE(r.success);
  CHECK(r.term == 2);
  CHECK(r.rejected_prev_index == 5);
  CHECK(r.conflict_term == 0);
  CHECK(r.conflict_index == 3);
  CHECK(r.last_log_index == 2);
  CHECK(f.core.log().last_id() == log_id{1, 2});
}

TEST_CASE("§5.3 a follower whose entry at prev_log has another term rejects "
          "with that term and the first index it holds for it") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node},
                     entries_with_terms(2, {1, 2, 2, 2}));
  f.deliver(append_request(1, 2, 3, {3, 5}, {make_entry(3, 6)}));
  CHECK(trace(f.last) == "save_hard_state role_changed");
  f.persist_all();
  auto r = sent<append_entries_response>(f.last).at(0);
  CHECK_FALSE(r.success);
  CHECK(r.term == 3);
  CHECK(r.rejected_prev_index == 5);
  CHECK(r.conflict_term == 2);
  CHECK(r.conflict_index == 3);
  CHECK(f.core.log().last_id() == log_id{2, 5}); // nothing deleted
}

TEST_CASE("§5.3 an empty AppendEntries whose prev_log does not match is still "
          "rejected with a conflict hint") {
  // Regression: "conflict not reported when appending an empty entry list".
  auto f = make_node(2, {1, 2, 3}, {2, no_node}, entries_with_terms(2, {1}));
  f.deliver(append_request(1, 2, 2, {2, 2}, {}, 2));
  auto r = sent<append_entries_response>(f.last).at(0);
  CHECK_FALSE(r.success);
  CHECK(r.conflict_term == 1);
  CHECK(r.conflict_index == 2);
  CHECK(f.core.commit_index() == 1); // leader_commit is not trusted
}

TEST_CASE("§5.3 a follower deletes a conflicting entry and all that follow, "
          "keeps the matching ones, then appends") {
  auto f
    = make_node(2, {1, 2, 3}, {2, no_node}, entries_with_terms(2, {1, 2, 2}));
  f.deliver(
    append_request(1, 2, 3, {1, 2}, {make_entry(2, 3), make_entry(3, 4)}));
  CHECK(trace(f.last)
        == "save_hard_state truncate_log append_log role_changed");
  CHECK(pick<truncate_log>(f.last)[0].from == 4);
  CHECK(ids_of(pick<append_log>(f.last)[0].entries)
        == std::vector<log_id>{{3, 4}});
  CHECK(log_ids(f.core.log())
        == std::vector<log_id>{{0, 1}, {1, 2}, {2, 3}, {3, 4}});
  // Sequence numbers increase in issue order.
  CHECK(pick<save_hard_state>(f.last)[0].seq
        < pick<truncate_log>(f.last)[0].seq);
  CHECK(pick<truncate_log>(f.last)[0].seq < pick<append_log>(f.last)[0].seq);
  f.persist_all();
  auto ack = sent<append_entries_response>(f.last).at(0);
  CHECK(ack.success);
  CHECK(ack.match_index == 4);
}

TEST_CASE("§5.3 a duplicated or re-ordered AppendEntries of entries already "
          "present truncates nothing") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  auto full = append_request(1, 2, 2, {0, 1}, entries_with_terms(2, {2, 2, 2}));
  f.deliver(full);
  f.persist_all();
  REQUIRE(f.core.log().last_id() == log_id{2, 4});

  // An older, shorter request arrives late.
  f.deliver(append_request(1, 2, 2, {0, 1}, entries_with_terms(2, {2})));
  CHECK(trace(f.last) == "send:append_resp->1");
  CHECK(sent<append_entries_response>(f.last)[0].match_index == 2);
  CHECK(f.core.log().last_id() == log_id{2, 4});

  f.deliver(append_request(1, 2, 2, {2, 2}, entries_with_terms(3, {2})));
  CHECK(trace(f.last) == "send:append_resp->1");
  CHECK(sent<append_entries_response>(f.last)[0].match_index == 3);

  f.deliver(full);
  CHECK(trace(f.last) == "send:append_resp->1");
  CHECK(sent<append_entries_response>(f.last)[0].match_index == 4);
  CHECK(f.core.log().last_id() == log_id{2, 4});
  CHECK(pick<truncate_log>(f.history).empty());
}

TEST_CASE("§5.3 a request whose entries conflict with a committed entry is "
          "refused with an error diagnostic and changes nothing") {
  auto f = make_node(2, {1, 2, 3}, {2, no_node}, entries_with_terms(2, {1, 1}),
                     {}, /*last_applied=*/3);
  REQUIRE(f.core.commit_index() == 3);
  f.deliver(append_request(1, 2, 2, {1, 2}, {make_entry(2, 3)}, 3));
  auto errors = diagnostics(f.last, severity::error);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].text.find("committed") != std::string::npos);
  CHECK(pick<truncate_log>(f.last).empty());
  CHECK(pick<append_log>(f.last).empty());
  CHECK(pick<save_hard_state>(f.last).empty());
  CHECK(sent<append_entries_response>(f.last).empty());
  CHECK(log_ids(f.core.log()) == std::vector<log_id>{{0, 1}, {1, 2}, {1, 3}});
  CHECK(f.core.commit_index() == 3);
  CHECK(f.core.current_term() == 2);
}

TEST_CASE("§5.3 a follower sets commit_index to min(leader_commit, index of "
          "the last new entry)") {
  SUBCASE("leader_commit beyond the entries") {
    auto f = make_node(2, {1, 2, 3}, {2, no_node});
    f.deliver(append_request(1, 2, 2, {0, 1}, entries_with_terms(2, {2}), 5));
    CHECK(f.core.commit_index() == 2);
  }
  SUBCASE("entries beyond the request may not be the leader's") {
    auto f
      = make_node(2, {1, 2, 3}, {2, no_node}, entries_with_terms(2, {1, 1, 1}));
    f.deliver(append_request(1, 2, 2, {1, 2}, {}, 4));
    CHECK(f.core.commit_index() == 2);
    CHECK(f.core.log().last_index() == 4);
  }
  SUBCASE("leader_commit below the entries") {
    auto f = make_node(2, {1, 2, 3}, {2, no_node});
    f.deliver(
      append_request(1, 2, 2, {0, 1}, entries_with_terms(2, {2, 2}), 2));
    CHECK(f.core.commit_index() == 2);
  }
}

TEST_CASE("§5.3 a follower applies committed entries in order once durable, "
          "and last_applied advances only when the state machine reports") {
  // Regression: last_applied advanced before entries were actually applied.
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  f.deliver(append_request(1, 2, 2, {0, 1}, entries_with_terms(2, {2, 2}), 3));
  CHECK(f.core.commit_index() == 3);
  CHECK(pick<apply_entries>(f.last).empty()); // not durable yet
  f.persist_all();
  CHECK(trace(f.last) == "send:append_resp->1 apply");
  CHECK(ids_of(pick<apply_entries>(f.last)[0].entries)
        == std::vector<log_id>{{2, 2}, {2, 3}});
  CHECK(f.core.last_applied() == 1);

  f.deliver(append_request(1, 2, 2, {2, 3}, entries_with_terms(4, {2}), 4));
  CHECK(pick<apply_entries>(f.last).empty());
  f.persist_all();
  CHECK(ids_of(pick<apply_entries>(f.last).at(0).entries)
        == std::vector<log_id>{{2, 4}});
  CHECK(f.core.last_applied() == 1);

  f.step(entries_applied{3});
  CHECK(f.core.last_applied() == 3);
  CHECK(f.last.empty());
  f.step(entries_applied{4});
  CHECK(f.core.last_applied() == 4);
  f.step(entries_applied{9});
  CHECK(diagnostics(f.last, severity::error).size() == 1);
  CHECK(f.core.last_applied() == 4);
}

// -- leader side (§5.3) -------------------------------------------------------

TEST_CASE("§5.3 fast backtracking skips a whole conflicting term per round "
          "trip") {
  // Regression: "many inconsistent entries live-locking append-entries".
  struct scenario {
    const char* name;
    hard_state leader_hs;
    std::vector<term_t> leader_terms;   // from index 2
    std::vector<term_t> follower_terms; // from index 2
  };
  std::vector<term_t> l1(59, 3), f1(59, 2);
  l1[0] = f1[0] = 1;
  std::vector<term_t> l2(59, 1), f2(39, 2);
  f2[0] = 1;
  for (const auto& sc :
       {scenario{"follower holds 58 entries of a term the leader lacks",
                 {3, no_node},
                 l1,
                 f1},
        scenario{"follower is shorter and its tail has a newer term",
                 {2, no_node},
                 l2,
                 f2}}) {
    std::string name = sc.name;
    CAPTURE(name);
    auto leader = make_leader(1, {1, 2, 3}, sc.leader_hs,
                              entries_with_terms(2, sc.leader_terms));
    leader.persist_all();
    auto f = make_node(2, {1, 2, 3}, {2, no_node},
                       entries_with_terms(2, sc.follower_terms));
    int round_trips = 0;
    auto pending = leader.history;
    while (f.core.log().last_id() != leader.core.log().last_id()
           || leader.core.peers().at(2).match_index
                != leader.core.log().last_index()) {
      REQUIRE(round_trips < 60);
      ++round_trips;
      auto answers = relay(pending, f);
      REQUIRE_FALSE(sent<append_entries_response>(answers).empty());
      pending = relay(answers, leader, false);
    }
    CHECK(round_trips <= 3);
    CHECK(log_ids(f.core.log()) == log_ids(leader.core.log()));
  }
}

TEST_CASE("§5.3 a leader ignores stale rejections: at or below match_index, "
          "or not for the outstanding probe") {
  SUBCASE("replicate state") {
    auto h = make_leader(1, {1, 2, 3});
    h.deliver(append_ack(2, 1, 2, 2));
    h.propose(1);
    REQUIRE(h.core.peers().at(2).state == replication_state::replicate);
    REQUIRE(h.core.peers().at(2).next_index == 4);
    h.deliver(append_reject(2, 1, 2, 2, 0, 2, 1));
    CHECK(trace(h.last).empty());
    CHECK(h.core.peers().at(2).state == replication_state::replicate);
    CHECK(h.core.peers().at(2).next_index == 4);
    CHECK(h.core.peers().at(2).match_index == 2);
  }
  SUBCASE("probe state") {
    auto h = make_leader(1, {1, 2, 3}, {1, no_node},
                         entries_with_terms(2, {1, 1, 1}));
    // The outstanding probe to 3 checks prev (1,4).
    REQUIRE(sent_to<append_entries_request>(h.last, 3).at(0).prev_log
            == log_id{1, 4});
    h.deliver(append_reject(3, 1, 2, 3, 0, 2, 1)); // for an older probe
    CHECK(trace(h.last).empty());
    CHECK(h.core.peers().at(3).next_index == 5);
    h.deliver(append_reject(3, 1, 2, 4, 0, 3, 2)); // the outstanding one
    CHECK(trace(h.last) == "send:append->3");
    auto probe = sent<append_entries_request>(h.last)[0];
    CHECK(probe.prev_log == log_id{1, 2});
    CHECK(ids_of(probe.entries) == std::vector<log_id>{{1, 3}, {1, 4}, {2, 5}});
  }
}

TEST_CASE("§5.3 a probing leader has at most one AppendEntries in flight to "
          "a follower") {
  auto h = make_leader(1, {1, 2, 3});
  REQUIRE(h.core.peers().at(2).state == replication_state::probe);
  h.propose(1);
  CHECK(trace(h.last) == "append_log proposal_accepted");
  h.propose(2);
  CHECK(trace(h.last) == "append_log proposal_accepted");
  // Once the probe succeeds, the follower is fed everything it lacks.
  h.deliver(append_ack(2, 1, 2, 2));
  CHECK(h.core.peers().at(2).state == replication_state::replicate);
  CHECK(trace(h.last) == "send:append->2");
  CHECK(ids_of(sent<append_entries_request>(h.last)[0].entries)
        == std::vector<log_id>{{2, 3}, {2, 4}});
}

TEST_CASE("§5.3 in replicate state the leader pipelines up to "
          "max_inflight_appends requests") {
  auto cfg = make_config(1);
  cfg.max_entries_per_append = 1;
  cfg.max_inflight_appends = 2;
  auto h = make_leader(1, {1, 2, 3}, {1, no_node}, {}, cfg);
  for (uint64_t i = 0; i < 4; ++i)
    h.propose(i);
  h.deliver(append_ack(2, 1, 2, 2));
  CHECK(trace(h.last) == "send:append->2 send:append->2");
  auto reqs = sent<append_entries_request>(h.last);
  CHECK(ids_of(reqs[0].entries) == std::vector<log_id>{{2, 3}});
  CHECK(ids_of(reqs[1].entries) == std::vector<log_id>{{2, 4}});
  CHECK(reqs[1].prev_log == log_id{2, 3});
  CHECK(h.core.peers().at(2).inflight.size() == 2);
  // One acknowledgement frees one slot.
  h.deliver(append_ack(2, 1, 2, 3));
  CHECK(trace(h.last) == "send:append->2");
  CHECK(ids_of(sent<append_entries_request>(h.last)[0].entries)
        == std::vector<log_id>{{2, 5}});
}

TEST_CASE("§5.3 in replicate state the leader stops once max_inflight_bytes "
          "are in flight") {
  auto cfg = make_config(1);
  cfg.max_entries_per_append = 1;
  cfg.max_inflight_bytes = 10;
  auto h = make_leader(1, {1, 2, 3}, {1, no_node}, {}, cfg);
  for (uint64_t i = 0; i < 4; ++i)
    h.propose(i, 6);
  h.deliver(append_ack(2, 1, 2, 2));
  CHECK(trace(h.last) == "send:append->2 send:append->2");
  CHECK(h.core.peers().at(2).inflight_bytes == 12);
}

TEST_CASE("§5.3 a leader batches at most max_entries_per_append entries and "
          "about max_bytes_per_append bytes, but sends an oversize entry "
          "alone") {
  struct row {
    const char* name;
    size_t max_entries;
    size_t max_bytes;
    std::vector<size_t> sizes; // payload sizes of entries 3, 4, ...
    std::vector<size_t> batches;
  };
  for (const auto& r :
       {row{"entry cap", 3, 1 << 20, {1, 1, 1, 1, 1, 1, 1}, {3, 3, 1}},
        row{"byte cap", 100, 10, {4, 4, 4, 4, 4}, {2, 2, 1}},
        row{"oversize entry", 100, 10, {2, 50, 2}, {1, 1, 1}},
        row{"oversize first", 100, 10, {50, 2, 2}, {1, 2}}}) {
    std::string name = r.name;
    CAPTURE(name);
    auto cfg = make_config(1);
    cfg.max_entries_per_append = r.max_entries;
    cfg.max_bytes_per_append = r.max_bytes;
    auto h = make_leader(1, {1, 2, 3}, {1, no_node}, {}, cfg);
    uint64_t id = 0;
    for (auto size : r.sizes)
      h.propose(++id, size);
    h.deliver(append_ack(2, 1, 2, 2));
    std::vector<size_t> batches;
    index_t expected_first = 3;
    for (const auto& req : sent_to<append_entries_request>(h.last, 2)) {
      REQUIRE_FALSE(req.entries.empty());
      CHECK(req.entries.front().id.index == expected_first);
      expected_first = req.entries.back().id.index + 1;
      batches.push_back(req.entries.size());
    }
    CHECK(batches == r.batches);
  }
}

TEST_CASE("§5.3 a request in flight unanswered for an election timeout is "
          "presumed lost and replication falls back to probing") {
  auto h = make_leader(1, {1, 2, 3});
  auto elected = h.now;
  h.deliver(append_ack(2, 1, 2, 2));
  h.propose(1);
  REQUIRE(sent_to<append_entries_request>(h.last, 2).size() == 1);
  while (h.now < elected + election_timeout - heartbeat) {
    h.fire_deadline();
    CHECK(h.core.peers().at(2).state == replication_state::replicate);
    auto beats = sent_to<append_entries_request>(h.last, 2);
    REQUIRE(beats.size() == 1);
    CHECK(beats[0].entries.empty());
  }
  h.fire_deadline();
  REQUIRE(h.now == elected + election_timeout);
  CHECK(h.core.peers().at(2).state == replication_state::probe);
  auto reqs = sent_to<append_entries_request>(h.last, 2);
  REQUIRE_FALSE(reqs.empty());
  CHECK(reqs.back().prev_log == log_id{2, 2});
  CHECK(ids_of(reqs.back().entries) == std::vector<log_id>{{2, 3}});
}

TEST_CASE("§5.3 when the transport reports a peer unreachable the leader "
          "forgets what was in flight to it and probes from match_index at "
          "the next heartbeat instead of after an election timeout") {
  auto h = make_leader(1, {1, 2, 3});
  h.deliver(append_ack(2, 1, 2, 2));
  h.propose(1);
  h.propose(2);
  REQUIRE(h.core.peers().at(2).inflight.size() == 2);
  h.step(peer_unreachable{2});
  CHECK(full_trace(h.last).empty()); // nothing is sent into a dead link
  CHECK(h.core.peers().at(2).state == replication_state::probe);
  CHECK(h.core.peers().at(2).inflight.empty());
  h.propose(3);
  CHECK(sent_to<append_entries_request>(h.last, 2).empty()); // still waits
  h.fire_deadline(); // the heartbeat round
  auto reqs = sent_to<append_entries_request>(h.last, 2);
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].prev_log == log_id{2, 2});
  CHECK(ids_of(reqs[0].entries).front() == log_id{2, 3});
  // Unknown peers and followers ignore the report.
  h.step(peer_unreachable{9});
  CHECK(full_trace(h.last).empty());
  auto f = make_node(2, {1, 2, 3});
  f.step(peer_unreachable{1});
  CHECK(full_trace(f.last).empty());
}

// -- commit rule (§5.4.2) -----------------------------------------------------

TEST_CASE("§5.4.2 a leader does not commit an entry of an earlier term by "
          "counting replicas, only indirectly with an entry of its own term") {
  auto cfg = make_config(1);
  cfg.max_entries_per_append = 1;
  auto leader
    = make_leader(1, {1, 2, 3}, {2, no_node}, entries_with_terms(2, {2}), cfg);
  REQUIRE(leader.core.current_term() == 3);
  leader.persist_all();
  auto f = make_node(2, {1, 2, 3}, {2, no_node});
  // Probe fails, the leader backs up, the follower takes the term-2 entry.
  auto pending = relay(leader.history, f);
  pending = relay(pending, leader, false);
  pending = relay(pending, f);
  CHECK(f.core.log().last_id() == log_id{2, 2});
  pending = relay(pending, leader, false);
  CHECK(leader.core.peers().at(2).match_index == 2);
  CHECK(leader.core.commit_index() == 1); // on 2 of 3, but of term 2
  // The term-3 entry follows, and commits both.
  pending = relay(pending, f);
  pending = relay(pending, leader, false);
  CHECK(leader.core.peers().at(2).match_index == 3);
  CHECK(leader.core.commit_index() == 3);
  CHECK(ids_of(pick<apply_entries>(leader.last).at(0).entries)
        == std::vector<log_id>{{2, 2}, {3, 3}});
}

TEST_CASE("§5.4.2 Figure 8: an entry of term 2 on a majority is not "
          "committed by the leader of term 4, and indeed could be "
          "overwritten") {
  // Indexes are shifted by one: index 1 holds the bootstrap entry.
  const std::initializer_list<node_id> all = {1, 2, 3, 4, 5};
  auto cfg1 = make_config(1);
  cfg1.max_entries_per_append = 1;
  auto s1
    = make_node(1, all, {3, no_node}, entries_with_terms(2, {1, 2}), cfg1, 2);
  auto s2
    = make_node(2, all, {3, no_node}, entries_with_terms(2, {1, 2}), {}, 2);
  auto s3 = make_node(3, all, {3, 5}, entries_with_terms(2, {1}), {}, 2);
  auto s4 = make_node(4, all, {3, 5}, entries_with_terms(2, {1}), {}, 2);
  auto s5 = make_node(5, all, {3, 5}, entries_with_terms(2, {1, 3}), {}, 2);

  // (c) S1 is elected in term 4 with the votes of S2 and S3.
  s1.fire_deadline();
  auto out = s1.persist_all();
  auto votes = relay(out, s2);
  auto v3 = relay(out, s3);
  votes.insert(votes.end(), v3.begin(), v3.end());
  auto v5 = relay(out, s5); // S5 refuses: its log is more up-to-date
  CHECK_FALSE(sent<request_vote_response>(v5).at(0).vote_granted);
  relay(votes, s1, false);
  REQUIRE(s1.core.role() == node_role::leader);
  REQUIRE(s1.core.current_term() == 4);
  s1.persist_all();
  auto s1_out = s1.history;

  // S1 brings S3 and S4 up to the term-2 entry, one entry per request.
  for (auto* f : {&s3, &s4}) {
    auto pending = relay(s1_out, *f);
    pending = relay(pending, s1, false);
    pending = relay(pending, *f);
    CHECK(f->core.log().last_id() == log_id{2, 3});
    relay(pending, s1, false);
  }
  REQUIRE(s1.core.peers().at(3).match_index == 3);
  REQUIRE(s1.core.peers().at(4).match_index == 3);
  // (S1, S3, S4) hold the term-2 entry: a majority, yet not committed.
  CHECK(s1.core.commit_index() == 2);

  SUBCASE("(d) S1 crashes; S5 wins term 5 and overwrites the term-2 entry") {
    s5.fire_deadline();
    REQUIRE(s5.core.current_term() == 5);
    auto reqs = s5.persist_all();
    std::vector<command> grants;
    for (auto* v : {&s2, &s3, &s4}) {
      auto a = relay(reqs, *v);
      grants.insert(grants.end(), a.begin(), a.end());
    }
    relay(grants, s5, false);
    REQUIRE(s5.core.role() == node_role::leader);
    s5.persist_all();
    auto pending = relay(s5.history, s3);
    pending = relay(pending, s5, false);
    relay(pending, s3);
    CHECK(*s3.core.log().term_at(3) == 3); // the term-2 entry is gone
  }
  SUBCASE("(e) S1 replicates a term-4 entry to a majority: both commit, and "
          "S5 can no longer win") {
    // After the acknowledgements above, S1 already sent (4,4) to S3 and S4.
    for (auto* f : {&s3, &s4}) {
      auto pending = relay(s1.history, *f);
      relay(pending, s1, false);
    }
    CHECK(s1.core.commit_index() == 4);
    s5.fire_deadline();
    auto reqs = s5.persist_all();
    auto answer = relay(reqs, s3);
    CHECK_FALSE(sent<request_vote_response>(answer).at(0).vote_granted);
  }
}

TEST_CASE("§5.4.2 a leader counts itself only once its own write is durable") {
  auto h = make_leader(1, {1, 2, 3});
  h.deliver(append_ack(2, 1, 2, 2));
  CHECK(h.core.commit_index() == 1);
  CHECK(trace(h.last).empty());
  h.persist_all();
  CHECK(h.core.commit_index() == 2);
  CHECK(trace(h.last) == "apply");
  CHECK(ids_of(pick<apply_entries>(h.last)[0].entries)
        == std::vector<log_id>{{2, 2}});
}

TEST_CASE("§5.4.2 a leader commits on a quorum of followers before its own "
          "write is durable, but applies only entries durable locally") {
  auto h = make_leader(1, {1, 2, 3, 4, 5});
  h.deliver(append_ack(2, 1, 2, 2));
  h.deliver(append_ack(3, 1, 2, 2));
  CHECK(h.core.commit_index() == 1);
  h.deliver(append_ack(4, 1, 2, 2));
  CHECK(h.core.commit_index() == 2);
  CHECK(pick<apply_entries>(h.history).empty());
  h.persist_all();
  CHECK(trace(h.last) == "apply");
  CHECK(ids_of(pick<apply_entries>(h.last)[0].entries)
        == std::vector<log_id>{{2, 2}});
}
