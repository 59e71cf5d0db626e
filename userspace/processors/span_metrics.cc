#include "processors/span_metrics.h"

#include <array>
#include <charconv>
#include <string_view>
#include <variant>

namespace kspan::processors {
namespace {

// The semantic conventions' advised bucket boundaries (seconds).
const std::vector<double> kHttpBounds = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                         0.5,   0.75, 1,     2.5,  5,     7.5, 10};
const std::vector<double> kDbBounds = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};

std::string_view ServiceOf(const model::Span& span) {
  if (span.resource) {
    for (const model::Attribute& a : span.resource->attributes) {
      if (a.key == "service.name") {
        if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
      }
    }
  }
  return "unknown_service";
}

// One label of a span, pointing into the span (no copy on the common path, where the
// series exists already).
struct Label {
  std::string_view key;
  std::string_view text;  // a string value, or empty for a number
  int64_t number = 0;
  bool is_number = false;
};

void AppendValue(const Label& l, std::string* out) {
  if (!l.is_number) {
    out->append(l.text);
    return;
  }
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, l.number);
  out->append(buf, r.ptr);
}

}  // namespace

struct SpanMetrics::LabelSet {
  std::array<Label, 12> items;
  size_t n = 0;
  void Add(std::string_view key, std::string_view text) { items[n++] = {key, text, 0, false}; }
  // The span's attribute as a label: strings and integers; absent or of another type: none.
  bool AddFrom(const model::Span& span, std::string_view key) {
    const model::AttributeValue* v = span.Find(key);
    if (!v) return false;
    if (const auto* s = std::get_if<std::string>(v)) {
      Add(key, *s);
    } else if (const auto* i = std::get_if<int64_t>(v)) {
      items[n++] = {key, {}, *i, true};
    } else if (const auto* b = std::get_if<bool>(v)) {
      Add(key, *b ? "true" : "false");
    } else {
      return false;
    }
    return true;
  }
};

SpanMetrics::SpanMetrics(metrics::Registry* registry, size_t max_series)
    : registry_(registry), max_series_(max_series) {
  const char* names[kFamilies] = {kHttpServer, kHttpClient, kRpcServer, kRpcClient, kDbClient};
  for (int i = 0; i < kFamilies; ++i) {
    families_.push_back({.name = names[i],
                         .bounds = i == kDbClientIdx ? &kDbBounds : &kHttpBounds,
                         .overflow_count = registry->GetCounter("kspan_span_metrics_overflow_total",
                                                                {{"metric", names[i]}})});
  }
}

metrics::Histogram* SpanMetrics::Series(Family& f, const LabelSet& labels) {
  key_.clear();
  for (size_t i = 0; i < labels.n; ++i) {
    key_.append(labels.items[i].key);
    key_.push_back('\x1f');
    AppendValue(labels.items[i], &key_);
    key_.push_back('\x1e');
  }
  if (auto it = f.series.find(key_); it != f.series.end()) return it->second;
  if (f.series.size() >= max_series_) {
    f.overflow_count->Add();
    if (!f.overflow)
      f.overflow = registry_->GetHistogram(f.name, {{"otel.metric.overflow", "true"}}, *f.bounds);
    return f.overflow;
  }
  metrics::Labels out;
  out.reserve(labels.n);
  for (size_t i = 0; i < labels.n; ++i) {
    std::string value;
    AppendValue(labels.items[i], &value);
    if (redact_) redact_(&value);
    out.emplace_back(std::string(labels.items[i].key), std::move(value));
  }
  metrics::Histogram* h = registry_->GetHistogram(f.name, out, *f.bounds);
  f.series.emplace(key_, h);
  return h;
}

bool SpanMetrics::OnExport(model::Span& span) noexcept {
  const bool server = span.kind == model::SpanKind::kServer;
  const bool client = span.kind == model::SpanKind::kClient;
  if (!server && !client) return true;

  int family;
  if (span.Find("rpc.system.name")) {
    family = server ? kRpcServerIdx : kRpcClientIdx;
  } else if (client && span.Find("db.system.name")) {
    family = kDbClientIdx;
  } else if (span.Find("http.request.method")) {
    family = server ? kHttpServerIdx : kHttpClientIdx;
  } else {
    return true;
  }

  LabelSet labels;
  labels.Add("service.name", ServiceOf(span));
  switch (family) {
    case kRpcServerIdx:
    case kRpcClientIdx:
      labels.AddFrom(span, "rpc.system.name");
      labels.AddFrom(span, "rpc.method");
      labels.AddFrom(span, "rpc.response.status_code");
      break;
    case kDbClientIdx:
      labels.AddFrom(span, "db.system.name");
      labels.AddFrom(span, "db.operation.name");
      labels.AddFrom(span, "db.namespace");
      labels.AddFrom(span, "db.response.status_code");
      break;
    case kHttpServerIdx:
      labels.AddFrom(span, "http.request.method");
      labels.AddFrom(span, "http.response.status_code");
      if (!labels.AddFrom(span, "http.route")) labels.AddFrom(span, "url.template");
      break;
    case kHttpClientIdx:
      labels.AddFrom(span, "http.request.method");
      labels.AddFrom(span, "http.response.status_code");
      labels.AddFrom(span, "url.template");
      break;
  }
  if (client) {
    labels.AddFrom(span, "server.address");
    labels.AddFrom(span, "server.port");
  }
  if (span.status_code == model::StatusCode::kError && !labels.AddFrom(span, "error.type")) {
    labels.Add("error.type", "_OTHER");
  }

  const double seconds = span.end_time_unix_nano > span.start_time_unix_nano
                             ? static_cast<double>(span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
                             : 0;
  // The span is its bucket's exemplar (the most recent wins): a link from the metric to a
  // trace. The samplers decide after this, so an exemplar can name a trace they drop
  // (docs/metrics.md says so).
  metrics::Exemplar exemplar;
  exemplar.trace_id = span.trace_id.bytes;
  exemplar.span_id = span.span_id.bytes;
  exemplar.time_unix_nano = span.end_time_unix_nano ? span.end_time_unix_nano : 1;
  Series(families_[family], labels)->Record(seconds, exemplar);
  return true;
}

}  // namespace kspan::processors
