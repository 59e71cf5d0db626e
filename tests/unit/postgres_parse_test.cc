// The PostgreSQL protocol 3.0 parser, pairing and registered connection, driven by bytes
// alone (no kernel), in the client's role and the server's, and their CLIENT and SERVER
// spans.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "correlator/db_span.h"
#include "protocols/postgres/parse.h"
#include "protocols/postgres/spec.h"
#include "protocols/registry.h"
#include "testing/span_pipeline.h"

namespace kspan::protocols::postgres {
namespace {

using std::string;
using std::string_view;

string Be32(uint32_t v) {
  return string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                static_cast<char>(v)};
}
string Msg(char type, string_view body) {
  return string(1, type) + Be32(static_cast<uint32_t>(body.size() + 4)) + string(body);
}
string Z(char status = 'I') {
  return Msg('Z', string(1, status));
}
string Cstr(string_view s) {
  return string(s) + '\0';
}
string Startup(string_view user, string_view database) {
  string params = Cstr("user") + Cstr(user);
  if (!database.empty()) params += Cstr("database") + Cstr(database);
  params += Cstr("application_name") + Cstr("psql") + '\0';
  return Be32(static_cast<uint32_t>(params.size() + 8)) + Be32(196608) + params;
}
string Query(string_view q) {
  return Msg('Q', Cstr(q));
}
string Parse(string_view name, string_view q) {
  return Msg('P', Cstr(name) + Cstr(q) + string(2, '\0'));
}
string Bind(string_view portal, string_view stmt, string_view value) {
  // One text parameter.
  return Msg('B', Cstr(portal) + Cstr(stmt) + string("\0\0\0\x01", 4) +
                      Be32(static_cast<uint32_t>(value.size())) + string(value) + string(2, '\0'));
}
string Execute(string_view portal) {
  return Msg('E', Cstr(portal) + Be32(0));
}
string Describe(char kind, string_view name) {
  return Msg('D', string(1, kind) + Cstr(name));
}
string Sync() {
  return Msg('S', "");
}
string Error(string_view sqlstate, string_view message) {
  return Msg('E', "SERROR" + string(1, '\0') + "VERROR" + string(1, '\0') + "C" + Cstr(sqlstate) + "M" +
                      Cstr(message) + '\0');
}
string Complete(string_view tag) {
  return Msg('C', Cstr(tag));
}
string Row(string_view v) {
  return Msg('D', string("\0\x01", 2) + Be32(static_cast<uint32_t>(v.size())) + string(v));
}
string RowDesc() {
  return Msg('T', string("\0\x01", 2) + Cstr("a") + string(18, '\0'));
}

class PgConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { conn_ = Spec().make(true, ProtocolOptions{}); }
  void Send(bool request, const string& bytes, uint32_t total = 0) {
    storage_.push_back(bytes);
    const string& b = storage_.back();
    Chunk c;
    c.egress = request != server_;  // the server reads the requests and writes the answers
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
  // psql's start: SSL refused, the startup, an MD5 password, a query with literals.
  void LoginAndSelect(const string& startup) {
    Send(true, Be32(8) + Be32(80877103));  // SSLRequest
    Send(false, "N");
    Send(true, startup);
    Send(false, Msg('R', Be32(5) + "salt"));  // AuthenticationMD5Password
    Send(true, Msg('p', Cstr("md5-hunter2-secret")));
    Send(false, Msg('R', Be32(0)) + Msg('S', Cstr("server_version") + Cstr("15.8")) +
                    Msg('K', Be32(1234) + Be32(5678)) + Z());
    Send(true, Query("SELECT name FROM users WHERE email = 'bob@example.com' AND id IN (1, 2, 3)"));
    Send(false, RowDesc() + Row("bob") + Row("carl") + Complete("SELECT 2") + Z());
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

  bool server_ = false;  // the connection is the server's (make(client=false))
  std::unique_ptr<ProtocolConnection> conn_;
  std::vector<string> storage_;
  uint64_t req_pos_ = 0, resp_pos_ = 0, now_ = 1'000'000;
  std::vector<RequestStart> started_;
  std::vector<protocols::Record> records_;
  ConnectionStats stats_;
};

// A psql session: SSL refused, startup with an MD5 password, a query, an error.
TEST_F(PgConnectionTest, StartupPasswordQueriesAndErrors) {
  LoginAndSelect(Startup("alice", "shop"));
  Send(true, Query("SELECT * FROM nope"));
  Send(false, Error("42P01", "relation \"nope\" does not exist") + Z());
  Send(true, Msg('X', ""));
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 6u);
  EXPECT_EQ(Body(0).unit, Unit::kSslRequest);
  EXPECT_EQ(Body(0).ssl_answer, 'N');
  EXPECT_EQ(Body(1).unit, Unit::kStartup);
  EXPECT_EQ(Body(1).database, "shop");
  EXPECT_EQ(Body(1).user, "alice");
  EXPECT_FALSE(Body(1).errored);
  EXPECT_EQ(Body(2).unit, Unit::kPassword);
  EXPECT_FALSE(records_[2].response_missing);
  EXPECT_EQ(Body(3).unit, Unit::kQuery);
  EXPECT_EQ(Body(3).query, "SELECT name FROM users WHERE email = ? AND id IN (?)");
  EXPECT_EQ(Body(3).operation, "SELECT");
  EXPECT_EQ(Body(3).database, "shop");
  EXPECT_EQ(Body(3).data_rows, 2u);
  EXPECT_EQ(Body(3).command_tag, "SELECT");
  EXPECT_EQ(Body(3).tag_rows, 2);
  EXPECT_TRUE(Body(4).errored);
  EXPECT_EQ(Body(4).sqlstate, "42P01");
  EXPECT_EQ(Body(4).severity, "ERROR");
  EXPECT_EQ(Body(5).unit, Unit::kTerminate);
  EXPECT_EQ(Losses(), 0u);
  for (size_t i = 0; i < records_.size(); ++i) {
    const Record& r = Body(i);
    for (const string& s :
         {r.database, r.user, r.query, r.operation, r.sqlstate, r.severity, r.command_tag}) {
      EXPECT_EQ(s.find("hunter2"), string::npos);
      EXPECT_EQ(s.find("bob"), string::npos);
    }
  }
}

// psycopg-style server-side prepared statement: prepared once by name, executed many
// times; every Execute has its statement's text.
TEST_F(PgConnectionTest, NamedPreparedStatementExecutedManyTimes) {
  Send(true, Startup("app", "shop"));
  Send(false, Msg('R', Be32(0)) + Z());
  Send(true, Parse("stmt_1", "SELECT price FROM items WHERE id = $1") + Describe('S', "stmt_1") + Sync());
  Send(false, Msg('1', "") + Msg('t', string("\0\x01\0\0\0\x17", 6)) + RowDesc() + Z());
  for (int i = 0; i < 100; ++i) {
    Send(true, Bind("", "stmt_1", std::to_string(1000 + i)) + Execute("") + Sync());
    Send(false, Msg('2', "") + Row("9.99") + Complete("SELECT 1") + Z());
  }
  Drain();
  ASSERT_EQ(records_.size(), 102u);
  EXPECT_EQ(Body(1).unit, Unit::kExtended);
  EXPECT_EQ(Body(1).executes, 0u);
  EXPECT_EQ(Body(1).query, "SELECT price FROM items WHERE id = $1");
  for (size_t i = 2; i < 102; ++i) {
    EXPECT_EQ(Body(i).unit, Unit::kExtended);
    EXPECT_EQ(Body(i).executes, 1u);
    EXPECT_TRUE(Body(i).prepared);
    EXPECT_EQ(Body(i).query, "SELECT price FROM items WHERE id = $1") << i;
    EXPECT_EQ(Body(i).operation, "SELECT");
    EXPECT_EQ(Body(i).data_rows, 1u);
    EXPECT_EQ(Body(i).query.find("10"), string::npos);
  }
  EXPECT_EQ(Losses(), 0u);
}

TEST_F(PgConnectionTest, UnnamedStatementsPipelinedAndABatch) {
  Send(true, Startup("app", "shop"));
  Send(false, Msg('R', Be32(0)) + Z());
  // Two units before any answer, the second with two Executes (a batch).
  Send(true, Parse("", "INSERT INTO t VALUES ($1)") + Bind("", "", "7") + Execute("") + Sync() +
                 Parse("", "UPDATE t SET a = 5 WHERE b = $1") + Bind("", "", "x") + Execute("") +
                 Bind("", "", "y") + Execute("") + Sync());
  Send(false, Msg('1', "") + Msg('2', "") + Complete("INSERT 0 1") + Z());
  Send(false, Msg('1', "") + Msg('2', "") + Complete("UPDATE 1") + Msg('2', "") +
                  Error("23505", "duplicate") + Z('E'));
  Drain();
  ASSERT_EQ(records_.size(), 3u);
  EXPECT_EQ(Body(1).query, "INSERT INTO t VALUES ($1)");
  EXPECT_EQ(Body(1).executes, 1u);
  EXPECT_FALSE(Body(1).prepared);
  EXPECT_EQ(Body(1).tag_rows, 1);
  EXPECT_EQ(Body(2).query, "UPDATE t SET a = ? WHERE b = $1");
  EXPECT_EQ(Body(2).executes, 2u);
  EXPECT_TRUE(Body(2).errored);
  EXPECT_EQ(Body(2).sqlstate, "23505");
  EXPECT_EQ(Losses(), 0u);
}

TEST_F(PgConnectionTest, NotificationsWhileIdleAnswerNothing) {
  Send(true, Startup("app", "db"));
  Send(false, Msg('R', Be32(0)) + Z());
  Send(false, Msg('A', Be32(42) + Cstr("chan") + Cstr("payload")));
  Send(true, Query("LISTEN chan"));
  Send(false, Msg('N', "SNOTICE\0\0") + Complete("LISTEN") + Z());
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(Body(1).command_tag, "LISTEN");
  EXPECT_EQ(Losses(), 0u);
}

TEST_F(PgConnectionTest, FatalErrorThenCloseEndsTheAnswer) {
  Send(true, Startup("alice", "shop"));
  Send(false, Msg('R', Be32(5) + "salt"));
  Send(true, Msg('p', Cstr("wrong")));
  Send(false, Msg('E', "SFATAL" + string(1, '\0') + "VFATAL" + string(1, '\0') + "C28P01" + string(1, '\0') +
                           "Mpassword authentication failed" + string(2, '\0')));
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_TRUE(Body(0).errored);
  EXPECT_EQ(Body(0).sqlstate, "28P01");
  EXPECT_EQ(Body(0).severity, "FATAL");
}

// CommandComplete's row count is its tag's last word when that is at most 18 digits (what
// fits an int64_t); anything else leaves the count unknown (-1). postgres_fuzz found a tag
// ending in 300 letters, which the old loop kept multiplying by ten: a signed overflow
// (UBSan, in the fuzz build; corpus/postgres_fuzz/command_tag_of_letters_overflowed_the_count).
TEST_F(PgConnectionTest, ACommandTagCountIsReadOnlyWhenItFitsInt64) {
  const string letters(300, 'x');
  const std::vector<std::pair<string, int64_t>> tags = {
      {"INSERT 0 999999999999999999", 999999999999999999},  // 18 digits
      {"INSERT 0 9223372036854775807", -1},                 // 19 digits
      {"SELECT 99999999999999999999999999", -1},
      {"SELECT " + letters, -1},
      {"SELECT 12x", -1},
      {"SELECT ", -1},
      {"DELETE 7", 7},
  };
  for (const auto& [tag, rows] : tags) {
    Send(true, Query("SELECT 1"));
    Send(false, Complete(tag) + Z());
  }
  Drain();
  ASSERT_EQ(records_.size(), tags.size());
  for (size_t i = 0; i < tags.size(); ++i) {
    SCOPED_TRACE(tags[i].first);
    EXPECT_EQ(Body(i).tag_rows, tags[i].second);
  }
}

TEST_F(PgConnectionTest, ExecuteOfAStatementPreparedBeforeKspanLookedHasNoText) {
  req_pos_ = resp_pos_ = 900;  // joined mid-stream
  Send(true, Bind("", "s9", "1") + Execute("") + Sync());
  Send(false, Msg('2', "") + Complete("DELETE 1") + Z());
  Drain();
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_TRUE(Body(0).query_unknown);
  EXPECT_EQ(Body(0).query, "");
  EXPECT_EQ(Body(0).command_tag, "DELETE");
  EXPECT_EQ(Body(0).database, "");
}

// The same session cut into syscalls of every size gives the same records.
TEST_F(PgConnectionTest, SplitAnywhereGivesTheSameRecords) {
  const string req = Startup("u", "d") + Query("SELECT 1") + Parse("s", "SELECT $1") + Bind("", "s", "v") +
                     Execute("") + Sync() + Msg('X', "");
  const string resp = Msg('R', Be32(0)) + Z() + RowDesc() + Row("1") + Complete("SELECT 1") + Z() +
                      Msg('1', "") + Msg('2', "") + Row("v") + Complete("SELECT 1") + Z();
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
    ASSERT_EQ(records_.size(), 4u);
    EXPECT_EQ(Body(0).database, "d");
    EXPECT_EQ(Body(1).query, "SELECT ?");
    EXPECT_EQ(Body(1).data_rows, 1u);
    EXPECT_EQ(Body(2).query, "SELECT $1");
    EXPECT_EQ(Body(2).data_rows, 1u);
    EXPECT_EQ(Body(3).unit, Unit::kTerminate);
    EXPECT_EQ(Losses(), 0u);
  }
}

