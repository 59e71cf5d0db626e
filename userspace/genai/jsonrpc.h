// Agent protocols read from HTTP/1 bodies: JSON-RPC 2.0 calls of the Model Context Protocol
// (MCP, streamable HTTP transport) and of Agent2Agent (A2A). Pure functions over bytes a
// traced process sent, bounded like genai/llm.h: nothing fails louder than an empty field.
//
//   protocol  methods recognised                           span (correlator/agent_spans.h)
//   --------  -------------------------------------------  ----------------------------------
//   MCP       tools/call                                   execute_tool {tool}
//             initialize, ping, tools/list, resources/*,   {method} [{prompt}]
//             prompts/*, completion/complete, logging/*,
//             sampling/*, roots/list, elicitation/*, notifications/*,
//             server/discover (2026-07-28), and any method an HTTP request names in its
//             Mcp-Method header (2026-07-28: every request does)
//   A2A       message/send, message/stream, tasks/*,       invoke_agent {agent} (send, stream)
//             agent/getAuthenticatedExtendedCard (0.3);    {method} otherwise
//             SendMessage, SendStreamingMessage, GetTask …
//             (1.0)
//
// MCP has two eras here. 2025-11-25 (and before): an `initialize` handshake, then a session
// (HTTP: the Mcp-Session-Id header; stdio: the pipe) whose requests carry the negotiated
// MCP-Protocol-Version header (HTTP). 2026-07-28: stateless, no handshake and no session;
// each request says its revision in params._meta["io.modelcontextprotocol/protocolVersion"]
// and, over HTTP, repeats its method and target in the Mcp-Method and Mcp-Name headers.
// Either may carry W3C trace context in params._meta (traceparent, tracestate), as the
// OpenTelemetry MCP conventions propagate it.
//
// Only the first call of a JSON-RPC batch is read. Tool arguments and results are never
// read: only the tool's name, and whether the call failed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kspan::genai {

enum class RpcProtocol { kMcp, kA2a };

struct RpcRequest {
  RpcProtocol protocol = RpcProtocol::kMcp;
  std::string method;  // as sent, e.g. "tools/call"
  std::string id;      // the JSON-RPC id as text (a number's digits, a string's value);
                       // empty for a notification
  // MCP: tools/call's params.name; prompts/get's params.name; resources/read's params.uri
  // (at most kMaxRpcTargetBytes), else the Mcp-Name header. A2A: empty.
  std::string target;
  enum class TargetKind { kNone, kTool, kPrompt, kResource };
  TargetKind target_kind = TargetKind::kNone;
  // MCP: the revision the request names: params._meta's
  // "io.modelcontextprotocol/protocolVersion" (2026-07-28), else initialize's
  // params.protocolVersion (what the client offers); empty otherwise.
  std::string protocol_version;
  // params._meta.traceparent and .tracestate as sent (bounded), empty when absent.
  std::string traceparent;
  std::string tracestate;
  // A2A: the logical operation (A2A 1.0's name whatever the binding or version:
  // message/send and POST /message:send are both "SendMessage"), the protocol version
  // ("0.3" or "1.0", by the method's form or the binding's path), and the request's
  // message.messageId, task id (message.taskId, or the task a GetTask/CancelTask names) and
  // message.contextId, each at most kMaxRpcTargetBytes.
  // MCP tools/call: a hash of params.arguments (its structure, names and values in text
  // order), so repeated calls with the same arguments are seen without keeping them; 0 when
  // there are none.
  uint64_t arguments_hash = 0;
  std::string a2a_method;
  std::string a2a_version;
  std::string message_id;
  std::string task_id;
  std::string context_id;
};

// HTTP headers of a request that bear on the call: MCP 2026-07-28's Mcp-Method and
// Mcp-Name. Empty when absent.
struct RpcHeaders {
  std::string_view mcp_method;
  std::string_view mcp_name;
};

inline constexpr size_t kMaxRpcTargetBytes = 256;

// The call in a request body, when it is a JSON-RPC 2.0 request or notification with a
// method of MCP or A2A (above); std::nullopt for anything else. With an Mcp-Method header
// the request is MCP whatever its method (a revision newer than this list), and when its
// body cannot be read (cut before the method) the header names the call.
std::optional<RpcRequest> ParseRpcRequest(std::string_view body, const RpcHeaders& headers = {});

struct RpcResponse {
  bool found = false;  // a JSON-RPC response (for `id` when given) was read
  bool error = false;  // it has an "error" member
  std::optional<int64_t> error_code;
  std::string error_message;     // at most kMaxErrorMessageBytes (genai/llm.h)
  bool tool_error = false;       // MCP: a result with "isError": true
  std::string task_state;        // A2A: the Task's status.state, lower case without 1.0's
                                 // TASK_STATE_ prefix ("completed", "failed" …); in a stream,
                                 // the last state sent
  std::string task_id;           // A2A: the task the answer (or the stream's first event) names
  std::string context_id;        // A2A: its contextId
  std::string protocol_version;  // MCP initialize's result.protocolVersion (negotiated)
};

// The response to request `id` in a body: one JSON object, a JSON array (batch), or a
// text/event-stream whose events carry JSON-RPC messages (MCP's streamable HTTP may send
// notifications before the response). `content_type` as the header sent it.
RpcResponse ParseRpcResponse(std::string_view content_type, std::string_view body, std::string_view id);

// A2A over HTTP+JSON (the REST binding): a request whose path is one of the binding's
// (1.0: POST /message:send, /message:stream, /tasks/{id}:cancel, GET /tasks/{id}:subscribe;
// 0.3 the same under /v1/), or GET /tasks/{id} with an A2A-Version header (a plain
// GET /tasks/7 is any application's). `a2a_version` is that header's value, or empty.
std::optional<RpcRequest> ParseA2aRestRequest(std::string_view method, std::string_view target,
                                              std::string_view body, std::string_view a2a_version);

// The answer of an HTTP+JSON A2A call: the body is the result itself (a Task, a
// {"task": …} or {"message": …}, or an event stream of them).
RpcResponse ParseA2aRestResponse(std::string_view content_type, std::string_view body);

// The A2A conventions' form of a task state: "TASK_STATE_COMPLETED" for "completed" (0.3)
// and for "TASK_STATE_COMPLETED" (1.0); "input-required" is "TASK_STATE_INPUT_REQUIRED".
std::string A2aTaskState(std::string_view state);

// An A2A agent card (GET /.well-known/agent-card.json, or the older agent.json): its
// "name", at most kMaxRpcTargetBytes; empty when the body is not one.
std::string AgentCardName(std::string_view body);

}  // namespace kspan::genai
