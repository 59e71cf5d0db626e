// MCP and A2A calls and agents' tasks as agent spans (correlator/agent_spans.h), and the
// JSON-RPC reading under them (genai/jsonrpc.h).
#include "correlator/agent_spans.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "genai/jsonrpc.h"
#include "protocols/http1/spec.h"
#include "protocols/jsonrpc/spec.h"
#include "protocols/registry.h"

namespace kspan::correlator {
namespace {

using protocols::http1::Record;

constexpr uint64_t kT0 = 1'700'000'000'000'000'000ULL;

Record Rpc(std::string request_body, std::string response_body, std::string content_type = "application/json",
           std::string method = "POST", std::string target = "/mcp") {
  Record r;
  r.request.set_method(std::move(method));
  r.request.set_target(std::move(target));
  r.request.set_version("1.1");
  r.request.SetHeaders(
      {{"Host", "127.0.0.1:9000"}, {"Content-Type", "application/json"}, {"Mcp-Session-Id", "sess-1"}});
  r.request.body_prefix = std::move(request_body);
  r.request.timing.start_ns = kT0;
  r.request.timing.end_ns = kT0 + 1000;
  r.response.status_code = 200;
  r.response.set_version("1.1");
  r.response.SetHeaders({{"Content-Type", std::move(content_type)}});
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
      "resources/read")
      << "a resource's URI is no low-cardinality target";
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

TEST_F(AgentSpansTest, A2aAttributesBothVersionsAndBindings) {
  // 1.0 over JSON-RPC: SendMessage with the A2A-Version header.
  Record v1 = Rpc(
      R"({"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"messageId":"m-1","role":"ROLE_USER","parts":[]}}})",
      R"({"jsonrpc":"2.0","id":"1","result":{"task":{"id":"task-9","contextId":"ctx-3","status":{"state":"TASK_STATE_COMPLETED"}}}})",
      "application/json", "POST", "/a2a/jsonrpc");
  v1.request.AddHeader("A2A-Version", "1.0");
  const model::Span a = Build(&agents_, v1, Conn(false, 10));
  EXPECT_EQ(a.name, "invoke_agent 127.0.0.1");
  EXPECT_EQ(Str(a, "a2a.method.name"), "SendMessage");
  EXPECT_EQ(Str(a, "a2a.protocol.version"), "1.0");
  EXPECT_EQ(Str(a, "a2a.message.id"), "m-1");
  EXPECT_EQ(Str(a, "a2a.task.id"), "task-9");
  EXPECT_EQ(Str(a, "a2a.task.state"), "TASK_STATE_COMPLETED");
  EXPECT_EQ(Str(a, "gen_ai.conversation.id"), "ctx-3");
  // 0.3: message/send, the Task itself as the result, its state in lower case.
  const model::Span b = Build(
      &agents_,
      Rpc(R"({"jsonrpc":"2.0","id":2,"method":"message/send","params":{"message":{"messageId":"m-2","kind":"message"}}})",
          R"({"jsonrpc":"2.0","id":2,"result":{"kind":"task","id":"t-2","contextId":"c-2","status":{"state":"input-required"}}})",
          "application/json", "POST", "/"),
      Conn(false, 10));
  EXPECT_EQ(Str(b, "a2a.method.name"), "SendMessage");
  EXPECT_EQ(Str(b, "rpc.method"), "message/send");
  EXPECT_EQ(Str(b, "a2a.protocol.version"), "0.3");
  EXPECT_EQ(Str(b, "a2a.task.id"), "t-2");
  EXPECT_EQ(Str(b, "a2a.task.state"), "TASK_STATE_INPUT_REQUIRED");
  // A stream: the last state sent.
  const model::Span c = Build(
      &agents_,
      Rpc(R"({"jsonrpc":"2.0","id":3,"method":"SendStreamingMessage","params":{"message":{"messageId":"m-3"}}})",
          "data: "
          "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"task\":{\"id\":\"t-3\",\"status\":{\"state\":\"TASK_"
          "STATE_SUBMITTED\"}}}}\n\n"
          "data: "
          "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"statusUpdate\":{\"taskId\":\"t-3\",\"status\":{"
          "\"state\":\"TASK_STATE_WORKING\"}}}}\n\n"
          "data: "
          "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"statusUpdate\":{\"taskId\":\"t-3\",\"status\":{"
          "\"state\":\"TASK_STATE_FAILED\"}}}}\n\n",
          "text/event-stream", "POST", "/"),
      Conn(false, 10));
  EXPECT_EQ(Str(c, "a2a.task.id"), "t-3");
  EXPECT_EQ(Str(c, "a2a.task.state"), "TASK_STATE_FAILED");
  EXPECT_EQ(c.status_code, model::StatusCode::kError);
  // Other methods are named by their operation.
  const model::Span get = Build(
      &agents_,
      Rpc(R"({"jsonrpc":"2.0","id":4,"method":"tasks/get","params":{"id":"t-2"}})",
          R"({"jsonrpc":"2.0","id":4,"result":{"kind":"task","id":"t-2","status":{"state":"completed"}}})",
          "application/json", "POST", "/"),
      Conn(false, 10));
  EXPECT_EQ(get.name, "GetTask");
  EXPECT_EQ(Str(get, "a2a.task.id"), "t-2");
  EXPECT_EQ(Str(get, "a2a.task.state"), "TASK_STATE_COMPLETED");

  // HTTP+JSON (REST): the operation in the path.
  Record rest = Rpc(R"({"message":{"messageId":"m-5","role":"ROLE_USER","parts":[]}})",
                    R"({"task":{"id":"t-5","status":{"state":"TASK_STATE_WORKING"}}})", "application/json",
                    "POST", "/message:send");
  rest.request.AddHeader("A2A-Version", "1.0");
  const model::Span r = Build(&agents_, rest, Conn(true, 20));
  EXPECT_EQ(r.name, "invoke_agent node");
  EXPECT_EQ(Str(r, "a2a.method.name"), "SendMessage");
  EXPECT_EQ(Str(r, "a2a.protocol.version"), "1.0");
  EXPECT_EQ(Str(r, "a2a.message.id"), "m-5");
  EXPECT_EQ(Str(r, "a2a.task.state"), "TASK_STATE_WORKING");
  Record rest03 = Rpc(R"({"message":{"messageId":"m-6"}})",
                      R"({"kind":"task","id":"t-6","status":{"state":"completed"}})", "application/json",
                      "POST", "/v1/message:send");
  const model::Span r03 = Build(&agents_, rest03, Conn(false, 10));
  EXPECT_EQ(Str(r03, "a2a.protocol.version"), "0.3");
  EXPECT_EQ(Str(r03, "a2a.task.id"), "t-6");
  Record get_rest = Rpc("", R"({"id":"t-5","status":{"state":"TASK_STATE_COMPLETED"}})", "application/json",
                        "GET", "/tasks/t-5");
  get_rest.request.AddHeader("A2A-Version", "1.0");
  const model::Span g = Build(&agents_, get_rest, Conn(false, 10));
  EXPECT_EQ(g.name, "GetTask");
  EXPECT_EQ(Str(g, "a2a.task.id"), "t-5");
  // Any application's GET /tasks/7 is not A2A.
  bool changed = true;
  Build(&agents_, Rpc("", R"({"id":"7"})", "application/json", "GET", "/tasks/7"), Conn(false, 10), &changed);
  EXPECT_FALSE(changed);
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

