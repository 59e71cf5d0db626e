// The hand-off between span production and exporters: a bounded queue and one export
// thread. Capture never waits on an exporter: Submit only takes a short lock to append
// to the batch being filled, and drops (counted) when the queue is full.
//
//   Submit (any thread)         export thread                       exporters
//   ───────────────────         ─────────────                       ─────────
//   span ─► filling batch ──full (max_batch)──► ready batches ─┐
//                │                                             ├──► Export(batch) on each,
//                └──── flush_interval, Flush, Shutdown ────────┘     in order, one at a time
//
// Bounds: at most max_queue_spans spans are held, counting those waiting and those being
// exported; a Submit past that is dropped. With the defaults (65536 spans of ~0.5-2 KB)
// that caps the queue near 32-128 MB under a stalled exporter. Batch vectors are recycled,
// so the steady state allocates nothing here but the spans themselves.
//
// Metrics (registered at construction):
//   kspan_spans_dropped_total{reason="queue_full"}      Submit found the queue full
//   kspan_spans_dropped_total{reason="shutdown"}        Submit after Shutdown
//   kspan_spans_exported_total{exporter=NAME}           spans in batches NAME accepted
//   kspan_export_failures_total{exporter=NAME}          Export calls NAME failed
//   kspan_spans_export_failed_total{exporter=NAME}      spans in those failed batches
//
// One slow exporter delays the others (they share the thread): OTLP's "queue per
// destination" is for network exporters with retries, which can run their own pipeline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "exporters/exporter.h"

namespace kspan::exporters {

class ExportPipeline {
 public:
  struct Options {
    size_t max_queue_spans = 65536;
    size_t max_batch = 512;                         // spans per Export call, at most
    std::chrono::milliseconds flush_interval{200};  // longest a span waits for a batch to fill
  };

  // Starts the export thread. `registry` may be null (the counters are then private);
  // otherwise it must outlive the pipeline.
  ExportPipeline(std::vector<std::unique_ptr<SpanExporter>> exporters, Options options,
                 metrics::Registry* registry);
  // Shutdown().
  ~ExportPipeline();

  ExportPipeline(const ExportPipeline&) = delete;
  ExportPipeline& operator=(const ExportPipeline&) = delete;

  // Queues a span for export. Thread-safe, never blocks on an exporter. False when the
  // span was dropped (queue full, or after Shutdown); the drop is counted.
  bool Submit(model::Span&& span) noexcept;

  // Exports everything submitted before the call, then ForceFlush()es every exporter.
  // True when that finished within `timeout`. Thread-safe.
  bool Flush(std::chrono::milliseconds timeout);

  // Exports what is queued, calls Shutdown on every exporter and stops the export thread.
  // Later Submits are dropped. Idempotent; blocks as long as the exporters take.
  void Shutdown();

  // Spans held (waiting plus being exported). Thread-safe.
  size_t Pending() const;

 private:
  using Batch = std::vector<model::Span>;

  struct ExporterSlot {
    std::unique_ptr<SpanExporter> exporter;
    metrics::Counter* exported;
    metrics::Counter* failures;
    metrics::Counter* failed_spans;
    bool failing = false;  // export thread only: to log state changes, not every failure
  };

  void Run();
  void ExportBatch(const Batch& batch);
  // Takes a recycled batch vector, or a fresh one. Requires mu_.
  Batch NewBatchLocked();

  const Options options_;
  std::unique_ptr<metrics::Registry> own_registry_;
  metrics::Counter* dropped_queue_full_;
  metrics::Counter* dropped_shutdown_;
  std::vector<ExporterSlot> exporters_;  // export thread only, after construction

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // export thread waits: a full batch, flush, stop
  std::condition_variable flush_cv_;  // Flush callers wait: flush_done_ advanced
  Batch filling_;                     // guarded by mu_
  std::deque<Batch> ready_;           // guarded by mu_: full batches, oldest first
  std::vector<Batch> free_;           // guarded by mu_: empty vectors with capacity
  size_t pending_ = 0;                // guarded by mu_
  uint64_t flush_requested_ = 0;      // guarded by mu_
  uint64_t flush_done_ = 0;           // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  bool exited_ = false;               // guarded by mu_

  std::mutex join_mu_;  // serialises Shutdown callers around join()
  std::thread thread_;
};

}  // namespace kspan::exporters
