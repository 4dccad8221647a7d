#include "storage/file_store.hpp"
#include "storage/log_checks.hpp"
#include "storage/record_format.hpp"

#include <algorithm>

namespace raft_actor {

namespace {

constexpr char base_magic[9] = "RAFTBASE";

} // namespace

std::vector<uint8_t> read_file(file_system& fs, const std::string& path) {
  auto f = fs.open(path, false);
  std::vector<uint8_t> out;
  try {
    out.resize(fs.size(f));
    auto n = fs.pread(f, out.data(), out.size(), 0);
    out.resize(n);
  } catch (...) {
    fs.close(f);
    throw;
  }
  fs.close(f);
  return out;
}

void write_file_atomically(file_system& fs, const std::string& path,
                           const std::vector<uint8_t>& bytes) {
  auto tmp = path + ".tmp";
  auto f = fs.open(tmp, true);
  try {
    fs.truncate(f, 0);
    fs.pwrite(f, bytes.data(), bytes.size(), 0);
    fs.fsync(f);
  } catch (...) {
    fs.close(f);
    throw;
  }
  fs.close(f);
  fs.rename(tmp, path);
  auto slash = path.find_last_of('/');
  fs.sync_dir(slash == std::string::npos ? "." : path.substr(0, slash));
}

// -- opening and recovery -----------------------------------------------------

file_log_store::file_log_store(std::shared_ptr<file_system> fs, std::string dir,
                               file_log_options opts)
    : fs_(std::move(fs)), dir_(std::move(dir)), opts_(opts) {
  fs_->make_dirs(dir_);
  try {
    load();
  } catch (...) {
    for (auto& s : segments_)
      fs_->close(s.file);
    throw;
  }
}

file_log_store::~file_log_store() {
  for (auto& s : segments_)
    fs_->close(s.file);
}

void file_log_store::load() {
  auto base_path = dir_ + "/base";
  if (fs_->exists(base_path)) {
    auto bytes = read_file(*fs_, base_path);
    const uint8_t* p = nullptr;
    size_t n = 0;
    if (!disk::unseal(base_magic, bytes, p, n) || n != 16)
      throw storage_error("corrupt log base file", base_path, 0);
    base_ = {disk::get<uint64_t>(p), disk::get<uint64_t>(p + 8)};
  }
  std::vector<std::pair<index_t, std::string>> files;
  for (const auto& name : fs_->list(dir_)) {
    index_t first = 0;
    if (disk::parse_segment_name(name, first))
      files.emplace_back(first, name);
  }
  std::sort(files.begin(), files.end());
  // Segment files at the end that were created but never written (blank,
  // or shorter than a header) are leftovers of a crash before the first
  // sync that would have filled them; removed once every check passed.
  std::vector<std::string> leftovers;
  while (files.size() > 1) {
    auto path = dir_ + "/" + files.back().second;
    auto bytes = read_file(*fs_, path);
    bool blank = bytes.size() < disk::segment_header_size
                 || std::all_of(bytes.begin(), bytes.end(),
                                [](uint8_t b) { return b == 0; });
    if (!blank)
      break;
    leftovers.push_back(path);
    files.pop_back();
  }
  for (size_t i = 0; i < files.size(); ++i) {
    segment s;
    s.first = files[i].first;
    s.path = dir_ + "/" + files[i].second;
    s.file = fs_->open(s.path, false);
    segments_.push_back(std::move(s));
    load_segment(segments_.back(), i + 1 == files.size());
  }
  // Segments must form one contiguous log.
  for (size_t i = 1; i < segments_.size(); ++i) {
    const auto& prev = segments_[i - 1];
    auto expected = prev.first + prev.offsets.size();
    if (segments_[i].first != expected)
      throw storage_error("gap in the log: expected a segment starting at "
                            + std::to_string(expected),
                          segments_[i].path, 0);
  }
  // Entries up to the base are compacted: they may linger in old segments.
  last_ = base_;
  if (!segments_.empty()) {
    const auto& tail = segments_.back();
    index_t last_index = tail.first + tail.offsets.size() - 1;
    if (tail.offsets.empty())
      last_index = tail.first - 1;
    if (last_index > base_.index) {
      if (segments_.front().first > base_.index + 1)
        throw storage_error("log entries missing between the base "
                              + std::to_string(base_.index)
                              + " and the first segment",
                            segments_.front().path, 0);
      last_ = {term_of(last_index), last_index};
      if (base_.index > 0 && base_.index >= segments_.front().first
          && term_of(base_.index) != base_.term)
        throw storage_error("log base term disagrees with the log at index "
                              + std::to_string(base_.index),
                            base_path, 0);
    }
  }
  // Everything checks out: now drop leftovers and repair the torn tail.
  for (const auto& path : leftovers) {
    fs_->remove(path);
    notes_.push_back("removed segment file " + path
                     + " that was created but never written");
  }
  if (!leftovers.empty())
    fs_->sync_dir(dir_);
  if (repair_) {
    auto& s = segments_[repair_->segment];
    fs_->truncate(s.file, repair_->at);
    if (repair_->rewrite_header) {
      auto h = disk::segment_header(s.first);
      fs_->pwrite(s.file, h.data(), h.size(), 0);
    }
    fs_->fdatasync(s.file);
    notes_.push_back(repair_->note);
    repair_.reset();
  }
}

void file_log_store::load_segment(segment& s, bool is_last) {
  auto size = fs_->size(s.file);
  std::vector<uint8_t> bytes(size);
  bytes.resize(fs_->pread(s.file, bytes.data(), size, 0));
  auto torn = [&](uint64_t at, const char* what) {
    if (!is_last)
      throw storage_error(std::string("segment ends inside a record (") + what
                            + ") but is not the last segment",
                          s.path, static_cast<int64_t>(at));
    // Repaired only after every other check passed (see load()), so that
    // a directory we refuse is left exactly as we found it.
    repair_ = tail_repair{segments_.size() - 1, at, false,
                          "truncated torn tail (" + std::string(what) + ") of "
                            + s.path + " at offset " + std::to_string(at) + ", "
                            + std::to_string(bytes.size() - at) + " bytes"};
    bytes.resize(at);
  };
  index_t first = 0;
  if (bytes.size() < disk::segment_header_size
      || !disk::parse_segment_header(bytes.data(), first)) {
    bool blank = std::all_of(bytes.begin(), bytes.end(),
                             [](uint8_t b) { return b == 0; });
    if (is_last && (bytes.size() < disk::segment_header_size || blank)) {
      // The segment was being created when we crashed: write its header.
      torn(0, "incomplete segment header");
      repair_->rewrite_header = true;
      s.size = disk::segment_header_size;
      return;
    }
    throw storage_error("bad segment header", s.path, 0);
  }
  if (first != s.first)
    throw storage_error(
      "segment header names first index " + std::to_string(first), s.path, 0);
  size_t pos = disk::segment_header_size;
  term_t prev_term = 0;
  while (pos < bytes.size()) {
    log_entry e;
    size_t n = 0;
    std::string why;
    switch (
      disk::parse_record(bytes.data() + pos, bytes.size() - pos, e, n, why)) {
      case disk::record_status::ok: {
        auto expected = s.first + s.offsets.size();
        if (e.id.index != expected)
          throw storage_error("record holds index " + std::to_string(e.id.index)
                                + ", expected " + std::to_string(expected),
                              s.path, static_cast<int64_t>(pos));
        if (e.id.term < prev_term)
          throw storage_error("record term goes backwards", s.path,
                              static_cast<int64_t>(pos));
        prev_term = e.id.term;
        s.offsets.push_back(static_cast<uint32_t>(pos));
        s.terms.push_back(e.id.term);
        pos += n;
        break;
      }
      case disk::record_status::incomplete:
        torn(pos, "incomplete final record");
        break;
      case disk::record_status::zero_tail:
        torn(pos, "zeroed bytes");
        break;
      case disk::record_status::corrupt:
        throw storage_error("corrupt log record (" + why + ")", s.path,
                            static_cast<int64_t>(pos));
    }
  }
  s.size = bytes.size();
}

// -- queries ------------------------------------------------------------------

log_id file_log_store::base() const {
  return base_;
}

log_id file_log_store::last_id() const {
  return last_;
}

term_t file_log_store::term_of(index_t index) const {
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it)
    if (index >= it->first && index < it->first + it->offsets.size())
      return it->terms[index - it->first];
  return 0;
}

