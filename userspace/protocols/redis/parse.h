// Redis serialization protocol framing (RESP2 and RESP3, redis.io "Redis serialization
// protocol specification"): commands in the request direction, replies in the response
// direction, and their pairing. See README.md for what is supported.
//
// A frame is parsed one element at a time; with ctx.partial_ok the loop may stop after any
// element and resume with more bytes. Bulk payloads are opaque (they may cross a hole),
// except the few kept (the command name, a container command's subcommand, SELECT's index,
// CLIENT REPLY's mode, an error's prefix, a reply's first word):
//
//   kType ─┬─ + - : _ # , ( line ──────────────────────┐
//          ├─ $ ! = <len> ─► kBulk (len + CRLF opaque) ─┤ one value done: close the
//          ├─ * % ~ > | <n> (open an aggregate) ──► kType ┤ aggregates it filled;
//          └─ (request, not '*') an inline command line ──┤ none open ─► kDone
//                                                         └─► kType (next element)
//
// Replies are self-delimiting, so a reply parses without knowing its command; the pairing
// (StitchFrames) matches them in order and sets pub/sub messages aside.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/fifo.h"
#include "protocols/common/event_parser.h"
#include "protocols/common/parse_state.h"
#include "protocols/redis/types.h"

namespace kspan::protocols::redis {

// Bounds. Redis reads an inline command or a RESP header line up to 64 KiB
// (PROTO_INLINE_MAX_SIZE) and rejects a request array of more than INT_MAX elements; a reply
// line (simple string, error, number) is short, an error quoting its arguments at most a
// few hundred bytes: 64 KiB for both is what a connection buffers while a line is
// incomplete. A bulk string is at most proto-max-bulk-len (512 MiB by default, settable
// higher): 4 GiB rejects only lengths no server sends; payloads are skipped, never buffered
// whole. Nesting: Redis's own replies nest at most 7 deep (XINFO STREAM FULL); 16 leaves room
// for module and Lua replies and bounds the frame (16 counts of 8 bytes).
inline constexpr size_t kMaxLine = 64 * 1024;
inline constexpr uint64_t kMaxElements = (uint64_t{1} << 31) - 1;
inline constexpr uint64_t kMaxBulk = uint64_t{1} << 32;
inline constexpr size_t kMaxDepth = 16;
// Frame::db: the database is what the commands before this one left.
inline constexpr int64_t kInheritDb = -3;
// A bulk string read whole to keep (part of) it: a name, a subcommand, an error.
inline constexpr size_t kMaxKeptBulk = 64;

enum class Phase : uint8_t {
  kType,  // before the next value's type byte
  kBulk,  // inside a bulk payload and its CRLF (`remaining` bytes left)
  kDone,
};

// CLIENT REPLY's mode, when the command is one.
enum class ReplyMode : uint8_t { kNone, kOn, kOff, kSkip };

// What a reply's shape says about pub/sub (StitchFrames decides with the connection's state).
enum class Shape : uint8_t {
  kPlain,
  kConfirmation,  // [subscribe|unsubscribe|psubscribe|..., channel, count]
  kMessage,       // [message, channel, payload], [pmessage, pattern, channel, payload], smessage
};

// One command or one reply and where its parse stands.
struct Frame {
  Phase phase = Phase::kType;
  bool is_response = false;
  uint8_t depth = 0;  // aggregates open
  // Values each open aggregate still expects (a map's pairs count twice), and which of them
  // are attributes (RESP3 |: their values come before the value they describe and do not
  // count as an element of the enclosing aggregate).
  std::array<uint64_t, kMaxDepth> left{};
  uint16_t attribute_levels = 0;  // bit i: level i is an attribute
  uint64_t remaining = 0;         // kBulk: bytes left, the closing CRLF included
  uint64_t top_index = 0;         // values finished at depth 1 (elements of the top aggregate)
  char type = 0;                  // the top value's type byte
  // Requests.
  std::string command;  // element 0, as sent; "_OTHER" when not a plausible command name
  std::string subcommand;
  uint64_t args = 0;
  bool inline_command = false;
  int64_t select_db = -1;  // SELECT <n>: n
  ReplyMode reply_mode = ReplyMode::kNone;
  bool expects_answer = true;  // set by FinishFrame (CLIENT REPLY OFF/SKIP)
  int64_t db = -1;             // 0, -1 (unknown) or kInheritDb: see FinishFrame
  // Responses.
  uint64_t elements = 0;      // the top aggregate's count (map: pairs)
  bool null = false;          // $-1, *-1, _
  std::string head_word;      // an aggregate's first element when a short string, lower case
  bool truncated = false;     // ended where a hole cut its framing (TruncateAtHole)
  bool third_is_int = false;  // the top aggregate's third element is an integer
  int64_t third_int = 0;
  bool ok = false;           // +OK
  bool queued = false;       // +QUEUED
  std::string error_prefix;  // the first error met (top level or nested), its first word
  bool nested_error = false;
  Shape shape = Shape::kPlain;
  // Both.
  uint64_t seq = 0;         // requests: 1, 2, … in parse order
  bool after_loss = false;  // frames of this direction were lost just before this one
  // A request parsed while resynchronising (after garbage or lost bytes): its command name
  // must be what a resynchronisation candidate's is (MatchRequestStart), or it is invalid.
  bool strict_name = false;
  Timing timing;

