#include "agent/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "agent/config_values.h"

namespace kspan::agent {
namespace {

using exporters::Compression;
using exporters::ConsoleSettings;
using exporters::FileSettings;
using exporters::OtlpProtocol;
using exporters::OtlpSettings;
using exporters::ZipkinSettings;
using KeyValues = std::vector<std::pair<std::string, std::string>>;
using Env = std::map<std::string, std::string>;

Result<Config> Parse(std::vector<std::string> args, const Env& env = {}) {
  args.insert(args.begin(), "kspan");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data(), Environment(env));
}

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/kspan-config-XXXXXX";
  int fd = mkstemp(path);
  ::close(fd);
  std::ofstream(path) << text;
  return path;
}

// A YAML file removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& text) : path_(WriteTemp(text)) {}
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> Names(const Config& c) {
  std::vector<std::string> out;
  for (const auto& o : c.outputs) out.push_back(o.name);
  return out;
}

// The settings of the only output of type T.
template <typename T>
const T& Only(const Config& c) {
  const T* found = nullptr;
  for (const auto& o : c.outputs) {
    if (const T* t = std::get_if<T>(&o.settings)) {
      EXPECT_EQ(found, nullptr) << "two outputs of one type";
      found = t;
    }
  }
  if (found == nullptr) {
    ADD_FAILURE() << "no such output";
    static const T kEmpty{};
    return kEmpty;
  }
  return *found;
}

bool Mentions(const std::vector<std::string>& lines, const std::string& what) {
  for (const auto& l : lines) {
    if (l.find(what) != std::string::npos) return true;
  }
  return false;
}

TEST(Config, DefaultsToConsoleAndLocalFile) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(Names(*c), (std::vector<std::string>{"console", "file:kspan-spans.jsonl"}));
  ASSERT_EQ(c->outputs.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<ConsoleSettings>(c->outputs[0].settings));
  EXPECT_EQ(std::get<FileSettings>(c->outputs[1].settings).path, "kspan-spans.jsonl");
  EXPECT_EQ(c->capture_bytes, 4096u);
  EXPECT_EQ(c->duration_seconds, 0);
  EXPECT_TRUE(c->pids.empty());
  EXPECT_TRUE(c->resource_attributes.empty());
  EXPECT_TRUE(c->warnings.empty());
}