std::vector<log_entry> file_log_store::read(index_t from, index_t to) const {
  check_ok();
  if (from <= base_.index || to > last_.index || from > to + 1)
    throw std::invalid_argument("file_log_store::read: range not held");
  std::vector<log_entry> out;
  for (const auto& s : segments_) {
    if (s.offsets.empty() || s.last() < from || s.first > to)
      continue;
    auto lo = std::max(from, s.first);
    auto hi = std::min(to, s.last());
    uint64_t begin = s.offsets[lo - s.first];
    uint64_t end = hi == s.last() ? s.size + s.pending.size()
                                  : s.offsets[hi - s.first + 1];
    std::vector<uint8_t> bytes(end - begin);
    // Written part from the file, the rest from the pending buffer.
    uint64_t on_disk = begin < s.size ? std::min(end, s.size) - begin : 0;
    if (on_disk > 0
        && fs_->pread(s.file, bytes.data(), on_disk, begin) != on_disk)
      throw storage_error("log segment shorter than its index", s.path,
                          static_cast<int64_t>(begin));
    if (end > s.size) {
      auto from_pending = std::max(begin, s.size) - s.size;
      std::copy(s.pending.begin() + static_cast<std::ptrdiff_t>(from_pending),
                s.pending.begin() + static_cast<std::ptrdiff_t>(end - s.size),
                bytes.begin() + static_cast<std::ptrdiff_t>(on_disk));
    }
    size_t pos = 0;
    while (pos < bytes.size()) {
      log_entry e;
      size_t n = 0;
      std::string why;
      if (disk::parse_record(bytes.data() + pos, bytes.size() - pos, e, n, why)
          != disk::record_status::ok)
        throw storage_error("log record became unreadable ("
                              + (why.empty() ? std::string("truncated") : why)
                              + ")",
                            s.path, static_cast<int64_t>(begin + pos));
      out.push_back(std::move(e));
      pos += n;
    }
  }
  return out;
}

