#include "processors/span_metrics.h"

#include <string_view>
#include <variant>

namespace kspan::processors {
namespace {

// The semantic conventions' advised bucket boundaries (seconds).
const std::vector<double> kHttpBounds = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                         0.5,   0.75, 1,     2.5,  5,     7.5, 10};
const std::vector<double> kDbBounds = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};

std::string ServiceOf(const model::Span& span) {
  if (span.resource) {
    for (const model::Attribute& a : span.resource->attributes) {
      if (a.key == "service.name") {
        if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
      }
    }
  }
  return "unknown_service";
}

// The attribute as a label value: strings as they are, integers in decimal.
bool ValueOf(const model::Span& span, std::string_view key, std::string* out) {
  const model::AttributeValue* v = span.Find(key);
  if (!v) return false;
  if (const auto* s = std::get_if<std::string>(v)) {
    *out = *s;
    return true;
  }
  if (const auto* i = std::get_if<int64_t>(v)) {
    *out = std::to_string(*i);
    return true;
  }
  if (const auto* b = std::get_if<bool>(v)) {
    *out = *b ? "true" : "false";
    return true;
  }
  return false;
}

void Add(const model::Span& span, std::string_view key, metrics::Labels* labels) {
  std::string v;
  if (ValueOf(span, key, &v)) labels->emplace_back(std::string(key), std::move(v));
}

}  // namespace

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

metrics::Histogram* SpanMetrics::Series(Family& f, const metrics::Labels& labels) {
  key_.clear();
  for (const auto& [k, v] : labels) {
    key_ += k;
    key_ += '\x1f';
    key_ += v;
    key_ += '\x1e';
  }
  if (auto it = f.series.find(key_); it != f.series.end()) return it->second;
  if (f.series.size() >= max_series_) {
    f.overflow_count->Add();
    if (!f.overflow)
      f.overflow = registry_->GetHistogram(f.name, {{"otel.metric.overflow", "true"}}, *f.bounds);
    return f.overflow;
  }
  metrics::Histogram* h = registry_->GetHistogram(f.name, labels, *f.bounds);
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

  metrics::Labels labels;
  labels.reserve(8);
  labels.emplace_back("service.name", ServiceOf(span));
  switch (family) {
    case kRpcServerIdx:
    case kRpcClientIdx:
      Add(span, "rpc.system.name", &labels);
      Add(span, "rpc.method", &labels);
      Add(span, "rpc.response.status_code", &labels);
      break;
    case kDbClientIdx:
      Add(span, "db.system.name", &labels);
      Add(span, "db.operation.name", &labels);
      Add(span, "db.namespace", &labels);
      Add(span, "db.response.status_code", &labels);
      break;
    case kHttpServerIdx:
      Add(span, "http.request.method", &labels);
      Add(span, "http.response.status_code", &labels);
      if (span.Find("http.route")) {
        Add(span, "http.route", &labels);
      } else {
        Add(span, "url.template", &labels);
      }
      break;
    case kHttpClientIdx:
      Add(span, "http.request.method", &labels);
      Add(span, "http.response.status_code", &labels);
      Add(span, "url.template", &labels);
      break;
  }
  if (client) {
    Add(span, "server.address", &labels);
    Add(span, "server.port", &labels);
  }
  if (span.status_code == model::StatusCode::kError) {
    std::string type;
    if (!ValueOf(span, "error.type", &type)) type = "_OTHER";
    labels.emplace_back("error.type", std::move(type));
  }

  const double seconds = span.end_time_unix_nano > span.start_time_unix_nano
                             ? static_cast<double>(span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
                             : 0;
  Series(families_[family], labels)->Record(seconds);
  return true;
}

}  // namespace kspan::processors
