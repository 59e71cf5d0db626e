// Which processes kspan traces: include and exclude rules (--include, --exclude), like
// OBI's discovery section. A rule is one or more criteria joined by '&', all of which
// must hold:
//
//   exe=GLOB          the executable's path when GLOB has a '/', else its file name
//   cmdline=GLOB      the command line, arguments joined by spaces
//   port=N | N-M      the process listens on that TCP port (IPv4 or IPv6)
//   container=ID      its container's id starts with ID (or matches it as a glob)
//   netns=self | N    its network namespace is kspan's own, or the one with inode N (as
//                     /proc/PID/ns/net names it: net:[N]); one kspan per namespace
//   k8s.namespace=GLOB, k8s.pod=GLOB, k8s.owner=GLOB (Deployment, StatefulSet, DaemonSet,
//   Job, CronJob or ReplicaSet name), k8s.label.NAME=GLOB   from its pod (k8s/)
//
// e.g. --include 'exe=nginx' --include 'port=8000-8099' --exclude 'cmdline=*healthcheck*'.
// A process is traced when no include rule is given or one matches, and no exclude rule
// matches. Globs are fnmatch(3)'s: *, ?, [...].
//
// When: a process is decided when it execs (the exec event), a forked child as its parent
// was (the fork event: it runs the parent's program in the parent's namespaces), else at
// its first event (one that was running before kspan). A process gone before it is
// decided is judged by what its exec (or its parent) left: its program, arguments and
// network namespace. The decision goes to the kernel
// (BpfEventSource::SetSelected), after which a skipped process costs one map lookup per
// hooked syscall and nothing is copied. Until then its events reach user space and are
// dropped here (counted). Listening ports change after exec, so a decision a port rule
// could change is checked again every few seconds while the process lives; one that
// needs its pod's metadata waits for it (events dropped, counted) up to a bound, then is
// decided without it. A restarted process execs again and is decided the same way.
//
// Single-threaded: the pipeline thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "process/process_table.h"

namespace kspan::process {

struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 0;
  bool operator==(const PortRange&) const = default;
};

// One rule: each field that is set must match.
struct SelectRule {
  std::string text;  // as written, for logs and the ready line
  std::string exe;
  std::string cmdline;
  std::vector<PortRange> ports;  // any of them
  std::string container;
  uint64_t netns = 0;  // network namespace inode; 0: any
  std::string k8s_namespace;
  std::string k8s_pod;
  std::string k8s_owner;
  std::vector<std::pair<std::string, std::string>> k8s_labels;  // name, glob

  bool needs_ports() const { return !ports.empty(); }
  bool needs_pod() const {
    return !k8s_namespace.empty() || !k8s_pod.empty() || !k8s_owner.empty() || !k8s_labels.empty();
  }
};

struct SelectionRules {
  std::vector<SelectRule> include;
  std::vector<SelectRule> exclude;
  bool empty() const { return include.empty() && exclude.empty(); }
};

// "exe=nginx&port=8080"; `where` names the flag, variable or file key in errors.
Result<SelectRule> ParseSelectRule(std::string_view where, std::string_view text);

// What a rule is matched against.
struct ProcessFacts {
  std::string exe_path;
  std::string exe_name;
  std::string command_line;
  std::vector<uint16_t> listening_ports;  // sorted; only read when a rule needs them
  std::string container_id;
  uint64_t netns = 0;      // network namespace inode; 0: unknown (only read when a rule needs it)
  bool pod_known = false;  // the fields below were found (a pod lookup answered)
  std::string k8s_namespace;
  std::string k8s_pod;
  std::string k8s_owner;
  std::vector<std::pair<std::string, std::string>> k8s_labels;
};

bool Matches(const SelectRule& rule, const ProcessFacts& facts);
// include empty or one matches, and no exclude matches.
bool Selected(const SelectionRules& rules, const ProcessFacts& facts);

// The inode of pid's network namespace (/proc/PID/ns/net is "net:[N]"); 0 when unknown.
uint64_t NetnsInode(const std::string& proc_root, const std::string& pid);

// The TCP ports pid listens on: LISTEN entries of its network namespace's
// /proc/PID/net/tcp and tcp6 whose socket inode is one of its fds. At most `max_fds` fds
// are looked at. Empty when /proc has no such process.
std::vector<uint16_t> ListeningPorts(const std::string& proc_root, uint32_t pid, size_t max_fds = 65536);

