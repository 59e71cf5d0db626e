// The network exporters' queue, batching, retries and drop accounting (queued_exporter.h)
// with a scripted fake transport: no network, so every outcome is chosen by the test.
#include "exporters/queued_exporter.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "testing/subprocess.h"

namespace kspan::exporters {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Records each request's span names and answers from a script (default: sent). A test can
// hold every Send until it opens the gate.
class FakeTransport final : public Transport {
 public:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool gate_open = true;
    std::deque<SendResult> script;  // answers, in order; empty: sent
    std::function<SendResult()> fallback = [] { return SendResult{}; };
    std::vector<std::vector<std::string>> encoded;  // every Encode's span names
    std::vector<size_t> sends;                      // the span count of every Send
    std::vector<Clock::time_point> send_times;
    size_t bytes_per_span = 100;
  };

  explicit FakeTransport(std::shared_ptr<Shared> s) : s_(std::move(s)) {}

  size_t Encode(std::span<const model::Span> spans) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    std::vector<std::string> names;
    size_t bytes = 0;
    for (const auto& sp : spans) {
      names.push_back(sp.name);
      bytes += sp.name == "huge" ? 1'000'000 : s_->bytes_per_span;
    }
    s_->encoded.push_back(names);
    current_ = spans.size();
    return bytes;
  }

  SendResult Send(Clock::time_point deadline) noexcept override {
    std::unique_lock<std::mutex> lock(s_->mu);
    s_->cv.wait_until(lock, deadline, [&] { return s_->gate_open; });
    if (!s_->gate_open) return {SendResult::Outcome::kRetryable, 0, std::nullopt, "timed out"};
    s_->sends.push_back(current_);
    s_->send_times.push_back(Clock::now());
    if (!s_->script.empty()) {
      SendResult r = s_->script.front();
      s_->script.pop_front();
      return r;
    }
    return s_->fallback();
  }

  std::string Endpoint() const override { return "fake://"; }

 private:
  std::shared_ptr<Shared> s_;
  size_t current_ = 0;
};

SendResult Retryable(std::optional<milliseconds> after = std::nullopt) {
  return {SendResult::Outcome::kRetryable, 0, after, "HTTP 503"};
}
SendResult Permanent() {
  return {SendResult::Outcome::kPermanent, 0, std::nullopt, "HTTP 400"};
}

std::vector<model::Span> Spans(size_t n, const std::string& name = "s") {
  std::vector<model::Span> out(n);
  for (auto& s : out) s.name = name;
  return out;
}

class QueuedExporterTest : public ::testing::Test {
 protected:
  std::unique_ptr<QueuedExporter> Make(QueueSettings queue, RetryPolicy retry = Fast(),
                                       milliseconds drain = milliseconds(2000)) {
    QueuedExporter::Options o;
    o.name = "otlp";
    o.queue = queue;
    o.retry = retry;
    o.attempt_timeout = milliseconds(2000);
    o.drain_timeout = drain;
    return std::make_unique<QueuedExporter>(o, std::make_unique<FakeTransport>(shared_), &registry_);
  }

  static RetryPolicy Fast() {
    RetryPolicy p;
    p.initial_backoff = milliseconds(1);
    p.max_backoff = milliseconds(4);
    p.max_elapsed = milliseconds(5000);
    return p;
  }

  static QueueSettings Queue(size_t max_queue, size_t max_batch, milliseconds delay = milliseconds(10000)) {
    QueueSettings q;
    q.max_queue_spans = max_queue;
    q.max_batch_spans = max_batch;
    q.schedule_delay = delay;
    return q;
  }

  uint64_t Sent() {
    return registry_.GetCounter("kspan_exporter_spans_sent_total", {{"exporter", "otlp"}})->Value();
  }
  uint64_t Dropped(const std::string& reason) {
    return registry_
        .GetCounter("kspan_exporter_spans_dropped_total", {{"exporter", "otlp"}, {"reason", reason}})
        ->Value();
  }
  uint64_t AllDropped() { return registry_.Sum("kspan_exporter_spans_dropped_total"); }
  uint64_t Retries() { return registry_.Sum("kspan_exporter_retries_total"); }  // every reason
  uint64_t Requests() {
    return registry_.GetCounter("kspan_exporter_requests_total", {{"exporter", "otlp"}})->Value();
  }
  uint64_t Gauge() {
    return registry_.GetCounter("kspan_exporter_queue_spans", {{"exporter", "otlp"}})->Value();
  }

