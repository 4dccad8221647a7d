#include "actors/replication_stream.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <deque>
#include <optional>

namespace raft_actor {

namespace {

/// Internal: a backoff pause is over (generation guards stale timers).
struct stream_resume {
  uint64_t generation = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_resume& x) {
  return f(caf::meta::type_name("raft_actor::stream_resume"), x.generation);
}

using stream_impl_actor
  = replication_stream_actor::extend<caf::reacts_to<stream_resume>>;

struct stream_state {
  /// For log lines: the sending node and the term of its latest message.
  node_id owner = no_node;
  term_t term = 0;
  node_id peer = no_node;
  router_actor router;
  storage_worker_actor storage;
  stream_listener_actor listener;
  stream_limits limits;
  /// Entry-carrying requests waiting for the transport, oldest first.
  /// Invariant: queued_bytes is the sum of their payload bytes.
  std::deque<append_entries_request> queue;
  size_t queued_bytes = 0;
  /// Entry-carrying requests handed to the transport and not yet confirmed.
  /// Invariant: unconfirmed <= limits.max_unconfirmed.
  size_t unconfirmed = 0;
  /// The transport refused a message: nothing is sent until the pause ends,
  /// except that the latest heartbeat is kept to go first afterwards.
  bool paused = false;
  caf::timespan backoff{0};
  uint64_t generation = 0;
  std::optional<raft_message> held_heartbeat;
  snapshot_sender_actor sender;
  /// Counters for the debug log.
  uint64_t merged = 0;
  uint64_t dropped = 0;
  static inline const char* name = "raft_replication_stream";
};

using stream_pointer = stream_impl_actor::stateful_pointer<stream_state>;

void pump(stream_pointer self);

/// The transport refused a message: pause with capped exponential backoff,
/// forget what waits (the core probes again), and tell the core once per
/// pause.
void on_transport_failure(stream_pointer self,
                          [[maybe_unused]] const caf::error& e) {
  auto& st = self->state;
  if (st.paused)
    return;
  st.paused = true;
  st.backoff = st.backoff.count() == 0
                 ? st.limits.backoff_min
                 : std::min(st.backoff * 2, st.limits.backoff_max);
  st.dropped += st.queue.size();
  st.queue.clear();
  st.queued_bytes = 0;
  SPDLOG_DEBUG(
    "node {} term {}: stream to node {}: transport refused a message ({}); "
    "pausing {} us",
    st.owner, st.term, st.peer, caf::to_string(e),
    std::chrono::duration_cast<std::chrono::microseconds>(st.backoff).count());
  self->send(st.listener, peer_unreachable{st.peer});
  self->delayed_send(self, st.backoff, stream_resume{++st.generation});
}

/// Hands `m` to the transport; `counted` requests occupy a window slot.
void transmit(stream_pointer self, raft_message m, bool counted) {
  auto& st = self->state;
  if (counted)
    ++st.unconfirmed;
  self
    ->request(st.router, st.limits.transport_timeout, peer_packet{std::move(m)})
    .then(
      [self, counted](peer_accepted) {
        auto& st = self->state;
        if (counted)
          --st.unconfirmed;
        if (!st.paused)
          st.backoff = caf::timespan{0}; // the transport works again
        pump(self);
      },
      [self, counted](caf::error& e) {
        if (counted)
          --self->state.unconfirmed;
        on_transport_failure(self, e);
      });
}

/// Sends waiting requests while the window has room.
void pump(stream_pointer self) {
  auto& st = self->state;
  while (!st.paused && st.unconfirmed < st.limits.max_unconfirmed
         && !st.queue.empty()) {
    auto req = std::move(st.queue.front());
    st.queue.pop_front();
    st.queued_bytes -= payload_bytes(req);
    transmit(self, std::move(req), true);
  }
}

void enqueue(stream_pointer self, append_entries_request req) {
  auto& st = self->state;
  auto bytes = payload_bytes(req);
  if (!st.queue.empty()
      && can_merge(st.queue.back(), req, st.limits.max_entries,
                   st.limits.max_bytes)) {
    merge_into(st.queue.back(), std::move(req));
    ++st.merged;
  } else {
    st.queue.push_back(std::move(req));
  }
  st.queued_bytes += bytes;
  // Bounded: drop the oldest waiting requests (the core sees no answer
  // for them and probes again; nothing is lost).
  while (st.queued_bytes > st.limits.max_queued_bytes && st.queue.size() > 1) {
    st.queued_bytes -= payload_bytes(st.queue.front());
    st.queue.pop_front();
    ++st.dropped;
  }
  pump(self);
}

stream_impl_actor::behavior_type stream(stream_pointer self, node_id peer,
                                        router_actor router,
                                        storage_worker_actor storage,
                                        stream_listener_actor listener,
                                        stream_limits limits) {
  auto& st = self->state;
  st.peer = peer;
  st.router = std::move(router);
  st.storage = std::move(storage);
  st.listener = std::move(listener);
  st.limits = limits;
  return {
    [self](stream_send& s) {
      auto& st = self->state;
      st.owner = header_of(s.message).from;
      st.term = term_of(s.message);
      auto* append = std::get_if<append_entries_request>(&s.message);
      if (append && !append->entries.empty()) {
        enqueue(self, std::move(*append));
        return;
      }
      // Heartbeats and other small messages never wait behind entries.
      if (st.paused) {
        if (append)
          st.held_heartbeat = std::move(s.message); // only the latest counts
        return; // others are lost, as on a dead link; the core copes
      }
      transmit(self, std::move(s.message), false);
    },
    [self](send_snapshot_chunk& c) {
      auto& st = self->state;
      if (!st.sender)
        st.sender = spawn_snapshot_sender(self, st.router, st.storage,
                                          st.limits.transport_timeout);
      self->send(st.sender, std::move(c));
    },
    [self](stream_resume r) {
      auto& st = self->state;
      if (r.generation != st.generation || !st.paused)
        return;
      st.paused = false;
      if (st.held_heartbeat) {
        auto hb = std::move(*st.held_heartbeat);
        st.held_heartbeat.reset();
        transmit(self, std::move(hb), false);
      }
      pump(self);
    },
  };
}

} // namespace

bool can_merge(const append_entries_request& a, const append_entries_request& b,
               size_t max_entries, size_t max_bytes) {
  if (a.term != b.term || a.entries.empty() || b.entries.empty())
    return false;
  if (!(b.prev_log == a.entries.back().id))
    return false;
  if (a.entries.size() + b.entries.size() > max_entries)
    return false;
  return payload_bytes(a) + payload_bytes(b) <= max_bytes;
}

void merge_into(append_entries_request& a, append_entries_request&& b) {
  a.entries.insert(a.entries.end(), std::make_move_iterator(b.entries.begin()),
                   std::make_move_iterator(b.entries.end()));
  a.leader_commit = std::max(a.leader_commit, b.leader_commit);
  a.round = std::max(a.round, b.round);
}

replication_stream_actor
spawn_replication_stream(caf::local_actor* parent, node_id peer,
                         router_actor router, storage_worker_actor storage,
                         stream_listener_actor listener, stream_limits limits) {
  auto impl = parent->spawn<caf::linked>(stream, peer, std::move(router),
                                         std::move(storage),
                                         std::move(listener), limits);
  return caf::actor_cast<replication_stream_actor>(impl);
}

} // namespace raft_actor
