#include "libraft_actor/core/raft_log.hpp"

#include <stdexcept>

namespace raft_actor {

raft_log::raft_log(log_id base, std::vector<log_entry> entries) : base_(base) {
  for (auto& e : entries)
    append(std::move(e));
}

std::optional<term_t> raft_log::term_at(index_t index) const {
  if (index == base_.index)
    return base_.term;
  if (index < first_index() || index > last_index())
    return std::nullopt;
  return at(index).id.term;
}

std::vector<log_entry> raft_log::slice(index_t from, index_t to) const {
  std::vector<log_entry> out;
  if (from < first_index())
    from = first_index();
  if (to > last_index())
    to = last_index();
  if (from > to)
    return out;
  out.reserve(to - from + 1);
  for (auto i = from; i <= to; ++i)
    out.push_back(at(i));
  return out;
}

std::vector<log_entry> raft_log::batch(index_t from, size_t max_entries,
                                       size_t max_bytes) const {
  std::vector<log_entry> out;
  if (from < first_index())
    return out;
  size_t bytes = 0;
  for (auto i = from; i <= last_index() && out.size() < max_entries; ++i) {
    const auto& e = at(i);
    if (!out.empty() && bytes + e.payload.size() > max_bytes)
      break;
    bytes += e.payload.size();
    out.push_back(e);
  }
  return out;
}

index_t raft_log::first_index_of_term_at(index_t index, index_t floor) const {
  auto t = term_at(index);
  if (!t)
    return index;
  if (floor < first_index())
    floor = first_index();
  while (index > floor && term_at(index - 1) == t)
    --index;
  return index;
}

index_t raft_log::last_index_with_term_at_most(term_t term,
                                               index_t hint) const {
  if (hint > last_index())
    hint = last_index();
  for (auto i = hint; i >= first_index(); --i)
    if (at(i).id.term <= term)
      return i;
  return base_.index;
}

void raft_log::append(log_entry e) {
  if (e.id.index != last_index() + 1 || e.id.term < last_term())
    throw std::logic_error("raft_log::append: entry does not follow the log");
  entries_.push_back(std::move(e));
}

void raft_log::truncate_from(index_t from) {
  if (from <= base_.index)
    throw std::logic_error("raft_log::truncate_from: index is compacted");
  while (last_index() >= from)
    entries_.pop_back();
}

void raft_log::purge_to(index_t index) {
  if (index <= base_.index || index > last_index())
    throw std::logic_error("raft_log::purge_to: index out of range");
  base_ = at(index).id;
  while (!entries_.empty() && entries_.front().id.index <= index)
    entries_.pop_front();
}

void raft_log::reset(log_id base) {
  entries_.clear();
  base_ = base;
}

} // namespace raft_actor
