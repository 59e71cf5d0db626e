#include "events/decode.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kspan/bpf/events.h"

namespace kspan::events {
namespace {

struct Recorder : EventSink {
  std::vector<ConnOpenEvent> opens;
  std::vector<DataEvent> data;
  std::vector<std::string> payloads;
  std::vector<ConnCloseEvent> closes;
  std::vector<ProcessExecEvent> execs;
  std::vector<ProcessExitEvent> exits;
  std::vector<FileWriteEvent> file_writes;
  std::vector<ProcessForkEvent> forks;
  void OnFork(const ProcessForkEvent& e) override { forks.push_back(e); }
  void OnFileWrite(const FileWriteEvent& e) override { file_writes.push_back(e); }
  void OnConnOpen(const ConnOpenEvent& e) override { opens.push_back(e); }
  void OnData(const DataEvent& e) override {
    data.push_back(e);
    payloads.emplace_back(e.data);
  }
  void OnConnClose(const ConnCloseEvent& e) override { closes.push_back(e); }
  void OnExec(const ProcessExecEvent& e) override { execs.push_back(e); }
  void OnExit(const ProcessExitEvent& e) override { exits.push_back(e); }
};

const BootClock kClock(1'000'000'000);  // boot + 1 s = unix

std::vector<uint8_t> DataRecord(const std::string& payload, uint32_t total, uint8_t dir = KSPAN_DIR_EGRESS) {
  std::vector<uint8_t> buf(offsetof(kspan_data_event, data) + payload.size());
  kspan_data_event e{};
  e.hdr.type = KSPAN_EV_DATA;
  e.hdr.tgid = 42;
  e.hdr.tid = 43;
  e.hdr.turn = 17;
  e.hdr.ts_ns = 500;
  e.conn = {42, 7, 9};
  e.enter_ns = 400;
  e.position = 1000;
  e.total_len = total;
  e.captured_len = static_cast<uint32_t>(payload.size());
  e.direction = dir;
  e.role = KSPAN_ROLE_SERVER;
  std::memcpy(buf.data(), &e, offsetof(kspan_data_event, data));
  std::memcpy(buf.data() + offsetof(kspan_data_event, data), payload.data(), payload.size());
  return buf;
}

TEST(Decode, DataEventFieldsAndClock) {
  Recorder r;
  auto rec = DataRecord("GET / HTTP/1.1\r\n", 100);
  ASSERT_EQ(DecodeRecord(rec.data(), rec.size(), kClock, &r), DecodeResult::kOk);
  ASSERT_EQ(r.data.size(), 1u);
  const DataEvent& e = r.data[0];
  EXPECT_EQ(e.key, (ConnKey{42, 7, 9}));
  EXPECT_EQ(e.tid, 43u);
  EXPECT_EQ(e.turn, 17u);
  EXPECT_EQ(e.enter_ns, 1'000'000'400u);
  EXPECT_EQ(e.exit_ns, 1'000'000'500u);
  EXPECT_EQ(e.position, 1000u);
  EXPECT_EQ(e.total_len, 100u);
  EXPECT_EQ(e.direction, Direction::kEgress);
  EXPECT_EQ(e.role, Role::kServer);
  EXPECT_EQ(r.payloads[0], "GET / HTTP/1.1\r\n");
}

TEST(Decode, DataEventInconsistentLengthsAreRejected) {
  Recorder r;
  auto rec = DataRecord("abcdef", 3);  // captured > total
  EXPECT_EQ(DecodeRecord(rec.data(), rec.size(), kClock, &r), DecodeResult::kBadLength);
  auto rec2 = DataRecord("abcdef", 10);
  EXPECT_EQ(DecodeRecord(rec2.data(), rec2.size() - 1, kClock, &r), DecodeResult::kBadLength);  // cut short
  auto rec3 = DataRecord("abc", 10, 7);  // bad direction
  EXPECT_EQ(DecodeRecord(rec3.data(), rec3.size(), kClock, &r), DecodeResult::kBadLength);
  EXPECT_TRUE(r.data.empty());
}

TEST(Decode, ShortAndUnknownRecords) {
  Recorder r;
  uint8_t tiny[8] = {};
  EXPECT_EQ(DecodeRecord(tiny, sizeof(tiny), kClock, &r), DecodeResult::kTooShort);
  kspan_event_header h{};
  h.type = 99;
  EXPECT_EQ(DecodeRecord(&h, sizeof(h), kClock, &r), DecodeResult::kUnknownType);
  h.type = KSPAN_EV_CONN_OPEN;
  EXPECT_EQ(DecodeRecord(&h, sizeof(h), kClock, &r), DecodeResult::kTooShort);
}

TEST(Decode, ConnOpenIpv4AndMappedIpv6) {
  Recorder r;
  kspan_conn_event e{};
  e.hdr.type = KSPAN_EV_CONN_OPEN;
  e.conn = {5, 3, 77};
  e.family = AF_INET;
  e.local_port = 8080;
  e.remote_port = 40000;
  e.role = KSPAN_ROLE_SERVER;
  e.flags = KSPAN_CONN_F_BACKLOG;  // accepted: the listener's queue comes along
  e.listen_queue = 7;
  e.listen_queue_max = 128;
  inet_pton(AF_INET, "127.0.0.1", e.local_addr);
  inet_pton(AF_INET, "10.1.2.3", e.remote_addr);
  ASSERT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kOk);
  e.family = AF_INET6;
  e.flags = KSPAN_CONN_F_MIDSTREAM;
  e.listen_queue = e.listen_queue_max = 0;
  inet_pton(AF_INET6, "::ffff:127.0.0.2", e.local_addr);
  inet_pton(AF_INET6, "2001:db8::1", e.remote_addr);
  ASSERT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kOk);
  ASSERT_EQ(r.opens.size(), 2u);
  EXPECT_EQ(r.opens[0].tuple.local.address, "127.0.0.1");
  EXPECT_EQ(r.opens[0].tuple.local.port, 8080);
  EXPECT_EQ(r.opens[0].tuple.remote.address, "10.1.2.3");
  EXPECT_EQ(r.opens[0].tuple.remote.port, 40000);
  EXPECT_EQ(r.opens[0].role, Role::kServer);
  EXPECT_FALSE(r.opens[0].midstream);
  EXPECT_TRUE(r.opens[0].listen_queue_known);
  EXPECT_EQ(r.opens[0].listen_queue, 7);
  EXPECT_EQ(r.opens[0].listen_queue_max, 128);
  EXPECT_FALSE(r.opens[1].listen_queue_known);
  EXPECT_EQ(r.opens[0].kind, ConnKind::kTcp);
  EXPECT_EQ(r.opens[1].tuple.local.address, "127.0.0.2");  // v4-mapped shown as v4
  EXPECT_EQ(r.opens[1].tuple.remote.address, "2001:db8::1");
  EXPECT_TRUE(r.opens[1].midstream);
}

TEST(Decode, ConnOpenKindsOtherThanTcpHaveNoAddressesAndChannelsAnIdentity) {
  Recorder r;
  const std::pair<uint8_t, uint16_t> kinds[] = {{KSPAN_CONN_KIND_UNIX, AF_UNIX},
                                                {KSPAN_CONN_KIND_PIPE, AF_UNSPEC},
                                                {KSPAN_CONN_KIND_STDOUT, AF_UNSPEC},
                                                {KSPAN_CONN_KIND_STDERR, AF_UNSPEC}};
  for (const auto& [kind, family] : kinds) {
    kspan_conn_event e{};
    e.hdr.type = KSPAN_EV_CONN_OPEN;
    e.conn = {5, 1, 100u + kind};
    e.family = family;
    e.kind = kind;
    e.flags = KSPAN_CONN_F_MIDSTREAM;
    // Unix sockets and pipes: the channel's identity (inode numbers, host order).
    const uint64_t own = 0x1000u + kind, other = 0x2000u + kind;
    std::memcpy(e.local_addr, &own, sizeof(own));
    std::memcpy(e.remote_addr, &other, sizeof(other));
    ASSERT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kOk) << int{kind};
  }
  ASSERT_EQ(r.opens.size(), 4u);
  const ConnKind want[] = {ConnKind::kUnix, ConnKind::kPipe, ConnKind::kStdout, ConnKind::kStderr};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(r.opens[i].kind, want[i]);
    EXPECT_EQ(r.opens[i].tuple.family, i == 0 ? AF_UNIX : AF_UNSPEC);
    EXPECT_EQ(r.opens[i].tuple.local, Endpoint{});
    EXPECT_EQ(r.opens[i].tuple.remote, Endpoint{});
    EXPECT_TRUE(r.opens[i].midstream);
    const bool channel = i < 2;
    EXPECT_EQ(r.opens[i].local_id, channel ? 0x1000u + KSPAN_CONN_KIND_UNIX + i : 0u);
    EXPECT_EQ(r.opens[i].peer_id, channel ? 0x2000u + KSPAN_CONN_KIND_UNIX + i : 0u);
  }
  EXPECT_EQ(ConnKindName(ConnKind::kPipe), "pipe");
}

TEST(Decode, ConnOpenKindAndFamilyMustAgree) {
  Recorder r;
  kspan_conn_event e{};
  e.hdr.type = KSPAN_EV_CONN_OPEN;
  e.family = AF_UNIX;  // a TCP connection (kind 0) must be INET/INET6
  EXPECT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kBadLength);
  e.kind = KSPAN_CONN_KIND_PIPE;  // a pipe has no family
  EXPECT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kBadLength);
  e.kind = KSPAN_CONN_KIND_UNIX;
  e.family = AF_INET;
  EXPECT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kBadLength);
  e.kind = 9;  // unknown kind
  e.family = AF_UNSPEC;
  EXPECT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kBadLength);
  EXPECT_TRUE(r.opens.empty());
}

