// The Prometheus text exposition of the registry: exact text for a small registry, the
// escaping rules, histogram buckets, and a round trip through a parser we did not write
// (python3-prometheus-client's, installed by scripts/install-deps.sh).
#include "common/prometheus.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "testing/subprocess.h"

namespace kspan::metrics {
namespace {

TEST(PrometheusText, EmptyRegistryIsEmpty) {
  Registry r;
  EXPECT_EQ(PrometheusText(r), "");
}

TEST(PrometheusText, CountersGroupedByNameWithOneHeaderEach) {
  Registry r;
  r.GetCounter("kspan_spans_total")->Add(42);
  r.GetCounter("kspan_events_total", {{"type", "data"}})->Add(7);
  r.GetCounter("kspan_events_total", {{"type", "conn_open"}})->Add(2);
  r.GetCounter("kspan_exporter_queue_spans", {{"exporter", "otlp"}})->Set(5);
  EXPECT_EQ(PrometheusText(r),
            "# HELP kspan_events_total Kernel events handled, by type.\n"
            "# TYPE kspan_events_total counter\n"
            "kspan_events_total{type=\"conn_open\"} 2\n"
            "kspan_events_total{type=\"data\"} 7\n"
            "# HELP kspan_exporter_queue_spans Spans queued in a network exporter, plus the batch in hand.\n"
            "# TYPE kspan_exporter_queue_spans gauge\n"
            "kspan_exporter_queue_spans{exporter=\"otlp\"} 5\n"
            "# HELP kspan_spans_total Spans built from traced traffic.\n"
            "# TYPE kspan_spans_total counter\n"
            "kspan_spans_total 42\n");
}

TEST(PrometheusText, HistogramBucketsAreCumulativeAndEndWithInf) {
  Registry r;
  Histogram* h = r.GetHistogram("kspan_agent_graph_duration_seconds", {{"from", "a"}}, {0.5, 1, 1e6});
  for (double v : {0.25, 0.5, 0.75, 2.0, 5e6}) h->Record(v);
  EXPECT_EQ(PrometheusText(r),
            "# HELP kspan_agent_graph_duration_seconds Duration of the calls on each agent call graph edge.\n"
            "# TYPE kspan_agent_graph_duration_seconds histogram\n"
            "kspan_agent_graph_duration_seconds_bucket{from=\"a\",le=\"0.5\"} 2\n"
            "kspan_agent_graph_duration_seconds_bucket{from=\"a\",le=\"1\"} 3\n"
            "kspan_agent_graph_duration_seconds_bucket{from=\"a\",le=\"1e+06\"} 4\n"
            "kspan_agent_graph_duration_seconds_bucket{from=\"a\",le=\"+Inf\"} 5\n"
            "kspan_agent_graph_duration_seconds_sum{from=\"a\"} 5000003.5\n"
            "kspan_agent_graph_duration_seconds_count{from=\"a\"} 5\n");
}

TEST(PrometheusText, EmptyHistogramStillHasInfBucket) {
  Registry r;
  r.GetHistogram("h_seconds", {}, {1});
  EXPECT_EQ(PrometheusText(r),
            "# HELP h_seconds kspan metric (no description yet).\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"1\"} 0\n"
            "h_seconds_bucket{le=\"+Inf\"} 0\n"
            "h_seconds_sum 0\n"
            "h_seconds_count 0\n");
}

TEST(PrometheusText, UnknownNamesAreCountersOnlyWhenTheyEndInTotal) {
  EXPECT_EQ(MetricInfo("something_total").type, "counter");
  EXPECT_EQ(MetricInfo("something").type, "untyped");
  EXPECT_EQ(MetricInfo("kspan_kernel_counter").type, "counter");
  EXPECT_EQ(MetricInfo("kspan_exporter_queue_spans").type, "gauge");
}

TEST(PrometheusText, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b"), "a\\\"b");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("a\nb"), "a\\nb");
  EXPECT_EQ(EscapeLabelValue("gpt-4o \xE2\x9C\x93"), "gpt-4o \xE2\x9C\x93");  // valid UTF-8 kept
  EXPECT_EQ(EscapeLabelValue("x\xFFy"), "x\xEF\xBF\xBDy");                    // invalid: U+FFFD
  EXPECT_EQ(EscapeLabelValue("\xE2\x9C"), "\xEF\xBF\xBD\xEF\xBF\xBD");        // cut short
  EXPECT_EQ(EscapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d");
}

TEST(PrometheusText, NamesAreSanitized) {
  EXPECT_EQ(SanitizeName("kspan_spans_total", false), "kspan_spans_total");
  EXPECT_EQ(SanitizeName("a.b-c:d", false), "a_b_c:d");
  EXPECT_EQ(SanitizeName("a.b-c:d", true), "a_b_c_d");
  EXPECT_EQ(SanitizeName("1abc", true), "_1abc");
  EXPECT_EQ(SanitizeName("", true), "_");
}

TEST(PrometheusText, Values) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

// Every metric name the daemon registers (a literal GetCounter/GetHistogram argument in
// userspace/) has a type and help text, so /metrics never says "no description yet".
TEST(PrometheusText, EveryRegisteredNameIsDescribed) {
  const std::regex call(R"re(Get(Counter|Histogram)\(\s*"([A-Za-z0-9_:]+)")re");
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(KSPAN_SOURCE_DIR "/userspace")) {
    if (entry.path().extension() != ".cc") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    for (auto it = std::sregex_iterator(text.begin(), text.end(), call); it != std::sregex_iterator(); ++it) {
      names.insert((*it)[2].str());
      const MetricDescription info = MetricInfo((*it)[2].str());
      if ((*it)[1].str() == "Histogram") {
        EXPECT_EQ(info.type, "histogram") << (*it)[2].str();
      } else {
        EXPECT_NE(info.type, "histogram") << (*it)[2].str();
      }
    }
  }
  EXPECT_GT(names.size(), 30u) << "the source scan found too few names";
  for (const std::string& n : names) EXPECT_TRUE(HasMetricInfo(n)) << n << " has no entry in prometheus.cc";
}

