// Replication streams and snapshot senders between real node actors, under
// CAF's deterministic test scheduler, with a router that can hold, refuse,
// cut and drop traffic: the transport window and merging, heartbeats that
// pass a stalled batch, backoff while a peer is unreachable, and a snapshot
// streamed in chunks (one of them lost) to a node that fell behind.
#include "actors/local_router.hpp"
#include "actors/replication_stream.hpp"
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

/// One message a node handed to the router.
struct packet {
  node_id from = no_node;
  node_id to = no_node;
  /// "append" (with entries), "heartbeat", "install", or the RPC name.
  std::string kind;
  size_t entries = 0;
  index_t first = 0;
  uint64_t offset = 0;
  /// Virtual time it arrived at the router.
  caf::actor_clock::time_point at;
  /// What happened: "delivered", "held", "refused", "cut", "dropped".
  std::string fate;
};

/// What the test tells the router, and what the router saw.
struct control {
  /// Entry-carrying packets to this node are held (not confirmed, not
  /// delivered) until router_release.
  node_id hold_entries_to = no_node;
  /// Packets to this node are refused (the transport reports an error).
  node_id refuse_to = no_node;
  /// Links (from, to) that lose everything.
  std::set<std::pair<node_id, node_id>> cuts;
  /// Install chunks with offset > 0 to drop (accepted, then lost).
  int drop_install_chunks = 0;
  std::vector<packet> seen;
};

/// Deliver (and confirm) everything held.
struct router_release {
  int unused = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, router_release& x) {
  return f(caf::meta::type_name("test::router_release"), x.unused);
}

using test_router_actor
  = local_router_actor::extend<caf::reacts_to<router_release>>;

struct held_packet {
  caf::response_promise promise;
  raft_message message;
};

struct test_router_state {
  std::shared_ptr<control> ctl;
  std::map<node_id, node_actor> nodes;
  std::vector<held_packet> held;
  static inline const char* name = "test_router";
};

packet describe(const raft_message& m, caf::actor_clock::time_point at) {
  packet p;
  const auto& h = header_of(m);
  p.from = h.from;
  p.to = h.to;
  p.at = at;
  if (auto* a = std::get_if<append_entries_request>(&m)) {
    p.kind = a->entries.empty() ? "heartbeat" : "append";
    p.entries = a->entries.size();
    p.first = a->entries.empty() ? 0 : a->entries.front().id.index;
  } else if (auto* s = std::get_if<install_snapshot_request>(&m)) {
    p.kind = "install";
    p.offset = s->offset;
  } else {
    p.kind = message_name(m);
  }
  return p;
}

