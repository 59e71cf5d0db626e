// The agent call graph: what each agent called, aggregated from the spans kspan exports.
//
//   span (of an agent's process)                     edge  from → to
//   -----------------------------------------------  ----  ----------------------------------
//   CLIENT chat / embeddings / text_completion       model agent → gen_ai.request.model
//   CLIENT execute_tool                              tool  agent → gen_ai.tool.name
//   CLIENT invoke_agent                              agent agent → gen_ai.agent.name
//   any other CLIENT span                            service agent → server.address:port
//   (MCP and A2A methods other than the above — initialize, tools/list, tasks/get — are
//   protocol upkeep, not edges)
//
// Per edge: calls, errors (span status ERROR), duration percentiles (p50, p95, p99, from a
// log-bucketed histogram: within 10% of the true value) and tokens in/out. The graph is
// bounded (kMaxEdges); calls on edges past it are counted in
// kspan_agent_graph_dropped_total. Edges are also metrics (kspan_agent_graph_calls_total,
// _errors_total, _tokens_total and the histogram kspan_agent_graph_duration_seconds), so the
// stop line carries them. Names come from traffic: the graph runs before the redaction of
// exported spans, so an edge shows its names (in Edges, Json, Text and its metrics) through
// the registry's label redactor (metrics::Registry::Redacted), as the spans show them.
//
// As a span processor (span_processor.h) it reads each span at OnExport, with the agent
// `agent_of` names for the span's process.
//
// Thread safety: one thread calls OnSpan / OnExport; Edges()/Json()/Text() may run on
// another.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/metrics.h"
#include "model/span.h"
#include "processors/span_processor.h"

namespace kspan::processors {

class AgentGraph : public SpanProcessor {
 public:
  static constexpr size_t kMaxEdges = 1024;
  // The agent a span's process is ("" when none).
  using AgentOf = std::function<std::string(const model::Span&)>;

  explicit AgentGraph(metrics::Registry* metrics, AgentOf agent_of = nullptr);

  bool OnExport(model::Span& span) noexcept override;

  // A finished span of a process that is the agent `agent` (empty: not an agent: ignored).
  void OnSpan(const model::Span& span, std::string_view agent);

  struct Edge {
    std::string from, to, kind;  // kind: model, tool, agent, service
    uint64_t calls = 0, errors = 0, input_tokens = 0, output_tokens = 0;
    double p50_ms = 0, p95_ms = 0, p99_ms = 0;
  };
  // Sorted by from, kind, to (as they came, before redaction).
  std::vector<Edge> Edges() const;
  // {"edges":[{"from":…,"to":…,"kind":…,"calls":…,"errors":…,"input_tokens":…,
  //  "output_tokens":…,"p50_ms":…,"p95_ms":…,"p99_ms":…},…]}
  std::string Json() const;
  // A table for a terminal, one edge per line; empty when there are no edges.
  std::string Text() const;

 private:
  // Durations in buckets 10% apart from 1 µs (bucket i: up to 1 µs * 1.1^i), ~2.5 h at the top.
  static constexpr size_t kBuckets = 160;
  struct Stats {
    std::string from, to;  // as shown: redacted
    uint64_t calls = 0, errors = 0, input_tokens = 0, output_tokens = 0;
    std::array<uint32_t, kBuckets> durations{};
    metrics::Counter* calls_metric = nullptr;
    metrics::Counter* errors_metric = nullptr;
    metrics::Counter* input_metric = nullptr;
    metrics::Counter* output_metric = nullptr;
    metrics::Histogram* duration_metric = nullptr;
  };
  static double Percentile(const Stats& s, double q);

  metrics::Registry* metrics_;
  AgentOf agent_of_;
  metrics::Counter* dropped_;
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string>, Stats> edges_;  // from, kind, to
};

}  // namespace kspan::processors
