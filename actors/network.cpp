#include "actors/network.hpp"

#include "messages/caf_types.hpp"

#include "actors/io_loop.hpp"
#include "actors/wire.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <sys/resource.h>

namespace raft_actor {

// -- configuration ------------------------------------------------------------

namespace {

bool readable(const std::string& path) {
  std::ifstream in(path);
  return in.good();
}

/// OpenSSL's reason for the latest failure.
std::string openssl_reason() {
  auto code = ERR_get_error();
  ERR_clear_error();
  if (code == 0)
    return "unknown reason";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

/// Loads the TLS files the way CAF will, so that a bad file fails here
/// with a clear message. (CAF loads them only on the first connection: a
/// bad key there aborts a running node, or hangs a connecting one.)
std::string check_tls_files(const std::string& cert, const std::string& key,
                            const std::string& ca) {
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_method()),
                                                   SSL_CTX_free);
  if (!ctx)
    return "cannot create a TLS context: " + openssl_reason();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1)
    return "cannot use certificate " + cert + ": " + openssl_reason();
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM)
      != 1)
    return "cannot use private key " + key + ": " + openssl_reason();
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return "private key " + key + " does not match certificate " + cert;
  if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1)
    return "cannot use CA file " + ca + ": " + openssl_reason();
  return {};
}

} // namespace

std::string network_config::validate() const {
  std::string host;
  uint16_t port = 0;
  if (!split_address(listen, host, port))
    return "listen address \"" + listen + "\" is not host:port";
  if (tls) {
    // CAF falls back to anonymous, unauthenticated ciphers without these:
    // refuse instead.
    if (certificate.empty() || private_key.empty() || ca_file.empty())
      return "TLS needs a certificate, a private key and the cluster CA "
             "(or turn TLS off for local development)";
    for (const auto* f : {&certificate, &private_key, &ca_file})
      if (!readable(*f))
        return "cannot read TLS file " + *f;
    if (auto why = check_tls_files(certificate, private_key, ca_file);
        !why.empty())
      return why;
  }
  if (reconnect_min.count() <= 0 || reconnect_max < reconnect_min)
    return "reconnect backoff must satisfy 0 < min <= max";
  if (request_timeout.count() <= 0 || connect_timeout.count() <= 0)
    return "request and connect timeouts must be positive";
  if (heartbeat_interval.count() <= 0
      || connection_timeout <= heartbeat_interval)
    return "connection_timeout must exceed a positive heartbeat_interval";
  if (max_message_bytes == 0 || max_messages_per_second == 0)
    return "message limits must be positive";
  return {};
}

bool split_address(const std::string& address, std::string& host,
                   uint16_t& port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    return false;
  host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2); // [v6]:port
  unsigned long value = 0;
  for (auto i = colon + 1; i < address.size(); ++i) {
    char ch = address[i];
    if (ch < '0' || ch > '9')
      return false;
    value = value * 10 + static_cast<unsigned long>(ch - '0');
    if (value > 65535)
      return false;
  }
  port = static_cast<uint16_t>(value);
  return true;
}

void configure_network(caf::actor_system_config& cfg,
                       const network_config& net) {
  if (auto why = net.validate(); !why.empty())
    throw std::invalid_argument("invalid network_config: " + why);
  add_message_types(cfg);
  add_node_types(cfg);
}

} // namespace raft_actor

// -- connection events --------------------------------------------------------

namespace raft_actor::detail {

/// A connection is usable (for an outbound one: connected; the peer's hello
/// has yet to come).
struct conn_opened {
  net::conn_id conn = 0;
  std::string peer;
  /// The common name of the peer's certificate (TLS).
  std::string identity;
};

/// A frame arrived.
struct conn_frame {
  net::conn_id conn = 0;
  std::vector<uint8_t> body;
};

/// A connection is gone (or never opened).
struct conn_closed {
  net::conn_id conn = 0;
  std::string why;
};

} // namespace raft_actor::detail

// (Local only: the io_loop's thread hands them to actors of this process.)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::detail::conn_opened)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::detail::conn_frame)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(raft_actor::detail::conn_closed)

namespace raft_actor {

namespace {

using detail::conn_closed;
using detail::conn_frame;
using detail::conn_opened;

/// Passes a connection's events to an actor, and sends our hello first
/// thing. Holds the actor weakly: events for an actor that is gone are
/// dropped.
class forward_handler : public net::conn_handler {
public:
  forward_handler(caf::actor_addr target, net::io_loop* loop,
                  std::vector<uint8_t> hello)
      : target_(std::move(target)), loop_(loop), hello_(std::move(hello)) {}

  void on_open(net::conn_id id, const std::string& peer,
               const std::string& identity) override {
    if (!tell(conn_opened{id, peer, identity})) {
      loop_->close(id, "the local endpoint stopped");
      return;
    }
    loop_->send(id, hello_);
  }

  void on_frame(net::conn_id id, std::vector<uint8_t> body) override {
    if (!tell(conn_frame{id, std::move(body)}))
      loop_->close(id, "the local endpoint stopped");
  }

  void on_close(net::conn_id id, const std::string& why) override {
    tell(conn_closed{id, why});
  }

private:
  template <class T>
  bool tell(T&& x) {
    auto a = caf::actor_cast<caf::actor>(target_);
    if (!a)
      return false;
    caf::anon_send(a, std::forward<T>(x));
    return true;
  }

