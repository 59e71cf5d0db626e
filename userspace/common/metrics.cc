#include "common/metrics.h"

#include <algorithm>

namespace kspan::metrics {

Counter* Registry::GetCounter(const std::string& name, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = counters_[{name, labels}];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

void Registry::SetLabelRedactor(LabelRedactor redact) {
  auto r = redact ? std::make_shared<const LabelRedactor>(std::move(redact)) : nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  redact_ = std::move(r);
}

Labels Registry::Redacted(Labels labels) const {
  std::shared_ptr<const LabelRedactor> redact;
  {
    std::lock_guard<std::mutex> lock(mu_);
    redact = redact_;
  }
  if (redact) {
    for (auto& [key, value] : labels) (*redact)(&value);
  }
  return labels;
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

Histogram::Histogram(std::vector<double> bounds) {
  data_.bounds = std::move(bounds);
  data_.counts.assign(data_.bounds.size() + 1, 0);
}

namespace {
// The first bound >= v: buckets are upper-inclusive.
size_t BucketOf(const std::vector<double>& bounds, double v) {
  return static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());
}
}  // namespace

void Histogram::Record(double v) {
  const size_t i = BucketOf(data_.bounds, v);
  std::lock_guard<std::mutex> lock(mu_);
  ++data_.counts[i];
  ++data_.count;
  data_.sum += v;
}

void Histogram::Record(double v, const Exemplar& exemplar) {
  const size_t i = BucketOf(data_.bounds, v);
  std::lock_guard<std::mutex> lock(mu_);
  ++data_.counts[i];
  ++data_.count;
  data_.sum += v;
  if (data_.exemplars.empty()) data_.exemplars.resize(data_.counts.size());
  data_.exemplars[i] = exemplar;
  data_.exemplars[i].value = v;
}

Histogram::Data Histogram::Read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return data_;
}

Histogram* Registry::GetHistogram(const std::string& name, const Labels& labels,
                                  const std::vector<double>& bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = histograms_.find({name, labels});
  if (it != histograms_.end()) return it->second.get();
  Labels key = labels;
  size_t& series = histogram_series_[name];
  if (series >= kMaxSeriesPerHistogram) {
    for (auto& [k, v] : key) v = "_OTHER";
    it = histograms_.find({name, key});
    if (it != histograms_.end()) return it->second.get();
  }
  ++series;
  auto& slot = histograms_[{name, std::move(key)}];
  slot = std::make_unique<Histogram>(bounds);
  return slot.get();
}

std::vector<HistogramSample> Registry::HistogramSnapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<HistogramSample> out;
  out.reserve(histograms_.size());
  for (const auto& [key, h] : histograms_) out.push_back({key.first, key.second, h->Read()});
  return out;
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
