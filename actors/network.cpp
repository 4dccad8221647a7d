#include "actors/network.hpp"

#include "messages/caf_types.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <spdlog/spdlog.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fstream>
#include <map>
#include <optional>
#include <set>

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

namespace detail {
bool openssl_guard_installed(); // openssl_guard.cpp
} // namespace detail

void configure_network(caf::actor_system_config& cfg,
                       const network_config& net) {
  // Links the OpenSSL error-queue guard into every networked program.
  if (!detail::openssl_guard_installed())
    throw std::logic_error("the OpenSSL guard is missing");
  if (auto why = net.validate(); !why.empty())
    throw std::invalid_argument("invalid network_config: " + why);
  cfg.load<caf::io::middleman>();
  cfg.set("middleman.heartbeat-interval",
          caf::timespan{net.heartbeat_interval});
  cfg.set("middleman.connection-timeout",
          caf::timespan{net.connection_timeout});
  if (net.tls) {
    cfg.load<caf::openssl::manager>();
    cfg.openssl_certificate = net.certificate;
    cfg.openssl_key = net.private_key;
    cfg.openssl_cafile = net.ca_file;
  }
  add_message_types(cfg);
  add_node_types(cfg);
  cfg.add_message_type<peer_directory>("raft_actor::peer_directory");
  cfg.add_message_type<gateway_hello>("raft_actor::gateway_hello");
}

