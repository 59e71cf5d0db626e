// The TCP-option trace-context carrier (bpf/carrier.bpf.c) between two network namespaces
// joined by a veth pair this test creates and removes: the context crosses, each request's
// context is tied to its first byte, and nothing about the traffic changes (bytes, FIONREAD,
// MSG_PEEK, detaching mid-stream). The carrier attaches to a cgroup v2 the test creates
// and moves itself into, so no other process's sockets are touched. Needs root and a
// kernel that loads sockops programs; where it cannot, the test fails with the reason.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "carrier/tcp_option_carrier.h"
#include "testing/subprocess.h"

namespace kspan {
namespace {

using carrier::CarrierCounters;
using carrier::TcpOptionCarrier;
using carrier::WireContext;
using namespace std::chrono_literals;
using testing::RunCommand;
using testing::Subprocess;
using testing::WaitFor;

constexpr char kCgroupRoot[] = "/sys/fs/cgroup/unified";  // cgroup v2 on this host layout
constexpr char kAddrA[] = "10.231.0.1";
constexpr char kAddrB[] = "10.231.0.2";

bool Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 10s).exit_code == 0;
}

std::string V2Root() {
  // cgroup v2 is /sys/fs/cgroup itself on a unified host, /sys/fs/cgroup/unified on a hybrid one.
  struct stat st {};
  if (stat("/sys/fs/cgroup/cgroup.procs", &st) == 0 &&
      stat("/sys/fs/cgroup/cgroup.subtree_control", &st) == 0)
    return "/sys/fs/cgroup";
  return kCgroupRoot;
}

