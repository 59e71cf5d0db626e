// Where the TLS uprobes go: the instruction-cost table, the ELF reader on files every
// Debian 12 test machine has (libssl.so.3, node, /bin/true), malformed files, and the
// attach plan for real OpenSSL builds. No offsets are hard-coded: a distribution update
// moves every function, so the tests check relations (symbol ↔ offset ↔ bytes) instead.
#include <elf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "tls/attach_plan.h"
#include "tls/elf_file.h"

namespace kspan::tls {
namespace {

using namespace std::string_literals;  // "\x00..."s keeps embedded NULs

constexpr char kLibssl[] = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
constexpr char kNode[] = "/usr/bin/node";
constexpr char kTrue[] = "/bin/true";

// ---- ProbeCostOf: one row per instruction form --------------------------------------

struct CostCase {
  const char* name;
  std::string code;
  ProbeCost cost;
  const char* what;
};

class ProbeCostTest : public ::testing::TestWithParam<CostCase> {};

TEST_P(ProbeCostTest, RatesTheFirstInstruction) {
  const CostCase& c = GetParam();
  std::string what = "unset";
  EXPECT_EQ(ProbeCostOf(c.code, &what), c.cost);
  EXPECT_EQ(what, c.what);
  // `what` is optional.
  EXPECT_EQ(ProbeCostOf(c.code, nullptr), c.cost);
}

INSTANTIATE_TEST_SUITE_P(
    X86, ProbeCostTest,
    ::testing::Values(CostCase{"PushRbp", "\x55\x48\x89\xe5"s, ProbeCost::kEmulated, "push"},
                      CostCase{"PushRbx", "\x53"s, ProbeCost::kEmulated, "push"},
                      CostCase{"PushRax", "\x50"s, ProbeCost::kEmulated, "push"},
                      CostCase{"PushRdi", "\x57"s, ProbeCost::kEmulated, "push"},
                      CostCase{"PushR13", "\x41\x55\x41\x54"s, ProbeCost::kEmulated, "push"},
                      CostCase{"PushR8", "\x41\x50"s, ProbeCost::kEmulated, "push"},
                      CostCase{"PushR15", "\x41\x57"s, ProbeCost::kEmulated, "push"},
                      CostCase{"CallRel32", "\xe8\x10\x20\x30\x40"s, ProbeCost::kEmulated, "call"},
                      CostCase{"JmpRel32", "\xe9\x00\x00\x00\x00"s, ProbeCost::kEmulated, "jmp"},
                      CostCase{"JmpRel8", "\xeb\x05"s, ProbeCost::kEmulated, "jmp"},
                      CostCase{"JoRel8", "\x70\x02"s, ProbeCost::kEmulated, "jcc"},
                      CostCase{"JsRel8", "\x78\x2f"s, ProbeCost::kEmulated, "jcc"},
                      CostCase{"JgRel8", "\x7f\x02"s, ProbeCost::kEmulated, "jcc"},
                      CostCase{"JoRel32", "\x0f\x80\x00\x00\x00\x00"s, ProbeCost::kEmulated, "jcc"},
                      CostCase{"JeRel32", "\x0f\x84\x10\x00\x00\x00"s, ProbeCost::kEmulated, "jcc"},
                      CostCase{"JgRel32", "\x0f\x8f\x10\x00\x00\x00"s, ProbeCost::kEmulated, "jcc"},
                      CostCase{"Nop5", "\x0f\x1f\x44\x00\x00"s, ProbeCost::kNop, "nop5"},
                      CostCase{"Nop5ThenMore", "\x0f\x1f\x44\x00\x00\x55"s, ProbeCost::kNop, "nop5"},
                      // Debian's SSL_read and SSL_write begin so.
                      CostCase{"SubRsp", "\x48\x83\xec\x18"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"MovFsCanary", "\x64\x48\x8b\x04\x25\x28\x00\x00\x00"s, ProbeCost::kSingleStep,
                               "single-step"},
                      CostCase{"MovRegReg", "\x48\x89\xe5"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"Ret", "\xc3"s, ProbeCost::kSingleStep, "single-step"},
                      // Neighbours of the cheap forms must not be mistaken for them.
                      CostCase{"PushImm32", "\x68\x01\x00\x00\x00"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"PopRbp", "\x5d"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"RexBPop", "\x41\x5d"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"Rex41Alone", "\x41"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"TwoByteNotJcc", "\x0f\x90\xc0"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"Nop3", "\x0f\x1f\x00"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"Nop5Truncated", "\x0f\x1f\x44\x00"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"Endbr64", "\xf3\x0f\x1e\xfa"s, ProbeCost::kSingleStep, "single-step"},
                      CostCase{"Empty", ""s, ProbeCost::kSingleStep, "single-step"}),
    [](const ::testing::TestParamInfo<CostCase>& info) { return std::string(info.param.name); });

// ---- helpers ---------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kspan-elf-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadPrefix(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string out(n, '\0');
  in.read(out.data(), static_cast<std::streamsize>(n));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

std::string WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

std::unique_ptr<ElfFile> MustOpen(const std::string& path) {
  auto elf = ElfFile::Open(path);
  EXPECT_TRUE(elf.ok()) << elf.status().ToString();
  return elf.ok() ? std::move(elf).value() : nullptr;
}

// ---- ElfFile on libssl -----------------------------------------------------------------

TEST(ElfFileTest, LibsslHasTheTlsFunctions) {
  auto elf = MustOpen(kLibssl);
  ASSERT_NE(elf, nullptr);
  EXPECT_TRUE(elf->is_x86_64());
  EXPECT_EQ(elf->path(), kLibssl);
  for (const char* name : {"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"}) {
    SCOPED_TRACE(name);
    const auto sym = elf->FindFunction(name);
    ASSERT_TRUE(sym.has_value());
    EXPECT_NE(sym->address, 0u);
    EXPECT_GT(sym->size, 0u);
    // The offset is where the loader maps the address from.
    const auto off = elf->FileOffsetOf(sym->address);
    ASSERT_TRUE(off.has_value());
    EXPECT_EQ(*off, sym->file_offset);
    EXPECT_LT(sym->file_offset, elf->Contents().size());
    // The whole function lies in the file, in the same executable segment.
    const auto last = elf->FileOffsetOf(sym->address + sym->size - 1);
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(*last, sym->file_offset + sym->size - 1);
    EXPECT_EQ(elf->BytesAt(sym->file_offset, sym->size).size(), sym->size);
  }
  // Names match whole: a prefix, a longer name or a versioned name is not the function.
  EXPECT_FALSE(elf->FindFunction("SSL_rea").has_value());
  EXPECT_FALSE(elf->FindFunction("SSL_read_ex2").has_value());
  EXPECT_FALSE(elf->FindFunction("SSL_read@@OPENSSL_3.0.0").has_value());
  EXPECT_FALSE(elf->FindFunction("").has_value());
  // Imported from libcrypto: undefined here, so not found.
  EXPECT_FALSE(elf->FindFunction("EVP_CIPHER_CTX_new").has_value());
}

TEST(ElfFileTest, LibsslNeedsLibcrypto) {
  auto elf = MustOpen(kLibssl);
  ASSERT_NE(elf, nullptr);
  const std::vector<std::string> needed = elf->NeededLibraries();
  EXPECT_NE(std::find(needed.begin(), needed.end(), "libcrypto.so.3"), needed.end())
      << ::testing::PrintToString(needed);
  EXPECT_NE(std::find(needed.begin(), needed.end(), "libc.so.6"), needed.end());
}

TEST(ElfFileTest, SoNameNamesLibrariesNotExecutables) {
  auto ssl = MustOpen(kLibssl);
  ASSERT_NE(ssl, nullptr);
  EXPECT_EQ(ssl->SoName(), "libssl.so.3");
  EXPECT_EQ(WriteCaptureFor(*ssl), WriteCapture::kEntryOnly);
  auto t = MustOpen(kTrue);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->SoName(), "");
  EXPECT_EQ(WriteCaptureFor(*t), WriteCapture::kEntryAndReturn);
}

TEST(ElfFileTest, LibsslSectionsAndBytes) {
  auto elf = MustOpen(kLibssl);
  ASSERT_NE(elf, nullptr);
  EXPECT_TRUE(elf->HasSection(".text"));
  EXPECT_TRUE(elf->HasSection(".dynsym"));
  EXPECT_FALSE(elf->HasSection(".go.buildinfo"));
  EXPECT_FALSE(elf->Section(".dynstr").empty());
  EXPECT_TRUE(elf->Section(".no-such-section").empty());
  // The ELF magic, and reads clipped at the end of the file.
  EXPECT_EQ(elf->BytesAt(0, 4),
            "\x7f"
            "ELF");
  const size_t size = elf->Contents().size();
  EXPECT_EQ(elf->BytesAt(size - 3, 16).size(), 3u);
  EXPECT_TRUE(elf->BytesAt(size, 16).empty());
  EXPECT_TRUE(elf->BytesAt(~uint64_t{0}, 16).empty());
  // Addresses outside every executable segment have no file offset.
  EXPECT_FALSE(elf->FileOffsetOf(~uint64_t{0}).has_value());
  EXPECT_FALSE(elf->FileOffsetOf(~uint64_t{0} - 8).has_value());
}

// ---- ElfFile on node (OpenSSL linked in) and /bin/true ----------------------------------

TEST(ElfFileTest, NodeCarriesOpenSsl) {
  auto elf = MustOpen(kNode);
  ASSERT_NE(elf, nullptr);
  for (const char* name : {"SSL_read", "SSL_write"}) {
    SCOPED_TRACE(name);
    const auto sym = elf->FindFunction(name);
    ASSERT_TRUE(sym.has_value());
    const auto off = elf->FileOffsetOf(sym->address);
    ASSERT_TRUE(off.has_value());
    EXPECT_EQ(*off, sym->file_offset);
  }
  const auto needed = elf->NeededLibraries();
  EXPECT_EQ(std::find(needed.begin(), needed.end(), "libssl.so.3"), needed.end())
      << "Debian's node has OpenSSL inside; if it links libssl, the node tests test nothing";
}

TEST(ElfFileTest, TrueHasNoTls) {
  auto elf = MustOpen(kTrue);
  ASSERT_NE(elf, nullptr);
  EXPECT_FALSE(elf->FindFunction("SSL_read").has_value());
  EXPECT_FALSE(elf->FindFunction("SSL_write").has_value());
  const auto plan = PlanTlsProbes(*elf);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kNotFound);
}

