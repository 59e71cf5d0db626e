#include "tls/go_binary.h"

#include <cstdio>
#include <cstring>

#include "tls/capstone.h"

namespace kspan::tls {
namespace {

constexpr const char* kWrite = "crypto/tls.(*Conn).Write";
constexpr const char* kRead = "crypto/tls.(*Conn).Read";
constexpr const char* kNewproc1 = "runtime.newproc1";
// A function with more RETs than this is not the (*Conn).Read we know (Go 1.19's has 3).
constexpr size_t kMaxRets = 16;
// The longest function decoded (Go 1.19's (*Conn).Read is ~900 bytes).
constexpr uint64_t kMaxFunctionBytes = 64 * 1024;

uint64_t ReadUint(std::string_view s, size_t at, size_t width) {
  uint64_t v = 0;
  if (at + width > s.size() || width > 8) return 0;
  std::memcpy(&v, s.data() + at, width);  // little-endian host and file (x86-64)
  return v;
}

// .gopclntab, Go 1.18 and later (runtime/symtab.go, pcHeader):
//
//   +0   magic u32 (0xfffffff0: 1.18-1.19, 0xfffffff1: 1.20+)   +4 pad, pad, minLC, ptrSize
//   +8   nfunc, nfiles, textStart, funcnameOffset, cuOffset, filetabOffset, pctabOffset,
//        pclnOffset: one word (ptrSize) each; offsets from the table's start
//   at pclnOffset: nfunc+1 pairs {entryOff u32 (from textStart), funcOff u32 (from
//        pclnOffset)}; the _func at funcOff begins {entryOff u32, nameOff i32 (into
//        funcnametab, NUL-terminated)}
std::optional<ElfSymbol> FindInPclntab(const ElfFile& elf, const std::string& name) {
  const std::string_view t = elf.Section(".gopclntab");
  if (t.size() < 8 + 8 * 8) return std::nullopt;
  const uint32_t magic = static_cast<uint32_t>(ReadUint(t, 0, 4));
  const size_t ptr = static_cast<uint8_t>(t[7]);
  if ((magic != 0xfffffff0 && magic != 0xfffffff1) || ptr != 8) return std::nullopt;
  const uint64_t nfunc = ReadUint(t, 8, 8);
  const uint64_t text_start = ReadUint(t, 8 + 2 * 8, 8);
  const uint64_t funcname = ReadUint(t, 8 + 3 * 8, 8);
  const uint64_t pcln = ReadUint(t, 8 + 7 * 8, 8);
  if (funcname >= t.size() || pcln >= t.size() || nfunc > (t.size() - pcln) / 8) return std::nullopt;
  for (uint64_t i = 0; i < nfunc; ++i) {
    const uint64_t entry_off = ReadUint(t, pcln + i * 8, 4);
    const uint64_t func_off = ReadUint(t, pcln + i * 8 + 4, 4);
    const uint64_t at = pcln + func_off;
    if (at + 8 > t.size()) continue;
    const uint64_t name_at = funcname + static_cast<uint32_t>(ReadUint(t, at + 4, 4));
    if (name_at + name.size() >= t.size()) continue;
    if (t.compare(name_at, name.size(), name) != 0 || t[name_at + name.size()] != '\0') continue;
    const uint64_t next_entry = ReadUint(t, pcln + (i + 1) * 8, 4);  // the table's end entry for the last
    const uint64_t address = text_start + entry_off;
    auto offset = elf.FileOffsetOf(address);
    if (!offset || next_entry <= entry_off) return std::nullopt;
    return ElfSymbol{address, next_entry - entry_off, *offset};
  }
  return std::nullopt;
}

}  // namespace

bool IsGoBinary(const ElfFile& elf) {
  return elf.HasSection(".go.buildinfo") || elf.HasSection(".gopclntab");
}

// .go.buildinfo (Go 1.18+, debug/buildinfo): "\xff Go buildinf:", ptrSize, flags; with
// flag 2 the version follows inline at +32 as a uvarint length and its bytes.
std::string GoVersion(const ElfFile& elf) {
  const std::string_view b = elf.Section(".go.buildinfo");
  static constexpr std::string_view kMagic("\xff Go buildinf:", 14);
  if (b.size() < 33 || !b.starts_with(kMagic) || (static_cast<uint8_t>(b[15]) & 2) == 0) return {};
  uint64_t len = 0;
  size_t at = 32;
  for (int shift = 0; at < b.size() && shift < 35; shift += 7) {
    const uint8_t c = static_cast<uint8_t>(b[at++]);
    len |= static_cast<uint64_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) break;
  }
  if (len == 0 || len > 64 || at + len > b.size()) return {};
  return std::string(b.substr(at, len));
}