// The output read back by python3-prometheus-client's parser: every family typed as we
// declared it, no sample outside its family, label values (quotes, backslashes, line
// feeds, UTF-8, bad bytes) decoded back to what they were.
TEST(PrometheusText, ThirdPartyParserReadsItBack) {
  Registry r;
  r.GetCounter("kspan_spans_total")->Add(3);
  r.GetCounter("kspan_tls_not_captured_total", {{"binary", "we\"ird\\na\nme \xE2\x9C\x93"}, {"reason", "x"}})
      ->Add(1);
  r.GetCounter("kspan_exporter_queue_spans", {{"exporter", "otlp"}})->Set(9);
  r.GetCounter("kspan_kernel_counter", {{"name", "events"}})->Set(100);
  Histogram* h = r.GetHistogram("gen_ai_client_token_usage", {{"gen_ai_request_model", "m\xFF"}}, {1, 4, 16});
  h->Record(3);
  h->Record(100);
  const std::string text = PrometheusText(r);

  const std::string dir = testing::MakeTempDir("kspan-prom-");
  std::ofstream(dir + "/metrics.txt") << text;
  const std::string script =
      "import json, sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "out = []\n"
      "for f in text_string_to_metric_families(open(sys.argv[1], encoding='utf-8').read()):\n"
      "    out.append({'name': f.name, 'type': f.type, 'help': f.documentation,\n"
      "                'samples': [[s.name, s.labels, s.value] for s in f.samples]})\n"
      "print(json.dumps(out))\n";
  std::ofstream(dir + "/parse.py") << script;
  const auto res = testing::RunCommand({"/usr/bin/python3", dir + "/parse.py", dir + "/metrics.txt"},
                                       std::chrono::seconds(30));
  std::filesystem::remove_all(dir);
  ASSERT_EQ(res.exit_code, 0) << "python3-prometheus-client could not parse (is it installed? "
                                 "scripts/install-deps.sh installs it):\n"
                              << res.err << "\n"
                              << text;
  const auto families = nlohmann::json::parse(res.out);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& f : families) by_name[f["name"].get<std::string>()] = f;
  // The parser names a counter family without _total, and yields a sample that does not
  // belong to the family before it as an untyped family of its own: none may appear.
  ASSERT_EQ(by_name.size(), 5u) << families.dump(1);
  EXPECT_EQ(by_name["kspan_spans"]["type"], "counter");
  EXPECT_EQ(by_name["kspan_spans"]["samples"][0][2], 3.0);
  EXPECT_EQ(by_name["kspan_spans"]["help"], "Spans built from traced traffic.");
  EXPECT_EQ(by_name["kspan_exporter_queue_spans"]["type"], "gauge");
  EXPECT_EQ(by_name["kspan_kernel_counter"]["type"], "counter");
  const auto& tls = by_name["kspan_tls_not_captured"];
  EXPECT_EQ(tls["type"], "counter");
  EXPECT_EQ(tls["samples"][0][1]["binary"], "we\"ird\\na\nme \xE2\x9C\x93");
  const auto& hist = by_name["gen_ai_client_token_usage"];
  EXPECT_EQ(hist["type"], "histogram");
  ASSERT_EQ(hist["samples"].size(), 6u) << hist.dump(1);  // 3 bounds + Inf, sum, count
  EXPECT_EQ(hist["samples"][0][1]["gen_ai_request_model"], "m\xEF\xBF\xBD");
  EXPECT_EQ(hist["samples"][3][1]["le"], "+Inf");
  EXPECT_EQ(hist["samples"][3][2], 2.0);
  EXPECT_EQ(hist["samples"][4][0], "gen_ai_client_token_usage_sum");
  EXPECT_EQ(hist["samples"][4][2], 103.0);
}

}  // namespace
}  // namespace kspan::metrics
