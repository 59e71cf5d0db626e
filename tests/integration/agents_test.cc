// Agents end to end: tests/apps/agents (an orchestrator and a sub-agent on the real openai
// SDK, an MCP tool server on the real @modelcontextprotocol/sdk over streamable HTTP, A2A
// between the agents, the LLM mock over HTTPS), none of it instrumented, all started after
// kspan. Each task must come out as one trace:
//
//   invoke_agent orchestrator (SERVER)
//     ├─ chat gpt-4o (CLIENT, 17/9)
//     ├─ chat gpt-4o (CLIENT, streamed, 21/5)
//     ├─ execute_tool lookup (CLIENT, MCP over stdio to the orchestrator's child)
//     ├─ execute_tool weather (CLIENT) ─ execute_tool weather (SERVER, the MCP server)
//     └─ invoke_agent sub-agent (CLIENT) ─ invoke_agent sub-agent (SERVER)
//                                             └─ chat gpt-4o-mini (CLIENT, 17/9)
//
// At exit the agent call graph has exactly the edges these tasks make, with their counts.
// A task whose stdio tool fails (a JSON-RPC error) has that tool span ERROR, and the
// orchestrator's own error line on its task span.
//
// A CLI agent (cli_agent.js: no server, one job, then exit) is one trace too, its process
// lifetime the root:
//
//   invoke_agent cli-agent (INTERNAL, exec to exit, process.exit.code)
//     ├─ exec node (INTERNAL, the MCP stdio server it spawned)
//     ├─ initialize, tools/list (CLIENT, MCP over stdio) ─ the same (SERVER, the tool server)
//     ├─ chat gpt-4o (CLIENT, 17/9) ─ POST /v1/chat/completions (SERVER, the LLM mock)
//     ├─ execute_tool lookup (CLIENT) ─ execute_tool lookup (SERVER, the tool server)
//     └─ execute_tool summarize (CLIENT) ─ execute_tool summarize (SERVER, the tool server)
//                                            └─ chat gpt-4o-mini (CLIENT, the tool server's own)
//                                               └─ POST /v1/chat/completions (SERVER)
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kInternal = 1, kServer = 2, kClient = 3;

std::string Apps() {
  return std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";
}

std::vector<const FlatSpan*> Named(const std::vector<FlatSpan>& all, const std::string& name, int kind) {
  std::vector<const FlatSpan*> out;
  for (const auto& s : all) {
    if (s.name == name && s.kind == kind) out.push_back(&s);
  }
  std::sort(out.begin(), out.end(),
            [](const FlatSpan* a, const FlatSpan* b) { return a->start_ns < b->start_ns; });
  return out;
}

std::vector<const FlatSpan*> ChildrenOf(const std::vector<FlatSpan>& all, const FlatSpan& parent) {
  std::vector<const FlatSpan*> out;
  for (const auto& s : all) {
    if (s.trace_id == parent.trace_id && s.parent_span_id == parent.span_id) out.push_back(&s);
  }
  std::sort(out.begin(), out.end(),
            [](const FlatSpan* a, const FlatSpan* b) { return a->start_ns < b->start_ns; });
  return out;
}

// The trace of `root` as an indented tree, for failure messages.
std::string Tree(const std::vector<FlatSpan>& all, const FlatSpan& root, int depth = 0) {
  std::ostringstream out;
  out << std::string(2 * depth, ' ')
      << (root.kind == kServer   ? "S "
          : root.kind == kClient ? "C "
                                 : "- ")
      << root.name << "\n";
  for (const FlatSpan* c : ChildrenOf(all, root)) out << Tree(all, *c, depth + 1);
  return out.str();
}

// The graph of the {"msg":"agent call graph"} log line: "from -kind-> to" -> calls, and the
// same key + " errors" -> errors.
std::map<std::string, uint64_t> GraphEdges(const std::string& logs) {
  std::map<std::string, uint64_t> out;
  std::istringstream lines(logs);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("\"msg\":\"agent call graph\"") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("graph")) continue;
    const auto g = nlohmann::json::parse(j["graph"].get<std::string>(), nullptr, false);
    for (const auto& e : g.value("edges", nlohmann::json::array())) {
      const std::string key = e.value("from", "") + " -" + e.value("kind", "") + "-> " + e.value("to", "");
      out[key] = e.value("calls", uint64_t{0});
      out[key + " errors"] = e.value("errors", uint64_t{0});
    }
  }
  return out;
}

class AgentsIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("kspan-agents-");
    const std::string error = MakeTestCertificate(dir_);
    ASSERT_TRUE(error.empty()) << error;
  }

  void StartServer(Subprocess* p, const std::vector<std::string>& argv, int port) {
    ASSERT_TRUE(p->Start(argv, {{"NODE_EXTRA_CA_CERTS", dir_ + "/cert.pem"}}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(20))) << argv[1] << ":\n" << p->Stderr();
  }

  // kspan, then the app.
  void StartAll() {
    ASSERT_TRUE(agent_.Start({"--output", "console", "--agent", "orchestrator=orchestrator.js", "--agent",
                              "sub-agent=sub_agent.js"}))
        << agent_.Logs();
    llm_port_ = FreePort();
    mcp_port_ = FreePort();
    sub_port_ = FreePort();
    orch_port_ = FreePort();
    const std::string a = Apps() + "agents/", cert = dir_ + "/cert.pem";
    ASSERT_NO_FATAL_FAILURE(StartServer(
        &llm_, {"node", Apps() + "llm_mock.js", std::to_string(llm_port_), cert, dir_ + "/key.pem"},
        llm_port_));
    ASSERT_NO_FATAL_FAILURE(
        StartServer(&mcp_, {"node", a + "mcp_http_server.js", std::to_string(mcp_port_)}, mcp_port_));
    ASSERT_NO_FATAL_FAILURE(StartServer(
        &sub_, {"node", a + "sub_agent.js", std::to_string(sub_port_), std::to_string(llm_port_), cert},
        sub_port_));
    ASSERT_NO_FATAL_FAILURE(
        StartServer(&orch_,
                    {"node", a + "orchestrator.js", std::to_string(orch_port_), std::to_string(llm_port_),
                     cert, std::to_string(sub_port_), std::to_string(mcp_port_)},
                    orch_port_));
  }

  void RunTasks(int n, const std::string& mode = "") {
    std::vector<std::string> argv = {"node", Apps() + "agents/run_tasks.js", std::to_string(orch_port_),
                                     std::to_string(n)};
    if (!mode.empty()) argv.push_back(mode);
    auto r = RunCommand(argv, std::chrono::seconds(120));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\norchestrator:\n" << orch_.Stderr();
  }

  static std::string dir_;
  KspanAgent agent_;
  Subprocess llm_, mcp_, sub_, orch_;
  int llm_port_ = 0, mcp_port_ = 0, sub_port_ = 0, orch_port_ = 0;
};

std::string AgentsIntegration::dir_;