  caf::actor_addr target_;
  net::io_loop* loop_;
  std::vector<uint8_t> hello_;
};

/// A loop that may be released anywhere: the last reference to it can be
/// dropped on its own thread (a handler's short-lived handle to an actor
/// that nobody else holds any more ends the actor, and with it the
/// state that owns the loop); a loop cannot join itself, so it is then
/// destroyed on a thread of its own.
std::shared_ptr<net::io_loop> make_loop(const net::io_limits& limits,
                                        const net::tls_settings& tls) {
  return std::shared_ptr<net::io_loop>(
    new net::io_loop(limits, tls), [](net::io_loop* l) {
      if (l->in_loop_thread())
        std::thread([l] { delete l; }).detach();
      else
        delete l;
    });
}

/// The io_loop settings that `net` implies.
net::io_limits limits_of(const network_config& net) {
  net::io_limits l;
  l.max_frame_bytes = net.max_message_bytes + wire::frame_overhead;
  // The first frame is a hello (a few dozen bytes): nobody gets to send a
  // big frame before saying who it is.
  l.max_first_frame_bytes = 4096;
  l.max_unreleased_bytes = 2 * l.max_frame_bytes;
  l.max_queued_bytes = 4 * l.max_frame_bytes;
  l.connect_timeout = net.connect_timeout;
  l.handshake_timeout = net.connect_timeout;
  l.ping_interval = net.heartbeat_interval;
  l.idle_timeout = net.connection_timeout;
  // Leave half of the process's descriptors to everything else (storage
  // files above all: running out there stops the node).
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0
      && files.rlim_cur != RLIM_INFINITY)
    l.max_connections = std::max<size_t>(16, files.rlim_cur / 2);
  return l;
}

net::tls_settings tls_of(const network_config& net) {
  return {net.tls, net.certificate, net.private_key, net.ca_file};
}

/// At most one warning per second per kind; counts what it swallowed.
class warn_limiter {
public:
  void warn(caf::actor_clock::time_point now, const std::string& kind,
            node_id self, term_t term, const std::string& text) {
    auto& w = by_kind_[kind];
    if (now - w.last < std::chrono::seconds(1)) {
      ++w.suppressed;
      return;
    }
    SPDLOG_WARN("node {} term {}: {}{}", self, term, text,
                w.suppressed ? " (and " + std::to_string(w.suppressed)
                                 + " more like it in the last second)"
                             : std::string{});
    w.last = now;
    w.suppressed = 0;
  }

private:
  struct entry {
    caf::actor_clock::time_point last{};
    uint64_t suppressed = 0;
  };
  std::map<std::string, entry> by_kind_;
};

/// A token bucket (flood control per connection).
struct bucket {
  double tokens = 0;
  caf::actor_clock::time_point refilled{};

