#include "protocols/common/data_stream.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace kspan::protocols {
namespace {

// A consumed prefix of the front run is erased once it is this big and at least half the
// run: each byte moves at most once more, on average.
constexpr size_t kCompactMin = 4096;
// A run buffer that grew past this is freed, not kept, once consumed: an idle connection
// holds no memory.
constexpr size_t kKeepCapacity = 16 * 1024;

}  // namespace

DataStream::DataStream(const Options& options, uint64_t start)
    : options_(options), position_(start), end_(start) {
  if (options_.max_buffered_bytes < 2) options_.max_buffered_bytes = 2;
  max_chunks_ = std::max<size_t>(16, options_.max_buffered_bytes / kSpanBudget);
}

void DataStream::Add(uint64_t position, std::string_view captured, uint64_t total_len,
                     const ChunkTiming& timing) {
  if (captured.size() > total_len) captured = captured.substr(0, total_len);
  if (total_len == 0) return;
  if (position > std::numeric_limits<uint64_t>::max() - total_len) return;  // nonsense
  if (position + total_len <= end_) return;                                 // duplicate
  // No chunk may take more than half the cap: held chunks are bounded by the other half,
  // so in-order bytes + held bytes + a new chunk always fit after a drop.
  const size_t max_chunk = options_.max_buffered_bytes / 2;
  if (captured.size() > max_chunk) {
    counters_.bytes_dropped += captured.size() - max_chunk;
    captured = captured.substr(0, max_chunk);
  }
  if (position > end_) {
    auto [it, inserted] = held_.try_emplace(position);
    if (!inserted) return;  // a duplicate of a held chunk
    it->second.bytes.assign(captured);
    it->second.total_len = total_len;
    it->second.timing = timing;
    held_bytes_ += captured.size();
    buffered_ += captured.size();
    if (held_.size() > options_.max_held_chunks || held_bytes_ > max_chunk) FillGaps();
    return;
  }
  AppendInOrder(position, captured, total_len, timing);
  DrainHeld();
}

void DataStream::AppendInOrder(uint64_t position, std::string_view captured, uint64_t total_len,
                               const ChunkTiming& timing) {
  // Trim what overlaps bytes already known: the first copy wins.
  if (position < end_) {
    const uint64_t skip = end_ - position;
    captured = skip < captured.size() ? captured.substr(skip) : std::string_view();
    total_len -= skip;
    position = end_;
  }
  MakeRoom(captured.size());
  const uint64_t hole = total_len - captured.size();
  if (runs_.empty()) {
    runs_.push_back(Run{position, std::string(captured), hole});
  } else if (runs_.back().hole == 0) {
    runs_.back().bytes.append(captured);
    runs_.back().hole = hole;
  } else if (captured.empty()) {
    runs_.back().hole += hole;
  } else {
    runs_.push_back(Run{position, std::string(captured), hole});
  }
  buffered_ += captured.size();
  end_ += total_len;
  chunks_.push_back(Span{position, position + total_len, timing});
}

void DataStream::DrainHeld() {
  while (!held_.empty() && held_.begin()->first <= end_) {
    auto node = held_.extract(held_.begin());
    Held& h = node.mapped();
    held_bytes_ -= h.bytes.size();
    buffered_ -= h.bytes.size();
    if (node.key() + h.total_len > end_) AppendInOrder(node.key(), h.bytes, h.total_len, h.timing);
  }
  if (held_.empty()) gap_age_ = 0;
}

void DataStream::FillGaps() {
  while (!held_.empty()) {
    const auto& [pos, held] = *held_.begin();
    if (pos > end_) {
      // The missing range becomes a hole timed like the chunk after it.
      ++counters_.gaps;
      AppendInOrder(end_, {}, pos - end_, held.timing);
    }
    DrainHeld();
  }
}

void DataStream::AgeGaps() {
  if (held_.empty()) {
    gap_age_ = 0;
    return;
  }
  if (++gap_age_ >= 2) FillGaps();
}

