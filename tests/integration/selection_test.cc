// --include and --exclude (process/selection.h) with real services: three chosen by
// listening port, by executable and by container, beside services that match no rule.
// Included, exactly the chosen ones make spans; excluded, none of them does, also after
// each is restarted, while the others still do. And the kernel skips them: what reaches
// user space of their traffic is a handful of events, not a copy of every request.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/podman.h"
#include "testing/servers.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;
constexpr int kRequests = 10;  // per service and round

struct Service {
  std::string name;  // also the path its requests ask for: /sel-NAME
  int port = 0;
};

class SelectionIntegration : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("kspan-select"); }

  // python3's http.server on the host.
  void StartPython(Subprocess* proc, int port) {
    ASSERT_TRUE(proc->Start({"/usr/bin/python3", "-m", "http.server", std::to_string(port), "--bind",
                             "127.0.0.1", "--directory", dir_}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(20))) << proc->Stderr();
  }
  // The same in a container; returns its id.
  std::string StartContainer(int port) {
    std::string error;
    const std::string id = podman_.Start({"/usr/bin/python3", "-m", "http.server", std::to_string(port),
                                          "--bind", "127.0.0.1", "--directory", "/usr/share/doc"},
                                         &error);
    EXPECT_FALSE(id.empty()) << error;
    EXPECT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(30)))
        << podman_.Run({"logs", id}, std::chrono::seconds(10)).err;
    return id;
  }
  void Requests(const std::vector<Service>& services) {
    for (const Service& s : services) {
      for (int i = 0; i < kRequests; ++i) {
        const CommandResult r = RunCommand({"/usr/bin/curl", "-sS", "-o", "/dev/null", "--max-time", "10",
                                            "http://127.0.0.1:" + std::to_string(s.port) + "/sel-" + s.name},
                                           std::chrono::seconds(15));
        ASSERT_EQ(r.exit_code, 0) << s.name << ": " << r.err;
      }
    }
  }
  // SERVER and CLIENT spans per service name, once `want` has as many SERVER spans as it
  // says (or 10 s passed); the other services are counted as found then.
  std::map<std::string, std::pair<int, int>> Count(KspanAgent& agent,
                                                   const std::map<std::string, int>& want) {
    std::map<std::string, std::pair<int, int>> got;
    WaitFor(
        [&] {
          got.clear();
          for (const FlatSpan& s : ReadSpans(agent.SpansPath())) {
            std::string path = s.Str("url.path");
            if (path.empty()) {
              const std::string full = s.Str("url.full");
              const size_t at = full.find("/sel-");
              if (at != std::string::npos) path = full.substr(at);
            }
            if (!path.starts_with("/sel-")) continue;
            auto& [servers, clients] = got[path.substr(5)];
            if (s.kind == kServer) ++servers;
            if (s.kind == kClient) ++clients;
          }
          for (const auto& [name, n] : want) {
            if (got[name].first < n) return false;
          }
          return true;
        },
        std::chrono::seconds(10));
    return got;
  }

  std::string dir_;
  Podman podman_;
};

TEST_F(SelectionIntegration, IncludeTracesExactlyTheChosenServices) {
  const Service by_port{"port", FreePort()}, by_exe{"exe", FreePort()}, by_container{"container", FreePort()},
      other{"other", FreePort()}, other_container{"othercontainer", FreePort()};
  Subprocess python, python_other, nginx;
  ASSERT_NO_FATAL_FAILURE(StartPython(&python, by_port.port));
  ASSERT_NO_FATAL_FAILURE(StartPython(&python_other, other.port));
  ASSERT_EQ(StartNginx(&nginx, dir_, by_exe.port, "location / { return 200 \"ok\\n\"; }"), "");
  const std::string chosen = StartContainer(by_container.port);
  const std::string not_chosen = StartContainer(other_container.port);
  ASSERT_FALSE(chosen.empty() || not_chosen.empty());

  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--include", "port=" + std::to_string(by_port.port), "--include", "exe=nginx",
                           "--include", "container=" + chosen.substr(0, 12)}))
      << agent.Logs();
  const auto all = {by_port, by_exe, by_container, other, other_container};
  ASSERT_NO_FATAL_FAILURE(Requests(all));
  const auto got = Count(agent, {{"port", kRequests}, {"exe", kRequests}, {"container", kRequests}});
  for (const Service& s : all) {
    SCOPED_TRACE(s.name);
    const auto it = got.find(s.name);
    const int servers = it == got.end() ? 0 : it->second.first;
    const int clients = it == got.end() ? 0 : it->second.second;
    const bool chosen_one = s.name == "port" || s.name == "exe" || s.name == "container";
    EXPECT_EQ(servers, chosen_one ? kRequests : 0) << agent.Logs();
    EXPECT_EQ(clients, 0) << "curl matches no --include rule";
  }
  ExpectCleanStop(agent);
  EXPECT_GE(agent.StoppedCounter("kspan_selection_decisions_total{decision=\"traced\"}"), 3);
  EXPECT_GE(agent.StoppedCounter("kspan_selection_decisions_total{decision=\"skipped\"}"), 3);
}

