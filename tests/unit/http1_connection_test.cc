#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "protocols/http1/connection.h"

namespace kspan::protocols::http1 {
namespace {

using std::string;
using std::string_view;

// Plays syscalls into a Connection the way the tracker does: positions per direction,
// a captured prefix of each syscall, one timestamp pair per syscall.
class Wire {
 public:
  explicit Wire(bool client = true, Limits limits = {}) : conn_(client, limits), client_(client) {}

  // One syscall moving `bytes` in the request direction at time t, of which the first
  // `captured` bytes were seen.
  void Request(string_view bytes, uint64_t t, size_t captured = string::npos, uint32_t tid = 1) {
    Send(true, bytes, t, captured, tid);
  }
  void Response(string_view bytes, uint64_t t, size_t captured = string::npos, uint32_t tid = 2) {
    Send(false, bytes, t, captured, tid);
  }
  // A syscall whose event never reaches user space.
  void LoseRequest(size_t n) { pos_[1] += n; }

  // A syscall delivered at an explicit position (for reordering).
  void RequestAt(uint64_t pos, string_view bytes, uint64_t t) {
    conn_.AddData(client_, pos, bytes, static_cast<uint32_t>(bytes.size()), t, t + 5, 1);
  }

  std::vector<Record> Drain() {
    std::vector<Record> out;
    conn_.Drain(&out, &stats);
    total.frames_invalid += stats.frames_invalid;
    total.frames_cut += stats.frames_cut;
    total.bytes_dropped += stats.bytes_dropped;
    total.responses_unmatched += stats.responses_unmatched;
    total.requests_unanswered += stats.requests_unanswered;
    total.gaps += stats.gaps;
    return out;
  }

  Connection& conn() { return conn_; }

  Stats stats;  // of the last Drain
  Stats total;

 private:
  void Send(bool request, string_view bytes, uint64_t t, size_t captured, uint32_t tid) {
    const bool egress = request == client_;
    const size_t n = std::min(captured, bytes.size());
    uint64_t& pos = pos_[request ? 1 : 0];
    conn_.AddData(egress, pos, bytes.substr(0, n), static_cast<uint32_t>(bytes.size()), t, t + 5, tid);
    pos += bytes.size();
  }

  Connection conn_;
  bool client_;
  uint64_t pos_[2] = {0, 0};
};

string Get(string_view target) {
  return "GET " + string(target) + " HTTP/1.1\r\nHost: h\r\n\r\n";
}

string Ok(int status, string_view body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + string(body);
}

// "target→status" per record, "target→-" when the response is missing.
string Summary(const std::vector<Record>& records) {
  string s;
  for (const Record& r : records) {
    if (!s.empty()) s += ' ';
    s += std::string(r.request.target()) + "→" +
         (r.response_missing ? "-" : std::to_string(r.response.status_code));
  }
  return s;
}

TEST(Http1ConnectionTest, RequestAndResponseWithTiming) {
  Wire w;
  w.Request(Get("/a"), 100, string::npos, 7);
  w.Response(Ok(200, "hello"), 200, string::npos, 9);
  const auto rs = w.Drain();
  ASSERT_EQ(rs.size(), 1u);
  const Record& r = rs[0];
  EXPECT_EQ(r.request.method(), "GET");
  EXPECT_EQ(r.request.target(), "/a");
  EXPECT_EQ(r.request.Header("host"), "h");
  EXPECT_EQ(r.request.timing.start_ns, 100u);
  EXPECT_EQ(r.request.timing.end_ns, 105u);
  EXPECT_EQ(r.request.timing.tid, 7u);
  EXPECT_EQ(r.response.status_code, 200);
  EXPECT_EQ(r.response.body_prefix, "hello");
  EXPECT_EQ(r.response.timing.start_ns, 200u);
  EXPECT_EQ(r.response.timing.end_ns, 205u);
  EXPECT_EQ(r.response.timing.tid, 9u);
  EXPECT_FALSE(r.response_missing);
  EXPECT_EQ(w.stats.frames_invalid, 0u);
  EXPECT_EQ(w.stats.bytes_dropped, 0u);
}

TEST(Http1ConnectionTest, ServerSide) {
  Wire w(/*client=*/false);
  w.Request(Get("/srv"), 100);
  w.Response(Ok(404, ""), 200);
  EXPECT_EQ(Summary(w.Drain()), "/srv→404");
}

TEST(Http1ConnectionTest, MessageSpanningSyscallsTakesFirstAndLastTimes) {
  Wire w;
  w.Request("POST /p HTTP/1.1\r\nContent-Length: 6\r\n\r\n", 100, string::npos, 3);
  w.Request("abc", 150, string::npos, 4);
  w.Request("def", 160, string::npos, 4);
  w.Response(Ok(201, ""), 300);
  const auto rs = w.Drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].request.timing.start_ns, 100u);
  EXPECT_EQ(rs[0].request.timing.end_ns, 165u);
  EXPECT_EQ(rs[0].request.timing.tid, 3u);
  EXPECT_EQ(rs[0].request.body_prefix, "abcdef");
}

