// Stable state, snapshots and the data directory (the log is in
// file_log_store.cpp).
#include "storage/file_store.hpp"

#include "storage/crc32c.hpp"
#include "storage/memory_store.hpp"
#include "storage/record_format.hpp"

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <sstream>

namespace boost::serialization {

template <class Archive>
void serialize(Archive& ar, raft_actor::log_id& x, unsigned) {
  ar& x.term& x.index;
}

template <class Archive>
void serialize(Archive& ar, raft_actor::membership& x, unsigned) {
  ar& x.voters& x.learners& x.joint& x.old_voters;
}

template <class Archive>
void serialize(Archive& ar, raft_actor::snapshot_meta& x, unsigned) {
  ar& x.id& x.last_included& x.config& x.framework_state& x.size& x.data_crc;
}

} // namespace boost::serialization

namespace raft_actor {

namespace {

constexpr char identity_magic[9] = "RAFTDIR1";
constexpr char hard_state_magic[9] = "RAFTHARD";
constexpr char meta_magic[9] = "RAFTSNAP";

} // namespace

// -- file_stable_store --------------------------------------------------------

file_stable_store::file_stable_store(std::shared_ptr<file_system> fs,
                                     std::string path, bool create)
    : fs_(std::move(fs)), path_(std::move(path)) {
  if (!fs_->exists(path_)) {
    if (!create)
      throw storage_error("hard state file is missing (refusing to restart "
                          "at term 0)",
                          path_);
    save(hard_state{});
    return;
  }
  auto bytes = read_file(*fs_, path_);
  const uint8_t* p = nullptr;
  size_t n = 0;
  if (!disk::unseal(hard_state_magic, bytes, p, n) || n != 16)
    throw storage_error("corrupt hard state file", path_, 0);
  state_.current_term = disk::get<uint64_t>(p);
  state_.voted_for = disk::get<uint64_t>(p + 8);
}

hard_state file_stable_store::load() const {
  if (failed_)
    throw storage_error("hard state store failed earlier", path_);
  return state_;
}

void file_stable_store::save(const hard_state& state) {
  if (failed_)
    throw storage_error("hard state store failed earlier", path_);
  std::vector<uint8_t> fields;
  disk::put<uint64_t>(fields, state.current_term);
  disk::put<uint64_t>(fields, state.voted_for);
  try {
    write_file_atomically(*fs_, path_, disk::seal(hard_state_magic, fields));
  } catch (const storage_error&) {
    failed_ = true;
    throw;
  }
  state_ = state;
}

// -- snapshot metadata --------------------------------------------------------

std::vector<uint8_t> encode_snapshot_meta(const snapshot_meta& meta) {
  std::ostringstream os;
  {
    boost::archive::binary_oarchive ar(os, boost::archive::no_header);
    ar << meta;
  }
  auto s = os.str();
  return disk::seal(meta_magic, std::vector<uint8_t>(s.begin(), s.end()));
}

bool decode_snapshot_meta(const std::vector<uint8_t>& bytes,
                          snapshot_meta& out) {
  const uint8_t* p = nullptr;
  size_t n = 0;
  if (!disk::unseal(meta_magic, bytes, p, n))
    return false;
  try {
    std::istringstream is(std::string(reinterpret_cast<const char*>(p), n));
    boost::archive::binary_iarchive ar(is, boost::archive::no_header);
    snapshot_meta m;
    ar >> m;
    out = std::move(m);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// -- file_snapshot_store ------------------------------------------------------

file_snapshot_store::file_snapshot_store(std::shared_ptr<file_system> fs,
                                         std::string dir)
    : fs_(std::move(fs)), dir_(std::move(dir)) {
  fs_->make_dirs(dir_);
  // Find the newest complete snapshot: a .meta whose .snap has its size.
  std::vector<snapshot_meta> complete;
  uint64_t newest_partial = 0;
  for (const auto& name : fs_->list(dir_)) {
    auto dot = name.find('.');
    if (dot == std::string::npos)
      continue;
    auto ext = name.substr(dot);
    uint64_t id = std::strtoull(name.substr(0, dot).c_str(), nullptr, 10);
    if (ext == ".meta") {
      snapshot_meta m;
      auto path = dir_ + "/" + name;
      if (!decode_snapshot_meta(read_file(*fs_, path), m) || m.id != id)
        throw storage_error("corrupt snapshot metadata", path, 0);
      auto data = path_of(id, ".snap");
      if (!fs_->exists(data))
        continue; // finish() was interrupted before the rename
      auto f = fs_->open(data, false);
      auto size = fs_->size(f);
      fs_->close(f);
      if (size != m.size)
        throw storage_error("snapshot data has " + std::to_string(size)
                              + " bytes, its metadata says "
                              + std::to_string(m.size),
                            data, 0);
      complete.push_back(std::move(m));
    } else if (ext == ".partial") {
      newest_partial = std::max(newest_partial, id);
    }
  }
  for (auto& m : complete)
    if (!latest_ || m.last_included.index > latest_->last_included.index)
      latest_ = m;
  // Snapshot data is checked like every other byte we trust.
  auto crc_of = [this](const std::string& path, uint64_t size) {
    auto f = fs_->open(path, false);
    uint32_t crc = 0;
    std::vector<uint8_t> buf(1 << 20);
    try {
      for (uint64_t off = 0; off < size;) {
        auto n = fs_->pread(f, buf.data(),
                            std::min<uint64_t>(buf.size(), size - off), off);
        if (n == 0)
          break;
        crc = crc32c(buf.data(), n, crc);
        off += n;
      }
    } catch (...) {
      fs_->close(f);
      throw;
    }
    fs_->close(f);
    return crc;
  };
  if (latest_) {
    auto data = path_of(latest_->id, ".snap");
    if (crc_of(data, latest_->size) != latest_->data_crc)
      throw storage_error("snapshot data checksum mismatch", data, 0);
  }
  if (newest_partial != 0) {
    auto path = path_of(newest_partial, ".partial");
    partial_id_ = newest_partial;
    partial_ = fs_->open(path, false);
    partial_size_ = fs_->size(partial_);
    partial_crc_ = crc_of(path, partial_size_);
  }
  // Everything checked: drop what interrupted writes and replaced
  // snapshots left behind.
  bool removed = false;
  for (const auto& name : fs_->list(dir_)) {
    auto dot = name.find('.');
    auto ext = dot == std::string::npos ? std::string{} : name.substr(dot);
    uint64_t id = std::strtoull(name.substr(0, dot).c_str(), nullptr, 10);
    bool keep
      = (latest_ && id == latest_->id && (ext == ".snap" || ext == ".meta"))
        || (id == partial_id_ && ext == ".partial");
    if (!keep) {
      fs_->remove(dir_ + "/" + name);
      removed = true;
    }
  }
  if (removed)
    fs_->sync_dir(dir_);
}

file_snapshot_store::~file_snapshot_store() {
  fs_->close(partial_);
  fs_->close(latest_file_);
}

std::string file_snapshot_store::path_of(uint64_t id, const char* ext) const {
  return dir_ + "/" + std::to_string(id) + ext;
}

void file_snapshot_store::check_ok() const {
  if (failed_)
    throw storage_error("snapshot store failed earlier (" + failure_ + ")",
                        dir_);
}

void file_snapshot_store::fail(const storage_error& e) {
  failed_ = true;
  failure_ = e.what();
  throw e;
}

std::optional<snapshot_meta> file_snapshot_store::latest() const {
  return latest_;
}

void file_snapshot_store::begin(uint64_t id) {
  check_ok();
  if (latest_ && latest_->id == id)
    throw std::invalid_argument("file_snapshot_store::begin: snapshot id "
                                + std::to_string(id)
                                + " is the latest one; ids must be unique");
  try {
    if (partial_.fd >= 0) {
      fs_->close(partial_);
      fs_->remove(path_of(partial_id_, ".partial"));
    }
    partial_id_ = id;
    partial_ = fs_->open(path_of(id, ".partial"), true);
    fs_->truncate(partial_, 0);
    partial_size_ = 0;
    partial_crc_ = 0;
  } catch (const storage_error& e) {
    fail(e);
  }
}

void file_snapshot_store::write(uint64_t id, uint64_t offset,
                                const std::vector<uint8_t>& data) {
  check_ok();
  if (id != partial_id_ || partial_.fd < 0 || offset != partial_size_)
    throw std::invalid_argument(
      "file_snapshot_store::write: snapshot " + std::to_string(id)
      + " is not being written at offset " + std::to_string(offset));
  try {
    fs_->pwrite(partial_, data.data(), data.size(), offset);
    fs_->fdatasync(partial_); // a chunk is acknowledged once durable
    partial_size_ += data.size();
    partial_crc_ = crc32c(data.data(), data.size(), partial_crc_);
  } catch (const storage_error& e) {
    fail(e);
  }
}

uint64_t file_snapshot_store::partial_size(uint64_t id) const {
  return id == partial_id_ ? partial_size_ : 0;
}

snapshot_meta file_snapshot_store::finish(uint64_t id, snapshot_meta meta) {
  check_ok();
  if (id != partial_id_ || partial_.fd < 0)
    throw std::invalid_argument("file_snapshot_store::finish: snapshot "
                                + std::to_string(id) + " was not begun");
  meta.id = id;
  meta.size = partial_size_;
  meta.data_crc = partial_crc_;
  try {
    fs_->fsync(partial_);
    fs_->close(partial_);
    // Metadata first, then the data's rename makes the snapshot complete.
    write_file_atomically(*fs_, path_of(id, ".meta"),
                          encode_snapshot_meta(meta));
    fs_->rename(path_of(id, ".partial"), path_of(id, ".snap"));
    fs_->sync_dir(dir_);
    partial_id_ = 0;
    partial_size_ = 0;
    if (!latest_ || meta.last_included.index > latest_->last_included.index) {
      auto old = latest_;
      latest_ = meta;
      fs_->close(latest_file_);
      if (old) {
        fs_->remove(path_of(old->id, ".snap"));
        fs_->remove(path_of(old->id, ".meta"));
        fs_->sync_dir(dir_);
      }
    } else {
      // Older than what we have (a newer one was installed meanwhile).
      fs_->remove(path_of(id, ".snap"));
      fs_->remove(path_of(id, ".meta"));
      fs_->sync_dir(dir_);
    }
  } catch (const storage_error& e) {
    fail(e);
  }
  return meta;
}

std::vector<uint8_t> file_snapshot_store::read(uint64_t id, uint64_t offset,
                                               size_t max) const {
  check_ok();
  if (!latest_ || latest_->id != id)
    throw std::invalid_argument("file_snapshot_store::read: snapshot "
                                + std::to_string(id) + " is not the latest");
  if (offset > latest_->size)
    throw std::invalid_argument("file_snapshot_store::read: offset beyond "
                                "the snapshot");
  if (latest_file_.fd < 0)
    latest_file_ = fs_->open(path_of(id, ".snap"), false);
  auto n = std::min<uint64_t>(max, latest_->size - offset);
  std::vector<uint8_t> out(n);
  if (fs_->pread(latest_file_, out.data(), n, offset) != n)
    throw storage_error("snapshot data is shorter than its metadata",
                        latest_file_.path, static_cast<int64_t>(offset));
  return out;
}

// -- data_dir -----------------------------------------------------------------

data_dir::identity read_identity(file_system& fs, const std::string& path) {
  auto file = path + "/identity";
  auto bytes = read_file(fs, file);
  const uint8_t* p = nullptr;
  size_t n = 0;
  if (!disk::unseal(identity_magic, bytes, p, n) || n != 20)
    throw storage_error("corrupt identity file", file, 0);
  auto version = disk::get<uint32_t>(p);
  if (version != disk::format_version)
    throw storage_error("data directory has format version "
                          + std::to_string(version) + ", this build reads "
                          + std::to_string(disk::format_version),
                        file, 8);
  return {disk::get<uint64_t>(p + 4), disk::get<uint64_t>(p + 12)};
}

data_dir data_dir::open(std::shared_ptr<file_system> fs,
                        const std::string& path, node_id node, uint64_t cluster,
                        file_log_options opts) {
  data_dir d;
  fs->make_dirs(path);
  auto id_file = path + "/identity";
  if (!fs->exists(id_file)) {
    // A crash during creation can leave the hard state (written first) but
    // no identity: that is still a fresh directory. Anything else is not.
    auto names = fs->list(path);
    for (const auto& name : names)
      if (name != "hard_state" && name != "hard_state.tmp"
          && name != "identity.tmp")
        throw storage_error("directory is not empty but has no identity file "
                            "(refusing to guess whose data it holds)",
                            path);
    for (const auto& name : names)
      fs->remove(path + "/" + name);
    std::vector<uint8_t> fields;
    disk::put<uint32_t>(fields, disk::format_version);
    disk::put<uint64_t>(fields, node);
    disk::put<uint64_t>(fields, cluster);
    // Hard state before identity: an identity file promises the rest.
    d.stable
      = std::make_unique<file_stable_store>(fs, path + "/hard_state", true);
    write_file_atomically(*fs, id_file, disk::seal(identity_magic, fields));
    d.created = true;
  } else {
    auto who = read_identity(*fs, path);
    if (who.node != node)
      throw storage_error("data directory belongs to node "
                            + std::to_string(who.node) + ", not node "
                            + std::to_string(node),
                          id_file);
    if (who.cluster != cluster)
      throw storage_error("data directory belongs to cluster "
                            + std::to_string(who.cluster) + ", not cluster "
                            + std::to_string(cluster),
                          id_file);
    d.stable
      = std::make_unique<file_stable_store>(fs, path + "/hard_state", false);
  }
  d.log = std::make_unique<file_log_store>(fs, path + "/log", opts);
  d.snapshots = std::make_unique<file_snapshot_store>(fs, path + "/snapshots");
  d.notes = d.log->recovery_notes();
  // A crash while installing a snapshot can leave a log that does not reach
  // it; §7: a log that does not hold the snapshot's last entry is replaced.
  if (auto snap = d.snapshots->latest()) {
    auto last = snap->last_included;
    bool holds = false;
    if (last.index > d.log->base().index
        && last.index <= d.log->last_id().index)
      holds = d.log->read(last.index, last.index).front().id == last;
    else if (last == d.log->base())
      holds = true;
    if (!holds && d.log->base().index <= last.index) {
      d.notes.push_back("log does not hold snapshot " + std::to_string(snap->id)
                        + "'s last entry " + std::to_string(last.index)
                        + ": replaced the log by the snapshot");
      d.log->reset(last);
    } else if (!holds) {
      throw storage_error("log base " + std::to_string(d.log->base().index)
                            + " is beyond the latest snapshot's last entry "
                            + std::to_string(last.index),
                          path + "/log");
    }
  }
  return d;
}

node_store_set open_node_stores(const std::optional<std::string>& dir,
                                node_id node, uint64_t cluster) {
  node_store_set out;
  if (!dir) {
    out.stable = std::make_shared<memory_stable_store>();
    out.log = std::make_shared<memory_log_store>();
    out.snapshots = std::make_shared<memory_snapshot_store>();
    return out;
  }
  auto d = data_dir::open(posix_file_system(), *dir, node, cluster);
  out.fresh = d.created || d.log->last_id().index == 0;
  out.stable = std::move(d.stable);
  out.log = std::move(d.log);
  out.snapshots = std::move(d.snapshots);
  return out;
}

} // namespace raft_actor
