// A Rust HTTPS client on rustls (tests/apps/rustls, built here with Debian 12's cargo and
// librust-rustls-dev, offline) calling a local Go server (tests/apps/go/tlsapp.go). kspan
// probes rustls's Reader::read and Writer::write found by symbol (userspace/tls/
// rustls_binary.h; docs/tls.md, "rustls"): the client's CLIENT spans carry paths and
// statuses and pair with the server's; a stripped copy of the same binary is reported as
// not captured, naming rustls and its version; no ciphertext reaches a parser.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;

class RustlsTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("kspan-rustls-");
    // Built in a copy (cargo writes Cargo.lock next to the manifest), against Debian's
    // crates only: crates.io replaced by /usr/share/cargo/registry, --offline. The copy
    // and cargo's target folder are kept between runs (each test of this file runs in a
    // process of its own): ~2 min the first time on a loaded 2-core machine, seconds
    // after; cargo locks the folder.
    const std::string cargo = (std::filesystem::temp_directory_path() / "kspan-rustls-cargo").string();
    std::filesystem::create_directories(cargo);
    std::filesystem::create_directories(dir_ + "/bin");
    // The Go server builds meanwhile (its cache kept with cargo's).
    Subprocess go;
    ASSERT_TRUE(go.Start({"env", "GOCACHE=" + cargo + "/gocache", "GOPATH=" + dir_ + "/gopath",
                          "GOFLAGS=", "GOPROXY=off", "GO111MODULE=off", "go", "build", "-o",
                          dir_ + "/bin/server", std::string(KSPAN_SOURCE_DIR) + "/tests/apps/go/tlsapp.go"}));
    CommandResult r = RunCommand({"cp", "-r", "--preserve=timestamps", "-T",
                                  std::string(KSPAN_SOURCE_DIR) + "/tests/apps/rustls", cargo + "/src"},
                                 std::chrono::seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = RunCommand({"env", "PATH=/usr/bin:/bin", "CARGO_HOME=" + cargo + "/home", "/usr/bin/cargo", "build",
                    "--offline", "--release", "--quiet", "--manifest-path", cargo + "/src/Cargo.toml",
                    "--target-dir", cargo + "/target", "--config", "source.crates-io.replace-with=\"debian\"",
                    "--config", "source.debian.directory=\"/usr/share/cargo/registry\""},
                   std::chrono::seconds(900));
    ASSERT_EQ(r.exit_code, 0)
        << "Debian's cargo and librust-rustls-dev are needed (scripts/install-deps.sh): " << r.err;
    std::filesystem::copy_file(cargo + "/target/release/rustls_get", dir_ + "/bin/rustls_get");
    r = RunCommand({"strip", "-o", dir_ + "/bin/rustls_get_stripped", dir_ + "/bin/rustls_get"},
                   std::chrono::seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const int go_status = go.Wait(std::chrono::seconds(240));
    ASSERT_TRUE(go_status != -1 && WIFEXITED(go_status) && WEXITSTATUS(go_status) == 0) << go.Stderr();
    // webpki (rustls's certificate check) refuses a CA certificate as the server's own, and
    // `openssl req -x509` marks its certificate CA:TRUE unless told otherwise.
    r = RunCommand(
        {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext",
         "basicConstraints=critical,CA:FALSE", "-keyout", dir_ + "/key.pem", "-out", dir_ + "/cert.pem"},
        std::chrono::seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Runs `client` against a fresh server under a fresh kspan and returns the spans of that
  // server's port (SERVER and CLIENT) once both sides have `expect` of them, or after 20 s.
  struct Run {
    std::vector<FlatSpan> servers, clients;
    std::string logs;
    std::string out;
    int port = 0;
    std::map<std::string, uint64_t> counters;
  };
  static void RunClient(const std::string& client, size_t expect, Run* run) {
    KspanAgent agent;
    ASSERT_TRUE(agent.Start({"--include", "exe=" + dir_ + "/bin/*"})) << agent.Logs();
    run->port = FreePort();
    const std::string port = std::to_string(run->port);
    Subprocess server;
    ASSERT_TRUE(
        server.Start({dir_ + "/bin/server", "server", port, dir_ + "/cert.pem", dir_ + "/key.pem", "h1"}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", run->port, std::chrono::seconds(10))) << server.Stderr();
    // A uprobe belongs to the file: a first process of the binary that waits lets kspan
    // probe it (at its exec) before the run that counts, which is then covered from its
    // start. A stripped copy has nothing to probe: it is explained at its first ciphertext.
    if (expect > 0) {
      Subprocess first;
      ASSERT_TRUE(first.Start({client, "--sleep", "20"}));
      ASSERT_TRUE(WaitFor(
          [&] {
            const std::string logs = agent.Logs();
            const size_t at = logs.find("\"msg\":\"TLS probes attached\"");
            return at != std::string::npos && logs.find(client + "\"", at) != std::string::npos;
          },
          std::chrono::seconds(20)))
          << agent.Logs();
      first.Stop(SIGTERM, std::chrono::seconds(5));
    }
    const CommandResult r =
        RunCommand({client, "localhost", port, dir_ + "/cert.pem", "/hello/0", "/missing", "/hello/2"},
                   std::chrono::seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    run->out = r.out;
    auto mine = [&] {
      run->servers.clear();
      run->clients.clear();
      for (const FlatSpan& s : ReadSpans(agent.SpansPath())) {
        if (s.Int("server.port") != run->port) continue;
        (s.kind == kServer ? run->servers : run->clients).push_back(s);
      }
      return run->servers.size() >= 3 && run->clients.size() >= expect;
    };
    WaitFor(mine, std::chrono::seconds(20));
    if (expect == 0) {
      // Nothing to wait for on the client's side: wait for the explanation instead.
      WaitFor([&] { return agent.Logs().find("\"msg\":\"TLS not captured\"") != std::string::npos; },
              std::chrono::seconds(20));
    }
    server.Stop(SIGTERM, std::chrono::seconds(5));
    ExpectCleanStop(agent);
    mine();
    run->logs = agent.Logs();
    run->counters = agent.StoppedCounters();
  }
  static uint64_t Counter(const Run& run, const std::string& series) {
    auto it = run.counters.find(series);
    return it == run.counters.end() ? 0 : it->second;
  }

  static std::string dir_;
};
std::string RustlsTls::dir_;

TEST_F(RustlsTls, ClientSpansWithPathsAndStatuses) {
  Run run;
  ASSERT_NO_FATAL_FAILURE(RunClient(dir_ + "/bin/rustls_get", 3, &run));
  ASSERT_EQ(run.out, "/hello/0 200\n/missing 404\n/hello/2 200\n");
  const size_t at = run.logs.find(dir_ + "/bin/rustls_get\"");
  ASSERT_NE(at, std::string::npos) << run.logs;
  EXPECT_NE(run.logs.find("rustls (symbols", at), std::string::npos) << run.logs;
  ASSERT_EQ(run.servers.size(), 3u) << run.logs;
  ASSERT_EQ(run.clients.size(), 3u) << run.logs;

  const std::string prefix = "https://localhost:" + std::to_string(run.port);
  std::map<std::string, const FlatSpan*> client_by_span;
  std::set<std::string> paths;
  for (const FlatSpan& c : run.clients) {
    const std::string full = c.Str("url.full");
    ASSERT_TRUE(full.starts_with(prefix)) << full;
    const std::string path = full.substr(prefix.size());
    SCOPED_TRACE(path);
    EXPECT_EQ(c.Str("http.request.method"), "GET");
    EXPECT_EQ(c.Int("http.response.status_code"), path == "/missing" ? 404 : 200);
    paths.insert(path);
    client_by_span[c.span_id] = &c;
  }
  EXPECT_EQ(paths, (std::set<std::string>{"/hello/0", "/missing", "/hello/2"}));
  for (const FlatSpan& s : run.servers) {
    SCOPED_TRACE(s.Str("url.path"));
    EXPECT_EQ(s.Str("url.scheme"), "https");
    EXPECT_EQ(s.Int("http.response.status_code"), s.Str("url.path") == "/missing" ? 404 : 200);
    // Paired by socket with the rustls request that made it.
    auto it = client_by_span.find(s.parent_span_id);
    ASSERT_NE(it, client_by_span.end());
    EXPECT_TRUE(it->second->Str("url.full").ends_with(s.Str("url.path")));
    EXPECT_EQ(it->second->trace_id, s.trace_id);
  }
  EXPECT_EQ(Counter(run, "kspan_tls_connections_total{plaintext=\"not_captured\"}"), 0u) << run.logs;
  EXPECT_EQ(Counter(run, "kspan_parse_failures_total{protocol=\"http1\"}"), 0u) << run.logs;
  EXPECT_EQ(Counter(run, "kspan_kernel_counts_total{name=\"tls_plaintext_unbound\"}"), 0u) << run.logs;
}

TEST_F(RustlsTls, StrippedBinaryIsReportedNotCaptured) {
  Run run;
  ASSERT_NO_FATAL_FAILURE(RunClient(dir_ + "/bin/rustls_get_stripped", 0, &run));
  ASSERT_EQ(run.out, "/hello/0 200\n/missing 404\n/hello/2 200\n");
  // The server side (Go) is still read; the client's is not, and kspan says why.
  EXPECT_EQ(run.servers.size(), 3u) << run.logs;
  EXPECT_TRUE(run.clients.empty()) << run.logs;
  const size_t msg = run.logs.find("\"msg\":\"TLS not captured\"");
  ASSERT_NE(msg, std::string::npos) << run.logs;
  const std::string line = run.logs.substr(msg, run.logs.find('\n', msg) - msg);
  EXPECT_NE(line.find(dir_ + "/bin/rustls_get_stripped"), std::string::npos) << line;
  EXPECT_NE(line.find("rustls-0.20.8: rustls without symbols"), std::string::npos) << line;
  EXPECT_GE(Counter(run, "kspan_tls_not_captured_total{binary=\"rustls_get_stripped\",reason=\"rustls\"}"),
            1u)
      << run.logs;
  EXPECT_EQ(Counter(run, "kspan_parse_failures_total{protocol=\"http1\"}"), 0u) << run.logs;
}

}  // namespace
}  // namespace kspan::testing
