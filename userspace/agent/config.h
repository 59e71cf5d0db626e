// Agent configuration: defaults, then a YAML file (--config), then command-line flags,
// each overriding the one before. Every bad key or value is one clear error that names
// it and what is expected.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace kspan::agent {

struct Config {
  // Where spans go: "console", "file:PATH". Empty after parsing means the embedded
  // default: console plus an OTLP/JSON-lines file, kDefaultFile.
  std::vector<std::string> outputs;
  double duration_seconds = 0;  // 0: run until SIGINT/SIGTERM
  std::vector<uint32_t> pids;   // empty: every process
  uint32_t capture_bytes = 4096;
  uint32_t ring_buffer_bytes = 8u << 20;
  uint32_t drain_interval_ms = 10;
  // Trace assembly (correlator/stitcher.h): how long a finished trace waits for late
  // spans, and the memory its held spans may take.
  uint32_t trace_window_ms = 500;
  uint32_t trace_max_held_mib = 64;
  std::string log_level = "info";
  bool show_help = false;
  bool show_version = false;
};

inline constexpr const char* kDefaultFile = "kspan-spans.jsonl";

// Parses argv (flags may appear in any order; --config is read first wherever it is).
Result<Config> ParseCommandLine(int argc, char** argv);
// Applies a YAML config file onto `config`.
Status ApplyConfigFile(const std::string& path, Config* config);
// The --help text.
std::string HelpText();

}  // namespace kspan::agent
