// Linearizable reads without writing to the log (thesis §6.4): ReadIndex on
// the leader, batched heartbeat rounds that confirm leadership, reads served
// by followers through the leader, and optional lease reads (§6.4.1).
#include "libraft_actor/core/quorum.hpp"
#include "libraft_actor/core/raft_core.hpp"

#include <algorithm>

namespace raft_actor {

bool raft_core::current_term_committed() const {
  // Thesis §6.4 step 1: until an entry of its own term commits, a new leader
  // does not know which entries are committed.
  return log_.term_at(commit_index_) == hs_.current_term;
}

void raft_core::handle_read_request(read_request& req) {
  if (role_ == node_role::leader) {
    if (transfer_) {
      emit(request_failed{
        req.request_id, raft_error::leadership_transfer_in_progress,
        transfer_->target, "a leadership transfer is in progress"});
      return;
    }
    pending_read r;
    r.request_id = req.request_id;
    leader_read(r, req.mode == read_mode::lease && cfg_.lease_reads);
    return;
  }
  if (role_ == node_role::follower && leader_id_ != no_node) {
    // Thesis §6.4: a follower asks the leader for a read index, then waits
    // until its own state machine has applied it.
    auto id = next_read_id_++;
    follower_reads_[id] = follower_read{
      req.request_id, now_.monotonic + cfg_.election_timeout_max};
    read_index_request m;
    m.header = header_to(leader_id_);
    m.term = hs_.current_term;
    m.read_id = id;
    send(m);
    return;
  }
  emit(request_failed{req.request_id, raft_error::not_leader, leader_id_,
                      "no leader known to serve the read"});
}

void raft_core::leader_read(pending_read r, bool lease) {
  if (!current_term_committed()) {
    reads_awaiting_commit_.push_back(r);
    return;
  }
  r.read_index = commit_index_;
  if (lease && now_.monotonic < lease_until_) {
    // Thesis §6.4.1: within the lease no other leader can exist, so the
    // commit index is current without a round.
    r.round = 0;
    reads_awaiting_round_.push_front(r);
    finish_confirmed_reads();
    return;
  }
  // Step 2: confirm leadership with a round sent after the read arrived.
  // Every read that arrives before that round goes out shares it.
  r.round = round_ + 1;
  reads_awaiting_round_.push_back(r);
  request_read_round();
}

void raft_core::request_read_round() {
  round_wanted_ = true;
  if (confirmed_round_ >= round_)
    send_heartbeats(); // nothing in flight: start a round now
  // Otherwise the next round starts when the one in flight is confirmed.
}

void raft_core::on_round_acked(node_id from, uint64_t round) {
  auto it = progress_.find(from);
  if (it == progress_.end() || round > round_)
    return;
  if (round <= it->second.acked_round)
    return;
  it->second.acked_round = round;
  update_confirmed_round();
}

void raft_core::update_confirmed_round() {
  auto acked = [this](node_id id) -> index_t {
    if (id == cfg_.id)
      return round_;
    auto p = progress_.find(id);
    return p == progress_.end() ? 0 : p->second.acked_round;
  };
  auto confirmed = quorum_index(config_, acked);
  if (confirmed <= confirmed_round_)
    return;
  confirmed_round_ = confirmed;
  if (cfg_.lease_reads && !transfer_) {
    // Followers that answered round r heard from us after it was sent; they
    // refuse other candidates for election_timeout_min from then on.
    for (const auto& [r, sent_at] : round_sent_at_)
      if (r == confirmed)
        lease_until_
          = std::max(lease_until_, sent_at + cfg_.election_timeout_min
                                     - cfg_.max_clock_drift);
  }
  finish_confirmed_reads();
  if (round_wanted_ && confirmed_round_ >= round_
      && !reads_awaiting_round_.empty())
    send_heartbeats();
}

void raft_core::finish_confirmed_reads() {
  while (!reads_awaiting_round_.empty()
         && reads_awaiting_round_.front().round <= confirmed_round_) {
    auto r = reads_awaiting_round_.front();
    reads_awaiting_round_.pop_front();
    if (r.remote != no_node) {
      read_index_response m;
      m.header = header_to(r.remote);
      m.term = hs_.current_term;
      m.read_id = r.remote_read_id;
      m.success = true;
      m.read_index = r.read_index;
      send(m);
    } else {
      reads_awaiting_apply_.push_back(r);
    }
  }
  release_applied_reads();
}

void raft_core::release_applied_reads() {
  // Step 3: answer once the state machine has applied the read index.
  auto ready
    = [this](const pending_read& r) { return r.read_index <= last_applied_; };
  for (const auto& r : reads_awaiting_apply_)
    if (ready(r))
      emit(read_ready{r.request_id, r.read_index});
  reads_awaiting_apply_.erase(std::remove_if(reads_awaiting_apply_.begin(),
                                             reads_awaiting_apply_.end(),
                                             ready),
                              reads_awaiting_apply_.end());
}

void raft_core::handle_read_index_request(const read_index_request& req) {
  auto from = req.header.from;
  if (req.term > hs_.current_term)
    become_follower(req.term, no_node);
  if (role_ != node_role::leader || req.term != hs_.current_term || transfer_
      || !config_.contains(from)) {
    read_index_response m;
    m.header = header_to(from);
    m.term = hs_.current_term;
    m.read_id = req.read_id;
    m.success = false;
    send(m);
    return;
  }
  pending_read r;
  r.remote = from;
  r.remote_read_id = req.read_id;
  leader_read(r, false);
}

void raft_core::handle_read_index_response(const read_index_response& resp) {
  if (resp.term > hs_.current_term) {
    become_follower(resp.term, no_node);
    return;
  }
  auto it = follower_reads_.find(resp.read_id);
  if (it == follower_reads_.end())
    return; // answered already, expired, or failed on a leader change
  auto request_id = it->second.request_id;
  follower_reads_.erase(it);
  if (!resp.success || resp.term != hs_.current_term
      || resp.header.from != leader_id_) {
    emit(request_failed{request_id, raft_error::not_leader, leader_id_,
                        "the leader could not confirm the read"});
    return;
  }
  pending_read r;
  r.request_id = request_id;
  r.read_index = resp.read_index;
  reads_awaiting_apply_.push_back(r);
  release_applied_reads();
}

void raft_core::fail_reads(raft_error e, const std::string& why) {
  auto fail = [&](const pending_read& r) {
    if (r.remote != no_node) {
      read_index_response m;
      m.header = header_to(r.remote);
      m.term = hs_.current_term;
      m.read_id = r.remote_read_id;
      m.success = false;
      send(m);
    } else {
      emit(request_failed{r.request_id, e, leader_id_, why});
    }
  };
  for (const auto& r : reads_awaiting_commit_)
    fail(r);
  for (const auto& r : reads_awaiting_round_)
    fail(r);
  reads_awaiting_commit_.clear();
  reads_awaiting_round_.clear();
  // Reads already confirmed stay valid: their read index was current when
  // confirmed, whatever happens to leadership afterwards.
}

void raft_core::fail_follower_reads(raft_error e, const std::string& why) {
  for (const auto& kv : follower_reads_)
    emit(request_failed{kv.second.request_id, e, leader_id_, why});
  follower_reads_.clear();
}

void raft_core::expire_follower_reads() {
  for (auto it = follower_reads_.begin(); it != follower_reads_.end();) {
    if (it->second.deadline <= now_.monotonic) {
      emit(request_failed{it->second.request_id, raft_error::timeout,
                          leader_id_,
                          "the leader did not answer the read in time"});
      it = follower_reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void raft_core::on_leadership_lost() {
  if (pending_config_) {
    emit(request_failed{pending_config_->request_id,
                        raft_error::unknown_outcome, no_node,
                        "leadership was lost before the configuration change "
                        "committed; it may still take effect"});
    pending_config_.reset();
  }
  fail_reads(raft_error::not_leader, "leadership was lost");
  lease_until_ = raft_duration{0};
}

} // namespace raft_actor