// MCP 2026-07-28: no handshake, no session; each HTTP request repeats its method and target
// in Mcp-Method and Mcp-Name and says its revision in the header and in params._meta.
Record Stateless(std::string body, std::string method, std::string name, std::string response_body) {
  Record r = Rpc(std::move(body), std::move(response_body));
  r.request.SetHeaders({{"Host", "127.0.0.1:9000"},
                        {"Content-Type", "application/json"},
                        {"MCP-Protocol-Version", "2026-07-28"},
                        {"Mcp-Method", std::move(method)}});
  if (!name.empty()) r.request.AddHeader("Mcp-Name", std::move(name));
  return r;
}

TEST_F(AgentSpansTest, McpStatelessRequestsAreNamedByHeadersAndBody) {
  const Record call = Stateless(
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"weather","arguments":{"city":"X"},)"
      R"("_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}})",
      "tools/call", "weather", R"({"jsonrpc":"2.0","id":2,"result":{"content":[],"resultType":"complete"}})");
  for (bool server : {false, true}) {
    const model::Span s = Build(&agents_, call, Conn(server, 10));
    EXPECT_EQ(s.name, "execute_tool weather");
    EXPECT_EQ(Str(s, "gen_ai.tool.name"), "weather");
    EXPECT_EQ(Str(s, "mcp.method.name"), "tools/call");
    EXPECT_EQ(Str(s, "mcp.protocol.version"), "2026-07-28");
    EXPECT_EQ(s.Find("mcp.session.id"), nullptr) << "stateless: no session";
    EXPECT_EQ(Str(s, "jsonrpc.request.id"), "2");
    EXPECT_EQ(s.status_code, model::StatusCode::kUnset);
  }
  // The body cut before its method (a capture limit): the headers name the call.
  Record cut = Stateless(R"({"jsonrpc":"2.0","id":3,"par)", "tools/call", "weather", "{}");
  cut.request.body_truncated = true;
  EXPECT_EQ(Build(&agents_, cut, Conn(false, 10)).name, "execute_tool weather");
  // A method this list does not know is still MCP when the header says so.
  const model::Span future =
      Build(&agents_,
            Stateless(R"({"jsonrpc":"2.0","id":4,"method":"subscriptions/listen","params":{}})",
                      "subscriptions/listen", "", R"({"jsonrpc":"2.0","id":4,"result":{}})"),
            Conn(false, 10));
  EXPECT_EQ(future.name, "subscriptions/listen");
  EXPECT_EQ(Str(future, "mcp.method.name"), "subscriptions/listen");
  // server/discover is known without the header (a stdio client sends none).
  const model::Span discover = Build(
      &agents_,
      Rpc(R"({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}})",
          R"({"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["2026-07-28"]}})"),
      Conn(false, 10));
  EXPECT_EQ(discover.name, "server/discover");
  EXPECT_EQ(Str(discover, "mcp.protocol.version"), "2026-07-28");
  // The conventions' MCP duration metric, per side, with the method and tool.
  bool client_seen = false, server_seen = false;
  for (const auto& h : metrics_.HistogramSnapshot()) {
    const bool tool =
        std::find(h.labels.begin(), h.labels.end(),
                  std::pair<std::string, std::string>("gen_ai_tool_name", "weather")) != h.labels.end();
    if (h.name == "mcp_client_operation_duration_seconds" && tool) client_seen = h.data.count >= 2;
    if (h.name == "mcp_server_operation_duration_seconds" && tool) server_seen = h.data.count == 1;
  }
  EXPECT_TRUE(client_seen);
  EXPECT_TRUE(server_seen);
}

