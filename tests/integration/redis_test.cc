// End to end on real processes: kspan (the built binary) traces a real redis-server driven
// by redis-cli (commands one by one, errors, SELECT, MULTI/EXEC, an ACL user's AUTH, RESP3)
// and by redis-benchmark with 16-command pipelines; the test reads kspan's OTLP/JSON-lines
// output and checks one CLIENT span per command sent (the server's own command statistics
// are the count), every field that matters, and that no secret or value reached the
// output. Spans are those whose server.port is the test's own redis-server.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

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

// The spans of executables whose name starts with `exe`.
std::vector<FlatSpan> RedisSpans(const std::vector<FlatSpan>& all, int port, const std::string& exe) {
  std::vector<FlatSpan> out;
  for (const FlatSpan& s : all) {
    if (s.Str("db.system.name") == "redis" && s.Int("server.port") == port &&
        s.ResourceStr("process.executable.name").rfind(exe, 0) == 0) {  // python3: python3.11
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

// Pub/sub on a real redis-server, from python3 speaking RESP on raw sockets: a RESP2
// subscriber (SUBSCRIBE two channels, messages, PING in subscribed mode, UNSUBSCRIBE, GET),
// a RESP3 one (HELLO 3, SUBSCRIBE, commands answered between push messages, a WRONGTYPE
// error among them, CLIENT TRACKING and its invalidation push) and a publisher. Messages
// and pushes answer no command: no span of their own, no parse failure, no reply paired
// with the wrong command; every PUBLISH a span.
TEST_F(RedisIntegration, PubSubMessagesAndResp3PushesAnswerNoCommand) {
  ASSERT_NO_FATAL_FAILURE(StartRedis());
  char tmpl[] = "/tmp/kspan-redis-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    std::ofstream py(dir + "/pubsub.py");
    py << "PORT = " << port_ << "\n"
       << R"PY(
import socket, time

def conn():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=20)
    return s, s.makefile("rb")

def cmd(s, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)

def read(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return (t, rest)
    if t in (b"$", b"=", b"!"):
        n = int(rest)
        if n < 0:
            return (t, None)
        data = f.read(n + 2)[:-2]
        return (t, data)
    if t in (b"*", b">", b"~", b"%"):
        n = int(rest)
        if n < 0:
            return (t, None)
        k = 2 * n if t == b"%" else n
        return (t, [read(f) for _ in range(k)])
    raise RuntimeError("unexpected %r" % line)

def words(r):
    return [x[1] for x in r[1]]

pub, pf = conn()
cmd(pub, "LPUSH", "listkey", "x"); read(pf)

# RESP2: a subscriber of two channels.
s2, f2 = conn()
cmd(s2, "SUBSCRIBE", "ch-a", "ch-b")
assert words(read(f2))[0] == b"subscribe"
assert words(read(f2))[0] == b"subscribe"
for i in range(10):
    cmd(pub, "PUBLISH", "ch-a" if i % 2 else "ch-b", "msg-%d" % i)
    assert read(pf) == (b":", b"1")
for i in range(10):
    assert words(read(f2))[0] == b"message"
cmd(s2, "PING")
assert words(read(f2))[0] == b"pong"
cmd(s2, "UNSUBSCRIBE")
assert words(read(f2))[0] == b"unsubscribe"
assert words(read(f2))[0] == b"unsubscribe"
cmd(s2, "GET", "nokey")
assert read(f2) == (b"$", None)

# RESP3: pushes interleave with replies.
s3, f3 = conn()
cmd(s3, "HELLO", "3"); assert read(f3)[0] == b"%"
cmd(s3, "SUBSCRIBE", "ch-c")
r = read(f3); assert r[0] == b">" and words(r)[0] == b"subscribe"
for i in range(10):
    cmd(pub, "PUBLISH", "ch-c", "m-%d" % i)
    assert read(pf) == (b":", b"1")
cmd(s3, "GET", "listkey")
cmd(s3, "SET", "k3", "v")
replies, pushes = [], 0
while len(replies) < 2:
    r = read(f3)
    if r[0] == b">":
        pushes += 1
    else:
        replies.append(r)
assert replies[0][0] == b"-" and replies[0][1].startswith(b"WRONGTYPE"), replies
assert replies[1] == (b"+", b"OK"), replies
while pushes < 10:
    assert read(f3)[0] == b">"
    pushes += 1
cmd(s3, "UNSUBSCRIBE", "ch-c")
assert words(read(f3))[0] == b"unsubscribe"
cmd(s3, "CLIENT", "TRACKING", "on"); assert read(f3) == (b"+", b"OK")
cmd(s3, "GET", "tracked"); assert read(f3) == (b"_", b"")
cmd(pub, "SET", "tracked", "1"); assert read(pf) == (b"+", b"OK")
cmd(s3, "PING")
got = []
while len(got) < 2:
    got.append(read(f3))
assert sorted(x[0] for x in got) == [b"+", b">"], got
for s in (s2, s3, pub):
    s.close()
print("ok")
)PY";
  }
  const CommandResult run = RunCommand({"/usr/bin/python3", dir + "/pubsub.py"}, std::chrono::seconds(60));
  RunCommand({"rm", "-rf", dir}, std::chrono::seconds(10));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;

  // Expected spans by operation (the script's commands).
  const std::map<std::string, int> want = {{"LPUSH", 1}, {"SUBSCRIBE", 2},   {"PUBLISH", 20},
                                           {"PING", 2},  {"UNSUBSCRIBE", 2}, {"GET", 3},
                                           {"HELLO", 1}, {"SET", 2},         {"CLIENT", 1}};
  int total = 0;
  for (const auto& [op, n] : want) total += n;
  std::vector<FlatSpan> spans;
  WaitFor(
      [&] {
        spans = RedisSpans(ReadSpans(agent_.SpansPath()), port_, "python3");
        return static_cast<int>(spans.size()) >= total;
      },
      std::chrono::seconds(30));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  spans = RedisSpans(ReadSpans(agent_.SpansPath()), port_, "python3");
  std::map<std::string, int> by_op;
  std::string dump;
  for (const FlatSpan& s : spans) {
    const std::string op = s.Str("db.operation.name");
    ++by_op[op];
    dump += s.name + " | " + s.Str("db.query.text") + " | " + s.Str("error.type") + "\n";
    EXPECT_FALSE(s.Has("kspan.incomplete")) << s.name;
    // The one error is the GET of a list; no other reply was taken for an error.
    if (s.Has("error.type")) {
      EXPECT_EQ(op, "GET");
      EXPECT_EQ(s.Str("error.type"), "WRONGTYPE");
    }
  }
  EXPECT_EQ(by_op, want) << dump;
  int errors = 0;
  for (const FlatSpan& s : spans) errors += s.Has("error.type");
  EXPECT_EQ(errors, 1) << dump;
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"redis\"}"), 0) << agent_.Logs();
  EXPECT_EQ(
      agent_.StoppedCounter("kspan_records_dropped_total{protocol=\"redis\",reason=\"unmatched_response\"}"),
      0);
}

}  // namespace
}  // namespace kspan::testing
