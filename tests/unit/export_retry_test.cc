// The network exporters' retry rules (retry.h) and the HTTP and gRPC pieces that feed
// them: which answers are retried, how long to wait, what a server's hint means.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <grpcpp/support/status_code_enum.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

#include "exporters/http_client.h"
#include "exporters/otlp_grpc.h"
#include "exporters/otlp_http.h"
#include "exporters/retry.h"

namespace kspan::exporters {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RetryClassification, HttpStatuses) {
  for (long s : {429L, 502L, 503L, 504L}) EXPECT_TRUE(IsRetryableHttpStatus(s)) << s;
  for (long s : {200L, 202L, 400L, 401L, 403L, 404L, 408L, 413L, 500L, 501L})
    EXPECT_FALSE(IsRetryableHttpStatus(s)) << s;
}

TEST(RetryClassification, GrpcCodes) {
  using grpc::StatusCode;
  for (StatusCode c : {StatusCode::CANCELLED, StatusCode::DEADLINE_EXCEEDED, StatusCode::ABORTED,
                       StatusCode::OUT_OF_RANGE, StatusCode::UNAVAILABLE, StatusCode::DATA_LOSS}) {
    EXPECT_TRUE(IsRetryableGrpcStatus(c, false)) << c;
  }
  EXPECT_FALSE(IsRetryableGrpcStatus(StatusCode::RESOURCE_EXHAUSTED, false))
      << "a hard limit without RetryInfo";
  EXPECT_TRUE(IsRetryableGrpcStatus(StatusCode::RESOURCE_EXHAUSTED, true)) << "a throttle with RetryInfo";
  for (StatusCode c :
       {StatusCode::OK, StatusCode::UNKNOWN, StatusCode::INVALID_ARGUMENT, StatusCode::NOT_FOUND,
        StatusCode::ALREADY_EXISTS, StatusCode::PERMISSION_DENIED, StatusCode::FAILED_PRECONDITION,
        StatusCode::UNIMPLEMENTED, StatusCode::INTERNAL, StatusCode::UNAUTHENTICATED}) {
    EXPECT_FALSE(IsRetryableGrpcStatus(c, true)) << c;
  }
}

TEST(RetryAfter, DelaySeconds) {
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(ParseRetryAfter("120", now), milliseconds(120000));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now), milliseconds(86400 * 1000))
      << "saturates at a day";
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-1", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("1.5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
}

TEST(RetryAfter, HttpDates) {
  // 1994-11-06 08:49:37 UTC, in the three forms RFC 9110 accepts.
  const auto at = std::chrono::system_clock::from_time_t(784111777);
  const auto now = at - seconds(30);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), milliseconds(30000));
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now), milliseconds(30000));
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", now), milliseconds(30000));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", at + seconds(5)), milliseconds(0))
      << "in the past";
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 PST", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994", now), std::nullopt);
}

TEST(Backoff, GrowsExponentiallyWithinJitterBoundsAndCaps) {
  RetryPolicy p;
  p.initial_backoff = milliseconds(1000);
  p.max_backoff = milliseconds(5000);
  p.multiplier = 2.0;
  const int64_t base[] = {1000, 2000, 4000, 5000, 5000, 5000};
  for (int retry = 0; retry < 6; ++retry) {
    for (double r : {0.0, 0.25, 0.5, 0.999}) {
      const auto d = Backoff(p, retry, r).count();
      EXPECT_GE(d, base[retry] / 2) << retry << " " << r;
      EXPECT_LE(d, base[retry]) << retry << " " << r;
    }
  }
  EXPECT_EQ(Backoff(p, 0, 0.0).count(), 500);
  EXPECT_EQ(Backoff(p, 1000, 0.999).count(), 4997) << "no overflow for a huge retry count";
  EXPECT_LT(Backoff(p, 2, 0.0), Backoff(p, 2, 0.99)) << "the jitter draw matters";
}

// google.rpc.Status{code, message, details: [Any{type_url, value}]} by hand.
std::string StatusWithDetail(const std::string& type_url, const std::string& value) {
  auto field = [](int number, const std::string& bytes) {
    std::string out;
    google::protobuf::io::StringOutputStream s(&out);
    google::protobuf::io::CodedOutputStream c(&s);
    c.WriteTag(static_cast<uint32_t>(number << 3 | 2));
    c.WriteVarint32(static_cast<uint32_t>(bytes.size()));
    c.WriteString(bytes);
    return out;
  };
  std::string code;
  code += static_cast<char>(1 << 3);  // field 1, varint
  code += static_cast<char>(8);       // RESOURCE_EXHAUSTED
  return code + field(2, "slow down") + field(3, field(1, type_url) + field(2, value));
}