TEST_F(PgConnectionTest, GarbageIsCountedNotParsed) {
  Send(true, Startup("u", "d"));
  Send(false, Msg('R', Be32(0)) + Z());
  Send(true, string("\x7f\x7f garbage that is no message\n", 30) + Query("SELECT 2"));
  Send(false, Complete("SELECT 0") + Z());
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(Body(1).query, "SELECT ?");
  EXPECT_GE(stats_.frames_invalid, 1u);
}

// tests/fuzz/corpus/postgres_fuzz/resync_candidate_of_exactly_16_mib: after garbage, a
// PortalSuspended ('s') announcing exactly 16 MiB. The check on 2-4 bytes (the length's high
// byte is 0) said no, the check on 5 said yes, so where a syscall cut it decided whether the
// resynchronisation took it, and with it whether the ReadyForQuery after it answered.
TEST(PgParse, ACandidateCutShortIsJudgedAsItIsWhole) {
  for (const char type : {'s', '1', 'D', 'C', 'Z'}) {
    for (const uint32_t len : {4u, 5u, (1u << 24) - 1, 1u << 24, (1u << 24) + 5, 0x7fffffffu}) {
      const string wire = string(1, type) + Be32(len) + "\x01";
      const bool whole = FindFrameBoundary(MessageType::kResponse, wire, 0, nullptr) == 0;
      if (len >= (1u << 24)) EXPECT_FALSE(whole) << type << ' ' << len;
      if (!whole) continue;  // cut short it may still wait on more bytes: they refuse it then
      for (size_t cut = 2; cut < 5; ++cut) {
        EXPECT_EQ(FindFrameBoundary(MessageType::kResponse, wire.substr(0, cut), 0, nullptr), 0u)
            << type << ' ' << len << " refused cut at " << cut << ", taken whole";
      }
    }
  }
}

