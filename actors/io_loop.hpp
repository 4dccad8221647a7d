// The byte transport under raft-actor's network layer: one thread running an
// epoll loop over TCP connections, optionally with mutual TLS (OpenSSL), that
// cuts the byte streams into length-prefixed frames.
//
// Why our own: CAF 0.17's middleman exposes its BASP protocol on the
// listening port, and BASP trusts its input (a 32-byte handshake header with
// an empty payload crashes the process; an announced payload length is
// allocated before any check). Here the only thing a stranger can reach is a
// 4-byte length that is checked against a cap before anything is allocated,
// and (with TLS) a handshake that must end with a certificate from the
// cluster CA.
//
// Frames: a 4-byte big-endian body length, then the body. A body longer than
// io_limits::max_frame_bytes closes the connection. Empty bodies are
// keep-alive pings: the loop sends one on a connection that has sent nothing
// for io_limits::ping_interval and never hands them to a handler.
//
// This file knows nothing of CAF or Raft; handlers usually forward events to
// actors. Every public member function is thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace raft_actor::net {

/// Identifies one connection of one loop (never reused; 0 is "none").
using conn_id = uint64_t;

/// Mutual TLS settings (all three PEM files required when enabled).
struct tls_settings {
  /// Off: plain TCP.
  bool enabled = false;
  /// This endpoint's certificate chain (PEM).
  std::string certificate;
  /// Its private key (PEM).
  std::string private_key;
  /// The CA that signed every peer's certificate (PEM).
  std::string ca_file;
};

/// Bounds that keep one connection from hurting the process.
struct io_limits {
  /// Largest frame body accepted or sent.
  size_t max_frame_bytes = 64 << 20;
  /// Largest first frame accepted on a connection (e.g. a small greeting,
  /// so that a peer must say who it is before it may send big frames; the
  /// smaller of this and max_frame_bytes applies).
  size_t max_first_frame_bytes = 64 << 20;
  /// Frame bytes handed to a handler and not yet released (see release());
  /// beyond this the loop stops reading that connection until the handler
  /// catches up.
  size_t max_unreleased_bytes = 128 << 20;
  /// Bytes queued for sending on one connection; send() refuses more.
  size_t max_queued_bytes = 256 << 20;
  /// Accepted connections open at once; further ones are closed at once.
  /// (Outbound connections have a limit of their own, the same number, so
  /// that strangers cannot take the slots a node needs to reach its peers.)
  size_t max_connections = 1024;
  /// A connection attempt (TCP and TLS handshake) must finish in this time.
  std::chrono::milliseconds connect_timeout{5000};
  /// An accepted connection must finish its TLS handshake in this time.
  std::chrono::milliseconds handshake_timeout{5000};
  /// A ping goes out on a connection that has sent nothing for this long.
  std::chrono::milliseconds ping_interval{1000};
  /// A connection that has received nothing (not even a ping) for this long
  /// is closed.
  std::chrono::milliseconds idle_timeout{10000};
};

/// Receives the events of one connection, on the loop's thread. Handlers
/// must not block; they may call any member of the loop (calls take effect
/// asynchronously). A handler must not own the loop.
class conn_handler {
public:
  virtual ~conn_handler() = default;
  /// The connection is usable (TCP connected and, with TLS, the handshake
  /// done and the peer's certificate verified). `peer` is "host:port";
  /// `identity` the common name of the peer's verified certificate (empty
  /// without TLS).
  virtual void on_open(conn_id id, const std::string& peer,
                       const std::string& identity)
    = 0;
  /// One complete frame body (never empty). Its size counts against
  /// io_limits::max_unreleased_bytes until released.
  virtual void on_frame(conn_id id, std::vector<uint8_t> body) = 0;
  /// The connection is gone (or never opened). Called exactly once per
  /// connection, last, unless the loop itself is being destroyed.
  virtual void on_close(conn_id id, const std::string& why) = 0;
};

/// Makes the handler for an accepted connection.
using handler_factory = std::function<std::shared_ptr<conn_handler>()>;

/// The event loop and its thread.
class io_loop {
public:
  /// Starts the thread. Throws std::runtime_error if TLS is enabled and the
  /// files cannot be used (the message names the file and OpenSSL's reason).
  io_loop(io_limits limits, tls_settings tls);
  /// Stops the thread and closes every socket, without calling handlers.
  /// Must not be called from the loop's own thread (it aborts there; see
  /// in_loop_thread()).
  ~io_loop();
  io_loop(const io_loop&) = delete;
  io_loop& operator=(const io_loop&) = delete;

  /// Listens on `host`:`port` (port 0 picks one); returns the bound port.
  /// Each accepted connection gets a handler from `factory`. Throws
  /// std::runtime_error if the address cannot be bound.
  uint16_t listen(const std::string& host, uint16_t port,
                  handler_factory factory);

  /// Starts connecting to `host`:`port` (a name or a numeric address); the
  /// handler hears on_open or on_close (with the reason) later.
  conn_id connect(const std::string& host, uint16_t port,
                  std::shared_ptr<conn_handler> handler);

  /// Queues one frame (`body` must not be empty). False, and nothing
  /// queued, if the connection is not open (yet or any more), the body is
  /// larger than max_frame_bytes, or the queue would exceed
  /// max_queued_bytes.
  bool send(conn_id id, std::vector<uint8_t> body);

  /// The handler is done with `bytes` of frame bodies on `id`.
  void release(conn_id id, size_t bytes);

  /// Closes the connection (after queued frames are written, if `flush`);
  /// its handler hears on_close.
  void close(conn_id id, const std::string& why, bool flush = false);

  /// True when called on the loop's own thread (e.g. from a handler),
  /// where the loop must not be destroyed.
  bool in_loop_thread() const;

  /// The limits this loop enforces.
  const io_limits& limits() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace raft_actor::net
