// The network transport: nodes in different processes or on different
// machines, with mutual TLS by default.
//
// Each node listens on its Raft address. One network actor per node owns
// its connections (an io_loop: length-prefixed frames over TCP or TLS, see
// io_loop.hpp; the frames' content is in wire.hpp). It sends the node's
// Raft RPCs to its peers, which it finds by node id in the replicated
// membership (peer_directory), connecting lazily and re-connecting with
// capped exponential backoff; an unreachable peer never blocks the node. It
// checks what arrives (cluster id, addressee, known sender, size, rate)
// before the node sees it, and answers client and admin requests.
//
// CAF's own middleman is not used: its BASP protocol trusts its input (see
// docs/network.md).
#pragma once

#include "libraft_actor/node.hpp"

#include <caf/expected.hpp>
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
  /// A connection attempt (TCP and TLS handshake) that has not finished
  /// after this long is given up.
  std::chrono::milliseconds connect_timeout{5000};
  /// Keep-alive pings on idle connections, and how long a connection may
  /// stay silent before it is closed (so that a peer that vanished without
  /// closing its socket is noticed and re-dialled).
  std::chrono::milliseconds heartbeat_interval{1000};
  /// See heartbeat_interval.
  std::chrono::milliseconds connection_timeout{10000};
  /// Largest payload (entries or snapshot bytes) one Raft message may carry;
  /// bigger ones are dropped.
  size_t max_message_bytes = 64 << 20;
  /// Frames one connection may deliver per second; Raft messages beyond
  /// are dropped, requests beyond are answered `overloaded`.
  uint32_t max_messages_per_second = 200000;

  /// Empty if usable, else a sentence naming the first problem (TLS mode
  /// without certificate, key or CA files is refused).
  std::string validate() const;
};

/// Prepares an actor system configuration for networked nodes and clients:
/// registers the error category and message types (so that errors render
/// with their names). Throws std::invalid_argument if `net` is not usable.
void configure_network(caf::actor_system_config& cfg,
                       const network_config& net);

/// A running networked node.
struct network_node {
  /// The node's core actor (for this process).
  node_actor node;
  /// The port it listens on.
  uint16_t port = 0;
};

/// Spawns a node whose peers are reached over the network, listening on
/// `net.listen`. Throws std::invalid_argument on bad configuration
/// (including unusable TLS files) and std::runtime_error if the address
/// cannot be bound.
network_node spawn_network_node(caf::actor_system& sys, node_config cfg,
                                const network_config& net,
                                std::shared_ptr<state_machine> sm,
                                std::shared_ptr<stable_store> stable,
                                std::shared_ptr<log_store> log,
                                std::shared_ptr<snapshot_store> snapshots);

/// Connects to the node at "host:port" as a client (blocking, at most
/// `timeout`), with TLS and limits from `net` (its `listen` is unused).
/// The handle answers the client and admin API like a node in this
/// process; the actor behind it stops when the connection is lost, and
/// requests still waiting then fail with unknown_outcome.
caf::expected<node_client_actor>
connect_to_node(caf::actor_system& sys, const std::string& address,
                const network_config& net,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// Splits "host:port"; false if malformed.
bool split_address(const std::string& address, std::string& host,
                   uint16_t& port);

} // namespace raft_actor
