// Span metrics, the service graph and their OTLP form, without a kernel: spans built here
// go through the processors, and the registry and the encoded request are read back.
#include "processors/span_metrics.h"

#include <gtest/gtest.h>

#include "common/metrics.h"
#include "common/prometheus.h"
#include "exporters/otlp_metrics.h"
#include "processors/resource_memo.h"
#include "processors/service_graph.h"
#include "testing/model_builders.h"

namespace kspan {
namespace {

using processors::ServiceGraph;
using processors::SpanMetrics;
using testing::MakeResource;

model::Span HttpSpan(model::SpanKind kind, const std::string& service, int status, uint64_t ms,
                     const std::string& trace = "0af7651916cd43dd8448eb211c80319c",
                     const std::string& id = "b7ad6b7169203331", const std::string& parent = "") {
  model::Span s;
  s.kind = kind;
  s.trace_id = testing::TraceIdFrom(trace);
  s.span_id = testing::SpanIdFrom(id);
  if (!parent.empty()) s.parent_span_id = testing::SpanIdFrom(parent);
  s.start_time_unix_nano = 1'000'000'000;
  s.end_time_unix_nano = s.start_time_unix_nano + ms * 1'000'000;
  s.resource = MakeResource(service, 42);
  s.Set("http.request.method", std::string("GET"));
  s.Set("http.response.status_code", int64_t{status});
  s.Set("url.template", std::string("/items/{id}"));
  s.Set("url.path", std::string("/items/7"));
  if (kind == model::SpanKind::kClient) {
    s.Set("server.address", std::string("127.0.0.1"));
    s.Set("server.port", int64_t{8080});
  }
  if (status >= 500) {
    s.status_code = model::StatusCode::kError;
    s.Set("error.type", std::to_string(status));
  }
  return s;
}

const metrics::HistogramSample* FindHistogram(const std::vector<metrics::HistogramSample>& all,
                                              const std::string& name, const metrics::Labels& labels) {
  for (const auto& h : all) {
    if (h.name == name && h.labels == labels) return &h;
  }
  return nullptr;
}

TEST(SpanMetrics, ServerAndClientSpansByTheConventions) {
  metrics::Registry registry;
  SpanMetrics m(&registry);
  model::Span server = HttpSpan(model::SpanKind::kServer, "shop", 200, 30);
  model::Span error = HttpSpan(model::SpanKind::kServer, "shop", 503, 2);
  model::Span client = HttpSpan(model::SpanKind::kClient, "shop", 200, 12);
  EXPECT_TRUE(m.OnExport(server));
  EXPECT_TRUE(m.OnExport(server));
  EXPECT_TRUE(m.OnExport(error));
  EXPECT_TRUE(m.OnExport(client));
  model::Span internal = server;
  internal.kind = model::SpanKind::kInternal;
  EXPECT_TRUE(m.OnExport(internal));  // not measured

  const auto all = registry.HistogramSnapshot();
  const auto* ok = FindHistogram(all, SpanMetrics::kHttpServer,
                                 {{"service.name", "shop"},
                                  {"http.request.method", "GET"},
                                  {"http.response.status_code", "200"},
                                  {"url.template", "/items/{id}"}});
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->data.count, 2u);
  EXPECT_DOUBLE_EQ(ok->data.sum, 0.06);
  const auto* failed = FindHistogram(all, SpanMetrics::kHttpServer,
                                     {{"service.name", "shop"},
                                      {"http.request.method", "GET"},
                                      {"http.response.status_code", "503"},
                                      {"url.template", "/items/{id}"},
                                      {"error.type", "503"}});
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->data.count, 1u);
  const auto* c = FindHistogram(all, SpanMetrics::kHttpClient,
                                {{"service.name", "shop"},
                                 {"http.request.method", "GET"},
                                 {"http.response.status_code", "200"},
                                 {"url.template", "/items/{id}"},
                                 {"server.address", "127.0.0.1"},
                                 {"server.port", "8080"}});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->data.count, 1u);
  EXPECT_EQ(all.size(), 3u) << "no series for the INTERNAL span, none by url.path";
  // The semantic conventions' advised buckets; 30 ms falls in (0.025, 0.05].
  EXPECT_EQ(ok->data.bounds.front(), 0.005);
  EXPECT_EQ(ok->data.counts[3], 2u);
}