TEST_F(AgentsIntegration, EachTaskIsOneTraceOfAgentSpans) {
  constexpr int kTasks = 2;
  ASSERT_NO_FATAL_FAILURE(StartAll());
  ASSERT_NO_FATAL_FAILURE(RunTasks(kTasks));

  std::vector<FlatSpan> all;
  WaitFor(
      [&] {
        all = ReadSpans(agent_.SpansPath());
        return Named(all, "invoke_agent orchestrator", kServer).size() >= kTasks &&
               Named(all, "chat gpt-4o-mini", kClient).size() >= kTasks;
      },
      std::chrono::seconds(30));
  const auto tasks = Named(all, "invoke_agent orchestrator", kServer);
  ASSERT_EQ(tasks.size(), static_cast<size_t>(kTasks)) << agent_.Logs();

  for (const FlatSpan* task : tasks) {
    SCOPED_TRACE(Tree(all, *task));
    EXPECT_EQ(task->Str("gen_ai.operation.name"), "invoke_agent");
    EXPECT_EQ(task->Str("gen_ai.agent.name"), "orchestrator");
    EXPECT_EQ(task->Str("url.path"), "/task");

    std::vector<std::string> names;
    const FlatSpan* a2a = nullptr;
    const FlatSpan* tool = nullptr;
    const FlatSpan* stdio_tool = nullptr;
    std::vector<const FlatSpan*> chats;
    for (const FlatSpan* c : ChildrenOf(all, *task)) {
      names.push_back(c->name);
      if (c->name == "invoke_agent sub-agent") a2a = c;
      if (c->name == "execute_tool weather") tool = c;
      if (c->name == "execute_tool lookup") stdio_tool = c;
      if (c->name == "chat gpt-4o") chats.push_back(c);
    }
    ASSERT_EQ(chats.size(), 2u);
    EXPECT_EQ(chats[0]->Int("gen_ai.usage.input_tokens"), 17);
    EXPECT_EQ(chats[0]->Int("gen_ai.usage.output_tokens"), 9);
    EXPECT_EQ(chats[1]->Int("gen_ai.usage.input_tokens"), 21);
    EXPECT_EQ(chats[1]->Int("gen_ai.usage.output_tokens"), 5);
    EXPECT_TRUE(chats[1]->Has("gen_ai.response.time_to_first_chunk"));

    ASSERT_NE(stdio_tool, nullptr);
    EXPECT_EQ(stdio_tool->Str("network.transport"), "unix");
    EXPECT_EQ(stdio_tool->Str("mcp.method.name"), "tools/call");
    EXPECT_EQ(stdio_tool->status_code, 0);
    EXPECT_LT(stdio_tool->start_ns, stdio_tool->end_ns);
    const auto stdio_server = ChildrenOf(all, *stdio_tool);
    ASSERT_EQ(stdio_server.size(), 1u) << "the stdio tool server's side";
    EXPECT_EQ(stdio_server[0]->kind, kServer);
    EXPECT_EQ(stdio_server[0]->name, "execute_tool lookup");

    ASSERT_NE(tool, nullptr);
    EXPECT_EQ(tool->Str("gen_ai.tool.name"), "weather");
    EXPECT_EQ(tool->Str("mcp.method.name"), "tools/call");
    EXPECT_FALSE(tool->Str("mcp.session.id").empty());
    EXPECT_EQ(tool->status_code, 0);
    const auto tool_server = ChildrenOf(all, *tool);
    ASSERT_EQ(tool_server.size(), 1u);
    EXPECT_EQ(tool_server[0]->kind, kServer);
    EXPECT_EQ(tool_server[0]->name, "execute_tool weather");

    ASSERT_NE(a2a, nullptr);
    EXPECT_EQ(a2a->Str("gen_ai.agent.name"), "sub-agent") << "named from its agent card";
    EXPECT_EQ(a2a->Str("rpc.method"), "message/send");
    const auto callee = ChildrenOf(all, *a2a);
    ASSERT_EQ(callee.size(), 1u);
    EXPECT_EQ(callee[0]->kind, kServer);
    EXPECT_EQ(callee[0]->name, "invoke_agent sub-agent");
    const auto sub_chats = ChildrenOf(all, *callee[0]);
    ASSERT_EQ(sub_chats.size(), 1u);
    EXPECT_EQ(sub_chats[0]->name, "chat gpt-4o-mini");
    EXPECT_EQ(sub_chats[0]->Int("gen_ai.usage.input_tokens"), 17);
    EXPECT_EQ(sub_chats[0]->Int("gen_ai.usage.output_tokens"), 9);
  }

  ExpectCleanStop(agent_);
  // The graph: exactly these model, tool and agent edges (service edges are the start-up
  // calls: MCP initialize and tools/list, the agent card).
  std::map<std::string, uint64_t> graph = GraphEdges(agent_.Logs());
  std::map<std::string, uint64_t> calls;
  for (const auto& [key, n] : graph) {
    if (key.find(" -service-> ") == std::string::npos && !key.ends_with(" errors")) calls[key] = n;
  }
  const std::map<std::string, uint64_t> expected = {
      {"orchestrator -model-> gpt-4o", 2 * kTasks}, {"orchestrator -tool-> weather", kTasks},
      {"orchestrator -tool-> lookup", kTasks},      {"orchestrator -agent-> sub-agent", kTasks},
      {"sub-agent -model-> gpt-4o-mini", kTasks},
  };
  EXPECT_EQ(calls, expected) << agent_.Logs();
  EXPECT_EQ(graph["orchestrator -tool-> weather errors"], 0u);
  const std::string everything =
      ReadFileOrEmpty(agent_.SpansPath()) + agent_.process().Stdout() + agent_.Logs();
  for (const char* secret : {"PROMPT-SECRET-kspan-7f3a", "TOOLARG-SECRET-9c1e", "SECRET-0123456789"}) {
    EXPECT_EQ(everything.find(secret), std::string::npos) << secret << " left kspan";
  }
}

uint64_t UnixNowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// kspan and the LLM mock, then cli_agent.js [mode] to its end: its wait status, and the
// Unix times just before its start and just after its end.
struct CliRun {
  int status = -1;
  pid_t pid = -1;
  uint64_t before_ns = 0, after_ns = 0;
  std::string err;
};

class CliAgentIntegration : public AgentsIntegration {
 protected:
  // `rule`: name the agent by an agent rule (marked at exec), else it is found by its
  // first LLM call.
  CliRun Run(const std::string& mode, bool rule = true, const std::vector<std::string>& extra = {}) {
    CliRun run;
    std::vector<std::string> args = {"--output", "console"};
    if (rule) args.insert(args.end(), {"--agent", "cli-agent=cli_agent.js"});
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_TRUE(agent_.Start(args)) << agent_.Logs();
    llm_port_ = FreePort();
    const std::string cert = dir_ + "/cert.pem";
    StartServer(&llm_, {"node", Apps() + "llm_mock.js", std::to_string(llm_port_), cert, dir_ + "/key.pem"},
                llm_port_);
    std::vector<std::string> argv = {"node", Apps() + "agents/cli_agent.js", std::to_string(llm_port_), cert};
    if (!mode.empty()) argv.push_back(mode);
    Subprocess cli;
    run.before_ns = UnixNowNs();
    EXPECT_TRUE(cli.Start(argv, {{"NODE_EXTRA_CA_CERTS", cert}}));
    run.pid = cli.pid();
    run.status = cli.Wait(std::chrono::seconds(60));
    run.after_ns = UnixNowNs();
    run.err = cli.Stderr();
    return run;
  }