TEST(Decode, ExecSplitsArgvAndBoundsStrings) {
  Recorder r;
  kspan_exec_event e{};
  e.hdr.type = KSPAN_EV_PROC_EXEC;
  e.hdr.tgid = 100;
  e.ppid = 1;
  std::memcpy(e.comm, "curlcurlcurlcurl", 16);  // no NUL: must stay bounded
  std::strcpy(e.filename, "/usr/bin/curl");
  std::memset(e.exe_name, 'x', sizeof(e.exe_name));  // no NUL: must stay bounded
  const char args[] = "curl\0-s\0http://x/";
  std::memcpy(e.args, args, sizeof(args) - 1);
  e.args_len = sizeof(args) - 1;
  e.netns = 4026532281u;
  ASSERT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kOk);
  ASSERT_EQ(r.execs.size(), 1u);
  EXPECT_EQ(r.execs[0].netns, 4026532281u);
  EXPECT_EQ(r.execs[0].comm, "curlcurlcurlcurl");
  EXPECT_EQ(r.execs[0].filename, "/usr/bin/curl");
  EXPECT_EQ(r.execs[0].exe_name, std::string(KSPAN_NAME_LEN, 'x'));
  EXPECT_EQ(r.execs[0].argv, (std::vector<std::string>{"curl", "-s", "http://x/"}));
  e.args_len = KSPAN_ARGS_LEN + 1;
  EXPECT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kBadLength);
}

