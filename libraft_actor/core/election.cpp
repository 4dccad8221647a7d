// Leader election (§5.2) with the election restriction (§5.4.1), pre-vote
// (thesis §9.6), leader stickiness (thesis §4.2.3) and check-quorum
// (thesis §6.2).
#include "libraft_actor/core/quorum.hpp"
#include "libraft_actor/core/raft_core.hpp"

namespace raft_actor {

void raft_core::on_election_timeout() {
  if (role_ == node_role::leader || !is_voter())
    return;
  // Only the election TimeoutNow started may bypass leader stickiness; one
  // that follows after it timed out is an ordinary election.
  transfer_campaign_ = false;
  // Thesis §9.6: first ask whether we could win, without touching terms, so
  // that a node returning from a partition does not depose a healthy leader.
  campaign(cfg_.pre_vote);
}

void raft_core::become_pre_candidate() {
  fail_follower_reads(raft_error::not_leader, "the leader was lost");
  role_ = node_role::pre_candidate;
  leader_id_ = no_node;
  heard_leader_ = false;
  votes_.clear();
  votes_[cfg_.id] = true; // nothing to persist: a pre-vote changes no state
  reset_election_deadline();
}

void raft_core::become_candidate() {
  // §5.2: increment currentTerm, vote for self. The vote is persisted first
  // and counted only once durable (see on_writes_persisted).
  fail_follower_reads(raft_error::not_leader, "the leader was lost");
  set_hard_state({hs_.current_term + 1, cfg_.id});
  campaign_seq_ = last_write_seq_;
  role_ = node_role::candidate;
  leader_id_ = no_node;
  heard_leader_ = false;
  votes_.clear();
  reset_election_deadline();
}

void raft_core::campaign(bool pre_vote) {
  if (pre_vote)
    become_pre_candidate();
  else
    become_candidate();
  auto term = pre_vote ? hs_.current_term + 1 : hs_.current_term;
  for (auto* group : {&config_.voters, &config_.old_voters})
    for (const auto& kv : *group) {
      if (kv.first == cfg_.id)
        continue;
      if (group == &config_.old_voters && config_.voters.count(kv.first))
        continue;
      request_vote_request req;
      req.header = header_to(kv.first);
      req.term = term;
      req.last_log = log_.last_id();
      req.pre_vote = pre_vote;
      req.leadership_transfer = transfer_campaign_;
      send(req);
    }
  // A one-voter pre-vote wins at once; a real vote waits for the disk.
  if (pre_vote && tally(config_, votes_) == vote_result::won)
    campaign(false);
}

bool raft_core::in_leader_lease() const {
  if (!cfg_.check_quorum)
    return false;
  if (role_ == node_role::leader)
    return true;
  return heard_leader_ && leader_id_ != no_node
         && now_.monotonic - last_leader_contact_ < cfg_.election_timeout_min;
}

void raft_core::handle_request_vote(const request_vote_request& req) {
  auto from = req.header.from;
  request_vote_response resp;
  resp.header = header_to(from);
  resp.pre_vote = req.pre_vote;
  // Thesis §4.2.3: while we hear from a live leader, ignore candidates (and
  // do not adopt their term) unless the leader itself asked for the election.
  if (req.term > hs_.current_term && !req.leadership_transfer
      && (in_leader_lease() || now_.monotonic < vote_blackout_until_)) {
    resp.term = hs_.current_term;
    resp.vote_granted = false;
    send(resp);
    return;
  }
  if (req.term < hs_.current_term) {
    // §5.1: reject requests from stale terms; our term updates the sender.
    resp.term = hs_.current_term;
    send(resp);
    return;
  }
  if (!req.pre_vote && req.term > hs_.current_term)
    become_follower(req.term, no_node);
  // Figure 2: vote if votedFor is null or candidateId. A follower that knows
  // this term's leader does not vote for anyone else in it.
  bool can_vote = hs_.voted_for == from
                  || (hs_.voted_for == no_node && leader_id_ == no_node)
                  || (req.pre_vote && req.term > hs_.current_term);
  // §5.4.1 election restriction: the candidate's log must be at least as
  // up-to-date as ours: compare last terms, then last indexes.
  bool up_to_date = req.last_log >= log_.last_id();
  bool grant = can_vote && up_to_date;
  if (grant && !req.pre_vote) {
    set_hard_state({hs_.current_term, from});
    reset_election_deadline();
  }
  // A granted pre-vote answers in the candidate's prospective term so the
  // candidate can tell it apart from a stale answer.
  resp.term = grant && req.pre_vote ? req.term : hs_.current_term;
  resp.vote_granted = grant;
  send(resp);
}

void raft_core::handle_request_vote_response(
  const request_vote_response& resp) {
  auto from = resp.header.from;
  if (!config_.is_voter(from)) {
    report(severity::warning, "ignoring vote response from node "
                                + std::to_string(from)
                                + ", which is not a voter");
    return;
  }
  if (resp.pre_vote) {
    if (resp.vote_granted) {
      if (role_ == node_role::pre_candidate
          && resp.term == hs_.current_term + 1)
        count_vote(from, true);
      return;
    }
    if (resp.term > hs_.current_term) {
      become_follower(resp.term, no_node);
      return;
    }
    if (role_ == node_role::pre_candidate)
      count_vote(from, false);
    return;
  }
  if (resp.term > hs_.current_term) {
    become_follower(resp.term, no_node);
    return;
  }
  if (role_ != node_role::candidate || resp.term != hs_.current_term)
    return; // stale
  count_vote(from, resp.vote_granted);
}

void raft_core::count_vote(node_id from, bool granted) {
  votes_.emplace(from, granted); // the first answer of each voter counts
  switch (tally(config_, votes_)) {
    case vote_result::pending:
      return;
    case vote_result::won:
      if (role_ == node_role::pre_candidate)
        campaign(false);
      else if (role_ == node_role::candidate)
        become_leader();
      return;
    case vote_result::lost:
      become_follower(hs_.current_term, no_node);
      return;
  }
}

void raft_core::check_quorum_round() {
  // Thesis §6.2: a leader that cannot reach a quorum within an election
  // timeout steps down, so clients can find the real leader.
  auto active = [this](node_id id) {
    if (id == cfg_.id)
      return true;
    auto i = progress_.find(id);
    return i != progress_.end() && i->second.recent_active;
  };
  if (!has_quorum(config_, active)) {
    report(severity::info,
           "stepping down: no contact with a quorum for an election timeout");
    become_follower(hs_.current_term, no_node);
    return;
  }
  for (auto& kv : progress_)
    kv.second.recent_active = false;
  check_quorum_deadline_ = now_.monotonic + cfg_.election_timeout_min;
}

} // namespace raft_actor
