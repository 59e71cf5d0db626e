#include "genai/prices.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace kspan::genai {
namespace {

// A price: a finite number >= 0.
Status ReadPrice(const YAML::Node& model, const char* key, std::string_view where, bool required,
                 double* out) {
  const YAML::Node v = model[key];
  if (!v) {
    if (required) return InvalidArgument(std::string(where) + ": no " + key + " price");
    return Status::Ok();
  }
  double d = 0;
  if (!v.IsScalar() || !YAML::convert<double>::decode(v, d) || !std::isfinite(d) || d < 0) {
    return InvalidArgument(std::string(where) + ": " + key + " must be a number >= 0, not '" +
                           (v.IsScalar() ? v.Scalar() : std::string("a list or map")) + "'");
  }
  *out = d;
  return Status::Ok();
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// `model` without a dated snapshot suffix (-YYYY-MM-DD or -YYYYMMDD), or "" when it has none.
std::string_view WithoutSnapshot(std::string_view model) {
  if (model.size() > 11 && model[model.size() - 11] == '-' && model[model.size() - 6] == '-' &&
      model[model.size() - 3] == '-' && AllDigits(model.substr(model.size() - 10, 4)) &&
      AllDigits(model.substr(model.size() - 5, 2)) && AllDigits(model.substr(model.size() - 2))) {
    return model.substr(0, model.size() - 11);
  }
  if (model.size() > 9 && model[model.size() - 9] == '-' && AllDigits(model.substr(model.size() - 8)))
    return model.substr(0, model.size() - 9);
  return {};
}

}  // namespace

Result<PriceTable> PriceTable::Parse(std::string_view yaml, std::string_view origin) {
  const std::string where(origin);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(where + ": not YAML: " + e.what());
  }
  if (!root.IsMap()) return InvalidArgument(where + ": expected a map with date and models");
  PriceTable t;
  try {
    const YAML::Node date = root["date"];
    if (!date || !date.IsScalar() || date.Scalar().empty())
      return InvalidArgument(where + ": no date (when the prices were taken, e.g. date: 2025-10-15)");
    t.date_ = date.Scalar();
    if (const YAML::Node c = root["currency"]; c && (!c.IsScalar() || c.Scalar() != "USD"))
      return InvalidArgument(where + ": currency must be USD");
    if (const YAML::Node u = root["unit_tokens"]) {
      double d = 0;
      if (!u.IsScalar() || !YAML::convert<double>::decode(u, d) || !(d >= 1))
        return InvalidArgument(where + ": unit_tokens must be a number >= 1");
      t.unit_tokens_ = d;
    }
    const YAML::Node models = root["models"];
    if (!models || !models.IsMap() || models.size() == 0)
      return InvalidArgument(where + ": models must map model names to prices");
    for (const auto& m : models) {
      const std::string name = m.first.Scalar();
      const std::string at = where + ": model " + name;
      if (name.empty() || !m.second.IsMap())
        return InvalidArgument(at + ": expected {input: N, output: N, ...}");
      for (const auto& field : m.second) {
        const std::string k = field.first.Scalar();
        if (k != "input" && k != "cached_input" && k != "cache_write" && k != "output" && k != "reasoning")
          return InvalidArgument(at + ": unknown price '" + k +
                                 "' (input, cached_input, cache_write, output, reasoning)");
      }
      ModelPrice p;
      RETURN_IF_ERROR(ReadPrice(m.second, "input", at, true, &p.input));
      RETURN_IF_ERROR(ReadPrice(m.second, "output", at, true, &p.output));
      p.cached_input = p.input;
      p.cache_write = p.input;
      p.reasoning = p.output;
      RETURN_IF_ERROR(ReadPrice(m.second, "cached_input", at, false, &p.cached_input));
      RETURN_IF_ERROR(ReadPrice(m.second, "cache_write", at, false, &p.cache_write));
      RETURN_IF_ERROR(ReadPrice(m.second, "reasoning", at, false, &p.reasoning));
      if (!t.models_.emplace(name, p).second) return InvalidArgument(at + ": listed twice");
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(where + ": " + e.what());
  }
  return t;
}

const ModelPrice* PriceTable::Find(std::string_view model) const {
  if (auto it = models_.find(model); it != models_.end()) return &it->second;
  const std::string_view base = WithoutSnapshot(model);
  if (base.empty()) return nullptr;
  auto it = models_.find(base);
  return it != models_.end() ? &it->second : nullptr;
}

double PriceTable::Cost(const ModelPrice& price, const Usage& u) const {
  const auto clamp = [](int64_t v) { return static_cast<double>(std::max<int64_t>(v, 0)); };
  const double cached = clamp(u.cache_read_input_tokens), written = clamp(u.cache_creation_input_tokens);
  const double uncached = std::max(clamp(u.input_tokens) - cached - written, 0.0);
  const double reasoning = std::min(clamp(u.reasoning_output_tokens), clamp(u.output_tokens));
  const double output = clamp(u.output_tokens) - reasoning;
  return (uncached * price.input + cached * price.cached_input + written * price.cache_write +
          output * price.output + reasoning * price.reasoning) /
         unit_tokens_;
}

}  // namespace kspan::genai
