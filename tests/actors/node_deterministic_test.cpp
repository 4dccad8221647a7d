// Node actors under CAF's deterministic test scheduler: one thread, virtual
// time, every message run explicitly. Elections, replication, reads and
// heartbeats happen exactly the same way on every run.
#include "actors/local_router.hpp"
#include "libraft_actor/node.hpp"
#include "storage/memory_store.hpp"
#include "tests/actors/counter_state_machine.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <optional>

using namespace raft_actor;
using raft_actor::test::counter;
using namespace std::chrono_literals;

namespace {

struct det_cluster {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  local_router_actor router;
  std::map<node_id, node_actor> nodes;

  /// Makes each node's state machine (a counter by default).
  using sm_factory = std::function<std::shared_ptr<state_machine>()>;

  explicit det_cluster(int n, sm_factory make_sm = {}) {
    add_node_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sys->await_actors_before_shutdown(false);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    router = spawn_local_router(*sys);
    membership m;
    for (node_id id = 1; id <= static_cast<node_id>(n); ++id)
      m.voters[id] = "n" + std::to_string(id);
    for (node_id id = 1; id <= static_cast<node_id>(n); ++id) {
      node_config nc;
      nc.core.id = id;
      nc.core.cluster_id = 3;
      nc.core.random_seed = id * 7919;
      nc.core.heartbeat_interval = 30ms;
      nc.detached_storage = false; // the storage worker runs on the scheduler
      auto sm = make_sm ? make_sm() : std::make_shared<counter>();
      auto node
        = spawn_node(*sys, nc, sm, std::make_shared<memory_stable_store>(),
                     std::make_shared<memory_log_store>(),
                     std::make_shared<memory_snapshot_store>(), router);
      nodes[id] = node;
      caf::anon_send(router, router_attach{id, node});
      caf::anon_send(node, admin_initialize{m});
    }
    sched->run();
  }

  ~det_cluster() {
    for (auto& kv : nodes)
      caf::anon_send_exit(kv.second, caf::exit_reason::kill);
    caf::anon_send_exit(router, caf::exit_reason::kill);
    sched->run();
  }

  /// Asks `node` from a helper actor and runs the scheduler; the answer,
  /// or nothing if none came (the error, if any, goes to `err`).
  template <class Result, class Msg>
  std::optional<Result> ask(node_actor node, Msg msg,
                            caf::error* err = nullptr) {
    auto out = std::make_shared<std::optional<Result>>();
    auto error = std::make_shared<caf::error>();
    sys->spawn(
      [](caf::event_based_actor* self, node_actor to, Msg m,
         std::shared_ptr<std::optional<Result>> res,
         std::shared_ptr<caf::error> e) {
        self->request(to, 10s, std::move(m))
          .then([res](Result& r) { *res = std::move(r); },
                [e](caf::error& x) { *e = std::move(x); });
      },
      node, std::move(msg), out, error);
    sched->run();
    if (err)
      *err = *error;
    return *out;
  }

  /// Advances virtual time in 1 ms steps, running every message, until
  /// `done` holds or `limit` passed; returns whether it held.
  bool run_until(const std::function<bool()>& done, caf::timespan limit) {
    for (caf::timespan t{0}; t < limit; t += 1ms) {
      sched->run();
      if (done())
        return true;
      sched->advance_time(1ms);
    }
    sched->run();
    return done();
  }

  /// The nodes that consider themselves leader.
  std::vector<node_id> leaders() {
    std::vector<node_id> out;
    for (auto& kv : nodes)
      if (auto m = ask<node_metrics>(kv.second, admin_get_metrics{});
          m && m->role == node_role::leader)
        out.push_back(kv.first);
    return out;
  }
};

} // namespace

