#include "agent/agent.h"

#include <kspan/version.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>

#include "agent/config_values.h"
#include "agent/pipeline.h"
#include "agent/status_server.h"
#include "carrier/http_header_carrier.h"
#include "carrier/tcp_option_carrier.h"
#include "carrier/wire_contexts.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/prometheus.h"
#include "events/bpf_event_source.h"
#include "exporters/export_pipeline.h"
#include "exporters/factory.h"
#include "exporters/otlp_metrics.h"
#include "genai/prices.h"
#include "k8s/pod_watcher.h"
#include "store/store_sink.h"
#include "store/trace_store.h"

namespace kspan::agent {
namespace {

std::atomic<int> g_stop_signal{0};

// Where the web UI listens when --listen is not given: this host only.
constexpr std::string_view kDefaultUiListen = "127.0.0.1:9464";

void OnStopSignal(int sig) {
  g_stop_signal.store(sig);
}

// A crash of any thread kills the process, and the kernel then detaches every probe
// (links and programs are released with their file descriptors). Say so on the way out.
void OnFatalSignal(int sig) {
  static const char kMsg[] =
      "{\"level\":\"error\",\"msg\":\"crashed; the kernel detaches every probe\",\"signal\":";
  char num[8];
  int n = 0;
  for (int s = sig; s > 0 && n < 7; s /= 10) num[n++] = static_cast<char>('0' + s % 10);
  ssize_t ignored = write(2, kMsg, sizeof(kMsg) - 1);
  while (n > 0) ignored = write(2, &num[--n], 1);
  ignored = write(2, "}\n", 2);
  (void)ignored;
  signal(sig, SIG_DFL);
  raise(sig);
}

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a signal ends the current poll at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction fatal {};
  fatal.sa_handler = OnFatalSignal;
  sigemptyset(&fatal.sa_mask);
  fatal.sa_flags = SA_RESETHAND;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &fatal, nullptr);
}

uint64_t NowUnixNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// The TLS module attaches its uprobes through the event source, the one owner of libbpf.
class SourceUprobes : public tls::UprobeAttacher {
 public:
  // With a --pid filter the probes fire only in those processes: others pay nothing.
  explicit SourceUprobes(std::vector<uint32_t> pids) : pids_(std::move(pids)) {}
  // The loaded source; before any Attach.
  void set_source(events::BpfEventSource* source) { source_ = source; }
  Result<uint64_t> Attach(const std::string& path, const std::vector<events::UprobeSpec>& specs) override {
    return source_->AttachUprobes(path, specs, pids_);
  }
  void Detach(uint64_t handle) override { source_->DetachUprobes(handle); }

 private:
  events::BpfEventSource* source_ = nullptr;
  std::vector<uint32_t> pids_;
};

void PublishKernelCounters(const events::BpfEventSource& src, metrics::Registry* m) {
  const auto k = src.ReadKernelCounters();
  for (int i = 0; i < KSPAN_CNT_MAX; ++i) {
    m->GetCounter("kspan_kernel_counts_total", {{"name", events::KernelCounterName(i)}})
        ->Set(k[static_cast<size_t>(i)]);
  }
}

// The trace-context carriers (docs/tracing.md "Context across hosts"): their kernel halves
// and the matcher of their reports to requests. Each absent when off or refused.
struct Carrier {
  std::unique_ptr<carrier::TcpOptionCarrier> kernel;   // --carrier tcp-option
  std::unique_ptr<carrier::HttpHeaderCarrier> header;  // --carrier http-header (opt-in)
  std::unique_ptr<carrier::WireContexts> contexts;
  std::string scope;
  std::string Active() const {
    if (kernel && header) return "tcp-option,http-header";
    return kernel ? "tcp-option" : header ? "http-header" : "off";
  }
};

