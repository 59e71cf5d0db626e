#include "processors/agent_graph.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include "common/json.h"

namespace kspan::processors {
namespace {

const std::vector<double> kSecondsBuckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,     2.5,  5,     10,   30,  60};
constexpr double kBucketBase = 1.1;
constexpr double kFirstBucketNs = 1000;

const std::string* Str(const model::Span& s, std::string_view key) {
  const model::AttributeValue* v = s.Find(key);
  return v ? std::get_if<std::string>(v) : nullptr;
}

const int64_t* Int(const model::Span& s, std::string_view key) {
  const model::AttributeValue* v = s.Find(key);
  return v ? std::get_if<int64_t>(v) : nullptr;
}

size_t BucketOf(uint64_t ns) {
  if (ns <= kFirstBucketNs) return 0;
  const double i = std::ceil(std::log(static_cast<double>(ns) / kFirstBucketNs) / std::log(kBucketBase));
  return std::min<size_t>(static_cast<size_t>(i), 159);
}

}  // namespace

AgentGraph::AgentGraph(metrics::Registry* metrics, AgentOf agent_of)
    : metrics_(metrics),
      agent_of_(std::move(agent_of)),
      dropped_(metrics->GetCounter("kspan_agent_graph_dropped_total")) {}

bool AgentGraph::OnExport(model::Span& span) noexcept {
  // Only CLIENT spans are edges (OnSpan): the others need no look-up of their agent.
  if (agent_of_ && span.kind == model::SpanKind::kClient) OnSpan(span, agent_of_(span));
  return true;
}

void AgentGraph::OnSpan(const model::Span& span, std::string_view agent) {
  if (agent.empty() || span.kind != model::SpanKind::kClient) return;
  const std::string* op = Str(span, "gen_ai.operation.name");
  std::string kind, to;
  if (op && (*op == "chat" || *op == "embeddings" || *op == "text_completion")) {
    kind = "model";
    const std::string* model = Str(span, "gen_ai.request.model");
    to = model ? *model : "";
  } else if (op && *op == "execute_tool") {
    kind = "tool";
    const std::string* tool = Str(span, "gen_ai.tool.name");
    to = tool ? *tool : "";
  } else if (op && *op == "invoke_agent") {
    kind = "agent";
    const std::string* name = Str(span, "gen_ai.agent.name");
    to = name ? *name : "";
  } else if (Str(span, "mcp.method.name") || Str(span, "rpc.method")) {
    return;  // protocol upkeep (initialize, tools/list, tasks/get): not an edge of its own
  } else {
    kind = "service";
    const std::string* host = Str(span, "server.address");
    const int64_t* port = Int(span, "server.port");
    to = (host ? *host : "?") + (port ? ":" + std::to_string(*port) : "");
  }

  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_tuple(std::string(agent), kind, to);
  auto it = edges_.find(key);
  if (it == edges_.end()) {
    if (edges_.size() >= kMaxEdges) {
      dropped_->Add();
      return;
    }
    Stats s;
    const metrics::Labels labels =
        metrics_->Redacted({{"from", std::string(agent)}, {"to", to}, {"kind", kind}});
    s.from = labels[0].second;
    s.to = labels[1].second;
    s.calls_metric = metrics_->GetCounter("kspan_agent_graph_calls_total", labels);
    s.errors_metric = metrics_->GetCounter("kspan_agent_graph_errors_total", labels);
    metrics::Labels in = labels, out = labels;
    in.emplace_back("type", "input");
    out.emplace_back("type", "output");
    s.input_metric = metrics_->GetCounter("kspan_agent_graph_tokens_total", in);
    s.output_metric = metrics_->GetCounter("kspan_agent_graph_tokens_total", out);
    s.duration_metric = metrics_->GetHistogram("kspan_agent_graph_duration_seconds", labels, kSecondsBuckets);
    it = edges_.emplace(std::move(key), s).first;
  }
  Stats& s = it->second;
  const uint64_t ns = span.end_time_unix_nano > span.start_time_unix_nano
                          ? span.end_time_unix_nano - span.start_time_unix_nano
                          : 0;
  ++s.calls;
  s.calls_metric->Add();
  if (span.status_code == model::StatusCode::kError) {
    ++s.errors;
    s.errors_metric->Add();
  }
  if (const int64_t* in = Int(span, "gen_ai.usage.input_tokens"); in && *in > 0) {
    s.input_tokens += static_cast<uint64_t>(*in);
    s.input_metric->Add(static_cast<uint64_t>(*in));
  }
  if (const int64_t* out = Int(span, "gen_ai.usage.output_tokens"); out && *out > 0) {
    s.output_tokens += static_cast<uint64_t>(*out);
    s.output_metric->Add(static_cast<uint64_t>(*out));
  }
  ++s.durations[BucketOf(ns)];
  s.duration_metric->Record(static_cast<double>(ns) / 1e9);
}

