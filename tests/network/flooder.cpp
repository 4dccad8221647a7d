// Test helper: floods a node's gateway with valid-looking but useless Raft
// messages (stale append responses from a member) for a while, from its own
// process so that the test's own connections are not slowed down. Prints how
// many messages the node received.
//   network-flooder HOST:PORT CLUSTER FROM TO SECONDS
#include "actors/network.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

using namespace raft_actor;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: network-flooder HOST:PORT CLUSTER FROM TO "
                         "SECONDS\n");
    return 64;
  }
  network_config net;
  net.tls = false;
  caf::actor_system_config cfg;
  configure_network(cfg, net);
  caf::actor_system sys{cfg};
  auto gw = connect_to_node(sys, argv[1], false, std::chrono::seconds(20));
  if (!gw) {
    std::fprintf(stderr, "cannot connect: %s\n",
                 sys.render(gw.error()).c_str());
    return 2;
  }
  append_entries_response r;
  r.header = {std::strtoull(argv[2], nullptr, 10), protocol_version,
              std::strtoull(argv[3], nullptr, 10),
              std::strtoull(argv[4], nullptr, 10)};
  r.term = 0;
  auto until = std::chrono::steady_clock::now()
               + std::chrono::seconds(std::strtoull(argv[5], nullptr, 10));
  caf::scoped_actor self{sys};
  uint64_t sent = 0;
  // Bursts of messages, each followed by a round trip on the same
  // connection: the flooder never runs far ahead of what the node has
  // received, so everything it counts did arrive, however loaded the machine.
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 20000; ++i)
      self->send(*gw, r);
    bool answered = false;
    self->request(*gw, std::chrono::seconds(30), admin_get_metrics{})
      .receive([&](const node_metrics&) { answered = true; },
               [&](const caf::error& e) {
                 std::fprintf(stderr, "round trip failed: %s\n",
                              sys.render(e).c_str());
               });
    if (!answered)
      return 3;
    sent += 20000;
  }
  std::printf("delivered %llu\n", static_cast<unsigned long long>(sent));
  return 0;
}
