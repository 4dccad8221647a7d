// On-disk formats shared by the durable stores and the inspection tool.
//
// Log segment (log/<first index, 20 digits>.seg):
//   header  "RAFTSEG1" | u64 first index | u32 crc32c(previous 16 bytes)
//   records, each:
//     u32 body length | u32 crc32c(body) | u32 crc32c(previous 8 bytes)
//     body: u64 term | u64 index | u8 kind | i64 leader_time_ms | payload
// The header checksum protects the length, so a flipped length bit is
// reported as corruption instead of looking like a torn tail.
//
// Small metadata files (identity, hard state, log base) are
//   magic (8 bytes) | fields | u32 crc32c(everything before)
// and are replaced atomically: write temp, fsync, rename, fsync directory.
// All integers are little-endian.
#pragma once

#include "messages/types.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace raft_actor::disk {

/// Version of the data directory layout; a directory of another version is
/// refused.
constexpr uint32_t format_version = 1;

/// Segment file header size.
constexpr size_t segment_header_size = 20;
/// Record header size.
constexpr size_t record_header_size = 12;
/// Fixed part of a record body (term, index, kind, time).
constexpr size_t record_body_fixed = 25;
/// Largest record body accepted when reading (1 GiB).
constexpr uint32_t max_record_body = 1u << 30;

constexpr char segment_magic[9] = "RAFTSEG1";

/// Appends `x` little-endian.
template <class T>
void put(std::vector<uint8_t>& out, T x) {
  for (size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(x) >> (8 * i)));
}

/// Reads a little-endian T at `p`.
template <class T>
T get(const uint8_t* p) {
  uint64_t x = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    x |= static_cast<uint64_t>(p[i]) << (8 * i);
  return static_cast<T>(x);
}

/// Bytes of the segment header for a segment starting at `first`.
std::vector<uint8_t> segment_header(index_t first);

/// Checks a segment header; returns its first index or throws nothing and
/// returns false on mismatch.
bool parse_segment_header(const uint8_t* p, index_t& first);

/// Appends the framed record of `e` to `out`.
void encode_record(const log_entry& e, std::vector<uint8_t>& out);

/// Outcome of looking at the bytes at one position of a segment.
enum class record_status {
  /// A valid record.
  ok,
  /// Fewer bytes than a header or than the header's body length: the file
  /// ends inside the record (a torn write if at the end of the log).
  incomplete,
  /// Only zero bytes from here to the end of the file (a torn write that
  /// left zeroed blocks).
  zero_tail,
  /// A complete record (or header) whose checksum does not match, or an
  /// impossible field: corruption, never silently dropped.
  corrupt,
};

/// Parses the record at `p` (with `avail` bytes until the end of the file).
/// On ok, fills `e` and `size` (bytes the record occupies). On corrupt, sets
/// `why`.
record_status parse_record(const uint8_t* p, size_t avail, log_entry& e,
                           size_t& size, std::string& why);

/// A small checksummed metadata file body: magic + fields + crc.
std::vector<uint8_t> seal(const char (&magic)[9], std::vector<uint8_t> fields);

/// Verifies magic and checksum of a sealed file; on success `fields` points
/// at the fields and `n` is their size.
bool unseal(const char (&magic)[9], const std::vector<uint8_t>& bytes,
            const uint8_t*& fields, size_t& n);

/// Zero-padded name of a segment file starting at `first`.
std::string segment_name(index_t first);

/// True if `name` is a segment file name (20 digits and ".seg"); sets
/// `first` to the index it names.
bool parse_segment_name(const std::string& name, index_t& first);

} // namespace raft_actor::disk
