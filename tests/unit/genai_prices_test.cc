#include <gtest/gtest.h>

#include "correlator/genai_cost.h"
#include "genai/prices.h"

namespace kspan::genai {

constexpr std::string_view kTable = R"(
date: 2026-01-02
currency: USD
models:
  gpt-4o: {input: 2.50, cached_input: 1.25, output: 10.00}
  o3: {input: 2.00, cached_input: 0.50, output: 8.00, reasoning: 9.00}
  claude-sonnet-4-5: {input: 3.00, cached_input: 0.30, cache_write: 3.75, output: 15.00}
)";

namespace {

PriceTable Table(std::string_view yaml = kTable) {
  Result<PriceTable> t = PriceTable::Parse(yaml, "test");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(*t) : PriceTable{};
}

TEST(GenaiPricesTest, TheShippedTableParsesWithItsDate) {
  Result<PriceTable> t = PriceTable::Parse(DefaultPricesYaml(), "shipped");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->date(), "2026-12-05");
  const ModelPrice* opus = t->Find("claude-opus-4-5-20251101");
  ASSERT_NE(opus, nullptr);
  EXPECT_EQ(opus->input, 5.00) << "Opus 4.5's own price, not Opus 4.1's";
  EXPECT_EQ(opus->cached_input, 0.50);
  EXPECT_EQ(opus->cache_write, 6.25);
  EXPECT_EQ(opus->output, 25.00);
  EXPECT_NE(t->Find("gpt-5.1"), nullptr);
  EXPECT_NE(t->Find("gpt-4o"), nullptr);
  EXPECT_NE(t->Find("claude-sonnet-4-5-20250929"), nullptr);
}

TEST(GenaiPricesTest, ModelsByExactNameOrDatedSnapshotOnly) {
  const PriceTable t = Table();
  EXPECT_EQ(t.size(), 3u);
  ASSERT_NE(t.Find("gpt-4o"), nullptr);
  EXPECT_EQ(t.Find("gpt-4o-2024-08-06"), t.Find("gpt-4o"));
  EXPECT_EQ(t.Find("claude-sonnet-4-5-20250929"), t.Find("claude-sonnet-4-5"));
  EXPECT_EQ(t.Find("gpt-4o-mini"), nullptr) << "a similar model is not guessed";
  EXPECT_EQ(t.Find("gpt-4o-tools"), nullptr);
  EXPECT_EQ(t.Find("gpt-4o-mini-2024-07-18"), nullptr);
  EXPECT_EQ(t.Find(""), nullptr);
  // Defaults: cached_input and cache_write are input, reasoning is output.
  const ModelPrice* p = t.Find("gpt-4o");
  EXPECT_EQ(p->cache_write, 2.50);
  EXPECT_EQ(p->reasoning, 10.00);
}

TEST(GenaiPricesTest, CostByTokenType) {
  const PriceTable t = Table();
  // 1000 input of which 200 cached, 300 output: 800 x 2.50 + 200 x 1.25 + 300 x 10 per 1M.
  EXPECT_DOUBLE_EQ(t.Cost(*t.Find("gpt-4o"), {.input_tokens = 1000,
                                              .cache_read_input_tokens = 200,
                                              .cache_creation_input_tokens = 0,
                                              .output_tokens = 300,
                                              .reasoning_output_tokens = 0}),
                   (800 * 2.50 + 200 * 1.25 + 300 * 10.00) / 1e6);
  // Reasoning is part of output, at its own price.
  EXPECT_DOUBLE_EQ(t.Cost(*t.Find("o3"), {.input_tokens = 10,
                                          .cache_read_input_tokens = 0,
                                          .cache_creation_input_tokens = 0,
                                          .output_tokens = 100,
                                          .reasoning_output_tokens = 60}),
                   (10 * 2.00 + 40 * 8.00 + 60 * 9.00) / 1e6);
  // Anthropic: input includes cache reads and writes (as the conventions count it).
  EXPECT_DOUBLE_EQ(t.Cost(*t.Find("claude-sonnet-4-5"), {.input_tokens = 1107,
                                                         .cache_read_input_tokens = 1000,
                                                         .cache_creation_input_tokens = 100,
                                                         .output_tokens = 20,
                                                         .reasoning_output_tokens = 0}),
                   (7 * 3.00 + 1000 * 0.30 + 100 * 3.75 + 20 * 15.00) / 1e6);
}