  /// Takes a token if there is one, refilling at `rate` per second (up to
  /// one second's worth).
  bool take(caf::actor_clock::time_point now, double rate) {
    auto elapsed = std::chrono::duration<double>(now - refilled).count();
    tokens = std::min(rate, tokens + elapsed * rate);
    refilled = now;
    if (tokens < 1)
      return false;
    tokens -= 1;
    return true;
  }
};

/// How a request kind fails when its connection is lost: a write may
/// have been appended, so its outcome is unknown.
caf::error connection_lost(const std::string& why) {
  return make_error(raft_error::unknown_outcome,
                    "the connection closed before the answer came (" + why
                      + ")");
}

/// Turns a decoded response into what a typed promise delivers.
template <class Result>
void deliver(caf::typed_response_promise<Result>& rp, wire::response& r) {
  if (auto e = std::get_if<wire::error_reply>(&r))
    rp.deliver(wire::from_reply(*e));
  else if (auto x = std::get_if<Result>(&r))
    rp.deliver(std::move(*x));
  else
    rp.deliver(make_error(raft_error::invalid_argument,
                          "the node answered with an unexpected type"));
}

/// A request waiting for its response frame.
struct pending_request {
  net::conn_id conn = 0;
  std::function<void(wire::response&)> done;
  /// When it was sent (a proxy gives up on it after proxy_answer_timeout).
  caf::actor_clock::time_point sent{};
};

// -- the node's network actor -------------------------------------------------

/// Forwards node_metrics to a connection subscribed to them.
using metrics_forwarder_actor = metrics_listener_actor;

metrics_forwarder_actor::behavior_type
metrics_forwarder(metrics_forwarder_actor::pointer self,
                  std::shared_ptr<net::io_loop> loop, net::conn_id conn) {
  return {
    [self, loop, conn](node_metrics& m) {
      if (!loop->send(conn, wire::encode(wire::frame{std::move(m)}))) {
        // Gone, or hopelessly behind: the client learns by losing the
        // connection rather than by silence.
        loop->close(conn, "cannot queue metrics (the client does not read)");
        self->quit();
      }
    },
  };
}

/// Everything the network actor knows about one connection.
struct conn_info {
  /// "host:port" of the other end (once open).
  std::string peer;
  /// We dialled it, to reach node `dialled`.
  bool outbound = false;
  node_id dialled = no_node;
  /// The other end's hello has come: it is node `from` (0: a client).
  bool greeted = false;
  node_id from = no_node;
  /// The common name of the peer's certificate (TLS).
  std::string identity;
  /// Flood control.
  bucket tokens;
  /// Requests passed to the node and not answered yet.
  size_t in_flight = 0;
  /// Its metrics subscription, if any.
  metrics_forwarder_actor metrics;
};

/// What the network actor knows about one peer.
struct peer_link {
  std::string address;
  /// The connection we dialled (0: none) and whether its hello has come.
  net::conn_id out = 0;
  bool out_ready = false;
  /// The latest connection the peer dialled (0: none): used when ours is
  /// not ready, e.g. by a learner that does not know the leader's address.
  net::conn_id in = 0;
  /// Capped exponential backoff after failed attempts.
  caf::timespan backoff{0};
  caf::actor_clock::time_point retry_at{};
  /// Encoded messages waiting for `out` to be ready (see send_rpc).
  std::vector<std::vector<uint8_t>> waiting;
  size_t waiting_bytes = 0;
};

struct network_state {
  node_id self_id = no_node;
  uint64_t cluster_id = 0;
  network_config net;
  std::shared_ptr<net::io_loop> loop;
  std::vector<uint8_t> hello;
  node_actor node;
  term_t term = 0;
  std::set<node_id> members;
  std::map<net::conn_id, conn_info> conns;
  std::map<node_id, peer_link> links;
  uint64_t next_request = 0;
  std::map<uint64_t, pending_request> pending;
  warn_limiter warnings;
  static inline const char* name = "raft_network";
};

/// Names the node a network actor serves (sent by spawn_network_node).
using serve_atom = caf::atom_constant<caf::atom("serve")>;

/// A forwarded write's time is up.
using expire_atom = caf::atom_constant<caf::atom("expire")>;

/// A connection's time to say hello is up.
using hello_atom = caf::atom_constant<caf::atom("hello")>;

/// Requests one connection may have waiting at the node; more are answered
/// `overloaded` (one client must not use up the node's capacity).
constexpr size_t max_in_flight = 1000;

/// How long the network actor waits for the node's answer to a request
/// (the node answers within its own request_timeout; this only bounds a
/// node that broke that promise).
constexpr auto node_answer_timeout = std::chrono::seconds(60);

/// The network actor's interface: the router's, plus what it gets from
/// its io_loop, its timers and the node it serves.
using network_actor = router_actor::extend<
  caf::reacts_to<conn_opened>, caf::reacts_to<conn_frame>,
  caf::reacts_to<conn_closed>, caf::reacts_to<serve_atom, node_actor>,
  caf::reacts_to<expire_atom, uint64_t>,
  caf::reacts_to<hello_atom, net::conn_id>>;

using network_pointer = network_actor::stateful_pointer<network_state>;

std::shared_ptr<net::conn_handler> make_handler(network_pointer self) {
  auto& st = self->state;
  return std::make_shared<forward_handler>(
    caf::actor_cast<caf::actor_addr>(self), st.loop.get(), st.hello);
}

void warn(network_pointer self, const std::string& kind,
          const std::string& text) {
  auto& st = self->state;
  st.warnings.warn(self->clock().now(), kind, st.self_id, st.term, text);
}

/// Closes a connection that broke the protocol, with a rate-limited
/// warning.
void refuse(network_pointer self, net::conn_id conn, const std::string& why) {
  auto& st = self->state;
  auto it = st.conns.find(conn);
  auto who = it == st.conns.end() ? std::string{"?"} : it->second.peer;
  warn(self, "refuse", "closing the connection from " + who + ": " + why);
  st.loop->close(conn, why);
}

/// Starts dialling `id` unless a connection exists or is being made, or the
/// backoff has not passed.
void maybe_connect(network_pointer self, node_id id) {
  auto& st = self->state;
  auto it = st.links.find(id);
  if (it == st.links.end() || it->second.address.empty()) {
    warn(self, "unknown", "no address for node " + std::to_string(id));
    return;
  }
  auto& l = it->second;
  if (l.out != 0 || self->clock().now() < l.retry_at)
    return;
  std::string host;
  uint16_t port = 0;
  if (!split_address(l.address, host, port)) {
    warn(self, "address",
         "node " + std::to_string(id) + " has a malformed address \""
           + l.address + "\"");
    return;
  }
  l.out = st.loop->connect(host, port, make_handler(self));
  l.out_ready = false;
  auto& c = st.conns[l.out];
  c.outbound = true;
  c.dialled = id;
}

/// The connection to send to `id` on (0: none yet; dialling starts).
net::conn_id conn_to(network_pointer self, node_id id) {
  auto& st = self->state;
  auto it = st.links.find(id);
  if (it != st.links.end()) {
    if (it->second.out != 0 && it->second.out_ready)
      return it->second.out;
    if (it->second.out == 0)
      maybe_connect(self, id);
    return it->second.in;
  }
  maybe_connect(self, id);
  return 0;
}

/// Messages for a peer whose connection is being made wait, within these
/// bounds, and go out once it is up (dropped if it fails). Without this the
/// first messages to a peer are lost, e.g. every vote request of a node
/// that starts an election before it ever talked to the others (a fresh
/// voter that was just handed leadership would lose its one chance).
constexpr size_t max_waiting_messages = 256;
constexpr size_t max_waiting_bytes = 4 << 20;

bool send_rpc(network_pointer self, const raft_message& m) {
  auto& st = self->state;
  auto to = header_of(m).to;
  auto conn = conn_to(self, to);
  if (conn != 0)
    return st.loop->send(conn, wire::encode(m));
  auto it = st.links.find(to);
  if (it == st.links.end() || it->second.out == 0)
    return false; // no address, or waiting out a backoff
  auto& l = it->second;
  auto body = wire::encode(m);
  if (l.waiting.size() >= max_waiting_messages
      || l.waiting_bytes + body.size() > max_waiting_bytes)
    return false;
  l.waiting_bytes += body.size();
  l.waiting.push_back(std::move(body));
  return true;
}

/// A Raft RPC from a peer: checked, then passed to the node.
void on_rpc(network_pointer self, conn_info& c, raft_message m) {
  auto& st = self->state;
  const auto& h = header_of(m);
  auto drop = [&](const std::string& kind, const std::string& why) {
    warn(self, kind,
         std::string("dropping ") + message_name(m) + " from node "
           + std::to_string(h.from) + ": " + why);
  };
  if (h.cluster_id != st.cluster_id)
    return drop("cluster",
                "cluster id " + std::to_string(h.cluster_id) + " is not ours");
  if (h.to != st.self_id)
    return drop("addressee", "addressed to node " + std::to_string(h.to));
  if (h.from != c.from)
    return drop("sender",
                "sent on the connection of node " + std::to_string(c.from));
  if (!st.members.empty() && !st.members.count(h.from))
    return drop("member", "not a member of our configuration");
  if (payload_bytes(m) > st.net.max_message_bytes)
    return drop("size", std::to_string(payload_bytes(m))
                          + " payload bytes exceed the limit of "
                          + std::to_string(st.net.max_message_bytes));
  if (!c.tokens.take(self->clock().now(), st.net.max_messages_per_second))
    return drop("flood", "more than "
                           + std::to_string(st.net.max_messages_per_second)
                           + " messages per second");
  st.term = std::max(st.term, term_of(m));
  self->send(st.node, peer_message{std::move(m)});
}

void answer(network_pointer self, net::conn_id conn, uint64_t id,
            wire::response r) {
  auto& st = self->state;
  if (!st.conns.count(conn))
    return; // closed meanwhile
  auto body = wire::encode(wire::response_frame{id, std::move(r)});
  if (body.size() > st.loop->limits().max_frame_bytes)
    body = wire::encode(wire::response_frame{
      id, wire::response{wire::to_reply(
            make_error(raft_error::payload_too_large,
                       "the answer of " + std::to_string(body.size())
                         + " bytes exceeds the connection's frame limit"))}});
  // A client that does not read its answers fills its send queue: it loses
  // the connection rather than an answer silently.
  if (!st.loop->send(conn, std::move(body)))
    refuse(self, conn, "cannot queue an answer (the client does not read)");
}

/// Asks the node and answers on the connection.
template <class Result, class Request>
void ask_node(network_pointer self, net::conn_id conn, uint64_t id,
              Request&& x) {
  if (auto it = self->state.conns.find(conn); it != self->state.conns.end())
    ++it->second.in_flight;
  auto done = [self, conn] {
    auto it = self->state.conns.find(conn);
    if (it != self->state.conns.end() && it->second.in_flight > 0)
      --it->second.in_flight;
  };
  self->request(self->state.node, node_answer_timeout, std::forward<Request>(x))
    .then(
      [self, conn, id, done](Result& r) {
        done();
        answer(self, conn, id, wire::response{std::move(r)});
      },
      [self, conn, id, done](caf::error& e) {
        done();
        if (e == caf::sec::request_timeout)
          e = make_error(raft_error::unknown_outcome,
                         "the node did not answer in time");
        answer(self, conn, id, wire::response{wire::to_reply(e)});
      });
}

/// A client or admin request (or a write a peer passes on).
void on_request(network_pointer self, net::conn_id conn, conn_info& c,
                wire::request_frame& r) {
  auto& st = self->state;
  if (!c.tokens.take(self->clock().now(), st.net.max_messages_per_second)
      || c.in_flight >= max_in_flight) {
    answer(self, conn, r.id,
           wire::to_reply(make_error(raft_error::overloaded,
                                     "too many requests on this connection")));
    return;
  }
  std::visit(
    [&](auto& x) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, wire::subscribe_metrics>) {
        if (c.metrics) {
          answer(self, conn, r.id, wire::response{admin_done{}});
          return;
        }
        c.metrics = self->spawn(metrics_forwarder, st.loop, conn);
        ask_node<admin_done>(self, conn, r.id,
                             admin_subscribe_metrics{c.metrics});
      } else if constexpr (std::is_same_v<T, wire::unsubscribe_metrics>) {
        if (!c.metrics) {
          answer(self, conn, r.id, wire::response{admin_done{}});
          return;
        }
        auto listener = c.metrics;
        c.metrics = nullptr;
        ask_node<admin_done>(self, conn, r.id,
                             admin_unsubscribe_metrics{listener});
        self->send_exit(listener, caf::exit_reason::user_shutdown);
      } else if constexpr (std::is_same_v<T, forwarded_write>) {
        if (c.from == no_node || x.from != c.from || x.to != st.self_id) {
          refuse(self, conn,
                 "a forwarded write from node " + std::to_string(x.from)
                   + " to node " + std::to_string(x.to)
                   + " on the connection of node " + std::to_string(c.from));
          return;
        }
        ask_node<write_result>(self, conn, r.id, std::move(x));
      } else if constexpr (std::is_same_v<T, client_write>) {
        ask_node<write_result>(self, conn, r.id, std::move(x));
      } else if constexpr (std::is_same_v<T, client_read>) {
        ask_node<read_result>(self, conn, r.id, std::move(x));
      } else if constexpr (std::is_same_v<T, admin_get_metrics>) {
        ask_node<node_metrics>(self, conn, r.id, std::move(x));
      } else {
        ask_node<admin_done>(self, conn, r.id, std::move(x));
      }
    },
    r.body);
}

