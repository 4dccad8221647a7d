// Plumbing of the core: dispatch, roles and terms, durability gating,
// membership tracking, client requests and timers.
#include "libraft_actor/core/raft_core.hpp"

#include "messages/membership_codec.hpp"

#include <algorithm>
#include <sstream>

namespace raft_actor {

// -- names --------------------------------------------------------------------

const char* to_string(node_role r) {
  switch (r) {
    case node_role::follower:
      return "follower";
    case node_role::pre_candidate:
      return "pre_candidate";
    case node_role::candidate:
      return "candidate";
    case node_role::leader:
      return "leader";
  }
  return "?";
}

const char* to_string(raft_error e) {
  switch (e) {
    case raft_error::none:
      return "none";
    case raft_error::not_leader:
      return "not_leader";
    case raft_error::unknown_outcome:
      return "unknown_outcome";
    case raft_error::payload_too_large:
      return "payload_too_large";
    case raft_error::already_initialized:
      return "already_initialized";
    case raft_error::invalid_argument:
      return "invalid_argument";
    case raft_error::not_initialized:
      return "not_initialized";
    case raft_error::config_change_in_progress:
      return "config_change_in_progress";
    case raft_error::shutting_down:
      return "shutting_down";
    case raft_error::storage_failed:
      return "storage_failed";
    case raft_error::unknown_node:
      return "unknown_node";
    case raft_error::overloaded:
      return "overloaded";
    case raft_error::timeout:
      return "timeout";
    case raft_error::learner_behind:
      return "learner_behind";
    case raft_error::leadership_transfer_in_progress:
      return "leadership_transfer_in_progress";
    case raft_error::unreachable:
      return "unreachable";
  }
  return "?";
}

std::string core_config::validate() const {
  if (id == no_node)
    return "node id must not be 0";
  if (election_timeout_min.count() <= 0)
    return "election_timeout_min must be positive";
  if (election_timeout_max < election_timeout_min)
    return "election_timeout_max must be >= election_timeout_min";
  if (heartbeat_interval.count() <= 0)
    return "heartbeat_interval must be positive";
  if (heartbeat_interval >= election_timeout_min)
    return "heartbeat_interval must be below election_timeout_min (§5.6)";
  if (max_entries_per_append == 0)
    return "max_entries_per_append must be positive";
  if (max_bytes_per_append == 0)
    return "max_bytes_per_append must be positive";
  if (max_inflight_appends == 0)
    return "max_inflight_appends must be positive";
  if (max_inflight_bytes == 0)
    return "max_inflight_bytes must be positive";
  if (max_payload_bytes == 0)
    return "max_payload_bytes must be positive";
  if (lease_reads && !check_quorum)
    return "lease_reads needs check_quorum (leader stickiness)";
  if (lease_reads && max_clock_drift >= election_timeout_min)
    return "max_clock_drift must be below election_timeout_min";
  return {};
}

// -- construction -------------------------------------------------------------

raft_core::raft_core(core_config cfg, recovered_state rec, clock_reading now)
    : cfg_(std::move(cfg)), now_(now) {
  if (auto why = cfg_.validate(); !why.empty())
    throw std::invalid_argument("invalid core_config: " + why);
  // splitmix64 state; never zero so that seeds 0 and 1 differ usefully.
  rng_state_ = cfg_.random_seed ^ 0x9e3779b97f4a7c15ull;
  hs_ = rec.state;
  try {
    log_ = raft_log(rec.log_base, std::move(rec.entries));
  } catch (const std::logic_error& e) {
    throw std::invalid_argument(std::string("recovered log is inconsistent: ")
                                + e.what());
  }
  if (log_.last_term() > hs_.current_term)
    throw std::invalid_argument(
      "recovered log holds term " + std::to_string(log_.last_term())
      + " beyond the stored current term " + std::to_string(hs_.current_term));
  if (rec.last_applied > log_.last_index())
    throw std::invalid_argument("recovered last_applied is beyond the log");
  if (rec.snapshot.index < log_.base_id().index
      || (rec.snapshot.index > 0 && !log_.matches(rec.snapshot)))
    throw std::invalid_argument(
      "recovered snapshot does not fit the log: the log must start at or "
      "before the snapshot and hold its last entry");
  if (rec.snapshot.index > 0 && rec.snapshot_config.voters.empty())
    throw std::invalid_argument("recovered snapshot has no membership");
  snapshot_ = snapshot_meta{rec.snapshot_id, rec.snapshot, rec.snapshot_config};
  durable_index_ = log_.last_index();
  last_applied_ = std::max(rec.last_applied, rec.snapshot.index);
  applying_ = last_applied_;
  commit_index_ = last_applied_;
  // The configuration at the log's base: the snapshot's when the log starts
  // there; with trailing entries before the snapshot, config_at() and
  // refresh_config() find any later configuration entry in the log.
  snapshot_config_ = rec.snapshot_config;
  for (auto i = log_.first_index(); i <= log_.last_index(); ++i) {
    const auto& e = log_.at(i);
    if (e.kind == entry_kind::membership) {
      membership m;
      std::string why;
      if (!decode_membership(e.payload, m, why))
        throw std::invalid_argument("recovered membership entry at index "
                                    + std::to_string(i)
                                    + " is malformed: " + why);
    }
  }
  refresh_config();
  reset_election_deadline();
  announced_term_ = hs_.current_term;
  // With lease reads, a restarted node may not remember hearing from the
  // leader: refuse votes for an election timeout so no lease is broken.
  if (cfg_.lease_reads)
    vote_blackout_until_ = now_.monotonic + cfg_.election_timeout_min;
}

// -- the entry point ----------------------------------------------------------

std::vector<command> raft_core::step(clock_reading now, event ev) {
  std::vector<command> out;
  out_ = &out;
  if (now.monotonic > now_.monotonic)
    now_.monotonic = now.monotonic;
  now_.wall_ms = now.wall_ms;
  dispatch(ev);
  update_timer();
  announce_role();
  out_ = nullptr;
  if (cfg_.check_invariants)
    check_invariants();
  return out;
}

void raft_core::dispatch(event& ev) {
  if (auto* m = std::get_if<message_received>(&ev)) {
    if (!validate_header(m->message))
      return;
    std::visit(
      [this](auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, request_vote_request>)
          handle_request_vote(x);
        else if constexpr (std::is_same_v<T, request_vote_response>)
          handle_request_vote_response(x);
        else if constexpr (std::is_same_v<T, append_entries_request>)
          handle_append_entries(x);
        else if constexpr (std::is_same_v<T, append_entries_response>)
          handle_append_entries_response(x);
        else if constexpr (std::is_same_v<T, timeout_now_request>)
          handle_timeout_now(x);
        else if constexpr (std::is_same_v<T, read_index_request>)
          handle_read_index_request(x);
        else if constexpr (std::is_same_v<T, read_index_response>)
          handle_read_index_response(x);
        else if constexpr (std::is_same_v<T, install_snapshot_request>)
          handle_install_snapshot(x);
        else
          handle_install_snapshot_response(x);
      },
      m->message);
  } else if (std::holds_alternative<timer_fired>(ev)) {
    // The runtime's timer is spent: always name the next deadline again,
    // even if it did not change (the timer may have fired early).
    armed_deadline_ = raft_duration{-1};
    auto now = now_.monotonic;
    check_transfer_deadline();
    expire_follower_reads();
    if (role_ == node_role::leader) {
      if (cfg_.check_quorum && now >= check_quorum_deadline_)
        check_quorum_round();
      if (role_ == node_role::leader && now >= heartbeat_deadline_) {
        heartbeat_deadline_ = now + cfg_.heartbeat_interval;
        send_heartbeats();
        expire_stale_inflight();
        resend_stale_snapshot_chunks();
      }
    } else if (is_voter() && now >= election_deadline_) {
      on_election_timeout();
    }
  } else if (auto* p = std::get_if<client_proposal>(&ev)) {
    handle_proposal(*p);
  } else if (auto* init = std::get_if<initialize_cluster>(&ev)) {
    handle_initialize(*init);
  } else if (auto* w = std::get_if<writes_persisted>(&ev)) {
    on_writes_persisted(w->seq);
  } else if (auto* a = std::get_if<entries_applied>(&ev)) {
    on_entries_applied(a->index);
  } else if (auto* al = std::get_if<add_learner>(&ev)) {
    handle_add_learner(*al);
  } else if (auto* rl = std::get_if<remove_learner>(&ev)) {
    handle_remove_learner(*rl);
  } else if (auto* cm = std::get_if<change_membership>(&ev)) {
    handle_change_membership(*cm);
  } else if (auto* tl = std::get_if<transfer_leadership>(&ev)) {
    handle_transfer_leadership(*tl);
  } else if (auto* rr = std::get_if<read_request>(&ev)) {
    handle_read_request(*rr);
  } else if (auto* sb = std::get_if<snapshot_built>(&ev)) {
    on_snapshot_built(*sb);
  } else if (auto* uf = std::get_if<unsafe_force_sole_voter>(&ev)) {
    handle_unsafe_force_sole_voter(*uf);
  } else if (auto* pu = std::get_if<peer_unreachable>(&ev)) {
    on_peer_unreachable(pu->peer);
  } else if (auto* ts = std::get_if<trigger_snapshot>(&ev)) {
    handle_trigger_snapshot(*ts);
  }
}