// The cgroups an exec event carries (innermost part first) read as /proc/PID/cgroup lines.
TEST(Decode, ExecCgroupsReadAsProcCgroupLines) {
  Recorder r;
  kspan_exec_event e{};
  e.hdr.type = KSPAN_EV_PROC_EXEC;
  e.hdr.tgid = 100;
  const std::string id(64, 'e');
  e.cgroup_v2.parts = 3;
  std::strcpy(e.cgroup_v2.part[0], "container");
  std::strcpy(e.cgroup_v2.part[1], ("libpod-" + id + ".scope").c_str());
  std::strcpy(e.cgroup_v2.part[2], "machine.slice");
  ASSERT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kOk);
  EXPECT_EQ(r.execs.back().cgroup, "0::/machine.slice/libpod-" + id + ".scope/container\n");
  // A hybrid host: v2 at its root (no line), the memory controller's path in v1.
  e.cgroup_v2.parts = 0;
  e.cgroup_memory.parts = 2;
  std::strcpy(e.cgroup_memory.part[0], ("libpod-" + id).c_str());
  std::memset(e.cgroup_memory.part[1], 'p', KSPAN_CGROUP_PART_LEN);  // no NUL: stays bounded
  ASSERT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kOk);
  EXPECT_EQ(r.execs.back().cgroup,
            "1:memory:/" + std::string(KSPAN_CGROUP_PART_LEN, 'p') + "/libpod-" + id + "\n");
  // A name that would start a line of its own, or an empty one, is no path.
  std::strcpy(e.cgroup_memory.part[1], "a\n0::/forged");
  ASSERT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kOk);
  EXPECT_EQ(r.execs.back().cgroup, "");
  e.cgroup_memory.part[1][0] = 0;
  ASSERT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kOk);
  EXPECT_EQ(r.execs.back().cgroup, "");
  // More parts than an event holds: not an event of ours.
  e.cgroup_memory.parts = KSPAN_CGROUP_PARTS + 1;
  EXPECT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kBadLength);
}

