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
      tracker_.OnProcessExit(x->pid, x->ts_ns);
      builder_.OnExit(*x);
      processes_.OnExit(*x);
    }
  }
  template <typename... E>
  void Batch(const E&... events) {
    (Feed(events::Event(events)), ...);
    tracker_.DrainPending();
    builder_.AfterBatch();
    stitcher_.Advance(clock_.now_ns());
  }
  // `from` writes `bytes`, then `to` reads them: two events in that order, one batch.
  void Transfer(testing::ConnEnd* from, testing::ConnEnd* to, std::string_view bytes) {
    const events::DataEvent sent = gen_.Send(from, bytes);
    const events::DataEvent received = gen_.Recv(to, bytes);
    Batch(sent, received);
  }
  // Time passes beyond the stitcher's reorder delay: parents of what was seen are decided.
  void Settle() {
    clock_.Advance(100'000'000);
    stitcher_.Advance(clock_.now_ns());
  }
  // An agent (a node CLI, exec'd) with an open HTTP connection to its LLM and an open Unix
  // socket to its tool server.
  struct AgentWires {
    testing::TcpPair llm;
    testing::ChannelPair tool;
  };
  AgentWires StartAgent(uint32_t agent, uint32_t llm, uint32_t tool) {
    Batch(gen_.Exec(agent, 1, {"/usr/bin/node", "cli-agent.js"}));
    AgentWires w{gen_.LoopbackPair({.client_pid = agent, .server_pid = llm}),
                 gen_.UnixPair(agent, 5, 901, tool, 6, 902)};
    Batch(gen_.Open(w.llm.client), gen_.Open(w.llm.server), gen_.Open(w.tool.a), gen_.Open(w.tool.b));
    return w;
  }
  static inline const std::vector<std::pair<std::string, std::string>> kJson = {
      {"Content-Type", "application/json"}};
  // A chat completion answer asking for `calls` (OpenAI tool_calls entries, comma-separated).
  static std::string AnswerAsking(std::string_view calls) {
    return EventGenerator::HttpResponse(
        200,
        R"({"id":"c1","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[)" +
            std::string(calls) +
            R"(]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":3}})",
        kJson);
  }
  static std::string ToolCall(std::string_view id, std::string_view name) {
    return R"({"id":")" + std::string(id) + R"(","type":"function","function":{"name":")" +
           std::string(name) + R"(","arguments":"{}"}})";
  }
  // The next chat call, sending call_1's (lookup) result back, and its final answer.
  static std::string ResultSent(std::string_view before) {
    return EventGenerator::HttpRequest(
        "POST", "/v1/chat/completions", kJson,
        R"({"model":"gpt-4o","messages":[)" + std::string(before) + R"({"role":"assistant","tool_calls":[)" +
            ToolCall("call_1", "lookup") + R"(]},{"role":"tool","tool_call_id":"call_1","content":"x"}]})");
  }
  static std::string FinalAnswer() {
    return EventGenerator::HttpResponse(
        200,
        R"({"id":"c2","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},)"
        R"("finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1}})",
        kJson);
  }
  // The tool server's side of one MCP tools/call of `lookup`, one line each way.
  static constexpr std::string_view kCallLookup =
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"lookup\"}}\n";
  static constexpr std::string_view kLookupResult =
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n";

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