  // The CLI agent's session span and every span of its trace, once its children are out.
  const FlatSpan* Session(const CliRun& run, const std::string& tool, std::vector<FlatSpan>* all) {
    const FlatSpan* session = nullptr;
    WaitFor(
        [&] {
          *all = ReadSpans(agent_.SpansPath());
          session = nullptr;
          bool tool_seen = false;
          for (const auto& s : *all) {
            if (s.name == "invoke_agent cli-agent" && s.kind == kInternal) session = &s;
            if (s.name == "execute_tool " + tool) tool_seen = true;
          }
          return session && tool_seen;
        },
        std::chrono::seconds(30));
    return session;
  }
};

TEST_F(CliAgentIntegration, ACliAgentsRunIsOneInvokeAgentTrace) {
  const CliRun run = Run("");
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.status << " " << run.err;
  std::vector<FlatSpan> all;
  const FlatSpan* session = Session(run, "lookup", &all);
  ASSERT_NE(session, nullptr) << agent_.Logs();
  SCOPED_TRACE(Tree(all, *session));
  EXPECT_EQ(Named(all, "invoke_agent cli-agent", kInternal).size(), 1u);
  EXPECT_TRUE(session->parent_span_id.empty()) << "the root of its trace";
  EXPECT_EQ(session->Str("gen_ai.operation.name"), "invoke_agent");
  EXPECT_EQ(session->Str("gen_ai.agent.name"), "cli-agent");
  EXPECT_EQ(session->resource.at("process.pid").value("intValue", ""), std::to_string(run.pid));
  EXPECT_EQ(session->Int("process.exit.code"), 0);
  EXPECT_EQ(session->status_code, 0);
  EXPECT_FALSE(session->Has("kspan.span.cut"));
  // The process's lifetime: from its exec to its exit.
  EXPECT_GE(session->start_ns, run.before_ns);
  EXPECT_LE(session->end_ns, run.after_ns);

  const FlatSpan *chat = nullptr, *tool = nullptr, *exec = nullptr, *summarize = nullptr;
  std::map<std::string, const FlatSpan*> stdio_calls;
  for (const FlatSpan* c : ChildrenOf(all, *session)) {
    if (c->name == "chat gpt-4o" && c->kind == kClient) chat = c;
    if (c->name == "execute_tool lookup" && c->kind == kClient) tool = c;
    if (c->name == "execute_tool summarize" && c->kind == kClient) summarize = c;
    if (c->name == "exec node" && c->kind == kInternal) exec = c;
    if (c->kind == kClient && c->Has("mcp.method.name")) stdio_calls[c->name] = c;
    EXPECT_GE(c->start_ns, session->start_ns) << c->name;
    EXPECT_LE(c->end_ns, session->end_ns) << c->name;
  }
  ASSERT_NE(exec, nullptr) << "the MCP stdio server it spawned";
  const std::string server_pid = std::to_string(exec->Int("process.pid"));
  // Each stdio call's other side: the tool server's SERVER span of the same name, its child
  // (paired by the channel the request went through), in the tool server's process.
  for (const char* name : {"initialize", "tools/list", "execute_tool lookup", "execute_tool summarize"}) {
    ASSERT_TRUE(stdio_calls.count(name)) << name;
    const auto callee = ChildrenOf(all, *stdio_calls[name]);
    ASSERT_EQ(callee.size(), 1u) << name;
    EXPECT_EQ(callee[0]->kind, kServer) << name;
    EXPECT_EQ(callee[0]->name, name);
    EXPECT_EQ(callee[0]->Str("mcp.method.name"), stdio_calls[name]->Str("mcp.method.name"));
    EXPECT_EQ(callee[0]->resource.at("process.pid").value("intValue", ""), server_pid) << name;
    EXPECT_GE(callee[0]->start_ns, stdio_calls[name]->start_ns) << name;
    EXPECT_LE(callee[0]->end_ns, stdio_calls[name]->end_ns) << name;
  }
  // The tool server's own LLM call, made while it served summarize, is that span's child.
  ASSERT_NE(summarize, nullptr);
  const auto summarize_server = ChildrenOf(all, *summarize);
  ASSERT_EQ(summarize_server.size(), 1u);
  const auto inner = ChildrenOf(all, *summarize_server[0]);
  ASSERT_EQ(inner.size(), 1u);
  EXPECT_EQ(inner[0]->name, "chat gpt-4o-mini");
  EXPECT_EQ(inner[0]->kind, kClient);
  EXPECT_EQ(inner[0]->Int("gen_ai.usage.input_tokens"), 17);
  EXPECT_EQ(inner[0]->resource.at("process.pid").value("intValue", ""), server_pid);
  EXPECT_EQ(ChildrenOf(all, *inner[0]).size(), 1u) << "the LLM mock's side";
  ASSERT_NE(chat, nullptr);
  EXPECT_EQ(chat->Int("gen_ai.usage.input_tokens"), 17);
  EXPECT_EQ(chat->Int("gen_ai.usage.output_tokens"), 9);
  // The LLM mock's side joins the trace (same-host pairing).
  const auto llm_side = ChildrenOf(all, *chat);
  ASSERT_EQ(llm_side.size(), 1u);
  EXPECT_EQ(llm_side[0]->kind, kServer);
  ASSERT_NE(tool, nullptr);
  EXPECT_EQ(tool->Str("network.transport"), "unix");
  EXPECT_EQ(tool->status_code, 0);
  EXPECT_LT(exec->start_ns, chat->start_ns);

  // Nothing of the agent's or its tool server's left the trace.
  for (const auto& s : all) {
    const std::string pid =
        s.resource.count("process.pid") ? s.resource.at("process.pid").value("intValue", "") : "";
    if (pid == std::to_string(run.pid) || pid == server_pid) {
      EXPECT_EQ(s.trace_id, session->trace_id) << s.name;
    }
  }
  ExpectCleanStop(agent_);
  const std::string everything =
      ReadFileOrEmpty(agent_.SpansPath()) + agent_.process().Stdout() + agent_.Logs();
  for (const char* secret : {"PROMPT-SECRET-kspan-7f3a", "TOOLARG-SECRET-9c1e", "SECRET-0123456789"}) {
    EXPECT_EQ(everything.find(secret), std::string::npos) << secret << " left kspan";
  }
}

