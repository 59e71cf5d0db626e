// End to end on real processes: kspan (the built binary) traces a real redis-server driven
// by redis-cli (commands one by one, errors, SELECT, MULTI/EXEC, an ACL user's AUTH, RESP3)
// and by redis-benchmark with 16-command pipelines; the test reads kspan's OTLP/JSON-lines
// output and checks one CLIENT span per command sent (the server's own command statistics
// are the count), every field that matters, and that no secret or value reached the
// output. Spans are those whose server.port is the test's own redis-server.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kClient = 3;
constexpr int kStatusUnset = 0, kStatusError = 2;
constexpr const char* kPassword = "s3cret-pw-4711";
constexpr const char* kValue = "value-literal-8231";

std::vector<FlatSpan> RedisSpans(const std::vector<FlatSpan>& all, int port, const std::string& exe) {
  std::vector<FlatSpan> out;
  for (const FlatSpan& s : all) {
    if (s.Str("db.system.name") == "redis" && s.Int("server.port") == port &&
        s.ResourceStr("process.executable.name") == exe) {
      out.push_back(s);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const FlatSpan& a, const FlatSpan& b) { return a.start_ns < b.start_ns; });
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// calls=N of each command in INFO commandstats ("cmdstat_set:calls=2000,...").
std::map<std::string, int64_t> CommandCalls(int port) {
  const CommandResult r =
      RunCommand({"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port), "INFO", "commandstats"},
                 std::chrono::seconds(10));
  std::map<std::string, int64_t> out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    const size_t colon = line.find(':'), calls = line.find("calls=");
    if (line.rfind("cmdstat_", 0) != 0 || colon == std::string::npos || calls == std::string::npos) continue;
    out[line.substr(8, colon - 8)] = std::stoll(line.substr(calls + 6));
  }
  return out;
}

class RedisIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(agent_.Start()) << "kspan did not become ready:\n" << agent_.Logs(); }
  void TearDown() override {
    if (redis_.pid() > 0) redis_.Stop(SIGTERM, std::chrono::seconds(10));
    ExpectCleanStop(agent_);
  }

  // redis-server after kspan is ready, on loopback only, nothing written to disk.
  void StartRedis() {
    port_ = FreePort();
    ASSERT_TRUE(redis_.Start({"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", "/tmp"}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port_, std::chrono::seconds(10))) << redis_.Stderr();
  }

  KspanAgent agent_;
  Subprocess redis_;
  int port_ = 0;
};

struct WantSpan {
  std::string op;
  std::string query;
  int64_t db;           // db.namespace as a number, -1 when absent
  std::string error;    // db.response.status_code and error.type, "" when none
  int64_t batch = -1;   // db.operation.batch.size, -1 when absent
  bool queued = false;  // redis.queued
};

