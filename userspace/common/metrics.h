// The agent's own counters: every event, byte, span and drop is counted where it
// happens. Counters are registered once (at construction of a stage, never on the data
// path) and then bumped with a relaxed atomic add from any thread.
//
//   metrics::Counter* parse_fail = registry.GetCounter("kspan_drops_total", {{"reason", "parse_failed"}});
//   parse_fail->Add();
//
// Names follow Prometheus conventions (snake_case, _total for counters) so /metrics can
// serve them as they are.
#pragma once

#include <atomic>
#include <cstdint>
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

class Registry {
 public:
  // Returns the counter for (name, labels), creating it at zero. The pointer stays valid
  // for the registry's lifetime. Thread-safe.
  Counter* GetCounter(const std::string& name, const Labels& labels = {});
  // Every counter, sorted by name then labels.
  std::vector<Sample> Snapshot() const;
  // Sum of every counter with this name, whatever its labels.
  uint64_t Sum(const std::string& name) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, Labels>, std::unique_ptr<Counter>> counters_;
};

// "name{k=\"v\",...}": the Prometheus text form of one series.
std::string SeriesName(const Sample& s);

}  // namespace kspan::metrics