test_router_actor::behavior_type
test_router(test_router_actor::stateful_pointer<test_router_state> self,
            std::shared_ptr<control> ctl) {
  self->state.ctl = std::move(ctl);
  // Decides a message's fate; returns true if it should be delivered.
  auto route = [self](const raft_message& m, bool confirmed,
                      std::string& fate) {
    auto& st = self->state;
    auto& c = *st.ctl;
    auto p = describe(m, self->clock().now());
    if (c.cuts.count({p.from, p.to})) {
      fate = "cut";
    } else if (p.kind == "install" && p.offset > 0
               && c.drop_install_chunks > 0) {
      --c.drop_install_chunks;
      fate = "dropped";
    } else if (confirmed && p.to == c.refuse_to) {
      fate = "refused";
    } else if (confirmed && p.kind == "append" && p.to == c.hold_entries_to) {
      fate = "held";
    } else {
      fate = "delivered";
    }
    p.fate = fate;
    c.seen.push_back(p);
    return fate == "delivered";
  };
  return {
    [self, route](peer_message& m) {
      std::string fate;
      auto to = header_of(m.message).to;
      if (route(m.message, false, fate) && self->state.nodes.count(to))
        self->send(self->state.nodes[to], std::move(m));
    },
    [self, route](peer_packet& p) -> caf::result<peer_accepted> {
      std::string fate;
      auto to = header_of(p.message).to;
      bool deliver = route(p.message, true, fate);
      if (fate == "refused")
        return make_error(raft_error::unknown_node, "refused (test)");
      if (fate == "held") {
        auto rp = self->make_response_promise<peer_accepted>();
        self->state.held.push_back({rp, std::move(p.message)});
        return rp;
      }
      if (deliver && self->state.nodes.count(to))
        self->send(self->state.nodes[to], peer_message{std::move(p.message)});
      return peer_accepted{};
    },
    [self](forwarded_write& w) -> caf::result<write_result> {
      auto it = self->state.nodes.find(w.to);
      if (it == self->state.nodes.end())
        return make_error(raft_error::unknown_node, "no route");
      return self->delegate(it->second, std::move(w));
    },
    [](peer_directory&) {},
    [self](router_attach& a) { self->state.nodes[a.id] = a.node; },
    [self](router_cut c) {
      if (c.cut)
        self->state.ctl->cuts.insert({c.from, c.to});
      else
        self->state.ctl->cuts.erase({c.from, c.to});
    },
    [self](router_release) {
      auto& st = self->state;
      auto held = std::move(st.held);
      st.held.clear();
      for (auto& h : held) {
        auto to = header_of(h.message).to;
        st.ctl->seen.push_back(describe(h.message, self->clock().now()));
        st.ctl->seen.back().fate = "released";
        self->send(st.nodes[to], peer_message{std::move(h.message)});
        h.promise.deliver(peer_accepted{});
      }
    },
  };
}

struct cluster {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<control> ctl = std::make_shared<control>();
  test_router_actor router;
  std::map<node_id, node_actor> nodes;

  explicit cluster(const std::function<void(node_config&)>& tune = {}) {
    add_node_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sys->await_actors_before_shutdown(false);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    router = sys->spawn(test_router, ctl);
    membership m;
    for (node_id id = 1; id <= 3; ++id)
      m.voters[id] = "n" + std::to_string(id);
    for (node_id id = 1; id <= 3; ++id) {
      node_config nc;
      nc.core.id = id;
      nc.core.cluster_id = 5;
      nc.core.random_seed = id * 104729;
      nc.core.heartbeat_interval = 30ms;
      nc.detached_storage = false;
      if (tune)
        tune(nc);
      auto node = spawn_node(*sys, nc, std::make_shared<counter>(),
                             std::make_shared<memory_stable_store>(),
                             std::make_shared<memory_log_store>(),
                             std::make_shared<memory_snapshot_store>(),
                             caf::actor_cast<router_actor>(router));
      nodes[id] = node;
      caf::anon_send(router, router_attach{id, node});
      caf::anon_send(node, admin_initialize{m});
    }
    sched->run();
  }

  ~cluster() {
    for (auto& kv : nodes)
      caf::anon_send_exit(kv.second, caf::exit_reason::kill);
    caf::anon_send_exit(router, caf::exit_reason::kill);
    sched->run();
  }

  node_metrics metrics(node_id id) {
    auto out = std::make_shared<std::optional<node_metrics>>();
    sys->spawn(
      [out](caf::event_based_actor* self, node_actor to) {
        self->request(to, 10s, admin_get_metrics{})
          .then([out](node_metrics& m) { *out = m; });
      },
      nodes[id]);
    sched->run();
    REQUIRE(*out);
    return **out;
  }

  /// Sends `n` writes to `to` without waiting; answers land in `results`.
  void write_async(node_id to, int n,
                   std::shared_ptr<std::vector<write_result>> results,
                   std::shared_ptr<std::vector<std::string>> errors) {
    for (int i = 0; i < n; ++i)
      sys->spawn(
        [results, errors](caf::event_based_actor* self, node_actor node) {
          self->request(node, 60s, client_write{{1}})
            .then(
              [results](write_result& r) { results->push_back(std::move(r)); },
              [errors, self](caf::error& e) {
                errors->push_back(self->system().render(e));
              });
        },
        nodes[to]);
    sched->run();
  }

