// Registration of the Raft message types with CAF, needed for every type
// that crosses a process boundary as a top-level message element (an
// unregistered type arrives as `unknown_type`). In one process CAF needs no
// registration.
#pragma once

#include <caf/fwd.hpp>

namespace raft_actor {

/// Registers every top-level message type of messages/ with `cfg` under the
/// name "raft_actor::<type>": the RPC structs, `log_entry`, `log_id`,
/// `membership` and `hard_state`. Call it once per actor system config,
/// before constructing the actor system.
void add_message_types(caf::actor_system_config& cfg);

} // namespace raft_actor
