#include "ui/jaeger_api.h"

#include <chrono>
#include <map>

#include "common/json.h"
#include "genai/json.h"

namespace kspan::ui {
namespace {

constexpr const char* kJson = "application/json";
constexpr size_t kMaxTraceIds = 100;

uint64_t NowUnixNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<uint64_t> ParseUint(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// A Jaeger trace id: up to 32 hex digits, left-padded with zeros (Jaeger accepts short ids).
std::optional<model::TraceId> ParseTraceId(std::string_view hex) {
  if (hex.empty() || hex.size() > 32) return std::nullopt;
  std::string padded(32 - hex.size(), '0');
  padded += hex;
  model::TraceId id;
  if (!model::ParseHexId(padded, id.bytes.data(), 16) || !id.IsValid()) return std::nullopt;
  return id;
}

// The envelope around `data` (raw JSON).
std::string Envelope(std::string_view data, size_t total) {
  std::string out = "{\"data\":";
  out += data;
  out += ",\"total\":" + std::to_string(total) + ",\"limit\":0,\"offset\":0,\"errors\":null}\n";
  return out;
}

http::Response Error(int code, std::string_view msg) {
  std::string out = "{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{\"code\":";
  out += std::to_string(code) + ",\"msg\":";
  JsonWriter w(&out);
  w.String(msg);
  out += "}]}\n";
  return http::Response{code, kJson, std::move(out), {}};
}

void Tag(JsonWriter* w, std::string_view key, const model::AttributeValue& v) {
  w->BeginObject();
  w->Key("key");
  w->String(key);
  w->Key("type");
  if (const auto* s = std::get_if<std::string>(&v)) {
    w->String("string");
    w->Key("value");
    w->String(*s);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    w->String("int64");
    w->Key("value");
    w->Int(*i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    w->String("float64");
    w->Key("value");
    w->Double(*d);
  } else if (const auto* b = std::get_if<bool>(&v)) {
    w->String("bool");
    w->Key("value");
    w->Bool(*b);
  } else {
    // A string array: its JSON text, as Jaeger's OTLP translator keeps non-scalar values.
    std::string text;
    JsonWriter a(&text);
    a.BeginArray();
    for (const std::string& s : std::get<model::StringArray>(v)) a.String(s);
    a.EndArray();
    w->String("string");
    w->Key("value");
    w->String(text);
  }
  w->EndObject();
}

void Reference(JsonWriter* w, const char* type, const model::TraceId& t, const model::SpanId& s) {
  w->BeginObject();
  w->Key("refType");
  w->String(type);
  w->Key("traceID");
  w->String(t.Hex());
  w->Key("spanID");
  w->String(s.Hex());
  w->EndObject();
}

std::string KindTag(model::SpanKind k) {
  switch (k) {
    case model::SpanKind::kServer: return "server";
    case model::SpanKind::kClient: return "client";
    case model::SpanKind::kProducer: return "producer";
    case model::SpanKind::kConsumer: return "consumer";
    case model::SpanKind::kInternal: return "internal";
    default: return "";
  }
}

std::string ServiceName(const model::Resource* r) {
  if (r) {
    for (const auto& a : r->attributes) {
      if (a.key == "service.name") {
        if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
      }
    }
  }
  return "unknown_service";
}

void AppendJsonStrings(const std::vector<std::string>& v, std::string* out) {
  JsonWriter w(out);
  w.BeginArray();
  for (const auto& s : v) w.String(s);
  w.EndArray();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ParseQueryString(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(PercentDecode(part), "");
    } else {
      out.emplace_back(PercentDecode(part.substr(0, eq)), PercentDecode(part.substr(eq + 1)));
    }
  }
  return out;
}

std::optional<uint64_t> ParseGoDuration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (s == "0") return 0;
  double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    double whole = 0, frac = 0, scale = 1;
    bool digits = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') whole = whole * 10 + (s[i++] - '0'), digits = true;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9')
        scale /= 10, frac += (s[i++] - '0') * scale, digits = true;
    }
    if (!digits) return std::nullopt;
    s.remove_prefix(i);
    static constexpr std::pair<std::string_view, double> kUnits[] = {
        {"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
        {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
    double unit = 0;
    for (const auto& [name, ns] : kUnits) {
      // In this order "ms" is tried before "m", and "us" before "s".
      if (s.starts_with(name)) {
        unit = ns;
        s.remove_prefix(name.size());
        break;
      }
    }
    if (unit == 0) return std::nullopt;
    total += (whole + frac) * unit;
  }
  if (total > 9.2e18) return std::nullopt;
  return static_cast<uint64_t>(total);
}

Result<store::TraceQuery> ParseJaegerSearch(const std::vector<std::pair<std::string, std::string>>& params,
                                            uint64_t now_ns) {
  store::TraceQuery q;
  uint64_t lookback_ns = 0;
  bool have_start = false;
  auto add_tag = [&q](const std::string& k, const std::string& v) {
    if (k == "error" && v == "true") {
      q.error_only = true;
    } else {
      q.attributes.emplace_back(k, v);
    }
  };
  for (const auto& [k, v] : params) {
    if (k == "service") {
      q.service = v;
    } else if (k == "operation") {
      q.operation = v;
    } else if (k == "limit") {
      auto n = ParseUint(v);
      if (!n) return InvalidArgument("unable to parse param 'limit': " + v);
      q.limit = static_cast<size_t>(std::min<uint64_t>(*n, 1000));
      if (q.limit == 0) q.limit = 20;
    } else if (k == "start" || k == "end") {
      if (v.empty()) continue;
      auto us = ParseUint(v);
      if (!us) return InvalidArgument("unable to parse param '" + k + "': " + v);
      (k == "start" ? q.start_min_ns : q.start_max_ns) = *us * 1000;
      if (k == "start") have_start = true;
    } else if (k == "minDuration" || k == "maxDuration") {
      if (v.empty()) continue;
      auto d = ParseGoDuration(v);
      if (!d)
        return InvalidArgument("unable to parse param '" + k + "': " + v +
                               " (a duration: 1.2s, 100ms, 500us)");
      (k == "minDuration" ? q.min_duration_ns : q.max_duration_ns) = *d;
    } else if (k == "lookback") {
      if (v.empty() || v == "custom") continue;
      auto d = ParseGoDuration(v);
      if (!d) return InvalidArgument("unable to parse param 'lookback': " + v);
      lookback_ns = *d;
    } else if (k == "tag") {
      const size_t colon = v.find(':');
      if (colon == std::string::npos)
        return InvalidArgument("malformed 'tag' parameter, expected key:value: " + v);
      add_tag(v.substr(0, colon), v.substr(colon + 1));
    } else if (k == "tags") {
      const genai::json::Document doc = genai::json::Parse(v);
      if (doc.status() != genai::json::ParseStatus::kOk || doc.root().type() != genai::json::Type::kObject) {
        return InvalidArgument("malformed 'tags' parameter, expected a JSON object of strings: " + v);
      }
      for (const genai::json::Value m : doc.root().children()) {
        std::string value;
        if (auto s = m.AsString()) {
          value = std::string(*s);
        } else if (!m.raw_number().empty()) {
          value = std::string(m.raw_number());
        } else if (auto b = m.AsBool()) {
          value = *b ? "true" : "false";
        } else {
          return InvalidArgument("malformed 'tags' parameter: the value of '" + std::string(m.key()) +
                                 "' is not a string");
        }
        add_tag(std::string(m.key()), value);
      }
    }
  }
  if (q.min_duration_ns && q.max_duration_ns && q.max_duration_ns < q.min_duration_ns) {
    return InvalidArgument("'maxDuration' should be greater than 'minDuration'");
  }
  if (lookback_ns && !have_start && now_ns > lookback_ns) q.start_min_ns = now_ns - lookback_ns;
  return q;
}

void AppendJaegerTrace(std::span<const model::Span> spans, std::string* out) {
  // Processes: one per resource, "p1", "p2", ... in order of first use.
  std::map<const model::Resource*, std::string> pids;
  std::vector<const model::Resource*> order;
  for (const model::Span& s : spans) {
    if (pids.emplace(s.resource.get(), "").second) {
      order.push_back(s.resource.get());
      pids[s.resource.get()] = "p" + std::to_string(order.size());
    }
  }
  JsonWriter w(out);
  w.BeginObject();
  w.Key("traceID");
  w.String(spans.empty() ? std::string() : spans.front().trace_id.Hex());
  w.Key("spans");
  w.BeginArray();
  for (const model::Span& s : spans) {
    w.BeginObject();
    w.Key("traceID");
    w.String(s.trace_id.Hex());
    w.Key("spanID");
    w.String(s.span_id.Hex());
    w.Key("flags");
    w.Uint(s.trace_flags);
    w.Key("operationName");
    w.String(s.name);
    w.Key("references");
    w.BeginArray();
    if (s.parent_span_id.IsValid()) Reference(&w, "CHILD_OF", s.trace_id, s.parent_span_id);
    for (const model::SpanLink& l : s.links) Reference(&w, "FOLLOWS_FROM", l.trace_id, l.span_id);
    w.EndArray();
    w.Key("startTime");
    w.Uint(s.start_time_unix_nano / 1000);
    w.Key("duration");
    w.Uint(s.end_time_unix_nano > s.start_time_unix_nano
               ? (s.end_time_unix_nano - s.start_time_unix_nano) / 1000
               : 0);
    w.Key("tags");
    w.BeginArray();
    for (const model::Attribute& a : s.attributes) Tag(&w, a.key, a.value);
    if (const std::string kind = KindTag(s.kind); !kind.empty()) Tag(&w, "span.kind", kind);
    if (s.status_code != model::StatusCode::kUnset) {
      Tag(&w, "otel.status_code", std::string(s.status_code == model::StatusCode::kError ? "ERROR" : "OK"));
    }
    if (!s.status_message.empty()) Tag(&w, "otel.status_description", s.status_message);
    if (s.status_code == model::StatusCode::kError) Tag(&w, "error", true);
    if (!s.trace_state.empty()) Tag(&w, "w3c.tracestate", s.trace_state);
    w.EndArray();
    w.Key("logs");
    w.BeginArray();
    for (const model::SpanEvent& e : s.events) {
      w.BeginObject();
      w.Key("timestamp");
      w.Uint(e.time_unix_nano / 1000);
      w.Key("fields");
      w.BeginArray();
      Tag(&w, "event", e.name);
      for (const model::Attribute& a : e.attributes) Tag(&w, a.key, a.value);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.Key("processID");
    w.String(pids[s.resource.get()]);
    w.Key("warnings");
    w.Null();
    w.EndObject();
  }
  w.EndArray();
  w.Key("processes");
  w.BeginObject();
  for (const model::Resource* r : order) {
    w.Key(pids[r]);
    w.BeginObject();
    w.Key("serviceName");
    w.String(ServiceName(r));
    w.Key("tags");
    w.BeginArray();
    if (r) {
      for (const model::Attribute& a : r->attributes) {
        if (a.key != "service.name") Tag(&w, a.key, a.value);
      }
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  w.Key("warnings");
  w.Null();
  w.EndObject();
}

namespace {

// Traces, by id, as the Jaeger envelope of Trace objects (missing ones are left out).
Result<std::pair<std::string, size_t>> TracesJson(store::TraceStore* store,
                                                  const std::vector<model::TraceId>& ids) {
  std::string data = "[";
  size_t n = 0;
  for (const model::TraceId& id : ids) {
    auto spans = store->GetTrace(id);
    if (!spans.ok()) return spans.status();
    if (spans->empty()) continue;
    if (n++) data += ',';
    AppendJaegerTrace(*spans, &data);
  }
  data += ']';
  return std::make_pair(std::move(data), n);
}

http::Response Ok(std::string_view data, size_t total) {
  return http::Response{200, kJson, Envelope(data, total), {}};
}

}  // namespace

void AddJaegerRoutes(http::HttpServer* server, store::TraceStore* store) {
  server->Handle("/api/services", [store](const http::Request&) {
    auto s = store->Services();
    if (!s.ok()) return Error(500, s.status().message());
    std::string data;
    AppendJsonStrings(*s, &data);
    return Ok(data, s->size());
  });
  // /api/services/{service}/operations
  server->Handle("/api/services/", [store](const http::Request& req) {
    std::string_view rest = std::string_view(req.path).substr(std::string_view("/api/services/").size());
    constexpr std::string_view kOps = "/operations";
    if (!rest.ends_with(kOps) || rest.size() == kOps.size()) return Error(404, "not found");
    const std::string service = PercentDecode(rest.substr(0, rest.size() - kOps.size()));
    auto ops = store->Operations(service);
    if (!ops.ok()) return Error(500, ops.status().message());
    std::vector<std::string> names;
    for (const auto& [name, kind] : *ops) {
      if (names.empty() || names.back() != name) names.push_back(name);
    }
    std::string data;
    AppendJsonStrings(names, &data);
    return Ok(data, names.size());
  });
  server->Handle("/api/operations", [store](const http::Request& req) {
    std::string service, kind;
    for (const auto& [k, v] : ParseQueryString(req.query)) {
      if (k == "service") service = v;
      if (k == "spanKind") kind = v;
    }
    if (service.empty()) return Error(400, "parameter 'service' is required");
    auto ops = store->Operations(service);
    if (!ops.ok()) return Error(500, ops.status().message());
    std::string data;
    JsonWriter w(&data);
    w.BeginArray();
    size_t n = 0;
    for (const auto& [name, k] : *ops) {
      std::string lower(k);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!kind.empty() && kind != lower) continue;
      w.BeginObject();
      w.Key("name");
      w.String(name);
      w.Key("spanKind");
      w.String(lower == "unspecified" ? "" : lower);
      w.EndObject();
      ++n;
    }
    w.EndArray();
    return Ok(data, n);
  });
  server->Handle("/api/traces", [store](const http::Request& req) {
    const auto params = ParseQueryString(req.query);
    std::vector<model::TraceId> ids;
    for (const auto& [k, v] : params) {
      if (k != "traceID") continue;
      auto id = ParseTraceId(v);
      if (!id) return Error(400, "malformed parameter 'traceID': " + v);
      if (ids.size() < kMaxTraceIds) ids.push_back(*id);
    }
    if (ids.empty()) {
      auto q = ParseJaegerSearch(params, NowUnixNs());
      if (!q.ok()) return Error(400, q.status().message());
      if (q->service.empty()) return Error(400, "parameter 'service' is required");
      auto found = store->FindTraces(*q);
      if (!found.ok()) return Error(500, found.status().message());
      for (const auto& t : *found) ids.push_back(t.trace_id);
    }
    auto traces = TracesJson(store, ids);
    if (!traces.ok()) return Error(500, traces.status().message());
    return Ok(traces->first, traces->second);
  });
  server->Handle("/api/traces/", [store](const http::Request& req) {
    const std::string_view hex = std::string_view(req.path).substr(std::string_view("/api/traces/").size());
    auto id = ParseTraceId(hex);
    if (!id) return Error(400, "malformed trace id: " + std::string(hex));
    auto traces = TracesJson(store, {*id});
    if (!traces.ok()) return Error(500, traces.status().message());
    if (traces->second == 0) return Error(404, "trace not found");
    return Ok(traces->first, traces->second);
  });
  server->Handle("/api/dependencies", [store](const http::Request& req) {
    uint64_t end_ms = NowUnixNs() / 1'000'000, lookback_ms = 24 * 3600 * 1000;
    for (const auto& [k, v] : ParseQueryString(req.query)) {
      if (k != "endTs" && k != "lookback") continue;
      auto n = ParseUint(v);
      if (!n) return Error(400, "unable to parse param '" + k + "': " + v);
      (k == "endTs" ? end_ms : lookback_ms) = *n;
    }
    const uint64_t to = end_ms * 1'000'000;
    const uint64_t from = lookback_ms * 1'000'000 < to ? to - lookback_ms * 1'000'000 : 0;
    auto deps = store->Dependencies(from, to);
    if (!deps.ok()) return Error(500, deps.status().message());
    std::string data;
    JsonWriter w(&data);
    w.BeginArray();
    for (const store::Dependency& d : *deps) {
      w.BeginObject();
      w.Key("parent");
      w.String(d.parent);
      w.Key("child");
      w.String(d.child);
      w.Key("callCount");
      w.Uint(d.call_count);
      w.EndObject();
    }
    w.EndArray();
    return Ok(data, deps->size());
  });
}

}  // namespace kspan::ui
