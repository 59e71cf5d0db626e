#include "tls/elf_file.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kspan::tls {
namespace {

template <typename T>
bool ReadStruct(const char* data, size_t size, uint64_t offset, T* out) {
  if (offset > size || size - offset < sizeof(T)) return false;
  std::memcpy(out, data + offset, sizeof(T));
  return true;
}

}  // namespace

Result<std::unique_ptr<ElfFile>> ElfFile::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    close(fd);
    return InvalidArgument(path + " is not a regular file large enough to be ELF");
  }
  // MAP_SHARED, not MAP_PRIVATE: the kernel plants live uprobes' breakpoints (int3) in
  // every private mapping of the file, ours included, so a private map would show 0xcc
  // where kspan (or another instance) already probes. Shared mappings it leaves alone.
  void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return Internal("cannot map " + path + ": " + std::strerror(errno));
  std::unique_ptr<ElfFile> f(new ElfFile());
  f->path_ = path;
  f->data_ = static_cast<const char*>(m);
  f->size_ = static_cast<size_t>(st.st_size);
  f->mapped_ = true;
  RETURN_IF_ERROR(f->Parse());
  return f;
}

Result<std::unique_ptr<ElfFile>> ElfFile::FromBytes(std::string_view bytes, const std::string& name) {
  std::unique_ptr<ElfFile> f(new ElfFile());
  f->path_ = name;
  f->data_ = bytes.data();
  f->size_ = bytes.size();
  RETURN_IF_ERROR(f->Parse());
  return f;
}

ElfFile::~ElfFile() {
  if (mapped_) munmap(const_cast<char*>(data_), size_);
}

Status ElfFile::Parse() {
  Elf64_Ehdr eh;
  if (!ReadStruct(data_, size_, 0, &eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    return InvalidArgument(path_ + " is not an ELF file");
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    return InvalidArgument(path_ + " is not a little-endian 64-bit ELF file");
  }
  machine_ = eh.e_machine;
  if (machine_ != EM_X86_64 && machine_ != EM_AARCH64) {
    return InvalidArgument(path_ + " is for another machine (e_machine " + std::to_string(machine_) + ")");
  }
  // Headers of ELF64's sizes (gABI; ld.so insists too). Others are malformed, and would let
  // a few bytes pose as 65535 headers (e_shentsize 0): each header has bytes of its own, so
  // a file of n bytes has at most n / 64 sections.
  if ((eh.e_phnum != 0 && eh.e_phentsize != sizeof(Elf64_Phdr)) ||
      (eh.e_shnum != 0 && eh.e_shentsize != sizeof(Elf64_Shdr))) {
    return InvalidArgument(path_ + ": program or section header size is not ELF64's (e_phentsize " +
                           std::to_string(eh.e_phentsize) + ", e_shentsize " +
                           std::to_string(eh.e_shentsize) + ")");
  }
  for (uint16_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    if (!ReadStruct(data_, size_, eh.e_phoff + uint64_t{i} * eh.e_phentsize, &ph)) break;
    if (ph.p_type != PT_LOAD) continue;
    // Only the part of a segment inside the file (a truncated or lying file may claim more),
    // so a file offset FileOffsetOf gives is always in the file.
    const uint64_t in_file = ph.p_offset > size_ ? 0 : std::min<uint64_t>(ph.p_filesz, size_ - ph.p_offset);
    segments_.push_back({ph.p_vaddr, ph.p_offset, in_file, (ph.p_flags & PF_X) != 0});
  }
  std::vector<Elf64_Shdr> raw;
  raw.reserve(std::min<size_t>(eh.e_shnum, size_ / sizeof(Elf64_Shdr)));
  for (uint16_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!ReadStruct(data_, size_, eh.e_shoff + uint64_t{i} * eh.e_shentsize, &sh)) {
      return InvalidArgument(path_ + ": section header " + std::to_string(i) + " lies outside the file");
    }
    raw.push_back(sh);
  }
  // The section names, as far as their table lies in the file. Every offset a header gives
  // is checked before it is added to data_: a pointer past the mapping is undefined even
  // unread, and a lying header may give any 64-bit value.
  std::string_view names;
  if (eh.e_shstrndx < raw.size() && raw[eh.e_shstrndx].sh_offset <= size_) {
    const Elf64_Shdr& t = raw[eh.e_shstrndx];
    names = std::string_view(data_ + t.sh_offset, std::min<uint64_t>(t.sh_size, size_ - t.sh_offset));
  }
  sections_.reserve(raw.size());
  for (const Elf64_Shdr& sh : raw) {
    SectionInfo s;
    if (sh.sh_name < names.size()) {
      const std::string_view rest = names.substr(sh.sh_name);
      s.name.assign(rest.substr(0, rest.find('\0')));
    }
    s.type = sh.sh_type;
    s.addr = sh.sh_addr;
    s.offset = sh.sh_offset;
    s.size = sh.sh_type == SHT_NOBITS ? 0 : sh.sh_size;
    s.entsize = sh.sh_entsize;
    s.link = sh.sh_link;
    if (s.offset > size_ || s.size > size_ - s.offset) {  // truncated file, or a lying header
      s.offset = 0;
      s.size = 0;
    }
    sections_.push_back(std::move(s));
  }
  return Status::Ok();
}

