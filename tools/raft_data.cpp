// raft-data: shows an operator what a node's data directory holds (identity,
// hard state, log segments, snapshots) and verifies every checksum, without
// changing a byte.
//
// Why not simply open the stores: file_log_store's constructor repairs a torn
// tail (it truncates the last segment), data_dir::open may replace the log by
// a snapshot, and a tool that looks must never be the thing that changes what
// it looks at. So the segments are parsed here with record_format.hpp's
// primitives, and every file is read through read_only_file_system(), whose
// mutating operations throw: a read-only open (O_RDONLY) makes the promise
// structural.
//
// The checks mirror file_log_store::load, file_snapshot_store's constructor
// and data_dir::open, so that the verdict predicts what opening would do:
// - "would be truncated on open": a torn tail of the last segment, which
//   the store repairs (exit 1);
// - "refused on open": anything the store throws storage_error for (exit 2).
//
// Exit codes: 0 clean, 1 torn tail only (repairable), 2 corruption or
// unreadable, 64 usage error.
#include "storage/file_store.hpp"
#include "storage/record_format.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/stat.h>

using namespace raft_actor;

namespace {

constexpr int exit_clean = 0;
constexpr int exit_repairable = 1;
constexpr int exit_corrupt = 2;
constexpr int exit_usage = 64;

/// The log base file's magic. It is private to file_log_store.cpp; kept in
/// step by the tools test, which opens what this tool inspected.
constexpr char base_magic[9] = "RAFTBASE";

/// Metadata files (identity, hard state, base, snapshot metadata) larger
/// than this are not read: none of ours comes close, and a huge garbage file
/// must not exhaust memory.
constexpr uint64_t max_small_file = 64u << 20;

/// True if `path` is a directory (following symlinks).
bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// -- findings -----------------------------------------------------------------

/// What opening the directory would do about a finding.
enum class severity {
  /// The store repairs it (truncates a torn tail): exit 1.
  repaired,
  /// The store throws storage_error (or the file cannot be read): exit 2.
  refused,
};

struct problem {
  severity sev;
  std::string path;
  /// Byte offset in `path`, or -1 if the finding concerns the whole file.
  int64_t offset;
  std::string what;
};

struct findings {
  std::vector<problem> problems;
  /// Harmless observations (leftover temp files, ignored names).
  std::vector<std::string> notes;

  void repaired(std::string path, int64_t offset, std::string what) {
    problems.push_back(
      {severity::repaired, std::move(path), offset, std::move(what)});
  }
  void refused(std::string path, int64_t offset, std::string what) {
    problems.push_back(
      {severity::refused, std::move(path), offset, std::move(what)});
  }
  /// Records a storage_error as a refusal, keeping its path and offset.
  void refused(const storage_error& e) {
    problems.push_back({severity::refused, e.path(), e.offset(),
                        reason(e) + ": refused on open"});
  }
  /// The message of `e` without the path and offset it names separately.
  static std::string reason(const storage_error& e) {
    std::string what = e.what();
    auto k = what.find(": " + e.path());
    if (k != std::string::npos)
      what.resize(k);
    if (e.error_number() != 0)
      what += std::string(" (") + std::strerror(e.error_number()) + ")";
    return what;
  }
  bool any_refused() const {
    return std::any_of(problems.begin(), problems.end(), [](const problem& p) {
      return p.sev == severity::refused;
    });
  }
};

// -- reading ------------------------------------------------------------------

/// Reads a small metadata file, refusing sizes no metadata file has.
std::vector<uint8_t> read_small(file_system& fs, const std::string& path) {
  auto f = fs.open(path, false);
  std::vector<uint8_t> out;
  try {
    auto size = fs.size(f);
    if (size > max_small_file)
      throw storage_error("metadata file is implausibly large ("
                            + std::to_string(size) + " bytes)",
                          path, 0);
    out.resize(size);
    out.resize(fs.pread(f, out.data(), out.size(), 0));
  } catch (...) {
    fs.close(f);
    throw;
  }
  fs.close(f);
  return out;
}

/// True if every byte of `f` from `from` to `size` is zero (read in chunks,
/// so a huge file costs no memory).
bool zero_from(file_system& fs, const raft_actor::file_handle& f, uint64_t from,
               uint64_t size) {
  std::vector<uint8_t> buf(1u << 20);
  while (from < size) {
    auto want
      = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - from));
    auto got = fs.pread(f, buf.data(), want, from);
    for (size_t i = 0; i < got; ++i)
      if (buf[i] != 0)
        return false;
    if (got < want)
      return true; // shrank while reading; what is there is zero
    from += got;
  }
  return true;
}

