// A small harness for the rule-by-rule tests of the pure Raft core.
//
// One `harness` owns one raft_core, a virtual monotonic clock (microseconds)
// and the commands the core returned: `last` holds those of the most recent
// step, `history` every command since construction. Tests drive the core by
// hand (deliver a message, fire the timer, report writes durable) and assert
// both the new state and the exact command list, in the spirit of etcd's
// raft_paper_test.go. Nothing here is clever: every message a test delivers
// is either taken from another core's output or built by the helpers below.
#pragma once

#include "libraft_actor/core/quorum.hpp"
#include "libraft_actor/core/raft_core.hpp"
#include "messages/membership_codec.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace raft_actor::test {

using namespace std::chrono_literals;

/// The cluster id every test node uses.
inline constexpr uint64_t test_cluster = 42;

/// Fixed timeouts: min == max makes election deadlines exact.
inline constexpr raft_duration election_timeout = 100ms;
inline constexpr raft_duration heartbeat = 20ms;

/// Virtual time at which every harness starts (not 0, which the core uses
/// for "no timer").
inline constexpr raft_duration start_time = 1s;

// -- building blocks ----------------------------------------------------------

/// A membership whose voters are `ids` (addresses empty).
inline membership voters_of(std::initializer_list<node_id> ids) {
  membership m;
  for (auto id : ids)
    m.voters.emplace(id, "");
  return m;
}

/// A log entry; normal entries get a payload of `payload_size` bytes.
inline log_entry make_entry(term_t term, index_t index,
                            entry_kind kind = entry_kind::normal,
                            size_t payload_size = 0) {
  log_entry e;
  e.id = {term, index};
  e.kind = kind;
  e.leader_time_ms = 0;
  e.payload.assign(payload_size, static_cast<uint8_t>(index & 0xff));
  return e;
}

/// The entry `initialize_cluster` writes at `bootstrap_log_id`.
inline log_entry bootstrap_entry(const membership& m) {
  log_entry e;
  e.id = bootstrap_log_id;
  e.kind = entry_kind::membership;
  e.leader_time_ms = 0;
  e.payload = encode_membership(m);
  return e;
}

/// Normal entries with the given terms, at indexes first, first + 1, ...
inline std::vector<log_entry> entries_with_terms(index_t first,
                                                 std::vector<term_t> terms) {
  std::vector<log_entry> out;
  for (size_t i = 0; i < terms.size(); ++i)
    out.push_back(make_entry(terms[i], first + i));
  return out;
}

/// A recovered state whose log is the bootstrap entry of `m` followed by
/// `entries` (which must start at index 2).
inline recovered_state make_recovered(const membership& m, hard_state hs,
                                      std::vector<log_entry> entries = {},
                                      index_t last_applied = 0) {
  recovered_state r;
  r.state = hs;
  r.entries.push_back(bootstrap_entry(m));
  for (auto& e : entries)
    r.entries.push_back(std::move(e));
  r.last_applied = last_applied;
  return r;
}

/// A config with fixed timeouts, invariant checks on, and pre-vote and
/// check-quorum off unless a test asks for them.
inline core_config make_config(node_id id, bool pre_vote = false,
                               bool check_quorum = false) {
  core_config c;
  c.id = id;
  c.cluster_id = test_cluster;
  c.election_timeout_min = election_timeout;
  c.election_timeout_max = election_timeout;
  c.heartbeat_interval = heartbeat;
  c.pre_vote = pre_vote;
  c.check_quorum = check_quorum;
  c.check_invariants = true;
  return c;
}

/// A header from `from` to `to` in the test cluster.
inline rpc_header header(node_id from, node_id to) {
  rpc_header h;
  h.cluster_id = test_cluster;
  h.version = protocol_version;
  h.from = from;
  h.to = to;
  return h;
}

