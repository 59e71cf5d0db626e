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
// Duplicates. OTLP has no idempotency key: when an attempt fails after the whole request
// was written (a timeout, a connection lost before the answer, a gateway's 504), the
// backend may have kept the spans, and the retry that follows may store them twice. The
// OTLP specification accepts that ("Known Limitations / Duplicate Data": re-sending is
// "the right tradeoff for telemetry data"), so such a request is still retried, and the
// copies the backend may hold are counted when the request is settled: with k such
// attempts, a request finally sent counts k x its spans as possibly duplicated; one
// finally dropped counts its spans as possibly delivered and (k - 1) x them as possibly
// duplicated. So for what a backend stored:
//   copies <= sent + possibly_duplicated + possibly_delivered
//   distinct spans <= sent + possibly_delivered
// A warning is logged at most once a minute. Two things keep the copies few:
//   - a 2xx status line whose body was then lost counts as sent (http_client.h);
//   - after an attempt timed out with the request written, the next attempt of the same
//     request waits twice as long for its answer (like TCP's retransmission timer, RFC
//     6298 section 5.5), up to what is left of the retry budget: a backend slower than
//     `attempt_timeout` is then answered on the second attempt instead of getting a copy
//     every attempt_timeout + backoff until the budget runs out.
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
//   kspan_exporter_retries_total{exporter=NAME,reason=...}  attempts that were retries, by
//       why the attempt before failed (transport.h RetryReasonName): not_sent, throttled,
//       unavailable, timeout, connection_lost
//   kspan_exporter_spans_possibly_duplicated_total{exporter=NAME}
//       extra copies of spans the backend may hold (see "Duplicates" above)
//   kspan_exporter_spans_possibly_delivered_total{exporter=NAME}
//       spans counted dropped (any reason) of which an earlier attempt may have
//       delivered one copy
//   kspan_exporter_queue_spans{exporter=NAME}               a gauge (Counter::Set): spans
//                                                           queued plus in hand
//
// Logs are for state changes only: "backend unavailable" once when sends start failing,
// "backend is back" once when one succeeds again, never a line per failure; and the
// possible duplicates, at most once a minute.
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
  // Counts `n` possible extra copies of spans (`why`: the last ambiguous failure); logs
  // at most once a minute.
  void CountPossibleDuplicates(size_t n, const SendResult& why);
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
  metrics::Counter* retries_[5];  // by SendResult::RetryReason
  metrics::Counter* possibly_duplicated_;
  metrics::Counter* possibly_delivered_;
  metrics::Counter* queue_spans_;

  // Exporter thread only (failing_ is read by ForceFlush).
  Health health_ = Health::kHealthy;
  std::atomic<bool> failing_{false};
  bool logged_partial_success_ = false;
  bool logged_too_large_ = false;
  Clock::time_point duplicates_logged_at_{};  // the last "possible duplicates" line
  uint64_t duplicates_unlogged_ = 0;          // spans counted since that line
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
