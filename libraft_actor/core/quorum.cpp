#include "libraft_actor/core/quorum.hpp"

#include <algorithm>
#include <vector>

namespace raft_actor {

index_t quorum_index(const member_map& voters,
                     const std::function<index_t(node_id)>& match) {
  if (voters.empty())
    return 0;
  std::vector<index_t> xs;
  xs.reserve(voters.size());
  for (const auto& kv : voters)
    xs.push_back(match(kv.first));
  // Sorted descending, the majority_of(n)-th value is held by a majority.
  std::sort(xs.begin(), xs.end(), std::greater<>{});
  return xs[majority_of(xs.size()) - 1];
}

index_t quorum_index(const membership& config,
                     const std::function<index_t(node_id)>& match) {
  auto idx = quorum_index(config.voters, match);
  if (config.joint)
    idx = std::min(idx, quorum_index(config.old_voters, match));
  return idx;
}

vote_result tally(const member_map& voters,
                  const std::map<node_id, bool>& votes) {
  if (voters.empty())
    return vote_result::lost;
  size_t granted = 0;
  size_t rejected = 0;
  for (const auto& kv : voters) {
    auto i = votes.find(kv.first);
    if (i == votes.end())
      continue;
    ++(i->second ? granted : rejected);
  }
  auto need = majority_of(voters.size());
  if (granted >= need)
    return vote_result::won;
  if (rejected > voters.size() - need)
    return vote_result::lost;
  return vote_result::pending;
}

vote_result tally(const membership& config,
                  const std::map<node_id, bool>& votes) {
  auto r = tally(config.voters, votes);
  if (!config.joint)
    return r;
  auto o = tally(config.old_voters, votes);
  if (r == vote_result::lost || o == vote_result::lost)
    return vote_result::lost;
  if (r == vote_result::won && o == vote_result::won)
    return vote_result::won;
  return vote_result::pending;
}

bool has_quorum(const membership& config,
                const std::function<bool(node_id)>& active) {
  auto count = [&](const member_map& voters) {
    if (voters.empty())
      return false;
    size_t n = 0;
    for (const auto& kv : voters)
      n += active(kv.first) ? 1 : 0;
    return n >= majority_of(voters.size());
  };
  return count(config.voters) && (!config.joint || count(config.old_voters));
}

} // namespace raft_actor
