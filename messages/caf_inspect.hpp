// CAF 0.17 `inspect` overloads for the plain message structs of
// messages/types.hpp and messages/rpc.hpp. They make every struct usable in a
// `caf::message`, printable with `caf::deep_to_string`, and serializable with
// `caf::binary_serializer` / `caf::binary_deserializer` (the network wire
// format). Only code that talks to CAF includes this header; the pure core
// never does.
//
// What CAF 0.17.6 does on its own, and why some fields go through wrappers:
// - Enums: data processors serialize an enum as its underlying integer, but
//   accept any value on load, and `deep_to_string` prints `<unprintable>`.
//   `entry_kind` therefore goes through `kind_field`, which rejects unknown
//   values and prints the name.
// - std::map: handled natively as a sequence of (key, value) pairs, but on
//   load a duplicate key is silently dropped. `member_map` goes through
//   `members_field`, which uses the same wire format and rejects duplicate
//   ids and id 0 (as the membership byte codec does).
// - std::vector<uint8_t>: CAF resizes the vector to the announced length
//   *before* checking that the input holds that many bytes, so nine hostile
//   bytes make it allocate and zero 4 GB. `bytes_field` keeps CAF's wire
//   format but reads in bounded chunks, so memory grows only with bytes that
//   actually arrived.
#pragma once

#include "messages/rpc.hpp"
#include "messages/types.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>

namespace raft_actor {

namespace caf_detail {

// -- field wrappers -----------------------------------------------------------

/// Serializes an `entry_kind` as one byte and validates it on load.
struct kind_field {
  entry_kind& ref;
};

/// Printable name of an entry kind (picked up by `caf::deep_to_string`).
inline std::string to_string(const kind_field& x) {
  switch (x.ref) {
    case entry_kind::normal:
      return "normal";
    case entry_kind::blank:
      return "blank";
    case entry_kind::membership:
      return "membership";
  }
  return "entry_kind(" + std::to_string(static_cast<unsigned>(x.ref)) + ")";
}

/// Loads and stores an `entry_kind`, refusing values this build does not know.
/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kind_field& x) {
  auto tmp = static_cast<uint8_t>(x.ref);
  auto check = [&]() -> caf::error {
    if (tmp > static_cast<uint8_t>(entry_kind::membership))
      return caf::make_error(caf::sec::invalid_argument, "unknown entry_kind",
                             static_cast<int>(tmp));
    x.ref = static_cast<entry_kind>(tmp);
    return caf::none;
  };
  return f(tmp, caf::meta::load_callback(check));
}

/// Serializes a `member_map` in CAF's map format and validates it on load.
struct members_field {
  member_map& ref;
};

/// Saves like CAF's native std::map support; loads through a vector so that
/// a duplicate id is an error rather than silently dropped.
/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, members_field& x) {
  if constexpr (Inspector::writes_state) {
    std::vector<std::pair<node_id, std::string>> tmp;
    auto build = [&]() -> caf::error {
      member_map result;
      for (auto& [id, address] : tmp) {
        if (id == no_node)
          return caf::make_error(caf::sec::invalid_argument, "member id 0");
        if (!result.emplace(id, std::move(address)).second)
          return caf::make_error(caf::sec::invalid_argument,
                                 "duplicate member id", id);
      }
      x.ref = std::move(result);
      return caf::none;
    };
    return f(tmp, caf::meta::load_callback(build));
  } else {
    return f(x.ref);
  }
}

/// A byte vector in CAF's format, loaded in bounded chunks.
struct bytes_field {
  std::vector<uint8_t>& ref;
};

