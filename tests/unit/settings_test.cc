// The setting table (agent/settings.h) against itself and against the documentation:
//   - every row parses from its flag, from each of its environment variables and from its
//     YAML key to the same Config, and that Config differs from the default;
//   - KSPAN_* variables sit between the flags and the file, before the OTEL_* ones;
//   - docs/configuration.md names every flag, variable and YAML key of the table and no
//     flag or KSPAN_* variable that is not in it; README.md's command-line block is the
//     generated --help.
#include "agent/settings.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "agent/config.h"

namespace kspan::agent {
namespace {

using Env = std::map<std::string, std::string>;

Result<Config> Parse(std::vector<std::string> args, const Env& env = {}) {
  args.insert(args.begin(), "kspan");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data(), Environment(env));
}

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char path[] = "/tmp/kspan-settings-XXXXXX";
    ::close(mkstemp(path));
    path_ = path;
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Every field of a Config, as text, so two can be compared and a difference read.
std::string Describe(const Config& c) {
  std::ostringstream o;
  for (const Output& out : c.outputs) {
    o << "output " << out.name << "\n";
    if (const auto* con = std::get_if<exporters::ConsoleSettings>(&out.settings))
      o << "  tree " << con->tree << "\n";
    if (const auto* otlp = std::get_if<exporters::OtlpSettings>(&out.settings)) {
      o << "  otlp " << otlp->endpoint << " " << ProtocolName(otlp->protocol) << " " << otlp->timeout.count()
        << "ms gzip=" << (otlp->compression == exporters::Compression::kGzip)
        << " ca=" << otlp->certificate_file << "\n";
      for (const auto& [k, v] : otlp->headers) o << "  header " << k << "=" << v << "\n";
      o << "  queue " << otlp->queue.max_queue_spans << " " << otlp->queue.max_batch_spans << " "
        << otlp->queue.schedule_delay.count() << "ms\n";
    }
    if (const auto* z = std::get_if<exporters::ZipkinSettings>(&out.settings)) {
      o << "  zipkin " << z->endpoint << " " << z->timeout.count() << "ms queue " << z->queue.max_queue_spans
        << " " << z->queue.max_batch_spans << " " << z->queue.schedule_delay.count() << "ms\n";
    }
  }
  for (const auto& [k, v] : c.resource_attributes) o << "resource " << k << "=" << v << "\n";
  for (const auto& w : c.warnings) o << "warning " << w << "\n";
  o << "duration " << c.duration_seconds << "\npids";
  for (uint32_t p : c.pids) o << " " << p;
  for (const auto& r : c.selection.include) o << " include " << r.text;
  for (const auto& r : c.selection.exclude) o << " exclude " << r.text;
  o << "\ncapture " << c.capture_bytes << " tls_patterns " << c.tls_patterns << " genai "
    << c.genai_capture_bytes << " " << c.genai_max_body_bytes << " content=" << c.genai_capture_content
    << " db_raw=" << c.db_raw_query_text << " prices=" << c.genai_prices << "\n";
  for (const auto& [n, m] : c.agent_rules) o << "agent " << n << "=" << m << "\n";
  o << "agent loops " << c.agent_loop_tool_calls << " ping-pong " << c.agent_loop_ping_pong << " tokens/min "
    << c.agent_token_budget << "\n";
  o << "ring " << c.ring_buffer_bytes << " drain " << c.drain_interval_ms << " window " << c.trace_window_ms
    << " held " << c.trace_max_held_mib << " log " << c.log_level << " listen " << c.listen << "\n";
  o << "ui " << c.ui << " store " << c.store_path << " " << c.store_max_mib << "MiB " << c.store_max_age_hours
    << "h " << c.store_max_spans_per_second << "/s\n";
  o << "sampler " << processors::HeadSampler(c.sampling.head).Describe() << " ratio "
    << c.sampling.head.ratio;
  for (const auto& p : c.sampling.tail) o << " tail " << p.name;
  o << " rate " << c.sampling.rate.per_second << " burst " << c.sampling.rate.burst << " per_service "
    << c.sampling.rate.per_service_per_second << "\n";
  for (const auto& f : c.filters) o << "filter " << f.name << "\n";
  for (const auto& [k, v] : c.attribute_rules.add) o << "span attribute " << k << "=" << v << "\n";
  for (const auto& p : c.attribute_rules.redact) o << "redact " << p << "\n";
  o << "redact secrets " << c.attribute_rules.redact_secrets << "\n";
  o << "span_metrics " << c.span_metrics << "\n";
  o << "carrier " << c.carrier << " netns " << c.carrier_netns << "\n";
  if (c.metrics_otlp) {
    o << "metrics otlp " << c.metrics_otlp->otlp.endpoint << " every " << c.metrics_otlp->interval.count()
      << "ms delta=" << c.metrics_otlp->delta << "\n";
  }
  return o.str();
}

// One value of a row, written for each source. `context` flags make the value visible (an
// OTLP setting shows only with the otlp output).
struct Sample {
  std::vector<std::string> flag_values;  // one per flag occurrence; none for a switch
  std::string env;
  std::string yaml;  // the YAML value as it follows "key: "
  std::vector<std::string> context;
};

const std::string& CaFile() {
  static const TempFile* ca = new TempFile("-----BEGIN CERTIFICATE-----\n");
  return ca->path();
}

// A sample for every row: a row without one fails SettingTable.EveryRowHasASample.
std::map<std::string, Sample> Samples() {
  const std::vector<std::string> otlp = {"--output", "otlp"};
  const std::vector<std::string> https_otlp = {"--output", "otlp", "--otlp-endpoint", "https://c:4318"};
  const std::vector<std::string> zipkin = {"--output", "zipkin"};
  const std::vector<std::string> otlp_metrics = {"--metrics-exporter", "otlp"};
  return {
      {"outputs",
       {{"console", "file:/tmp/kspan-s.jsonl"},
        "console, file:/tmp/kspan-s.jsonl",
        "[console, 'file:/tmp/kspan-s.jsonl']",
        {}}},
      {"otlp.endpoint", {{"http://c:4318/base"}, "http://c:4318/base", "'http://c:4318/base'", otlp}},
      {"otlp.traces_endpoint", {{"http://c:4318/t"}, "http://c:4318/t", "'http://c:4318/t'", otlp}},
      {"otlp.protocol", {{"http/json"}, "http/json", "http/json", otlp}},
      {"otlp.headers", {{"a=1,b=x%20y"}, "a=1,b=x%20y", "{a: '1', b: 'x y'}", otlp}},
      {"otlp.timeout_ms", {{"1234"}, "1234", "1234", otlp}},
      {"otlp.compression", {{"gzip"}, "gzip", "gzip", otlp}},
      {"otlp.certificate", {{CaFile()}, CaFile(), CaFile(), https_otlp}},
      {"zipkin.endpoint", {{"http://z:9411/x"}, "http://z:9411/x", "'http://z:9411/x'", zipkin}},
      {"zipkin.timeout_ms", {{"777"}, "777", "777", zipkin}},
      {"queue.max_spans", {{}, "4096", "4096", otlp}},
      {"queue.max_batch", {{}, "100", "100", zipkin}},
      {"queue.schedule_delay_ms", {{}, "250", "250", otlp}},
      {"queue.export_timeout_ms", {{}, "3000", "3000", otlp}},
      {"resource_attributes", {{"k=v%2C1", "j=2"}, "k=v%2C1,j=2", "{k: 'v,1', j: '2'}", {}}},
      {"duration", {{"2.5"}, "2.5", "2.5", {}}},
      {"pids", {{"12", "13"}, "12, 13", "[12, 13]", {}}},
      {"select.include",
       {{"exe=nginx", "port=8000-8099&cmdline=*app*"},
        "exe=nginx, port=8000-8099&cmdline=*app*",
        "['exe=nginx', 'port=8000-8099&cmdline=*app*']",
        {}}},
      {"select.exclude", {{"container=3f4b"}, "container=3f4b", "['container=3f4b']", {}}},
      {"capture_bytes", {{"1024"}, "1024", "1024", {}}},
      {"db.raw_query_text", {{}, "true", "true", {}}},
      {"tls_patterns", {{"/tmp/p.txt"}, "/tmp/p.txt", "/tmp/p.txt", {}}},
      {"ring_buffer_bytes", {{"65536"}, "65536", "65536", {}}},
      {"drain_interval_ms", {{"20"}, "20", "20", {}}},
      {"trace_window_ms", {{"250"}, "250", "250", {}}},
      {"trace_max_held_mib", {{"8"}, "8", "8", {}}},
      {"log_level", {{"debug"}, "debug", "debug", {}}},
      {"carrier.mode", {{"HTTP-Header,TCP-Option"}, "http-header,tcp-option", "http-header,tcp-option", {}}},
      {"carrier.netns", {{"self"}, "self", "self", {}}},
      {"listen", {{"127.0.0.1:0"}, "127.0.0.1:0", "'127.0.0.1:0'", {}}},
      {"console_tree", {{}, "true", "true", {}}},
      {"ui.enabled", {{"false"}, "false", "false", {}}},
      {"ui.store_path", {{"/tmp/t.db"}, "/tmp/t.db", "/tmp/t.db", {}}},
      {"ui.store_max_mib", {{"64"}, "64", "64", {}}},
      {"ui.store_max_age_hours", {{"2"}, "2", "2", {}}},
      {"ui.store_max_spans_per_second", {{"0"}, "0", "0", {}}},
      {"genai.capture_bytes", {{"8192"}, "8192", "8192", {}}},
      {"genai.max_body_bytes", {{"65536"}, "65536", "65536", {}}},
      {"genai.capture_content", {{}, "true", "true", {}}},
      {"genai.prices", {{"/tmp/p.yaml"}, "/tmp/p.yaml", "/tmp/p.yaml", {}}},
      {"agent_loops.repeated_tool_calls", {{"3"}, "3", "3", {}}},
      {"agent_loops.ping_pong", {{"4"}, "4", "4", {}}},
      {"agent_loops.tokens_per_minute", {{"5000"}, "5000", "5000", {}}},
      {"sampling.sampler", {{"traceidratio"}, "traceidratio", "traceidratio", {}}},
      {"sampling.sampler_arg", {{"0.5"}, "0.5", "0.5", {}}},
      {"sampling.tail_policies",
       {{"error", "latency>50ms:service=a"},
        "error, latency>50ms:service=a",
        "[error, 'latency>50ms:service=a']",
        {}}},
      {"sampling.rate_limit", {{"10"}, "10", "10", {}}},
      {"sampling.rate_limit_burst", {{"20"}, "20", "20", {}}},
      {"sampling.rate_limit_per_service", {{"2.5"}, "2.5", "2.5", {}}},
      {"filters.drop",
       {{"route=/healthz", "port=9100"}, "route=/healthz, port=9100", "['route=/healthz', 'port=9100']", {}}},
      {"filters.trace_telemetry", {{}, "true", "true", {}}},
      {"enrich.span_attributes",
       {{"env=prod", "team=a=b"}, "env=prod, team=a=b", "['env=prod', 'team=a=b']", {}}},
      {"enrich.redact",
       {{"[0-9]{16}", "secret-[a-z]+"}, "[0-9]{16}, secret-[a-z]+", "['[0-9]{16}', 'secret-[a-z]+']", {}}},
      {"enrich.redact_secrets", {{"false"}, "false", "false", {}}},
      {"metrics.span_metrics", {{"false"}, "false", "false", {}}},
      {"metrics.exporter", {{"otlp"}, "otlp", "otlp", {}}},
      {"metrics.otlp_endpoint", {{"http://m:4318/m"}, "http://m:4318/m", "'http://m:4318/m'", otlp_metrics}},
      {"metrics.interval_ms", {{"1500"}, "1500", "1500", otlp_metrics}},
      {"metrics.temporality", {{"Delta"}, "delta", "delta", otlp_metrics}},
      {"agents",
       {{"planner=plan.py", "coder=aider"},
        "planner=plan.py,coder=aider",
        "{planner: plan.py, coder: aider}",
        {}}},
  };
}

// `key: value`, nested for a dotted key.
std::string Yaml(std::string_view key, const std::string& value) {
  const size_t dot = key.find('.');
  if (dot == std::string_view::npos) return std::string(key) + ": " + value + "\n";
  return std::string(key.substr(0, dot)) + ":\n  " + std::string(key.substr(dot + 1)) + ": " + value + "\n";
}

// Rows that take a value from every source (not --config, --help, --version).
std::vector<const SettingRow*> ValueRows() {
  std::vector<const SettingRow*> rows;
  for (const SettingRow& r : SettingTable()) {
    if (!r.key.empty()) rows.push_back(&r);
  }
  return rows;
}

TEST(SettingTable, EveryRowHasASample) {
  const auto samples = Samples();
  for (const SettingRow* r : ValueRows()) {
    EXPECT_TRUE(samples.count(std::string(r->key))) << "add a sample for " << r->key << " to Samples()";
  }
}

TEST(SettingTable, NamesAreUniqueAndEnvironmentNamesFollowTheKey) {
  std::set<std::string> flags, envs, keys;
  for (const SettingRow& r : SettingTable()) {
    if (!r.flag.empty()) {
      EXPECT_TRUE(flags.insert(std::string(r.flag)).second) << r.flag;
    }
    if (!r.key.empty()) {
      EXPECT_TRUE(keys.insert(std::string(r.key)).second) << r.key;
    }
    for (const std::string& e : r.EnvNames()) EXPECT_TRUE(envs.insert(e).second) << e;
    EXPECT_NE(r.parse, nullptr) << r.flag << r.key;
    EXPECT_FALSE(r.help.empty()) << r.flag << r.key;
    if (r.shape == Shape::kList || r.shape == Shape::kPairs || r.shape == Shape::kRule) {
      EXPECT_TRUE(!r.noun.empty() || r.key.empty()) << r.key << " needs a noun for its YAML errors";
    }
  }
  EXPECT_EQ(FindKey("otlp.timeout_ms")->EnvName(), "KSPAN_OTLP_TIMEOUT_MS");
  EXPECT_EQ(FindFlag("--config")->EnvName(), "KSPAN_CONFIG");
  EXPECT_EQ(FindFlag("--pid")->EnvName(), "KSPAN_PIDS");
  EXPECT_EQ(FindFlag("-h"), FindFlag("--help"));
  EXPECT_EQ(FindFlag("--help")->EnvName(), "");
}

class EveryRow : public ::testing::TestWithParam<const SettingRow*> {};

// The same value from the flag, from each variable and from the file gives the same Config,
// and not the default one.
TEST_P(EveryRow, ParsesTheSameFromFlagEnvironmentAndFile) {
  const SettingRow& row = *GetParam();
  const auto samples = Samples();
  auto it = samples.find(std::string(row.key));
  ASSERT_NE(it, samples.end());
  const Sample& s = it->second;

  auto base = Parse(s.context);
  ASSERT_TRUE(base.ok()) << base.status().message();

  TempFile file(Yaml(row.key, s.yaml));
  std::vector<std::string> file_args = s.context;
  file_args.insert(file_args.end(), {"--config", file.path()});
  auto from_file = Parse(file_args);
  ASSERT_TRUE(from_file.ok()) << from_file.status().message();
  const std::string expected = Describe(*from_file);
  EXPECT_NE(expected, Describe(*base)) << row.key << " has no effect";

  if (!row.flag.empty()) {
    std::vector<std::string> args = s.context;
    if (row.shape == Shape::kSwitch) args.push_back(std::string(row.flag));
    for (const std::string& v : s.flag_values) args.insert(args.end(), {std::string(row.flag), v});
    auto from_flag = Parse(args);
    ASSERT_TRUE(from_flag.ok()) << from_flag.status().message();
    EXPECT_EQ(Describe(*from_flag), expected) << row.flag;
  }
  for (const std::string& name : row.EnvNames()) {
    auto from_env = Parse(s.context, {{name, s.env}});
    ASSERT_TRUE(from_env.ok()) << name << ": " << from_env.status().message();
    EXPECT_EQ(Describe(*from_env), expected) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, EveryRow, ::testing::ValuesIn(ValueRows()),
                         [](const ::testing::TestParamInfo<const SettingRow*>& info) {
                           std::string name(info.param->key);
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

// A bad value names the KSPAN_ variable it came from, as for any other source.
TEST_P(EveryRow, ABadValueInItsKspanVariableIsAnError) {
  const SettingRow& row = *GetParam();
  // The CA file is checked when otlp is an output (the sample's context says so).
  std::string bad = row.shape == Shape::kPairs || row.shape == Shape::kRule ? "=x" : "\001bad";
  if (row.key == "otlp.certificate") bad = "/nonexistent/ca.pem";
  auto c = Parse(Samples().at(std::string(row.key)).context, {{row.EnvName(), bad}});
  ASSERT_FALSE(c.ok()) << row.EnvName();
  EXPECT_NE(c.status().message().find(row.EnvName()), std::string::npos) << c.status().message();
}

TEST(KspanEnvironment, BetweenTheFlagsAndTheFileAndBeforeOtel) {
  TempFile file("capture_bytes: 100\notlp: {protocol: grpc}\n");
  const Env env = {{"KSPAN_CAPTURE_BYTES", "200"},
                   {"KSPAN_OTLP_PROTOCOL", "http/json"},
                   {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"}};
  auto e = Parse({"--config", file.path(), "--output", "otlp"}, env);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->capture_bytes, 200u);  // the environment beats the file
  EXPECT_EQ(std::get<exporters::OtlpSettings>(e->outputs[0].settings).protocol,
            exporters::OtlpProtocol::kHttpJson);  // KSPAN_ beats OTEL_
  auto f = Parse({"--config", file.path(), "--capture-bytes", "300"}, env);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->capture_bytes, 300u);  // a flag beats both
}

TEST(KspanEnvironment, ListsAndRulesAddUpInOrder) {
  TempFile file("pids: [1]\nagents: {fromfile: f}\nresource_attributes: {a: file, b: file}\n");
  auto c =
      Parse({"--config", file.path(), "--agent", "fromflag=x"},
            {{"KSPAN_PIDS", "2,3"}, {"KSPAN_AGENTS", "fromenv=e"}, {"KSPAN_RESOURCE_ATTRIBUTES", "b=env"}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->pids, (std::vector<uint32_t>{2, 3}));  // replaced, not added
  EXPECT_EQ(c->agent_rules,
            (KeyValues{{"fromflag", "x"}, {"fromenv", "e"}, {"fromfile", "f"}}));  // first match wins
  EXPECT_EQ(c->resource_attributes, (KeyValues{{"a", "file"}, {"b", "env"}}));     // key by key
  // service.name is refused from KSPAN_RESOURCE_ATTRIBUTES, as from a flag; only the
  // standard variable, which an orchestrator may fill with the agent's own name, drops it.
  auto s = Parse({}, {{"KSPAN_RESOURCE_ATTRIBUTES", "service.name=x"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("KSPAN_RESOURCE_ATTRIBUTES: service.name cannot be set"),
            std::string::npos)
      << s.status().message();
}

TEST(KspanEnvironment, ConfigFromTheEnvironmentUnlessAFlagNamesOne) {
  TempFile a("capture_bytes: 111\n"), b("capture_bytes: 222\nlog_level: debug\n");
  auto e = Parse({}, {{"KSPAN_CONFIG", a.path() + "," + b.path()}});
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->capture_bytes, 222u);  // the later file wins
  EXPECT_EQ(e->log_level, "debug");
  auto f = Parse({"--config", a.path()}, {{"KSPAN_CONFIG", b.path()}});
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->capture_bytes, 111u);
  EXPECT_EQ(f->log_level, "info");
}

TEST(KspanEnvironment, UnknownKspanVariableIsAWarning) {
  auto c = Parse({}, {{"KSPAN_CAPTURE_BYTE", "10"}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_EQ(c->warnings[0], "KSPAN_CAPTURE_BYTE is not a kspan setting and is ignored (see --help)");
}

TEST(KspanFlags, SwitchTakesNoValue) {
  auto c = Parse({"--genai-capture-content=true"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "option --genai-capture-content takes no value (see --help)");
}

// --- The help and the documentation.

TEST(Help, ListsEveryRowAlignedAndWrapped) {
  const std::string h = HelpText();
  for (const SettingRow& r : SettingTable()) {
    if (!r.flag.empty()) {
      EXPECT_NE(h.find(" " + std::string(r.flag) + (r.metavar.empty() ? "" : " ")), std::string::npos)
          << r.flag;
    }
    if (!r.key.empty()) {
      EXPECT_NE(h.find("YAML: " + std::string(r.key)), std::string::npos) << r.key;
    }
    EXPECT_NE(h.find(std::string(r.group) + ":\n"), std::string::npos) << r.group;
  }
  std::istringstream lines(h);
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_LE(line.size(), 80u) << line;
    EXPECT_TRUE(line.empty() || line.back() != ' ') << "trailing space: '" << line << "'";
  }
}

// docs/configuration.md names every flag (`--flag`), variable (`NAME`) and YAML key
// (`key`) of the table, each in backticks, and no flag or KSPAN_* variable that does not
// exist.
TEST(Docs, ConfigurationReferenceMatchesTheTable) {
  const std::string doc = ReadFile(std::string(KSPAN_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_FALSE(doc.empty());
  std::set<std::string> env_names;
  for (const SettingRow& r : SettingTable()) {
    if (!r.flag.empty()) {
      EXPECT_NE(doc.find("`" + std::string(r.flag)), std::string::npos)
          << r.flag << " is missing from docs/configuration.md";
    }
    if (!r.key.empty()) {
      EXPECT_NE(doc.find("`" + std::string(r.key) + "`"), std::string::npos)
          << "YAML key " << r.key << " is missing from docs/configuration.md";
    }
    for (const std::string& e : r.EnvNames()) {
      env_names.insert(e);
      EXPECT_NE(doc.find("`" + e + "`"), std::string::npos) << e << " is missing from docs/configuration.md";
    }
  }
  const std::regex flag_re("--[a-z][a-z0-9-]*[a-z0-9]");
  for (auto m = std::sregex_iterator(doc.begin(), doc.end(), flag_re); m != std::sregex_iterator(); ++m) {
    const size_t end = m->position() + m->length();
    if (end < doc.size() && (doc[end] == '*' || doc[end] == '-')) continue;  // "--otlp-*"
    EXPECT_NE(FindFlag(m->str()), nullptr) << "docs/configuration.md mentions " << m->str() << ", not a flag";
  }
  const std::regex env_re("KSPAN_[A-Z0-9_]*[A-Z0-9]");
  for (auto m = std::sregex_iterator(doc.begin(), doc.end(), env_re); m != std::sregex_iterator(); ++m) {
    EXPECT_TRUE(env_names.count(m->str()))
        << "docs/configuration.md mentions " << m->str() << ", not a setting";
  }
}

// README.md's "Command line" block is `kspan --help`, word for word.
TEST(Docs, ReadmeCommandLineIsTheHelp) {
  const std::string readme = ReadFile(std::string(KSPAN_SOURCE_DIR) + "/README.md");
  const std::string start = "## Command line\n\n```\n";
  const size_t a = readme.find(start);
  ASSERT_NE(a, std::string::npos) << "README.md has no '## Command line' block";
  const size_t b = readme.find("```\n", a + start.size());
  ASSERT_NE(b, std::string::npos);
  EXPECT_EQ(readme.substr(a + start.size(), b - a - start.size()), HelpText())
      << "README.md's Command line block differs from the help: paste `kspan --help` there";
}

// OTLP metrics: the base endpoint gets /v1/metrics; an explicit URL is used as is; with
// gRPC traces the metrics go over gRPC to the same endpoint; off by default.
TEST(MetricsSettings, EndpointsAndDefaults) {
  auto none = Parse({});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->metrics_otlp.has_value());
  EXPECT_TRUE(none->span_metrics);

  auto base = Parse({"--metrics-exporter", "otlp", "--otlp-endpoint", "http://c:4318/x"});
  ASSERT_TRUE(base.ok()) << base.status().message();
  ASSERT_TRUE(base->metrics_otlp.has_value());
  EXPECT_EQ(base->metrics_otlp->otlp.endpoint, "http://c:4318/x/v1/metrics");
  EXPECT_EQ(base->metrics_otlp->interval.count(), 60000);

  auto env = Parse({}, {{"OTEL_METRICS_EXPORTER", "otlp"},
                        {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:1/y"},
                        {"OTEL_METRIC_EXPORT_INTERVAL", "250"}});
  ASSERT_TRUE(env.ok()) << env.status().message();
  ASSERT_TRUE(env->metrics_otlp.has_value());
  EXPECT_EQ(env->metrics_otlp->otlp.endpoint, "http://m:1/y");
  EXPECT_EQ(env->metrics_otlp->interval.count(), 250);

  // Over gRPC the metrics follow the traces' protocol to the same endpoint, without a path.
  auto grpc =
      Parse({"--metrics-exporter", "otlp", "--otlp-protocol", "grpc", "--otlp-endpoint", "http://c:4317"});
  ASSERT_TRUE(grpc.ok()) << grpc.status().message();
  ASSERT_TRUE(grpc->metrics_otlp.has_value());
  EXPECT_EQ(grpc->metrics_otlp->otlp.protocol, exporters::OtlpProtocol::kGrpc);
  EXPECT_EQ(grpc->metrics_otlp->otlp.endpoint, "http://c:4317");
  auto grpc_default = Parse({"--metrics-exporter", "otlp", "--otlp-protocol", "grpc"});
  ASSERT_TRUE(grpc_default.ok()) << grpc_default.status().message();
  EXPECT_EQ(grpc_default->metrics_otlp->otlp.endpoint, "http://localhost:4317");
  auto grpc_own = Parse({"--metrics-exporter", "otlp", "--otlp-protocol", "grpc", "--otlp-endpoint",
                         "http://c:4317", "--otlp-metrics-endpoint", "https://m:4317"});
  ASSERT_TRUE(grpc_own.ok()) << grpc_own.status().message();
  EXPECT_EQ(grpc_own->metrics_otlp->otlp.endpoint, "https://m:4317");

  auto bad = Parse({"--metrics-exporter", "jaeger"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("expected otlp, prometheus"), std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace kspan::agent
