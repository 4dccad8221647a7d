// Checks shared by the log stores.
#pragma once

#include "messages/types.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace raft_actor {

/// Throws std::invalid_argument (naming `who`) unless `entries` follow
/// `last` contiguously with terms that never go back. Stores call it before
/// changing anything, so a rejected append changes nothing.
inline void check_batch_follows(log_id last,
                                const std::vector<log_entry>& entries,
                                const char* who) {
  for (const auto& e : entries) {
    if (e.id.index != last.index + 1)
      throw std::invalid_argument(std::string(who) + ": entry "
                                  + std::to_string(e.id.index)
                                  + " does not follow the log");
    if (e.id.term < last.term)
      throw std::invalid_argument(std::string(who)
                                  + ": term goes backwards at entry "
                                  + std::to_string(e.id.index));
    last = e.id;
  }
}

} // namespace raft_actor
