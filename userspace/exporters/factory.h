// Exporters by name, as the command line and OTEL_TRACES_EXPORTER-style settings spell
// them. Start-up code only: errors are for a person to read, naming the bad value and
// what is accepted.
//
//   console      human-readable lines on stdout (console_exporter.h)
//   file:PATH    OTLP/JSON lines appended to PATH (file_exporter.h)
//
// OTLP (otlp_http.h, otlp_grpc.h) and Zipkin (zipkin_http.h) exporters come only from
// ExporterSettings: each is a QueuedExporter (queued_exporter.h) with its own queue,
// thread and retries.
#pragma once

#include <memory>
#include <string_view>

#include "common/metrics.h"
#include "common/status.h"
#include "exporters/exporter.h"
#include "exporters/settings.h"

namespace kspan::exporters {

// InvalidArgument for an unknown or malformed spec; the file exporter's error (naming the
// path) when PATH cannot be opened.
Result<std::unique_ptr<SpanExporter>> MakeExporter(std::string_view spec);

// The exporter `settings` describe. Network exporters (OTLP, Zipkin) and the file
// exporter register their counters in `registry` (may be null: private counters);
// network exporters own their queue and thread.
Result<std::unique_ptr<SpanExporter>> MakeExporter(const ExporterSettings& settings,
                                                   metrics::Registry* registry);

}  // namespace kspan::exporters
