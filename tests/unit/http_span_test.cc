#include "correlator/http_span.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace kspan::correlator {
namespace {

using protocols::http1::Message;
using protocols::http1::Record;

constexpr uint64_t kT0 = 1'700'000'000'000'000'000ULL;

Record MakeRecord(std::string method, std::string target,
                  std::vector<std::pair<std::string, std::string>> request_headers, int status = 200,
                  std::vector<std::pair<std::string, std::string>> response_headers = {}) {
  Record r;
  r.request.set_method(std::move(method));
  r.request.set_target(std::move(target));
  r.request.set_version("1.1");
  r.request.SetHeaders(request_headers);
  r.request.timing.start_ns = kT0;
  r.request.timing.end_ns = kT0 + 1'000;
  r.response.status_code = status;
  r.response.set_reason("OK");
  r.response.set_version("1.1");
  r.response.SetHeaders(response_headers);
  r.response.timing.start_ns = kT0 + 2'000'000;
  r.response.timing.end_ns = kT0 + 2'500'000;
  return r;
}

HttpConnContext Server() {
  HttpConnContext c;
  c.is_server = true;
  c.pid = 42;
  static const events::SocketTuple tuple = {
      .family = AF_INET, .local = {"10.0.0.2", 8080}, .remote = {"10.0.0.9", 51234}};
  c.tuple = &tuple;
  return c;
}

HttpConnContext Client() {
  HttpConnContext c;
  c.is_server = false;
  c.pid = 43;
  static const events::SocketTuple tuple = {
      .family = AF_INET, .local = {"10.0.0.9", 51234}, .remote = {"127.0.0.1", 8080}};
  c.tuple = &tuple;
  return c;
}

model::Span Build(const Record& r, const HttpConnContext& c, HttpSpanOptions o = {}) {
  return BuildHttpSpan(r, c, nullptr, o);
}

// The attribute as a string for comparisons: strings as they are, ints in decimal,
// "<missing>" when absent, "<type>" for another type.
std::string Attr(const model::Span& s, std::string_view key) {
  const model::AttributeValue* v = s.Find(key);
  if (!v) return "<missing>";
  if (const auto* str = std::get_if<std::string>(v)) return *str;
  if (const auto* i = std::get_if<int64_t>(v)) return "int:" + std::to_string(*i);
  return "<type>";
}

std::vector<std::string> Keys(const model::Span& s) {
  std::vector<std::string> keys;
  for (const auto& a : s.attributes) keys.emplace_back(a.key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(HttpSpanTest, ServerSpanEveryField) {
  const Record r = MakeRecord("GET", "/api/orders/12345?id=7&debug",
                              {{"Host", "shop.example.com"}, {"User-Agent", "curl/8.0"}});
  auto resource = std::make_shared<model::Resource>();
  const model::Span s = BuildHttpSpan(r, Server(), resource, {});

  EXPECT_EQ(s.kind, model::SpanKind::kServer);
  EXPECT_EQ(s.name, "GET /api/orders/{id}");
  EXPECT_EQ(s.start_time_unix_nano, kT0);
  EXPECT_EQ(s.end_time_unix_nano, kT0 + 2'500'000);
  EXPECT_EQ(s.status_code, model::StatusCode::kUnset);
  EXPECT_EQ(s.status_message, "");
  EXPECT_EQ(s.resource.get(), resource.get());
  EXPECT_TRUE(s.trace_id.IsValid());
  EXPECT_TRUE(s.span_id.IsValid());
  EXPECT_FALSE(s.parent_span_id.IsValid());
  EXPECT_EQ(s.trace_flags, 0x01);
  EXPECT_EQ(s.trace_state, "");

  EXPECT_EQ(Attr(s, "http.request.method"), "GET");
  EXPECT_EQ(Attr(s, "http.response.status_code"), "int:200");
  EXPECT_EQ(Attr(s, "url.template"), "/api/orders/{id}");
  EXPECT_EQ(Attr(s, "url.scheme"), "http");
  EXPECT_EQ(Attr(s, "url.path"), "/api/orders/12345");
  EXPECT_EQ(Attr(s, "url.query"), "id=REDACTED&debug");
  EXPECT_EQ(Attr(s, "server.address"), "shop.example.com");
  EXPECT_EQ(Attr(s, "server.port"), "int:8080");  // Host has no port: where it arrived
  EXPECT_EQ(Attr(s, "client.address"), "10.0.0.9");
  EXPECT_EQ(Attr(s, "client.port"), "int:51234");
  EXPECT_EQ(Attr(s, "network.peer.address"), "10.0.0.9");
  EXPECT_EQ(Attr(s, "network.peer.port"), "int:51234");
  EXPECT_EQ(Attr(s, "network.protocol.name"), "http");
  EXPECT_EQ(Attr(s, "network.protocol.version"), "1.1");
  EXPECT_EQ(Attr(s, "user_agent.original"), "curl/8.0");
  // Nothing else: no body sizes (none declared), no error.type, no url.full.
  EXPECT_EQ(Keys(s), Sorted({"http.request.method", "http.response.status_code", "url.template", "url.scheme",
                             "url.path", "url.query", "server.address", "server.port", "client.address",
                             "client.port", "network.peer.address", "network.peer.port",
                             "network.protocol.name", "network.protocol.version", "user_agent.original"}));
}

TEST(HttpSpanTest, ClientSpanEveryField) {
  const Record r = MakeRecord("POST", "/x?a=1", {{"Host", "127.0.0.1:8080"}, {"Content-Length", "5"}}, 201,
                              {{"Content-Length", "0"}});
  Record with_body = r;
  with_body.request.body_size = 5;
  const model::Span s = Build(with_body, Client());

  EXPECT_EQ(s.kind, model::SpanKind::kClient);
  EXPECT_EQ(s.name, "POST /x");
  EXPECT_EQ(s.status_code, model::StatusCode::kUnset);
  EXPECT_EQ(Attr(s, "url.full"), "http://127.0.0.1:8080/x?a=REDACTED");
  EXPECT_EQ(Attr(s, "server.address"), "127.0.0.1");
  EXPECT_EQ(Attr(s, "server.port"), "int:8080");
  EXPECT_EQ(Attr(s, "network.peer.address"), "127.0.0.1");
  EXPECT_EQ(Attr(s, "network.peer.port"), "int:8080");
  EXPECT_EQ(Attr(s, "http.request.body.size"), "int:5");
  EXPECT_EQ(Attr(s, "http.response.body.size"), "int:0");  // declared, so reported
  EXPECT_EQ(Keys(s), Sorted({"http.request.method", "http.response.status_code", "url.template", "url.full",
                             "server.address", "server.port", "network.peer.address", "network.peer.port",
                             "network.protocol.name", "network.protocol.version", "http.request.body.size",
                             "http.response.body.size"}));
}

TEST(HttpSpanTest, ServerContinuesIncomingTraceparentAndTracestate) {
  const Record r = MakeRecord("GET", "/",
                              {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
                               {"tracestate", "rojo=00f067aa0ba902b7"},
                               {"TraceState", " congo=t61rcWkgMzE "}});
  const model::Span s = Build(r, Server());
  EXPECT_EQ(s.trace_id.Hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.parent_span_id.Hex(), "00f067aa0ba902b7");
  EXPECT_EQ(s.trace_flags, 0x00);
  EXPECT_EQ(s.trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  EXPECT_TRUE(s.span_id.IsValid());
  EXPECT_NE(s.span_id, s.parent_span_id);
}

TEST(HttpSpanTest, InvalidTraceparentStartsNewTraceAndDropsTracestate) {
  const Record r = MakeRecord(
      "GET", "/",
      {{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, {"tracestate", "rojo=1"}});
  const model::Span s = Build(r, Server());
  EXPECT_TRUE(s.trace_id.IsValid());
  EXPECT_NE(s.trace_id.Hex(), "00000000000000000000000000000000");
  EXPECT_FALSE(s.parent_span_id.IsValid());
  EXPECT_EQ(s.trace_flags, 0x01);
  EXPECT_EQ(s.trace_state, "");
}

TEST(HttpSpanTest, TwoTraceparentHeadersAreNoContext) {
  const Record r = MakeRecord("GET", "/",
                              {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                               {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b8-01"}});
  const model::Span s = Build(r, Server());
  EXPECT_NE(s.trace_id.Hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(s.trace_id.Hex(), "4bf92f3577b34da6a3ce929d0e0e4737");
  EXPECT_FALSE(s.parent_span_id.IsValid());
}

TEST(HttpSpanTest, TracestateWithControlBytesIsDropped) {
  const Record r = MakeRecord("GET", "/",
                              {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                               {"tracestate", std::string("a=1\x01")}});
  const model::Span s = Build(r, Server());
  EXPECT_EQ(s.trace_id.Hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.trace_state, "");
}

TEST(HttpSpanTest, OversizedTracestateIsCutAtAMemberBoundary) {
  std::string state;
  for (int i = 10; i < 42; ++i) {  // 32 members (the most a list may have) of 155 bytes
    if (!state.empty()) state += ',';
    state += "k" + std::to_string(i) + "=" + std::string(151, 'v');
  }
  const Record r = MakeRecord(
      "GET", "/",
      {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, {"tracestate", state}});
  const model::Span s = Build(r, Server());
  ASSERT_LE(s.trace_state.size(), 4096u);
  EXPECT_GT(s.trace_state.size(), 3900u);
  EXPECT_EQ(state.compare(0, s.trace_state.size(), s.trace_state), 0);
  EXPECT_EQ(state[s.trace_state.size()], ',');  // whole members only
}

TEST(HttpSpanTest, ClientSpanGetsFreshIdsEvenWithOutgoingTraceparent) {
  // Parentage of client spans is the stitcher's decision, not the builder's.
  const Record r =
      MakeRecord("GET", "/",
                 {{"Host", "a"}, {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  const model::Span s = Build(r, Client());
  EXPECT_TRUE(s.trace_id.IsValid());
  EXPECT_NE(s.trace_id.Hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(s.parent_span_id.IsValid());
  EXPECT_EQ(s.trace_flags, 0x01);
}

TEST(HttpSpanTest, IdsDifferBetweenSpans) {
  const Record r = MakeRecord("GET", "/", {});
  const model::Span a = Build(r, Server());
  const model::Span b = Build(r, Server());
  EXPECT_NE(a.trace_id, b.trace_id);
  EXPECT_NE(a.span_id, b.span_id);
}

// ---- status per kind ---------------------------------------------------------------

struct StatusCase {
  const char* name;
  bool server;
  int code;
  bool error;
};

class HttpStatusTest : public testing::TestWithParam<StatusCase> {};

TEST_P(HttpStatusTest, Status) {
  const StatusCase& c = GetParam();
  const model::Span s = Build(MakeRecord("GET", "/", {}, c.code), c.server ? Server() : Client());
  EXPECT_EQ(s.status_code, c.error ? model::StatusCode::kError : model::StatusCode::kUnset);
  EXPECT_EQ(s.status_message, "");  // the status code says why
  EXPECT_EQ(Attr(s, "error.type"), c.error ? std::to_string(c.code) : "<missing>");
  EXPECT_EQ(Attr(s, "http.response.status_code"), "int:" + std::to_string(c.code));
}

const StatusCase kStatusCases[] = {
    {"server_200", true, 200, false},
    {"server_302", true, 302, false},
    {"server_404", true, 404, false},
    {"server_499", true, 499, false},
    {"server_500", true, 500, true},
    {"server_503", true, 503, true},
    {"client_200", false, 200, false},
    {"client_301", false, 301, false},
    {"client_400", false, 400, true},
    {"client_404", false, 404, true},
    {"client_500", false, 500, true},
    {"server_999_uninterpretable", true, 999, true},
    {"client_42_uninterpretable", false, 42, true},
};

INSTANTIATE_TEST_SUITE_P(Cases, HttpStatusTest, testing::ValuesIn(kStatusCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HttpSpanTest, ResponseMissing) {
  Record r = MakeRecord("POST", "/upload", {{"Content-Length", "10"}});
  r.request.body_size = 10;
  r.response_missing = true;
  r.response = {};
  const model::Span s = Build(r, Server());
  EXPECT_EQ(s.end_time_unix_nano, kT0 + 1'000);
  EXPECT_EQ(s.status_code, model::StatusCode::kError);
  EXPECT_FALSE(s.status_message.empty());
  EXPECT_EQ(Attr(s, "error.type"), "response_missing");
  EXPECT_EQ(Attr(s, "http.response.status_code"), "<missing>");
  EXPECT_EQ(Attr(s, "http.response.body.size"), "<missing>");
  EXPECT_EQ(Attr(s, "http.request.body.size"), "int:10");
  EXPECT_EQ(Attr(s, "network.protocol.version"), "1.1");
}

// kspan did not see the end (lost bytes, eviction, the process's exit, kspan's stop): the
// span says so and claims no error, on both ends.
TEST(HttpSpanTest, ResponseNotSeenIsIncompleteNotAnError) {
  const std::pair<protocols::Unanswered, const char*> kReasons[] = {
      {protocols::Unanswered::kNotCaptured, "response_not_captured"},
      {protocols::Unanswered::kEvicted, "evicted"},
      {protocols::Unanswered::kProcessExit, "process_exit"},
      {protocols::Unanswered::kShutdown, "shutdown"},
  };
  for (const auto& [why, name] : kReasons) {
    Record r = MakeRecord("GET", "/slow", {});
    r.response_missing = true;
    r.unanswered = why;
    r.response = {};
    for (const bool server : {true, false}) {
      const model::Span s = Build(r, server ? Server() : Client());
      EXPECT_EQ(s.status_code, model::StatusCode::kUnset) << name;
      EXPECT_TRUE(s.status_message.empty()) << name;
      EXPECT_EQ(Attr(s, "kspan.incomplete"), name);
      EXPECT_EQ(Attr(s, "error.type"), "<missing>") << name;
      EXPECT_EQ(Attr(s, "http.response.status_code"), "<missing>");
    }
  }
}

TEST(HttpSpanTest, EndBeforeStartIsClamped) {
  Record r = MakeRecord("GET", "/", {});
  r.response.timing.end_ns = kT0 - 5;
  const model::Span s = Build(r, Server());
  EXPECT_EQ(s.end_time_unix_nano, s.start_time_unix_nano);
}

// ---- methods -----------------------------------------------------------------------

struct MethodCase {
  const char* method;
  const char* attr;
  const char* original;  // "<missing>" when not set
  const char* name;
};

class HttpMethodTest : public testing::TestWithParam<MethodCase> {};

TEST_P(HttpMethodTest, Method) {
  const MethodCase& c = GetParam();
  const model::Span s = Build(MakeRecord(c.method, "/users/7", {}), Server());
  EXPECT_EQ(Attr(s, "http.request.method"), c.attr);
  EXPECT_EQ(Attr(s, "http.request.method_original"), c.original);
  EXPECT_EQ(s.name, c.name);
}

const MethodCase kMethodCases[] = {
    {"GET", "GET", "<missing>", "GET /users/{id}"},
    {"HEAD", "HEAD", "<missing>", "HEAD /users/{id}"},
    {"POST", "POST", "<missing>", "POST /users/{id}"},
    {"PUT", "PUT", "<missing>", "PUT /users/{id}"},
    {"DELETE", "DELETE", "<missing>", "DELETE /users/{id}"},
    {"OPTIONS", "OPTIONS", "<missing>", "OPTIONS /users/{id}"},
    {"TRACE", "TRACE", "<missing>", "TRACE /users/{id}"},
    {"PATCH", "PATCH", "<missing>", "PATCH /users/{id}"},
    {"PROPFIND", "_OTHER", "PROPFIND", "HTTP /users/{id}"},
    {"get", "_OTHER", "get", "HTTP /users/{id}"},  // methods are case-sensitive
    {"", "_OTHER", "", "HTTP /users/{id}"},
};

INSTANTIATE_TEST_SUITE_P(Cases, HttpMethodTest, testing::ValuesIn(kMethodCases), [](const auto& info) {
  return std::string(*info.param.method ? info.param.method : "empty") + "_" + std::to_string(info.index);
});

TEST(NormalizeHttpMethodTest, KnownMethodsExactlyElseOther) {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
    EXPECT_EQ(NormalizeHttpMethod(m), m);
  }
  for (const char* m : {"", "G", "GE", "GETS", "PUTT", "get", "Post", "HEAd", "DELETES", "OPTION", "CONNECTS",
                        "PATCHY", "TRACe", "PROPFIND", "MKCOL"}) {
    EXPECT_EQ(NormalizeHttpMethod(m), "_OTHER") << m;
  }
  EXPECT_EQ(NormalizeHttpMethod(std::string_view("GET\0", 4)), "_OTHER");
}

// ---- url.full and server.* on client spans -------------------------------------------

struct ClientUrlCase {
  const char* name;
  const char* target;
  const char* host;  // Host header, "" for none
  const char* remote_address;
  uint16_t remote_port;
  bool tls;
  bool redact;
  const char* url_full;
  const char* server_address;
  int server_port;
};

class ClientUrlTest : public testing::TestWithParam<ClientUrlCase> {};

TEST_P(ClientUrlTest, Url) {
  const ClientUrlCase& c = GetParam();
  std::vector<std::pair<std::string, std::string>> headers;
  if (*c.host) headers.emplace_back("Host", c.host);
  HttpConnContext conn = Client();
  events::SocketTuple tuple = *conn.tuple;
  tuple.remote = {c.remote_address, c.remote_port};
  conn.tuple = &tuple;
  conn.tls = c.tls;
  HttpSpanOptions opts;
  opts.redact_query_values = c.redact;
  const model::Span s = Build(MakeRecord("GET", c.target, headers), conn, opts);
  EXPECT_EQ(Attr(s, "url.full"), c.url_full);
  EXPECT_EQ(Attr(s, "server.address"), c.server_address);
  EXPECT_EQ(Attr(s, "server.port"), "int:" + std::to_string(c.server_port));
}

const ClientUrlCase kClientUrlCases[] = {
    {"host_with_port", "/x?a=1", "127.0.0.1:8080", "127.0.0.1", 8080, false, true,
     "http://127.0.0.1:8080/x?a=REDACTED", "127.0.0.1", 8080},
    {"host_default_port_omitted", "/x", "example.com", "93.184.216.34", 80, false, true,
     "http://example.com/x", "example.com", 80},
    {"host_explicit_default_port_omitted", "/x", "example.com:80", "93.184.216.34", 80, false, true,
     "http://example.com/x", "example.com", 80},
    {"no_host_uses_remote", "/x", "", "10.1.2.3", 9000, false, true, "http://10.1.2.3:9000/x", "10.1.2.3",
     9000},
    {"no_host_remote_ipv6", "/x", "", "::1", 9000, false, true, "http://[::1]:9000/x", "::1", 9000},
    {"host_ipv6", "/", "[::1]:8443", "::1", 8443, false, true, "http://[::1]:8443/", "::1", 8443},
    {"bad_host_falls_back_to_remote", "/", "bad host", "10.0.0.1", 81, false, true, "http://10.0.0.1:81/",
     "10.0.0.1", 81},
    {"tls_default_443", "/s", "api.example.com", "1.2.3.4", 443, true, true, "https://api.example.com/s",
     "api.example.com", 443},
    {"tls_80_is_explicit", "/s", "api.example.com:80", "1.2.3.4", 80, true, true,
     "https://api.example.com:80/s", "api.example.com", 80},
    {"redaction_off", "/x?a=1&b=2", "h:81", "1.2.3.4", 81, false, false, "http://h:81/x?a=1&b=2", "h", 81},
    {"empty_query_kept", "/x?", "h", "1.2.3.4", 80, false, true, "http://h/x?", "h", 80},
    {"absolute_form_proxy", "http://upstream.example:8081/p?k=v", "upstream.example:8081", "10.9.9.9", 3128,
     false, true, "http://upstream.example:8081/p?k=REDACTED", "upstream.example", 8081},
    {"absolute_form_wins_over_host", "http://a.example/p", "b.example", "10.9.9.9", 3128, false, true,
     "http://a.example/p", "a.example", 80},
    {"absolute_form_credentials_redacted", "http://user:pw@a.example/p", "a.example", "10.9.9.9", 3128, false,
     true, "http://REDACTED:REDACTED@a.example/p", "a.example", 80},
    {"absolute_form_https_scheme", "HTTPS://a.example/p", "", "10.9.9.9", 3128, false, true,
     "https://a.example/p", "a.example", 443},
    {"connect_authority_form", "a.example:443", "a.example:443", "10.9.9.9", 3128, false, true,
     "http://a.example:443", "a.example", 443},
};

INSTANTIATE_TEST_SUITE_P(Cases, ClientUrlTest, testing::ValuesIn(kClientUrlCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HttpSpanTest, ConnectSpanNameHasNoTarget) {
  const model::Span s = Build(MakeRecord("CONNECT", "a.example:443", {{"Host", "a.example:443"}}), Client());
  EXPECT_EQ(s.name, "CONNECT");
  EXPECT_EQ(Attr(s, "url.template"), "<missing>");
}

TEST(HttpSpanTest, OptionsAsteriskNameHasNoTarget) {
  const model::Span s = Build(MakeRecord("OPTIONS", "*", {{"Host", "h"}}), Server());
  EXPECT_EQ(s.name, "OPTIONS");
  EXPECT_EQ(Attr(s, "url.path"), "<missing>");
  EXPECT_EQ(Attr(s, "server.address"), "h");
}

// ---- server.* and client.* on server spans -------------------------------------------

TEST(HttpSpanTest, ServerHostWithPort) {
  const model::Span s = Build(MakeRecord("GET", "/", {{"Host", "[2001:db8::1]:9090"}}), Server());
  EXPECT_EQ(Attr(s, "server.address"), "2001:db8::1");
  EXPECT_EQ(Attr(s, "server.port"), "int:9090");
}

TEST(HttpSpanTest, ServerWithoutHostUsesLocalEnd) {
  Record r = MakeRecord("GET", "/", {});
  r.request.set_version("1.0");
  const model::Span s = Build(r, Server());
  EXPECT_EQ(Attr(s, "server.address"), "10.0.0.2");
  EXPECT_EQ(Attr(s, "server.port"), "int:8080");
  EXPECT_EQ(Attr(s, "network.protocol.version"), "1.0");
}

TEST(HttpSpanTest, ServerBehindProxyXForwarded) {
  const model::Span s = Build(MakeRecord("GET", "/",
                                         {{"Host", "backend:8080"},
                                          {"X-Forwarded-For", "203.0.113.7, 10.0.0.1"},
                                          {"X-Forwarded-Host", "shop.example.com"},
                                          {"X-Forwarded-Proto", "https"}}),
                              Server());
  EXPECT_EQ(Attr(s, "client.address"), "203.0.113.7");
  EXPECT_EQ(Attr(s, "client.port"), "<missing>");  // the proxy did not say
  EXPECT_EQ(Attr(s, "server.address"), "shop.example.com");
  EXPECT_EQ(Attr(s, "server.port"), "int:443");  // default of the original scheme
  EXPECT_EQ(Attr(s, "url.scheme"), "https");
  // The socket's peer is still the proxy.
  EXPECT_EQ(Attr(s, "network.peer.address"), "10.0.0.9");
}

TEST(HttpSpanTest, ServerBehindProxyForwardedHeader) {
  const model::Span s = Build(
      MakeRecord("GET", "/",
                 {{"Host", "backend"},
                  {"Forwarded",
                   R"(For="[2001:db8:cafe::17]:4711";proto=https;host="shop.example:8443", for=10.0.0.1)"}}),
      Server());
  EXPECT_EQ(Attr(s, "client.address"), "2001:db8:cafe::17");
  EXPECT_EQ(Attr(s, "client.port"), "int:4711");
  EXPECT_EQ(Attr(s, "server.address"), "shop.example");
  EXPECT_EQ(Attr(s, "server.port"), "int:8443");
  EXPECT_EQ(Attr(s, "url.scheme"), "https");
}

TEST(HttpSpanTest, ForwardedUnknownOrObfuscatedFallsBackToPeer) {
  for (const char* value : {"for=unknown", "for=_hidden", "for=\"not an address\""}) {
    const model::Span s = Build(MakeRecord("GET", "/", {{"Forwarded", value}}), Server());
    EXPECT_EQ(Attr(s, "client.address"), "10.0.0.9") << value;
    EXPECT_EQ(Attr(s, "client.port"), "int:51234") << value;
  }
}

TEST(HttpSpanTest, ForwardedOnlyFirstElementCounts) {
  // The second element was added by a later proxy; its host= must not be used.
  const model::Span s =
      Build(MakeRecord("GET", "/", {{"Host", "h"}, {"Forwarded", "for=1.2.3.4, host=evil"}}), Server());
  EXPECT_EQ(Attr(s, "server.address"), "h");
  EXPECT_EQ(Attr(s, "client.address"), "1.2.3.4");
}

TEST(HttpSpanTest, ServerQueryNotRedactedWhenDisabled) {
  HttpSpanOptions o;
  o.redact_query_values = false;
  const model::Span s = Build(MakeRecord("GET", "/s?q=otel&page=2", {}), Server(), o);
  EXPECT_EQ(Attr(s, "url.query"), "q=otel&page=2");
}

TEST(HttpSpanTest, ServerTlsScheme) {
  HttpConnContext c = Server();
  c.tls = true;
  const model::Span s = Build(MakeRecord("GET", "/", {{"Host", "h"}}), c);
  EXPECT_EQ(Attr(s, "url.scheme"), "https");
}

TEST(HttpSpanTest, ServerAbsoluteFormTarget) {
  const model::Span s =
      Build(MakeRecord("GET", "http://h.example:81/a/1?x=y", {{"Host", "other"}}), Server());
  EXPECT_EQ(s.name, "GET /a/{id}");
  EXPECT_EQ(Attr(s, "url.path"), "/a/1");
  EXPECT_EQ(Attr(s, "url.query"), "x=REDACTED");
  EXPECT_EQ(Attr(s, "server.address"), "h.example");
  EXPECT_EQ(Attr(s, "server.port"), "int:81");
}

TEST(HttpSpanTest, ServerAbsoluteFormWithoutPortImpliesDefault) {
  const model::Span s = Build(MakeRecord("GET", "http://h.example/a", {{"Host", "h.example"}}), Server());
  EXPECT_EQ(Attr(s, "server.address"), "h.example");
  EXPECT_EQ(Attr(s, "server.port"), "int:80");
}

// Held spans are bounded by their strings' capacities (trace_window.cc SpanBytes): a
// value is stored at its size, inline when short, and the name is no larger than needed.
TEST(HttpSpanTest, StringValuesAreStoredAtTheirSize) {
  const std::string ua = "Mozilla/5.0 (X11; Linux)";  // 24 bytes: on the heap, exactly
  const model::Span s =
      Build(MakeRecord("GET", "/api/users/1234567890123", {{"Host", "h"}, {"User-Agent", ua}}), Server());
  ASSERT_EQ(Attr(s, "url.template"), "/api/users/{id}");
  const size_t inline_chars = std::string().capacity();
  for (const model::Attribute& a : s.attributes) {
    const auto* v = std::get_if<std::string>(&a.value);
    if (!v) continue;
    EXPECT_EQ(v->capacity(), std::max(v->size(), inline_chars)) << a.key;
  }
  EXPECT_EQ(s.name, "GET /api/users/{id}");
  EXPECT_LE(s.name.capacity(), std::max<size_t>(30, s.name.size()));
}

// ---- body sizes ----------------------------------------------------------------------

TEST(HttpSpanTest, BodySizes) {
  Record r = MakeRecord("POST", "/", {{"Transfer-Encoding", "chunked"}}, 200, {});
  r.request.body_size = 0;      // chunked with a zero-size body: declared, so reported
  r.response.body_size = 1234;  // close-delimited: no header, but bytes came
  const model::Span s = Build(r, Server());
  EXPECT_EQ(Attr(s, "http.request.body.size"), "int:0");
  EXPECT_EQ(Attr(s, "http.response.body.size"), "int:1234");

  const model::Span none = Build(MakeRecord("GET", "/", {}), Server());
  EXPECT_EQ(Attr(none, "http.request.body.size"), "<missing>");
  EXPECT_EQ(Attr(none, "http.response.body.size"), "<missing>");
}

TEST(HttpSpanTest, MissingVersionIsOmitted) {
  Record r = MakeRecord("GET", "/", {});
  r.request.set_version("");
  r.response.set_version("");
  const model::Span s = Build(r, Server());
  EXPECT_EQ(Attr(s, "network.protocol.version"), "<missing>");
  EXPECT_EQ(Attr(s, "network.protocol.name"), "http");
}

}  // namespace
}  // namespace kspan::correlator
