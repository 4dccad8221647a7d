// raft-node: one Raft node per process over the network, with a trivial
// replicated state machine (a journal of 64-bit values), and a client for
// it. The multi-process tests drive it; it also shows the smallest complete
// networked program.
//
//   raft-node serve --id N --cluster C --listen HOST:PORT
//                   --members 1=HOST:PORT,2=HOST:PORT,... [--init]
//                   (--data DIR | --memory) (--no-tls | --cert F --key F --ca
//                   F)
//                   [--election-timeout MIN-MAX] [--heartbeat MS]
//                   [--max-message-bytes N] [--max-messages-per-second N]
//   raft-node write  --to HOST:PORT VALUE        [TLS flags]
//   raft-node read   --to HOST:PORT [--stale]    [TLS flags]
//   raft-node status --to HOST:PORT              [TLS flags]
//   raft-node bench  --to HOST:PORT [--count N]  [TLS flags]
//
// serve prints "listening on PORT" once it accepts connections, and shuts
// down cleanly (exit 0) on SIGTERM or SIGINT. Client commands exit 0 on
// success, 1 when the node answered with an error, 2 when it could not be
// reached, 64 on a usage error.
#include "actors/network.hpp"
#include "storage/file_store.hpp"
#include "storage/typed_state_machine.hpp"

#include <boost/serialization/vector.hpp>

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace raft_actor;
using namespace std::chrono_literals;

namespace {

// -- the state machine --------------------------------------------------------

/// Every value written, in log order.
struct journal_state {
  std::vector<uint64_t> values;
  template <class A>
  void serialize(A& a, unsigned) {
    a& values;
  }
};

/// Appends each written value; answers a write with the journal's length
/// and a read with the whole journal.
class journal : public typed_state_machine<journal_state, uint64_t, uint64_t,
                                           uint32_t, std::vector<uint64_t>> {
protected:
  uint64_t apply_command(journal_state& s, const uint64_t& v,
                         const log_entry&) override {
    s.values.push_back(v);
    return s.values.size();
  }
  std::vector<uint64_t> answer(const journal_state& s,
                               const uint32_t&) const override {
    return s.values;
  }
};

// -- flags --------------------------------------------------------------------

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(
    stderr,
    "raft-node: %s\n"
    "usage: raft-node serve --id N --cluster C --listen HOST:PORT "
    "--members 1=HOST:PORT,... [--init]\n"
    "                       (--data DIR | --memory) (--no-tls | "
    "--cert F --key F --ca F)\n"
    "                       [--election-timeout MIN-MAX] "
    "[--heartbeat MS] [--max-message-bytes N]\n"
    "                       [--max-messages-per-second N]\n"
    "       raft-node write --to HOST:PORT VALUE [TLS flags]\n"
    "       raft-node read --to HOST:PORT [--stale] [TLS flags]\n"
    "       raft-node status --to HOST:PORT [TLS flags]\n"
    "       raft-node bench --to HOST:PORT [--count N] [TLS flags]\n",
    why.c_str());
  std::exit(64);
}

struct flags {
  std::string command;
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;

  bool has(const std::string& k) const { return values.count(k) > 0; }
  std::string get(const std::string& k) const {
    auto it = values.find(k);
    if (it == values.end())
      usage("missing --" + k);
    return it->second;
  }
  uint64_t number(const std::string& k, uint64_t fallback) const {
    auto it = values.find(k);
    if (it == values.end())
      return fallback;
    char* end = nullptr;
    auto v = std::strtoull(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0')
      usage("--" + k + " needs a number");
    return v;
  }
};

flags parse(int argc, char** argv) {
  if (argc < 2)
    usage("no command");
  flags f;
  f.command = argv[1];
  const std::vector<std::string> switches
    = {"init", "memory", "no-tls", "stale"};
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      f.positional.push_back(a);
      continue;
    }
    a = a.substr(2);
    if (std::find(switches.begin(), switches.end(), a) != switches.end()) {
      f.values[a] = "1";
      continue;
    }
    if (i + 1 >= argc)
      usage("--" + a + " needs a value");
    f.values[a] = argv[++i];
  }
  return f;
}

