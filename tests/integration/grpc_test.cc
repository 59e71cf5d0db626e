// End to end on real programs: kspan (the built binary) traces Debian's python3-grpcio
// server and client on loopback (h2c), and curl --http2-prior-knowledge against nginx
// (h2c). Checks every span: one SERVER and one CLIENT span per call, in one trace, the
// CLIENT the SERVER's parent (same-host pairing by the connection and the stream id), the
// RPC attributes and status per the semantic conventions (v1.44.0), streaming message counts.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;
constexpr int kStatusUnset = 0, kStatusError = 2;

// The gRPC server (tests/apps/grpc/grpc_server.py) and the @grpc/grpc-js client
// (tests/apps/grpc/grpc_client.js, its node_modules installed by scripts/install-deps.sh).
const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/grpc";
const std::string kServerApp = kApps + "/grpc_server.py";

constexpr const char* kClientScript = R"PY(
import sys
import grpc
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
grpc.channel_ready_future(ch).result(timeout=10)
ident = lambda b: b
m = lambda name: "/demo.v1.Greeter/" + name
assert ch.unary_unary(m("SayHello"), ident, ident)(b"bob", timeout=10) == b"hello bob"
for name, code in (("GetUser", grpc.StatusCode.NOT_FOUND), ("Explode", grpc.StatusCode.INTERNAL)):
    try:
        ch.unary_unary(m(name), ident, ident)(b"alice", timeout=10)
        sys.exit(name + " did not fail")
    except grpc.RpcError as e:
        assert e.code() == code, e.code()
got = list(ch.unary_stream(m("Count"), ident, ident)(b"3", timeout=10))
assert got == [b"0", b"1", b"2"], got
got = list(ch.stream_stream(m("Chat"), ident, ident)(iter([b"a", b"b", b"c", b"d"]), timeout=10))
assert len(got) == 4, got
got = ch.stream_unary(m("Upload"), ident, ident)(iter([b"part%d" % i for i in range(5)]), timeout=10)
assert got == b"5", got
ch.close()
print("ok")
)PY";

struct Want {
  std::string method;
  std::string code;
  int client_status, server_status;
  std::string message;  // status description on ERROR
  int64_t requests, responses;
};

const std::vector<Want> kWant = {
    {"SayHello", "OK", kStatusUnset, kStatusUnset, "", 1, 1},
    {"GetUser", "NOT_FOUND", kStatusError, kStatusUnset, "no user alice", 1, 0},
    {"Explode", "INTERNAL", kStatusError, kStatusError, "it broke", 1, 0},
    {"Count", "OK", kStatusUnset, kStatusUnset, "", 1, 3},
    {"Chat", "OK", kStatusUnset, kStatusUnset, "", 4, 4},
    {"Upload", "OK", kStatusUnset, kStatusUnset, "", 5, 1},
};

class GrpcIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(agent_.Start()) << "kspan did not become ready:\n" << agent_.Logs(); }
  void TearDown() override {
    if (server_.pid() > 0) server_.Stop(SIGTERM, std::chrono::seconds(10));
    ExpectCleanStop(agent_);
  }
  KspanAgent agent_;
  Subprocess server_;
};

std::string Summary(const std::vector<FlatSpan>& spans) {
  std::string out;
  for (const FlatSpan& s : spans) {
    out += std::to_string(s.kind) + " " + s.name + " trace=" + s.trace_id + " span=" + s.span_id +
           " parent=" + s.parent_span_id + " status=" + std::to_string(s.status_code) + " " +
           s.status_message;
    for (const auto& [k, v] : s.attributes) out += " " + k + "=" + v.dump();
    out += "\n";
  }
  return out;
}

std::vector<FlatSpan> GrpcSpans(const std::vector<FlatSpan>& all, int port) {
  std::vector<FlatSpan> out;
  for (const FlatSpan& s : all) {
    if (s.Str("rpc.system.name") == "grpc" && s.Int("server.port") == port) out.push_back(s);
  }
  return out;
}

