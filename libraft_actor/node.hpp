// The public API of a raft-actor node: spawn one in your CAF application,
// then talk to it with ordinary typed messages (client writes and reads,
// admin commands). Errors come back as CAF errors of category "raft" whose
// code is a raft_error.
#pragma once

#include "libraft_actor/core/commands.hpp"
#include "libraft_actor/core/config.hpp"
#include "libraft_actor/core/errors.hpp"
#include "libraft_actor/core/events.hpp"
#include "messages/caf_inspect.hpp"
#include "storage/interfaces.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/make_message.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace raft_actor {

// -- configuration ------------------------------------------------------------

/// Everything a node needs besides its stores and state machine.
struct node_config {
  /// Protocol settings: id, cluster id, timeouts, batching and windows.
  core_config core;
  /// Client requests waiting for an answer beyond which new ones are refused
  /// with raft_error::overloaded.
  size_t max_pending_requests = 10000;
  /// How long a client request may wait before it fails with
  /// raft_error::timeout (writes: unknown_outcome once appended).
  std::chrono::milliseconds request_timeout{5000};
  /// Run the storage worker on its own thread (turn off only for CAF's
  /// deterministic test scheduler).
  bool detached_storage = true;
  /// A follower that knows the leader passes client writes on to it (over
  /// the router, i.e. the Raft network) instead of answering not_leader.
  bool forward_to_leader = true;
  /// Exactly-once sessions idle longer than this (in the leader's time
  /// stamped on log entries) are forgotten.
  std::chrono::milliseconds session_ttl{std::chrono::hours(1)};
  /// Per peer: AppendEntries requests carrying entries that the transport
  /// has not yet confirmed taking (peer_accepted). Beyond this, requests
  /// wait in the peer's replication stream and are merged; heartbeats never
  /// wait.
  size_t max_unconfirmed_sends = 4;
  /// Per peer: bytes of waiting requests beyond which the oldest are dropped
  /// (the leader probes again; nothing is lost).
  size_t max_queued_bytes = 64 << 20;
  /// First pause of a replication stream after the transport refused a
  /// message; each further failure doubles it up to transport_backoff_max.
  std::chrono::milliseconds transport_backoff_min{10};
  /// Longest such pause.
  std::chrono::milliseconds transport_backoff_max{500};
  /// How long the transport may take to confirm a message.
  std::chrono::milliseconds transport_timeout{1000};
  /// Metrics subscribers hear of moving indices at most this often (role,
  /// term, leader and membership changes are sent at once).
  std::chrono::milliseconds metrics_interval{100};

  /// Empty if usable, else a sentence naming the first problem.
  std::string validate() const;
};

// -- client messages ----------------------------------------------------------

/// Append a command to the replicated log; answered with write_result once
/// it is committed and applied.
struct client_write {
  /// The command for the state machine.
  std::vector<uint8_t> payload;
  /// For exactly-once writes (thesis §6.3): the client's id (0: none)...
  uint64_t client_id = 0;
  /// ...and its sequence number for this write. A retry with the same pair
  /// returns the first answer instead of applying the command again.
  uint64_t sequence = 0;
};

/// Answer to client_write.
struct write_result {
  /// Where the command sits in the log.
  index_t index = 0;
  /// The state machine's response.
  std::vector<uint8_t> response;
};

/// How a read is made safe (client_read).
enum class consistency : uint8_t {
  /// Linearizable via ReadIndex (the default).
  linearizable = 0,
  /// Leader lease (needs core_config::lease_reads, else linearizable).
  lease = 1,
  /// Whatever this node has applied: fast, possibly stale.
  stale = 2,
};

/// Run a read-only query against the state machine.
struct client_read {
  /// The query for the state machine.
  std::vector<uint8_t> query;
  /// Safety level.
  consistency mode = consistency::linearizable;
};

/// Answer to client_read.
struct read_result {
  /// Log index the answer reflects.
  index_t index = 0;
  /// The state machine's answer.
  std::vector<uint8_t> answer;
};