std::string OwnV2Cgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "/";
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// Two namespaces, a veth pair, and a cgroup holding this process, for the whole suite.
class CarrierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string id = std::to_string(getpid() % 100000);
    ns_a_ = "kscarA" + id;
    ns_b_ = "kscarB" + id;
    ASSERT_TRUE(Ip({"netns", "add", ns_a_}));
    ASSERT_TRUE(Ip({"netns", "add", ns_b_}));
    const std::string va = "kcA" + id, vb = "kcB" + id;  // <= 15 characters
    ASSERT_TRUE(Ip({"link", "add", va, "netns", ns_a_, "type", "veth", "peer", "name", vb, "netns", ns_b_}));
    ASSERT_TRUE(Ip({"-n", ns_a_, "addr", "add", std::string(kAddrA) + "/24", "dev", va}));
    ASSERT_TRUE(Ip({"-n", ns_b_, "addr", "add", std::string(kAddrB) + "/24", "dev", vb}));
    for (const auto& [ns, dev] : {std::pair{ns_a_, va}, std::pair{ns_b_, vb}}) {
      ASSERT_TRUE(Ip({"-n", ns, "link", "set", dev, "up"}));
      ASSERT_TRUE(Ip({"-n", ns, "link", "set", "lo", "up"}));
    }
    home_cgroup_ = V2Root() + OwnV2Cgroup();
    cgroup_ = V2Root() + "/kspan-carrier-test-" + id;
    ASSERT_TRUE(mkdir(cgroup_.c_str(), 0755) == 0 || errno == EEXIST) << std::strerror(errno);
    ASSERT_TRUE(WriteFile(cgroup_ + "/cgroup.procs", std::to_string(getpid()))) << "joining " << cgroup_;
  }
  static void TearDownTestSuite() {
    WriteFile(home_cgroup_ + "/cgroup.procs", std::to_string(getpid()));
    rmdir(cgroup_.c_str());
    Ip({"netns", "del", ns_a_});
    Ip({"netns", "del", ns_b_});
  }

  // Runs f with the calling thread in namespace `ns`, then returns it home.
  template <typename F>
  static void InNetns(const std::string& ns, F f) {
    const int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int target = open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(home, 0);
    ASSERT_GE(target, 0);
    ASSERT_EQ(setns(target, CLONE_NEWNET), 0) << std::strerror(errno);
    f();
    ASSERT_EQ(setns(home, CLONE_NEWNET), 0) << std::strerror(errno);
    close(home);
    close(target);
  }

  std::unique_ptr<TcpOptionCarrier> StartCarrier(uint64_t netns_cookie = 0, bool kernel_contexts = false,
                                                 bool exclude_self = true) {
    auto c = TcpOptionCarrier::Start({.cgroup_path = cgroup_,
                                      .netns_cookie = netns_cookie,
                                      .kernel_contexts = kernel_contexts,
                                      .self_tgid = exclude_self ? static_cast<uint32_t>(getpid()) : 0u});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // A connection from namespace A (client) to namespace B (server).
  void Connect() {
    InNetns(ns_b_, [&] {
      listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      inet_pton(AF_INET, kAddrB, &a.sin_addr);
      ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
      ASSERT_EQ(listen(listener_, 4), 0);
      socklen_t len = sizeof(a);
      getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
      port_ = ntohs(a.sin_port);
    });
    InNetns(ns_a_, [&] {
      client_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port_);
      inet_pton(AF_INET, kAddrB, &a.sin_addr);
      ASSERT_EQ(connect(client_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
    });
    server_ = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(server_, 0);
  }
  void TearDown() override {
    for (int fd : {client_, server_, listener_}) {
      if (fd >= 0) close(fd);
    }
  }

  static std::string ReadExactly(int fd, size_t n) {
    std::string out;
    char buf[65536];
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      const ssize_t r = read(fd, buf, std::min(sizeof(buf), n - out.size()));
      if (r <= 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }
  static void WriteAll(int fd, const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      const ssize_t w = write(fd, s.data() + done, s.size() - done);
      ASSERT_GT(w, 0) << std::strerror(errno);
      done += static_cast<size_t>(w);
    }
  }

  static WireContext Ctx(uint8_t seed) {
    WireContext c;
    for (size_t i = 0; i < c.trace_id.size(); ++i) c.trace_id[i] = static_cast<uint8_t>(seed + i);
    for (size_t i = 0; i < c.span_id.size(); ++i) c.span_id[i] = static_cast<uint8_t>(0xA0 + seed + i);
    return c;
  }

  static inline std::string ns_a_, ns_b_, cgroup_, home_cgroup_;
  int listener_ = -1, client_ = -1, server_ = -1;
  uint16_t port_ = 0;
};

std::string Request(int i) {
  return "GET /r/" + std::to_string(i) + " HTTP/1.1\r\nHost: b\r\nUser-Agent: carrier-test\r\n\r\n";
}

TEST_F(CarrierTest, EachRequestsContextArrivesWithItsFirstByte) {
  auto c = StartCarrier();
  ASSERT_NE(c, nullptr);
  Connect();
  size_t sent = 0;
  for (int i = 0; i < 20; ++i) {
    const WireContext ctx = Ctx(static_cast<uint8_t>(i + 1));
    ASSERT_TRUE(c->SetOutgoing(client_, ctx).ok());
    const std::string req = Request(i);
    WriteAll(client_, req);
    ASSERT_EQ(ReadExactly(server_, req.size()), req);
    auto got = c->Incoming(server_);
    ASSERT_TRUE(got.has_value()) << "request " << i;
    EXPECT_EQ(got->context, ctx) << "request " << i;
    EXPECT_EQ(got->count, static_cast<uint32_t>(i + 1));
    // The context names the stream offset of its request's first byte.
    EXPECT_EQ(got->offset, sent) << "request " << i;
    sent += req.size();
    WriteAll(server_, "HTTP/1.1 204 No Content\r\n\r\n");
    ASSERT_EQ(ReadExactly(client_, 27).size(), 27u);
  }
  const CarrierCounters n = c->Counters();
  EXPECT_EQ(n.written, 20u);
  EXPECT_EQ(n.parsed, 20u);
  EXPECT_EQ(n.malformed, 0u);
  // The responses carried nothing: no context was set for the server's socket.
  EXPECT_FALSE(c->Incoming(client_).has_value());
}

TEST_F(CarrierTest, AllZeroIdsAreCountedAndIgnored) {
  auto c = StartCarrier();
  ASSERT_NE(c, nullptr);
  Connect();
  ASSERT_TRUE(c->SetOutgoing(client_, Ctx(7)).ok());
  WriteAll(client_, Request(0));
  ASSERT_EQ(ReadExactly(server_, Request(0).size()), Request(0));
  ASSERT_TRUE(c->SetOutgoing(client_, WireContext{}).ok());  // an invalid context on the wire
  WriteAll(client_, Request(1));
  ASSERT_EQ(ReadExactly(server_, Request(1).size()), Request(1));
  auto got = c->Incoming(server_);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->context, Ctx(7));  // the hostile value changed nothing
  EXPECT_EQ(got->count, 1u);
  EXPECT_EQ(c->Counters().malformed, 1u);
}