TEST(GrpcRetryInfo, DelayFromStatusDetails) {
  // RetryInfo{retry_delay: Duration{seconds: 2, nanos: 500000000}}
  std::string duration;
  duration += static_cast<char>(1 << 3);
  duration += static_cast<char>(2);
  duration += static_cast<char>(2 << 3);
  duration += std::string("\x80\xca\xb5\xee\x01", 5);  // 500000000 as a varint
  std::string retry_info;
  retry_info += static_cast<char>(1 << 3 | 2);
  retry_info += static_cast<char>(duration.size());
  retry_info += duration;
  EXPECT_EQ(RetryDelayFromGrpcStatusDetails(
                StatusWithDetail("type.googleapis.com/google.rpc.RetryInfo", retry_info)),
            milliseconds(2500));
  EXPECT_EQ(RetryDelayFromGrpcStatusDetails(
                StatusWithDetail("type.googleapis.com/google.rpc.DebugInfo", retry_info)),
            std::nullopt);
  EXPECT_EQ(RetryDelayFromGrpcStatusDetails(""), std::nullopt);
  EXPECT_EQ(RetryDelayFromGrpcStatusDetails("\xff\xff\xff"), std::nullopt);
}

TEST(HttpClassification, Outcomes) {
  const auto now = std::chrono::system_clock::now();
  HttpResponse ok;
  ok.status = 200;
  EXPECT_EQ(ClassifyHttpResponse(ok, now).outcome, SendResult::Outcome::kSent);
  HttpResponse accepted;
  accepted.status = 202;  // Zipkin's answer
  EXPECT_EQ(ClassifyHttpResponse(accepted, now).outcome, SendResult::Outcome::kSent);

  HttpResponse busy;
  busy.status = 503;
  busy.retry_after = "7";
  SendResult r = ClassifyHttpResponse(busy, now);
  EXPECT_EQ(r.outcome, SendResult::Outcome::kRetryable);
  EXPECT_EQ(r.retry_after, milliseconds(7000));
  EXPECT_EQ(r.detail, "HTTP 503");

  HttpResponse throttled;
  throttled.status = 429;
  r = ClassifyHttpResponse(throttled, now);
  EXPECT_EQ(r.outcome, SendResult::Outcome::kRetryable);
  EXPECT_EQ(r.retry_after, std::nullopt) << "no header: the exporter's own backoff";

  HttpResponse bad;
  bad.status = 400;
  bad.body = "bad\x01request";
  r = ClassifyHttpResponse(bad, now);
  EXPECT_EQ(r.outcome, SendResult::Outcome::kPermanent);
  EXPECT_EQ(r.detail, "HTTP 400: bad.request");

  HttpResponse refused;  // no response at all
  refused.error = "Failed to connect";
  refused.retryable_error = true;
  EXPECT_EQ(ClassifyHttpResponse(refused, now).outcome, SendResult::Outcome::kRetryable);
  refused.retryable_error = false;  // e.g. a certificate that does not verify
  EXPECT_EQ(ClassifyHttpResponse(refused, now).outcome, SendResult::Outcome::kPermanent);
}

// Which failures may have delivered the request (transport.h): only those after the whole
// body was written, and a gateway's 504.
TEST(HttpClassification, RetryReasonsAndMaybeDelivered) {
  const auto now = std::chrono::system_clock::now();
  using Reason = SendResult::RetryReason;
  struct Case {
    long status;
    bool written, timed_out;
    Reason reason;
    bool maybe_delivered;
  } cases[] = {
      {0, false, false, Reason::kNotSent, false},        // refused, or cut while writing
      {0, false, true, Reason::kNotSent, false},         // timed out connecting or writing
      {0, true, true, Reason::kTimeout, true},           // written, no answer in time
      {0, true, false, Reason::kConnectionLost, true},   // written, then reset or closed
      {429, false, false, Reason::kThrottled, false},    // answered: not delivered
      {502, false, false, Reason::kUnavailable, false},  //
      {503, false, false, Reason::kUnavailable, false},  //
      {504, false, false, Reason::kUnavailable, true},   // a gateway timed out upstream
  };
  for (const Case& c : cases) {
    HttpResponse resp;
    resp.status = c.status;
    resp.retryable_error = c.status == 0;
    resp.request_written = c.written;
    resp.timed_out = c.timed_out;
    const SendResult r = ClassifyHttpResponse(resp, now);
    SCOPED_TRACE(std::to_string(c.status) + " written=" + std::to_string(c.written));
    EXPECT_EQ(r.outcome, SendResult::Outcome::kRetryable);
    EXPECT_EQ(r.reason, c.reason);
    EXPECT_EQ(r.maybe_delivered, c.maybe_delivered);
  }
  HttpResponse cut;  // "200 OK", then the body was lost: the server took the request
  cut.status = 200;
  cut.truncated = true;
  EXPECT_EQ(ClassifyHttpResponse(cut, now).outcome, SendResult::Outcome::kSent);
  EXPECT_EQ(RetryReasonName(Reason::kConnectionLost), "connection_lost");
  EXPECT_EQ(RetryReasonName(Reason::kNotSent), "not_sent");
}

