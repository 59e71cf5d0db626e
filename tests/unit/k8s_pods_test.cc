#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "k8s/pods.h"

namespace kspan::k8s {
namespace {

// Responses in the API server's shapes (tests/apps/k8s/: a PodList of three pods, and a
// watch stream in which a pod is replaced under the same name).
std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(KSPAN_SOURCE_DIR) + "/tests/apps/k8s/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::map<std::string, std::string> AsMap(const std::vector<std::pair<std::string, std::string>>& a) {
  return {a.begin(), a.end()};
}

const std::string kId1(64, '1'), kId2(64, '2'), kId3(64, '3'), kId4(64, '4'), kId5(64, '5');

TEST(K8sPods, ListReadsEveryPod) {
  const auto list = ParsePodList(Fixture("podlist.json"));
  ASSERT_TRUE(list);
  EXPECT_EQ(list->resource_version, "1000");
  ASSERT_EQ(list->pods.size(), 3u);
  const Pod& p = list->pods[0];
  EXPECT_EQ(p.name, "checkout-7d9f8c6b5-x2k4p");
  EXPECT_EQ(p.ns, "shop");
  EXPECT_EQ(p.uid, "a1b2c3d4-0001-4000-8000-000000000001");
  EXPECT_EQ(p.node, "node-1");
  EXPECT_EQ(p.owner_kind, "ReplicaSet");
  EXPECT_EQ(p.owner_name, "checkout-7d9f8c6b5");
  ASSERT_EQ(p.containers.size(), 2u);
  EXPECT_EQ(p.containers[0].first, kId1) << "the runtime's prefix is dropped";
  EXPECT_EQ(p.containers[0].second, "app");
}

TEST(K8sPods, AttributesOfADeploymentsPod) {
  const auto list = ParsePodList(Fixture("podlist.json"));
  ASSERT_TRUE(list);
  const auto a = AsMap(PodAttributes(list->pods[0], kId2));
  EXPECT_EQ(a.at("service.name"), "checkout") << "app.kubernetes.io/name first";
  EXPECT_EQ(a.at("k8s.namespace.name"), "shop");
  EXPECT_EQ(a.at("k8s.pod.name"), "checkout-7d9f8c6b5-x2k4p");
  EXPECT_EQ(a.at("k8s.pod.uid"), "a1b2c3d4-0001-4000-8000-000000000001");
  EXPECT_EQ(a.at("k8s.container.name"), "envoy");
  EXPECT_EQ(a.at("k8s.replicaset.name"), "checkout-7d9f8c6b5");
  EXPECT_EQ(a.at("k8s.deployment.name"), "checkout");
  EXPECT_EQ(PodAttributes(list->pods[0], kId2).front().first, "service.name");
}

TEST(K8sPods, StatefulSetAndCronJobOwnersNameTheService) {
  const auto list = ParsePodList(Fixture("podlist.json"));
  ASSERT_TRUE(list);
  auto a = AsMap(PodAttributes(list->pods[1], kId3));
  EXPECT_EQ(a.at("k8s.statefulset.name"), "db");
  EXPECT_EQ(a.at("service.name"), "db") << "no app.kubernetes.io/name: the owner";
  EXPECT_EQ(a.at("k8s.container.name"), "postgres");
  a = AsMap(PodAttributes(list->pods[2], kId4));
  EXPECT_EQ(a.at("k8s.job.name"), "report-29412345");
  EXPECT_EQ(a.at("k8s.cronjob.name"), "report");
  EXPECT_EQ(a.at("service.name"), "report");
}

TEST(K8sPods, ABarePodIsNamedByItself) {
  Pod p;
  p.uid = "u";
  p.name = "debug-shell";
  p.ns = "default";
  const auto a = AsMap(PodAttributes(p, ""));
  EXPECT_EQ(a.at("service.name"), "debug-shell");
  EXPECT_EQ(a.count("k8s.container.name"), 0u);
  EXPECT_EQ(a.count("k8s.deployment.name"), 0u);
}

TEST(K8sPods, AReplicaSetWithoutTheTemplateHashNamesNoDeployment) {
  Pod p;
  p.uid = "u";
  p.name = "x-abcde";
  p.owner_kind = "ReplicaSet";
  p.owner_name = "x-abc";  // a ReplicaSet of its own, not a Deployment's
  const auto a = AsMap(PodAttributes(p, ""));
  EXPECT_EQ(a.at("k8s.replicaset.name"), "x-abc");
  EXPECT_EQ(a.count("k8s.deployment.name"), 0u);
  EXPECT_EQ(a.at("service.name"), "x-abc");
}

TEST(K8sPods, WatchStreamReplacesAPodUnderTheSameName) {
  PodCache cache;
  cache.Reset(ParsePodList(Fixture("podlist.json"))->pods);
  ASSERT_EQ(cache.size(), 3u);
  ASSERT_NE(cache.ByContainer(kId1), nullptr);

  std::istringstream lines(Fixture("watch.jsonl"));
  std::string line;
  std::vector<WatchEvent> events;
  while (std::getline(lines, line)) {
    auto e = ParseWatchEvent(line);
    ASSERT_TRUE(e) << line;
    events.push_back(std::move(*e));
  }
  ASSERT_EQ(events.size(), 5u);
  for (const WatchEvent& e : events) {
    switch (e.type) {
      case WatchEvent::Type::kAdded:
      case WatchEvent::Type::kModified: cache.Put(e.pod); break;
      case WatchEvent::Type::kDeleted: cache.Remove(e.pod.uid); break;
      default: break;
    }
  }
  EXPECT_EQ(cache.ByContainer(kId1), nullptr) << "the old pod's containers are gone with it";
  EXPECT_EQ(cache.ByUid("a1b2c3d4-0001-4000-8000-000000000001"), nullptr);
  const Pod* p = cache.ByContainer(kId5);
  ASSERT_NE(p, nullptr) << "the new pod's container, once started";
  EXPECT_EQ(p->uid, "a1b2c3d4-0004-4000-8000-000000000004");
  EXPECT_EQ(p->name, "checkout-7d9f8c6b5-x2k4p");
  EXPECT_EQ(events[3].type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(events[3].resource_version, "1010");
  EXPECT_EQ(events[4].type, WatchEvent::Type::kError);
  EXPECT_EQ(events[4].error_code, 410);
  EXPECT_NE(events[4].error_message.find("too old"), std::string::npos);
}

TEST(K8sPods, CacheIsBounded) {
  PodCache cache(PodCache::Options{.max_pods = 2});
  for (const char* uid : {"a", "b", "c"}) {
    Pod p;
    p.uid = uid;
    cache.Put(p);
  }
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.pods_left_out(), 1u);
  Pod again;
  again.uid = "a";
  EXPECT_TRUE(cache.Put(again)) << "an update of a pod already held always fits";
}

TEST(K8sPods, MalformedInputIsRejectedNotHalfRead) {
  EXPECT_FALSE(ParsePodList("{\"kind\":\"PodList\",\"items\":[{"));
  EXPECT_FALSE(ParsePodList("{\"kind\":\"Status\",\"code\":403}"));
  EXPECT_FALSE(ParseWatchEvent("{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}")) << "a pod without a uid";
  EXPECT_FALSE(ParseWatchEvent("{\"type\":\"SOMETHING\",\"object\":{}}"));
  EXPECT_FALSE(ParseWatchEvent("not json"));
  EXPECT_FALSE(ParsePod("[]"));
}

}  // namespace
}  // namespace kspan::k8s
