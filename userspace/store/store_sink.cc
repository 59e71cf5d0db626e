#include "store/store_sink.h"

#include "common/log.h"

namespace kspan::store {
namespace {

uint64_t NowUnixNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

uint64_t MonotonicNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

StoreSink::StoreSink(std::shared_ptr<TraceStore> store, Options options, metrics::Registry* registry)
    : store_(std::move(store)), options_(options), admission_(options.max_spans_per_second) {
  if (!registry) {
    own_registry_ = std::make_unique<metrics::Registry>();
    registry = own_registry_.get();
  }
  written_ = registry->GetCounter("kspan_store_spans_written_total");
  dropped_rate_ = registry->GetCounter("kspan_store_spans_dropped_total", {{"reason", "rate"}});
  dropped_full_ = registry->GetCounter("kspan_store_spans_dropped_total", {{"reason", "queue_full"}});
  dropped_failed_ = registry->GetCounter("kspan_store_spans_dropped_total", {{"reason", "write_failed"}});
  queue_gauge_ = registry->GetCounter("kspan_store_queue_spans");
  thread_ = std::thread([this] { Run(); });
}

StoreSink::~StoreSink() {
  Shutdown();
}

exporters::ExportResult StoreSink::Export(std::span<const model::Span> batch) noexcept {
  std::lock_guard lock(mu_);
  if (stopping_) {
    dropped_full_->Add(batch.size());
    return exporters::ExportResult::kFailure;
  }
  const uint64_t now = MonotonicNs();
  size_t taken = 0, refused = 0;
  for (const model::Span& s : batch) {
    if (queue_.size() >= options_.max_queue_spans) break;
    if (!admission_.Admit(s, now)) {
      ++refused;
      continue;
    }
    queue_.push_back(s);
    ++taken;
  }
  dropped_rate_->Add(refused);
  if (taken + refused < batch.size()) dropped_full_->Add(batch.size() - taken - refused);
  queue_gauge_->Set(queue_.size());
  if (queue_.size() >= options_.max_batch) work_cv_.notify_one();
  // Refusals are the rate bound doing its job, not a failure of the store.
  return taken + refused == batch.size() ? exporters::ExportResult::kSuccess
                                         : exporters::ExportResult::kFailure;
}

bool StoreSink::ForceFlush() noexcept {
  std::unique_lock lock(mu_);
  if (stopping_) return queue_.empty();
  const uint64_t ticket = ++flush_requested_;
  work_cv_.notify_one();
  return done_cv_.wait_for(lock, std::chrono::seconds(10),
                           [&] { return flush_done_ >= ticket || stopping_; });
}

void StoreSink::Shutdown() noexcept {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  std::lock_guard join(join_mu_);
  if (thread_.joinable()) thread_.join();
}

void StoreSink::Run() {
  std::vector<model::Span> batch;
  bool failing = false;
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait_for(lock, options_.flush_interval, [&] {
      return stopping_ || flush_requested_ > flush_done_ || queue_.size() >= options_.max_batch;
    });
    const uint64_t flush_ticket = flush_requested_;
    // Everything queued now is written before a flush (or the stop) counts as done.
    while (!queue_.empty()) {
      const size_t n = std::min(queue_.size(), options_.max_batch);
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
      queue_gauge_->Set(queue_.size());
      lock.unlock();
      const Status s = store_->Write(batch, NowUnixNs());
      if (s.ok()) {
        written_->Add(batch.size());
        if (failing) log::Info("trace store writes again");
        failing = false;
      } else {
        dropped_failed_->Add(batch.size());
        if (!failing)
          log::Warn("trace store write failed; spans dropped until it works", {{"error", s.message()}});
        failing = true;
      }
      batch.clear();
      lock.lock();
    }
    flush_done_ = flush_ticket;
    done_cv_.notify_all();
    if (stopping_) break;
  }
}

}  // namespace kspan::store
