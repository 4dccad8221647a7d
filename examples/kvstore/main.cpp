// raft-kv: a replicated key-value store, one Raft node per process, with an
// HTTP/JSON API. See examples/kvstore/README.md and `raft-kv --help`.
#include "actors/network.hpp"
#include "examples/kvstore/kv_http.hpp"
#include "examples/kvstore/kv_machine.hpp"
#include "storage/file_store.hpp"

#include <caf/all.hpp>

#include <httplib.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace raft_actor;
using namespace std::chrono_literals;

namespace {

const char* usage_text
  = "usage: raft-kv --id N --raft HOST:PORT --http HOST:PORT\n"
    "               [--data DIR | --memory]\n"
    "               [--init 1=HOST:RAFTPORT/HTTPPORT,2=...,3=...]\n"
    "               [--cluster N] [--election-timeout MIN-MAX] "
    "[--heartbeat MS] [--max-pending N]\n"
    "               [--no-tls | --tls-cert F --tls-key F --tls-ca F]\n"
    "               [--config FILE] [--help]\n"
    "\n"
    "  --id N              this node's id (positive)\n"
    "  --raft HOST:PORT    where the node talks Raft (to peers and raft-ctl)\n"
    "  --http HOST:PORT    where the HTTP API listens (port 0: any)\n"
    "  --data DIR          durable storage (default ./raft-kv-data/<id>)\n"
    "  --memory            keep everything in memory (lost on exit)\n"
    "  --init MEMBERS      form the cluster with these voters if the store is\n"
    "                      empty (ignored, with a log line, if it is not);\n"
    "                      safe to give to one, several or all of them. "
    "Without\n"
    "                      it an empty node waits to be added.\n"
    "  --cluster N         cluster id (default 1); nodes of other clusters "
    "are\n"
    "                      refused\n"
    "  --election-timeout MIN-MAX  milliseconds (default 150-300)\n"
    "  --heartbeat MS      leader heartbeat interval (default 50)\n"
    "  --max-pending N     requests the node holds at once; more are answered\n"
    "                      503 overloaded (default 10000)\n"
    "  --no-tls            plain TCP for Raft (local development only)\n"
    "  --tls-cert F --tls-key F --tls-ca F  mutual TLS for Raft (the node's\n"
    "                      certificate must have common name node<ID>)\n"
    "  --config FILE       read flags from FILE: one \"name = value\" per "
    "line\n"
    "                      (names without --; \"#\" starts a comment); the\n"
    "                      command line wins\n";

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "raft-kv: %s\n%s", why.c_str(), usage_text);
  std::exit(64);
}

const std::vector<std::string> switches{"memory", "no-tls", "help"};
const std::vector<std::string> valued{"id",
                                      "raft",
                                      "http",
                                      "data",
                                      "init",
                                      "cluster",
                                      "election-timeout",
                                      "max-pending",
                                      "heartbeat",
                                      "tls-cert",
                                      "tls-key",
                                      "tls-ca",
                                      "config"};

bool known(const std::vector<std::string>& names, const std::string& n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

using flag_map = std::map<std::string, std::string>;

flag_map parse_args(int argc, char** argv) {
  flag_map f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0)
      usage("unexpected argument \"" + a + "\"");
    a = a.substr(2);
    if (known(switches, a)) {
      f[a] = "1";
    } else if (known(valued, a)) {
      if (i + 1 >= argc)
        usage("--" + a + " needs a value");
      f[a] = argv[++i];
    } else {
      usage("unknown flag --" + a);
    }
  }
  return f;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

/// Adds the flags of a config file that the command line did not set.
void read_config(const std::string& path, flag_map& f) {
  std::ifstream in(path);
  if (!in)
    usage("cannot read the config file " + path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    line = trim(line.substr(0, line.find('#')));
    if (line.empty())
      continue;
    auto eq = line.find('=');
    auto name = trim(eq == std::string::npos ? line : line.substr(0, eq));
    auto value
      = eq == std::string::npos ? std::string{"1"} : trim(line.substr(eq + 1));
    auto where = path + ":" + std::to_string(n);
    if (known(switches, name)) {
      if (value != "1" && value != "true")
        usage(where + ": " + name + " takes no value (or \"true\")");
      value = "1";
    } else if (!known(valued, name) || name == "config") {
      usage(where + ": unknown setting \"" + name + "\"");
    }
    f.emplace(name, value); // the command line wins
  }
}

