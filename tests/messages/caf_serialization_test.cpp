// The CAF glue of messages/: every message round-trips through CAF 0.17's
// binary format (what the network frames carry), both on its own and inside a
// `caf::message`, and hostile or truncated input fails with an error. One
// file on purpose: each doctest file that includes CAF costs ~13 s to build.
#include "libraft_actor/node.hpp"
#include "messages/caf_inspect.hpp"
#include "messages/caf_types.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/deep_to_string.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <doctest/doctest.h>

#include <sys/resource.h>

#include <string>
#include <vector>

using namespace raft_actor;

namespace {

// -- field-by-field equality -------------------------------------------------

// Written independently of inspect() so that a field missing from an inspect
// overload makes a round trip fail. Named `same` rather than operator== so
// that rpc.hpp may add its own later.

/// Types of messages/types.hpp define operator== themselves.
template <class T>
bool same(const T& a, const T& b) {
  return a == b;
}
bool same(const rpc_header& a, const rpc_header& b) {
  return a.cluster_id == b.cluster_id && a.version == b.version
         && a.from == b.from && a.to == b.to;
}
bool same(const request_vote_request& a, const request_vote_request& b) {
  return same(a.header, b.header) && a.term == b.term
         && a.last_log == b.last_log && a.pre_vote == b.pre_vote
         && a.leadership_transfer == b.leadership_transfer;
}
bool same(const request_vote_response& a, const request_vote_response& b) {
  return same(a.header, b.header) && a.term == b.term
         && a.vote_granted == b.vote_granted && a.pre_vote == b.pre_vote;
}
bool same(const append_entries_request& a, const append_entries_request& b) {
  return same(a.header, b.header) && a.term == b.term
         && a.prev_log == b.prev_log && a.entries == b.entries
         && a.leader_commit == b.leader_commit && a.round == b.round;
}
bool same(const append_entries_response& a, const append_entries_response& b) {
  return same(a.header, b.header) && a.term == b.term && a.success == b.success
         && a.match_index == b.match_index
         && a.rejected_prev_index == b.rejected_prev_index
         && a.conflict_term == b.conflict_term
         && a.conflict_index == b.conflict_index
         && a.last_log_index == b.last_log_index && a.round == b.round;
}
bool same(const install_snapshot_request& a,
          const install_snapshot_request& b) {
  return same(a.header, b.header) && a.term == b.term
         && a.snapshot_id == b.snapshot_id && a.last_included == b.last_included
         && a.config == b.config && a.offset == b.offset && a.data == b.data
         && a.done == b.done;
}
bool same(const install_snapshot_response& a,
          const install_snapshot_response& b) {
  return same(a.header, b.header) && a.term == b.term
         && a.snapshot_id == b.snapshot_id && a.next_offset == b.next_offset
         && a.done == b.done;
}
bool same(const read_index_request& a, const read_index_request& b) {
  return same(a.header, b.header) && a.term == b.term && a.read_id == b.read_id;
}
bool same(const read_index_response& a, const read_index_response& b) {
  return same(a.header, b.header) && a.term == b.term && a.read_id == b.read_id
         && a.success == b.success && a.read_index == b.read_index;
}
bool same(const timeout_now_request& a, const timeout_now_request& b) {
  return same(a.header, b.header) && a.term == b.term;
}

using buffer = std::vector<char>;

// -- sample values: every field set to a distinct, non-default value ----------

rpc_header header() {
  return rpc_header{0xC1u, 7, 1, 0x1122334455667788ull};
}

membership joint_config() {
  membership m;
  m.voters = {{2, "b:1"}, {3, "c:1"}, {4, "d:1"}};
  m.learners = {{5, ""}};
  m.joint = true;
  m.old_voters = {{1, "a:1"}, {2, "b:1"}, {3, "c:1"}};
  return m;
}

std::vector<log_entry> entries() {
  std::vector<log_entry> xs;
  xs.push_back(log_entry{{3, 10}, entry_kind::normal, -5, {0, 1, 0xff}});
  xs.push_back(log_entry{{4, 11}, entry_kind::blank, 1700000000000, {}});
  xs.push_back(log_entry{
    {4, 12}, entry_kind::membership, 42, std::vector<uint8_t>(70000, 0xab)});
  return xs;
}

request_vote_request vote_request() {
  return request_vote_request{header(), 9, {8, 100}, true, true};
}

request_vote_response vote_response() {
  return request_vote_response{header(), 9, true, true};
}

append_entries_request append_request() {
  return append_entries_request{header(), 4, {3, 9}, entries(), 11, 77};
}

append_entries_response append_response() {
  return append_entries_response{header(), 4, true, 12, 9, 3, 7, 12, 77};
}

install_snapshot_request snapshot_request() {
  install_snapshot_request x;
  x.header = header();
  x.term = 5;
  x.snapshot_id = 99;
  x.last_included = {4, 1000};
  x.config = joint_config();
  x.offset = 4096;
  x.data = {9, 8, 7};
  x.done = true;
  return x;
}

install_snapshot_response snapshot_response() {
  return install_snapshot_response{header(), 5, 99, 4099, true};
}

read_index_request sample_read_index_request() {
  return read_index_request{header(), 7, 12345};
}

read_index_response read_response() {
  return read_index_response{header(), 7, 12345, true, 4242};
}

timeout_now_request timeout_now() {
  return timeout_now_request{header(), 6};
}

// -- helpers ------------------------------------------------------------------

template <class... Ts>
buffer save(Ts&... xs) {
  buffer buf;
  caf::binary_serializer sink{nullptr, buf};
  auto err = sink(xs...);
  REQUIRE_MESSAGE(!err, caf::to_string(err));
  return buf;
}

template <class T>
caf::error load(const buffer& buf, T& x, size_t* remaining = nullptr) {
  caf::binary_deserializer source{nullptr, buf};
  auto err = source(x);
  if (remaining != nullptr)
    *remaining = source.remaining();
  return err;
}

template <class T>
void check_round_trip(T x) {
  auto buf = save(x);
  T y;
  size_t remaining = 1;
  auto err = load(buf, y, &remaining);
  REQUIRE_MESSAGE(!err, caf::to_string(err));
  CHECK(remaining == 0);
  CHECK(same(y, x));
  CHECK(save(y) == buf);
  // Every prefix is an error, never a crash or a half-filled success.
  for (size_t n = 0; n < buf.size(); n += (n < 256 ? 1 : 997)) {
    CAPTURE(n);
    T z;
    CHECK(load(buffer(buf.begin(), buf.begin() + static_cast<long>(n)), z));
  }
}

long max_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

} // namespace

