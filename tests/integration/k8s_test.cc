// Kubernetes identity end to end, without a cluster: kspan runs as in a pod (the in-cluster
// environment: KUBERNETES_SERVICE_HOST/PORT, K8S_NODE_NAME, a service account's token and
// CA) against tests/apps/k8s/fake_apiserver.py, which answers the pod list and watch as the
// API server does, over HTTPS with the token checked. The traced processes run in podman
// containers whose ids the fake pods carry (testing/podman.h). It checks:
//   - a server in a pod: its spans name the pod, its namespace, container and Deployment,
//     and service.name comes from the pod's app.kubernetes.io/name label;
//   - the pod replaced under the same name (watch: DELETED, then ADDED with a new uid and
//     a new container): the new container's spans carry the new uid;
//   - the API server gone: spans keep flowing with container.id only, and one warning.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/podman.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2;
const std::string kNode = "node-1";
const std::string kToken = "kspan-test-token-3f9a";
const std::string kOldUid = "a1b2c3d4-0001-4000-8000-000000000001";
const std::string kNewUid = "a1b2c3d4-0004-4000-8000-000000000004";

// A pod of a Deployment, as the API server describes it.
std::string PodJson(const std::string& uid, const std::string& rv, const std::string& container_id) {
  return R"({"metadata":{"name":"checkout-7d9f8c6b5-x2k4p","namespace":"shop","uid":")" + uid +
         R"(","resourceVersion":")" + rv +
         R"(","labels":{"app.kubernetes.io/name":"checkout","pod-template-hash":"7d9f8c6b5"},)"
         R"("ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"checkout-7d9f8c6b5",)"
         R"("uid":"00000000-0000-4000-8000-00000000aaaa","controller":true,"blockOwnerDeletion":true}]},)"
         R"("spec":{"nodeName":")" +
         kNode +
         R"(","containers":[{"name":"app","image":"shop/checkout:1.4"}]},)"
         R"("status":{"phase":"Running","containerStatuses":[{"name":"app","image":"shop/checkout:1.4",)"
         R"("imageID":"docker.io/shop/checkout@sha256:)"
         R"(5b0a1c6f1e9e2d4c3b2a19f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4",)"
         R"("containerID":"containerd://)" +
         container_id + R"(","ready":true,"restartCount":0,"started":true}]}})";
}

class K8sIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("kspan-k8s-");
    ASSERT_EQ(MakeTestCertificate(dir_), "");
    RunCommand({"mkdir", "-p", dir_ + "/sa", dir_ + "/events"}, std::chrono::seconds(5));
    RunCommand({"cp", dir_ + "/cert.pem", dir_ + "/sa/ca.crt"}, std::chrono::seconds(5));
    std::ofstream(dir_ + "/sa/token") << kToken << "\n";
  }
  void TearDown() override {
    if (api_.pid() > 0) api_.Stop(SIGTERM, std::chrono::seconds(5));
    if (agent_.pid() > 0) ExpectCleanStop(agent_);
    RunCommand({"rm", "-rf", dir_}, std::chrono::seconds(10));
  }

  void WritePods(const std::vector<std::string>& pods) {
    std::string items;
    for (const std::string& p : pods) items += (items.empty() ? "" : ",") + p;
    std::ofstream(dir_ + "/pods.json")
        << R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1000"},"items":[)" << items
        << "]}";
    ExpectApiShapes(dir_ + "/pods.json");
  }
  // What the stand-in serves has the real API server's shapes: the Kubernetes API's JSON
  // schemas (tests/deploy/validate_k8s_objects.mjs).
  static void ExpectApiShapes(const std::string& file) {
    const CommandResult r =
        RunCommand({"node", std::string(KSPAN_SOURCE_DIR) + "/tests/deploy/validate_k8s_objects.mjs", file},
                   std::chrono::seconds(60));
    EXPECT_EQ(r.exit_code, 0) << file << " against the Kubernetes schemas: " << r.out << r.err;
  }
  void PushEvent(int n, const std::string& type, const std::string& object) {
    // Written whole, then renamed: the server never reads half a file.
    const std::string path = dir_ + "/events/event-" + std::to_string(100 + n) + ".json";
    // A watch event's object carries its kind and apiVersion (list items do not).
    std::ofstream(path + ".tmp") << R"({"type":")" << type << R"(","object":{"kind":"Pod","apiVersion":"v1",)"
                                 << object.substr(1) << "}";
    ExpectApiShapes(path + ".tmp");
    std::rename((path + ".tmp").c_str(), path.c_str());
  }
  bool StartApi() {
    api_port_ = FreePort();
    return api_.Start({"/usr/bin/python3",
                       std::string(KSPAN_SOURCE_DIR) + "/tests/apps/k8s/fake_apiserver.py", "--port",
                       std::to_string(api_port_), "--cert", dir_ + "/cert.pem", "--key", dir_ + "/key.pem",
                       "--token", kToken, "--node", kNode, "--pods", dir_ + "/pods.json", "--events",
                       dir_ + "/events"}) &&
           WaitForPort("127.0.0.1", api_port_, std::chrono::seconds(10));
  }
  bool StartAgent() {
    return agent_.Start({}, {{"KUBERNETES_SERVICE_HOST", "127.0.0.1"},
                             {"KUBERNETES_SERVICE_PORT", std::to_string(api_port_)},
                             {"K8S_NODE_NAME", kNode},
                             {"KSPAN_K8S_SERVICEACCOUNT_DIR", dir_ + "/sa"}});
  }
  // A python3 HTTP server in a container; its port.
  int StartServer(std::string* id) {
    const int port = FreePort();
    std::string error;
    *id = podman_.Start({"/usr/bin/python3", "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1",
                         "--directory", "/usr/share/doc"},
                        &error);
    EXPECT_FALSE(id->empty()) << error;
    EXPECT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(20)));
    return port;
  }
  // curl PATH on the port, then the server's span of it.
  FlatSpan ServerSpan(int port, const std::string& path) {
    const CommandResult c =
        RunCommand({"curl", "-sS", "-o", "/dev/null", "http://127.0.0.1:" + std::to_string(port) + path},
                   std::chrono::seconds(20));
    EXPECT_EQ(c.exit_code, 0) << c.err;
    FlatSpan found;
    WaitFor(
        [&] {
          for (const FlatSpan& s : ReadSpans(agent_.SpansPath())) {
            if (s.kind == kServer && s.Str("url.path") == path) {
              found = s;
              return true;
            }
          }
          return false;
        },
        std::chrono::seconds(15));
    return found;
  }
  // Waits until the fake server saw a request matching `what` (its stdout).
  bool ApiSaw(const std::string& what) {
    return WaitFor([&] { return api_.Stdout().find(what) != std::string::npos; }, std::chrono::seconds(15));
  }

  std::string dir_;
  int api_port_ = 0;
  Subprocess api_;
  Podman podman_;
  KspanAgent agent_;
};

