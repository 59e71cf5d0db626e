#include "agent/pipeline.h"

#include <chrono>
#include <string_view>
#include <utility>
#include <variant>

namespace kspan::agent {
namespace {

uint64_t SteadyNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

process::SelectionOptions WithProcesses(process::SelectionOptions o, const process::ProcessTableOptions& p) {
  o.proc_root = p.proc_root;
  o.pods = p.pods;
  return o;
}

// The window asks the sampler once per trace (processors/trace_sampler.h).
correlator::StitcherOptions WithSampling(correlator::StitcherOptions o, processors::TraceSampler* sampler) {
  o.decide = [sampler](const correlator::HeldTrace& t, uint8_t* flags, std::string* state) {
    processors::TraceVerdict v = sampler->Decide({.trace_id = t.trace_id,
                                                  .flags = *flags,
                                                  .trace_state = *state,
                                                  .remote_parent = t.remote_parent,
                                                  .whole = t.whole,
                                                  .now_ns = t.now_ns,
                                                  .spans = t.spans});
    *flags = v.flags;
    *state = std::move(v.trace_state);
  };
  return o;
}

std::string_view ServiceName(const model::Resource* resource) {
  if (resource) {
    for (const model::Attribute& a : resource->attributes) {
      if (a.key != "service.name") continue;
      if (const auto* v = std::get_if<std::string>(&a.value)) return *v;
    }
  }
  return "unknown_service";
}

}  // namespace

Pipeline::Pipeline(PipelineOptions options, metrics::Registry* m, exporters::ExportPipeline* exports,
                   tls::TlsProbes* tls)
    : exports_(exports),
      tls_(tls),
      registry_(m),
      processes_(options.processes),
      selection_(WithProcesses(std::move(options.selection), options.processes), &processes_, m),
      processors_(m, [this](model::Span&& span) { exports_->Submit(std::move(span)); }),
      filter_(options.filters, m),
      sampler_(options.sampling, m, &filter_),
      stitcher_(WithSampling(options.stitcher, &sampler_), m,
                [this](model::Span&& span) { processors_.Export(std::move(span)); }),
      builder_({.http_spans = options.http_spans,
                .genai = options.genai,
                .agents = options.agents,
                .prices = std::move(options.prices)},
               m, &processes_, &stitcher_, &processors_),
      output_({}, m),
      file_writes_({}, m),
      graph_(m, [this](const model::Span& span) { return builder_.AgentOf(span); }),
      span_metrics_(m),
      service_graph_(m),
      attributes_(options.attribute_rules, m),
      saturation_(m, options.saturation),
      saturation_on_(options.span_metrics),
      tracker_(options.tracker, m,
               {.on_request = [this](const conntrack::ConnInfo& c,
                                     protocols::RequestStart&& r) { builder_.OnRequest(c, std::move(r)); },
                .on_record = [this](const conntrack::ConnInfo& c,
                                    protocols::Record&& r) { builder_.OnRecord(c, std::move(r)); },
                .on_ciphertext =
                    [this](const conntrack::ConnInfo& c) {
                      if (tls_) tls_->OnCiphertext(c.key.pid);
                    },
                .on_output = [this](uint32_t pid, bool err, std::string_view bytes,
                                    uint64_t ns) { output_.Add(pid, err, bytes, ns); }}) {
  // First: a filtered span (and what is under it) goes no further, not even into metrics.
  processors_.Add("filter", &filter_);
  processors_.Add("process_output", &output_);
  processors_.Add("tool_file_writes", &file_writes_);
  processors_.Add("agent_graph", &graph_);
  if (options.span_metrics) {
    processors_.Add("span_metrics", &span_metrics_);
    processors_.Add("service_graph", &service_graph_);
  }
  // Last: what comes before sees every span, sampled or not.
  processors_.Add("sampling", &sampler_);
  // After sampling, so only exported spans pay; before every output.
  processors_.Add("attributes", &attributes_);
  // Metric labels copied from traffic (span metrics, the service graph, saturation, the
  // gen_ai, MCP and agent graph series) are redacted by the rules that redact the spans.
  m->SetLabelRedactor([this](std::string* v) { attributes_.RedactLabel(v); });
  ev_open_ = m->GetCounter("kspan_events_total", {{"type", "conn_open"}});
  ev_data_ = m->GetCounter("kspan_events_total", {{"type", "data"}});
  ev_close_ = m->GetCounter("kspan_events_total", {{"type", "conn_close"}});
  ev_exec_ = m->GetCounter("kspan_events_total", {{"type", "exec"}});
  ev_exit_ = m->GetCounter("kspan_events_total", {{"type", "exit"}});
  ev_fork_ = m->GetCounter("kspan_events_total", {{"type", "fork"}});
  bytes_moved_ = m->GetCounter("kspan_bytes_total", {{"kind", "moved"}});
  bytes_captured_ = m->GetCounter("kspan_bytes_total", {{"kind", "captured"}});
}

Pipeline::~Pipeline() {
  registry_->SetLabelRedactor(nullptr);
}

void Pipeline::OnConnOpen(const events::ConnOpenEvent& e) {
  ev_open_->Add();
  const uint16_t accepted =
      e.kind == events::ConnKind::kTcp && e.role == events::Role::kServer ? e.tuple.local.port : 0;
  if (!selection_.Traced(e.key.pid, SteadyNs(), accepted)) return;
  // Read /proc now, while the process is surely alive, not when its first span is built.
  processes_.Touch(e.key.pid);
  if (saturation_on_) {
    const std::shared_ptr<const model::Resource> resource = processes_.ResourceFor(e.key.pid);
    const std::string_view service = ServiceName(resource.get());
    saturation_.Watch(e.key.pid, service);
    if (e.listen_queue_known)
      saturation_.OnAccept(service, e.tuple.local.port, e.listen_queue, e.listen_queue_max);
  }
  tracker_.OnOpen(e);
}

void Pipeline::OnData(const events::DataEvent& e) {
  ev_data_->Add();
  if (!selection_.Traced(e.key.pid, SteadyNs())) return;
  bytes_moved_->Add(e.total_len);
  bytes_captured_->Add(e.data.size());
  tracker_.OnData(e);
}

void Pipeline::OnConnClose(const events::ConnCloseEvent& e) {
  ev_close_->Add();
  if (!selection_.Traced(e.key.pid, SteadyNs())) return;
  tracker_.OnClose(e);
}

void Pipeline::OnTlsBind(const events::TlsBindEvent& e) {
  if (!selection_.Traced(e.key.pid, SteadyNs())) return;
  tracker_.OnTlsBind(e);
}

void Pipeline::OnFileWrite(const events::FileWriteEvent& e) {
  if (!selection_.Traced(e.pid, SteadyNs())) return;
  file_writes_.Add(e);
}

void Pipeline::OnListen(const events::ListenEvent& e) {
  selection_.OnListen(e.pid, SteadyNs(), e.port);
}

void Pipeline::OnFork(const events::ProcessForkEvent& e) {
  ev_fork_->Add();
  processes_.OnFork(e);
  selection_.OnFork(e.pid, e.ppid, SteadyNs());
}

void Pipeline::OnExec(const events::ProcessExecEvent& e) {
  ev_exec_->Add();
  processes_.OnExec(e);
  if (!selection_.OnExec(e.pid, SteadyNs())) return;
  if (tls_) tls_->OnExec(e.pid);
  builder_.OnExec(e);
}

void Pipeline::OnExit(const events::ProcessExitEvent& e) {
  ev_exit_->Add();
  selection_.OnExit(e.pid);
  saturation_.Forget(e.pid);
  if (tls_) tls_->OnExit(e.pid);
  // Connections first: their last records still need the process's resource.
  tracker_.OnProcessExit(e.pid, e.ts_ns);
  builder_.OnExit(e);
  processes_.OnExit(e);
}

void Pipeline::AfterBatch(uint64_t now_ns) {
  now_ns_ = now_ns;
  tracker_.DrainPending();
  builder_.AfterBatch();
  stitcher_.Advance(now_ns);
}

void Pipeline::Tick(uint64_t now_ns) {
  selection_.Tick(SteadyNs());
  if (saturation_on_) saturation_.Tick(SteadyNs());
  tracker_.Tick(now_ns);
  builder_.Tick(now_ns);
}

void Pipeline::Finish() {
  tracker_.CloseAll();
  builder_.Finish(now_ns_);
  stitcher_.FlushAll();
  processors_.Shutdown();
}

}  // namespace kspan::agent
