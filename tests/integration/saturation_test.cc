// Saturation end to end (docs/metrics.md "Saturation", issue 20): a real python server in
// a cgroup of its own lets five connections wait in its listen queue, then accepts them
// and loads its cgroup's CPU with more spinning processes than the host has CPUs. kspan's
// /metrics must show the queue depths the kernel had at each accept (4, 3, 2, 1, 0), the
// queue's bound, and CPU pressure of that cgroup no larger than the cgroup's own count.
#include "processors/saturation.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";

// The value of the series `name` whose labels include every one of `labels`, in
// Prometheus text; -1 when there is none.
double PromValue(const std::string& text, const std::string& name,
                 const std::map<std::string, std::string>& labels) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + "{", 0) != 0) continue;
    bool ok = true;
    for (const auto& [k, v] : labels) ok = ok && line.find(k + "=\"" + v + "\"") != std::string::npos;
    if (!ok) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

uint64_t SomeTotal(const std::string& cgroup) {
  uint64_t v = 0;
  processors::ParseCpuPressureSomeTotal(ReadFileOrEmpty(cgroup + "/cpu.pressure"), &v);
  return v;
}

TEST(Saturation, ListenQueueDepthAndCgroupCpuPressureOfARealServer) {
  const std::string mount = processors::Cgroup2Mount(ReadFileOrEmpty("/proc/self/mountinfo"));
  ASSERT_FALSE(mount.empty()) << "no cgroup2 file system mounted: the cgroup half of this test needs one";
  const std::string pid = std::to_string(getpid());
  const std::string cgroup = mount + "/kspan-saturation-" + pid;
  std::filesystem::create_directory(cgroup);
  ASSERT_TRUE(std::filesystem::exists(cgroup + "/cpu.pressure")) << cgroup << ": no PSI";

  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--listen", "127.0.0.1:0"})) << agent.Logs();
  const int listen = agent.ListenPort();
  ASSERT_GT(listen, 0) << agent.Logs();

  const std::string dir = MakeTempDir("kspan-saturation-");
  const std::string go = dir + "/go", service = "saturated-" + pid;
  const int port = FreePort();
  constexpr int kWaiting = 5, kBacklog = 16;
  const int burners = 2 * static_cast<int>(std::thread::hardware_concurrency()) + 1;
  Subprocess server;
  // In the cgroup from its first instruction: the shell moves itself there, then execs.
  ASSERT_TRUE(
      server.Start({"/bin/sh", "-c",
                    "echo $$ > " + cgroup + "/cgroup.procs && exec /usr/bin/python3 " + kApps +
                        "saturation_server.py " + std::to_string(port) + " " + std::to_string(kBacklog) +
                        " " + go + " " + std::to_string(kWaiting) + " " + std::to_string(burners) + " 3"},
                   {{"OTEL_SERVICE_NAME", service}}));
  ASSERT_TRUE(WaitFor([&] { return server.Stdout().find("ready") != std::string::npos || !server.Running(); },
                      std::chrono::seconds(10)))
      << server.Stderr();
  ASSERT_TRUE(server.Running()) << server.Stderr();

  // Five connections the server does not accept yet: the kernel completes their
  // handshakes and queues them.
  std::vector<int> fds;
  for (int i = 0; i < kWaiting; ++i) {
    const int fd = ConnectLoopback(port);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::ofstream(go) << "go\n";
  ASSERT_TRUE(
      WaitFor([&] { return server.Stdout().find("burned") != std::string::npos || !server.Running(); },
              std::chrono::seconds(30)))
      << server.Stdout() << server.Stderr();
  ASSERT_NE(server.Stdout().find("accepted 5"), std::string::npos) << server.Stdout();
  for (int fd : fds) close(fd);

  // kspan reads the cgroup about once a second: wait for a read after the load.
  const std::map<std::string, std::string> svc = {{"service_name", service}};
  std::string text;
  ASSERT_TRUE(WaitFor(
      [&] {
        text = agent.ScrapeMetrics();
        return PromValue(text, "kspan_listen_queue_depth_count", svc) == kWaiting &&
               PromValue(text, "kspan_cgroup_cpu_pressure_stall_seconds_total", svc) > 0;
      },
      std::chrono::seconds(10)))
      << text;
  const uint64_t cgroup_total = SomeTotal(cgroup);

  // The depth at each accept: what was still waiting after it took one (4, 3, 2, 1, 0).
  const std::map<std::string, std::string> at = {{"service_name", service},
                                                 {"server_port", std::to_string(port)}};
  EXPECT_EQ(PromValue(text, "kspan_listen_queue_depth_count", at), kWaiting);
  EXPECT_EQ(PromValue(text, "kspan_listen_queue_depth_sum", at), 4 + 3 + 2 + 1 + 0);
  auto bucket = [&](const std::string& le) {
    std::map<std::string, std::string> m = at;
    m["le"] = le;
    return PromValue(text, "kspan_listen_queue_depth_bucket", m);
  };
  EXPECT_EQ(bucket("0"), 1);
  EXPECT_EQ(bucket("2"), 3);
  EXPECT_EQ(bucket("4"), 5);
  EXPECT_EQ(PromValue(text, "kspan_listen_queue_limit", at), kBacklog);

  // CPU pressure: some, and never more than the cgroup itself counted since it was made.
  const double stall = PromValue(text, "kspan_cgroup_cpu_pressure_stall_seconds_total", svc);
  EXPECT_GT(stall, 0);
  EXPECT_LE(stall * 1e6, static_cast<double>(cgroup_total) + 1);  // seconds against µs
  EXPECT_GE(PromValue(text, "kspan_service_run_delay_seconds_total", svc), 0) << "a series of its own";
  std::cout << service << ": listen queue depths 4..0 of " << kBacklog << "; cgroup cpu.pressure some "
            << stall << " s seen by kspan, " << cgroup_total / 1e6 << " s in the cgroup; run delay "
            << PromValue(text, "kspan_service_run_delay_seconds_total", svc) << " s\n";

  server.Stop(SIGKILL, std::chrono::seconds(5));
  ExpectCleanStop(agent);
  // The burners ended with the server's wait; the cgroup empties, then goes.
  WaitFor([&] { return ReadFileOrEmpty(cgroup + "/cgroup.procs").empty(); }, std::chrono::seconds(10));
  EXPECT_EQ(rmdir(cgroup.c_str()), 0) << cgroup;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kspan::testing