inline request_vote_request vote_request(node_id from, node_id to, term_t term,
                                         log_id last_log,
                                         bool pre_vote = false) {
  request_vote_request r;
  r.header = header(from, to);
  r.term = term;
  r.last_log = last_log;
  r.pre_vote = pre_vote;
  return r;
}

inline request_vote_response vote_response(node_id from, node_id to,
                                           term_t term, bool granted,
                                           bool pre_vote = false) {
  request_vote_response r;
  r.header = header(from, to);
  r.term = term;
  r.vote_granted = granted;
  r.pre_vote = pre_vote;
  return r;
}

inline append_entries_request append_request(node_id from, node_id to,
                                             term_t term, log_id prev,
                                             std::vector<log_entry> entries,
                                             index_t leader_commit = 0) {
  append_entries_request r;
  r.header = header(from, to);
  r.term = term;
  r.prev_log = prev;
  r.entries = std::move(entries);
  r.leader_commit = leader_commit;
  return r;
}

inline append_entries_response append_ack(node_id from, node_id to, term_t term,
                                          index_t match) {
  append_entries_response r;
  r.header = header(from, to);
  r.term = term;
  r.success = true;
  r.match_index = match;
  r.last_log_index = match;
  return r;
}

inline append_entries_response
append_reject(node_id from, node_id to, term_t term, index_t rejected_prev,
              term_t conflict_term, index_t conflict_index, index_t last) {
  append_entries_response r;
  r.header = header(from, to);
  r.term = term;
  r.success = false;
  r.rejected_prev_index = rejected_prev;
  r.conflict_term = conflict_term;
  r.conflict_index = conflict_index;
  r.last_log_index = last;
  return r;
}

// -- looking at commands ------------------------------------------------------

/// Every command of type T in `cmds`, in order.
template <class T>
std::vector<T> pick(const std::vector<command>& cmds) {
  std::vector<T> out;
  for (const auto& c : cmds)
    if (const auto* x = std::get_if<T>(&c))
      out.push_back(*x);
  return out;
}

/// Every message of type M sent by `cmds`, in order.
template <class M>
std::vector<M> sent(const std::vector<command>& cmds) {
  std::vector<M> out;
  for (const auto& c : cmds)
    if (const auto* s = std::get_if<send_message>(&c))
      if (const auto* m = std::get_if<M>(&s->message))
        out.push_back(*m);
  return out;
}

/// Every message of type M sent to `to` by `cmds`, in order.
template <class M>
std::vector<M> sent_to(const std::vector<command>& cmds, node_id to) {
  std::vector<M> out;
  for (auto& m : sent<M>(cmds))
    if (m.header.to == to)
      out.push_back(m);
  return out;
}

/// Diagnostics of at least `level`.
inline std::vector<diagnostic> diagnostics(const std::vector<command>& cmds,
                                           severity level = severity::debug) {
  std::vector<diagnostic> out;
  for (auto& d : pick<diagnostic>(cmds))
    if (d.level >= level)
      out.push_back(d);
  return out;
}

/// A compact, readable trace of a command list, e.g.
/// "save_hard_state send:vote->2 set_timer role_changed", so that a test can
/// assert the exact kinds and order of commands in one comparison.
inline std::string trace(const std::vector<command>& cmds) {
  auto short_name = [](const raft_message& m) -> std::string {
    std::string n = message_name(m);
    if (n == "request_vote_request")
      return "vote";
    if (n == "request_vote_response")
      return "vote_resp";
    if (n == "append_entries_request")
      return "append";
    if (n == "append_entries_response")
      return "append_resp";
    return n;
  };
  std::string out;
  for (const auto& c : cmds) {
    if (!out.empty())
      out += ' ';
    if (auto* s = std::get_if<send_message>(&c))
      out += "send:" + short_name(s->message) + "->"
             + std::to_string(header_of(s->message).to);
    else if (std::holds_alternative<save_hard_state>(c))
      out += "save_hard_state";
    else if (std::holds_alternative<truncate_log>(c))
      out += "truncate_log";
    else if (std::holds_alternative<append_log>(c))
      out += "append_log";
    else if (std::holds_alternative<apply_entries>(c))
      out += "apply";
    else if (std::holds_alternative<proposal_accepted>(c))
      out += "proposal_accepted";
    else if (std::holds_alternative<request_failed>(c))
      out += "request_failed";
    else if (std::holds_alternative<request_succeeded>(c))
      out += "request_succeeded";
    else if (std::holds_alternative<set_timer>(c))
      out += "set_timer";
    else if (std::holds_alternative<role_changed>(c))
      out += "role_changed";
    else if (std::holds_alternative<diagnostic>(c))
      out += "diagnostic";
    else
      out += "command#" + std::to_string(c.index());
  }
  return out;
}

