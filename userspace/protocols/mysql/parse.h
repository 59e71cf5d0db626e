// MySQL / MariaDB client/server protocol framing (MySQL "Client/Server Protocol", MariaDB
// "Clients & Communication Protocols"): the client's packets in the request direction, the
// server's answers in the response direction, and their pairing. See README.md.
//
// Every packet is a 3-byte little-endian payload length, a sequence id, the payload. A
// payload of 0xFFFFFF bytes continues in the next packet. A command is one packet with
// sequence id 0; its answer is the server's packets with ids 1, 2, ... A frame is parsed
// one packet at a time; of each payload only a bounded prefix is read and the rest skipped
// as opaque bytes (it may cross a hole):
//
//   request:  HandshakeResponse41 | SSLRequest        (sequence id 1, first packet)
//             command (COM_QUERY, COM_STMT_*, ...)    (sequence id 0)
//             data                                    (any other id: auth data, infile)
//   answer:   greeting                                (id 0, the server's first packet)
//             auth packets ... OK | ERR               (the login's answer)
//             OK | ERR | EOF                          (a command's answer, ids from 1)
//             column count, column defs, [EOF], rows, EOF/OK | ERR
//                                                     (a result set; another follows when
//                                                      the status says MORE_RESULTS)
//             prepare OK, param defs [EOF], column defs [EOF]
//             0xFB LOCAL INFILE ... OK | ERR
//
// Which answer shape comes is read from the answer itself (what each packet's first byte
// says, the sequence ids), not from the command: a packet whose id does not continue the
// answer ends it, so an answer read wrong ends at the next one, never swallows it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/fifo.h"
#include "protocols/common/event_parser.h"
#include "protocols/common/parse_state.h"
#include "protocols/mysql/types.h"

namespace kspan::protocols::mysql {

// Bounds. A packet's payload is at most 0xFFFFFF bytes (longer ones continue in the next
// packet); payloads are skipped past their prefix, never buffered. Of a query's text the
// first 64 KiB are read (then sanitised to at most 2 KiB); a HandshakeResponse's first
// 1 KiB (user, auth data of at most 255 bytes, database); of other packets 64 bytes (an
// ERR's code and SQLSTATE, an OK's counts and status).
inline constexpr uint32_t kMaxPayload = 0xFFFFFF;
inline constexpr size_t kMaxQueryRead = 64 * 1024;
inline constexpr size_t kMaxHandshakeRead = 1024;
inline constexpr size_t kMaxPrefixRead = 64;
// Prepared statements remembered per connection (a server allows max_prepared_stmt_count,
// 16382 by default, across all connections; an application with more than this many
// distinct statements on one connection gets query_unknown on the oldest).
inline constexpr size_t kMaxStatements = 1024;

// Capability flags read from the handshake.
inline constexpr uint32_t kClientConnectWithDb = 0x8;
inline constexpr uint32_t kClientProtocol41 = 0x200;
inline constexpr uint32_t kClientSsl = 0x800;
inline constexpr uint32_t kClientCompress = 0x20;
inline constexpr uint32_t kClientZstd = 0x04000000;  // CLIENT_ZSTD_COMPRESSION_ALGORITHM (MySQL 8.0.18+)
inline constexpr uint32_t kClientSecureConnection = 0x8000;
inline constexpr uint32_t kClientPluginAuth = 0x80000;
inline constexpr uint32_t kClientPluginAuthLenenc = 0x200000;
inline constexpr uint32_t kClientDeprecateEof = 0x1000000;
inline constexpr uint32_t kClientQueryAttributes = 0x8000000;
inline constexpr uint32_t kMariaDbCacheMetadata = 0x10;  // MariaDB extended capability (bit 36)

enum class Phase : uint8_t {
  kPacket,  // before the next packet's header
  kSkip,    // inside a payload past the prefix read (`remaining` bytes left)
  kDone,
};

// Where an answer is, between packets.
enum class Answer : uint8_t {
  kFirst,        // the first packet of a result (OK, ERR, EOF, a column count, ...)
  kColumns,      // column definitions (`count` left)
  kColumnsEof,   // the EOF after them (without CLIENT_DEPRECATE_EOF)
  kRows,         // rows up to the EOF/OK that ends them
  kParams,       // a prepare's parameter definitions (`count` left), then [EOF]
  kParamsEof,    //
  kPrepColumns,  // a prepare's column definitions (`count` left), then [EOF]
  kPrepColumnsEof,
  kAuth,    // the login: packets up to OK or ERR, any sequence id
  kInfile,  // after 0xFB: the OK or ERR that follows the client's file
};

// What a response frame is.
enum class Kind : uint8_t {
  kAnswer,    // the answer to a command (or, kAuth, to the HandshakeResponse)
  kGreeting,  // the server's first packet: answers nothing
  kStray,     // a packet with a sequence id no answer starts with: answers nothing known
  kTls,       // the client asked for TLS: the rest of the stream is encrypted
};

struct Statement {
  std::string query;       // sanitised
  std::string operation;   // its first keyword
  bool prepared = false;   // its prepare's answer paired (query, operation set)
  uint64_t closed_at = 0;  // the request seq of its COM_STMT_CLOSE; 0 while open
};

struct Frame {
  Phase phase = Phase::kPacket;
  bool is_response = false;
  bool started = false;
  uint64_t remaining = 0;
  bool continued = false;        // the last packet's payload was 0xFFFFFF: the next continues it
  bool done_after_skip = false;  // the packet being skipped is the frame's last
  uint8_t next_seq = 0;
  uint64_t seq = 0;
  bool after_loss = false;
  bool ends_stream = false;
  Timing timing;
  // Requests.
  Unit unit = Unit::kQuery;
  uint8_t command = 0;
  std::string database, user;
  std::string query, operation;
  uint32_t statement_id = 0;
  bool query_unknown = false;
  std::string use_schema;  // kQuery: "USE name" switches to name when it succeeds
  uint32_t caps = 0;       // kHandshake / kSslRequest: the client's capabilities
  uint32_t ext_caps = 0;   // kHandshake: MariaDB's extended capabilities
  // Responses.
  Kind kind = Kind::kAnswer;
  Answer answer = Answer::kFirst;
  uint64_t count = 0;         // definitions left in kColumns / kParams / kPrepColumns
  uint16_t prep_columns = 0;  // a prepare's columns, after its parameters
  bool prepare_ok = false;
  bool errored = false;
  bool auth_ok = false;
  bool mariadb = false;  // kGreeting: the server version names MariaDB; answers: the greeting before them did
  uint16_t error_code = 0;
  std::string sqlstate;
  uint64_t data_rows = 0;
  uint32_t result_sets = 0;

