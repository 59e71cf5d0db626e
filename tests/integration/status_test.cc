// The agent's own HTTP endpoint, end to end: the real agent with --listen 127.0.0.1:0,
// the bound port read from its log, real curl on /metrics, /api/agent-graph, /api/status
// and /healthz. /metrics is read back by a parser we did not write
// (python3-prometheus-client). And the agent does not trace itself: scraping it makes no
// span of kspan's side of the traffic (curl's own CLIENT span is curl's, and is there).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;

// The "listening" log line's port, or 0.
int ListenPort(const std::string& logs) {
  std::istringstream lines(logs);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("\"msg\":\"listening\"") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("port")) return j["port"].get<int>();
  }
  return 0;
}

CommandResult Curl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, std::chrono::seconds(20));
}

// /metrics through python3-prometheus-client: {name: {"type":…, "samples":[[name, labels, value]…]}}.
nlohmann::json ParseWithPrometheusClient(const std::string& text) {
  const std::string dir = MakeTempDir("kspan-prom-it-");
  std::ofstream(dir + "/metrics.txt") << text;
  std::ofstream(dir + "/parse.py")
      << "import json, sys\n"
         "from prometheus_client.parser import text_string_to_metric_families\n"
         "out = {}\n"
         "for f in text_string_to_metric_families(open(sys.argv[1], encoding='utf-8').read()):\n"
         "    if f.name in out: raise SystemExit('family twice: ' + f.name)\n"
         "    out[f.name] = {'type': f.type, 'help': f.documentation,\n"
         "                   'samples': [[s.name, s.labels, s.value] for s in f.samples]}\n"
         "print(json.dumps(out))\n";
  const auto r =
      RunCommand({"/usr/bin/python3", dir + "/parse.py", dir + "/metrics.txt"}, std::chrono::seconds(30));
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.exit_code, 0)
      << "python3-prometheus-client (scripts/install-deps.sh) could not parse /metrics:\n"
      << r.err;
  return nlohmann::json::parse(r.out, nullptr, false);
}

double SampleValue(const nlohmann::json& families, const std::string& family, const std::string& label,
                   const std::string& value) {
  if (!families.contains(family)) return -1;
  for (const auto& s : families[family]["samples"]) {
    if (label.empty() || s[1].value(label, "") == value) return s[2].get<double>();
  }
  return -1;
}

