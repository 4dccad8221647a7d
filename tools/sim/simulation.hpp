// Deterministic simulation of a cluster of pure Raft cores in one thread:
// a simulated network (loss, delay, reordering, duplication, partitions in
// one or both directions), simulated storage that loses unsynced writes on a
// crash, and checks of the §5 safety properties after every step. A run is a
// pure function of its seed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace raft_actor::sim {

/// What a simulated run does.
struct sim_options {
  /// Seed of everything random in the run.
  uint64_t seed = 1;
  /// Cluster size.
  int nodes = 3;
  /// Virtual milliseconds of faults and load before the network heals.
  int64_t fault_ms = 8000;
  /// Virtual milliseconds allowed for recovery after faults stop.
  int64_t liveness_ms = 20000;
  /// Probability that a message is lost.
  double drop_rate = 0.05;
  /// Probability that a message is delivered twice.
  double duplicate_rate = 0.02;
  /// Client proposals per virtual second during the fault phase.
  int proposals_per_sec = 50;
  /// Use pre-vote and check-quorum.
  bool pre_vote = true;
  /// Extra nodes, outside the initial configuration, that membership
  /// changes may add (as learners, then voters).
  int spares = 1;
  /// Issue membership changes and leadership transfers during faults.
  bool admin = true;
  /// Issue linearizable, lease and follower reads and check what they see.
  bool reads = true;
  /// Checker self-test: the disk lies, and a crash also loses the last few
  /// *durable* log entries. Runs with this set must fail some checks.
  bool lying_disk = false;
  /// Print a narrative of what happens (elections, crashes, partitions).
  bool narrate = false;
  /// Print every message and command (very verbose).
  bool trace = false;
};

/// What came out of a run.
struct sim_result {
  /// True if every check passed and the cluster recovered.
  bool ok = false;
  /// First failure, with the virtual time it happened.
  std::string failure;
  /// Steps (events) executed.
  uint64_t steps = 0;
  /// Leaders elected.
  uint64_t elections = 0;
  /// Crashes injected.
  uint64_t crashes = 0;
  /// Partitions injected.
  uint64_t partitions = 0;
  /// Proposals acknowledged to clients (applied on their leader).
  uint64_t acknowledged = 0;
  /// Entries committed by the end.
  uint64_t committed = 0;
  /// Messages sent / dropped.
  uint64_t messages = 0;
  uint64_t dropped = 0;
  /// Reads served (and checked against acknowledged writes).
  uint64_t reads = 0;
  /// Membership changes and leadership transfers that succeeded.
  uint64_t config_changes = 0;
  uint64_t transfers = 0;
  /// Operator-requested snapshots that completed.
  uint64_t triggered_snapshots = 0;
  /// Snapshots taken.
  uint64_t snapshots = 0;
};

/// Runs one simulation; never throws (a thrown invariant is a failure).
/// `log` receives narrative/trace lines when enabled (default: stdout).
sim_result run_simulation(const sim_options& opts,
                          const std::function<void(const std::string&)>& log
                          = {});

} // namespace raft_actor::sim
