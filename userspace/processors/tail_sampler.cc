#include "processors/tail_sampler.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "processors/head_sampler.h"

namespace kspan::processors {
namespace {

constexpr std::string_view kGrammar =
    "expected error, latency>DURATION[:service=NAME|:route=ROUTE], attribute:KEY=VALUE, "
    "genai_tokens>N or probabilistic:RATIO";

Status Bad(std::string_view where, std::string_view spec, std::string_view why) {
  return InvalidArgument(std::string(where) + ": tail policy '" + std::string(spec) + "' " +
                         std::string(why) + "; " + std::string(kGrammar));
}

bool ParseDurationNs(std::string_view text, uint64_t* out) {
  uint64_t v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr == text.data()) return false;
  const std::string_view unit(r.ptr, static_cast<size_t>(text.data() + text.size() - r.ptr));
  uint64_t mul;
  if (unit == "ns") {
    mul = 1;
  } else if (unit == "us") {
    mul = 1'000;
  } else if (unit == "ms") {
    mul = 1'000'000;
  } else if (unit == "s") {
    mul = 1'000'000'000;
  } else {
    return false;
  }
  if (v > std::numeric_limits<uint64_t>::max() / mul) return false;
  *out = v * mul;
  return true;
}

std::string_view ServiceOf(const model::Span& s) {
  if (!s.resource) return {};
  for (const auto& a : s.resource->attributes) {
    if (a.key == "service.name") {
      if (const auto* v = std::get_if<std::string>(&a.value)) return *v;
    }
  }
  return {};
}

std::string_view RouteOf(const model::Span& s) {
  if (const std::string* r = s.FindString("http.route")) return *r;
  if (const std::string* r = s.FindString("url.template")) return *r;
  return {};
}

bool ValueEquals(const model::AttributeValue& v, std::string_view want) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s == want;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i) == want;
  if (const auto* b = std::get_if<bool>(&v)) return (*b ? "true" : "false") == want;
  return false;
}

int64_t IntAttr(const model::Span& s, std::string_view key) {
  if (const auto* v = s.Find(key)) {
    if (const auto* i = std::get_if<int64_t>(v)) return *i;
  }
  return 0;
}

}  // namespace

Result<TailPolicy> ParseTailPolicy(std::string_view where, std::string_view spec) {
  TailPolicy p;
  p.name = std::string(spec);
  if (spec == "error") {
    p.kind = TailPolicy::Kind::kError;
    return p;
  }
  if (spec.starts_with("latency>")) {
    p.kind = TailPolicy::Kind::kLatency;
    std::string_view rest = spec.substr(8);
    const size_t colon = rest.find(':');
    if (!ParseDurationNs(rest.substr(0, colon), &p.latency_ns) || p.latency_ns == 0) {
      return Bad(where, spec, "has no duration above 0 such as 50ms");
    }
    if (colon != std::string_view::npos) {
      const std::string_view scope = rest.substr(colon + 1);
      if (scope.starts_with("service=") && scope.size() > 8) {
        p.service = std::string(scope.substr(8));
      } else if (scope.starts_with("route=") && scope.size() > 6) {
        p.route = std::string(scope.substr(6));
      } else {
        return Bad(where, spec, "has a scope other than service=NAME or route=ROUTE");
      }
    }
    return p;
  }
  if (spec.starts_with("attribute:")) {
    p.kind = TailPolicy::Kind::kAttribute;
    const std::string_view kv = spec.substr(10);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) return Bad(where, spec, "has no KEY=VALUE");
    p.key = std::string(kv.substr(0, eq));
    p.value = std::string(kv.substr(eq + 1));
    return p;
  }
  if (spec.starts_with("genai_tokens>")) {
    p.kind = TailPolicy::Kind::kGenAiTokens;
    const std::string_view n = spec.substr(13);
    const auto r = std::from_chars(n.data(), n.data() + n.size(), p.tokens);
    if (r.ec != std::errc() || r.ptr != n.data() + n.size() || n.empty() || p.tokens < 0) {
      return Bad(where, spec, "has no token count");
    }
    return p;
  }
  if (spec.starts_with("probabilistic:")) {
    p.kind = TailPolicy::Kind::kProbabilistic;
    auto head = ParseHeadSampler(where, "traceidratio", spec.substr(14));
    if (!head.ok()) return Bad(where, spec, "has no ratio from 0 to 1");
    p.threshold = RatioThreshold(head->ratio);
    return p;
  }
  return Bad(where, spec, "is not a policy");
}

bool TailPolicyKeeps(const TailPolicy& p, const model::TraceId& trace, std::string_view trace_state,
                     const std::vector<const model::Span*>& spans) {
  switch (p.kind) {
    case TailPolicy::Kind::kError:
      return std::any_of(spans.begin(), spans.end(),
                         [](const model::Span* s) { return s->status_code == model::StatusCode::kError; });
    case TailPolicy::Kind::kLatency: {
      if (p.service.empty() && p.route.empty()) {
        uint64_t first = std::numeric_limits<uint64_t>::max(), last = 0;
        for (const model::Span* s : spans) {
          first = std::min(first, s->start_time_unix_nano);
          last = std::max(last, s->end_time_unix_nano);
        }
        return last > first && last - first > p.latency_ns;
      }
      return std::any_of(spans.begin(), spans.end(), [&](const model::Span* s) {
        if (!p.service.empty() && ServiceOf(*s) != p.service) return false;
        if (!p.route.empty() && RouteOf(*s) != p.route) return false;
        return s->end_time_unix_nano > s->start_time_unix_nano &&
               s->end_time_unix_nano - s->start_time_unix_nano > p.latency_ns;
      });
    }
    case TailPolicy::Kind::kAttribute:
      return std::any_of(spans.begin(), spans.end(), [&](const model::Span* s) {
        const model::AttributeValue* v = s->Find(p.key);
        return v && ValueEquals(*v, p.value);
      });
    case TailPolicy::Kind::kGenAiTokens: {
      int64_t total = 0;
      for (const model::Span* s : spans) {
        total += IntAttr(*s, "gen_ai.usage.input_tokens") + IntAttr(*s, "gen_ai.usage.output_tokens");
      }
      return total > p.tokens;
    }
    case TailPolicy::Kind::kProbabilistic:
      return p.threshold < kMaxThreshold && TraceRandomness(trace, trace_state) >= p.threshold;
  }
  return false;
}

int TailDecide(const std::vector<TailPolicy>& policies, const model::TraceId& trace,
               std::string_view trace_state, const std::vector<const model::Span*>& spans) {
  for (size_t i = 0; i < policies.size(); ++i) {
    if (TailPolicyKeeps(policies[i], trace, trace_state, spans)) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace kspan::processors
