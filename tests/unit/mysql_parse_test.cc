// The MySQL/MariaDB protocol parser, pairing and registered connection, driven by bytes
// alone (no kernel), and its CLIENT spans.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "correlator/db_span.h"
#include "protocols/mysql/parse.h"
#include "protocols/mysql/spec.h"
#include "protocols/registry.h"
#include "testing/span_pipeline.h"

namespace kspan::protocols::mysql {
namespace {

using std::string;
using std::string_view;

string Le(uint32_t v, size_t n) {
  string s;
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
  return s;
}
string Pkt(uint8_t seq, string_view payload) {
  return Le(static_cast<uint32_t>(payload.size()), 3) + string(1, static_cast<char>(seq)) + string(payload);
}
string Cstr(string_view s) {
  return string(s) + '\0';
}

constexpr uint32_t kCaps = 0x00000200 | 0x00008000 | 0x00080000 | 0x00200000 | 0x00000008 | 0x00020000;

string Greeting(string_view version = "5.5.5-10.11.19-MariaDB-0+deb12u1") {
  return Pkt(0, string(1, '\x0a') + Cstr(version) + Le(42, 4) + string(8, 's') + '\0' + Le(0xF7FE, 2) +
                    "\x2d" + Le(2, 2) + Le(0x81BF, 2) + "\x15" + string(6, '\0') + Le(0x1D, 4) +
                    string(13, 's') + Cstr("mysql_native_password"));
}
string HandshakeResponse(string_view user, string_view password_hash, string_view db, uint32_t caps = kCaps,
                         uint32_t ext = 0) {
  string p = Le(caps, 4) + Le(16777216, 4) + "\x2d" + string(19, '\0') + Le(ext, 4) + Cstr(user);
  p += static_cast<char>(password_hash.size());
  p += password_hash;
  p += Cstr(db) + Cstr("mysql_native_password");
  return Pkt(1, p);
}
string Ok(uint8_t seq, uint16_t status = 2, uint8_t header = 0) {
  return Pkt(seq, string(1, static_cast<char>(header)) + '\0' + '\0' + Le(status, 2) + Le(0, 2));
}
string Err(uint8_t seq, uint16_t code, string_view state, string_view msg) {
  return Pkt(seq, "\xff" + Le(code, 2) + "#" + string(state) + string(msg));
}
string Eof(uint8_t seq, uint16_t status = 2) {
  return Pkt(seq, "\xfe" + Le(0, 2) + Le(status, 2));
}
string Command(uint8_t cmd, string_view body) {
  return Pkt(0, string(1, static_cast<char>(cmd)) + string(body));
}
string Query(string_view q) {
  return Command(0x03, q);
}
string ColumnDef(uint8_t seq) {
  return Pkt(seq,
             "\x03"
             "def\x04shop\x05users\x05users\x04name\x04name\x0c\x21\0\xfc\xff\x02\0\xfc\x10\0\0\0\0");
}
// A text result set of one column and `rows` rows, starting at sequence id 1.
string ResultSet(int rows, bool deprecate_eof = false) {
  string s = Pkt(1, "\x01");
  s += ColumnDef(2);
  uint8_t seq = 3;
  if (!deprecate_eof) s += Eof(seq++);
  for (int i = 0; i < rows; ++i) s += Pkt(seq++, "\x05value");
  s += deprecate_eof ? Ok(seq, 2, 0xFE) : Eof(seq);
  return s;
}
string PrepareOk(uint32_t id, uint16_t columns, uint16_t params) {
  string s = Pkt(1, string(1, '\0') + Le(id, 4) + Le(columns, 2) + Le(params, 2) + '\0' + Le(0, 2));
  uint8_t seq = 2;
  for (int i = 0; i < params; ++i) s += ColumnDef(seq++);
  if (params) s += Eof(seq++);
  for (int i = 0; i < columns; ++i) s += ColumnDef(seq++);
  if (columns) s += Eof(seq++);
  return s;
}
string Execute(uint32_t id) {
  return Command(0x17, Le(id, 4) + "\x00" + Le(1, 4) + "\x01" + "\x01\x00" + Le(7, 4));
}
string BinaryResult(int rows) {
  string s = Pkt(1, "\x01");
  s += ColumnDef(2);
  uint8_t seq = 3;
  s += Eof(seq++);
  for (int i = 0; i < rows; ++i) s += Pkt(seq++, string("\0\0\x05value", 8));
  return s + Eof(seq);
}

class MyConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { conn_ = Spec().make(true, ProtocolOptions{}); }
  void Send(bool request, const string& bytes, uint32_t total = 0) {
    storage_.push_back(bytes);
    const string& b = storage_.back();
    Chunk c;
    c.egress = request;
    uint64_t& pos = request ? req_pos_ : resp_pos_;
    c.position = pos;
    c.data = b;
    c.total_len = total ? total : static_cast<uint32_t>(b.size());
    pos += c.total_len;
    c.first_ns = now_ += 1000;
    c.last_ns = now_ += 1000;
    c.tid = 7;
    conn_->AddData(c);
  }
  void Drain() {
    ConnectionStats s;
    conn_->Drain(&started_, &records_, &s);
    stats_ += s;
  }
  const Record& Body(size_t i) { return std::get<Record>(records_.at(i).body); }
  uint64_t Losses() const {
    return stats_.frames_invalid + stats_.responses_unmatched + stats_.responses_unmatched_at_close +
           stats_.requests_unanswered.Total() + stats_.gaps;
  }
  void Login(string_view db = "shop") {
    Send(false, Greeting());
    Send(true, HandshakeResponse("alice", "hash-hunter2-secret", db));
    Send(false, Ok(2));
  }