TEST_F(SelectionIntegration, ExcludedServicesStayExcludedWhenRestarted) {
  const Service by_port{"port", FreePort()}, by_exe{"exe", FreePort()}, by_container{"container", FreePort()},
      other{"other", FreePort()};
  Subprocess python, python_other, nginx;
  ASSERT_NO_FATAL_FAILURE(StartPython(&python, by_port.port));
  ASSERT_NO_FATAL_FAILURE(StartPython(&python_other, other.port));
  ASSERT_EQ(StartNginx(&nginx, dir_, by_exe.port, "location / { return 200 \"ok\\n\"; }"), "");
  const std::string excluded = StartContainer(by_container.port);
  ASSERT_FALSE(excluded.empty());

  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--exclude", "port=" + std::to_string(by_port.port), "--exclude", "exe=nginx",
                           "--exclude", "container=" + excluded.substr(0, 12)}))
      << agent.Logs();
  const auto all = {by_port, by_exe, by_container, other};
  ASSERT_NO_FATAL_FAILURE(Requests(all));

  // Each excluded service restarted: a new process (the container's under the same id).
  ASSERT_GE(python.Stop(SIGTERM, std::chrono::seconds(10)), 0);
  ASSERT_GE(nginx.Stop(SIGQUIT, std::chrono::seconds(10)), 0);
  Subprocess python2, nginx2;
  ASSERT_NO_FATAL_FAILURE(StartPython(&python2, by_port.port));
  ASSERT_EQ(StartNginx(&nginx2, dir_, by_exe.port, "location / { return 200 \"ok\\n\"; }"), "");
  const CommandResult restart = podman_.Run({"restart", "--time", "2", excluded}, std::chrono::seconds(60));
  ASSERT_EQ(restart.exit_code, 0) << restart.err;
  ASSERT_TRUE(WaitForPort("127.0.0.1", by_container.port, std::chrono::seconds(30)));
  ASSERT_NO_FATAL_FAILURE(Requests(all));

  const auto got = Count(agent, {{"other", 2 * kRequests}});
  for (const Service& s : all) {
    SCOPED_TRACE(s.name);
    const auto it = got.find(s.name);
    const int servers = it == got.end() ? 0 : it->second.first;
    const int clients = it == got.end() ? 0 : it->second.second;
    EXPECT_EQ(servers, s.name == "other" ? 2 * kRequests : 0) << agent.Logs();
    EXPECT_EQ(clients, 2 * kRequests) << "curl is not excluded";
  }
  ExpectCleanStop(agent);
  // 60 requests went to excluded services, each at least an accept, a read, a write and a
  // close in the server. The kernel skipped nearly all of them: only the few events that
  // raced with a decision reached user space.
  const int64_t dropped = agent.StoppedCounter("kspan_selection_events_dropped_total{reason=\"skipped\"}");
  EXPECT_GE(dropped, 0) << "the counter is missing";
  std::cout << "events of excluded processes that reached user space: " << dropped << " (for "
            << 6 * kRequests << " requests)\n";
  EXPECT_LE(dropped, 30) << "the kernel did not skip the excluded processes";
  EXPECT_GE(agent.StoppedCounter("kspan_selection_decisions_total{decision=\"skipped\"}"), 3);
}

}  // namespace
}  // namespace kspan::testing