network_config network_from(const flags& f, const std::string& listen) {
  network_config net;
  net.listen = listen;
  net.tls = !f.has("no-tls");
  if (f.has("max-message-bytes"))
    net.max_message_bytes = f.number("max-message-bytes", 0);
  if (f.has("max-messages-per-second"))
    net.max_messages_per_second
      = static_cast<uint32_t>(f.number("max-messages-per-second", 0));
  if (net.tls) {
    net.certificate = f.has("cert") ? f.get("cert") : "";
    net.private_key = f.has("key") ? f.get("key") : "";
    net.ca_file = f.has("ca") ? f.get("ca") : "";
  }
  return net;
}

membership parse_members(const std::string& text) {
  membership m;
  size_t pos = 0;
  while (pos < text.size()) {
    auto comma = text.find(',', pos);
    auto item = text.substr(pos, comma == std::string::npos ? std::string::npos
                                                            : comma - pos);
    auto eq = item.find('=');
    if (eq == std::string::npos)
      usage("--members wants ID=HOST:PORT,...");
    auto id = std::strtoull(item.substr(0, eq).c_str(), nullptr, 10);
    if (id == 0)
      usage("member ids must be positive");
    m.voters[id] = item.substr(eq + 1);
    if (comma == std::string::npos)
      break;
    pos = comma + 1;
  }
  return m;
}

// -- serve --------------------------------------------------------------------

int serve(const flags& f) {
  node_config cfg;
  cfg.core.id = f.number("id", 0);
  cfg.core.cluster_id = f.number("cluster", 1);
  if (cfg.core.id == 0)
    usage("--id must be positive");
  if (f.has("election-timeout")) {
    auto t = f.get("election-timeout");
    auto dash = t.find('-');
    if (dash == std::string::npos)
      usage("--election-timeout wants MIN-MAX (milliseconds)");
    cfg.core.election_timeout_min
      = std::chrono::milliseconds(std::stoull(t.substr(0, dash)));
    cfg.core.election_timeout_max
      = std::chrono::milliseconds(std::stoull(t.substr(dash + 1)));
  }
  if (f.has("heartbeat"))
    cfg.core.heartbeat_interval
      = std::chrono::milliseconds(f.number("heartbeat", 50));
  cfg.core.random_seed = static_cast<uint64_t>(
    std::chrono::steady_clock::now().time_since_epoch().count());
  auto members = parse_members(f.get("members"));
  if (!members.voters.count(cfg.core.id))
    usage("--members must include this node's --id");
  auto net = network_from(f, f.get("listen"));

  // SIGTERM/SIGINT are taken by sigwait below: block them before any thread
  // starts, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  caf::actor_system_config sys_cfg;
  try {
    configure_network(sys_cfg, net);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft-node: %s\n", e.what());
    return 64;
  }
  caf::actor_system sys{sys_cfg};
  node_store_set stores;
  try {
    stores = open_node_stores(f.has("memory") ? std::nullopt
                                              : std::optional(f.get("data")),
                              cfg.core.id, cfg.core.cluster_id);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft-node: cannot open the data directory: %s\n",
                 e.what());
    return 2;
  }
  network_node n;
  try {
    n = spawn_network_node(sys, cfg, net, std::make_shared<journal>(),
                           stores.stable, stores.log, stores.snapshots);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft-node: %s\n", e.what());
    return 2;
  }
  if (f.has("init")) {
    if (stores.fresh)
      caf::anon_send(n.node, admin_initialize{members});
    else
      SPDLOG_INFO("node {}: --init ignored: the store is initialised already",
                  cfg.core.id);
  }
  std::printf("listening on %u\n", static_cast<unsigned>(n.port));
  std::fflush(stdout);

  // Stop on a signal, or when the node stops on its own (a storage failure
  // or a failing state machine: then exit 3).
  std::atomic<bool> stopping{false};
  std::atomic<bool> died{false};
  std::thread watcher([&] {
    caf::scoped_actor w{sys};
    w->monitor(n.node);
    w->receive([&](caf::down_msg&) {});
    if (!stopping) {
      died = true;
      ::kill(::getpid(), SIGTERM);
    }
  });
  int sig = 0;
  sigwait(&signals, &sig);
  if (!died) {
    stopping = true;
    SPDLOG_INFO("node {}: signal {}, shutting down", cfg.core.id, sig);
    caf::scoped_actor self{sys};
    self->request(n.node, 5s, admin_shutdown{})
      .receive([](admin_done) {}, [](caf::error&) {});
  }
  watcher.join();
  return died ? 3 : 0;
}

