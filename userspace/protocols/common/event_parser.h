// The parser contract every protocol fills in, and the one generic loop that runs it over a
// DataStream: frames out, garbage resynchronised, holes crossed where a frame allows it.
//
// A protocol is a traits type P (see http1::Protocol for a complete one):
//
//   using Frame;   // one request or response as parsed; movable
//   using State;   // per-connection parser state; must have `ParseContext ctx`
//   using Record;  // a request stitched to its response
//
//   static ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state);
//     Parses the frame at the start of *buf. On kSuccess / kEndOfStream / kIgnored the bytes
//     used are removed from *buf; on kNeedsMoreData and kInvalid *buf, *frame and *state are
//     left as they were. A fresh frame is default-constructed; by default (ctx.partial_ok
//     false) kSuccess means the whole frame was in *buf. When ctx.partial_ok is set the
//     protocol may consume only part of a frame (its head, some payload) and return kSuccess
//     with FrameComplete() false; the loop then calls again with the same Frame and the
//     bytes that follow. Never kSuccess without consuming a byte unless the frame completes.
//     In that mode the outcome must not depend on where syscalls cut the bytes: everything
//     valid before a framing error is consumed, and the error is returned by the next call.
//   static size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State*);
//     The first position >= start where a frame could start (its start may be cut off by the
//     end of buf), or npos. May be stricter than ParseFrame (known methods only, say): after
//     garbage, frames start only where it says, and a cut-off candidate is checked again
//     when more bytes come. That check happens only while ParseFrame has taken none of the
//     candidate's bytes, so a candidate it cannot judge yet (too short) must be one
//     ParseFrame waits on too (kNeedsMoreData): judge each field as soon as its bytes are
//     there. Otherwise a syscall ending inside the candidate ends the resync on bytes that
//     the same check rejects when they come whole (mysql's 4-byte empty packet did).
//   static RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests,
//                                                     Fifo<Frame>* responses, State*);
//     Pairs what it can, removes what it used, leaves the rest for later.
//
//   Frames that outgrow the captured bytes:
//   static bool FrameComplete(const Frame&);
//   static uint64_t OpaqueRemaining(const Frame&);
//     Payload bytes the frame expects next that need not be parsed (a Content-Length body, a
//     chunk's data): the loop may skip them across a hole. ~0 means "until close".
//   static void SkipHole(Frame*, uint64_t n);     // n such bytes fell in a hole
//   static void SetStart(Frame*, const ChunkTiming& first_byte);
//   static void FinishFrame(MessageType, Frame*, const ChunkTiming& last_byte, State*);
//   static bool EndsStream(const Frame&);        // nothing after this frame is this protocol
//   static void OnLoss(MessageType, State*);     // frames may have been lost in this direction
//   Optional: static bool TruncateAtHole(MessageType, Frame*, State*);
//     A hole cut the partial frame's framing (not an opaque payload): true when the
//     protocol ends the frame there (what it parsed stands; it then skips the rest of the
//     frame itself, e.g. by time), instead of abandoning it (a parse failure and a gap).
//
// Threads: a StreamParser and its State belong to one connection, driven from one thread.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fifo.h"
#include "protocols/common/data_stream.h"
#include "protocols/common/parse_state.h"

