// Durable stores on the file system (the default for servers): a segmented
// write-ahead log with group commit, atomically replaced metadata files for
// the hard state, and a snapshot directory. See record_format.hpp for the
// bytes on disk.
#pragma once

#include "storage/file_system.hpp"
#include "storage/interfaces.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace raft_actor {

/// Tunables of the durable log.
struct file_log_options {
  /// A segment is closed and a new one started past this size.
  uint64_t segment_bytes = 64u << 20;
};

/// The segmented write-ahead log. Appends are buffered and written with one
/// write and one fdatasync per segment at `sync()` (group commit);
/// truncation and compaction work on whole segments plus a cut of one.
class file_log_store : public log_store {
public:
  /// Opens or creates the log in directory `dir`. Recovers a torn tail of
  /// the last segment (an incomplete final record or zeroed bytes), noting
  /// file and offset in recovery_notes(); any other damage (a complete
  /// record with a bad checksum, a gap between segments) throws
  /// storage_error naming the file and offset.
  file_log_store(std::shared_ptr<file_system> fs, std::string dir,
                 file_log_options opts = {});
  ~file_log_store() override;

  file_log_store(const file_log_store&) = delete;
  file_log_store& operator=(const file_log_store&) = delete;

  log_id base() const override;
  log_id last_id() const override;
  void append(const std::vector<log_entry>& entries) override;
  void truncate_from(index_t from) override;
  void purge_to(log_id id) override;
  void reset(log_id base) override;
  std::vector<log_entry> read(index_t from, index_t to) const override;
  void sync() override;

  /// What recovery repaired when opening (one line per torn tail).
  const std::vector<std::string>& recovery_notes() const { return notes_; }
  /// Number of segment files.
  size_t segment_count() const { return segments_.size(); }

private:
  struct segment {
    index_t first = 0;
    std::string path;
    file_handle file;
    /// Bytes on disk (header and written records).
    uint64_t size = 0;
    /// Encoded records not yet written (they follow `size`).
    std::vector<uint8_t> pending;
    /// Offset of each record (relative to the file) and its term.
    std::vector<uint32_t> offsets;
    std::vector<term_t> terms;
    bool needs_sync = false;
    index_t last() const { return first + offsets.size() - 1; }
  };

  void load();
  void load_segment(segment& s, bool is_last);
  segment& new_segment(index_t first);
  void remove_segment_files_after(size_t keep);
  void write_base(log_id id);
  void check_ok() const;
  [[noreturn]] void fail(const storage_error& e);
  term_t term_of(index_t index) const;

  std::shared_ptr<file_system> fs_;
  std::string dir_;
  file_log_options opts_;
  std::vector<segment> segments_;
  log_id base_;
  log_id last_;
  bool dir_dirty_ = false;
  bool failed_ = false;
  std::string failure_;
  std::vector<std::string> notes_;
  /// A torn tail found while loading, repaired once all checks passed.
  struct tail_repair {
    size_t segment = 0;
    uint64_t at = 0;
    bool rewrite_header = false;
    std::string note;
  };
  std::optional<tail_repair> repair_;
};

/// Term and vote in one small file, replaced atomically on every save.
class file_stable_store : public stable_store {
public:
  /// Opens `path`; with `create` a missing file starts at term 0, otherwise
  /// a missing or corrupt file throws storage_error (never a silent reset).
  file_stable_store(std::shared_ptr<file_system> fs, std::string path,
                    bool create);

  hard_state load() const override;
  void save(const hard_state& state) override;

private:
  std::shared_ptr<file_system> fs_;
  std::string path_;
  hard_state state_;
  bool failed_ = false;
};

/// Snapshots as files in one directory: <id>.snap with <id>.meta, and at
/// most one <id>.partial being written.
class file_snapshot_store : public snapshot_store {
public:
  /// Opens or creates the directory and verifies the latest snapshot's data
  /// against its checksum (storage_error naming the file if it does not
  /// match); then drops leftovers of interrupted writes and older
  /// snapshots, except the newest partial snapshot (so a transfer can
  /// resume).
  file_snapshot_store(std::shared_ptr<file_system> fs, std::string dir);
  ~file_snapshot_store() override;

  std::optional<snapshot_meta> latest() const override;
  void begin(uint64_t id) override;
  void write(uint64_t id, uint64_t offset,
             const std::vector<uint8_t>& data) override;
  uint64_t partial_size(uint64_t id) const override;
  snapshot_meta finish(uint64_t id, snapshot_meta meta) override;
  std::vector<uint8_t> read(uint64_t id, uint64_t offset,
                            size_t max) const override;

private:
  std::string path_of(uint64_t id, const char* ext) const;
  void check_ok() const;
  [[noreturn]] void fail(const storage_error& e);

  std::shared_ptr<file_system> fs_;
  std::string dir_;
  std::optional<snapshot_meta> latest_;
  mutable file_handle latest_file_;
  uint64_t partial_id_ = 0;
  file_handle partial_;
  uint64_t partial_size_ = 0;
  uint32_t partial_crc_ = 0;
  bool failed_ = false;
  std::string failure_;
};

/// Encodes snapshot metadata (Boost.Serialization binary archive, sealed
/// with a checksum).
std::vector<uint8_t> encode_snapshot_meta(const snapshot_meta& meta);

/// Decodes what encode_snapshot_meta made; false on any damage.
bool decode_snapshot_meta(const std::vector<uint8_t>& bytes,
                          snapshot_meta& out);

/// Reads a whole (small) file; throws storage_error if it cannot.
std::vector<uint8_t> read_file(file_system& fs, const std::string& path);

/// Replaces `path` atomically and durably with `bytes` (temp file, fsync,
/// rename, fsync of the directory).
void write_file_atomically(file_system& fs, const std::string& path,
                           const std::vector<uint8_t>& bytes);

/// One node's data directory: identity, hard state, log and snapshots.
struct data_dir {
  /// Identity recorded in the directory.
  struct identity {
    node_id node = no_node;
    uint64_t cluster = 0;
  };

  /// Opens `path` for node `node` of cluster `cluster`, creating it if it
  /// does not exist (or is empty). Refuses (storage_error) a directory of
  /// another node, another cluster or an unknown format version, and one
  /// whose hard state is missing or corrupt.
  static data_dir open(std::shared_ptr<file_system> fs, const std::string& path,
                       node_id node, uint64_t cluster,
                       file_log_options opts = {});

  /// The stores.
  std::unique_ptr<file_stable_store> stable;
  std::unique_ptr<file_log_store> log;
  std::unique_ptr<file_snapshot_store> snapshots;
  /// True if this call created the directory.
  bool created = false;
  /// Repairs done while opening (torn tails), for the node's log.
  std::vector<std::string> notes;
};

/// A node's three stores, as a program opens them.
struct node_store_set {
  /// Term and vote.
  std::shared_ptr<stable_store> stable;
  /// The log.
  std::shared_ptr<log_store> log;
  /// Snapshots.
  std::shared_ptr<snapshot_store> snapshots;
  /// True if they hold no log yet (a new node, which may form a cluster).
  bool fresh = true;
};

/// In-memory stores if `dir` is nullopt, else the data directory `*dir`
/// (throws like data_dir::open).
node_store_set open_node_stores(const std::optional<std::string>& dir,
                                node_id node, uint64_t cluster);

/// Reads the identity file of a data directory (for tools).
data_dir::identity read_identity(file_system& fs, const std::string& path);

} // namespace raft_actor