// ---- COPY -------------------------------------------------------------------------------

string CopyRows(int first, int n) {
  string out;
  for (int i = first; i < first + n; ++i)
    out += Msg('d', std::to_string(i) + "\tname-" + std::to_string(i) + "\n");
  return out;
}

TEST_F(PgConnectionTest, CopyFromStdinIsOneSpanWithTheRowsOfCommandComplete) {
  Send(true, Startup("u", "shop"));
  Send(false, Msg('R', Be32(0)) + Z());
  Send(true, Query("COPY users (id, name) FROM STDIN"));
  Send(false, Msg('G', string("\0\0\x02\0\0\0\0", 7)));
  Send(true, CopyRows(1, 3));
  Send(true, Msg('c', ""));
  Send(false, Complete("COPY 3") + Z());
  Send(true, Query("SELECT 1"));
  Send(false, RowDesc() + Row("1") + Complete("SELECT 1") + Z());
  Drain();
  ASSERT_EQ(records_.size(), 4u);
  EXPECT_EQ(Body(1).unit, Unit::kQuery);
  EXPECT_EQ(Body(1).operation, "COPY");
  EXPECT_TRUE(Body(1).copy_in);
  EXPECT_FALSE(Body(1).copy_out);
  EXPECT_EQ(Body(1).command_tag, "COPY");
  EXPECT_EQ(Body(1).tag_rows, 3);
  EXPECT_EQ(Body(2).unit, Unit::kCopyData);  // the rows and CopyDone: one unit, no answer
  EXPECT_FALSE(records_[2].response_missing);
  EXPECT_EQ(Body(3).query, "SELECT ?");
  EXPECT_EQ(Body(3).data_rows, 1u);
  EXPECT_EQ(Losses(), 0u);
}

// libpq writes COPY data in 8 KiB buffers cut anywhere; kspan captures 4 KiB of each: the
// holes swallow CopyData headers, and the last write's hole the CopyDone. Nothing is a
// parse failure, the COPY's span has its rows, and the next query parses.
TEST_F(PgConnectionTest, CopyFromStdinAcrossCaptureHoles) {
  for (const size_t write : {8192, 8000, 5000}) {
    SCOPED_TRACE(write);
    SetUp();
    records_.clear();
    stats_ = {};
    req_pos_ = resp_pos_ = 0;
    Send(true, Startup("u", "shop"));
    Send(false, Msg('R', Be32(0)) + Z());
    Send(true, Query("COPY t FROM STDIN"));
    Send(false, Msg('G', string("\0\0\x01\0\0", 5)));
    const string data = CopyRows(1, 5000) + Msg('c', "");
    for (size_t i = 0; i < data.size(); i += write) {
      const string w = data.substr(i, write);
      Send(true, w.substr(0, 4096), static_cast<uint32_t>(w.size()));
    }
    Send(false, Complete("COPY 5000") + Z());
    Send(true, Query("SELECT count(*) FROM t"));
    Send(false, RowDesc() + Row("5000") + Complete("SELECT 1") + Z());
    Drain();
    ASSERT_EQ(records_.size(), 4u);
    EXPECT_TRUE(Body(1).copy_in);
    EXPECT_EQ(Body(1).tag_rows, 5000);
    EXPECT_EQ(Body(2).unit, Unit::kCopyData);
    EXPECT_EQ(Body(3).query, "SELECT count(*) FROM t");
    EXPECT_EQ(Body(3).data_rows, 1u);
    EXPECT_EQ(stats_.frames_invalid, 0u);
    EXPECT_EQ(Losses(), 0u);
  }
}

// The server streams COPY TO STDOUT in 8 KiB sends; kspan captures 4 KiB of each. The
// answer's end (CopyDone, CommandComplete, ReadyForQuery) may fall in a hole: then the next
// answer, at the next send's start, ends it and pairs with its own query by time.
TEST_F(PgConnectionTest, CopyToStdoutAcrossCaptureHoles) {
  for (const int rows : {3000, 3001, 3050, 3200}) {
    SCOPED_TRACE(rows);
    SetUp();
    records_.clear();
    stats_ = {};
    req_pos_ = resp_pos_ = 0;
    Send(true, Startup("u", "shop"));
    Send(false, Msg('R', Be32(0)) + Z());
    Send(true, Query("COPY t TO STDOUT"));
    const string tag = Complete("COPY " + std::to_string(rows));
    const string answer = Msg('H', string("\0\0\x01\0\0", 5)) + CopyRows(1, rows) + Msg('c', "") + tag + Z();
    for (size_t i = 0; i < answer.size(); i += 8192) {
      const string w = answer.substr(i, 8192);
      Send(false, w.substr(0, 4096), static_cast<uint32_t>(w.size()));
    }
    // The count is known when CommandComplete's bytes were captured.
    const size_t tag_at = answer.size() - 6 - tag.size();
    const bool tag_captured =
        tag_at / 8192 == (tag_at + tag.size() - 1) / 8192 && (tag_at + tag.size() - 1) % 8192 < 4096;
    Send(true, Query("SELECT 2"));
    Send(false, RowDesc() + Row("2") + Complete("SELECT 1") + Z());
    conn_->Close(Unanswered::kNoResponse);
    Drain();
    ASSERT_EQ(records_.size(), 3u);
    EXPECT_EQ(Body(1).operation, "COPY");
    EXPECT_TRUE(Body(1).copy_out);
    EXPECT_FALSE(records_[1].response_missing);
    EXPECT_EQ(Body(1).tag_rows, tag_captured ? rows : -1);
    EXPECT_EQ(Body(2).query, "SELECT ?");
    EXPECT_FALSE(records_[2].response_missing);
    EXPECT_EQ(Body(2).data_rows, 1u);
    EXPECT_EQ(stats_.frames_invalid, 0u);
    EXPECT_EQ(stats_.responses_unmatched, 0u);
  }
}

