// Quorum math for simple and joint configurations (§5.2, §5.4.2, thesis §4.3).
// Pure functions over the membership; nothing here knows about roles or time.
#pragma once

#include "messages/types.hpp"

#include <functional>
#include <map>

namespace raft_actor {

/// Outcome of counting votes.
enum class vote_result : uint8_t {
  /// Neither a quorum of grants nor of rejections yet.
  pending,
  /// A quorum granted.
  won,
  /// A quorum rejected: the election cannot be won.
  lost,
};

/// Smallest number of voters that forms a majority of `n` voters.
constexpr size_t majority_of(size_t n) {
  return n / 2 + 1;
}

/// Highest index replicated on a majority of `voters`, given each voter's
/// match index. An empty voter set commits nothing.
index_t quorum_index(const member_map& voters,
                     const std::function<index_t(node_id)>& match);

/// Highest index replicated on a quorum of `config`: in a joint configuration
/// it needs a majority of both the old and the new voters (thesis §4.3).
index_t quorum_index(const membership& config,
                     const std::function<index_t(node_id)>& match);

/// Counts `votes` (voter -> granted) among `voters`.
vote_result tally(const member_map& voters,
                  const std::map<node_id, bool>& votes);

/// Counts votes in `config`; a joint election needs both majorities.
vote_result tally(const membership& config,
                  const std::map<node_id, bool>& votes);

/// True if the nodes for which `active` answers true form a quorum.
bool has_quorum(const membership& config,
                const std::function<bool(node_id)>& active);

} // namespace raft_actor