// Starts the carriers the configuration asks for, and says at start which are active and
// why the others are not (one log line). A carrier that cannot start costs the cross-host
// context, never the tracing.
Carrier StartCarrier(const Config& config, metrics::Registry* m) {
  Carrier c;
  const bool want_option = config.carrier.find("tcp-option") != std::string::npos;
  const bool want_header = config.carrier.find("http-header") != std::string::npos;
  std::string option_note = "off (--carrier tcp-option turns it on)";
  std::string header_note =
      "off: opt-in (--carrier http-header); it writes into plaintext HTTP/1 request payloads, and "
      "while a client socket sends them it is in a sockhash where ioctl(FIONREAD) answers 0 "
      "(docs/tracing.md)";
  auto log_line = [&](bool warn) {
    const std::string active = c.Active() == "off" ? "none" : c.Active();
    const std::string scope = c.kernel || c.header ? c.scope : "-";
    log::Write(
        warn ? log::Level::kWarn : log::Level::kInfo, "carriers",
        {{"active", active}, {"scope", scope}, {"tcp-option", option_note}, {"http-header", header_note}});
  };
  if (!want_option && !want_header) {
    log_line(false);
    return c;
  }
  uint64_t netns_cookie = 0;
  c.scope = "every network namespace";
  if (config.carrier_netns == "self") {
    auto cookie = carrier::CurrentNetnsCookie();
    if (!cookie.ok()) {
      const std::string why = "cannot scope it to kspan's network namespace: " + cookie.status().message();
      if (want_option) option_note = why;
      if (want_header) header_note = why;
      log_line(true);
      return c;
    }
    netns_cookie = *cookie;
    c.scope = "kspan's network namespace (cookie " + std::to_string(*cookie) + ")";
  }
  auto root = carrier::CgroupV2Root();
  if (!root.ok()) {
    if (want_option) option_note = root.status().message();
    if (want_header) header_note = root.status().message();
    log_line(true);
    return c;
  }
  bool warn = false;
  if (want_option) {
    carrier::TcpOptionCarrierOptions o;
    o.kernel_contexts = true;
    o.self_tgid = static_cast<uint32_t>(getpid());
    o.netns_cookie = netns_cookie;
    o.cgroup_path = *root;
    auto k = carrier::TcpOptionCarrier::Start(o);
    if (k.ok()) {
      c.kernel = std::move(*k);
      option_note = "on, cgroup " + *root +
                    ": every TCP protocol (HTTP/1, HTTP/2, TLS, databases), new connections only";
    } else {
      option_note = "the kernel refused it: " + k.status().message();
      warn = true;
    }
  }
  if (want_header) {
    carrier::HttpHeaderCarrierOptions o;
    o.self_tgid = static_cast<uint32_t>(getpid());
    o.netns_cookie = netns_cookie;
    o.cgroup_path = *root;
    o.keep_option_callbacks = c.kernel != nullptr;
    auto h = carrier::HttpHeaderCarrier::Start(o);
    if (h.ok()) {
      c.header = std::move(*h);
      header_note = "on (opt-in), cgroup " + *root +
                    ": traceparent in plaintext HTTP/1 requests of new client connections; such a "
                    "socket is in a sockhash (ioctl(FIONREAD) answers 0) until its bytes are not "
                    "HTTP/1 it understands";
    } else {
      header_note = "the kernel refused it: " + h.status().message();
      warn = true;
    }
  }
  if (c.kernel || c.header)
    c.contexts = std::make_unique<carrier::WireContexts>(carrier::WireContextsOptions{}, m);
  log_line(warn);
  return c;
}

// The kernel's reports since the last batch, into the matcher (times to Unix ns).
void DrainCarrier(Carrier* c, const events::BootClock& clock) {
  if (c->header)
    for (const carrier::SentContext& s : c->header->DrainSent())
      c->contexts->AddSent(s.tgid, s.fd, s.tid, clock.ToUnixNs(s.ts_ns), s.context);
  if (!c->kernel) return;
  for (const carrier::SentContext& s : c->kernel->DrainSent())
    c->contexts->AddSent(s.tgid, s.fd, s.tid, clock.ToUnixNs(s.ts_ns), s.context);
  for (const carrier::ReadContext& r : c->kernel->DrainRead())
    c->contexts->AddRead(r.tgid, r.fd, r.tid, clock.ToUnixNs(r.ts_ns), r.context, r.fresh);
  (void)c->kernel->DrainReceived();  // the same contexts per segment: for tests, not needed here
}

