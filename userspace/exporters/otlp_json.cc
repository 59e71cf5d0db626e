#include "exporters/otlp_json.h"

#include <kspan/version.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "exporters/span_groups.h"

namespace kspan::exporters {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Values that never need escaping (hex ids, decimal numbers) are formatted into a stack
// buffer with their quotes and written with Raw: ids and timestamps are a third of a
// span's bytes, and going through the escaper, or a std::string per id, would dominate
// the conversion.
template <size_t N>
void QuotedHex(JsonWriter* w, const std::array<uint8_t, N>& bytes) {
  char buf[2 * N + 2];
  buf[0] = '"';
  for (size_t i = 0; i < N; ++i) {
    buf[1 + 2 * i] = kHex[bytes[i] >> 4];
    buf[2 + 2 * i] = kHex[bytes[i] & 0xF];
  }
  buf[2 * N + 1] = '"';
  w->Raw(std::string_view(buf, sizeof(buf)));
}

// A 64-bit integer as proto3 JSON maps it: a decimal string.
template <typename T>
void QuotedDecimal(JsonWriter* w, T v) {
  char buf[24];
  buf[0] = '"';
  char* end = std::to_chars(buf + 1, buf + sizeof(buf) - 1, v).ptr;
  *end++ = '"';
  w->Raw(std::string_view(buf, static_cast<size_t>(end - buf)));
}

void AppendAnyValue(const model::AttributeValue& value, JsonWriter* w) {
  w->BeginObject();
  if (const auto* s = std::get_if<std::string>(&value)) {
    w->Key("stringValue");
    w->String(*s);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    w->Key("intValue");
    QuotedDecimal(w, *i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    w->Key("doubleValue");
    if (std::isnan(*d)) {
      w->String("NaN");
    } else if (std::isinf(*d)) {
      w->String(*d > 0 ? "Infinity" : "-Infinity");
    } else {
      w->Double(*d);
    }
  } else if (const auto* b = std::get_if<bool>(&value)) {
    w->Key("boolValue");
    w->Bool(*b);
  } else if (const auto* arr = std::get_if<model::StringArray>(&value)) {
    w->Key("arrayValue");
    w->BeginObject();
    w->Key("values");
    w->BeginArray();
    for (const std::string& s : *arr) AppendAnyValue(model::AttributeValue(s), w);
    w->EndArray();
    w->EndObject();
  }
  w->EndObject();
}

// "attributes":[{"key":…,"value":{…}},…], omitted when empty.
void AppendAttributes(const std::vector<model::Attribute>& attributes, JsonWriter* w) {
  if (attributes.empty()) return;
  w->Key("attributes");
  w->BeginArray();
  for (const auto& a : attributes) {
    w->BeginObject();
    w->Key("key");
    w->String(a.key);
    w->Key("value");
    AppendAnyValue(a.value, w);
    w->EndObject();
  }
  w->EndArray();
}

void AppendEvent(const model::SpanEvent& e, JsonWriter* w) {
  w->BeginObject();
  w->Key("timeUnixNano");
  QuotedDecimal(w, e.time_unix_nano);
  w->Key("name");
  w->String(e.name);
  AppendAttributes(e.attributes, w);
  w->EndObject();
}

void AppendLink(const model::SpanLink& l, JsonWriter* w) {
  w->BeginObject();
  w->Key("traceId");
  QuotedHex(w, l.trace_id.bytes);
  w->Key("spanId");
  QuotedHex(w, l.span_id.bytes);
  if (!l.trace_state.empty()) {
    w->Key("traceState");
    w->String(l.trace_state);
  }
  AppendAttributes(l.attributes, w);
  w->EndObject();
}

void AppendResource(const model::Resource* resource, JsonWriter* w) {
  w->Key("resource");
  w->BeginObject();
  if (resource) AppendAttributes(resource->attributes, w);
  w->EndObject();
}

}  // namespace

void AppendSpanJson(const model::Span& span, JsonWriter* w) {
  w->BeginObject();
  w->Key("traceId");
  QuotedHex(w, span.trace_id.bytes);
  w->Key("spanId");
  QuotedHex(w, span.span_id.bytes);
  if (!span.trace_state.empty()) {
    w->Key("traceState");
    w->String(span.trace_state);
  }
  if (span.parent_span_id.IsValid()) {
    w->Key("parentSpanId");
    QuotedHex(w, span.parent_span_id.bytes);
  }
  // Bits 0-7: the W3C trace flags. Bits 8-9 (parent is remote) stay 0, "unknown": the
  // model does not record where the parent ran.
  w->Key("flags");
  w->Uint(span.trace_flags);
  w->Key("name");
  w->String(span.name);
  w->Key("kind");
  w->Int(static_cast<int>(span.kind));
  w->Key("startTimeUnixNano");
  QuotedDecimal(w, span.start_time_unix_nano);
  w->Key("endTimeUnixNano");
  QuotedDecimal(w, span.end_time_unix_nano);
  AppendAttributes(span.attributes, w);
  if (!span.events.empty()) {
    w->Key("events");
    w->BeginArray();
    for (const auto& e : span.events) AppendEvent(e, w);
    w->EndArray();
  }
  if (!span.links.empty()) {
    w->Key("links");
    w->BeginArray();
    for (const auto& l : span.links) AppendLink(l, w);
    w->EndArray();
  }
  w->Key("status");
  w->BeginObject();
  w->Key("code");
  w->Int(static_cast<int>(span.status_code));
  if (!span.status_message.empty()) {
    w->Key("message");
    w->String(span.status_message);
  }
  w->EndObject();
  w->EndObject();
}

void AppendTracesDataJson(std::span<const model::Span> spans, std::string* out) {
  const ResourceGroups groups = GroupByResource(spans);
  JsonWriter w(out);
  w.BeginObject();
  w.Key("resourceSpans");
  w.BeginArray();
  for (size_t g = 0; g < groups.resources.size(); ++g) {
    w.BeginObject();
    AppendResource(groups.resources[g], &w);
    w.Key("scopeSpans");
    w.BeginArray();
    w.BeginObject();
    w.Key("scope");
    w.BeginObject();
    w.Key("name");
    w.String(model::kScopeName);
    w.Key("version");
    w.String(KSPAN_VERSION);
    w.EndObject();
    w.Key("spans");
    w.BeginArray();
    for (uint32_t k = groups.start[g]; k < groups.start[g + 1]; ++k) {
      AppendSpanJson(spans[groups.order[k]], &w);
    }
    w.EndArray();
    w.EndObject();
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace kspan::exporters
