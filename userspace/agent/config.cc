#include "agent/config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <set>

#include "common/log.h"
#include "kspan/bpf/events.h"

namespace kspan::agent {
namespace {

template <typename T>
Status ParseUnsigned(std::string_view what, std::string_view text, T min, T max, T* out) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return InvalidArgument(std::string(what) + ": '" + std::string(text) + "' is not a whole number from " +
                           std::to_string(min) + " to " + std::to_string(max));
  }
  *out = static_cast<T>(v);
  return Status::Ok();
}

Status ParseDuration(std::string_view text, double* out) {
  try {
    size_t used = 0;
    const double v = std::stod(std::string(text), &used);
    if (used != text.size() || !std::isfinite(v) || v < 0) throw std::invalid_argument("");
    *out = v;
    return Status::Ok();
  } catch (...) {
    return InvalidArgument("--duration: '" + std::string(text) + "' is not a number of seconds >= 0");
  }
}

Status CheckOutput(std::string_view spec) {
  if (spec == "console") return Status::Ok();
  if (spec.starts_with("file:") && spec.size() > 5) return Status::Ok();
  return InvalidArgument("--output: '" + std::string(spec) +
                         "' is not a known output; expected 'console' or 'file:PATH'");
}

Status CheckLogLevel(const std::string& level) {
  log::Level l;
  if (!log::ParseLevel(level, &l)) {
    return InvalidArgument("log level: '" + level + "' is not one of debug, info, warn, error");
  }
  return Status::Ok();
}

Status CheckRingBuffer(uint32_t v) {
  if (v < 4096 || (v & (v - 1)) != 0) {
    return InvalidArgument("ring buffer bytes: " + std::to_string(v) + " must be a power of two >= 4096");
  }
  return Status::Ok();
}

}  // namespace

std::string HelpText() {
  return R"(kspan: host-wide eBPF tracing agent. Turns what crosses the sockets of every
unmodified process into OpenTelemetry spans (HTTP/1.x today).

Usage: sudo kspan [options]

Options:
  --output SPEC          Where spans go; repeatable. SPEC is one of:
                           console      one readable line per span on stdout
                           file:PATH    OTLP/JSON lines (one TracesData per line), the
                                        OpenTelemetry Collector file-exporter format;
                                        at 256 MiB it moves to PATH.1 and starts anew
                         Default: console and file:kspan-spans.jsonl
  --duration SECONDS     Run this long, flush every output, exit 0. Default: until
                         SIGINT or SIGTERM.
  --pid PID              Trace only this process; repeatable. Default: every process
                         except kspan itself.
  --capture-bytes N      Payload bytes captured per syscall, 0..16384. Default: 4096.
  --ring-buffer-bytes N  Kernel ring buffer size, a power of two. Default: 8388608.
  --drain-interval-ms N  How often the ring buffer is drained, 1..1000. Default: 10.
  --trace-window-ms N    How long a trace whose spans have all ended waits for late
                         spans before it is exported whole, 0..60000. Default: 500.
  --trace-max-held-mib N Memory for spans held while their traces assemble, 1..4096;
                         past it the oldest traces leave early (counted in
                         kspan_traces_flushed_total). Default: 64.
  --log-level LEVEL      debug, info, warn or error. Default: info.
  --config FILE          YAML file with the same settings (keys: outputs, duration,
                         pids, capture_bytes, ring_buffer_bytes, drain_interval_ms,
                         trace_window_ms, trace_max_held_mib, log_level). Flags
                         override it.
  --version              Print the version and exit.
  -h, --help             Print this help and exit.

Logs are JSON lines on stderr. Once every probe is attached kspan logs
{"msg":"ready",...}; on exit it logs {"msg":"stopped",...} with its counters.
)";
}

