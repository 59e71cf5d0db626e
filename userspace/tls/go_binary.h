// Go binaries: where crypto/tls reads and writes plaintext, for the uprobes of
// bpf/go_tls.bpf.c.
//
//   found by      crypto/tls.(*Conn).Write and crypto/tls.(*Conn).Read, by name in .symtab,
//                 or, in a stripped binary (-ldflags='-s -w' drops .symtab), through
//                 .gopclntab, the function table the Go runtime itself needs (it stays)
//   probed at     entry: the jbe of the stack check (a branch the kernel emulates; the
//                 BPF program skips the call when the flags say morestack runs first);
//                 Read also at each of its RET instructions, decoded with capstone,
//                 instead of a return probe (bpf/go_tls.bpf.c says why)
//   requires      Go >= 1.17 (arguments in registers), read from .go.buildinfo; and, for
//                 a stripped binary, Go >= 1.18's .gopclntab layout (magic 0xfffffff0/1)
//
// Only x86-64.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tls/attach_plan.h"
#include "tls/elf_file.h"

namespace kspan::tls {

// True when the file is a Go executable (it has .go.buildinfo or .gopclntab).
bool IsGoBinary(const ElfFile& elf);

// "go1.19.8" from .go.buildinfo (Go >= 1.18's inline layout), empty when absent or older.
std::string GoVersion(const ElfFile& elf);

// (major, minor) of "go1.19.8"; nullopt when the text is not a Go release version.
std::optional<std::pair<int, int>> ParseGoVersion(const std::string& version);

// A function of the binary by its Go name: .symtab first, then .gopclntab (its size is up
// to the next function's entry there).
std::optional<ElfSymbol> FindGoFunction(const ElfFile& elf, const std::string& name);

// Where the Go TLS probes go in one function (x86-64): the entry probe's offset (the jbe
// of the stack check) and the offsets of its RET instructions. NotFound when the function
// does not begin with the stack check, or (with need_rets) has no RET or implausibly many.
struct GoFunctionProbes {
  uint64_t entry = 0;
  std::string entry_what;
  std::vector<uint64_t> rets;
};
Result<GoFunctionProbes> DecodeGoFunction(const ElfFile& elf, const ElfSymbol& fn, bool need_rets = true);

// The probes for crypto/tls in a Go binary; NotFound (with the reason, for the "not
// captured" line) when it has none or cannot be read.
Result<AttachPlan> PlanGoTlsProbes(const ElfFile& elf);

}  // namespace kspan::tls