TEST_F(RedisIntegration, RedisCliAndPipelinedBenchmarkCommandsBecomeClientSpans) {
  StartRedis();
  const std::string port = std::to_string(port_);

  // One redis-cli, commands from stdin, each waiting for its reply; the ACL user's password
  // and the value go only over the socket (not in any argv kspan could see).
  const std::string script = std::string("printf '%s\\n' ") + "'ACL SETUSER alice on >" + kPassword +
                             " ~* &* +@all' 'AUTH alice " + kPassword + "' 'SET k " + kValue +
                             "' 'GET k' 'INCR k' 'LPUSH k x' 'SELECT 2' 'SET k2 v' 'MULTI' 'SET a 1' "
                             "'INCR a' 'EXEC' | redis-cli -h 127.0.0.1 -p " +
                             port;
  const CommandResult cli = RunCommand({"/bin/sh", "-c", script}, std::chrono::seconds(30));
  ASSERT_EQ(cli.exit_code, 0) << cli.out << cli.err;
  ASSERT_NE(cli.out.find("WRONGTYPE"), std::string::npos) << cli.out;
  // RESP3: HELLO 3, then a map reply.
  const CommandResult resp3 = RunCommand(
      {"redis-cli", "-3", "-h", "127.0.0.1", "-p", port, "HGETALL", "nohash"}, std::chrono::seconds(10));
  ASSERT_EQ(resp3.exit_code, 0) << resp3.out << resp3.err;

  // The benchmark: 2 connections, 16 commands a write; the server counts what it got.
  ASSERT_EQ(RunCommand({"redis-cli", "-h", "127.0.0.1", "-p", port, "CONFIG", "RESETSTAT"},
                       std::chrono::seconds(10))
                .exit_code,
            0);
  const CommandResult bench = RunCommand({"redis-benchmark", "-h", "127.0.0.1", "-p", port, "-n", "2000",
                                          "-c", "2", "-P", "16", "-t", "set,get", "-q"},
                                         std::chrono::seconds(60));
  ASSERT_EQ(bench.exit_code, 0) << bench.out << bench.err;
  const std::map<std::string, int64_t> calls = CommandCalls(port_);
  ASSERT_EQ(calls.count("set"), 1u);
  ASSERT_EQ(calls.count("get"), 1u);
  const int64_t sets = calls.at("set"), gets = calls.at("get");
  const int64_t config_gets = calls.count("config|get") ? calls.at("config|get") : 0;
  ASSERT_GE(sets, 2000);

  std::vector<FlatSpan> bench_spans;
  WaitFor(
      [&] {
        bench_spans = RedisSpans(ReadSpans(agent_.SpansPath()), port_, "redis-benchmark");
        return int64_t(bench_spans.size()) >= sets + gets + config_gets;
      },
      std::chrono::seconds(20));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  const std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());

  // ---- redis-cli: one span per command, in order --------------------------------------
  // redis-cli asks for the command docs first (its hints): a reply of some 300 KB, far past
  // --capture-bytes, whose framing falls in capture holes: it ends at the first hole.
  const std::vector<WantSpan> want = {
      {"COMMAND", "COMMAND DOCS", 0, ""},
      {"ACL", "ACL SETUSER ? ? ? ? ? ?", 0, ""},
      {"AUTH", "AUTH ? ?", 0, ""},
      {"SET", "SET ? ?", 0, ""},
      {"GET", "GET ?", 0, ""},
      {"INCR", "INCR ?", 0, "ERR"},
      {"LPUSH", "LPUSH ? ?", 0, "WRONGTYPE"},
      {"SELECT", "SELECT ?", 0, ""},
      {"SET", "SET ? ?", 2, ""},
      {"MULTI", "MULTI", 2, ""},
      {"SET", "SET ? ?", 2, "", -1, true},
      {"INCR", "INCR ?", 2, "", -1, true},
      {"EXEC", "EXEC", 2, "", 2},
  };
  std::vector<FlatSpan> cli_spans = RedisSpans(all, port_, "redis-cli");
  // The other redis-cli runs (HELLO/HGETALL, CONFIG RESETSTAT, INFO) come after.
  ASSERT_GE(cli_spans.size(), want.size()) << agent_.Logs();
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    const FlatSpan& s = cli_spans[i];
    const WantSpan& w = want[i];
    EXPECT_EQ(s.name, w.op + " 127.0.0.1:" + port);
    EXPECT_EQ(s.kind, kClient);
    EXPECT_EQ(s.Str("db.operation.name"), w.op);
    EXPECT_EQ(s.Str("db.query.text"), w.query);
    EXPECT_EQ(s.Has("db.namespace") ? std::stoll(s.Str("db.namespace")) : -1, w.db);
    EXPECT_EQ(s.Str("server.address"), "127.0.0.1");
    EXPECT_EQ(s.Int("server.port"), port_);
    EXPECT_EQ(s.Int("network.peer.port"), port_);
    EXPECT_EQ(s.Str("db.response.status_code"), w.error);
    EXPECT_EQ(s.Str("error.type"), w.error);
    EXPECT_EQ(s.status_code, w.error.empty() ? kStatusUnset : kStatusError);
    EXPECT_EQ(s.status_message, "");
    EXPECT_EQ(s.Int("db.operation.batch.size"), w.batch);
    EXPECT_EQ(s.Bool("redis.queued"), w.queued);
    EXPECT_FALSE(s.Has("kspan.incomplete"));
    EXPECT_LT(s.start_ns, s.end_ns);
  }
  // redis-cli -3: HELLO 3 and the command after it, answered in RESP3.
  bool hello = false, hgetall = false;
  for (size_t i = want.size(); i < cli_spans.size(); ++i) {
    hello = hello || cli_spans[i].Str("db.query.text") == "HELLO ?";
    hgetall = hgetall ||
              (cli_spans[i].Str("db.query.text") == "HGETALL ?" && cli_spans[i].status_code == kStatusUnset);
  }
  EXPECT_TRUE(hello);
  EXPECT_TRUE(hgetall);

  // ---- redis-benchmark -P 16: one span per command the server counted ----------------------
  bench_spans = RedisSpans(all, port_, "redis-benchmark");
  std::map<std::string, int64_t> by_op;
  for (const FlatSpan& s : bench_spans) {
    ++by_op[s.Str("db.operation.name") + (s.Str("db.query.text") == "CONFIG GET ?" ? " GET" : "")];
    EXPECT_EQ(s.status_code, kStatusUnset);
    EXPECT_FALSE(s.Has("kspan.incomplete"));
  }
  EXPECT_EQ(by_op["SET"], sets);
  EXPECT_EQ(by_op["GET"], gets);
  EXPECT_EQ(by_op["CONFIG GET"], config_gets);
  EXPECT_EQ(int64_t(bench_spans.size()), sets + gets + config_gets);
  // Pipelined: spans overlap (a command sent before the previous one's reply came).
  size_t overlapping = 0;
  for (size_t i = 1; i < bench_spans.size(); ++i) {
    if (bench_spans[i].start_ns < bench_spans[i - 1].end_ns) ++overlapping;
  }
  EXPECT_GT(overlapping, bench_spans.size() / 2);

  // ---- Nothing secret anywhere: spans file and the agent's own logs ------------------------
  const std::string spans_text = ReadFile(agent_.SpansPath());
  for (const std::string& secret : {std::string(kPassword), std::string(kValue)}) {
    EXPECT_EQ(spans_text.find(secret), std::string::npos) << secret;
    EXPECT_EQ(agent_.Logs().find(secret), std::string::npos) << secret;
  }

  // Both ends parsed without a failure (the clients' and redis-server's own side, which
  // makes no span).
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"redis\"}"), 0) << agent_.Logs();
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_gaps_total{protocol=\"redis\"}"), 0);
  EXPECT_EQ(
      agent_.StoppedCounter("kspan_records_dropped_total{protocol=\"redis\",reason=\"unmatched_response\"}"),
      0);
  for (const FlatSpan& s : all) {
    if (s.Str("db.system.name") == "redis") {
      EXPECT_NE(s.ResourceStr("process.executable.name"), "redis-server");
    }
  }
  EXPECT_GE(agent_.StoppedCounter("kspan_records_total{protocol=\"redis\"}"), 2 * (sets + gets));
}

}  // namespace
}  // namespace kspan::testing
