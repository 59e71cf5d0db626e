#include "exporters/zipkin_json.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/json.h"

namespace kspan::exporters {
namespace {

std::string_view ZipkinKind(model::SpanKind kind) {
  switch (kind) {
    case model::SpanKind::kServer: return "SERVER";
    case model::SpanKind::kClient: return "CLIENT";
    case model::SpanKind::kProducer: return "PRODUCER";
    case model::SpanKind::kConsumer: return "CONSUMER";
    default: return {};  // INTERNAL and unspecified: a local span, no kind
  }
}

// Nanoseconds to microseconds, rounding half up (JavaScript's Math.round).
uint64_t Micros(uint64_t ns) {
  return ns / 1000 + (ns % 1000 >= 500 ? 1 : 0);
}

std::string TagValue(const model::AttributeValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return JsNumberString(*d);
  if (const auto* arr = std::get_if<model::StringArray>(&v)) {
    // Zipkin tags are strings: an array goes as its JSON text, ["stop","length"].
    std::string out = "[";
    for (const std::string& s : *arr) {
      if (out.size() > 1) out += ',';
      out += '"';
      AppendJsonEscaped(&out, s);
      out += '"';
    }
    return out + "]";
  }
  return std::get<bool>(v) ? "true" : "false";
}

const std::string* FindString(const std::vector<model::Attribute>& attributes, std::string_view key) {
  for (const auto& a : attributes) {
    if (a.key == key) return std::get_if<std::string>(&a.value);
  }
  return nullptr;
}

// Tags in first-insertion order with later values replacing earlier ones, as a JS object.
class Tags {
 public:
  void Set(std::string_view key, std::string value) {
    for (auto& [k, v] : tags_) {
      if (k == key) {
        v = std::move(value);
        return;
      }
    }
    tags_.emplace_back(std::string(key), std::move(value));
  }
  void Write(JsonWriter* w) const {
    w->BeginObject();
    for (const auto& [k, v] : tags_) {
      w->Key(k);
      w->String(v);
    }
    w->EndObject();
  }

 private:
  std::vector<std::pair<std::string, std::string>> tags_;
};

void AppendRemoteEndpoint(const model::Span& span, JsonWriter* w) {
  const std::string* address = FindString(span.attributes, "network.peer.address");
  const std::string* service = FindString(span.attributes, "peer.service");
  const model::AttributeValue* port = span.Find("network.peer.port");
  const int64_t* port_value = port ? std::get_if<int64_t>(port) : nullptr;
  if (address == nullptr && service == nullptr) return;
  w->Key("remoteEndpoint");
  w->BeginObject();
  if (service != nullptr) {
    w->Key("serviceName");
    w->String(*service);
  }
  if (address != nullptr) {
    w->Key(address->find(':') != std::string::npos ? "ipv6" : "ipv4");
    w->String(*address);
  }
  if (port_value != nullptr && *port_value > 0 && *port_value <= 65535) {
    w->Key("port");
    w->Int(*port_value);
  }
  w->EndObject();
}

void AppendSpan(const model::Span& span, JsonWriter* w) {
  const std::vector<model::Attribute> no_attributes;
  const auto& resource = span.resource ? span.resource->attributes : no_attributes;
  w->BeginObject();
  w->Key("traceId");
  w->String(span.trace_id.Hex());
  if (span.parent_span_id.IsValid()) {
    w->Key("parentId");
    w->String(span.parent_span_id.Hex());
  }
  w->Key("name");
  w->String(span.name);
  w->Key("id");
  w->String(span.span_id.Hex());
  if (const std::string_view kind = ZipkinKind(span.kind); !kind.empty()) {
    w->Key("kind");
    w->String(kind);
  }
  w->Key("timestamp");
  w->Uint(Micros(span.start_time_unix_nano));
  w->Key("duration");
  w->Uint(span.end_time_unix_nano > span.start_time_unix_nano
              ? Micros(span.end_time_unix_nano - span.start_time_unix_nano)
              : 0);
  w->Key("localEndpoint");
  w->BeginObject();
  w->Key("serviceName");
  const std::string* service = FindString(span.attributes, "service.name");
  if (service == nullptr) service = FindString(resource, "service.name");
  w->String(service != nullptr ? *service : "unknown_service");
  w->EndObject();
  AppendRemoteEndpoint(span, w);

  Tags tags;
  for (const auto& a : span.attributes) tags.Set(a.key, TagValue(a.value));
  if (span.status_code != model::StatusCode::kUnset) {
    tags.Set("otel.status_code", span.status_code == model::StatusCode::kOk ? "OK" : "ERROR");
  }
  if (span.status_code == model::StatusCode::kError && !span.status_message.empty()) {
    tags.Set("error", span.status_message);
  }
  for (const auto& a : resource) tags.Set(a.key, TagValue(a.value));
  w->Key("tags");
  tags.Write(w);

  if (!span.events.empty()) {
    w->Key("annotations");
    w->BeginArray();
    for (const auto& e : span.events) {
      w->BeginObject();
      w->Key("timestamp");
      w->Uint(Micros(e.time_unix_nano));
      w->Key("value");
      w->String(e.name);
      w->EndObject();
    }
    w->EndArray();
  }
  w->EndObject();
}

}  // namespace

std::string JsNumberString(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";  // and -0, which String() also prints as "0"
  // ECMAScript Number::toString: the shortest digits that round-trip, d1..dk, with the
  // decimal point after position n (v = 0.d1..dk x 10^n), laid out by the size of n.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), std::fabs(v), std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));  // "d.ddde+XX"
  const size_t e_at = sci.find('e');
  std::string digits;
  for (const char c : sci.substr(0, e_at)) {
    if (c != '.') digits += c;
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int n = std::atoi(std::string(sci.substr(e_at + 1)).c_str()) + 1;
  const int k = static_cast<int>(digits.size());
  std::string out = v < 0 ? "-" : "";
  if (k <= n && n <= 21) {
    out += digits + std::string(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += (n - 1 >= 0 ? "e+" : "e-") + std::to_string(std::abs(n - 1));
  }
  return out;
}

void AppendZipkinJson(std::span<const model::Span> spans, std::string* out) {
  JsonWriter w(out);
  w.BeginArray();
  for (const auto& s : spans) AppendSpan(s, &w);
  w.EndArray();
}

}  // namespace kspan::exporters