  /// Advances virtual time in 1 ms steps until `done` or `limit`.
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

  node_id elect() {
    node_id leader = no_node;
    REQUIRE(run_until(
      [&] {
        for (node_id id = 1; id <= 3; ++id)
          if (metrics(id).role == node_role::leader)
            leader = id;
        return leader != no_node;
      },
      3s));
    // Let the followers answer a few heartbeats (replicate state).
    run_until([] { return false; }, 100ms);
    return leader;
  }

  std::vector<packet> seen(node_id from, node_id to, const std::string& kind,
                           const std::string& fate = {}) const {
    std::vector<packet> out;
    for (const auto& p : ctl->seen)
      if (p.from == from && p.to == to && p.kind == kind
          && (fate.empty() || p.fate == fate))
        out.push_back(p);
    return out;
  }
};

node_id other_than(node_id a, node_id b = no_node) {
  for (node_id id = 1; id <= 3; ++id)
    if (id != a && id != b)
      return id;
  return no_node;
}

} // namespace

TEST_CASE("replication stream: at most max_unconfirmed_sends batches wait on "
          "the transport, heartbeats pass a stalled batch, and requests that "
          "queued meanwhile go out merged") {
  cluster c; // max_unconfirmed_sends 4, max_inflight_appends 32 (defaults)
  auto leader = c.elect();
  auto slow = other_than(leader);
  auto term = c.metrics(slow).term;
  c.ctl->hold_entries_to = slow;
  auto results = std::make_shared<std::vector<write_result>>();
  auto errors = std::make_shared<std::vector<std::string>>();
  c.write_async(leader, 50, results, errors);

  // Each write went out to `slow` on its own (the core pipelines up to 32);
  // the transport holds 4 and the stream keeps the rest back.
  CHECK(c.seen(leader, slow, "append", "held").size() == 4);
  for (const auto& p : c.seen(leader, slow, "append", "held"))
    CHECK(p.entries == 1);
  // The other follower makes a majority: everything commits meanwhile.
  REQUIRE(c.run_until([&] { return results->size() == 50; }, 2s));
  CHECK(errors->empty());

  // Heartbeats are not stuck behind the held batches: for more than an
  // election timeout `slow` hears from its leader and never campaigns.
  auto before = c.seen(leader, slow, "heartbeat", "delivered").size();
  c.run_until([] { return false; }, 400ms);
  CHECK(c.seen(leader, slow, "heartbeat", "delivered").size() >= before + 10);
  auto m = c.metrics(slow);
  CHECK(m.term == term);
  CHECK(m.leader == leader);
  CHECK(m.role == node_role::follower);

  // Release: the 28 requests that queued behind the 4 leave as one.
  c.ctl->hold_entries_to = no_node;
  caf::anon_send(c.router, router_release{});
  auto last = c.metrics(leader).last_log_index;
  REQUIRE(
    c.run_until([&] { return c.metrics(slow).last_applied == last; }, 1s));
  auto released = c.seen(leader, slow, "append", "released");
  REQUIRE(released.size() == 4);
  std::vector<packet> after;
  for (const auto& p : c.seen(leader, slow, "append", "delivered"))
    if (p.first > released.back().first)
      after.push_back(p);
  REQUIRE_FALSE(after.empty());
  CHECK(after.front().first == released.back().first + 1);
  CHECK(after.front().entries == 28);
}