/// A response to a write we passed on to a peer.
void on_response(network_pointer self, net::conn_id conn,
                 wire::response_frame& r) {
  auto& st = self->state;
  auto it = st.pending.find(r.id);
  if (it == st.pending.end() || it->second.conn != conn)
    return; // timed out meanwhile
  auto done = std::move(it->second.done);
  st.pending.erase(it);
  done(r.body);
}

/// The common name a node's certificate must carry.
std::string node_common_name(node_id id) {
  return "node" + std::to_string(id);
}

void on_hello(network_pointer self, net::conn_id conn, conn_info& c,
              const wire::hello& h) {
  auto& st = self->state;
  if (h.from != no_node && h.cluster_id != st.cluster_id)
    return refuse(self, conn,
                  "node " + std::to_string(h.from) + " is of cluster "
                    + std::to_string(h.cluster_id));
  if (h.cluster_id != 0 && h.cluster_id != st.cluster_id)
    return refuse(self, conn,
                  "a client of cluster " + std::to_string(h.cluster_id));
  if (c.outbound && h.from != c.dialled)
    return refuse(self, conn,
                  "dialled node " + std::to_string(c.dialled) + " but node "
                    + std::to_string(h.from) + " answered");
  if (!c.outbound && h.from != no_node && !st.members.empty()
      && !st.members.count(h.from))
    return refuse(self, conn,
                  "node " + std::to_string(h.from) + " is not a member");
  if (h.from == st.self_id && h.from != no_node)
    return refuse(self, conn, "a peer claims to be this node");
  // With TLS a node must hold a certificate made out to it: a client's
  // certificate (or another node's) cannot speak for a member.
  if (st.net.tls && h.from != no_node && c.identity != node_common_name(h.from))
    return refuse(self, conn,
                  "a certificate for \"" + c.identity
                    + "\" cannot speak for node " + std::to_string(h.from)
                    + " (its certificate's common name must be \""
                    + node_common_name(h.from) + "\")");
  c.greeted = true;
  c.from = h.from;
  if (h.from == no_node)
    return;
  auto& l = st.links[h.from];
  if (c.outbound) {
    if (l.out == conn) {
      l.out_ready = true;
      l.backoff = caf::timespan{0};
      for (auto& body : l.waiting)
        st.loop->send(conn, std::move(body));
      l.waiting.clear();
      l.waiting_bytes = 0;
      SPDLOG_INFO("node {} term {}: connected to node {} at {}", st.self_id,
                  st.term, h.from, c.peer);
    }
  } else {
    l.in = conn;
    SPDLOG_INFO("node {} term {}: connection from node {} at {}", st.self_id,
                st.term, h.from, c.peer);
  }
}

