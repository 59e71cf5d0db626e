// What each LLM call cost (docs/genai.md, "Cost"): its token usage (gen_ai.usage.*) priced
// by a genai::PriceTable, on the span as kspan.gen_ai.cost (USD) and in the histogram
// kspan_genai_cost_usd{gen_ai_agent_name, kspan_session, gen_ai_request_model,
// gen_ai_response_model, service_name} (each call's cost: _sum is the total, _count the
// calls). The model priced is the response's (what was billed), else the request's; a call
// with usage whose model the table has no price for gets none, counted in
// kspan_genai_cost_unpriced_total, and is never priced as a similar model.
//
// Single-threaded: the pipeline thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/metrics.h"
#include "genai/prices.h"
#include "model/span.h"

namespace kspan::correlator {

class GenAiCost {
 public:
  GenAiCost(genai::PriceTable prices, metrics::Registry* metrics);

  // `span` is a gen_ai span; `agent` its process's agent name ("" when not an agent) and
  // `session` the pid of the agent session it counts toward (0: none). Returns the cost it
  // set, or nothing (no usage, or no price).
  std::optional<double> Apply(model::Span* span, std::string_view agent, uint32_t session);

  const genai::PriceTable& prices() const { return prices_; }

 private:
  genai::PriceTable prices_;
  metrics::Registry* metrics_;
  metrics::Counter* unpriced_;
};

}  // namespace kspan::correlator
