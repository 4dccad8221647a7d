// A unique temporary directory removed (with everything in it) at scope end.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace raft_actor::test {

/// Creates /tmp/raft-actor-test-XXXXXX and removes it recursively on exit.
class temp_dir {
public:
  temp_dir() {
    std::string tmpl
      = (std::filesystem::temp_directory_path() / "raft-actor-test-XXXXXX")
          .string();
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// The directory.
  const std::string& path() const { return path_; }
  /// A path inside it.
  std::string operator/(const std::string& name) const {
    return path_ + "/" + name;
  }

private:
  std::string path_;
};

} // namespace raft_actor::test
