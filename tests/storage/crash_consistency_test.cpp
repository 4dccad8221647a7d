// Crash consistency of the segmented log: what opening does with the bytes a
// crash (or a failing disk) leaves behind.
//
// The contract (issue 4): on open only a torn tail of the last segment — an
// incomplete final record or trailing zeroed bytes — is truncated, and the
// truncation is noted with file and offset (recovery_notes()). Any other
// damage — a complete record with a bad checksum anywhere, even the last one
// (it may already have been acknowledged), a gap between segments, a wrong
// segment header, a torn record in a segment that is not the last — makes the
// open fail with storage_error naming file and offset: never silent loss.
//
// Every damaged variant is made on a fresh copy of one pristine, synced log,
// so one variant cannot leak into the next.
#include "tests/storage/storage_fixture.hpp"

#include <doctest/doctest.h>

#include <filesystem>

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

/// A synced log of several segments of varied record sizes, and the entries
/// it holds (all[i - 1] has index i).
struct pristine_log {
  temp_dir root;
  std::string dir = root / "pristine";
  file_log_options opts;
  std::vector<log_entry> all;
  int variants = 0;

  pristine_log() {
    opts.segment_bytes = 400; // 4 to 10 records per segment
    file_log_store log(posix_file_system(), dir, opts);
    auto add = [&](std::vector<log_entry> batch) {
      log.append(batch);
      log.sync();
      all.insert(all.end(), batch.begin(), batch.end());
    };
    add(make_entries(1, 1, 12));
    add(make_entries(2, 13, 25));
    add(make_entries(2, 26, 26));
    add(make_entries(3, 27, 40));
    // Grow until the last segment holds at least 4 records, so that "the
    // last 3 records" are all in the last segment with one before them.
    for (int guard = 0; guard < 50; ++guard) {
      auto segs = segment_paths(dir);
      if (segs.size() >= 4 && layout_of(segs.back()).offsets.size() >= 4)
        break;
      auto next = static_cast<index_t>(all.size() + 1);
      add(make_entries(3, next, next));
    }
  }

  /// Paths of the pristine segments.
  std::vector<std::string> segments() const { return segment_paths(dir); }

  /// A fresh copy of the pristine log; returns its directory.
  std::string copy() {
    auto p = root / ("v" + std::to_string(variants++));
    copy_dir(dir, p);
    return p;
  }

  /// The path in copy `v` of the pristine file `pristine_path`.
  static std::string in(const std::string& v, const std::string& pristine) {
    return v + "/" + std::filesystem::path(pristine).filename().string();
  }

  /// Entries [1, last].
  std::vector<log_entry> prefix(index_t last) const {
    return {all.begin(), all.begin() + static_cast<std::ptrdiff_t>(last)};
  }
};

/// Opens `dir`, which must succeed and hold exactly entries [1, last] of
/// `p.all`. Returns the recovery notes.
std::vector<std::string>
expect_opens_with(const pristine_log& p, const std::string& dir, index_t last) {
  try {
    file_log_store log(posix_file_system(), dir, p.opts);
    CHECK(log.base() == log_id{});
    if (last == 0) {
      CHECK(log.last_id() == log_id{});
    } else {
      CHECK(log.last_id() == p.all[last - 1].id);
      if (log.last_id().index == last)
        CHECK(log.read(1, last) == p.prefix(last));
    }
    return log.recovery_notes();
  } catch (const std::exception& e) {
    FAIL_CHECK("open failed: " << std::string(e.what()));
    return {};
  }
}

/// Opens `dir`, which must throw storage_error naming `path` and `offset`
/// (never open with fewer entries).
void expect_refused(const pristine_log& p, const std::string& dir,
                    const std::string& path, int64_t offset) {
  try {
    file_log_store log(posix_file_system(), dir, p.opts);
    FAIL_CHECK("opened damaged log with last "
               << log.last_id().index << " of " << p.all.size() << ", "
               << log.recovery_notes().size() << " notes");
  } catch (const storage_error& e) {
    std::string what = e.what();
    CHECK(e.path() == path);
    CHECK(e.offset() == offset);
    CHECK(contains(what, path));
    CHECK(mentions_offset(what, static_cast<uint64_t>(offset)));
    CHECK(e.error_number() == 0); // corruption, not an I/O error
  } catch (const std::exception& e) {
    FAIL_CHECK(
      "threw something else than storage_error: " << std::string(e.what()));
  }
}

