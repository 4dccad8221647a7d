// Mutual TLS between node processes: a cluster whose members hold
// certificates of one CA works; a client with a certificate of another CA,
// or without TLS, is refused; a node refuses to start in TLS mode without
// certificate, key and CA (CAF would silently fall back to anonymous
// ciphers).
#include "actors/io_loop.hpp"
#include "tests/memory_usage.hpp"
#include "tests/network/process_cluster.hpp"

#include <caf/all.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <sys/wait.h>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace raft_actor;
using namespace raft_actor::test;
using namespace std::chrono_literals;

namespace {

/// A client's network settings with the given TLS files (or none: TLS
/// off).
network_config client_net(const process_cluster::tls_files* files) {
  network_config net;
  net.tls = files != nullptr;
  if (files) {
    net.certificate = files->cert;
    net.private_key = files->key;
    net.ca_file = files->ca;
  }
  return net;
}

/// TLS files signed by `ca` for the client (at key 0) and nodes 1 to 3
/// (common names node1..node3).
std::map<node_id, process_cluster::tls_files>
cluster_files(const std::string& dir, const std::string& ca) {
  std::map<node_id, process_cluster::tls_files> files;
  files[0] = make_leaf(dir, ca, "client");
  for (node_id id = 1; id <= 3; ++id)
    files[id] = make_leaf(dir, ca, "node" + std::to_string(id));
  return files;
}

} // namespace

TEST_CASE("tls: members with certificates of the cluster CA form a cluster; "
          "clients with another CA's certificate or without TLS are refused") {
  scratch_dir certs;
  auto ca = make_ca(certs.path, "cluster-ca");
  auto other_ca = make_ca(certs.path, "other-ca");
  auto files = cluster_files(certs.path, ca);
  auto stranger = make_leaf(certs.path, other_ca, "stranger");

  process_cluster c(3, files);
  auto ids = c.ids();
  std::set<node_id> all(ids.begin(), ids.end());
  REQUIRE(c.find_leader(all, 10s) != no_node);
  for (uint64_t v = 1; v <= 20; ++v)
    REQUIRE_MESSAGE(c.write(v, all, 10s), c.last_error);

  // A certificate of another CA: the handshake fails.
  CHECK_FALSE(connect_to_node(c.system(), c.address(1), client_net(&stranger)));
  // No TLS at all.
  CHECK_FALSE(connect_to_node(c.system(), c.address(1), client_net(nullptr)));
  // The same client with the cluster CA's certificate gets in.
  CHECK(connect_to_node(c.system(), c.address(1), client_net(&files[0])));
  // Packets that crashed or bloated CAF 0.17's middleman, which an earlier
  // version listened with (see docs/network.md): a BASP client handshake
  // with an empty payload, and a header announcing 1 GiB. Without TLS
  // credentials they never get past the TLS handshake.
  auto rss_before = rss_kb(c.pid(1));
  for (uint32_t len : {0u, 1u << 30}) {
    std::vector<uint8_t> header(32, 0);
    header[0] = 1; // client_handshake
    header[4] = static_cast<uint8_t>(len >> 24);
    header[5] = static_cast<uint8_t>(len >> 16);
    header[6] = static_cast<uint8_t>(len >> 8);
    header[7] = static_cast<uint8_t>(len);
    send_raw(port_of(c.address(1)), header);
  }
  std::this_thread::sleep_for(300ms);
  std::optional<node_metrics> m;
  for (int i = 0; i < 20 && !m; ++i) {
    m = c.metrics(1);
    if (!m)
      std::this_thread::sleep_for(100ms);
  }
  REQUIRE_MESSAGE(m, "node 1 no longer answers");
  CHECK(::kill(c.pid(1), 0) == 0); // still running
  CHECK(rss_kb(c.pid(1)) < rss_before + 100 * 1024);
  // The cluster is unharmed.
  for (uint64_t v = 21; v <= 25; ++v)
    CHECK(c.write(v, all, 10s));
  auto j = c.journal(1);
  REQUIRE(j);
  CHECK(j->size() >= 20);
}

