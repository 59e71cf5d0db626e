#include "processors/service_graph.h"

#include <chrono>
#include <cstring>
#include <iterator>
#include <variant>

namespace kspan::processors {
namespace {

// The servicegraph connector's default latency buckets (seconds).
const std::vector<double> kBounds = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                     0.4,   0.8,   1,     1.4,   2,    5,    10,  15};

uint64_t Half(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t SteadyNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

ServiceGraph::ServiceGraph(metrics::Registry* registry, ServiceGraphOptions options,
                           std::function<uint64_t()> now_ns)
    : registry_(registry),
      options_(options),
      now_ns_(now_ns ? std::move(now_ns) : std::function<uint64_t()>(SteadyNs)),
      unpaired_client_(
          registry->GetCounter("kspan_service_graph_unpaired_spans_total", {{"side", "client"}})),
      unpaired_server_(
          registry->GetCounter("kspan_service_graph_unpaired_spans_total", {{"side", "server"}})),
      dropped_pending_(
          registry->GetCounter("kspan_service_graph_dropped_total", {{"reason", "pending_full"}})),
      dropped_edges_(registry->GetCounter("kspan_service_graph_dropped_total", {{"reason", "edges_full"}})) {}

std::string_view ServiceGraph::ServiceOf(const model::Span& span) {
  return services_.Get(
      span.resource, [](const std::shared_ptr<const model::Resource>& r) { return ServiceNameOf(r.get()); });
}

void ServiceGraph::Record(std::string_view client, std::string_view server, const char* type, const Side* c,
                          const Side* s) {
  // Requests come in runs on one edge: the last one found is tried first.
  auto it = last_edge_;
  if (it == edges_.end() || std::get<0>(it->first) != client || std::get<1>(it->first) != server ||
      std::get<2>(it->first) != type) {
    it = edges_.find(std::make_tuple(client, server, std::string_view(type)));
  }
  if (it == edges_.end()) {
    if (edges_.size() >= options_.max_edges) {
      dropped_edges_->Add();
      return;
    }
    // The edge is found by its names as they came; its series carry them through the
    // registry's redactor (service names and virtual nodes can come from traffic).
    const metrics::Labels labels = registry_->Redacted(
        {{"client", std::string(client)}, {"server", std::string(server)}, {"connection_type", type}});
    Edge e{.counts = {},
           .requests = registry_->GetCounter("traces_service_graph_request_total", labels),
           .failed = registry_->GetCounter("traces_service_graph_request_failed_total", labels),
           .client_seconds =
               registry_->GetHistogram("traces_service_graph_request_client_seconds", labels, kBounds),
           .server_seconds =
               registry_->GetHistogram("traces_service_graph_request_server_seconds", labels, kBounds)};
    it =
        edges_.emplace(std::make_tuple(std::string(client), std::string(server), std::string(type)), e).first;
  }
  last_edge_ = it;
  Edge& e = it->second;
  const bool failed = (c && c->failed) || (s && s->failed);
  ++e.counts.requests;
  e.requests->Add();
  if (failed) {
    ++e.counts.failed;
    e.failed->Add();
  }
  if (c) e.client_seconds->Record(c->seconds);
  if (s) e.server_seconds->Record(s->seconds);
}

bool ServiceGraph::OnExport(model::Span& span) noexcept {
  const bool client = span.kind == model::SpanKind::kClient;
  const bool server = span.kind == model::SpanKind::kServer;
  if (!client && !server) return true;
  const uint64_t now = now_ns_();
  // The staged CLIENT's SERVER, within the wait: paired below without pending_. Else the
  // CLIENT goes to pending_ before anything else happens there.
  const bool pairs_staged =
      staged_ && server && span.parent_span_id.IsValid() && now - staged_ns_ < options_.wait_ns &&
      staged_key_ == Key{Half(span.trace_id.bytes.data()), Half(span.trace_id.bytes.data() + 8),
                         Half(span.parent_span_id.bytes.data())};
  if (staged_ && !pairs_staged) Unstage();
  Expire(now, false);

  Side side;
  side.seen = true;
  side.failed = span.status_code == model::StatusCode::kError;
  side.seconds = span.end_time_unix_nano > span.start_time_unix_nano
                     ? static_cast<double>(span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
                     : 0;
  side.resource = span.resource;
  side.service = ServiceOf(span);

  if (client) {
    // The first attribute of each key (as Span::FindString finds it), in one pass.
    static constexpr std::string_view kKeys[] = {"db.system.name", "peer.service", "gen_ai.tool.name",
                                                 "gen_ai.agent.name", "server.address"};
    static_assert(kKeys[0].size() == 14 && kKeys[1].size() == 12 && kKeys[2].size() == 16 &&
                  kKeys[3].size() == 17 && kKeys[4].size() == 14);
    const model::AttributeValue* found[std::size(kKeys)] = {};
    for (const model::Attribute& a : span.attributes) {
      const std::string_view k = a.key;
      // By length, then one or two comparisons.
      size_t i;
      switch (k.size()) {
        case 12: i = k == kKeys[1] ? 1 : 5; break;
        case 14: i = k == kKeys[0] ? 0 : k == kKeys[4] ? 4 : 5; break;
        case 16: i = k == kKeys[2] ? 2 : 5; break;
        case 17: i = k == kKeys[3] ? 3 : 5; break;
        default: i = 5;
      }
      if (i < std::size(kKeys) && !found[i]) found[i] = &a.value;
    }
    auto text = [&found](size_t i) { return found[i] ? std::get_if<std::string>(found[i]) : nullptr; };
    if (const std::string* db = text(0)) {
      Record(side.service, *db, "database", &side, nullptr);
      return true;
    }
    // The callee of a virtual-node edge: agent → tool and agent → agent calls (MCP over
    // stdio, say) have no SERVER span and often no address, but a name.
    for (size_t i = 1; i < std::size(kKeys); ++i) {
      if (const std::string* peer = text(i); peer && !peer->empty()) {
        side.peer = *peer;
        break;
      }
    }
  } else if (!span.parent_span_id.IsValid()) {
    unpaired_server_->Add();  // a root SERVER span: its caller is not traced
    return true;
  }

  if (pairs_staged) {
    // As pending_'s entry would have been found: the pair recorded, the entry gone.
    staged_ = false;
    Record(staged_side_.service, side.service, "", &staged_side_, &side);
    staged_side_ = Side();
    return true;
  }
  const Key key{Half(span.trace_id.bytes.data()), Half(span.trace_id.bytes.data() + 8),
                Half(client ? span.span_id.bytes.data() : span.parent_span_id.bytes.data())};
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    if (pending_.size() >= options_.max_pending) {
      dropped_pending_->Add();
      EvictOldest();
    }
    if (client) {
      // Waits for the next span (Unstage puts it where try_emplace below would).
      staged_ = true;
      staged_key_ = key;
      staged_side_ = std::move(side);
      staged_ns_ = now;
      return true;
    }
    it = pending_.try_emplace(key).first;
    it->second.arrived_ns = now;
    order_.emplace_back(now, key);
  }
  Pending& p = it->second;
  (client ? p.client : p.server) = std::move(side);
  if (p.client.seen && p.server.seen) {
    Record(p.client.service, p.server.service, "", &p.client, &p.server);
    pending_.erase(it);  // its order_ entry finds nothing when it comes up
  }
  return true;
}

void ServiceGraph::Unstage() {
  staged_ = false;
  auto it = pending_.try_emplace(staged_key_).first;
  it->second.arrived_ns = staged_ns_;
  it->second.client = std::move(staged_side_);
  staged_side_ = Side();
  order_.emplace_back(staged_ns_, staged_key_);
}

bool ServiceGraph::GiveUpFront() {
  const auto [arrived, key] = order_.front();
  order_.pop_front();
  auto it = pending_.find(key);
  if (it == pending_.end() || it->second.arrived_ns != arrived) return false;  // paired already
  Pending& p = it->second;
  if (p.client.seen) {
    unpaired_client_->Add();
    if (!p.client.peer.empty()) Record(p.client.service, p.client.peer, "virtual_node", &p.client, nullptr);
  } else {
    unpaired_server_->Add();
  }
  pending_.erase(it);
  return true;
}

void ServiceGraph::EvictOldest() {
  while (!order_.empty() && !GiveUpFront()) {
  }
}

void ServiceGraph::Expire(uint64_t now_ns, bool all) {
  while (!order_.empty()) {
    const auto& [arrived, key] = order_.front();
    if (all || now_ns - arrived >= options_.wait_ns) {
      GiveUpFront();
      continue;
    }
    // Paired already (the usual case: the partner came right after): drop the entry now,
    // so the queue holds about what waits, not everything of the last `wait`.
    auto it = pending_.find(key);
    if (it != pending_.end() && it->second.arrived_ns == arrived) break;
    order_.pop_front();
  }
}

void ServiceGraph::Shutdown() noexcept {
  if (staged_) Unstage();
  Expire(0, true);
}

std::map<std::tuple<std::string, std::string, std::string>, ServiceGraph::EdgeCounts> ServiceGraph::Edges()
    const {
  std::map<std::tuple<std::string, std::string, std::string>, EdgeCounts> out;
  for (const auto& [k, e] : edges_) out[k] = e.counts;
  return out;
}

}  // namespace kspan::processors
