// The capabilities kspan needs, checked at start instead of uid 0, so it runs as any user
// that holds them (a container with a capability list, systemd's AmbientCapabilities=)
// and says which one is missing. Each was found needed on kernel 6.18 by running kspan
// as `nobody` with the others only (tests/integration/capabilities_test.cc):
//
//   capability           what fails without it
//   CAP_BPF              loading the programs and maps
//   CAP_PERFMON          loading tracing programs and attaching them to tracepoints
//   CAP_DAC_READ_SEARCH  reading tracepoint ids under /sys/kernel/tracing (mode 0700) and
//                        binaries through /proc/PID/root
//   CAP_SYS_PTRACE       reading other users' /proc/PID/exe, maps and environ (process
//                        names, TLS libraries, OTEL_SERVICE_NAME)
//   CAP_SYS_ADMIN        optional: uprobe perf events (TLS capture; the kernel answers
//                        EACCES to CAP_PERFMON alone) and mounting tracefs
//
// CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON, as the kernel allows. kspan never
// needs CAP_SYS_RESOURCE: the kernel charges BPF memory to the cgroup (5.11+).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kspan::events {

struct MissingCapability {
  std::string name;  // "CAP_SYS_PTRACE"
  std::string why;   // what fails without it
};

struct CapabilityCheck {
  std::vector<MissingCapability> required;  // kspan cannot work without these
  std::vector<MissingCapability> optional;  // a feature is off without these
};

// The effective set from the "CapEff:" line of /proc/self/status; nullopt when absent.
std::optional<uint64_t> EffectiveCapabilities(std::string_view proc_status);

CapabilityCheck CheckCapabilities(uint64_t effective);

// "CAP_BPF (loading …), CAP_SYS_PTRACE (reading …)"
std::string Describe(const std::vector<MissingCapability>& missing);

}  // namespace kspan::events
