// Head, tail and rate-limit sampling (processors/head_sampler.h, tail_sampler.h,
// rate_limiter.h, trace_sampler.h) and the decision as the stitcher's window applies it:
// statistics against binomial bounds with fixed seeds, the OpenTelemetry consistent
// probability-sampling rules, and whole traces only.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "agent/config.h"
#include "correlator/stitcher.h"
#include "processors/head_sampler.h"
#include "processors/processor_chain.h"
#include "processors/rate_limiter.h"
#include "processors/span_filter.h"
#include "processors/tail_sampler.h"
#include "processors/trace_sampler.h"

namespace kspan::processors {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;

// Two-sided 99.9 % interval of a binomial(n, p): n p ± 3.29 sqrt(n p (1 - p)).
struct Interval {
  double lo, hi;
};
Interval Binomial999(double n, double p) {
  const double sd = std::sqrt(n * p * (1 - p));
  return {n * p - 3.2905 * sd, n * p + 3.2905 * sd};
}

model::TraceId IdFrom(std::mt19937_64& rng) {
  model::TraceId id;
  for (auto& b : id.bytes) b = static_cast<uint8_t>(rng());
  return id;
}

HeadSampler Make(std::string_view name, std::optional<std::string_view> arg = std::nullopt) {
  auto c = ParseHeadSampler("test", name, arg);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return HeadSampler(c.ok() ? *c : HeadSamplerConfig{});
}

uint64_t Count(const metrics::Registry& m, const std::string& name, const metrics::Labels& labels = {}) {
  for (const auto& s : m.Snapshot()) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return 0;
}

// ---- head sampler: configuration -----------------------------------------------------

TEST(HeadSamplerConfig, EveryOtelNameParses) {
  for (const char* n : {"always_on", "always_off", "traceidratio", "parentbased_always_on",
                        "parentbased_always_off", "parentbased_traceidratio"}) {
    auto c = ParseHeadSampler("OTEL_TRACES_SAMPLER", n, std::nullopt);
    ASSERT_TRUE(c.ok()) << n;
    EXPECT_EQ(HeadSamplerName(c->kind), n);
    EXPECT_EQ(c->ratio, 1.0) << "the SDK's default argument";
  }
}

TEST(HeadSamplerConfig, AnUnknownNameIsAClearError) {
  auto c = ParseHeadSampler("OTEL_TRACES_SAMPLER", "jaeger_remote", std::nullopt);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "OTEL_TRACES_SAMPLER: unknown sampler 'jaeger_remote'; expected one of always_on, always_off, "
            "traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio");
}

TEST(HeadSamplerConfig, TheArgumentIsARatio) {
  auto c = ParseHeadSampler("x", "traceidratio", "0.25");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ratio, 0.25);
  for (const char* bad : {"1.5", "-0.1", "abc", "0.5x", "", "nan"}) {
    auto b = ParseHeadSampler("OTEL_TRACES_SAMPLER_ARG", "traceidratio", bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_NE(b.status().message().find("OTEL_TRACES_SAMPLER_ARG"), std::string::npos);
  }
}

// ---- thresholds and tracestate (tracestate-probability-sampling.md) -------------------

TEST(Threshold, RatiosAsTheSpecWritesThem) {
  EXPECT_EQ(FormatThreshold(RatioThreshold(1.0)), "0");
  EXPECT_EQ(FormatThreshold(RatioThreshold(0.5)), "8");
  EXPECT_EQ(FormatThreshold(RatioThreshold(0.25)), "c");
  EXPECT_EQ(FormatThreshold(RatioThreshold(0.1)), "e6666666666666");
  EXPECT_EQ(RatioThreshold(0.0), kMaxThreshold);
  EXPECT_EQ(ParseThreshold("c"), uint64_t{0xc0000000000000});
  EXPECT_EQ(ParseThreshold("0"), uint64_t{0});
  EXPECT_FALSE(ParseThreshold("").has_value());
  EXPECT_FALSE(ParseThreshold("123456789abcdef").has_value()) << "15 digits";
  EXPECT_FALSE(ParseThreshold("C").has_value()) << "lowercase only";
}

TEST(Threshold, RandomnessIsTheLow56BitsOrRv) {
  model::TraceId id;
  ASSERT_TRUE(model::ParseHexId("0af7651916cd43dd8448eb211c80319c", id.bytes.data(), 16));
  EXPECT_EQ(TraceRandomness(id, ""), uint64_t{0x48eb211c80319c});
  EXPECT_EQ(TraceRandomness(id, "ot=rv:0123456789abcd"), uint64_t{0x0123456789abcd});
  EXPECT_EQ(TraceRandomness(id, "ot=rv:xyz"), uint64_t{0x48eb211c80319c}) << "invalid rv ignored";
}