  bool ExpectsAnswer() const {
    return unit != Unit::kData && unit != Unit::kSslRequest && unit != Unit::kStmtClose &&
           unit != Unit::kLongData && unit != Unit::kQuit;
  }
};

struct State {
  ParseContext ctx;
  bool raw_query_text = false;  // SqlOptions: texts as sent, not sanitised
  uint64_t next_seq = 1;
  bool request_loss = false;
  bool response_loss = false;
  // Request side: the HandshakeResponse seen, and what it negotiated.
  bool handshake_seen = false;
  bool tls = false;
  // The client asked for compression (CLIENT_COMPRESS or zstd): every packet after the
  // login's answer is compressed, so both streams end there (their bytes counted dropped).
  bool compressed = false;
  uint32_t caps = 0;
  uint32_t ext_caps = 0;
  // Response side: the greeting and the login's end seen.
  bool greeting_seen = false;
  bool auth_done = false;
  bool mariadb = false;
  // The schema in use (handshake, then COM_INIT_DB / USE answered OK).
  std::string database;
  std::map<uint32_t, Statement> statements;  // by statement id, from prepares' answers
  uint32_t last_prepared = 0;                // MariaDB's statement id 0xFFFFFFFF means it
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
void FinishFrame(MessageType type, Frame* frame, State* state);
void OnLoss(MessageType type, State* state);
RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state);
Record RecordWithoutAnswer(Frame* request);

// Detection on the first bytes of a request stream: a HandshakeResponse41 (or the SSLRequest
// that replaces it): sequence id 1, under 8 KiB, CLIENT_PROTOCOL_41, the 19 zero filler bytes
// (MariaDB uses the last 4 of the 23 for its extended capabilities). kMaybe: a consistent
// strict prefix.
enum class Start : uint8_t { kYes, kNo, kMaybe };
Start LooksLikeRequest(std::string_view prefix);

struct Protocol {
  using Frame = mysql::Frame;
  using State = mysql::State;
  using Record = mysql::Record;

  static ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
    return mysql::ParseFrame(type, buf, frame, state);
  }
  static size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state) {
    return mysql::FindFrameBoundary(type, buf, start, state);
  }
  static RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses,
                                                    State* state) {
    return mysql::StitchFrames(requests, responses, state);
  }
  static bool FrameComplete(const Frame& frame) { return mysql::FrameComplete(frame); }
  static uint64_t OpaqueRemaining(const Frame& frame) { return mysql::OpaqueRemaining(frame); }
  static void SkipHole(Frame* frame, uint64_t n) { mysql::SkipHole(frame, n); }
  static void SetStart(Frame* frame, const ChunkTiming& t) {
    frame->timing.start_ns = t.first_ns;
    frame->timing.tid = t.tid;
    frame->timing.turn = t.turn;
  }
  static void FinishFrame(MessageType type, Frame* frame, const ChunkTiming& last, State* state) {
    frame->timing.ExtendTo(last.last_ns, last.tid, last.turn);
    mysql::FinishFrame(type, frame, state);
  }
  static bool EndsStream(const Frame& frame) { return frame.ends_stream; }
  static void OnLoss(MessageType type, State* state) { mysql::OnLoss(type, state); }
};

}  // namespace kspan::protocols::mysql
