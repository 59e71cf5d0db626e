#include "correlator/agent_spans.h"

#include <optional>
#include <utility>

#include "correlator/unanswered.h"
#include "genai/jsonrpc.h"

namespace kspan::correlator {
namespace {

using protocols::http1::Message;
using protocols::http1::Record;

const std::string* StringAttr(const std::vector<model::Attribute>& attrs, std::string_view key) {
  for (const auto& a : attrs) {
    if (a.key == key) return std::get_if<std::string>(&a.value);
  }
  return nullptr;
}

// "host:port" of the server a CLIENT span called.
std::string ServerKey(const model::Span& span) {
  const std::string* host = span.FindString("server.address");
  const model::AttributeValue* port = span.Find("server.port");
  const int64_t* p = port ? std::get_if<int64_t>(port) : nullptr;
  return (host ? *host : "") + ":" + (p ? std::to_string(*p) : "");
}

bool IsAgentCardPath(std::string_view target) {
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  return path.ends_with("/.well-known/agent-card.json") || path.ends_with("/.well-known/agent.json");
}

template <typename Map, typename Key>
void PutBounded(Map* m, Key key, std::string value, size_t max) {
  if (m->size() >= max && !m->count(key)) m->clear();  // rare: many agents; relearned from cards
  (*m)[std::move(key)] = std::move(value);
}

}  // namespace

AgentSpans::AgentSpans(AgentOptions options, metrics::Registry* metrics)
    : options_(std::move(options)),
      tool_calls_(metrics->GetCounter("kspan_agent_spans_total", {{"kind", "execute_tool"}})),
      agent_calls_(metrics->GetCounter("kspan_agent_spans_total", {{"kind", "invoke_agent"}})) {}

void AgentSpans::NoteLlmCall(uint32_t pid) {
  exit_gen_.erase(pid);  // alive: an older exit entry of this pid is stale
  if (agents_.size() >= kMaxEntries && !agents_.count(pid)) return;  // counted as an ordinary process
  agents_.insert(pid);
}

void AgentSpans::Forget(uint32_t pid) {
  agents_.erase(pid);
  card_by_pid_.erase(pid);
  exit_gen_.erase(pid);
}

void AgentSpans::OnExit(uint32_t pid) {
  if (!agents_.count(pid) && !card_by_pid_.count(pid)) return;
  const uint64_t gen = ++next_exit_gen_;
  exit_gen_[pid] = gen;
  exited_.emplace_back(pid, gen);
  while (exited_.size() > kMaxExited) {
    const auto [old, old_gen] = exited_.front();
    exited_.pop_front();
    auto it = exit_gen_.find(old);
    if (it != exit_gen_.end() && it->second == old_gen) Forget(old);
  }
}

void AgentSpans::OnExec(uint32_t pid) {
  Forget(pid);
}

const AgentRule* AgentSpans::RuleFor(const model::Resource* resource) const {
  if (!resource) return nullptr;
  const std::string* exe = StringAttr(resource->attributes, "process.executable.path");
  const std::string* cmd = StringAttr(resource->attributes, "process.command_line");
  for (const AgentRule& r : options_.rules) {
    if ((exe && exe->find(r.match) != std::string::npos) ||
        (cmd && cmd->find(r.match) != std::string::npos)) {
      return &r;
    }
  }
  return nullptr;
}

std::string AgentSpans::AgentName(uint32_t pid, const model::Resource* resource) const {
  if (auto it = card_by_pid_.find(pid); it != card_by_pid_.end()) return it->second;
  if (const AgentRule* r = RuleFor(resource)) return r->name;
  if (resource) {
    if (const std::string* service = StringAttr(resource->attributes, "service.name")) return *service;
  }
  return "pid " + std::to_string(pid);
}

bool AgentSpans::IsAgent(uint32_t pid, const model::Resource* resource) const {
  return agents_.count(pid) > 0 || RuleFor(resource) != nullptr;
}

std::string AgentSpans::AgentOf(const model::Span& span) const {
  const model::Resource* resource = span.resource.get();
  if (!resource) return "";
  int64_t pid = -1;
  for (const auto& a : resource->attributes) {
    if (a.key == "process.pid") {
      if (const int64_t* p = std::get_if<int64_t>(&a.value)) pid = *p;
    }
  }
  if (pid < 0 || !IsAgent(static_cast<uint32_t>(pid), resource)) return "";
  return AgentName(static_cast<uint32_t>(pid), resource);
}

void AgentSpans::NoteAgentCard(const Record& record, const HttpConnContext& conn, const model::Span& span) {
  if (record.request.method != "GET" || record.response.status_code != 200 ||
      !IsAgentCardPath(record.request.target)) {
    return;
  }
  std::string name = genai::AgentCardName(record.response.body_prefix);
  if (name.empty()) return;
  if (conn.is_server) {
    PutBounded(&card_by_pid_, conn.pid, std::move(name), kMaxEntries);
  } else {
    PutBounded(&card_by_server_, ServerKey(span), std::move(name), kMaxEntries);
  }
}

bool AgentSpans::ApplyRpc(const Record& record, const HttpConnContext& conn, model::Span* span) {
  const Message& rq = record.request;
  if (rq.method != "POST") return false;
  return ApplyRpcCall(rq.body_prefix, record.response.Header("content-type"), record.response.body_prefix,
                      record.response_missing, conn, rq.Header("mcp-session-id"), span);
}

bool AgentSpans::ApplyRpcCall(std::string_view request_body, std::string_view response_type,
                              std::string_view response_body, bool response_missing,
                              const HttpConnContext& conn, std::string_view session, model::Span* span) {
  const std::optional<genai::RpcRequest> call = genai::ParseRpcRequest(request_body);
  if (!call) return false;
  const genai::RpcResponse resp = response_missing
                                      ? genai::RpcResponse{}
                                      : genai::ParseRpcResponse(response_type, response_body, call->id);
  if (!call->id.empty()) span->Set("jsonrpc.request.id", call->id);
  bool failed = false;
  std::string error_type;
  if (resp.error) {
    failed = true;
    error_type = resp.error_code ? std::to_string(*resp.error_code) : "jsonrpc_error";
    span->status_message = resp.error_message;
  }

  if (call->protocol == genai::RpcProtocol::kMcp) {
    span->Set("mcp.method.name", call->method);
    if (!session.empty()) span->Set("mcp.session.id", std::string(session));
    if (call->method == "tools/call") {
      tool_calls_->Add();
      span->name = "execute_tool " + call->target;
      span->Set("gen_ai.operation.name", std::string("execute_tool"));
      span->Set("gen_ai.tool.name", call->target);
      if (!failed && resp.tool_error) {
        failed = true;
        error_type = "tool_error";
      }
    } else {
      span->name = call->target.empty() ? call->method : call->method + " " + call->target;
    }
  } else {
    span->Set("rpc.method", call->method);
    if (call->method == "message/send" || call->method == "message/stream" || call->method == "SendMessage" ||
        call->method == "SendStreamingMessage") {
      agent_calls_->Add();
      std::string agent;
      if (conn.is_server) {
        agent = AgentName(conn.pid, span->resource.get());
      } else if (auto it = card_by_server_.find(ServerKey(*span)); it != card_by_server_.end()) {
        agent = it->second;
      } else {
        const std::string* host = span->FindString("server.address");
        agent = host ? *host : "";
      }
      span->name = "invoke_agent " + agent;
      span->Set("gen_ai.operation.name", std::string("invoke_agent"));
      span->Set("gen_ai.agent.name", agent);
      if (!failed && (resp.task_state == "failed" || resp.task_state == "rejected")) {
        failed = true;
        error_type = "task_" + resp.task_state;
      }
    } else {
      span->name = call->method;
    }
  }
  if (failed) {
    span->status_code = model::StatusCode::kError;
    span->Set("error.type", error_type);
  }
  return true;
}

model::Span AgentSpans::BuildLocalCall(const protocols::jsonrpc::Call& call, uint32_t pid,
                                       std::string_view transport,
                                       std::shared_ptr<const model::Resource> resource) {
  model::Span span;
  span.trace_id = model::TraceId::Random();
  span.span_id = model::SpanId::Random();
  span.kind = call.outgoing ? model::SpanKind::kClient : model::SpanKind::kServer;
  span.start_time_unix_nano = call.request_timing.start_ns;
  span.end_time_unix_nano = call.response_missing ? call.request_timing.end_ns : call.response_timing.end_ns;
  span.resource = std::move(resource);
  span.name = "jsonrpc";
  span.attributes.push_back({"network.transport", std::string(transport)});
  HttpConnContext conn;
  conn.is_server = !call.outgoing;
  conn.pid = pid;
  ApplyRpcCall(call.request, "application/json", call.response, call.response_missing, conn, "", &span);
  if (call.response_missing) MarkUnanswered(call.unanswered, &span);
  return span;
}

bool AgentSpans::Apply(const Record& record, const HttpConnContext& conn, model::Span* span) {
  NoteAgentCard(record, conn, *span);
  if (ApplyRpc(record, conn, span)) return true;
  if (!conn.is_server || !IsAgent(conn.pid, span->resource.get())) return false;
  // An agent's incoming task.
  agent_calls_->Add();
  const std::string agent = AgentName(conn.pid, span->resource.get());
  span->name = "invoke_agent " + agent;
  span->Set("gen_ai.operation.name", std::string("invoke_agent"));
  span->Set("gen_ai.agent.name", agent);
  return true;
}

}  // namespace kspan::correlator
