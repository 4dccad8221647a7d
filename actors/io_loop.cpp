// The epoll loop behind io_loop.hpp.
//
// Threading: one loop thread owns every socket, every SSL object and all
// per-connection parsing state. Other threads (and handlers, which run on
// the loop thread) talk to it through `impl::mtx`: send() appends to a
// connection's `pending` list and posts a task, everything else posts a task
// to `impl::tasks` and wakes the loop through an eventfd. No lock is ever
// held while a handler runs, so handlers may call any member.
//
// Epoll is level-triggered: whatever is not consumed in one turn is reported
// again, which keeps fairness simple (each connection gets a bounded read
// budget per turn). The one thing epoll cannot see is plaintext that OpenSSL
// has already decrypted and buffered; connections that may hold such bytes
// are kept on `impl::again` and read again without waiting.
#include "actors/io_loop.hpp"

#include <spdlog/spdlog.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace raft_actor::net {

namespace {

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;
using std::chrono::milliseconds;

/// Epoll data of the wake-up eventfd.
constexpr uint64_t wake_tag = 0;
/// Epoll data of listener `i` is `listener_tag | i`; connection ids stay
/// below it (they count up from 1).
constexpr uint64_t listener_tag = uint64_t{1} << 63;
/// Bytes read from a socket per call.
constexpr size_t read_chunk = 64 * 1024;
/// Reads per connection and turn, so that one busy peer cannot starve the
/// others.
constexpr int read_budget = 16;
/// Connections accepted per listener and turn.
constexpr int accept_budget = 64;
/// Plaintext handed to one SSL_write (small frames are copied together).
constexpr size_t tls_chunk = 64 * 1024;
/// Limits of one sendmsg(): the kernel gathers many small frames into few
/// segments, which is where the throughput of small frames comes from.
constexpr int max_iov = 256;
constexpr size_t max_write_batch = 4 << 20;
/// close(..., flush = true) waits at most this long for the queue to drain
/// and the peer to close its side.
constexpr milliseconds flush_limit{1000};
/// The loop looks at its timers at least this often.
constexpr milliseconds max_wait{100};
/// After accept() fails for lack of descriptors, the listener rests this
/// long (level-triggered epoll would otherwise report it in a tight loop).
constexpr milliseconds accept_rest{100};

/// strerror() is not thread-safe; this is.
std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r returns the message (maybe not in buf).
  return strerror_r(err, buf, sizeof buf);
}

/// Takes every error from this thread's OpenSSL queue (empty if none).
std::string openssl_errors() {
  std::string out;
  char buf[256];
  while (auto e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out;
}

std::string ms_text(clock_type::duration d) {
  return std::to_string(std::chrono::duration_cast<milliseconds>(d).count())
         + " ms";
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8)
         | uint32_t{p[3]};
}

std::array<uint8_t, 4> be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

/// "host:port", with brackets around IPv6 hosts.
std::string host_port(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string address_text(const sockaddr_storage& sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    return host_port(buf, ntohs(in->sin_port));
  }
  if (sa.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return host_port(buf, ntohs(in6->sin6_port));
  }
  return "unknown";
}

/// One resolved address.
struct endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

/// Resolves `host`:`port`. Numeric addresses first (AI_NUMERICHOST never
/// blocks); names go to getaddrinfo proper, which may block the caller.
/// On failure returns nothing and sets `error`.
std::vector<endpoint> resolve(const std::string& host, uint16_t port,
                              bool passive, std::string& error) {
  auto service = std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST | (passive ? AI_PASSIVE : 0);
  const char* node = host.empty() ? nullptr : host.c_str();
  addrinfo* res = nullptr;
  int rc = getaddrinfo(node, service.c_str(), &hints, &res);
  if (rc == EAI_NONAME && node) {
    hints.ai_flags &= ~AI_NUMERICHOST;
    hints.ai_flags |= AI_ADDRCONFIG;
    rc = getaddrinfo(node, service.c_str(), &hints, &res);
  }
  std::vector<endpoint> out;
  if (rc != 0) {
    error = rc == EAI_SYSTEM ? errno_text(errno) : gai_strerror(rc);
    return out;
  }
  for (auto* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage))
      continue;
    endpoint e;
    std::memcpy(&e.addr, ai->ai_addr, ai->ai_addrlen);
    e.len = ai->ai_addrlen;
    out.push_back(e);
  }
  freeaddrinfo(res);
  if (out.empty())
    error = "no usable address";
  return out;
}