namespace {

// -- internal messages --------------------------------------------------------

/// A connection attempt to a peer's gateway succeeded.
struct peer_connected {
  node_id id = no_node;
  std::string address;
  gateway_actor handle;
  /// True if the peer dialled us (its gateway_hello), false if we dialled.
  bool inbound = false;
  /// Our attempt's number (outbound only).
  uint64_t attempt = 0;
};

/// A connection attempt failed.
struct peer_connect_failed {
  node_id id = no_node;
  std::string address;
  std::string why;
  uint64_t attempt = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_connected& x) {
  return f(caf::meta::type_name("raft_actor::peer_connected"), x.id, x.address,
           x.handle, x.inbound, x.attempt);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_connect_failed& x) {
  return f(caf::meta::type_name("raft_actor::peer_connect_failed"), x.id,
           x.address, x.why, x.attempt);
}

/// The gateway's full interface: the published one plus the directory its
/// router passes on.
using gateway_impl_actor
  = gateway_actor::extend<caf::reacts_to<peer_directory>>;

/// Tells the router its gateway (spawned after the node, which needs the
/// router first).
struct attach_gateway {
  gateway_impl_actor gateway;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, attach_gateway& x) {
  return f(caf::meta::type_name("raft_actor::attach_gateway"), x.gateway);
}

/// Tells the router which node it serves: it stops with it.
struct watch_node {
  node_actor node;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, watch_node& x) {
  return f(caf::meta::type_name("raft_actor::watch_node"), x.node);
}

/// The network router's full interface.
using net_router_actor = router_actor::extend<
  caf::reacts_to<peer_connected>, caf::reacts_to<peer_connect_failed>,
  caf::reacts_to<attach_gateway>, caf::reacts_to<watch_node>>;

/// At most one warning per second per kind; counts what it swallowed.
class warn_limiter {
public:
  template <class... Ts>
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

// -- the gateway --------------------------------------------------------------

/// A token bucket per sender (flood control).
struct bucket {
  double tokens = 0;
  caf::actor_clock::time_point refilled{};
};

struct gateway_state {
  node_actor node;
  /// The node's router: told of peers that dial in.
  net_router_actor router;
  node_id self_id = no_node;
  uint64_t cluster_id = 0;
  network_config net;
  /// The port the gateway is published on (0 until known).
  uint16_t port = 0;
  /// Members by the latest directory; empty while this node knows no
  /// configuration (then it accepts any sender of its cluster, e.g. the
  /// leader adding it as a learner).
  std::set<node_id> members;
  std::map<caf::actor_addr, bucket> buckets;
  /// Highest term seen in accepted messages (for log lines).
  term_t term = 0;
  warn_limiter warnings;
  uint64_t dropped = 0;
  static inline const char* name = "raft_gateway";
};

using gateway_pointer = gateway_impl_actor::stateful_pointer<gateway_state>;

size_t payload_size(const raft_message& m) {
  if (auto* a = std::get_if<append_entries_request>(&m)) {
    size_t n = 0;
    for (const auto& e : a->entries)
      n += e.payload.size();
    return n;
  }
  if (auto* s = std::get_if<install_snapshot_request>(&m))
    return s->data.size();
  return 0;
}

/// Checks a Raft message from the network and passes it to the node.
void on_rpc(gateway_pointer self, raft_message m) {
  auto& st = self->state;
  const auto& h = header_of(m);
  auto now = self->clock().now();
  auto drop = [&](const std::string& kind, const std::string& why) {
    ++st.dropped;
    st.warnings.warn(now, kind, st.self_id, st.term,
                     std::string("dropping ") + message_name(m) + " from node "
                       + std::to_string(h.from) + ": " + why);
  };
  if (h.cluster_id != st.cluster_id)
    return drop("cluster",
                "cluster id " + std::to_string(h.cluster_id) + " is not ours");
  if (h.to != st.self_id)
    return drop("addressee", "addressed to node " + std::to_string(h.to));
  if (!st.members.empty() && !st.members.count(h.from))
    return drop("member", "not a member of our configuration");
  if (payload_size(m) > st.net.max_message_bytes)
    return drop("size", std::to_string(payload_size(m))
                          + " payload bytes exceed the limit of "
                          + std::to_string(st.net.max_message_bytes));
  // Flood control per sending process (its router's proxy), so one peer
  // cannot starve the others.
  auto sender = self->current_sender();
  auto& b = st.buckets[caf::actor_cast<caf::actor_addr>(sender)];
  double rate = st.net.max_messages_per_second;
  auto elapsed = std::chrono::duration<double>(now - b.refilled).count();
  b.tokens = std::min(rate, b.tokens + elapsed * rate);
  b.refilled = now;
  if (b.tokens < 1)
    return drop("flood", "more than "
                           + std::to_string(st.net.max_messages_per_second)
                           + " messages per second");
  b.tokens -= 1;
  st.term = std::max(st.term, term_of(m));
  self->send(st.node, peer_message{std::move(m)});
}

gateway_impl_actor::behavior_type gateway(gateway_pointer self, node_actor node,
                                          net_router_actor router,
                                          node_id self_id, uint64_t cluster_id,
                                          network_config net, uint16_t port) {
  auto& st = self->state;
  st.node = std::move(node);
  st.router = std::move(router);
  st.self_id = self_id;
  st.cluster_id = cluster_id;
  st.net = std::move(net);
  st.port = port;
  // The node stopped: stop listening, then stop. (CAF 0.17's
  // openssl::unpublish does not compile; ask the manager directly.)
  self->monitor(st.node);
  self->set_down_handler([self](caf::down_msg& d) {
    auto& st = self->state;
    if (d.source != st.node.address())
      return;
    auto me = caf::actor_cast<caf::actor_addr>(self);
    auto& sys = self->system();
    if (st.net.tls)
      caf::anon_send(sys.openssl_manager().actor_handle(),
                     caf::unpublish_atom::value, me, st.port);
    else
      caf::anon_send(sys.middleman().actor_handle(), caf::unpublish_atom::value,
                     me, st.port);
    self->quit();
  });
  self->set_default_handler(
    [self](caf::scheduled_actor*,
           caf::message_view& x) -> caf::result<caf::message> {
      auto& st = self->state;
      ++st.dropped;
      // (Cut short: the content may be huge.)
      auto text = caf::to_string(x.content());
      if (text.size() > 200)
        text = text.substr(0, 200) + "...";
      st.warnings.warn(self->clock().now(), "unexpected", st.self_id, st.term,
                       "dropping an unexpected message: " + text);
      return caf::sec::unexpected_message;
    });
  auto node_of = [self] { return self->state.node; };
  return {
    [self](request_vote_request& m) { on_rpc(self, std::move(m)); },
    [self](request_vote_response& m) { on_rpc(self, std::move(m)); },
    [self](append_entries_request& m) { on_rpc(self, std::move(m)); },
    [self](append_entries_response& m) { on_rpc(self, std::move(m)); },
    [self](install_snapshot_request& m) { on_rpc(self, std::move(m)); },
    [self](install_snapshot_response& m) { on_rpc(self, std::move(m)); },
    [self](timeout_now_request& m) { on_rpc(self, std::move(m)); },
    [self](read_index_request& m) { on_rpc(self, std::move(m)); },
    [self](read_index_response& m) { on_rpc(self, std::move(m)); },
    [self](gateway_hello& h) {
      auto& st = self->state;
      auto now = self->clock().now();
      if (h.cluster_id != st.cluster_id || !h.gateway) {
        st.warnings.warn(now, "hello", st.self_id, st.term,
                         "refusing a connection from node "
                           + std::to_string(h.from) + " of cluster "
                           + std::to_string(h.cluster_id));
        return;
      }
      if (!st.members.empty() && !st.members.count(h.from)) {
        st.warnings.warn(now, "hello", st.self_id, st.term,
                         "refusing a connection from node "
                           + std::to_string(h.from)
                           + ", which is not a member");
        return;
      }
      self->send(st.router,
                 peer_connected{h.from, {}, std::move(h.gateway), true});
    },
    [self](peer_directory& d) {
      auto& st = self->state;
      st.members.clear();
      for (const auto& kv : d.addresses)
        st.members.insert(kv.first);
    },
    // Clients and operators: passed to the node, which answers directly.
    [self, node_of](client_write& x) -> caf::result<write_result> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](client_read& x) -> caf::result<read_result> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_initialize& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_add_learner& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_remove_learner& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_change_membership& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_transfer_leadership& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_get_metrics& x) -> caf::result<node_metrics> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_remove_node& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_trigger_snapshot& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_subscribe_metrics& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_unsubscribe_metrics& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](admin_shutdown& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
    [self, node_of](forwarded_write& x) -> caf::result<write_result> {
      return self->delegate(node_of(), std::move(x));
    },
    [self,
     node_of](admin_unsafe_force_sole_voter& x) -> caf::result<admin_done> {
      return self->delegate(node_of(), std::move(x));
    },
  };
}

