// The agent's own state over HTTP (--listen ADDRESS:PORT; docs/metrics.md):
//
//   GET /metrics           every counter and histogram, Prometheus text format 0.0.4
//   GET /api/agent-graph   the agent call graph, AgentGraph::Json()
//   GET /api/status        version, pid, uptime, listen address, span and drop totals (JSON)
//   GET /healthz           200 "ok" while the pipeline runs, else 503 and the reason
//                          ("stalled: ...": the poll loop has not run for 10 s)
//
// Only what the agent knows about itself: no span, no payload. StatusServer is what the
// agent runs; AddStatusRoutes() puts the same routes on any http::HttpServer, beside which
// a later web UI adds its own.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/http_server.h"
#include "common/metrics.h"
#include "processors/agent_graph.h"
#include "store/trace_store.h"

namespace kspan::agent {

// What was lost, summed over its counters: the exit line (agent.cc) and /api/status both
// report these.
struct DropTotals {
  uint64_t ring_buffer_full = 0;  // kernel counters ring_buffer_full_*
  uint64_t malformed_event = 0;
  uint64_t export_queue_full = 0;
  uint64_t parse_failed = 0;
  uint64_t conn_evicted = 0;
};
DropTotals CountDrops(const metrics::Registry& m);

struct StatusSources {
  const metrics::Registry* metrics = nullptr;     // required
  const processors::AgentGraph* graph = nullptr;  // null: /api/agent-graph has no edges
  // Why the agent is not healthy ("stopping", "stalled: ..."), or "" when it is. Null:
  // always healthy.
  std::function<std::string()> unhealthy;
  std::chrono::steady_clock::time_point started;  // for uptime
  std::string listen;                             // the bound address, for /api/status
};

// Adds the routes above. Every source must outlive the server's thread (stop the server
// first). Handlers run on the server's thread: the registry and the graph are thread-safe.
void AddStatusRoutes(http::HttpServer* server, StatusSources sources);

// The /api/status document:
// {"version":…,"pid":…,"uptime_seconds":…,"listen":…,"events":…,"spans":…,
//  "drops":{"ring_buffer_full":…,"malformed_event":…,"export_queue_full":…,
//           "parse_failed":…,"conn_evicted":…},"export_failures":…}
// The drops are the same sums as the {"msg":"stopped"} line's drops_* fields.
std::string StatusJson(const StatusSources& sources);

// The agent's endpoint, in the order the agent needs it: Listen() early (a port in use
// fails before the kernel is touched), Start() once the pipeline exists, Beat() every
// round of the poll loop, Stop() before the pipeline goes. Health: "stopping" after
// Stop() began, "stalled" when the loop has not beaten for kStallAfter.
class StatusServer {
 public:
  static constexpr std::chrono::seconds kStallAfter{10};

  // `listen` was checked by the configuration (http::ParseListenAddress).
  static Result<std::unique_ptr<StatusServer>> Listen(const std::string& listen, metrics::Registry* metrics);
  ~StatusServer() { Stop(); }

  // Adds the routes and serves. `metrics`, `graph` and `store` must outlive Stop(). With a
  // store, the web UI and the Jaeger query API are served too (ui/ui_routes.h).
  Status Start(const processors::AgentGraph* graph, std::chrono::steady_clock::time_point started,
               store::TraceStore* store = nullptr);
  void Beat() { last_beat_.store(Now(), std::memory_order_relaxed); }
  // Idempotent.
  void Stop();
  std::string address() const { return server_->bound().ToString(); }
  uint16_t port() const { return server_->bound().port; }

 private:
  StatusServer(std::unique_ptr<http::HttpServer> server, metrics::Registry* metrics)
      : server_(std::move(server)), metrics_(metrics) {}
  static int64_t Now() { return std::chrono::steady_clock::now().time_since_epoch().count(); }
  std::string Unhealthy() const;

  std::unique_ptr<http::HttpServer> server_;
  metrics::Registry* metrics_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> last_beat_{Now()};
};

}  // namespace kspan::agent
