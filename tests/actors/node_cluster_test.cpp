// A 3-node cluster of real node actors in one process (real threads, real
// timers): formation, replicated writes, linearizable reads on leader and
// follower, not_leader with a hint, leader failure and failover with
// nothing acknowledged lost, and shutdown answering pending requests.
#include "actors/local_router.hpp"
#include "libraft_actor/node.hpp"
#include "storage/memory_store.hpp"

#include <caf/all.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <thread>

using namespace raft_actor;
using namespace std::chrono_literals;

namespace {

/// A state machine that keeps every command and answers with how many it
/// has (and, for a query naming an index, that command).
class journal : public state_machine {
public:
  std::vector<std::vector<uint8_t>>
  apply(const std::vector<log_entry>& entries) override {
    std::vector<std::vector<uint8_t>> out;
    for (const auto& e : entries) {
      if (e.kind == entry_kind::normal)
        commands_.push_back(e.payload);
      out.push_back(encode(commands_.size()));
    }
    return out;
  }
  std::vector<uint8_t> query(const std::vector<uint8_t>&) const override {
    return encode(commands_.size());
  }
  std::unique_ptr<snapshot_source> capture() override {
    throw std::logic_error("journal: snapshots are not used in this test");
  }
  void restore(const std::vector<uint8_t>&) override {
    throw std::logic_error("journal: snapshots are not used in this test");
  }
  static std::vector<uint8_t> encode(uint64_t n) {
    std::vector<uint8_t> out;
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<uint8_t>(n >> (8 * i)));
    return out;
  }
  static uint64_t decode(const std::vector<uint8_t>& b) {
    uint64_t n = 0;
    for (size_t i = 0; i < b.size() && i < 8; ++i)
      n |= static_cast<uint64_t>(b[i]) << (8 * i);
    return n;
  }

private:
  std::vector<std::vector<uint8_t>> commands_;
};

struct cluster {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  local_router_actor router;
  std::map<node_id, node_actor> nodes;

  explicit cluster(int n) {
    add_node_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    router = spawn_local_router(*sys);
    for (node_id id = 1; id <= static_cast<node_id>(n); ++id) {
      node_config nc;
      nc.core.id = id;
      nc.core.cluster_id = 9;
      nc.core.random_seed = id;
      nc.core.election_timeout_min = 150ms;
      nc.core.election_timeout_max = 300ms;
      nc.core.heartbeat_interval = 30ms;
      auto node = spawn_node(*sys, nc, std::make_shared<journal>(),
                             std::make_shared<memory_stable_store>(),
                             std::make_shared<memory_log_store>(),
                             std::make_shared<memory_snapshot_store>(), router);
      nodes[id] = node;
      caf::anon_send(router, router_attach{id, node});
    }
  }

  ~cluster() {
    for (auto& kv : nodes)
      caf::anon_send_exit(kv.second, caf::exit_reason::kill);
    caf::anon_send_exit(router, caf::exit_reason::kill);
  }

  /// Metrics of `id`, or nothing if it does not answer.
  std::optional<node_metrics> metrics(node_id id) {
    caf::scoped_actor self{*sys};
    std::optional<node_metrics> out;
    self->request(nodes[id], 1s, admin_get_metrics{})
      .receive([&](node_metrics m) { out = m; }, [](caf::error&) {});
    return out;
  }

  /// Waits (bounded) until exactly one of `among` leads; returns it or 0.
  node_id await_leader(const std::set<node_id>& among,
                       std::chrono::milliseconds limit = 5s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      for (auto id : among)
        if (auto m = metrics(id); m && m->role == node_role::leader)
          return id;
      std::this_thread::sleep_for(20ms);
    }
    return 0;
  }
};

caf::error write(caf::actor_system& sys, node_actor n, uint8_t byte,
                 write_result* out = nullptr) {
  caf::scoped_actor self{sys};
  caf::error err;
  self->request(n, 2s, client_write{{byte}})
    .receive(
      [&](write_result r) {
        if (out)
          *out = r;
      },
      [&](caf::error& e) { err = e; });
  return err;
}

