// Keeps k8s/pods.h's cache of this node's pods current from the Kubernetes API server, on
// a thread of its own: a list of the pods with spec.nodeName = this node (paged), then a
// watch from the list's resourceVersion (with bookmarks), again after each watch ends; a
// 410 (resourceVersion too old) means a new list. In-cluster, as client libraries do:
// the server from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, the service
// account's token (re-read on each request: it rotates) and CA from
// /var/run/secrets/kubernetes.io/serviceaccount/. RBAC: get, list and watch pods
// (deploy/helm/kspan).
//
// The API server unreachable or refusing: spans keep flowing with what the cgroup gives
// (container.id, k8s.pod.uid), one warning per outage, retries with backoff (1 s doubling
// to 30 s), the cache kept as it was. Counted: kspan_k8s_api_requests_total{result},
// kspan_k8s_watch_events_unreadable_total, kspan_k8s_pods_left_out_total (past max_pods).
//
// Thread safety: Lookup and generation may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "k8s/pods.h"
#include "process/process_table.h"

namespace kspan::k8s {

struct PodWatcherOptions {
  std::string api_server;  // "https://10.96.0.1:443"
  std::string token_file;
  std::string ca_file;
  std::string node_name;
  size_t max_pods = 1024;
  std::chrono::seconds watch_timeout{300};  // the server ends each watch after this
  std::chrono::milliseconds backoff_min{1000};
  std::chrono::milliseconds backoff_max{30000};
};

// The in-cluster options from the environment: nullopt when kspan does not run in a pod
// (no KUBERNETES_SERVICE_HOST) or does not know its node (K8S_NODE_NAME, set by the
// chart from the downward API). KSPAN_K8S_SERVICEACCOUNT_DIR replaces the service
// account's directory (tests).
std::optional<PodWatcherOptions> InClusterOptions();

class PodWatcher : public process::PodLookup {
 public:
  PodWatcher(PodWatcherOptions options, metrics::Registry* metrics);
  ~PodWatcher() override;
  PodWatcher(const PodWatcher&) = delete;
  PodWatcher& operator=(const PodWatcher&) = delete;

  void Start();
  void Stop();  // ends a request in flight at its next progress callback (within about a second)

  // process::PodLookup
  std::vector<std::pair<std::string, std::string>> Attributes(
      const process::ContainerIdentity& c) const override;
  std::vector<std::pair<std::string, std::string>> Labels(const process::ContainerIdentity& c) const override;
  uint64_t generation() const override { return generation_.load(std::memory_order_acquire); }

  size_t pods() const;

 private:
  enum class Outcome { kOk, kGone, kFailed, kStopped };
  void Run();
  Outcome List(std::string* resource_version);
  Outcome Watch(std::string* resource_version);
  // GET path?query; the body goes to on_data as it arrives. Returns the HTTP status, or 0
  // when no answer came (error filled in).
  long Get(const std::string& path_and_query, std::chrono::seconds timeout,
           const std::function<bool(std::string_view)>& on_data, std::string* error);
  void Changed() { generation_.fetch_add(1, std::memory_order_acq_rel); }
  void Failed(const std::string& what);
  void Recovered();
  bool SleepFor(std::chrono::milliseconds d);

  const PodWatcherOptions options_;
  metrics::Registry* metrics_;
  mutable std::mutex mu_;  // guards cache_
  PodCache cache_;
  std::atomic<uint64_t> generation_{1};
  std::atomic<bool> stop_{false};
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  bool down_ = false;  // in an outage (logged once)
  std::thread thread_;
};

}  // namespace kspan::k8s
