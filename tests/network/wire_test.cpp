// The wire format: every frame kind round-trips, and decoding rejects what
// it must (bad magic or version, unknown kinds and alternatives, unknown
// enum values, stray bytes) without crashing on any input.
#include "actors/wire.hpp"
#include "tests/memory_usage.hpp"

#include "messages/caf_inspect.hpp"

#include <caf/deep_to_string.hpp>
#include <caf/serializer_impl.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <string>

using namespace raft_actor;
using raft_actor::test::peak_rss_kb;

namespace {

/// Encodes, decodes, and encodes again: both encodings must be equal.
wire::frame round_trip(const wire::frame& f) {
  auto body = wire::encode(f);
  wire::frame back;
  auto why = wire::decode(body, back);
  REQUIRE_MESSAGE(why.empty(), why);
  CHECK(back.index() == f.index());
  CHECK(wire::encode(back) == body);
  return back;
}

append_entries_request sample_append() {
  append_entries_request r;
  r.header = {4711, protocol_version, 1, 2};
  r.term = 7;
  r.prev_log = {6, 41};
  r.leader_commit = 40;
  for (index_t i = 42; i < 45; ++i) {
    log_entry e;
    e.id = {7, i};
    e.payload.assign(100 + i, static_cast<uint8_t>(i));
    r.entries.push_back(e);
  }
  return r;
}

} // namespace

TEST_CASE("wire: every frame kind round-trips") {
  auto h = std::get<wire::hello>(round_trip(wire::hello{4711, 3}));
  CHECK(h.cluster_id == 4711);
  CHECK(h.from == 3);

  auto a = std::get<raft_message>(round_trip(raft_message{sample_append()}));
  auto& ar = std::get<append_entries_request>(a);
  CHECK(ar.entries.size() == 3);
  CHECK(ar.entries[2].payload.size() == 144);
  CHECK(ar.header.to == 2);

  client_write w{{1, 2, 3}, 9, 10};
  auto rq = std::get<wire::request_frame>(
    round_trip(wire::request_frame{77, wire::request{w}}));
  CHECK(rq.id == 77);
  CHECK(std::get<client_write>(rq.body).payload
        == std::vector<uint8_t>{1, 2, 3});
  round_trip(wire::request_frame{1, wire::request{wire::subscribe_metrics{}}});
  round_trip(wire::request_frame{2, wire::request{forwarded_write{1, 2, w}}});
  round_trip(
    wire::request_frame{3, wire::request{admin_change_membership{{1, 2, 5}}}});

  auto e = wire::to_reply(make_error(raft_error::not_leader, "ask node 2"));
  auto rs = std::get<wire::response_frame>(
    round_trip(wire::response_frame{5, wire::response{e}}));
  auto err = wire::from_reply(std::get<wire::error_reply>(rs.body));
  CHECK(err == make_error(raft_error::not_leader, "ask node 2"));

  node_metrics m;
  m.id = 2;
  m.role = node_role::leader;
  m.match_index = {{1, 10}, {3, 9}};
  auto mb = std::get<node_metrics>(round_trip(wire::frame{m}));
  CHECK(mb.role == node_role::leader);
  CHECK(mb.match_index.at(3) == 9);
}

TEST_CASE("wire: decoding refuses what is not a valid frame") {
  wire::frame out;
  CHECK_FALSE(wire::decode({}, out).empty());
  CHECK_FALSE(wire::decode({99, 0, 0}, out).empty()); // unknown kind
  auto hello = wire::encode(wire::hello{1, 2});
  auto bad_magic = hello;
  bad_magic[1] ^= 0xff;
  CHECK(wire::decode(bad_magic, out).find("magic") != std::string::npos);
  auto stray = hello;
  stray.push_back(0);
  CHECK(wire::decode(stray, out).find("stray") != std::string::npos);
  auto truncated = wire::encode(raft_message{sample_append()});
  truncated.resize(truncated.size() - 10);
  CHECK_FALSE(wire::decode(truncated, out).empty());
  // An unknown alternative of raft_message.
  auto rpc = wire::encode(raft_message{sample_append()});
  rpc[1] = 200;
  CHECK(wire::decode(rpc, out).find("unknown alternative")
        != std::string::npos);
  // A read with an unknown consistency.
  client_read r;
  r.query = {1};
  auto read = wire::encode(wire::request_frame{1, wire::request{r}});
  read.back() = 9; // the mode is the last byte
  CHECK(wire::decode(read, out).find("consistency") != std::string::npos);
  // An error reply without an error code.
  auto none = wire::encode(
    wire::response_frame{1, wire::response{wire::error_reply{}}});
  CHECK(wire::decode(none, out).find("error code") != std::string::npos);
}

TEST_CASE("wire: random and mutated bodies never crash the decoder and "
          "never allocate beyond the input") {
  std::mt19937_64 rng(7);
  std::vector<std::vector<uint8_t>> seeds{
    wire::encode(wire::hello{4711, 1}),
    wire::encode(raft_message{sample_append()}),
    wire::encode(
      wire::request_frame{1, wire::request{client_write{{1, 2}, 3, 4}}}),
    wire::encode(wire::response_frame{2, wire::response{write_result{5, {6}}}}),
  };
  size_t decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> body;
    if (i % 2 == 0) {
      body.resize(1 + rng() % 64);
      for (auto& b : body)
        b = static_cast<uint8_t>(rng());
      body[0] = static_cast<uint8_t>(1 + rng() % 5); // a known kind
    } else {
      body = seeds[rng() % seeds.size()];
      for (int flips = 1 + rng() % 4; flips > 0; --flips)
        body[rng() % body.size()] = static_cast<uint8_t>(rng());
    }
    wire::frame out;
    decoded += wire::decode(body, out).empty();
  }
  MESSAGE("decoded ", decoded, " of 20000");
}

TEST_CASE("wire: a byte vector announcing 4 GiB in a tiny frame is refused "
          "without allocating it") {
  // A request frame for a client_write whose payload claims 2^32 - 1
  // bytes and brings three.
  std::vector<uint8_t> body;
  caf::serializer_impl<std::vector<uint8_t>> sink{nullptr, body};
  REQUIRE_FALSE(sink(uint8_t{3}, uint64_t{1}, uint8_t{0}));
  size_t announced = 0xffffffff;
  REQUIRE_FALSE(sink.begin_sequence(announced));
  body.insert(body.end(), {1, 2, 3});
  auto before = peak_rss_kb();
  wire::frame out;
  CHECK_FALSE(wire::decode(body, out).empty());
  CHECK(peak_rss_kb() < before + 64 * 1024); // not a 4 GiB zero-fill
}
