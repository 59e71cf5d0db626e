// Bun from npm (tests/apps/bun: one stripped binary with BoringSSL inside) making HTTPS
// requests to a local Go server (tests/apps/go/tlsapp.go: crypto/tls). kspan finds Bun's
// SSL_read/SSL_write by the byte patterns of its build id (userspace/tls/byte_patterns.h;
// docs/tls.md, "BoringSSL in Bun"): both sides are captured, Bun's CLIENT spans carry the
// path and status and pair with the server's, and no ciphertext reaches a parser.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;
const std::string kBunDir = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/bun";
const std::string kClaudeDir = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/claude";

TEST(BunTls, FetchGivesClientSpansWithPathsAndStatuses) {
  const std::string bun = kBunDir + "/node_modules/.bin/bun";
  ASSERT_TRUE(std::filesystem::exists(bun))
      << "tests/apps/bun/node_modules is missing: run scripts/install-deps.sh";
  const std::string dir = MakeTempDir("kspan-bun-tls-");
  const std::string cert_error = MakeTestCertificate(dir);
  ASSERT_TRUE(cert_error.empty()) << cert_error;
  // The server: tests/apps/go/tlsapp.go (Go's crypto/tls), built here, so that only this
  // test's programs are traced (--include) and the counters asserted are theirs.
  const CommandResult built =
      RunCommand({"env", "GOCACHE=" + dir + "/cache", "GOPATH=" + dir + "/gopath", "GOFLAGS=", "GOPROXY=off",
                  "GO111MODULE=off", "go", "build", "-o", dir + "/server",
                  std::string(KSPAN_SOURCE_DIR) + "/tests/apps/go/tlsapp.go"},
                 std::chrono::seconds(240));
  ASSERT_EQ(built.exit_code, 0) << built.err;
  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--include", "exe=" + dir + "/*", "--include", "exe=" + kBunDir + "/*"}))
      << agent.Logs();
  const int port = FreePort();
  Subprocess server;
  ASSERT_TRUE(server.Start(
      {dir + "/server", "server", std::to_string(port), dir + "/cert.pem", dir + "/key.pem", "h1"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << server.Stderr();
  // A uprobe belongs to the file: once Bun's build has been matched (a scan of its 80 MB of
  // code, a fraction of a second at its first exec), every later Bun process is covered
  // from its start. A first Bun that makes its requests at once can beat that scan, and
  // one that exits before it takes its /proc/PID/root path with it (the attach fails), so
  // a Bun that waits comes first.
  Subprocess first;
  ASSERT_TRUE(first.Start({bun, "-e", "await Bun.sleep(10000)"}));
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string logs = agent.Logs();
        const size_t at = logs.find("\"msg\":\"TLS probes attached\"");
        return at != std::string::npos && logs.find("bun.exe", at) != std::string::npos;
      },
      std::chrono::seconds(10)))
      << agent.Logs();
  first.Stop(SIGTERM, std::chrono::seconds(5));
  const CommandResult r =
      RunCommand({bun, kBunDir + "/https_get.js", "https://localhost:" + std::to_string(port),
                  dir + "/cert.pem", "/hello/0", "/missing", "/hello/2"},
                 std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out, "/hello/0 200\n/missing 404\n/hello/2 200\n");

  std::vector<FlatSpan> servers, clients;
  auto mine = [&] {
    servers.clear();
    clients.clear();
    for (const FlatSpan& s : ReadSpans(agent.SpansPath())) {
      if (s.Int("server.port") != port) continue;
      (s.kind == kServer ? servers : clients).push_back(s);
    }
    return std::min(servers.size(), clients.size());
  };
  WaitFor([&] { return mine() >= 3; }, std::chrono::seconds(20));
  server.Stop(SIGTERM, std::chrono::seconds(5));
  ExpectCleanStop(agent);
  const std::string logs = agent.Logs();
  mine();
  ASSERT_EQ(servers.size(), 3u) << logs;
  ASSERT_EQ(clients.size(), 3u) << logs;
  // Bun's probes came from the byte-pattern table, and every TLS connection ended up
  // captured. (A "TLS not captured" line may still be logged for Bun: its handshake's
  // ciphertext can ask for an explanation before its first plaintext arrives.)
  const size_t at = logs.find("\"msg\":\"TLS probes attached\"");
  ASSERT_NE(at, std::string::npos) << logs;
  EXPECT_NE(logs.find("byte pattern", at), std::string::npos) << logs;
  EXPECT_EQ(agent.StoppedCounter("kspan_tls_connections_total{plaintext=\"not_captured\"}"), 0) << logs;

  std::map<std::string, const FlatSpan*> client_by_span;
  std::set<std::string> paths;
  for (const FlatSpan& c : clients) {
    const std::string full = c.Str("url.full");
    const std::string prefix = "https://localhost:" + std::to_string(port);
    ASSERT_TRUE(full.starts_with(prefix)) << full;
    const std::string path = full.substr(prefix.size());
    SCOPED_TRACE(path);
    EXPECT_EQ(c.Str("http.request.method"), "GET");
    EXPECT_EQ(c.Int("http.response.status_code"), path == "/missing" ? 404 : 200);
    paths.insert(path);
    client_by_span[c.span_id] = &c;
  }
  EXPECT_EQ(paths, (std::set<std::string>{"/hello/0", "/missing", "/hello/2"}));
  for (const FlatSpan& s : servers) {
    SCOPED_TRACE(s.Str("url.path"));
    EXPECT_EQ(s.Str("url.scheme"), "https");
    EXPECT_EQ(s.Int("http.response.status_code"), s.Str("url.path") == "/missing" ? 404 : 200);
    // Paired by socket with the Bun request that made it.
    auto it = client_by_span.find(s.parent_span_id);
    ASSERT_NE(it, client_by_span.end());
    EXPECT_TRUE(it->second->Str("url.full").ends_with(s.Str("url.path")));
    EXPECT_EQ(it->second->trace_id, s.trace_id);
  }
  EXPECT_GE(agent.StoppedCounter("kspan_tls_connections_total{plaintext=\"captured\"}"), 2) << logs;
  EXPECT_EQ(agent.StoppedCounter("kspan_parse_failures_total{protocol=\"http1\"}"), 0) << logs;
  EXPECT_EQ(agent.StoppedCounter("kspan_kernel_counts_total{name=\"tls_plaintext_unbound\"}"), 0) << logs;
}

// Claude Code 2.1.332 (npm @anthropic-ai/claude-code-linux-x64: Bun 1.4.6 inside, its own
// build id, so rows of its own in the byte-pattern table) in print mode against the LLM
// mock (tests/apps/llm_mock.js) over HTTPS. Both run inside `unshare -n`: a network
// namespace with nothing but its own loopback, so the CLI cannot reach anything else.
TEST(BunTls, ClaudeCodeAgainstTheLlmMockGivesAGenAiSpan) {
  const std::string claude = kClaudeDir + "/node_modules/@anthropic-ai/claude-code-linux-x64/claude";
  ASSERT_TRUE(std::filesystem::exists(claude))
      << "tests/apps/claude/node_modules is missing: run scripts/install-deps.sh";
  const std::string dir = MakeTempDir("kspan-claude-tls-");
  const std::string cert_error = MakeTestCertificate(dir);
  ASSERT_TRUE(cert_error.empty()) << cert_error;
  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--include", "exe=" + kClaudeDir + "/*"})) << agent.Logs();
  // The first process of the binary has kspan match its patterns (a scan of 130 MB of
  // code); `claude --version` exits at once, so its probes may be attached through the
  // file's own path after it is gone (docs/tls.md). Tried a few times: an exec notice
  // handled after the process is gone has nothing to read the executable's name from.
  auto attached = [&] {
    const std::string logs = agent.Logs();
    const size_t at = logs.find("\"msg\":\"TLS probes attached\"");
    return at != std::string::npos && logs.find("claude-code-linux-x64/claude", at) != std::string::npos;
  };
  for (int i = 0; i < 5 && !attached(); ++i) {
    const CommandResult v = RunCommand({claude, "--version"}, std::chrono::seconds(30));
    ASSERT_EQ(v.exit_code, 0) << v.err;
    ASSERT_NE(v.out.find("2.1.332"), std::string::npos) << v.out;
    WaitFor(attached, std::chrono::seconds(5));
  }
  ASSERT_TRUE(attached()) << agent.Logs();
  const std::string logs_at_attach = agent.Logs();
  EXPECT_NE(logs_at_attach.find("Claude Code 2.1.332 (Bun v1.4.6"), std::string::npos) << logs_at_attach;

  const int port = 8443;  // inside the namespace: nothing else listens there
  const CommandResult r = RunCommand({"unshare", "-n", kClaudeDir + "/run_in_netns.sh", std::to_string(port),
                                      dir + "/cert.pem", dir + "/key.pem", dir},
                                     std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("MOCK_COMPLETION_TEXT streamed"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("POST /v1/messages model=claude-sonnet-4-5 stream=true"), std::string::npos) << r.err;

  std::vector<FlatSpan> calls;
  auto mine = [&] {
    calls.clear();
    for (const FlatSpan& s : ReadSpans(agent.SpansPath())) {
      if (s.kind != kClient || s.Int("server.port") != port || !s.Has("gen_ai.operation.name")) continue;
      auto exe = s.resource.find("process.executable.name");
      if (exe == s.resource.end() || exe->second.value("stringValue", "") != "claude") continue;
      calls.push_back(s);
    }
    return !calls.empty();
  };
  WaitFor(mine, std::chrono::seconds(20));
  ExpectCleanStop(agent);
  const std::string logs = agent.Logs();
  mine();
  ASSERT_EQ(calls.size(), 1u) << logs;
  const FlatSpan& s = calls[0];
  EXPECT_EQ(s.name, "chat claude-sonnet-4-5");
  EXPECT_EQ(s.Str("gen_ai.operation.name"), "chat");
  EXPECT_EQ(s.Str("gen_ai.provider.name"), "anthropic");
  EXPECT_EQ(s.Str("gen_ai.request.model"), "claude-sonnet-4-5");
  EXPECT_EQ(s.Str("gen_ai.response.id"), "msg_mock_1");
  EXPECT_EQ(s.Strings("gen_ai.response.finish_reasons"), std::vector<std::string>{"end_turn"});
  EXPECT_EQ(s.Int("gen_ai.usage.input_tokens"), 25);
  EXPECT_EQ(s.Int("gen_ai.usage.output_tokens"), 11);
  EXPECT_TRUE(s.Bool("gen_ai.request.stream"));
  EXPECT_TRUE(s.Str("url.full").starts_with("https://localhost:8443/v1/messages")) << s.Str("url.full");
  EXPECT_EQ(s.Int("http.response.status_code"), 200);
  EXPECT_EQ(agent.StoppedCounter("kspan_parse_failures_total{protocol=\"http1\"}"), 0) << logs;
  EXPECT_EQ(agent.StoppedCounter("kspan_tls_connections_total{plaintext=\"not_captured\"}"), 0) << logs;
}

}  // namespace
}  // namespace kspan::testing