  std::unique_ptr<ProtocolConnection> conn_;
  std::vector<string> storage_;
  uint64_t req_pos_ = 0, resp_pos_ = 0, now_ = 1'000'000;
  std::vector<RequestStart> started_;
  std::vector<protocols::Record> records_;
  ConnectionStats stats_;
};

TEST_F(MyConnectionTest, LoginQueriesErrorsAndUse) {
  Login();
  Send(true, Query("SELECT name FROM users WHERE id IN (1, 2, 3) AND name = 'bob'"));
  Send(false, ResultSet(2));
  Send(true, Query("SELECT * FROM nope"));
  Send(false, Err(1, 1146, "42S02", "Table 'shop.nope' doesn't exist"));
  Send(true, Query("USE other"));
  Send(false, Ok(1));
  Send(true, Query("INSERT INTO t VALUES (1)"));
  Send(false, Ok(1));
  Send(true, Command(0x01, ""));  // COM_QUIT
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 6u);
  EXPECT_EQ(Body(0).unit, Unit::kHandshake);
  EXPECT_EQ(Body(0).user, "alice");
  EXPECT_EQ(Body(0).database, "shop");
  EXPECT_TRUE(Body(0).mariadb);
  EXPECT_EQ(Body(1).query, "SELECT name FROM users WHERE id IN (?) AND name = ?");
  EXPECT_EQ(Body(1).operation, "SELECT");
  EXPECT_EQ(Body(1).data_rows, 2u);
  EXPECT_EQ(Body(1).database, "shop");
  EXPECT_TRUE(Body(2).errored);
  EXPECT_EQ(Body(2).error_code, 1146);
  EXPECT_EQ(Body(2).sqlstate, "42S02");
  EXPECT_EQ(Body(3).database, "other");
  EXPECT_EQ(Body(4).database, "other");
  EXPECT_EQ(Body(5).unit, Unit::kQuit);
  EXPECT_FALSE(Body(5).response_missing);
  EXPECT_EQ(Losses(), 0u);
}

