// End to end on real processes: kspan (the built binary) traces curl, python3's
// http.server and nginx on loopback; the test reads kspan's OTLP/JSON-lines output with
// an independent JSON parser and checks every field that matters.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "testing/bpf_inventory.h"
#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;
constexpr int kStatusUnset = 0, kStatusError = 2;
const std::regex kTraceId("^[0-9a-f]{32}$"), kSpanId("^[0-9a-f]{16}$");

// Spans of one port, by kind: SERVER spans carry server.port = local port, CLIENT spans
// server.port = the port they called.
std::vector<FlatSpan> SpansFor(const std::vector<FlatSpan>& all, int port, int kind) {
  std::vector<FlatSpan> out;
  for (const auto& s : all) {
    if (s.kind == kind && s.Int("server.port") == port) out.push_back(s);
  }
  std::sort(out.begin(), out.end(),
            [](const FlatSpan& a, const FlatSpan& b) { return a.start_ns < b.start_ns; });
  return out;
}

// Waits (deadline) until `pred` holds over the agent's output so far.
std::vector<FlatSpan> WaitForSpans(const KspanAgent& agent,
                                   const std::function<bool(const std::vector<FlatSpan>&)>& pred,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  std::vector<FlatSpan> spans;
  WaitFor(
      [&] {
        spans = ReadSpans(agent.SpansPath());
        return pred(spans);
      },
      timeout);
  return spans;
}

void ExpectWellFormedIds(const FlatSpan& s) {
  EXPECT_TRUE(std::regex_match(s.trace_id, kTraceId)) << s.trace_id;
  EXPECT_TRUE(std::regex_match(s.span_id, kSpanId)) << s.span_id;
  EXPECT_NE(s.trace_id, std::string(32, '0'));
  EXPECT_GT(s.start_ns, 1'600'000'000'000'000'000ull) << "wall-clock ns";
  EXPECT_LE(s.start_ns, s.end_ns);
}

class HttpIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(agent_.Start()) << "kspan did not become ready:\n" << agent_.Logs();
    dir_ = MakeTempDir("kspan-it-");
  }
  void TearDown() override { ExpectCleanStop(agent_); }

  // python3's http.server over dir_, named by OTEL_SERVICE_NAME as a user would.
  void StartPythonServer(int port) {
    ASSERT_TRUE(py_.Start({"/usr/bin/python3", "-m", "http.server", std::to_string(port), "--bind",
                           "127.0.0.1", "--directory", dir_},
                          {{"OTEL_SERVICE_NAME", "py-files"}}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << py_.Stderr();
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
                                           "  keepalive_requests 1000;\n"
                                           "  server {\n"
                                           "    listen 127.0.0.1:"
                                        << port
                                        << ";\n"
                                           "    location /ok { return 200 \"ok\\n\"; }\n"
                                           "    location /fail { return 500; }\n"
                                           "    location /busy { return 503; }\n"
                                           "    location /static/ { root "
                                        << dir_
                                        << "; sendfile on; }\n"
                                           "  }\n"
                                           "}\n";
    ASSERT_TRUE(nginx_.Start({"/usr/sbin/nginx", "-c", dir_ + "/nginx.conf", "-p", dir_}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10)))
        << nginx_.Stderr() << ReadFileOrEmpty(dir_ + "/error.log");
  }

  CommandResult Curl(std::vector<std::string> args) {
    args.insert(args.begin(), {"curl", "-sS", "--max-time", "10"});
    return RunCommand(args, std::chrono::seconds(20));
  }

  KspanAgent agent_;
  std::string dir_;
  Subprocess py_, nginx_;
};

