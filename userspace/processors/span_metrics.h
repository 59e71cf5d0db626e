// RED metrics from spans, computed before sampling: every span that reaches the processor
// chain is measured, whatever the samplers decide afterwards (the chain runs this before
// the sampling processor). One histogram a span, by the OpenTelemetry semantic conventions
// (semantic-conventions v1.44.0: docs/http/http-metrics.md, docs/rpc/rpc-metrics.md,
// docs/db/database-metrics.md); the count of a histogram is the request count, and the
// series with an error.type are the errors.
//
//   span                                     histogram (seconds)            attributes
//   ──────────────────────────────────────   ────────────────────────────   ─────────────────────────────
//   SERVER with rpc.system.name              rpc.server.call.duration       rpc.system.name, rpc.method,
//   CLIENT with rpc.system.name              rpc.client.call.duration       rpc.response.status_code
//   CLIENT with db.system.name               db.client.operation.duration   db.system.name,
//                                                                           db.operation.name, db.namespace,
//                                                                           db.response.status_code
//   SERVER with http.request.method          http.server.request.duration   http.request.method,
//                                                                           http.response.status_code,
//                                                                           http.route (else url.template)
//   CLIENT with http.request.method          http.client.request.duration   http.request.method,
//                                                                           http.response.status_code,
//                                                                           url.template
//   every one, besides:                                                     service.name (the resource's),
//                                                                           error.type when ERROR;
//                                                                           clients: server.address,
//                                                                           server.port
//
// (gen_ai spans keep their own gen_ai.client.* metrics, made where they are built.)
// They live in the agent's registry under their Prometheus names
// (http_server_request_duration_seconds, ...) with the attribute names as labels, so
// /metrics serves them and the OTLP metrics exporter (exporters/otlp_metrics.h) sends them
// under their OpenTelemetry names.
//
// Bounded: at most `max_series` attribute sets per histogram. Past that, spans are counted
// in one overflow series whose only attribute is otel.metric.overflow="true" (as the
// OpenTelemetry metrics SDK's cardinality limit does), and in
// kspan_span_metrics_overflow_total{metric}. A URL path never becomes a label: only
// http.route or the URL template (ids replaced).
//
// Threading: as SpanProcessor (the pipeline thread); the histograms are read by /metrics
// and the metrics exporter through the registry.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "processors/resource_memo.h"
#include "processors/span_processor.h"

namespace kspan::processors {

class SpanMetrics : public SpanProcessor {
 public:
  // Below the registry's own cap per histogram (metrics::Registry::kMaxSeriesPerHistogram),
  // so the overflow series, not the registry's _OTHER, takes what is past it.
  static constexpr size_t kDefaultMaxSeries = 500;

  explicit SpanMetrics(metrics::Registry* registry, size_t max_series = kDefaultMaxSeries);

  // A new series' label values go through the registry's redactor (span metrics run
  // before the redaction of exported spans, and a label is exported too).
  bool OnExport(model::Span& span) noexcept override;

  // The histogram names, for tests and the exporter's table.
  static constexpr const char* kHttpServer = "http_server_request_duration_seconds";
  static constexpr const char* kHttpClient = "http_client_request_duration_seconds";
  static constexpr const char* kRpcServer = "rpc_server_call_duration_seconds";
  static constexpr const char* kRpcClient = "rpc_client_call_duration_seconds";
  static constexpr const char* kDbClient = "db_client_operation_duration_seconds";

 private:
  struct SeriesEntry {
    std::vector<std::pair<uint8_t, std::string>> labels;  // (key's slot, value) as first seen
    metrics::Histogram* histogram = nullptr;
  };
  struct Family {
    const char* name;
    const std::vector<double>* bounds;
    metrics::Counter* overflow_count;
    metrics::Histogram* overflow = nullptr;
    // By the hash of the label set (LabelSet::Hash), checked label by label: found with
    // no allocation and no key string built.
    std::unordered_multimap<uint64_t, SeriesEntry> series;
    // The series the last span of this family went to: spans come in runs of one label set,
    // which is then found by comparing the labels, without hashing them.
    const SeriesEntry* last = nullptr;
  };
  enum FamilyIndex { kHttpServerIdx, kHttpClientIdx, kRpcServerIdx, kRpcClientIdx, kDbClientIdx, kFamilies };

  struct Label;     // span_metrics.cc
  struct LabelSet;  // a span's labels, pointing into the span (span_metrics.cc)
  // The series of `labels`: found by their hash with no allocation, created (and its
  // labels copied) the first time.
  metrics::Histogram* Series(Family& f, const LabelSet& labels);
  // The service.name of the span's resource ("unknown_service" when none).
  std::string_view ServiceOf(const model::Span& span);

  metrics::Registry* registry_;
  const size_t max_series_;
  std::vector<Family> families_;
  ResourceMemo<std::string_view> services_;  // ServiceOf's
};

}  // namespace kspan::processors
