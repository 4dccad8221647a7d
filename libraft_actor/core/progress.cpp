#include "libraft_actor/core/progress.hpp"

namespace raft_actor {

const char* to_string(replication_state s) {
  switch (s) {
    case replication_state::probe:
      return "probe";
    case replication_state::replicate:
      return "replicate";
    case replication_state::snapshot:
      return "snapshot";
  }
  return "?";
}

bool progress::paused(const core_config& cfg) const {
  switch (state) {
    case replication_state::probe:
      return probe_sent;
    case replication_state::replicate:
      return inflight.size() >= cfg.max_inflight_appends
             || inflight_bytes >= cfg.max_inflight_bytes;
    case replication_state::snapshot:
      return true;
  }
  return true;
}

void progress::on_sent(index_t last, size_t bytes, raft_duration now) {
  if (state == replication_state::probe) {
    probe_sent = true;
    probe_sent_at = now;
    return;
  }
  if (last >= next_index)
    next_index = last + 1;
  inflight.push_back({last, bytes, now});
  inflight_bytes += bytes;
}

bool progress::on_ack(index_t index) {
  // Free every request the ack covers (acks are cumulative).
  while (!inflight.empty() && inflight.front().last <= index) {
    inflight_bytes -= inflight.front().bytes;
    inflight.pop_front();
  }
  probe_sent = false;
  if (index <= match_index)
    return false;
  match_index = index;
  if (next_index <= index)
    next_index = index + 1;
  return true;
}

void progress::become_probe() {
  state = replication_state::probe;
  next_index = match_index + 1;
  probe_sent = false;
  inflight.clear();
  inflight_bytes = 0;
}

void progress::become_replicate() {
  state = replication_state::replicate;
  next_index = match_index + 1;
  probe_sent = false;
  inflight.clear();
  inflight_bytes = 0;
}

} // namespace raft_actor
