// End to end on real processes: a python web service (tests/apps/db_service.py) that, per
// request, runs one PostgreSQL query, one Redis GET and one Memcached get over pooled
// connections shared by its handler threads, under 20 concurrent clients (ab -c 20).
// kspan must put each call under the SERVER span of the request that made it: every
// request one trace, its three calls children of its SERVER span, none in another
// request's trace.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";
constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin/";
constexpr int kRequests = 400;
constexpr int kClients = 20;

class DbTraceIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(agent_.Start()) << "kspan did not become ready:\n" << agent_.Logs(); }
  void TearDown() override {
    service_.Stop(SIGTERM, std::chrono::seconds(10));
    if (pg_.pid() > 0) pg_.Stop(SIGINT, std::chrono::seconds(20));
    redis_.Stop(SIGTERM, std::chrono::seconds(10));
    memcached_.Stop(SIGTERM, std::chrono::seconds(10));
    if (!dir_.empty()) RunCommand({"rm", "-rf", dir_}, std::chrono::seconds(20));
    ExpectCleanStop(agent_);
  }

  KspanAgent agent_;
  Subprocess pg_, redis_, memcached_, service_;
  std::string dir_;
};

TEST_F(DbTraceIntegration, EachRequestsThreeStoreCallsAreChildrenOfItsServerSpan) {
  char tmpl[] = "/tmp/kspan-dbtrace-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  ASSERT_EQ(RunCommand({"chown", "-R", "postgres:postgres", dir_}, std::chrono::seconds(10)).exit_code, 0);
  const CommandResult init = RunCommand({"runuser", "-u", "postgres", "--", std::string(kPgBin) + "initdb",
                                         "-D", dir_ + "/data", "-U", "postgres", "--auth=trust"},
                                        std::chrono::seconds(120));
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  const int pg_port = FreePort();
  ASSERT_TRUE(pg_.Start({"runuser", "-u", "postgres", "--", std::string(kPgBin) + "postgres", "-D",
                         dir_ + "/data", "-p", std::to_string(pg_port), "-k", dir_, "-c",
                         "listen_addresses=127.0.0.1", "-c", "fsync=off"}));
  const int redis_port = FreePort();
  ASSERT_TRUE(
      redis_.Start({"/usr/bin/redis-server", "--port", std::to_string(redis_port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", "/tmp"}));
  const int mc_port = FreePort();
  ASSERT_TRUE(memcached_.Start({"/usr/bin/memcached", "-l", "127.0.0.1", "-p", std::to_string(mc_port), "-U",
                                "0", "-u", "nobody", "-t", "1", "-m", "16"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", pg_port, std::chrono::seconds(30))) << pg_.Stderr();
  ASSERT_TRUE(WaitForPort("127.0.0.1", redis_port, std::chrono::seconds(10))) << redis_.Stderr();
  ASSERT_TRUE(WaitForPort("127.0.0.1", mc_port, std::chrono::seconds(10))) << memcached_.Stderr();

  const int port = FreePort();
  ASSERT_TRUE(service_.Start({"/usr/bin/python3", kApps + "db_service.py", std::to_string(port),
                              std::to_string(pg_port), std::to_string(redis_port), std::to_string(mc_port)},
                             {{"OTEL_SERVICE_NAME", "db-service"}}));
  ASSERT_TRUE(
      WaitFor([&] { return service_.Stdout().find("ready") != std::string::npos || !service_.Running(); },
              std::chrono::seconds(20)) &&
      service_.Running())
      << service_.Stderr();

  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/item";
  const CommandResult ab =
      RunCommand({"/usr/bin/ab", "-q", "-n", std::to_string(kRequests), "-c", std::to_string(kClients), url},
                 std::chrono::seconds(120));
  ASSERT_EQ(ab.exit_code, 0) << ab.out << ab.err;
  ASSERT_NE(ab.out.find("Complete requests:      " + std::to_string(kRequests)), std::string::npos) << ab.out;
  ASSERT_NE(ab.out.find("Failed requests:        0"), std::string::npos) << ab.out;

  auto service_spans = [&](const std::vector<FlatSpan>& all, std::vector<const FlatSpan*>* servers,
                           std::vector<const FlatSpan*>* calls) {
    for (const FlatSpan& s : all) {
      if (s.ResourceStr("service.name") != "db-service") continue;
      if (s.kind == 2 && s.Int("server.port") == port) servers->push_back(&s);
      const int64_t p = s.Int("server.port");
      if (s.kind == 3 && (p == pg_port || p == redis_port || p == mc_port)) calls->push_back(&s);
    }
  };
  WaitFor(
      [&] {
        const std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());
        std::vector<const FlatSpan*> servers, calls;
        service_spans(all, &servers, &calls);
        return servers.size() >= kRequests && calls.size() >= 3 * kRequests;
      },
      std::chrono::seconds(30));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  const std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());
  std::vector<const FlatSpan*> servers, calls;
  service_spans(all, &servers, &calls);

  ASSERT_EQ(servers.size(), static_cast<size_t>(kRequests));
  // The pool's warm-up calls (connect, SET) run outside any request: only the calls made
  // while serving count, i.e. every GET-like call.
  std::map<std::string, const FlatSpan*> server_by_id;
  std::map<std::string, int> servers_per_trace;
  for (const FlatSpan* s : servers) {
    server_by_id[s->span_id] = s;
    ++servers_per_trace[s->trace_id];
  }
  for (const auto& [trace, n] : servers_per_trace) EXPECT_EQ(n, 1) << "two requests in trace " << trace;

  std::map<std::string, std::multiset<std::string>> children;  // server span id -> systems
  int in_requests = 0, orphans = 0, wrong_trace = 0, outside_parent = 0;
  for (const FlatSpan* c : calls) {
    const std::string system = c->Str("db.system.name");
    const std::string op = c->Str("db.operation.name");
    const bool request_call = (system == "postgresql" && op == "SELECT") ||
                              (system == "redis" && op == "GET") || (system == "memcached" && op == "get");
    if (!request_call) continue;
    ++in_requests;
    const auto parent = server_by_id.find(c->parent_span_id);
    if (parent == server_by_id.end()) {
      ++orphans;
      continue;
    }
    if (parent->second->trace_id != c->trace_id) ++wrong_trace;
    if (c->start_ns < parent->second->start_ns || c->end_ns > parent->second->end_ns) ++outside_parent;
    children[c->parent_span_id].insert(system);
  }
  EXPECT_EQ(in_requests, 3 * kRequests);
  EXPECT_EQ(orphans, 0);
  EXPECT_EQ(wrong_trace, 0);
  EXPECT_EQ(outside_parent, 0);
  int complete = 0;
  for (const FlatSpan* s : servers) {
    const std::multiset<std::string>& got = children[s->span_id];
    const std::multiset<std::string> want = {"memcached", "postgresql", "redis"};
    if (got == want) {
      ++complete;
    } else if (kRequests - complete < 5 + kRequests - static_cast<int>(servers.size())) {
      std::string names;
      for (const std::string& g : got) names += g + " ";
      ADD_FAILURE() << "request span " << s->span_id << " has: " << names;
    }
  }
  EXPECT_EQ(complete, kRequests);
  std::printf("db_trace: %zu server spans, %d store calls in requests, %d complete, %d orphans\n",
              servers.size(), in_requests, complete, orphans);
  for (const std::string proto : {"postgres", "redis", "memcache"}) {
    EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"" + proto + "\"}"), 0) << proto;
  }
}

}  // namespace
}  // namespace kspan::testing