// Cost (issue 24, acceptance 5): a price table given with --genai-prices prices the CLI
// agent's chat gpt-4o and its tool server's chat gpt-4o-mini (the mock answers as
// "<model>-2024-08-06", a dated snapshot of each). Each span's kspan.gen_ai.cost, the
// session's, and the cost histogram's sums equal the token counts times the table's prices.
TEST_F(CliAgentIntegration, CostsAreTokensTimesThePricesOfTwoModels) {
  const std::string prices = dir_ + "/prices.yaml";
  {
    std::ofstream out(prices);
    out << "date: 2026-12-01\nmodels:\n"
           "  gpt-4o: {input: 2.0, cached_input: 1.0, output: 10.0, reasoning: 20.0}\n"
           "  gpt-4o-mini: {input: 0.5, cached_input: 0.25, output: 4.0}\n";
  }
  const CliRun run = Run("", true, {"--genai-prices", prices});
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.status << " " << run.err;
  std::vector<FlatSpan> all;
  const FlatSpan* session = Session(run, "summarize", &all);
  ASSERT_NE(session, nullptr) << agent_.Logs();
  const FlatSpan *big = nullptr, *mini = nullptr;
  for (const auto& s : all) {
    if (s.trace_id != session->trace_id || s.kind != kClient) continue;
    if (s.name == "chat gpt-4o") big = &s;
    if (s.name == "chat gpt-4o-mini") mini = &s;
  }
  ASSERT_NE(big, nullptr) << Tree(all, *session);
  ASSERT_NE(mini, nullptr) << Tree(all, *session);
  // The mock's usage: 17 input of which 3 cached, 9 output of which 2 reasoning.
  const auto expected = [](const FlatSpan& s, double in, double cached, double out, double reasoning) {
    const int64_t input = s.Int("gen_ai.usage.input_tokens"), output = s.Int("gen_ai.usage.output_tokens");
    const int64_t cache = std::max<int64_t>(s.Int("gen_ai.usage.cache_read.input_tokens"), 0);
    const int64_t think = std::max<int64_t>(s.Int("gen_ai.usage.reasoning.output_tokens"), 0);
    return ((input - cache) * in + cache * cached + (output - think) * out + think * reasoning) / 1e6;
  };
  EXPECT_EQ(big->Int("gen_ai.usage.input_tokens"), 17);
  EXPECT_EQ(big->Int("gen_ai.usage.cache_read.input_tokens"), 3);
  EXPECT_EQ(big->Int("gen_ai.usage.reasoning.output_tokens"), 2);
  const double big_cost = expected(*big, 2.0, 1.0, 10.0, 20.0);
  const double mini_cost = expected(*mini, 0.5, 0.25, 4.0, 4.0);
  EXPECT_DOUBLE_EQ(big_cost, (14 * 2.0 + 3 * 1.0 + 7 * 10.0 + 2 * 20.0) / 1e6);
  EXPECT_NEAR(big->Double("kspan.gen_ai.cost"), big_cost, 1e-12);
  EXPECT_NEAR(mini->Double("kspan.gen_ai.cost"), mini_cost, 1e-12);
  EXPECT_NEAR(session->Double("kspan.gen_ai.cost"), big_cost, 1e-12) << "the session's own calls";
  ExpectCleanStop(agent_);
  const auto h = agent_.StoppedHistograms();
  const std::string server_pid = mini->resource.at("process.pid").value("intValue", "");
  double big_sum = 0, big_count = 0, mini_sum = 0, mini_count = 0;
  for (const auto& [series, value] : h) {
    if (series.rfind("kspan_genai_cost_usd_", 0) != 0) continue;
    const bool sum = series.find("_sum{") != std::string::npos;
    if (series.find("kspan_session=\"" + std::to_string(run.pid) + "\"") != std::string::npos) {
      EXPECT_NE(series.find("gen_ai_agent_name=\"cli-agent\""), std::string::npos) << series;
      EXPECT_NE(series.find("gen_ai_response_model=\"gpt-4o-2024-08-06\""), std::string::npos) << series;
      (sum ? big_sum : big_count) += value;
    } else if (series.find("kspan_session=\"" + server_pid + "\"") != std::string::npos) {
      EXPECT_NE(series.find("gen_ai_request_model=\"gpt-4o-mini\""), std::string::npos) << series;
      (sum ? mini_sum : mini_count) += value;
    }
  }
  EXPECT_EQ(big_count, 1);
  EXPECT_EQ(mini_count, 1);
  EXPECT_NEAR(big_sum, big_cost, big_cost * 1e-5) << agent_.Logs();
  EXPECT_NEAR(mini_sum, mini_cost, mini_cost * 1e-5);
}

TEST_F(CliAgentIntegration, ACliAgentThatExitsNonZeroIsAnError) {
  const CliRun run = Run("fail");
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 1) << run.status << " " << run.err;
  std::vector<FlatSpan> all;
  const FlatSpan* session = Session(run, "fail_tool", &all);
  ASSERT_NE(session, nullptr) << agent_.Logs();
  SCOPED_TRACE(Tree(all, *session));
  EXPECT_EQ(session->status_code, 2) << "ERROR";
  EXPECT_EQ(session->Int("process.exit.code"), 1);
  EXPECT_EQ(session->Str("error.type"), "exit_code");
  EXPECT_EQ(session->status_message, "exit code 1");
  const FlatSpan* failed = nullptr;
  for (const FlatSpan* c : ChildrenOf(all, *session)) {
    if (c->name == "execute_tool fail_tool") failed = c;
  }
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status_code, 2);
  // Its last words, written when no other span of it was open, are on the session.
  bool shown = false;
  for (const FlatEvent& e : session->events) {
    if (e.name != "process.output" || !e.attributes.count("log.record.original")) continue;
    if (e.attributes.at("log.record.original").value("stringValue", "").find("cli-agent: giving up") !=
        std::string::npos) {
      shown = true;
      EXPECT_EQ(e.attributes.at("log.iostream").value("stringValue", ""), "stderr");
    }
  }
  EXPECT_TRUE(shown) << "the session span does not carry the agent's last stderr line";
  ExpectCleanStop(agent_);
}

// No rule: the agent is found by its first LLM call. Its session starts at its exec all
// the same and adopts that call (placed before it was known to be an LLM call), and the
// graph keeps the edges of processes that exited before their spans left.
TEST_F(CliAgentIntegration, ACliAgentFoundByItsFirstLlmCall) {
  const CliRun run = Run("", /*rule=*/false);
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.status << " " << run.err;
  const FlatSpan* session = nullptr;
  std::vector<FlatSpan> all;
  WaitFor(
      [&] {
        all = ReadSpans(agent_.SpansPath());
        session = nullptr;
        for (const auto& s : all) {
          if (s.kind == kInternal && s.name == "invoke_agent node" &&
              s.resource.at("process.pid").value("intValue", "") == std::to_string(run.pid)) {
            session = &s;
          }
        }
        return session != nullptr;
      },
      std::chrono::seconds(30));
  ASSERT_NE(session, nullptr) << agent_.Logs();
  SCOPED_TRACE(Tree(all, *session));
  EXPECT_TRUE(session->parent_span_id.empty());
  EXPECT_EQ(session->Int("process.exit.code"), 0);
  EXPECT_GE(session->start_ns, run.before_ns) << "from its exec, not its first LLM call";
  const FlatSpan* chat = nullptr;
  for (const FlatSpan* c : ChildrenOf(all, *session)) {
    if (c->name == "chat gpt-4o") chat = c;
  }
  ASSERT_NE(chat, nullptr) << "the call that made it an agent";
  EXPECT_GT(chat->start_ns, session->start_ns);
  ExpectCleanStop(agent_);
  std::map<std::string, uint64_t> graph = GraphEdges(agent_.Logs());
  EXPECT_EQ(graph["node -model-> gpt-4o"], 1u) << agent_.Logs();
  EXPECT_EQ(graph["node -model-> gpt-4o-mini"], 1u) << "the tool server's own call";
}