// -- admin messages -----------------------------------------------------------

/// Form a new cluster with this membership (see initialize_cluster).
struct admin_initialize {
  /// The founding members.
  membership config;
};

/// Add a non-voting member.
struct admin_add_learner {
  /// The learner's id.
  node_id id = no_node;
  /// Its address.
  std::string address;
  /// Answer only once it caught up.
  bool wait_caught_up = false;
};

/// Remove a learner.
struct admin_remove_learner {
  /// The learner.
  node_id id = no_node;
};

/// Change the voters with joint consensus.
struct admin_change_membership {
  /// The new voters.
  std::set<node_id> voters;
};

/// Hand leadership to another voter.
struct admin_transfer_leadership {
  /// The voter that should lead.
  node_id to = no_node;
};

/// The words an operator must pass to admin_unsafe_force_sole_voter.
constexpr const char* unsafe_recovery_confirmation
  = "I accept that committed writes may be lost";

/// UNSAFE: when a majority of voters is lost for good, make this node the
/// only voter (see unsafe_force_sole_voter for what can be lost). Refused
/// unless `confirm` is exactly unsafe_recovery_confirmation.
struct admin_unsafe_force_sole_voter {
  /// Must equal unsafe_recovery_confirmation.
  std::string confirm;
};

/// Remove a member: a learner at once, a voter by a joint-consensus change
/// to the remaining voters.
struct admin_remove_node {
  /// The member to remove.
  node_id id = no_node;
};

/// Take a snapshot now, whatever the snapshot policy says; answered once a
/// snapshot covering everything applied so far is durable.
struct admin_trigger_snapshot {};

/// Ask for the node's metrics.
struct admin_get_metrics {};

/// Stop the node: pending requests fail with shutting_down.
struct admin_shutdown {};

/// Answer to an admin command that has no other result.
struct admin_done {};

/// What happened at a node since it started.
struct node_counters {
  /// Client writes this node proposed as leader (forwarded ones included).
  uint64_t proposals = 0;
  /// Elections it started (it became candidate).
  uint64_t elections = 0;
  /// Times it became leader.
  uint64_t leaderships = 0;
  /// Snapshots it built.
  uint64_t snapshots_built = 0;
  /// Snapshots it installed from a leader.
  uint64_t snapshots_installed = 0;
};

/// A node's view of itself and its peers.
struct node_metrics {
  /// This node.
  node_id id = no_node;
  /// Its role.
  node_role role = node_role::follower;
  /// Current term.
  term_t term = 0;
  /// Known leader (0 if none).
  node_id leader = no_node;
  /// Commit index.
  index_t commit_index = 0;
  /// Last applied index.
  index_t last_applied = 0;
  /// Last log index.
  index_t last_log_index = 0;
  /// Last index covered by a snapshot.
  index_t snapshot_index = 0;
  /// Configuration in effect.
  membership config;
  /// Per peer (leader only): match index.
  std::map<node_id, index_t> match_index;
  /// Per peer (leader only): entries the peer lacks (last_log_index minus
  /// its match index).
  std::map<node_id, index_t> lag;
  /// Event counts since the node started.
  node_counters counters;
};

/// Receives node_metrics updates (see admin_subscribe_metrics).
using metrics_listener_actor = caf::typed_actor<caf::reacts_to<node_metrics>>;

/// Subscribe `listener` to the node's metrics: it gets them at once, then
/// whenever role, term, leader or membership change, and at most every
/// node_config::metrics_interval while indices move. Ends when the listener
/// stops or unsubscribes.
struct admin_subscribe_metrics {
  /// Who gets the updates.
  metrics_listener_actor listener;
};

/// End a subscription made with admin_subscribe_metrics.
struct admin_unsubscribe_metrics {
  /// The subscriber.
  metrics_listener_actor listener;
};

// -- errors -------------------------------------------------------------------

/// The CAF error category of raft_error.
constexpr caf::atom_value raft_error_category = caf::atom("raft");