TEST_F(HttpIntegration, CurlToPythonServer200And404) {
  std::ofstream(dir_ + "/index.html") << "<html>hello kspan</html>\n";  // 25 bytes
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPythonServer(port));
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_EQ(Curl({"-o", "/dev/null", base + "/index.html?user=alice&token=s3cr3t"}).exit_code, 0);
  ASSERT_EQ(Curl({"-o", "/dev/null", base + "/missing/12345"}).exit_code, 0);

  auto spans = WaitForSpans(agent_, [&](const auto& s) {
    return SpansFor(s, port, kServer).size() >= 2 && SpansFor(s, port, kClient).size() >= 2;
  });
  auto server = SpansFor(spans, port, kServer);
  auto client = SpansFor(spans, port, kClient);
  ASSERT_EQ(server.size(), 2u);
  ASSERT_EQ(client.size(), 2u);

  // SERVER, 200
  const FlatSpan& s200 = server[0];
  ExpectWellFormedIds(s200);
  EXPECT_EQ(s200.name, "GET /index.html");
  EXPECT_EQ(s200.status_code, kStatusUnset);
  EXPECT_EQ(s200.Str("http.request.method"), "GET");
  EXPECT_EQ(s200.Int("http.response.status_code"), 200);
  EXPECT_EQ(s200.Str("url.path"), "/index.html");
  EXPECT_EQ(s200.Str("url.query"), "user=REDACTED&token=REDACTED");
  EXPECT_EQ(s200.Str("url.scheme"), "http");
  EXPECT_EQ(s200.Str("url.template"), "/index.html");
  EXPECT_EQ(s200.Str("client.address"), "127.0.0.1");
  EXPECT_GT(s200.Int("client.port"), 0);
  EXPECT_EQ(s200.Str("network.peer.address"), "127.0.0.1");
  EXPECT_EQ(s200.Int("network.peer.port"), s200.Int("client.port"));
  EXPECT_EQ(s200.Str("user_agent.original").rfind("curl/", 0), 0u) << s200.Str("user_agent.original");
  EXPECT_EQ(s200.Int("http.response.body.size"), 25);
  // No traceparent on the wire, but curl's end of the connection is on this host too: the
  // SERVER span is the child of curl's CLIENT span, in its trace (same-host pairing).
  EXPECT_EQ(s200.parent_span_id, client[0].span_id);
  EXPECT_EQ(s200.trace_id, client[0].trace_id);
  EXPECT_TRUE(client[0].parent_span_id.empty()) << "curl called from nowhere: a root span";
  EXPECT_NE(server[1].trace_id, s200.trace_id) << "each curl run is its own trace";
  EXPECT_EQ(s200.ResourceStr("service.name"), "py-files");
  EXPECT_EQ(s200.ResourceStr("process.command_line").find("http.server"),
            std::string("/usr/bin/python3 -m ").size());
  EXPECT_EQ(s200.ResourceStr("telemetry.distro.name"), "kspan");
  EXPECT_FALSE(s200.ResourceStr("host.name").empty());

  // SERVER, 404: not an error on the server side
  const FlatSpan& s404 = server[1];
  EXPECT_EQ(s404.name, "GET /missing/{id}");
  EXPECT_EQ(s404.Int("http.response.status_code"), 404);
  EXPECT_EQ(s404.status_code, kStatusUnset);
  EXPECT_EQ(s404.Str("url.template"), "/missing/{id}");

  // CLIENT, 200 and 404: 4xx is an error for the caller
  const FlatSpan& c200 = client[0];
  ExpectWellFormedIds(c200);
  EXPECT_EQ(c200.name, "GET /index.html");
  EXPECT_EQ(c200.Int("http.response.status_code"), 200);
  EXPECT_EQ(c200.status_code, kStatusUnset);
  EXPECT_EQ(c200.Str("url.full"), base + "/index.html?user=REDACTED&token=REDACTED");
  EXPECT_EQ(c200.Str("server.address"), "127.0.0.1");
  EXPECT_EQ(c200.Int("network.peer.port"), port);
  EXPECT_EQ(c200.Int("http.response.body.size"), 25);
  EXPECT_EQ(c200.ResourceStr("service.name"), "curl");
  EXPECT_LE(c200.start_ns, s200.start_ns) << "the client wrote before the server read";
  const FlatSpan& c404 = client[1];
  EXPECT_EQ(c404.Int("http.response.status_code"), 404);
  EXPECT_EQ(c404.status_code, kStatusError);
  EXPECT_EQ(c404.Str("error.type"), "404");
  EXPECT_NE(c200.span_id, s200.span_id);
}

