// raft-kv's state machine: every operation, snapshots, and commands from
// hostile clients (huge announced lengths, unknown operations, bad flags)
// refused by check_command without allocating.
#include "examples/kvstore/kv_machine.hpp"
#include "tests/memory_usage.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <string>

using namespace raft_actor;
using namespace raft_actor::kv;
using raft_actor::test::peak_rss_kb;

namespace {

log_entry entry(index_t i, const kv_command& c) {
  log_entry e;
  e.id = {1, i};
  e.payload = kv_machine::encode_command(c);
  return e;
}

kv_response apply(kv_machine& sm, index_t i, const kv_command& c) {
  auto out = sm.apply({entry(i, c)});
  REQUIRE(out.size() == 1);
  return kv_machine::decode_response(out[0]);
}

kv_command put(std::string k, std::string v) {
  kv_command c;
  c.kind = op::put;
  c.key = std::move(k);
  c.value = std::move(v);
  return c;
}

kv_command cas(std::string k, const char* expected, std::string v) {
  kv_command c;
  c.kind = op::cas;
  c.key = std::move(k);
  c.value = std::move(v);
  c.expect_present = expected != nullptr;
  if (expected)
    c.expected = expected;
  return c;
}

kv_answer get(const kv_machine& sm, const std::string& k) {
  kv_query q;
  q.key = k;
  return kv_machine::decode_answer(sm.query(kv_machine::encode_query(q)));
}

} // namespace

TEST_CASE("kv: put, delete and compare-and-swap") {
  kv_machine sm;
  CHECK_FALSE(apply(sm, 1, put("a", "1")).existed);
  CHECK(apply(sm, 2, put("a", "2")).existed);
  CHECK(get(sm, "a").value == "2");
  CHECK_FALSE(get(sm, "b").found);

  auto r = apply(sm, 3, cas("a", "1", "3")); // wrong expectation
  CHECK_FALSE(r.ok);
  CHECK(r.has_current);
  CHECK(r.current == "2");
  CHECK(apply(sm, 4, cas("a", "2", "3")).ok);
  CHECK(get(sm, "a").value == "3");
  CHECK_FALSE(apply(sm, 5, cas("a", nullptr, "x")).ok); // must be absent
  auto absent = apply(sm, 6, cas("b", "y", "x"));
  CHECK_FALSE(absent.ok);
  CHECK_FALSE(absent.has_current);
  CHECK(apply(sm, 7, cas("b", nullptr, "x")).ok);

  kv_command del;
  del.kind = op::del;
  del.key = "a";
  CHECK(apply(sm, 8, del).existed);
  CHECK_FALSE(apply(sm, 9, del).existed);
  CHECK_FALSE(get(sm, "a").found);

  kv_command http;
  http.kind = op::set_http;
  http.node = 3;
  http.value = "127.0.0.1:8003";
  apply(sm, 10, http);
  kv_query q;
  q.http = true;
  auto table
    = kv_machine::decode_answer(sm.query(kv_machine::encode_query(q))).http;
  CHECK(table.at(3) == "127.0.0.1:8003");
}

TEST_CASE("kv: a snapshot restores the same state elsewhere") {
  kv_machine sm;
  apply(sm, 1, put("k", std::string(1000, 'v')));
  apply(sm, 2, put("empty", ""));
  auto snap = sm.capture();
  apply(sm, 3, put("later", "x")); // not in the snapshot
  kv_machine other;
  other.restore(snap->serialize());
  CHECK(get(other, "k").value == std::string(1000, 'v'));
  CHECK(get(other, "empty").found);
  CHECK_FALSE(get(other, "later").found);
}

TEST_CASE("kv: hostile commands are refused before they are proposed, "
          "without allocating what they announce") {
  kv_machine sm;
  CHECK(sm.check_command(kv_machine::encode_command(put("a", "b"))).empty());
  // An unknown operation.
  auto bytes = kv_machine::encode_command(put("a", "b"));
  bytes[0] = 9;
  CHECK(sm.check_command(bytes).find("unknown kv operation")
        != std::string::npos);
  // A key announcing 2^60 bytes (the length follows the 1-byte kind).
  auto huge = kv_machine::encode_command(put("", ""));
  for (int i = 1; i <= 8; ++i)
    huge[i] = i == 8 ? 0x10 : 0x00;
  auto before = peak_rss_kb();
  CHECK(sm.check_command(huge).find("exceeds the limit") != std::string::npos);
  // A value announcing 15 MiB (under the limit) with nothing behind it.
  auto big = kv_machine::encode_command(put("k", ""));
  // kind(1) + key length(8) + "k"(1) + value length(8)
  uint64_t n = 15u << 20;
  for (int i = 0; i < 8; ++i)
    big[10 + i] = static_cast<uint8_t>(n >> (8 * i));
  CHECK_FALSE(sm.check_command(big).empty());
  CHECK(peak_rss_kb() < before + 64 * 1024);
  // A flag that is neither 0 nor 1.
  auto flag = kv_machine::encode_command(cas("k", "x", "y"));
  // kind, key(8+1), value(8+1), then expect_present
  flag[19] = 7;
  CHECK(sm.check_command(flag).find("flag") != std::string::npos);
  // Queries are bounded the same way.
  kv_query q;
  auto qb = kv_machine::encode_query(q);
  qb[7] = 0x7f;
  CHECK_THROWS(sm.query(qb));
}