// The bytes of a file read from memory (what the ELF fuzzer uses) read as the file does.
TEST(ElfFileTest, FromBytesReadsAsOpen) {
  std::ifstream in(kLibssl, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto file = MustOpen(kLibssl);
  ASSERT_NE(file, nullptr);
  auto mem = ElfFile::FromBytes(bytes, "libssl in memory");
  ASSERT_TRUE(mem.ok()) << mem.status().ToString();
  const ElfFile& m = *mem.value();
  EXPECT_EQ(m.path(), "libssl in memory");
  EXPECT_EQ(m.Contents().data(), bytes.data()) << "not copied";
  EXPECT_EQ(m.SoName(), file->SoName());
  EXPECT_EQ(m.NeededLibraries(), file->NeededLibraries());
  EXPECT_EQ(m.Section(".text"), file->Section(".text"));
  for (const char* name : {"SSL_read", "SSL_write_ex", "no_such_function"}) {
    SCOPED_TRACE(name);
    const auto a = m.FindFunction(name);
    const auto b = file->FindFunction(name);
    ASSERT_EQ(a.has_value(), b.has_value());
    if (a) {
      EXPECT_EQ(a->file_offset, b->file_offset);
    }
  }
  auto bad = ElfFile::FromBytes("#!/bin/sh\n", "script in memory");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("script in memory"), std::string::npos);
}

