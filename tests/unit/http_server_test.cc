// The agent's small HTTP server: listen addresses, request heads (well-formed, every
// truncated prefix, invalid, too large), and a real server on 127.0.0.1 port 0 against
// bad methods, oversized heads, slow clients, too many connections, throwing handlers and
// a stop with connections open.
#include "common/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "testing/subprocess.h"

namespace kspan::http {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------
// Listen addresses.

struct AddrCase {
  std::string text;
  std::string host;
  uint16_t port;
  bool ipv6;
};

class ListenAddressGood : public ::testing::TestWithParam<AddrCase> {};

TEST_P(ListenAddressGood, Parses) {
  auto a = ParseListenAddress("--listen", GetParam().text);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->host, GetParam().host);
  EXPECT_EQ(a->port, GetParam().port);
  EXPECT_EQ(a->ipv6, GetParam().ipv6);
}

INSTANTIATE_TEST_SUITE_P(Cases, ListenAddressGood,
                         ::testing::Values(AddrCase{"127.0.0.1:9464", "127.0.0.1", 9464, false},
                                           AddrCase{"[::1]:9464", "::1", 9464, true},
                                           AddrCase{"0.0.0.0:9464", "0.0.0.0", 9464, false},
                                           AddrCase{"[::]:9464", "::", 9464, true},
                                           AddrCase{"localhost:80", "127.0.0.1", 80, false},
                                           AddrCase{"127.0.0.1:0", "127.0.0.1", 0, false},
                                           AddrCase{"10.1.2.3:65535", "10.1.2.3", 65535, false}));

TEST(ListenAddress, ToStringBracketsIpv6) {
  EXPECT_EQ((ListenAddress{"::1", 80, true}).ToString(), "[::1]:80");
  EXPECT_EQ((ListenAddress{"127.0.0.1", 80, false}).ToString(), "127.0.0.1:80");
}

struct BadAddrCase {
  std::string text;
  std::string must_mention;
};

class ListenAddressBad : public ::testing::TestWithParam<BadAddrCase> {};

TEST_P(ListenAddressBad, OneClearError) {
  auto a = ParseListenAddress("--listen", GetParam().text);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("--listen"), std::string::npos) << a.status().message();
  EXPECT_NE(a.status().message().find(GetParam().must_mention), std::string::npos) << a.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ListenAddressBad,
    ::testing::Values(BadAddrCase{":9464", "has no address"}, BadAddrCase{":9464", "0.0.0.0:9464"},
                      BadAddrCase{"9464", "has no :PORT"}, BadAddrCase{"127.0.0.1", "has no :PORT"},
                      BadAddrCase{"127.0.0.1:", "port ''"}, BadAddrCase{"127.0.0.1:65536", "0 to 65535"},
                      BadAddrCase{"127.0.0.1:-1", "0 to 65535"}, BadAddrCase{"127.0.0.1:80x", "'80x'"},
                      BadAddrCase{"::1:9464", "brackets"}, BadAddrCase{"[::1]9464", "has no :PORT"},
                      BadAddrCase{"[::1:9464", "']'"}, BadAddrCase{"[127.0.0.1]:80", "not a numeric IPv6"},
                      BadAddrCase{"example.com:80", "not a numeric IPv4"},
                      BadAddrCase{"256.0.0.1:80", "not a numeric IPv4"}));

// ---------------------------------------------------------------------------------------
// Request heads.

constexpr size_t kMax = 8192;

HeadState Parse(std::string_view buf, Request* r = nullptr, size_t* head_bytes = nullptr) {
  Request ignored;
  size_t n = 0;
  return ParseRequestHead(buf, kMax, r ? r : &ignored, head_bytes ? head_bytes : &n);
}