namespace kspan::protocols {

enum class MessageType : uint8_t { kRequest, kResponse };

// What the loop tells ParseFrame about the bytes it hands over (State::ctx). A caller that
// drives ParseFrame directly (tests) keeps the default: whole frames only.
struct ParseContext {
  // A frame may be consumed in parts; see the contract above.
  bool partial_ok = false;
  // The stream closed and nothing follows *buf: a frame delimited by close ends here.
  bool end_of_stream = false;
  // Stream position and syscall timing of buf[0].
  uint64_t position = 0;
  ChunkTiming first;
  // The stream buf comes from, for the timing of later bytes (TimingAt); null when the
  // caller drives the parser directly.
  const DataStream* stream = nullptr;
};

template <typename TRecord>
struct RecordsWithErrorCount {
  std::vector<TRecord> records;
  int error_count = 0;  // frames that could not be paired (e.g. a response with no request)
};

// What the loop threw away, added up across calls.
struct ParseStats {
  uint64_t frames_invalid = 0;  // each resync: a frame that did not parse or was cut off
  uint64_t frames_cut = 0;      // a frame the stream's close cut short (the peer went away)
  uint64_t bytes_dropped = 0;   // captured bytes skipped (garbage, cap)
  uint64_t gaps = 0;            // holes that cut a head or framing; gaps given up as holes

  ParseStats& operator+=(const ParseStats& o) {
    frames_invalid += o.frames_invalid;
    frames_cut += o.frames_cut;
    bytes_dropped += o.bytes_dropped;
    gaps += o.gaps;
    return *this;
  }
};

template <typename P>
concept FrameProtocol = requires(MessageType type, std::string_view* buf, std::string_view view,
                                 typename P::Frame* frame, const typename P::Frame& cframe,
                                 typename P::State* state, uint64_t n, const ChunkTiming& timing,
                                 Fifo<typename P::Frame>* frames) {
  { P::ParseFrame(type, buf, frame, state) } -> std::same_as<ParseState>;
  { P::FindFrameBoundary(type, view, size_t{0}, state) } -> std::same_as<size_t>;
  { P::StitchFrames(frames, frames, state) } -> std::same_as<RecordsWithErrorCount<typename P::Record>>;
  { P::FrameComplete(cframe) } -> std::same_as<bool>;
  { P::OpaqueRemaining(cframe) } -> std::same_as<uint64_t>;
  P::SkipHole(frame, n);
  P::SetStart(frame, timing);
  P::FinishFrame(type, frame, timing, state);
  { P::EndsStream(cframe) } -> std::same_as<bool>;
  P::OnLoss(type, state);
  { state->ctx } -> std::convertible_to<ParseContext&>;
};

// One direction of a connection: its DataStream and the frame parsing over it.
//
//   stream position ─► Head() captured bytes ──ParseFrame──► frame (complete → out)
//                        │ kInvalid / cut by a hole            │ partial: kept; its opaque
//                        ▼                                     ▼ payload may skip holes
//                      FindFrameBoundary: skip, count;      hole outside a payload: skip,
//                      until a frame parses, frames start   OnLoss, resync (a hole cutting
//                      only where it finds one              a head or framing: count a gap)
template <FrameProtocol P>
class StreamParser {
 public:
  using Frame = typename P::Frame;
  using State = typename P::State;

  StreamParser(MessageType type, const DataStream::Options& options) : type_(type), stream_(options) {}

  DataStream& stream() { return stream_; }
  const DataStream& stream() const { return stream_; }

  // Parses what the stream holds; appends finished frames to `frames`, oldest first, and
  // adds what was thrown away to `stats`. `closed`: no more bytes will come. Stops at a
  // frame boundary once `max_frames` frames were appended (the rest stays buffered), and
  // then returns true when bytes are still waiting: a caller pairing two directions parses
  // one side in steps so the other keeps up (a busy connection's backlog of requests,
  // parsed whole before its responses, would outgrow the requests a protocol holds).
  bool Parse(State* state, Fifo<Frame>* frames, ParseStats* stats, bool closed, size_t max_frames = SIZE_MAX);

  // After a frame for which P::EndsStream() holds nothing more is parsed, until Resume()
  // (the peer declined an upgrade).
  bool ended() const { return ended_; }
  void Resume() { ended_ = false; }

  // A frame has been started and not finished.
  bool has_partial() const { return partial_.has_value(); }
  // Captured bytes are waiting at the read position (not inside a partial frame).
  bool waiting_at_frame_start() const { return !partial_ && !stream_.Head().empty(); }