/// Ids of the entries in `es`, e.g. for comparing with a literal list.
inline std::vector<log_id> ids_of(const std::vector<log_entry>& es) {
  std::vector<log_id> out;
  for (const auto& e : es)
    out.push_back(e.id);
  return out;
}

/// The ids of every entry of a core's log, from first_index to last.
inline std::vector<log_id> log_ids(const raft_log& log) {
  std::vector<log_id> out;
  for (auto i = log.first_index(); i <= log.last_index(); ++i)
    out.push_back(log.at(i).id);
  return out;
}

// -- the harness --------------------------------------------------------------

/// One core plus a virtual clock and the commands it returned.
class harness {
public:
  harness(core_config cfg, recovered_state rec,
          raft_duration start = start_time)
      : now(start),
        core(std::move(cfg), std::move(rec), clock_reading{start, 0}) {
    core.check_invariants();
    // Like a runtime, arm the first timer; tests then start from a clean
    // slate. (Every timer_fired step names its deadline again, so a trace
    // of a timer step always ends with set_timer.)
    step(timer_fired{});
    clear();
  }

  /// Virtual monotonic time.
  raft_duration now;
  /// Wall-clock milliseconds stamped on new entries.
  int64_t wall_ms = 5000;
  /// The core under test.
  raft_core core;
  /// Commands of the most recent step.
  std::vector<command> last;
  /// Every command since construction.
  std::vector<command> history;
  /// Highest write sequence number issued so far.
  uint64_t issued_seq = 0;
  /// Highest sequence number of any storage write issued so far, including
  /// the snapshot writes (purge_log, write_snapshot_chunk, install_snapshot)
  /// that `issued_seq` does not track.
  uint64_t issued_any_seq = 0;

  /// Feeds one event at the current virtual time; checks the invariants.
  const std::vector<command>& step(event ev) {
    last = core.step(clock_reading{now, wall_ms}, std::move(ev));
    core.check_invariants();
    for (const auto& c : last) {
      if (auto* s = std::get_if<save_hard_state>(&c))
        issued_seq = std::max(issued_seq, s->seq);
      else if (auto* t = std::get_if<truncate_log>(&c))
        issued_seq = std::max(issued_seq, t->seq);
      else if (auto* a = std::get_if<append_log>(&c))
        issued_seq = std::max(issued_seq, a->seq);
      issued_any_seq = std::max(issued_any_seq, write_sequence(c));
      history.push_back(c);
    }
    return last;
  }

  /// Delivers a message from another node.
  const std::vector<command>& deliver(raft_message m) {
    return step(message_received{std::move(m)});
  }

  /// Reports every write issued so far as durable.
  const std::vector<command>& persist_all() {
    return step(writes_persisted{issued_seq});
  }

  /// Reports every write issued so far durable, snapshot writes included.
  const std::vector<command>& persist_every_write() {
    return step(writes_persisted{issued_any_seq});
  }

  /// Moves the clock forward by `d` and fires the timer.
  const std::vector<command>& advance(raft_duration d) {
    now += d;
    return step(timer_fired{});
  }

