#include "agent/settings.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "agent/config.h"
#include "kspan/bpf/events.h"
#include "process/selection.h"
#include "processors/head_sampler.h"
#include "processors/span_attributes.h"
#include "processors/span_filter.h"
#include "processors/tail_sampler.h"

namespace kspan::agent {
namespace {

using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------
// Parsers: one source's value of one setting into that source's Layer. Each checks the
// value fully, so a bad value is an error even when a stronger source overrides it.

template <auto Member, uint32_t kMin, uint32_t kMax>
Status Uint32(const Input& in, Layer* l) {
  uint32_t v = 0;
  RETURN_IF_ERROR(ParseUnsigned<uint32_t>(in.where, in.items[0], kMin, kMax, &v));
  l->*Member = Setting<uint32_t>{v, in.where};
  return Status::Ok();
}

// A true/false setting.
template <auto Member>
Status Bool(const Input& in, Layer* l) {
  bool v = false;
  RETURN_IF_ERROR(ParseBool(in.where, in.items[0], &v));
  l->*Member = Setting<bool>{v, in.where};
  return Status::Ok();
}

template <auto Member>
Status Millis(const Input& in, Layer* l) {
  milliseconds v{};
  RETURN_IF_ERROR(ParseMillis(in.where, in.items[0], &v));
  l->*Member = Setting<milliseconds>{v, in.where};
  return Status::Ok();
}

template <auto Member>
Status SpanCount(const Input& in, Layer* l) {
  size_t v = 0;
  RETURN_IF_ERROR(ParseCount(in.where, in.items[0], &v));
  l->*Member = Setting<size_t>{v, in.where};
  return Status::Ok();
}

template <auto Member>
Status Endpoint(const Input& in, Layer* l) {
  RETURN_IF_ERROR(CheckEndpoint(in.where, in.items[0]));
  l->*Member = Setting<std::string>{in.items[0], in.where};
  return Status::Ok();
}

// Checked when it is used (the CA file: only when otlp is an output).
template <auto Member>
Status Text(const Input& in, Layer* l) {
  l->*Member = Setting<std::string>{in.items[0], in.where};
  return Status::Ok();
}

Status Outputs(const Input& in, Layer* l) {
  std::vector<std::string> specs;
  RETURN_IF_ERROR(ParseOutputs(in.where, in.items, &specs));
  l->outputs = Setting<std::vector<std::string>>{std::move(specs), in.where};
  return Status::Ok();
}

Status Protocol(const Input& in, Layer* l) {
  exporters::OtlpProtocol p{};
  RETURN_IF_ERROR(ParseProtocol(in.where, in.items[0], &p));
  l->otlp_protocol = Setting<exporters::OtlpProtocol>{p, in.where};
  return Status::Ok();
}

Status Compression(const Input& in, Layer* l) {
  exporters::Compression c{};
  RETURN_IF_ERROR(ParseCompression(in.where, in.items[0], &c));
  l->otlp_compression = Setting<exporters::Compression>{c, in.where};
  return Status::Ok();
}

Status Headers(const Input& in, Layer* l) {
  KeyValues headers = in.pairs;
  RETURN_IF_ERROR(CheckHeaders(in.where, &headers));
  l->otlp_headers = Setting<KeyValues>{std::move(headers), in.where};
  return Status::Ok();
}

Status ResourceAttributes(const Input& in, Layer* l) {
  KeyValues attrs = in.pairs;
  // The standard variable may carry the agent's own service.name (an orchestrator's
  // doing): dropped with a warning there, an error anywhere else.
  const bool standard = in.where.starts_with("OTEL_");
  RETURN_IF_ERROR(CheckResourceAttributes(in.where, standard, &attrs, in.warnings));
  MergeByKey(attrs, &l->resource_attributes);
  return Status::Ok();
}

Status Duration(const Input& in, Layer* l) {
  double v = 0;
  RETURN_IF_ERROR(ParseDuration(in.where, in.items[0], &v));
  l->duration_seconds = Setting<double>{v, in.where};
  return Status::Ok();
}

Status Pids(const Input& in, Layer* l) {
  std::vector<uint32_t> pids;
  for (const std::string& s : in.items) {
    uint32_t pid = 0;
    RETURN_IF_ERROR(ParseUnsigned<uint32_t>(in.where, s, 1, kMaxPid, &pid));
    pids.push_back(pid);
  }
  l->pids = Setting<std::vector<uint32_t>>{std::move(pids), in.where};
  return Status::Ok();
}

template <auto Member>
Status SelectRules(const Input& in, Layer* l) {
  for (const std::string& spec : in.items) RETURN_IF_ERROR(process::ParseSelectRule(in.where, spec).status());
  l->*Member = Setting<std::vector<std::string>>{in.items, in.where};
  return Status::Ok();
}

Status RingBuffer(const Input& in, Layer* l) {
  RETURN_IF_ERROR((Uint32<&Layer::ring_buffer_bytes, 4096, 1u << 30>(in, l)));
  return CheckRingBuffer(in.where, l->ring_buffer_bytes->value);
}

Status LogLevel(const Input& in, Layer* l) {
  RETURN_IF_ERROR(CheckLogLevel(in.where, in.items[0]));
  l->log_level = Setting<std::string>{in.items[0], in.where};
  return Status::Ok();
}

Status Listen(const Input& in, Layer* l) {
  RETURN_IF_ERROR(CheckListen(in.where, in.items[0]));
  l->listen = Setting<std::string>{in.items[0], in.where};
  return Status::Ok();
}

Status AgentRules(const Input& in, Layer* l) {
  for (const auto& [name, match] : in.pairs) {
    RETURN_IF_ERROR(CheckAgentRule(in.where, name, match));
    l->agent_rules.emplace_back(name, match);
  }
  return Status::Ok();
}

Status Sampler(const Input& in, Layer* l) {
  RETURN_IF_ERROR(processors::ParseHeadSampler(in.where, in.items[0], std::nullopt).status());
  l->sampler = Setting<std::string>{in.items[0], in.where};
  return Status::Ok();
}

Status SamplerArg(const Input& in, Layer* l) {
  RETURN_IF_ERROR(processors::ParseHeadSampler(in.where, "traceidratio", in.items[0]).status());
  l->sampler_arg = Setting<std::string>{in.items[0], in.where};
  return Status::Ok();
}

Status TailPolicies(const Input& in, Layer* l) {
  for (const std::string& spec : in.items)
    RETURN_IF_ERROR(processors::ParseTailPolicy(in.where, spec).status());
  l->tail_policies = Setting<std::vector<std::string>>{in.items, in.where};
  return Status::Ok();
}

Status DropRules(const Input& in, Layer* l) {
  for (const std::string& spec : in.items)
    RETURN_IF_ERROR(processors::ParseFilterRule(in.where, spec).status());
  l->drop = Setting<std::vector<std::string>>{in.items, in.where};
  return Status::Ok();
}

Status SpanAttributeList(const Input& in, Layer* l) {
  if (in.items.size() > processors::kMaxSpanAttributes) {
    return InvalidArgument(in.where + ": at most " + std::to_string(processors::kMaxSpanAttributes) +
                           " span attributes");
  }
  for (const std::string& spec : in.items)
    RETURN_IF_ERROR(processors::ParseSpanAttribute(in.where, spec).status());
  l->span_attributes = Setting<std::vector<std::string>>{in.items, in.where};
  return Status::Ok();
}

Status RedactPatterns(const Input& in, Layer* l) {
  if (in.items.size() > processors::kMaxRedactPatterns) {
    return InvalidArgument(in.where + ": at most " + std::to_string(processors::kMaxRedactPatterns) +
                           " redaction patterns");
  }
  for (const std::string& p : in.items) RETURN_IF_ERROR(processors::CheckRedactPattern(in.where, p));
  l->redact = Setting<std::vector<std::string>>{in.items, in.where};
  return Status::Ok();
}

Status MetricsExporter(const Input& in, Layer* l) {
  const std::string& v = in.items[0];
  if (v != "otlp" && v != "prometheus" && v != "none") {
    return InvalidArgument(in.where + ": unknown metrics exporter '" + v +
                           "'; expected otlp, prometheus (served on --listen) or none");
  }
  l->metrics_exporter = Setting<std::string>{v, in.where};
  return Status::Ok();
}

Status MetricsTemporality(const Input& in, Layer* l) {
  std::string v = in.items[0];
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v != "cumulative" && v != "delta" && v != "lowmemory") {
    return InvalidArgument(in.where + ": unknown temporality '" + in.items[0] +
                           "'; expected cumulative, delta or lowmemory");
  }
  l->metrics_temporality = Setting<std::string>{v, in.where};
  return Status::Ok();
}

// A file path: not empty, no control characters (a typo or a stray byte, never a path
// someone meant).
Status FilePath(const Input& in, std::string_view example, Setting<std::string>* out) {
  const std::string& v = in.items[0];
  const bool control =
      std::any_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  if (v.empty() || control) {
    return InvalidArgument(in.where + ": '" + (control ? std::string("(a control character)") : v) +
                           "' is not a file path; expected e.g. " + std::string(example));
  }
  *out = Setting<std::string>{v, in.where};
  return Status::Ok();
}

Status StorePath(const Input& in, Layer* l) {
  Setting<std::string> s;
  RETURN_IF_ERROR(FilePath(in, "/var/lib/kspan/traces.db", &s));
  l->store_path = std::move(s);
  return Status::Ok();
}

// An LLM price table file (genai/prices.h); read and checked at start.
Status GenaiPrices(const Input& in, Layer* l) {
  Setting<std::string> s;
  RETURN_IF_ERROR(FilePath(in, "/etc/kspan/prices.yaml", &s));
  l->genai_prices = std::move(s);
  return Status::Ok();
}

// The user's TLS byte-pattern table: a path (read at start, where a missing file or a bad
// row stops kspan with the line at fault).
Status TlsPatterns(const Input& in, Layer* l) {
  Setting<std::string> s;
  RETURN_IF_ERROR(FilePath(in, "/etc/kspan/tls-patterns.txt", &s));
  l->tls_patterns = std::move(s);
  return Status::Ok();
}

// One word of a fixed set, lowercased.
template <auto Member>
Status OneOf(const Input& in, Layer* l, std::initializer_list<std::string_view> words) {
  std::string v = in.items[0];
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string list;
  for (std::string_view w : words) {
    if (v == w) {
      l->*Member = Setting<std::string>{v, in.where};
      return Status::Ok();
    }
    list += (list.empty() ? "" : " or ") + std::string(w);
  }
  return InvalidArgument(in.where + ": '" + in.items[0] + "' is not one of " + list);
}

// off, or a comma-separated list of carriers, kept in one order: tcp-option,http-header.
Status Carrier(const Input& in, Layer* l) {
  std::string v = in.items[0];
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  bool option = false, header = false;
  size_t start = 0;
  while (start <= v.size()) {
    const size_t comma = std::min(v.find(',', start), v.size());
    const std::string word = v.substr(start, comma - start);
    if (word == "tcp-option")
      option = true;
    else if (word == "http-header")
      header = true;
    else if (!(word == "off" && v == "off"))
      return InvalidArgument(
          in.where + ": '" + in.items[0] +
          "' is not off or a list of tcp-option and http-header (e.g. tcp-option,http-header)");
    start = comma + 1;
  }
  const std::string canonical = option && header ? "tcp-option,http-header"
                                : option         ? "tcp-option"
                                : header         ? "http-header"
                                                 : "off";
  l->carrier = Setting<std::string>{canonical, in.where};
  return Status::Ok();
}

Status CarrierNetns(const Input& in, Layer* l) {
  return OneOf<&Layer::carrier_netns>(in, l, {"all", "self"});
}

// Traces a second: a finite number from 0 (no limit) to a million.
template <auto Member>
Status TracesPerSecond(const Input& in, Layer* l) {
  double v = 0;
  const std::string& t = in.items[0];
  const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  if (r.ec != std::errc() || r.ptr != t.data() + t.size() || !(v >= 0 && v <= 1e6)) {
    return InvalidArgument(in.where + ": '" + t + "' is not a number of traces from 0 to 1000000");
  }
  l->*Member = Setting<double>{v, in.where};
  return Status::Ok();
}

Status ConfigFiles(const Input& in, Layer* l) {
  l->config = Setting<std::vector<std::string>>{in.items, in.where};
  return Status::Ok();
}

// --help and --version are handled by the flag reader.
Status NoValue(const Input&, Layer*) {
  return Status::Ok();
}

constexpr std::string_view kOutputs = "Outputs";
constexpr std::string_view kOtlp = "OTLP (with --output otlp)";
constexpr std::string_view kZipkin = "Zipkin (with --output zipkin)";
constexpr std::string_view kQueues = "Queues of the network exporters (no flags: set once per deployment)";
constexpr std::string_view kResource = "Resource";
constexpr std::string_view kCapture = "Capture";
constexpr std::string_view kOwnState = "kspan's own state (docs/metrics.md)";
constexpr std::string_view kUi = "Web UI and trace store (docs/ui.md)";
constexpr std::string_view kGenai = "LLM calls (docs/genai.md)";
constexpr std::string_view kAgents = "Agents (docs/agents.md)";
constexpr std::string_view kSampling = "Sampling (docs/sampling.md)";
constexpr std::string_view kFilters = "Filters (docs/sampling.md)";
constexpr std::string_view kEnrich = "Enrichment and redaction (docs/sampling.md)";
constexpr std::string_view kMetrics = "Span metrics and the service graph (docs/metrics.md)";
constexpr std::string_view kGeneral = "The configuration file, and information";

// Placeholder in a help text: the top-level YAML keys, from the table.
constexpr std::string_view kYamlKeysPlaceholder = "{yaml_keys}";

// The table. Rows of a group stay together, in the order --help shows them; the order of
// the YAML keys in errors is the order here.
// clang-format off
const std::vector<SettingRow> kTable = {
    // Outputs.
    {.group = kOutputs, .flag = "--output", .metavar = "SPEC", .key = "outputs",
     .otel_env = {"OTEL_TRACES_EXPORTER"}, .shape = Shape::kList, .noun = "outputs",
     .default_text = "console and file:kspan-spans.jsonl",
     .help = "Where spans go; repeatable. SPEC is one of:\n"
             "  console      one readable line per span on stdout\n"
             "  file:PATH    OTLP/JSON lines (one TracesData per line), the OpenTelemetry "
             "Collector file-exporter format; at 256 MiB it moves to PATH.1 and starts anew, "
             "deleting the older PATH.1 (counted and logged)\n"
             "  otlp         OTLP to a collector or backend (--otlp-*)\n"
             "  zipkin       Zipkin v2 JSON (--zipkin-*)\n"
             "  none         build and count spans, export nothing",
     .parse = Outputs},
    {.group = kOutputs, .flag = "--console-tree", .key = "console_tree", .shape = Shape::kSwitch,
     .default_text = "off",
     .help = "The console output prints whole traces as indented trees (spans under their "
             "parent) instead of one line per span as it comes. The environment and YAML take "
             "true or false.",
     .parse = Bool<&Layer::console_tree>},

    // OTLP.
    {.group = kOtlp, .flag = "--otlp-endpoint", .metavar = "URL", .key = "otlp.endpoint",
     .otel_env = {"OTEL_EXPORTER_OTLP_ENDPOINT"},
     .default_text = "http://localhost:4318 (grpc: http://localhost:4317)",
     .help = "Base URL; http/* protocols append /v1/traces. https uses TLS.",
     .parse = Endpoint<&Layer::otlp_endpoint>},
    {.group = kOtlp, .flag = "--otlp-traces-endpoint", .metavar = "URL", .key = "otlp.traces_endpoint",
     .otel_env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
     .help = "Full URL, used as is; beats --otlp-endpoint from the same source.",
     .parse = Endpoint<&Layer::otlp_traces_endpoint>},
    {.group = kOtlp, .flag = "--otlp-protocol", .metavar = "P", .key = "otlp.protocol",
     .otel_env = {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"},
     .default_text = "http/protobuf",
     .help = "grpc, http/protobuf or http/json.",
     .parse = Protocol},
    {.group = kOtlp, .flag = "--otlp-headers", .metavar = "K=V,...", .key = "otlp.headers",
     .otel_env = {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"},
     .shape = Shape::kPairs, .secret = true, .noun = "header names to values",
     .help = "Sent with every request; values percent-encoded; repeatable.",
     .parse = Headers},
    {.group = kOtlp, .flag = "--otlp-timeout-ms", .metavar = "N", .key = "otlp.timeout_ms",
     .otel_env = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"},
     .default_text = "10000",
     .help = "One export attempt, at most, 1..600000.",
     .parse = Millis<&Layer::otlp_timeout>},
    {.group = kOtlp, .flag = "--otlp-compression", .metavar = "C", .key = "otlp.compression",
     .otel_env = {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"},
     .default_text = "none",
     .help = "gzip or none.",
     .parse = Compression},
    {.group = kOtlp, .flag = "--otlp-certificate", .metavar = "FILE", .key = "otlp.certificate",
     .otel_env = {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"},
     .default_text = "the system's CAs",
     .help = "PEM CA bundle trusted for https; must be readable.",
     .parse = Text<&Layer::otlp_certificate>},

    // Zipkin.
    {.group = kZipkin, .flag = "--zipkin-endpoint", .metavar = "URL", .key = "zipkin.endpoint",
     .otel_env = {"OTEL_EXPORTER_ZIPKIN_ENDPOINT"},
     .default_text = "http://localhost:9411/api/v2/spans",
     .help = "Used as is.",
     .parse = Endpoint<&Layer::zipkin_endpoint>},
    {.group = kZipkin, .flag = "--zipkin-timeout-ms", .metavar = "N", .key = "zipkin.timeout_ms",
     .otel_env = {"OTEL_EXPORTER_ZIPKIN_TIMEOUT"},
     .default_text = "10000",
     .help = "One export attempt, at most, 1..600000.",
     .parse = Millis<&Layer::zipkin_timeout>},

    // Queues: no flags.
    {.group = kQueues, .metavar = "N", .key = "queue.max_spans",
     .otel_env = {"OTEL_BSP_MAX_QUEUE_SIZE"},
     .default_text = "2048",
     .help = "Spans held, at most, 1..1048576.",
     .parse = SpanCount<&Layer::queue_max_spans>},
    {.group = kQueues, .metavar = "N", .key = "queue.max_batch",
     .otel_env = {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE"},
     .default_text = "512",
     .help = "Spans per request, at most; not more than the queue.",
     .parse = SpanCount<&Layer::queue_max_batch>},
    {.group = kQueues, .metavar = "MS", .key = "queue.schedule_delay_ms",
     .otel_env = {"OTEL_BSP_SCHEDULE_DELAY"},
     .default_text = "5000",
     .help = "Longest a span waits for its batch, 1..600000.",
     .parse = Millis<&Layer::queue_schedule_delay>},
    {.group = kQueues, .metavar = "MS", .key = "queue.export_timeout_ms",
     .otel_env = {"OTEL_BSP_EXPORT_TIMEOUT"},
     .help = "Checked, not used yet (a warning says so).",
     .parse = Millis<&Layer::queue_export_timeout>},

    // Resource.
    {.group = kResource, .flag = "--resource-attributes", .metavar = "K=V,...", .key = "resource_attributes",
     .otel_env = {"OTEL_RESOURCE_ATTRIBUTES"}, .shape = Shape::kPairs, .noun = "attribute names to values",
     .help = "Added to every watched process's resource (its own attributes win; service.name is "
             "not allowed); values percent-encoded; repeatable; at most 1024. Sources merge key "
             "by key.",
     .parse = ResourceAttributes},

    // Capture.
    {.group = kCapture, .flag = "--duration", .metavar = "SECONDS", .key = "duration",
     .default_text = "until SIGINT or SIGTERM",
     .help = "Run this long, flush every output, exit 0.",
     .parse = Duration},
    {.group = kCapture, .flag = "--pid", .metavar = "PID", .key = "pids", .shape = Shape::kList,
     .noun = "process ids",
     .default_text = "every process except kspan itself",
     .help = "Trace only this process; repeatable.",
     .parse = Pids},
    {.group = kCapture, .flag = "--include", .metavar = "RULE", .key = "select.include", .shape = Shape::kList,
     .noun = "selection rules",
     .default_text = "every process",
     .help = "Trace only processes that match a rule; repeatable. RULE is criteria joined by '&', "
             "all of which must hold (globs as in fnmatch):\n"
             "  exe=GLOB                 the executable's path (GLOB with a '/'), else its name\n"
             "  cmdline=GLOB             the command line\n"
             "  port=N or N-M            a TCP port it listens on\n"
             "  container=ID             its container's id starts with ID\n"
             "  netns=self|N             its network namespace: kspan's own, or inode N\n"
             "  k8s.namespace=GLOB       its pod's namespace\n"
             "  k8s.pod=GLOB             its pod's name\n"
             "  k8s.owner=GLOB           its workload's name (Deployment, ...)\n"
             "  k8s.label.NAME=GLOB      a label of its pod\n"
             "A skipped process costs one kernel map lookup per syscall (docs/deploy.md).",
     .parse = SelectRules<&Layer::include>},
    {.group = kCapture, .flag = "--exclude", .metavar = "RULE", .key = "select.exclude", .shape = Shape::kList,
     .noun = "selection rules",
     .default_text = "none",
     .help = "Never trace processes that match a rule (as --include's); repeatable; wins over "
             "--include.",
     .parse = SelectRules<&Layer::exclude>},
    {.group = kCapture, .flag = "--capture-bytes", .metavar = "N", .key = "capture_bytes",
     .default_text = "4096",
     .help = "Payload bytes captured per syscall, 0..16384.",
     .parse = Uint32<&Layer::capture_bytes, 0, KSPAN_MAX_CAPTURE>},
    {.group = kCapture, .flag = "--db-raw-query-text", .key = "db.raw_query_text", .shape = Shape::kSwitch,
     .default_text = "off",
     .help = "Export SQL queries (PostgreSQL, MySQL) as sent, literals and all, instead of "
             "sanitised (literals as ?). They may hold personal data or secrets. The "
             "environment and YAML take true or false.",
     .parse = Bool<&Layer::db_raw_query_text>},
    {.group = kCapture, .flag = "--tls-patterns", .metavar = "FILE", .key = "tls_patterns",
     .default_text = "(built-in rows only)",
     .help = "More rows for the byte-pattern table that finds SSL_read/SSL_write in stripped "
             "builds (Bun's BoringSSL), by build id; see docs/tls.md. Read at start.",
     .parse = TlsPatterns},
    {.group = kCapture, .flag = "--ring-buffer-bytes", .metavar = "N", .key = "ring_buffer_bytes",
     .default_text = "8388608",
     .help = "Kernel ring buffer size, a power of two, 4096..1073741824.",
     .parse = RingBuffer},
    {.group = kCapture, .flag = "--drain-interval-ms", .metavar = "N", .key = "drain_interval_ms",
     .default_text = "10",
     .help = "How often the ring buffer is drained, 1..1000.",
     .parse = Uint32<&Layer::drain_interval_ms, 1, 1000>},
    {.group = kCapture, .flag = "--trace-window-ms", .metavar = "N", .key = "trace_window_ms",
     .default_text = "500",
     .help = "How long a trace whose spans have all ended waits for late spans before it is "
             "exported whole, 0..60000.",
     .parse = Uint32<&Layer::trace_window_ms, 0, 60000>},
    {.group = kCapture, .flag = "--trace-max-held-mib", .metavar = "N", .key = "trace_max_held_mib",
     .default_text = "64",
     .help = "Memory for spans held while their traces assemble, 1..4096; past it the oldest "
             "traces leave early (counted in kspan_traces_flushed_total).",
     .parse = Uint32<&Layer::trace_max_held_mib, 1, 4096>},
    {.group = kCapture, .flag = "--carrier", .metavar = "NAME", .key = "carrier.mode",
     .default_text = "off",
     .help = "Trace context across hosts (docs/tracing.md \"Context across hosts\"): tcp-option "
             "puts the CLIENT span's ids in a TCP header option on each new request and reads "
             "them on the serving host, so its SERVER span joins the caller's trace (every TCP "
             "protocol, no payload byte changed; needs a kspan on both hosts); http-header "
             "(opt-in) writes a W3C traceparent (and the tracestate the served request came "
             "with) into outgoing plaintext HTTP/1 requests, for "
             "servers without kspan (it changes payloads and FIONREAD on those client sockets); "
             "both: tcp-option,http-header; off.",
     .parse = Carrier},
    {.group = kCapture, .flag = "--carrier-netns", .metavar = "SCOPE", .key = "carrier.netns",
     .default_text = "all",
     .help = "Where the carrier works: all network namespaces, or self: only kspan's own (one "
             "kspan per namespace, as the two-namespace tests run it).",
     .parse = CarrierNetns},
    {.group = kCapture, .flag = "--log-level", .metavar = "LEVEL", .key = "log_level",
     .default_text = "info",
     .help = "debug, info, warn or error.",
     .parse = LogLevel},

    // The status endpoint.
    {.group = kOwnState, .flag = "--listen", .metavar = "ADDRESS:PORT", .key = "listen",
     .default_text = "off (while --ui is on, the web UI alone listens on 127.0.0.1:9464)",
     .help = "Serve /metrics (Prometheus text), /api/agent-graph, /api/status and /healthz over "
             "HTTP, no authentication: 127.0.0.1:9464 (this host only, recommended), [::1]:9464, "
             "0.0.0.0:9464 or [::]:9464 (every address). Port 0: any free port (logged).",
     .parse = Listen},

    // The web UI, the Jaeger query API and the trace store.
    {.group = kUi, .flag = "--ui", .metavar = "BOOL", .key = "ui.enabled",
     .default_text = "true",
     .help = "Keep recent traces in a store on disk and serve the web UI and the Jaeger query API "
             "(/api/traces, ...) on --listen; without --listen on 127.0.0.1:9464 (this host only; "
             "if that port is taken, a warning and no UI). false: neither store nor UI.",
     .parse = Bool<&Layer::ui>},
    {.group = kUi, .flag = "--store-path", .metavar = "FILE", .key = "ui.store_path",
     .default_text = "/var/lib/kspan/traces.db",
     .help = "The trace store's SQLite file; its folder is created. Kept across restarts.",
     .parse = StorePath},
    {.group = kUi, .flag = "--store-max-mib", .metavar = "N", .key = "ui.store_max_mib",
     .default_text = "256",
     .help = "The store's size bound, 1..1048576 MiB: past it the oldest traces go (counted in "
             "kspan_store_traces_evicted_total).",
     .parse = Uint32<&Layer::store_max_mib, 1, 1u << 20>},
    {.group = kUi, .flag = "--store-max-age-hours", .metavar = "N", .key = "ui.store_max_age_hours",
     .default_text = "24",
     .help = "Traces older than this leave the store, 1..8760.",
     .parse = Uint32<&Layer::store_max_age_hours, 1, 8760>},
    {.group = kUi, .flag = "--store-max-spans-per-second", .metavar = "N",
     .key = "ui.store_max_spans_per_second", .default_text = "1000",
     .help = "Spans a second the store writes at most, in whole traces, errors first; the rest "
             "is counted in kspan_store_spans_dropped_total{reason=\"rate\"} (the other outputs "
             "still get them). 0..10000000; 0: every span.",
     .parse = Uint32<&Layer::store_max_spans_per_second, 0, 10'000'000>},

    // LLM calls.
    {.group = kGenai, .flag = "--genai-capture-bytes", .metavar = "N", .key = "genai.capture_bytes",
     .default_text = "16384",
     .help = "Bytes captured per syscall on connections that carry LLM API calls, 0..16384; at "
             "or below --capture-bytes they are not told apart.",
     .parse = Uint32<&Layer::genai_capture_bytes, 0, KSPAN_MAX_CAPTURE>},
    {.group = kGenai, .flag = "--genai-max-body-bytes", .metavar = "N", .key = "genai.max_body_bytes",
     .default_text = "1048576",
     .help = "Body bytes kept of each LLM request and response (then the last 64 KiB of a "
             "longer one), 0..67108864.",
     .parse = Uint32<&Layer::genai_max_body_bytes, 0, 64u << 20>},
    {.group = kGenai, .flag = "--genai-capture-content", .key = "genai.capture_content",
     .otel_env = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"}, .shape = Shape::kSwitch,
     .default_text = "off",
     .help = "Export prompts, completions and system instructions as a span event, secrets "
             "redacted. The environment and YAML take true or false.",
     .parse = Bool<&Layer::genai_capture_content>},
    {.group = kGenai, .flag = "--genai-prices", .metavar = "FILE", .key = "genai.prices",
     .default_text = "the shipped table",
     .help = "LLM prices per model and token type (YAML, docs/genai.md: cost) instead of the "
             "shipped table; a model missing from it has no cost.",
     .parse = GenaiPrices},

    // Agents.
    {.group = kAgents, .flag = "--agent", .metavar = "NAME=MATCH", .key = "agents", .shape = Shape::kRule,
     .noun = "agent names to a substring of the executable path or command line",
     .help = "A process whose executable path or command line contains MATCH is the agent NAME "
             "(default: its service.name); repeatable, the first match wins: flags', then the "
             "environment's (NAME=MATCH,...), then the file's.",
     .parse = AgentRules},
    {.group = kAgents, .flag = "--agent-loop-tool-calls", .metavar = "N",
     .key = "agent_loops.repeated_tool_calls", .default_text = "5",
     .help = "Alert once when an agent calls the same tool with the same arguments N times "
             "(docs/agents.md, runaway loops), 0..1000000; 0 turns it off.",
     .parse = Uint32<&Layer::agent_loop_tool_calls, 0, 1000000>},
    {.group = kAgents, .flag = "--agent-loop-ping-pong", .metavar = "N", .key = "agent_loops.ping_pong",
     .default_text = "6",
     .help = "Alert once when two agents send each other A2A messages N times in alternation "
             "(docs/agents.md, runaway loops), 0..1000000; 0 turns it off.",
     .parse = Uint32<&Layer::agent_loop_ping_pong, 0, 1000000>},
    {.group = kAgents, .flag = "--agent-token-budget", .metavar = "N", .key = "agent_loops.tokens_per_minute",
     .default_text = "200000",
     .help = "Alert once when an agent's LLM calls use more than N tokens (input + output) "
             "within a minute (docs/agents.md, runaway loops), 0..1000000000; 0 turns it off.",
     .parse = Uint32<&Layer::agent_token_budget, 0, 1000000000>},

    // Sampling.
    {.group = kSampling, .flag = "--sampler", .metavar = "NAME", .key = "sampling.sampler",
     .otel_env = {"OTEL_TRACES_SAMPLER"},
     .default_text = "parentbased_always_on",
     .help = "Head sampler, as the OpenTelemetry SDK names it: always_on, always_off, traceidratio, "
             "parentbased_always_on, parentbased_always_off or parentbased_traceidratio. Decided once "
             "per trace on its trace id, the same on every agent; parentbased_* follow an incoming "
             "traceparent's sampled flag.",
     .parse = Sampler},
    {.group = kSampling, .flag = "--sampler-arg", .metavar = "RATIO", .key = "sampling.sampler_arg",
     .otel_env = {"OTEL_TRACES_SAMPLER_ARG"},
     .default_text = "1.0",
     .help = "The ratio of traces the *traceidratio samplers keep, 0..1.",
     .parse = SamplerArg},
    {.group = kSampling, .flag = "--tail-policy", .metavar = "SPEC", .key = "sampling.tail_policies",
     .shape = Shape::kList, .noun = "tail-sampling policies",
     .default_text = "none: head sampling only",
     .help = "Keep a trace held whole on this host when any policy matches; repeatable. SPEC is "
             "one of:\n"
             "  error                    a span has status ERROR\n"
             "  latency>50ms             the trace lasts longer; :service=NAME or "
             ":route=ROUTE: a span of it does\n"
             "  attribute:KEY=VALUE      a span has the attribute\n"
             "  genai_tokens>N           its gen_ai token usage is larger\n"
             "  probabilistic:RATIO      the rest, consistently by trace id\n"
             "Traces that cross hosts keep the head sampler's decision.",
     .parse = TailPolicies},
    {.group = kSampling, .flag = "--rate-limit", .metavar = "N", .key = "sampling.rate_limit",
     .default_text = "0, no limit",
     .help = "Traces kept a second, at most, over every service; 0..1000000.",
     .parse = TracesPerSecond<&Layer::rate_limit>},
    {.group = kSampling, .flag = "--rate-limit-burst", .metavar = "N", .key = "sampling.rate_limit_burst",
     .default_text = "one second's worth",
     .help = "Traces the limits let through at once after a quiet time.",
     .parse = TracesPerSecond<&Layer::rate_limit_burst>},
    {.group = kSampling, .flag = "--rate-limit-per-service", .metavar = "N",
     .key = "sampling.rate_limit_per_service",
     .default_text = "0, no limit",
     .help = "Traces kept a second, at most, per service (the service.name of the trace's first "
             "span); 0..1000000.",
     .parse = TracesPerSecond<&Layer::rate_limit_per_service>},

    // Filters.
    {.group = kFilters, .flag = "--drop", .metavar = "RULE", .key = "filters.drop", .shape = Shape::kList,
     .noun = "filter rules",
     .default_text = "none besides the telemetry rule",
     .help = "Drop spans that match, with everything under them; repeatable. RULE is one of:\n"
             "  service=NAME             the service.name\n"
             "  executable=TEXT          in the executable's path\n"
             "  port=N                   the server.port\n"
             "  route=ROUTE              http.route, else the URL path (route=/healthz)\n"
             "  attribute:KEY=VALUE      an attribute's value",
     .parse = DropRules},
    {.group = kFilters, .flag = "--trace-telemetry", .key = "filters.trace_telemetry", .shape = Shape::kSwitch,
     .default_text = "off",
     .help = "Also trace telemetry exports (HTTP POST to .../v1/traces, /v1/metrics, /v1/logs, "
             "/api/v2/spans): dropped by default, so the collector that receives kspan's own "
             "exports never feeds them back as spans. The environment and YAML take true or false.",
     .parse = Bool<&Layer::trace_telemetry>},

    // Enrichment and redaction.
    {.group = kEnrich, .flag = "--span-attribute", .metavar = "KEY=VALUE", .key = "enrich.span_attributes",
     .shape = Shape::kList, .noun = "span attributes", .default_text = "none",
     .help = "Add a string attribute to every span that has no KEY; repeatable, at most 64.",
     .parse = SpanAttributeList},
    {.group = kEnrich, .flag = "--redact", .metavar = "REGEX", .key = "enrich.redact", .shape = Shape::kList,
     .noun = "RE2 patterns", .default_text = "none",
     .help = "Replace every match (RE2 syntax) in span names, status messages and string "
             "attribute values with REDACTED, before any output; repeatable, at most 64. The "
             "environment's list splits at commas: give patterns with commas as flags or in YAML.",
     .parse = RedactPatterns},
    {.group = kEnrich, .flag = "--redact-secrets", .metavar = "BOOL", .key = "enrich.redact_secrets",
     .default_text = "true",
     .help = "Replace credentials (API keys, Bearer and Basic credentials, JWTs, password=...) "
             "in URLs, database queries, user agents, headers and error messages with REDACTED.",
     .parse = Bool<&Layer::redact_secrets>},

    // Span metrics.
    {.group = kMetrics, .flag = "--span-metrics", .metavar = "BOOL", .key = "metrics.span_metrics",
     .default_text = "true",
     .help = "RED histograms (http.server.request.duration, ...) and the service graph "
             "(traces_service_graph_*) from every span, before sampling, and the saturation of "
             "traced services (listen queue, cgroup CPU pressure, run delay); false turns them off.",
     .parse = Bool<&Layer::span_metrics>},
    {.group = kMetrics, .flag = "--metrics-exporter", .metavar = "NAME", .key = "metrics.exporter",
     .otel_env = {"OTEL_METRICS_EXPORTER"},
     .default_text = "none: /metrics of --listen only",
     .help = "otlp: also send them over OTLP in --otlp-protocol (http/protobuf or grpc) to "
             "--otlp-metrics-endpoint (else --otlp-endpoint, with /v1/metrics over HTTP), with the "
             "--otlp-* headers, timeout, compression and certificate; prometheus or none: only on "
             "/metrics.",
     .parse = MetricsExporter},
    {.group = kMetrics, .flag = "--otlp-metrics-endpoint", .metavar = "URL", .key = "metrics.otlp_endpoint",
     .otel_env = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
     .default_text = "http://localhost:4318/v1/metrics (grpc: http://localhost:4317)",
     .help = "Full URL, used as is.",
     .parse = Endpoint<&Layer::otlp_metrics_endpoint>},
    {.group = kMetrics, .flag = "--metrics-interval-ms", .metavar = "N", .key = "metrics.interval_ms",
     .otel_env = {"OTEL_METRIC_EXPORT_INTERVAL"},
     .default_text = "60000",
     .help = "Time between two OTLP metrics exports, 1..600000; one more at exit.",
     .parse = Millis<&Layer::metrics_interval>},
    {.group = kMetrics, .flag = "--metrics-temporality", .metavar = "T", .key = "metrics.temporality",
     .otel_env = {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"},
     .default_text = "cumulative",
     .help = "cumulative (every point since start), or delta and lowmemory (since the last "
             "export the backend took).",
     .parse = MetricsTemporality},

    // The file itself, and information.
    {.group = kGeneral, .flag = "--config", .metavar = "FILE", .shape = Shape::kList,
     .help = "YAML file with the same settings (keys: {yaml_keys}; sections hold the dotted "
             "keys); repeatable, a later file overrides an earlier one.",
     .parse = ConfigFiles},
    {.group = kGeneral, .flag = "--version", .shape = Shape::kAction,
     .help = "Print the version and exit.", .parse = NoValue},
    {.group = kGeneral, .flag = "--help", .shape = Shape::kAction,
     .help = "Print this help and exit.", .parse = NoValue, .alias = "-h"},
};
// clang-format on

// ---------------------------------------------------------------------------------------
// --help.

constexpr size_t kWidth = 80;
constexpr size_t kTextColumn = 25;  // where a row's text starts

// Appends `text` as lines that start at column `indent` and end by column kWidth. "\n"
// starts a new line; a line that starts with spaces keeps them, and its continuation
// lines align with the description after its first run of two spaces (a term list).
void Wrap(std::string_view text, size_t indent, std::string* out) {
  while (true) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    size_t lead = 0;
    while (lead < line.size() && line[lead] == ' ') ++lead;
    size_t hang = lead;
    if (lead > 0) {
      const size_t gap = line.find("  ", lead);
      if (gap != std::string_view::npos) hang = line.find_first_not_of(' ', gap);
    }
    std::string current(indent + lead, ' ');
    bool empty = true;
    std::string_view rest = line.substr(lead);
    while (!rest.empty()) {
      // Up to the next single space; the runs of spaces inside a term list stay.
      size_t end = rest.find(' ');
      std::string_view word = rest.substr(0, end);
      size_t spaces = 0;
      if (end != std::string_view::npos) {
        while (end + spaces < rest.size() && rest[end + spaces] == ' ') ++spaces;
      }
      if (!empty && current.size() + word.size() > kWidth) {
        while (current.back() == ' ') current.pop_back();
        *out += current + "\n";
        current.assign(indent + hang, ' ');
        empty = true;
      }
      current += word;
      empty = false;
      if (end == std::string_view::npos) break;
      current.append(spaces, ' ');
      rest.remove_prefix(end + spaces);
    }
    while (!current.empty() && current.back() == ' ') current.pop_back();
    *out += current + "\n";
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

std::string RowText(const SettingRow& r) {
  std::string text(r.help);
  if (const size_t p = text.find(kYamlKeysPlaceholder); p != std::string::npos) {
    text.replace(p, kYamlKeysPlaceholder.size(), YamlKeys(""));
  }
  if (!r.default_text.empty()) {
    // After a term list, on a line of its own.
    text += (r.help.find('\n') == std::string_view::npos ? " " : "\n") + std::string("Default: ") +
            std::string(r.default_text) + ".";
  }
  std::vector<std::string> env = r.EnvNames();
  if (r.flag.empty() && !env.empty()) env.erase(env.begin());  // already the row's name
  std::string where;
  if (!env.empty()) {
    where += r.flag.empty() ? "Also " : "Env: ";
    for (size_t i = 0; i < env.size(); ++i) {
      where += (i ? ", " : "");
      // OTEL_X_TRACES_Y, OTEL_X_Y -> OTEL_X_(TRACES_)Y, as the OpenTelemetry spec writes it.
      const size_t t = env[i].find("_TRACES_");
      if (t != std::string::npos && i + 1 < env.size() &&
          env[i + 1] == env[i].substr(0, t) + env[i].substr(t + 7)) {
        where += env[i].substr(0, t + 1) + "(TRACES_)" + env[i].substr(t + 8);
        ++i;
      } else {
        where += env[i];
      }
    }
    if (r.shape == Shape::kList) where += " (a comma-separated list)";
    where += ".";
  }
  if (!r.key.empty()) {
    std::string yaml = "YAML: " + std::string(r.key);
    if (r.shape == Shape::kList) yaml += " (a list)";
    if (r.shape == Shape::kPairs || r.shape == Shape::kRule) yaml += " (a mapping)";
    yaml += ".";
    // On the variables' line when it fits there, else on a line of its own.
    const bool fits = where.size() + 1 + yaml.size() <= kWidth - kTextColumn;
    where += where.empty() ? yaml : (fits ? " " : "\n") + yaml;
  }
  if (!where.empty()) text += "\n" + where;
  return text;
}

}  // namespace

std::string SettingRow::EnvName() const {
  if (shape == Shape::kAction) return "";
  std::string name = "KSPAN_";
  for (char c : key.empty() ? flag.substr(2) : key) {
    name += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

std::vector<std::string> SettingRow::EnvNames() const {
  std::vector<std::string> names;
  if (shape == Shape::kAction) return names;
  names.push_back(EnvName());
  for (std::string_view v : otel_env) names.emplace_back(v);
  return names;
}

const std::vector<SettingRow>& SettingTable() {
  return kTable;
}

const SettingRow* FindFlag(std::string_view flag) {
  for (const SettingRow& r : kTable) {
    if (!flag.empty() && (r.flag == flag || r.alias == flag)) return &r;
  }
  return nullptr;
}

const SettingRow* FindKey(std::string_view key) {
  for (const SettingRow& r : kTable) {
    if (!key.empty() && r.key == key) return &r;
  }
  return nullptr;
}

std::string YamlKeys(std::string_view section) {
  std::vector<std::string_view> keys;
  for (const SettingRow& r : kTable) {
    std::string_view key = r.key;
    if (key.empty()) continue;
    if (!section.empty()) {
      if (!key.starts_with(section) || key.substr(section.size(), 1) != ".") continue;
      key.remove_prefix(section.size() + 1);
    }
    key = key.substr(0, key.find('.'));
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  std::string out;
  for (std::string_view k : keys) out += (out.empty() ? "" : ", ") + std::string(k);
  return out;
}

std::string HelpText() {
  std::string out =
      "kspan: host-wide eBPF tracing agent. Turns what crosses the sockets of every\n"
      "unmodified process into OpenTelemetry spans.\n"
      "\n"
      "Usage: sudo kspan [options]\n"
      "\n"
      "Each setting is taken from its flag, else its environment variable (KSPAN_*\n"
      "before OTEL_*), else the --config file, else its default.\n";
  std::string_view group;
  for (const SettingRow& r : kTable) {
    if (r.group != group) {
      group = r.group;
      out += "\n" + std::string(group) + ":\n";
    }
    std::string lead = "  ";
    if (!r.alias.empty()) lead += std::string(r.alias) + ", ";
    lead += r.flag.empty() ? r.EnvName() + "=" : std::string(r.flag) + (r.metavar.empty() ? "" : " ");
    lead += r.metavar;
    std::string text;
    Wrap(RowText(r), kTextColumn, &text);
    if (lead.size() < kTextColumn) {  // at least one space before the text
      out += lead + text.substr(lead.size());
    } else {
      out += lead + "\n" + text;
    }
  }
  out +=
      "\n"
      "See docs/configuration.md. Logs are JSON lines on stderr. Once every probe is\n"
      "attached kspan logs {\"msg\":\"ready\",...}; on exit it logs {\"msg\":\"stopped\",...}\n"
      "with its counters.\n";
  return out;
}

}  // namespace kspan::agent