string Pattern(size_t n) {
  string s(n, ' ');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// A 1 MiB body written in 64 KiB writes of which kspan captured 4 KiB each.
TEST(Http1ConnectionTest, MegabyteContentLengthBodyThroughHoles) {
  Wire w;
  const size_t kBody = 1 << 20, kWrite = 64 << 10, kCapture = 4 << 10;
  const string body = Pattern(kBody);
  w.Request(Get("/big"), 100);
  w.Response("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n", 200);
  for (size_t off = 0; off < kBody; off += kWrite)
    w.Response(string_view(body).substr(off, kWrite), 300 + off / kWrite, kCapture);
  w.Request(Get("/next"), 1000);
  w.Response(Ok(204, ""), 1100);
  const auto rs = w.Drain();
  ASSERT_EQ(rs.size(), 2u);
  const Message& m = rs[0].response;
  EXPECT_EQ(m.body_size, kBody);
  EXPECT_TRUE(m.body_truncated);
  EXPECT_EQ(m.body_prefix, body.substr(0, 4096));
  EXPECT_EQ(m.timing.end_ns, 300u + 15 + 5);  // the last write
  EXPECT_EQ(Summary(rs), "/big→200 /next→204");
  EXPECT_EQ(w.stats.frames_invalid, 0u);
  EXPECT_EQ(w.stats.gaps, 0u);
}

TEST(Http1ConnectionTest, MegabyteBodyHeadInTheSameWrite) {
  Wire w;
  const string body = Pattern(1 << 20);
  const string head = "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n";
  w.Request(Get("/big"), 100);
  // writev(head, first 64 KiB), then 64 KiB writes; 4 KiB captured of each.
  w.Response(head + body.substr(0, 65536), 200, 4096);
  for (size_t off = 65536; off < body.size(); off += 65536)
    w.Response(string_view(body).substr(off, 65536), 300, 4096);
  const auto rs = w.Drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].response.body_size, 1u << 20);
  EXPECT_EQ(rs[0].response.body_prefix, body.substr(0, 4096 - head.size()));
  EXPECT_TRUE(rs[0].response.body_truncated);
}

TEST(Http1ConnectionTest, MegabyteChunkedBodyThroughHoles) {
  Wire w;
  const string data = Pattern(65536);
  w.Request(Get("/stream"), 100);
  w.Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200);
  // Each write: size line, 64 KiB of data, CRLF; 4 KiB captured, so each write's data tail
  // and CRLF fall in a hole and the next size line is captured.
  for (int i = 0; i < 16; ++i) w.Response("10000\r\n" + data + "\r\n", 300 + i, 4096);
  w.Response("0\r\n\r\n", 400);
  w.Request(Get("/after"), 500);
  w.Response(Ok(200, "x"), 600);
  const auto rs = w.Drain();
  ASSERT_EQ(rs.size(), 2u) << Summary(rs);
  EXPECT_EQ(rs[0].response.body_size, 1u << 20);
  EXPECT_TRUE(rs[0].response.body_truncated);
  EXPECT_EQ(rs[0].response.body_prefix, data.substr(0, 4096 - 7));
  EXPECT_EQ(rs[0].response.timing.end_ns, 405u);
  EXPECT_EQ(rs[1].response.body_prefix, "x");
  EXPECT_EQ(w.stats.gaps, 0u);
  EXPECT_EQ(w.stats.frames_invalid, 0u);
}

TEST(Http1ConnectionTest, HundredKeepAliveRequestsInOrder) {
  Wire w;
  std::vector<Record> all;
  for (int i = 0; i < 100; ++i) {
    const uint64_t t = 1000 + i * 100;
    w.Request(Get("/r" + std::to_string(i)), t);
    w.Response(Ok(200 + i % 3, "body" + std::to_string(i)), t + 50);
    if (i % 10 == 9) {
      auto rs = w.Drain();
      all.insert(all.end(), rs.begin(), rs.end());
    }
  }
  ASSERT_EQ(all.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    SCOPED_TRACE(i);
    const Record& r = all[i];
    EXPECT_EQ(r.request.target(), "/r" + std::to_string(i));
    EXPECT_EQ(r.response.status_code, 200 + i % 3);
    EXPECT_EQ(r.response.body_prefix, "body" + std::to_string(i));
    EXPECT_LE(r.request.timing.start_ns, r.request.timing.end_ns);
    EXPECT_LT(r.request.timing.end_ns, r.response.timing.start_ns);
    EXPECT_LE(r.response.timing.start_ns, r.response.timing.end_ns);
    if (i > 0) {
      EXPECT_LT(all[i - 1].response.timing.end_ns, r.request.timing.start_ns);
    }
  }
  EXPECT_EQ(w.total.frames_invalid, 0u);
  EXPECT_EQ(w.total.responses_unmatched, 0u);
}

TEST(Http1ConnectionTest, HoleInsideRequestHeadResyncsWithoutAWrongRecord) {
  Wire w;
  w.Request(Get("/1"), 100);
  w.Response(Ok(201, ""), 150);
  const string big = "GET /2 HTTP/1.1\r\nHost: h\r\nCookie: " + string(300, 'c') + "\r\n\r\n";
  w.Request(big, 200, 50);  // head cut by a hole
  w.Response(Ok(202, ""), 250);
  w.Request(Get("/3"), 300);
  w.Response(Ok(203, ""), 350);
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/1→201 /3→203");
  EXPECT_GE(w.stats.frames_invalid, 1u);
  EXPECT_GE(w.stats.gaps, 1u);
  EXPECT_EQ(w.stats.responses_unmatched, 1u);  // 202 answered the lost request
}