// Through the span builder and the stitcher: a session opens a node for each query,
// prepare and execute only, every node completes, and exactly their spans are exported
// (a handshake, COM_PING or COM_STMT_CLOSE node would never complete and hold its trace
// until max_hold).
TEST_F(MyConnectionTest, OnlyOperationsOpenNodesAndEveryNodeCompletes) {
  Login();
  Send(true, Query("SELECT 1"));
  Send(false, ResultSet(1));
  Send(true, Command(0x0e, ""));  // COM_PING
  Send(false, Ok(1));
  Send(true, Query("INSERT INTO t VALUES (1)"));
  Send(false, Ok(1));
  Send(true, Command(0x01, ""));  // COM_QUIT
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 5u);
  std::vector<bool> no_span;
  for (const RequestStart& s : started_) no_span.push_back(s.no_span);
  EXPECT_EQ(no_span, (std::vector<bool>{true, false, true, false, true}));

  events::SocketTuple tuple;
  tuple.family = AF_INET;
  tuple.local = {"127.0.0.1", 40000};
  tuple.remote = {"127.0.0.1", 3306};
  const auto run = kspan::testing::RunThroughSpanPipeline(Spec(), false, tuple, std::move(started_),
                                                          std::move(records_), now_);
  EXPECT_EQ(run.nodes_opened, 2u);
  EXPECT_EQ(run.nodes_left, 0u);
  ASSERT_EQ(run.emitted.size(), 2u);
  for (const model::Span& s : run.emitted) EXPECT_EQ(s.kind, model::SpanKind::kClient) << s.name;
}

TEST_F(MyConnectionTest, AuthSwitchAndFailedLogin) {
  Send(false, Greeting("8.0.36"));
  Send(true, HandshakeResponse("bob", "x", ""));
  Send(false, Pkt(2, "\xfe" + Cstr("caching_sha2_password") + string(20, 'n')));
  Send(true, Pkt(3, string(32, 'h')));  // the scrambled password: never read
  Send(false, Err(4, 1045, "28000", "Access denied for user"));
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(Body(0).unit, Unit::kHandshake);
  EXPECT_TRUE(Body(0).errored);
  EXPECT_EQ(Body(0).error_code, 1045);
  EXPECT_FALSE(Body(0).mariadb);
  EXPECT_EQ(Body(1).unit, Unit::kData);
  EXPECT_EQ(Losses(), 0u);
}

TEST_F(MyConnectionTest, PreparedStatementExecutedManyTimesAndClosed) {
  Login();
  Send(true, Command(0x16, "SELECT name FROM users WHERE id = ? OR name = 'x'"));
  Send(false, PrepareOk(5, 1, 1));
  for (int i = 0; i < 100; ++i) {
    Send(true, Execute(5));
    Send(false, BinaryResult(i % 3));
  }
  Send(true, Command(0x19, Le(5, 4)));  // COM_STMT_CLOSE: no answer
  Send(true, Execute(5));               // closed: its text is gone
  Send(false, Err(1, 1243, "HY000", "Unknown prepared statement handler"));
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 104u);
  EXPECT_EQ(Body(1).unit, Unit::kPrepare);
  EXPECT_EQ(Body(1).statement_id, 5u);
  EXPECT_EQ(Body(1).query, "SELECT name FROM users WHERE id = ? OR name = ?");
  for (size_t i = 2; i < 102; ++i) {
    ASSERT_EQ(Body(i).unit, Unit::kExecute);
    EXPECT_EQ(Body(i).query, "SELECT name FROM users WHERE id = ? OR name = ?");
    EXPECT_EQ(Body(i).operation, "SELECT");
    EXPECT_EQ(Body(i).data_rows, (i - 2) % 3);
  }
  EXPECT_EQ(Body(102).unit, Unit::kStmtClose);
  EXPECT_TRUE(Body(103).query_unknown);
  EXPECT_TRUE(Body(103).errored);
  EXPECT_EQ(Losses(), 0u);
}

