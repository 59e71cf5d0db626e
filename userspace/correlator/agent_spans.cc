#include "correlator/agent_spans.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/log.h"
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

// The conventions' explicit bucket boundaries for mcp.{client,server}.operation.duration.
const std::vector<double> kMcpSecondsBuckets = {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1,
                                                2,    5,    10,   30,  60,  120, 300};

template <typename Map, typename Key>
void PutBounded(Map* m, Key key, std::string value, size_t max) {
  if (m->size() >= max && !m->count(key)) m->clear();  // rare: many agents; relearned from cards
  (*m)[std::move(key)] = std::move(value);
}

}  // namespace

AgentSpans::AgentSpans(AgentOptions options, metrics::Registry* metrics)
    : options_(std::move(options)),
      metrics_(metrics),
      tool_calls_(metrics->GetCounter("kspan_agent_spans_total", {{"kind", "execute_tool"}})),
      agent_calls_(metrics->GetCounter("kspan_agent_spans_total", {{"kind", "invoke_agent"}})),
      tool_calls_linked_(metrics->GetCounter("kspan_agent_tool_calls_total", {{"outcome", "linked"}})),
      tool_calls_unlinked_(metrics->GetCounter("kspan_agent_tool_calls_total", {{"outcome", "unlinked"}})) {}

void AgentSpans::Alert(std::string_view kind, const std::string& agent, uint32_t pid, model::Span* span,
                       std::vector<model::Attribute> extra) {
  // By agent and session (the agent process's pid, as kspan_genai_cost_usd names it): one
  // series an alerted process and kind, and each kind alerts once a process (a pair).
  metrics_
      ->GetCounter("kspan_agent_loops_total", metrics_->Redacted({{"kind", std::string(kind)},
                                                                  {"gen_ai_agent_name", agent},
                                                                  {"kspan_session", std::to_string(pid)}}))
      ->Add();
  model::SpanEvent event{"kspan.agent.loop",
                         span->start_time_unix_nano,
                         {{"kspan.agent.loop.kind", std::string(kind)},
                          {"gen_ai.agent.name", agent},
                          {"process.pid", int64_t{pid}}}};
  for (auto& a : extra) event.attributes.push_back(std::move(a));
  span->events.push_back(std::move(event));
}

void AgentSpans::CheckLoop(const genai::RpcRequest& call, uint32_t pid, model::Span* span) {
  const uint32_t threshold = options_.loop_repeated_tool_calls;
  if (threshold == 0) return;
  if (repeats_.size() >= kMaxEntries && !repeats_.count(pid)) return;
  auto& counts = repeats_[pid];
  if (counts.size() >= 256) counts.clear();
  const uint64_t key = std::hash<std::string>{}(call.target) * 31 + call.arguments_hash;
  const uint32_t n = ++counts[key];
  if (n != threshold) return;
  const std::string agent = AgentName(pid, span->resource.get());
  Alert("repeated_tool_call", agent, pid, span,
        {{"gen_ai.tool.name", call.target}, {"kspan.agent.loop.count", int64_t{n}}});
  log::Warn("agent loop", {{"kind", "repeated_tool_call"},
                           {"agent", agent},
                           {"pid", uint64_t{pid}},
                           {"tool", call.target},
                           {"count", uint64_t{n}}});
}

void AgentSpans::CheckPingPong(const std::string& from, const std::string& to, uint32_t pid,
                               model::Span* span) {
  const uint32_t threshold = options_.loop_ping_pong;
  if (threshold == 0 || from.empty() || to.empty() || from == to) return;
  const auto key = from < to ? std::make_pair(from, to) : std::make_pair(to, from);
  if (ping_pong_.size() >= kMaxEntries && !ping_pong_.count(key)) ping_pong_.clear();  // rare; relearned
  PingPong& p = ping_pong_[key];
  if (p.last_sender.empty() || p.last_sender != from) {
    ++p.alternations;  // the first send, or the other way round from the last
  } else {
    p.alternations = 1;  // the same way again: a fan-out, not a ping-pong
  }
  p.last_sender = from;
  if (p.alerted || p.alternations < threshold) return;
  p.alerted = true;
  Alert("ping_pong", from, pid, span,
        {{"kspan.agent.loop.peer", to}, {"kspan.agent.loop.count", int64_t{p.alternations}}});
  log::Warn("agent loop", {{"kind", "ping_pong"},
                           {"agent", from},
                           {"pid", uint64_t{pid}},
                           {"peer", to},
                           {"count", uint64_t{p.alternations}}});
}

