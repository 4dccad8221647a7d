// Untrusted input: a malformed or misdirected message, a response from a
// stranger, or an impossible client request never crashes the core; it
// yields a diagnostic (or a failed request) and leaves the state unchanged.
#include "tests/core/core_fixture.hpp"

#include <ostream>

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

/// Everything a test can observe of a core's protocol state.
struct observed {
  node_role role;
  term_t term;
  node_id voted_for;
  node_id leader;
  index_t commit;
  index_t applied;
  index_t durable;
  std::vector<log_id> log;

  friend bool operator==(const observed& a, const observed& b) {
    return a.role == b.role && a.term == b.term && a.voted_for == b.voted_for
           && a.leader == b.leader && a.commit == b.commit
           && a.applied == b.applied && a.durable == b.durable
           && a.log == b.log;
  }
  friend std::ostream& operator<<(std::ostream& os, const observed& o) {
    return os << to_string(o.role) << " term=" << o.term
              << " voted_for=" << o.voted_for << " leader=" << o.leader
              << " commit=" << o.commit << " applied=" << o.applied
              << " durable=" << o.durable << " log_size=" << o.log.size();
  }
};

observed observe(const raft_core& c) {
  return {c.role(),          c.current_term(), c.voted_for(),
          c.leader_id(),     c.commit_index(), c.last_applied(),
          c.durable_index(), log_ids(c.log())};
}

/// True if `cmds` holds no write and no message.
bool no_effects(const std::vector<command>& cmds) {
  return pick<save_hard_state>(cmds).empty() && pick<truncate_log>(cmds).empty()
         && pick<append_log>(cmds).empty() && pick<send_message>(cmds).empty()
         && pick<apply_entries>(cmds).empty();
}

append_entries_request with_header(append_entries_request r, uint64_t cluster,
                                   uint32_t version, node_id from, node_id to) {
  r.header.cluster_id = cluster;
  r.header.version = version;
  r.header.from = from;
  r.header.to = to;
  return r;
}

log_entry with_kind(log_entry e, entry_kind k, std::vector<uint8_t> payload) {
  e.kind = k;
  e.payload = std::move(payload);
  return e;
}

} // namespace

TEST_CASE("bad input: malformed or misdirected messages are dropped with a "
          "warning and change nothing") {
  const auto ok = append_request(2, 1, 3, {2, 2}, {make_entry(3, 3)}, 2);
  auto bad_vote = vote_request(2, 1, 3, {2, 2});
  bad_vote.header.cluster_id = 99;
  const std::pair<const char*, raft_message> cases[] = {
    {"wrong cluster id", with_header(ok, 99, protocol_version, 2, 1)},
    {"wrong cluster id on a vote request", bad_vote},
    {"wrong protocol version", with_header(ok, test_cluster, 2, 2, 1)},
    {"not addressed to us",
     with_header(ok, test_cluster, protocol_version, 2, 3)},
    {"sender 0", with_header(ok, test_cluster, protocol_version, 0, 1)},
    {"sender is ourselves",
     with_header(ok, test_cluster, protocol_version, 1, 1)},
    {"entry index does not follow prev_log",
     append_request(2, 1, 3, {2, 2}, {make_entry(3, 4)})},
    {"entry index 0", append_request(2, 1, 3, {0, 0}, {make_entry(3, 0)})},
    {"entry terms decrease",
     append_request(2, 1, 3, {2, 2}, {make_entry(3, 3), make_entry(2, 4)})},
    {"entry term below prev_log term",
     append_request(2, 1, 3, {2, 2}, {make_entry(1, 3)})},
    {"entry term above the request term",
     append_request(2, 1, 3, {2, 2}, {make_entry(4, 3)})},
    {"prev_log term above the request term",
     append_request(2, 1, 3, {4, 2}, {})},
    {"prev_log index 0 with a term", append_request(2, 1, 3, {1, 0}, {})},
    {"unknown entry kind",
     append_request(
       2, 1, 3, {2, 2},
       {with_kind(make_entry(3, 3), static_cast<entry_kind>(9), {})})},
    {"term beyond any real cluster (it would wedge the cluster)",
     vote_request(2, 1, max_term + 1, {2, 2})},
    {"huge term on an append", append_request(2, 1, ~term_t{0}, {2, 2}, {})},
    {"malformed membership payload",
     append_request(2, 1, 3, {2, 2},
                    {with_kind(make_entry(3, 3), entry_kind::membership,
                               {0xff, 0x01, 0x02})})},
  };
  for (const auto& [name, msg] : cases) {
    std::string what = name;
    CAPTURE(what);
    auto h = make_node(1, {1, 2, 3}, {2, no_node}, entries_with_terms(2, {2}));
    auto before = observe(h.core);
    h.deliver(msg);
    CHECK(observe(h.core) == before);
    CHECK(no_effects(h.last));
    CHECK(diagnostics(h.last, severity::warning).size() == 1);
  }
}

