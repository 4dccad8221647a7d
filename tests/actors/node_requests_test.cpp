// How a node answers its clients, under CAF's deterministic test scheduler
// (one thread, virtual time): durability gates every vote grant and append
// acknowledgement (thesis §3.8), followers forward writes to the leader,
// exactly-once sessions answer a retry from the session table (thesis
// §6.3), and every request gets an answer, even when the node stops while
// it waits or is gone already.
#include "actors/client_sessions.hpp"
#include "actors/local_router.hpp"
#include "libraft_actor/node.hpp"
#include "storage/memory_store.hpp"
#include "tests/actors/counter_state_machine.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

using namespace raft_actor;
using raft_actor::test::counter;
using namespace std::chrono_literals;

namespace {

// -- recording of storage completions and sent messages ----------------------

/// One thing that happened, in the order it happened (one thread).
struct recorded {
  enum kind_t { appended, truncated, synced, saved, sent } kind = sent;
  /// The node whose store or message this is.
  node_id node = no_node;
  /// appended/synced: the store's last index afterwards; truncated: `from`.
  index_t index = 0;
  /// saved: what was saved.
  hard_state state;
  /// sent: the message (as the router received it).
  std::optional<raft_message> message;
};

using event_log = std::vector<recorded>;

std::string describe(const recorded& r) {
  std::ostringstream os;
  os << "node " << r.node << ' ';
  switch (r.kind) {
    case recorded::appended:
      os << "appended up to index " << r.index;
      break;
    case recorded::truncated:
      os << "truncated from index " << r.index;
      break;
    case recorded::synced:
      os << "synced up to index " << r.index;
      break;
    case recorded::saved:
      os << "saved term " << r.state.current_term << " vote "
         << r.state.voted_for;
      break;
    case recorded::sent: {
      const auto& m = *r.message;
      os << "sent " << message_name(m) << " to node " << header_of(m).to
         << " term " << term_of(m);
      if (auto* a = std::get_if<append_entries_response>(&m))
        os << " success " << a->success << " match_index " << a->match_index;
      if (auto* v = std::get_if<request_vote_response>(&m))
        os << " granted " << v->vote_granted << " pre_vote " << v->pre_vote;
      break;
    }
  }
  return os.str();
}

/// A memory log store that reports appends, truncations and syncs.
class recording_log_store : public memory_log_store {
public:
  recording_log_store(node_id id, std::shared_ptr<event_log> events)
      : id_(id), events_(std::move(events)) {}
  void append(const std::vector<log_entry>& entries) override {
    memory_log_store::append(entries);
    push(recorded::appended, last_id().index);
  }
  void truncate_from(index_t from) override {
    memory_log_store::truncate_from(from);
    push(recorded::truncated, from);
  }
  void sync() override {
    memory_log_store::sync();
    // Durable from here on: everything up to the current last entry.
    push(recorded::synced, last_id().index);
  }

private:
  void push(recorded::kind_t kind, index_t index) {
    recorded r;
    r.kind = kind;
    r.node = id_;
    r.index = index;
    events_->push_back(std::move(r));
  }
  node_id id_;
  std::shared_ptr<event_log> events_;
};

/// A memory stable store that reports every save once it returned.
class recording_stable_store : public memory_stable_store {
public:
  recording_stable_store(node_id id, std::shared_ptr<event_log> events)
      : id_(id), events_(std::move(events)) {}
  void save(const hard_state& state) override {
    memory_stable_store::save(state);
    recorded r;
    r.kind = recorded::saved;
    r.node = id_;
    r.state = state;
    events_->push_back(std::move(r));
  }

private:
  node_id id_;
  std::shared_ptr<event_log> events_;
};

struct recording_router_state {
  std::map<node_id, node_actor> nodes;
  std::set<std::pair<node_id, node_id>> cuts;
  std::shared_ptr<event_log> events;
  static inline const char* name = "recording_router";
};

void record_sent(recording_router_state& st, const raft_message& m) {
  recorded r;
  r.kind = recorded::sent;
  r.node = header_of(m).from;
  r.message = m;
  st.events->push_back(std::move(r));
}

/// Behaves like local_router, but first records every Raft message a node
/// sends (cut links included: the node did send it).
local_router_actor::behavior_type recording_router(
  local_router_actor::stateful_pointer<recording_router_state> self,
  std::shared_ptr<event_log> events) {
  self->state.events = std::move(events);
  return {
    [self](peer_message& m) {
      auto& st = self->state;
      record_sent(st, m.message);
      const auto& h = header_of(m.message);
      if (st.cuts.count({h.from, h.to}))
        return;
      auto it = st.nodes.find(h.to);
      if (it != st.nodes.end())
        self->send(it->second, std::move(m));
    },
    [self](peer_packet& p) -> caf::result<peer_accepted> {
      auto& st = self->state;
      record_sent(st, p.message);
      const auto& h = header_of(p.message);
      auto it = st.nodes.find(h.to);
      if (it == st.nodes.end())
        return make_error(raft_error::unknown_node,
                          "no route to node " + std::to_string(h.to));
      if (!st.cuts.count({h.from, h.to}))
        self->send(it->second, peer_message{std::move(p.message)});
      return peer_accepted{};
    },
    [self](forwarded_write& w) -> caf::result<write_result> {
      auto it = self->state.nodes.find(w.to);
      if (it == self->state.nodes.end())
        return make_error(raft_error::unknown_node,
                          "no route to node " + std::to_string(w.to));
      return self->delegate(it->second, std::move(w));
    },
    [](peer_directory&) {},
    [self](router_attach& a) { self->state.nodes[a.id] = a.node; },
    [self](router_cut c) {
      if (c.cut)
        self->state.cuts.insert({c.from, c.to});
      else
        self->state.cuts.erase({c.from, c.to});
    },
  };
}

// -- the cluster --------------------------------------------------------------

/// The answer to one request made from a helper actor.
template <class Result>
struct reply {
  bool done = false;
  std::optional<Result> value;
  caf::error error;
};

struct cluster_options {
  int size = 3;
  bool forward_to_leader = true;
  /// Record storage completions and sent messages into `events`.
  bool record = false;
};

struct req_cluster {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<event_log> events = std::make_shared<event_log>();
  local_router_actor router;
  std::map<node_id, node_actor> nodes;
  std::map<node_id, std::shared_ptr<counter>> machines;
  std::map<node_id, std::shared_ptr<log_store>> logs;
  std::vector<caf::actor> helpers;

