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
  EXPECT_EQ(MetricInfo("kspan_kernel_counts_total").type, "counter");
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
        // Prometheus' and OpenMetrics' rule, which the OpenMetrics family name relies on.
        if (info.type == "counter") EXPECT_TRUE((*it)[2].str().ends_with("_total")) << (*it)[2].str();
      }
    }
  }
  EXPECT_GT(names.size(), 30u) << "the source scan found too few names";
  for (const std::string& n : names) EXPECT_TRUE(HasMetricInfo(n)) << n << " has no entry in prometheus.cc";
}

// The metric families python3-prometheus-client reads from `text`, as JSON: [{name, type,
// help, samples: [[name, {labels}, value], ...]}]. `openmetrics`: its OpenMetrics parser,
// each sample with a fourth element, the exemplar [{labels}, value, [sec, nsec]] or null.
void ParseWithPrometheusClient(const std::string& text, bool openmetrics, nlohmann::json* families) {
  const std::string dir = testing::MakeTempDir(openmetrics ? "kspan-om-" : "kspan-prom-");
  std::ofstream(dir + "/metrics.txt") << text;
  std::ofstream(dir + "/parse.py")
      << "import json, sys\n"
      << (openmetrics ? "from prometheus_client.openmetrics.parser import text_string_to_metric_families\n"
                      : "from prometheus_client.parser import text_string_to_metric_families\n")
      << "def sample(s):\n"
         "    out = [s.name, s.labels, s.value]\n"
      << (openmetrics ? "    out.append([s.exemplar.labels, s.exemplar.value,\n"
                        "                [s.exemplar.timestamp.sec, s.exemplar.timestamp.nsec]]\n"
                        "               if s.exemplar else None)\n"
                      : "")
      << "    return out\n"
         "out = []\n"
         "for f in text_string_to_metric_families(open(sys.argv[1], encoding='utf-8').read()):\n"
         "    out.append({'name': f.name, 'type': f.type, 'help': f.documentation,\n"
         "                'samples': [sample(s) for s in f.samples]})\n"
         "print(json.dumps(out))\n";
  const auto res = testing::RunCommand({"/usr/bin/python3", dir + "/parse.py", dir + "/metrics.txt"},
                                       std::chrono::seconds(30));
  std::filesystem::remove_all(dir);
  ASSERT_EQ(res.exit_code, 0) << (openmetrics ? "python3-prometheus-client's OpenMetrics parser refused it:\n"
                                              : "python3-prometheus-client could not parse (is it installed? "
                                                "scripts/install-deps.sh installs it):\n")
                              << res.err << "\n"
                              << text;
  *families = nlohmann::json::parse(res.out);
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
  r.GetCounter("kspan_kernel_counts_total", {{"name", "events"}})->Set(100);
  Histogram* h = r.GetHistogram("gen_ai_client_token_usage", {{"gen_ai_request_model", "m\xFF"}}, {1, 4, 16});
  h->Record(3);
  h->Record(100);
  const std::string text = PrometheusText(r);

  nlohmann::json families;
  ASSERT_NO_FATAL_FAILURE(ParseWithPrometheusClient(text, /*openmetrics=*/false, &families));
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& f : families) by_name[f["name"].get<std::string>()] = f;
  // The parser names a counter family without _total, and yields a sample that does not
  // belong to the family before it as an untyped family of its own: none may appear.
  ASSERT_EQ(by_name.size(), 5u) << families.dump(1);
  EXPECT_EQ(by_name["kspan_spans"]["type"], "counter");
  EXPECT_EQ(by_name["kspan_spans"]["samples"][0][2], 3.0);
  EXPECT_EQ(by_name["kspan_spans"]["help"], "Spans built from traced traffic.");
  EXPECT_EQ(by_name["kspan_exporter_queue_spans"]["type"], "gauge");
  EXPECT_EQ(by_name["kspan_kernel_counts"]["type"], "counter");
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

// OpenMetrics 1.0.0: counter families without _total, unknown for untyped, canonical
// `le`, exemplars on the buckets that have one, and # EOF at the end.
TEST(OpenMetricsText, ExactTextWithExemplars) {
  Registry r;
  r.GetCounter("kspan_spans_total")->Add(3);
  r.GetCounter("kspan_kernel_counts_total", {{"name", "events"}})->Set(100);
  r.GetCounter("kspan_not_described")->Add(1);  // untyped: unknown
  Histogram* h = r.GetHistogram("http_server_request_duration_seconds", {{"service.name", "a"}}, {0.5, 1});
  Exemplar e;
  e.trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
  e.span_id = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
  e.time_unix_nano = 1733436000'123000000ULL;
  h->Record(0.25, e);
  h->Record(2);  // no exemplar for the +Inf bucket
  EXPECT_EQ(OpenMetricsText(r),
            "# HELP kspan_kernel_counts " + std::string(MetricInfo("kspan_kernel_counts_total").help) +
                "\n"
                "# TYPE kspan_kernel_counts counter\n"
                "kspan_kernel_counts_total{name=\"events\"} 100\n"
                "# HELP kspan_not_described kspan metric (no description yet).\n"
                "# TYPE kspan_not_described unknown\n"
                "kspan_not_described 1\n"
                "# HELP kspan_spans Spans built from traced traffic.\n"
                "# TYPE kspan_spans counter\n"
                "kspan_spans_total 3\n"
                "# HELP http_server_request_duration_seconds " +
                std::string(MetricInfo("http_server_request_duration_seconds").help) +
                "\n"
                "# TYPE http_server_request_duration_seconds histogram\n"
                "http_server_request_duration_seconds_bucket{service_name=\"a\",le=\"0.5\"} 1 # "
                "{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 0.25 "
                "1733436000.123000000\n"
                "http_server_request_duration_seconds_bucket{service_name=\"a\",le=\"1.0\"} 1\n"
                "http_server_request_duration_seconds_bucket{service_name=\"a\",le=\"+Inf\"} 2\n"
                "http_server_request_duration_seconds_sum{service_name=\"a\"} 2.25\n"
                "http_server_request_duration_seconds_count{service_name=\"a\"} 2\n"
                "# EOF\n");
  // The classic format has no exemplars and no EOF.
  const std::string classic = PrometheusText(r);
  EXPECT_EQ(classic.find(" # {"), std::string::npos) << classic;
  EXPECT_EQ(classic.find("# EOF"), std::string::npos) << classic;
}

