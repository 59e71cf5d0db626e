// Span metrics and the service graph end to end (docs/metrics.md, issue 20's acceptance 5
// and 6): a real two-tier python service on loopback, a real python client, kspan with a
// 0.25 head sampler, its /metrics page (read by python3-prometheus-client and checked by
// promtool) and its OTLP metrics (received by tests/receivers/otlp_receiver.js and decoded
// by the OpenTelemetry JS SDK's own protobuf types). The metrics are computed before
// sampling: they count every request, while a quarter of the traces are exported.
//
//   paced_client.py ──► front (sampling_tier.py) ──► back (sampling_tier.py)
//   service m-client-P   m-front-P                    m-back-P      (P: this test's pid)
//
// Every count is of this test's own service names (other traffic on the host is traced too).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";
const std::string kReceivers = std::string(KSPAN_SOURCE_DIR) + "/tests/receivers";

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

// /metrics through python3-prometheus-client: [[sample name, {labels}, value, exemplar],
// ...], the exemplar [{labels}, value] or null. `openmetrics`: its OpenMetrics parser (the
// only one that reads exemplars) instead of the classic text's.
nlohmann::json ParseWithPrometheusClient(const std::string& text, bool openmetrics = false) {
  const std::string dir = MakeTempDir("kspan-metrics-it-");
  std::ofstream(dir + "/metrics.txt") << text;
  std::ofstream(dir + "/parse.py")
      << "import json, sys\n"
      << (openmetrics ? "from prometheus_client.openmetrics.parser import text_string_to_metric_families\n"
                      : "from prometheus_client.parser import text_string_to_metric_families\n")
      << "out = []\n"
         "for f in text_string_to_metric_families(open(sys.argv[1], encoding='utf-8').read()):\n"
         "    out += [[s.name, s.labels, s.value,\n"
         "             [s.exemplar.labels, s.exemplar.value] if s.exemplar else None] for s in f.samples]\n"
         "print(json.dumps(out))\n";
  const auto r =
      RunCommand({"/usr/bin/python3", dir + "/parse.py", dir + "/metrics.txt"}, std::chrono::seconds(30));
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.exit_code, 0) << "python3-prometheus-client could not parse /metrics"
                            << (openmetrics ? " (OpenMetrics)" : "") << ":\n"
                            << r.err;
  return nlohmann::json::parse(r.out, nullptr, false);
}

// The sum of the samples named `name` whose labels include every pair of `match`.
double PromSum(const nlohmann::json& samples, const std::string& name,
               const std::map<std::string, std::string>& match) {
  double sum = 0;
  if (!samples.is_array()) return -1;
  for (const auto& s : samples) {
    if (s[0] != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) ok = ok && s[1].value(k, std::string("\x01")) == v;
    if (ok) sum += s[2].get<double>();
  }
  return sum;
}