// ---- SELECT answers larger than the capture ------------------------------------------

// Two text columns whose values end in bytes a header starts with and are followed by
// lengths (zero high bytes): after a hole, any of them could pass for a message header.
string FakeHeaderRows(int n) {
  static const char* const kFirst[] = {"abZ", "C", "x1", "T", "D", "yE", "Z", "I"};
  static const char* const kSecond[] = {"Iabcd", "SELECT 3", "Tq", "Iwxyz", "2", "n"};
  string out;
  for (int i = 0; i < n; ++i) {
    // Five-byte values after a value ending in Z: "Z" 0 0 0 5 "I" inside a row.
    const string a = kFirst[i % 8], b = kSecond[i % 6] + (i % 3 == 0 ? "" : std::to_string(i));
    out += Msg('D', string("\0\x02", 2) + Be32(static_cast<uint32_t>(a.size())) + a +
                        Be32(static_cast<uint32_t>(b.size())) + b);
  }
  return out;
}

// A client reads a large SELECT answer in 16 KiB receives of which kspan captures 4 KiB:
// holes swallow DataRow headers. The answer is one record whose rows are right (its end,
// CommandComplete and ReadyForQuery, captured: the count of "SELECT n") or absent (the end
// in a hole: the next answer, after the next query went out, ends it); never a wrong count,
// never a parse failure, and the next query pairs with its own answer.
TEST_F(PgConnectionTest, SelectLargerThanTheCaptureHasItsRowsOrNone) {
  int right = 0, absent = 0;
  for (const int rows : {2000, 2001, 2100, 2300, 2450, 3000, 3333}) {
    for (const size_t recv : {16384, 8192, 5000}) {
      SCOPED_TRACE(std::to_string(rows) + " rows, receives of " + std::to_string(recv));
      SetUp();
      records_.clear();
      stats_ = {};
      req_pos_ = resp_pos_ = 0;
      Send(true, Startup("u", "shop"));
      Send(false, Msg('R', Be32(0)) + Z());
      Send(true, Query("SELECT a, b FROM t"));
      const string answer =
          RowDesc() + FakeHeaderRows(rows) + Complete("SELECT " + std::to_string(rows)) + Z();
      for (size_t i = 0; i < answer.size(); i += recv) {
        const string w = answer.substr(i, recv);
        Send(false, w.substr(0, 4096), static_cast<uint32_t>(w.size()));
      }
      Send(true, Query("SELECT 2"));
      Send(false, RowDesc() + Row("2") + Complete("SELECT 1") + Z());
      Send(true, Query("SELECT 3"));
      Send(false, RowDesc() + Row("3") + Complete("SELECT 1") + Z());
      conn_->Close(Unanswered::kNoResponse);
      Drain();
      ASSERT_EQ(records_.size(), 4u);
      EXPECT_EQ(Body(1).query, "SELECT a, b FROM t");
      EXPECT_FALSE(records_[1].response_missing);
      EXPECT_TRUE(Body(1).framing_lost);
      EXPECT_TRUE(Body(1).data_rows == static_cast<uint64_t>(rows) || Body(1).data_rows == 0u)
          << Body(1).data_rows;
      // Rows when the last receive holds all of CommandComplete and ReadyForQuery.
      const size_t tail = answer.size() - (answer.size() - 1) / recv * recv;
      const bool end_captured = tail <= 4096 && tail >= Complete("SELECT " + std::to_string(rows)).size() + 6;
      EXPECT_EQ(Body(1).data_rows, end_captured ? static_cast<uint64_t>(rows) : 0u);
      (end_captured ? right : absent)++;
      EXPECT_FALSE(Body(1).errored);
      for (size_t i : {2u, 3u}) {
        EXPECT_FALSE(records_[i].response_missing) << i;
        EXPECT_EQ(Body(i).data_rows, 1u) << i;
      }
      EXPECT_EQ(Body(2).query, "SELECT ?");
      EXPECT_EQ(stats_.frames_invalid, 0u);
      EXPECT_EQ(stats_.responses_unmatched, 0u);
      EXPECT_EQ(stats_.responses_unmatched_at_close, 0u);
      EXPECT_EQ(stats_.requests_unanswered.Total(), 0u);
    }
  }
  EXPECT_GT(right, 0);
  EXPECT_GT(absent, 0);
}

// A receive that ends inside DataRows exactly where their bytes read 'Z' 0 0 0 5 'I' (a
// value ending in Z, then a five-byte value starting with I) is not the answer's end: no
// well-formed CommandComplete precedes it.
TEST_F(PgConnectionTest, DataRowsEndingLikeReadyForQueryDoNotEndALostAnswer) {
  Send(true, Startup("u", "shop"));
  Send(false, Msg('R', Be32(0)) + Z());
  Send(true, Query("SELECT a, b FROM t"));
  const string rows = FakeHeaderRows(800);
  const string answer = RowDesc() + rows + Complete("SELECT 800") + Z();
  // Receives cut right after a fake "Z\0\0\0\x05I" wherever one is.
  const string fake("Z\0\0\0\x05I", 6);
  std::vector<size_t> cuts;
  for (size_t at = answer.find(fake); at != string::npos; at = answer.find(fake, at + 1))
    cuts.push_back(at + 6);
  ASSERT_GT(cuts.size(), 10u);
  size_t from = 0;
  for (size_t i = 0; i < cuts.size(); i += 4) {
    // A receive with a hole (the answer's framing lost), then one captured whole that ends
    // at the fake ReadyForQuery.
    const string w = answer.substr(from, cuts[i] - from);
    const size_t half = w.size() / 2;
    Send(false, w.substr(0, std::min<size_t>(half, 100)), static_cast<uint32_t>(half));
    Send(false, w.substr(half));
    from = cuts[i];
  }
  Send(false, answer.substr(from));
  Send(true, Query("SELECT 2"));
  Send(false, RowDesc() + Row("2") + Complete("SELECT 1") + Z());
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 3u);
  EXPECT_TRUE(Body(1).framing_lost);
  EXPECT_EQ(Body(1).data_rows, 800u);
  EXPECT_EQ(Body(1).command_tag, "SELECT");
  EXPECT_EQ(Body(2).data_rows, 1u);
  EXPECT_EQ(Losses(), 0u);
}

// An error after some rows (division by zero at row n) ends a lost answer with its SQLSTATE.
TEST_F(PgConnectionTest, LostAnswerEndingInAnErrorKeepsItsSqlstate) {
  Send(true, Startup("u", "shop"));
  Send(false, Msg('R', Be32(0)) + Z());
  Send(true, Query("SELECT 1/(a-900) FROM t"));
  const string answer = RowDesc() + FakeHeaderRows(1000) + Error("22012", "division by zero") + Z();
  for (size_t i = 0; i < answer.size(); i += 8192) {
    const string w = answer.substr(i, 8192);
    Send(false, i + 8192 >= answer.size() ? w : w.substr(0, 4096), static_cast<uint32_t>(w.size()));
  }
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_TRUE(Body(1).framing_lost);
  EXPECT_TRUE(Body(1).errored);
  EXPECT_EQ(Body(1).sqlstate, "22012");
  EXPECT_EQ(Body(1).data_rows, 0u);
  EXPECT_EQ(Losses(), 0u);
}