std::optional<ElfSymbol> ElfFile::FindIn(const SectionInfo& symtab, std::string_view name) const {
  if (symtab.entsize != sizeof(Elf64_Sym) || symtab.link >= sections_.size()) return std::nullopt;
  const SectionInfo& strtab = sections_[symtab.link];
  const uint64_t count = symtab.size / sizeof(Elf64_Sym);
  for (uint64_t i = 0; i < count; ++i) {
    Elf64_Sym sym;
    std::memcpy(&sym, data_ + symtab.offset + i * sizeof(Elf64_Sym), sizeof(sym));
    if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
    if (sym.st_name >= strtab.size) continue;
    const char* p = data_ + strtab.offset + sym.st_name;
    const size_t max = strtab.size - sym.st_name;
    if (strnlen(p, max) != name.size() || std::memcmp(p, name.data(), name.size()) != 0) continue;
    auto off = FileOffsetOf(sym.st_value);
    if (!off) continue;
    return ElfSymbol{sym.st_value, sym.st_size, *off};
  }
  return std::nullopt;
}

std::optional<ElfSymbol> ElfFile::FindFunction(std::string_view name) const {
  for (uint32_t type : {SHT_SYMTAB, SHT_DYNSYM}) {
    for (const SectionInfo& s : sections_) {
      if (s.type != type) continue;
      if (auto sym = FindIn(s, name)) return sym;
    }
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, ElfSymbol>> ElfFile::FindFunctions(
    const std::function<bool(std::string_view)>& match) const {
  std::vector<std::pair<std::string, ElfSymbol>> out;
  for (uint32_t type : {SHT_SYMTAB, SHT_DYNSYM}) {
    for (const SectionInfo& symtab : sections_) {
      if (symtab.type != type || symtab.entsize != sizeof(Elf64_Sym) || symtab.link >= sections_.size())
        continue;
      const SectionInfo& strtab = sections_[symtab.link];
      const uint64_t count = symtab.size / sizeof(Elf64_Sym);
      for (uint64_t i = 0; i < count; ++i) {
        Elf64_Sym sym;
        std::memcpy(&sym, data_ + symtab.offset + i * sizeof(Elf64_Sym), sizeof(sym));
        if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
          continue;
        if (sym.st_name >= strtab.size) continue;
        const char* p = data_ + strtab.offset + sym.st_name;
        const std::string_view name(p, strnlen(p, strtab.size - sym.st_name));
        if (!match(name)) continue;
        auto off = FileOffsetOf(sym.st_value);
        if (!off) continue;
        bool dup = false;  // the same function in .symtab and .dynsym
        for (const auto& [n, s] : out) dup |= s.address == sym.st_value;
        if (!dup) out.emplace_back(std::string(name), ElfSymbol{sym.st_value, sym.st_size, *off});
      }
    }
  }
  return out;
}

std::optional<uint64_t> ElfFile::FileOffsetOf(uint64_t address) const {
  for (const Segment& seg : segments_) {
    if (seg.executable && address >= seg.vaddr && address - seg.vaddr < seg.filesz) {
      return seg.offset + (address - seg.vaddr);
    }
  }
  return std::nullopt;
}

std::string_view ElfFile::BytesAt(uint64_t offset, size_t n) const {
  if (offset >= size_) return {};
  return std::string_view(data_ + offset, std::min<uint64_t>(n, size_ - offset));
}

bool ElfFile::HasSection(std::string_view name) const {
  for (const SectionInfo& s : sections_) {
    if (s.name == name) return true;
  }
  return false;
}

std::string_view ElfFile::Section(std::string_view name) const {
  for (const SectionInfo& s : sections_) {
    if (s.name == name) return std::string_view(data_ + s.offset, s.size);
  }
  return {};
}

std::vector<std::string> ElfFile::DynamicStrings(int64_t tag) const {
  std::vector<std::string> out;
  for (const SectionInfo& s : sections_) {
    if (s.type != SHT_DYNAMIC || s.link >= sections_.size()) continue;
    const SectionInfo& strtab = sections_[s.link];
    for (uint64_t off = 0; off + sizeof(Elf64_Dyn) <= s.size; off += sizeof(Elf64_Dyn)) {
      Elf64_Dyn d;
      std::memcpy(&d, data_ + s.offset + off, sizeof(d));
      if (d.d_tag == DT_NULL) break;
      if (d.d_tag != tag || d.d_un.d_val >= strtab.size) continue;
      const char* p = data_ + strtab.offset + d.d_un.d_val;
      out.emplace_back(p, strnlen(p, strtab.size - d.d_un.d_val));
    }
  }
  return out;
}

std::vector<std::string> ElfFile::NeededLibraries() const {
  return DynamicStrings(DT_NEEDED);
}

std::string ElfFile::BuildId() const {
  // Elf64_Nhdr {namesz, descsz, type = NT_GNU_BUILD_ID}, "GNU\0", then the id.
  const std::string_view note = Section(".note.gnu.build-id");
  if (note.size() < 16) return {};
  uint32_t namesz, descsz, type;
  std::memcpy(&namesz, note.data(), 4);
  std::memcpy(&descsz, note.data() + 4, 4);
  std::memcpy(&type, note.data() + 8, 4);
  const uint64_t desc_at = 12 + ((uint64_t{namesz} + 3) & ~uint64_t{3});
  if (type != NT_GNU_BUILD_ID || descsz == 0 || descsz > 64 || desc_at + descsz > note.size()) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint32_t i = 0; i < descsz; ++i) {
    const uint8_t b = static_cast<uint8_t>(note[desc_at + i]);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string ElfFile::SoName() const {
  auto names = DynamicStrings(DT_SONAME);
  return names.empty() ? std::string() : names.front();
}

}  // namespace kspan::tls
