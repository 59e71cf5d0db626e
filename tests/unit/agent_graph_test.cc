#include "processors/agent_graph.h"

#include <gtest/gtest.h>

namespace kspan::processors {
namespace {

model::Span Client(std::vector<model::Attribute> attrs, uint64_t ms, bool error = false) {
  model::Span s;
  s.kind = model::SpanKind::kClient;
  s.start_time_unix_nano = 1'000'000'000;
  s.end_time_unix_nano = s.start_time_unix_nano + ms * 1'000'000;
  s.attributes = std::move(attrs);
  if (error) s.status_code = model::StatusCode::kError;
  return s;
}

TEST(AgentGraphTest, EdgesByKindWithCountsTokensAndPercentiles) {
  metrics::Registry m;
  AgentGraph g(&m);
  for (int i = 0; i < 100; ++i) {
    g.OnSpan(Client({{"gen_ai.operation.name", std::string("chat")},
                     {"gen_ai.request.model", std::string("gpt-4o")},
                     {"gen_ai.usage.input_tokens", int64_t{10}},
                     {"gen_ai.usage.output_tokens", int64_t{2}}},
                    i < 90 ? 100 : 1000),
             "planner");
  }
  g.OnSpan(Client({{"gen_ai.operation.name", std::string("execute_tool")},
                   {"gen_ai.tool.name", std::string("grep")}},
                  5, /*error=*/true),
           "planner");
  g.OnSpan(Client({{"gen_ai.operation.name", std::string("invoke_agent")},
                   {"gen_ai.agent.name", std::string("coder")}},
                  50),
           "planner");
  g.OnSpan(Client({{"server.address", std::string("db")}, {"server.port", int64_t{5432}}}, 1), "planner");
  // Not an agent, and not a CLIENT span: ignored.
  g.OnSpan(Client({{"gen_ai.operation.name", std::string("chat")}}, 1), "");
  model::Span server = Client({}, 1);
  server.kind = model::SpanKind::kServer;
  g.OnSpan(server, "planner");

  const auto edges = g.Edges();
  ASSERT_EQ(edges.size(), 4u);
  EXPECT_EQ(edges[0].kind, "agent");
  EXPECT_EQ(edges[0].to, "coder");
  EXPECT_EQ(edges[1].kind, "model");
  EXPECT_EQ(edges[1].to, "gpt-4o");
  EXPECT_EQ(edges[1].calls, 100u);
  EXPECT_EQ(edges[1].input_tokens, 1000u);
  EXPECT_EQ(edges[1].output_tokens, 200u);
  EXPECT_NEAR(edges[1].p50_ms, 100, 10);
  EXPECT_NEAR(edges[1].p95_ms, 1000, 100);
  EXPECT_EQ(edges[2].kind, "service");
  EXPECT_EQ(edges[2].to, "db:5432");
  EXPECT_EQ(edges[3].kind, "tool");
  EXPECT_EQ(edges[3].errors, 1u);

  EXPECT_EQ(m.Sum("kspan_agent_graph_calls_total"), 103u);
  EXPECT_EQ(m.Sum("kspan_agent_graph_errors_total"), 1u);
  EXPECT_NE(g.Json().find(R"({"from":"planner","to":"gpt-4o","kind":"model","calls":100,"errors":0,)"),
            std::string::npos)
      << g.Json();
  EXPECT_NE(g.Text().find("planner"), std::string::npos);
}

TEST(AgentGraphTest, BoundedEdgesAndSafeText) {
  metrics::Registry m;
  AgentGraph g(&m);
  for (size_t i = 0; i < AgentGraph::kMaxEdges + 5; ++i) {
    g.OnSpan(Client({{"server.address", "h" + std::to_string(i)}}, 1), "a");
  }
  EXPECT_EQ(g.Edges().size(), AgentGraph::kMaxEdges);
  EXPECT_EQ(m.Sum("kspan_agent_graph_dropped_total"), 5u);

  AgentGraph t(&m);
  t.OnSpan(Client({{"server.address", std::string("evil\x1b[2J")}}, 1), "a\nb");
  EXPECT_EQ(t.Text().find('\x1b'), std::string::npos);
  EXPECT_NE(t.Text().find("a?b"), std::string::npos);
}

// Agent, model and tool names and hosts come from traffic, and the graph is built before
// the exported spans are redacted: what it shows (edges, JSON, text, metrics) goes through
// the registry's redactor, while calls still add up on the edge of the names as they came.
TEST(AgentGraphTest, NamesAreShownAsTheRedactionRulesLeaveThem) {
  metrics::Registry m;
  m.SetLabelRedactor([](std::string* v) {
    if (const size_t at = v->find("cust-"); at != std::string::npos) v->replace(at, 11, "REDACTED");
  });
  AgentGraph g(&m);
  for (int i = 0; i < 2; ++i) {
    g.OnSpan(Client({{"gen_ai.operation.name", std::string("execute_tool")},
                     {"gen_ai.tool.name", std::string("refund-cust-123456")}},
                    5),
             "support-cust-654321");
  }
  const auto edges = g.Edges();
  ASSERT_EQ(edges.size(), 1u);
  EXPECT_EQ(edges[0].from, "support-REDACTED");
  EXPECT_EQ(edges[0].to, "refund-REDACTED");
  EXPECT_EQ(edges[0].calls, 2u);
  EXPECT_EQ(g.Json().find("cust-"), std::string::npos) << g.Json();
  EXPECT_EQ(g.Text().find("cust-"), std::string::npos) << g.Text();
  for (const auto& c : m.Snapshot()) {
    for (const auto& [key, value] : c.labels) EXPECT_EQ(value.find("cust-"), std::string::npos) << c.name;
  }
  EXPECT_EQ(m.GetCounter("kspan_agent_graph_calls_total",
                         {{"from", "support-REDACTED"}, {"to", "refund-REDACTED"}, {"kind", "tool"}})
                ->Value(),
            2u);
}

}  // namespace
}  // namespace kspan::processors
