// Rust programs on rustls: where the plaintext crosses rustls's API, for the uprobes of
// bpf/tls.bpf.c (ks_rls_*).
//
//   found by      the symbols of <rustls::conn::Reader as std::io::Read>::read and
//                 <rustls::conn::Writer as std::io::Write>::write (legacy or v0 mangling;
//                 the hash differs per build). rustls has no stable exported functions:
//                 a stripped binary has neither, and is reported, not read
//   probed at     Reader::read at entry and return (the plaintext exists once it returns),
//                 Writer::write at entry only (the plaintext is in the buffer; the
//                 socket write that follows binds it, as a shared libssl's writes)
//   convention    Rust's own, which changed: io::Result<usize> comes back through memory
//                 with older rustc (1.63: the result's address in RDI, the arguments
//                 after it) and in RAX:RDX with newer ones; told from Reader::read's code
//
// Only x86-64.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"
#include "tls/attach_plan.h"
#include "tls/elf_file.h"

namespace kspan::tls {

// The two functions, by their mangled names (legacy "_ZN…" and v0 "_R…").
bool IsRustlsReaderRead(std::string_view mangled);
bool IsRustlsWriterWrite(std::string_view mangled);

// How a Rust function returning a 16-byte io::Result gives it back, decoded from its code
// (x86-64): kMemory when its first RET returns the address it got in RDI (the result's
// address, an sret argument), kRegisters when RAX then holds something else, kUnknown
// when no RET is decoded (a tail call).
enum class RustReturn { kRegisters, kMemory, kUnknown };
RustReturn RustReturnOf(std::string_view code, uint64_t address);

// The probes for rustls in a binary; NotFound, with the reason for the "not captured"
// line, when it has no rustls symbols (stripped) or their code cannot be read.
Result<AttachPlan> PlanRustlsProbes(const ElfFile& elf);

}  // namespace kspan::tls
