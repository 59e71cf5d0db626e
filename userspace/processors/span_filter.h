// Filters: spans dropped on their way out by rule (health checks, telemetry traffic), with
// everything under them, so no filtered span leaves an orphan behind.
//
//   rule (flag --drop, YAML filters.drop)   drops a span when
//   service=NAME                            its resource's service.name is NAME
//   executable=TEXT                         its process.executable.path (else .name)
//                                           contains TEXT
//   port=N                                  its server.port is N
//   route=ROUTE                             its http.route, else url.template, else the
//                                           path of url.path / url.full is ROUTE
//   attribute:KEY=VALUE                     it has attribute KEY equal to VALUE
//
// Built in, unless --trace-telemetry: "telemetry", an HTTP POST whose path ends in
// /v1/traces, /v1/metrics, /v1/logs (OTLP/HTTP) or /api/v2/spans (Zipkin). kspan never
// traces its own process (the kernel side skips it), but the collector that receives its
// exports is traced like any server: without this rule each export would make a span that
// the next export carries, a loop that never goes idle.
//
// A trace whose first span matches is dropped whole by the trace sampler (before it takes
// a rate-limit token: trace_sampler.h); a span deeper in a trace that matches is dropped
// here with its descendants (parents leave the window before their children; the ids of
// dropped spans are remembered, at most kRemembered, oldest forgotten first: 16 bytes of
// id, about 64 bytes with the set's node and the queue, so 4 MiB at most).
// Counted in kspan_filter_spans_dropped_total{rule}.
//
// Single-threaded: the pipeline thread (SpanProcessor's contract).
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "processors/span_processor.h"

namespace kspan::processors {

struct FilterRule {
  enum class Kind : uint8_t { kService, kExecutable, kPort, kRoute, kAttribute, kTelemetry };
  Kind kind = Kind::kService;
  std::string name;  // the spec as written ("telemetry" for the built-in one): the rule label
  std::string key, value;
  int64_t port = 0;
};

Result<FilterRule> ParseFilterRule(std::string_view where, std::string_view spec);
FilterRule TelemetryRule();

class SpanFilter : public SpanProcessor {
 public:
  static constexpr size_t kRemembered = 65536;
  SpanFilter(std::vector<FilterRule> rules, metrics::Registry* metrics);

  // The index of the first rule that matches `span`, or -1.
  int Match(const model::Span& span) const;
  const std::vector<FilterRule>& rules() const { return rules_; }

  bool OnExport(model::Span& span) noexcept override;

 private:
  void Remember(const model::Span& span);

  std::vector<FilterRule> rules_;
  std::vector<metrics::Counter*> dropped_;  // by rule
  metrics::Counter* descendants_;
  // Low half of the trace id and the span id: a span's identity among those dropped lately.
  struct IdKey {
    uint64_t trace = 0, span = 0;
    bool operator==(const IdKey&) const = default;
  };
  struct IdKeyHash {
    size_t operator()(const IdKey& k) const { return k.trace * 0x9e3779b97f4a7c15ull ^ k.span; }
  };
  static IdKey KeyOf(const model::TraceId& t, const model::SpanId& s);
  std::unordered_set<IdKey, IdKeyHash> dropped_ids_;
  std::deque<IdKey> order_;
};

}  // namespace kspan::processors
