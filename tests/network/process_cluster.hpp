// Test support: raft-node processes on loopback, and a CAF client that talks
// to them. Every process a test starts is killed and reaped, and its data
// directory removed, when the cluster object goes away.
#pragma once

#include "actors/network.hpp"
#include "tests/network/test_certs.hpp"
#include "tests/network/wire_socket.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <sys/types.h>

namespace raft_actor::test {

/// A temporary directory, removed with everything in it.
struct scratch_dir {
  scratch_dir();
  ~scratch_dir();
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  std::string path;
};

/// `n` TCP ports on 127.0.0.1 that were free a moment ago.
std::vector<uint16_t> free_ports(size_t n);

/// Runs `argv` with stdout and stderr going to `log`; returns the pid.
pid_t start_process(const std::vector<std::string>& argv,
                    const std::string& log);

/// Opens a TCP connection to 127.0.0.1:`port`, writes `bytes`, closes.
void send_raw(uint16_t port, const std::vector<uint8_t>& bytes);

/// The port of "host:port".
uint16_t port_of(const std::string& address);

/// The whole content of the file at `path` (empty if it cannot be read).
std::string read_text(const std::string& path);

/// Waits until `log` contains `text` (or `timeout` passes).
bool wait_for_text(const std::string& log, const std::string& text,
                   std::chrono::milliseconds timeout);

/// A journal node cluster of raft-node processes.
class process_cluster {
public:
  /// TLS files per node (empty: TLS off).
  using tls_files = cert_files;

  /// Starts `nodes` founding members (ids 1..nodes, initialised together);
  /// `spares` more ids get ports and can be started with start(), knowing
  /// only themselves, to be added later.
  process_cluster(size_t nodes, std::map<node_id, tls_files> tls = {},
                  std::vector<std::string> extra_flags = {}, size_t spares = 0);
  ~process_cluster();

  /// Starts (or restarts) node `id` with its data directory; waits until it
  /// listens.
  void start(node_id id);
  /// Sends `sig` to node `id` (SIGKILL also reaps it).
  void signal(node_id id, int sig);
  /// The node's address.
  std::string address(node_id id) const;
  /// The founding members' ids.
  std::vector<node_id> ids() const;
  /// Node `id`'s log file.
  std::string log_path(node_id id) const;
  /// The process of node `id` (0 if not running).
  pid_t pid(node_id id) const;

  /// The client's actor system.
  caf::actor_system& system() { return *sys_; }

  /// A client connection to node `id` (made if needed; none if
  /// unreachable).
  std::optional<node_client_actor> node_handle(node_id id);
  /// Forgets the connection to `id` (after it was killed).
  void disconnect(node_id id);

  /// Metrics of node `id`, if it answers within `timeout`.
  std::optional<node_metrics> metrics(node_id id,
                                      std::chrono::milliseconds timeout
                                      = std::chrono::milliseconds(1000));
  /// The leader most live nodes agree on, within `timeout`; 0 if none.
  node_id find_leader(const std::set<node_id>& among,
                      std::chrono::milliseconds timeout);
  /// Writes `value` exactly once (session `client`, sequence `value`),
  /// retrying through whichever node leads until `timeout`; true if
  /// acknowledged.
  bool write(uint64_t value, const std::set<node_id>& among,
             std::chrono::milliseconds timeout);
  /// The journal as node `id` has applied it (stale read).
  std::optional<std::vector<uint64_t>> journal(node_id id);

  /// The exactly-once client id used by write().
  uint64_t client = 77;
  /// The last error a write saw (for failure messages).
  std::string last_error;

private:
  size_t n_;
  scratch_dir dir_;
  std::vector<uint16_t> ports_;
  std::map<node_id, tls_files> tls_;
  std::vector<std::string> extra_flags_;
  std::map<node_id, pid_t> pids_;
  network_config net_;
  std::map<node_id, node_client_actor> handles_;
  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  node_id last_leader_ = no_node;
};

/// Path of the raft-node binary (set by CMake).
const char* raft_node_binary();

} // namespace raft_actor::test
