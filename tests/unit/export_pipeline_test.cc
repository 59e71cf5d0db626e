// The export pipeline (queue, batching, drops, flush, shutdown) with fake exporters, and
// the transports it drives: the file exporter and the exporter factory.
#include "exporters/export_pipeline.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exporters/factory.h"
#include "exporters/file_exporter.h"
#include "testing/log_capture.h"

namespace kspan::exporters {
namespace {

using namespace std::chrono_literals;

// Records what it is given; can fail, or block until released.
class FakeExporter final : public SpanExporter {
 public:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::vector<std::string>> batches;  // span names per Export call
    std::set<std::thread::id> threads;
    int force_flushes = 0;
    int shutdowns = 0;
    bool fail = false;
    bool blocked = false;
    int export_calls_after_shutdown = 0;

    size_t Exported() {
      std::lock_guard<std::mutex> lock(mu);
      size_t n = 0;
      for (const auto& b : batches) n += b.size();
      return n;
    }
    void Release() {
      std::lock_guard<std::mutex> lock(mu);
      blocked = false;
      cv.notify_all();
    }
  };

  FakeExporter(std::string name, std::shared_ptr<State> state)
      : name_(std::move(name)), state_(std::move(state)) {}

  std::string_view Name() const noexcept override { return name_; }
  ExportResult Export(std::span<const model::Span> batch) noexcept override {
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->cv.wait(lock, [&] { return !state_->blocked; });
    if (state_->shutdowns > 0) ++state_->export_calls_after_shutdown;
    state_->threads.insert(std::this_thread::get_id());
    std::vector<std::string> names;
    for (const auto& s : batch) names.push_back(s.name);
    state_->batches.push_back(std::move(names));
    return state_->fail ? ExportResult::kFailure : ExportResult::kSuccess;
  }
  bool ForceFlush() noexcept override {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->threads.insert(std::this_thread::get_id());
    ++state_->force_flushes;
    return true;
  }
  void Shutdown() noexcept override {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->threads.insert(std::this_thread::get_id());
    ++state_->shutdowns;
  }

 private:
  std::string name_;
  std::shared_ptr<State> state_;
};

model::Span Named(std::string name) {
  model::Span s;
  s.name = std::move(name);
  return s;
}

std::vector<std::unique_ptr<SpanExporter>> One(const std::shared_ptr<FakeExporter::State>& state,
                                               std::string name = "fake") {
  std::vector<std::unique_ptr<SpanExporter>> v;
  v.push_back(std::make_unique<FakeExporter>(std::move(name), state));
  return v;
}

// Polls `pred` until it holds or `timeout` passes (a deadline, not a count of tries).
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

uint64_t CounterValue(metrics::Registry& r, const std::string& name, const metrics::Labels& labels) {
  return r.GetCounter(name, labels)->Value();
}

TEST(ExportPipelineTest, FlushExportsEverythingInOrderFromOneThread) {
  auto state = std::make_shared<FakeExporter::State>();
  metrics::Registry registry;
  ExportPipeline p(One(state), {.max_queue_spans = 1000, .max_batch = 7, .flush_interval = 10s}, &registry);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(p.Submit(Named("s" + std::to_string(i))));
  ASSERT_TRUE(p.Flush(5s));

  std::lock_guard<std::mutex> lock(state->mu);
  std::vector<std::string> all;
  for (const auto& b : state->batches) {
    EXPECT_LE(b.size(), 7u);
    EXPECT_FALSE(b.empty());
    all.insert(all.end(), b.begin(), b.end());
  }
  ASSERT_EQ(all.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(all[i], "s" + std::to_string(i));
  EXPECT_EQ(state->force_flushes, 1);
  ASSERT_EQ(state->threads.size(), 1u);
  EXPECT_NE(*state->threads.begin(), std::this_thread::get_id());
  EXPECT_EQ(CounterValue(registry, "kspan_spans_exported_total", {{"exporter", "fake"}}), 50u);
  EXPECT_EQ(p.Pending(), 0u);
}

TEST(ExportPipelineTest, FullBatchesGoWithoutWaitingForTheTimer) {
  auto state = std::make_shared<FakeExporter::State>();
  ExportPipeline p(One(state), {.max_queue_spans = 1000, .max_batch = 10, .flush_interval = 60s}, nullptr);
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(p.Submit(Named("s")));
  ASSERT_TRUE(WaitFor([&] { return state->Exported() == 20; }));
  // An observation window, not a wait for an event: nothing may leave in it (the partial
  // batch of 5 waits for its 60 s interval), and an absence cannot be waited for.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(state->Exported(), 20u);
  EXPECT_EQ(p.Pending(), 5u);
  ASSERT_TRUE(p.Flush(5s));
  EXPECT_EQ(state->Exported(), 25u);
  std::lock_guard<std::mutex> lock(state->mu);
  ASSERT_EQ(state->batches.size(), 3u);
  EXPECT_EQ(state->batches[0].size(), 10u);
  EXPECT_EQ(state->batches[1].size(), 10u);
  EXPECT_EQ(state->batches[2].size(), 5u);
}

TEST(ExportPipelineTest, PartialBatchGoesAfterTheInterval) {
  auto state = std::make_shared<FakeExporter::State>();
  ExportPipeline p(One(state), {.max_queue_spans = 1000, .max_batch = 100, .flush_interval = 20ms}, nullptr);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.Submit(Named("s")));
  ASSERT_TRUE(WaitFor([&] { return state->Exported() == 3; }));
  // At most one interval of waiting, plus scheduling slack on a busy 2-core VM.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  std::lock_guard<std::mutex> lock(state->mu);
  EXPECT_EQ(state->force_flushes, 0);  // a timed batch is not a Flush
}

TEST(ExportPipelineTest, FullQueueDropsAndCountsWithoutBlocking) {
  auto state = std::make_shared<FakeExporter::State>();
  state->blocked = true;  // a stalled exporter
  metrics::Registry registry;
  ExportPipeline p(One(state), {.max_queue_spans = 8, .max_batch = 4, .flush_interval = 1ms}, &registry);

  const auto start = std::chrono::steady_clock::now();
  int accepted = 0;
  for (int i = 0; i < 1000; ++i) accepted += p.Submit(Named("s")) ? 1 : 0;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);  // never waited on the exporter