// -- client commands ----------------------------------------------------------

int client(const flags& f) {
  auto to = f.get("to");
  auto net = network_from(f, "127.0.0.1:0");
  caf::actor_system_config sys_cfg;
  try {
    configure_network(sys_cfg, net);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft-node: %s\n", e.what());
    return 64;
  }
  caf::actor_system sys{sys_cfg};
  auto gw = connect_to_node(sys, to, net);
  if (!gw) {
    std::fprintf(stderr, "raft-node: cannot reach %s: %s\n", to.c_str(),
                 sys.render(gw.error()).c_str());
    return 2;
  }
  caf::scoped_actor self{sys};
  int rc = 0;
  auto fail = [&](caf::error& e) {
    std::fprintf(stderr, "raft-node: %s\n", sys.render(e).c_str());
    rc = 1;
  };
  if (f.command == "write") {
    if (f.positional.size() != 1)
      usage("write takes one VALUE");
    auto v = std::strtoull(f.positional[0].c_str(), nullptr, 10);
    self->request(*gw, 10s, client_write{journal::encode_command(v)})
      .receive(
        [&](write_result& r) {
          std::printf("index %llu length %llu\n",
                      static_cast<unsigned long long>(r.index),
                      static_cast<unsigned long long>(
                        journal::decode_response(r.response)));
        },
        fail);
  } else if (f.command == "read") {
    client_read r{journal::encode_query(0), f.has("stale")
                                              ? consistency::stale
                                              : consistency::linearizable};
    self->request(*gw, 10s, r)
      .receive(
        [&](read_result& res) {
          auto values = journal::decode_answer(res.answer);
          std::printf("index %llu values %zu\n",
                      static_cast<unsigned long long>(res.index),
                      values.size());
          for (auto v : values)
            std::printf("%llu\n", static_cast<unsigned long long>(v));
        },
        fail);
  } else if (f.command == "status") {
    self->request(*gw, 10s, admin_get_metrics{})
      .receive(
        [&](node_metrics& m) {
          std::printf("id %llu role %s term %llu leader %llu commit %llu "
                      "applied %llu last %llu snapshot %llu\n",
                      static_cast<unsigned long long>(m.id), to_string(m.role),
                      static_cast<unsigned long long>(m.term),
                      static_cast<unsigned long long>(m.leader),
                      static_cast<unsigned long long>(m.commit_index),
                      static_cast<unsigned long long>(m.last_applied),
                      static_cast<unsigned long long>(m.last_log_index),
                      static_cast<unsigned long long>(m.snapshot_index));
        },
        fail);
  } else if (f.command == "bench") {
    // Sequential replicated writes: the round trip of one write through the
    // node (client -> leader -> followers -> commit -> apply -> client).
    auto count = f.number("count", 10000);
    std::vector<double> us;
    us.reserve(count);
    for (uint64_t i = 0; i < count && rc == 0; ++i) {
      auto start = std::chrono::steady_clock::now();
      self->request(*gw, 10s, client_write{journal::encode_command(i)})
        .receive([](write_result&) {}, fail);
      us.push_back(std::chrono::duration<double, std::micro>(
                     std::chrono::steady_clock::now() - start)
                     .count());
    }
    if (rc == 0 && !us.empty()) {
      std::sort(us.begin(), us.end());
      auto at = [&](double q) {
        return us[std::min(
          us.size() - 1,
          static_cast<size_t>(q * static_cast<double>(us.size())))];
      };
      std::printf("writes %zu median_us %.0f p99_us %.0f max_us %.0f\n",
                  us.size(), at(0.5), at(0.99), us.back());
    }
  } else {
    usage("unknown command " + f.command);
  }
  return rc;
}

} // namespace

int main(int argc, char** argv) {
  auto f = parse(argc, argv);
  try {
    if (f.command == "serve")
      return serve(f);
    return client(f);
  } catch (const std::invalid_argument& e) {
    // e.g. a number flag that is not a number (std::stoull)
    usage(std::string("a flag that wants a number got something else (")
          + e.what() + ")");
  } catch (const std::out_of_range& e) {
    usage(std::string("a number is out of range: ") + e.what());
  }
}