// A pipelining client: which answer a ReadyForQuery after a hole ends is undecidable, so a
// lost answer keeps no rows and no status, and no answer pairs with the wrong query.
TEST_F(PgConnectionTest, LostAnswersOfAPipeliningClientKeepNoRows) {
  Send(true, Startup("u", "shop"));
  Send(false, Msg('R', Be32(0)) + Z());
  Send(true, Query("SELECT a, b FROM t") + Query("SELECT 2") + Query("SELECT a, b FROM u"));
  const string answers = RowDesc() + FakeHeaderRows(1500) + Complete("SELECT 1500") + Z() + RowDesc() +
                         Row("2") + Complete("SELECT 1") + Z() + RowDesc() + FakeHeaderRows(700) +
                         Complete("SELECT 700") + Z();
  for (size_t i = 0; i < answers.size(); i += 16384) {
    const string w = answers.substr(i, 16384);
    Send(false, w.substr(0, 4096), static_cast<uint32_t>(w.size()));
  }
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 4u);
  for (size_t i = 1; i < 4; ++i) {
    SCOPED_TRACE(i);
    const uint64_t want = i == 1 ? 1500 : i == 2 ? 1 : 700;
    EXPECT_TRUE(Body(i).data_rows == 0 || Body(i).data_rows == want) << Body(i).data_rows;
    EXPECT_FALSE(Body(i).errored);
  }
  EXPECT_EQ(stats_.frames_invalid, 0u);
}

// ---- Queries longer than the capture ---------------------------------------------------

TEST_F(PgConnectionTest, QueryLongerThanTheCaptureKeepsItsSanitisedPrefix) {
  Send(true, Startup("u", "shop"));
  Send(false, Msg('R', Be32(0)) + Z());
  string q = "SELECT id FROM users WHERE id IN (";
  for (int i = 0; i < 2000; ++i) q += std::to_string(i) + ", ";
  q += "1) AND name = 'secret-literal-value'";
  const string wire = Query(q);
  ASSERT_GT(wire.size(), 4096u);
  // The capture ends inside the string literal of a second query, then inside a number.
  string q2 = "UPDATE users SET note = '" + string(5000, 'x') + "' WHERE id = 7";
  for (const string& w : {wire, Query(q2)}) {
    Send(true, w.substr(0, 4096), static_cast<uint32_t>(w.size()));
    Send(false, Complete("SELECT 0") + Z());
  }
  Drain();
  ASSERT_EQ(records_.size(), 3u);
  EXPECT_TRUE(Body(1).query_truncated);
  EXPECT_EQ(Body(1).operation, "SELECT");
  EXPECT_EQ(Body(1).query.substr(0, 36), "SELECT id FROM users WHERE id IN (?,");
  EXPECT_EQ(Body(1).query.substr(Body(1).query.size() - 3), "...");
  EXPECT_EQ(Body(1).query.find('1'), string::npos);
  EXPECT_FALSE(records_[1].response_missing);
  EXPECT_TRUE(Body(2).query_truncated);
  EXPECT_EQ(Body(2).query, "UPDATE users SET note = ?...");
  EXPECT_EQ(Body(2).operation, "UPDATE");
  EXPECT_EQ(stats_.frames_truncated, 2u);
  EXPECT_EQ(Losses(), 0u);
}

TEST_F(PgConnectionTest, ParseLongerThanTheCaptureGivesItsExecutesTheTruncatedText) {
  Send(true, Startup("u", "shop"));
  Send(false, Msg('R', Be32(0)) + Z());
  const string q = "INSERT INTO t VALUES ($1, '" + string(6000, 'y') + "')";
  const string unit = Parse("big", q) + Describe('S', "big") + Sync();
  Send(true, unit.substr(0, 4096), static_cast<uint32_t>(unit.size()));
  Send(false, Msg('1', "") + Msg('t', string("\0\x01\0\0\0\x17", 6)) + Msg('n', "") + Z());
  for (int i = 0; i < 3; ++i) {
    Send(true, Bind("", "big", "v") + Execute("") + Sync());
    Send(false, Msg('2', "") + Complete("INSERT 0 1") + Z());
  }
  Drain();
  ASSERT_EQ(records_.size(), 5u);
  for (size_t i = 1; i < 5; ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(Body(i).query_truncated);
    EXPECT_EQ(Body(i).query, "INSERT INTO t VALUES ($1, ?...");
    EXPECT_EQ(Body(i).operation, "INSERT");
  }
  EXPECT_EQ(stats_.frames_truncated, 1u);  // one Parse message cut
  EXPECT_EQ(Losses(), 0u);
}

// --db-raw-query-text: the query as sent (literals and all), bounded; sanitised by default.
TEST_F(PgConnectionTest, RawQueryTextOnlyWhenOptedIn) {
  ProtocolOptions raw;
  raw.sql.raw_query_text = true;
  for (const bool opted_in : {false, true}) {
    SCOPED_TRACE(opted_in);
    conn_ = Spec().make(true, opted_in ? raw : ProtocolOptions{});
    records_.clear();
    req_pos_ = resp_pos_ = 0;
    Send(true, Startup("u", "shop"));
    Send(false, Msg('R', Be32(0)) + Z());
    Send(true, Query("SELECT * FROM users WHERE email = 'bob@example.com' -- hi"));
    Send(false, Complete("SELECT 0") + Z());
    Send(true, Parse("s", "UPDATE t SET a = 5 WHERE b = $1") + Bind("", "s", "x") + Execute("") + Sync());
    Send(false, Msg('1', "") + Msg('2', "") + Complete("UPDATE 1") + Z());
    Send(true, Query("SELECT '" + string(3000, 'z') + "'"));
    Send(false, Complete("SELECT 1") + Z());
    Drain();
    ASSERT_EQ(records_.size(), 4u);
    if (opted_in) {
      EXPECT_EQ(Body(1).query, "SELECT * FROM users WHERE email = 'bob@example.com' -- hi");
      EXPECT_EQ(Body(2).query, "UPDATE t SET a = 5 WHERE b = $1");
      EXPECT_EQ(Body(3).query, "SELECT '" + string(2040, 'z') + "...");
    } else {
      EXPECT_EQ(Body(1).query, "SELECT * FROM users WHERE email = ?");
      EXPECT_EQ(Body(2).query, "UPDATE t SET a = ? WHERE b = $1");
      EXPECT_EQ(Body(3).query, "SELECT ?");
    }
  }
}

