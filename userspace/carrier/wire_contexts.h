// The agent's half of the TCP-option carrier: which request each context the kernel
// reported belongs to (docs/tracing.md "Context across hosts").
//
// The kernel (bpf/carrier.bpf.c) reports two things, each tied to one syscall of one thread:
//
//   sent  the send of (pid, fd) by thread tid at ts started a client's new request, and
//         the kernel put these ids on its first segment: the trace id and the span id
//         the CLIENT span of that request must have (the serving host names it as parent).
//   read  the read of (pid, fd) by thread tid that returned at ts began exactly at the
//         first byte of a segment that carried these ids: the request it starts came from
//         the CLIENT span with that span id, in that trace.
//
// The capture saw the same syscalls: a request's timing starts at the entry of the send
// that moved its first byte (a client) or the exit of the read that did (a server), on
// the same thread. So Take() matches a request to the report of the same (pid, fd, tid)
// whose time is nearest its start, and each report is used once. A report nobody takes is
// counted when it ages out. The two programs run on one tracepoint of one syscall, the
// capture's first (the agent attaches the carrier after it), so the report comes after
// the start: 1-50 µs on an idle host, but an interrupt or a host that deschedules the
// virtual CPU between the two programs stretches that (114-144 µs for 3 of 1,200 requests
// on a 2-core VM with its cores busy; nothing bounds it). So a report may come up to
// `late_tolerance_ns` after the start, but never at or after the request's answer
// (WireQuery::answer_ns) or the connection's next request (next_start_ns): the thread
// moves neither before both programs of the request's own syscall ran, so a report from
// then on is another request's. Before the start only `tolerance_ns` (the programs in the
// other order: another agent's capture, or one attached later).
//
// TLS (WireQuery::tls): the capture times a request at the library call (SSL_write's
// entry, SSL_read's return), and the ciphertext syscalls happen inside it, on the same
// thread: a client's report comes after its request's start (the write inside SSL_write),
// a server's before it (the read inside SSL_read). So a TLS request takes, on its thread,
// the first report in [start, start + tolerance) (client; before the request's answer was
// read) or the last in (start - tolerance, start] (server), with `tls_tolerance_ns`
// (encrypting or decrypting a record and being preempted there). The kernel sets a context
// only at a write that follows something received, and a TLS handshake receives: the
// context the client's kernel wrote last before the first request often rides the
// handshake's Finished, and the request's own segments carry none (nothing arrived in
// between). That context is still the one in force for the request on both hosts, so the
// connection's first request (WireQuery::first), when no report of its own matches, takes
// the last report of the connection before its start (after `open_ns`, its connect or
// accept; any thread). Both ends see the same contexts in the same order, so they agree;
// when they do not (a report lost, a write delayed past the tolerance), the SERVER names a
// span id no CLIENT took: a missing parent, never another request's.
//
// Trust: the kernel took only options with our ExID, exactly 28 bytes and non-zero ids;
// Take() checks the ids again and counts anything else as rejected (a new trace). A
// context is only ever a parent id: it cannot make kspan emit more than one span.
//
// Bounded: at most `max_reports` held (the oldest go first, counted), each at most
// `max_age_ns`. Single-threaded: the pipeline thread (the agent's poll loop feeds it and
// the stitcher asks it).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>

#include "carrier/tcp_option_carrier.h"
#include "common/metrics.h"
#include "correlator/wire_request.h"
#include "model/span.h"

namespace kspan::carrier {

struct WireContextsOptions {
  uint64_t tolerance_ns = 100'000;
  uint64_t late_tolerance_ns = 5'000'000;
  // TLS: between the library call and its ciphertext syscall the thread encrypts or
  // decrypts, and a busy host preempts it there (measured: past 100 µs for 1 in 8 requests
  // at load average 13 on 2 cores). The window is one-sided and, for a client, ends at its
  // answer, so no other request's report falls in it.
  uint64_t tls_tolerance_ns = 5'000'000;
  uint64_t max_age_ns = 30'000'000'000;
  size_t max_reports = 65536;
};

// One request as the stitcher knows it.
using WireQuery = correlator::WireRequest;

class WireContexts {
 public:
  WireContexts(WireContextsOptions options, metrics::Registry* metrics);

  // Reports as the kernel gave them, with their times already in Unix ns.
  void AddSent(uint32_t pid, int32_t fd, uint32_t tid, uint64_t ts_ns, const WireContext& ctx);
  // fresh: the request came with no context and the kernel chose ctx.trace_id for it (a
  // zero span id; ReadContext::fresh).
  void AddRead(uint32_t pid, int32_t fd, uint32_t tid, uint64_t ts_ns, const WireContext& ctx,
               bool fresh = false);

  // The context of the request: for a client, the trace id and the span id (in parent_id)
  // its CLIENT span must take; for a server, the trace and the parent span id, or for a
  // fresh report the trace id with an invalid (zero) parent: the SERVER span is the root
  // of that trace. nullopt when no report matches (or the one that does is invalid:
  // counted as rejected).
  std::optional<model::TraceParent> Take(const WireQuery& q);

  // Forgets reports older than max_age_ns before `now_ns` (Unix ns), counted as unmatched.
  void Prune(uint64_t now_ns);

  size_t size() const { return held_; }

 private:
  struct Report {
    uint64_t seq;  // order of arrival, across keys
    uint32_t tid;
    uint64_t ts_ns;
    WireContext ctx;
    bool fresh = false;
    bool used = false;
  };
  struct Key {
    uint32_t pid;
    int32_t fd;
    bool server;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()((uint64_t{k.pid} << 32 | static_cast<uint32_t>(k.fd)) * 2 + k.server);
    }
  };
  void Add(const Key& key, uint32_t tid, uint64_t ts_ns, const WireContext& ctx, bool fresh = false);
  // The report a request's own syscall made (nullptr: none).
  Report* Own(std::deque<Report>& reports, const WireQuery& q);
  // TLS, the connection's first request: the last report of the connection before it.
  Report* LastBefore(std::deque<Report>& reports, const WireQuery& q);
  // Drops the front report of `key` if it is report `seq` (else it is gone already).
  void DropFront(const Key& key, uint64_t seq);

  WireContextsOptions options_;
  std::unordered_map<Key, std::deque<Report>, KeyHash> reports_;
  struct Arrival {
    uint64_t seq, ts_ns;
    Key key;
  };
  std::deque<Arrival> order_;  // every report held, in order of arrival (may hold gone ones)
  uint64_t next_seq_ = 0;
  size_t held_ = 0;
  metrics::Counter* used_client_;
  metrics::Counter* used_server_;
  metrics::Counter* fresh_server_;
  metrics::Counter* unmatched_client_;
  metrics::Counter* unmatched_server_;
  metrics::Counter* rejected_;
};

}  // namespace kspan::carrier