TEST(Threshold, OtValuesAreReadAndWritten) {
  EXPECT_EQ(OtValue("congo=t61,ot=th:c;rv:0123456789abcd", "th"), "c");
  EXPECT_EQ(OtValue("congo=t61,ot=th:c;rv:0123456789abcd", "rv"), "0123456789abcd");
  EXPECT_EQ(OtValue("congo=t61", "th"), "");
  EXPECT_EQ(WithOtValue("", "th", "c"), "ot=th:c");
  EXPECT_EQ(WithOtValue("congo=t61", "th", "c"), "ot=th:c,congo=t61");
  EXPECT_EQ(WithOtValue("congo=t61,ot=rv:0123456789abcd", "th", "8"), "ot=th:8;rv:0123456789abcd,congo=t61");
  EXPECT_EQ(WithOtValue("ot=th:c;rv:0123456789abcd,congo=t61", "th", ""), "ot=rv:0123456789abcd,congo=t61");
  EXPECT_EQ(WithOtValue("congo=t61,ot=th:c", "th", ""), "congo=t61");
}

// ---- head sampler: decisions ----------------------------------------------------------

TEST(HeadSampler, TraceIdRatioIsWithinTheBinomialInterval) {
  std::mt19937_64 rng(20261205);
  for (double p : {0.01, 0.1, 0.25, 0.5, 0.9}) {
    HeadSampler s = Make("traceidratio", std::to_string(p));
    constexpr int kN = 100'000;
    int kept = 0;
    for (int i = 0; i < kN; ++i) kept += s.Decide({.trace_id = IdFrom(rng)}).sampled;
    const Interval in = Binomial999(kN, p);
    EXPECT_GE(kept, in.lo) << p;
    EXPECT_LE(kept, in.hi) << p;
  }
}

TEST(HeadSampler, ConsistentAcrossAgentsAndNestedAcrossRatios) {
  std::mt19937_64 rng(7);
  HeadSampler a = Make("traceidratio", "0.25"), b = Make("parentbased_traceidratio", "0.25");
  HeadSampler low = Make("traceidratio", "0.1");
  for (int i = 0; i < 20'000; ++i) {
    const model::TraceId id = IdFrom(rng);
    const bool ka = a.Decide({.trace_id = id}).sampled;
    ASSERT_EQ(ka, b.Decide({.trace_id = id}).sampled) << "same trace id, same decision";
    if (low.Decide({.trace_id = id}).sampled) ASSERT_TRUE(ka) << "0.1 keeps a subset of 0.25";
  }
}

TEST(HeadSampler, AKeptRootCarriesItsThreshold) {
  model::TraceId id;
  ASSERT_TRUE(model::ParseHexId("0af7651916cd43dd8fffffffffffffff", id.bytes.data(), 16));
  const HeadDecision d = Make("traceidratio", "0.25").Decide({.trace_id = id, .trace_state = "congo=t61"});
  EXPECT_TRUE(d.sampled);
  EXPECT_EQ(d.rule, "ratio");
  EXPECT_EQ(d.trace_state, "ot=th:c,congo=t61");
  ASSERT_TRUE(model::ParseHexId("0af7651916cd43dd8000000000000001", id.bytes.data(), 16));
  const HeadDecision n = Make("traceidratio", "0.25").Decide({.trace_id = id});
  EXPECT_FALSE(n.sampled);
  EXPECT_EQ(n.trace_state, "");
}

TEST(HeadSampler, RvOverridesTheTraceIdRandomness) {
  model::TraceId id;  // low bits 0: never kept below ratio 1 on their own
  ASSERT_TRUE(model::ParseHexId("0af7651916cd43dd8000000000000000", id.bytes.data(), 16));
  HeadSampler s = Make("traceidratio", "0.01");
  EXPECT_FALSE(s.Decide({.trace_id = id}).sampled);
  EXPECT_TRUE(s.Decide({.trace_id = id, .trace_state = "ot=rv:ffffffffffffff"}).sampled);
}