void AgentSpans::NoteTokens(uint32_t pid, uint64_t tokens, uint64_t end_ns, model::Span* span) {
  const uint64_t budget = options_.token_budget_per_minute;
  if (budget == 0 || tokens == 0) return;
  if (tokens_.size() >= kMaxEntries && !tokens_.count(pid)) return;  // rare: many agents at once
  TokenWindow& w = tokens_[pid];
  // Calls arrive about in end order; one that ended earlier than the newest still counts.
  while (!w.calls.empty() &&
         (w.calls.front().first + kTokenWindowNs < end_ns || w.calls.size() >= kMaxTokenCallsPerProcess)) {
    w.sum -= w.calls.front().second;
    w.calls.pop_front();
  }
  w.calls.emplace_back(end_ns, tokens);
  w.sum += tokens;
  if (w.alerted || w.sum <= budget) return;
  w.alerted = true;
  const std::string agent = AgentName(pid, span->resource.get());
  Alert("token_velocity", agent, pid, span,
        {{"kspan.agent.loop.tokens", static_cast<int64_t>(w.sum)},
         {"kspan.agent.loop.budget", static_cast<int64_t>(budget)}});
  log::Warn("agent loop", {{"kind", "token_velocity"},
                           {"agent", agent},
                           {"pid", uint64_t{pid}},
                           {"tokens", w.sum},
                           {"budget", budget}});
}

void AgentSpans::DropAsked(uint32_t pid) {
  in_flight_.erase(pid);
  ran_.erase(pid);
  results_early_.erase(pid);
  auto it = asked_.find(pid);
  if (it == asked_.end()) return;
  tool_calls_unlinked_->Add(it->second.size());
  asked_.erase(it);
}

void AgentSpans::NoteClientRequest(uint32_t pid, const NodeKey& request, uint64_t start_ns) {
  if (in_flight_.size() >= kMaxEntries && !in_flight_.count(pid)) return;  // rare: then no run waits
  auto& q = in_flight_[pid];
  if (q.size() >= kMaxInFlightPerProcess) q.pop_front();  // a request that never got a record
  q.push_back({request, start_ns});
}

void AgentSpans::NoteClientDone(uint32_t pid, const NodeKey& request) {
  auto it = in_flight_.find(pid);
  if (it == in_flight_.end()) return;
  std::erase_if(it->second, [&](const InFlight& f) { return f.request == request; });
  if (it->second.empty()) in_flight_.erase(it);
}

AgentSpans::ToolRunLink AgentSpans::LinkToolRun(uint32_t pid, const NodeKey& run, bool final,
                                                model::Span* span, std::vector<NodeLink>* links,
                                                std::vector<std::pair<NodeKey, NodeLink>>* late) {
  const std::string* tool = span->FindString("gen_ai.tool.name");
  if (!tool) return ToolRunLink::kNone;
  const uint64_t start = span->start_time_unix_nano;
  // Of the calls waiting for this tool, one of the last answer that came before the run
  // started (the first such: calls run in the order asked, as a rule).
  auto it = asked_.find(pid);
  std::deque<Asked>::iterator match;
  bool found = false;
  if (it != asked_.end()) {
    for (auto w = it->second.begin(); w != it->second.end(); ++w) {
      if (w->call.name != *tool || w->at_ns > start) continue;
      if (!found || w->at_ns > match->at_ns) match = w;
      found = true;
    }
  }
  if (!final) {
    // A request sent after the best answer found (or any, with none) and before the run,
    // still unanswered, may be the LLM call that asked for this run: wait for it.
    const uint64_t after = found ? match->at_ns : 0;
    if (auto f = in_flight_.find(pid); f != in_flight_.end()) {
      for (const InFlight& r : f->second) {
        if (r.request != run && r.start_ns >= after && r.start_ns <= start &&
            r.start_ns + kInFlightMaxNs >= start) {
          return ToolRunLink::kWait;
        }
      }
    }
  }
  if (!found) return ToolRunLink::kNone;
  const std::string id = match->call.id;
  if (!id.empty()) {
    span->Set("gen_ai.tool.call.id", id);
    // An LLM call already sent this run's result back: it links here now; else the next
    // one that does will.
    auto early = results_early_.find(pid);
    auto sent = early == results_early_.end() ? std::deque<ResultSent>::iterator{}
                                              : std::find_if(early->second.begin(), early->second.end(),
                                                             [&](const ResultSent& r) { return r.id == id; });
    if (early != results_early_.end() && sent != early->second.end()) {
      if (late) {
        late->push_back(
            {sent->request,
             {run, {{"kspan.link.kind", std::string("tool_result")}, {"gen_ai.tool.call.id", id}}}});
      }
      early->second.erase(sent);
      if (early->second.empty()) results_early_.erase(early);
    } else {
      auto& ran = ran_[pid];
      if (ran.size() >= kMaxAskedPerProcess) ran.pop_front();
      ran.push_back({id, run});
    }
  }
  std::vector<model::Attribute> attributes = {{"kspan.link.kind", std::string("tool_call")}};
  if (!id.empty()) attributes.push_back({"gen_ai.tool.call.id", id});
  links->push_back({match->llm, std::move(attributes)});
  tool_calls_linked_->Add();
  it->second.erase(match);
  if (it->second.empty()) asked_.erase(it);
  return ToolRunLink::kLinked;
}