TEST_F(MyConnectionTest, DeprecateEofMultiResultsAndProgress) {
  Send(false, Greeting());
  Send(true, HandshakeResponse("u", "", "d", kCaps | kClientDeprecateEof));
  Send(false, Ok(2));
  // An empty result set: the terminator right after the definitions.
  Send(true, Query("SELECT a FROM t WHERE 0"));
  Send(false, Pkt(1, "\x01") + ColumnDef(2) + Ok(3, 2, 0xFE));
  // A CALL: a result set with MORE_RESULTS, then the final OK.
  Send(true, Query("CALL p()"));
  Send(false, Pkt(1, "\x01") + ColumnDef(2) + Pkt(3, "\x01x") + Ok(4, 0x0A, 0xFE) + Ok(5));
  // A MariaDB progress report before the answer.
  Send(true, Query("ALTER TABLE t ADD c int"));
  Send(false, Pkt(1, "\xff\xff\xff\x01\x01\x00\x10\x00\x00\x05stage") + Ok(2));
  Send(true, Query("SELECT 1"));
  Send(false, ResultSet(1, true));
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 5u);
  EXPECT_EQ(Body(1).data_rows, 0u);
  EXPECT_EQ(Body(2).data_rows, 1u);
  EXPECT_EQ(Body(2).result_sets, 2u);
  EXPECT_FALSE(Body(3).errored);
  EXPECT_EQ(Body(4).data_rows, 1u);
  EXPECT_EQ(Losses(), 0u);
}

// libmariadb with MariaDB's metadata cache: an execute's answer says the definitions are
// not sent (bytes as DBD::MariaDB got them from MariaDB 10.11); their EOF still comes.
TEST_F(MyConnectionTest, MariaDbCachedMetadataSkipsDefinitionsNotTheirEof) {
  Send(false, Greeting());
  Send(true, HandshakeResponse("u", "", "d", kCaps, kMariaDbCacheMetadata));
  Send(false, Ok(2));
  Send(true, Command(0x16, "SELECT name FROM users WHERE id = ?"));
  Send(false, PrepareOk(1, 1, 1));
  for (int i = 0; i < 2; ++i) {
    Send(true, Execute(1));
    Send(false, Pkt(1, string("\x01\x00", 2)) + Eof(2, 0x22) +
                    (i == 0 ? Pkt(3, string("\0\0\x01\x61", 4)) : "") + Eof(i == 0 ? 4 : 3, 0x22));
  }
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 4u);
  EXPECT_EQ(Body(2).query, "SELECT name FROM users WHERE id = ?");
  EXPECT_EQ(Body(2).data_rows, 1u);
  EXPECT_EQ(Body(3).data_rows, 0u);
  EXPECT_EQ(Losses(), 0u);
}

// A client that asked for compression (mariadb --compress): the login pairs and makes its
// record; the compressed packets after it are not parsed (no wrong command from their
// headers, no parse failure) but counted as dropped bytes.
TEST_F(MyConnectionTest, CompressionEndsBothStreamsAfterTheLogin) {
  for (const uint32_t flag : {kClientCompress, kClientZstd}) {
    SCOPED_TRACE(flag);
    SetUp();
    records_.clear();
    stats_ = {};
    req_pos_ = resp_pos_ = 0;
    Send(false, Greeting());
    Send(true, HandshakeResponse("alice", "hash", "shop", kCaps | flag));
    Send(false, Ok(2));
    // Compressed packets: 3-byte compressed length, sequence, 3-byte uncompressed length.
    const string query = Query("SELECT 1");
    Send(true, Le(static_cast<uint32_t>(query.size()), 3) + string(1, '\0') + Le(0, 3) + query);
    const string answer = ResultSet(1);
    Send(false, Le(static_cast<uint32_t>(answer.size()), 3) + string(1, '\0') + Le(0, 3) + answer);
    Send(true, Le(20, 3) + string(1, '\x01') + Le(400, 3) + string(20, '\x78'));
    conn_->Close(Unanswered::kNoResponse);
    Drain();
    ASSERT_EQ(records_.size(), 1u);
    EXPECT_EQ(Body(0).unit, Unit::kHandshake);
    EXPECT_FALSE(records_[0].response_missing);
    EXPECT_EQ(Losses(), 0u);
    EXPECT_GT(stats_.bytes_dropped, 0u);
  }
}