  bool ExpectsAnswer() const { return expects_answer; }
};

// Parser state of one connection (both directions).
struct State {
  ParseContext ctx;
  uint64_t next_seq = 1;
  bool request_loss = false;      // set by OnLoss, taken by the next request frame
  bool response_loss = false;     // the same for responses
  bool request_mid_line = false;  // resynchronising: the next byte is no line start
  bool response_mid_line = false;
  // Requests (FinishFrame, in parse order).
  bool first_request = true;
  bool reply_off = false;  // CLIENT REPLY OFF in force
  bool skip_next = false;  // CLIENT REPLY SKIP: the next command gets no reply
  // When commands started (Unix ns), the latest max_pending: a truncated reply's tail is
  // what the server sent before the first command after it.
  Fifo<uint64_t> request_starts;
  bool response_tail = false;    // skipping a truncated reply's tail
  uint64_t tail_started_ns = 0;  // when that reply began
  // Pairing (StitchFrames).
  bool pipelined = false;
  bool stitch_loss = false;
  // Set by the driver: requests wait unparsed, past max_pending (in_order_stitch.h).
  bool requests_held_back = false;
  bool subscribed = false;  // RESP2: the connection is in pub/sub mode
  int64_t db = -1;          // the database of the next command paired; -1: unknown
  bool in_multi = false;    // MULTI answered OK, EXEC/DISCARD not yet
  uint32_t queued = 0;      // commands answered QUEUED since MULTI
  // Further confirmations of one SUBSCRIBE-family command (one per channel) to set aside.
  std::string absorb_kind;
  uint64_t absorb_left = 0;
  bool absorb_until_zero = false;  // UNSUBSCRIBE with no channel: until the count is 0
  // Commands waiting for their reply, and replies waiting for their command, before the
  // oldest is given up: 1024 small frames (no payload kept).
  size_t max_pending = 1024;
  // Pub/sub messages set aside since the last look (tests; not a loss).
  uint64_t pushes = 0;
};

// The parser contract (protocols/common/event_parser.h).
ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state);
size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state);
bool FrameComplete(const Frame& frame);
uint64_t OpaqueRemaining(const Frame& frame);
void SkipHole(Frame* frame, uint64_t n);
void FinishFrame(MessageType type, Frame* frame, State* state);
void OnLoss(MessageType type, State* state);
// A reply larger than the capture (a big array: COMMAND DOCS, LRANGE, SCAN) has framing in
// the holes past each syscall's captured prefix. The reply ends where its framing is cut:
// its type and first elements stand, and the response stream skips its rest by time (the
// bytes before the first command sent after it began). A command cut so is abandoned.
bool TruncateAtHole(MessageType type, Frame* frame, State* state);

// Pairs commands with replies in order (protocols/common/in_order_stitch.h) and, before
// that, sets aside what answers no command: RESP3 pushes and, on a RESP2 connection in
// pub/sub mode, message arrays. A SUBSCRIBE-family command with N channels is answered by
// its first confirmation; the other N - 1 are set aside. MULTI ... EXEC: the queued
// commands' records say so and EXEC's counts them.
RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state);

// A command given up, or one that expects no reply: its record without one.
Record RecordWithoutAnswer(Frame* request);

// The command names kspan knows (detection; a parsed command may be any plausible name).
bool IsKnownCommand(std::string_view name);  // case-insensitive

// Detection on the first bytes of a request stream: a RESP array whose first element is a
// known command name. kMaybe: a strict prefix of such a start. Inline commands are not
// detected (memcached and HTTP claim such lines; every client library sends arrays).
enum class Start : uint8_t { kYes, kNo, kMaybe };
Start LooksLikeRequest(std::string_view prefix);

// The sanitised query text: the command, a container command's subcommand, and one `?`
// per other argument (at most kMaxPlaceholders, then "..."). Never an argument's value.
inline constexpr size_t kMaxPlaceholders = 16;
std::string QueryText(const Record& record);

struct Protocol {
  using Frame = redis::Frame;
  using State = redis::State;
  using Record = redis::Record;

  static ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
    return redis::ParseFrame(type, buf, frame, state);
  }
  static size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state) {
    return redis::FindFrameBoundary(type, buf, start, state);
  }
  static RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses,
                                                    State* state) {
    return redis::StitchFrames(requests, responses, state);
  }
  static bool FrameComplete(const Frame& frame) { return redis::FrameComplete(frame); }
  static uint64_t OpaqueRemaining(const Frame& frame) { return redis::OpaqueRemaining(frame); }
  static void SkipHole(Frame* frame, uint64_t n) { redis::SkipHole(frame, n); }
  static void SetStart(Frame* frame, const ChunkTiming& t) {
    frame->timing.start_ns = t.first_ns;
    frame->timing.tid = t.tid;
    frame->timing.turn = t.turn;
  }
  static void FinishFrame(MessageType type, Frame* frame, const ChunkTiming& last, State* state) {
    frame->timing.ExtendTo(last.last_ns, last.tid, last.turn);
    redis::FinishFrame(type, frame, state);
  }
  static bool EndsStream(const Frame&) { return false; }
  static void OnLoss(MessageType type, State* state) { redis::OnLoss(type, state); }
  static bool TruncateAtHole(MessageType type, Frame* frame, State* state) {
    return redis::TruncateAtHole(type, frame, state);
  }
};

}  // namespace kspan::protocols::redis