std::optional<std::pair<int, int>> ParseGoVersion(const std::string& version) {
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "go%d.%d", &major, &minor) != 2) return std::nullopt;
  return std::make_pair(major, minor);
}

std::optional<ElfSymbol> FindGoFunction(const ElfFile& elf, const std::string& name) {
  if (auto sym = elf.FindFunction(name)) return sym;
  return FindInPclntab(elf, name);
}

Result<GoFunctionProbes> DecodeGoFunction(const ElfFile& elf, const ElfSymbol& fn, bool need_rets) {
  if (!elf.is_x86_64()) return NotFound("Go TLS probes are decoded on x86-64 only");
  if (fn.size == 0 || fn.size > kMaxFunctionBytes) {
    return NotFound("implausible function size " + std::to_string(fn.size));
  }
  const std::string_view code = elf.BytesAt(fn.file_offset, fn.size);
  if (code.size() != fn.size) return NotFound("function cut short by the end of the file");
  const std::shared_ptr<const Capstone> loaded = Capstone::Load();
  const Capstone& cs = *loaded;
  if (!cs.ok()) return Unavailable(cs.error());
  csh handle;
  if (cs.open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) return Internal("capstone: cs_open failed");
  cs_insn* insn = nullptr;
  // Decodes up to the first undecodable byte (the int3 padding after the function is
  // decodable; data never sits inside Go functions).
  const size_t count =
      cs.disasm(handle, reinterpret_cast<const uint8_t*>(code.data()), code.size(), fn.address, 0, &insn);
  GoFunctionProbes out;
  // The stack check that begins every Go function that has a frame:
  //   [lea r12,[rsp-N];] cmp rsp|r12,[r14+16]; jbe morestack
  // The entry probe sits on the jbe: a branch the kernel emulates (~5 us here, against
  // ~20 us for the single-stepped cmp or sub around it). The flags tell the BPF program
  // whether the jump to morestack is taken, after which the function starts again: it
  // then does nothing, so a stack growth never sends a write twice.
  bool found = false;
  for (size_t i = 0; i + 1 < count && i < 2; ++i) {
    if (insn[i].id == X86_INS_CMP && insn[i + 1].id == X86_INS_JBE) {
      out.entry = fn.file_offset + (insn[i + 1].address - fn.address);
      out.entry_what = "jbe of the stack check";
      found = true;
      break;
    }
  }
  for (size_t i = 0; i < count; ++i) {
    if (insn[i].id == X86_INS_RET) out.rets.push_back(fn.file_offset + (insn[i].address - fn.address));
  }
  cs.free(insn, count);
  cs.close(&handle);
  if (!found) return NotFound("no stack check (cmp; jbe) at the function's start");
  if (!need_rets) return out;
  if (out.rets.empty()) return NotFound("no RET instruction decoded");
  if (out.rets.size() > kMaxRets) return NotFound(std::to_string(out.rets.size()) + " RET instructions");
  return out;
}

