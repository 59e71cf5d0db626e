#include "agent/pipeline.h"

#include <utility>

#include "genai/jsonrpc.h"

namespace kspan::agent {

Pipeline::Pipeline(PipelineOptions options, metrics::Registry* m, exporters::ExportPipeline* exports,
                   tls::TlsProbes* tls)
    : options_(std::move(options)),
      exports_(exports),
      tls_(tls),
      processes_(options_.processes),
      genai_(options_.genai, m),
      agents_(options_.agents, m),
      graph_(m),
      output_({}, m),
      stitcher_(options_.stitcher, m,
                [this](model::Span&& span) {
                  spans_->Add();
                  graph_.OnSpan(span, agents_.AgentOf(span));
                  exports_->Submit(std::move(span));
                }),
      tracker_(
          options_.tracker, m,
          [this](const conntrack::ConnInfo& c, protocols::http1::Record&& r) { OnRecord(c, std::move(r)); },
          [this](const conntrack::ConnInfo& c, protocols::http1::RequestStart&& r) {
            OnRequest(c, std::move(r));
          },
          [this](const conntrack::ConnInfo& c) {
            if (tls_) tls_->OnCiphertext(c.key.pid);
          }) {
  ev_open_ = m->GetCounter("kspan_events_total", {{"type", "conn_open"}});
  ev_data_ = m->GetCounter("kspan_events_total", {{"type", "data"}});
  ev_close_ = m->GetCounter("kspan_events_total", {{"type", "conn_close"}});
  ev_exec_ = m->GetCounter("kspan_events_total", {{"type", "exec"}});
  ev_exit_ = m->GetCounter("kspan_events_total", {{"type", "exit"}});
  bytes_moved_ = m->GetCounter("kspan_bytes_total", {{"kind", "moved"}});
  bytes_captured_ = m->GetCounter("kspan_bytes_total", {{"kind", "captured"}});
  spans_ = m->GetCounter("kspan_spans_total");
  local_lines_dropped_ = m->GetCounter("kspan_jsonrpc_lines_dropped_total");
  local_calls_given_up_ = m->GetCounter("kspan_jsonrpc_calls_unanswered_total");
}

void Pipeline::MarkAgent(uint32_t pid) {
  if (!mark_agent_ || marked_.count(pid)) return;
  marked_[pid] = true;
  mark_agent_(pid);
}

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

}  // namespace

void Pipeline::OpenSession(uint32_t pid) {
  // Once per process: a session refused at the bound is counted once, not per call.
  if (!sessions_tried_.insert(pid).second) return;
  auto resource = processes_.ResourceFor(pid);
  const std::string agent = agents_.AgentName(pid, resource.get());
  model::Span span;
  span.kind = model::SpanKind::kInternal;
  span.name = "invoke_agent " + agent;
  span.start_time_unix_nano = span.end_time_unix_nano = processes_.StartTime(pid);
  span.Set("gen_ai.operation.name", std::string("invoke_agent"));
  span.Set("gen_ai.agent.name", agent);
  span.resource = std::move(resource);
  stitcher_.OnSession(pid, std::move(span));
}

void Pipeline::FinishSession(uint32_t pid, model::Span* span) {
  auto resource = processes_.ResourceFor(pid);
  const std::string agent = agents_.AgentName(pid, resource.get());
  span->name = "invoke_agent " + agent;
  span->Set("gen_ai.agent.name", agent);
  span->resource = std::move(resource);
  output_.Attach(pid, span);
}

void Pipeline::OnConnOpen(const events::ConnOpenEvent& e) {
  ev_open_->Add();
  // Read /proc now, while the process is surely alive, not when its first span is built.
  processes_.Touch(e.key.pid);
  switch (e.kind) {
    case events::ConnKind::kUnix:
    case events::ConnKind::kPipe: {
      LocalChannel& ch = channels_[e.key];
      ch.id = next_channel_++;
      ch.transport = std::string(events::ConnKindName(e.kind));
      ch.kind = e.kind;
      ch.local_id = e.local_id;
      ch.peer_id = e.peer_id;
      channel_keys_[ch.id] = e.key;
      local_[e.key.pid];
      return;
    }
    case events::ConnKind::kStdout:
    case events::ConnKind::kStderr: stdio_[e.key] = e.kind == events::ConnKind::kStderr; return;
    case events::ConnKind::kTcp: break;
  }
  tracker_.OnOpen(e);
}