TEST_CASE("deterministic: a leader emerges in virtual time, replicates a "
          "write, serves a linearizable read, and keeps its followers quiet") {
  det_cluster c(3);
  std::vector<node_id> leaders;
  REQUIRE(c.run_until(
    [&] {
      leaders = c.leaders();
      return leaders.size() == 1;
    },
    2s));
  auto leader = leaders.front();
  auto term = c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{})->term;

  caf::error err;
  auto w = c.ask<write_result>(c.nodes[leader], client_write{{1}}, &err);
  REQUIRE_MESSAGE(w, c.sys->render(err));
  CHECK(w->response == counter::encode(1));
  auto r = c.ask<read_result>(c.nodes[leader], client_read{}, &err);
  REQUIRE_MESSAGE(r, c.sys->render(err));
  CHECK(r->answer == counter::encode(1));

  // Ten virtual seconds of heartbeats: no election, same leader and term.
  c.run_until([] { return false; }, 10s);
  CHECK(c.leaders() == std::vector<node_id>{leader});
  CHECK(c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{})->term
        == term);
  for (auto& kv : c.nodes) {
    auto m = c.ask<node_metrics>(kv.second, admin_get_metrics{});
    REQUIRE(m);
    CHECK(m->commit_index == w->index);
    CHECK(m->last_applied == w->index);
  }
}

TEST_CASE("deterministic: a partitioned leader loses its role and the rest "
          "elect another within a few election timeouts") {
  det_cluster c(3);
  std::vector<node_id> leaders;
  REQUIRE(c.run_until(
    [&] {
      leaders = c.leaders();
      return leaders.size() == 1;
    },
    2s));
  auto old = leaders.front();
  for (node_id id = 1; id <= 3; ++id) {
    if (id == old)
      continue;
    caf::anon_send(c.router, router_cut{old, id, true});
    caf::anon_send(c.router, router_cut{id, old, true});
  }
  REQUIRE(c.run_until(
    [&] {
      leaders = c.leaders();
      return leaders.size() == 1 && leaders.front() != old;
    },
    3s));
  // Check-quorum: the isolated node stepped down on its own.
  auto m = c.ask<node_metrics>(c.nodes[old], admin_get_metrics{});
  REQUIRE(m);
  CHECK(m->role != node_role::leader);
}

namespace {

/// Records the metrics updates a subscriber receives.
metrics_listener_actor::behavior_type
metrics_recorder(std::shared_ptr<std::vector<node_metrics>> seen) {
  return {
    [seen](node_metrics& m) { seen->push_back(std::move(m)); },
  };
}

raft_error code_of(const caf::error& e) {
  REQUIRE(e.category() == raft_error_category);
  return static_cast<raft_error>(e.code());
}

node_id leader_of(det_cluster& c) {
  std::vector<node_id> leaders;
  REQUIRE(c.run_until(
    [&] {
      leaders = c.leaders();
      return leaders.size() == 1;
    },
    2s));
  return leaders.front();
}

} // namespace

TEST_CASE("deterministic: a metrics subscriber hears role changes at once "
          "and moving indices at most every metrics_interval, until it "
          "unsubscribes") {
  det_cluster c(3);
  auto leader = leader_of(c);
  auto seen = std::make_shared<std::vector<node_metrics>>();
  auto rec = c.sys->spawn(metrics_recorder, seen);
  REQUIRE(c.ask<admin_done>(c.nodes[leader], admin_subscribe_metrics{rec}));
  REQUIRE(seen->size() == 1); // the current metrics, at once
  CHECK(seen->front().role == node_role::leader);
  CHECK(seen->front().lag.size() == 2);

  // 100 writes over one virtual second: far fewer updates than writes.
  for (int i = 0; i < 100; ++i) {
    REQUIRE(c.ask<write_result>(c.nodes[leader], client_write{{1}}));
    c.run_until([] { return false; }, 10ms);
  }
  c.run_until([] { return false; }, 200ms);
  auto updates = seen->size() - 1;
  CHECK(updates >= 5);
  CHECK(updates <= 15); // about 1 s / 100 ms
  const auto& last = seen->back();
  CHECK(last.commit_index == last.last_log_index);
  CHECK(last.last_applied == last.commit_index);
  for (const auto& kv : last.lag)
    CHECK(kv.second == 0);

  // A leadership transfer is reported without delay.
  auto target = leader == 1 ? node_id{2} : node_id{1};
  seen->clear();
  REQUIRE(
    c.ask<admin_done>(c.nodes[leader], admin_transfer_leadership{target}));
  REQUIRE_FALSE(seen->empty());
  CHECK(seen->back().role == node_role::follower);

  REQUIRE(c.ask<admin_done>(c.nodes[leader], admin_unsubscribe_metrics{rec}));
  seen->clear();
  c.run_until([] { return false; }, 1s);
  CHECK(seen->empty());
  caf::anon_send_exit(rec, caf::exit_reason::kill);
}

