#include "common/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/json.h"
#include "common/strings.h"
#include "common/utf8.h"

namespace kspan::metrics {
namespace {

struct Entry {
  std::string_view name;
  MetricDescription info;
};

// Every metric the daemon registers, sorted by name. A new GetCounter/GetHistogram name
// belongs here too (tests/unit/prometheus_test.cc finds the names in the sources).
constexpr Entry kMetrics[] = {
    {"db_client_operation_duration_seconds",
     {"histogram",
      "Duration of database client operations (spans before sampling; OpenTelemetry "
      "db.client.operation.duration)."}},
    {"gen_ai_client_operation_duration_seconds",
     {"histogram",
      "Duration of LLM API calls seen on the wire (OpenTelemetry gen_ai semantic conventions)."}},
    {"gen_ai_client_operation_time_to_first_chunk_seconds",
     {"histogram", "Time from an LLM API request to the first chunk of its streamed response."}},
    {"gen_ai_client_token_usage",
     {"histogram",
      "Tokens per LLM API call as the API reported them, by gen_ai_token_type (input, output)."}},
    {"http_client_request_duration_seconds",
     {"histogram",
      "Duration of HTTP client requests (spans before sampling; OpenTelemetry "
      "http.client.request.duration)."}},
    {"http_server_request_duration_seconds",
     {"histogram",
      "Duration of HTTP server requests (spans before sampling; OpenTelemetry "
      "http.server.request.duration)."}},
    {"kspan_agent_file_writes_total",
     {"counter",
      "Files agents and tool servers wrote, by outcome: attached to the execute_tool span in flight, "
      "no_tool_run (written outside any), dropped (bounds)."}},
    {"kspan_agent_graph_calls_total", {"counter", "Calls on each agent call graph edge (from, to, kind)."}},
    {"kspan_agent_graph_dropped_total",
     {"counter", "Calls not added to the agent call graph because it holds its maximum number of edges."}},
    {"kspan_agent_graph_duration_seconds",
     {"histogram", "Duration of the calls on each agent call graph edge."}},
    {"kspan_agent_graph_errors_total",
     {"counter", "Calls on each agent call graph edge whose span has status ERROR."}},
    {"kspan_agent_graph_tokens_total",
     {"counter", "LLM tokens on each agent call graph edge, by type (input, output)."}},
    {"kspan_agent_loops_total",
     {"counter",
      "Runaway-loop alerts, by kind (repeated_tool_call: an agent called the same tool with the same "
      "arguments the configured number of times; ping_pong: two agents messaged each other in "
      "alternation that often; token_velocity: an agent's tokens a minute passed the budget), agent "
      "and session (kspan_session: the agent process's pid)."}},
    {"kspan_agent_spans_total", {"counter", "Agent spans built, by kind (execute_tool, invoke_agent)."}},
    {"kspan_agent_tool_calls_total",
     {"counter",
      "Tool calls LLM answers asked agents for, by outcome: linked to the execute_tool span that ran "
      "them, or unlinked (no run of it seen: pushed out by newer calls, or still waiting at the "
      "agent's exit)."}},
    {"kspan_agent_tool_runs_held_total",
     {"counter",
      "execute_tool spans held for the LLM answer that asked for them, by how the hold ended: answered "
      "(the agent's earlier calls answered), timeout, full (too many held), exit."}},
    {"kspan_bytes_ignored_total",
     {"counter", "Captured bytes of connections that carry no protocol kspan reads."}},
    {"kspan_bytes_total",
     {"counter", "Payload bytes of traced syscalls: moved by the syscalls and captured by kspan, by kind."}},
    {"kspan_carrier_contexts_total",
     {"counter",
      "Trace contexts of the TCP-option carrier by side (client, server) and outcome: set by the kernel "
      "for a new request, used by a span, unmatched (no span took it), rejected (invalid ids, a new "
      "trace), unplaced (arrived mid-read), trace_mismatch (a CLIENT span's stitched trace differs)."}},
    {"kspan_carrier_headers_total",
     {"counter",
      "Requests the opt-in HTTP-header carrier looked at, by outcome: written (a traceparent line "
      "added), skipped_* (nothing written: not_http, tls, http2, has_traceparent, connect, split_head, "
      "pipelined), stopped_* (written or not, nothing after it on that connection: upgrade, framing, "
      "mid_stream), failed (the kernel could not insert; nothing changed); and of the written ones, "
      "tracestate_written (a tracestate line too), tracestate_left_to_app (the request had its own "
      "tracestate: none added), tracestate_lost (the thread's list was evicted: traceparent alone)."}},
    {"kspan_carrier_incoming_traceparents_total",
     {"counter",
      "traceparent headers of requests a server thread read, checked in the kernel by the HTTP-header "
      "carrier: valid (its requests continue that trace) or invalid (a new trace)."}},
    {"kspan_carrier_incoming_tracestates_total",
     {"counter",
      "tracestate headers of requests a server thread read, checked in the kernel by the HTTP-header "
      "carrier: kept (continued with the trace), truncated (whole members removed to fit 512 bytes), "
      "invalid and too_many_members (dropped whole), no_traceparent (discarded: no valid traceparent)."}},
    {"kspan_carrier_options_total",
     {"counter",
      "TCP options of the trace-context carrier: written, parsed, rejected (ours but malformed: a new "
      "trace), no_space and too_big (not written: no room in the header or segment)."}},
    {"kspan_carrier_reports_lost_total",
     {"counter", "Reports of the carrier's kernel half lost (its ring buffer full, or not drained)."}},
    {"kspan_carrier_sockhash_removed_total",
     {"counter",
      "Client sockets the HTTP-header carrier took out of its sockhash (back to plain TCP) once their "
      "bytes were not plaintext HTTP/1 it understands."}},
    {"kspan_cgroup_cpu_pressure_stall_seconds_total",
     {"counter",
      "CPU pressure of the cgroups of a traced service: seconds in which some of their tasks waited for a "
      "CPU "
      "(cgroup v2 cpu.pressure some total), since kspan first read them.",
      1e-6}},
    {"kspan_cgroup_cpu_throttled_periods_total",
     {"counter",
      "Quota periods in which the cgroups of a traced service were throttled (cpu.stat nr_throttled), since "
      "kspan first read them."}},
    {"kspan_cgroup_cpu_throttled_seconds_total",
     {"counter",
      "Seconds the cgroups of a traced service were throttled by their CPU quota (cpu.stat throttled_usec), "
      "since kspan first read them.",
      1e-6}},
    {"kspan_connections_evicted_total",
     {"counter", "Connections whose state was dropped before they closed, by reason (idle, table_full)."}},
    {"kspan_connections_missing_open_total",
     {"counter",
      "Connections seen first by their data, without an open event (started before kspan, or lost)."}},
    {"kspan_connections_total", {"counter", "Connections tracked."}},
    {"kspan_connections_unrecognised_total",
     {"counter", "Connections given up on because their bytes are no protocol kspan reads."}},
    {"kspan_drops_total", {"counter", "Data dropped, by reason."}},
    {"kspan_events_dropped_total",
     {"counter", "Kernel events dropped in user space, by reason (malformed)."}},
    {"kspan_events_total", {"counter", "Kernel events handled, by type."}},
    {"kspan_export_failures_total", {"counter", "Batches an output could not fully take, by exporter."}},
    {"kspan_exporter_queue_spans", {"gauge", "Spans queued in a network exporter, plus the batch in hand."}},
    {"kspan_exporter_requests_total", {"counter", "Requests sent by a network exporter, retries included."}},
    {"kspan_exporter_retries_total",
     {"counter", "Requests of a network exporter that were retries, by why the attempt before failed."}},
    {"kspan_exporter_spans_dropped_total",
     {"counter", "Spans a network exporter dropped, by exporter and reason."}},
    {"kspan_exporter_spans_possibly_delivered_total",
     {"counter",
      "Spans a network exporter counted dropped although an earlier attempt may have delivered them."}},
    {"kspan_exporter_spans_possibly_duplicated_total",
     {"counter",
      "Extra copies of spans a network exporter's backend may hold: resent after an attempt that may "
      "have delivered them."}},
    {"kspan_exporter_spans_sent_total", {"counter", "Spans a network exporter's backend accepted."}},
    {"kspan_file_bytes_deleted_total",
     {"counter", "Bytes of older span files deleted by the file output's rotation."}},
    {"kspan_file_files_deleted_total",
     {"counter", "Older span files deleted by the file output's rotation."}},
    {"kspan_file_rotations_total", {"counter", "Rotations of the file output (PATH renamed to PATH.1)."}},
    {"kspan_file_spans_deleted_total",
     {"counter", "Spans deleted with older span files by the file output's rotation."}},
    {"kspan_filter_spans_dropped_total",
     {"counter",
      "Spans dropped by a filter rule (the rule as written, telemetry, or descendant for the spans under a "
      "dropped one)."}},
    {"kspan_genai_bodies_unread_total", {"counter", "LLM API bodies kspan could not read, by reason."}},
    {"kspan_genai_calls_total", {"counter", "LLM API calls turned into gen_ai spans."}},
    {"kspan_genai_cost_unpriced_total",
     {"counter", "LLM calls with token usage whose model the price table has no price for."}},
    {"kspan_genai_cost_usd",
     {"histogram",
      "What each LLM call cost in USD (token usage x the price table), by agent, session, model and "
      "service: _sum is the total."}},
    {"kspan_http2_headers_incomplete_total",
     {"counter",
      "HTTP/2 spans with header fields HPACK could not decode (the dynamic table was unknown after a "
      "loss or a late join); the fields are left out, never guessed."}},
    {"kspan_http_connections_dropped_total",
     {"counter", "Connections to kspan's own HTTP endpoint closed without a full response, by reason."}},
    {"kspan_http_requests_total",
     {"counter", "Requests to kspan's own HTTP endpoint (--listen), by path and status code."}},
    {"kspan_k8s_api_requests_total",
     {"counter", "Requests to the Kubernetes API for this node's pods (lists and watches), by result."}},
    {"kspan_k8s_pods_left_out_total",
     {"counter", "Pods of this node not held in kspan's pod cache because it was full."}},
    {"kspan_k8s_watch_events_unreadable_total",
     {"counter", "Lines of the Kubernetes pod watch kspan could not read (skipped)."}},
    {"kspan_kernel_counts_total",
     {"counter", "Counters kept in the kernel by kspan's BPF programs, by name (read about once a second)."}},
    {"kspan_listen_queue_depth",
     {"histogram",
      "Connections still waiting in a traced server's listen queue when it accepted one (the kernel's "
      "sk_ack_backlog at accept), by service and port."}},
    {"kspan_listen_queue_limit",
     {"gauge",
      "The bound of a traced server's listen queue (sk_max_ack_backlog: listen()'s backlog, capped by "
      "net.core.somaxconn), by service and port."}},
    {"kspan_metrics_export_points_total",
     {"counter", "Data points in OTLP metrics requests the backend accepted."}},
    {"kspan_metrics_export_requests_total",
     {"counter", "OTLP metrics export requests, by result (sent, failed)."}},
    {"kspan_parse_buffers_evicted_total",
     {"counter",
      "Connections whose buffered partial frames were dropped at the global bound on parser memory, by "
      "protocol."}},
    {"kspan_parse_bytes_dropped_total",
     {"counter",
      "Bytes a protocol parser skipped as unparseable, or dropped at a buffer bound, by protocol."}},
    {"kspan_parse_failures_total", {"counter", "Protocol parse failures, by protocol."}},
    {"kspan_parse_gaps_total",
     {"counter", "Holes in a stream (lost or uncaptured bytes) met by a parser, by protocol."}},
    {"kspan_parse_messages_cut_total",
     {"counter",
      "Messages cut short by their connection's close (a peer gone mid-message), by protocol; not parse "
      "failures."}},
    {"kspan_parse_messages_truncated_total",
     {"counter",
      "Messages a parser kept only a prefix of, by protocol: a SQL query text cut by --capture-bytes or "
      "a read bound (its span has kspan.db.query.truncated=true)."}},
    {"kspan_process_output_dropped_total", {"counter", "Lines of agents' stdout and stderr dropped."}},
    {"kspan_process_output_lines_total", {"counter", "Lines of agents' stdout and stderr, by outcome."}},
    {"kspan_processor_spans_dropped_total",
     {"counter", "Spans a processor dropped on their way out, by processor."}},
    {"kspan_records_dropped_total", {"counter", "Protocol records dropped, by protocol and reason."}},
    {"kspan_records_total", {"counter", "Protocol records (request and response) built, by protocol."}},
    {"kspan_redactions_total",
     {"counter", "String values a redaction rule changed, by rule (secrets, or the --redact pattern)."}},
    {"kspan_requests_unanswered_total",
     {"counter",
      "Requests given up with no response, by protocol and reason (no_response, response_not_captured, "
      "evicted, process_exit, shutdown)."}},
    {"kspan_ring_buffer_records_total", {"counter", "Records read from the kernel ring buffer."}},
    {"kspan_sampling_traces_decided_early_total",
     {"counter", "Traces the sampler decided on the spans they had when a bound flushed them early."}},
    {"kspan_sampling_traces_total",
     {"counter", "Sampling decisions, one a trace, by sampler (head, tail, rate_limit), decision and rule."}},
    {"kspan_saturation_read_failures_total",
     {"counter", "cgroup files kspan could not read for saturation metrics, once per cgroup, by file."}},
    {"kspan_saturation_series_dropped_total",
     {"counter",
      "Saturation observations or processes left out at a bound, by metric (listen_queue, service, process, "
      "cgroup)."}},
    {"kspan_selection_changes_total",
     {"counter", "Processes whose --include/--exclude decision changed (a port rule checked again)."}},
    {"kspan_selection_decisions_total",
     {"counter", "Processes decided by the --include/--exclude rules, by decision (traced, skipped)."}},
    {"kspan_selection_events_dropped_total",
     {"counter",
      "Events of processes the rules skip that reached user space before the kernel knew (skipped), or of "
      "processes waiting for their pod's metadata (pending)."}},
    {"kspan_selection_kernel_updates_failed_total",
     {"counter",
      "Selection decisions the kernel could not be told of (their events are dropped in user space)."}},
    {"kspan_selection_listens_total",
     {"counter",
      "listen() calls of processes only a port rule kept out, decided again with the new port before their "
      "first connection."}},
    {"kspan_service_graph_dropped_total",
     {"counter",
      "Spans the service graph gave up on at a bound, by reason (pending_full: waiting spans; edges_full: "
      "edges)."}},
    {"kspan_service_graph_unpaired_spans_total",
     {"counter", "CLIENT or SERVER spans the service graph found no partner for, by side."}},
    {"kspan_service_run_delay_seconds_total",
     {"counter",
      "Seconds the threads of a traced service were runnable but waiting for a CPU "
      "(/proc/PID/task/TID/schedstat run delay), since kspan first read them.",
      1e-6}},
    {"kspan_sessions_total",
     {"counter",
      "CLI agent sessions (invoke_agent spans over a process's run), by outcome: opened, dropped at the "
      "bound, cut at shutdown, exit_lost (ended when the process was found gone)."}},
    {"kspan_span_metrics_overflow_total",
     {"counter",
      "Spans counted in the otel_metric_overflow series of a span metric because it holds its maximum "
      "number of series, by metric."}},
    {"kspan_spans_dropped_total", {"counter", "Spans the export pipeline dropped, by reason."}},
    {"kspan_spans_export_failed_total",
     {"counter", "Spans in batches an output could not fully take, by exporter."}},
    {"kspan_spans_exported_total", {"counter", "Spans handed to each output, by exporter."}},
    {"kspan_spans_total", {"counter", "Spans built from traced traffic."}},
    {"kspan_stitch_ambiguous_total",
     {"counter", "Spans whose parent could not be told apart: links, not a guess."}},
    {"kspan_stitch_follows_from_total", {"counter", "Follows-from links added by the stitcher."}},
    {"kspan_stitch_forgotten_total", {"counter", "Requests the stitcher stopped tracking at its bound."}},
    {"kspan_stitch_links_total",
     {"counter", "Links between spans of this host asked for (a tool run and its LLM call), by outcome."}},
    {"kspan_stitch_parents_total", {"counter", "Parents assigned by the stitcher, by rule."}},
    {"kspan_stitch_roots_total", {"counter", "Spans that started a new trace."}},
    {"kspan_stitch_unannounced_total", {"counter", "Spans exported without stitching."}},
    {"kspan_store_bytes",
     {"gauge", "Bytes the trace store's database holds (pages in use), at its last check."}},
    {"kspan_store_queue_spans", {"gauge", "Spans waiting to be written to the trace store."}},
    {"kspan_store_rows_unreadable_total",
     {"counter",
      "Trace store rows that could not be read back (served without them), by kind: span, resource."}},
    {"kspan_store_spans_dropped_total",
     {"counter", "Spans the trace store did not keep, by reason: queue_full, write_failed."}},
    {"kspan_store_spans_written_total", {"counter", "Spans written to the trace store."}},
    {"kspan_store_traces_evicted_total",
     {"counter", "Traces the trace store deleted to stay within its bounds, by reason: size, age."}},
    {"kspan_stream_gaps_total", {"counter", "Holes in captured byte streams (lost or uncaptured bytes)."}},
    {"kspan_tls_ciphertext_bytes_ignored_total",
     {"counter", "Bytes of TLS connections whose plaintext is not captured."}},
    {"kspan_tls_connections_total", {"counter", "TLS connections, by whether their plaintext is captured."}},
    {"kspan_tls_files_attach_failed_total",
     {"counter", "Binaries and libraries with OpenSSL whose probes failed to attach."}},
    {"kspan_tls_files_probed_total", {"counter", "Binaries and libraries with OpenSSL that got TLS probes."}},
    {"kspan_tls_not_captured_total", {"counter", "TLS users kspan cannot read, by binary and reason."}},
    {"kspan_tls_notices_dropped_total", {"counter", "TLS probe notices dropped, by reason."}},
    {"kspan_tls_plaintext_dropped_total", {"counter", "TLS plaintext dropped, by reason."}},
    {"kspan_traces_flushed_total",
     {"counter", "Traces exported by the stitcher, by reason (complete, shutdown, or a bound)."}},
    {"mcp_client_operation_duration_seconds",
     {"histogram",
      "Duration of MCP requests and notifications an agent sent, from the request to its answer "
      "(OpenTelemetry mcp.client.operation.duration)."}},
    {"mcp_server_operation_duration_seconds",
     {"histogram",
      "Duration of MCP requests a server handled, from the request to its answer (OpenTelemetry "
      "mcp.server.operation.duration)."}},
    {"rpc_client_call_duration_seconds",
     {"histogram",
      "Duration of outgoing RPCs (spans before sampling; OpenTelemetry rpc.client.call.duration)."}},
    {"rpc_server_call_duration_seconds",
     {"histogram",
      "Duration of incoming RPCs (spans before sampling; OpenTelemetry rpc.server.call.duration)."}},
    {"traces_service_graph_request_client_seconds",
     {"histogram", "Duration of requests on a service graph edge, as the client span measured it."}},
    {"traces_service_graph_request_failed_total",
     {"counter", "Requests on a service graph edge (client, server) where either span has status ERROR."}},
    {"traces_service_graph_request_server_seconds",
     {"histogram", "Duration of requests on a service graph edge, as the server span measured it."}},
    {"traces_service_graph_request_total",
     {"counter", "Requests on a service graph edge (client, server, connection_type), before sampling."}},
};

static_assert(std::is_sorted(std::begin(kMetrics), std::end(kMetrics),
                             [](const Entry& a, const Entry& b) { return a.name < b.name; }),
              "kMetrics must stay sorted by name: Find() is a binary search");

const Entry* Find(std::string_view name) {
  const auto* it = std::lower_bound(std::begin(kMetrics), std::end(kMetrics), name,
                                    [](const Entry& e, std::string_view n) { return e.name < n; });
  return it != std::end(kMetrics) && it->name == name ? it : nullptr;
}

// {k="v",...,extra_key="extra_value"}, or nothing when there are no labels.
void AppendLabels(const Labels& labels, std::string_view extra_key, std::string_view extra_value,
                  std::string* out) {
  if (labels.empty() && extra_key.empty()) return;
  out->push_back('{');
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out->push_back(',');
    first = false;
    *out += SanitizeName(k, /*label=*/true);
    *out += "=\"";
    *out += EscapeLabelValue(v);
    out->push_back('"');
  }
  if (!extra_key.empty()) {
    if (!first) out->push_back(',');
    *out += extra_key;
    *out += "=\"";
    *out += extra_value;
    out->push_back('"');
  }
  out->push_back('}');
}

}  // namespace