TEST(RequestHead, Simple) {
  Request r;
  size_t n = 0;
  const std::string head =
      "GET /metrics?x=1&y HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nAccept:  text/plain \r\n\r\n";
  ASSERT_EQ(Parse(head + "trailing body", &r, &n), HeadState::kComplete);
  EXPECT_EQ(n, head.size());
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/metrics?x=1&y");
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_EQ(r.query, "x=1&y");
  EXPECT_EQ(r.minor_version, 1);
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"host", "127.0.0.1:9464"}));
  EXPECT_EQ(r.headers[1], (std::pair<std::string, std::string>{"accept", "text/plain"}));
}

TEST(RequestHead, BareLineFeedsLeadingBlankLinesHttp10AndAbsoluteForm) {
  Request r;
  ASSERT_EQ(Parse("\r\n\nHEAD http://h:1/api/status?q HTTP/1.0\n\n", &r), HeadState::kComplete);
  EXPECT_EQ(r.method, "HEAD");
  EXPECT_EQ(r.path, "/api/status");
  EXPECT_EQ(r.query, "q");
  EXPECT_EQ(r.minor_version, 0);
  ASSERT_EQ(Parse("GET http://h:1 HTTP/1.1\r\n\r\n", &r), HeadState::kComplete);
  EXPECT_EQ(r.path, "/");
  ASSERT_EQ(Parse("OPTIONS * HTTP/1.1\r\n\r\n", &r), HeadState::kComplete);
  EXPECT_EQ(r.path, "*");
}

TEST(RequestHead, EveryTruncatedPrefixNeedsMoreData) {
  const std::string head = "GET /api/agent-graph HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/7.88\r\n\r\n";
  for (size_t i = 0; i < head.size(); ++i) {
    EXPECT_EQ(Parse(head.substr(0, i)), HeadState::kIncomplete) << i;
  }
  EXPECT_EQ(Parse(head), HeadState::kComplete);
}

class RequestHeadInvalid : public ::testing::TestWithParam<std::string> {};

TEST_P(RequestHeadInvalid, IsInvalid) {
  EXPECT_EQ(Parse(GetParam()), HeadState::kInvalid) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RequestHeadInvalid,
    ::testing::Values("GET\r\n\r\n", "GET /\r\n\r\n", "GET / HTTP/1.1 extra\r\n\r\n",
                      "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET / http/1.1\r\n\r\n",
                      "GET / HTTP/1.10\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET /a\x01 HTTP/1.1\r\n\r\n",
                      "GET relative HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
                      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
                      "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                      std::string(40, 'G') + " / HTTP/1.1\r\n\r\n",
                      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n", 13)));

TEST(RequestHead, TooLarge) {
  const std::string big_header = "X-Big: " + std::string(kMax, 'a') + "\r\n";
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\n" + big_header), HeadState::kTooLarge);           // no end yet
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\n" + big_header + "\r\n"), HeadState::kTooLarge);  // ends too late
  EXPECT_EQ(Parse(std::string(kMax + 1, 'G')), HeadState::kTooLarge);                  // one long line
  // Exactly the limit is fine.
  std::string exact = "GET / HTTP/1.1\r\nX: \r\n\r\n";
  exact.insert(exact.size() - 4, std::string(kMax - exact.size(), 'a'));
  ASSERT_EQ(exact.size(), kMax);
  EXPECT_EQ(Parse(exact), HeadState::kComplete);
}

// The head is read by the http1 parser the tracer uses; these are its rules the server
// inherits, and the server's own on top.
TEST(RequestHead, SharesTheTracersHttp1Rules) {
  // Lower-case methods, a request body that is not delimited, a malformed Content-Length.
  EXPECT_EQ(Parse("get / HTTP/1.1\r\n\r\n"), HeadState::kInvalid);
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), HeadState::kInvalid);
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"), HeadState::kInvalid);
  // At most 128 header fields.
  std::string fields;
  for (int i = 0; i < 128; ++i) fields += "a" + std::to_string(i) + ": b\r\n";
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\n" + fields + "\r\n"), HeadState::kComplete);
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\n" + fields + "z: 1\r\n\r\n"), HeadState::kInvalid);
  // Authority-form (CONNECT's) is not served.
  EXPECT_EQ(Parse("CONNECT h:443 HTTP/1.1\r\n\r\n"), HeadState::kInvalid);
  // An Upgrade request ends HTTP/1 for the tracer (kEndOfStream); here it is a head like any.
  Request r;
  ASSERT_EQ(Parse("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", &r),
            HeadState::kComplete);
  EXPECT_EQ(r.path, "/ws");
}