TEST_CASE("deterministic: remove_node removes a voter by joint consensus and "
          "a learner directly; an unknown id is refused with unknown_node") {
  det_cluster c(3);
  auto leader = leader_of(c);
  REQUIRE(c.ask<admin_done>(c.nodes[leader], admin_add_learner{9, "n9"}));
  REQUIRE(c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{})
            ->config.learners.count(9));
  REQUIRE(c.ask<admin_done>(c.nodes[leader], admin_remove_node{9}));
  CHECK(c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{})
          ->config.learners.empty());

  auto victim = leader == 3 ? node_id{2} : node_id{3};
  caf::error err;
  REQUIRE_MESSAGE(
    c.ask<admin_done>(c.nodes[leader], admin_remove_node{victim}, &err),
    c.sys->render(err));
  auto m = c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{});
  REQUIRE(m);
  CHECK_FALSE(m->config.joint);
  CHECK(m->config.voters.size() == 2);
  CHECK_FALSE(m->config.voters.count(victim));
  // The two left still make progress.
  CHECK(c.ask<write_result>(c.nodes[leader], client_write{{1}}));

  CHECK_FALSE(c.ask<admin_done>(c.nodes[leader], admin_remove_node{42}, &err));
  CHECK(code_of(err) == raft_error::unknown_node);
}

TEST_CASE("deterministic: trigger_snapshot builds a snapshot of everything "
          "applied, even with compaction off, and answers once it is "
          "durable") {
  det_cluster c(3);
  auto leader = leader_of(c);
  for (int i = 0; i < 5; ++i)
    REQUIRE(c.ask<write_result>(c.nodes[leader], client_write{{1}}));
  auto before = c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{});
  REQUIRE(before);
  CHECK(before->snapshot_index == 0);
  caf::error err;
  REQUIRE_MESSAGE(
    c.ask<admin_done>(c.nodes[leader], admin_trigger_snapshot{}, &err),
    c.sys->render(err));
  auto after = c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{});
  REQUIRE(after);
  CHECK(after->snapshot_index == before->last_applied);
  // The counters saw it all: one election won, five proposals, one
  // snapshot built, none installed.
  CHECK(before->counters.snapshots_built == 0);
  CHECK(after->counters.snapshots_built == 1);
  CHECK(after->counters.proposals == 5);
  CHECK(after->counters.leaderships == 1);
  CHECK(after->counters.elections >= 1);
  CHECK(after->counters.snapshots_installed == 0);
  // Followers can be asked too.
  auto follower = leader == 1 ? node_id{2} : node_id{1};
  auto fm = c.ask<node_metrics>(c.nodes[follower], admin_get_metrics{});
  REQUIRE(fm);
  REQUIRE(fm->last_applied > 1);
  REQUIRE(c.ask<admin_done>(c.nodes[follower], admin_trigger_snapshot{}));
  CHECK(
    c.ask<node_metrics>(c.nodes[follower], admin_get_metrics{})->snapshot_index
    >= fm->last_applied);
}

TEST_CASE("deterministic: a write forwarded over a cut link fails with "
          "unknown_outcome once the forwarding node gives up, and works "
          "again when the link heals") {
  det_cluster c(3);
  auto leader = leader_of(c);
  auto follower = leader == 1 ? node_id{2} : node_id{1};
  caf::anon_send(c.router, router_cut{follower, leader, true});
  c.sched->run();
  auto res = std::make_shared<std::optional<write_result>>();
  auto err = std::make_shared<caf::error>();
  c.sys->spawn(
    [res, err](caf::event_based_actor* self, node_actor to) {
      self->request(to, 60s, client_write{{1}})
        .then([res](write_result& r) { *res = r; },
              [err](caf::error& e) { *err = e; });
    },
    c.nodes[follower]);
  // The forwarding node waits request_timeout (5 s) for the leader.
  CHECK(c.run_until([&] { return *res || *err; }, 7s));
  REQUIRE_FALSE(*res);
  CHECK(code_of(*err) == raft_error::unknown_outcome);
  // Nothing was applied: the write never reached the leader.
  auto r = c.ask<read_result>(c.nodes[leader], client_read{});
  REQUIRE(r);
  CHECK(r->answer == counter::encode(0));

  caf::anon_send(c.router, router_cut{follower, leader, false});
  c.sched->run();
  auto w = c.ask<write_result>(c.nodes[follower], client_write{{1}});
  REQUIRE(w);
  CHECK(w->response == counter::encode(1));
}

