// What kspan knows of the pods on its node, from the Kubernetes API (a list, then a watch
// of pods with spec.nodeName = this node: k8s/pod_watcher.h), to name each span's pod.
//
// A process is tied to its pod by ids the kernel already gives (process/container.h):
// its container's id (matched against the pod's status.containerStatuses[].containerID,
// "containerd://<id>") or, when that is not known yet (a container just started), the
// pod uid of its cgroup. Attributes, per the OpenTelemetry Kubernetes conventions
// (semantic-conventions v1.44.0): k8s.namespace.name, k8s.pod.name, k8s.pod.uid,
// k8s.container.name, and the owner: k8s.deployment.name (a ReplicaSet's owner, read from
// the ReplicaSet's name: <deployment>-<pod-template-hash>), k8s.replicaset.name,
// k8s.statefulset.name, k8s.daemonset.name, k8s.job.name, k8s.cronjob.name (a Job's
// owner, read from the Job's name: <cronjob>-<schedule time>), and service.name: the
// app.kubernetes.io/name label, else the owner's name, else the pod's.
//
// Bounded: at most PodCache::Options::max_pods pods (a node runs ~110 by default); past
// that, new pods are counted and left out.
//
// Thread safety: PodCache is not synchronised; k8s/pod_watcher.h guards its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kspan::k8s {

struct Pod {
  std::string uid;
  std::string name;
  std::string ns;  // metadata.namespace
  std::string node;
  std::map<std::string, std::string> labels;
  std::string owner_kind;  // ownerReferences[controller=true].kind, e.g. "ReplicaSet"
  std::string owner_name;
  // status.containerStatuses (and init and ephemeral ones): the runtime's id, without its
  // "containerd://" prefix, and the container's name in the pod spec.
  std::vector<std::pair<std::string, std::string>> containers;
  std::string resource_version;
};

// Resource attributes for a process of `pod`, in `container_id` (may be empty), in the
// order above. service.name is first.
std::vector<std::pair<std::string, std::string>> PodAttributes(const Pod& pod, std::string_view container_id);

// One pod object of the API (a list item, or a watch event's object); nullopt when it is
// not a pod with a uid.
std::optional<Pod> ParsePod(std::string_view json);

struct PodList {
  std::vector<Pod> pods;
  std::string resource_version;  // metadata.resourceVersion: where a watch starts
  std::string continue_token;    // metadata.continue: more pages
};
std::optional<PodList> ParsePodList(std::string_view json);

// One line of a watch stream.
struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kError;
  Pod pod;                       // ADDED, MODIFIED, DELETED
  std::string resource_version;  // every type but ERROR: the newest seen
  int error_code = 0;            // ERROR: the Status object's code (410: resourceVersion too old)
  std::string error_message;
};
std::optional<WatchEvent> ParseWatchEvent(std::string_view line);

class PodCache {
 public:
  struct Options {
    size_t max_pods = 1024;
  };
  PodCache() : PodCache(Options{}) {}
  explicit PodCache(Options options) : options_(options) {}

  // Replaces everything (after a list).
  void Reset(std::vector<Pod> pods);
  // Adds or replaces one pod; false when it was left out (max_pods).
  bool Put(Pod pod);
  void Remove(const std::string& uid);

  const Pod* ByUid(std::string_view uid) const;
  const Pod* ByContainer(std::string_view container_id) const;
  size_t size() const { return pods_.size(); }
  uint64_t pods_left_out() const { return left_out_; }

 private:
  void Index(const Pod& pod);
  void Unindex(const Pod& pod);

  Options options_;
  std::unordered_map<std::string, Pod> pods_;                  // by uid
  std::unordered_map<std::string, std::string> by_container_;  // container id -> uid
  uint64_t left_out_ = 0;
};

}  // namespace kspan::k8s
