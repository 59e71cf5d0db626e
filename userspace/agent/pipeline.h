// Wires the user-space stages in their one direction:
//
//   EventSink (this) ─▶ ProcessTable   (exec/exit → resources)
//                    └▶ ConnTracker ─▶ http1 parser ─┬─ requests seen ─────────────┐
//                                                    └─ records ─▶ BuildHttpSpan ─▶ Stitcher ─▶ ExportPipeline
//   exec/exit ─▶ `exec {executable}` spans ─────────────────────────────────────────┘
//
// Runs on the polling thread; never blocks on an exporter (ExportPipeline::Submit drops
// and counts when its queue is full).
#pragma once

#include <memory>

#include "common/metrics.h"
#include "conntrack/conn_tracker.h"
#include "correlator/agent_graph.h"
#include "correlator/agent_spans.h"
#include "correlator/genai_span.h"
#include "correlator/http_span.h"
#include "correlator/stitcher.h"
#include "events/event_sink.h"
#include "exporters/export_pipeline.h"
#include "process/process_table.h"
#include "tls/tls_probes.h"

namespace kspan::agent {

struct PipelineOptions {
  conntrack::TrackerOptions tracker;
  process::ProcessTableOptions processes;
  correlator::HttpSpanOptions http_spans;
  correlator::GenAiOptions genai;
  correlator::AgentOptions agents;
  correlator::StitcherOptions stitcher;
};

class Pipeline : public events::EventSink {
 public:
  // `tls` (may be null) is told of execs, exits and connections that show TLS records.
  Pipeline(PipelineOptions options, metrics::Registry* metrics, exporters::ExportPipeline* exports,
           tls::TlsProbes* tls = nullptr);

  void OnConnOpen(const events::ConnOpenEvent& e) override;
  void OnData(const events::DataEvent& e) override;
  void OnConnClose(const events::ConnCloseEvent& e) override;
  void OnExec(const events::ProcessExecEvent& e) override;
  void OnExit(const events::ProcessExitEvent& e) override;
  void OnTlsBind(const events::TlsBindEvent& e) override;

  // After each batch of events (one ring-buffer poll): parse what arrived, decide parents
  // and export the traces that are due. `now_ns` is Unix ns.
  void AfterBatch(uint64_t now_ns);
  // Periodic housekeeping (idle connections); about once a second.
  void Tick(uint64_t now_ns);
  // Ends every connection so requests in flight come out as spans, and exports every
  // trace held.
  void Finish();
  // The agent call graph so far (correlator/agent_graph.h).
  const correlator::AgentGraph& agent_graph() const { return graph_; }

 private:
  void OnRequest(const conntrack::ConnInfo& conn, protocols::http1::RequestStart&& request);
  void OnRecord(const conntrack::ConnInfo& conn, protocols::http1::Record&& record);

  PipelineOptions options_;
  exporters::ExportPipeline* exports_;
  tls::TlsProbes* tls_;
  process::ProcessTable processes_;
  correlator::GenAiSpans genai_;
  correlator::AgentSpans agents_;
  correlator::AgentGraph graph_;
  correlator::Stitcher stitcher_;
  conntrack::ConnTracker tracker_;
  metrics::Counter* ev_open_;
  metrics::Counter* ev_data_;
  metrics::Counter* ev_close_;
  metrics::Counter* ev_exec_;
  metrics::Counter* ev_exit_;
  metrics::Counter* bytes_moved_;
  metrics::Counter* bytes_captured_;
  metrics::Counter* spans_;
};

}  // namespace kspan::agent
