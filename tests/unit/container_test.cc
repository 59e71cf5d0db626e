#include "process/container.h"

#include <gtest/gtest.h>

#include <string>

namespace kspan::process {
namespace {

const std::string kId = "3f4b1a2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
const std::string kId2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(ContainerFromCgroup, DockerWithTheSystemdDriver) {
  const auto c = ContainerFromCgroup("0::/system.slice/docker-" + kId + ".scope\n");
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.runtime, "docker");
  EXPECT_EQ(c.pod_uid, "");
}

TEST(ContainerFromCgroup, DockerWithTheCgroupfsDriverOnCgroupV1) {
  const auto c = ContainerFromCgroup("12:pids:/docker/" + kId + "\n11:memory:/docker/" + kId +
                                     "\n1:name=systemd:/docker/" + kId + "\n0::/\n");
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.runtime, "docker");
}

TEST(ContainerFromCgroup, KubernetesContainerdWithTheSystemdDriver) {
  const auto c = ContainerFromCgroup(
      "0::/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod4a1c2f0e_8b7d_4c3e_9f1a_2b3c4d5e6f70.slice/cri-containerd-" +
      kId + ".scope\n");
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.runtime, "containerd");
  EXPECT_EQ(c.pod_uid, "4a1c2f0e-8b7d-4c3e-9f1a-2b3c4d5e6f70");
}

TEST(ContainerFromCgroup, KubernetesGuaranteedPodWithCriO) {
  const auto c = ContainerFromCgroup(
      "0::/kubepods.slice/kubepods-pod4a1c2f0e_8b7d_4c3e_9f1a_2b3c4d5e6f70.slice/crio-" + kId + ".scope\n");
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.runtime, "cri-o");
  EXPECT_EQ(c.pod_uid, "4a1c2f0e-8b7d-4c3e-9f1a-2b3c4d5e6f70");
}

TEST(ContainerFromCgroup, KubernetesWithTheCgroupfsDriverNamesNoRuntime) {
  const auto c =
      ContainerFromCgroup("0::/kubepods/besteffort/pod4a1c2f0e-8b7d-4c3e-9f1a-2b3c4d5e6f70/" + kId + "\n");
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.runtime, "") << "containerd and CRI-O both write a bare id";
  EXPECT_EQ(c.pod_uid, "4a1c2f0e-8b7d-4c3e-9f1a-2b3c4d5e6f70");
}

TEST(ContainerFromCgroup, PodmanBothDrivers) {
  auto c = ContainerFromCgroup("0::/machine.slice/libpod-" + kId + ".scope/container\n");
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.runtime, "podman");
  // This machine's podman (runc, cgroupfs) on a hybrid host: v1 lines, and "0::/".
  c = ContainerFromCgroup("4:memory:/libpod_parent/libpod-" + kId + "\n0::/\n");
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.runtime, "podman");
}

TEST(ContainerFromCgroup, TheMonitorIsNotTheContainer) {
  EXPECT_EQ(ContainerFromCgroup("0::/machine.slice/libpod-conmon-" + kId + ".scope\n").id, "");
  EXPECT_EQ(ContainerFromCgroup("0::/kubepods.slice/crio-conmon-" + kId + ".scope\n").id, "");
}

TEST(ContainerFromCgroup, TheInnermostContainerWins) {
  const auto c = ContainerFromCgroup("0::/docker/" + kId + "/docker/" + kId2 + "\n");
  EXPECT_EQ(c.id, kId2);
}

TEST(ContainerFromCgroup, CgroupV2LineBeforeV1Lines) {
  const auto c =
      ContainerFromCgroup("4:memory:/docker/" + kId + "\n0::/system.slice/docker-" + kId2 + ".scope\n");
  EXPECT_EQ(c.id, kId2);
}

// kspan in a cgroup namespace of its own (a pod's, on cgroup v2): other processes' paths
// read relative to kspan's cgroup. The container's own part is still there; the pod's is
// only when it lies below the common ancestor.
TEST(ContainerFromCgroup, PathsRelativeToKspansOwnCgroupNamespace) {
  auto c = ContainerFromCgroup(
      "0::/../../../kubepods-besteffort.slice/"
      "kubepods-besteffort-pod4a1c2f0e_8b7d_4c3e_9f1a_2b3c4d5e6f70.slice/"
      "cri-containerd-" +
      kId + ".scope\n");
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.runtime, "containerd");
  EXPECT_EQ(c.pod_uid, "4a1c2f0e-8b7d-4c3e-9f1a-2b3c4d5e6f70");
  c = ContainerFromCgroup("0::/../cri-containerd-" + kId2 + ".scope\n");  // a container of kspan's own pod
  EXPECT_EQ(c.id, kId2);
  EXPECT_EQ(c.pod_uid, "");
}

TEST(ContainerFromCgroup, HostProcessesAndLookalikesAreInNone) {
  for (const std::string text : {
           std::string("0::/\n"),
           std::string("0::/system.slice/nginx.service\n"),
           std::string("0::/user.slice/user-1000.slice/session-3.scope\n"),
           // a sandbox's cgroup named by a 32-digit id (this machine's), not a container
           std::string("4:memory:/process_api/b4b2f985e981e1a4d9b8f3d7e8839efe\n0::/\n"),
           // 64 digits, but upper case or one short
           "0::/docker/" + std::string(64, 'A') + "\n",
           "0::/docker/" + kId.substr(1) + "\n",
           // a pod's own cgroup holds no container
           std::string("0::/kubepods/besteffort/pod4a1c2f0e-8b7d-4c3e-9f1a-2b3c4d5e6f70\n"),
           std::string(""),
           std::string("garbage without colons\n::\n"),
       }) {
    SCOPED_TRACE(text);
    const auto c = ContainerFromCgroup(text);
    EXPECT_EQ(c.id, "");
    EXPECT_EQ(c.runtime, "");
    EXPECT_EQ(c.pod_uid, "");
  }
}

TEST(ContainerFromCgroup, AMalformedPodUidIsLeftOut) {
  const auto c = ContainerFromCgroup("0::/kubepods/burstable/podnot-a-uid/" + kId + "\n");
  EXPECT_EQ(c.id, kId);
  EXPECT_EQ(c.pod_uid, "");
}

}  // namespace
}  // namespace kspan::process
