// Which container (and Kubernetes pod) a process runs in, read from its /proc/PID/cgroup:
// no runtime socket, no API server. Container runtimes name each container's cgroup
// after its 64-hex-digit id, and the kubelet names each pod's cgroup after its uid:
//
//   runtime (cgroup driver)    the process's cgroup path, innermost part
//   Docker (systemd)           /system.slice/docker-<id>.scope
//   Docker (cgroupfs)          /docker/<id>
//   containerd, k8s (systemd)  /kubepods.slice/kubepods-burstable.slice/
//                                kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope
//   containerd, k8s (cgroupfs) /kubepods/burstable/pod<uid>/<id>
//   CRI-O (systemd)            /kubepods.slice/…/crio-<id>.scope
//   podman (systemd)           /machine.slice/libpod-<id>.scope[/container]
//   podman (cgroupfs)          /libpod_parent/libpod-<id>
//
// The cgroup v2 line ("0::") is read first, then the v1 lines (hybrid hosts). The
// innermost id wins (a container inside a container is the inner one). A monitor's cgroup
// (conmon: "libpod-conmon-<id>", "crio-conmon-<id>") is not the container's. A bare id
// under /kubepods names no runtime (containerd and CRI-O both write it). Paths are as
// kspan's own cgroup namespace shows them: run kspan in the host's (a DaemonSet's pods
// are, unless the runtime gives them their own; docs/deploy.md).
#pragma once

#include <string>
#include <string_view>

namespace kspan::process {

struct ContainerIdentity {
  std::string id;       // container.id: 64 lower-case hex digits; empty when not in one
  std::string runtime;  // container.runtime.name: docker, containerd, cri-o, podman; or empty
  std::string pod_uid;  // k8s.pod.uid: the 36-character uid with dashes; or empty
};

// Reads the contents of a /proc/PID/cgroup file. Lines that fit no known layout are
// skipped; what none gives stays empty.
ContainerIdentity ContainerFromCgroup(std::string_view proc_cgroup);

}  // namespace kspan::process
