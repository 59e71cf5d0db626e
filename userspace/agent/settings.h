// Every setting of kspan, defined once: one row of SettingTable() names its flag, its
// environment variables, its YAML key, its default and its help, and holds the function
// that parses its value. Flag parsing, the environment, the YAML file (agent/config.cc),
// `--help` (HelpText) and the tests (tests/unit/settings_test.cc: every row parses alike
// from each source; docs/configuration.md and README.md match the table) all walk it.
//
//   row                        flag                  environment                 YAML
//   otlp.timeout_ms            --otlp-timeout-ms N   KSPAN_OTLP_TIMEOUT_MS,      otlp:
//                                                    OTEL_EXPORTER_OTLP_TRACES_    timeout_ms: N
//                                                    TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT
//
// Every setting has the variable KSPAN_<KEY> (the YAML key upper-cased, '.' as '_';
// --config, which has no key, has KSPAN_CONFIG). Some also read the standard OTEL_*
// variables; within the environment the first one set wins, KSPAN_* before OTEL_*,
// signal-specific before generic, and only that one is read.
//
// A new setting: a field in Layer (and in Config), a row in settings.cc, one line in
// Resolve (config.cc), a sample in settings_test.cc and a row in docs/configuration.md;
// the tests say which of these is missing.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config_values.h"
#include "common/status.h"
#include "exporters/settings.h"

namespace kspan::agent {

// A value and the flag, variable or file key it came from, so an error found only when
// sources are combined (a batch larger than the queue) still names what to fix.
template <typename T>
struct Setting {
  T value;
  std::string source;
};
template <typename T>
using Opt = std::optional<Setting<T>>;

// What one source said: the flags, the environment, or the YAML files (a later file
// overrides an earlier one). A setting the source did not name stays unset. Resolution
// (config.cc) takes, per setting, the flags' value, else the environment's, else the
// file's, else the default.
struct Layer {
  Opt<std::vector<std::string>> outputs;  // checked specs: console, file:PATH, otlp, zipkin, none
  Opt<std::string> otlp_endpoint;         // a base URL: http/* appends v1/traces
  Opt<std::string> otlp_traces_endpoint;  // used as is
  Opt<exporters::OtlpProtocol> otlp_protocol;
  Opt<KeyValues> otlp_headers;  // names lowercased; the whole list replaces a lower layer's
  Opt<std::chrono::milliseconds> otlp_timeout;
  Opt<exporters::Compression> otlp_compression;
  Opt<std::string> otlp_certificate;
  Opt<std::string> zipkin_endpoint;
  Opt<std::chrono::milliseconds> zipkin_timeout;
  Opt<size_t> queue_max_spans;
  Opt<size_t> queue_max_batch;
  Opt<std::chrono::milliseconds> queue_schedule_delay;
  Opt<std::chrono::milliseconds> queue_export_timeout;
  KeyValues resource_attributes;  // merged key by key across layers

  Opt<double> duration_seconds;
  Opt<std::vector<uint32_t>> pids;
  Opt<std::vector<std::string>> include;  // checked selection rules (process/selection.h)
  Opt<std::vector<std::string>> exclude;
  Opt<uint32_t> capture_bytes;
  Opt<bool> db_raw_query_text;
  Opt<std::string> tls_patterns;  // a path; read and parsed at start (tls/byte_patterns.h)
  Opt<uint32_t> ring_buffer_bytes;
  Opt<uint32_t> drain_interval_ms;
  Opt<uint32_t> trace_window_ms;
  Opt<uint32_t> trace_max_held_mib;
  Opt<std::string> log_level;
  Opt<std::string> listen;
  Opt<uint32_t> genai_capture_bytes;
  Opt<uint32_t> genai_max_body_bytes;
  Opt<bool> genai_capture_content;
  Opt<std::string> genai_prices;  // a price table file; unset: the shipped one
  KeyValues agent_rules;          // name, match; a stronger layer's rules are tried first
  Opt<uint32_t> agent_loop_tool_calls;
  Opt<uint32_t> agent_loop_ping_pong;
  Opt<uint32_t> agent_token_budget;

