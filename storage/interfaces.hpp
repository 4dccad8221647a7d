// The storage interfaces a node needs. Implement them for your own medium, or
// use the in-memory (memory_store.hpp) or durable file (file_store.hpp)
// implementations. Only the storage worker calls them, from one thread.
//
// Failure contract: a failed write throws storage_error, after which the
// store may refuse every later call; the node treats that as fatal.
#pragma once

#include "messages/types.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace raft_actor {

/// Durable home of the replicated log. Mutations take effect in call order
/// and are durable once a later `sync()` returns.
class log_store {
public:
  virtual ~log_store() = default;

  /// Id of the entry just before the first one held ((0,0) if none was
  /// ever dropped).
  virtual log_id base() const = 0;
  /// Id of the last entry (the base if the log is empty).
  virtual log_id last_id() const = 0;
  /// Appends entries that follow last_id() contiguously.
  virtual void append(const std::vector<log_entry>& entries) = 0;
  /// Deletes every entry with index >= `from` (from > base().index).
  virtual void truncate_from(index_t from) = 0;
  /// Drops entries up to and including `id` (a held entry); base becomes id.
  virtual void purge_to(log_id id) = 0;
  /// Drops every entry; the log restarts after `base` (snapshot install).
  virtual void reset(log_id base) = 0;
  /// Entries [from, to], both held.
  virtual std::vector<log_entry> read(index_t from, index_t to) const = 0;
  /// Makes every earlier mutation durable (one group commit).
  virtual void sync() = 0;
};

/// Durable home of the current term and vote (Figure 2's persistent state).
class stable_store {
public:
  virtual ~stable_store() = default;

  /// The last saved state.
  virtual hard_state load() const = 0;
  /// Saves atomically and durably before returning.
  virtual void save(const hard_state& state) = 0;
};

/// What a snapshot covers, stored next to its data.
struct snapshot_meta {
  /// Unique id of the snapshot.
  uint64_t id = 0;
  /// Last log entry the snapshot replaces.
  log_id last_included;
  /// Membership as of last_included.
  membership config;
  /// State of the framework itself that must survive compaction (for
  /// example the client session table), opaque to the store.
  std::vector<uint8_t> framework_state;
  /// Size of the snapshot data in bytes.
  uint64_t size = 0;
  /// CRC32C of the snapshot data (filled in by finish()).
  uint32_t data_crc = 0;

  friend bool operator==(const snapshot_meta& a, const snapshot_meta& b) {
    return a.id == b.id && a.last_included == b.last_included
           && a.config == b.config && a.framework_state == b.framework_state
           && a.size == b.size && a.data_crc == b.data_crc;
  }
};

/// Durable home of snapshots: the latest complete one, plus at most one
/// being written (built locally or received in chunks).
class snapshot_store {
public:
  virtual ~snapshot_store() = default;

  /// Metadata of the latest complete snapshot, if any.
  virtual std::optional<snapshot_meta> latest() const = 0;
  /// Starts writing snapshot `id`, discarding any partial one. Ids are
  /// unique: reusing the latest snapshot's id is refused
  /// (std::invalid_argument).
  virtual void begin(uint64_t id) = 0;
  /// Writes bytes at `offset`, which must equal the bytes written so far.
  virtual void write(uint64_t id, uint64_t offset,
                     const std::vector<uint8_t>& data)
    = 0;
  /// Bytes written so far to the partial snapshot `id` (0 if none).
  virtual uint64_t partial_size(uint64_t id) const = 0;
  /// Makes snapshot `id` complete, durable and, if it covers more than the
  /// current latest, the latest; older snapshots are deleted. Returns the
  /// stored metadata (with `size` filled in).
  virtual snapshot_meta finish(uint64_t id, snapshot_meta meta) = 0;
  /// Up to `max` bytes of the complete snapshot `id` from `offset`.
  virtual std::vector<uint8_t> read(uint64_t id, uint64_t offset,
                                    size_t max) const = 0;
};

/// The user's replicated state machine. Called on one thread, in log order.
class state_machine {
public:
  virtual ~state_machine() = default;

  /// Applies committed normal entries in order; returns one response per
  /// entry. Throwing stops the node (an entry is never skipped).
  virtual std::vector<std::vector<uint8_t>>
  apply(const std::vector<log_entry>& entries) = 0;
  /// Checks a client's command before it is proposed: empty if it may be
  /// appended, else why not (the write is refused with invalid_argument
  /// and never reaches the log, so a command that apply() could not decode
  /// never stops the cluster). Runs on the node's own actor, concurrently
  /// with apply(): it must not touch the state. Default: accept all.
  virtual std::string check_command(const std::vector<uint8_t>& payload) const {
    (void)payload;
    return {};
  }
  /// Answers a read-only query against the current state.
  virtual std::vector<uint8_t> query(const std::vector<uint8_t>& q) const = 0;
  /// A point-in-time copy of the state, taken cheaply on the applying side
  /// (e.g. a copy-on-write handle), that serialises itself elsewhere while
  /// applying goes on.
  class snapshot_source {
  public:
    virtual ~snapshot_source() = default;
    /// Serialises the captured state (may run on another thread).
    virtual std::vector<uint8_t> serialize() = 0;
  };
  /// Captures the current state.
  virtual std::unique_ptr<snapshot_source> capture() = 0;
  /// Replaces the state with a serialised snapshot.
  virtual void restore(const std::vector<uint8_t>& data) = 0;
};

} // namespace raft_actor
