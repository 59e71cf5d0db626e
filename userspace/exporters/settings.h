// What each exporter is told at start-up: plain values, filled by the agent's
// configuration (agent/config.h: flags > OTEL_* environment > YAML file > defaults) and
// turned into exporters by MakeExporters (factory.h). Nothing here reads the environment
// or a file; every value is already checked and resolved (an OTLP/HTTP endpoint already
// carries its /v1/traces path).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace kspan::exporters {

enum class OtlpProtocol { kGrpc, kHttpProtobuf, kHttpJson };
enum class Compression { kNone, kGzip };

// The queue and batching of one network exporter, named after the OpenTelemetry batch
// span processor's settings (OTEL_BSP_*). Each network exporter owns one such queue and
// its own thread, so one slow backend never holds up another or the capture.
struct QueueSettings {
  size_t max_queue_spans = 2048;                   // OTEL_BSP_MAX_QUEUE_SIZE
  size_t max_batch_spans = 512;                    // OTEL_BSP_MAX_EXPORT_BATCH_SIZE
  std::chrono::milliseconds schedule_delay{5000};  // OTEL_BSP_SCHEDULE_DELAY
  size_t max_request_bytes = size_t{64} << 20;     // a request body, at most (after encoding)
};

struct ConsoleSettings {
  bool tree = false;  // whole traces as indented trees (console_exporter.h)
};

struct FileSettings {
  std::string path;  // OTLP/JSON lines appended here
};

struct OtlpSettings {
  OtlpProtocol protocol = OtlpProtocol::kHttpProtobuf;
  // http/*: the full traces URL, e.g. http://localhost:4318/v1/traces.
  // grpc:   http://host:port (plaintext) or https://host:port (TLS).
  std::string endpoint = "http://localhost:4318/v1/traces";
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every request
  std::chrono::milliseconds timeout{10000};                  // one export attempt, at most
  Compression compression = Compression::kNone;
  std::string certificate_file;  // PEM CA bundle trusted for https; empty: the system's
  QueueSettings queue;
};

struct ZipkinSettings {
  std::string endpoint = "http://localhost:9411/api/v2/spans";
  std::chrono::milliseconds timeout{10000};
  QueueSettings queue;
};

// OTLP metrics (exporters/otlp_metrics.h): the RED, service-graph and gen_ai metrics of
// the agent's registry, every `interval`, as an ExportMetricsServiceRequest over
// OTLP/HTTP protobuf. `otlp.endpoint` is the full metrics URL (.../v1/metrics); headers,
// timeout, compression and certificate are the trace exporter's (OTEL_EXPORTER_OTLP_*).
struct OtlpMetricsSettings {
  OtlpSettings otlp;
  std::chrono::milliseconds interval{60000};  // OTEL_METRIC_EXPORT_INTERVAL
  // OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE delta or lowmemory (kspan's metrics
  // are all counters and histograms, for which lowmemory is delta); else cumulative.
  bool delta = false;
  // Added to every resource (OTEL_RESOURCE_ATTRIBUTES), never replacing service.name.
  std::vector<std::pair<std::string, std::string>> resource_attributes;
};

using ExporterSettings = std::variant<ConsoleSettings, FileSettings, OtlpSettings, ZipkinSettings>;

}  // namespace kspan::exporters
