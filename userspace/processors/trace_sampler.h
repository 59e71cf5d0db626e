// The sampling decision of each trace, taken once as the trace leaves the assembly window
// (correlator/trace_window.h calls Decide on its first flush), then applied to its spans
// on their way out (OnExport drops the spans of a trace not kept):
//
//   trace leaves the window ──▶ filtered? (span_filter.h: its first span matches a rule) ──yes──▶ dropped
//                               no
//                               ──▶ crosses hosts? ──yes──▶ head sampler (consistent) ─┐
//                               (remote parent, or     no, tail policies set       │
//                                a CLIENT span to a    ──▶ tail policies (any keeps)┤
//                                non-loopback peer)    no tail policies            │
//                                                      ──▶ head sampler ───────────┤
//                                                           kept? ──▶ rate limiter ─┴─▶ flags
//
// The decision is written into the trace's W3C flags (bit 0, sampled) and tracestate (the
// head sampler's `ot=th:`), which every span of the trace carries, so the exported flags
// show it and a trace is exported whole or not at all (spans of one trace never differ).
// A trace that crosses hosts is never tail-sampled: each host would decide on its own part
// and tear it; the head decision is the same on every agent (docs/sampling.md).
//
// Counters (registered at construction): kspan_sampling_traces_total{sampler, decision,
// rule} per trace, kspan_sampling_traces_decided_early_total for traces decided on part
// of their spans (flushed early at a bound), and the chain's
// kspan_processor_spans_dropped_total{processor="sampling"} per span dropped.
//
// Single-threaded: the pipeline thread (SpanProcessor's contract).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "processors/head_sampler.h"
#include "processors/rate_limiter.h"
#include "processors/span_filter.h"
#include "processors/span_processor.h"
#include "processors/tail_sampler.h"

namespace kspan::processors {

struct SamplingConfig {
  HeadSamplerConfig head;
  std::vector<TailPolicy> tail;  // empty: head sampling only
  RateLimitConfig rate;
};

// A trace as the window holds it when it is decided.
struct TraceToDecide {
  model::TraceId trace_id;
  uint8_t flags = 1;
  std::string_view trace_state;
  bool remote_parent = false;  // its root came with a valid traceparent
  bool whole = true;           // false: flushed early, decided on the spans it has
  uint64_t now_ns = 0;
  std::vector<const model::Span*> spans;  // ended, ids not yet assigned
};

struct TraceVerdict {
  bool keep = true;
  uint8_t flags = 1;
  std::string trace_state;
};

class TraceSampler : public SpanProcessor {
 public:
  // `filter` (may be null; not owned, outlives this): a trace whose first span it matches
  // is dropped whole, counted under sampler "filter", before any rate limit.
  TraceSampler(SamplingConfig config, metrics::Registry* metrics, const SpanFilter* filter = nullptr);

  TraceVerdict Decide(const TraceToDecide& trace);
  // Spans of a trace not kept (sampled flag clear) stop here.
  bool OnExport(model::Span& span) noexcept override { return (span.trace_flags & 0x01) != 0; }

  // True when a span of the trace reaches another host (a CLIENT span whose peer is not a
  // loopback address): a remote child.
  static bool HasRemoteChild(const std::vector<const model::Span*>& spans);

 private:
  metrics::Counter* Counter(std::string_view sampler, bool kept, std::string_view rule);

  SamplingConfig config_;
  const SpanFilter* filter_;
  HeadSampler head_;
  RateLimiter rate_;
  metrics::Counter* decided_early_;
  std::map<std::string, metrics::Counter*> counters_;  // "sampler|kept|rule"
  std::string key_;                                    // Counter's scratch
  // Counter's last answer: traces mostly take the decision the one before took.
  struct LastCounter {
    std::string sampler, rule;
    bool kept = false;
    metrics::Counter* counter = nullptr;
  };
  LastCounter last_;
};

}  // namespace kspan::processors
