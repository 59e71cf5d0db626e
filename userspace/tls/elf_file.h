// A read-only look at an ELF64 file: its function symbols (.symtab and .dynsym), where a
// virtual address sits in the file, its sections and the libraries it needs. Enough to
// place uprobes; not a general ELF library. The file is mapped, not read, so a 100 MB
// binary (node) costs only the pages touched.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kspan::tls {

struct ElfSymbol {
  uint64_t address = 0;  // virtual address (st_value)
  uint64_t size = 0;
  uint64_t file_offset = 0;  // where its first byte is in the file
};

class ElfFile {
 public:
  // InvalidArgument when the file is not a little-endian ELF64 (x86-64 or aarch64), or is
  // malformed; the error names the path.
  static Result<std::unique_ptr<ElfFile>> Open(const std::string& path);
  // The same over bytes already in memory (a test's, a fuzzer's input), not copied: they
  // must outlive the ElfFile. `name` stands for the path in errors and path().
  static Result<std::unique_ptr<ElfFile>> FromBytes(std::string_view bytes, const std::string& name);
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  // A defined function symbol by name (symbol versions like @@OPENSSL_3.0.0 are not part
  // of the name). .symtab first, then .dynsym.
  std::optional<ElfSymbol> FindFunction(std::string_view name) const;
  // Every defined function symbol whose name `match` accepts (.symtab, then .dynsym), with
  // its name: for names that carry a per-build hash (Rust's).
  std::vector<std::pair<std::string, ElfSymbol>> FindFunctions(
      const std::function<bool(std::string_view)>& match) const;
  // File offset of a virtual address inside a loaded, executable segment, and inside the
  // file (a segment cut short by the file's end is only what the file holds).
  std::optional<uint64_t> FileOffsetOf(uint64_t address) const;
  // Up to n bytes of the file at `offset` (fewer at its end).
  std::string_view BytesAt(uint64_t offset, size_t n) const;
  bool HasSection(std::string_view name) const;
  // The contents of a section, empty when absent.
  std::string_view Section(std::string_view name) const;
  // The whole file.
  std::string_view Contents() const { return std::string_view(data_, size_); }
  // DT_NEEDED entries ("libssl.so.3", ...).
  std::vector<std::string> NeededLibraries() const;
  // The GNU build id (.note.gnu.build-id) in lowercase hex, empty when absent.
  std::string BuildId() const;
  // DT_SONAME ("libssl.so.3"), empty for an executable or a library without one.
  std::string SoName() const;
  bool is_x86_64() const { return machine_ == 62; }
  const std::string& path() const { return path_; }

 private:
  ElfFile() = default;
  Status Parse();
  struct SectionInfo {
    std::string name;
    uint32_t type = 0;
    uint64_t addr = 0, offset = 0, size = 0, entsize = 0;
    uint32_t link = 0;
  };
  struct Segment {
    uint64_t vaddr = 0, offset = 0, filesz = 0;
    bool executable = false;
  };
  std::optional<ElfSymbol> FindIn(const SectionInfo& symtab, std::string_view name) const;
  std::vector<std::string> DynamicStrings(int64_t tag) const;

  std::string path_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // data_ is our mapping of the file (Open), not the caller's bytes
  uint16_t machine_ = 0;
  std::vector<SectionInfo> sections_;
  std::vector<Segment> segments_;
};

}  // namespace kspan::tls
