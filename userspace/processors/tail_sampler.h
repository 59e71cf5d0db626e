// Tail sampling: policies evaluated on a whole trace as it leaves the assembly window,
// combined like the OpenTelemetry Collector's tail_sampling processor: the trace is kept
// when any policy keeps it (the first that does names the decision in the counters).
//
//   spec (flag, variable, YAML list item)   keeps the trace when
//   error                                   a span has status ERROR
//   latency>50ms                            the trace lasts longer (first start to last end)
//   latency>200ms:service=checkout          a span of service.name checkout lasts longer
//   latency>200ms:route=/api/orders/{id}    a span whose http.route (else url.template) is
//                                           that route lasts longer
//   attribute:KEY=VALUE                     a span has attribute KEY equal to VALUE (a
//                                           string, or an integer or bool written the same)
//   genai_tokens>N                          the trace's gen_ai.usage.input_tokens plus
//                                           gen_ai.usage.output_tokens exceed N
//   probabilistic:RATIO                     the trace's randomness passes RATIO's threshold
//                                           (head_sampler.h: consistent with head sampling)
//
// Durations take ns, us, ms or s. A trace flushed early (a bound, max_age) is decided on
// the spans it has then; the trace sampler counts it.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/span.h"

namespace kspan::processors {

struct TailPolicy {
  enum class Kind : uint8_t { kError, kLatency, kAttribute, kGenAiTokens, kProbabilistic };
  Kind kind = Kind::kError;
  std::string name;  // the spec as written: the rule label of the counters
  uint64_t latency_ns = 0;
  std::string service;     // kLatency: only spans of this service ("": the whole trace)
  std::string route;       // kLatency: only spans of this route
  std::string key, value;  // kAttribute
  int64_t tokens = 0;      // kGenAiTokens
  uint64_t threshold = 0;  // kProbabilistic: the 56-bit rejection threshold
};

// One policy from its spec (table above); InvalidArgument naming `where` and the grammar.
Result<TailPolicy> ParseTailPolicy(std::string_view where, std::string_view spec);

// True when `p` keeps the trace made of `spans` (trace id and tracestate for the
// probabilistic policy).
bool TailPolicyKeeps(const TailPolicy& p, const model::TraceId& trace, std::string_view trace_state,
                     const std::vector<const model::Span*>& spans);

// The index of the first policy that keeps the trace, or -1.
int TailDecide(const std::vector<TailPolicy>& policies, const model::TraceId& trace,
               std::string_view trace_state, const std::vector<const model::Span*>& spans);

}  // namespace kspan::processors
