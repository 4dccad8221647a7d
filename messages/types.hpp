// Basic vocabulary shared by every layer: ids, log positions, log entries and
// cluster membership. Plain structs with no dependency beyond the standard
// library, so the pure Raft core can use them without pulling in CAF.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace raft_actor {

/// Identifies one server of a cluster; 0 means "nobody".
using node_id = uint64_t;

/// A Raft term (§5.1); 0 is the term before any election.
using term_t = uint64_t;

/// A position in the log; the first real entry has index 1, 0 means "before the
/// log".
using index_t = uint64_t;

/// Sentinel for "no node" (no vote cast, no known leader).
constexpr node_id no_node = 0;

/// Version of the wire protocol; a node refuses messages with another version.
constexpr uint32_t protocol_version = 1;

/// Highest term a node accepts from a peer: far beyond what any cluster
/// reaches (2^62 elections), and leaves room for every later election.
constexpr uint64_t max_term = uint64_t{1} << 62;

/// Names one position of the log: the entry at `index` written in `term`.
/// Ordered term first, then index, which is exactly the "more up-to-date"
/// comparison of §5.4.1.
struct log_id {
  /// Term of the entry at this position (0 for the empty position).
  term_t term = 0;
  /// Index of the entry (0 for the empty position before the log).
  index_t index = 0;

  friend bool operator==(const log_id& a, const log_id& b) {
    return a.term == b.term && a.index == b.index;
  }
  friend bool operator!=(const log_id& a, const log_id& b) { return !(a == b); }
  friend bool operator<(const log_id& a, const log_id& b) {
    return std::tie(a.term, a.index) < std::tie(b.term, b.index);
  }
  friend bool operator>(const log_id& a, const log_id& b) { return b < a; }
  friend bool operator<=(const log_id& a, const log_id& b) { return !(b < a); }
  friend bool operator>=(const log_id& a, const log_id& b) { return !(a < b); }
};

/// What a log entry carries.
enum class entry_kind : uint8_t {
  /// A client command for the user's state machine.
  normal = 0,
  /// The no-op a new leader appends at the start of its term (§8, thesis §6.4).
  blank = 1,
  /// A cluster configuration (payload is an encoded `membership`).
  membership = 2,
};

/// One entry of the replicated log.
struct log_entry {
  /// Position of the entry.
  log_id id;
  /// What the payload means.
  entry_kind kind = entry_kind::normal;
  /// Leader's wall-clock time (ms since the Unix epoch) when it appended the
  /// entry; gives every replica the same notion of time for session expiry.
  int64_t leader_time_ms = 0;
  /// Opaque bytes: a client command, or an encoded membership.
  std::vector<uint8_t> payload;

  friend bool operator==(const log_entry& a, const log_entry& b) {
    return a.id == b.id && a.kind == b.kind
           && a.leader_time_ms == b.leader_time_ms && a.payload == b.payload;
  }
  friend bool operator!=(const log_entry& a, const log_entry& b) {
    return !(a == b);
  }
};

/// Node id -> network address ("host:port"; may be empty in one process).
using member_map = std::map<node_id, std::string>;

/// A cluster configuration (thesis §4). In a joint configuration
/// C(old,new) decisions need a majority of `voters` and of `old_voters`.
struct membership {
  /// Voting members of the (new) configuration.
  member_map voters;
  /// Non-voting members: they receive the log but never vote or count.
  member_map learners;
  /// True while in the joint configuration C(old,new).
  bool joint = false;
  /// The old voters of a joint configuration; empty unless `joint`.
  member_map old_voters;

  /// True if `id` votes in either half of the configuration.
  bool is_voter(node_id id) const {
    return voters.count(id) > 0 || (joint && old_voters.count(id) > 0);
  }
  /// True if `id` is a learner and not a voter.
  bool is_learner(node_id id) const {
    return learners.count(id) > 0 && !is_voter(id);
  }
  /// True if `id` appears anywhere in the configuration.
  bool contains(node_id id) const {
    return is_voter(id) || learners.count(id) > 0;
  }

  friend bool operator==(const membership& a, const membership& b) {
    return a.voters == b.voters && a.learners == b.learners
           && a.joint == b.joint && a.old_voters == b.old_voters;
  }
  friend bool operator!=(const membership& a, const membership& b) {
    return !(a == b);
  }
};

/// The state Figure 2 requires on stable storage before answering RPCs.
struct hard_state {
  /// Latest term this server has seen.
  term_t current_term = 0;
  /// Candidate that received this server's vote in `current_term`, or 0.
  node_id voted_for = no_node;

  friend bool operator==(const hard_state& a, const hard_state& b) {
    return a.current_term == b.current_term && a.voted_for == b.voted_for;
  }
  friend bool operator!=(const hard_state& a, const hard_state& b) {
    return !(a == b);
  }
};

} // namespace raft_actor