// -- the network router -------------------------------------------------------

/// What the router knows about one peer.
struct peer_link {
  std::string address;
  /// The peer's gateway once connected.
  gateway_actor handle;
  bool connecting = false;
  /// The running attempt: its number (results of abandoned attempts are
  /// ignored) and when it started.
  uint64_t attempt = 0;
  caf::actor_clock::time_point attempt_started{};
  /// Since when a message for the peer found no connection (a node with a
  /// higher id than the peer's dials only after waiting a while for the
  /// peer to dial it).
  std::optional<caf::actor_clock::time_point> wanted_since;
  /// Capped exponential backoff after failed attempts.
  caf::timespan backoff{0};
  caf::actor_clock::time_point retry_at{};
};

struct net_router_state {
  node_id self_id = no_node;
  uint64_t cluster_id = 0;
  network_config net;
  gateway_impl_actor gateway;
  node_actor node;
  /// The latest directory, for a gateway attached after it came.
  peer_directory directory;
  std::map<node_id, peer_link> links;
  warn_limiter warnings;
  static inline const char* name = "raft_network_router";
};

using net_router_pointer = net_router_actor::stateful_pointer<net_router_state>;

/// The actor that makes connections: the middleman's, or OpenSSL's.
caf::io::middleman_actor manager_of(caf::actor_system& sys, bool tls) {
  return tls ? sys.openssl_manager().actor_handle()
             : sys.middleman().actor_handle();
}