TEST(SpanMetrics, DatabaseAndRpcSpans) {
  metrics::Registry registry;
  SpanMetrics m(&registry);
  model::Span db;
  db.kind = model::SpanKind::kClient;
  db.resource = MakeResource("api", 1);
  db.end_time_unix_nano = 2'000'000;
  db.Set("db.system.name", std::string("redis"));
  db.Set("db.operation.name", std::string("GET"));
  model::Span rpc;
  rpc.kind = model::SpanKind::kServer;
  rpc.resource = MakeResource("api", 1);
  rpc.Set("rpc.system.name", std::string("grpc"));
  rpc.Set("rpc.method", std::string("helloworld.Greeter/SayHello"));
  rpc.Set("http.request.method", std::string("POST"));  // gRPC is HTTP/2 too: an RPC first
  m.OnExport(db);
  m.OnExport(rpc);
  const auto all = registry.HistogramSnapshot();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_NE(
      FindHistogram(all, SpanMetrics::kDbClient,
                    {{"service.name", "api"}, {"db.system.name", "redis"}, {"db.operation.name", "GET"}}),
      nullptr);
  EXPECT_NE(FindHistogram(all, SpanMetrics::kRpcServer,
                          {{"service.name", "api"},
                           {"rpc.system.name", "grpc"},
                           {"rpc.method", "helloworld.Greeter/SayHello"}}),
            nullptr);
}

TEST(SpanMetrics, SeriesPastTheCapGoToTheOverflowSeriesAndAreCounted) {
  metrics::Registry registry;
  SpanMetrics m(&registry, /*max_series=*/3);
  for (int i = 0; i < 10; ++i) {
    model::Span s = HttpSpan(model::SpanKind::kServer, "svc-" + std::to_string(i), 200, 1);
    m.OnExport(s);
  }
  const auto all = registry.HistogramSnapshot();
  EXPECT_EQ(all.size(), 4u);
  const auto* overflow = FindHistogram(all, SpanMetrics::kHttpServer, {{"otel.metric.overflow", "true"}});
  ASSERT_NE(overflow, nullptr);
  EXPECT_EQ(overflow->data.count, 7u);
  EXPECT_EQ(registry.Sum("kspan_span_metrics_overflow_total"), 7u);
}

TEST(ServiceGraph, PairsClientAndServerSpansIntoEdges) {
  metrics::Registry registry;
  uint64_t now = 0;
  ServiceGraph g(&registry, {.wait_ns = 1000}, [&] { return now; });
  for (int i = 0; i < 5; ++i) {
    const std::string trace = "0af7651916cd43dd8448eb211c8031" + std::to_string(10 + i);
    model::Span c = HttpSpan(model::SpanKind::kClient, "front", 200, 10, trace, "00000000000000c1");
    model::Span s = HttpSpan(model::SpanKind::kServer, "back", i == 4 ? 500 : 200, 8, trace,
                             "00000000000000d1", "00000000000000c1");
    // Either may come first.
    if (i % 2) {
      g.OnExport(c);
      g.OnExport(s);
    } else {
      g.OnExport(s);
      g.OnExport(c);
    }
  }
  auto edges = g.Edges();
  ASSERT_EQ(edges.size(), 1u);
  const auto& [key, counts] = *edges.begin();
  EXPECT_EQ(key, std::make_tuple(std::string("front"), std::string("back"), std::string("")));
  EXPECT_EQ(counts.requests, 5u);
  EXPECT_EQ(counts.failed, 1u);
  const metrics::Labels labels = {{"client", "front"}, {"server", "back"}, {"connection_type", ""}};
  EXPECT_EQ(registry.GetCounter("traces_service_graph_request_total", labels)->Value(), 5u);
  EXPECT_EQ(registry.GetCounter("traces_service_graph_request_failed_total", labels)->Value(), 1u);
  const auto all = registry.HistogramSnapshot();
  const auto* server_seconds = FindHistogram(all, "traces_service_graph_request_server_seconds", labels);
  ASSERT_NE(server_seconds, nullptr);
  EXPECT_EQ(server_seconds->data.count, 5u);
  EXPECT_NEAR(server_seconds->data.sum, 0.040, 1e-9);
}