TEST(Http1ConnectionTest, HoleInsideResponseHeadResyncsWithoutAWrongRecord) {
  Wire w;
  w.Request(Get("/1"), 100);
  w.Response(Ok(201, ""), 150);
  w.Request(Get("/2"), 200);
  w.Response("HTTP/1.1 202 X\r\nContent-Length: 0\r\nX-Pad: " + string(300, 'p') + "\r\n\r\n", 250, 40);
  w.Request(Get("/3"), 300);
  w.Response(Ok(203, ""), 350);
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/1→201 /2→- /3→203");
  EXPECT_GE(w.stats.frames_invalid, 1u);
  EXPECT_EQ(w.stats.requests_unanswered[Unanswered::kNotCaptured], 1u) << "its answer was in the hole";
  EXPECT_EQ(w.stats.requests_unanswered.Total(), 1u);
  EXPECT_EQ(rs[1].unanswered, Unanswered::kNotCaptured);
}

TEST(Http1ConnectionTest, HoleInsideChunkFramingResyncs) {
  Wire w;
  w.Request(Get("/1"), 100);
  // The size line of the second chunk falls in a hole: the body's end cannot be found.
  w.Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 150);
  w.Response("5\r\nhello\r\n0\r\n\r\n", 160, 1);
  w.Request(Get("/2"), 200);
  w.Response(Ok(202, ""), 250);
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/1→- /2→202");
  EXPECT_GE(w.stats.frames_invalid, 1u);
}

TEST(Http1ConnectionTest, ResponseArrivingBeforeItsRequestWaits) {
  Wire w;
  w.Response(Ok(200, "early"), 200);
  EXPECT_TRUE(w.Drain().empty());
  EXPECT_EQ(w.stats.responses_unmatched, 0u);
  w.Request(Get("/late"), 100);
  EXPECT_EQ(Summary(w.Drain()), "/late→200");
}

TEST(Http1ConnectionTest, ResponseWithoutRequestGivenUpAfterADrain) {
  Wire w;
  w.Response(Ok(200, ""), 200);  // its request was sent before kspan looked
  EXPECT_TRUE(w.Drain().empty());
  EXPECT_TRUE(w.Drain().empty());
  EXPECT_EQ(w.stats.responses_unmatched, 1u);
  w.Request(Get("/x"), 300);
  w.Response(Ok(204, ""), 400);
  EXPECT_EQ(Summary(w.Drain()), "/x→204");
}

TEST(Http1ConnectionTest, Pipelining) {
  Wire w;
  w.Request(Get("/1") + Get("/2") + "HEAD /3 HTTP/1.1\r\n\r\n", 100);
  w.Response(Ok(200, "one") + Ok(201, "two") + "HTTP/1.1 202 X\r\nContent-Length: 99\r\n\r\n", 200);
  w.Request(Get("/4"), 300);
  w.Response(Ok(203, ""), 400);
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/1→200 /2→201 /3→202 /4→203");
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[2].response.body_size, 0u);
}

TEST(Http1ConnectionTest, HeadResponseHasNoBody) {
  Wire w;
  w.Request("HEAD /h HTTP/1.1\r\n\r\n", 100);
  w.Response("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 200);
  w.Request(Get("/g"), 300);
  w.Response(Ok(200, "body"), 400);
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/h→200 /g→200");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].response.body_prefix, "body");
}

TEST(Http1ConnectionTest, ExpectContinue) {
  Wire w;
  w.Request("POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", 100);
  EXPECT_TRUE(w.Drain().empty());
  w.Response("HTTP/1.1 100 Continue\r\n\r\n", 200);
  EXPECT_TRUE(w.Drain().empty());
  w.Request("data", 300);
  EXPECT_TRUE(w.Drain().empty());
  w.Response(Ok(201, ""), 400);
  const auto rs = w.Drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].informational_statuses, std::vector<int>{100});
  EXPECT_EQ(rs[0].response.status_code, 201);
  EXPECT_EQ(rs[0].response.timing.start_ns, 400u);
  EXPECT_EQ(rs[0].request.timing.end_ns, 305u);
  EXPECT_EQ(rs[0].request.body_prefix, "data");
}

TEST(Http1ConnectionTest, EarlyFinalResponseWaitsForTheRequestBody) {
  Wire w;
  w.Request("POST /up HTTP/1.1\r\nContent-Length: 4\r\n\r\n", 100);
  w.Response(Ok(413, ""), 200);
  EXPECT_TRUE(w.Drain().empty());
  w.Request("data", 300);
  EXPECT_EQ(Summary(w.Drain()), "/up→413");
}

TEST(Http1ConnectionTest, CloseDelimitedResponseEndsAtClose) {
  Wire w;
  w.Request("GET /old HTTP/1.0\r\n\r\n", 100);
  w.Response("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart one,", 200);
  w.Response(" part two", 210);
  EXPECT_TRUE(w.Drain().empty());
  w.conn().Close();
  const auto rs = w.Drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].response.body_prefix, "part one, part two");
  EXPECT_EQ(rs[0].response.body_size, 18u);
  EXPECT_EQ(rs[0].response.timing.end_ns, 215u);
  EXPECT_FALSE(rs[0].response_missing);
}