TEST_F(MyConnectionTest, SslRequestEndsBothStreams) {
  Send(false, Greeting());
  Send(true, Pkt(1, Le(kCaps | kClientSsl, 4) + Le(16777216, 4) + "\x2d" + string(23, '\0')));
  Send(true, "\x16\x03\x01\x02\x00 client hello ...");
  Send(false, "\x16\x03\x03\x00\x7a server hello ...");
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(Body(0).unit, Unit::kSslRequest);
  EXPECT_FALSE(Body(0).response_missing);
  EXPECT_EQ(stats_.frames_invalid, 0u);
  EXPECT_EQ(stats_.responses_unmatched, 0u);
}

TEST_F(MyConnectionTest, SplitAnywhereGivesTheSameRecords) {
  const string req = HandshakeResponse("u", "pw", "d") + Query("SELECT 1") + Command(0x16, "SELECT ?") +
                     Execute(1) + Command(0x0e, "") + Command(0x01, "");
  const string resp = Greeting() + Ok(2) + ResultSet(1) + PrepareOk(1, 1, 1) + BinaryResult(2) + Ok(1);
  for (size_t step : {1, 2, 3, 5, 7, 13, 64}) {
    SCOPED_TRACE(step);
    SetUp();
    records_.clear();
    stats_ = {};
    req_pos_ = resp_pos_ = 0;
    for (size_t i = 0; i < req.size(); i += step) Send(true, req.substr(i, step));
    for (size_t i = 0; i < resp.size(); i += step) {
      Send(false, resp.substr(i, step));
      if (i % 3 == 0) Drain();
    }
    conn_->Close(Unanswered::kNoResponse);
    Drain();
    ASSERT_EQ(records_.size(), 6u);
    EXPECT_EQ(Body(0).database, "d");
    EXPECT_EQ(Body(1).query, "SELECT ?");
    EXPECT_EQ(Body(1).data_rows, 1u);
    EXPECT_EQ(Body(3).query, "SELECT ?");
    EXPECT_EQ(Body(3).data_rows, 2u);
    EXPECT_EQ(Body(4).unit, Unit::kOther);
    EXPECT_EQ(Body(5).unit, Unit::kQuit);
    EXPECT_EQ(Losses(), 0u);
  }
}

TEST_F(MyConnectionTest, RowsPastTheCaptureCrossHoles) {
  Login();
  Send(true, Query("SELECT big FROM t"));
  const string big_row = Pkt(3, "\xfc\x10\x27" + string(10000, 'v'));
  Send(false, Pkt(1, "\x01") + ColumnDef(2) + big_row.substr(0, 100),
       static_cast<uint32_t>(Pkt(1, "\x01").size() + ColumnDef(2).size() + big_row.size()));
  Send(false, Eof(4));
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  // Without CLIENT_DEPRECATE_EOF the EOF after the definitions is read as the first row
  // here (the definitions' EOF was the row's place): the row's own bytes are skipped.
  EXPECT_FALSE(Body(1).response_missing);
  EXPECT_EQ(stats_.frames_invalid, 0u);
}

TEST_F(MyConnectionTest, GarbageIsCountedNotParsed) {
  Login();
  // A command packet with no such command, then bytes that are no packet at all.
  Send(true, string("\x05\0\0\0\x7f garbage that is no packet\n", 32) + Query("SELECT 2"));
  Send(false, Ok(1));
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(Body(1).query, "SELECT ?");
  EXPECT_GE(stats_.frames_invalid, 1u);
}