std::string kind_name(entry_kind k) {
  switch (k) {
    case entry_kind::normal:
      return "normal";
    case entry_kind::blank:
      return "blank";
    case entry_kind::membership:
      return "membership";
  }
  return "kind " + std::to_string(static_cast<int>(k));
}

/// "2024-11-25T01:09:00.123Z (1732496940123)", or "0" for no time.
std::string format_time(int64_t ms) {
  if (ms == 0)
    return "0";
  auto secs = static_cast<time_t>(ms / 1000);
  auto frac = static_cast<int>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  std::tm tm{};
  char buf[64];
  if (!::gmtime_r(&secs, &tm)
      || std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    return std::to_string(ms);
  char out[128];
  std::snprintf(out, sizeof(out), "%s.%03dZ (%" PRId64 ")", buf, frac, ms);
  return out;
}

std::string members(const member_map& m) {
  std::string out = "{";
  for (const auto& [id, addr] : m) {
    if (out.size() > 1)
      out += ", ";
    out += std::to_string(id);
    if (!addr.empty())
      out += " " + addr;
  }
  return out + "}";
}

// -- the log ------------------------------------------------------------------

/// One record, kept for --verbose.
struct record_line {
  index_t index;
  term_t term;
  entry_kind kind;
  size_t payload;
  int64_t leader_time_ms;
};

/// What a segment holds, as far as it could be verified.
struct segment_info {
  std::string name;
  std::string path;
  /// First index, from the file name.
  index_t first = 0;
  /// File size in bytes.
  uint64_t bytes = 0;
  /// Terms of the valid records, in order.
  std::vector<term_t> terms;
  /// True if the header was valid.
  bool header_ok = false;
  /// Records kept for --verbose (bounded by --entries).
  std::vector<record_line> shown;
  /// Records that could not be shown because of --entries.
  uint64_t hidden = 0;
};

/// Verifies one segment as file_log_store::load_segment would read it, with
/// `is_last` deciding whether an incomplete end is a torn tail (repaired) or
/// damage (refused). Stops at the first problem: past a bad record the
/// framing cannot be trusted.
void scan_segment(file_system& fs, segment_info& s, bool is_last,
                  uint64_t& show_budget, bool verbose, findings& out) {
  auto f = fs.open(s.path, false);
  struct closer {
    file_system& fs;
    raft_actor::file_handle& f;
    ~closer() { fs.close(f); }
  } guard{fs, f};
  s.bytes = fs.size(f);
  uint8_t head[disk::segment_header_size];
  size_t got = s.bytes >= sizeof(head) ? fs.pread(f, head, sizeof(head), 0) : 0;
  index_t first = 0;
  if (got < sizeof(head) || !disk::parse_segment_header(head, first)) {
    if (is_last && (s.bytes < sizeof(head) || zero_from(fs, f, 0, s.bytes))) {
      out.repaired(s.path, 0,
                   "torn tail (incomplete segment header, "
                     + std::to_string(s.bytes)
                     + " bytes): would be truncated on open (and the header "
                       "rewritten)");
      return;
    }
    out.refused(s.path, 0, "bad segment header: refused on open");
    return;
  }
  if (first != s.first) {
    out.refused(s.path, 0,
                "segment header names first index " + std::to_string(first)
                  + ": refused on open");
    return;
  }
  s.header_ok = true;
  // A valid header: this is (or was) a real segment, read it whole as the
  // store does.
  std::vector<uint8_t> bytes(s.bytes);
  bytes.resize(fs.pread(f, bytes.data(), bytes.size(), 0));
  size_t pos = disk::segment_header_size;
  term_t prev_term = 0;
  auto torn = [&](const char* what) {
    auto rest = std::to_string(bytes.size() - pos) + " bytes";
    if (is_last)
      out.repaired(s.path, static_cast<int64_t>(pos),
                   std::string("torn tail (") + what + ", " + rest
                     + "): would be truncated on open");
    else
      out.refused(s.path, static_cast<int64_t>(pos),
                  std::string("segment ends inside a record (") + what + ", "
                    + rest + ") but is not the last segment: refused on open");
  };
  while (pos < bytes.size()) {
    log_entry e;
    size_t n = 0;
    std::string why;
    switch (
      disk::parse_record(bytes.data() + pos, bytes.size() - pos, e, n, why)) {
      case disk::record_status::ok: {
        auto expected = s.first + s.terms.size();
        if (e.id.index != expected) {
          out.refused(s.path, static_cast<int64_t>(pos),
                      "record holds index " + std::to_string(e.id.index)
                        + ", expected " + std::to_string(expected)
                        + ": refused on open");
          return;
        }
        if (e.id.term < prev_term) {
          out.refused(s.path, static_cast<int64_t>(pos),
                      "record term " + std::to_string(e.id.term)
                        + " goes backwards (previous "
                        + std::to_string(prev_term) + "): refused on open");
          return;
        }
        prev_term = e.id.term;
        s.terms.push_back(e.id.term);
        if (verbose) {
          if (show_budget > 0) {
            --show_budget;
            s.shown.push_back({e.id.index, e.id.term, e.kind, e.payload.size(),
                               e.leader_time_ms});
          } else {
            ++s.hidden;
          }
        }
        pos += n;
        break;
      }
      case disk::record_status::incomplete:
        torn("incomplete final record");
        return;
      case disk::record_status::zero_tail:
        torn("zeroed bytes");
        return;
      case disk::record_status::corrupt:
        out.refused(s.path, static_cast<int64_t>(pos),
                    "corrupt log record (" + why + "): refused on open");
        return;
    }
  }
}

struct log_info {
  bool present = false;
  std::optional<log_id> base;
  std::vector<segment_info> segments;
  /// The log as opening would find it (valid only without refusals in it).
  bool usable = false;
  log_id last;
  uint64_t records = 0;

  /// Term of a held entry, 0 if not held (as file_log_store::term_of).
  term_t term_of(index_t index) const {
    for (auto it = segments.rbegin(); it != segments.rend(); ++it)
      if (index >= it->first && index < it->first + it->terms.size())
        return it->terms[index - it->first];
    return 0;
  }
};

log_info scan_log(file_system& fs, const std::string& dir, bool verbose,
                  uint64_t show_budget, findings& out) {
  log_info log;
  if (!fs.exists(dir)) {
    out.notes.push_back(dir + " is missing (opening creates an empty log)");
    log.usable = true;
    return log;
  }
  log.present = true;
  auto refusals_before = out.problems.size();
  auto base_path = dir + "/base";
  if (fs.exists(base_path)) {
    try {
      auto bytes = read_small(fs, base_path);
      const uint8_t* p = nullptr;
      size_t n = 0;
      if (!disk::unseal(base_magic, bytes, p, n) || n != 16)
        out.refused(base_path, 0, "corrupt log base file: refused on open");
      else
        log.base = log_id{disk::get<uint64_t>(p), disk::get<uint64_t>(p + 8)};
    } catch (const storage_error& e) {
      out.refused(e);
    }
  }
  std::vector<std::pair<index_t, std::string>> files;
  for (const auto& name : fs.list(dir)) {
    index_t first = 0;
    if (disk::parse_segment_name(name, first))
      files.emplace_back(first, name);
    else if (name == "base")
      continue;
    else if (name == "base.tmp")
      out.notes.push_back(dir + "/" + name
                          + ": leftover of an interrupted base update "
                            "(ignored on open)");
    else
      out.notes.push_back(dir + "/" + name + ": not a segment (ignored)");
  }
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < files.size(); ++i) {
    segment_info s;
    s.first = files[i].first;
    s.name = files[i].second;
    s.path = dir + "/" + s.name;
    try {
      scan_segment(fs, s, i + 1 == files.size(), show_budget, verbose, out);
    } catch (const storage_error& e) {
      out.refused(e);
    }
    log.records += s.terms.size();
    log.segments.push_back(std::move(s));
  }
  for (auto k = refusals_before; k < out.problems.size(); ++k)
    if (out.problems[k].sev == severity::refused)
      return log; // whatever follows would be guesswork
  // Segments must form one contiguous log (file_log_store::load).
  const auto& segs = log.segments;
  for (size_t i = 1; i < segs.size(); ++i) {
    auto expected = segs[i - 1].first + segs[i - 1].terms.size();
    if (segs[i].first != expected) {
      out.refused(segs[i].path, 0,
                  "gap in the log: expected a segment starting at "
                    + std::to_string(expected) + ": refused on open");
      return log;
    }
  }
  auto base = log.base.value_or(log_id{});
  log.last = base;
  if (!segs.empty()) {
    const auto& tail = segs.back();
    index_t last_index = tail.first + tail.terms.size() - 1;
    if (tail.terms.empty())
      last_index = tail.first - 1;
    if (last_index > base.index) {
      if (segs.front().first > base.index + 1) {
        out.refused(segs.front().path, 0,
                    "log entries missing between the base "
                      + std::to_string(base.index)
                      + " and the first segment: refused on open");
        return log;
      }
      log.last = {log.term_of(last_index), last_index};
      if (base.index > 0 && base.index >= segs.front().first
          && log.term_of(base.index) != base.term) {
        out.refused(base_path, 0,
                    "log base term " + std::to_string(base.term)
                      + " disagrees with the log's term "
                      + std::to_string(log.term_of(base.index)) + " at index "
                      + std::to_string(base.index) + ": refused on open");
        return log;
      }
    }
  }
  log.usable = true;
  return log;
}

