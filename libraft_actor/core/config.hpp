// Configuration of the pure Raft core.
#pragma once

#include "messages/types.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace raft_actor {

/// Monotonic time as seen by the core: microseconds since an arbitrary epoch.
/// The core never reads a clock; every event brings the current time.
using raft_duration = std::chrono::microseconds;

/// The time an event happened: monotonic for timers, wall clock for entries.
struct clock_reading {
  /// Monotonic time, used for every timeout decision.
  raft_duration monotonic{0};
  /// Wall-clock milliseconds since the Unix epoch, stamped on new entries.
  int64_t wall_ms = 0;
};

/// Tunables of one node's protocol core, with safe defaults.
struct core_config {
  /// This node's id (must not be 0).
  node_id id = no_node;
  /// Cluster this node belongs to; messages of other clusters are dropped.
  uint64_t cluster_id = 0;
  /// Lower bound of the randomized election timeout (§5.2).
  raft_duration election_timeout_min = std::chrono::milliseconds(150);
  /// Upper bound (inclusive) of the randomized election timeout.
  raft_duration election_timeout_max = std::chrono::milliseconds(300);
  /// How often a leader sends heartbeats; must be well below the minimum
  /// election timeout (§5.6: broadcastTime << electionTimeout).
  raft_duration heartbeat_interval = std::chrono::milliseconds(50);
  /// Run a pre-vote round before a real election (thesis §9.6).
  bool pre_vote = true;
  /// Leader steps down without contact to a quorum, and followers ignore
  /// vote requests while they hear from a live leader (thesis §6.2, §4.2.3).
  bool check_quorum = true;
  /// Most entries in one AppendEntries request.
  size_t max_entries_per_append = 512;
  /// Most payload bytes in one AppendEntries request (at least one entry is
  /// always sent, so a single large entry still makes progress).
  size_t max_bytes_per_append = 1 << 20;
  /// Most AppendEntries requests in flight to one peer (pipelining window).
  size_t max_inflight_appends = 32;
  /// Most payload bytes in flight to one peer.
  size_t max_inflight_bytes = 16 << 20;
  /// Largest payload a client may propose.
  size_t max_payload_bytes = 4 << 20;
  /// A learner may be promoted to voter only if its log is within this many
  /// entries of the leader's last entry (so promotion never stalls commits).
  index_t max_learner_lag = 1000;
  /// Serve `read_mode::lease` reads from a leader lease (thesis §6.4.1).
  /// Off by default: safe only if clocks drift less than max_clock_drift.
  bool lease_reads = false;
  /// Bound on how much faster one node's clock may run than another's over
  /// an election timeout; shortens the lease by this much.
  raft_duration max_clock_drift = std::chrono::milliseconds(20);
  /// Ask the runtime for a snapshot every this many applied entries (§7);
  /// 0 disables log compaction.
  index_t snapshot_interval = 0;
  /// Entries kept in the log behind a snapshot, so followers that lag a
  /// little catch up from the log rather than by InstallSnapshot.
  index_t snapshot_trailing_entries = 1024;
  /// Largest chunk of snapshot data in one InstallSnapshot request.
  size_t snapshot_chunk_bytes = 1 << 20;
  /// Seed of the election-jitter generator (used when `random` is empty).
  uint64_t random_seed = 1;
  /// Optional injected source of randomness; returns uniformly random bits.
  std::function<uint64_t()> random;
  /// Run the invariant checks after every step (cheap; on by default).
  bool check_invariants = true;

  /// Returns an empty string if the configuration is usable, otherwise a
  /// sentence naming the first problem.
  std::string validate() const;
};

} // namespace raft_actor