// What the kernel is told of a process (kspan/bpf/maps.h enum kspan_select_value).
enum class KernelVerdict : uint8_t {
  kSkip = 0,
  kTrace = 1,
  // Skipped until it calls listen(): then the kernel traces it and reports the port
  // (OnListen), which decides it again. Only a port rule keeps it out, so a port it starts
  // listening on may select it from its first connection.
  kSkipUntilListen = 2,
};

struct SelectionOptions {
  SelectionRules rules;
  std::string proc_root = "/proc";
  // Labels and names of a container's pod; null: none (k8s rules never match).
  const PodLookup* pods = nullptr;
  // Tells the kernel (BpfEventSource::SetSelected). May be empty (tests).
  std::function<Status(uint32_t pid, KernelVerdict verdict)> tell_kernel;
  uint64_t recheck_interval_ns = 2'000'000'000;  // port-dependent decisions
  uint64_t max_pod_wait_ns = 30'000'000'000;     // a decision waiting for its pod
  size_t max_rechecks_per_tick = 256;
  size_t max_processes = 65536;  // decisions remembered; past it the oldest are forgotten
};

class Selection {
 public:
  Selection(SelectionOptions options, ProcessTable* processes, metrics::Registry* metrics);

  bool active() const { return !options_.rules.empty(); }

  // Whether pid's events go on. Decides a pid not seen yet (reading /proc). `now_ns`:
  // any monotonic clock in ns, the same as Tick's. `accepted_port`: the local port of a
  // TCP connection pid just accepted, so a port it listens on (0: none); a decision a
  // port rule could change is made again at once when it is new.
  bool Traced(uint32_t pid, uint64_t now_ns, uint16_t accepted_port = 0);
  // A new program: decided again now (the exec event reached the process table first).
  bool OnExec(uint32_t pid, uint64_t now_ns);
  // A new process: decided as its parent is, when the parent is decided (the kernel copied
  // the parent's verdict); else at its first event.
  void OnFork(uint32_t pid, uint32_t ppid, uint64_t now_ns);
  // pid (told kSkipUntilListen) is about to listen on `port`, and the kernel traces it
  // since: decided again with the port and the verdict told again, so a server a port
  // rule selects is traced from its first connection (not from the next periodic look,
  // recheck_interval_ns, at its listeners) and one it does not is skipped anew.
  void OnListen(uint32_t pid, uint64_t now_ns, uint16_t port);
  void OnExit(uint32_t pid);
  // Checks again the decisions that are due (ports, a pod that may have arrived).
  void Tick(uint64_t now_ns);

  size_t size() const { return decisions_.size(); }

 private:
  enum class State : uint8_t { kTraced, kSkipped, kPending };
  struct Decision {
    State state = State::kPending;
    bool recheck = false;            // a port rule could change it
    bool queued = false;             // in checks_
    std::vector<uint16_t> accepted;  // ports it accepted on (a listener /proc may miss), at most 8
    uint64_t first_ns = 0;           // when it was first decided (pending: since when)
    uint64_t next_check = 0;         // recheck or pending: when to look again
    uint64_t told_ns = 0;            // when the kernel was last told it is skipped
  };
  // Decides pid from its facts now; `fresh` forgets what was known of it (a new program),
  // `accepted_port` (0: none) is a port it was just seen accepting on.
  Decision& Decide(uint32_t pid, uint64_t now_ns, bool fresh, uint16_t accepted_port = 0);
  // pid's decision, forgotten and pending as of now, within the bound on decisions.
  Decision& Fresh(uint32_t pid, uint64_t now_ns);
  ProcessFacts FactsOf(uint32_t pid, const Decision& d, bool* pod_wanted);
  // Returns whether the kernel was told.
  bool Apply(uint32_t pid, Decision* d, State s, uint64_t now_ns);
  void TellKernel(uint32_t pid, const Decision& d);

  SelectionOptions options_;
  ProcessTable* processes_;
  bool rules_need_ports_ = false;
  bool rules_need_netns_ = false;
  bool rules_need_pod_ = false;
  std::unordered_map<uint32_t, Decision> decisions_;
  std::deque<uint32_t> order_;   // decision order, for the bound (may hold stale pids)
  std::deque<uint32_t> checks_;  // pids to look at again, round-robin
  metrics::Counter* traced_;
  metrics::Counter* skipped_;
  metrics::Counter* changed_;
  metrics::Counter* dropped_skipped_;
  metrics::Counter* dropped_pending_;
  metrics::Counter* kernel_failed_;
  metrics::Counter* listens_;
};

}  // namespace kspan::process
