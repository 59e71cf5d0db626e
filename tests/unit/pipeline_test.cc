// The whole user-space pipeline (tracker → span builder → stitcher → processors →
// exports) driven by the shared synthetic event generator: no kernel, a mock clock, and a
// capturing exporter at the end.
#include "agent/pipeline.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "testing/clock.h"
#include "testing/event_generator.h"

namespace kspan::agent {
namespace {

using testing::ConnEnd;
using testing::EventGenerator;
using testing::MockClock;

// Keeps every span the export pipeline hands on.
class CaptureExporter : public exporters::SpanExporter {
 public:
  CaptureExporter(std::mutex* mu, std::vector<model::Span>* out) : mu_(mu), out_(out) {}
  std::string_view Name() const noexcept override { return "capture"; }
  exporters::ExportResult Export(std::span<const model::Span> batch) noexcept override {
    std::lock_guard<std::mutex> lock(*mu_);
    out_->insert(out_->end(), batch.begin(), batch.end());
    return exporters::ExportResult::kSuccess;
  }
  bool ForceFlush() noexcept override { return true; }
  void Shutdown() noexcept override {}

 private:
  std::mutex* mu_;
  std::vector<model::Span>* out_;
};

const model::AttributeValue* Attr(const model::Span& s, std::string_view key) {
  for (const auto& a : s.attributes) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}
std::string StrAttr(const model::Span& s, std::string_view key) {
  const auto* v = Attr(s, key);
  return v && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : "";
}
int64_t IntAttr(const model::Span& s, std::string_view key) {
  const auto* v = Attr(s, key);
  return v && std::holds_alternative<int64_t>(*v) ? std::get<int64_t>(*v) : -1;
}

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() : gen_(&clock_) {
    // An empty /proc: resources come from exec events only, never from the host's pids.
    proc_root_ =
        std::filesystem::temp_directory_path() / ("kspan-pipeline-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(proc_root_);
    PipelineOptions o;
    o.processes.proc_root = proc_root_.string();
    o.processes.host_name = "test-host";
    std::vector<std::unique_ptr<exporters::SpanExporter>> outs;
    outs.push_back(std::make_unique<CaptureExporter>(&mu_, &spans_));
    exports_ = std::make_unique<exporters::ExportPipeline>(std::move(outs),
                                                           exporters::ExportPipeline::Options{}, &metrics_);
    pipeline_ = std::make_unique<Pipeline>(o, &metrics_, exports_.get());
  }
  ~PipelineTest() override { std::filesystem::remove_all(proc_root_); }

  // One ring-buffer poll's worth of events, then the drain the agent does after it.
  template <typename T>
  void Batch(const std::vector<T>& events) {
    testing::Feed(pipeline_.get(), events);
    pipeline_->AfterBatch(clock_.now_ns());
  }
  template <typename... E>
  void Batch1(const E&... events) {
    (testing::Feed(pipeline_.get(), events::Event(events)), ...);
    pipeline_->AfterBatch(clock_.now_ns());
  }
  // Shutdown: everything held comes out.
  std::vector<model::Span> Finish() {
    pipeline_->Finish();
    exports_->Shutdown();
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<model::Span> out = spans_;
    std::sort(out.begin(), out.end(), [](const model::Span& a, const model::Span& b) {
      return a.start_time_unix_nano < b.start_time_unix_nano;
    });
    return out;
  }
  uint64_t Counter(const std::string& name, const metrics::Labels& labels = {}) {
    return metrics_.GetCounter(name, labels)->Value();
  }

  MockClock clock_;
  EventGenerator gen_;
  std::filesystem::path proc_root_;
  metrics::Registry metrics_;
  std::mutex mu_;
  std::vector<model::Span> spans_;
  std::unique_ptr<exporters::ExportPipeline> exports_;
  std::unique_ptr<Pipeline> pipeline_;
};

// A same-host request: the client's CLIENT span and the server's SERVER span, one trace,
// the server the client's child, with the HTTP attributes and the syscalls' times.
TEST_F(PipelineTest, SameHostHttpExchangeIsOneTraceOfTwoSpans) {
  testing::TcpPair pair = gen_.LoopbackPair();
  Batch1(gen_.Open(pair.client), gen_.Open(pair.server));
  const uint64_t start = clock_.now_ns();
  Batch(gen_.HttpExchange(&pair, EventGenerator::HttpRequest("GET", "/items/7?x=1"),
                          EventGenerator::HttpResponse(200, "ok")));
  Batch1(gen_.Close(pair.client), gen_.Close(pair.server));
  const auto spans = Finish();
  ASSERT_EQ(spans.size(), 2u);
  const model::Span& client = spans[0];
  const model::Span& server = spans[1];
  EXPECT_EQ(client.kind, model::SpanKind::kClient);
  EXPECT_EQ(server.kind, model::SpanKind::kServer);
  EXPECT_EQ(client.name, "GET /items/{id}");
  EXPECT_EQ(StrAttr(server, "http.request.method"), "GET");
  EXPECT_EQ(StrAttr(server, "url.path"), "/items/7");
  EXPECT_EQ(IntAttr(server, "http.response.status_code"), 200);
  EXPECT_EQ(IntAttr(client, "server.port"), 8080);
  EXPECT_EQ(server.trace_id, client.trace_id);
  EXPECT_EQ(server.parent_span_id, client.span_id);
  EXPECT_FALSE(client.parent_span_id.IsValid());
  EXPECT_EQ(client.start_time_unix_nano, start) << "the client's send entry";
  EXPECT_GT(server.start_time_unix_nano, client.start_time_unix_nano);
  EXPECT_LT(server.end_time_unix_nano, client.end_time_unix_nano);
  EXPECT_EQ(Counter("kspan_records_total", {{"protocol", "http1"}}), 2u);
  EXPECT_EQ(Counter("kspan_spans_total"), 2u);
}

// Keep-alive: each exchange is its own trace, paired in order.
TEST_F(PipelineTest, KeepAliveExchangesPairInOrder) {
  testing::TcpPair pair = gen_.LoopbackPair();
  Batch1(gen_.Open(pair.client), gen_.Open(pair.server));
  std::vector<std::pair<std::string, std::string>> exchanges;
  for (int i = 0; i < 3; ++i) {
    exchanges.emplace_back(EventGenerator::HttpRequest("GET", "/k/" + std::to_string(i)),
                           EventGenerator::HttpResponse(200 + i));
  }
  Batch(gen_.KeepAlive(&pair, exchanges));
  const auto spans = Finish();
  ASSERT_EQ(spans.size(), 6u);
  for (int i = 0; i < 3; ++i) {
    const model::Span& c = spans[2 * i];
    const model::Span& s = spans[2 * i + 1];
    EXPECT_EQ(c.kind, model::SpanKind::kClient);
    EXPECT_EQ(StrAttr(s, "url.path"), "/k/" + std::to_string(i));
    EXPECT_EQ(IntAttr(c, "http.response.status_code"), 200 + i);
    EXPECT_EQ(s.parent_span_id, c.span_id);
  }
  EXPECT_NE(spans[0].trace_id, spans[2].trace_id);
}

// A connection no registered protocol recognises makes no span and is counted.
TEST_F(PipelineTest, UnrecognisedTcpIsCountedNotTraced) {
  testing::TcpPair pair = gen_.LoopbackPair();
  Batch1(gen_.Open(pair.client), gen_.Open(pair.server));
  Batch1(gen_.Send(&pair.client, std::string("\x01\x02binary hello\n", 15)));
  const auto spans = Finish();
  EXPECT_TRUE(spans.empty());
  EXPECT_EQ(Counter("kspan_connections_unrecognised_total"), 1u);
}

// MCP over stdio: the agent writes a tools/call to its tool server's stdin (a pipe) and
// reads the answer from its stdout (another pipe). Both sides become execute_tool spans
// (CLIENT in the agent, SERVER in the tool server, its child), paired by the pipes' inodes
// and the JSON-RPC id; a line the tool server printed on stderr meanwhile becomes an event
// of its span.
TEST_F(PipelineTest, StdioToolCallPairsBothSidesAndCarriesStderr) {
  const uint32_t agent = 5001, tool = 5002;
  testing::ChannelPair to_tool = gen_.Pipe(agent, 20, tool, 0, /*inode=*/777);
  testing::ChannelPair from_tool = gen_.Pipe(tool, 1, agent, 21, /*inode=*/778);
  ConnEnd tool_err = gen_.Stderr(tool);
  Batch1(gen_.Open(to_tool.a), gen_.Open(to_tool.b), gen_.Open(from_tool.a), gen_.Open(from_tool.b),
         gen_.Open(tool_err));
  const std::string call =
      R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"lookup","arguments":{}}})"
      "\n";
  const std::string answer = R"({"jsonrpc":"2.0","id":3,"result":{"content":[]}})"
                             "\n";
  Batch1(gen_.Send(&to_tool.a, call), gen_.Recv(&to_tool.b, call));
  Batch1(gen_.Send(&tool_err, "looking up\n"));
  Batch1(gen_.Send(&from_tool.a, answer), gen_.Recv(&from_tool.b, answer));
  const auto spans = Finish();
  ASSERT_EQ(spans.size(), 2u);
  const model::Span& client = spans[0];
  const model::Span& server = spans[1];
  EXPECT_EQ(client.name, "execute_tool lookup");
  EXPECT_EQ(client.kind, model::SpanKind::kClient);
  EXPECT_EQ(server.name, "execute_tool lookup");
  EXPECT_EQ(server.kind, model::SpanKind::kServer);
  EXPECT_EQ(StrAttr(client, "network.transport"), "pipe");
  EXPECT_EQ(server.trace_id, client.trace_id);
  EXPECT_EQ(server.parent_span_id, client.span_id);
  ASSERT_EQ(server.events.size(), 1u);
  EXPECT_EQ(server.events[0].name, "process.output");
  EXPECT_EQ(Counter("kspan_records_total", {{"protocol", "jsonrpc"}}), 2u);
}