TEST(HttpClient, RejectsBadEndpointAndUnreadableCertificate) {
  HttpClientOptions o;
  o.url = "ftp://127.0.0.1/x";
  auto c = HttpClient::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("ftp://127.0.0.1/x"), std::string::npos);
  o.url = "https://127.0.0.1:1/v1/traces";
  o.certificate_file = "/nonexistent/ca.pem";
  c = HttpClient::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(HttpClient, ConnectionRefusedIsRetryable) {
  HttpClientOptions o;
  o.url = "http://127.0.0.1:1/v1/traces";  // port 1: nothing listens
  o.content_type = "application/json";
  auto c = HttpClient::Create(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const HttpResponse r = (*c)->Post("{}", Transport::Clock::now() + seconds(5));
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.retryable_error) << r.error;
}

TEST(Gzip, RoundTripsThroughZlib) {
  std::string in;
  for (int i = 0; i < 1000; ++i) in += "span " + std::to_string(i) + ";";
  const std::string gz = Gzip(in);
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_LT(gz.size(), in.size() / 4);
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  std::string out(in.size() + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  EXPECT_EQ(out, in);
}

TEST(PartialSuccess, ProtobufAndJsonBodies) {
  int64_t rejected = -1;
  std::string message;
  ::opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
  response.mutable_partial_success()->set_rejected_spans(3);
  response.mutable_partial_success()->set_error_message("3 spans too old");
  EXPECT_TRUE(ParsePartialSuccess(response.SerializeAsString(), false, &rejected, &message));
  EXPECT_EQ(rejected, 3);
  EXPECT_EQ(message, "3 spans too old");

  EXPECT_TRUE(ParsePartialSuccess(R"({"partialSuccess":{"rejectedSpans":"5","errorMessage":"x"}})", true,
                                  &rejected, &message));
  EXPECT_EQ(rejected, 5);
  EXPECT_EQ(message, "x");
  EXPECT_TRUE(
      ParsePartialSuccess(R"({"partialSuccess":{"rejectedSpans":2},"extra":1})", true, &rejected, &message));
  EXPECT_EQ(rejected, 2);
  EXPECT_TRUE(ParsePartialSuccess("{}", true, &rejected, &message));
  EXPECT_EQ(rejected, 0);
  EXPECT_FALSE(ParsePartialSuccess("", false, &rejected, &message));
  EXPECT_FALSE(ParsePartialSuccess("not json", true, &rejected, &message));
}

TEST(GrpcTarget, FromEndpoint) {
  bool tls = true;
  EXPECT_EQ(*GrpcTargetFromEndpoint("http://127.0.0.1:4317", &tls), "127.0.0.1:4317");
  EXPECT_FALSE(tls);
  EXPECT_EQ(*GrpcTargetFromEndpoint("https://collector.example:443/", &tls), "collector.example:443");
  EXPECT_TRUE(tls);
  EXPECT_EQ(*GrpcTargetFromEndpoint("http://localhost", &tls), "localhost:4317");
  EXPECT_EQ(*GrpcTargetFromEndpoint("http://[::1]:4317", &tls), "[::1]:4317");
  EXPECT_EQ(*GrpcTargetFromEndpoint("http://[::1]", &tls), "[::1]:4317");
  EXPECT_FALSE(GrpcTargetFromEndpoint("127.0.0.1:4317", &tls).ok());
  EXPECT_FALSE(GrpcTargetFromEndpoint("http://", &tls).ok());
}

}  // namespace
}  // namespace kspan::exporters