TEST(Http1ConnectionTest, CloseDelimitedResponseWithTrailingHole) {
  Wire w;
  w.Request(Get("/dl"), 100);
  w.Response("HTTP/1.1 200 OK\r\n\r\n", 200);
  w.Response(Pattern(10000), 210, 100);
  w.conn().Close();
  const auto rs = w.Drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].response.body_size, 10000u);
  EXPECT_EQ(rs[0].response.body_prefix, Pattern(100));
  EXPECT_TRUE(rs[0].response.body_truncated);
  EXPECT_EQ(w.stats.gaps, 0u);
}

TEST(Http1ConnectionTest, BytesArrivingAfterCloseBeforeTheDrainCount) {
  Wire w;
  w.Request(Get("/r"), 100);
  w.conn().Close();  // the close event overtook the response's data event
  w.Response(Ok(200, "late"), 200);
  EXPECT_EQ(Summary(w.Drain()), "/r→200");
}

TEST(Http1ConnectionTest, CloseReportsUnansweredRequests) {
  Wire w;
  w.Request(Get("/1") + Get("/2"), 100);
  w.Response(Ok(200, ""), 200);
  w.Response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 300);  // cut short by close
  EXPECT_EQ(Summary(w.Drain()), "/1→200");
  w.conn().Close();
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/2→-");
  // An answer was begun and cut off: kspan did not see how it ended. A message cut by the
  // close is no parse failure (a client gone mid-response: wrk at its end, say).
  EXPECT_EQ(rs[0].unanswered, Unanswered::kNotCaptured);
  EXPECT_EQ(w.stats.requests_unanswered[Unanswered::kNotCaptured], 1u);
  EXPECT_EQ(w.stats.frames_cut, 1u);
  EXPECT_EQ(w.total.frames_invalid, 0u);
  // Nothing more after the final drain.
  w.Request(Get("/3"), 400);
  EXPECT_TRUE(w.Drain().empty());
}

TEST(Http1ConnectionTest, WebSocketUpgrade) {
  Wire w;
  w.Request("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 100);
  w.Request("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 300);  // a masked frame
  w.Response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", 200);
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/chat→101");
  EXPECT_TRUE(w.conn().upgraded());
  EXPECT_EQ(w.stats.frames_invalid, 0u);
  w.Response("\x81\x05world", 400);
  w.conn().Close();
  EXPECT_TRUE(w.Drain().empty());
  EXPECT_EQ(w.stats.frames_invalid, 0u);
}

TEST(Http1ConnectionTest, DeclinedUpgradeKeepsParsing) {
  Wire w;
  w.Request("GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n", 100);
  w.Request(Get("/second"), 300);
  w.Response(Ok(200, "no upgrade"), 200);
  w.Response(Ok(201, ""), 400);
  EXPECT_EQ(Summary(w.Drain()), "/→200 /second→201");
  EXPECT_FALSE(w.conn().upgraded());
}

TEST(Http1ConnectionTest, ConnectTunnel) {
  Wire w;
  w.Request("CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n", 100);
  w.Response("HTTP/1.1 200 Connection Established\r\n\r\n", 200);
  w.Request("\x16\x03\x01\x02\x00", 300);
  EXPECT_EQ(Summary(w.Drain()), "db:5432→200");
  EXPECT_TRUE(w.conn().upgraded());
}

TEST(Http1ConnectionTest, GarbageBeforeFirstFramesIsSkipped) {
  Wire w;
  w.Request("e\": 1}\r\n", 100);  // tail of a body sent before kspan looked
  w.Request(Get("/ok"), 200);
  w.Response("ld\"}", 250);
  w.Response(Ok(200, ""), 300);
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/ok→200");
  EXPECT_EQ(w.stats.frames_invalid, 2u);
  EXPECT_EQ(w.stats.bytes_dropped, 12u);
}

TEST(Http1ConnectionTest, OutOfOrderChunks) {
  Wire w;
  const string req = Get("/ooo");
  w.RequestAt(10, req.substr(10, 10), 110);
  w.RequestAt(20, req.substr(20), 120);
  w.RequestAt(0, req.substr(0, 10), 100);
  w.Response(Ok(200, ""), 200);
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/ooo→200");
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].request.timing.start_ns, 100u);
  EXPECT_EQ(rs[0].request.timing.end_ns, 125u);
}

TEST(Http1ConnectionTest, LostEventBecomesAHoleAfterADrain) {
  Wire w;
  w.LoseRequest(Get("/lost").size());
  w.Response(Ok(200, "a"), 150);  // the answer to the lost request
  w.Request(Get("/kept"), 200);
  w.Response(Ok(201, "b"), 250);
  EXPECT_TRUE(w.Drain().empty());  // waiting for the missing bytes
  const auto rs = w.Drain();
  EXPECT_EQ(Summary(rs), "/kept→201");
  EXPECT_EQ(w.total.gaps, 1u);
  EXPECT_EQ(w.total.responses_unmatched, 1u);
}

TEST(Http1ConnectionTest, StatsAreSinceTheLastDrain) {
  Wire w;
  w.Request("garbage\r\n", 100);
  w.Drain();
  EXPECT_EQ(w.stats.frames_invalid, 1u);
  w.Drain();
  EXPECT_EQ(w.stats.frames_invalid, 0u);
  EXPECT_EQ(w.stats.bytes_dropped, 0u);
}

