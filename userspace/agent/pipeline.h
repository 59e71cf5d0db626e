// Wires the user-space stages in their one direction:
//
//   EventSink (this) ─▶ ProcessTable   (exec/exit → resources)
//                    └▶ ConnTracker ─▶ http1 parser ─┬─ requests seen ─────────────┐
//                                                    └─ records ─▶ BuildHttpSpan ─▶ Stitcher ─▶
//                                                    ExportPipeline
//   exec/exit ─▶ `exec {executable}` spans, agents' session spans ───────────────────┘
//
// Runs on the polling thread; never blocks on an exporter (ExportPipeline::Submit drops
// and counts when its queue is full).
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "common/metrics.h"
#include "conntrack/conn_tracker.h"
#include "correlator/agent_graph.h"
#include "correlator/agent_spans.h"
#include "correlator/genai_span.h"
#include "correlator/http_span.h"
#include "correlator/process_output.h"
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
  // Periodic housekeeping (idle connections, sessions of processes whose exit event was
  // lost); about once a second.
  void Tick(uint64_t now_ns);
  // Ends every connection so requests in flight come out as spans, and exports every
  // trace held.
  void Finish();
  // Called with the pid of each process found to be an agent (an agent rule names it at
  // exec, or it made an LLM call), once, so the kernel captures its local IPC and stdio.
  void SetAgentMarker(std::function<void(uint32_t pid)> mark) { mark_agent_ = std::move(mark); }

  // The agent call graph so far (correlator/agent_graph.h).
  const correlator::AgentGraph& agent_graph() const { return graph_; }

 private:
  void OnRequest(const conntrack::ConnInfo& conn, protocols::http1::RequestStart&& request);
  void OnRecord(const conntrack::ConnInfo& conn, protocols::http1::Record&& record);
  // An agent's local streams (MCP stdio): JSON-RPC calls to spans. `closed`: the process
  // is gone, its unanswered calls end.
  void DrainLocal(uint32_t pid, bool closed);
  void MarkAgent(uint32_t pid);
  // An agent's session span (its process lifetime, docs/agents.md), opened once per
  // process; the stitcher places it when a call of the process has no other parent.
  void OpenSession(uint32_t pid);
  // Names a session span at its end (the agent's name may have been learned meanwhile)
  // and gives it the output lines no other span of the process took.
  void FinishSession(uint32_t pid, model::Span* span);

  // One per agent process: its requests and answers travel on different fds.
  struct LocalProcess {
    protocols::jsonrpc::LineStream lines;
    uint64_t next_seq = 1;
    // Calls announced to the stitcher at their request, by CallKey, until they end.
    std::unordered_map<std::string, uint64_t> seqs;
  };
  struct LocalChannel {
    uint64_t id = 0;        // LineStream channel
    std::string transport;  // "unix" or "pipe"
    // The channel as both of its ends name it (events::ConnOpenEvent): 0 when unknown.
    events::ConnKind kind = events::ConnKind::kPipe;
    uint64_t local_id = 0, peer_id = 0;
  };
  // The same key for the caller's and the callee's side of one call on one channel (the
  // reading end's view, and the request's id), or "" when the channel is not known.
  static std::string LocalPairKey(const LocalChannel& ch, bool outgoing, const std::string& id);
  static std::string CallKey(uint64_t channel, bool outgoing, const std::string& id) {
    return std::to_string(channel) + (outgoing ? ">" : "<") + id;
  }

  PipelineOptions options_;
  exporters::ExportPipeline* exports_;
  tls::TlsProbes* tls_;
  process::ProcessTable processes_;
  correlator::GenAiSpans genai_;
  correlator::AgentSpans agents_;
  correlator::AgentGraph graph_;
  correlator::ProcessOutput output_;
  std::function<void(uint32_t)> mark_agent_;
  std::unordered_map<uint32_t, bool> marked_;    // pids told to mark_agent_
  std::unordered_set<uint32_t> sessions_tried_;  // pids OpenSession ran for (once each)
  // Sessions whose process was not in /proc at the last Tick: gone at the next one too,
  // their exit event was lost.
  std::unordered_set<uint32_t> sessions_missing_;
  uint64_t now_ns_ = 0;  // the last AfterBatch's time
  // Local streams and stdio of agents, by connection (not HTTP: kept from the tracker).
  std::unordered_map<uint32_t, LocalProcess> local_;
  std::unordered_map<events::ConnKey, LocalChannel, events::ConnKeyHash> channels_;
  std::unordered_map<uint64_t, events::ConnKey> channel_keys_;
  uint64_t next_channel_ = 1;
  std::unordered_map<events::ConnKey, bool, events::ConnKeyHash> stdio_;  // true: stderr
  std::vector<uint32_t> local_dirty_;
  metrics::Counter* local_lines_dropped_;
  metrics::Counter* local_calls_given_up_;
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