TEST(ServiceGraph, LoneSpansExpireDatabasesAreEdgesAtOnce) {
  metrics::Registry registry;
  uint64_t now = 0;
  ServiceGraph g(&registry, {.wait_ns = 1000}, [&] { return now; });
  model::Span lone_client = HttpSpan(model::SpanKind::kClient, "front", 200, 1,
                                     "1af7651916cd43dd8448eb211c80319c", "00000000000000c2");
  model::Span lone_server =
      HttpSpan(model::SpanKind::kServer, "back", 200, 1, "2af7651916cd43dd8448eb211c80319c",
               "00000000000000d2", "00000000000000c9");
  model::Span db;
  db.kind = model::SpanKind::kClient;
  db.resource = MakeResource("front", 1);
  db.Set("db.system.name", std::string("postgresql"));
  g.OnExport(lone_client);
  g.OnExport(lone_server);
  g.OnExport(db);
  EXPECT_EQ(g.Edges().size(), 1u) << "the database edge at once; the others wait";
  now = 5000;  // past the wait: the next span expires them
  model::Span root = HttpSpan(model::SpanKind::kServer, "back", 200, 1);  // no parent: unpaired at once
  g.OnExport(root);
  const auto edges = g.Edges();
  EXPECT_EQ(edges.size(), 2u);
  EXPECT_EQ(edges.count({"front", "postgresql", "database"}), 1u);
  EXPECT_EQ(edges.count({"front", "127.0.0.1", "virtual_node"}), 1u);
  EXPECT_EQ(registry.GetCounter("kspan_service_graph_unpaired_spans_total", {{"side", "client"}})->Value(),
            1u);
  EXPECT_EQ(registry.GetCounter("kspan_service_graph_unpaired_spans_total", {{"side", "server"}})->Value(),
            2u);
}

TEST(ServiceGraph, AgentToolAndAgentCallsAreVirtualNodesByName) {
  metrics::Registry registry;
  uint64_t now = 0;
  ServiceGraph g(&registry, {.wait_ns = 1000}, [&] { return now; });
  model::Span tool;
  tool.kind = model::SpanKind::kClient;
  tool.trace_id = testing::TraceIdFrom("3af7651916cd43dd8448eb211c80319c");
  tool.span_id = testing::SpanIdFrom("00000000000000e1");
  tool.resource = MakeResource("planner", 1);
  tool.Set("gen_ai.operation.name", std::string("execute_tool"));
  tool.Set("gen_ai.tool.name", std::string("search"));
  model::Span sub = tool;
  sub.span_id = testing::SpanIdFrom("00000000000000e2");
  sub.attributes.clear();
  sub.Set("gen_ai.operation.name", std::string("invoke_agent"));
  sub.Set("gen_ai.agent.name", std::string("coder"));
  g.OnExport(tool);
  g.OnExport(sub);
  g.Shutdown();
  const auto edges = g.Edges();
  EXPECT_EQ(edges.count({"planner", "search", "virtual_node"}), 1u);
  EXPECT_EQ(edges.count({"planner", "coder", "virtual_node"}), 1u);
}

