// Byte encoding of a `membership`, used as the payload of membership log
// entries so that every store and transport sees plain bytes. Pure C++.
#pragma once

#include "messages/types.hpp"

#include <string>
#include <vector>

namespace raft_actor {

/// Encodes `m` into a compact, versioned byte string.
std::vector<uint8_t> encode_membership(const membership& m);

/// Decodes bytes made by `encode_membership`. Returns false and sets `error`
/// on truncated, oversized or otherwise malformed input; never throws.
bool decode_membership(const std::vector<uint8_t>& bytes, membership& out,
                       std::string& error);

} // namespace raft_actor