MetricDescription MetricInfo(std::string_view name) {
  if (const Entry* e = Find(name)) return e->info;
  return {name.ends_with("_total") ? "counter" : "untyped", "kspan metric (no description yet)."};
}

bool HasMetricInfo(std::string_view name) {
  return Find(name) != nullptr;
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size();) {
    const char c = v[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      // Prometheus rejects a scrape with a label value that is not UTF-8; values can come
      // from traced traffic, so bad bytes become U+FFFD (as in the JSON writer).
      const size_t n = Utf8SequenceLength(v, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
      } else {
        out.append(v.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
    ++i;
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string SanitizeName(std::string_view name, bool label) {
  std::string out;
  out.reserve(name.size() + 1);
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) out.push_back('_');
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    (c == ':' && !label);
    out.push_back(ok ? c : '_');
  }
  return out;
}

std::string FormatSampleValue(const Sample& s) {
  const double scale = MetricInfo(s.name).scale;
  return scale != 0 ? FormatValue(static_cast<double>(s.value) * scale) : std::to_string(s.value);
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

namespace {

// OpenMetrics HELP escapes '"' as well.
std::string EscapeOpenMetricsHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '"': out += "\\\""; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// A bucket bound as OpenMetrics wants `le`: canonical, so an integer keeps ".0".
std::string CanonicalBound(double v) {
  std::string s = FormatValue(v);
  if (std::isfinite(v) && s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

// " # {trace_id=\"…\",span_id=\"…\"} value seconds": an OpenMetrics exemplar.
void AppendExemplar(const Exemplar& e, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out += " # {trace_id=\"";
  for (uint8_t b : e.trace_id) {
    out->push_back(kHex[b >> 4]);
    out->push_back(kHex[b & 15]);
  }
  *out += "\",span_id=\"";
  for (uint8_t b : e.span_id) {
    out->push_back(kHex[b >> 4]);
    out->push_back(kHex[b & 15]);
  }
  *out += "\"} ";
  *out += FormatValue(e.value);
  // Seconds with the nanoseconds as a fraction, exactly (a double would round them).
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, " %llu.%09llu",
                              static_cast<unsigned long long>(e.time_unix_nano / 1000000000ULL),
                              static_cast<unsigned long long>(e.time_unix_nano % 1000000000ULL));
  out->append(buf, static_cast<size_t>(n));
}

std::string Exposition(const std::vector<Sample>& counters, const std::vector<HistogramSample>& histograms,
                       bool open_metrics) {
  std::string out;
  out.reserve(counters.size() * 96 + histograms.size() * 1024);
  const auto header = [&](const std::string& family, std::string_view type, std::string_view help) {
    if (open_metrics) {
      out += "# HELP " + family + ' ' + EscapeOpenMetricsHelp(help) + '\n';
      out += "# TYPE " + family + ' ' + std::string(type == "untyped" ? "unknown" : type) + '\n';
    } else {
      out += "# HELP " + family + ' ' + EscapeHelp(help) + '\n';
      out += "# TYPE " + family + ' ' + std::string(type) + '\n';
    }
  };
  // Both snapshots are sorted by name, so a name's series are consecutive; the header is
  // written when the name changes.
  std::string current;
  double scale = 0;
  for (const Sample& s : counters) {
    const std::string name = SanitizeName(s.name, /*label=*/false);
    if (name != current) {
      current = name;
      const MetricDescription info = MetricInfo(s.name);
      scale = info.scale;
      std::string_view type =
          info.type == "histogram" ? "untyped" : info.type;  // a counter is never a histogram
      std::string family = name;
      if (open_metrics && type == "counter") {
        // OpenMetrics: the family has no _total; its sample has. Without one: unknown
        // (none is named so: the table's test checks every registered counter).
        if (name.ends_with("_total")) {
          family.resize(name.size() - 6);
        } else {
          type = "untyped";
        }
      }
      header(family, type, info.help);
    }
    out += name;
    AppendLabels(s.labels, {}, {}, &out);
    out.push_back(' ');
    out += scale != 0 ? FormatValue(static_cast<double>(s.value) * scale) : std::to_string(s.value);
    out.push_back('\n');
  }
  current.clear();
  for (const HistogramSample& h : histograms) {
    const std::string name = SanitizeName(h.name, /*label=*/false);
    if (name != current) {
      current = name;
      header(name, "histogram", MetricInfo(h.name).help);
    }
    const Histogram::Data& d = h.data;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < d.counts.size(); ++i) {
      cumulative += d.counts[i];
      // counts has one bucket more than bounds: the last one is +Inf.
      const std::string le = i >= d.bounds.size() ? "+Inf"
                             : open_metrics       ? CanonicalBound(d.bounds[i])
                                                  : FormatValue(d.bounds[i]);
      out += name + "_bucket";
      AppendLabels(h.labels, "le", le, &out);
      out += ' ' + std::to_string(cumulative);
      if (open_metrics && i < d.exemplars.size() && d.exemplars[i].time_unix_nano != 0)
        AppendExemplar(d.exemplars[i], &out);
      out.push_back('\n');
    }
    if (d.counts.empty()) {  // a histogram always has the +Inf bucket
      out += name + "_bucket";
      AppendLabels(h.labels, "le", "+Inf", &out);
      out += ' ' + std::to_string(d.count) + '\n';
    }
    out += name + "_sum";
    AppendLabels(h.labels, {}, {}, &out);
    out += ' ' + FormatValue(d.sum) + '\n';
    out += name + "_count";
    AppendLabels(h.labels, {}, {}, &out);
    out += ' ' + std::to_string(d.count) + '\n';
  }
  if (open_metrics) out += "# EOF\n";
  return out;
}

}  // namespace

std::string PrometheusText(const std::vector<Sample>& counters,
                           const std::vector<HistogramSample>& histograms) {
  return Exposition(counters, histograms, /*open_metrics=*/false);
}

std::string PrometheusText(const Registry& registry) {
  return PrometheusText(registry.Snapshot(), registry.HistogramSnapshot());
}

std::string OpenMetricsText(const std::vector<Sample>& counters,
                            const std::vector<HistogramSample>& histograms) {
  return Exposition(counters, histograms, /*open_metrics=*/true);
}

std::string OpenMetricsText(const Registry& registry) {
  return OpenMetricsText(registry.Snapshot(), registry.HistogramSnapshot());
}

bool AcceptsOpenMetrics(std::string_view accept) {
  // Comma-separated media ranges, each with parameters after ';'. q=0 means "not this".
  size_t pos = 0;
  while (pos <= accept.size()) {
    size_t comma = accept.find(',', pos);
    if (comma == std::string_view::npos) comma = accept.size();
    std::string_view range = accept.substr(pos, comma - pos);
    pos = comma + 1;
    const size_t semi = range.find(';');
    std::string_view type = range.substr(0, semi);
    while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
    while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
    if (!EqualsIgnoreCase(type, "application/openmetrics-text")) continue;
    if (semi == std::string_view::npos) return true;
    std::string_view params = range.substr(semi);
    const size_t q = params.find("q=");
    if (q == std::string_view::npos) return true;
    double value = 1;
    std::string_view digits = params.substr(q + 2);
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (r.ec != std::errc() || value > 0) return true;
  }
  return false;
}

}  // namespace kspan::metrics
