// Inputs of the pure core: everything that can happen to a node.
#pragma once

#include "messages/rpc.hpp"

#include <set>
#include <string>
#include <variant>

namespace raft_actor {

/// A Raft message arrived from another node (untrusted input).
struct message_received {
  /// The message, as decoded by the transport.
  raft_message message;
};

/// The timer armed by the last `set_timer` command (or any later one) fired.
struct timer_fired {};

/// A client asks the leader to append a command (§5.3).
struct client_proposal {
  /// Caller's token, echoed in the answer.
  uint64_t request_id = 0;
  /// The command for the state machine.
  std::vector<uint8_t> payload;
};

/// Forms a new cluster: writes `config` as the first log entry (at the fixed
/// id `bootstrap_log_id`) if the log is empty. Safe to call on several of the
/// initial members: they all write the identical entry.
struct initialize_cluster {
  /// Caller's token, echoed in the answer.
  uint64_t request_id = 0;
  /// The initial configuration; must contain this node as a voter.
  membership config;
};

/// Storage finished every write up to and including sequence number `seq`
/// (writes complete in the order they were issued).
struct writes_persisted {
  /// Highest completed write sequence number.
  uint64_t seq = 0;
};

/// The state machine has applied every entry up to and including `index`.
struct entries_applied {
  /// Last applied index.
  index_t index = 0;
};

/// Adds a non-voting member (thesis §4.2.1); answered once the new
/// configuration commits (and, if asked, once the learner caught up).
struct add_learner {
  /// Caller's token, echoed in the answer.
  uint64_t request_id = 0;
  /// The new learner's id.
  node_id id = no_node;
  /// Its network address.
  std::string address;
  /// Answer only once the learner's log caught up with the leader's commit.
  bool wait_caught_up = false;
};

/// Removes a learner; answered once the new configuration commits.
struct remove_learner {
  /// Caller's token, echoed in the answer.
  uint64_t request_id = 0;
  /// The learner to remove.
  node_id id = no_node;
};

/// Changes the voting members with joint consensus (thesis §4.3): the leader
/// appends C(old,new), and once that commits, C(new). Answered once C(new)
/// commits. New voters must be caught-up learners (or voters already);
/// removed voters leave the cluster.
struct change_membership {
  /// Caller's token, echoed in the answer.
  uint64_t request_id = 0;
  /// The voters of the new configuration.
  std::set<node_id> voters;
};

/// Hands leadership to `target` (thesis §3.10); answered once this node
/// learns that the target leads.
struct transfer_leadership {
  /// Caller's token, echoed in the answer.
  uint64_t request_id = 0;
  /// The voter that should lead.
  node_id target = no_node;
};

/// How a read is made safe.
enum class read_mode : uint8_t {
  /// ReadIndex (thesis §6.4): confirm leadership with a quorum round.
  linearizable,
  /// Leader lease (thesis §6.4.1): trust clocks, no round; needs
  /// `core_config::lease_reads`, otherwise it falls back to linearizable.
  lease,
};

/// A client wants to read: the core answers `read_ready` when the state
/// machine may serve the read (on a leader or, via the leader, a follower).
struct read_request {
  /// Caller's token, echoed in the answer.
  uint64_t request_id = 0;
  /// Safety mechanism to use.
  read_mode mode = read_mode::linearizable;
};

/// UNSAFE disaster recovery, for when a majority of voters is permanently
/// lost: this node appends a configuration in which it is the only voter
/// (keeping the learners) in a new term, and then elects itself. Entries
/// that were committed by the lost majority but are missing from this
/// node's log are lost for good, and the other nodes' data must be wiped
/// before they rejoin (as learners). Never use it while the others can
/// come back.
struct unsafe_force_sole_voter {
  /// Caller's token, echoed in the answer.
  uint64_t request_id = 0;
};

/// The runtime finished the snapshot asked for with `build_snapshot`: it is
/// durable and the latest one.
struct snapshot_built {
  /// The runtime's id for the snapshot (unique per snapshot).
  uint64_t snapshot_id = 0;
  /// Its last included entry (as named in build_snapshot).
  log_id last_included;
};

/// The runtime could not hand messages for `peer` to the transport (the
/// peer is unreachable): whatever was in flight to it is lost, so the leader
/// stops waiting for answers and probes again at the next heartbeat.
struct peer_unreachable {
  /// The peer.
  node_id peer = no_node;
};

/// An operator asks for a snapshot now (§7), whatever snapshot_interval
/// says; answered with request_succeeded once a snapshot covering at least
/// the entries applied when it was asked is durable.
struct trigger_snapshot {
  /// Caller's token, echoed in the answer.
  uint64_t request_id = 0;
};

/// Any input of the core.
using event
  = std::variant<message_received, timer_fired, client_proposal,
                 initialize_cluster, writes_persisted, entries_applied,
                 add_learner, remove_learner, change_membership,
                 transfer_leadership, read_request, snapshot_built,
                 unsafe_force_sole_voter, peer_unreachable, trigger_snapshot>;

} // namespace raft_actor
