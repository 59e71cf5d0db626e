#include "exporters/queued_exporter.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "common/log.h"

namespace kspan::exporters {

QueuedExporter::QueuedExporter(Options options, std::unique_ptr<Transport> transport,
                               metrics::Registry* registry)
    : options_([&] {
        Options o = std::move(options);
        o.queue.max_batch_spans = std::max<size_t>(o.queue.max_batch_spans, 1);
        o.queue.max_queue_spans = std::max<size_t>(o.queue.max_queue_spans, 1);
        o.queue.max_request_bytes = std::max<size_t>(o.queue.max_request_bytes, 1);
        if (o.queue.schedule_delay <= std::chrono::milliseconds::zero())
          o.queue.schedule_delay = std::chrono::milliseconds(1);
        if (o.attempt_timeout <= std::chrono::milliseconds::zero())
          o.attempt_timeout = std::chrono::milliseconds(1);
        return o;
      }()),
      transport_(std::move(transport)) {
  if (registry == nullptr) {
    own_registry_ = std::make_unique<metrics::Registry>();
    registry = own_registry_.get();
  }
  const metrics::Labels labels = {{"exporter", options_.name}};
  auto dropped = [&](const char* reason) {
    return registry->GetCounter("kspan_exporter_spans_dropped_total",
                                {{"exporter", options_.name}, {"reason", reason}});
  };
  sent_ = registry->GetCounter("kspan_exporter_spans_sent_total", labels);
  dropped_queue_full_ = dropped("queue_full");
  dropped_rejected_ = dropped("rejected");
  dropped_non_retryable_ = dropped("non_retryable");
  dropped_retries_exhausted_ = dropped("retries_exhausted");
  dropped_too_large_ = dropped("too_large");
  dropped_shutdown_ = dropped("shutdown");
  requests_ = registry->GetCounter("kspan_exporter_requests_total", labels);
  for (const auto reason : {SendResult::RetryReason::kNotSent, SendResult::RetryReason::kThrottled,
                            SendResult::RetryReason::kUnavailable, SendResult::RetryReason::kTimeout,
                            SendResult::RetryReason::kConnectionLost}) {
    retries_[static_cast<size_t>(reason)] =
        registry->GetCounter("kspan_exporter_retries_total",
                             {{"exporter", options_.name}, {"reason", std::string(RetryReasonName(reason))}});
  }
  possibly_duplicated_ = registry->GetCounter("kspan_exporter_spans_possibly_duplicated_total", labels);
  possibly_delivered_ = registry->GetCounter("kspan_exporter_spans_possibly_delivered_total", labels);
  queue_spans_ = registry->GetCounter("kspan_exporter_queue_spans", labels);
  thread_ = std::thread([this] { Run(); });
}

QueuedExporter::~QueuedExporter() {
  Shutdown();
}

ExportResult QueuedExporter::Export(std::span<const model::Span> batch) noexcept {
  size_t taken = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      dropped_shutdown_->Add(batch.size());
      return ExportResult::kFailure;
    }
    const size_t held = queue_.size() + in_hand_;
    const size_t room = held < options_.queue.max_queue_spans ? options_.queue.max_queue_spans - held : 0;
    taken = std::min(room, batch.size());
    queue_.insert(queue_.end(), batch.begin(), batch.begin() + static_cast<ptrdiff_t>(taken));
    UpdateGaugeLocked();
    if (queue_.size() >= options_.queue.max_batch_spans) work_cv_.notify_one();
  }
  if (taken == batch.size()) return ExportResult::kSuccess;
  dropped_queue_full_->Add(batch.size() - taken);
  return ExportResult::kFailure;
}

bool QueuedExporter::ForceFlush() noexcept {
  std::unique_lock<std::mutex> lock(mu_);
  if (exited_) return queue_.empty();
  if (failing_.load(std::memory_order_relaxed)) return queue_.empty() && in_hand_ == 0;
  const uint64_t ticket = ++flush_requested_;
  work_cv_.notify_one();
  return flush_cv_.wait_for(lock, options_.drain_timeout, [&] { return flush_done_ >= ticket || exited_; }) &&
         flush_done_ >= ticket;
}

