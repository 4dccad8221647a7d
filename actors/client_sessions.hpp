// Exactly-once client writes (thesis §6.3). A write may carry (client id,
// sequence number); the framework keeps, in the replicated state, the
// latest answer per client, so a retried write returns that answer instead
// of being applied twice. Sessions idle longer than a time-to-live, measured
// in the leader's time stamped on log entries, expire identically on every
// replica. Pure C++: the node actor drives it.
#pragma once

#include "messages/types.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace raft_actor {

/// What the framework puts in front of every client command in the log.
struct client_envelope {
  /// 0 without a session.
  uint64_t client_id = 0;
  /// The client's sequence number of this write (with a session).
  uint64_t sequence = 0;
  /// The user's command.
  std::vector<uint8_t> payload;
};

/// Encodes a client command for the log.
std::vector<uint8_t> wrap_command(uint64_t client_id, uint64_t sequence,
                                  std::vector<uint8_t> payload);

/// Decodes what wrap_command made; false if the bytes are not an envelope.
bool unwrap_command(const std::vector<uint8_t>& bytes, client_envelope& out);

/// Snapshot data of a node: the session table in front of the state
/// machine's bytes, so that both travel (and are restored) together.
std::vector<uint8_t> frame_snapshot(const std::vector<uint8_t>& sessions,
                                    const std::vector<uint8_t>& state);

/// Splits what frame_snapshot made; false if malformed.
bool unframe_snapshot(const std::vector<uint8_t>& data,
                      std::vector<uint8_t>& sessions,
                      std::vector<uint8_t>& state);

/// The replicated table of client sessions.
class session_table {
public:
  /// The remembered answer of one client's latest write.
  struct entry {
    uint64_t sequence = 0;
    index_t index = 0;
    std::vector<uint8_t> response;
    int64_t last_used_ms = 0;
  };

  /// Outcome of looking a write up before applying it.
  enum class verdict {
    /// Not seen: apply it.
    fresh,
    /// The latest write of this client again: answer with `cached`.
    duplicate,
    /// Older than the client's latest write: its answer is gone.
    superseded,
  };

  /// Looks up (client, sequence); on duplicate, `cached` is the answer.
  verdict check(uint64_t client, uint64_t sequence, const entry*& cached) const;

  /// Records the answer of an applied write at log time `now_ms`.
  void record(uint64_t client, uint64_t sequence, index_t index,
              std::vector<uint8_t> response, int64_t now_ms);

  /// Drops sessions idle for more than `ttl_ms` at log time `now_ms`.
  void expire(int64_t now_ms, int64_t ttl_ms);

  /// Number of sessions.
  size_t size() const { return sessions_.size(); }

  /// Serialises the table (for snapshots).
  std::vector<uint8_t> encode() const;

  /// Replaces the table from encode()'s bytes; false (table unchanged) if
  /// they are malformed. Empty bytes mean an empty table.
  bool decode(const std::vector<uint8_t>& bytes);

private:
  std::map<uint64_t, entry> sessions_;
};

} // namespace raft_actor
