#include "agent/status_server.h"

#include <kspan/version.h>
#include <unistd.h>

#include "common/json.h"
#include "common/prometheus.h"
#include "ui/ui_routes.h"

namespace kspan::agent {

DropTotals CountDrops(const metrics::Registry& m) {
  DropTotals d;
  for (const metrics::Sample& c : m.Snapshot()) {
    // Kernel counters are read into the registry about once a second (agent.cc).
    if (c.name == "kspan_kernel_counts_total" && !c.labels.empty() &&
        c.labels[0].second.starts_with("ring_buffer_full_")) {
      d.ring_buffer_full += c.value;
    }
  }
  d.malformed_event = m.Sum("kspan_events_dropped_total");
  d.export_queue_full = m.Sum("kspan_spans_dropped_total");
  d.parse_failed = m.Sum("kspan_parse_failures_total");
  d.conn_evicted = m.Sum("kspan_connections_evicted_total");
  return d;
}

std::string StatusJson(const StatusSources& s) {
  const metrics::Registry& m = *s.metrics;
  const DropTotals drops = CountDrops(m);
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("version");
  w.String(KSPAN_VERSION);
  w.Key("pid");
  w.Int(static_cast<int64_t>(getpid()));
  w.Key("uptime_seconds");
  w.Double(std::chrono::duration<double>(std::chrono::steady_clock::now() - s.started).count());
  w.Key("listen");
  w.String(s.listen);
  const std::string unhealthy = s.unhealthy ? s.unhealthy() : "";
  w.Key("healthy");
  w.Bool(unhealthy.empty());
  if (!unhealthy.empty()) {
    w.Key("unhealthy");
    w.String(unhealthy);
  }
  w.Key("events");
  w.Uint(m.Sum("kspan_events_total"));
  w.Key("spans");
  w.Uint(m.Sum("kspan_spans_total"));
  w.Key("drops");
  w.BeginObject();
  w.Key("ring_buffer_full");
  w.Uint(drops.ring_buffer_full);
  w.Key("malformed_event");
  w.Uint(drops.malformed_event);
  w.Key("export_queue_full");
  w.Uint(drops.export_queue_full);
  w.Key("parse_failed");
  w.Uint(drops.parse_failed);
  w.Key("conn_evicted");
  w.Uint(drops.conn_evicted);
  w.EndObject();
  w.Key("export_failures");
  w.Uint(m.Sum("kspan_export_failures_total"));
  w.EndObject();
  out += '\n';
  return out;
}

void AddStatusRoutes(http::HttpServer* server, StatusSources sources) {
  constexpr const char* kJson = "application/json";
  // OpenMetrics (with exemplars) when the scraper asks for it, else the classic text.
  server->Handle("/metrics", [m = sources.metrics](const http::Request& request) {
    for (const auto& [name, value] : request.headers) {
      if (name == "accept" && metrics::AcceptsOpenMetrics(value)) {
        return http::Response{200,
                              std::string(metrics::kOpenMetricsContentType),
                              metrics::OpenMetricsText(*m),
                              {{"Vary", "Accept"}}};
      }
    }
    return http::Response{
        200, std::string(metrics::kPrometheusContentType), metrics::PrometheusText(*m), {{"Vary", "Accept"}}};
  });
  server->Handle("/api/agent-graph", [g = sources.graph](const http::Request&) {
    return http::Response{200, kJson, (g ? g->Json() : std::string("{\"edges\":[]}")) + "\n", {}};
  });
  server->Handle("/api/status", [sources](const http::Request&) {
    return http::Response{200, kJson, StatusJson(sources), {}};
  });
  server->Handle("/healthz", [unhealthy = sources.unhealthy](const http::Request&) {
    const std::string why = unhealthy ? unhealthy() : "";
    if (!why.empty()) return http::Response{503, "text/plain; charset=utf-8", why + "\n", {}};
    return http::Response{200, "text/plain; charset=utf-8", "ok\n", {}};
  });
}

Result<std::unique_ptr<StatusServer>> StatusServer::Listen(const std::string& listen,
                                                           metrics::Registry* metrics) {
  auto address = http::ParseListenAddress("--listen", listen);
  if (!address.ok()) return address.status();
  http::ServerOptions options;
  options.address = *address;
  auto server = std::make_unique<http::HttpServer>(options, metrics);
  RETURN_IF_ERROR(server->Listen());
  return std::unique_ptr<StatusServer>(new StatusServer(std::move(server), metrics));
}

Status StatusServer::Start(const processors::AgentGraph* graph, std::chrono::steady_clock::time_point started,
                           store::TraceStore* store) {
  StatusSources sources;
  sources.metrics = metrics_;
  sources.graph = graph;
  sources.started = started;
  sources.listen = address();
  sources.unhealthy = [this] { return Unhealthy(); };
  AddStatusRoutes(server_.get(), std::move(sources));
  if (store) ui::AddUiRoutes(server_.get(), store);
  Beat();
  return server_->Start();
}

void StatusServer::Stop() {
  stopping_.store(true);
  server_->Stop();
}

std::string StatusServer::Unhealthy() const {
  if (stopping_.load()) return "stopping";
  const auto idle = std::chrono::steady_clock::duration(Now() - last_beat_.load(std::memory_order_relaxed));
  if (idle > kStallAfter) {
    return "stalled: the event loop has not run for " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(idle).count()) + " s";
  }
  return "";
}

}  // namespace kspan::agent