TEST_F(AgentsIntegration, AFailingToolMarksItsSpanAndTheTaskShowsItsError) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  ASSERT_NO_FATAL_FAILURE(RunTasks(1, "fail"));
  std::vector<FlatSpan> all;
  WaitFor(
      [&] {
        all = ReadSpans(agent_.SpansPath());
        return !Named(all, "invoke_agent orchestrator", kServer).empty() &&
               !Named(all, "chat gpt-4o-mini", kClient).empty();
      },
      std::chrono::seconds(30));
  const auto tasks = Named(all, "invoke_agent orchestrator", kServer);
  ASSERT_EQ(tasks.size(), 1u) << agent_.Logs();
  SCOPED_TRACE(Tree(all, *tasks[0]));
  const FlatSpan* failed = nullptr;
  for (const FlatSpan* c : ChildrenOf(all, *tasks[0])) {
    if (c->name == "execute_tool fail_tool") failed = c;
  }
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->status_code, 2) << "ERROR";
  EXPECT_EQ(failed->Str("error.type"), "-32603");
  const auto failed_server = ChildrenOf(all, *failed);
  ASSERT_EQ(failed_server.size(), 1u) << "the stdio tool server's side";
  EXPECT_EQ(failed_server[0]->kind, kServer);
  EXPECT_EQ(failed_server[0]->status_code, 2) << "it answered the error";
  EXPECT_EQ(failed_server[0]->Str("error.type"), "-32603");
  EXPECT_NE(failed->status_message.find("backend unavailable"), std::string::npos) << failed->status_message;
  // The orchestrator's stderr line about it, on the span in progress when it was written.
  bool shown = false;
  for (const FlatEvent& e : tasks[0]->events) {
    if (e.name != "process.output") continue;
    const std::string line = e.attributes.count("log.record.original")
                                 ? e.attributes.at("log.record.original").value("stringValue", "")
                                 : "";
    if (line.find("tool fail_tool failed") != std::string::npos) shown = true;
  }
  EXPECT_TRUE(shown) << "the task span does not carry the orchestrator's error line";
  ExpectCleanStop(agent_);
  std::map<std::string, uint64_t> graph = GraphEdges(agent_.Logs());
  EXPECT_EQ(graph["orchestrator -tool-> fail_tool"], 1u);
  EXPECT_EQ(graph["orchestrator -tool-> fail_tool errors"], 1u);
}

// MCP both eras (issue 24): a client (mcp_eras_client.js, named an agent by a rule so its
// stdio is read) speaks the stateless revision 2026-07-28 to mcp_stateless_server.js (plain
// node http, written to the specification) and 2025-11-25 to the real SDK's servers, each over
// HTTP and over stdio. Both ends of every call are named and attributed per the OpenTelemetry
// MCP conventions; a traceparent in params._meta is the call's parent.
std::string Cmd(const FlatSpan& s) {
  return s.resource.count("process.command_line")
             ? s.resource.at("process.command_line").value("stringValue", "")
             : "";
}

TEST_F(AgentsIntegration, McpBothErasOverHttpAndStdio) {
  ASSERT_TRUE(agent_.Start({"--output", "console", "--agent", "mcp-client=mcp_eras_client.js"}))
      << agent_.Logs();
  const int stateless_port = FreePort(), session_port = FreePort();
  const std::string a = Apps() + "agents/";
  Subprocess stateless;
  ASSERT_NO_FATAL_FAILURE(StartServer(
      &stateless, {"node", a + "mcp_stateless_server.js", std::to_string(stateless_port)}, stateless_port));
  ASSERT_NO_FATAL_FAILURE(
      StartServer(&mcp_, {"node", a + "mcp_http_server.js", std::to_string(session_port)}, session_port));
  const auto run = RunCommand(
      {"node", a + "mcp_eras_client.js", std::to_string(stateless_port), std::to_string(session_port)},
      std::chrono::seconds(60));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;

  // What each side made, by (side, kind, name): the client's spans, and each server's.
  auto side = [](const FlatSpan& s) -> std::string {
    const std::string cmd = Cmd(s);
    if (cmd.find("mcp_eras_client.js") != std::string::npos) return "client";
    if (cmd.find("mcp_stateless_server.js --stdio") != std::string::npos) return "stateless-stdio";
    if (cmd.find("mcp_stateless_server.js") != std::string::npos) return "stateless-http";
    if (cmd.find("mcp_stdio_server.js") != std::string::npos) return "session-stdio";
    if (cmd.find("mcp_http_server.js") != std::string::npos) return "session-http";
    return "";
  };
  std::vector<FlatSpan> all;
  std::map<std::string, const FlatSpan*> by;
  auto collect = [&] {
    by.clear();
    for (const auto& s : all) {
      const std::string who = side(s);
      if (who.empty() || !s.Has("mcp.method.name")) continue;
      std::string where = who;
      if (who == "client") {
        const int64_t port = s.Int("server.port");
        where = port == stateless_port                          ? "client>stateless-http"
                : port == session_port                          ? "client>session-http"
                : s.Str("mcp.protocol.version") == "2026-07-28" ? "client>stateless-stdio"
                                                                : "client>session-stdio";
      }
      by[where + " " + std::to_string(s.kind) + " " + s.name] = &s;
    }
  };
  WaitFor(
      [&] {
        all = ReadSpans(agent_.SpansPath());
        collect();
        return by.count("session-stdio 2 execute_tool lookup") &&
               by.count("stateless-stdio 2 execute_tool lookup") &&
               by.count("client>session-stdio 3 execute_tool lookup");
      },
      std::chrono::seconds(30));
  std::string seen;
  for (const auto& [k, v] : by) seen += k + "\n";
  SCOPED_TRACE(seen);

  // 2026-07-28 over HTTP: no handshake, no session; named from the body (and headers).
  for (const char* name : {"server/discover", "tools/list", "execute_tool lookup"}) {
    for (const std::string key :
         {std::string("client>stateless-http 3 ") + name, std::string("stateless-http 2 ") + name}) {
      ASSERT_TRUE(by.count(key)) << key;
      const FlatSpan& s = *by[key];
      EXPECT_EQ(s.Str("mcp.protocol.version"), "2026-07-28") << key;
      EXPECT_FALSE(s.Has("mcp.session.id")) << key;
      EXPECT_FALSE(s.Str("jsonrpc.request.id").empty()) << key;
      EXPECT_EQ(s.status_code, 0) << key;
    }
  }
  const FlatSpan& http_call = *by["client>stateless-http 3 execute_tool lookup"];
  EXPECT_EQ(http_call.Str("gen_ai.operation.name"), "execute_tool");
  EXPECT_EQ(http_call.Str("gen_ai.tool.name"), "lookup");
  // Its params._meta.traceparent is its parent, and the server's side is its child.
  EXPECT_EQ(http_call.trace_id, "6a2b3c4d5e6f708192a3b4c5d6e7f801");
  EXPECT_EQ(http_call.parent_span_id, "1a2b3c4d5e6f7081");
  const FlatSpan& http_served = *by["stateless-http 2 execute_tool lookup"];
  EXPECT_EQ(http_served.trace_id, http_call.trace_id);
  EXPECT_EQ(http_served.parent_span_id, http_call.span_id);

  // 2025-11-25 over HTTP (the SDK): the handshake, a session, the version in every span.
  for (const char* name : {"initialize", "tools/list", "execute_tool weather"}) {
    for (const std::string key :
         {std::string("client>session-http 3 ") + name, std::string("session-http 2 ") + name}) {
      ASSERT_TRUE(by.count(key)) << key;
      EXPECT_EQ(by[key]->Str("mcp.protocol.version"), "2025-11-25") << key;
      if (std::string(name) != "initialize") EXPECT_FALSE(by[key]->Str("mcp.session.id").empty()) << key;
    }
  }

  // Over stdio, both eras, both ends; the stateless call's _meta.traceparent its parent.
  for (const std::string key :
       {"client>stateless-stdio 3 server/discover", "stateless-stdio 2 server/discover",
        "client>stateless-stdio 3 execute_tool lookup", "stateless-stdio 2 execute_tool lookup"}) {
    ASSERT_TRUE(by.count(key)) << key;
    EXPECT_EQ(by[key]->Str("mcp.protocol.version"), "2026-07-28") << key;
    EXPECT_FALSE(by[key]->Str("network.transport").empty()) << key;
  }
  const FlatSpan& stdio_call = *by["client>stateless-stdio 3 execute_tool lookup"];
  EXPECT_EQ(stdio_call.trace_id, "7b3c4d5e6f708192a3b4c5d6e7f80112");
  EXPECT_EQ(stdio_call.parent_span_id, "2b3c4d5e6f708192");
  const FlatSpan& stdio_served = *by["stateless-stdio 2 execute_tool lookup"];
  EXPECT_EQ(stdio_served.trace_id, stdio_call.trace_id);
  EXPECT_EQ(stdio_served.parent_span_id, stdio_call.span_id);
  for (const std::string key :
       {"client>session-stdio 3 initialize", "session-stdio 2 initialize",
        "client>session-stdio 3 execute_tool lookup", "session-stdio 2 execute_tool lookup"}) {
    ASSERT_TRUE(by.count(key)) << key;
    EXPECT_EQ(by[key]->Str("mcp.protocol.version"), "2025-11-25") << key << ": agreed in the handshake";
  }
  const FlatSpan& session_stdio = *by["client>session-stdio 3 execute_tool lookup"];
  ASSERT_EQ(ChildrenOf(all, session_stdio).size(), 1u);
  EXPECT_EQ(ChildrenOf(all, session_stdio)[0]->name, "execute_tool lookup");
  ExpectCleanStop(agent_);
  const std::string everything =
      ReadFileOrEmpty(agent_.SpansPath()) + agent_.process().Stdout() + agent_.Logs();
  EXPECT_EQ(everything.find("TOOLARG-SECRET-9c1e"), std::string::npos) << "a tool argument left kspan";
}

