// Agents and MCP servers (BpfEventSource::MarkAgent): a marked process's Unix stream
// sockets, pipes and stdout/stderr writes are captured as connections of their own kind;
// an unmarked process's are not. Loads kspan's real BPF programs; needs root.
//
// The exchanges are newline-delimited JSON-RPC, one write per message, as MCP's stdio
// transport does: this test process plays the agent with a forked child as its tool
// server (only this pid is traced unless a test says otherwise), and the last tests run
// real node and python agents that spawn their servers the way those runtimes do.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "events/bpf_event_source.h"
#include "testing/subprocess.h"

namespace kspan {
namespace {

using events::ConnKey;
using events::ConnKind;
using events::Direction;

const std::string kReq1 = std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})") + "\n";
const std::string kReq2 = std::string(R"({"jsonrpc":"2.0","id":2,"method":"tools/call",)") +
                          R"("params":{"name":"lookup","arguments":{"query":"q"}}})" + "\n";
const std::string kResp1 = std::string(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[]}})") + "\n";
const std::string kResp2 = std::string(R"({"jsonrpc":"2.0","id":2,"result":{"content":[]}})") + "\n";

struct Captured : events::EventSink {
  struct Data {
    events::DataEvent e;
    std::string bytes;
  };
  std::vector<events::ConnOpenEvent> opens;
  std::vector<Data> data;
  std::vector<events::ConnCloseEvent> closes;
  std::vector<events::FileWriteEvent> file_writes;
  void OnFileWrite(const events::FileWriteEvent& e) override { file_writes.push_back(e); }
  void OnConnOpen(const events::ConnOpenEvent& e) override { opens.push_back(e); }
  void OnData(const events::DataEvent& e) override { data.push_back({e, std::string(e.data)}); }
  void OnConnClose(const events::ConnCloseEvent& e) override { closes.push_back(e); }
  void OnExec(const events::ProcessExecEvent&) override {}
  void OnExit(const events::ProcessExitEvent&) override {}
};

// Reads exactly n bytes (a line of known length) or fails.
std::string ReadN(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fd, out.data() + got, n - got);
    if (r <= 0) return out.substr(0, got);
    got += static_cast<size_t>(r);
  }
  return out;
}

// A forked tool server: reads the two requests from `in` and answers each on `out`, the
// first with write(2), the second with writev(2). Only async-signal-safe calls after fork.
pid_t ForkServer(int in, int out, int close_in_child) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  if (close_in_child >= 0) close(close_in_child);
  char buf[512];
  size_t have = 0;
  int answered = 0;
  while (answered < 2) {
    const ssize_t r = read(in, buf + have, sizeof(buf) - have);
    if (r <= 0) _exit(1);
    have += static_cast<size_t>(r);
    while (answered < 2 && memchr(buf, '\n', have) != nullptr) {
      const size_t line = static_cast<const char*>(memchr(buf, '\n', have)) - buf + 1;
      memmove(buf, buf + line, have - line);
      have -= line;
      if (answered == 0) {
        if (write(out, kResp1.data(), kResp1.size()) != static_cast<ssize_t>(kResp1.size())) _exit(2);
      } else {
        const size_t half = kResp2.size() / 2;
        iovec iov[2] = {{const_cast<char*>(kResp2.data()), half},
                        {const_cast<char*>(kResp2.data()) + half, kResp2.size() - half}};
        if (writev(out, iov, 2) != static_cast<ssize_t>(kResp2.size())) _exit(2);
      }
      ++answered;
    }
  }
  _exit(0);
}

