// Durability gating (thesis §3.8): every answer whose truth depends on a
// write leaves only once storage reported that write (and every earlier one)
// durable; a leader's own replication traffic does not wait (thesis §10.2.1).
#include "tests/core/core_fixture.hpp"

using namespace raft_actor;
using namespace raft_actor::test;

TEST_CASE("§3.8 a vote grant is sent only after the write of the vote is "
          "durable") {
  auto h = make_node(1, {1, 2, 3}, {1, no_node});
  h.deliver(vote_request(2, 1, 2, {0, 1}));
  auto saves = pick<save_hard_state>(h.last);
  REQUIRE(saves.size() == 2);
  CHECK(saves[0].seq + 1 == saves[1].seq);
  CHECK(saves[1].state == hard_state{2, 2});
  CHECK(sent<request_vote_response>(h.last).empty());
  // The term is durable, the vote is not yet.
  h.step(writes_persisted{saves[0].seq});
  CHECK(h.last.empty());
  h.step(writes_persisted{saves[1].seq});
  CHECK(trace(h.last) == "send:vote_resp->2");
  CHECK(sent<request_vote_response>(h.last)[0].vote_granted);
}

TEST_CASE("§3.8 an append acknowledgement is sent only after its append_log "
          "is durable") {
  auto h = make_node(2, {1, 2, 3}, {1, no_node});
  h.deliver(append_request(1, 2, 2, {0, 1}, entries_with_terms(2, {2})));
  CHECK(trace(h.last) == "save_hard_state append_log role_changed");
  auto term_seq = pick<save_hard_state>(h.last)[0].seq;
  auto append_seq = pick<append_log>(h.last)[0].seq;
  REQUIRE(term_seq < append_seq);
  h.step(writes_persisted{term_seq});
  CHECK(h.last.empty());
  CHECK(h.core.durable_index() == 1);
  h.step(writes_persisted{append_seq});
  CHECK(trace(h.last) == "send:append_resp->1");
  CHECK(sent<append_entries_response>(h.last)[0].match_index == 2);
  CHECK(h.core.durable_index() == 2);
}

TEST_CASE("§3.8 an acknowledgement that needs no write of its own still waits "
          "for the earlier pending writes") {
  auto h = make_node(2, {1, 2, 3}, {2, no_node});
  h.deliver(append_request(1, 2, 2, {0, 1}, entries_with_terms(2, {2, 2})));
  // A heartbeat that checks the not-yet-durable entry (2,3).
  h.deliver(append_request(1, 2, 2, {2, 3}, {}, 1));
  CHECK(sent<append_entries_response>(h.last).empty());
  h.persist_all();
  CHECK(trace(h.last) == "send:append_resp->1 send:append_resp->1");
  for (const auto& ack : sent<append_entries_response>(h.last))
    CHECK(ack.match_index == 3);
}

TEST_CASE("§3.8 storage reporting a write that was never issued yields an "
          "error diagnostic and changes nothing") {
  auto h = make_node(2, {1, 2, 3}, {2, no_node});
  h.deliver(append_request(1, 2, 2, {0, 1}, entries_with_terms(2, {2})));
  REQUIRE(h.issued_seq == 1);
  h.step(writes_persisted{5});
  CHECK(trace(h.last) == "diagnostic");
  CHECK(diagnostics(h.last, severity::error).size() == 1);
  CHECK(h.core.durable_index() == 1);
  // The real completion still works afterwards.
  h.step(writes_persisted{1});
  CHECK(trace(h.last) == "send:append_resp->1");
  CHECK(h.core.durable_index() == 2);
}

TEST_CASE("§10.2.1 a leader's AppendEntries leave at once, before its own "
          "write is durable") {
  auto h = make_leader(1, {1, 2, 3});
  h.deliver(append_ack(2, 1, 2, 2));
  h.propose(9);
  CHECK(trace(h.last) == "append_log proposal_accepted send:append->2");
  CHECK(h.core.durable_index() == 1);
  CHECK(ids_of(sent<append_entries_request>(h.last)[0].entries)
        == std::vector<log_id>{{2, 3}});
}

TEST_CASE("§3.8 truncating a durable suffix lowers durable_index at once and "
          "the replacement counts only once written") {
  auto h
    = make_node(2, {1, 2, 3}, {2, no_node}, entries_with_terms(2, {1, 1, 1}));
  REQUIRE(h.core.durable_index() == 4);
  h.deliver(append_request(1, 2, 2, {1, 2}, entries_with_terms(3, {2}), 3));
  CHECK(h.core.durable_index() == 2);
  CHECK(h.core.commit_index() == 3);
  // Only the durable, committed (1,2) may be applied now.
  CHECK(ids_of(pick<apply_entries>(h.last).at(0).entries)
        == std::vector<log_id>{{1, 2}});
  auto trunc = pick<truncate_log>(h.last).at(0);
  h.step(writes_persisted{trunc.seq});
  CHECK(h.core.durable_index() == 2);
  CHECK(sent<append_entries_response>(h.last).empty());
  h.persist_all();
  CHECK(h.core.durable_index() == 3);
  CHECK(trace(h.last) == "send:append_resp->1 apply");
  CHECK(ids_of(pick<apply_entries>(h.last)[0].entries)
        == std::vector<log_id>{{2, 3}});
}
