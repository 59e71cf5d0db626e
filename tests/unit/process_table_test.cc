#include "process/process_table.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <set>

namespace kspan::process {
namespace {

using namespace std::string_literals;  // "a\0b"s keeps embedded NULs, sized by the compiler

std::string Str(const model::Resource& r, const std::string& key) {
  for (const auto& a : r.attributes) {
    if (a.key == key && std::holds_alternative<std::string>(a.value)) return std::get<std::string>(a.value);
  }
  return "<missing>";
}

int64_t Int(const model::Resource& r, const std::string& key) {
  for (const auto& a : r.attributes) {
    if (a.key == key && std::holds_alternative<int64_t>(a.value)) return std::get<int64_t>(a.value);
  }
  return -1;
}

class ProcessTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kspan-proc-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  void FakeProcess(uint32_t pid, const std::string& exe, const std::string& cmdline,
                   const std::string& environ) {
    const std::string dir = root_ + "/" + std::to_string(pid);
    mkdir(dir.c_str(), 0755);
    symlink(exe.c_str(), (dir + "/exe").c_str());
    std::ofstream(dir + "/cmdline", std::ios::binary) << cmdline;
    std::ofstream(dir + "/environ", std::ios::binary) << environ;
    std::ofstream(dir + "/status") << "Name:\tx\nPPid:\t77\n";
  }
  std::string root_;
};

TEST_F(ProcessTableTest, ServiceNameFromEnvironmentWins) {
  FakeProcess(10, "/usr/bin/python3.11", "python3\0-m\0http.server\0"s,
              "PATH=/bin\0OTEL_SERVICE_NAME=checkout\0OTEL_RESOURCE_ATTRIBUTES=service.name=ignored,"
              "deployment.environment.name=prod%20eu,team=pay\0"s);
  ProcessTable t({.proc_root = root_, .host_name = "node-1"});
  auto r = t.ResourceFor(10);
  EXPECT_EQ(Str(*r, "service.name"), "checkout");
  EXPECT_EQ(Str(*r, "deployment.environment.name"), "prod eu");
  EXPECT_EQ(Str(*r, "team"), "pay");
  EXPECT_EQ(Int(*r, "process.pid"), 10);
  EXPECT_EQ(Int(*r, "process.parent_pid"), 77);
  EXPECT_EQ(Str(*r, "process.executable.name"), "python3.11");
  EXPECT_EQ(Str(*r, "process.executable.path"), "/usr/bin/python3.11");
  EXPECT_EQ(Str(*r, "process.command_line"), "python3 -m http.server");
  EXPECT_EQ(Str(*r, "host.name"), "node-1");
  EXPECT_EQ(Str(*r, "telemetry.distro.name"), "kspan");
  EXPECT_EQ(r.get(), t.ResourceFor(10).get());  // built once, shared
}

TEST_F(ProcessTableTest, ResourceAttributesServiceNameThenExecutable) {
  FakeProcess(11, "/usr/sbin/nginx", "nginx\0"s, "OTEL_RESOURCE_ATTRIBUTES=service.name=edge\0"s);
  FakeProcess(12, "/usr/bin/curl", "curl\0"s, "");
  ProcessTable t({.proc_root = root_});
  EXPECT_EQ(Str(*t.ResourceFor(11), "service.name"), "edge");
  EXPECT_EQ(Str(*t.ResourceFor(12), "service.name"), "curl");
}

TEST_F(ProcessTableTest, ContainerAndPodFromTheCgroup) {
  const std::string id = "3f4b1a2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
  FakeProcess(13, "/usr/bin/python3.11", "python3\0"s, "");
  std::ofstream(root_ + "/13/cgroup") << "0::/kubepods.slice/kubepods-burstable.slice/"
                                         "kubepods-burstable-pod4a1c2f0e_8b7d_4c3e_9f1a_2b3c4d5e6f70.slice/"
                                         "cri-containerd-"
                                      << id << ".scope\n";
  FakeProcess(14, "/usr/sbin/nginx", "nginx\0"s, "");
  std::ofstream(root_ + "/14/cgroup") << "0::/system.slice/nginx.service\n";
  ProcessTable t({.proc_root = root_});
  const auto r = t.ResourceFor(13);
  EXPECT_EQ(Str(*r, "container.id"), id);
  EXPECT_EQ(Str(*r, "container.runtime.name"), "containerd");
  EXPECT_EQ(Str(*r, "k8s.pod.uid"), "4a1c2f0e-8b7d-4c3e-9f1a-2b3c4d5e6f70");
  const auto host = t.ResourceFor(14);
  EXPECT_EQ(Str(*host, "container.id"), "<missing>");
  EXPECT_EQ(Str(*host, "k8s.pod.uid"), "<missing>");
}

TEST_F(ProcessTableTest, RetitledProcessLosesItsPadding) {
  FakeProcess(13, "/usr/sbin/nginx", "nginx: worker process          \0"s, "");
  ProcessTable t({.proc_root = root_});
  EXPECT_EQ(Str(*t.ResourceFor(13), "process.command_line"), "nginx: worker process");
}

TEST_F(ProcessTableTest, GoneProcessFallsBackToExecEvent) {
  ProcessTable t({.proc_root = root_});
  events::ProcessExecEvent e;
  e.pid = 99;
  e.ppid = 3;
  e.comm = "curl";
  e.filename = "/usr/bin/curl";
  e.exe_name = "curl-8";  // what the file run is called, when /usr/bin/curl is a symlink
  e.argv = {"curl", "--token", "s3cr3t", "--user-password=hunter2", "http://x/"};
  t.OnExec(e);
  auto r = t.ResourceFor(99);
  EXPECT_EQ(Str(*r, "service.name"), "curl-8");
  EXPECT_EQ(Str(*r, "process.executable.name"), "curl-8");
  EXPECT_EQ(Int(*r, "process.parent_pid"), 3);
  EXPECT_EQ(Str(*r, "process.command_line"), "curl --token REDACTED --user-password=REDACTED http://x/");
  t.OnExit({.pid = 99});
  EXPECT_EQ(t.Find(99), nullptr);
}

// curl in a podman container lives a few milliseconds: gone before /proc/PID/cgroup is
// read, it is placed in its container by the cgroups its exec event carried (a hybrid
// host: the runtime puts containers in cgroup v1, v2 has the root). While the process
// lives, its own /proc has the last word.
TEST_F(ProcessTableTest, GoneProcessKeepsTheContainerItsExecEventNamed) {
  const std::string id(64, 'c');
  ProcessTable t({.proc_root = root_});
  events::ProcessExecEvent e;
  e.pid = 98;
  e.filename = "/usr/bin/curl";
  e.cgroup = "1:memory:/libpod_parent/libpod-" + id + "\n";
  t.OnExec(e);
  auto r = t.ResourceFor(98);
  EXPECT_EQ(Str(*r, "container.id"), id);
  EXPECT_EQ(Str(*r, "container.runtime.name"), "podman");

  FakeProcess(97, "/usr/bin/python3.11", "python3\0"s, "");
  std::ofstream(root_ + "/97/cgroup") << "0::/system.slice/docker-" << std::string(64, 'd') << ".scope\n";
  e.pid = 97;
  t.OnExec(e);
  r = t.ResourceFor(97);
  EXPECT_EQ(Str(*r, "container.id"), std::string(64, 'd'));
  EXPECT_EQ(Str(*r, "container.runtime.name"), "docker");
}

// A PostgreSQL backend of one short query is often gone before its first span is built:
// it is named as the postmaster it was forked from, with its own pid.
TEST_F(ProcessTableTest, GoneForkedChildIsNamedAsItsParent) {
  FakeProcess(20, "/usr/lib/postgresql/15/bin/postgres", "postgres\0-D\0/var/lib/pg\0"s,
              "OTEL_SERVICE_NAME=orders-db\0"s);
  std::ofstream(root_ + "/20/cgroup") << "0::/system.slice/docker-" << std::string(64, 'a') << ".scope\n";
  ProcessTable t({.proc_root = root_});
  t.OnFork({.pid = 21, .ppid = 20, .ts_ns = 5'000});
  auto r = t.ResourceFor(21);
  EXPECT_EQ(Str(*r, "service.name"), "orders-db");
  EXPECT_EQ(Str(*r, "process.executable.name"), "postgres");
  EXPECT_EQ(Str(*r, "process.command_line"), "postgres -D /var/lib/pg");
  EXPECT_EQ(Str(*r, "container.id"), std::string(64, 'a'));
  EXPECT_EQ(Int(*r, "process.pid"), 21);
  EXPECT_EQ(Int(*r, "process.parent_pid"), 20);
  EXPECT_EQ(t.StartTime(21), 5'000u);
  EXPECT_EQ(Int(*t.ResourceFor(20), "process.pid"), 20);  // the parent is still itself
  // A child that lives has the last word: its own /proc.
  FakeProcess(22, "/usr/bin/python3.11", "python3\0worker.py\0"s, "");
  t.OnFork({.pid = 22, .ppid = 20, .ts_ns = 6'000});
  EXPECT_EQ(Str(*t.ResourceFor(22), "process.command_line"), "python3 worker.py");
  // A parent nothing is known of: nothing to inherit, decided from its own /proc.
  t.OnFork({.pid = 24, .ppid = 23, .ts_ns = 7'000});
  EXPECT_EQ(t.Find(24), nullptr);
}

TEST_F(ProcessTableTest, AgentWideAttributesFillInWhatTheProcessLacks) {
  FakeProcess(14, "/usr/bin/python3.11", "python3\0app.py\0"s,
              "OTEL_RESOURCE_ATTRIBUTES=team=pay,telemetry.distro.name=other\0"s);
  ProcessTable t({.proc_root = root_,
                  .host_name = "pod-abc",
                  .resource_attributes = {{"team", "infra"},
                                          {"k8s.node.name", "node-7"},
                                          {"host.name", "node-7.example"},
                                          {"service.name", "kspan"},
                                          {"process.pid", "1"},
                                          {"telemetry.distro.name", "x"}}});
  auto r = t.ResourceFor(14);
  EXPECT_EQ(Str(*r, "team"), "pay");                  // the process's own wins
  EXPECT_EQ(Str(*r, "k8s.node.name"), "node-7");      // added
  EXPECT_EQ(Str(*r, "host.name"), "node-7.example");  // beats gethostname
  EXPECT_EQ(Str(*r, "service.name"), "python3.11");   // never renamed agent-wide
  EXPECT_EQ(Int(*r, "process.pid"), 14);              // facts stay facts
  EXPECT_EQ(Str(*r, "telemetry.distro.name"), "kspan");
  std::set<std::string> keys;
  for (const auto& a : r->attributes) EXPECT_TRUE(keys.emplace(a.key).second) << "duplicate " << a.key;
  EXPECT_EQ(r->attributes.front().key, "service.name");
}

// curl's credentials: the header values of Authorization, cookies and secret-looking
// names, -u's user and password, and tokens anywhere (a vendor key in a URL, a Bearer credential).
TEST(RedactedCommandLine, CurlCredentialsHeadersAndTokens) {
  EXPECT_EQ(RedactedCommandLine({"curl", "-H", "Authorization: Bearer abcdefghijklmnop1234", "-H",
                                 "Accept: text/plain", "http://h/x"}),
            "curl -H Authorization: REDACTED -H Accept: text/plain http://h/x");
  EXPECT_EQ(RedactedCommandLine({"curl", "-u", "alice:s3cret", "--header", "X-Api-Key: k123", "-H",
                                 "Cookie: sid=1", "--header=Proxy-Authorization: Basic Zm9vOmJhcg=="}),
            "curl -u REDACTED --header X-Api-Key: REDACTED -H Cookie: REDACTED "
            "--header=Proxy-Authorization: REDACTED");
  EXPECT_EQ(RedactedCommandLine({"python3", "-u", "server.py"}), "python3 -u server.py") << "-u without ':'";
  EXPECT_EQ(RedactedCommandLine({"curl", "http://h/keys/sk-proj-AbCdEfGhIjKlMnOpQr"}),
            "curl http://h/keys/REDACTED");
}

TEST(RedactedCommandLine, KeepsOrdinaryArguments) {
  EXPECT_EQ(RedactedCommandLine({"nginx", "-g", "daemon off;"}), "nginx -g daemon off;");
  EXPECT_EQ(RedactedCommandLine({"app", "API_KEY=abc", "--secret", "x", "--verbose"}),
            "app API_KEY=REDACTED --secret REDACTED --verbose");
}

TEST(ParseResourceAttributes, SkipsMalformedPairs) {
  auto v = ParseResourceAttributes("a=1, b = 2 ,bad,=x,c=%41");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], (std::pair<std::string, std::string>{"a", "1"}));
  EXPECT_EQ(v[1], (std::pair<std::string, std::string>{"b", "2"}));
  EXPECT_EQ(v[2], (std::pair<std::string, std::string>{"c", "A"}));
}

// The start of a process: its exec event when seen, else /proc/PID/stat's starttime (clock
// ticks after boot) on the wall clock; 0 when neither is known.
TEST_F(ProcessTableTest, StartTimeFromExecElseProcStat) {
  ProcessTable t({.proc_root = root_});
  events::ProcessExecEvent e;
  e.pid = 20;
  e.ts_ns = 1'700'000'000'123'000'000ull;
  e.filename = "/usr/bin/node";
  t.OnExec(e);
  EXPECT_EQ(t.StartTime(20), e.ts_ns);

  // Our own stat, copied under a fake pid: comm with a space and a ')' must not shift the
  // fields. It started before now and after boot.
  FakeProcess(21, "/usr/bin/x", "x\0"s, ""s);
  std::ifstream self("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  ASSERT_NE(close, std::string::npos);
  std::ofstream(root_ + "/21/stat") << "21 (a b) c)" << stat.substr(close + 1);
  const uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count());
  const uint64_t start = t.StartTime(21);
  EXPECT_LE(start, now);
  EXPECT_GT(start, now - 3600ull * 1'000'000'000ull) << "this test process started within the hour";

  FakeProcess(22, "/usr/bin/y", "y\0"s, ""s);
  EXPECT_EQ(t.StartTime(22), 0u) << "no stat";
  EXPECT_TRUE(t.Alive(22));
  EXPECT_TRUE(t.Alive(23)) << "never seen in /proc: no evidence";
  FakeProcess(23, "/usr/bin/z", "z\0"s, ""s);
  t.Touch(23);
  EXPECT_TRUE(t.Alive(23));
  const std::string dir = root_ + "/23";
  for (const char* f : {"/exe", "/cmdline", "/environ", "/status"}) unlink((dir + f).c_str());
  rmdir(dir.c_str());
  EXPECT_FALSE(t.Alive(23)) << "gone from /proc";
}

}  // namespace
}  // namespace kspan::process
