#include "messages/caf_types.hpp"

#include "messages/caf_inspect.hpp"
#include "messages/rpc.hpp"
#include "messages/types.hpp"

#include <caf/actor_system_config.hpp>

namespace raft_actor {

void add_message_types(caf::actor_system_config& cfg) {
  // -- RPCs (Figure 2, §7, thesis §3.10) --------------------------------------
  cfg.add_message_type<request_vote_request>(
    "raft_actor::request_vote_request");
  cfg.add_message_type<request_vote_response>(
    "raft_actor::request_vote_response");
  cfg.add_message_type<append_entries_request>(
    "raft_actor::append_entries_request");
  cfg.add_message_type<append_entries_response>(
    "raft_actor::append_entries_response");
  cfg.add_message_type<install_snapshot_request>(
    "raft_actor::install_snapshot_request");
  cfg.add_message_type<install_snapshot_response>(
    "raft_actor::install_snapshot_response");
  cfg.add_message_type<timeout_now_request>("raft_actor::timeout_now_request");
  cfg.add_message_type<read_index_request>("raft_actor::read_index_request");
  cfg.add_message_type<read_index_response>("raft_actor::read_index_response");
  // -- vocabulary that may travel on its own ----------------------------------
  cfg.add_message_type<log_id>("raft_actor::log_id");
  cfg.add_message_type<log_entry>("raft_actor::log_entry");
  cfg.add_message_type<membership>("raft_actor::membership");
  cfg.add_message_type<hard_state>("raft_actor::hard_state");
}

} // namespace raft_actor