void dispatch(network_pointer self, conn_frame& f);

void on_frame(network_pointer self, conn_frame& f) {
  auto& st = self->state;
  auto size = f.body.size();
  // The loop reads on only while the handlers keep up (see io_limits).
  auto release
    = caf::detail::make_scope_guard([&] { st.loop->release(f.conn, size); });
  // Nothing a peer sends may stop this actor (its node would lose the
  // network): e.g. a frame whose decoding runs out of memory costs the
  // sender its connection.
  try {
    dispatch(self, f);
  } catch (const std::exception& e) {
    refuse(self, f.conn, std::string("cannot handle a frame: ") + e.what());
  }
}

void dispatch(network_pointer self, conn_frame& f) {
  auto& st = self->state;
  auto it = st.conns.find(f.conn);
  if (it == st.conns.end())
    return; // closed meanwhile
  auto& c = it->second;
  wire::frame fr;
  if (auto why = wire::decode(f.body, fr); !why.empty())
    return refuse(self, f.conn, "malformed frame: " + why);
  if (!c.greeted) {
    if (auto h = std::get_if<wire::hello>(&fr))
      return on_hello(self, f.conn, c, *h);
    return refuse(self, f.conn,
                  std::string("a ") + wire::kind_name(fr)
                    + " frame before hello");
  }
  switch (fr.index()) {
    case 1:
      if (c.from == no_node)
        return refuse(self, f.conn, "a client sent a Raft message");
      return on_rpc(self, c, std::move(std::get<raft_message>(fr)));
    case 2:
      return on_request(self, f.conn, c, std::get<wire::request_frame>(fr));
    case 3:
      return on_response(self, f.conn, std::get<wire::response_frame>(fr));
    default:
      return refuse(self, f.conn,
                    std::string("an unexpected ") + wire::kind_name(fr)
                      + " frame");
  }
}

void on_closed(network_pointer self, conn_closed& e) {
  auto& st = self->state;
  auto it = st.conns.find(e.conn);
  if (it == st.conns.end())
    return;
  auto c = std::move(it->second);
  st.conns.erase(it);
  if (c.metrics)
    self->send_exit(c.metrics, caf::exit_reason::user_shutdown);
  for (auto p = st.pending.begin(); p != st.pending.end();) {
    if (p->second.conn == e.conn) {
      auto done = std::move(p->second.done);
      p = st.pending.erase(p);
      wire::response r{wire::to_reply(connection_lost(e.why))};
      done(r);
    } else {
      ++p;
    }
  }
  node_id peer = c.outbound ? c.dialled : c.from;
  auto l = st.links.find(peer);
  if (peer == no_node || l == st.links.end())
    return;
  if (l->second.out == e.conn) {
    if (l->second.out_ready) {
      SPDLOG_INFO("node {} term {}: lost the connection to node {}: {}",
                  st.self_id, st.term, peer, e.why);
      l->second.backoff = caf::timespan{0};
      l->second.retry_at = self->clock().now();
    } else {
      auto& b = l->second.backoff;
      b = b.count() == 0 ? caf::timespan{st.net.reconnect_min}
                         : std::min<caf::timespan>(b * 2, st.net.reconnect_max);
      l->second.retry_at = self->clock().now() + b;
      warn(self, "connect " + std::to_string(peer),
           "cannot connect to node " + std::to_string(peer) + " at "
             + l->second.address + ": " + e.why);
    }
    l->second.out = 0;
    l->second.out_ready = false;
    l->second.waiting.clear(); // Raft resends what matters
    l->second.waiting_bytes = 0;
  }
  if (l->second.in == e.conn)
    l->second.in = 0;
  // Forget peers we know nothing about any more (an unconfigured node
  // accepts hellos from any id of its cluster).
  if (l->second.address.empty() && l->second.out == 0 && l->second.in == 0)
    st.links.erase(l);
}

