// Unit tests of the pure building blocks: the in-memory log (raft_log) and
// the quorum math (quorum.hpp), including joint configurations.
#include "libraft_actor/core/quorum.hpp"
#include "libraft_actor/core/raft_log.hpp"
#include "tests/core/core_fixture.hpp"

#include <set>
#include <stdexcept>

using namespace raft_actor;
using namespace raft_actor::test;

namespace {

/// Log: snapshot (0,0), entries of terms 1,1,2,2,2,4 at indexes 1..6.
raft_log sample_log() {
  return raft_log({0, 0}, entries_with_terms(1, {1, 1, 2, 2, 2, 4}));
}

member_map ids(std::initializer_list<node_id> xs) {
  return voters_of(xs).voters;
}

} // namespace

// -- raft_log -----------------------------------------------------------------

TEST_CASE("raft_log: term_at and matches") {
  auto log = sample_log();
  CHECK(log.term_at(0) == term_t{0});
  CHECK(log.term_at(1) == term_t{1});
  CHECK(log.term_at(5) == term_t{2});
  CHECK(log.term_at(6) == term_t{4});
  CHECK_FALSE(log.term_at(7).has_value());
  CHECK(log.matches({0, 0}));
  CHECK(log.matches({2, 4}));
  CHECK_FALSE(log.matches({3, 4}));
  CHECK_FALSE(log.matches({4, 7}));
  CHECK(log.last_id() == log_id{4, 6});

  raft_log compacted({3, 10}, entries_with_terms(11, {3, 5}));
  CHECK(compacted.term_at(10) == term_t{3});
  CHECK_FALSE(compacted.term_at(9).has_value());
  CHECK(compacted.first_index() == 11);
  CHECK(compacted.last_id() == log_id{5, 12});
  raft_log only_snapshot({3, 10}, {});
  CHECK(only_snapshot.last_id() == log_id{3, 10});
}

TEST_CASE("raft_log: slice clamps to what is held") {
  auto log = sample_log();
  CHECK(ids_of(log.slice(2, 4)) == std::vector<log_id>{{1, 2}, {2, 3}, {2, 4}});
  CHECK(ids_of(log.slice(0, 2)) == std::vector<log_id>{{1, 1}, {1, 2}});
  CHECK(ids_of(log.slice(6, 99)) == std::vector<log_id>{{4, 6}});
  CHECK(log.slice(4, 3).empty());
  CHECK(log.slice(7, 9).empty());
}

TEST_CASE("raft_log: batch respects the entry and byte caps but returns at "
          "least one entry") {
  std::vector<log_entry> es;
  for (index_t i = 1; i <= 5; ++i)
    es.push_back(make_entry(1, i, entry_kind::normal, i == 3 ? 100 : 4));
  raft_log log({0, 0}, es);
  CHECK(log.batch(1, 2, 1000).size() == 2);
  CHECK(log.batch(1, 10, 8).size() == 2); // 4 + 4; a third 100 is too much
  CHECK(log.batch(3, 10, 8).size() == 1); // oversize entry alone
  CHECK(log.batch(4, 10, 8).size() == 2);
  CHECK(log.batch(4, 10, 1000).size() == 2);
  CHECK(log.batch(6, 10, 1000).empty());
  CHECK(ids_of(log.batch(2, 10, 4)) == std::vector<log_id>{{1, 2}});
}

TEST_CASE("raft_log: first_index_of_term_at finds the start of a term's run, "
          "no further back than the floor") {
  auto log = sample_log();
  CHECK(log.first_index_of_term_at(5, 1) == 3);
  CHECK(log.first_index_of_term_at(4, 1) == 3);
  CHECK(log.first_index_of_term_at(2, 1) == 1);
  CHECK(log.first_index_of_term_at(6, 1) == 6);
  CHECK(log.first_index_of_term_at(5, 4) == 4); // floor
  CHECK(log.first_index_of_term_at(9, 1) == 9); // not held
}

TEST_CASE("raft_log: last_index_with_term_at_most skips newer terms") {
  auto log = sample_log();
  CHECK(log.last_index_with_term_at_most(3, 6) == 5);
  CHECK(log.last_index_with_term_at_most(2, 6) == 5);
  CHECK(log.last_index_with_term_at_most(1, 6) == 2);
  CHECK(log.last_index_with_term_at_most(1, 1) == 1);
  CHECK(log.last_index_with_term_at_most(0, 6) == 0);
  CHECK(log.last_index_with_term_at_most(9, 99) == 6); // hint clamped
}

TEST_CASE("raft_log: append and truncate_from enforce the log's shape") {
  auto log = sample_log();
  CHECK_THROWS_AS(log.append(make_entry(4, 8)), std::logic_error); // gap
  CHECK_THROWS_AS(log.append(make_entry(3, 7)), std::logic_error); // term
  log.append(make_entry(4, 7));
  CHECK(log.last_id() == log_id{4, 7});
  log.truncate_from(4);
  CHECK(log.last_id() == log_id{2, 3});
  log.truncate_from(9); // nothing there
  CHECK(log.last_index() == 3);
  raft_log compacted({3, 10}, entries_with_terms(11, {3}));
  CHECK_THROWS_AS(compacted.truncate_from(10), std::logic_error);
}

