// The queue, thread and retry loop every network exporter (OTLP, Zipkin) shares; the
// wire format and transport come from a Transport (transport.h).
//
//   ExportPipeline thread            this exporter's thread                   backend
//   ─────────────────────            ──────────────────────                   ───────
//   Export(batch) ──copy──► queue ──► take ≤ max_batch_spans ──► Encode ──► Send ──►
//     (full: drop, counted)   ▲        when a batch is full, every            │
//                             │        schedule_delay, or on flush/stop       ▼
//                             │                              sent │ retry after a wait │ drop
//
// Export never touches the network: it copies the spans into the queue, or drops and
// counts what does not fit, and returns. The thread sends one request at a time. A
// request that fails with a retryable error (retry.h) is retried, after the server's
// Retry-After / RetryInfo or an exponential backoff with jitter, until it succeeds or its
// retry budget runs out; meanwhile the queue keeps filling up to its bound and drops the
// rest. So while a backend is down, memory stays at about max_queue_spans +
// max_batch_spans spans, and when it comes back every span that fitted the queue is sent.
//
// A request whose encoding exceeds max_request_bytes is split in halves until each part
// fits; a single span that alone exceeds it is dropped (too_large).
//
// ForceFlush sends everything queued before it and waits at most `drain_timeout`; while
// the backend is failing it returns false at once (waiting would not make it come back,
// and the agent's exit should not wait twice).
// Shutdown keeps sending, retries included, until the queue is empty or `drain_timeout`
// has passed since it was called; what is left then is dropped (shutdown). An attempt in
// flight when the deadline passes is abandoned at the deadline.
//
// Metrics (registered at construction; NAME is Options::name):
//   kspan_exporter_spans_sent_total{exporter=NAME}          accepted by the backend
//   kspan_exporter_spans_dropped_total{exporter=NAME,reason=...}
//       queue_full         Export found the queue full
//       rejected           the backend accepted the request but rejected these spans
//                          (OTLP partial success); never resent
//       non_retryable      the backend refused the request (400, INVALID_ARGUMENT, ...)
//       retries_exhausted  still failing when the retry budget ran out
//       too_large          one span encodes larger than max_request_bytes
//       shutdown           still queued, or in hand, when Shutdown's time ran out
//   kspan_exporter_requests_total{exporter=NAME}            attempts made, retries included
//   kspan_exporter_retries_total{exporter=NAME}             attempts that were retries
//   kspan_exporter_queue_spans{exporter=NAME}               a gauge (Counter::Set): spans
//                                                           queued plus in hand
//
// Logs are for state changes only: "backend unavailable" once when sends start failing,
// "backend is back" once when one succeeds again, never a line per failure.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "exporters/exporter.h"
#include "exporters/retry.h"
#include "exporters/settings.h"
#include "exporters/transport.h"

namespace kspan::exporters {

class QueuedExporter final : public SpanExporter {
 public:
  struct Options {
    std::string name;  // Name() and the `exporter` metric label: "otlp", "zipkin"
    QueueSettings queue;
    std::chrono::milliseconds attempt_timeout{10000};  // one Send, at most
    RetryPolicy retry;
    std::chrono::milliseconds drain_timeout{10000};  // ForceFlush and Shutdown, at most
  };

  // Starts the thread. `registry` may be null (private counters); otherwise it must
  // outlive the exporter.
  QueuedExporter(Options options, std::unique_ptr<Transport> transport, metrics::Registry* registry);
  ~QueuedExporter() override;  // Shutdown()

  QueuedExporter(const QueuedExporter&) = delete;
  QueuedExporter& operator=(const QueuedExporter&) = delete;

  std::string_view Name() const noexcept override { return options_.name; }
  // Copies `batch` into the queue. kFailure when some spans did not fit (dropped,
  // counted as queue_full) or the exporter is shut down.
  ExportResult Export(std::span<const model::Span> batch) noexcept override;
  bool ForceFlush() noexcept override;
  void Shutdown() noexcept override;

  // Spans queued or in hand. Thread-safe.
  size_t Pending() const;

 private:
  using Clock = std::chrono::steady_clock;
  enum class Health { kHealthy, kFailing, kRefusing };

  void Run();
  // Sends `spans`, split so every request fits max_request_bytes.
  void Deliver(std::span<const model::Span> spans);
  // Sends the request the transport holds (carrying `n` spans), retrying per the policy.
  void SendWithRetries(size_t n);
  // Sleeps until `until`. False when Shutdown's deadline falls before it: do not retry.
  bool WaitForRetry(Clock::time_point until);
  void SetHealth(Health health, const std::string& detail);
  void UpdateGaugeLocked();

  const Options options_;
  const std::unique_ptr<Transport> transport_;
  std::unique_ptr<metrics::Registry> own_registry_;
  metrics::Counter* sent_;
  metrics::Counter* dropped_queue_full_;
  metrics::Counter* dropped_rejected_;
  metrics::Counter* dropped_non_retryable_;
  metrics::Counter* dropped_retries_exhausted_;
  metrics::Counter* dropped_too_large_;
  metrics::Counter* dropped_shutdown_;
  metrics::Counter* requests_;
  metrics::Counter* retries_;
  metrics::Counter* queue_spans_;

  // Exporter thread only (failing_ is read by ForceFlush).
  Health health_ = Health::kHealthy;
  std::atomic<bool> failing_{false};
  bool logged_partial_success_ = false;
  bool logged_too_large_ = false;
  std::mt19937_64 rng_{std::random_device{}()};

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // the thread waits: a full batch, flush, stop
  std::condition_variable flush_cv_;  // ForceFlush waits: flush_done_ advanced
  std::deque<model::Span> queue_;     // guarded by mu_
  size_t in_hand_ = 0;                // guarded by mu_: spans taken, not yet settled
  uint64_t flush_requested_ = 0;      // guarded by mu_
  uint64_t flush_done_ = 0;           // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  Clock::time_point drain_deadline_;  // guarded by mu_: set with stopping_
  bool exited_ = false;               // guarded by mu_

  std::mutex join_mu_;  // serialises Shutdown callers around join()
  std::thread thread_;
};

}  // namespace kspan::exporters
