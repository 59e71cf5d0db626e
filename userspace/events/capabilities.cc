#include "events/capabilities.h"

#include <cstdlib>
#include <string>

namespace kspan::events {

namespace {

// Capability numbers (linux/capability.h), spelled out so the check also builds against
// headers older than CAP_BPF and CAP_PERFMON (5.8).
constexpr int kCapDacReadSearch = 2;
constexpr int kCapSysPtrace = 19;
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

bool Has(uint64_t set, int cap) {
  return (set >> cap) & 1;
}

}  // namespace

std::optional<uint64_t> EffectiveCapabilities(std::string_view status) {
  constexpr std::string_view kKey = "CapEff:";
  size_t at = status.find(kKey);
  while (at != std::string_view::npos && at != 0 && status[at - 1] != '\n') at = status.find(kKey, at + 1);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string value(status.substr(at + kKey.size(), status.find('\n', at) - at - kKey.size()));
  char* end = nullptr;
  const uint64_t set = std::strtoull(value.c_str(), &end, 16);
  if (end == value.c_str()) return std::nullopt;
  return set;
}

CapabilityCheck CheckCapabilities(uint64_t eff) {
  CapabilityCheck c;
  const bool admin = Has(eff, kCapSysAdmin);
  if (!Has(eff, kCapBpf) && !admin)
    c.required.push_back({"CAP_BPF", "loading kspan's BPF programs and maps"});
  if (!Has(eff, kCapPerfmon) && !admin) {
    c.required.push_back(
        {"CAP_PERFMON", "loading tracing programs and attaching them to syscall tracepoints"});
  }
  if (!Has(eff, kCapDacReadSearch)) {
    c.required.push_back(
        {"CAP_DAC_READ_SEARCH",
         "reading tracepoint ids under /sys/kernel/tracing and binaries through /proc/PID/root"});
  }
  if (!Has(eff, kCapSysPtrace)) {
    c.required.push_back(
        {"CAP_SYS_PTRACE",
         "reading other users' /proc/PID/exe, maps and environ (process names, TLS libraries)"});
  }
  if (!admin) {
    c.optional.push_back(
        {"CAP_SYS_ADMIN",
         "TLS capture (the kernel allows uprobes only with it) and mounting tracefs if unmounted"});
  }
  return c;
}

std::string Describe(const std::vector<MissingCapability>& missing) {
  std::string out;
  for (const MissingCapability& m : missing) {
    if (!out.empty()) out += ", ";
    out += m.name + " (" + m.why + ")";
  }
  return out;
}

}  // namespace kspan::events
