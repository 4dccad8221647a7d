// The core actor of a node: owns the pure core and the state machine, turns
// messages into core events and core commands into sends, timers, storage
// requests and replies. It never blocks: disk I/O happens in the storage
// worker, and time comes from one timer armed for the core's next deadline.
#include "actors/client_sessions.hpp"
#include "actors/replication_stream.hpp"
#include "actors/storage_worker.hpp"
#include "libraft_actor/core/raft_core.hpp"
#include "libraft_actor/node.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <optional>

namespace raft_actor {

// -- configuration and errors -------------------------------------------------

std::string node_config::validate() const {
  if (auto why = core.validate(); !why.empty())
    return why;
  if (max_pending_requests == 0)
    return "max_pending_requests must be positive";
  if (request_timeout.count() <= 0)
    return "request_timeout must be positive";
  if (max_unconfirmed_sends == 0)
    return "max_unconfirmed_sends must be positive";
  if (transport_backoff_min.count() <= 0
      || transport_backoff_max < transport_backoff_min)
    return "transport backoff must satisfy 0 < min <= max";
  if (transport_timeout.count() <= 0)
    return "transport_timeout must be positive";
  if (metrics_interval.count() <= 0)
    return "metrics_interval must be positive";
  return {};
}

caf::error make_error(raft_error code, std::string detail) {
  return caf::error{static_cast<uint8_t>(code), raft_error_category,
                    caf::make_message(std::move(detail))};
}

void add_node_types(caf::actor_system_config& cfg) {
  cfg.add_error_category(raft_error_category, [](uint8_t code, caf::atom_value,
                                                 const caf::message& ctx) {
    std::string s = "raft_error::";
    s += to_string(static_cast<raft_error>(code));
    if (ctx.match_elements<std::string>())
      s += " (" + ctx.get_as<std::string>(0) + ")";
    return s;
  });
  cfg.add_message_type<client_write>("raft_actor::client_write");
  cfg.add_message_type<write_result>("raft_actor::write_result");
  cfg.add_message_type<client_read>("raft_actor::client_read");
  cfg.add_message_type<read_result>("raft_actor::read_result");
  cfg.add_message_type<admin_initialize>("raft_actor::admin_initialize");
  cfg.add_message_type<admin_add_learner>("raft_actor::admin_add_learner");
  cfg.add_message_type<admin_remove_learner>(
    "raft_actor::admin_remove_learner");
  cfg.add_message_type<admin_change_membership>(
    "raft_actor::admin_change_membership");
  cfg.add_message_type<admin_transfer_leadership>(
    "raft_actor::admin_transfer_leadership");
  cfg.add_message_type<admin_get_metrics>("raft_actor::admin_get_metrics");
  cfg.add_message_type<admin_remove_node>("raft_actor::admin_remove_node");
  cfg.add_message_type<admin_trigger_snapshot>(
    "raft_actor::admin_trigger_snapshot");
  cfg.add_message_type<admin_subscribe_metrics>(
    "raft_actor::admin_subscribe_metrics");
  cfg.add_message_type<admin_unsubscribe_metrics>(
    "raft_actor::admin_unsubscribe_metrics");
  cfg.add_message_type<admin_shutdown>("raft_actor::admin_shutdown");
  cfg.add_message_type<admin_done>("raft_actor::admin_done");
  cfg.add_message_type<node_metrics>("raft_actor::node_metrics");
  cfg.add_message_type<forwarded_write>("raft_actor::forwarded_write");
  cfg.add_message_type<admin_unsafe_force_sole_voter>(
    "raft_actor::admin_unsafe_force_sole_voter");
}

namespace {

/// Internal: the core's timer fired (generation guards stale timers).
struct node_tick {
  uint64_t generation = 0;
};

/// Internal: a client request ran out of time.
struct request_expired {
  uint64_t request_id = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_tick& x) {
  return f(caf::meta::type_name("raft_actor::node_tick"), x.generation);
}

/// Internal: time to tell metrics subscribers about moved indices.
struct metrics_due {
  uint64_t unused = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metrics_due& x) {
  return f(caf::meta::type_name("raft_actor::metrics_due"), x.unused);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_expired& x) {
  return f(caf::meta::type_name("raft_actor::request_expired"), x.request_id);
}

/// The node's full interface: the public one plus what its storage worker
/// and its own timers send it.
using node_impl_actor = node_actor::extend<
  caf::reacts_to<writes_persisted>, caf::reacts_to<snapshot_built>,
  caf::reacts_to<storage_failed>, caf::reacts_to<snapshot_installed>,
  caf::reacts_to<peer_unreachable>, caf::reacts_to<node_tick>,
  caf::reacts_to<request_expired>, caf::reacts_to<metrics_due>>;

/// A request waiting for the core.
struct pending_request {
  enum kind_t { write, read, admin } kind = write;
  caf::response_promise promise;
  /// Reads: the query to run once safe.
  std::vector<uint8_t> query;
  /// Writes: where the entry was appended (term 0 until accepted).
  log_id appended;
};

struct node_state {
  node_config cfg;
  std::unique_ptr<raft_core> core;
  std::shared_ptr<state_machine> sm;
  storage_worker_actor storage;
  router_actor router;
  /// While leader: one replication stream per peer, spawned on first use.
  std::map<node_id, replication_stream_actor> streams;
  caf::actor_clock* clock = nullptr;
  caf::actor_clock::time_point epoch;
  uint64_t next_request = 1;
  std::map<uint64_t, pending_request> pending;
  /// Accepted writes by log index (request ids).
  std::map<index_t, uint64_t> writes_at;
  std::vector<command> storage_batch;
  /// Exactly-once sessions: replicated state, kept next to the state machine.
  session_table sessions;
  uint64_t timer_generation = 0;
  /// Metrics subscribers, what they were last told, and whether an update
  /// of moved indices is scheduled.
  std::vector<metrics_listener_actor> subscribers;
  node_metrics published;
  bool metrics_scheduled = false;
  /// The peer addresses last sent to the router.
  peer_directory directory;
  /// Id of the last snapshot this node built (ids must never repeat).
  uint64_t last_snapshot_id = 0;
  bool stopped = false;
  /// Event counts for node_metrics.
  node_counters counters;
  static inline const char* name = "raft_node";
};

using node_pointer = node_impl_actor::stateful_pointer<node_state>;

clock_reading now(node_state& st) {
  // The actor clock: real time normally, virtual time under CAF's test
  // scheduler (so timers and the core agree in deterministic tests).
  auto mono
    = std::chrono::duration_cast<raft_duration>(st.clock->now() - st.epoch);
  auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::system_clock::now().time_since_epoch());
  return {mono, wall.count()};
}

/// Fails every pending request with `code` and forgets them.
void fail_all(node_state& st, raft_error code, const std::string& why) {
  for (auto& kv : st.pending)
    kv.second.promise.deliver(make_error(code, why));
  st.pending.clear();
  st.writes_at.clear();
}

void stop_streams(node_pointer self, bool all = true);

/// Stops the storage worker and the replication streams (with their
/// snapshot senders) now, rather than when the exit reaches them.
void stop_helpers(node_pointer self) {
  stop_streams(self);
  self->send_exit(self->state.storage, caf::exit_reason::user_shutdown);
}

/// Stops the node after a fatal problem (storage failure, broken invariant,
/// a throwing state machine): every pending request is answered.
void stop_fatally(node_pointer self, raft_error code, const std::string& why) {
  auto& st = self->state;
  if (st.stopped)
    return;
  st.stopped = true;
  SPDLOG_CRITICAL("node {} term {}: stopping: {}", st.cfg.core.id,
                  st.core ? st.core->current_term() : 0, why);
  fail_all(st, code, why);
  stop_helpers(self);
  self->quit(make_error(code, why));
}

/// Stops the node on request: every pending request is answered with
/// shutting_down and the helpers stop with it.
void stop_quietly(node_pointer self, const std::string& why) {
  auto& st = self->state;
  st.stopped = true;
  fail_all(st, raft_error::shutting_down, why);
  stop_helpers(self);
}

void execute(node_pointer self, command& c, std::deque<event>& followups);

node_metrics make_metrics(const node_state& st) {
  const auto& c = *st.core;
  node_metrics m;
  m.counters = st.counters;
  m.id = c.id();
  m.role = c.role();
  m.term = c.current_term();
  m.leader = c.leader_id();
  m.commit_index = c.commit_index();
  m.last_applied = c.last_applied();
  m.last_log_index = c.log().last_index();
  m.snapshot_index = c.snapshot_last_included().index;
  m.config = c.config();
  if (c.role() == node_role::leader)
    for (const auto& [peer, pr] : c.peers()) {
      m.match_index[peer] = pr.match_index;
      m.lag[peer] = m.last_log_index > pr.match_index
                      ? m.last_log_index - pr.match_index
                      : 0;
    }
  return m;
}

void publish_metrics(node_pointer self, node_metrics m) {
  auto& st = self->state;
  for (auto& s : st.subscribers)
    self->send(s, m);
  st.published = std::move(m);
}

/// Tells subscribers what changed: role, term, leader and membership at
/// once, moving indices at most every metrics_interval.
void update_subscribers(node_pointer self) {
  auto& st = self->state;
  if (st.subscribers.empty())
    return;
  auto m = make_metrics(st);
  const auto& p = st.published;
  if (m.role != p.role || m.term != p.term || m.leader != p.leader
      || !(m.config == p.config)) {
    publish_metrics(self, std::move(m));
    return;
  }
  bool moved
    = m.commit_index != p.commit_index || m.last_applied != p.last_applied
      || m.last_log_index != p.last_log_index
      || m.snapshot_index != p.snapshot_index || m.match_index != p.match_index;
  if (moved && !st.metrics_scheduled) {
    st.metrics_scheduled = true;
    self->delayed_send(self, st.cfg.metrics_interval, metrics_due{});
  }
}

/// Stops the replication streams whose peers left the configuration (all
/// of them if `all`).
void stop_streams(node_pointer self, bool all) {
  auto& st = self->state;
  for (auto it = st.streams.begin(); it != st.streams.end();) {
    if (!all && st.core->peers().count(it->first)) {
      ++it;
      continue;
    }
    // Unlink first: a stream we retire is not a failure of the node.
    self->unlink_from(it->second);
    self->send_exit(it->second, caf::exit_reason::user_shutdown);
    it = st.streams.erase(it);
  }
}

/// The replication stream to `peer` while leading (spawned on first use),
/// or none: then messages go to the router directly.
std::optional<replication_stream_actor> stream_to(node_pointer self,
                                                  node_id peer) {
  auto& st = self->state;
  if (st.core->role() != node_role::leader || !st.core->peers().count(peer))
    return std::nullopt;
  auto it = st.streams.find(peer);
  if (it == st.streams.end()) {
    stream_limits lim;
    lim.max_unconfirmed = st.cfg.max_unconfirmed_sends;
    lim.max_entries = st.cfg.core.max_entries_per_append;
    lim.max_bytes = st.cfg.core.max_bytes_per_append;
    lim.max_queued_bytes = st.cfg.max_queued_bytes;
    lim.backoff_min = st.cfg.transport_backoff_min;
    lim.backoff_max = st.cfg.transport_backoff_max;
    lim.transport_timeout = st.cfg.transport_timeout;
    lim.snapshot_chunk_bytes = st.cfg.core.snapshot_chunk_bytes;
    auto s = spawn_replication_stream(
      self, peer, st.router, st.storage,
      caf::actor_cast<stream_listener_actor>(self), lim);
    it = st.streams.emplace(peer, std::move(s)).first;
  }
  return it->second;
}

/// Tells the router the peers' addresses when the configuration changed.
void publish_directory(node_pointer self) {
  auto& st = self->state;
  peer_directory d;
  const auto& cfg = st.core->config();
  if (cfg.joint)
    for (const auto& kv : cfg.old_voters)
      d.addresses.insert(kv);
  for (const auto& kv : cfg.voters)
    d.addresses[kv.first] = kv.second;
  for (const auto& kv : cfg.learners)
    d.addresses[kv.first] = kv.second;
  if (d.addresses == st.directory.addresses)
    return;
  st.directory = d;
  self->send(st.router, std::move(d));
}

/// Feeds one event (and everything it causes) through the core.
void step(node_pointer self, event ev) {
  auto& st = self->state;
  if (st.stopped)
    return;
  std::deque<event> queue;
  queue.push_back(std::move(ev));
  try {
    while (!queue.empty() && !st.stopped) {
      auto e = std::move(queue.front());
      queue.pop_front();
      auto cmds = st.core->step(now(st), std::move(e));
      for (auto& c : cmds)
        execute(self, c, queue);
    }
  } catch (const invariant_violation& e) {
    return stop_fatally(self, raft_error::storage_failed,
                        std::string("protocol invariant broken: ") + e.what());
  } catch (const std::exception& e) {
    return stop_fatally(self, raft_error::storage_failed,
                        std::string("state machine failed: ") + e.what());
  }
  if (!st.storage_batch.empty()) {
    self->send(st.storage, storage_writes{std::move(st.storage_batch)});
    st.storage_batch.clear();
  }
  if (st.streams.size() > st.core->peers().size())
    stop_streams(self, false); // peers left the configuration
  publish_directory(self);
  update_subscribers(self);
}

void deliver_error(node_state& st, uint64_t request_id, raft_error e,
                   node_id hint, const std::string& detail) {
  auto it = st.pending.find(request_id);
  if (it == st.pending.end())
    return;
  auto text = detail;
  if (hint != no_node)
    text += " (leader hint: node " + std::to_string(hint) + ")";
  if (it->second.appended.index != 0)
    st.writes_at.erase(it->second.appended.index);
  it->second.promise.deliver(make_error(e, text));
  st.pending.erase(it);
}

/// Restores the state machine and the session table from snapshot data;
/// throws std::invalid_argument if the data is malformed.
void restore_snapshot(state_machine& sm, session_table& sessions,
                      const std::vector<uint8_t>& data) {
  std::vector<uint8_t> table;
  std::vector<uint8_t> state;
  if (!unframe_snapshot(data, table, state))
    throw std::invalid_argument("snapshot data is not framed by this node");
  session_table restored;
  if (!restored.decode(table))
    throw std::invalid_argument("snapshot holds a malformed session table");
  sm.restore(state);
  sessions = std::move(restored);
}

/// The outcome of one applied entry for its client.
struct apply_outcome {
  /// The applied entry.
  log_id id;
  /// The index the answer names (a duplicate names the original's).
  index_t index = 0;
  std::vector<uint8_t> response;
  bool superseded = false;
};

void apply(node_pointer self, std::vector<log_entry>& entries,
           std::deque<event>& followups) {
  auto& st = self->state;
  if (entries.empty())
    return;
  // Commands reach the state machine without the framework's envelope;
  // session writes seen before are answered from the session table instead
  // of being applied twice (thesis §6.3). Plain commands go in batches; a
  // session write is applied on its own, so that a duplicate of it later
  // in the same batch sees its answer.
  std::vector<apply_outcome> outcomes(entries.size());
  std::vector<log_entry> batch;
  std::vector<size_t> batch_pos;
  auto flush = [&] {
    if (batch.empty())
      return;
    // A throwing state machine stops the node (step catches): an entry is
    // never skipped.
    auto responses = st.sm->apply(batch);
    if (responses.size() != batch.size())
      throw std::runtime_error(
        "state machine returned " + std::to_string(responses.size())
        + " responses for " + std::to_string(batch.size()) + " entries");
    for (size_t k = 0; k < batch.size(); ++k)
      outcomes[batch_pos[k]].response = std::move(responses[k]);
    batch.clear();
    batch_pos.clear();
  };
  auto ttl = st.cfg.session_ttl.count();
  for (size_t i = 0; i < entries.size(); ++i) {
    auto& e = entries[i];
    outcomes[i].id = e.id;
    outcomes[i].index = e.id.index;
    auto log_time = e.leader_time_ms;
    if (e.kind != entry_kind::normal) {
      batch.push_back(std::move(e));
      batch_pos.push_back(i);
      continue;
    }
    client_envelope env;
    if (!unwrap_command(e.payload, env))
      throw std::runtime_error("committed entry " + std::to_string(e.id.index)
                               + " holds no valid client envelope");
    e.payload = std::move(env.payload);
    if (env.client_id == 0) {
      batch.push_back(std::move(e));
      batch_pos.push_back(i);
      continue;
    }
    const session_table::entry* cached = nullptr;
    switch (st.sessions.check(env.client_id, env.sequence, cached)) {
      case session_table::verdict::duplicate:
        outcomes[i].index = cached->index;
        outcomes[i].response = cached->response;
        break;
      case session_table::verdict::superseded:
        outcomes[i].superseded = true;
        break;
      case session_table::verdict::fresh: {
        flush();
        batch.push_back(std::move(e));
        batch_pos.push_back(i);
        flush();
        st.sessions.record(env.client_id, env.sequence, outcomes[i].index,
                           outcomes[i].response, log_time);
        break;
      }
    }
    // Expire idle sessions at fixed log positions, so every replica drops
    // the same ones at the same point.
    if (outcomes[i].id.index % 1024 == 0)
      st.sessions.expire(log_time, ttl);
  }
  flush();
  for (size_t i = 0; i < entries.size(); ++i) {
    auto w = st.writes_at.find(outcomes[i].id.index);
    if (w == st.writes_at.end())
      continue;
    auto p = st.pending.find(w->second);
    st.writes_at.erase(w);
    if (p == st.pending.end())
      continue;
    if (p->second.appended != outcomes[i].id)
      // another leader's entry took its place: it never committed
      p->second.promise.deliver(
        make_error(raft_error::not_leader,
                   "the entry was replaced by a new leader; not applied"));
    else if (outcomes[i].superseded)
      p->second.promise.deliver(make_error(
        raft_error::invalid_argument,
        "the client already wrote a later sequence number; this write's "
        "answer is gone and it was not applied"));
    else
      p->second.promise.deliver(
        write_result{outcomes[i].index, std::move(outcomes[i].response)});
    st.pending.erase(p);
  }
  followups.push_back(entries_applied{outcomes.back().id.index});
}

void execute(node_pointer self, command& c, std::deque<event>& followups) {
  auto& st = self->state;
  auto id = st.cfg.core.id;
  if (write_sequence(c) != 0) {
    if (auto* t = std::get_if<truncate_log>(&c)) {
      // Writes appended at or after the cut will never commit here.
      for (auto it = st.writes_at.lower_bound(t->from);
           it != st.writes_at.end();) {
        auto rid = it->second;
        it = st.writes_at.erase(it);
        deliver_error(st, rid, raft_error::not_leader, st.core->leader_id(),
                      "the entry was replaced by a new leader; not applied");
      }
    }
    st.storage_batch.push_back(std::move(c));
    return;
  }
  if (auto* s = std::get_if<send_message>(&c)) {
    auto to = header_of(s->message).to;
    if (auto stream = stream_to(self, to))
      self->send(*stream, stream_send{std::move(s->message)});
    else
      self->send(st.router, peer_message{std::move(s->message)});
  } else if (auto* a = std::get_if<apply_entries>(&c)) {
    apply(self, a->entries, followups);
  } else if (auto* r = std::get_if<read_ready>(&c)) {
    auto it = st.pending.find(r->request_id);
    if (it != st.pending.end()) {
      try {
        auto answer = st.sm->query(it->second.query);
        it->second.promise.deliver(
          read_result{r->read_index, std::move(answer)});
      } catch (const std::exception& e) {
        it->second.promise.deliver(
          make_error(raft_error::invalid_argument,
                     std::string("query failed: ") + e.what()));
      }
      st.pending.erase(it);
    }
  } else if (auto* pa = std::get_if<proposal_accepted>(&c)) {
    auto it = st.pending.find(pa->request_id);
    if (it != st.pending.end()) {
      it->second.appended = pa->id;
      st.writes_at[pa->id.index] = pa->request_id;
    }
  } else if (auto* f = std::get_if<request_failed>(&c)) {
    deliver_error(st, f->request_id, f->error, f->leader_hint, f->detail);
  } else if (auto* ok = std::get_if<request_succeeded>(&c)) {
    auto it = st.pending.find(ok->request_id);
    if (it != st.pending.end()) {
      it->second.promise.deliver(admin_done{});
      st.pending.erase(it);
    }
  } else if (auto* t = std::get_if<set_timer>(&c)) {
    auto gen = ++st.timer_generation;
    if (t->deadline.count() > 0) {
      auto delay = t->deadline - now(st).monotonic;
      if (delay.count() < 0)
        delay = raft_duration{0};
      self->delayed_send(self, delay, node_tick{gen});
    }
  } else if (auto* rc = std::get_if<role_changed>(&c)) {
    if (rc->role != node_role::leader)
      stop_streams(self);
    if (rc->role == node_role::candidate)
      ++st.counters.elections;
    else if (rc->role == node_role::leader)
      ++st.counters.leaderships;
    SPDLOG_INFO("node {} term {}: {} (leader: {})", id, rc->term,
                to_string(rc->role), rc->leader);
  } else if (auto* d = std::get_if<diagnostic>(&c)) {
    auto term = st.core->current_term();
    switch (d->level) {
      case severity::debug:
        SPDLOG_DEBUG("node {} term {}: {}", id, term, d->text);
        break;
      case severity::info:
        SPDLOG_INFO("node {} term {}: {}", id, term, d->text);
        break;
      case severity::warning:
        SPDLOG_WARN("node {} term {}: {}", id, term, d->text);
        break;
      case severity::error:
        SPDLOG_ERROR("node {} term {}: {}", id, term, d->text);
        break;
    }
  } else if (auto* b = std::get_if<build_snapshot>(&c)) {
    // Capture on this thread (cheap, point in time), serialise elsewhere
    // while applying goes on, then the storage worker stores it.
    std::shared_ptr<state_machine::snapshot_source> source = st.sm->capture();
    snapshot_meta meta;
    // Ids must be unique per store: our id in the top bits, the wall clock
    // below, and never the same twice (two snapshots in one millisecond
    // once collided; the store refused the second and the node stopped).
    meta.id = std::max<uint64_t>(
      (static_cast<uint64_t>(id & 0xffff) << 48)
        | (static_cast<uint64_t>(now(st).wall_ms) & 0xffffffffffffull),
      st.last_snapshot_id + 1);
    st.last_snapshot_id = meta.id;
    meta.last_included = b->last_included;
    meta.config = b->config;
    auto storage = st.storage;
    // (The argument avoids CAF 0.17's null empty-tuple dereference for
    // actors spawned without arguments.)
    // The session table is part of the replicated state: it travels in the
    // snapshot data, in front of the state machine's bytes.
    auto sessions = st.sessions.encode();
    auto serialize
      = [](std::shared_ptr<state_machine::snapshot_source> src, snapshot_meta m,
           storage_worker_actor to, std::vector<uint8_t> table) {
          caf::anon_send(
            to, store_snapshot{m, frame_snapshot(table, src->serialize())});
        };
    // On its own thread (serialising a big state takes time), except under
    // the deterministic test scheduler, where that thread would race it.
    if (st.cfg.detached_storage)
      self->spawn<caf::detached>(serialize, source, meta, storage,
                                 std::move(sessions));
    else
      self->spawn(serialize, source, meta, storage, std::move(sessions));
  } else if (auto* sc = std::get_if<send_snapshot_chunk>(&c)) {
    if (auto stream = stream_to(self, sc->request.header.to))
      self->send(*stream, std::move(*sc));
  }
}

/// Registers a request; returns its id, or 0 if the node is overloaded
/// (the promise is then answered already).
uint64_t admit(node_pointer self, pending_request req) {
  auto& st = self->state;
  if (st.stopped) {
    req.promise.deliver(
      make_error(raft_error::shutting_down, "the node is stopping"));
    return 0;
  }
  if (st.pending.size() >= st.cfg.max_pending_requests) {
    req.promise.deliver(
      make_error(raft_error::overloaded, "too many requests pending"));
    return 0;
  }
  auto id = st.next_request++;
  st.pending.emplace(id, std::move(req));
  self->delayed_send(self, st.cfg.request_timeout, request_expired{id});
  return id;
}

/// Empty if the state machine accepts the write's command, else why not.
std::string check_write(node_pointer self, const client_write& w) {
  try {
    auto why = self->state.sm->check_command(w.payload);
    return why.empty() ? why : "the state machine refuses the command: " + why;
  } catch (const std::exception& e) {
    return std::string("the state machine refuses the command: ") + e.what();
  }
}

/// Counts a client write the leader is about to propose.
void count_proposal(node_pointer self) {
  if (self->state.core->role() == node_role::leader)
    ++self->state.counters.proposals;
}

caf::response_promise
admin_request(node_pointer self, const std::function<event(uint64_t)>& make) {
  pending_request req;
  req.kind = pending_request::admin;
  req.promise = self->make_response_promise();
  auto rp = req.promise;
  if (auto id = admit(self, std::move(req)))
    step(self, make(id));
  return rp;
}

node_impl_actor::behavior_type node(node_pointer self, node_config cfg,
                                    std::shared_ptr<state_machine> sm,
                                    node_stores stores, router_actor router,
                                    session_table sessions) {
  auto& st = self->state;
  st.clock = &self->clock();
  st.epoch = st.clock->now();
  st.sessions = std::move(sessions);
  st.cfg = cfg;
  st.sm = std::move(sm);
  st.router = std::move(router);
  auto rec = recover(stores);
  st.last_snapshot_id = rec.snapshot_id;
  st.core = std::make_unique<raft_core>(cfg.core, std::move(rec), now(st));
  st.storage
    = spawn_storage_worker(self->system(), std::move(stores),
                           caf::actor_cast<storage_listener_actor>(self),
                           cfg.detached_storage, cfg.core.id);
  self->link_to(st.storage);
  // A metrics subscriber that stops is forgotten.
  self->set_down_handler([self](caf::down_msg& d) {
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const metrics_listener_actor& x) {
                                return x.address() == d.source;
                              }),
               subs.end());
  });
  // The node's actors live and die as one: if a linked helper (storage
  // worker, replication stream, snapshot sender) fails, or someone asks the
  // node to exit, every pending request is answered before it stops.
  self->set_exit_handler([self](caf::exit_msg& m) {
    auto& st = self->state;
    if (st.stopped) {
      self->quit(m.reason);
      return;
    }
    // (CAF 0.17's anon_send_exit names the receiver itself as the source:
    // that is an external request too.)
    auto why = self->system().render(m.reason);
    if (m.source == st.storage.address()) {
      stop_fatally(self, raft_error::storage_failed,
                   "the storage worker stopped: " + why);
      return;
    }
    for (auto& kv : st.streams)
      if (m.source == kv.second.address()) {
        stop_fatally(self, raft_error::shutting_down,
                     "the replication stream to node "
                       + std::to_string(kv.first) + " failed: " + why);
        return;
      }
    SPDLOG_INFO("node {} term {}: asked to exit", st.cfg.core.id,
                st.core->current_term());
    stop_quietly(self, "the node is shutting down");
    self->quit(m.reason);
  });
  publish_directory(self);
  // Nothing happens until the first deadline: arm it.
  {
    std::deque<event> none;
    command arm = set_timer{st.core->next_deadline()};
    execute(self, arm, none);
  }
  SPDLOG_INFO("node {} term {}: started with {} log entries", cfg.core.id,
              st.core->current_term(), st.core->log().last_index());
  return {
    [self](client_write& w) -> caf::result<write_result> {
      auto& st = self->state;
      if (auto why = check_write(self, w); !why.empty())
        return make_error(raft_error::invalid_argument, why);
      auto leader = st.core->leader_id();
      if (st.cfg.forward_to_leader && !st.stopped
          && st.core->role() != node_role::leader && leader != no_node) {
        // Proposal forwarding: pass it on over the Raft network and relay
        // the leader's answer (or error) to the client.
        auto rp = self->make_response_promise<write_result>();
        self
          ->request(st.router, st.cfg.request_timeout,
                    forwarded_write{leader, st.cfg.core.id, std::move(w)})
          .then([rp](write_result& r) mutable { rp.deliver(std::move(r)); },
                [rp](caf::error& e) mutable {
                  if (e.category() == raft_error_category) {
                    rp.deliver(std::move(e)); // the leader's own answer
                    return;
                  }
                  // Lost on the way there or back, or timed out: the
                  // leader may have appended it.
                  rp.deliver(make_error(raft_error::unknown_outcome,
                                        "forwarded to the leader, no answer "
                                        "came back: it may have been "
                                        "applied"));
                });
        return rp;
      }
      pending_request req;
      req.kind = pending_request::write;
      req.promise = self->make_response_promise();
      if (auto id = admit(self, std::move(req))) {
        count_proposal(self);
        step(self, client_proposal{id, wrap_command(w.client_id, w.sequence,
                                                    std::move(w.payload))});
      }
      return caf::delegated<write_result>{};
    },
    [self](client_read& r) -> caf::result<read_result> {
      auto& st = self->state;
      if (r.mode == consistency::stale) {
        try {
          return read_result{st.core->last_applied(), st.sm->query(r.query)};
        } catch (const std::exception& e) {
          return make_error(raft_error::invalid_argument,
                            std::string("query failed: ") + e.what());
        }
      }
      pending_request req;
      req.kind = pending_request::read;
      req.promise = self->make_response_promise();
      req.query = std::move(r.query);
      if (auto id = admit(self, std::move(req)))
        step(self, read_request{id, r.mode == consistency::lease
                                      ? read_mode::lease
                                      : read_mode::linearizable});
      return caf::delegated<read_result>{};
    },
    [self](admin_initialize& a) -> caf::result<admin_done> {
      admin_request(self, [&](uint64_t id) -> event {
        return initialize_cluster{id, a.config};
      });
      return caf::delegated<admin_done>{};
    },
    [self](admin_add_learner& a) -> caf::result<admin_done> {
      admin_request(self, [&](uint64_t id) -> event {
        return add_learner{id, a.id, a.address, a.wait_caught_up};
      });
      return caf::delegated<admin_done>{};
    },
    [self](admin_remove_learner& a) -> caf::result<admin_done> {
      admin_request(self, [&](uint64_t id) -> event {
        return remove_learner{id, a.id};
      });
      return caf::delegated<admin_done>{};
    },
    [self](admin_change_membership& a) -> caf::result<admin_done> {
      admin_request(self, [&](uint64_t id) -> event {
        return change_membership{id, a.voters};
      });
      return caf::delegated<admin_done>{};
    },
    [self](admin_transfer_leadership& a) -> caf::result<admin_done> {
      admin_request(self, [&](uint64_t id) -> event {
        return transfer_leadership{id, a.to};
      });
      return caf::delegated<admin_done>{};
    },
    [self](admin_unsafe_force_sole_voter& a) -> caf::result<admin_done> {
      if (a.confirm != unsafe_recovery_confirmation)
        return make_error(raft_error::invalid_argument,
                          std::string("unsafe recovery needs the confirmation "
                                      "\"")
                            + unsafe_recovery_confirmation + "\"");
      SPDLOG_CRITICAL("node {} term {}: UNSAFE RECOVERY requested: becoming "
                      "the only voter",
                      self->state.cfg.core.id,
                      self->state.core->current_term());
      admin_request(
        self, [](uint64_t id) -> event { return unsafe_force_sole_voter{id}; });
      return caf::delegated<admin_done>{};
    },
    [self](admin_get_metrics) -> node_metrics {
      return make_metrics(self->state);
    },
    [self](admin_remove_node& a) -> caf::result<admin_done> {
      const auto& cfg = self->state.core->config();
      if (cfg.learners.count(a.id)) {
        admin_request(self, [&](uint64_t id) -> event {
          return remove_learner{id, a.id};
        });
      } else if (cfg.voters.count(a.id)) {
        std::set<node_id> rest;
        for (const auto& kv : cfg.voters)
          if (kv.first != a.id)
            rest.insert(kv.first);
        if (rest.empty())
          return make_error(raft_error::invalid_argument,
                            "cannot remove the last voter");
        admin_request(self, [&](uint64_t id) -> event {
          return change_membership{id, rest};
        });
      } else {
        return make_error(raft_error::unknown_node,
                          "node " + std::to_string(a.id) + " is not a member");
      }
      return caf::delegated<admin_done>{};
    },
    [self](admin_trigger_snapshot) -> caf::result<admin_done> {
      admin_request(self,
                    [](uint64_t id) -> event { return trigger_snapshot{id}; });
      return caf::delegated<admin_done>{};
    },
    [self](admin_subscribe_metrics& s) -> admin_done {
      auto& st = self->state;
      if (s.listener) {
        // Subscribing twice is subscribing once.
        auto& subs = st.subscribers;
        if (std::find(subs.begin(), subs.end(), s.listener) == subs.end()) {
          self->monitor(s.listener);
          subs.push_back(s.listener);
        }
        // Everyone hears the current state, so that what was last published
        // is what the newcomer got (else its first update would repeat).
        publish_metrics(self, make_metrics(st));
      }
      return {};
    },
    [self](admin_unsubscribe_metrics& s) -> admin_done {
      auto& subs = self->state.subscribers;
      auto it = std::find(subs.begin(), subs.end(), s.listener);
      if (it != subs.end()) {
        self->demonitor(s.listener.address());
        subs.erase(it);
      }
      return {};
    },
    [self](metrics_due) {
      auto& st = self->state;
      st.metrics_scheduled = false;
      if (!st.subscribers.empty())
        publish_metrics(self, make_metrics(st));
    },
    [self](admin_shutdown) -> admin_done {
      auto& st = self->state;
      SPDLOG_INFO("node {} term {}: shutting down", st.cfg.core.id,
                  st.core->current_term());
      stop_quietly(self, "the node is shutting down");
      self->quit();
      return {};
    },
    [self](forwarded_write& w) -> caf::result<write_result> {
      // (Checked again: the follower may run another version.)
      if (auto why = check_write(self, w.write); !why.empty())
        return make_error(raft_error::invalid_argument, why);
      // Never passed on twice: a node that does not lead answers not_leader.
      pending_request req;
      req.kind = pending_request::write;
      req.promise = self->make_response_promise();
      if (auto id = admit(self, std::move(req))) {
        count_proposal(self);
        step(self, client_proposal{
                     id, wrap_command(w.write.client_id, w.write.sequence,
                                      std::move(w.write.payload))});
      }
      return caf::delegated<write_result>{};
    },
    [self](peer_message& m) {
      step(self, message_received{std::move(m.message)});
    },
    [self](writes_persisted w) { step(self, w); },
    [self](snapshot_built b) {
      ++self->state.counters.snapshots_built;
      step(self, b);
    },
    [self](storage_failed& f) {
      stop_fatally(self, raft_error::storage_failed, f.what);
    },
    [self](peer_unreachable u) { step(self, u); },
    [self](snapshot_installed& i) {
      auto& st = self->state;
      try {
        restore_snapshot(*st.sm, st.sessions, i.data);
      } catch (const std::exception& e) {
        return stop_fatally(self, raft_error::storage_failed,
                            std::string("cannot restore the state machine "
                                        "from a received snapshot: ")
                              + e.what());
      }
      ++st.counters.snapshots_installed;
      // Writes this node appended up to the snapshot were replaced by it:
      // whether they committed cannot be told any more.
      for (auto it = st.writes_at.begin();
           it != st.writes_at.end() && it->first <= i.last_included.index;) {
        auto rid = it->second;
        it = st.writes_at.erase(it);
        deliver_error(st, rid, raft_error::unknown_outcome, no_node,
                      "replaced by an installed snapshot; it may have "
                      "committed");
      }
      SPDLOG_INFO("node {} term {}: restored the state machine from a "
                  "snapshot up to index {}",
                  st.cfg.core.id, st.core->current_term(),
                  i.last_included.index);
      step(self, entries_applied{i.last_included.index});
    },
    [self](node_tick t) {
      if (t.generation == self->state.timer_generation)
        step(self, timer_fired{});
    },
    [self](request_expired x) {
      auto& st = self->state;
      auto it = st.pending.find(x.request_id);
      if (it == st.pending.end())
        return;
      // An appended write may still commit: its outcome is unknown.
      bool appended = it->second.appended.index != 0;
      deliver_error(st, x.request_id,
                    appended ? raft_error::unknown_outcome
                             : raft_error::timeout,
                    st.core->leader_id(),
                    appended ? "timed out after the entry was appended; it "
                               "may still commit"
                             : "timed out");
    },
  };
}

} // namespace

node_actor spawn_node(caf::actor_system& sys, node_config cfg,
                      std::shared_ptr<state_machine> sm,
                      std::shared_ptr<stable_store> stable,
                      std::shared_ptr<log_store> log,
                      std::shared_ptr<snapshot_store> snapshots,
                      router_actor router) {
  if (auto why = cfg.validate(); !why.empty())
    throw std::invalid_argument("invalid node_config: " + why);
  if (!sm || !stable || !log || !snapshots)
    throw std::invalid_argument("spawn_node needs a state machine and all "
                                "three stores");
  node_stores stores{std::move(stable), std::move(log), std::move(snapshots)};
  // Recover once here so that unreadable stores fail the caller, not the
  // actor; recover() counts the latest snapshot as applied, so restore the
  // state machine from it now.
  (void)recover(stores);
  session_table sessions;
  if (auto snap = stores.snapshots->latest())
    restore_snapshot(*sm, sessions,
                     stores.snapshots->read(snap->id, 0, snap->size));
  auto impl = sys.spawn(node, std::move(cfg), std::move(sm), std::move(stores),
                        std::move(router), std::move(sessions));
  return caf::actor_cast<node_actor>(impl);
}

} // namespace raft_actor