TEST_CASE("every message type round-trips through binary_serializer") {
  check_round_trip(log_id{7, 8});
  check_round_trip(hard_state{12, 3});
  check_round_trip(membership{});
  check_round_trip(joint_config());
  for (const auto& e : entries())
    check_round_trip(e);
  check_round_trip(vote_request());
  check_round_trip(vote_response());
  check_round_trip(append_request());
  check_round_trip(append_entries_request{});
  check_round_trip(append_response());
  check_round_trip(snapshot_request());
  check_round_trip(snapshot_response());
  check_round_trip(timeout_now());
  check_round_trip(sample_read_index_request());
  check_round_trip(read_response());
}

TEST_CASE("member maps use CAF's native std::map wire format") {
  auto m = joint_config();
  std::vector<std::pair<node_id, std::string>> voters(m.voters.begin(),
                                                      m.voters.end());
  std::vector<std::pair<node_id, std::string>> learners(m.learners.begin(),
                                                        m.learners.end());
  std::vector<std::pair<node_id, std::string>> old(m.old_voters.begin(),
                                                   m.old_voters.end());
  CHECK(save(m) == save(voters, learners, m.joint, old));
  CHECK(save(m) == save(m.voters, m.learners, m.joint, m.old_voters));
}

TEST_CASE("invalid memberships are rejected on load") {
  using pairs = std::vector<std::pair<node_id, std::string>>;
  pairs none;
  bool joint = false;
  membership out;
  SUBCASE("duplicate id") {
    pairs dup{{1, "a"}, {1, "b"}};
    CHECK(load(save(dup, none, joint, none), out));
  }
  SUBCASE("id 0") {
    pairs zero{{0, "a"}};
    CHECK(load(save(none, zero, joint, none), out));
  }
  SUBCASE("old voters without joint") {
    pairs old{{1, "a"}};
    CHECK(load(save(none, none, joint, old), out));
  }
}