// /metrics asked for as OpenMetrics: read by python3-prometheus-client's OpenMetrics
// parser, the same count as the classic page, and exemplars on the front's server
// histogram: at most one a bucket, only in buckets that counted requests, each with a
// valid trace id and span id and a value inside its bucket.
void ExpectOpenMetricsExemplars(int listen, const std::string& service, int requests) {
  const auto scrape =
      RunCommand({"curl", "-sS", "--max-time", "10", "-D", "/dev/stderr", "-H",
                  "Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3",
                  "http://127.0.0.1:" + std::to_string(listen) + "/metrics"},
                 std::chrono::seconds(20));
  ASSERT_EQ(scrape.exit_code, 0) << scrape.err;
  EXPECT_NE(scrape.err.find("application/openmetrics-text; version=1.0.0"), std::string::npos) << scrape.err;
  const nlohmann::json samples = ParseWithPrometheusClient(scrape.out, /*openmetrics=*/true);
  ASSERT_TRUE(samples.is_array());
  EXPECT_EQ(PromSum(samples, "http_server_request_duration_seconds_count", {{"service_name", service}}),
            requests);
  // Buckets of the front's server series, in order: (le, cumulative count, exemplar).
  int exemplars = 0;
  double previous_le = 0, previous_count = 0;
  const std::regex hex32("[0-9a-f]{32}"), hex16("[0-9a-f]{16}");
  for (const auto& s : samples) {
    if (s[0] != "http_server_request_duration_seconds_bucket" || s[1].value("service_name", "") != service)
      continue;
    const double le = std::stod(s[1]["le"].get<std::string>());
    const double count = s[2].get<double>();
    if (!s[3].is_null()) {
      ++exemplars;
      EXPECT_GT(count, previous_count) << "an exemplar in a bucket that counted nothing: " << s.dump();
      const std::string trace = s[3][0].value("trace_id", ""), span = s[3][0].value("span_id", "");
      EXPECT_TRUE(std::regex_match(trace, hex32) && trace != std::string(32, '0')) << s.dump();
      EXPECT_TRUE(std::regex_match(span, hex16) && span != std::string(16, '0')) << s.dump();
      const double v = s[3][1].get<double>();
      EXPECT_TRUE(v > previous_le && v <= le) << "exemplar value outside its bucket: " << s.dump();
    }
    previous_le = le;
    previous_count = count;
  }
  EXPECT_GE(exemplars, 1) << scrape.out.substr(0, 4000);
}

std::string AttrStr(const nlohmann::json& attributes, const std::string& key) {
  for (const auto& kv : attributes) {
    if (kv.value("key", "") == key && kv.contains("value")) return kv["value"].value("stringValue", "");
  }
  return "";
}

// In one decoded ExportMetricsServiceRequest: the sum over the data points of metric
// `name` (histogram counts, or sum values) under resources whose service.name is
// `service` ("" = any), whose attributes include `match`.
double OtlpSum(const nlohmann::json& request, const std::string& name, const std::string& service,
               const std::map<std::string, std::string>& match, int temporality) {
  double sum = 0;
  for (const auto& rm : request.value("resourceMetrics", nlohmann::json::array())) {
    const nlohmann::json attrs = rm.contains("resource")
                                     ? rm["resource"].value("attributes", nlohmann::json::array())
                                     : nlohmann::json::array();
    if (!service.empty() && AttrStr(attrs, "service.name") != service) continue;
    for (const auto& sm : rm.value("scopeMetrics", nlohmann::json::array())) {
      for (const auto& m : sm.value("metrics", nlohmann::json::array())) {
        if (m.value("name", "") != name) continue;
        const bool histogram = m.contains("histogram");
        const nlohmann::json& data = histogram ? m["histogram"] : m["sum"];
        EXPECT_EQ(data.value("aggregationTemporality", 0), temporality) << name << ": 1 delta, 2 cumulative";
        for (const auto& p : data.value("dataPoints", nlohmann::json::array())) {
          bool ok = true;
          for (const auto& [k, v] : match) {
            ok = ok && AttrStr(p.value("attributes", nlohmann::json::array()), k) == v;
          }
          if (!ok) continue;
          // protobufjs leaves out fields at their default: a zero count or value.
          const char* key = histogram ? "count" : "asInt";
          if (!p.contains(key)) continue;
          const nlohmann::json& v = p[key];
          sum += v.is_string() ? std::stod(v.get<std::string>()) : v.get<double>();
        }
      }
    }
  }
  return sum;
}

// The parameter: OTLP temporality (delta or cumulative) and protocol (HTTP or gRPC).
struct MetricsExport {
  bool delta = false;
  bool grpc = false;
};
class SpanMetrics : public ::testing::TestWithParam<MetricsExport> {};