network_actor::behavior_type network(network_pointer self, node_id self_id,
                                     uint64_t cluster_id, network_config net,
                                     std::shared_ptr<net::io_loop> loop) {
  auto& st = self->state;
  st.self_id = self_id;
  st.cluster_id = cluster_id;
  st.net = std::move(net);
  st.loop = std::move(loop);
  st.hello = wire::encode(wire::hello{cluster_id, self_id});
  self->set_down_handler([self](caf::down_msg& d) {
    if (self->state.node && d.source == self->state.node.address())
      self->quit(); // the node stopped: so do its connections
  });
  return {
    [self](peer_message& m) { send_rpc(self, m.message); },
    [self](peer_packet& p) -> caf::result<peer_accepted> {
      if (!send_rpc(self, p.message))
        return make_error(raft_error::unreachable,
                          "no usable connection to node "
                            + std::to_string(header_of(p.message).to));
      return peer_accepted{};
    },
    [self](forwarded_write& w) -> caf::result<write_result> {
      auto& st = self->state;
      auto conn = conn_to(self, w.to);
      if (conn == 0)
        return make_error(raft_error::not_leader,
                          "not connected to the leader (node "
                            + std::to_string(w.to) + ") yet; not appended");
      auto id = ++st.next_request;
      auto body
        = wire::encode(wire::request_frame{id, wire::request{std::move(w)}});
      if (body.size() > st.loop->limits().max_frame_bytes)
        return make_error(raft_error::payload_too_large,
                          "the write does not fit in one message to the "
                          "leader (max_message_bytes)");
      if (!st.loop->send(conn, std::move(body)))
        return make_error(raft_error::not_leader,
                          "cannot send to the leader; not appended");
      auto rp = self->make_response_promise<write_result>();
      st.pending.emplace(id,
                         pending_request{conn, [rp](wire::response& r) mutable {
                                           deliver(rp, r);
                                         }});
      // Give up at the timeout: the write may still commit.
      self->delayed_send(self, st.net.request_timeout, expire_atom::value, id);
      return rp;
    },
    [self](peer_directory& d) {
      auto& st = self->state;
      st.members.clear();
      for (auto& [id, l] : st.links) {
        auto found = d.addresses.find(id);
        auto address
          = found == d.addresses.end() ? std::string{} : found->second;
        if (address == l.address)
          continue;
        // The peer moved or left: stop using what we dialled. (A peer that
        // left may still talk to us on its own connection, e.g. the leader
        // that is adding us as a learner.)
        if (l.out != 0)
          st.loop->close(l.out, "the peer's address changed");
        l.address = address;
        l.out = 0;
        l.out_ready = false;
        l.waiting.clear();
        l.waiting_bytes = 0;
        l.backoff = caf::timespan{0};
        l.retry_at = {};
      }
      for (const auto& [id, address] : d.addresses) {
        st.members.insert(id);
        if (id != st.self_id)
          st.links[id].address = address;
      }
    },
    [self](serve_atom, node_actor& node) {
      // One unit: if either stops, so does the other.
      self->state.node = std::move(node);
      self->monitor(self->state.node);
      self->link_to(self->state.node);
    },
    [self](conn_opened& o) {
      auto& c = self->state.conns[o.conn]; // (new if accepted)
      c.peer = o.peer;
      c.identity = o.identity;
      self->delayed_send(self, self->state.net.connect_timeout,
                         hello_atom::value, o.conn);
    },
    [self](hello_atom, net::conn_id conn) {
      auto it = self->state.conns.find(conn);
      if (it != self->state.conns.end() && !it->second.greeted)
        refuse(self, conn, "no hello in time");
    },
    [self](conn_frame& f) { on_frame(self, f); },
    [self](conn_closed& e) { on_closed(self, e); },
    [self](expire_atom, uint64_t id) {
      auto& st = self->state;
      auto it = st.pending.find(id);
      if (it == st.pending.end())
        return; // answered in time
      auto done = std::move(it->second.done);
      st.pending.erase(it);
      wire::response r{wire::to_reply(make_error(
        raft_error::unknown_outcome,
        "the leader did not answer in time; the write may still commit"))};
      done(r);
    },
  };
}

} // namespace

// -- the client's proxy -------------------------------------------------------