  explicit req_cluster(cluster_options opts = {}) {
    add_node_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sys->await_actors_before_shutdown(false);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    router = opts.record ? sys->spawn(recording_router, events)
                         : spawn_local_router(*sys);
    membership m;
    for (node_id id = 1; id <= static_cast<node_id>(opts.size); ++id)
      m.voters[id] = "n" + std::to_string(id);
    for (node_id id = 1; id <= static_cast<node_id>(opts.size); ++id) {
      node_config nc;
      nc.core.id = id;
      nc.core.cluster_id = 5;
      nc.core.random_seed = id * 7919;
      nc.core.heartbeat_interval = 30ms;
      nc.detached_storage = false; // the storage worker runs on the scheduler
      nc.forward_to_leader = opts.forward_to_leader;
      std::shared_ptr<stable_store> stable;
      std::shared_ptr<log_store> log;
      if (opts.record) {
        stable = std::make_shared<recording_stable_store>(id, events);
        log = std::make_shared<recording_log_store>(id, events);
      } else {
        stable = std::make_shared<memory_stable_store>();
        log = std::make_shared<memory_log_store>();
      }
      auto sm = std::make_shared<counter>();
      machines[id] = sm;
      logs[id] = log;
      auto node = spawn_node(*sys, nc, sm, stable, log,
                             std::make_shared<memory_snapshot_store>(), router);
      nodes[id] = node;
      caf::anon_send(router, router_attach{id, node});
      caf::anon_send(node, admin_initialize{m});
    }
    sched->run();
  }

  ~req_cluster() {
    for (auto& h : helpers)
      caf::anon_send_exit(h, caf::exit_reason::kill);
    for (auto& kv : nodes)
      caf::anon_send_exit(kv.second, caf::exit_reason::kill);
    caf::anon_send_exit(router, caf::exit_reason::kill);
    sched->run();
    sched->clock().cancel_all();
  }

