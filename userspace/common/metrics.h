// The agent's own counters: every event, byte, span and drop is counted where it
// happens. Counters are registered once (at construction of a stage, never on the data
// path) and then bumped with a relaxed atomic add from any thread.
//
//   metrics::Counter* parse_fail = registry.GetCounter("kspan_drops_total", {{"reason", "parse_failed"}});
//   parse_fail->Add();
//
// Names follow Prometheus conventions (snake_case, _total for counters) so /metrics can
// serve them as they are.
//
// Label values copied from traced traffic or its processes (service, model, agent and tool
// names, addresses) go through Redacted() first, so a redaction rule that hides a value in
// the spans hides it in every metric series too:
//
//   registry.GetHistogram("gen_ai_client_token_usage", registry.Redacted(labels), bounds);
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kspan::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  // For values that come from elsewhere (kernel per-CPU counters): overwrite.
  void Set(uint64_t v) { value_.store(v, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct Sample {
  std::string name;
  Labels labels;
  uint64_t value;
};

// One recorded value with the span it came from (OpenTelemetry Exemplar, OpenMetrics
// exemplar): a link from a bucket to a trace.
struct Exemplar {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  double value = 0;
  uint64_t time_unix_nano = 0;  // 0: no exemplar in this bucket
  bool operator==(const Exemplar&) const = default;
};

// A distribution with fixed bucket bounds (OpenTelemetry explicit-bucket histogram:
// counts[i] counts values v with bounds[i-1] < v <= bounds[i], the last bucket everything
// above the last bound). Record() takes a lock of its own; use it off the hottest paths.
// Exemplars: at most one a bucket, the most recent wins (the OpenTelemetry SDK's
// AlignedHistogramBucketExemplarReservoir); the array is made at the first exemplar, so a
// histogram without them pays nothing.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Record(double v);
  // Records `v` and keeps `exemplar` (whose value is set to v) as its bucket's exemplar.
  void Record(double v, const Exemplar& exemplar);

  struct Data {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // bounds.size() + 1
    uint64_t count = 0;
    double sum = 0;
    std::vector<Exemplar> exemplars;  // empty, or one a bucket (time_unix_nano 0: none)
  };
  Data Read() const;

 private:
  mutable std::mutex mu_;
  Data data_;
};

struct HistogramSample {
  std::string name;
  Labels labels;
  Histogram::Data data;
};

class Registry {
 public:
  // Returns the counter for (name, labels), creating it at zero. The pointer stays valid
  // for the registry's lifetime. Thread-safe.
  Counter* GetCounter(const std::string& name, const Labels& labels = {});
  // Every counter, sorted by name then labels.
  std::vector<Sample> Snapshot() const;

  // Returns the histogram for (name, labels), creating it with `bounds` (the first call's
  // bounds win). A name holds at most kMaxSeriesPerHistogram label sets: past that, new
  // label sets share one series whose label values are all "_OTHER", so label values taken
  // from traced traffic (model names) cannot grow memory without bound. Thread-safe.
  static constexpr size_t kMaxSeriesPerHistogram = 512;
  Histogram* GetHistogram(const std::string& name, const Labels& labels, const std::vector<double>& bounds);
  // Every histogram, sorted by name then labels.
  std::vector<HistogramSample> HistogramSnapshot() const;
  // Sum of every counter with this name, whatever its labels.
  uint64_t Sum(const std::string& name) const;

  // The redaction rules for label values taken from traffic (the pipeline sets them to its
  // span attribute rules, processors/span_attributes.h, and resets them to none when it
  // goes). Thread-safe; the redactor must be too.
  using LabelRedactor = std::function<void(std::string*)>;
  void SetLabelRedactor(LabelRedactor redact);
  // `labels` with every value through the redactor (as they are when none is set).
  Labels Redacted(Labels labels) const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const LabelRedactor> redact_;  // copied under mu_, called outside it
  std::map<std::pair<std::string, Labels>, std::unique_ptr<Counter>> counters_;
  std::map<std::pair<std::string, Labels>, std::unique_ptr<Histogram>> histograms_;
  std::map<std::string, size_t> histogram_series_;
};

// "name{k=\"v\",...}": the Prometheus text form of one series.
std::string SeriesName(const Sample& s);

}  // namespace kspan::metrics