/// Flips every bit of bytes [from, to) of the pristine file `file`, one at a
/// time; every open must be refused at `offset` of that file. The flips are
/// made in place in one working copy and undone after each open (copying the
/// directory for each of thousands of variants costs tens of seconds on a
/// journalling file system); an open that modified anything is reported and
/// the working copy is made afresh, so variants stay independent.
void expect_every_flip_refused(pristine_log& p, const std::string& file,
                               uint64_t from, uint64_t to, int64_t offset) {
  auto v = p.copy();
  auto target = pristine_log::in(v, file);
  auto same_as_pristine = [&] {
    for (const auto& seg : p.segments())
      if (file_bytes(pristine_log::in(v, seg)) != file_bytes(seg))
        return false;
    return segment_paths(v).size() == p.segments().size();
  };
  for (auto byte = from; byte < to; ++byte)
    for (int bit = 0; bit < 8; ++bit) {
      CAPTURE(file);
      CAPTURE(byte);
      CAPTURE(bit);
      flip_bit_in_place(target, byte, bit);
      expect_refused(p, v, target, offset);
      flip_bit_in_place(target, byte, bit);
      if (!same_as_pristine()) {
        FAIL_CHECK("opening the damaged log modified it");
        std::filesystem::remove_all(v);
        copy_dir(p.dir, v);
      }
    }
  std::filesystem::remove_all(v);
}

} // namespace

TEST_CASE("crash: the pristine log reopens whole and without notes") {
  pristine_log p;
  REQUIRE(p.segments().size() >= 4);
  auto notes = expect_opens_with(p, p.copy(), p.all.size());
  CHECK(notes.empty());
  // The independent parser agrees with the store on what is where.
  index_t next = 1;
  for (const auto& path : p.segments()) {
    auto l = layout_of(path);
    CHECK(l.first == next);
    for (const auto& e : l.entries)
      CHECK(e == p.all.at(next++ - 1));
  }
  CHECK(next == p.all.size() + 1);
}

TEST_CASE("crash: a cut at every byte of the last 3 records keeps exactly the "
          "complete records and notes file and offset") {
  pristine_log p;
  auto last_seg = p.segments().back();
  auto l = layout_of(last_seg);
  REQUIRE(l.offsets.size() >= 4);
  auto n = l.offsets.size();
  auto file_size = l.ends.back();
  for (auto cut = l.offsets[n - 3]; cut < file_size; ++cut) {
    CAPTURE(cut);
    // Complete records before the cut form the durable prefix.
    size_t complete = 0;
    while (complete < n && l.ends[complete] <= cut)
      ++complete;
    index_t expected_last = l.first + complete - 1;
    bool on_boundary = cut == l.offsets[complete];

    auto v = p.copy();
    auto target = pristine_log::in(v, last_seg);
    cut_file(target, cut);
    auto notes = expect_opens_with(p, v, expected_last);
    // The torn record is cut away from its start.
    auto repaired = l.offsets[complete];
    if (on_boundary) {
      CHECK(notes.empty());
    } else {
      REQUIRE(notes.size() == 1);
      CHECK(contains(notes[0], target));
      CHECK(mentions_offset(notes[0], repaired));
    }
    // The repair is itself durable: the file ends after the last complete
    // record, and a second open finds nothing to repair.
    CHECK(std::filesystem::file_size(target) == repaired);
    CHECK(expect_opens_with(p, v, expected_last).empty());
    // The log goes on from there: rewrite what was lost and reopen.
    {
      file_log_store log(posix_file_system(), v, p.opts);
      std::vector<log_entry> lost(
        p.all.begin() + static_cast<std::ptrdiff_t>(expected_last),
        p.all.end());
      log.append(lost);
      log.sync();
    }
    CHECK(expect_opens_with(p, v, p.all.size()).empty());
    std::filesystem::remove_all(v);
  }
}

TEST_CASE("crash: a cut inside the last segment's header drops only that "
          "segment's (unwritten) records") {
  pristine_log p;
  auto last_seg = p.segments().back();
  auto l = layout_of(last_seg);
  for (uint64_t cut = 0; cut < disk::segment_header_size; ++cut) {
    CAPTURE(cut);
    auto v = p.copy();
    auto target = pristine_log::in(v, last_seg);
    cut_file(target, cut);
    auto notes = expect_opens_with(p, v, l.first - 1);
    REQUIRE(notes.size() == 1);
    CHECK(contains(notes[0], target));
    // A last segment without a complete header never held a synced record:
    // the file is removed, so the next open is clean.
    CHECK_FALSE(std::filesystem::exists(target));
    CHECK(expect_opens_with(p, v, l.first - 1).empty());
    std::filesystem::remove_all(v);
  }
}