// What the agent joins on (carrier/wire_contexts.h): the kernel reports the client's send
// that started a request and the server's read that began at its carried segment, each
// with its process, thread, fd and time, and the context is the same at both ends.
TEST_F(CarrierTest, SendAndReadReportsNameTheirSyscalls) {
  auto c = StartCarrier(0, /*kernel_contexts=*/true, /*exclude_self=*/false);
  ASSERT_NE(c, nullptr);
  Connect();
  const uint32_t tid = static_cast<uint32_t>(gettid());
  for (int i = 0; i < 5; ++i) {
    const std::string req = Request(i);
    WriteAll(client_, req);
    ASSERT_EQ(ReadExactly(server_, req.size()), req);
    WriteAll(server_, "HTTP/1.1 204 No Content\r\n\r\n");
    ASSERT_EQ(ReadExactly(client_, 27).size(), 27u);
  }
  const std::vector<carrier::SentContext> sent = c->DrainSent();
  const std::vector<carrier::ReadContext> read = c->DrainRead();
  std::vector<carrier::SentContext> ours;
  for (const auto& s : sent) {
    if (s.tgid == static_cast<uint32_t>(getpid()) && s.fd == client_) ours.push_back(s);
  }
  std::vector<carrier::ReadContext> reads;
  for (const auto& r : read) {
    if (r.tgid == static_cast<uint32_t>(getpid()) && r.fd == server_) reads.push_back(r);
  }
  ASSERT_EQ(ours.size(), 5u);
  ASSERT_EQ(reads.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ours[i].tid, tid);
    EXPECT_EQ(reads[i].tid, tid);
    EXPECT_EQ(reads[i].context, ours[i].context) << "request " << i;
    EXPECT_EQ(reads[i].offset, ours[i].offset) << "request " << i;
    EXPECT_LT(ours[i].ts_ns, reads[i].ts_ns) << "sent before it was read";
    if (i > 0) EXPECT_LT(reads[i - 1].ts_ns, ours[i].ts_ns);
  }
  EXPECT_EQ(c->Counters().unplaced, 0u);
}

// A context whose first byte lands in the middle of a server's read (behind bytes of an
// earlier request still unread) belongs to no request the kernel can name: none is
// reported, and it is counted.
TEST_F(CarrierTest, ContextInTheMiddleOfAReadIsUnplaced) {
  auto c = StartCarrier(0, /*kernel_contexts=*/true, /*exclude_self=*/false);
  ASSERT_NE(c, nullptr);
  Connect();
  WriteAll(client_, Request(0));                       // context 1
  WriteAll(server_, "HTTP/1.1 100 Continue\r\n\r\n");  // an answer before it is read
  ASSERT_EQ(ReadExactly(client_, 25).size(), 25u);
  WriteAll(client_, Request(1));  // context 2: an answer came since the first
  ASSERT_TRUE(WaitFor(
      [&] {
        int n = 0;
        return ioctl(server_, FIONREAD, &n) == 0 &&
               n == static_cast<int>(Request(0).size() + Request(1).size());
      },
      5s));
  ASSERT_EQ(ReadExactly(server_, Request(0).size() + Request(1).size()), Request(0) + Request(1));
  EXPECT_EQ(c->DrainSent().size(), 2u);
  for (const auto& r : c->DrainRead()) EXPECT_NE(r.fd, server_) << "a read of both requests names neither";
  EXPECT_EQ(c->Counters().unplaced, 1u);
}

// Every shape of write arrives byte-identical: the carrier lives in the TCP header.
TEST_F(CarrierTest, PayloadsArriveByteIdentical) {
  auto c = StartCarrier();
  ASSERT_NE(c, nullptr);
  Connect();
  std::mt19937 rng(23);
  auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng());
    return s;
  };
  uint8_t seed = 1;
  for (size_t n : {1u, 100u, 1399u, 1420u, 1448u, 5000u, 65536u, 300000u}) {
    ASSERT_TRUE(c->SetOutgoing(client_, Ctx(seed++)).ok());
    const std::string payload = random_bytes(n);
    WriteAll(client_, payload);
    ASSERT_EQ(ReadExactly(server_, n), payload) << n << " bytes by write";
  }
  {  // two pipelined requests in one write
    ASSERT_TRUE(c->SetOutgoing(client_, Ctx(seed++)).ok());
    const std::string two = Request(1) + Request(2);
    WriteAll(client_, two);
    ASSERT_EQ(ReadExactly(server_, two.size()), two);
  }
  {  // writev of three pieces
    ASSERT_TRUE(c->SetOutgoing(client_, Ctx(seed++)).ok());
    std::string a = "POST /w HTTP/1.1\r\n", b = "Content-Length: 5000\r\n\r\n", body = random_bytes(5000);
    iovec iov[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {body.data(), body.size()}};
    ASSERT_EQ(writev(client_, iov, 3), static_cast<ssize_t>(a.size() + b.size() + body.size()));
    ASSERT_EQ(ReadExactly(server_, a.size() + b.size() + body.size()), a + b + body);
  }
  {  // sendfile from a file
    char path[] = "/tmp/kspan-carrier-XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string content = random_bytes(100000);
    ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    off_t off = 0;
    ASSERT_TRUE(c->SetOutgoing(client_, Ctx(seed++)).ok());
    size_t left = content.size();
    std::string got;
    while (left > 0) {
      const ssize_t s = sendfile(client_, fd, &off, left);
      ASSERT_GT(s, 0) << std::strerror(errno);
      left -= static_cast<size_t>(s);
    }
    ASSERT_EQ(ReadExactly(server_, content.size()), content) << "sendfile";
    close(fd);
    unlink(path);
  }
  {  // a request split across writes with a pause between them
    ASSERT_TRUE(c->SetOutgoing(client_, Ctx(seed++)).ok());
    const std::string req = Request(9);
    WriteAll(client_, req.substr(0, 10));
    std::this_thread::sleep_for(20ms);
    WriteAll(client_, req.substr(10));
    ASSERT_EQ(ReadExactly(server_, req.size()), req);
  }
  const CarrierCounters n = c->Counters();
  // Each context was written once, or counted where its first segment had no room.
  EXPECT_EQ(n.written + n.too_big + n.no_space, static_cast<uint64_t>(seed - 1));
  EXPECT_EQ(n.parsed, n.written);
  EXPECT_EQ(n.malformed, 0u);
}