TEST_CASE("replication stream: while the transport refuses a peer the stream "
          "backs off (capped, exponential), the others go on, and the peer "
          "catches up soon after it is reachable again") {
  cluster c([](node_config& nc) {
    nc.transport_backoff_min = 5ms;
    nc.transport_backoff_max = 80ms;
  });
  auto leader = c.elect();
  auto down = other_than(leader);
  c.ctl->refuse_to = down;
  auto start = c.sys->clock().now();
  auto results = std::make_shared<std::vector<write_result>>();
  auto errors = std::make_shared<std::vector<std::string>>();
  c.write_async(leader, 20, results, errors);
  c.run_until([] { return false; }, 1s);
  CHECK(results->size() == 20); // the other follower is a majority
  CHECK(errors->empty());

  // Attempts bunch up at the end of each pause; in the last 400 ms (pauses
  // at the 80 ms cap) there are at most 400/80 + 1 distinct attempt times,
  // where without backoff every 30 ms heartbeat would be one.
  auto refused = c.seen(leader, down, "heartbeat", "refused");
  auto appends = c.seen(leader, down, "append", "refused");
  refused.insert(refused.end(), appends.begin(), appends.end());
  REQUIRE(refused.size() >= 3);
  std::set<caf::actor_clock::time_point> late;
  for (const auto& p : refused)
    if (p.at >= start + 600ms)
      late.insert(p.at);
  CHECK(late.size() <= 6);
  CHECK(late.size() >= 3);
  // The pauses grew: the first two attempts are close, the last far apart.
  std::set<caf::actor_clock::time_point> times;
  for (const auto& p : refused)
    times.insert(p.at);
  std::vector<caf::actor_clock::time_point> t(times.begin(), times.end());
  REQUIRE(t.size() >= 4);
  // (Early pauses are shorter than the heartbeat interval: attempts then
  // come with the heartbeats.)
  CHECK(t[1] - t[0] <= 35ms);
  CHECK(t[t.size() - 1] - t[t.size() - 2] >= 60ms);

  // Reachable again: caught up within one pause and a heartbeat round or
  // two, not after an election timeout of waiting for lost answers.
  c.ctl->refuse_to = no_node;
  auto last = c.metrics(leader).last_log_index;
  CHECK(
    c.run_until([&] { return c.metrics(down).last_log_index == last; }, 150ms));
  CHECK(c.metrics(leader).role == node_role::leader);
}

TEST_CASE("snapshot sender: a node that missed compacted entries gets the "
          "snapshot in chunks, a lost chunk is sent again, and heartbeats go "
          "on meanwhile") {
  cluster c([](node_config& nc) {
    nc.core.snapshot_interval = 10;
    nc.core.snapshot_trailing_entries = 2;
    nc.core.snapshot_chunk_bytes = 8;
  });
  auto leader = c.elect();
  auto behind = other_than(leader);
  auto term = c.metrics(behind).term;
  caf::anon_send(c.router, router_cut{leader, behind, true});
  caf::anon_send(c.router, router_cut{behind, leader, true});
  auto results = std::make_shared<std::vector<write_result>>();
  auto errors = std::make_shared<std::vector<std::string>>();
  c.write_async(leader, 40, results, errors);
  REQUIRE(c.run_until([&] { return results->size() == 40; }, 2s));
  auto lm = c.metrics(leader);
  REQUIRE(lm.snapshot_index >= 30);
  // The cut node campaigns meanwhile (pre-vote: its term stays).
  c.ctl->drop_install_chunks = 1;
  caf::anon_send(c.router, router_cut{leader, behind, false});
  caf::anon_send(c.router, router_cut{behind, leader, false});
  REQUIRE(c.run_until(
    [&] { return c.metrics(behind).last_applied == lm.last_log_index; }, 3s));
  auto m = c.metrics(behind);
  CHECK(m.snapshot_index >= 30);
  CHECK(m.term == term);
  CHECK(m.leader == leader);
  // Several chunks, one of them lost and sent again.
  auto chunks = c.seen(leader, behind, "install");
  CHECK(chunks.size() >= 4);
  CHECK(c.seen(leader, behind, "install", "dropped").size() == 1);
  // Its state machine holds all 40 writes.
  auto answer = std::make_shared<std::optional<read_result>>();
  c.sys->spawn(
    [answer](caf::event_based_actor* self, node_actor to) {
      self->request(to, 10s, client_read{{}, consistency::stale})
        .then([answer](read_result& r) { *answer = r; });
    },
    c.nodes[behind]);
  c.sched->run();
  REQUIRE(*answer);
  CHECK((*answer)->answer == counter::encode(40));
}