uint64_t number(const flag_map& f, const std::string& name, uint64_t def) {
  auto it = f.find(name);
  if (it == f.end())
    return def;
  const auto& s = it->second;
  uint64_t v = 0;
  if (s.empty() || s.size() > 18)
    usage("--" + name + " wants a number, not \"" + s + "\"");
  for (char c : s) {
    if (c < '0' || c > '9')
      usage("--" + name + " wants a number, not \"" + s + "\"");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string text(const flag_map& f, const std::string& name) {
  auto it = f.find(name);
  return it == f.end() ? std::string{} : it->second;
}

/// --init: voters with their Raft addresses, and their HTTP addresses.
struct init_spec {
  membership members;
  std::map<node_id, std::string> http;
};

init_spec parse_init(const std::string& s) {
  init_spec out;
  size_t pos = 0;
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    auto item = s.substr(pos, comma == std::string::npos ? std::string::npos
                                                         : comma - pos);
    auto eq = item.find('=');
    auto slash = item.rfind('/');
    std::string host;
    uint16_t port = 0;
    flag_map one{{"init id", item.substr(0, eq == std::string::npos ? 0 : eq)}};
    if (eq == std::string::npos || slash == std::string::npos || slash < eq
        || !split_address(item.substr(eq + 1, slash - eq - 1), host, port))
      usage("--init wants ID=HOST:RAFTPORT/HTTPPORT,..., not \"" + item + "\"");
    auto id = number(one, "init id", 0);
    auto http_port
      = number(flag_map{{"init http port", item.substr(slash + 1)}},
               "init http port", 0);
    if (id == 0 || http_port == 0 || http_port > 65535)
      usage("--init: bad id or HTTP port in \"" + item + "\"");
    if (out.members.voters.count(id))
      usage("--init names node " + std::to_string(id) + " twice");
    out.members.voters[id] = item.substr(eq + 1, slash - eq - 1);
    out.http[id] = host + ":" + std::to_string(http_port);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return out;
}

} // namespace

int main(int argc, char** argv) {
  auto f = parse_args(argc, argv);
  if (f.count("help")) {
    std::printf("%s", usage_text);
    return 0;
  }
  if (f.count("config"))
    read_config(f.at("config"), f);
  node_config cfg;
  cfg.core.id = number(f, "id", 0);
  cfg.core.cluster_id = number(f, "cluster", 1);
  if (cfg.core.id == 0)
    usage("--id must be a positive number");
  std::string host;
  uint16_t port = 0;
  auto raft = text(f, "raft");
  auto http = text(f, "http");
  if (!split_address(raft, host, port) || port == 0)
    usage("--raft wants HOST:PORT with a port");
  std::string http_host;
  uint16_t http_port = 0;
  if (!split_address(http, http_host, http_port))
    usage("--http wants HOST:PORT");
  if (f.count("election-timeout")) {
    auto t = f.at("election-timeout");
    auto dash = t.find('-');
    if (dash == std::string::npos)
      usage("--election-timeout wants MIN-MAX (milliseconds)");
    flag_map parts{{"election-timeout MIN", t.substr(0, dash)},
                   {"election-timeout MAX", t.substr(dash + 1)}};
    auto lo = number(parts, "election-timeout MIN", 0);
    auto hi = number(parts, "election-timeout MAX", 0);
    if (lo == 0 || hi < lo)
      usage("--election-timeout wants 0 < MIN <= MAX");
    cfg.core.election_timeout_min = std::chrono::milliseconds(lo);
    cfg.core.election_timeout_max = std::chrono::milliseconds(hi);
  }
  if (f.count("heartbeat"))
    cfg.core.heartbeat_interval
      = std::chrono::milliseconds(number(f, "heartbeat", 50));
  if (f.count("max-pending"))
    cfg.max_pending_requests = number(f, "max-pending", 10000);
  cfg.core.random_seed = static_cast<uint64_t>(
    std::chrono::steady_clock::now().time_since_epoch().count());
  if (auto why = cfg.validate(); !why.empty())
    usage(why);
  std::optional<init_spec> init;
  if (f.count("init")) {
    init = parse_init(f.at("init"));
    auto it = init->members.voters.find(cfg.core.id);
    if (it != init->members.voters.end() && it->second != raft)
      usage("--init gives node " + std::to_string(cfg.core.id) + " the Raft "
            + "address " + it->second + ", but --raft is " + raft);
  }
  network_config net;
  net.listen = raft;
  net.tls = !f.count("no-tls");
  net.certificate = text(f, "tls-cert");
  net.private_key = text(f, "tls-key");
  net.ca_file = text(f, "tls-ca");
  if (auto why = net.validate(); !why.empty())
    usage(why + (net.tls ? " (or --no-tls for local development)" : ""));

  // SIGTERM/SIGINT are taken by sigwait below: block them before any thread
  // starts, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  caf::actor_system_config sys_cfg;
  configure_network(sys_cfg, net);
  caf::actor_system sys{sys_cfg};
  auto dir = f.count("data") ? f.at("data")
                             : "./raft-kv-data/" + std::to_string(cfg.core.id);
  node_store_set stores;
  try {
    stores
      = open_node_stores(f.count("memory") ? std::nullopt : std::optional(dir),
                         cfg.core.id, cfg.core.cluster_id);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft-kv: cannot open the data directory %s: %s\n",
                 dir.c_str(), e.what());
    return 2;
  }
  network_node n;
  try {
    n = spawn_network_node(sys, cfg, net, std::make_shared<kv::kv_machine>(),
                           stores.stable, stores.log, stores.snapshots);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft-kv: %s\n", e.what());
    return 2;
  }
  if (init) {
    if (stores.fresh)
      caf::anon_send(n.node, admin_initialize{init->members});
    else
      SPDLOG_INFO("node {}: --init ignored: the store is initialised already",
                  cfg.core.id);
  }

  kv::service_config scfg;
  scfg.id = cfg.core.id;
  scfg.net = net;
  httplib::Server server;
  server.set_payload_max_length(kv::max_value_bytes + 64 * 1024);
  int bound = http_port == 0 ? server.bind_to_any_port(http_host)
              : server.bind_to_port(http_host, http_port) ? http_port
                                                          : -1;
  if (bound <= 0) {
    std::fprintf(stderr, "raft-kv: cannot listen for HTTP on %s\n",
                 http.c_str());
    caf::anon_send_exit(n.node, caf::exit_reason::user_shutdown);
    return 2;
  }
  scfg.http = http_host + ":" + std::to_string(bound);
  kv::kv_service service(sys, n.node, scfg);
  service.attach(server);
  std::thread http_thread([&] { server.listen_after_bind(); });
  std::printf("raft-kv: node %llu: Raft on %s, HTTP on %s\n",
              static_cast<unsigned long long>(cfg.core.id), raft.c_str(),
              scfg.http.c_str());
  std::fflush(stdout);
  SPDLOG_INFO("node {}: HTTP API on {}", cfg.core.id, scfg.http);

  // Record our HTTP address in the replicated state once there is a leader.
  std::atomic<bool> stopping{false};
  std::thread registrar([&] {
    while (!stopping && !service.register_http())
      for (int i = 0; i < 10 && !stopping; ++i)
        std::this_thread::sleep_for(100ms);
  });

  // Stop on a signal, or when the node stops on its own (a storage failure
  // or a failing state machine): then answer 500 for a moment and exit 3.
  std::atomic<bool> died{false};
  std::thread watcher([&] {
    caf::scoped_actor w{sys};
    w->monitor(n.node);
    w->receive([&](caf::down_msg& d) {
      if (stopping)
        return;
      SPDLOG_ERROR("node {}: the node stopped: {}", cfg.core.id,
                   sys.render(d.reason));
      service.node_failed();
      died = true;
      std::this_thread::sleep_for(1s);
      ::kill(::getpid(), SIGTERM);
    });
  });
  int sig = 0;
  sigwait(&signals, &sig);
  stopping = true;
  if (!died) {
    SPDLOG_INFO("node {}: signal {}, shutting down", cfg.core.id, sig);
    caf::scoped_actor self{sys};
    self->request(n.node, 5s, admin_shutdown{})
      .receive([](admin_done) {}, [](caf::error&) {});
  }
  server.stop();
  http_thread.join();
  registrar.join();
  watcher.join();
  return died ? 3 : 0;
}
