// A clock that moves only when told: the time source of synthetic events
// (testing/event_generator.h) and of the `now_ns` a test or the bench hands the pipeline
// (Pipeline::AfterBatch, Tick), so windows, timeouts and durations are exact and
// repeatable. Unix-epoch nanoseconds, as every event carries after the event source's
// boot-time conversion.
//
// Not thread-safe: one test (or bench loop) owns it.
#pragma once

#include <cstdint>

namespace kspan::testing {

class MockClock {
 public:
  // 2026-11-24T16:00:00Z: a plausible wall time, far from 0 so that "0 = unknown" fields and
  // subtraction mistakes show.
  static constexpr uint64_t kDefaultStartNs = 1'795'536'000'000'000'000ULL;

  explicit MockClock(uint64_t start_ns = kDefaultStartNs) : now_ns_(start_ns) {}

  uint64_t now_ns() const { return now_ns_; }
  void Advance(uint64_t ns) { now_ns_ += ns; }
  // Anywhere, backwards too: events of different connections may be stamped out of order,
  // as they come out of per-CPU buffers on a host.
  void Set(uint64_t ns) { now_ns_ = ns; }

 private:
  uint64_t now_ns_;
};

}  // namespace kspan::testing
