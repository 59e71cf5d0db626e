// The agent's metrics (metrics::Registry) in the Prometheus text exposition format,
// version 0.0.4, as served on /metrics (Content-Type kPrometheusContentType).
//
//   # HELP kspan_spans_total Spans built from traced traffic.
//   # TYPE kspan_spans_total counter
//   kspan_spans_total 42
//   # HELP kspan_agent_graph_duration_seconds Duration of calls on each agent call graph edge.
//   # TYPE kspan_agent_graph_duration_seconds histogram
//   kspan_agent_graph_duration_seconds_bucket{from="planner",to="gpt-4o",kind="model",le="0.01"} 0
//   ...
//   kspan_agent_graph_duration_seconds_bucket{from="planner",to="gpt-4o",kind="model",le="+Inf"} 3
//   kspan_agent_graph_duration_seconds_sum{from="planner",to="gpt-4o",kind="model"} 0.042
//   kspan_agent_graph_duration_seconds_count{from="planner",to="gpt-4o",kind="model"} 3
//
// The rules of the format that this code keeps (and tests/unit/prometheus_test.cc checks):
//   - one HELP and one TYPE line per metric name, before its first sample; the samples of
//     one name are consecutive;
//   - label values escape '\' '"' and line feed (\\ \" \n), and bytes that are not UTF-8
//     become U+FFFD (Prometheus refuses a scrape with such a value); HELP text escapes
//     '\' and line feed; every line, the last one too, ends in '\n';
//   - histogram buckets are cumulative, ascending in `le`, and end with le="+Inf", whose
//     count equals _count;
//   - a name or label name with a character outside [a-zA-Z0-9_:] ([a-zA-Z0-9_] for labels)
//     has it replaced by '_' (the registry's names already follow the rules; label values
//     may come from traced traffic, such as model names: they are escaped, never renamed).
//
// The registry does not know a metric's kind or meaning: the type and help text come
// from MetricInfo(), a table beside the formatter. A name missing from it is a counter
// when it ends in _total and untyped otherwise (a unit test checks that every name the
// daemon registers is in the table).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"

namespace kspan::metrics {

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view kOpenMetricsContentType =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

struct MetricDescription {
  std::string_view type;  // counter, gauge, histogram or untyped
  std::string_view help;
  // Non-zero: the registry keeps the value as an integer count of this unit (1e-6: µs of
  // a _seconds counter), and every output writes value × scale.
  double scale = 0;
};

// The type and help text of a metric by name. Unknown names get a generic description.
MetricDescription MetricInfo(std::string_view name);
// A sample's value as every output writes it: value × the metric's scale, else the integer.
std::string FormatSampleValue(const Sample& s);
// Whether `name` is in the table (for the test that keeps the table complete).
bool HasMetricInfo(std::string_view name);

// The whole exposition: every counter, then every histogram, each group sorted by name.
std::string PrometheusText(const std::vector<Sample>& counters,
                           const std::vector<HistogramSample>& histograms);
// The same from a registry's current snapshot.
std::string PrometheusText(const Registry& registry);

// The same metrics in the OpenMetrics text format 1.0.0 (served on /metrics when the
// scraper's Accept asks for application/openmetrics-text), which differs where the spec
// says so:
//   - a counter family is named without its _total suffix (`# TYPE kspan_spans counter`,
//     sample `kspan_spans_total 42`); a counter whose name lacks _total is `unknown`, as
//     is every untyped metric;
//   - HELP escapes '"' too; `le` values are canonical (1.0, not 1);
//   - histogram buckets carry their exemplar, when they have one:
//       ..._bucket{...,le="0.25"} 7 # {trace_id="4bf9…",span_id="00f0…"} 0.104 1733436000.123
//     (the span's ids in lowercase hex, the value, its time in seconds);
//   - the text ends with a "# EOF" line.
std::string OpenMetricsText(const std::vector<Sample>& counters,
                            const std::vector<HistogramSample>& histograms);
std::string OpenMetricsText(const Registry& registry);
// Whether an Accept header value asks for OpenMetrics (application/openmetrics-text with
// a q above 0).
bool AcceptsOpenMetrics(std::string_view accept);

// Pieces, for tests and for other formatters.
std::string EscapeLabelValue(std::string_view v);
std::string EscapeHelp(std::string_view v);
// A metric or label name made valid: characters outside the allowed set become '_', and
// a leading digit gets a '_' in front.
std::string SanitizeName(std::string_view name, bool label);
// A sample value as Prometheus reads it: shortest round-trip form, NaN, +Inf, -Inf.
std::string FormatValue(double v);

}  // namespace kspan::metrics
