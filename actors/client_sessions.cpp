#include "actors/client_sessions.hpp"

namespace raft_actor {

namespace {

constexpr uint8_t plain_tag = 0;
constexpr uint8_t session_tag = 1;
constexpr uint8_t table_version = 1;

void put64(std::vector<uint8_t>& out, uint64_t x) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(x >> (8 * i)));
}

bool get64(const std::vector<uint8_t>& in, size_t& pos, uint64_t& x) {
  if (pos > in.size() || in.size() - pos < 8)
    return false;
  x = 0;
  for (int i = 0; i < 8; ++i)
    x |= static_cast<uint64_t>(in[pos + static_cast<size_t>(i)]) << (8 * i);
  pos += 8;
  return true;
}

} // namespace

std::vector<uint8_t> wrap_command(uint64_t client_id, uint64_t sequence,
                                  std::vector<uint8_t> payload) {
  std::vector<uint8_t> out;
  out.reserve(payload.size() + 17);
  if (client_id == 0) {
    out.push_back(plain_tag);
  } else {
    out.push_back(session_tag);
    put64(out, client_id);
    put64(out, sequence);
  }
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

bool unwrap_command(const std::vector<uint8_t>& bytes, client_envelope& out) {
  if (bytes.empty())
    return false;
  size_t pos = 1;
  out.client_id = 0;
  out.sequence = 0;
  if (bytes[0] == session_tag) {
    if (!get64(bytes, pos, out.client_id) || !get64(bytes, pos, out.sequence)
        || out.client_id == 0)
      return false;
  } else if (bytes[0] != plain_tag) {
    return false;
  }
  out.payload.assign(bytes.begin() + static_cast<std::ptrdiff_t>(pos),
                     bytes.end());
  return true;
}

std::vector<uint8_t> frame_snapshot(const std::vector<uint8_t>& sessions,
                                    const std::vector<uint8_t>& state) {
  std::vector<uint8_t> out;
  out.reserve(8 + sessions.size() + state.size());
  put64(out, sessions.size());
  out.insert(out.end(), sessions.begin(), sessions.end());
  out.insert(out.end(), state.begin(), state.end());
  return out;
}

bool unframe_snapshot(const std::vector<uint8_t>& data,
                      std::vector<uint8_t>& sessions,
                      std::vector<uint8_t>& state) {
  size_t pos = 0;
  uint64_t n = 0;
  if (!get64(data, pos, n) || n > data.size() - pos)
    return false;
  sessions.assign(data.begin() + 8,
                  data.begin() + static_cast<std::ptrdiff_t>(8 + n));
  state.assign(data.begin() + static_cast<std::ptrdiff_t>(8 + n), data.end());
  return true;
}

session_table::verdict session_table::check(uint64_t client, uint64_t sequence,
                                            const entry*& cached) const {
  cached = nullptr;
  auto it = sessions_.find(client);
  if (it == sessions_.end() || sequence > it->second.sequence)
    return verdict::fresh;
  if (sequence == it->second.sequence) {
    cached = &it->second;
    return verdict::duplicate;
  }
  return verdict::superseded;
}

void session_table::record(uint64_t client, uint64_t sequence, index_t index,
                           std::vector<uint8_t> response, int64_t now_ms) {
  auto& e = sessions_[client];
  e.sequence = sequence;
  e.index = index;
  e.response = std::move(response);
  e.last_used_ms = now_ms;
}

void session_table::expire(int64_t now_ms, int64_t ttl_ms) {
  for (auto it = sessions_.begin(); it != sessions_.end();)
    it = now_ms - it->second.last_used_ms > ttl_ms ? sessions_.erase(it)
                                                   : std::next(it);
}

std::vector<uint8_t> session_table::encode() const {
  std::vector<uint8_t> out{table_version};
  put64(out, sessions_.size());
  for (const auto& [client, e] : sessions_) {
    put64(out, client);
    put64(out, e.sequence);
    put64(out, e.index);
    put64(out, static_cast<uint64_t>(e.last_used_ms));
    put64(out, e.response.size());
    out.insert(out.end(), e.response.begin(), e.response.end());
  }
  return out;
}

bool session_table::decode(const std::vector<uint8_t>& bytes) {
  if (bytes.empty()) {
    sessions_.clear();
    return true;
  }
  if (bytes[0] != table_version)
    return false;
  size_t pos = 1;
  uint64_t n = 0;
  if (!get64(bytes, pos, n))
    return false;
  std::map<uint64_t, entry> table;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t client = 0;
    uint64_t time = 0;
    uint64_t len = 0;
    entry e;
    if (!get64(bytes, pos, client) || !get64(bytes, pos, e.sequence)
        || !get64(bytes, pos, e.index) || !get64(bytes, pos, time)
        || !get64(bytes, pos, len) || len > bytes.size() - pos)
      return false;
    e.last_used_ms = static_cast<int64_t>(time);
    e.response.assign(bytes.begin() + static_cast<std::ptrdiff_t>(pos),
                      bytes.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
    table[client] = std::move(e);
  }
  if (pos != bytes.size())
    return false;
  sessions_ = std::move(table);
  return true;
}

} // namespace raft_actor