void set_nodelay(int fd) {
  int one = 1;
  // Frames are small and latency matters (Raft heartbeats); coalescing is
  // done by the loop itself.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// The common name in a certificate's subject (empty if none).
std::string common_name(X509* cert) {
  if (!cert)
    return {};
  char buf[256];
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
                                    buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
}

/// Builds the one SSL_CTX of a loop; throws with the file and OpenSSL's
/// reason.
SSL_CTX* make_tls_context(const tls_settings& tls) {
  ERR_clear_error();
  auto failure = [](const std::string& what) {
    auto why = openssl_errors();
    ERR_clear_error();
    return std::runtime_error("TLS: " + what + ": "
                              + (why.empty() ? "unknown error" : why));
  };
  if (tls.certificate.empty() || tls.private_key.empty() || tls.ca_file.empty())
    throw std::runtime_error("TLS: certificate, private key and CA file are "
                             "all required");
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(
    SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (!ctx)
    throw failure("cannot create a context");
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1)
    throw failure("cannot require TLS 1.2");
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.certificate.c_str())
      != 1)
    throw failure("cannot load certificate chain '" + tls.certificate + "'");
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.private_key.c_str(),
                                  SSL_FILETYPE_PEM)
      != 1)
    throw failure("cannot load private key '" + tls.private_key
                  + "' for certificate '" + tls.certificate + "'");
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    throw failure("private key '" + tls.private_key
                  + "' does not match certificate '" + tls.certificate + "'");
  if (SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.c_str(), nullptr)
      != 1)
    throw failure("cannot load CA file '" + tls.ca_file + "'");
  // Mutual TLS: the cluster CA is the only trust root; names are not
  // checked because membership, not DNS, says who a peer is.
  SSL_CTX_set_verify(
    ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // Tells clients which CA to present a certificate from.
  if (auto* names = SSL_load_client_CA_file(tls.ca_file.c_str()))
    SSL_CTX_set_client_CA_list(ctx.get(), names);
  ERR_clear_error();
  // Partial writes let one SSL_write return after each record; a moving
  // buffer lets a retried write come from a reallocated staging vector.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE
                                | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // No renegotiation (attack surface, and a write that needs a read). An
  // EOF without close_notify is a plain close: frames carry their own
  // length, so a truncated stream cannot forge a frame.
  SSL_CTX_set_options(ctx.get(),
                      SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Connections are long-lived; resumption would only add state.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  return ctx.release();
}

/// One frame waiting to be written: its length header and its body.
struct out_frame {
  std::array<uint8_t, 4> head{};
  std::vector<uint8_t> body;
  /// Bytes on the wire.
  size_t size() const { return head.size() + body.size(); }
};

enum class phase {
  /// Outbound: TCP connect in progress (or not yet started by the loop).
  connecting,
  /// TLS handshake in progress.
  handshaking,
  /// on_open was called; frames flow.
  open,
  /// close(..., flush = true): writing what is queued, then waiting for the
  /// peer to close its side.
  closing,
  /// on_close was called (or is being called); the socket is gone.
  closed,
};

/// One connection.
struct conn {
  /// A connection before its socket exists (or with an accepted one).
  conn(conn_id id, std::shared_ptr<conn_handler> handler, std::string peer,
       bool outbound)
      : id(id), handler(std::move(handler)), peer(std::move(peer)),
        outbound(outbound) {}

  const conn_id id;
  const std::shared_ptr<conn_handler> handler;
  /// "host:port" of the other end.
  const std::string peer;
  /// Made by connect() (its deadline is connect_timeout).
  const bool outbound;
  /// The common name of the peer's verified certificate (TLS; set before
  /// on_open).
  std::string identity;
  /// A frame was delivered (the first one is held to
  /// io_limits::max_first_frame_bytes).
  bool greeted = false;

  // -- guarded by impl::mtx ---------------------------------------------------

  /// send() queues frames (open, and close() not called).
  bool sendable = false;
  /// close() was called: stop handing frames to the handler.
  bool close_requested = false;
  /// Bytes in `pending`, `out` and `staged` not yet written (headers
  /// included); bounded by io_limits::max_queued_bytes.
  size_t queued = 0;
  /// Frames from send() that the loop has not taken yet.
  std::vector<out_frame> pending;
  /// A task that moves `pending` to `out` is posted.
  bool flush_posted = false;
  /// Frame bytes handed to the handler and not released.
  size_t unreleased = 0;
  /// Reading stopped because `unreleased` exceeded the limit (written by
  /// the loop thread only, so it reads it without the lock).
  bool paused = false;
  /// A task that resumes reading is posted.
  bool resume_posted = false;

  // -- loop thread only -------------------------------------------------------

  phase ph = phase::connecting;
  int fd = -1;
  SSL* ssl = nullptr;
  /// Events registered with epoll.
  uint32_t events = 0;
  /// Addresses left to try (outbound).
  std::vector<endpoint> targets;
  size_t next_target = 0;
  std::string last_error;
  time_point started;
  time_point last_recv;
  time_point last_send;
  time_point close_deadline;
  std::string close_why;
  /// We shut down our sending side (closing).
  bool write_shut = false;
  /// The peer closed its sending side (closing).
  bool peer_eof = false;
  /// close() was seen after a delivered frame: deliver no more.
  bool reading_stopped = false;
  /// OpenSSL asked for the other direction.
  bool hs_wants_write = false;
  bool read_wants_write = false;
  bool write_wants_read = false;
  /// On impl::again.
  bool in_again = false;

  // Input: the frame being parsed. `body` grows as bytes arrive, so an
  // announced length costs nothing until the peer actually sends it.
  std::array<uint8_t, 4> head{};
  size_t head_got = 0;
  bool in_body = false;
  size_t body_len = 0;
  std::vector<uint8_t> body;
  /// Bytes read but not parsed because reading was paused mid-buffer.
  std::vector<uint8_t> stash;

  // Output: frames taken from `pending`; `out_off` bytes of the first one
  // are written. With TLS, bytes move on to `staged` (copied together so
  // that small frames share records) and stay there, unchanged, until
  // SSL_write took them: a retried SSL_write must see the same bytes.
  std::deque<out_frame> out;
  size_t out_off = 0;
  std::vector<uint8_t> staged;
  size_t staged_off = 0;

  /// Bytes wait to be written.
  bool has_output() const { return !out.empty() || staged_off < staged.size(); }
};

using conn_ptr = std::shared_ptr<conn>;

/// One listening socket.
struct listener {
  int fd = -1;
  handler_factory factory;
  /// Resting after EMFILE & co. (loop thread only).
  bool resting = false;
  time_point rest_until;
};

} // namespace