// sslmode=require on the raw socket: SSLRequest, 'S', then the TLS handshake: ciphertext
// in both directions, no parse failure (the plaintext comes as a new stream from the probes).
TEST_F(PgConnectionTest, SslRequestAcceptedThenCiphertextIsNoFailure) {
  Send(true, Be32(8) + Be32(80877103));
  Send(false, "S");
  Send(true, string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + string(500, '\x5a'));
  Send(false, string("\x16\x03\x03\x00\x7a\x02", 6) + string(300, '\x00'));
  Send(true, string("\x17\x03\x03\x00\x40", 5) + string(64, '\x51'));
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(Body(0).unit, Unit::kSslRequest);
  EXPECT_EQ(Body(0).ssl_answer, 'S');
  EXPECT_EQ(Losses(), 0u);
}

// ---- Whole-frame parsing: every truncated prefix, invalid input ------------------------

TEST(PgParse, EveryTruncatedPrefixNeedsMoreDataAndLeavesInputUntouched) {
  const std::pair<MessageType, string> wires[] = {
      {MessageType::kRequest, Startup("alice", "shop")},
      {MessageType::kRequest, Query("SELECT 1")},
      {MessageType::kRequest, Parse("s", "SELECT $1") + Bind("", "s", "x") + Execute("") + Sync()},
      {MessageType::kResponse, RowDesc() + Row("x") + Complete("SELECT 1") + Z()},
      {MessageType::kResponse, Error("42601", "syntax error") + Z()},
  };
  for (const auto& [type, wire] : wires) {
    State st;
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
}

TEST(PgParse, InvalidInput) {
  const std::pair<MessageType, string> wires[] = {
      {MessageType::kRequest, "GET / HTTP/1.1\r\n"},
      {MessageType::kRequest, Be32(8) + Be32(12345)},       // unknown code
      {MessageType::kRequest, Be32(20000) + Be32(196608)},  // startup too long
      {MessageType::kRequest, string("Q\0\0\0\x02", 5)},    // length below 4
      {MessageType::kRequest, string("Q\x7f\0\0\0", 5)},    // over 1 GiB
      {MessageType::kResponse, string("?\0\0\0\x04", 5)},   // unknown type
      {MessageType::kResponse, Msg('Z', "II")},             // ReadyForQuery of 2 bytes
  };
  for (const auto& [type, wire] : wires) {
    State st;
    string_view buf = wire;
    Frame f;
    EXPECT_EQ(ParseFrame(type, &buf, &f, &st), ParseState::kInvalid) << wire;
    EXPECT_EQ(buf.size(), wire.size());
  }
}

TEST(PgDetect, StartupAndSslRequestOnly) {
  EXPECT_EQ(Spec().detect(Startup("alice", "shop")), Detection::kMatch);
  EXPECT_EQ(Spec().detect(Be32(8) + Be32(80877103)), Detection::kMatch);
  EXPECT_EQ(Spec().detect(Be32(8) + Be32(80877104)), Detection::kMatch);  // GSSENCRequest
  EXPECT_EQ(Spec().detect(Startup("alice", "shop").substr(0, 6)), Detection::kNeedMoreData);
  EXPECT_EQ(Spec().detect(Startup("alice", "shop").substr(0, 11)), Detection::kNeedMoreData);
  EXPECT_EQ(Spec().detect(Query("SELECT 1")), Detection::kNoMatch);
  EXPECT_EQ(Spec().detect("GET / HTTP/1.1\r\n"), Detection::kNoMatch);
  EXPECT_EQ(Spec().detect(Be32(8) + Be32(196608)), Detection::kNoMatch);  // no user
  EXPECT_EQ(Spec().detect("*1\r\n$4\r\nPING\r\n"), Detection::kNoMatch);
  EXPECT_EQ(Spec().name, "postgres");
  EXPECT_TRUE(Spec().callee_spans);  // the server's side is a SERVER span
  for (const ProtocolSpec& spec : Protocols()) {
    if (spec.name == "postgres" || !spec.detect) continue;
    EXPECT_NE(spec.detect(Startup("alice", "shop")), Detection::kMatch) << spec.name;
  }
}

// ---- Spans --------------------------------------------------------------------------------

correlator::DbConnContext Client() {
  correlator::DbConnContext c;
  c.tuple.family = AF_INET;
  c.tuple.local = {"127.0.0.1", 40000};
  c.tuple.remote = {"127.0.0.1", 5432};
  return c;
}

TEST(PgSpan, QueryErrorBatchAndNoSpanForStartup) {
  Record r;
  r.unit = Unit::kExtended;
  r.database = "shop";
  r.query = "SELECT price FROM items WHERE id = $1";
  r.operation = "SELECT";
  r.executes = 1;
  r.data_rows = 3;
  r.request = {1000, 2000, 7, 0, 7, 0};
  r.response = {5000, 6000, 7, 0, 7, 0};
  auto span = correlator::BuildPostgresSpan(r, Client(), nullptr);
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->name, "SELECT items");  // the one table it names, else the database
  EXPECT_EQ(span->kind, model::SpanKind::kClient);
  EXPECT_EQ(span->end_time_unix_nano, 6000u);
  auto attr = [&](const string& k) -> string {
    for (const auto& a : span->attributes) {
      if (a.key != k) continue;
      if (const auto* s = std::get_if<string>(&a.value)) return *s;
      if (const auto* i = std::get_if<int64_t>(&a.value)) return std::to_string(*i);
    }
    return "<absent>";
  };
  EXPECT_EQ(attr("db.system.name"), "postgresql");
  EXPECT_EQ(attr("db.namespace"), "shop");
  EXPECT_EQ(attr("db.collection.name"), "items");
  EXPECT_EQ(attr("db.operation.name"), "SELECT");
  EXPECT_EQ(attr("db.query.text"), "SELECT price FROM items WHERE id = $1");
  EXPECT_EQ(attr("db.response.returned_rows"), "3");
  EXPECT_EQ(attr("db.operation.batch.size"), "<absent>");
  EXPECT_EQ(span->status_code, model::StatusCode::kUnset);

  r.errored = true;
  r.sqlstate = "23505";
  r.executes = 2;
  span = correlator::BuildPostgresSpan(r, Client(), nullptr);
  EXPECT_EQ(span->name, "BATCH SELECT items");
  r.query = "SELECT ?";
  span = correlator::BuildPostgresSpan(r, Client(), nullptr);
  EXPECT_EQ(span->name, "BATCH SELECT shop");
  EXPECT_EQ(attr("db.collection.name"), "<absent>");
  EXPECT_EQ(span->status_code, model::StatusCode::kError);
  EXPECT_EQ(span->status_message, "");
  EXPECT_EQ(attr("db.response.status_code"), "23505");
  EXPECT_EQ(attr("error.type"), "23505");
  EXPECT_EQ(attr("db.operation.batch.size"), "2");

  r.unit = Unit::kStartup;
  EXPECT_FALSE(correlator::BuildPostgresSpan(r, Client(), nullptr).has_value());
  r.unit = Unit::kPassword;
  EXPECT_FALSE(correlator::BuildPostgresSpan(r, Client(), nullptr).has_value());
  r.unit = Unit::kQuery;
  correlator::DbConnContext server = Client();
  server.is_server = true;
  EXPECT_TRUE(correlator::BuildPostgresSpan(r, server, nullptr).has_value());
  r.unit = Unit::kStartup;
  EXPECT_FALSE(correlator::BuildPostgresSpan(r, server, nullptr).has_value());
}

