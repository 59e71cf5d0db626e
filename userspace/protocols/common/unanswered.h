// Why a request's record has no answer, and what its span may claim because of it.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace kspan::protocols {

// Only kNoResponse says the peer failed: the connection ended cleanly, every byte of it was
// seen, and no answer came (ERROR, error.type=response_missing). Every other reason means
// kspan did not see the end: the span says so (kspan.incomplete) and claims no error.
enum class Unanswered : uint8_t {
  kNoResponse,   // the connection ended cleanly with nothing to answer it
  kNotCaptured,  // an answer may have crossed: bytes were lost to kspan, or it gave up waiting
  kEvicted,      // kspan dropped the connection's state first (idle, table full)
  kProcessExit,  // the process exited first
  kShutdown,     // kspan stopped first
};
inline constexpr size_t kUnansweredReasons = 5;

// The metric label and kspan.incomplete value: "no_response", "response_not_captured",
// "evicted", "process_exit", "shutdown".
constexpr std::string_view UnansweredName(Unanswered u) {
  constexpr std::array<std::string_view, kUnansweredReasons> kNames = {"no_response", "response_not_captured",
                                                                       "evicted", "process_exit", "shutdown"};
  return kNames[static_cast<size_t>(u)];
}

// Requests given up, by reason.
struct UnansweredCounts {
  std::array<uint64_t, kUnansweredReasons> by_reason{};

  uint64_t& operator[](Unanswered u) { return by_reason[static_cast<size_t>(u)]; }
  uint64_t operator[](Unanswered u) const { return by_reason[static_cast<size_t>(u)]; }
  uint64_t Total() const {
    uint64_t n = 0;
    for (uint64_t v : by_reason) n += v;
    return n;
  }
  UnansweredCounts& operator+=(const UnansweredCounts& o) {
    for (size_t i = 0; i < kUnansweredReasons; ++i) by_reason[i] += o.by_reason[i];
    return *this;
  }
};

}  // namespace kspan::protocols