// ---- malformed files: clean errors, never a crash -------------------------------------

TEST(ElfFileTest, MissingFileIsNotFound) {
  auto elf = ElfFile::Open("/nonexistent/kspan/libssl.so.3");
  ASSERT_FALSE(elf.ok());
  EXPECT_EQ(elf.status().code(), StatusCode::kNotFound);
  EXPECT_NE(elf.status().message().find("/nonexistent/kspan/libssl.so.3"), std::string::npos);
}

TEST(ElfFileTest, DirectoryIsInvalid) {
  TempDir dir;
  auto elf = ElfFile::Open(dir.path());
  ASSERT_FALSE(elf.ok());
  EXPECT_EQ(elf.status().code(), StatusCode::kInvalidArgument);
}

TEST(ElfFileTest, NonElfFilesAreInvalid) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> files = {
      {"empty", ""},
      {"tiny",
       "\x7f"
       "ELF"},
      {"script",
       "#!/bin/sh\necho this is a shell script, long enough to pass the size check\n"
       "echo and then some more text so that it is longer than an ELF header\n"},
      {"zeros", std::string(4096, '\0')},
      // ELF magic, but 32-bit, big-endian, or for another machine.
      {"elf32",
       "\x7f"
       "ELF\x01\x01\x01"s +
           std::string(57, '\0')},
      {"bigendian",
       "\x7f"
       "ELF\x02\x02\x01"s +
           std::string(57, '\0')},
      {"riscv",
       "\x7f"
       "ELF\x02\x01\x01"s +
           std::string(9, '\0') + "\x02\x00\xf3\x00"s + std::string(44, '\0')},
  };
  for (const auto& [name, bytes] : files) {
    SCOPED_TRACE(name);
    const std::string path = WriteFile(dir.path() + "/" + name, bytes);
    auto elf = ElfFile::Open(path);
    ASSERT_FALSE(elf.ok());
    EXPECT_EQ(elf.status().code(), StatusCode::kInvalidArgument) << elf.status().ToString();
    EXPECT_NE(elf.status().message().find(path), std::string::npos) << "the error names the file";
  }
}

