// The byte transport (actors/io_loop.hpp) on loopback: framing, limits,
// backpressure, keep-alive, connect failures, mutual TLS, closing. Peers that
// misbehave are raw sockets driven by the test.
#include "actors/io_loop.hpp"
#include "tests/network/process_cluster.hpp"
#include "tests/network/test_certs.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using raft_actor::net::conn_handler;
using raft_actor::net::conn_id;
using raft_actor::net::handler_factory;
using raft_actor::net::io_limits;
using raft_actor::net::io_loop;
using raft_actor::net::tls_settings;

namespace {

using clock_type = std::chrono::steady_clock;
using bytes = std::vector<uint8_t>;

/// `n` bytes that depend on `seed` and on their position.
bytes pattern(size_t n, uint32_t seed) {
  bytes out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 9));
  return out;
}

/// Records what one connection's handler hears; tests wait on it.
struct recorder : conn_handler {
  std::mutex m;
  std::condition_variable cv;
  /// Set for echo and auto_release (both act on the loop's thread).
  io_loop* loop = nullptr;
  bool auto_release = true;
  bool echo = false;
  conn_id id = 0;
  int opens = 0;
  std::string peer;
  /// The peer certificate's common name (TLS).
  std::string identity;
  std::vector<bytes> frames;
  size_t frame_bytes = 0;
  int closes = 0;
  std::string why;
  /// Frames heard after on_close (must stay 0).
  int late = 0;
  /// SIGPIPE was blocked on the thread that ran on_open.
  bool sigpipe_blocked = false;

  void on_open(conn_id c, const std::string& p,
               const std::string& who) override {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    std::lock_guard<std::mutex> guard(m);
    identity = who;
    sigpipe_blocked = sigismember(&mask, SIGPIPE) == 1;
    id = c;
    ++opens;
    peer = p;
    cv.notify_all();
  }

  void on_frame(conn_id c, bytes body) override {
    if (echo && loop)
      loop->send(c, body);
    if (auto_release && loop)
      loop->release(c, body.size());
    std::lock_guard<std::mutex> guard(m);
    if (closes > 0)
      ++late;
    frame_bytes += body.size();
    frames.push_back(std::move(body));
    cv.notify_all();
  }

  void on_close(conn_id, const std::string& w) override {
    std::lock_guard<std::mutex> guard(m);
    ++closes;
    why = w;
    cv.notify_all();
  }

  /// Waits until `pred(*this)` holds (evaluated under the lock).
  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, timeout, [&] { return pred(*this); });
  }

  bool wait_open() {
    return wait([](recorder& r) { return r.opens > 0; });
  }
  bool wait_closed(std::chrono::milliseconds timeout = 10s) {
    return wait([](recorder& r) { return r.closes > 0; }, timeout);
  }
  template <class F>
  auto locked(F f) {
    std::lock_guard<std::mutex> guard(m);
    return f(*this);
  }
  int close_count() {
    return locked([](recorder& r) { return r.closes; });
  }
  int open_count() {
    return locked([](recorder& r) { return r.opens; });
  }
  std::string close_reason() {
    return locked([](recorder& r) { return r.why; });
  }
  size_t frame_count() {
    return locked([](recorder& r) { return r.frames.size(); });
  }
};

/// The handlers a listener made, in order. Declare it before the loop that
/// uses its factory, so that it outlives the loop.
struct acceptor {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::shared_ptr<recorder>> made;
  /// Configures each new handler.
  std::function<void(recorder&)> setup;

  handler_factory factory() {
    return [this] {
      auto r = std::make_shared<recorder>();
      if (setup)
        setup(*r);
      std::lock_guard<std::mutex> guard(m);
      made.push_back(r);
      cv.notify_all();
      return r;
    };
  }

  /// The `n`th handler made (0-based), or null after `timeout`.
  std::shared_ptr<recorder> nth(size_t n,
                                std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(m);
    if (!cv.wait_for(lock, timeout, [&] { return made.size() > n; }))
      return nullptr;
    return made[n];
  }

