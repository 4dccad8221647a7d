#include "tests/network/process_cluster.hpp"

#include <caf/all.hpp>

#include <doctest/doctest.h>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/serialization/vector.hpp>

#include "storage/typed_state_machine.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace raft_actor::test {

using namespace std::chrono_literals;

const char* raft_node_binary() {
  return RAFT_NODE_BIN;
}

scratch_dir::scratch_dir() {
  char tmpl[] = "/tmp/raft-net-test-XXXXXX";
  if (!mkdtemp(tmpl))
    throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}

scratch_dir::~scratch_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::vector<uint16_t> free_ports(size_t n) {
  std::vector<int> fds;
  std::vector<uint16_t> out;
  for (size_t i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("cannot find a free port");
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    out.push_back(ntohs(a.sin_port));
    fds.push_back(fd); // keep them bound until all are chosen
  }
  for (int fd : fds)
    ::close(fd);
  return out;
}

pid_t start_process(const std::vector<std::string>& argv,
                    const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  auto rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    throw std::runtime_error(std::string("posix_spawn: ") + std::strerror(rc));
  return pid;
}

void send_raw(uint16_t port, const std::vector<uint8_t>& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    size_t off = 0;
    while (off < bytes.size()) {
      auto n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0)
        break;
      off += static_cast<size_t>(n);
    }
  }
  ::close(fd);
}

uint16_t port_of(const std::string& address) {
  return static_cast<uint16_t>(
    std::stoul(address.substr(address.rfind(':') + 1)));
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool wait_for_text(const std::string& log, const std::string& text,
                   std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_text(log).find(text) != std::string::npos)
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// -- the cluster --------------------------------------------------------------

namespace {

/// The journal's answer: every value applied (see tools/raft_node.cpp).
std::vector<uint64_t> decode_journal(const std::vector<uint8_t>& bytes) {
  return from_bytes<std::vector<uint64_t>>(bytes);
}

std::vector<uint8_t> encode_value(uint64_t v) {
  return to_bytes(v);
}

} // namespace

process_cluster::process_cluster(size_t nodes, std::map<node_id, tls_files> tls,
                                 std::vector<std::string> extra_flags,
                                 size_t spares)
    : n_(nodes), ports_(free_ports(nodes + spares)), tls_(std::move(tls)),
      extra_flags_(std::move(extra_flags)) {
  network_config net;
  net.tls = !tls_.empty();
  if (net.tls) {
    const auto& mine = tls_.at(0); // the client's own certificate
    net.certificate = mine.cert;
    net.private_key = mine.key;
    net.ca_file = mine.ca;
  }
  net_ = net;
  cfg_ = std::make_unique<caf::actor_system_config>();
  configure_network(*cfg_, net);
  sys_ = std::make_unique<caf::actor_system>(*cfg_);
  for (auto id : ids())
    start(id);
}

process_cluster::~process_cluster() {
  for (auto& [id, pid] : pids_) {
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  handles_.clear();
}

std::vector<node_id> process_cluster::ids() const {
  std::vector<node_id> out;
  for (size_t i = 1; i <= n_; ++i)
    out.push_back(i);
  return out;
}

std::string process_cluster::log_path(node_id id) const {
  return dir_.path + "/node" + std::to_string(id) + ".log";
}

pid_t process_cluster::pid(node_id id) const {
  auto it = pids_.find(id);
  return it == pids_.end() ? 0 : it->second;
}

std::string process_cluster::address(node_id id) const {
  return "127.0.0.1:" + std::to_string(ports_.at(id - 1));
}

void process_cluster::start(node_id id) {
  // Founders know each other and form the cluster; a spare knows only
  // itself and waits to be added.
  bool spare = id > n_;
  std::string members;
  if (spare)
    members = std::to_string(id) + "=" + address(id);
  else
    for (auto m : ids())
      members
        += (members.empty() ? "" : ",") + std::to_string(m) + "=" + address(m);
  std::vector<std::string> argv = {raft_node_binary(),
                                   "serve",
                                   "--id",
                                   std::to_string(id),
                                   "--cluster",
                                   "4711",
                                   "--listen",
                                   address(id),
                                   "--members",
                                   members,
                                   "--data",
                                   dir_.path + "/node" + std::to_string(id),
                                   "--election-timeout",
                                   "150-300",
                                   "--heartbeat",
                                   "40"};
  if (!spare)
    argv.push_back("--init");
  argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
  if (tls_.empty()) {
    argv.push_back("--no-tls");
  } else {
    const auto& t = tls_.at(id);
    for (const auto& kv :
         {std::pair<const char*, std::string>{"--cert", t.cert},
          {"--key", t.key},
          {"--ca", t.ca}}) {
      argv.push_back(kv.first);
      argv.push_back(kv.second);
    }
  }
  auto log = log_path(id);
  // A restarted node must not be mistaken for ready by its old log lines.
  std::ofstream(log, std::ios::app) << "--- start ---\n";
  std::ifstream in(log);
  std::stringstream before;
  before << in.rdbuf();
  auto starts = before.str();
  pids_[id] = start_process(argv, log);
  handles_.erase(id);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream again(log);
    std::stringstream now;
    now << again.rdbuf();
    auto text = now.str();
    auto last_start = text.rfind("--- start ---");
    if (text.find("listening on", last_start) != std::string::npos)
      return;
    std::this_thread::sleep_for(20ms);
  }
  FAIL("node " << id << " did not start; its log:\n" << starts);
}

void process_cluster::signal(node_id id, int sig) {
  auto it = pids_.find(id);
  if (it == pids_.end())
    return;
  ::kill(it->second, sig);
  if (sig == SIGKILL) {
    int status = 0;
    ::waitpid(it->second, &status, 0);
    pids_.erase(it);
    handles_.erase(id);
  }
}

std::optional<node_client_actor> process_cluster::node_handle(node_id id) {
  auto it = handles_.find(id);
  if (it != handles_.end())
    return it->second;
  auto gw = connect_to_node(*sys_, address(id), net_);
  if (!gw)
    return std::nullopt;
  handles_[id] = *gw;
  return *gw;
}

void process_cluster::disconnect(node_id id) {
  handles_.erase(id);
}

std::optional<node_metrics>
process_cluster::metrics(node_id id, std::chrono::milliseconds timeout) {
  auto gw = node_handle(id);
  if (!gw)
    return std::nullopt;
  std::optional<node_metrics> out;
  caf::scoped_actor self{*sys_};
  self->request(*gw, timeout, admin_get_metrics{})
    .receive([&](node_metrics& m) { out = std::move(m); },
             [&](caf::error&) { disconnect(id); });
  return out;
}

node_id process_cluster::find_leader(const std::set<node_id>& among,
                                     std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::map<node_id, int> votes;
    for (auto id : among)
      if (auto m = metrics(id, 500ms); m && m->leader != no_node)
        ++votes[m->leader];
    for (auto [leader, n] : votes)
      if (among.count(leader) && n * 2 > static_cast<int>(among.size())) {
        if (auto m = metrics(leader, 500ms); m && m->role == node_role::leader)
          return last_leader_ = leader;
      }
    std::this_thread::sleep_for(50ms);
  }
  return no_node;
}

