#include "correlator/http2_span.h"

#include <gtest/gtest.h>

#include <string>

#include "correlator/http_span.h"

namespace kspan::correlator {
namespace {

using protocols::http2::Record;
using protocols::http2::StreamEnd;

constexpr uint64_t kT0 = 1'700'000'000'000'000'000ULL;

Record Grpc(std::string method, std::vector<std::pair<std::string, std::string>> trailers) {
  Record r;
  r.stream_id = 1;
  auto& req = r.http.request;
  req.set_method("POST");
  req.set_target("/" + method);
  req.set_version("2");
  req.SetHeaders({{"content-type", "application/grpc"}, {"host", "localhost:50051"}});
  req.timing = {kT0, kT0 + 100, 1, 0, 1, 0};
  auto& resp = r.http.response;
  resp.status_code = 200;
  resp.set_version("2");
  resp.SetHeaders({{"content-type", "application/grpc"}});
  resp.timing = {kT0 + 1000, kT0 + 2000, 2, 0, 2, 0};
  r.trailers = std::move(trailers);
  r.request_messages.messages = 1;
  r.response_messages.messages = 3;
  return r;
}

model::Span Build(const Record& r, bool server) {
  HttpConnContext ctx;
  ctx.is_server = server;
  events::SocketTuple tuple;
  tuple.local = {.address = server ? "127.0.0.1" : "127.0.0.1",
                 .port = server ? uint16_t{50051} : uint16_t{40000}};
  tuple.remote = {.address = "127.0.0.1", .port = server ? uint16_t{40000} : uint16_t{50051}};
  ctx.tuple = &tuple;
  model::Span s = BuildHttpSpan(r.http, ctx, nullptr, {});
  ApplyHttp2(r, server, &s);
  return s;
}

std::string Str(const model::Span& s, std::string_view key) {
  const std::string* v = s.FindString(key);
  return v ? *v : "<absent>";
}

int64_t Int(const model::Span& s, std::string_view key) {
  const model::AttributeValue* v = s.Find(key);
  return v && std::holds_alternative<int64_t>(*v) ? std::get<int64_t>(*v) : -1;
}

TEST(Http2Span, GrpcOkOnBothSides) {
  const Record r = Grpc("helloworld.Greeter/SayHello", {{"grpc-status", "0"}});
  for (bool server : {false, true}) {
    const model::Span s = Build(r, server);
    EXPECT_EQ(s.name, "helloworld.Greeter/SayHello");
    EXPECT_EQ(s.kind, server ? model::SpanKind::kServer : model::SpanKind::kClient);
    EXPECT_EQ(Str(s, "rpc.system.name"), "grpc");
    EXPECT_EQ(Str(s, "rpc.method"), "helloworld.Greeter/SayHello");
    EXPECT_EQ(Str(s, "rpc.response.status_code"), "OK");
    EXPECT_EQ(Str(s, "server.address"), "localhost");
    EXPECT_EQ(Int(s, "server.port"), 50051);
    EXPECT_EQ(Str(s, "network.protocol.version"), "2");
    EXPECT_EQ(Int(s, "kspan.rpc.request.messages"), 1);
    EXPECT_EQ(Int(s, "kspan.rpc.response.messages"), 3);
    EXPECT_EQ(s.Find("http.request.method"), nullptr);
    EXPECT_EQ(s.Find("url.path"), nullptr);
    EXPECT_EQ(s.Find("error.type"), nullptr);
    EXPECT_EQ(s.status_code, model::StatusCode::kUnset);
    EXPECT_EQ(s.start_time_unix_nano, kT0);
    EXPECT_EQ(s.end_time_unix_nano, kT0 + 2000);
  }
}

// NOT_FOUND is the client's error, not the server's (semantic conventions v1.44.0 gRPC).
TEST(Http2Span, NotFoundIsAnErrorOnTheClientOnly) {
  const Record r = Grpc("pkg.Users/Get", {{"grpc-status", "5"}, {"grpc-message", "no%20user%20%E2%9C%93"}});
  const model::Span client = Build(r, false);
  EXPECT_EQ(client.status_code, model::StatusCode::kError);
  EXPECT_EQ(client.status_message, "no user \xE2\x9C\x93");
  EXPECT_EQ(Str(client, "error.type"), "NOT_FOUND");
  EXPECT_EQ(Str(client, "rpc.response.status_code"), "NOT_FOUND");
  const model::Span server = Build(r, true);
  EXPECT_EQ(server.status_code, model::StatusCode::kUnset);
  EXPECT_EQ(server.Find("error.type"), nullptr);
  EXPECT_EQ(Str(server, "rpc.response.status_code"), "NOT_FOUND");
}

TEST(Http2Span, InternalIsAnErrorOnBothSides) {
  const Record r = Grpc("pkg.Users/Get", {{"grpc-status", "13"}, {"grpc-message", "boom"}});
  for (bool server : {false, true}) {
    const model::Span s = Build(r, server);
    EXPECT_EQ(s.status_code, model::StatusCode::kError);
    EXPECT_EQ(s.status_message, "boom");
    EXPECT_EQ(Str(s, "error.type"), "INTERNAL");
  }
}

TEST(Http2Span, TrailersOnlyStatus) {
  Record r = Grpc("pkg.Svc/Nope", {});
  r.http.response.AddHeader("grpc-status", "12");
  EXPECT_EQ(Str(Build(r, true), "rpc.response.status_code"), "UNIMPLEMENTED");
  EXPECT_EQ(Build(r, true).status_code, model::StatusCode::kError);
}

TEST(Http2Span, ClientCancelIsCancelledNotAServerError) {
  Record r = Grpc("pkg.Svc/Slow", {});
  r.http.response_missing = true;
  r.end = StreamEnd::kReset;
  r.error_code = 0x8;
  r.reset_by_client = true;
  const model::Span server = Build(r, true);
  EXPECT_EQ(Str(server, "rpc.response.status_code"), "CANCELLED");
  EXPECT_EQ(server.status_code, model::StatusCode::kUnset);
  const model::Span client = Build(r, false);
  EXPECT_EQ(client.status_code, model::StatusCode::kError);
  EXPECT_EQ(client.status_message, "RST_STREAM CANCEL from client");
}

TEST(Http2Span, PlainHttp2ResetAndGoAwayAreErrorsWithAReason) {
  Record r;
  r.http.request.set_method("GET");
  r.http.request.set_target("/x");
  r.http.request.set_version("2");
  r.http.response_missing = true;
  r.end = StreamEnd::kReset;
  r.error_code = 0x7;
  model::Span s = Build(r, false);
  EXPECT_EQ(s.status_code, model::StatusCode::kError);
  EXPECT_EQ(Str(s, "error.type"), "REFUSED_STREAM");
  EXPECT_EQ(Str(s, "kspan.http2.end"), "rst_stream");
  EXPECT_EQ(Str(s, "http.request.method"), "GET");
  EXPECT_EQ(Str(s, "network.protocol.version"), "2");
  r.end = StreamEnd::kGoAway;
  r.error_code = 0;
  s = Build(r, false);
  EXPECT_EQ(Str(s, "kspan.http2.end"), "goaway");
  EXPECT_EQ(s.status_message, "GOAWAY NO_ERROR: stream not processed");
}

TEST(Http2Span, AnUnknownPathIsNoPath) {
  Record r;
  r.headers_incomplete = true;
  r.http.request.set_method("POST");
  r.http.request.set_version("2");
  r.http.response.status_code = 200;
  for (bool server : {false, true}) {
    const model::Span s = Build(r, server);
    EXPECT_EQ(s.name, "POST");
    EXPECT_EQ(s.Find("url.full"), nullptr);
    EXPECT_EQ(s.Find("url.path"), nullptr);
    EXPECT_EQ(s.Find("url.template"), nullptr);
    EXPECT_EQ(Str(s, "http.request.method"), "POST");
  }
}

TEST(Http2Span, IncompleteHeadersLeaveOutWhatIsUnknown) {
  Record r;
  r.headers_incomplete = true;
  r.http.request.set_target("/known/path");
  r.http.request.set_version("2");
  r.http.response.set_version("2");
  r.http.response.status_code = 0;  // :status not decodable
  const model::Span s = Build(r, true);
  EXPECT_EQ(s.Find("http.request.method"), nullptr);
  EXPECT_EQ(s.Find("http.response.status_code"), nullptr);
  EXPECT_EQ(s.Find("error.type"), nullptr);
  EXPECT_EQ(s.status_code, model::StatusCode::kUnset);
  EXPECT_EQ(Str(s, "url.path"), "/known/path");
  const model::AttributeValue* inc = s.Find("kspan.http2.headers_incomplete");
  ASSERT_NE(inc, nullptr);
  EXPECT_TRUE(std::get<bool>(*inc));
}

}  // namespace
}  // namespace kspan::correlator
