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
  uint32_t seq = 0;    // first sequence number of the segment that carried it
  uint32_t count = 0;  // valid contexts received on this socket so far
};

struct CarrierCounters {
  uint64_t written = 0, rewritten = 0, no_space = 0, parsed = 0, malformed = 0, too_big = 0;
};

// The sockops program's runs and the time they took (non-zero only while the kernel's
// BPF statistics are on: kernel.bpf_stats_enabled, or a BPF_ENABLE_STATS fd held).
struct ProgramRuns {
  uint64_t runs = 0, ns = 0;
};

struct TcpOptionCarrierOptions {
  std::string cgroup_path = "/sys/fs/cgroup";  // a cgroup v2 directory
  uint64_t netns_cookie = 0;                   // 0: every network namespace
};

class TcpOptionCarrier {
 public:
  static Result<std::unique_ptr<TcpOptionCarrier>> Start(const TcpOptionCarrierOptions& options);
  ~TcpOptionCarrier();
  TcpOptionCarrier(const TcpOptionCarrier&) = delete;
  TcpOptionCarrier& operator=(const TcpOptionCarrier&) = delete;

  // Carry `ctx` on the next data segment `sock_fd` (a connected TCP socket of this
  // process) sends.
  Status SetOutgoing(int sock_fd, const WireContext& ctx);
  // The last valid context received on `sock_fd`, if any.
  std::optional<ReceivedContext> Incoming(int sock_fd) const;
  CarrierCounters Counters() const;
  ProgramRuns Runs() const;

 private:
  struct Impl;
  explicit TcpOptionCarrier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The network namespace cookie of the calling thread's current namespace (SO_NETNS_COOKIE
// on a scratch socket), for TcpOptionCarrierOptions::netns_cookie.
Result<uint64_t> CurrentNetnsCookie();

}  // namespace kspan::carrier

#endif  // KSPAN_CARRIER_TCP_OPTION_CARRIER_H