TEST(HeadSampler, ParentBasedFollowsTheRemoteParent) {
  model::TraceId id;
  ASSERT_TRUE(model::ParseHexId("0af7651916cd43dd8000000000000000", id.bytes.data(), 16));
  for (const char* name : {"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}) {
    HeadSampler s = Make(name, "0.0001");
    const HeadDecision yes = s.Decide({.trace_id = id, .remote_parent = true, .parent_sampled = true});
    EXPECT_TRUE(yes.sampled) << name;
    EXPECT_EQ(yes.rule, "parent_sampled");
    const HeadDecision no = s.Decide({.trace_id = id, .remote_parent = true, .parent_sampled = false});
    EXPECT_FALSE(no.sampled) << name;
    EXPECT_EQ(no.rule, "parent_not_sampled");
  }
  // Not parent-based: the parent's flag is not asked.
  EXPECT_TRUE(Make("always_on").Decide({.trace_id = id, .remote_parent = true}).sampled);
  EXPECT_FALSE(
      Make("always_off").Decide({.trace_id = id, .remote_parent = true, .parent_sampled = true}).sampled);
  EXPECT_FALSE(Make("traceidratio", "0.5")
                   .Decide({.trace_id = id, .remote_parent = true, .parent_sampled = true})
                   .sampled);
  // Roots: the delegate decides.
  EXPECT_TRUE(Make("parentbased_always_on").Decide({.trace_id = id}).sampled);
  EXPECT_FALSE(Make("parentbased_always_off").Decide({.trace_id = id}).sampled);
}

TEST(HeadSampler, AParentThresholdItsRandomnessFailsIsErased) {
  model::TraceId id;  // R = 0x10000000000000 < th:c
  ASSERT_TRUE(model::ParseHexId("0af7651916cd43dd8010000000000000", id.bytes.data(), 16));
  HeadSampler s = Make("parentbased_always_on");
  EXPECT_EQ(
      s.Decide({.trace_id = id, .remote_parent = true, .parent_sampled = true, .trace_state = "ot=th:c,a=b"})
          .trace_state,
      "a=b");
  // Consistent: kept as it came.
  ASSERT_TRUE(model::ParseHexId("0af7651916cd43dd80f0000000000000", id.bytes.data(), 16));
  EXPECT_EQ(
      s.Decide({.trace_id = id, .remote_parent = true, .parent_sampled = true, .trace_state = "ot=th:c,a=b"})
          .trace_state,
      "ot=th:c,a=b");
}

// ---- tail policies --------------------------------------------------------------------

model::Span SpanOf(uint64_t start_ms, uint64_t end_ms, const std::string& service = "svc") {
  model::Span s;
  s.start_time_unix_nano = kT0 + start_ms * kMs;
  s.end_time_unix_nano = kT0 + end_ms * kMs;
  auto r = std::make_shared<model::Resource>();
  r->attributes.push_back({"service.name", service});
  s.resource = r;
  return s;
}

std::vector<const model::Span*> Ptrs(const std::vector<model::Span>& v) {
  std::vector<const model::Span*> out;
  for (const auto& s : v) out.push_back(&s);
  return out;
}

TailPolicy Policy(std::string_view spec) {
  auto p = ParseTailPolicy("test", spec);
  EXPECT_TRUE(p.ok()) << spec << ": " << p.status().message();
  return p.ok() ? *p : TailPolicy{};
}

TEST(TailPolicy, BadSpecsAreClearErrors) {
  for (const char* bad : {"errors", "latency>", "latency>50", "latency>50ms:svc=x", "attribute:=x",
                          "genai_tokens>many", "probabilistic:2", "latency>0ms"}) {
    auto p = ParseTailPolicy("--tail-policy", bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.status().message().find("--tail-policy: tail policy '" + std::string(bad) + "'"),
              std::string::npos)
        << p.status().message();
    EXPECT_NE(p.status().message().find("expected error, latency>DURATION"), std::string::npos);
  }
}

TEST(TailPolicy, ErrorAnywhere) {
  std::vector<model::Span> t = {SpanOf(0, 10), SpanOf(1, 5)};
  const model::TraceId id = model::TraceId::Random();
  EXPECT_FALSE(TailPolicyKeeps(Policy("error"), id, "", Ptrs(t)));
  t[1].status_code = model::StatusCode::kError;
  EXPECT_TRUE(TailPolicyKeeps(Policy("error"), id, "", Ptrs(t)));
}

TEST(TailPolicy, LatencyOfTheTraceOrOfAServiceOrRoute) {
  std::vector<model::Span> t = {SpanOf(0, 30, "front"), SpanOf(25, 60, "back")};
  t[1].attributes.push_back({"http.route", std::string("/api/{id}")});
  const model::TraceId id = model::TraceId::Random();
  EXPECT_TRUE(TailPolicyKeeps(Policy("latency>50ms"), id, "", Ptrs(t))) << "0..60 ms";
  EXPECT_FALSE(TailPolicyKeeps(Policy("latency>60ms"), id, "", Ptrs(t)));
  EXPECT_TRUE(TailPolicyKeeps(Policy("latency>30ms:service=back"), id, "", Ptrs(t))) << "35 ms";
  EXPECT_FALSE(TailPolicyKeeps(Policy("latency>30ms:service=front"), id, "", Ptrs(t))) << "30 ms";
  EXPECT_TRUE(TailPolicyKeeps(Policy("latency>34ms:route=/api/{id}"), id, "", Ptrs(t)));
  EXPECT_FALSE(TailPolicyKeeps(Policy("latency>35ms:route=/api/{id}"), id, "", Ptrs(t)));
  EXPECT_FALSE(TailPolicyKeeps(Policy("latency>1us:route=/other"), id, "", Ptrs(t)));
}

TEST(TailPolicy, AttributesAndTokens) {
  std::vector<model::Span> t = {SpanOf(0, 1), SpanOf(0, 1)};
  t[0].attributes.push_back({"gen_ai.request.model", std::string("gpt-4o")});
  t[0].attributes.push_back({"gen_ai.usage.input_tokens", int64_t{600}});
  t[1].attributes.push_back({"gen_ai.usage.output_tokens", int64_t{500}});
  t[1].attributes.push_back({"http.response.status_code", int64_t{503}});
  const model::TraceId id = model::TraceId::Random();
  EXPECT_TRUE(TailPolicyKeeps(Policy("attribute:gen_ai.request.model=gpt-4o"), id, "", Ptrs(t)));
  EXPECT_FALSE(TailPolicyKeeps(Policy("attribute:gen_ai.request.model=gpt-4"), id, "", Ptrs(t)));
  EXPECT_TRUE(TailPolicyKeeps(Policy("attribute:http.response.status_code=503"), id, "", Ptrs(t)));
  EXPECT_TRUE(TailPolicyKeeps(Policy("genai_tokens>1099"), id, "", Ptrs(t)));
  EXPECT_FALSE(TailPolicyKeeps(Policy("genai_tokens>1100"), id, "", Ptrs(t)));
}

TEST(TailPolicy, ProbabilisticIsConsistentWithTheHeadRatio) {
  std::mt19937_64 rng(99);
  const TailPolicy p = Policy("probabilistic:0.05");
  HeadSampler head = Make("traceidratio", "0.05");
  std::vector<model::Span> t = {SpanOf(0, 1)};
  constexpr int kN = 100'000;
  int kept = 0;
  for (int i = 0; i < kN; ++i) {
    const model::TraceId id = IdFrom(rng);
    const bool k = TailPolicyKeeps(p, id, "", Ptrs(t));
    ASSERT_EQ(k, head.Decide({.trace_id = id}).sampled);
    kept += k;
  }
  const Interval in = Binomial999(kN, 0.05);
  EXPECT_GE(kept, in.lo);
  EXPECT_LE(kept, in.hi);
}

TEST(TailPolicy, TheFirstPolicyThatKeepsNamesTheDecision) {
  std::vector<model::Span> t = {SpanOf(0, 100)};
  t[0].status_code = model::StatusCode::kError;
  const std::vector<TailPolicy> ps = {Policy("latency>1s"), Policy("error"), Policy("latency>50ms")};
  EXPECT_EQ(TailDecide(ps, model::TraceId::Random(), "", Ptrs(t)), 1);
  t[0].status_code = model::StatusCode::kUnset;
  EXPECT_EQ(TailDecide(ps, model::TraceId::Random(), "", Ptrs(t)), 2);
  t[0].end_time_unix_nano = t[0].start_time_unix_nano + 10 * kMs;
  EXPECT_EQ(TailDecide(ps, model::TraceId::Random(), "", Ptrs(t)), -1);
}

// ---- rate limiter ---------------------------------------------------------------------

TEST(RateLimiter, TenASecondUnderFiveHundredIsRatePlusBurst) {
  RateLimiter r({.per_second = 10, .burst = 5});
  int passed = 0;
  for (int i = 0; i < 500 * 20; ++i) {  // 500 a second for 20 s
    passed += r.Admit("svc", kT0 + static_cast<uint64_t>(i) * 2 * kMs) == RateLimiter::Verdict::kPass;
  }
  // The bucket starts full (5), then 10 a second for the 19.998 s that follow.
  EXPECT_GE(passed, 5 + 199);
  EXPECT_LE(passed, 5 + 200);
}

TEST(RateLimiter, PerServiceBucketsAreApartAndBounded) {
  RateLimiter r({.per_service_per_second = 1, .per_service_burst = 1, .max_services = 2});
  EXPECT_EQ(r.Admit("a", kT0), RateLimiter::Verdict::kPass);
  EXPECT_EQ(r.Admit("a", kT0), RateLimiter::Verdict::kService);
  EXPECT_EQ(r.Admit("b", kT0), RateLimiter::Verdict::kPass);
  EXPECT_EQ(r.Admit("c", kT0), RateLimiter::Verdict::kPass) << "the shared bucket of later services";
  EXPECT_EQ(r.Admit("d", kT0), RateLimiter::Verdict::kService) << "shares c's bucket";
  EXPECT_EQ(r.Admit("a", kT0 + 1000 * kMs), RateLimiter::Verdict::kPass) << "refilled after a second";
}

TEST(RateLimiter, AServiceRefusalTakesNoOverallToken) {
  RateLimiter r({.per_second = 1, .burst = 1, .per_service_per_second = 1, .per_service_burst = 1});
  EXPECT_EQ(r.Admit("a", kT0), RateLimiter::Verdict::kPass);
  EXPECT_EQ(r.Admit("a", kT0 + 1000 * kMs), RateLimiter::Verdict::kPass);
  EXPECT_EQ(r.Admit("a", kT0 + 1000 * kMs), RateLimiter::Verdict::kService);
  EXPECT_EQ(r.Admit("b", kT0 + 1000 * kMs), RateLimiter::Verdict::kOverall);
}

// ---- the trace sampler ----------------------------------------------------------------

TEST(TraceSampler, LocalTracesAreTailSampledAndCrossingOnesHeadSampled) {
  metrics::Registry m;
  SamplingConfig c;
  c.head = {.kind = HeadSamplerKind::kParentBasedAlwaysOff};
  c.tail = {Policy("error")};
  TraceSampler s(c, &m);
  std::vector<model::Span> t = {SpanOf(0, 10)};
  t[0].status_code = model::StatusCode::kError;
  t[0].kind = model::SpanKind::kServer;
  const model::TraceId id = model::TraceId::Random();
  TraceVerdict v = s.Decide({.trace_id = id, .flags = 1, .spans = Ptrs(t)});
  EXPECT_TRUE(v.keep);
  EXPECT_EQ(v.flags, 1);
  // The same trace with a remote parent: the head sampler's (sampled parent) decision.
  v = s.Decide({.trace_id = id, .flags = 0, .remote_parent = true, .spans = Ptrs(t)});
  EXPECT_FALSE(v.keep);
  EXPECT_EQ(v.flags, 0);
  // A remote child: a CLIENT span to a non-loopback peer.
  t.push_back(SpanOf(1, 2));
  t[1].kind = model::SpanKind::kClient;
  t[1].attributes.push_back({"network.peer.address", std::string("10.1.2.3")});
  EXPECT_TRUE(TraceSampler::HasRemoteChild(Ptrs(t)));
  v = s.Decide({.trace_id = id, .flags = 1, .whole = false, .spans = Ptrs(t)});
  EXPECT_FALSE(v.keep) << "parentbased_always_off at a root";
  t[1].attributes.back().value = std::string("127.0.0.1");
  EXPECT_FALSE(TraceSampler::HasRemoteChild(Ptrs(t)));
  EXPECT_EQ(
      Count(m, "kspan_sampling_traces_total", {{"decision", "kept"}, {"rule", "error"}, {"sampler", "tail"}}),
      1u);
  EXPECT_EQ(Count(m, "kspan_sampling_traces_total",
                  {{"decision", "dropped"}, {"rule", "parent_not_sampled"}, {"sampler", "head"}}),
            1u);
  EXPECT_EQ(Count(m, "kspan_sampling_traces_total",
                  {{"decision", "dropped"}, {"rule", "always_off"}, {"sampler", "head"}}),
            1u);
  EXPECT_EQ(Count(m, "kspan_sampling_traces_decided_early_total"), 1u);
}

TEST(TraceSampler, TheRateLimitCountsWhatItRefuses) {
  metrics::Registry m;
  SamplingConfig c;
  c.rate = {.per_second = 1, .burst = 2};
  TraceSampler s(c, &m);
  std::vector<model::Span> t = {SpanOf(0, 1)};
  int kept = 0;
  for (int i = 0; i < 10; ++i)
    kept += s.Decide({.trace_id = model::TraceId::Random(), .now_ns = kT0, .spans = Ptrs(t)}).keep;
  EXPECT_EQ(kept, 2);
  EXPECT_EQ(Count(m, "kspan_sampling_traces_total",
                  {{"decision", "dropped"}, {"rule", "overall"}, {"sampler", "rate_limit"}}),
            8u);
  EXPECT_EQ(Count(m, "kspan_sampling_traces_total",
                  {{"decision", "kept"}, {"rule", "always_on"}, {"sampler", "head"}}),
            2u);
}

// ---- whole traces through the stitcher's window --------------------------------------

events::SocketTuple Tuple(const std::string& local, uint16_t lport, const std::string& remote,
                          uint16_t rport) {
  events::SocketTuple t;
  t.family = 2;
  t.local = {local, lport};
  t.remote = {remote, rport};
  return t;
}

// Many requests through a same-host chain curl → front → call → back (four spans a trace)
// with traceidratio 0.25: every trace is exported whole or not at all, the decision is in
// the flags and tracestate of each span, and the count is within the binomial interval.
TEST(SampledStitching, RatioKeepsWholeTracesOnly) {
  metrics::Registry m;
  SamplingConfig c;
  c.head = {.kind = HeadSamplerKind::kTraceIdRatio, .ratio = 0.25};
  TraceSampler sampler(c, &m);
  std::vector<model::Span> out;
  ProcessorChain chain(&m, [&](model::Span&& s) { out.push_back(std::move(s)); });
  chain.Add("sampling", &sampler);
  correlator::StitcherOptions o;
  o.decide = [&](const correlator::HeldTrace& t, uint8_t* flags, std::string* state) {
    TraceVerdict v = sampler.Decide({.trace_id = t.trace_id,
                                     .flags = *flags,
                                     .trace_state = *state,
                                     .remote_parent = t.remote_parent,
                                     .whole = t.whole,
                                     .now_ns = t.now_ns,
                                     .spans = t.spans});
    *flags = v.flags;
    *state = v.trace_state;
  };
  correlator::Stitcher st(o, &m, [&](model::Span&& s) { chain.Export(std::move(s)); });

  constexpr int kTraces = 2000;
  uint64_t base = 0;  // ms; each request's spans nest: curl [0,8] front [1,7] call [2,6] back [3,5]
  auto request = [&](bool server, uint32_t pid, int fd, uint32_t tid, uint64_t at_ms,
                     const events::SocketTuple& t, uint64_t seq) {
    correlator::RequestSeen r;
    r.conn = {pid, fd, 1};
    r.seq = seq;
    r.server = server;
    r.tuple = t;
    r.tuple_known = true;
    r.timing.tid = tid;
    r.timing.start_ns = kT0 + (base + at_ms) * kMs;
    st.OnRequest(std::move(r));
    return r.conn;
  };
  auto done = [&](const events::ConnKey& k, const std::string& name, uint64_t start_ms, uint64_t end_ms,
                  uint64_t seq) {
    model::Span s;
    s.name = name;
    s.start_time_unix_nano = kT0 + (base + start_ms) * kMs;
    s.end_time_unix_nano = kT0 + (base + end_ms) * kMs;
    st.OnSpan({.conn = k, .seq = seq}, std::move(s));
  };
  for (int i = 0; i < kTraces; ++i) {
    const uint64_t seq = static_cast<uint64_t>(i) + 1;
    const auto cport = static_cast<uint16_t>(20000 + i), kport = static_cast<uint16_t>(30000 + i);
    auto curl = request(false, 1, 3, 1, 0, Tuple("127.0.0.1", cport, "127.0.0.1", 8000), seq);
    auto front = request(true, 2, 4, 2, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", cport), seq);
    auto call = request(false, 2, 5, 2, 2, Tuple("127.0.0.1", kport, "127.0.0.1", 9000), seq);
    auto back = request(true, 3, 6, 3, 3, Tuple("127.0.0.1", 9000, "127.0.0.1", kport), seq);
    st.Advance(kT0 + (base + 100) * kMs);
    done(back, "back", 3, 5, seq);
    done(call, "call", 2, 6, seq);
    done(front, "front", 1, 7, seq);
    done(curl, "curl", 0, 8, seq);
    base += 200;
    st.Advance(kT0 + base * kMs);
  }
  st.FlushAll();

  std::map<std::string, std::vector<const model::Span*>> traces;
  for (const auto& s : out) traces[s.trace_id.Hex()].push_back(&s);
  const Interval in = Binomial999(kTraces, 0.25);
  EXPECT_GE(traces.size(), in.lo);
  EXPECT_LE(traces.size(), in.hi);
  HeadSampler head(c.head);
  for (const auto& [id, spans] : traces) {
    ASSERT_EQ(spans.size(), 4u) << "trace " << id << " is not whole";
    std::set<std::string> ids;
    for (const auto* s : spans) ids.insert(s->span_id.Hex());
    for (const auto* s : spans) {
      EXPECT_TRUE(!s->parent_span_id.IsValid() || ids.count(s->parent_span_id.Hex())) << "orphan in " << id;
      EXPECT_EQ(s->trace_flags & 1, 1);
      EXPECT_EQ(s->trace_state, "ot=th:c");
      EXPECT_TRUE(head.Decide({.trace_id = s->trace_id}).sampled);
    }
  }
  EXPECT_EQ(
      Count(m, "kspan_sampling_traces_total", {{"decision", "kept"}, {"rule", "ratio"}, {"sampler", "head"}}),
      traces.size());
  EXPECT_EQ(Count(m, "kspan_sampling_traces_total",
                  {{"decision", "dropped"}, {"rule", "ratio"}, {"sampler", "head"}}),
            kTraces - traces.size());
  EXPECT_EQ(Count(m, "kspan_processor_spans_dropped_total", {{"processor", "sampling"}}),
            4 * (kTraces - traces.size()));
}

}  // namespace
}  // namespace kspan::processors

