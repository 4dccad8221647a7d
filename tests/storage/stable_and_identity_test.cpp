// The data directory's small files: identity, hard state and snapshot
// metadata.
//
// The contract (issue 4): every data directory records its node id, cluster
// id and format version; opening it with another node id or cluster id, or an
// unknown format version, is refused with a clear error. A missing or corrupt
// stable-state file is an error, not a reset to term 0. Snapshots: a damaged
// .meta or a .snap of the wrong size is refused; a partial snapshot survives
// reopening so that a transfer can resume.
#include "tests/storage/storage_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

constexpr node_id me = 3;
constexpr uint64_t cluster = 77;
constexpr char identity_magic[9] = "RAFTDIR1"; // as in file_store.cpp

/// A data directory with a non-trivial hard state, a few log entries and one
/// complete snapshot; and the node's view of it.
struct populated_dir {
  temp_dir root;
  std::string path = root / "node";
  std::shared_ptr<file_system> fs = posix_file_system();
  hard_state saved{5, 2};
  std::vector<uint8_t> snap_data{1, 2, 3, 4, 5, 6, 7};

  populated_dir() {
    auto d = data_dir::open(fs, path, me, cluster);
    REQUIRE(d.created);
    d.stable->save(saved);
    d.log->append(make_entries(5, 1, 6));
    d.log->sync();
    d.snapshots->begin(11);
    d.snapshots->write(11, 0, {1, 2, 3});
    d.snapshots->write(11, 3, {4, 5, 6, 7});
    snapshot_meta m;
    m.last_included = {5, 4};
    m.config.voters = {{3, "a:1"}, {4, "b:1"}};
    m.framework_state = {9, 9};
    d.snapshots->finish(11, m);
  }

  std::string file(const std::string& name) const { return path + "/" + name; }

  /// Opening must be refused with storage_error; returns it.
  storage_error refused(node_id node = me, uint64_t c = cluster) const {
    try {
      auto d = data_dir::open(fs, path, node, c);
      FAIL("opened, with hard state term " << d.stable->load().current_term);
    } catch (const storage_error& e) {
      return e;
    }
    throw std::logic_error("unreachable");
  }

  /// Opening must succeed and find everything populated_dir wrote.
  void opens_intact() const {
    auto d = data_dir::open(fs, path, me, cluster);
    CHECK_FALSE(d.created);
    CHECK(d.stable->load() == saved);
    CHECK(d.log->last_id() == log_id{5, 6});
    REQUIRE(d.snapshots->latest());
    CHECK(d.snapshots->latest()->id == 11);
    CHECK(d.snapshots->read(11, 0, 100) == snap_data);
  }
};

/// Identity file bytes for the given fields (valid checksum).
std::vector<uint8_t> identity_bytes(uint32_t version, node_id node,
                                    uint64_t c) {
  std::vector<uint8_t> fields;
  disk::put<uint32_t>(fields, version);
  disk::put<uint64_t>(fields, node);
  disk::put<uint64_t>(fields, c);
  return disk::seal(identity_magic, fields);
}

} // namespace

TEST_CASE("data dir: a populated directory reopens intact") {
  populated_dir d;
  d.opens_intact();
  d.opens_intact(); // opening changed nothing
  auto id = read_identity(*d.fs, d.path);
  CHECK(id.node == me);
  CHECK(id.cluster == cluster);
  // The identity file is exactly what the format describes.
  CHECK(file_bytes(d.file("identity"))
        == identity_bytes(disk::format_version, me, cluster));
}

TEST_CASE("hard state: missing after creation is refused, not term 0") {
  populated_dir d;
  std::filesystem::remove(d.file("hard_state"));
  auto e = d.refused();
  CHECK(e.path() == d.file("hard_state"));
  CHECK(contains(e.what(), d.file("hard_state")));
  CHECK_FALSE(std::filesystem::exists(d.file("hard_state"))); // not recreated
  // The store on its own agrees.
  CHECK_THROWS_AS(file_stable_store(d.fs, d.file("hard_state"), false),
                  storage_error);
}

