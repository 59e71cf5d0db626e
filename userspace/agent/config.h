// Agent configuration. Each setting comes from the first of these that sets it:
//
//   1. a command-line flag            --otlp-endpoint http://collector:4318
//   2. the environment: KSPAN_<KEY>,  KSPAN_OTLP_ENDPOINT=http://collector:4318
//      else a standard OTEL_* one     OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318
//   3. the YAML file (--config)        otlp: {endpoint: http://collector:4318}
//   4. the default
//
// Precedence is per setting: a flag for the protocol and a file for the endpoint combine.
// Every setting is one row of agent/settings.h, which names its flag, variables and YAML
// key and parses its value; this file reads the sources by that table and resolves them.
// Everything is checked and resolved here (URLs, the OTLP/HTTP /v1/traces path, headers,
// numbers, the CA file), so start-up code gets plain values; every bad key or value is one
// InvalidArgument that names it (the flag, variable or file key) and what is expected.
// docs/configuration.md is the user's reference; a unit test keeps it and README.md true
// to the table.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "exporters/settings.h"
#include "process/selection.h"
#include "processors/span_attributes.h"
#include "processors/trace_sampler.h"

namespace kspan::agent {

// The environment variables a configuration is read from: the process's own
// (FromProcess) or, in tests, any map, so tests never touch the real environment. An
// empty value is the same as an unset one (the OpenTelemetry environment spec's rule).
class Environment {
 public:
  Environment() = default;
  explicit Environment(std::map<std::string, std::string> vars);
  // The OTEL_* and KSPAN_* variables of this process (nothing else is read).
  static Environment FromProcess();

  // The value, or nullopt when unset or empty.
  std::optional<std::string> Get(std::string_view name) const;
  // The names of the variables that are set (not empty) and start with `prefix`, sorted.
  std::vector<std::string> NamesStartingWith(std::string_view prefix) const;

 private:
  std::map<std::string, std::string, std::less<>> vars_;
};

// One destination of spans: a printable name for logs ("console", "file:PATH",
// "otlp(grpc http://collector:4317)", "zipkin(http://host:9411/api/v2/spans)"; an
// endpoint's query string is left out) and the settings exporters::MakeExporter takes.
struct Output {
  std::string name;
  exporters::ExporterSettings settings;
};

struct Config {
  // Where spans go, resolved. Empty only when "none" was asked for: spans are built and
  // counted, and exported nowhere. With nothing configured: console plus an OTLP/JSON-lines
  // file, kDefaultFile.
  std::vector<Output> outputs;
  // Added to the resource of every watched process, after the process's own attributes
  // (which win for the same key) and never replacing service.name or process.*
  // (process/process_table.h).
  std::vector<std::pair<std::string, std::string>> resource_attributes;
  // Things worth a warning at start-up that are not errors (a setting kspan ignores, OTLP
  // settings without an otlp output). The agent logs each one.
  std::vector<std::string> warnings;

  double duration_seconds = 0;  // 0: run until SIGINT/SIGTERM
  std::vector<uint32_t> pids;   // empty: every process
  // --include/--exclude (process/selection.h); empty: every process.
  process::SelectionRules selection;
  uint32_t capture_bytes = 4096;
  // db.query.text of SQL databases as sent instead of sanitised (docs/databases.md).
  bool db_raw_query_text = false;
  // A TLS byte-pattern table (tls/byte_patterns.h) whose rows follow the built-in ones;
  // empty: the built-in rows only.
  std::string tls_patterns;
  // LLM API calls (docs/genai.md): bytes captured per syscall on their connections, body
  // bytes kept per request and response, and whether prompts and completions are
  // exported (redacted) as span events.
  uint32_t genai_capture_bytes = 16384;
  uint32_t genai_max_body_bytes = 1u << 20;
  bool genai_capture_content = false;
  std::string genai_prices;  // LLM price table file (genai/prices.h); empty: the shipped one
  // Agent names by executable path or command line substring (docs/agents.md).
  std::vector<std::pair<std::string, std::string>> agent_rules;  // name, match
  uint32_t agent_loop_tool_calls = 5;
  uint32_t agent_loop_ping_pong = 6;
  uint32_t agent_token_budget = 200000;  // tokens a minute; 0: off
  uint32_t ring_buffer_bytes = 8u << 20;
  uint32_t drain_interval_ms = 10;
  // Trace assembly (correlator/stitcher.h): how long a finished trace waits for late
  // spans, and the memory its held spans may take.
  uint32_t trace_window_ms = 500;
  uint32_t trace_max_held_mib = 64;
  // Head, tail and rate-limit sampling (docs/sampling.md), resolved and checked.
  processors::SamplingConfig sampling;
  // Filter rules (processors/span_filter.h), the built-in telemetry rule last unless
  // --trace-telemetry.
  std::vector<processors::FilterRule> filters;
  processors::AttributeRules attribute_rules;  // --span-attribute, --redact, --redact-secrets
  // RED metrics and the service graph (processors/span_metrics.h), and where they go
  // besides /metrics: OTLP when set (exporters/otlp_metrics.h).
  bool span_metrics = true;
  std::optional<exporters::OtlpMetricsSettings> metrics_otlp;
  // The trace-context carriers (carrier/, docs/tracing.md): "off", "tcp-option",
  // "http-header" or "tcp-option,http-header" (settings.cc keeps that order), and
  // whether it works in every network namespace ("all") or only kspan's own ("self").
  std::string carrier = "off";
  std::string carrier_netns = "all";
  std::string log_level = "info";
  // The agent's own HTTP endpoint (/metrics, /api/..., /healthz; agent/status_server.h):
  // ADDRESS:PORT, checked (http::ParseListenAddress). Empty: no socket at all.
  std::string listen;
  // The web UI, Jaeger query API and trace store (docs/ui.md): on unless --ui false; served
  // on `listen`, else on 127.0.0.1:9464 when that port is free.
  bool ui = true;
  std::string store_path = "/var/lib/kspan/traces.db";
  uint32_t store_max_mib = 256;
  uint32_t store_max_age_hours = 24;
  // Spans a second the store writes at most, in whole traces (store/admission.h); 0: all.
  uint32_t store_max_spans_per_second = 1000;
  bool show_help = false;
  bool show_version = false;
};

inline constexpr const char* kDefaultFile = "kspan-spans.jsonl";

// Parses argv (flags may appear in any order) with `env` as the environment.
Result<Config> ParseCommandLine(int argc, char** argv, const Environment& env);
// The same with Environment::FromProcess().
Result<Config> ParseCommandLine(int argc, char** argv);

// The --help text, generated from the setting table (agent/settings.cc).
std::string HelpText();

}  // namespace kspan::agent
