#include "messages/membership_codec.hpp"

namespace raft_actor {

namespace {

constexpr uint8_t codec_version = 1;

// Limits that keep a hostile payload from allocating without bound.
constexpr uint64_t max_members = 1u << 16;
constexpr uint64_t max_address_len = 1u << 12;

void put_varint(std::vector<uint8_t>& out, uint64_t x) {
  while (x >= 0x80) {
    out.push_back(static_cast<uint8_t>(x | 0x80));
    x >>= 7;
  }
  out.push_back(static_cast<uint8_t>(x));
}

void put_map(std::vector<uint8_t>& out, const member_map& m) {
  put_varint(out, m.size());
  for (const auto& [id, addr] : m) {
    put_varint(out, id);
    put_varint(out, addr.size());
    out.insert(out.end(), addr.begin(), addr.end());
  }
}

/// Cursor over untrusted bytes; every read checks the bounds.
struct reader {
  const std::vector<uint8_t>& bytes;
  size_t pos = 0;
  std::string& error;

  bool fail(const char* what) {
    error = std::string(what) + " at byte " + std::to_string(pos);
    return false;
  }

  bool varint(uint64_t& x) {
    x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= bytes.size())
        return fail("truncated varint");
      uint8_t b = bytes[pos++];
      x |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0)
        return true;
    }
    return fail("varint too long");
  }

  bool map(member_map& m) {
    uint64_t n = 0;
    if (!varint(n))
      return false;
    if (n > max_members)
      return fail("too many members");
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t id = 0;
      uint64_t len = 0;
      if (!varint(id) || !varint(len))
        return false;
      if (id == no_node)
        return fail("member id 0");
      if (len > max_address_len || len > bytes.size() - pos)
        return fail("bad address length");
      std::string addr(bytes.begin() + static_cast<std::ptrdiff_t>(pos),
                       bytes.begin() + static_cast<std::ptrdiff_t>(pos + len));
      pos += len;
      if (!m.emplace(id, std::move(addr)).second)
        return fail("duplicate member id");
    }
    return true;
  }
};

} // namespace

std::vector<uint8_t> encode_membership(const membership& m) {
  std::vector<uint8_t> out;
  out.push_back(codec_version);
  out.push_back(m.joint ? 1 : 0);
  put_map(out, m.voters);
  put_map(out, m.learners);
  put_map(out, m.old_voters);
  return out;
}

bool decode_membership(const std::vector<uint8_t>& bytes, membership& out,
                       std::string& error) {
  reader r{bytes, 0, error};
  if (bytes.size() < 2)
    return r.fail("membership too short");
  if (bytes[0] != codec_version)
    return r.fail("unknown membership encoding version");
  if (bytes[1] > 1)
    return r.fail("bad joint flag");
  membership m;
  m.joint = bytes[1] == 1;
  r.pos = 2;
  if (!r.map(m.voters) || !r.map(m.learners) || !r.map(m.old_voters))
    return false;
  if (r.pos != bytes.size())
    return r.fail("trailing bytes after membership");
  if (!m.joint && !m.old_voters.empty())
    return r.fail("old voters in a non-joint membership");
  out = std::move(m);
  return true;
}

} // namespace raft_actor