// A request waited for until its connection or its process ended, with every byte seen:
// its span lasts until then (a client that gave up after 500 ms shows 500 ms), not only
// while its request was sent. An answer cut by the connection's end (its head sent, then
// the peer gone) lasts until the last bytes seen.
TEST_F(SpanBuilderTest, AnUnansweredRequestLastsUntilItsConnectionOrProcessEnded) {
  testing::TcpPair a = gen_.LoopbackPair({.client_pid = 100, .server_pid = 200});
  testing::TcpPair b =
      gen_.LoopbackPair({.client_pid = 101, .client_port = 40102, .server_pid = 200, .server_fd = 11});
  testing::TcpPair c =
      gen_.LoopbackPair({.client_pid = 102, .client_port = 40103, .server_pid = 200, .server_fd = 12});
  Batch(gen_.Open(a.client), gen_.Open(a.server), gen_.Open(b.client), gen_.Open(b.server),
        gen_.Open(c.client), gen_.Open(c.server));
  Transfer(&a.client, &a.server, EventGenerator::HttpRequest("GET", "/given-up", {}, ""));
  Transfer(&b.client, &b.server, EventGenerator::HttpRequest("GET", "/exited", {}, ""));
  Transfer(&c.client, &c.server, EventGenerator::HttpRequest("GET", "/cut", {}, ""));
  clock_.Advance(50'000'000);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n";  // its body never comes
  const events::DataEvent head_sent = gen_.Send(&c.server, head);
  const events::DataEvent head_read = gen_.Recv(&c.client, head);
  Batch(head_sent, head_read);
  clock_.Advance(300'000'000);
  const events::ProcessExitEvent exited = gen_.Exit(101);
  Batch(exited);
  clock_.Advance(200'000'000);
  const events::ConnCloseEvent client_closed = gen_.Close(a.client);
  Batch(client_closed, gen_.Close(c.client));
  clock_.Advance(1'000'000'000);
  const events::ConnCloseEvent server_closed = gen_.Close(a.server);
  Batch(server_closed, gen_.Close(c.server));
  const std::vector<model::Span> spans = Finish();
  auto find = [&](model::SpanKind kind, const std::string& path) -> const model::Span* {
    for (const model::Span& s : spans) {
      if (s.kind == kind && (StrAttr(s, "url.path") == path || StrAttr(s, "url.full").ends_with(path)))
        return &s;
    }
    ADD_FAILURE() << "no span for " << path;
    return nullptr;
  };
  const model::Span* client = find(model::SpanKind::kClient, "/given-up");
  const model::Span* server = find(model::SpanKind::kServer, "/given-up");
  const model::Span* exiting = find(model::SpanKind::kClient, "/exited");
  ASSERT_TRUE(client && server && exiting);
  EXPECT_EQ(client->end_time_unix_nano, client_closed.ts_ns);
  EXPECT_EQ(StrAttr(*client, "error.type"), "response_missing");
  EXPECT_EQ(server->end_time_unix_nano, server_closed.ts_ns);
  EXPECT_EQ(exiting->end_time_unix_nano, exited.ts_ns);
  EXPECT_EQ(StrAttr(*exiting, "kspan.incomplete"), "process_exit");
  for (const model::SpanKind kind : {model::SpanKind::kClient, model::SpanKind::kServer}) {
    const model::Span* cut = find(kind, "/cut");
    ASSERT_TRUE(cut);
    EXPECT_EQ(StrAttr(*cut, "kspan.incomplete"), "response_not_captured");
    EXPECT_EQ(cut->end_time_unix_nano,
              kind == model::SpanKind::kClient ? head_read.exit_ns : head_sent.exit_ns);
  }
}

// The same over a local channel: an agent that exits while its MCP tool call waits for the
// tool server's answer; the call's span lasts until the exit.
TEST_F(SpanBuilderTest, AToolCallLeftWaitingLastsUntilItsAgentExited) {
  AgentWires w = StartAgent(300, 301, 302);
  Transfer(&w.tool.a, &w.tool.b, kCallLookup);
  clock_.Advance(300'000'000);
  const events::ProcessExitEvent exited = gen_.Exit(300);
  Batch(exited);
  const std::vector<model::Span> spans = Finish();
  const model::Span* call = nullptr;
  for (const model::Span& s : spans) {
    if (s.kind == model::SpanKind::kClient && s.name == "execute_tool lookup") call = &s;
  }
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(StrAttr(*call, "kspan.incomplete"), "process_exit");
  EXPECT_EQ(call->end_time_unix_nano, exited.ts_ns);
}

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
  Transfer(&ch.a, &ch.b, req);
  Transfer(&ch.b, &ch.a, resp);
  const auto spans = Finish();
  EXPECT_TRUE(spans.empty());
  EXPECT_EQ(metrics_.GetCounter("kspan_records_total", {{"protocol", "jsonrpc"}})->Value(), 2u);
}

