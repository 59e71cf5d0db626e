// The one module that talks to libbpf. It owns kspan's BPF skeleton for its whole life:
//
//   preflight (root, BTF, tracefs) → open → set rodata and map sizes → load (verifier)
//   → attach every program → poll the ring buffer → detach and free on destruction.
//
// Nothing else in kspan calls bpf_* or libbpf. Threading: Open() and the destructor on
// any one thread; Poll() on one polling thread; ReadKernelCounters(), AttachUprobes(),
// DetachUprobes(), MarkAgent() and UnmarkAgent() from any thread (including from an
// EventSink callback inside Poll()).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "events/decode.h"
#include "events/event_sink.h"
#include "kspan/bpf/events.h"
#include "kspan/bpf/maps.h"

struct ring_buffer;
struct bpf_link;

namespace kspan::events {

struct BpfSourceOptions {
  uint32_t capture_bytes = KSPAN_DEFAULT_CAPTURE;  // 0..KSPAN_MAX_CAPTURE
  // On connections that carry LLM API calls (bpf/llm.bpf.h ks_llm_request); at or
  // below capture_bytes, such connections are not told apart.
  uint32_t llm_capture_bytes = KSPAN_MAX_CAPTURE;  // 0..KSPAN_MAX_CAPTURE
  uint32_t ring_buffer_bytes = 8u << 20;           // power of two, >= page size
  std::vector<uint32_t> pids;                      // empty: every process
  // Include/exclude rules are in force: the kernel traces a process until SetSelected
  // says otherwise (KSPAN_SELECT_RULES). With `pids` as well, only those are traced and
  // SetSelected may skip some of them.
  bool select_by_rules = false;
  uint32_t self_pid = 0;  // 0: getpid()
};

// One uprobe to attach: a program of bpf/tls.bpf.c at a file offset of a binary.
struct UprobeSpec {
  std::string program;    // e.g. "ks_ssl_read" (a ProgramRow with Attach::kPerLibrary)
  uint64_t file_offset;   // where in the file the probed instruction is
  bool retprobe = false;  // fire on return (the offset must be the function's entry)
};

// What each BPF program of bpf/ serves: one row a program (tests/unit/bpf_objects_test.cc
// checks that every program in the object has exactly one row and every row names one),
// read by the loader instead of guessing from program names.
struct ProgramRow {
  enum class Attach : uint8_t {
    kAtStart,     // a tracepoint: the loader attaches it in Open()
    kPerLibrary,  // a uprobe: userspace/tls/ attaches it to each TLS library (AttachUprobes)
    kWithAgents,  // a tracepoint only agents need: attached when MarkAgent marks the first
                  // agent, so that no other process pays for it before (issue 17)
    kWithRules,   // a tracepoint only selection rules need (--include/--exclude): attached
                  // in Open() with them, else not at all
  };
  enum class Need : uint8_t {
    kOptional,  // a failure to attach costs `feature`, reported; kspan runs on
    kCore,      // payload capture itself: Open() fails when no kCore program attaches
  };
  // One tracepoint of a program the loader attaches to several (`hooks` below).
  struct Hook {
    const char* tracepoint;  // "category/name", e.g. "syscalls/sys_exit_read"
    const char* feature;     // what the user loses when this one is not attached
    Need need;
  };
  const char* program;  // the BPF program's name (<= 15 characters: the kernel's limit)
  const char* feature;  // what the user loses when it is not attached
  Need need;
  Attach attach;
  // Empty: attached where its SEC() says. Else (SEC("tracepoint") with no target) to each
  // of these, one link each; then each hook's own `feature` and `need` apply.
  std::span<const Hook> hooks = {};
};

// Every program, in bpf/ file order. Static storage; safe from any thread.
std::span<const ProgramRow> ProgramTable();
// The row of `program`, or nullptr when the table has none.
const ProgramRow* FindProgramRow(std::string_view program);

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

  // Agents and MCP servers. For a process marked here kspan also tracks, besides its TCP
  // sockets, its AF_UNIX stream sockets, pipes and FIFOs (KSPAN_AGENT_F_LOCAL) and its
  // writes to fd 1 and 2 (KSPAN_AGENT_F_STDIO), as connections of their own kind
  // (ConnOpenEvent::kind). Other processes never pay for this: their non-TCP fds stay in
  // the kernel's negative cache. An fd the process used before it was marked sits in
  // that cache too, so MarkAgent removes the process's negative entries (it walks the
  // kernel's fd map: ~0.25 us an entry here, 2 ms for 9000, ~17 ms were all 65536 used;
  // so call it once, when a process is found to be an agent); the next syscall on each
  // such fd tracks it, mid-stream, its positions counting from there. Marking again
  // replaces the flags (fds already tracked stay tracked). The mark goes by itself when
  // the process exits. Fails when 4096 processes are marked (ResourceExhausted) or the
  // flags are empty or unknown (InvalidArgument).
  //
  // Thread-safe, and calls serialise among themselves; a syscall that races with the
  // call (the process touches a new fd at that very moment) may leave that one fd
  // uncaptured until its file changes.
  Status MarkAgent(uint32_t tgid, uint8_t flags = KSPAN_AGENT_F_LOCAL | KSPAN_AGENT_F_STDIO);
  // Stops MarkAgent: the process's Unix sockets, pipes and stdio are no longer tracked.
  // The kernel sends no close event for them, so their keys are returned for the caller
  // to end. Unmarking a process that is not marked returns an empty list. Thread-safe.
  Result<std::vector<ConnKey>> UnmarkAgent(uint32_t tgid);

  // Tells the kernel whether tgid is traced (process/selection.h decides; `verdict` is an
  // enum kspan_select_value): a skipped process costs one map lookup per hooked syscall
  // from then on. The entry goes when the process execs or exits (a new program is
  // decided again). Thread-safe.
  Status SetSelected(uint32_t tgid, uint8_t verdict);

  // Links attached by Open(); the agents' programs (Attach::kWithAgents) come later.
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
  // Deletes tgid's ks_conns entries whose kind is in `kinds` (bit 1 << kspan_fd_kind);
  // returns the keys and generations deleted.
  Result<std::vector<ConnKey>> DropConnEntries(uint32_t tgid, unsigned kinds);
  // Attaches the programs of kWithAgents rows into agent_links_ (agent_mu_ held); a hook
  // that fails is logged and costs its feature.
  void AttachAgentPrograms();
  std::mutex agent_mu_;                   // serialises MarkAgent/UnmarkAgent
  bool agent_programs_attached_ = false;  // guarded by agent_mu_
  std::vector<::bpf_link*> agent_links_;  // guarded by agent_mu_
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
