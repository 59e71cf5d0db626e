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
#include <deque>
#include <functional>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/metrics.h"
#include "conntrack/conn_info.h"
#include "correlator/agent_spans.h"
#include "correlator/db_span.h"
#include "correlator/genai_cost.h"
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
  // What LLM calls cost (genai_cost.h); empty: every call with usage is unpriced.
  genai::PriceTable prices;
};

class SpanBuilder {
 public:
  // Bounds of the hold of tool runs (below): spans held at once, and how long each may
  // wait (a Tick, about once a second, releases those older than this once kspan has also
  // drained kHoldBatches batches of events since the hold began: a kspan that lags behind
  // its events, e.g. on a loaded machine, reads the answer before it gives up).
  static constexpr size_t kMaxHeld = 256;
  static constexpr uint64_t kHoldNs = 1'000'000'000;
  static constexpr uint64_t kHoldBatches = 3;
  static constexpr size_t kMaxUnrunEvents = 16;  // kspan.agent.tool_call.not_run events a session

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
  // After each batch of events (one ring-buffer poll) and the tracker's drain of it.
  void AfterBatch() { ++batches_; }
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
  // `links` gets the links an LLM call's span asks for; `llm` whether it was one; `plain`
  // whether neither the GenAI nor the agent builders described it (then the span has no
  // gen_ai.* attribute).
  std::optional<model::Span> BuildHttp(const conntrack::ConnInfo& conn,
                                       const protocols::http1::Record& record, uint64_t seq,
                                       std::vector<NodeLink>* links, bool* llm, bool* plain);
  std::optional<model::Span> BuildLocalCall(const conntrack::ConnInfo& conn,
                                            const protocols::jsonrpc::Call& call);

  // A finished span leaves: the processors, then the stitcher.
  void Emit(uint32_t pid, RequestDone&& done, model::Span&& span);
  // execute_tool CLIENT spans waiting for the LLM answer that asked for them
  // (AgentSpans::LinkToolRun): at most kMaxHeld, each at most kHoldNs (checked each Tick),
  // released when the agent's earlier requests are answered, at its exit, or at Finish;
  // counted in kspan_agent_tool_runs_held_total by how the hold ended.
  struct Held {
    uint32_t pid = 0;
    RequestDone done;
    model::Span span;
    uint64_t batch = 0;  // batches_ when the hold began
  };
  enum class HoldEnd { kAnswered, kTimeout, kFull, kExit };
  // Releases the held spans of `pid` (all: pid 0) that no longer wait, or all of them
  // with `force` (linked as well as they can be), counting each as `end`.
  void ReleaseHeld(uint32_t pid, bool force, HoldEnd end, uint64_t now_ns = 0);
  // Links of LLM calls built before the run whose result they sent (AgentSpans::LinkToolRun).
  void AddLateLinks(std::vector<std::pair<NodeKey, NodeLink>>&& late);
  std::deque<Held> held_;
  metrics::Counter* held_ends_[4];
  uint64_t batches_ = 0;  // AfterBatch calls

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
  GenAiCost cost_;
  AgentSpans agents_;
  // What each open session's LLM calls cost so far: kspan.gen_ai.cost of the session span.
  std::unordered_map<uint32_t, double> session_cost_;
  metrics::Counter* http2_headers_incomplete_;  // HTTP/2 spans with headers HPACK could not decode
  std::function<void(uint32_t)> mark_agent_;
  std::unordered_set<uint32_t> marked_;          // pids told to mark_agent_
  std::unordered_set<uint32_t> sessions_tried_;  // pids OpenSession ran for (once each)
  // Sessions whose process was not in /proc at the last Tick: gone at the next one too,
  // their exit event was lost.
  std::unordered_set<uint32_t> sessions_missing_;
};

}  // namespace kspan::correlator
