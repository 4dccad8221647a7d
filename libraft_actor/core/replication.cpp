// Log replication (§5.3) and the commit rule (§5.4.2): AppendEntries on both
// sides, flow control per peer, heartbeats, commit and apply.
#include "libraft_actor/core/quorum.hpp"
#include "libraft_actor/core/raft_core.hpp"

#include "messages/membership_codec.hpp"

#include <algorithm>
#include <limits>

namespace raft_actor {

// -- follower side ------------------------------------------------------------

bool raft_core::accept_leader_message(term_t term, node_id from) {
  if (term == hs_.current_term && role_ == node_role::leader) {
    // Election Safety (§5.2) says this cannot happen: never trust it.
    report(severity::error, "node " + std::to_string(from)
                              + " claims to lead our own term "
                              + std::to_string(term) + "; ignoring it");
    return false;
  }
  if (term > hs_.current_term || role_ != node_role::follower)
    become_follower(term, from);
  if (leader_id_ == no_node) {
    leader_id_ = from;
  } else if (leader_id_ != from) {
    report(severity::error, "two leaders claim term " + std::to_string(term)
                              + ": node " + std::to_string(leader_id_)
                              + " and node " + std::to_string(from)
                              + "; ignoring the latter");
    return false;
  }
  check_transfer(leader_id_);
  heard_leader_ = true;
  last_leader_contact_ = now_.monotonic;
  reset_election_deadline();
  return true;
}

bool raft_core::validate_append(const append_entries_request& req,
                                std::string& why) {
  if (req.prev_log.term > req.term) {
    why = "prev_log term " + std::to_string(req.prev_log.term)
          + " is beyond the request's term " + std::to_string(req.term);
    return false;
  }
  if (req.prev_log.index == 0 && req.prev_log.term != 0) {
    why = "prev_log at index 0 must have term 0";
    return false;
  }
  if (req.prev_log.index
      > std::numeric_limits<index_t>::max() - req.entries.size()) {
    why = "entry indexes overflow";
    return false;
  }
  auto prev_term = req.prev_log.term;
  for (size_t i = 0; i < req.entries.size(); ++i) {
    const auto& e = req.entries[i];
    auto expected = req.prev_log.index + 1 + i;
    if (e.id.index != expected) {
      why = "entry " + std::to_string(i) + " has index "
            + std::to_string(e.id.index) + ", expected "
            + std::to_string(expected);
      return false;
    }
    if (e.id.term > req.term || e.id.term < prev_term) {
      why = "entry at index " + std::to_string(e.id.index) + " has term "
            + std::to_string(e.id.term) + ", out of order";
      return false;
    }
    prev_term = e.id.term;
    if (static_cast<uint8_t>(e.kind)
        > static_cast<uint8_t>(entry_kind::membership)) {
      why = "entry at index " + std::to_string(e.id.index)
            + " has unknown kind " + std::to_string(static_cast<int>(e.kind));
      return false;
    }
    if (e.kind == entry_kind::membership) {
      membership m;
      std::string codec_error;
      if (!decode_membership(e.payload, m, codec_error)) {
        why = "membership entry at index " + std::to_string(e.id.index)
              + " is malformed: " + codec_error;
        return false;
      }
    }
  }
  return true;
}

void raft_core::handle_append_entries(const append_entries_request& req) {
  auto from = req.header.from;
  std::string why;
  if (!validate_append(req, why)) {
    report(severity::warning, "dropping append_entries_request from node "
                                + std::to_string(from) + ": " + why);
    return;
  }
  append_entries_response resp;
  resp.header = header_to(from);
  resp.rejected_prev_index = req.prev_log.index;
  resp.round = req.round;
  if (req.term < hs_.current_term) {
    // §5.1: a stale leader learns the newer term from our answer.
    resp.term = hs_.current_term;
    resp.last_log_index = log_.last_index();
    send(resp);
    return;
  }
  if (!accept_leader_message(req.term, from))
    return;
  resp.term = hs_.current_term;

  // Entries at or below our snapshot are committed and therefore match.
  auto prev = req.prev_log;
  size_t skip = 0;
  if (prev.index < log_.base_id().index) {
    skip = static_cast<size_t>(
      std::min<index_t>(log_.base_id().index - prev.index, req.entries.size()));
    prev = skip > 0 ? req.entries[skip - 1].id : prev;
    if (prev.index < log_.base_id().index)
      prev = log_.base_id();
  }

  // §5.3 consistency check: reject unless our log holds prev_log.
  if (!log_.matches(prev)) {
    resp.success = false;
    if (prev.index > log_.last_index()) {
      resp.conflict_term = 0;
      resp.conflict_index = log_.last_index() + 1;
    } else {
      resp.conflict_term = *log_.term_at(prev.index);
      resp.conflict_index
        = log_.first_index_of_term_at(prev.index, commit_index_ + 1);
    }
    resp.last_log_index = log_.last_index();
    send(resp);
    return;
  }

  // §5.3 rule 3: delete an existing entry that conflicts with a new one (same
  // index, different term) and all that follow; never a committed one.
  size_t i = skip;
  for (; i < req.entries.size(); ++i) {
    const auto& e = req.entries[i];
    if (e.id.index > log_.last_index())
      break;
    if (log_.term_at(e.id.index) == e.id.term)
      continue;
    if (e.id.index <= commit_index_) {
      report(severity::error, "leader " + std::to_string(from) + " of term "
                                + std::to_string(req.term)
                                + " would overwrite committed entry at index "
                                + std::to_string(e.id.index)
                                + "; refusing the request");
      return;
    }
    log_.truncate_from(e.id.index);
    persist_truncate(e.id.index);
    if (config_index_ >= e.id.index)
      refresh_config(); // thesis §4.1: roll back to the previous config
    break;
  }
  if (i < req.entries.size()) {
    std::vector<log_entry> fresh(
      req.entries.begin() + static_cast<std::ptrdiff_t>(i), req.entries.end());
    for (const auto& e : fresh) {
      log_.append(e);
      if (e.kind == entry_kind::membership) {
        membership m;
        std::string ignored;
        decode_membership(e.payload, m, ignored); // validated above
        config_index_ = e.id.index;
        set_config(m);
      }
    }
    persist_append(std::move(fresh));
  }
  // Figure 2 rule 5: commitIndex = min(leaderCommit, index of last new entry).
  auto match = req.prev_log.index + req.entries.size();
  auto new_commit = std::min(req.leader_commit, match);
  if (new_commit > commit_index_)
    commit_index_ = new_commit;
  resp.success = true;
  resp.match_index = match;
  resp.last_log_index = log_.last_index();
  send(resp); // held back until the appended entries are durable
  maybe_apply();
}

// -- leader side --------------------------------------------------------------

void raft_core::handle_append_entries_response(
  const append_entries_response& resp) {
  auto from = resp.header.from;
  if (resp.term > hs_.current_term) {
    become_follower(resp.term, no_node);
    return;
  }
  if (role_ != node_role::leader || resp.term < hs_.current_term)
    return; // stale: from an earlier term or after we stepped down
  auto it = progress_.find(from);
  if (it == progress_.end()) {
    report(severity::warning, "ignoring append_entries_response from node "
                                + std::to_string(from)
                                + ", which is not a member");
    return;
  }
  auto& pr = it->second;
  pr.recent_active = true;
  on_round_acked(from, resp.round);
  if (pr.state == replication_state::snapshot) {
    // Only a success at or past our base means the snapshot is not needed.
    if (!resp.success || resp.match_index < log_.base_id().index
        || resp.match_index > log_.last_index())
      return;
    pr.become_probe();
  }
  if (resp.success) {
    if (resp.match_index > log_.last_index()) {
      report(severity::warning,
             "ignoring append_entries_response from node "
               + std::to_string(from) + ": acknowledges index "
               + std::to_string(resp.match_index) + " beyond our last index "
               + std::to_string(log_.last_index()));
      return;
    }
    bool advanced = pr.on_ack(resp.match_index);
    if (pr.state == replication_state::probe)
      pr.become_replicate();
    if (advanced)
      maybe_commit();
    // Committing may have changed the configuration (and erased `pr`).
    if (role_ != node_role::leader)
      return; // removed from the configuration and stepped down
    it = progress_.find(from);
    if (it == progress_.end())
      return; // the peer left the configuration
    send_append(from, it->second, false);
    if (advanced && transfer_ && transfer_->target == from)
      maybe_send_timeout_now();
    if (advanced && pending_config_ && pending_config_->learner == from)
      advance_config_change();
    return;
  }
  // Rejection. Ignore stale ones: for a request we know matched, or (while
  // probing) for anything but the outstanding probe.
  auto p = resp.rejected_prev_index;
  if (p <= pr.match_index)
    return;
  if (pr.state == replication_state::probe && p != pr.next_index - 1)
    return;
  if (p > log_.last_index()) {
    report(severity::warning, "ignoring rejection from node "
                                + std::to_string(from) + " for index "
                                + std::to_string(p) + " beyond our log");
    return;
  }
  // Fast backtracking (§5.3, end): skip a whole conflicting term at once.
  index_t next = 0;
  if (resp.conflict_term == 0) {
    next = resp.conflict_index;
  } else {
    auto idx = log_.last_index_with_term_at_most(resp.conflict_term, p);
    if (log_.term_at(idx) == resp.conflict_term)
      next = idx + 1;
    else
      next = std::min(resp.conflict_index, idx + 1);
  }
  // Keep the probe strictly before the rejected position and after match.
  next = std::clamp(next, pr.match_index + 1, p);
  pr.become_probe();
  pr.next_index = next;
  send_append(from, pr, true);
}

void raft_core::send_append(node_id to, progress& pr, bool allow_empty) {
  if (pr.state == replication_state::snapshot)
    return;
  do {
    bool paused = pr.paused(cfg_);
    if (paused && !allow_empty)
      return;
    auto prev_index = pr.next_index - 1;
    auto prev_term = log_.term_at(prev_index);
    if (!prev_term) {
      // §7: the entries it needs were compacted away: send the snapshot.
      start_snapshot_transfer(to, pr);
      return;
    }
    append_entries_request req;
    req.header = header_to(to);
    req.term = hs_.current_term;
    req.prev_log = {*prev_term, prev_index};
    if (!paused)
      req.entries = log_.batch(pr.next_index, cfg_.max_entries_per_append,
                               cfg_.max_bytes_per_append);
    if (req.entries.empty() && !allow_empty)
      return;
    req.leader_commit = commit_index_;
    req.round = round_;
    size_t bytes = 0;
    for (const auto& e : req.entries)
      bytes += e.payload.size();
    if (!paused)
      pr.on_sent(prev_index + req.entries.size(), bytes, now_.monotonic);
    send(std::move(req));
    allow_empty = false;
    // In replicate state keep filling the pipeline while the window allows.
  } while (pr.state == replication_state::replicate
           && pr.next_index <= log_.last_index());
}

void raft_core::broadcast_append() {
  for (auto& kv : progress_)
    send_append(kv.first, kv.second, false);
}

void raft_core::send_heartbeats() {
  // §5.2: empty AppendEntries keep followers from starting elections. They
  // check the log only at match_index, which always matches, and carry the
  // commit index clamped to it (a follower may only commit what matches).
  ++round_;
  round_wanted_ = false;
  round_sent_at_.emplace_back(round_, now_.monotonic);
  while (round_sent_at_.size() > 64)
    round_sent_at_.pop_front();
  for (auto& [to, pr] : progress_) {
    if (pr.state == replication_state::probe) {
      // The outstanding probe may have been lost: probe again.
      pr.probe_sent = false;
      send_append(to, pr, true);
      continue;
    }
    // A peer receiving a snapshot may be behind our log's base: check at
    // the base then (a rejection is ignored in snapshot state, but the
    // heartbeat still keeps the peer from campaigning).
    auto match_term = log_.term_at(pr.match_index);
    auto prev
      = match_term ? log_id{*match_term, pr.match_index} : log_.base_id();
    append_entries_request req;
    req.header = header_to(to);
    req.term = hs_.current_term;
    req.prev_log = prev;
    req.leader_commit = std::min(commit_index_, pr.match_index);
    req.round = round_;
    send(std::move(req));
  }
  update_confirmed_round(); // a lone voter confirms its round by itself
}

void raft_core::expire_stale_inflight() {
  // A pipelined request unanswered for an election timeout is presumed lost
  // (with everything after it): fall back to probing from match_index.
  for (auto& [to, pr] : progress_) {
    if (pr.state != replication_state::replicate || pr.inflight.empty())
      continue;
    if (now_.monotonic - pr.inflight.front().sent_at
        < cfg_.election_timeout_min)
      continue;
    pr.become_probe();
    send_append(to, pr, true);
  }
}

void raft_core::maybe_commit() {
  // The leader counts itself only for entries durable on its own disk; its
  // write proceeds in parallel with replication (thesis §10.2.1).
  auto match = [this](node_id id) -> index_t {
    if (id == cfg_.id)
      return durable_index_;
    auto i = progress_.find(id);
    return i == progress_.end() ? 0 : i->second.match_index;
  };
  auto idx = quorum_index(config_, match);
  // §5.4.2: only entries of the current term are committed by counting
  // replicas; earlier ones are committed indirectly (Figure 8).
  if (idx > commit_index_ && log_.term_at(idx) == hs_.current_term) {
    commit_index_ = idx;
    if (!reads_awaiting_commit_.empty()) {
      auto waiting = std::move(reads_awaiting_commit_);
      reads_awaiting_commit_.clear();
      for (auto& r : waiting)
        leader_read(r, false);
    }
  }
  maybe_apply();
  advance_config_change();
}

void raft_core::maybe_apply() {
  // Apply only what is committed and durable here, so that a state machine
  // that persists never runs ahead of the local log.
  auto upto = std::min(commit_index_, durable_index_);
  if (upto <= applying_)
    return;
  emit(apply_entries{log_.slice(applying_ + 1, upto)});
  applying_ = upto;
}

void raft_core::on_peer_unreachable(node_id peer) {
  if (role_ != node_role::leader)
    return;
  auto it = progress_.find(peer);
  if (it == progress_.end())
    return;
  auto& pr = it->second;
  // What was in flight never left this node: stop waiting for its answers
  // (that would take an election timeout) and probe again with the next
  // heartbeat, when the transport may take messages again.
  switch (pr.state) {
    case replication_state::replicate:
      pr.become_probe();
      pr.probe_sent = true; // the next heartbeat round sends the probe
      break;
    case replication_state::probe:
      pr.probe_sent = true; // likewise
      break;
    case replication_state::snapshot:
      // Resend the current chunk with the next heartbeat round.
      pr.snapshot_sent_at = now_.monotonic - 2 * cfg_.heartbeat_interval;
      break;
  }
}

} // namespace raft_actor