TEST_CASE("tls: a node refuses to start in TLS mode without certificate, key "
          "and CA, naming what is missing") {
  scratch_dir dir;
  auto port = free_ports(1).at(0);
  auto addr = "127.0.0.1:" + std::to_string(port);
  auto log = dir.path + "/node.log";
  auto pid
    = start_process({raft_node_binary(), "serve", "--id", "1", "--listen", addr,
                     "--members", "1=" + addr, "--memory"},
                    log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 64);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("TLS needs a certificate, a private key and the "
                        "cluster CA")
        != std::string::npos);

  // A key that does not belong to the certificate (CAF would abort the
  // running node at the first connection) is refused at start-up.
  auto ca = make_ca(dir.path, "ca");
  auto a = make_leaf(dir.path, ca, "a");
  auto b = make_leaf(dir.path, ca, "b");
  pid = start_process({raft_node_binary(), "serve", "--id", "1", "--listen",
                       addr, "--members", "1=" + addr, "--memory", "--cert",
                       a.cert, "--key", b.key, "--ca", a.ca},
                      log);
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 64);
  std::ifstream mismatch(log);
  std::stringstream text3;
  text3 << mismatch.rdbuf();
  CHECK(text3.str().find("cannot use private key") != std::string::npos);

  // Named files that do not exist are refused too.
  pid = start_process({raft_node_binary(), "serve", "--id", "1", "--listen",
                       addr, "--members", "1=" + addr, "--memory", "--cert",
                       dir.path + "/none.pem", "--key", dir.path + "/none.key",
                       "--ca", dir.path + "/none-ca.pem"},
                      log);
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 64);
  std::ifstream again(log);
  std::stringstream text2;
  text2 << again.rdbuf();
  CHECK(text2.str().find("cannot read TLS file") != std::string::npos);
}

TEST_CASE("tls: a stream of strangers' empty and garbage connections does not "
          "break the members' connections (regression: CAF 0.17's TLS "
          "transport blamed their failed handshakes on healthy connections)") {
  scratch_dir certs;
  auto ca = make_ca(certs.path, "cluster-ca");
  auto files = cluster_files(certs.path, ca);
  process_cluster c(3, files);
  auto ids = c.ids();
  std::set<node_id> all(ids.begin(), ids.end());
  REQUIRE(c.find_leader(all, 10s) != no_node);

  std::atomic<bool> stop{false};
  std::atomic<int> attacks{0};
  std::thread attacker([&] {
    std::vector<uint8_t> junk(64, 0x5a);
    while (!stop) {
      for (auto id : ids) {
        send_raw(port_of(c.address(id)),
                 attacks % 2 ? junk : std::vector<uint8_t>{});
        ++attacks;
      }
      std::this_thread::sleep_for(10ms);
    }
  });
  // Bounded: without the fix writes time out one after another.
  uint64_t acked = 0;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (uint64_t v = 1; v <= 300 && std::chrono::steady_clock::now() < deadline;
       ++v)
    acked += c.write(v, all, 5s);
  stop = true;
  attacker.join();
  CHECK(attacks > 100);
  CHECK(acked == 300);
  for (auto id : ids) {
    std::ifstream in(c.log_path(id));
    std::string line;
    int lost = 0;
    while (std::getline(in, line))
      lost += line.find("lost the connection") != std::string::npos;
    CAPTURE(id);
    CHECK(lost <= 2);
  }
}

namespace {

/// Says hello as `as` once open; records how the connection ends.
class impostor : public net::conn_handler {
public:
  impostor(net::io_loop* loop, node_id as) : loop_(loop), as_(as) {}

  void on_open(net::conn_id id, const std::string&,
               const std::string&) override {
    loop_->send(id, wire::encode(wire::hello{4711, as_}));
    std::lock_guard<std::mutex> guard(m_);
    opened_ = true;
  }
  void on_frame(net::conn_id, std::vector<uint8_t>) override {}
  void on_close(net::conn_id, const std::string&) override {
    std::lock_guard<std::mutex> guard(m_);
    closed_ = true;
    cv_.notify_all();
  }
  /// True if the connection opened and was then closed within `timeout`.
  bool refused(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(m_);
    return cv_.wait_for(lock, timeout, [&] { return closed_; }) && opened_;
  }

private:
  net::io_loop* loop_;
  node_id as_;
  std::mutex m_;
  std::condition_variable cv_;
  bool opened_ = false;
  bool closed_ = false;
};

} // namespace

TEST_CASE("tls: a certificate speaks only for the node it names: a client's "
          "certificate cannot say hello as a member") {
  scratch_dir certs;
  auto ca = make_ca(certs.path, "cluster-ca");
  auto files = cluster_files(certs.path, ca);
  process_cluster c(3, files);
  auto ids = c.ids();
  std::set<node_id> all(ids.begin(), ids.end());
  REQUIRE(c.find_leader(all, 10s) != no_node);
  net::io_limits limits;
  for (auto [cert, as] :
       {std::pair{files[0], node_id{2}}, std::pair{files[3], node_id{2}}}) {
    net::io_loop loop(limits, {true, cert.cert, cert.key, cert.ca});
    auto h = std::make_shared<impostor>(&loop, as);
    loop.connect("127.0.0.1", port_of(c.address(1)), h);
    CHECK(h->refused(5s));
  }
  CHECK(wait_for_text(c.log_path(1), "cannot speak for node 2", 5s));
  // The cluster is unharmed.
  for (uint64_t v = 1; v <= 5; ++v)
    CHECK(c.write(v, all, 10s));
}
