// Helpers shared by the storage crash, fault and contract tests: entries with
// varied payloads, byte-level surgery on files (cut, flip, zero, append) and
// directory copies, so that every damaged variant starts from the same
// pristine bytes.
#pragma once

#include "storage/file_store.hpp"
#include "storage/record_format.hpp"
#include "tests/storage/temp_dir.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace raft_actor::test {

/// An entry whose payload size and bytes depend on its index, so that a
/// record misplaced or mixed up with another is noticed.
inline log_entry make_entry(term_t term, index_t index, size_t bytes) {
  log_entry e;
  e.id = {term, index};
  e.kind = index % 5 == 0 ? entry_kind::blank : entry_kind::normal;
  e.leader_time_ms = static_cast<int64_t>(1000 + index * 7);
  e.payload.resize(bytes);
  for (size_t i = 0; i < bytes; ++i)
    e.payload[i] = static_cast<uint8_t>(index * 31 + i);
  return e;
}

/// Payload sizes that vary from record to record (0 to 60 bytes).
inline size_t varied_size(index_t index) {
  return static_cast<size_t>((index * 37) % 61);
}

/// Entries [from, to] of `term` with varied payload sizes.
inline std::vector<log_entry> make_entries(term_t term, index_t from,
                                           index_t to) {
  std::vector<log_entry> out;
  for (auto i = from; i <= to; ++i)
    out.push_back(make_entry(term, i, varied_size(i)));
  return out;
}

/// Whole content of a file.
inline std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Replaces the content of a file.
inline void set_file_bytes(const std::string& path,
                           const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out)
    throw std::runtime_error("cannot write " + path);
}

/// Cuts a file to `size` bytes.
inline void cut_file(const std::string& path, uint64_t size) {
  std::filesystem::resize_file(path, size);
}

/// Flips bit `bit` (0-7) of byte `offset` of a file.
inline void flip_bit(const std::string& path, uint64_t offset, int bit) {
  auto b = file_bytes(path);
  b.at(offset) ^= static_cast<uint8_t>(1u << bit);
  set_file_bytes(path, b);
}

/// Flips bit `bit` of byte `offset` without rewriting the rest of the file
/// (cheap enough for thousands of variants).
inline void flip_bit_in_place(const std::string& path, uint64_t offset,
                              int bit) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  c = static_cast<char>(c ^ (1 << bit));
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(c);
  if (!f)
    throw std::runtime_error("cannot flip a bit of " + path);
}

/// Sets bytes [offset, offset + n) of a file to zero.
inline void zero_range(const std::string& path, uint64_t offset, uint64_t n) {
  auto b = file_bytes(path);
  for (uint64_t i = offset; i < offset + n && i < b.size(); ++i)
    b[i] = 0;
  set_file_bytes(path, b);
}

/// Appends `n` zero bytes to a file.
inline void append_zeros(const std::string& path, size_t n) {
  auto b = file_bytes(path);
  b.resize(b.size() + n, 0);
  set_file_bytes(path, b);
}

/// Copies directory `from` (recursively) to the new path `to`.
inline void copy_dir(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

/// Sorted paths of the segment files of a log directory.
inline std::vector<std::string> segment_paths(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if (name.size() == 24 && name.compare(20, 4, ".seg") == 0)
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Where each record of a segment file starts (parsed independently of the
/// store, with the shared record format) plus the entries they hold.
struct segment_layout {
  std::string path;
  index_t first = 0;
  std::vector<uint64_t> offsets; ///< start of each record
  std::vector<uint64_t> ends;    ///< end of each record
  std::vector<log_entry> entries;
};

/// Parses a clean segment file; throws if it is not clean.
inline segment_layout layout_of(const std::string& path) {
  segment_layout l;
  l.path = path;
  auto b = file_bytes(path);
  if (b.size() < disk::segment_header_size
      || !disk::parse_segment_header(b.data(), l.first))
    throw std::runtime_error("bad header in " + path);
  size_t pos = disk::segment_header_size;
  while (pos < b.size()) {
    log_entry e;
    size_t n = 0;
    std::string why;
    if (disk::parse_record(b.data() + pos, b.size() - pos, e, n, why)
        != disk::record_status::ok)
      throw std::runtime_error("unclean record in " + path);
    l.offsets.push_back(pos);
    l.ends.push_back(pos + n);
    l.entries.push_back(std::move(e));
    pos += n;
  }
  return l;
}

/// Runs `f`, which must throw storage_error; returns the error (or nullopt
/// after recording a failure if it did not throw, or threw something else).
template <class F>
std::optional<storage_error> catch_storage_error(F&& f) {
  try {
    f();
  } catch (const storage_error& e) {
    return e;
  } catch (...) {
    return std::nullopt;
  }
  return std::nullopt;
}

/// True if `text` mentions "offset N" for exactly this N (not a longer
/// number that starts with the same digits).
inline bool mentions_offset(const std::string& text, uint64_t n) {
  const std::string key = "offset ";
  for (auto at = text.find(key); at != std::string::npos;
       at = text.find(key, at + 1)) {
    size_t i = at + key.size();
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])))
      ++j;
    if (j > i && text.substr(i, j - i) == std::to_string(n))
      return true;
  }
  return false;
}

/// True if `text` contains `part`.
inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace raft_actor::test
