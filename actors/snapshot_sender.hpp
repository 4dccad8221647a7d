// Streams the latest snapshot to one peer, one chunk per request of the
// core (which waits for the peer's answer before asking for the next chunk,
// and asks again for a chunk whose answer did not come: that is the flow
// control and the resumption after a lost chunk). The sender reads each
// chunk through the storage worker and reads the following chunk ahead
// while the current one travels, so disk reads overlap the network round
// trip. It runs beside the replication stream, so heartbeats and
// AppendEntries to every peer go on while a snapshot is sent.
#pragma once

#include "actors/storage_worker.hpp"
#include "libraft_actor/node.hpp"

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

namespace raft_actor {

/// Typed interface of a snapshot sender.
using snapshot_sender_actor
  = caf::typed_actor<caf::reacts_to<send_snapshot_chunk>>;

/// Spawns the snapshot sender for one peer, linked to `parent`.
snapshot_sender_actor spawn_snapshot_sender(caf::local_actor* parent,
                                            router_actor router,
                                            storage_worker_actor storage,
                                            caf::timespan timeout);

} // namespace raft_actor
