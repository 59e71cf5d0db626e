// Agent spans from HTTP records (the agents issue; docs/agents.md): MCP tool calls over
// the streamable HTTP transport, Agent2Agent (A2A) calls, and each agent's incoming tasks,
// per the OpenTelemetry gen_ai agent and MCP conventions. Runs after GenAiSpans, which
// tells it which processes call LLMs.
//
//   record                                   span (the HTTP attributes stay)
//   ---------------------------------------  ---------------------------------------------
//   MCP tools/call (CLIENT or SERVER),       execute_tool {tool}: gen_ai.operation.name
//   either era (genai/jsonrpc.h)             execute_tool, gen_ai.tool.name, mcp.method.name,
//                                            mcp.protocol.version, mcp.session.id,
//                                            jsonrpc.request.id; ERROR on a JSON-RPC error
//                                            (error.type and rpc.response.status_code its
//                                            code) or an isError result ("tool_error")
//   MCP prompts/get                          prompts/get {prompt}, gen_ai.prompt.name
//   another MCP method                       {method}, e.g. "tools/list", "server/discover";
//                                            resources/*: mcp.resource.uri; same attributes
//   every MCP call                           mcp.{client,server}.operation.duration (the
//                                            conventions' metrics, as mcp_*_seconds)
//   A2A message/send, message/stream         invoke_agent {agent}: gen_ai.operation.name
//                                            invoke_agent, gen_ai.agent.name, rpc.method,
//                                            jsonrpc.request.id; ERROR on a JSON-RPC error or
//                                            a task whose state is failed or rejected
//   another A2A method (tasks/get …)         {method}, with rpc.method and jsonrpc.request.id
//   a SERVER span of an agent process        invoke_agent {agent}: the agent's work on one
//   (one that made an LLM call)              incoming task; gen_ai.agent.name
//
// {agent}: the callee's name from its agent card (GET /.well-known/agent-card.json or
// agent.json, remembered per server host:port on the caller's side and per process on the
// callee's), else an agent rule's name, else the process's service.name.
//
// Tool arguments and results are never read (genai/jsonrpc.h).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/metrics.h"
#include "correlator/http_span.h"
#include "correlator/stitch_node.h"
#include "genai/jsonrpc.h"
#include "genai/llm.h"
#include "model/span.h"
#include "protocols/http1/types.h"
#include "protocols/jsonrpc/line_stream.h"

namespace kspan::correlator {

// Names processes as agents: a process whose executable path or command line contains
// `match` is the agent `name` (the first rule that matches wins).
struct AgentRule {
  std::string name;
  std::string match;
};

struct AgentOptions {
  std::vector<AgentRule> rules;
  // Runaway-loop alert: an agent process calling the same tool with the same arguments
  // this many times (MCP tools/call, HTTP or stdio) gets one alert, at the count: a
  // "kspan.agent.loop" event on that execute_tool span, kspan_agent_loops_total{kind=
  // "repeated_tool_call", gen_ai_agent_name, kspan_session (its pid)} and one log line
  // naming the agent, its pid and the tool. 0: off.
  uint32_t loop_repeated_tool_calls = 5;
  // Ping-pong: two agents sending each other A2A messages (invoke_agent CLIENT spans) this
  // many times in alternation (A→B, B→A, A→B, …) get one alert per pair, kind "ping_pong",
  // on the send that reaches the count. 0: off.
  uint32_t loop_ping_pong = 6;
  // Token velocity: an agent process whose LLM calls used more than this many tokens
  // (input + output) within one minute gets one alert, kind "token_velocity", on the call
  // that crossed it. 0: off.
  uint64_t token_budget_per_minute = 200000;
};

class AgentSpans {
 public:
  AgentSpans(AgentOptions options, metrics::Registry* metrics);

  // `pid` made an LLM call: it is an agent from now on (until it exits).
  void NoteLlmCall(uint32_t pid);
  // The tokens (input + output) of an LLM call of agent `pid` that ended at `end_ns`:
  // alerts once per process when its last minute's tokens pass the budget
  // (AgentOptions::token_budget_per_minute), on `span`.
  void NoteTokens(uint32_t pid, uint64_t tokens, uint64_t end_ns, model::Span* span);
  static constexpr uint64_t kTokenWindowNs = 60'000'000'000;
  static constexpr size_t kMaxTokenCallsPerProcess = 1024;
  // The tool calls an LLM answer `pid` received at `at_ns` (its end) asked for; `llm` is
  // that LLM call's request. Calls that leave unrun (pushed out: at most
  // kMaxAskedPerProcess wait a process; or the process exits) were not seen run (a local
  // tool, or never run): kspan_agent_tool_calls_total{outcome="unlinked"}; the others
  // "linked" (LinkToolRun).
  void NoteToolCallsAsked(uint32_t pid, std::vector<genai::ToolCallAsked> asked, uint64_t at_ns,
                          const NodeKey& llm);
  static constexpr size_t kMaxAskedPerProcess = 64;