TEST(ElfFileTest, TruncatedElfIsAnError) {
  TempDir dir;
  const std::string path = WriteFile(dir.path() + "/true-100", ReadPrefix(kTrue, 100));
  auto elf = ElfFile::Open(path);
  ASSERT_FALSE(elf.ok());
  EXPECT_EQ(elf.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(elf.status().message().find(path), std::string::npos);
}

// Cut libssl anywhere: Open fails cleanly or yields a file whose queries stay inside it.
TEST(ElfFileTest, TruncatedLibsslAtManyLengthsNeverCrashes) {
  TempDir dir;
  std::ifstream in(kLibssl, std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(whole.size(), 4096u);
  std::vector<size_t> lengths = {63,
                                 64,
                                 65,
                                 120,
                                 200,
                                 512,
                                 4096,
                                 whole.size() / 4,
                                 whole.size() / 2,
                                 whole.size() - 4096,
                                 whole.size() - 64,
                                 whole.size() - 1};
  for (size_t len : lengths) {
    SCOPED_TRACE(len);
    const std::string path = WriteFile(dir.path() + "/libssl-" + std::to_string(len), whole.substr(0, len));
    auto elf = ElfFile::Open(path);
    if (!elf.ok()) {
      EXPECT_NE(elf.status().code(), StatusCode::kOk);
      continue;
    }
    const ElfFile& f = *elf.value();
    for (const char* name : {"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"}) {
      if (auto sym = f.FindFunction(name)) {
        EXPECT_LE(f.BytesAt(sym->file_offset, 16).size(), 16u);
        EXPECT_LT(sym->file_offset, len) << name;
      }
    }
    (void)f.NeededLibraries();
    (void)PlanTlsProbes(f);
  }
}

// A header that claims more than the file holds: section and program tables past the end.
TEST(ElfFileTest, LyingHeaderIsAnError) {
  TempDir dir;
  std::string bytes = ReadPrefix(kLibssl, 64);
  ASSERT_EQ(bytes.size(), 64u);
  bytes += std::string(4096, '\0');
  // e_shnum = 0xffff (offset 60), e_phnum = 0xffff (offset 56).
  bytes[56] = bytes[57] = bytes[60] = bytes[61] = '\xff';
  const std::string path = WriteFile(dir.path() + "/lying", bytes);
  auto elf = ElfFile::Open(path);
  ASSERT_FALSE(elf.ok());
  EXPECT_EQ(elf.status().code(), StatusCode::kInvalidArgument);
}

// Section headers whose offsets point far past the file (found by tests/fuzz/elf_fuzz.cc:
// the reader added such an offset to its data pointer, undefined behaviour even unread).
// The section reads empty, at a pointer inside the file; a lost name table loses the names.
TEST(ElfFileTest, SectionOffsetsPastTheFileReadEmpty) {
  std::ifstream in(kTrue, std::ios::binary);
  const std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Elf64_Ehdr eh;
  ASSERT_GE(original.size(), sizeof(eh));
  std::memcpy(&eh, original.data(), sizeof(eh));
  ASSERT_LT(eh.e_shstrndx, eh.e_shnum);
  auto header_at = [&](std::string& bytes, size_t i) {
    return bytes.data() + eh.e_shoff + i * eh.e_shentsize;
  };
  auto set_offset = [&](std::string& bytes, size_t i, uint64_t offset) {
    std::memcpy(header_at(bytes, i) + offsetof(Elf64_Shdr, sh_offset), &offset, sizeof(offset));
  };
  auto file = MustOpen(kTrue);
  ASSERT_NE(file, nullptr);
  ASSERT_FALSE(file->Section(".text").empty());

  // .text's offset huge: its index is the one whose contents Section(".text") gave.
  std::string bytes = original;
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, header_at(bytes, i), sizeof(sh));
    if (file->Section(".text").data() == file->Contents().data() + sh.sh_offset &&
        sh.sh_type == SHT_PROGBITS) {
      set_offset(bytes, i, ~uint64_t{0} - 0x1000);
    }
  }
  auto elf = ElfFile::FromBytes(bytes, "true with .text far away");
  ASSERT_TRUE(elf.ok()) << elf.status().ToString();
  EXPECT_TRUE(elf.value()->HasSection(".text"));
  const std::string_view text = elf.value()->Section(".text");
  EXPECT_TRUE(text.empty());
  EXPECT_GE(text.data(), bytes.data());
  EXPECT_LE(text.data(), bytes.data() + bytes.size());

  // The name table's offset huge: sections have no names.
  bytes = original;
  set_offset(bytes, eh.e_shstrndx, ~uint64_t{0} - 2);
  elf = ElfFile::FromBytes(bytes, "true without section names");
  ASSERT_TRUE(elf.ok()) << elf.status().ToString();
  EXPECT_FALSE(elf.value()->HasSection(".text"));
  EXPECT_TRUE(elf.value()->HasSection(""));
}