void AgentSpans::LinkToolResults(uint32_t pid, const NodeKey& request, const std::vector<std::string>& ids,
                                 std::vector<NodeLink>* links) {
  auto it = ran_.find(pid);
  for (const std::string& id : ids) {
    if (it != ran_.end()) {
      auto r = std::find_if(it->second.begin(), it->second.end(), [&](const Ran& x) { return x.id == id; });
      if (r != it->second.end()) {
        links->push_back(
            {r->run, {{"kspan.link.kind", std::string("tool_result")}, {"gen_ai.tool.call.id", r->id}}});
        it->second.erase(r);
        continue;
      }
    }
    // Not run yet as far as kspan knows: a call still waiting for its run (its record is on
    // its way) is remembered with the first request that sent its result. A result of a
    // run linked earlier (the history resent) or of no call asked is not.
    auto waiting = asked_.find(pid);
    if (waiting == asked_.end() || std::none_of(waiting->second.begin(), waiting->second.end(),
                                                [&](const Asked& a) { return a.call.id == id; })) {
      continue;
    }
    if (results_early_.size() >= kMaxEntries && !results_early_.count(pid)) continue;
    auto& early = results_early_[pid];
    if (std::any_of(early.begin(), early.end(), [&](const ResultSent& r) { return r.id == id; })) continue;
    if (early.size() >= kMaxAskedPerProcess) early.pop_front();
    early.push_back({id, request});
  }
  if (it != ran_.end() && it->second.empty()) ran_.erase(it);
}

std::vector<std::pair<genai::ToolCallAsked, uint64_t>> AgentSpans::Unrun(uint32_t pid, size_t max) const {
  std::vector<std::pair<genai::ToolCallAsked, uint64_t>> out;
  auto it = asked_.find(pid);
  if (it == asked_.end()) return out;
  for (const Asked& a : it->second) {
    if (out.size() >= max) break;
    out.emplace_back(a.call, a.at_ns);
  }
  return out;
}

void AgentSpans::NoteToolCallsAsked(uint32_t pid, std::vector<genai::ToolCallAsked> asked, uint64_t at_ns,
                                    const NodeKey& llm) {
  if (asked.empty()) return;
  if (asked_.size() >= kMaxEntries && !asked_.count(pid)) {  // rare: many agents waiting at once
    tool_calls_unlinked_->Add(asked.size());
    return;
  }
  auto& waiting = asked_[pid];
  for (auto& a : asked) {
    if (waiting.size() >= kMaxAskedPerProcess) {  // the oldest call waiting was not seen run
      waiting.pop_front();
      tool_calls_unlinked_->Add();
    }
    waiting.push_back({std::move(a), at_ns, llm});
  }
}

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

void AgentSpans::ForgetMcpVersions(uint32_t pid) {
  mcp_version_by_channel_.erase(mcp_version_by_channel_.lower_bound({pid, 0}),
                                mcp_version_by_channel_.upper_bound({pid, UINT64_MAX}));
}

void AgentSpans::OnExit(uint32_t pid) {
  ForgetMcpVersions(pid);
  DropAsked(pid);
  repeats_.erase(pid);
  tokens_.erase(pid);
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
  ForgetMcpVersions(pid);
  DropAsked(pid);
  repeats_.erase(pid);
  tokens_.erase(pid);
}

