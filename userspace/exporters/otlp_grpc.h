// OTLP/gRPC (opentelemetry-proto docs/specification.md, "OTLP/gRPC"): each request is one
// unary call /opentelemetry.proto.collector.trace.v1.TraceService/Export through the stub
// protoc generates from proto/.
//
//   endpoint http://host:port    plaintext (h2c)
//   endpoint https://host:port   TLS, trusting certificate_file (PEM) or, when empty,
//                                gRPC's default roots
//   headers                      sent as call metadata (keys lowercased, as HTTP/2 needs)
//   timeout                      the call's deadline
//   compression gzip             the message is gzip-compressed (grpc-encoding: gzip)
//
// Before each call the transport waits (within the deadline) for the channel to connect,
// so that a failed call can tell "never sent" (the channel did not get READY) from "sent
// and not answered" (DEADLINE_EXCEEDED on a READY channel, or the connection dropped
// during the call): only the latter is marked maybe_delivered (transport.h). A backend
// that answers UNAVAILABLE itself (the OTLP throttling signal) leaves the channel READY and
// is not marked.
//
// The channel is created once and reconnects on its own; its reconnect backoff is capped
// at 5 s so a backend that comes back is found as quickly as our own retries look for it.
// gRPC's built-in retries are off: the exporter's queue owns retrying (retry.h), so every
// attempt is counted once. gRPC's own log lines are turned into kspan debug logs, keeping
// stderr one JSON object a line.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "exporters/metrics_sender.h"
#include "exporters/settings.h"
#include "exporters/transport.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.grpc.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace kspan::exporters {

// What both OTLP/gRPC clients (traces and metrics) call with: the endpoint as configured,
// the channel made from it, the call metadata (from the headers) and the gzip choice.
struct OtlpGrpcClient {
  std::string endpoint;
  std::shared_ptr<grpc::Channel> channel;
  std::vector<std::pair<std::string, std::string>> metadata;
  bool gzip = false;
};

class OtlpGrpcTransport final : public Transport {
 public:
  // Errors name the bad endpoint or unreadable certificate file.
  static Result<std::unique_ptr<OtlpGrpcTransport>> Create(const OtlpSettings& settings);

  size_t Encode(std::span<const model::Span> spans) override;
  SendResult Send(Clock::time_point deadline) noexcept override;
  std::string Endpoint() const override { return client_.endpoint; }

 private:
  OtlpGrpcTransport() = default;

  OtlpGrpcClient client_;
  std::unique_ptr<::opentelemetry::proto::collector::trace::v1::TraceService::Stub> stub_;
  ::opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request_;  // reused
};

// "host:port" from "http://host:port" or "https://host:port" (a trailing path is ignored;
// without a port, 4317). Sets *tls for https. InvalidArgument names anything else.
Result<std::string> GrpcTargetFromEndpoint(const std::string& endpoint, bool* tls);

// OTLP metrics over gRPC: each export one unary call
// /opentelemetry.proto.collector.metrics.v1.MetricsService/Export, on a channel made as the
// trace transport's (endpoint, TLS, headers, gzip; see above).
class OtlpGrpcMetricsSender final : public MetricsSender {
 public:
  static Result<std::unique_ptr<OtlpGrpcMetricsSender>> Create(const OtlpSettings& settings);

  SendResult Send(const ::opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest& request,
                  Clock::time_point deadline) noexcept override;
  std::string Endpoint() const override { return client_.endpoint; }

 private:
  OtlpGrpcMetricsSender() = default;

  OtlpGrpcClient client_;
  std::unique_ptr<::opentelemetry::proto::collector::metrics::v1::MetricsService::Stub> stub_;
};

}  // namespace kspan::exporters
