// The typed state-machine helper: commands, responses, queries and
// snapshots of a Boost-serialisable key-value map, with copy-on-write
// capture.
#include "storage/typed_state_machine.hpp"

#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>

#include <doctest/doctest.h>

#include <map>
#include <string>

using namespace raft_actor;

namespace {

struct kv_state {
  std::map<std::string, std::string> data;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& data;
  }
};

struct put_cmd {
  std::string key;
  std::string value;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& key& value;
  }
};

class kv : public typed_state_machine<kv_state, put_cmd, bool, std::string,
                                      std::string> {
protected:
  bool apply_command(kv_state& s, const put_cmd& p, const log_entry&) override {
    return s.data.insert_or_assign(p.key, p.value).second;
  }
  std::string answer(const kv_state& s, const std::string& k) const override {
    auto i = s.data.find(k);
    return i == s.data.end() ? std::string{} : i->second;
  }
};

log_entry command(index_t i, const put_cmd& c) {
  log_entry e;
  e.id = {1, i};
  e.payload = kv::encode_command(c);
  return e;
}

} // namespace

TEST_CASE("typed state machine: apply, query, snapshot and restore") {
  kv sm;
  log_entry blank;
  blank.id = {1, 1};
  blank.kind = entry_kind::blank;
  auto out = sm.apply({blank, command(2, {"a", "1"}), command(3, {"a", "2"})});
  REQUIRE(out.size() == 3);
  CHECK(out[0].empty());
  CHECK(kv::decode_response(out[1]) == true);  // inserted
  CHECK(kv::decode_response(out[2]) == false); // replaced
  CHECK(kv::decode_answer(sm.query(kv::encode_query("a"))) == "2");

  // Capture, then keep applying: the capture still sees the old state.
  auto snap = sm.capture();
  sm.apply({command(4, {"b", "3"})});
  auto bytes = snap->serialize();
  kv other;
  other.restore(bytes);
  CHECK(other.state().data == std::map<std::string, std::string>{{"a", "2"}});
  CHECK(sm.state().data.size() == 2);
}

TEST_CASE("typed state machine: undecodable bytes are a clear error") {
  kv sm;
  log_entry e;
  e.id = {1, 1};
  e.payload = {0xff, 0xff, 0xff};
  CHECK_THROWS_AS(sm.apply({e}), std::invalid_argument);
  CHECK_THROWS_AS(sm.restore({1, 2}), std::invalid_argument);
  CHECK_THROWS_AS(sm.query({}), std::invalid_argument);
}

TEST_CASE("typed state machine: check_command accepts what decodes and "
          "names why it refuses the rest") {
  kv sm;
  CHECK(sm.check_command(kv::encode_command({"a", "1"})).empty());
  auto why = sm.check_command({0xff, 0xff, 0xff});
  CHECK(why.find("cannot decode") != std::string::npos);
  CHECK(sm.state().data.empty()); // checking applies nothing
}
