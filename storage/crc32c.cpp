#include "storage/crc32c.hpp"

#include <array>
#include <cstring>

namespace raft_actor {

namespace {

constexpr uint32_t poly = 0x82f63b78u; // reflected Castagnoli polynomial

/// Slicing-by-8 tables, built once at compile time.
struct tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (size_t s = 1; s < 8; ++s)
        t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};

constexpr tables table{};

uint32_t crc_software(const uint8_t* p, size_t n, uint32_t c) {
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    word ^= c; // little-endian: the low 32 bits meet the running crc
    c = table.t[7][word & 0xff] ^ table.t[6][(word >> 8) & 0xff]
        ^ table.t[5][(word >> 16) & 0xff] ^ table.t[4][(word >> 24) & 0xff]
        ^ table.t[3][(word >> 32) & 0xff] ^ table.t[2][(word >> 40) & 0xff]
        ^ table.t[1][(word >> 48) & 0xff] ^ table.t[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0)
    c = (c >> 8) ^ table.t[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) uint32_t crc_hardware(const uint8_t* p,
                                                        size_t n, uint32_t c) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c64 = __builtin_ia32_crc32di(c64, word);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
  while (n-- > 0)
    c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}

bool have_hardware() {
  static const bool yes = __builtin_cpu_supports("sse4.2");
  return yes;
}
#else
uint32_t crc_hardware(const uint8_t* p, size_t n, uint32_t c) {
  return crc_software(p, n, c);
}
bool have_hardware() {
  return false;
}
#endif

} // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  auto p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  c = have_hardware() ? crc_hardware(p, n, c) : crc_software(p, n, c);
  return ~c;
}

} // namespace raft_actor
