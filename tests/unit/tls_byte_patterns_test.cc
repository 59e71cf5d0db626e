// The byte-pattern table (userspace/tls/byte_patterns.h): its text format, matching over a
// real stripped binary, and the check that fails when a pinned binary stops matching.
#include <gtest/gtest.h>

#include <filesystem>

#include "testing/subprocess.h"
#include "tls/byte_patterns.h"

namespace kspan::tls {
namespace {

constexpr const char* kId = "b5188e4f53b53f3a346614bd78ba53f2ff234402";

TEST(BytePatternTable, ParsesRowsWildcardsAndNotes) {
  auto rows = ParsePatternTable(
      "# a comment\n\n"
      "SSL_read  ABCDEF0123456789abcd  55 4889e5 ..b9 000102030405060708090a0b  # Some v1 (x)\n"
      "SSL_write abcdef0123456789abcd 554889e5 000102030405060708090a0b0c0d0e0f\n",
      "t");
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows.value().size(), 2u);
  const PatternRow& r = rows.value()[0];
  EXPECT_EQ(r.function, "SSL_read");
  EXPECT_EQ(r.build_id, "abcdef0123456789abcd");  // lowercased, as readelf prints it
  EXPECT_EQ(r.note, "Some v1 (x)");
  EXPECT_EQ(r.line, 3);
  ASSERT_EQ(r.bytes.size(), 18u);
  EXPECT_EQ(r.bytes[0], 0x55);
  EXPECT_EQ(r.bytes[4], -1);
  EXPECT_EQ(r.bytes[5], 0xb9);
  EXPECT_EQ(rows.value()[1].line, 4);
  EXPECT_TRUE(rows.value()[1].note.empty());
}

TEST(BytePatternTable, RefusesBadRowsNamingTheLine) {
  struct Case {
    const char* text;
    const char* says;
  };
  const Case cases[] = {
      {"SSL_peek abcdef0123456789 000102030405060708090a0b0c0d0e0f\n", "unknown function"},
      {"SSL_read xyz 000102030405060708090a0b0c0d0e0f\n", "build id"},
      {"SSL_read abcdef0123456789 0001020\n", "odd number"},
      {"SSL_read abcdef0123456789 00zz\n", "neither a hex byte"},
      {"SSL_read abcdef0123456789 ..000102030405060708090a0b0c0d0e0f\n", "begin with a fixed byte"},
      {"SSL_read abcdef0123456789 0001020304\n", "fixed bytes"},
      {"SSL_read abcdef0123456789\n", "too few fields"},
  };
  for (const Case& c : cases) {
    auto rows = ParsePatternTable(std::string("# ok\n") + c.text, "user.tsv");
    ASSERT_FALSE(rows.ok()) << c.text;
    EXPECT_NE(rows.status().message().find("user.tsv:2: "), std::string::npos) << rows.status().message();
    EXPECT_NE(rows.status().message().find(c.says), std::string::npos) << rows.status().message();
  }
}

TEST(BytePatternTable, BuiltinParses) {
  auto rows = ParsePatternTable(BuiltinPatternTable(), "built-in");
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_GE(rows.value().size(), 2u);
}

// The Bun that tests/apps/bun pins (npm `bun`, installed by scripts/install-deps.sh). When
// package.json moves to another Bun, or this build's code changes, this fails: add rows for
// the new build id (docs/tls.md, "Byte-pattern table" says how to find them).
class PinnedBun : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/bun/node_modules/bun/bin/bun.exe";
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing: run scripts/install-deps.sh";
    auto elf = ElfFile::Open(path);
    ASSERT_TRUE(elf.ok()) << elf.status().message();
    elf_ = std::move(elf.value());
    auto rows = ParsePatternTable(BuiltinPatternTable(), "built-in");
    ASSERT_TRUE(rows.ok());
    rows_ = std::move(rows.value());
  }
  std::unique_ptr<ElfFile> elf_;
  std::vector<PatternRow> rows_;
};

TEST_F(PinnedBun, EveryRowOfItsBuildIdMatchesOnceAtAFunctionEntry) {
  const std::string id = elf_->BuildId();
  ASSERT_TRUE(HasPatternRows(*elf_, rows_))
      << "no built-in byte-pattern rows for the pinned Bun's build id " << id;
  EXPECT_FALSE(elf_->FindFunction("SSL_read")) << "Bun has SSL_read symbols now: patterns are not needed";
  size_t checked = 0;
  for (const PatternRow& row : rows_) {
    if (row.build_id != id) continue;
    SCOPED_TRACE(row.function);
    auto at = MatchPattern(*elf_, row);
    ASSERT_TRUE(at.ok()) << at.status().message();
    // A function entry: the padding before it is int3, and it starts with `push %rbp`
    // (BoringSSL in Bun keeps frame pointers): a probe the kernel emulates.
    const std::string_view before = elf_->BytesAt(at.value() - 1, 1);
    EXPECT_EQ(static_cast<uint8_t>(before[0]), 0xcc);
    EXPECT_EQ(static_cast<uint8_t>(elf_->BytesAt(at.value(), 1)[0]), 0x55);
    ++checked;
  }
  EXPECT_EQ(checked, 2u);
  auto plan = PlanPatternProbes(*elf_, rows_);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_FALSE(plan.value().slow) << plan.value().description;
  EXPECT_EQ(plan.value().probes.size(), 4u);  // SSL_read and SSL_write, entry and return
  EXPECT_NE(plan.value().description.find("Bun v1.4.5"), std::string::npos) << plan.value().description;
}