  // Spans being exported still count against the bound.
  EXPECT_EQ(accepted, 8);
  EXPECT_EQ(p.Pending(), 8u);
  EXPECT_EQ(CounterValue(registry, "kspan_spans_dropped_total", {{"reason", "queue_full"}}), 992u);
  EXPECT_FALSE(p.Flush(30ms));  // cannot finish while the exporter is stuck

  state->Release();
  ASSERT_TRUE(p.Flush(5s));
  EXPECT_EQ(state->Exported(), 8u);
  EXPECT_EQ(p.Pending(), 0u);
  EXPECT_TRUE(p.Submit(Named("after")));  // room again
}

TEST(ExportPipelineTest, FailuresCountedPerExporter) {
  auto good = std::make_shared<FakeExporter::State>();
  auto bad = std::make_shared<FakeExporter::State>();
  bad->fail = true;
  std::vector<std::unique_ptr<SpanExporter>> exporters;
  exporters.push_back(std::make_unique<FakeExporter>("good", good));
  exporters.push_back(std::make_unique<FakeExporter>("bad", bad));
  metrics::Registry registry;
  ExportPipeline p(std::move(exporters), {.max_queue_spans = 100, .max_batch = 5, .flush_interval = 10s},
                   &registry);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(p.Submit(Named("s")));
  ASSERT_TRUE(p.Flush(5s));

  EXPECT_EQ(good->Exported(), 12u);
  EXPECT_EQ(bad->Exported(), 12u);  // it was called with every batch
  EXPECT_EQ(CounterValue(registry, "kspan_spans_exported_total", {{"exporter", "good"}}), 12u);
  EXPECT_EQ(CounterValue(registry, "kspan_spans_exported_total", {{"exporter", "bad"}}), 0u);
  EXPECT_EQ(CounterValue(registry, "kspan_export_failures_total", {{"exporter", "bad"}}), 3u);  // 5+5+2
  EXPECT_EQ(CounterValue(registry, "kspan_export_failures_total", {{"exporter", "good"}}), 0u);
  EXPECT_EQ(CounterValue(registry, "kspan_spans_export_failed_total", {{"exporter", "bad"}}), 12u);
}