  void CloseGate() {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->gate_open = false;
  }
  void OpenGate() {
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->gate_open = true;
    }
    shared_->cv.notify_all();
  }
  std::vector<size_t> Sends() {
    std::lock_guard<std::mutex> lock(shared_->mu);
    return shared_->sends;
  }

  metrics::Registry registry_;
  std::shared_ptr<FakeTransport::Shared> shared_ = std::make_shared<FakeTransport::Shared>();
};

TEST_F(QueuedExporterTest, FullBatchesGoAtOnceAndPartialOnesOnFlush) {
  auto e = Make(Queue(100, 4));
  EXPECT_EQ(e->Name(), "otlp");
  EXPECT_EQ(e->Export(Spans(9)), ExportResult::kSuccess);
  // Two full batches leave without waiting for the 10 s schedule delay.
  kspan::testing::WaitFor([&] { return Sends().size() >= 2; }, std::chrono::seconds(5));
  EXPECT_EQ(Sends(), (std::vector<size_t>{4, 4}));
  EXPECT_TRUE(e->ForceFlush());
  EXPECT_EQ(Sends(), (std::vector<size_t>{4, 4, 1}));
  EXPECT_EQ(Sent(), 9u);
  EXPECT_EQ(AllDropped(), 0u);
  EXPECT_EQ(Gauge(), 0u);
  e->Shutdown();
}

TEST_F(QueuedExporterTest, ScheduleDelaySendsAPartialBatch) {
  auto e = Make(Queue(100, 512, milliseconds(50)));
  e->Export(Spans(3));
  const auto t0 = Clock::now();
  kspan::testing::WaitFor([&] { return Sent() >= 3; }, std::chrono::seconds(5));
  EXPECT_EQ(Sent(), 3u);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
}

TEST_F(QueuedExporterTest, QueueFullDropsAreCountedAndExportNeverBlocks) {
  CloseGate();  // the backend hangs: nothing leaves
  auto e = Make(Queue(10, 5, milliseconds(1)));
  const auto t0 = Clock::now();
  EXPECT_EQ(e->Export(Spans(6)), ExportResult::kSuccess);
  EXPECT_EQ(e->Export(Spans(6)), ExportResult::kFailure) << "only 4 of these fit";
  EXPECT_EQ(e->Export(Spans(3)), ExportResult::kFailure);
  EXPECT_LT(Clock::now() - t0, milliseconds(200)) << "Export copies; it never waits on the transport";
  EXPECT_EQ(Dropped("queue_full"), 5u);
  EXPECT_EQ(e->Pending(), 10u);
  EXPECT_EQ(Gauge(), 10u);
  OpenGate();
  EXPECT_TRUE(e->ForceFlush());
  e->Shutdown();
  EXPECT_EQ(Sent(), 10u) << "every span that fitted the queue arrives";
  EXPECT_EQ(Sent() + AllDropped(), 15u) << "every span is either sent or counted as dropped";
}

TEST_F(QueuedExporterTest, RetryableFailuresAreRetriedThenSent) {
  shared_->script = {Retryable(), Retryable(), SendResult{}};
  auto e = Make(Queue(100, 10));
  e->Export(Spans(7));
  EXPECT_TRUE(e->ForceFlush());
  EXPECT_EQ(Sent(), 7u);
  EXPECT_EQ(Retries(), 2u);
  EXPECT_EQ(Requests(), 3u);
  EXPECT_EQ(AllDropped(), 0u);
}

TEST_F(QueuedExporterTest, RetryAfterIsHonoured) {
  shared_->script = {Retryable(milliseconds(300)), SendResult{}};
  auto e = Make(Queue(100, 10));
  e->Export(Spans(1));
  EXPECT_TRUE(e->ForceFlush());
  std::lock_guard<std::mutex> lock(shared_->mu);
  ASSERT_EQ(shared_->send_times.size(), 2u);
  EXPECT_GE(shared_->send_times[1] - shared_->send_times[0], milliseconds(300));
}

