// What a leader knows about one follower's log, and the flow control of the
// AppendEntries pipeline to it (the idea of etcd's tracker, in our words).
#pragma once

#include "libraft_actor/core/config.hpp"
#include "messages/types.hpp"

#include <deque>

namespace raft_actor {

/// How the leader currently feeds a follower.
enum class replication_state : uint8_t {
  /// Unknown where the logs diverge: one request at a time, backtracking
  /// on each rejection.
  probe,
  /// Logs known to match up to match_index: pipeline optimistically.
  replicate,
  /// The follower needs entries that were compacted: a snapshot is being
  /// streamed to it.
  snapshot,
};

/// Stable lower-case name of a replication state.
const char* to_string(replication_state s);

/// Leader-side state for one peer. Figure 2 names: next_index, match_index.
struct progress {
  /// One AppendEntries request that has not been acknowledged yet.
  struct inflight_append {
    /// Last index the request carried.
    index_t last = 0;
    /// Payload bytes it carried.
    size_t bytes = 0;
    /// When it was sent.
    raft_duration sent_at{0};
  };

  /// Highest index known replicated (durably) on the peer.
  /// Invariant: only grows while this node stays leader in this term.
  index_t match_index = 0;
  /// Index of the next entry to send. Invariant: next_index > match_index.
  index_t next_index = 1;
  /// Feeding mode.
  replication_state state = replication_state::probe;
  /// In probe state: a probe is outstanding, don't send another yet.
  bool probe_sent = false;
  /// When the outstanding probe was sent.
  raft_duration probe_sent_at{0};
  /// Requests in flight in replicate state, oldest first.
  std::deque<inflight_append> inflight;
  /// Sum of `inflight[i].bytes`.
  size_t inflight_bytes = 0;
  /// The peer answered since the last check-quorum round.
  bool recent_active = false;
  /// In snapshot state: the snapshot being sent, the next byte offset the
  /// peer expects, and when the last chunk went out.
  uint64_t snapshot_id = 0;
  log_id snapshot_last;
  uint64_t snapshot_offset = 0;
  raft_duration snapshot_sent_at{0};
  /// Highest heartbeat round the peer answered in the current term (read
  /// index confirmation, thesis §6.4).
  uint64_t acked_round = 0;

  /// True if no further entries may be sent now.
  bool paused(const core_config& cfg) const;

  /// Records a sent request carrying entries up to `last`.
  void on_sent(index_t last, size_t bytes, raft_duration now);

  /// The peer acknowledged up to `index`; returns true if match advanced.
  bool on_ack(index_t index);

  /// Switches to probing from match_index + 1.
  void become_probe();

  /// Switches to pipelining after a successful probe.
  void become_replicate();
};

} // namespace raft_actor
