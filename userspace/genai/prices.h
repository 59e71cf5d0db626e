// LLM prices: a table of what each model's tokens cost, by token type, and the cost of one
// call's usage (docs/genai.md, "Cost"). The table is YAML; kspan ships a dated default
// (genai/prices.yaml, compiled in: DefaultPricesYaml) and `--genai-prices FILE` replaces it.
//
//   date: 2025-10-15            # when the prices were taken (required)
//   currency: USD               # optional, USD the only one
//   unit_tokens: 1000000        # optional: prices are per this many tokens (default 1M)
//   models:
//     gpt-4o: {input: 2.50, cached_input: 1.25, output: 10.00}
//     o3:     {input: 2.00, cached_input: 0.50, output: 8.00, reasoning: 8.00}
//     claude-sonnet-4-5: {input: 3.00, cached_input: 0.30, cache_write: 3.75, output: 15.00}
//
// input and output are required; cached_input and cache_write default to input, reasoning to
// output. A model is found by its exact name, else by its name without a dated snapshot
// suffix (gpt-4o-2024-08-06 → gpt-4o, claude-sonnet-4-5-20250929 → claude-sonnet-4-5);
// nothing else is guessed: a model not in the table has no price.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kspan::genai {

struct ModelPrice {  // per unit_tokens tokens
  double input = 0;
  double cached_input = 0;
  double cache_write = 0;
  double output = 0;
  double reasoning = 0;
};

// One call's usage in the conventions' terms (gen_ai.usage.*): input_tokens includes
// cached ones (cache reads and writes), output_tokens includes reasoning ones.
struct Usage {
  int64_t input_tokens = 0;
  int64_t cache_read_input_tokens = 0;
  int64_t cache_creation_input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t reasoning_output_tokens = 0;
};

class PriceTable {
 public:
  // Parses the YAML text; `origin` names it in errors (a path, "the shipped table").
  static Result<PriceTable> Parse(std::string_view yaml, std::string_view origin);

  // The price of `model`, or nullptr when the table has none.
  const ModelPrice* Find(std::string_view model) const;
  // The cost of `usage` at `price`, in the table's currency: uncached input at input,
  // cache reads at cached_input, cache writes at cache_write, output less reasoning at
  // output, reasoning at reasoning.
  double Cost(const ModelPrice& price, const Usage& usage) const;

  const std::string& date() const { return date_; }
  size_t size() const { return models_.size(); }

 private:
  std::string date_;
  double unit_tokens_ = 1'000'000;
  std::map<std::string, ModelPrice, std::less<>> models_;
};

// The shipped table (genai/prices.yaml), with its date inside.
std::string_view DefaultPricesYaml();

}  // namespace kspan::genai
