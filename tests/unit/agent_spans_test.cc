// MCP and A2A calls and agents' tasks as agent spans (correlator/agent_spans.h), and the
// JSON-RPC reading under them (genai/jsonrpc.h).
#include "correlator/agent_spans.h"

#include <gtest/gtest.h>

#include "genai/jsonrpc.h"

namespace kspan::correlator {
namespace {

using protocols::http1::Record;

constexpr uint64_t kT0 = 1'700'000'000'000'000'000ULL;

Record Rpc(std::string request_body, std::string response_body, std::string content_type = "application/json",
           std::string method = "POST", std::string target = "/mcp") {
  Record r;
  r.request.method = std::move(method);
  r.request.target = std::move(target);
  r.request.version = "1.1";
  r.request.headers = {
      {"Host", "127.0.0.1:9000"}, {"Content-Type", "application/json"}, {"Mcp-Session-Id", "sess-1"}};
  r.request.body_prefix = std::move(request_body);
  r.request.timing.start_ns = kT0;
  r.request.timing.end_ns = kT0 + 1000;
  r.response.status_code = 200;
  r.response.version = "1.1";
  r.response.headers = {{"Content-Type", std::move(content_type)}};
  r.response.body_prefix = std::move(response_body);
  r.response.timing.start_ns = kT0 + 2'000'000;
  r.response.timing.end_ns = kT0 + 3'000'000;
  return r;
}

HttpConnContext Conn(bool server, uint32_t pid) {
  HttpConnContext c;
  c.is_server = server;
  c.pid = pid;
  return c;
}

std::shared_ptr<const model::Resource> Resource(std::string service, std::string cmdline) {
  auto r = std::make_shared<model::Resource>();
  r->attributes.push_back({"service.name", std::move(service)});
  r->attributes.push_back({"process.command_line", std::move(cmdline)});
  return r;
}

std::string Str(const model::Span& s, std::string_view key) {
  const model::AttributeValue* v = s.Find(key);
  const std::string* str = v ? std::get_if<std::string>(v) : nullptr;
  return str ? *str : "<missing>";
}

model::Span Build(AgentSpans* a, const Record& r, const HttpConnContext& c, bool* changed = nullptr,
                  std::shared_ptr<const model::Resource> resource = Resource("node", "node app.js")) {
  model::Span s = BuildHttpSpan(r, c, std::move(resource), {});
  const bool did = a->Apply(r, c, &s);
  if (changed) *changed = did;
  return s;
}

class AgentSpansTest : public ::testing::Test {
 protected:
  metrics::Registry metrics_;
  AgentSpans agents_{AgentOptions{}, &metrics_};
};

TEST_F(AgentSpansTest, McpToolCallBothSides) {
  const Record r = Rpc(
      R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"weather","arguments":{"city":"SECRET"}}})",
      R"({"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"sunny"}]}})");
  for (bool server : {false, true}) {
    const model::Span s = Build(&agents_, r, Conn(server, 10));
    EXPECT_EQ(s.name, "execute_tool weather");
    EXPECT_EQ(Str(s, "gen_ai.operation.name"), "execute_tool");
    EXPECT_EQ(Str(s, "gen_ai.tool.name"), "weather");
    EXPECT_EQ(Str(s, "mcp.method.name"), "tools/call");
    EXPECT_EQ(Str(s, "mcp.session.id"), "sess-1");
    EXPECT_EQ(Str(s, "jsonrpc.request.id"), "7");
    EXPECT_EQ(s.status_code, model::StatusCode::kUnset);
  }
  EXPECT_EQ(metrics_.Sum("kspan_agent_spans_total"), 2u);
}

TEST_F(AgentSpansTest, McpToolErrorsFromJsonRpcAndIsError) {
  // A JSON-RPC error inside an SSE response, after a notification.
  const model::Span rpc =
      Build(&agents_,
            Rpc(R"({"jsonrpc":"2.0","id":"a1","method":"tools/call","params":{"name":"fail_tool"}})",
                "event: message\ndata: "
                "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n"
                "event: message\ndata: "
                "{\"jsonrpc\":\"2.0\",\"id\":\"a1\",\"error\":{\"code\":-32603,\"message\":\"boom\"}}\n\n",
                "text/event-stream"),
            Conn(false, 10));
  EXPECT_EQ(rpc.status_code, model::StatusCode::kError);
  EXPECT_EQ(rpc.status_message, "boom");
  EXPECT_EQ(Str(rpc, "error.type"), "-32603");
  EXPECT_EQ(Str(rpc, "jsonrpc.request.id"), "a1");

  const model::Span soft =
      Build(&agents_,
            Rpc(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"soft"}})",
                R"({"jsonrpc":"2.0","id":2,"result":{"content":[],"isError":true}})"),
            Conn(false, 10));
  EXPECT_EQ(soft.status_code, model::StatusCode::kError);
  EXPECT_EQ(Str(soft, "error.type"), "tool_error");
}