TEST_CASE("hard state: every flipped bit is refused and left as found") {
  populated_dir d;
  auto hs = d.file("hard_state");
  auto pristine = file_bytes(hs);
  REQUIRE(pristine.size() == 28); // magic, term, vote, crc
  for (uint64_t byte = 0; byte < pristine.size(); ++byte)
    for (int bit = 0; bit < 8; ++bit) {
      CAPTURE(byte);
      CAPTURE(bit);
      flip_bit_in_place(hs, byte, bit);
      auto damaged = file_bytes(hs);
      auto e = d.refused();
      CHECK(e.path() == hs);
      CHECK(e.offset() == 0);
      CHECK(contains(e.what(), hs));
      CHECK(file_bytes(hs) == damaged); // never reset to term 0
      set_file_bytes(hs, pristine);
    }
  SUBCASE("a whole byte changed") {
    for (uint64_t byte = 0; byte < pristine.size(); ++byte) {
      CAPTURE(byte);
      auto b = pristine;
      b[byte] = static_cast<uint8_t>(~b[byte]);
      set_file_bytes(hs, b);
      CHECK(d.refused().path() == hs);
    }
  }
  set_file_bytes(hs, pristine);
  d.opens_intact();
}

TEST_CASE("hard state: every truncation (and an extension) is refused") {
  populated_dir d;
  auto hs = d.file("hard_state");
  auto pristine = file_bytes(hs);
  for (size_t n = 0; n < pristine.size(); ++n) {
    CAPTURE(n);
    set_file_bytes(hs, {pristine.begin(),
                        pristine.begin() + static_cast<std::ptrdiff_t>(n)});
    CHECK(d.refused().path() == hs);
  }
  auto longer = pristine;
  longer.push_back(0);
  set_file_bytes(hs, longer);
  CHECK(d.refused().path() == hs);
  set_file_bytes(hs, pristine);
  d.opens_intact();
}

TEST_CASE("hard state: a stale temp file from a crashed save is ignored") {
  populated_dir d;
  set_file_bytes(d.file("hard_state.tmp"),
                 std::vector<uint8_t>(100, static_cast<uint8_t>(0xAB)));
  set_file_bytes(d.file("identity.tmp"), {1, 2, 3});
  d.opens_intact();
  {
    auto dd = data_dir::open(d.fs, d.path, me, cluster);
    dd.stable->save({6, 4}); // reuses (truncates) the stale temp file
  }
  auto dd = data_dir::open(d.fs, d.path, me, cluster);
  CHECK(dd.stable->load() == hard_state{6, 4});
  CHECK_FALSE(std::filesystem::exists(d.file("hard_state.tmp")));
}

TEST_CASE("identity: another node or cluster is refused naming both ids") {
  populated_dir d;
  {
    auto e = d.refused(4, cluster);
    CHECK(e.path() == d.file("identity"));
    CHECK(contains(e.what(), "node 3"));
    CHECK(contains(e.what(), "node 4"));
  }
  {
    auto e = d.refused(me, 1234);
    CHECK(e.path() == d.file("identity"));
    CHECK(contains(e.what(), "77"));
    CHECK(contains(e.what(), "1234"));
  }
  {
    auto e = d.refused(9, 9);
    CHECK(contains(e.what(), d.file("identity")));
  }
  // Refusing did not touch the directory.
  d.opens_intact();
}

TEST_CASE("identity: an unknown format version is refused naming it") {
  populated_dir d;
  auto id = d.file("identity");
  for (uint32_t version : {0u, disk::format_version + 1, 0xFFFFFFFFu}) {
    CAPTURE(version);
    set_file_bytes(id, identity_bytes(version, me, cluster));
    auto e = d.refused();
    CHECK(e.path() == id);
    CHECK(contains(e.what(), "version " + std::to_string(version)));
    CHECK(contains(e.what(), id));
    CHECK_THROWS_AS(read_identity(*d.fs, d.path), storage_error);
  }
  set_file_bytes(id, identity_bytes(disk::format_version, me, cluster));
  d.opens_intact();
}

