#include "agent/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace kspan::agent {
namespace {

Result<Config> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "kspan");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/kspan-config-XXXXXX";
  int fd = mkstemp(path);
  ::close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsToConsoleAndLocalFile) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->outputs, (std::vector<std::string>{"console", "file:kspan-spans.jsonl"}));
  EXPECT_EQ(c->capture_bytes, 4096u);
  EXPECT_EQ(c->duration_seconds, 0);
  EXPECT_TRUE(c->pids.empty());
}

TEST(Config, FlagsRepeatAndBothForms) {
  auto c = Parse({"--output", "console", "--output=file:/tmp/x.jsonl", "--pid", "12", "--pid=13",
                  "--duration", "2.5", "--capture-bytes", "0"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->outputs, (std::vector<std::string>{"console", "file:/tmp/x.jsonl"}));
  EXPECT_EQ(c->pids, (std::vector<uint32_t>{12, 13}));
  EXPECT_DOUBLE_EQ(c->duration_seconds, 2.5);
  EXPECT_EQ(c->capture_bytes, 0u);
}

struct BadCase {
  std::vector<std::string> args;
  std::string must_mention;
};

class ConfigBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigBad, OneClearErrorNamingTheValue) {
  auto c = Parse(GetParam().args);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(GetParam().must_mention), std::string::npos) << c.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigBad,
    ::testing::Values(BadCase{{"--output", "kafka"}, "'kafka'"},
                      BadCase{{"--output", "file:"}, "file:PATH"},
                      BadCase{{"--capture-bytes", "99999"}, "99999"},
                      BadCase{{"--capture-bytes", "12abc"}, "12abc"},
                      BadCase{{"--pid", "-4"}, "-4"},
                      BadCase{{"--duration", "soon"}, "soon"},
                      BadCase{{"--ring-buffer-bytes", "5000"}, "power of two"},
                      BadCase{{"--log-level", "chatty"}, "chatty"},
                      BadCase{{"--trace-window-ms", "60001"}, "60001"},
                      BadCase{{"--trace-max-held-mib", "0"}, "--trace-max-held-mib"},
                      BadCase{{"--bogus"}, "--bogus"},
                      BadCase{{"--pid"}, "needs a value"},
                      BadCase{{"--config", "/nonexistent/kspan.yaml"}, "/nonexistent/kspan.yaml"}));

TEST(Config, YamlFileAppliesAndFlagsOverride) {
  const std::string path = WriteTemp(
      "outputs: [console, 'file:/tmp/a.jsonl']\n"
      "capture_bytes: 1024\n"
      "pids: [5]\n"
      "log_level: debug\n"
      "drain_interval_ms: 20\n"
      "trace_window_ms: 250\n"
      "trace_max_held_mib: 8\n");
  auto c = Parse({"--config", path, "--capture-bytes", "2048", "--trace-max-held-mib=16"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->outputs, (std::vector<std::string>{"console", "file:/tmp/a.jsonl"}));
  EXPECT_EQ(c->capture_bytes, 2048u);  // flag wins
  EXPECT_EQ(c->pids, (std::vector<uint32_t>{5}));
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->drain_interval_ms, 20u);
  EXPECT_EQ(c->trace_window_ms, 250u);
  EXPECT_EQ(c->trace_max_held_mib, 16u);  // flag wins
  std::remove(path.c_str());
}

TEST(Config, YamlUnknownKeyAndBadValue) {
  const std::string p1 = WriteTemp("capture_byts: 10\n");
  auto c1 = Parse({"--config", p1});
  ASSERT_FALSE(c1.ok());
  EXPECT_NE(c1.status().message().find("unknown key 'capture_byts'"), std::string::npos);
  const std::string p2 = WriteTemp("capture_bytes: lots\n");
  auto c2 = Parse({"--config", p2});
  ASSERT_FALSE(c2.ok());
  EXPECT_NE(c2.status().message().find("lots"), std::string::npos);
  const std::string p3 = WriteTemp("outputs: [console\n");
  auto c3 = Parse({"--config", p3});
  ASSERT_FALSE(c3.ok());
  EXPECT_NE(c3.status().message().find("not valid YAML"), std::string::npos);
  std::remove(p1.c_str());
  std::remove(p2.c_str());
  std::remove(p3.c_str());
}

TEST(Config, HelpMentionsEveryFlag) {
  const std::string h = HelpText();
  for (const char* flag : {"--output", "--duration", "--pid", "--capture-bytes", "--config", "--ring-buffer-bytes",
                           "--trace-window-ms", "--trace-max-held-mib",
                           "--drain-interval-ms", "--log-level", "--version", "--help"}) {
    EXPECT_NE(h.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace kspan::agent