TEST(GenaiPricesTest, BadTablesSayWhatIsWrong) {
  const auto error = [](std::string_view yaml) {
    return PriceTable::Parse(yaml, "p.yaml").status().message();
  };
  EXPECT_NE(error("models: {a: {input: 1, output: 1}}").find("no date"), std::string::npos);
  EXPECT_NE(error("date: x\nmodels: {a: {input: 1}}").find("model a: no output price"), std::string::npos);
  EXPECT_NE(error("date: x\nmodels: {a: {input: -1, output: 1}}").find("input must be a number >= 0"),
            std::string::npos);
  EXPECT_NE(error("date: x\nmodels: {a: {input: 1, output: 1, cached: 1}}").find("unknown price 'cached'"),
            std::string::npos);
  EXPECT_NE(error("date: x\ncurrency: EUR\nmodels: {a: {input: 1, output: 1}}").find("currency must be USD"),
            std::string::npos);
  EXPECT_NE(error("date: x\nmodels: []").find("models must map"), std::string::npos);
  EXPECT_NE(error("[").find("p.yaml: not YAML"), std::string::npos);
}

}  // namespace
}  // namespace kspan::genai

namespace kspan::correlator {
namespace {

model::Span Llm(std::string request_model, std::string response_model, int64_t in, int64_t out) {
  model::Span s;
  s.Set("gen_ai.request.model", std::move(request_model));
  if (!response_model.empty()) s.Set("gen_ai.response.model", std::move(response_model));
  s.Set("gen_ai.usage.input_tokens", in);
  s.Set("gen_ai.usage.output_tokens", out);
  return s;
}

TEST(GenAiCostTest, SpansGetTheirCostAndTheHistogramSumsIt) {
  metrics::Registry m;
  GenAiCost cost(genai::PriceTable::Parse(genai::kTable, "t").value(), &m);
  model::Span a = Llm("gpt-4o", "gpt-4o-2024-08-06", 1000, 100);
  ASSERT_EQ(cost.Apply(&a, "orchestrator", 42), (1000 * 2.50 + 100 * 10.00) / 1e6);
  EXPECT_DOUBLE_EQ(std::get<double>(*a.Find("kspan.gen_ai.cost")), (1000 * 2.50 + 100 * 10.00) / 1e6);
  model::Span b = Llm("gpt-4o", "", 2000, 0);  // no response model: the request's
  ASSERT_TRUE(cost.Apply(&b, "orchestrator", 42).has_value());
  model::Span unknown = Llm("gpt-4o", "gpt-4o-tools", 10, 10);  // answered by a model not priced
  EXPECT_FALSE(cost.Apply(&unknown, "orchestrator", 42).has_value());
  EXPECT_EQ(unknown.Find("kspan.gen_ai.cost"), nullptr);
  model::Span no_usage;
  no_usage.Set("gen_ai.request.model", std::string("gpt-4o"));
  EXPECT_FALSE(cost.Apply(&no_usage, "", 0).has_value());
  EXPECT_EQ(m.GetCounter("kspan_genai_cost_unpriced_total")->Value(), 1u) << "no usage is not unpriced";
  double sum = 0;
  uint64_t count = 0;
  for (const auto& h : m.HistogramSnapshot()) {
    if (h.name != "kspan_genai_cost_usd") continue;
    EXPECT_EQ(h.labels[0], (metrics::Labels::value_type{"gen_ai_agent_name", "orchestrator"}));
    EXPECT_EQ(h.labels[1], (metrics::Labels::value_type{"kspan_session", "42"}));
    sum += h.data.sum;
    count += h.data.count;
  }
  EXPECT_EQ(count, 2u);
  EXPECT_DOUBLE_EQ(sum, (1000 * 2.50 + 100 * 10.00 + 2000 * 2.50) / 1e6);
}

}  // namespace
}  // namespace kspan::correlator
