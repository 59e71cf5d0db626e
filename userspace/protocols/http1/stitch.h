// Pairs parsed HTTP/1 requests with their responses, and the traits that plug the HTTP/1
// parser into the generic loop (protocols/common/event_parser.h).
#pragma once

#include <vector>

#include "common/fifo.h"
#include "protocols/common/event_parser.h"
#include "protocols/http1/parse.h"
#include "protocols/http1/types.h"
#include "protocols/record.h"

namespace kspan::protocols::http1 {

// Responses carry the sequence number of the request they answer (set by the response
// parser, see State), so pairing is a merge of two ordered queues:
//   - a final response for request N ends requests < N still waiting: response_missing;
//   - a 1xx is noted on its request, which keeps waiting for the final response;
//   - a response answering nothing we hold counts as an error (error_count);
//   - a response whose request is still arriving (its body, e.g. after 100 Continue) waits.
// Requests without a response stay in `requests`; past state->max_pending of them (not
// counting those whose answer has begun) the oldest are given up (response_missing).
// Records come out oldest first.
RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state);
// The same, appending the records to `records` as the correlator takes them (each built in
// place, envelope and body); returns the error count.
int StitchFramesInto(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state,
                     std::vector<protocols::Record>* records);

// Appends the record of a request given up, for `why`: no response will be paired with it.
void AppendUnanswered(std::vector<protocols::Record>* records, Frame* request, Unanswered why);

struct Protocol {
  using Frame = http1::Frame;
  using State = http1::State;
  using Record = http1::Record;

  static ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
    return http1::ParseFrame(type, buf, frame, state);
  }
  static size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state) {
    return http1::FindFrameBoundary(type, buf, start, state);
  }
  static RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses,
                                                    State* state) {
    return http1::StitchFrames(requests, responses, state);
  }
  static bool FrameComplete(const Frame& frame) { return http1::FrameComplete(frame); }
  static uint64_t OpaqueRemaining(const Frame& frame) { return http1::OpaqueRemaining(frame); }
  static void SkipHole(Frame* frame, uint64_t n) { http1::SkipHole(frame, n); }
  static void SetStart(Frame* frame, const ChunkTiming& t) {
    frame->msg.timing.start_ns = t.first_ns;
    frame->msg.timing.tid = t.tid;
    frame->msg.timing.turn = t.turn;
  }
  static void FinishFrame(MessageType type, Frame* frame, const ChunkTiming& last, State* state) {
    frame->msg.timing.end_ns = last.last_ns;
    frame->msg.timing.end_tid = last.tid;
    frame->msg.timing.end_turn = last.turn;
    http1::FinishFrame(type, frame, state);
  }
  static bool EndsStream(const Frame& frame) { return frame.ends_stream; }
  static void OnLoss(MessageType type, State* state) { http1::OnLoss(type, state); }
};

}  // namespace kspan::protocols::http1