// Node names can come from traffic (a tool name, server.address): the edge's series carry
// them through the redactor, while the edge is still found by the name as it came.
TEST(ServiceGraph, LabelsGoThroughTheRedactor) {
  metrics::Registry registry;
  uint64_t now = 0;
  ServiceGraph g(&registry, {.wait_ns = 1000}, [&] { return now; });
  registry.SetLabelRedactor([](std::string* v) {
    if (const size_t at = v->find("cust-"); at != std::string::npos) v->replace(at, 11, "REDACTED");
  });
  for (const char* id : {"00000000000000f1", "00000000000000f2"}) {
    model::Span tool;
    tool.kind = model::SpanKind::kClient;
    tool.trace_id = testing::TraceIdFrom("6af7651916cd43dd8448eb211c80319c");
    tool.span_id = testing::SpanIdFrom(id);
    tool.resource = MakeResource("planner", 1);
    tool.Set("gen_ai.operation.name", std::string("execute_tool"));
    tool.Set("gen_ai.tool.name", std::string("lookup-cust-123456"));
    g.OnExport(tool);
  }
  g.Shutdown();
  EXPECT_EQ(g.Edges().count({"planner", "lookup-cust-123456", "virtual_node"}), 1u);
  const metrics::Labels redacted = {
      {"client", "planner"}, {"server", "lookup-REDACTED"}, {"connection_type", "virtual_node"}};
  EXPECT_EQ(registry.GetCounter("traces_service_graph_request_total", redacted)->Value(), 2u);
  for (const auto& m : registry.Snapshot()) {
    for (const auto& [key, value] : m.labels) EXPECT_EQ(value.find("cust-"), std::string::npos) << m.name;
  }
  for (const auto& m : registry.HistogramSnapshot()) {
    for (const auto& [key, value] : m.labels) EXPECT_EQ(value.find("cust-"), std::string::npos) << m.name;
  }
}

// A CLIENT waits outside the pending table until the next span (ServiceGraph::staged_):
// pairs, expiries and counts come out as when every CLIENT went into the table at once.
TEST(ServiceGraph, ClientWaitingForTheNextSpanPairsAndExpiresAsPending) {
  metrics::Registry registry;
  uint64_t now = 0;
  ServiceGraph g(&registry, {.wait_ns = 1000}, [&] { return now; });
  const std::string a = "4af7651916cd43dd8448eb211c80319c", b = "5af7651916cd43dd8448eb211c80319c",
                    c = "6af7651916cd43dd8448eb211c80319c";
  model::Span ca = HttpSpan(model::SpanKind::kClient, "front", 200, 1, a, "00000000000000a1");
  model::Span cb = HttpSpan(model::SpanKind::kClient, "front", 200, 1, b, "00000000000000b1");
  model::Span sa =
      HttpSpan(model::SpanKind::kServer, "back", 200, 1, a, "00000000000000a2", "00000000000000a1");
  model::Span sb =
      HttpSpan(model::SpanKind::kServer, "back", 500, 1, b, "00000000000000b2", "00000000000000b1");
  // Two clients, then their servers in the other order: the first waits in the table.
  g.OnExport(ca);
  g.OnExport(cb);
  g.OnExport(sb);
  g.OnExport(sa);
  // A client whose server comes after the wait: the client expired first (a virtual-node
  // edge), the server then waits alone.
  model::Span cc = HttpSpan(model::SpanKind::kClient, "front", 200, 1, c, "00000000000000c1");
  model::Span sc =
      HttpSpan(model::SpanKind::kServer, "back", 200, 1, c, "00000000000000c2", "00000000000000c1");
  g.OnExport(cc);
  now = 5000;
  g.OnExport(sc);
  // A last client, alone at shutdown.
  model::Span cd = HttpSpan(model::SpanKind::kClient, "front", 200, 1, a, "00000000000000d1");
  g.OnExport(cd);
  g.Shutdown();
  const auto edges = g.Edges();
  ASSERT_EQ(edges.count({"front", "back", ""}), 1u);
  EXPECT_EQ(edges.at({"front", "back", ""}).requests, 2u);
  EXPECT_EQ(edges.at({"front", "back", ""}).failed, 1u);
  ASSERT_EQ(edges.count({"front", "127.0.0.1", "virtual_node"}), 1u);
  EXPECT_EQ(edges.at({"front", "127.0.0.1", "virtual_node"}).requests, 2u);
  EXPECT_EQ(registry.GetCounter("kspan_service_graph_unpaired_spans_total", {{"side", "client"}})->Value(),
            2u);
  EXPECT_EQ(registry.GetCounter("kspan_service_graph_unpaired_spans_total", {{"side", "server"}})->Value(),
            1u);
}

