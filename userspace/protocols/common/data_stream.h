// One direction of one connection as a byte stream with positions: what the kernel
// captured, where it captured nothing (holes), and when each byte moved.
//
// The kernel sends one chunk per syscall: the stream position of its first byte, the
// captured prefix and the number of bytes the syscall moved. The rest of that syscall is a
// HOLE: its size is known, its bytes are not. A missing chunk (a lost event, or one still
// on another CPU's way) leaves a GAP: a range of unknown content AND unknown extent,
// waited for a while and then treated as a hole.
//
//   position()                                      end()         held (out of order)
//   │ captured │ hole ······ │ captured │ hole ···· │   gap ???   │ chunk │ chunk │
//   └──────── the known extent: parse from here ─────┘
//
// Holes cost nothing: they are a length, never materialised. Captured bytes that touch are
// kept in one contiguous buffer so a frame that spans two syscalls parses as one view.
//
// Ownership and threads: the stream copies what Add() is given; views returned by Head()
// stay valid until the next non-const call. One thread at a time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/fifo.h"

namespace kspan::protocols {

// The syscall that moved a byte: `first_ns` is the entry of a send or the exit of a
// receive, `last_ns` the other end of that syscall; `tid` the thread that made it.
struct ChunkTiming {
  uint64_t first_ns = 0;
  uint64_t last_ns = 0;
  uint32_t tid = 0;
  uint32_t turn = 0;  // the thread's event-loop turn (events::DataEvent::turn)
};

// Memory a connection holds for frames not whole yet (ProtocolConnection::Held).
struct HeldData {
  size_t bytes = 0;        // captured bytes and their bookkeeping (DataStream::footprint)
  uint64_t oldest_ns = 0;  // when the oldest of them moved (Unix ns); 0 when none
};

class DataStream {
 public:
  struct Options {
    // Captured bytes held, in order and out of order. Past it the stream drops what it holds
    // in order (counted) and the parser resynchronises. Holes are free.
    size_t max_buffered_bytes = 1 << 20;
    // Out-of-order chunks held behind a gap before the gap is declared a hole. Half of
    // max_buffered_bytes bounds their bytes the same way.
    size_t max_held_chunks = 64;
  };

  // Each syscall's timing costs a Span (32 bytes) until consumed, captured bytes or not; a
  // stream holds at most max_buffered_bytes / kSpanBudget of them (16384 for 1 MiB, 512 KiB),
  // so a flood of tiny or empty chunks is bounded like bytes are.
  static constexpr size_t kSpanBudget = 64;

  // What the stream threw away or gave up on since the last TakeCounters().
  struct Counters {
    uint64_t bytes_dropped = 0;  // captured bytes dropped at the buffer cap
    uint64_t gaps = 0;           // gaps (missing chunks) declared holes
  };

  // `start`: the position of the first byte this stream will see.
  explicit DataStream(const Options& options, uint64_t start = 0);

  // One syscall's bytes: `captured` is the prefix seen of the `total_len` bytes moved from
  // `position` on. Duplicates and what overlaps bytes already known are ignored; a chunk
  // past a gap is held until the gap fills or is given up.
  void Add(uint64_t position, std::string_view captured, uint64_t total_len, const ChunkTiming& timing);

  // Declares every gap a hole now (the connection closed; or a lost event is certain).
  void FillGaps();
  // Called once per drain cycle: a gap that was already there at the previous call is
  // given up (FillGaps). Reordering across CPUs resolves in microseconds; a drain period
  // is ample patience.
  void AgeGaps();

  // ---- Reading -------------------------------------------------------------------------
  uint64_t position() const { return position_; }
  // One past the last known byte contiguous from position(): the known extent.
  uint64_t end() const { return end_; }
  // Captured bytes from position() up to the next hole or end(). Empty when position()
  // is inside a hole or at end().
  std::string_view Head() const;
  // Head() is followed by a hole (not by end()).
  bool HoleAfterHead() const;
  // When Head() is empty and position() < end(): the length of the hole at position().
  uint64_t HoleAtHead() const;
  // Moves position() forward by n <= end() - position(), across captured bytes and holes.
  void Consume(uint64_t n);
  // Timing of the chunk holding byte `pos`; valid for pos in [position() - 1, end()).
  // `chunk_end`, when given, gets the position just past that chunk (> pos).
  ChunkTiming TimingAt(uint64_t pos, uint64_t* chunk_end = nullptr) const;

  // Consumes everything known; returns the captured bytes thrown away.
  uint64_t DiscardKnown();

  size_t buffered_bytes() const { return buffered_; }
  // Memory held for bytes not parsed yet: the captured bytes and each of their syscalls'
  // timing (the timing of the last byte consumed is kept, and not counted).
  size_t footprint() const {
    return buffered_ + (chunks_.size() > 1 ? (chunks_.size() - 1) * sizeof(Span) : 0);
  }
  // When the oldest byte still held moved (Unix ns); 0 when nothing is held.
  uint64_t oldest_held_ns() const {
    if (buffered_ == 0) return 0;
    if (!chunks_.empty()) return chunks_.front().timing.first_ns;
    return held_.empty() ? 0 : held_.begin()->second.timing.first_ns;
  }
  size_t chunk_count() const { return chunks_.size(); }
  // Past half of either bound: parse now rather than let the cap drop data.
  bool under_pressure() const {
    return buffered_ > options_.max_buffered_bytes / 2 || chunks_.size() > max_chunks_ / 2;
  }
  bool has_gap() const { return !held_.empty(); }
  // Bumps each time the cap dropped data: a parser that sees it change resynchronises.
  uint64_t drop_count() const { return drop_count_; }
  Counters TakeCounters();

 private:
  // A run of contiguous captured bytes, then a hole (the last run may have none).
  struct Run {
    uint64_t pos = 0;  // stream position of bytes[0]
    std::string bytes;
    uint64_t hole = 0;
  };
  struct Span {
    uint64_t begin = 0;
    uint64_t end = 0;
    ChunkTiming timing;
  };
  struct Held {
    std::string bytes;
    uint64_t total_len = 0;
    ChunkTiming timing;
  };

  void AppendInOrder(uint64_t position, std::string_view captured, uint64_t total_len,
                     const ChunkTiming& timing);
  void DrainHeld();
  void MakeRoom(size_t n);
  void CompactFront();

  Options options_;
  size_t max_chunks_;
  uint64_t position_;
  uint64_t end_;
  Fifo<Run> runs_;     // covers [runs_.front().pos, end_) without a break
  Fifo<Span> chunks_;  // timing of each syscall, by position
  std::map<uint64_t, Held> held_;
  size_t buffered_ = 0;  // bytes in runs_ (including a consumed prefix not yet compacted) + held_
  size_t held_bytes_ = 0;
  int gap_age_ = 0;
  uint64_t drop_count_ = 0;
  Counters counters_;
};

// What the two directions of a connection hold.
inline HeldData HeldBy(const DataStream& a, const DataStream& b) {
  const uint64_t ta = a.oldest_held_ns(), tb = b.oldest_held_ns();
  return HeldData{a.footprint() + b.footprint(), ta == 0 ? tb : (tb == 0 ? ta : std::min(ta, tb))};
}

}  // namespace kspan::protocols
