#include "tls/rustls_binary.h"

#include <set>
#include <string>
#include <vector>

#include "tls/capstone.h"

namespace kspan::tls {
namespace {

constexpr std::string_view kEndbr64 = "\xf3\x0f\x1e\xfa";
// Reader::read is ~300 bytes; decoding stops at its first RET.
constexpr size_t kMaxDecode = 4096;

// x86-64 general registers by their 64-bit name, whatever part an instruction names.
x86_reg Full(unsigned reg) {
  static const std::vector<std::vector<x86_reg>> kFamilies = {
      {X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH},
      {X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH},
      {X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH},
      {X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH},
      {X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL},
      {X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL},
      {X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL},
      {X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B},
      {X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B},
      {X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B},
      {X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B},
      {X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B},
      {X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B},
      {X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B},
      {X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B},
  };
  for (const auto& family : kFamilies) {
    for (x86_reg r : family) {
      if (r == reg) return family.front();
    }
  }
  return static_cast<x86_reg>(reg);
}

bool IsStackSlot(const cs_x86_op& op) {
  return op.type == X86_OP_MEM && op.mem.base == X86_REG_RSP && op.mem.index == X86_REG_INVALID &&
         op.mem.segment == X86_REG_INVALID;
}

// A symbol's entry, past an endbr64 (a return probe must still find the return address on
// top of the stack there).
uint64_t EntryOffset(const ElfFile& elf, const ElfSymbol& fn, std::string* what, bool* cheap) {
  uint64_t at = fn.file_offset;
  std::string_view code = elf.BytesAt(at, 16);
  if (code.starts_with(kEndbr64)) {
    at += kEndbr64.size();
    code.remove_prefix(kEndbr64.size());
  }
  *cheap = ProbeCostOf(code, what) != ProbeCost::kSingleStep;
  return at;
}

}  // namespace

// Legacy: _ZN54_$LT$rustls..conn..Reader$u20$as$u20$std..io..Read$GT$4read17h<hash>E
// (rustls 0.20; later versions nest it, rustls..conn..connection..Reader).
// v0: _RNvXs…_NtCs…_6rustls4conn…NtB…_6ReaderNtNtCs…_3std2io4Read4read
bool IsRustlsReaderRead(std::string_view m) {
  if (m.starts_with("_ZN")) {
    return m.find("$LT$rustls..conn..") != std::string_view::npos &&
           m.find("Reader$u20$as$u20$std..io..Read$GT$4read17h") != std::string_view::npos;
  }
  return m.starts_with("_R") && m.find("6rustls4conn") != std::string_view::npos &&
         m.find("6Reader") != std::string_view::npos && m.ends_with("4Read4read");
}

bool IsRustlsWriterWrite(std::string_view m) {
  if (m.starts_with("_ZN")) {
    return m.find("$LT$rustls..conn..") != std::string_view::npos &&
           m.find("Writer$u20$as$u20$std..io..Write$GT$5write17h") != std::string_view::npos;
  }
  return m.starts_with("_R") && m.find("6rustls4conn") != std::string_view::npos &&
         m.find("6Writer") != std::string_view::npos && m.ends_with("5Write5write");
}

// Follows where the RDI the function was called with goes (registers, and stack slots by
// their distance from the entry's RSP), in code order up to the first RET: enough for
// the straight code a compiler emits for a Result's return, not a general data-flow
// analysis. At that RET, RAX holding it means the result was written through it.
RustReturn RustReturnOf(std::string_view code, uint64_t address) {
  const std::shared_ptr<const Capstone> loaded = Capstone::Load();
  const Capstone& cs = *loaded;
  if (!cs.ok()) return RustReturn::kUnknown;
  csh handle;
  if (cs.open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) return RustReturn::kUnknown;
  cs.option(handle, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insn = nullptr;
  const size_t n = cs.disasm(handle, reinterpret_cast<const uint8_t*>(code.data()),
                             std::min(code.size(), kMaxDecode), address, 0, &insn);
  std::set<x86_reg> regs = {X86_REG_RDI};
  std::set<int64_t> slots;  // entry-RSP-relative offsets holding it
  int64_t depth = 0;        // RSP - entry RSP
  RustReturn out = RustReturn::kUnknown;
  static constexpr x86_reg kCallerSaved[] = {X86_REG_RAX, X86_REG_RCX, X86_REG_RDX, X86_REG_RSI, X86_REG_RDI,
                                             X86_REG_R8,  X86_REG_R9,  X86_REG_R10, X86_REG_R11};
  for (size_t i = 0; i < n; ++i) {
    const cs_insn& in = insn[i];
    const cs_x86& x = in.detail->x86;
    if (in.id == X86_INS_RET) {
      out = regs.count(X86_REG_RAX) ? RustReturn::kMemory : RustReturn::kRegisters;
      break;
    }
    if (in.id == X86_INS_JMP && x.op_count == 1 && x.operands[0].type != X86_OP_IMM) break;  // tail call
    if (in.id == X86_INS_CALL) {
      for (x86_reg r : kCallerSaved) regs.erase(r);
      continue;
    }
    if (in.id == X86_INS_PUSH && x.op_count == 1) {
      depth -= 8;
      if (x.operands[0].type == X86_OP_REG && regs.count(Full(x.operands[0].reg))) {
        slots.insert(depth);
      } else {
        slots.erase(depth);
      }
      continue;
    }
    if (in.id == X86_INS_POP && x.op_count == 1) {
      if (x.operands[0].type == X86_OP_REG) {
        const x86_reg r = Full(x.operands[0].reg);
        if (slots.count(depth)) {
          regs.insert(r);
        } else {
          regs.erase(r);
        }
      }
      depth += 8;
      continue;
    }
    if ((in.id == X86_INS_SUB || in.id == X86_INS_ADD) && x.op_count == 2 &&
        x.operands[0].type == X86_OP_REG && x.operands[0].reg == X86_REG_RSP &&
        x.operands[1].type == X86_OP_IMM) {
      depth += in.id == X86_INS_SUB ? -x.operands[1].imm : x.operands[1].imm;
      continue;
    }
    if (in.id == X86_INS_MOV && x.op_count == 2 && x.operands[0].size == 8) {
      const cs_x86_op& dst = x.operands[0];
      const cs_x86_op& src = x.operands[1];
      bool holds = false;
      if (src.type == X86_OP_REG) holds = regs.count(Full(src.reg)) > 0;
      if (IsStackSlot(src)) holds = slots.count(depth + src.mem.disp) > 0;
      if (dst.type == X86_OP_REG) {
        if (holds) {
          regs.insert(Full(dst.reg));
        } else {
          regs.erase(Full(dst.reg));
        }
        continue;
      }
      if (IsStackSlot(dst)) {
        if (holds) {
          slots.insert(depth + dst.mem.disp);
        } else {
          slots.erase(depth + dst.mem.disp);
        }
        continue;
      }
    }
    // Anything else that writes a register loses what it held.
    cs_regs read_regs, write_regs;
    uint8_t nread = 0, nwrite = 0;
    if (cs.regs_access(handle, &in, read_regs, &nread, write_regs, &nwrite) == CS_ERR_OK) {
      for (uint8_t w = 0; w < nwrite; ++w) regs.erase(Full(write_regs[w]));
    }
  }
  cs.free(insn, n);
  cs.close(&handle);
  return out;
}

Result<AttachPlan> PlanRustlsProbes(const ElfFile& elf) {
  const auto reads = elf.FindFunctions(IsRustlsReaderRead);
  const auto writes = elf.FindFunctions(IsRustlsWriterWrite);
  if (reads.empty() || writes.empty()) {
    return NotFound(
        "rustls without symbols for <rustls::conn::Reader as Read>::read and <Writer as Write>::write (a "
        "stripped release build: rustls has no exported functions, and finding them by byte pattern is not "
        "supported yet)");
  }
  if (!elf.is_x86_64()) return NotFound("rustls is read on x86-64 only");
  const std::shared_ptr<const Capstone> disassembler = Capstone::Load();  // one load for every function
  if (!disassembler->ok()) return Unavailable("rustls: " + disassembler->error());
  // One compiler built the binary: Reader::read's code tells its convention for both.
  RustReturn convention = RustReturn::kUnknown;
  for (const auto& [name, fn] : reads) {
    const RustReturn r =
        RustReturnOf(elf.BytesAt(fn.file_offset, fn.size ? fn.size : kMaxDecode), fn.address);
    if (r == RustReturn::kUnknown || (convention != RustReturn::kUnknown && r != convention)) {
      return NotFound("rustls: the calling convention of " + name + " could not be told from its code");
    }
    convention = r;
  }
  const bool memory = convention == RustReturn::kMemory;
  AttachPlan plan;
  plan.write_capture = WriteCapture::kEntryOnly;
  plan.description =
      std::string("rustls (symbols; io::Result returned in ") + (memory ? "memory" : "registers") + "):";
  auto add = [&](const std::string& what, const ElfSymbol& fn, const char* entry, const char* ret) {
    std::string how;
    bool cheap = false;
    const uint64_t at = EntryOffset(elf, fn, &how, &cheap);
    plan.probes.push_back({entry, at, false});
    if (ret) plan.probes.push_back({ret, at, true});
    plan.slow |= !cheap;
    plan.description += " " + what + "@entry(" + how + ")" + (ret ? "+return" : "");
  };
  for (const auto& [name, fn] : reads) {
    add("Reader::read", fn, memory ? "ks_rls_read_m" : "ks_rls_read", "ks_rls_rd_ret");
  }
  for (const auto& [name, fn] : writes)
    add("Writer::write", fn, memory ? "ks_rls_write_m" : "ks_rls_write", nullptr);
  return plan;
}

}  // namespace kspan::tls