// -- snapshots ----------------------------------------------------------------

struct snapshot_info {
  bool present = false;
  std::optional<snapshot_meta> latest;
  std::optional<std::pair<uint64_t, uint64_t>> partial; // id, bytes
};

uint64_t file_size(file_system& fs, const std::string& path) {
  auto f = fs.open(path, false);
  uint64_t size = 0;
  try {
    size = fs.size(f);
  } catch (...) {
    fs.close(f);
    throw;
  }
  fs.close(f);
  return size;
}

/// As file_snapshot_store's constructor: every .meta must decode and match
/// its .snap's size; the newest partial is kept for resuming.
snapshot_info scan_snapshots(file_system& fs, const std::string& dir,
                             findings& out) {
  snapshot_info info;
  if (!fs.exists(dir)) {
    out.notes.push_back(dir
                        + " is missing (opening creates an empty snapshot "
                          "directory)");
    return info;
  }
  info.present = true;
  std::vector<snapshot_meta> complete;
  uint64_t newest_partial = 0;
  std::vector<uint64_t> partials;
  for (const auto& name : fs.list(dir)) {
    auto path = dir + "/" + name;
    auto dot = name.find('.');
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      out.notes.push_back(path
                          + ": leftover of an interrupted metadata write "
                            "(ignored on open)");
      continue;
    }
    if (dot == std::string::npos) {
      out.notes.push_back(path + ": not a snapshot file (ignored)");
      continue;
    }
    auto ext = name.substr(dot);
    uint64_t id = std::strtoull(name.substr(0, dot).c_str(), nullptr, 10);
    try {
      if (ext == ".meta") {
        snapshot_meta m;
        if (!decode_snapshot_meta(read_small(fs, path), m)) {
          out.refused(path, 0, "corrupt snapshot metadata: refused on open");
          continue;
        }
        if (m.id != id) {
          out.refused(path, 0,
                      "snapshot metadata names id " + std::to_string(m.id)
                        + ": refused on open");
          continue;
        }
        auto data = dir + "/" + std::to_string(id) + ".snap";
        if (!fs.exists(data)) {
          out.notes.push_back(path
                              + ": metadata without data (an interrupted "
                                "finish; ignored on open)");
          continue;
        }
        auto size = file_size(fs, data);
        if (size != m.size) {
          out.refused(data, 0,
                      "snapshot data has " + std::to_string(size)
                        + " bytes, its metadata says " + std::to_string(m.size)
                        + ": refused on open");
          continue;
        }
        complete.push_back(std::move(m));
      } else if (ext == ".partial") {
        partials.push_back(id);
        newest_partial = std::max(newest_partial, id);
      } else if (ext == ".snap") {
        if (!fs.exists(dir + "/" + std::to_string(id) + ".meta"))
          out.notes.push_back(path + ": data without metadata (ignored)");
      } else {
        out.notes.push_back(path + ": not a snapshot file (ignored)");
      }
    } catch (const storage_error& e) {
      out.refused(e);
    }
  }
  for (auto& m : complete)
    if (!info.latest
        || m.last_included.index > info.latest->last_included.index)
      info.latest = m;
  if (newest_partial != 0) {
    auto path = dir + "/" + std::to_string(newest_partial) + ".partial";
    try {
      info.partial = {newest_partial, file_size(fs, path)};
    } catch (const storage_error& e) {
      out.refused(e);
    }
  }
  for (auto id : partials)
    if (id != newest_partial)
      out.notes.push_back(dir + "/" + std::to_string(id)
                          + ".partial: older partial snapshot (ignored)");
  for (auto& m : complete)
    if (info.latest && m.id != info.latest->id)
      out.notes.push_back(dir + "/" + std::to_string(m.id)
                          + ".snap: older complete snapshot (ignored)");
  return info;
}

