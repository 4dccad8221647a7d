// Cluster formation (initialize_cluster) and construction: the founding
// entry, idempotence, refusals, and what the constructor rejects.
#include "tests/core/core_fixture.hpp"

#include <stdexcept>

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

harness empty_node(node_id id) {
  return harness(make_config(id), recovered_state{});
}

initialize_cluster init(uint64_t request_id, membership m) {
  return initialize_cluster{request_id, std::move(m)};
}

} // namespace

TEST_CASE("formation: initialize_cluster on an empty log writes exactly the "
          "bootstrap entry and succeeds") {
  auto h = empty_node(1);
  CHECK(h.core.next_deadline() == raft_duration{0}); // not a voter yet
  auto m = voters_of({1, 2, 3});
  h.step(init(7, m));
  CHECK(trace(h.last) == "append_log request_succeeded set_timer");
  auto app = pick<append_log>(h.last)[0];
  REQUIRE(app.entries.size() == 1);
  CHECK(app.entries[0] == bootstrap_entry(m));
  CHECK(app.entries[0].id == bootstrap_log_id);
  CHECK(pick<request_succeeded>(h.last)[0].request_id == 7);
  CHECK(log_ids(h.core.log()) == std::vector<log_id>{bootstrap_log_id});
  CHECK(h.core.config() == m);
  CHECK(pick<set_timer>(h.last)[0].deadline == h.now + election_timeout);
  CHECK(h.core.current_term() == 0);
}

TEST_CASE("formation: repeating initialize_cluster with the same membership "
          "is a successful no-op") {
  auto h = empty_node(1);
  auto m = voters_of({1, 2, 3});
  h.step(init(1, m));
  h.step(init(2, m));
  CHECK(trace(h.last) == "request_succeeded");
  CHECK(pick<request_succeeded>(h.last)[0].request_id == 2);
  h.persist_all();
  h.step(init(3, m));
  CHECK(trace(h.last) == "request_succeeded");
  CHECK(h.core.log().last_index() == 1);
}

TEST_CASE("formation: initialize_cluster fails with already_initialized for "
          "another membership or a log formed otherwise") {
  SUBCASE("another membership") {
    auto h = empty_node(1);
    h.step(init(1, voters_of({1, 2, 3})));
    h.step(init(2, voters_of({1, 2})));
    CHECK(trace(h.last) == "request_failed");
    CHECK(pick<request_failed>(h.last)[0].error
          == raft_error::already_initialized);
    CHECK(h.core.config() == voters_of({1, 2, 3}));
  }
  SUBCASE("a non-empty log formed with another membership") {
    auto h = make_node(1, {1, 2}, {3, no_node}, entries_with_terms(2, {2}));
    h.step(init(1, voters_of({1, 2, 3})));
    CHECK(trace(h.last) == "request_failed");
    CHECK(pick<request_failed>(h.last)[0].error
          == raft_error::already_initialized);
    CHECK(h.core.log().last_index() == 2);
  }
}

TEST_CASE("formation: initialize_cluster with an empty membership or one "
          "without this node as voter fails with invalid_argument") {
  membership learner_only = voters_of({2, 3});
  learner_only.learners.emplace(1, "");
  membership joint = voters_of({1, 2, 3});
  joint.joint = true;
  joint.old_voters = voters_of({1, 2}).voters;
  for (const auto& [name, m] :
       {std::pair<const char*, membership>{"empty", membership{}},
        {"without this node", voters_of({2, 3})},
        {"this node only a learner", learner_only},
        {"joint", joint}}) {
    std::string what = name;
    CAPTURE(what);
    auto h = empty_node(1);
    h.step(init(4, m));
    CHECK(trace(h.last) == "request_failed");
    auto f = pick<request_failed>(h.last)[0];
    CHECK(f.request_id == 4);
    CHECK(f.error == raft_error::invalid_argument);
    CHECK(h.core.log().last_index() == 0);
    CHECK(h.core.next_deadline() == raft_duration{0});
  }
}

