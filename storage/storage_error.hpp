// The one exception type of the storage layer.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace raft_actor {

/// A storage operation failed (I/O error, full disk, failed fsync) or found
/// corrupt data. `path` and `offset` name where (offset -1 if unknown). A
/// store that threw this for a write refuses every later call: the node must
/// stop rather than carry on with state it cannot trust.
class storage_error : public std::runtime_error {
public:
  /// Builds "what: path at offset N (reason)".
  storage_error(const std::string& what, std::string path, int64_t offset = -1,
                int error_number = 0);

  /// The file involved.
  const std::string& path() const noexcept { return path_; }
  /// Byte offset in that file, or -1.
  int64_t offset() const noexcept { return offset_; }
  /// errno of the failed call, or 0 for corruption.
  int error_number() const noexcept { return errno_; }

private:
  std::string path_;
  int64_t offset_;
  int errno_;
};

} // namespace raft_actor
