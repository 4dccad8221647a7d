// Exactly-once client sessions (thesis §6.3): the log envelope, the
// replicated session table, its expiry and its snapshot encoding.
#include "actors/client_sessions.hpp"

#include <doctest/doctest.h>

using namespace raft_actor;

TEST_CASE("sessions: commands round-trip through the envelope") {
  client_envelope e;
  REQUIRE(unwrap_command(wrap_command(0, 0, {1, 2}), e));
  CHECK(e.client_id == 0);
  CHECK(e.payload == std::vector<uint8_t>{1, 2});
  REQUIRE(unwrap_command(wrap_command(7, 9, {3}), e));
  CHECK(e.client_id == 7);
  CHECK(e.sequence == 9);
  CHECK(e.payload == std::vector<uint8_t>{3});
  REQUIRE(unwrap_command(wrap_command(7, 9, {}), e));
  CHECK(e.payload.empty());
}

TEST_CASE("sessions: malformed envelopes are rejected") {
  client_envelope e;
  CHECK_FALSE(unwrap_command({}, e));
  CHECK_FALSE(unwrap_command({2, 1}, e));       // unknown tag
  CHECK_FALSE(unwrap_command({1, 7, 0, 0}, e)); // truncated ids
  auto zero_client = wrap_command(7, 1, {});
  for (int i = 1; i <= 8; ++i)
    zero_client[static_cast<size_t>(i)] = 0;
  CHECK_FALSE(unwrap_command(zero_client, e)); // client id 0
}

TEST_CASE("sessions: a repeated write is a duplicate, an older one is "
          "superseded, a newer one is fresh") {
  session_table t;
  const session_table::entry* cached = nullptr;
  CHECK(t.check(7, 1, cached) == session_table::verdict::fresh);
  t.record(7, 1, 10, {42}, 1000);
  CHECK(t.check(7, 1, cached) == session_table::verdict::duplicate);
  REQUIRE(cached);
  CHECK(cached->index == 10);
  CHECK(cached->response == std::vector<uint8_t>{42});
  CHECK(t.check(7, 2, cached) == session_table::verdict::fresh);
  t.record(7, 2, 11, {43}, 2000);
  CHECK(t.check(7, 1, cached) == session_table::verdict::superseded);
  CHECK(t.check(8, 1, cached) == session_table::verdict::fresh);
}

TEST_CASE("sessions: idle sessions expire by log time") {
  session_table t;
  t.record(1, 1, 1, {}, 1000);
  t.record(2, 1, 2, {}, 5000);
  t.expire(6000, 4500); // 1 idle 5000 ms > 4500: gone; 2 idle 1000: kept
  const session_table::entry* cached = nullptr;
  CHECK(t.size() == 1);
  CHECK(t.check(1, 1, cached) == session_table::verdict::fresh);
  CHECK(t.check(2, 1, cached) == session_table::verdict::duplicate);
}

TEST_CASE("sessions: the table round-trips through snapshots; damage is "
          "refused and leaves the table as it was") {
  session_table t;
  t.record(7, 3, 30, {1, 2, 3}, 100);
  t.record(9, 1, 31, {}, 200);
  auto bytes = t.encode();
  session_table u;
  REQUIRE(u.decode(bytes));
  CHECK(u.encode() == bytes);
  const session_table::entry* cached = nullptr;
  CHECK(u.check(7, 3, cached) == session_table::verdict::duplicate);
  CHECK(cached->response == std::vector<uint8_t>{1, 2, 3});
  for (size_t cut = 1; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    std::vector<uint8_t> partial(bytes.begin(),
                                 bytes.begin() + static_cast<long>(cut));
    CHECK_FALSE(u.decode(partial));
    CHECK(u.size() == 2);
  }
  auto extra = bytes;
  extra.push_back(0);
  CHECK_FALSE(u.decode(extra));
  CHECK(u.decode({})); // no table at all: empty
  CHECK(u.size() == 0);

  auto framed = frame_snapshot(bytes, {9, 9});
  std::vector<uint8_t> table, state;
  REQUIRE(unframe_snapshot(framed, table, state));
  CHECK(table == bytes);
  CHECK(state == std::vector<uint8_t>{9, 9});
  framed.resize(5);
  CHECK_FALSE(unframe_snapshot(framed, table, state));
}