// -- quorum -------------------------------------------------------------------

TEST_CASE("quorum: quorum_index is the index held by a majority, for 1 to 7 "
          "voters") {
  // Voter i holds index i: a majority holds n - majority + 1.
  const index_t expected[] = {0, 1, 1, 2, 2, 3, 3, 4};
  for (size_t n = 1; n <= 7; ++n) {
    CAPTURE(n);
    member_map voters;
    for (node_id i = 1; i <= n; ++i)
      voters.emplace(i, "");
    CHECK(quorum_index(voters, [](node_id id) { return index_t{id}; })
          == expected[n]);
    CHECK(majority_of(n) == n / 2 + 1);
  }
  // Order of voters does not matter.
  auto m = ids({1, 2, 3, 4, 5});
  const std::map<node_id, index_t> match
    = {{1, 9}, {2, 3}, {3, 7}, {4, 0}, {5, 7}};
  CHECK(quorum_index(m, [&](node_id id) { return match.at(id); }) == 7);
}

TEST_CASE("quorum: an empty voter set never commits or wins") {
  // Regression: "leader committing when no voter replicated".
  CHECK(quorum_index(member_map{}, [](node_id) { return index_t{100}; }) == 0);
  membership joint_empty_old = voters_of({1, 2, 3});
  joint_empty_old.joint = true;
  CHECK(quorum_index(joint_empty_old, [](node_id) { return index_t{100}; })
        == 0);
  CHECK(tally(member_map{}, {}) == vote_result::lost);
  CHECK(tally(membership{}, {{1, true}}) == vote_result::lost);
  CHECK_FALSE(has_quorum(membership{}, [](node_id) { return true; }));
}

TEST_CASE("quorum: a joint configuration needs a majority of both halves") {
  membership m = voters_of({1, 2, 3});
  m.joint = true;
  m.old_voters = ids({4, 5, 6});
  std::map<node_id, index_t> match
    = {{1, 10}, {2, 10}, {3, 10}, {4, 2}, {5, 6}, {6, 1}};
  auto f = [&](node_id id) { return match.at(id); };
  CHECK(quorum_index(m, f) == 2);
  match[6] = 8;
  CHECK(quorum_index(m, f) == 6);
  m.joint = false; // old voters no longer count
  CHECK(quorum_index(m, f) == 10);
}

TEST_CASE("quorum: tally reports won, lost and pending, also when joint") {
  auto v = ids({1, 2, 3});
  CHECK(tally(v, {}) == vote_result::pending);
  CHECK(tally(v, {{1, true}}) == vote_result::pending);
  CHECK(tally(v, {{1, true}, {2, true}}) == vote_result::won);
  CHECK(tally(v, {{1, true}, {2, false}}) == vote_result::pending);
  CHECK(tally(v, {{1, true}, {2, false}, {3, false}}) == vote_result::lost);
  CHECK(tally(v, {{9, true}, {8, true}}) == vote_result::pending); // strangers
  auto four = ids({1, 2, 3, 4});
  CHECK(tally(four, {{1, true}, {2, true}}) == vote_result::pending);
  CHECK(tally(four, {{1, false}, {2, false}}) == vote_result::lost);
  CHECK(tally(four, {{1, true}, {2, true}, {3, true}}) == vote_result::won);

  membership j = voters_of({1, 2, 3});
  j.joint = true;
  j.old_voters = ids({3, 4, 5});
  CHECK(tally(j, {{1, true}, {2, true}}) == vote_result::pending);
  CHECK(tally(j, {{1, true}, {2, true}, {3, true}}) == vote_result::pending);
  CHECK(tally(j, {{1, true}, {3, true}, {4, true}}) == vote_result::won);
  CHECK(tally(j, {{1, true}, {2, true}, {4, false}, {5, false}})
        == vote_result::lost);
}

TEST_CASE("quorum: has_quorum needs a strict majority") {
  // Regression: "majority - 1" accepted half of the voters as a quorum.
  auto check
    = [](std::initializer_list<node_id> voters, std::set<node_id> active) {
        return has_quorum(voters_of(voters),
                          [&](node_id id) { return active.count(id) > 0; });
      };
  CHECK(check({1}, {1}));
  CHECK_FALSE(check({1, 2}, {1}));
  CHECK(check({1, 2}, {1, 2}));
  CHECK_FALSE(check({1, 2, 3}, {1}));
  CHECK(check({1, 2, 3}, {1, 3}));
  CHECK_FALSE(check({1, 2, 3, 4}, {1, 2}));
  CHECK(check({1, 2, 3, 4}, {1, 2, 4}));
  CHECK_FALSE(check({1, 2, 3, 4, 5, 6}, {1, 2, 3}));

  membership j = voters_of({1, 2, 3});
  j.joint = true;
  j.old_voters = ids({4, 5, 6});
  auto active = [](std::set<node_id> s) {
    return [s](node_id id) { return s.count(id) > 0; };
  };
  CHECK_FALSE(has_quorum(j, active({1, 2, 3})));
  CHECK(has_quorum(j, active({1, 2, 4, 5})));
}