uint64_t read_count(caf::actor_system& sys, node_actor n, caf::error* err,
                    consistency mode = consistency::linearizable) {
  caf::scoped_actor self{sys};
  uint64_t count = 0;
  self->request(n, 2s, client_read{{}, mode})
    .receive([&](read_result r) { count = journal::decode(r.answer); },
             [&](caf::error& e) { *err = e; });
  return count;
}

} // namespace

TEST_CASE("node actors: a 3-node cluster forms, replicates, reads "
          "linearizably and fails over without losing acknowledged writes") {
  cluster c(3);
  caf::scoped_actor self{*c.sys};
  membership m;
  m.voters = {{1, "n1"}, {2, "n2"}, {3, "n3"}};
  caf::error init_err;
  self->request(c.nodes[1], 2s, admin_initialize{m})
    .receive([](admin_done) {}, [&](caf::error& e) { init_err = e; });
  REQUIRE_MESSAGE(!init_err, c.sys->render(init_err));

  auto leader = c.await_leader({1, 2, 3});
  REQUIRE(leader != 0);

  // 200 acknowledged writes, in order.
  index_t last_index = 0;
  for (int i = 0; i < 200; ++i) {
    write_result r;
    auto err = write(*c.sys, c.nodes[leader], static_cast<uint8_t>(i), &r);
    REQUIRE_MESSAGE(!err, c.sys->render(err));
    CHECK(r.index > last_index);
    last_index = r.index;
    CHECK(journal::decode(r.response) == static_cast<uint64_t>(i + 1));
  }

  // A follower refuses writes, naming the leader.
  node_id follower = leader == 1 ? 2 : 1;
  auto err = write(*c.sys, c.nodes[follower], 1);
  REQUIRE(err);
  CHECK(err.category() == raft_error_category);
  CHECK(err.code() == static_cast<uint8_t>(raft_error::not_leader));
  CHECK(c.sys->render(err).find("node " + std::to_string(leader))
        != std::string::npos);

  // Linearizable reads see every acknowledged write, on leader and follower.
  caf::error read_err;
  CHECK(read_count(*c.sys, c.nodes[leader], &read_err) == 200);
  CHECK(!read_err);
  CHECK(read_count(*c.sys, c.nodes[follower], &read_err) == 200);
  CHECK(!read_err);

  // Kill the leader: the others elect a new one and keep every write.
  caf::anon_send_exit(c.nodes[leader], caf::exit_reason::kill);
  for (node_id other = 1; other <= 3; ++other) {
    caf::anon_send(c.router, router_cut{leader, other, true});
    caf::anon_send(c.router, router_cut{other, leader, true});
  }
  std::set<node_id> rest;
  for (node_id id = 1; id <= 3; ++id)
    if (id != leader)
      rest.insert(id);
  auto next = c.await_leader(rest);
  REQUIRE(next != 0);
  CHECK(next != leader);
  CHECK(read_count(*c.sys, c.nodes[next], &read_err) == 200);
  for (int i = 0; i < 20; ++i) {
    auto e = write(*c.sys, c.nodes[next], 7);
    REQUIRE_MESSAGE(!e, c.sys->render(e));
  }
  for (auto id : rest)
    CHECK(read_count(*c.sys, c.nodes[id], &read_err) == 220);
}

TEST_CASE("node actors: shutdown answers every pending request") {
  cluster c(3);
  caf::scoped_actor self{*c.sys};
  // Nobody is initialized: a linearizable read waits for a leader that
  // never comes, until the node shuts down.
  auto node = c.nodes[1];
  caf::error err;
  bool answered = false;
  self->request(node, 5s, client_write{{1}})
    .receive([&](write_result) { answered = true; },
             [&](caf::error& e) {
               answered = true;
               err = e;
             });
  CHECK(answered);
  CHECK(err.code() == static_cast<uint8_t>(raft_error::not_leader));
  self->request(node, 2s, admin_shutdown{})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  self->request(node, 1s, client_write{{1}})
    .receive([&](write_result) { FAIL("a stopped node accepted a write"); },
             [&](caf::error& e) { err = e; });
  CHECK(err); // down or shutting_down: never silence
}