  size_t count() {
    std::lock_guard<std::mutex> guard(m);
    return made.size();
  }

  /// Every handler heard on_close at most once and nothing after it.
  void check_once() {
    std::lock_guard<std::mutex> guard(m);
    for (auto& r : made) {
      CHECK(r->close_count() <= 1);
      CHECK(r->locked([](recorder& x) { return x.late; }) == 0);
    }
  }
};

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

/// A blocking TCP socket the test drives by hand.
struct raw_socket {
  int fd = -1;

  /// Connected to 127.0.0.1:`port`.
  explicit raw_socket(uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    auto a = loopback(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  explicit raw_socket(int accepted) : fd(accepted) {}
  ~raw_socket() {
    if (fd >= 0)
      ::close(fd);
  }
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;

  void write(const bytes& data) {
    size_t off = 0;
    while (off < data.size()) {
      auto n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      off += static_cast<size_t>(n);
    }
  }

  /// True once the other side closed (EOF or reset) within `timeout`;
  /// whatever it sends meanwhile (pings) is dropped.
  bool wait_closed(std::chrono::milliseconds timeout) {
    auto deadline = clock_type::now() + timeout;
    char buf[4096];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - clock_type::now());
      if (left.count() <= 0)
        return false;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        continue;
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0)
        return true;
    }
  }
};

/// A listening socket that never accepts (or accepts only when asked).
struct raw_listener {
  int fd = -1;
  uint16_t port = 0;

  raw_listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    // A small receive buffer, inherited by accepted sockets, so that a
    // peer that does not read fills up soon.
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    auto a = loopback(0);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
  ~raw_listener() { ::close(fd); }
  raw_listener(const raw_listener&) = delete;
  raw_listener& operator=(const raw_listener&) = delete;

  int accept_one() { return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC); }
};

/// Resident set size of this process.
size_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  size_t pages_total = 0;
  size_t pages_resident = 0;
  in >> pages_total >> pages_resident;
  return pages_resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A length-prefixed frame as it goes over the wire.
bytes wire_frame(const bytes& body) {
  auto n = static_cast<uint32_t>(body.size());
  bytes out(4 + body.size());
  for (int i = 0; i < 4; ++i)
    out[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (24 - 8 * i));
  std::copy(body.begin(), body.end(), out.begin() + 4);
  return out;
}

/// The frames test 1 and the TLS test send: small, 64 KiB, several MiB, and
/// many small ones.
std::vector<bytes> mixed_frames(size_t big, size_t small_count) {
  std::vector<bytes> out;
  out.push_back(pattern(1, 1));
  out.push_back(pattern(64 * 1024, 2));
  out.push_back(pattern(big, 3));
  for (size_t i = 0; i < small_count; ++i)
    out.push_back(pattern(1 + i % 200, static_cast<uint32_t>(i + 10)));
  return out;
}

/// Sends `frames` from `client` over `id` and checks that `r` hears them
/// back (echoed), intact and in order.
void exchange(io_loop& client, conn_id id, recorder& r,
              const std::vector<bytes>& frames) {
  for (auto& f : frames)
    REQUIRE(client.send(id, f));
  REQUIRE(
    r.wait([&](recorder& x) { return x.frames.size() >= frames.size(); }, 30s));
  r.locked([&](recorder& x) {
    REQUIRE(x.frames.size() == frames.size());
    size_t wrong = 0;
    for (size_t i = 0; i < frames.size(); ++i)
      if (x.frames[i] != frames[i])
        ++wrong;
    CHECK(wrong == 0);
    return 0;
  });
}

/// A loop with short timers for the tests that wait on them.
io_limits quick_limits() {
  io_limits l;
  l.connect_timeout = 300ms;
  l.handshake_timeout = 300ms;
  return l;
}

} // namespace

