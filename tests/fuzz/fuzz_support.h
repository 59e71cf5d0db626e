// What the fuzz harnesses share: a deterministic generator to pick cuts from the input,
// a hash to seed it, and a check that aborts with the harness's name (libFuzzer and the
// replay driver both report an abort as a crash, with the input that caused it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

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

// One syscall's bytes of a two-stream exchange: `bytes` moved at stream position `pos`,
// of which the first `captured` were seen.
struct StreamPiece {
  bool egress;
  uint64_t pos;
  std::string_view bytes;
  uint32_t captured;
};

// Cuts a request stream and a response stream into syscalls of 1 to 96 bytes, one in six
// only partly captured, as seen by the client (`client`) or the server, then interleaves
// the two directions and swaps about one neighbour pair in three: the order events of
// several CPUs may reach user space in. Deterministic for a given `rng`.
inline std::vector<StreamPiece> CutIntoSyscalls(Rng* rng, std::string_view request, std::string_view response,
                                                bool client) {
  std::vector<StreamPiece> pieces;
  for (auto [is_request, bytes] : {std::pair{true, request}, std::pair{false, response}}) {
    uint64_t pos = 0;
    while (pos < bytes.size()) {
      const size_t n = std::min<uint64_t>(rng->In(1, 96), bytes.size() - pos);
      uint32_t captured = static_cast<uint32_t>(n);
      if (rng->OneIn(6)) captured = static_cast<uint32_t>(rng->In(0, n));
      pieces.push_back(StreamPiece{is_request == client, pos, bytes.substr(pos, n), captured});
      pos += n;
    }
  }
  for (size_t i = 1; i < pieces.size(); ++i) {
    if (rng->OneIn(3)) std::swap(pieces[i - 1], pieces[i]);
  }
  return pieces;
}

[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "%s: %s\n", kHarness, what);
  std::abort();
}

inline void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

}  // namespace kspan::fuzz