void QueuedExporter::Shutdown() noexcept {
  std::lock_guard<std::mutex> join_lock(join_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      drain_deadline_ = Clock::now() + options_.drain_timeout;
    }
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t QueuedExporter::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + in_hand_;
}

void QueuedExporter::UpdateGaugeLocked() {
  queue_spans_->Set(queue_.size() + in_hand_);
}

void QueuedExporter::Run() {
  const size_t max_batch = options_.queue.max_batch_spans;
  auto next_timer = Clock::now() + options_.queue.schedule_delay;
  std::vector<model::Span> batch;
  batch.reserve(max_batch);
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait_until(lock, next_timer, [&] {
        return queue_.size() >= max_batch || flush_requested_ > flush_done_ || stopping_;
      });
      const auto now = Clock::now();
      const bool timer = now >= next_timer;
      if (timer) next_timer = now + options_.queue.schedule_delay;
      const uint64_t flush_ticket = flush_requested_;
      const bool flushing = flush_ticket > flush_done_;
      if (stopping_ && now >= drain_deadline_ && !queue_.empty()) {
        dropped_shutdown_->Add(queue_.size());
        queue_.clear();
        UpdateGaugeLocked();
      }
      // A full batch goes at once; a partial one when its time is up or someone asked
      // for everything.
      if (queue_.size() >= max_batch || (!queue_.empty() && (timer || flushing || stopping_))) {
        const size_t n = std::min(max_batch, queue_.size());
        std::move(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n), std::back_inserter(batch));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
        in_hand_ = n;
      } else if (queue_.empty()) {
        if (flushing) {
          flush_done_ = flush_ticket;
          flush_cv_.notify_all();
        }
        if (stopping_) {
          exited_ = true;
          flush_done_ = flush_requested_;
          flush_cv_.notify_all();
          return;
        }
        continue;
      } else {
        continue;  // a partial batch, not due yet
      }
    }

    Deliver(batch);
    batch.clear();  // destroy the spans outside the lock
    std::lock_guard<std::mutex> lock(mu_);
    in_hand_ = 0;
    UpdateGaugeLocked();
  }
}

void QueuedExporter::Deliver(std::span<const model::Span> spans) {
  if (spans.empty()) return;
  const size_t bytes = transport_->Encode(spans);
  if (bytes <= options_.queue.max_request_bytes) {
    SendWithRetries(spans.size());
    return;
  }
  if (spans.size() == 1) {
    dropped_too_large_->Add();
    if (!logged_too_large_) {
      logged_too_large_ = true;
      log::Warn("span larger than the request size limit dropped; counting further ones",
                {{"exporter", options_.name},
                 {"bytes", bytes},
                 {"max_request_bytes", options_.queue.max_request_bytes}});
    }
    return;
  }
  const size_t half = spans.size() / 2;
  Deliver(spans.first(half));
  Deliver(spans.subspan(half));
}