Status ApplyConfigFile(const std::string& path, Config* c) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return InvalidArgument("--config: cannot read '" + path + "'");
  } catch (const YAML::Exception& e) {
    return InvalidArgument("--config: '" + path + "' is not valid YAML: " + e.what());
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument("--config: '" + path + "' must be a mapping of settings");
  static const std::set<std::string> kKeys = {"outputs",           "duration",        "pids",
                                              "capture_bytes",     "ring_buffer_bytes", "drain_interval_ms",
                                              "trace_window_ms",   "trace_max_held_mib", "log_level"};
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      const std::string where = "--config " + path + ": " + key;
      if (!kKeys.count(key)) {
        return InvalidArgument("--config " + path + ": unknown key '" + key +
                               "'; expected one of outputs, duration, pids, capture_bytes, ring_buffer_bytes, "
                               "drain_interval_ms, trace_window_ms, trace_max_held_mib, log_level");
      }
      if (key == "outputs") {
        if (!v.IsSequence()) return InvalidArgument(where + " must be a list of outputs");
        c->outputs.clear();
        for (const auto& o : v) {
          const std::string spec = o.as<std::string>();
          RETURN_IF_ERROR(CheckOutput(spec));
          c->outputs.push_back(spec);
        }
      } else if (key == "pids") {
        if (!v.IsSequence()) return InvalidArgument(where + " must be a list of process ids");
        c->pids.clear();
        for (const auto& p : v) {
          uint32_t pid;
          RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, p.as<std::string>(), 1, 4194304, &pid));
          c->pids.push_back(pid);
        }
      } else if (key == "duration") {
        RETURN_IF_ERROR(ParseDuration(v.as<std::string>(), &c->duration_seconds));
      } else if (key == "capture_bytes") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, v.as<std::string>(), 0, KSPAN_MAX_CAPTURE, &c->capture_bytes));
      } else if (key == "ring_buffer_bytes") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, v.as<std::string>(), 4096, 1u << 30, &c->ring_buffer_bytes));
        RETURN_IF_ERROR(CheckRingBuffer(c->ring_buffer_bytes));
      } else if (key == "drain_interval_ms") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, v.as<std::string>(), 1, 1000, &c->drain_interval_ms));
      } else if (key == "trace_window_ms") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, v.as<std::string>(), 0, 60000, &c->trace_window_ms));
      } else if (key == "trace_max_held_mib") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, v.as<std::string>(), 1, 4096, &c->trace_max_held_mib));
      } else if (key == "log_level") {
        c->log_level = v.as<std::string>();
        RETURN_IF_ERROR(CheckLogLevel(c->log_level));
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument("--config " + path + ": " + e.what());
  }
  return Status::Ok();
}

Result<Config> ParseCommandLine(int argc, char** argv) {
  Config c;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  // Accept both "--flag value" and "--flag=value".
  std::vector<std::pair<std::string, std::string>> flags;
  static const std::set<std::string> kValueFlags = {"--output", "--duration", "--pid", "--capture-bytes",
                                                    "--config", "--ring-buffer-bytes", "--drain-interval-ms",
                                                    "--trace-window-ms", "--trace-max-held-mib", "--log-level"};
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a(args[i]);
    if (a == "-h" || a == "--help") {
      c.show_help = true;
      continue;
    }
    if (a == "--version") {
      c.show_version = true;
      continue;
    }
    std::string value;
    const size_t eq = a.find('=');
    if (a.starts_with("--") && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      if (!kValueFlags.count(a)) return InvalidArgument("unknown option '" + a + "' (see --help)");
    } else {
      if (!kValueFlags.count(a)) return InvalidArgument("unknown option '" + a + "' (see --help)");
      if (i + 1 >= args.size()) return InvalidArgument("option " + a + " needs a value (see --help)");
      value = std::string(args[++i]);
    }
    flags.emplace_back(a, value);
  }
  if (c.show_help || c.show_version) return c;

  for (const auto& [flag, value] : flags) {
    if (flag == "--config") RETURN_IF_ERROR(ApplyConfigFile(value, &c));
  }
  bool outputs_from_flags = false;
  bool pids_from_flags = false;
  for (const auto& [flag, value] : flags) {
    if (flag == "--output") {
      RETURN_IF_ERROR(CheckOutput(value));
      if (!outputs_from_flags) c.outputs.clear();
      outputs_from_flags = true;
      c.outputs.push_back(value);
    } else if (flag == "--pid") {
      uint32_t pid;
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--pid", value, 1, 4194304, &pid));
      if (!pids_from_flags) c.pids.clear();
      pids_from_flags = true;
      c.pids.push_back(pid);
    } else if (flag == "--duration") {
      RETURN_IF_ERROR(ParseDuration(value, &c.duration_seconds));
    } else if (flag == "--capture-bytes") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--capture-bytes", value, 0, KSPAN_MAX_CAPTURE, &c.capture_bytes));
    } else if (flag == "--ring-buffer-bytes") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--ring-buffer-bytes", value, 4096, 1u << 30, &c.ring_buffer_bytes));
      RETURN_IF_ERROR(CheckRingBuffer(c.ring_buffer_bytes));
    } else if (flag == "--drain-interval-ms") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--drain-interval-ms", value, 1, 1000, &c.drain_interval_ms));
    } else if (flag == "--trace-window-ms") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--trace-window-ms", value, 0, 60000, &c.trace_window_ms));
    } else if (flag == "--trace-max-held-mib") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--trace-max-held-mib", value, 1, 4096, &c.trace_max_held_mib));
    } else if (flag == "--log-level") {
      c.log_level = value;
      RETURN_IF_ERROR(CheckLogLevel(c.log_level));
    }
  }
  if (c.outputs.empty()) c.outputs = {"console", std::string("file:") + kDefaultFile};
  return c;
}

}  // namespace kspan::agent
