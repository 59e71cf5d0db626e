#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "http2_wire.h"
#include "protocols/http1/spec.h"
#include "protocols/http2/connection.h"
#include "protocols/http2/frame.h"
#include "protocols/http2/spec.h"

namespace kspan::protocols::http2 {
namespace {

using testing::h2::Fields;
using testing::h2::Frame;
using testing::h2::Get;
using testing::h2::GrpcMessage;
using testing::h2::GrpcRequest;
using testing::h2::Settings;
using testing::h2::U32;
using testing::h2::Wire;

std::string Headers(Wire& w, bool request, uint32_t stream, const Fields& f, bool end_stream) {
  const std::string block = (request ? w.request_encoder : w.response_encoder).Encode(f);
  return Frame(kHeaders, kEndHeaders | (end_stream ? kEndStream : 0), stream, block);
}

const Fields kOk = {{":status", "200"}, {"content-type", "text/plain"}};

TEST(Http2Detect, ThePrefaceAndNothingElse) {
  const auto detect = Spec().detect;
  EXPECT_EQ(detect(std::string(kPreface) + Settings({})), Detection::kMatch);
  EXPECT_EQ(detect("PRI * HTTP/2"), Detection::kNeedMoreData);
  EXPECT_EQ(detect("GET / HTTP/1.1\r\n"), Detection::kNoMatch);
  EXPECT_EQ(detect("PRI * HTTP/1.1\r\n\r\n"), Detection::kNoMatch);
}

TEST(Http2Connection, OneRequestOneSpanWithItsFields) {
  Wire w;
  w.Open();
  Fields req = Get("/a/b?x=1");
  req.emplace_back("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  w.Request(Headers(w, true, 1, req, true));
  w.Response(Headers(w, false, 1, kOk, false));
  w.Response(Frame(kData, kEndStream, 1, "hello"));
  w.Drain();
  ASSERT_EQ(w.started.size(), 1u);
  EXPECT_EQ(w.started[0].call_id, "1");
  EXPECT_EQ(w.started[0].traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ASSERT_EQ(w.records.size(), 1u);
  const Record& r = w.records[0];
  EXPECT_EQ(r.stream_id, 1u);
  EXPECT_EQ(r.end, StreamEnd::kComplete);
  EXPECT_FALSE(r.headers_incomplete);
  EXPECT_EQ(r.http.request.method(), "GET");
  EXPECT_EQ(r.http.request.target(), "/a/b?x=1");
  EXPECT_EQ(r.http.request.version(), "2");
  EXPECT_EQ(r.http.request.Header("Host"), "svc.local:8080");
  EXPECT_FALSE(r.http.response_missing);
  EXPECT_EQ(r.http.response.status_code, 200);
  EXPECT_EQ(r.http.response.body_size, 5u);
  EXPECT_EQ(r.http.response.body_prefix, "hello");
  EXPECT_EQ(w.envelopes[0].seq, w.started[0].seq);
  EXPECT_LE(w.envelopes[0].request.start_ns, w.envelopes[0].response.start_ns);
  EXPECT_EQ(w.stats.frames_invalid, 0u);
  EXPECT_EQ(w.stats.gaps, 0u);
}

TEST(Http2Connection, MultiplexedStreamsPairByIdNotByOrder) {
  Wire w;
  w.Open();
  for (uint32_t id : {1u, 3u, 5u}) w.Request(Headers(w, true, id, Get("/p" + std::to_string(id)), true));
  // Answers in another order, interleaved.
  w.Response(Headers(w, false, 5, {{":status", "404"}}, false));
  w.Response(Headers(w, false, 1, {{":status", "200"}}, false));
  w.Response(Frame(kData, 0, 5, "x"));
  w.Response(Headers(w, false, 3, {{":status", "500"}}, true));
  w.Response(Frame(kData, kEndStream, 1, "one"));
  w.Response(Frame(kData, kEndStream, 5, "five"));
  w.Drain();
  ASSERT_EQ(w.records.size(), 3u);
  for (const Record& r : w.records) {
    EXPECT_EQ(r.http.request.target(), "/p" + std::to_string(r.stream_id));
    const int want = r.stream_id == 1 ? 200 : r.stream_id == 3 ? 500 : 404;
    EXPECT_EQ(r.http.response.status_code, want) << r.stream_id;
  }
  EXPECT_EQ(w.records[0].stream_id, 3u);  // ended first
  EXPECT_EQ(w.records[2].http.response.body_size, 5u);
}

TEST(Http2Connection, PaddingPriorityAndContinuation) {
  Wire w;
  w.Open();
  Fields req = Get("/long");
  req.emplace_back("x-big", std::string(300, 'v'));
  const std::string block = w.request_encoder.Encode(req);
  ASSERT_GT(block.size(), 100u);
  // HEADERS: PADDED (pad 3) | PRIORITY (5 bytes), the first 40 bytes of the block.
  std::string p(1, '\3');
  p += U32(0) + std::string(1, '\x10');
  p += block.substr(0, 40) + std::string(3, '\0');
  w.Request(Frame(kHeaders, kPadded | kPriorityFlag | kEndStream, 1, p));
  w.Request(Frame(kContinuation, 0, 1, block.substr(40, 30)));
  w.Request(Frame(kContinuation, kEndHeaders, 1, block.substr(70)));
  w.Response(Headers(w, false, 1, kOk, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 1u);
  EXPECT_EQ(w.records[0].http.request.target(), "/long");
  EXPECT_EQ(w.records[0].http.request.Header("x-big"), std::string(300, 'v'));
  EXPECT_EQ(w.stats.frames_invalid, 0u);
}

TEST(Http2Connection, FramesBetweenHeadersAndContinuationAreAFramingError) {
  Wire w;
  w.Open();
  const std::string block = w.request_encoder.Encode(Get("/x"));
  w.Request(Frame(kHeaders, kEndStream, 1, block.substr(0, 3)));
  w.Request(Frame(kPing, 0, 0, std::string(8, '\0')));
  w.Request(Frame(kContinuation, kEndHeaders, 1, block.substr(3)));
  w.Drain();
  EXPECT_TRUE(w.started.empty());
  EXPECT_GE(w.stats.frames_invalid, 1u);
}

TEST(Http2Connection, GrpcUnaryWithTrailersAndMessageCounts) {
  Wire w;
  w.Open();
  w.Request(Headers(w, true, 1, GrpcRequest("helloworld.Greeter/SayHello"), false));
  w.Request(Frame(kData, kEndStream, 1,
                  GrpcMessage("\x0a\x03"
                              "bob")));
  w.Response(Headers(w, false, 1, {{":status", "200"}, {"content-type", "application/grpc"}}, false));
  w.Response(Frame(kData, 0, 1, GrpcMessage("a") + GrpcMessage("bb")));
  w.Response(Headers(w, false, 1, {{"grpc-status", "5"}, {"grpc-message", "no%20such%20user"}}, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 1u);
  const Record& r = w.records[0];
  EXPECT_EQ(r.http.request.target(), "/helloworld.Greeter/SayHello");
  EXPECT_EQ(r.TrailerOrHeader("grpc-status"), "5");
  EXPECT_EQ(r.TrailerOrHeader("grpc-message"), "no%20such%20user");
  EXPECT_EQ(r.request_messages.messages, 1u);
  EXPECT_FALSE(r.request_messages.lost);
  EXPECT_EQ(r.response_messages.messages, 2u);
}

TEST(Http2Connection, GrpcTrailersOnly) {
  Wire w;
  w.Open();
  w.Request(Headers(w, true, 1, GrpcRequest("pkg.Svc/Missing"), false));
  w.Request(Frame(kData, kEndStream, 1, GrpcMessage("")));
  w.Response(Headers(
      w, false, 1, {{":status", "200"}, {"content-type", "application/grpc"}, {"grpc-status", "12"}}, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 1u);
  EXPECT_EQ(w.records[0].TrailerOrHeader("grpc-status"), "12");
  EXPECT_EQ(w.records[0].response_messages.messages, 0u);
}

TEST(Http2Connection, RstStreamEndsTheStreamWithItsCode) {
  Wire w;
  w.Open();
  w.Request(Headers(w, true, 1, GrpcRequest("pkg.Svc/Slow"), false));
  w.Request(Frame(kRstStream, 0, 1, U32(0x8)));
  w.Drain();
  ASSERT_EQ(w.records.size(), 1u);
  EXPECT_EQ(w.records[0].end, StreamEnd::kReset);
  EXPECT_EQ(w.records[0].error_code, 0x8u);
  EXPECT_TRUE(w.records[0].reset_by_client);
  EXPECT_TRUE(w.records[0].http.response_missing);
  EXPECT_EQ(ErrorCodeName(0x8), "CANCEL");
  EXPECT_EQ(ErrorCodeName(0x1234), "0x00001234");
}

TEST(Http2Connection, GoAwayEndsTheStreamsTheServerNeverProcessed) {
  Wire w;
  w.Open();
  for (uint32_t id : {1u, 3u, 5u}) w.Request(Headers(w, true, id, Get("/g"), true));
  w.Response(Frame(kGoAway, 0, 0, U32(1) + U32(0)));
  w.Response(Headers(w, false, 1, kOk, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 3u);
  EXPECT_EQ(w.records[0].stream_id, 3u);
  EXPECT_EQ(w.records[0].end, StreamEnd::kGoAway);
  EXPECT_EQ(w.records[1].stream_id, 5u);
  EXPECT_EQ(w.records[1].end, StreamEnd::kGoAway);
  EXPECT_EQ(w.records[2].stream_id, 1u);
  EXPECT_EQ(w.records[2].end, StreamEnd::kComplete);
}

TEST(Http2Connection, HeaderTableSizeFromSettingsIsHonoured) {
  Wire w;
  w.Request(std::string(kPreface) + Settings({}));
  // The server lets the client's encoder keep 16 KiB of table; the client uses it.
  w.Response(Settings({{kHeaderTableSize, 16384}}));
  w.request_encoder.ChangeTableSize(16384);
  for (uint32_t i = 0; i < 20; ++i) {
    Fields f = Get("/t");
    f.emplace_back("x-token", std::string(500, static_cast<char>('a' + i % 3)));
    w.Request(Headers(w, true, 1 + 2 * i, f, true));
  }
  w.Drain();
  ASSERT_EQ(w.started.size(), 20u);
  EXPECT_EQ(w.stats.frames_invalid, 0u);
  // Then a request whose fields are all in the (now large) table.
  Fields f = Get("/t");
  f.emplace_back("x-token", std::string(500, 'a'));
  w.Request(Headers(w, true, 41, f, true));
  for (uint32_t i = 0; i < 21; ++i) w.Response(Headers(w, false, 1 + 2 * i, kOk, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 21u);
  for (const Record& r : w.records) {
    EXPECT_FALSE(r.headers_incomplete);
    EXPECT_EQ(r.http.request.Header("x-token").size(), 500u);
  }
}

TEST(Http2Connection, DataHoleCostsOnlyBodyBytes) {
  Wire w;
  w.Open();
  w.Request(Headers(w, true, 1, GrpcRequest("pkg.Svc/Upload"), false));
  const std::string msg = GrpcMessage(std::string(1000, 'z'));
  // The DATA frame's syscall captured only its first 100 bytes.
  w.Request(Frame(kData, kEndStream, 1, msg), 100);
  w.Response(Headers(w, false, 1, {{":status", "200"}, {"content-type", "application/grpc"}}, false));
  w.Response(Headers(w, false, 1, {{"grpc-status", "0"}}, true));
  w.Request(Headers(w, true, 3, GrpcRequest("pkg.Svc/Next"), true));
  w.Response(Headers(w, false, 3, {{":status", "200"}, {"grpc-status", "0"}}, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 2u);
  EXPECT_EQ(w.records[0].http.request.body_size, msg.size());
  EXPECT_TRUE(w.records[0].http.request.body_truncated);
  EXPECT_EQ(w.records[0].request_messages.messages, 1u);
  EXPECT_FALSE(w.records[0].request_messages.lost);  // the hole was inside the message
  EXPECT_FALSE(w.records[1].headers_incomplete);     // the HPACK table survived
  EXPECT_EQ(w.records[1].http.request.target(), "/pkg.Svc/Next");
  EXPECT_EQ(w.stats.gaps, 0u);
}

// The answer's HEADERS in a hole (a client reading many answers at once, past the
// capture limit), its END_STREAM seen after the loss: the stream ends with no response,
// not captured, and is counted as such like one the connection's close ends.
TEST(Http2Connection, AnAnswerWhoseHeadersWereLostIsCountedNotCaptured) {
  Wire w;
  w.Open();
  w.Request(Headers(w, true, 1, Get("/a"), true));
  w.Request(Headers(w, true, 3, Get("/b"), true));
  // One read: stream 1's HEADERS and a DATA frame, only 5 bytes captured.
  w.Response(Headers(w, false, 1, kOk, false) + Frame(kData, 0, 1, "x"), 5);
  w.Response(Frame(kData, kEndStream, 1, "z"));
  w.Drain();
  ASSERT_EQ(w.records.size(), 1u);
  w.Close();  // stream 3 never answered as far as kspan saw, after the loss
  ASSERT_EQ(w.records.size(), 2u);
  for (const Record& r : w.records) {
    EXPECT_TRUE(r.http.response_missing) << r.stream_id;
    EXPECT_EQ(r.http.unanswered, Unanswered::kNotCaptured) << r.stream_id;
  }
  EXPECT_EQ(w.records[0].end, StreamEnd::kComplete);
  EXPECT_EQ(w.records[1].end, StreamEnd::kConnection);
  EXPECT_EQ(w.stats.requests_unanswered[Unanswered::kNotCaptured], 2u);
}

// A hole over a header block: the table is unknown from then on. Whatever is decoded
// after it is right or missing, never wrong.
TEST(Http2Connection, HeaderBlockInAHoleNeverGivesAWrongMethodOrPath) {
  Wire w;
  w.Open();
  std::vector<std::string> paths;
  for (int i = 0; i < 12; ++i) paths.push_back("/items/" + std::to_string(i % 3));
  uint32_t id = 1;
  for (size_t i = 0; i < paths.size(); ++i, id += 2) {
    Fields f = GrpcRequest("pkg.Svc/M" + std::to_string(i % 3));
    f[2].second = paths[i];
    f.emplace_back("x-session", "s" + std::to_string(i % 2));
    const std::string frame = Headers(w, true, id, f, true);
    w.Request(frame, i == 3 ? 5 : std::string::npos);  // request 4's block in a hole
  }
  id = 1;
  for (size_t i = 0; i < paths.size(); ++i, id += 2) w.Response(Headers(w, false, id, kOk, true));
  w.Drain();
  EXPECT_EQ(w.records.size(), paths.size() - 1);  // the lost one made no span
  size_t incomplete = 0;
  for (const Record& r : w.records) {
    const size_t i = (r.stream_id - 1) / 2;
    if (r.headers_incomplete) ++incomplete;
    if (!r.http.request.method().empty()) EXPECT_EQ(r.http.request.method(), "POST");
    if (!r.http.request.target().empty()) EXPECT_EQ(r.http.request.target(), paths[i]) << i;
    if (i < 3) EXPECT_FALSE(r.headers_incomplete);
    const std::string_view session = r.http.request.Header("x-session");
    if (!session.empty()) EXPECT_EQ(session, "s" + std::to_string(i % 2));
  }
  EXPECT_GT(incomplete, 0u);
  EXPECT_EQ(w.stats.gaps, 1u);
}

// Joined mid-stream: the first bytes kspan sees are in the middle of the connection.
TEST(Http2Connection, JoinedMidStreamResyncsAtAFrameAndFailsClosed) {
  Wire w;
  w.LoseRequest(5000);
  w.LoseResponse(3000);
  testing::h2::Encoder& enc = w.request_encoder;
  (void)enc.Encode(GrpcRequest("pkg.Svc/Before"));  // the table the peers built before kspan
  w.Request(Headers(w, true, 41, GrpcRequest("pkg.Svc/Before"), true));
  w.Response(Headers(w, false, 41, {{":status", "200"}, {"grpc-status", "0"}}, true));
  w.Drain();
  w.Drain();  // gaps age into holes
  ASSERT_EQ(w.records.size(), 1u);
  const Record& r = w.records[0];
  EXPECT_TRUE(r.headers_incomplete);
  if (!r.http.request.target().empty()) EXPECT_EQ(r.http.request.target(), "/pkg.Svc/Before");
  if (!r.http.request.method().empty()) EXPECT_EQ(r.http.request.method(), "POST");
  EXPECT_GE(w.stats.gaps, 1u);
}

// Joined at position 0 (the kernel counts from where kspan first saw the socket): no
// preface, and neither direction's table is known.
TEST(Http2Connection, NoPrefaceAtTheStartMeansBothTablesUnknown) {
  Wire w;
  (void)w.request_encoder.Encode(GrpcRequest("pkg.Svc/Before"));
  (void)w.response_encoder.Encode(
      {{":status", "200"}, {"content-type", "application/grpc"}, {"grpc-status", "0"}});
  w.Request(Headers(w, true, 41, GrpcRequest("pkg.Svc/Before"), true));
  w.Response(Headers(w, false, 41,
                     {{":status", "200"}, {"content-type", "application/grpc"}, {"grpc-status", "0"}}, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 1u);
  EXPECT_TRUE(w.records[0].headers_incomplete);
  EXPECT_EQ(w.records[0].http.response.status_code, 200);  // :status 200 is static
  EXPECT_TRUE(w.records[0].TrailerOrHeader("grpc-status").empty());
  EXPECT_EQ(w.stats.frames_invalid, 0u);  // a late join is no parse failure
}

TEST(Http2Connection, ResyncSkipsBytesThatAreNoFrame) {
  Wire w;
  w.Open();
  w.Request(Headers(w, true, 1, Get("/a"), true));
  w.Request(std::string(20, 'x'), 0);  // a syscall not captured at all
  w.Request("garbage that is not a frame header at all");
  w.Request(Headers(w, true, 3, {{":method", "GET"}, {":path", "/b"}, {":scheme", "http"}}, true));
  w.Response(Headers(w, false, 1, kOk, true));
  w.Response(Headers(w, false, 3, kOk, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 2u);
  EXPECT_EQ(w.records[0].http.request.target(), "/a");
  EXPECT_TRUE(w.records[1].http.request.target().empty() || w.records[1].http.request.target() == "/b");
  EXPECT_GE(w.stats.bytes_dropped, 10u);
}

// A framing error in bytes seen whole from the preface on is the peer's protocol error
// (the receiver closes the connection, RFC 9113 §5.4.1): what follows is not parsed,
// however the syscalls cut it, until a capture loss makes kspan look for frames again.
TEST(Http2Connection, AFramingErrorSeenWholeGivesTheDirectionUpUntilALoss) {
  Wire w;
  w.Open();
  w.Request(Headers(w, true, 1, Get("/a"), true));
  w.Request(Frame(kData, 0, 0, "x"));  // DATA on stream 0: PROTOCOL_ERROR (§6.1)
  w.Request(Headers(w, true, 3, Get("/b"), true));
  w.Drain();
  ASSERT_EQ(w.started.size(), 1u);
  EXPECT_EQ(w.started[0].call_id, "1");
  EXPECT_EQ(w.stats.frames_invalid, 1u);
  w.LoseRequest(7);
  w.Request(Headers(w, true, 5, Get("/c"), true));
  w.Drain();
  w.Drain();  // the gap ages into a hole
  ASSERT_EQ(w.started.size(), 2u);
  EXPECT_EQ(w.started[1].call_id, "5");
}

TEST(Http2Connection, NotAPrefaceIsCountedNotParsed) {
  Wire w;
  w.Request("PRX * HTTP/2.0\r\n\r\nSM\r\n\r\n" + Headers(w, true, 1, Get("/a"), true));
  w.Drain();
  EXPECT_TRUE(w.started.empty());
  EXPECT_GE(w.stats.gaps, 1u);
  EXPECT_GE(w.stats.bytes_dropped, 24u);
}

TEST(Http2Detect, AConnectionJoinedMidStreamByItsRequestFrames) {
  const auto detect = Spec().detect;
  Wire w;
  const std::string req = Headers(w, true, 7, GrpcRequest("a.B/C"), false) +
                          Frame(kData, kEndStream, 7, testing::h2::GrpcMessage("x"));
  EXPECT_EQ(detect(req), Detection::kMatch);
  EXPECT_EQ(detect(req.substr(0, req.size() - 3)), Detection::kMatch);  // cut by the capture
  // The same call again: :path and :authority are now dynamic references, :method static.
  EXPECT_EQ(detect(Headers(w, true, 9, GrpcRequest("a.B/C"), true)), Detection::kMatch);
  // A response, a stream the server opened, frames that do not chain, other protocols.
  EXPECT_EQ(detect(Headers(w, false, 7, {{":status", "200"}}, true)), Detection::kNoMatch);
  EXPECT_EQ(detect(Headers(w, true, 8, Get("/x"), true)), Detection::kNoMatch);
  EXPECT_EQ(detect(req + "zz"), Detection::kNoMatch);
  EXPECT_EQ(detect(Frame(kData, 0, 1, "abc")), Detection::kNoMatch);
  EXPECT_EQ(detect("*1\r\n$4\r\nPING\r\n"), Detection::kNoMatch);
  EXPECT_EQ(detect(std::string("\0\0\0\x08\x04\xd2\x16\x2f", 8)), Detection::kNoMatch);
}

// Whatever the syscalls cut, the same records come out.
TEST(Http2Connection, EverySplitPointGivesTheSameRecords) {
  Wire ref;
  std::string req = std::string(kPreface) + Settings({});
  req += Headers(ref, true, 1, GrpcRequest("a.B/C"), false);
  req += Frame(kData, kEndStream, 1, GrpcMessage("payload"));
  req += Headers(ref, true, 3, Get("/x"), true);
  std::string resp = Settings({});
  resp += Headers(ref, false, 1, {{":status", "200"}, {"content-type", "application/grpc"}}, false);
  resp += Frame(kData, 0, 1, GrpcMessage("answer"));
  resp += Headers(ref, false, 1, {{"grpc-status", "0"}}, true);
  resp += Headers(ref, false, 3, kOk, true);
  for (size_t cut = 1; cut < req.size(); cut += 3) {
    Wire w;
    w.Request(req.substr(0, cut));
    w.Drain();
    w.Request(req.substr(cut));
    const size_t rcut = cut % resp.size();
    if (rcut > 0) w.Response(resp.substr(0, rcut));
    w.Drain();
    w.Response(resp.substr(rcut));
    w.Drain();
    ASSERT_EQ(w.records.size(), 2u) << cut;
    EXPECT_EQ(w.records[0].http.request.target(), "/a.B/C") << cut;
    EXPECT_EQ(w.records[0].request_messages.messages, 1u) << cut;
    EXPECT_EQ(w.records[0].response_messages.messages, 1u) << cut;
    EXPECT_EQ(w.records[1].http.request.target(), "/x") << cut;
    EXPECT_EQ(w.stats.frames_invalid, 0u) << cut;
    EXPECT_EQ(w.stats.gaps, 0u) << cut;
  }
}

TEST(Http2Connection, CloseEndsOpenStreams) {
  Wire w;
  w.Open();
  w.Request(Headers(w, true, 1, Get("/never"), true));
  w.Request(Headers(w, true, 3, Get("/half"), true));
  w.Response(Headers(w, false, 3, kOk, false));
  w.Close();
  ASSERT_EQ(w.records.size(), 2u);
  EXPECT_EQ(w.records[0].end, StreamEnd::kConnection);
  EXPECT_TRUE(w.records[0].http.response_missing);
  EXPECT_EQ(w.records[0].http.unanswered, Unanswered::kNoResponse);
  EXPECT_FALSE(w.records[1].http.response_missing);
  EXPECT_EQ(w.stats.requests_unanswered[Unanswered::kNoResponse], 1u);
}

TEST(Http2Connection, StreamsAreBounded) {
  Limits l;
  l.max_streams = 4;
  Wire w(true, l);
  w.Open();
  for (uint32_t i = 0; i < 10; ++i) w.Request(Headers(w, true, 1 + 2 * i, Get("/s"), true));
  w.Drain();
  EXPECT_EQ(w.records.size(), 6u);
  EXPECT_EQ(w.stats.requests_unanswered[Unanswered::kEvicted], 6u);
}

// An LLM API call over HTTP/2 is read as widely as over HTTP/1 (Limits::wide_body_request):
// a request body past max_body_prefix is kept whole, the streamed answer keeps its tail
// (where the usage is) and one mark per syscall, so gen_ai spans read the same on both.
TEST(Http2Connection, AWideRequestKeepsItsBodyTailAndMarks) {
  Limits l;
  l.max_body_prefix = 16;
  l.max_wide_body_prefix = 64;
  l.max_wide_body_tail = 32;
  l.wide_body_request = [](const http1::Message& head) { return head.target() == "/v1/chat/completions"; };
  Wire w(true, l);
  w.Open();
  const Fields post = {{":method", "POST"},
                       {":scheme", "https"},
                       {":authority", "llm.local"},
                       {":path", "/v1/chat/completions"}};
  const std::string request_body(100, 'q');
  w.Request(Headers(w, true, 1, post, false));
  w.Request(Frame(kData, kEndStream, 1, request_body));
  w.Response(Headers(w, false, 1, {{":status", "200"}, {"content-type", "text/event-stream"}}, false));
  std::string answer;
  for (int i = 0; i < 6; ++i) {
    const std::string event = "data: {\"n\":" + std::to_string(i) + "}\n\n";  // one syscall each
    answer += event;
    w.Response(Frame(kData, i == 5 ? kEndStream : 0, 1, event));
  }
  // A request on another path keeps the narrow prefix.
  w.Request(Headers(
      w, true, 3,
      {{":method", "POST"}, {":scheme", "https"}, {":authority", "llm.local"}, {":path", "/other"}}, false));
  w.Request(Frame(kData, kEndStream, 3, request_body));
  w.Response(Headers(w, false, 3, kOk, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 2u);
  const http1::Record& wide = w.records[0].http;
  EXPECT_TRUE(wide.request.wide_body);
  EXPECT_EQ(wide.request.body_prefix, request_body.substr(0, 64));
  EXPECT_EQ(wide.request.body_tail, request_body.substr(100 - 32));
  EXPECT_EQ(wide.request.body_tail_offset, 100u - 32);
  EXPECT_TRUE(wide.response.wide_body);
  EXPECT_EQ(wide.response.body_size, answer.size());
  EXPECT_EQ(wide.response.body_prefix, answer.substr(0, 64));
  // The tail holds what came after the prefix, at most max_wide_body_tail bytes.
  ASSERT_GT(answer.size(), 64u);
  EXPECT_EQ(wide.response.body_tail, answer.substr(std::max<size_t>(64, answer.size() - 32)));
  ASSERT_EQ(wide.response.body_marks.size(), 6u);
  uint64_t offset = 0;
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(wide.response.body_marks[i].offset, offset) << i;
    if (i > 0) EXPECT_GT(wide.response.body_marks[i].ns, wide.response.body_marks[i - 1].ns) << i;
    offset += ("data: {\"n\":" + std::to_string(i) + "}\n\n").size();
  }
  const http1::Record& narrow = w.records[1].http;
  EXPECT_FALSE(narrow.request.wide_body);
  EXPECT_EQ(narrow.request.body_prefix, request_body.substr(0, 16));
  EXPECT_TRUE(narrow.request.body_tail.empty());
  EXPECT_EQ(w.stats.frames_invalid, 0u);
}

TEST(Http2Connection, ServerSideSeesTheSameStreams) {
  Wire w(/*client=*/false);
  w.Open();
  w.Request(Headers(w, true, 1, Get("/srv"), true));
  w.Response(Headers(w, false, 1, kOk, true));
  w.Drain();
  ASSERT_EQ(w.records.size(), 1u);
  EXPECT_EQ(w.records[0].http.request.target(), "/srv");
}

// An HTTP/1 connection from the registry (where an Upgrade to h2c starts), fed one
// syscall at a time in each direction.
class UpgradeWire {
 public:
  explicit UpgradeWire(bool client) : client_(client), conn_(http1::Spec().make(client, ProtocolOptions{})) {}

  void Send(bool request, const std::string& bytes) {
    t_ += 1000;
    conn_->AddData({.egress = request == client_,
                    .position = pos_[request ? 0 : 1],
                    .data = bytes,
                    .total_len = static_cast<uint32_t>(bytes.size()),
                    .first_ns = t_,
                    .last_ns = t_ + 10,
                    .tid = request ? 1u : 2u});
    pos_[request ? 0 : 1] += bytes.size();
  }
  void Drain() { conn_->Drain(&started, &records, &stats); }
  ProtocolConnection& conn() { return *conn_; }

  std::vector<RequestStart> started;
  std::vector<protocols::Record> records;
  ConnectionStats stats;

 private:
  const bool client_;
  std::unique_ptr<ProtocolConnection> conn_;
  uint64_t pos_[2] = {0, 0};  // request, response
  uint64_t t_ = 1'000'000;
};

// h2c by Upgrade (RFC 7540 §3.2), as curl --http2 asks for it over cleartext: the
// connection starts as HTTP/1 (detected so), the upgrade request is stream 1 and is
// answered in HTTP/2 frames that may share the 101's syscall; later streams follow. Seen
// from the client and from the server.
TEST(Http2Upgrade, TheUpgradeRequestIsStreamOneAndTheRestIsHttp2) {
  for (const bool client : {true, false}) {
    SCOPED_TRACE(client ? "client" : "server");
    const std::string upgrade =
        "GET /first HTTP/1.1\r\nHost: svc.local:8080\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
    ASSERT_EQ(http1::Spec().detect(upgrade), Detection::kMatch);
    UpgradeWire w(client);
    testing::h2::Encoder request_encoder, response_encoder;
    const std::vector<RequestStart>& started = w.started;
    std::vector<protocols::Record>& records = w.records;
    const ConnectionStats& stats = w.stats;
    w.Send(true, upgrade);
    w.Drain();
    ASSERT_EQ(started.size(), 1u);
    // The 101, the server's SETTINGS and stream 1's answer in one write.
    w.Send(false, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" +
                      Settings({}) + Frame(kHeaders, kEndHeaders, 1, response_encoder.Encode(kOk)) +
                      Frame(kData, kEndStream, 1, "first"));
    w.Send(true, std::string(kPreface) + Settings({}));
    w.Drain();
    w.Send(true, Frame(kHeaders, kEndHeaders | kEndStream, 3, request_encoder.Encode(Get("/second"))));
    w.Send(false, Frame(kHeaders, kEndHeaders, 3, response_encoder.Encode(kOk)) +
                      Frame(kData, kEndStream, 3, "two"));
    w.Drain();
    ASSERT_EQ(started.size(), 2u);
    ASSERT_EQ(records.size(), 2u);
    for (const protocols::Record& r : records) ASSERT_TRUE(std::holds_alternative<Record>(r.body));
    const Record& first = std::get<Record>(records[0].body);
    EXPECT_EQ(first.stream_id, 1u);
    EXPECT_EQ(records[0].seq, started[0].seq);
    EXPECT_EQ(first.http.request.method(), "GET");
    EXPECT_EQ(first.http.request.target(), "/first");
    EXPECT_EQ(first.http.response.status_code, 200);
    EXPECT_EQ(first.http.response.body_prefix, "first");
    EXPECT_EQ(first.end, StreamEnd::kComplete);
    EXPECT_LT(records[0].request.start_ns, records[0].response.start_ns);
    const Record& second = std::get<Record>(records[1].body);
    EXPECT_EQ(second.stream_id, 3u);
    EXPECT_EQ(records[1].seq, started[1].seq);
    EXPECT_GT(started[1].seq, started[0].seq);
    EXPECT_EQ(second.http.request.target(), "/second");
    EXPECT_EQ(second.http.response.body_prefix, "two");
    EXPECT_EQ(stats.frames_invalid, 0u);
    EXPECT_EQ(stats.bytes_dropped, 0u);
    EXPECT_EQ(stats.gaps, 0u);
    w.conn().Close(Unanswered::kNoResponse);
    records.clear();
    w.Drain();
    EXPECT_TRUE(records.empty());
  }
}

// A short upgraded connection: the request, the 101 with stream 1's answer, and the close
// all come before the first drain. Stream 1 is still reported, complete, and nothing is
// left open.
TEST(Http2Upgrade, ACloseBeforeTheFirstDrainStillEndsTheHttp2Side) {
  UpgradeWire w(true);
  testing::h2::Encoder response_encoder;
  const std::string req =
      "GET /only HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
      "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n" +
      std::string(kPreface) + Settings({});
  const std::string resp = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" +
                           Settings({}) + Frame(kHeaders, kEndHeaders, 1, response_encoder.Encode(kOk)) +
                           Frame(kData, 0, 1, "partial");
  w.Send(true, req);
  w.Send(false, resp);
  w.conn().Close(Unanswered::kNoResponse);
  w.Drain();
  const std::vector<RequestStart>& started = w.started;
  const std::vector<protocols::Record>& records = w.records;
  ASSERT_EQ(started.size(), 1u);
  ASSERT_EQ(records.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<Record>(records[0].body));
  const Record& r = std::get<Record>(records[0].body);
  EXPECT_EQ(r.stream_id, 1u);
  EXPECT_EQ(r.http.request.target(), "/only");
  EXPECT_EQ(r.http.response.status_code, 200);
  EXPECT_EQ(r.end, StreamEnd::kConnection);  // its DATA never ended the stream
  EXPECT_EQ(w.conn().Held().bytes, 0u);
}

// A 101 to another protocol (WebSocket) still ends parsing, its bytes dropped and counted.
TEST(Http2Upgrade, AnUpgradeToAnotherProtocolIsNotHttp2) {
  UpgradeWire w(true);
  const std::string req = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  const std::string resp =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + Settings({});
  w.Send(true, req);
  w.Send(false, resp);
  w.Drain();
  const std::vector<protocols::Record>& records = w.records;
  const ConnectionStats& stats = w.stats;
  ASSERT_EQ(records.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<http1::Record>(records[0].body));
  EXPECT_EQ(std::get<http1::Record>(records[0].body).response.status_code, 101);
  EXPECT_EQ(stats.bytes_dropped, Settings({}).size());
}

}  // namespace
}  // namespace kspan::protocols::http2
