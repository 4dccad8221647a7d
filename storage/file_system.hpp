// The file operations the durable stores use, behind an interface so that
// tests can inject a full disk, an I/O error or a failing fsync at any
// chosen operation. Every failure throws storage_error naming the file.
#pragma once

#include "storage/storage_error.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace raft_actor {

/// An open file (a descriptor and the path it was opened with).
struct file_handle {
  /// OS descriptor (-1 if closed).
  int fd = -1;
  /// Path, for error messages.
  std::string path;
};

/// Minimal POSIX-like file API used by the durable stores.
class file_system {
public:
  virtual ~file_system() = default;

  /// Opens (and with `create`, creates) a file for reading and writing.
  virtual file_handle open(const std::string& path, bool create) = 0;
  /// Closes a file; never throws.
  virtual void close(file_handle& f) noexcept = 0;
  /// Writes all of `n` bytes at `offset`.
  virtual void pwrite(const file_handle& f, const void* data, size_t n,
                      uint64_t offset)
    = 0;
  /// Reads up to `n` bytes at `offset`; returns how many were read.
  virtual size_t pread(const file_handle& f, void* data, size_t n,
                       uint64_t offset)
    = 0;
  /// Flushes file data (and the metadata needed to read it) to the disk.
  virtual void fdatasync(const file_handle& f) = 0;
  /// Flushes file data and all metadata.
  virtual void fsync(const file_handle& f) = 0;
  /// Cuts or extends the file to `size` bytes.
  virtual void truncate(const file_handle& f, uint64_t size) = 0;
  /// Current size of the file.
  virtual uint64_t size(const file_handle& f) = 0;
  /// Atomically renames `from` to `to` (replacing `to`).
  virtual void rename(const std::string& from, const std::string& to) = 0;
  /// Removes a file.
  virtual void remove(const std::string& path) = 0;
  /// Creates a directory (and missing parents); no error if it exists.
  virtual void make_dirs(const std::string& path) = 0;
  /// True if the path exists.
  virtual bool exists(const std::string& path) = 0;
  /// Names (not paths) of the entries of a directory, sorted.
  virtual std::vector<std::string> list(const std::string& dir) = 0;
  /// Makes renames, creations and removals in `dir` durable.
  virtual void sync_dir(const std::string& dir) = 0;
};

/// The real file system.
std::shared_ptr<file_system> posix_file_system();

/// The real file system, read only: files are opened O_RDONLY (regular
/// files only, without blocking on FIFOs, O_NOATIME where allowed) and every
/// mutating call throws std::logic_error. For tools that must never change
/// what they inspect.
std::shared_ptr<file_system> read_only_file_system();

/// A file system that forwards to another one and fails on purpose: after a
/// given number of mutating operations, or on every fsync, with a chosen
/// errno (ENOSPC for a full disk, EIO for a failing device).
class faulty_file_system : public file_system {
public:
  /// Wraps `inner` (usually posix_file_system()).
  explicit faulty_file_system(std::shared_ptr<file_system> inner);

  /// The next `n` mutating operations succeed, then each one fails with
  /// `error_number` until healed.
  void fail_after(uint64_t n, int error_number);
  /// Every fsync/fdatasync fails with `error_number` until healed.
  void fail_syncs(int error_number);
  /// Stops injecting failures.
  void heal();
  /// Mutating operations performed so far.
  uint64_t operations() const { return ops_; }

  file_handle open(const std::string& path, bool create) override;
  void close(file_handle& f) noexcept override;
  void pwrite(const file_handle& f, const void* data, size_t n,
              uint64_t offset) override;
  size_t pread(const file_handle& f, void* data, size_t n,
               uint64_t offset) override;
  void fdatasync(const file_handle& f) override;
  void fsync(const file_handle& f) override;
  void truncate(const file_handle& f, uint64_t size) override;
  uint64_t size(const file_handle& f) override;
  void rename(const std::string& from, const std::string& to) override;
  void remove(const std::string& path) override;
  void make_dirs(const std::string& path) override;
  bool exists(const std::string& path) override;
  std::vector<std::string> list(const std::string& dir) override;
  void sync_dir(const std::string& dir) override;

private:
  void maybe_fail(const char* op, const std::string& path);
  void maybe_fail_sync(const char* op, const std::string& path);

  std::shared_ptr<file_system> inner_;
  uint64_t ops_ = 0;
  uint64_t fail_at_ = UINT64_MAX;
  int error_ = 0;
  int sync_error_ = 0;
};

} // namespace raft_actor
