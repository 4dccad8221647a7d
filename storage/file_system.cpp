#include "storage/file_system.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace raft_actor {

storage_error::storage_error(const std::string& what, std::string path,
                             int64_t offset, int error_number)
    : std::runtime_error(
      what + ": " + path
      + (offset >= 0 ? " at offset " + std::to_string(offset) : std::string{})
      + (error_number != 0
           ? " (" + std::string(std::strerror(error_number)) + ")"
           : std::string{})),
      path_(std::move(path)), offset_(offset), errno_(error_number) {}

namespace {

[[noreturn]] void fail(const char* what, const std::string& path,
                       int64_t offset = -1) {
  throw storage_error(what, path, offset, errno);
}

class posix_fs final : public file_system {
public:
  file_handle open(const std::string& path, bool create) override {
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0)
      fail("cannot open", path);
    return {fd, path};
  }

  void close(file_handle& f) noexcept override {
    if (f.fd >= 0)
      ::close(f.fd);
    f.fd = -1;
  }

  void pwrite(const file_handle& f, const void* data, size_t n,
              uint64_t offset) override {
    auto p = static_cast<const char*>(data);
    while (n > 0) {
      auto k = ::pwrite(f.fd, p, n, static_cast<off_t>(offset));
      if (k < 0) {
        if (errno == EINTR)
          continue;
        fail("write failed", f.path, static_cast<int64_t>(offset));
      }
      p += k;
      n -= static_cast<size_t>(k);
      offset += static_cast<uint64_t>(k);
    }
  }

  size_t pread(const file_handle& f, void* data, size_t n,
               uint64_t offset) override {
    auto p = static_cast<char*>(data);
    size_t done = 0;
    while (done < n) {
      auto k
        = ::pread(f.fd, p + done, n - done, static_cast<off_t>(offset + done));
      if (k < 0) {
        if (errno == EINTR)
          continue;
        fail("read failed", f.path, static_cast<int64_t>(offset + done));
      }
      if (k == 0)
        break;
      done += static_cast<size_t>(k);
    }
    return done;
  }

  void fdatasync(const file_handle& f) override {
    if (::fdatasync(f.fd) != 0)
      fail("fdatasync failed", f.path);
  }

  void fsync(const file_handle& f) override {
    if (::fsync(f.fd) != 0)
      fail("fsync failed", f.path);
  }

  void truncate(const file_handle& f, uint64_t size) override {
    if (::ftruncate(f.fd, static_cast<off_t>(size)) != 0)
      fail("truncate failed", f.path, static_cast<int64_t>(size));
  }

  uint64_t size(const file_handle& f) override {
    struct stat st;
    if (::fstat(f.fd, &st) != 0)
      fail("stat failed", f.path);
    return static_cast<uint64_t>(st.st_size);
  }

  void rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      fail("rename failed", from + " -> " + to);
  }

  void remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      fail("remove failed", path);
  }

  void make_dirs(const std::string& path) override {
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = path.find('/', pos + 1);
      partial = path.substr(0, pos);
      if (partial.empty())
        continue;
      if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
        fail("cannot create directory", partial);
    }
  }

  bool exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  std::vector<std::string> list(const std::string& dir) override {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d)
      fail("cannot list directory", dir);
    while (auto* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..")
        out.push_back(std::move(name));
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }

  void sync_dir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
      fail("cannot open directory", dir);
    int rc = ::fsync(fd);
    int saved = errno;
    ::close(fd);
    if (rc != 0) {
      errno = saved;
      fail("fsync of directory failed", dir);
    }
  }
};

/// Reads through posix_fs; opens read-only; refuses every mutation.
class read_only_fs final : public file_system {
public:
  file_handle open(const std::string& path, bool create) override {
    if (create)
      refuse("create", path);
    // O_NONBLOCK: a FIFO planted in a directory must not hang the caller;
    // it is rejected below as not a regular file.
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
    int fd = ::open(path.c_str(), flags | O_NOATIME);
    if (fd < 0 && errno == EPERM)
      fd = ::open(path.c_str(), flags);
    if (fd < 0)
      fail("cannot open", path);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw storage_error("not a regular file", path);
    }
    return {fd, path};
  }
  void close(file_handle& f) noexcept override { posix_.close(f); }
  size_t pread(const file_handle& f, void* data, size_t n,
               uint64_t offset) override {
    return posix_.pread(f, data, n, offset);
  }
  uint64_t size(const file_handle& f) override { return posix_.size(f); }
  bool exists(const std::string& path) override { return posix_.exists(path); }
  std::vector<std::string> list(const std::string& dir) override {
    return posix_.list(dir);
  }
  void pwrite(const file_handle& f, const void*, size_t, uint64_t) override {
    refuse("pwrite", f.path);
  }
  void fdatasync(const file_handle& f) override { refuse("fdatasync", f.path); }
  void fsync(const file_handle& f) override { refuse("fsync", f.path); }
  void truncate(const file_handle& f, uint64_t) override {
    refuse("truncate", f.path);
  }
  void rename(const std::string& from, const std::string&) override {
    refuse("rename", from);
  }
  void remove(const std::string& path) override { refuse("remove", path); }
  void make_dirs(const std::string& path) override {
    refuse("make_dirs", path);
  }
  void sync_dir(const std::string& dir) override { refuse("sync_dir", dir); }

