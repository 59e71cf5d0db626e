// The BPF object as built (the skeleton's embedded ELF, opened without loading: no
// privileges needed): names the kernel keeps whole and apart, and one program-table row a
// program (events::ProgramTable).
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "events/bpf_event_source.h"
#include "kspan.skel.h"

namespace kspan {
namespace {

// The kernel keeps BPF_OBJ_NAME_LEN - 1 characters of a program's or map's name
// (bpftool prog show, the run-time stats bench/ reads, kernel logs).
constexpr size_t kKernelNameMax = 15;

struct SkeletonDeleter {
  void operator()(kspan_bpf* skel) const { kspan_bpf__destroy(skel); }
};

std::unique_ptr<kspan_bpf, SkeletonDeleter> OpenSkeleton() {
  return std::unique_ptr<kspan_bpf, SkeletonDeleter>(kspan_bpf__open());
}

struct Program {
  std::string name;
  std::string section;
};

std::vector<Program> Programs(const kspan_bpf& skel) {
  std::vector<Program> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel.obj) {
    out.push_back({bpf_program__name(prog), bpf_program__section_name(prog)});
  }
  return out;
}

struct Map {
  std::string name;
  bool internal;  // .rodata, .bss, ...: named by libbpf, not by us
};

std::vector<Map> Maps(const kspan_bpf& skel) {
  std::vector<Map> out;
  bpf_map* map;
  bpf_object__for_each_map(map, skel.obj) {
    out.push_back({bpf_map__name(map), bpf_map__is_internal(map)});
  }
  return out;
}

// What the kernel would make of `names`: one line each for a name longer than it keeps
// and for two names equal in what it keeps.
std::vector<std::string> KernelNameProblems(const std::vector<std::string>& names) {
  std::vector<std::string> problems;
  std::map<std::string, std::string> by_prefix;
  for (const std::string& name : names) {
    const std::string kept = name.substr(0, kKernelNameMax);
    if (name.size() > kKernelNameMax)
      problems.push_back(name + " is longer than the kernel keeps: it shows as " + kept);
    const auto [it, inserted] = by_prefix.emplace(kept, name);
    if (!inserted) problems.push_back(it->second + " and " + name + " both show as " + kept);
  }
  return problems;
}

TEST(BpfObjectsTest, OpensWithoutPrivileges) {
  auto skel = OpenSkeleton();
  ASSERT_NE(skel, nullptr) << "kspan_bpf__open failed: " << errno;
  EXPECT_GT(Programs(*skel).size(), 30u);
  EXPECT_GT(Maps(*skel).size(), 10u);
}

TEST(BpfObjectsTest, ProgramNamesFitTheKernelAndDiffer) {
  auto skel = OpenSkeleton();
  ASSERT_NE(skel, nullptr);
  std::vector<std::string> names;
  for (const Program& p : Programs(*skel)) {
    EXPECT_TRUE(p.name.starts_with("ks_")) << p.name;
    names.push_back(p.name);
  }
  EXPECT_EQ(KernelNameProblems(names), std::vector<std::string>{});
}

TEST(BpfObjectsTest, MapNamesFitTheKernelAndDiffer) {
  auto skel = OpenSkeleton();
  ASSERT_NE(skel, nullptr);
  std::vector<std::string> names;
  for (const Map& m : Maps(*skel)) {
    if (!m.internal) {
      EXPECT_TRUE(m.name.starts_with("ks_")) << m.name;
    }
    names.push_back(m.name);
  }
  EXPECT_EQ(KernelNameProblems(names), std::vector<std::string>{});
}

// The check above must fail on what it guards against.
TEST(BpfObjectsTest, NameCheckCatchesLongAndCollidingNames) {
  EXPECT_EQ(KernelNameProblems({"ks_turn_epoll_pwait", "ks_turn_epoll_pwait2"}),
            (std::vector<std::string>{
                "ks_turn_epoll_pwait is longer than the kernel keeps: it shows as ks_turn_epoll_p",
                "ks_turn_epoll_pwait2 is longer than the kernel keeps: it shows as ks_turn_epoll_p",
                "ks_turn_epoll_pwait and ks_turn_epoll_pwait2 both show as ks_turn_epoll_p"}));
  EXPECT_EQ(KernelNameProblems({"ks_en_read", "ks_ex_read", "ks_turn_pselect"}), std::vector<std::string>{});
}

TEST(BpfObjectsTest, EveryProgramHasExactlyOneTableRow) {
  auto skel = OpenSkeleton();
  ASSERT_NE(skel, nullptr);
  std::map<std::string, int> rows;
  for (const events::ProgramRow& row : events::ProgramTable()) {
    ++rows[row.program];
    EXPECT_NE(std::string_view(row.feature), "") << row.program;
  }
  std::set<std::string> programs;
  bool core_at_start = false;
  for (const Program& p : Programs(*skel)) {
    programs.insert(p.name);
    EXPECT_EQ(rows[p.name], 1) << "program " << p.name << " needs exactly one row in events::ProgramTable()";
    const events::ProgramRow* row = events::FindProgramRow(p.name);
    if (!row) continue;
    // A uprobe has no target of its own: only user space's per-library attach can place it.
    const bool uprobe = p.section == "uprobe" || p.section == "uretprobe";
    EXPECT_EQ(row->attach == events::ProgramRow::Attach::kPerLibrary, uprobe)
        << p.name << " in section " << p.section;
    core_at_start |=
        row->need == events::ProgramRow::Need::kCore && row->attach == events::ProgramRow::Attach::kAtStart;
  }
  for (const auto& [name, count] : rows) {
    EXPECT_TRUE(programs.count(name)) << "table row " << name << " names no program of the BPF object";
  }
  EXPECT_TRUE(core_at_start) << "Open() fails unless a kCore program attaches: the table needs one";
}

}  // namespace
}  // namespace kspan
