// What the fuzz harnesses share: a deterministic generator to pick cuts from the input,
// a hash to seed it, and a check that aborts with the harness's name (libFuzzer and the
// replay driver both report an abort as a crash, with the input that caused it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace kspan::fuzz {

// Set by each harness (its file name without .cc), for the failure message.
extern const char* const kHarness;

// SplitMix64: small, deterministic, good enough to pick cuts.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  uint64_t In(uint64_t lo, uint64_t hi) { return lo + Next() % (hi - lo + 1); }
  bool OneIn(uint64_t n) { return Next() % n == 0; }

 private:
  uint64_t s_;
};

// FNV-1a: a seed for Rng from the input itself, so a run replays exactly.
inline uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
  return h;
}

[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "%s: %s\n", kHarness, what);
  std::abort();
}

inline void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

}  // namespace kspan::fuzz
