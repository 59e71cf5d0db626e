// Spans -> OTLP/JSON: the JSON Protobuf Encoding of opentelemetry.proto.trace.v1.TracesData
// (opentelemetry-proto docs/specification.md "JSON Protobuf Encoding"), the format the
// OpenTelemetry Collector's file exporter writes and its otlpjsonfile receiver reads.
// Conversion only; transports (file, OTLP/HTTP) live beside it.
//
// The encoding rules we follow, and where they differ from plain proto3 JSON:
//   - keys are the lowerCamelCase field names (traceId, startTimeUnixNano, ...);
//   - traceId / spanId / parentSpanId are lowercase hex (OTLP's rule, not base64);
//   - enums (kind, status.code) are integers, never names;
//   - int64/uint64 fields (timestamps, intValue) are decimal strings, as proto3 JSON maps
//     64-bit integers; fixed32 `flags` is a number;
//   - doubleValue is a number, or the strings "NaN" / "Infinity" / "-Infinity";
//   - fields at their default are omitted where a reader gains nothing: an empty
//     parentSpanId / traceState / status.message, empty attributes / events / links.
//
//   {"resourceSpans":[{"resource":{"attributes":[...]},
//     "scopeSpans":[{"scope":{"name":"kspan","version":"0.1.0"},
//       "spans":[{"traceId":"…","spanId":"…","parentSpanId":"…","flags":1,"name":"GET /",
//                 "kind":2,"startTimeUnixNano":"…","endTimeUnixNano":"…",
//                 "attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}}],
//                 "status":{"code":0}}]}]}]}
//
// Spans are grouped into one resourceSpans per distinct Resource (by pointer: spans of a
// process share one immutable Resource), in order of first appearance; each holds one
// scopeSpans for kspan's instrumentation scope.
#pragma once

#include <span>
#include <string>

#include "common/json.h"
#include "model/span.h"

namespace kspan::exporters {

// Appends one TracesData JSON object (no newline) holding `spans` to `out`.
void AppendTracesDataJson(std::span<const model::Span> spans, WriteBuffer* out);
// The same into a string (through a WriteBuffer of its own: an allocation and a copy).
void AppendTracesDataJson(std::span<const model::Span> spans, std::string* out);

// Appends one Span JSON object to `out` (for writers that frame spans differently).
void AppendSpanJson(const model::Span& span, std::string* out);

}  // namespace kspan::exporters
