// A state machine for users whose state, commands, responses, queries and
// answers are Boost-serialisable types: no byte code to write. The state is
// held copy-on-write, so capturing a snapshot is O(1) on the applying thread
// and the (possibly slow) serialisation runs elsewhere while applying goes
// on; the first write after a capture copies the state once.
//
// Example:
//   struct kv_state { std::map<std::string, std::string> data;
//     template <class A> void serialize(A& a, unsigned) { a & data; } };
//   struct put { std::string key, value; ... serialize ... };
//   class kv : public typed_state_machine<kv_state, put, bool,
//                                         std::string, std::string> {
//     bool apply_command(kv_state& s, const put& p, const log_entry&) override
//     { return s.data.insert_or_assign(p.key, p.value).second; }
//     std::string answer(const kv_state& s, const std::string& k) const
//     override { auto i = s.data.find(k);
//                return i == s.data.end() ? "" : i->second; }
//   };
#pragma once

#include "storage/interfaces.hpp"

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

namespace raft_actor {

/// Serialises any Boost-serialisable value to bytes (binary archive, no
/// header).
template <class T>
std::vector<uint8_t> to_bytes(const T& value) {
  std::ostringstream os;
  {
    boost::archive::binary_oarchive ar(os, boost::archive::no_header);
    ar << value;
  }
  auto s = os.str();
  return {s.begin(), s.end()};
}

/// Deserialises what to_bytes made; throws std::invalid_argument on bytes
/// that do not decode. Boost archives trust their input's sizes: decode
/// bytes from untrusted clients only after bounding their length.
template <class T>
T from_bytes(const std::vector<uint8_t>& bytes) {
  try {
    std::istringstream is(
      std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    boost::archive::binary_iarchive ar(is, boost::archive::no_header);
    T value;
    ar >> value;
    return value;
  } catch (const boost::archive::archive_exception& e) {
    throw std::invalid_argument(std::string("cannot decode bytes: ")
                                + e.what());
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    // Stream failures, and absurd lengths that fail to allocate.
    throw std::invalid_argument(std::string("cannot decode bytes: ")
                                + e.what());
  }
}

/// A state_machine over typed State, Command, Response, Query and Answer.
template <class State, class Command, class Response, class Query, class Answer>
class typed_state_machine : public state_machine {
public:
  /// Encodes a command as a log payload (what a client writes).
  static std::vector<uint8_t> encode_command(const Command& c) {
    return to_bytes(c);
  }
  /// Decodes the bytes apply() returned for one command.
  static Response decode_response(const std::vector<uint8_t>& bytes) {
    return from_bytes<Response>(bytes);
  }
  /// Encodes a query (what a client reads with).
  static std::vector<uint8_t> encode_query(const Query& q) {
    return to_bytes(q);
  }
  /// Decodes the bytes query() returned.
  static Answer decode_answer(const std::vector<uint8_t>& bytes) {
    return from_bytes<Answer>(bytes);
  }

  typed_state_machine() : state_(std::make_shared<State>()) {}

  /// The current state (read-only).
  const State& state() const { return *state_; }

  std::vector<std::vector<uint8_t>>
  apply(const std::vector<log_entry>& entries) override {
    std::vector<std::vector<uint8_t>> out;
    out.reserve(entries.size());
    for (const auto& e : entries) {
      if (e.kind != entry_kind::normal) {
        out.emplace_back(); // blank and membership entries answer nothing
        continue;
      }
      // A command that does not decode was committed: every replica fails
      // identically here, so stop rather than diverge or skip it.
      auto cmd = from_bytes<Command>(e.payload);
      out.push_back(to_bytes(apply_command(mutable_state(), cmd, e)));
    }
    return out;
  }

  /// Refuses a command that does not decode as Command.
  std::string
  check_command(const std::vector<uint8_t>& payload) const override {
    try {
      (void)from_bytes<Command>(payload);
      return {};
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
  }

  std::vector<uint8_t> query(const std::vector<uint8_t>& q) const override {
    return to_bytes(answer(*state_, from_bytes<Query>(q)));
  }

  std::unique_ptr<snapshot_source> capture() override {
    struct source : snapshot_source {
      std::shared_ptr<const State> state;
      std::vector<uint8_t> serialize() override { return to_bytes(*state); }
    };
    auto s = std::make_unique<source>();
    s->state = state_;
    return s;
  }

  void restore(const std::vector<uint8_t>& data) override {
    state_ = std::make_shared<State>(from_bytes<State>(data));
  }

protected:
  /// Applies one command to the state and returns its response.
  virtual Response apply_command(State& state, const Command& cmd,
                                 const log_entry& entry)
    = 0;
  /// Answers a read-only query.
  virtual Answer answer(const State& state, const Query& q) const = 0;

private:
  State& mutable_state() {
    // Copy-on-write: a captured snapshot still holds the old state.
    if (state_.use_count() > 1)
      state_ = std::make_shared<State>(*state_);
    return *state_;
  }

  std::shared_ptr<State> state_;
};

} // namespace raft_actor
