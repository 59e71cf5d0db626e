// What kspan knows about each watched process, and the OpenTelemetry Resource its spans
// carry. Fed by exec/exit events; filled in from /proc the first time a process shows
// network activity (it is almost always still alive then: events are drained within
// milliseconds), falling back to what the exec event (or, for a forked child, its
// parent's entry) carried when /proc is gone.
//
// Resource attributes, one value per key, the first source that has the key winning:
//   1. the process's own: service.name from its OTEL_SERVICE_NAME, else from its
//      OTEL_RESOURCE_ATTRIBUTES; the rest of its OTEL_RESOURCE_ATTRIBUTES
//   2. what kspan knows of the process: service.name (its pod's, ProcessTableOptions::pods,
//      else the executable name, when 1 has none), process.pid, process.parent_pid, process.executable.name,
//      process.executable.path, process.command_line (secret-looking arguments redacted),
//      container.id, container.runtime.name and k8s.pod.uid from its cgroup, and its
//      pod's names (k8s.namespace.name, k8s.pod.name, k8s.container.name, the owner's)
//   3. the agent-wide attributes (ProcessTableOptions::resource_attributes: kspan's own
//      --resource-attributes / OTEL_RESOURCE_ATTRIBUTES), e.g. k8s.node.name
//   4. host-wide defaults: host.name (gethostname)
// and telemetry.distro.name/version, always kspan's (it made the spans, whatever SDK the
// process carries).
// So an agent-wide attribute never renames a process or replaces its process.* facts, but
// does replace host.name (in a container, gethostname is the pod's name, not the node's).
//
// Single-threaded: the pipeline thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/events.h"
#include "model/span.h"
#include "process/container.h"

namespace kspan::process {

struct ProcessInfo {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  std::string exe_path;
  std::string exe_name;
  std::vector<std::string> argv;
  std::string service_name;                                              // from the environment, if set
  std::vector<std::pair<std::string, std::string>> resource_attributes;  // OTEL_RESOURCE_ATTRIBUTES
  // When the process started (Unix ns): its exec event, else /proc/PID/stat (clock ticks,
  // 10 ms); 0 when neither is known.
  uint64_t start_ns = 0;
  ContainerIdentity container;  // from /proc/PID/cgroup, else the exec event (container.h)
  // Its network namespace's inode as its exec event (or its parent's, at fork) gave it;
  // 0 when unknown. /proc/PID/ns/net says where it is now.
  uint64_t netns = 0;
  // PodLookup::generation() when the resource was built without the pod's names: a later
  // generation may know them, and the resource is built again.
  uint64_t pod_generation_missing = 0;
  bool from_proc = false;      // /proc was read
  bool found_in_proc = false;  // and had it (kspan sees the host's pids there)
  std::shared_ptr<const model::Resource> resource;
};

// Names a container's pod and workload (k8s/pod_watcher.h, from the Kubernetes API):
// resource attributes, service.name first when it has one; empty when unknown. Any thread.
class PodLookup {
 public:
  virtual ~PodLookup() = default;
  virtual std::vector<std::pair<std::string, std::string>> Attributes(const ContainerIdentity& c) const = 0;
  // The pod's labels (name, value); empty when unknown.
  virtual std::vector<std::pair<std::string, std::string>> Labels(const ContainerIdentity& /*c*/) const {
    return {};
  }
  // Grows with every change of what Attributes answers.
  virtual uint64_t generation() const = 0;
};

struct ProcessTableOptions {
  std::string proc_root = "/proc";  // tests point this at a fake tree
  size_t max_processes = 65536;
  std::string host_name;  // empty: gethostname()
  // Added to every resource where the process has no value of its own (see above).
  std::vector<std::pair<std::string, std::string>> resource_attributes;
  // Pod and workload names for processes in containers; null: none. Not owned.
  const PodLookup* pods = nullptr;
};

class ProcessTable {
 public:
  explicit ProcessTable(ProcessTableOptions options = {});

  void OnExec(const events::ProcessExecEvent& e);
  void OnExit(const events::ProcessExitEvent& e);
  // A new process runs its parent's program: it starts with what is known of the parent
  // (read from /proc now if it was not), so it is named even when it is gone before its
  // first use; its own /proc, while it lives, still has the last word.
  void OnFork(const events::ProcessForkEvent& e);

  // The resource for pid's spans; built (from /proc, else exec data) on first use.
  std::shared_ptr<const model::Resource> ResourceFor(uint32_t pid);
  // Reads /proc for pid now if it was not read yet (call on first network activity).
  void Touch(uint32_t pid);

  const ProcessInfo* Find(uint32_t pid) const;
  // When pid started (see ProcessInfo::start_ns), reading /proc if not read yet.
  uint64_t StartTime(uint32_t pid);
  // Whether /proc has pid (a zombie counts as alive): for ends whose exit event was lost.
  // True when /proc never had it (kspan in another pid namespace): no evidence either way.
  bool Alive(uint32_t pid) const;
  size_t size() const { return procs_.size(); }

 private:
  ProcessInfo& Entry(uint32_t pid);
  void ReadProc(ProcessInfo* p);
  void BuildResource(ProcessInfo* p);

  ProcessTableOptions options_;
  std::unordered_map<uint32_t, ProcessInfo> procs_;
};

// Parses OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2", values percent-decoded). Malformed
// pairs are skipped.
std::vector<std::pair<std::string, std::string>> ParseResourceAttributes(std::string_view s);

// Joins argv into a command line, replacing values of secret-looking options
// (--password=x, --token x, -p x is left alone, key=value with secret keys) by REDACTED.
std::string RedactedCommandLine(const std::vector<std::string>& argv);

}  // namespace kspan::process