  // The LLM answer that asked for a tool run and the run itself reach kspan in no fixed
  // order (the answer's plaintext comes through the TLS probes, the run through the
  // agent's pipes): a run may be built before its answer. So the agent's outgoing TCP
  // requests are followed while they are unanswered (at most kMaxInFlightPerProcess a
  // process), and a run that finds no call while an earlier one is still unanswered waits.
  void NoteClientRequest(uint32_t pid, const NodeKey& request, uint64_t start_ns);
  void NoteClientDone(uint32_t pid, const NodeKey& request);
  static constexpr size_t kMaxInFlightPerProcess = 64;
  // A request unanswered for longer than this is not waited for (one whose record was lost
  // would otherwise hold every later run of the process).
  static constexpr uint64_t kInFlightMaxNs = 600'000'000'000;
  enum class ToolRunLink { kLinked, kWait, kNone };
  // For an execute_tool CLIENT span of `pid` (the request `run`): of the calls waiting for
  // a tool of its name, takes one of the last answer that ended before the run started,
  // sets gen_ai.tool.call.id and adds a link to the LLM span that asked (kLinked). kWait: no
  // call yet, or only older ones, while a request the process sent after that answer and
  // before the run is unanswered (it may be the LLM call that asked): ask again when it
  // is, or with `final` (which never waits: the best call there is, else none).
  // `late` (may be null) gets the links of LLM calls built before this run that sent its
  // result back (LinkToolResults), as (the LLM call's request, the link to add to it).
  ToolRunLink LinkToolRun(uint32_t pid, const NodeKey& run, bool final, model::Span* span,
                          std::vector<NodeLink>* links,
                          std::vector<std::pair<NodeKey, NodeLink>>* late = nullptr);
  // An LLM request of `pid` (`request`) sent back the results of these tool calls: a link
  // to each run not linked to an earlier request (the next LLM call that received its
  // result). A result whose run is not built yet (its record may come after the next LLM
  // call's: they travel apart) is remembered, at most kMaxAskedPerProcess a process until
  // its exit, and its run links it late (LinkToolRun's `late`).
  void LinkToolResults(uint32_t pid, const NodeKey& request, const std::vector<std::string>& ids,
                       std::vector<NodeLink>* links);
  // The calls still waiting for a run of `pid` (a session's events at exit), with the time
  // of the answer that asked for each; at most `max`.
  std::vector<std::pair<genai::ToolCallAsked, uint64_t>> Unrun(uint32_t pid, size_t max) const;
  // An exited process stays known (agent, served card) while its spans may still wait for
  // export, where the call graph asks AgentOf: until kMaxExited later exits of agents, or
  // until its pid runs a new program (OnExec). A short-lived CLI agent's spans all leave
  // after its exit.
  void OnExit(uint32_t pid);
  void OnExec(uint32_t pid);

  // Turns the span of an MCP or A2A call, or of an agent's incoming task, into an agent
  // span (see above); notes agent cards. Returns whether it changed the span.
  bool Apply(const protocols::http1::Record& record, const HttpConnContext& conn, model::Span* span);

  // The span of a JSON-RPC call on a local stream (MCP stdio; protocols/jsonrpc): CLIENT
  // when `pid` sent the request, SERVER otherwise, named and attributed as above, with
  // network.transport `transport` ("pipe", "unix"); ERROR when no response came. Fresh
  // random ids: the stitcher places it.
  model::Span BuildLocalCall(const protocols::jsonrpc::Call& call, uint32_t pid, std::string_view transport,
                             std::shared_ptr<const model::Resource> resource);

  // The agent name of a process (its served agent card, rules, then service.name).
  std::string AgentName(uint32_t pid, const model::Resource* resource) const;
  // A process is an agent when it made an LLM call or an agent rule names it.
  bool IsAgent(uint32_t pid, const model::Resource* resource) const;
  // Whether any agent rule is configured: without one, IsAgent never reads the resource.
  bool HasRules() const { return !options_.rules.empty(); }
  // The agent whose process made `span` (its resource's process.pid), or "" when that
  // process is not an agent.
  std::string AgentOf(const model::Span& span) const;

