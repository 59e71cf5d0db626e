// deploy/: the systemd unit passes systemd's own checks (`systemd-analyze verify`, and
// `security` under a bound on its exposure score), the default configuration it starts
// kspan with parses, and `cmake --install` puts each file where the unit says. systemd
// starting it for real: tests/integration/systemd_test.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "agent/config.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

namespace fs = std::filesystem;

const std::string kSource = KSPAN_SOURCE_DIR;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// The unit as CMake configures it, naming this build's binary and the shipped config.
std::string TestUnit(const std::string& dir) {
  std::string unit = Read(kSource + "/deploy/systemd/kspan.service.in");
  unit = Replace(unit, "@KSPAN_BIN@", KSPAN_BINARY);
  unit = Replace(unit, "@KSPAN_CONFIG@", kSource + "/deploy/kspan.yaml");
  unit = Replace(unit, "@KSPAN_DOC_DIR@", kSource + "/docs");
  const std::string path = dir + "/kspan.service";
  std::ofstream(path) << unit;
  return path;
}

TEST(Deploy, SystemdUnitVerifies) {
  const std::string dir = MakeTempDir("kspan-unit-");
  const CommandResult r = RunCommand({"systemd-analyze", "verify", TestUnit(dir)}, std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "") << "systemd-analyze warns about the unit";
  fs::remove_all(dir);
}

TEST(Deploy, SystemdUnitExposureScore) {
  const std::string dir = MakeTempDir("kspan-unit-");
  const CommandResult r =
      RunCommand({"systemd-analyze", "security", "--offline=true", "--no-pager", TestUnit(dir)},
                 std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::smatch m;
  const std::string all = r.out + r.err;
  ASSERT_TRUE(
      std::regex_search(all, m, std::regex(R"(Overall exposure level for kspan\.service: ([0-9.]+))")))
      << all;
  const double score = std::stod(m[1]);
  std::printf("systemd-analyze security: exposure %.1f (0 = locked down, 10 = unprotected)\n", score);
  // 3.1 when written (docs/deploy.md says what keeps it from lower): a change that drops a
  // protection shows here.
  EXPECT_LE(score, 3.5) << all;
  fs::remove_all(dir);
}

TEST(Deploy, DefaultConfigurationParses) {
  const std::string config = kSource + "/deploy/kspan.yaml";
  std::vector<std::string> args = {"kspan", "--config", config};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  const Result<agent::Config> parsed =
      agent::ParseCommandLine(static_cast<int>(argv.size()), argv.data(), agent::Environment{});
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
}

TEST(Deploy, InstallPutsEachFileWhereTheUnitSaysWithinItsPrefix) {
  const std::string build = fs::path(KSPAN_BINARY).parent_path();
  const std::string prefix = MakeTempDir("kspan-install-");
  const CommandResult r =
      RunCommand({"cmake", "--install", build, "--prefix", prefix}, std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(access((prefix + "/bin/kspan").c_str(), X_OK), 0);
  const std::string unit = Read(prefix + "/lib/systemd/system/kspan.service");
  ASSERT_FALSE(unit.empty());
  EXPECT_FALSE(std::regex_search(unit, std::regex("@[A-Z_]+@"))) << "an unconfigured @VAR@ is left";
  std::smatch m;
  ASSERT_TRUE(std::regex_search(unit, m, std::regex(R"(ExecStart=(\S+)/bin/kspan --config (\S+)\n)")))
      << unit;
  // The unit names the configure-time prefix (CMAKE_INSTALL_PREFIX); the files are where
  // that prefix puts them.
  const std::string configured = m[1];
  EXPECT_EQ(m[2].str(), configured + "/etc/kspan/kspan.yaml");
  EXPECT_EQ(Read(prefix + "/etc/kspan/kspan.yaml"), Read(kSource + "/deploy/kspan.yaml"));
  fs::remove_all(prefix);
}

}  // namespace
}  // namespace kspan::testing
