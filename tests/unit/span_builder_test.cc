// The correlator's front driven by the shared event generator: events → ConnTracker →
// SpanBuilder → Stitcher → ProcessorChain, no kernel. What the span builder decides:
// family builders, agent sessions and their ends, local calls that are not MCP or A2A.
#include "correlator/span_builder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "conntrack/conn_tracker.h"
#include "processors/process_output.h"
#include "testing/clock.h"
#include "testing/event_generator.h"

namespace kspan::correlator {
namespace {

using testing::EventGenerator;
using testing::MockClock;

std::string StrAttr(const model::Span& s, std::string_view key) {
  for (const auto& a : s.attributes) {
    if (a.key == key && std::holds_alternative<std::string>(a.value)) return std::get<std::string>(a.value);
  }
  return "";
}
int64_t IntAttr(const model::Span& s, std::string_view key) {
  for (const auto& a : s.attributes) {
    if (a.key == key && std::holds_alternative<int64_t>(a.value)) return std::get<int64_t>(a.value);
  }
  return -1;
}

class SpanBuilderTest : public ::testing::Test {
 protected:
  SpanBuilderTest()
      : gen_(&clock_),
        proc_root_(std::filesystem::temp_directory_path() /
                   ("kspan-span-builder-" + std::to_string(::getpid()))),
        processes_(Options(proc_root_)),
        chain_(&metrics_, [this](model::Span&& s) { spans_.push_back(std::move(s)); }),
        stitcher_({}, &metrics_, [this](model::Span&& s) { chain_.Export(std::move(s)); }),
        builder_({.agents = {.rules = {{"cli-agent", "cli-agent.js"}}}}, &metrics_, &processes_, &stitcher_,
                 &chain_),
        output_({}, &metrics_),
        tracker_({}, &metrics_,
                 {.on_request = [this](const conntrack::ConnInfo& c,
                                       protocols::RequestStart&& r) { builder_.OnRequest(c, std::move(r)); },
                  .on_record = [this](const conntrack::ConnInfo& c,
                                      protocols::Record&& r) { builder_.OnRecord(c, std::move(r)); },
                  .on_output = [this](uint32_t pid, bool err, std::string_view b,
                                      uint64_t ns) { output_.Add(pid, err, b, ns); }}) {
    chain_.Add("process_output", &output_);
    builder_.SetAgentMarker([this](uint32_t pid) { marked_.push_back(pid); });
  }
  ~SpanBuilderTest() override { std::filesystem::remove_all(proc_root_); }

  static process::ProcessTableOptions Options(const std::filesystem::path& root) {
    std::filesystem::create_directories(root);
    process::ProcessTableOptions o;
    o.proc_root = root.string();  // empty: resources come from exec events only
    o.host_name = "test-host";
    return o;
  }

  // Events as the pipeline routes them, then the drain after a ring-buffer poll.
  void Feed(const events::Event& e) {
    if (auto* o = std::get_if<events::ConnOpenEvent>(&e)) tracker_.OnOpen(*o);
    if (auto* d = std::get_if<events::DataEvent>(&e)) tracker_.OnData(*d);
    if (auto* c = std::get_if<events::ConnCloseEvent>(&e)) tracker_.OnClose(*c);
    if (auto* x = std::get_if<events::ProcessExecEvent>(&e)) {
      processes_.OnExec(*x);
      builder_.OnExec(*x);
    }
    if (auto* x = std::get_if<events::ProcessExitEvent>(&e)) {
      tracker_.OnProcessExit(x->pid);
      builder_.OnExit(*x);
      processes_.OnExit(*x);
    }
  }
  template <typename... E>
  void Batch(const E&... events) {
    (Feed(events::Event(events)), ...);
    tracker_.DrainPending();
    stitcher_.Advance(clock_.now_ns());
  }
  // Time passes beyond the stitcher's reorder delay: parents of what was seen are decided.
  void Settle() {
    clock_.Advance(100'000'000);
    stitcher_.Advance(clock_.now_ns());
  }
  std::vector<model::Span> Finish() {
    tracker_.CloseAll();
    builder_.Finish(clock_.now_ns());
    stitcher_.FlushAll();
    std::sort(spans_.begin(), spans_.end(), [](const model::Span& a, const model::Span& b) {
      return a.start_time_unix_nano < b.start_time_unix_nano;
    });
    return spans_;
  }