TEST(Decode, ForkNamesChildAndParent) {
  Recorder r;
  kspan_fork_event f{};
  f.hdr.type = KSPAN_EV_PROC_FORK;
  f.hdr.tgid = 301;
  f.hdr.tid = 301;
  f.hdr.ts_ns = 500;
  f.ppid = 300;
  EXPECT_EQ(DecodeRecord(&f, sizeof(f) - 1, kClock, &r), DecodeResult::kTooShort);
  ASSERT_EQ(DecodeRecord(&f, sizeof(f), kClock, &r), DecodeResult::kOk);
  ASSERT_EQ(r.forks.size(), 1u);
  EXPECT_EQ(r.forks[0].pid, 301u);
  EXPECT_EQ(r.forks[0].ppid, 300u);
  EXPECT_EQ(r.forks[0].ts_ns, 1'000'000'500u);
}

TEST(Decode, CloseAndExit) {
  Recorder r;
  kspan_close_event c{};
  c.hdr.type = KSPAN_EV_CONN_CLOSE;
  c.conn = {1, 2, 3};
  c.bytes_sent = 10;
  c.bytes_received = 20;
  ASSERT_EQ(DecodeRecord(&c, sizeof(c), kClock, &r), DecodeResult::kOk);
  kspan_exit_event x{};
  x.hdr.type = KSPAN_EV_PROC_EXIT;
  x.hdr.tgid = 9;
  x.exit_code = 256;
  ASSERT_EQ(DecodeRecord(&x, sizeof(x), kClock, &r), DecodeResult::kOk);
  EXPECT_EQ(r.closes[0].bytes_sent, 10u);
  EXPECT_EQ(r.closes[0].bytes_received, 20u);
  EXPECT_EQ(r.exits[0].pid, 9u);
  EXPECT_EQ(r.exits[0].exit_code, 256);
}

TEST(Decode, FileWriteFieldsAndBoundedPath) {
  kspan_file_write_event e{};
  e.hdr.type = KSPAN_EV_FILE_WRITE;
  e.hdr.tgid = 42;
  e.hdr.tid = 44;
  e.hdr.ts_ns = 900;
  e.fd = 5;
  e.writes = 2;
  e.bytes = 11;
  e.first_ns = 600;
  e.last_ns = 700;
  const std::string path = "/tmp/note.txt";
  std::memcpy(e.path, path.data(), path.size());
  e.path_len = static_cast<uint32_t>(path.size());
  Recorder r;
  ASSERT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kOk);
  ASSERT_EQ(r.file_writes.size(), 1u);
  const FileWriteEvent& w = r.file_writes[0];
  EXPECT_EQ(w.pid, 42u);
  EXPECT_EQ(w.tid, 44u);
  EXPECT_EQ(w.ts_ns, 1'000'000'900u);
  EXPECT_EQ(w.fd, 5);
  EXPECT_EQ(w.writes, 2u);
  EXPECT_EQ(w.bytes, 11u);
  EXPECT_EQ(w.first_ns, 1'000'000'600u);
  EXPECT_EQ(w.last_ns, 1'000'000'700u);
  EXPECT_EQ(w.path, path);
  EXPECT_EQ(DecodeRecord(&e, sizeof(e) - 1, kClock, &r), DecodeResult::kTooShort);
  e.path_len = KSPAN_PATH_LEN;
  EXPECT_EQ(DecodeRecord(&e, sizeof(e), kClock, &r), DecodeResult::kBadLength);
  EXPECT_EQ(r.file_writes.size(), 1u);
}

TEST(BootClock, OffsetIsWallMinusBoot) {
  BootClock c;
  timespec boot{}, real{};
  clock_gettime(CLOCK_BOOTTIME, &boot);
  clock_gettime(CLOCK_REALTIME, &real);
  const uint64_t b = uint64_t(boot.tv_sec) * 1'000'000'000 + boot.tv_nsec;
  const uint64_t w = uint64_t(real.tv_sec) * 1'000'000'000 + real.tv_nsec;
  const int64_t diff = static_cast<int64_t>(c.ToUnixNs(b)) - static_cast<int64_t>(w);
  EXPECT_LT(std::llabs(diff), 5'000'000);  // within 5 ms
}

}  // namespace
}  // namespace kspan::events
