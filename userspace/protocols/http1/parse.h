// HTTP/1.x frame parser (RFC 9112 message syntax, RFC 9110 semantics): one request or
// response at a time, from a view of captured bytes. See README.md for what is supported.
//
// A frame's parse moves through these phases; every arrow is a point where, with
// ctx.partial_ok, the parser may stop and resume later with more bytes (or across a hole,
// in the phases marked opaque):
//
//   kHead ─┬─ no body ──────────────────────────────────────────────────────────► kDone
//          ├─ Content-Length ─► kFixedBody (opaque) ────────────────────────────► kDone
//          ├─ chunked ─► kChunkSize ─► kChunkData (opaque) ─► kChunkDataEnd (opaque: CRLF) ─┐
//          │               ▲  └─ size 0 ─► kTrailers ─► kDone                               │
//          │               └────────────────────────────────────────────────────────────────┘
//          └─ response, no length ─► kUntilClose (opaque, ends at close) ─────────► kDone
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/fifo.h"
#include "protocols/common/event_parser.h"
#include "protocols/common/parse_state.h"
#include "protocols/http1/types.h"

namespace kspan::protocols::http1 {

// Bounds on what a peer can make us hold. Past them a message is kInvalid. Common servers
// cap a head at 8–80 KiB (nginx 8 KiB lines × 4, Node 16 KiB total, Apache 8 KiB lines ×
// 100 fields); 64 KiB and 128 fields accept all of those and cost at most 64 KiB of bytes
// buffered while a head is incomplete.
inline constexpr size_t kMaxHeadBytes = 64 * 1024;
inline constexpr size_t kMaxLineBytes = 16 * 1024;
inline constexpr size_t kMaxHeaders = 128;
inline constexpr size_t kMaxMethodBytes = 20;
// Content-Length and chunk sizes above 2^50 (1 PiB) are not a real message.
inline constexpr uint64_t kMaxBodyBytes = uint64_t{1} << 50;
// A chunk-size line with its extensions.
inline constexpr size_t kMaxChunkLineBytes = 4096;

enum class Phase : uint8_t {
  kHead,
  kFixedBody,
  kChunkSize,
  kChunkData,
  kChunkDataEnd,
  kTrailers,
  kUntilClose,
  kDone,
};

// One message and where its parse stands.
struct Frame {
  Message msg;
  Phase phase = Phase::kHead;
  // kFixedBody / kChunkData: payload bytes still to come; kChunkDataEnd: bytes of the CRLF.
  uint64_t remaining = 0;
  // Requests: 1, 2, … in parse order. Responses: the request answered, 0 if none known.
  uint64_t seq = 0;
  // Responses: requests with seq <= this that have no response yet never will (their
  // responses were lost); 0 if none.
  uint64_t drop_through = 0;
  // Trailer fields seen so far (bounded like a head).
  uint32_t trailer_count = 0;
  uint32_t trailer_bytes = 0;
  // Nothing after this message is HTTP/1: 101, a 2xx to CONNECT; for a request, an
  // Upgrade or CONNECT, tentatively, until its response says; a message with invalid
  // framing (for good: State::*_framing_lost).
  bool ends_stream = false;
  // Requests: statuses of 1xx responses to it (filled by the stitcher).
  std::vector<int> informational;
};

enum class MethodKind : uint8_t { kOther, kHead, kConnect };

// A request whose response has not been parsed yet.
struct PendingRequest {
  uint64_t seq = 0;
  uint64_t start_ns = 0;
  MethodKind method = MethodKind::kOther;
  bool after_loss = false;  // request frames were lost just before this one
  bool wide_body = false;   // Message::wide_body of the request
};

// Keeps what a parser may keep of a message's decoded body (Message::body_prefix and, for
// wide bodies, body_tail and body_marks). Shared by the HTTP/1 body decoder and HTTP/2 DATA
// frames.
struct BodySink {
  Message* msg = nullptr;
  size_t max_prefix = 0;
  size_t max_tail = 0;
  // Wide bodies: the stream the input comes from (for timing; may be null) and the
  // stream position of the input's first byte.
  const DataStream* stream = nullptr;
  uint64_t in_position = 0;
};

// Adds the decoded bytes at body offset `offset`, which start at stream position
// `position`, to what the sink keeps. body_tail may grow to twice max_tail between calls:
// TrimBodyTail cuts it to max_tail when the message is done.
void KeepBody(const BodySink& k, std::string_view bytes, uint64_t offset, uint64_t position);
void TrimBodyTail(Message* m, size_t max_tail);

// Parser state of one connection (both directions). The response parser needs the method
// of the request it answers (HEAD and CONNECT change where a response ends), so parsed
// requests queue up in `pending` and each final response takes one.
//
// Pairing is FIFO. Where frames were lost (a resync), order alone cannot say which request a
// response answers; the syscall times can: a response cannot start before its request did,
// and without pipelining request N+1 starts only after response N. When that cannot decide
// (pipelining was seen), requests are given up rather than guessed.
struct State {
  ParseContext ctx;
  size_t max_body_prefix = 4096;
  // Wide bodies (Message::wide_body; see http1::Limits).
  bool (*wide_body_request)(const Message& head) = nullptr;
  size_t max_wide_body_prefix = 1 << 20;
  size_t max_wide_body_tail = 64 << 10;
  size_t max_pending = 1024;
  // A response starting at a stream position below this with no request waiting is parsed
  // as answering none; above it, it waits (its request may still be on the way).
  uint64_t unmatched_ok_below = ~uint64_t{0};
  // Requests are buffered but not parsed yet (the caller parses them in steps): a response
  // with no request waiting waits for them, wherever it starts.
  bool requests_held_back = false;

  // Request side.
  uint64_t next_seq = 1;
  uint64_t open_request_seq = 0;  // a request whose head is parsed but not its body
  bool request_loss = false;
  Fifo<PendingRequest> pending;

  // A message with invalid framing (Message::framing_invalid) ended the direction: what
  // follows it is not parsed (it would be parsed as a body of unknown length otherwise,
  // and a request line inside that body reported as a request).
  bool request_framing_lost = false;
  bool response_framing_lost = false;

  // Response side.
  bool response_loss = false;
  bool pipelined = false;
  uint64_t last_final_seq = 0;  // the highest request a final response answered or gave up
};

// The parser contract (protocols/common/event_parser.h). A response ending at close needs
// ctx.end_of_stream.
ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state);
size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state);

// Frames that outgrow the captured bytes (see event_parser.h).
bool FrameComplete(const Frame& frame);
uint64_t OpaqueRemaining(const Frame& frame);
void SkipHole(Frame* frame, uint64_t n);
void FinishFrame(MessageType type, Frame* frame, State* state);
void OnLoss(MessageType type, State* state);

}  // namespace kspan::protocols::http1
