#include "exporters/otlp_metrics.h"

#include <kspan/version.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "common/log.h"
#include "common/prometheus.h"
#include "common/utf8.h"
#include "exporters/otlp_grpc.h"

namespace kspan::exporters {
namespace {

namespace pb = ::opentelemetry::proto;

// Sorted by Prometheus name (FindExportedMetric is a binary search).
constexpr ExportedMetric kExported[] = {
    {"db_client_operation_duration_seconds", "db.client.operation.duration", "s",
     "Duration of database client operations."},
    {"gen_ai_client_operation_duration_seconds", "gen_ai.client.operation.duration", "s",
     "GenAI operation duration."},
    {"gen_ai_client_operation_time_to_first_chunk_seconds", "gen_ai.client.operation.time_to_first_chunk",
     "s", "Time to receive the first chunk of a streamed GenAI response."},
    {"gen_ai_client_token_usage", "gen_ai.client.token.usage", "{token}",
     "Number of input and output tokens used."},
    {"http_client_request_duration_seconds", "http.client.request.duration", "s",
     "Duration of HTTP client requests."},
    {"http_server_request_duration_seconds", "http.server.request.duration", "s",
     "Duration of HTTP server requests."},
    {"kspan_cgroup_cpu_pressure_stall_seconds_total", "kspan.cgroup.cpu.pressure.stall_time", "s",
     "Time some tasks of the service's cgroups waited for a CPU (cgroup v2 cpu.pressure some total)."},
    {"kspan_cgroup_cpu_throttled_periods_total", "kspan.cgroup.cpu.throttled_periods", "{period}",
     "Quota periods in which the service's cgroups were throttled (cpu.stat nr_throttled)."},
    {"kspan_cgroup_cpu_throttled_seconds_total", "kspan.cgroup.cpu.throttled_time", "s",
     "Time the service's cgroups were throttled by their CPU quota (cpu.stat throttled_usec)."},
    {"kspan_listen_queue_depth", "kspan.listen_queue.depth", "{connection}",
     "Connections still waiting in the server's listen queue when it accepted one."},
    {"kspan_listen_queue_limit", "kspan.listen_queue.limit", "{connection}",
     "The bound of the server's listen queue.", true},
    {"kspan_service_run_delay_seconds_total", "kspan.service.cpu.run_delay", "s",
     "Time the service's threads were runnable but waiting for a CPU (schedstat run delay)."},
    {"mcp_client_operation_duration_seconds", "mcp.client.operation.duration", "s",
     "The duration of the MCP request or notification as observed on the sender."},
    {"mcp_server_operation_duration_seconds", "mcp.server.operation.duration", "s",
     "MCP request or notification duration as observed on the receiver."},
    {"rpc_client_call_duration_seconds", "rpc.client.call.duration", "s", "Duration of outgoing RPCs."},
    {"rpc_server_call_duration_seconds", "rpc.server.call.duration", "s", "Duration of incoming RPCs."},
    {"traces_service_graph_request_client_seconds", "traces_service_graph_request_client_seconds", "s",
     "Duration of requests between two services, as the client saw them."},
    {"traces_service_graph_request_failed_total", "traces_service_graph_request_failed_total", "{request}",
     "Failed requests between two services."},
    {"traces_service_graph_request_server_seconds", "traces_service_graph_request_server_seconds", "s",
     "Duration of requests between two services, as the server saw them."},
    {"traces_service_graph_request_total", "traces_service_graph_request_total", "{request}",
     "Requests between two services."},
};

// The gen_ai histograms are labelled with Prometheus-style names where they are made
// (correlator/genai_span.cc); their attribute names per the conventions.
std::string_view AttributeName(std::string_view label) {
  static const std::map<std::string_view, std::string_view> kRenamed = {
      {"error_type", "error.type"},
      {"gen_ai_operation_name", "gen_ai.operation.name"},
      {"gen_ai_prompt_name", "gen_ai.prompt.name"},
      {"gen_ai_provider_name", "gen_ai.provider.name"},
      {"gen_ai_request_model", "gen_ai.request.model"},
      {"gen_ai_response_model", "gen_ai.response.model"},
      {"gen_ai_token_type", "gen_ai.token.type"},
      {"gen_ai_tool_name", "gen_ai.tool.name"},
      {"mcp_method_name", "mcp.method.name"},
      {"mcp_protocol_version", "mcp.protocol.version"},
      {"network_transport", "network.transport"},
      {"server_address", "server.address"},
  };
  auto it = kRenamed.find(label);
  return it == kRenamed.end() ? label : it->second;
}

bool IsIntAttribute(std::string_view key) {
  return key == "server.port" || key == "http.response.status_code";
}

// The labels as data point attributes; service.name is returned apart (the resource's).
void AddAttributes(const metrics::Labels& labels,
                   google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>* out, std::string* service) {
  for (const auto& [label, value] : labels) {
    const std::string_view key = AttributeName(label);
    if (key == "service.name") {
      *service = ValidUtf8(value);
      continue;
    }
    if (value.empty()) continue;  // an unset attribute, not an empty one
    auto* kv = out->Add();
    kv->set_key(std::string(key));
    if (key == "otel.metric.overflow") {
      kv->mutable_value()->set_bool_value(value == "true");
    } else if (IsIntAttribute(key) && value.find_first_not_of("0123456789") == std::string::npos &&
               value.size() < 19) {
      kv->mutable_value()->set_int_value(std::stoll(value));
    } else {
      kv->mutable_value()->set_string_value(ValidUtf8(value));
    }
  }
}

}  // namespace

const ExportedMetric* FindExportedMetric(std::string_view name) {
  const auto* it =
      std::lower_bound(std::begin(kExported), std::end(kExported), name,
                       [](const ExportedMetric& m, std::string_view n) { return m.prometheus_name < n; });
  return it != std::end(kExported) && it->prometheus_name == name ? it : nullptr;
}

size_t ToExportMetricsRequest(const std::vector<metrics::Sample>& counters,
                              const std::vector<metrics::HistogramSample>& histograms, uint64_t start_ns,
                              uint64_t now_ns,
                              const std::vector<std::pair<std::string, std::string>>& resource,
                              pb::collector::metrics::v1::ExportMetricsServiceRequest* request, bool delta) {
  const auto temporality = delta ? pb::metrics::v1::AGGREGATION_TEMPORALITY_DELTA
                                 : pb::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE;
  request->Clear();
  // service.name → its ScopeMetrics, and within it metric name → Metric.
  struct Group {
    pb::metrics::v1::ScopeMetrics* scope;
    std::map<std::string_view, pb::metrics::v1::Metric*> metrics;
  };
  std::map<std::string, Group> groups;
  auto group_of = [&](const std::string& service) -> Group& {
    auto [it, fresh] = groups.try_emplace(service);
    if (fresh) {
      auto* rm = request->add_resource_metrics();
      auto* attrs = rm->mutable_resource()->mutable_attributes();
      if (!service.empty()) {
        auto* kv = attrs->Add();
        kv->set_key("service.name");
        kv->mutable_value()->set_string_value(service);
      }
      for (const auto& [k, v] : resource) {
        if (k == "service.name") continue;
        auto* kv = attrs->Add();
        kv->set_key(ValidUtf8(k));
        kv->mutable_value()->set_string_value(ValidUtf8(v));
      }
      it->second.scope = rm->add_scope_metrics();
      it->second.scope->mutable_scope()->set_name("kspan");
      it->second.scope->mutable_scope()->set_version(KSPAN_VERSION);
    }
    return it->second;
  };
  auto metric_of = [&](Group& g, const ExportedMetric& info) {
    auto [it, fresh] = g.metrics.try_emplace(info.prometheus_name, nullptr);
    if (fresh) {
      it->second = g.scope->add_metrics();
      it->second->set_name(std::string(info.otel_name));
      it->second->set_unit(std::string(info.unit));
      it->second->set_description(std::string(info.description));
    }
    return it->second;
  };

  size_t points = 0;
  std::string service;
  google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue> attrs;
  for (const metrics::Sample& s : counters) {
    const ExportedMetric* info = FindExportedMetric(s.name);
    if (!info) continue;
    attrs.Clear();
    service.clear();
    AddAttributes(s.labels, &attrs, &service);
    pb::metrics::v1::Metric* m = metric_of(group_of(service), *info);
    if (info->gauge) {
      auto* p = m->mutable_gauge()->add_data_points();
      p->mutable_attributes()->Swap(&attrs);
      p->set_time_unix_nano(now_ns);
      p->set_as_int(static_cast<int64_t>(s.value));
      ++points;
      continue;
    }
    auto* sum = m->mutable_sum();
    sum->set_aggregation_temporality(temporality);
    sum->set_is_monotonic(true);
    auto* p = sum->add_data_points();
    p->mutable_attributes()->Swap(&attrs);
    p->set_start_time_unix_nano(start_ns);
    p->set_time_unix_nano(now_ns);
    if (const double scale = metrics::MetricInfo(s.name).scale; scale != 0) {
      p->set_as_double(static_cast<double>(s.value) * scale);
    } else {
      p->set_as_int(static_cast<int64_t>(s.value));
    }
    ++points;
  }
  for (const metrics::HistogramSample& h : histograms) {
    const ExportedMetric* info = FindExportedMetric(h.name);
    if (!info) continue;
    attrs.Clear();
    service.clear();
    AddAttributes(h.labels, &attrs, &service);
    pb::metrics::v1::Metric* m = metric_of(group_of(service), *info);
    auto* hist = m->mutable_histogram();
    hist->set_aggregation_temporality(temporality);
    auto* p = hist->add_data_points();
    p->mutable_attributes()->Swap(&attrs);
    p->set_start_time_unix_nano(start_ns);
    p->set_time_unix_nano(now_ns);
    p->set_count(h.data.count);
    p->set_sum(h.data.sum);
    for (uint64_t c : h.data.counts) p->add_bucket_counts(c);
    for (double b : h.data.bounds) p->add_explicit_bounds(b);
    // One exemplar a bucket at most, in bucket order (the bucket a value falls in is its
    // exemplar's; the backend finds it from the value).
    for (const metrics::Exemplar& e : h.data.exemplars) {
      if (e.time_unix_nano == 0) continue;
      auto* x = p->add_exemplars();
      x->set_time_unix_nano(e.time_unix_nano);
      x->set_as_double(e.value);
      x->set_trace_id(e.trace_id.data(), e.trace_id.size());
      x->set_span_id(e.span_id.data(), e.span_id.size());
    }
    ++points;
  }
  return points;
}

MetricsBaseline SubtractBaseline(const MetricsBaseline& previous, std::vector<metrics::Sample>* counters,
                                 std::vector<metrics::HistogramSample>* histograms) {
  MetricsBaseline now;
  std::erase_if(*counters, [](const metrics::Sample& c) { return !FindExportedMetric(c.name); });
  std::erase_if(*histograms, [](const metrics::HistogramSample& h) { return !FindExportedMetric(h.name); });
  for (metrics::Sample& c : *counters) {
    if (FindExportedMetric(c.name)->gauge) continue;  // a gauge's value is its value now
    auto key = std::make_pair(c.name, c.labels);
    const auto it = previous.counters.find(key);
    const uint64_t before = it == previous.counters.end() ? 0 : it->second;
    now.counters.emplace(std::move(key), c.value);
    c.value = c.value >= before ? c.value - before : c.value;  // a reset: all of it is new
  }
  for (metrics::HistogramSample& h : *histograms) {
    auto key = std::make_pair(h.name, h.labels);
    const auto it = previous.histograms.find(key);
    now.histograms.emplace(std::move(key), h.data);
    if (it == previous.histograms.end() || it->second.count > h.data.count ||
        it->second.counts.size() != h.data.counts.size()) {
      continue;
    }
    const metrics::Histogram::Data& b = it->second;
    // An exemplar the previous point carried already is not of this interval.
    for (size_t i = 0; i < h.data.exemplars.size() && i < b.exemplars.size(); ++i) {
      if (h.data.exemplars[i] == b.exemplars[i]) h.data.exemplars[i] = {};
    }
    h.data.count -= b.count;
    h.data.sum -= b.sum;
    for (size_t i = 0; i < h.data.counts.size(); ++i)
      h.data.counts[i] -= std::min(b.counts[i], h.data.counts[i]);
  }
  return now;
}

namespace {

// OTLP/HTTP protobuf: POST the serialized request (gzip when asked) to the metrics URL.
class HttpMetricsSender final : public MetricsSender {
 public:
  HttpMetricsSender(std::unique_ptr<HttpClient> client, bool gzip)
      : client_(std::move(client)), gzip_(gzip) {}