TEST_F(AgentSpansTest, OtherMcpMethodsAreNamedByMethodAndTarget) {
  EXPECT_EQ(Build(&agents_,
                  Rpc(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})",
                      R"({"jsonrpc":"2.0","id":1,"result":{"tools":[]}})"),
                  Conn(false, 10))
                .name,
            "tools/list");
  EXPECT_EQ(
      Build(
          &agents_,
          Rpc(R"({"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///a.txt"}})", "{}"),
          Conn(false, 10))
          .name,
      "resources/read file:///a.txt");
  // Not JSON-RPC, or not an agent protocol's method: untouched.
  bool changed = true;
  Build(&agents_, Rpc(R"({"jsonrpc":"2.0","id":1,"method":"eth_call"})", "{}"), Conn(false, 10), &changed);
  EXPECT_FALSE(changed);
  Build(&agents_, Rpc(R"({"method":"tools/call"})", "{}"), Conn(false, 10), &changed);
  EXPECT_FALSE(changed);
}

TEST_F(AgentSpansTest, A2aSendNamesTheCalleeFromItsCard) {
  // The caller fetched the card first.
  Build(&agents_,
        Rpc("", R"({"name":"sub-agent","url":"http://127.0.0.1:9000/","skills":[]})", "application/json",
            "GET", "/.well-known/agent-card.json"),
        Conn(false, 10));
  const Record send = Rpc(
      R"({"jsonrpc":"2.0","id":"t1","method":"message/send","params":{"message":{"role":"user","parts":[]}}})",
      R"({"jsonrpc":"2.0","id":"t1","result":{"kind":"task","id":"x","status":{"state":"completed"}}})",
      "application/json", "POST", "/");
  const model::Span client = Build(&agents_, send, Conn(false, 10));
  EXPECT_EQ(client.name, "invoke_agent sub-agent");
  EXPECT_EQ(Str(client, "gen_ai.operation.name"), "invoke_agent");
  EXPECT_EQ(Str(client, "gen_ai.agent.name"), "sub-agent");
  EXPECT_EQ(Str(client, "rpc.method"), "message/send");
  EXPECT_EQ(client.status_code, model::StatusCode::kUnset);

  // The callee side: its own served card names it.
  Build(&agents_,
        Rpc("", R"({"name":"helper","url":"http://127.0.0.1:9000/","skills":[]})", "application/json", "GET",
            "/.well-known/agent-card.json"),
        Conn(true, 20));
  EXPECT_EQ(Build(&agents_, send, Conn(true, 20)).name, "invoke_agent helper");
  // A failed task is an error.
  const model::Span failed =
      Build(&agents_,
            Rpc(R"({"jsonrpc":"2.0","id":"t2","method":"message/send","params":{}})",
                R"({"jsonrpc":"2.0","id":"t2","result":{"kind":"task","status":{"state":"failed"}}})",
                "application/json", "POST", "/"),
            Conn(false, 10));
  EXPECT_EQ(failed.status_code, model::StatusCode::kError);
  EXPECT_EQ(Str(failed, "error.type"), "task_failed");
  // A2A 1.0: SendMessage, the task wrapped, its state prefixed.
  const model::Span v1 =
      Build(&agents_,
            Rpc(R"({"jsonrpc":"2.0","id":"t3","method":"SendMessage","params":{}})",
                R"({"jsonrpc":"2.0","id":"t3","result":{"task":{"status":{"state":"TASK_STATE_REJECTED"}}}})",
                "application/json", "POST", "/"),
            Conn(false, 10));
  EXPECT_EQ(v1.name, "invoke_agent sub-agent");
  EXPECT_EQ(Str(v1, "error.type"), "task_rejected");
}

TEST_F(AgentSpansTest, AnAgentsIncomingTaskIsInvokeAgent) {
  const Record task = Rpc(R"({"task":"x"})", R"({"ok":true})", "application/json", "POST", "/task");
  bool changed = true;
  Build(&agents_, task, Conn(true, 30), &changed);
  EXPECT_FALSE(changed) << "not an agent yet";
  agents_.NoteLlmCall(30);
  const model::Span s =
      Build(&agents_, task, Conn(true, 30), &changed, Resource("node", "node /srv/orchestrator.js 8080"));
  EXPECT_TRUE(changed);
  EXPECT_EQ(s.name, "invoke_agent node");
  EXPECT_EQ(Str(s, "gen_ai.agent.name"), "node");
  // Its outgoing calls are not tasks.
  Build(&agents_, task, Conn(false, 30), &changed);
  EXPECT_FALSE(changed);
  // Exited, it stays an agent for its spans still waiting for export (the call graph asks
  // then), until its pid runs a new program.
  agents_.OnExit(30);
  Build(&agents_, task, Conn(true, 30), &changed);
  EXPECT_TRUE(changed);
  agents_.OnExec(30);
  Build(&agents_, task, Conn(true, 30), &changed);
  EXPECT_FALSE(changed);
}

