// OTLP metrics: the metrics kspan derives from traffic (the RED histograms of
// processors/span_metrics.h, the service graph of processors/service_graph.h and the
// gen_ai.client.* histograms) sent as an ExportMetricsServiceRequest every `interval` and
// once more at shutdown, over OTLP/HTTP protobuf (POST .../v1/metrics) or, when the
// settings' protocol is gRPC, OTLP/gRPC (MetricsService/Export; metrics_sender.h).
//
//   registry (Prometheus names,     ToExportMetricsRequest          OTLP
//   attribute names as labels)      ──────────────────────          ─────────────────────────
//   http_server_request_duration_   a table of exported names  ──▶  http.server.request.duration
//   seconds{service.name=…,…}       service.name → the resource     Histogram, CUMULATIVE, unit s
//   traces_service_graph_request_   counters → monotonic Sum        traces_service_graph_request_total
//   total{client,server,…}                                          Sum, CUMULATIVE, monotonic
//
// Temporality is cumulative by default (every point counts from the exporter's start), so
// a request that fails loses nothing: the next one carries the totals. With `delta`
// (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta or lowmemory) every point
// counts since the last request the backend took (its start time), so a failed request's
// counts go out with the next one, not lost either. A failed export is counted and
// logged when the state changes (failing / recovered), never retried. kspan's own counters
// (kspan_*) stay on /metrics only.
//
//   kspan_metrics_export_requests_total{result}  sent, failed
//   kspan_metrics_export_points_total            data points in requests the backend took
//
// Threading: one thread of its own; the registry is read through its thread-safe
// snapshots.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "exporters/http_client.h"
#include "exporters/metrics_sender.h"
#include "exporters/settings.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"

namespace kspan::exporters {

// Replaces `request` with the exported metrics of the snapshots: one ResourceMetrics per
// service.name (the label moves to the resource; the rest without one share a resource),
// `resource` added to each; temporality CUMULATIVE, or DELTA when `delta` (the snapshots
// then hold the differences: SubtractBaseline). Returns the number of data points.
size_t ToExportMetricsRequest(
    const std::vector<metrics::Sample>& counters, const std::vector<metrics::HistogramSample>& histograms,
    uint64_t start_ns, uint64_t now_ns, const std::vector<std::pair<std::string, std::string>>& resource,
    ::opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest* request, bool delta = false);

// The exported series' values at one moment, to subtract for delta temporality.
struct MetricsBaseline {
  std::map<std::pair<std::string, metrics::Labels>, uint64_t> counters;
  std::map<std::pair<std::string, metrics::Labels>, metrics::Histogram::Data> histograms;
};
// Keeps only exported series, returns them as the new baseline, and replaces each value by
// its growth since `previous` (a series not in it grew from zero).
MetricsBaseline SubtractBaseline(const MetricsBaseline& previous, std::vector<metrics::Sample>* counters,
                                 std::vector<metrics::HistogramSample>* histograms);

// Whether a registry name is sent over OTLP, and as what (for tests and docs).
struct ExportedMetric {
  std::string_view prometheus_name;
  std::string_view otel_name;
  std::string_view unit;
  std::string_view description;
  bool gauge = false;  // a counter registered with Set: an OTLP Gauge, never a delta
};
const ExportedMetric* FindExportedMetric(std::string_view prometheus_name);

class OtlpMetricsExporter {
 public:
  // Checks the settings and starts the thread. `registry` must outlive the exporter.
  static Result<std::unique_ptr<OtlpMetricsExporter>> Start(const OtlpMetricsSettings& settings,
                                                            metrics::Registry* registry);
  // Shutdown().
  ~OtlpMetricsExporter();

  // One last export (bounded by the timeout), then the thread stops. Idempotent.
  void Shutdown();

  std::string Endpoint() const { return sender_->Endpoint(); }

 private:
  OtlpMetricsExporter(const OtlpMetricsSettings& settings, metrics::Registry* registry,
                      std::unique_ptr<MetricsSender> sender);
  void Run();
  void ExportOnce();

  const OtlpMetricsSettings settings_;
  metrics::Registry* registry_;
  std::unique_ptr<MetricsSender> sender_;
  const uint64_t start_ns_;
  // delta: what the backend has so far, and since when (export thread only).
  MetricsBaseline baseline_;
  uint64_t baseline_ns_;
  metrics::Counter* sent_;
  metrics::Counter* failed_;
  metrics::Counter* points_;
  bool failing_ = false;  // export thread only

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace kspan::exporters