/// Empty if `ptr` with interface `ifs` is a raft-actor gateway (as
/// remote_actor would check), else why not.
std::string check_gateway(caf::actor_system& sys,
                          const caf::strong_actor_ptr& ptr,
                          const std::set<std::string>& ifs) {
  if (!ptr)
    return "no actor is published there";
  auto expected = sys.message_types(caf::detail::type_list<gateway_actor>{});
  if (ifs != expected)
    return "the actor published there is not a raft-actor gateway of this "
           "version";
  return {};
}

/// How long a node waits for a peer with a lower id to dial it.
constexpr auto dial_grace = std::chrono::seconds(1);

/// Starts a connection attempt to `id` on a background thread, unless one
/// runs or the backoff has not passed.
void maybe_connect(net_router_pointer self, node_id id) {
  auto& st = self->state;
  auto it = st.links.find(id);
  if (it == st.links.end()) {
    st.warnings.warn(self->clock().now(), "unknown", st.self_id, 0,
                     "no address for node " + std::to_string(id));
    return;
  }
  auto& l = it->second;
  auto now = self->clock().now();
  if (l.connecting && now - l.attempt_started > st.net.connect_timeout) {
    // A blackholed address can block remote_actor for minutes: give up on
    // that attempt and allow another one.
    l.connecting = false;
    l.retry_at = now;
    st.warnings.warn(now, "connect " + std::to_string(id), st.self_id, 0,
                     "connecting to node " + std::to_string(id) + " at "
                       + l.address + " takes too long; trying again");
  }
  if (l.handle || l.connecting || now < l.retry_at)
    return;
  // One connection per pair of nodes: the lower id dials; the higher one
  // only if the lower stays silent (it may not know us yet, e.g. a learner
  // being added by a leader with a higher id).
  if (!l.wanted_since)
    l.wanted_since = now;
  if (st.self_id > id && now - *l.wanted_since < dial_grace)
    return;
  l.connecting = true;
  l.attempt_started = now;
  auto attempt = ++l.attempt;
  // Ask the middleman (or, with TLS, OpenSSL's manager) asynchronously and
  // with a timeout: a blocking remote_actor could hang on a silent peer.
  auto router = caf::actor_cast<net_router_actor>(self);
  auto address = l.address;
  std::string host;
  uint16_t port = 0;
  if (!split_address(address, host, port)) {
    self->send(router,
               peer_connect_failed{id, address, "malformed address", attempt});
    return;
  }
  self
    ->request(manager_of(self->system(), st.net.tls), st.net.connect_timeout,
              caf::connect_atom::value, host, port)
    .then(
      [self, router, id, address, attempt](const caf::node_id&,
                                           caf::strong_actor_ptr& ptr,
                                           std::set<std::string>& ifs) {
        auto why = check_gateway(self->system(), ptr, ifs);
        if (!why.empty())
          self->send(router, peer_connect_failed{id, address, why, attempt});
        else
          self->send(router, peer_connected{id, address,
                                            caf::actor_cast<gateway_actor>(ptr),
                                            false, attempt});
      },
      [self, router, id, address, attempt](caf::error& e) {
        self->send(router, peer_connect_failed{
                             id, address, self->system().render(e), attempt});
      });
}

/// Sends a Raft message to its peer's gateway; false if not connected.
bool send_rpc(net_router_pointer self, raft_message& m) {
  auto& st = self->state;
  auto to = header_of(m).to;
  auto it = st.links.find(to);
  if (it == st.links.end() || !it->second.handle) {
    maybe_connect(self, to);
    return false;
  }
  auto& handle = it->second.handle;
  std::visit([&](auto& x) { self->send(handle, std::move(x)); }, m);
  return true;
}