TEST(Http1ConnectionTest, BufferCapDropsAndRecovers) {
  Limits limits;
  limits.max_buffered_bytes = 4096;
  Wire w(true, limits);
  // A request line that never ends, written in small pieces: it piles up to the cap.
  w.Request("GET /", 100);
  for (int i = 0; i < 20; ++i) w.Request(string(500, 'a'), 101 + i);
  w.Drain();
  EXPECT_GT(w.total.bytes_dropped, 0u);
  w.Request("\r\n\r\n", 150);
  w.Request(Get("/fine"), 200);
  w.Response(Ok(200, ""), 300);
  EXPECT_EQ(Summary(w.Drain()), "/fine→200");
}

// Why a request has no answer decides what its span claims (correlator/unanswered.h):
// only a clean close with the response stream whole says the server did not answer.
TEST(Http1ConnectionTest, UnansweredReasonAtClose) {
  for (const Unanswered reason :
       {Unanswered::kNoResponse, Unanswered::kEvicted, Unanswered::kProcessExit, Unanswered::kShutdown}) {
    Wire w;
    w.Request(Get("/1"), 100);
    w.Response(Ok(200, ""), 150);
    w.Request(Get("/2"), 200);
    w.conn().Close(reason);
    const auto rs = w.Drain();
    ASSERT_EQ(Summary(rs), "/1→200 /2→-");
    EXPECT_EQ(rs[1].unanswered, reason);
    EXPECT_EQ(w.stats.requests_unanswered[reason], 1u);
  }
  // Bytes of the response stream lost after the last answer: it may have been among them.
  Wire w;
  w.Request(Get("/1"), 100);
  w.Response(Ok(200, ""), 150);
  w.Request(Get("/2"), 200);
  w.Response(Ok(200, "lost"), 250, 0);
  w.conn().Close(Unanswered::kNoResponse);
  const auto rs = w.Drain();
  ASSERT_EQ(Summary(rs), "/1→200 /2→-");
  EXPECT_EQ(rs[1].unanswered, Unanswered::kNotCaptured);
}

// Requests past max_pending_requests that no answer has made room for wait, unparsed, for
// their answers: the oldest are given up (counted) only at the connection's end, or near
// the request stream's buffer cap (below).
TEST(Http1ConnectionTest, TooManyPendingRequestsGivenUpAtClose) {
  Limits limits;
  limits.max_pending_requests = 3;
  Wire w(true, limits);
  for (int i = 0; i < 5; ++i) w.Request(Get("/" + std::to_string(i)), 100 + i);
  EXPECT_TRUE(w.Drain().empty()) << "the requests past the bound wait for answers";
  EXPECT_EQ(w.stats.requests_unanswered.Total(), 0u);
  w.conn().Close();
  EXPECT_EQ(Summary(w.Drain()), "/0→- /1→- /2→- /3→- /4→-");
  EXPECT_EQ(w.stats.requests_unanswered[Unanswered::kNotCaptured], 5u) << "given up waiting";
}

// A client that pipelines more requests than may wait, drained before any answer was
// captured (the server answers a little later; or its answers come in the next drain):
// every request is paired with its answer. Before, the drain gave the oldest up and their
// answers came out unmatched, so the records depended on where the drains fell (found by
// http1_fuzz: split gives different records than whole).
TEST(Http1ConnectionTest, DrainsBeforeTheAnswersGiveNoRequestUp) {
  for (const bool client : {true, false}) {
    SCOPED_TRACE(client ? "client" : "server");
    Limits limits;
    limits.max_pending_requests = 3;
    Wire w(client, limits);
    for (int i = 0; i < 10; ++i) {
      w.Request(Get("/" + std::to_string(i)), 100 + i);
      EXPECT_TRUE(w.Drain().empty());
    }
    for (int i = 0; i < 10; ++i) w.Response(Ok(200, ""), 200 + i);
    EXPECT_EQ(Summary(w.Drain()), "/0→200 /1→200 /2→200 /3→200 /4→200 /5→200 /6→200 /7→200 /8→200 /9→200");
    EXPECT_EQ(w.total.requests_unanswered.Total(), 0u);
    EXPECT_EQ(w.total.responses_unmatched, 0u);
  }
}

// An answer whose head came in one drain and its body in the next, in a backlog past the
// bound: its request is being answered, not waiting, so it is not the one given up when
// the room its head made lets one more request be parsed (found by http1_fuzz).
TEST(Http1ConnectionTest, AnAnswerCutByADrainInAFullBacklogStaysPaired) {
  for (const bool cut : {false, true}) {
    SCOPED_TRACE(cut ? "a drain inside the answer" : "one drain");
    Limits limits;
    limits.max_pending_requests = 3;
    Wire w(true, limits);
    for (int i = 0; i < 5; ++i) w.Request(Get("/" + std::to_string(i)), 100 + i);
    std::vector<Record> rs = w.Drain();
    w.Response(Ok(200, ""), 200);
    w.Response("HTTP/1.1 201 X\r\nContent-Length: 2\r\n\r\n", 201);
    if (cut) {
      for (Record& r : w.Drain()) rs.push_back(std::move(r));
    }
    w.Response("ab", 202);
    for (Record& r : w.Drain()) rs.push_back(std::move(r));
    w.conn().Close();
    for (Record& r : w.Drain()) rs.push_back(std::move(r));
    EXPECT_EQ(Summary(rs), "/0→200 /1→201 /2→- /3→- /4→-");
    EXPECT_EQ(w.total.responses_unmatched, 0u);
  }
}

