#include "genai/jsonrpc.h"

#include <algorithm>
#include <array>
#include <utility>

#include "genai/json.h"
#include "genai/llm.h"
#include "genai/sse.h"

namespace kspan::genai {
namespace {

// "server/discover": MCP 2026-07-28's request for what a server offers (it replaced the
// handshake).
constexpr std::array<std::string_view, 9> kMcpExact = {"initialize",       "ping",
                                                       "tools/list",       "tools/call",
                                                       "roots/list",       "completion/complete",
                                                       "logging/setLevel", "sampling/createMessage",
                                                       "server/discover"};
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

// A2A 0.3's JSON-RPC method names as A2A 1.0's operations (the conventions' a2a.method.name).
constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kA2a03Names = {{
    {"message/send", "SendMessage"},
    {"message/stream", "SendStreamingMessage"},
    {"tasks/get", "GetTask"},
    {"tasks/cancel", "CancelTask"},
    {"tasks/resubscribe", "SubscribeToTask"},
    {"tasks/pushNotificationConfig/set", "CreateTaskPushNotificationConfig"},
    {"tasks/pushNotificationConfig/get", "GetTaskPushNotificationConfig"},
    {"tasks/pushNotificationConfig/list", "ListTaskPushNotificationConfigs"},
    {"tasks/pushNotificationConfig/delete", "DeleteTaskPushNotificationConfig"},
    {"agent/getAuthenticatedExtendedCard", "GetExtendedAgentCard"},
}};

// The object of an A2A answer or stream event that names the task: a Task (0.3's result,
// 1.0's GetTask), {"task": Task}, {"statusUpdate": …}, {"artifactUpdate": …},
// {"message": Message}, or a 0.3 event (status-update, artifact-update, message) itself.
void ReadA2aResult(json::Value result, RpcResponse* out) {
  json::Value holder = result;
  for (std::string_view k : {"task", "statusUpdate", "artifactUpdate", "message"}) {
    if (json::Value v = result.Find(k); v.type() == json::Type::kObject) {
      holder = v;
      break;
    }
  }
  // A Task says its id in "id"; events and messages in "taskId".
  std::string_view id = holder.Find("taskId").AsString().value_or("");
  if (id.empty() && holder.Find("status")) id = holder.Find("id").AsString().value_or("");
  if (out->task_id.empty()) out->task_id = Bounded(id, kMaxRpcTargetBytes);
  if (out->context_id.empty()) {
    out->context_id = Bounded(holder.Find("contextId").AsString().value_or(""), kMaxRpcTargetBytes);
  }
  std::string_view s = holder.At({"status", "state"}).AsString().value_or("");
  if (s.empty()) return;  // a stream's later event may say nothing of the state
  if (s.starts_with("TASK_STATE_")) s.remove_prefix(11);
  out->task_state.clear();
  for (char c : s.substr(0, kMaxRpcTargetBytes))
    out->task_state += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c == '_' ? '-' : c);
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
  out->tool_error = out->tool_error || result.Find("isError").AsBool().value_or(false);
  if (out->protocol_version.empty()) {
    out->protocol_version =
        Bounded(result.Find("protocolVersion").AsString().value_or(""), kMaxRpcTargetBytes);
  }
  ReadA2aResult(result, out);
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

// FNV-1a over a value's type, member names and scalar values, in text order.
void HashValue(json::Value v, uint64_t* h, int depth) {
  auto mix = [h](std::string_view bytes) {
    for (unsigned char c : bytes) *h = (*h ^ c) * 1099511628211ULL;
    *h = (*h ^ 0xff) * 1099511628211ULL;  // a separator: "ab","c" is not "a","bc"
  };
  const char tag = static_cast<char>('0' + static_cast<int>(v.type()));
  mix(std::string_view(&tag, 1));
  if (depth > 32) return;  // deeper is the same call for this purpose
  if (auto s = v.AsString()) {
    mix(*s);
  } else if (auto b = v.AsBool()) {
    mix(*b ? "t" : "f");
  } else if (!v.raw_number().empty()) {
    mix(v.raw_number());
  }
  for (json::Value c : v.children()) {
    mix(c.key());
    HashValue(c, h, depth + 1);
  }
}

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// "{id}" of ".../tasks/{id}[:verb]".
std::string_view TaskIdInPath(std::string_view path) {
  const size_t at = path.rfind("/tasks/");
  if (at == std::string_view::npos) return {};
  std::string_view id = path.substr(at + 7);
  return id.substr(0, std::min(id.find(':'), id.find('/')));
}

// The message of an A2A send: its ids.
void ReadA2aMessage(json::Value params, RpcRequest* r) {
  json::Value message = params.Find("message");
  r->message_id = Bounded(message.Find("messageId").AsString().value_or(""), kMaxRpcTargetBytes);
  r->task_id = Bounded(message.Find("taskId").AsString().value_or(""), kMaxRpcTargetBytes);
  r->context_id = Bounded(message.Find("contextId").AsString().value_or(""), kMaxRpcTargetBytes);
}

}  // namespace

std::optional<RpcRequest> ParseRpcRequest(std::string_view body, const RpcHeaders& headers) {
  const json::Document doc = json::ParsePrefix(body);
  json::Value msg = FirstMessage(doc.root());
  const bool jsonrpc = msg.Find("jsonrpc").AsString() == std::optional<std::string_view>("2.0");
  std::optional<std::string_view> method = msg.Find("method").AsString();
  const bool by_header = !headers.mcp_method.empty();
  if (!by_header && (!jsonrpc || !method)) return std::nullopt;
  // A body read (or cut) without a method: the header names the call.
  if (!method || !jsonrpc) method = headers.mcp_method;
  const std::optional<RpcProtocol> protocol = by_header ? RpcProtocol::kMcp : ProtocolOf(*method);
  if (!protocol) return std::nullopt;
  RpcRequest r;
  r.protocol = *protocol;
  r.method = Bounded(*method, kMaxRpcTargetBytes);
  r.id = IdText(msg.Find("id"));
  json::Value params = msg.Find("params");
  if (r.protocol == RpcProtocol::kA2a) {
    r.a2a_method = r.method;
    r.a2a_version = "1.0";
    for (const auto& [old_name, name] : kA2a03Names) {
      if (r.method == old_name) {
        r.a2a_method = std::string(name);
        r.a2a_version = "0.3";
      }
    }
    ReadA2aMessage(params, &r);
    if (r.task_id.empty()) {
      std::string_view id = params.Find("id").AsString().value_or("");
      if (id.empty()) id = TaskIdInPath(params.Find("name").AsString().value_or(""));
      r.task_id = Bounded(id, kMaxRpcTargetBytes);
    }
    return r;
  }
  if (r.method == "tools/call" || r.method == "prompts/get") {
    r.target = Bounded(params.Find("name").AsString().value_or(""), kMaxRpcTargetBytes);
    if (json::Value args = params.Find("arguments")) {
      r.arguments_hash = 14695981039346656037ULL;
      HashValue(args, &r.arguments_hash, 0);
    }
    r.target_kind =
        r.method == "tools/call" ? RpcRequest::TargetKind::kTool : RpcRequest::TargetKind::kPrompt;
  } else if (r.method == "resources/read" || r.method == "resources/subscribe" ||
             r.method == "resources/unsubscribe" || r.method == "notifications/resources/updated") {
    r.target = Bounded(params.Find("uri").AsString().value_or(""), kMaxRpcTargetBytes);
    r.target_kind = RpcRequest::TargetKind::kResource;
  }
  if (r.target.empty() && r.target_kind != RpcRequest::TargetKind::kNone) {
    r.target = Bounded(headers.mcp_name, kMaxRpcTargetBytes);
  }
  json::Value meta = params.Find("_meta");
  r.protocol_version = Bounded(meta.Find("io.modelcontextprotocol/protocolVersion").AsString().value_or(""),
                               kMaxRpcTargetBytes);
  if (r.protocol_version.empty() && r.method == "initialize") {
    r.protocol_version = Bounded(params.Find("protocolVersion").AsString().value_or(""), kMaxRpcTargetBytes);
  }
  // W3C: a traceparent is 55 characters; a tracestate at most 32 list members.
  r.traceparent = Bounded(meta.Find("traceparent").AsString().value_or(""), 64);
  if (!r.traceparent.empty()) r.tracestate = Bounded(meta.Find("tracestate").AsString().value_or(""), 1024);
  return r;
}

RpcResponse ParseRpcResponse(std::string_view content_type, std::string_view body, std::string_view id) {
  RpcResponse out;
  if (content_type.find("text/event-stream") != std::string_view::npos) {
    // Every event of the answer: MCP may send notifications first; an A2A stream sends
    // the task's updates, its last state last. An error ends it.
    SseReader reader(body);
    SseEvent event;
    while (reader.Next(&event)) {
      ReadMessages(event.data, id, &out);
      if (out.error) break;
    }
    return out;
  }
  ReadMessages(body, id, &out);
  return out;
}

std::optional<RpcRequest> ParseA2aRestRequest(std::string_view method, std::string_view target,
                                              std::string_view body, std::string_view a2a_version) {
  const std::string_view path = PathOf(target);
  // The operation first: most requests are none, and refusing them builds no RpcRequest
  // (the suffix tests before the search for "/tasks/", which reads the whole path).
  std::string_view a2a_method;
  if (method == "POST" && (path.ends_with("/message:send") || path == "message:send")) {
    a2a_method = "SendMessage";
  } else if (method == "POST" && (path.ends_with("/message:stream") || path == "message:stream")) {
    a2a_method = "SendStreamingMessage";
  } else if (method == "POST" && path.ends_with(":cancel") &&
             path.find("/tasks/") != std::string_view::npos) {
    a2a_method = "CancelTask";
  } else if ((method == "GET" || method == "POST") && path.ends_with(":subscribe") &&
             path.find("/tasks/") != std::string_view::npos) {
    a2a_method = "SubscribeToTask";
  } else if (method == "GET" && !a2a_version.empty() && path.find("/tasks/") != std::string_view::npos &&
             !TaskIdInPath(path).empty()) {
    a2a_method = "GetTask";
  } else {
    return std::nullopt;
  }
  RpcRequest r;
  r.protocol = RpcProtocol::kA2a;
  r.a2a_method = a2a_method;
  r.method = r.a2a_method;
  // 0.3's HTTP+JSON paths sit under /v1/; 1.0 says its version in the A2A-Version header.
  r.a2a_version = !a2a_version.empty()                          ? Bounded(a2a_version, 16)
                  : path.find("/v1/") != std::string_view::npos ? "0.3"
                                                                : "";
  const json::Document doc = json::ParsePrefix(body);
  // 1.0 sends the SendMessageRequest ({"message": …}); 0.3 the MessageSendParams, alike.
  ReadA2aMessage(doc.root(), &r);
  if (r.task_id.empty()) r.task_id = Bounded(TaskIdInPath(path), kMaxRpcTargetBytes);
  return r;
}

RpcResponse ParseA2aRestResponse(std::string_view content_type, std::string_view body) {
  RpcResponse out;
  auto read = [&out](std::string_view text) {
    const json::Document doc = json::ParsePrefix(text);
    if (doc.root().type() != json::Type::kObject) return;
    out.found = true;
    ReadA2aResult(doc.root(), &out);
  };
  if (content_type.find("text/event-stream") != std::string_view::npos) {
    SseReader reader(body);
    SseEvent event;
    while (reader.Next(&event)) read(event.data);
    return out;
  }
  read(body);
  return out;
}

std::string A2aTaskState(std::string_view state) {
  if (state.empty()) return "";
  std::string out = "TASK_STATE_";
  if (state.starts_with("TASK_STATE_")) state.remove_prefix(11);
  for (char c : state.substr(0, kMaxRpcTargetBytes))
    out += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c == '-' ? '_' : c);
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
