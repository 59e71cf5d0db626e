#include "store/store_sink.h"

#include "common/log.h"

namespace kspan::store {
namespace {

uint64_t NowUnixNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

StoreSink::StoreSink(std::shared_ptr<TraceStore> store, Options options, metrics::Registry* registry)
    : store_(std::move(store)), options_(options) {
  if (!registry) {
    own_registry_ = std::make_unique<metrics::Registry>();
    registry = own_registry_.get();
  }
  written_ = registry->GetCounter("kspan_store_spans_written_total");
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
  size_t taken = 0;
  for (const model::Span& s : batch) {
    if (queue_.size() >= options_.max_queue_spans) break;
    queue_.push_back(s);
    ++taken;
  }
  if (taken < batch.size()) dropped_full_->Add(batch.size() - taken);
  queue_gauge_->Set(queue_.size());
  if (queue_.size() >= options_.max_batch) work_cv_.notify_one();
  return taken == batch.size() ? exporters::ExportResult::kSuccess : exporters::ExportResult::kFailure;
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