void Pipeline::OnData(const events::DataEvent& e) {
  ev_data_->Add();
  bytes_moved_->Add(e.total_len);
  bytes_captured_->Add(e.data.size());
  if (auto it = channels_.find(e.key); it != channels_.end()) {
    const bool egress = e.direction == events::Direction::kEgress;
    local_[e.key.pid].lines.Add(it->second.id, egress, e.data, e.total_len, egress ? e.enter_ns : e.exit_ns,
                                e.tid, e.turn);
    local_dirty_.push_back(e.key.pid);
    return;
  }
  if (auto it = stdio_.find(e.key); it != stdio_.end()) {
    output_.Add(e.key.pid, it->second, e.data, e.enter_ns);
    return;
  }
  tracker_.OnData(e);
}

namespace {

// A JSON-RPC request on an agent's local channel, for the stitcher.
correlator::RequestSeen LocalRequest(const events::ConnKey& conn, uint64_t seq, bool outgoing,
                                     const protocols::jsonrpc::LineTiming& t, std::string pair_key) {
  correlator::RequestSeen r;
  r.conn = conn;
  r.seq = seq;
  r.server = !outgoing;
  r.tid = t.tid;
  r.turn = t.turn;
  r.start_ns = t.start_ns;
  r.end_ns = t.end_ns;
  r.end_tid = t.end_tid;
  r.end_turn = t.end_turn;
  r.pair_key = std::move(pair_key);
  return r;
}

}  // namespace

std::string Pipeline::LocalPairKey(const LocalChannel& ch, bool outgoing, const std::string& id) {
  if (ch.local_id == 0 || ch.peer_id == 0 || id.empty()) return "";
  // A pipe is one inode at both ends. A socketpair is two sockets, each the other's
  // peer: named as the reading end sees it, "reader|writer".
  if (ch.kind == events::ConnKind::kPipe) return "pipe:" + std::to_string(ch.local_id) + "#" + id;
  const uint64_t reader = outgoing ? ch.peer_id : ch.local_id;
  const uint64_t writer = outgoing ? ch.local_id : ch.peer_id;
  return "unix:" + std::to_string(reader) + "|" + std::to_string(writer) + "#" + id;
}

