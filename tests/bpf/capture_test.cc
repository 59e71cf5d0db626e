// Loads kspan's real BPF programs and checks what they capture from this test process's
// own sockets (the filter traces only this pid), field by field. Needs root and a kernel
// that loads eBPF: where it cannot, the test fails with the loader's reason.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "events/bpf_event_source.h"
#include "process/container.h"
#include "testing/bpf_inventory.h"
#include "testing/subprocess.h"

namespace kspan {
namespace {

using events::ConnKey;

struct Captured : events::EventSink {
  std::vector<events::ConnOpenEvent> opens;
  std::vector<events::DataEvent> data;
  std::vector<std::string> payloads;
  std::vector<events::ConnCloseEvent> closes;
  void OnConnOpen(const events::ConnOpenEvent& e) override { opens.push_back(e); }
  void OnData(const events::DataEvent& e) override {
    data.push_back(e);
    payloads.emplace_back(e.data);
  }
  void OnConnClose(const events::ConnCloseEvent& e) override { closes.push_back(e); }
  std::vector<events::ProcessExecEvent> execs;
  void OnExec(const events::ProcessExecEvent& e) override { execs.push_back(e); }
  void OnExit(const events::ProcessExitEvent&) override {}
  std::vector<events::ProcessForkEvent> forks;
  void OnFork(const events::ProcessForkEvent& e) override { forks.push_back(e); }
};

// Polls `source` into `cap` until the exec event whose last argument is `marker` comes
// (5 s); null if it does not.
const events::ProcessExecEvent* WaitForExec(events::BpfEventSource* source, Captured* cap,
                                            const std::string& marker) {
  const events::ProcessExecEvent* ours = nullptr;
  testing::WaitFor(
      [&] {
        EXPECT_TRUE(source->Poll(cap, std::chrono::milliseconds(20)).ok());
        for (const auto& e : cap->execs) {
          if (!e.argv.empty() && e.argv.back() == marker) ours = &e;
        }
        return ours != nullptr;
      },
      std::chrono::seconds(5));
  return ours;
}

// A child that sends 3 bytes over loopback and exits (only async-signal-safe calls).
pid_t ForkSender(uint16_t port) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    (void)!write(fd, "abc", 3);
  }
  _exit(0);
}

// A connected loopback pair made by this process: client fd, server (accepted) fd.
struct Pair {
  int listener = -1, client = -1, server = -1;
  uint16_t port = 0;
  ~Pair() {
    for (int fd : {listener, client, server}) {
      if (fd >= 0) close(fd);
    }
  }
};

void MakePair(Pair* p, int family = AF_INET) {
  p->listener = socket(family, SOCK_STREAM, 0);
  ASSERT_GE(p->listener, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof(*a);
  }
  ASSERT_EQ(bind(p->listener, reinterpret_cast<sockaddr*>(&ss), len), 0);
  ASSERT_EQ(listen(p->listener, 4), 0);
  ASSERT_EQ(getsockname(p->listener, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  p->port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  p->client = socket(family, SOCK_STREAM, 0);
  ASSERT_EQ(connect(p->client, reinterpret_cast<sockaddr*>(&ss), len), 0);
  p->server = accept(p->listener, nullptr, nullptr);
  ASSERT_GE(p->server, 0);
}

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    events::BpfSourceOptions o;
    o.pids = {static_cast<uint32_t>(getpid())};
    o.self_pid = 1;  // trace this test process, which is not the agent
    o.capture_bytes = 4096;
    auto s = events::BpfEventSource::Open(o, &metrics_);
    ASSERT_TRUE(s.ok()) << "eBPF could not load: " << s.status().ToString();
    source_ = std::move(*s);
  }

  // Polls until `done` holds or 5 s pass (a deadline, not a number of polls).
  bool PollUntil(const std::function<bool()>& done) {
    return testing::WaitFor(
        [&] {
          auto r = source_->Poll(&cap_, std::chrono::milliseconds(20));
          EXPECT_TRUE(r.ok()) << r.status().ToString();
          return done();
        },
        std::chrono::seconds(5));
  }

  std::vector<const events::DataEvent*> DataFor(const ConnKey& k, events::Direction dir) {
    std::vector<const events::DataEvent*> out;
    for (const auto& d : cap_.data) {
      if (d.key == k && d.direction == dir) out.push_back(&d);
    }
    return out;
  }

  const events::ConnOpenEvent* OpenFor(int fd) {
    const events::ConnOpenEvent* last = nullptr;
    for (const auto& o : cap_.opens) {
      if (o.key.fd == fd) last = &o;
    }
    return last;
  }

  metrics::Registry metrics_;
  std::unique_ptr<events::BpfEventSource> source_;
  Captured cap_;
};

