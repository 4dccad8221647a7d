// Test support: a plain TCP connection that speaks raft-actor's wire
// protocol by hand (no io_loop, no TLS), to play a peer or a hostile client.
#pragma once

#include "actors/wire.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace raft_actor::test {

/// A plain TCP connection that speaks the wire protocol by hand, for tests
/// that play a peer or a hostile client (TLS off).
class wire_socket {
public:
  /// Connects to 127.0.0.1:`port`; throws std::runtime_error on failure.
  explicit wire_socket(uint16_t port);
  ~wire_socket();
  wire_socket(const wire_socket&) = delete;
  wire_socket& operator=(const wire_socket&) = delete;

  /// Sends raw bytes; false once the connection broke.
  bool send_raw(const std::vector<uint8_t>& bytes);
  /// Sends one frame (length prefix, then `body`).
  bool send_body(const std::vector<uint8_t>& body);
  /// Sends one encoded frame.
  bool send(const wire::frame& f) { return send_body(wire::encode(f)); }
  /// The next frame that is not a ping, decoded; nullopt on close, timeout
  /// or a frame that does not decode.
  std::optional<wire::frame> receive(std::chrono::milliseconds timeout);
  /// Waits until the other end closes (reading and dropping what comes);
  /// false if it is still open after `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout);

private:
  /// Waits until something can be read (or the peer closed); false on
  /// error or at the deadline.
  bool readable(std::chrono::steady_clock::time_point deadline);
  /// Reads exactly n bytes; false on close, error or timeout.
  bool read_exact(uint8_t* out, size_t n,
                  std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
};

} // namespace raft_actor::test
