#include "processors/trace_sampler.h"

#include <algorithm>

namespace kspan::processors {
namespace {

bool IsLoopback(std::string_view a) {
  return a.starts_with("127.") || a == "::1" || a == "localhost" || a.starts_with("::ffff:127.");
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

std::string Key(const std::string& sampler, bool kept, const std::string& rule) {
  return sampler + (kept ? "|1|" : "|0|") + rule;
}

}  // namespace

TraceSampler::TraceSampler(SamplingConfig config, metrics::Registry* m, const SpanFilter* filter)
    : config_(std::move(config)), filter_(filter), head_(config_.head), rate_(config_.rate) {
  decided_early_ = m->GetCounter("kspan_sampling_traces_decided_early_total");
  auto reg = [&](const std::string& sampler, bool kept, const std::string& rule) {
    counters_[Key(sampler, kept, rule)] =
        m->GetCounter("kspan_sampling_traces_total",
                      {{"decision", kept ? "kept" : "dropped"}, {"rule", rule}, {"sampler", sampler}});
  };
  // Every series a decision can take, so /metrics shows them at zero from the start.
  for (const char* rule : {"always_on", "parent_sampled"}) reg("head", true, rule);
  for (const char* rule : {"always_off", "parent_not_sampled"}) reg("head", false, rule);
  reg("head", true, "ratio");
  reg("head", false, "ratio");
  for (const TailPolicy& p : config_.tail) reg("tail", true, p.name);
  if (!config_.tail.empty()) reg("tail", false, "no_policy");
  if (config_.rate.per_second > 0) reg("rate_limit", false, "overall");
  if (config_.rate.per_service_per_second > 0) reg("rate_limit", false, "service");
  if (filter_) {
    for (const FilterRule& r : filter_->rules()) reg("filter", false, r.name);
  }
}

metrics::Counter* TraceSampler::Counter(const std::string& sampler, bool kept, const std::string& rule) {
  auto it = counters_.find(Key(sampler, kept, rule));
  return it == counters_.end() ? nullptr : it->second;
}

bool TraceSampler::HasRemoteChild(const std::vector<const model::Span*>& spans) {
  return std::any_of(spans.begin(), spans.end(), [](const model::Span* s) {
    if (s->kind != model::SpanKind::kClient) return false;
    const std::string* peer = s->FindString("network.peer.address");
    if (!peer) peer = s->FindString("server.address");
    return peer && !peer->empty() && !IsLoopback(*peer);
  });
}

TraceVerdict TraceSampler::Decide(const TraceToDecide& t) {
  if (!t.whole) decided_early_->Add();
  TraceVerdict v;
  std::string sampler, rule;
  if (filter_ && !t.spans.empty()) {
    if (const int i = filter_->Match(*t.spans.front()); i >= 0) {
      if (metrics::Counter* c = Counter("filter", false, filter_->rules()[static_cast<size_t>(i)].name))
        c->Add();
      v.keep = false;
      v.flags = t.flags & ~0x01;
      v.trace_state = std::string(t.trace_state);
      return v;
    }
  }
  const bool crosses = t.remote_parent || HasRemoteChild(t.spans);
  if (!config_.tail.empty() && !crosses) {
    const int i = TailDecide(config_.tail, t.trace_id, t.trace_state, t.spans);
    sampler = "tail";
    v.keep = i >= 0;
    rule = i >= 0 ? config_.tail[static_cast<size_t>(i)].name : "no_policy";
    v.trace_state = std::string(t.trace_state);
  } else {
    const HeadDecision d = head_.Decide({.trace_id = t.trace_id,
                                         .remote_parent = t.remote_parent,
                                         .parent_sampled = (t.flags & 0x01) != 0,
                                         .trace_state = t.trace_state});
    sampler = "head";
    v.keep = d.sampled;
    rule = std::string(d.rule);
    v.trace_state = d.trace_state;
  }
  if (v.keep && config_.rate.enabled()) {
    const std::string_view service = t.spans.empty() ? std::string_view() : ServiceOf(*t.spans.front());
    const RateLimiter::Verdict r = rate_.Admit(service, t.now_ns);
    if (r != RateLimiter::Verdict::kPass) {
      v.keep = false;
      sampler = "rate_limit";
      rule = r == RateLimiter::Verdict::kService ? "service" : "overall";
    }
  }
  if (metrics::Counter* c = Counter(sampler, v.keep, rule)) c->Add();
  v.flags = v.keep ? (t.flags | 0x01) : (t.flags & ~0x01);
  return v;
}

}  // namespace kspan::processors