  SendResult Send(const pb::collector::metrics::v1::ExportMetricsServiceRequest& request,
                  Clock::time_point deadline) noexcept override {
    std::string body;
    request.SerializeToString(&body);
    if (gzip_) body = Gzip(body);
    return ClassifyHttpResponse(client_->Post(body, deadline), std::chrono::system_clock::now());
  }
  std::string Endpoint() const override { return client_->url(); }

 private:
  std::unique_ptr<HttpClient> client_;
  bool gzip_;
};

}  // namespace

Result<std::unique_ptr<OtlpMetricsExporter>> OtlpMetricsExporter::Start(const OtlpMetricsSettings& settings,
                                                                        metrics::Registry* registry) {
  if (settings.interval.count() <= 0) return InvalidArgument("the metrics export interval must be positive");
  std::unique_ptr<MetricsSender> sender;
  if (settings.otlp.protocol == OtlpProtocol::kGrpc) {
    auto grpc = OtlpGrpcMetricsSender::Create(settings.otlp);
    if (!grpc.ok()) return grpc.status();
    sender = std::move(grpc).value();
  } else {
    HttpClientOptions options;
    options.url = settings.otlp.endpoint;
    options.content_type = "application/x-protobuf";
    options.headers = settings.otlp.headers;
    options.certificate_file = settings.otlp.certificate_file;
    options.gzip = settings.otlp.compression == Compression::kGzip;
    auto client = HttpClient::Create(std::move(options));
    if (!client.ok()) return client.status();
    sender = std::make_unique<HttpMetricsSender>(std::move(client).value(),
                                                 settings.otlp.compression == Compression::kGzip);
  }
  std::unique_ptr<OtlpMetricsExporter> e(new OtlpMetricsExporter(settings, registry, std::move(sender)));
  e->thread_ = std::thread([p = e.get()] { p->Run(); });
  return e;
}

OtlpMetricsExporter::OtlpMetricsExporter(const OtlpMetricsSettings& settings, metrics::Registry* registry,
                                         std::unique_ptr<MetricsSender> sender)
    : settings_(settings),
      registry_(registry),
      sender_(std::move(sender)),
      start_ns_(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count())),
      baseline_ns_(start_ns_),
      sent_(registry->GetCounter("kspan_metrics_export_requests_total", {{"result", "sent"}})),
      failed_(registry->GetCounter("kspan_metrics_export_requests_total", {{"result", "failed"}})),
      points_(registry->GetCounter("kspan_metrics_export_points_total")) {}

