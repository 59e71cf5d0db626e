// TLS end to end: kspan reads HTTP inside TLS through its OpenSSL uprobes, for curl and
// nginx (libssl.so.3, socket BIOs), python (libssl.so.3, SSL_*_ex) and node (OpenSSL
// inside the node binary, memory BIOs); every TLS program here starts after kspan. The
// certificate is made by the test. A stripped static binary with OpenSSL inside is
// reported as not captured, with the reason. No ciphertext ever reaches the HTTP parser.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <regex>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;

std::vector<FlatSpan> SpansOf(const std::vector<FlatSpan>& all, int port, int kind) {
  std::vector<FlatSpan> out;
  for (const auto& s : all) {
    if (s.kind == kind && s.Int("server.port") == port) out.push_back(s);
  }
  std::sort(out.begin(), out.end(),
            [](const FlatSpan& a, const FlatSpan& b) { return a.start_ns < b.start_ns; });
  return out;
}

// Attributes every HTTPS span must have, read from the decrypted bytes.
void ExpectHttps(const FlatSpan& s, int port, const std::string& path, int status) {
  EXPECT_EQ(s.Str("http.request.method"), "GET");
  EXPECT_EQ(s.Int("http.response.status_code"), status);
  EXPECT_EQ(s.Int("server.port"), port);
  if (s.kind == kServer) {
    EXPECT_EQ(s.Str("url.scheme"), "https");
    EXPECT_EQ(s.Str("url.path"), path);
  } else {
    EXPECT_TRUE(s.Str("url.full").starts_with("https://")) << s.Str("url.full");
    EXPECT_NE(s.Str("url.full").find(path), std::string::npos) << s.Str("url.full");
  }
}

class TlsIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("kspan-tls-");
    const std::string error = MakeTestCertificate(dir_);
    ASSERT_TRUE(error.empty()) << error;
  }
  void SetUp() override { ASSERT_TRUE(agent_.Start()) << "kspan did not become ready:\n" << agent_.Logs(); }
  // Stops the agent and checks what every TLS test must hold: a clean exit, no error
  // logged, and no parse failure (ciphertext never reaches the HTTP parser).
  void StopAgent() {
    if (stopped_) return;
    stopped_ = true;
    ExpectCleanStop(agent_);
    EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http1\"}"), 0) << agent_.Logs();
  }
  void TearDown() override { StopAgent(); }

  std::vector<FlatSpan> WaitForSpans(int port, size_t servers, size_t clients) {
    std::vector<FlatSpan> spans;
    WaitFor(
        [&] {
          spans = ReadSpans(agent_.SpansPath());
          return SpansOf(spans, port, kServer).size() >= servers &&
                 SpansOf(spans, port, kClient).size() >= clients;
        },
        std::chrono::seconds(20));
    return spans;
  }

  void StartNginx(int port) {
    std::ofstream(dir_ + "/nginx.conf") << "worker_processes 1;\n"
                                           "daemon off;\n"
                                           "pid "
                                        << dir_
                                        << "/nginx.pid;\n"
                                           "error_log "
                                        << dir_
                                        << "/error.log;\n"
                                           "events { worker_connections 64; }\n"
                                           "http {\n"
                                           "  access_log off;\n"
                                           "  client_body_temp_path "
                                        << dir_
                                        << "/tmp;\n"
                                           "  server {\n"
                                           "    listen 127.0.0.1:"
                                        << port
                                        << " ssl;\n"
                                           "    ssl_certificate "
                                        << dir_
                                        << "/cert.pem;\n"
                                           "    ssl_certificate_key "
                                        << dir_
                                        << "/key.pem;\n"
                                           "    location /ok { return 200 \"ok\\n\"; }\n"
                                           "    location /missing { return 404; }\n"
                                           "  }\n"
                                           "}\n";
    ASSERT_TRUE(server_.Start({"/usr/sbin/nginx", "-c", dir_ + "/nginx.conf", "-p", dir_}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10)))
        << server_.Stderr() << ReadFileOrEmpty(dir_ + "/error.log");
  }

  // n requests PREFIX/0..n-1 answered 200, each as a SERVER span that is the child of its
  // CLIENT span, both with the HTTPS attributes. Returns the SERVER spans in order.
  std::vector<FlatSpan> ExpectPairedHttps(int port, size_t n, const std::string& prefix) {
    const auto spans = WaitForSpans(port, n, n);
    const auto servers = SpansOf(spans, port, kServer), clients = SpansOf(spans, port, kClient);
    EXPECT_EQ(servers.size(), n) << agent_.Logs();
    EXPECT_EQ(clients.size(), n);
    if (servers.size() != n || clients.size() != n) return {};
    for (size_t i = 0; i < n; ++i) {
      ExpectHttps(servers[i], port, prefix + "/" + std::to_string(i), 200);
      ExpectHttps(clients[i], port, prefix + "/" + std::to_string(i), 200);
      EXPECT_EQ(servers[i].parent_span_id, clients[i].span_id);
    }
    return servers;
  }

  // tests/apps/https_server.py (python's ssl: the system libssl, SSL_*_ex).
  void StartPythonHttps(int port) {
    ASSERT_TRUE(
        server_.Start({"/usr/bin/python3", std::string(KSPAN_SOURCE_DIR) + "/tests/apps/https_server.py",
                       std::to_string(port), dir_ + "/cert.pem", dir_ + "/key.pem"}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << server_.Stderr();
  }

  static std::string dir_;
  KspanAgent agent_;
  Subprocess server_;
  bool stopped_ = false;
};

std::string TlsIntegration::dir_;

TEST_F(TlsIntegration, CurlToNginxOverTls) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartNginx(port));
  const std::string base = "https://localhost:" + std::to_string(port);
  // One curl, two requests on one keep-alive connection: 200 then 404.
  auto r = RunCommand({"curl", "-sS", "--max-time", "10", "--cacert", dir_ + "/cert.pem", "-o", "/dev/null",
                       "-o", "/dev/null", "--resolve", "localhost:" + std::to_string(port) + ":127.0.0.1",
                       base + "/ok", base + "/missing"},
                      std::chrono::seconds(20));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const auto spans = WaitForSpans(port, 2, 2);
  const auto servers = SpansOf(spans, port, kServer), clients = SpansOf(spans, port, kClient);
  ASSERT_EQ(servers.size(), 2u) << agent_.Logs();
  ASSERT_EQ(clients.size(), 2u);
  ExpectHttps(servers[0], port, "/ok", 200);
  ExpectHttps(servers[1], port, "/missing", 404);
  ExpectHttps(clients[0], port, "/ok", 200);
  ExpectHttps(clients[1], port, "/missing", 404);
  EXPECT_EQ(servers[0].Str("server.address"), "localhost");
  EXPECT_EQ(servers[0].ResourceStr("process.executable.name"), "nginx");
  EXPECT_EQ(clients[0].ResourceStr("process.executable.name"), "curl");
  for (int i = 0; i < 2; ++i) {  // same host: each SERVER span is its CLIENT span's child
    EXPECT_EQ(servers[i].trace_id, clients[i].trace_id);
    EXPECT_EQ(servers[i].parent_span_id, clients[i].span_id);
  }
  StopAgent();
  EXPECT_GE(agent_.StoppedCounter("kspan_tls_connections_total{plaintext=\"captured\"}"), 2);
}