TEST_F(QueuedExporterTest, NonRetryableIsDroppedWithoutRetry) {
  shared_->script = {Permanent()};
  auto e = Make(Queue(100, 10));
  e->Export(Spans(4));
  EXPECT_TRUE(e->ForceFlush());
  EXPECT_EQ(Requests(), 1u);
  EXPECT_EQ(Retries(), 0u);
  EXPECT_EQ(Dropped("non_retryable"), 4u);
  EXPECT_EQ(Sent(), 0u);
}

TEST_F(QueuedExporterTest, RetryBudgetRunsOut) {
  shared_->fallback = [] { return Retryable(); };
  RetryPolicy p = Fast();
  p.max_elapsed = milliseconds(60);
  auto e = Make(Queue(100, 10), p);
  e->Export(Spans(5));
  EXPECT_TRUE(e->ForceFlush());
  EXPECT_EQ(Dropped("retries_exhausted"), 5u);
  EXPECT_GT(Retries(), 3u);
  EXPECT_EQ(Sent(), 0u);
}

TEST_F(QueuedExporterTest, RetryAfterBeyondTheBudgetGivesUpAtOnce) {
  shared_->script = {Retryable(milliseconds(600000))};
  auto e = Make(Queue(100, 10));
  const auto t0 = Clock::now();
  e->Export(Spans(2));
  EXPECT_TRUE(e->ForceFlush());
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(Dropped("retries_exhausted"), 2u);
}

TEST_F(QueuedExporterTest, PartialSuccessCountsRejectedAndDoesNotResend) {
  shared_->script = {
      SendResult{SendResult::Outcome::kSent, 3, std::nullopt, "partial success: 3 spans rejected"}};
  auto e = Make(Queue(100, 10));
  e->Export(Spans(10));
  EXPECT_TRUE(e->ForceFlush());
  EXPECT_EQ(Sent(), 7u);
  EXPECT_EQ(Dropped("rejected"), 3u);
  EXPECT_EQ(Requests(), 1u);
}

TEST_F(QueuedExporterTest, OversizedRequestsAreSplitAndAHugeSpanDropped) {
  auto e = Make([] {
    QueueSettings q = Queue(100, 10);
    q.max_request_bytes = 250;  // 100 bytes a span: at most 2 a request
    return q;
  }());
  std::vector<model::Span> batch = Spans(5);
  batch[3].name = "huge";
  e->Export(batch);
  EXPECT_TRUE(e->ForceFlush());
  EXPECT_EQ(Dropped("too_large"), 1u);
  EXPECT_EQ(Sent(), 4u);
  for (size_t n : Sends()) EXPECT_LE(n, 2u);
}

TEST_F(QueuedExporterTest, ShutdownWithTheBackendDownDropsWhatIsLeftWithinItsBound) {
  shared_->fallback = [] { return Retryable(); };
  RetryPolicy p = Fast();
  p.initial_backoff = p.max_backoff = milliseconds(50);
  auto e = Make(Queue(100, 4), p, milliseconds(300));
  e->Export(Spans(10));
  const auto t0 = Clock::now();
  e->Shutdown();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(Sent(), 0u);
  EXPECT_EQ(Dropped("shutdown"), 10u);
  EXPECT_EQ(e->Export(Spans(2)), ExportResult::kFailure) << "after Shutdown";
  EXPECT_EQ(Dropped("shutdown"), 12u);
}

TEST_F(QueuedExporterTest, ShutdownDrainsAHealthyQueue) {
  auto e = Make(Queue(1000, 100));
  e->Export(Spans(250));
  e->Shutdown();
  EXPECT_EQ(Sent(), 250u);
  EXPECT_EQ(AllDropped(), 0u);
}

TEST_F(QueuedExporterTest, ForceFlushIsBoundedWhileTheBackendHangs) {
  CloseGate();
  auto e = Make(Queue(100, 10), Fast(), milliseconds(200));
  e->Export(Spans(3));
  const auto t0 = Clock::now();
  EXPECT_FALSE(e->ForceFlush());
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
  OpenGate();
  EXPECT_TRUE(e->ForceFlush());
  EXPECT_EQ(Sent(), 3u);
}

}  // namespace
}  // namespace kspan::exporters
