#include "storage/record_format.hpp"

#include "storage/crc32c.hpp"

#include <cstdio>

namespace raft_actor::disk {

namespace {

std::vector<uint8_t> magic_bytes(const char (&magic)[9]) {
  std::vector<uint8_t> out;
  out.reserve(32);
  for (size_t i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(magic[i]));
  return out;
}

} // namespace

std::vector<uint8_t> segment_header(index_t first) {
  auto out = magic_bytes(segment_magic);
  put<uint64_t>(out, first);
  put<uint32_t>(out, crc32c(out.data(), out.size()));
  return out;
}

bool parse_segment_header(const uint8_t* p, index_t& first) {
  if (std::memcmp(p, segment_magic, 8) != 0)
    return false;
  if (get<uint32_t>(p + 16) != crc32c(p, 16))
    return false;
  first = get<uint64_t>(p + 8);
  return true;
}

void encode_record(const log_entry& e, std::vector<uint8_t>& out) {
  auto start = out.size();
  auto body_len = static_cast<uint32_t>(record_body_fixed + e.payload.size());
  out.resize(start + record_header_size);
  put<uint64_t>(out, e.id.term);
  put<uint64_t>(out, e.id.index);
  put<uint8_t>(out, static_cast<uint8_t>(e.kind));
  put<uint64_t>(out, static_cast<uint64_t>(e.leader_time_ms));
  out.insert(out.end(), e.payload.begin(), e.payload.end());
  uint8_t* h = out.data() + start;
  for (size_t i = 0; i < 4; ++i)
    h[i] = static_cast<uint8_t>(body_len >> (8 * i));
  auto body_crc = crc32c(h + record_header_size, body_len);
  for (size_t i = 0; i < 4; ++i)
    h[4 + i] = static_cast<uint8_t>(body_crc >> (8 * i));
  auto head_crc = crc32c(h, 8);
  for (size_t i = 0; i < 4; ++i)
    h[8 + i] = static_cast<uint8_t>(head_crc >> (8 * i));
}

record_status parse_record(const uint8_t* p, size_t avail, log_entry& e,
                           size_t& size, std::string& why) {
  auto all_zero = [](const uint8_t* q, size_t n) {
    for (size_t i = 0; i < n; ++i)
      if (q[i] != 0)
        return false;
    return true;
  };
  if (avail < record_header_size)
    return all_zero(p, avail) ? record_status::zero_tail
                              : record_status::incomplete;
  if (all_zero(p, record_header_size)) {
    if (all_zero(p, avail))
      return record_status::zero_tail;
    why = "zeroed record header followed by data";
    return record_status::corrupt;
  }
  auto body_len = get<uint32_t>(p);
  auto body_crc = get<uint32_t>(p + 4);
  if (get<uint32_t>(p + 8) != crc32c(p, 8)) {
    why = "record header checksum mismatch";
    return record_status::corrupt;
  }
  if (body_len < record_body_fixed || body_len > max_record_body) {
    why = "impossible record length " + std::to_string(body_len);
    return record_status::corrupt;
  }
  if (avail - record_header_size < body_len)
    return record_status::incomplete;
  const uint8_t* b = p + record_header_size;
  if (crc32c(b, body_len) != body_crc) {
    why = "record checksum mismatch";
    return record_status::corrupt;
  }
  auto kind = get<uint8_t>(b + 16);
  if (kind > static_cast<uint8_t>(entry_kind::membership)) {
    why = "unknown entry kind " + std::to_string(kind);
    return record_status::corrupt;
  }
  e.id.term = get<uint64_t>(b);
  e.id.index = get<uint64_t>(b + 8);
  e.kind = static_cast<entry_kind>(kind);
  e.leader_time_ms = static_cast<int64_t>(get<uint64_t>(b + 17));
  e.payload.assign(b + record_body_fixed, b + body_len);
  size = record_header_size + body_len;
  return record_status::ok;
}

std::vector<uint8_t> seal(const char (&magic)[9], std::vector<uint8_t> fields) {
  auto out = magic_bytes(magic);
  out.insert(out.end(), fields.begin(), fields.end());
  put<uint32_t>(out, crc32c(out.data(), out.size()));
  return out;
}

bool unseal(const char (&magic)[9], const std::vector<uint8_t>& bytes,
            const uint8_t*& fields, size_t& n) {
  if (bytes.size() < 12 || std::memcmp(bytes.data(), magic, 8) != 0)
    return false;
  auto body = bytes.size() - 4;
  if (get<uint32_t>(bytes.data() + body) != crc32c(bytes.data(), body))
    return false;
  fields = bytes.data() + 8;
  n = body - 8;
  return true;
}

std::string segment_name(index_t first) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%020llu.seg",
                static_cast<unsigned long long>(first));
  return buf;
}

bool parse_segment_name(const std::string& name, index_t& first) {
  if (name.size() != 24 || name.compare(20, 4, ".seg") != 0)
    return false;
  first = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9')
      return false;
    first = first * 10 + static_cast<index_t>(name[i] - '0');
  }
  return true;
}

} // namespace raft_actor::disk
