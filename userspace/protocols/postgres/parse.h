// PostgreSQL frontend/backend protocol 3.0 framing (PostgreSQL docs, "Frontend/Backend
// Protocol", "Message Formats"): the client's units of work in the request direction, the
// server's answers (messages up to ReadyForQuery) in the response direction, and their
// pairing. See README.md for what is supported.
//
// Every message but the first ones of a connection is type byte + Int32 length (counting
// itself) + body; StartupMessage, SSLRequest, GSSENCRequest and CancelRequest have no type
// byte (their first byte is 0: lengths stay under 10000). A frame is parsed one message at
// a time; of each message only a bounded prefix is read (names, a query's text, error
// fields, a command tag) and the rest is skipped as opaque bytes (it may cross a hole):
//
//   request unit:  startup | Q | F | p | X                    (one message)
//                  P/B/D/E/C/H ... S                          (extended: up to Sync)
//                  d ... c|f                                  (COPY FROM STDIN data)
//   answer:        messages ... Z (ReadyForQuery)             (also: end of stream)
//                  one byte S/N/G                             (to an SSLRequest)
//                  A, N, S alone while idle                   (asynchronous: no answer)
//
// COPY data crosses capture holes. A client or server streaming COPY data writes whole
// buffers (libpq's 8 KiB, the backend's 8 KiB) cut anywhere, so past --capture-bytes a
// hole swallows message headers. A frame in COPY mode (a request unit of CopyData, an
// answer after CopyIn/CopyOutResponse) takes holes as opaque (OpaqueRemaining: unknown)
// and, at the first byte after one (a syscall's start), decides:
//
//   request (COPY data unit)               answer (after G/H/W)
//   d, c, f header      -> go on            d, c header, C "COPY …"   -> go on
//   another message     -> the unit ended   another answer's message  -> the answer ended
//                          in the hole                                   in the hole (its
//                                                                        end marked a loss)
//   anything else       -> search: skip to the next d/c/f (answer: d/c/C COPY/E/Z) header
//
// Text-format COPY data holds no NUL byte, so a type byte followed by a length whose high
// bytes are zero is a header; binary COPY data may fake one (README, "Not supported").
//
// Other answers cross holes too (a SELECT answer larger than the capture): a hole inside a
// message whose length was read is skipped by that length (framing kept). A hole that runs
// past it (or cuts a header) loses the answer's framing: DataRow bodies can hold anything a
// header holds, so no byte after the hole is taken for a header. The answer is `lost`: its
// DataRows are no longer counted and its bytes are skipped, syscall by syscall, until
//
//   a syscall (whole, no hole after it) ends in CommandComplete / EmptyQueryResponse /
//   ErrorResponse + ReadyForQuery, each checked back from the end (the backend flushes at
//   ReadyForQuery, so an answer's last syscall ends with it; text DataRows hold no NUL
//   inside a value, so they cannot end in a NUL-terminated printable command tag followed
//   by 'Z' 0 0 0 5 status)                                  -> the answer ends there;
//   a syscall after a hole starts with a whole, well-formed answer-start message and a
//   request went out since this answer's last syscall        -> the answer ended in the
//                                                               hole (end_lost).
//
// The end found is trusted (its row count and SQLSTATE kept; a SELECT's rows are then its
// CommandComplete count) only when it cannot be a later answer's: the client does not
// pipeline, exactly one request went out between the previous answer's start and this one's,
// and none while this one ran (State::request_times). Otherwise the answer has no rows and
// no status (absent, never wrong) and the next answer pairs by time, as after a loss.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/fifo.h"
#include "protocols/common/event_parser.h"
#include "protocols/common/parse_state.h"
#include "protocols/postgres/types.h"