// Issue 24's race: the LLM answer that asks for a tool call reaches kspan after the agent's
// stdio run of it. The run's span is held until the answer is in, then carries the call's
// id and a link to the LLM span that asked; the next LLM call, which sends the result back,
// links to the run. A call asked for and never run is an event of the session.
TEST_F(SpanBuilderTest, AToolRunBuiltBeforeItsLlmAnswerWaitsAndIsLinked) {
  const uint32_t agent = 7301;
  auto [pair, ch] = StartAgent(agent, 7302, 7303);
  const std::string ask =
      EventGenerator::HttpRequest("POST", "/v1/chat/completions", kJson,
                                  R"({"model":"gpt-4o","messages":[{"role":"user","content":"go"}]})");
  const std::string asked =
      AnswerAsking(ToolCall("call_1", "lookup") + "," + ToolCall("call_2", "never_run"));
  Batch(gen_.Send(&pair.client, ask), gen_.Recv(&pair.server, ask));
  const events::DataEvent answer_sent = gen_.Send(&pair.server, asked);
  const events::DataEvent answer_read = gen_.Recv(&pair.client, asked);
  clock_.Advance(1'000'000);
  // The run, seen before the answer.
  Transfer(&ch.a, &ch.b, kCallLookup);
  Transfer(&ch.b, &ch.a, kLookupResult);
  Settle();
  EXPECT_EQ(metrics_.Sum("kspan_agent_tool_runs_held_total"), 0u) << "still held";
  Batch(answer_sent, answer_read);
  EXPECT_EQ(metrics_.GetCounter("kspan_agent_tool_runs_held_total", {{"outcome", "answered"}})->Value(), 1u);
  Settle();
  // The next LLM call sends the result back.
  for (const auto& e :
       gen_.HttpExchange(&pair, ResultSent(R"({"role":"user","content":"go"},)"), FinalAnswer()))
    Feed(e);
  tracker_.DrainPending();
  Settle();
  Batch(gen_.Exit(agent));
  const auto spans = Finish();
  const model::Span *session = nullptr, *run = nullptr;
  std::vector<const model::Span*> chats;
  for (const auto& s : spans) {
    if (s.kind == model::SpanKind::kInternal && s.name == "invoke_agent cli-agent") session = &s;
    if (s.kind == model::SpanKind::kClient && s.name == "execute_tool lookup") run = &s;
    if (s.kind == model::SpanKind::kClient && s.name == "chat gpt-4o") chats.push_back(&s);
  }
  ASSERT_NE(session, nullptr);
  ASSERT_NE(run, nullptr);
  ASSERT_EQ(chats.size(), 2u);
  EXPECT_EQ(StrAttr(*run, "gen_ai.tool.call.id"), "call_1");
  ASSERT_EQ(run->links.size(), 1u);
  EXPECT_EQ(run->links[0].span_id, chats[0]->span_id) << "the LLM call that asked";
  EXPECT_EQ(run->links[0].trace_id, chats[0]->trace_id);
  ASSERT_EQ(chats[1]->links.size(), 1u);
  EXPECT_EQ(chats[1]->links[0].span_id, run->span_id) << "the LLM call that received the result";
  EXPECT_EQ(chats[1]->links[0].trace_id, run->trace_id);
  EXPECT_TRUE(chats[0]->links.empty());
  EXPECT_EQ(metrics_.GetCounter("kspan_stitch_links_total", {{"outcome", "resolved"}})->Value(), 2u);
  EXPECT_EQ(metrics_.GetCounter("kspan_stitch_links_total", {{"outcome", "lost"}})->Value(), 0u);
  int not_run = 0;
  for (const auto& e : session->events) {
    if (e.name != "kspan.agent.tool_call.not_run") continue;
    ++not_run;
    EXPECT_EQ(std::get<std::string>(e.attributes.at(0).value), "call_2");
    EXPECT_EQ(std::get<std::string>(e.attributes.at(1).value), "never_run");
  }
  EXPECT_EQ(not_run, 1);
  EXPECT_EQ(metrics_.GetCounter("kspan_agent_tool_calls_total", {{"outcome", "unlinked"}})->Value(), 1u);
}

// The last round of an agent, all in one batch of events: its LLM call and the answer that
// asks for a tool call, the stdio run of it, then the agent closes the tool server's pipe
// (and exits). The close gives out the run's record before the batch's drain: the answer's
// bytes, which came first, are parsed first, so the run has its call's id.
TEST_F(SpanBuilderTest, ARunFlushedByItsPipesCloseStillFindsTheAnswerOfItsBatch) {
  const uint32_t agent = 7501;
  auto [pair, ch] = StartAgent(agent, 7502, 7503);
  const std::string ask = EventGenerator::HttpRequest("POST", "/v1/chat/completions", kJson,
                                                      R"({"model":"gpt-4o","messages":[]})");
  const std::string asked = AnswerAsking(ToolCall("call_last", "lookup"));
  const std::string_view call = kCallLookup, answer = kLookupResult;
  const events::DataEvent e1 = gen_.Send(&pair.client, ask), e2 = gen_.Recv(&pair.server, ask);
  const events::DataEvent e3 = gen_.Send(&pair.server, asked), e4 = gen_.Recv(&pair.client, asked);
  const events::DataEvent e5 = gen_.Send(&ch.a, call), e6 = gen_.Recv(&ch.b, call);
  const events::DataEvent e7 = gen_.Send(&ch.b, answer), e8 = gen_.Recv(&ch.a, answer);
  Batch(e1, e2, e3, e4, e5, e6, e7, e8, gen_.Close(ch.a), gen_.Close(ch.b));
  Settle();
  Batch(gen_.Exit(agent));
  const auto spans = Finish();
  const model::Span* run = nullptr;
  for (const auto& s : spans) {
    if (s.kind == model::SpanKind::kClient && s.name == "execute_tool lookup") run = &s;
  }
  ASSERT_NE(run, nullptr);
  EXPECT_EQ(StrAttr(*run, "gen_ai.tool.call.id"), "call_last");
  EXPECT_EQ(run->links.size(), 1u);
  EXPECT_EQ(metrics_.GetCounter("kspan_agent_tool_calls_total", {{"outcome", "unlinked"}})->Value(), 0u);
}

