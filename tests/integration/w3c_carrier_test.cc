// The W3C Trace Context test suite's behaviours with kspan writing the context (issue 23,
// acceptance 4): an uninstrumented service (tests/apps/w3c_service.py, standard library only,
// it makes the callbacks it is asked for and propagates nothing) runs in namespace S with a
// kspan scoped to S (`--include netns=self --carrier http-header --carrier-netns self`); our
// own harness (tests/apps/w3c_harness.py: one case per test of the suite's test/test.py,
// under its name, expectations from the specification) runs in namespace H, joined to S by a
// veth pair, so its own requests are out of the carrier's scope, as a caller on another host.
// Every case must pass: the callbacks carry exactly the traceparent and tracestate the spec
// asks for, and the kernel's counts agree with what the harness saw. (The suite's own run,
// by hand: docs/tracing.md "The W3C Trace Context suite".)
#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>

#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

using namespace std::chrono_literals;

const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";

class W3cCarrierTest : public ::testing::Test {
 protected:
  bool Ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv, 10s);
    EXPECT_EQ(r.exit_code, 0) << argv[1] << " " << argv[2] << ": " << r.err;
    return r.exit_code == 0;
  }
  void SetUp() override {
    const std::string id = std::to_string(getpid() % 100000);
    ns_s_ = "ksw3S" + id;
    ns_h_ = "ksw3H" + id;
    for (const auto& ns : {ns_s_, ns_h_}) {
      ASSERT_TRUE(Ip({"netns", "add", ns}));
      created_.push_back(ns);
    }
    const std::string vs = "kw3S" + id, vh = "kw3H" + id;
    ASSERT_TRUE(Ip({"link", "add", vs, "netns", ns_s_, "type", "veth", "peer", "name", vh, "netns", ns_h_}));
    ASSERT_TRUE(Ip({"-n", ns_s_, "addr", "add", std::string(kAddrS) + "/24", "dev", vs}));
    ASSERT_TRUE(Ip({"-n", ns_h_, "addr", "add", std::string(kAddrH) + "/24", "dev", vh}));
    for (const auto& [ns, dev] : {std::pair{ns_s_, vs}, std::pair{ns_h_, vh}}) {
      ASSERT_TRUE(Ip({"-n", ns, "link", "set", dev, "up"}));
      ASSERT_TRUE(Ip({"-n", ns, "link", "set", "lo", "up"}));
    }
  }
  void TearDown() override {
    service_.reset();  // a namespace with a process left in it outlives `ip netns del`
    for (const auto& ns : created_) RunCommand({"ip", "netns", "del", ns}, 10s);
  }

  static constexpr char kAddrS[] = "10.215.0.2", kAddrH[] = "10.215.0.1";
  std::string ns_s_, ns_h_;
  std::vector<std::string> created_;
  std::unique_ptr<Subprocess> service_;
};

TEST_F(W3cCarrierTest, SuiteCasesPassWithTheHeaderCarrierWritingTheContext) {
  KspanAgent agent;
  // nsenter, not `ip netns exec`: the latter remounts /sys, and the carrier needs cgroup v2.
  agent.set_launcher({"nsenter", "--net=/var/run/netns/" + ns_s_});
  ASSERT_TRUE(agent.Start(
      {"--include", "netns=self", "--carrier", "http-header", "--carrier-netns", "self", "--ui", "false"}))
      << agent.Logs();
  ASSERT_NE(agent.Logs().find("\"active\":\"http-header\""), std::string::npos) << agent.Logs();

  const int service_port = 17000 + getpid() % 1000, harness_port = service_port + 1000;
  service_ = std::make_unique<Subprocess>();
  ASSERT_TRUE(service_->Start({"nsenter", "--net=/var/run/netns/" + ns_s_, "/usr/bin/python3",
                               kApps + "w3c_service.py", std::to_string(service_port), kAddrS}));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = RunCommand(
            {"ip", "netns", "exec", ns_s_, "ss", "-Hltn", "sport", "=", ":" + std::to_string(service_port)},
            10s);
        return r.exit_code == 0 && r.out.find(std::string(kAddrS) + ":") != std::string::npos;
      },
      10s))
      << service_->Stderr();

  const std::string url = "http://" + std::string(kAddrS) + ":" + std::to_string(service_port) + "/test";
  auto r = RunCommand({"ip", "netns", "exec", ns_h_, "/usr/bin/python3", kApps + "w3c_harness.py", url,
                       kAddrH, std::to_string(harness_port)},
                      300s);
  std::cout << r.out;
  int cases = 0, passed = 0;
  int64_t callbacks = -1, with_tracestate = -1;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"case\"") != std::string::npos) {
      ++cases;
      if (line.find("\"ok\": true") != std::string::npos)
        ++passed;
      else
        ADD_FAILURE() << line;
    }
    auto number = [&](const std::string& key) -> int64_t {
      const size_t at = line.find("\"" + key + "\": ");
      return at == std::string::npos ? -1 : std::stoll(line.substr(at + key.size() + 4));
    };
    if (line.find("\"callbacks\"") != std::string::npos) {
      callbacks = number("callbacks");
      with_tracestate = number("callbacks_with_tracestate");
    }
  }
  EXPECT_EQ(r.exit_code, 0) << r.err << "\nservice:\n" << service_->Stderr();
  EXPECT_EQ(cases, 41) << "one case per test of the suite";
  EXPECT_EQ(passed, cases);
  ASSERT_GT(callbacks, 0);

  ExpectCleanStop(agent);
  // The kernel wrote exactly one traceparent per callback (the harness's own requests are
  // out of scope) and a tracestate line into each callback that had one.
  EXPECT_EQ(agent.StoppedCounter("kspan_carrier_headers_total{outcome=\"written\"}"), callbacks);
  EXPECT_EQ(agent.StoppedCounter("kspan_carrier_headers_total{outcome=\"tracestate_written\"}"),
            with_tracestate);
  EXPECT_GT(with_tracestate, 0);
  EXPECT_EQ(agent.StoppedCounter("kspan_carrier_headers_total{outcome=\"failed\"}"), 0);
  // and the agent gave each callback's CLIENT span the ids the kernel wrote for it
  EXPECT_EQ(agent.StoppedCounter("kspan_carrier_contexts_total{side=\"client\",outcome=\"used\"}"),
            callbacks);
  EXPECT_GT(agent.StoppedCounter("kspan_carrier_incoming_tracestates_total{outcome=\"invalid\"}"), 0);
  EXPECT_GT(agent.StoppedCounter("kspan_carrier_incoming_tracestates_total{outcome=\"too_many_members\"}"),
            0);
  EXPECT_GT(agent.StoppedCounter("kspan_carrier_incoming_tracestates_total{outcome=\"no_traceparent\"}"), 0);
  EXPECT_GT(agent.StoppedCounter("kspan_carrier_incoming_traceparents_total{outcome=\"invalid\"}"), 0);
}

}  // namespace
}  // namespace kspan::testing
