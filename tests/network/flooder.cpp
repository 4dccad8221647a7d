// Test helper: floods a node with valid-looking but useless Raft messages
// (stale append responses from a member) for a while, from its own process
// so that the test's own connections are not slowed down. Prints how many
// messages the node received.
//   network-flooder HOST:PORT CLUSTER FROM TO SECONDS
#include "actors/network.hpp"
#include "tests/network/wire_socket.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

using namespace raft_actor;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: network-flooder HOST:PORT CLUSTER FROM TO "
                         "SECONDS\n");
    return 64;
  }
  auto cluster = std::strtoull(argv[2], nullptr, 10);
  auto from = std::strtoull(argv[3], nullptr, 10);
  std::string host;
  uint16_t port = 0;
  if (!split_address(argv[1], host, port)) {
    std::fprintf(stderr, "not host:port: %s\n", argv[1]);
    return 64;
  }
  std::unique_ptr<test::wire_socket> s;
  try {
    s = std::make_unique<test::wire_socket>(port);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  s->send(wire::hello{cluster, from});
  append_entries_response r;
  r.header
    = {cluster, protocol_version, from, std::strtoull(argv[4], nullptr, 10)};
  r.term = 0;
  auto body = wire::encode(r);
  auto until = std::chrono::steady_clock::now()
               + std::chrono::seconds(std::strtoull(argv[5], nullptr, 10));
  uint64_t sent = 0;
  uint64_t round = 0;
  // Bursts of messages, each followed by a round trip on the same
  // connection: the flooder never runs far ahead of what the node has
  // received, so everything it counts did arrive, however loaded the machine.
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 20000; ++i)
      if (!s->send_body(body)) {
        std::fprintf(stderr, "the node closed the connection\n");
        return 3;
      }
    s->send(wire::frame{wire::request_frame{++round, admin_get_metrics{}}});
    bool answered = false;
    while (!answered) {
      auto f = s->receive(std::chrono::seconds(30));
      if (!f) {
        std::fprintf(stderr, "no answer to a round trip\n");
        return 3;
      }
      auto rf = std::get_if<wire::response_frame>(&*f);
      answered = rf && rf->id == round;
    }
    sent += 20000;
  }
  std::printf("delivered %llu\n", static_cast<unsigned long long>(sent));
  return 0;
}