TEST_F(HttpIntegration, NginxReturns200And500) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartNginx(port));
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_EQ(Curl({"-o", "/dev/null", base + "/ok"}).exit_code, 0);
  ASSERT_EQ(Curl({"-o", "/dev/null", base + "/fail"}).exit_code, 0);
  auto spans = WaitForSpans(agent_, [&](const auto& s) { return SpansFor(s, port, kServer).size() >= 2; });
  auto server = SpansFor(spans, port, kServer);
  ASSERT_EQ(server.size(), 2u);
  EXPECT_EQ(server[0].name, "GET /ok");
  EXPECT_EQ(server[0].Int("http.response.status_code"), 200);
  EXPECT_EQ(server[0].status_code, kStatusUnset);
  EXPECT_EQ(server[0].Int("http.response.body.size"), 3);
  EXPECT_EQ(server[0].Str("network.protocol.version"), "1.1");
  EXPECT_EQ(server[0].ResourceStr("service.name"), "nginx");
  EXPECT_EQ(server[1].name, "GET /fail");
  EXPECT_EQ(server[1].Int("http.response.status_code"), 500);
  EXPECT_EQ(server[1].status_code, kStatusError);
  EXPECT_EQ(server[1].Str("error.type"), "500");
}

TEST_F(HttpIntegration, HundredRequestsOnOneKeepAliveConnection) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartNginx(port));
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  // curl reuses one connection for every URL of one invocation. Errors are 503s: nginx
  // closes a keep-alive connection after a 500, but not after a 503.
  std::vector<std::string> args;
  for (int i = 0; i < 100; ++i) {
    args.insert(args.end(), {"-o", "/dev/null", base + (i % 5 == 0 ? "/busy/" : "/ok/") + std::to_string(i)});
  }
  ASSERT_EQ(Curl(args).exit_code, 0);
  auto spans = WaitForSpans(agent_, [&](const auto& s) { return SpansFor(s, port, kServer).size() >= 100; });
  auto server = SpansFor(spans, port, kServer);
  ASSERT_EQ(server.size(), 100u);
  const int64_t client_port = server[0].Int("client.port");
  for (size_t i = 0; i < server.size(); ++i) {
    const FlatSpan& s = server[i];
    SCOPED_TRACE("request " + std::to_string(i));
    EXPECT_EQ(s.Int("client.port"), client_port) << "one connection";
    const std::string path = s.Str("url.path");
    const bool fail = path.rfind("/busy/", 0) == 0;
    EXPECT_EQ(path, std::string(fail ? "/busy/" : "/ok/") + std::to_string(i)) << "in order";
    EXPECT_EQ(s.Int("http.response.status_code"), fail ? 503 : 200);
    EXPECT_EQ(s.status_code, fail ? kStatusError : kStatusUnset);
    EXPECT_EQ(s.Str("url.template"), fail ? "/busy/{id}" : "/ok/{id}");
    if (i + 1 < server.size()) {
      EXPECT_LE(s.end_ns, server[i + 1].start_ns) << "times must not overlap";
    }
  }
  auto client = SpansFor(spans, port, kClient);
  EXPECT_EQ(client.size(), 100u);
}

TEST_F(HttpIntegration, OneMebibyteBodyIsSizedThoughCaptureIsCapped) {
  {
    std::ofstream f(dir_ + "/big.bin", std::ios::binary);
    std::string chunk(4096, 'x');
    for (int i = 0; i < 256; ++i) f << chunk;
  }
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPythonServer(port));
  ASSERT_EQ(Curl({"-o", "/dev/null", "http://127.0.0.1:" + std::to_string(port) + "/big.bin"}).exit_code, 0);
  auto spans = WaitForSpans(agent_, [&](const auto& s) {
    return !SpansFor(s, port, kServer).empty() && !SpansFor(s, port, kClient).empty();
  });
  auto server = SpansFor(spans, port, kServer);
  auto client = SpansFor(spans, port, kClient);
  ASSERT_EQ(server.size(), 1u);
  ASSERT_EQ(client.size(), 1u);
  EXPECT_EQ(server[0].Int("http.response.body.size"), 1048576);
  EXPECT_EQ(client[0].Int("http.response.body.size"), 1048576);
  EXPECT_EQ(server[0].Int("http.response.status_code"), 200);
  EXPECT_EQ(client[0].Int("http.response.status_code"), 200);

  // The exit report separates what moved from what was captured: the body moved twice
  // (server write, client read) at 1 MiB each, but only capped prefixes were captured.
  agent_.Stop();
  const std::string logs = agent_.Logs();
  auto field = [&](const std::string& key) -> uint64_t {
    const size_t at = logs.find("\"" + key + "\":");
    return at == std::string::npos ? 0 : std::stoull(logs.substr(at + key.size() + 3));
  };
  EXPECT_GE(field("bytes_moved"), 2u * 1048576u) << logs;
  EXPECT_LT(field("bytes_captured"), field("bytes_moved") / 4) << logs;
}