  /// Moves the clock to the core's next deadline and fires the timer.
  const std::vector<command>& fire_deadline() {
    REQUIRE(core.next_deadline() > raft_duration{0});
    now = std::max(now, core.next_deadline());
    return step(timer_fired{});
  }

  /// Proposes a client command of `size` bytes.
  const std::vector<command>& propose(uint64_t request_id, size_t size = 3) {
    client_proposal p;
    p.request_id = request_id;
    p.payload.assign(size, 0xab);
    return step(std::move(p));
  }

  /// Forgets the command history (e.g. after setting a scene).
  void clear() {
    last.clear();
    history.clear();
  }
};

/// A harness for node `id` of a cluster of `members` with the given durable
/// hard state and log after the bootstrap entry; the bootstrap entry is
/// committed and applied (last_applied 1) unless told otherwise.
inline harness make_node(node_id id, std::initializer_list<node_id> members,
                         hard_state hs = {1, no_node},
                         std::vector<log_entry> entries = {},
                         core_config cfg_override = {},
                         index_t last_applied = 1) {
  auto cfg = cfg_override.id == no_node ? make_config(id) : cfg_override;
  return harness(cfg, make_recovered(voters_of(members), hs, std::move(entries),
                                     last_applied));
}

/// Builds node `id` of {1..n} and makes it leader of term hs.current_term+1
/// with pre-vote off: times out, persists its vote, and collects grants from
/// the other voters. Its blank entry is NOT yet durable and no follower has
/// acknowledged anything; `last` holds the commands of the winning step.
inline harness make_leader(node_id id, std::initializer_list<node_id> members,
                           hard_state hs = {1, no_node},
                           std::vector<log_entry> entries = {},
                           core_config cfg = {}) {
  auto h = make_node(id, members, hs, std::move(entries), cfg);
  h.fire_deadline();
  REQUIRE(h.core.role() == node_role::candidate);
  h.persist_all();
  auto term = h.core.current_term();
  for (auto peer : members) {
    if (peer == id || h.core.role() == node_role::leader)
      continue;
    h.deliver(vote_response(peer, id, term, true));
  }
  REQUIRE(h.core.role() == node_role::leader);
  return h;
}

/// Delivers to `to` every message in `cmds` addressed to it, then (if
/// `persist`) reports all of its writes durable. Returns every command `to`
/// produced meanwhile, e.g. to relay its answers back.
inline std::vector<command> relay(const std::vector<command>& cmds, harness& to,
                                  bool persist = true) {
  std::vector<command> out;
  for (const auto& c : cmds)
    if (const auto* s = std::get_if<send_message>(&c))
      if (header_of(s->message).to == to.core.id()) {
        to.deliver(s->message);
        out.insert(out.end(), to.last.begin(), to.last.end());
      }
  if (persist) {
    to.persist_all();
    out.insert(out.end(), to.last.begin(), to.last.end());
  }
  return out;
}

// -- membership, transfer, reads and snapshots --------------------------------

/// A membership with `voters` and `learners` (addresses empty).
inline membership members_of(std::initializer_list<node_id> voters,
                             std::initializer_list<node_id> learners) {
  auto m = voters_of(voters);
  for (auto id : learners)
    m.learners.emplace(id, "");
  return m;
}

/// The joint configuration C(old,new) a leader proposes when `old_cfg`
/// changes its voters to `new_voters`: promoted learners leave the learners.
inline membership joint_of(const membership& old_cfg,
                           std::initializer_list<node_id> new_voters) {
  membership m;
  for (auto id : new_voters)
    m.voters.emplace(id, "");
  m.learners = old_cfg.learners;
  for (auto id : new_voters)
    m.learners.erase(id);
  m.joint = true;
  m.old_voters = old_cfg.voters;
  return m;
}

