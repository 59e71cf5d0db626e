// The trace store's writer: a SpanExporter (exporters/exporter.h) the ExportPipeline
// hands its batches to, with its own bounded queue and thread, so the store never slows
// the capture or the other exporters.
//
//   ExportPipeline thread              this sink's thread                    SQLite
//   ─────────────────────              ──────────────────                    ──────
//   Export(batch) ──copy──► queue ──► take ≤ max_batch ──► TraceStore::Write ──► one
//     (full: drop, counted)            every flush_interval or when full       transaction
//
// Rate: with max_spans_per_second set, TraceAdmission (admission.h) decides first, in whole
// traces, errors first; what it refuses is dropped and counted.
//
// Bounds: at most max_queue_spans spans wait (8192 spans of ~1-2 KB: ~8-16 MB under a
// stalled disk); a span that does not fit is dropped and counted, never waited for.
//
// Metrics:
//   kspan_store_spans_written_total                     in a committed transaction
//   kspan_store_spans_dropped_total{reason=rate}        over max_spans_per_second
//   kspan_store_spans_dropped_total{reason=queue_full}  Export found the queue full
//   kspan_store_spans_dropped_total{reason=write_failed} the transaction failed (disk
//                                                        full, file locked by another)
//   kspan_store_queue_spans                             a gauge: spans waiting
//
// Threading: as exporter.h; Export never blocks on the disk.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "common/metrics.h"
#include "exporters/exporter.h"
#include "store/admission.h"
#include "store/trace_store.h"

namespace kspan::store {

class StoreSink final : public exporters::SpanExporter {
 public:
  struct Options {
    size_t max_queue_spans = 8192;
    size_t max_batch = 1024;
    // A transaction a second: SQLite's cost per span falls by about a quarter from
    // 100-span to 1,000-span transactions (kspan-store-bench --batch), since the tails of
    // the tables and indexes are rewritten into the WAL once per commit.
    std::chrono::milliseconds flush_interval{1000};
    uint32_t max_spans_per_second = 0;  // 0: no rate bound
  };

  // Starts the thread. `store` is shared with the readers (ui/); `registry` may be null.
  StoreSink(std::shared_ptr<TraceStore> store, Options options, metrics::Registry* registry);
  ~StoreSink() override;  // Shutdown()

  std::string_view Name() const noexcept override { return "store"; }
  exporters::ExportResult Export(std::span<const model::Span> batch) noexcept override;
  // Writes everything queued before the call. True when done within 10 s.
  bool ForceFlush() noexcept override;
  void Shutdown() noexcept override;

 private:
  void Run();

  const std::shared_ptr<TraceStore> store_;
  const Options options_;
  std::unique_ptr<metrics::Registry> own_registry_;
  metrics::Counter* written_;
  metrics::Counter* dropped_rate_;
  metrics::Counter* dropped_full_;
  metrics::Counter* dropped_failed_;
  metrics::Counter* queue_gauge_;

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  TraceAdmission admission_;       // guarded by mu_
  std::deque<model::Span> queue_;  // guarded by mu_
  uint64_t flush_requested_ = 0;   // guarded by mu_
  uint64_t flush_done_ = 0;        // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  std::mutex join_mu_;
  std::thread thread_;
};

}  // namespace kspan::store
