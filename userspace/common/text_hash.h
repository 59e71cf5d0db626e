// A quick 64-bit hash of short texts for the daemon's own tables (span metrics' label
// sets, the stitcher's pairing keys): eight bytes at a time, the last (up to 8) read as
// one or two overlapping words, the length mixed in. Not stable across versions and not
// meant to resist chosen collisions (nor was std::hash's fixed seed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace kspan {

inline uint64_t HashMix(uint64_t h, uint64_t v) {
  h = (h ^ v) * 0x9E3779B97F4A7C15ULL;
  return h ^ (h >> 31);
}

inline uint64_t HashText(uint64_t h, std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t w = 0;
  for (; n > 8; n -= 8, p += 8) {
    std::memcpy(&w, p, 8);
    h = HashMix(h, w);
  }
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    w = a | static_cast<uint64_t>(b) << 32;
  } else if (n > 0) {
    // 1 to 3 bytes: the first, middle and last (the length tells them apart).
    w = static_cast<uint64_t>(static_cast<unsigned char>(p[0])) |
        static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
        static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16;
  }
  return HashMix(h, w ^ static_cast<uint64_t>(s.size()) << 56);
}

}  // namespace kspan