TEST_F(AgentSpansTest, McpSessionEraVersionPromptAndResourceAttributes) {
  // 2025-11-25 over HTTP: initialize's answer says the revision; later requests repeat it
  // in MCP-Protocol-Version.
  const model::Span init =
      Build(&agents_,
            Rpc(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}})",
                R"({"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{}}})"),
            Conn(false, 10));
  EXPECT_EQ(Str(init, "mcp.protocol.version"), "2025-11-25");
  EXPECT_EQ(Str(init, "mcp.session.id"), "sess-1");
  Record prompt = Rpc(R"({"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"greet"}})",
                      R"({"jsonrpc":"2.0","id":5,"error":{"code":-32602,"message":"no such prompt"}})");
  prompt.request.AddHeader("MCP-Protocol-Version", "2025-11-25");
  const model::Span p = Build(&agents_, prompt, Conn(false, 10));
  EXPECT_EQ(p.name, "prompts/get greet");
  EXPECT_EQ(Str(p, "gen_ai.prompt.name"), "greet");
  EXPECT_EQ(Str(p, "mcp.protocol.version"), "2025-11-25");
  EXPECT_EQ(Str(p, "rpc.response.status_code"), "-32602");
  EXPECT_EQ(Str(p, "error.type"), "-32602");
  EXPECT_EQ(p.status_message, "no such prompt");
  const model::Span res = Build(
      &agents_,
      Rpc(R"({"jsonrpc":"2.0","id":6,"method":"resources/read","params":{"uri":"file:///a.txt"}})", "{}"),
      Conn(false, 10));
  EXPECT_EQ(Str(res, "mcp.resource.uri"), "file:///a.txt");
}