OtlpMetricsExporter::~OtlpMetricsExporter() {
  Shutdown();
}

void OtlpMetricsExporter::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OtlpMetricsExporter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, settings_.interval, [this] { return stop_; });
    lock.unlock();
    ExportOnce();  // at the interval, and once more when stopping
    lock.lock();
  }
}

void OtlpMetricsExporter::ExportOnce() {
  pb::collector::metrics::v1::ExportMetricsServiceRequest request;
  const uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count());
  std::vector<metrics::Sample> counters = registry_->Snapshot();
  std::vector<metrics::HistogramSample> histograms = registry_->HistogramSnapshot();
  MetricsBaseline next;
  if (settings_.delta) next = SubtractBaseline(baseline_, &counters, &histograms);
  const size_t points =
      ToExportMetricsRequest(counters, histograms, settings_.delta ? baseline_ns_ : start_ns_, now,
                             settings_.resource_attributes, &request, settings_.delta);
  if (points == 0) return;
  const SendResult r = sender_->Send(request, std::chrono::steady_clock::now() + settings_.otlp.timeout);
  if (r.outcome == SendResult::Outcome::kSent) {
    sent_->Add();
    points_->Add(points);
    if (settings_.delta) {
      baseline_ = std::move(next);
      baseline_ns_ = now;
    }
    if (failing_) log::Info("metrics export recovered", {{"endpoint", sender_->Endpoint()}});
    failing_ = false;
  } else {
    failed_->Add();
    if (!failing_) {
      log::Warn("metrics export failed", {{"endpoint", sender_->Endpoint()}, {"error", r.detail}});
    }
    failing_ = true;
  }
}

}  // namespace kspan::exporters
