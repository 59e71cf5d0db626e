// The trace store's rate bound (userspace/store/admission.h): whole traces at the rate,
// errors first, and nothing bounded when the rate is 0.
#include <gtest/gtest.h>

#include <map>

#include "store/admission.h"

namespace kspan::store {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

model::Span SpanOf(uint32_t trace, bool error = false) {
  model::Span s;
  s.trace_id.bytes[0] = 1;
  std::memcpy(s.trace_id.bytes.data() + 8, &trace, sizeof trace);
  s.span_id.bytes[7] = 1;
  if (error) s.status_code = model::StatusCode::kError;
  return s;
}

TEST(TraceAdmission, ZeroTakesEverySpan) {
  TraceAdmission a(0);
  for (uint32_t t = 0; t < 100'000; ++t) EXPECT_TRUE(a.Admit(SpanOf(t), kSecond));
}

TEST(TraceAdmission, TakesWholeTracesAtTheRate) {
  TraceAdmission a(100);
  // 1,000 traces a second for 10 s, three spans each, spread over the second.
  std::map<uint32_t, int> taken;  // trace -> spans taken
  uint64_t total = 0;
  uint32_t trace = 0;
  for (int sec = 0; sec < 10; ++sec) {
    for (int i = 0; i < 1000; ++i, ++trace) {
      const uint64_t now = kSecond + sec * kSecond + i * (kSecond / 1000);
      for (int span = 0; span < 3; ++span) {
        if (a.Admit(SpanOf(trace), now)) {
          ++taken[trace];
          ++total;
        }
      }
    }
  }
  // A second's burst, then the rate: about 100 + 10 x 100 spans.
  EXPECT_GE(total, 1000u);
  EXPECT_LE(total, 1200u);
  for (const auto& [t, n] : taken) EXPECT_EQ(n, 3) << "trace " << t << " stored in part";
}

TEST(TraceAdmission, AnErrorTakesItsTraceOverTheRateUpToTwiceIt) {
  TraceAdmission a(10);
  uint64_t now = kSecond;
  // The bucket is spent.
  for (uint32_t t = 0; t < 10; ++t) ASSERT_TRUE(a.Admit(SpanOf(t), now));
  ASSERT_FALSE(a.Admit(SpanOf(100), now));
  // A refused trace's error span is taken, and so are that trace's later spans.
  EXPECT_TRUE(a.Admit(SpanOf(100, true), now));
  EXPECT_TRUE(a.Admit(SpanOf(100), now));
  // Errors keep coming in one instant: at most a second's worth below zero.
  int errors = 0;
  for (uint32_t t = 200; t < 300; ++t) errors += a.Admit(SpanOf(t, true), now);
  EXPECT_EQ(errors, 8) << "10 tokens below zero, 2 already spent";
  EXPECT_FALSE(a.Admit(SpanOf(0), now)) << "not even a taken trace's span past the ceiling";
  // Half a second later the bucket is still below one token; a second and a half after
  // that it is full again.
  now += kSecond / 2;
  EXPECT_FALSE(a.Admit(SpanOf(400), now));
  now += 3 * kSecond / 2;
  EXPECT_TRUE(a.Admit(SpanOf(401), now));
}

TEST(TraceAdmission, ForgetsQuietTracesAfterTwoGenerations) {
  TraceAdmission a(1);
  uint64_t now = kSecond;
  ASSERT_TRUE(a.Admit(SpanOf(1), now));
  ASSERT_FALSE(a.Admit(SpanOf(2), now));
  // Still remembered one generation later: refused without a look at the bucket.
  now += TraceAdmission::kGenerationNs + kSecond;
  EXPECT_FALSE(a.Admit(SpanOf(2), now));
  // Quiet for two generations while other traces come and go: decided again, and the
  // bucket has a token.
  now += TraceAdmission::kGenerationNs + kSecond;
  EXPECT_TRUE(a.Admit(SpanOf(3), now));
  now += TraceAdmission::kGenerationNs + kSecond;
  EXPECT_TRUE(a.Admit(SpanOf(2), now));
}

// More traces than a generation holds, in one instant: the generation turns over by count,
// and decisions of both generations still hold (the table grows from 1,024 slots to hold
// them; a miss must not be taken for a new trace).
TEST(TraceAdmission, DecisionsHoldAcrossAGenerationTurnedOverByCount) {
  TraceAdmission a(10);
  const uint64_t now = kSecond;
  ASSERT_TRUE(a.Admit(SpanOf(0xFFFFFFFF), now));
  uint32_t taken = 0;
  for (uint32_t t = 0; t < TraceAdmission::kMaxRemembered + 5000; ++t) taken += a.Admit(SpanOf(t), now);
  EXPECT_EQ(taken, 9u) << "a second's worth of tokens, one spent first";
  // A second later the bucket is full again, but remembered traces keep their decision:
  // refused ones stay refused (from the first generation and from the second) and the
  // taken one is still taken.
  const uint64_t later = now + kSecond;
  EXPECT_FALSE(a.Admit(SpanOf(100), later));
  EXPECT_FALSE(a.Admit(SpanOf(TraceAdmission::kMaxRemembered + 4000), later));
  EXPECT_TRUE(a.Admit(SpanOf(0xFFFFFFFF), later));
  EXPECT_TRUE(a.Admit(SpanOf(3), later)) << "taken in the first generation";
  EXPECT_TRUE(a.Admit(SpanOf(0x7FFFFFFF), later)) << "a new trace, with tokens left";
}

// The zero trace id (invalid) is never remembered: each of its spans is decided alone.
TEST(TraceAdmission, TheZeroTraceIdIsDecidedSpanBySpan) {
  TraceAdmission a(2);
  model::Span zero;
  EXPECT_TRUE(a.Admit(zero, kSecond));
  EXPECT_TRUE(a.Admit(zero, kSecond));
  EXPECT_FALSE(a.Admit(zero, kSecond)) << "no token left, and no trace to carry it";
}

}  // namespace
}  // namespace kspan::store