// Under load, with the kernel setting a context for every request: 8 connections take turns,
// 300 exchanges each of random sizes (1 B to 20 KB each way); every byte arrives, in order,
// and every context set was either written or counted.
TEST_F(CarrierTest, NothingLostOrReorderedUnderLoad) {
  auto c = StartCarrier(0, /*kernel_contexts=*/true, /*exclude_self=*/false);
  ASSERT_NE(c, nullptr);
  struct Link {
    int client = -1, server = -1;
  };
  std::vector<Link> links;
  for (int i = 0; i < 8; ++i) {
    Connect();
    links.push_back({client_, server_});
    client_ = server_ = -1;
    close(listener_);
    listener_ = -1;
  }
  std::mt19937 rng(2323);
  auto bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng());
    return s;
  };
  std::uniform_int_distribution<size_t> size(1, 20000);
  size_t reports = 0;
  for (int round = 0; round < 300; ++round) {
    for (auto& l : links) {
      const std::string req = bytes(size(rng)), resp = bytes(size(rng));
      WriteAll(l.client, req);
      ASSERT_EQ(ReadExactly(l.server, req.size()), req) << "round " << round;
      WriteAll(l.server, resp);
      ASSERT_EQ(ReadExactly(l.client, resp.size()), resp) << "round " << round;
    }
    // Read the reports as the agent does (every few milliseconds): one thread here is both
    // the servers and the clients, so each request also reports the fresh trace its
    // server end started (the same thread's next request continues it).
    reports += c->DrainSent().size() + c->DrainRead().size() + c->DrainReceived().size();
  }
  EXPECT_GE(reports, 2u * 8u * 300u);
  const CarrierCounters n = c->Counters();
  EXPECT_GE(n.set, 8u * 300u);  // the test's own requests; other processes' too when on the host
  EXPECT_GT(n.written, 0u);
  EXPECT_EQ(n.malformed, 0u);
  EXPECT_EQ(n.events_lost, 0u);
  for (auto& l : links) {
    close(l.client);
    close(l.server);
  }
}

// ioctl(FIONREAD) and MSG_PEEK see exactly the bytes sent (OBI's sockmap made FIONREAD
// return 0 on some kernels; the carrier has no sockmap and never touches the receive queue).
TEST_F(CarrierTest, FionreadAndPeekSeeTheBytesSent) {
  auto c = StartCarrier();
  ASSERT_NE(c, nullptr);
  Connect();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c->SetOutgoing(client_, Ctx(static_cast<uint8_t>(i + 1))).ok());
    const std::string req = Request(i);
    WriteAll(client_, req);
    int avail = 0;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      ASSERT_EQ(ioctl(server_, FIONREAD, &avail), 0);
      if (avail >= static_cast<int>(req.size())) break;
      std::this_thread::sleep_for(1ms);
    }
    EXPECT_EQ(avail, static_cast<int>(req.size()));
    std::string peek(req.size(), '\0');
    ASSERT_EQ(recv(server_, peek.data(), peek.size(), MSG_PEEK), static_cast<ssize_t>(req.size()));
    EXPECT_EQ(peek, req);
    ASSERT_EQ(ioctl(server_, FIONREAD, &avail), 0);
    EXPECT_EQ(avail, static_cast<int>(req.size())) << "peek consumed nothing";
    ASSERT_EQ(ReadExactly(server_, req.size()), req);
    ASSERT_EQ(ioctl(server_, FIONREAD, &avail), 0);
    EXPECT_EQ(avail, 0);
  }
  EXPECT_EQ(c->Counters().parsed, 10u);
}

