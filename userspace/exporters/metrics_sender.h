// How an OTLP metrics export request leaves kspan: OTLP/HTTP protobuf (POST …/v1/metrics,
// otlp_metrics.h) or OTLP/gRPC (MetricsService/Export, otlp_grpc.h). The exporter's thread
// calls Send once an interval; a failed request is not retried (the next carries the
// totals, or with delta temporality the differences since the last one taken).
#pragma once

#include <chrono>
#include <string>

#include "exporters/transport.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"

namespace kspan::exporters {

class MetricsSender {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~MetricsSender() = default;
  // Sends `request` by `deadline`; kSent when the backend took it.
  virtual SendResult Send(
      const ::opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest& request,
      Clock::time_point deadline) noexcept = 0;
  // Where requests go, for logs.
  virtual std::string Endpoint() const = 0;
};

}  // namespace kspan::exporters