TEST_CASE("bad input: an append_entries_response from a node that is not a "
          "member is ignored with a warning") {
  auto h = make_leader(1, {1, 2, 3});
  auto before = observe(h.core);
  h.deliver(append_ack(9, 1, 2, 2));
  CHECK(observe(h.core) == before);
  CHECK(no_effects(h.last));
  CHECK(diagnostics(h.last, severity::warning).size() == 1);
  CHECK(h.core.peers().count(9) == 0);
}

TEST_CASE("bad input: a vote response from a non-voter is ignored with a "
          "warning") {
  auto h = make_node(1, {1, 2, 3}, {1, no_node});
  h.fire_deadline();
  h.persist_all();
  h.deliver(vote_response(9, 1, 2, true));
  CHECK(h.core.role() == node_role::candidate);
  CHECK(diagnostics(h.last, severity::warning).size() == 1);
  // A real voter's grant still wins (the ignored one did not use it up).
  h.deliver(vote_response(2, 1, 2, true));
  CHECK(h.core.role() == node_role::leader);
}

TEST_CASE("bad input: an acknowledgement of an index beyond the leader's log "
          "is ignored with a warning") {
  auto h = make_leader(1, {1, 2, 3});
  h.persist_all();
  auto before = observe(h.core);
  h.deliver(append_ack(2, 1, 2, 50));
  CHECK(observe(h.core) == before);
  CHECK(no_effects(h.last));
  CHECK(diagnostics(h.last, severity::warning).size() == 1);
  CHECK(h.core.peers().at(2).match_index == 0);
  CHECK(h.core.commit_index() == 1);
}

TEST_CASE("bad input: a client proposal on a follower fails with not_leader "
          "and names the leader") {
  auto h = make_node(2, {1, 2, 3}, {2, no_node});
  h.propose(5);
  auto f = pick<request_failed>(h.last).at(0);
  CHECK(f.error == raft_error::not_leader);
  CHECK(f.leader_hint == no_node);
  h.deliver(append_request(1, 2, 2, {0, 1}, {}));
  h.propose(6);
  CHECK(trace(h.last) == "request_failed");
  f = pick<request_failed>(h.last).at(0);
  CHECK(f.request_id == 6);
  CHECK(f.error == raft_error::not_leader);
  CHECK(f.leader_hint == 1);
  CHECK(h.core.log().last_index() == 1);
}

TEST_CASE("bad input: a proposal larger than max_payload_bytes fails with "
          "payload_too_large and appends nothing") {
  auto cfg = make_config(1);
  cfg.max_payload_bytes = 16;
  auto h = make_leader(1, {1, 2, 3}, {1, no_node}, {}, cfg);
  auto last = h.core.log().last_index();
  h.propose(1, 17);
  CHECK(trace(h.last) == "request_failed");
  auto f = pick<request_failed>(h.last)[0];
  CHECK(f.request_id == 1);
  CHECK(f.error == raft_error::payload_too_large);
  CHECK(h.core.log().last_index() == last);
  h.propose(2, 16);
  CHECK(pick<proposal_accepted>(h.last).size() == 1);
  CHECK(h.core.log().last_index() == last + 1);
}

// -- regressions --------------------------------------------------------------

TEST_CASE("bad input: a leader that receives AppendEntries of its own term "
          "from another node reports two leaders and keeps its role") {
  // Two leaders in one term cannot happen in a correct cluster (Election
  // Safety, §5.2), so this is hostile or buggy input. A leader once stepped
  // down here, adopted the sender as leader and would have taken its
  // entries; now it reports the claim like a follower does.
  auto h = make_leader(1, {1, 2, 3});
  h.persist_all();
  auto before = observe(h.core);
  h.deliver(append_request(2, 1, 2, {0, 1}, {make_entry(2, 2)}, 1));
  CHECK(observe(h.core) == before);
  CHECK(h.core.role() == node_role::leader);
  CHECK(h.core.leader_id() == 1);
  CHECK(no_effects(h.last));
  CHECK(diagnostics(h.last, severity::error).size() == 1);
}

TEST_CASE("bad input: an AppendEntries whose entry indexes wrap around past "
          "the largest index is dropped as malformed") {
  // prev_log.index = 2^64-1 made the first entry's expected index wrap to 0,
  // so an entry with index 0 passed validation.
  auto h = make_node(2, {1, 2, 3}, {2, no_node});
  auto before = observe(h.core);
  h.deliver(append_request(1, 2, 2, {2, ~index_t{0}}, {make_entry(2, 0)}));
  CHECK(observe(h.core) == before);
  CHECK(no_effects(h.last));
  CHECK(diagnostics(h.last, severity::warning).size() == 1);
}