  MockClock clock_;
  EventGenerator gen_;
  std::filesystem::path proc_root_;
  metrics::Registry metrics_;
  process::ProcessTable processes_;
  std::vector<model::Span> spans_;
  processors::ProcessorChain chain_;
  Stitcher stitcher_;
  SpanBuilder builder_;
  processors::ProcessOutput output_;
  conntrack::ConnTracker tracker_;
  std::vector<uint32_t> marked_;
};

// An agent named by a rule at exec: marked for the kernel once, its HTTP call is the child
// of its session span, and the session ends at exit with the exit code (ERROR when not 0)
// and carries the stderr line no other span took.
TEST_F(SpanBuilderTest, AgentSessionFromExecToExitParentsItsCalls) {
  const uint32_t agent = 7001;
  Batch(gen_.Exec(agent, 1, {"/usr/bin/node", "cli-agent.js", "task"}));
  EXPECT_EQ(marked_, std::vector<uint32_t>{agent});
  testing::TcpPair pair = gen_.LoopbackPair({.client_pid = agent, .server_pid = 7002});
  testing::ConnEnd err = gen_.Stderr(agent);
  Batch(gen_.Open(pair.client), gen_.Open(pair.server), gen_.Open(err));
  for (const auto& e : gen_.HttpExchange(&pair, EventGenerator::HttpRequest("GET", "/weather"),
                                         EventGenerator::HttpResponse(200))) {
    Feed(e);
  }
  clock_.Advance(1'000'000);  // after the call's last syscall has returned
  Batch(gen_.Send(&err, "tool weather failed: backend unavailable\n"));
  Settle();
  Batch(gen_.Exit(agent, /*exit_code=*/1 << 8));
  const auto spans = Finish();
  ASSERT_EQ(spans.size(), 3u);
  const model::Span& session = spans[0];
  const model::Span& client = spans[1];
  const model::Span& server = spans[2];
  EXPECT_EQ(session.name, "invoke_agent cli-agent");
  EXPECT_EQ(session.kind, model::SpanKind::kInternal);
  EXPECT_EQ(StrAttr(session, "gen_ai.operation.name"), "invoke_agent");
  EXPECT_EQ(IntAttr(session, "process.exit.code"), 1);
  EXPECT_EQ(session.status_code, model::StatusCode::kError);
  EXPECT_EQ(session.status_message, "exit code 1");
  ASSERT_EQ(session.events.size(), 1u);
  EXPECT_EQ(session.events[0].name, "process.output");
  EXPECT_EQ(client.kind, model::SpanKind::kClient);
  EXPECT_EQ(client.parent_span_id, session.span_id);
  EXPECT_EQ(client.trace_id, session.trace_id);
  EXPECT_EQ(server.parent_span_id, client.span_id);
}

// An agent still running at shutdown: its session is cut, not failed.
TEST_F(SpanBuilderTest, SessionsStillOpenAtShutdownAreCut) {
  const uint32_t agent = 7101;
  Batch(gen_.Exec(agent, 1, {"/usr/bin/node", "cli-agent.js"}));
  testing::TcpPair pair = gen_.LoopbackPair({.client_pid = agent, .server_pid = 7102});
  Batch(gen_.Open(pair.client), gen_.Open(pair.server));
  for (const auto& e :
       gen_.HttpExchange(&pair, EventGenerator::HttpRequest("GET", "/"), EventGenerator::HttpResponse(204))) {
    Feed(e);
  }
  tracker_.DrainPending();
  Settle();
  const auto spans = Finish();
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[0].name, "invoke_agent cli-agent");
  EXPECT_NE(spans[0].status_code, model::StatusCode::kError);
  bool cut = false;
  for (const auto& a : spans[0].attributes) cut |= a.key == "kspan.span.cut";
  EXPECT_TRUE(cut);
}

// JSON-RPC on a local channel that is neither MCP nor A2A is a record but not a span.
TEST_F(SpanBuilderTest, LocalJsonRpcThatIsNotMcpOrA2aMakesNoSpan) {
  testing::ChannelPair ch = gen_.UnixPair(7201, 5, 901, 7202, 6, 902);
  Batch(gen_.Open(ch.a), gen_.Open(ch.b));
  const std::string req = R"({"jsonrpc":"2.0","id":1,"method":"lsp/hover"})"
                          "\n";
  const std::string resp = R"({"jsonrpc":"2.0","id":1,"result":{}})"
                           "\n";
  Batch(gen_.Send(&ch.a, req), gen_.Recv(&ch.b, req));
  Batch(gen_.Send(&ch.b, resp), gen_.Recv(&ch.a, resp));
  const auto spans = Finish();
  EXPECT_TRUE(spans.empty());
  EXPECT_EQ(metrics_.GetCounter("kspan_records_total", {{"protocol", "jsonrpc"}})->Value(), 2u);
}

}  // namespace
}  // namespace kspan::correlator