private:
  [[noreturn]] static void refuse(const char* op, const std::string& path) {
    // A logic error, not a storage_error: reaching this is a bug in the
    // caller, never a finding about the files.
    throw std::logic_error(std::string("read-only file system: refused to ")
                           + op + " " + path);
  }

  posix_fs posix_;
};

} // namespace

std::shared_ptr<file_system> posix_file_system() {
  static auto fs = std::make_shared<posix_fs>();
  return fs;
}

std::shared_ptr<file_system> read_only_file_system() {
  static auto fs = std::make_shared<read_only_fs>();
  return fs;
}

// -- faulty_file_system -------------------------------------------------------

faulty_file_system::faulty_file_system(std::shared_ptr<file_system> inner)
    : inner_(std::move(inner)) {}

void faulty_file_system::fail_after(uint64_t n, int error_number) {
  fail_at_ = ops_ + n;
  error_ = error_number;
}

void faulty_file_system::fail_syncs(int error_number) {
  sync_error_ = error_number;
}

void faulty_file_system::heal() {
  fail_at_ = UINT64_MAX;
  error_ = 0;
  sync_error_ = 0;
}

void faulty_file_system::maybe_fail(const char* op, const std::string& path) {
  if (ops_++ >= fail_at_)
    throw storage_error(std::string(op) + " failed (injected)", path, -1,
                        error_);
}

void faulty_file_system::maybe_fail_sync(const char* op,
                                         const std::string& path) {
  if (sync_error_ != 0)
    throw storage_error(std::string(op) + " failed (injected)", path, -1,
                        sync_error_);
  maybe_fail(op, path);
}

file_handle faulty_file_system::open(const std::string& path, bool create) {
  if (create)
    maybe_fail("open", path);
  return inner_->open(path, create);
}

void faulty_file_system::close(file_handle& f) noexcept {
  inner_->close(f);
}

void faulty_file_system::pwrite(const file_handle& f, const void* data,
                                size_t n, uint64_t offset) {
  maybe_fail("write", f.path);
  inner_->pwrite(f, data, n, offset);
}

size_t faulty_file_system::pread(const file_handle& f, void* data, size_t n,
                                 uint64_t offset) {
  return inner_->pread(f, data, n, offset);
}

void faulty_file_system::fdatasync(const file_handle& f) {
  maybe_fail_sync("fdatasync", f.path);
  inner_->fdatasync(f);
}

void faulty_file_system::fsync(const file_handle& f) {
  maybe_fail_sync("fsync", f.path);
  inner_->fsync(f);
}

void faulty_file_system::truncate(const file_handle& f, uint64_t size) {
  maybe_fail("truncate", f.path);
  inner_->truncate(f, size);
}

uint64_t faulty_file_system::size(const file_handle& f) {
  return inner_->size(f);
}

void faulty_file_system::rename(const std::string& from,
                                const std::string& to) {
  maybe_fail("rename", from);
  inner_->rename(from, to);
}

void faulty_file_system::remove(const std::string& path) {
  maybe_fail("remove", path);
  inner_->remove(path);
}

void faulty_file_system::make_dirs(const std::string& path) {
  maybe_fail("mkdir", path);
  inner_->make_dirs(path);
}

bool faulty_file_system::exists(const std::string& path) {
  return inner_->exists(path);
}

std::vector<std::string> faulty_file_system::list(const std::string& dir) {
  return inner_->list(dir);
}

void faulty_file_system::sync_dir(const std::string& dir) {
  maybe_fail_sync("fsync of directory", dir);
  inner_->sync_dir(dir);
}

} // namespace raft_actor