TEST_CASE("identity: damaged, missing or wrongly sized identity is refused") {
  populated_dir d;
  auto id = d.file("identity");
  auto pristine = file_bytes(id);
  for (uint64_t byte = 0; byte < pristine.size(); ++byte)
    for (int bit = 0; bit < 8; ++bit) {
      CAPTURE(byte);
      CAPTURE(bit);
      flip_bit_in_place(id, byte, bit);
      CHECK(d.refused().path() == id);
      flip_bit_in_place(id, byte, bit);
    }
  // A validly sealed file with an extra field is not an identity file.
  std::vector<uint8_t> fields;
  disk::put<uint32_t>(fields, disk::format_version);
  disk::put<uint64_t>(fields, me);
  disk::put<uint64_t>(fields, cluster);
  disk::put<uint8_t>(fields, 0);
  set_file_bytes(id, disk::seal(identity_magic, fields));
  CHECK(d.refused().path() == id);
  // Missing identity in a directory with data: whose data is it?
  std::filesystem::remove(id);
  auto e = d.refused();
  CHECK(e.path() == d.path);
  CHECK(contains(e.what(), d.path));
  CHECK_FALSE(std::filesystem::exists(id)); // not silently adopted
  set_file_bytes(id, pristine);
  d.opens_intact();
}

TEST_CASE("identity: a non-empty directory without identity is refused") {
  temp_dir root;
  auto path = root / "node";
  std::filesystem::create_directories(path);
  set_file_bytes(path + "/unrelated", {1});
  auto err = catch_storage_error(
    [&] { data_dir::open(posix_file_system(), path, me, cluster); });
  REQUIRE(err);
  CHECK(err->path() == path);
  CHECK_FALSE(std::filesystem::exists(path + "/identity"));
  CHECK_FALSE(std::filesystem::exists(path + "/hard_state"));
  // An empty directory is adopted.
  std::filesystem::remove(path + "/unrelated");
  auto d = data_dir::open(posix_file_system(), path, me, cluster);
  CHECK(d.created);
  CHECK(d.stable->load() == hard_state{});
}

TEST_CASE("snapshot: every flipped bit of the data is refused naming the "
          "file") {
  populated_dir d;
  auto snap = d.file("snapshots/11.snap");
  auto pristine = file_bytes(snap);
  for (uint64_t byte = 0; byte < pristine.size(); ++byte)
    for (int bit = 0; bit < 8; ++bit) {
      CAPTURE(byte);
      CAPTURE(bit);
      flip_bit_in_place(snap, byte, bit);
      auto e = d.refused();
      CHECK(e.path() == snap);
      CHECK(contains(e.what(), snap));
      flip_bit_in_place(snap, byte, bit);
    }
  d.opens_intact();
}

TEST_CASE("identity: a crash while creating (hard state written, identity "
          "not yet) leaves a directory that is created afresh") {
  for (auto leftovers : std::vector<std::vector<std::string>>{
         {"hard_state"}, {"hard_state.tmp"}, {"hard_state", "identity.tmp"}}) {
    temp_dir root;
    auto path = root / "node";
    {
      auto d = data_dir::open(posix_file_system(), path, me, cluster);
      d.stable->save({3, 1});
    }
    // Keep only what a crash during creation could have left.
    for (const auto& e : std::filesystem::directory_iterator(path)) {
      auto name = e.path().filename().string();
      if (std::find(leftovers.begin(), leftovers.end(), name)
          == leftovers.end())
        std::filesystem::remove_all(e.path());
    }
    if (std::find(leftovers.begin(), leftovers.end(), "hard_state.tmp")
        != leftovers.end())
      set_file_bytes(path + "/hard_state.tmp", {0xEE});
    if (std::find(leftovers.begin(), leftovers.end(), "identity.tmp")
        != leftovers.end())
      set_file_bytes(path + "/identity.tmp", {0xEE, 0xEE});
    auto d = data_dir::open(posix_file_system(), path, me, cluster);
    CHECK(d.created);
    // Before the identity existed nothing was acknowledged: term 0.
    CHECK(d.stable->load() == hard_state{});
    CHECK(read_identity(*posix_file_system(), path).node == me);
  }
}

