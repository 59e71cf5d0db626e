// Memcached text protocol framing (memcached doc/protocol.txt): command lines with their
// data blocks in the request direction, answers in the response direction, and the pairing
// of the two. See README.md for what is supported.
//
// A frame is parsed in steps; with ctx.partial_ok the loop may stop after any of them and
// resume with more bytes, and data blocks are opaque (they may cross a hole):
//
//   request:  kLine ─┬─ storage command ─► kData (opaque: <bytes> + CRLF) ─► done
//                    └─ any other command ─────────────────────────────────► done
//   response: kLine ─┬─ VALUE ─► kData ─► kList ─┬─ VALUE ─► kData ─► kList ...
//                    │                           └─ END / error ─► done
//                    ├─ STAT / ITEM / PREFIX ─► kList (lines until END) ─► done
//                    └─ any other answer line ────────────────────────────► done
//   (an answer's kData is opaque together with a presumed END after it: see SkipHole)
//
// Answers are self-delimiting (the first line says whether a list follows), so a response
// parses without knowing its command; pairing (StitchFrames) checks the two fit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/fifo.h"
#include "protocols/common/event_parser.h"
#include "protocols/common/parse_state.h"
#include "protocols/memcache/types.h"

namespace kspan::protocols::memcache {

// Bounds. memcached keeps a key to 250 bytes and a command line to 2048 bytes except for
// multi-key gets, which it reads in pieces: 64 KiB holds a get of 250 maximal keys and is
// what a connection may buffer while a line is incomplete. An answer line is a status, a
// VALUE header (key + three numbers: < 330 bytes), a STAT line or an error message:
// 8 KiB is ample. A data block is at most memcached's item size limit (-I, at most 1 GiB);
// larger is not memcached. Blocks are skipped, never buffered whole.
inline constexpr size_t kMaxRequestLine = 64 * 1024;
inline constexpr size_t kMaxResponseLine = 8 * 1024;
inline constexpr size_t kMaxKeyBytes = 250;
inline constexpr uint64_t kMaxValueBytes = uint64_t{1} << 30;

enum class Phase : uint8_t {
  kLine,  // the first line
  kData,  // inside a data block and its CRLF (`remaining` bytes left)
  kList,  // response: between items of a list, before END
  kDone,
};

// One command or one answer and where its parse stands.
struct Frame {
  Phase phase = Phase::kLine;
  bool is_response = false;
  uint64_t remaining = 0;  // kData: bytes left, the closing CRLF included
  // Requests.
  Command command = Command::kGet;
  uint32_t keys = 0;
  bool noreply = false;
  // Responses.
  Result result = Result::kNone;
  uint32_t values = 0;
  uint64_t number = 0;
  std::string message;
  // Both: the data block bytes (request: <bytes>; response: sum over VALUE items).
  uint64_t value_bytes = 0;
  uint64_t seq = 0;         // requests: 1, 2, … in parse order
  bool after_loss = false;  // frames of this direction were lost just before this one
  Timing timing;

  // The command expects an answer on the wire.
  bool ExpectsAnswer() const { return !noreply && command != Command::kQuit; }
};

// Parser state of one connection (both directions).
struct State {
  ParseContext ctx;
  uint64_t next_seq = 1;
  bool request_loss = false;   // set by OnLoss, taken by the next request frame
  bool response_loss = false;  // the same for responses
  // Resynchronising, FindFrameBoundary skipped bytes that ended inside a line: the next
  // byte is no line start (per direction; a loss resets it: after a hole the next byte
  // starts a syscall, a likely frame start).
  bool request_mid_line = false;
  bool response_mid_line = false;
  // Pairing (StitchFrames).
  bool pipelined = false;    // the client sent a command before the previous answer came
  bool stitch_loss = false;  // a request was given up: place the next answer by time
  // Set by the driver: requests wait unparsed, past max_pending (in_order_stitch.h).
  bool requests_held_back = false;
  // Answered commands waiting for their answer, and answers waiting for their command,
  // before the oldest is given up: 1024 small frames (no payload is kept).
  size_t max_pending = 1024;
};

// The parser contract (protocols/common/event_parser.h).
ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state);
size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state);
bool FrameComplete(const Frame& frame);
uint64_t OpaqueRemaining(const Frame& frame);
void SkipHole(Frame* frame, uint64_t n);
void FinishFrame(MessageType type, Frame* frame, State* state);
void OnLoss(MessageType type, State* state);

// Pairs commands with answers, in order (memcached answers a connection's commands in the
// order it got them):
//   - a command that expects no answer (noreply, quit) becomes a record when it reaches
//     the front, without one;
//   - an answer that began before the oldest waiting command did answers a command kspan
//     did not see: dropped (error_count);
//   - after answers were lost, an answer pairs with the latest command that started
//     before it (without pipelining each command waits for the previous answer); the
//     commands before it are given up (response_missing). With pipelining seen, that is
//     undecidable: those commands are given up and the answer dropped;
//   - an answer whose kind does not fit the command (STORED to a get) is dropped;
//   - answers with no command waiting wait for it (its bytes may still be on their way),
//     up to max_pending.
// Records come out oldest first; `requests` keeps the commands still waiting.
RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state);

// A command given up, or one that expects no answer: its record without an answer.
Record RecordWithoutAnswer(Frame* request);

// Whether an answer of kind `r` can answer `c` (errors answer anything).
bool Fits(Command c, Result r);

// Detection on the first bytes of a request stream: a known command word followed by a
// space or CRLF; when the first line is complete it must parse. kNeedMoreData: the bytes
// are a strict prefix of such a start.
enum class Start : uint8_t { kYes, kNo, kMaybe };
Start LooksLikeRequest(std::string_view prefix);

struct Protocol {
  using Frame = memcache::Frame;
  using State = memcache::State;
  using Record = memcache::Record;

  static ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
    return memcache::ParseFrame(type, buf, frame, state);
  }
  static size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state) {
    return memcache::FindFrameBoundary(type, buf, start, state);
  }
  static RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses,
                                                    State* state) {
    return memcache::StitchFrames(requests, responses, state);
  }
  static bool FrameComplete(const Frame& frame) { return memcache::FrameComplete(frame); }
  static uint64_t OpaqueRemaining(const Frame& frame) { return memcache::OpaqueRemaining(frame); }
  static void SkipHole(Frame* frame, uint64_t n) { memcache::SkipHole(frame, n); }
  static void SetStart(Frame* frame, const ChunkTiming& t) {
    frame->timing.start_ns = t.first_ns;
    frame->timing.tid = t.tid;
    frame->timing.turn = t.turn;
  }
  static void FinishFrame(MessageType type, Frame* frame, const ChunkTiming& last, State* state) {
    frame->timing.ExtendTo(last.last_ns, last.tid, last.turn);
    memcache::FinishFrame(type, frame, state);
  }
  // After quit the client sends nothing more (the server closes).
  static bool EndsStream(const Frame& frame) { return frame.command == Command::kQuit && frame.seq != 0; }
  static void OnLoss(MessageType type, State* state) { memcache::OnLoss(type, state); }
};

}  // namespace kspan::protocols::memcache