  // Frees what is buffered (a partial frame with it) under memory pressure, as a loss:
  // parsing resumes at the next frame start found by resynchronising. Returns the captured
  // bytes dropped.
  uint64_t Evict(State* state) {
    partial_.reset();
    stream_.FillGaps();
    const uint64_t dropped = stream_.DiscardKnown();
    P::OnLoss(type_, state);
    resync_ = true;
    return dropped;
  }

  // Gives up the partial frame and everything buffered, held chunks too; returns the
  // captured bytes dropped.
  uint64_t Discard() {
    partial_.reset();
    stream_.FillGaps();
    stream_.TakeCounters();
    return stream_.DiscardKnown();
  }

 private:
  // A frame parsed whole where it stands: at the back of `frames`.
  void Finish(State* state, Frame* frame) {
    P::FinishFrame(type_, frame, stream_.TimingAt(stream_.position() - 1), state);
    if (P::EndsStream(*frame)) ended_ = true;
  }

  // The partial frame, finished: it joins `frames`.
  void FinishPartial(State* state, Fifo<Frame>* frames) {
    Finish(state, &*partial_);
    frames->emplace_back(std::move(*partial_));
    partial_.reset();
  }

  // The protocol may end the partial frame where a hole cut its framing (P::TruncateAtHole).
  bool TruncateAtHole(State* state) {
    if constexpr (requires { P::TruncateAtHole(type_, &*partial_, state); }) {
      return P::TruncateAtHole(type_, &*partial_, state);
    } else {
      (void)state;
      return false;
    }
  }

  void Abandon(State* state, ParseStats* stats) {
    partial_.reset();
    ++stats->frames_invalid;
    P::OnLoss(type_, state);
  }