// The spans of kWant's calls from one client to one server: one CLIENT and one SERVER
// span a call, in one trace, the CLIENT the SERVER's parent, with the RPC attributes.
void CheckCalls(const std::vector<FlatSpan>& spans, const std::string& client_exe) {
  ASSERT_EQ(spans.size(), 2 * kWant.size()) << Summary(spans);
  for (const Want& w : kWant) {
    SCOPED_TRACE(w.method);
    const std::string rpc = "demo.v1.Greeter/" + w.method;
    const FlatSpan *client = nullptr, *server = nullptr;
    for (const FlatSpan& s : spans) {
      if (s.name != rpc) continue;
      (s.kind == kClient ? client : server) = &s;
    }
    ASSERT_NE(client, nullptr);
    ASSERT_NE(server, nullptr);
    for (const FlatSpan* s : {client, server}) {
      EXPECT_EQ(s->Str("rpc.method"), rpc);
      EXPECT_EQ(s->Str("rpc.response.status_code"), w.code);
      EXPECT_EQ(s->Str("network.protocol.version"), "2");
      EXPECT_EQ(s->Int("kspan.rpc.request.messages"), w.requests);
      EXPECT_EQ(s->Int("kspan.rpc.response.messages"), w.responses);
      EXPECT_FALSE(s->Has("kspan.http2.headers_incomplete"));
      EXPECT_FALSE(s->Has("http.request.method"));
      EXPECT_LT(s->start_ns, s->end_ns);
    }
    EXPECT_EQ(client->ResourceStr("process.executable.name").rfind(client_exe, 0), 0u);
    EXPECT_EQ(server->ResourceStr("process.executable.name").rfind("python3", 0), 0u);
    EXPECT_EQ(client->kind, kClient);
    EXPECT_EQ(server->kind, kServer);
    EXPECT_EQ(client->status_code, w.client_status);
    EXPECT_EQ(server->status_code, w.server_status);
    if (w.client_status == kStatusError) {
      EXPECT_EQ(client->status_message, w.message);
      EXPECT_EQ(client->Str("error.type"), w.code);
    }
    if (w.server_status == kStatusError) EXPECT_EQ(server->Str("error.type"), w.code);
    // One trace, the CLIENT the SERVER's parent.
    EXPECT_EQ(server->trace_id, client->trace_id);
    EXPECT_EQ(server->parent_span_id, client->span_id);
    EXPECT_LE(client->start_ns, server->start_ns);
  }
}

TEST_F(GrpcIntegration, PythonGrpcCallsBecomePairedClientAndServerSpans) {
  const int port = FreePort();
  ASSERT_TRUE(server_.Start({"/usr/bin/python3", kServerApp, std::to_string(port)}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(20))) << server_.Stderr();

  const CommandResult run =
      RunCommand({"/usr/bin/python3", "-c", kClientScript, std::to_string(port)}, std::chrono::seconds(60));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_EQ(run.out, "ok\n");

  std::vector<FlatSpan> spans;
  WaitFor(
      [&] {
        spans = GrpcSpans(ReadSpans(agent_.SpansPath()), port);
        return spans.size() >= 2 * kWant.size();
      },
      std::chrono::seconds(20));
  server_.Stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  spans = GrpcSpans(ReadSpans(agent_.SpansPath()), port);
  CheckCalls(spans, "python3");
  if (HasFailure()) std::printf("%s", agent_.Logs().c_str());
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http2\"}"), 0) << agent_.Logs();
  EXPECT_EQ(agent_.StoppedCounter("kspan_http2_headers_incomplete_total"), 0);
}

// Acceptance 3: the real @grpc/grpc-js client (node, its OpenSSL inside the node binary)
// calls the python3-grpcio server over TLS, h2 chosen by ALPN. kspan reads both ends'
// plaintext from the OpenSSL probes: the same spans as in the clear.
TEST_F(GrpcIntegration, GrpcJsClientOverTlsToPythonServer) {
  ASSERT_TRUE(std::filesystem::exists(kApps + "/node_modules/@grpc/grpc-js"))
      << "tests/apps/grpc/node_modules is missing: run scripts/install-deps.sh";
  const int port = FreePort();
  const std::string dir = MakeTempDir("kspan-grpc-tls");
  const std::string cert_error = MakeTestCertificate(dir);
  ASSERT_TRUE(cert_error.empty()) << cert_error;
  ASSERT_TRUE(server_.Start(
      {"/usr/bin/python3", kServerApp, std::to_string(port), "--tls", dir + "/cert.pem", dir + "/key.pem"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(20))) << server_.Stderr();
  const CommandResult run =
      RunCommand({"/usr/bin/node", kApps + "/grpc_client.js", std::to_string(port), dir + "/cert.pem"},
                 std::chrono::seconds(90));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_EQ(run.out, "ok\n");

  std::vector<FlatSpan> spans;
  WaitFor([&] { return (spans = GrpcSpans(ReadSpans(agent_.SpansPath()), port)).size() >= 2 * kWant.size(); },
          std::chrono::seconds(20));
  server_.Stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  spans = GrpcSpans(ReadSpans(agent_.SpansPath()), port);
  CheckCalls(spans, "node");
  for (const FlatSpan& s : spans) {
    EXPECT_EQ(s.Str("server.address"), "localhost");  // :authority, over TLS
  }
  if (HasFailure()) std::printf("%s", agent_.Logs().c_str());
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http2\"}"), 0) << agent_.Logs();
}

