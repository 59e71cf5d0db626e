// The opt-in HTTP-header carrier (bpf/hdr_carrier.bpf.c) between two network namespaces
// joined by a veth pair this test creates and removes: a traceparent line goes right after
// the request line of plaintext HTTP/1 requests and nowhere else (TLS, the HTTP/2 preface,
// CONNECT, an upgraded stream, non-HTTP bytes, a request that has one), every other byte
// arrives unchanged, the trace of the request a thread serves is continued, and what
// FIONREAD and MSG_PEEK see is measured. The carrier attaches to a cgroup v2 the test
// creates and moves itself into, so no other process's sockets are touched. Needs root.
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

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "carrier/http_header_carrier.h"
#include "testing/subprocess.h"

namespace kspan {
namespace {

using carrier::HttpHeaderCarrier;
using carrier::HttpHeaderCounters;
using carrier::SentContext;
using namespace std::chrono_literals;
using testing::RunCommand;

constexpr char kAddrA[] = "10.233.0.1";
constexpr char kAddrB[] = "10.233.0.2";
constexpr size_t kLine = 70;  // "traceparent: 00-<32>-<16>-<2>\r\n"

bool Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 10s).exit_code == 0;
}

std::string V2Root() {
  struct stat st {};
  if (stat("/sys/fs/cgroup/cgroup.procs", &st) == 0 &&
      stat("/sys/fs/cgroup/cgroup.subtree_control", &st) == 0)
    return "/sys/fs/cgroup";
  return "/sys/fs/cgroup/unified";
}

std::string OwnV2Cgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "/";
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

class HdrCarrierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string id = std::to_string(getpid() % 100000);
    ns_a_ = "kshdrA" + id;
    ns_b_ = "kshdrB" + id;
    ASSERT_TRUE(Ip({"netns", "add", ns_a_}));
    ASSERT_TRUE(Ip({"netns", "add", ns_b_}));
    const std::string va = "khA" + id, vb = "khB" + id;
    ASSERT_TRUE(Ip({"link", "add", va, "netns", ns_a_, "type", "veth", "peer", "name", vb, "netns", ns_b_}));
    ASSERT_TRUE(Ip({"-n", ns_a_, "addr", "add", std::string(kAddrA) + "/24", "dev", va}));
    ASSERT_TRUE(Ip({"-n", ns_b_, "addr", "add", std::string(kAddrB) + "/24", "dev", vb}));
    for (const auto& [ns, dev] : {std::pair{ns_a_, va}, std::pair{ns_b_, vb}}) {
      ASSERT_TRUE(Ip({"-n", ns, "link", "set", dev, "up"}));
      ASSERT_TRUE(Ip({"-n", ns, "link", "set", "lo", "up"}));
    }
    home_cgroup_ = V2Root() + OwnV2Cgroup();
    cgroup_ = V2Root() + "/kspan-hdr-carrier-test-" + id;
    ASSERT_TRUE(mkdir(cgroup_.c_str(), 0755) == 0 || errno == EEXIST) << std::strerror(errno);
    ASSERT_TRUE(WriteFile(cgroup_ + "/cgroup.procs", std::to_string(getpid()))) << "joining " << cgroup_;
  }
  static void TearDownTestSuite() {
    WriteFile(home_cgroup_ + "/cgroup.procs", std::to_string(getpid()));
    rmdir(cgroup_.c_str());
    Ip({"netns", "del", ns_a_});
    Ip({"netns", "del", ns_b_});
  }

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

  std::unique_ptr<HttpHeaderCarrier> Start() {
    auto c = HttpHeaderCarrier::Start({.cgroup_path = cgroup_});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  struct Pair {
    int client = -1, server = -1;
  };
  // A listener in `server_ns` at `addr`, and a connection to it from `client_ns`.
  Pair Connect(const std::string& client_ns = "", const std::string& server_ns = "",
               const char* addr = kAddrB) {
    Pair p;
    int listener = -1;
    uint16_t port = 0;
    InNetns(server_ns.empty() ? ns_b_ : server_ns, [&] {
      listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      inet_pton(AF_INET, addr, &a.sin_addr);
      ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
      ASSERT_EQ(listen(listener, 4), 0);
      socklen_t len = sizeof(a);
      getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
      port = ntohs(a.sin_port);
    });
    InNetns(client_ns.empty() ? ns_a_ : client_ns, [&] {
      p.client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      inet_pton(AF_INET, addr, &a.sin_addr);
      ASSERT_EQ(connect(p.client, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
    });
    p.server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    close(listener);
    fds_.push_back(p.client);
    fds_.push_back(p.server);
    return p;
  }
  void TearDown() override {
    for (int fd : fds_)
      if (fd >= 0) close(fd);
  }

  // Everything that arrives within `quiet` of the last byte (at most 10 s), or n bytes.
  static std::string ReadAvailable(int fd, size_t n, std::chrono::milliseconds quiet = 300ms) {
    std::string out;
    char buf[65536];
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;
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
  // Sends `req`, reads what the server got (up to the request plus `extra`), answers.
  std::string RoundTrip(const Pair& p, const std::string& req, size_t extra = kLine) {
    WriteAll(p.client, req);
    const std::string got = ReadAvailable(p.server, req.size() + extra);
    WriteAll(p.server, "HTTP/1.1 204 No Content\r\n\r\n");
    EXPECT_EQ(ReadAvailable(p.client, 27).size(), 27u);
    return got;
  }

  static inline std::string ns_a_, ns_b_, cgroup_, home_cgroup_;
  std::vector<int> fds_;
};

std::string Get(int i) {
  return "GET /r/" + std::to_string(i) + " HTTP/1.1\r\nHost: b\r\nUser-Agent: hdr-test\r\n\r\n";
}

// `got` is `sent` with one traceparent line right after its request line; returns the line.
std::string AddedLine(const std::string& sent, const std::string& got) {
  const size_t eol = sent.find("\r\n") + 2;
  if (got.size() != sent.size() + kLine) return "";
  if (got.compare(0, eol, sent, 0, eol) != 0) return "";
  if (got.compare(eol + kLine, std::string::npos, sent, eol, std::string::npos) != 0) return "";
  return got.substr(eol, kLine);
}

const std::regex kTp("traceparent: 00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\r\n");

TEST_F(HdrCarrierTest, WritesATraceparentIntoEachRequestAndReportsIt) {
  auto c = Start();
  ASSERT_NE(c, nullptr);
  Pair p = Connect();
  std::vector<std::string> spans;
  for (int i = 0; i < 10; ++i) {
    const std::string got = RoundTrip(p, Get(i));
    const std::string line = AddedLine(Get(i), got);
    ASSERT_FALSE(line.empty()) << "request " << i << " arrived as:\n" << got;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, kTp)) << line;
    EXPECT_EQ(m[3], "03");  // a new trace: sampled, random id (Level 2)
    spans.push_back(m[2]);
  }
  const std::vector<SentContext> sent = c->DrainSent();
  ASSERT_EQ(sent.size(), 10u);
  for (size_t i = 0; i < sent.size(); ++i) {
    // The report names the ids on the wire and the syscall that sent them.
    EXPECT_EQ(Hex(sent[i].context.span_id.data(), 8), spans[i]);
    EXPECT_EQ(sent[i].tgid, static_cast<uint32_t>(getpid()));
    EXPECT_EQ(sent[i].tid, static_cast<uint32_t>(gettid()));
    EXPECT_EQ(sent[i].fd, p.client);
    EXPECT_EQ(sent[i].offset, i * Get(0).size());
  }
  EXPECT_EQ(c->Counters().written, 10u);
  EXPECT_TRUE(c->InSockhash(p.client));
  EXPECT_FALSE(c->InSockhash(p.server));  // a server end never joins the map
}

// Bytes that are not a plaintext HTTP/1 request pass untouched, and so does everything
// after them on that connection (even if it looks like HTTP); the socket leaves the map.
TEST_F(HdrCarrierTest, LeavesEverythingElseAlone) {
  auto c = Start();
  ASSERT_NE(c, nullptr);
  const std::string tls("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03GET / HTTP/1.1\r\n\r\n", 34);
  const std::string h2 = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  const std::string connect = "CONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n\r\n";
  const std::string binary("\x00\x00\x00\x08\x04\xd2\x16\x2fGET / HTTP/1.1\r\n\r\n", 26);
  const std::string text = "HELO mail.example\r\n";
  const std::string http10_lower = "get / HTTP/1.1\r\n\r\n";
  for (const std::string& first : {tls, h2, connect, binary, text, http10_lower}) {
    Pair p = Connect();
    EXPECT_EQ(RoundTrip(p, first), first);
    EXPECT_EQ(RoundTrip(p, Get(1)), Get(1)) << "after " << first;
    EXPECT_FALSE(c->InSockhash(p.client)) << "still in the sockhash after " << first;
  }
  const HttpHeaderCounters n = c->Counters();
  EXPECT_EQ(n.written, 0u);
  EXPECT_EQ(n.skip_tls, 1u);
  EXPECT_EQ(n.skip_http2, 1u);
  EXPECT_EQ(n.skip_connect, 1u);
  EXPECT_EQ(n.skip_not_http, 3u);
  EXPECT_EQ(n.removed, 6u);
}

TEST_F(HdrCarrierTest, AnApplicationsOwnTraceparentIsLeftAlone) {
  auto c = Start();
  ASSERT_NE(c, nullptr);
  Pair p = Connect();
  const std::string own =
      "GET / HTTP/1.1\r\nHost: b\r\nTraceParent: "
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
  EXPECT_EQ(RoundTrip(p, own), own);
  EXPECT_FALSE(AddedLine(Get(2), RoundTrip(p, Get(2))).empty());  // the next one gets its own
  EXPECT_EQ(c->Counters().skip_has_traceparent, 1u);
}

// Request shapes: a body across sends, writev, sendfile, pipelining, a head split across
// sends, chunked and Upgrade: byte-identical apart from the one added line.
TEST_F(HdrCarrierTest, RequestShapesStayByteExact) {
  auto c = Start();
  ASSERT_NE(c, nullptr);
  {  // a POST whose body follows in two more sends, then the next request
    Pair p = Connect();
    const std::string head = "POST /p HTTP/1.1\r\nHost: b\r\nContent-Length: 20\r\n\r\n";
    const std::string body(20, 'x');
    WriteAll(p.client, head + body.substr(0, 5));
    usleep(20000);
    WriteAll(p.client, body.substr(5, 10));
    usleep(20000);
    WriteAll(p.client, body.substr(15));
    const std::string got = ReadAvailable(p.server, head.size() + body.size() + kLine);
    EXPECT_FALSE(AddedLine(head + body, got).empty()) << got;
    WriteAll(p.server, "HTTP/1.1 204 No Content\r\n\r\n");
    ReadAvailable(p.client, 27);
    // A body line that looks like a request head is never written into.
    const std::string tricky = "POST /q HTTP/1.1\r\nContent-Length: 18\r\n\r\n";
    WriteAll(p.client, tricky);
    usleep(20000);
    WriteAll(p.client, "GET / HTTP/1.1\r\n\r\n");
    const std::string got2 = ReadAvailable(p.server, tricky.size() + 18 + kLine);
    EXPECT_FALSE(AddedLine(tricky + "GET / HTTP/1.1\r\n\r\n", got2).empty()) << got2;
    WriteAll(p.server, "HTTP/1.1 204 No Content\r\n\r\n");
    ReadAvailable(p.client, 27);
    EXPECT_FALSE(AddedLine(Get(3), RoundTrip(p, Get(3))).empty());
  }
  {  // writev: the head in three pieces of one call
    Pair p = Connect();
    const std::string a = "GET /v HTTP/1.1\r\n", b = "Host: b\r\n", d = "\r\n";
    iovec iov[3] = {{const_cast<char*>(a.data()), a.size()},
                    {const_cast<char*>(b.data()), b.size()},
                    {const_cast<char*>(d.data()), d.size()}};
    ASSERT_EQ(writev(p.client, iov, 3), static_cast<ssize_t>(a.size() + b.size() + d.size()));
    const std::string got = ReadAvailable(p.server, a.size() + b.size() + d.size() + kLine);
    EXPECT_FALSE(AddedLine(a + b + d, got).empty()) << got;
  }
  {  // sendfile of a whole request
    Pair p = Connect();
    char path[] = "/tmp/kspan-hdr-sendfile-XXXXXX";
    const int f = mkstemp(path);
    ASSERT_GE(f, 0);
    const std::string req = Get(4);
    ASSERT_EQ(write(f, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    off_t off = 0;
    ASSERT_EQ(sendfile(p.client, f, &off, req.size()), static_cast<ssize_t>(req.size()));
    close(f);
    unlink(path);
    const std::string got = ReadAvailable(p.server, req.size() + kLine);
    EXPECT_FALSE(AddedLine(req, got).empty()) << got;
  }
  {  // pipelined: two requests in one send: the first is written into, nothing after it
    Pair p = Connect();
    const std::string two = Get(5) + Get(6);
    WriteAll(p.client, two);
    EXPECT_FALSE(AddedLine(two, ReadAvailable(p.server, two.size() + kLine)).empty());
    WriteAll(p.server, "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
    ReadAvailable(p.client, 54);
    EXPECT_EQ(RoundTrip(p, Get(7)), Get(7));
  }
  {  // a head split across sends: left alone, and the connection with it
    Pair p = Connect();
    const std::string req = Get(8);
    WriteAll(p.client, req.substr(0, 10));
    usleep(20000);
    WriteAll(p.client, req.substr(10));
    EXPECT_EQ(ReadAvailable(p.server, req.size() + kLine), req);
  }
  {  // chunked: this request is written into, nothing after it
    Pair p = Connect();
    const std::string req = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    EXPECT_FALSE(AddedLine(req, RoundTrip(p, req)).empty());
    EXPECT_EQ(RoundTrip(p, Get(9)), Get(9));
  }
  {  // Upgrade: the upgrade request is written into, the stream after it never
    Pair p = Connect();
    const std::string req =
        "GET /ws HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    EXPECT_FALSE(AddedLine(req, RoundTrip(p, req)).empty());
    EXPECT_EQ(RoundTrip(p, Get(10)), Get(10));
  }
  const HttpHeaderCounters n = c->Counters();
  EXPECT_EQ(n.written, 8u);
  EXPECT_EQ(n.skip_pipelined, 1u);
  EXPECT_EQ(n.skip_split_head, 1u);
  EXPECT_EQ(n.skip_framing, 1u);
  EXPECT_EQ(n.skip_upgrade, 1u);
}

// A thread serving a request that came with a valid traceparent continues its trace in the
// requests it sends; an invalid or missing one starts a new trace (W3C Level 2 rules).
TEST_F(HdrCarrierTest, ContinuesTheTraceOfTheRequestBeingServed) {
  auto c = Start();
  ASSERT_NE(c, nullptr);
  Pair in = Connect();                       // A -> B: the request this thread serves
  Pair out = Connect(ns_b_, ns_a_, kAddrA);  // B -> A: the call it makes
  struct Case {
    std::string header;
    bool continues;
    std::string flags;
  };
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::vector<Case> cases = {
      {"traceparent: 00-" + trace + "-00f067aa0ba902b7-01", true, "01"},
      {"traceparent: 00-" + trace + "-00f067aa0ba902b7-00", true, "00"},
      {"traceparent: 00-" + trace + "-00f067aa0ba902b7-02", true, "02"},  // random kept (Level 2)
      {"traceparent: 00-" + trace + "-00f067aa0ba902b7-ff", true, "03"},  // unknown flags as 0
      {"TRACEPARENT:   00-" + trace + "-00f067aa0ba902b7-01  ", true, "01"},
      {"traceparent: cc-" + trace + "-00f067aa0ba902b7-01-what-the-future-holds", true, "01"},
      {"traceparent: ff-" + trace + "-00f067aa0ba902b7-01", false, "03"},
      {"traceparent: 00-" + std::string(32, '0') + "-00f067aa0ba902b7-01", false, "03"},
      {"traceparent: 00-" + trace + "-0000000000000000-01", false, "03"},
      {"traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, "03"},
      {"traceparent: 00-" + trace + "-00f067aa0ba902b7-01-extra", false, "03"},
      {"traceparent: 00-" + trace + "-00f067aa0ba902b7-0", false, "03"},
      {"X-Other: 1", false, "03"},
  };
  for (const Case& k : cases) {
    const std::string req = "GET /in HTTP/1.1\r\nHost: b\r\n" + k.header + "\r\n\r\n";
    WriteAll(in.client, "x");  // keep the client side out of it: it is STOPped after this
    ASSERT_EQ(ReadAvailable(in.server, 1), "x");
    // The serving read: the server end reads the request (the kernel looks at it).
    WriteAll(in.client, req);
    ASSERT_EQ(ReadAvailable(in.server, req.size()), req);
    const std::string got = RoundTrip(out, Get(0));
    const std::string line = AddedLine(Get(0), got);
    ASSERT_FALSE(line.empty()) << k.header << " -> " << got;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, kTp));
    EXPECT_EQ(m[1] == trace, k.continues) << k.header << " -> " << line;
    EXPECT_EQ(m[3], k.flags) << k.header;
  }
  const HttpHeaderCounters n = c->Counters();
  // 6 served requests, and the calls as their server end read them (with our line).
  EXPECT_EQ(n.incoming_valid, 6u + cases.size());
  EXPECT_EQ(n.incoming_invalid, 6u);
}

// The lines inserted right after the request line of `sent` in `got` (empty: `got` is not
// `sent` with lines added there).
std::string AddedLines(const std::string& sent, const std::string& got) {
  const size_t eol = sent.find("\r\n") + 2;
  if (got.size() <= sent.size() || got.compare(0, eol, sent, 0, eol) != 0) return "";
  const size_t added = got.size() - sent.size();
  if (got.compare(eol + added, std::string::npos, sent, eol, std::string::npos) != 0) return "";
  return got.substr(eol, added);
}

// The tracestate of the request a thread serves goes with its calls, after the traceparent
// line, as the W3C rules say: fields combined, OWS and empty members dropped, invalid lists
// and lists of more than 32 members dropped whole, a list over 512 bytes cut by whole
// members (those over 128 first, then from the end), nothing without a valid traceparent,
// and nothing added to a request that has its own tracestate.
TEST_F(HdrCarrierTest, ContinuesTheTracestateOfTheRequestBeingServed) {
  auto c = Start();
  ASSERT_NE(c, nullptr);
  Pair in = Connect();
  Pair out = Connect(ns_b_, ns_a_, kAddrA);
  const std::string tp = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n";
  auto members = [](int n, int from, size_t value_len) {
    std::string list;
    for (int i = from; i < from + n; ++i) {
      char key[8];
      std::snprintf(key, sizeof(key), "k%02d", i);
      list += (list.empty() ? "" : ",") + std::string(key) + "=" + std::string(value_len, 'v');
    }
    return list;
  };
  const std::string long1 = "l1=" + std::string(200, 'x'), long2 = "l2=" + std::string(200, 'y'),
                    long3 = "l3=" + std::string(200, 'z');
  struct Case {
    std::string headers;   // the served request's header lines
    std::string expected;  // the tracestate its call carries ("": none)
  };
  const std::vector<Case> cases = {
      {tp + "tracestate: foo=1,bar=2\r\n", "foo=1,bar=2"},
      {tp + "tracestate: foo=1 \t, bar=2\r\nTraceState: rojo=1,congo=2\r\ntracestate: \r\nTRACESTATE: ,, "
            "baz=3\t\r\n",
       "foo=1,bar=2,rojo=1,congo=2,baz=3"},
      {tp + "tracestate: a= x y ,b@v=2 ,foo@=1\r\n",
       "a= x y,b@v=2,foo@=1"},                              // leading spaces are the value's
      {tp + "tracestate: foo=1,foo=1\r\n", "foo=1,foo=1"},  // duplicates kept as they are
      {tp + "tracestate: " + std::string(256, 'z') + "=1\r\n", std::string(256, 'z') + "=1"},
      {tp + "tracestate: " + members(32, 1, 2) + "\r\n", members(32, 1, 2)},
      {tp + "tracestate: foo=bar=baz\r\n", ""},
      {tp + "tracestate: foo=,bar=3\r\n", ""},
      {tp + "tracestate: @foo=1,bar=2\r\n", ""},
      {tp + "tracestate: FOO=1\r\n", ""},
      {tp + "tracestate: foo =1\r\n", ""},
      {tp + "tracestate: foo=1\r\ntracestate: " + std::string(257, 'z') + "=1\r\n", ""},
      {tp + "tracestate: foo=a\tb\r\n", ""},
      {tp + "tracestate: " + members(20, 1, 2) + "\r\ntracestate: " + members(13, 21, 2) + "\r\n", ""},
      // over 512 bytes: the long members go first, from the end, until it fits
      {tp + "tracestate: " + long1 + ",a=1," + long2 + ",b=2," + long3 + "\r\n",
       long1 + ",a=1," + long2 + ",b=2"},
      // 32 members of 20 bytes (671): the first 24 fit (503)
      {tp + "tracestate: " + members(32, 1, 16) + "\r\n", members(24, 1, 16)},
      {"traceparent: 00-" + std::string(32, '0') + "-00f067aa0ba902b7-01\r\ntracestate: foo=1\r\n", ""},
      {"tracestate: foo=1\r\n", ""},
  };
  for (const Case& k : cases) {
    const std::string req = "GET /in HTTP/1.1\r\nHost: b\r\n" + k.headers + "\r\n";
    WriteAll(in.client, "x");  // the client side stops here: nothing is added to `req`
    ASSERT_EQ(ReadAvailable(in.server, 1), "x");
    WriteAll(in.client, req);
    ASSERT_EQ(ReadAvailable(in.server, req.size()), req);
    const std::string got = RoundTrip(out, Get(0), kLine + 1024);
    const std::string lines = AddedLines(Get(0), got);
    ASSERT_GE(lines.size(), kLine) << k.headers << " -> " << got;
    std::smatch m;
    const std::string tp_line = lines.substr(0, kLine);
    ASSERT_TRUE(std::regex_match(tp_line, m, kTp)) << lines;
    EXPECT_EQ(m[1] == "4bf92f3577b34da6a3ce929d0e0e4736", k.headers.rfind("traceparent: 00-4bf9", 0) == 0);
    EXPECT_EQ(lines.substr(kLine), k.expected.empty() ? "" : "tracestate: " + k.expected + "\r\n")
        << "served with:\n"
        << k.headers;
  }
  // The application's own tracestate: the traceparent is added, the list is not.
  WriteAll(in.client, "x");
  ASSERT_EQ(ReadAvailable(in.server, 1), "x");
  const std::string served = "GET /in HTTP/1.1\r\n" + tp + "tracestate: foo=1\r\n\r\n";
  WriteAll(in.client, served);
  ASSERT_EQ(ReadAvailable(in.server, served.size()), served);
  const std::string own = "GET /own HTTP/1.1\r\nHost: a\r\ntracestate: mine=1\r\n\r\n";
  const std::string got = RoundTrip(out, own, kLine + 64);
  EXPECT_EQ(AddedLines(own, got).size(), kLine) << got;
  const HttpHeaderCounters n = c->Counters();
  EXPECT_EQ(n.ts_written, 8u);
  EXPECT_EQ(n.ts_app_has, 1u);
  EXPECT_EQ(n.ts_lost, 0u);
  EXPECT_EQ(n.ts_in_truncated, 2u);
  EXPECT_EQ(n.ts_in_invalid, 7u);
  EXPECT_EQ(n.ts_in_too_many, 1u);
  EXPECT_EQ(n.ts_in_no_traceparent, 2u);
  // as read: the served requests' lists (6, and the 1 before the application's own) and the
  // 9 calls that carried one (8 of ours, the application's own)
  EXPECT_EQ(n.ts_in_valid, 7u + 9u);
}

// ioctl(FIONREAD) and MSG_PEEK on both ends, measured: a server end is never in the map; a
// client end is in it while it sends plaintext HTTP/1, and back to plain TCP once it leaves.
TEST_F(HdrCarrierTest, FionreadAndPeekMeasured) {
  auto c = Start();
  ASSERT_NE(c, nullptr);
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  auto measure = [&](const Pair& p, const char* what) {
    WriteAll(p.server, resp);
    usleep(50000);
    int inq = -1;
    EXPECT_EQ(ioctl(p.client, FIONREAD, &inq), 0);
    char peek[128];
    const ssize_t peeked = recv(p.client, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
    EXPECT_EQ(peeked, static_cast<ssize_t>(resp.size())) << what;
    EXPECT_EQ(ReadAvailable(p.client, resp.size()), resp) << what;
    std::printf("[ measured ] client FIONREAD %s: %d of %zu bytes waiting, MSG_PEEK %zd\n", what, inq,
                resp.size(), peeked);
    return inq;
  };
  Pair http = Connect();
  WriteAll(http.client, Get(0));
  int inq = -1;
  usleep(50000);
  ASSERT_EQ(ioctl(http.server, FIONREAD, &inq), 0);
  EXPECT_EQ(inq, static_cast<int>(Get(0).size() + kLine));  // the server end: exact
  ReadAvailable(http.server, Get(0).size() + kLine);
  ASSERT_TRUE(c->InSockhash(http.client));
  const int in_map = measure(http, "in the sockhash (plaintext HTTP/1)");
  // On 6.18 tcp_bpf answers FIONREAD from its own queue, which holds nothing here: 0.
  EXPECT_TRUE(in_map == 0 || in_map == static_cast<int>(resp.size()));
  Pair tls = Connect();
  WriteAll(tls.client, std::string("\x16\x03\x01\x00\x01\x01", 6));
  ReadAvailable(tls.server, 6);
  ASSERT_FALSE(c->InSockhash(tls.client));
  EXPECT_EQ(measure(tls, "after leaving the sockhash (TLS)"), static_cast<int>(resp.size()));
}

// Detaching (the agent's exit, crash or kill -9 closes its fds) leaves the connection
// working: no more lines, bytes intact, FIONREAD exact again.
TEST_F(HdrCarrierTest, DetachMidStreamLeavesConnectionsWorking) {
  auto c = Start();
  ASSERT_NE(c, nullptr);
  Pair p = Connect();
  EXPECT_FALSE(AddedLine(Get(0), RoundTrip(p, Get(0))).empty());
  c.reset();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(RoundTrip(p, Get(i), 0), Get(i)) << i;
  pollfd more{p.server, POLLIN, 0};
  EXPECT_EQ(poll(&more, 1, 200), 0) << "bytes beyond the requests arrived";
  WriteAll(p.server, "ok");
  usleep(50000);
  int inq = -1;
  ASSERT_EQ(ioctl(p.client, FIONREAD, &inq), 0);
  EXPECT_EQ(inq, 2);
}

}  // namespace
}  // namespace kspan
