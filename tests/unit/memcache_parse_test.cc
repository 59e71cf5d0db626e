// The memcached text protocol parser, pairing and registered connection, driven by bytes
// alone (no kernel).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocols/http1/spec.h"
#include "protocols/memcache/parse.h"
#include "protocols/memcache/spec.h"
#include "protocols/registry.h"

namespace kspan::protocols::memcache {
namespace {

using std::string;
using std::string_view;

constexpr MessageType kReq = MessageType::kRequest;
constexpr MessageType kResp = MessageType::kResponse;

// One frame of a case and what it must parse to. Every field is checked, so a missing
// comma that merges two wires fails the case rather than passing silently.
struct Want {
  string_view wire;
  // Requests.
  Command command = Command::kGet;
  uint32_t keys = 0;
  bool noreply = false;
  // Responses.
  Result result = Result::kNone;
  uint32_t values = 0;
  uint64_t number = 0;
  string_view message = "";
  // Both: data block bytes.
  uint64_t bytes = 0;
};

Want Cmd(string_view wire, Command c, uint32_t keys, bool noreply = false, uint64_t bytes = 0) {
  return Want{.wire = wire, .command = c, .keys = keys, .noreply = noreply, .bytes = bytes};
}
Want Ans(string_view wire, Result r, uint32_t values = 0, uint64_t bytes = 0, uint64_t number = 0,
         string_view message = "") {
  return Want{
      .wire = wire, .result = r, .values = values, .number = number, .message = message, .bytes = bytes};
}

struct WellFormedCase {
  const char* name;
  MessageType type;
  std::vector<Want> frames;
};

string Wire(const WellFormedCase& c) {
  string s;
  for (const Want& w : c.frames) s += w.wire;
  return s;
}

void ExpectFrame(const Want& w, MessageType type, const Frame& f) {
  EXPECT_TRUE(FrameComplete(f));
  EXPECT_EQ(f.value_bytes, w.bytes);
  if (type == kReq) {
    EXPECT_EQ(CommandName(f.command), CommandName(w.command));
    EXPECT_EQ(f.keys, w.keys);
    EXPECT_EQ(f.noreply, w.noreply);
  } else {
    EXPECT_EQ(static_cast<int>(f.result), static_cast<int>(w.result));
    EXPECT_EQ(f.values, w.values);
    EXPECT_EQ(f.number, w.number);
    EXPECT_EQ(f.message, w.message);
  }
}

const WellFormedCase kWellFormed[] = {
    // ---- Commands ----
    {"get", kReq, {Cmd("get user:1\r\n", Command::kGet, 1)}},
    {"get_multi", kReq, {Cmd("get a b  c\r\n", Command::kGet, 3)}},
    {"gets", kReq, {Cmd("gets a\r\n", Command::kGets, 1)}},
    {"gat", kReq, {Cmd("gat 100 a b\r\n", Command::kGat, 2)}},
    {"gats", kReq, {Cmd("gats -1 a\r\n", Command::kGats, 1)}},
    {"set", kReq, {Cmd("set k 0 0 5\r\nhello\r\n", Command::kSet, 1, false, 5)}},
    {"set_noreply", kReq, {Cmd("set k 7 60 2 noreply\r\nhi\r\n", Command::kSet, 1, true, 2)}},
    {"set_empty", kReq, {Cmd("set k 0 0 0\r\n\r\n", Command::kSet, 1, false, 0)}},
    // The data block is framed by its length, not by CRLF inside it.
    {"set_crlf_inside", kReq, {Cmd("set k 1 0 7\r\n\r\nEND\r\n\r\n", Command::kSet, 1, false, 7)}},
    {"add", kReq, {Cmd("add k 0 0 1\r\nx\r\n", Command::kAdd, 1, false, 1)}},
    {"replace", kReq, {Cmd("replace k 0 0 1\r\nx\r\n", Command::kReplace, 1, false, 1)}},
    {"append", kReq, {Cmd("append k 0 0 1\r\nx\r\n", Command::kAppend, 1, false, 1)}},
    {"prepend", kReq, {Cmd("prepend k 0 0 1 noreply\r\nx\r\n", Command::kPrepend, 1, true, 1)}},
    {"cas", kReq, {Cmd("cas k 0 0 2 12345\r\nhi\r\n", Command::kCas, 1, false, 2)}},
    {"incr", kReq, {Cmd("incr n 5\r\n", Command::kIncr, 1)}},
    {"decr_noreply", kReq, {Cmd("decr n 18446744073709551615 noreply\r\n", Command::kDecr, 1, true)}},
    {"delete", kReq, {Cmd("delete k\r\n", Command::kDelete, 1)}},
    {"delete_legacy_zero", kReq, {Cmd("delete k 0 noreply\r\n", Command::kDelete, 1, true)}},
    {"touch", kReq, {Cmd("touch k 10\r\n", Command::kTouch, 1)}},
    {"version", kReq, {Cmd("version\r\n", Command::kVersion, 0)}},
    {"stats", kReq, {Cmd("stats\r\n", Command::kStats, 0)}},
    {"stats_items", kReq, {Cmd("stats items\r\n", Command::kStats, 0)}},
    {"flush_all", kReq, {Cmd("flush_all\r\n", Command::kFlushAll, 0)}},
    {"flush_all_delay_noreply", kReq, {Cmd("flush_all 10 noreply\r\n", Command::kFlushAll, 0, true)}},
    {"verbosity", kReq, {Cmd("verbosity 1\r\n", Command::kVerbosity, 0)}},
    {"quit", kReq, {Cmd("quit\r\n", Command::kQuit, 0)}},
    {"lf_only", kReq, {Cmd("get k\n", Command::kGet, 1)}},
    {"pipelined",
     kReq,
     {Cmd("set a 0 0 1\r\n1\r\n", Command::kSet, 1, false, 1), Cmd("get a b\r\n", Command::kGet, 2),
      Cmd("delete a noreply\r\n", Command::kDelete, 1, true), Cmd("incr c 1\r\n", Command::kIncr, 1)}},
    // ---- Answers ----
    {"stored", kResp, {Ans("STORED\r\n", Result::kStored)}},
    {"not_stored", kResp, {Ans("NOT_STORED\r\n", Result::kNotStored)}},
    {"exists", kResp, {Ans("EXISTS\r\n", Result::kExists)}},
    {"not_found", kResp, {Ans("NOT_FOUND\r\n", Result::kNotFound)}},
    {"deleted", kResp, {Ans("DELETED\r\n", Result::kDeleted)}},
    {"touched", kResp, {Ans("TOUCHED\r\n", Result::kTouched)}},
    {"ok", kResp, {Ans("OK\r\n", Result::kOk)}},
    {"reset", kResp, {Ans("RESET\r\n", Result::kReset)}},
    {"hit", kResp, {Ans("VALUE k 0 5\r\nhello\r\nEND\r\n", Result::kValues, 1, 5)}},
    {"miss", kResp, {Ans("END\r\n", Result::kValues)}},
    {"multi_hit",
     kResp,
     {Ans("VALUE a 0 1\r\nx\r\nVALUE b 3 2 99\r\nyz\r\nVALUE c 0 0\r\n\r\nEND\r\n", Result::kValues, 3, 3)}},
    {"value_holding_end", kResp, {Ans("VALUE k 0 5\r\nEND\r\n\r\nEND\r\n", Result::kValues, 1, 5)}},
    {"value_then_server_error",
     kResp,
     {Ans("VALUE k 0 1\r\nx\r\nSERVER_ERROR out of memory writing get response\r\n", Result::kServerError, 1,
          1, 0, "out of memory writing get response")}},
    {"number", kResp, {Ans("42\r\n", Result::kNumber, 0, 0, 42)}},
    {"number_padded", kResp, {Ans("7  \r\n", Result::kNumber, 0, 0, 7)}},
    {"version_answer", kResp, {Ans("VERSION 1.6.18\r\n", Result::kVersion, 0, 0, 0, "1.6.18")}},
    {"error", kResp, {Ans("ERROR\r\n", Result::kError)}},
    {"client_error",
     kResp,
     {Ans("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n", Result::kClientError, 0, 0, 0,
          "cannot increment or decrement non-numeric value")}},
    {"server_error",
     kResp,
     {Ans("SERVER_ERROR out of memory\r\n", Result::kServerError, 0, 0, 0, "out of memory")}},
    {"stats_report", kResp, {Ans("STAT pid 1\r\nSTAT uptime 5\r\nEND\r\n", Result::kStats)}},
    {"answers_in_a_row",
     kResp,
     {Ans("STORED\r\n", Result::kStored), Ans("VALUE a 0 1\r\n1\r\nEND\r\n", Result::kValues, 1, 1),
      Ans("2\r\n", Result::kNumber, 0, 0, 2), Ans("END\r\n", Result::kValues)}},
};

class MemcacheWellFormedTest : public testing::TestWithParam<WellFormedCase> {};

TEST_P(MemcacheWellFormedTest, ParsesEveryFrame) {
  const WellFormedCase& c = GetParam();
  const string wire = Wire(c);
  State st;
  string_view buf = wire;
  for (size_t i = 0; i < c.frames.size(); ++i) {
    SCOPED_TRACE(i);
    Frame f;
    const size_t before = buf.size();
    const ParseState s = ParseFrame(c.type, &buf, &f, &st);
    ASSERT_EQ(s, ParseState::kSuccess) << ParseStateName(s);
    EXPECT_EQ(before - buf.size(), c.frames[i].wire.size());
    ExpectFrame(c.frames[i], c.type, f);
  }
  EXPECT_TRUE(buf.empty());
}

TEST_P(MemcacheWellFormedTest, EveryTruncatedPrefixNeedsMoreDataAndLeavesInputUntouched) {
  const WellFormedCase& c = GetParam();
  const string wire = Wire(c);
  for (size_t len = 0; len < wire.size(); ++len) {
    SCOPED_TRACE(len);
    const string prefix = wire.substr(0, len);
    State st;
    string_view buf = prefix;
    size_t whole = 0;
    for (size_t end = 0; whole < c.frames.size(); ++whole) {
      end += c.frames[whole].wire.size();
      if (end > len) break;
    }
    for (size_t i = 0; i < whole; ++i) {
      Frame f;
      ASSERT_EQ(ParseFrame(c.type, &buf, &f, &st), ParseState::kSuccess);
    }
    const string_view before = buf;
    Frame f;
    ASSERT_EQ(ParseFrame(c.type, &buf, &f, &st), ParseState::kNeedsMoreData);
    EXPECT_EQ(buf.data(), before.data());
    EXPECT_EQ(buf.size(), before.size());
    EXPECT_EQ(f.phase, Phase::kLine);
    EXPECT_EQ(f.value_bytes, 0u);
    EXPECT_EQ(f.result, Result::kNone);
  }
}

// The same bytes parsed the way the connection does: in parts, each call given only the
// bytes that follow. The result must not depend on where the cuts fall.
TEST_P(MemcacheWellFormedTest, PartialParsesMatchWholeParse) {
  const WellFormedCase& c = GetParam();
  const string wire = Wire(c);
  for (size_t step : {1, 2, 3, 7, 64}) {
    SCOPED_TRACE(step);
    State st;
    st.ctx.partial_ok = true;
    size_t offset = 0;
    size_t avail = 0;
    std::vector<Frame> frames;
    Frame cur;
    bool has_cur = false;
    while (true) {
      string_view buf = string_view(wire).substr(offset, avail - offset);
      if (!has_cur) cur = Frame();
      const ParseState s = ParseFrame(c.type, &buf, &cur, &st);
      ASSERT_NE(s, ParseState::kInvalid);
      const size_t used = (avail - offset) - buf.size();
      offset += used;
      if (s == ParseState::kSuccess) {
        if (FrameComplete(cur)) {
          frames.push_back(std::move(cur));
          has_cur = false;
        } else {
          has_cur = true;
        }
        if (used > 0 || !has_cur) continue;
      }
      if (avail == wire.size()) break;
      avail = std::min(wire.size(), avail + step);
    }
    ASSERT_EQ(frames.size(), c.frames.size());
    for (size_t i = 0; i < frames.size(); ++i) ExpectFrame(c.frames[i], c.type, frames[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, MemcacheWellFormedTest, testing::ValuesIn(kWellFormed),
                         [](const auto& info) { return string(info.param.name); });

// ---- Invalid input ------------------------------------------------------------------------

struct InvalidCase {
  const char* name;
  MessageType type;
  string wire;
};

const InvalidCase kInvalid[] = {
    {"http_request", kReq, "GET / HTTP/1.1\r\n"},
    {"unknown_command", kReq, "foo bar\r\n"},
    {"upper_case_command", kReq, "SET k 0 0 1\r\nx\r\n"},
    {"meta_command", kReq, "mg foo v\r\n"},
    {"get_without_key", kReq, "get\r\n"},
    {"gat_without_key", kReq, "gat 10\r\n"},
    {"key_too_long", kReq, "get " + string(251, 'k') + "\r\n"},
    {"key_with_control_character", kReq, "delete a\x01\r\n"},
    {"set_length_not_a_number", kReq, "set k 0 0 abc\r\n"},
    {"set_extra_argument", kReq, "set k 0 0 1 extra\r\nx\r\n"},
    {"set_missing_argument", kReq, "set k 0 1\r\nx\r\n"},
    {"set_flags_over_32_bits", kReq, "set k 4294967296 0 1\r\nx\r\n"},
    // A length memcached could never store: invalid, never a huge allocation.
    {"set_huge_length", kReq, "set k 0 0 1073741825\r\n"},
    {"set_length_overflows", kReq, "set k 0 0 18446744073709551616\r\n"},
    {"set_block_without_crlf", kReq, "set k 0 0 5\r\nhelloXX"},
    {"cas_without_unique", kReq, "cas k 0 0 1\r\nx\r\n"},
    {"incr_not_a_number", kReq, "incr k abc\r\n"},
    {"delete_with_delay", kReq, "delete k 5\r\n"},
    {"version_with_argument", kReq, "version now\r\n"},
    {"lone_cr", kReq, "get k\rget j\r\n"},
    {"line_too_long", kReq, "get " + string(kMaxRequestLine + 8, 'k')},
    {"http_response", kResp, "HTTP/1.1 200 OK\r\n"},
    {"unknown_answer", kResp, "BUSY slab class full\r\n"},
    {"value_huge_length", kResp, "VALUE k 0 1073741825\r\n"},
    {"value_missing_length", kResp, "VALUE k 0\r\n"},
    {"value_block_without_crlf", kResp, "VALUE k 0 1\r\nxEND\r\n"},
    {"list_with_garbage", kResp, "VALUE k 0 1\r\nx\r\nGARBAGE\r\n"},
    {"stat_then_garbage", kResp, "STAT a b\r\nBOGUS\r\n"},
    {"number_overflows", kResp, "18446744073709551616\r\n"},
    {"answer_line_too_long", kResp, "CLIENT_ERROR " + string(kMaxResponseLine, 'x')},
};

class MemcacheInvalidTest : public testing::TestWithParam<InvalidCase> {};

TEST_P(MemcacheInvalidTest, IsInvalidAndLeavesInputUntouched) {
  const InvalidCase& c = GetParam();
  State st;
  string_view buf = c.wire;
  Frame f;
  EXPECT_EQ(ParseFrame(c.type, &buf, &f, &st), ParseState::kInvalid);
  EXPECT_EQ(buf.data(), c.wire.data());
  EXPECT_EQ(buf.size(), c.wire.size());
  EXPECT_EQ(f.phase, Phase::kLine);
  EXPECT_EQ(st.next_seq, 1u);
}

INSTANTIATE_TEST_SUITE_P(Cases, MemcacheInvalidTest, testing::ValuesIn(kInvalid),
                         [](const auto& info) { return string(info.param.name); });

// The largest value memcached can hold is framed without holding it: the block is opaque.
TEST(MemcacheParse, LargestValueIsOpaqueNotBuffered) {
  const string line = "set k 0 0 1073741824\r\n";
  State st;
  string_view buf = line;
  Frame f;
  EXPECT_EQ(ParseFrame(kReq, &buf, &f, &st), ParseState::kNeedsMoreData);  // whole frames only
  EXPECT_EQ(buf.size(), line.size());
  st.ctx.partial_ok = true;
  ASSERT_EQ(ParseFrame(kReq, &buf, &f, &st), ParseState::kSuccess);
  EXPECT_TRUE(buf.empty());
  EXPECT_FALSE(FrameComplete(f));
  EXPECT_EQ(OpaqueRemaining(f), (uint64_t{1} << 30) + 2);
  SkipHole(&f, uint64_t{1} << 30);
  std::string_view crlf = "\r\n";
  ASSERT_EQ(ParseFrame(kReq, &crlf, &f, &st), ParseState::kSuccess);
  EXPECT_TRUE(FrameComplete(f));
}

// In parts, what is valid before a framing error is taken; the error comes next call.
TEST(MemcacheParse, PartialFramingErrorReportedOnTheNextCall) {
  State st;
  st.ctx.partial_ok = true;
  const string wire = "VALUE k 0 1\r\nx\r\nGARBAGE\r\n";
  string_view buf = wire;
  Frame f;
  ASSERT_EQ(ParseFrame(kResp, &buf, &f, &st), ParseState::kSuccess);
  EXPECT_FALSE(FrameComplete(f));
  EXPECT_EQ(buf, "GARBAGE\r\n");
  EXPECT_EQ(ParseFrame(kResp, &buf, &f, &st), ParseState::kInvalid);
  EXPECT_EQ(buf, "GARBAGE\r\n");
}

// ---- Frame boundaries and detection ------------------------------------------------------

struct BoundaryCase {
  const char* name;
  MessageType type;
  string buf;
  size_t start;
  size_t want;
};

const BoundaryCase kBoundaries[] = {
    {"request_at_start", kReq, "get k\r\n", 0, 0},
    {"request_after_garbage_line", kReq, "xx yy\r\nset k 0 0 1\r\n", 0, 7},
    {"request_not_mid_line", kReq, "xx get k\r\n", 1, string_view::npos},
    {"request_cut_off_word", kReq, "junk\r\nge", 0, 6},
    {"request_none", kReq, "junk\r\nmore junk\r\n", 0, string_view::npos},
    {"answer_after_data", kResp, "abc\r\nEND\r\n", 0, 5},
    {"answer_number", kResp, "zz\r\n12\r\n", 1, 4},
    {"answer_cut_off", kResp, "zz\r\nSTOR", 1, 4},
    {"answer_none", kResp, "zz\r\nfoo\r\n", 1, string_view::npos},
};

class MemcacheBoundaryTest : public testing::TestWithParam<BoundaryCase> {};

TEST_P(MemcacheBoundaryTest, Finds) {
  const BoundaryCase& c = GetParam();
  State st;
  EXPECT_EQ(FindFrameBoundary(c.type, c.buf, c.start, &st), c.want);
}

INSTANTIATE_TEST_SUITE_P(Cases, MemcacheBoundaryTest, testing::ValuesIn(kBoundaries),
                         [](const auto& info) { return string(info.param.name); });

struct DetectCase {
  const char* name;
  string bytes;
  Detection memcache;
  Detection http1;
};

const DetectCase kDetect[] = {
    {"get", "get k\r\n", Detection::kMatch, Detection::kNoMatch},
    {"get_line_cut", "get user:", Detection::kMatch, Detection::kNoMatch},
    {"set", "set k 0 0 5\r\nhello\r\n", Detection::kMatch, Detection::kNoMatch},
    {"version", "version\r\n", Detection::kMatch, Detection::kNoMatch},
    {"stats", "stats\r\n", Detection::kMatch, Detection::kNoMatch},
    {"flush_all", "flush_all\r\n", Detection::kMatch, Detection::kNoMatch},
    {"quit", "quit\r\n", Detection::kMatch, Detection::kNoMatch},
    {"word_prefix", "ver", Detection::kNeedMoreData, Detection::kNoMatch},
    {"word_then_cr", "version\r", Detection::kNeedMoreData, Detection::kNoMatch},
    {"empty", "", Detection::kNeedMoreData, Detection::kNoMatch},
    {"longer_word", "getter k\r\n", Detection::kNoMatch, Detection::kNoMatch},
    {"bare_lf", "version\n", Detection::kNoMatch, Detection::kNoMatch},
    {"malformed_line", "get\r\n", Detection::kNoMatch, Detection::kNoMatch},
    {"meta", "mg foo v\r\n", Detection::kNoMatch, Detection::kNoMatch},
    {"http_get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", Detection::kNoMatch, Detection::kMatch},
    {"http_post", "POST /x HTTP/1.1\r\n", Detection::kNoMatch, Detection::kMatch},
    {"http_delete", "DELETE /k HTTP/1.1\r\n", Detection::kNoMatch, Detection::kMatch},
    {"tls_hello", string("\x16\x03\x01\x00\x10", 5), Detection::kNoMatch, Detection::kNoMatch},
    {"binary_protocol", string("\x80\x00\x00\x01", 4), Detection::kNoMatch, Detection::kNoMatch},
};

class MemcacheDetectTest : public testing::TestWithParam<DetectCase> {};

TEST_P(MemcacheDetectTest, EachProtocolDetectsOnlyItself) {
  const DetectCase& c = GetParam();
  EXPECT_EQ(Spec().detect(c.bytes), c.memcache);
  EXPECT_EQ(http1::Spec().detect(c.bytes), c.http1);
  // In registry order, the first to match is the one expected.
  string_view first;
  for (const ProtocolSpec& spec : Protocols()) {
    if ((spec.transports & kTcp) && spec.detect && spec.detect(c.bytes) == Detection::kMatch) {
      first = spec.name;
      break;
    }
  }
  const string_view want = c.memcache == Detection::kMatch ? "memcache"
                           : c.http1 == Detection::kMatch  ? "http1"
                                                           : "";
  EXPECT_EQ(first, want);
}

INSTANTIATE_TEST_SUITE_P(Cases, MemcacheDetectTest, testing::ValuesIn(kDetect),
                         [](const auto& info) { return string(info.param.name); });

TEST(MemcacheSpec, IsRegisteredForTcpConnections) {
  const ProtocolSpec& spec = Spec();
  EXPECT_EQ(spec.name, "memcache");
  EXPECT_EQ(spec.scope, Scope::kConnection);
  EXPECT_EQ(spec.transports, uint32_t{kTcp});
  EXPECT_LT(ProtocolIndex(spec), Protocols().size());
  EXPECT_LT(ProtocolIndex(http1::Spec()), ProtocolIndex(spec));
}

// ---- A connection: bytes in, commands paired with answers -------------------------------

// Drives the registered connection as the tracker does: one chunk per syscall, each with
// its stream position and a clock that moves forward.
class ConnectionTest : public testing::Test {
 protected:
  void Make(bool client = true) {
    client_ = client;
    conn_ = Spec().make(client, ProtocolOptions{});
  }
  // The client sends (`request`) or receives bytes; `total` > size: the rest is a hole.
  void Send(bool request, string bytes, uint32_t total = 0) {
    storage_.push_back(std::move(bytes));
    const string& b = storage_.back();
    Chunk c;
    c.egress = request == client_;
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
    stats_.frames_invalid += s.frames_invalid;
    stats_.responses_unmatched += s.responses_unmatched;
    stats_.requests_unanswered += s.requests_unanswered;
    stats_.gaps += s.gaps;
  }
  const Record& Body(size_t i) { return std::get<Record>(records_.at(i).body); }

  bool client_ = true;
  std::unique_ptr<ProtocolConnection> conn_;
  std::vector<string> storage_;
  uint64_t req_pos_ = 0, resp_pos_ = 0, now_ = 1'000'000;
  std::vector<RequestStart> started_;
  std::vector<protocols::Record> records_;
  ConnectionStats stats_;
};

TEST_F(ConnectionTest, PipelinedCommandsArePairedInOrder) {
  Make();
  Send(true, "set a 0 0 1\r\n1\r\nget a b c\r\nincr a 5\r\ndelete a noreply\r\nget a\r\n");
  Send(false, "STORED\r\nVALUE a 0 1\r\n1\r\nVALUE c 0 2\r\nxy\r\nEND\r\n6\r\n");
  Send(false, "END\r\n");
  Drain();
  ASSERT_EQ(started_.size(), 5u);
  ASSERT_EQ(records_.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(started_[i].seq, i + 1);
    EXPECT_EQ(records_[i].seq, i + 1);
    EXPECT_EQ(Body(i).seq, i + 1);
  }
  EXPECT_EQ(Body(0).command, Command::kSet);
  EXPECT_EQ(Body(0).result, Result::kStored);
  EXPECT_EQ(Body(0).request_value_bytes, 1u);
  EXPECT_EQ(Body(1).command, Command::kGet);
  EXPECT_EQ(Body(1).keys, 3u);
  EXPECT_EQ(Body(1).result, Result::kValues);
  EXPECT_EQ(Body(1).hits, 2u);
  EXPECT_EQ(Body(1).response_value_bytes, 3u);
  EXPECT_EQ(Body(2).command, Command::kIncr);
  EXPECT_EQ(Body(2).result, Result::kNumber);
  EXPECT_EQ(Body(2).number, 6u);
  EXPECT_EQ(Body(3).command, Command::kDelete);
  EXPECT_TRUE(Body(3).noreply);
  EXPECT_EQ(Body(3).result, Result::kNone);
  EXPECT_FALSE(records_[3].response_missing);
  EXPECT_EQ(Body(4).result, Result::kValues);
  EXPECT_EQ(Body(4).hits, 0u);
  EXPECT_GT(records_[4].response.end_ns, records_[4].response.start_ns);
  EXPECT_EQ(stats_.frames_invalid + stats_.responses_unmatched + stats_.requests_unanswered.Total(), 0u);
}

TEST_F(ConnectionTest, NoreplyCommandsLeaveWithoutWaiting) {
  Make();
  Send(true, "set a 0 0 1 noreply\r\nx\r\nset b 0 0 1 noreply\r\ny\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_TRUE(Body(0).noreply && Body(1).noreply);
  EXPECT_FALSE(records_[0].response_missing);
  EXPECT_EQ(stats_.requests_unanswered.Total(), 0u);
}

TEST_F(ConnectionTest, AnswersSplitAcrossSyscallsAndValuesAcrossHoles) {
  Make();
  Send(true, "get big\r\n");
  Drain();
  EXPECT_EQ(started_.size(), 1u);
  EXPECT_TRUE(records_.empty());
  // A 100000-byte value: the kernel captured 16 bytes of the syscall that carried it.
  Send(false, "VALUE big 0 100000\r\n");
  Send(false, string(16, 'v'), 100000);
  Send(false, "\r\nE");
  Drain();
  EXPECT_TRUE(records_.empty());
  Send(false, "ND\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(Body(0).hits, 1u);
  EXPECT_EQ(Body(0).response_value_bytes, 100000u);
  EXPECT_EQ(stats_.frames_invalid + stats_.gaps, 0u);
}

// memcached writes a VALUE item and its END with one syscall: when only a prefix of it was
// captured, the END lies in the hole with the block's tail. The answer still ends there.
TEST_F(ConnectionTest, EndInTheHoleAfterABigValue) {
  Make();
  Send(true, "get big\r\n");
  const string head = "VALUE big 0 10000\r\n";
  Send(false, head + string(100, 'v'), static_cast<uint32_t>(head.size() + 10000 + 2 + 5));
  Send(true, "get small\r\n");
  Send(false, "END\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(Body(0).result, Result::kValues);
  EXPECT_EQ(Body(0).hits, 1u);
  EXPECT_EQ(Body(0).response_value_bytes, 10000u);
  EXPECT_EQ(Body(1).result, Result::kValues);
  EXPECT_EQ(Body(1).hits, 0u);
  EXPECT_EQ(
      stats_.frames_invalid + stats_.gaps + stats_.responses_unmatched + stats_.requests_unanswered.Total(),
      0u);
}

// A hole that ends with the block leaves the END to the bytes that follow.
TEST_F(ConnectionTest, EndAfterAHoleThatEndsWithTheBlock) {
  Make();
  Send(true, "get big\r\n");
  const string head = "VALUE big 0 10000\r\n";
  Send(false, head + string(100, 'v'), static_cast<uint32_t>(head.size() + 10000 + 2));
  Send(false, "END\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(Body(0).hits, 1u);
  EXPECT_EQ(stats_.frames_invalid + stats_.gaps + stats_.responses_unmatched, 0u);
}

TEST_F(ConnectionTest, CloseGivesUpTheCommandsStillWaiting) {
  Make();
  Send(true, "get a\r\nget b\r\n");
  Send(false, "END\r\n");
  conn_->Close(Unanswered::kNoResponse);
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_FALSE(records_[0].response_missing);
  EXPECT_TRUE(records_[1].response_missing);
  EXPECT_TRUE(Body(1).response_missing);
  EXPECT_EQ(records_[1].unanswered, Unanswered::kNoResponse);
  EXPECT_EQ(stats_.requests_unanswered[Unanswered::kNoResponse], 1u);
}

TEST_F(ConnectionTest, QuitEndsTheCommandStream) {
  Make();
  Send(true, "version\r\nquit\r\n");
  Send(false, "VERSION 1.6.18\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(Body(0).result, Result::kVersion);
  EXPECT_EQ(Body(1).command, Command::kQuit);
  EXPECT_FALSE(records_[1].response_missing);
}

TEST_F(ConnectionTest, ErrorAnswerKeepsItsMessage) {
  Make();
  Send(true, "incr k 1\r\n");
  Send(false, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(Body(0).result, Result::kClientError);
  EXPECT_EQ(Body(0).message, "cannot increment or decrement non-numeric value");
}

// An answer that began before the oldest waiting command answers one kspan never saw
// (the connection was open before kspan looked): dropped, never paired with the wrong one.
TEST_F(ConnectionTest, AnswerOlderThanEveryCommandIsDropped) {
  Make();
  Send(false, "STORED\r\n");
  Drain();
  Send(true, "get a\r\n");
  Send(false, "END\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(Body(0).command, Command::kGet);
  EXPECT_EQ(Body(0).result, Result::kValues);
  EXPECT_EQ(stats_.responses_unmatched, 1u);
}

// An answer whose command is still on its way (another CPU) waits for it.
TEST_F(ConnectionTest, AnswerWaitsForItsCommand) {
  Make();
  // The command's chunk carries the earlier time but reaches the parser later.
  Chunk c;
  c.egress = true;
  c.position = 0;
  c.data = "delete k\r\n";
  c.total_len = 10;
  c.first_ns = c.last_ns = 10;
  Chunk a;
  a.egress = false;
  a.position = 0;
  a.data = "DELETED\r\n";
  a.total_len = 9;
  a.first_ns = a.last_ns = 20;
  conn_->AddData(a);
  Drain();
  EXPECT_TRUE(records_.empty());
  conn_->AddData(c);
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(Body(0).result, Result::kDeleted);
  EXPECT_EQ(stats_.responses_unmatched, 0u);
}

// An answer that does not fit the command (STORED to a get) is never paired with it.
TEST_F(ConnectionTest, AnswerThatDoesNotFitIsDropped) {
  Make();
  Send(true, "get a\r\n");
  Send(false, "STORED\r\nEND\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(Body(0).result, Result::kValues);
  EXPECT_EQ(stats_.responses_unmatched, 1u);
}

// The server's side parses the same way (its records make no span: db_span.h).
TEST_F(ConnectionTest, ServerSideParsesToo) {
  Make(/*client=*/false);
  Send(true, "set k 0 0 2\r\nhi\r\n");
  Send(false, "STORED\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(Body(0).result, Result::kStored);
}

// Garbage between commands is skipped and counted; the stream resynchronises.
TEST_F(ConnectionTest, GarbageIsCountedAndSkipped) {
  Make();
  Send(true, "get a\r\n");
  Send(false, "END\r\n");
  Send(true, "bogus line\r\n");
  Send(true, "get b\r\n");
  Send(false, "END\r\n");
  Drain();
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(stats_.frames_invalid, 1u);
  EXPECT_FALSE(records_[0].response_missing);
  EXPECT_FALSE(records_[1].response_missing);
}

}  // namespace
}  // namespace kspan::protocols::memcache
