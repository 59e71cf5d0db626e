#include "exporters/export_pipeline.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/log.h"

namespace kspan::exporters {
namespace {

// Recycled batch vectors kept for reuse. Four cover a batch being exported, one filling
// and a couple ready; more would only pin memory after a burst.
constexpr size_t kMaxFreeBatches = 4;

}  // namespace

ExportPipeline::ExportPipeline(std::vector<std::unique_ptr<SpanExporter>> exporters, Options options,
                               metrics::Registry* registry)
    : options_([&] {
        Options o = options;
        o.max_batch = std::max<size_t>(o.max_batch, 1);
        o.max_queue_spans = std::max<size_t>(o.max_queue_spans, 1);
        if (o.flush_interval <= std::chrono::milliseconds::zero())
          o.flush_interval = std::chrono::milliseconds(1);
        return o;
      }()) {
  if (registry == nullptr) {
    own_registry_ = std::make_unique<metrics::Registry>();
    registry = own_registry_.get();
  }
  dropped_queue_full_ = registry->GetCounter("kspan_spans_dropped_total", {{"reason", "queue_full"}});
  dropped_shutdown_ = registry->GetCounter("kspan_spans_dropped_total", {{"reason", "shutdown"}});
  for (auto& e : exporters) {
    if (!e) continue;
    const metrics::Labels labels = {{"exporter", std::string(e->Name())}};
    ExporterSlot slot;
    slot.exported = registry->GetCounter("kspan_spans_exported_total", labels);
    slot.failures = registry->GetCounter("kspan_export_failures_total", labels);
    slot.failed_spans = registry->GetCounter("kspan_spans_export_failed_total", labels);
    slot.exporter = std::move(e);
    exporters_.push_back(std::move(slot));
  }
  thread_ = std::thread([this] { Run(); });
}

ExportPipeline::~ExportPipeline() {
  Shutdown();
}

ExportPipeline::Batch ExportPipeline::NewBatchLocked() {
  if (!free_.empty()) {
    Batch b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  Batch b;
  b.reserve(options_.max_batch);
  return b;
}

bool ExportPipeline::Submit(model::Span&& span) noexcept {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) {
    lock.unlock();
    dropped_shutdown_->Add();
    return false;
  }
  if (pending_ >= options_.max_queue_spans) {
    lock.unlock();
    dropped_queue_full_->Add();
    return false;
  }
  if (filling_.capacity() == 0) filling_ = NewBatchLocked();
  filling_.push_back(std::move(span));
  ++pending_;
  if (filling_.size() < options_.max_batch) return true;
  ready_.push_back(std::move(filling_));
  filling_ = Batch();  // a moved-from vector is valid but unspecified: make it empty
  lock.unlock();
  work_cv_.notify_one();
  return true;
}

bool ExportPipeline::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (exited_) return pending_ == 0;
  const uint64_t ticket = ++flush_requested_;
  work_cv_.notify_one();
  return flush_cv_.wait_for(lock, timeout, [&] { return flush_done_ >= ticket || exited_; }) &&
         flush_done_ >= ticket;
}

void ExportPipeline::Shutdown() {
  std::lock_guard<std::mutex> join_lock(join_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

size_t ExportPipeline::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_;
}

void ExportPipeline::ExportBatch(const Batch& batch) {
  for (ExporterSlot& slot : exporters_) {
    const ExportResult r = slot.exporter->Export(batch);
    if (r == ExportResult::kSuccess) {
      slot.exported->Add(batch.size());
      if (slot.failing) {
        slot.failing = false;
        log::Info("exporter recovered", {{"exporter", slot.exporter->Name()}});
      }
    } else {
      slot.failures->Add();
      slot.failed_spans->Add(batch.size());
      if (!slot.failing) {
        slot.failing = true;
        log::Warn("export failed; counting further failures in kspan_export_failures_total",
                  {{"exporter", slot.exporter->Name()}, {"spans", batch.size()}});
      }
    }
  }
}

void ExportPipeline::Run() {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + options_.flush_interval;
  std::deque<Batch> work;
  while (true) {
    uint64_t flush_ticket;
    bool flushing;
    bool stop;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait_until(lock, deadline,
                          [&] { return !ready_.empty() || flush_requested_ > flush_done_ || stopping_; });
      flush_ticket = flush_requested_;  // only this thread moves flush_done_
      flushing = flush_ticket > flush_done_;
      stop = stopping_;
      const bool timed_out = Clock::now() >= deadline;
      work.swap(ready_);
      // The partial batch goes when its time is up, or someone asked for everything.
      if ((timed_out || flushing || stop) && !filling_.empty()) {
        work.push_back(std::move(filling_));
        filling_ = Batch();
      }
      if (timed_out || flushing) deadline = Clock::now() + options_.flush_interval;
    }

    while (!work.empty()) {
      Batch batch = std::move(work.front());
      work.pop_front();
      ExportBatch(batch);
      const size_t n = batch.size();
      batch.clear();  // destroy the spans outside the lock
      std::lock_guard<std::mutex> lock(mu_);
      pending_ -= n;
      if (free_.size() < kMaxFreeBatches && batch.capacity() >= options_.max_batch &&
          batch.capacity() <= 2 * options_.max_batch) {
        free_.push_back(std::move(batch));
      }
    }

    if (flushing || stop) {
      for (ExporterSlot& slot : exporters_) slot.exporter->ForceFlush();
    }
    if (flushing) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        flush_done_ = flush_ticket;
      }
      flush_cv_.notify_all();
    }

    if (stop) {
      // Submit refuses new spans once stopping_ is set, and everything taken above was
      // exported, so nothing is left behind.
      for (ExporterSlot& slot : exporters_) slot.exporter->Shutdown();
      {
        std::lock_guard<std::mutex> lock(mu_);
        exited_ = true;
        flush_done_ = flush_requested_;
      }
      flush_cv_.notify_all();
      return;
    }
  }
}

}  // namespace kspan::exporters