// A2A 1.0 and 0.3 (issue 24): a2a_pair.js on the real @a2a-js/sdk 1.3.0, express behind its
// server adapters. 1.0 over JSON-RPC (SendMessage, SendStreamingMessage, GetTask) and over
// HTTP+JSON (POST /rest/message:send), 0.3 over JSON-RPC through the SDK's compatibility layer
// (message/send, tasks/get), and a task that fails. Both ends carry the a2a.* attributes.
TEST_F(AgentsIntegration, A2aOneAndZeroThreePairs) {
  ASSERT_TRUE(agent_.Start({"--output", "console"})) << agent_.Logs();
  const int port = FreePort();
  const std::string a = Apps() + "agents/";
  Subprocess server;
  ASSERT_NO_FATAL_FAILURE(
      StartServer(&server, {"node", a + "a2a_pair.js", "server", std::to_string(port)}, port));
  const auto run =
      RunCommand({"node", a + "a2a_pair.js", "client", std::to_string(port)}, std::chrono::seconds(60));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << server.Stderr();
  const auto got = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_TRUE(got.is_object()) << run.out;

  std::vector<FlatSpan> all;
  std::vector<const FlatSpan*> calls;  // the client's A2A spans, oldest first
  WaitFor(
      [&] {
        all = ReadSpans(agent_.SpansPath());
        calls.clear();
        for (const auto& s : all) {
          if (s.kind == kClient && s.Has("a2a.method.name") &&
              Cmd(s).find("a2a_pair.js client") != std::string::npos)
            calls.push_back(&s);
        }
        std::sort(calls.begin(), calls.end(), [](auto* x, auto* y) { return x->start_ns < y->start_ns; });
        return calls.size() >= 7;
      },
      std::chrono::seconds(30));
  std::string seen;
  for (const FlatSpan* c : calls)
    seen += c->name + " " + c->Str("a2a.method.name") + " " + c->Str("a2a.protocol.version") + "\n";
  SCOPED_TRACE(seen);
  ASSERT_EQ(calls.size(), 7u);
  struct Want {
    std::string name, method, rpc_method, version, path, state, task;
  };
  const std::string sent = got["send"]["id"], legacy = got["legacy"]["id"];
  const std::vector<Want> want = {
      {"invoke_agent echo-agent", "SendMessage", "SendMessage", "1.0", "/a2a/jsonrpc", "TASK_STATE_COMPLETED",
       sent},
      {"invoke_agent echo-agent", "SendStreamingMessage", "SendStreamingMessage", "1.0", "/a2a/jsonrpc",
       "TASK_STATE_COMPLETED", ""},
      {"GetTask", "GetTask", "GetTask", "1.0", "/a2a/jsonrpc", "TASK_STATE_COMPLETED", sent},
      {"invoke_agent echo-agent", "SendMessage", "SendMessage", "1.0", "/rest/message:send",
       "TASK_STATE_COMPLETED", got["rest"]["id"]},
      {"invoke_agent echo-agent", "SendMessage", "message/send", "0.3", "/a2a/jsonrpc",
       "TASK_STATE_COMPLETED", legacy},
      {"GetTask", "GetTask", "tasks/get", "0.3", "/a2a/jsonrpc", "TASK_STATE_COMPLETED", legacy},
      {"invoke_agent echo-agent", "SendMessage", "SendMessage", "1.0", "/a2a/jsonrpc", "TASK_STATE_FAILED",
       got["fail"]["id"]},
  };
  for (size_t i = 0; i < want.size(); ++i) {
    const FlatSpan& c = *calls[i];
    const Want& w = want[i];
    SCOPED_TRACE(std::to_string(i) + " " + w.rpc_method + " " + w.path);
    EXPECT_EQ(c.name, w.name);
    EXPECT_EQ(c.Str("a2a.method.name"), w.method);
    EXPECT_EQ(c.Str("rpc.method"), w.rpc_method);
    EXPECT_EQ(c.Str("a2a.protocol.version"), w.version);
    EXPECT_TRUE(c.Str("url.full").ends_with(w.path)) << c.Str("url.full");
    EXPECT_EQ(c.Str("a2a.task.state"), w.state);
    if (!w.task.empty()) {
      EXPECT_EQ(c.Str("a2a.task.id"), w.task);
    } else {
      EXPECT_FALSE(c.Str("a2a.task.id").empty());
    }
    EXPECT_FALSE(c.Str("gen_ai.conversation.id").empty());
    if (w.method != "GetTask") {
      EXPECT_FALSE(c.Str("a2a.message.id").empty());
      EXPECT_EQ(c.Str("gen_ai.agent.name"), "echo-agent") << "named from its agent card";
    }
    const bool failed = w.state == "TASK_STATE_FAILED";
    EXPECT_EQ(c.status_code, failed ? 2 : 0);
    if (failed) {
      EXPECT_EQ(c.Str("error.type"), "task_failed");
    }
    // The agent's side: its SERVER span, the child, named and attributed alike.
    const auto callee = ChildrenOf(all, c);
    ASSERT_EQ(callee.size(), 1u);
    EXPECT_EQ(callee[0]->kind, kServer);
    EXPECT_EQ(callee[0]->name, w.name);
    EXPECT_EQ(callee[0]->Str("a2a.method.name"), w.method);
    EXPECT_EQ(callee[0]->Str("a2a.task.state"), w.state);
    EXPECT_EQ(callee[0]->Str("a2a.task.id"), c.Str("a2a.task.id"));
  }
  ExpectCleanStop(agent_);
  const std::string everything =
      ReadFileOrEmpty(agent_.SpansPath()) + agent_.process().Stdout() + agent_.Logs();
  EXPECT_EQ(everything.find("hello again"), std::string::npos) << "a message's text left kspan";
}