net_router_actor::behavior_type network_router(net_router_pointer self,
                                               node_id self_id,
                                               uint64_t cluster_id,
                                               network_config net) {
  auto& st = self->state;
  st.self_id = self_id;
  st.cluster_id = cluster_id;
  st.net = std::move(net);
  self->set_down_handler([self](caf::down_msg& d) {
    if (self->state.node && d.source == self->state.node.address()) {
      self->quit(); // the node stopped
      return;
    }
    for (auto& [id, l] : self->state.links)
      if (l.handle && l.handle.address() == d.source) {
        SPDLOG_INFO("node {}: lost the connection to node {} at {}",
                    self->state.self_id, id, l.address);
        l.handle = nullptr;
      }
  });
  return {
    [self](peer_message& m) { send_rpc(self, m.message); },
    [self](peer_packet& p) -> caf::result<peer_accepted> {
      auto to = header_of(p.message).to;
      if (!send_rpc(self, p.message))
        return make_error(raft_error::unknown_node,
                          "not connected to node " + std::to_string(to));
      return peer_accepted{};
    },
    [self](forwarded_write& w) -> caf::result<write_result> {
      auto& st = self->state;
      auto it = st.links.find(w.to);
      if (it == st.links.end() || !it->second.handle) {
        maybe_connect(self, w.to);
        return make_error(raft_error::not_leader,
                          "not connected to the leader (node "
                            + std::to_string(w.to) + ") yet; not appended");
      }
      auto rp = self->make_response_promise<write_result>();
      self->request(it->second.handle, st.net.request_timeout, std::move(w))
        .then([rp](write_result& r) mutable { rp.deliver(std::move(r)); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [self](peer_directory& d) {
      auto& st = self->state;
      for (auto it = st.links.begin(); it != st.links.end();) {
        auto found = d.addresses.find(it->first);
        bool moved = found != d.addresses.end() && !it->second.address.empty()
                     && found->second != it->second.address;
        // Forget peers that moved, and peers that left unless they are
        // connected (a node not yet in our configuration may be talking to
        // us, e.g. the leader that is adding us as a learner).
        if (moved || (found == d.addresses.end() && !it->second.handle))
          it = st.links.erase(it);
        else
          ++it;
      }
      for (const auto& [id, address] : d.addresses)
        if (id != st.self_id)
          st.links[id].address = address;
      st.directory = d;
      if (st.gateway)
        self->send(st.gateway, std::move(d));
    },
    [self](watch_node& w) {
      self->state.node = std::move(w.node);
      self->monitor(self->state.node);
    },
    [self](attach_gateway& a) {
      auto& st = self->state;
      st.gateway = std::move(a.gateway);
      self->send(st.gateway, st.directory);
    },
    [self](peer_connected& c) {
      auto& st = self->state;
      if (c.id == st.self_id || c.id == no_node)
        return;
      auto it = st.links.find(c.id);
      if (!c.inbound
          && (it == st.links.end() || it->second.address != c.address
              || it->second.attempt != c.attempt || !it->second.connecting))
        return; // the directory changed meanwhile, or the attempt was
                // abandoned
      auto& l = st.links[c.id];
      // (An inbound connection also ends our own attempt: its result, if it
      // comes, is ignored.)
      l.connecting = false;
      if (!c.inbound) {
        // Hand over our gateway: the peer answers on this connection.
        if (st.gateway)
          self->send(c.handle,
                     gateway_hello{st.self_id, st.cluster_id,
                                   caf::actor_cast<gateway_actor>(st.gateway)});
      }
      l.backoff = caf::timespan{0};
      l.wanted_since.reset();
      if (l.handle && l.handle != c.handle)
        self->demonitor(l.handle.address());
      l.handle = std::move(c.handle);
      self->monitor(l.handle);
      SPDLOG_INFO("node {}: {} node {}{}", st.self_id,
                  c.inbound ? "connection from" : "connected to", c.id,
                  c.address.empty() ? std::string{} : " at " + c.address);
    },
    [self](peer_connect_failed& f) {
      auto& st = self->state;
      auto it = st.links.find(f.id);
      if (it == st.links.end() || it->second.address != f.address
          || it->second.attempt != f.attempt || !it->second.connecting)
        return;
      auto& l = it->second;
      l.connecting = false;
      l.backoff
        = l.backoff.count() == 0
            ? caf::timespan{st.net.reconnect_min}
            : std::min<caf::timespan>(l.backoff * 2, st.net.reconnect_max);
      l.retry_at = self->clock().now() + l.backoff;
      st.warnings.warn(self->clock().now(), "connect " + std::to_string(f.id),
                       st.self_id, 0,
                       "cannot connect to node " + std::to_string(f.id) + " at "
                         + f.address + ": " + f.why);
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
  if (!sys.has_middleman())
    throw std::invalid_argument("the actor system has no middleman: call "
                                "configure_network() on its configuration");
  if (net.tls && !sys.has_openssl_manager())
    throw std::invalid_argument("TLS is on but the actor system has no "
                                "OpenSSL manager: call configure_network()");
  std::string host;
  uint16_t port = 0;
  split_address(net.listen, host, port);
  if (!net.tls && host != "127.0.0.1" && host != "localhost" && host != "::1")
    SPDLOG_WARN("node {}: TLS is off and the node listens on {}: anyone who "
                "can reach this port can administer the node",
                cfg.core.id, net.listen);
  // The node needs the router, the gateway needs the node, and the router
  // passes the peers' addresses on to the gateway.
  auto router
    = sys.spawn(network_router, cfg.core.id, cfg.core.cluster_id, net);
  node_actor node;
  try {
    node
      = spawn_node(sys, cfg, std::move(sm), std::move(stable), std::move(log),
                   std::move(snapshots), caf::actor_cast<router_actor>(router));
  } catch (...) {
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
    throw;
  }
  auto gw = sys.spawn(gateway, node, router, cfg.core.id, cfg.core.cluster_id,
                      net, port);
  caf::anon_send(router, attach_gateway{gw});
  // When the node stops, its router and gateway stop too.
  caf::anon_send(router, watch_node{node});
  auto published
    = net.tls ? caf::openssl::publish(caf::actor_cast<gateway_actor>(gw), port,
                                      host.c_str(), true)
              : sys.middleman().publish(caf::actor_cast<gateway_actor>(gw),
                                        port, host.c_str(), true);
  if (!published) {
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(gw, caf::exit_reason::user_shutdown);
    throw std::runtime_error("cannot listen on " + net.listen + ": "
                             + sys.render(published.error()));
  }
  SPDLOG_INFO("node {}: listening on {}:{} ({})", cfg.core.id, host, *published,
              net.tls ? "mutual TLS" : "TLS OFF");
  return {node, caf::actor_cast<gateway_actor>(gw), *published};
}

caf::expected<gateway_actor>
connect_to_node(caf::actor_system& sys, const std::string& address, bool tls,
                std::chrono::milliseconds timeout) {
  std::string host;
  uint16_t port = 0;
  if (!split_address(address, host, port))
    return make_error(raft_error::invalid_argument,
                      "address \"" + address + "\" is not host:port");
  caf::expected<gateway_actor> result{caf::sec::request_timeout};
  caf::scoped_actor self{sys};
  self
    ->request(manager_of(sys, tls), timeout, caf::connect_atom::value, host,
              port)
    .receive(
      [&](const caf::node_id&, caf::strong_actor_ptr& ptr,
          std::set<std::string>& ifs) {
        auto why = check_gateway(sys, ptr, ifs);
        if (why.empty())
          result = caf::actor_cast<gateway_actor>(ptr);
        else
          result
            = make_error(raft_error::invalid_argument, address + ": " + why);
      },
      [&](caf::error& e) { result = std::move(e); });
  return result;
}

} // namespace raft_actor