void Pipeline::DrainLocal(uint32_t pid, bool closed) {
  auto it = local_.find(pid);
  if (it == local_.end()) return;
  LocalProcess& lp = it->second;
  if (closed) lp.lines.Close();
  std::vector<protocols::jsonrpc::Call> calls;
  std::vector<protocols::jsonrpc::Started> started;
  protocols::jsonrpc::LineStats stats;
  lp.lines.Drain(&calls, &stats, &started);
  local_lines_dropped_->Add(stats.lines_dropped);
  local_calls_given_up_->Add(stats.calls_given_up);
  // A call is announced at its request, so what it makes meanwhile (a tool server's own
  // calls) finds it in flight, and the caller's and the callee's sides pair by channel.
  for (const protocols::jsonrpc::Started& st : started) {
    auto key_it = channel_keys_.find(st.channel);
    if (key_it == channel_keys_.end()) continue;
    if (!genai::ParseRpcRequest(st.request)) continue;  // not MCP or A2A: no span
    if (lp.seqs.size() >= protocols::jsonrpc::kMaxPendingCalls) {
      lp.seqs.clear();  // their calls end unannounced (counted by the stitcher)
    }
    const uint64_t seq = lp.next_seq++;
    lp.seqs[CallKey(st.channel, st.outgoing, st.id)] = seq;
    const auto& rq = st.timing;
    stitcher_.OnRequest(LocalRequest(key_it->second, seq, st.outgoing, rq,
                                     LocalPairKey(channels_[key_it->second], st.outgoing, st.id)));
  }
  for (const protocols::jsonrpc::Call& call : calls) {
    auto key_it = channel_keys_.find(call.channel);
    if (key_it == channel_keys_.end()) {
      local_calls_given_up_->Add();  // its request's channel closed before the answer came
      continue;
    }
    const events::ConnKey key = key_it->second;
    model::Span span =
        agents_.BuildLocalCall(call, pid, channels_[key].transport, processes_.ResourceFor(pid));
    if (span.name == "jsonrpc") continue;  // not an MCP or A2A call
    output_.Attach(pid, &span);
    uint64_t seq = 0;
    if (auto s = lp.seqs.find(CallKey(call.channel, call.outgoing, call.id)); s != lp.seqs.end()) {
      seq = s->second;
      lp.seqs.erase(s);
    }
    if (seq == 0) {  // not announced: place it now
      seq = lp.next_seq++;
      const auto& rq = call.request_timing;
      stitcher_.OnRequest(
          LocalRequest(key, seq, call.outgoing, rq, LocalPairKey(channels_[key], call.outgoing, call.id)));
    }
    const auto& rs = call.response_timing;
    const bool answered = !call.response_missing;
    stitcher_.OnSpan({.conn = key,
                      .seq = seq,
                      .response_tid = answered ? rs.tid : 0,
                      .response_turn = answered ? rs.turn : 0,
                      .response_start_ns = answered ? rs.start_ns : 0,
                      .response_end_tid = answered ? rs.end_tid : 0,
                      .response_end_turn = answered ? rs.end_turn : 0,
                      .response_end_ns = answered ? rs.end_ns : 0},
                     std::move(span));
  }
  if (!closed) return;
  local_.erase(it);
  std::erase_if(channels_, [&](const auto& kv) {
    if (kv.first.pid != pid) return false;
    channel_keys_.erase(kv.second.id);
    return true;
  });
}

void Pipeline::OnTlsBind(const events::TlsBindEvent& e) {
  tracker_.OnTlsBind(e);
}

void Pipeline::OnConnClose(const events::ConnCloseEvent& e) {
  ev_close_->Add();
  if (auto it = channels_.find(e.key); it != channels_.end()) {
    // Its finished calls first; a call still waiting for an answer on another channel is
    // given up when that answer comes (counted), so closed channels cost no memory.
    DrainLocal(e.key.pid, /*closed=*/false);
    if (auto lp = local_.find(e.key.pid); lp != local_.end()) lp->second.lines.CloseChannel(it->second.id);
    channel_keys_.erase(it->second.id);
    channels_.erase(it);
    return;
  }
  if (stdio_.erase(e.key)) return;
  tracker_.OnClose(e);
}