struct io_loop::impl {
  /// Sets up TLS and epoll; throws std::runtime_error on failure.
  impl(io_limits lim, const tls_settings& tls) : limits(lim) {
    if (tls.enabled)
      ctx = make_tls_context(tls);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd < 0 || wakefd < 0) {
      auto err = errno_text(errno);
      cleanup_fds();
      throw std::runtime_error("io_loop: cannot create epoll/eventfd: " + err);
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wake_tag;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev) != 0) {
      auto err = errno_text(errno);
      cleanup_fds();
      throw std::runtime_error("io_loop: cannot watch eventfd: " + err);
    }
  }

  /// Runs after the thread has been joined (or was never started).
  ~impl() {
    for (auto& [id, c] : conns)
      release_socket(*c);
    conns.clear();
    for (auto& l : listeners)
      ::close(l->fd);
    cleanup_fds();
  }

  /// Closes epoll, the eventfd and the TLS context.
  void cleanup_fds() {
    if (epfd >= 0)
      ::close(epfd);
    if (wakefd >= 0)
      ::close(wakefd);
    epfd = wakefd = -1;
    if (ctx)
      SSL_CTX_free(ctx);
    ctx = nullptr;
  }

  const io_limits limits;
  SSL_CTX* ctx = nullptr;
  int epfd = -1;
  int wakefd = -1;
  std::thread thread;
  std::atomic<conn_id> next_id{1};

  std::mutex mtx;
  // -- guarded by mtx ---------------------------------------------------------
  std::vector<std::function<void()>> tasks;
  /// The eventfd was written since the loop last took `tasks`.
  bool wake_pending = false;
  bool stopping = false;
  /// Every connection send(), release() and close() can reach.
  std::unordered_map<conn_id, conn_ptr> registry;
  /// Appended by listen(), read by the loop; never shrinks.
  std::vector<std::unique_ptr<listener>> listeners;

  // -- loop thread only -------------------------------------------------------
  /// Connections with sockets (or about to get one).
  std::unordered_map<conn_id, conn_ptr> conns;
  std::vector<conn_ptr> again;
  std::vector<uint8_t> scratch;
  time_point next_sweep;

  // -- posting work -----------------------------------------------------------

  /// Queues `task`; call with `mtx` held. True if the caller must wake the
  /// loop (after unlocking).
  bool post_locked(std::function<void()> task) {
    tasks.push_back(std::move(task));
    if (wake_pending)
      return false;
    wake_pending = true;
    return true;
  }

  /// Makes epoll_wait return.
  void wake() {
    uint64_t one = 1;
    // Cannot fail in a way that matters: EAGAIN would mean the counter is
    // already huge, i.e. the loop will wake anyway.
    [[maybe_unused]] auto n = ::write(wakefd, &one, sizeof one);
  }

  /// Queues `task` for the loop thread and wakes it if needed.
  void post(std::function<void()> task) {
    bool w;
    {
      std::lock_guard<std::mutex> guard(mtx);
      w = post_locked(std::move(task));
    }
    if (w)
      wake();
  }

  // -- the loop ---------------------------------------------------------------

  /// The loop thread: tasks, timers, epoll events, until `stopping`.
  void run() {
    // A peer that closes while we write must not kill the process. Only
    // this thread: the process-wide disposition belongs to the program.
    // Plain sockets also use MSG_NOSIGNAL; OpenSSL writes with write(2), so
    // its SIGPIPE stays pending, harmlessly, on this blocked thread.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    scratch.resize(read_chunk);
    next_sweep = clock_type::now() + max_wait;
    std::array<epoll_event, 128> evs;
    for (;;) {
      std::vector<std::function<void()>> batch;
      {
        std::lock_guard<std::mutex> guard(mtx);
        if (stopping)
          return;
        batch.swap(tasks);
        wake_pending = false;
      }
      for (auto& task : batch)
        guarded("task", task);
      batch.clear();
      if (!again.empty()) {
        auto list = std::move(again);
        again.clear();
        for (auto& c : list) {
          c->in_again = false;
          guarded_conn(c, [&] { do_read(c); });
        }
      }
      auto now = clock_type::now();
      if (now >= next_sweep)
        guarded("timers", [&] { sweep(now); });
      int timeout = 0;
      if (again.empty()) {
        auto left
          = std::chrono::ceil<milliseconds>(next_sweep - clock_type::now());
        timeout = static_cast<int>(
          std::clamp<milliseconds::rep>(left.count(), 0, max_wait.count()));
      }
      int n
        = epoll_wait(epfd, evs.data(), static_cast<int>(evs.size()), timeout);
      if (n < 0) {
        if (errno != EINTR) {
          spdlog::warn("io_loop: epoll_wait failed: {}", errno_text(errno));
          std::this_thread::sleep_for(milliseconds(10));
        }
        continue;
      }
      for (int i = 0; i < n; ++i) {
        auto tag = evs[i].data.u64;
        auto what = evs[i].events;
        if (tag == wake_tag) {
          uint64_t count;
          [[maybe_unused]] auto r = ::read(wakefd, &count, sizeof count);
        } else if (tag & listener_tag) {
          guarded("accept", [&] { accept_all(tag & ~listener_tag); });
        } else if (auto it = conns.find(tag); it != conns.end()) {
          auto c = it->second;
          guarded_conn(c, [&] { handle(c, what); });
        }
      }
    }
  }

  /// Runs `f`; the loop thread must never die of an exception.
  template <class F>
  void guarded(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      spdlog::warn("io_loop: {} failed: {}", what, e.what());
    } catch (...) {
      spdlog::warn("io_loop: {} failed", what);
    }
  }

  /// Runs `f` on behalf of `c`; an exception (say, bad_alloc for a large
  /// frame) costs that connection, not the loop.
  template <class F>
  void guarded_conn(const conn_ptr& c, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      guarded("close", [&] {
        close_now(c, std::string("internal error: ") + e.what());
      });
    } catch (...) {
      guarded("close", [&] { close_now(c, "internal error"); });
    }
  }

  /// Makes the timers run no later than `t`.
  void arm(time_point t) {
    if (t < next_sweep)
      next_sweep = t;
  }

  // -- epoll registration -----------------------------------------------------

  /// What epoll should report for `c` in its present state.
  uint32_t wanted_events(const conn& c) const {
    switch (c.ph) {
      case phase::connecting:
        return EPOLLOUT;
      case phase::handshaking:
        return c.hs_wants_write ? EPOLLOUT : EPOLLIN;
      case phase::open: {
        bool reading = !c.paused && !c.reading_stopped;
        uint32_t ev = 0;
        if (reading || c.write_wants_read)
          ev |= EPOLLIN;
        if (c.has_output() || c.read_wants_write)
          ev |= EPOLLOUT;
        return ev;
      }
      case phase::closing: {
        uint32_t ev = c.peer_eof ? 0u : uint32_t{EPOLLIN};
        if (c.has_output() && !c.write_shut)
          ev |= EPOLLOUT;
        return ev;
      }
      case phase::closed:
        break;
    }
    return 0;
  }

  /// Registers a new socket; false (errno set) on failure.
  bool watch(conn& c) {
    epoll_event ev{};
    ev.events = wanted_events(c);
    ev.data.u64 = c.id;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c.fd, &ev) != 0)
      return false;
    c.events = ev.events;
    return true;
  }

  /// Tells epoll what `c` waits for now (only when it changed).
  void update_events(conn& c) {
    if (c.fd < 0 || c.ph == phase::closed)
      return;
    auto want = wanted_events(c);
    if (want == c.events)
      return;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = c.id;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev) != 0)
      spdlog::warn("io_loop: epoll_ctl failed for connection {}: {}", c.id,
                   errno_text(errno));
    else
      c.events = want;
  }

  /// Frees the SSL object and closes the socket; no handler call.
  void release_socket(conn& c) {
    if (c.fd >= 0)
      epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    if (c.ssl)
      SSL_free(c.ssl);
    c.ssl = nullptr;
    if (c.fd >= 0)
      ::close(c.fd);
    c.fd = -1;
  }

  // -- closing ----------------------------------------------------------------

  /// Closes `c` at once and tells its handler (exactly once).
  void close_now(const conn_ptr& c, const std::string& why) {
    if (c->ph == phase::closed)
      return;
    c->ph = phase::closed;
    {
      std::lock_guard<std::mutex> guard(mtx);
      c->sendable = false;
      c->pending.clear();
      c->queued = 0;
      registry.erase(c->id);
    }
    release_socket(*c);
    conns.erase(c->id);
    c->out.clear();
    c->staged = {};
    c->body = {};
    c->stash = {};
    SPDLOG_DEBUG("io_loop: connection {} ({}) closed: {}", c->id, c->peer, why);
    try {
      c->handler->on_close(c->id, why);
    } catch (const std::exception& e) {
      spdlog::warn("io_loop: on_close of connection {} threw: {}", c->id,
                   e.what());
    } catch (...) {
      spdlog::warn("io_loop: on_close of connection {} threw", c->id);
    }
  }

  /// Open connections made by connect() (`outbound`) or accepted.
  size_t count_connections(bool outbound) const {
    size_t n = 0;
    for (const auto& kv : conns)
      n += kv.second->outbound == outbound;
    return n;
  }

  /// The task behind close().
  void begin_close(conn_id id, const std::string& why, bool flush) {
    auto it = conns.find(id);
    if (it == conns.end())
      return;
    auto c = it->second;
    if (c->ph == phase::closing && flush)
      return; // a flushing close is under way; let it finish
    if (!flush || c->ph != phase::open) {
      close_now(c, why);
      return;
    }
    take_pending(*c);
    c->ph = phase::closing;
    c->close_why = why;
    c->close_deadline = clock_type::now() + flush_limit;
    arm(c->close_deadline);
    if (c->has_output())
      do_write(c);
    else
      begin_shutdown(c);
    if (c->ph != phase::closed)
      update_events(*c);
  }

  /// Everything queued is written: say so to the peer and wait for its
  /// close. Closing at once could make the kernel answer unread input with
  /// a reset, which may destroy our last bytes in the peer's buffers.
  void begin_shutdown(const conn_ptr& c) {
    if (c->write_shut)
      return;
    c->write_shut = true;
    if (c->ssl) {
      ERR_clear_error();
      SSL_shutdown(c->ssl); // best effort close_notify
      ERR_clear_error();
    }
    ::shutdown(c->fd, SHUT_WR);
    if (c->peer_eof) {
      close_now(c, c->close_why);
      return;
    }
    update_events(*c);
  }

  /// Reads and drops input while closing, until the peer's EOF.
  void discard_input(const conn_ptr& c) {
    for (int i = 0; i < read_budget; ++i) {
      auto n = ::recv(c->fd, scratch.data(), scratch.size(), 0);
      if (n > 0)
        continue;
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      // EOF or error.
      c->peer_eof = true;
      if (n < 0 || c->write_shut || !c->has_output()) {
        close_now(c, c->close_why);
        return;
      }
      // Half-closed peer: it may still read what we have queued.
      update_events(*c);
      return;
    }
  }

  // -- timers -----------------------------------------------------------------

  /// Timers: connect and handshake deadlines, idle connections, pings,
  /// flush deadlines, resting listeners. Sets the next sweep time.
  void sweep(time_point now) {
    auto next = now + max_wait;
    std::vector<conn_ptr> all;
    all.reserve(conns.size());
    for (auto& [id, c] : conns)
      all.push_back(c);
    for (auto& c : all) {
      switch (c->ph) {
        case phase::connecting:
        case phase::handshaking: {
          auto limit
            = c->outbound ? limits.connect_timeout : limits.handshake_timeout;
          auto deadline = c->started + limit;
          if (now >= deadline) {
            if (c->outbound)
              close_now(c, "connect to " + c->peer + " timed out");
            else
              close_now(c,
                        "TLS handshake not finished within " + ms_text(limit));
          } else {
            next = std::min(next, deadline);
          }
          break;
        }
        case phase::open: {
          // While paused we do not read, so the peer's pings go unseen;
          // resume() restarts the clock.
          if (!c->paused) {
            auto idle_deadline = c->last_recv + limits.idle_timeout;
            if (now >= idle_deadline) {
              close_now(c, "idle for " + ms_text(now - c->last_recv));
              break;
            }
            next = std::min(next, idle_deadline);
          }
          auto ping_deadline = c->last_send + limits.ping_interval;
          if (!c->has_output() && now >= ping_deadline) {
            {
              std::lock_guard<std::mutex> guard(mtx);
              c->queued += 4;
            }
            c->out.push_back(out_frame{});
            c->last_send = now;
            ping_deadline = now + limits.ping_interval;
            do_write(c);
          }
          next = std::min(next, ping_deadline);
          break;
        }
        case phase::closing:
          if (now >= c->close_deadline)
            close_now(c, c->close_why);
          else
            next = std::min(next, c->close_deadline);
          break;
        case phase::closed:
          break;
      }
    }
    std::vector<listener*> ls;
    {
      std::lock_guard<std::mutex> guard(mtx);
      for (auto& l : listeners)
        ls.push_back(l.get());
    }
    for (size_t i = 0; i < ls.size(); ++i) {
      auto* l = ls[i];
      if (!l->resting)
        continue;
      if (now >= l->rest_until) {
        l->resting = false;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = listener_tag | i;
        epoll_ctl(epfd, EPOLL_CTL_MOD, l->fd, &ev);
      } else {
        next = std::min(next, l->rest_until);
      }
    }
    next_sweep = next;
  }

  // -- accepting --------------------------------------------------------------

  /// Accepts what listener `index` has pending (up to a budget).
  void accept_all(uint64_t index) {
    listener* l = nullptr;
    {
      std::lock_guard<std::mutex> guard(mtx);
      if (index < listeners.size())
        l = listeners[index].get();
    }
    if (!l || l->resting)
      return;
    for (int i = 0; i < accept_budget; ++i) {
      sockaddr_storage sa{};
      socklen_t len = sizeof sa;
      int fd = accept4(l->fd, reinterpret_cast<sockaddr*>(&sa), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK)
          return;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO
            || err == EPERM)
          continue;
        spdlog::warn("io_loop: accept failed: {}", errno_text(err));
        // Out of descriptors or memory: rest, or epoll reports the pending
        // connection again at once.
        l->resting = true;
        l->rest_until = clock_type::now() + accept_rest;
        arm(l->rest_until);
        epoll_event ev{};
        ev.events = 0;
        ev.data.u64 = listener_tag | index;
        epoll_ctl(epfd, EPOLL_CTL_MOD, l->fd, &ev);
        return;
      }
      if (count_connections(false) >= limits.max_connections) {
        SPDLOG_DEBUG("io_loop: refusing {}: {} connections open",
                     address_text(sa), conns.size());
        ::close(fd);
        continue;
      }
      std::shared_ptr<conn_handler> handler;
      try {
        handler = l->factory();
      } catch (const std::exception& e) {
        spdlog::warn("io_loop: handler factory threw: {}", e.what());
      } catch (...) {
        spdlog::warn("io_loop: handler factory threw");
      }
      if (!handler) {
        ::close(fd);
        continue;
      }
      set_nodelay(fd);
      auto c = std::make_shared<conn>(next_id++, std::move(handler),
                                      address_text(sa), false);
      c->fd = fd;
      c->started = clock_type::now();
      {
        std::lock_guard<std::mutex> guard(mtx);
        registry.emplace(c->id, c);
      }
      conns.emplace(c->id, c);
      SPDLOG_DEBUG("io_loop: accepted connection {} from {}", c->id, c->peer);
      guarded_conn(c, [&] { start_accepted(c); });
    }
  }

  /// Puts `c` in the handshaking phase with a new SSL object on its
  /// socket; false (and `c` closed) if OpenSSL cannot.
  bool start_tls(const conn_ptr& c) {
    c->ph = phase::handshaking;
    c->ssl = SSL_new(ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
      auto why = openssl_errors();
      ERR_clear_error();
      close_now(c, "TLS: cannot set up the connection: " + why);
      return false;
    }
    return true;
  }

  /// Watches an accepted socket and opens it (plain) or waits for the
  /// ClientHello (TLS).
  void start_accepted(const conn_ptr& c) {
    if (ctx) {
      if (!start_tls(c))
        return;
      SSL_set_accept_state(c->ssl);
      arm(c->started + limits.handshake_timeout);
      if (!watch(*c))
        close_now(c, "epoll: " + errno_text(errno));
      // The ClientHello arrives with EPOLLIN.
      return;
    }
    c->ph = phase::open; // watch() must register EPOLLIN
    if (!watch(*c)) {
      close_now(c, "epoll: " + errno_text(errno));
      return;
    }
    open(c);
  }

  // -- connecting -------------------------------------------------------------

  /// The task behind connect().
  void start_connect(const conn_ptr& c, const std::string& resolve_error) {
    if (c->ph == phase::closed)
      return;
    if (!resolve_error.empty()) {
      close_now(c, "cannot resolve " + c->peer + ": " + resolve_error);
      return;
    }
    if (count_connections(true) >= limits.max_connections) {
      close_now(c, "too many outbound connections (limit "
                     + std::to_string(limits.max_connections) + ")");
      return;
    }
    conns.emplace(c->id, c);
    arm(c->started + limits.connect_timeout);
    try_next_target(c);
  }

  /// Starts a non-blocking connect to the next resolved address; closes
  /// `c` when none is left.
  void try_next_target(const conn_ptr& c) {
    while (c->next_target < c->targets.size()) {
      auto& t = c->targets[c->next_target++];
      int fd = ::socket(t.addr.ss_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        c->last_error = errno_text(errno);
        continue;
      }
      set_nodelay(fd);
      int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), t.len);
      if (rc == 0 || errno == EINPROGRESS) {
        c->fd = fd;
        c->ph = phase::connecting;
        if (watch(*c))
          return; // EPOLLOUT tells us how it went
        c->last_error = "epoll: " + errno_text(errno);
        c->fd = -1;
      } else {
        c->last_error = errno_text(errno);
      }
      ::close(fd);
    }
    close_now(c, "connect to " + c->peer + " failed: " + c->last_error);
  }

  /// EPOLLOUT on a connecting socket: connected, or failed (next address).
  void finish_connect(const conn_ptr& c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err != 0) {
      c->last_error = errno_text(err);
      release_socket(*c);
      try_next_target(c);
      return;
    }
    SPDLOG_DEBUG("io_loop: connection {} to {} connected", c->id, c->peer);
    if (!ctx) {
      c->ph = phase::open;
      update_events(*c);
      open(c);
      return;
    }
    if (!start_tls(c))
      return;
    SSL_set_connect_state(c->ssl);
    handshake(c);
  }

  // -- TLS --------------------------------------------------------------------

  /// Explains a failed SSL_* call; `saved_errno` is errno right after it.
  std::string ssl_error_text(const conn& c, int ret, int code,
                             int saved_errno) {
    auto errs = openssl_errors();
    ERR_clear_error();
    switch (code) {
      case SSL_ERROR_ZERO_RETURN:
        return "closed by peer";
      case SSL_ERROR_SYSCALL:
        if (!errs.empty())
          return errs;
        if (ret == 0 || saved_errno == 0)
          return "closed by peer";
        return errno_text(saved_errno);
      case SSL_ERROR_SSL: {
        auto v = SSL_get_verify_result(c.ssl);
        if (v != X509_V_OK)
          errs += std::string(" (peer certificate: ")
                  + X509_verify_cert_error_string(v) + ")";
        return errs.empty() ? "protocol error" : errs;
      }
      default:
        return "SSL error " + std::to_string(code)
               + (errs.empty() ? "" : ": " + errs);
    }
  }

  /// Drives the TLS handshake one step; opens `c` when it is done.
  void handshake(const conn_ptr& c) {
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    int saved = errno;
    if (r == 1) {
      ERR_clear_error();
      // FAIL_IF_NO_PEER_CERT makes both checks redundant; they are cheap
      // and keep an unverified peer out even if the context changes.
      if (SSL_get_verify_result(c->ssl) != X509_V_OK
          || !SSL_get0_peer_certificate(c->ssl)) {
        close_now(c, "TLS handshake failed: peer certificate not verified");
        return;
      }
      c->identity = common_name(SSL_get0_peer_certificate(c->ssl));
      SPDLOG_DEBUG("io_loop: connection {} ({}): TLS handshake done ({})",
                   c->id, c->peer, c->identity);
      c->hs_wants_write = false;
      c->ph = phase::open;
      update_events(*c);
      open(c);
      // Application data may have come with the last handshake message and
      // wait, decrypted, where epoll cannot see it.
      if (c->ph == phase::open)
        do_read(c);
      return;
    }
    int code = SSL_get_error(c->ssl, r);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
      ERR_clear_error();
      c->hs_wants_write = code == SSL_ERROR_WANT_WRITE;
      update_events(*c);
      return;
    }
    close_now(c, "TLS handshake failed: " + ssl_error_text(*c, r, code, saved));
  }

  // -- open connections -------------------------------------------------------

  /// The connection is usable: accept send(), start the timers, tell the
  /// handler.
  void open(const conn_ptr& c) {
    {
      std::lock_guard<std::mutex> guard(mtx);
      c->sendable = !c->close_requested;
    }
    auto now = clock_type::now();
    c->last_recv = c->last_send = now;
    arm(now + std::min(limits.ping_interval, limits.idle_timeout));
    SPDLOG_DEBUG("io_loop: connection {} ({}) open", c->id, c->peer);
    try {
      c->handler->on_open(c->id, c->peer, c->identity);
    } catch (const std::exception& e) {
      close_now(c, std::string("on_open failed: ") + e.what());
    } catch (...) {
      close_now(c, "on_open failed");
    }
  }

  /// One epoll event of `c`.
  void handle(const conn_ptr& c, uint32_t what) {
    switch (c->ph) {
      case phase::connecting:
        finish_connect(c);
        return;
      case phase::handshaking:
        handshake(c);
        return;
      case phase::open: {
        if (what & EPOLLERR) {
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
          close_now(c, err ? errno_text(err) : "socket error");
          return;
        }
        bool reading = !c->paused && !c->reading_stopped;
        if ((what & EPOLLHUP) && !reading) {
          close_now(c, "closed by peer");
          return;
        }
        if (reading && (what & (EPOLLIN | EPOLLHUP)))
          do_read(c);
        if (c->ph == phase::open && c->read_wants_write && (what & EPOLLOUT))
          do_read(c);
        if (c->ph == phase::open
            && ((what & EPOLLOUT) || (c->write_wants_read && (what & EPOLLIN))))
          do_write(c);
        return;
      }
      case phase::closing:
        if (what & (EPOLLERR | EPOLLHUP)) {
          close_now(c, c->close_why);
          return;
        }
        if (what & EPOLLIN)
          discard_input(c);
        if (c->ph == phase::closing && (what & EPOLLOUT))
          do_write(c);
        return;
      case phase::closed:
        return;
    }
  }

  // -- reading ----------------------------------------------------------------

  /// Reads and delivers frames until the socket is drained, reading is
  /// paused, or the budget for this turn is used up.
  void do_read(const conn_ptr& c) {
    for (int i = 0; i < read_budget; ++i) {
      if (c->ph != phase::open || c->paused || c->reading_stopped)
        return;
      if (c->ssl) {
        ERR_clear_error();
        int n
          = SSL_read(c->ssl, scratch.data(), static_cast<int>(scratch.size()));
        int saved = errno;
        if (n > 0) {
          if (c->read_wants_write) {
            c->read_wants_write = false;
            update_events(*c);
          }
          c->last_recv = clock_type::now();
          feed(c, scratch.data(), static_cast<size_t>(n));
          continue;
        }
        int code = SSL_get_error(c->ssl, n);
        if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
          ERR_clear_error();
          bool wants_write = code == SSL_ERROR_WANT_WRITE;
          if (wants_write != c->read_wants_write) {
            c->read_wants_write = wants_write;
            update_events(*c);
          }
          return;
        }
        close_now(c, code == SSL_ERROR_ZERO_RETURN
                       ? std::string("closed by peer")
                       : "TLS error: " + ssl_error_text(*c, n, code, saved));
        return;
      }
      auto n = ::recv(c->fd, scratch.data(), scratch.size(), 0);
      if (n > 0) {
        c->last_recv = clock_type::now();
        feed(c, scratch.data(), static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        close_now(c, "closed by peer");
        return;
      }
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        close_now(c, errno_text(errno));
      return;
    }
    // Budget used up. Plain sockets are reported again by epoll; OpenSSL
    // may hold decrypted bytes that epoll knows nothing of.
    if (c->ssl && c->ph == phase::open && !c->in_again) {
      c->in_again = true;
      again.push_back(c);
    }
  }

  /// Cuts `n` bytes at `p` into frames and delivers them.
  void feed(const conn_ptr& c, const uint8_t* p, size_t n) {
    while (n > 0) {
      if (c->ph != phase::open || c->reading_stopped)
        return;
      if (c->paused) {
        c->stash.assign(p, p + n);
        return;
      }
      if (!c->in_body) {
        auto take = std::min(n, c->head.size() - c->head_got);
        std::memcpy(c->head.data() + c->head_got, p, take);
        c->head_got += take;
        p += take;
        n -= take;
        if (c->head_got < c->head.size())
          return;
        c->head_got = 0;
        size_t len = read_be32(c->head.data());
        // Checked before a single byte is allocated for it.
        auto cap = c->greeted ? limits.max_frame_bytes
                              : std::min(limits.max_frame_bytes,
                                         limits.max_first_frame_bytes);
        if (len > cap) {
          close_now(c, std::string(c->greeted ? "frame" : "first frame")
                         + " of " + std::to_string(len)
                         + " bytes exceeds the limit of "
                         + std::to_string(cap));
          return;
        }
        if (len == 0)
          continue; // ping: last_recv is all it is for
        c->in_body = true;
        c->body_len = len;
        c->body = {};
        c->body.reserve(std::min(len, read_chunk));
        continue;
      }
      auto take = std::min(n, c->body_len - c->body.size());
      auto need = c->body.size() + take;
      if (need > c->body.capacity())
        c->body.reserve(
          std::min(c->body_len, std::max(need, 2 * c->body.capacity())));
      c->body.insert(c->body.end(), p, p + take);
      p += take;
      n -= take;
      if (c->body.size() == c->body_len) {
        c->in_body = false;
        deliver(c);
      }
    }
  }

  /// Hands the completed `body` to the handler; pauses reading if the
  /// handler holds too much.
  void deliver(const conn_ptr& c) {
    c->greeted = true;
    auto body = std::move(c->body);
    c->body = {};
    auto size = body.size();
    {
      std::lock_guard<std::mutex> guard(mtx);
      c->unreleased += size;
    }
    try {
      c->handler->on_frame(c->id, std::move(body));
    } catch (const std::exception& e) {
      close_now(c, std::string("on_frame failed: ") + e.what());
      return;
    } catch (...) {
      close_now(c, "on_frame failed");
      return;
    }
    if (c->ph != phase::open)
      return;
    // Decided after the handler ran, so that a handler that releases at
    // once never pauses.
    bool changed = false;
    {
      std::lock_guard<std::mutex> guard(mtx);
      if (c->close_requested) {
        c->reading_stopped = true;
        changed = true;
      } else if (c->unreleased > limits.max_unreleased_bytes) {
        c->paused = true;
        changed = true;
      }
    }
    if (changed)
      update_events(*c);
  }

  /// The task behind release() once a paused connection is back under its
  /// limit.
  void resume(const conn_ptr& c) {
    {
      std::lock_guard<std::mutex> guard(mtx);
      c->resume_posted = false;
      if (!c->paused || c->unreleased > limits.max_unreleased_bytes)
        return;
      c->paused = false;
    }
    if (c->ph != phase::open)
      return;
    auto now = clock_type::now();
    c->last_recv = now;
    arm(now + limits.idle_timeout);
    if (!c->stash.empty()) {
      auto bytes = std::move(c->stash);
      c->stash = {};
      feed(c, bytes.data(), bytes.size());
      if (c->ph != phase::open || c->paused)
        return;
    }
    update_events(*c);
    if (c->ssl)
      do_read(c); // decrypted bytes may wait inside OpenSSL
  }

  // -- writing ----------------------------------------------------------------

  /// Moves frames from send() to the loop's side.
  void take_pending(conn& c) {
    std::vector<out_frame> batch;
    {
      std::lock_guard<std::mutex> guard(mtx);
      batch.swap(c.pending);
      c.flush_posted = false;
    }
    for (auto& f : batch)
      c.out.push_back(std::move(f));
  }

  /// The task behind send().
  void flush(conn_id id) {
    auto it = conns.find(id);
    if (it == conns.end())
      return;
    auto c = it->second;
    take_pending(*c);
    if (c->ph == phase::open || c->ph == phase::closing)
      do_write(c);
  }

  /// Accounts `n` bytes that went out.
  void wrote(conn& c, size_t n) {
    {
      std::lock_guard<std::mutex> guard(mtx);
      c.queued -= std::min(c.queued, n);
    }
    c.last_send = clock_type::now();
  }

  /// Writes as much as the socket takes; moves a flushing close on.
  void do_write(const conn_ptr& c) {
    if (c->write_shut)
      return;
    if (c->ssl)
      write_tls(c);
    else
      write_plain(c);
    if (c->ph == phase::closed)
      return;
    if (c->ph == phase::closing && !c->has_output())
      begin_shutdown(c);
    if (c->ph != phase::closed)
      update_events(*c);
  }

  /// Gathers queued frames into sendmsg() calls.
  void write_plain(const conn_ptr& c) {
    while (!c->out.empty()) {
      std::array<iovec, max_iov> iov;
      int count = 0;
      size_t total = 0;
      size_t off = c->out_off;
      for (auto it = c->out.begin(); it != c->out.end(); ++it) {
        if (count + 2 > max_iov || total >= max_write_batch)
          break;
        auto& f = *it;
        if (off < f.head.size()) {
          iov[count++] = {f.head.data() + off, f.head.size() - off};
          total += f.head.size() - off;
          off = f.head.size();
        }
        auto body_off = off - f.head.size();
        if (body_off < f.body.size()) {
          iov[count++] = {f.body.data() + body_off, f.body.size() - body_off};
          total += f.body.size() - body_off;
        }
        off = 0;
      }
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = static_cast<size_t>(count);
      auto n = ::sendmsg(c->fd, &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          close_now(c, errno_text(errno));
        return;
      }
      consume(*c, static_cast<size_t>(n));
      wrote(*c, static_cast<size_t>(n));
    }
  }

  /// Drops `n` written bytes from the front of `out`.
  void consume(conn& c, size_t n) {
    while (n > 0 && !c.out.empty()) {
      auto rest = c.out.front().size() - c.out_off;
      if (n >= rest) {
        n -= rest;
        c.out.pop_front();
        c.out_off = 0;
      } else {
        c.out_off += n;
        n = 0;
      }
    }
  }

  /// Copies queued frames into `staged` and hands it to SSL_write.
  void write_tls(const conn_ptr& c) {
    for (;;) {
      if (c->staged_off == c->staged.size()) {
        c->staged.clear();
        c->staged_off = 0;
        while (!c->out.empty() && c->staged.size() < tls_chunk) {
          auto& f = c->out.front();
          auto take
            = std::min(f.size() - c->out_off, tls_chunk - c->staged.size());
          auto from = c->out_off;
          // The frame is header then body; copy what falls in each.
          for (size_t i = 0; i < take;) {
            auto pos = from + i;
            if (pos < f.head.size()) {
              auto k = std::min(take - i, f.head.size() - pos);
              c->staged.insert(c->staged.end(), f.head.begin() + pos,
                               f.head.begin() + pos + k);
              i += k;
            } else {
              auto b = pos - f.head.size();
              auto k = take - i;
              c->staged.insert(c->staged.end(), f.body.begin() + b,
                               f.body.begin() + b + k);
              i += k;
            }
          }
          consume(*c, take);
        }
        if (c->staged.empty())
          return;
      }
      ERR_clear_error();
      int n = SSL_write(c->ssl, c->staged.data() + c->staged_off,
                        static_cast<int>(c->staged.size() - c->staged_off));
      int saved = errno;
      if (n > 0) {
        c->write_wants_read = false;
        c->staged_off += static_cast<size_t>(n);
        wrote(*c, static_cast<size_t>(n));
        continue;
      }
      int code = SSL_get_error(c->ssl, n);
      if (code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        c->write_wants_read = code == SSL_ERROR_WANT_READ;
        return;
      }
      close_now(c, "TLS error: " + ssl_error_text(*c, n, code, saved));
      return;
    }
  }
};