TEST_F(AgentSpansTest, StdioSessionsRememberTheAgreedVersion) {
  protocols::jsonrpc::Call init;
  init.outgoing = true;
  init.request =
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}})";
  init.response = R"({"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18"}})";
  EXPECT_EQ(Str(agents_.BuildLocalCall(init, 10, "pipe", nullptr), "mcp.protocol.version"), "2025-06-18")
      << "what the server agreed, not what the client offered";
  protocols::jsonrpc::Call call;
  call.outgoing = true;
  call.request = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup"}})";
  call.response = R"({"jsonrpc":"2.0","id":1,"result":{}})";
  EXPECT_EQ(Str(agents_.BuildLocalCall(call, 10, "pipe", nullptr), "mcp.protocol.version"), "2025-06-18");
  EXPECT_EQ(Str(agents_.BuildLocalCall(call, 11, "pipe", nullptr), "mcp.protocol.version"), "<missing>")
      << "another process";
  call.channel = 5;
  EXPECT_EQ(Str(agents_.BuildLocalCall(call, 10, "pipe", nullptr), "mcp.protocol.version"), "<missing>")
      << "another tool server of the same agent";
  call.channel = 0;
  agents_.OnExit(10);
  EXPECT_EQ(Str(agents_.BuildLocalCall(call, 10, "pipe", nullptr), "mcp.protocol.version"), "<missing>");
  // A stateless stdio request says its revision itself.
  call.request =
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"lookup","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}})";
  const model::Span s = agents_.BuildLocalCall(call, 12, "pipe", nullptr);
  EXPECT_EQ(Str(s, "mcp.protocol.version"), "2026-07-28");
  EXPECT_EQ(Str(s, "network.transport"), "pipe");
}

// A request of the connection (pid, fd), its seq-th.
NodeKey Key(uint32_t pid, int32_t fd, uint64_t seq) {
  return {{pid, fd, 1}, seq};
}

// The id a tool run takes (LinkToolRun), "<wait>" when it waits, "<missing>" with none.
std::string TakeId(AgentSpans* agents, uint32_t pid, model::Span* span, bool final = false,
                   std::vector<NodeLink>* links = nullptr) {
  std::vector<NodeLink> ignored;
  const auto r = agents->LinkToolRun(pid, Key(pid, 50, 1), final, span, links ? links : &ignored);
  if (r == AgentSpans::ToolRunLink::kWait) return "<wait>";
  return Str(*span, "gen_ai.tool.call.id");
}

TEST_F(AgentSpansTest, ToolRunsTakeTheIdsOfTheToolCallsAsked) {
  // Rpc() runs start at kT0: answers that ended before it.
  agents_.NoteToolCallsAsked(10, {{"call_1", "lookup"}, {"call_2", "write_note"}, {"call_3", "never_run"}},
                             kT0 - 10, Key(10, 3, 1));
  // The next answer, already built (answers and runs reach kspan in no fixed order), ended
  // after these runs started: its calls are not theirs.
  agents_.NoteToolCallsAsked(10, {{"call_9", "lookup"}}, kT0 + 50'000'000, Key(10, 3, 2));
  // Run in another order than asked, one over HTTP, one over stdio.
  model::Span http = Build(
      &agents_,
      Rpc(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"write_note","arguments":{}}})",
          R"({"jsonrpc":"2.0","id":7,"result":{"content":[]}})"),
      Conn(false, 10));
  std::vector<NodeLink> links;
  EXPECT_EQ(TakeId(&agents_, 10, &http, false, &links), "call_2");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].to, Key(10, 3, 1)) << "linked to the LLM call that asked";
  // The server's side is not the agent's tool run: AgentSpans gives it no id.
  const model::Span served =
      Build(&agents_,
            Rpc(R"({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"lookup","arguments":{}}})",
                R"({"jsonrpc":"2.0","id":8,"result":{"content":[]}})"),
            Conn(true, 10));
  EXPECT_EQ(served.Find("gen_ai.tool.call.id"), nullptr);
  protocols::jsonrpc::Call stdio;
  stdio.outgoing = true;
  stdio.request = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup"}})";
  stdio.response = R"({"jsonrpc":"2.0","id":1,"result":{}})";
  stdio.request_timing.start_ns = kT0;
  model::Span run = agents_.BuildLocalCall(stdio, 10, "pipe", nullptr);
  EXPECT_EQ(TakeId(&agents_, 10, &run), "call_1");
  // Each asked call is taken once; a run after the next answer takes that answer's call.
  run = agents_.BuildLocalCall(stdio, 10, "pipe", nullptr);
  EXPECT_EQ(TakeId(&agents_, 10, &run), "<missing>");
  stdio.request_timing.start_ns = kT0 + 60'000'000;
  run = agents_.BuildLocalCall(stdio, 10, "pipe", nullptr);
  EXPECT_EQ(TakeId(&agents_, 10, &run), "call_9");
  // Another process's runs take none.
  agents_.NoteToolCallsAsked(11, {{"call_5", "lookup"}}, kT0 - 10, Key(11, 3, 1));
  run = agents_.BuildLocalCall(stdio, 12, "pipe", nullptr);
  EXPECT_EQ(TakeId(&agents_, 12, &run), "<missing>");
  EXPECT_EQ(metrics_.Sum("kspan_agent_tool_calls_total"), 3u);
  // What waits at exit was not seen run: named for the session, then counted.
  const auto unrun = agents_.Unrun(10, 16);
  ASSERT_EQ(unrun.size(), 1u);
  EXPECT_EQ(unrun[0].first.id, "call_3");
  EXPECT_EQ(unrun[0].second, kT0 - 10);
  agents_.OnExit(10);
  agents_.OnExit(11);
  EXPECT_TRUE(agents_.Unrun(10, 16).empty());
  uint64_t linked = 0, unlinked = 0;
  for (const auto& c : metrics_.Snapshot()) {
    if (c.name != "kspan_agent_tool_calls_total") continue;
    (c.labels == metrics::Labels{{"outcome", "linked"}} ? linked : unlinked) += c.value;
  }
  EXPECT_EQ(linked, 3u);
  EXPECT_EQ(unlinked, 2u) << "never_run, and pid 11's lookup";
}