void Pipeline::OnExec(const events::ProcessExecEvent& e) {
  ev_exec_->Add();
  processes_.OnExec(e);
  agents_.OnExec(e.pid);  // a new program: what the pid was is forgotten
  if (tls_) tls_->OnExec(e.pid);
  if (agents_.IsAgent(e.pid, processes_.ResourceFor(e.pid).get())) {
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
  stitcher_.OnExec({.pid = e.pid, .parent_pid = e.ppid, .parent_tid = e.parent_tid, .ts_ns = e.ts_ns},
                   std::move(span));
}

void Pipeline::OnExit(const events::ProcessExitEvent& e) {
  ev_exit_->Add();
  if (tls_) tls_->OnExit(e.pid);
  // Connections first: their last records still need the process's resource.
  tracker_.OnProcessExit(e.pid);
  if (stitcher_.TracksExec(e.pid)) {
    model::Span end;
    AddExitAttributes(e.exit_code, &end);
    stitcher_.OnProcessEnd(e.pid, e.ts_ns, std::move(end.attributes), processes_.ResourceFor(e.pid));
  }
  // Its local streams end with it (the kernel sends no close for them at exit).
  DrainLocal(e.pid, /*closed=*/true);
  // Last, so that the output lines no other span took go to the session.
  stitcher_.EndSession(e.pid, e.ts_ns, [this, &e](uint32_t pid, model::Span* span) {
    FinishSession(pid, span);
    AddExitAttributes(e.exit_code, span);
  });
  std::erase_if(stdio_, [&](const auto& kv) { return kv.first.pid == e.pid; });
  processes_.OnExit(e);
  agents_.OnExit(e.pid);
  output_.OnExit(e.pid);
  marked_.erase(e.pid);
  sessions_tried_.erase(e.pid);
}

void Pipeline::AfterBatch(uint64_t now_ns) {
  now_ns_ = now_ns;
  tracker_.DrainPending();
  for (uint32_t pid : std::exchange(local_dirty_, {})) DrainLocal(pid, /*closed=*/false);
  stitcher_.Advance(now_ns);
}

void Pipeline::Tick(uint64_t now_ns) {
  tracker_.Tick(now_ns);
  // A session's process gone from /proc on two ticks in a row (so not an exit event still
  // on its way) lost its exit event: end the session rather than hold it until kspan stops.
  std::unordered_set<uint32_t> missing;
  for (uint32_t pid : stitcher_.OpenSessions()) {
    if (processes_.Alive(pid)) continue;
    if (!sessions_missing_.count(pid)) {
      missing.insert(pid);
      continue;
    }
    stitcher_.LoseSession(pid, now_ns, [this](uint32_t p, model::Span* span) { FinishSession(p, span); });
    sessions_tried_.erase(pid);
  }
  sessions_missing_ = std::move(missing);
}

void Pipeline::Finish() {
  tracker_.CloseAll();
  while (!local_.empty()) DrainLocal(local_.begin()->first, /*closed=*/true);
  // Agents still running: their sessions end now, marked as cut.
  stitcher_.CutSessions(now_ns_, [this](uint32_t pid, model::Span* span) { FinishSession(pid, span); });
  stitcher_.FlushAll();
}

void Pipeline::OnRequest(const conntrack::ConnInfo& conn, protocols::http1::RequestStart&& request) {
  correlator::RequestSeen r;
  r.conn = conn.key;
  r.seq = request.seq;
  r.server = conn.role == events::Role::kServer;
  r.tuple = conn.tuple;
  r.tuple_known = conn.tuple_known;
  r.tid = request.tid;
  r.turn = request.turn;
  r.start_ns = request.start_ns;
  r.end_ns = request.end_ns;
  r.end_tid = request.end_tid;
  r.end_turn = request.end_turn;
  r.open_ns = conn.open_ns;
  r.open_tid = conn.open_tid;
  r.open_turn = conn.open_turn;
  r.traceparent = std::move(request.traceparent);
  r.tracestate = std::move(request.tracestate);
  // An agent rule names a process seen only now (running before kspan started).
  if (!r.server && !sessions_tried_.count(r.conn.pid) &&
      agents_.IsAgent(r.conn.pid, processes_.ResourceFor(r.conn.pid).get())) {
    MarkAgent(r.conn.pid);
    OpenSession(r.conn.pid);
  }
  stitcher_.OnRequest(std::move(r));
}

void Pipeline::OnRecord(const conntrack::ConnInfo& conn, protocols::http1::Record&& record) {
  correlator::HttpConnContext ctx;
  ctx.is_server = conn.role == events::Role::kServer;
  ctx.tuple = conn.tuple;
  ctx.pid = conn.key.pid;
  ctx.tls = conn.tls;
  model::Span span =
      correlator::BuildHttpSpan(record, ctx, processes_.ResourceFor(conn.key.pid), options_.http_spans);
  if (genai_.Apply(record, ctx, &span)) {
    agents_.NoteLlmCall(conn.key.pid);
    MarkAgent(conn.key.pid);
    OpenSession(conn.key.pid);  // before this call's span: it may move under the session
  } else {
    agents_.Apply(record, ctx, &span);
  }
  output_.Attach(conn.key.pid, &span);
  const protocols::http1::Message& resp = record.response;
  stitcher_.OnSpan({.conn = conn.key,
                    .seq = record.seq,
                    .response_tid = resp.tid,
                    .response_turn = resp.turn,
                    .response_start_ns = resp.start_ns,
                    .response_end_tid = resp.end_tid,
                    .response_end_turn = resp.end_turn,
                    .response_end_ns = resp.end_ns},
                   std::move(span));
}

}  // namespace kspan::agent