  /// Sends `msg` to `to` from a new helper actor (a request with `timeout`);
  /// the answer lands in the returned reply once the scheduler runs it.
  template <class Result, class Msg>
  std::shared_ptr<reply<Result>> request(node_actor to, Msg msg,
                                         caf::timespan timeout = 60s) {
    auto out = std::make_shared<reply<Result>>();
    auto helper = sys->spawn(
      [](caf::event_based_actor* self, node_actor dest, Msg m, caf::timespan t,
         std::shared_ptr<reply<Result>> res) {
        self->request(dest, t, std::move(m))
          .then(
            [res](Result& r) {
              res->value = std::move(r);
              res->done = true;
            },
            [res](caf::error& e) {
              res->error = std::move(e);
              res->done = true;
            });
      },
      to, std::move(msg), timeout, out);
    helpers.push_back(caf::actor_cast<caf::actor>(helper));
    return out;
  }

  /// Requests and runs every message (no virtual time passes).
  template <class Result, class Msg>
  std::shared_ptr<reply<Result>> ask(node_actor to, Msg msg) {
    auto r = request<Result>(to, std::move(msg));
    sched->run();
    return r;
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

  /// Lets `d` of virtual time pass.
  void run_for(caf::timespan d) {
    run_until([] { return false; }, d);
  }

  std::optional<node_metrics> metrics(node_id id) {
    auto r = ask<node_metrics>(nodes[id], admin_get_metrics{});
    return r->value;
  }

  /// The nodes that consider themselves leader.
  std::vector<node_id> leaders() {
    std::vector<node_id> out;
    for (auto& kv : nodes)
      if (auto m = metrics(kv.first); m && m->role == node_role::leader)
        out.push_back(kv.first);
    return out;
  }

  /// Waits (up to 3 s of virtual time) for exactly one leader that every
  /// other node knows; returns it, or no_node.
  node_id elect() {
    node_id leader = no_node;
    run_until(
      [&] {
        auto ls = leaders();
        if (ls.size() != 1)
          return false;
        for (auto& kv : nodes)
          if (auto m = metrics(kv.first); !m || m->leader != ls.front())
            return false;
        leader = ls.front();
        return true;
      },
      3s);
    return leader;
  }

  /// Some node other than `leader`.
  node_id follower_of(node_id leader) const {
    for (auto& kv : nodes)
      if (kv.first != leader)
        return kv.first;
    return no_node;
  }

  std::string render(const caf::error& e) const { return sys->render(e); }
};

bool is_raft_error(const caf::error& e, raft_error code) {
  return e.category() == raft_error_category
         && static_cast<raft_error>(e.code()) == code;
}

/// The user's command stored at `index` of `log` (unwrapped from the
/// session envelope), or nothing if the entry is not a client command.
std::optional<client_envelope> command_at(log_store& log, index_t index) {
  if (index <= log.base().index || index > log.last_id().index)
    return std::nullopt;
  auto entries = log.read(index, index);
  if (entries.size() != 1 || entries.front().kind != entry_kind::normal)
    return std::nullopt;
  client_envelope env;
  if (!unwrap_command(entries.front().payload, env))
    return std::nullopt;
  return env;
}

} // namespace

// -- 1. durability gates answers ---------------------------------------------

TEST_CASE("deterministic: vote grants and append acknowledgements leave a "
          "node only after the matching state is durable (thesis §3.8)") {
  req_cluster c({3, true, true});
  auto leader = c.elect();
  REQUIRE(leader != no_node);

  // Ten writes, then a partition of the leader forces a second election in
  // a higher term, then ten more writes at the new leader (the old leader,
  // healed, catches up and may have its uncommitted tail truncated).
  for (uint8_t i = 0; i < 10; ++i) {
    auto w = c.ask<write_result>(c.nodes[leader], client_write{{i}});
    REQUIRE_MESSAGE(w->value, c.render(w->error));
  }
  for (auto& kv : c.nodes) {
    if (kv.first == leader)
      continue;
    caf::anon_send(c.router, router_cut{leader, kv.first, true});
    caf::anon_send(c.router, router_cut{kv.first, leader, true});
  }
  node_id second = no_node;
  REQUIRE(c.run_until(
    [&] {
      auto ls = c.leaders();
      for (auto id : ls)
        if (id != leader)
          second = id;
      return second != no_node;
    },
    3s));
  for (auto& kv : c.nodes) {
    caf::anon_send(c.router, router_cut{leader, kv.first, false});
    caf::anon_send(c.router, router_cut{kv.first, leader, false});
  }
  for (uint8_t i = 10; i < 20; ++i) {
    auto w = c.ask<write_result>(c.nodes[second], client_write{{i}});
    REQUIRE_MESSAGE(w->value, c.render(w->error));
  }
  c.run_for(300ms); // heartbeats; the old leader catches up
  for (auto& kv : c.nodes) {
    auto m = c.metrics(kv.first);
    REQUIRE(m);
    CHECK(m->last_applied == c.metrics(second)->commit_index);
    CHECK(c.machines[kv.first]->value() == 20);
  }

  const auto& ev = *c.events;
  // For each node: the log prefix that is durable (up to the last entry at
  // its latest sync, cut back by any later truncation), the saves so far.
  std::map<node_id, index_t> synced;
  std::map<node_id, std::vector<hard_state>> saves;
  size_t acks_checked = 0;
  size_t grants_checked = 0;
  size_t leader_terms_checked = 0;
  std::set<std::pair<node_id, term_t>> leading;
  for (size_t i = 0; i < ev.size(); ++i) {
    const auto& e = ev[i];
    if (e.kind == recorded::synced) {
      synced[e.node] = e.index;
      continue;
    }
    if (e.kind == recorded::truncated) {
      synced[e.node] = std::min(synced[e.node], e.index - 1);
      continue;
    }
    if (e.kind == recorded::saved) {
      saves[e.node].push_back(e.state);
      continue;
    }
    if (e.kind != recorded::sent)
      continue;
    const auto& m = *e.message;
    if (auto* a = std::get_if<append_entries_response>(&m);
        a && a->success && a->match_index > 0) {
      ++acks_checked;
      CHECK_MESSAGE(synced[e.node] >= a->match_index,
                    "event " << i << ": " << describe(e)
                             << ", but only up to index " << synced[e.node]
                             << " was durable");
    } else if (auto* v = std::get_if<request_vote_response>(&m);
               v && v->vote_granted && !v->pre_vote) {
      ++grants_checked;
      auto candidate = v->header.to;
      bool durable = false;
      for (const auto& hs : saves[e.node])
        durable = durable
                  || (hs.current_term == v->term && hs.voted_for == candidate);
      CHECK_MESSAGE(durable, "event " << i << ": " << describe(e)
                                      << " before saving term " << v->term
                                      << " vote " << candidate);
    } else if (auto* r = std::get_if<append_entries_request>(&m);
               r && !leading.count({e.node, r->term})) {
      // A leader counts its own vote only once durable: its first
      // AppendEntries of a term follows the save of its self-vote.
      leading.insert({e.node, r->term});
      ++leader_terms_checked;
      bool durable = false;
      for (const auto& hs : saves[e.node])
        durable
          = durable || (hs.current_term == r->term && hs.voted_for == e.node);
      CHECK_MESSAGE(durable, "event " << i << ": " << describe(e)
                                      << " as leader before saving its own "
                                         "vote in that term");
    }
  }
  // The checks above saw real traffic: every write acknowledged by both
  // followers (the old leader's catch-up adds more), two elections.
  CHECK(acks_checked >= 2 * 20);
  CHECK(grants_checked >= 2);
  CHECK(leader_terms_checked >= 2);
  MESSAGE("checked " << acks_checked << " append acknowledgements, "
                     << grants_checked << " vote grants, "
                     << leader_terms_checked << " leader terms over "
                     << ev.size() << " events");
}

// -- 2. forwarding ------------------------------------------------------------

TEST_CASE("deterministic: a follower forwards a client write to the leader, "
          "which applies it once and answers with its log index") {
  req_cluster c;
  auto leader = c.elect();
  REQUIRE(leader != no_node);
  auto follower = c.follower_of(leader);
  auto before = c.metrics(leader)->last_log_index;

  auto w = c.ask<write_result>(c.nodes[follower], client_write{{42}});
  REQUIRE_MESSAGE(w->value, c.render(w->error));
  CHECK(w->value->index == before + 1);
  CHECK(w->value->response == counter::encode(1));
  // The leader's log holds the command at that index, exactly once.
  auto env = command_at(*c.logs[leader], w->value->index);
  REQUIRE(env);
  CHECK(env->payload == std::vector<uint8_t>{42});
  CHECK(c.metrics(leader)->last_log_index == w->value->index);

  c.run_for(200ms);
  for (auto& kv : c.nodes) {
    CHECK(c.machines[kv.first]->value() == 1);
    auto r = c.ask<read_result>(kv.second, client_read{{}, consistency::stale});
    REQUIRE_MESSAGE(r->value, c.render(r->error));
    CHECK(r->value->answer == counter::encode(1));
  }
  auto r = c.ask<read_result>(c.nodes[leader], client_read{});
  REQUIRE_MESSAGE(r->value, c.render(r->error));
  CHECK(r->value->answer == counter::encode(1));
  CHECK(r->value->index >= w->value->index);
}

TEST_CASE("deterministic: without forwarding a follower refuses a client "
          "write with not_leader and names the leader") {
  req_cluster c({3, false, false});
  auto leader = c.elect();
  REQUIRE(leader != no_node);
  auto follower = c.follower_of(leader);
  auto before = c.metrics(leader)->last_log_index;

  auto w = c.ask<write_result>(c.nodes[follower], client_write{{42}});
  REQUIRE(w->done);
  CHECK_FALSE(w->value);
  CHECK_MESSAGE(is_raft_error(w->error, raft_error::not_leader),
                c.render(w->error));
  auto text = c.render(w->error);
  CHECK_MESSAGE(text.find("leader hint: node " + std::to_string(leader))
                  != std::string::npos,
                text);

  // Nothing was appended or applied anywhere.
  c.run_for(200ms);
  CHECK(c.metrics(leader)->last_log_index == before);
  for (auto& kv : c.machines)
    CHECK(kv.second->value() == 0);
}

// -- 3. exactly-once sessions -------------------------------------------------

TEST_CASE("deterministic: a session write retried through a forwarding "
          "follower returns the first answer and is applied once") {
  req_cluster c;
  auto leader = c.elect();
  REQUIRE(leader != no_node);
  auto follower = c.follower_of(leader);

  auto first = c.ask<write_result>(c.nodes[leader], client_write{{9}, 7, 1});
  REQUIRE_MESSAGE(first->value, c.render(first->error));
  CHECK(first->value->response == counter::encode(1));
  auto retry = c.ask<write_result>(c.nodes[follower], client_write{{9}, 7, 1});
  REQUIRE_MESSAGE(retry->value, c.render(retry->error));
  CHECK(retry->value->index == first->value->index);
  CHECK(retry->value->response == first->value->response);

  auto q = c.ask<read_result>(c.nodes[leader], client_read{});
  REQUIRE_MESSAGE(q->value, c.render(q->error));
  CHECK(q->value->answer == counter::encode(1));
  c.run_for(200ms);
  for (auto& kv : c.machines)
    CHECK(kv.second->value() == 1);

  // The next sequence number is a new write.
  auto next = c.ask<write_result>(c.nodes[leader], client_write{{9}, 7, 2});
  REQUIRE_MESSAGE(next->value, c.render(next->error));
  CHECK(next->value->index > retry->value->index);
  CHECK(next->value->response == counter::encode(2));
  q = c.ask<read_result>(c.nodes[leader], client_read{});
  REQUIRE_MESSAGE(q->value, c.render(q->error));
  CHECK(q->value->answer == counter::encode(2));

  // A retry of the older write now has no answer left: refused, not applied.
  auto stale = c.ask<write_result>(c.nodes[follower], client_write{{9}, 7, 1});
  REQUIRE(stale->done);
  CHECK_FALSE(stale->value);
  CHECK_MESSAGE(is_raft_error(stale->error, raft_error::invalid_argument),
                c.render(stale->error));
  c.run_for(200ms);
  for (auto& kv : c.machines)
    CHECK(kv.second->value() == 2);
}

// -- 4. shutdown with pending requests ----------------------------------------

namespace {

/// A leader cut off from both followers, with writes (appended, never
/// committed) and a linearizable read waiting at it.
struct stuck_leader {
  req_cluster c;
  node_id leader = no_node;
  index_t appended_from = 0;
  std::vector<std::shared_ptr<reply<write_result>>> writes;
  std::shared_ptr<reply<read_result>> read;

