#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "protocols/http1/connection.h"
#include "protocols/http1/parse.h"

namespace kspan::protocols::http1 {
namespace {

using std::string;
using std::string_view;
using namespace std::string_view_literals;

constexpr MessageType kReq = MessageType::kRequest;
constexpr MessageType kResp = MessageType::kResponse;

// One message of a case and what it must parse to. `first`/`second`: method/target for a
// request, status/reason for a response. Every field is checked, so a missing comma that
// merges two fields fails the case rather than passing it silently.
struct Want {
  string_view wire;
  string_view first;
  string_view second;
  uint64_t body_size;
  string_view body;
};

struct WellFormedCase {
  const char* name;
  MessageType type;
  std::vector<Want> messages;
  // Responses: methods of the requests being answered, oldest first.
  std::vector<MethodKind> answering = {};
  // The last message is a response delimited by close.
  bool close_delimited = false;
};

string Wire(const WellFormedCase& c) {
  string s;
  for (const Want& w : c.messages) s += w.wire;
  return s;
}

State StateFor(const WellFormedCase& c) {
  State st;
  uint64_t seq = 1;
  for (MethodKind m : c.answering) st.pending.push_back(PendingRequest{seq++, 0, m, false});
  st.next_seq = seq;
  return st;
}

void ExpectMessage(const Want& w, MessageType type, const Message& m) {
  if (type == kReq) {
    EXPECT_EQ(m.method(), w.first);
    EXPECT_EQ(m.target(), w.second);
  } else {
    EXPECT_EQ(std::to_string(m.status_code), w.first);
    EXPECT_EQ(m.reason(), w.second);
  }
  EXPECT_EQ(m.body_size, w.body_size);
  EXPECT_EQ(m.body_prefix, w.body);
  EXPECT_FALSE(m.body_truncated);
}

const WellFormedCase kWellFormed[] = {
    // ---- Requests ----
    {"get",
     kReq,
     {{"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n", "GET", "/a/b?x=1", 0, ""}}},
    {"get_no_fields", kReq, {{"GET / HTTP/1.1\r\n\r\n", "GET", "/", 0, ""}}},
    {"http10", kReq, {{"GET /old HTTP/1.0\r\n\r\n", "GET", "/old", 0, ""}}},
    {"lf_only", kReq, {{"GET / HTTP/1.1\nHost: a\n\n", "GET", "/", 0, ""}}},
    {"options_star", kReq, {{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS", "*", 0, ""}}},
    {"absolute_form", kReq, {{"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "http://h/x", 0, ""}}},
    {"webdav_method", kReq, {{"PROPFIND /d HTTP/1.1\r\nDepth: 1\r\n\r\n", "PROPFIND", "/d", 0, ""}}},
    {"post_content_length",
     kReq,
     {{"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "POST", "/api", 5, "hello"}}},
    {"post_content_length_zero",
     kReq,
     {{"POST /e HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "POST", "/e", 0, ""}}},
    {"content_length_case_and_ows",
     kReq,
     {{"PUT /p HTTP/1.1\r\ncOnTeNt-LeNgTh:   3  \r\n\r\nabc", "PUT", "/p", 3, "abc"}}},
    {"content_length_identical_list",
     kReq,
     {{"PUT /p HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", "PUT", "/p", 3, "abc"}}},
    {"content_length_duplicate_same",
     kReq,
     {{"PUT /p HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", "PUT", "/p", 2, "ab"}}},
    {"post_chunked_ext",
     kReq,
     {{"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;name=val\r\n "
       "world\r\n0\r\n\r\n",
       "POST", "/u", 11, "hello world"}}},
    {"chunked_trailers",
     kReq,
     {{"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: "
       "2\r\n\r\n",
       "POST", "/t", 3, "abc"}}},
    {"chunked_hex_upper_lower",
     kReq,
     {{"POST /h HTTP/1.1\r\nTransfer-Encoding: "
       "chunked\r\n\r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
       "POST", "/h", 20, "0123456789abcdefghij"}}},
    {"chunked_lf_only",
     kReq,
     {{"POST /l HTTP/1.1\nTransfer-Encoding: chunked\n\n2\nhi\n0\n\n", "POST", "/l", 2, "hi"}}},
    {"chunked_wins_over_content_length",
     kReq,
     {{"POST /c HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
       "POST", "/c", 1, "x"}}},
    {"expect_continue",
     kReq,
     {{"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", "POST", "/up", 3,
       "abc"}}},
    {"pipelined",
     kReq,
     {{"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/1", 0, ""},
      {"POST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nok", "POST", "/2", 2, "ok"},
      {"HEAD /3 HTTP/1.1\r\n\r\n", "HEAD", "/3", 0, ""}}},
    {"keep_alive_many",
     kReq,
     {{"GET /k1 HTTP/1.1\r\n\r\n", "GET", "/k1", 0, ""},
      {"GET /k2 HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/k2", 0, ""},
      {"DELETE /k3 HTTP/1.1\r\n\r\n", "DELETE", "/k3", 0, ""},
      {"PATCH /k4 HTTP/1.1\r\nContent-Length: 1\r\n\r\nz", "PATCH", "/k4", 1, "z"},
      {"POST /k5 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n", "POST", "/k5", 1, "q"},
      {"GET /k6 HTTP/1.0\r\n\r\n", "GET", "/k6", 0, ""}}},

    // ---- Responses ----
    {"ok_content_length",
     kResp,
     {{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", "200", "OK", 5,
       "hello"}},
     {MethodKind::kOther}},
    {"content_length_zero",
     kResp,
     {{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "200", "OK", 0, ""}},
     {MethodKind::kOther}},
    {"reason_with_spaces",
     kResp,
     {{"HTTP/1.1 404 Not Found Here\r\nContent-Length: 0\r\n\r\n", "404", "Not Found Here", 0, ""}},
     {MethodKind::kOther}},
    {"empty_reason",
     kResp,
     {{"HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n", "500", "", 0, ""}},
     {MethodKind::kOther}},
    {"no_reason_no_space",
     kResp,
     {{"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "200", "", 0, ""}},
     {MethodKind::kOther}},
    {"chunked",
     kResp,
     {{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n", "200",
       "OK", 9, "Wikipedia"}},
     {MethodKind::kOther}},
    {"gzip_then_chunked",
     kResp,
     {{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n\x1f\x8b\r\n0\r\n\r\n", "200", "OK",
       2, "\x1f\x8b"}},
     {MethodKind::kOther}},
    {"no_content_ignores_length",
     kResp,
     {{"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", "204", "No Content", 0, ""}},
     {MethodKind::kOther}},
    {"not_modified_ignores_length",
     kResp,
     {{"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "304", "Not Modified", 0, ""}},
     {MethodKind::kOther}},
    {"head_ignores_length",
     kResp,
     {{"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "200", "OK", 0, ""}},
     {MethodKind::kHead}},
    {"continue_then_ok",
     kResp,
     {{"HTTP/1.1 100 Continue\r\n\r\n", "100", "Continue", 0, ""},
      {"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", "201", "Created", 2, "ok"}},
     {MethodKind::kOther}},
    {"early_hints_then_ok",
     kResp,
     {{"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", "103", "Early Hints", 0, ""},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "200", "OK", 0, ""}},
     {MethodKind::kOther}},
    {"pipelined_with_head",
     kResp,
     {{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none", "200", "OK", 3, "one"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", "200", "OK", 0, ""},
      {"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\ntwo", "404", "Not Found", 3, "two"}},
     {MethodKind::kOther, MethodKind::kHead, MethodKind::kOther}},
    {"http10_content_length",
     kResp,
     {{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", "200", "OK", 2, "hi"}},
     {MethodKind::kOther}},
    {"close_delimited",
     kResp,
     {{"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>until close</html>", "200", "OK", 24,
       "<html>until close</html>"}},
     {MethodKind::kOther},
     true},
    {"close_delimited_unknown_coding",
     kResp,
     {{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz", "200", "OK", 3, "zzz"}},
     {MethodKind::kOther},
     true},
    {"keep_alive_then_close_delimited",
     kResp,
     {{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", "200", "OK", 1, "a"},
      {"HTTP/1.1 200 OK\r\n\r\nrest", "200", "OK", 4, "rest"}},
     {MethodKind::kOther, MethodKind::kOther},
     true},
};

class Http1WellFormedTest : public testing::TestWithParam<WellFormedCase> {};

TEST_P(Http1WellFormedTest, ParsesEveryMessage) {
  const WellFormedCase& c = GetParam();
  const string wire = Wire(c);
  State st = StateFor(c);
  st.ctx.end_of_stream = true;  // only a close-delimited message needs it; others ignore it
  string_view buf = wire;
  for (size_t i = 0; i < c.messages.size(); ++i) {
    SCOPED_TRACE(i);
    Frame f;
    const size_t before = buf.size();
    const ParseState s = ParseFrame(c.type, &buf, &f, &st);
    ASSERT_EQ(s, ParseState::kSuccess) << ParseStateName(s);
    EXPECT_EQ(before - buf.size(), c.messages[i].wire.size());
    EXPECT_TRUE(FrameComplete(f));
    ExpectMessage(c.messages[i], c.type, f.msg);
  }
  EXPECT_TRUE(buf.empty());
}

TEST_P(Http1WellFormedTest, EveryTruncatedPrefixNeedsMoreData) {
  const WellFormedCase& c = GetParam();
  const string wire = Wire(c);
  for (size_t len = 0; len < wire.size(); ++len) {
    SCOPED_TRACE(len);
    const string prefix = wire.substr(0, len);
    State st = StateFor(c);
    string_view buf = prefix;
    // Messages wholly inside the prefix parse; the one cut off needs more data.
    size_t whole = 0;
    for (size_t end = 0; whole < c.messages.size(); ++whole) {
      end += c.messages[whole].wire.size();
      const bool last_until_close = c.close_delimited && whole + 1 == c.messages.size();
      if (end > len || last_until_close) break;
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
    EXPECT_EQ(f.phase, Phase::kHead);
    EXPECT_TRUE(f.msg.method().empty() && f.msg.headers().empty() && f.msg.body_prefix.empty());
  }
}

// The same bytes parsed the way the connection does: in parts, each call given only the
// bytes that follow. The result must not depend on where the cuts fall.
TEST_P(Http1WellFormedTest, PartialParsesMatchWholeParse) {
  const WellFormedCase& c = GetParam();
  const string wire = Wire(c);
  for (size_t step : {1, 2, 3, 7, 64}) {
    SCOPED_TRACE(step);
    State st = StateFor(c);
    st.ctx.partial_ok = true;
    size_t offset = 0;  // bytes consumed
    size_t avail = 0;   // bytes "arrived"
    std::vector<Frame> frames;
    Frame cur;
    bool has_cur = false;
    while (true) {
      string_view buf = string_view(wire).substr(offset, avail - offset);
      st.ctx.end_of_stream = avail == wire.size();
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
    ASSERT_EQ(frames.size(), c.messages.size());
    for (size_t i = 0; i < frames.size(); ++i) ExpectMessage(c.messages[i], c.type, frames[i].msg);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Http1WellFormedTest, testing::ValuesIn(kWellFormed),
                         [](const auto& info) { return string(info.param.name); });

// ---- Invalid input ------------------------------------------------------------------------

struct InvalidCase {
  const char* name;
  MessageType type;
  string_view wire;
};

const InvalidCase kInvalid[] = {
    {"lowercase_method", kReq, "get / HTTP/1.1\r\n\r\n"},
    {"method_too_long", kReq, "ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n\r\n"},
    {"http2_version", kReq, "GET / HTTP/2.0\r\n\r\n"},
    {"h2_preface", kReq, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
    {"http12_version", kReq, "GET / HTTP/1.2\r\n\r\n"},
    {"version_trailing_space", kReq, "GET / HTTP/1.1 \r\n\r\n"},
    {"double_space", kReq, "GET  / HTTP/1.1\r\n\r\n"},
    {"no_target", kReq, "GET HTTP/1.1\r\n\r\n"},
    {"control_in_target_partial", kReq, "GET /a\x01"},
    {"tls_client_hello", kReq, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"sv},
    {"bare_cr_in_line", kReq, "GET /\r HTTP/1.1\r\n\r\n"},
    {"stray_cr", kReq, "\r\rGET / HTTP/1.1\r\n\r\n"},
    {"field_no_colon", kReq, "GET / HTTP/1.1\r\nHost example.com\r\n\r\n"},
    {"field_space_before_colon", kReq, "GET / HTTP/1.1\r\nHost : a\r\n\r\n"},
    {"field_empty_name", kReq, "GET / HTTP/1.1\r\n: a\r\n\r\n"},
    {"obs_fold", kReq, "GET / HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n"},
    {"obs_fold_partial", kReq, "GET / HTTP/1.1\r\nX-A: a\r\n  fol"},
    {"nul_in_value", kReq, "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n"sv},
    {"partial_field_bad_name", kReq, "GET / HTTP/1.1\r\nBad(name"},
    {"chunk_size_not_hex", kReq, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
    {"chunk_size_empty", kReq, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n"},
    {"chunk_size_huge", kReq, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4000000000001\r\n"},
    {"chunk_size_garbage_after", kReq,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n"},
    {"chunk_data_no_crlf", kReq,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"},
    {"chunk_bad_trailer", kReq,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n"},
    {"status_four_digits", kResp, "HTTP/1.1 2000 OK\r\n\r\n"},
    {"status_two_digits", kResp, "HTTP/1.1 20 OK\r\n\r\n"},
    {"status_letters", kResp, "HTTP/1.1 abc OK\r\n\r\n"},
    {"status_below_100", kResp, "HTTP/1.1 099 X\r\n\r\n"},
    {"status_600", kResp, "HTTP/1.1 600 X\r\n\r\n"},
    {"status_version_12", kResp, "HTTP/1.2 200 OK\r\n\r\n"},
    {"status_https", kResp, "HTTPS/1.1 200 OK\r\n\r\n"},
    {"status_control_in_reason", kResp, "HTTP/1.1 200 O\x01K\r\n\r\n"},
    {"status_no_space", kResp, "HTTP/1.1200 OK\r\n\r\n"},
    {"response_partial_garbage", kResp, "<html><body>"},
    {"request_line_as_response", kResp, "GET / HTTP/1.1\r\n\r\n"},
    {"response_as_request", kReq, "HTTP/1.1 200 OK\r\n\r\n"},
};

class Http1InvalidTest : public testing::TestWithParam<InvalidCase> {};

TEST_P(Http1InvalidTest, IsInvalidAndLeavesBufferUntouched) {
  const InvalidCase& c = GetParam();
  State st;
  st.pending.push_back(PendingRequest{1, 0, MethodKind::kOther, false});
  string_view buf = c.wire;
  Frame f;
  EXPECT_EQ(ParseFrame(c.type, &buf, &f, &st), ParseState::kInvalid);
  EXPECT_EQ(buf.data(), c.wire.data());
  EXPECT_EQ(buf.size(), c.wire.size());
  EXPECT_EQ(f.phase, Phase::kHead);
  EXPECT_EQ(st.pending.size(), 1u);  // state untouched too
  EXPECT_EQ(st.next_seq, 1u);
}

INSTANTIATE_TEST_SUITE_P(Cases, Http1InvalidTest, testing::ValuesIn(kInvalid),
                         [](const auto& info) { return string(info.param.name); });

// A message whose start line and fields parse but whose framing fields are invalid
// (Content-Length malformed or in conflict, a request Transfer-Encoding not ending in
// chunked) is real: its head is reported, marked framing_invalid, with no body, and it
// ends the stream (RFC 9112 §6.3: unrecoverable; the peer closes). What follows is never
// parsed as a message: it would be a body of unknown length, and a request line inside it
// a forged request.
const InvalidCase kInvalidFraming[] = {
    {"content_length_letters", kReq, "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"},
    {"content_length_negative", kReq, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"},
    {"content_length_plus", kReq, "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"},
    {"content_length_empty", kReq, "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n"},
    {"content_length_hex", kReq, "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"},
    {"content_length_over_2_50", kReq, "POST / HTTP/1.1\r\nContent-Length: 1125899906842625\r\n\r\n"},
    {"content_length_20_digits", kReq, "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"},
    {"content_length_conflicting_fields", kReq,
     "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
    {"content_length_conflicting_list", kReq, "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello!"},
    {"content_length_empty_list_item", kReq, "POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\nhello"},
    {"request_te_not_chunked", kReq, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"},
    {"request_te_chunked_not_last", kReq, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"},
    {"response_content_length_bad", kResp, "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"},
};

class Http1InvalidFramingTest : public testing::TestWithParam<InvalidCase> {};

TEST_P(Http1InvalidFramingTest, HeadIsReportedAndEndsTheStream) {
  const InvalidCase& c = GetParam();
  State st;
  st.pending.push_back(PendingRequest{1, 0, MethodKind::kOther, false});
  string_view buf = c.wire;
  Frame f;
  EXPECT_EQ(ParseFrame(c.type, &buf, &f, &st), ParseState::kEndOfStream);
  const size_t head = c.wire.find("\r\n\r\n") + 4;
  EXPECT_EQ(buf, c.wire.substr(head)) << "the head is consumed, nothing after it";
  EXPECT_TRUE(f.msg.framing_invalid);
  EXPECT_TRUE(f.ends_stream);
  EXPECT_EQ(f.msg.body_size, 0u);
  if (c.type == kReq) {
    EXPECT_EQ(f.msg.method(), "POST");
    EXPECT_TRUE(st.request_framing_lost);
  } else {
    EXPECT_EQ(f.msg.status_code, 200);
    EXPECT_TRUE(st.response_framing_lost);
  }
}

TEST_P(Http1InvalidFramingTest, EveryTruncatedHeadNeedsMoreData) {
  const InvalidCase& c = GetParam();
  const size_t head = c.wire.find("\r\n\r\n") + 4;
  for (size_t n = 1; n < head; ++n) {
    State st;
    st.pending.push_back(PendingRequest{1, 0, MethodKind::kOther, false});
    const string_view cut = c.wire.substr(0, n);
    string_view buf = cut;
    Frame f;
    ASSERT_EQ(ParseFrame(c.type, &buf, &f, &st), ParseState::kNeedsMoreData) << n;
    EXPECT_EQ(buf.size(), cut.size()) << n;
    EXPECT_FALSE(st.request_framing_lost || st.response_framing_lost) << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Http1InvalidFramingTest, testing::ValuesIn(kInvalidFraming),
                         [](const auto& info) { return string(info.param.name); });

// ---- Bounds -------------------------------------------------------------------------------

string RequestWithFields(size_t n, size_t value_len) {
  string s = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < n; ++i) s += "X-F" + std::to_string(i) + ": " + string(value_len, 'v') + "\r\n";
  return s + "\r\n";
}

ParseState ParseOnce(MessageType type, string_view wire, Frame* f = nullptr) {
  Frame local;
  State st;
  string_view buf = wire;
  const ParseState s = ParseFrame(type, &buf, f ? f : &local, &st);
  if (s != ParseState::kSuccess && s != ParseState::kEndOfStream) {
    EXPECT_EQ(buf.size(), wire.size());
  }
  return s;
}

TEST(Http1BoundsTest, FieldCount) {
  EXPECT_EQ(ParseOnce(kReq, RequestWithFields(kMaxHeaders, 4)), ParseState::kSuccess);
  EXPECT_EQ(ParseOnce(kReq, RequestWithFields(kMaxHeaders + 1, 4)), ParseState::kInvalid);
  // An incomplete head with too many fields is already invalid.
  const string many = RequestWithFields(kMaxHeaders + 1, 4);
  EXPECT_EQ(ParseOnce(kReq, many.substr(0, many.size() - 2)), ParseState::kInvalid);
}

TEST(Http1BoundsTest, LineLength) {
  // 16 KiB - a little for the name: fits; one line longer than the bound: invalid, even
  // before its end arrives.
  const string ok = "GET / HTTP/1.1\r\nCookie: " + string(kMaxLineBytes - 8, 'c') + "\r\n\r\n";
  EXPECT_EQ(ParseOnce(kReq, ok), ParseState::kSuccess);
  const string long_line = "GET / HTTP/1.1\r\nCookie: " + string(kMaxLineBytes, 'c') + "\r\n\r\n";
  EXPECT_EQ(ParseOnce(kReq, long_line), ParseState::kInvalid);
  EXPECT_EQ(ParseOnce(kReq, long_line.substr(0, long_line.size() - 4)), ParseState::kInvalid);
  const string long_target = "GET /" + string(kMaxLineBytes + 10, 'a');
  EXPECT_EQ(ParseOnce(kReq, long_target), ParseState::kInvalid);
}

TEST(Http1BoundsTest, HeadSize) {
  // 100 fields of ~600 bytes: 60 KiB, under the 64 KiB bound.
  EXPECT_EQ(ParseOnce(kReq, RequestWithFields(100, 600)), ParseState::kSuccess);
  // 120 fields of ~600 bytes: 72 KiB; complete or not, invalid.
  const string big = RequestWithFields(120, 600);
  EXPECT_EQ(ParseOnce(kReq, big), ParseState::kInvalid);
  EXPECT_EQ(ParseOnce(kReq, big.substr(0, kMaxHeadBytes + 10)), ParseState::kInvalid);
  // Just under the bound and incomplete: still waiting.
  EXPECT_EQ(ParseOnce(kReq, big.substr(0, kMaxHeadBytes - 100)), ParseState::kNeedsMoreData);
}

TEST(Http1BoundsTest, HugeContentLengthAllocatesNothing) {
  // 2^50 exactly is accepted; the frame waits for bytes without reserving anything.
  const string wire = "POST / HTTP/1.1\r\nContent-Length: 1125899906842624\r\n\r\nabc";
  State st;
  st.ctx.partial_ok = true;
  string_view buf = wire;
  Frame f;
  ASSERT_EQ(ParseFrame(kReq, &buf, &f, &st), ParseState::kSuccess);
  EXPECT_FALSE(FrameComplete(f));
  EXPECT_EQ(f.msg.body_size, uint64_t{1} << 50);
  EXPECT_EQ(f.msg.body_prefix, "abc");
  EXPECT_LE(f.msg.body_prefix.capacity(), 64u);
  EXPECT_EQ(OpaqueRemaining(f), (uint64_t{1} << 50) - 3);
}

TEST(Http1BoundsTest, BodyPrefixIsBounded) {
  const string body(10000, 'b');
  const string wire = "POST / HTTP/1.1\r\nContent-Length: 10000\r\n\r\n" + body;
  State st;
  st.max_body_prefix = 100;
  string_view buf = wire;
  Frame f;
  ASSERT_EQ(ParseFrame(kReq, &buf, &f, &st), ParseState::kSuccess);
  EXPECT_EQ(f.msg.body_size, 10000u);
  EXPECT_EQ(f.msg.body_prefix, string(100, 'b'));
  EXPECT_FALSE(f.msg.body_truncated);
}

// ---- Details ------------------------------------------------------------------------------

TEST(Http1ParseTest, FieldsKeptInOrderWithValuesTrimmed) {
  Frame f;
  ASSERT_EQ(ParseOnce(kReq, "GET / HTTP/1.1\r\nHost:  a.b  \r\nX-Empty:\r\nx-dup: 1\r\nX-Dup: 2\r\n\r\n", &f),
            ParseState::kSuccess);
  ASSERT_EQ(f.msg.headers().size(), 4u);
  EXPECT_EQ(f.msg.headers()[0], (std::pair<std::string_view, std::string_view>("Host", "a.b")));
  EXPECT_EQ(f.msg.headers()[1], (std::pair<std::string_view, std::string_view>("X-Empty", "")));
  EXPECT_EQ(f.msg.Header("HOST"), "a.b");
  EXPECT_EQ(f.msg.Header("X-DUP"), "1");
  EXPECT_TRUE(f.msg.HasHeader("x-empty"));
  EXPECT_FALSE(f.msg.HasHeader("x-missing"));
  EXPECT_EQ(f.msg.Header("x-missing"), "");
  EXPECT_EQ(f.msg.version(), "1.1");
}

TEST(Http1ParseTest, StrayEmptyLinesAreIgnored) {
  State st;
  const string wire = "\r\n\nGET / HTTP/1.1\r\n\r\n";
  string_view buf = wire;
  Frame f;
  ASSERT_EQ(ParseFrame(kReq, &buf, &f, &st), ParseState::kIgnored);
  EXPECT_EQ(buf, "GET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(ParseFrame(kReq, &buf, &f, &st), ParseState::kSuccess);
  string_view cr = "\r";
  Frame g;
  EXPECT_EQ(ParseFrame(kReq, &cr, &g, &st), ParseState::kNeedsMoreData);
}

TEST(Http1ParseTest, UpgradeAndConnectEndTheStream) {
  Frame f;
  EXPECT_EQ(ParseOnce(kReq, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", &f),
            ParseState::kEndOfStream);
  EXPECT_TRUE(f.ends_stream);
  EXPECT_EQ(ParseOnce(kReq, "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"), ParseState::kEndOfStream);
  EXPECT_EQ(ParseOnce(kResp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
            ParseState::kEndOfStream);

  State st;
  st.pending.push_back(PendingRequest{1, 0, MethodKind::kConnect, false});
  const string ok = "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01";
  string_view buf = ok;
  Frame r;
  EXPECT_EQ(ParseFrame(kResp, &buf, &r, &st), ParseState::kEndOfStream);
  EXPECT_EQ(buf, "\x16\x03\x01");  // the tunnel's bytes are not the response's body
  EXPECT_EQ(r.seq, 1u);
  // A refused CONNECT is an ordinary response.
  State st2;
  st2.pending.push_back(PendingRequest{1, 0, MethodKind::kConnect, false});
  const string refused = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n";
  buf = refused;
  Frame r2;
  EXPECT_EQ(ParseFrame(kResp, &buf, &r2, &st2), ParseState::kSuccess);
}

TEST(Http1ParseTest, InformationalDoesNotConsumeTheRequest) {
  State st;
  st.pending.push_back(PendingRequest{7, 0, MethodKind::kOther, false});
  const string wire = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  string_view buf = wire;
  Frame a, b;
  ASSERT_EQ(ParseFrame(kResp, &buf, &a, &st), ParseState::kSuccess);
  EXPECT_EQ(a.seq, 7u);
  EXPECT_EQ(st.pending.size(), 1u);
  ASSERT_EQ(ParseFrame(kResp, &buf, &b, &st), ParseState::kSuccess);
  EXPECT_EQ(b.seq, 7u);
  EXPECT_TRUE(st.pending.empty());
  EXPECT_EQ(st.last_final_seq, 7u);
}

TEST(Http1ParseTest, RequestsQueueForResponses) {
  State st;
  const string wire = "HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  string_view buf = wire;
  Frame a, b;
  st.ctx.first.first_ns = 100;
  ASSERT_EQ(ParseFrame(kReq, &buf, &a, &st), ParseState::kSuccess);
  ASSERT_EQ(ParseFrame(kReq, &buf, &b, &st), ParseState::kSuccess);
  EXPECT_EQ(a.seq, 1u);
  EXPECT_EQ(b.seq, 2u);
  ASSERT_EQ(st.pending.size(), 2u);
  EXPECT_EQ(st.pending[0].method, MethodKind::kHead);
  EXPECT_EQ(st.pending[0].start_ns, 100u);
  EXPECT_EQ(st.pending[1].method, MethodKind::kOther);
}

TEST(Http1ParseTest, ResponseWaitsForItsRequestWhenAsked) {
  State st;
  st.unmatched_ok_below = 100;
  const string wire = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  string_view buf = wire;
  Frame f;
  st.ctx.position = 100;
  EXPECT_EQ(ParseFrame(kResp, &buf, &f, &st), ParseState::kNeedsMoreData);
  EXPECT_EQ(buf.size(), wire.size());
  st.ctx.position = 99;
  EXPECT_EQ(ParseFrame(kResp, &buf, &f, &st), ParseState::kSuccess);
  EXPECT_EQ(f.seq, 0u);  // answers nothing we saw
}

// ---- Parsing in parts ---------------------------------------------------------------------

TEST(Http1PartialTest, HeadFirstThenBody) {
  State st;
  st.ctx.partial_ok = true;
  const string head = "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123";
  string_view buf = head;
  Frame f;
  ASSERT_EQ(ParseFrame(kReq, &buf, &f, &st), ParseState::kSuccess);
  EXPECT_TRUE(buf.empty());
  EXPECT_FALSE(FrameComplete(f));
  EXPECT_EQ(st.open_request_seq, 1u);
  EXPECT_EQ(OpaqueRemaining(f), 6u);
  // Nothing new: kNeedsMoreData, nothing changes.
  string_view none;
  EXPECT_EQ(ParseFrame(kReq, &none, &f, &st), ParseState::kNeedsMoreData);
  string_view rest = "456789GET";
  ASSERT_EQ(ParseFrame(kReq, &rest, &f, &st), ParseState::kSuccess);
  EXPECT_EQ(rest, "GET");
  EXPECT_TRUE(FrameComplete(f));
  EXPECT_EQ(f.msg.body_prefix, "0123456789");
  FinishFrame(kReq, &f, &st);
  EXPECT_EQ(st.open_request_seq, 0u);
}

TEST(Http1PartialTest, ChunkSizeLineCutStopsBeforeIt) {
  State st;
  st.ctx.partial_ok = true;
  const string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1";
  string_view buf = wire;
  Frame f;
  ASSERT_EQ(ParseFrame(kResp, &buf, &f, &st), ParseState::kSuccess);
  EXPECT_EQ(buf, "1");  // the cut-off size line is left for next time
  EXPECT_EQ(f.phase, Phase::kChunkSize);
  EXPECT_EQ(ParseFrame(kResp, &buf, &f, &st), ParseState::kNeedsMoreData);
  EXPECT_EQ(buf, "1");
  string_view more = "10\r\n0123456789ABCDEF\r\n0\r\n\r\n";  // the "1" again, and the rest
  ASSERT_EQ(ParseFrame(kResp, &more, &f, &st), ParseState::kSuccess);
  EXPECT_TRUE(FrameComplete(f));
  EXPECT_TRUE(more.empty());
  EXPECT_EQ(f.msg.body_size, 19u);
}

TEST(Http1PartialTest, HolesInsideOpaquePayload) {
  State st;
  st.ctx.partial_ok = true;
  // Chunk of 0x10 bytes: 4 captured, then a hole of 12 data bytes + the chunk's CRLF.
  const string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabcd";
  string_view buf = wire;
  Frame f;
  ASSERT_EQ(ParseFrame(kResp, &buf, &f, &st), ParseState::kSuccess);
  EXPECT_EQ(OpaqueRemaining(f), 12u);
  SkipHole(&f, 12);
  EXPECT_EQ(f.phase, Phase::kChunkDataEnd);
  EXPECT_EQ(OpaqueRemaining(f), 2u);  // the CRLF after chunk data is fixed framing
  SkipHole(&f, 2);
  EXPECT_EQ(f.phase, Phase::kChunkSize);
  string_view rest = "2\r\nef\r\n0\r\n\r\n";
  ASSERT_EQ(ParseFrame(kResp, &rest, &f, &st), ParseState::kSuccess);
  EXPECT_TRUE(FrameComplete(f));
  EXPECT_EQ(f.msg.body_size, 18u);
  EXPECT_EQ(f.msg.body_prefix, "abcd");  // only the leading captured bytes
  EXPECT_TRUE(f.msg.body_truncated);
}

TEST(Http1PartialTest, UntilCloseCountsHoles) {
  State st;
  st.ctx.partial_ok = true;
  const string wire = "HTTP/1.0 200 OK\r\n\r\nab";
  string_view buf = wire;
  Frame f;
  ASSERT_EQ(ParseFrame(kResp, &buf, &f, &st), ParseState::kSuccess);
  EXPECT_EQ(OpaqueRemaining(f), ~uint64_t{0});
  SkipHole(&f, 1000);
  st.ctx.end_of_stream = true;
  string_view tail = "z";
  ASSERT_EQ(ParseFrame(kResp, &tail, &f, &st), ParseState::kSuccess);
  EXPECT_TRUE(FrameComplete(f));
  EXPECT_EQ(f.msg.body_size, 1003u);
  EXPECT_EQ(f.msg.body_prefix, "ab");
}

// ---- Resynchronisation --------------------------------------------------------------------

struct BoundaryCase {
  const char* name;
  MessageType type;
  string_view buf;
  size_t start;
  size_t want;
};

constexpr size_t kNone = string_view::npos;

const BoundaryCase kBoundaries[] = {
    {"request_after_garbage", kReq, "xx}GET / HTTP/1.1\r\n", 1, 3},
    {"request_cut_off_method", kReq, "garbageGE", 1, 7},
    {"request_cut_off_after_space", kReq, "garbagePOST /", 1, 7},
    {"request_none", kReq, "nothing here", 1, kNone},
    {"request_word_not_method", kReq, "GETS / HTTP/1.1", 0, kNone},
    {"request_bad_line_skipped", kReq, "GET  x HEAD / HTTP/1.1\r\n", 0, 7},
    {"request_from_zero", kReq, "GET / HTTP/1.1\r\n", 0, 0},
    {"request_skips_start", kReq, "GET / HTTP/1.1\r\n", 1, kNone},
    {"response_after_body", kResp, "{\"a\":1}HTTP/1.1 200 OK\r\n", 1, 7},
    {"response_cut_off", kResp, "tailHTTP/", 1, 4},
    {"response_bad_status_skipped", kResp, "HTTP/1.1 abc HTTP/1.0 404 x\r\n", 1, 13},
    {"response_only_cut_off_h", kResp, "HHHH", 1, 3},  // the last "H" could start "HTTP/1."
    {"response_none_at_all", kResp, "xyz", 0, kNone},
};

class Http1BoundaryTest : public testing::TestWithParam<BoundaryCase> {};

TEST_P(Http1BoundaryTest, Finds) {
  const BoundaryCase& c = GetParam();
  State st;
  EXPECT_EQ(FindFrameBoundary(c.type, c.buf, c.start, &st), c.want);
}

INSTANTIATE_TEST_SUITE_P(Cases, Http1BoundaryTest, testing::ValuesIn(kBoundaries),
                         [](const auto& info) { return string(info.param.name); });

// A candidate's start line is judged by its first 64 bytes first, then whole: the answer
// must be the one the whole line gives, for lines ending (LF, CR LF, or not yet: cut off) on either
// side of those 64 bytes, and for a bad byte past them.
TEST(Http1Boundary, LongStartLinesAreJudgedWhole) {
  State st;
  for (size_t target = 40; target <= 80; ++target) {
    SCOPED_TRACE(target);
    const string path = "/" + string(target - 1, 'a');
    for (const char* end : {"\r\n", "\n", ""}) {
      const string req = "xxGET " + path + " HTTP/1.1" + end + (*end ? "Host: h\r\n" : "");
      EXPECT_EQ(FindFrameBoundary(kReq, req, 1, &st), 2u);
      const string resp = "xxHTTP/1.1 200 " + path + end;
      EXPECT_EQ(FindFrameBoundary(kResp, resp, 1, &st), 2u);
    }
    // A byte no request target or reason phrase may hold, wherever it falls.
    const string bad_path = path.substr(0, target - 2) + '\x01';
    EXPECT_EQ(FindFrameBoundary(kReq, "xxGET " + bad_path + " HTTP/1.1\r\n", 1, &st), kNone);
    EXPECT_EQ(FindFrameBoundary(kResp, "xxHTTP/1.1 200 " + bad_path + "\r\n", 1, &st), kNone);
    // A version that is no HTTP/1 version, past the first 64 bytes for long targets.
    EXPECT_EQ(FindFrameBoundary(kReq, "xxGET " + path + " HTTP/2.0\r\n", 1, &st), kNone);
  }
  // Garbage made of candidates, each rejected in its first bytes, holds no frame start.
  string garbage;
  while (garbage.size() < 256 * 1024) garbage += "GET \x01POST /\x01HEAD / HTTP/3\r\n";
  EXPECT_EQ(FindFrameBoundary(kReq, garbage, 0, &st), kNone);
  string resp_garbage;
  while (resp_garbage.size() < 256 * 1024) resp_garbage += "HTTP/1.1 2\x01HTTP/1.1 200 OK\x7f";
  EXPECT_EQ(FindFrameBoundary(kResp, resp_garbage, 0, &st), kNone);
}

struct LooksLikeCase {
  const char* name;
  string_view prefix;
  bool request;
  bool response;
};

const LooksLikeCase kLooksLike[] = {
    {"full_request_line", "GET / HTTP/1.1\r\nHost: a\r\n", true, false},
    {"method_and_space", "POST ", true, false},
    {"method_cut", "GE", false, false},
    {"method_no_space", "GET", false, false},
    {"partial_target", "DELETE /items/4", true, false},
    {"unknown_method", "FOO / HTTP/1.1\r\n", false, false},
    {"lowercase", "get / HTTP/1.1\r\n", false, false},
    {"bad_version", "GET / HTTP/2\r\n", false, false},
    {"control_in_target", "GET /\x01", false, false},
    {"status_line", "HTTP/1.1 200 OK\r\n", false, true},
    {"version_only", "HTTP/1.", false, true},
    {"version_cut", "HTTP/1", false, false},
    {"status_cut", "HTTP/1.1 2", false, true},
    {"status_bad", "HTTP/1.1 x", false, false},
    {"http2", "HTTP/2 200", false, false},
    {"tls", "\x16\x03\x01", false, false},
    {"empty", "", false, false},
};

class Http1LooksLikeTest : public testing::TestWithParam<LooksLikeCase> {};

TEST_P(Http1LooksLikeTest, Classifies) {
  EXPECT_EQ(LooksLikeRequest(GetParam().prefix), GetParam().request);
  EXPECT_EQ(LooksLikeResponse(GetParam().prefix), GetParam().response);
}

INSTANTIATE_TEST_SUITE_P(Cases, Http1LooksLikeTest, testing::ValuesIn(kLooksLike),
                         [](const auto& info) { return string(info.param.name); });

}  // namespace
}  // namespace kspan::protocols::http1
