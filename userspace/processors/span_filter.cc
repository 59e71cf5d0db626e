#include "processors/span_filter.h"

#include <charconv>

namespace kspan::processors {
namespace {

constexpr std::string_view kGrammar =
    "expected service=NAME, executable=TEXT, port=N, route=ROUTE or attribute:KEY=VALUE";

std::string_view ResourceString(const model::Span& s, std::string_view key) {
  if (!s.resource) return {};
  for (const auto& a : s.resource->attributes) {
    if (a.key == key) {
      if (const auto* v = std::get_if<std::string>(&a.value)) return *v;
    }
  }
  return {};
}

std::string_view PathOf(const model::Span& s) {
  if (const std::string* p = s.FindString("url.path")) return std::string_view(*p).substr(0, p->find('?'));
  if (const std::string* full = s.FindString("url.full")) {
    std::string_view f = *full;
    const size_t scheme = f.find("://");
    const size_t slash = scheme == std::string_view::npos ? std::string_view::npos : f.find('/', scheme + 3);
    if (slash == std::string_view::npos) return {};
    f.remove_prefix(slash);
    return f.substr(0, f.find_first_of("?#"));
  }
  return {};
}

bool Equals(const model::AttributeValue& v, std::string_view want) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s == want;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i) == want;
  if (const auto* b = std::get_if<bool>(&v)) return (*b ? "true" : "false") == want;
  return false;
}

bool Matches(const FilterRule& r, const model::Span& s) {
  switch (r.kind) {
    case FilterRule::Kind::kService: return ResourceString(s, "service.name") == r.value;
    case FilterRule::Kind::kExecutable: {
      std::string_view exe = ResourceString(s, "process.executable.path");
      if (exe.empty()) exe = ResourceString(s, "process.executable.name");
      return !exe.empty() && exe.find(r.value) != std::string_view::npos;
    }
    case FilterRule::Kind::kPort: {
      const model::AttributeValue* v = s.Find("server.port");
      const auto* p = v ? std::get_if<int64_t>(v) : nullptr;
      return p && *p == r.port;
    }
    case FilterRule::Kind::kRoute: {
      if (const std::string* route = s.FindString("http.route")) return *route == r.value;
      if (const std::string* route = s.FindString("url.template")) return *route == r.value;
      return PathOf(s) == r.value;
    }
    case FilterRule::Kind::kAttribute: {
      const model::AttributeValue* v = s.Find(r.key);
      return v && Equals(*v, r.value);
    }
    case FilterRule::Kind::kTelemetry: {
      const std::string* method = s.FindString("http.request.method");
      if (!method || *method != "POST") return false;
      const std::string_view path = PathOf(s);
      for (std::string_view end : {"/v1/traces", "/v1/metrics", "/v1/logs", "/api/v2/spans"}) {
        if (path.ends_with(end)) return true;
      }
      return false;
    }
  }
  return false;
}

}  // namespace

Result<FilterRule> ParseFilterRule(std::string_view where, std::string_view spec) {
  FilterRule r;
  r.name = std::string(spec);
  auto bad = [&](std::string_view why) {
    return InvalidArgument(std::string(where) + ": filter '" + std::string(spec) + "' " + std::string(why) +
                           "; " + std::string(kGrammar));
  };
  auto value_after = [&](std::string_view prefix) -> std::string_view {
    return spec.starts_with(prefix) ? spec.substr(prefix.size()) : std::string_view();
  };
  if (std::string_view v = value_after("service="); !v.empty()) {
    r.kind = FilterRule::Kind::kService;
    r.value = std::string(v);
  } else if (std::string_view v = value_after("executable="); !v.empty()) {
    r.kind = FilterRule::Kind::kExecutable;
    r.value = std::string(v);
  } else if (std::string_view v = value_after("port="); !v.empty()) {
    r.kind = FilterRule::Kind::kPort;
    const auto res = std::from_chars(v.data(), v.data() + v.size(), r.port);
    if (res.ec != std::errc() || res.ptr != v.data() + v.size() || r.port < 1 || r.port > 65535) {
      return bad("has no port from 1 to 65535");
    }
  } else if (std::string_view v = value_after("route="); !v.empty()) {
    r.kind = FilterRule::Kind::kRoute;
    r.value = std::string(v);
  } else if (std::string_view kv = value_after("attribute:"); !kv.empty()) {
    r.kind = FilterRule::Kind::kAttribute;
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) return bad("has no KEY=VALUE");
    r.key = std::string(kv.substr(0, eq));
    r.value = std::string(kv.substr(eq + 1));
  } else {
    return bad("is not a filter");
  }
  return r;
}

FilterRule TelemetryRule() {
  FilterRule r;
  r.kind = FilterRule::Kind::kTelemetry;
  r.name = "telemetry";
  return r;
}

SpanFilter::SpanFilter(std::vector<FilterRule> rules, metrics::Registry* m) : rules_(std::move(rules)) {
  for (const FilterRule& r : rules_) {
    dropped_.push_back(m->GetCounter("kspan_filter_spans_dropped_total", {{"rule", r.name}}));
  }
  descendants_ = m->GetCounter("kspan_filter_spans_dropped_total", {{"rule", "descendant"}});
}

SpanFilter::IdKey SpanFilter::KeyOf(const model::TraceId& t, const model::SpanId& s) {
  IdKey k;
  for (size_t i = 8; i < 16; ++i) k.trace = (k.trace << 8) | t.bytes[i];
  for (size_t i = 0; i < 8; ++i) k.span = (k.span << 8) | s.bytes[i];
  return k;
}

int SpanFilter::Match(const model::Span& span) const {
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (Matches(rules_[i], span)) return static_cast<int>(i);
  }
  return -1;
}

void SpanFilter::Remember(const model::Span& span) {
  if (order_.size() >= kRemembered) {
    dropped_ids_.erase(order_.front());
    order_.pop_front();
  }
  const IdKey key = KeyOf(span.trace_id, span.span_id);
  if (dropped_ids_.insert(key).second) order_.push_back(key);
}

bool SpanFilter::OnExport(model::Span& span) noexcept {
  if (rules_.empty()) return true;
  if (span.parent_span_id.IsValid() && dropped_ids_.count(KeyOf(span.trace_id, span.parent_span_id))) {
    descendants_->Add();
    Remember(span);
    return false;
  }
  const int i = Match(span);
  if (i < 0) return true;
  dropped_[static_cast<size_t>(i)]->Add();
  Remember(span);
  return false;
}

}  // namespace kspan::processors
