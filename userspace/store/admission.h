// Which spans the trace store takes when more arrive than it should write: whole traces at
// a bounded span rate, errors first.
//
// The store costs CPU per span on its own thread (bench/README.md, section store), far more
// than the rest of the pipeline, and holds only minutes of a busy host's spans within its
// size bound anyway. So StoreSink (store_sink.h) writes at most `spans_per_second` spans a
// second on average, in whole traces:
//   - A token bucket refills at the rate and holds at most a second's worth.
//   - A trace is decided at its first span: taken while a token is left, else refused, and
//     the decision is remembered, so a trace is stored whole or not at all.
//   - Spans of a taken trace are taken while the bucket is above minus a second's worth,
//     and an ERROR span takes its trace (even a refused one) on the same terms: errors are
//     what people look for, so they may spend up to twice the rate.
// Decisions are remembered in two generations of at most kMaxRemembered traces each,
// turned over every kGenerationNs; a trace quiet for longer is decided again.
//
// Not thread-safe: the sink calls it under its lock.
#pragma once

#include <cstdint>
#include <vector>

#include "model/span.h"

namespace kspan::store {

class TraceAdmission {
 public:
  static constexpr size_t kMaxRemembered = 65536;
  static constexpr uint64_t kGenerationNs = 30'000'000'000;

  // 0: every span is taken.
  explicit TraceAdmission(uint32_t spans_per_second);

  // True: store the span. `now_ns` is any monotonic clock in ns.
  bool Admit(const model::Span& span, uint64_t now_ns);

 private:
  // trace -> taken, in an open-addressing table with linear probing and the ids in its
  // slots: a look-up of a trace not seen (most of them) is a hash and a slot or two, and
  // an insert allocates nothing unless the table grows (a std::unordered_map allocated a
  // node per trace and freed a generation's 65,536 of them at once). Entries are never
  // erased one by one, only all at once (Clear). The zero id (invalid in W3C) is never
  // remembered: its spans are decided one by one (it marks a free slot).
  class Decisions {
   public:
    size_t size() const { return size_; }
    // The decision for `id`, or null.
    bool* Find(const model::TraceId& id);
    // Remembers `taken` for `id` (not present); null for the zero id.
    bool* Insert(const model::TraceId& id, bool taken);
    // Forgets everything; a table far larger than what it held is given back.
    void Clear();

   private:
    struct Slot {
      model::TraceId id;  // zero: free
      bool taken = false;
    };
    static constexpr size_t kMinSlots = 1024;
    void Grow();

    std::vector<Slot> slots_;
    size_t size_ = 0;
  };

  void Refill(uint64_t now_ns);
  bool* Remembered(const model::TraceId& id, uint64_t now_ns);

  const double rate_;
  double tokens_;
  uint64_t last_ns_ = 0;
  uint64_t generation_start_ns_ = 0;
  Decisions current_, previous_;
};

}  // namespace kspan::store
