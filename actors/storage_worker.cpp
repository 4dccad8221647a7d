#include "actors/storage_worker.hpp"
#include "libraft_actor/node.hpp"

#include "storage/storage_error.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

namespace raft_actor {

recovered_state recover(node_stores& s) {
  recovered_state rec;
  rec.state = s.stable->load();
  if (auto snap = s.snapshots->latest()) {
    rec.snapshot = snap->last_included;
    rec.snapshot_id = snap->id;
    rec.snapshot_config = snap->config;
    // The state machine is restored from this snapshot before the core
    // starts, so everything up to it counts as applied.
    rec.last_applied = snap->last_included.index;
  }
  rec.log_base = s.log->base();
  auto last = s.log->last_id();
  if (last.index > rec.log_base.index)
    rec.entries = s.log->read(rec.log_base.index + 1, last.index);
  return rec;
}

namespace {

struct worker_state {
  node_stores stores;
  storage_listener_actor core;
  /// For log lines: whose worker this is, and the last term it stored.
  node_id owner = no_node;
  term_t term = 0;
  std::vector<command> queue;
  bool flush_scheduled = false;
  bool log_dirty = false;
  std::vector<snapshot_installed> pending_installs;
  static inline const char* name = "raft_storage_worker";
};

using worker_pointer = storage_worker_actor::stateful_pointer<worker_state>;

void sync_log(worker_state& st) {
  if (st.log_dirty) {
    st.stores.log->sync();
    st.log_dirty = false;
  }
}

/// Executes one write. Writes are made durable in issue order: the log is
/// synced before a hard-state save or snapshot step that follows log writes.
void execute(worker_state& st, command& c) {
  auto& log = *st.stores.log;
  if (auto* hs = std::get_if<save_hard_state>(&c)) {
    sync_log(st);
    st.stores.stable->save(hs->state);
    st.term = hs->state.current_term;
  } else if (auto* t = std::get_if<truncate_log>(&c)) {
    log.truncate_from(t->from);
    st.log_dirty = true;
  } else if (auto* a = std::get_if<append_log>(&c)) {
    log.append(a->entries);
    st.log_dirty = true;
  } else if (auto* p = std::get_if<purge_log>(&c)) {
    if (p->up_to > log.base().index) {
      auto id = log.read(p->up_to, p->up_to).front().id;
      sync_log(st);
      log.purge_to(id);
    }
  } else if (auto* w = std::get_if<write_snapshot_chunk>(&c)) {
    sync_log(st);
    if (w->offset == 0)
      st.stores.snapshots->begin(w->snapshot_id);
    st.stores.snapshots->write(w->snapshot_id, w->offset, w->data);
  } else if (auto* in = std::get_if<install_snapshot>(&c)) {
    sync_log(st);
    snapshot_meta meta;
    meta.last_included = in->last_included;
    meta.config = in->config;
    auto stored = st.stores.snapshots->finish(in->snapshot_id, meta);
    // §7: keep the entries after the snapshot if the log holds its last
    // entry, otherwise the snapshot replaces the whole log.
    if (in->keep_log_suffix && in->last_included.index > log.base().index)
      log.purge_to(in->last_included);
    else if (!in->keep_log_suffix)
      log.reset(in->last_included);
    // The state machine restores from it; this message goes out ahead of
    // the writes_persisted of this batch.
    auto data = st.stores.snapshots->read(stored.id, 0, stored.size);
    st.pending_installs.push_back({in->last_included, std::move(data)});
  }
}

storage_worker_actor::behavior_type storage_worker(worker_pointer self,
                                                   node_stores stores,
                                                   storage_listener_actor core,
                                                   node_id owner) {
  self->state.stores = std::move(stores);
  self->state.core = std::move(core);
  self->state.owner = owner;
  try {
    self->state.term = self->state.stores.stable->load().current_term;
  } catch (const std::exception&) {
    // Only for log lines: recover() already read (or refused) this store.
  }
  auto failed = [self](const std::string& what) {
    SPDLOG_ERROR("node {} term {}: storage failed, the node must stop: {}",
                 self->state.owner, self->state.term, what);
    self->send(self->state.core, storage_failed{what});
    self->quit(caf::make_error(caf::sec::runtime_error, what));
  };
  return {
    [self](storage_writes& batch) {
      auto& q = self->state.queue;
      for (auto& c : batch.writes)
        q.push_back(std::move(c));
      if (!self->state.flush_scheduled) {
        // Everything that arrives before this message is handled joins
        // the same group commit.
        self->state.flush_scheduled = true;
        self->send(self, storage_flush{});
      }
    },
    [self, failed](storage_flush) {
      auto& st = self->state;
      st.flush_scheduled = false;
      if (st.queue.empty())
        return;
      uint64_t seq = 0;
      try {
        for (auto& c : st.queue) {
          execute(st, c);
          seq = std::max(seq, write_sequence(c));
        }
        sync_log(st);
      } catch (const std::exception& e) {
        st.queue.clear();
        return failed(e.what());
      }
      st.queue.clear();
      for (auto& i : st.pending_installs)
        self->send(st.core, std::move(i));
      st.pending_installs.clear();
      self->send(st.core, writes_persisted{seq});
    },
    [self,
     failed](read_snapshot_chunk& r) -> caf::result<snapshot_chunk_ready> {
      auto& st = self->state;
      auto req = std::move(r.command.request);
      auto latest = st.stores.snapshots->latest();
      if (!latest || latest->id != req.snapshot_id)
        // Replaced meanwhile: the core restarts the transfer with the new
        // snapshot when it next looks at this peer.
        return make_error(raft_error::invalid_argument,
                          "snapshot " + std::to_string(req.snapshot_id)
                            + " is no longer the latest");
      try {
        auto offset = std::min(req.offset, latest->size);
        req.offset = offset;
        req.data = st.stores.snapshots->read(req.snapshot_id, offset,
                                             r.command.max_bytes);
        req.done = offset + req.data.size() == latest->size;
        return snapshot_chunk_ready{std::move(req)};
      } catch (const std::exception& e) {
        failed(e.what());
        return make_error(raft_error::storage_failed, e.what());
      }
    },
    [self, failed](store_snapshot& s) {
      auto& st = self->state;
      try {
        auto id = s.meta.id;
        st.stores.snapshots->begin(id);
        st.stores.snapshots->write(id, 0, s.data);
        auto meta = st.stores.snapshots->finish(id, s.meta);
        self->send(st.core, snapshot_built{meta.id, meta.last_included});
      } catch (const std::exception& e) {
        failed(e.what());
      }
    },
  };
}

} // namespace

storage_worker_actor spawn_storage_worker(caf::actor_system& sys,
                                          node_stores stores,
                                          storage_listener_actor core,
                                          bool detached, node_id owner) {
  if (detached)
    return sys.spawn<caf::detached>(storage_worker, std::move(stores),
                                    std::move(core), owner);
  return sys.spawn(storage_worker, std::move(stores), std::move(core), owner);
}

} // namespace raft_actor