TEST_CASE("crash: trailing zero bytes after the last record are truncated "
          "with a note") {
  pristine_log p;
  auto last_seg = p.segments().back();
  auto size = std::filesystem::file_size(last_seg);
  for (size_t zeros : {1, 11, 12, 13, 100, 4096}) {
    CAPTURE(zeros);
    auto v = p.copy();
    auto target = pristine_log::in(v, last_seg);
    append_zeros(target, zeros);
    auto notes = expect_opens_with(p, v, p.all.size());
    REQUIRE(notes.size() == 1);
    CHECK(contains(notes[0], target));
    CHECK(mentions_offset(notes[0], size));
    CHECK(std::filesystem::file_size(target) == size);
    std::filesystem::remove_all(v);
  }
  SUBCASE("a last segment of zeros only (created, never written)") {
    auto l = layout_of(last_seg);
    auto v = p.copy();
    auto target = pristine_log::in(v, last_seg);
    set_file_bytes(target, std::vector<uint8_t>(4096, 0));
    auto notes = expect_opens_with(p, v, l.first - 1);
    REQUIRE(notes.size() == 1);
    CHECK(contains(notes[0], target));
    CHECK_FALSE(std::filesystem::exists(target)); // removed, never written
  }
}

TEST_CASE("corruption: every flipped bit of a complete record is refused with "
          "file and offset") {
  pristine_log p;
  auto segs = p.segments();
  SUBCASE("every record of the last segment, the last one included") {
    auto l = layout_of(segs.back());
    for (size_t k = 0; k < l.offsets.size(); ++k)
      expect_every_flip_refused(p, segs.back(), l.offsets[k], l.ends[k],
                                static_cast<int64_t>(l.offsets[k]));
  }
  SUBCASE("a record in the middle of a middle segment") {
    auto mid = segs[segs.size() / 2];
    auto l = layout_of(mid);
    auto k = l.offsets.size() / 2;
    expect_every_flip_refused(p, mid, l.offsets[k], l.ends[k],
                              static_cast<int64_t>(l.offsets[k]));
  }
  SUBCASE("the first and last record of the first segment") {
    auto l = layout_of(segs.front());
    expect_every_flip_refused(p, segs.front(), l.offsets.front(),
                              l.ends.front(),
                              static_cast<int64_t>(l.offsets.front()));
    expect_every_flip_refused(p, segs.front(), l.offsets.back(), l.ends.back(),
                              static_cast<int64_t>(l.offsets.back()));
  }
  SUBCASE("every byte of every segment header") {
    for (const auto& s : segs)
      expect_every_flip_refused(p, s, 0, disk::segment_header_size, 0);
  }
}

TEST_CASE("corruption: other damage is refused, never repaired silently") {
  pristine_log p;
  auto segs = p.segments();
  auto mid = segs[segs.size() / 2];
  auto lm = layout_of(mid);
  auto last = segs.back();
  auto ll = layout_of(last);
  auto v = p.copy();

  SUBCASE("a zeroed record in a middle segment") {
    auto k = lm.offsets.size() / 2;
    auto target = pristine_log::in(v, mid);
    zero_range(target, lm.offsets[k], lm.ends[k] - lm.offsets[k]);
    expect_refused(p, v, target, static_cast<int64_t>(lm.offsets[k]));
  }
  SUBCASE("a zeroed region across two records of a middle segment") {
    auto target = pristine_log::in(v, mid);
    zero_range(target, lm.offsets[1] + 5, lm.offsets[2] - lm.offsets[1]);
    expect_refused(p, v, target, static_cast<int64_t>(lm.offsets[1]));
  }
  SUBCASE("a zeroed record in the last segment followed by intact records") {
    auto target = pristine_log::in(v, last);
    auto k = ll.offsets.size() - 2;
    zero_range(target, ll.offsets[k], ll.ends[k] - ll.offsets[k]);
    expect_refused(p, v, target, static_cast<int64_t>(ll.offsets[k]));
  }
  SUBCASE("zeros from inside the last record to the end (a complete record "
          "with a bad checksum, not a torn tail)") {
    auto target = pristine_log::in(v, last);
    auto k = ll.offsets.size() - 1;
    zero_range(target, ll.offsets[k] + disk::record_header_size + 3,
               ll.ends[k]);
    expect_refused(p, v, target, static_cast<int64_t>(ll.offsets[k]));
  }
  SUBCASE("a missing middle segment (a gap)") {
    std::filesystem::remove(pristine_log::in(v, mid));
    auto after = std::find(segs.begin(), segs.end(), mid) + 1;
    expect_refused(p, v, pristine_log::in(v, *after), 0);
  }
  SUBCASE("a missing first segment") {
    std::filesystem::remove(pristine_log::in(v, segs.front()));
    expect_refused(p, v, pristine_log::in(v, segs[1]), 0);
  }
  SUBCASE("a middle segment whose header names another first index") {
    auto target = pristine_log::in(v, mid);
    auto bytes = file_bytes(target);
    auto h = disk::segment_header(lm.first + 1);
    std::copy(h.begin(), h.end(), bytes.begin());
    set_file_bytes(target, bytes);
    expect_refused(p, v, target, 0);
  }
  SUBCASE("the last segment's header names another first index") {
    auto target = pristine_log::in(v, last);
    auto bytes = file_bytes(target);
    auto h = disk::segment_header(ll.first - 1);
    std::copy(h.begin(), h.end(), bytes.begin());
    set_file_bytes(target, bytes);
    expect_refused(p, v, target, 0);
  }
  SUBCASE("a non-last segment cut inside a record") {
    auto target = pristine_log::in(v, mid);
    auto k = lm.offsets.size() - 1;
    cut_file(target, lm.offsets[k] + 7);
    expect_refused(p, v, target, static_cast<int64_t>(lm.offsets[k]));
  }
  SUBCASE("a non-last segment cut inside its last record's header") {
    auto target = pristine_log::in(v, mid);
    auto k = lm.offsets.size() - 1;
    cut_file(target, lm.offsets[k] + 3);
    expect_refused(p, v, target, static_cast<int64_t>(lm.offsets[k]));
  }
  SUBCASE("a non-last segment cut on a record boundary (the next segment "
          "then starts after a gap)") {
    auto target = pristine_log::in(v, mid);
    cut_file(target, lm.offsets.back());
    auto after = std::find(segs.begin(), segs.end(), mid) + 1;
    expect_refused(p, v, pristine_log::in(v, *after), 0);
  }
  SUBCASE("zero bytes appended to a non-last segment") {
    auto target = pristine_log::in(v, mid);
    append_zeros(target, 64);
    expect_refused(p, v, target, static_cast<int64_t>(lm.ends.back()));
  }
  SUBCASE("a non-last segment emptied to its header") {
    auto target = pristine_log::in(v, mid);
    cut_file(target, disk::segment_header_size);
    auto after = std::find(segs.begin(), segs.end(), mid) + 1;
    expect_refused(p, v, pristine_log::in(v, *after), 0);
  }
}

