#include "common/metrics.h"

#include <gtest/gtest.h>

namespace kspan::metrics {
namespace {

TEST(HistogramTest, BucketsAreUpperInclusive) {
  Histogram h({1, 10});
  for (double v : {0.5, 1.0, 1.5, 10.0, 11.0, 100.0}) h.Record(v);
  const Histogram::Data d = h.Read();
  EXPECT_EQ(d.counts, (std::vector<uint64_t>{2, 2, 2}));
  EXPECT_EQ(d.count, 6u);
  EXPECT_DOUBLE_EQ(d.sum, 124.0);
}

TEST(HistogramTest, RegistryReturnsOneHistogramPerSeries) {
  Registry r;
  Histogram* a = r.GetHistogram("h", {{"k", "a"}}, {1});
  EXPECT_EQ(r.GetHistogram("h", {{"k", "a"}}, {5}), a);  // the first bounds win
  EXPECT_NE(r.GetHistogram("h", {{"k", "b"}}, {1}), a);
  a->Record(3);
  const auto all = r.HistogramSnapshot();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].labels, (Labels{{"k", "a"}}));
  EXPECT_EQ(all[0].data.count, 1u);
  EXPECT_EQ(all[0].data.bounds, (std::vector<double>{1}));
}

TEST(HistogramTest, SeriesPastTheCapShareAnOtherSeries) {
  Registry r;
  for (size_t i = 0; i < Registry::kMaxSeriesPerHistogram; ++i) {
    r.GetHistogram("h", {{"model", "m" + std::to_string(i)}}, {1})->Record(1);
  }
  Histogram* other = r.GetHistogram("h", {{"model", "one-more"}}, {1});
  EXPECT_EQ(r.GetHistogram("h", {{"model", "and-another"}}, {1}), other);
  other->Record(1);
  other->Record(1);
  const auto all = r.HistogramSnapshot();
  EXPECT_EQ(all.size(), Registry::kMaxSeriesPerHistogram + 1);
  bool found = false;
  for (const auto& h : all) {
    if (h.labels == Labels{{"model", "_OTHER"}}) found = h.data.count == 2;
  }
  EXPECT_TRUE(found);
  // Known series still work, and another name has its own budget.
  EXPECT_NE(r.GetHistogram("h", {{"model", "m0"}}, {1}), other);
  EXPECT_NE(r.GetHistogram("g", {{"model", "one-more"}}, {1}), other);
}

TEST(RegistryTest, RedactedPassesEveryValueThroughTheRedactorWhileOneIsSet) {
  Registry r;
  const Labels labels = {{"service.name", "shop-cust-123456"}, {"server.port", "8080"}};
  EXPECT_EQ(r.Redacted(labels), labels);  // none set: as they are
  r.SetLabelRedactor([](std::string* v) {
    if (const size_t at = v->find("cust-"); at != std::string::npos) v->replace(at, 11, "REDACTED");
  });
  EXPECT_EQ(r.Redacted(labels), (Labels{{"service.name", "shop-REDACTED"}, {"server.port", "8080"}}));
  r.SetLabelRedactor(nullptr);  // its owner went
  EXPECT_EQ(r.Redacted(labels), labels);
}

}  // namespace
}  // namespace kspan::metrics
