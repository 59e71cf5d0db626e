#include "k8s/pods.h"

#include <algorithm>
#include <string>

#include "genai/json.h"

namespace kspan::k8s {

namespace json = genai::json;

namespace {

// A pod list of a full node (110 pods, each a few hundred values) stays well inside this;
// a larger text is cut at the bound and read as invalid, not half-read.
json::Limits ApiLimits() {
  json::Limits l;
  l.max_depth = 64;
  l.max_nodes = 2'000'000;
  return l;
}

std::string Str(json::Value v) {
  const auto s = v.AsString();
  return s ? std::string(*s) : std::string();
}

// "containerd://<id>", "cri-o://<id>", "docker://<id>" -> "<id>".
std::string ContainerIdOf(std::string_view runtime_id) {
  const size_t sep = runtime_id.find("://");
  return std::string(sep == std::string_view::npos ? runtime_id : runtime_id.substr(sep + 3));
}

std::optional<Pod> PodFrom(json::Value o) {
  if (o.type() != json::Type::kObject) return std::nullopt;
  const json::Value meta = o.Find("metadata");
  Pod p;
  p.uid = Str(meta.Find("uid"));
  if (p.uid.empty()) return std::nullopt;
  p.name = Str(meta.Find("name"));
  p.ns = Str(meta.Find("namespace"));
  p.resource_version = Str(meta.Find("resourceVersion"));
  p.node = Str(o.At({"spec", "nodeName"}));
  for (const json::Value l : meta.Find("labels").children()) {
    if (const auto v = l.AsString()) p.labels.emplace(std::string(l.key()), std::string(*v));
  }
  for (const json::Value ref : meta.Find("ownerReferences").children()) {
    if (ref.Find("controller").AsBool().value_or(false)) {
      p.owner_kind = Str(ref.Find("kind"));
      p.owner_name = Str(ref.Find("name"));
    }
  }
  const json::Value status = o.Find("status");
  for (const char* list : {"initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"}) {
    for (const json::Value c : status.Find(list).children()) {
      const std::string id = ContainerIdOf(Str(c.Find("containerID")));
      if (!id.empty()) p.containers.emplace_back(id, Str(c.Find("name")));
    }
  }
  return p;
}

// "<name>-<suffix>" -> "<name>" when the suffix is what `pred` wants.
template <typename Pred>
std::string WithoutSuffix(const std::string& name, Pred pred) {
  const size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == name.size()) return "";
  return pred(std::string_view(name).substr(dash + 1)) ? name.substr(0, dash) : "";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> PodAttributes(const Pod& pod,
                                                               std::string_view container_id) {
  std::vector<std::pair<std::string, std::string>> a;
  std::string owner;  // the workload's name, for service.name
  std::vector<std::pair<std::string, std::string>> owners;
  if (pod.owner_kind == "ReplicaSet") {
    owners.emplace_back("k8s.replicaset.name", pod.owner_name);
    // A Deployment's ReplicaSet is named <deployment>-<pod-template-hash>.
    const auto hash = pod.labels.find("pod-template-hash");
    if (hash != pod.labels.end()) {
      const std::string d =
          WithoutSuffix(pod.owner_name, [&](std::string_view s) { return s == hash->second; });
      if (!d.empty()) owners.emplace_back("k8s.deployment.name", d);
    }
  } else if (pod.owner_kind == "StatefulSet") {
    owners.emplace_back("k8s.statefulset.name", pod.owner_name);
  } else if (pod.owner_kind == "DaemonSet") {
    owners.emplace_back("k8s.daemonset.name", pod.owner_name);
  } else if (pod.owner_kind == "Job") {
    owners.emplace_back("k8s.job.name", pod.owner_name);
    // A CronJob's Job is named <cronjob>-<scheduled time in minutes>.
    const std::string c = WithoutSuffix(pod.owner_name, [](std::string_view s) {
      return s.size() >= 8 && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    });
    if (!c.empty()) owners.emplace_back("k8s.cronjob.name", c);
  }
  // The workload: the outermost owner read (a Deployment over its ReplicaSet).
  if (!owners.empty()) owner = owners.back().second;
  const auto app = pod.labels.find("app.kubernetes.io/name");
  a.emplace_back("service.name", app != pod.labels.end() && !app->second.empty() ? app->second
                                 : !owner.empty()                                ? owner
                                                                                 : pod.name);
  a.emplace_back("k8s.namespace.name", pod.ns);
  a.emplace_back("k8s.pod.name", pod.name);
  a.emplace_back("k8s.pod.uid", pod.uid);
  if (!container_id.empty()) {
    for (const auto& [id, name] : pod.containers) {
      if (id == container_id) a.emplace_back("k8s.container.name", name);
    }
  }
  for (auto& o : owners) a.push_back(std::move(o));
  return a;
}

std::optional<Pod> ParsePod(std::string_view text) {
  const json::Document doc = json::Parse(text, ApiLimits());
  if (doc.status() != json::ParseStatus::kOk) return std::nullopt;
  return PodFrom(doc.root());
}

std::optional<PodList> ParsePodList(std::string_view text) {
  const json::Document doc = json::Parse(text, ApiLimits());
  if (doc.status() != json::ParseStatus::kOk || doc.root().type() != json::Type::kObject) return std::nullopt;
  if (Str(doc.root().Find("kind")) != "PodList") return std::nullopt;
  PodList list;
  list.resource_version = Str(doc.root().At({"metadata", "resourceVersion"}));
  list.continue_token = Str(doc.root().At({"metadata", "continue"}));
  for (const json::Value item : doc.root().Find("items").children()) {
    if (auto p = PodFrom(item)) list.pods.push_back(std::move(*p));
  }
  return list;
}

std::optional<WatchEvent> ParseWatchEvent(std::string_view line) {
  const json::Document doc = json::Parse(line, ApiLimits());
  if (doc.status() != json::ParseStatus::kOk) return std::nullopt;
  const std::string type = Str(doc.root().Find("type"));
  const json::Value object = doc.root().Find("object");
  WatchEvent e;
  if (type == "ERROR") {
    e.type = WatchEvent::Type::kError;
    e.error_code = static_cast<int>(object.Find("code").AsInt64().value_or(0));
    e.error_message = Str(object.Find("message"));
    return e;
  }
  if (type == "ADDED") {
    e.type = WatchEvent::Type::kAdded;
  } else if (type == "MODIFIED") {
    e.type = WatchEvent::Type::kModified;
  } else if (type == "DELETED") {
    e.type = WatchEvent::Type::kDeleted;
  } else if (type == "BOOKMARK") {
    e.type = WatchEvent::Type::kBookmark;
  } else {
    return std::nullopt;
  }
  e.resource_version = Str(object.At({"metadata", "resourceVersion"}));
  if (e.type == WatchEvent::Type::kBookmark) return e;
  auto pod = PodFrom(object);
  if (!pod) return std::nullopt;
  e.pod = std::move(*pod);
  return e;
}

void PodCache::Reset(std::vector<Pod> pods) {
  pods_.clear();
  by_container_.clear();
  for (Pod& p : pods) Put(std::move(p));
}

bool PodCache::Put(Pod pod) {
  auto it = pods_.find(pod.uid);
  if (it == pods_.end()) {
    if (pods_.size() >= options_.max_pods) {
      ++left_out_;
      return false;
    }
  } else {
    Unindex(it->second);
  }
  Index(pod);
  const std::string uid = pod.uid;
  pods_.insert_or_assign(uid, std::move(pod));
  return true;
}

void PodCache::Remove(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  Unindex(it->second);
  pods_.erase(it);
}

const Pod* PodCache::ByUid(std::string_view uid) const {
  auto it = pods_.find(std::string(uid));
  return it == pods_.end() ? nullptr : &it->second;
}

const Pod* PodCache::ByContainer(std::string_view container_id) const {
  auto it = by_container_.find(std::string(container_id));
  return it == by_container_.end() ? nullptr : ByUid(it->second);
}

void PodCache::Index(const Pod& pod) {
  for (const auto& [id, name] : pod.containers) by_container_[id] = pod.uid;
}

void PodCache::Unindex(const Pod& pod) {
  for (const auto& [id, name] : pod.containers) {
    auto it = by_container_.find(id);
    if (it != by_container_.end() && it->second == pod.uid) by_container_.erase(it);
  }
}

}  // namespace kspan::k8s
