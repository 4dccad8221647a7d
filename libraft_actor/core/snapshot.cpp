// Snapshots and log compaction (§7): when to snapshot, compacting the log,
// streaming a snapshot to a follower in resumable chunks, and installing a
// received one.
#include "libraft_actor/core/raft_core.hpp"

#include "messages/membership_codec.hpp"

#include <algorithm>

namespace raft_actor {

namespace {

/// Largest chunk a follower accepts: far above any sane chunk size, far
/// below what could exhaust memory.
constexpr size_t max_accepted_chunk = 64u << 20;

} // namespace

membership raft_core::config_at(index_t index) const {
  membership m;
  find_config(index, m);
  return m;
}

// -- taking snapshots ---------------------------------------------------------

void raft_core::maybe_build_snapshot() {
  bool triggered = !snapshot_triggers_.empty();
  if ((cfg_.snapshot_interval == 0 && !triggered) || snapshot_building_)
    return;
  // Only when nothing is being applied: then the state machine is exactly at
  // last_applied_ when the runtime executes the command in order.
  if (applying_ != last_applied_)
    return;
  auto since = last_applied_ - snapshot_.last_included.index;
  if (!triggered && since < cfg_.snapshot_interval)
    return;
  if (triggered && since == 0) {
    answer_snapshot_triggers(); // the latest snapshot already covers them
    return;
  }
  // A new snapshot replaces the one being streamed to a follower, and the
  // transfer starts over; with frequent snapshots it could never finish.
  // So wait while a transfer runs, unless the log grew four intervals
  // (a transfer to a dead peer must not let the log grow without bound).
  if (!triggered && role_ == node_role::leader
      && since < 4 * cfg_.snapshot_interval)
    for (const auto& kv : progress_)
      if (kv.second.state == replication_state::snapshot)
        return;
  auto term = log_.term_at(last_applied_);
  if (!term)
    return;
  // The snapshot store holds one snapshot in the making: storing this one
  // discards a transfer we were receiving (its leader will start over).
  incoming_.reset();
  snapshot_building_ = true;
  snapshot_requested_ = {*term, last_applied_};
  emit(build_snapshot{snapshot_requested_, config_at(last_applied_)});
}

void raft_core::on_snapshot_built(const snapshot_built& ev) {
  if (!snapshot_building_ || ev.last_included != snapshot_requested_) {
    report(severity::warning, "ignoring snapshot_built for a snapshot that "
                              "was not requested");
    return;
  }
  snapshot_building_ = false;
  if (ev.last_included.index <= snapshot_.last_included.index) {
    maybe_build_snapshot(); // triggers it does not cover ask for another
    return;
  }
  snapshot_.id = ev.snapshot_id;
  snapshot_.last_included = ev.last_included;
  snapshot_.config = config_at(ev.last_included.index);
  // Compact, keeping some entries for followers that lag a little (§7).
  auto idx = ev.last_included.index;
  auto purge = idx > cfg_.snapshot_trailing_entries
                 ? idx - cfg_.snapshot_trailing_entries
                 : 0;
  if (purge > log_.base_id().index) {
    snapshot_config_ = config_at(purge);
    log_.purge_to(purge);
    auto seq = ++last_write_seq_;
    emit(purge_log{seq, purge});
  }
  answer_snapshot_triggers();
  maybe_build_snapshot(); // triggers asked for after this one was started
}

void raft_core::answer_snapshot_triggers() {
  auto covered = snapshot_.last_included.index;
  auto& t = snapshot_triggers_;
  for (auto it = t.begin(); it != t.end();) {
    if (it->second <= covered) {
      emit(request_succeeded{it->first});
      it = t.erase(it);
    } else {
      ++it;
    }
  }
}

void raft_core::handle_trigger_snapshot(const trigger_snapshot& req) {
  // The snapshot must cover what was applied when the operator asked; one
  // already being built may be older, so wait for a later one then.
  snapshot_triggers_.emplace_back(req.request_id, last_applied_);
  maybe_build_snapshot();
}

// -- sending snapshots (leader) -----------------------------------------------

void raft_core::start_snapshot_transfer(node_id to, progress& pr) {
  if (snapshot_.id == 0) {
    report(severity::error, "node " + std::to_string(to)
                              + " needs compacted entries, but no snapshot "
                                "is known");
    return;
  }
  pr.state = replication_state::snapshot;
  pr.inflight.clear();
  pr.inflight_bytes = 0;
  pr.probe_sent = false;
  pr.snapshot_id = snapshot_.id;
  pr.snapshot_last = snapshot_.last_included;
  pr.snapshot_offset = 0;
  send_snapshot_chunk_to(to, pr);
}

void raft_core::send_snapshot_chunk_to(node_id to, progress& pr) {
  send_snapshot_chunk cmd;
  auto& req = cmd.request;
  req.header = header_to(to);
  req.term = hs_.current_term;
  req.snapshot_id = pr.snapshot_id;
  req.last_included = pr.snapshot_last;
  req.config = pr.snapshot_id == snapshot_.id
                 ? snapshot_.config
                 : config_at(pr.snapshot_last.index);
  req.offset = pr.snapshot_offset;
  cmd.max_bytes = cfg_.snapshot_chunk_bytes;
  pr.snapshot_sent_at = now_.monotonic;
  emit(std::move(cmd));
}

void raft_core::resend_stale_snapshot_chunks() {
  for (auto& [to, pr] : progress_) {
    if (pr.state != replication_state::snapshot)
      continue;
    if (pr.snapshot_id != snapshot_.id) {
      start_snapshot_transfer(to, pr); // a newer snapshot exists: send it
      continue;
    }
    if (now_.monotonic - pr.snapshot_sent_at >= 2 * cfg_.heartbeat_interval)
      send_snapshot_chunk_to(to, pr); // the chunk or its answer was lost
  }
}

void raft_core::handle_install_snapshot_response(
  const install_snapshot_response& resp) {
  auto from = resp.header.from;
  if (resp.term > hs_.current_term) {
    become_follower(resp.term, no_node);
    return;
  }
  if (role_ != node_role::leader || resp.term < hs_.current_term)
    return;
  auto it = progress_.find(from);
  if (it == progress_.end()) {
    report(severity::warning, "ignoring install_snapshot_response from node "
                                + std::to_string(from)
                                + ", which is not a member");
    return;
  }
  auto& pr = it->second;
  pr.recent_active = true;
  if (pr.state != replication_state::snapshot
      || resp.snapshot_id != pr.snapshot_id)
    return; // stale
  if (resp.done) {
    // The follower's log now matches ours up to the snapshot (§7).
    bool advanced = pr.on_ack(pr.snapshot_last.index);
    pr.become_probe();
    if (advanced)
      maybe_commit();
    if (role_ != node_role::leader)
      return;
    it = progress_.find(from);
    if (it != progress_.end())
      send_append(from, it->second, true);
    return;
  }
  if (pr.snapshot_id != snapshot_.id) {
    start_snapshot_transfer(from, pr); // ours was replaced: send the new one
    return;
  }
  pr.snapshot_offset = resp.next_offset; // resume (or restart) there
  send_snapshot_chunk_to(from, pr);
}

// -- receiving snapshots (follower) -------------------------------------------

void raft_core::handle_install_snapshot(const install_snapshot_request& req) {
  auto from = req.header.from;
  auto drop = [&](const std::string& why) {
    report(severity::warning, "dropping install_snapshot_request from node "
                                + std::to_string(from) + ": " + why);
  };
  if (req.last_included.index == 0)
    return drop("snapshot at index 0");
  if (req.last_included.term > req.term)
    return drop("snapshot term beyond the request's term");
  if (req.config.voters.empty())
    return drop("snapshot membership has no voters");
  if (req.data.size() > max_accepted_chunk)
    return drop("chunk of " + std::to_string(req.data.size())
                + " bytes is too large");
  install_snapshot_response resp;
  resp.header = header_to(from);
  resp.snapshot_id = req.snapshot_id;
  if (req.term < hs_.current_term) {
    resp.term = hs_.current_term; // §5.1: a stale leader learns our term
    send(resp);
    return;
  }
  if (!accept_leader_message(req.term, from))
    return;
  resp.term = hs_.current_term;

  if (req.last_included.index <= commit_index_) {
    // We already hold everything it covers (committed entries match on
    // every server, §5.4.3): nothing to install.
    incoming_.reset();
    resp.next_offset = req.offset + req.data.size();
    resp.done = true;
    send(resp);
    return;
  }
  if (snapshot_building_) {
    // Our own snapshot is being stored, in the store's one slot for a
    // snapshot in the making: drop the chunk unanswered; the leader sends
    // it again after two heartbeat intervals.
    report(severity::debug, "dropping a snapshot chunk while our own "
                            "snapshot is being stored");
    return;
  }
  if (!incoming_ || incoming_->id != req.snapshot_id
      || incoming_->last_included != req.last_included) {
    if (req.offset != 0) {
      // A chunk from the middle of a transfer we know nothing of (we may
      // have restarted): ask for the start instead of trusting it.
      resp.next_offset = 0;
      send(resp);
      return;
    }
    incoming_
      = incoming_snapshot{req.snapshot_id, req.last_included, req.config, 0};
  }
  if (req.offset != incoming_->next_offset) {
    resp.next_offset = incoming_->next_offset; // resume where we are
    send(resp);
    return;
  }
  if (req.offset == 0 || !req.data.empty()) {
    auto seq = ++last_write_seq_;
    emit(write_snapshot_chunk{seq, req.snapshot_id, req.offset, req.data});
    incoming_->next_offset += req.data.size();
  }
  resp.next_offset = incoming_->next_offset;
  if (!req.done) {
    send(resp); // held back until the chunk is durable
    return;
  }
  // §7: if our log holds the snapshot's last entry, keep what follows it;
  // otherwise the snapshot replaces the whole log.
  auto last = req.last_included;
  bool keep = log_.matches(last);
  auto seq = ++last_write_seq_;
  emit(install_snapshot{seq, req.snapshot_id, last, req.config, keep});
  if (keep) {
    if (last.index > log_.base_id().index)
      log_.purge_to(last.index);
  } else {
    log_.reset(last);
    durable_index_ = std::min(durable_index_, last.index);
    for (auto& w : pending_log_writes_)
      w.last_after = std::min(w.last_after, last.index);
  }
  pending_log_writes_.push_back({seq, keep ? log_.last_index() : last.index});
  snapshot_ = snapshot_meta{req.snapshot_id, last, req.config};
  snapshot_config_ = req.config;
  commit_index_ = std::max(commit_index_, last.index);
  // Restoring the state machine from the snapshot is an apply: the runtime
  // confirms it with entries_applied like any other.
  applying_ = std::max(applying_, last.index);
  refresh_config();
  incoming_.reset();
  resp.done = true;
  send(resp); // held back until the snapshot is installed durably
}

} // namespace raft_actor
