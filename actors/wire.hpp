// The wire format of raft-actor's network layer: what goes inside the frames
// that io_loop carries.
//
// Every frame body starts with one byte naming its kind; the rest is the
// kind's fields in CAF's binary format (the `inspect` overloads of messages/
// and libraft_actor/node.hpp, which load byte vectors in bounded chunks and
// reject unknown enum values and duplicate member ids). Decoding checks
// everything and consumes the whole body: a frame that does not decode is an
// error, never a guess.
//
//   hello     magic, version, cluster id, sender's node id (0: a client)
//   raft      one Raft RPC (index of the raft_message alternative, then it)
//   request   request id, request kind, the client or admin request
//   response  request id, response kind, the result (or an error)
//   metrics   node_metrics, for a connection subscribed to them
//
// Both ends of a connection send hello first. Requests are answered on the
// connection they came on, matched by id; a response may overtake another.
// Metrics subscriptions are per connection (an actor handle cannot cross the
// wire, and is never decoded from it).
#pragma once

#include "libraft_actor/node.hpp"

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace raft_actor::wire {

/// "RAFT" in ASCII: the first bytes of every hello.
constexpr uint32_t magic = 0x52414654;

/// The version of this format; a hello with another one is refused.
constexpr uint32_t version = 1;

/// Bytes a frame may need beyond its payload (entries, snapshot data or
/// client bytes): headers, ids, memberships.
constexpr size_t frame_overhead = 64 * 1024;

/// The first frame each end sends.
struct hello {
  /// The cluster of the sender (a client may send 0: any cluster).
  uint64_t cluster_id = 0;
  /// The sender's node id, or 0 for a client.
  node_id from = no_node;
};

/// Subscribe this connection to the node's metrics (answered admin_done).
struct subscribe_metrics {};

/// End this connection's metrics subscription (answered admin_done).
struct unsubscribe_metrics {};

/// What may be asked over a connection. (admin_subscribe_metrics and
/// admin_unsubscribe_metrics carry an actor handle and become
/// subscribe_metrics and unsubscribe_metrics on the wire.)
using request
  = std::variant<client_write, client_read, admin_initialize, admin_add_learner,
                 admin_remove_learner, admin_change_membership,
                 admin_transfer_leadership, admin_get_metrics,
                 admin_remove_node, admin_trigger_snapshot, admin_shutdown,
                 forwarded_write, admin_unsafe_force_sole_voter,
                 subscribe_metrics, unsubscribe_metrics>;

/// A failure as it crosses the wire: a CAF error's code and category, and
/// its context rendered as text.
struct error_reply {
  /// The error code within its category.
  uint8_t code = 0;
  /// The CAF error category (e.g. "raft").
  uint64_t category = 0;
  /// What went wrong, in words.
  std::string detail;
};

/// What answers a request.
using response = std::variant<error_reply, write_result, read_result,
                              admin_done, node_metrics>;

/// A request frame.
struct request_frame {
  /// Chosen by the asker; echoed in the response.
  uint64_t id = 0;
  /// The request.
  request body;
};

/// A response frame.
struct response_frame {
  /// The id of the request it answers.
  uint64_t id = 0;
  /// The answer.
  response body;
};

/// Any decoded frame.
using frame = std::variant<hello, raft_message, request_frame, response_frame,
                           node_metrics>;

/// Encodes a frame body.
std::vector<uint8_t> encode(const frame& f);

/// Decodes a frame body into `out`; empty on success, else why not.
std::string decode(const std::vector<uint8_t>& body, frame& out);

/// The wire form of a CAF error (the context becomes text).
error_reply to_reply(const caf::error& e);

/// A CAF error from its wire form (context: the detail text).
caf::error from_reply(const error_reply& r);

/// A short name of a frame's kind, for logs.
const char* kind_name(const frame& f);

} // namespace raft_actor::wire