TEST_F(K8sIntegration, SpansNameTheirPodFollowReplacementsAndSurviveTheApiGoingAway) {
  std::string old_id;
  const int old_port = StartServer(&old_id);
  WritePods({PodJson(kOldUid, "990", old_id)});
  ASSERT_TRUE(StartApi()) << api_.Stderr();
  ASSERT_TRUE(StartAgent()) << agent_.Logs();
  ASSERT_TRUE(ApiSaw("\"watch\": \"1\"")) << api_.Stdout() << agent_.Logs();
  // What kspan asked: this node's pods, with the service account's token.
  EXPECT_NE(api_.Stdout().find("\"fieldSelector\": \"spec.nodeName=node-1\""), std::string::npos)
      << api_.Stdout();
  EXPECT_NE(api_.Stdout().find("\"authorization\": \"Bearer " + kToken + "\""), std::string::npos);
  EXPECT_NE(api_.Stdout().find("\"resourceVersion\": \"1000\""), std::string::npos)
      << "the watch starts at the list";

  FlatSpan s = ServerSpan(old_port, "/k8s-old-pod");
  EXPECT_EQ(s.ResourceStr("container.id"), old_id) << agent_.Logs();
  EXPECT_EQ(s.ResourceStr("service.name"), "checkout");
  EXPECT_EQ(s.ResourceStr("k8s.namespace.name"), "shop");
  EXPECT_EQ(s.ResourceStr("k8s.pod.name"), "checkout-7d9f8c6b5-x2k4p");
  EXPECT_EQ(s.ResourceStr("k8s.pod.uid"), kOldUid);
  EXPECT_EQ(s.ResourceStr("k8s.container.name"), "app");
  EXPECT_EQ(s.ResourceStr("k8s.replicaset.name"), "checkout-7d9f8c6b5");
  EXPECT_EQ(s.ResourceStr("k8s.deployment.name"), "checkout");

  // The pod replaced under the same name: a new uid, a new container.
  std::string new_id;
  const int new_port = StartServer(&new_id);
  PushEvent(1, "DELETED", PodJson(kOldUid, "1001", old_id));
  PushEvent(2, "ADDED", PodJson(kNewUid, "1002", new_id));
  // A request may come before the watch brings the new pod (as when a container has just
  // started): its span has the container's id and no pod names, never the old pod's. Once
  // the pod is known, the process's resource is built again and spans name it.
  for (int i = 0; i < 20; ++i) {
    s = ServerSpan(new_port, "/k8s-new-pod-" + std::to_string(i));
    EXPECT_EQ(s.ResourceStr("container.id"), new_id);
    EXPECT_NE(s.ResourceStr("k8s.pod.uid"), kOldUid) << "the old pod's identity on the new container";
    if (!s.ResourceStr("k8s.pod.uid").empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_EQ(s.ResourceStr("k8s.pod.name"), "checkout-7d9f8c6b5-x2k4p");
  EXPECT_EQ(s.ResourceStr("k8s.pod.uid"), kNewUid) << agent_.Logs();
  EXPECT_EQ(s.ResourceStr("service.name"), "checkout");

  // The API server gone: a container it never named still gets its spans, with its id.
  api_.Stop(SIGKILL, std::chrono::seconds(5));
  std::string lone_id;
  const int lone_port = StartServer(&lone_id);
  s = ServerSpan(lone_port, "/k8s-api-gone");
  EXPECT_EQ(s.ResourceStr("container.id"), lone_id);
  EXPECT_EQ(s.ResourceStr("k8s.pod.name"), "");
  EXPECT_EQ(s.ResourceStr("service.name").rfind("python3", 0), 0u) << s.ResourceStr("service.name");
  EXPECT_TRUE(WaitFor([&] { return agent_.Logs().find("Kubernetes API unreachable") != std::string::npos; },
                      std::chrono::seconds(15)))
      << agent_.Logs();
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  EXPECT_GE(agent_.StoppedCounter("kspan_k8s_api_requests_total{result=\"failed\"}"), 1) << agent_.Logs();
  EXPECT_GE(agent_.StoppedCounter("kspan_k8s_api_requests_total{result=\"ok\"}"), 1);
}

}  // namespace
}  // namespace kspan::testing