// -- mutations ----------------------------------------------------------------

void file_log_store::check_ok() const {
  if (failed_)
    throw storage_error("log store failed earlier (" + failure_ + ")", dir_);
}

void file_log_store::fail(const storage_error& e) {
  failed_ = true;
  failure_ = e.what();
  throw e;
}

file_log_store::segment& file_log_store::new_segment(index_t first) {
  // The file itself is created at sync(): a crash before then leaves no
  // empty segment file behind.
  segment s;
  s.first = first;
  s.path = dir_ + "/" + disk::segment_name(first);
  segments_.push_back(std::move(s));
  auto& seg = segments_.back();
  auto h = disk::segment_header(first);
  seg.pending = h; // written with the first records at sync()
  seg.size = 0;
  dir_dirty_ = true;
  return seg;
}

void file_log_store::append(const std::vector<log_entry>& entries) {
  check_ok();
  // Check the whole batch first: a rejected append changes nothing.
  check_batch_follows(last_, entries, "file_log_store::append");
  try {
    for (const auto& e : entries) {
      segment* s = segments_.empty() ? nullptr : &segments_.back();
      if (s && s->offsets.empty() && s->first != e.id.index) {
        // An empty segment that does not start here (left by a truncation
        // or compaction): replace it, or the log would have a gap.
        remove_segment_files_after(segments_.size() - 1);
        s = segments_.empty() ? nullptr : &segments_.back();
      }
      bool full = s && !s->offsets.empty()
                  && s->size + s->pending.size() >= opts_.segment_bytes;
      bool stale = s && !s->offsets.empty() && s->last() != last_.index;
      if (!s || full || stale)
        s = &new_segment(e.id.index);
      auto offset = s->size + s->pending.size();
      disk::encode_record(e, s->pending);
      s->offsets.push_back(static_cast<uint32_t>(offset));
      s->terms.push_back(e.id.term);
      last_ = e.id;
    }
  } catch (const storage_error& err) {
    fail(err);
  }
}

