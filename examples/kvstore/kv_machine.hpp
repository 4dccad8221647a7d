// The replicated state of raft-kv: a map from string keys to string values,
// and each node's HTTP address, built on the framework's typed state
// machine (Boost.Serialization, copy-on-write snapshots).
//
// Commands come from HTTP handlers, but any client that reaches a node's
// Raft port can write raw bytes too: every string is length-checked before
// anything is allocated for it, and the node refuses a command that does not
// decode before it is proposed (state_machine::check_command).
#pragma once

#include "storage/typed_state_machine.hpp"

#include <boost/serialization/binary_object.hpp>
#include <boost/serialization/level.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/tracking.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace raft_actor::kv {

/// Longest key, in bytes.
constexpr size_t max_key_bytes = 4096;
/// Longest value, in bytes.
constexpr size_t max_value_bytes = 16 << 20;

namespace detail {

/// Saves a string as its length and bytes; on load refuses lengths over
/// `max` before allocating.
template <class Archive>
void bounded(Archive& ar, std::string& s, size_t max) {
  uint64_t n = s.size();
  ar& n;
  if constexpr (Archive::is_loading::value) {
    if (n > max)
      throw std::invalid_argument("a string of " + std::to_string(n)
                                  + " bytes exceeds the limit of "
                                  + std::to_string(max));
    s.resize(n);
  }
  if (n > 0)
    ar& boost::serialization::make_binary_object(s.data(), n);
}

/// Saves a bool as one byte; on load refuses anything but 0 and 1 (a raw
/// Boost bool load would copy any byte into the bool).
template <class Archive>
void flag(Archive& ar, bool& b) {
  uint8_t v = b ? 1 : 0;
  ar& v;
  if constexpr (Archive::is_loading::value) {
    if (v > 1)
      throw std::invalid_argument("a flag of value " + std::to_string(v));
    b = v == 1;
  }
}

} // namespace detail

/// What is replicated.
struct kv_state {
  /// The store.
  std::map<std::string, std::string> data;
  /// HTTP address ("host:port") of each node that registered one.
  std::map<node_id, std::string> http;

  /// Boost.Serialization (snapshots; produced and read locally).
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& data& http;
  }
};

/// What a command does.
enum class op : uint8_t {
  /// Set `key` to `value`.
  put = 0,
  /// Remove `key`.
  del = 1,
  /// Set `key` to `value` if it is `expected` (or absent, if not
  /// `expect_present`).
  cas = 2,
  /// Record node `node`'s HTTP address `value`.
  set_http = 3,
};

/// One write.
struct kv_command {
  /// The operation.
  op kind = op::put;
  /// The key (put, del, cas).
  std::string key;
  /// The new value (put, cas) or the HTTP address (set_http).
  std::string value;
  /// cas: whether the key must exist with value `expected` (else: must be
  /// absent).
  bool expect_present = false;
  /// cas: the value the key must have.
  std::string expected;
  /// set_http: the node.
  node_id node = no_node;

  /// Boost.Serialization with bounded strings and a checked kind.
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    auto k = static_cast<uint8_t>(kind);
    ar& k;
    if (k > static_cast<uint8_t>(op::set_http))
      throw std::invalid_argument("unknown kv operation " + std::to_string(k));
    kind = static_cast<op>(k);
    detail::bounded(ar, key, max_key_bytes);
    detail::bounded(ar, value, max_value_bytes);
    detail::flag(ar, expect_present);
    detail::bounded(ar, expected, max_value_bytes);
    ar& node;
  }
};

/// What a command did.
struct kv_response {
  /// cas: whether the value was swapped (always true otherwise).
  bool ok = true;
  /// put, del: whether the key existed before.
  bool existed = false;
  /// cas that failed: the key's current value, if it has one.
  bool has_current = false;
  /// See has_current.
  std::string current;

  /// Boost.Serialization.
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    detail::flag(ar, ok);
    detail::flag(ar, existed);
    detail::flag(ar, has_current);
    detail::bounded(ar, current, max_value_bytes);
  }
};

/// A read: one key, or (empty key and `http`) the HTTP address table.
struct kv_query {
  /// The key to read.
  std::string key;
  /// Read the HTTP address table instead.
  bool http = false;

  /// Boost.Serialization.
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    detail::bounded(ar, key, max_key_bytes);
    detail::flag(ar, http);
  }
};

/// The answer to a read.
struct kv_answer {
  /// Whether the key exists.
  bool found = false;
  /// Its value.
  std::string value;
  /// For an `http` query: every node's HTTP address.
  std::map<node_id, std::string> http;

  /// Boost.Serialization.
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    detail::flag(ar, found);
    detail::bounded(ar, value, max_value_bytes);
    ar& http;
  }
};

/// The state machine.
class kv_machine : public typed_state_machine<kv_state, kv_command, kv_response,
                                              kv_query, kv_answer> {
protected:
  kv_response apply_command(kv_state& s, const kv_command& c,
                            const log_entry& entry) override;
  kv_answer answer(const kv_state& s, const kv_query& q) const override;
};

} // namespace raft_actor::kv

// Commands, responses, queries and answers are plain data: no class
// information or object tracking in their archives (compact, and a fixed
// layout that is easy to check).
BOOST_CLASS_IMPLEMENTATION(raft_actor::kv::kv_command,
                           boost::serialization::object_serializable)
BOOST_CLASS_TRACKING(raft_actor::kv::kv_command,
                     boost::serialization::track_never)
BOOST_CLASS_IMPLEMENTATION(raft_actor::kv::kv_response,
                           boost::serialization::object_serializable)
BOOST_CLASS_TRACKING(raft_actor::kv::kv_response,
                     boost::serialization::track_never)
BOOST_CLASS_IMPLEMENTATION(raft_actor::kv::kv_query,
                           boost::serialization::object_serializable)
BOOST_CLASS_TRACKING(raft_actor::kv::kv_query,
                     boost::serialization::track_never)
BOOST_CLASS_IMPLEMENTATION(raft_actor::kv::kv_answer,
                           boost::serialization::object_serializable)
BOOST_CLASS_TRACKING(raft_actor::kv::kv_answer,
                     boost::serialization::track_never)