void PublishCarrierCounters(const Carrier& c, metrics::Registry* m) {
  if (c.header) {
    const carrier::HttpHeaderCounters h = c.header->Counters();
    auto headers = [m](const char* outcome, uint64_t v) {
      m->GetCounter("kspan_carrier_headers_total", {{"outcome", outcome}})->Set(v);
    };
    headers("written", h.written);
    headers("skipped_not_http", h.skip_not_http);
    headers("skipped_tls", h.skip_tls);
    headers("skipped_http2", h.skip_http2);
    headers("skipped_has_traceparent", h.skip_has_traceparent);
    headers("skipped_connect", h.skip_connect);
    headers("stopped_upgrade", h.skip_upgrade);
    headers("skipped_split_head", h.skip_split_head);
    headers("skipped_pipelined", h.skip_pipelined);
    headers("stopped_framing", h.skip_framing);
    headers("stopped_mid_stream", h.skip_mid_stream);
    headers("failed", h.push_failed);
    headers("tracestate_written", h.ts_written);
    headers("tracestate_left_to_app", h.ts_app_has);
    headers("tracestate_lost", h.ts_lost);
    auto tracestates = [m](const char* outcome, uint64_t v) {
      m->GetCounter("kspan_carrier_incoming_tracestates_total", {{"outcome", outcome}})->Set(v);
    };
    tracestates("kept", h.ts_in_valid);
    tracestates("truncated", h.ts_in_truncated);
    tracestates("invalid", h.ts_in_invalid);
    tracestates("too_many_members", h.ts_in_too_many);
    tracestates("no_traceparent", h.ts_in_no_traceparent);
    m->GetCounter("kspan_carrier_sockhash_removed_total")->Set(h.removed);
    m->GetCounter("kspan_carrier_incoming_traceparents_total", {{"outcome", "valid"}})->Set(h.incoming_valid);
    m->GetCounter("kspan_carrier_incoming_traceparents_total", {{"outcome", "invalid"}})
        ->Set(h.incoming_invalid);
  }
  if (!c.kernel) return;
  const carrier::CarrierCounters k = c.kernel->Counters();
  auto options = [m](const char* outcome, uint64_t v) {
    m->GetCounter("kspan_carrier_options_total", {{"outcome", outcome}})->Set(v);
  };
  options("written", k.written);
  options("parsed", k.parsed);
  options("rejected", k.malformed);
  options("no_space", k.no_space);
  options("too_big", k.too_big);
  m->GetCounter("kspan_carrier_contexts_total", {{"side", "client"}, {"outcome", "set"}})->Set(k.set);
  m->GetCounter("kspan_carrier_contexts_total", {{"side", "server"}, {"outcome", "unplaced"}})
      ->Set(k.unplaced);
  m->GetCounter("kspan_carrier_reports_lost_total")->Set(k.events_lost + k.reports_dropped);
}