// -- the whole directory ------------------------------------------------------

void usage(FILE* to) {
  std::fputs(
    "usage: raft-data [--verbose] [--entries N] DIR\n"
    "Prints what the data directory DIR of a raft-actor node holds and\n"
    "verifies every checksum, without modifying anything.\n"
    "  --verbose    one line per log record (index, term, kind, payload\n"
    "               bytes, leader time)\n"
    "  --entries N  with --verbose, show at most N records (default 100,\n"
    "               0 for all)\n"
    "exit status: 0 clean, 1 torn tail only (repaired on open),\n"
    "             2 corruption or unreadable, 64 usage error\n",
    to);
}

int inspect(const std::string& dir, bool verbose, uint64_t max_entries) {
  auto& fs = *read_only_file_system();
  findings out;
  if (!is_directory(dir)) {
    std::fprintf(stderr, "raft-data: %s: %s\n", dir.c_str(),
                 fs.exists(dir) ? "not a directory"
                                : "no such directory (nothing to inspect)");
    return exit_corrupt;
  }
  std::vector<std::string> top;
  try {
    top = fs.list(dir);
  } catch (const storage_error& e) {
    std::fprintf(stderr, "raft-data: %s\n", e.what());
    return exit_corrupt;
  }
  std::printf("data directory %s\n", dir.c_str());
  if (top.empty()) {
    std::puts("  empty: no node has used it yet (opening initialises it)");
    std::puts("OK: 0 entries in 0 segments, checksums verified");
    return exit_clean;
  }

  // Identity, then hard state, as data_dir::open reads them.
  bool has_identity = fs.exists(dir + "/identity");
  if (!has_identity) {
    bool interrupted_init
      = std::all_of(top.begin(), top.end(), [](const std::string& n) {
          return n == "hard_state" || n == "hard_state.tmp"
                 || n == "identity.tmp";
        });
    out.refused(
      dir, -1,
      std::string("directory is not empty but has no identity file")
        + (interrupted_init ? " (an initialisation was interrupted)" : "")
        + ": refused on open");
    std::puts("identity     missing");
  } else {
    try {
      auto who = read_identity(fs, dir);
      std::printf("identity     node %" PRIu64 ", cluster %" PRIu64
                  ", format version %" PRIu32 "\n",
                  who.node, who.cluster, disk::format_version);
    } catch (const storage_error& e) {
      out.refused(e);
      std::puts("identity     unreadable");
    }
  }
  auto hard_path = dir + "/hard_state";
  if (has_identity || fs.exists(hard_path)) {
    try {
      file_stable_store stable(read_only_file_system(), hard_path, false);
      auto hs = stable.load();
      std::printf(
        "hard state   term %" PRIu64 ", voted_for %s\n", hs.current_term,
        hs.voted_for == no_node ? "nobody"
                                : std::to_string(hs.voted_for).c_str());
    } catch (const storage_error& e) {
      out.refused(e);
      std::puts("hard state   unreadable");
    }
  }
  for (const auto& name : top) {
    if (name == "identity" || name == "hard_state" || name == "log"
        || name == "snapshots")
      continue;
    auto ext = name.size() > 4 ? name.substr(name.size() - 4) : "";
    out.notes.push_back(dir + "/" + name
                        + (ext == ".tmp" ? ": leftover of an interrupted "
                                           "update (ignored on open)"
                                         : ": unexpected (ignored on open)"));
  }

  // A "log" or "snapshots" that cannot be listed (say, a plain file) makes
  // opening throw as well.
  log_info log;
  try {
    log = scan_log(fs, dir + "/log", verbose,
                   max_entries == 0 ? UINT64_MAX : max_entries, out);
  } catch (const storage_error& e) {
    out.refused(e);
  }
  snapshot_info snaps;
  try {
    snaps = scan_snapshots(fs, dir + "/snapshots", out);
  } catch (const storage_error& e) {
    out.refused(e);
  }

  // The log as data_dir::open would see it.
  auto base = log.base.value_or(log_id{});
  std::printf("log base     index %" PRIu64 ", term %" PRIu64 "%s\n",
              base.index, base.term, log.base ? "" : " (no base file)");
  if (log.usable) {
    if (log.last.index > base.index)
      std::printf("log          entries %" PRIu64 "..%" PRIu64 " (%" PRIu64
                  " live), last term %" PRIu64 "\n",
                  base.index + 1, log.last.index, log.last.index - base.index,
                  log.last.term);
    else
      std::puts("log          no live entries");
  } else {
    std::puts("log          unusable (see problems)");
  }
  std::printf("segments     %zu in %s/log\n", log.segments.size(), dir.c_str());
  for (const auto& s : log.segments) {
    std::printf("  %s  ", s.name.c_str());
    if (s.terms.empty())
      std::printf("first %" PRIu64 "  (no valid records)", s.first);
    else
      std::printf("first %" PRIu64 "  last %" PRIu64, s.first,
                  s.first + s.terms.size() - 1);
    std::printf("  records %zu  bytes %" PRIu64, s.terms.size(), s.bytes);
    if (!s.terms.empty())
      std::printf("  terms %" PRIu64 "..%" PRIu64, s.terms.front(),
                  s.terms.back());
    if (s.header_ok && log.base && !s.terms.empty()
        && s.first + s.terms.size() - 1 <= base.index)
      std::printf("  (compacted)");
    std::printf("\n");
    for (const auto& r : s.shown)
      std::printf("    index %" PRIu64 "  term %" PRIu64
                  "  %-10s  payload %zu B  leader time %s\n",
                  r.index, r.term, kind_name(r.kind).c_str(), r.payload,
                  format_time(r.leader_time_ms).c_str());
  }
  if (verbose) {
    uint64_t hidden = 0;
    for (const auto& s : log.segments)
      hidden += s.hidden;
    if (hidden > 0)
      std::printf("    ... %" PRIu64 " more records not shown (--entries)\n",
                  hidden);
  }

  if (snaps.latest) {
    const auto& m = *snaps.latest;
    std::printf("snapshot     id %" PRIu64 ", last_included index %" PRIu64
                " term %" PRIu64 ", %" PRIu64
                " bytes, framework state %zu bytes\n",
                m.id, m.last_included.index, m.last_included.term, m.size,
                m.framework_state.size());
    std::printf("             voters %s, learners %s",
                members(m.config.voters).c_str(),
                members(m.config.learners).c_str());
    if (m.config.joint)
      std::printf(", joint with old voters %s",
                  members(m.config.old_voters).c_str());
    std::printf("\n");
    std::puts("             (snapshot data carries no checksum of its own; "
              "its size was checked)");
  } else if (snaps.present) {
    std::puts("snapshot     none");
  }
  if (snaps.partial)
    std::printf("partial      snapshot %" PRIu64 ", %" PRIu64
                " bytes written (kept for resuming)\n",
                snaps.partial->first, snaps.partial->second);

  // data_dir::open: a log that does not reach the latest snapshot is replaced
  // by it (§7), one whose base is beyond it is refused.
  if (snaps.latest && log.usable && !out.any_refused()) {
    auto last = snaps.latest->last_included;
    bool holds = false;
    if (last.index > base.index && last.index <= log.last.index)
      holds = log.term_of(last.index) == last.term;
    else if (last == base)
      holds = true;
    auto snap_path
      = dir + "/snapshots/" + std::to_string(snaps.latest->id) + ".meta";
    if (!holds && base.index <= last.index)
      out.repaired(snap_path, -1,
                   "the log does not hold the snapshot's last entry "
                     + std::to_string(last.index)
                     + ": the log would be replaced by the snapshot on open");
    else if (!holds)
      out.refused(dir + "/log/base", 0,
                  "log base " + std::to_string(base.index)
                    + " is beyond the latest snapshot's last entry "
                    + std::to_string(last.index) + ": refused on open");
  }

  for (const auto& n : out.notes)
    std::printf("note: %s\n", n.c_str());
  if (out.problems.empty()) {
    std::printf("OK: %" PRIu64 " entries in %zu segments, checksums verified\n",
                log.records, log.segments.size());
    return exit_clean;
  }
  for (const auto& p : out.problems) {
    const char* tag = p.sev == severity::refused ? "CORRUPT" : "TORN";
    if (p.offset >= 0)
      std::printf("%s: %s at offset %" PRId64 ": %s\n", tag, p.path.c_str(),
                  p.offset, p.what.c_str());
    else
      std::printf("%s: %s: %s\n", tag, p.path.c_str(), p.what.c_str());
  }
  auto refused = static_cast<size_t>(
    std::count_if(out.problems.begin(), out.problems.end(),
                  [](const problem& p) { return p.sev == severity::refused; }));
  if (refused > 0) {
    std::printf("FAILED: %zu problem(s), %zu refused on open; %" PRIu64
                " entries in %zu segments checked\n",
                out.problems.size(), refused, log.records, log.segments.size());
    return exit_corrupt;
  }
  std::printf("REPAIRABLE: %zu problem(s), all repaired on open; %" PRIu64
              " entries in %zu segments, checksums verified\n",
              out.problems.size(), log.records, log.segments.size());
  return exit_repairable;
}