// nginx sends static files with sendfile(2): the body never passes through a traced
// write, yet the stream positions and the span's body size must account for it.
TEST_F(HttpIntegration, SendfileBodyIsCountedThenTheConnectionKeepsParsing) {
  // nginx's worker runs as nobody: the temp dir (mkdtemp makes it 0700) must be readable.
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                         std::filesystem::perms::group_exec |
                                         std::filesystem::perms::others_read |
                                         std::filesystem::perms::others_exec);
  std::filesystem::create_directories(dir_ + "/static");
  {
    std::ofstream f(dir_ + "/static/page.bin", std::ios::binary);
    f << std::string(100000, 'z');
  }
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartNginx(port));
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  // Two requests on one connection: the second parses only if the sendfile bytes were
  // accounted for in the stream.
  ASSERT_EQ(Curl({"-o", "/dev/null", base + "/static/page.bin", "-o", "/dev/null", base + "/ok"}).exit_code,
            0);
  auto spans = WaitForSpans(agent_, [&](const auto& s) { return SpansFor(s, port, kServer).size() >= 2; });
  auto server = SpansFor(spans, port, kServer);
  ASSERT_EQ(server.size(), 2u);
  EXPECT_EQ(server[0].Str("url.path"), "/static/page.bin");
  EXPECT_EQ(server[0].Int("http.response.status_code"), 200);
  EXPECT_EQ(server[0].Int("http.response.body.size"), 100000);
  EXPECT_EQ(server[1].Str("url.path"), "/ok");
  EXPECT_EQ(server[1].Int("http.response.status_code"), 200);
  auto client = SpansFor(spans, port, kClient);
  ASSERT_EQ(client.size(), 2u);
  EXPECT_EQ(client[0].Int("http.response.body.size"), 100000);
}

TEST_F(HttpIntegration, IncomingTraceparentSetsTraceAndParent) {
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartNginx(port));
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736", parent = "00f067aa0ba902b7";
  ASSERT_EQ(Curl({"-o", "/dev/null", "-H", "traceparent: 00-" + trace + "-" + parent + "-01", "-H",
                  "tracestate: vendor=abc", "http://127.0.0.1:" + std::to_string(port) + "/ok"})
                .exit_code,
            0);
  auto spans = WaitForSpans(agent_, [&](const auto& s) {
    return !SpansFor(s, port, kServer).empty() && !SpansFor(s, port, kClient).empty();
  });
  auto server = SpansFor(spans, port, kServer);
  auto client = SpansFor(spans, port, kClient);
  ASSERT_EQ(server.size(), 1u);
  ASSERT_EQ(client.size(), 1u);
  // curl's CLIENT span continues the header curl sent; nginx's SERVER span, which read the
  // same header from a client on this host, sits under that CLIENT span: one trace, the
  // header's, with tracestate and the sampled flag kept.
  EXPECT_EQ(client[0].trace_id, trace);
  EXPECT_EQ(client[0].parent_span_id, parent);
  EXPECT_EQ(server[0].trace_id, trace);
  EXPECT_EQ(server[0].parent_span_id, client[0].span_id);
  EXPECT_NE(server[0].span_id, parent);
  EXPECT_EQ(server[0].trace_state, "vendor=abc");
  EXPECT_EQ(client[0].trace_state, "vendor=abc");
}

