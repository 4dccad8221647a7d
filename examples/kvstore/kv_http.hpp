// raft-kv's HTTP API: JSON over cpp-httplib, each request turned into the
// framework's client and admin messages to this process's node (a follower
// passes writes to its leader over the Raft network; admin changes are sent
// to the leader by this service).
#pragma once

#include "actors/network.hpp"
#include "examples/kvstore/kv_machine.hpp"

#include <caf/fwd.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace httplib {
class Server;
} // namespace httplib

namespace raft_actor::kv {

/// How the service reaches its node and its peers.
struct service_config {
  /// This node.
  node_id id = no_node;
  /// This node's HTTP address ("host:port").
  std::string http;
  /// For connections to the leader (admin changes asked at a follower).
  network_config net;
  /// How long one request may take before it is answered 504.
  std::chrono::milliseconds timeout{10000};
};

/// Request counts and latency histograms, per operation (for /metrics).
class request_stats {
public:
  /// Records one request.
  void record(const std::string& op, int status, double seconds);
  /// Prometheus text for everything recorded.
  std::string render() const;

private:
  struct histogram {
    std::vector<uint64_t> buckets;
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mtx_;
  std::map<std::pair<std::string, int>, uint64_t> counts_;
  std::map<std::string, histogram> latency_;
};

/// The HTTP face of one raft-kv node.
class kv_service {
public:
  /// Serves `node` (running in `sys`).
  kv_service(caf::actor_system& sys, node_actor node, service_config cfg);
  ~kv_service();

  /// Registers every route (and JSON error pages) on `server`.
  void attach(httplib::Server& server);

  /// Answer 500 storage_failed from now on (the node stopped on a storage
  /// failure).
  void node_failed() { failed_ = true; }

  /// Records this node's HTTP address in the replicated state if it is not
  /// there yet; true once it is there.
  bool register_http();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::atomic<bool> failed_{false};
};

} // namespace raft_actor::kv
