// kspan's container image (deploy/container/Dockerfile) built by podman and run as a
// DaemonSet would run it: host pid namespace, the host's btf and tracefs mounted
// read-only, once --privileged and once with only the capabilities docs/deploy.md lists.
// It must trace a request between two other containers and send the spans, each with its
// container's id as `podman inspect` gives it, to an OTLP receiver.
//
// The image packs the agent this build made (--build-arg KSPAN_FROM=prebuilt), so CI
// tests the binary it has just tested, in the image's runtime stage, without compiling it
// a second time (the Dockerfile's source stage takes ~15 minutes on 2 cores; docs/deploy.md).
// The base image debian:12 is made by deploy/container/base-image.sh where no registry is
// reachable (about 3 minutes, once per machine).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/otlp_receiver.h"
#include "testing/podman.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

constexpr int kServer = 2, kClient = 3;
const std::string kImage = "localhost/kspan:ci-test";

class ImageIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The base image, where it is missing (no registry here: debootstrap from the mirror).
    if (RunCommand({"podman", "image", "exists", "debian:12"}, seconds(30)).exit_code != 0) {
      const CommandResult base =
          RunCommand({std::string(KSPAN_SOURCE_DIR) + "/deploy/container/base-image.sh"}, minutes(15));
      build_error_ = base.exit_code != 0 ? "base-image.sh failed:\n" + base.out + base.err : "";
      if (!build_error_.empty()) return;
    }
    // The context: this build's agent as the Dockerfile's prebuilt/ expects it.
    const std::string ctx = MakeTempDir("kspan-image-ctx");
    std::filesystem::create_directories(ctx + "/prebuilt/usr/bin");
    std::filesystem::create_directories(ctx + "/prebuilt/etc/kspan");
    std::filesystem::create_directories(ctx + "/prebuilt/libs");
    CommandResult r = RunCommand(
        {"strip", "--strip-debug", "-o", ctx + "/prebuilt/usr/bin/kspan", KSPAN_BINARY}, seconds(60));
    if (r.exit_code != 0) {
      build_error_ = "strip failed: " + r.err;
      return;
    }
    std::filesystem::copy_file(std::string(KSPAN_SOURCE_DIR) + "/deploy/kspan.yaml",
                               ctx + "/prebuilt/etc/kspan/kspan.yaml");
    r = RunCommand({"sh", "-c",
                    std::string("ldd ") + KSPAN_BINARY + " | awk '$3 ~ /^\\// { print $3 }' | sort -u > " +
                        ctx + "/prebuilt/libs/list"},
                   seconds(30));
    if (r.exit_code != 0) {
      build_error_ = "ldd failed: " + r.err;
      return;
    }
    Podman podman;
    const CommandResult build = podman.Run(
        {"build", "--pull=never", "-f", std::string(KSPAN_SOURCE_DIR) + "/deploy/container/Dockerfile",
         "--build-arg", "KSPAN_FROM=prebuilt", "-t", kImage, ctx},
        minutes(15));
    if (build.exit_code != 0) build_error_ = "podman build failed:\n" + build.out + build.err;
    RunCommand({"rm", "-rf", ctx}, seconds(30));
  }
  // The image stays (one tag, replaced by every build): each test of this suite runs in
  // a process of its own under CTest, and the next one's build then reuses its layers.

  void SetUp() override {
    ASSERT_TRUE(build_error_.empty()) << build_error_;
    ASSERT_NO_FATAL_FAILURE(RequireReceivers());
  }
  void TearDown() override {
    if (!agent_.empty()) podman_.Run({"rm", "-f", "-t", "2", agent_}, seconds(60));
  }

  // Runs the image with `privileges`, spans to the receiver; waits for "ready".
  void StartAgent(const std::vector<std::string>& privileges, int otlp_port) {
    agent_ = "kspan-image-test-" + std::to_string(getpid()) + "-" + std::to_string(++runs_);
    std::vector<std::string> args = {"run", "-d", "--name", agent_, "--pid=host", "--network=host"};
    args.insert(args.end(), privileges.begin(), privileges.end());
    args.insert(
        args.end(),
        {"-v", "/sys/kernel/btf:/sys/kernel/btf:ro", "-v", "/sys/kernel/tracing:/sys/kernel/tracing:ro", "-e",
         "KSPAN_QUEUE_SCHEDULE_DELAY_MS=200", kImage, "--output", "otlp", "--otlp-endpoint",
         "http://127.0.0.1:" + std::to_string(otlp_port), "--otlp-protocol", "http/protobuf"});
    const CommandResult run = podman_.Run(args, seconds(60));
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    ASSERT_TRUE(WaitFor([&] { return Logs().find("\"msg\":\"ready\"") != std::string::npos; }, seconds(60)))
        << Logs();
  }
  std::string Logs() {
    const CommandResult r = podman_.Run({"logs", agent_}, seconds(30));
    return r.out + r.err;
  }

  // A python server and a curl client in two containers; the spans of the request, with
  // their containers' ids, must reach the receiver.
  void TraceBetweenContainers(Receiver& receiver, const std::string& path) {
    const int port = FreePort();
    std::string error;
    const std::string server = podman_.Start({"/usr/bin/python3", "-m", "http.server", std::to_string(port),
                                              "--bind", "127.0.0.1", "--directory", "/usr/share/doc"},
                                             &error);
    ASSERT_FALSE(server.empty()) << error;
    ASSERT_TRUE(WaitForPort("127.0.0.1", port, seconds(30)));
    std::string client;
    const CommandResult curl = podman_.RunToEnd(
        {"/usr/bin/curl", "-sS", "-o", "/dev/null", "http://127.0.0.1:" + std::to_string(port) + path},
        &client, seconds(60));
    ASSERT_EQ(curl.exit_code, 0) << curl.err;
    for (const std::string& id : {server, client}) {
      ASSERT_EQ(TrimEnd(podman_.Run({"inspect", "--format", "{{.Id}}", id}, seconds(30)).out), id);
    }
    auto ours = [&](const FlatSpan& s) {
      return s.Str("url.path") == path || s.Str("url.full").ends_with(path);
    };
    std::vector<FlatSpan> spans;
    WaitFor(
        [&] {
          spans.clear();
          for (const FlatSpan& s : ReadSpans(receiver.out())) {
            if (ours(s)) spans.push_back(s);
          }
          return spans.size() >= 2;
        },
        seconds(30));
    ASSERT_EQ(spans.size(), 2u) << Logs() << receiver.Stderr();
    for (const FlatSpan& s : spans) {
      SCOPED_TRACE(s.name);
      ASSERT_TRUE(s.kind == kServer || s.kind == kClient) << s.kind;
      EXPECT_EQ(s.ResourceStr("container.id"), s.kind == kServer ? server : client);
      EXPECT_EQ(s.ResourceStr("container.runtime.name"), "podman");
    }
    EXPECT_EQ(spans[0].trace_id, spans[1].trace_id);
  }

  // Stops the agent the way the runtime does (SIGTERM): it must exit 0, no error logged.
  void StopAgent() {
    const CommandResult stop = podman_.Run({"stop", "-t", "20", agent_}, seconds(60));
    ASSERT_EQ(stop.exit_code, 0) << stop.err;
    const std::string code =
        TrimEnd(podman_.Run({"inspect", "--format", "{{.State.ExitCode}}", agent_}, seconds(30)).out);
    const std::string logs = Logs();
    EXPECT_EQ(code, "0") << logs;
    EXPECT_NE(logs.find("\"msg\":\"stopped\""), std::string::npos) << logs;
    EXPECT_EQ(logs.find("\"level\":\"error\""), std::string::npos) << logs;
  }

  static std::string build_error_;
  Podman podman_;
  std::string agent_;
  int runs_ = 0;
};

