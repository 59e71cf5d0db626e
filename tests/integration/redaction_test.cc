// Redaction end to end (docs/sampling.md "Enrichment and redaction", issue 20): real curl
// requests carrying secrets to a real python server, kspan with a custom --redact pattern
// and the default --redact-secrets. No secret may appear anywhere kspan writes: the
// exported OTLP/JSON file, the trace store behind the UI's API, /metrics (span metrics and
// the service graph, whose node a second server's secret-bearing name is) or its log; the
// redacted spans must still be there (with REDACTED where the secrets were), and
// kspan_redactions_total must count the rules' work.
//
//   curl ──(Authorization: Bearer …, ?api_key=…, /orders/cust-NNNNNN/…, /keys/sk-proj-…)──► sampling_tier.py
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";

double PromValue(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

TEST(Redaction, SecretsAndPatternsLeaveNoTraceInAnyOutputOfRealTraffic) {
  const std::string pid = std::to_string(getpid());
  const std::string service = "redact-" + pid;
  // Secrets, each unique to this run so a match can only come from this test's traffic.
  const std::string bearer = "kspanBearer" + pid + "Zq9xY7wV5uT3sR1p";  // header only
  const std::string basic_user = "kspanuser" + pid, basic_pass = "kspanPass" + pid + "Xy";
  const std::string query_key = "kspanQueryKey" + pid + "Qw3Er5Ty";  // ?api_key=
  const std::string customer = "cust-" + std::string(6 - std::min<size_t>(6, pid.size()), '0') +
                               pid.substr(pid.size() > 6 ? pid.size() - 6 : 0);  // --redact
  const std::string vendor_key = "sk-proj-kspan" + pid + "AbCdEfGhIjKlMnOp";     // secrets rule
  const std::string pattern = "cust-[0-9]{6}";

  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--listen", "127.0.0.1:0", "--redact", pattern})) << agent.Logs();
  const int listen = agent.ListenPort();
  ASSERT_GT(listen, 0) << agent.Logs();

  const int port = FreePort();
  Subprocess server;
  ASSERT_TRUE(server.Start({"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(port)},
                           {{"OTEL_SERVICE_NAME", service}}));
  ASSERT_TRUE(WaitFor([&] { return server.Stdout().find("ready") != std::string::npos || !server.Running(); },
                      std::chrono::seconds(10)))
      << server.Stderr();

  // A second server whose service name holds the customer id: its name is a node of the
  // service graph, whose labels must be redacted as span metrics' are.
  const int port2 = FreePort();
  Subprocess tier;
  ASSERT_TRUE(tier.Start({"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(port2)},
                         {{"OTEL_SERVICE_NAME", "tier-" + customer}}));
  ASSERT_TRUE(WaitFor([&] { return tier.Stdout().find("ready") != std::string::npos || !tier.Running(); },
                      std::chrono::seconds(10)))
      << tier.Stderr();

  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  const std::vector<std::vector<std::string>> requests = {
      {"-H", "Authorization: Bearer " + bearer,
       base + "/orders/" + customer + "/items?api_key=" + query_key + "&page=2"},
      {"-u", basic_user + ":" + basic_pass, base + "/keys/" + vendor_key},
      {"-H", "X-Api-Key: " + query_key, base + "/plain"},
      {"http://127.0.0.1:" + std::to_string(port2) + "/tier"},
  };
  for (const auto& r : requests) {
    std::vector<std::string> argv = {"curl", "-sS",       "--max-time", "10",
                                     "-o",   "/dev/null", "-w",         "%{http_code}"};
    argv.insert(argv.end(), r.begin(), r.end());
    const auto out = RunCommand(argv, std::chrono::seconds(20));
    ASSERT_EQ(out.exit_code, 0) << out.err;
    EXPECT_EQ(out.out, "200") << r.back();
  }

  // The server's three SERVER spans in the file (their traces left the window).
  std::vector<FlatSpan> mine;
  ASSERT_TRUE(WaitFor(
      [&] {
        mine.clear();
        for (const FlatSpan& s : ReadSpans(agent.SpansPath())) {
          if (s.ResourceStr("service.name") == service && s.kind == 2) mine.push_back(s);
        }
        return mine.size() >= 3;
      },
      std::chrono::seconds(20)))
      << mine.size() << " SERVER spans of " << service;
  std::map<std::string, const FlatSpan*> by_path;
  for (const FlatSpan& s : mine) by_path[s.Str("url.path")] = &s;
  ASSERT_TRUE(by_path.count("/orders/REDACTED/items")) << "the --redact pattern in the path";
  ASSERT_TRUE(by_path.count("/keys/REDACTED")) << "the vendor API key in the path (--redact-secrets)";
  ASSERT_TRUE(by_path.count("/plain"));
  const FlatSpan& orders = *by_path["/orders/REDACTED/items"];
  EXPECT_EQ(orders.Str("url.query").find(query_key), std::string::npos) << orders.Str("url.query");
  EXPECT_NE(orders.Str("url.query").find("api_key=REDACTED"), std::string::npos) << orders.Str("url.query");
  EXPECT_EQ(orders.name.find(customer), std::string::npos) << orders.name;

  // The trace store, through the UI's API: the same spans, as redacted.
  const std::string api = "http://127.0.0.1:" + std::to_string(listen) + "/api/traces?service=" + service;
  std::string stored;
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto r = RunCommand({"curl", "-sS", "--max-time", "5", api}, std::chrono::seconds(10));
        stored = r.out;
        const nlohmann::json j = nlohmann::json::parse(stored, nullptr, false);
        return r.exit_code == 0 && j.is_object() && j.contains("data") && j["data"].size() >= 3;
      },
      std::chrono::seconds(20)))
      << stored.substr(0, 2000);
  EXPECT_NE(stored.find("/orders/REDACTED/items"), std::string::npos) << stored.substr(0, 2000);

  // The service graph's edge to the second server, named as redacted.
  std::string metrics;
  ASSERT_TRUE(WaitFor(
      [&] {
        metrics = agent.ScrapeMetrics();
        return metrics.find("traces_service_graph_request_total{") != std::string::npos &&
               metrics.find("server=\"tier-REDACTED\"") != std::string::npos;
      },
      std::chrono::seconds(20)))
      << metrics;
  EXPECT_GE(PromValue(metrics, "kspan_redactions_total{rule=\"" + pattern + "\"}"), 1) << metrics;
  EXPECT_GE(PromValue(metrics, "kspan_redactions_total{rule=\"secrets\"}"), 1) << metrics;

  ExpectCleanStop(agent);
  server.Stop(SIGTERM, std::chrono::seconds(5));
  tier.Stop(SIGTERM, std::chrono::seconds(5));
  const std::string file = ReadFileOrEmpty(agent.SpansPath());
  ASSERT_FALSE(file.empty());
  // Nothing secret anywhere kspan wrote: the spans file (every span, the curl side's
  // CLIENT spans too), the store's answer, /metrics and the agent's log.
  const std::vector<std::string> secrets = {bearer, basic_user, basic_pass, query_key, customer, vendor_key};
  const std::string logs = agent.Logs();
  auto around = [](const std::string& text, size_t at) {
    return at == std::string::npos ? std::string() : text.substr(at > 300 ? at - 300 : 0, 400);
  };
  for (const std::string& secret : secrets) {
    EXPECT_EQ(file.find(secret), std::string::npos)
        << secret << " in the spans file: " << around(file, file.find(secret));
    EXPECT_EQ(stored.find(secret), std::string::npos)
        << secret << " in the store: " << around(stored, stored.find(secret));
    EXPECT_EQ(metrics.find(secret), std::string::npos)
        << secret << " on /metrics: " << around(metrics, metrics.find(secret));
    EXPECT_EQ(logs.find(secret), std::string::npos)
        << secret << " in the log: " << around(logs, logs.find(secret));
  }
  // The exit line counts the same rules.
  EXPECT_GE(agent.StoppedCounter("kspan_redactions_total{rule=\"secrets\"}"), 1);
  std::cout << mine.size() << " SERVER spans of " << service << " redacted; kspan_redactions_total: "
            << PromValue(metrics, "kspan_redactions_total{rule=\"secrets\"}") << " secrets, "
            << PromValue(metrics, "kspan_redactions_total{rule=\"" + pattern + "\"}") << " " << pattern
            << "\n";
}

}  // namespace
}  // namespace kspan::testing
