// Error codes the core reports for client and admin requests.
#pragma once

#include <cstdint>

namespace raft_actor {

/// Why a client or admin request failed. One enum for the whole framework;
/// the actor layer registers it with CAF.
enum class raft_error : uint8_t {
  /// No error.
  none = 0,
  /// This node is not the leader; the request was certainly not appended.
  not_leader,
  /// Appended, but leadership was lost before commit: it may still commit.
  unknown_outcome,
  /// The payload exceeds the configured maximum.
  payload_too_large,
  /// `initialize` on a node whose log is not empty, with another membership.
  already_initialized,
  /// The request's arguments are invalid (e.g. an empty membership).
  invalid_argument,
  /// The cluster has not been initialized yet.
  not_initialized,
  /// A configuration change is already in progress.
  config_change_in_progress,
  /// The node is shutting down.
  shutting_down,
  /// Storage failed; the node stops.
  storage_failed,
  /// The request names a node that is not a member.
  unknown_node,
  /// Too many requests pending.
  overloaded,
  /// No quorum could be reached in time.
  timeout,
  /// A learner to promote is too far behind the leader's log.
  learner_behind,
  /// A leadership transfer is in progress; retry at the target.
  leadership_transfer_in_progress,
  /// The node cannot be reached: the connection failed or was lost.
  unreachable,
};

/// Stable lower-case name of an error code, for logs and APIs.
const char* to_string(raft_error e);

} // namespace raft_actor