TEST(ExportPipelineTest, ShutdownExportsQueuedSpansThenStops) {
  auto state = std::make_shared<FakeExporter::State>();
  metrics::Registry registry;
  ExportPipeline p(One(state), {.max_queue_spans = 100, .max_batch = 50, .flush_interval = 60s}, &registry);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(p.Submit(Named("s")));
  p.Shutdown();
  EXPECT_EQ(state->Exported(), 7u);
  {
    std::lock_guard<std::mutex> lock(state->mu);
    EXPECT_EQ(state->shutdowns, 1);
    EXPECT_EQ(state->export_calls_after_shutdown, 0);
    EXPECT_EQ(state->threads.size(), 1u);  // Shutdown came from the export thread too
  }
  EXPECT_FALSE(p.Submit(Named("late")));
  EXPECT_EQ(CounterValue(registry, "kspan_spans_dropped_total", {{"reason", "shutdown"}}), 1u);
  EXPECT_TRUE(p.Flush(10ms));  // nothing pending
  p.Shutdown();                // idempotent
  std::lock_guard<std::mutex> lock(state->mu);
  EXPECT_EQ(state->shutdowns, 1);
}

TEST(ExportPipelineTest, DestructorShutsDown) {
  auto state = std::make_shared<FakeExporter::State>();
  {
    ExportPipeline p(One(state), {.max_queue_spans = 100, .max_batch = 50, .flush_interval = 60s}, nullptr);
    ASSERT_TRUE(p.Submit(Named("s")));
  }
  EXPECT_EQ(state->Exported(), 1u);
  std::lock_guard<std::mutex> lock(state->mu);
  EXPECT_EQ(state->shutdowns, 1);
}

TEST(ExportPipelineTest, ConcurrentSubmitters) {
  auto state = std::make_shared<FakeExporter::State>();
  metrics::Registry registry;
  ExportPipeline p(One(state), {.max_queue_spans = 1 << 20, .max_batch = 64, .flush_interval = 5ms},
                   &registry);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  std::atomic<int> rejected{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!p.Submit(Named(std::to_string(t) + ":" + std::to_string(i)))) ++rejected;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(p.Flush(10s));
  EXPECT_EQ(rejected.load(), 0);

  std::lock_guard<std::mutex> lock(state->mu);
  std::set<std::string> seen;
  std::vector<int> next(kThreads, 0);
  for (const auto& b : state->batches) {
    EXPECT_LE(b.size(), 64u);
    for (const auto& name : b) {
      EXPECT_TRUE(seen.insert(name).second) << "exported twice: " << name;
      // Per submitter, order is kept.
      const int t = std::stoi(name.substr(0, name.find(':')));
      EXPECT_EQ(std::stoi(name.substr(name.find(':') + 1)), next[t]++);
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(state->threads.size(), 1u);
  EXPECT_EQ(registry.Sum("kspan_spans_exported_total"), static_cast<uint64_t>(kThreads * kPerThread));
}

TEST(ExportPipelineTest, NoExportersStillDrains) {
  ExportPipeline p({}, {.max_queue_spans = 10, .max_batch = 5, .flush_interval = 10s}, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.Submit(Named("s")));
  ASSERT_TRUE(p.Flush(5s));
  EXPECT_EQ(p.Pending(), 0u);
}

// ---- file exporter -----------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kspan_export_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

model::Span OtlpSpan(std::string name, std::shared_ptr<const model::Resource> resource) {
  model::Span s = Named(std::move(name));
  s.trace_id = model::TraceId::Random();
  s.span_id = model::SpanId::Random();
  s.kind = model::SpanKind::kServer;
  s.start_time_unix_nano = 1;
  s.end_time_unix_nano = 2;
  s.resource = std::move(resource);
  return s;
}

TEST(FileExporterTest, OneTracesDataLinePerBatchAppended) {
  TempDir dir;
  const std::string path = dir.path() + "/spans.jsonl";
  {
    std::ofstream pre(path);
    pre << "existing line\n";
  }
  auto file = FileExporter::Create(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  SpanExporter& e = **file;
  EXPECT_EQ(e.Name(), "file");

  auto res = std::make_shared<model::Resource>();
  res->attributes.push_back({"service.name", std::string("svc")});
  const std::vector<model::Span> first = {OtlpSpan("a", res), OtlpSpan("b", res)};
  const std::vector<model::Span> second = {OtlpSpan("c", nullptr)};
  ASSERT_EQ(e.Export(first), ExportResult::kSuccess);
  ASSERT_EQ(e.Export({}), ExportResult::kSuccess);  // nothing written for an empty batch
  ASSERT_EQ(e.Export(second), ExportResult::kSuccess);
  EXPECT_TRUE(e.ForceFlush());

  // Visible to a reader as soon as Export returned: no user-space buffering.
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "existing line");  // appended, never truncated
  const auto one = nlohmann::json::parse(lines[1]);
  const auto& spans = one["resourceSpans"][0]["scopeSpans"][0]["spans"];
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0]["name"], "a");
  EXPECT_EQ(spans[1]["name"], "b");
  EXPECT_EQ(one["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"], "svc");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"], "c");

  e.Shutdown();
  EXPECT_EQ(e.Export(first), ExportResult::kFailure);
  EXPECT_FALSE(e.ForceFlush());
}

