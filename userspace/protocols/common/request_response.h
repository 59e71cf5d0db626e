// The two-stream driver a request/response protocol over one TCP connection needs, written
// once: the request and response byte streams, a StreamParser over each, the announcement
// of each request seen whole, the pairing (the protocol's StitchFrames), the bound on what
// waits to be paired, and the end of the connection (what never completes, and why).
//
//   AddData ─► requests_  ─Parse (at most `room` frames)─► request_frames_ ─┐ Announce ─► started_
//          └─► responses_ ─Parse──────────────────────────► response_frames_ ┴ Stitch  ─► ready_
//   Drain: parse, stitch, hand out started_ and ready_ (as protocols::Record) and the counts
//   Close + Drain: the last parse, then what is left: answers without a request are counted,
//   requests without an answer leave as records with the close's reason
//
// A protocol P is the StreamParser traits (event_parser.h) plus:
//
//   static void Announce(const Frame& request, RequestStart* out);
//     Fills what the correlator sees of a request before its answer (seq, timing, context).
//   static Record RecordWithoutAnswer(Frame* request);
//     The record of a request given up (or one that expects no answer: response_missing
//     false then).
//   static void ToRecord(Record&& record, protocols::Record* out);
//     The protocol-neutral envelope (seq, timing, response_missing, unanswered) and body.
//   Frame::seq (1, 2, … per request), Record::response_missing, Record::unanswered,
//   State::response_loss (answer bytes were lost since the last answer), State::max_pending
//   (requests that may wait for an answer before the oldest is given up),
//   State::requests_held_back (set here before each pairing: requests wait unparsed, past the
//   bound).
//
// The requests of a busy connection are parsed at most as many at a time as can wait for an
// answer, then its answers likewise: a pipelining client can send thousands of requests
// between two drains, and parsing a whole side first would push the oldest out of the
// pending bound and leave the other side's frames unmatched. When the pairing frees no room
// (the answers are not captured yet, or the server is not answering), the rest waits
// buffered; only at the connection's end or near a stream's buffer cap do further frames
// push the oldest out (counted). HTTP/1 has its own
// driver (http1/connection.cc) because an upgrade pauses its request stream and framing errors stop it; the
// rest is this one.
//
// Threads: one connection, driven from the pipeline thread only (ProtocolConnection).
#pragma once

#include <concepts>
#include <cstdint>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include "common/fifo.h"
#include "protocols/common/data_stream.h"
#include "protocols/common/event_parser.h"
#include "protocols/registry.h"

namespace kspan::protocols {

template <typename P>
concept RequestResponseProtocol = FrameProtocol<P> &&
    requires(typename P::Frame* frame, const typename P::Frame& cframe, typename P::Record record,
             const typename P::State& state, RequestStart* start, protocols::Record* out) {
  P::Announce(cframe, start);
  { P::RecordWithoutAnswer(frame) } -> std::same_as<typename P::Record>;
  P::ToRecord(std::move(record), out);
  { cframe.seq } -> std::convertible_to<uint64_t>;
  { record.response_missing } -> std::convertible_to<bool>;
  { record.unanswered } -> std::convertible_to<Unanswered>;
  { state.response_loss } -> std::convertible_to<bool>;
  { state.max_pending } -> std::convertible_to<size_t>;
  { state.requests_held_back } -> std::convertible_to<bool>;
};

template <RequestResponseProtocol P>
class RequestResponseConnection final : public ProtocolConnection {
 public:
  using Frame = typename P::Frame;
  using State = typename P::State;
  using Record = typename P::Record;

  // `client`: this process sends the requests. `state`: the parser's initial state (its
  // bounds set).
  RequestResponseConnection(bool client, const DataStream::Options& options, State state = {})
      : egress_is_request_(client),
        state_(std::move(state)),
        requests_(MessageType::kRequest, options),
        responses_(MessageType::kResponse, options) {}

  void AddData(const Chunk& c) override {
    // Bytes may still come after Close() (events from another CPU): taken until the
    // drain that finalises the connection.
    if (finalized_) return;
    StreamParser<P>& parser = c.egress == egress_is_request_ ? requests_ : responses_;
    parser.stream().Add(c.position, c.data, c.total_len, ChunkTiming{c.first_ns, c.last_ns, c.tid, c.turn});
    // Parse early rather than let a busy connection hit the buffer cap between drains.
    if (parser.stream().under_pressure()) Run(false);
  }

  HeldData Held() const override { return HeldBy(requests_.stream(), responses_.stream()); }
  uint64_t DropHeld() override {
    if (finalized_) return 0;
    return requests_.Evict(&state_) + responses_.Evict(&state_);
  }

  void Close(Unanswered waiting) override {
    closed_ = true;
    close_reason_ = waiting;
  }

  void Drain(std::vector<RequestStart>* started, std::vector<protocols::Record>* records,
             ConnectionStats* stats) override {
    if (!finalized_) {
      if (closed_) {
        requests_.stream().FillGaps();
        responses_.stream().FillGaps();
      } else {
        requests_.stream().AgeGaps();
        responses_.stream().AgeGaps();
      }
      Run(closed_);
      if (closed_) Finalize();
    }
    started->insert(started->end(), std::make_move_iterator(started_.begin()),
                    std::make_move_iterator(started_.end()));
    started_.clear();
    for (Record& r : ready_) P::ToRecord(std::move(r), &records->emplace_back());
    ready_.clear();
    *stats += std::exchange(stats_, {});
  }

  // For tests: the parser state (read only).
  const State& state() const { return state_; }