TEST(PgSpan, CopyRowsAndATruncatedQuery) {
  Record r;
  r.unit = Unit::kQuery;
  r.database = "shop";
  r.query = "COPY users (id, name) FROM STDIN";
  r.operation = "COPY";
  r.copy_in = true;
  r.command_tag = "COPY";
  r.tag_rows = 5000;
  auto span = correlator::BuildPostgresSpan(r, Client(), nullptr);
  ASSERT_TRUE(span.has_value());
  auto attr = [&](const string& k) -> string {
    for (const auto& a : span->attributes) {
      if (a.key != k) continue;
      if (const auto* s = std::get_if<string>(&a.value)) return *s;
      if (const auto* i = std::get_if<int64_t>(&a.value)) return std::to_string(*i);
      if (const auto* b = std::get_if<bool>(&a.value)) return *b ? "true" : "false";
    }
    return "<absent>";
  };
  EXPECT_EQ(span->name, "COPY users");
  EXPECT_EQ(attr("db.collection.name"), "users");
  EXPECT_EQ(attr("kspan.db.response.affected_rows"), "5000");
  EXPECT_EQ(attr("db.response.returned_rows"), "<absent>");
  EXPECT_EQ(attr("kspan.db.query.truncated"), "<absent>");

  r.copy_in = false;
  r.copy_out = true;
  r.query = "COPY (SELECT * FROM users) TO STDOUT";
  span = correlator::BuildPostgresSpan(r, Client(), nullptr);
  EXPECT_EQ(span->name, "COPY shop");
  EXPECT_EQ(attr("db.response.returned_rows"), "5000");
  EXPECT_EQ(attr("kspan.db.response.affected_rows"), "<absent>");

  r.copy_out = false;
  r.tag_rows = -1;
  r.query = "SELECT * FROM users WHERE name = ?...";
  r.operation = "SELECT";
  r.query_truncated = true;
  span = correlator::BuildPostgresSpan(r, Client(), nullptr);
  EXPECT_EQ(span->name, "SELECT shop");  // a prefix names no collection
  EXPECT_EQ(attr("db.query.text"), "SELECT * FROM users WHERE name = ?...");
  EXPECT_EQ(attr("kspan.db.query.truncated"), "true");
}

// ---- The server's side ---------------------------------------------------------------------

// The backend's view of a session: it reads the startup, the password, the queries and the
// extended-query units, and writes the answers. The records are the client's, and the
// requests that make no span of their own are announced so.
class PgServerConnectionTest : public PgConnectionTest {
 protected:
  void SetUp() override {
    server_ = true;
    conn_ = Spec().make(false, ProtocolOptions{});
  }
  // The session of StartupPasswordQueriesAndErrors, an extended-query unit and a Terminate.
  void Session(const string& startup) {
    LoginAndSelect(startup);
    Send(true, Parse("s1", "UPDATE users SET name = $1 WHERE id = 7") + Bind("", "s1", "bob") + Execute("") +
                   Sync());
    Send(false, Msg('1', "") + Msg('2', "") + Complete("UPDATE 1") + Z());
    Send(true, Query("SELECT * FROM nope"));
    Send(false, Error("42P01", "relation \"nope\" does not exist") + Z());
    Send(true, Msg('X', ""));
    conn_->Close(Unanswered::kNoResponse);
    Drain();
  }
};

correlator::DbConnContext Server() {
  correlator::DbConnContext c;
  c.is_server = true;
  c.tuple.family = AF_INET;
  c.tuple.local = {"10.0.0.5", 5432};
  c.tuple.remote = {"10.0.0.9", 40000};
  return c;
}

string Attr(const model::Span& span, const string& k) {
  for (const auto& a : span.attributes) {
    if (a.key != k) continue;
    if (const auto* s = std::get_if<string>(&a.value)) return *s;
    if (const auto* i = std::get_if<int64_t>(&a.value)) return std::to_string(*i);
  }
  return "<absent>";
}

TEST_F(PgServerConnectionTest, TheBackendReadsTheUnitsAndWritesTheAnswers) {
  Session(Startup("alice", "shop"));
  ASSERT_EQ(records_.size(), 7u);
  EXPECT_EQ(Losses(), 0u);
  EXPECT_EQ(Body(0).unit, Unit::kSslRequest);
  EXPECT_EQ(Body(0).ssl_answer, 'N');
  EXPECT_EQ(Body(1).unit, Unit::kStartup);
  EXPECT_EQ(Body(1).database, "shop");
  EXPECT_FALSE(Body(1).replication);
  EXPECT_EQ(Body(2).unit, Unit::kPassword);
  EXPECT_EQ(Body(3).query, "SELECT name FROM users WHERE email = ? AND id IN (?)");
  EXPECT_EQ(Body(3).data_rows, 2u);  // the DataRows it wrote
  EXPECT_EQ(Body(4).unit, Unit::kExtended);
  EXPECT_EQ(Body(4).query, "UPDATE users SET name = $1 WHERE id = ?");
  EXPECT_EQ(Body(4).tag_rows, 1);
  EXPECT_EQ(Body(5).sqlstate, "42P01");
  EXPECT_EQ(Body(6).unit, Unit::kTerminate);
  // Timing as the backend sees it: the request from its read, the answer to its last write.
  EXPECT_LT(records_[3].request.start_ns, records_[3].response.start_ns);

  // Only the operations would open a node on the server's side.
  ASSERT_EQ(started_.size(), 7u);
  std::vector<bool> no_span;
  for (const RequestStart& s : started_) no_span.push_back(s.no_span || s.callee_no_span);
  EXPECT_EQ(no_span, (std::vector<bool>{true, true, true, false, false, false, true}));

  // SERVER spans of the three operations, nothing for the rest; no secret in any of them.
  std::vector<model::Span> spans;
  for (size_t i = 0; i < records_.size(); ++i) {
    if (auto span = correlator::BuildPostgresSpan(Body(i), Server(), nullptr)) spans.push_back(*span);
  }
  ASSERT_EQ(spans.size(), 3u);
  const model::Span& select = spans[0];
  EXPECT_EQ(select.kind, model::SpanKind::kServer);
  EXPECT_EQ(select.name, "SELECT users");
  EXPECT_EQ(select.start_time_unix_nano, records_[3].request.start_ns);
  EXPECT_EQ(select.end_time_unix_nano, records_[3].response.end_ns);
  EXPECT_EQ(Attr(select, "db.system.name"), "postgresql");
  EXPECT_EQ(Attr(select, "db.operation.name"), "SELECT");
  EXPECT_EQ(Attr(select, "db.namespace"), "shop");
  EXPECT_EQ(Attr(select, "db.collection.name"), "users");
  EXPECT_EQ(Attr(select, "db.query.text"), "SELECT name FROM users WHERE email = ? AND id IN (?)");
  EXPECT_EQ(Attr(select, "db.response.returned_rows"), "2");
  EXPECT_EQ(Attr(select, "server.address"), "10.0.0.5");  // the server's own end
  EXPECT_EQ(Attr(select, "server.port"), "5432");
  EXPECT_EQ(Attr(select, "client.address"), "10.0.0.9");  // the caller
  EXPECT_EQ(Attr(select, "client.port"), "40000");
  EXPECT_EQ(Attr(select, "network.peer.address"), "10.0.0.9");
  EXPECT_EQ(Attr(select, "network.peer.port"), "40000");
  EXPECT_EQ(select.status_code, model::StatusCode::kUnset);
  EXPECT_EQ(spans[1].name, "UPDATE users");
  EXPECT_EQ(spans[1].kind, model::SpanKind::kServer);
  EXPECT_EQ(spans[2].status_code, model::StatusCode::kError);
  EXPECT_EQ(Attr(spans[2], "db.response.status_code"), "42P01");
  EXPECT_EQ(Attr(spans[2], "error.type"), "42P01");
  for (const model::Span& span : spans) {
    for (const auto& a : span.attributes) {
      if (const auto* v = std::get_if<string>(&a.value)) {
        EXPECT_EQ(v->find("hunter2"), string::npos) << a.key;
        EXPECT_EQ(v->find("bob"), string::npos) << a.key;
        EXPECT_EQ(v->find("does not exist"), string::npos) << a.key;
      }
    }
  }
}