TEST(FileExporterTest, RotatesToOneBackupAtTheSizeCap) {
  TempDir dir;
  const std::string path = dir.path() + "/r.jsonl";
  auto file = FileExporter::Create(path, /*max_bytes=*/2000);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  FileExporter& e = **file;
  const std::vector<model::Span> batch = {OtlpSpan("rotate-me", nullptr)};
  size_t total_lines = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(e.Export(batch), ExportResult::kSuccess);
    ++total_lines;
  }
  EXPECT_GE(e.rotations(), 2u);
  struct stat cur {
  }, bak{};
  ASSERT_EQ(stat(path.c_str(), &cur), 0);
  ASSERT_EQ(stat((path + ".1").c_str(), &bak), 0);
  EXPECT_LE(cur.st_size, 2000);
  EXPECT_LE(bak.st_size, 2000);
  // Whole lines only, in both files: rotation happens between batches.
  for (const auto& f : {path, path + ".1"}) {
    for (const auto& line : ReadLines(f)) EXPECT_NO_THROW(nlohmann::json::parse(line)) << f;
  }
  EXPECT_LT(ReadLines(path).size() + ReadLines(path + ".1").size(), total_lines)
      << "older lines were dropped";
}

// Spans in an OTLP/JSON-lines file.
size_t SpansInFile(const std::string& path) {
  size_t n = 0;
  for (const auto& line : ReadLines(path)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;
    for (const auto& rs : j["resourceSpans"])
      for (const auto& ss : rs["scopeSpans"]) n += ss["spans"].size();
  }
  return n;
}

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Rotation deletes the older PATH.1: the spans, bytes and files lost that way are counted
// and each deletion is logged, so that written = in PATH + in PATH.1 + deleted.
TEST(FileExporterTest, RotationCountsAndLogsWhatItDeletes) {
  kspan::testing::LogCapture logs;
  TempDir dir;
  const std::string path = dir.path() + "/r.jsonl";
  {
    std::ofstream pre(path);  // a file left by an earlier run: bytes known, spans not
    pre << "{}\n";
  }
  metrics::Registry registry;
  auto file = FileExporter::Create(path, /*max_bytes=*/3000, &registry);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  FileExporter& e = **file;
  const std::vector<model::Span> batch = {OtlpSpan("x", nullptr), OtlpSpan("y", nullptr)};
  uint64_t written_spans = 0, written_bytes = 3;
  for (int i = 0; i < 30; ++i) {
    const uint64_t size_before = FileSize(path);
    const uint64_t rotations_before = e.rotations();
    ASSERT_EQ(e.Export(batch), ExportResult::kSuccess);
    written_spans += batch.size();
    // After a rotation, the new PATH holds just this batch.
    written_bytes += e.rotations() == rotations_before ? FileSize(path) - size_before : FileSize(path);
  }
  e.Shutdown();
  auto counter = [&](const char* name) { return registry.GetCounter(name, {{"path", path}})->Value(); };
  const uint64_t rotations = counter("kspan_file_rotations_total");
  ASSERT_GE(rotations, 4u);
  EXPECT_EQ(e.rotations(), rotations);
  EXPECT_EQ(counter("kspan_file_files_deleted_total"), rotations - 1);  // the first had no PATH.1
  EXPECT_EQ(counter("kspan_file_spans_deleted_total") + SpansInFile(path) + SpansInFile(path + ".1"),
            written_spans);
  EXPECT_EQ(counter("kspan_file_bytes_deleted_total") + FileSize(path) + FileSize(path + ".1"),
            written_bytes);

  const auto lines = logs.Lines("file output rotated");
  ASSERT_EQ(lines.size(), rotations - 1);
  uint64_t logged_spans = 0, logged_bytes = 0;
  for (const auto& l : lines) {
    EXPECT_EQ(l["level"], "warn");
    EXPECT_EQ(l["path"], path + ".1");
    logged_spans += l["spans"].get<uint64_t>();
    logged_bytes += l["bytes"].get<uint64_t>();
  }
  EXPECT_EQ(logged_spans, counter("kspan_file_spans_deleted_total"));
  EXPECT_EQ(logged_bytes, counter("kspan_file_bytes_deleted_total"));
  // The first file deleted held the earlier run's line: said so, its spans not counted.
  EXPECT_EQ(lines[0]["earlier_run"], true);
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_EQ(lines[i]["earlier_run"], false);
}

