#include "ui/ui_routes.h"

#include "common/json.h"
#include "ui/assets.h"
#include "ui/jaeger_api.h"

namespace kspan::ui {
namespace {

constexpr const char* kJson = "application/json";
constexpr size_t kTailDefault = 100;

http::Response Page() {
  const Asset* a = FindAsset("index.html");
  if (!a) return http::Response{500, "text/plain; charset=utf-8", "the UI was built without its page\n", {}};
  return http::Response{200, std::string(a->content_type), std::string(a->data), {}};
}

http::Response BadRequest(const std::string& msg) {
  std::string out = "{\"error\":";
  JsonWriter w(&out);
  w.String(msg);
  out += "}\n";
  return http::Response{400, kJson, std::move(out), {}};
}

std::optional<uint64_t> Uint(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

Result<store::TraceQuery> ParseUiSearch(std::string_view query) {
  store::TraceQuery q;
  for (const auto& [k, v] : ParseQueryString(query)) {
    if (v.empty()) continue;
    if (k == "service") {
      q.service = v;
    } else if (k == "operation") {
      q.operation = v;
    } else if (k == "status") {
      if (v != "error" && v != "any") return InvalidArgument("status: '" + v + "'; expected error or any");
      q.error_only = v == "error";
    } else if (k == "minDuration" || k == "maxDuration") {
      auto d = ParseGoDuration(v);
      if (!d) return InvalidArgument(k + ": '" + v + "' is not a duration (1.2s, 100ms, 500us)");
      (k == "minDuration" ? q.min_duration_ns : q.max_duration_ns) = *d;
    } else if (k == "attr") {
      const size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) return InvalidArgument("attr: '" + v + "'; expected KEY=VALUE");
      q.attributes.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (k == "start" || k == "end") {
      auto us = Uint(v);
      if (!us) return InvalidArgument(k + ": '" + v + "'; expected Unix microseconds");
      (k == "start" ? q.start_min_ns : q.start_max_ns) = *us * 1000;
    } else if (k == "limit") {
      auto n = Uint(v);
      if (!n || *n == 0) return InvalidArgument("limit: '" + v + "'; expected 1..1000");
      q.limit = static_cast<size_t>(std::min<uint64_t>(*n, 1000));
    }
  }
  return q;
}

std::string TraceListJson(const std::vector<store::TraceSummary>& traces) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("traces");
  w.BeginArray();
  for (const store::TraceSummary& t : traces) {
    w.BeginObject();
    w.Key("traceID");
    w.String(t.trace_id.Hex());
    w.Key("rootService");
    w.String(t.root_service);
    w.Key("rootName");
    w.String(t.root_name);
    w.Key("startTime");
    w.Uint(t.start_ns / 1000);
    w.Key("duration");
    w.Uint(t.end_ns > t.start_ns ? (t.end_ns - t.start_ns) / 1000 : 0);
    w.Key("spanCount");
    w.Uint(t.span_count);
    w.Key("errorCount");
    w.Uint(t.error_count);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  out += '\n';
  return out;
}

void AddUiRoutes(http::HttpServer* server, store::TraceStore* store) {
  server->Handle("/", [](const http::Request& req) {
    if (req.path != "/") return http::Response{404, "text/plain; charset=utf-8", "not found\n", {}};
    return Page();
  });
  server->Handle("/traces/", [](const http::Request&) { return Page(); });
  server->Handle("/tail", [](const http::Request&) { return Page(); });
  server->Handle("/graph", [](const http::Request&) { return Page(); });
  server->Handle("/ui/", [](const http::Request& req) {
    const Asset* a = FindAsset(std::string_view(req.path).substr(4));
    if (!a || a->name == "index.html")
      return http::Response{404, "text/plain; charset=utf-8", "not found\n", {}};
    return http::Response{200, std::string(a->content_type), std::string(a->data), {}};
  });
  server->Handle("/api/ui/traces", [store](const http::Request& req) {
    auto q = ParseUiSearch(req.query);
    if (!q.ok()) return BadRequest(q.status().message());
    auto found = store->FindTraces(*q);
    if (!found.ok()) return http::Response{500, kJson, "{\"error\":\"store\"}\n", {}};
    return http::Response{200, kJson, TraceListJson(*found), {}};
  });
  server->Handle("/api/ui/tail", [store](const http::Request& req) {
    int64_t after = -1;
    for (const auto& [k, v] : ParseQueryString(req.query)) {
      if (k != "after") continue;
      auto n = Uint(v);
      if (!n) return BadRequest("after: '" + v + "'; expected a sequence number");
      after = static_cast<int64_t>(*n);
    }
    auto rows = store->Tail(after, kTailDefault);
    if (!rows.ok()) return http::Response{500, kJson, "{\"error\":\"store\"}\n", {}};
    std::string out;
    JsonWriter w(&out);
    w.BeginObject();
    w.Key("spans");
    w.BeginArray();
    for (const auto& r : *rows) {
      w.BeginObject();
      w.Key("seq");
      w.Int(r.seq);
      w.Key("traceID");
      w.String(r.trace_id.Hex());
      w.Key("spanID");
      w.String(r.span_id.Hex());
      w.Key("service");
      w.String(r.service);
      w.Key("name");
      w.String(r.name);
      w.Key("kind");
      w.String(model::SpanKindName(r.kind));
      w.Key("startTime");
      w.Uint(r.start_ns / 1000);
      w.Key("duration");
      w.Uint(r.duration_ns / 1000);
      w.Key("error");
      w.Bool(r.status == model::StatusCode::kError);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    out += '\n';
    return http::Response{200, kJson, std::move(out), {}};
  });
  AddJaegerRoutes(server, store);
}

}  // namespace kspan::ui