namespace {

/// A counter whose apply throws on the command {0xff}.
class poisoned_counter : public counter {
public:
  std::vector<std::vector<uint8_t>>
  apply(const std::vector<log_entry>& entries) override {
    for (const auto& e : entries)
      if (e.kind == entry_kind::normal
          && e.payload == std::vector<uint8_t>{0xff})
        throw std::runtime_error("poisoned command");
    return counter::apply(entries);
  }
};

} // namespace

TEST_CASE("deterministic: when the state machine throws, the node stops with "
          "a clear error, answers every pending request, and applies "
          "nothing after the failing entry") {
  det_cluster c(3, [] { return std::make_shared<poisoned_counter>(); });
  auto leader = leader_of(c);
  REQUIRE(c.ask<write_result>(c.nodes[leader], client_write{{1}}));
  auto before = c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{});
  REQUIRE(before);
  // The poison and a write behind it, sent together.
  std::vector<std::shared_ptr<caf::error>> errs;
  for (auto payload : {uint8_t{0xff}, uint8_t{1}}) {
    auto e = std::make_shared<caf::error>();
    errs.push_back(e);
    c.sys->spawn(
      [e](caf::event_based_actor* self, node_actor to, uint8_t p) {
        self->request(to, 60s, client_write{{p}})
          .then([](write_result&) {}, [e](caf::error& x) { *e = x; });
      },
      c.nodes[leader], payload);
  }
  REQUIRE(c.run_until([&] { return *errs[0] && *errs[1]; }, 2s));
  CHECK(c.sys->render(*errs[0]).find("poisoned command") != std::string::npos);
  CHECK(code_of(*errs[0]) == raft_error::storage_failed);
  CHECK(code_of(*errs[1]) == raft_error::storage_failed);
  // Every replica that learns the entry is committed stops at it too; none
  // skips it to carry on (a follower that never heard of the commit stays
  // up, short of it).
  auto poison = before->last_log_index + 1;
  c.run_until([] { return false; }, 1s);
  int stopped = 0;
  for (auto& kv : c.nodes) {
    caf::error e;
    auto m = c.ask<node_metrics>(kv.second, admin_get_metrics{}, &e);
    if (!m) {
      CHECK(e); // the node is gone
      ++stopped;
      continue;
    }
    CHECK(m->last_applied < poison);
  }
  CHECK(stopped >= 1);
  CAPTURE(stopped);
}

namespace {

/// A counter that refuses the command {0xee} before it is proposed.
class picky_counter : public counter {
public:
  std::string check_command(const std::vector<uint8_t>& p) const override {
    return p == std::vector<uint8_t>{0xee} ? "0xee is not a command" : "";
  }
};

} // namespace

TEST_CASE("deterministic: a command the state machine refuses is answered "
          "invalid_argument and never appended, at the leader and through "
          "a follower") {
  det_cluster c(3, [] { return std::make_shared<picky_counter>(); });
  auto leader = leader_of(c);
  auto follower = leader == 1 ? node_id{2} : node_id{1};
  auto before = c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{});
  REQUIRE(before);
  for (auto at : {leader, follower}) {
    caf::error e;
    CHECK_FALSE(c.ask<write_result>(c.nodes[at], client_write{{0xee}}, &e));
    CHECK(code_of(e) == raft_error::invalid_argument);
    CHECK(c.sys->render(e).find("0xee is not a command") != std::string::npos);
  }
  auto after = c.ask<node_metrics>(c.nodes[leader], admin_get_metrics{});
  REQUIRE(after);
  CHECK(after->last_log_index == before->last_log_index);
  // Other commands go on as before.
  auto w = c.ask<write_result>(c.nodes[leader], client_write{{1}});
  REQUIRE(w);
  CHECK(w->response == counter::encode(1));
}