TEST_F(CaptureTest, AllProgramsAttach) {
  EXPECT_EQ(source_->attached_programs(), 31);  // the capture's; file writes wait for an agent
  EXPECT_TRUE(source_->missing_hooks().empty());
}

TEST_F(CaptureTest, ConnectAcceptWriteReadCloseIpv4) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(MakePair(&p));
  const std::string req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(p.client, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  char buf[256];
  ASSERT_EQ(read(p.server, buf, sizeof(buf)), static_cast<ssize_t>(req.size()));
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(send(p.server, resp.data(), resp.size(), 0), static_cast<ssize_t>(resp.size()));
  ASSERT_EQ(recv(p.client, buf, sizeof(buf), 0), static_cast<ssize_t>(resp.size()));
  const int cfd = p.client, sfd = p.server;
  close(p.client);
  close(p.server);
  p.client = p.server = -1;
  ASSERT_TRUE(PollUntil([&] { return cap_.closes.size() >= 2; })) << "no close events";

  const auto* copen = OpenFor(cfd);
  const auto* sopen = OpenFor(sfd);
  ASSERT_NE(copen, nullptr);
  ASSERT_NE(sopen, nullptr);
  EXPECT_EQ(copen->role, events::Role::kClient);
  EXPECT_EQ(sopen->role, events::Role::kServer);
  EXPECT_FALSE(copen->midstream);
  EXPECT_EQ(copen->tuple.remote.port, p.port);
  EXPECT_EQ(copen->tuple.remote.address, "127.0.0.1");
  EXPECT_EQ(sopen->tuple.local.port, p.port);
  EXPECT_EQ(sopen->tuple.remote.port, copen->tuple.local.port);
  EXPECT_NE(copen->key.generation, sopen->key.generation);

  auto cw = DataFor(copen->key, events::Direction::kEgress);
  ASSERT_EQ(cw.size(), 1u);
  EXPECT_EQ(cw[0]->position, 0u);
  EXPECT_EQ(cw[0]->total_len, req.size());
  EXPECT_EQ(cw[0]->role, events::Role::kClient);
  EXPECT_LE(cw[0]->enter_ns, cw[0]->exit_ns);
  auto sr = DataFor(sopen->key, events::Direction::kIngress);
  ASSERT_EQ(sr.size(), 1u);
  auto sw = DataFor(sopen->key, events::Direction::kEgress);
  ASSERT_EQ(sw.size(), 1u);
  EXPECT_EQ(sw[0]->total_len, resp.size());
  auto cr = DataFor(copen->key, events::Direction::kIngress);
  ASSERT_EQ(cr.size(), 1u);

  // Payloads, matched through the stored copies.
  std::map<uint64_t, std::string> by_gen_dir;
  for (size_t i = 0; i < cap_.data.size(); ++i) {
    by_gen_dir[cap_.data[i].key.generation * 4 + static_cast<int>(cap_.data[i].direction)] = cap_.payloads[i];
  }
  EXPECT_EQ(by_gen_dir[copen->key.generation * 4 + 1], req);
  EXPECT_EQ(by_gen_dir[sopen->key.generation * 4 + 2], req);
  EXPECT_EQ(by_gen_dir[sopen->key.generation * 4 + 1], resp);
  EXPECT_EQ(by_gen_dir[copen->key.generation * 4 + 2], resp);

  bool client_closed = false;
  for (const auto& c : cap_.closes) {
    if (c.key == copen->key) {
      client_closed = true;
      EXPECT_EQ(c.bytes_sent, req.size());
      EXPECT_EQ(c.bytes_received, resp.size());
    }
  }
  EXPECT_TRUE(client_closed);
}