TEST(RequestHead, HeadBytesCountLeadingBlankLinesNotTheBody) {
  Request r;
  size_t n = 0;
  const std::string head = "\r\n\nGET /x#frag HTTP/1.1\nContent-Length: 5\n\n";
  ASSERT_EQ(Parse(head + "hel", &r, &n), HeadState::kComplete);  // the body need not be there
  EXPECT_EQ(n, head.size());
  EXPECT_EQ(r.path, "/x");
  ASSERT_EQ(Parse("POST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz", &r, &n), HeadState::kComplete);
  EXPECT_EQ(n, 48u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"transfer-encoding", "chunked"}));
}

TEST(RequestHead, TooLargeIsDecidedBeforeInvalidPastTheLimit) {
  // A whole malformed head within the limit is invalid even with more bytes after it.
  EXPECT_EQ(Parse("GET relative HTTP/1.1\r\n\r\n" + std::string(kMax, 'x')), HeadState::kInvalid);
  // A limit over 16 KiB (the parser's line bound) acts as 16 KiB, answered 431 not 400.
  Request r;
  size_t n = 0;
  const std::string line = "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n";
  EXPECT_EQ(ParseRequestHead(line, 1 << 20, &r, &n), HeadState::kTooLarge);
  EXPECT_EQ(ParseRequestHead(line.substr(0, 16384), 1 << 20, &r, &n), HeadState::kIncomplete);
}