  MessageType type_;
  DataStream stream_;
  std::optional<Frame> partial_;
  uint64_t drops_seen_ = 0;
  bool resync_ = false;  // the read position is not known to be a frame start
  bool ended_ = false;
};

template <FrameProtocol P>
bool StreamParser<P>::Parse(State* state, Fifo<Frame>* frames, ParseStats* stats, bool closed,
                            size_t max_frames) {
  const size_t frames_before = frames->size();
  const DataStream::Counters counters = stream_.TakeCounters();
  stats->bytes_dropped += counters.bytes_dropped;
  stats->gaps += counters.gaps;
  if (stream_.drop_count() != drops_seen_) {
    // The cap threw bytes away under a frame: it cannot be finished.
    drops_seen_ = stream_.drop_count();
    if (partial_) {
      Abandon(state, stats);
    } else {
      P::OnLoss(type_, state);
    }
    resync_ = true;
  }
  ParseContext& ctx = state->ctx;
  while (!ended_) {
    const uint64_t pos = stream_.position();
    if (!partial_ && frames->size() - frames_before >= max_frames) return pos != stream_.end();
    if (pos == stream_.end()) {
      if (closed && partial_) {
        // The close ends the frame: complete if delimited by close, cut short otherwise.
        ctx = ParseContext{
            .partial_ok = true, .end_of_stream = true, .position = pos, .first = {}, .stream = &stream_};
        std::string_view none;
        const ParseState s = P::ParseFrame(type_, &none, &*partial_, state);
        if ((s == ParseState::kSuccess || s == ParseState::kEndOfStream) && P::FrameComplete(*partial_)) {
          FinishPartial(state, frames);
        } else {
          // Cut short by the close (a client gone mid-response, say): not garbage, and
          // counted apart from parse failures. Its answer, if any, was not seen whole.
          partial_.reset();
          ++stats->frames_cut;
          P::OnLoss(type_, state);
        }
      }
      return false;
    }

    const std::string_view head = stream_.Head();
    if (head.empty()) {
      // A hole at the read position.
      const uint64_t hole = stream_.HoleAtHead();
      if (partial_) {
        const uint64_t want = P::OpaqueRemaining(*partial_);
        if (want > 0) {
          const uint64_t n = std::min(hole, want);
          P::SkipHole(&*partial_, n);
          stream_.Consume(n);
          if (P::FrameComplete(*partial_)) FinishPartial(state, frames);
          continue;
        }
        // The hole swallowed framing (a chunk-size line): the frame's end is unknowable.
        if (TruncateAtHole(state)) {
          FinishPartial(state, frames);
        } else {
          Abandon(state, stats);
          ++stats->gaps;
        }
      }
      // Whole frames may have been in the hole. The next captured byte starts a syscall,
      // the likeliest place for a frame to start; FindFrameBoundary decides.
      P::OnLoss(type_, state);
      stream_.Consume(hole);
      resync_ = true;
      continue;
    }

    if (resync_ && !partial_) {
      // Looking for a frame start: only where FindFrameBoundary sees one, whatever the
      // syscall cuts. A candidate cut off by the end of the bytes is checked again when
      // more arrive; resync ends when a frame parses.
      const size_t at = P::FindFrameBoundary(type_, head, 0, state);
      if (at != 0) {
        const size_t skip = at > head.size() ? head.size() : at;
        stats->bytes_dropped += skip;
        stream_.Consume(skip);
        continue;
      }
    }

    const bool hole_follows = stream_.HoleAfterHead();
    ctx = ParseContext{.partial_ok = true,
                       .end_of_stream = closed && !hole_follows && pos + head.size() == stream_.end(),
                       .position = pos,
                       .first = stream_.TimingAt(pos),
                       .stream = &stream_};
    // A new frame is parsed where it would be queued (no move when it completes at once),
    // and taken back off when it does not start here.
    const bool fresh = !partial_;
    Frame* frame = fresh ? &frames->emplace_back() : &*partial_;
    std::string_view buf = head;
    const ParseState s = P::ParseFrame(type_, &buf, frame, state);
    const size_t consumed = head.size() - buf.size();
    if (fresh && s != ParseState::kSuccess && s != ParseState::kEndOfStream) frames->pop_back();
    switch (s) {
      case ParseState::kSuccess:
      case ParseState::kEndOfStream:
        if (fresh) P::SetStart(frame, ctx.first);
        resync_ = false;
        stream_.Consume(consumed);
        if (P::FrameComplete(*frame)) {
          if (fresh) {
            Finish(state, frame);
          } else {
            FinishPartial(state, frames);
          }
        } else {
          if (fresh) {
            partial_.emplace(std::move(*frame));
            frames->pop_back();
          }
          if (consumed == 0) return false;  // no progress: wait for bytes
        }
        continue;
      case ParseState::kIgnored:
        if (consumed == 0) return false;
        stream_.Consume(consumed);
        continue;
      case ParseState::kNeedsMoreData:
        if (!hole_follows) return false;
        // The head or framing runs into a hole: it can never complete.
        if (partial_ && TruncateAtHole(state)) {
          FinishPartial(state, frames);
          P::OnLoss(type_, state);
          resync_ = true;  // what is left before the hole: the protocol's resync decides
          continue;
        }
        ++stats->gaps;
        [[fallthrough]];
      case ParseState::kInvalid: {
        // A cut-off frame's next byte has not been tried as a frame start yet; garbage's has.
        const size_t from = partial_ ? 0 : 1;
        if (partial_) {
          Abandon(state, stats);
        } else {
          ++stats->frames_invalid;
          P::OnLoss(type_, state);
        }
        size_t skip = P::FindFrameBoundary(type_, head, from, state);
        if (skip == std::string_view::npos || skip > head.size()) skip = head.size();
        stats->bytes_dropped += skip;
        stream_.Consume(skip);
        resync_ = true;  // the candidate found (if any) may yet prove false with more bytes
        continue;
      }
    }
  }
  return false;
}

}  // namespace kspan::protocols