/// C(new) of a joint configuration: its new voters and its learners.
inline membership new_half(const membership& joint) {
  membership m;
  m.voters = joint.voters;
  m.learners = joint.learners;
  return m;
}

/// A membership log entry holding `m`.
inline log_entry membership_entry(term_t term, index_t index,
                                  const membership& m) {
  log_entry e;
  e.id = {term, index};
  e.kind = entry_kind::membership;
  e.payload = encode_membership(m);
  return e;
}

/// The membership a membership entry holds (fails the test if malformed).
inline membership decoded(const log_entry& e) {
  REQUIRE(e.kind == entry_kind::membership);
  membership m;
  std::string why;
  REQUIRE_MESSAGE(decode_membership(e.payload, m, why), why);
  return m;
}

/// Like make_node, for an arbitrary initial membership `m`.
inline harness make_node_with(node_id id, const membership& m,
                              hard_state hs = {1, no_node},
                              std::vector<log_entry> entries = {},
                              core_config cfg_override = {},
                              index_t last_applied = 1) {
  auto cfg = cfg_override.id == no_node ? make_config(id) : cfg_override;
  return harness(cfg, make_recovered(m, hs, std::move(entries), last_applied));
}

/// Makes `h` (a voter whose election deadline is armed) leader: times out,
/// persists the vote and collects grants from the voters of its
/// configuration (both halves of a joint one).
inline void elect(harness& h) {
  h.fire_deadline();
  REQUIRE(h.core.role() == node_role::candidate);
  h.persist_all();
  auto term = h.core.current_term();
  auto cfg = h.core.config();
  for (auto* group : {&cfg.voters, &cfg.old_voters})
    for (const auto& kv : *group) {
      if (kv.first == h.core.id() || h.core.role() == node_role::leader)
        continue;
      h.deliver(vote_response(kv.first, h.core.id(), term, true));
    }
  REQUIRE(h.core.role() == node_role::leader);
}

/// Like make_leader, for an arbitrary initial membership `m`.
inline harness make_leader_with(node_id id, const membership& m,
                                hard_state hs = {1, no_node},
                                std::vector<log_entry> entries = {},
                                core_config cfg = {}) {
  auto h = make_node_with(id, m, hs, std::move(entries), cfg);
  elect(h);
  return h;
}

/// An acknowledgement that also echoes heartbeat round `round`.
inline append_entries_response append_ack_round(node_id from, node_id to,
                                                term_t term, index_t match,
                                                uint64_t round) {
  auto r = append_ack(from, to, term, match);
  r.round = round;
  return r;
}

/// Brings leader `h` to a clean, fully replicated state: its writes are
/// durable, every peer (voters and learners) acknowledged its last index,
/// the state machine applied everything, and the command history is empty.
inline void settle_leader(harness& h) {
  h.persist_all();
  auto last = h.core.log().last_index();
  std::vector<node_id> peers;
  for (const auto& kv : h.core.peers())
    peers.push_back(kv.first);
  for (auto peer : peers)
    h.deliver(append_ack(peer, h.core.id(), h.core.current_term(), last));
  REQUIRE(h.core.commit_index() == last);
  h.step(entries_applied{last});
  REQUIRE(h.core.last_applied() == last);
  h.clear();
}

/// make_leader_with, then settle_leader: a leader whose blank entry of its
/// term is committed on every peer and applied.
inline harness make_settled_leader(node_id id, const membership& m,
                                   hard_state hs = {1, no_node},
                                   std::vector<log_entry> entries = {},
                                   core_config cfg = {}) {
  auto h = make_leader_with(id, m, hs, std::move(entries), cfg);
  settle_leader(h);
  return h;
}

inline timeout_now_request timeout_now(node_id from, node_id to, term_t term) {
  timeout_now_request r;
  r.header = header(from, to);
  r.term = term;
  return r;
}

inline read_index_request read_index_req(node_id from, node_id to, term_t term,
                                         uint64_t read_id) {
  read_index_request r;
  r.header = header(from, to);
  r.term = term;
  r.read_id = read_id;
  return r;
}

