#include "agent/pipeline.h"

namespace kspan::agent {

Pipeline::Pipeline(PipelineOptions options, metrics::Registry* m, exporters::ExportPipeline* exports)
    : options_(std::move(options)),
      exports_(exports),
      processes_(options_.processes),
      tracker_(options_.tracker, m,
               [this](const conntrack::ConnInfo& c, protocols::http1::Record&& r) { OnRecord(c, std::move(r)); }) {
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

void Pipeline::OnConnClose(const events::ConnCloseEvent& e) {
  ev_close_->Add();
  tracker_.OnClose(e);
}

void Pipeline::OnExec(const events::ProcessExecEvent& e) {
  ev_exec_->Add();
  processes_.OnExec(e);
}

void Pipeline::OnExit(const events::ProcessExitEvent& e) {
  ev_exit_->Add();
  // Connections first: their last records still need the process's resource.
  tracker_.OnProcessExit(e.pid);
  processes_.OnExit(e);
}

void Pipeline::AfterBatch() { tracker_.DrainPending(); }

void Pipeline::Tick(uint64_t now_ns) { tracker_.Tick(now_ns); }

void Pipeline::Finish() { tracker_.CloseAll(); }

void Pipeline::OnRecord(const conntrack::ConnInfo& conn, protocols::http1::Record&& record) {
  correlator::HttpConnContext ctx;
  ctx.is_server = conn.role == events::Role::kServer;
  ctx.tuple = conn.tuple;
  ctx.pid = conn.key.pid;
  model::Span span =
      correlator::BuildHttpSpan(record, ctx, processes_.ResourceFor(conn.key.pid), options_.http_spans);
  spans_->Add();
  exports_->Submit(std::move(span));
}

}  // namespace kspan::agent