TEST_CASE("unknown entry kinds are rejected on load") {
  log_entry a{{1, 1}, entry_kind::normal, 0, {}};
  log_entry b{{1, 1}, entry_kind::blank, 0, {}};
  auto buf = save(a);
  auto other = save(b);
  REQUIRE(buf.size() == other.size());
  size_t pos = 0;
  while (buf[pos] == other[pos])
    ++pos;
  for (int kind : {3, 0x7f, 0xff}) {
    buf[pos] = static_cast<char>(kind);
    log_entry out;
    CHECK(load(buf, out));
  }
}

TEST_CASE("a huge announced payload length fails without allocating it") {
  // CAF 0.17 would resize the vector to the announced 4 GiB before noticing
  // that the input is 9 bytes long; our loader grows only with real input.
  log_entry e{{1, 1}, entry_kind::normal, 0, {}};
  auto buf = save(e);
  REQUIRE(buf.back() == 0); // the empty payload's length, last on the wire
  buf.pop_back();
  for (unsigned char c : {0xff, 0xff, 0xff, 0xff, 0x0f})
    buf.push_back(static_cast<char>(c));
  buf.push_back(1);
  auto before = max_rss_kb();
  log_entry out;
  CHECK(load(buf, out));
  CHECK(max_rss_kb() - before < 256 * 1024);
}

TEST_CASE("a client's write with a huge announced payload length fails "
          "without allocating it") {
  // Clients reach a node over the network: their byte vectors
  // load in bounded chunks too.
  raft_actor::client_write w;
  auto buf = save(w);
  REQUIRE(buf.front() == 0); // the empty payload's length, first on the wire
  buf.erase(buf.begin());
  std::vector<char> huge;
  for (unsigned char c : {0xff, 0xff, 0xff, 0xff, 0x0f})
    huge.push_back(static_cast<char>(c));
  huge.push_back(1);
  buf.insert(buf.begin(), huge.begin(), huge.end());
  auto before = max_rss_kb();
  raft_actor::client_write out;
  CHECK(load(buf, out));
  CHECK(max_rss_kb() - before < 256 * 1024);
}

TEST_CASE("registered types survive a caf::message round trip") {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  auto msg = caf::make_message(append_request(), vote_response(),
                               snapshot_request(), joint_config(),
                               hard_state{3, 1}, log_id{2, 5}, entries()[2]);
  CHECK(caf::to_string(msg).find("raft_actor::append_entries_request")
        != std::string::npos);
  CHECK(caf::deep_to_string(entries()[2]).find("membership")
        != std::string::npos);
  // Call inspect() directly: in CAF 0.17 `sink(msg)` / `source(msg)` pick the
  // boost-style serialize(Processor&, type_erased_tuple&) overload, which
  // drops the error (a truncated message loads as an empty one, no error).
  buffer buf;
  {
    caf::binary_serializer sink{sys, buf};
    auto err = inspect(sink, msg);
    REQUIRE_MESSAGE(!err, caf::to_string(err));
  }
  caf::message out;
  {
    caf::binary_deserializer source{sys, buf};
    auto err = inspect(source, out);
    REQUIRE_MESSAGE(!err, caf::to_string(err));
  }
  REQUIRE(out.match_elements<append_entries_request, request_vote_response,
                             install_snapshot_request, membership, hard_state,
                             log_id, log_entry>());
  CHECK(same(out.get_as<append_entries_request>(0), append_request()));
  CHECK(same(out.get_as<request_vote_response>(1), vote_response()));
  CHECK(same(out.get_as<install_snapshot_request>(2), snapshot_request()));
  CHECK(same(out.get_as<membership>(3), joint_config()));
  CHECK(same(out.get_as<hard_state>(4), hard_state{3, 1}));
  CHECK(same(out.get_as<log_id>(5), log_id{2, 5}));
  CHECK(same(out.get_as<log_entry>(6), entries()[2]));
  // Truncated messages fail cleanly.
  for (size_t n = 0; n < buf.size(); n += (n < 512 ? 1 : 4999)) {
    CAPTURE(n);
    buffer prefix(buf.begin(), buf.begin() + static_cast<long>(n));
    caf::message partial;
    caf::binary_deserializer source{sys, prefix};
    CHECK(inspect(source, partial));
  }
}
