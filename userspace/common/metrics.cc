#include "common/metrics.h"

namespace kspan::metrics {

Counter* Registry::GetCounter(const std::string& name, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = counters_[{name, labels}];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

std::vector<Sample> Registry::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Sample> out;
  out.reserve(counters_.size());
  for (const auto& [key, counter] : counters_) out.push_back({key.first, key.second, counter->Value()});
  return out;
}

uint64_t Registry::Sum(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t sum = 0;
  for (const auto& [key, counter] : counters_) {
    if (key.first == name) sum += counter->Value();
  }
  return sum;
}

std::string SeriesName(const Sample& s) {
  std::string out = s.name;
  if (s.labels.empty()) return out;
  out += '{';
  for (size_t i = 0; i < s.labels.size(); ++i) {
    if (i) out += ',';
    out += s.labels[i].first;
    out += "=\"";
    out += s.labels[i].second;
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace kspan::metrics
