// In-memory stores for tests and for embedding where durability comes from
// elsewhere. They follow the same contracts as the durable stores (and
// detect the same caller errors), but nothing survives the process.
#pragma once

#include "storage/interfaces.hpp"

#include <deque>
#include <map>

namespace raft_actor {

/// A log_store in memory.
class memory_log_store : public log_store {
public:
  log_id base() const override;
  log_id last_id() const override;
  void append(const std::vector<log_entry>& entries) override;
  void truncate_from(index_t from) override;
  void purge_to(log_id id) override;
  void reset(log_id base) override;
  std::vector<log_entry> read(index_t from, index_t to) const override;
  void sync() override;

private:
  log_id base_;
  std::deque<log_entry> entries_;
};

/// A stable_store in memory.
class memory_stable_store : public stable_store {
public:
  hard_state load() const override;
  void save(const hard_state& state) override;

private:
  hard_state state_;
};

/// A snapshot_store in memory.
class memory_snapshot_store : public snapshot_store {
public:
  std::optional<snapshot_meta> latest() const override;
  void begin(uint64_t id) override;
  void write(uint64_t id, uint64_t offset,
             const std::vector<uint8_t>& data) override;
  uint64_t partial_size(uint64_t id) const override;
  snapshot_meta finish(uint64_t id, snapshot_meta meta) override;
  std::vector<uint8_t> read(uint64_t id, uint64_t offset,
                            size_t max) const override;

private:
  std::optional<snapshot_meta> latest_;
  std::vector<uint8_t> latest_data_;
  uint64_t partial_id_ = 0;
  std::vector<uint8_t> partial_;
};

} // namespace raft_actor
