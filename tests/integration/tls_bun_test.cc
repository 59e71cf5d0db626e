// Bun from npm (tests/apps/bun: one stripped binary with BoringSSL inside) making HTTPS
// requests to a local Go server (tests/apps/go/tlsapp.go: crypto/tls). kspan cannot read Bun's TLS yet
// (docs/tls.md, "BoringSSL in Bun"): the server's side is captured, Bun's is reported as
// not captured, naming BoringSSL, the Bun version and the build id, and its ciphertext
// never reaches a parser.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;
const std::string kBunDir = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/bun";

TEST(BunTls, ServerSideCapturedBunReportedAsBoringSsl) {
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
  const CommandResult r =
      RunCommand({bun, kBunDir + "/https_get.js", "https://localhost:" + std::to_string(port),
                  dir + "/cert.pem", "/hello/0", "/missing", "/hello/2"},
                 std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out, "/hello/0 200\n/missing 404\n/hello/2 200\n");

  std::vector<FlatSpan> servers;
  auto mine = [&] {
    servers.clear();
    bool client = false;
    for (const FlatSpan& s : ReadSpans(agent.SpansPath())) {
      if (s.Int("server.port") != port) continue;
      if (s.kind == kServer) servers.push_back(s);
      client |= s.kind == kClient;
    }
    EXPECT_FALSE(client) << "Bun's side is not read yet";
    return servers.size();
  };
  WaitFor([&] { return mine() >= 3; }, std::chrono::seconds(20));
  ASSERT_TRUE(WaitFor([&] { return agent.Logs().find("BoringSSL linked in") != std::string::npos; },
                      std::chrono::seconds(10)))
      << agent.Logs();
  server.Stop(SIGTERM, std::chrono::seconds(5));
  ExpectCleanStop(agent);
  ASSERT_EQ(mine(), 3u) << agent.Logs();
  std::set<std::string> paths;
  for (const FlatSpan& s : servers) {
    EXPECT_EQ(s.Str("url.scheme"), "https");
    EXPECT_EQ(s.Int("http.response.status_code"), s.Str("url.path") == "/missing" ? 404 : 200);
    paths.insert(s.Str("url.path"));
  }
  EXPECT_EQ(paths, (std::set<std::string>{"/hello/0", "/missing", "/hello/2"}));

  const std::string logs = agent.Logs();
  const size_t at = logs.find("\"msg\":\"TLS not captured\"");
  ASSERT_NE(at, std::string::npos) << logs;
  const std::string line = logs.substr(at, logs.find('\n', at) - at);
  EXPECT_NE(line.find("BoringSSL linked in without SSL_read/SSL_write symbols (Bun v1.4.5, build id "),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("bun.exe"), std::string::npos) << line;
  EXPECT_GE(agent.StoppedCounter("kspan_tls_not_captured_total{binary=\"bun.exe\",reason=\"boringssl\"}"), 1)
      << logs;
  EXPECT_EQ(agent.StoppedCounter("kspan_parse_failures_total{protocol=\"http1\"}"), 0) << logs;
  EXPECT_EQ(agent.StoppedCounter("kspan_kernel_counter{name=\"tls_plaintext_unbound\"}"), 0) << logs;
}

}  // namespace
}  // namespace kspan::testing