TEST_CASE("snapshot: damaged metadata is refused") {
  populated_dir d;
  auto meta = d.file("snapshots/11.meta");
  auto pristine = file_bytes(meta);
  for (uint64_t byte = 0; byte < pristine.size(); ++byte) {
    CAPTURE(byte);
    int bit = static_cast<int>(byte % 8);
    flip_bit_in_place(meta, byte, bit);
    auto e = d.refused();
    CHECK(e.path() == meta);
    CHECK(contains(e.what(), meta));
    flip_bit_in_place(meta, byte, bit);
  }
  for (size_t n :
       {size_t{0}, size_t{4}, pristine.size() / 2, pristine.size() - 1}) {
    CAPTURE(n);
    set_file_bytes(meta, {pristine.begin(),
                          pristine.begin() + static_cast<std::ptrdiff_t>(n)});
    CHECK(d.refused().path() == meta);
  }
  // Valid metadata of another id under this name.
  snapshot_meta other;
  other.id = 12;
  set_file_bytes(meta, encode_snapshot_meta(other));
  CHECK(d.refused().path() == meta);
  set_file_bytes(meta, pristine);
  d.opens_intact();
}

TEST_CASE("snapshot: data of another size than its metadata is refused") {
  populated_dir d;
  auto snap = d.file("snapshots/11.snap");
  auto pristine = file_bytes(snap);
  for (size_t n = 0; n < pristine.size(); ++n) {
    CAPTURE(n);
    cut_file(snap, n);
    auto e = d.refused();
    CHECK(e.path() == snap);
    CHECK(contains(e.what(), snap));
    CHECK(contains(e.what(), std::to_string(n)));
    set_file_bytes(snap, pristine);
  }
  append_zeros(snap, 1);
  CHECK(d.refused().path() == snap);
  set_file_bytes(snap, pristine);
  d.opens_intact();
}

TEST_CASE("snapshot: a partial snapshot is resumed after reopening") {
  populated_dir d;
  {
    auto dd = data_dir::open(d.fs, d.path, me, cluster);
    dd.snapshots->begin(20);
    dd.snapshots->write(20, 0, {10, 11, 12});
    dd.snapshots->write(20, 3, {13});
    CHECK(dd.snapshots->partial_size(20) == 4);
  }
  snapshot_meta m;
  m.last_included = {5, 6};
  {
    auto dd = data_dir::open(d.fs, d.path, me, cluster);
    CHECK(dd.snapshots->partial_size(20) == 4);
    CHECK(dd.snapshots->partial_size(11) == 0);
    CHECK(dd.snapshots->latest()->id == 11); // still the latest complete one
    CHECK_THROWS_AS(dd.snapshots->write(20, 3, {99}), std::invalid_argument);
    dd.snapshots->write(20, 4, {14, 15});
    auto stored = dd.snapshots->finish(20, m);
    CHECK(stored.size == 6);
    CHECK(stored.id == 20);
  }
  auto dd = data_dir::open(d.fs, d.path, me, cluster);
  REQUIRE(dd.snapshots->latest());
  CHECK(dd.snapshots->latest()->id == 20);
  CHECK(dd.snapshots->latest()->last_included == log_id{5, 6});
  CHECK(dd.snapshots->read(20, 0, 100)
        == std::vector<uint8_t>{10, 11, 12, 13, 14, 15});
  CHECK(dd.snapshots->partial_size(20) == 0);
  // The older snapshot is gone.
  CHECK_FALSE(std::filesystem::exists(d.file("snapshots/11.snap")));
  CHECK_FALSE(std::filesystem::exists(d.file("snapshots/11.meta")));
}