void raft_core::report(severity level, std::string text) {
  emit(diagnostic{level, std::move(text)});
}

bool raft_core::validate_header(const raft_message& m) {
  const auto& h = header_of(m);
  const char* name = message_name(m);
  auto reject = [&](const std::string& why) {
    report(severity::warning, std::string("dropping ") + name + " from node "
                                + std::to_string(h.from) + ": " + why);
    return false;
  };
  if (h.cluster_id != cfg_.cluster_id)
    return reject("cluster id " + std::to_string(h.cluster_id)
                  + " is not ours (" + std::to_string(cfg_.cluster_id) + ")");
  if (h.version != protocol_version)
    return reject("protocol version " + std::to_string(h.version)
                  + " is not ours (" + std::to_string(protocol_version) + ")");
  if (h.to != cfg_.id)
    return reject("addressed to node " + std::to_string(h.to));
  if (h.from == no_node || h.from == cfg_.id)
    return reject("impossible sender id");
  // A term no real cluster reaches: adopting it would leave no room for
  // further elections (terms must grow), so one bad message would wedge
  // the cluster.
  if (term_of(m) > max_term)
    return reject("term " + std::to_string(term_of(m))
                  + " is beyond any real cluster");
  return true;
}

// -- randomness and timers ----------------------------------------------------