TEST_CASE("plain frames flow both ways intact and in order") {
  acceptor acc;
  io_loop server({}, {});
  acc.setup = [&](recorder& r) {
    r.loop = &server;
    r.echo = true;
  };
  auto port = server.listen("127.0.0.1", 0, acc.factory());
  REQUIRE(port != 0);

  io_loop client({}, {});
  auto r = std::make_shared<recorder>();
  r->loop = &client;
  auto id = client.connect("127.0.0.1", port, r);
  CHECK(id != 0);
  REQUIRE(r->wait_open());
  CHECK(r->peer == "127.0.0.1:" + std::to_string(port));
  auto s = acc.nth(0);
  REQUIRE(s);
  REQUIRE(s->wait_open());
  CHECK(contains(s->peer, "127.0.0.1:"));
  // A peer that goes away while we write must not kill the process; the
  // loop's thread blocks SIGPIPE and nothing else does.
  CHECK(r->locked([](recorder& x) { return x.sigpipe_blocked; }));
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  CHECK(sigismember(&mask, SIGPIPE) == 0);
  struct sigaction action {};
  sigaction(SIGPIPE, nullptr, &action);
  CHECK((action.sa_handler == SIG_DFL));

  exchange(client, id, *r, mixed_frames(5 << 20, 10000));
  CHECK(s->frame_count() == 10003);

  client.close(id, "done");
  REQUIRE(r->wait_closed());
  CHECK(r->close_reason() == "done");
  REQUIRE(s->wait_closed());
  CHECK(s->close_reason() == "closed by peer");
  CHECK(r->close_count() == 1);
  acc.check_once();
}

