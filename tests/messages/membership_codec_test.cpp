// The membership byte codec: every configuration round-trips, and every
// malformed input is rejected with an error message instead of crashing or
// allocating without bound. Its input comes from logs and snapshots on disk
// and from the network, so it is treated as hostile.
#include "messages/membership_codec.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace raft_actor;

namespace {

using bytes = std::vector<uint8_t>;

membership simple() {
  membership m;
  m.voters = {{1, "10.0.0.1:4000"}, {2, "10.0.0.2:4000"}, {3, ""}};
  return m;
}

membership joint_with_learners() {
  membership m;
  m.voters = {{2, "b:1"}, {3, "c:1"}, {4, "d:1"}};
  m.learners = {{5, "e:1"}};
  m.joint = true;
  m.old_voters = {{1, "a:1"}, {2, "b:1"}, {3, "c:1"}};
  return m;
}

/// Decodes `b`, expecting failure with a non-empty message.
void check_rejected(const bytes& b) {
  membership out;
  std::string error;
  CHECK_FALSE(decode_membership(b, out, error));
  CHECK_FALSE(error.empty());
}

/// Hand-written encoding helpers for malformed inputs.
void put_varint(bytes& out, uint64_t x) {
  while (x >= 0x80) {
    out.push_back(static_cast<uint8_t>(x | 0x80));
    x >>= 7;
  }
  out.push_back(static_cast<uint8_t>(x));
}

/// Header (version 1, not joint) followed by a voters map with the given
/// (id, address) pairs and empty learner and old-voter maps.
bytes with_voters(const std::vector<std::pair<uint64_t, std::string>>& vs) {
  bytes b{1, 0};
  put_varint(b, vs.size());
  for (const auto& [id, addr] : vs) {
    put_varint(b, id);
    put_varint(b, addr.size());
    b.insert(b.end(), addr.begin(), addr.end());
  }
  b.push_back(0);
  b.push_back(0);
  return b;
}

} // namespace

TEST_CASE("membership round-trips through the codec") {
  for (const auto& m : {membership{}, simple(), joint_with_learners()}) {
    auto b = encode_membership(m);
    membership out;
    std::string error;
    REQUIRE_MESSAGE(decode_membership(b, out, error), error);
    CHECK(out == m);
    CHECK(encode_membership(out) == b);
  }
}

TEST_CASE("large ids and long addresses round-trip") {
  membership m;
  m.voters = {{UINT64_MAX, std::string(4096, 'x')}, {1ull << 63, "y"}};
  m.learners = {{127, "a"}, {128, "b"}, {16383, "c"}, {16384, "d"}};
  auto b = encode_membership(m);
  membership out;
  std::string error;
  REQUIRE_MESSAGE(decode_membership(b, out, error), error);
  CHECK(out == m);
}

TEST_CASE("hand-written encoding decodes") {
  // Guards the wire format: logs written by older builds must stay readable.
  auto b = with_voters({{1, "a"}, {2, ""}});
  CHECK(b == encode_membership(membership{{{1, "a"}, {2, ""}}, {}, false, {}}));
  membership out;
  std::string error;
  REQUIRE_MESSAGE(decode_membership(b, out, error), error);
  CHECK(out.voters.size() == 2);
  CHECK(out.voters.at(1) == "a");
}

TEST_CASE("input truncated at any byte offset is rejected") {
  for (const auto& m : {membership{}, simple(), joint_with_learners()}) {
    auto b = encode_membership(m);
    for (size_t n = 0; n < b.size(); ++n) {
      CAPTURE(n);
      check_rejected(bytes(b.begin(), b.begin() + static_cast<long>(n)));
    }
  }
}

TEST_CASE("trailing bytes are rejected") {
  for (const auto& m : {membership{}, simple(), joint_with_learners()}) {
    auto b = encode_membership(m);
    for (uint8_t extra : {0, 1, 0xff}) {
      auto c = b;
      c.push_back(extra);
      check_rejected(c);
    }
  }
}

TEST_CASE("unknown version and bad joint flag are rejected") {
  auto b = encode_membership(simple());
  for (uint8_t version : {0, 2, 0xff}) {
    auto c = b;
    c[0] = version;
    check_rejected(c);
  }
  for (uint8_t flag : {2, 0x80, 0xff}) {
    auto c = b;
    c[1] = flag;
    check_rejected(c);
  }
}

TEST_CASE("duplicate ids are rejected") {
  check_rejected(with_voters({{1, "a"}, {1, "a"}}));
  check_rejected(with_voters({{7, "a"}, {3, "b"}, {7, "c"}}));
}

TEST_CASE("member id 0 is rejected") {
  check_rejected(with_voters({{0, "a"}}));
  check_rejected(with_voters({{1, "a"}, {0, ""}}));
}

TEST_CASE("old voters outside a joint configuration are rejected") {
  auto m = joint_with_learners();
  auto b = encode_membership(m);
  b[1] = 0; // claim "not joint" but keep the old voters
  check_rejected(b);
}

TEST_CASE("huge counts and lengths are rejected without allocating") {
  SUBCASE("huge member count") {
    bytes b{1, 0};
    put_varint(b, UINT64_MAX);
    check_rejected(b);
    bytes c{1, 0};
    put_varint(c, (1ull << 16) + 1);
    check_rejected(c);
  }
  SUBCASE("huge address length") {
    bytes b{1, 0, 1, 1};
    put_varint(b, UINT64_MAX);
    b.push_back('a');
    check_rejected(b);
    bytes c{1, 0, 1, 1};
    put_varint(c, 1u << 20);
    c.insert(c.end(), 64, 'a');
    check_rejected(c);
  }
  SUBCASE("address length just past the end") {
    bytes b{1, 0, 1, 1, 4, 'a', 'b', 'c'};
    check_rejected(b);
  }
  SUBCASE("varint longer than 64 bits") {
    bytes b{1, 0};
    b.insert(b.end(), 11, 0xff);
    b.push_back(0);
    check_rejected(b);
  }
}

TEST_CASE("random corruption never crashes and never yields garbage") {
  // Deterministic: a failure reproduces with the same seed.
  std::mt19937_64 rng{20240611};
  const std::vector<bytes> seeds
    = {encode_membership(simple()), encode_membership(joint_with_learners())};
  for (int i = 0; i < 20000; ++i) {
    auto b = seeds[static_cast<size_t>(i) % seeds.size()];
    auto flips = 1 + rng() % 4;
    for (uint64_t k = 0; k < flips; ++k) {
      switch (rng() % 3) {
        case 0: // overwrite a byte
          b[rng() % b.size()] = static_cast<uint8_t>(rng());
          break;
        case 1: // insert a byte
          b.insert(b.begin() + static_cast<long>(rng() % (b.size() + 1)),
                   static_cast<uint8_t>(rng()));
          break;
        default: // erase a byte
          if (b.size() > 1)
            b.erase(b.begin() + static_cast<long>(rng() % b.size()));
      }
    }
    membership out;
    std::string error;
    if (decode_membership(b, out, error)) {
      // Whatever is accepted must be a valid configuration that re-encodes
      // to something decoding to the same value.
      CHECK(out.voters.count(0) == 0);
      CHECK(out.learners.count(0) == 0);
      CHECK((out.joint || out.old_voters.empty()));
      membership again;
      REQUIRE(decode_membership(encode_membership(out), again, error));
      CHECK(again == out);
    } else {
      CHECK_FALSE(error.empty());
    }
  }
}
