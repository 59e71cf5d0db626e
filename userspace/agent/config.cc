#include "agent/config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "agent/config_values.h"
#include "agent/settings.h"

extern char** environ;

namespace kspan::agent {
namespace {

// ---------------------------------------------------------------------------------------
// The flags.

// A flag and its value, in command-line order.
struct FlagValue {
  const SettingRow* row;
  std::string value;
};

// Accepts "--flag value" and "--flag=value"; a switch or an action takes no value.
Status ReadArgs(const std::vector<std::string_view>& args, Config* c, std::vector<FlagValue>* out) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name(args[i]);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const SettingRow* row = FindFlag(name);
    if (row == nullptr) return InvalidArgument("unknown option '" + name + "' (see --help)");
    if (row->shape == Shape::kAction || row->shape == Shape::kSwitch) {
      if (has_value) return InvalidArgument("option " + name + " takes no value (see --help)");
      if (row->shape == Shape::kAction) {
        (row->flag == "--version" ? c->show_version : c->show_help) = true;
        continue;
      }
      value = "true";
    } else if (!has_value) {
      if (i + 1 >= args.size()) return InvalidArgument("option " + name + " needs a value (see --help)");
      value = std::string(args[++i]);
    }
    out->push_back({row, std::move(value)});
  }
  return Status::Ok();
}