namespace {

/// Asks whether the proxy's connection is ready (its node said hello).
using ready_atom = caf::atom_constant<caf::atom("ready")>;

/// A proxy's full interface.
using proxy_actor = node_client_actor::extend<
  caf::reacts_to<conn_opened>, caf::reacts_to<conn_frame>,
  caf::reacts_to<conn_closed>, caf::replies_to<ready_atom>::with<node_id>>;

/// How long a proxy keeps a request whose answer has not come (beyond the
/// node's own request timeouts): when the table is full, older entries go,
/// as unknown_outcome. (No timer: a pending timer would keep the proxy,
/// and so its connection and a program's exit, alive after its last user
/// let go.)
constexpr auto proxy_answer_timeout = std::chrono::seconds(120);

struct proxy_state {
  std::shared_ptr<net::io_loop> loop;
  net::conn_id conn = 0;
  std::string address;
  /// The node's id once its hello came (0 before).
  node_id node = no_node;
  /// Who waits for the hello.
  std::vector<caf::typed_response_promise<node_id>> waiting;
  uint64_t next_request = 0;
  std::map<uint64_t, pending_request> pending;
  /// Local metrics listeners (one subscription on the wire for all).
  std::vector<metrics_listener_actor> listeners;
  static inline const char* name = "raft_node_proxy";
};

using proxy_pointer = proxy_actor::stateful_pointer<proxy_state>;

/// Sends a request frame and answers `rp` with its response.
template <class Result>
void relay(proxy_pointer self, caf::typed_response_promise<Result> rp,
           wire::request req) {
  auto& st = self->state;
  // Answers that never come (the caller's own timeout has long passed)
  // would otherwise pile up for as long as the connection lives.
  constexpr size_t max_pending = 100000;
  auto now = self->clock().now();
  if (st.pending.size() >= max_pending) {
    for (auto it = st.pending.begin(); it != st.pending.end();) {
      if (now - it->second.sent < proxy_answer_timeout) {
        ++it;
        continue;
      }
      auto done = std::move(it->second.done);
      it = st.pending.erase(it);
      wire::response r{wire::to_reply(make_error(
        raft_error::unknown_outcome, "no answer from the node in time"))};
      done(r);
    }
  }
  if (st.pending.size() >= max_pending) {
    rp.deliver(make_error(raft_error::overloaded,
                          std::to_string(max_pending) + " requests to "
                            + st.address + " are still unanswered"));
    return;
  }
  auto id = ++st.next_request;
  auto body = wire::encode(wire::request_frame{id, std::move(req)});
  if (body.size() > st.loop->limits().max_frame_bytes) {
    rp.deliver(make_error(raft_error::payload_too_large,
                          "the request of " + std::to_string(body.size())
                            + " bytes exceeds max_message_bytes"));
    return;
  }
  if (st.node == no_node || !st.loop->send(st.conn, std::move(body))) {
    rp.deliver(make_error(raft_error::overloaded,
                          "cannot send to the node at " + st.address
                            + " (not connected, or too much unsent)"));
    return;
  }
  st.pending.emplace(
    id, pending_request{
          st.conn, [rp](wire::response& r) mutable { deliver(rp, r); }, now});
  // The caller's own timeout ends its wait; this ends ours.
}

template <class Result, class Request>
caf::result<Result> ask(proxy_pointer self, Request&& x) {
  auto rp = self->make_response_promise<Result>();
  relay(self, rp, wire::request{std::forward<Request>(x)});
  return rp;
}

/// Fails everything waiting and stops.
void proxy_lost(proxy_pointer self, const std::string& why) {
  auto& st = self->state;
  for (auto& rp : st.waiting)
    rp.deliver(
      make_error(raft_error::unreachable,
                 "cannot talk to the node at " + st.address + ": " + why));
  st.waiting.clear();
  auto pending = std::move(st.pending);
  st.pending.clear();
  for (auto& [id, p] : pending) {
    wire::response r{wire::to_reply(connection_lost(why))};
    p.done(r);
  }
  self->quit(make_error(raft_error::unreachable,
                        "lost the connection to " + st.address + ": " + why));
}

proxy_actor::behavior_type proxy(proxy_pointer self,
                                 std::shared_ptr<net::io_loop> loop,
                                 std::string host, uint16_t port) {
  auto& st = self->state;
  st.address = host + ":" + std::to_string(port);
  st.loop = std::move(loop);
  st.conn
    = st.loop->connect(host, port,
                       std::make_shared<forward_handler>(
                         caf::actor_cast<caf::actor_addr>(self), st.loop.get(),
                         wire::encode(wire::hello{0, no_node})));
  self->set_down_handler([self](caf::down_msg& d) {
    auto& ls = self->state.listeners;
    auto it = std::find_if(ls.begin(), ls.end(), [&](const auto& l) {
      return l.address() == d.source;
    });
    if (it == ls.end())
      return;
    ls.erase(it);
    if (ls.empty())
      relay(self, self->make_response_promise<admin_done>(),
            wire::request{wire::unsubscribe_metrics{}});
  });
  // When the actor stops (connection lost, or no one holds it any more),
  // close the connection. (Not through `state`: it may be gone by then.)
  self->attach_functor(
    [loop = std::weak_ptr<net::io_loop>(st.loop), conn = st.conn] {
      if (auto l = loop.lock())
        l->close(conn, "the client is done");
    });
  return {
    [self](ready_atom) -> caf::result<node_id> {
      if (self->state.node != no_node)
        return self->state.node;
      auto rp = self->make_response_promise<node_id>();
      self->state.waiting.push_back(rp);
      return rp;
    },
    [self](conn_opened&) {},
    [self](conn_frame& f) {
      auto& st = self->state;
      auto size = f.body.size();
      auto release = caf::detail::make_scope_guard(
        [&] { st.loop->release(f.conn, size); });
      wire::frame fr;
      if (auto why = wire::decode(f.body, fr); !why.empty()) {
        st.loop->close(st.conn, "malformed frame: " + why);
        return;
      }
      if (auto h = std::get_if<wire::hello>(&fr)) {
        if (h->from == no_node || st.node != no_node) {
          st.loop->close(st.conn, "unexpected hello");
          return;
        }
        st.node = h->from;
        for (auto& rp : st.waiting)
          rp.deliver(st.node);
        st.waiting.clear();
      } else if (auto r = std::get_if<wire::response_frame>(&fr)) {
        auto it = st.pending.find(r->id);
        if (it == st.pending.end())
          return;
        auto done = std::move(it->second.done);
        st.pending.erase(it);
        done(r->body);
      } else if (auto m = std::get_if<node_metrics>(&fr)) {
        for (auto& l : st.listeners)
          self->send(l, *m);
      } else {
        st.loop->close(st.conn, std::string("unexpected ") + wire::kind_name(fr)
                                  + " frame");
      }
    },
    [self](conn_closed& e) { proxy_lost(self, e.why); },
    [self](client_write& x) { return ask<write_result>(self, std::move(x)); },
    [self](client_read& x) { return ask<read_result>(self, std::move(x)); },
    [self](admin_initialize& x) { return ask<admin_done>(self, std::move(x)); },
    [self](admin_add_learner& x) {
      return ask<admin_done>(self, std::move(x));
    },
    [self](admin_remove_learner& x) {
      return ask<admin_done>(self, std::move(x));
    },
    [self](admin_change_membership& x) {
      return ask<admin_done>(self, std::move(x));
    },
    [self](admin_transfer_leadership& x) {
      return ask<admin_done>(self, std::move(x));
    },
    [self](admin_get_metrics& x) {
      return ask<node_metrics>(self, std::move(x));
    },
    [self](admin_remove_node& x) {
      return ask<admin_done>(self, std::move(x));
    },
    [self](admin_trigger_snapshot& x) {
      return ask<admin_done>(self, std::move(x));
    },
    [self](admin_subscribe_metrics& x) -> caf::result<admin_done> {
      auto& st = self->state;
      if (!x.listener)
        return make_error(raft_error::invalid_argument, "no listener");
      auto& ls = st.listeners;
      if (std::find(ls.begin(), ls.end(), x.listener) != ls.end())
        return admin_done{};
      ls.push_back(x.listener);
      self->monitor(x.listener);
      if (ls.size() > 1)
        return admin_done{}; // the wire subscription exists
      return ask<admin_done>(self, wire::subscribe_metrics{});
    },
    [self](admin_unsubscribe_metrics& x) -> caf::result<admin_done> {
      auto& ls = self->state.listeners;
      auto it = std::find(ls.begin(), ls.end(), x.listener);
      if (it == ls.end())
        return admin_done{};
      self->demonitor(x.listener.address());
      ls.erase(it);
      if (!ls.empty())
        return admin_done{};
      return ask<admin_done>(self, wire::unsubscribe_metrics{});
    },
    [self](admin_shutdown& x) { return ask<admin_done>(self, std::move(x)); },
    [self](forwarded_write& x) {
      return ask<write_result>(self, std::move(x));
    },
    [self](admin_unsafe_force_sole_voter& x) {
      return ask<admin_done>(self, std::move(x));
    },
  };
}

} // namespace