TEST_F(TlsIntegration, PythonClientToPythonServer) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPythonHttps(port));
  auto r = RunCommand({"/usr/bin/python3", std::string(KSPAN_SOURCE_DIR) + "/tests/apps/https_client.py",
                       std::to_string(port), dir_ + "/cert.pem", "5", "/items"},
                      std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // Redaction works inside TLS too.
  for (const FlatSpan& s : ExpectPairedHttps(port, 5, "/items"))
    EXPECT_EQ(s.Str("url.query"), "token=REDACTED");
}

// libssl's writes have no return probe: the plaintext is sent at SSL_write's entry and
// the socket writes stand in for the return. A client on a non-blocking socket with a
// tiny send buffer, uploading to a slow reader, makes OpenSSL return WANT_WRITE mid-body
// many times; each retry passes the same length and must not be sent again. Three 1 MiB
// bodies on one connection: bytes sent twice would shift the stream, and the next request
// would not parse.
TEST_F(TlsIntegration, WantWriteRetriesSendEachPlaintextByteOnce) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPythonHttps(port));
  constexpr int kBody = 1 << 20;
  auto r = RunCommand({"/usr/bin/python3", std::string(KSPAN_SOURCE_DIR) + "/tests/apps/https_upload.py",
                       std::to_string(port), dir_ + "/cert.pem", "3", std::to_string(kBody)},
                      std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::smatch m = [&] {
    std::smatch sm;
    std::regex_search(r.out, sm, std::regex(R"("want_write": (\d+))"));
    return sm;
  }();
  ASSERT_EQ(m.size(), 2u) << r.out;
  EXPECT_GT(std::stoi(m[1]), 0) << "the client never met a full socket: the test proves nothing\n" << r.out;

  const auto spans = WaitForSpans(port, 3, 3);
  const auto servers = SpansOf(spans, port, kServer), clients = SpansOf(spans, port, kClient);
  ASSERT_EQ(servers.size(), 3u) << agent_.Logs();
  ASSERT_EQ(clients.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    for (const FlatSpan* s : {&servers[i], &clients[i]}) {
      EXPECT_EQ(s->Str("http.request.method"), "POST");
      EXPECT_EQ(s->Int("http.response.status_code"), 200);
      EXPECT_EQ(s->Int("http.request.body.size"), kBody);
      EXPECT_EQ(s->Int("http.response.body.size"), static_cast<int64_t>(std::string("got 1048576\n").size()));
    }
    EXPECT_EQ(servers[i].Str("url.path"), "/slow/" + std::to_string(i));
    EXPECT_EQ(servers[i].parent_span_id, clients[i].span_id);
  }
  StopAgent();
  EXPECT_EQ(agent_.StoppedCounter("kspan_kernel_counts_total{name=\"tls_plaintext_unbound\"}"), 0);
  EXPECT_EQ(agent_.StoppedCounter("kspan_tls_plaintext_dropped_total{reason=\"socket_unknown\"}"), 0);
}

