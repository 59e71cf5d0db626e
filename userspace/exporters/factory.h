// Exporters by name, as the command line and OTEL_TRACES_EXPORTER-style settings spell
// them. Start-up code only: errors are for a person to read, naming the bad value and
// what is accepted.
//
//   console      human-readable lines on stdout (console_exporter.h)
//   file:PATH    OTLP/JSON lines appended to PATH (file_exporter.h)
#pragma once

#include <memory>
#include <string_view>

#include "common/status.h"
#include "exporters/exporter.h"

namespace kspan::exporters {

// InvalidArgument for an unknown or malformed spec; the file exporter's error (naming the
// path) when PATH cannot be opened.
Result<std::unique_ptr<SpanExporter>> MakeExporter(std::string_view spec);

}  // namespace kspan::exporters