// The agent going away (its link closed: exit, crash or kill -9 all close it) mid-stream
// leaves the connection working, byte for byte, and nothing more is written.
TEST_F(CarrierTest, DetachingMidStreamLeavesTheConnectionWorking) {
  auto c = StartCarrier();
  ASSERT_NE(c, nullptr);
  Connect();
  ASSERT_TRUE(c->SetOutgoing(client_, Ctx(1)).ok());
  WriteAll(client_, Request(0));
  ASSERT_EQ(ReadExactly(server_, Request(0).size()), Request(0));
  ASSERT_TRUE(c->SetOutgoing(client_, Ctx(2)).ok());  // pending when the agent goes
  c.reset();
  for (int i = 1; i <= 100; ++i) {
    WriteAll(client_, Request(i));
    ASSERT_EQ(ReadExactly(server_, Request(i).size()), Request(i)) << i;
    WriteAll(server_, "HTTP/1.1 204 No Content\r\n\r\n");
    ASSERT_EQ(ReadExactly(client_, 27).size(), 27u) << i;
  }
}

// Scoped to one namespace (as two agents on one machine simulate two hosts): a socket in
// the other namespace neither writes nor parses.
TEST_F(CarrierTest, NetnsScopeLeavesOtherNamespacesAlone) {
  uint64_t cookie_b = 0;
  InNetns(ns_b_, [&] {
    auto k = carrier::CurrentNetnsCookie();
    ASSERT_TRUE(k.ok()) << k.status().ToString();
    cookie_b = *k;
  });
  auto c = StartCarrier(cookie_b);
  ASSERT_NE(c, nullptr);
  Connect();
  // The client is in A: out of scope, the carrier does not know its connection.
  EXPECT_EQ(c->SetOutgoing(client_, Ctx(1)).code(), StatusCode::kNotFound);
  WriteAll(client_, Request(0));
  ASSERT_EQ(ReadExactly(server_, Request(0).size()), Request(0));
  ASSERT_TRUE(c->SetOutgoing(server_, Ctx(2)).ok());  // server is in B: written, but A parses nothing
  WriteAll(server_, "HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_EQ(ReadExactly(client_, 27).size(), 27u);
  const CarrierCounters n = c->Counters();
  EXPECT_EQ(n.written, 1u);
  EXPECT_EQ(n.parsed, 0u);
  EXPECT_FALSE(c->Incoming(server_).has_value());
  EXPECT_FALSE(c->Incoming(client_).has_value());
}

// Unmodified programs: curl in namespace A, python's http.server in B, nothing told to
// either. The kernel gives each new request of the client a fresh context, reports it, and
// the server's end receives exactly that context for the request at that offset.
TEST_F(CarrierTest, UnmodifiedClientRequestsCarryKernelContexts) {
  auto c = StartCarrier(0, /*kernel_contexts=*/true);
  ASSERT_NE(c, nullptr);
  const int port = 18000 + getpid() % 1000;
  Subprocess server;
  ASSERT_TRUE(server.Start({"ip", "netns", "exec", ns_b_, "/usr/bin/python3", "-m", "http.server",
                            std::to_string(port), "--bind", kAddrB, "--protocol", "HTTP/1.1"}));
  const std::string base = "http://" + std::string(kAddrB) + ":" + std::to_string(port);
  ASSERT_TRUE(WaitFor(
      [&] {
        return RunCommand({"ip", "netns", "exec", ns_a_, "curl", "-s", "-o", "/dev/null", base + "/"}, 5s)
                   .exit_code == 0;
      },
      10s));
  c->DrainSent();  // the readiness probes'
  c->DrainReceived();
  // 20 connections of one request each, then one keep-alive connection of 5 requests.
  std::vector<int> curl_pids;
  for (int i = 0; i < 20; ++i) {
    Subprocess curl;
    ASSERT_TRUE(curl.Start({"ip", "netns", "exec", ns_a_, "curl", "-s", "-o", "/dev/null", base + "/?one"}));
    ASSERT_EQ(curl.Wait(10s), 0) << curl.Stderr();
    curl_pids.push_back(curl.pid());
  }
  Subprocess keepalive;
  std::vector<std::string> argv{"ip", "netns", "exec", ns_a_, "curl", "-s"};
  for (int i = 0; i < 5; ++i) argv.insert(argv.end(), {"-o", "/dev/null", base + "/?k=" + std::to_string(i)});
  ASSERT_TRUE(keepalive.Start(argv));
  ASSERT_EQ(keepalive.Wait(10s), 0) << keepalive.Stderr();
  curl_pids.push_back(keepalive.pid());

  const std::vector<carrier::SentContext> sent = c->DrainSent();
  std::map<uint64_t, std::vector<carrier::SentContext>> by_conn;
  for (const auto& s : sent) {
    if (std::find(curl_pids.begin(), curl_pids.end(), static_cast<int>(s.tgid)) != curl_pids.end())
      by_conn[s.cookie].push_back(s);
  }
  ASSERT_EQ(by_conn.size(), 21u) << "one connection per curl";
  // Each server end received the context its client's last request carried, at its offset.
  std::map<std::string, carrier::ReceivedContext> received;  // by trace id bytes
  for (const auto& conn : c->Connections()) {
    if (!conn.client && conn.received)
      received[std::string(conn.received->context.trace_id.begin(), conn.received->context.trace_id.end())] =
          *conn.received;
  }
  int matched = 0;
  for (const auto& [cookie, reqs] : by_conn) {
    ASSERT_FALSE(reqs.empty());
    EXPECT_EQ(reqs.front().offset, 0u) << "a connection's first request starts at offset 0";
    for (size_t i = 1; i < reqs.size(); ++i) EXPECT_GT(reqs[i].offset, reqs[i - 1].offset);
    const auto& last = reqs.back();
    auto it = received.find(std::string(last.context.trace_id.begin(), last.context.trace_id.end()));
    if (it == received.end()) continue;
    EXPECT_EQ(it->second.context, last.context);
    EXPECT_EQ(it->second.offset, last.offset);
    EXPECT_EQ(it->second.count, reqs.size());
    ++matched;
  }
  EXPECT_EQ(matched, 21);
  size_t keepalive_requests = 0;
  for (const auto& [cookie, reqs] : by_conn) keepalive_requests = std::max(keepalive_requests, reqs.size());
  EXPECT_EQ(keepalive_requests, 5u) << "each request on the keep-alive connection got its own context";
  // Every request's context arrived, each at its request's offset: the keep-alive
  // connection's five too, not only its last.
  const std::vector<carrier::ReceivedEvent> arrived = c->DrainReceived();
  size_t found = 0;
  for (const auto& [cookie, reqs] : by_conn) {
    for (const auto& r : reqs) {
      found += std::count_if(arrived.begin(), arrived.end(), [&](const carrier::ReceivedEvent& a) {
        return a.context == r.context && a.offset == r.offset;
      });
    }
  }
  EXPECT_EQ(found, 25u) << "20 single requests and 5 keep-alive ones";
  EXPECT_EQ(c->Counters().events_lost, 0u);
  server.Stop(SIGTERM, 5s);
}

// A chain across the namespaces, nothing instrumented: curl (A) -> a python service (B)
// that calls python's http.server (A) on the thread handling each request. The kernel
// carries curl's trace to B, and B's call back to A continues that trace with a new span.
TEST_F(CarrierTest, ChainContinuesTheCallersTraceOnTheHandlingThread) {
  auto c = StartCarrier(0, /*kernel_contexts=*/true);
  ASSERT_NE(c, nullptr);
  const int port_a = 20000 + getpid() % 1000, port_b = port_a + 1000;
  Subprocess backend, middle;
  ASSERT_TRUE(backend.Start({"ip", "netns", "exec", ns_a_, "/usr/bin/python3", "-m", "http.server",
                             std::to_string(port_a), "--bind", kAddrA, "--protocol", "HTTP/1.1"}));
  const std::string upstream = "http://" + std::string(kAddrA) + ":" + std::to_string(port_a) + "/?from-b";
  ASSERT_TRUE(middle.Start({"ip", "netns", "exec", ns_b_, "/usr/bin/python3",
                            std::string(KSPAN_SOURCE_DIR) + "/tests/apps/carrier_forward.py", kAddrB,
                            std::to_string(port_b), upstream}));
  const std::string url = "http://" + std::string(kAddrB) + ":" + std::to_string(port_b) + "/";
  ASSERT_TRUE(WaitFor(
      [&] {
        return RunCommand({"ip", "netns", "exec", ns_a_, "curl", "-sf", "-o", "/dev/null", url}, 5s)
                   .exit_code == 0;
      },
      15s));
  c->DrainSent();
  std::vector<int> curl_pids;
  for (int i = 0; i < 10; ++i) {
    Subprocess curl;
    ASSERT_TRUE(curl.Start({"ip", "netns", "exec", ns_a_, "curl", "-sf", "-o", "/dev/null", url}));
    ASSERT_EQ(curl.Wait(10s), 0) << curl.Stderr();
    curl_pids.push_back(curl.pid());
  }
  const auto sent = c->DrainSent();
  auto key = [](const WireContext& w) { return std::string(w.trace_id.begin(), w.trace_id.end()); };
  std::map<std::string, WireContext> first_hop, second_hop;  // by trace id
  for (const auto& s : sent) {
    if (std::find(curl_pids.begin(), curl_pids.end(), static_cast<int>(s.tgid)) != curl_pids.end())
      first_hop[key(s.context)] = s.context;
    else if (static_cast<int>(s.tgid) == middle.pid())
      second_hop[key(s.context)] = s.context;
  }
  ASSERT_EQ(first_hop.size(), 10u) << "one trace per curl";
  ASSERT_EQ(second_hop.size(), 10u) << "the middle service's calls, one trace each";
  for (const auto& [trace, ctx] : first_hop) {
    auto it = second_hop.find(trace);
    ASSERT_NE(it, second_hop.end()) << "the middle's call continues the caller's trace";
    EXPECT_NE(it->second.span_id, ctx.span_id) << "with a span of its own";
  }
  // A request without context on the same connection (so the same handling thread) after
  // one with: the middle's call starts a new trace, it does not inherit the stale one. The
  // test process is the client here (its own writes get no kernel context; it sets one for
  // its first request only).
  int keep = -1;
  InNetns(ns_a_, [&] {
    keep = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port_b));
    inet_pton(AF_INET, kAddrB, &sa.sin_addr);
    ASSERT_EQ(connect(keep, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << std::strerror(errno);
  });
  ASSERT_GE(keep, 0);
  const std::string get = "GET / HTTP/1.1\r\nHost: b\r\n\r\n";
  auto exchange = [&] {
    WriteAll(keep, get);
    std::string answer;
    char buf[512];
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (answer.find("\n", answer.find("\r\n\r\n") + 4) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd p{keep, POLLIN, 0};
      if (poll(&p, 1, 500) <= 0) continue;
      const ssize_t r = read(keep, buf, sizeof(buf));
      if (r <= 0) break;
      answer.append(buf, static_cast<size_t>(r));
    }
    return answer;
  };
  ASSERT_TRUE(c->SetOutgoing(keep, Ctx(42)).ok());
  ASSERT_NE(exchange().find("upstream 200"), std::string::npos);
  ASSERT_NE(exchange().find("upstream 200"), std::string::npos);  // no context this time
  close(keep);
  std::vector<WireContext> middle_calls;
  for (const auto& s : c->DrainSent())
    if (static_cast<int>(s.tgid) == middle.pid()) middle_calls.push_back(s.context);
  ASSERT_EQ(middle_calls.size(), 2u);
  EXPECT_EQ(middle_calls[0].trace_id, Ctx(42).trace_id) << "continues the context set";
  EXPECT_NE(middle_calls[1].trace_id, Ctx(42).trace_id) << "a request without one starts anew";
  EXPECT_EQ(first_hop.count(key(middle_calls[1])), 0u);
  // ... in a trace the kernel chose at the read that started it, and reported (FRESH) so
  // that the agent roots the request's SERVER span in the trace its calls carry.
  int fresh_for_call = 0, fresh_reads = 0;
  for (const auto& r : c->DrainRead()) {
    if (!r.fresh) continue;
    ++fresh_reads;
    EXPECT_EQ(r.context.span_id, WireContext{}.span_id) << "a fresh report names no parent";
    if (static_cast<int>(r.tgid) == middle.pid() && r.context.trace_id == middle_calls[1].trace_id)
      ++fresh_for_call;
  }
  EXPECT_EQ(fresh_for_call, 1) << fresh_reads << " fresh reports";

  // Server ends received exactly what was sent: the middle curl's contexts, the backend the
  // middle's (both carry the same trace ids, so compare whole contexts).
  int middle_got = 0, backend_got = 0;
  for (const auto& conn : c->Connections()) {
    if (conn.client || !conn.received) continue;
    const std::string k = key(conn.received->context);
    if (first_hop.count(k) && first_hop[k] == conn.received->context) ++middle_got;
    if (second_hop.count(k) && second_hop[k] == conn.received->context) ++backend_got;
  }
  EXPECT_EQ(middle_got, 10);
  EXPECT_EQ(backend_got, 10);
  middle.Stop(SIGTERM, 5s);
  backend.Stop(SIGTERM, 5s);
}

// TLS on the serving side: a TLS connection answers inside its handshake, so the kernel
// cannot tell a request by "answered since the last read"; there a thread continues the
// last context that arrived before the bytes it reads (often the one on the handshake's
// Finished, the request's own segments carrying none). curl -k (A) -> carrier_forward.py
// serving HTTPS (B) -> http.server (A): each of the middle's 10 calls continues a trace
// curl's kernel set on the TLS connection it serves (without the rule: a new trace).
TEST_F(CarrierTest, TlsServerThreadContinuesTheLastContextReceived) {
  auto c = StartCarrier(0, /*kernel_contexts=*/true);
  ASSERT_NE(c, nullptr);
  const std::string dir = testing::MakeTempDir("kspan-car-tls-");
  const std::string error = testing::MakeTestCertificate(dir);
  ASSERT_TRUE(error.empty()) << error;
  const int port_a = 21000 + getpid() % 1000, port_b = port_a + 1000;
  Subprocess backend, middle;
  ASSERT_TRUE(backend.Start({"ip", "netns", "exec", ns_a_, "/usr/bin/python3", "-m", "http.server",
                             std::to_string(port_a), "--bind", kAddrA, "--protocol", "HTTP/1.1"}));
  const std::string upstream = "http://" + std::string(kAddrA) + ":" + std::to_string(port_a) + "/?from-b";
  ASSERT_TRUE(middle.Start({"ip", "netns", "exec", ns_b_, "/usr/bin/python3",
                            std::string(KSPAN_SOURCE_DIR) + "/tests/apps/carrier_forward.py", kAddrB,
                            std::to_string(port_b), upstream, "tls", dir + "/cert.pem", dir + "/key.pem"}));
  const std::string url = "https://" + std::string(kAddrB) + ":" + std::to_string(port_b) + "/";
  ASSERT_TRUE(WaitFor(
      [&] {
        return RunCommand({"ip", "netns", "exec", ns_a_, "curl", "-skf", "-o", "/dev/null", url}, 5s)
                   .exit_code == 0;
      },
      15s));
  c->DrainSent();
  c->DrainReceived();
  for (int i = 0; i < 10; ++i) {
    auto r = RunCommand({"ip", "netns", "exec", ns_a_, "curl", "-skf", "-o", "/dev/null", url}, 10s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto key = [](const WireContext& w) { return std::string(w.trace_id.begin(), w.trace_id.end()); };
  std::vector<std::string> calls;
  std::vector<WireContext> from_curl;  // every context curl's kernel set: ClientHello, Finished, ...
  for (const auto& s : c->DrainSent()) {
    if (static_cast<int>(s.tgid) == middle.pid())
      calls.push_back(key(s.context));
    else
      from_curl.push_back(s.context);
  }
  // Which TLS connection to the middle each of curl's contexts arrived on (the backend's
  // server ends received the middle's contexts, not curl's).
  std::map<std::string, uint64_t> conn_of;
  for (const auto& r : c->DrainReceived()) {
    if (std::find(from_curl.begin(), from_curl.end(), r.context) != from_curl.end())
      conn_of[key(r.context)] = r.cookie;
  }
  ASSERT_EQ(calls.size(), 10u) << "one call per request";
  std::set<uint64_t> continued;
  for (const auto& call : calls) {
    auto it = conn_of.find(call);
    ASSERT_NE(it, conn_of.end()) << "the call continues a trace curl's kernel set and the middle received";
    continued.insert(it->second);
  }
  EXPECT_EQ(continued.size(), 10u) << "each call the context of its own TLS connection";
  middle.Stop(SIGTERM, 5s);
  backend.Stop(SIGTERM, 5s);
}

// TLS passes untouched: the option rides in TCP headers of the TLS connection (its
// ClientHello and its request both start new client messages) while every handshake and
// answer completes (OBI's header splicing broke TLS records with bad_record_mac).
TEST_F(CarrierTest, TlsConnectionsCarryContextsAndStayIntact) {
  auto c = StartCarrier(0, /*kernel_contexts=*/true);
  ASSERT_NE(c, nullptr);
  const std::string dir = testing::MakeTempDir("kspan-carrier-tls");
  ASSERT_EQ(testing::MakeTestCertificate(dir), "");
  const int port = 19000 + getpid() % 1000;
  Subprocess server;  // openssl's own TLS server, answering each GET with a status page
  ASSERT_TRUE(server.Start({"ip", "netns", "exec", ns_b_, "openssl", "s_server", "-quiet", "-accept",
                            std::string(kAddrB) + ":" + std::to_string(port), "-cert", dir + "/cert.pem",
                            "-key", dir + "/key.pem", "-www"}));
  const std::string url = "https://" + std::string(kAddrB) + ":" + std::to_string(port) + "/";
  ASSERT_TRUE(WaitFor(
      [&] {
        return RunCommand({"ip", "netns", "exec", ns_a_, "curl", "-sk", "-o", "/dev/null", url}, 5s)
                   .exit_code == 0;
      },
      10s));
  const CarrierCounters before = c->Counters();
  for (int i = 0; i < 10; ++i) {
    const auto r = RunCommand({"ip", "netns", "exec", ns_a_, "curl", "-sk", "--tlsv1.2", url}, 10s);
    ASSERT_EQ(r.exit_code, 0) << "TLS exchange " << i << ": " << r.err;
    EXPECT_NE(r.out.find("s_server"), std::string::npos) << "the whole answer arrived";
  }
  const CarrierCounters after = c->Counters();
  EXPECT_GE(after.written - before.written, 10u) << "the option rode on the TLS connections";
  EXPECT_EQ(after.parsed - before.parsed, after.written - before.written);
  EXPECT_EQ(after.malformed, 0u);
  server.Stop(SIGTERM, 5s);
}

}  // namespace
}  // namespace kspan
