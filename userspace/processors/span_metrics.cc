#include "processors/span_metrics.h"

#include <array>
#include <charconv>
#include <cstring>
#include <string_view>
#include <variant>

#include "common/text_hash.h"

namespace kspan::processors {
namespace {

// The semantic conventions' advised bucket boundaries (seconds).
const std::vector<double> kHttpBounds = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                         0.5,   0.75, 1,     2.5,  5,     7.5, 10};
const std::vector<double> kDbBounds = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};

// The attributes the metrics read, found in one pass over the span (Span::Find per key
// would walk the attributes a dozen times). A label's key is its slot: kService for
// service.name.
enum Slot : uint8_t {
  kRpcSystem,
  kRpcMethod,
  kRpcStatus,
  kDbSystem,
  kDbOperation,
  kDbNamespace,
  kDbStatus,
  kHttpMethod,
  kHttpStatus,
  kHttpRoute,
  kUrlTemplate,
  kServerAddress,
  kServerPort,
  kErrorType,
  kSlots,
  kService = kSlots,
};
constexpr std::array<std::string_view, kSlots + 1> kSlotKeys = {"rpc.system.name",
                                                                "rpc.method",
                                                                "rpc.response.status_code",
                                                                "db.system.name",
                                                                "db.operation.name",
                                                                "db.namespace",
                                                                "db.response.status_code",
                                                                "http.request.method",
                                                                "http.response.status_code",
                                                                "http.route",
                                                                "url.template",
                                                                "server.address",
                                                                "server.port",
                                                                "error.type",
                                                                "service.name"};

// The slot of an attribute key, or -1: by length, then one or two comparisons.
int SlotOf(std::string_view k) {
  auto is = [&k](Slot s) { return k == kSlotKeys[s]; };
  switch (k.size()) {
    case 10:
      return is(kRpcMethod) ? kRpcMethod : is(kHttpRoute) ? kHttpRoute : is(kErrorType) ? kErrorType : -1;
    case 11: return is(kServerPort) ? kServerPort : -1;
    case 12: return is(kDbNamespace) ? kDbNamespace : is(kUrlTemplate) ? kUrlTemplate : -1;
    case 14: return is(kDbSystem) ? kDbSystem : is(kServerAddress) ? kServerAddress : -1;
    case 15: return is(kRpcSystem) ? kRpcSystem : -1;
    case 17: return is(kDbOperation) ? kDbOperation : -1;
    case 19: return is(kHttpMethod) ? kHttpMethod : -1;
    case 23: return is(kDbStatus) ? kDbStatus : -1;
    case 24: return is(kRpcStatus) ? kRpcStatus : -1;
    case 25: return is(kHttpStatus) ? kHttpStatus : -1;
    default: return -1;
  }
}

}  // namespace

// One label of a span, pointing into the span (or, for a number, its digits here): no copy
// on the common path, where the series exists already.
struct SpanMetrics::Label {
  uint8_t slot = 0;
  std::string_view text;
  char digits[24];
};

struct SpanMetrics::LabelSet {
  std::array<Label, 12> items;
  size_t n = 0;
  void Add(uint8_t slot, std::string_view text) {
    items[n].slot = slot;
    items[n++].text = text;
  }
  // The attribute as a label: strings, integers and booleans; absent or of another type:
  // none.
  bool AddFrom(const model::AttributeValue* v, uint8_t slot) {
    if (!v) return false;
    if (const auto* s = std::get_if<std::string>(v)) {
      Add(slot, *s);
    } else if (const auto* i = std::get_if<int64_t>(v)) {
      Label& l = items[n++];
      l.slot = slot;
      l.text = std::string_view(
          l.digits,
          static_cast<size_t>(std::to_chars(l.digits, l.digits + sizeof l.digits, *i).ptr - l.digits));
    } else if (const auto* b = std::get_if<bool>(v)) {
      Add(slot, *b ? "true" : "false");
    } else {
      return false;
    }
    return true;
  }
  uint64_t Hash() const {
    uint64_t h = n;
    for (size_t i = 0; i < n; ++i) h = HashText(HashMix(h, items[i].slot), items[i].text);
    return h;
  }
  bool Equals(const std::vector<std::pair<uint8_t, std::string>>& stored) const {
    if (stored.size() != n) return false;
    for (size_t i = 0; i < n; ++i) {
      if (stored[i].first != items[i].slot || stored[i].second != items[i].text) return false;
    }
    return true;
  }
};