  Opt<std::string> sampler;                     // checked name (processors/head_sampler.h)
  Opt<std::string> sampler_arg;                 // checked: a ratio 0..1
  Opt<std::vector<std::string>> tail_policies;  // checked specs (processors/tail_sampler.h)
  Opt<double> rate_limit;
  Opt<double> rate_limit_burst;
  Opt<double> rate_limit_per_service;
  Opt<std::vector<std::string>> drop;  // checked filter rules (processors/span_filter.h)
  Opt<bool> trace_telemetry;
  Opt<std::vector<std::string>> span_attributes;  // checked KEY=VALUE (processors/span_attributes.h)
  Opt<std::vector<std::string>> redact;           // checked RE2 patterns
  Opt<bool> redact_secrets;
  Opt<bool> console_tree;  // the console output as trees (exporters/console_exporter.h)

  Opt<std::string> metrics_exporter;       // checked: otlp, prometheus or none
  Opt<std::string> otlp_metrics_endpoint;  // used as is
  Opt<std::chrono::milliseconds> metrics_interval;
  Opt<std::string> metrics_temporality;  // checked, lowercased: cumulative, delta or lowmemory
  Opt<bool> span_metrics;

  Opt<std::string> carrier;        // checked: tcp-option or off
  Opt<std::string> carrier_netns;  // checked: all or self

  Opt<bool> ui;                 // the web UI, Jaeger API and trace store (ui/, store/)
  Opt<std::string> store_path;  // used as is; opened at start
  Opt<uint32_t> store_max_mib;
  Opt<uint32_t> store_max_age_hours;
  Opt<uint32_t> store_max_spans_per_second;

  Opt<std::vector<std::string>> config;  // the YAML files, read in order (flags and environment only)

  bool HasOtlpSettings() const {
    return otlp_endpoint || otlp_traces_endpoint || otlp_protocol || otlp_headers || otlp_timeout ||
           otlp_compression || otlp_certificate;
  }
  bool HasZipkinSettings() const { return zipkin_endpoint || zipkin_timeout; }
};

// How a setting's value is written in each source.
enum class Shape {
  kValue,   // one value; a flag given twice: the last wins
  kSwitch,  // a flag without a value turns it on; the environment and YAML say true or false
  kList,    // flag repeatable, one item each; environment: a comma-separated list; YAML: a sequence
  kPairs,   // K=V,... with %-encoded values in a flag (repeatable, adding up) and the
            // environment; YAML: a mapping, taken as written
  kRule,    // NAME=MATCH, one a flag (repeatable), as written; environment as kPairs; YAML: a mapping
  kAction,  // --help, --version: no value, no environment, no YAML
};

// One source's value of one setting, shaped by the row's Shape, for Row::parse.
struct Input {
  std::string where{};               // for errors: "--pid", "KSPAN_PIDS", "--config F: pids"
  std::vector<std::string> items{};  // kValue, kSwitch: exactly one; kList: every item
  KeyValues pairs{};                 // kPairs, kRule
  std::vector<std::string>* warnings = nullptr;
};

struct SettingRow {
  std::string_view group{};                  // the heading in --help and docs/configuration.md
  std::string_view flag{};                   // "--otlp-endpoint"; empty when there is none
  std::string_view metavar{};                // "URL"; empty for switches
  std::string_view key{};                    // YAML key, dotted for sections ("otlp.endpoint"); empty: none
  std::vector<std::string_view> otel_env{};  // standard variables also read, strongest first
  Shape shape = Shape::kValue;
  bool secret = false;              // errors never quote a value (headers)
  std::string_view noun{};          // kList, kPairs, kRule: what the YAML list or mapping holds
  std::string_view default_text{};  // for --help and the docs; empty: no default line
  std::string_view help{};          // one paragraph; "\n" starts a new line, leading spaces indent it
  Status (*parse)(const Input&, Layer*) = nullptr;
  std::string_view alias{};  // a short flag ("-h")

  // KSPAN_<KEY>, or empty for kAction rows.
  std::string EnvName() const;
  // KSPAN_<KEY> and then otel_env.
  std::vector<std::string> EnvNames() const;
};

const std::vector<SettingRow>& SettingTable();

// The row of a flag ("--pid", "-h") or a YAML key ("otlp.endpoint"), or nullptr.
const SettingRow* FindFlag(std::string_view flag);
const SettingRow* FindKey(std::string_view key);
// The YAML keys of a section ("otlp": "endpoint, traces_endpoint, ..."), or with an empty
// section the top-level keys ("outputs, otlp, ..."), in table order.
std::string YamlKeys(std::string_view section);

}  // namespace kspan::agent
