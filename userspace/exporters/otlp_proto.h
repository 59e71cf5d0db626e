// Spans -> OTLP protobuf: an opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest
// (proto/ at the repository root), the body of OTLP/HTTP protobuf and the OTLP/gRPC
// Export call. Conversion only; transports live beside it.
//
// Field for field the same content as the JSON encoding (otlp_json.h), so a file output
// and a network output of one batch decode to the same spans:
//
//   model::Span             Span (proto)              notes
//   ─────────────────────   ───────────────────────   ─────────────────────────────────
//   trace_id, span_id       trace_id, span_id         raw bytes (16 / 8), not hex
//   parent_span_id          parent_span_id            only when valid (root: empty)
//   trace_state             trace_state               only when non-empty
//   trace_flags             flags (fixed32)           bits 0-7; "is remote" bits stay 0
//   name, kind              name, kind                kind numbers are OTLP's
//   start/end_time_unix_nano  start/end_time_unix_nano  fixed64 Unix ns
//   attributes              attributes                string/int/double/bool AnyValue
//   events, links           events, links             link flags unset (JSON has none)
//   status_code/_message    status {code, message}    status always present
//   resource                ResourceSpans.resource    grouped as in span_groups.h
//                           ScopeSpans.scope          {name "kspan", version KSPAN_VERSION}
//
// Every `string` field is valid UTF-8, as protobuf requires of it (a parser refuses the
// whole request otherwise): a byte a traced process sent that is not becomes U+FFFD, as in
// the JSON encoding (common/utf8.h).
#pragma once

#include <span>
#include <string>

#include "common/json.h"
#include "model/span.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace kspan::exporters {

namespace otlp_pb = ::opentelemetry::proto;

// Replaces the content of `request` with `spans`, one ResourceSpans per resource.
void ToExportRequest(std::span<const model::Span> spans,
                     otlp_pb::collector::trace::v1::ExportTraceServiceRequest* request);

// One span (for callers that frame spans differently, and for tests).
void ToProtoSpan(const model::Span& span, otlp_pb::trace::v1::Span* out);

// Appends the serialized ExportTraceServiceRequest of `spans`: the bytes
// ToExportRequest(spans, &r) then r.SerializeToString() give, written straight from the
// spans (no message objects, no allocation past the buffer's). Sizes of nested messages
// are computed first, so every length prefix is the minimal varint protobuf writes.
void AppendExportRequestProto(std::span<const model::Span> spans, WriteBuffer* out);

// Appends one serialized Span message: the bytes ToProtoSpan(span, &p) then
// p.SerializeToString() give, written straight from the span (the trace store's row body).
void AppendSpanProto(const model::Span& span, WriteBuffer* out);

}  // namespace kspan::exporters
