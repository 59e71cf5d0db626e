// kspan as a user other than root: started by setpriv as `nobody` with the capabilities
// docs/deploy.md lists (events/capabilities.h), it traces root's processes; without any
// one of them it refuses to start with one clear error naming it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cctype>
#include <string>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;

const std::vector<std::string> kListed = {"bpf", "perfmon", "dac_read_search", "sys_ptrace"};

// setpriv running the rest of the command as nobody with exactly `caps` (no others, and
// none it could regain).
std::vector<std::string> AsNobodyWith(const std::vector<std::string>& caps) {
  std::string list = "-all";
  for (const std::string& c : caps) list += ",+" + c;
  return {"/usr/bin/setpriv",   "--reuid=65534",          "--regid=65534",         "--clear-groups",
          "--inh-caps=" + list, "--ambient-caps=" + list, "--bounding-set=" + list};
}

TEST(CapabilitiesIntegration, TheListedCapabilitiesAreEnoughAsNobody) {
  KspanAgent agent;
  agent.set_launcher(AsNobodyWith(kListed));
  ASSERT_TRUE(agent.Start()) << "kspan did not become ready:\n" << agent.Logs();
  EXPECT_NE(agent.Logs().find("CAP_SYS_ADMIN (TLS capture"), std::string::npos) << agent.Logs();

  // A server and a client of root's: their names come from /proc/PID/exe, which only
  // CAP_SYS_PTRACE lets another user read.
  const int port = FreePort();
  Subprocess server;
  ASSERT_TRUE(server.Start({"/usr/bin/python3", "-m", "http.server", std::to_string(port), "--bind",
                            "127.0.0.1", "--directory", "/usr/share/doc"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << server.Stderr();
  const CommandResult curl = RunCommand({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                         "http://127.0.0.1:" + std::to_string(port) + "/kspan-as-nobody"},
                                        std::chrono::seconds(20));
  ASSERT_EQ(curl.exit_code, 0) << curl.err;
  EXPECT_EQ(curl.out, "404");

  auto ours = [](const FlatSpan& s) {
    return s.Str("url.path") == "/kspan-as-nobody" || s.Str("url.full").ends_with("/kspan-as-nobody");
  };
  std::vector<FlatSpan> spans;
  WaitFor(
      [&] {
        spans.clear();
        for (const FlatSpan& s : ReadSpans(agent.SpansPath())) {
          if (ours(s)) spans.push_back(s);
        }
        return spans.size() >= 2;
      },
      std::chrono::seconds(15));
  server.Stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_EQ(spans.size(), 2u) << agent.Logs();
  for (const FlatSpan& s : spans) {
    SCOPED_TRACE(s.kind);
    ASSERT_TRUE(s.kind == kServer || s.kind == kClient);
    EXPECT_EQ(s.ResourceStr("process.executable.name").rfind(s.kind == kServer ? "python3" : "curl", 0), 0u)
        << s.ResourceStr("process.executable.name");
  }
  EXPECT_EQ(spans[0].trace_id, spans[1].trace_id);
  ExpectCleanStop(agent);
}

TEST(CapabilitiesIntegration, EachMissingCapabilityIsNamed) {
  const std::string dir = MakeTempDir("kspan-caps-");
  chmod(dir.c_str(), 0777);  // so that a refusal is the capabilities', not the output's
  for (size_t left_out = 0; left_out < kListed.size(); ++left_out) {
    std::vector<std::string> caps;
    for (size_t i = 0; i < kListed.size(); ++i) {
      if (i != left_out) caps.push_back(kListed[i]);
    }
    std::vector<std::string> argv = AsNobodyWith(caps);
    argv.insert(argv.end(), {KSPAN_BINARY, "--duration", "1", "--output", "file:" + dir + "/spans.jsonl"});
    const CommandResult run = RunCommand(argv, std::chrono::seconds(30));
    std::string name = "CAP_" + kListed[left_out];
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    SCOPED_TRACE(name);
    EXPECT_NE(run.exit_code, 0);
    EXPECT_NE(run.err.find("kspan lacks " + name + " ("), std::string::npos) << run.err;
    for (const std::string& other : caps) {
      std::string o = "CAP_" + other;
      for (char& c : o) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      EXPECT_EQ(run.err.find(o + " ("), std::string::npos) << "names " << o << " too: " << run.err;
    }
  }
  RunCommand({"rm", "-rf", dir}, std::chrono::seconds(10));
}

}  // namespace
}  // namespace kspan::testing