// Claude Code from npm (tests/apps/claude) is a Bun 1.4.6 build of its own: its rows must
// match once each, at a function entry, as the pinned Bun's.
TEST(PinnedClaudeCode, EveryRowOfItsBuildIdMatchesOnceAtAFunctionEntry) {
  const std::string path = std::string(KSPAN_SOURCE_DIR) +
                           "/tests/apps/claude/node_modules/@anthropic-ai/claude-code-linux-x64/claude";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing: run scripts/install-deps.sh";
  auto elf = ElfFile::Open(path);
  ASSERT_TRUE(elf.ok()) << elf.status().message();
  auto rows = ParsePatternTable(BuiltinPatternTable(), "built-in");
  ASSERT_TRUE(rows.ok());
  const std::string id = elf.value()->BuildId();
  ASSERT_TRUE(HasPatternRows(*elf.value(), rows.value()))
      << "no built-in rows for Claude Code's build id " << id;
  size_t checked = 0;
  for (const PatternRow& row : rows.value()) {
    if (row.build_id != id) continue;
    SCOPED_TRACE(row.function);
    auto at = MatchPattern(*elf.value(), row);
    ASSERT_TRUE(at.ok()) << at.status().message();
    EXPECT_EQ(static_cast<uint8_t>(elf.value()->BytesAt(at.value() - 1, 1)[0]), 0xcc);
    EXPECT_EQ(static_cast<uint8_t>(elf.value()->BytesAt(at.value(), 1)[0]), 0x55);
    ++checked;
  }
  EXPECT_EQ(checked, 2u);
  auto plan = PlanPatternProbes(*elf.value(), rows.value());
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan.value().probes.size(), 4u);
  EXPECT_NE(plan.value().description.find("Claude Code 2.1.332 (Bun v1.4.6"), std::string::npos)
      << plan.value().description;
}

// A row that no longer fits the code (one byte changed) is refused, naming its line; so is
// one that is not specific enough to match only once.
TEST_F(PinnedBun, ARowThatNoLongerMatchesIsRefused) {
  const std::string id = elf_->BuildId();
  PatternRow changed;
  for (const PatternRow& row : rows_) {
    if (row.build_id == id && row.function == "SSL_read") changed = row;
  }
  ASSERT_FALSE(changed.bytes.empty());
  changed.bytes.back() = static_cast<int16_t>(changed.bytes.back() ^ 0x01);
  auto at = MatchPattern(*elf_, changed);
  ASSERT_FALSE(at.ok());
  EXPECT_NE(at.status().message().find("matches nowhere"), std::string::npos) << at.status().message();
  EXPECT_NE(at.status().message().find("table line " + std::to_string(changed.line)), std::string::npos);

  std::vector<PatternRow> rows = rows_;
  for (PatternRow& row : rows) {
    if (row.build_id == id && row.function == "SSL_read") row = changed;
  }
  auto plan = PlanPatternProbes(*elf_, rows);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("SSL_read"), std::string::npos);

  // `push %rbp; mov %rsp,%rbp; push %r15..%r12; push %rbx; push %rax; mov %rdi,%rbx`:
  // hundreds of functions begin so.
  auto common =
      ParsePatternTable(std::string("SSL_read ") + id + " 55 4889e5 4157 4156 4155 4154 53 50 4889fb\n", "t");
  ASSERT_TRUE(common.ok()) << common.status().message();
  auto many = MatchPattern(*elf_, common.value()[0]);
  ASSERT_FALSE(many.ok());
  EXPECT_NE(many.status().message().find("more than once"), std::string::npos) << many.status().message();
}

TEST(BytePatternTable, OtherBuildsHaveNoRows) {
  auto elf = ElfFile::Open("/usr/bin/python3");
  ASSERT_TRUE(elf.ok());
  auto rows = ParsePatternTable(BuiltinPatternTable(), "built-in");
  ASSERT_TRUE(rows.ok());
  EXPECT_FALSE(HasPatternRows(*elf.value(), rows.value()));
  auto plan = PlanPatternProbes(*elf.value(), rows.value());
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("no byte-pattern row for build id " + elf.value()->BuildId()),
            std::string::npos);
}

}  // namespace
}  // namespace kspan::tls