// tests/fuzz/corpus/mysql_fuzz/garbage_then_empty_packet_cut_after_its_header: a packet
// header announcing 3 bytes with no such command (0xFF), then `00 00 00 ff 00`. Whole,
// resynchronisation rejects the empty packet at offset 1 (length 0). A syscall ending after
// its 4-byte header used to let it through as a cut-off candidate, and the parser, which
// needs no more bytes for an empty packet, made it a data record.
TEST_F(MyConnectionTest, GarbageCutAnywhereGivesWhatWholeGives) {
  const string garbage("\x03\0\0\0\xff\0", 6);
  for (size_t cut = 0; cut < garbage.size(); ++cut) {
    SCOPED_TRACE(cut);
    SetUp();
    records_.clear();
    started_.clear();
    stats_ = {};
    req_pos_ = resp_pos_ = 0;
    if (cut > 0) {
      Send(true, garbage.substr(0, cut));
      Drain();
    }
    Send(true, garbage.substr(cut));
    Drain();
    conn_->Close(Unanswered::kNoResponse);
    Drain();
    EXPECT_TRUE(records_.empty());
    EXPECT_TRUE(started_.empty());
  }
}

// tests/fuzz/corpus/mysql_fuzz/mariadb_flag_of_an_answer_parsed_after_a_later_greeting: on
// a connection kspan joined late, an answer comes and then a packet that reads as a greeting
// naming MariaDB. The answer's server is what the response stream said before it, not what
// the state says when the answer is paired (which depends on how far that stream was
// parsed by then, so on where syscalls cut it).
TEST_F(MyConnectionTest, AnAnswerKeepsTheServerOfTheGreetingBeforeIt) {
  for (const bool drain_between : {false, true}) {
    SCOPED_TRACE(drain_between);
    SetUp();
    records_.clear();
    started_.clear();
    stats_ = {};
    req_pos_ = resp_pos_ = 0;
    Send(true, Query("SELECT 1"));
    Send(false, Ok(1));
    if (drain_between) Drain();
    Send(false, Greeting());
    Drain();
    ASSERT_EQ(records_.size(), 1u);
    EXPECT_EQ(Body(0).query, "SELECT ?");
    EXPECT_FALSE(Body(0).response_missing);
    EXPECT_FALSE(Body(0).mariadb);
  }
}

// After a loss, a frame starts only where FindFrameBoundary sees one; a candidate cut off by
// the end of the bytes is checked again when more come, so the parser must not take any of
// its bytes before the check can say no (event_parser.h).
TEST(MyParse, ACutOffCandidateThatProvesFalseIsOneTheParserWaitsOn) {
  const std::pair<MessageType, string> wires[] = {
      {MessageType::kRequest, string("\0\0\0\xff\0", 5)},               // an empty packet, sequence id 255
      {MessageType::kRequest, Pkt(3, "\x03SELECT 1")},                  // a command with sequence id 3
      {MessageType::kRequest, Pkt(0, "\x60xx")},                        // no such command
      {MessageType::kResponse, string("\0\0\0\x01\0", 5)},              // an empty answer
      {MessageType::kResponse, Pkt(5, string("\0\0\0\x02\0\0\0", 7))},  // an OK with sequence id 5
      {MessageType::kResponse, Pkt(1, "\xfd")},                         // no answer starts with 0xFD
  };
  for (const auto& [type, wire] : wires) {
    ASSERT_NE(FindFrameBoundary(type, wire, 0, nullptr), 0u) << wire;
    for (size_t len = 0; len < wire.size(); ++len) {
      SCOPED_TRACE(len);
      const string prefix = wire.substr(0, len);
      if (FindFrameBoundary(type, prefix, 0, nullptr) != 0) continue;  // rejected already
      State st;
      OnLoss(type, &st);
      st.ctx.partial_ok = true;
      string_view buf = prefix;
      Frame f;
      EXPECT_EQ(ParseFrame(type, &buf, &f, &st), ParseState::kNeedsMoreData) << wire;
      EXPECT_EQ(buf.size(), prefix.size());
    }
  }
}

// ---- Whole-frame parsing: every truncated prefix, invalid input ------------------------

