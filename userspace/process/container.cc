#include "process/container.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kspan::process {

namespace {

constexpr size_t kIdLength = 64;   // sha256 in hex: Docker, containerd, CRI-O, podman
constexpr size_t kUidLength = 36;  // a Kubernetes uid: 8-4-4-4-12 hex digits

bool IsLowerHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool IsContainerId(std::string_view s) {
  return s.size() == kIdLength && std::all_of(s.begin(), s.end(), IsLowerHex);
}

// A pod uid as the kubelet writes it in a cgroup name: with dashes (cgroupfs driver) or
// with underscores (systemd driver, where '-' separates the slice's parents).
bool ReadPodUid(std::string_view s, std::string* uid) {
  if (s.size() != kUidLength) return false;
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    const bool separator = i == 8 || i == 13 || i == 18 || i == 23;
    if (separator) {
      if (out[i] != '-' && out[i] != '_') return false;
      out[i] = '-';
    } else if (!IsLowerHex(out[i])) {
      return false;
    }
  }
  *uid = std::move(out);
  return true;
}

struct Scope {
  std::string_view prefix;
  std::string_view runtime;
};

// Cgroup names that hold a container's id, by the runtime that makes them. A ".scope"
// suffix (systemd driver) is removed before these are tried.
constexpr std::array<Scope, 4> kScopes = {{
    {"docker-", "docker"},
    {"cri-containerd-", "containerd"},
    {"crio-", "cri-o"},
    {"libpod-", "podman"},
}};

// The container one cgroup name stands for, if it stands for one. `parent` is the name
// above it, for the layouts that name the runtime there (Docker's cgroupfs "/docker/<id>").
bool ReadContainer(std::string_view name, std::string_view parent, ContainerIdentity* out) {
  if (name.ends_with(".scope")) name.remove_suffix(6);
  for (const Scope& s : kScopes) {
    if (!name.starts_with(s.prefix)) continue;
    const std::string_view id = name.substr(s.prefix.size());
    if (!IsContainerId(id)) return false;  // e.g. "libpod-conmon-<id>": the monitor, not the container
    out->id = std::string(id);
    out->runtime = std::string(s.runtime);
    return true;
  }
  if (!IsContainerId(name)) return false;
  out->id = std::string(name);
  if (parent == "docker") out->runtime = "docker";
  return true;
}

// The pod a cgroup name stands for: "pod<uid>" or "kubepods[-<qos>]-pod<uid>.slice".
bool ReadPod(std::string_view name, std::string* uid) {
  if (name.ends_with(".slice")) name.remove_suffix(6);
  const size_t at = name.rfind("pod");
  if (at == std::string_view::npos) return false;
  if (at != 0 && !name.starts_with("kubepods")) return false;
  return ReadPodUid(name.substr(at + 3), uid);
}

ContainerIdentity FromPath(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (!part.empty()) parts.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  ContainerIdentity c;
  for (size_t i = parts.size(); i-- > 0;) {
    if (c.id.empty()) {
      ReadContainer(parts[i], i > 0 ? parts[i - 1] : std::string_view(), &c);
    } else if (c.pod_uid.empty() && ReadPod(parts[i], &c.pod_uid)) {
      break;
    }
  }
  if (c.id.empty()) c.pod_uid.clear();  // a pod's own cgroup, not one of its containers
  return c;
}

}  // namespace

ContainerIdentity ContainerFromCgroup(std::string_view proc_cgroup) {
  // "hierarchy-ID:controllers:path" per line; cgroup v2 is "0::path".
  ContainerIdentity v1;
  while (!proc_cgroup.empty()) {
    const size_t eol = proc_cgroup.find('\n');
    std::string_view line = proc_cgroup.substr(0, eol);
    proc_cgroup.remove_prefix(eol == std::string_view::npos ? proc_cgroup.size() : eol + 1);
    const size_t first = line.find(':');
    if (first == std::string_view::npos) continue;
    const size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::string_view hierarchy = line.substr(0, first);
    const std::string_view path = line.substr(second + 1);
    ContainerIdentity c = FromPath(path);
    if (c.id.empty()) continue;
    if (hierarchy == "0" && second == first + 1) return c;
    if (v1.id.empty()) v1 = std::move(c);
  }
  return v1;
}

}  // namespace kspan::process