SpanMetrics::SpanMetrics(metrics::Registry* registry, size_t max_series)
    : registry_(registry), max_series_(max_series) {
  const char* names[kFamilies] = {kHttpServer, kHttpClient, kRpcServer, kRpcClient, kDbClient};
  for (int i = 0; i < kFamilies; ++i) {
    families_.push_back(
        {.name = names[i],
         .bounds = i == kDbClientIdx ? &kDbBounds : &kHttpBounds,
         .overflow_count = registry->GetCounter("kspan_span_metrics_overflow_total", {{"metric", names[i]}}),
         .overflow = nullptr,
         .series = {}});
  }
}

std::string_view SpanMetrics::ServiceOf(const model::Span& span) {
  return services_.Get(
      span.resource, [](const std::shared_ptr<const model::Resource>& r) { return ServiceNameOf(r.get()); });
}

metrics::Histogram* SpanMetrics::Series(Family& f, const LabelSet& labels) {
  if (f.last && labels.Equals(f.last->labels)) return f.last->histogram;
  const uint64_t hash = labels.Hash();
  for (auto [it, end] = f.series.equal_range(hash); it != end; ++it) {
    if (labels.Equals(it->second.labels)) {
      f.last = &it->second;  // a multimap's elements stay where they are
      return it->second.histogram;
    }
  }
  if (f.series.size() >= max_series_) {
    f.overflow_count->Add();
    if (!f.overflow)
      f.overflow = registry_->GetHistogram(f.name, {{"otel.metric.overflow", "true"}}, *f.bounds);
    return f.overflow;
  }
  metrics::Labels out;
  out.reserve(labels.n);
  SeriesEntry entry;
  entry.labels.reserve(labels.n);
  for (size_t i = 0; i < labels.n; ++i) {
    const Label& l = labels.items[i];
    entry.labels.emplace_back(l.slot, std::string(l.text));
    out.emplace_back(std::string(kSlotKeys[l.slot]), std::string(l.text));
  }
  entry.histogram = registry_->GetHistogram(f.name, registry_->Redacted(std::move(out)), *f.bounds);
  f.last = &f.series.emplace(hash, std::move(entry))->second;
  return f.last->histogram;
}

bool SpanMetrics::OnExport(model::Span& span) noexcept {
  const bool server = span.kind == model::SpanKind::kServer;
  const bool client = span.kind == model::SpanKind::kClient;
  if (!server && !client) return true;

  // The first attribute of each key, as Span::Find would find it.
  std::array<const model::AttributeValue*, kSlots> found{};
  for (const model::Attribute& a : span.attributes) {
    const int slot = SlotOf(a.key);
    if (slot >= 0 && !found[slot]) found[slot] = &a.value;
  }

  int family;
  if (found[kRpcSystem]) {
    family = server ? kRpcServerIdx : kRpcClientIdx;
  } else if (client && found[kDbSystem]) {
    family = kDbClientIdx;
  } else if (found[kHttpMethod]) {
    family = server ? kHttpServerIdx : kHttpClientIdx;
  } else {
    return true;
  }

  LabelSet labels;
  labels.Add(kService, ServiceOf(span));
  auto add = [&](Slot s) { return labels.AddFrom(found[s], s); };
  switch (family) {
    case kRpcServerIdx:
    case kRpcClientIdx:
      add(kRpcSystem);
      add(kRpcMethod);
      add(kRpcStatus);
      break;
    case kDbClientIdx:
      add(kDbSystem);
      add(kDbOperation);
      add(kDbNamespace);
      add(kDbStatus);
      break;
    case kHttpServerIdx:
      add(kHttpMethod);
      add(kHttpStatus);
      if (!add(kHttpRoute)) add(kUrlTemplate);
      break;
    case kHttpClientIdx:
      add(kHttpMethod);
      add(kHttpStatus);
      add(kUrlTemplate);
      break;
  }
  if (client) {
    add(kServerAddress);
    add(kServerPort);
  }
  if (span.status_code == model::StatusCode::kError && !add(kErrorType)) labels.Add(kErrorType, "_OTHER");

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