TEST(MyParse, EveryTruncatedPrefixNeedsMoreDataAndLeavesInputUntouched) {
  State st;
  st.handshake_seen = st.greeting_seen = st.auth_done = true;
  const std::pair<MessageType, string> wires[] = {
      {MessageType::kRequest, Query("SELECT 1")},
      {MessageType::kRequest, Execute(3)},
      {MessageType::kResponse, ResultSet(2)},
      {MessageType::kResponse, PrepareOk(3, 1, 2)},
      {MessageType::kResponse, Err(1, 1064, "42000", "syntax")},
      {MessageType::kResponse, Ok(1)},
  };
  for (const auto& [type, wire] : wires) {
    string_view whole = wire;
    Frame f;
    ASSERT_EQ(ParseFrame(type, &whole, &f, &st), ParseState::kSuccess);
    EXPECT_TRUE(whole.empty());
    for (size_t len = 0; len < wire.size(); ++len) {
      SCOPED_TRACE(len);
      const string prefix = wire.substr(0, len);
      string_view buf = prefix;
      Frame g;
      EXPECT_EQ(ParseFrame(type, &buf, &g, &st), ParseState::kNeedsMoreData);
      EXPECT_EQ(buf.size(), prefix.size());
      EXPECT_FALSE(g.started);
    }
  }
  State fresh;
  const string hs = HandshakeResponse("alice", "pw", "shop");
  for (size_t len = 0; len < hs.size(); ++len) {
    const string prefix = hs.substr(0, len);
    string_view buf = prefix;
    Frame g;
    EXPECT_EQ(ParseFrame(MessageType::kRequest, &buf, &g, &fresh), ParseState::kNeedsMoreData) << len;
    EXPECT_EQ(buf.size(), prefix.size());
  }
}

TEST(MyParse, InvalidInput) {
  State st;
  st.handshake_seen = st.greeting_seen = st.auth_done = true;
  const std::pair<MessageType, string> wires[] = {
      {MessageType::kRequest, Pkt(0, "")},             // an empty command
      {MessageType::kRequest, Pkt(0, "\x60xx")},       // no such command
      {MessageType::kRequest, Command(0x17, "\x01")},  // an execute without its statement id
      {MessageType::kResponse, Pkt(1, "")},            // an empty answer
  };
  for (const auto& [type, wire] : wires) {
    string_view buf = wire;
    Frame f;
    EXPECT_EQ(ParseFrame(type, &buf, &f, &st), ParseState::kInvalid) << wire;
    EXPECT_EQ(buf.size(), wire.size());
  }
  State fresh;
  const string no41 = Pkt(1, Le(0x8000, 4) + Le(0, 4) + "\x2d" + string(23, '\0') + Cstr("u") + '\0');
  string_view buf = no41;
  Frame f;
  EXPECT_EQ(ParseFrame(MessageType::kRequest, &buf, &f, &fresh), ParseState::kInvalid);
}

TEST(MyDetect, HandshakeResponseOnly) {
  const string hs = HandshakeResponse("alice", "pw", "shop");
  EXPECT_EQ(Spec().detect(hs), Detection::kMatch);
  EXPECT_EQ(Spec().detect(Pkt(1, Le(kCaps | kClientSsl, 4) + Le(0, 4) + "\x2d" + string(23, '\0'))),
            Detection::kMatch);
  EXPECT_EQ(Spec().detect(hs.substr(0, 6)), Detection::kNeedMoreData);
  EXPECT_EQ(Spec().detect(hs.substr(0, 31)), Detection::kNeedMoreData);
  EXPECT_EQ(Spec().detect(Query("SELECT 1")), Detection::kNoMatch);
  EXPECT_EQ(Spec().detect("GET / HTTP/1.1\r\n"), Detection::kNoMatch);
  EXPECT_EQ(Spec().detect("*1\r\n$4\r\nPING\r\n"), Detection::kNoMatch);
  EXPECT_EQ(Spec().detect("get key\r\n"), Detection::kNoMatch);
  EXPECT_EQ(Spec().name, "mysql");
  EXPECT_FALSE(Spec().callee_spans);
  for (const ProtocolSpec& spec : Protocols()) {
    if (spec.name == "mysql" || !spec.detect) continue;
    EXPECT_NE(spec.detect(hs), Detection::kMatch) << spec.name;
  }
}

