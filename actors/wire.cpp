#include "actors/wire.hpp"

#include "messages/caf_inspect.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/deep_to_string.hpp>
#include <caf/error.hpp>
#include <caf/message.hpp>
#include <caf/serializer_impl.hpp>

#include <utility>

namespace raft_actor::wire {

// -- inspection of the wire-only types ----------------------------------------
// (In this namespace, not an unnamed one: CAF finds them by ADL.)

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hello& x) {
  return f(caf::meta::type_name("raft_actor::wire::hello"), x.cluster_id,
           x.from);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subscribe_metrics&) {
  return f(caf::meta::type_name("raft_actor::wire::subscribe_metrics"));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unsubscribe_metrics&) {
  return f(caf::meta::type_name("raft_actor::wire::unsubscribe_metrics"));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, error_reply& x) {
  return f(caf::meta::type_name("raft_actor::wire::error_reply"), x.code,
           x.category, x.detail);
}

namespace {

/// The first byte of a frame body.
enum class kind : uint8_t {
  hello = 1,
  raft = 2,
  request = 3,
  response = 4,
  metrics = 5,
};

using sink_type = caf::serializer_impl<std::vector<uint8_t>>;

/// Saves any value (CAF's save path does not modify it; its inspect
/// overloads just take non-const references).
template <class T>
void save(sink_type& sink, const T& x) {
  if (auto err = sink(const_cast<T&>(x)))
    throw std::logic_error("wire: cannot encode: " + caf::to_string(err));
}

/// Saves a variant as the index of its alternative, then the alternative.
template <class... Ts>
void save_variant(sink_type& sink, const std::variant<Ts...>& v) {
  auto index = static_cast<uint8_t>(v.index());
  save(sink, index);
  std::visit([&](const auto& x) { save(sink, x); }, v);
}

/// Loads alternative `I` of `V` into `out` if `index == I`.
template <class V, size_t I>
bool load_if(caf::binary_deserializer& source, uint8_t index, V& out,
             caf::error& err) {
  if (index != I)
    return false;
  std::variant_alternative_t<I, V> x;
  err = source(x);
  if (!err)
    out = std::move(x);
  return true;
}

/// Loads a variant saved by save_variant; empty on success, else why not.
template <class V, size_t... Is>
std::string load_variant_impl(caf::binary_deserializer& source, V& out,
                              std::index_sequence<Is...>) {
  uint8_t index = 0;
  if (auto err = source(index))
    return "truncated";
  caf::error err;
  bool known = (load_if<V, Is>(source, index, out, err) || ...);
  if (!known)
    return "unknown alternative " + std::to_string(index);
  if (err)
    return caf::to_string(err);
  return {};
}

template <class V>
std::string load_variant(caf::binary_deserializer& source, V& out) {
  return load_variant_impl(source, out,
                           std::make_index_sequence<std::variant_size_v<V>>{});
}

/// Checks the enum fields CAF loads without range checks.
std::string check(const request& r) {
  if (auto read = std::get_if<client_read>(&r);
      read
      && static_cast<uint8_t>(read->mode)
           > static_cast<uint8_t>(consistency::stale))
    return "unknown read consistency "
           + std::to_string(static_cast<unsigned>(read->mode));
  return {};
}

std::string check(const node_metrics& m) {
  if (static_cast<uint8_t>(m.role) > static_cast<uint8_t>(node_role::leader))
    return "unknown role " + std::to_string(static_cast<unsigned>(m.role));
  return {};
}

std::string check(const response& r) {
  if (auto m = std::get_if<node_metrics>(&r))
    return check(*m);
  if (auto e = std::get_if<error_reply>(&r); e && e->code == 0)
    return "an error reply without an error code";
  return {};
}

} // namespace

std::vector<uint8_t> encode(const frame& f) {
  std::vector<uint8_t> buf;
  sink_type sink{nullptr, buf};
  std::visit(
    [&](const auto& x) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, hello>) {
        save(sink, kind::hello);
        save(sink, magic);
        save(sink, version);
        save(sink, x);
      } else if constexpr (std::is_same_v<T, raft_message>) {
        save(sink, kind::raft);
        save_variant(sink, x);
      } else if constexpr (std::is_same_v<T, request_frame>) {
        save(sink, kind::request);
        save(sink, x.id);
        save_variant(sink, x.body);
      } else if constexpr (std::is_same_v<T, response_frame>) {
        save(sink, kind::response);
        save(sink, x.id);
        save_variant(sink, x.body);
      } else {
        static_assert(std::is_same_v<T, node_metrics>);
        save(sink, kind::metrics);
        save(sink, x);
      }
    },
    f);
  return buf;
}

std::string decode(const std::vector<uint8_t>& body, frame& out) {
  caf::binary_deserializer source{nullptr, body};
  uint8_t k = 0;
  if (source(k))
    return "empty frame";
  std::string why;
  switch (static_cast<kind>(k)) {
    case kind::hello: {
      uint32_t m = 0;
      uint32_t v = 0;
      hello h;
      if (source(m, v))
        return "truncated hello";
      if (m != magic)
        return "not a raft-actor peer (bad magic)";
      if (v != version)
        return "wire version " + std::to_string(v) + " (this node speaks "
               + std::to_string(version) + ")";
      if (auto err = source(h))
        return "hello: " + caf::to_string(err);
      out = h;
      break;
    }
    case kind::raft: {
      raft_message m;
      if (why = load_variant(source, m); !why.empty())
        return "raft message: " + why;
      out = std::move(m);
      break;
    }
    case kind::request: {
      request_frame r;
      if (source(r.id))
        return "truncated request";
      if (why = load_variant(source, r.body); !why.empty())
        return "request: " + why;
      if (why = check(r.body); !why.empty())
        return "request: " + why;
      out = std::move(r);
      break;
    }
    case kind::response: {
      response_frame r;
      if (source(r.id))
        return "truncated response";
      if (why = load_variant(source, r.body); !why.empty())
        return "response: " + why;
      if (why = check(r.body); !why.empty())
        return "response: " + why;
      out = std::move(r);
      break;
    }
    case kind::metrics: {
      node_metrics m;
      if (auto err = source(m))
        return "metrics: " + caf::to_string(err);
      if (why = check(m); !why.empty())
        return "metrics: " + why;
      out = std::move(m);
      break;
    }
    default:
      return "unknown frame kind " + std::to_string(k);
  }
  if (source.remaining() != 0)
    return std::to_string(source.remaining()) + " stray bytes after a "
           + kind_name(out) + " frame";
  return {};
}

error_reply to_reply(const caf::error& e) {
  error_reply r;
  r.code = e.code();
  r.category = static_cast<uint64_t>(e.category());
  const auto& ctx = e.context();
  if (ctx.match_elements<std::string>())
    r.detail = ctx.get_as<std::string>(0);
  else if (!ctx.empty())
    r.detail = caf::to_string(ctx);
  return r;
}

caf::error from_reply(const error_reply& r) {
  return caf::error{r.code, static_cast<caf::atom_value>(r.category),
                    caf::make_message(r.detail)};
}

const char* kind_name(const frame& f) {
  switch (f.index()) {
    case 0:
      return "hello";
    case 1:
      return "raft";
    case 2:
      return "request";
    case 3:
      return "response";
    default:
      return "metrics";
  }
}

} // namespace raft_actor::wire