// The other order: the next LLM call, which sends a run's result back, reaches kspan before
// the run itself (their records travel apart). The run, once built, adds the tool_result
// link to that LLM span, still in the stitcher's window.
TEST_F(SpanBuilderTest, ARunBuiltAfterTheCallThatSentItsResultIsLinkedFromIt) {
  const uint32_t agent = 7601;
  auto [pair, ch] = StartAgent(agent, 7602, 7603);
  const std::string ask = EventGenerator::HttpRequest("POST", "/v1/chat/completions", kJson,
                                                      R"({"model":"gpt-4o","messages":[]})");
  const std::string asked = AnswerAsking(ToolCall("call_1", "lookup"));
  for (const auto& e : gen_.HttpExchange(&pair, ask, asked)) Feed(e);
  tracker_.DrainPending();
  Settle();
  // The run, after the answer; its events held back.
  const events::DataEvent r1 = gen_.Send(&ch.a, kCallLookup), r2 = gen_.Recv(&ch.b, kCallLookup);
  const events::DataEvent r3 = gen_.Send(&ch.b, kLookupResult), r4 = gen_.Recv(&ch.a, kLookupResult);
  // The next LLM call sends call_1's result back; it is seen first.
  for (const auto& e : gen_.HttpExchange(&pair, ResultSent(""), FinalAnswer())) Feed(e);
  tracker_.DrainPending();
  Batch(r1, r2, r3, r4);
  Settle();
  Batch(gen_.Exit(agent));
  const auto spans = Finish();
  const model::Span* run = nullptr;
  std::vector<const model::Span*> chats;
  for (const auto& s : spans) {
    if (s.kind == model::SpanKind::kClient && s.name == "execute_tool lookup") run = &s;
    if (s.kind == model::SpanKind::kClient && s.name == "chat gpt-4o") chats.push_back(&s);
  }
  ASSERT_NE(run, nullptr);
  ASSERT_EQ(chats.size(), 2u);
  EXPECT_EQ(StrAttr(*run, "gen_ai.tool.call.id"), "call_1");
  ASSERT_EQ(run->links.size(), 1u);
  EXPECT_EQ(run->links[0].span_id, chats[0]->span_id);
  ASSERT_EQ(chats[1]->links.size(), 1u) << "linked late, from the run";
  EXPECT_EQ(chats[1]->links[0].span_id, run->span_id);
  EXPECT_EQ(chats[1]->links[0].trace_id, run->trace_id);
  EXPECT_EQ(metrics_.GetCounter("kspan_stitch_links_total", {{"outcome", "resolved"}})->Value(), 2u);
  EXPECT_EQ(metrics_.GetCounter("kspan_stitch_links_total", {{"outcome", "lost"}})->Value(), 0u);
}

// A run whose answer never comes gives up at the hold's bound (Tick), counted.
TEST_F(SpanBuilderTest, AHeldToolRunGivesUpAfterTheHold) {
  auto [pair, ch] = StartAgent(7401, 7402, 7403);
  const std::string ask =
      EventGenerator::HttpRequest("POST", "/v1/chat/completions", kJson, R"({"model":"m"})");
  Batch(gen_.Send(&pair.client, ask));
  Transfer(&ch.a, &ch.b, kCallLookup);
  Transfer(&ch.b, &ch.a, kLookupResult);
  builder_.Tick(clock_.now_ns());
  EXPECT_EQ(metrics_.Sum("kspan_agent_tool_runs_held_total"), 0u);
  clock_.Advance(SpanBuilder::kHoldNs);
  builder_.Tick(clock_.now_ns());
  EXPECT_EQ(metrics_.Sum("kspan_agent_tool_runs_held_total"), 0u)
      << "the time is up, but kspan has not read the events after the run yet (it lags)";
  for (uint64_t i = 0; i < SpanBuilder::kHoldBatches; ++i) Batch();
  builder_.Tick(clock_.now_ns());
  EXPECT_EQ(metrics_.GetCounter("kspan_agent_tool_runs_held_total", {{"outcome", "timeout"}})->Value(), 1u);
  Settle();
  const auto spans = Finish();
  bool found = false;
  for (const auto& s : spans) found |= s.name == "execute_tool lookup" && s.kind == model::SpanKind::kClient;
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace kspan::correlator