double AgentGraph::Percentile(const Stats& s, double q) {
  if (s.calls == 0) return 0;
  const double rank = q * static_cast<double>(s.calls);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += s.durations[i];
    if (static_cast<double>(seen) >= rank)
      return kFirstBucketNs * std::pow(kBucketBase, static_cast<double>(i)) / 1e6;
  }
  return kFirstBucketNs * std::pow(kBucketBase, kBuckets - 1) / 1e6;
}

std::vector<AgentGraph::Edge> AgentGraph::Edges() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Edge> out;
  out.reserve(edges_.size());
  for (const auto& [key, s] : edges_) {
    Edge e;
    e.from = s.from;
    e.kind = std::get<1>(key);
    e.to = s.to;
    e.calls = s.calls;
    e.errors = s.errors;
    e.input_tokens = s.input_tokens;
    e.output_tokens = s.output_tokens;
    e.p50_ms = Percentile(s, 0.50);
    e.p95_ms = Percentile(s, 0.95);
    e.p99_ms = Percentile(s, 0.99);
    out.push_back(std::move(e));
  }
  return out;
}

std::string AgentGraph::Json() const {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("edges");
  w.BeginArray();
  for (const Edge& e : Edges()) {
    w.BeginObject();
    w.Key("from");
    w.String(e.from);
    w.Key("to");
    w.String(e.to);
    w.Key("kind");
    w.String(e.kind);
    w.Key("calls");
    w.Uint(e.calls);
    w.Key("errors");
    w.Uint(e.errors);
    w.Key("input_tokens");
    w.Uint(e.input_tokens);
    w.Key("output_tokens");
    w.Uint(e.output_tokens);
    w.Key("p50_ms");
    w.Double(e.p50_ms);
    w.Key("p95_ms");
    w.Double(e.p95_ms);
    w.Key("p99_ms");
    w.Double(e.p99_ms);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

std::string AgentGraph::Text() const {
  const std::vector<Edge> edges = Edges();
  if (edges.empty()) return "";
  std::string out = "agent call graph:\n";
  char line[512];
  // Names come from traffic: no control characters reach the terminal.
  auto safe = [](std::string s) {
    for (char& c : s) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return s;
  };
  for (const Edge& e : edges) {
    std::snprintf(
        line, sizeof(line), "  %-20s -> %-8s %-30s calls=%llu errors=%llu p50=%.1fms p95=%.1fms p99=%.1fms",
        safe(e.from).c_str(), e.kind.c_str(), safe(e.to).c_str(), static_cast<unsigned long long>(e.calls),
        static_cast<unsigned long long>(e.errors), e.p50_ms, e.p95_ms, e.p99_ms);
    out += line;
    if (e.input_tokens || e.output_tokens) {
      std::snprintf(line, sizeof(line), " tokens=%llu/%llu", static_cast<unsigned long long>(e.input_tokens),
                    static_cast<unsigned long long>(e.output_tokens));
      out += line;
    }
    out += '\n';
  }
  return out;
}

}  // namespace kspan::processors
