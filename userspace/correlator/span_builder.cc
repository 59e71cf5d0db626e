#include "correlator/span_builder.h"

#include <optional>
#include <utility>
#include <variant>

#include "correlator/http2_span.h"
#include "genai/jsonrpc.h"

namespace kspan::correlator {
namespace {

// The end of a process from its wait(2) status: process.exit.code (128+N when killed by
// signal N, the shells' convention), and error.type when not 0.
void AddExitAttributes(int32_t status, model::Span* span) {
  const bool signaled = (status & 0x7f) != 0;
  const int64_t code = signaled ? 128 + (status & 0x7f) : (status >> 8) & 0xff;
  span->Set("process.exit.code", code);
  if (code == 0) return;
  span->Set("error.type", signaled ? std::string("signal") : std::string("exit_code"));
  span->status_message =
      signaled ? "killed by signal " + std::to_string(status & 0x7f) : "exit code " + std::to_string(code);
}

// Is this process the caller of the request (a CLIENT span), or its callee (SERVER)?
bool IsServer(const conntrack::ConnInfo& conn, protocols::Side side) {
  switch (side) {
    case protocols::Side::kCaller: return false;
    case protocols::Side::kCallee: return true;
    case protocols::Side::kByConnection: break;
  }
  return conn.role == events::Role::kServer;
}

}  // namespace

SpanBuilder::SpanBuilder(SpanBuilderOptions options, metrics::Registry* m, process::ProcessTable* processes,
                         Stitcher* stitcher, processors::ProcessorChain* processors)
    : options_(std::move(options)),
      processes_(processes),
      stitcher_(stitcher),
      processors_(processors),
      genai_(options_.genai, m),
      cost_(std::move(options_.prices), m),
      agents_(options_.agents, m),
      http2_headers_incomplete_(m->GetCounter("kspan_http2_headers_incomplete_total")) {
  const char* ends[] = {"answered", "timeout", "full", "exit"};
  for (int i = 0; i < 4; ++i)
    held_ends_[i] = m->GetCounter("kspan_agent_tool_runs_held_total", {{"outcome", ends[i]}});
}

void SpanBuilder::Emit(uint32_t pid, RequestDone&& done, model::Span&& span) {
  processors_->OnEnd(pid, span);
  stitcher_->OnSpan(done, std::move(span));
}

void SpanBuilder::ReleaseHeld(uint32_t pid, bool force, HoldEnd end, uint64_t now_ns) {
  for (auto it = held_.begin(); it != held_.end();) {
    const bool due = end == HoldEnd::kTimeout && it->span.end_time_unix_nano + kHoldNs <= now_ns &&
                     batches_ >= it->batch + kHoldBatches;
    if ((pid != 0 && it->pid != pid) || (end == HoldEnd::kTimeout && !due)) {
      ++it;
      continue;
    }
    std::vector<std::pair<NodeKey, NodeLink>> late;
    const AgentSpans::ToolRunLink link = agents_.LinkToolRun(it->pid, {it->done.conn, it->done.seq},
                                                             force || due, &it->span, &it->done.links, &late);
    if (link == AgentSpans::ToolRunLink::kWait) {
      ++it;
      continue;
    }
    held_ends_[static_cast<int>(end)]->Add();
    Held h = std::move(*it);
    it = held_.erase(it);
    Emit(h.pid, std::move(h.done), std::move(h.span));
    AddLateLinks(std::move(late));
  }
}

void SpanBuilder::AddLateLinks(std::vector<std::pair<NodeKey, NodeLink>>&& late) {
  for (auto& [from, link] : late) stitcher_->AddLink(from, std::move(link));
}

void SpanBuilder::MarkAgent(uint32_t pid) {
  if (!mark_agent_ || !marked_.insert(pid).second) return;
  mark_agent_(pid);
}

void SpanBuilder::OpenSession(uint32_t pid) {
  // Once per process: a session refused at the bound is counted once, not per call.
  if (!sessions_tried_.insert(pid).second) return;
  auto resource = processes_->ResourceFor(pid);
  const std::string agent = agents_.AgentName(pid, resource.get());
  model::Span span;
  span.kind = model::SpanKind::kInternal;
  span.name = "invoke_agent " + agent;
  span.start_time_unix_nano = span.end_time_unix_nano = processes_->StartTime(pid);
  span.Set("gen_ai.operation.name", std::string("invoke_agent"));
  span.Set("gen_ai.agent.name", agent);
  span.resource = std::move(resource);
  stitcher_->OnSession(pid, std::move(span));
}

void SpanBuilder::FinishSession(uint32_t pid, model::Span* span) {
  auto resource = processes_->ResourceFor(pid);
  const std::string agent = agents_.AgentName(pid, resource.get());
  span->name = "invoke_agent " + agent;
  span->Set("gen_ai.agent.name", agent);
  span->resource = std::move(resource);
  if (auto it = session_cost_.find(pid); it != session_cost_.end()) {
    span->Set("kspan.gen_ai.cost", it->second);  // what the session's LLM calls cost
    session_cost_.erase(it);
  }
  processors_->OnEnd(pid, *span);
}

void SpanBuilder::OnRequest(const conntrack::ConnInfo& conn, protocols::RequestStart&& request) {
  // On an agent's local channel only MCP and A2A calls make spans (`head` is the
  // JSON-RPC request line).
  if (conn.kind != events::ConnKind::kTcp && !genai::ParseRpcRequest(request.head)) return;
  const bool server = IsServer(conn, request.side);
  // The answering side of a protocol whose callee makes no span (a data store's own side,
  // protocols::ProtocolSpec::callee_spans), and either side of a request that makes none
  // (a database's startup or password message), opens nothing: a node that never
  // completes would hold its trace until max_hold (measured: 30 s for every request that
  // opened a PostgreSQL connection).
  if (request.no_span || (server && (!conn.callee_spans || request.callee_no_span))) return;
  RequestSeen r;
  r.conn = conn.key;
  r.seq = request.seq;
  r.server = server;
  r.tuple = conn.tuple;
  r.tuple_known = conn.tuple_known;
  r.timing = request.timing;
  r.open_ns = conn.open_ns;
  r.open_tid = conn.open_tid;
  r.open_turn = conn.open_turn;
  r.tls = conn.tls;
  r.traceparent = std::move(request.traceparent);
  r.tracestate = std::move(request.tracestate);
  if (conn.kind != events::ConnKind::kTcp) {
    r.pair_key = conntrack::LocalPairKey(conn, /*outgoing=*/!server, request.call_id);
  } else {
    // A multiplexed protocol's request id (the HTTP/2 stream) pairs within the connection.
    r.pair_key = std::move(request.call_id);
  }
  // (Without agent rules the resource is not needed: not fetched, no refcount taken.)
  if (conn.kind == events::ConnKind::kTcp && !server && !sessions_tried_.count(conn.key.pid) &&
      agents_.IsAgent(conn.key.pid,
                      agents_.HasRules() ? processes_->ResourceFor(conn.key.pid).get() : nullptr)) {
    // An agent rule names a process seen only now (running before kspan started).
    MarkAgent(conn.key.pid);
    OpenSession(conn.key.pid);
  }
  // An agent's outgoing TCP call may be the LLM call whose answer a later tool run waits for.
  if (conn.kind == events::ConnKind::kTcp && !server && sessions_tried_.count(conn.key.pid))
    agents_.NoteClientRequest(conn.key.pid, {conn.key, request.seq}, request.timing.start_ns);
  stitcher_->OnRequest(std::move(r));
}

std::optional<model::Span> SpanBuilder::BuildHttp(const conntrack::ConnInfo& conn,
                                                  const protocols::http1::Record& record, uint64_t seq,
                                                  std::vector<NodeLink>* links, bool* llm, bool* plain) {
  HttpConnContext ctx;
  ctx.is_server = conn.role == events::Role::kServer;
  ctx.tuple = &conn.tuple;
  ctx.pid = conn.key.pid;
  ctx.tls = conn.tls;
  // Built where it is returned: a span moved is ~250 bytes copied and a shell destroyed.
  std::optional<model::Span> built(std::in_place);
  model::Span& span = *built;
  BuildHttpSpan(record, ctx, processes_->ResourceFor(conn.key.pid), options_.http_spans, &span);
  std::vector<genai::ToolCallAsked> asked;
  std::vector<std::string> results;
  if (genai_.Apply(record, ctx, &span, &asked, &results)) {
    *llm = true;
    agents_.NoteLlmCall(conn.key.pid);
    agents_.NoteToolCallsAsked(conn.key.pid, std::move(asked), span.end_time_unix_nano, {conn.key, seq});
    agents_.LinkToolResults(conn.key.pid, {conn.key, seq}, results, links);
    MarkAgent(conn.key.pid);
    OpenSession(conn.key.pid);  // before this call's span: it may move under the session
    const uint32_t session = stitcher_->HasSession(conn.key.pid) ? conn.key.pid : 0;
    const std::optional<double> cost =
        cost_.Apply(&span, agents_.AgentName(conn.key.pid, span.resource.get()), session);
    if (cost && session) session_cost_[session] += *cost;
    uint64_t tokens = 0;
    for (const char* key : {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"}) {
      const model::AttributeValue* v = span.Find(key);
      if (const int64_t* n = v ? std::get_if<int64_t>(v) : nullptr; n && *n > 0)
        tokens += static_cast<uint64_t>(*n);
    }
    agents_.NoteTokens(conn.key.pid, tokens, span.end_time_unix_nano, &span);
  } else {
    *plain = !agents_.Apply(record, ctx, &span);
  }
  return built;
}

std::optional<model::Span> SpanBuilder::BuildLocalCall(const conntrack::ConnInfo& conn,
                                                       const protocols::jsonrpc::Call& call) {
  model::Span span = agents_.BuildLocalCall(call, conn.key.pid, events::ConnKindName(conn.kind),
                                            processes_->ResourceFor(conn.key.pid));
  if (span.name == "jsonrpc") return std::nullopt;  // not an MCP or A2A call
  return span;
}

void SpanBuilder::OnRecord(const conntrack::ConnInfo& conn, protocols::Record&& record) {
  // PROTOCOL_LIST: a new protocol's record type gets its family's builder here.
  const uint32_t pid = conn.key.pid;
  RequestDone done{.conn = conn.key,
                   .seq = record.seq,
                   .response = record.response,
                   .unanswered = record.response_missing,
                   .links = {}};
  bool llm = false;
  bool plain_http = false;  // an HTTP span neither GenAI nor agent builders described
  std::optional<model::Span> span = std::visit(
      [&](const auto& body) -> std::optional<model::Span> {
        using Body = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<Body, protocols::http1::Record>) {
          return BuildHttp(conn, body, record.seq, &done.links, &llm, &plain_http);
        } else if constexpr (std::is_same_v<Body, protocols::jsonrpc::Call>) {
          return BuildLocalCall(conn, body);
        } else if constexpr (std::is_same_v<Body, protocols::http2::Record>) {
          std::optional<model::Span> s =
              BuildHttp(conn, body.http, record.seq, &done.links, &llm, &plain_http);
          if (s) ApplyHttp2(body, IsServer(conn, record.side), &*s);
          if (body.headers_incomplete) http2_headers_incomplete_->Add();
          return s;
        } else if constexpr (std::is_same_v<Body, protocols::memcache::Record>) {
          return BuildMemcacheSpan(body, {.is_server = IsServer(conn, record.side), .tuple = conn.tuple},
                                   processes_->ResourceFor(conn.key.pid));
        } else if constexpr (std::is_same_v<Body, protocols::postgres::Record>) {
          return BuildPostgresSpan(body, {.is_server = IsServer(conn, record.side), .tuple = conn.tuple},
                                   processes_->ResourceFor(conn.key.pid));
        } else if constexpr (std::is_same_v<Body, protocols::mysql::Record>) {
          return BuildMysqlSpan(body, {.is_server = IsServer(conn, record.side), .tuple = conn.tuple},
                                processes_->ResourceFor(conn.key.pid));
        } else if constexpr (std::is_same_v<Body, protocols::redis::Record>) {
          return BuildRedisSpan(body, {.is_server = IsServer(conn, record.side), .tuple = conn.tuple},
                                processes_->ResourceFor(conn.key.pid));
        } else {
          static_assert(sizeof(Body) == 0, "a protocol's record has no span builder");
        }
      },
      record.body);
  agents_.NoteClientDone(pid, {conn.key, record.seq});
  // Unanswered: the span lasts while its request was waited for, as far as kspan saw.
  if (span && record.response_missing && record.given_up_ns > span->end_time_unix_nano) {
    span->end_time_unix_nano = record.given_up_ns;
  }
  if (!span) {
    if (llm || !held_.empty()) ReleaseHeld(pid, false, HoldEnd::kAnswered);
    return;
  }
  std::vector<std::pair<NodeKey, NodeLink>> late;
  const std::string* operation;  // looked up only for a CLIENT span that may have one
  if (!plain_http && span->kind == model::SpanKind::kClient &&
      (operation = span->FindString("gen_ai.operation.name")) != nullptr && *operation == "execute_tool" &&
      agents_.LinkToolRun(pid, {conn.key, record.seq}, false, &*span, &done.links, &late) ==
          AgentSpans::ToolRunLink::kWait) {
    if (held_.size() >= kMaxHeld) {  // the oldest gives up
      Held h = std::move(held_.front());
      held_.pop_front();
      std::vector<std::pair<NodeKey, NodeLink>> given_up;
      agents_.LinkToolRun(h.pid, {h.done.conn, h.done.seq}, true, &h.span, &h.done.links, &given_up);
      held_ends_[static_cast<int>(HoldEnd::kFull)]->Add();
      Emit(h.pid, std::move(h.done), std::move(h.span));
      AddLateLinks(std::move(given_up));
    }
    held_.push_back({pid, std::move(done), std::move(*span), batches_});
    return;
  }
  Emit(pid, std::move(done), std::move(*span));
  if (!late.empty()) AddLateLinks(std::move(late));
  // An answer came: runs of this process held for it may go now.
  if (!held_.empty()) ReleaseHeld(pid, false, HoldEnd::kAnswered);
}

void SpanBuilder::OnExec(const events::ProcessExecEvent& e) {
  agents_.OnExec(e.pid);  // a new program: what the pid was is forgotten
  if (agents_.IsAgent(e.pid, processes_->ResourceFor(e.pid).get())) {
    MarkAgent(e.pid);
    OpenSession(e.pid);
  }
  // A candidate `exec {executable}` span: the stitcher keeps it only when the process was
  // started on behalf of a traced request. Its resource is filled in at exit.
  model::Span span;
  span.kind = model::SpanKind::kInternal;
  const std::string& path = e.filename.empty() ? e.comm : e.filename;
  span.name = "exec " + path.substr(path.rfind('/') + 1);
  span.start_time_unix_nano = span.end_time_unix_nano = e.ts_ns;
  span.attributes.push_back({"process.pid", int64_t{e.pid}});
  span.attributes.push_back({"process.parent_pid", int64_t{e.ppid}});
  if (!e.argv.empty())
    span.attributes.push_back({"process.command_line", process::RedactedCommandLine(e.argv)});
  stitcher_->OnExec({.pid = e.pid, .parent_pid = e.ppid, .parent_tid = e.parent_tid, .ts_ns = e.ts_ns},
                    std::move(span));
}

void SpanBuilder::OnExit(const events::ProcessExitEvent& e) {
  ReleaseHeld(e.pid, true, HoldEnd::kExit);
  if (stitcher_->TracksExec(e.pid)) {
    model::Span end;
    AddExitAttributes(e.exit_code, &end);
    stitcher_->OnProcessEnd(e.pid, e.ts_ns, std::move(end.attributes), processes_->ResourceFor(e.pid));
  }
  // Last, so that the output lines no other span took go to the session.
  stitcher_->EndSession(e.pid, e.ts_ns, [this, &e](uint32_t pid, model::Span* span) {
    FinishSession(pid, span);
    AddExitAttributes(e.exit_code, span);
    // Tool calls an LLM answer asked for that the agent was not seen to run (in-process
    // tools, or never run): counted at AgentSpans::OnExit, named here.
    for (auto& [call, at_ns] : agents_.Unrun(pid, kMaxUnrunEvents)) {
      span->events.push_back({"kspan.agent.tool_call.not_run",
                              at_ns,
                              {{"gen_ai.tool.call.id", call.id}, {"gen_ai.tool.name", call.name}}});
    }
  });
  processors_->OnProcessExit(e.pid);
  session_cost_.erase(e.pid);
  agents_.OnExit(e.pid);
  marked_.erase(e.pid);
  sessions_tried_.erase(e.pid);
}

void SpanBuilder::Tick(uint64_t now_ns) {
  if (!held_.empty()) ReleaseHeld(0, false, HoldEnd::kTimeout, now_ns);
  // A session's process gone from /proc on two ticks in a row (so not an exit event still
  // on its way) lost its exit event: end the session rather than hold it until kspan stops.
  std::unordered_set<uint32_t> missing;
  for (uint32_t pid : stitcher_->OpenSessions()) {
    if (processes_->Alive(pid)) continue;
    if (!sessions_missing_.count(pid)) {
      missing.insert(pid);
      continue;
    }
    stitcher_->LoseSession(pid, now_ns, [this](uint32_t p, model::Span* span) { FinishSession(p, span); });
    sessions_tried_.erase(pid);
  }
  sessions_missing_ = std::move(missing);
}

void SpanBuilder::Finish(uint64_t now_ns) {
  ReleaseHeld(0, true, HoldEnd::kExit);
  // Agents still running: their sessions end now, marked as cut.
  stitcher_->CutSessions(now_ns, [this](uint32_t pid, model::Span* span) { FinishSession(pid, span); });
}

}  // namespace kspan::correlator
