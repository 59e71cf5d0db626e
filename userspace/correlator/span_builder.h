// Span construction: the correlator's front. Turns what the connection tracker and the
// process events report into spans for the stitcher, protocol-neutral at the top and one
// builder per protocol family below:
//
//   RequestStart ──▶ RequestSeen (span id now, parent decided by the stitcher)
//   Record ──▶ family builder ──▶ span ──OnEnd (processors)──▶ Stitcher::OnSpan
//                http:    BuildHttpSpan (http_span.h)
//                gen_ai:  GenAiSpans::Apply on an HTTP record (genai_span.h)
//                mcp/a2a: AgentSpans::Apply (HTTP) / BuildLocalCall (JSON-RPC lines)
//                db:      BuildMemcacheSpan (db_span.h); a data store's side makes none
//   exec ──▶ candidate `exec {executable}` span; exit ──▶ its end (process.exit.code)
//   agents ──▶ one session span per agent process (`invoke_agent {agent}`, docs/agents.md):
//              opened at exec for a rule match or at the first LLM call, ended at exit,
//              cut at shutdown, ended when the process is found gone (exit event lost)
//
// Single-threaded: the pipeline thread. Borrowed stages (process table, stitcher,
// processors) outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_set>

#include "common/metrics.h"
#include "conntrack/conn_info.h"
#include "correlator/agent_spans.h"
#include "correlator/db_span.h"
#include "correlator/genai_span.h"
#include "correlator/http_span.h"
#include "correlator/stitcher.h"
#include "events/events.h"
#include "process/process_table.h"
#include "processors/processor_chain.h"
#include "protocols/record.h"

namespace kspan::correlator {

struct SpanBuilderOptions {
  HttpSpanOptions http_spans;
  GenAiOptions genai;
  AgentOptions agents;
};

class SpanBuilder {
 public:
  SpanBuilder(SpanBuilderOptions options, metrics::Registry* metrics, process::ProcessTable* processes,
              Stitcher* stitcher, processors::ProcessorChain* processors);

  // From the connection tracker (conntrack::TrackerSinks).
  void OnRequest(const conntrack::ConnInfo& conn, protocols::RequestStart&& request);
  void OnRecord(const conntrack::ConnInfo& conn, protocols::Record&& record);

  // A process exec'd (after the process table saw it).
  void OnExec(const events::ProcessExecEvent& e);
  // A process ended, after the tracker ended its connections: its exec span and session
  // end, and the processors hear of it.
  void OnExit(const events::ProcessExitEvent& e);
  // About once a second: sessions whose process is gone without an exit event end.
  void Tick(uint64_t now_ns);
  // Shutdown, after the tracker closed everything: sessions still open are cut at `now_ns`.
  void Finish(uint64_t now_ns);

  // Called with the pid of each process found to be an agent (an agent rule names it at
  // exec, or it made an LLM call), once, so the kernel captures its local IPC and stdio.
  void SetAgentMarker(std::function<void(uint32_t pid)> mark) { mark_agent_ = std::move(mark); }
  // The agent a span's process is, "" when none (for the agent graph).
  std::string AgentOf(const model::Span& span) const { return agents_.AgentOf(span); }

 private:
  // Family builders: a span for the record, or nothing (not a call kspan describes).
  std::optional<model::Span> BuildHttp(const conntrack::ConnInfo& conn,
                                       const protocols::http1::Record& record);
  std::optional<model::Span> BuildLocalCall(const conntrack::ConnInfo& conn,
                                            const protocols::jsonrpc::Call& call);

  void MarkAgent(uint32_t pid);
  // An agent's session span, opened once per process; the stitcher places it when a call
  // of the process has no other parent.
  void OpenSession(uint32_t pid);
  // Names a session span at its end (the agent's name may have been learned meanwhile)
  // and hands it to the processors (output lines no other span of the process took).
  void FinishSession(uint32_t pid, model::Span* span);

  SpanBuilderOptions options_;
  process::ProcessTable* processes_;
  Stitcher* stitcher_;
  processors::ProcessorChain* processors_;
  GenAiSpans genai_;
  AgentSpans agents_;
  metrics::Counter* http2_headers_incomplete_;  // HTTP/2 spans with headers HPACK could not decode
  std::function<void(uint32_t)> mark_agent_;
  std::unordered_set<uint32_t> marked_;          // pids told to mark_agent_
  std::unordered_set<uint32_t> sessions_tried_;  // pids OpenSession ran for (once each)
  // Sessions whose process was not in /proc at the last Tick: gone at the next one too,
  // their exit event was lost.
  std::unordered_set<uint32_t> sessions_missing_;
};

}  // namespace kspan::correlator
