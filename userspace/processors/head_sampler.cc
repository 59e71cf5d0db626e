#include "processors/head_sampler.h"

#include <charconv>
#include <cmath>
#include <vector>

namespace kspan::processors {
namespace {

struct NamedKind {
  std::string_view name;
  HeadSamplerKind kind;
};
constexpr NamedKind kKinds[] = {
    {"always_on", HeadSamplerKind::kAlwaysOn},
    {"always_off", HeadSamplerKind::kAlwaysOff},
    {"traceidratio", HeadSamplerKind::kTraceIdRatio},
    {"parentbased_always_on", HeadSamplerKind::kParentBasedAlwaysOn},
    {"parentbased_always_off", HeadSamplerKind::kParentBasedAlwaysOff},
    {"parentbased_traceidratio", HeadSamplerKind::kParentBasedTraceIdRatio},
};

bool UsesRatio(HeadSamplerKind k) {
  return k == HeadSamplerKind::kTraceIdRatio || k == HeadSamplerKind::kParentBasedTraceIdRatio;
}

bool ParentBased(HeadSamplerKind k) {
  return k == HeadSamplerKind::kParentBasedAlwaysOn || k == HeadSamplerKind::kParentBasedAlwaysOff ||
         k == HeadSamplerKind::kParentBasedTraceIdRatio;
}

std::optional<uint64_t> ParseHex56(std::string_view hex, bool pad_right) {
  if (hex.empty() || hex.size() > 14) return std::nullopt;
  uint64_t v = 0;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return std::nullopt;  // the spec's values are lowercase
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  if (pad_right) v <<= 4 * (14 - hex.size());
  return v;
}

// The `ot` member of a tracestate list: [begin, end) of its value, or npos.
struct OtMember {
  size_t member_begin = std::string_view::npos, member_end = 0;
  std::string_view value;
};
OtMember FindOt(std::string_view ts) {
  OtMember m;
  size_t pos = 0;
  while (pos <= ts.size()) {
    size_t end = ts.find(',', pos);
    if (end == std::string_view::npos) end = ts.size();
    std::string_view member = ts.substr(pos, end - pos);
    while (!member.empty() && (member.front() == ' ' || member.front() == '\t')) member.remove_prefix(1);
    if (member.starts_with("ot=")) {
      m.member_begin = pos;
      m.member_end = end;
      m.value = member.substr(3);
      return m;
    }
    pos = end + 1;
  }
  return m;
}

}  // namespace

Result<HeadSamplerConfig> ParseHeadSampler(std::string_view where, std::string_view name,
                                           std::optional<std::string_view> arg) {
  HeadSamplerConfig c;
  bool found = false;
  for (const NamedKind& k : kKinds) {
    if (k.name == name) {
      c.kind = k.kind;
      found = true;
    }
  }
  if (!found) {
    std::string names;
    for (const NamedKind& k : kKinds) names += (names.empty() ? "" : ", ") + std::string(k.name);
    return InvalidArgument(std::string(where) + ": unknown sampler '" + std::string(name) +
                           "'; expected one of " + names);
  }
  if (arg) {
    double v = 0;
    const char* b = arg->data();
    const char* e = b + arg->size();
    const auto r = std::from_chars(b, e, v);
    if (r.ec != std::errc() || r.ptr != e || !(v >= 0.0 && v <= 1.0)) {
      return InvalidArgument(std::string(where) + ": '" + std::string(*arg) +
                             "' is not a sampling ratio for " + std::string(name) +
                             "; expected a number from 0 to 1 (0.25 keeps a quarter)");
    }
    c.ratio = v;
  }
  return c;
}

std::string_view HeadSamplerName(HeadSamplerKind kind) {
  for (const NamedKind& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "?";
}

uint64_t RatioThreshold(double ratio) {
  if (!(ratio > 0)) return kMaxThreshold;
  if (ratio >= 1) return 0;
  const auto kept = static_cast<uint64_t>(std::llround(ratio * static_cast<double>(kMaxThreshold)));
  return kept >= kMaxThreshold ? 0 : kMaxThreshold - kept;
}

std::string FormatThreshold(uint64_t t) {
  if (t == 0) return "0";
  char buf[15];
  for (int i = 13; i >= 0; --i) {
    buf[i] = "0123456789abcdef"[t & 0xf];
    t >>= 4;
  }
  size_t n = 14;
  while (n > 1 && buf[n - 1] == '0') --n;
  return std::string(buf, n);
}

std::optional<uint64_t> ParseThreshold(std::string_view th) {
  return ParseHex56(th, /*pad_right=*/true);
}

std::string_view OtValue(std::string_view trace_state, std::string_view key) {
  const OtMember m = FindOt(trace_state);
  if (m.member_begin == std::string_view::npos) return {};
  std::string_view v = m.value;
  while (!v.empty()) {
    const size_t semi = v.find(';');
    const std::string_view part = v.substr(0, semi);
    if (part.size() > key.size() && part.starts_with(key) && part[key.size()] == ':') {
      return part.substr(key.size() + 1);
    }
    if (semi == std::string_view::npos) break;
    v.remove_prefix(semi + 1);
  }
  return {};
}

std::string WithOtValue(std::string_view trace_state, std::string_view key, std::string_view value) {
  const OtMember m = FindOt(trace_state);
  std::vector<std::string_view> parts;
  if (!value.empty()) parts.push_back({});  // placeholder for key:value, first
  if (m.member_begin != std::string_view::npos) {
    std::string_view v = m.value;
    while (!v.empty()) {
      const size_t semi = v.find(';');
      const std::string_view part = v.substr(0, semi);
      const bool same = part.size() > key.size() && part.starts_with(key) && part[key.size()] == ':';
      if (!part.empty() && !same) parts.push_back(part);
      if (semi == std::string_view::npos) break;
      v.remove_prefix(semi + 1);
    }
  }
  std::string ot;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) ot += ';';
    if (i == 0 && !value.empty()) {
      ot += std::string(key) + ":" + std::string(value);
    } else {
      ot += parts[i];
    }
  }
  // The rest of the list, without the old ot member.
  std::string rest;
  if (m.member_begin == std::string_view::npos) {
    rest = std::string(trace_state);
  } else {
    rest = std::string(trace_state.substr(0, m.member_begin));
    if (m.member_end < trace_state.size()) rest += trace_state.substr(m.member_end + 1);
    while (!rest.empty() && (rest.back() == ',' || rest.back() == ' ')) rest.pop_back();
  }
  if (ot.empty()) return rest;
  return rest.empty() ? "ot=" + ot : "ot=" + ot + "," + rest;
}