TEST_CASE("corruption: a damaged log base file is refused") {
  pristine_log p;
  {
    file_log_store log(posix_file_system(), p.dir, p.opts);
    log.purge_to(p.all[14].id);
    log.sync();
  }
  auto base = p.dir + "/base";
  auto size = std::filesystem::file_size(base);
  for (uint64_t byte = 0; byte < size; ++byte) {
    CAPTURE(byte);
    auto v = p.copy();
    flip_bit(v + "/base", byte, static_cast<int>(byte % 8));
    auto err = catch_storage_error(
      [&] { file_log_store log(posix_file_system(), v, p.opts); });
    REQUIRE(err);
    CHECK(err->path() == v + "/base");
    CHECK(contains(err->what(), v + "/base"));
    std::filesystem::remove_all(v);
  }
  auto v = p.copy();
  cut_file(v + "/base", size - 1);
  CHECK(catch_storage_error(
    [&] { file_log_store log(posix_file_system(), v, p.opts); }));
}

// Regression: append() used to create the file of every new segment at
// once while records were written only at sync(), so a crash after an append
// that rolled over, before its sync, left empty segment files that made
// opening refuse the directory for good. Files are now created at sync(),
// and blank trailing segment files are removed (with a note) on open.
TEST_CASE("regression: a crash after an append that rolled over to new "
          "segments, before its sync, opens with the synced prefix") {
  temp_dir root;
  auto dir = root / "log";
  file_log_options opts;
  opts.segment_bytes = 300;
  auto synced = make_entries(1, 1, 6);
  {
    file_log_store log(posix_file_system(), dir, opts);
    log.append(synced);
    log.sync();
    log.append(make_entries(1, 7, 30)); // rolls over several times
    REQUIRE(log.segment_count() >= 3);
  } // crash: the batch was never synced
  try {
    file_log_store log(posix_file_system(), dir, opts);
    CHECK(log.last_id() == synced.back().id);
    CHECK(log.read(1, 6) == synced);
  } catch (const storage_error& e) {
    FAIL_CHECK("refused after a crash: " << std::string(e.what()));
  }
}

TEST_CASE("regression: a torn tail followed only by an empty new segment "
          "is repaired") {
  pristine_log p;
  auto segs = p.segments();
  auto prev = segs[segs.size() - 2];
  auto lp = layout_of(prev);
  auto v = p.copy();
  set_file_bytes(pristine_log::in(v, segs.back()), {}); // created, unwritten
  cut_file(pristine_log::in(v, prev), lp.offsets.back() + 9);
  auto notes = expect_opens_with(p, v, lp.first + lp.offsets.size() - 2);
  CHECK(!notes.empty());
}
