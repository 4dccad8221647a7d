// Leadership transfer (thesis §3.10): the leader stops taking proposals,
// brings the target's log up to date, then sends TimeoutNow; the target
// campaigns at once, and its vote requests may bypass leader stickiness.
#include "libraft_actor/core/raft_core.hpp"

namespace raft_actor {

void raft_core::handle_transfer_leadership(transfer_leadership& req) {
  auto fail = [&](raft_error e, node_id hint, std::string why) {
    emit(request_failed{req.request_id, e, hint, std::move(why)});
  };
  if (role_ != node_role::leader)
    return fail(raft_error::not_leader, leader_id_,
                "node " + std::to_string(cfg_.id) + " is not the leader");
  if (req.target == cfg_.id) {
    emit(request_succeeded{req.request_id}); // already leading
    return;
  }
  if (transfer_)
    return fail(raft_error::leadership_transfer_in_progress, transfer_->target,
                "a leadership transfer is in progress");
  if (!config_.voters.count(req.target))
    return fail(raft_error::unknown_node, no_node,
                "node " + std::to_string(req.target)
                  + " is not a voter of the configuration");
  // The target must catch up within one election timeout, or we resume.
  transfer_ = transfer_state{req.request_id, req.target,
                             now_.monotonic + cfg_.election_timeout_max, false};
  lease_until_ = raft_duration{0};
  auto& pr = progress_.at(req.target);
  if (pr.match_index < log_.last_index())
    send_append(req.target, pr, false);
  maybe_send_timeout_now();
}

void raft_core::maybe_send_timeout_now() {
  if (!transfer_ || role_ != node_role::leader || transfer_->timeout_now_sent)
    return;
  auto it = progress_.find(transfer_->target);
  if (it == progress_.end() || it->second.match_index < log_.last_index())
    return;
  timeout_now_request req;
  req.header = header_to(transfer_->target);
  req.term = hs_.current_term;
  transfer_->timeout_now_sent = true;
  send(req);
}

void raft_core::handle_timeout_now(const timeout_now_request& req) {
  auto from = req.header.from;
  if (req.term < hs_.current_term)
    return; // from a deposed leader
  if (req.term > hs_.current_term)
    become_follower(req.term, from);
  if (leader_id_ != no_node && leader_id_ != from) {
    report(severity::warning, "ignoring timeout_now from node "
                                + std::to_string(from) + ", which is not "
                                + "the leader of term "
                                + std::to_string(hs_.current_term));
    return;
  }
  if (!is_voter() || role_ == node_role::leader) {
    report(severity::warning, "ignoring timeout_now: this node cannot "
                              "campaign");
    return;
  }
  // Skip pre-vote: the leader itself asked us to take over.
  transfer_campaign_ = true;
  campaign(false);
}

void raft_core::check_transfer(node_id new_leader) {
  if (!transfer_ || new_leader == no_node || role_ == node_role::leader)
    return;
  if (new_leader == transfer_->target)
    emit(request_succeeded{transfer_->request_id});
  else
    emit(request_failed{
      transfer_->request_id, raft_error::not_leader, new_leader,
      "node " + std::to_string(new_leader) + " became leader instead of node "
        + std::to_string(transfer_->target)});
  transfer_.reset();
}

void raft_core::check_transfer_deadline() {
  if (!transfer_ || now_.monotonic < transfer_->deadline)
    return;
  emit(request_failed{
    transfer_->request_id, raft_error::timeout, transfer_->target,
    "leadership transfer to node " + std::to_string(transfer_->target)
      + " did not complete within an election timeout"});
  transfer_.reset();
}

} // namespace raft_actor
