// Go binaries: crypto/tls.(*Conn).Read/Write found the same way with symbols and without
// (.gopclntab), probe points decoded from real code. The binaries are tests/apps/go/
// tlsapp.go built here with Debian's go (standard library only, no network).
#include <gtest/gtest.h>

#include <map>

#include "testing/subprocess.h"
#include "tls/go_binary.h"

namespace kspan::tls {
namespace {

using kspan::testing::MakeTempDir;
using kspan::testing::RunCommand;

class GoBinary : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("kspan-go-bin-");
    for (const bool strip : {false, true}) {
      const std::string out = dir_ + (strip ? "/stripped" : "/symbols");
      std::vector<std::string> argv = {"env",
                                       "GOCACHE=" + dir_ + "/cache",
                                       "GOPATH=" + dir_ + "/gopath",
                                       "GOFLAGS=",
                                       "GOPROXY=off",
                                       "GO111MODULE=off",
                                       "go",
                                       "build",
                                       "-o",
                                       out};
      if (strip) argv.push_back("-ldflags=-s -w");
      argv.push_back(std::string(KSPAN_SOURCE_DIR) + "/tests/apps/go/tlsapp.go");
      auto r = RunCommand(argv, std::chrono::seconds(240));
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }
  static std::unique_ptr<ElfFile> Open(const std::string& name) {
    auto elf = ElfFile::Open(dir_ + "/" + name);
    EXPECT_TRUE(elf.ok()) << elf.status().message();
    return elf.ok() ? std::move(elf.value()) : nullptr;
  }
  static std::string dir_;
};
std::string GoBinary::dir_;

TEST_F(GoBinary, FindsTheSameFunctionsWithAndWithoutSymbols) {
  auto with = Open("symbols"), without = Open("stripped");
  ASSERT_TRUE(with && without);
  EXPECT_TRUE(IsGoBinary(*with));
  EXPECT_TRUE(IsGoBinary(*without));
  EXPECT_FALSE(without->HasSection(".symtab"));
  const std::string version = GoVersion(*without);
  ASSERT_TRUE(ParseGoVersion(version)) << version;
  EXPECT_GE(ParseGoVersion(version)->second, 17);
  for (const char* name : {"crypto/tls.(*Conn).Read", "crypto/tls.(*Conn).Write"}) {
    auto sym = with->FindFunction(name);
    ASSERT_TRUE(sym) << name;
    // .gopclntab of the symbol-carrying binary agrees with its .symtab.
    auto plain = without->FindFunction(name);
    EXPECT_FALSE(plain);
    auto from_table = FindGoFunction(*without, name);
    ASSERT_TRUE(from_table) << name;
    EXPECT_GT(from_table->size, 0u);
  }
  EXPECT_FALSE(FindGoFunction(*without, "crypto/tls.(*Conn).NoSuchMethod"));
}

TEST_F(GoBinary, PlansStackCheckBranchAndEveryRet) {
  for (const char* name : {"symbols", "stripped"}) {
    auto elf = Open(name);
    ASSERT_TRUE(elf);
    auto plan = PlanGoTlsProbes(*elf);
    ASSERT_TRUE(plan.ok()) << name << ": " << plan.status().message();
    size_t writes = 0, reads = 0, rets = 0, spawns = 0, spawn_rets = 0;
    std::map<std::string, size_t> entries;  // the other ancestry probes, by program
    for (const auto& p : plan.value().probes) {
      EXPECT_FALSE(p.retprobe) << "no return probes in Go code";
      const std::string_view code = elf->BytesAt(p.file_offset, 1);
      ASSERT_EQ(code.size(), 1u);
      if (p.program == "ks_go_tls_write") ++writes;
      if (p.program == "ks_go_tls_read") ++reads;
      if (p.program == "ks_go_spawn") ++spawns;
      if (p.program == "ks_go_handshake" || p.program == "ks_go_roundtrip" ||
          p.program == "ks_go_conn_loop") {
        ++entries[p.program];
      }
      if (p.program == "ks_go_tls_rdret" || p.program == "ks_go_spawned") {
        ++(p.program == "ks_go_spawned" ? spawn_rets : rets);
        EXPECT_EQ(static_cast<uint8_t>(code[0]), 0xc3) << "a RET probe sits on a ret";
      } else {
        // jbe rel32 (0f 86) or rel8 (76): the stack check's branch.
        const std::string_view two = elf->BytesAt(p.file_offset, 2);
        EXPECT_TRUE(two == std::string_view("\x0f\x86", 2) || static_cast<uint8_t>(two[0]) == 0x76)
            << "entry probes sit on the stack check's jbe";
      }
    }
    EXPECT_EQ(writes, 1u);
    EXPECT_EQ(reads, 1u);
    EXPECT_GE(rets, 1u);
    // Goroutine ancestry (Go >= 1.18; Debian 12's go is 1.19): runtime.newproc1 at entry and
    // RETs, both handshakes, and net/http's client hand-off (tlsapp uses net/http).
    EXPECT_EQ(spawns, 1u);
    EXPECT_GE(spawn_rets, 1u);
    EXPECT_EQ(entries["ks_go_handshake"], 2u);
    EXPECT_EQ(entries["ks_go_roundtrip"], 1u);
    EXPECT_EQ(entries["ks_go_conn_loop"], 2u);
    EXPECT_NE(plan.value().description.find("goroutine ancestry: runtime.newproc1"), std::string::npos)
        << plan.value().description;
    EXPECT_NE(plan.value().description.find(std::string(name) == "stripped" ? ".gopclntab" : "symbols"),
              std::string::npos)
        << plan.value().description;
  }
  // The two builds put the functions at the same places: same probe set.
  auto a = PlanGoTlsProbes(*Open("symbols")), b = PlanGoTlsProbes(*Open("stripped"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a.value().probes.size(), b.value().probes.size());
}

// The build id a byte-pattern table is keyed by (docs/tls.md), as readelf reads it.
TEST(ElfBuildId, MatchesReadelf) {
  const std::string path = "/usr/bin/python3";
  auto elf = ElfFile::Open(path);
  ASSERT_TRUE(elf.ok()) << elf.status().message();
  const auto r = RunCommand({"readelf", "-n", path}, std::chrono::seconds(20));
  ASSERT_EQ(r.exit_code, 0);
  const size_t at = r.out.find("Build ID: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string want = r.out.substr(at + 10, r.out.find('\n', at) - at - 10);
  EXPECT_EQ(elf.value()->BuildId(), want);
  EXPECT_EQ(want.size(), 40u);
}

TEST(GoVersionText, Parses) {
  EXPECT_EQ(ParseGoVersion("go1.19.8"), std::make_pair(1, 19));
  EXPECT_EQ(ParseGoVersion("go1.22rc1"), std::make_pair(1, 22));
  EXPECT_FALSE(ParseGoVersion("devel +abc"));
  EXPECT_FALSE(ParseGoVersion(""));
}

}  // namespace
}  // namespace kspan::tls