const AgentRule* AgentSpans::RuleFor(const model::Resource* resource) const {
  if (!resource || options_.rules.empty()) return nullptr;
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
  if (record.request.method() != "GET" || record.response.status_code != 200 ||
      !IsAgentCardPath(record.request.target())) {
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
  const bool post = rq.method() == "POST";
  if (!post && rq.method() != "GET") return false;
  // The headers are read only for a call: most requests are none (every GET that is not
  // an A2A task's is refused by ParseA2aRestRequest on its path alone).
  const std::string_view a2a_version = rq.Header("a2a-version");
  const auto transport = [&] {
    return RpcTransport{.session = rq.Header("mcp-session-id"),
                        .protocol_version = rq.Header("mcp-protocol-version"),
                        .headers = {.mcp_method = rq.Header("mcp-method"), .mcp_name = rq.Header("mcp-name")},
                        .network_transport = "tcp",
                        .local = false,
                        .channel = 0,
                        .a2a_version = a2a_version};
  };
  if (post && ApplyRpcCall(rq.body_prefix, record.response.Header("content-type"),
                           record.response.body_prefix, record.response_missing, conn, transport(), span)) {
    return true;
  }
  // A2A's HTTP+JSON binding: the operation is in the path, the body is the result.
  const std::optional<genai::RpcRequest> rest =
      genai::ParseA2aRestRequest(rq.method(), rq.target(), rq.body_prefix, a2a_version);
  if (!rest) return false;
  const genai::RpcResponse resp =
      record.response_missing
          ? genai::RpcResponse{}
          : genai::ParseA2aRestResponse(record.response.Header("content-type"), record.response.body_prefix);
  ApplyCall(*rest, resp, conn, transport(), span);
  return true;
}

bool AgentSpans::ApplyRpcCall(std::string_view request_body, std::string_view response_type,
                              std::string_view response_body, bool response_missing,
                              const HttpConnContext& conn, const RpcTransport& transport, model::Span* span) {
  const std::optional<genai::RpcRequest> call = genai::ParseRpcRequest(request_body, transport.headers);
  if (!call) return false;
  const genai::RpcResponse resp = response_missing
                                      ? genai::RpcResponse{}
                                      : genai::ParseRpcResponse(response_type, response_body, call->id);
  ApplyCall(*call, resp, conn, transport, span);
  return true;
}

void AgentSpans::ApplyCall(const genai::RpcRequest& request, const genai::RpcResponse& resp,
                           const HttpConnContext& conn, const RpcTransport& transport, model::Span* span) {
  const genai::RpcRequest* call = &request;
  if (!call->id.empty()) span->Set("jsonrpc.request.id", call->id);
  bool failed = false;
  std::string error_type;
  if (resp.error) {
    failed = true;
    error_type = resp.error_code ? std::to_string(*resp.error_code) : "jsonrpc_error";
    span->status_message = resp.error_message;
    if (resp.error_code) span->Set("rpc.response.status_code", std::to_string(*resp.error_code));
  }

  if (call->protocol == genai::RpcProtocol::kMcp) {
    span->Set("mcp.method.name", call->method);
    if (!transport.session.empty()) span->Set("mcp.session.id", std::string(transport.session));
    const std::string version = McpVersion(*call, resp, transport, conn.pid);
    if (!version.empty()) span->Set("mcp.protocol.version", version);
    if (call->target_kind == genai::RpcRequest::TargetKind::kPrompt && !call->target.empty()) {
      span->Set("gen_ai.prompt.name", call->target);
    } else if (call->target_kind == genai::RpcRequest::TargetKind::kResource && !call->target.empty()) {
      span->Set("mcp.resource.uri", call->target);
    }
    if (call->method == "tools/call") {
      tool_calls_->Add();
      span->name = "execute_tool " + call->target;
      span->Set("gen_ai.operation.name", std::string("execute_tool"));
      span->Set("gen_ai.tool.name", call->target);
      if (!conn.is_server) CheckLoop(*call, conn.pid, span);
      if (!failed && resp.tool_error) {
        failed = true;
        error_type = "tool_error";
      }
    } else if (call->target_kind == genai::RpcRequest::TargetKind::kPrompt && !call->target.empty()) {
      span->name = call->method + " " + call->target;
    } else {
      // A resource's URI is not a low-cardinality target: it is an attribute only.
      span->name = call->method;
    }
  } else {
    span->Set("rpc.method", call->method);
    span->Set("a2a.method.name", call->a2a_method);
    const std::string version =
        !transport.a2a_version.empty() ? std::string(transport.a2a_version.substr(0, 16)) : call->a2a_version;
    if (!version.empty()) span->Set("a2a.protocol.version", version);
    if (!call->message_id.empty()) span->Set("a2a.message.id", call->message_id);
    const std::string& task = !call->task_id.empty() ? call->task_id : resp.task_id;
    if (!task.empty()) span->Set("a2a.task.id", task);
    if (!resp.task_state.empty()) span->Set("a2a.task.state", genai::A2aTaskState(resp.task_state));
    const std::string& context = !call->context_id.empty() ? call->context_id : resp.context_id;
    if (!context.empty()) span->Set("gen_ai.conversation.id", context);
    if (call->a2a_method == "SendMessage" || call->a2a_method == "SendStreamingMessage") {
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
      if (!conn.is_server && IsAgent(conn.pid, span->resource.get()))
        CheckPingPong(AgentName(conn.pid, span->resource.get()), agent, conn.pid, span);
      if (!failed && (resp.task_state == "failed" || resp.task_state == "rejected")) {
        failed = true;
        error_type = "task_" + resp.task_state;
      }
    } else {
      span->name = call->a2a_method;  // the conventions' A2A span name
    }
  }
  if (failed) {
    span->status_code = model::StatusCode::kError;
    span->Set("error.type", error_type);
  }
  if (call->protocol == genai::RpcProtocol::kMcp) {
    RecordMcpDuration(*span, conn.is_server, transport.network_transport, call->method,
                      failed ? error_type : "");
  }
}

std::string AgentSpans::McpVersion(const genai::RpcRequest& call, const genai::RpcResponse& resp,
                                   const RpcTransport& transport, uint32_t pid) {
  // The handshake's answer says what was agreed; a stdio session has no header to repeat
  // it, so it is remembered for the process's later calls.
  if (call.method == "initialize") {
    std::string agreed = !resp.protocol_version.empty() ? resp.protocol_version : call.protocol_version;
    if (transport.local && !resp.protocol_version.empty()) {
      PutBounded(&mcp_version_by_channel_, std::make_pair(pid, transport.channel), resp.protocol_version,
                 kMaxEntries);
    }
    return agreed;
  }
  if (!transport.protocol_version.empty()) return std::string(transport.protocol_version.substr(0, 64));
  if (!call.protocol_version.empty()) return call.protocol_version;
  if (transport.local) {
    auto it = mcp_version_by_channel_.find({pid, transport.channel});
    if (it != mcp_version_by_channel_.end()) return it->second;
  }
  return "";
}

void AgentSpans::RecordMcpDuration(const model::Span& span, bool server, std::string_view network_transport,
                                   std::string_view method, std::string_view error_type) {
  metrics::Labels labels = {{"mcp_method_name", std::string(method)}};
  if (const std::string* tool = span.FindString("gen_ai.tool.name"))
    labels.emplace_back("gen_ai_tool_name", *tool);
  if (const std::string* prompt = span.FindString("gen_ai.prompt.name"))
    labels.emplace_back("gen_ai_prompt_name", *prompt);
  if (const std::string* v = span.FindString("mcp.protocol.version"))
    labels.emplace_back("mcp_protocol_version", *v);
  labels.emplace_back("network_transport", std::string(network_transport));
  labels.emplace_back("error_type", std::string(error_type));
  const uint64_t end = std::max(span.end_time_unix_nano, span.start_time_unix_nano);
  metrics_
      ->GetHistogram(
          server ? "mcp_server_operation_duration_seconds" : "mcp_client_operation_duration_seconds",
          metrics_->Redacted(std::move(labels)), kMcpSecondsBuckets)
      ->Record(static_cast<double>(end - span.start_time_unix_nano) / 1e9);
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
  const RpcTransport local = {.session = {},
                              .protocol_version = {},
                              .headers = {},
                              .network_transport = transport,
                              .local = true,
                              .channel = call.channel,
                              .a2a_version = {}};
  ApplyRpcCall(call.request, "application/json", call.response, call.response_missing, conn, local, &span);
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