// After a lost response on a pipelining connection, which requests the next answer gives
// up is decided by the syscall times over every request that started before it; requests
// held back unparsed (past the bound) did too. So it waits for them, and the records are
// the same wherever the drains fell (found by http1_fuzz: two requests held back in one
// run were paired with the answers after the loss, given up in the other).
TEST(Http1ConnectionTest, AnAnswerAfterALossWaitsForTheRequestsHeldBack) {
  for (const bool every : {false, true}) {
    SCOPED_TRACE(every ? "a drain after every syscall" : "one drain");
    Limits limits;
    limits.max_pending_requests = 3;
    Wire w(true, limits);
    std::vector<Record> rs;
    auto drain = [&](bool now) {
      if (!now) return;
      for (Record& r : w.Drain()) rs.push_back(std::move(r));
    };
    for (int i = 0; i < 6; ++i) {
      w.Request(Get("/" + std::to_string(i)), 100 + i);
      drain(every);
    }
    w.Response(Ok(200, ""), 200);
    drain(every);
    w.Response("HTTP/1.1 abc\r\n\r\n", 201);  // not a status line: the answer to /1 is lost
    drain(every);
    w.Response(Ok(201, ""), 202);
    drain(every);
    w.Response(Ok(404, ""), 203);
    drain(true);
    w.conn().Close();
    drain(true);
    // Every request waiting started before the 201: it gives them all up (undecidable
    // which it answers); neither it nor the 404 answers a request kspan holds.
    EXPECT_EQ(Summary(rs), "/0→200 /1→- /2→- /3→- /4→- /5→-");
    EXPECT_EQ(w.total.responses_unmatched + w.stats.responses_unmatched_at_close, 2u);
  }
}

// A client that pipelines without reading, the server answering nothing: the requests held
// back are bounded by the stream's buffer: near its cap they are parsed and the oldest are
// given up (counted), and no byte is dropped.
TEST(Http1ConnectionTest, PipelinerWithoutAnswersBoundedByTheBuffer) {
  Limits limits;
  limits.max_pending_requests = 3;
  limits.max_buffered_bytes = 4096;
  Wire w(true, limits);
  const int n = 400;  // about 11 KiB of requests
  for (int i = 0; i < n; ++i) w.Request(Get("/" + std::to_string(i)), 100 + i);
  auto rs = w.Drain();
  EXPECT_GT(rs.size(), 300u) << "given up near the cap, not held";
  EXPECT_EQ(w.total.requests_unanswered[Unanswered::kNotCaptured], rs.size());
  w.conn().Close();
  for (Record& r : w.Drain()) rs.push_back(std::move(r));
  ASSERT_EQ(rs.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(rs[i].request.target(), "/" + std::to_string(i));
  EXPECT_EQ(w.total.bytes_dropped, 0u);
  EXPECT_EQ(w.total.requests_unanswered.Total(), static_cast<uint64_t>(n));
}

// A busy keep-alive connection (ab -k against nginx: ~10k exchanges a second) carries far
// more exchanges between two drains than requests may wait for an answer. Every one of
// them is paired, on both ends; before, the requests were parsed all at once, the oldest
// were pushed out of the waiting queue, and their responses came out unmatched.
// The whole connection may also be in one drain, closed: its responses still wait for the
// requests not parsed yet.
TEST(Http1ConnectionTest, KeepAliveBacklogBetweenDrainsIsPaired) {
  for (const bool client : {true, false}) {
    for (const bool closed : {false, true}) {
      SCOPED_TRACE(std::string(client ? "client" : "server") + (closed ? ", closed" : ""));
      Limits limits;
      limits.max_pending_requests = 8;
      Wire w(client, limits);
      uint64_t t = 1000;
      for (int i = 0; i < 100; ++i) {
        w.Request("GET /" + std::to_string(i) + " HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", t);
        w.Response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n", t + 10);
        t += 20;
      }
      if (closed) w.conn().Close();
      const auto rs = w.Drain();
      ASSERT_EQ(rs.size(), 100u);
      for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(rs[i].request.target(), "/" + std::to_string(i));
        EXPECT_FALSE(rs[i].response_missing) << i;
        EXPECT_EQ(rs[i].response.status_code, 200) << i;
      }
      EXPECT_EQ(w.total.responses_unmatched, 0u);
      EXPECT_EQ(w.total.requests_unanswered.Total(), 0u);
    }
  }
}

// The bound still holds when the server answers less than the client sends: the first
// answer goes to the first request and frees room for one more; the rest wait for answers,
// and at the end the oldest of those still waiting give way, counted, while at most
// max_pending_requests wait.
TEST(Http1ConnectionTest, UnansweredBacklogStillBounded) {
  Limits limits;
  limits.max_pending_requests = 3;
  Wire w(true, limits);
  for (int i = 0; i < 6; ++i) w.Request(Get("/" + std::to_string(i)), 100 + i);
  w.Response(Ok(200, ""), 200);
  EXPECT_EQ(Summary(w.Drain()), "/0→200");
  EXPECT_EQ(w.stats.requests_unanswered.Total(), 0u);
  EXPECT_EQ(w.stats.responses_unmatched, 0u);
  w.conn().Close();
  EXPECT_EQ(Summary(w.Drain()), "/1→- /2→- /3→- /4→- /5→-");
  // Requests were pushed out while answers may have been on their way: not captured.
  EXPECT_EQ(w.stats.requests_unanswered[Unanswered::kNotCaptured], 5u);
}