// The race of issue 24: the run is built before the LLM answer that asked for it. While a
// request the agent sent before the run is unanswered, the run waits; once answered, it
// takes its call; `final` never waits.
TEST_F(AgentSpansTest, ARunBuiltBeforeItsAnswerWaitsForIt) {
  protocols::jsonrpc::Call stdio;
  stdio.outgoing = true;
  stdio.request = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup"}})";
  stdio.response = R"({"jsonrpc":"2.0","id":1,"result":{}})";
  stdio.request_timing.start_ns = kT0;
  agents_.NoteClientRequest(10, Key(10, 3, 1), kT0 - 1'000'000);  // the LLM call, unanswered
  agents_.NoteClientRequest(10, Key(10, 4, 1), kT0 + 1'000'000);  // a later one: not waited for
  model::Span run = agents_.BuildLocalCall(stdio, 10, "pipe", nullptr);
  EXPECT_EQ(TakeId(&agents_, 10, &run), "<wait>");
  EXPECT_EQ(TakeId(&agents_, 11, &run), "<missing>") << "another process has nothing in flight";
  agents_.NoteToolCallsAsked(10, {{"call_1", "lookup"}}, kT0 - 500'000, Key(10, 3, 1));
  agents_.NoteClientDone(10, Key(10, 3, 1));
  EXPECT_EQ(TakeId(&agents_, 10, &run), "call_1");

  // An older call of the same tool still waiting does not stop the wait for a newer answer.
  agents_.NoteToolCallsAsked(10, {{"call_old", "lookup"}}, kT0 - 900'000'000, Key(10, 3, 2));
  agents_.NoteClientRequest(10, Key(10, 3, 3), kT0 - 800'000'000);
  model::Span second = agents_.BuildLocalCall(stdio, 10, "pipe", nullptr);
  EXPECT_EQ(TakeId(&agents_, 10, &second), "<wait>");
  EXPECT_EQ(TakeId(&agents_, 10, &second, /*final=*/true), "call_old") << "given up: the best there is";
  model::Span third = agents_.BuildLocalCall(stdio, 10, "pipe", nullptr);
  EXPECT_EQ(TakeId(&agents_, 10, &third, /*final=*/true), "<missing>");
}

// The next LLM request that sends a run's result back links to that run, once.
TEST_F(AgentSpansTest, TheNextLlmCallLinksToTheRunsWhoseResultsItSends) {
  agents_.NoteToolCallsAsked(10, {{"call_1", "lookup"}, {"call_2", "write_note"}}, kT0 - 10, Key(10, 3, 1));
  protocols::jsonrpc::Call stdio;
  stdio.outgoing = true;
  stdio.request = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup"}})";
  stdio.response = R"({"jsonrpc":"2.0","id":1,"result":{}})";
  stdio.request_timing.start_ns = kT0;
  model::Span run = agents_.BuildLocalCall(stdio, 10, "pipe", nullptr);
  std::vector<NodeLink> run_links;
  ASSERT_EQ(agents_.LinkToolRun(10, Key(10, 50, 1), false, &run, &run_links),
            AgentSpans::ToolRunLink::kLinked);
  ASSERT_EQ(run_links.size(), 1u);
  EXPECT_EQ(run_links[0].to, Key(10, 3, 1));
  std::vector<NodeLink> links;
  agents_.LinkToolResults(10, Key(10, 3, 2), {"call_1", "call_2", "call_unknown"}, &links);
  ASSERT_EQ(links.size(), 1u) << "call_2 was not run (yet), call_unknown never asked";
  EXPECT_EQ(links[0].to, Key(10, 50, 1));
  ASSERT_EQ(links[0].attributes.size(), 2u);
  EXPECT_EQ(std::get<std::string>(links[0].attributes[0].value), "tool_result");
  EXPECT_EQ(std::get<std::string>(links[0].attributes[1].value), "call_1");
  links.clear();
  agents_.LinkToolResults(10, Key(10, 3, 3), {"call_1", "call_2"}, &links);
  EXPECT_TRUE(links.empty()) << "the history resent later links no more";
  // call_2's run is built only now (its record came after the LLM calls'): the first
  // request that sent its result back (Key(10, 3, 2), not the later one) gets the link.
  stdio.request = R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_note"}})";
  model::Span late_run = agents_.BuildLocalCall(stdio, 10, "pipe", nullptr);
  std::vector<std::pair<NodeKey, NodeLink>> late;
  run_links.clear();
  ASSERT_EQ(agents_.LinkToolRun(10, Key(10, 51, 1), false, &late_run, &run_links, &late),
            AgentSpans::ToolRunLink::kLinked);
  EXPECT_EQ(Str(late_run, "gen_ai.tool.call.id"), "call_2");
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].first, Key(10, 3, 2));
  EXPECT_EQ(late[0].second.to, Key(10, 51, 1));
  EXPECT_EQ(std::get<std::string>(late[0].second.attributes[0].value), "tool_result");
  EXPECT_EQ(std::get<std::string>(late[0].second.attributes[1].value), "call_2");
  links.clear();
  agents_.LinkToolResults(10, Key(10, 3, 4), {"call_1", "call_2"}, &links);
  EXPECT_TRUE(links.empty()) << "linked late once, not again";
}

