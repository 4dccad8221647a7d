// Inputs of the pure core: everything that can happen to a node.
#pragma once

#include "messages/rpc.hpp"

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

/// Any input of the core.
using event
  = std::variant<message_received, timer_fired, client_proposal,
                 initialize_cluster, writes_persisted, entries_applied>;

} // namespace raft_actor
