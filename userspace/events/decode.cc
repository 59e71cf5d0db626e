#include "events/decode.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <ctime>
#include <string>

#include "kspan/bpf/events.h"

namespace kspan::events {
namespace {

int64_t ClockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

Endpoint MakeEndpoint(int family, const uint8_t* addr, uint16_t port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    inet_ntop(AF_INET, addr, buf, sizeof(buf));
  } else {
    static constexpr uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(addr, kV4Mapped, 12) == 0) {
      inet_ntop(AF_INET, addr + 12, buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, addr, buf, sizeof(buf));
    }
  }
  return Endpoint{buf, port};
}

// Splits a NUL-separated argv block.
std::vector<std::string> SplitArgs(const char* p, size_t n) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] == '\0') {
      out.emplace_back(p + start, i - start);
      start = i + 1;
    }
  }
  if (start < n) out.emplace_back(p + start, n - start);
  return out;
}

std::string BoundedString(const char* p, size_t cap) {
  return std::string(p, strnlen(p, cap));
}

// An exec event's cgroup path as a /proc/PID/cgroup line ("HIERARCHY:CONTROLLERS:/a/b\n",
// `prefix` the part before the path); "" for the root or a name no path can hold (a
// newline would start a line of its own).
std::string CgroupLine(const kspan_cgroup_path& c, const char* prefix) {
  if (c.parts == 0) return "";
  std::string line = prefix;
  for (size_t i = c.parts; i-- > 0;) {
    const std::string part = BoundedString(c.part[i], KSPAN_CGROUP_PART_LEN);
    if (part.empty() || part.find_first_of("/\n") != std::string::npos) return "";
    line += '/';
    line += part;
  }
  return line + '\n';
}

}  // namespace

BootClock::BootClock() {
  // Take the pair with the tightest bracket of a few tries.
  int64_t best_gap = INT64_MAX;
  offset_ns_ = 0;
  for (int i = 0; i < 5; ++i) {
    const int64_t b0 = ClockNs(CLOCK_BOOTTIME);
    const int64_t r = ClockNs(CLOCK_REALTIME);
    const int64_t b1 = ClockNs(CLOCK_BOOTTIME);
    if (b1 - b0 < best_gap) {
      best_gap = b1 - b0;
      offset_ns_ = r - (b0 + (b1 - b0) / 2);
    }
  }
}