// Two agents sending each other A2A messages in alternation: one alert per pair, on the
// send that reaches the threshold (default 6), naming both; sends the same way again
// start the count over.
TEST_F(AgentSpansTest, APingPongBetweenTwoAgentsIsAlertedOnce) {
  const auto with_host = [](Record r, const std::string& host) {
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& [k, v] : r.request.headers())
      headers.emplace_back(k, k == "Host" ? host : std::string(v));
    r.request.SetHeaders(headers);
    return r;
  };
  const auto card = [&](const std::string& name, const std::string& host) {
    return with_host(Rpc("", R"({"name":")" + name + R"(","url":"http://x/","skills":[]})",
                         "application/json", "GET", "/.well-known/agent-card.json"),
                     host);
  };
  const Record send =
      Rpc(R"({"jsonrpc":"2.0","id":"t1","method":"SendMessage","params":{}})",
          R"({"jsonrpc":"2.0","id":"t1","result":{"task":{"status":{"state":"TASK_STATE_COMPLETED"}}}})",
          "application/json", "POST", "/");
  const auto alpha = Resource("alpha", "node alpha.js"), beta = Resource("beta", "node beta.js");
  agents_.NoteLlmCall(10);
  agents_.NoteLlmCall(20);
  Build(&agents_, card("beta", "beta.local:2"), Conn(false, 10), nullptr, alpha);
  Build(&agents_, card("alpha", "alpha.local:1"), Conn(false, 20), nullptr, beta);
  const auto a_to_b = [&] {
    return Build(&agents_, with_host(send, "beta.local:2"), Conn(false, 10), nullptr, alpha);
  };
  const auto b_to_a = [&] {
    return Build(&agents_, with_host(send, "alpha.local:1"), Conn(false, 20), nullptr, beta);
  };
  const auto alerts = [](const model::Span& s) {
    int n = 0;
    for (const auto& e : s.events) n += e.name == "kspan.agent.loop";
    return n;
  };
  EXPECT_EQ(a_to_b().name, "invoke_agent beta");
  EXPECT_EQ(alerts(a_to_b()), 0) << "the same way twice: the count starts over";
  for (int i = 2; i <= 5; ++i) EXPECT_EQ(alerts(i % 2 == 0 ? b_to_a() : a_to_b()), 0) << i;
  const model::Span sixth = b_to_a();
  ASSERT_EQ(alerts(sixth), 1);
  const model::SpanEvent& e = sixth.events.back();
  EXPECT_EQ(std::get<std::string>(e.attributes[0].value), "ping_pong");
  EXPECT_EQ(std::get<std::string>(e.attributes[1].value), "beta") << "the sender";
  EXPECT_EQ(std::get<std::string>(e.attributes[3].value), "alpha") << "its peer";
  EXPECT_EQ(std::get<int64_t>(e.attributes[4].value), 6);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(alerts(i % 2 == 0 ? a_to_b() : b_to_a()), 0) << "once per pair";
  EXPECT_EQ(metrics_
                .GetCounter("kspan_agent_loops_total",
                            {{"kind", "ping_pong"}, {"gen_ai_agent_name", "beta"}, {"kspan_session", "20"}})
                ->Value(),
            1u)
      << "by the sender and its session";
  EXPECT_EQ(metrics_.Sum("kspan_agent_loops_total"), 1u);
}