 private:
  // Requests first (answers pair with them), then answers, each at most as many as may
  // wait; then the pairing; again while the pairing made room for frames held back.
  void Run(bool closed) {
    // Each round after the first follows a round in which frames were paired (both
    // streams only move forward), or lifts the bound once; so the loop ends.
    bool unbounded = false;
    for (;;) {
      ParseStats ps;
      auto room = [&](size_t waiting) {
        const size_t max = state_.max_pending;
        return unbounded ? SIZE_MAX : (waiting >= max ? 0 : max - waiting);
      };
      const bool requests_held =
          requests_.Parse(&state_, &request_frames_, &ps, closed, room(request_frames_.size()));
      Announce();
      const bool responses_held =
          responses_.Parse(&state_, &response_frames_, &ps, closed, room(response_frames_.size()));
      stats_.frames_invalid += ps.frames_invalid;
      stats_.frames_cut += ps.frames_cut;
      stats_.bytes_dropped += ps.bytes_dropped;
      stats_.gaps += ps.gaps;
      // A protocol that keeps prefixes of messages (State::frames_truncated) counts them.
      if constexpr (requires { state_.frames_truncated; }) {
        stats_.frames_truncated += std::exchange(state_.frames_truncated, 0);
      }
      // A pairing that decides by times over every waiting request (in_order_stitch.h)
      // waits while more are held back.
      state_.requests_held_back = requests_held;
      const size_t requests_waiting = request_frames_.size();
      const size_t responses_waiting = response_frames_.size();
      Stitch();
      if (!requests_held && !responses_held) return;
      if (request_frames_.size() < requests_waiting || response_frames_.size() < responses_waiting) {
        continue;  // the pairing made room
      }
      if (unbounded) return;
      // Nothing pairs: the frames held back stay buffered, unparsed, until their answers
      // (or requests) come; giving the oldest up now would make the pairing depend on where
      // the drains fell. Only the end of the connection, or a stream nearing its buffer cap
      // (a client that pipelines without reading), lets the oldest give way (counted).
      if (!closed && !requests_.stream().under_pressure() && !responses_.stream().under_pressure()) return;
      unbounded = true;
    }
  }

  // Requests parsed since the last call, before the pairing can take them.
  void Announce() {
    auto it = request_frames_.end();
    while (it != request_frames_.begin() && std::prev(it)->seq > announced_seq_) --it;
    for (; it != request_frames_.end(); ++it) {
      P::Announce(*it, &started_.emplace_back());
      announced_seq_ = it->seq;
    }
  }

  void Stitch() {
    RecordsWithErrorCount<Record> r = P::StitchFrames(&request_frames_, &response_frames_, &state_);
    stats_.responses_unmatched += static_cast<uint64_t>(r.error_count);
    for (Record& rec : r.records) {
      if (rec.response_missing) ++stats_.requests_unanswered[rec.unanswered];
      ready_.push_back(std::move(rec));
    }
  }

  // After the last parse of a closed connection: what is left never completes.
  void Finalize() {
    const uint64_t response_bytes_cut = responses_.Discard();
    stats_.bytes_dropped += requests_.Discard() + response_bytes_cut;
    stats_.responses_unmatched_at_close += response_frames_.size();
    response_frames_.clear();
    state_.requests_held_back = false;
    Stitch();  // requests without an answer to wait for leave in order
    // Answer bytes lost or cut off since the last answer may have been the answers.
    const Unanswered why =
        state_.response_loss || response_bytes_cut > 0 ? Unanswered::kNotCaptured : close_reason_;
    for (Frame& f : request_frames_) {
      Record rec = P::RecordWithoutAnswer(&f);
      rec.unanswered = why;
      if (rec.response_missing) ++stats_.requests_unanswered[why];
      ready_.push_back(std::move(rec));
    }
    request_frames_.clear();
    finalized_ = true;
  }

  const bool egress_is_request_;
  State state_;
  StreamParser<P> requests_;
  StreamParser<P> responses_;
  Fifo<Frame> request_frames_;
  Fifo<Frame> response_frames_;
  std::vector<Record> ready_;
  std::vector<RequestStart> started_;
  uint64_t announced_seq_ = 0;
  ConnectionStats stats_;
  bool closed_ = false;
  Unanswered close_reason_ = Unanswered::kNoResponse;
  bool finalized_ = false;
};

// What most protocols on this driver share, so their registration is a few lines:

// The announcement of a request: its seq and timing (a protocol with trace context in its
// requests says more).
template <typename Frame>
void AnnounceSeqAndTiming(const Frame& request, RequestStart* out) {
  out->seq = request.seq;
  out->timing = request.timing;
}

// The protocol-neutral envelope of a record, the record itself its body.
template <typename Record>
void ToEnvelope(Record&& record, protocols::Record* out) {
  out->seq = record.seq;
  out->request = record.request;
  out->response = record.response;
  out->response_missing = record.response_missing;
  out->unanswered = record.unanswered;
  out->body = std::forward<Record>(record);
}

// A protocol's three-way look at a connection's first request bytes (an enum with kYes,
// kMaybe and kNo) as the registry's Detection.
template <typename Start>
Detection DetectionOf(Start start) {
  switch (start) {
    case Start::kYes: return Detection::kMatch;
    case Start::kMaybe: return Detection::kNeedMoreData;
    case Start::kNo: break;
  }
  return Detection::kNoMatch;
}

// ProtocolSpec::make for a protocol on this driver.
template <RequestResponseProtocol P>
std::unique_ptr<ProtocolConnection> MakeRequestResponseConnection(bool client, const ProtocolOptions&) {
  return std::make_unique<RequestResponseConnection<P>>(client, DataStream::Options{});
}

}  // namespace kspan::protocols