TEST_F(CaptureTest, Ipv6Tuple) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(MakePair(&p, AF_INET6));
  ASSERT_EQ(write(p.client, "x", 1), 1);
  ASSERT_TRUE(PollUntil([&] { return OpenFor(p.client) && OpenFor(p.server); }));
  EXPECT_EQ(OpenFor(p.client)->tuple.family, AF_INET6);
  EXPECT_EQ(OpenFor(p.client)->tuple.remote.address, "::1");
  EXPECT_EQ(OpenFor(p.client)->tuple.remote.port, p.port);
}

TEST_F(CaptureTest, LargeWriteIsCappedButCountedAndPositionsAdvance) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(MakePair(&p));
  std::string big(10000, 'a');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(write(p.client, big.data(), big.size()), static_cast<ssize_t>(big.size()));
  ASSERT_EQ(write(p.client, "tail", 4), 4);
  ASSERT_TRUE(PollUntil([&] {
    return OpenFor(p.client) && DataFor(OpenFor(p.client)->key, events::Direction::kEgress).size() >= 2;
  }));
  const auto key = OpenFor(p.client)->key;
  auto w = DataFor(key, events::Direction::kEgress);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0]->total_len, 10000u);
  size_t idx = static_cast<size_t>(w[0] - cap_.data.data());
  EXPECT_EQ(cap_.payloads[idx], big.substr(0, 4096));
  EXPECT_EQ(w[1]->position, 10000u);
  EXPECT_EQ(w[1]->total_len, 4u);
}

// A client's POST to an LLM API path marks its connection (kspan/bpf/llm_paths.h): its
// events capture up to llm_capture_bytes instead of capture_bytes (4096 here). Trailing
// '/' and a query do not hide the path; other paths keep the default.
TEST_F(CaptureTest, LlmRequestPathsCaptureMore) {
  const std::string body =
      "{\"messages\":[{\"role\":\"user\",\"content\":\"" + std::string(9000, 'q') + "\"}]}";
  const std::vector<std::pair<std::string, size_t>> cases = {
      {"/v1/chat/completions", 10000},
      {"/v1/chat/completions/", 10000},
      {"/v1/messages?beta=true", 10000},
      {"/api/chat", 10000},
      {"/v1/models", 4096},
  };
  for (const auto& [path, want] : cases) {
    SCOPED_TRACE(path);
    Pair p;
    ASSERT_NO_FATAL_FAILURE(MakePair(&p));
    std::string req = "POST " + path +
                      " HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body;
    req.resize(10000, ' ');
    ASSERT_EQ(write(p.client, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    ASSERT_TRUE(PollUntil([&] {
      return OpenFor(p.client) && !DataFor(OpenFor(p.client)->key, events::Direction::kEgress).empty();
    }));
    const auto w = DataFor(OpenFor(p.client)->key, events::Direction::kEgress);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0]->total_len, 10000u);
    const size_t idx = static_cast<size_t>(w[0] - cap_.data.data());
    const std::string& got = cap_.payloads[idx];
    EXPECT_EQ(got.size(), want) << "bytes captured";
    EXPECT_TRUE(got == req.substr(0, got.size())) << "the captured bytes are the request's first";
  }
}

TEST_F(CaptureTest, WritevAndSendmsgGatherAcrossIovecs) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(MakePair(&p));
  char a[] = "GET / HTTP/1.1\r\n", b[] = "Host: h\r\n", c[] = "\r\n";
  iovec iov[3] = {{a, strlen(a)}, {b, strlen(b)}, {c, strlen(c)}};
  ASSERT_GT(writev(p.client, iov, 3), 0);
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 3;
  ASSERT_GT(sendmsg(p.client, &msg, 0), 0);
  char rbuf1[5], rbuf2[100];
  iovec riov[2] = {{rbuf1, sizeof(rbuf1)}, {rbuf2, sizeof(rbuf2)}};
  msghdr rmsg{};
  rmsg.msg_iov = riov;
  rmsg.msg_iovlen = 2;
  ASSERT_GT(recvmsg(p.server, &rmsg, 0), 0);
  ASSERT_TRUE(PollUntil([&] {
    return OpenFor(p.client) && DataFor(OpenFor(p.client)->key, events::Direction::kEgress).size() >= 2 &&
           OpenFor(p.server) && !DataFor(OpenFor(p.server)->key, events::Direction::kIngress).empty();
  }));
  const std::string whole = std::string(a) + b + c;
  auto w = DataFor(OpenFor(p.client)->key, events::Direction::kEgress);
  EXPECT_EQ(cap_.payloads[static_cast<size_t>(w[0] - cap_.data.data())], whole);
  EXPECT_EQ(cap_.payloads[static_cast<size_t>(w[1] - cap_.data.data())], whole);
  EXPECT_EQ(w[1]->position, whole.size());
  auto r = DataFor(OpenFor(p.server)->key, events::Direction::kIngress);
  const std::string got = cap_.payloads[static_cast<size_t>(r[0] - cap_.data.data())];
  EXPECT_EQ(got, (whole + whole).substr(0, got.size())) << "both writes may arrive in one recvmsg";
  EXPECT_GT(got.size(), 5u) << "recvmsg capture must continue into the second iovec";
}