bool process_cluster::write(uint64_t value, const std::set<node_id>& among,
                            std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto leader = among.count(last_leader_) ? last_leader_ : no_node;
    if (leader == no_node)
      leader = find_leader(among, 2s);
    if (leader == no_node)
      continue;
    auto gw = node_handle(leader);
    if (!gw) {
      last_leader_ = no_node;
      std::this_thread::sleep_for(20ms);
      continue;
    }
    bool ok = false;
    caf::scoped_actor self{*sys_};
    self->request(*gw, 2s, client_write{encode_value(value), client, value})
      .receive([&](write_result&) { ok = true; },
               [&](caf::error& e) {
                 last_error = sys_->render(e);
                 last_leader_ = no_node;
               });
    if (ok)
      return true;
    std::this_thread::sleep_for(20ms); // no busy loop while there is none
  }
  return false;
}

std::optional<std::vector<uint64_t>> process_cluster::journal(node_id id) {
  auto gw = node_handle(id);
  if (!gw)
    return std::nullopt;
  std::optional<std::vector<uint64_t>> out;
  caf::scoped_actor self{*sys_};
  self->request(*gw, 5s, client_read{to_bytes(uint32_t{0}), consistency::stale})
    .receive([&](read_result& r) { out = decode_journal(r.answer); },
             [&](caf::error&) { disconnect(id); });
  return out;
}

} // namespace raft_actor::test