std::string ImageIntegration::build_error_;

TEST_F(ImageIntegration, PrivilegedTracesBetweenContainersToOtlp) {
  const int otlp = FreePort();
  Receiver receiver;
  ASSERT_TRUE(receiver.Start("http", otlp)) << receiver.Stderr();
  ASSERT_NO_FATAL_FAILURE(StartAgent({"--privileged"}, otlp));
  ASSERT_NO_FATAL_FAILURE(TraceBetweenContainers(receiver, "/kspan-image-privileged"));
  ASSERT_NO_FATAL_FAILURE(StopAgent());
}

TEST_F(ImageIntegration, OnlyTheListedCapabilities) {
  const int otlp = FreePort();
  Receiver receiver;
  ASSERT_TRUE(receiver.Start("http", otlp)) << receiver.Stderr();
  // docs/deploy.md "Privileges", as the Helm chart grants them: everything dropped, these
  // five added (CAP_SYS_ADMIN for the TLS uprobes).
  ASSERT_NO_FATAL_FAILURE(
      StartAgent({"--cap-drop=all", "--cap-add=bpf,perfmon,dac_read_search,sys_ptrace,sys_admin"}, otlp));
  // The agent's own capabilities, read from the host (--pid=host: its "pid" in the ready
  // line is the host's): bpf 39, perfmon 38, sys_admin 21, sys_ptrace 19, dac_read_search 2.
  const std::string logs = Logs();
  const size_t at = logs.find("\"pid\":", logs.find("\"msg\":\"ready\""));
  ASSERT_NE(at, std::string::npos) << logs;
  const std::string pid = std::to_string(std::stol(logs.substr(at + 6)));
  const std::string status = ReadFileOrEmpty("/proc/" + pid + "/status");
  EXPECT_NE(status.find("CapEff:\t000000c000280004"), std::string::npos) << status;
  ASSERT_NO_FATAL_FAILURE(TraceBetweenContainers(receiver, "/kspan-image-capabilities"));
  ASSERT_NO_FATAL_FAILURE(StopAgent());
}

}  // namespace
}  // namespace kspan::testing