inline read_index_response read_index_resp(node_id from, node_id to,
                                           term_t term, uint64_t read_id,
                                           bool success, index_t read_index) {
  read_index_response r;
  r.header = header(from, to);
  r.term = term;
  r.read_id = read_id;
  r.success = success;
  r.read_index = read_index;
  return r;
}

/// One InstallSnapshot chunk of `size` bytes at `offset`.
inline install_snapshot_request
snapshot_chunk(node_id from, node_id to, term_t term, uint64_t snapshot_id,
               log_id last_included, const membership& config, uint64_t offset,
               size_t size, bool done) {
  install_snapshot_request r;
  r.header = header(from, to);
  r.term = term;
  r.snapshot_id = snapshot_id;
  r.last_included = last_included;
  r.config = config;
  r.offset = offset;
  r.data.assign(size, static_cast<uint8_t>(0x5a));
  r.done = done;
  return r;
}

inline install_snapshot_response snapshot_ack(node_id from, node_id to,
                                              term_t term, uint64_t snapshot_id,
                                              uint64_t next_offset, bool done) {
  install_snapshot_response r;
  r.header = header(from, to);
  r.term = term;
  r.snapshot_id = snapshot_id;
  r.next_offset = next_offset;
  r.done = done;
  return r;
}

/// A recovered state with a snapshot at `snapshot` (membership `m`), a log
/// that starts after `log_base` and holds `entries`, and `last_applied`.
inline recovered_state
make_recovered_snapshot(const membership& m, hard_state hs, log_id snapshot,
                        uint64_t snapshot_id, log_id log_base,
                        std::vector<log_entry> entries, index_t last_applied) {
  recovered_state r;
  r.state = hs;
  r.snapshot = snapshot;
  r.snapshot_id = snapshot_id;
  r.snapshot_config = m;
  r.log_base = log_base;
  r.entries = std::move(entries);
  r.last_applied = last_applied;
  return r;
}

/// Like `trace`, but names every command kind (reads, snapshots) and every
/// message, e.g. "send_snapshot_chunk->2 read_ready send:timeout_now->2".
inline std::string full_trace(const std::vector<command>& cmds) {
  std::string out;
  for (const auto& c : cmds) {
    if (!out.empty())
      out += ' ';
    if (std::holds_alternative<read_ready>(c))
      out += "read_ready";
    else if (std::holds_alternative<build_snapshot>(c))
      out += "build_snapshot";
    else if (std::holds_alternative<purge_log>(c))
      out += "purge_log";
    else if (auto* sc = std::get_if<send_snapshot_chunk>(&c))
      out += "send_snapshot_chunk->" + std::to_string(sc->request.header.to);
    else if (std::holds_alternative<write_snapshot_chunk>(c))
      out += "write_snapshot_chunk";
    else if (std::holds_alternative<install_snapshot>(c))
      out += "install_snapshot";
    else if (auto* s = std::get_if<send_message>(&c);
             s
             && (std::holds_alternative<timeout_now_request>(s->message)
                 || std::holds_alternative<read_index_request>(s->message)
                 || std::holds_alternative<read_index_response>(s->message)
                 || std::holds_alternative<install_snapshot_request>(s->message)
                 || std::holds_alternative<install_snapshot_response>(
                   s->message))) {
      std::string n = message_name(s->message);
      if (n.size() > 8 && n.compare(n.size() - 8, 8, "_request") == 0)
        n.resize(n.size() - 8);
      else if (n.size() > 9 && n.compare(n.size() - 9, 9, "_response") == 0)
        n = n.substr(0, n.size() - 9) + "_resp";
      out += "send:" + n + "->" + std::to_string(header_of(s->message).to);
    } else
      out += trace({c});
  }
  return out;
}

} // namespace raft_actor::test