TEST(ServiceGraph, BoundedPendingAndEdges) {
  metrics::Registry registry;
  ServiceGraph g(&registry, {.wait_ns = UINT64_MAX / 2, .max_pending = 4, .max_edges = 2}, [] { return 1; });
  for (int i = 0; i < 10; ++i) {
    char id[17];
    std::snprintf(id, sizeof id, "%016x", i + 1);
    model::Span c = HttpSpan(model::SpanKind::kClient, "c" + std::to_string(i), 200, 1,
                             "0af7651916cd43dd8448eb211c80319c", id);
    g.OnExport(c);
  }
  EXPECT_EQ(registry.GetCounter("kspan_service_graph_dropped_total", {{"reason", "pending_full"}})->Value(),
            6u);
  // The six given up on became virtual-node edges, two of them within the bound.
  EXPECT_EQ(g.Edges().size(), 2u);
  EXPECT_EQ(registry.GetCounter("kspan_service_graph_dropped_total", {{"reason", "edges_full"}})->Value(),
            4u);
}

// Label values come from traced traffic (a service's name, a route): bytes that are not
// UTF-8 arrive as U+FFFD, or a receiver's protobuf parser would refuse the whole request.
TEST(OtlpMetrics, LabelsThatAreNotUtf8ArriveAsUtf8) {
  metrics::Registry registry;
  SpanMetrics m(&registry);
  model::Span s = HttpSpan(model::SpanKind::kServer, "caf\xE9", 200, 8);
  s.Set("url.template", std::string("/caf\xE9/{id}"));
  m.OnExport(s);
  ::opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest request;
  ASSERT_EQ(exporters::ToExportMetricsRequest(registry.Snapshot(), registry.HistogramSnapshot(), 100, 200,
                                              {{"host.name", "h\xFF"}}, &request),
            1u);
  std::string wire;
  ASSERT_TRUE(request.SerializeToString(&wire));
  ::opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire)) << "a receiver would refuse the request";
  ASSERT_EQ(parsed.resource_metrics_size(), 1);
  std::map<std::string, std::string> resource, point;
  for (const auto& kv : parsed.resource_metrics(0).resource().attributes()) {
    resource[kv.key()] = kv.value().string_value();
  }
  EXPECT_EQ(resource["service.name"], "caf\uFFFD");
  EXPECT_EQ(resource["host.name"], "h\uFFFD");
  for (const auto& kv :
       parsed.resource_metrics(0).scope_metrics(0).metrics(0).histogram().data_points(0).attributes()) {
    point[kv.key()] = kv.value().string_value();
  }
  EXPECT_EQ(point["url.template"], "/caf\uFFFD/{id}");
}