// The tool call that caused each tool run (issue 24): tool_agent.js's model (the LLM mock over
// TLS, "gpt-4o-tools") asks for two tool calls by id; the agent runs them over MCP stdio and
// sends the results back. Each execute_tool span carries the id of the call it ran.
TEST_F(AgentsIntegration, ToolRunsCarryTheIdsTheLlmAskedFor) {
  ASSERT_TRUE(agent_.Start({"--output", "console", "--agent", "tool-agent=tool_agent.js"})) << agent_.Logs();
  llm_port_ = FreePort();
  const std::string cert = dir_ + "/cert.pem";
  ASSERT_NO_FATAL_FAILURE(
      StartServer(&llm_, {"node", Apps() + "llm_mock.js", std::to_string(llm_port_), cert, dir_ + "/key.pem"},
                  llm_port_));
  const std::string note = dir_ + "/note.txt";
  Subprocess agent;
  ASSERT_TRUE(agent.Start({"node", Apps() + "agents/tool_agent.js", std::to_string(llm_port_), cert, note},
                          {{"NODE_EXTRA_CA_CERTS", cert}}));
  const pid_t pid = agent.pid();
  const int status = agent.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << agent.Stdout() << agent.Stderr();
  EXPECT_EQ(ReadFileOrEmpty(note), "note\n") << "the tool ran";

  std::map<std::string, const FlatSpan*> runs;  // execute_tool CLIENT spans of the agent, by tool
  std::vector<FlatSpan> all;
  std::vector<const FlatSpan*> chats;
  WaitFor(
      [&] {
        all = ReadSpans(agent_.SpansPath());
        runs.clear();
        chats.clear();
        for (const auto& s : all) {
          if (s.resource.count("process.pid") == 0 ||
              s.resource.at("process.pid").value("intValue", "") != std::to_string(pid) ||
              s.kind != kClient) {
            continue;
          }
          if (s.Str("gen_ai.operation.name") == "execute_tool") runs[s.Str("gen_ai.tool.name")] = &s;
          if (s.name == "chat gpt-4o-tools") chats.push_back(&s);
        }
        return runs.size() >= 2 && chats.size() >= 2;
      },
      std::chrono::seconds(30));
  ASSERT_EQ(runs.size(), 2u) << agent_.Logs();
  ASSERT_EQ(chats.size(), 2u);
  std::sort(chats.begin(), chats.end(), [](auto* a, auto* b) { return a->start_ns < b->start_ns; });
  ASSERT_TRUE(runs.count("lookup") && runs.count("write_note"));
  // Each run carries the id of the call it ran, and links to the LLM span that asked for it
  // (the first chat); the second chat, which sends both results back, links to both runs.
  const std::map<std::string, std::string> ids = {{"lookup", "call_lookup_1"}, {"write_note", "call_note_2"}};
  for (const auto& [tool, id] : ids) {
    const FlatSpan& run = *runs[tool];
    EXPECT_EQ(run.Str("gen_ai.tool.call.id"), id) << tool;
    ASSERT_EQ(run.links.size(), 1u) << tool;
    EXPECT_EQ(run.links[0].span_id, chats[0]->span_id) << tool;
    EXPECT_EQ(run.links[0].trace_id, chats[0]->trace_id) << tool;
    EXPECT_EQ(run.links[0].attributes.at("kspan.link.kind").value("stringValue", ""), "tool_call");
    EXPECT_EQ(run.links[0].attributes.at("gen_ai.tool.call.id").value("stringValue", ""), id);
    int back = 0;
    for (const FlatLink& l : chats[1]->links) {
      if (l.span_id != run.span_id) continue;
      ++back;
      EXPECT_EQ(l.trace_id, run.trace_id);
      EXPECT_EQ(l.attributes.at("kspan.link.kind").value("stringValue", ""), "tool_result");
    }
    EXPECT_EQ(back, 1) << tool << ": the next LLM call links to the run whose result it sends";
  }
  EXPECT_TRUE(chats[0]->links.empty());
  EXPECT_EQ(runs["write_note"]->Str("mcp.protocol.version"), "2026-07-28");
  // The file the tool wrote is an event of the tool server's run of it (the child of the
  // agent's execute_tool write_note), and of no other span.
  const std::vector<const FlatSpan*> served = ChildrenOf(all, *runs["write_note"]);
  ASSERT_EQ(served.size(), 1u) << Tree(all, *runs["write_note"]);
  EXPECT_EQ(served[0]->name, "execute_tool write_note");
  EXPECT_EQ(served[0]->kind, kServer);
  int writes = 0;
  for (const auto& s : all) {
    for (const FlatEvent& e : s.events) {
      if (e.name != "kspan.file.write" || e.attributes.at("file.path").value("stringValue", "") != note)
        continue;
      ++writes;
      EXPECT_EQ(&s, served[0]) << s.name;
      EXPECT_EQ(e.attributes.at("kspan.file.bytes_written").value("intValue", ""), "5");
      EXPECT_EQ(e.attributes.at("kspan.file.writes").value("intValue", ""), "1");
      EXPECT_GE(e.time_ns, served[0]->start_ns);
      EXPECT_LE(e.time_ns, served[0]->end_ns);
    }
  }
  EXPECT_EQ(writes, 1) << "the note the tool wrote";
  ExpectCleanStop(agent_);
}