namespace {

// The goroutine-ancestry probes of bpf/go_tls.bpf.c ("Which request a goroutine works
// for"): each found is added; what is missing only costs parents (the stitcher then falls
// back to its process-wide rules). Returns the log's words for what was added.
std::string AddAncestryProbes(const ElfFile& elf, const std::optional<std::pair<int, int>>& version,
                              AttachPlan* plan) {
  // newproc1's callergp is its second argument (RBX) from Go 1.18 (1.17 still passed the
  // go statement's arguments before it).
  if (!version || (version->first == 1 && version->second < 18)) {
    return "no goroutine ancestry (runtime.newproc1's arguments are known from Go 1.18)";
  }
  const auto spawn = FindGoFunction(elf, kNewproc1);
  if (!spawn) return "no goroutine ancestry (no runtime.newproc1)";
  auto s = DecodeGoFunction(elf, *spawn);
  if (!s.ok()) return std::string("no goroutine ancestry (") + kNewproc1 + ": " + s.status().message() + ")";
  plan->probes.push_back({"ks_go_spawn", s.value().entry, false});
  for (uint64_t ret : s.value().rets) plan->probes.push_back({"ks_go_spawned", ret, false});
  std::string out =
      "goroutine ancestry: runtime.newproc1@entry+" + std::to_string(s.value().rets.size()) + " RETs";
  struct Entry {
    const char* function;
    const char* program;
  };
  static constexpr Entry kEntries[] = {
      {"crypto/tls.(*Conn).serverHandshake", "ks_go_handshake"},
      {"crypto/tls.(*Conn).clientHandshake", "ks_go_handshake"},
      {"net/http.(*persistConn).roundTrip", "ks_go_roundtrip"},
      {"net/http.(*persistConn).readLoop", "ks_go_conn_loop"},
      {"net/http.(*persistConn).writeLoop", "ks_go_conn_loop"},
  };
  for (const Entry& e : kEntries) {
    const auto fn = FindGoFunction(elf, e.function);
    if (!fn) continue;  // net/http's client is not in every program
    auto d = DecodeGoFunction(elf, *fn, /*need_rets=*/false);
    if (!d.ok()) {
      out += std::string(", not ") + e.function + " (" + d.status().message() + ")";
      continue;
    }
    plan->probes.push_back({e.program, d.value().entry, false});
    out += std::string(" ") + e.function + "@entry";
  }
  return out;
}

}  // namespace

Result<AttachPlan> PlanGoTlsProbes(const ElfFile& elf) {
  if (!IsGoBinary(elf)) return NotFound("not a Go binary");
  const std::string version = GoVersion(elf);
  const auto parsed = ParseGoVersion(version);
  if (parsed && (parsed->first < 1 || (parsed->first == 1 && parsed->second < 17))) {
    return NotFound("Go's crypto/tls in " + version +
                    " (before Go 1.17's register arguments) is not supported");
  }
  const std::string seen = version.empty() ? "Go (version unknown)" : version;
  const auto write = FindGoFunction(elf, kWrite);
  const auto read = FindGoFunction(elf, kRead);
  if (!write || !read) {
    return NotFound(seen +
                    ": no crypto/tls.(*Conn).Read/Write in .symtab or .gopclntab (no crypto/tls, or a " +
                    "function table kspan cannot read)");
  }
  if (!elf.is_x86_64()) return NotFound(seen + ": Go's crypto/tls is read on x86-64 only");
  // One load of the disassembler for every function decoded below.
  const std::shared_ptr<const Capstone> disassembler = Capstone::Load();
  if (!disassembler->ok()) return Unavailable(seen + ": " + disassembler->error());
  auto w = DecodeGoFunction(elf, *write);
  if (!w.ok()) return NotFound(seen + ": " + kWrite + ": " + w.status().message());
  auto r = DecodeGoFunction(elf, *read);
  if (!r.ok()) return NotFound(seen + ": " + kRead + ": " + r.status().message());
  AttachPlan plan;
  plan.write_capture = WriteCapture::kEntryOnly;
  plan.probes.push_back({"ks_go_tls_write", w.value().entry, false});
  plan.probes.push_back({"ks_go_tls_read", r.value().entry, false});
  for (uint64_t ret : r.value().rets) plan.probes.push_back({"ks_go_tls_rdret", ret, false});
  plan.description = seen + " crypto/tls (" + (elf.FindFunction(kWrite) ? "symbols" : ".gopclntab") +
                     "): (*Conn).Write@entry(" + w.value().entry_what + ") (*Conn).Read@entry(" +
                     r.value().entry_what + ") (*Conn).Read@" + std::to_string(r.value().rets.size()) +
                     " RETs; " + AddAncestryProbes(elf, parsed, &plan);
  plan.slow = false;
  return plan;
}

}  // namespace kspan::tls