// A process exec'd by the server's thread while it serves a request continues that trace:
// an INTERNAL `exec` span under the SERVER span, ended at exit with its exit code.
TEST_F(PipelineTest, ExecDuringARequestIsAChildSpanWithItsExitCode) {
  testing::TcpPair pair = gen_.LoopbackPair();
  Batch1(gen_.Open(pair.client), gen_.Open(pair.server));
  const std::string req = EventGenerator::HttpRequest("POST", "/run");
  Batch1(gen_.Send(&pair.client, req), gen_.Recv(&pair.server, req));
  const uint32_t child = 6001;
  Batch1(gen_.Exec(child, pair.server.key.pid, {"/usr/bin/convert", "in.png"}, pair.server.tid));
  Batch1(gen_.Exit(child, /*exit_code=*/2 << 8));
  const std::string resp = EventGenerator::HttpResponse(500);
  Batch1(gen_.Send(&pair.server, resp), gen_.Recv(&pair.client, resp));
  const auto spans = Finish();
  ASSERT_EQ(spans.size(), 3u);
  const model::Span& server = spans[1];
  const model::Span& exec = spans[2];
  EXPECT_EQ(server.kind, model::SpanKind::kServer);
  EXPECT_EQ(exec.name, "exec convert");
  EXPECT_EQ(exec.kind, model::SpanKind::kInternal);
  EXPECT_EQ(exec.parent_span_id, server.span_id);
  EXPECT_EQ(IntAttr(exec, "process.exit.code"), 2);
  EXPECT_EQ(StrAttr(exec, "error.type"), "exit_code");
}