TEST_CASE("snapshot: finishing an older snapshot keeps the newer one") {
  populated_dir d;
  {
    auto dd = data_dir::open(d.fs, d.path, me, cluster);
    dd.snapshots->begin(8);
    dd.snapshots->write(8, 0, {42, 43});
    snapshot_meta older;
    older.last_included = {5, 2}; // before snapshot 11's (5,4)
    auto stored = dd.snapshots->finish(8, older);
    CHECK(stored.id == 8);
    CHECK(stored.size == 2);
    REQUIRE(dd.snapshots->latest());
    CHECK(dd.snapshots->latest()->id == 11);
    CHECK(dd.snapshots->read(11, 0, 100) == d.snap_data);
    CHECK_THROWS_AS(dd.snapshots->read(8, 0, 1), std::invalid_argument);
    CHECK(dd.snapshots->partial_size(8) == 0);
  }
  d.opens_intact();
  CHECK_FALSE(std::filesystem::exists(d.file("snapshots/8.snap")));
  CHECK_FALSE(std::filesystem::exists(d.file("snapshots/8.meta")));
  CHECK_FALSE(std::filesystem::exists(d.file("snapshots/8.partial")));
}

TEST_CASE("snapshot: an interrupted finish (metadata written, data not yet "
          "renamed) leaves the old snapshot and a resumable partial") {
  populated_dir d;
  snapshot_meta m;
  m.id = 30;
  m.last_included = {5, 6};
  m.size = 3;
  set_file_bytes(d.file("snapshots/30.partial"), {7, 8, 9});
  set_file_bytes(d.file("snapshots/30.meta"), encode_snapshot_meta(m));
  auto dd = data_dir::open(d.fs, d.path, me, cluster);
  REQUIRE(dd.snapshots->latest());
  CHECK(dd.snapshots->latest()->id == 11);
  CHECK(dd.snapshots->partial_size(30) == 3);
  dd.snapshots->finish(30, m);
  CHECK(dd.snapshots->latest()->id == 30);
  CHECK(dd.snapshots->read(30, 0, 10) == std::vector<uint8_t>{7, 8, 9});
}

// Regression: finishing a snapshot whose id equals the latest one's used to
// rename <id>.partial over <id>.snap and then delete "the old snapshot" by
// id, i.e. the data just written. Reusing the latest id is now refused up
// front, and the latest snapshot stays intact.
TEST_CASE("snapshot: reusing the latest snapshot's id is refused and the "
          "latest snapshot stays intact") {
  populated_dir d;
  {
    auto dd = data_dir::open(d.fs, d.path, me, cluster);
    auto before = dd.snapshots->latest();
    REQUIRE(before);
    CHECK_THROWS_AS(dd.snapshots->begin(before->id), std::invalid_argument);
    CHECK(dd.snapshots->latest() == before);
  }
  d.opens_intact();
}

TEST_CASE("snapshot: leftovers of interrupted writes are dropped on open, "
          "the newest partial kept") {
  populated_dir d;
  set_file_bytes(d.file("snapshots/13.partial"), {1});
  set_file_bytes(d.file("snapshots/14.partial"), {1, 2});
  set_file_bytes(d.file("snapshots/11.meta.tmp"), {1, 2, 3});
  snapshot_meta m;
  m.id = 12;
  set_file_bytes(d.file("snapshots/12.meta"), encode_snapshot_meta(m));
  {
    auto dd = data_dir::open(d.fs, d.path, me, cluster);
    CHECK(dd.snapshots->partial_size(14) == 2);
    CHECK(dd.snapshots->latest()->id == 11);
  }
  CHECK(std::filesystem::exists(d.file("snapshots/14.partial")));
  CHECK_FALSE(std::filesystem::exists(d.file("snapshots/13.partial")));
  CHECK_FALSE(std::filesystem::exists(d.file("snapshots/12.meta")));
  CHECK_FALSE(std::filesystem::exists(d.file("snapshots/11.meta.tmp")));
  d.opens_intact();
}