TEST(Response, SerializedWithCloseAndLength) {
  Response r{404, "text/plain", "nope\n", {{"X-A", "b"}}};
  EXPECT_EQ(SerializeResponse(r, false),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n"
            "Cache-Control: no-store\r\nX-A: b\r\n\r\nnope\n");
  EXPECT_EQ(SerializeResponse(r, true).find("nope"), std::string::npos);
  EXPECT_NE(SerializeResponse(r, true).find("Content-Length: 5\r\n"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// A real server on loopback.

int Connect(uint16_t port) {
  return testing::ConnectLoopback(port);
}

void SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Everything the server sends until it closes, or until `timeout`.
std::string ReadAll(int fd, milliseconds timeout = milliseconds(5000)) {
  std::string out;
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (true) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// One request on a fresh connection; returns the whole response.
std::string Exchange(uint16_t port, std::string_view request) {
  const int fd = Connect(port);
  if (fd < 0) return "connect failed";
  SendAll(fd, request);
  std::string r = ReadAll(fd);
  ::close(fd);
  return r;
}

std::string Body(const std::string& response) {
  const size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions o = {}) {
    o.address = *ParseListenAddress("test", "127.0.0.1:0");
    server_ = std::make_unique<HttpServer>(o, &metrics_);
    server_->Handle("/hello", [](const Request& r) {
      return Response{200, "text/plain", "hello " + r.query + "\n", {}};
    });
    server_->Handle("/big", [](const Request&) {
      return Response{200, "text/plain", std::string(4 << 20, 'x'), {}};
    });
    server_->Handle("/throw", [](const Request&) -> Response { throw std::runtime_error("boom"); });
    server_->Handle("/ui/", [](const Request& r) { return Response{200, "text/plain", "ui " + r.path, {}}; });
    ASSERT_TRUE(server_->Listen().ok());
    port_ = server_->bound().port;
    ASSERT_NE(port_, 0);
    ASSERT_TRUE(server_->Start().ok());
  }
  uint64_t Requests(const std::string& path, int code) {
    return metrics_.GetCounter("kspan_http_requests_total", {{"path", path}, {"code", std::to_string(code)}})
        ->Value();
  }
  uint64_t Dropped(const std::string& reason) {
    return metrics_.GetCounter("kspan_http_connections_dropped_total", {{"reason", reason}})->Value();
  }

  metrics::Registry metrics_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, GetHeadAndRoutes) {
  StartServer();
  const std::string get = Exchange(port_, "GET /hello?a=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(get.starts_with("HTTP/1.1 200 OK\r\n")) << get;
  EXPECT_NE(get.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(get.find("Content-Length: 10\r\n"), std::string::npos) << get;
  EXPECT_EQ(Body(get), "hello a=1\n");

  const std::string head = Exchange(port_, "HEAD /hello HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200 OK\r\n")) << head;
  EXPECT_NE(head.find("Content-Length: 7\r\n"), std::string::npos) << head;
  EXPECT_EQ(Body(head), "");

  EXPECT_EQ(Body(Exchange(port_, "GET /ui/app.js HTTP/1.1\r\n\r\n")), "ui /ui/app.js");
  EXPECT_TRUE(Exchange(port_, "GET /ui HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "))
      << "the prefix needs its '/'";
  EXPECT_TRUE(Exchange(port_, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 Not Found\r\n"));

  const std::string post = Exchange(port_, "POST /hello HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_TRUE(post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n")) << post;
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_TRUE(Exchange(port_, "DELETE /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));

  EXPECT_EQ(Requests("/hello", 200), 2u);
  EXPECT_EQ(Requests("/hello", 405), 1u);
  EXPECT_EQ(Requests("/ui/", 200), 1u);
  EXPECT_EQ(Requests("other", 404), 3u);
}

TEST_F(HttpServerTest, BadInputIsA4xxNeverACrash) {
  StartServer();
  EXPECT_TRUE(Exchange(port_, "HELLO\r\n\r\n").starts_with("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_TRUE(Exchange(port_, std::string("\x16\x03\x01\x00\x05hello\n\n", 12)).starts_with("HTTP/1.1 400 "));
  const std::string huge = "GET /hello HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  EXPECT_TRUE(Exchange(port_, huge).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  EXPECT_TRUE(Exchange(port_, "GET /throw HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 500 "));
  EXPECT_EQ(Requests("other", 400), 2u);
  EXPECT_EQ(Requests("other", 431), 1u);
  EXPECT_EQ(Requests("/throw", 500), 1u);
  // Still serving.
  EXPECT_EQ(Body(Exchange(port_, "GET /hello HTTP/1.1\r\n\r\n")), "hello \n");
}

TEST_F(HttpServerTest, ClientThatClosesEarlyIsCounted) {
  StartServer();
  const int fd = Connect(port_);
  SendAll(fd, "GET /hel");
  ::close(fd);
  EXPECT_EQ(Body(Exchange(port_, "GET /hello HTTP/1.1\r\n\r\n")), "hello \n");
  testing::WaitFor([&] { return Dropped("client_closed") > 0; }, milliseconds(2000));
  EXPECT_EQ(Dropped("client_closed"), 1u);
}

TEST_F(HttpServerTest, SlowClientGets408AndDoesNotBlockOthers) {
  ServerOptions o;
  o.read_timeout = milliseconds(300);
  StartServer(o);
  const int slow = Connect(port_);
  SendAll(slow, "GET /hello HTTP/1.1\r\n");  // and never the blank line
  // Meanwhile another client is served at once.
  const auto t0 = Clock::now();
  EXPECT_EQ(Body(Exchange(port_, "GET /hello HTTP/1.1\r\n\r\n")), "hello \n");
  EXPECT_LT(Clock::now() - t0, milliseconds(250));
  const std::string r = ReadAll(slow, milliseconds(3000));
  const auto waited = Clock::now() - t0;
  ::close(slow);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 408 Request Timeout\r\n")) << r;
  EXPECT_GE(waited, milliseconds(250));
  EXPECT_LT(waited, milliseconds(2000));
  EXPECT_EQ(Requests("other", 408), 1u);
}

TEST_F(HttpServerTest, ConnectionsPastTheLimitGet503AndTheSlotsComeBack) {
  StartServer();  // the default limit, 64
  std::vector<int> idle;
  for (int i = 0; i < 64; ++i) {
    const int fd = Connect(port_);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  testing::WaitFor([&] { return server_->open_connections() >= 64; }, milliseconds(3000));
  ASSERT_EQ(server_->open_connections(), 64u);
  const std::string refused = Exchange(port_, "GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 503 Service Unavailable\r\n")) << refused;
  EXPECT_EQ(Requests("other", 503), 1u);
  for (int fd : idle) ::close(fd);
  // The closed connections are noticed (EOF) and their slots reused.
  std::string ok;
  const auto deadline2 = Clock::now() + milliseconds(3000);
  do {
    ok = Exchange(port_, "GET /hello HTTP/1.1\r\n\r\n");
  } while (!ok.starts_with("HTTP/1.1 200") && Clock::now() < deadline2);
  EXPECT_TRUE(ok.starts_with("HTTP/1.1 200 OK")) << ok;
  testing::WaitFor([&] { return Dropped("client_closed") >= 64; }, milliseconds(3000));
  EXPECT_EQ(Dropped("client_closed"), 64u);
}

TEST_F(HttpServerTest, LargeResponseToASlowReaderArrivesWhole) {
  StartServer();
  const int fd = Connect(port_);
  SendAll(fd, "GET /big HTTP/1.1\r\n\r\n");
  // The thing under test, not a wait for an event: a reader that starts late, so the server
  // meets full socket buffers (EAGAIN) and must resume where it stopped.
  std::this_thread::sleep_for(milliseconds(200));
  const std::string r = ReadAll(fd);
  ::close(fd);
  EXPECT_EQ(Body(r).size(), size_t{4} << 20);
}

TEST_F(HttpServerTest, RequestWithBodyStillGetsItsWholeResponse) {
  // Unread input at close would make the kernel send a reset; the server drains instead.
  StartServer();
  const std::string r =
      Exchange(port_, "GET /hello HTTP/1.1\r\nContent-Length: 20000\r\n\r\n" + std::string(20000, 'b'));
  EXPECT_EQ(Body(r), "hello \n") << r.substr(0, 200);
}

TEST_F(HttpServerTest, StopWithConnectionsOpenIsPromptAndThenRefuses) {
  StartServer();
  const int a = Connect(port_);
  SendAll(a, "GET /hel");
  const int b = Connect(port_);
  const auto t0 = Clock::now();
  server_->Stop();
  EXPECT_LT(Clock::now() - t0, milliseconds(500));
  EXPECT_EQ(ReadAll(a, milliseconds(1000)), "");  // cut: EOF, no response
  ::close(a);
  ::close(b);
  EXPECT_EQ(Connect(port_), -1) << "the listening socket is closed";
  server_->Stop();  // idempotent
}

TEST(HttpServer, PortInUseIsAClearError) {
  metrics::Registry m;
  ServerOptions o;
  o.address = *ParseListenAddress("test", "127.0.0.1:0");
  HttpServer first(o, &m);
  ASSERT_TRUE(first.Listen().ok());
  o.address.port = first.bound().port;
  HttpServer second(o, &m);
  const Status s = second.Listen();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(o.address.ToString()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("in use"), std::string::npos) << s.message();
}

TEST(HttpServer, Ipv6Loopback) {
  metrics::Registry m;
  ServerOptions o;
  o.address = *ParseListenAddress("test", "[::1]:0");
  HttpServer server(o, &m);
  server.Handle("/x", [](const Request&) { return Response{200, "text/plain", "v6", {}}; });
  const Status s = server.Listen();
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_TRUE(server.Start().ok());
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(server.bound().port);
  sa.sin6_addr = in6addr_loopback;
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  SendAll(fd, "GET /x HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Body(ReadAll(fd)), "v6");
  ::close(fd);
}

}  // namespace
}  // namespace kspan::http
