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
  EXPECT_EQ(agent.StoppedCounter("kspan_kernel_counter{name=\"tls_plaintext_unbound\"}"), 0) << logs;
}

}  // namespace
}  // namespace kspan::testing
