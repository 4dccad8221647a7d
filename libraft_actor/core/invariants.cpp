// Self-checks after every step (LogCabin style): a broken invariant means a
// bug or corrupted state, and the node must stop rather than carry on.
#include "libraft_actor/core/raft_core.hpp"

#include <sstream>

namespace raft_actor {

std::string raft_core::describe() const {
  std::ostringstream os;
  os << "node " << cfg_.id << " role=" << to_string(role_)
     << " term=" << hs_.current_term << " voted_for=" << hs_.voted_for
     << " leader=" << leader_id_ << " log=[snapshot " << log_.base_id().term
     << "/" << log_.base_id().index << ", last " << log_.last_id().term << "/"
     << log_.last_id().index << "] commit=" << commit_index_
     << " applying=" << applying_ << " applied=" << last_applied_
     << " durable_index=" << durable_index_ << " writes=" << durable_seq_ << "/"
     << last_write_seq_ << " deferred=" << deferred_.size() << " voters={";
  for (const auto& kv : config_.voters)
    os << kv.first << ' ';
  os << "} learners={";
  for (const auto& kv : config_.learners)
    os << kv.first << ' ';
  os << "}";
  if (config_.joint) {
    os << " old_voters={";
    for (const auto& kv : config_.old_voters)
      os << kv.first << ' ';
    os << "}";
  }
  for (const auto& [id, pr] : progress_)
    os << " peer " << id << "{" << to_string(pr.state)
       << " match=" << pr.match_index << " next=" << pr.next_index
       << " inflight=" << pr.inflight.size() << "}";
  return os.str();
}

void raft_core::check_invariants() const {
  auto fail = [this](const std::string& what) {
    throw invariant_violation("invariant broken: " + what + " -- "
                              + describe());
  };
  auto last = log_.last_index();
  if (commit_index_ > last)
    fail("commit_index beyond the last log index");
  if (!(last_applied_ <= applying_ && applying_ <= commit_index_))
    fail("last_applied <= applying <= commit_index does not hold");
  if (applying_ > durable_index_ && applying_ > log_.base_id().index)
    fail("handed out entries for applying that are not durable");
  if (durable_index_ > last)
    fail("durable_index beyond the last log index");
  if (log_.base_id().index > commit_index_)
    fail("snapshot beyond commit_index");
  if (log_.last_term() > hs_.current_term)
    fail("log holds a term beyond current_term");
  if (snapshot_.last_included.index > commit_index_)
    fail("snapshot covers uncommitted entries");
  if (snapshot_.last_included.index > 0
      && snapshot_.last_included.index >= log_.first_index()
      && !log_.matches(snapshot_.last_included))
    fail("log disagrees with the snapshot's last entry");
  if (durable_seq_ > last_write_seq_)
    fail("more writes durable than issued");
  if (role_ == node_role::leader) {
    if (leader_id_ != cfg_.id)
      fail("leader does not name itself leader");
    if (hs_.voted_for != cfg_.id)
      fail("leader did not vote for itself");
    for (const auto& [id, pr] : progress_) {
      if (pr.match_index > last)
        fail("match_index of node " + std::to_string(id) + " beyond the log");
      if (pr.next_index <= pr.match_index || pr.next_index > last + 1)
        fail("next_index of node " + std::to_string(id) + " out of range");
    }
  } else if (!progress_.empty()) {
    fail("non-leader tracks peer progress");
  }
  if (role_ == node_role::candidate && hs_.voted_for != cfg_.id)
    fail("candidate did not vote for itself");
}

} // namespace raft_actor
