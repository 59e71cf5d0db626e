#include "process/selection.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>

namespace kspan::process {
namespace {

using namespace std::string_literals;

TEST(SelectRuleParse, CriteriaJoinedByAmpersand) {
  auto r = ParseSelectRule("--include", "exe=/usr/sbin/nginx&port=8000-8099&port=443&k8s.label.app=web");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->exe, "/usr/sbin/nginx");
  ASSERT_EQ(r->ports.size(), 2u);
  EXPECT_EQ(r->ports[0], (PortRange{8000, 8099}));
  EXPECT_EQ(r->ports[1], (PortRange{443, 443}));
  ASSERT_EQ(r->k8s_labels.size(), 1u);
  EXPECT_EQ(r->k8s_labels[0], (std::pair<std::string, std::string>{"app", "web"}));
  EXPECT_TRUE(r->needs_ports());
  EXPECT_TRUE(r->needs_pod());
  EXPECT_EQ(r->text, "exe=/usr/sbin/nginx&port=8000-8099&port=443&k8s.label.app=web");
}

TEST(SelectRuleParse, BadRulesAreClearErrors) {
  struct Case {
    std::string rule, says;
  } cases[] = {
      {"", "empty rule"},
      {"nginx", "is not KEY=VALUE"},
      {"exe=", "is not KEY=VALUE"},
      {"exe=a&", "is not KEY=VALUE"},
      {"user=root", "unknown criterion 'user'"},
      {"port=0", "from 1 to 65535"},
      {"port=70000", "from 1 to 65535"},
      {"port=http", "from 1 to 65535"},
      {"port=90-80", "ends before it starts"},
      {"exe=a&exe=b", "exe is given twice"},
      {"netns=other", "neither self nor a namespace inode"},
      {"netns=0", "neither self nor a namespace inode"},
      {"netns=self&netns=4026531840", "netns is given twice"},
  };
  for (const Case& c : cases) {
    auto r = ParseSelectRule("--exclude", c.rule);
    ASSERT_FALSE(r.ok()) << c.rule;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << c.rule << ": " << r.status().message();
    EXPECT_EQ(r.status().message().rfind("--exclude", 0), 0u) << r.status().message();
  }
}

SelectRule Rule(const std::string& text) {
  auto r = ParseSelectRule("test", text);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : SelectRule{};
}

TEST(SelectRuleMatch, EachCriterion) {
  ProcessFacts f{.exe_path = "/usr/sbin/nginx",
                 .exe_name = "nginx",
                 .command_line = "nginx: worker process",
                 .listening_ports = {80, 8443},
                 .container_id = "3f4b1a2c9d8e7f6a5b4c"};
  EXPECT_TRUE(Matches(Rule("exe=nginx"), f));
  EXPECT_TRUE(Matches(Rule("exe=ngi*"), f));
  EXPECT_TRUE(Matches(Rule("exe=/usr/sbin/*"), f));
  EXPECT_FALSE(Matches(Rule("exe=/usr/bin/*"), f));
  EXPECT_FALSE(Matches(Rule("exe=ngin"), f));  // a glob, not a substring
  EXPECT_TRUE(Matches(Rule("cmdline=*worker*"), f));
  EXPECT_TRUE(Matches(Rule("port=80"), f));
  EXPECT_TRUE(Matches(Rule("port=8000-8999"), f));
  EXPECT_FALSE(Matches(Rule("port=81-443"), f));
  EXPECT_TRUE(Matches(Rule("container=3f4b1a"), f));  // an id prefix
  EXPECT_FALSE(Matches(Rule("container=4f4b"), f));
  EXPECT_TRUE(Matches(Rule("exe=nginx&port=80"), f));
  EXPECT_FALSE(Matches(Rule("exe=nginx&port=81"), f));  // all must hold
  // Pod criteria never match without the pod.
  EXPECT_FALSE(Matches(Rule("k8s.namespace=*"), f));
  f.pod_known = true;
  f.k8s_namespace = "shop";
  f.k8s_owner = "checkout";
  f.k8s_labels = {{"app", "web"}, {"tier", "front"}};
  EXPECT_TRUE(Matches(Rule("k8s.namespace=shop&k8s.owner=check*&k8s.label.tier=front"), f));
  EXPECT_FALSE(Matches(Rule("k8s.label.team=*"), f));  // no such label
  // No container: a container rule does not match.
  EXPECT_FALSE(Matches(Rule("container=*"), ProcessFacts{.exe_name = "curl"}));
}

// netns=self is the namespace kspan runs in (as /proc names it), netns=N that inode.
TEST(SelectRuleMatch, NetworkNamespace) {
  const uint64_t own = NetnsInode("/proc", "self");
  ASSERT_NE(own, 0u) << "/proc/self/ns/net is unreadable";
  EXPECT_EQ(NetnsInode("/proc", std::to_string(getpid())), own);
  EXPECT_EQ(NetnsInode("/proc", "no-such-pid"), 0u);
  ProcessFacts here;
  here.exe_name = "nginx";
  here.netns = own;
  ProcessFacts elsewhere = here;
  elsewhere.netns = own + 1;
  EXPECT_TRUE(Matches(Rule("netns=self"), here));
  EXPECT_FALSE(Matches(Rule("netns=self"), elsewhere));
  EXPECT_TRUE(Matches(Rule("netns=" + std::to_string(own + 1) + "&exe=nginx"), elsewhere));
  EXPECT_FALSE(Matches(Rule("netns=self"), ProcessFacts{})) << "an unknown namespace is not ours";
}

TEST(SelectRuleMatch, IncludeThenExclude) {
  SelectionRules rules{.include = {Rule("exe=python*"), Rule("port=80")},
                       .exclude = {Rule("cmdline=*health*")}};
  EXPECT_TRUE(Selected(rules, {.exe_name = "python3", .command_line = "python3 app.py"}));
  EXPECT_TRUE(Selected(rules, {.exe_name = "nginx", .listening_ports = {80}}));
  EXPECT_FALSE(Selected(rules, {.exe_name = "nginx"}));
  EXPECT_FALSE(Selected(rules, {.exe_name = "python3", .command_line = "python3 healthcheck.py"}));
  EXPECT_TRUE(Selected({.exclude = {Rule("exe=redis*")}}, {.exe_name = "nginx"}));
  EXPECT_FALSE(Selected({.exclude = {Rule("exe=redis*")}}, {.exe_name = "redis-server"}));
}

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kspan-select-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  void Process(uint32_t pid, const std::string& exe, const std::string& cmdline,
               const std::string& cgroup = "0::/user.slice\n") {
    const std::string dir = root_ + "/" + std::to_string(pid);
    mkdir(dir.c_str(), 0755);
    mkdir((dir + "/fd").c_str(), 0755);
    mkdir((dir + "/net").c_str(), 0755);
    unlink((dir + "/exe").c_str());
    ASSERT_EQ(symlink(exe.c_str(), (dir + "/exe").c_str()), 0);
    std::ofstream(dir + "/cmdline", std::ios::binary) << cmdline;
    std::ofstream(dir + "/status") << "Name:\tx\nPPid:\t1\n";
    std::ofstream(dir + "/cgroup") << cgroup;
    std::ofstream(dir + "/net/tcp") << kHeader;
    std::ofstream(dir + "/net/tcp6") << kHeader;
  }
  // A LISTEN socket (and an established one, which must not count) on `port`, the
  // listener held by fd 3 of pid.
  void Listen(uint32_t pid, uint16_t port, uint64_t inode, bool v6 = false) {
    const std::string dir = root_ + "/" + std::to_string(pid);
    char line[256];
    if (v6) {
      snprintf(line, sizeof(line),
               "   0: 00000000000000000000000000000000:%04X 00000000000000000000000000000000:0000 0A "
               "00000000:00000000 00:00000000 00000000     0        0 %llu 1 0000000000000000 100 0 0 10 0\n",
               port, static_cast<unsigned long long>(inode));
    } else {
      snprintf(line, sizeof(line),
               "   0: 0100007F:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
               "%llu 1 0000000000000000 100 0 0 10 0\n"
               "   1: 0100007F:%04X 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 "
               "%llu 1 0000000000000000 20 4 30 10 -1\n",
               port, static_cast<unsigned long long>(inode), port + 1,
               static_cast<unsigned long long>(inode + 1));
    }
    std::ofstream(dir + (v6 ? "/net/tcp6" : "/net/tcp"), std::ios::app) << line;
    const std::string fd = dir + "/fd/" + std::to_string(3 + fds_[pid]++);
    ASSERT_EQ(symlink(("socket:[" + std::to_string(inode) + "]").c_str(), fd.c_str()), 0);
    const std::string fd2 = dir + "/fd/" + std::to_string(3 + fds_[pid]++);
    ASSERT_EQ(symlink(("socket:[" + std::to_string(inode + 1) + "]").c_str(), fd2.c_str()), 0);
  }
  // pid's /proc/PID/ns/net names network namespace `inode` (from now on).
  void InNetns(uint32_t pid, uint64_t inode) {
    const std::string dir = root_ + "/" + std::to_string(pid) + "/ns";
    mkdir(dir.c_str(), 0755);
    unlink((dir + "/net").c_str());
    ASSERT_EQ(symlink(("net:[" + std::to_string(inode) + "]").c_str(), (dir + "/net").c_str()), 0);
  }
  // pid's exec event of `filename` in namespace `netns`, as the process table takes it.
  static void Exec(ProcessTable* table, uint32_t pid, const std::string& filename, uint32_t netns) {
    events::ProcessExecEvent exec;
    exec.pid = pid;
    exec.filename = filename;
    exec.netns = netns;
    table->OnExec(exec);
  }
  // A Selection on this tree whose kernel updates land in told_: (pid, traced).
  std::unique_ptr<Selection> Select(SelectionRules rules, ProcessTable* table, metrics::Registry* m) {
    return std::make_unique<Selection>(SelectionOptions{.rules = std::move(rules),
                                                        .proc_root = root_,
                                                        .tell_kernel =
                                                            [this](uint32_t pid, KernelVerdict v) {
                                                              told_.emplace_back(pid,
                                                                                 v == KernelVerdict::kTrace);
                                                              return Status::Ok();
                                                            }},
                                       table, m);
  }
  static constexpr const char* kHeader =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
  std::string root_;
  std::map<uint32_t, int> fds_;
  std::vector<std::pair<uint32_t, bool>> told_;
};

