// Real processes on loopback: raft-node clusters of 3 and 5 nodes with
// durable storage, written to through the leader while the leader is
// SIGKILLed and restarted and a follower is paused with SIGSTOP. At the end
// every acknowledged write must be on every node.
#include "tests/network/process_cluster.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <set>
#include <thread>

#include <sys/wait.h>

using namespace raft_actor;
using namespace raft_actor::test;
using namespace std::chrono_literals;

namespace {

std::set<node_id> all_but(const process_cluster& c, node_id out) {
  std::set<node_id> s;
  for (auto id : c.ids())
    if (id != out)
      s.insert(id);
  return s;
}

/// Waits until every node in `among` applied as far as the leader
/// committed; then checks each holds every acknowledged value.
void check_all_present(process_cluster& c, const std::set<node_id>& among,
                       const std::vector<uint64_t>& acked) {
  auto leader = c.find_leader(among, 5s);
  REQUIRE(leader != no_node);
  auto lm = c.metrics(leader);
  REQUIRE(lm);
  for (auto id : among) {
    bool caught_up = false;
    for (int i = 0; i < 200 && !caught_up; ++i) {
      auto m = c.metrics(id);
      caught_up = m && m->last_applied >= lm->commit_index;
      if (!caught_up)
        std::this_thread::sleep_for(50ms);
    }
    CHECK_MESSAGE(caught_up, "node " << id << " did not catch up");
    auto j = c.journal(id);
    REQUIRE_MESSAGE(j, "node " << id << " did not answer a read");
    std::set<uint64_t> have(j->begin(), j->end());
    // Exactly-once: no value twice.
    CHECK(have.size() == j->size());
    size_t missing = 0;
    for (auto v : acked)
      missing += have.count(v) == 0;
    CHECK_MESSAGE(missing == 0, "node " << id << " lacks " << missing
                                        << " acknowledged values");
  }
}

/// The scenario, for `n` nodes.
void crash_pause_and_recover(size_t n, uint64_t per_phase) {
  process_cluster c(n);
  auto ids = c.ids();
  std::set<node_id> all(ids.begin(), ids.end());
  auto leader = c.find_leader(all, 10s);
  REQUIRE(leader != no_node);
  std::vector<uint64_t> acked;
  uint64_t next = 1;
  auto write_some = [&](const std::set<node_id>& among, uint64_t count) {
    for (uint64_t i = 0; i < count; ++i, ++next)
      if (c.write(next, among, 10s))
        acked.push_back(next);
      else
        FAIL("write " << next
                      << " was not acknowledged in 10 s: " << c.last_error);
  };
  write_some(all, per_phase);

  // SIGKILL the leader: the others elect a new one and go on.
  c.signal(leader, SIGKILL);
  auto rest = all_but(c, leader);
  REQUIRE(c.find_leader(rest, 10s) != no_node);
  write_some(rest, per_phase);

  // Restart it on the same address: it rejoins without operator action.
  c.start(leader);
  write_some(all, per_phase);

  // Pause a follower for longer than an election timeout.
  auto current = c.find_leader(all, 10s);
  REQUIRE(current != no_node);
  auto paused = current == 1 ? node_id{2} : node_id{1};
  c.signal(paused, SIGSTOP);
  write_some(all_but(c, paused), per_phase);
  std::this_thread::sleep_for(500ms);
  c.signal(paused, SIGCONT);
  write_some(all, per_phase);

  CHECK(acked.size() == 5 * per_phase);
  check_all_present(c, all, acked);
}

} // namespace

TEST_CASE("network: 3 node processes survive a SIGKILLed and restarted "
          "leader and a SIGSTOPped follower, losing no acknowledged write") {
  crash_pause_and_recover(3, 40);
}

TEST_CASE("network: 5 node processes survive a SIGKILLed and restarted "
          "leader and a SIGSTOPped follower, losing no acknowledged write") {
  crash_pause_and_recover(5, 30);
}

TEST_CASE("network: a node started empty is added as a learner by a leader "
          "it does not know, catches up, and is promoted to voter") {
  process_cluster c(3, {}, {}, 1); // node 4 is a spare
  auto ids = c.ids();
  std::set<node_id> all(ids.begin(), ids.end());
  REQUIRE(c.find_leader(all, 10s) != no_node);
  std::vector<uint64_t> acked;
  for (uint64_t v = 1; v <= 30; ++v)
    if (c.write(v, all, 10s))
      acked.push_back(v);
  REQUIRE(acked.size() == 30);

  c.start(4);
  auto leader = c.find_leader(all, 10s);
  auto gw = c.node_handle(leader);
  REQUIRE(gw);
  caf::scoped_actor self{c.system()};
  caf::error err;
  self->request(*gw, 20s, admin_add_learner{4, c.address(4), true})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  REQUIRE_MESSAGE(!err, c.system().render(err));
  self->request(*gw, 20s, admin_change_membership{{1, 2, 3, 4}})
    .receive([](admin_done) {}, [&](caf::error& e) { err = e; });
  REQUIRE_MESSAGE(!err, c.system().render(err));
  auto m = c.metrics(4);
  REQUIRE(m);
  CHECK(m->config.voters.count(4) == 1);
  std::set<node_id> four{1, 2, 3, 4};
  for (uint64_t v = 31; v <= 40; ++v)
    if (c.write(v, four, 10s))
      acked.push_back(v);
  check_all_present(c, four, acked);
}

TEST_CASE("network: client commands answer and exit at once (regression: a "
          "client's pending timer kept its process alive for two minutes)") {
  process_cluster c(3);
  auto ids = c.ids();
  std::set<node_id> all(ids.begin(), ids.end());
  auto leader = c.find_leader(all, 10s);
  REQUIRE(leader != no_node);
  scratch_dir dir;
  for (std::string cmd : {"write", "status", "read"}) {
    std::vector<std::string> argv{raft_node_binary(), cmd, "--to",
                                  c.address(leader), "--no-tls"};
    if (cmd == "write")
      argv.push_back("7");
    auto log = dir.path + "/" + cmd + ".log";
    auto start = std::chrono::steady_clock::now();
    auto pid = start_process(argv, log);
    int status = -1;
    while (::waitpid(pid, &status, WNOHANG) == 0
           && std::chrono::steady_clock::now() - start < 10s)
      std::this_thread::sleep_for(10ms);
    if (std::chrono::steady_clock::now() - start >= 10s) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    CAPTURE(cmd);
    CAPTURE(read_text(log));
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
}
