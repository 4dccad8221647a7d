// Cluster membership changes (thesis §4): learners, and joint consensus for
// arbitrary changes of the voting members. A configuration takes effect as
// soon as it is in the log (see set_config); only one change is in flight.
#include "libraft_actor/core/raft_core.hpp"

#include "messages/membership_codec.hpp"

namespace raft_actor {

bool raft_core::config_change_allowed(uint64_t request_id) {
  auto fail = [&](raft_error e, std::string why) {
    emit(request_failed{request_id, e, leader_id_, std::move(why)});
    return false;
  };
  if (role_ != node_role::leader)
    return fail(raft_error::not_leader,
                "node " + std::to_string(cfg_.id) + " is not the leader");
  if (transfer_)
    return fail(raft_error::leadership_transfer_in_progress,
                "a leadership transfer is in progress");
  if (pending_config_ || config_.joint || config_index_ > commit_index_)
    return fail(raft_error::config_change_in_progress,
                "another configuration change is still in progress");
  // A leader changes the configuration only after committing an entry of
  // its own term; otherwise an uncommitted change of an earlier leader could
  // still be overwritten (the single-server change bug, Ongaro 2015).
  if (!current_term_committed())
    return fail(raft_error::config_change_in_progress,
                "the new leader has not committed an entry of its term yet");
  return true;
}

void raft_core::propose_config(const membership& m, uint64_t request_id,
                               node_id learner, bool wait_caught_up) {
  append_as_leader(entry_kind::membership, encode_membership(m));
  pending_config_ = pending_config_change{request_id, log_.last_index(),
                                          learner, wait_caught_up, false};
  broadcast_append();
}

void raft_core::handle_add_learner(add_learner& req) {
  if (req.id == no_node) {
    emit(request_failed{req.request_id, raft_error::invalid_argument, no_node,
                        "node id 0 is reserved"});
    return;
  }
  if (role_ == node_role::leader && config_.is_voter(req.id)) {
    emit(
      request_failed{req.request_id, raft_error::invalid_argument, no_node,
                     "node " + std::to_string(req.id) + " is already a voter"});
    return;
  }
  if (!config_change_allowed(req.request_id))
    return;
  auto known = config_.learners.find(req.id);
  if (known != config_.learners.end() && known->second == req.address
      && !req.wait_caught_up) {
    emit(request_succeeded{req.request_id}); // already there: a no-op
    return;
  }
  membership m = config_;
  m.learners[req.id] = req.address;
  if (m == config_) {
    // Same learner, but the caller wants to wait for it to catch up.
    pending_config_ = pending_config_change{req.request_id, config_index_,
                                            req.id, true, false};
    advance_config_change();
    return;
  }
  propose_config(m, req.request_id, req.id, req.wait_caught_up);
}

void raft_core::handle_remove_learner(remove_learner& req) {
  if (role_ == node_role::leader && !config_.is_learner(req.id)) {
    emit(
      request_failed{req.request_id, raft_error::unknown_node, no_node,
                     "node " + std::to_string(req.id) + " is not a learner"});
    return;
  }
  if (!config_change_allowed(req.request_id))
    return;
  membership m = config_;
  m.learners.erase(req.id);
  propose_config(m, req.request_id, no_node, false);
}

void raft_core::handle_change_membership(change_membership& req) {
  auto fail = [&](raft_error e, std::string why) {
    emit(request_failed{req.request_id, e, no_node, std::move(why)});
  };
  if (role_ == node_role::leader) {
    if (req.voters.empty())
      return fail(raft_error::invalid_argument,
                  "a configuration needs at least one voter");
    for (auto id : req.voters) {
      if (id == no_node)
        return fail(raft_error::invalid_argument, "node id 0 is reserved");
      if (!config_.contains(id))
        return fail(raft_error::unknown_node,
                    "node " + std::to_string(id)
                      + " is not a member; add it as a learner first");
    }
  }
  if (!config_change_allowed(req.request_id))
    return;
  membership m;
  for (auto id : req.voters) {
    if (config_.is_learner(id)) {
      // Promote only a learner that is nearly caught up, so that the new
      // majority can commit at once instead of stalling the cluster.
      auto it = progress_.find(id);
      index_t match = it == progress_.end() ? 0 : it->second.match_index;
      if (log_.last_index() - match > cfg_.max_learner_lag)
        return fail(raft_error::learner_behind,
                    "learner " + std::to_string(id) + " is "
                      + std::to_string(log_.last_index() - match)
                      + " entries behind (limit "
                      + std::to_string(cfg_.max_learner_lag) + ")");
      m.voters[id] = config_.learners.at(id);
    } else {
      m.voters[id] = config_.voters.at(id);
    }
  }
  if (m.voters == config_.voters) {
    emit(request_succeeded{req.request_id}); // nothing to change
    return;
  }
  m.learners = config_.learners;
  for (const auto& kv : m.voters)
    m.learners.erase(kv.first);
  // Thesis §4.3: first the joint configuration C(old,new)...
  m.joint = true;
  m.old_voters = config_.voters;
  propose_config(m, req.request_id, no_node, false);
}

void raft_core::handle_unsafe_force_sole_voter(unsafe_force_sole_voter& req) {
  if (config_.voters.empty() && config_.old_voters.empty()) {
    emit(request_failed{req.request_id, raft_error::not_initialized, no_node,
                        "this node holds no configuration to recover"});
    return;
  }
  std::string address;
  if (auto it = config_.voters.find(cfg_.id); it != config_.voters.end())
    address = it->second;
  else if (auto ot = config_.old_voters.find(cfg_.id);
           ot != config_.old_voters.end())
    address = ot->second;
  else if (auto lt = config_.learners.find(cfg_.id);
           lt != config_.learners.end())
    address = lt->second;
  else {
    emit(request_failed{req.request_id, raft_error::unknown_node, no_node,
                        "this node is not a member of its configuration"});
    return;
  }
  report(severity::error,
         "UNSAFE RECOVERY: forcing a configuration with node "
           + std::to_string(cfg_.id)
           + " as the only voter; committed entries this node lacks are lost "
             "and the other members' data must be wiped before they rejoin");
  if (role_ == node_role::leader)
    become_follower(hs_.current_term, no_node);
  // A new term above every entry and vote so far, voted for ourselves: no
  // other leader of this term can exist, and the forced entry outranks every
  // entry a lost member may still hold (§5.4.1 compares last terms first).
  auto term = hs_.current_term + 1;
  set_hard_state({term, cfg_.id});
  role_ = node_role::follower;
  leader_id_ = no_node;
  membership m;
  m.voters[cfg_.id] = address;
  m.learners = config_.learners;
  m.learners.erase(cfg_.id);
  log_entry e;
  e.id = {term, log_.last_index() + 1};
  e.kind = entry_kind::membership;
  e.leader_time_ms = now_.wall_ms;
  e.payload = encode_membership(m);
  log_.append(e);
  persist_append({e});
  config_index_ = e.id.index;
  set_config(m);
  pending_config_.reset();
  transfer_.reset();
  // Campaign at the next timer: a lone voter elects itself at once.
  election_deadline_ = now_.monotonic + raft_duration{1};
  emit(request_succeeded{req.request_id});
}

void raft_core::advance_config_change() {
  if (role_ != node_role::leader)
    return;
  if (config_.joint && config_index_ <= commit_index_) {
    // ...then, once C(old,new) is committed, C(new) (thesis §4.3). A new
    // leader that inherits a committed joint configuration finishes it.
    membership m;
    m.voters = config_.voters;
    m.learners = config_.learners;
    append_as_leader(entry_kind::membership, encode_membership(m));
    if (pending_config_)
      pending_config_->wait_index = log_.last_index();
    broadcast_append();
    return;
  }
  if (config_.joint || config_index_ > commit_index_)
    return;
  // The configuration is committed: stop tracking members it removed.
  for (auto it = progress_.begin(); it != progress_.end();)
    it = config_.contains(it->first) ? std::next(it) : progress_.erase(it);
  if (pending_config_ && commit_index_ >= pending_config_->wait_index) {
    bool ready = true;
    if (pending_config_->wait_caught_up && pending_config_->learner) {
      auto it = progress_.find(pending_config_->learner);
      ready
        = it != progress_.end()
          && it->second.match_index >= pending_config_->wait_index
          && log_.last_index() - it->second.match_index <= cfg_.max_learner_lag;
    }
    if (ready) {
      emit(request_succeeded{pending_config_->request_id});
      pending_config_.reset();
    }
  }
  if (!is_voter()) {
    // Thesis §4.2.2: a leader removed from the configuration steps down once
    // C(new) is committed; it managed the cluster until then.
    report(severity::info, "stepping down: this node is no longer a voter");
    become_follower(hs_.current_term, no_node);
  }
}

} // namespace raft_actor