void QueuedExporter::SendWithRetries(size_t n) {
  const auto first_attempt = Clock::now();
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  // How long the next attempt waits for its answer: attempt_timeout, doubled after each
  // attempt that timed out with the request written (see the header).
  auto attempt_timeout = options_.attempt_timeout;
  std::optional<SendResult> previous;  // the failed attempt before this one
  // Attempts so far that may have delivered the request without saying so. The first is
  // a possible delivery, each further one (or a final success after one) a possible copy.
  int maybe_delivered = 0;
  SendResult last_maybe_delivered;  // the latest of them, for the log line
  // The request leaves the exporter: sent (or refused) by the backend, or dropped.
  auto settle = [&](bool delivered) {
    if (maybe_delivered == 0) return;
    const int copies = delivered ? maybe_delivered : maybe_delivered - 1;
    if (copies > 0) CountPossibleDuplicates(n * static_cast<size_t>(copies), last_maybe_delivered);
    if (!delivered) possibly_delivered_->Add(n);
  };
  auto drop = [&](metrics::Counter* reason) {
    reason->Add(n);
    settle(false);
  };
  for (int retry = 0;; ++retry) {
    const auto now = Clock::now();
    // A longer wait never runs past the retry budget; the configured one always applies.
    const auto budget_left = std::chrono::duration_cast<std::chrono::milliseconds>(
        first_attempt + options_.retry.max_elapsed - now);
    auto deadline = now + std::max(options_.attempt_timeout, std::min(attempt_timeout, budget_left));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        if (now >= drain_deadline_) {
          drop(dropped_shutdown_);
          return;
        }
        deadline = std::min(deadline, drain_deadline_);
      }
    }
    if (previous) retries_[static_cast<size_t>(previous->reason)]->Add();
    requests_->Add();
    SendResult r = transport_->Send(deadline);
    switch (r.outcome) {
      case SendResult::Outcome::kSent: {
        const size_t rejected =
            static_cast<size_t>(std::clamp<int64_t>(r.rejected_spans, 0, static_cast<int64_t>(n)));
        sent_->Add(n - rejected);
        dropped_rejected_->Add(rejected);
        settle(true);
        if (!r.detail.empty() && !logged_partial_success_) {
          logged_partial_success_ = true;
          log::Warn(
              "export backend accepted a request partially; counting rejected spans",
              {{"exporter", options_.name}, {"rejected_spans", r.rejected_spans}, {"detail", r.detail}});
        }
        SetHealth(Health::kHealthy, "");
        return;
      }
      case SendResult::Outcome::kPermanent:
        // The backend refused this copy; one it may have taken earlier stays possible.
        drop(dropped_non_retryable_);
        SetHealth(Health::kRefusing, r.detail);
        return;
      case SendResult::Outcome::kRetryable: break;
    }
    SetHealth(Health::kFailing, r.detail);
    if (r.maybe_delivered) {
      ++maybe_delivered;
      last_maybe_delivered = r;
      // Capped so that it cannot overflow; the retry budget caps its use anyway.
      if (r.reason == SendResult::RetryReason::kTimeout)
        attempt_timeout =
            std::min(attempt_timeout * 2, std::max(options_.retry.max_elapsed, options_.attempt_timeout));
    }
    previous = std::move(r);
    const std::chrono::milliseconds wait =
        previous->retry_after ? *previous->retry_after : Backoff(options_.retry, retry, jitter(rng_));
    const auto at = Clock::now() + wait;
    if (at - first_attempt > options_.retry.max_elapsed) {
      drop(dropped_retries_exhausted_);
      return;
    }
    if (!WaitForRetry(at)) {
      drop(dropped_shutdown_);
      return;
    }
  }
}

void QueuedExporter::CountPossibleDuplicates(size_t n, const SendResult& why) {
  possibly_duplicated_->Add(n);
  duplicates_unlogged_ += n;
  const auto now = Clock::now();
  if (duplicates_logged_at_ != Clock::time_point{} && now - duplicates_logged_at_ < std::chrono::minutes(1))
    return;
  log::Warn(
      "export backend may hold spans twice: a request was sent again after an attempt it may have taken "
      "(whole request sent, no answer); counting them in kspan_exporter_spans_possibly_duplicated_total",
      {{"exporter", options_.name},
       {"endpoint", transport_->Endpoint()},
       {"spans", duplicates_unlogged_},
       {"reason", RetryReasonName(why.reason)},
       {"error", why.detail}});
  duplicates_logged_at_ = now;
  duplicates_unlogged_ = 0;
}

bool QueuedExporter::WaitForRetry(Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (stopping_) {
      if (until > drain_deadline_) return false;
      while (Clock::now() < until) work_cv_.wait_until(lock, until);
      return true;
    }
    // Woken early only by Shutdown, which may move the goal post: check again.
    if (!work_cv_.wait_until(lock, until, [&] { return stopping_; })) return true;
  }
}

void QueuedExporter::SetHealth(Health health, const std::string& detail) {
  if (health == health_) return;
  health_ = health;
  failing_.store(health == Health::kFailing, std::memory_order_relaxed);
  const std::string endpoint = transport_->Endpoint();
  switch (health) {
    case Health::kHealthy:
      log::Info("export backend is back", {{"exporter", options_.name}, {"endpoint", endpoint}});
      break;
    case Health::kFailing:
      log::Warn("export backend unavailable; retrying within the retry budget, counting drops",
                {{"exporter", options_.name}, {"endpoint", endpoint}, {"error", detail}});
      break;
    case Health::kRefusing:
      log::Warn("export backend refused a request; its spans are dropped, not retried",
                {{"exporter", options_.name}, {"endpoint", endpoint}, {"error", detail}});
      break;
  }
}

}  // namespace kspan::exporters
