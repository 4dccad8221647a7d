// The storage worker: the one actor of a node that touches its stores. It
// runs detached from CAF's scheduler threads (a blocking fsync must never
// stall other actors), executes the core's storage writes in order, merges
// whatever queued up meanwhile into one group commit, and reports progress
// to the core actor as `writes_persisted{seq}`.
#pragma once

#include "libraft_actor/core/commands.hpp"
#include "libraft_actor/core/events.hpp"
#include "libraft_actor/core/raft_core.hpp"
#include "storage/interfaces.hpp"

#include "messages/caf_inspect.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/typed_actor.hpp>

#include <memory>
#include <string>
#include <vector>

namespace raft_actor {

/// The stores one node owns; only its storage worker uses them.
struct node_stores {
  /// Term and vote.
  std::shared_ptr<stable_store> stable;
  /// The log.
  std::shared_ptr<log_store> log;
  /// Snapshots.
  std::shared_ptr<snapshot_store> snapshots;
};

/// Reads what the core needs at startup (call before spawning the worker).
/// Throws storage_error on unreadable data.
recovered_state recover(node_stores& stores);

/// A batch of storage writes from the core, in issue order (commands for
/// which write_sequence() is non-zero).
struct storage_writes {
  /// The writes.
  std::vector<command> writes;
};

/// Store a snapshot built from the state machine, then report
/// `snapshot_built` to the core.
struct store_snapshot {
  /// What it covers (id, last_included, config, framework state).
  snapshot_meta meta;
  /// The serialised state machine.
  std::vector<uint8_t> data;
};

/// Sent to the core when a store failed: the node must stop.
struct storage_failed {
  /// What failed, naming file and offset where known.
  std::string what;
};

/// Read one chunk of the latest snapshot for a follower (the core's
/// send_snapshot_chunk); answered with snapshot_chunk_ready, or an error if
/// that snapshot is no longer the latest.
struct read_snapshot_chunk {
  /// What the core asked for.
  send_snapshot_chunk command;
};

/// A filled InstallSnapshot request, ready to send.
struct snapshot_chunk_ready {
  /// The request with data and done set.
  install_snapshot_request request;
};

/// Sent to the core after a received snapshot was installed (ahead of the
/// writes_persisted that covers it): restore the state machine from data.
struct snapshot_installed {
  /// The snapshot's last entry.
  log_id last_included;
  /// The snapshot data.
  std::vector<uint8_t> data;
};

/// Internal: flush what queued up (group commit).
struct storage_flush {};

// -- inspection (these messages never leave the process) -------------------

/// Inspects writes_persisted.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, writes_persisted& x) {
  return f(caf::meta::type_name("raft_actor::writes_persisted"), x.seq);
}

/// Inspects snapshot_built.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_built& x) {
  return f(caf::meta::type_name("raft_actor::snapshot_built"), x.snapshot_id,
           x.last_included);
}

/// Inspects storage_failed.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, storage_failed& x) {
  return f(caf::meta::type_name("raft_actor::storage_failed"), x.what);
}

/// Inspects snapshot_chunk_ready.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_chunk_ready& x) {
  return f(caf::meta::type_name("raft_actor::snapshot_chunk_ready"), x.request);
}

/// Inspects snapshot_installed.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_installed& x) {
  return f(caf::meta::type_name("raft_actor::snapshot_installed"),
           x.last_included, x.data);
}

/// Inspects storage_flush.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, storage_flush&) {
  return f(caf::meta::type_name("raft_actor::storage_flush"));
}

/// What the storage worker reports to (the core actor implements this).
using storage_listener_actor = caf::typed_actor<
  caf::reacts_to<writes_persisted>, caf::reacts_to<snapshot_built>,
  caf::reacts_to<storage_failed>, caf::reacts_to<snapshot_installed>>;

/// Typed interface of the storage worker.
using storage_worker_actor = caf::typed_actor<
  caf::reacts_to<storage_writes>, caf::reacts_to<store_snapshot>,
  caf::replies_to<read_snapshot_chunk>::with<snapshot_chunk_ready>,
  caf::reacts_to<storage_flush>>;

/// Spawns the storage worker of node `owner` for `stores`, reporting to
/// `core`. With `detached` false it runs on the scheduler (deterministic
/// tests).
storage_worker_actor spawn_storage_worker(caf::actor_system& sys,
                                          node_stores stores,
                                          storage_listener_actor core,
                                          bool detached = true,
                                          node_id owner = no_node);

} // namespace raft_actor

// Batches hold core commands and snapshot data: local to one process only.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::storage_writes)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::store_snapshot)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::read_snapshot_chunk)