// ---- Spans --------------------------------------------------------------------------------

correlator::DbConnContext Client() {
  correlator::DbConnContext c;
  c.tuple.family = AF_INET;
  c.tuple.local = {"127.0.0.1", 40000};
  c.tuple.remote = {"127.0.0.1", 3306};
  return c;
}

std::string Attr(const model::Span& s, const std::string& key) {
  for (const auto& a : s.attributes) {
    if (a.key != key) continue;
    if (const auto* v = std::get_if<std::string>(&a.value)) return *v;
    if (const auto* v = std::get_if<int64_t>(&a.value)) return std::to_string(*v);
  }
  return "<none>";
}

TEST(MySpan, QueryErrorExecuteAndNoSpanForHandshake) {
  Record q;
  q.unit = Unit::kQuery;
  q.database = "shop";
  q.query = "SELECT * FROM nope";
  q.operation = "SELECT";
  q.errored = true;
  q.error_code = 1146;
  q.sqlstate = "42S02";
  q.mariadb = true;
  q.request = {1000, 2000};
  q.response = {3000, 4000};
  auto span = correlator::BuildMysqlSpan(q, Client(), nullptr);
  ASSERT_TRUE(span);
  EXPECT_EQ(span->name, "SELECT nope");  // the one table it names
  EXPECT_EQ(Attr(*span, "db.collection.name"), "nope");
  EXPECT_EQ(span->kind, model::SpanKind::kClient);
  EXPECT_EQ(span->status_code, model::StatusCode::kError);
  EXPECT_EQ(span->start_time_unix_nano, 1000u);
  EXPECT_EQ(span->end_time_unix_nano, 4000u);
  EXPECT_EQ(Attr(*span, "db.system.name"), "mariadb");
  EXPECT_EQ(Attr(*span, "db.namespace"), "shop");
  EXPECT_EQ(Attr(*span, "db.query.text"), "SELECT * FROM nope");
  EXPECT_EQ(Attr(*span, "db.response.status_code"), "1146");
  EXPECT_EQ(Attr(*span, "error.type"), "1146");
  EXPECT_EQ(Attr(*span, "server.port"), "3306");

  Record e;
  e.unit = Unit::kExecute;
  e.query = "SELECT ?";
  e.operation = "SELECT";
  e.data_rows = 3;
  span = correlator::BuildMysqlSpan(e, Client(), nullptr);
  ASSERT_TRUE(span);
  EXPECT_EQ(span->name, "SELECT");  // no table, no schema
  EXPECT_EQ(Attr(*span, "db.system.name"), "mysql");
  EXPECT_EQ(Attr(*span, "db.response.returned_rows"), "3");
  EXPECT_EQ(Attr(*span, "error.type"), "<none>");
  EXPECT_EQ(span->status_code, model::StatusCode::kUnset);

  Record p;
  p.unit = Unit::kPrepare;
  p.query = "SELECT ?";
  p.operation = "SELECT";
  span = correlator::BuildMysqlSpan(p, Client(), nullptr);
  ASSERT_TRUE(span);
  EXPECT_EQ(Attr(*span, "db.operation.name"), "PREPARE");

  Record h;
  h.unit = Unit::kHandshake;
  EXPECT_FALSE(correlator::BuildMysqlSpan(h, Client(), nullptr));
  correlator::DbConnContext server = Client();
  server.is_server = true;
  EXPECT_FALSE(correlator::BuildMysqlSpan(q, server, nullptr));
}

}  // namespace
}  // namespace kspan::protocols::mysql