class AgentCaptureTest : public ::testing::Test {
 protected:
  void Open(std::vector<uint32_t> pids) {
    events::BpfSourceOptions o;
    o.pids = std::move(pids);
    o.self_pid = 1;  // trace this test process, which is not kspan
    o.capture_bytes = 4096;
    auto s = events::BpfEventSource::Open(o, &metrics_);
    ASSERT_TRUE(s.ok()) << "eBPF could not load: " << s.status().ToString();
    source_ = std::move(*s);
  }
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Open({static_cast<uint32_t>(getpid())})); }

  // Polls until `done` holds or `limit` passes (a deadline, not a number of polls).
  bool PollUntil(const std::function<bool()>& done,
                 std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    return testing::WaitFor(
        [&] {
          auto r = source_->Poll(&cap_, std::chrono::milliseconds(20));
          EXPECT_TRUE(r.ok()) << r.status().ToString();
          return done();
        },
        limit);
  }

  // A barrier instead of a wait to show that nothing comes: writes a byte on a new
  // loopback TCP connection of this thread and polls until its event is in. The ring
  // buffer keeps the order in which the thread's events were made, so any event of what
  // the thread did before is in by then. Returns the connection's fd (the caller closes
  // it), or -1 after a failed assertion.
  int TcpSentinel(int* listener) {
    *listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(bind(*listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(*listener, 1), 0);
    EXPECT_EQ(getsockname(*listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
    const int c = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(write(c, "x", 1), 1);
    const bool seen =
        PollUntil([&] { return OpenFor(c) && !DataFor(OpenFor(c)->key, Direction::kEgress).empty(); });
    EXPECT_TRUE(seen) << "the sentinel's write never arrived";
    return seen ? c : -1;
  }

  const events::ConnOpenEvent* OpenFor(uint32_t pid, int fd) const {
    const events::ConnOpenEvent* last = nullptr;
    for (const auto& o : cap_.opens) {
      if (o.key.pid == pid && o.key.fd == fd) last = &o;
    }
    return last;
  }
  const events::ConnOpenEvent* OpenFor(int fd) const { return OpenFor(static_cast<uint32_t>(getpid()), fd); }

  std::vector<const Captured::Data*> DataFor(const ConnKey& k, Direction dir) const {
    std::vector<const Captured::Data*> out;
    for (const auto& d : cap_.data) {
      if (d.e.key == k && d.e.direction == dir) out.push_back(&d);
    }
    return out;
  }
  // The bytes of one direction of a connection, in stream order, checking that the
  // positions leave no gap and that everything was captured (unless !check).
  std::string Stream(const ConnKey& k, Direction dir, bool check = true) const {
    std::string out;
    for (const auto* d : DataFor(k, dir)) {
      if (check) {
        EXPECT_EQ(d->e.position, out.size()) << "positions must follow each other";
        EXPECT_EQ(d->bytes.size(), d->e.total_len) << "small messages are captured whole";
      }
      out += d->bytes;
    }
    return out;
  }
  const events::ConnCloseEvent* CloseFor(const ConnKey& k) const {
    for (const auto& c : cap_.closes) {
      if (c.key == k) return &c;
    }
    return nullptr;
  }

  metrics::Registry metrics_;
  std::unique_ptr<events::BpfEventSource> source_;
  Captured cap_;
  uint64_t peer_ino_ = 0;
};

// node's child_process stdio: the agent's ends are AF_UNIX stream sockets. Requests go
// with write(2) and sendmsg(2); answers come with read(2) and recvmsg(2).
TEST_F(AgentCaptureTest, MarkedProcessSocketpairToChildBothWays) {
  ASSERT_TRUE(source_->MarkAgent(getpid()).ok());
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  struct stat peer {};
  ASSERT_EQ(fstat(sv[1], &peer), 0);
  peer_ino_ = peer.st_ino;
  const pid_t child = ForkServer(sv[1], sv[1], sv[0]);
  ASSERT_GT(child, 0);
  close(sv[1]);
  const int fd = sv[0];
  ASSERT_EQ(write(fd, kReq1.data(), kReq1.size()), static_cast<ssize_t>(kReq1.size()));
  ASSERT_EQ(ReadN(fd, kResp1.size()), kResp1);
  msghdr msg{};
  iovec iov{const_cast<char*>(kReq2.data()), kReq2.size()};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ASSERT_EQ(sendmsg(fd, &msg, 0), static_cast<ssize_t>(kReq2.size()));
  std::string resp2(kResp2.size(), '\0');
  iovec riov{resp2.data(), resp2.size()};
  msghdr rmsg{};
  rmsg.msg_iov = &riov;
  rmsg.msg_iovlen = 1;
  ASSERT_EQ(recvmsg(fd, &rmsg, MSG_WAITALL), static_cast<ssize_t>(kResp2.size()));
  ASSERT_EQ(resp2, kResp2);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_EQ(status, 0);
  close(fd);

  ASSERT_TRUE(PollUntil([&] { return OpenFor(fd) && CloseFor(OpenFor(fd)->key); }));
  const auto* open = OpenFor(fd);
  EXPECT_EQ(open->kind, ConnKind::kUnix);
  EXPECT_EQ(open->tuple.family, AF_UNIX);
  EXPECT_EQ(open->tuple.local, events::Endpoint{});
  EXPECT_EQ(open->tuple.remote, events::Endpoint{});
  EXPECT_TRUE(open->midstream) << "a socketpair is first seen in a data syscall";
  EXPECT_EQ(open->role, events::Role::kUnknown);
  // The channel's identity: this socket's inode and its peer's (fstat's st_ino).
  EXPECT_NE(open->local_id, 0u);
  EXPECT_NE(open->peer_id, 0u);
  EXPECT_NE(open->local_id, open->peer_id);
  EXPECT_EQ(open->peer_id, peer_ino_) << "the child's end";
  EXPECT_EQ(Stream(open->key, Direction::kEgress), kReq1 + kReq2);
  EXPECT_EQ(Stream(open->key, Direction::kIngress), kResp1 + kResp2);
  const auto out = DataFor(open->key, Direction::kEgress);
  ASSERT_EQ(out.size(), 2u) << "one event per write";
  EXPECT_EQ(out[1]->e.position, kReq1.size());
  const auto* close_ev = CloseFor(open->key);
  EXPECT_EQ(close_ev->bytes_sent, kReq1.size() + kReq2.size());
  EXPECT_EQ(close_ev->bytes_received, kResp1.size() + kResp2.size());
}

// python's subprocess stdio: two pipe(2)s. The agent writes the child's stdin pipe
// (write, then writev) and reads its stdout pipe (read, then readv): two connections.
TEST_F(AgentCaptureTest, MarkedProcessPipesToChildBothWays) {
  ASSERT_TRUE(source_->MarkAgent(getpid()).ok());
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  struct stat to_st {
  }, from_st{};
  ASSERT_EQ(fstat(to_child[1], &to_st), 0);
  ASSERT_EQ(fstat(from_child[0], &from_st), 0);
  const pid_t child = ForkServer(to_child[0], from_child[1], -1);
  ASSERT_GT(child, 0);
  close(to_child[0]);
  close(from_child[1]);
  const int wfd = to_child[1], rfd = from_child[0];
  ASSERT_EQ(write(wfd, kReq1.data(), kReq1.size()), static_cast<ssize_t>(kReq1.size()));
  ASSERT_EQ(ReadN(rfd, kResp1.size()), kResp1);
  const size_t half = kReq2.size() / 2;
  iovec iov[2] = {{const_cast<char*>(kReq2.data()), half},
                  {const_cast<char*>(kReq2.data()) + half, kReq2.size() - half}};
  ASSERT_EQ(writev(wfd, iov, 2), static_cast<ssize_t>(kReq2.size()));
  std::string resp2(kResp2.size(), '\0');
  iovec riov[2] = {{resp2.data(), 7}, {resp2.data() + 7, resp2.size() - 7}};
  size_t got = 0;
  while (got < kResp2.size()) {  // a pipe may hand the two halves of a writev apart
    iovec part[1] = {{resp2.data() + got, resp2.size() - got}};
    const ssize_t r = got == 0 ? readv(rfd, riov, 2) : readv(rfd, part, 1);
    ASSERT_GT(r, 0);
    got += static_cast<size_t>(r);
  }
  ASSERT_EQ(resp2, kResp2);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_EQ(status, 0);
  close(wfd);
  close(rfd);

  ASSERT_TRUE(PollUntil([&] {
    return OpenFor(wfd) && OpenFor(rfd) && CloseFor(OpenFor(wfd)->key) && CloseFor(OpenFor(rfd)->key);
  }));
  const auto* w = OpenFor(wfd);
  const auto* r = OpenFor(rfd);
  EXPECT_EQ(w->kind, ConnKind::kPipe);
  EXPECT_EQ(r->kind, ConnKind::kPipe);
  EXPECT_EQ(w->tuple.family, AF_UNSPEC);
  EXPECT_NE(w->key.generation, r->key.generation);
  // A pipe's identity is its inode, the same at both ends.
  EXPECT_EQ(w->local_id, to_st.st_ino);
  EXPECT_EQ(w->peer_id, to_st.st_ino);
  EXPECT_EQ(r->local_id, from_st.st_ino);
  EXPECT_EQ(r->peer_id, from_st.st_ino);
  EXPECT_EQ(Stream(w->key, Direction::kEgress), kReq1 + kReq2);
  EXPECT_TRUE(DataFor(w->key, Direction::kIngress).empty());
  EXPECT_EQ(Stream(r->key, Direction::kIngress), kResp1 + kResp2);
  EXPECT_TRUE(DataFor(r->key, Direction::kEgress).empty());
  EXPECT_EQ(CloseFor(w->key)->bytes_sent, kReq1.size() + kReq2.size());
  EXPECT_EQ(CloseFor(r->key)->bytes_received, kResp1.size() + kResp2.size());
}

// fd 2 as a file (what a log redirect gives): kind stderr, egress only; fd 2 as a pipe
// (a parent reading the agent's stderr): a pipe connection on fd 2.
TEST_F(AgentCaptureTest, MarkedProcessStderrWritesAreCaptured) {
  ASSERT_TRUE(source_->MarkAgent(getpid()).ok());
  const int saved = dup(2);
  ASSERT_GE(saved, 0);
  char path[] = "/tmp/kspan-stderr-XXXXXX";
  const int file = mkstemp(path);
  ASSERT_GE(file, 0);
  unlink(path);
  const std::string log1 = "agent: calling tool lookup\n", log2 = "agent: done\n";
  ASSERT_EQ(dup2(file, 2), 2);
  ASSERT_EQ(write(2, log1.data(), log1.size()), static_cast<ssize_t>(log1.size()));
  ASSERT_EQ(write(2, log2.data(), log2.size()), static_cast<ssize_t>(log2.size()));
  ASSERT_EQ(lseek(2, 0, SEEK_SET), 0);
  char back[8];
  ASSERT_EQ(read(2, back, sizeof(back)), static_cast<ssize_t>(sizeof(back)));  // not captured: egress only
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(dup2(p[1], 2), 2);
  ASSERT_EQ(write(2, log1.data(), log1.size()), static_cast<ssize_t>(log1.size()));
  ASSERT_EQ(dup2(saved, 2), 2);
  close(saved);
  close(file);
  close(p[0]);
  close(p[1]);

  std::vector<const events::ConnOpenEvent*> fd2;
  ASSERT_TRUE(PollUntil([&] {
    fd2.clear();
    for (const auto& o : cap_.opens) {
      if (o.key.pid == static_cast<uint32_t>(getpid()) && o.key.fd == 2) fd2.push_back(&o);
    }
    return fd2.size() >= 2 && !DataFor(fd2[1]->key, Direction::kEgress).empty();
  }));
  EXPECT_EQ(fd2[0]->kind, ConnKind::kStderr);
  EXPECT_EQ(fd2[0]->tuple.family, AF_UNSPEC);
  EXPECT_EQ(Stream(fd2[0]->key, Direction::kEgress), log1 + log2);
  EXPECT_TRUE(DataFor(fd2[0]->key, Direction::kIngress).empty());
  EXPECT_EQ(fd2[1]->kind, ConnKind::kPipe) << "a pipe on fd 2 is a pipe";
  EXPECT_EQ(Stream(fd2[1]->key, Direction::kEgress), log1);
  ASSERT_NE(CloseFor(fd2[0]->key), nullptr) << "dup2 over a tracked fd ends it";
  EXPECT_EQ(CloseFor(fd2[0]->key)->bytes_sent, log1.size() + log2.size());
}

// The flags choose: stdio only leaves the process's pipes alone.
TEST_F(AgentCaptureTest, FlagsChooseLocalOrStdio) {
  ASSERT_TRUE(source_->MarkAgent(getpid(), KSPAN_AGENT_F_STDIO).ok());
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(write(p[1], kReq1.data(), kReq1.size()), static_cast<ssize_t>(kReq1.size()));
  ASSERT_EQ(ReadN(p[0], kReq1.size()), kReq1);
  // Now local IPC too: the pipe's ends were cached as not tracked, and marking again
  // drops that, so the next write is captured.
  ASSERT_TRUE(source_->MarkAgent(getpid(), KSPAN_AGENT_F_LOCAL).ok());
  ASSERT_EQ(write(p[1], kReq2.data(), kReq2.size()), static_cast<ssize_t>(kReq2.size()));
  ASSERT_TRUE(PollUntil(
      [&] { return OpenFor(p[1]) != nullptr && !DataFor(OpenFor(p[1])->key, Direction::kEgress).empty(); }));
  EXPECT_EQ(Stream(OpenFor(p[1])->key, Direction::kEgress), kReq2);
  EXPECT_EQ(OpenFor(p[0]), nullptr) << "the read end has not been used since";
  EXPECT_FALSE(source_->MarkAgent(getpid(), 0).ok());
  EXPECT_FALSE(source_->MarkAgent(getpid(), 0x80).ok());
  close(p[0]);
  close(p[1]);
}

// An unmarked process's pipes and Unix sockets cost the negative cache and send nothing;
// a TCP write afterwards shows that the ring buffer was drained past them.
TEST_F(AgentCaptureTest, UnmarkedProcessPipeTrafficProducesNothing) {
  int p[2], sv[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(write(p[1], kReq1.data(), kReq1.size()), static_cast<ssize_t>(kReq1.size()));
    ASSERT_EQ(ReadN(p[0], kReq1.size()), kReq1);
    ASSERT_EQ(write(sv[0], kReq2.data(), kReq2.size()), static_cast<ssize_t>(kReq2.size()));
    ASSERT_EQ(ReadN(sv[1], kReq2.size()), kReq2);
  }
  // fd 2 too: a file, written by an unmarked process.
  const int saved = dup(2);
  char path[] = "/tmp/kspan-stderr-XXXXXX";
  const int file = mkstemp(path);
  unlink(path);
  ASSERT_EQ(dup2(file, 2), 2);
  ASSERT_EQ(write(2, "log\n", 4), 4);
  ASSERT_EQ(dup2(saved, 2), 2);
  close(saved);
  close(file);
  // Sentinel: a TCP connection's write comes after all of the above.
  int l = -1;
  const int c = TcpSentinel(&l);
  ASSERT_GE(c, 0);
  for (const auto& o : cap_.opens) EXPECT_EQ(o.kind, ConnKind::kTcp) << "fd " << o.key.fd;
  for (const auto& d : cap_.data) EXPECT_EQ(d.e.key.fd, c) << "only the TCP write: " << d.bytes;
  for (int fd : {p[0], p[1], sv[0], sv[1], l, c}) close(fd);
}

// Files (bpf/file_write.bpf.c): a marked process's regular file opened for writing, written
// with write(2) and pwrite(2), is one event at its close, with its path, bytes and write
// calls; a file only read, and any file of an unmarked process, send nothing.
TEST_F(AgentCaptureTest, MarkedProcessFileWritesAreReportedAtClose) {
  const std::string unmarked = "/tmp/kspan-fw-unmarked-" + std::to_string(getpid());
  const std::string marked = "/tmp/kspan-fw-marked-" + std::to_string(getpid());
  int f = open(unmarked.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(f, 0);
  ASSERT_EQ(write(f, "before\n", 7), 7);
  close(f);
  ASSERT_TRUE(source_->MarkAgent(getpid()).ok());
  f = open(marked.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(f, 0);
  ASSERT_EQ(write(f, "note\n", 5), 5);
  ASSERT_EQ(pwrite(f, "pad", 3, 100), 3);
  close(f);
  f = open(unmarked.c_str(), O_RDONLY);  // read only: not followed
  ASSERT_GE(f, 0);
  char back[4];
  ASSERT_EQ(read(f, back, sizeof(back)), 4);
  close(f);
  ASSERT_TRUE(source_->UnmarkAgent(getpid()).ok());
  f = open(unmarked.c_str(), O_WRONLY | O_APPEND);  // unmarked again
  ASSERT_GE(f, 0);
  ASSERT_EQ(write(f, "after\n", 6), 6);
  close(f);
  int l = -1;
  const int c = TcpSentinel(&l);
  ASSERT_GE(c, 0);
  unlink(unmarked.c_str());
  unlink(marked.c_str());
  ASSERT_EQ(cap_.file_writes.size(), 1u) << "only the marked process's written file";
  const events::FileWriteEvent& w = cap_.file_writes[0];
  EXPECT_EQ(w.pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(w.path, marked);
  EXPECT_EQ(w.bytes, 8u);
  EXPECT_EQ(w.writes, 2u);
  EXPECT_GT(w.first_ns, 0u);
  EXPECT_LE(w.first_ns, w.last_ns);
  EXPECT_LE(w.last_ns, w.ts_ns);
  close(l);
  close(c);
}

// A process found to be an agent after it used its pipes: those fds were cached as not
// tracked, and MarkAgent drops that, so what follows is captured (mid-stream, positions
// from the first captured byte). UnmarkAgent ends it and returns the connections.
TEST_F(AgentCaptureTest, MarkAgentAfterFdsWereSeenAndUnmark) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(write(p[1], kReq1.data(), kReq1.size()), static_cast<ssize_t>(kReq1.size()));
  ASSERT_EQ(ReadN(p[0], kReq1.size()), kReq1);
  ASSERT_TRUE(source_->MarkAgent(getpid()).ok());
  ASSERT_EQ(write(p[1], kReq2.data(), kReq2.size()), static_cast<ssize_t>(kReq2.size()));
  ASSERT_EQ(ReadN(p[0], kReq2.size()), kReq2);
  ASSERT_TRUE(PollUntil([&] {
    return OpenFor(p[1]) && OpenFor(p[0]) && !DataFor(OpenFor(p[0])->key, Direction::kIngress).empty();
  }));
  const ConnKey wkey = OpenFor(p[1])->key, rkey = OpenFor(p[0])->key;
  EXPECT_EQ(OpenFor(p[1])->kind, ConnKind::kPipe);
  EXPECT_TRUE(OpenFor(p[1])->midstream);
  EXPECT_EQ(Stream(wkey, Direction::kEgress), kReq2);
  EXPECT_EQ(Stream(rkey, Direction::kIngress), kReq2);

  auto stopped = source_->UnmarkAgent(getpid());
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  bool has_w = false, has_r = false;
  for (const ConnKey& k : *stopped) {
    has_w |= k == wkey;
    has_r |= k == rkey;
  }
  EXPECT_TRUE(has_w && has_r) << stopped->size() << " connections returned";
  const size_t events_before = cap_.data.size();
  ASSERT_EQ(write(p[1], kReq1.data(), kReq1.size()), static_cast<ssize_t>(kReq1.size()));
  ASSERT_EQ(ReadN(p[0], kReq1.size()), kReq1);
  int l = -1;
  const int c = TcpSentinel(&l);
  ASSERT_GE(c, 0);
  for (size_t i = events_before; i < cap_.data.size(); ++i) {
    EXPECT_NE(cap_.data[i].e.key.fd, p[1]);
    EXPECT_NE(cap_.data[i].e.key.fd, p[0]);
  }
  close(c);
  close(l);
  auto again = source_->UnmarkAgent(getpid());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  close(p[0]);
  close(p[1]);
}

// Real runtimes, each an agent spawning its tool server over stdio: node (socketpairs)
// and python (pipes). Every process is traced; the agent is marked before it starts its
// child (it waits for a file), and its exchange is found among its connections.
class RuntimeAgentTest : public AgentCaptureTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Open({})); }

  void RunAgent(const std::vector<std::string>& argv, ConnKind want) {
    const std::string dir = testing::MakeTempDir("kspan-agent");
    const std::string go = dir + "/go";
    std::vector<std::string> args = argv;
    args.push_back("agent");
    args.push_back(go);
    testing::Subprocess agent;
    ASSERT_TRUE(agent.Start(args));
    ASSERT_TRUE(source_->MarkAgent(static_cast<uint32_t>(agent.pid())).ok());
    ASSERT_EQ(close(open(go.c_str(), O_CREAT | O_WRONLY, 0600)), 0);
    const int status = agent.Wait(std::chrono::seconds(20));
    ASSERT_EQ(status, 0) << agent.Stderr();
    const auto pid = static_cast<uint32_t>(agent.pid());
    // The agent's connections by what they carried.
    const events::ConnOpenEvent* to_server = nullptr;
    const events::ConnOpenEvent* from_server = nullptr;
    const events::ConnOpenEvent* log = nullptr;
    ASSERT_TRUE(PollUntil(
        [&] {
          for (const auto& o : cap_.opens) {
            if (o.key.pid != pid) continue;
            const std::string out = Stream(o.key, Direction::kEgress, false);
            const std::string in = Stream(o.key, Direction::kIngress, false);
            if (out.rfind(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})", 0) == 0) to_server = &o;
            if (in.rfind(R"({"jsonrpc":"2.0","id":1,"result")", 0) == 0) from_server = &o;
            if (out.find("agent: got id=2\n") != std::string::npos) log = &o;
          }
          return to_server && from_server && log;
        },
        std::chrono::seconds(10)))
        << "to server " << !!to_server << ", from server " << !!from_server << ", log " << !!log;
    EXPECT_EQ(to_server->kind, want);
    EXPECT_EQ(from_server->kind, want);
    const std::string out = Stream(to_server->key, Direction::kEgress);
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
    EXPECT_NE(out.find(R"("method":"tools/call")"), std::string::npos) << out;
    const std::string in = Stream(from_server->key, Direction::kIngress);
    EXPECT_EQ(std::count(in.begin(), in.end(), '\n'), 2) << in;
    EXPECT_NE(in.find(R"("id":2)"), std::string::npos) << in;
    // Subprocess sends stderr to a file: a stdio connection of its own kind.
    EXPECT_EQ(log->kind, ConnKind::kStderr);
    EXPECT_EQ(log->key.fd, 2);
    EXPECT_EQ(Stream(log->key, Direction::kEgress), "agent: got id=1\nagent: got id=2\n");

    // The tool server it exec'd was marked by the kernel at exec: its side of the same
    // channel is captured whole, from the first request, and names the channel alike.
    const events::ConnOpenEvent* server_in = nullptr;
    ASSERT_TRUE(PollUntil([&] {
      for (const auto& o : cap_.opens) {
        if (o.key.pid == pid || o.kind != want) continue;
        if (Stream(o.key, Direction::kIngress, false)
                .rfind(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})", 0) == 0) {
          server_in = &o;
        }
      }
      return server_in != nullptr;
    })) << "the child's side was not captured";
    EXPECT_EQ(Stream(server_in->key, Direction::kIngress), out);
    if (want == ConnKind::kPipe) {
      EXPECT_EQ(server_in->local_id, to_server->local_id) << "one pipe";
      EXPECT_EQ(server_in->peer_id, to_server->local_id);
    } else {
      EXPECT_EQ(server_in->local_id, to_server->peer_id) << "the two ends of one socketpair";
      EXPECT_EQ(server_in->peer_id, to_server->local_id);
    }
    // Only its local channels: its stderr (the agent's log file) is not an agent's output.
    for (const auto& o : cap_.opens) {
      if (o.key.pid == server_in->key.pid) {
        EXPECT_NE(o.kind, ConnKind::kStderr);
      }
    }
  }
};

TEST_F(RuntimeAgentTest, NodeAgentWithStdioChildOverSocketpairs) {
  RunAgent({"node", std::string(KSPAN_SOURCE_DIR) + "/tests/apps/stdio_agent.js"}, ConnKind::kUnix);
}

TEST_F(RuntimeAgentTest, PythonAgentWithStdioChildOverPipes) {
  RunAgent({"/usr/bin/python3", std::string(KSPAN_SOURCE_DIR) + "/tests/apps/stdio_agent.py"},
           ConnKind::kPipe);
}

}  // namespace
}  // namespace kspan
