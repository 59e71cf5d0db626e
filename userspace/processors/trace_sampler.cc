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

// "sampler|kept|rule", into `out`.
void Key(std::string_view sampler, bool kept, std::string_view rule, std::string* out) {
  out->assign(sampler);
  out->append(kept ? "|1|" : "|0|");
  out->append(rule);
}

}  // namespace

TraceSampler::TraceSampler(SamplingConfig config, metrics::Registry* m, const SpanFilter* filter)
    : config_(std::move(config)), filter_(filter), head_(config_.head), rate_(config_.rate) {
  decided_early_ = m->GetCounter("kspan_sampling_traces_decided_early_total");
  auto reg = [&](const std::string& sampler, bool kept, const std::string& rule) {
    Key(sampler, kept, rule, &key_);
    counters_[key_] =
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

metrics::Counter* TraceSampler::Counter(std::string_view sampler, bool kept, std::string_view rule) {
  if (last_.counter && last_.kept == kept && last_.sampler == sampler && last_.rule == rule)
    return last_.counter;
  Key(sampler, kept, rule, &key_);  // into a kept buffer: no allocation a trace
  auto it = counters_.find(key_);
  if (it == counters_.end()) return nullptr;
  last_.sampler.assign(sampler);
  last_.rule.assign(rule);
  last_.kept = kept;
  last_.counter = it->second;
  return it->second;
}

bool TraceSampler::HasRemoteChild(const std::vector<const model::Span*>& spans) {
  return std::any_of(spans.begin(), spans.end(), [](const model::Span* s) {
    if (s->kind != model::SpanKind::kClient) return false;
    // The first of each key, as FindString finds it, in one pass.
    const model::AttributeValue *network = nullptr, *server = nullptr;
    for (const model::Attribute& a : s->attributes) {
      const std::string_view k = a.key;
      if (!network && k == "network.peer.address") {
        network = &a.value;
      } else if (!server && k == "server.address") {
        server = &a.value;
      }
    }
    const std::string* peer = network ? std::get_if<std::string>(network) : nullptr;
    if (!peer && server) peer = std::get_if<std::string>(server);
    return peer && !peer->empty() && !IsLoopback(*peer);
  });
}

TraceVerdict TraceSampler::Decide(const TraceToDecide& t) {
  if (!t.whole) decided_early_->Add();
  TraceVerdict v;
  std::string_view sampler, rule;
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
  // Only the tail policies ask whether the trace crosses hosts.
  if (!config_.tail.empty() && !(t.remote_parent || HasRemoteChild(t.spans))) {
    const int i = TailDecide(config_.tail, t.trace_id, t.trace_state, t.spans);
    sampler = "tail";
    v.keep = i >= 0;
    rule =
        i >= 0 ? std::string_view(config_.tail[static_cast<size_t>(i)].name) : std::string_view("no_policy");
    v.trace_state = std::string(t.trace_state);
  } else {
    const HeadDecision d = head_.Decide({.trace_id = t.trace_id,
                                         .remote_parent = t.remote_parent,
                                         .parent_sampled = (t.flags & 0x01) != 0,
                                         .trace_state = t.trace_state});
    sampler = "head";
    v.keep = d.sampled;
    rule = d.rule;
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
