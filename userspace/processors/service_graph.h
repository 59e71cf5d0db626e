// The service graph: which service calls which, from paired CLIENT and SERVER spans,
// computed before sampling (the chain runs it before the sampling processor). The metric
// names and labels are those of the OpenTelemetry Collector's servicegraph connector and
// Grafana Tempo's metrics generator, so their dashboards read kspan's graph as it is:
//
//   traces_service_graph_request_total{client,server,connection_type}            counter
//   traces_service_graph_request_failed_total{client,server,connection_type}     counter
//   traces_service_graph_request_client_seconds{client,server,connection_type}   histogram
//   traces_service_graph_request_server_seconds{client,server,connection_type}   histogram
//
// client and server are the service.name of the two spans' resources. Pairing:
//
//   CLIENT span C (trace T, id S) ──┐ both seen: one request on the edge C's service →
//   SERVER span V (trace T, parent S)┘ V's service; failed when either is ERROR
//   CLIENT with db.system.name: no SERVER span will come; an edge at once to the database
//     (server = db.system.name, connection_type "database")
//   CLIENT alone after `wait`: the callee is not traced (another host, a process kspan does
//     not see, a tool over stdio): an edge to a virtual node (server = peer.service, else
//     gen_ai.tool.name, else gen_ai.agent.name, else server.address), connection_type
//     "virtual_node", as the connector's virtual nodes
//   SERVER alone after `wait`: counted unpaired, no edge (its caller is elsewhere)
//
// Spans of a trace leave the assembly window together, so a local pair is normally matched
// at once; `wait` covers a trace flushed in parts. Bounds: `max_pending` spans waiting
// (past it the oldest is expired early, counted) and `max_edges` edges (past it requests of
// new edges are counted in kspan_service_graph_dropped_total{reason="edges_full"}).
//   kspan_service_graph_unpaired_spans_total{side}   spans that found no partner
//   kspan_service_graph_dropped_total{reason}        pending_full, edges_full
//
// Threading: as SpanProcessor (the pipeline thread); the metrics are read through the
// registry.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "common/metrics.h"
#include "processors/resource_memo.h"
#include "processors/span_processor.h"

namespace kspan::processors {

struct ServiceGraphOptions {
  uint64_t wait_ns = 2'000'000'000;
  size_t max_pending = 65536;
  size_t max_edges = 1024;
};

class ServiceGraph : public SpanProcessor {
 public:
  // `now_ns` gives the time a span arrives (steady or Unix ns; only differences count);
  // null: the steady clock.
  ServiceGraph(metrics::Registry* registry, ServiceGraphOptions options = {},
               std::function<uint64_t()> now_ns = nullptr);
  ServiceGraph(const ServiceGraph&) = delete;  // last_edge_ points into edges_
  ServiceGraph& operator=(const ServiceGraph&) = delete;

  bool OnExport(model::Span& span) noexcept override;
  // Expires every span still waiting (a lone CLIENT becomes a virtual-node edge).
  void Shutdown() noexcept override;

  struct EdgeCounts {
    uint64_t requests = 0, failed = 0;
  };
  // Per (client, server, connection_type), for tests. Pipeline thread only.
  std::map<std::tuple<std::string, std::string, std::string>, EdgeCounts> Edges() const;

 private:
  struct Side {
    bool seen = false;
    bool failed = false;
    double seconds = 0;
    std::shared_ptr<const model::Resource> resource;  // keeps `service` alive
    std::string_view service;                         // its service.name
    std::string peer;  // a CLIENT's peer.service or server.address, for a virtual node
  };
  struct Pending {
    Side client, server;
    uint64_t arrived_ns = 0;
  };
  struct Key {
    uint64_t a, b, span;  // trace id halves, the client's span id
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return k.a ^ (k.b * 0x9e3779b97f4a7c15ULL) ^ (k.span * 31); }
  };
  struct Edge {
    EdgeCounts counts;
    metrics::Counter* requests;
    metrics::Counter* failed;
    metrics::Histogram* client_seconds;
    metrics::Histogram* server_seconds;
  };

  // Gives up on the spans that waited `wait` (all of them when `all`).
  void Expire(uint64_t now_ns, bool all);
  // Puts the staged CLIENT (below) in pending_, as it was at its arrival.
  void Unstage();
  // Gives up on the oldest waiting span (at the bound).
  void EvictOldest();
  // Gives up on order_'s first entry when it still waits; false when it was paired already.
  bool GiveUpFront();
  void Record(std::string_view client, std::string_view server, const char* type, const Side* c,
              const Side* s);

  metrics::Registry* registry_;
  const ServiceGraphOptions options_;
  std::function<uint64_t()> now_ns_;
  std::unordered_map<Key, Pending, KeyHash> pending_;
  std::deque<std::pair<uint64_t, Key>> order_;  // arrival time, key; oldest first
  // The last span when it was a CLIENT that found no partner: counted against max_pending
  // when it came, but held here until the next span (or Shutdown). A trace leaves parents
  // first, so that next span is nearly always its SERVER, paired here with no entry made
  // in pending_ and order_ and dropped again. Anything else puts it there first, as it
  // would have been at its arrival (the same order of events, so the same metrics).
  bool staged_ = false;
  Key staged_key_{};
  Side staged_side_;
  uint64_t staged_ns_ = 0;
  // Found by string_views (a transparent less), so a request on a known edge allocates
  // nothing. Both sides are compared as string_views: std::less<> over a tuple of strings
  // and one of string_views does not build with clang 14 (the fuzz build's compiler).
  struct EdgeLess {
    using is_transparent = void;
    using Views = std::tuple<std::string_view, std::string_view, std::string_view>;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Views(a) < Views(b);
    }
  };
  using EdgeMap = std::map<std::tuple<std::string, std::string, std::string>, Edge, EdgeLess>;
  EdgeMap edges_;
  EdgeMap::iterator last_edge_ = edges_.end();  // Record's last (map iterators stay valid)
  // The service.name of the span's resource ("unknown_service" when none).
  std::string_view ServiceOf(const model::Span& span);
  ResourceMemo<std::string_view> services_;  // ServiceOf's
  metrics::Counter* unpaired_client_;
  metrics::Counter* unpaired_server_;
  metrics::Counter* dropped_pending_;
  metrics::Counter* dropped_edges_;
};

}  // namespace kspan::processors