// Acceptance 7: a gRPC server (frontend) that answers each call by calling another
// (backend). Each call is one trace of four spans: the client's CLIENT span, under it the
// frontend's SERVER span, under that the frontend's CLIENT span to the backend, under
// that the backend's SERVER span.
constexpr const char* kRelayClientScript = R"PY(
import sys
import grpc
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
ident = lambda b: b
for i in range(3):
    got = ch.unary_unary("/demo.v1.Greeter/Relay", ident, ident)(b"r%d" % i, timeout=10)
    assert got == b"hello r%d" % i, got
ch.close()
print("ok")
)PY";

TEST_F(GrpcIntegration, AServerCallingAnotherGivesOneTraceOfFourSpansPerCall) {
  const int back_port = FreePort();
  ASSERT_TRUE(server_.Start({"/usr/bin/python3", kServerApp, std::to_string(back_port)}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", back_port, std::chrono::seconds(20))) << server_.Stderr();
  const int front_port = FreePort();
  Subprocess front;
  ASSERT_TRUE(front.Start(
      {"/usr/bin/python3", kServerApp, std::to_string(front_port), "--backend", std::to_string(back_port)}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", front_port, std::chrono::seconds(20))) << front.Stderr();
  const CommandResult run = RunCommand(
      {"/usr/bin/python3", "-c", kRelayClientScript, std::to_string(front_port)}, std::chrono::seconds(60));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_EQ(run.out, "ok\n");

  constexpr size_t kCalls = 3;
  auto mine = [&](const std::vector<FlatSpan>& all) {
    std::vector<FlatSpan> out = GrpcSpans(all, front_port);
    for (FlatSpan& s : GrpcSpans(all, back_port)) out.push_back(std::move(s));
    return out;
  };
  std::vector<FlatSpan> spans;
  WaitFor([&] { return (spans = mine(ReadSpans(agent_.SpansPath()))).size() >= 4 * kCalls; },
          std::chrono::seconds(20));
  front.Stop(SIGTERM, std::chrono::seconds(10));
  server_.Stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  spans = mine(ReadSpans(agent_.SpansPath()));
  ASSERT_EQ(spans.size(), 4 * kCalls) << Summary(spans);
  // By trace: each one call's four spans.
  std::map<std::string, std::vector<const FlatSpan*>> traces;
  for (const FlatSpan& s : spans) traces[s.trace_id].push_back(&s);
  ASSERT_EQ(traces.size(), kCalls) << Summary(spans);
  for (const auto& [trace, members] : traces) {
    SCOPED_TRACE(trace);
    ASSERT_EQ(members.size(), 4u) << Summary(spans);
    const FlatSpan *call = nullptr, *front_server = nullptr, *front_call = nullptr, *back_server = nullptr;
    for (const FlatSpan* s : members) {
      const bool front_side = s->Int("server.port") == front_port;
      (front_side ? (s->kind == kClient ? call : front_server)
                  : (s->kind == kClient ? front_call : back_server)) = s;
    }
    ASSERT_TRUE(call && front_server && front_call && back_server) << Summary(spans);
    EXPECT_EQ(call->name, "demo.v1.Greeter/Relay");
    EXPECT_EQ(front_server->name, "demo.v1.Greeter/Relay");
    EXPECT_EQ(front_call->name, "demo.v1.Greeter/SayHello");
    EXPECT_EQ(back_server->name, "demo.v1.Greeter/SayHello");
    EXPECT_TRUE(call->parent_span_id.empty());
    EXPECT_EQ(front_server->parent_span_id, call->span_id);
    EXPECT_EQ(front_call->parent_span_id, front_server->span_id);
    EXPECT_EQ(back_server->parent_span_id, front_call->span_id);
    // The frontend's two spans are one process's (an int resource attribute, as JSON).
    ASSERT_TRUE(front_server->resource.contains("process.pid"));
    EXPECT_EQ(front_server->resource.at("process.pid").dump(), front_call->resource.at("process.pid").dump());
    for (const FlatSpan* s : members) EXPECT_EQ(s->Str("rpc.response.status_code"), "OK");
  }
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http2\"}"), 0) << agent_.Logs();
}

// nginx with `listen … http2` speaks h2c with prior knowledge.
TEST_F(GrpcIntegration, CurlPriorKnowledgeToNginxGivesHttp2Spans) {
  const int port = FreePort();
  const std::string dir = MakeTempDir("kspan-h2c");
  std::ofstream(dir + "/nginx.conf") << "worker_processes 1;\ndaemon off;\npid " << dir << "/nginx.pid;\n"
                                     << "error_log " << dir << "/error.log;\n"
                                     << "events { worker_connections 64; }\n"
                                     << "http {\n  access_log off;\n  client_body_temp_path " << dir
                                     << "/tmp;\n"
                                     << "  server {\n    listen 127.0.0.1:" << port << " http2;\n"
                                     << "    location /ok { return 200 \"fine\\n\"; }\n"
                                     << "    location /teapot { return 418; }\n"
                                     << "    location / { return 404; }\n"
                                     << "  }\n}\n";
  ASSERT_TRUE(server_.Start({"/usr/sbin/nginx", "-c", dir + "/nginx.conf", "-p", dir}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << server_.Stderr();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  // One curl per URL: curl 7.88 with several URLs on one h2c connection to nginx 1.22
  // fails ("Error in the HTTP2 framing layer") with or without kspan.
  for (const char* path : {"/ok?a=1", "/teapot", "/missing"}) {
    const CommandResult run =
        RunCommand({"/usr/bin/curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", base + path},
                   std::chrono::seconds(30));
    ASSERT_EQ(run.exit_code, 0) << path << run.out << run.err;
  }

  auto h2 = [&](const std::vector<FlatSpan>& all) {
    std::vector<FlatSpan> out;
    for (const FlatSpan& s : all) {
      if (s.Str("network.protocol.version") == "2" && s.Int("server.port") == port) out.push_back(s);
    }
    return out;
  };
  std::vector<FlatSpan> spans;
  WaitFor([&] { return (spans = h2(ReadSpans(agent_.SpansPath()))).size() >= 6; }, std::chrono::seconds(20));
  server_.Stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  spans = h2(ReadSpans(agent_.SpansPath()));
  ASSERT_EQ(spans.size(), 6u) << Summary(spans) << agent_.Logs();
  const std::map<std::string, int64_t> want = {{"/ok", 200}, {"/teapot", 418}, {"/missing", 404}};
  for (const auto& [path, status] : want) {
    SCOPED_TRACE(path);
    const FlatSpan *client = nullptr, *server = nullptr;
    for (const FlatSpan& s : spans) {
      const bool mine =
          s.kind == kServer ? s.Str("url.path") == path : s.Str("url.full").find(path) != std::string::npos;
      if (mine) (s.kind == kClient ? client : server) = &s;
    }
    ASSERT_NE(client, nullptr);
    ASSERT_NE(server, nullptr);
    for (const FlatSpan* s : {client, server}) {
      EXPECT_EQ(s->Str("http.request.method"), "GET");
      EXPECT_EQ(s->Int("http.response.status_code"), status);
      EXPECT_EQ(s->Str("network.protocol.name"), "http");
      EXPECT_EQ(s->Str("server.address"), "127.0.0.1");
      EXPECT_FALSE(s->Has("kspan.http2.headers_incomplete"));
    }
    EXPECT_EQ(server->name, "GET " + path);
    EXPECT_EQ(client->status_code, status >= 400 ? kStatusError : kStatusUnset);
    EXPECT_EQ(server->status_code, kStatusUnset);
    EXPECT_EQ(server->trace_id, client->trace_id);
    EXPECT_EQ(server->parent_span_id, client->span_id);
  }
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http2\"}"), 0) << agent_.Logs();
}

// curl --http2 and nghttp -u over cleartext ask for h2c by an HTTP/1.1 Upgrade; Apache's
// mod_http2 answers 101 and stream 1 (the upgrade request) is answered in HTTP/2, as are
// the later requests on the connection (nghttp's second URL, after PRIORITY frames for
// idle streams). Both ends traced: every request one CLIENT and one SERVER span, paired,
// with the path and status HTTP/2 carried.
TEST_F(GrpcIntegration, CurlUpgradeToH2cAtApacheGivesHttp2Spans) {
  const int port = FreePort();
  const std::string dir = MakeTempDir("kspan-h2c-upgrade");
  std::filesystem::create_directories(dir + "/www");
  std::ofstream(dir + "/www/a.html") << "hello over h2c\n";
  for (int i = 1; i <= 5; ++i)
    std::ofstream(dir + "/www/b-" + std::to_string(i) + ".html") << "hello again\n";
  std::filesystem::permissions(dir, std::filesystem::perms::others_exec | std::filesystem::perms::group_exec,
                               std::filesystem::perm_options::add);  // Apache's worker runs as www-data
  std::ofstream(dir + "/httpd.conf")
      << "ServerRoot " << dir << "\nServerName localhost\n"
      << "Listen 127.0.0.1:" << port << "\n"
      << "LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n"
      << "LoadModule http2_module /usr/lib/apache2/modules/mod_http2.so\n"
      << "LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n"
      << "PidFile " << dir << "/httpd.pid\nErrorLog " << dir << "/error.log\n"
      << "DocumentRoot " << dir << "/www\nUser www-data\nGroup www-data\n"
      << "Protocols h2c http/1.1\nH2Upgrade on\n"
      << "<Directory " << dir << "/www>\n  Require all granted\n</Directory>\n";
  std::filesystem::permissions(dir + "/www",
                               std::filesystem::perms::others_read | std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  ASSERT_TRUE(server_.Start({"/usr/sbin/apache2", "-X", "-f", dir + "/httpd.conf"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << server_.Stderr();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  const CommandResult curl = RunCommand({"/usr/bin/curl", "-sS", "--http2", "-o", "/dev/null", "-w",
                                         "%{http_version} %{http_code}", base + "/a.html?up=1"},
                                        std::chrono::seconds(30));
  ASSERT_EQ(curl.exit_code, 0) << curl.out << curl.err;
  ASSERT_EQ(curl.out, "2 200") << "curl did not upgrade";
  // nghttp: one connection, both URLs. Apache's mod_http2 sometimes ends such a connection
  // with GOAWAY(last_stream_id=1, "timeout") before it reads the second request (seen with
  // nghttp alone, no kspan): nghttp then says "Some requests were not processed" and exits 0.
  // Each attempt has its own paths (query values are redacted by default); an unprocessed one
  // must come out as the GOAWAY it was.
  constexpr int kAttempts = 5;
  int tries = 0;
  bool processed = false;
  while (!processed && tries < kAttempts) {
    ++tries;
    const std::string n = std::to_string(tries);
    const CommandResult nghttp =
        RunCommand({"/usr/bin/nghttp", "-u", "-v", base + "/b-" + n + ".html", base + "/missing-" + n},
                   std::chrono::seconds(30));
    ASSERT_EQ(nghttp.exit_code, 0) << nghttp.out << nghttp.err;
    ASSERT_NE(nghttp.out.find("HTTP Upgrade success"), std::string::npos) << nghttp.out << nghttp.err;
    processed = (nghttp.out + nghttp.err).find("Some requests were not processed") == std::string::npos;
  }
  ASSERT_TRUE(processed) << "Apache refused nghttp's second request " << kAttempts << " times";
  const std::string done = std::to_string(tries);

  auto mine = [&](const std::vector<FlatSpan>& all) {
    std::vector<FlatSpan> out;
    for (const FlatSpan& s : all) {
      if (s.Int("server.port") == port) out.push_back(s);
    }
    return out;
  };
  // The server's url.path, or the client's url.full up to its query.
  auto is = [](const FlatSpan& s, const std::string& path) {
    if (s.kind == kServer) return s.Str("url.path") == path;
    const std::string full = s.Str("url.full");
    const size_t at = full.find(path);
    return at != std::string::npos && (at + path.size() == full.size() || full[at + path.size()] == '?');
  };
  auto count = [&](const std::vector<FlatSpan>& all, const std::string& path, int kind) {
    return static_cast<size_t>(std::count_if(
        all.begin(), all.end(), [&](const FlatSpan& s) { return s.kind == kind && is(s, path); }));
  };
  const std::vector<std::pair<std::string, int64_t>> want = {
      {"/a.html", 200}, {"/b-" + done + ".html", 200}, {"/missing-" + done, 404}};
  auto all_there = [&](const std::vector<FlatSpan>& all) {
    for (const auto& [path, status] : want) {
      if (count(all, path, kClient) == 0 || count(all, path, kServer) == 0) return false;
    }
    return true;
  };
  std::vector<FlatSpan> spans;
  WaitFor([&] { return all_there(spans = mine(ReadSpans(agent_.SpansPath()))); }, std::chrono::seconds(20));
  server_.Stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  spans = mine(ReadSpans(agent_.SpansPath()));
  // curl's exchange and two streams per attempt, each seen from both ends (a refused
  // stream's request may never have been read by Apache).
  EXPECT_LE(spans.size(), 2 + 4 * static_cast<size_t>(tries)) << Summary(spans);
  auto find = [&](const std::string& path, int kind) -> const FlatSpan* {
    EXPECT_LE(count(spans, path, kind), 1u) << path << " twice: " << Summary(spans);
    for (const FlatSpan& s : spans) {
      if (s.kind == kind && is(s, path)) return &s;
    }
    return nullptr;
  };
  for (const auto& [path, status] : want) {
    SCOPED_TRACE(path);
    const FlatSpan *client = find(path, kClient), *server = find(path, kServer);
    ASSERT_NE(client, nullptr) << Summary(spans);
    ASSERT_NE(server, nullptr) << Summary(spans);
    for (const FlatSpan* s : {client, server}) {
      EXPECT_EQ(s->Str("http.request.method"), "GET");
      EXPECT_EQ(s->Int("http.response.status_code"), status) << Summary({*s}) << agent_.Logs();
      EXPECT_EQ(s->Str("network.protocol.version"), "2");
      EXPECT_FALSE(s->Has("kspan.http2.headers_incomplete"));
    }
    EXPECT_EQ(server->trace_id, client->trace_id);
    EXPECT_EQ(server->parent_span_id, client->span_id);
  }
  // The refused attempts: their upgrade request was answered, their second stream ended by
  // the server's GOAWAY, never with a status.
  for (int t = 1; t < tries; ++t) {
    const std::string n = std::to_string(t);
    SCOPED_TRACE("attempt " + n);
    const FlatSpan* first = find("/b-" + n + ".html", kClient);
    ASSERT_NE(first, nullptr) << Summary(spans);
    EXPECT_EQ(first->Int("http.response.status_code"), 200);
    const FlatSpan* refused = find("/missing-" + n, kClient);
    ASSERT_NE(refused, nullptr) << Summary(spans);
    EXPECT_EQ(refused->Str("kspan.http2.end"), "goaway");
    EXPECT_FALSE(refused->Has("http.response.status_code"));
  }
  if (tries > 1) std::cout << "Apache refused " << tries - 1 << " nghttp second request(s) by GOAWAY\n";
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http1\"}"), 0) << agent_.Logs();
}

// h2 inside TLS (ALPN): read from the plaintext the OpenSSL probes capture in curl and
// nginx alike.
TEST_F(GrpcIntegration, CurlHttp2OverTlsToNginxGivesHttp2Spans) {
  const int port = FreePort();
  const std::string dir = MakeTempDir("kspan-h2tls");
  const std::string cert_error = MakeTestCertificate(dir);
  ASSERT_TRUE(cert_error.empty()) << cert_error;
  std::ofstream(dir + "/nginx.conf") << "worker_processes 1;\ndaemon off;\npid " << dir << "/nginx.pid;\n"
                                     << "error_log " << dir << "/error.log;\n"
                                     << "events { worker_connections 64; }\n"
                                     << "http {\n  access_log off;\n  client_body_temp_path " << dir
                                     << "/tmp;\n"
                                     << "  server {\n    listen 127.0.0.1:" << port << " ssl http2;\n"
                                     << "    ssl_certificate " << dir << "/cert.pem;\n"
                                     << "    ssl_certificate_key " << dir << "/key.pem;\n"
                                     << "    location /ok { return 200 \"fine\\n\"; }\n"
                                     << "    location / { return 404; }\n"
                                     << "  }\n}\n";
  ASSERT_TRUE(server_.Start({"/usr/sbin/nginx", "-c", dir + "/nginx.conf", "-p", dir}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << server_.Stderr();
  const std::string base = "https://localhost:" + std::to_string(port);
  for (const char* path : {"/ok", "/missing"}) {
    const CommandResult run =
        RunCommand({"/usr/bin/curl", "-sS", "--http2", "--max-time", "10", "--cacert", dir + "/cert.pem",
                    "--resolve", "localhost:" + std::to_string(port) + ":127.0.0.1", "-o", "/dev/null", "-w",
                    "%{http_version}", base + path},
                   std::chrono::seconds(30));
    ASSERT_EQ(run.exit_code, 0) << path << run.err;
    ASSERT_EQ(run.out, "2") << "curl did not negotiate h2";
  }
  auto h2 = [&](const std::vector<FlatSpan>& all) {
    std::vector<FlatSpan> out;
    for (const FlatSpan& s : all) {
      if (s.Str("network.protocol.version") == "2" && s.Int("server.port") == port) out.push_back(s);
    }
    return out;
  };
  std::vector<FlatSpan> spans;
  WaitFor([&] { return (spans = h2(ReadSpans(agent_.SpansPath()))).size() >= 4; }, std::chrono::seconds(20));
  server_.Stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  spans = h2(ReadSpans(agent_.SpansPath()));
  ASSERT_EQ(spans.size(), 4u) << Summary(spans) << agent_.Logs();
  for (const auto& [path, status] : std::map<std::string, int64_t>{{"/ok", 200}, {"/missing", 404}}) {
    SCOPED_TRACE(path);
    const FlatSpan *client = nullptr, *server = nullptr;
    for (const FlatSpan& s : spans) {
      const bool mine = s.kind == kServer ? s.Str("url.path") == path : s.Str("url.full") == base + path;
      if (mine) (s.kind == kClient ? client : server) = &s;
    }
    ASSERT_NE(client, nullptr) << Summary(spans);
    ASSERT_NE(server, nullptr) << Summary(spans);
    for (const FlatSpan* s : {client, server}) {
      EXPECT_EQ(s->Str("http.request.method"), "GET");
      EXPECT_EQ(s->Int("http.response.status_code"), status);
      EXPECT_EQ(s->Str("server.address"), "localhost");
      EXPECT_FALSE(s->Has("kspan.http2.headers_incomplete"));
    }
    EXPECT_EQ(server->Str("url.scheme"), "https");
    EXPECT_EQ(server->parent_span_id, client->span_id);
    EXPECT_EQ(server->trace_id, client->trace_id);
  }
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http2\"}"), 0) << agent_.Logs();
}

// h2load multiplexes 100 streams on each of 4 connections to nginx (h2c): every stream
// is one SERVER and one CLIENT span, each with the path and status of its own stream.
TEST_F(GrpcIntegration, H2loadEveryStreamOneSpanNoneMixed) {
  const int port = FreePort();
  const std::string dir = MakeTempDir("kspan-h2load");
  std::ofstream(dir + "/nginx.conf") << "worker_processes 1;\ndaemon off;\npid " << dir << "/nginx.pid;\n"
                                     << "error_log " << dir << "/error.log;\n"
                                     << "events { worker_connections 64; }\n"
                                     << "http {\n  access_log off;\n  client_body_temp_path " << dir
                                     << "/tmp;\n"
                                     << "  server {\n    listen 127.0.0.1:" << port << " http2;\n"
                                     << "    http2_max_concurrent_streams 128;\n"
                                     << "    location /a { return 200 \"a\\n\"; }\n"
                                     << "    location /b { return 201 \"b\\n\"; }\n"
                                     << "    location /c { return 404; }\n"
                                     << "    location /d { return 418; }\n"
                                     << "  }\n}\n";
  ASSERT_TRUE(server_.Start({"/usr/sbin/nginx", "-c", dir + "/nginx.conf", "-p", dir}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << server_.Stderr();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  const std::map<std::string, int64_t> status = {{"/a", 200}, {"/b", 201}, {"/c", 404}, {"/d", 418}};
  constexpr size_t kRequests = 2000;
  const CommandResult run = RunCommand({"/usr/bin/h2load", "-n", std::to_string(kRequests), "-c", "4", "-m",
                                        "100", base + "/a", base + "/b", base + "/c", base + "/d"},
                                       std::chrono::seconds(60));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_NE(run.out.find("2000 done, 1000 succeeded, 1000 failed, 0 errored"), std::string::npos)
      << run.out;  // 4xx count as failed

  auto mine = [&](const std::vector<FlatSpan>& all) {
    std::vector<FlatSpan> out;
    for (const FlatSpan& s : all) {
      if (s.Str("network.protocol.version") == "2" && s.Int("server.port") == port) out.push_back(s);
    }
    return out;
  };
  std::vector<FlatSpan> spans;
  WaitFor([&] { return (spans = mine(ReadSpans(agent_.SpansPath()))).size() >= 2 * kRequests; },
          std::chrono::seconds(30));
  server_.Stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  spans = mine(ReadSpans(agent_.SpansPath()));
  // Every span names its own stream's path and, when its answer was captured, that path's
  // status. An answer kspan did not capture (h2load reads up to 100 responses in one
  // read, past the 4 KiB captured per syscall) leaves the status out and says so: never
  // another stream's. nginx reads each request whole, so only CLIENT spans may miss one.
  // Every SERVER span is the child of the CLIENT span of its own stream, in its trace,
  // whether or not that client's answer was captured.
  std::map<std::string, const FlatSpan*> by_id;
  size_t servers = 0, clients = 0, wrong = 0, not_captured = 0, unpaired = 0;
  for (const FlatSpan& s : spans) by_id[s.span_id] = &s;
  for (const FlatSpan& s : spans) {
    (s.kind == kServer ? servers : clients)++;
    EXPECT_FALSE(s.Has("kspan.http2.headers_incomplete"));
    std::string path = s.kind == kServer ? s.Str("url.path") : s.Str("url.full");
    if (s.kind == kClient && path.starts_with(base)) path = path.substr(base.size());
    const auto it = status.find(path);
    const bool answered = s.Has("http.response.status_code");
    if (!answered && s.Str("kspan.incomplete") == "response_not_captured") {
      ++not_captured;
      EXPECT_EQ(s.kind, kClient) << "nginx's side lost an answer it wrote: " << Summary({s});
    }
    if (it == status.end() || (answered && s.Int("http.response.status_code") != it->second) ||
        (!answered && s.Str("kspan.incomplete") != "response_not_captured")) {
      ++wrong;
      ADD_FAILURE() << "a span with a wrong path or status: " << Summary({s});
      continue;
    }
    if (s.kind == kServer) {
      const auto parent = by_id.find(s.parent_span_id);
      if (parent == by_id.end() || parent->second->kind != kClient ||
          parent->second->Str("url.full") != base + path || parent->second->trace_id != s.trace_id) {
        if (++unpaired <= 3) ADD_FAILURE() << "a SERVER span not under its CLIENT span: " << Summary({s});
      }
    }
  }
  std::printf(
      "h2load: %zu SERVER and %zu CLIENT spans for %zu streams, %zu wrong, %zu answers not captured, %zu "
      "SERVER "
      "spans not under their CLIENT span\n",
      servers, clients, kRequests, wrong, not_captured, unpaired);
  EXPECT_EQ(servers, kRequests) << agent_.Logs();
  EXPECT_EQ(clients, kRequests);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(unpaired, 0u);
  // Each answer not captured is counted (a lower bound: the counter is host-wide).
  EXPECT_GE(agent_.StoppedCounter(
                "kspan_requests_unanswered_total{protocol=\"http2\",reason=\"response_not_captured\"}"),
            static_cast<int64_t>(not_captured));
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http2\"}"), 0) << agent_.Logs();
}

// A client whose connection was open before kspan started: one call before, then calls
// after on the same connection. Its HPACK tables were built before kspan looked, so a
// field the peers put there is unknowable: every span has the right method or says it
// is incomplete (and is counted); none is wrong.
constexpr const char* kLateClientScript = R"PY(
import os, sys, time
import grpc
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
ident = lambda b: b
m = lambda name: "/demo.v1.Greeter/" + name
assert ch.unary_unary(m("SayHello"), ident, ident)(b"early", timeout=10) == b"hello early"
print("ready", flush=True)
deadline = time.time() + 60
while not os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.05)
for i in range(3):
    assert ch.unary_unary(m("SayHello"), ident, ident)(b"late", timeout=10) == b"hello late"
try:
    ch.unary_unary(m("GetUser"), ident, ident)(b"bob", timeout=10)
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.NOT_FOUND
ch.close()
print("ok", flush=True)
)PY";

TEST(GrpcLateJoin, ConnectionOpenedBeforeKspanGivesRightOrIncompleteSpans) {
  const int port = FreePort();
  Subprocess server, client;
  ASSERT_TRUE(server.Start({"/usr/bin/python3", kServerApp, std::to_string(port)}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(20))) << server.Stderr();
  const std::string flag = MakeTempDir("kspan-h2late") + "/go";
  ASSERT_TRUE(client.Start({"/usr/bin/python3", "-c", kLateClientScript, std::to_string(port), flag}));
  ASSERT_TRUE(WaitFor([&] { return client.Stdout() == "ready\n"; }, std::chrono::seconds(20)))
      << client.Stderr();

  KspanAgent agent;
  ASSERT_TRUE(agent.Start()) << agent.Logs();
  std::ofstream(flag) << "go\n";
  ASSERT_EQ(client.Wait(std::chrono::seconds(60)), 0) << client.Stdout() << client.Stderr();
  ASSERT_EQ(client.Stdout(), "ready\nok\n");
  std::vector<FlatSpan> spans;
  auto mine = [&](const std::vector<FlatSpan>& all) {
    std::vector<FlatSpan> out;
    for (const FlatSpan& s : all) {
      if (s.Int("server.port") == port) out.push_back(s);
    }
    return out;
  };
  WaitFor([&] { return (spans = mine(ReadSpans(agent.SpansPath()))).size() >= 8; }, std::chrono::seconds(20));
  server.Stop(SIGTERM, std::chrono::seconds(10));
  ExpectCleanStop(agent);
  spans = mine(ReadSpans(agent.SpansPath()));
  // Four calls after kspan started, seen from both ends (the early call is not traced).
  EXPECT_EQ(spans.size(), 8u) << Summary(spans) << agent.Logs();
  int64_t incomplete = 0;
  int right_methods = 0;
  for (const FlatSpan& s : spans) {
    SCOPED_TRACE(s.name);
    // What the span says the call was, whichever conventions it took.
    std::string path = s.Has("rpc.method") ? "/" + s.Str("rpc.method") : s.Str("url.path");
    if (path.empty() && s.Has("url.full")) path = s.Str("url.full").substr(s.Str("url.full").find('/', 8));
    const bool known = path == "/demo.v1.Greeter/SayHello" || path == "/demo.v1.Greeter/GetUser";
    if (known) {
      ++right_methods;
    } else {
      EXPECT_TRUE(path.empty()) << "a wrong method: " << path;
    }
    if (s.Has("http.request.method")) EXPECT_EQ(s.Str("http.request.method"), "POST");
    if (s.Bool("kspan.http2.headers_incomplete")) {
      ++incomplete;
    } else {
      EXPECT_TRUE(known) << "neither right nor marked incomplete";
    }
  }
  EXPECT_GT(right_methods, 0);
  std::printf("late join: %zu spans, %d with the right method, %lld marked incomplete\n", spans.size(),
              right_methods, static_cast<long long>(incomplete));
  EXPECT_EQ(agent.StoppedCounter("kspan_http2_headers_incomplete_total"), incomplete);
  EXPECT_EQ(agent.StoppedCounter("kspan_parse_failures_total{protocol=\"http2\"}"), 0) << agent.Logs();
}

}  // namespace
}  // namespace kspan::testing