// A connection opened before kspan started: no connect/accept was seen, so the role of
// each side is inferred from which direction carries the request.
TEST(HttpMidstream, ConnectionOpenBeforeKspanStartedIsTracedWithInferredRoles) {
  const std::string dir = MakeTempDir("kspan-mid-");
  const int port = FreePort();
  std::ofstream(dir + "/nginx.conf") << "worker_processes 1; daemon off; pid " << dir << "/nginx.pid;\n"
                                     << "error_log " << dir << "/error.log;\n"
                                     << "events { worker_connections 64; }\n"
                                     << "http { access_log off; server { listen 127.0.0.1:" << port << ";\n"
                                     << "  location /ok { return 200 \"ok\\n\"; } } }\n";
  Subprocess nginx;
  ASSERT_TRUE(nginx.Start({"/usr/sbin/nginx", "-c", dir + "/nginx.conf", "-p", dir}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10)))
      << ReadFileOrEmpty(dir + "/error.log");
  Subprocess client;
  const std::string go = dir + "/go", done = dir + "/done";
  // The client stays alive until the spans are in: a process that exited before kspan read
  // /proc/PID (and was never seen exec) can only be named by its comm.
  ASSERT_TRUE(
      client.Start({"/usr/bin/python3", std::string(KSPAN_SOURCE_DIR) + "/tests/apps/keepalive_client.py",
                    std::to_string(port), go, done}));
  ASSERT_TRUE(WaitFor([&] { return client.Stdout().find("first-done") != std::string::npos; },
                      std::chrono::seconds(10)))
      << client.Stderr();

  KspanAgent agent;
  ASSERT_TRUE(agent.Start()) << agent.Logs();
  std::ofstream(go) << "go";
  auto spans = WaitForSpans(agent, [&](const auto& s) {
    return !SpansFor(s, port, kServer).empty() && !SpansFor(s, port, kClient).empty();
  });
  std::ofstream(done) << "done";
  ASSERT_EQ(client.Wait(std::chrono::seconds(20)), 0) << client.Stderr();
  const int st = agent.Stop();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << agent.Logs();

  auto server = SpansFor(spans, port, kServer);
  auto client_spans = SpansFor(spans, port, kClient);
  ASSERT_EQ(server.size(), 1u) << "only the request made after kspan started";
  ASSERT_EQ(client_spans.size(), 1u);
  EXPECT_EQ(server[0].name, "GET /ok/after/{id}");
  EXPECT_EQ(server[0].Int("http.response.status_code"), 200);
  EXPECT_EQ(server[0].ResourceStr("service.name"), "nginx");
  EXPECT_EQ(client_spans[0].Str("url.full"), "http://127.0.0.1:" + std::to_string(port) + "/ok/after/7");
  EXPECT_EQ(client_spans[0].Int("http.response.status_code"), 200);
  char real[4096] = {};
  ASSERT_NE(realpath("/usr/bin/python3", real), nullptr);
  const std::string python_exe = std::string(real).substr(std::string(real).rfind('/') + 1);
  EXPECT_EQ(client_spans[0].ResourceStr("process.executable.name"), python_exe);
}

// ---- agent lifecycle ------------------------------------------------------------------

// What one agent put in the kernel, found by difference so another kspan running on the
// machine does not confuse the test.
KernelObjects StartAndInventory(KspanAgent* agent) {
  const auto before = KspanObjectsInKernel();
  EXPECT_TRUE(agent->Start()) << agent->Logs();
  const auto during = KspanObjectsInKernel();
  KernelObjects ours{Added(before.programs, during.programs), Added(before.links, during.links)};
  // 23 capture tracepoint programs (ks_ex_data on nine tracepoints; reads have no entry
  // program), 11 for agents' file writes (bpf/file_write.bpf.c), and 21 TLS uprobe
  // programs (8 for OpenSSL, 5 for rustls, 3 for Go's crypto/tls, 5 for goroutine
  // ancestry), and ks_proc_fork (attached only with selection rules).
  EXPECT_EQ(ours.programs.size(), 56u);
  // 31 tracepoint links of the capture; the 11 of file writes only once an agent runs on
  // the host (none, or all); TLS uprobes: at least entry and return of read and the entry
  // of write (no return probe: docs/tls.md) on the system's libssl.so.3, which every test
  // machine has.
  const auto count = [&ours](const char* prefix) {
    return static_cast<size_t>(
        std::count_if(ours.links.begin(), ours.links.end(),
                      [prefix](const std::string& l) { return l.find(prefix) != std::string::npos; }));
  };
  const size_t tls = count(":ks_ssl_"), file_writes = count(":ks_fw_");
  EXPECT_EQ(ours.links.size() - tls - file_writes, 31u);
  EXPECT_TRUE(file_writes == 0 || file_writes == 11) << file_writes;
  EXPECT_GE(tls, 3u);
  return ours;
}

