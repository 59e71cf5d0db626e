// The agent's status endpoint without a kernel: --listen and `listen:` in the
// configuration, the routes over a real loopback server (/metrics, /api/agent-graph,
// /api/status, /healthz), and the kspan binary's answer to a port that is taken.
#include "agent/status_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "common/prometheus.h"
#include "testing/subprocess.h"

namespace kspan::agent {
namespace {

Result<Config> ParseArgs(std::vector<std::string> args) {
  args.insert(args.begin(), "kspan");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data(), Environment());
}

TEST(ListenConfig, OffByDefaultFromAFlagOrTheFile) {
  auto c = ParseArgs({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->listen, "");
  c = ParseArgs({"--listen", "127.0.0.1:9464"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->listen, "127.0.0.1:9464");
  c = ParseArgs({"--listen=[::1]:0"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->listen, "[::1]:0");

  const std::string dir = testing::MakeTempDir("kspan-listen-");
  const std::string path = dir + "/kspan.yaml";
  std::ofstream(path) << "listen: \"0.0.0.0:9464\"\n";
  c = ParseArgs({"--config", path});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->listen, "0.0.0.0:9464");
  c = ParseArgs({"--config", path, "--listen", "127.0.0.1:1"});  // the flag wins
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->listen, "127.0.0.1:1");
  std::ofstream(path) << "listen: \":9464\"\n";
  c = ParseArgs({"--config", path});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(path + ": listen"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("has no address"), std::string::npos) << c.status().message();
  std::remove(path.c_str());
  rmdir(dir.c_str());
}

TEST(ListenConfig, BadAddressNamesTheFlag) {
  auto c = ParseArgs({"--listen", ":9464"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("--listen: ':9464' has no address"), std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find("127.0.0.1:9464"), std::string::npos) << "says what to write instead";
  EXPECT_FALSE(ParseArgs({"--listen", "localhost"}).ok());
  EXPECT_FALSE(ParseArgs({"--listen"}).ok());
}

TEST(ListenConfig, HelpDescribesIt) {
  const std::string h = HelpText();
  EXPECT_NE(h.find("--listen ADDRESS:PORT"), std::string::npos);
  EXPECT_NE(h.find("/metrics"), std::string::npos);
  EXPECT_NE(h.find("log_level, listen,"), std::string::npos) << "the YAML key list";
}

// ---------------------------------------------------------------------------------------

std::string Get(uint16_t port, const std::string& path, const std::string& method = "GET",
                const std::string& headers = "") {
  const int fd = testing::ConnectLoopback(port);
  if (fd < 0) return "";
  const std::string req = method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n";
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[65536];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 5000) > 0) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string Body(const std::string& r) {
  const size_t p = r.find("\r\n\r\n");
  return p == std::string::npos ? "" : r.substr(p + 4);
}

model::Span ChatSpan() {
  model::Span s;
  s.kind = model::SpanKind::kClient;
  s.start_time_unix_nano = 1'000'000'000;
  s.end_time_unix_nano = 1'020'000'000;
  s.attributes = {{"gen_ai.operation.name", std::string("chat")},
                  {"gen_ai.request.model", std::string("gpt-4o")}};
  return s;
}

TEST(StatusServer, EveryRoute) {
  metrics::Registry m;
  processors::AgentGraph graph(&m);
  graph.OnSpan(ChatSpan(), "planner");
  m.GetCounter("kspan_spans_total")->Add(5);
  m.GetCounter("kspan_kernel_counts_total", {{"name", "ring_buffer_full_data"}})->Set(3);
  m.GetCounter("kspan_parse_failures_total", {{"protocol", "http1"}})->Add(2);
  std::atomic<bool> running{true};

  http::ServerOptions o;
  o.address = *http::ParseListenAddress("test", "127.0.0.1:0");
  http::HttpServer server(o, &m);
  StatusSources s;
  s.metrics = &m;
  s.graph = &graph;
  s.started = std::chrono::steady_clock::now();
  s.listen = "127.0.0.1:1234";
  s.unhealthy = [&running] { return running ? std::string() : std::string("stopping"); };
  AddStatusRoutes(&server, s);
  ASSERT_TRUE(server.Listen().ok());
  ASSERT_TRUE(server.Start().ok());
  const uint16_t port = server.bound().port;

  const std::string metrics = Get(port, "/metrics");
  EXPECT_TRUE(metrics.starts_with("HTTP/1.1 200 OK\r\n")) << metrics;
  EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(metrics.find("\nkspan_spans_total 5\n"), std::string::npos);
  EXPECT_NE(
      metrics.find("\nkspan_agent_graph_calls_total{from=\"planner\",to=\"gpt-4o\",kind=\"model\"} 1\n"),
      std::string::npos);
  EXPECT_NE(metrics.find("# TYPE kspan_agent_graph_duration_seconds histogram\n"), std::string::npos);
  // Asked for OpenMetrics (as Prometheus asks): the same registry in that format.
  const std::string om = Get(port, "/metrics", "GET",
                             "Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;q=0.3\r\n");
  EXPECT_NE(om.find("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"),
            std::string::npos)
      << om;
  EXPECT_NE(om.find("\n# TYPE kspan_spans counter\nkspan_spans_total 5\n"), std::string::npos) << om;
  EXPECT_TRUE(om.ends_with("# EOF\n")) << om;
  EXPECT_EQ(metrics.find("# EOF"), std::string::npos);

  const std::string graph_json = Get(port, "/api/agent-graph");
  EXPECT_NE(graph_json.find("Content-Type: application/json\r\n"), std::string::npos) << graph_json;
  EXPECT_EQ(Body(graph_json), graph.Json() + "\n");
  const auto g = nlohmann::json::parse(Body(graph_json));
  ASSERT_EQ(g["edges"].size(), 1u);
  EXPECT_EQ(g["edges"][0]["from"], "planner");
  EXPECT_EQ(g["edges"][0]["to"], "gpt-4o");

  const auto status = nlohmann::json::parse(Body(Get(port, "/api/status")));
  EXPECT_EQ(status["pid"], getpid());
  EXPECT_EQ(status["listen"], "127.0.0.1:1234");
  EXPECT_EQ(status["spans"], 5);
  EXPECT_EQ(status["healthy"], true);
  EXPECT_EQ(status["drops"]["ring_buffer_full"], 3);
  EXPECT_EQ(status["drops"]["parse_failed"], 2);
  EXPECT_GE(status["uptime_seconds"].get<double>(), 0.0);
  EXPECT_FALSE(status["version"].get<std::string>().empty());

  EXPECT_EQ(Body(Get(port, "/healthz")), "ok\n");
  EXPECT_EQ(Body(Get(port, "/healthz", "HEAD")), "");
  running = false;
  const std::string stopping = Get(port, "/healthz");
  EXPECT_TRUE(stopping.starts_with("HTTP/1.1 503 ")) << stopping;
  EXPECT_EQ(Body(stopping), "stopping\n");
  EXPECT_TRUE(Get(port, "/metrics", "POST").starts_with("HTTP/1.1 405 "));
  EXPECT_TRUE(Get(port, "/", "GET").starts_with("HTTP/1.1 404 "));
  server.Stop();
  // The server's own requests show up in the next scrape (of the registry).
  EXPECT_EQ(m.GetCounter("kspan_http_requests_total", {{"path", "/metrics"}, {"code", "200"}})->Value(), 2u);
}

TEST(StatusServer, AsTheAgentRunsIt) {
  metrics::Registry m;
  processors::AgentGraph graph(&m);
  auto s = StatusServer::Listen("127.0.0.1:0", &m);
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::unique_ptr<StatusServer> status = std::move(*s);
  ASSERT_NE(status->port(), 0);
  EXPECT_EQ(status->address(), "127.0.0.1:" + std::to_string(status->port()));
  ASSERT_TRUE(status->Start(&graph, std::chrono::steady_clock::now()).ok());
  status->Beat();
  EXPECT_EQ(Body(Get(status->port(), "/healthz")), "ok\n");
  EXPECT_EQ(nlohmann::json::parse(Body(Get(status->port(), "/api/status")))["listen"], status->address());
  status->Stop();
  EXPECT_EQ(Get(status->port(), "/healthz"), "") << "refused once stopped";
  EXPECT_FALSE(StatusServer::Listen(":1", &m).ok());
}

// The binary, unprivileged: a port already taken is one error line and exit 1, before
// anything touches the kernel.
TEST(StatusServer, PortInUseStopsTheAgent) {
  metrics::Registry m;
  http::ServerOptions o;
  o.address = *http::ParseListenAddress("test", "127.0.0.1:0");
  http::HttpServer taken(o, &m);
  ASSERT_TRUE(taken.Listen().ok());
  const std::string addr = taken.bound().ToString();
  testing::Subprocess p;
  ASSERT_TRUE(p.Start({KSPAN_BINARY, "--listen", addr, "--output", "none", "--duration", "1"}));
  const int st = p.Wait(std::chrono::seconds(20));
  ASSERT_NE(st, -1);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 1) << p.Stderr();
  const std::string err = p.Stderr();
  ASSERT_EQ(err.find('\n'), err.size() - 1) << "one line:\n" << err;
  const auto line = nlohmann::json::parse(err);
  EXPECT_EQ(line["level"], "error");
  EXPECT_EQ(line["msg"], "cannot start");
  EXPECT_NE(line["error"].get<std::string>().find("cannot listen on " + addr), std::string::npos) << err;
  EXPECT_NE(line["error"].get<std::string>().find("in use"), std::string::npos) << err;
}

}  // namespace
}  // namespace kspan::agent