  stuck_leader() {
    leader = c.elect();
    REQUIRE(leader != no_node);
    auto before = c.metrics(leader);
    REQUIRE(before);
    appended_from = before->last_log_index + 1;
    for (auto& kv : c.nodes) {
      if (kv.first == leader)
        continue;
      caf::anon_send(c.router, router_cut{leader, kv.first, true});
      caf::anon_send(c.router, router_cut{kv.first, leader, true});
    }
    c.sched->run();
    for (uint8_t i = 0; i < 3; ++i)
      writes.push_back(
        c.request<write_result>(c.nodes[leader], client_write{{i}}));
    read = c.request<read_result>(c.nodes[leader], client_read{});
    // Well below an election timeout: the leader still leads (check-quorum
    // has not stepped it down) and nothing could commit.
    c.run_for(20ms);
    auto now = c.metrics(leader);
    REQUIRE(now);
    REQUIRE(now->role == node_role::leader);
    CHECK(now->last_log_index == appended_from + 2); // all three appended
    CHECK(now->commit_index < appended_from);
    for (auto& w : writes)
      REQUIRE_FALSE(w->done);
    REQUIRE_FALSE(read->done);
  }

  /// Every pending request got raft_error::shutting_down.
  void check_all_shutting_down() {
    for (auto& w : writes) {
      REQUIRE(w->done);
      CHECK_FALSE(w->value);
      // The code fails every pending request alike (fail_all), appended
      // writes included: shutting_down, not unknown_outcome.
      CHECK_MESSAGE(is_raft_error(w->error, raft_error::shutting_down),
                    c.render(w->error));
    }
    REQUIRE(read->done);
    CHECK_FALSE(read->value);
    CHECK_MESSAGE(is_raft_error(read->error, raft_error::shutting_down),
                  c.render(read->error));
  }
};

} // namespace

TEST_CASE("deterministic: admin_shutdown answers every pending request with "
          "shutting_down and itself with admin_done") {
  stuck_leader s;
  auto done = s.c.request<admin_done>(s.c.nodes[s.leader], admin_shutdown{});
  s.c.sched->run(); // no virtual time passes
  REQUIRE(done->done);
  CHECK_MESSAGE(done->value, s.c.render(done->error));
  s.check_all_shutting_down();
  // And the node is gone: the next request bounces at once.
  auto m = s.c.ask<node_metrics>(s.c.nodes[s.leader], admin_get_metrics{});
  REQUIRE(m->done);
  CHECK_FALSE(m->value);
}

TEST_CASE("deterministic: an exit message from another actor answers every "
          "pending request with shutting_down") {
  stuck_leader s;
  s.c.sys->spawn(
    [](caf::event_based_actor* self, node_actor node) {
      self->send_exit(node, caf::exit_reason::user_shutdown);
    },
    s.c.nodes[s.leader]);
  s.c.sched->run(); // no virtual time passes
  s.check_all_shutting_down();
  auto m = s.c.ask<node_metrics>(s.c.nodes[s.leader], admin_get_metrics{});
  REQUIRE(m->done);
  CHECK_FALSE(m->value);
}

// Regression: CAF 0.17's anon_send_exit(dest, reason) names the receiver
// itself as the exit message's source; the node's exit handler once took
// that for its own exit and quit without answering pending requests.
TEST_CASE("deterministic: anon_send_exit answers every pending request with "
          "shutting_down") {
  stuck_leader s;
  caf::anon_send_exit(s.c.nodes[s.leader], caf::exit_reason::user_shutdown);
  s.c.run_until(
    [&] {
      for (auto& w : s.writes)
        if (!w->done)
          return false;
      return s.read->done;
    },
    1s);
  s.check_all_shutting_down();
}

// A stopped node leaves nothing behind (an application whose actor_system
// waits for its actors at exit, CAF's default, must be able to exit).
// Note: admin_shutdown quits with the normal exit reason, which a linked
// replication stream ignores, so a stopped leader's streams linger until
// their last reference goes; this checks that they do go.
TEST_CASE("deterministic: after admin_shutdown of every node no actor of "
          "the cluster keeps running") {
  req_cluster c;
  auto leader = c.elect();
  REQUIRE(leader != no_node);
  auto w = c.ask<write_result>(c.nodes[leader], client_write{{1}});
  REQUIRE_MESSAGE(w->value, c.render(w->error));
  for (auto& kv : c.nodes) {
    auto done = c.ask<admin_done>(kv.second, admin_shutdown{});
    REQUIRE_MESSAGE(done->value, c.render(done->error));
  }
  caf::anon_send_exit(c.router, caf::exit_reason::user_shutdown);
  c.run_for(1s);
  // The helper actors that asked are done, so nothing should be left.
  CHECK_MESSAGE(c.sys->registry().running() == 0,
                c.sys->registry().running()
                  << " actors still running (the stopped leader's "
                     "replication streams)");
}

// -- 5. a stopped node still answers (with errors) ----------------------------

TEST_CASE("deterministic: every request to a stopped node is answered with "
          "an error, long before its timeout") {
  req_cluster c;
  auto leader = c.elect();
  REQUIRE(leader != no_node);
  auto follower = c.follower_of(leader);
  auto stopped = c.ask<admin_done>(c.nodes[follower], admin_shutdown{});
  REQUIRE_MESSAGE(stopped->value, c.render(stopped->error));

  auto& dead = c.nodes[follower];
  auto start = c.sched->clock().now();
  auto w = c.request<write_result>(dead, client_write{{1}});
  auto sw = c.request<write_result>(dead, client_write{{1}, 3, 1});
  auto lin = c.request<read_result>(dead, client_read{});
  auto stale
    = c.request<read_result>(dead, client_read{{}, consistency::stale});
  auto met = c.request<node_metrics>(dead, admin_get_metrics{});
  auto again = c.request<admin_done>(dead, admin_shutdown{});
  auto init = c.request<admin_done>(dead, admin_initialize{});
  auto tl = c.request<admin_done>(dead, admin_transfer_leadership{leader});
  auto fw
    = c.request<write_result>(dead, forwarded_write{follower, no_node, {{1}}});
  std::vector<std::pair<const char*, std::function<bool()>>> all = {
    {"client_write", [&] { return w->done && !w->value; }},
    {"client_write (session)", [&] { return sw->done && !sw->value; }},
    {"client_read", [&] { return lin->done && !lin->value; }},
    {"client_read (stale)", [&] { return stale->done && !stale->value; }},
    {"admin_get_metrics", [&] { return met->done && !met->value; }},
    {"admin_shutdown", [&] { return again->done && !again->value; }},
    {"admin_initialize", [&] { return init->done && !init->value; }},
    {"admin_transfer_leadership", [&] { return tl->done && !tl->value; }},
    {"forwarded_write", [&] { return fw->done && !fw->value; }},
  };
  REQUIRE(c.run_until(
    [&] {
      for (auto& kv : all)
        if (!kv.second())
          return false;
      return true;
    },
    10s));
  for (auto& kv : all)
    CHECK_MESSAGE(kv.second(), kv.first);
  // Answered by CAF (the receiver is gone), not by the 60 s request timeout.
  CHECK(c.sched->clock().now() - start < 10s);
  for (const caf::error* e :
       {&w->error, &lin->error, &met->error, &fw->error}) {
    CHECK_MESSAGE(*e != caf::sec::request_timeout, c.render(*e));
    CHECK_MESSAGE(e->category() == caf::atom("system"), c.render(*e));
  }

  // The leader's cluster goes on without it; a write to it still commits.
  auto ok = c.ask<write_result>(c.nodes[leader], client_write{{5}});
  REQUIRE_MESSAGE(ok->value, c.render(ok->error));
}

TEST_CASE("deterministic: a write forwarded to a leader that has stopped "
          "is answered with an error") {
  req_cluster c;
  auto leader = c.elect();
  REQUIRE(leader != no_node);
  auto follower = c.follower_of(leader);
  auto stopped = c.ask<admin_done>(c.nodes[leader], admin_shutdown{});
  REQUIRE_MESSAGE(stopped->value, c.render(stopped->error));
  // The follower still believes in the old leader (no election timeout has
  // passed) and forwards; the dead leader's mailbox bounces the request.
  REQUIRE(c.metrics(follower)->leader == leader);
  auto start = c.sched->clock().now();
  auto w = c.request<write_result>(c.nodes[follower], client_write{{1}});
  REQUIRE(c.run_until([&] { return w->done; }, 10s));
  CHECK(c.sched->clock().now() - start < 10s);
  CHECK_FALSE(w->value);
  CHECK_MESSAGE(w->error != caf::sec::request_timeout, c.render(w->error));
  MESSAGE("forwarded to a stopped leader: " << c.render(w->error));
}
