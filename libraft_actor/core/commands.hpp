// Outputs of the pure core: what the runtime must do, in order.
//
// Contract with the runtime:
// - Storage writes (`save_hard_state`, `truncate_log`, `append_log`) carry
//   increasing sequence numbers and must be made durable in that order; the
//   runtime reports progress with `writes_persisted{seq}`. The core itself
//   holds back every message whose truth depends on a write until that write
//   is durable (thesis §3.8), so the runtime may send `send_message` at once.
// - `apply_entries` hands out committed entries in order; report back with
//   `entries_applied` once they are applied.
// - `set_timer` replaces any earlier timer: deliver `timer_fired` at or after
//   the deadline.
#pragma once

#include "libraft_actor/core/config.hpp"
#include "libraft_actor/core/errors.hpp"
#include "messages/rpc.hpp"

#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace raft_actor {

/// The role of a node (§5.1, plus pre-vote's pre-candidate).
enum class node_role : uint8_t {
  follower,
  pre_candidate,
  candidate,
  leader,
};

/// Stable lower-case name of a role.
const char* to_string(node_role r);

/// Durably store term and vote (write number `seq`).
struct save_hard_state {
  /// Write sequence number.
  uint64_t seq = 0;
  /// The state to store.
  hard_state state;
};

/// Durably delete every log entry with index >= `from` (write `seq`).
struct truncate_log {
  /// Write sequence number.
  uint64_t seq = 0;
  /// First index to delete.
  index_t from = 0;
};

/// Durably append contiguous `entries` after the current last entry.
struct append_log {
  /// Write sequence number.
  uint64_t seq = 0;
  /// Entries, contiguous and following the log's last entry.
  std::vector<log_entry> entries;
};

/// Send a message to another node (may be lost; the core copes).
struct send_message {
  /// The message; `header.to` names the receiver.
  raft_message message;
};

/// Apply these committed entries, in order, to the state machine.
struct apply_entries {
  /// Contiguous committed entries following the last handed-out entry.
  std::vector<log_entry> entries;
};

/// A proposal was appended to the leader's log at `id`; its answer comes
/// when the entry at `id` is applied (if the entry there still has id.term).
struct proposal_accepted {
  /// The proposal's token.
  uint64_t request_id = 0;
  /// Where the entry was appended.
  log_id id;
};

/// A client or admin request failed.
struct request_failed {
  /// The request's token.
  uint64_t request_id = 0;
  /// Why.
  raft_error error = raft_error::none;
  /// Known leader, if any (for `not_leader`).
  node_id leader_hint = no_node;
  /// Human-readable detail.
  std::string detail;
};

/// An admin request (e.g. initialize) succeeded.
struct request_succeeded {
  /// The request's token.
  uint64_t request_id = 0;
};

/// A read may now be served: the state machine has applied at least
/// `read_index`, and that index reflects every write committed before the
/// read arrived (thesis §6.4).
struct read_ready {
  /// The read's token.
  uint64_t request_id = 0;
  /// The index the read must observe (already applied).
  index_t read_index = 0;
};

/// Take a snapshot of the state machine as of `last_included` (§7). The
/// core emits it only when every handed-out entry is applied, so the state
/// machine is exactly at that index when the command is executed in order.
/// Report back with `snapshot_built`. If a newer snapshot was installed from
/// the leader in the meantime, the store keeps that newer one as latest.
/// Until then no write_snapshot_chunk is issued (the store has one slot for
/// a snapshot in the making), and a partly received snapshot is abandoned.
struct build_snapshot {
  /// The snapshot's last included entry.
  log_id last_included;
  /// Membership as of that entry, to store with the snapshot.
  membership config;
};

/// Durably drop log entries up to and including `up_to` (write `seq`); a
/// snapshot covers them.
struct purge_log {
  /// Write sequence number.
  uint64_t seq = 0;
  /// Last index to drop.
  index_t up_to = 0;
};

/// Send one chunk of the latest snapshot to a follower: fill
/// `request.data` with up to `max_bytes` bytes of snapshot
/// `request.snapshot_id` starting at `request.offset`, set `request.done`
/// if that reaches the end, and send the request.
struct send_snapshot_chunk {
  /// Everything but data and done.
  install_snapshot_request request;
  /// Largest chunk to read.
  size_t max_bytes = 0;
};

/// Durably store a received snapshot chunk (write `seq`); a chunk at offset
/// 0 starts a new incoming snapshot and discards any partial one.
struct write_snapshot_chunk {
  /// Write sequence number.
  uint64_t seq = 0;
  /// The incoming snapshot.
  uint64_t snapshot_id = 0;
  /// Where the bytes go.
  uint64_t offset = 0;
  /// The bytes.
  std::vector<uint8_t> data;
};

/// The incoming snapshot is complete (write `seq`): make it the latest
/// snapshot, restore the state machine from it, and drop log entries up to
/// last_included (all entries if `keep_log_suffix` is false) -- §7.
struct install_snapshot {
  /// Write sequence number.
  uint64_t seq = 0;
  /// The snapshot.
  uint64_t snapshot_id = 0;
  /// Its last included entry.
  log_id last_included;
  /// Membership as of last_included.
  membership config;
  /// True if the log holds last_included: entries after it stay.
  bool keep_log_suffix = false;
};

/// Wake the core at `deadline` (replaces the previous timer).
struct set_timer {
  /// Monotonic deadline.
  raft_duration deadline{0};
};

/// Role, term or known leader changed (for logs and metrics).
struct role_changed {
  /// New role.
  node_role role = node_role::follower;
  /// Current term.
  term_t term = 0;
  /// Known leader (0 if none).
  node_id leader = no_node;
};

/// Severity of a diagnostic.
enum class severity : uint8_t { debug, info, warning, error };

/// Something the runtime should log: usually rejected bad input.
struct diagnostic {
  /// How serious.
  severity level = severity::info;
  /// What happened.
  std::string text;
};

/// Any output of the core.
using command
  = std::variant<save_hard_state, truncate_log, append_log, send_message,
                 apply_entries, proposal_accepted, request_failed,
                 request_succeeded, read_ready, set_timer, role_changed,
                 diagnostic, build_snapshot, purge_log, send_snapshot_chunk,
                 write_snapshot_chunk, install_snapshot>;

/// The write sequence number of a storage command, or 0 if `c` is not a
/// storage write.
inline uint64_t write_sequence(const command& c) {
  return std::visit(
    [](const auto& x) -> uint64_t {
      using T = std::decay_t<decltype(x)>;
      if constexpr (
        std::is_same_v<
          T,
          save_hard_state> || std::is_same_v<T, truncate_log> || std::is_same_v<T, append_log> || std::is_same_v<T, purge_log> || std::is_same_v<T, write_snapshot_chunk> || std::is_same_v<T, install_snapshot>)
        return x.seq;
      else
        return 0;
    },
    c);
}

} // namespace raft_actor