void file_log_store::sync() {
  check_ok();
  try {
    // Segment by segment, each made durable before the next is written, so
    // that a crash can tear only the last one.
    for (auto& s : segments_) {
      if (!s.pending.empty()) {
        if (s.file.fd < 0) {
          s.file = fs_->open(s.path, true);
          fs_->truncate(s.file, 0);
        }
        fs_->pwrite(s.file, s.pending.data(), s.pending.size(), s.size);
        s.size += s.pending.size();
        s.pending.clear();
        s.needs_sync = true;
      }
      if (s.needs_sync) {
        fs_->fdatasync(s.file);
        s.needs_sync = false;
      }
    }
    if (dir_dirty_) {
      fs_->sync_dir(dir_);
      dir_dirty_ = false;
    }
  } catch (const storage_error& err) {
    fail(err);
  }
}

void file_log_store::remove_segment_files_after(size_t keep) {
  // From the end, so that a crash leaves a contiguous prefix behind.
  while (segments_.size() > keep) {
    auto& s = segments_.back();
    fs_->close(s.file);
    fs_->remove(s.path);
    segments_.pop_back();
  }
  fs_->sync_dir(dir_);
}

void file_log_store::truncate_from(index_t from) {
  check_ok();
  if (from <= base_.index)
    throw std::invalid_argument("file_log_store::truncate_from: index "
                                + std::to_string(from) + " is compacted");
  if (from > last_.index)
    return;
  try {
    size_t keep = 0;
    while (keep < segments_.size() && segments_[keep].first < from)
      ++keep;
    // Segments starting at or after `from` go entirely; keep at least an
    // empty one to append to if the cut falls on a segment boundary.
    if (keep == 0)
      keep = 1;
    remove_segment_files_after(keep);
    auto& s = segments_.back();
    auto k = from > s.first ? static_cast<size_t>(from - s.first) : 0;
    uint64_t cut
      = k < s.offsets.size() ? s.offsets[k] : s.size + s.pending.size();
    if (k == 0)
      cut = disk::segment_header_size;
    if (cut < s.size) {
      s.pending.clear();
      fs_->truncate(s.file, cut);
      s.size = cut;
      s.needs_sync = true;
    } else {
      s.pending.resize(cut - s.size);
    }
    s.offsets.resize(std::min(k, s.offsets.size()));
    s.terms.resize(s.offsets.size());
    if (from - 1 <= base_.index)
      last_ = base_;
    else
      last_ = {term_of(from - 1), from - 1};
  } catch (const storage_error& err) {
    fail(err);
  }
}

void file_log_store::write_base(log_id id) {
  std::vector<uint8_t> fields;
  disk::put<uint64_t>(fields, id.term);
  disk::put<uint64_t>(fields, id.index);
  write_file_atomically(*fs_, dir_ + "/base", disk::seal(base_magic, fields));
}

void file_log_store::purge_to(log_id id) {
  check_ok();
  if (id.index <= base_.index)
    return;
  if (id.index > last_.index || term_of(id.index) != id.term)
    throw std::invalid_argument("file_log_store::purge_to: entry "
                                + std::to_string(id.index) + " not held");
  try {
    // The base first: a crash before the segments go leaves them ignored.
    write_base(id);
    base_ = id;
    size_t drop = 0;
    while (drop + 1 < segments_.size() && segments_[drop].last() <= id.index)
      ++drop;
    if (drop > 0) {
      for (size_t i = 0; i < drop; ++i) {
        fs_->close(segments_[i].file);
        fs_->remove(segments_[i].path);
      }
      segments_.erase(segments_.begin(),
                      segments_.begin() + static_cast<std::ptrdiff_t>(drop));
      fs_->sync_dir(dir_);
    }
  } catch (const storage_error& err) {
    fail(err);
  }
}

void file_log_store::reset(log_id base) {
  check_ok();
  try {
    // Entries first, then the base: a crash in between leaves an empty log
    // behind an old base, which opening reconciles with the snapshot.
    remove_segment_files_after(0);
    write_base(base);
    base_ = base;
    last_ = base;
  } catch (const storage_error& err) {
    fail(err);
  }
}

} // namespace raft_actor