// An executable segment that claims bytes past the end of the file (found by
// tests/fuzz/elf_fuzz.cc): functions there were found, at file offsets past the end where
// no uprobe can go. Only the part inside the file counts.
TEST(ElfFileTest, SegmentPastTheFileHoldsNoFunctions) {
  std::ifstream in(kLibssl, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Elf64_Ehdr eh;
  ASSERT_GE(bytes.size(), sizeof(eh));
  std::memcpy(&eh, bytes.data(), sizeof(eh));
  int moved = 0;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    char* at = bytes.data() + eh.e_phoff + i * eh.e_phentsize;
    Elf64_Phdr ph;
    std::memcpy(&ph, at, sizeof(ph));
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    ph.p_offset = bytes.size() - 16;  // the segment's first 16 bytes are the file's last
    std::memcpy(at, &ph, sizeof(ph));
    ++moved;
  }
  ASSERT_EQ(moved, 1);
  auto elf = ElfFile::FromBytes(bytes, "libssl with its code past the end");
  ASSERT_TRUE(elf.ok()) << elf.status().ToString();
  for (const char* name : {"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"}) {
    SCOPED_TRACE(name);
    const auto sym = elf.value()->FindFunction(name);
    EXPECT_FALSE(sym.has_value()) << "at file offset " << sym->file_offset << " of " << bytes.size();
  }
}