// -- io_loop ------------------------------------------------------------------

io_loop::io_loop(io_limits limits, tls_settings tls)
    : impl_(std::make_unique<impl>(limits, tls)) {
  impl_->thread = std::thread([p = impl_.get()] { p->run(); });
}

io_loop::~io_loop() {
  if (impl_->thread.get_id() == std::this_thread::get_id()) {
    // Joining ourselves cannot work, and returning would leave the loop
    // running on freed memory.
    spdlog::critical("io_loop destroyed from its own thread");
    std::abort();
  }
  {
    std::lock_guard<std::mutex> guard(impl_->mtx);
    impl_->stopping = true;
  }
  impl_->wake();
  if (impl_->thread.joinable())
    impl_->thread.join();
  // ~impl closes the sockets; pending tasks are dropped unrun, so no
  // handler hears anything.
}

bool io_loop::in_loop_thread() const {
  return impl_->thread.get_id() == std::this_thread::get_id();
}

uint16_t io_loop::listen(const std::string& host, uint16_t port,
                         handler_factory factory) {
  if (!factory)
    throw std::invalid_argument("io_loop::listen: no handler factory");
  auto where = host_port(host, port);
  std::string error;
  auto addrs = resolve(host, port, true, error);
  if (addrs.empty())
    throw std::runtime_error("cannot listen on " + where + ": " + error);
  int fd = -1;
  for (auto& a : addrs) {
    fd = ::socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
    if (fd < 0) {
      error = errno_text(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) == 0
        && ::listen(fd, SOMAXCONN) == 0)
      break;
    error = errno_text(errno);
    ::close(fd);
    fd = -1;
  }
  if (fd < 0)
    throw std::runtime_error("cannot listen on " + where + ": " + error);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    error = errno_text(errno);
    ::close(fd);
    throw std::runtime_error("cannot listen on " + where + ": " + error);
  }
  uint16_t bound_port
    = bound.ss_family == AF_INET6
        ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
        : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  auto l = std::make_unique<listener>();
  l->fd = fd;
  l->factory = std::move(factory);
  // Registered here rather than by a task, so that the listener belongs to
  // the loop (and is closed by it) from this point on. epoll_ctl is
  // thread-safe; the loop looks up listeners under the lock.
  std::lock_guard<std::mutex> guard(impl_->mtx);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = listener_tag | impl_->listeners.size();
  if (epoll_ctl(impl_->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    error = errno_text(errno);
    ::close(fd);
    throw std::runtime_error("cannot listen on " + where + ": " + error);
  }
  impl_->listeners.push_back(std::move(l));
  SPDLOG_DEBUG("io_loop: listening on {}", host_port(host, bound_port));
  return bound_port;
}

