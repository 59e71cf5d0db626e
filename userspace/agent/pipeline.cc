#include "agent/pipeline.h"

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
      stitcher_(options_.stitcher, m,
                [this](model::Span&& span) {
                  spans_->Add();
                  graph_.OnSpan(span, agents_.AgentOf(span));
                  exports_->Submit(std::move(span));
                }),
      tracker_(
          options_.tracker, m,
          [this](const conntrack::ConnInfo& c, protocols::http1::Record&& r) { OnRecord(c, std::move(r)); },
          [this](const conntrack::ConnInfo& c, protocols::http1::RequestStart&& r) { OnRequest(c, std::move(r)); },
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
}

void Pipeline::OnConnOpen(const events::ConnOpenEvent& e) {
  ev_open_->Add();
  // Read /proc now, while the process is surely alive, not when its first span is built.
  processes_.Touch(e.key.pid);
  tracker_.OnOpen(e);
}

void Pipeline::OnData(const events::DataEvent& e) {
  ev_data_->Add();
  bytes_moved_->Add(e.total_len);
  bytes_captured_->Add(e.data.size());
  tracker_.OnData(e);
}

void Pipeline::OnTlsBind(const events::TlsBindEvent& e) { tracker_.OnTlsBind(e); }

void Pipeline::OnConnClose(const events::ConnCloseEvent& e) {
  ev_close_->Add();
  tracker_.OnClose(e);
}

void Pipeline::OnExec(const events::ProcessExecEvent& e) {
  ev_exec_->Add();
  processes_.OnExec(e);
  if (tls_) tls_->OnExec(e.pid);
  // A candidate `exec {executable}` span: the stitcher keeps it only when the process was
  // started on behalf of a traced request. Its resource is filled in at exit.
  model::Span span;
  span.kind = model::SpanKind::kInternal;
  const std::string& path = e.filename.empty() ? e.comm : e.filename;
  span.name = "exec " + path.substr(path.rfind('/') + 1);
  span.start_time_unix_nano = span.end_time_unix_nano = e.ts_ns;
  span.attributes.push_back({"process.pid", int64_t{e.pid}});
  span.attributes.push_back({"process.parent_pid", int64_t{e.ppid}});
  if (!e.argv.empty()) span.attributes.push_back({"process.command_line", process::RedactedCommandLine(e.argv)});
  stitcher_.OnExec({.pid = e.pid, .parent_pid = e.ppid, .parent_tid = e.parent_tid, .ts_ns = e.ts_ns},
                   std::move(span));
}

void Pipeline::OnExit(const events::ProcessExitEvent& e) {
  ev_exit_->Add();
  if (tls_) tls_->OnExit(e.pid);
  // Connections first: their last records still need the process's resource.
  tracker_.OnProcessExit(e.pid);
  if (stitcher_.TracksExec(e.pid)) {
    // exit_code is a wait(2) status: the code, or the signal that killed it (as 128+N,
    // the shells' convention).
    const int status = e.exit_code;
    const bool signaled = (status & 0x7f) != 0;
    const int64_t code = signaled ? 128 + (status & 0x7f) : (status >> 8) & 0xff;
    std::vector<model::Attribute> end{{"process.exit.code", code}};
    if (code != 0) end.push_back({"error.type", signaled ? std::string("signal") : std::string("exit_code")});
    stitcher_.OnProcessEnd(e.pid, e.ts_ns, std::move(end), processes_.ResourceFor(e.pid));
  }
  processes_.OnExit(e);
  agents_.OnExit(e.pid);
}

void Pipeline::AfterBatch(uint64_t now_ns) {
  tracker_.DrainPending();
  stitcher_.Advance(now_ns);
}

void Pipeline::Tick(uint64_t now_ns) { tracker_.Tick(now_ns); }

void Pipeline::Finish() {
  tracker_.CloseAll();
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
  } else {
    agents_.Apply(record, ctx, &span);
  }
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