// Token velocity: more than the budget within a minute, once per process; calls older than
// a minute no longer count.
TEST(AgentSpansTokens, TokenVelocityOverTheBudgetIsAlertedOnce) {
  metrics::Registry m;
  AgentSpans agents(
      {.rules = {}, .loop_repeated_tool_calls = 5, .loop_ping_pong = 6, .token_budget_per_minute = 1000}, &m);
  agents.NoteLlmCall(10);
  const auto call = [&](uint32_t pid, uint64_t tokens, uint64_t at) {
    model::Span s;
    s.start_time_unix_nano = at;
    agents.NoteTokens(pid, tokens, at, &s);
    return s.events.size();
  };
  const uint64_t minute = AgentSpans::kTokenWindowNs;
  EXPECT_EQ(call(10, 600, kT0), 0u);
  EXPECT_EQ(call(10, 600, kT0 + minute + 1), 0u) << "the first call is over a minute old";
  EXPECT_EQ(call(10, 300, kT0 + minute + 2), 0u) << "900: not over";
  EXPECT_EQ(call(11, 900, kT0 + minute + 2), 0u) << "another process has its own budget";
  model::Span over;
  over.start_time_unix_nano = kT0 + minute + 3;
  agents.NoteTokens(10, 200, kT0 + minute + 3, &over);
  ASSERT_EQ(over.events.size(), 1u);
  EXPECT_EQ(std::get<std::string>(over.events[0].attributes[0].value), "token_velocity");
  EXPECT_EQ(std::get<int64_t>(over.events[0].attributes[3].value), 1100);
  EXPECT_EQ(std::get<int64_t>(over.events[0].attributes[4].value), 1000);
  EXPECT_EQ(call(10, 5000, kT0 + minute + 4), 0u) << "once per process";
  EXPECT_EQ(
      m.GetCounter("kspan_agent_loops_total",
                   {{"kind", "token_velocity"}, {"gen_ai_agent_name", "pid 10"}, {"kspan_session", "10"}})
          ->Value(),
      1u);
  agents.OnExit(10);
  EXPECT_EQ(call(10, 5000, kT0 + 3 * minute), 1u) << "a new process of the pid starts over";
}