 private:
  // What the transport says of a call besides its body.
  struct RpcTransport {
    std::string_view session;            // HTTP: Mcp-Session-Id (2025-11-25)
    std::string_view protocol_version;   // HTTP: MCP-Protocol-Version
    genai::RpcHeaders headers;           // HTTP: Mcp-Method, Mcp-Name (2026-07-28)
    std::string_view network_transport;  // "tcp", "pipe", "unix"
    bool local = false;                  // stdio (protocols/jsonrpc)
    uint64_t channel = 0;                // stdio: the channel the request went on
    std::string_view a2a_version;        // HTTP: the A2A-Version header
  };
  bool ApplyRpc(const protocols::http1::Record& record, const HttpConnContext& conn, model::Span* span);
  bool ApplyRpcCall(std::string_view request_body, std::string_view response_type,
                    std::string_view response_body, bool response_missing, const HttpConnContext& conn,
                    const RpcTransport& transport, model::Span* span);
  void ApplyCall(const genai::RpcRequest& call, const genai::RpcResponse& resp, const HttpConnContext& conn,
                 const RpcTransport& transport, model::Span* span);
  // mcp.protocol.version of a call: the initialize answer's, the MCP-Protocol-Version
  // header, the request's _meta (2026-07-28), else (stdio) what the handshake on that
  // channel agreed.
  std::string McpVersion(const genai::RpcRequest& call, const genai::RpcResponse& resp,
                         const RpcTransport& transport, uint32_t pid);
  void RecordMcpDuration(const model::Span& span, bool server, std::string_view network_transport,
                         std::string_view method, std::string_view error_type);
  void NoteAgentCard(const protocols::http1::Record& record, const HttpConnContext& conn,
                     const model::Span& span);
  // The first rule that names the process, or nullptr.
  const AgentRule* RuleFor(const model::Resource* resource) const;

  AgentOptions options_;
  metrics::Registry* metrics_;
  metrics::Counter* tool_calls_;
  metrics::Counter* agent_calls_;
  // Bounded: pids of agents, and agent card names by "host:port" (caller's view) and by
  // pid (the agent that served its own card).
  static constexpr size_t kMaxEntries = 4096;
  std::unordered_set<uint32_t> agents_;
  std::unordered_map<std::string, std::string> card_by_server_;
  std::unordered_map<uint32_t, std::string> card_by_pid_;
  struct Asked {
    genai::ToolCallAsked call;
    uint64_t at_ns = 0;  // the answer's end
    NodeKey llm;         // the LLM call whose answer asked
  };
  std::unordered_map<uint32_t, std::deque<Asked>> asked_;  // by pid, bounded
  struct InFlight {
    NodeKey request;
    uint64_t start_ns = 0;
  };
  std::unordered_map<uint32_t, std::deque<InFlight>> in_flight_;  // by pid, bounded
  struct Ran {
    std::string id;
    NodeKey run;
  };
  // Runs that took a call id, by pid, until an LLM request sends their result back;
  // bounded by kMaxAskedPerProcess a process.
  std::unordered_map<uint32_t, std::deque<Ran>> ran_;
  // Results sent back before their run was built, by pid: the call id and the first LLM
  // request that carried it. Bounded by kMaxAskedPerProcess a process.
  struct ResultSent {
    std::string id;
    NodeKey request;
  };
  std::unordered_map<uint32_t, std::deque<ResultSent>> results_early_;
  // Tool calls by pid, then by hash of (tool, arguments): how many times. Bounded: 256
  // keys a process (then it starts over), kMaxEntries processes.
  std::unordered_map<uint32_t, std::unordered_map<uint64_t, uint32_t>> repeats_;
  void CheckLoop(const genai::RpcRequest& call, uint32_t pid, model::Span* span);
  // One alert: the span event, the metric (kspan_agent_loops_total{kind, gen_ai_agent_name,
  // kspan_session}) and (by the caller) the log line (docs/agents.md, runaway loops).
  void Alert(std::string_view kind, const std::string& agent, uint32_t pid, model::Span* span,
             std::vector<model::Attribute> extra);
  // A2A sends between two agents, by the pair (names in order): who sent last, how many
  // sends alternated so far, whether the pair was alerted. Bounded by kMaxEntries pairs.
  struct PingPong {
    std::string last_sender;
    uint32_t alternations = 0;
    bool alerted = false;
  };
  std::map<std::pair<std::string, std::string>, PingPong> ping_pong_;
  void CheckPingPong(const std::string& from, const std::string& to, uint32_t pid, model::Span* span);
  // Each agent process's LLM calls of the last minute (end time, tokens), their sum, and
  // whether it was alerted.
  struct TokenWindow {
    std::deque<std::pair<uint64_t, uint64_t>> calls;
    uint64_t sum = 0;
    bool alerted = false;
  };
  std::unordered_map<uint32_t, TokenWindow> tokens_;
  metrics::Counter* tool_calls_linked_;
  metrics::Counter* tool_calls_unlinked_;
  void DropAsked(uint32_t pid);
  // The MCP revision each stdio handshake agreed, by (pid, request channel): both ends see
  // it, and one agent may talk to tool servers of both eras. Bounded by kMaxEntries.
  std::map<std::pair<uint32_t, uint64_t>, std::string> mcp_version_by_channel_;
  void ForgetMcpVersions(uint32_t pid);
  // Exited agents not forgotten yet, oldest first, each with the generation of its exit
  // (a pid that exits again, or lives again, makes the older entry stale).
  static constexpr size_t kMaxExited = 1024;
  void Forget(uint32_t pid);
  std::deque<std::pair<uint32_t, uint64_t>> exited_;
  std::unordered_map<uint32_t, uint64_t> exit_gen_;
  uint64_t next_exit_gen_ = 0;
};

}  // namespace kspan::correlator