TEST(OtlpMetrics, RegistryToExportRequest) {
  metrics::Registry registry;
  SpanMetrics m(&registry);
  ServiceGraph g(&registry);
  model::Span c = HttpSpan(model::SpanKind::kClient, "front", 200, 10, "0af7651916cd43dd8448eb211c80319c",
                           "00000000000000c1");
  model::Span s = HttpSpan(model::SpanKind::kServer, "back", 200, 8, "0af7651916cd43dd8448eb211c80319c",
                           "00000000000000d1", "00000000000000c1");
  for (model::Span* span : {&c, &s}) {
    m.OnExport(*span);
    g.OnExport(*span);
  }
  registry.GetCounter("kspan_spans_total")->Add(3);  // kspan's own: not exported
  ::opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest request;
  const size_t points =
      exporters::ToExportMetricsRequest(registry.Snapshot(), registry.HistogramSnapshot(), 100, 200,
                                        {{"deployment.environment.name", "test"}}, &request);
  // front: client histogram; back: server histogram; no service: the graph's request,
  // failed (0), client and server histograms.
  EXPECT_EQ(points, 6u);
  ASSERT_EQ(request.resource_metrics_size(), 3);
  std::map<std::string, const ::opentelemetry::proto::metrics::v1::ResourceMetrics*> by_service;
  for (const auto& rm : request.resource_metrics()) {
    std::string service;
    bool env = false;
    for (const auto& kv : rm.resource().attributes()) {
      if (kv.key() == "service.name") service = kv.value().string_value();
      env = env || kv.key() == "deployment.environment.name";
    }
    EXPECT_TRUE(env);
    by_service[service] = &rm;
  }
  ASSERT_EQ(by_service.count("back"), 1u);
  const auto& metric = by_service["back"]->scope_metrics(0).metrics(0);
  EXPECT_EQ(metric.name(), "http.server.request.duration");
  EXPECT_EQ(metric.unit(), "s");
  ASSERT_TRUE(metric.has_histogram());
  EXPECT_EQ(metric.histogram().aggregation_temporality(),
            ::opentelemetry::proto::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
  const auto& p = metric.histogram().data_points(0);
  EXPECT_EQ(p.count(), 1u);
  EXPECT_EQ(p.start_time_unix_nano(), 100u);
  EXPECT_EQ(p.time_unix_nano(), 200u);
  EXPECT_EQ(p.bucket_counts_size(), p.explicit_bounds_size() + 1);
  bool status_is_int = false;
  for (const auto& kv : p.attributes()) {
    EXPECT_NE(kv.key(), "service.name") << "on the resource, not the point";
    if (kv.key() == "http.response.status_code") status_is_int = kv.value().int_value() == 200;
  }
  EXPECT_TRUE(status_is_int);
  ASSERT_EQ(by_service.count(""), 1u);
  bool requests = false;
  for (const auto& mm : by_service[""]->scope_metrics(0).metrics()) {
    if (mm.name() != "traces_service_graph_request_total") continue;
    requests = true;
    ASSERT_TRUE(mm.has_sum());
    EXPECT_TRUE(mm.sum().is_monotonic());
    EXPECT_EQ(mm.sum().data_points(0).as_int(), 1);
  }
  EXPECT_TRUE(requests);
}

TEST(OtlpMetrics, DeltaSubtractsWhatTheBackendHas) {
  metrics::Registry registry;
  const metrics::Labels edge = {{"client", "a"}, {"server", "b"}, {"connection_type", ""}};
  metrics::Counter* requests = registry.GetCounter("traces_service_graph_request_total", edge);
  metrics::Histogram* seconds =
      registry.GetHistogram("traces_service_graph_request_server_seconds", edge, {0.1, 1});
  registry.GetCounter("kspan_spans_total")->Add(9);  // not exported: not in the baseline
  requests->Add(5);
  seconds->Record(0.05);
  auto counters = registry.Snapshot();
  auto histograms = registry.HistogramSnapshot();
  exporters::MetricsBaseline first = exporters::SubtractBaseline({}, &counters, &histograms);
  ASSERT_EQ(counters.size(), 1u);
  EXPECT_EQ(counters[0].value, 5u);
  requests->Add(2);
  seconds->Record(0.5);
  seconds->Record(5);
  counters = registry.Snapshot();
  histograms = registry.HistogramSnapshot();
  exporters::SubtractBaseline(first, &counters, &histograms);
  ASSERT_EQ(counters.size(), 1u);
  EXPECT_EQ(counters[0].value, 2u);
  ASSERT_EQ(histograms.size(), 1u);
  EXPECT_EQ(histograms[0].data.count, 2u);
  EXPECT_EQ(histograms[0].data.counts, (std::vector<uint64_t>{0, 1, 1}));
  EXPECT_NEAR(histograms[0].data.sum, 5.5, 1e-9);
  ::opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest request;
  exporters::ToExportMetricsRequest(counters, histograms, 100, 200, {}, &request, /*delta=*/true);
  ASSERT_EQ(request.resource_metrics_size(), 1);
  for (const auto& m : request.resource_metrics(0).scope_metrics(0).metrics()) {
    const auto t = m.has_sum() ? m.sum().aggregation_temporality() : m.histogram().aggregation_temporality();
    EXPECT_EQ(t, ::opentelemetry::proto::metrics::v1::AGGREGATION_TEMPORALITY_DELTA) << m.name();
  }
}

// Exemplars: one a bucket, the most recent span wins, with its ids, value and end time.
TEST(SpanMetrics, ExemplarsOnePerBucketMostRecentWins) {
  metrics::Registry registry;
  SpanMetrics m(&registry);
  model::Span a = HttpSpan(model::SpanKind::kServer, "svc", 200, 7, "0af7651916cd43dd8448eb211c80319c",
                           "00000000000000a1");
  model::Span b = HttpSpan(model::SpanKind::kServer, "svc", 200, 9, "1af7651916cd43dd8448eb211c80319c",
                           "00000000000000b1");
  b.start_time_unix_nano += 5'000'000'000;  // later
  b.end_time_unix_nano += 5'000'000'000;
  model::Span c = HttpSpan(model::SpanKind::kServer, "svc", 200, 300, "2af7651916cd43dd8448eb211c80319c",
                           "00000000000000c1");
  for (model::Span* span : {&a, &b, &c}) m.OnExport(*span);
  const auto all = registry.HistogramSnapshot();
  ASSERT_EQ(all.size(), 1u);
  const metrics::Histogram::Data& d = all[0].data;
  ASSERT_EQ(d.exemplars.size(), d.counts.size());
  size_t kept = 0;
  for (size_t i = 0; i < d.exemplars.size(); ++i) {
    if (d.exemplars[i].time_unix_nano == 0) {
      EXPECT_EQ(d.counts[i], 0u) << "bucket " << i << " has counts but no exemplar";
      continue;
    }
    ++kept;
    EXPECT_GT(d.counts[i], 0u);
  }
  EXPECT_EQ(kept, 2u);
  // 7 ms and 9 ms share le=0.01 (index 1): b, the later, is its exemplar.
  const metrics::Exemplar& e1 = d.exemplars[1];
  EXPECT_EQ(e1.trace_id, b.trace_id.bytes);
  EXPECT_EQ(e1.span_id, b.span_id.bytes);
  EXPECT_DOUBLE_EQ(e1.value, 0.009);
  EXPECT_EQ(e1.time_unix_nano, b.end_time_unix_nano);
  // 300 ms: le=0.5 (index 7).
  EXPECT_EQ(d.exemplars[7].span_id, c.span_id.bytes);
  EXPECT_DOUBLE_EQ(d.exemplars[7].value, 0.3);
}

// The exemplars in the OTLP request, read back from its bytes; with delta temporality an
// exemplar the backend has already is not sent again.
TEST(OtlpMetrics, HistogramPointsCarryExemplars) {
  metrics::Registry registry;
  SpanMetrics m(&registry);
  model::Span a = HttpSpan(model::SpanKind::kServer, "svc", 200, 7, "0af7651916cd43dd8448eb211c80319c",
                           "00000000000000a1");
  model::Span c = HttpSpan(model::SpanKind::kServer, "svc", 200, 300, "2af7651916cd43dd8448eb211c80319c",
                           "00000000000000c1");
  m.OnExport(a);
  m.OnExport(c);
  namespace pbm = ::opentelemetry::proto::collector::metrics::v1;
  const auto decode = [](const std::vector<metrics::Sample>& counters,
                         const std::vector<metrics::HistogramSample>& histograms, bool delta) {
    pbm::ExportMetricsServiceRequest request;
    exporters::ToExportMetricsRequest(counters, histograms, 100, 200, {}, &request, delta);
    std::string bytes;
    EXPECT_TRUE(request.SerializeToString(&bytes));
    pbm::ExportMetricsServiceRequest back;
    EXPECT_TRUE(back.ParseFromString(bytes));
    return back;
  };
  auto counters = registry.Snapshot();
  auto histograms = registry.HistogramSnapshot();
  const auto first = exporters::SubtractBaseline({}, &counters, &histograms);
  pbm::ExportMetricsServiceRequest back = decode(counters, histograms, true);
  ASSERT_EQ(back.resource_metrics_size(), 1);
  const auto& point = back.resource_metrics(0).scope_metrics(0).metrics(0).histogram().data_points(0);
  ASSERT_EQ(point.exemplars_size(), 2);
  const auto& e0 = point.exemplars(0);
  EXPECT_EQ(e0.trace_id(), std::string(reinterpret_cast<const char*>(a.trace_id.bytes.data()), 16));
  EXPECT_EQ(e0.span_id(), std::string(reinterpret_cast<const char*>(a.span_id.bytes.data()), 8));
  EXPECT_DOUBLE_EQ(e0.as_double(), 0.007);
  EXPECT_EQ(e0.time_unix_nano(), a.end_time_unix_nano);
  EXPECT_EQ(point.exemplars(1).span_id(),
            std::string(reinterpret_cast<const char*>(c.span_id.bytes.data()), 8));
  EXPECT_DOUBLE_EQ(point.exemplars(1).as_double(), 0.3);

  // Next interval: one new span in le=0.5; a's exemplar went out already.
  model::Span d = HttpSpan(model::SpanKind::kServer, "svc", 200, 400, "3af7651916cd43dd8448eb211c80319c",
                           "00000000000000d1");
  d.start_time_unix_nano += 1'000'000'000;
  d.end_time_unix_nano += 1'000'000'000;
  m.OnExport(d);
  counters = registry.Snapshot();
  histograms = registry.HistogramSnapshot();
  exporters::SubtractBaseline(first, &counters, &histograms);
  back = decode(counters, histograms, true);
  const auto& next = back.resource_metrics(0).scope_metrics(0).metrics(0).histogram().data_points(0);
  EXPECT_EQ(next.count(), 1u);
  ASSERT_EQ(next.exemplars_size(), 1);
  EXPECT_EQ(next.exemplars(0).span_id(),
            std::string(reinterpret_cast<const char*>(d.span_id.bytes.data()), 8));
  // Cumulative keeps every bucket's latest: a's, and d's in place of c's.
  back = decode(registry.Snapshot(), registry.HistogramSnapshot(), false);
  EXPECT_EQ(back.resource_metrics(0).scope_metrics(0).metrics(0).histogram().data_points(0).exemplars_size(),
            2);
}

TEST(OtlpMetrics, EveryExportedNameIsDescribedForPrometheusToo) {
  for (const char* name : {SpanMetrics::kHttpServer, SpanMetrics::kHttpClient, SpanMetrics::kRpcServer,
                           SpanMetrics::kRpcClient, SpanMetrics::kDbClient}) {
    EXPECT_NE(exporters::FindExportedMetric(name), nullptr) << name;
    EXPECT_TRUE(metrics::HasMetricInfo(name)) << name;
    EXPECT_EQ(metrics::MetricInfo(name).type, "histogram") << name;
  }
}

// The memo the processors keep per resource (processors/resource_memo.h): made once per
// resource while it is among the last few, the oldest replaced, each held so its address
// is not reused while remembered.
TEST(ResourceMemo, MakesOncePerResourceAndReplacesTheOldest) {
  processors::ResourceMemo<std::string_view, 2> memo;
  int made = 0;
  auto service = [&made](const std::shared_ptr<const model::Resource>& r) {
    ++made;
    return processors::ServiceNameOf(r.get());
  };
  auto a = MakeResource("a", 1), b = MakeResource("b", 2), c = MakeResource("c", 3);
  EXPECT_EQ(memo.Get(a, service), "a");
  EXPECT_EQ(memo.Get(b, service), "b");
  EXPECT_EQ(memo.Get(a, service), "a");
  EXPECT_EQ(made, 2) << "a and b are remembered";
  EXPECT_EQ(memo.Get(c, service), "c");  // replaces a, the oldest made
  EXPECT_EQ(memo.Get(b, service), "b");
  EXPECT_EQ(made, 3);
  EXPECT_EQ(memo.Get(a, service), "a");
  EXPECT_EQ(made, 4) << "a was replaced, so made again";
  EXPECT_EQ(memo.Get(nullptr, service), "unknown_service");
  EXPECT_EQ(memo.Get(nullptr, service), "unknown_service");
  EXPECT_EQ(made, 5) << "no resource is remembered like one";

  // A remembered resource stays alive: the view it gave stays valid.
  std::weak_ptr<const model::Resource> held = c;
  processors::ResourceMemo<std::string_view, 2> keep;
  const std::string_view name = keep.Get(c, service);
  c.reset();
  ASSERT_FALSE(held.expired());
  EXPECT_EQ(name, "c");
}

TEST(ResourceMemo, ServiceNameOfAResource) {
  EXPECT_EQ(processors::ServiceNameOf(MakeResource("shop", 1).get()), "shop");
  EXPECT_EQ(processors::ServiceNameOf(nullptr), "unknown_service");
  model::Resource numeric;
  numeric.attributes.push_back({"service.name", int64_t{7}});
  EXPECT_EQ(processors::ServiceNameOf(&numeric), "unknown_service") << "not a string: none";
}

}  // namespace
}  // namespace kspan