// -- spawning -----------------------------------------------------------------

network_node spawn_network_node(caf::actor_system& sys, node_config cfg,
                                const network_config& net,
                                std::shared_ptr<state_machine> sm,
                                std::shared_ptr<stable_store> stable,
                                std::shared_ptr<log_store> log,
                                std::shared_ptr<snapshot_store> snapshots) {
  if (auto why = net.validate(); !why.empty())
    throw std::invalid_argument("invalid network_config: " + why);
  std::string host;
  uint16_t port = 0;
  split_address(net.listen, host, port);
  if (!net.tls && host != "127.0.0.1" && host != "localhost" && host != "::1")
    SPDLOG_WARN("node {}: TLS is off and the node listens on {}: anyone who "
                "can reach this port can administer the node",
                cfg.core.id, net.listen);
  std::shared_ptr<net::io_loop> loop;
  try {
    loop = make_loop(limits_of(net), tls_of(net));
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(std::string("invalid network_config: ")
                                + e.what());
  }
  auto router = sys.spawn(network, cfg.core.id, cfg.core.cluster_id, net, loop);
  node_actor node;
  try {
    node
      = spawn_node(sys, cfg, std::move(sm), std::move(stable), std::move(log),
                   std::move(snapshots), caf::actor_cast<router_actor>(router));
  } catch (...) {
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
    throw;
  }
  caf::anon_send(router, serve_atom::value, node);
  uint16_t bound = 0;
  try {
    auto hello = wire::encode(wire::hello{cfg.core.cluster_id, cfg.core.id});
    auto addr = caf::actor_cast<caf::actor_addr>(router);
    auto* raw = loop.get();
    bound = loop->listen(host, port, [addr, raw, hello] {
      return std::make_shared<forward_handler>(addr, raw, hello);
    });
  } catch (const std::exception& e) {
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
    throw std::runtime_error("cannot listen on " + net.listen + ": "
                             + e.what());
  }
  SPDLOG_INFO("node {}: listening on {}:{} ({})", cfg.core.id, host, bound,
              net.tls ? "mutual TLS" : "TLS OFF");
  return {node, bound};
}

caf::expected<node_client_actor>
connect_to_node(caf::actor_system& sys, const std::string& address,
                const network_config& net, std::chrono::milliseconds timeout) {
  std::string host;
  uint16_t port = 0;
  if (!split_address(address, host, port))
    return make_error(raft_error::invalid_argument,
                      "address \"" + address + "\" is not host:port");
  if (auto why = net.validate(); !why.empty())
    return make_error(raft_error::invalid_argument,
                      "invalid network_config: " + why);
  // (Made here: an exception in the actor's own start-up would only end
  // the actor.)
  std::shared_ptr<net::io_loop> loop;
  try {
    loop = make_loop(limits_of(net), tls_of(net));
  } catch (const std::exception& e) {
    return make_error(raft_error::invalid_argument, e.what());
  }
  auto p = sys.spawn(proxy, std::move(loop), host, port);
  caf::expected<node_client_actor> result{caf::sec::request_timeout};
  caf::scoped_actor self{sys};
  self->request(p, timeout, ready_atom::value)
    .receive([&](node_id) { result = caf::actor_cast<node_client_actor>(p); },
             [&](caf::error& e) { result = std::move(e); });
  if (!result)
    caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
  return result;
}

} // namespace raft_actor