TEST(Http1ConnectionTest, OneByteWrites) {
  Wire w;
  const string req = "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n";
  const string resp = Ok(200, "fine");
  for (size_t i = 0; i < req.size(); ++i) {
    w.Request(req.substr(i, 1), 100 + i);
    if (i % 7 == 0) {
      EXPECT_TRUE(w.Drain().empty());
    }
  }
  for (size_t i = 0; i < resp.size(); ++i) w.Response(resp.substr(i, 1), 1000 + i);
  const auto rs = w.Drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].request.body_prefix, "abc");
  EXPECT_EQ(rs[0].request.timing.start_ns, 100u);
  EXPECT_EQ(rs[0].request.timing.end_ns, 100 + req.size() - 1 + 5);
  EXPECT_EQ(rs[0].response.body_prefix, "fine");
  EXPECT_EQ(w.total.frames_invalid, 0u);
}

TEST(Http1ConnectionTest, BusyConnectionParsesBeforeTheCap) {
  // 3 MiB of small pairs with no drain in between: parsed under pressure, nothing dropped.
  Wire w;
  const string resp = Ok(200, string(1000, 'x'));
  size_t n = 0;
  for (uint64_t t = 0; n * resp.size() < (3u << 20); ++n, t += 10) {
    w.Request(Get("/p"), t);
    w.Response(resp, t + 5);
  }
  const auto rs = w.Drain();
  EXPECT_EQ(rs.size(), n);
  EXPECT_EQ(w.stats.bytes_dropped, 0u);
}

// Wide bodies (Limits::wide_body_request): an LLM-style request and its response keep up
// to max_wide_body_prefix bytes, then the last max_wide_body_tail bytes; marks say where
// each syscall's bytes begin in the decoded body, and when.
bool WideWhenPost(const Message& head) {
  return head.method() == "POST";
}

Limits WideLimits() {
  Limits l;
  l.max_body_prefix = 8;
  l.wide_body_request = &WideWhenPost;
  l.max_wide_body_prefix = 16;
  l.max_wide_body_tail = 8;
  return l;
}

TEST(Http1WideBody, PrefixTailAndMarksOfAChunkedStream) {
  Wire w(true, WideLimits());
  w.Request("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij", 100);
  w.Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200);
  w.Response("a\r\nAAAAAAAAAA\r\n", 300);           // body 0..9
  w.Response("a\r\nBBBBBBBBBB\r\n", 400);           // body 10..19
  w.Response("a\r\nCCCCCCCCCC\r\n0\r\n\r\n", 500);  // body 20..29
  const auto recs = w.Drain();
  ASSERT_EQ(recs.size(), 1u);
  const Message& rq = recs[0].request;
  EXPECT_TRUE(rq.wide_body);
  EXPECT_EQ(rq.body_prefix, "0123456789abcdef");
  EXPECT_EQ(rq.body_tail, "ghij");
  EXPECT_EQ(rq.body_tail_offset, 16u);
  const Message& rs = recs[0].response;
  EXPECT_TRUE(rs.wide_body);
  EXPECT_EQ(rs.body_prefix, "AAAAAAAAAABBBBBB");
  EXPECT_EQ(rs.body_tail, "CCCCCCCC");  // the last 8 of the 14 bytes past the prefix
  EXPECT_EQ(rs.body_tail_offset, 22u);
  ASSERT_EQ(rs.body_marks.size(), 3u);
  EXPECT_EQ(rs.body_marks[0].offset, 0u);
  EXPECT_EQ(rs.body_marks[0].ns, 300u);
  EXPECT_EQ(rs.body_marks[1].offset, 10u);
  EXPECT_EQ(rs.body_marks[1].ns, 400u);
  EXPECT_EQ(rs.body_marks[2].offset, 20u);
  EXPECT_EQ(rs.body_marks[2].ns, 500u);
}

TEST(Http1WideBody, OtherRequestsKeepTheOrdinaryPrefix) {
  Wire w(true, WideLimits());
  w.Request("GET /x HTTP/1.1\r\n\r\n", 100);
  w.Response("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij", 200);
  const auto recs = w.Drain();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_FALSE(recs[0].response.wide_body);
  EXPECT_EQ(recs[0].response.body_prefix, "01234567");
  EXPECT_TRUE(recs[0].response.body_tail.empty());
  EXPECT_TRUE(recs[0].response.body_marks.empty());
}

