#include "events/capabilities.h"

#include <gtest/gtest.h>

#include <string>

namespace kspan::events {
namespace {

constexpr uint64_t Bit(int cap) {
  return uint64_t{1} << cap;
}
constexpr uint64_t kDacReadSearch = Bit(2), kSysPtrace = Bit(19), kSysAdmin = Bit(21), kPerfmon = Bit(38),
                   kBpf = Bit(39);

std::string Names(const std::vector<MissingCapability>& m) {
  std::string out;
  for (const auto& c : m) out += c.name + " ";
  return out;
}

TEST(Capabilities, RootHasEverything) {
  const CapabilityCheck c = CheckCapabilities(0x000001ffffffffffULL);
  EXPECT_TRUE(c.required.empty());
  EXPECT_TRUE(c.optional.empty());
}

TEST(Capabilities, TheListedSetRunsWithTlsOff) {
  const CapabilityCheck c = CheckCapabilities(kBpf | kPerfmon | kDacReadSearch | kSysPtrace);
  EXPECT_EQ(Names(c.required), "");
  EXPECT_EQ(Names(c.optional), "CAP_SYS_ADMIN ");
}

TEST(Capabilities, EachMissingOneIsNamed) {
  const uint64_t all = kBpf | kPerfmon | kDacReadSearch | kSysPtrace;
  EXPECT_EQ(Names(CheckCapabilities(all & ~kBpf).required), "CAP_BPF ");
  EXPECT_EQ(Names(CheckCapabilities(all & ~kPerfmon).required), "CAP_PERFMON ");
  EXPECT_EQ(Names(CheckCapabilities(all & ~kDacReadSearch).required), "CAP_DAC_READ_SEARCH ");
  EXPECT_EQ(Names(CheckCapabilities(all & ~kSysPtrace).required), "CAP_SYS_PTRACE ");
  EXPECT_EQ(Names(CheckCapabilities(0).required), "CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH CAP_SYS_PTRACE ");
}

TEST(Capabilities, SysAdminStandsInForBpfAndPerfmon) {
  const CapabilityCheck c = CheckCapabilities(kSysAdmin | kDacReadSearch | kSysPtrace);
  EXPECT_EQ(Names(c.required), "");
  EXPECT_EQ(Names(c.optional), "");
}

TEST(Capabilities, DescribeSaysWhy) {
  const std::string d = Describe(CheckCapabilities(kBpf | kPerfmon | kDacReadSearch).required);
  EXPECT_EQ(d.rfind("CAP_SYS_PTRACE (reading other users' /proc/PID/exe", 0), 0u) << d;
}

TEST(Capabilities, EffectiveSetFromProcStatus) {
  EXPECT_EQ(EffectiveCapabilities("Name:\tkspan\nCapInh:\t0000000000000000\nCapPrm:\t000000c000080004\n"
                                  "CapEff:\t000000c000080004\nCapBnd:\t000001ffffffffff\n"),
            0x000000c000080004ULL);
  EXPECT_EQ(EffectiveCapabilities("CapEff:\t000001ffffffffff\n"), 0x000001ffffffffffULL);
  EXPECT_EQ(EffectiveCapabilities("Name:\tx\nNoCapEff:\t1\n"), std::nullopt);
  EXPECT_EQ(EffectiveCapabilities("CapEff:\t\n"), std::nullopt);
  EXPECT_EQ(EffectiveCapabilities(""), std::nullopt);
}

}  // namespace
}  // namespace kspan::events
