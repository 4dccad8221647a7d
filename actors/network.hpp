// The network transport: nodes in different processes or on different
// machines, over CAF's middleman, with mutual TLS by default.
//
// Each node publishes a gateway actor on its Raft address. The gateway takes
// Raft RPCs from peers (checked: cluster id, addressee, known sender, size,
// rate) and client and admin requests, and passes them to the node. The
// node's network router sends its outgoing traffic to the peers' gateways;
// it finds them by node id from the replicated membership (peer_directory),
// connects lazily on a background thread, re-connects with capped
// exponential backoff, and never lets an unreachable peer block the node.
#pragma once

#include "libraft_actor/node.hpp"

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace raft_actor {

/// How a node talks to its peers over the network.
struct network_config {
  /// Where the node listens ("host:port"; port 0 picks a free port). With
  /// TLS off keep it on loopback: anyone who reaches it can administer the
  /// node.
  std::string listen = "127.0.0.1:0";
  /// Mutual TLS with the cluster's CA. Turn off only for local development.
  bool tls = true;
  /// PEM files for TLS: this node's certificate and private key, and the
  /// cluster CA that signed every member's certificate.
  std::string certificate;
  /// The private key of `certificate`.
  std::string private_key;
  /// The cluster CA.
  std::string ca_file;
  /// Capped exponential backoff between connection attempts to a peer.
  std::chrono::milliseconds reconnect_min{50};
  /// The cap.
  std::chrono::milliseconds reconnect_max{2000};
  /// How long a request to a peer may take (forwarded writes).
  std::chrono::milliseconds request_timeout{5000};
  /// A connection attempt that has not finished after this long is given
  /// up (its thread may linger) and a new one may start.
  std::chrono::milliseconds connect_timeout{5000};
  /// CAF middleman heartbeats on idle connections, and how long a
  /// connection may stay silent before CAF closes it (so that a peer that
  /// vanished without closing its socket is noticed and re-dialled).
  std::chrono::milliseconds heartbeat_interval{1000};
  /// See heartbeat_interval.
  std::chrono::milliseconds connection_timeout{10000};
  /// Largest payload (entries or snapshot bytes) one Raft message may carry;
  /// bigger ones are dropped.
  size_t max_message_bytes = 64 << 20;
  /// Raft messages one sender may deliver per second; the rest is dropped.
  uint32_t max_messages_per_second = 200000;

  /// Empty if usable, else a sentence naming the first problem (TLS mode
  /// without certificate, key or CA files is refused).
  std::string validate() const;
};

/// Prepares an actor system configuration for networked nodes: loads the
/// middleman (and, with TLS, CAF's OpenSSL manager with the certificate,
/// key and CA), and registers every message type. Throws
/// std::invalid_argument if `net` is not usable.
void configure_network(caf::actor_system_config& cfg,
                       const network_config& net);

struct gateway_hello;

/// The published face of a node: Raft RPCs from peers, and what clients
/// and operators may ask.
using gateway_actor = node_client_actor::extend<
  caf::reacts_to<gateway_hello>, caf::reacts_to<request_vote_request>,
  caf::reacts_to<request_vote_response>, caf::reacts_to<append_entries_request>,
  caf::reacts_to<append_entries_response>,
  caf::reacts_to<install_snapshot_request>,
  caf::reacts_to<install_snapshot_response>,
  caf::reacts_to<timeout_now_request>, caf::reacts_to<read_index_request>,
  caf::reacts_to<read_index_response>>;

/// The first message on a connection between two nodes: the dialling node
/// names itself and hands over its own gateway, so that both directions use
/// this one connection. (Only the node with the lower id dials at once; the
/// other waits a moment for it: two connections between the same pair of
/// CAF nodes make CAF's TLS transport drop proxies.)
struct gateway_hello {
  /// The dialling node.
  node_id from = no_node;
  /// Its cluster.
  uint64_t cluster_id = 0;
  /// Its gateway.
  gateway_actor gateway;
};

/// Inspects gateway_hello.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gateway_hello& x) {
  return f(caf::meta::type_name("raft_actor::gateway_hello"), x.from,
           x.cluster_id, x.gateway);
}

/// A running networked node.
struct network_node {
  /// The node's core actor (for this process).
  node_actor node;
  /// Its gateway, as published.
  gateway_actor gateway;
  /// The port it listens on.
  uint16_t port = 0;
};

/// Spawns a node whose peers are reached over the network and publishes its
/// gateway on `net.listen`. The actor system must have been configured with
/// configure_network(). Throws std::invalid_argument on bad configuration
/// and std::runtime_error if the address cannot be published.
network_node spawn_network_node(caf::actor_system& sys, node_config cfg,
                                const network_config& net,
                                std::shared_ptr<state_machine> sm,
                                std::shared_ptr<stable_store> stable,
                                std::shared_ptr<log_store> log,
                                std::shared_ptr<snapshot_store> snapshots);

/// Connects to the gateway of a node at "host:port" (blocking, at most
/// `timeout`; TLS per the actor system's configuration). For clients and
/// admin tools.
caf::expected<gateway_actor>
connect_to_node(caf::actor_system& sys, const std::string& address, bool tls,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// Splits "host:port"; false if malformed.
bool split_address(const std::string& address, std::string& host,
                   uint16_t& port);

} // namespace raft_actor
