// The leader's outgoing traffic to one peer. A replication stream sits
// between the core actor and the transport (router): it keeps a bounded
// number of entry-carrying AppendEntries handed to the transport but not yet
// confirmed, merges requests that queue up behind them into bigger ones,
// lets heartbeats and other small messages pass at once, backs off when the
// transport refuses messages (and tells the core, which then probes again
// instead of waiting for answers that cannot come), and hands InstallSnapshot
// chunks to its snapshot sender. What to send stays the core's decision.
#pragma once

#include "actors/snapshot_sender.hpp"
#include "actors/storage_worker.hpp"
#include "libraft_actor/node.hpp"

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

namespace raft_actor {

/// A message from the core actor for the stream's peer.
struct stream_send {
  /// The message; header.to is the stream's peer.
  raft_message message;
};

/// What a stream tells the core actor: the transport refused messages for
/// `peer` (they are lost).
using stream_listener_actor
  = caf::typed_actor<caf::reacts_to<peer_unreachable>>;

/// Limits of one replication stream (from node_config and core_config).
struct stream_limits {
  /// Entry-carrying requests handed to the transport and not yet confirmed.
  size_t max_unconfirmed = 4;
  /// A merged request holds at most this many entries...
  size_t max_entries = 512;
  /// ...and about this many payload bytes (as the core's batches).
  size_t max_bytes = 1 << 20;
  /// Waiting bytes beyond which the oldest waiting requests are dropped.
  size_t max_queued_bytes = 64 << 20;
  /// Capped exponential backoff after a transport failure.
  caf::timespan backoff_min = std::chrono::milliseconds(10);
  /// The cap.
  caf::timespan backoff_max = std::chrono::milliseconds(500);
  /// How long the transport may take to confirm a message.
  caf::timespan transport_timeout = std::chrono::seconds(1);
  /// Largest snapshot chunk read ahead by the snapshot sender.
  size_t snapshot_chunk_bytes = 1 << 20;
};

/// Typed interface of a replication stream.
using replication_stream_actor
  = caf::typed_actor<caf::reacts_to<stream_send>,
                     caf::reacts_to<send_snapshot_chunk>>;

/// Spawns the stream from this node to `peer`, linked to `parent` (the
/// core actor): if either fails, both stop. `storage` serves snapshot
/// chunks.
replication_stream_actor
spawn_replication_stream(caf::local_actor* parent, node_id peer,
                         router_actor router, storage_worker_actor storage,
                         stream_listener_actor listener, stream_limits limits);

/// True if `b` may be appended to `a` as one request: same term, `b` starts
/// right after `a`'s last entry, and the result stays within the limits.
bool can_merge(const append_entries_request& a, const append_entries_request& b,
               size_t max_entries, size_t max_bytes);

/// Appends `b`'s entries to `a`, taking `b`'s commit index and round (both
/// are at least `a`'s, and the merged request is sent after both were made).
void merge_into(append_entries_request& a, append_entries_request&& b);

} // namespace raft_actor

// Local to one process: these hold core messages (std::variant).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::stream_send)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::send_snapshot_chunk)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::peer_unreachable)