namespace kspan::protocols::postgres {

// Bounds. A startup packet is at most 10000 bytes (the server's MAX_STARTUP_PACKET_LENGTH).
// A message is at most 1 GiB (the server's MaxAllocSize); bodies are skipped, not buffered.
// Of a query's text the first 64 KiB are read (then sanitised; longer text ends in "..."):
// a query cut by the capture is cut by a hole, and that message's frame is lost (counted),
// as an HTTP head longer than the capture is. Of other messages at most 512 bytes are read.
inline constexpr size_t kMaxStartup = 10000;
inline constexpr uint64_t kMaxMessage = uint64_t{1} << 30;
inline constexpr size_t kMaxQueryRead = 64 * 1024;
inline constexpr size_t kMaxPrefixRead = 512;
// Prepared statements and portals remembered per connection (a server keeps them until
// DEALLOCATE or the end of the session; an application preparing more than this many
// distinct statements gets query_unknown on the oldest).
inline constexpr size_t kMaxStatements = 1024;
// OpaqueRemaining of a frame in COPY mode between messages: the data runs on for an unknown
// length, and a hole there is skipped.
inline constexpr uint64_t kCopyUnknown = ~uint64_t{0};
// Request start times kept for lost answers (as many as may wait for an answer), and how far
// back from ReadyForQuery an answer's last message is looked for.
inline constexpr size_t kMaxRequestTimes = 1024;
inline constexpr size_t kMaxEndMessage = 4096;

enum class Phase : uint8_t {
  kMessage,  // before the next message's type byte (or length, for an untyped one)
  kSkip,     // inside a message's body past the prefix read (`remaining` bytes left)
  kDone,
};

struct Statement {
  std::string query;       // sanitised
  std::string operation;   // its first keyword
  bool truncated = false;  // the text is a prefix (Record::query_truncated)
};

struct Frame {
  Phase phase = Phase::kMessage;
  bool is_response = false;
  bool started = false;  // a message of this frame was parsed
  uint64_t remaining = 0;
  uint64_t seq = 0;
  bool after_loss = false;
  Timing timing;
  // Requests.
  Unit unit = Unit::kQuery;
  std::string database, user;
  bool replication = false;  // Record::replication (the startup's, then the connection's)
  std::string query, operation;
  uint32_t executes = 0;
  bool prepared = false;
  bool query_unknown = false;
  bool query_truncated = false;
  // COPY mode (both directions; see the table above): a hole was skipped and the next
  // byte is a syscall's start; skipping to the next header; the answer ended in a hole.
  bool copy = false;
  bool after_hole = false;
  bool searching = false;
  bool end_lost = false;
  // Responses.
  bool async = false;  // a notification, notice or parameter status alone
  bool errored = false;
  std::string sqlstate, severity, command_tag;
  int64_t tag_rows = -1;
  uint64_t data_rows = 0;
  char ssl_answer = 0;
  bool copy_in = false, copy_out = false;  // CopyInResponse / CopyOutResponse seen
  bool ends_stream = false;                // the answer to an SSLRequest was yes: encrypted from here
  bool finish_after_skip = false;          // the message being skipped is the frame's last
  // A hole took the answer's framing (see the table above); first_ns of the last syscall
  // whose bytes this answer took.
  bool lost = false;
  uint64_t last_chunk_ns = 0;
  // Requests: the extended-query messages that name statements and portals, applied to
  // the connection's State in order when the unit is whole (FinishFrame), so a parse
  // that needs more bytes leaves the State untouched.
  struct Op {
    char type = 0;        // 'P' Parse, 'B' Bind, 'E' Execute, 'C' Close
    char close_kind = 0;  // 'C': 'S' statement or 'P' portal
    std::string name;     // P: statement; B, E: portal; C: either
    std::string target;   // B: its statement
    Statement statement;  // P: the sanitised text
  };
  std::vector<Op> ops;

