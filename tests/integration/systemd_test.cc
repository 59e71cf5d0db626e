// The shipped systemd unit as a user deploys it (docs/deploy.md, "systemd"): installed by
// `cmake --install`, then `systemctl enable --now kspan`, with systemd itself as PID 1. The
// machines this runs on have another init, so systemd boots in a privileged podman
// container whose root is an overlay of the host's (testing/podman.h), with this build
// installed at its configured prefix and a network namespace of its own. kspan then runs
// under every protection the unit asks for (a dynamic user holding five capabilities, a
// system-call filter, a read-only system) and must become ready, trace a request made in
// that container, and stop on `systemctl stop` leaving nothing in the kernel.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "testing/bpf_inventory.h"
#include "testing/otlp_reader.h"
#include "testing/podman.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr int kServer = 2, kClient = 3;
const std::string kPath = "/kspan-under-systemd";
// CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF: the unit's
// AmbientCapabilities=, as /proc/PID/status shows a set.
constexpr uint64_t kUnitCapabilities =
    (1ull << 2) | (1ull << 19) | (1ull << 21) | (1ull << 38) | (1ull << 39);

class SystemdIntegration : public ::testing::Test {
 protected:
  // `command` run inside the container.
  CommandResult Exec(std::vector<std::string> command, seconds timeout = seconds(60)) {
    command.insert(command.begin(), {"exec", id_});
    return podman_.Run(command, timeout);
  }
  std::string Journal() {
    const CommandResult r = Exec({"journalctl", "-u", "kspan.service", "-o", "cat", "--no-pager"});
    return "journal of kspan.service:\n" + r.out + r.err;
  }
  std::string Unit(const std::string& property) {
    return TrimEnd(Exec({"systemctl", "show", "-p", property, "--value", "kspan.service"}).out);
  }

  Podman podman_;
  std::string id_;
};