TEST_F(AgentSpansTest, RepeatedToolCallsRaiseOneLoopAlertAtTheThreshold) {
  auto call = [](std::string args) {
    protocols::jsonrpc::Call c;
    c.outgoing = true;
    c.request = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":)" +
                args + "}}";
    c.response = R"({"jsonrpc":"2.0","id":1,"result":{}})";
    return c;
  };
  auto alerts = [](const model::Span& s) {
    return std::count_if(s.events.begin(), s.events.end(),
                         [](const auto& e) { return e.name == "kspan.agent.loop"; });
  };
  const auto resource = Resource("node", "node loop_agent.js");
  int fired_at = 0;
  for (int i = 1; i <= 8; ++i) {
    // Other arguments in between do not count towards the same call.
    EXPECT_EQ(alerts(agents_.BuildLocalCall(call(R"({"q":"other )" + std::to_string(i) + R"("})"), 10, "pipe",
                                            resource)),
              0);
    const model::Span s = agents_.BuildLocalCall(call(R"({"q":"same","n":[1,2]})"), 10, "pipe", resource);
    if (alerts(s) == 0) continue;
    EXPECT_EQ(fired_at, 0) << "once";
    fired_at = i;
    const model::SpanEvent& e = s.events.back();
    std::map<std::string, model::AttributeValue> a;
    for (const auto& attr : e.attributes) a[std::string(attr.key)] = attr.value;
    EXPECT_EQ(std::get<std::string>(a["gen_ai.tool.name"]), "lookup");
    EXPECT_EQ(std::get<std::string>(a["gen_ai.agent.name"]), "node");
    EXPECT_EQ(std::get<int64_t>(a["process.pid"]), 10);
    EXPECT_EQ(std::get<int64_t>(a["kspan.agent.loop.count"]), 5);
  }
  EXPECT_EQ(fired_at, 5);
  EXPECT_EQ(metrics_
                .GetCounter(
                    "kspan_agent_loops_total",
                    {{"kind", "repeated_tool_call"}, {"gen_ai_agent_name", "node"}, {"kspan_session", "10"}})
                ->Value(),
            1u);
  EXPECT_EQ(metrics_.Sum("kspan_agent_loops_total"), 1u);
  // The same in another process is its own count; the tool server's side never counts.
  protocols::jsonrpc::Call served = call(R"({"q":"same","n":[1,2]})");
  served.outgoing = false;
  for (int i = 0; i < 6; ++i) EXPECT_EQ(alerts(agents_.BuildLocalCall(served, 11, "pipe", resource)), 0);
  // Off when the threshold is 0.
  metrics::Registry m;
  AgentOptions off;
  off.loop_repeated_tool_calls = 0;
  AgentSpans quiet(off, &m);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(alerts(quiet.BuildLocalCall(call("{}"), 10, "pipe", resource)), 0);
}

constexpr const char* kMetaParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(McpTraceContext, MetaTraceparentIsTheRequestsParentOverStdio) {
  auto conn = protocols::jsonrpc::Spec().make(true, {});
  const std::string line =
      std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t",)") +
      R"("_meta":{"traceparent":")" + kMetaParent + R"(","tracestate":"a=b"}}})" + "\n";
  protocols::Chunk c;
  c.channel = 1;
  c.egress = true;
  c.data = line;
  c.total_len = static_cast<uint32_t>(line.size());
  c.first_ns = c.last_ns = kT0;
  conn->AddData(c);
  std::vector<protocols::RequestStart> started;
  std::vector<protocols::Record> records;
  protocols::ConnectionStats stats;
  conn->Drain(&started, &records, &stats);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].traceparent, kMetaParent);
  EXPECT_EQ(started[0].tracestate, "a=b");
}

TEST(McpTraceContext, MetaTraceparentWinsOverTheHttpHeader) {
  for (bool with_meta : {true, false}) {
    auto conn = protocols::http1::Spec().make(true, {});
    const std::string body =
        std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t")") +
        (with_meta ? std::string(R"(,"_meta":{"traceparent":")") + kMetaParent + R"("}}})" : "}}");
    const std::string req =
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "traceparent: 00-11111111111111111111111111111111-2222222222222222-01\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    protocols::Chunk c;
    c.egress = true;
    c.data = req;
    c.total_len = static_cast<uint32_t>(req.size());
    c.first_ns = c.last_ns = kT0;
    conn->AddData(c);
    std::vector<protocols::RequestStart> started;
    std::vector<protocols::Record> records;
    protocols::ConnectionStats stats;
    conn->Drain(&started, &records, &stats);
    ASSERT_EQ(started.size(), 1u);
    EXPECT_EQ(started[0].traceparent,
              with_meta ? kMetaParent : "00-11111111111111111111111111111111-2222222222222222-01");
  }
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