  bool ExpectsAnswer() const {
    return unit != Unit::kCancel && unit != Unit::kPassword && unit != Unit::kCopyData &&
           unit != Unit::kTerminate;
  }
};

struct State {
  ParseContext ctx;
  uint64_t next_seq = 1;
  bool request_loss = false;
  bool response_loss = false;
  uint32_t ssl_pending = 0;                     // SSLRequests parsed whose one-byte answer is still to parse
  bool response_typed_seen = false;             // a typed answer (or a loss) came: no one-byte answer now
  std::string database;                         // from the StartupMessage
  bool replication = false;                     // the StartupMessage asked for replication
  std::map<std::string, Statement> statements;  // prepared statements by name ("" unnamed)
  std::map<std::string, std::string> portals;   // portal -> statement name
  // An SSLRequest was sent: a TLS record (0x16) where the next request starts means the
  // server said 'S' and the rest of this direction is ciphertext (ignored, not a failure).
  bool ssl_requested = false;
  bool request_encrypted = false;
  bool raw_query_text = false;    // SqlOptions: texts as sent, not sanitised
  uint64_t frames_truncated = 0;  // query texts kept as a prefix (ConnectionStats)
  // Lost answers (see the table above): when the answerable requests started (oldest
  // first, at most kMaxRequestTimes; older ones dropped set request_times_floor), and when
  // the last answer began. ParseFrame's buf at the call, for stream positions.
  Fifo<uint64_t> request_times;
  uint64_t request_times_floor = 0;
  uint64_t last_answer_start_ns = 0;
  const char* call_base = nullptr;
  // Pairing (StitchFrames).
  bool pipelined = false;
  bool stitch_loss = false;
  // Set by the driver: requests wait unparsed, past max_pending (in_order_stitch.h).
  bool requests_held_back = false;
  size_t max_pending = 1024;
};

ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state);
size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state);
bool FrameComplete(const Frame& frame);
uint64_t OpaqueRemaining(const Frame& frame);
void SkipHole(Frame* frame, uint64_t n);
// A hole swallowed the rest of an extended-query unit (between two of its messages): libpq
// writes a unit's messages together at its Sync, so the rest of that write (its Bind,
// Execute, Sync) is what the hole holds and the next captured byte starts the next unit. The
// unit ends there with what was parsed (the Executes the hole held are not counted).
bool TruncateAtHole(MessageType type, Frame* frame);
void FinishFrame(MessageType type, Frame* frame, State* state);
void OnLoss(MessageType type, State* state);
RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state);
Record RecordWithoutAnswer(Frame* request);

// Detection on the first bytes of a request stream: a StartupMessage of protocol 3 with a
// "user" parameter, or an SSLRequest / GSSENCRequest. kMaybe: a consistent strict prefix.
enum class Start : uint8_t { kYes, kNo, kMaybe };
Start LooksLikeRequest(std::string_view prefix);

struct Protocol {
  using Frame = postgres::Frame;
  using State = postgres::State;
  using Record = postgres::Record;

  static ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
    return postgres::ParseFrame(type, buf, frame, state);
  }
  static size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state) {
    return postgres::FindFrameBoundary(type, buf, start, state);
  }
  static RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses,
                                                    State* state) {
    return postgres::StitchFrames(requests, responses, state);
  }
  static bool FrameComplete(const Frame& frame) { return postgres::FrameComplete(frame); }
  static uint64_t OpaqueRemaining(const Frame& frame) { return postgres::OpaqueRemaining(frame); }
  static void SkipHole(Frame* frame, uint64_t n) { postgres::SkipHole(frame, n); }
  static bool TruncateAtHole(MessageType type, Frame* frame, State*) {
    return postgres::TruncateAtHole(type, frame);
  }
  static void SetStart(Frame* frame, const ChunkTiming& t) {
    frame->timing.start_ns = t.first_ns;
    frame->timing.tid = t.tid;
    frame->timing.turn = t.turn;
  }
  static void FinishFrame(MessageType type, Frame* frame, const ChunkTiming& last, State* state) {
    frame->timing.ExtendTo(last.last_ns, last.tid, last.turn);
    postgres::FinishFrame(type, frame, state);
  }
  static bool EndsStream(const Frame& frame) { return frame.ends_stream; }
  static void OnLoss(MessageType type, State* state) { postgres::OnLoss(type, state); }
};

}  // namespace kspan::protocols::postgres
