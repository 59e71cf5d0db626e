#include "genai/jsonrpc.h"

#include <array>

#include "genai/json.h"
#include "genai/llm.h"
#include "genai/sse.h"

namespace kspan::genai {
namespace {

constexpr std::array<std::string_view, 8> kMcpExact = {"initialize",       "ping",
                                                       "tools/list",       "tools/call",
                                                       "roots/list",       "completion/complete",
                                                       "logging/setLevel", "sampling/createMessage"};
constexpr std::array<std::string_view, 4> kMcpPrefixes = {"resources/", "prompts/", "notifications/",
                                                          "elicitation/"};
// A2A 0.3 names, then A2A 1.0's.
constexpr std::array<std::string_view, 13> kA2aExact = {"message/send",
                                                        "message/stream",
                                                        "agent/getAuthenticatedExtendedCard",
                                                        "SendMessage",
                                                        "SendStreamingMessage",
                                                        "GetTask",
                                                        "ListTasks",
                                                        "CancelTask",
                                                        "SubscribeToTask",
                                                        "GetExtendedAgentCard",
                                                        "CreateTaskPushNotificationConfig",
                                                        "GetTaskPushNotificationConfig",
                                                        "DeleteTaskPushNotificationConfig"};
constexpr std::string_view kA2aTasks = "tasks/";

std::optional<RpcProtocol> ProtocolOf(std::string_view method) {
  for (std::string_view m : kA2aExact) {
    if (method == m) return RpcProtocol::kA2a;
  }
  if (method.starts_with(kA2aTasks)) return RpcProtocol::kA2a;
  for (std::string_view m : kMcpExact) {
    if (method == m) return RpcProtocol::kMcp;
  }
  for (std::string_view p : kMcpPrefixes) {
    if (method.starts_with(p)) return RpcProtocol::kMcp;
  }
  return std::nullopt;
}

std::string Bounded(std::string_view s, size_t n) {
  return std::string(s.substr(0, n));
}

// A JSON-RPC id as text: a string's value, a number's digits; empty when absent or null.
std::string IdText(json::Value id) {
  if (auto s = id.AsString()) return Bounded(*s, kMaxRpcTargetBytes);
  return std::string(id.raw_number());
}

// The first call of a message: the object itself, or a batch's first element.
json::Value FirstMessage(json::Value root) {
  if (root.type() == json::Type::kArray) {
    for (json::Value v : root.children()) return v;
    return {};
  }
  return root;
}

// Reads `msg` into `out` when it is the response to `id` (any response when id is empty).
bool ReadResponse(json::Value msg, std::string_view id, RpcResponse* out) {
  if (msg.type() != json::Type::kObject || msg.Find("method")) return false;
  json::Value result = msg.Find("result");
  json::Value error = msg.Find("error");
  if (!result && !error) return false;
  if (!id.empty() && IdText(msg.Find("id")) != id) return false;
  out->found = true;
  if (error) {
    out->error = true;
    out->error_code = error.Find("code").AsInt64();
    out->error_message = Bounded(error.Find("message").AsString().value_or(""), kMaxErrorMessageBytes);
    return true;
  }
  out->tool_error = result.Find("isError").AsBool().value_or(false);
  // A2A 0.3: the result is the Task ("failed"); 1.0: {"task": {…}} ("TASK_STATE_FAILED").
  json::Value state = result.At({"status", "state"});
  if (!state) state = result.At({"task", "status", "state"});
  std::string_view s = state.AsString().value_or("");
  if (s.starts_with("TASK_STATE_")) s.remove_prefix(11);
  out->task_state.clear();
  for (char c : s.substr(0, kMaxRpcTargetBytes))
    out->task_state += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return true;
}

bool ReadMessages(std::string_view text, std::string_view id, RpcResponse* out) {
  const json::Document doc = json::ParsePrefix(text);
  json::Value root = doc.root();
  if (root.type() == json::Type::kArray) {
    for (json::Value v : root.children()) {
      if (ReadResponse(v, id, out)) return true;
    }
    return false;
  }
  return ReadResponse(root, id, out);
}

}  // namespace

std::optional<RpcRequest> ParseRpcRequest(std::string_view body) {
  const json::Document doc = json::ParsePrefix(body);
  json::Value msg = FirstMessage(doc.root());
  if (msg.Find("jsonrpc").AsString() != std::optional<std::string_view>("2.0")) return std::nullopt;
  const std::optional<std::string_view> method = msg.Find("method").AsString();
  if (!method) return std::nullopt;
  const std::optional<RpcProtocol> protocol = ProtocolOf(*method);
  if (!protocol) return std::nullopt;
  RpcRequest r;
  r.protocol = *protocol;
  r.method = Bounded(*method, kMaxRpcTargetBytes);
  r.id = IdText(msg.Find("id"));
  if (r.protocol == RpcProtocol::kMcp) {
    json::Value params = msg.Find("params");
    if (r.method == "tools/call" || r.method == "prompts/get") {
      r.target = Bounded(params.Find("name").AsString().value_or(""), kMaxRpcTargetBytes);
    } else if (r.method == "resources/read" || r.method.starts_with("resources/subscribe")) {
      r.target = Bounded(params.Find("uri").AsString().value_or(""), kMaxRpcTargetBytes);
    }
  }
  return r;
}

RpcResponse ParseRpcResponse(std::string_view content_type, std::string_view body, std::string_view id) {
  RpcResponse out;
  if (content_type.find("text/event-stream") != std::string_view::npos) {
    SseReader reader(body);
    SseEvent event;
    while (reader.Next(&event)) {
      if (ReadMessages(event.data, id, &out)) break;
    }
    return out;
  }
  ReadMessages(body, id, &out);
  return out;
}

std::string AgentCardName(std::string_view body) {
  const json::Document doc = json::ParsePrefix(body);
  json::Value root = doc.root();
  // A card names the agent and says where it is served.
  if (!root.Find("url") && !root.Find("supportedInterfaces") && !root.Find("skills")) return "";
  return Bounded(root.Find("name").AsString().value_or(""), kMaxRpcTargetBytes);
}

}  // namespace kspan::genai