/// Makes a CAF error from a raft_error with a human-readable detail.
caf::error make_error(raft_error code, std::string detail = {});

/// Registers the "raft" error category and every message type of the node
/// API with a CAF configuration (needed to render errors and to talk to
/// nodes in other processes).
void add_node_types(caf::actor_system_config& cfg);

// -- the node -----------------------------------------------------------------

/// A routed Raft message between nodes of one process (see local_router).
struct peer_message {
  /// The message; its header names sender and receiver.
  raft_message message;
};

/// A peer message whose hand-off the router confirms with peer_accepted
/// (or fails with an error, e.g. unknown_node when there is no route).
/// Replication streams use it for flow control and to notice an unreachable
/// peer; a confirmed message may still be lost on the way.
struct peer_packet {
  /// The message; its header names sender and receiver.
  raft_message message;
};

/// The router took a peer_packet.
struct peer_accepted {};

/// A client write a follower passes on to the leader `to` (never passed on
/// again: a node that is not the leader answers not_leader).
struct forwarded_write {
  /// The node believed to lead.
  node_id to = no_node;
  /// The follower that passes it on.
  node_id from = no_node;
  /// The write.
  client_write write;
};

/// Every node's peer addresses ("host:port" by node id), from its
/// configuration: the node sends it to its router whenever it changes.
struct peer_directory {
  /// Voters and learners, this node included.
  std::map<node_id, std::string> addresses;
};

/// What clients and operators may send a node (in this process or, through
/// the network, from another one: see connect_to_node).
using node_client_actor = caf::typed_actor<
  caf::replies_to<client_write>::with<write_result>,
  caf::replies_to<client_read>::with<read_result>,
  caf::replies_to<admin_initialize>::with<admin_done>,
  caf::replies_to<admin_add_learner>::with<admin_done>,
  caf::replies_to<admin_remove_learner>::with<admin_done>,
  caf::replies_to<admin_change_membership>::with<admin_done>,
  caf::replies_to<admin_transfer_leadership>::with<admin_done>,
  caf::replies_to<admin_get_metrics>::with<node_metrics>,
  caf::replies_to<admin_remove_node>::with<admin_done>,
  caf::replies_to<admin_trigger_snapshot>::with<admin_done>,
  caf::replies_to<admin_subscribe_metrics>::with<admin_done>,
  caf::replies_to<admin_unsubscribe_metrics>::with<admin_done>,
  caf::replies_to<admin_shutdown>::with<admin_done>,
  caf::replies_to<forwarded_write>::with<write_result>,
  caf::replies_to<admin_unsafe_force_sole_voter>::with<admin_done>>;

/// The typed interface of a node's core actor.
using node_actor = node_client_actor::extend<caf::reacts_to<peer_message>>;

/// Where a node sends messages for its peers: the transport seam. A router
/// delivers peer_message and peer_packet to the node named in the header
/// (as a peer_message), and a forwarded_write to node `to` (answering with
/// that node's reply).
using router_actor
  = caf::typed_actor<caf::reacts_to<peer_message>,
                     caf::replies_to<peer_packet>::with<peer_accepted>,
                     caf::replies_to<forwarded_write>::with<write_result>,
                     caf::reacts_to<peer_directory>>;

/// Spawns a node. `stores` and `sm` become the node's; `router` carries its
/// peer traffic. Throws std::invalid_argument on a bad configuration and
/// storage_error on unreadable stores.
node_actor spawn_node(caf::actor_system& sys, node_config cfg,
                      std::shared_ptr<state_machine> sm,
                      std::shared_ptr<stable_store> stable,
                      std::shared_ptr<log_store> log,
                      std::shared_ptr<snapshot_store> snapshots,
                      router_actor router);

// -- inspection ---------------------------------------------------------------

/// Inspects client_write.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, client_write& x) {
  // (Byte vectors load in bounded chunks: see caf_inspect.hpp.)
  caf_detail::bytes_field payload{x.payload};
  return f(caf::meta::type_name("raft_actor::client_write"), payload,
           x.client_id, x.sequence);
}

