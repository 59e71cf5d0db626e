// Wires the user-space stages in their one direction and holds no logic of its own:
//
//   EventSink (this) ─▶ Selection (--include/--exclude: events of skipped processes stop)
//                    ─▶ ProcessTable (exec/exit → resources)
//                    └▶ ConnTracker ─ requests, records ─▶ SpanBuilder ─▶ Stitcher ─┐
//                        (protocols/registry.h)   (correlator/span_builder.h)       │
//                        └─ stdout/stderr ─▶ ProcessOutput                          │
//   agents' file writes ─▶ ToolFileWrites                                           │
//   exec/exit ─▶ SpanBuilder (exec spans, agent sessions)                           │
//                                                                                   ▼
//          ProcessorChain: OnEnd at span end, OnExport as traces leave the window ─▶ ExportPipeline
//          (processors/: process output, agent graph, span metrics and the service graph,
//          sampling: the window asks the
//          TraceSampler once per trace, and the chain drops the spans of traces not kept;
//          then enrichment and redaction of what is kept)
//
// Runs on the polling thread; never blocks on an exporter (ExportPipeline::Submit drops
// and counts when its queue is full).
#pragma once

#include <functional>
#include <memory>

#include "common/metrics.h"
#include "conntrack/conn_tracker.h"
#include "correlator/span_builder.h"
#include "correlator/stitcher.h"
#include "events/event_sink.h"
#include "exporters/export_pipeline.h"
#include "process/process_table.h"
#include "process/selection.h"
#include "processors/agent_graph.h"
#include "processors/process_output.h"
#include "processors/processor_chain.h"
#include "processors/saturation.h"
#include "processors/service_graph.h"
#include "processors/span_attributes.h"
#include "processors/span_metrics.h"
#include "processors/tool_file_writes.h"
#include "processors/trace_sampler.h"
#include "tls/tls_probes.h"

namespace kspan::agent {

struct PipelineOptions {
  conntrack::TrackerOptions tracker;
  process::ProcessTableOptions processes;
  correlator::HttpSpanOptions http_spans;
  correlator::GenAiOptions genai;
  correlator::AgentOptions agents;
  genai::PriceTable prices;  // what LLM calls cost (correlator/genai_cost.h)
  correlator::StitcherOptions stitcher;
  processors::SamplingConfig sampling;
  std::vector<processors::FilterRule> filters;  // processors/span_filter.h
  processors::AttributeRules attribute_rules;   // processors/span_attributes.h
  // Which processes are traced (process/selection.h); `pods` and `proc_root` come from
  // `processes`.
  process::SelectionOptions selection;
  // RED metrics and the service graph (processors/span_metrics.h, service_graph.h), from
  // every span before sampling, and the saturation of traced services
  // (processors/saturation.h).
  bool span_metrics = true;
  processors::SaturationOptions saturation;
};

class Pipeline : public events::EventSink {
 public:
  // `tls` (may be null) is told of execs, exits and connections that show TLS records.
  Pipeline(PipelineOptions options, metrics::Registry* metrics, exporters::ExportPipeline* exports,
           tls::TlsProbes* tls = nullptr);
  // Takes its redaction rules back from the registry's label redactor.
  ~Pipeline() override;

  void OnConnOpen(const events::ConnOpenEvent& e) override;
  void OnData(const events::DataEvent& e) override;
  void OnConnClose(const events::ConnCloseEvent& e) override;
  void OnExec(const events::ProcessExecEvent& e) override;
  void OnExit(const events::ProcessExitEvent& e) override;
  void OnTlsBind(const events::TlsBindEvent& e) override;
  void OnFileWrite(const events::FileWriteEvent& e) override;
  void OnListen(const events::ListenEvent& e) override;
  void OnFork(const events::ProcessForkEvent& e) override;

  // After each batch of events (one ring-buffer poll): parse what arrived, decide parents
  // and export the traces that are due. `now_ns` is Unix ns.
  void AfterBatch(uint64_t now_ns);
  // Periodic housekeeping (idle connections, sessions of processes whose exit event was
  // lost); about once a second.
  void Tick(uint64_t now_ns);
  // Ends every connection so requests in flight come out as spans, and exports every
  // trace held.
  void Finish();
  // Called with the pid of each process found to be an agent, once, so the kernel
  // captures its local IPC and stdio (correlator::SpanBuilder::SetAgentMarker).
  void SetAgentMarker(std::function<void(uint32_t pid)> mark) { builder_.SetAgentMarker(std::move(mark)); }

  // The agent call graph so far (processors/agent_graph.h).
  const processors::AgentGraph& agent_graph() const { return graph_; }

 private:
  exporters::ExportPipeline* exports_;
  tls::TlsProbes* tls_;
  metrics::Registry* registry_;
  process::ProcessTable processes_;
  process::Selection selection_;
  processors::ProcessorChain processors_;
  processors::SpanFilter filter_;
  processors::TraceSampler sampler_;  // decides each trace as it leaves the stitcher's window
  correlator::Stitcher stitcher_;
  correlator::SpanBuilder builder_;
  processors::ProcessOutput output_;
  processors::ToolFileWrites file_writes_;
  processors::AgentGraph graph_;
  processors::SpanMetrics span_metrics_;
  processors::ServiceGraph service_graph_;
  processors::SpanAttributes attributes_;
  processors::Saturation saturation_;
  const bool saturation_on_;
  conntrack::ConnTracker tracker_;
  uint64_t now_ns_ = 0;  // the last AfterBatch's time
  metrics::Counter* ev_open_;
  metrics::Counter* ev_data_;
  metrics::Counter* ev_close_;
  metrics::Counter* ev_exec_;
  metrics::Counter* ev_exit_;
  metrics::Counter* ev_fork_;
  metrics::Counter* bytes_moved_;
  metrics::Counter* bytes_captured_;
};

}  // namespace kspan::agent