// asyncio runs TLS over memory BIOs on the system libssl: SSL_write makes no syscall and
// the event loop writes the ciphertext afterwards. The write taken at the socket write
// finds it as the thread's next TLS record in the same turn.
TEST_F(TlsIntegration, AsyncioClientOverMemoryBios) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPythonHttps(port));
  auto r =
      RunCommand({"/usr/bin/python3", std::string(KSPAN_SOURCE_DIR) + "/tests/apps/https_asyncio_client.py",
                  std::to_string(port), dir_ + "/cert.pem", "5", "/aio"},
                 std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectPairedHttps(port, 5, "/aio");
  StopAgent();
  EXPECT_EQ(agent_.StoppedCounter("kspan_kernel_counts_total{name=\"tls_plaintext_unbound\"}"), 0);
  EXPECT_EQ(agent_.StoppedCounter("kspan_tls_plaintext_dropped_total{reason=\"socket_unknown\"}"), 0);
}

// Memory BIOs pumped by hand over a blocking socket with a timeout: each request is two
// SSL_writes (the first into a temporary that python frees, its memory reused by the
// second) before one socket write, preceded by a poll (a new event-loop turn). The first
// write's bytes must be taken while its call runs, and placed before the second's.
TEST_F(TlsIntegration, MemoryBioWritesBeforeOneSocketWrite) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPythonHttps(port));
  auto r = RunCommand({"/usr/bin/python3", std::string(KSPAN_SOURCE_DIR) + "/tests/apps/https_memory_bio.py",
                       std::to_string(port), dir_ + "/cert.pem", "5", "/mbio"},
                      std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectPairedHttps(port, 5, "/mbio");
  StopAgent();
  EXPECT_EQ(agent_.StoppedCounter("kspan_kernel_counts_total{name=\"tls_plaintext_unbound\"}"), 0);
  EXPECT_EQ(agent_.StoppedCounter("kspan_tls_plaintext_dropped_total{reason=\"socket_unknown\"}"), 0);
}

TEST_F(TlsIntegration, NodeClientToNodeServer) {
  const int port = FreePort();
  const std::string app = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/https_node.js";
  ASSERT_TRUE(
      server_.Start({"node", app, "server", std::to_string(port), dir_ + "/cert.pem", dir_ + "/key.pem"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << server_.Stderr();
  auto r = RunCommand({"node", app, "client", std::to_string(port), dir_ + "/cert.pem", "5", "/n"},
                      std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  ExpectPairedHttps(port, 5, "/n");
  StopAgent();
  // node's writes wait for their socket (memory BIO): every one found it.
  EXPECT_EQ(agent_.StoppedCounter("kspan_tls_plaintext_dropped_total{reason=\"socket_unknown\"}"), 0);
  EXPECT_EQ(agent_.StoppedCounter("kspan_kernel_counts_total{name=\"tls_plaintext_unbound\"}"), 0);
}

TEST_F(TlsIntegration, StrippedStaticBinaryIsReportedNotCaptured) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPythonHttps(port));
  auto r =
      RunCommand({KSPAN_TLS_GET_STRIPPED, std::to_string(port), "/opaque", "2"}, std::chrono::seconds(20));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_NE(r.out.find("HTTP/1.1 200"), std::string::npos) << r.out;

  // The server side is still seen (python's libssl); the client's side is reported.
  const auto spans = WaitForSpans(port, 2, 0);
  EXPECT_EQ(SpansOf(spans, port, kServer).size(), 2u);
  EXPECT_TRUE(SpansOf(spans, port, kClient).empty());
  ASSERT_TRUE(WaitFor([&] { return agent_.Logs().find("\"msg\":\"TLS not captured\"") != std::string::npos; },
                      std::chrono::seconds(10)))
      << agent_.Logs();
  const std::string logs = agent_.Logs();
  const size_t at = logs.find("\"msg\":\"TLS not captured\"");
  const std::string line = logs.substr(at, logs.find('\n', at) - at);
  EXPECT_NE(line.find(std::string("\"binary\":\"") + KSPAN_TLS_GET_STRIPPED + "\""), std::string::npos)
      << line;
  EXPECT_NE(line.find("no SSL_read/SSL_write symbols (stripped)"), std::string::npos) << line;
  StopAgent();
  EXPECT_GE(
      agent_.StoppedCounter("kspan_tls_not_captured_total{binary=\"tls_get_stripped\",reason=\"stripped\"}"),
      1);
  EXPECT_GE(agent_.StoppedCounter("kspan_tls_connections_total{plaintext=\"not_captured\"}"), 2);
}

}  // namespace
}  // namespace kspan::testing