uint64_t TraceRandomness(const model::TraceId& trace, std::string_view trace_state) {
  if (const std::string_view rv = OtValue(trace_state, "rv"); rv.size() == 14) {
    if (auto v = ParseHex56(rv, false)) return *v;
  }
  uint64_t r = 0;
  for (size_t i = 9; i < 16; ++i) r = (r << 8) | trace.bytes[i];
  return r;
}

HeadSampler::HeadSampler(HeadSamplerConfig config)
    : config_(config),
      threshold_(UsesRatio(config.kind) ? RatioThreshold(config.ratio)
                                        : (config.kind == HeadSamplerKind::kAlwaysOff ||
                                                   config.kind == HeadSamplerKind::kParentBasedAlwaysOff
                                               ? kMaxThreshold
                                               : 0)) {}

HeadDecision HeadSampler::Decide(const HeadInput& in) const {
  HeadDecision d;
  // Only the ratio and a parent's threshold read it: made where they do.
  auto r = [&in] { return TraceRandomness(in.trace_id, in.trace_state); };
  if (in.remote_parent && ParentBased(config_.kind)) {
    d.sampled = in.parent_sampled;
    d.rule = d.sampled ? "parent_sampled" : "parent_not_sampled";
    d.trace_state = std::string(in.trace_state);
    // A parent's threshold that its own randomness does not pass is inconsistent: erased.
    if (const auto th = ParseThreshold(OtValue(in.trace_state, "th"))) {
      if (!d.sampled || r() < *th) d.trace_state = WithOtValue(in.trace_state, "th", "");
    }
    return d;
  }
  switch (config_.kind) {
    case HeadSamplerKind::kAlwaysOn:
    case HeadSamplerKind::kParentBasedAlwaysOn:
      d.sampled = true;
      d.rule = "always_on";
      d.trace_state = std::string(in.trace_state);
      break;
    case HeadSamplerKind::kAlwaysOff:
    case HeadSamplerKind::kParentBasedAlwaysOff:
      d.sampled = false;
      d.rule = "always_off";
      d.trace_state = WithOtValue(in.trace_state, "th", "");
      break;
    case HeadSamplerKind::kTraceIdRatio:
    case HeadSamplerKind::kParentBasedTraceIdRatio:
      d.sampled = threshold_ < kMaxThreshold && r() >= threshold_;
      d.rule = "ratio";
      d.trace_state = WithOtValue(in.trace_state, "th", d.sampled ? FormatThreshold(threshold_) : "");
      break;
  }
  return d;
}

std::string HeadSampler::Describe() const {
  std::string s(HeadSamplerName(config_.kind));
  if (UsesRatio(config_.kind)) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof(buf), config_.ratio);
    s += "(" + std::string(buf, r.ptr) + ")";
  }
  return s;
}

}  // namespace kspan::processors