TEST(Http1WideBody, TailRestartsAfterAHole) {
  Wire w(true, WideLimits());
  w.Request("POST /v1/embeddings HTTP/1.1\r\nContent-Length: 40\r\n\r\n", 100);
  w.Request("0123456789abcdefghij", 110);
  w.Request("KLMNOPQRST", 120, 0);  // moved, not captured
  w.Request("uvwxyz!@#$", 130);
  w.Response("HTTP/1.1 204 No Content\r\n\r\n", 200);
  const auto recs = w.Drain();
  ASSERT_EQ(recs.size(), 1u);
  const Message& rq = recs[0].request;
  EXPECT_EQ(rq.body_prefix, "0123456789abcdef");
  EXPECT_TRUE(rq.body_truncated);
  EXPECT_EQ(rq.body_tail, "wxyz!@#$");  // contiguous from after the hole, the last 8
  EXPECT_EQ(rq.body_tail_offset, 32u);
}

// A request head with invalid framing (two different Content-Length values) followed by a
// "body" that holds a request line: the real request is reported (with the server's 400),
// the forged one inside its body never is, and the rest of the request side is dropped,
// counted. Before: the parser resynchronised inside the body and reported the forged
// request while the real one got no record.
TEST(Http1Connection, InvalidFramingNeverReportsBodyBytesAsARequest) {
  for (const string head :
       {"POST /real HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 60\r\n\r\n",
        "POST /real HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
        "POST /real HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"}) {
    Wire w(/*client=*/false);
    w.Request(head + "GET /forged HTTP/1.1\r\nHost: h\r\n\r\n", 100);
    w.Response("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 200);
    w.Request(Get("/after"), 300);  // nothing after the bad head is parsed
    auto rs = w.Drain();
    w.conn().Close();
    auto rest = w.Drain();
    rs.insert(rs.end(), rest.begin(), rest.end());
    ASSERT_EQ(rs.size(), 1u) << head;
    EXPECT_EQ(rs[0].request.target(), "/real");
    EXPECT_TRUE(rs[0].request.framing_invalid);
    EXPECT_EQ(rs[0].response.status_code, 400);
    EXPECT_FALSE(rs[0].response_missing);
    EXPECT_EQ(w.total.frames_invalid, 1u) << "the lost request side is counted once";
    EXPECT_GT(w.total.bytes_dropped, 0u) << "the bytes after the head are dropped, counted";
    EXPECT_FALSE(w.conn().upgraded());
  }
}

// A framing error inside a chunked body ends the direction the same way: the message is
// reported, marked, and a request line after the error is never a request.
TEST(Http1Connection, ChunkedBodyErrorNeverReportsBodyBytesAsARequest) {
  for (const string bad : {"zz\r\n", "3\r\nabcX", "3\r\nabc\r\nzz\r\n"}) {
    SCOPED_TRACE(bad);
    Wire w(/*client=*/false);
    w.Request("POST /real HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + bad + Get("/forged"), 100);
    w.Response("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 200);
    auto rs = w.Drain();
    w.conn().Close();
    auto rest = w.Drain();
    rs.insert(rs.end(), rest.begin(), rest.end());
    ASSERT_EQ(Summary(rs), "/real→400");
    EXPECT_TRUE(rs[0].request.framing_invalid);
    EXPECT_GT(w.total.bytes_dropped, 0u) << "the bytes after the error are dropped, counted";
  }
  // The same in a response: the answer is reported, what follows it is not parsed.
  Wire w(/*client=*/true);
  w.Request(Get("/a"), 100);
  w.Request(Get("/b"), 110);
  w.Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + Ok(200, ""), 200);
  auto rs = w.Drain();
  w.conn().Close();
  auto rest = w.Drain();
  rs.insert(rs.end(), rest.begin(), rest.end());
  ASSERT_EQ(Summary(rs), "/a→200 /b→-");
  EXPECT_TRUE(rs[0].response.framing_invalid);
}

// The same on the response side: the response is paired with its request, nothing after
// it is parsed, and the requests still waiting end as unanswered at close.
TEST(Http1Connection, ResponseWithInvalidFramingEndsParsing) {
  Wire w(/*client=*/true);
  w.Request(Get("/a"), 100);
  w.Request(Get("/b"), 110);
  w.Response("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
             200);
  auto rs = w.Drain();
  w.conn().Close();
  auto rest = w.Drain();
  rs.insert(rs.end(), rest.begin(), rest.end());
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].request.target(), "/a");
  EXPECT_TRUE(rs[0].response.framing_invalid);
  EXPECT_EQ(rs[1].request.target(), "/b");
  EXPECT_TRUE(rs[1].response_missing) << "the bytes after the bad response are not its answer";
}

// The request side is paused behind an upgrade request; its answer declines the upgrade
// and then loses its framing. The requests after the upgrade request were captured: they
// are reported unanswered at close, as they are when a drain came between the two (the
// fuzzer's whole-versus-split check found them dropped with their bytes).
TEST(Http1Connection, RequestsPausedBehindADeclinedUpgradeAreReportedWhenTheAnswerBreaks) {
  Wire w(/*client=*/true);
  w.Request("GET /up HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 100);
  w.Request(Get("/next"), 110);
  w.Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 200);
  auto rs = w.Drain();
  w.conn().Close();
  auto rest = w.Drain();
  rs.insert(rs.end(), rest.begin(), rest.end());
  ASSERT_EQ(Summary(rs), "/up→200 /next→-");
  EXPECT_TRUE(rs[0].response.framing_invalid);
  EXPECT_EQ(rs[1].unanswered, Unanswered::kNotCaptured);
}

}  // namespace
}  // namespace kspan::protocols::http1