TEST(FileExporterTest, NeverRotatesWhatIsNotARegularFile) {
  // file:/dev/null or a FIFO: renaming it would leave a regular file in its place.
  TempDir dir;
  const std::string path = dir.path() + "/fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  const int reader = open(path.c_str(), O_RDONLY | O_NONBLOCK);  // so the writer's open returns
  ASSERT_GE(reader, 0);
  auto file = FileExporter::Create(path, /*max_bytes=*/2000);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  FileExporter& e = **file;
  const std::vector<model::Span> batch = {OtlpSpan("fifo", nullptr)};
  for (int i = 0; i < 20; ++i) ASSERT_EQ(e.Export(batch), ExportResult::kSuccess);  // < a pipe's 64 KiB
  EXPECT_EQ(e.rotations(), 0u);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_NE(stat((path + ".1").c_str(), &st), 0);
  close(reader);
}

TEST(FileExporterTest, CreatesTheFileWithReadableMode) {
  TempDir dir;
  const std::string path = dir.path() + "/new.jsonl";
  auto file = FileExporter::Create(path);
  ASSERT_TRUE(file.ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 0);
}

TEST(FileExporterTest, OpenErrorsNameThePath) {
  auto missing = FileExporter::Create("/nonexistent-kspan-dir/spans.jsonl");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent-kspan-dir/spans.jsonl"), std::string::npos)
      << missing.status().message();

  TempDir dir;
  auto is_dir = FileExporter::Create(dir.path());
  ASSERT_FALSE(is_dir.ok());
  EXPECT_NE(is_dir.status().message().find(dir.path()), std::string::npos);

  auto empty = FileExporter::Create("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

TEST(FileExporterTest, ThroughThePipeline) {
  TempDir dir;
  const std::string path = dir.path() + "/p.jsonl";
  auto file = MakeExporter("file:" + path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::vector<std::unique_ptr<SpanExporter>> exporters;
  exporters.push_back(std::move(file).value());
  metrics::Registry registry;
  {
    ExportPipeline p(std::move(exporters), {.max_queue_spans = 100, .max_batch = 4, .flush_interval = 10s},
                     &registry);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.Submit(OtlpSpan("s" + std::to_string(i), nullptr)));
  }  // shutdown writes everything
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u);  // batches of 4, 4, 2
  size_t total = 0;
  for (const auto& line : lines) {
    total += nlohmann::json::parse(line)["resourceSpans"][0]["scopeSpans"][0]["spans"].size();
  }
  EXPECT_EQ(total, 10u);
  EXPECT_EQ(CounterValue(registry, "kspan_spans_exported_total", {{"exporter", "file"}}), 10u);
}

// ---- factory -------------------------------------------------------------------------

TEST(ExporterFactoryTest, Console) {
  auto e = MakeExporter("console");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->Name(), "console");
}

TEST(ExporterFactoryTest, File) {
  TempDir dir;
  auto e = MakeExporter("file:" + dir.path() + "/x.jsonl");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)->Name(), "file");
}

TEST(ExporterFactoryTest, ErrorsNameTheValueAndWhatIsAccepted) {
  for (const char* spec : {"otlp", "zipkin", "", "Console", "file"}) {
    auto e = MakeExporter(spec);
    ASSERT_FALSE(e.ok()) << spec;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument) << spec;
    EXPECT_NE(e.status().message().find("\"" + std::string(spec) + "\""), std::string::npos)
        << e.status().message();
    EXPECT_NE(e.status().message().find("console, file:PATH"), std::string::npos) << e.status().message();
  }
  auto no_path = MakeExporter("file:");
  ASSERT_FALSE(no_path.ok());
  EXPECT_EQ(no_path.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_path.status().message().find("path"), std::string::npos);

  auto bad_path = MakeExporter("file:/nonexistent-kspan-dir/x");
  ASSERT_FALSE(bad_path.ok());
  EXPECT_NE(bad_path.status().message().find("/nonexistent-kspan-dir/x"), std::string::npos);
}

}  // namespace
}  // namespace kspan::exporters
