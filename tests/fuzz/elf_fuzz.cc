// libFuzzer harness for the ELF reader (userspace/tls/elf_file.h) and what kspan does with
// what it reads (tls/attach_plan.h): the agent runs both as root on every binary a traced
// process maps, so a hostile file must give a clean error or answers that stay inside it.
// The input is the file's bytes, read from memory (ElfFile::FromBytes, no file I/O).
// Seeds are small real ELF files (a stub libssl with the TLS functions, stripped or not,
// an executable), so mutations keep most of the headers.
//
// Checks, beyond "no crash, no out-of-bounds read" (ASan, UBSan):
//   open     an error names the file; success means a little-endian ELF64 for x86-64 or
//            aarch64, and Contents() is the input itself;
//   symbols  a found function has a non-zero address inside an executable segment, and
//            its file offset is where FileOffsetOf puts it, inside the file;
//   bytes    BytesAt and Section return views of the file, never more than asked;
//   dynamic  DT_NEEDED and DT_SONAME strings hold no NUL and lie in the file's size;
//   plan     a TLS attach plan has probes, each naming a program and sitting inside the
//            file.
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "tls/attach_plan.h"
#include "tls/elf_file.h"

namespace kspan::fuzz {
const char* const kHarness = "elf_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;
using kspan::tls::ElfFile;

constexpr char kName[] = "fuzz-input.so";

// A view returned by the reader lies within the file.
// (Even an empty view must point into the file or be null: a pointer computed past the
// end is undefined behaviour.)
bool Inside(std::string_view part, std::string_view file) {
  if (part.data() == nullptr) return part.empty();
  return std::less_equal<>()(file.data(), part.data()) &&
         std::less_equal<>()(part.data(), file.data() + file.size()) &&
         static_cast<size_t>(part.data() - file.data()) <= file.size() - part.size();
}

void CheckStrings(const std::vector<std::string>& strings, size_t file_size) {
  for (const std::string& s : strings) {
    Check(s.size() < file_size, "dynamic: a string longer than the file");
    Check(s.find('\0') == std::string::npos, "dynamic: a string holds a NUL");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  // An exactly-sized copy, so ASan sees any read past the end.
  const std::string copy(reinterpret_cast<const char*>(data), size);
  const std::string_view file = copy;

  auto opened = ElfFile::FromBytes(file, kName);
  if (!opened.ok()) {
    Check(opened.status().message().find(kName) != std::string::npos,
          "open: the error does not name the file");
    return 0;
  }
  const ElfFile& elf = *opened.value();
  Check(elf.Contents().data() == file.data() && elf.Contents().size() == file.size(),
        "open: contents are not the input");
  Check(file.size() >= 64 && std::memcmp(file.data(),
                                         "\x7f"
                                         "ELF\x02\x01",
                                         6) == 0,
        "open: accepted what is not a little-endian ELF64");

  for (const char* name : {"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex", "ssl_read_internal",
                           "ssl_write_internal", "main", "_start"}) {
    const auto sym = elf.FindFunction(name);
    if (!sym) continue;
    Check(sym->address != 0, "symbols: a function at address 0");
    const auto off = elf.FileOffsetOf(sym->address);
    Check(off && *off == sym->file_offset, "symbols: file offset is not FileOffsetOf(address)");
    Check(sym->file_offset < file.size(), "symbols: a function's first byte is outside the file");
  }
  for (const uint64_t offset :
       {uint64_t{0}, uint64_t{63}, uint64_t{file.size() - 1}, uint64_t{file.size()}, ~uint64_t{0}}) {
    const std::string_view b = elf.BytesAt(offset, 16);
    Check(b.size() <= 16 && Inside(b, file), "bytes: BytesAt outside the file or too long");
  }
  for (const char* section :
       {".text", ".dynsym", ".dynstr", ".symtab", ".strtab", ".dynamic", ".bss", ".go.buildinfo", ""}) {
    const std::string_view s = elf.Section(section);
    Check(Inside(s, file), "bytes: a section outside the file");
    Check(s.empty() || elf.HasSection(section), "bytes: contents of a section it does not have");
  }
  CheckStrings(elf.NeededLibraries(), file.size());
  const std::string soname = elf.SoName();
  CheckStrings({soname}, file.size() + 1);

  const auto plan = kspan::tls::PlanTlsProbes(elf);
  if (plan.ok()) {
    Check(!plan.value().probes.empty(), "plan: a plan without probes");
    for (const auto& probe : plan.value().probes) {
      Check(probe.file_offset < file.size(), "plan: a probe outside the file");
      Check(!probe.program.empty(), "plan: a probe without a program");
    }
  }
  (void)kspan::tls::WriteCaptureFor(elf);
  return 0;
}