TEST_CASE("an announced frame over the limit closes the connection before "
          "anything is allocated") {
  acceptor acc;
  io_loop server({}, {}); // max_frame_bytes: 64 MiB
  acc.setup = [&](recorder& r) {
    r.loop = &server;
    r.echo = true;
  };
  auto port = server.listen("127.0.0.1", 0, acc.factory());
  io_loop client({}, {});
  auto good = std::make_shared<recorder>();
  good->loop = &client;
  auto id = client.connect("127.0.0.1", port, good);
  REQUIRE(good->wait_open());

  auto before = rss_bytes();
  {
    raw_socket raw(port);
    raw.write({0xff, 0xff, 0xff, 0xff});
    auto s = acc.nth(1);
    REQUIRE(s);
    REQUIRE(s->wait_closed());
    CHECK(s->close_reason()
          == "first frame of 4294967295 bytes exceeds the limit of 67108864");
    CHECK(raw.wait_closed(5s));
  }
  // One byte over the limit is refused just the same.
  {
    raw_socket raw(port);
    auto len = server.limits().max_frame_bytes + 1;
    raw.write({static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
               static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
    auto s = acc.nth(2);
    REQUIRE(s);
    REQUIRE(s->wait_closed());
    CHECK(contains(s->close_reason(), "exceeds the limit"));
  }
  auto after = rss_bytes();
  CHECK(after < before + (16 << 20));

  // The server carries on with its other connections and new ones.
  REQUIRE(client.send(id, pattern(1000, 7)));
  REQUIRE(good->wait([](recorder& r) { return r.frames.size() == 1; }));
  CHECK(good->close_count() == 0);
  auto again = std::make_shared<recorder>();
  auto id2 = client.connect("127.0.0.1", port, again);
  REQUIRE(again->wait_open());
  REQUIRE(client.send(id2, pattern(10, 8)));
  REQUIRE(again->wait([](recorder& r) { return r.frames.size() == 1; }));
  acc.check_once();
}

TEST_CASE("garbage and truncated frames close the connection once, "
          "without a crash") {
  acceptor acc;
  io_limits lim;
  lim.max_frame_bytes = 1 << 20;
  io_loop server(lim, {});
  acc.setup = [&](recorder& r) { r.loop = &server; };
  auto port = server.listen("127.0.0.1", 0, acc.factory());

  std::mt19937 rng(42);
  const int garbage_peers = 20;
  for (int i = 0; i < garbage_peers; ++i) {
    raw_socket raw(port);
    bytes junk(1 + rng() % 3000);
    for (auto& b : junk)
      b = static_cast<uint8_t>(rng());
    // Some start with a small length, so that a body is being read when
    // the peer goes away.
    if (i % 4 == 0)
      junk[0] = junk[1] = 0;
    raw.write(junk);
  } // closed here
  {
    raw_socket raw(port);
    auto first = wire_frame(pattern(10, 1));
    auto cut = wire_frame(pattern(100, 2));
    cut.resize(4 + 10);
    first.insert(first.end(), cut.begin(), cut.end());
    raw.write(first);
  }
  auto last = acc.nth(garbage_peers);
  REQUIRE(last);
  for (int i = 0; i <= garbage_peers; ++i)
    REQUIRE(acc.nth(static_cast<size_t>(i))->wait_closed());
  CHECK(last->close_reason() == "closed by peer");
  last->locked([](recorder& r) {
    REQUIRE(r.frames.size() == 1);
    CHECK(r.frames[0] == pattern(10, 1));
    return 0;
  });
  std::this_thread::sleep_for(100ms);
  CHECK(acc.count() == garbage_peers + 1);
  acc.check_once();

  // Still serving.
  io_loop client({}, {});
  auto r = std::make_shared<recorder>();
  auto id = client.connect("127.0.0.1", port, r);
  REQUIRE(r->wait_open());
  REQUIRE(client.send(id, pattern(5, 5)));
  auto s = acc.nth(garbage_peers + 1);
  REQUIRE(s);
  REQUIRE(s->wait([](recorder& x) { return x.frames.size() == 1; }));
}

TEST_CASE("send refuses what it must") {
  io_limits lim;
  lim.max_frame_bytes = 64 * 1024;
  lim.max_queued_bytes = 32 * 1024;
  io_loop client(lim, {});

  // Never open: nobody listens there.
  auto nowhere = std::make_shared<recorder>();
  auto port = raft_actor::test::free_ports(1).at(0);
  auto dead = client.connect("127.0.0.1", port, nowhere);
  CHECK_FALSE(client.send(dead, pattern(10, 1)));
  CHECK_FALSE(client.send(12345678, pattern(10, 1)));

  // A peer that accepts and never reads.
  raw_listener peer;
  auto r = std::make_shared<recorder>();
  auto id = client.connect("127.0.0.1", peer.port, r);
  raw_socket accepted(peer.accept_one());
  REQUIRE(accepted.fd >= 0);
  REQUIRE(r->wait_open());

  CHECK_FALSE(client.send(id, {}));
  CHECK_FALSE(client.send(id, pattern(64 * 1024 + 1, 1)));
  CHECK(client.send(id, pattern(64 * 1024, 1)) == false); // > queue limit
  CHECK(client.send(id, pattern(16 * 1024, 1)));

  // Fill the kernel's buffers, then the queue.
  bool refused = false;
  for (int i = 0; i < 100000 && !refused; ++i)
    refused = !client.send(id, pattern(1024, static_cast<uint32_t>(i)));
  CHECK(refused);

  client.close(id, "bye");
  REQUIRE(r->wait_closed());
  CHECK_FALSE(client.send(id, pattern(10, 1)));
  REQUIRE(nowhere->wait_closed());
  CHECK_FALSE(client.send(dead, pattern(10, 1)));
  CHECK(nowhere->open_count() == 0);
}

TEST_CASE("a handler that does not release stops the reading") {
  acceptor acc;
  io_limits lim;
  lim.max_unreleased_bytes = 10000;
  io_loop server(lim, {});
  acc.setup = [&](recorder& r) {
    r.loop = &server;
    r.auto_release = false;
  };
  auto port = server.listen("127.0.0.1", 0, acc.factory());
  io_loop client({}, {});
  auto r = std::make_shared<recorder>();
  auto id = client.connect("127.0.0.1", port, r);
  REQUIRE(r->wait_open());

  const size_t total = 100;
  for (size_t i = 0; i < total; ++i)
    REQUIRE(client.send(id, pattern(1000, static_cast<uint32_t>(i))));
  auto s = acc.nth(0);
  REQUIRE(s);
  // 10 frames reach the limit, the 11th goes over it; then nothing.
  REQUIRE(s->wait([](recorder& x) { return x.frames.size() >= 11; }));
  std::this_thread::sleep_for(300ms);
  CHECK(s->frame_count() == 11);

  size_t released = 0;
  for (int round = 0; round < 100; ++round) {
    auto got = s->locked([](recorder& x) { return x.frame_bytes; });
    CHECK(got - released <= 11000);
    if (s->frame_count() == total)
      break;
    server.release(s->id, got - released);
    released = got;
    REQUIRE(s->wait([&](recorder& x) { return x.frame_bytes > released; }));
  }
  s->locked([&](recorder& x) {
    REQUIRE(x.frames.size() == total);
    for (size_t i = 0; i < total; ++i)
      CHECK(x.frames[i] == pattern(1000, static_cast<uint32_t>(i)));
    return 0;
  });
  CHECK(s->close_count() == 0);
}

TEST_CASE("pings keep a quiet connection open; a silent peer is dropped") {
  acceptor acc;
  io_limits lim;
  // (A wide ratio: a loaded machine may stall the loop for a while.)
  lim.ping_interval = 200ms;
  lim.idle_timeout = 1500ms;
  io_loop server(lim, {});
  auto port = server.listen("127.0.0.1", 0, acc.factory());
  io_loop client(lim, {});
  auto r = std::make_shared<recorder>();
  client.connect("127.0.0.1", port, r);
  REQUIRE(r->wait_open());
  auto s = acc.nth(0);
  REQUIRE(s);

  auto start = clock_type::now();
  raw_socket silent(port);
  auto quiet = acc.nth(1);
  REQUIRE(quiet);
  REQUIRE(quiet->wait_closed(6s));
  auto took = clock_type::now() - start;
  CHECK(contains(quiet->close_reason(), "idle for"));
  CHECK(took >= 1400ms);
  CHECK(took < 5s);
  CHECK(silent.wait_closed(2s));

  std::this_thread::sleep_until(start + 3500ms);
  CHECK(r->close_count() == 0);
  CHECK(s->close_count() == 0);
  CHECK(s->frame_count() == 0); // pings never reach handlers
  acc.check_once();
}

TEST_CASE("failed connects are reported") {
  SUBCASE("refused") {
    io_loop client({}, {});
    auto r = std::make_shared<recorder>();
    auto port = raft_actor::test::free_ports(1).at(0);
    client.connect("127.0.0.1", port, r);
    REQUIRE(r->wait_closed(5s));
    CHECK(r->close_reason()
          == "connect to 127.0.0.1:" + std::to_string(port)
               + " failed: Connection refused");
    CHECK(r->open_count() == 0);
  }
  SUBCASE("a host name resolves") {
    // If "localhost" gives ::1 first, that attempt is refused (the server
    // listens on 127.0.0.1 only) and the next address is tried.
    acceptor acc;
    io_loop server({}, {});
    auto port = server.listen("127.0.0.1", 0, acc.factory());
    io_loop client({}, {});
    auto r = std::make_shared<recorder>();
    client.connect("localhost", port, r);
    REQUIRE(r->wait_open());
    CHECK(r->peer == "localhost:" + std::to_string(port));
    REQUIRE(acc.nth(0));
  }
  SUBCASE("TLS peer that never answers times out") {
    raft_actor::test::scratch_dir dir;
    auto ca = raft_actor::test::make_ca(dir.path, "ca");
    auto leaf = raft_actor::test::make_leaf(dir.path, ca, "client");
    io_loop client(quick_limits(), {true, leaf.cert, leaf.key, leaf.ca});
    raw_listener mute; // the kernel completes the TCP handshake; no more
    auto r = std::make_shared<recorder>();
    auto start = clock_type::now();
    client.connect("127.0.0.1", mute.port, r);
    REQUIRE(r->wait_closed(3s));
    auto took = clock_type::now() - start;
    CHECK(r->close_reason()
          == "connect to 127.0.0.1:" + std::to_string(mute.port)
               + " timed out");
    CHECK(took >= 290ms);
    CHECK(took < 3s);
    CHECK(r->open_count() == 0);
  }
}

TEST_CASE("mutual TLS") {
  namespace t = raft_actor::test;
  t::scratch_dir dir;
  auto ca = t::make_ca(dir.path, "ca");
  auto srv = t::make_leaf(dir.path, ca, "server");
  auto cli = t::make_leaf(dir.path, ca, "client");
  tls_settings server_tls{true, srv.cert, srv.key, srv.ca};
  tls_settings client_tls{true, cli.cert, cli.key, cli.ca};

  acceptor acc;
  io_loop server(quick_limits(), server_tls);
  acc.setup = [&](recorder& r) {
    r.loop = &server;
    r.echo = true;
  };
  auto port = server.listen("127.0.0.1", 0, acc.factory());

  SUBCASE("same CA: frames flow") {
    io_loop client({}, client_tls);
    auto r = std::make_shared<recorder>();
    r->loop = &client;
    auto id = client.connect("127.0.0.1", port, r);
    REQUIRE(r->wait_open());
    auto s = acc.nth(0);
    REQUIRE(s);
    REQUIRE(s->wait_open());
    // Each side learns the common name of the other's certificate.
    CHECK(s->wait([](recorder& x) { return x.identity == "client"; }));
    CHECK(r->wait([](recorder& x) { return x.identity == "server"; }));
    exchange(client, id, *r, mixed_frames(3 << 20, 2000));
    client.close(id, "done", true);
    REQUIRE(r->wait_closed());
    CHECK(r->close_reason() == "done");
    REQUIRE(s->wait_closed());
    CHECK(s->close_reason() == "closed by peer");
  }

  SUBCASE("a certificate from another CA is refused") {
    auto evil = t::make_ca(dir.path, "evil");
    auto mallory = t::make_leaf(dir.path, evil, "mallory");
    // Mallory trusts our CA, so only the server's check can stop her.
    io_loop client({}, {true, mallory.cert, mallory.key, ca + ".pem"});
    auto r = std::make_shared<recorder>();
    r->loop = &client;
    auto id = client.connect("127.0.0.1", port, r);
    auto s = acc.nth(0);
    REQUIRE(s);
    REQUIRE(s->wait_closed());
    CHECK(s->open_count() == 0);
    CHECK(contains(s->close_reason(), "TLS handshake failed"));
    // With TLS 1.3 the client may finish its side first; it hears the
    // server's alert at the latest when it sends.
    client.send(id, pattern(10, 1));
    REQUIRE(r->wait_closed());
    CHECK(s->frame_count() == 0);

    // Trusting only her own CA, she refuses the server as well.
    io_loop client2({}, {true, mallory.cert, mallory.key, mallory.ca});
    auto r2 = std::make_shared<recorder>();
    client2.connect("127.0.0.1", port, r2);
    REQUIRE(r2->wait_closed());
    CHECK(r2->open_count() == 0);
    CHECK(contains(r2->close_reason(), "certificate"));
    auto s2 = acc.nth(1);
    REQUIRE(s2);
    REQUIRE(s2->wait_closed());
    CHECK(s2->open_count() == 0);
  }

  SUBCASE("plaintext garbage is closed") {
    raw_socket raw(port);
    std::string get = "GET / HTTP/1.0\r\n\r\n";
    raw.write(bytes(get.begin(), get.end()));
    auto s = acc.nth(0);
    REQUIRE(s);
    REQUIRE(s->wait_closed());
    CHECK(s->open_count() == 0);
    CHECK(contains(s->close_reason(), "TLS handshake failed"));
    CHECK(raw.wait_closed(2s));
  }

  SUBCASE("a peer that never handshakes is closed") {
    auto start = clock_type::now();
    raw_socket raw(port);
    auto s = acc.nth(0);
    REQUIRE(s);
    REQUIRE(s->wait_closed(3s));
    auto took = clock_type::now() - start;
    CHECK(s->close_reason() == "TLS handshake not finished within 300 ms");
    CHECK(took >= 290ms);
    CHECK(took < 3s);
    CHECK(s->open_count() == 0);
    CHECK(raw.wait_closed(2s));
  }

  SUBCASE("unusable files are named") {
    auto message = [](const tls_settings& tls) {
      try {
        io_loop broken({}, tls);
      } catch (const std::runtime_error& e) {
        return std::string(e.what());
      }
      return std::string("no exception");
    };
    auto missing = dir.path + "/missing.pem";
    auto m1 = message({true, missing, cli.key, cli.ca});
    CHECK(contains(m1, missing));
    CHECK(contains(m1, "No such file"));
    auto m2 = message({true, cli.cert, cli.key, missing});
    CHECK(contains(m2, missing));
    auto m3 = message({true, cli.cert, srv.key, cli.ca});
    CHECK(contains(m3, srv.key));
    CHECK(contains(m3, "mismatch"));
    auto m4 = message({true, "", cli.key, cli.ca});
    CHECK(contains(m4, "required"));
  }
  acc.check_once();
}

TEST_CASE("closing") {
  acceptor acc;
  io_loop server({}, {});
  acc.setup = [&](recorder& r) { r.loop = &server; };
  auto port = server.listen("127.0.0.1", 0, acc.factory());

  SUBCASE("with flush, queued frames go out first") {
    io_loop client({}, {});
    auto r = std::make_shared<recorder>();
    auto id = client.connect("127.0.0.1", port, r);
    REQUIRE(r->wait_open());
    size_t sent = 0;
    for (uint32_t i = 0; i < 50; ++i) {
      REQUIRE(client.send(id, pattern(100 * 1024, i)));
      sent += 100 * 1024;
    }
    REQUIRE(client.send(id, pattern(8 << 20, 99)));
    sent += 8 << 20;
    client.close(id, "bye", true);
    CHECK_FALSE(client.send(id, pattern(10, 1)));
    REQUIRE(r->wait_closed());
    CHECK(r->close_reason() == "bye");
    auto s = acc.nth(0);
    REQUIRE(s);
    REQUIRE(s->wait_closed());
    CHECK(s->close_reason() == "closed by peer");
    CHECK(s->locked([](recorder& x) { return x.frame_bytes; }) == sent);
    CHECK(s->frame_count() == 51);
    std::this_thread::sleep_for(50ms);
    CHECK(r->close_count() == 1);
  }

  SUBCASE("without flush, at once; twice is once") {
    io_loop client({}, {});
    auto r = std::make_shared<recorder>();
    auto id = client.connect("127.0.0.1", port, r);
    REQUIRE(r->wait_open());
    client.close(id, "now");
    client.close(id, "again");
    REQUIRE(r->wait_closed());
    CHECK(r->close_reason() == "now");
    auto s = acc.nth(0);
    REQUIRE(s);
    REQUIRE(s->wait_closed());
    CHECK(s->close_reason() == "closed by peer");
    std::this_thread::sleep_for(50ms);
    CHECK(r->close_count() == 1);
  }

  SUBCASE("a handler closes from inside on_frame") {
    /// Closes its connection on the first frame.
    struct closer : recorder {
      void on_frame(conn_id c, bytes body) override {
        loop->close(c, "enough");
        recorder::on_frame(c, std::move(body));
      }
    };
    auto c = std::make_shared<closer>();
    io_loop server2({}, {});
    c->loop = &server2;
    auto port2 = server2.listen("127.0.0.1", 0, [c] { return c; });
    io_loop client({}, {});
    auto r = std::make_shared<recorder>();
    auto id = client.connect("127.0.0.1", port2, r);
    REQUIRE(r->wait_open());
    // One write, so that the server reads many frames in one go and must
    // stop delivering in the middle of them.
    bytes burst;
    for (uint32_t i = 0; i < 100; ++i) {
      auto f = wire_frame(pattern(100, i));
      burst.insert(burst.end(), f.begin(), f.end());
    }
    REQUIRE(client.send(id, pattern(1, 1)));
    REQUIRE(c->wait_closed());
    CHECK(c->close_reason() == "enough");
    CHECK(c->frame_count() == 1);
    REQUIRE(r->wait_closed());
    CHECK(r->close_reason() == "closed by peer");

    auto c2 = std::make_shared<closer>();
    c2->loop = &server2;
    auto port3 = server2.listen("127.0.0.1", 0, [c2] { return c2; });
    raw_socket raw(port3);
    raw.write(burst);
    REQUIRE(c2->wait_closed());
    CHECK(c2->frame_count() == 1);
    CHECK(raw.wait_closed(2s));
    std::this_thread::sleep_for(50ms);
    CHECK(c->close_count() == 1);
    CHECK(c2->close_count() == 1);
  }

  SUBCASE("destroying the loop calls no handler") {
    auto r = std::make_shared<recorder>();
    auto r2 = std::make_shared<recorder>();
    auto client = std::make_unique<io_loop>(io_limits{}, tls_settings{});
    client->connect("127.0.0.1", port, r);
    REQUIRE(r->wait_open());
    auto id2 = client->connect("127.0.0.1", port, r2);
    REQUIRE(r2->wait_open());
    client->send(id2, pattern(4 << 20, 1)); // probably still queued
    auto start = clock_type::now();
    client.reset();
    CHECK(clock_type::now() - start < 3s);
    CHECK(r->close_count() == 0);
    CHECK(r2->close_count() == 0);
    CHECK(r.use_count() == 1); // the loop let go of its handlers
    for (size_t i = 0; i < 2; ++i) {
      auto s = acc.nth(i);
      REQUIRE(s);
      REQUIRE(s->wait_closed());
    }
  }
  acc.check_once();
}

TEST_CASE("connections beyond max_connections are closed at once") {
  acceptor acc;
  io_limits lim;
  lim.max_connections = 2;
  io_loop server(lim, {});
  auto port = server.listen("127.0.0.1", 0, acc.factory());
  raw_socket a(port);
  REQUIRE(acc.nth(0));
  raw_socket b(port);
  REQUIRE(acc.nth(1));
  raw_socket c(port);
  CHECK(c.wait_closed(2s));
  CHECK(acc.count() == 2);
  CHECK(acc.nth(0)->close_count() == 0);
  CHECK(acc.nth(1)->close_count() == 0);

  // A freed slot can be used again.
  ::shutdown(a.fd, SHUT_RDWR);
  REQUIRE(acc.nth(0)->wait_closed());
  raw_socket d(port);
  REQUIRE(acc.nth(2));
  acc.check_once();
}

TEST_CASE("the first frame of a connection has a limit of its own") {
  acceptor acc;
  io_limits lim;
  lim.max_first_frame_bytes = 64;
  io_loop server(lim, {});
  acc.setup = [&](recorder& r) { r.loop = &server; };
  auto port = server.listen("127.0.0.1", 0, acc.factory());
  io_loop client({}, {});
  // 64 bytes first, then something big: fine.
  auto ok = std::make_shared<recorder>();
  auto id = client.connect("127.0.0.1", port, ok);
  REQUIRE(ok->wait_open());
  REQUIRE(client.send(id, pattern(64, 1)));
  REQUIRE(client.send(id, pattern(1 << 20, 2)));
  auto s1 = acc.nth(0);
  REQUIRE(s1);
  REQUIRE(s1->wait([](recorder& r) { return r.frames.size() == 2; }));
  // 65 bytes first: closed before anything else is read.
  auto bad = std::make_shared<recorder>();
  auto id2 = client.connect("127.0.0.1", port, bad);
  REQUIRE(bad->wait_open());
  REQUIRE(client.send(id2, pattern(65, 3)));
  auto s2 = acc.nth(1);
  REQUIRE(s2);
  REQUIRE(s2->wait_closed());
  CHECK(contains(s2->close_reason(),
                 "first frame of 65 bytes exceeds the limit of 64"));
  CHECK(s2->frames.empty());
}