TEST(StatusEndpoint, ServesMetricsGraphStatusAndHealthWithoutTracingItself) {
  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--listen", "127.0.0.1:0"})) << "kspan did not become ready:\n" << agent.Logs();
  const int port = ListenPort(agent.Logs());
  ASSERT_GT(port, 0) << agent.Logs();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);

  // Some traffic of another process, so there are spans to count.
  const std::string dir = MakeTempDir("kspan-status-it-");
  std::ofstream(dir + "/index.html") << "hello\n";
  const int web = FreePort();
  Subprocess py;
  ASSERT_TRUE(py.Start({"/usr/bin/python3", "-m", "http.server", std::to_string(web), "--bind", "127.0.0.1",
                        "--directory", dir}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", web, std::chrono::seconds(10))) << py.Stderr();
  ASSERT_EQ(Curl({"-o", "/dev/null", "http://127.0.0.1:" + std::to_string(web) + "/index.html"}).exit_code,
            0);
  ASSERT_TRUE(WaitFor([&] { return !ReadSpans(agent.SpansPath()).empty(); }, std::chrono::seconds(15)));

  // /healthz
  const auto health = Curl({"-i", base + "/healthz"});
  ASSERT_EQ(health.exit_code, 0) << health.err;
  EXPECT_TRUE(health.out.starts_with("HTTP/1.1 200 OK\r\n")) << health.out;
  EXPECT_TRUE(health.out.ends_with("\r\n\r\nok\n")) << health.out;

  // /metrics: the content type, a parse by a third-party parser, known counters.
  const auto headers =
      Curl({"-s", "-o", "/dev/null", "-w", "%{http_code} %{content_type}", base + "/metrics"});
  EXPECT_EQ(headers.out, "200 text/plain; version=0.0.4; charset=utf-8");
  // The kernel's counters are read about once a second: scrape until they show events.
  CommandResult metrics;
  nlohmann::json families;
  WaitFor(
      [&] {
        metrics = Curl({"--fail", base + "/metrics"});
        families = ParseWithPrometheusClient(metrics.out);
        return SampleValue(families, "kspan_kernel_counts", "name", "events") > 0;
      },
      std::chrono::seconds(5));
  ASSERT_EQ(metrics.exit_code, 0) << metrics.err;
  ASSERT_TRUE(metrics.out.ends_with("\n"));
  ASSERT_TRUE(families.is_object()) << metrics.out;
  // Each "# TYPE" line is one family the parser returned: no sample fell outside its family.
  size_t type_lines = 0;
  for (size_t p = metrics.out.find("# TYPE "); p != std::string::npos;
       p = metrics.out.find("# TYPE ", p + 1)) {
    ++type_lines;
  }
  EXPECT_EQ(families.size(), type_lines);
  for (const auto& [name, f] : families.items()) {
    EXPECT_NE(f["type"], "unknown") << name;
    EXPECT_NE(f["help"], "kspan metric (no description yet).") << name;
  }
  EXPECT_EQ(families["kspan_events"]["type"], "counter");
  EXPECT_GT(SampleValue(families, "kspan_events", "type", "data"), 0);
  EXPECT_GE(SampleValue(families, "kspan_spans", "", ""), 1);
  EXPECT_GT(SampleValue(families, "kspan_kernel_counts", "name", "events"), 0);
  EXPECT_GE(SampleValue(families, "kspan_http_requests", "path", "/healthz"), 1);

  // /api/agent-graph: the graph's JSON (no agents here: no edges).
  const auto graph = Curl({"--fail", base + "/api/agent-graph"});
  ASSERT_EQ(graph.exit_code, 0) << graph.err;
  const auto g = nlohmann::json::parse(graph.out, nullptr, false);
  ASSERT_TRUE(g.is_object()) << graph.out;
  EXPECT_TRUE(g["edges"].is_array()) << graph.out;

  // /api/status
  const auto status = Curl({"--fail", base + "/api/status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto st = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_TRUE(st.is_object()) << status.out;
  EXPECT_EQ(st["pid"], agent.pid());
  EXPECT_EQ(st["listen"], "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(st["healthy"], true);
  EXPECT_GE(st["spans"].get<int64_t>(), 1);
  EXPECT_TRUE(st["drops"].is_object());

  // Everything else is refused, and the agent is fine.
  EXPECT_EQ(Curl({"-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", base + "/metrics"}).out,
            "405");
  EXPECT_EQ(Curl({"-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/nope"}).out, "404");

  // Let the curl spans of the scrapes leave the trace window, then stop.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& s : ReadSpans(agent.SpansPath())) {
          if (s.kind == kClient && s.Int("server.port") == port && s.name == "GET /nope") return true;
        }
        return false;
      },
      std::chrono::seconds(30)))
      << "curl's own CLIENT spans to the endpoint are traced like any other traffic\n"
      << agent.Logs();
  py.Stop(SIGTERM, std::chrono::seconds(5));
  ExpectCleanStop(agent);
  std::filesystem::remove_all(dir);

  const std::string self = std::to_string(agent.pid());
  size_t client_spans = 0;
  for (const auto& s : ReadSpans(agent.SpansPath())) {
    const auto pid = s.resource.find("process.pid");
    ASSERT_NE(pid, s.resource.end());
    EXPECT_NE(pid->second.value("intValue", ""), self) << "a span of kspan itself: " << s.name;
    if (s.Int("server.port") != port) continue;
    EXPECT_NE(s.kind, kServer) << "kspan's side of its own endpoint was traced: " << s.name;
    if (s.kind == kClient) {
      ++client_spans;
      EXPECT_EQ(s.ResourceStr("service.name"), "curl");
      EXPECT_TRUE(s.parent_span_id.empty()) << "no SERVER span of kspan to pair with";
    }
  }
  // Seven requests were made; under heavy load a span may be lost (its events dropped and
  // counted), so only the last one, waited for above, is required.
  EXPECT_GE(client_spans, 1u);
  // The endpoint's own counters are in the stop line too.
  EXPECT_GE(agent.StoppedCounter("kspan_http_requests_total{path=\"/metrics\",code=\"200\"}"), 2);
  EXPECT_EQ(agent.StoppedCounter("kspan_http_requests_total{path=\"/metrics\",code=\"405\"}"), 1);
}

// Without --listen only the web UI listens (docs/ui.md), on 127.0.0.1:9464 and nowhere
// else; when that port is taken it is a warning, not a failure. --ui false: no socket.
TEST(StatusEndpoint, OnlyTheUiOnLoopbackByDefaultAndNoSocketWithoutIt) {
  {
    KspanAgent agent;
    ASSERT_TRUE(agent.Start()) << agent.Logs();
    const std::string logs = agent.Logs();
    const bool listening = logs.find("\"msg\":\"listening\"") != std::string::npos;
    const bool taken = logs.find("\"msg\":\"no web UI\"") != std::string::npos;
    EXPECT_TRUE(listening != taken) << logs;
    if (listening) {
      EXPECT_NE(logs.find("\"address\":\"127.0.0.1:9464\""), std::string::npos) << logs;
      EXPECT_NE(logs.find("\"url\":\"http://127.0.0.1:9464/\""), std::string::npos) << logs;
    }
    ExpectCleanStop(agent);
  }
  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--ui", "false"})) << agent.Logs();
  EXPECT_EQ(agent.Logs().find("\"msg\":\"listening\""), std::string::npos);
  ExpectCleanStop(agent);
}

}  // namespace
}  // namespace kspan::testing
