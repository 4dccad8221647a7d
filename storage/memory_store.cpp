#include "storage/memory_store.hpp"

#include "storage/crc32c.hpp"
#include "storage/log_checks.hpp"

#include <algorithm>
#include <stdexcept>

namespace raft_actor {

// -- memory_log_store ---------------------------------------------------------

log_id memory_log_store::base() const {
  return base_;
}

log_id memory_log_store::last_id() const {
  return entries_.empty() ? base_ : entries_.back().id;
}

void memory_log_store::append(const std::vector<log_entry>& entries) {
  // Check the whole batch first: a rejected append changes nothing.
  check_batch_follows(last_id(), entries, "memory_log_store::append");
  entries_.insert(entries_.end(), entries.begin(), entries.end());
}

void memory_log_store::truncate_from(index_t from) {
  if (from <= base_.index)
    throw std::invalid_argument("memory_log_store::truncate_from: index "
                                "is compacted");
  while (!entries_.empty() && entries_.back().id.index >= from)
    entries_.pop_back();
}

void memory_log_store::purge_to(log_id id) {
  if (id.index <= base_.index)
    return;
  if (id.index > last_id().index
      || entries_[id.index - base_.index - 1].id != id)
    throw std::invalid_argument("memory_log_store::purge_to: entry not held");
  while (!entries_.empty() && entries_.front().id.index <= id.index)
    entries_.pop_front();
  base_ = id;
}

void memory_log_store::reset(log_id base) {
  entries_.clear();
  base_ = base;
}

std::vector<log_entry> memory_log_store::read(index_t from, index_t to) const {
  if (from <= base_.index || to > last_id().index || from > to + 1)
    throw std::invalid_argument("memory_log_store::read: range not held");
  return {entries_.begin()
            + static_cast<std::ptrdiff_t>(from - base_.index - 1),
          entries_.begin() + static_cast<std::ptrdiff_t>(to - base_.index)};
}

void memory_log_store::sync() {}

// -- memory_stable_store ------------------------------------------------------

hard_state memory_stable_store::load() const {
  return state_;
}

void memory_stable_store::save(const hard_state& state) {
  state_ = state;
}

// -- memory_snapshot_store ----------------------------------------------------

std::optional<snapshot_meta> memory_snapshot_store::latest() const {
  return latest_;
}

void memory_snapshot_store::begin(uint64_t id) {
  if (latest_ && latest_->id == id)
    throw std::invalid_argument("memory_snapshot_store::begin: snapshot id "
                                + std::to_string(id)
                                + " is the latest one; ids must be unique");
  partial_id_ = id;
  partial_.clear();
}

void memory_snapshot_store::write(uint64_t id, uint64_t offset,
                                  const std::vector<uint8_t>& data) {
  if (id != partial_id_ || offset != partial_.size())
    throw std::invalid_argument("memory_snapshot_store::write: snapshot "
                                + std::to_string(id)
                                + " is not being written at that offset");
  partial_.insert(partial_.end(), data.begin(), data.end());
}

uint64_t memory_snapshot_store::partial_size(uint64_t id) const {
  return id == partial_id_ ? partial_.size() : 0;
}

snapshot_meta memory_snapshot_store::finish(uint64_t id, snapshot_meta meta) {
  if (id != partial_id_)
    throw std::invalid_argument("memory_snapshot_store::finish: snapshot "
                                + std::to_string(id) + " was not begun");
  meta.id = id;
  meta.size = partial_.size();
  meta.data_crc = crc32c(partial_.data(), partial_.size());
  if (!latest_ || meta.last_included.index > latest_->last_included.index) {
    latest_ = meta;
    latest_data_ = std::move(partial_);
  }
  partial_.clear();
  partial_id_ = 0;
  return meta;
}

std::vector<uint8_t> memory_snapshot_store::read(uint64_t id, uint64_t offset,
                                                 size_t max) const {
  if (!latest_ || latest_->id != id)
    throw std::invalid_argument("memory_snapshot_store::read: snapshot "
                                + std::to_string(id) + " is not the latest");
  if (offset > latest_data_.size())
    throw std::invalid_argument("memory_snapshot_store::read: offset "
                                "beyond the snapshot");
  auto n = std::min<uint64_t>(max, latest_data_.size() - offset);
  auto b = latest_data_.begin() + static_cast<std::ptrdiff_t>(offset);
  return {b, b + static_cast<std::ptrdiff_t>(n)};
}

} // namespace raft_actor