TEST_F(FakeProc, ListeningPortsAreTheProcesssOwnListeners) {
  Process(20, "/usr/sbin/nginx", "nginx\0"s);
  Listen(20, 8080, 5000);
  Listen(20, 443, 6000, /*v6=*/true);
  EXPECT_EQ(ListeningPorts(root_, 20), (std::vector<uint16_t>{443, 8080}));  // 8081 is established
  // Another process in the same network namespace: the table lists the socket, but the
  // process holds no fd of it.
  Process(21, "/usr/bin/curl", "curl\0"s);
  std::ifstream src(root_ + "/20/net/tcp");
  std::ofstream(root_ + "/21/net/tcp") << src.rdbuf();
  EXPECT_TRUE(ListeningPorts(root_, 21).empty());
  EXPECT_TRUE(ListeningPorts(root_, 99).empty());  // gone
}

TEST_F(FakeProc, DecidesOnceTellsTheKernelOnlyOfSkipsAndCounts) {
  Process(30, "/usr/sbin/nginx", "nginx\0"s);
  Process(31, "/usr/bin/redis-server", "redis-server\0*:6379\0"s);
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  std::vector<std::pair<uint32_t, bool>> told;
  Selection sel({.rules = {.exclude = {Rule("exe=redis*")}},
                 .proc_root = root_,
                 .tell_kernel =
                     [&](uint32_t pid, KernelVerdict v) {
                       told.emplace_back(pid, v == KernelVerdict::kTrace);
                       return Status::Ok();
                     }},
                &table, &m);
  ASSERT_TRUE(sel.active());
  EXPECT_TRUE(sel.Traced(30, 1));
  EXPECT_FALSE(sel.Traced(31, 1));
  EXPECT_FALSE(sel.Traced(31, 2));  // the kernel had not caught up yet
  EXPECT_TRUE(sel.Traced(30, 3));
  EXPECT_EQ(told, (std::vector<std::pair<uint32_t, bool>>{{31, false}}));
  EXPECT_EQ(m.Sum("kspan_selection_decisions_total"), 2u);
  EXPECT_EQ(m.GetCounter("kspan_selection_events_dropped_total", {{"reason", "skipped"}})->Value(), 2u);
  // Events still coming a second later: the kernel lost the entry (LRU); told again, once.
  EXPECT_FALSE(sel.Traced(31, 1'000'000'001));
  EXPECT_FALSE(sel.Traced(31, 1'000'000'002));
  EXPECT_EQ(told, (std::vector<std::pair<uint32_t, bool>>{{31, false}, {31, false}}));
  told.clear();
  // It exits, and the pid comes back as another program: decided afresh.
  sel.OnExit(31);
  Process(31, "/usr/bin/python3.11", "python3\0"s);
  table.OnExit({.pid = 31});
  EXPECT_TRUE(sel.Traced(31, 2'000'000'000));
  EXPECT_TRUE(told.empty());  // traced is the kernel's default: nothing to tell
}

TEST_F(FakeProc, ARestartedProgramIsDecidedAgainAtExec) {
  Process(40, "/usr/bin/bash", "bash\0"s);
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  std::vector<std::pair<uint32_t, bool>> told;
  Selection sel({.rules = {.include = {Rule("exe=nginx")}},
                 .proc_root = root_,
                 .tell_kernel =
                     [&](uint32_t pid, KernelVerdict v) {
                       told.emplace_back(pid, v == KernelVerdict::kTrace);
                       return Status::Ok();
                     }},
                &table, &m);
  EXPECT_FALSE(sel.Traced(40, 1));
  // bash execs nginx: the kernel dropped the entry at exec; the exec event decides again,
  // and says so (bash's skip may have been written after that drop).
  Process(40, "/usr/sbin/nginx", "nginx\0"s);
  events::ProcessExecEvent exec;
  exec.pid = 40;
  exec.filename = "/usr/sbin/nginx";
  table.OnExec(exec);
  EXPECT_TRUE(sel.OnExec(40, 2));
  EXPECT_TRUE(sel.Traced(40, 3));
  // And nginx execs bash again: skipped again, and the kernel told again.
  Process(40, "/usr/bin/bash", "bash\0"s);
  exec.filename = "/usr/bin/bash";
  table.OnExec(exec);
  EXPECT_FALSE(sel.OnExec(40, 4));
  EXPECT_EQ(told, (std::vector<std::pair<uint32_t, bool>>{{40, false}, {40, true}, {40, false}}));
}

// A child forked by a decided process runs its program in its namespaces: decided as it
// was, without /proc (a PostgreSQL backend of one query is gone before its first event
// is read). The kernel, which copied the parent's entry, is not told: a skip written a
// drain after the fork could hit the program the child exec'd since (a Go client cut off
// mid-flight); its events are dropped here, and the kernel told if they still come a
// second later.
TEST_F(FakeProc, AForkedChildIsDecidedAsItsParentEvenWhenGone) {
  Process(50, "/usr/lib/postgresql/15/bin/postgres", "postgres\0"s);
  Process(60, "/usr/bin/bash", "bash\0"s);
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  auto select = Select({.include = {Rule("exe=postgres")}}, &table, &m);
  Selection& sel = *select;
  auto& told = told_;
  EXPECT_TRUE(sel.Traced(50, 1));
  EXPECT_FALSE(sel.Traced(60, 1));
  told.clear();
  // Children not in /proc (gone): without the fork they would be judged by nothing.
  table.OnFork({.pid = 51, .ppid = 50});
  sel.OnFork(51, 50, 2);
  table.OnFork({.pid = 61, .ppid = 60});
  sel.OnFork(61, 60, 2);
  EXPECT_TRUE(sel.Traced(51, 3));
  EXPECT_FALSE(sel.Traced(61, 3));
  EXPECT_TRUE(told.empty());
  EXPECT_FALSE(sel.Traced(61, 1'000'000'003));
  EXPECT_EQ(told, (std::vector<std::pair<uint32_t, bool>>{{61, false}}));
  told.clear();
  EXPECT_EQ(m.GetCounter("kspan_selection_decisions_total", {{"decision", "traced"}})->Value(), 2u);
  EXPECT_EQ(m.GetCounter("kspan_selection_decisions_total", {{"decision", "skipped"}})->Value(), 2u);
  // A parent not decided yet: the child is decided at its first event, from /proc.
  Process(71, "/usr/lib/postgresql/15/bin/postgres", "postgres\0"s);
  sel.OnFork(71, 70, 4);
  EXPECT_EQ(sel.size(), 4u);
  EXPECT_TRUE(sel.Traced(71, 5));
}

// A program gone before its exec event is read is placed by the namespace the exec event
// carried: `ip netns exec NS curl` of one request is over in milliseconds.
TEST_F(FakeProc, AProgramGoneBeforeItsExecIsReadIsPlacedByItsExecsNamespace) {
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  Selection sel({.rules = {.include = {Rule("netns=4026532777")}}, .proc_root = root_}, &table, &m);
  Exec(&table, 90, "/usr/bin/curl", 4026532777u);
  EXPECT_TRUE(sel.OnExec(90, 1));
  Exec(&table, 91, "/usr/bin/curl", 4026531840u);
  EXPECT_FALSE(sel.OnExec(91, 1));
  // Alive, /proc says where it is now (it may have moved since its exec).
  Process(92, "/usr/bin/curl", "curl\0"s);
  InNetns(92, 4026532777u);
  Exec(&table, 92, "/usr/bin/curl", 4026531840u);
  EXPECT_TRUE(sel.OnExec(92, 1));
}

// The same for its container: `podman run ... curl` is over before /proc/PID/cgroup is
// read, and a container rule still takes it, from the cgroups its exec event carried.
TEST_F(FakeProc, AProgramGoneBeforeItsExecIsReadIsPlacedByItsExecsContainer) {
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  const std::string id = "3f4b1a" + std::string(58, '0');
  Selection sel({.rules = {.include = {Rule("container=3f4b1a")}}, .proc_root = root_}, &table, &m);
  events::ProcessExecEvent exec;
  exec.pid = 93;
  exec.filename = "/usr/bin/curl";
  exec.cgroup = "0::/machine.slice/libpod-" + id + ".scope/container\n";
  table.OnExec(exec);
  EXPECT_TRUE(sel.OnExec(93, 1));
  exec.pid = 94;
  exec.cgroup = "0::/user.slice/session-1.scope\n";
  table.OnExec(exec);
  EXPECT_FALSE(sel.OnExec(94, 1));
}

// `ip netns exec NS curl`: ip, decided skipped in the namespace it starts in, may have its
// skip written after the kernel dropped its entry at curl's exec; curl's exec, decided
// traced, must say so to the kernel, or curl stays skipped there.
TEST_F(FakeProc, AnExecAfterASkipTellsTheKernelItIsTracedNow) {
  Process(80, "/usr/bin/ip", "ip\0netns\0exec\0"s);
  InNetns(80, 4026531840u);
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  auto select = Select({.include = {Rule("netns=4026532777")}}, &table, &m);
  Selection& sel = *select;
  auto& told = told_;
  Exec(&table, 80, "/usr/bin/ip", 4026531840u);
  EXPECT_FALSE(sel.OnExec(80, 1));
  InNetns(80, 4026532777u);
  Exec(&table, 80, "/usr/bin/curl", 4026532777u);
  EXPECT_TRUE(sel.OnExec(80, 2));
  EXPECT_EQ(told, (std::vector<std::pair<uint32_t, bool>>{{80, false}, {80, true}}));
  // A program traced before and after its exec: nothing to tell (traced is the default).
  Exec(&table, 80, "/usr/bin/curl", 4026532777u);
  EXPECT_TRUE(sel.OnExec(80, 3));
  EXPECT_EQ(told.size(), 2u);
}

TEST_F(FakeProc, APortRuleIsCheckedAgainWhileTheProcessLives) {
  Process(50, "/usr/bin/python3.11", "python3\0-m\0http.server\0"s);
  Process(51, "/usr/bin/python3.11", "python3\0worker.py\0"s);
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  std::vector<std::pair<uint32_t, bool>> told;
  const uint64_t s = 1'000'000'000;
  Selection sel({.rules = {.include = {Rule("exe=python*&port=8000")}},
                 .proc_root = root_,
                 .tell_kernel =
                     [&](uint32_t pid, KernelVerdict v) {
                       told.emplace_back(pid, v == KernelVerdict::kTrace);
                       return Status::Ok();
                     },
                 .recheck_interval_ns = 2 * s},
                &table, &m);
  // Just started: not listening yet, so skipped.
  EXPECT_FALSE(sel.Traced(50, 1 * s));
  EXPECT_FALSE(sel.Traced(51, 1 * s));
  Listen(50, 8000, 7000);
  sel.Tick(2 * s);  // not due yet
  EXPECT_FALSE(sel.Traced(50, 2 * s));
  sel.Tick(3 * s + 1);
  EXPECT_TRUE(sel.Traced(50, 4 * s));
  EXPECT_FALSE(sel.Traced(51, 4 * s));
  // (Events of a skipped process a second or more after the kernel was told tell it again:
  // 50 at 2 s, 51 at 4 s.)
  EXPECT_EQ(told, (std::vector<std::pair<uint32_t, bool>>{
                      {50, false}, {51, false}, {50, false}, {50, true}, {51, false}}));
  EXPECT_EQ(m.Sum("kspan_selection_changes_total"), 1u);
  // A connection accepted on the port decides again at once, before it goes anywhere
  // (with no listener in /proc at all: a socket in another network namespace's table).
  Process(52, "/usr/bin/python3.11", "python3\0-m\0http.server\0"s);
  EXPECT_FALSE(sel.Traced(52, 5 * s));
  EXPECT_FALSE(sel.Traced(52, 5 * s, 9000));  // a port no rule names
  EXPECT_TRUE(sel.Traced(52, 5 * s, 8000));
  EXPECT_TRUE(sel.Traced(52, 5 * s));
  // An exclude rule by port, likewise: the first connection on it is not traced.
  Selection ex({.rules = {.exclude = {Rule("port=8000")}}, .proc_root = root_}, &table, &m);
  EXPECT_TRUE(ex.Traced(52, 1));
  EXPECT_FALSE(ex.Traced(52, 2, 8000));
  // A rule no port can change is never checked again: exe=python* with no port.
  Selection plain({.rules = {.include = {Rule("exe=nginx")}}, .proc_root = root_}, &table, &m);
  EXPECT_FALSE(plain.Traced(51, 1));
  Process(51, "/usr/sbin/nginx", "nginx\0"s);  // (a change only an exec would show)
  plain.Tick(100 * s);
  EXPECT_FALSE(plain.Traced(51, 100 * s));
}

// A server decided at exec, before it listens: only the port rule keeps it out, so the
// kernel is told to skip it until it listens (the kernel then traces it and reports the
// port). Its listen() on the rule's port selects it at once (not at the next periodic
// look); a listen on another port skips it anew; a process no port could select is
// skipped outright.
TEST_F(FakeProc, AListenOnTheRulesPortSelectsTheServerAtOnce) {
  Process(60, "/usr/bin/python3.11", "python3\0-m\0http.server\0"s);
  Process(61, "/usr/sbin/nginx", "nginx\0"s);
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  std::vector<std::pair<uint32_t, KernelVerdict>> told;
  const uint64_t s = 1'000'000'000;
  Selection sel({.rules = {.include = {Rule("exe=python*&port=8000")}},
                 .proc_root = root_,
                 .tell_kernel =
                     [&](uint32_t pid, KernelVerdict v) {
                       told.emplace_back(pid, v);
                       return Status::Ok();
                     },
                 .recheck_interval_ns = 2 * s},
                &table, &m);
  EXPECT_FALSE(sel.OnExec(60, 1 * s));
  EXPECT_FALSE(sel.OnExec(61, 1 * s));
  EXPECT_EQ(told, (std::vector<std::pair<uint32_t, KernelVerdict>>{{60, KernelVerdict::kSkipUntilListen},
                                                                   {61, KernelVerdict::kSkip}}));
  told.clear();
  // listen() on another port first (nothing in /proc yet: the event is at its entry).
  sel.OnListen(60, 1 * s + 10, 9000);
  EXPECT_FALSE(sel.Traced(60, 1 * s + 20));
  sel.OnListen(60, 1 * s + 30, 9000);  // a second socket on it
  sel.OnListen(60, 1 * s + 40, 8000);
  EXPECT_TRUE(sel.Traced(60, 1 * s + 50));
  EXPECT_EQ(told, (std::vector<std::pair<uint32_t, KernelVerdict>>{{60, KernelVerdict::kSkipUntilListen},
                                                                   {60, KernelVerdict::kSkipUntilListen},
                                                                   {60, KernelVerdict::kTrace}}));
  EXPECT_EQ(m.Sum("kspan_selection_changes_total"), 1u);
  EXPECT_EQ(m.Sum("kspan_selection_listens_total"), 3u);
  // Without a port rule there is nothing to decide again.
  Selection plain({.rules = {.include = {Rule("exe=nginx")}}, .proc_root = root_}, &table, &m);
  EXPECT_FALSE(plain.Traced(60, 1));
  plain.OnListen(60, 2, 8000);
  EXPECT_FALSE(plain.Traced(60, 3));
  EXPECT_EQ(m.Sum("kspan_selection_listens_total"), 3u);
}

// The race at exec: the server listens after kspan read its /proc and before the kernel
// learnt "skipped until it listens", so the kernel reports no listen(). kspan looks at its
// listeners once more after telling the kernel, and traces it at once.
TEST_F(FakeProc, AListenJustBeforeTheKernelWasToldIsStillSeen) {
  Process(70, "/usr/bin/python3.11", "python3\0-m\0http.server\0"s);
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  std::vector<std::pair<uint32_t, KernelVerdict>> told;
  Selection sel({.rules = {.include = {Rule("port=8000")}},
                 .proc_root = root_,
                 .tell_kernel =
                     [&](uint32_t pid, KernelVerdict v) {
                       // The listen() lands while kspan writes the map.
                       if (v == KernelVerdict::kSkipUntilListen) Listen(70, 8000, 7100);
                       told.emplace_back(pid, v);
                       return Status::Ok();
                     }},
                &table, &m);
  EXPECT_TRUE(sel.OnExec(70, 1));
  EXPECT_EQ(told, (std::vector<std::pair<uint32_t, KernelVerdict>>{{70, KernelVerdict::kSkipUntilListen},
                                                                   {70, KernelVerdict::kTrace}}));
  EXPECT_TRUE(sel.Traced(70, 2));
}

class FakePods : public PodLookup {
 public:
  std::vector<std::pair<std::string, std::string>> Attributes(const ContainerIdentity& c) const override {
    if (!known || c.id.empty()) return {};
    return {{"k8s.namespace.name", "shop"}, {"k8s.pod.name", "web-1"}, {"k8s.deployment.name", "web"}};
  }
  std::vector<std::pair<std::string, std::string>> Labels(const ContainerIdentity&) const override {
    return {{"app", "web"}};
  }
  uint64_t generation() const override { return known ? 2 : 1; }
  bool known = false;
};

TEST_F(FakeProc, APodRuleWaitsForThePodThenDecides) {
  const std::string id = "3f4b1a2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
  Process(60, "/usr/bin/python3.11", "python3\0"s, "0::/system.slice/docker-" + id + ".scope\n");
  Process(61, "/usr/bin/python3.11", "python3\0"s, "0::/system.slice/docker-" + id + ".scope\n");
  ProcessTable table({.proc_root = root_});
  metrics::Registry m;
  FakePods pods;
  const uint64_t s = 1'000'000'000;
  Selection sel({.rules = {.exclude = {Rule("k8s.namespace=shop&k8s.label.app=web")}},
                 .proc_root = root_,
                 .pods = &pods,
                 .max_pod_wait_ns = 10 * s},
                &table, &m);
  EXPECT_FALSE(sel.Traced(60, 1 * s));  // pending: its pod is not known yet
  EXPECT_EQ(m.GetCounter("kspan_selection_events_dropped_total", {{"reason", "pending"}})->Value(), 1u);
  pods.known = true;
  sel.Tick(3 * s);
  EXPECT_FALSE(sel.Traced(60, 3 * s));  // now decided: excluded by its pod
  EXPECT_EQ(m.GetCounter("kspan_selection_decisions_total", {{"decision", "skipped"}})->Value(), 1u);
  // A pod that never comes: decided without it once the wait is over.
  pods.known = false;
  EXPECT_FALSE(sel.Traced(61, 20 * s));
  sel.Tick(25 * s);
  sel.Tick(31 * s);
  EXPECT_TRUE(sel.Traced(61, 31 * s));
}

}  // namespace
}  // namespace kspan::process
