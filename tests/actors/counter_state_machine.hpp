// A tiny state machine for actor tests: counts applied commands, answers
// every command and query with the count (8 bytes, little endian), and
// snapshots the count.
#pragma once

#include "storage/interfaces.hpp"

#include <memory>
#include <stdexcept>
#include <vector>

namespace raft_actor::test {

/// Counts applied commands; answers with the count; snapshots the count.
class counter : public state_machine {
public:
  std::vector<std::vector<uint8_t>>
  apply(const std::vector<log_entry>& entries) override {
    std::vector<std::vector<uint8_t>> out;
    for (const auto& e : entries) {
      if (e.kind == entry_kind::normal)
        ++n_;
      out.push_back(encode(n_));
    }
    return out;
  }
  std::vector<uint8_t> query(const std::vector<uint8_t>&) const override {
    return encode(n_);
  }
  std::unique_ptr<snapshot_source> capture() override {
    struct source : snapshot_source {
      uint64_t n;
      explicit source(uint64_t x) : n(x) {}
      std::vector<uint8_t> serialize() override { return encode(n); }
    };
    return std::make_unique<source>(n_);
  }
  void restore(const std::vector<uint8_t>& data) override {
    if (data.size() != 8)
      throw std::invalid_argument("counter: bad snapshot");
    n_ = 0;
    for (int i = 7; i >= 0; --i)
      n_ = (n_ << 8) | data[i];
  }
  /// Commands applied so far.
  uint64_t value() const { return n_; }
  /// The count as answered (8 bytes, little endian).
  static std::vector<uint8_t> encode(uint64_t n) {
    std::vector<uint8_t> out(8);
    for (int i = 0; i < 8; ++i)
      out[i] = static_cast<uint8_t>(n >> (8 * i));
    return out;
  }

private:
  uint64_t n_ = 0;
};

} // namespace raft_actor::test