TEST(OpenMetricsText, AcceptHeaderNegotiation) {
  EXPECT_TRUE(AcceptsOpenMetrics("application/openmetrics-text"));
  // What Prometheus 2.x/3.x sends.
  EXPECT_TRUE(AcceptsOpenMetrics(
      "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
      "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"));
  EXPECT_TRUE(AcceptsOpenMetrics("text/plain, Application/OpenMetrics-Text ; q=0.1"));
  EXPECT_FALSE(AcceptsOpenMetrics("application/openmetrics-text;q=0"));
  EXPECT_FALSE(AcceptsOpenMetrics("text/plain;version=0.0.4"));
  EXPECT_FALSE(AcceptsOpenMetrics("*/*"));
  EXPECT_FALSE(AcceptsOpenMetrics(""));
}

// The OpenMetrics text read back by python3-prometheus-client's OpenMetrics parser (which
// checks # EOF, the families' suffixes, bucket order, and exemplar syntax and length).
TEST(OpenMetricsText, ThirdPartyParserReadsExemplarsBack) {
  Registry r;
  r.GetCounter("kspan_spans_total")->Add(3);
  r.GetCounter("kspan_tls_not_captured_total", {{"binary", "we\"ird\\na\nme \xE2\x9C\x93"}, {"reason", "x"}})
      ->Add(1);
  r.GetCounter("kspan_exporter_queue_spans", {{"exporter", "otlp"}})->Set(9);
  r.GetCounter("kspan_not_described")->Add(1);
  Histogram* h = r.GetHistogram("http_server_request_duration_seconds",
                                {{"service.name", "a"}, {"http.route", "/x"}}, {0.005, 0.01, 1, 2.5});
  Exemplar e;
  for (size_t i = 0; i < e.trace_id.size(); ++i) e.trace_id[i] = static_cast<uint8_t>(0xa0 + i);
  for (size_t i = 0; i < e.span_id.size(); ++i) e.span_id[i] = static_cast<uint8_t>(0x10 + i);
  e.time_unix_nano = 1733436000'500000000ULL;
  h->Record(0.007, e);
  e.span_id[7] = 0xff;
  e.time_unix_nano += 1'000'000'000;
  h->Record(0.008, e);  // the same bucket: this one wins
  h->Record(3);         // no exemplar
  r.GetHistogram("gen_ai_client_token_usage", {{"gen_ai_request_model", "m"}}, {1, 4})->Record(3);
  const std::string text = OpenMetricsText(r);

  nlohmann::json families;
  ASSERT_NO_FATAL_FAILURE(ParseWithPrometheusClient(text, /*openmetrics=*/true, &families));
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& f : families) by_name[f["name"].get<std::string>()] = f;
  ASSERT_EQ(by_name.size(), 6u) << families.dump(1);
  EXPECT_EQ(by_name["kspan_spans"]["type"], "counter");
  EXPECT_EQ(by_name["kspan_spans"]["samples"][0][0], "kspan_spans_total");
  EXPECT_EQ(by_name["kspan_exporter_queue_spans"]["type"], "gauge");
  EXPECT_EQ(by_name["kspan_not_described"]["type"], "unknown");
  EXPECT_EQ(by_name["kspan_tls_not_captured"]["samples"][0][1]["binary"], "we\"ird\\na\nme \xE2\x9C\x93");
  const auto& hist = by_name["http_server_request_duration_seconds"];
  EXPECT_EQ(hist["type"], "histogram");
  ASSERT_EQ(hist["samples"].size(), 7u) << hist.dump(1);  // 4 bounds + Inf, sum, count
  int with_exemplar = 0;
  for (const auto& s : hist["samples"]) with_exemplar += s[3].is_null() ? 0 : 1;
  EXPECT_EQ(with_exemplar, 1) << hist.dump(1);
  const auto& b = hist["samples"][1];  // le=0.01
  EXPECT_EQ(b[1]["le"], "0.01");
  EXPECT_EQ(b[2], 2.0);
  ASSERT_FALSE(b[3].is_null());
  EXPECT_EQ(b[3][0]["trace_id"], "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  EXPECT_EQ(b[3][0]["span_id"], "10111213141516ff");
  EXPECT_DOUBLE_EQ(b[3][1].get<double>(), 0.008);
  EXPECT_EQ(b[3][2][0], 1733436001);
  EXPECT_EQ(b[3][2][1], 500000000);
  EXPECT_EQ(by_name["gen_ai_client_token_usage"]["type"], "histogram");
}

}  // namespace
}  // namespace kspan::metrics