TEST_F(SystemdIntegration, TheInstalledUnitTracesAsItsDynamicUserAndStopsClean) {
  const std::string dir = MakeTempDir("kspan-systemd-");
  const std::string prefix = dir + "/prefix", var_lib = dir + "/var-lib";
  const CommandResult install = RunCommand(
      {"cmake", "--install", fs::path(KSPAN_BINARY).parent_path(), "--prefix", prefix}, seconds(120));
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  const std::string unit = ReadFileOrEmpty(prefix + "/lib/systemd/system/kspan.service");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(unit, m, std::regex(R"(ExecStart=(\S+)/bin/kspan )"))) << unit;
  // The files go where the unit names them: the configured prefix, inside the container.
  const std::string configured = m[1];
  ASSERT_TRUE(configured != "/usr" && configured != "/")
      << "configured with prefix " << configured << ": installing over it would hide the container's system";
  // A bind mount's root keeps its source's mode (0700 from mkdtemp); the dynamic user must
  // pass through it to reach the binary.
  ASSERT_EQ(chmod(prefix.c_str(), 0755), 0);
  fs::create_directories(var_lib);

  std::string error;
  id_ = podman_.StartWith({"--privileged", "--network", "none", "--systemd=false", "-e", "container=podman",
                           "--stop-signal", "SIGRTMIN+3",
                           // Empty /run and /tmp of its own (podman's copy of the host's /run trips over its
                           // own storage there).
                           "--tmpfs", "/run:rw,notmpcopyup", "--tmpfs", "/run/lock:rw,notmpcopyup", "--tmpfs",
                           "/tmp:rw,notmpcopyup",
                           // An empty /var/lib on a real directory: systemd makes the state directory
                           // /var/lib/private/kspan, and the spans file is read from here.
                           "-v", var_lib + ":/var/lib", "-v", prefix + ":" + configured},
                          // No timers: the host's (apt, fstrim, ...) have no business in the container.
                          {"/lib/systemd/systemd", "--unit=basic.target", "systemd.mask=timers.target"},
                          &error);
  ASSERT_FALSE(id_.empty()) << error;
  std::string state;
  ASSERT_TRUE(WaitFor(
      [&] {
        state = TrimEnd(Exec({"systemctl", "is-system-running"}, seconds(10)).out);
        return state == "running" || state == "degraded";
      },
      seconds(60)))
      << "systemd in the container is " << state << "\n"
      << podman_.Run({"logs", id_}, seconds(10)).out;

  const KernelObjects before = KspanObjectsInKernel();
  const CommandResult enable = Exec({"systemctl", "enable", "--now", "kspan.service"}, seconds(120));
  ASSERT_EQ(enable.exit_code, 0) << enable.out << enable.err << Journal();
  ASSERT_TRUE(WaitFor([&] { return Journal().find("\"msg\":\"ready\"") != std::string::npos; }, seconds(60)))
      << Journal();
  EXPECT_EQ(Unit("ActiveState"), "active") << Journal();
  const KernelObjects during = KspanObjectsInKernel();
  const KernelObjects ours{Added(before.programs, during.programs), Added(before.links, during.links)};
  EXPECT_FALSE(ours.programs.empty());

  // Not root: the unit's dynamic user, holding exactly the unit's capabilities.
  const std::string status = Exec({"cat", "/proc/" + Unit("MainPID") + "/status"}).out;
  std::smatch uid, caps;
  ASSERT_TRUE(std::regex_search(status, uid, std::regex(R"(\nUid:\t(\d+)\t)"))) << status;
  EXPECT_NE(uid[1].str(), "0") << status;
  ASSERT_TRUE(std::regex_search(status, caps, std::regex(R"(\nCapEff:\t([0-9a-f]+)\n)"))) << status;
  EXPECT_EQ(std::stoull(caps[1].str(), nullptr, 16), kUnitCapabilities) << status;

  // Three requests in the container's own network namespace.
  const CommandResult server = podman_.Run({"exec", "-d", id_, "/usr/bin/python3", "-m", "http.server",
                                            "18080", "--bind", "127.0.0.1", "--directory", "/usr/share/doc"},
                                           seconds(60));
  ASSERT_EQ(server.exit_code, 0) << server.out << server.err;
  for (int i = 0; i < 3; ++i) {
    const CommandResult curl =
        Exec({"curl", "-sS", "--retry", "20", "--retry-connrefused", "--retry-delay", "1", "-o", "/dev/null",
              "-w", "%{http_code}", "http://127.0.0.1:18080" + kPath},
             seconds(60));
    ASSERT_EQ(curl.exit_code, 0) << curl.out << curl.err;
    EXPECT_EQ(curl.out, "404");
  }
  const std::string spans_path = var_lib + "/private/kspan/spans.jsonl";
  std::vector<FlatSpan> spans;
  WaitFor(
      [&] {
        spans.clear();
        for (const FlatSpan& s : ReadSpans(spans_path)) {
          if (s.Path() == kPath) spans.push_back(s);
        }
        return spans.size() >= 6;
      },
      seconds(20));

  const CommandResult stop = Exec({"systemctl", "stop", "kspan.service"}, seconds(120));
  EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  EXPECT_EQ(Unit("Result"), "success") << Journal();
  EXPECT_EQ(Unit("ExecMainStatus"), "0") << Journal();
  EXPECT_NE(Journal().find("\"msg\":\"stopped\""), std::string::npos) << Journal();
  EXPECT_TRUE(WaitFor([&] { return StillThere(ours.programs, KspanObjectsInKernel().programs).empty(); },
                      seconds(10)));
  EXPECT_TRUE(StillThere(ours.links, KspanObjectsInKernel().links).empty());

  // Each request: curl's CLIENT span and the server's SERVER span under it, in the container.
  ASSERT_EQ(spans.size(), 6u) << Journal();
  int servers = 0;
  for (const FlatSpan& s : spans) {
    SCOPED_TRACE(s.name);
    EXPECT_EQ(s.ResourceStr("container.id"), id_);
    EXPECT_EQ(s.Int("http.response.status_code"), 404);
    if (s.kind != kServer) {
      EXPECT_EQ(s.kind, kClient);
      continue;
    }
    ++servers;
    EXPECT_EQ(s.ResourceStr("process.executable.name").rfind("python3", 0), 0u);
    bool parent_found = false;
    for (const FlatSpan& c : spans) {
      parent_found |= c.kind == kClient && c.trace_id == s.trace_id && c.span_id == s.parent_span_id;
    }
    EXPECT_TRUE(parent_found) << "no CLIENT span is this span's parent";
  }
  EXPECT_EQ(servers, 3);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kspan::testing