TEST_CASE("formation: nodes initialized independently hold the identical "
          "first entry and only one of them can lead the first term") {
  auto m = voters_of({1, 2, 3});
  auto n1 = empty_node(1);
  auto n2 = empty_node(2);
  auto n3 = empty_node(3);
  for (auto* n : {&n1, &n2, &n3}) {
    n->step(init(1, m));
    n->persist_all();
  }
  CHECK(n1.core.log().at(1) == n2.core.log().at(1));
  CHECK(n2.core.log().at(1) == n3.core.log().at(1));

  // Nodes 1 and 2 time out together; node 3 hears node 1 first.
  n1.fire_deadline();
  n2.fire_deadline();
  auto from1 = n1.persist_all();
  auto from2 = n2.persist_all();
  auto a3 = relay(from1, n3);
  auto b3 = relay(from2, n3);
  auto a2 = relay(from1, n2);
  auto b1 = relay(from2, n1);
  relay(a3, n1, false);
  relay(a2, n1, false);
  relay(b3, n2, false);
  relay(b1, n2, false);
  CHECK(n1.core.role() == node_role::leader);
  CHECK(n1.core.current_term() == 1);
  CHECK(n2.core.role() == node_role::follower);
  CHECK(n3.core.role() == node_role::follower);
  CHECK(n3.core.voted_for() == 1);
}

// -- construction -------------------------------------------------------------

TEST_CASE("construction: a recovered state with a log term beyond "
          "current_term, or an out-of-order log, is rejected") {
  auto m = voters_of({1, 2, 3});
  SUBCASE("log term beyond current_term") {
    auto r = make_recovered(m, {2, no_node}, entries_with_terms(2, {3}));
    CHECK_THROWS_AS(raft_core(make_config(1), r, {}), std::invalid_argument);
  }
  SUBCASE("gap in the indexes") {
    auto r = make_recovered(m, {2, no_node}, {make_entry(1, 3)});
    CHECK_THROWS_AS(raft_core(make_config(1), r, {}), std::invalid_argument);
  }
  SUBCASE("decreasing terms") {
    auto r = make_recovered(m, {2, no_node}, entries_with_terms(2, {2, 1}));
    CHECK_THROWS_AS(raft_core(make_config(1), r, {}), std::invalid_argument);
  }
  SUBCASE("last_applied beyond the log") {
    auto r = make_recovered(m, {2, no_node}, {}, 5);
    CHECK_THROWS_AS(raft_core(make_config(1), r, {}), std::invalid_argument);
  }
  SUBCASE("malformed membership entry") {
    auto r = make_recovered(m, {2, no_node});
    r.entries[0].payload = {0xff};
    CHECK_THROWS_AS(raft_core(make_config(1), r, {}), std::invalid_argument);
  }
  SUBCASE("a consistent state is accepted") {
    auto r = make_recovered(m, {3, no_node}, entries_with_terms(2, {1, 3}), 2);
    raft_core c(make_config(1), r, {});
    CHECK(c.commit_index() == 2);
    CHECK(c.last_applied() == 2);
    CHECK(c.durable_index() == 3);
  }
}

TEST_CASE("construction: an invalid core_config throws invalid_argument "
          "naming the problem") {
  struct row {
    const char* field;
    std::function<void(core_config&)> spoil;
  };
  const row rows[] = {
    {"node id", [](core_config& c) { c.id = no_node; }},
    {"heartbeat_interval",
     [](core_config& c) { c.heartbeat_interval = c.election_timeout_min; }},
    {"election_timeout_max",
     [](core_config& c) {
       c.election_timeout_max = c.election_timeout_min - 1us;
     }},
    {"election_timeout_min",
     [](core_config& c) { c.election_timeout_min = raft_duration{0}; }},
    {"max_entries_per_append",
     [](core_config& c) { c.max_entries_per_append = 0; }},
    {"max_bytes_per_append",
     [](core_config& c) { c.max_bytes_per_append = 0; }},
    {"max_inflight_appends",
     [](core_config& c) { c.max_inflight_appends = 0; }},
    {"max_inflight_bytes", [](core_config& c) { c.max_inflight_bytes = 0; }},
    {"max_payload_bytes", [](core_config& c) { c.max_payload_bytes = 0; }},
  };
  for (const auto& r : rows) {
    std::string field = r.field;
    CAPTURE(field);
    auto cfg = make_config(1);
    CHECK(cfg.validate().empty());
    r.spoil(cfg);
    CHECK(cfg.validate().find(field) != std::string::npos);
    try {
      raft_core c(cfg, make_recovered(voters_of({1}), {1, no_node}), {});
      FAIL("constructor accepted an invalid config");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find(field) != std::string::npos);
    }
  }
}
