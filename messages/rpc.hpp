// The Raft RPCs (Figure 2, §7, thesis §3.10) as plain structs. Field names
// follow the paper. Every message starts with an `rpc_header` that names the
// cluster, the protocol version and both ends, so that a node can refuse
// traffic from another cluster or an incompatible build, and so that a
// transport can route a message without understanding it.
#pragma once

#include "messages/types.hpp"

#include <cstddef>
#include <variant>

namespace raft_actor {

/// Routing and identity fields carried by every Raft message.
struct rpc_header {
  /// Cluster the sender belongs to; receivers drop messages of other clusters.
  uint64_t cluster_id = 0;
  /// Wire protocol version of the sender (see `protocol_version`).
  uint32_t version = protocol_version;
  /// Sending node (the candidate_id / leader_id of Figure 2 for requests).
  node_id from = no_node;
  /// Receiving node.
  node_id to = no_node;
};

/// RequestVote RPC (§5.2), also used for pre-vote (thesis §9.6).
struct request_vote_request {
  rpc_header header;
  /// Candidate's term; for a pre-vote, the term it would campaign in.
  term_t term = 0;
  /// Candidate's last log entry (last_log_term, last_log_index), §5.4.1.
  log_id last_log;
  /// True for a pre-vote: asks "would you vote for me?" without changing terms.
  bool pre_vote = false;
  /// True when the election was started by a leadership transfer
  /// (thesis §3.10): lets the vote bypass leader stickiness (thesis §4.2.3).
  bool leadership_transfer = false;
};

/// Answer to a `request_vote_request`.
struct request_vote_response {
  rpc_header header;
  /// Voter's current term, for the candidate to update itself (§5.1).
  term_t term = 0;
  /// True means the candidate received the vote.
  bool vote_granted = false;
  /// Echoes the request's `pre_vote` flag.
  bool pre_vote = false;
};

/// AppendEntries RPC (§5.3); with no entries it is a heartbeat (§5.2).
struct append_entries_request {
  rpc_header header;
  /// Leader's term.
  term_t term = 0;
  /// Entry immediately preceding `entries` (prev_log_index, prev_log_term).
  log_id prev_log;
  /// Entries to store, contiguous from prev_log.index + 1; may be empty.
  std::vector<log_entry> entries;
  /// Leader's commit_index.
  index_t leader_commit = 0;
  /// Leader's heartbeat round when sending; echoed back so the leader can
  /// tell which round a response confirms (check-quorum, read index).
  uint64_t round = 0;
};

/// Answer to an `append_entries_request`.
struct append_entries_response {
  rpc_header header;
  /// Follower's current term.
  term_t term = 0;
  /// True if the follower's log matched prev_log and now holds the entries.
  bool success = false;
  /// On success: index of the last entry known to match the leader's log
  /// (prev_log.index + entries.size()), durable on the follower.
  index_t match_index = 0;
  /// The request's prev_log.index, so the leader can ignore stale rejections.
  index_t rejected_prev_index = 0;
  /// On rejection, fast backtracking hint: term of the follower's conflicting
  /// entry at rejected_prev_index (0 if the follower's log is shorter)...
  term_t conflict_term = 0;
  /// ...and the first index the follower holds for conflict_term (or, when
  /// conflict_term is 0, the follower's last index + 1).
  index_t conflict_index = 0;
  /// Follower's last log index.
  index_t last_log_index = 0;
  /// Echo of the request's `round`.
  uint64_t round = 0;
};

/// InstallSnapshot RPC (§7), sent in chunks.
struct install_snapshot_request {
  rpc_header header;
  /// Leader's term.
  term_t term = 0;
  /// Identifies one snapshot transfer; a chunk of another id is a new session.
  uint64_t snapshot_id = 0;
  /// The snapshot replaces all entries up through this position.
  log_id last_included;
  /// Configuration as of last_included (encoded only in the first chunk's
  /// metadata, but always present so any chunk can be validated).
  membership config;
  /// Byte offset of this chunk within the snapshot data.
  uint64_t offset = 0;
  /// Raw bytes of the chunk starting at offset.
  std::vector<uint8_t> data;
  /// True if this is the last chunk.
  bool done = false;
};

/// Answer to an `install_snapshot_request`.
struct install_snapshot_response {
  rpc_header header;
  /// Follower's current term.
  term_t term = 0;
  /// Snapshot transfer this answers.
  uint64_t snapshot_id = 0;
  /// Next byte offset the follower expects (resume point).
  uint64_t next_offset = 0;
  /// True once the whole snapshot is installed.
  bool done = false;
};

/// TimeoutNow (thesis §3.10): tells the target of a leadership transfer to
/// start an election at once.
struct timeout_now_request {
  rpc_header header;
  /// Leader's term.
  term_t term = 0;
};

/// A follower asks the leader for a read index (thesis §6.4: reads served
/// by followers): the leader confirms its leadership and answers with its
/// commit index, which the follower waits to apply before reading.
struct read_index_request {
  rpc_header header;
  /// Follower's current term.
  term_t term = 0;
  /// Follower's token for this read, echoed in the answer.
  uint64_t read_id = 0;
};

/// Answer to a `read_index_request`.
struct read_index_response {
  rpc_header header;
  /// Leader's current term.
  term_t term = 0;
  /// Echo of the request's read_id.
  uint64_t read_id = 0;
  /// False if the sender is not (or no longer) a leader able to serve reads.
  bool success = false;
  /// Commit index at the time of the request, confirmed by a quorum.
  index_t read_index = 0;
};

/// Any message exchanged between Raft nodes.
using raft_message
  = std::variant<request_vote_request, request_vote_response,
                 append_entries_request, append_entries_response,
                 install_snapshot_request, install_snapshot_response,
                 timeout_now_request, read_index_request, read_index_response>;

/// The header of any Raft message.
inline const rpc_header& header_of(const raft_message& m) {
  return std::visit([](const auto& x) -> const rpc_header& { return x.header; },
                    m);
}

/// Bytes of entry payloads an AppendEntries carries.
inline size_t payload_bytes(const append_entries_request& r) {
  size_t n = 0;
  for (const auto& e : r.entries)
    n += e.payload.size();
  return n;
}

/// Bytes of payload (entries or snapshot data) any Raft message carries.
inline size_t payload_bytes(const raft_message& m) {
  if (auto a = std::get_if<append_entries_request>(&m))
    return payload_bytes(*a);
  if (auto s = std::get_if<install_snapshot_request>(&m))
    return s->data.size();
  return 0;
}

/// The term carried by any Raft message.
inline term_t term_of(const raft_message& m) {
  return std::visit([](const auto& x) { return x.term; }, m);
}

/// Short human-readable name of a message's type, for logs.
inline const char* message_name(const raft_message& m) {
  static constexpr const char* names[]
    = {"request_vote_request",     "request_vote_response",
       "append_entries_request",   "append_entries_response",
       "install_snapshot_request", "install_snapshot_response",
       "timeout_now_request",      "read_index_request",
       "read_index_response"};
  return names[m.index()];
}

} // namespace raft_actor
