// The one module that talks to libbpf. It owns kspan's BPF skeleton for its whole life:
//
//   preflight (root, BTF, tracefs) → open → set rodata and map sizes → load (verifier)
//   → attach every program → poll the ring buffer → detach and free on destruction.
//
// Nothing else in kspan calls bpf_* or libbpf. Threading: Open() and the destructor on
// any one thread; Poll() on one polling thread; ReadKernelCounters() from any thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "events/decode.h"
#include "events/event_sink.h"
#include "kspan/bpf/events.h"

struct ring_buffer;
struct bpf_link;

namespace kspan::events {

struct BpfSourceOptions {
  uint32_t capture_bytes = KSPAN_DEFAULT_CAPTURE;  // 0..KSPAN_MAX_CAPTURE
  // On connections that carry LLM API calls (bpf/common.bpf.h ks_llm_request); at or
  // below capture_bytes, such connections are not told apart.
  uint32_t llm_capture_bytes = KSPAN_MAX_CAPTURE;  // 0..KSPAN_MAX_CAPTURE
  uint32_t ring_buffer_bytes = 8u << 20;           // power of two, >= page size
  std::vector<uint32_t> pids;                      // empty: every process
  uint32_t self_pid = 0;                           // 0: getpid()
};

// One uprobe to attach: a program of bpf/tls.bpf.c at a file offset of a binary.
struct UprobeSpec {
  std::string program;   // e.g. "ks_ssl_read_enter"
  uint64_t file_offset;  // where in the file the probed instruction is
  bool retprobe = false; // fire on return (the offset must be the function's entry)
};

// A hook that could not be attached and what that costs the user.
struct MissingHook {
  std::string program;
  std::string error;
  std::string feature_lost;
};

class BpfEventSource {
 public:
  // Loads and attaches everything. A failure says what is wrong and what to do (not root,
  // no BTF, tracefs missing and not mountable, the verifier's rejection with the tail of
  // its log). Individual hooks that fail to attach are reported in missing_hooks() and
  // logged; if no data hook attaches at all, Open fails.
  static Result<std::unique_ptr<BpfEventSource>> Open(const BpfSourceOptions& options,
                                                      metrics::Registry* metrics);
  ~BpfEventSource();
  BpfEventSource(const BpfEventSource&) = delete;
  BpfEventSource& operator=(const BpfEventSource&) = delete;

  // Hands every event in the ring buffer to `sink`, waiting up to `timeout` for the first
  // when it is empty. Returns the number of records consumed.
  Result<int> Poll(EventSink* sink, std::chrono::milliseconds timeout);

  // Sums of the kernel's per-CPU counters (enum kspan_counter).
  std::array<uint64_t, KSPAN_CNT_MAX> ReadKernelCounters() const;

  // Attaches every spec to the file at `path`, for every process that maps it (uprobes
  // belong to the file, so processes that start later are covered). All or nothing: on a
  // failure what was attached is detached again and the error names the program. Returns
  // a handle for DetachUprobes. With `pids`, the probes fire only in those processes (the
  // kernel then plants no breakpoint in others, which pay nothing). Thread-safe.
  Result<uint64_t> AttachUprobes(const std::string& path, const std::vector<UprobeSpec>& specs,
                                 const std::vector<uint32_t>& pids = {});
  // Detaches a set attached by AttachUprobes (takes a while: RCU grace periods). Thread-safe.
  void DetachUprobes(uint64_t handle);

  int attached_programs() const { return static_cast<int>(links_.size()); }
  const std::vector<MissingHook>& missing_hooks() const { return missing_; }
  const BootClock& clock() const { return clock_; }

 private:
  BpfEventSource() = default;
  Status Load(const BpfSourceOptions& options);
  static int OnRecord(void* ctx, void* data, size_t size);

  struct Skeleton;
  Skeleton* skel_ = nullptr;
  ::ring_buffer* ring_ = nullptr;
  std::vector<::bpf_link*> links_;
  std::mutex uprobe_mu_;
  std::map<uint64_t, std::vector<::bpf_link*>> uprobes_;  // guarded by uprobe_mu_
  uint64_t next_uprobe_handle_ = 1;                       // guarded by uprobe_mu_
  std::vector<MissingHook> missing_;
  BootClock clock_;
  EventSink* sink_ = nullptr;  // only during Poll
  metrics::Registry* metrics_ = nullptr;
  metrics::Counter* records_ = nullptr;
  metrics::Counter* malformed_ = nullptr;
  int possible_cpus_ = 1;
};

// Name of a kernel counter, for metrics and logs ("ring_buffer_full_data", ...).
const char* KernelCounterName(int index);

}  // namespace kspan::events