// Header entry sizes other than ELF64's are malformed: with e_shentsize 0 a 4 KiB file
// claimed 65535 sections, all the same bytes (elf_fuzz ran at a few hundred inputs a
// second on such files).
TEST(ElfFileTest, HeaderSizesOtherThanElf64sAreInvalid) {
  std::ifstream in(kLibssl, std::ios::binary);
  const std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const size_t field : {offsetof(Elf64_Ehdr, e_shentsize), offsetof(Elf64_Ehdr, e_phentsize)}) {
    for (const uint16_t size : {0, 1, 63, 65, 128}) {
      SCOPED_TRACE(std::to_string(field) + ": " + std::to_string(size));
      std::string bytes = original;
      std::memcpy(bytes.data() + field, &size, sizeof(size));
      auto elf = ElfFile::FromBytes(bytes, "libssl with odd headers");
      ASSERT_FALSE(elf.ok());
      EXPECT_EQ(elf.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

// ---- PlanTlsProbes on real OpenSSL builds ------------------------------------------------

// Checks what holds for every plan: each probe on a cheap instruction (or the plan says
// it is slow), a return probe beside every entry probe except an entry-only plan's
// writes, both directions covered.
void CheckPlan(const ElfFile& elf, const AttachPlan& plan) {
  ASSERT_FALSE(plan.probes.empty());
  EXPECT_FALSE(plan.description.empty());
  EXPECT_NE(plan.description.back(), ' ') << "no trailing space: '" << plan.description << "'";
  const bool entry_only = plan.write_capture == WriteCapture::kEntryOnly;
  const std::set<std::string> read_programs = {"ks_ssl_read", "ks_ssl_read_ex"};
  const std::set<std::string> write_programs = entry_only
                                                   ? std::set<std::string>{"ks_ssl_sockw", "ks_ssl_sockw_ex"}
                                                   : std::set<std::string>{"ks_ssl_write", "ks_ssl_write_ex"};
  const std::set<std::string> return_programs = entry_only
                                                    ? std::set<std::string>{"ks_ssl_rd_ret"}
                                                    : std::set<std::string>{"ks_ssl_rd_ret", "ks_ssl_wr_ret"};
  bool read = false, write = false;
  for (const events::UprobeSpec& p : plan.probes) {
    SCOPED_TRACE(p.program + "@" + std::to_string(p.file_offset));
    EXPECT_LT(p.file_offset, elf.Contents().size());
    std::string what;
    const ProbeCost cost = ProbeCostOf(elf.BytesAt(p.file_offset, 16), &what);
    EXPECT_NE(cost, ProbeCost::kSingleStep) << what;
    if (p.retprobe) {
      EXPECT_TRUE(return_programs.count(p.program)) << "a return program on the return flag";
      continue;
    }
    const bool is_read = read_programs.count(p.program) > 0;
    EXPECT_TRUE(is_read || write_programs.count(p.program)) << "an entry program of this plan's kind";
    (is_read ? read : write) = true;
    const auto returns_at = [&](const std::string& program) {
      return std::find_if(plan.probes.begin(), plan.probes.end(), [&](const events::UprobeSpec& r) {
               return r.retprobe && r.program == program && r.file_offset == p.file_offset;
             }) != plan.probes.end();
    };
    if (is_read || !entry_only) {
      const std::string want_return = is_read ? "ks_ssl_rd_ret" : "ks_ssl_wr_ret";
      EXPECT_TRUE(returns_at(want_return)) << "no " << want_return << " at the entry's offset";
    } else {
      // The socket writes stand in for the return: a return probe would be a second trap.
      EXPECT_FALSE(returns_at("ks_ssl_wr_ret"));
    }
  }
  EXPECT_TRUE(read);
  EXPECT_TRUE(write);
  // Every return probe belongs to an entry probe at the same offset.
  for (const events::UprobeSpec& r : plan.probes) {
    if (!r.retprobe) continue;
    const auto entry = std::find_if(plan.probes.begin(), plan.probes.end(), [&](const events::UprobeSpec& p) {
      return !p.retprobe && p.file_offset == r.file_offset;
    });
    EXPECT_NE(entry, plan.probes.end()) << r.program << " without an entry probe";
  }
}

TEST(AttachPlanTest, LibsslIsPlannedOnCheapInstructions) {
  auto elf = MustOpen(kLibssl);
  ASSERT_NE(elf, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  auto plan = PlanTlsProbes(*elf);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(2));
  SCOPED_TRACE(plan->description);
  // A shared libssl: its users hand it the socket, so its writes need no return probe.
  EXPECT_EQ(plan->write_capture, WriteCapture::kEntryOnly);
  EXPECT_NE(plan->description.find("no return probe"), std::string::npos);
  CheckPlan(*elf, *plan);
  // Debian's SSL_read/SSL_write begin with `sub rsp`: a cheap plan goes elsewhere, so
  // the API entries themselves must not be used unless the plan owns up to being slow.
  EXPECT_FALSE(plan->slow);
  for (const char* name : {"SSL_read", "SSL_write"}) {
    const auto sym = elf->FindFunction(name);
    ASSERT_TRUE(sym.has_value());
    if (ProbeCostOf(elf->BytesAt(sym->file_offset, 16), nullptr) != ProbeCost::kSingleStep) continue;
    for (const auto& p : plan->probes) EXPECT_NE(p.file_offset, sym->file_offset) << name;
  }
}

TEST(AttachPlanTest, LibsslPlanIsDeterministic) {
  auto elf = MustOpen(kLibssl);
  ASSERT_NE(elf, nullptr);
  auto a = PlanTlsProbes(*elf), b = PlanTlsProbes(*elf);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->probes.size(), b->probes.size());
  for (size_t i = 0; i < a->probes.size(); ++i) {
    EXPECT_EQ(a->probes[i].program, b->probes[i].program);
    EXPECT_EQ(a->probes[i].file_offset, b->probes[i].file_offset);
    EXPECT_EQ(a->probes[i].retprobe, b->probes[i].retprobe);
  }
  EXPECT_EQ(a->description, b->description);
}

TEST(AttachPlanTest, NodeIsPlannedOnCheapInstructions) {
  auto elf = MustOpen(kNode);
  ASSERT_NE(elf, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  auto plan = PlanTlsProbes(*elf);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  // A 100 MB binary with a six-figure symbol table: planning is done once per file, on
  // the TLS thread, but must not take long enough to delay the next exec noticeably.
  EXPECT_LT(took, std::chrono::seconds(5));
  SCOPED_TRACE(plan->description);
  // OpenSSL inside node works on memory BIOs: the socket write comes after SSL_write.
  EXPECT_EQ(plan->write_capture, WriteCapture::kEntryAndReturn);
  EXPECT_EQ(plan->description.find("no return probe"), std::string::npos);
  CheckPlan(*elf, *plan);
  EXPECT_FALSE(plan->slow);
}

}  // namespace
}  // namespace kspan::tls