namespace kspan::processors {
namespace {

// ---- filters --------------------------------------------------------------------------

model::Span HttpSpan(const std::string& method, const std::string& path, int64_t port) {
  model::Span s = SpanOf(0, 1);
  s.trace_id = model::TraceId::Random();
  s.span_id = model::SpanId::Random();
  s.attributes.push_back({"http.request.method", method});
  s.attributes.push_back({"url.path", path});
  s.attributes.push_back({"server.port", port});
  return s;
}

FilterRule Rule(std::string_view spec) {
  auto r = ParseFilterRule("test", spec);
  EXPECT_TRUE(r.ok()) << spec << ": " << r.status().message();
  return r.ok() ? *r : FilterRule{};
}

TEST(SpanFilter, RulesMatchWhatTheySay) {
  metrics::Registry m;
  SpanFilter f({Rule("route=/healthz"), Rule("port=9100"), Rule("service=noisy"), Rule("attribute:a=1"),
                Rule("executable=node"), TelemetryRule()},
               &m);
  EXPECT_EQ(f.Match(HttpSpan("GET", "/healthz", 80)), 0);
  EXPECT_EQ(f.Match(HttpSpan("GET", "/healthz/deep", 80)), -1);
  EXPECT_EQ(f.Match(HttpSpan("GET", "/", 9100)), 1);
  model::Span s = HttpSpan("GET", "/", 80);
  EXPECT_EQ(f.Match(s), -1);
  s.attributes.push_back({"a", int64_t{1}});
  EXPECT_EQ(f.Match(s), 3);
  auto r = std::make_shared<model::Resource>();
  r->attributes = {{"service.name", std::string("noisy")}};
  s.resource = r;
  EXPECT_EQ(f.Match(s), 2);
  r = std::make_shared<model::Resource>();
  r->attributes = {{"service.name", std::string("x")},
                   {"process.executable.path", std::string("/usr/bin/node")}};
  model::Span n = HttpSpan("GET", "/", 80);
  n.resource = r;
  EXPECT_EQ(f.Match(n), 4);
  EXPECT_EQ(f.Match(HttpSpan("POST", "/v1/traces", 4318)), 5);
  EXPECT_EQ(f.Match(HttpSpan("POST", "/api/otlp/v1/traces", 4000)), 5) << "a base path before it";
  EXPECT_EQ(f.Match(HttpSpan("POST", "/api/v2/spans", 9411)), 5);
  EXPECT_EQ(f.Match(HttpSpan("GET", "/v1/traces", 4318)), -1) << "telemetry is a POST";
  model::Span client = SpanOf(0, 1);
  client.attributes = {{"http.request.method", std::string("POST")},
                       {"url.full", std::string("http://c:4318/v1/metrics?x=1")}};
  EXPECT_EQ(f.Match(client), 5) << "the path of url.full";
}

TEST(SpanFilter, BadRulesAreClearErrors) {
  for (const char* bad : {"route=", "port=0", "port=http", "attribute:=1", "healthz"}) {
    auto r = ParseFilterRule("--drop", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--drop: filter '"), std::string::npos) << r.status().message();
  }
}

TEST(SpanFilter, AFilteredSpanTakesItsDescendantsAlong) {
  metrics::Registry m;
  SpanFilter f({Rule("route=/healthz")}, &m);
  model::Span root = HttpSpan("GET", "/", 80);
  model::Span probe = HttpSpan("GET", "/healthz", 80);
  probe.trace_id = root.trace_id;
  probe.parent_span_id = root.span_id;
  model::Span db = HttpSpan("GET", "/db", 5432);
  db.trace_id = root.trace_id;
  db.parent_span_id = probe.span_id;
  model::Span sibling = HttpSpan("GET", "/other", 80);
  sibling.trace_id = root.trace_id;
  sibling.parent_span_id = root.span_id;
  EXPECT_TRUE(f.OnExport(root));
  EXPECT_FALSE(f.OnExport(probe));
  EXPECT_FALSE(f.OnExport(db)) << "under a dropped span: no orphan";
  EXPECT_TRUE(f.OnExport(sibling));
  EXPECT_EQ(Count(m, "kspan_filter_spans_dropped_total", {{"rule", "route=/healthz"}}), 1u);
  EXPECT_EQ(Count(m, "kspan_filter_spans_dropped_total", {{"rule", "descendant"}}), 1u);
}

TEST(TraceSampler, AFilteredTraceIsDroppedWholeBeforeTheRateLimit) {
  metrics::Registry m;
  SpanFilter f({Rule("route=/healthz")}, &m);
  SamplingConfig c;
  c.rate = {.per_second = 1, .burst = 1};
  TraceSampler s(c, &m, &f);
  std::vector<model::Span> probe = {HttpSpan("GET", "/healthz", 80)};
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(s.Decide({.trace_id = model::TraceId::Random(), .now_ns = kT0, .spans = Ptrs(probe)}).keep);
  }
  std::vector<model::Span> real = {HttpSpan("GET", "/api", 80)};
  EXPECT_TRUE(s.Decide({.trace_id = model::TraceId::Random(), .now_ns = kT0, .spans = Ptrs(real)}).keep)
      << "the probes took no token";
  EXPECT_EQ(Count(m, "kspan_sampling_traces_total",
                  {{"decision", "dropped"}, {"rule", "route=/healthz"}, {"sampler", "filter"}}),
            5u);
}

TEST(SamplingConfiguration, FromTheEnvironmentAndTheDefaults) {
  char prog[] = "kspan";
  char* argv[] = {prog};
  auto c = agent::ParseCommandLine(1, argv,
                                   agent::Environment({{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
                                                       {"OTEL_TRACES_SAMPLER_ARG", "0.1"}}));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->sampling.head.kind, HeadSamplerKind::kParentBasedTraceIdRatio);
  EXPECT_EQ(c->sampling.head.ratio, 0.1);
  ASSERT_EQ(c->filters.size(), 1u);
  EXPECT_EQ(c->filters[0].name, "telemetry") << "on by default";
  auto d = agent::ParseCommandLine(1, argv, agent::Environment());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->sampling.head.kind, HeadSamplerKind::kParentBasedAlwaysOn) << "the SDK's default";
  auto bad = agent::ParseCommandLine(
      1, argv, agent::Environment(std::map<std::string, std::string>{{"OTEL_TRACES_SAMPLER", "sometimes"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("OTEL_TRACES_SAMPLER: unknown sampler 'sometimes'; expected one of"),
            std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace kspan::processors

namespace kspan::processors {
namespace {

// A span the stitcher never saw requested leaves at once: it is decided too, alone.
TEST(SampledStitching, AnUnannouncedSpanIsDecidedAlone) {
  metrics::Registry m;
  SamplingConfig c;
  c.head = {.kind = HeadSamplerKind::kAlwaysOff};
  TraceSampler sampler(c, &m);
  std::vector<model::Span> out;
  correlator::StitcherOptions o;
  o.decide = [&](const correlator::HeldTrace& t, uint8_t* flags, std::string* state) {
    TraceVerdict v = sampler.Decide({.trace_id = t.trace_id,
                                     .flags = *flags,
                                     .trace_state = *state,
                                     .remote_parent = t.remote_parent,
                                     .whole = t.whole,
                                     .now_ns = t.now_ns,
                                     .spans = t.spans});
    *flags = v.flags;
    *state = v.trace_state;
  };
  correlator::Stitcher st(o, &m, [&](model::Span&& s) { out.push_back(std::move(s)); });
  model::Span s = SpanOf(0, 1);
  s.trace_id = model::TraceId::Random();
  s.span_id = model::SpanId::Random();
  st.OnSpan({.conn = {7, 3, 1}, .seq = 1}, std::move(s));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].trace_flags & 1, 0) << "always_off: the flag says dropped";
  EXPECT_EQ(Count(m, "kspan_sampling_traces_total",
                  {{"decision", "dropped"}, {"rule", "always_off"}, {"sampler", "head"}}),
            1u);
}

}  // namespace
}  // namespace kspan::processors
