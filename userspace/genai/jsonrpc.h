// Agent protocols read from HTTP/1 bodies: JSON-RPC 2.0 calls of the Model Context Protocol
// (MCP, streamable HTTP transport) and of Agent2Agent (A2A). Pure functions over bytes a
// traced process sent, bounded like genai/llm.h: nothing fails louder than an empty field.
//
//   protocol  methods recognised                           span (correlator/agent_spans.h)
//   --------  -------------------------------------------  ----------------------------------
//   MCP       tools/call                                   execute_tool {tool}
//             initialize, ping, tools/list, resources/*,   {method} [{target}]
//             prompts/*, completion/complete, logging/*,
//             sampling/*, roots/list, elicitation/*, notifications/*
//   A2A       message/send, message/stream, tasks/*,       invoke_agent {agent} (send, stream)
//             agent/getAuthenticatedExtendedCard (0.3);    {method} otherwise
//             SendMessage, SendStreamingMessage, GetTask …
//             (1.0)
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
  // (at most kMaxRpcTargetBytes). A2A: empty.
  std::string target;
};

inline constexpr size_t kMaxRpcTargetBytes = 256;

// The call in a request body, when it is a JSON-RPC 2.0 request or notification with a
// method of MCP or A2A (above); std::nullopt for anything else.
std::optional<RpcRequest> ParseRpcRequest(std::string_view body);

struct RpcResponse {
  bool found = false;  // a JSON-RPC response (for `id` when given) was read
  bool error = false;  // it has an "error" member
  std::optional<int64_t> error_code;
  std::string error_message;  // at most kMaxErrorMessageBytes (genai/llm.h)
  bool tool_error = false;    // MCP: a result with "isError": true
  std::string task_state;     // A2A: the Task's status.state, lower case without 1.0's
                              // TASK_STATE_ prefix ("completed", "failed" …)
};

// The response to request `id` in a body: one JSON object, a JSON array (batch), or a
// text/event-stream whose events carry JSON-RPC messages (MCP's streamable HTTP may send
// notifications before the response). `content_type` as the header sent it.
RpcResponse ParseRpcResponse(std::string_view content_type, std::string_view body, std::string_view id);

// An A2A agent card (GET /.well-known/agent-card.json, or the older agent.json): its
// "name", at most kMaxRpcTargetBytes; empty when the body is not one.
std::string AgentCardName(std::string_view body);

}  // namespace kspan::genai