// Every row's flags, shaped as the row says, into the flags' layer.
Status ApplyFlags(const std::vector<FlagValue>& flags, Layer* l, std::vector<std::string>* warnings) {
  for (const SettingRow& row : SettingTable()) {
    Input in{.where = std::string(row.flag), .warnings = warnings};
    bool given = false;
    for (const FlagValue& f : flags) {
      if (f.row != &row) continue;
      given = true;
      switch (row.shape) {
        case Shape::kValue:  // each value is checked; the last one stays
          in.items = {f.value};
          RETURN_IF_ERROR(row.parse(in, l));
          break;
        case Shape::kSwitch:
        case Shape::kList: in.items.push_back(f.value); break;
        case Shape::kPairs:
          RETURN_IF_ERROR(ParseKeyValueList(in.where, f.value, row.secret, &in.pairs));
          break;
        case Shape::kRule: {
          const size_t eq = f.value.find('=');
          in.pairs.emplace_back(f.value.substr(0, eq), eq == std::string::npos ? "" : f.value.substr(eq + 1));
          break;
        }
        case Shape::kAction: break;
      }
    }
    if (!given || row.shape == Shape::kValue || row.shape == Shape::kAction) continue;
    if (row.shape == Shape::kSwitch) in.items.resize(1);
    RETURN_IF_ERROR(row.parse(in, l));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// The environment.

Status ApplyEnvironment(const Environment& env, Layer* l, std::vector<std::string>* warnings) {
  std::vector<std::string> known;
  for (const SettingRow& row : SettingTable()) {
    const std::vector<std::string> names = row.EnvNames();
    known.push_back(row.EnvName());
    // The first variable that is set, and no other.
    auto name =
        std::find_if(names.begin(), names.end(), [&](const auto& n) { return env.Get(n).has_value(); });
    if (name == names.end()) continue;
    const std::string text = *env.Get(*name);
    Input in{.where = *name, .warnings = warnings};
    switch (row.shape) {
      case Shape::kValue:
      case Shape::kSwitch: in.items = {text}; break;
      case Shape::kList:
        for (std::string_view item : SplitComma(text)) {
          if (!Trim(item).empty()) in.items.emplace_back(Trim(item));
        }
        break;
      case Shape::kPairs:
      case Shape::kRule: RETURN_IF_ERROR(ParseKeyValueList(in.where, text, row.secret, &in.pairs)); break;
      case Shape::kAction: continue;
    }
    RETURN_IF_ERROR(row.parse(in, l));
  }
  // A KSPAN_ variable no row has is most likely a typo: say so rather than ignore it.
  for (const std::string& name : env.NamesStartingWith("KSPAN_")) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      warnings->push_back(name + " is not a kspan setting and is ignored (see --help)");
    }
  }
  // Standard variables kspan does not implement: say so rather than ignore them silently.
  for (const char* name : {"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE"}) {
    if (env.Get(name)) {
      warnings->push_back(std::string(name) +
                          " is ignored: the endpoint's scheme (http or https) decides TLS");
    }
  }
  for (const char* name :
       {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"}) {
    if (env.Get(name)) {
      warnings->push_back(std::string(name) +
                          " is ignored: client certificates (mutual TLS) are not supported");
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// The YAML file: a mapping of the rows' keys, dotted keys nested in sections
// (otlp.endpoint is `otlp: {endpoint: ...}`).

class YamlReader {
 public:
  explicit YamlReader(std::string path) : path_(std::move(path)) {}

  std::string Where(const std::string& key) const { return "--config " + path_ + ": " + key; }

  Status UnknownKey(const std::string& key, const std::string& expected) const {
    return InvalidArgument("--config " + path_ + ": unknown key '" + key + "'; expected one of " + expected);
  }

  Status Scalar(const YAML::Node& v, const std::string& key, std::string* out) const {
    if (!v.IsScalar()) return InvalidArgument(Where(key) + " must be a single value");
    *out = v.Scalar();
    return Status::Ok();
  }

  // A mapping's keys, each once: YAML leaves duplicates to the application, and taking
  // the last would silently drop what the first said.
  Status UniqueKeys(const YAML::Node& map, const std::string& prefix) const {
    std::map<std::string, int> lines;
    for (const auto& kv : map) {
      const std::string name = kv.first.Scalar();
      const int line = kv.first.Mark().line + 1;
      auto [it, inserted] = lines.emplace(name, line);
      if (!inserted) {
        return InvalidArgument(Where(prefix + name) + " is given twice, on line " +
                               std::to_string(it->second) + " and on line " + std::to_string(line) +
                               "; keep one");
      }
    }
    return Status::Ok();
  }

  // One row's value, shaped as the row says.
  Status Value(const SettingRow& row, const YAML::Node& v, Layer* l,
               std::vector<std::string>* warnings) const {
    const std::string key(row.key);
    Input in{.where = Where(key), .warnings = warnings};
    switch (row.shape) {
      case Shape::kValue:
      case Shape::kSwitch:
        in.items.emplace_back();
        RETURN_IF_ERROR(Scalar(v, key, &in.items[0]));
        break;
      case Shape::kList:
        if (!v.IsSequence()) return InvalidArgument(in.where + " must be a list of " + std::string(row.noun));
        for (const auto& item : v) {
          RETURN_IF_ERROR(Scalar(item, key + "[]", &in.items.emplace_back()));
        }
        break;
      case Shape::kPairs:
      case Shape::kRule:
        if (v.IsNull()) break;
        if (!v.IsMap()) return InvalidArgument(in.where + " must be a mapping of " + std::string(row.noun));
        RETURN_IF_ERROR(UniqueKeys(v, key + "."));
        for (const auto& kv : v) {
          const std::string name = kv.first.Scalar();
          if (name.empty()) return InvalidArgument(in.where + " has an empty name");
          std::string value;
          RETURN_IF_ERROR(Scalar(kv.second, key + "." + name, &value));
          in.pairs.emplace_back(name, std::move(value));
        }
        break;
      case Shape::kAction: return Status::Ok();
    }
    return row.parse(in, l);
  }

 private:
  std::string path_;
};

bool IsSection(const std::string& key) {
  return !YamlKeys(key).empty() && FindKey(key) == nullptr;
}

Status ApplyConfigFile(const std::string& path, Layer* l, std::vector<std::string>* warnings) {
  // A directory opens, and then its read throws from deep in yaml-cpp: check first.
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return InvalidArgument("--config: cannot read '" + path + "': " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    return InvalidArgument("--config: '" + path + "' is a directory; expected a YAML file");
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return InvalidArgument("--config: cannot read '" + path + "'");
  } catch (const YAML::Exception& e) {
    return InvalidArgument("--config: '" + path + "' is not valid YAML: " + e.what());
  } catch (const std::exception& e) {
    return InvalidArgument("--config: cannot read '" + path + "': " + e.what());
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument("--config: '" + path + "' must be a mapping of settings");
  const YamlReader r(path);
  try {
    RETURN_IF_ERROR(r.UniqueKeys(root, ""));
    for (const auto& top : root) {
      const std::string key = top.first.Scalar();
      if (const SettingRow* row = FindKey(key)) {
        RETURN_IF_ERROR(r.Value(*row, top.second, l, warnings));
        continue;
      }
      if (!IsSection(key)) return r.UnknownKey(key, YamlKeys(""));
      // A section: a mapping of its rows (or nothing: `otlp:` alone is an empty mapping).
      const YAML::Node& section = top.second;
      const std::string allowed = YamlKeys(key);
      if (section.IsNull()) continue;
      if (!section.IsMap()) {
        return InvalidArgument(r.Where(key) + " must be a mapping of settings (" + allowed + ")");
      }
      RETURN_IF_ERROR(r.UniqueKeys(section, key + "."));
      for (const auto& kv : section) {
        const std::string sub = key + "." + kv.first.Scalar();
        const SettingRow* row = FindKey(sub);
        if (row == nullptr) return r.UnknownKey(sub, allowed);
        RETURN_IF_ERROR(r.Value(*row, kv.second, l, warnings));
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument("--config " + path + ": " + e.what());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Resolution: flags > environment > file > default, per setting.

Status Resolve(const Layer& flags, const Layer& env, const Layer& file, Config* c) {
  const Layer* const layers[] = {&flags, &env, &file};
  auto pick = [&](auto member) -> decltype(&(flags.*member)) {
    for (const Layer* l : layers) {
      if (l->*member) return &(l->*member);
    }
    return nullptr;
  };

  // Queue: every network exporter gets a queue of these sizes.
  exporters::QueueSettings queue;
  std::string max_spans_source = "the default queue size";
  std::string max_batch_source = "the default batch size";
  if (auto* v = pick(&Layer::queue_max_spans)) {
    queue.max_queue_spans = (*v)->value;
    max_spans_source = (*v)->source;
  }
  if (auto* v = pick(&Layer::queue_max_batch)) {
    queue.max_batch_spans = (*v)->value;
    max_batch_source = (*v)->source;
  }
  if (auto* v = pick(&Layer::queue_schedule_delay)) queue.schedule_delay = (*v)->value;
  if (queue.max_batch_spans > queue.max_queue_spans) {
    // Both from one file: name the file once.
    const size_t colon = max_batch_source.find(": ");
    if (max_batch_source.starts_with("--config ") && colon != std::string::npos &&
        max_spans_source.starts_with(max_batch_source.substr(0, colon + 2))) {
      max_spans_source.erase(0, colon + 2);
    }
    return InvalidArgument(max_batch_source + " (" + std::to_string(queue.max_batch_spans) +
                           ") must not exceed " + max_spans_source + " (" +
                           std::to_string(queue.max_queue_spans) + ")");
  }

  // OTLP.
  exporters::OtlpSettings otlp;
  otlp.queue = queue;
  if (auto* v = pick(&Layer::otlp_protocol)) otlp.protocol = (*v)->value;
  const bool grpc = otlp.protocol == exporters::OtlpProtocol::kGrpc;
  // The first source that names an endpoint in either form decides; within one source the
  // traces endpoint (used as is) beats the base endpoint.
  std::string endpoint_source;
  otlp.endpoint = grpc ? "http://localhost:4317" : "http://localhost:4318/v1/traces";
  for (const Layer* l : layers) {
    if (l->otlp_traces_endpoint) {
      otlp.endpoint = l->otlp_traces_endpoint->value;
      endpoint_source = l->otlp_traces_endpoint->source;
      break;
    }
    if (l->otlp_endpoint) {
      otlp.endpoint = grpc ? l->otlp_endpoint->value : AppendTracesPath(l->otlp_endpoint->value);
      endpoint_source = l->otlp_endpoint->source;
      break;
    }
  }
  if (grpc && !endpoint_source.empty()) {
    UrlParts parts;
    RETURN_IF_ERROR(ParseEndpoint(endpoint_source, otlp.endpoint, &parts));
    if ((!parts.path.empty() && parts.path != "/") || parts.has_query) {
      return InvalidArgument(endpoint_source + ": '" + otlp.endpoint +
                             "' has a path, which OTLP/gRPC has no use for; expected http[s]://HOST:PORT "
                             "(or choose an http/* protocol)");
    }
  }
  if (auto* v = pick(&Layer::otlp_headers)) otlp.headers = (*v)->value;
  if (auto* v = pick(&Layer::otlp_timeout)) otlp.timeout = (*v)->value;
  if (auto* v = pick(&Layer::otlp_compression)) otlp.compression = (*v)->value;
  const Opt<std::string>* certificate = pick(&Layer::otlp_certificate);
  if (certificate) otlp.certificate_file = (*certificate)->value;

  // Zipkin.
  exporters::ZipkinSettings zipkin;
  zipkin.queue = queue;
  if (auto* v = pick(&Layer::zipkin_endpoint)) zipkin.endpoint = (*v)->value;
  if (auto* v = pick(&Layer::zipkin_timeout)) zipkin.timeout = (*v)->value;

  // Outputs.
  std::vector<std::string> specs = {"console", std::string("file:") + kDefaultFile};
  if (auto* v = pick(&Layer::outputs)) specs = (*v)->value;
  bool has_otlp = false, has_zipkin = false;
  bool console_tree = false;
  if (auto* v = pick(&Layer::console_tree)) console_tree = (*v)->value;
  c->outputs.clear();
  for (const std::string& spec : specs) {
    if (spec == "none") continue;
    if (spec == "console") {
      c->outputs.push_back({"console", exporters::ConsoleSettings{.tree = console_tree}});
    } else if (spec.starts_with("file:")) {
      c->outputs.push_back({spec, exporters::FileSettings{spec.substr(5)}});
    } else if (spec == "otlp") {
      has_otlp = true;
      if (certificate) {
        RETURN_IF_ERROR(CheckReadableFile((*certificate)->source, otlp.certificate_file));
        if (!Lower(otlp.endpoint).starts_with("https://")) {
          c->warnings.push_back((*certificate)->source + " is set but the OTLP endpoint " +
                                LoggableEndpoint(otlp.endpoint) + " is not https, so it is not used");
        }
      }
      c->outputs.push_back(
          {"otlp(" + std::string(ProtocolName(otlp.protocol)) + " " + LoggableEndpoint(otlp.endpoint) + ")",
           otlp});
    } else if (spec == "zipkin") {
      has_zipkin = true;
      c->outputs.push_back({"zipkin(" + LoggableEndpoint(zipkin.endpoint) + ")", zipkin});
    }
  }
  if (!has_otlp && std::any_of(std::begin(layers), std::end(layers),
                               [](const Layer* l) { return l->HasOtlpSettings(); })) {
    c->warnings.push_back(
        "OTLP settings are configured but otlp is not an output, so nothing is sent over OTLP; add --output "
        "otlp "
        "(or otlp in OTEL_TRACES_EXPORTER or the file's outputs)");
  }
  if (!has_zipkin && std::any_of(std::begin(layers), std::end(layers),
                                 [](const Layer* l) { return l->HasZipkinSettings(); })) {
    c->warnings.push_back(
        "Zipkin settings are configured but zipkin is not an output, so nothing is sent to Zipkin; add "
        "--output "
        "zipkin (or zipkin in OTEL_TRACES_EXPORTER or the file's outputs)");
  }
  if (std::any_of(std::begin(layers), std::end(layers),
                  [](const Layer* l) { return l->queue_export_timeout.has_value(); })) {
    c->warnings.push_back(
        "OTEL_BSP_EXPORT_TIMEOUT / queue.export_timeout_ms is checked but not used yet; each export attempt "
        "is "
        "bounded by the exporter's own timeout");
  }

  // Resource attributes: key by key, the file's, then the environment's, then the flags'.
  c->resource_attributes.clear();
  MergeByKey(file.resource_attributes, &c->resource_attributes);
  MergeByKey(env.resource_attributes, &c->resource_attributes);
  MergeByKey(flags.resource_attributes, &c->resource_attributes);
  if (c->resource_attributes.size() > kMaxResourceAttributes) {
    return InvalidArgument("resource attributes: " + std::to_string(c->resource_attributes.size()) +
                           " from the flags, the environment and the file together; at most " +
                           std::to_string(kMaxResourceAttributes) + " are accepted");
  }

  // Agent rules: the first that matches wins, so the flags' come first.
  c->agent_rules.clear();
  for (const Layer* l : layers) {
    c->agent_rules.insert(c->agent_rules.end(), l->agent_rules.begin(), l->agent_rules.end());
  }

  // The rest: one value each, from the strongest source that has it.
  auto take = [&](auto member, auto* out) {
    if (auto* v = pick(member)) *out = (*v)->value;
  };
  take(&Layer::duration_seconds, &c->duration_seconds);
  take(&Layer::pids, &c->pids);
  take(&Layer::capture_bytes, &c->capture_bytes);
  take(&Layer::db_raw_query_text, &c->db_raw_query_text);
  take(&Layer::tls_patterns, &c->tls_patterns);
  take(&Layer::ring_buffer_bytes, &c->ring_buffer_bytes);
  take(&Layer::drain_interval_ms, &c->drain_interval_ms);
  take(&Layer::trace_window_ms, &c->trace_window_ms);
  take(&Layer::trace_max_held_mib, &c->trace_max_held_mib);
  take(&Layer::log_level, &c->log_level);
  take(&Layer::listen, &c->listen);
  take(&Layer::ui, &c->ui);
  take(&Layer::store_path, &c->store_path);
  take(&Layer::store_max_mib, &c->store_max_mib);
  take(&Layer::store_max_age_hours, &c->store_max_age_hours);
  take(&Layer::store_max_spans_per_second, &c->store_max_spans_per_second);
  take(&Layer::genai_capture_bytes, &c->genai_capture_bytes);
  take(&Layer::genai_max_body_bytes, &c->genai_max_body_bytes);
  take(&Layer::genai_capture_content, &c->genai_capture_content);
  take(&Layer::genai_prices, &c->genai_prices);
  take(&Layer::agent_loop_tool_calls, &c->agent_loop_tool_calls);
  take(&Layer::agent_loop_ping_pong, &c->agent_loop_ping_pong);
  take(&Layer::agent_token_budget, &c->agent_token_budget);

  // Sampling: the sampler and its argument may come from different sources.
  {
    std::string name = "parentbased_always_on", where = "the default sampler";
    if (auto* v = pick(&Layer::sampler)) {
      name = (*v)->value;
      where = (*v)->source;
    }
    std::optional<std::string> arg;
    if (auto* v = pick(&Layer::sampler_arg)) arg = (*v)->value;
    ASSIGN_OR_RETURN(c->sampling.head, processors::ParseHeadSampler(where, name, arg));
    c->sampling.tail.clear();
    if (auto* v = pick(&Layer::tail_policies)) {
      for (const std::string& spec : (*v)->value) {
        ASSIGN_OR_RETURN(processors::TailPolicy p, processors::ParseTailPolicy((*v)->source, spec));
        c->sampling.tail.push_back(std::move(p));
      }
    }
    take(&Layer::rate_limit, &c->sampling.rate.per_second);
    take(&Layer::rate_limit_burst, &c->sampling.rate.burst);
    take(&Layer::rate_limit_per_service, &c->sampling.rate.per_service_per_second);
    c->sampling.rate.per_service_burst = c->sampling.rate.burst;
  }
  c->selection = {};
  for (auto [member, out] : {std::pair{&Layer::include, &c->selection.include},
                             std::pair{&Layer::exclude, &c->selection.exclude}}) {
    if (auto* v = pick(member)) {
      for (const std::string& spec : (*v)->value) {
        ASSIGN_OR_RETURN(process::SelectRule r, process::ParseSelectRule((*v)->source, spec));
        out->push_back(std::move(r));
      }
    }
  }
  c->filters.clear();
  if (auto* v = pick(&Layer::drop)) {
    for (const std::string& spec : (*v)->value) {
      ASSIGN_OR_RETURN(processors::FilterRule r, processors::ParseFilterRule((*v)->source, spec));
      c->filters.push_back(std::move(r));
    }
  }
  bool trace_telemetry = false;
  take(&Layer::trace_telemetry, &trace_telemetry);
  if (!trace_telemetry) c->filters.push_back(processors::TelemetryRule());
  c->attribute_rules = {};
  if (auto* v = pick(&Layer::span_attributes)) {
    for (const std::string& spec : (*v)->value) {
      ASSIGN_OR_RETURN(auto kv, processors::ParseSpanAttribute((*v)->source, spec));
      c->attribute_rules.add.push_back(std::move(kv));
    }
  }
  take(&Layer::redact, &c->attribute_rules.redact);
  take(&Layer::redact_secrets, &c->attribute_rules.redact_secrets);

  // Metrics: OTLP with the trace exporter's settings, to the metrics endpoint.
  take(&Layer::span_metrics, &c->span_metrics);
  take(&Layer::carrier, &c->carrier);
  take(&Layer::carrier_netns, &c->carrier_netns);
  c->metrics_otlp.reset();
  std::string metrics_exporter = "none";
  take(&Layer::metrics_exporter, &metrics_exporter);
  if (metrics_exporter == "otlp") {
    exporters::OtlpMetricsSettings m;
    m.otlp = otlp;
    // The traces' protocol: over gRPC the endpoint is the same (no path), over HTTP it
    // gains /v1/metrics (the OTLP exporter specification's per-signal URLs).
    m.otlp.protocol = grpc ? exporters::OtlpProtocol::kGrpc : exporters::OtlpProtocol::kHttpProtobuf;
    m.otlp.endpoint = grpc ? "http://localhost:4317" : "http://localhost:4318/v1/metrics";
    for (const Layer* l : layers) {
      if (l->otlp_metrics_endpoint) {
        m.otlp.endpoint = l->otlp_metrics_endpoint->value;
        break;
      }
      if (l->otlp_endpoint) {
        m.otlp.endpoint = grpc ? l->otlp_endpoint->value : AppendMetricsPath(l->otlp_endpoint->value);
        break;
      }
    }
    if (certificate) RETURN_IF_ERROR(CheckReadableFile((*certificate)->source, m.otlp.certificate_file));
    take(&Layer::metrics_interval, &m.interval);
    std::string temporality = "cumulative";
    take(&Layer::metrics_temporality, &temporality);
    m.delta = temporality != "cumulative";
    m.resource_attributes = c->resource_attributes;
    c->metrics_otlp = std::move(m);
  }
  return Status::Ok();
}

}  // namespace

Environment::Environment(std::map<std::string, std::string> vars) {
  for (auto& [k, v] : vars) vars_.emplace(k, std::move(v));
}

Environment Environment::FromProcess() {
  std::map<std::string, std::string> vars;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view var(*e);
    const size_t eq = var.find('=');
    if (eq == std::string_view::npos || !(var.starts_with("OTEL_") || var.starts_with("KSPAN_"))) continue;
    vars.emplace(std::string(var.substr(0, eq)), std::string(var.substr(eq + 1)));
  }
  return Environment(std::move(vars));
}

std::optional<std::string> Environment::Get(std::string_view name) const {
  auto it = vars_.find(name);
  if (it == vars_.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Environment::NamesStartingWith(std::string_view prefix) const {
  std::vector<std::string> names;
  for (auto it = vars_.lower_bound(prefix); it != vars_.end() && it->first.starts_with(prefix); ++it) {
    if (!it->second.empty()) names.push_back(it->first);
  }
  return names;
}

Result<Config> ParseCommandLine(int argc, char** argv) {
  return ParseCommandLine(argc, argv, Environment::FromProcess());
}

Result<Config> ParseCommandLine(int argc, char** argv, const Environment& env) {
  Config c;
  std::vector<FlagValue> flags;
  RETURN_IF_ERROR(ReadArgs(std::vector<std::string_view>(argv + 1, argv + argc), &c, &flags));
  if (c.show_help || c.show_version) return c;

  Layer flag_layer, env_layer, file_layer;
  RETURN_IF_ERROR(ApplyFlags(flags, &flag_layer, &c.warnings));
  RETURN_IF_ERROR(ApplyEnvironment(env, &env_layer, &c.warnings));
  // The files --config names, else KSPAN_CONFIG's.
  const Opt<std::vector<std::string>>& files = flag_layer.config ? flag_layer.config : env_layer.config;
  if (files) {
    for (const std::string& path : files->value)
      RETURN_IF_ERROR(ApplyConfigFile(path, &file_layer, &c.warnings));
  }
  RETURN_IF_ERROR(Resolve(flag_layer, env_layer, file_layer, &c));
  return c;
}

}  // namespace kspan::agent