/// Inspects write_result.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_result& x) {
  caf_detail::bytes_field response{x.response};
  return f(caf::meta::type_name("raft_actor::write_result"), x.index, response);
}

/// Inspects client_read.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, client_read& x) {
  caf_detail::bytes_field query{x.query};
  return f(caf::meta::type_name("raft_actor::client_read"), query, x.mode);
}

/// Inspects read_result.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_result& x) {
  caf_detail::bytes_field answer{x.answer};
  return f(caf::meta::type_name("raft_actor::read_result"), x.index, answer);
}

/// Inspects admin_initialize.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_initialize& x) {
  return f(caf::meta::type_name("raft_actor::admin_initialize"), x.config);
}

/// Inspects admin_add_learner.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_add_learner& x) {
  return f(caf::meta::type_name("raft_actor::admin_add_learner"), x.id,
           x.address, x.wait_caught_up);
}

/// Inspects admin_remove_learner.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_remove_learner& x) {
  return f(caf::meta::type_name("raft_actor::admin_remove_learner"), x.id);
}

/// Inspects admin_change_membership.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        admin_change_membership& x) {
  return f(caf::meta::type_name("raft_actor::admin_change_membership"),
           x.voters);
}

/// Inspects admin_transfer_leadership.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        admin_transfer_leadership& x) {
  return f(caf::meta::type_name("raft_actor::admin_transfer_leadership"), x.to);
}

/// Inspects admin_remove_node.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_remove_node& x) {
  return f(caf::meta::type_name("raft_actor::admin_remove_node"), x.id);
}

/// Inspects admin_trigger_snapshot.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_trigger_snapshot&) {
  return f(caf::meta::type_name("raft_actor::admin_trigger_snapshot"));
}

/// Inspects admin_subscribe_metrics.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        admin_subscribe_metrics& x) {
  return f(caf::meta::type_name("raft_actor::admin_subscribe_metrics"),
           x.listener);
}

/// Inspects admin_unsubscribe_metrics.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        admin_unsubscribe_metrics& x) {
  return f(caf::meta::type_name("raft_actor::admin_unsubscribe_metrics"),
           x.listener);
}

/// Inspects admin_get_metrics.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_get_metrics&) {
  return f(caf::meta::type_name("raft_actor::admin_get_metrics"));
}

/// Inspects admin_shutdown.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_shutdown&) {
  return f(caf::meta::type_name("raft_actor::admin_shutdown"));
}

/// Inspects admin_done.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_done&) {
  return f(caf::meta::type_name("raft_actor::admin_done"));
}

/// Inspects forwarded_write.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, forwarded_write& x) {
  return f(caf::meta::type_name("raft_actor::forwarded_write"), x.to, x.from,
           x.write);
}

/// Inspects admin_unsafe_force_sole_voter.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        admin_unsafe_force_sole_voter& x) {
  return f(caf::meta::type_name("raft_actor::admin_unsafe_force_sole_voter"),
           x.confirm);
}

/// Inspects peer_directory.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_directory& x) {
  return f(caf::meta::type_name("raft_actor::peer_directory"), x.addresses);
}

/// Inspects node_counters.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_counters& x) {
  return f(caf::meta::type_name("raft_actor::node_counters"), x.proposals,
           x.elections, x.leaderships, x.snapshots_built,
           x.snapshots_installed);
}

/// Inspects node_metrics.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_metrics& x) {
  return f(caf::meta::type_name("raft_actor::node_metrics"), x.id, x.role,
           x.term, x.leader, x.commit_index, x.last_applied, x.last_log_index,
           x.snapshot_index, x.config, x.match_index, x.lag, x.counters);
}

} // namespace raft_actor

// In-process peer traffic carries a std::variant, which CAF 0.17 cannot
// serialise; it never leaves the process (the network transport sends the
// individual RPC structs).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::peer_message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::peer_packet)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::peer_accepted)