DecodeResult DecodeRecord(const void* data, size_t size, const BootClock& clock, EventSink* sink) {
  if (size < sizeof(kspan_event_header)) return DecodeResult::kTooShort;
  kspan_event_header hdr;
  std::memcpy(&hdr, data, sizeof(hdr));
  const auto* bytes = static_cast<const uint8_t*>(data);
  switch (hdr.type) {
    case KSPAN_EV_DATA: {
      constexpr size_t kHead = offsetof(kspan_data_event, data);
      if (size < kHead) return DecodeResult::kTooShort;
      kspan_data_event raw;
      std::memcpy(&raw, data, kHead);
      if (raw.captured_len > KSPAN_MAX_CAPTURE || raw.captured_len > raw.total_len ||
          kHead + raw.captured_len > size ||
          (raw.direction != KSPAN_DIR_EGRESS && raw.direction != KSPAN_DIR_INGRESS)) {
        return DecodeResult::kBadLength;
      }
      DataEvent e;
      e.key = {raw.conn.tgid, raw.conn.fd, raw.conn.generation};
      e.tid = raw.hdr.tid;
      e.turn = raw.hdr.turn;
      e.enter_ns = clock.ToUnixNs(raw.enter_ns);
      e.exit_ns = clock.ToUnixNs(raw.hdr.ts_ns);
      e.direction = raw.direction == KSPAN_DIR_EGRESS ? Direction::kEgress : Direction::kIngress;
      e.role = static_cast<Role>(raw.role <= 2 ? raw.role : 0);
      e.position = raw.position;
      e.total_len = raw.total_len;
      e.tls = (raw.flags & KSPAN_DATA_F_TLS) != 0;
      e.unbound = (raw.flags & KSPAN_DATA_F_UNBOUND) != 0;
      e.data = std::string_view(reinterpret_cast<const char*>(bytes + kHead), raw.captured_len);
      sink->OnData(e);
      return DecodeResult::kOk;
    }
    case KSPAN_EV_CONN_OPEN: {
      if (size < sizeof(kspan_conn_event)) return DecodeResult::kTooShort;
      kspan_conn_event raw;
      std::memcpy(&raw, data, sizeof(raw));
      // Each kind has its family (events.h, enum kspan_conn_kind); anything else is
      // malformed, and so is an unknown kind.
      int want_family = 0;
      switch (raw.kind) {
        case KSPAN_CONN_KIND_TCP:
          if (raw.family != AF_INET && raw.family != AF_INET6) return DecodeResult::kBadLength;
          want_family = raw.family;
          break;
        case KSPAN_CONN_KIND_UNIX: want_family = AF_UNIX; break;
        case KSPAN_CONN_KIND_PIPE:
        case KSPAN_CONN_KIND_STDOUT:
        case KSPAN_CONN_KIND_STDERR: want_family = AF_UNSPEC; break;
        default: return DecodeResult::kBadLength;
      }
      if (raw.family != want_family) return DecodeResult::kBadLength;
      ConnOpenEvent e;
      e.key = {raw.conn.tgid, raw.conn.fd, raw.conn.generation};
      e.tid = raw.hdr.tid;
      e.turn = raw.hdr.turn;
      e.ts_ns = clock.ToUnixNs(raw.hdr.ts_ns);
      e.role = static_cast<Role>(raw.role <= 2 ? raw.role : 0);
      e.midstream = (raw.flags & KSPAN_CONN_F_MIDSTREAM) != 0;
      e.listen_queue_known = (raw.flags & KSPAN_CONN_F_BACKLOG) != 0;
      e.listen_queue = raw.listen_queue;
      e.listen_queue_max = raw.listen_queue_max;
      e.kind = static_cast<ConnKind>(raw.kind);
      e.tuple.family = raw.family;
      if (e.kind == ConnKind::kTcp) {
        e.tuple.local = MakeEndpoint(raw.family, raw.local_addr, raw.local_port);
        e.tuple.remote = MakeEndpoint(raw.family, raw.remote_addr, raw.remote_port);
      } else if (e.kind == ConnKind::kUnix || e.kind == ConnKind::kPipe) {
        std::memcpy(&e.local_id, raw.local_addr, sizeof(e.local_id));
        std::memcpy(&e.peer_id, raw.remote_addr, sizeof(e.peer_id));
      }
      sink->OnConnOpen(e);
      return DecodeResult::kOk;
    }
    case KSPAN_EV_CONN_CLOSE: {
      if (size < sizeof(kspan_close_event)) return DecodeResult::kTooShort;
      kspan_close_event raw;
      std::memcpy(&raw, data, sizeof(raw));
      ConnCloseEvent e;
      e.key = {raw.conn.tgid, raw.conn.fd, raw.conn.generation};
      e.tid = raw.hdr.tid;
      e.ts_ns = clock.ToUnixNs(raw.hdr.ts_ns);
      e.bytes_sent = raw.bytes_sent;
      e.bytes_received = raw.bytes_received;
      sink->OnConnClose(e);
      return DecodeResult::kOk;
    }
    case KSPAN_EV_PROC_EXEC: {
      if (size < sizeof(kspan_exec_event)) return DecodeResult::kTooShort;
      // The struct is large: decode fields in place instead of copying it whole.
      const auto* raw = static_cast<const kspan_exec_event*>(data);
      kspan_event_header h;
      std::memcpy(&h, &raw->hdr, sizeof(h));
      uint32_t ppid, args_len;
      std::memcpy(&ppid, &raw->ppid, sizeof(ppid));
      std::memcpy(&args_len, &raw->args_len, sizeof(args_len));
      if (args_len > KSPAN_ARGS_LEN) return DecodeResult::kBadLength;
      ProcessExecEvent e;
      e.pid = h.tgid;
      e.ppid = ppid;
      e.ts_ns = clock.ToUnixNs(h.ts_ns);
      e.comm = BoundedString(raw->comm, KSPAN_COMM_LEN);
      e.filename = BoundedString(raw->filename, KSPAN_PATH_LEN);
      e.exe_name = BoundedString(raw->exe_name, KSPAN_NAME_LEN);
      std::memcpy(&e.parent_tid, &raw->parent_tid, sizeof(e.parent_tid));
      std::memcpy(&e.netns, &raw->netns, sizeof(e.netns));
      e.argv = SplitArgs(raw->args, args_len);
      // Their counts before anything else of them is read: a path of more parts than the
      // event holds is no event of ours.
      kspan_cgroup_path v2, memory;
      std::memcpy(&v2, &raw->cgroup_v2, sizeof(v2));
      std::memcpy(&memory, &raw->cgroup_memory, sizeof(memory));
      if (v2.parts > KSPAN_CGROUP_PARTS || memory.parts > KSPAN_CGROUP_PARTS) return DecodeResult::kBadLength;
      e.cgroup = CgroupLine(v2, "0::") + CgroupLine(memory, "1:memory:");
      sink->OnExec(e);
      return DecodeResult::kOk;
    }
    case KSPAN_EV_PROC_EXIT: {
      if (size < sizeof(kspan_exit_event)) return DecodeResult::kTooShort;
      kspan_exit_event raw;
      std::memcpy(&raw, data, sizeof(raw));
      ProcessExitEvent e;
      e.pid = raw.hdr.tgid;
      e.ts_ns = clock.ToUnixNs(raw.hdr.ts_ns);
      e.exit_code = raw.exit_code;
      sink->OnExit(e);
      return DecodeResult::kOk;
    }
    case KSPAN_EV_TLS_BIND: {
      if (size < sizeof(kspan_tls_bind_event)) return DecodeResult::kTooShort;
      kspan_tls_bind_event raw;
      std::memcpy(&raw, data, sizeof(raw));
      TlsBindEvent e;
      e.key = {raw.conn.tgid, raw.conn.fd, raw.conn.generation};
      e.tid = raw.hdr.tid;
      e.ts_ns = clock.ToUnixNs(raw.hdr.ts_ns);
      e.ssl = raw.ssl;
      e.position = raw.position;
      e.bytes = raw.bytes;
      sink->OnTlsBind(e);
      return DecodeResult::kOk;
    }
    case KSPAN_EV_FILE_WRITE: {
      if (size < sizeof(kspan_file_write_event)) return DecodeResult::kTooShort;
      const auto* raw = static_cast<const kspan_file_write_event*>(data);
      kspan_event_header h;
      std::memcpy(&h, &raw->hdr, sizeof(h));
      FileWriteEvent e;
      e.pid = h.tgid;
      e.tid = h.tid;
      e.ts_ns = clock.ToUnixNs(h.ts_ns);
      std::memcpy(&e.fd, &raw->fd, sizeof(e.fd));
      std::memcpy(&e.writes, &raw->writes, sizeof(e.writes));
      std::memcpy(&e.bytes, &raw->bytes, sizeof(e.bytes));
      uint64_t first, last;
      uint32_t path_len;
      std::memcpy(&first, &raw->first_ns, sizeof(first));
      std::memcpy(&last, &raw->last_ns, sizeof(last));
      std::memcpy(&path_len, &raw->path_len, sizeof(path_len));
      if (path_len >= KSPAN_PATH_LEN) return DecodeResult::kBadLength;
      e.first_ns = clock.ToUnixNs(first);
      e.last_ns = clock.ToUnixNs(last);
      e.path.assign(raw->path, path_len);
      sink->OnFileWrite(e);
      return DecodeResult::kOk;
    }
    case KSPAN_EV_LISTEN: {
      if (size < sizeof(kspan_listen_event)) return DecodeResult::kTooShort;
      kspan_listen_event raw;
      std::memcpy(&raw, data, sizeof(raw));
      ListenEvent e;
      e.pid = raw.hdr.tgid;
      e.ts_ns = clock.ToUnixNs(raw.hdr.ts_ns);
      e.fd = raw.fd;
      e.port = raw.port;
      sink->OnListen(e);
      return DecodeResult::kOk;
    }
    case KSPAN_EV_PROC_FORK: {
      if (size < sizeof(kspan_fork_event)) return DecodeResult::kTooShort;
      kspan_fork_event raw;
      std::memcpy(&raw, data, sizeof(raw));
      ProcessForkEvent e;
      e.pid = raw.hdr.tgid;
      e.ppid = raw.ppid;
      e.ts_ns = clock.ToUnixNs(raw.hdr.ts_ns);
      sink->OnFork(e);
      return DecodeResult::kOk;
    }
    default: return DecodeResult::kUnknownType;
  }
}

}  // namespace kspan::events
