// How the trace store keeps a span and a resource: OTLP protobuf (opentelemetry.proto
// trace.v1.Span, resource.v1.Resource), the same encoding the OTLP exporters send
// (exporters/otlp_proto.h), so what is stored reads back as the span that was written.
// Decoding is the reverse, field for field; string arrays are the one array type kept.
#pragma once

#include <string>
#include <string_view>

#include "common/json.h"
#include "model/span.h"

namespace kspan::store {

// Appends the encoded span (no resource) to `out`, written straight from the span.
void EncodeSpan(const model::Span& span, WriteBuffer* out);
// False when `bytes` is not an encoded span; *out is then unspecified.
bool DecodeSpan(std::string_view bytes, model::Span* out);

void EncodeResource(const model::Resource& resource, std::string* out);
bool DecodeResource(std::string_view bytes, model::Resource* out);

}  // namespace kspan::store
