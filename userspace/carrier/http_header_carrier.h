// The opt-in HTTP-header carrier's kernel half, owned (bpf/hdr_carrier.bpf.c): loads it,
// attaches its sockops program to one cgroup v2, its sk_msg program to its sockhash and its
// syscall tracepoints, and detaches all of them when destroyed. What it writes and where it
// refuses to: include/kspan/bpf/hdr_carrier.h and docs/tracing.md "Context across hosts".
//
// Threading: Start and the destructor on one thread; the other calls from any thread (map
// syscalls and one ring buffer). Failure: Start returns the kernel's reason (a start-up fact
// to report, never a crash).
#ifndef KSPAN_CARRIER_HTTP_HEADER_CARRIER_H
#define KSPAN_CARRIER_HTTP_HEADER_CARRIER_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "carrier/tcp_option_carrier.h"
#include "common/status.h"

namespace kspan::carrier {

struct HttpHeaderCarrierOptions {
  std::string cgroup_path;             // a cgroup v2 directory; empty: the root of the cgroup v2 mount
  uint64_t netns_cookie = 0;           // 0: every network namespace
  uint32_t self_tgid = 0;              // never write into this process's requests
  bool keep_option_callbacks = false;  // the TCP-option carrier runs too (it needs them)
};

// The kernel's counts (kspan_hdr_counter).
struct HttpHeaderCounters {
  uint64_t written = 0, skip_not_http = 0, skip_tls = 0, skip_http2 = 0, skip_has_traceparent = 0,
           skip_connect = 0, skip_upgrade = 0, skip_split_head = 0, skip_pipelined = 0, skip_framing = 0,
           skip_mid_stream = 0, push_failed = 0, removed = 0, incoming_valid = 0, incoming_invalid = 0,
           events_lost = 0;
  // tracestate: lines written, left to the application's own, lost (evicted per thread); the
  // lists of served requests: kept, truncated, invalid, too_many (>32 members), no_traceparent.
  uint64_t ts_written = 0, ts_app_has = 0, ts_lost = 0, ts_in_valid = 0, ts_in_truncated = 0,
           ts_in_invalid = 0, ts_in_too_many = 0, ts_in_no_traceparent = 0;
};

class HttpHeaderCarrier {
 public:
  static Result<std::unique_ptr<HttpHeaderCarrier>> Start(const HttpHeaderCarrierOptions& options);
  ~HttpHeaderCarrier();
  HttpHeaderCarrier(const HttpHeaderCarrier&) = delete;
  HttpHeaderCarrier& operator=(const HttpHeaderCarrier&) = delete;

  // The contexts the kernel wrote into requests since the last call, in order: the CLIENT
  // span of the request the thread `tid` of (tgid, fd) sent at `ts_ns` takes these ids.
  std::vector<SentContext> DrainSent();
  // Whether the socket `sock_fd` (of this process) is in the carrier's sockhash now, i.e.
  // its sends, receives and ioctls run through the kernel's tcp_bpf code.
  bool InSockhash(int sock_fd) const;
  HttpHeaderCounters Counters() const;
  ProgramRuns Runs() const;
  static constexpr size_t kMaxPendingReports = 65536;

 private:
  struct Impl;
  explicit HttpHeaderCarrier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kspan::carrier

#endif  // KSPAN_CARRIER_HTTP_HEADER_CARRIER_H