uint64_t raft_core::next_random() {
  if (cfg_.random)
    return cfg_.random();
  // splitmix64: tiny, fast, and good enough for election jitter.
  uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

raft_duration raft_core::random_election_timeout() {
  // §5.2: randomized timeouts make split votes rare.
  auto span = static_cast<uint64_t>(
    (cfg_.election_timeout_max - cfg_.election_timeout_min).count());
  auto jitter = span == 0 ? 0 : next_random() % (span + 1);
  return cfg_.election_timeout_min
         + raft_duration(static_cast<int64_t>(jitter));
}

void raft_core::reset_election_deadline() {
  election_deadline_ = now_.monotonic + random_election_timeout();
}

raft_duration raft_core::next_deadline() const {
  raft_duration d{0};
  auto earliest = [&d](raft_duration x) {
    if (x.count() > 0 && (d.count() == 0 || x < d))
      d = x;
  };
  if (role_ == node_role::leader) {
    earliest(heartbeat_deadline_);
    if (cfg_.check_quorum)
      earliest(check_quorum_deadline_);
  } else if (is_voter()) {
    // Only voters campaign; a learner or an uninitialized node waits.
    earliest(election_deadline_);
  }
  if (transfer_)
    earliest(transfer_->deadline);
  for (const auto& kv : follower_reads_)
    earliest(kv.second.deadline);
  return d;
}

void raft_core::update_timer() {
  auto d = next_deadline();
  if (d != armed_deadline_) {
    armed_deadline_ = d;
    emit(set_timer{d});
  }
}

// -- roles and terms ----------------------------------------------------------

void raft_core::set_hard_state(hard_state hs) {
  if (hs == hs_)
    return;
  hs_ = hs;
  persist_hard_state();
}

void raft_core::become_follower(term_t term, node_id leader) {
  if (role_ == node_role::leader)
    on_leadership_lost();
  bool leader_changed = term > hs_.current_term || leader != leader_id_;
  if (term > hs_.current_term)
    set_hard_state({term, no_node});
  role_ = node_role::follower;
  leader_id_ = leader;
  if (leader_changed) // the failed reads name the new leader as the hint
    fail_follower_reads(raft_error::not_leader,
                        "the leader changed before the read was confirmed");
  check_transfer(leader);
  progress_.clear();
  votes_.clear();
  transfer_campaign_ = false;
  reset_election_deadline();
}

void raft_core::become_leader() {
  role_ = node_role::leader;
  leader_id_ = cfg_.id;
  votes_.clear();
  progress_.clear();
  transfer_campaign_ = false;
  confirmed_round_ = round_;
  if (transfer_) {
    // We won an election after handing off failed: the transfer is over.
    emit(request_failed{transfer_->request_id, raft_error::timeout, cfg_.id,
                        "leadership transfer to node "
                          + std::to_string(transfer_->target) + " failed; node "
                          + std::to_string(cfg_.id) + " leads again"});
    transfer_.reset();
  }
  for (auto* group : {&config_.voters, &config_.learners, &config_.old_voters})
    for (const auto& kv : *group)
      if (kv.first != cfg_.id && progress_.count(kv.first) == 0) {
        progress p;
        p.next_index = log_.last_index() + 1;
        progress_.emplace(kv.first, p);
      }
  heartbeat_deadline_ = now_.monotonic + cfg_.heartbeat_interval;
  check_quorum_deadline_ = now_.monotonic + cfg_.election_timeout_min;
  // §8 / thesis §6.4: a blank entry lets the leader commit entries of earlier
  // terms (§5.4.2 counts replicas of current-term entries only).
  append_as_leader(entry_kind::blank, {});
  broadcast_append();
}

void raft_core::announce_role() {
  if (role_ != announced_role_ || hs_.current_term != announced_term_
      || leader_id_ != announced_leader_) {
    announced_role_ = role_;
    announced_term_ = hs_.current_term;
    announced_leader_ = leader_id_;
    emit(role_changed{role_, hs_.current_term, leader_id_});
  }
}

rpc_header raft_core::header_to(node_id to) const {
  rpc_header h;
  h.cluster_id = cfg_.cluster_id;
  h.version = protocol_version;
  h.from = cfg_.id;
  h.to = to;
  return h;
}

// -- durability gating (thesis §3.8) ------------------------------------------

uint64_t raft_core::persist_hard_state() {
  auto seq = ++last_write_seq_;
  emit(save_hard_state{seq, hs_});
  return seq;
}

void raft_core::persist_truncate(index_t from) {
  auto seq = ++last_write_seq_;
  // Entries at and after `from` are no longer the ones that were (or will
  // be) made durable by earlier writes.
  durable_index_ = std::min(durable_index_, from - 1);
  for (auto& w : pending_log_writes_)
    w.last_after = std::min(w.last_after, from - 1);
  pending_log_writes_.push_back({seq, from - 1});
  emit(truncate_log{seq, from});
}

void raft_core::persist_append(std::vector<log_entry> entries) {
  if (entries.empty())
    return;
  auto seq = ++last_write_seq_;
  pending_log_writes_.push_back({seq, entries.back().id.index});
  emit(append_log{seq, std::move(entries)});
}

void raft_core::send(raft_message m) {
  // Votes, vote requests (after a term change) and acknowledgements state
  // facts about our stable state, so they wait for every earlier write
  // (thesis §3.8). A leader's own replication traffic does not wait for its
  // disk (thesis §10.2.1): it counts itself only once durable. Read-index
  // traffic states nothing about storage.
  bool gated = std::holds_alternative<request_vote_request>(m)
               || std::holds_alternative<request_vote_response>(m)
               || std::holds_alternative<append_entries_response>(m)
               || std::holds_alternative<install_snapshot_response>(m);
  if (gated && last_write_seq_ > durable_seq_)
    deferred_.push_back({last_write_seq_, std::move(m)});
  else
    emit(send_message{std::move(m)});
}

void raft_core::on_writes_persisted(uint64_t seq) {
  if (seq > last_write_seq_) {
    report(severity::error, "storage reported write " + std::to_string(seq)
                              + " durable, but only "
                              + std::to_string(last_write_seq_)
                              + " writes were issued; ignoring");
    return;
  }
  if (seq <= durable_seq_)
    return;
  durable_seq_ = seq;
  while (!pending_log_writes_.empty()
         && pending_log_writes_.front().seq <= seq) {
    durable_index_
      = std::max(durable_index_, pending_log_writes_.front().last_after);
    pending_log_writes_.pop_front();
  }
  durable_index_ = std::min(durable_index_, log_.last_index());
  while (!deferred_.empty() && deferred_.front().seq <= seq) {
    emit(send_message{std::move(deferred_.front().message)});
    deferred_.pop_front();
  }
  if (role_ == node_role::candidate && durable_seq_ >= campaign_seq_
      && votes_.count(cfg_.id) == 0) {
    // Our own vote counts only once it is on disk (thesis §3.8).
    count_vote(cfg_.id, true);
  }
  if (role_ == node_role::leader)
    maybe_commit();
  else
    maybe_apply();
}

void raft_core::on_entries_applied(index_t index) {
  if (index > applying_) {
    report(severity::error, "state machine reported index "
                              + std::to_string(index) + " applied, but only "
                              + std::to_string(applying_)
                              + " were handed out; ignoring");
    return;
  }
  last_applied_ = std::max(last_applied_, index);
  release_applied_reads();
  maybe_build_snapshot();
}

// -- membership ---------------------------------------------------------------

index_t raft_core::find_config(index_t upto, membership& out) const {
  for (auto i = std::min(upto, log_.last_index());
       i >= log_.first_index() && i > 0; --i) {
    const auto& e = log_.at(i);
    if (e.kind != entry_kind::membership)
      continue;
    std::string why;
    if (!decode_membership(e.payload, out, why))
      throw invariant_violation("membership entry at index " + std::to_string(i)
                                + " became malformed: " + why);
    return i;
  }
  // No configuration entry in (base, upto]: the one at the base holds.
  out = snapshot_config_;
  return 0;
}

void raft_core::refresh_config() {
  // Thesis §4.1: a server uses the latest configuration in its log, whether
  // or not it is committed; a truncated entry rolls back to the previous one.
  membership m;
  auto i = find_config(log_.last_index(), m);
  config_index_ = i != 0 ? i : log_.base_id().index;
  set_config(m);
}

void raft_core::set_config(const membership& m) {
  bool was_voter = is_voter();
  config_ = m;
  if (!was_voter && is_voter() && role_ != node_role::leader)
    reset_election_deadline();
  if (role_ != node_role::leader)
    return;
  // Track every member of the new configuration. Members it removes stay
  // tracked until it commits (advance_config_change), so that they receive
  // the entry that removes them and stop campaigning. A new member starts
  // at the entry just appended (the configuration), so the first send
  // probes it at once instead of waiting for a heartbeat.
  for (auto* group : {&config_.voters, &config_.learners, &config_.old_voters})
    for (const auto& kv : *group)
      if (kv.first != cfg_.id && progress_.count(kv.first) == 0) {
        progress p;
        p.next_index = std::max<index_t>(log_.last_index(), 1);
        progress_.emplace(kv.first, p);
      }
}

// -- client and admin requests ------------------------------------------------

void raft_core::append_as_leader(entry_kind kind,
                                 std::vector<uint8_t> payload) {
  log_entry e;
  e.id = {hs_.current_term, log_.last_index() + 1};
  e.kind = kind;
  e.leader_time_ms = now_.wall_ms;
  e.payload = std::move(payload);
  if (kind == entry_kind::membership) {
    membership m;
    std::string why;
    if (!decode_membership(e.payload, m, why))
      throw invariant_violation("leader encoded a bad membership: " + why);
    log_.append(e);
    config_index_ = e.id.index;
    set_config(m);
  } else {
    log_.append(e);
  }
  persist_append({std::move(e)});
}

void raft_core::handle_proposal(client_proposal& p) {
  if (role_ != node_role::leader) {
    emit(
      request_failed{p.request_id, raft_error::not_leader, leader_id_,
                     "node " + std::to_string(cfg_.id) + " is not the leader"});
    return;
  }
  if (transfer_) {
    // Thesis §3.10: the leader stops accepting proposals while handing off.
    emit(request_failed{p.request_id,
                        raft_error::leadership_transfer_in_progress,
                        transfer_->target,
                        "leadership is being transferred to node "
                          + std::to_string(transfer_->target)});
    return;
  }
  if (p.payload.size() > cfg_.max_payload_bytes) {
    emit(request_failed{p.request_id, raft_error::payload_too_large, no_node,
                        "payload of " + std::to_string(p.payload.size())
                          + " bytes exceeds the limit of "
                          + std::to_string(cfg_.max_payload_bytes)});
    return;
  }
  append_as_leader(entry_kind::normal, std::move(p.payload));
  emit(proposal_accepted{p.request_id, log_.last_id()});
  broadcast_append();
  // A single-voter cluster commits as soon as its own write is durable.
}

void raft_core::handle_initialize(initialize_cluster& req) {
  auto fail = [&](raft_error e, std::string why) {
    emit(request_failed{req.request_id, e, no_node, std::move(why)});
  };
  const auto& m = req.config;
  if (m.voters.empty())
    return fail(raft_error::invalid_argument,
                "initial membership has no voters");
  if (m.joint || !m.old_voters.empty())
    return fail(raft_error::invalid_argument,
                "initial membership cannot be joint");
  if (m.voters.count(no_node) || m.learners.count(no_node))
    return fail(raft_error::invalid_argument, "node id 0 is reserved");
  for (const auto& kv : m.learners)
    if (m.voters.count(kv.first))
      return fail(raft_error::invalid_argument,
                  "node " + std::to_string(kv.first)
                    + " is both voter and learner");
  if (!m.voters.count(cfg_.id))
    return fail(raft_error::invalid_argument,
                "this node (" + std::to_string(cfg_.id)
                  + ") is not a voter of the initial membership");
  log_entry e;
  e.id = bootstrap_log_id;
  e.kind = entry_kind::membership;
  e.leader_time_ms = 0; // identical on every founding member
  e.payload = encode_membership(m);
  if (log_.last_index() == 0 && log_.base_id() == log_id{}) {
    log_.append(e);
    persist_append({e});
    config_index_ = e.id.index;
    set_config(m);
    emit(request_succeeded{req.request_id});
    return;
  }
  if (log_.first_index() == 1 && log_.last_index() >= 1 && log_.at(1) == e) {
    emit(request_succeeded{req.request_id}); // same formation: a no-op
    return;
  }
  fail(raft_error::already_initialized,
       "the log is not empty and was not formed with this membership");
}

} // namespace raft_actor