// A processor in the chain sees every span on its way out and may drop it, counted.
TEST(ProcessorChain, RunsInOrderAndCountsDrops) {
  metrics::Registry m;
  std::vector<std::string> out;
  processors::ProcessorChain chain(&m, [&out](model::Span&& s) { out.push_back(s.name); });
  struct Tag : processors::SpanProcessor {
    std::vector<std::string>* seen;
    explicit Tag(std::vector<std::string>* s) : seen(s) {}
    void OnEnd(uint32_t pid, model::Span& span) noexcept override { span.name += "@" + std::to_string(pid); }
    bool OnExport(model::Span& span) noexcept override {
      seen->push_back(span.name);
      return true;
    }
  };
  struct DropOdd : processors::SpanProcessor {
    bool OnExport(model::Span& span) noexcept override { return span.name.back() != '1'; }
  };
  std::vector<std::string> seen;
  Tag tag(&seen);
  DropOdd drop;
  chain.Add("tag", &tag);
  chain.Add("drop_odd", &drop);
  for (uint32_t pid : {1u, 2u}) {
    model::Span s;
    s.name = "s";
    chain.OnEnd(pid, s);
    chain.Export(std::move(s));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"s@1", "s@2"}));
  EXPECT_EQ(out, (std::vector<std::string>{"s@2"}));
  EXPECT_EQ(m.GetCounter("kspan_processor_spans_dropped_total", {{"processor", "drop_odd"}})->Value(), 1u);
  EXPECT_EQ(m.GetCounter("kspan_processor_spans_dropped_total", {{"processor", "tag"}})->Value(), 0u);
  EXPECT_EQ(m.GetCounter("kspan_spans_total")->Value(), 1u);
}

}  // namespace
}  // namespace kspan::agent
