#include "actors/snapshot_sender.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <optional>

namespace raft_actor {

namespace {

/// One chunk read (or being read) from the snapshot store.
struct chunk {
  uint64_t snapshot_id = 0;
  /// The offset that was asked for, and the byte limit.
  uint64_t offset = 0;
  size_t max_bytes = 0;
  /// False while the storage worker is reading it.
  bool ready = false;
  std::vector<uint8_t> data;
  bool done = false;

  bool answers(const send_snapshot_chunk& c) const {
    return snapshot_id == c.request.snapshot_id && offset == c.request.offset
           && max_bytes == c.max_bytes;
  }
};

/// An empty slot for the chunk `c` asks for.
chunk chunk_for(const send_snapshot_chunk& c) {
  chunk x;
  x.snapshot_id = c.request.snapshot_id;
  x.offset = c.request.offset;
  x.max_bytes = c.max_bytes;
  return x;
}

struct sender_state {
  router_actor router;
  storage_worker_actor storage;
  caf::timespan timeout{0};
  /// The chunk sent last (kept to answer a resend of it without a read)
  /// and the one after it, read ahead.
  std::optional<chunk> current;
  std::optional<chunk> ahead;
  /// A request of the core waiting for its chunk to be read.
  std::optional<send_snapshot_chunk> wanted;
  static inline const char* name = "raft_snapshot_sender";
};

using sender_pointer = snapshot_sender_actor::stateful_pointer<sender_state>;

void transmit(sender_pointer self, const send_snapshot_chunk& c,
              const chunk& data) {
  auto req = c.request; // the core's header, term and config, ...
  req.data = data.data; // ...the stored bytes
  req.done = data.done;
  auto to = req.header.to;
  auto from = req.header.from;
  auto term = req.term;
  self
    ->request(self->state.router, self->state.timeout,
              peer_packet{std::move(req)})
    .then([](peer_accepted) {},
          [to, from, term]([[maybe_unused]] caf::error& e) {
            // The core sends the chunk again when no answer comes.
            SPDLOG_DEBUG("node {} term {}: snapshot chunk for node {} not "
                         "taken: {}",
                         from, term, to, caf::to_string(e));
          });
}

void read(sender_pointer self, const send_snapshot_chunk& c);

/// Serves the core's request `c` from what is read, and reads ahead.
void serve(sender_pointer self, const send_snapshot_chunk& c) {
  auto& st = self->state;
  if (st.ahead && st.ahead->answers(c)) {
    st.current = std::move(st.ahead);
    st.ahead.reset();
  }
  if (!st.current || !st.current->answers(c)) {
    st.current.reset();
    st.wanted = c;
    read(self, c);
    return;
  }
  if (!st.current->ready) {
    st.wanted = c; // sent when the read completes
    return;
  }
  st.wanted.reset();
  transmit(self, c, *st.current);
  if (!st.current->done && !st.ahead) {
    auto next = c;
    next.request.offset += st.current->data.size();
    st.ahead = chunk_for(next);
    read(self, next);
  }
}

void read(sender_pointer self, const send_snapshot_chunk& c) {
  auto& st = self->state;
  auto& slot = st.ahead && st.ahead->answers(c) ? st.ahead : st.current;
  if (!slot)
    slot = chunk_for(c);
  auto key = *slot;
  auto from = c.request.header.from;
  auto term = c.request.term;
  self->request(st.storage, st.timeout, read_snapshot_chunk{c})
    .then(
      [self, key](snapshot_chunk_ready& r) {
        auto& st = self->state;
        for (auto* s : {&st.current, &st.ahead}) {
          if (*s && !(*s)->ready && (*s)->snapshot_id == key.snapshot_id
              && (*s)->offset == key.offset
              && (*s)->max_bytes == key.max_bytes) {
            (*s)->data = std::move(r.request.data);
            (*s)->done = r.request.done;
            (*s)->ready = true;
          }
        }
        if (st.wanted) {
          auto w = *st.wanted;
          serve(self, w);
        }
      },
      [self, key, from, term]([[maybe_unused]] caf::error& e) {
        // Replaced snapshot or a read error (the storage worker reports
        // that to the core, which stops). Forget the slot; the core asks
        // again or moves on to a newer snapshot.
        SPDLOG_DEBUG("node {} term {}: snapshot {} chunk at {} not read: {}",
                     from, term, key.snapshot_id, key.offset,
                     caf::to_string(e));
        auto& st = self->state;
        for (auto* s : {&st.current, &st.ahead})
          if (*s && (*s)->snapshot_id == key.snapshot_id
              && (*s)->offset == key.offset)
            s->reset();
        if (st.wanted && st.wanted->request.snapshot_id == key.snapshot_id
            && st.wanted->request.offset == key.offset)
          st.wanted.reset();
      });
}

snapshot_sender_actor::behavior_type sender(sender_pointer self,
                                            router_actor router,
                                            storage_worker_actor storage,
                                            caf::timespan timeout) {
  self->state.router = std::move(router);
  self->state.storage = std::move(storage);
  self->state.timeout = timeout;
  return {
    [self](send_snapshot_chunk& c) { serve(self, c); },
  };
}

} // namespace

snapshot_sender_actor spawn_snapshot_sender(caf::local_actor* parent,
                                            router_actor router,
                                            storage_worker_actor storage,
                                            caf::timespan timeout) {
  return parent->spawn<caf::linked>(sender, std::move(router),
                                    std::move(storage), timeout);
}

} // namespace raft_actor