/// Saves like CAF's native byte-vector support; loads chunk by chunk.
/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bytes_field& x) {
  if constexpr (Inspector::writes_state) {
    // Same wire format as CAF's own byte-sequence loading (length, then raw
    // bytes), but never allocates more than one chunk ahead of the input.
    constexpr size_t chunk_size = 64 * 1024;
    size_t size = 0;
    if (auto err = f.begin_sequence(size))
      return err;
    std::vector<uint8_t> result;
    while (result.size() < size) {
      auto offset = result.size();
      auto n = std::min(chunk_size, size - offset);
      result.resize(offset + n);
      if (auto err = f.apply_raw(n, result.data() + offset))
        return err;
    }
    if (auto err = f.end_sequence())
      return err;
    x.ref = std::move(result);
    return caf::none;
  } else {
    return f(x.ref);
  }
}

} // namespace caf_detail

// -- basic vocabulary ---------------------------------------------------------

/// Wire format: term, index.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_id& x) {
  return f(caf::meta::type_name("raft_actor::log_id"), x.term, x.index);
}

/// Wire format: id, kind (one byte, validated), leader_time_ms, payload.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_entry& x) {
  caf_detail::kind_field kind{x.kind};
  caf_detail::bytes_field payload{x.payload};
  return f(caf::meta::type_name("raft_actor::log_entry"), x.id, kind,
           x.leader_time_ms, payload);
}

/// Wire format: voters, learners, joint, old_voters; validated on load.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, membership& x) {
  caf_detail::members_field voters{x.voters};
  caf_detail::members_field learners{x.learners};
  caf_detail::members_field old_voters{x.old_voters};
  // Runs after all fields are loaded (CAF processes arguments in order).
  auto check = [&]() -> caf::error {
    if (!x.joint && !x.old_voters.empty())
      return caf::make_error(caf::sec::invalid_argument,
                             "old voters in a non-joint membership");
    return caf::none;
  };
  return f(caf::meta::type_name("raft_actor::membership"), voters, learners,
           x.joint, old_voters, caf::meta::load_callback(check));
}

/// Wire format: current_term, voted_for.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hard_state& x) {
  return f(caf::meta::type_name("raft_actor::hard_state"), x.current_term,
           x.voted_for);
}

// -- RPCs ---------------------------------------------------------------------

/// Wire format: cluster_id, version, from, to.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rpc_header& x) {
  return f(caf::meta::type_name("raft_actor::rpc_header"), x.cluster_id,
           x.version, x.from, x.to);
}

/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_vote_request& x) {
  return f(caf::meta::type_name("raft_actor::request_vote_request"), x.header,
           x.term, x.last_log, x.pre_vote, x.leadership_transfer);
}

/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        request_vote_response& x) {
  return f(caf::meta::type_name("raft_actor::request_vote_response"), x.header,
           x.term, x.vote_granted, x.pre_vote);
}

/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        append_entries_request& x) {
  return f(caf::meta::type_name("raft_actor::append_entries_request"), x.header,
           x.term, x.prev_log, x.entries, x.leader_commit, x.round);
}

/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        append_entries_response& x) {
  return f(caf::meta::type_name("raft_actor::append_entries_response"),
           x.header, x.term, x.success, x.match_index, x.rejected_prev_index,
           x.conflict_term, x.conflict_index, x.last_log_index, x.round);
}

/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        install_snapshot_request& x) {
  caf_detail::bytes_field data{x.data};
  return f(caf::meta::type_name("raft_actor::install_snapshot_request"),
           x.header, x.term, x.snapshot_id, x.last_included, x.config, x.offset,
           data, x.done);
}

/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        install_snapshot_response& x) {
  return f(caf::meta::type_name("raft_actor::install_snapshot_response"),
           x.header, x.term, x.snapshot_id, x.next_offset, x.done);
}

/// All fields, in declaration order.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, timeout_now_request& x) {
  return f(caf::meta::type_name("raft_actor::timeout_now_request"), x.header,
           x.term);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_index_request& x) {
  return f(caf::meta::type_name("raft_actor::read_index_request"), x.header,
           x.term, x.read_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_index_response& x) {
  return f(caf::meta::type_name("raft_actor::read_index_response"), x.header,
           x.term, x.read_id, x.success, x.read_index);
}

} // namespace raft_actor