std::string_view DataStream::Head() const {
  if (runs_.empty()) return {};
  const Run& r = runs_.front();
  const uint64_t off = position_ - r.pos;
  if (off >= r.bytes.size()) return {};
  return std::string_view(r.bytes).substr(off);
}

bool DataStream::HoleAfterHead() const {
  if (runs_.empty()) return false;
  const Run& r = runs_.front();
  return position_ - r.pos < r.bytes.size() && r.hole > 0;
}

uint64_t DataStream::HoleAtHead() const {
  if (runs_.empty()) return 0;
  const Run& r = runs_.front();
  const uint64_t captured_end = r.pos + r.bytes.size();
  if (position_ < captured_end) return 0;
  return captured_end + r.hole - position_;
}

void DataStream::Consume(uint64_t n) {
  n = std::min(n, end_ - position_);
  position_ += n;
  while (!runs_.empty()) {
    Run& r = runs_.front();
    if (r.pos + r.bytes.size() + r.hole > position_) break;
    buffered_ -= r.bytes.size();
    runs_.pop_front();
  }
  CompactFront();
  while (!chunks_.empty() && chunks_.front().end < position_) chunks_.pop_front();
}

void DataStream::CompactFront() {
  if (runs_.empty()) return;
  Run& r = runs_.front();
  const uint64_t off = position_ - r.pos;
  if (off >= r.bytes.size()) {
    // All captured bytes consumed; only (part of) the hole is left.
    buffered_ -= r.bytes.size();
    r.pos += r.bytes.size();
    if (r.bytes.capacity() > kKeepCapacity) {
      std::string().swap(r.bytes);
    } else {
      r.bytes.clear();
    }
  } else if (off >= kCompactMin && off * 2 >= r.bytes.size()) {
    r.bytes.erase(0, off);
    r.pos += off;
    buffered_ -= off;
  }
}

void DataStream::MakeRoom(size_t n) {
  const bool spans_ok = chunks_.size() < max_chunks_;
  if (spans_ok && buffered_ + n <= options_.max_buffered_bytes) return;
  CompactFront();
  if (spans_ok && buffered_ + n <= options_.max_buffered_bytes) return;
  // Whatever is stuck at the front (a frame that never completes, garbage with no frame
  // boundary) goes; the parser sees drop_count() change and resynchronises.
  counters_.bytes_dropped += DiscardKnown();
  ++drop_count_;
}

uint64_t DataStream::DiscardKnown() {
  uint64_t dropped = 0;
  if (!runs_.empty()) {
    const Run& front = runs_.front();
    const uint64_t off = position_ - front.pos;
    for (const Run& r : runs_) dropped += r.bytes.size();
    dropped -= std::min<uint64_t>(off, front.bytes.size());
  }
  Consume(end_ - position_);
  return dropped;
}

ChunkTiming DataStream::TimingAt(uint64_t pos, uint64_t* chunk_end) const {
  if (chunks_.empty()) {
    if (chunk_end) *chunk_end = ~uint64_t{0};
    return {};
  }
  const Span* at = nullptr;
  // Nearly always the oldest chunk or the next.
  if (pos < chunks_.front().end) {
    at = &chunks_.front();
  } else if (chunks_.size() > 1 && pos < chunks_[1].end) {
    at = &chunks_[1];
  } else {
    // The last chunk that begins at or before pos.
    auto it = std::upper_bound(chunks_.begin(), chunks_.end(), pos,
                               [](uint64_t p, const Span& s) { return p < s.begin; });
    at = it == chunks_.begin() ? &chunks_.front() : &*std::prev(it);
  }
  if (chunk_end) *chunk_end = std::max(at->end, pos + 1);
  return at->timing;
}

DataStream::Counters DataStream::TakeCounters() {
  return std::exchange(counters_, Counters{});
}

}  // namespace kspan::protocols