conn_id io_loop::connect(const std::string& host, uint16_t port,
                         std::shared_ptr<conn_handler> handler) {
  if (!handler)
    throw std::invalid_argument("io_loop::connect: no handler");
  auto id = impl_->next_id++;
  auto c = std::make_shared<conn>(id, std::move(handler), host_port(host, port),
                                  true);
  c->started = clock_type::now();
  std::string error;
  c->targets = resolve(host, port, false, error);
  bool w;
  {
    std::lock_guard<std::mutex> guard(impl_->mtx);
    impl_->registry.emplace(id, c);
    w = impl_->post_locked(
      [p = impl_.get(), c, error] { p->start_connect(c, error); });
  }
  if (w)
    impl_->wake();
  return id;
}

bool io_loop::send(conn_id id, std::vector<uint8_t> body) {
  auto& lim = impl_->limits;
  if (body.empty() || body.size() > lim.max_frame_bytes
      || body.size() > std::numeric_limits<uint32_t>::max())
    return false;
  auto size = body.size() + 4;
  bool w = false;
  {
    std::lock_guard<std::mutex> guard(impl_->mtx);
    auto it = impl_->registry.find(id);
    if (it == impl_->registry.end())
      return false;
    auto& c = *it->second;
    if (!c.sendable || c.queued + size > lim.max_queued_bytes)
      return false;
    c.queued += size;
    c.pending.push_back(
      out_frame{be32(static_cast<uint32_t>(body.size())), std::move(body)});
    if (!c.flush_posted) {
      c.flush_posted = true;
      w = impl_->post_locked([p = impl_.get(), id] { p->flush(id); });
    }
  }
  if (w)
    impl_->wake();
  return true;
}