// The same bytes give the same records in either role: the client's parse is the oracle.
TEST_F(PgServerConnectionTest, TheSameRecordsAsTheClientsSide) {
  Session(Startup("alice", "shop"));
  std::vector<protocols::Record> as_server = std::move(records_);
  records_.clear();
  server_ = false;
  conn_ = Spec().make(true, ProtocolOptions{});
  req_pos_ = resp_pos_ = 0;
  Session(Startup("alice", "shop"));
  ASSERT_EQ(as_server.size(), records_.size());
  for (size_t i = 0; i < records_.size(); ++i) {
    const Record& s = std::get<Record>(as_server[i].body);
    const Record& c = Body(i);
    EXPECT_EQ(s.unit, c.unit) << i;
    EXPECT_EQ(s.query, c.query) << i;
    EXPECT_EQ(s.operation, c.operation) << i;
    EXPECT_EQ(s.database, c.database) << i;
    EXPECT_EQ(s.sqlstate, c.sqlstate) << i;
    EXPECT_EQ(s.data_rows, c.data_rows) << i;
    EXPECT_EQ(s.tag_rows, c.tag_rows) << i;
    EXPECT_EQ(as_server[i].response_missing, records_[i].response_missing) << i;
  }
}

// --db-raw-query-text applies to the server's spans as to the client's.
TEST_F(PgServerConnectionTest, RawQueryTextOnlyWhenOptedIn) {
  ProtocolOptions raw;
  raw.sql.raw_query_text = true;
  conn_ = Spec().make(false, raw);
  Session(Startup("alice", "shop"));
  ASSERT_EQ(records_.size(), 7u);
  auto span = correlator::BuildPostgresSpan(Body(3), Server(), nullptr);
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(Attr(*span, "db.query.text"),
            "SELECT name FROM users WHERE email = 'bob@example.com' AND id IN (1, 2, 3)");
}

// A replication connection (a walsender: physical or logical) makes no SERVER span: its
// START_REPLICATION streams for the session's life. Its client still gets its CLIENT spans.
TEST_F(PgServerConnectionTest, ReplicationSessionsMakeNoServerSpan) {
  for (const char* value : {"true", "database", "on", "1"}) {
    SCOPED_TRACE(value);
    conn_ = Spec().make(false, ProtocolOptions{});
    records_.clear();
    started_.clear();
    req_pos_ = resp_pos_ = 0;
    string params = Cstr("user") + Cstr("rep") + Cstr("replication") + Cstr(value) + '\0';
    Send(true, Be32(static_cast<uint32_t>(params.size() + 8)) + Be32(196608) + params);
    Send(false, Msg('R', Be32(0)) + Z());
    Send(true, Query("IDENTIFY_SYSTEM"));
    Send(false, RowDesc() + Row("x") + Complete("IDENTIFY_SYSTEM") + Z());
    Drain();
    ASSERT_EQ(records_.size(), 2u);
    EXPECT_TRUE(Body(1).replication);
    ASSERT_EQ(started_.size(), 2u);
    EXPECT_TRUE(started_[1].callee_no_span);  // the client's side still opens its node
    EXPECT_FALSE(started_[1].no_span);
    EXPECT_FALSE(correlator::BuildPostgresSpan(Body(1), Server(), nullptr).has_value());
    EXPECT_TRUE(correlator::BuildPostgresSpan(Body(1), Client(), nullptr).has_value());
  }
  // "replication=false" is an ordinary session.
  conn_ = Spec().make(false, ProtocolOptions{});
  records_.clear();
  started_.clear();
  req_pos_ = resp_pos_ = 0;
  string params = Cstr("user") + Cstr("u") + Cstr("replication") + Cstr("false") + '\0';
  Send(true, Be32(static_cast<uint32_t>(params.size() + 8)) + Be32(196608) + params);
  Send(false, Msg('R', Be32(0)) + Z());
  Send(true, Query("SELECT 1"));
  Send(false, Row("1") + Complete("SELECT 1") + Z());
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_FALSE(Body(1).replication);
  EXPECT_FALSE(started_[1].callee_no_span || started_[1].no_span);
  EXPECT_TRUE(correlator::BuildPostgresSpan(Body(1), Server(), nullptr).has_value());
}

// Through the span builder and the stitcher, on either side: a session opens a node for
// each operation only, every node completes, and exactly the three spans are exported (a
// startup or password node would never complete and hold its trace until max_hold).
TEST_F(PgServerConnectionTest, OnlyOperationsOpenNodesAndEveryNodeCompletes) {
  for (const bool server : {true, false}) {
    SCOPED_TRACE(server ? "server" : "client");
    server_ = server;
    conn_ = Spec().make(!server, ProtocolOptions{});
    records_.clear();
    started_.clear();
    req_pos_ = resp_pos_ = 0;
    Session(Startup("alice", "shop"));
    const auto run =
        kspan::testing::RunThroughSpanPipeline(Spec(), server, server ? Server().tuple : Client().tuple,
                                               std::move(started_), std::move(records_), now_);
    EXPECT_EQ(run.nodes_opened, 3u);
    EXPECT_EQ(run.nodes_left, 0u);
    ASSERT_EQ(run.emitted.size(), 3u);
    for (const model::Span& s : run.emitted) {
      EXPECT_EQ(s.kind, server ? model::SpanKind::kServer : model::SpanKind::kClient);
      EXPECT_FALSE(s.parent_span_id.IsValid()) << s.name;  // nothing on the wire: a trace of its own
    }
  }
}

}  // namespace
}  // namespace kspan::protocols::postgres
