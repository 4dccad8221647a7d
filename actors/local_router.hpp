// The in-process transport seam: delivers peer traffic between nodes of one
// process, and lets tests cut links in either direction.
#pragma once

#include "libraft_actor/node.hpp"

namespace raft_actor {

/// Makes node `node` reachable under `id`.
struct router_attach {
  /// The node's id.
  node_id id = no_node;
  /// Its core actor.
  node_actor node;
};

/// Cuts (or heals) the link from `from` to `to`.
struct router_cut {
  /// Sender side.
  node_id from = no_node;
  /// Receiver side.
  node_id to = no_node;
  /// True to drop messages on this link, false to deliver them again.
  bool cut = true;
};

/// A router for nodes in one process, with fault injection.
using local_router_actor = router_actor::extend<caf::reacts_to<router_attach>,
                                                caf::reacts_to<router_cut>>;

/// Spawns an in-process router.
local_router_actor spawn_local_router(caf::actor_system& sys);

} // namespace raft_actor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::router_attach)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::router_cut)