// A runaway loop (issue 24): the mock's "gpt-4o-loop" keeps asking for the same lookup call;
// tool_agent.js runs it 7 times. Every run carries the id of the call it ran and links to the
// chat that asked for it (the last one too, made right before the agent exits). The alert
// fires once, at the 5th run (the default threshold): an event on that execute_tool span (in
// the agent's session trace), one log line and kspan_agent_loops_total, each naming the
// agent, its session (pid) and the tool. The loop also burns tokens: 26 a chat against a
// budget of 100 a minute, crossed by the 4th chat, alerted there once.
TEST_F(AgentsIntegration, ARunawayToolLoopIsAlertedOnceAtTheThreshold) {
  ASSERT_TRUE(agent_.Start({"--output", "console", "--agent", "tool-agent=tool_agent.js", "--listen",
                            "127.0.0.1:0", "--agent-token-budget", "100"}))
      << agent_.Logs();
  ASSERT_GT(agent_.ListenPort(), 0) << agent_.Logs();
  llm_port_ = FreePort();
  const std::string cert = dir_ + "/cert.pem";
  ASSERT_NO_FATAL_FAILURE(
      StartServer(&llm_, {"node", Apps() + "llm_mock.js", std::to_string(llm_port_), cert, dir_ + "/key.pem"},
                  llm_port_));
  Subprocess agent;
  ASSERT_TRUE(agent.Start({"node", Apps() + "agents/tool_agent.js", std::to_string(llm_port_), cert,
                           dir_ + "/loop-note.txt", "loop"},
                          {{"NODE_EXTRA_CA_CERTS", cert}}));
  const pid_t pid = agent.pid();
  const std::string spid = std::to_string(pid);
  const int status = agent.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << agent.Stdout() << agent.Stderr();

  std::vector<const FlatSpan*> runs, chats;
  const FlatSpan* session = nullptr;
  std::vector<FlatSpan> all;
  WaitFor(
      [&] {
        all = ReadSpans(agent_.SpansPath());
        runs.clear();
        chats.clear();
        session = nullptr;
        for (const auto& s : all) {
          if (!s.resource.count("process.pid") || s.resource.at("process.pid").value("intValue", "") != spid)
            continue;
          if (s.kind == kClient && s.name == "execute_tool lookup") runs.push_back(&s);
          if (s.kind == kClient && s.name == "chat gpt-4o-loop") chats.push_back(&s);
          if (s.kind == kInternal && s.name == "invoke_agent tool-agent") session = &s;
        }
        return runs.size() >= 7 && chats.size() >= 7 && session;
      },
      std::chrono::seconds(30));
  ASSERT_EQ(runs.size(), 7u) << agent_.Logs();
  ASSERT_EQ(chats.size(), 7u) << agent_.Logs();
  ASSERT_NE(session, nullptr);
  const auto by_start = [](auto* a, auto* b) { return a->start_ns < b->start_ns; };
  std::sort(runs.begin(), runs.end(), by_start);
  std::sort(chats.begin(), chats.end(), by_start);
  const std::string held = "kspan_agent_tool_runs_held_total";
  for (size_t i = 0; i < runs.size(); ++i) {
    // A run's span may be built before the answer that asked for it (the TLS answer's
    // plaintext may reach kspan after the stdio run): it waits for it, past the agent's
    // exit too, so every run has its id and its link to chat i.
    EXPECT_EQ(runs[i]->Str("gen_ai.tool.call.id"), "call_loop_" + std::to_string(i)) << "run " << i;
    EXPECT_EQ(runs[i]->trace_id, session->trace_id) << "run " << i << ": in the agent's session";
    ASSERT_EQ(runs[i]->links.size(), 1u) << "run " << i;
    EXPECT_EQ(runs[i]->links[0].span_id, chats[i]->span_id) << "run " << i << ": the chat that asked";
    EXPECT_EQ(runs[i]->links[0].attributes.at("kspan.link.kind").value("stringValue", ""), "tool_call");
    if (i + 1 < chats.size()) {
      // The next chat sends this run's result back.
      int back = 0;
      for (const FlatLink& l : chats[i + 1]->links) back += l.span_id == runs[i]->span_id;
      EXPECT_EQ(back, 1) << "chat " << i + 1 << " links to run " << i << agent_.Logs();
    }
    int alerts = 0;
    for (const FlatEvent& e : runs[i]->events) {
      if (e.name != "kspan.agent.loop") continue;
      ++alerts;
      EXPECT_EQ(e.attributes.at("kspan.agent.loop.kind").value("stringValue", ""), "repeated_tool_call");
      EXPECT_EQ(e.attributes.at("gen_ai.tool.name").value("stringValue", ""), "lookup");
      EXPECT_EQ(e.attributes.at("gen_ai.agent.name").value("stringValue", ""), "tool-agent");
      EXPECT_EQ(e.attributes.at("process.pid").value("intValue", ""), spid);
      EXPECT_EQ(e.attributes.at("kspan.agent.loop.count").value("intValue", ""), "5");
    }
    EXPECT_EQ(alerts, i == 4 ? 1 : 0) << "run " << i;
  }
  // Token velocity: the chats by end time, 26 tokens each; the 4th brings 104 > 100.
  std::vector<const FlatSpan*> by_end = chats;
  std::sort(by_end.begin(), by_end.end(), [](auto* a, auto* b) { return a->end_ns < b->end_ns; });
  for (size_t i = 0; i < by_end.size(); ++i) {
    int alerts = 0;
    for (const FlatEvent& e : by_end[i]->events) {
      if (e.name != "kspan.agent.loop") continue;
      ++alerts;
      EXPECT_EQ(e.attributes.at("kspan.agent.loop.kind").value("stringValue", ""), "token_velocity");
      EXPECT_EQ(e.attributes.at("gen_ai.agent.name").value("stringValue", ""), "tool-agent");
      EXPECT_EQ(e.attributes.at("kspan.agent.loop.tokens").value("intValue", ""), "104");
      EXPECT_EQ(e.attributes.at("kspan.agent.loop.budget").value("intValue", ""), "100");
    }
    EXPECT_EQ(alerts, i == 3 ? 1 : 0) << "chat " << i << " by end";
  }
  // The metric, by agent and session, from /metrics while kspan runs.
  const std::string metrics = agent_.ScrapeMetrics();
  const auto series = [&](const std::string& kind) {
    std::istringstream lines(metrics);
    std::string line, found;
    while (std::getline(lines, line)) {
      if (line.rfind("kspan_agent_loops_total{", 0) != 0) continue;
      if (line.find("kind=\"" + kind + "\"") == std::string::npos) continue;
      if (line.find("kspan_session=\"" + spid + "\"") == std::string::npos) continue;
      EXPECT_TRUE(found.empty()) << "one series: " << line;
      EXPECT_NE(line.find("gen_ai_agent_name=\"tool-agent\""), std::string::npos) << line;
      found = line;
    }
    return found.substr(found.rfind(' ') + 1);
  };
  EXPECT_EQ(series("repeated_tool_call"), "1") << metrics;
  EXPECT_EQ(series("token_velocity"), "1") << metrics;
  ExpectCleanStop(agent_);
  std::istringstream lines(agent_.Logs());
  std::string line;
  int logged_loop = 0, logged_tokens = 0;
  while (std::getline(lines, line)) {
    if (line.find("\"msg\":\"agent loop\"") == std::string::npos) continue;
    if (line.find("\"pid\":" + spid) == std::string::npos) continue;
    EXPECT_NE(line.find("\"agent\":\"tool-agent\""), std::string::npos) << line;
    if (line.find("\"kind\":\"repeated_tool_call\"") != std::string::npos) {
      ++logged_loop;
      EXPECT_NE(line.find("\"tool\":\"lookup\""), std::string::npos) << line;
    } else if (line.find("\"kind\":\"token_velocity\"") != std::string::npos) {
      ++logged_tokens;
      EXPECT_NE(line.find("\"tokens\":104"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(logged_loop, 1) << agent_.Logs();
  EXPECT_EQ(logged_tokens, 1) << agent_.Logs();
  // How the holds ended (-1: no such series in the stopped line): none gave up.
  for (const char* end : {"timeout", "full", "exit"})
    EXPECT_LE(agent_.StoppedCounter(held + "{outcome=\"" + end + "\"}"), 0) << end << "\n" << agent_.Logs();
}

}  // namespace
}  // namespace kspan::testing