// The agent call graph at exit: a log line with its JSON, and a table on the console when
// spans go there.
void ReportAgentGraph(const processors::AgentGraph& graph, const Config& config) {
  const std::vector<processors::AgentGraph::Edge> edges = graph.Edges();
  if (edges.empty()) return;
  log::Info("agent call graph", {{"edges", static_cast<uint64_t>(edges.size())}, {"graph", graph.Json()}});
  const bool console = std::any_of(config.outputs.begin(), config.outputs.end(),
                                   [](const Output& o) { return o.name == "console"; });
  if (!console) return;
  const std::string text = graph.Text();
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

// Shortest text that reads back as the same double ("26", "0.043"), as JSON would have it.
std::string FormatNumber(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

void LogStopped(const metrics::Registry& m, double seconds) {
  // One line a person can read and a test can parse: totals, then every counter.
  const std::vector<metrics::Sample> all = m.Snapshot();
  std::string counters;
  uint64_t bytes_moved = 0, bytes_captured = 0;
  for (const auto& s : all) {
    if (!counters.empty()) counters += ' ';
    counters += metrics::SeriesName(s) + "=" + metrics::FormatSampleValue(s);
    if (s.name == "kspan_bytes_total" && !s.labels.empty()) {
      (s.labels[0].second == "moved" ? bytes_moved : bytes_captured) += s.value;
    }
  }
  // Histograms as Prometheus would summarise them: NAME_count and NAME_sum per series.
  std::string histograms;
  for (const auto& h : m.HistogramSnapshot()) {
    for (const auto& [suffix, value] :
         {std::pair<const char*, double>{"_count", static_cast<double>(h.data.count)},
          {"_sum", h.data.sum}}) {
      if (!histograms.empty()) histograms += ' ';
      histograms += metrics::SeriesName({h.name + suffix, h.labels, 0}) + "=" + FormatNumber(value);
    }
  }
  const DropTotals drops = CountDrops(m);
  log::Info("stopped", {{"seconds", seconds},
                        {"events", m.Sum("kspan_events_total")},
                        {"bytes_moved", bytes_moved},
                        {"bytes_captured", bytes_captured},
                        {"spans", m.Sum("kspan_spans_total")},
                        {"drops_ring_buffer_full", drops.ring_buffer_full},
                        {"drops_malformed_event", drops.malformed_event},
                        {"drops_export_queue_full", drops.export_queue_full},
                        {"drops_parse_failed", drops.parse_failed},
                        {"drops_conn_evicted", drops.conn_evicted},
                        {"export_failures", m.Sum("kspan_export_failures_total")},
                        {"counters", counters},
                        {"histograms", histograms}});
}

}  // namespace

int Run(const Config& config) {
  log::Level level = log::Level::kInfo;
  log::ParseLevel(config.log_level, &level);
  log::SetLevel(level);
  InstallSignalHandlers();
  const auto started = std::chrono::steady_clock::now();

  metrics::Registry metrics;

  for (const std::string& w : config.warnings) log::Warn("configuration", {{"note", w}});

  // Outputs first: a bad path or endpoint fails before anything touches the kernel.
  std::vector<std::unique_ptr<exporters::SpanExporter>> outs;
  for (const Output& out : config.outputs) {
    auto e = exporters::MakeExporter(out.settings, &metrics);
    if (!e.ok()) {
      log::Error("bad output", {{"output", out.name}, {"error", e.status().message()}});
      return 2;
    }
    outs.push_back(std::move(*e));
  }
  // --listen binds now, so a port in use fails before the kernel is touched; it serves
  // once the pipeline exists. The UI, on by default, listens on kDefaultUiListen without
  // --listen; that port being taken costs the UI (a warning), never the tracing.
  std::unique_ptr<StatusServer> status;
  if (!config.listen.empty()) {
    auto s = StatusServer::Listen(config.listen, &metrics);
    if (!s.ok()) {
      log::Error("cannot start", {{"error", s.status().message()}, {"listen", config.listen}});
      return 1;
    }
    status = std::move(*s);
  } else if (config.ui) {
    auto s = StatusServer::Listen(std::string(kDefaultUiListen), &metrics);
    if (s.ok()) {
      status = std::move(*s);
    } else {
      log::Warn("no web UI", {{"error", s.status().message()},
                              {"fix", "--listen 127.0.0.1:PORT for another port, or --ui false"}});
    }
  }
  // The trace store (store/): written by its own thread from the export pipeline, read by
  // the UI. A store that cannot open costs the UI, never the tracing.
  std::shared_ptr<store::TraceStore> trace_store;
  if (config.ui && status) {
    store::StoreOptions so;
    so.path = config.store_path;
    so.max_bytes = uint64_t{config.store_max_mib} << 20;
    so.max_age_ns = uint64_t{config.store_max_age_hours} * 3600 * 1'000'000'000;
    auto st = store::TraceStore::Open(so, &metrics);
    if (st.ok()) {
      trace_store = std::move(*st);
      outs.push_back(std::make_unique<store::StoreSink>(
          trace_store, store::StoreSink::Options{.max_spans_per_second = config.store_max_spans_per_second},
          &metrics));
    } else {
      log::Warn("no web UI: the trace store cannot open", {{"error", st.status().message()}});
    }
  }
  exporters::ExportPipeline exports(std::move(outs), exporters::ExportPipeline::Options{}, &metrics);

  // Start-up phases, milliseconds since `started`, for the ready line.
  const auto ms_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  };
  const double outputs_ms = ms_since(started);
  // TLS: probes on every OpenSSL in use, before "ready" so what runs now is covered. The
  // files in use are read and planned on a second thread while the BPF programs load
  // (TlsProbes::Prepare); Start then attaches.
  std::unique_ptr<events::BpfEventSource> source;  // outlives the TLS module, which attaches through it
  SourceUprobes uprobes(config.pids);
  tls::TlsProbeOptions tls_opts;
  tls_opts.self_pid = static_cast<uint32_t>(getpid());
  tls_opts.pids = config.pids;
  if (auto rows = tls::ParsePatternTable(tls::BuiltinPatternTable(), "built-in"); rows.ok()) {
    tls_opts.patterns = std::move(rows.value());
  } else {
    log::Error("built-in TLS byte-pattern table",
               {{"error", rows.status().message()}});  // a unit test parses it
  }
  if (!config.tls_patterns.empty()) {
    std::ifstream in(config.tls_patterns);
    std::stringstream text;
    text << in.rdbuf();
    auto rows = in ? tls::ParsePatternTable(text.str(), config.tls_patterns)
                   : Result<std::vector<tls::PatternRow>>(
                         InvalidArgument("--tls-patterns: cannot read " + config.tls_patterns));
    if (!rows.ok()) {
      log::Error("cannot start",
                 {{"error", rows.status().message()}, {"code", StatusCodeName(rows.status().code())}});
      return 1;
    }
    for (tls::PatternRow& r : rows.value()) tls_opts.patterns.push_back(std::move(r));
  }
  tls::TlsProbes tls_probes(tls_opts, &uprobes, &metrics);
  std::jthread prepare_tls([&tls_probes] { tls_probes.Prepare(); });

  const auto bpf_started = std::chrono::steady_clock::now();
  events::BpfSourceOptions src_opts;
  src_opts.capture_bytes = config.capture_bytes;
  src_opts.llm_capture_bytes = config.genai_capture_bytes;
  src_opts.ring_buffer_bytes = config.ring_buffer_bytes;
  src_opts.pids = config.pids;
  src_opts.select_by_rules = !config.selection.empty();
  auto src = events::BpfEventSource::Open(src_opts, &metrics);
  if (!src.ok()) {
    log::Error("cannot start",
               {{"error", src.status().message()}, {"code", StatusCodeName(src.status().code())}});
    return 1;
  }
  source = std::move(*src);
  const double bpf_ms = ms_since(bpf_started);
  const auto tls_started = std::chrono::steady_clock::now();
  prepare_tls.join();
  uprobes.set_source(source.get());

  tls_probes.Start();
  const double tls_ms = ms_since(tls_started);

  Carrier wire = StartCarrier(config, &metrics);

  PipelineOptions popts;
  if (wire.contexts) {
    popts.stitcher.wire_context = [contexts = wire.contexts.get()](const correlator::WireRequest& r) {
      return contexts->Take(r);
    };
  }
  popts.tracker.http.max_body_prefix = config.capture_bytes;
  popts.tracker.sql.raw_query_text = config.db_raw_query_text;
  popts.tracker.http.wide_body_request = &correlator::GenAiSpans::MayBeLlmCall;
  popts.tracker.http.max_wide_body_prefix = config.genai_max_body_bytes;
  popts.genai.capture_content = config.genai_capture_content;
  popts.genai.max_decoded_bytes = config.genai_max_body_bytes;
  for (const auto& [name, match] : config.agent_rules) popts.agents.rules.push_back({name, match});
  popts.agents.loop_repeated_tool_calls = config.agent_loop_tool_calls;
  popts.agents.loop_ping_pong = config.agent_loop_ping_pong;
  popts.agents.token_budget_per_minute = config.agent_token_budget;
  {
    std::string text(genai::DefaultPricesYaml());
    std::string origin = "the shipped price table";
    if (!config.genai_prices.empty()) {
      std::ifstream in(config.genai_prices);
      if (!in) {
        log::Error("cannot start", {{"error", "--genai-prices " + config.genai_prices + ": cannot read it"}});
        return 1;
      }
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      origin = config.genai_prices;
    }
    Result<genai::PriceTable> prices = genai::PriceTable::Parse(text, origin);
    if (!prices.ok()) {
      log::Error("cannot start", {{"error", prices.status().message()}});
      return 1;
    }
    log::Info("genai prices",
              {{"source", origin}, {"date", prices->date()}, {"models", uint64_t{prices->size()}}});
    popts.prices = std::move(*prices);
  }
  popts.stitcher.window_ns = uint64_t{config.trace_window_ms} * 1'000'000;
  popts.stitcher.max_held_bytes = size_t{config.trace_max_held_mib} << 20;
  popts.processes.resource_attributes = config.resource_attributes;
  popts.sampling = config.sampling;
  popts.filters = config.filters;
  popts.attribute_rules = config.attribute_rules;
  popts.selection.rules = config.selection;
  static_assert(static_cast<uint8_t>(process::KernelVerdict::kSkip) == KSPAN_SELECTED_SKIP &&
                static_cast<uint8_t>(process::KernelVerdict::kTrace) == KSPAN_SELECTED_TRACE &&
                static_cast<uint8_t>(process::KernelVerdict::kSkipUntilListen) ==
                    KSPAN_SELECTED_SKIP_UNTIL_LISTEN);
  popts.selection.tell_kernel = [&source](uint32_t pid, process::KernelVerdict verdict) {
    return source->SetSelected(pid, static_cast<uint8_t>(verdict));
  };
  // In a Kubernetes pod with its node's name: pod and workload names on every span
  // (k8s/pod_watcher.h). Stopped when this scope ends, after the pipeline.
  std::unique_ptr<k8s::PodWatcher> pods;
  if (std::optional<k8s::PodWatcherOptions> in_cluster = k8s::InClusterOptions()) {
    pods = std::make_unique<k8s::PodWatcher>(std::move(*in_cluster), &metrics);
    pods->Start();
    popts.processes.pods = pods.get();
  }
  popts.span_metrics = config.span_metrics;
  Pipeline pipeline(popts, &metrics, &exports, &tls_probes);
  // OTLP metrics (exporters/otlp_metrics.h): its own thread from here; its last export
  // comes after the pipeline's last spans.
  std::unique_ptr<exporters::OtlpMetricsExporter> metrics_out;
  if (config.metrics_otlp) {
    auto m = exporters::OtlpMetricsExporter::Start(*config.metrics_otlp, &metrics);
    if (!m.ok()) {
      log::Error("bad output", {{"output", "otlp metrics"}, {"error", m.status().message()}});
      return 2;
    }
    metrics_out = std::move(*m);
  }
  pipeline.SetAgentMarker([&source](uint32_t pid) {
    const Status s = source->MarkAgent(pid);
    if (!s.ok())
      log::Warn("cannot watch an agent's local IPC", {{"pid", int64_t{pid}}, {"error", s.message()}});
  });

  // The server thread reads the pipeline's graph: it stops first, whichever way Run() ends.
  struct StopStatus {
    StatusServer* s;
    ~StopStatus() {
      if (s) s->Stop();
    }
  } stop_status{status.get()};
  if (status) {
    if (const Status s = status->Start(&pipeline.agent_graph(), started, trace_store.get()); !s.ok()) {
      log::Error("cannot start", {{"error", s.message()}, {"listen", config.listen}});
      return 1;
    }
    log::Info("listening",
              {{"address", status->address()},
               {"port", status->port()},
               {"endpoints", trace_store ? "/ /traces/ /tail /api/traces /api/services /api/dependencies "
                                           "/metrics /api/agent-graph /api/status /healthz"
                                         : "/metrics /api/agent-graph /api/status /healthz"}});
    if (trace_store) {
      log::Info("web UI", {{"url", "http://" + status->address() + "/"}, {"store", config.store_path}});
    }
  }
  PublishKernelCounters(*source, &metrics);  // so /metrics has them from the start, not after a second
  PublishCarrierCounters(wire, &metrics);

  std::string outputs_list;
  for (const Output& o : config.outputs) outputs_list += (outputs_list.empty() ? "" : ",") + o.name;
  if (outputs_list.empty()) outputs_list = "none";
  log::Info("ready", {{"version", KSPAN_VERSION},
                      {"programs", source->attached_programs()},
                      {"missing_hooks", static_cast<uint64_t>(source->missing_hooks().size())},
                      {"tls_files_probed", static_cast<uint64_t>(tls_probes.probed_files())},
                      {"outputs", outputs_list},
                      {"span_metrics", config.span_metrics},
                      {"carrier", wire.Active()},
                      {"metrics_exporter",
                       metrics_out ? LoggableEndpoint(metrics_out->Endpoint()) : std::string("none")},
                      {"capture_bytes", config.capture_bytes},
                      {"genai_capture_content", config.genai_capture_content},
                      {"db_raw_query_text", config.db_raw_query_text},
                      {"sampler", processors::HeadSampler(config.sampling.head).Describe()},
                      {"tail_policies", static_cast<uint64_t>(config.sampling.tail.size())},
                      {"include_rules", static_cast<uint64_t>(config.selection.include.size())},
                      {"exclude_rules", static_cast<uint64_t>(config.selection.exclude.size())},
                      {"rate_limit", config.sampling.rate.per_second},
                      {"pid", static_cast<int64_t>(getpid())},
                      {"startup_ms", ms_since(started)},
                      // where start-up went: outputs and the trace store; loading and attaching the
                      // BPF programs; the TLS scan of running processes; the rest is what follows
                      {"startup_outputs_ms", outputs_ms},
                      {"startup_bpf_ms", bpf_ms},
                      {"startup_tls_ms", tls_ms}});

  const auto deadline = config.duration_seconds > 0
                            ? started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                            std::chrono::duration<double>(config.duration_seconds))
                            : std::chrono::steady_clock::time_point::max();
  auto next_tick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  int exit_code = 0;
  while (g_stop_signal.load() == 0) {
    const auto now = std::chrono::steady_clock::now();
    if (status) status->Beat();
    if (now >= deadline) break;
    auto r = source->Poll(&pipeline, std::chrono::milliseconds(config.drain_interval_ms));
    if (!r.ok()) {
      log::Error("event source failed", {{"error", r.status().message()}});
      exit_code = 1;
      break;
    }
    DrainCarrier(&wire, source->clock());
    pipeline.AfterBatch(NowUnixNs());
    if (now >= next_tick) {
      pipeline.Tick(NowUnixNs());
      if (wire.contexts) wire.contexts->Prune(NowUnixNs());
      PublishKernelCounters(*source, &metrics);
      PublishCarrierCounters(wire, &metrics);
      next_tick = now + std::chrono::seconds(1);
    }
  }
  if (int sig = g_stop_signal.load()) log::Info("stopping", {{"signal", strsignal(sig)}});
  if (status) status->Stop();

  // Drain what is already in the ring, then detach every probe before the slower work.
  (void)source->Poll(&pipeline, std::chrono::milliseconds(0));
  DrainCarrier(&wire, source->clock());
  pipeline.AfterBatch(NowUnixNs());
  PublishKernelCounters(*source, &metrics);
  PublishCarrierCounters(wire, &metrics);
  // Detached with the capture: connections keep working without it (tests/bpf/carrier_test.cc).
  wire.kernel.reset();
  wire.header.reset();
  tls_probes.Stop();
  source.reset();
  log::Info("detached");
  pipeline.Finish();
  if (!exports.Flush(std::chrono::seconds(10))) log::Warn("not every span was exported before the deadline");
  exports.Shutdown();
  if (metrics_out) metrics_out->Shutdown();
  ReportAgentGraph(pipeline.agent_graph(), config);
  LogStopped(metrics, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return exit_code;
}

}  // namespace kspan::agent