TEST(Config, FlagsRepeatAndBothForms) {
  auto c = Parse({"--output", "console", "--output=file:/tmp/x.jsonl", "--pid", "12", "--pid=13",
                  "--duration", "2.5", "--capture-bytes", "0"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(Names(*c), (std::vector<std::string>{"console", "file:/tmp/x.jsonl"}));
  EXPECT_EQ(c->pids, (std::vector<uint32_t>{12, 13}));
  EXPECT_DOUBLE_EQ(c->duration_seconds, 2.5);
  EXPECT_EQ(c->capture_bytes, 0u);
}

TEST(Config, OtlpDefaultsFollowTheSpec) {
  auto c = Parse({"--output", "otlp"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const OtlpSettings& o = Only<OtlpSettings>(*c);
  EXPECT_EQ(o.protocol, OtlpProtocol::kHttpProtobuf);
  EXPECT_EQ(o.endpoint, "http://localhost:4318/v1/traces");
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(10000));
  EXPECT_EQ(o.compression, Compression::kNone);
  EXPECT_TRUE(o.headers.empty());
  EXPECT_TRUE(o.certificate_file.empty());
  EXPECT_EQ(o.queue.max_queue_spans, 2048u);
  EXPECT_EQ(o.queue.max_batch_spans, 512u);
  EXPECT_EQ(o.queue.schedule_delay, std::chrono::milliseconds(5000));
  EXPECT_EQ(Names(*c), (std::vector<std::string>{"otlp(http/protobuf http://localhost:4318/v1/traces)"}));

  auto g = Parse({"--output", "otlp", "--otlp-protocol", "grpc"});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(Only<OtlpSettings>(*g).endpoint, "http://localhost:4317");
}

TEST(Config, ZipkinDefaults) {
  auto c = Parse({"--output", "zipkin"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const ZipkinSettings& z = Only<ZipkinSettings>(*c);
  EXPECT_EQ(z.endpoint, "http://localhost:9411/api/v2/spans");
  EXPECT_EQ(z.timeout, std::chrono::milliseconds(10000));
  EXPECT_EQ(Names(*c), (std::vector<std::string>{"zipkin(http://localhost:9411/api/v2/spans)"}));
}

TEST(Config, EveryOtlpFlag) {
  const std::string ca = WriteTemp("-----BEGIN CERTIFICATE-----\n");
  auto c = Parse({"--output",
                  "otlp",
                  "--output",
                  "zipkin",
                  "--otlp-endpoint",
                  "https://collector.example:4318/otlp",
                  "--otlp-protocol",
                  "HTTP/JSON",
                  "--otlp-headers",
                  "Authorization=Bearer%20abc",
                  "--otlp-headers",
                  "x-tenant=blue",
                  "--otlp-timeout-ms",
                  "2500",
                  "--otlp-compression",
                  "gzip",
                  "--otlp-certificate",
                  ca,
                  "--zipkin-endpoint",
                  "http://[::1]:9411/api/v2/spans",
                  "--zipkin-timeout-ms=750"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const OtlpSettings& o = Only<OtlpSettings>(*c);
  EXPECT_EQ(o.protocol, OtlpProtocol::kHttpJson);
  EXPECT_EQ(o.endpoint, "https://collector.example:4318/otlp/v1/traces");
  EXPECT_EQ(o.headers, (KeyValues{{"authorization", "Bearer abc"}, {"x-tenant", "blue"}}));
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(o.compression, Compression::kGzip);
  EXPECT_EQ(o.certificate_file, ca);
  const ZipkinSettings& z = Only<ZipkinSettings>(*c);
  EXPECT_EQ(z.endpoint, "http://[::1]:9411/api/v2/spans");
  EXPECT_EQ(z.timeout, std::chrono::milliseconds(750));
  EXPECT_TRUE(c->warnings.empty());
  std::remove(ca.c_str());
}

TEST(Config, NoneExportsNothing) {
  auto c = Parse({"--output", "none"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->outputs.empty());
  auto e = Parse({}, {{"OTEL_TRACES_EXPORTER", "none"}});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(e->outputs.empty());
}

// --- Endpoints: OTEL_EXPORTER_OTLP_ENDPOINT is a base URL, _TRACES_ENDPOINT is used as is.

struct EndpointCase {
  Env env;
  std::string expected;
};

class ConfigEndpoint : public ::testing::TestWithParam<EndpointCase> {};

TEST_P(ConfigEndpoint, Resolves) {
  Env env = GetParam().env;
  env["OTEL_TRACES_EXPORTER"] = "otlp";
  auto c = Parse({}, env);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(Only<OtlpSettings>(*c).endpoint, GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigEndpoint,
    ::testing::Values(
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}}, "http://c:4318/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"}}, "http://c:4318/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c/otlp"}}, "https://c/otlp/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c/otlp/"}}, "https://c/otlp/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c/otlp?tenant=a"}},
                     "http://c/otlp/v1/traces?tenant=a"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom"}},
                     "http://c:4318/custom"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318"}}, "http://c:4318"},
        // Signal-specific beats generic.
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
                      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:9999/t"}},
                     "http://b:9999/t"},
        // gRPC: the base URL as it is.
        EndpointCase{
            {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
            "https://c:4317"},
        EndpointCase{
            {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317/"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
            "http://c:4317/"},
        // Empty is unset.
        EndpointCase{
            {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""}, {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://e"}},
            "http://e/v1/traces"}));

TEST(Config, EndpointFromAFlagBeatsEitherFormFromTheEnvironment) {
  const Env env = {{"OTEL_TRACES_EXPORTER", "otlp"},
                   {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:1/t"}};
  auto c = Parse({"--otlp-endpoint", "http://flag:4318"}, env);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(Only<OtlpSettings>(*c).endpoint, "http://flag:4318/v1/traces");
  // Within one source the traces endpoint wins, whatever the order.
  auto d = Parse({"--otlp-traces-endpoint", "http://a/exact", "--otlp-endpoint", "http://b"}, env);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(Only<OtlpSettings>(*d).endpoint, "http://a/exact");
}

// --- The environment.

TEST(ConfigEnv, TracesExporterListMapsToOutputs) {
  auto c = Parse({}, {{"OTEL_TRACES_EXPORTER", " OTLP , console,zipkin "}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->outputs.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<OtlpSettings>(c->outputs[0].settings));
  EXPECT_TRUE(std::holds_alternative<ConsoleSettings>(c->outputs[1].settings));
  EXPECT_TRUE(std::holds_alternative<ZipkinSettings>(c->outputs[2].settings));
  // kspan's file output may be named there too.
  auto f = Parse({}, {{"OTEL_TRACES_EXPORTER", "otlp,file:/tmp/s.jsonl"}});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(std::get<FileSettings>(f->outputs[1].settings).path, "/tmp/s.jsonl");
  // Empty is unset: the default.
  auto d = Parse({}, {{"OTEL_TRACES_EXPORTER", ""}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Names(*d), (std::vector<std::string>{"console", "file:kspan-spans.jsonl"}));
}

TEST(ConfigEnv, EveryOtlpVariable) {
  const std::string ca = WriteTemp("pem");
  auto c = Parse({}, {{"OTEL_TRACES_EXPORTER", "otlp"},
                      {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                      {"OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"},
                      {"OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20dXNlcjpwYXNz , X-Scope = a+b,"},
                      {"OTEL_EXPORTER_OTLP_TIMEOUT", "3000"},
                      {"OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP"},
                      {"OTEL_EXPORTER_OTLP_CERTIFICATE", ca}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const OtlpSettings& o = Only<OtlpSettings>(*c);
  EXPECT_EQ(o.protocol, OtlpProtocol::kGrpc);
  EXPECT_EQ(o.endpoint, "https://collector:4317");
  EXPECT_EQ(o.headers, (KeyValues{{"authorization", "Basic dXNlcjpwYXNz"}, {"x-scope", "a+b"}}));
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(3000));
  EXPECT_EQ(o.compression, Compression::kGzip);
  EXPECT_EQ(o.certificate_file, ca);
  std::remove(ca.c_str());
}

TEST(ConfigEnv, SignalSpecificBeatsGeneric) {
  const std::string ca1 = WriteTemp("a"), ca2 = WriteTemp("b");
  auto c = Parse({}, {{"OTEL_TRACES_EXPORTER", "otlp"},
                      {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                      {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"},
                      {"OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2"},
                      {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "c=3"},
                      {"OTEL_EXPORTER_OTLP_TIMEOUT", "1000"},
                      {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000"},
                      {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                      {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"},
                      {"OTEL_EXPORTER_OTLP_CERTIFICATE", ca1},
                      {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", ca2}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const OtlpSettings& o = Only<OtlpSettings>(*c);
  EXPECT_EQ(o.protocol, OtlpProtocol::kHttpJson);
  EXPECT_EQ(o.headers, (KeyValues{{"c", "3"}}));  // replaced, not merged
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(o.compression, Compression::kNone);
  EXPECT_EQ(o.certificate_file, ca2);
  std::remove(ca1.c_str());
  std::remove(ca2.c_str());
}

TEST(ConfigEnv, ZipkinAndQueue) {
  auto c = Parse({}, {{"OTEL_TRACES_EXPORTER", "zipkin,otlp"},
                      {"OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://zipkin:9411/api/v2/spans"},
                      {"OTEL_EXPORTER_ZIPKIN_TIMEOUT", "1234"},
                      {"OTEL_BSP_MAX_QUEUE_SIZE", "10000"},
                      {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000"},
                      {"OTEL_BSP_SCHEDULE_DELAY", "250"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const ZipkinSettings& z = Only<ZipkinSettings>(*c);
  EXPECT_EQ(z.endpoint, "http://zipkin:9411/api/v2/spans");
  EXPECT_EQ(z.timeout, std::chrono::milliseconds(1234));
  for (const exporters::QueueSettings* q : {&z.queue, &Only<OtlpSettings>(*c).queue}) {
    EXPECT_EQ(q->max_queue_spans, 10000u);
    EXPECT_EQ(q->max_batch_spans, 1000u);
    EXPECT_EQ(q->schedule_delay, std::chrono::milliseconds(250));
  }
}

TEST(ConfigEnv, ResourceAttributesDecodedAndServiceNameDropped) {
  auto c = Parse({}, {{"OTEL_RESOURCE_ATTRIBUTES", "k8s.node.name=node-1, service.name=kspan,team=pay%20ops"},
                      {"OTEL_SERVICE_NAME", "kspan-agent"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->resource_attributes, (KeyValues{{"k8s.node.name", "node-1"}, {"team", "pay ops"}}));
  EXPECT_TRUE(Mentions(c->warnings, "service.name is ignored")) << ::testing::PrintToString(c->warnings);
}

TEST(ConfigEnv, WarnsAboutWhatItIgnores) {
  auto c = Parse({}, {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"},
                      {"OTEL_EXPORTER_OTLP_INSECURE", "true"},
                      {"OTEL_BSP_EXPORT_TIMEOUT", "30000"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(Names(*c), (std::vector<std::string>{"console", "file:kspan-spans.jsonl"}));
  EXPECT_TRUE(Mentions(c->warnings, "otlp is not an output"));
  EXPECT_TRUE(Mentions(c->warnings, "OTEL_EXPORTER_OTLP_INSECURE is ignored"));
  EXPECT_TRUE(Mentions(c->warnings, "OTEL_BSP_EXPORT_TIMEOUT"));
  const std::string ca = WriteTemp("pem");
  auto h = Parse({"--output", "otlp", "--otlp-certificate", ca});
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE(Mentions(h->warnings,
                       "--otlp-certificate is set but the OTLP endpoint http://localhost:4318/v1/traces "
                       "is not https"));
  std::remove(ca.c_str());
  auto z = Parse({"--zipkin-endpoint", "http://z:9411/api/v2/spans"});
  ASSERT_TRUE(z.ok());
  EXPECT_TRUE(Mentions(z->warnings, "zipkin is not an output"));
}

// --- Precedence: flag > environment > file > default, per setting.

TEST(ConfigPrecedence, EachSettingFromTheStrongestSourceThatHasIt) {
  TempFile file(
      "outputs: [otlp, zipkin]\n"
      "otlp: {protocol: grpc, endpoint: 'http://file:4317', timeout_ms: 100, compression: gzip,"
      " headers: {x-from: file}}\n"
      "zipkin: {endpoint: 'http://file:9411/api/v2/spans', timeout_ms: 100}\n"
      "queue: {max_spans: 100, max_batch: 10, schedule_delay_ms: 100}\n");
  const Env env = {{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                   {"OTEL_EXPORTER_OTLP_TIMEOUT", "200"},
                   {"OTEL_EXPORTER_ZIPKIN_TIMEOUT", "200"},
                   {"OTEL_BSP_MAX_QUEUE_SIZE", "200"}};

  // File only.
  auto f = Parse({"--config", file.path()});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(Only<OtlpSettings>(*f).protocol, OtlpProtocol::kGrpc);
  EXPECT_EQ(Only<OtlpSettings>(*f).endpoint, "http://file:4317");
  EXPECT_EQ(Only<OtlpSettings>(*f).timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(Only<OtlpSettings>(*f).compression, Compression::kGzip);
  EXPECT_EQ(Only<OtlpSettings>(*f).headers, (KeyValues{{"x-from", "file"}}));
  EXPECT_EQ(Only<OtlpSettings>(*f).queue.max_queue_spans, 100u);
  EXPECT_EQ(Only<ZipkinSettings>(*f).timeout, std::chrono::milliseconds(100));

  // The environment beats the file where it has the setting; the file keeps the rest.
  auto e = Parse({"--config", file.path()}, env);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const OtlpSettings& eo = Only<OtlpSettings>(*e);
  EXPECT_EQ(eo.protocol, OtlpProtocol::kHttpJson);
  EXPECT_EQ(eo.endpoint, "http://file:4317/v1/traces");  // the file's base URL, now for http
  EXPECT_EQ(eo.timeout, std::chrono::milliseconds(200));
  EXPECT_EQ(eo.compression, Compression::kGzip);
  EXPECT_EQ(eo.queue.max_queue_spans, 200u);
  EXPECT_EQ(eo.queue.max_batch_spans, 10u);
  EXPECT_EQ(Only<ZipkinSettings>(*e).timeout, std::chrono::milliseconds(200));
  EXPECT_EQ(Only<ZipkinSettings>(*e).endpoint, "http://file:9411/api/v2/spans");

  // Flags beat both.
  auto g = Parse({"--config", file.path(), "--otlp-protocol", "http/protobuf", "--otlp-timeout-ms", "300",
                  "--otlp-compression", "none", "--otlp-headers", "x-from=flag", "--zipkin-timeout-ms", "300",
                  "--zipkin-endpoint", "http://flag:9411/z"},
                 env);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const OtlpSettings& go = Only<OtlpSettings>(*g);
  EXPECT_EQ(go.protocol, OtlpProtocol::kHttpProtobuf);
  EXPECT_EQ(go.timeout, std::chrono::milliseconds(300));
  EXPECT_EQ(go.compression, Compression::kNone);
  EXPECT_EQ(go.headers, (KeyValues{{"x-from", "flag"}}));
  EXPECT_EQ(Only<ZipkinSettings>(*g).timeout, std::chrono::milliseconds(300));
  EXPECT_EQ(Only<ZipkinSettings>(*g).endpoint, "http://flag:9411/z");
}

TEST(ConfigPrecedence, Outputs) {
  TempFile file("outputs: [console]\n");
  auto f = Parse({"--config", file.path()});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Names(*f), (std::vector<std::string>{"console"}));
  auto e = Parse({"--config", file.path()}, {{"OTEL_TRACES_EXPORTER", "zipkin"}});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(Names(*e), (std::vector<std::string>{"zipkin(http://localhost:9411/api/v2/spans)"}));
  auto g =
      Parse({"--config", file.path(), "--output", "file:/tmp/o.jsonl"}, {{"OTEL_TRACES_EXPORTER", "zipkin"}});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(Names(*g), (std::vector<std::string>{"file:/tmp/o.jsonl"}));
}

TEST(ConfigPrecedence, ResourceAttributesMergeKeyByKey) {
  TempFile file("resource_attributes: {a: file, b: file, deployment.environment.name: prod}\n");
  auto c =
      Parse({"--config", file.path(), "--resource-attributes", "c=flag", "--resource-attributes=d=flag%2C1"},
            {{"OTEL_RESOURCE_ATTRIBUTES", "b=env,c=env"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->resource_attributes, (KeyValues{{"a", "file"},
                                               {"b", "env"},
                                               {"deployment.environment.name", "prod"},
                                               {"c", "flag"},
                                               {"d", "flag,1"}}));
}

TEST(Config, GenAiSettingsFromFlagEnvAndFile) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_FALSE(d->genai_capture_content);
  EXPECT_EQ(d->genai_capture_bytes, 16384u);
  EXPECT_EQ(d->genai_max_body_bytes, 1u << 20);

  TempFile file("genai:\n  capture_content: true\n  capture_bytes: 8192\n  max_body_bytes: 65536\n");
  auto f = Parse({"--config", file.path()});
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_TRUE(f->genai_capture_content);
  EXPECT_EQ(f->genai_capture_bytes, 8192u);
  EXPECT_EQ(f->genai_max_body_bytes, 65536u);
  // The environment beats the file; a flag beats both.
  auto e =
      Parse({"--config", file.path()}, {{"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false"}});
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_FALSE(e->genai_capture_content);
  auto g = Parse({"--genai-capture-content", "--genai-capture-bytes=0"},
                 {{"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false"}});
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_TRUE(g->genai_capture_content);
  EXPECT_EQ(g->genai_capture_bytes, 0u);

  TempFile bad("genai:\n  capture_prompts: true\n");
  auto b = Parse({"--config", bad.path()});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("capture_prompts"), std::string::npos) << b.status().message();
}

TEST(Config, AgentRulesFlagsBeforeTheFile) {
  TempFile file("agents:\n  planner: planner.py\n  coder: aider\n");
  auto c = Parse({"--config", file.path(), "--agent", "boss=planner", "--agent=x=y=z"});
  ASSERT_TRUE(c.ok()) << c.status().message();
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"boss", "planner"}, {"x", "y=z"}, {"planner", "planner.py"}, {"coder", "aider"}};
  EXPECT_EQ(c->agent_rules, expected);
  auto bad = Parse({"--agent", "nomatch"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("NAME=MATCH"), std::string::npos) << bad.status().message();
}

// --- Bad values: one InvalidArgument naming the value and what is expected.

struct BadCase {
  std::vector<std::string> args;
  Env env;
  std::vector<std::string> must_mention;
};

class ConfigBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigBad, OneClearErrorNamingTheValue) {
  auto c = Parse(GetParam().args, GetParam().env);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message().find('\n'), std::string::npos) << c.status().message();
  for (const std::string& m : GetParam().must_mention) {
    EXPECT_NE(c.status().message().find(m), std::string::npos)
        << "'" << m << "' not in: " << c.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Flags, ConfigBad,
    ::testing::Values(
        BadCase{
            {"--output", "kafka"}, {}, {"--output", "'kafka'", "console, file:PATH, otlp, zipkin or none"}},
        BadCase{{"--output", "file:"}, {}, {"file:PATH"}},
        BadCase{{"--output", "none", "--output", "console"}, {}, {"'none' cannot be combined"}},
        BadCase{{"--output", "otlp", "--output", "OTLP"}, {}, {"'OTLP' is listed twice"}},
        BadCase{{"--capture-bytes", "99999"}, {}, {"99999"}},
        BadCase{{"--capture-bytes", "12abc"}, {}, {"12abc"}}, BadCase{{"--pid", "-4"}, {}, {"-4"}},
        BadCase{{"--genai-capture-bytes", "16385"}, {}, {"--genai-capture-bytes", "16385"}},
        BadCase{{"--genai-max-body-bytes", "lots"}, {}, {"--genai-max-body-bytes", "lots"}},
        BadCase{{},
                {{"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "maybe"}},
                {"'maybe'", "true or false"}},
        BadCase{{"--duration", "soon"}, {}, {"soon"}},
        BadCase{{"--ring-buffer-bytes", "5000"}, {}, {"power of two"}},
        BadCase{{"--log-level", "chatty"}, {}, {"chatty"}},
        BadCase{{"--trace-window-ms", "60001"}, {}, {"60001"}},
        BadCase{{"--trace-max-held-mib", "0"}, {}, {"--trace-max-held-mib"}},
        BadCase{{"--bogus"}, {}, {"--bogus"}}, BadCase{{"--pid"}, {}, {"needs a value"}},
        BadCase{{"--config", "/nonexistent/kspan.yaml"}, {}, {"/nonexistent/kspan.yaml"}},
        BadCase{{"--otlp-protocol", "bogus"},
                {},
                {"--otlp-protocol", "'bogus'", "grpc, http/protobuf or http/json"}},
        BadCase{{"--otlp-protocol", "http"}, {}, {"'http'", "grpc, http/protobuf or http/json"}},
        BadCase{{"--otlp-compression", "zip"}, {}, {"--otlp-compression", "'zip'", "gzip or none"}},
        BadCase{{"--otlp-endpoint", "ftp://c:21"}, {}, {"--otlp-endpoint", "'ftp://c:21'", "http or https"}},
        BadCase{{"--otlp-endpoint", "localhost:4318"}, {}, {"'localhost:4318'", "expected http://HOST"}},
        BadCase{{"--otlp-endpoint", "http://"}, {}, {"a host is required"}},
        BadCase{{"--otlp-endpoint", "http://:4318/x"}, {}, {"a host is required"}},
        BadCase{{"--otlp-endpoint", "http://c:99999"}, {}, {"port '99999'", "1 to 65535"}},
        BadCase{{"--otlp-endpoint", "http://c:"}, {}, {"port ''"}},
        BadCase{{"--otlp-endpoint", "http://user:pw@c"}, {}, {"credentials"}},
        BadCase{{"--otlp-endpoint", "http://c/a b"}, {}, {"space"}},
        BadCase{{"--otlp-endpoint", "http://c/#x"}, {}, {"fragment"}},
        BadCase{{"--otlp-endpoint", "http://[::1/"}, {}, {"closing ']'"}},
        BadCase{{"--otlp-endpoint", "http://c!/"}, {}, {"host 'c!'"}},
        BadCase{{"--otlp-traces-endpoint", "https:///v1/traces"}, {}, {"--otlp-traces-endpoint", "host"}},
        BadCase{{"--zipkin-endpoint", "zipkin:9411"}, {}, {"--zipkin-endpoint", "'zipkin:9411'"}},
        BadCase{{"--output", "otlp", "--otlp-protocol", "grpc", "--otlp-endpoint", "http://c:4317/v1/traces"},
                {},
                {"--otlp-endpoint", "has a path", "OTLP/gRPC"}},
        BadCase{{"--otlp-headers", "no-equals"}, {}, {"--otlp-headers", "item 1 is not key=value"}},
        BadCase{{"--otlp-headers", "a=1,=2"}, {}, {"item 2 has an empty key"}},
        BadCase{{"--otlp-headers", "bad name=1"}, {}, {"'bad name' is not a valid HTTP header name"}},
        BadCase{{"--otlp-headers", "a=%zz"}, {}, {"value of 'a'", "percent-encoding"}},
        BadCase{{"--otlp-headers", "a=%4"}, {}, {"percent-encoding"}},
        BadCase{{"--otlp-headers", "a=x%0D%0AInjected: 1"}, {}, {"header 'a'", "line break"}},
        BadCase{{"--otlp-timeout-ms", "0"}, {}, {"--otlp-timeout-ms", "'0'", "1 to 600000"}},
        BadCase{{"--otlp-timeout-ms", "10s"}, {}, {"'10s'"}},
        BadCase{{"--zipkin-timeout-ms", "600001"}, {}, {"--zipkin-timeout-ms", "600001"}},
        BadCase{{"--output", "otlp", "--otlp-certificate", "/nonexistent/ca.pem"},
                {},
                {"--otlp-certificate", "cannot read '/nonexistent/ca.pem'", "No such file"}},
        BadCase{{"--output", "otlp", "--otlp-certificate", "/tmp"}, {}, {"'/tmp' is not a regular file"}},
        BadCase{{"--resource-attributes", "service.name=x"}, {}, {"--resource-attributes", "service.name"}},
        BadCase{{"--resource-attributes", "team"}, {}, {"'team' is not key=value"}},
        BadCase{{"--resource-attributes", "=x"}, {}, {"empty key"}}));

INSTANTIATE_TEST_SUITE_P(
    Environment, ConfigBad,
    ::testing::Values(
        BadCase{
            {}, {{"OTEL_TRACES_EXPORTER", "jaeger"}}, {"OTEL_TRACES_EXPORTER", "'jaeger'", "otlp, zipkin"}},
        BadCase{{},
                {{"OTEL_TRACES_EXPORTER", "none,otlp"}},
                {"OTEL_TRACES_EXPORTER", "'none' cannot be combined"}},
        BadCase{{}, {{"OTEL_TRACES_EXPORTER", " , "}}, {"OTEL_TRACES_EXPORTER", "no output named"}},
        BadCase{{}, {{"OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"}}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "'thrift'"}},
        BadCase{{}, {{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "x"}}, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"}},
        BadCase{{}, {{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"}}, {"OTEL_EXPORTER_OTLP_ENDPOINT"}},
        BadCase{
            {}, {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http//c"}}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}},
        BadCase{{},
                {{"OTEL_EXPORTER_OTLP_HEADERS", "Authorization Bearer s3cr3t"}},
                {"OTEL_EXPORTER_OTLP_HEADERS", "item 1 is not key=value"}},
        BadCase{{}, {{"OTEL_EXPORTER_OTLP_TIMEOUT", "abc"}}, {"OTEL_EXPORTER_OTLP_TIMEOUT", "'abc'"}},
        BadCase{{}, {{"OTEL_EXPORTER_OTLP_COMPRESSION", "br"}}, {"OTEL_EXPORTER_OTLP_COMPRESSION", "'br'"}},
        BadCase{{},
                {{"OTEL_TRACES_EXPORTER", "otlp"}, {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent.pem"}},
                {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent.pem"}},
        BadCase{{}, {{"OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://"}}, {"OTEL_EXPORTER_ZIPKIN_ENDPOINT"}},
        BadCase{{}, {{"OTEL_EXPORTER_ZIPKIN_TIMEOUT", "-1"}}, {"OTEL_EXPORTER_ZIPKIN_TIMEOUT", "'-1'"}},
        BadCase{{}, {{"OTEL_BSP_MAX_QUEUE_SIZE", "0"}}, {"OTEL_BSP_MAX_QUEUE_SIZE", "'0'"}},
        BadCase{{}, {{"OTEL_BSP_SCHEDULE_DELAY", "5s"}}, {"OTEL_BSP_SCHEDULE_DELAY", "'5s'"}},
        BadCase{{}, {{"OTEL_BSP_EXPORT_TIMEOUT", "x"}}, {"OTEL_BSP_EXPORT_TIMEOUT"}},
        BadCase{{},
                {{"OTEL_BSP_MAX_QUEUE_SIZE", "100"}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200"}},
                {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE (200) must not exceed OTEL_BSP_MAX_QUEUE_SIZE (100)"}},
        BadCase{{},
                {{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096"}},
                {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE (4096) must not exceed the default queue size (2048)"}},
        BadCase{{},
                {{"OTEL_RESOURCE_ATTRIBUTES", "a=1,b"}},
                {"OTEL_RESOURCE_ATTRIBUTES", "'b' is not key=value"}},
        BadCase{
            {}, {{"OTEL_RESOURCE_ATTRIBUTES", "a=%G0"}}, {"OTEL_RESOURCE_ATTRIBUTES", "percent-encoding"}}));

TEST(ConfigBadSecret, HeaderErrorsNeverQuoteAValue) {
  for (const char* text : {"Authorization Bearer s3cr3t", "Authorization=Bearer%zzs3cr3t", "a=s3cr3t%0A"}) {
    auto c = Parse({"--otlp-headers", text});
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().message().find("s3cr3t"), std::string::npos) << c.status().message();
  }
}

// --- The YAML file.

TEST(ConfigFile, EveryExportSetting) {
  const std::string ca = WriteTemp("pem");
  TempFile file(
      "outputs: [console, otlp, zipkin, 'file:/tmp/a.jsonl']\n"
      "otlp:\n"
      "  endpoint: https://collector:4318\n"
      "  protocol: http/json\n"
      "  headers: {Authorization: 'Bearer abc def', x-tenant: blue}\n"
      "  timeout_ms: 5000\n"
      "  compression: gzip\n"
      "  certificate: " +
      ca +
      "\n"
      "zipkin: {endpoint: 'http://zipkin:9411/api/v2/spans', timeout_ms: 2000}\n"
      "resource_attributes: {deployment.environment.name: prod, k8s.cluster.name: east}\n"
      "queue: {max_spans: 4096, max_batch: 256, schedule_delay_ms: 1000, export_timeout_ms: 30000}\n");
  auto c = Parse({"--config", file.path()});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->outputs.size(), 4u);
  const OtlpSettings& o = Only<OtlpSettings>(*c);
  EXPECT_EQ(o.endpoint, "https://collector:4318/v1/traces");
  EXPECT_EQ(o.protocol, OtlpProtocol::kHttpJson);
  EXPECT_EQ(o.headers,
            (KeyValues{{"authorization", "Bearer abc def"}, {"x-tenant", "blue"}}));  // not decoded
  EXPECT_EQ(o.timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(o.compression, Compression::kGzip);
  EXPECT_EQ(o.certificate_file, ca);
  EXPECT_EQ(o.queue.max_queue_spans, 4096u);
  EXPECT_EQ(o.queue.max_batch_spans, 256u);
  EXPECT_EQ(o.queue.schedule_delay, std::chrono::milliseconds(1000));
  EXPECT_EQ(Only<ZipkinSettings>(*c).endpoint, "http://zipkin:9411/api/v2/spans");
  EXPECT_EQ(Only<ZipkinSettings>(*c).timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(c->resource_attributes,
            (KeyValues{{"deployment.environment.name", "prod"}, {"k8s.cluster.name", "east"}}));
  std::remove(ca.c_str());
}

TEST(ConfigFile, TracesEndpointIsUsedAsIs) {
  TempFile file("outputs: [otlp]\notlp: {endpoint: 'http://a:4318', traces_endpoint: 'http://b:4318/x'}\n");
  auto c = Parse({"--config", file.path()});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(Only<OtlpSettings>(*c).endpoint, "http://b:4318/x");
}

TEST(ConfigFile, AppliesAndFlagsOverride) {
  TempFile file(
      "outputs: [console, 'file:/tmp/a.jsonl']\n"
      "capture_bytes: 1024\n"
      "pids: [5]\n"
      "log_level: debug\n"
      "drain_interval_ms: 20\n"
      "trace_window_ms: 250\n"
      "trace_max_held_mib: 8\n");
  auto c = Parse({"--config", file.path(), "--capture-bytes", "2048", "--trace-max-held-mib=16"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(Names(*c), (std::vector<std::string>{"console", "file:/tmp/a.jsonl"}));
  EXPECT_EQ(c->capture_bytes, 2048u);  // flag wins
  EXPECT_EQ(c->pids, (std::vector<uint32_t>{5}));
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->drain_interval_ms, 20u);
  EXPECT_EQ(c->trace_window_ms, 250u);
  EXPECT_EQ(c->trace_max_held_mib, 16u);  // flag wins
}

struct BadFileCase {
  std::string yaml;
  std::vector<std::string> must_mention;
};

class ConfigFileBad : public ::testing::TestWithParam<BadFileCase> {};

TEST_P(ConfigFileBad, OneClearErrorNamingTheKey) {
  TempFile file(GetParam().yaml);
  auto c = Parse({"--config", file.path()});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(file.path()), std::string::npos) << c.status().message();
  for (const std::string& m : GetParam().must_mention) {
    EXPECT_NE(c.status().message().find(m), std::string::npos)
        << "'" << m << "' not in: " << c.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigFileBad,
    ::testing::Values(
        BadFileCase{"capture_byts: 10\n",
                    {"unknown key 'capture_byts'", "expected one of outputs,", "otlp, zipkin"}},
        BadFileCase{"otlp: {protcol: grpc}\n", {"unknown key 'otlp.protcol'", "expected one of endpoint,"}},
        BadFileCase{"zipkin: {url: 'http://z'}\n", {"unknown key 'zipkin.url'", "endpoint, timeout_ms"}},
        BadFileCase{"queue: {size: 5}\n", {"unknown key 'queue.size'", "max_spans, max_batch"}},
        BadFileCase{"capture_bytes: lots\n", {"capture_bytes", "'lots'"}},
        BadFileCase{"outputs: [console\n", {"not valid YAML"}},
        BadFileCase{"outputs: console\n", {"outputs must be a list"}},
        BadFileCase{"outputs: [kafka]\n", {"outputs", "'kafka'"}},
        BadFileCase{"otlp: [a]\n", {"otlp must be a mapping"}},
        BadFileCase{"otlp: {protocol: bogus}\n",
                    {"otlp.protocol", "'bogus'", "grpc, http/protobuf or http/json"}},
        BadFileCase{"otlp: {endpoint: 'grpc://c:4317'}\n", {"otlp.endpoint", "http or https"}},
        BadFileCase{"otlp: {timeout_ms: {a: 1}}\n", {"otlp.timeout_ms must be a single value"}},
        BadFileCase{"otlp: {timeout_ms: 0}\n", {"otlp.timeout_ms", "'0'"}},
        BadFileCase{"otlp: {compression: lz4}\n", {"otlp.compression", "'lz4'"}},
        BadFileCase{"otlp: {headers: [a, b]}\n", {"otlp.headers must be a mapping"}},
        BadFileCase{"otlp: {headers: {'a b': c}}\n",
                    {"otlp.headers", "'a b' is not a valid HTTP header name"}},
        BadFileCase{"outputs: [otlp]\notlp: {certificate: /nonexistent/ca.pem}\n",
                    {"otlp.certificate", "cannot read '/nonexistent/ca.pem'"}},
        BadFileCase{"zipkin: {endpoint: 'http://'}\n", {"zipkin.endpoint", "host"}},
        BadFileCase{"queue: {max_spans: 10, max_batch: 20}\n",
                    {"queue.max_batch (20) must not exceed queue.max_spans (10)"}},
        BadFileCase{"queue: {schedule_delay_ms: never}\n", {"queue.schedule_delay_ms", "'never'"}},
        BadFileCase{"resource_attributes: {service.name: x}\n", {"resource_attributes", "service.name"}},
        BadFileCase{"resource_attributes: [a]\n", {"resource_attributes must be a mapping"}},
        BadFileCase{"resource_attributes: {a: [1, 2]}\n", {"resource_attributes.a must be a single value"}},
        // Duplicate keys, at every level: YAML leaves them to the application, and taking the
        // last one silently dropped the first (issue 16).
        BadFileCase{"capture_bytes: 10\nlog_level: info\ncapture_bytes: 20\n",
                    {"capture_bytes is given twice, on line 1 and on line 3"}},
        BadFileCase{"otlp:\n  protocol: grpc\n  protocol: http/json\n",
                    {"otlp.protocol is given twice, on line 2 and on line 3"}},
        BadFileCase{"otlp: {protocol: grpc}\notlp: {endpoint: 'http://c'}\n", {"otlp is given twice"}},
        BadFileCase{"otlp:\n  headers: {a: '1', a: '2'}\n", {"otlp.headers.a is given twice"}},
        BadFileCase{"resource_attributes:\n  k: a\n  k: b\n",
                    {"resource_attributes.k is given twice, on line 2"}},
        BadFileCase{"agents: {x: a, x: b}\n", {"agents.x is given twice"}}));

// --config naming a directory: a directory opens, and its read threw from inside yaml-cpp,
// which ended kspan with an uncaught exception (exit 134; issue 16).
TEST(ConfigFile, DirectoryIsOneClearError) {
  char dir[] = "/tmp/kspan-config-dir-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  auto c = Parse({"--config", dir});
  rmdir(dir);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(std::string("'") + dir + "' is a directory; expected a YAML file"),
            std::string::npos)
      << c.status().message();
}

// 200,000 resource attributes kept kspan from starting for 50 s: each key was searched for
// in the list merged so far (issue 16). Now a source may name at most 1024, and saying so
// takes no time.
TEST(ConfigFile, TooManyResourceAttributesIsAQuickClearError) {
  std::string yaml = "resource_attributes:\n";
  for (int i = 0; i < 200000; ++i) yaml += "  k" + std::to_string(i) + ": v\n";
  TempFile file(yaml);
  // The thread's CPU time, not the wall clock: the defect was 20 s of work, and a loaded
  // CI machine stretched a 2 s parse past a wall-clock bound (1.2 s of CPU here).
  const auto cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  };
  const auto start = cpu();
  auto c = Parse({"--config", file.path()});
  const auto took = cpu() - start;
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("resource_attributes: 200000 resource attributes; at most 1024"),
            std::string::npos)
      << c.status().message();
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST(ConfigPrecedence, ResourceAttributesAtMost1024AfterMerging) {
  std::string file_attrs = "resource_attributes:\n", env_attrs;
  for (int i = 0; i < 1024; ++i) {
    file_attrs += "  f" + std::to_string(i) + ": v\n";
    env_attrs += (i ? "," : "") + std::string("e") + std::to_string(i) + "=v";
  }
  TempFile file(file_attrs);
  auto one = Parse({"--config", file.path()});
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->resource_attributes.size(), 1024u);
  auto both = Parse({"--config", file.path()}, {{"OTEL_RESOURCE_ATTRIBUTES", env_attrs}});
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find(
                "2048 from the flags, the environment and the file together; at most 1024"),
            std::string::npos)
      << both.status().message();
}

// The merge itself is linear: 200,000 keys into 200,000 took minutes when each was searched for.
TEST(ConfigValues, MergeByKeyIsLinear) {
  KeyValues into, from;
  for (int i = 0; i < 200000; ++i) {
    into.emplace_back("k" + std::to_string(i), "old");
    from.emplace_back("k" + std::to_string(i + 100000), "new");
  }
  const auto start = std::chrono::steady_clock::now();
  MergeByKey(from, &into);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_EQ(into.size(), 300000u);
  EXPECT_EQ(into[99999], (std::pair<std::string, std::string>{"k99999", "old"}));
  EXPECT_EQ(into[100000], (std::pair<std::string, std::string>{"k100000", "new"}));
  EXPECT_EQ(into[299999], (std::pair<std::string, std::string>{"k299999", "new"}));
}

TEST(Config, HelpMentionsEveryFlag) {
  const std::string h = HelpText();
  for (const char* flag : {"--output",
                           "--duration",
                           "--pid",
                           "--capture-bytes",
                           "--config",
                           "--ring-buffer-bytes",
                           "--trace-window-ms",
                           "--trace-max-held-mib",
                           "--drain-interval-ms",
                           "--log-level",
                           "--version",
                           "--help",
                           "--otlp-endpoint",
                           "--otlp-traces-endpoint",
                           "--otlp-protocol",
                           "--otlp-headers",
                           "--otlp-timeout-ms",
                           "--otlp-compression",
                           "--otlp-certificate",
                           "--zipkin-endpoint",
                           "--zipkin-timeout-ms",
                           "--resource-attributes",
                           "OTEL_TRACES_EXPORTER",
                           "OTEL_EXPORTER_OTLP_ENDPOINT",
                           "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                           "OTEL_EXPORTER_ZIPKIN_ENDPOINT",
                           "OTEL_RESOURCE_ATTRIBUTES",
                           "OTEL_BSP_MAX_QUEUE_SIZE"}) {
    EXPECT_NE(h.find(flag), std::string::npos) << flag;
  }
}

TEST(EnvironmentTest, EmptyIsUnsetAndOnlyOtelVariablesAreRead) {
  Environment env({{"A", ""}, {"B", "x"}});
  EXPECT_EQ(env.Get("A"), std::nullopt);
  EXPECT_EQ(env.Get("B"), "x");
  EXPECT_EQ(env.Get("C"), std::nullopt);
  // The real environment is read only by the binary's tests (kspan_cli_test.cc), never
  // changed here; PATH is always set and is none of kspan's business.
  EXPECT_EQ(Environment::FromProcess().Get("PATH"), std::nullopt);
}

}  // namespace
}  // namespace kspan::agent