void ExpectGone(const KernelObjects& ours) {
  const auto now = KspanObjectsInKernel();
  const auto programs = StillThere(ours.programs, now.programs);
  const auto links = StillThere(ours.links, now.links);
  EXPECT_TRUE(programs.empty()) << programs.size() << " programs left";
  EXPECT_TRUE(links.empty()) << links.size() << " links left";
}

TEST(AgentLifecycle, SigtermDetachesEveryProgramAndLink) {
  KspanAgent agent;
  const KernelObjects ours = StartAndInventory(&agent);
  const int st = agent.Stop();
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.Logs();
  ExpectGone(ours);
  EXPECT_NE(agent.Logs().find("\"msg\":\"detached\""), std::string::npos);
  EXPECT_NE(agent.Logs().find("\"msg\":\"stopped\""), std::string::npos);
  EXPECT_NE(agent.Logs().find("\"drops_ring_buffer_full\":"), std::string::npos);
}

TEST(AgentLifecycle, SigintAlsoDetaches) {
  KspanAgent agent;
  const KernelObjects ours = StartAndInventory(&agent);
  const int st = agent.process().Stop(SIGINT, std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << agent.Logs();
  ExpectGone(ours);
}

TEST(AgentLifecycle, CrashOfTheAgentStillDetaches) {
  // SIGKILL: no handler runs at all. The kernel releases programs and links with the
  // process's file descriptors because kspan pins nothing.
  KspanAgent agent;
  const KernelObjects ours = StartAndInventory(&agent);
  const int st = agent.process().Stop(SIGKILL, std::chrono::seconds(30));
  ASSERT_TRUE(WIFSIGNALED(st));
  ASSERT_TRUE(WaitFor([&] { return StillThere(ours.programs, KspanObjectsInKernel().programs).empty(); },
                      std::chrono::seconds(10)));
  ExpectGone(ours);
}

TEST(AgentLifecycle, DurationRunsThenExitsZeroAndFlushes) {
  const std::string dir = MakeTempDir("kspan-dur-");
  Subprocess p;
  ASSERT_TRUE(p.Start({KSPAN_BINARY, "--duration", "1", "--output", "file:" + dir + "/s.jsonl"}));
  const int st = p.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(st)) << p.Stderr();
  EXPECT_EQ(WEXITSTATUS(st), 0) << p.Stderr();
  EXPECT_NE(p.Stderr().find("\"msg\":\"ready\""), std::string::npos);
  EXPECT_NE(p.Stderr().find("\"msg\":\"stopped\""), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir + "/s.jsonl"));
}

TEST(AgentLifecycle, NotRootIsAClearError) {
  auto r = RunCommand({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KSPAN_BINARY,
                       "--output", "console", "--duration", "1"},
                      std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  // No capability at all: every required one is named, and the way out (capabilities.h).
  for (const char* cap : {"CAP_BPF (", "CAP_PERFMON (", "CAP_DAC_READ_SEARCH (", "CAP_SYS_PTRACE ("}) {
    EXPECT_NE(r.err.find(cap), std::string::npos) << cap << " " << r.err;
  }
  EXPECT_NE(r.err.find("Run it as root (sudo), or grant these capabilities"), std::string::npos) << r.err;
}

TEST(AgentLifecycle, BadFlagIsAClearErrorWithExitTwo) {
  auto r = RunCommand({KSPAN_BINARY, "--output", "kafka"}, std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("'kafka'"), std::string::npos) << r.err;
}

TEST(AgentLifecycle, HelpDescribesTheContract) {
  auto r = RunCommand({KSPAN_BINARY, "--help"}, std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s :
       {"--output", "file:PATH", "--duration", "--pid", "--capture-bytes", "--config", "ready"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace kspan::testing
