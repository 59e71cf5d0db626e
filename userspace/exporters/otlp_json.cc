#include "exporters/otlp_json.h"

#include <kspan/version.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "exporters/span_groups.h"

namespace kspan::exporters {
namespace {

// One pass straight into the output string: the structure is fixed, so keys and
// punctuation are literal fragments and commas are placed by the code's shape, not
// tracked per container (JsonWriter's general bookkeeping was a fifth of the encoding's
// CPU). Only text from spans goes through the escaper.

constexpr char kHex[] = "0123456789abcdef";

// Values that never need escaping (hex ids, decimal numbers) are formatted into a stack
// buffer with their quotes: ids and timestamps are a third of a span's bytes.
template <size_t N>
void QuotedHex(std::string* out, const std::array<uint8_t, N>& bytes) {
  char buf[2 * N + 2];
  buf[0] = '"';
  for (size_t i = 0; i < N; ++i) {
    buf[1 + 2 * i] = kHex[bytes[i] >> 4];
    buf[2 + 2 * i] = kHex[bytes[i] & 0xF];
  }
  buf[2 * N + 1] = '"';
  out->append(buf, sizeof(buf));
}

// An integer in decimal (as std::to_string writes it).
template <typename T>
void Decimal(std::string* out, T v) {
  char buf[24];
  out->append(buf, static_cast<size_t>(std::to_chars(buf, buf + sizeof(buf), v).ptr - buf));
}
// A 64-bit integer as proto3 JSON maps it: a decimal string, quotes included, one append.
template <typename T>
void QuotedDecimal(std::string* out, T v) {
  char buf[24];
  buf[0] = '"';
  char* end = std::to_chars(buf + 1, buf + sizeof(buf) - 1, v).ptr;
  *end++ = '"';
  out->append(buf, static_cast<size_t>(end - buf));
}

// A JSON string from arbitrary text: escaped, invalid UTF-8 replaced (common/json.h).
void String(std::string* out, std::string_view s) {
  out->push_back('"');
  AppendJsonEscaped(out, s);
  out->push_back('"');
}

// An AnyValue object without its closing brace, so the caller closes it together with
// whatever encloses it.
void AppendOpenAnyValue(const model::AttributeValue& value, std::string* out) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    out->append(R"({"stringValue":")");
    AppendJsonEscaped(out, *s);
    out->push_back('"');
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    out->append(R"({"intValue":)");
    QuotedDecimal(out, *i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    out->append(R"({"doubleValue":)");
    if (std::isnan(*d)) {
      out->append(R"("NaN")");
    } else if (std::isinf(*d)) {
      out->append(*d > 0 ? R"("Infinity")" : R"("-Infinity")");
    } else {
      char buf[32];
      const int n = std::snprintf(buf, sizeof(buf), "%.17g", *d);
      out->append(buf, static_cast<size_t>(n));
    }
  } else if (const auto* b = std::get_if<bool>(&value)) {
    out->append(*b ? R"({"boolValue":true)" : R"({"boolValue":false)");
  } else if (const auto* arr = std::get_if<model::StringArray>(&value)) {
    out->append(R"({"arrayValue":{"values":[)");
    for (size_t k = 0; k < arr->size(); ++k) {
      out->append(k > 0 ? R"(,{"stringValue":")" : R"({"stringValue":")");
      AppendJsonEscaped(out, (*arr)[k]);
      out->append(R"("})");
    }
    out->append("]}");
  } else {
    out->push_back('{');
  }
}

// "attributes":[{"key":…,"value":{…}},…]; the caller omits it when empty.
void AppendAttributes(const std::vector<model::Attribute>& attributes, std::string* out) {
  out->append(R"("attributes":[)");
  for (size_t k = 0; k < attributes.size(); ++k) {
    out->append(k > 0 ? R"(,{"key":")" : R"({"key":")");
    AppendJsonEscaped(out, attributes[k].key);
    out->append(R"(","value":)");
    AppendOpenAnyValue(attributes[k].value, out);
    out->append("}}");
  }
  out->push_back(']');
}

// ,"attributes":[…] when there are any.
void AppendMoreAttributes(const std::vector<model::Attribute>& attributes, std::string* out) {
  if (attributes.empty()) return;
  out->push_back(',');
  AppendAttributes(attributes, out);
}

void AppendEvent(const model::SpanEvent& e, std::string* out) {
  out->append(R"({"timeUnixNano":)");
  QuotedDecimal(out, e.time_unix_nano);
  out->append(R"(,"name":)");
  String(out, e.name);
  AppendMoreAttributes(e.attributes, out);
  out->push_back('}');
}

void AppendLink(const model::SpanLink& l, std::string* out) {
  out->append(R"({"traceId":)");
  QuotedHex(out, l.trace_id.bytes);
  out->append(R"(,"spanId":)");
  QuotedHex(out, l.span_id.bytes);
  if (!l.trace_state.empty()) {
    out->append(R"(,"traceState":)");
    String(out, l.trace_state);
  }
  AppendMoreAttributes(l.attributes, out);
  out->push_back('}');
}

void AppendResource(const model::Resource* resource, std::string* out) {
  out->append(R"("resource":{)");
  if (resource && !resource->attributes.empty()) AppendAttributes(resource->attributes, out);
  out->push_back('}');
}

}  // namespace

void AppendSpanJson(const model::Span& span, std::string* out) {
  out->append(R"({"traceId":)");
  QuotedHex(out, span.trace_id.bytes);
  out->append(R"(,"spanId":)");
  QuotedHex(out, span.span_id.bytes);
  if (!span.trace_state.empty()) {
    out->append(R"(,"traceState":)");
    String(out, span.trace_state);
  }
  if (span.parent_span_id.IsValid()) {
    out->append(R"(,"parentSpanId":)");
    QuotedHex(out, span.parent_span_id.bytes);
  }
  // Bits 0-7: the W3C trace flags. Bits 8-9 (parent is remote) stay 0, "unknown": the
  // model does not record where the parent ran.
  out->append(R"(,"flags":)");
  Decimal(out, static_cast<unsigned>(span.trace_flags));
  out->append(R"(,"name":)");
  String(out, span.name);
  out->append(R"(,"kind":)");
  Decimal(out, static_cast<int>(span.kind));
  out->append(R"(,"startTimeUnixNano":)");
  QuotedDecimal(out, span.start_time_unix_nano);
  out->append(R"(,"endTimeUnixNano":)");
  QuotedDecimal(out, span.end_time_unix_nano);
  AppendMoreAttributes(span.attributes, out);
  if (!span.events.empty()) {
    out->append(R"(,"events":[)");
    for (size_t k = 0; k < span.events.size(); ++k) {
      if (k > 0) out->push_back(',');
      AppendEvent(span.events[k], out);
    }
    out->push_back(']');
  }
  if (!span.links.empty()) {
    out->append(R"(,"links":[)");
    for (size_t k = 0; k < span.links.size(); ++k) {
      if (k > 0) out->push_back(',');
      AppendLink(span.links[k], out);
    }
    out->push_back(']');
  }
  out->append(R"(,"status":{"code":)");
  Decimal(out, static_cast<int>(span.status_code));
  if (!span.status_message.empty()) {
    out->append(R"(,"message":)");
    String(out, span.status_message);
  }
  out->append("}}");
}

void AppendTracesDataJson(std::span<const model::Span> spans, std::string* out) {
  const ResourceGroups groups = GroupByResource(spans);
  // The scope is the same in every group: escaped once.
  std::string scope = R"(,"scopeSpans":[{"scope":{"name":)";
  String(&scope, model::kScopeName);
  scope += R"(,"version":)";
  String(&scope, KSPAN_VERSION);
  scope += R"(},"spans":[)";
  out->append(R"({"resourceSpans":[)");
  for (size_t g = 0; g < groups.resources.size(); ++g) {
    if (g > 0) out->push_back(',');
    out->push_back('{');
    AppendResource(groups.resources[g], out);
    out->append(scope);
    for (uint32_t k = groups.start[g]; k < groups.start[g + 1]; ++k) {
      if (k > groups.start[g]) out->push_back(',');
      AppendSpanJson(spans[groups.order[k]], out);
    }
    out->append("]}]}");
  }
  out->append("]}");
}

}  // namespace kspan::exporters