bool parse_u64(const char* s, uint64_t& out) {
  if (!s || *s < '0' || *s > '9')
    return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(s, &end, 10);
  return errno == 0 && end && *end == '\0';
}

} // namespace

int main(int argc, char** argv) {
  bool verbose = false;
  uint64_t max_entries = 100;
  std::string dir;
  bool have_dir = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else if (a == "--entries") {
      if (i + 1 >= argc || !parse_u64(argv[i + 1], max_entries)) {
        std::fprintf(stderr, "raft-data: --entries needs a number\n");
        usage(stderr);
        return exit_usage;
      }
      ++i;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return exit_clean;
    } else if (a.size() > 1 && a[0] == '-' && a != "--") {
      std::fprintf(stderr, "raft-data: unknown option '%s'\n", a.c_str());
      usage(stderr);
      return exit_usage;
    } else {
      if (a == "--") {
        if (++i >= argc)
          break;
        a = argv[i];
      }
      if (have_dir) {
        std::fprintf(stderr, "raft-data: more than one directory given\n");
        usage(stderr);
        return exit_usage;
      }
      dir = a;
      have_dir = true;
    }
  }
  if (!have_dir || dir.empty()) {
    std::fprintf(stderr, "raft-data: no directory given\n");
    usage(stderr);
    return exit_usage;
  }
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  try {
    auto rc = inspect(dir, verbose, max_entries);
    std::fflush(stdout);
    return rc;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "raft-data: error: %s\n", e.what());
    return exit_corrupt;
  }
}