TEST(AgentSpansExit, ExitedAgentsAreForgottenPastTheBound) {
  metrics::Registry m;
  AgentSpans agents({}, &m);
  for (uint32_t pid = 1; pid <= 1025; ++pid) {
    agents.NoteLlmCall(pid);
    agents.OnExit(pid);
  }
  EXPECT_FALSE(agents.IsAgent(1, nullptr)) << "the oldest exit is forgotten";
  EXPECT_TRUE(agents.IsAgent(2, nullptr));
  EXPECT_TRUE(agents.IsAgent(1025, nullptr));
  // A pid that came back as an agent is not forgotten by its older exit.
  agents.NoteLlmCall(2);
  for (uint32_t pid = 2000; pid < 2010; ++pid) {
    agents.NoteLlmCall(pid);
    agents.OnExit(pid);
  }
  EXPECT_TRUE(agents.IsAgent(2, nullptr));
}

TEST(AgentSpansRules, RulesNameAgentsByCommandLine) {
  metrics::Registry m;
  AgentSpans agents(AgentOptions{.rules = {{"orchestrator", "orchestrator.js"}, {"other", "node"}}}, &m);
  agents.NoteLlmCall(30);
  model::Span s = BuildHttpSpan(Rpc("{}", "{}", "application/json", "POST", "/task"), Conn(true, 30),
                                Resource("node", "node /srv/orchestrator.js 8080"), {});
  agents.Apply(Rpc("{}", "{}", "application/json", "POST", "/task"), Conn(true, 30), &s);
  EXPECT_EQ(s.name, "invoke_agent orchestrator");
}

TEST_F(AgentSpansTest, StdioCallsBecomeSpansBothWays) {
  protocols::jsonrpc::Call out;
  out.outgoing = true;
  out.request =
      R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"fail_tool","arguments":{}}})";
  out.response = R"({"jsonrpc":"2.0","id":4,"error":{"code":-32603,"message":"backend unavailable"}})";
  out.request_timing.start_ns = kT0;
  out.response_timing.end_ns = kT0 + 5'000'000;
  const model::Span c = agents_.BuildLocalCall(out, 10, "unix", Resource("node", "node orchestrator.js"));
  EXPECT_EQ(c.kind, model::SpanKind::kClient);
  EXPECT_EQ(c.name, "execute_tool fail_tool");
  EXPECT_EQ(c.start_time_unix_nano, kT0);
  EXPECT_EQ(c.end_time_unix_nano, kT0 + 5'000'000);
  EXPECT_EQ(c.status_code, model::StatusCode::kError);
  EXPECT_EQ(Str(c, "error.type"), "-32603");
  EXPECT_EQ(Str(c, "network.transport"), "unix");
  EXPECT_TRUE(c.trace_id.IsValid());

  protocols::jsonrpc::Call in = out;
  in.outgoing = false;
  in.response_missing = true;
  in.response.clear();
  const model::Span s = agents_.BuildLocalCall(in, 11, "pipe", nullptr);
  EXPECT_EQ(s.kind, model::SpanKind::kServer);
  EXPECT_EQ(s.status_code, model::StatusCode::kError);
  EXPECT_EQ(Str(s, "error.type"), "response_missing");
}

TEST(JsonRpcTest, RequestsAndBatches) {
  auto r = genai::ParseRpcRequest(
      R"([{"jsonrpc":"2.0","id":"x","method":"prompts/get","params":{"name":"greet"}},{}])");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->protocol, genai::RpcProtocol::kMcp);
  EXPECT_EQ(r->method, "prompts/get");
  EXPECT_EQ(r->id, "x");
  EXPECT_EQ(r->target, "greet");
  auto n = genai::ParseRpcRequest(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->id.empty());
  auto a = genai::ParseRpcRequest(R"({"jsonrpc":"2.0","id":5,"method":"tasks/get","params":{"id":"t"}})");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->protocol, genai::RpcProtocol::kA2a);
  EXPECT_FALSE(genai::ParseRpcRequest(R"({"jsonrpc":"1.0","id":1,"method":"tools/call"})"));
  EXPECT_FALSE(genai::ParseRpcRequest("not json"));
  // A response matches its id only.
  EXPECT_FALSE(
      genai::ParseRpcResponse("application/json", R"({"jsonrpc":"2.0","id":2,"result":{}})", "1").found);
  EXPECT_TRUE(
      genai::ParseRpcResponse("application/json", R"([{"jsonrpc":"2.0","id":1,"result":{}}])", "1").found);
  EXPECT_EQ(genai::AgentCardName(R"({"name":"x"})"), "") << "a card says where it is served";
}

}  // namespace
}  // namespace kspan::correlator
