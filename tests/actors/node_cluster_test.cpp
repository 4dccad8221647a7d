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
    struct source : snapshot_source {
      std::vector<std::vector<uint8_t>> commands;
      std::vector<uint8_t> serialize() override {
        std::vector<uint8_t> out = encode(commands.size());
        for (const auto& c : commands) {
          out.push_back(static_cast<uint8_t>(c.size()));
          out.insert(out.end(), c.begin(), c.end());
        }
        return out;
      }
    };
    auto s = std::make_unique<source>();
    s->commands = commands_;
    return s;
  }
  void restore(const std::vector<uint8_t>& data) override {
    if (data.size() < 8)
      throw std::invalid_argument("journal snapshot too short");
    auto n = decode(data);
    std::vector<std::vector<uint8_t>> cmds;
    size_t pos = 8;
    for (uint64_t i = 0; i < n; ++i) {
      if (pos >= data.size() || pos + 1 + data[pos] > data.size())
        throw std::invalid_argument("journal snapshot truncated");
      auto len = data[pos];
      cmds.emplace_back(data.begin() + static_cast<std::ptrdiff_t>(pos + 1),
                        data.begin()
                          + static_cast<std::ptrdiff_t>(pos + 1 + len));
      pos += 1 + len;
    }
    commands_ = std::move(cmds);
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
  /// Each node's stores, kept so that a node can be restarted on them.
  struct stores {
    std::shared_ptr<stable_store> stable
      = std::make_shared<memory_stable_store>();
    std::shared_ptr<log_store> log = std::make_shared<memory_log_store>();
    std::shared_ptr<snapshot_store> snapshots
      = std::make_shared<memory_snapshot_store>();
  };
  std::map<node_id, stores> disks;
  index_t snapshot_interval = 0;
  std::map<node_id, bool> forwarding;

  explicit cluster(int n, index_t snapshot_every = 0)
      : snapshot_interval(snapshot_every) {
    add_node_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    router = spawn_local_router(*sys);
    for (node_id id = 1; id <= static_cast<node_id>(n); ++id)
      start(id);
  }

  /// Starts (or restarts) node `id` on its stores with a fresh state machine.
  void start(node_id id) {
    node_config nc;
    nc.core.id = id;
    nc.core.cluster_id = 9;
    nc.core.random_seed = id;
    nc.core.election_timeout_min = 150ms;
    nc.core.election_timeout_max = 300ms;
    nc.core.heartbeat_interval = 30ms;
    nc.core.snapshot_interval = snapshot_interval;
    nc.core.snapshot_trailing_entries = 5;
    nc.core.snapshot_chunk_bytes = 64; // several chunks per snapshot
    nc.forward_to_leader = forwarding.count(id) ? forwarding[id] : true;
    auto& d = disks[id];
    auto node = spawn_node(*sys, nc, std::make_shared<journal>(), d.stable,
                           d.log, d.snapshots, router);
    nodes[id] = node;
    caf::anon_send(router, router_attach{id, node});
  }

  ~cluster() {
    for (auto& kv : nodes)
      caf::anon_send_exit(kv.second, caf::exit_reason::kill);
    caf::anon_send_exit(router, caf::exit_reason::kill);
  }

  /// Restarts node `id` on its stores with forwarding on or off, and waits
  /// until it knows the leader again.
  void set_forwarding(node_id id, bool on) {
    caf::scoped_actor self{*sys};
    self->request(nodes[id], 2s, admin_shutdown{})
      .receive([](admin_done) {}, [](caf::error&) {});
    forwarding[id] = on;
    start(id);
    for (int i = 0; i < 100; ++i) {
      auto m = metrics(id);
      if (m && m->leader != no_node && m->last_applied >= m->commit_index
          && m->commit_index > 0)
        return;
      std::this_thread::sleep_for(20ms);
    }
  }

  /// Cuts (or heals) every link of node `id`, both ways.
  void isolate(node_id id, bool cut = true) {
    for (const auto& kv : nodes) {
      if (kv.first == id)
        continue;
      caf::anon_send(router, router_cut{id, kv.first, cut});
      caf::anon_send(router, router_cut{kv.first, id, cut});
    }
  }

  /// Ids of every running node except `id`.
  std::set<node_id> all_but(node_id id) const {
    std::set<node_id> out;
    for (const auto& kv : nodes)
      if (kv.first != id)
        out.insert(kv.first);
    return out;
  }

  /// Kills node `id` and cuts it off.
  void crash(node_id id) {
    caf::anon_send_exit(nodes[id], caf::exit_reason::kill);
    isolate(id);
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

/// Writes `total` commands to `target`, 100 in flight at a time, from an
/// event-based client; returns (acknowledged, failed).
template <class Cluster>
std::pair<size_t, size_t> pipelined_writes(Cluster& c, node_actor target,
                                           int total) {
  auto counts = std::make_shared<std::pair<size_t, size_t>>(0, 0);
  auto client = c.sys->spawn(
    [](caf::event_based_actor* cl, node_actor target,
       std::shared_ptr<std::pair<size_t, size_t>> out, int total) {
      auto sent = std::make_shared<int>(0);
      auto next = std::make_shared<std::function<void()>>();
      *next = [=] {
        if (*sent >= total)
          return;
        ++*sent;
        cl->request(target, 10s, client_write{{1}})
          .then(
            [=](write_result&) {
              ++out->first;
              (*next)();
            },
            [=](caf::error&) {
              ++out->second;
              (*next)();
            });
      };
      for (int i = 0; i < 100; ++i)
        (*next)();
      // Break the self-reference cycle once done.
      cl->attach_functor([next] { *next = nullptr; });
    },
    target, counts, total);
  for (int i = 0; i < 1200 && counts->first + counts->second < size_t(total);
       ++i)
    std::this_thread::sleep_for(50ms);
  caf::anon_send_exit(client, caf::exit_reason::kill);
  return *counts;
}

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

  // 10,000 more, pipelined.
  auto counts = pipelined_writes(c, c.nodes[leader], 10000);
  CHECK(counts.first == 10000);
  CHECK(counts.second == 0);

  // A follower passes writes on to the leader (proposal forwarding)...
  node_id follower = leader == 1 ? 2 : 1;
  write_result fwd;
  auto err = write(*c.sys, c.nodes[follower], 1, &fwd);
  REQUIRE_MESSAGE(!err, c.sys->render(err));
  CHECK(fwd.index > last_index);
  CHECK(journal::decode(fwd.response) == 10201);
  // ...or, with forwarding off, refuses them naming the leader.
  c.set_forwarding(follower, false);
  err = write(*c.sys, c.nodes[follower], 1);
  REQUIRE(err);
  CHECK(err.category() == raft_error_category);
  CHECK(err.code() == static_cast<uint8_t>(raft_error::not_leader));
  CHECK(c.sys->render(err).find("node " + std::to_string(leader))
        != std::string::npos);

  // Linearizable reads see every acknowledged write, on leader and follower.
  caf::error read_err;
  CHECK(read_count(*c.sys, c.nodes[leader], &read_err) == 10201);
  CHECK(!read_err);
  CHECK(read_count(*c.sys, c.nodes[follower], &read_err) == 10201);
  CHECK(!read_err);

  // Kill the leader: the others elect a new one and keep every write.
  c.crash(leader);
  auto rest = c.all_but(leader);
  auto next = c.await_leader(rest);
  REQUIRE(next != 0);
  CHECK(next != leader);
  CHECK(read_count(*c.sys, c.nodes[next], &read_err) == 10201);
  for (int i = 0; i < 20; ++i) {
    auto e = write(*c.sys, c.nodes[next], 7);
    REQUIRE_MESSAGE(!e, c.sys->render(e));
  }
  for (auto id : rest)
    CHECK(read_count(*c.sys, c.nodes[id], &read_err) == 10221);
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

TEST_CASE("node actors: snapshots compact the log; a new member catches up "
          "through InstallSnapshot and a restarted node from its snapshot") {
  cluster c(4, 20); // node 4 starts outside the cluster, with empty stores
  caf::scoped_actor self{*c.sys};
  membership m;
  m.voters = {{1, "n1"}, {2, "n2"}, {3, "n3"}};
  for (node_id id = 1; id <= 3; ++id)
    self->request(c.nodes[id], 2s, admin_initialize{m})
      .receive([](admin_done) {}, [](caf::error&) {});
  auto leader = c.await_leader({1, 2, 3});
  REQUIRE(leader != 0);
  for (int i = 0; i < 120; ++i) {
    auto err = write(*c.sys, c.nodes[leader], static_cast<uint8_t>(i));
    REQUIRE_MESSAGE(!err, c.sys->render(err));
  }
  // Everyone snapshots and compacts (bounded wait).
  auto compacted = [&](node_id id) {
    auto mm = c.metrics(id);
    return mm && mm->snapshot_index > 0;
  };
  for (int i = 0; i < 100 && !(compacted(1) && compacted(2) && compacted(3));
       ++i)
    std::this_thread::sleep_for(20ms);
  CHECK(compacted(1));
  CHECK(compacted(2));
  CHECK(compacted(3));
  CHECK(c.disks[leader].log->base().index > 0);

  // Node 4 joins as a learner: the entries it needs are gone from the log,
  // so it must be sent the snapshot.
  caf::error err;
  self->request(c.nodes[leader], 5s, admin_add_learner{4, "n4", true})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  REQUIRE_MESSAGE(!err, c.sys->render(err));
  caf::error read_err;
  uint64_t seen = 0;
  for (int i = 0; i < 100 && seen != 120; ++i) {
    seen = read_count(*c.sys, c.nodes[4], &read_err, consistency::stale);
    std::this_thread::sleep_for(20ms);
  }
  CHECK(seen == 120);
  CHECK(c.disks[4].snapshots->latest().has_value());

  // Restart a follower on its stores: its state machine comes back from the
  // snapshot plus the log, and it keeps up with new writes.
  node_id follower = leader == 1 ? 2 : 1;
  self->request(c.nodes[follower], 2s, admin_shutdown{})
    .receive([](admin_done) {}, [](caf::error&) {});
  c.start(follower);
  for (int i = 0; i < 10; ++i) {
    auto e = write(*c.sys, c.nodes[leader], 1);
    REQUIRE_MESSAGE(!e, c.sys->render(e));
  }
  seen = 0;
  for (int i = 0; i < 100 && seen != 130; ++i) {
    seen = read_count(*c.sys, c.nodes[follower], &read_err, consistency::stale);
    std::this_thread::sleep_for(20ms);
  }
  CHECK(seen == 130);
  CHECK(read_count(*c.sys, c.nodes[follower], &read_err) == 130);
}

namespace {

/// Asks `node` and returns the raft_error it answered with (none on
/// success). Fails the test if no answer comes, or a foreign error.
template <class Result, class Msg>
raft_error ask(caf::actor_system& sys, node_actor node, Msg msg) {
  caf::scoped_actor self{sys};
  caf::error err;
  bool answered = false;
  self->request(node, 3s, std::move(msg))
    .receive([&](Result) { answered = true; },
             [&](caf::error& e) {
               answered = e.category() == raft_error_category;
               err = e;
             });
  CHECK_MESSAGE(answered, sys.render(err));
  return err ? static_cast<raft_error>(err.code()) : raft_error::none;
}

} // namespace

TEST_CASE("node actors: every client and admin request is answered, with the "
          "documented error when it cannot succeed") {
  cluster c(1);
  auto node = c.nodes[1];
  using E = raft_error;
  // Before the cluster exists nobody leads.
  CHECK(ask<write_result>(*c.sys, node, client_write{{1}}) == E::not_leader);
  CHECK(
    ask<read_result>(*c.sys, node, client_read{{}, consistency::linearizable})
    == E::not_leader);
  CHECK(ask<read_result>(*c.sys, node, client_read{{}, consistency::stale})
        == E::none);
  CHECK(ask<admin_done>(*c.sys, node, admin_add_learner{2, "n2", false})
        == E::not_leader);
  CHECK(ask<admin_done>(*c.sys, node, admin_remove_learner{2})
        == E::not_leader);
  CHECK(ask<admin_done>(*c.sys, node, admin_change_membership{{1}})
        == E::not_leader);
  CHECK(ask<admin_done>(*c.sys, node, admin_transfer_leadership{1})
        == E::not_leader);
  CHECK(ask<node_metrics>(*c.sys, node, admin_get_metrics{}) == E::none);
  membership empty;
  CHECK(ask<admin_done>(*c.sys, node, admin_initialize{empty})
        == E::invalid_argument);
  membership other;
  other.voters = {{2, "n2"}};
  CHECK(ask<admin_done>(*c.sys, node, admin_initialize{other})
        == E::invalid_argument);
  membership solo;
  solo.voters = {{1, "n1"}};
  CHECK(ask<admin_done>(*c.sys, node, admin_initialize{solo}) == E::none);
  CHECK(ask<admin_done>(*c.sys, node, admin_initialize{solo})
        == E::none); // repeat: a no-op
  membership pair;
  pair.voters = {{1, "n1"}, {2, "n2"}};
  CHECK(ask<admin_done>(*c.sys, node, admin_initialize{pair})
        == E::already_initialized);
  REQUIRE(c.await_leader({1}) == 1);
  // Now it leads alone.
  CHECK(ask<write_result>(*c.sys, node, client_write{{1}}) == E::none);
  CHECK(
    ask<read_result>(*c.sys, node, client_read{{}, consistency::linearizable})
    == E::none);
  CHECK(ask<read_result>(*c.sys, node, client_read{{}, consistency::lease})
        == E::none);
  CHECK(ask<admin_done>(*c.sys, node, admin_transfer_leadership{1}) == E::none);
  CHECK(ask<admin_done>(*c.sys, node, admin_transfer_leadership{7})
        == E::unknown_node);
  CHECK(ask<admin_done>(*c.sys, node, admin_change_membership{{1, 7}})
        == E::unknown_node);
  CHECK(ask<admin_done>(*c.sys, node, admin_remove_learner{7})
        == E::unknown_node);
  CHECK(ask<admin_done>(*c.sys, node, admin_remove_node{7}) == E::unknown_node);
  CHECK(ask<admin_done>(*c.sys, node, admin_remove_node{1})
        == E::invalid_argument); // the last voter
  CHECK(ask<admin_done>(*c.sys, node, admin_trigger_snapshot{}) == E::none);
  CHECK(ask<node_metrics>(*c.sys, node, admin_get_metrics{}) == E::none);
  metrics_listener_actor nobody;
  CHECK(ask<admin_done>(*c.sys, node, admin_subscribe_metrics{nobody})
        == E::none);
  CHECK(ask<admin_done>(*c.sys, node, admin_unsubscribe_metrics{nobody})
        == E::none);
  std::vector<uint8_t> huge(5 << 20, 1);
  CHECK(ask<write_result>(*c.sys, node, client_write{huge})
        == E::payload_too_large);
  CHECK(ask<admin_done>(*c.sys, node, admin_shutdown{}) == E::none);
  // A stopped node: CAF answers every request to it with an error at once.
  caf::scoped_actor self{*c.sys};
  bool answered = false;
  self->request(node, 3s, client_write{{1}})
    .receive([](write_result&) {},
             [&](caf::error& e) {
               answered = e != caf::sec::request_timeout; // not a timeout
             });
  CHECK(answered);
}

TEST_CASE("node actors: 5 nodes take 10,000 pipelined writes, survive a "
          "leader crash, change membership, transfer leadership and catch "
          "up a node that was down through a snapshot") {
  cluster c(6, 500); // node 6 starts outside the configuration
  caf::scoped_actor self{*c.sys};
  membership m;
  for (node_id id = 1; id <= 5; ++id)
    m.voters[id] = "n" + std::to_string(id);
  self->request(c.nodes[1], 2s, admin_initialize{m})
    .receive([](admin_done) {}, [](caf::error&) {});
  auto leader = c.await_leader({1, 2, 3, 4, 5});
  REQUIRE(leader != 0);

  // 10,000 writes, 100 in flight at a time.
  auto counts = pipelined_writes(c, c.nodes[leader], 10000);
  CHECK(counts.first == 10000);
  CHECK(counts.second == 0);

  // Node 5 goes down (cut off); the leader crashes.
  c.isolate(5);
  node_id old = leader;
  c.crash(old);
  std::set<node_id> alive;
  for (node_id id = 1; id <= 4; ++id)
    if (id != old)
      alive.insert(id);
  if (old == 5)
    alive.insert(4);
  leader = c.await_leader(alive);
  REQUIRE(leader != 0);
  caf::error err;
  CHECK(read_count(*c.sys, c.nodes[leader], &err) == 10000);
  for (int i = 0; i < 1000; ++i)
    REQUIRE(!write(*c.sys, c.nodes[leader], 1));

  // Add node 6 as a learner (it catches up by snapshot), promote it and
  // remove the crashed node in one joint change.
  self->request(c.nodes[leader], 10s, admin_add_learner{6, "n6", true})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  REQUIRE_MESSAGE(!err, c.sys->render(err));
  std::set<node_id> voters;
  for (node_id id = 1; id <= 6; ++id)
    if (id != old)
      voters.insert(id);
  self->request(c.nodes[leader], 10s, admin_change_membership{voters})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  REQUIRE_MESSAGE(!err, c.sys->render(err));

  // Hand leadership to node 6.
  self->request(c.nodes[leader], 10s, admin_transfer_leadership{6})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  REQUIRE_MESSAGE(!err, c.sys->render(err));
  CHECK(c.await_leader({6}, 2s) == 6);
  for (int i = 0; i < 100; ++i)
    REQUIRE(!write(*c.sys, c.nodes[6], 2));

  // Node 5 comes back (unless it was the crashed leader): the others
  // compacted their logs meanwhile, so it catches up by snapshot.
  if (old != 5) {
    c.isolate(5, false); // (links to the dead old leader lead nowhere)
    uint64_t seen = 0;
    for (int i = 0; i < 150 && seen != 11100; ++i) {
      seen = read_count(*c.sys, c.nodes[5], &err, consistency::stale);
      std::this_thread::sleep_for(20ms);
    }
    CHECK(seen == 11100);
  }
  for (auto id : voters)
    if (id != 5 || old != 5)
      CHECK(read_count(*c.sys, c.nodes[id], &err, consistency::stale) == 11100);
}

TEST_CASE("node actors: exactly-once writes survive retries, a leader "
          "change and a restart from a snapshot") {
  cluster c(3, 50);
  caf::scoped_actor self{*c.sys};
  membership m;
  m.voters = {{1, "n1"}, {2, "n2"}, {3, "n3"}};
  self->request(c.nodes[1], 2s, admin_initialize{m})
    .receive([](admin_done) {}, [](caf::error&) {});
  auto leader = c.await_leader({1, 2, 3});
  REQUIRE(leader != 0);
  auto session_write = [&](node_id to, uint64_t seq, caf::error* err) {
    write_result r;
    self->request(c.nodes[to], 2s, client_write{{5}, 77, seq})
      .receive([&](write_result& x) { r = x; },
               [&](caf::error& e) { *err = e; });
    return r;
  };
  caf::error err;
  auto first = session_write(leader, 1, &err);
  REQUIRE(!err);
  auto again = session_write(leader, 1, &err);
  REQUIRE(!err);
  CHECK(again.index == first.index);
  CHECK(again.response == first.response);
  caf::error read_err;
  CHECK(read_count(*c.sys, c.nodes[leader], &read_err) == 1); // applied once
  auto second = session_write(leader, 2, &err);
  REQUIRE(!err);
  CHECK(second.index > first.index);
  session_write(leader, 1, &err); // older than the latest: refused
  REQUIRE(err);
  CHECK(err.code() == static_cast<uint8_t>(raft_error::invalid_argument));
  err = caf::error{};

  // Enough plain writes for snapshots; then the leader dies.
  for (int i = 0; i < 120; ++i)
    REQUIRE(!write(*c.sys, c.nodes[leader], 1));
  c.crash(leader);
  auto rest = c.all_but(leader);
  auto next = c.await_leader(rest);
  REQUIRE(next != 0);
  // The new leader remembers the session: the retry is not applied again.
  auto retried = session_write(next, 2, &err);
  REQUIRE_MESSAGE(!err, c.sys->render(err));
  CHECK(retried.index == second.index);
  CHECK(read_count(*c.sys, c.nodes[next], &read_err) == 122);

  // A follower restarted from its snapshot remembers it too.
  node_id follower = *rest.begin() == next ? *rest.rbegin() : *rest.begin();
  REQUIRE(c.disks[follower].snapshots->latest().has_value());
  c.set_forwarding(follower, true); // restarts it on its stores
  // Make it lead, so that it answers the retry from its own table, which
  // came from its snapshot (the session writes are no longer in its log).
  REQUIRE(c.disks[follower].log->base().index > second.index);
  self->request(c.nodes[next], 5s, admin_transfer_leadership{follower})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  REQUIRE_MESSAGE(!err, c.sys->render(err));
  REQUIRE(c.await_leader({follower}, 2s) == follower);
  auto from_snapshot = session_write(follower, 2, &err);
  REQUIRE_MESSAGE(!err, c.sys->render(err));
  CHECK(from_snapshot.index == second.index);
  CHECK(read_count(*c.sys, c.nodes[follower], &read_err) == 122);
}

TEST_CASE("node actors: unsafe recovery makes a survivor of a lost majority "
          "the only voter, with a loud confirmation") {
  cluster c(3);
  caf::scoped_actor self{*c.sys};
  membership m;
  m.voters = {{1, "n1"}, {2, "n2"}, {3, "n3"}};
  self->request(c.nodes[1], 2s, admin_initialize{m})
    .receive([](admin_done) {}, [](caf::error&) {});
  auto leader = c.await_leader({1, 2, 3});
  REQUIRE(leader != 0);
  for (int i = 0; i < 50; ++i)
    REQUIRE(!write(*c.sys, c.nodes[leader], 1));
  // Both other nodes are gone for good: no quorum, no writes.
  for (node_id id = 1; id <= 3; ++id)
    if (id != leader)
      c.crash(id);
  std::this_thread::sleep_for(600ms); // check-quorum: the leader steps down
  caf::error err;
  CHECK(write(*c.sys, c.nodes[leader], 1));
  // Without the exact confirmation nothing happens.
  self->request(c.nodes[leader], 2s, admin_unsafe_force_sole_voter{"yes"})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  REQUIRE(err);
  CHECK(err.code() == static_cast<uint8_t>(raft_error::invalid_argument));
  err = caf::error{};
  self
    ->request(c.nodes[leader], 2s,
              admin_unsafe_force_sole_voter{unsafe_recovery_confirmation})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  REQUIRE_MESSAGE(!err, c.sys->render(err));
  REQUIRE(c.await_leader({leader}, 2s) == leader);
  auto mm = c.metrics(leader);
  REQUIRE(mm);
  CHECK(mm->config.voters.size() == 1);
  CHECK(read_count(*c.sys, c.nodes[leader], &err) >= 50);
  for (int i = 0; i < 10; ++i)
    CHECK(!write(*c.sys, c.nodes[leader], 1));
}
