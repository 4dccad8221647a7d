// CRC32C (Castagnoli), the checksum of every record and metadata file.
//
// Why CRC32C rather than XXH3: it is the checksum storage systems standardised
// on (iSCSI, ext4 metadata, etcd's WAL), it detects every burst error up to
// 32 bits, x86 (SSE4.2) and ARMv8 compute it in hardware, and it needs no
// extra package. A table-driven fallback serves machines without the
// instruction.
#pragma once

#include <cstddef>
#include <cstdint>

namespace raft_actor {

/// CRC32C of `n` bytes at `data`, continuing from `crc` (0 to start).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

} // namespace raft_actor
