// End to end on real processes: kspan (the built binary) traces a real memcached and a
// python3 client using pymemcache on loopback; the test reads kspan's OTLP/JSON-lines
// output and checks every span: one CLIENT span per command sent, none for memcached's
// own side.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <string>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kClient = 3;
constexpr int kStatusUnset = 0, kStatusError = 2;

// The client's commands, in order. Every one waits for its answer (default_noreply=False),
// so each is one request and one answer on the wire.
constexpr const char* kClientScript = R"PY(
import sys
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError
c = Client(("127.0.0.1", int(sys.argv[1])), connect_timeout=5, timeout=5, default_noreply=False)
assert c.set("user:1", "alice") is True                     # set     -> STORED
assert c.get("user:1") == b"alice"                          # get     -> hit
assert c.get("nope") is None                                # get     -> miss
assert c.set("count", "10") is True                         # set     -> STORED
got = c.get_many(["user:1", "count", "missing"])            # get a b c -> 2 hits of 3
assert got == {"user:1": b"alice", "count": b"10"}, got
assert c.delete("user:1") is True                           # delete  -> DELETED
assert c.incr("count", 5) == 15                             # incr    -> 15
assert c.set("text", "abc") is True                         # set     -> STORED
try:
    c.incr("text", 1)                                       # incr    -> CLIENT_ERROR
    sys.exit("incr on a non-numeric value did not fail")
except MemcacheClientError:
    pass
# Past --capture-bytes (4096): the set's block and the answer's END fall in capture holes.
assert c.set("blob", "x" * 10000) is True                   # set     -> STORED
assert c.get("blob") == b"x" * 10000                        # get     -> hit
c.set("quiet", "1", noreply=True)                           # set noreply: no answer
c.quit()                                                    # quit: no answer
print("ok")
)PY";

// What each command's span must say, in the order sent.
struct WantSpan {
  std::string op;
  std::string status_code;  // db.response.status_code, "" when absent
  int64_t returned_rows;    // -1 when absent
  int64_t keys;             // memcached.keys, -1 when absent
  int status;
};

const std::vector<WantSpan> kWant = {
    {"set", "STORED", -1, -1, kStatusUnset},
    {"get", "", 1, 1, kStatusUnset},
    {"get", "", 0, 1, kStatusUnset},
    {"set", "STORED", -1, -1, kStatusUnset},
    {"get", "", 2, 3, kStatusUnset},
    {"delete", "DELETED", -1, -1, kStatusUnset},
    {"incr", "", -1, -1, kStatusUnset},
    {"set", "STORED", -1, -1, kStatusUnset},
    {"incr", "CLIENT_ERROR", -1, -1, kStatusError},
    {"set", "STORED", -1, -1, kStatusUnset},
    {"get", "", 1, 1, kStatusUnset},
    {"set", "", -1, -1, kStatusUnset},
    {"quit", "", -1, -1, kStatusUnset},
};

std::vector<FlatSpan> MemcacheSpans(const std::vector<FlatSpan>& all) {
  std::vector<FlatSpan> out;
  for (const FlatSpan& s : all) {
    if (s.Str("db.system.name") == "memcached") out.push_back(s);
  }
  std::sort(out.begin(), out.end(),
            [](const FlatSpan& a, const FlatSpan& b) { return a.start_ns < b.start_ns; });
  return out;
}

class MemcacheIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(agent_.Start()) << "kspan did not become ready:\n" << agent_.Logs(); }
  void TearDown() override {
    if (memcached_.pid() > 0) memcached_.Stop(SIGTERM, std::chrono::seconds(10));
    ExpectCleanStop(agent_);
  }

  KspanAgent agent_;
  Subprocess memcached_;
};

TEST_F(MemcacheIntegration, PymemcacheCommandsBecomeClientSpans) {
  // memcached after kspan is ready, on loopback only, TCP only, as nobody (it refuses root).
  const int port = FreePort();
  ASSERT_TRUE(memcached_.Start({"/usr/bin/memcached", "-l", "127.0.0.1", "-p", std::to_string(port), "-U",
                                "0", "-u", "nobody", "-t", "1", "-m", "16"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << memcached_.Stderr();

  const CommandResult run =
      RunCommand({"/usr/bin/python3", "-c", kClientScript, std::to_string(port)}, std::chrono::seconds(30));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_EQ(run.out, "ok\n");

  std::vector<FlatSpan> spans;
  WaitFor(
      [&] {
        spans = MemcacheSpans(ReadSpans(agent_.SpansPath()));
        return spans.size() >= kWant.size();
      },
      std::chrono::seconds(15));
  // Everything the agent had: exactly one span per command, nothing for memcached's side.
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  spans = MemcacheSpans(ReadSpans(agent_.SpansPath()));
  ASSERT_EQ(spans.size(), kWant.size()) << agent_.Logs();

  for (size_t i = 0; i < kWant.size(); ++i) {
    SCOPED_TRACE(i);
    const FlatSpan& s = spans[i];
    const WantSpan& w = kWant[i];
    EXPECT_EQ(s.name, w.op + " 127.0.0.1:" + std::to_string(port));
    EXPECT_EQ(s.kind, kClient);
    EXPECT_EQ(s.Str("db.operation.name"), w.op);
    EXPECT_EQ(s.Str("server.address"), "127.0.0.1");
    EXPECT_EQ(s.Int("server.port"), port);
    EXPECT_EQ(s.Str("network.peer.address"), "127.0.0.1");
    EXPECT_EQ(s.Int("network.peer.port"), port);
    EXPECT_EQ(s.Str("db.response.status_code"), w.status_code);
    EXPECT_EQ(s.Int("db.response.returned_rows"), w.returned_rows);
    EXPECT_EQ(s.Int("memcached.keys"), w.keys);
    EXPECT_FALSE(s.Has("db.operation.batch.size"));
    EXPECT_FALSE(s.Has("kspan.response.missing"));
    EXPECT_FALSE(s.Has("db.query.text"));  // keys are user data
    EXPECT_EQ(s.status_code, w.status);
    if (w.status == kStatusError) {
      EXPECT_EQ(s.Str("error.type"), "CLIENT_ERROR");
      EXPECT_EQ(s.status_message, "cannot increment or decrement non-numeric value");
    } else {
      EXPECT_FALSE(s.Has("error.type"));
      EXPECT_EQ(s.status_message, "");
    }
    EXPECT_GT(s.start_ns, 1'600'000'000'000'000'000ull);
    EXPECT_LT(s.start_ns, s.end_ns);
    EXPECT_EQ(s.ResourceStr("process.executable.name").rfind("python3", 0), 0u)  // python3.11 here
        << s.ResourceStr("process.executable.name");
  }
  // Both ends parsed without a failure: the client's and memcached's own.
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"memcache\"}"), 0) << agent_.Logs();
  EXPECT_EQ(agent_.StoppedCounter(
                "kspan_records_dropped_total{protocol=\"memcache\",reason=\"unmatched_response\"}"),
            0);
  for (const char* reason : {"no_response", "response_not_captured", "evicted", "process_exit", "shutdown"}) {
    EXPECT_EQ(agent_.StoppedCounter("kspan_requests_unanswered_total{protocol=\"memcache\",reason=\"" +
                                    std::string(reason) + "\"}"),
              0)
        << reason;
  }
  EXPECT_GE(agent_.StoppedCounter("kspan_records_total{protocol=\"memcache\"}"), 2 * int64_t(kWant.size()));
}

}  // namespace
}  // namespace kspan::testing
