// The trace-context carrier's kernel half, owned: loads bpf/carrier.bpf.c, attaches its
// sockops program to one cgroup v2 and detaches it when destroyed (the only place that
// touches libbpf for the carrier). Wire format and why: include/kspan/bpf/carrier.h and
// docs/tracing.md "Context across hosts".
//
// Threading: Start and the destructor on one thread; SetOutgoing, Incoming and Counters may
// be called from any thread (each is one map syscall). Failure: Start returns the kernel's
// reason (the kernel refusing the program or the attach is a start-up fact to report, never
// a crash); the other calls return NotFound/Internal and change nothing.
#ifndef KSPAN_CARRIER_TCP_OPTION_CARRIER_H
#define KSPAN_CARRIER_TCP_OPTION_CARRIER_H

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kspan::carrier {

// A W3C trace id and span id as bytes on the wire (network order, as in traceparent).
struct WireContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  bool operator==(const WireContext&) const = default;
};

struct ReceivedContext {
  WireContext context;
  uint64_t offset = 0;  // stream offset (bytes since the connection's first) of its request
  uint32_t count = 0;   // valid contexts received on this connection so far
};

// A context the kernel set for a client's request (Options::kernel_contexts): the request
// starting at stream offset `offset` on (tgid, fd) carries these ids.
struct SentContext {
  uint32_t tgid = 0;
  int32_t fd = -1;
  uint64_t cookie = 0;  // the socket's cookie (SO_COOKIE)
  uint64_t offset = 0;
  WireContext context;
  uint32_t tid = 0;    // the thread whose send started the request
  uint64_t ts_ns = 0;  // CLOCK_BOOTTIME ns at that send's entry
};

// A server thread read the first byte of a request that came with a context: the read
// by thread `tid` of (tgid, fd) that returned at `ts_ns` (CLOCK_BOOTTIME) starts it.
struct ReadContext {
  uint32_t tgid = 0;
  uint32_t tid = 0;
  int32_t fd = -1;
  uint64_t cookie = 0;
  uint64_t offset = 0;
  uint64_t ts_ns = 0;
  WireContext context;
  // The request came with no context: the kernel chose context.trace_id for the calls the
  // thread makes while serving it (span id zero), and the SERVER span roots that trace.
  bool fresh = false;
};

// A context that arrived: the request starting at `offset` on connection `cookie` came
// with it.
struct ReceivedEvent {
  uint64_t cookie = 0;
  uint64_t offset = 0;
  WireContext context;
};

// One connection the carrier knows, by socket cookie (for tests and diagnostics).
struct CarrierConn {
  uint64_t cookie = 0;
  bool client = false;  // this end connected
  std::optional<ReceivedContext> received;
};

struct CarrierCounters {
  uint64_t written = 0, rewritten = 0, no_space = 0, parsed = 0, malformed = 0, too_big = 0, set = 0,
           events_lost = 0, unplaced = 0;
  // Reports read from the ring but dropped because nobody drained their kind for a while
  // (each kind keeps at most kMaxPendingReports).
  uint64_t reports_dropped = 0;
};

// The carrier's programs' runs and the time they took, summed (non-zero only while the kernel's
// BPF statistics are on: kernel.bpf_stats_enabled, or a BPF_ENABLE_STATS fd held).
struct ProgramRuns {
  uint64_t runs = 0, ns = 0;
};

struct TcpOptionCarrierOptions {
  std::string cgroup_path;    // a cgroup v2 directory; empty: the root of the cgroup v2 mount
  uint64_t netns_cookie = 0;  // 0: every network namespace
  // Attach the syscall tracepoints of the kernel's own contexts: a client's new request
  // gets a fresh context, in the trace of the request its thread is serving when that came
  // with one (host-wide: every socket read and write pays a lookup). Off: only SetOutgoing.
  bool kernel_contexts = false;
  uint32_t self_tgid = 0;  // never set contexts for this process's sockets
};

class TcpOptionCarrier {
 public:
  static Result<std::unique_ptr<TcpOptionCarrier>> Start(const TcpOptionCarrierOptions& options);
  ~TcpOptionCarrier();
  TcpOptionCarrier(const TcpOptionCarrier&) = delete;
  TcpOptionCarrier& operator=(const TcpOptionCarrier&) = delete;

  // Carry `ctx` on the next data segment `sock_fd` (a TCP socket of this process,
  // established after Start) sends. NotFound when the carrier does not know the connection.
  Status SetOutgoing(int sock_fd, const WireContext& ctx);
  // The last valid context received on `sock_fd`, if any.
  std::optional<ReceivedContext> Incoming(int sock_fd) const;
  // The contexts the kernel set, and those that arrived, since the last call of either, in
  // order (at most what its 256 KiB ring holds between two calls; the rest are counted in
  // events_lost). Drain reads the ring; DrainSent and DrainReceived each return their kind.
  std::vector<SentContext> DrainSent();
  std::vector<ReceivedEvent> DrainReceived();
  std::vector<ReadContext> DrainRead();
  // Reports of one kind kept between two drains of that kind; past it they are dropped
  // and counted (CarrierCounters::reports_dropped).
  static constexpr size_t kMaxPendingReports = 65536;
  std::vector<CarrierConn> Connections() const;
  CarrierCounters Counters() const;
  ProgramRuns Runs() const;

 private:
  struct Impl;
  explicit TcpOptionCarrier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Where cgroup v2 is mounted (/sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a
// hybrid one), from /proc/self/mounts; NotFound when it is not mounted.
Result<std::string> CgroupV2Root();

// Opens the cgroup v2 directory a carrier's sockops program attaches to: `*path`, or the
// root (CgroupV2Root) when it is empty, which is then written back to `*path` for messages.
// `carrier` names the carrier in the error.
Result<int> OpenCarrierCgroup(std::string* path, std::string_view carrier);

// The network namespace cookie of the calling thread's current namespace (SO_NETNS_COOKIE
// on a scratch socket), for TcpOptionCarrierOptions::netns_cookie.
Result<uint64_t> CurrentNetnsCookie();

}  // namespace kspan::carrier

#endif  // KSPAN_CARRIER_TCP_OPTION_CARRIER_H
