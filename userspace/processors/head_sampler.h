// Head sampling as the OpenTelemetry SDK defines it (SDK configuration, environment
// variables OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG: configuration/
// sdk-environment-variables.md and trace/sdk.md of the specification), decided
// once per trace at its root, the same on every kspan agent that sees the trace id:
//
//   sampler                    root (kspan starts the trace)   remote parent (traceparent)
//   always_on                  sampled                         sampled
//   always_off                 dropped                         dropped
//   traceidratio               R >= T                          R >= T
//   parentbased_always_on      sampled                         the parent's sampled flag
//   parentbased_always_off     dropped                         the parent's sampled flag
//   parentbased_traceidratio   R >= T                          the parent's sampled flag
//
// The ratio test is the consistent one of the OpenTelemetry "TraceState: Probability
// Sampling" specification (tracestate-probability-sampling.md, from OTEP 235): R is the trace's
// 56-bit randomness, the `rv` sub-key of the `ot` tracestate entry when present, else the
// trace id's low 56 bits (random in every W3C Trace Context Level 2 id with the `random`
// flag, and in every id kspan makes); T = 2^56 - round(ratio * 2^56) is the rejection
// threshold. Two agents (or an SDK) with the same ratio keep the same traces; a lower
// ratio keeps a subset of what a higher one keeps. A trace kept by the ratio carries
// `ot=th:T` (T in hex, trailing zeros removed) in its tracestate so a backend can weight
// it; one kept for its parent keeps the parent's `th`, unless the parent's randomness
// falls below it (then the `th` is inconsistent and erased, as the spec says).
//
// Pure functions of their input; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "model/span.h"

namespace kspan::processors {

enum class HeadSamplerKind : uint8_t {
  kAlwaysOn,
  kAlwaysOff,
  kTraceIdRatio,
  kParentBasedAlwaysOn,
  kParentBasedAlwaysOff,
  kParentBasedTraceIdRatio,
};

struct HeadSamplerConfig {
  // The OpenTelemetry SDK's default.
  HeadSamplerKind kind = HeadSamplerKind::kParentBasedAlwaysOn;
  double ratio = 1.0;  // the ratio samplers' argument, 0..1
};

// The OTEL_TRACES_SAMPLER name ("parentbased_traceidratio") and its argument (nullopt:
// not given; the ratio then defaults to 1.0 as the SDK's does). An unknown name, or a
// argument that is not a number in 0..1 (whatever the sampler), is InvalidArgument naming
// `where` and what is expected; samplers without a ratio do not use it.
Result<HeadSamplerConfig> ParseHeadSampler(std::string_view where, std::string_view name,
                                           std::optional<std::string_view> arg);
std::string_view HeadSamplerName(HeadSamplerKind kind);

// The 56-bit consistent-sampling helpers.
inline constexpr uint64_t kMaxThreshold = uint64_t{1} << 56;  // T = 2^56: nothing kept
uint64_t RatioThreshold(double ratio);
// "c" for 0xc0000000000000, "0" for 0 (keep all); as the `th` value.
std::string FormatThreshold(uint64_t t);
// A `th` value (1..14 hex digits, extended with zeros on the right); nullopt when invalid.
std::optional<uint64_t> ParseThreshold(std::string_view th);
// The trace's randomness: `rv` of the `ot` tracestate entry when valid, else the trace
// id's low 56 bits.
uint64_t TraceRandomness(const model::TraceId& trace, std::string_view trace_state);
// The value of sub-key `key` ("th", "rv") of the `ot` entry of a tracestate, or "".
std::string_view OtValue(std::string_view trace_state, std::string_view key);
// The tracestate with sub-key `key` of its `ot` entry set to `value` (erased when `value`
// is empty); a changed `ot` entry moves to the front, as W3C Trace Context says.
std::string WithOtValue(std::string_view trace_state, std::string_view key, std::string_view value);

// What the head sampler knows of a trace at its root.
struct HeadInput {
  model::TraceId trace_id;
  bool remote_parent = false;    // the root came with a valid traceparent
  bool parent_sampled = false;   // ... and its sampled flag (meaningful with remote_parent)
  std::string_view trace_state;  // the parent's, "" at a root
};

struct HeadDecision {
  bool sampled = false;
  std::string trace_state;  // what the trace carries from now on
  // Why, for the counters: always_on, always_off, ratio, parent_sampled, parent_not_sampled.
  std::string_view rule;
};

class HeadSampler {
 public:
  explicit HeadSampler(HeadSamplerConfig config);
  HeadDecision Decide(const HeadInput& in) const;
  const HeadSamplerConfig& config() const { return config_; }
  // "traceidratio(0.25)", for the log.
  std::string Describe() const;

 private:
  HeadSamplerConfig config_;
  uint64_t threshold_;
};

}  // namespace kspan::processors