TEST_P(SpanMetrics, CountEveryRequestBeforeSamplingOnMetricsAndOverOtlp) {
  const bool delta = GetParam().delta;
  const bool grpc = GetParam().grpc;
  ASSERT_TRUE(std::filesystem::exists(kReceivers + "/node_modules/@opentelemetry/otlp-transformer"))
      << "tests/receivers/node_modules is missing: run scripts/install-deps.sh";
  const std::string pid = std::to_string(getpid());
  const std::string client_svc = "m-client-" + pid, front_svc = "m-front-" + pid, back_svc = "m-back-" + pid;
  const std::string dir = MakeTempDir("kspan-metrics-");

  // The OTLP metrics receiver.
  const int receiver_port = FreePort();
  Subprocess receiver;
  ASSERT_TRUE(receiver.Start({"node", kReceivers + "/otlp_receiver.js", "--protocol",
                              grpc ? "metrics-grpc" : "metrics", "--port", std::to_string(receiver_port),
                              "--out", dir + "/metrics.jsonl"}));
  ASSERT_TRUE(WaitFor([&] { return receiver.Stdout().find("listening") != std::string::npos; },
                      std::chrono::seconds(20)))
      << receiver.Stderr();

  KspanAgent agent;
  std::vector<std::string> args = {
      "--listen", "127.0.0.1:0",           "--metrics-exporter",          "otlp", "--metrics-interval-ms",
      "1000",     "--metrics-temporality", delta ? "delta" : "cumulative"};
  const std::string receiver_url = "http://127.0.0.1:" + std::to_string(receiver_port);
  if (grpc) {
    // Over gRPC the metrics go to --otlp-endpoint as it is (the traces stay in the file).
    args.insert(args.end(), {"--otlp-protocol", "grpc", "--otlp-endpoint", receiver_url});
  } else {
    args.insert(args.end(), {"--otlp-metrics-endpoint", receiver_url + "/v1/metrics"});
  }
  ASSERT_TRUE(
      agent.Start(args, {{"OTEL_TRACES_SAMPLER", "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "0.25"}}))
      << agent.Logs();
  const int listen = ListenPort(agent.Logs());
  ASSERT_GT(listen, 0) << agent.Logs();

  const int front = FreePort(), back = FreePort();
  std::vector<std::unique_ptr<Subprocess>> apps;
  auto start_app = [&](const std::string& service, const std::vector<std::string>& argv) {
    apps.push_back(std::make_unique<Subprocess>());
    Subprocess& p = *apps.back();
    EXPECT_TRUE(p.Start(argv, {{"OTEL_SERVICE_NAME", service}}));
    return WaitFor([&] { return p.Stdout().find("ready") != std::string::npos || !p.Running(); },
                   std::chrono::seconds(10)) &&
           p.Running();
  };
  ASSERT_TRUE(start_app(back_svc, {"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(back)}));
  ASSERT_TRUE(start_app(front_svc, {"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(front),
                                    "http://127.0.0.1:" + std::to_string(back)}));

  constexpr int kRequests = 400;
  Subprocess client;
  ASSERT_TRUE(client.Start({"/usr/bin/python3", kApps + "paced_client.py", std::to_string(front), "/m",
                            std::to_string(kRequests), "200"},
                           {{"OTEL_SERVICE_NAME", client_svc}}));
  client.Wait(std::chrono::seconds(60));
  ASSERT_EQ(client.Stdout().substr(0, client.Stdout().find(" seconds")),
            "sent " + std::to_string(kRequests) + " ok " + std::to_string(kRequests))
      << client.Stderr();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the 500 ms window, and slack

  // /metrics: parsed by a parser we did not write, and checked by promtool.
  const auto scrape = RunCommand(
      {"curl", "-sS", "--max-time", "10", "http://127.0.0.1:" + std::to_string(listen) + "/metrics"},
      std::chrono::seconds(20));
  ASSERT_EQ(scrape.exit_code, 0) << scrape.err;
  const std::string text = scrape.out;
  {
    std::ofstream(dir + "/scrape.txt") << text;
    const auto check = RunCommand({"/bin/sh", "-c", "promtool check metrics < " + dir + "/scrape.txt"},
                                  std::chrono::seconds(30));
    // Exit 1 is a text it cannot parse; 3 is lint advice, of which there must be none.
    EXPECT_EQ(check.exit_code, 0) << "promtool on /metrics:\n" << check.out << check.err;
    std::istringstream lines(check.out + check.err);
    std::string line;
    while (std::getline(lines, line)) EXPECT_TRUE(line.empty()) << "promtool: " << line;
  }
  const nlohmann::json samples = ParseWithPrometheusClient(text);
  ExpectOpenMetricsExemplars(listen, front_svc, kRequests);
  auto prom = [&](const std::string& name, const std::map<std::string, std::string>& match) {
    return PromSum(samples, name, match);
  };
  EXPECT_EQ(prom("http_server_request_duration_seconds_count", {{"service_name", front_svc}}), kRequests);
  EXPECT_EQ(prom("http_server_request_duration_seconds_count", {{"service_name", back_svc}}), kRequests);
  EXPECT_EQ(prom("http_client_request_duration_seconds_count", {{"service_name", client_svc}}), kRequests);
  EXPECT_EQ(prom("http_client_request_duration_seconds_count",
                 {{"service_name", front_svc}, {"server_port", std::to_string(back)}}),
            kRequests);
  EXPECT_EQ(prom("http_server_request_duration_seconds_count", {{"service_name", front_svc},
                                                                {"http_request_method", "GET"},
                                                                {"http_response_status_code", "200"}}),
            kRequests);
  const std::map<std::string, std::string> edge1 = {{"client", client_svc}, {"server", front_svc}};
  const std::map<std::string, std::string> edge2 = {{"client", front_svc}, {"server", back_svc}};
  // What the stitcher and the graph made of the traffic, for a failure's message.
  std::string why;
  for (const auto& s : samples) {
    const std::string name = s[0].get<std::string>();
    if ((name.rfind("kspan_stitch_", 0) == 0 || name.rfind("kspan_service_graph_", 0) == 0 ||
         name == "kspan_drops_total" || name == "kspan_stream_gaps_total" ||
         (name == "traces_service_graph_request_total" &&
          (s[1].value("client", "") == client_svc || s[1].value("client", "") == front_svc))) &&
        s[2].get<double>() > 0) {
      why += "\n  " + name + s[1].dump() + " " + std::to_string(s[2].get<double>());
    }
  }
  EXPECT_EQ(prom("traces_service_graph_request_total", edge1), kRequests) << why;
  EXPECT_EQ(prom("traces_service_graph_request_total", edge2), kRequests) << why;
  EXPECT_EQ(prom("traces_service_graph_request_failed_total", edge1), 0);
  EXPECT_EQ(prom("traces_service_graph_request_server_seconds_count", edge2), kRequests);
  EXPECT_EQ(prom("traces_service_graph_request_client_seconds_count", edge2), kRequests);
  // One edge per pair: no other edge names these services as the server.
  for (const std::string& server : {front_svc, back_svc}) {
    int edges = 0;
    for (const auto& s : samples) {
      if (s[0] == "traces_service_graph_request_total" && s[1].value("server", "") == server) ++edges;
    }
    EXPECT_EQ(edges, 1) << "edges into " << server;
  }

  ExpectCleanStop(agent);  // the last OTLP export goes out at exit
  receiver.Stop(SIGTERM, std::chrono::seconds(10));

  // Sampling did happen: about a quarter of the front's SERVER spans were exported.
  int exported = 0;
  for (const FlatSpan& s : ReadSpans(agent.SpansPath())) {
    if (s.kind == 2 && s.Int("server.port") == front) ++exported;
  }
  EXPECT_GT(exported, 0);
  EXPECT_LT(exported, kRequests / 2) << "a 0.25 sampler exported most traces";

  // OTLP: cumulative, the last request holds the totals; delta, the requests add up to them.
  std::ifstream in(dir + "/metrics.jsonl");
  std::string line;
  std::vector<nlohmann::json> received;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    received.push_back(nlohmann::json::parse(line, nullptr, false));
    ASSERT_TRUE(received.back().is_object()) << line;
  }
  const int requests = static_cast<int>(received.size());
  ASSERT_GE(requests, 2) << "at the 1 s interval and at exit";
  auto otlp = [&](const std::string& name, const std::string& service,
                  const std::map<std::string, std::string>& match) {
    if (!delta) return OtlpSum(received.back(), name, service, match, 2);
    double sum = 0;
    for (const nlohmann::json& r : received) sum += OtlpSum(r, name, service, match, 1);
    return sum;
  };
  EXPECT_EQ(otlp("http.server.request.duration", front_svc, {}), kRequests);
  EXPECT_EQ(otlp("http.server.request.duration", back_svc, {}), kRequests);
  EXPECT_EQ(otlp("http.client.request.duration", client_svc, {}), kRequests);
  EXPECT_EQ(otlp("http.client.request.duration", front_svc, {}), kRequests);
  EXPECT_EQ(otlp("traces_service_graph_request_total", "", edge1), kRequests);
  EXPECT_EQ(otlp("traces_service_graph_request_total", "", edge2), kRequests);
  EXPECT_EQ(otlp("traces_service_graph_request_failed_total", "", edge2), 0);
  EXPECT_EQ(otlp("traces_service_graph_request_server_seconds", "", edge2), kRequests);
  // Exemplars in the decoded OTLP points of the front's server histogram: one a bucket at
  // most, 16-byte trace ids and 8-byte span ids (base64 in the decoder's JSON).
  int otlp_exemplars = 0;
  for (const nlohmann::json& r : received) {
    for (const auto& rm : r.value("resourceMetrics", nlohmann::json::array())) {
      if (!rm.contains("resource") ||
          AttrStr(rm["resource"].value("attributes", nlohmann::json::array()), "service.name") != front_svc)
        continue;
      for (const auto& sm : rm.value("scopeMetrics", nlohmann::json::array())) {
        for (const auto& m : sm.value("metrics", nlohmann::json::array())) {
          if (m.value("name", "") != "http.server.request.duration") continue;
          for (const auto& p : m["histogram"].value("dataPoints", nlohmann::json::array())) {
            const auto ex = p.value("exemplars", nlohmann::json::array());
            EXPECT_LE(ex.size(), p.value("bucketCounts", nlohmann::json::array()).size());
            for (const auto& e : ex) {
              ++otlp_exemplars;
              EXPECT_EQ(e.value("traceId", "").size(), 24u) << e.dump();  // base64 of 16 bytes
              EXPECT_EQ(e.value("spanId", "").size(), 12u) << e.dump();   // base64 of 8 bytes
              EXPECT_GT(e.value("asDouble", 0.0), 0.0) << e.dump();
              EXPECT_TRUE(e.contains("timeUnixNano")) << e.dump();
            }
          }
        }
      }
    }
  }
  EXPECT_GE(otlp_exemplars, 1);
  EXPECT_GE(agent.StoppedCounter("kspan_metrics_export_requests_total{result=\"sent\"}"), 2);
  EXPECT_EQ(agent.StoppedCounter("kspan_metrics_export_requests_total{result=\"failed\"}"), 0);
  std::cout << kRequests << " requests: " << exported << " front SERVER spans exported at 0.25; /metrics and "
            << requests << (delta ? " delta" : " cumulative")
            << " OTLP metrics requests counted every request\n";
  apps.clear();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Temporality, SpanMetrics,
                         ::testing::Values(MetricsExport{.delta = false}, MetricsExport{.delta = true},
                                           MetricsExport{.delta = false, .grpc = true}),
                         [](const ::testing::TestParamInfo<MetricsExport>& info) {
                           return std::string(info.param.delta ? "Delta" : "Cumulative") +
                                  (info.param.grpc ? "OverGrpc" : "");
                         });

}  // namespace
}  // namespace kspan::testing
