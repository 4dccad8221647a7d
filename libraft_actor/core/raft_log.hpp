// The in-memory view of a node's log: every entry after the last snapshot,
// including entries not yet durable. Pure data structure, no I/O.
#pragma once

#include "messages/types.hpp"

#include <deque>
#include <optional>
#include <vector>

namespace raft_actor {

/// Entries (snapshot.index, last_index()] plus the snapshot's log id.
/// Invariant: entries are contiguous by index and their terms never decrease.
class raft_log {
public:
  // -- construction ----------------------------------------------------------

  /// An empty log (no snapshot).
  raft_log() = default;

  /// A log that starts after `base` and holds `entries` (contiguous,
  /// following base.index).
  raft_log(log_id base, std::vector<log_entry> entries);

  // -- queries ---------------------------------------------------------------

  /// Id of the entry just before the first held entry: the compaction point
  /// ((0,0) if nothing was ever compacted). Entries up to it are committed
  /// and live only in a snapshot.
  log_id base_id() const { return base_; }

  /// Index of the first entry held in memory.
  index_t first_index() const { return base_.index + 1; }

  /// Index of the last entry (the snapshot's if no entries follow it).
  index_t last_index() const { return base_.index + entries_.size(); }

  /// Log id of the last entry.
  log_id last_id() const { return {last_term(), last_index()}; }

  /// Term of the last entry.
  term_t last_term() const {
    return entries_.empty() ? base_.term : entries_.back().id.term;
  }

  /// Term at `index`, or nothing if the index is compacted or past the end.
  /// Index 0 has term 0; the snapshot's index has the snapshot's term.
  std::optional<term_t> term_at(index_t index) const;

  /// True if the log holds `id` (same term at the same index).
  bool matches(log_id id) const {
    auto t = term_at(id.index);
    return t && *t == id.term;
  }

  /// The entry at `index`; precondition: first_index() <= index <= last.
  const log_entry& at(index_t index) const {
    return entries_[index - first_index()];
  }

  /// Copies of entries [from, to] (clamped to what is held).
  std::vector<log_entry> slice(index_t from, index_t to) const;

  /// Entries [from, ...] up to `max_entries` and about `max_bytes` of
  /// payload (at least one entry if any exists).
  std::vector<log_entry> batch(index_t from, size_t max_entries,
                               size_t max_bytes) const;

  /// First index of the run of entries with the same term as `index`,
  /// looking no further back than `floor`.
  index_t first_index_of_term_at(index_t index, index_t floor) const;

  /// Largest index <= `hint` whose term is <= `term` (used to skip a whole
  /// conflicting term at once when backtracking).
  index_t last_index_with_term_at_most(term_t term, index_t hint) const;

  /// Number of entries held in memory.
  size_t size() const { return entries_.size(); }

  // -- modifiers -------------------------------------------------------------

  /// Appends one entry; precondition: it follows last_id().
  void append(log_entry e);

  /// Removes every entry with index >= `from`; precondition: from > base.
  void truncate_from(index_t from);

  /// Drops entries up to and including `index` (log compaction, §7);
  /// precondition: base < index <= last_index().
  void purge_to(index_t index);

  /// Drops every entry; the log then starts after `base` (a snapshot that
  /// replaces the whole log, §7).
  void reset(log_id base);

private:
  log_id base_;
  std::deque<log_entry> entries_;
};

} // namespace raft_actor
