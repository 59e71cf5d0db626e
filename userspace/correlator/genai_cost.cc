#include "correlator/genai_cost.h"

#include <string>
#include <utility>

namespace kspan::correlator {
namespace {

std::optional<int64_t> IntAttr(const model::Span& span, std::string_view key) {
  const model::AttributeValue* v = span.Find(key);
  const int64_t* i = v ? std::get_if<int64_t>(v) : nullptr;
  return i ? std::optional<int64_t>(*i) : std::nullopt;
}

std::string StrAttr(const model::Span& span, std::string_view key) {
  const std::string* s = span.FindString(key);
  return s ? *s : "";
}

// Cost per call: from a hundredth of a cent to tens of dollars.
const std::vector<double> kCostBuckets = {0.0001, 0.001, 0.01, 0.1, 1, 10, 100};

}  // namespace

GenAiCost::GenAiCost(genai::PriceTable prices, metrics::Registry* metrics)
    : prices_(std::move(prices)),
      metrics_(metrics),
      unpriced_(metrics->GetCounter("kspan_genai_cost_unpriced_total")) {}

std::optional<double> GenAiCost::Apply(model::Span* span, std::string_view agent, uint32_t session) {
  const std::optional<int64_t> input = IntAttr(*span, "gen_ai.usage.input_tokens");
  const std::optional<int64_t> output = IntAttr(*span, "gen_ai.usage.output_tokens");
  if (!input && !output) return std::nullopt;  // no usage reported: nothing to price
  const std::string request_model = StrAttr(*span, "gen_ai.request.model");
  const std::string response_model = StrAttr(*span, "gen_ai.response.model");
  const genai::ModelPrice* price = nullptr;
  if (!response_model.empty()) price = prices_.Find(response_model);
  if (!price && response_model.empty() && !request_model.empty()) price = prices_.Find(request_model);
  if (!price) {
    unpriced_->Add();
    return std::nullopt;
  }
  const genai::Usage usage = {
      .input_tokens = input.value_or(0),
      .cache_read_input_tokens = IntAttr(*span, "gen_ai.usage.cache_read.input_tokens").value_or(0),
      .cache_creation_input_tokens = IntAttr(*span, "gen_ai.usage.cache_creation.input_tokens").value_or(0),
      .output_tokens = output.value_or(0),
      .reasoning_output_tokens = IntAttr(*span, "gen_ai.usage.reasoning.output_tokens").value_or(0)};
  const double cost = prices_.Cost(*price, usage);
  span->Set("kspan.gen_ai.cost", cost);
  const std::string service = [&] {
    if (!span->resource) return std::string();
    for (const auto& a : span->resource->attributes) {
      if (a.key == "service.name") {
        if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
      }
    }
    return std::string();
  }();
  metrics_
      ->GetHistogram("kspan_genai_cost_usd",
                     metrics_->Redacted({{"gen_ai_agent_name", std::string(agent)},
                                         {"kspan_session", session ? std::to_string(session) : std::string()},
                                         {"gen_ai_request_model", request_model},
                                         {"gen_ai_response_model", response_model},
                                         {"service_name", service}}),
                     kCostBuckets)
      ->Record(cost);
  return cost;
}

}  // namespace kspan::correlator