TEST_F(CaptureTest, FdReuseGivesANewGeneration) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(MakePair(&p));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(p.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int fd = p.client;
  ASSERT_EQ(write(fd, "a", 1), 1);
  close(fd);
  // The lowest free number is reused: the same fd, a different socket.
  p.client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(p.client, fd);
  ASSERT_EQ(connect(p.client, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(write(p.client, "b", 1), 1);
  std::vector<const events::ConnOpenEvent*> opens;
  ASSERT_TRUE(PollUntil([&] {
    opens.clear();
    for (const auto& o : cap_.opens) {
      if (o.key.fd == fd && o.role == events::Role::kClient) opens.push_back(&o);
    }
    return opens.size() >= 2;
  }));
  EXPECT_NE(opens[0]->key.generation, opens[1]->key.generation);
  EXPECT_NE(opens[0]->tuple.local.port, opens[1]->tuple.local.port);
  bool first_closed = false;
  for (const auto& c : cap_.closes) first_closed |= c.key == opens[0]->key;
  EXPECT_TRUE(first_closed);
  auto d1 = DataFor(opens[0]->key, events::Direction::kEgress);
  auto d2 = DataFor(opens[1]->key, events::Direction::kEgress);
  ASSERT_EQ(d1.size(), 1u);
  ASSERT_EQ(d2.size(), 1u);
  EXPECT_EQ(d2[0]->position, 0u) << "a new connection starts its own stream";
}

TEST_F(CaptureTest, OtherProcessesAreFilteredOut) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(MakePair(&p));
  // A child process connects to the same listener and writes: not this pid, not traced.
  auto r = testing::RunCommand(
      {"bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(p.port) + " && echo child >&3"},
      std::chrono::seconds(5));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(write(p.client, "z", 1), 1);
  ASSERT_TRUE(PollUntil([&] { return OpenFor(p.client) != nullptr && !cap_.data.empty(); }));
  for (const auto& o : cap_.opens) EXPECT_EQ(o.key.pid, static_cast<uint32_t>(getpid()));
  for (const auto& d : cap_.data) EXPECT_EQ(d.key.pid, static_cast<uint32_t>(getpid()));
}

// Every wait (here poll) starts a new event-loop turn for the thread; events between two
// waits carry the same turn.
TEST_F(CaptureTest, WaitsCountEventLoopTurns) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(MakePair(&p));
  pollfd pfd{p.client, POLLOUT, 0};
  ASSERT_EQ(poll(&pfd, 1, 0), 1);
  ASSERT_EQ(write(p.client, "a", 1), 1);
  ASSERT_EQ(write(p.client, "b", 1), 1);
  ASSERT_EQ(poll(&pfd, 1, 0), 1);
  ASSERT_EQ(write(p.client, "c", 1), 1);
  std::vector<const events::DataEvent*> out;
  ASSERT_TRUE(PollUntil([&] {
    out = DataFor(OpenFor(p.client) ? OpenFor(p.client)->key : ConnKey{}, events::Direction::kEgress);
    return out.size() >= 3;
  }));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_NE(out[0]->turn, 0u);
  EXPECT_EQ(out[1]->turn, out[0]->turn) << "no wait between the two writes";
  EXPECT_EQ(out[2]->turn, out[0]->turn + 1) << "one poll in between";
}

TEST_F(CaptureTest, KernelCountersCountEvents) {
  Pair p;
  ASSERT_NO_FATAL_FAILURE(MakePair(&p));
  ASSERT_EQ(write(p.client, "q", 1), 1);
  ASSERT_TRUE(PollUntil([&] { return OpenFor(p.client) != nullptr; }));
  const auto k = source_->ReadKernelCounters();
  EXPECT_GE(k[KSPAN_CNT_EVENTS], 3u);
  EXPECT_EQ(k[KSPAN_CNT_RB_FULL_DATA], 0u);
  EXPECT_EQ(k[KSPAN_CNT_RB_FULL_CONN], 0u);
}

// The exec events of every process (no pid filter: the child is a new process).
class CaptureExec : public ::testing::Test {
 protected:
  void SetUp() override {
    events::BpfSourceOptions o;
    o.self_pid = 1;
    auto s = events::BpfEventSource::Open(o, &metrics_);
    ASSERT_TRUE(s.ok()) << "eBPF could not load: " << s.status().ToString();
    source_ = std::move(*s);
  }
  metrics::Registry metrics_;
  std::unique_ptr<events::BpfEventSource> source_;
};

// exec through a symlink (/usr/bin/python3 -> python3.11): the event names the path as
// exec'd and, from the new image's file, the name /proc/PID/exe resolves to, so a process
// that is gone before user space reads /proc is still named like a live one.
TEST_F(CaptureExec, ExecEventNamesTheResolvedExecutable) {
  char real[4096] = {};
  ASSERT_NE(realpath("/usr/bin/python3", real), nullptr);
  const std::string resolved = std::string(real).substr(std::string(real).rfind('/') + 1);
  const std::string marker = "kspan-exec-marker";
  auto r = testing::RunCommand({"/usr/bin/python3", "-c", "pass", marker}, std::chrono::seconds(10));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Captured cap;
  const events::ProcessExecEvent* ours = WaitForExec(source_.get(), &cap, marker);
  ASSERT_NE(ours, nullptr) << "no exec event for the child";
  char ns[64] = {};
  ASSERT_GT(readlink("/proc/self/ns/net", ns, sizeof(ns) - 1), 0);
  EXPECT_EQ("net:[" + std::to_string(ours->netns) + "]", ns);  // where a gone child was
  EXPECT_EQ(ours->filename, "/usr/bin/python3");
  EXPECT_EQ(ours->exe_name, resolved);
  EXPECT_EQ(ours->argv.front(), "/usr/bin/python3");
}

// A process in a container's cgroup: its exec event carries the cgroup path, so a
// process gone before user space reads /proc/PID/cgroup (curl in a container lives a few
// milliseconds) still names its container. The test makes a cgroup named as podman names
// a container's, where this host's runtimes put containers (cgroup v2 when it is mounted
// alone at /sys/fs/cgroup, else the v1 memory controller of a hybrid host), and execs its
// child there.
TEST_F(CaptureExec, ExecEventCarriesTheContainersCgroup) {
  struct statfs fs {};
  ASSERT_EQ(statfs("/sys/fs/cgroup", &fs), 0) << std::strerror(errno);
  const bool unified = fs.f_type == CGROUP2_SUPER_MAGIC;
  const std::string root = unified ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
  const std::string id(64, 'b');
  const std::string outer = "/kspan-test-" + std::to_string(getpid());
  const std::string path = outer + "/libpod-" + id;
  ASSERT_EQ(mkdir((root + outer).c_str(), 0755), 0) << root + outer << ": " << std::strerror(errno);
  ASSERT_EQ(mkdir((root + path).c_str(), 0755), 0) << root + path << ": " << std::strerror(errno);
  const std::string marker = "kspan-cgroup-marker";
  auto r = testing::RunCommand(
      {"/bin/sh", "-c",
       "echo $$ > " + root + path + "/cgroup.procs && exec /usr/bin/python3 -c pass " + marker},
      std::chrono::seconds(10));
  // Empty again once the child is reaped (the kernel may take a moment to let go).
  for (const std::string& dir : {root + path, root + outer}) {
    for (int i = 0; i < 100 && rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) usleep(10'000);
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Captured cap;
  const events::ProcessExecEvent* ours = WaitForExec(source_.get(), &cap, marker);
  ASSERT_NE(ours, nullptr) << "no exec event for the child";
  const std::string line = (unified ? "0::" : "1:memory:") + path + "\n";
  EXPECT_NE(ours->cgroup.find(line), std::string::npos) << ours->cgroup;
  const process::ContainerIdentity c = process::ContainerFromCgroup(ours->cgroup);
  EXPECT_EQ(c.id, id) << ours->cgroup;
  EXPECT_EQ(c.runtime, "podman");
}

// With selection rules a forked child takes its parent's kernel verdict before it first
// runs: a skipped parent's child sends nothing, and the child of a parent not skipped is
// reported (its decision is the parent's: process/selection.h), threads never.
TEST(CaptureFork, ChildrenTakeTheirParentsVerdict) {
  metrics::Registry m;
  events::BpfSourceOptions o;
  o.self_pid = 1;  // this test process is traced like any other
  o.select_by_rules = true;
  auto s = events::BpfEventSource::Open(o, &m);
  ASSERT_TRUE(s.ok()) << "eBPF could not load: " << s.status().ToString();
  EXPECT_TRUE((*s)->missing_hooks().empty());
  const uint32_t self = static_cast<uint32_t>(getpid());
  Pair listener;
  MakePair(&listener);
  auto run = [&](uint8_t verdict) {
    EXPECT_TRUE((*s)->SetSelected(self, verdict).ok());
    const pid_t child = ForkSender(listener.port);
    int status = 0;
    EXPECT_EQ(waitpid(child, &status, 0), child);
    std::thread([] {}).join();  // a thread: no event
    return static_cast<uint32_t>(child);
  };
  const uint32_t traced_child = run(KSPAN_SELECTED_TRACE);
  const uint32_t skipped_child = run(KSPAN_SELECTED_SKIP);
  ASSERT_TRUE((*s)->SetSelected(self, KSPAN_SELECTED_TRACE).ok());
  Captured cap;
  auto sent_by = [&](uint32_t pid) {
    return std::count_if(cap.data.begin(), cap.data.end(), [&](const auto& d) { return d.key.pid == pid; });
  };
  testing::WaitFor(
      [&] {
        EXPECT_TRUE((*s)->Poll(&cap, std::chrono::milliseconds(20)).ok());
        return sent_by(traced_child) > 0;
      },
      std::chrono::seconds(5));
  (*s)->Poll(&cap, std::chrono::milliseconds(50));
  ASSERT_EQ(cap.forks.size(), 1u);
  EXPECT_EQ(cap.forks[0].pid, traced_child);
  EXPECT_EQ(cap.forks[0].ppid, self);
  EXPECT_GT(sent_by(traced_child), 0);
  EXPECT_EQ(sent_by(skipped_child), 0);
}

TEST(CaptureLifecycle, DestroyingTheSourceDetachesEverything) {
  metrics::Registry m;
  const auto before = testing::KspanObjectsInKernel();
  testing::KernelObjects ours;
  {
    auto s = events::BpfEventSource::Open({}, &m);
    ASSERT_TRUE(s.ok()) << "eBPF could not load: " << s.status().ToString();
    const auto during = testing::KspanObjectsInKernel();
    ours.programs = testing::Added(before.programs, during.programs);
    ours.links = testing::Added(before.links, during.links);
    // 23 capture tracepoint programs attached at load (reads have no entry program),
    // ks_ex_data to nine tracepoints (31 links); 11 for agents' file writes, loaded but
    // attached only when the first agent is marked; 21 TLS uprobe programs (8 OpenSSL, 5
    // rustls, 3 Go crypto/tls, 5 goroutine ancestry) loaded but attached only per library,
    // Rust or Go binary (userspace/tls/); ks_proc_fork, loaded but attached only with
    // selection rules.
    EXPECT_EQ(ours.programs.size(), 56u);
    EXPECT_EQ(ours.links.size(), 31u);
    // The first agent brings the file-write programs' 11 links, once.
    ASSERT_TRUE((*s)->MarkAgent(static_cast<uint32_t>(getpid())).ok());
    ASSERT_TRUE((*s)->MarkAgent(static_cast<uint32_t>(getpid())).ok());
    ours.links = testing::Added(before.links, testing::KspanObjectsInKernel().links);
    EXPECT_EQ(ours.links.size(), 42u);
  }
  const auto after = testing::KspanObjectsInKernel();
  const auto programs_left = testing::StillThere(ours.programs, after.programs);
  const auto links_left = testing::StillThere(ours.links, after.links);
  EXPECT_TRUE(programs_left.empty()) << programs_left.size() << " programs left, first " << programs_left[0];
  EXPECT_TRUE(links_left.empty()) << links_left.size() << " links left";
}

}  // namespace
}  // namespace kspan