void io_loop::release(conn_id id, size_t bytes) {
  bool w = false;
  {
    std::lock_guard<std::mutex> guard(impl_->mtx);
    auto it = impl_->registry.find(id);
    if (it == impl_->registry.end())
      return;
    auto c = it->second;
    c->unreleased -= std::min(bytes, c->unreleased);
    if (c->paused && !c->resume_posted
        && c->unreleased <= impl_->limits.max_unreleased_bytes) {
      c->resume_posted = true;
      w = impl_->post_locked([p = impl_.get(), c] { p->resume(c); });
    }
  }
  if (w)
    impl_->wake();
}

void io_loop::close(conn_id id, const std::string& why, bool flush) {
  bool w;
  {
    std::lock_guard<std::mutex> guard(impl_->mtx);
    if (auto it = impl_->registry.find(id); it != impl_->registry.end()) {
      // Effective at once: no frame after close() is accepted, none is
      // delivered after the one being delivered now.
      it->second->sendable = false;
      it->second->close_requested = true;
    }
    w = impl_->post_locked(
      [p = impl_.get(), id, why, flush] { p->begin_close(id, why, flush); });
  }
  if (w)
    impl_->wake();
}

const io_limits& io_loop::limits() const {
  return impl_->limits;
}

} // namespace raft_actor::net
