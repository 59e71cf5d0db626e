// The kspan binary's answer to bad configuration, end to end: exit code 2 and exactly one
// JSON log line on stderr that names the bad value. A unit test (no privileges): the
// configuration is refused before anything touches the kernel. Every run still carries
// --duration, so a configuration wrongly accepted ends on its own rather than tracing
// until the test times out.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Outcome RunKspan(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
  args.insert(args.begin(), KSPAN_BINARY);
  args.insert(args.end(), {"--duration", "1"});
  Subprocess p;
  Outcome o;
  if (!p.Start(args, env)) return o;
  const int st = p.Wait(std::chrono::seconds(20));
  if (st == -1) p.Stop(SIGKILL, std::chrono::seconds(5));
  o.exit_code = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
  o.out = p.Stdout();
  o.err = p.Stderr();
  return o;
}

// Exit 2, nothing on stdout, one JSON line on stderr whose "error" mentions each of `what`.
void ExpectOneLineError(const Outcome& o, const std::vector<std::string>& what) {
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_EQ(o.out, "");
  ASSERT_FALSE(o.err.empty());
  EXPECT_EQ(o.err.find('\n'), o.err.size() - 1) << "more than one line:\n" << o.err;
  const auto line = nlohmann::json::parse(o.err, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(line.is_object()) << o.err;
  EXPECT_EQ(line.value("level", ""), "error");
  EXPECT_EQ(line.value("msg", ""), "bad configuration");
  const std::string error = line.value("error", "");
  for (const std::string& w : what) EXPECT_NE(error.find(w), std::string::npos) << w << " not in: " << error;
}

TEST(KspanCli, UnknownOtlpProtocolIsOneLineAndExitTwo) {
  ExpectOneLineError(RunKspan({"--output", "otlp", "--otlp-protocol", "bogus"}),
                     {"--otlp-protocol", "'bogus'", "grpc, http/protobuf or http/json"});
}

TEST(KspanCli, BadEnvironmentNamesTheVariable) {
  ExpectOneLineError(
      RunKspan({}, {{"OTEL_TRACES_EXPORTER", "otlp"}, {"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"}}),
      {"OTEL_EXPORTER_OTLP_ENDPOINT", "'collector:4318'", "http"});
}

TEST(KspanCli, BadEnvironmentValueIsAnErrorEvenWhenAFlagWins) {
  // The flag decides the protocol, but every source is checked: a typo anywhere is an
  // error, not a setting that silently starts to matter when the flag goes away.
  ExpectOneLineError(RunKspan({"--otlp-protocol", "grpc"}, {{"OTEL_EXPORTER_OTLP_PROTOCOL", "grcp"}}),
                     {"OTEL_EXPORTER_OTLP_PROTOCOL", "'grcp'"});
}

TEST(KspanCli, UnknownYamlKeyIsOneLineAndExitTwo) {
  const std::string dir = MakeTempDir("kspan-cli-");
  const std::string path = dir + "/kspan.yaml";
  std::ofstream(path) << "outputs: [otlp]\notlp:\n  protcol: grpc\n";
  ExpectOneLineError(RunKspan({"--config", path}), {path, "unknown key 'otlp.protcol'", "protocol"});
  std::remove(path.c_str());
  rmdir(dir.c_str());
}

TEST(KspanCli, MissingCertificateIsOneLineAndExitTwo) {
  ExpectOneLineError(RunKspan({"--output", "otlp", "--otlp-certificate", "/nonexistent/ca.pem"}),
                     {"--otlp-certificate", "/nonexistent/ca.pem"});
}

TEST(KspanCli, ConfigDirectoryIsOneLineAndExitTwo) {
  // It used to end in an uncaught exception from yaml-cpp: exit 134 and a C++ runtime message.
  const std::string dir = MakeTempDir("kspan-cli-");
  ExpectOneLineError(RunKspan({"--config", dir}), {dir, "is a directory", "expected a YAML file"});
  rmdir(dir.c_str());
}

TEST(KspanCli, BadKspanVariableNamesTheVariable) {
  ExpectOneLineError(RunKspan({}, {{"KSPAN_CAPTURE_BYTES", "lots"}}), {"KSPAN_CAPTURE_BYTES", "'lots'"});
}

}  // namespace
}  // namespace kspan::testing
