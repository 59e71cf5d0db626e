// Where to put the TLS uprobes in one OpenSSL (a shared libssl, or a binary with OpenSSL
// linked in) so that they cost little.
//
// A uprobe's cost depends on the instruction it replaces: here ~20 us when the kernel has
// to single-step it out of line (sub, mov: the first instruction of Debian's SSL_read and
// SSL_write), ~5 us when it emulates it (push, call, jmp, jcc), and ~1.3 us on a 5-byte
// nop. A return probe must sit where the return address is on top of the stack: the
// function's entry (or just past an endbr64). So, per direction (read, write):
//
//   api       SSL_read + SSL_read_ex at their entries, when both begin cheaply
//             (node's OpenSSL, built with frame pointers: push %rbp);
//   internal  OpenSSL's ssl_read_internal, which both SSL_read and SSL_read_ex call with
//             the _ex signature: one probe for both, on a cheap first instruction. Found
//             by name (.symtab) or, in a stripped libssl, as the target of the first call
//             in SSL_read_ex that SSL_read calls too;
//   api-slow  the entries anyway, when neither is cheap (counted as slow in the log).
//
// Only x86-64 is decoded; elsewhere the entries are used.
//
// How SSL_write's plaintext is taken depends on who does the socket I/O (docs/tls.md):
//
//   entry only        a shared libssl (nginx, curl, wrk, CPython): its users mostly hand
//                     it the socket (a socket BIO), so SSL_write writes the ciphertext
//                     itself. The entry sends the plaintext, and the socket writes stand
//                     in for the return (bpf/tls.bpf.h): one trap per call, not two. A
//                     memory BIO on libssl (asyncio) works too: its socket is found at
//                     the object's next TLS record write.
//   entry and return  OpenSSL inside an executable (node: memory BIOs, the socket write
//                     comes after SSL_write returns).
//
// Reads always take entry and return probes: the plaintext exists only once the call
// has decrypted it, and only the return says how much there is.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "events/bpf_event_source.h"
#include "tls/elf_file.h"

namespace kspan::tls {

enum class WriteCapture { kEntryOnly, kEntryAndReturn };

struct AttachPlan {
  std::vector<events::UprobeSpec> probes;
  WriteCapture write_capture = WriteCapture::kEntryAndReturn;
  // Human-readable, for the log: "SSL_read@entry(push) SSL_write@entry(push) ...".
  std::string description;
  bool slow = false;  // some probe is on an instruction the kernel single-steps
};

// What the first instruction at `code` costs a uprobe (x86-64).
enum class ProbeCost { kNop, kEmulated, kSingleStep };
ProbeCost ProbeCostOf(std::string_view code, std::string* what);

// kEntryOnly for a shared libssl (its DT_SONAME is libssl.*), else kEntryAndReturn.
WriteCapture WriteCaptureFor(const ElfFile& elf);

// NotFound when the file has no SSL_read/SSL_write (or _ex) function symbols.
Result<AttachPlan> PlanTlsProbes(const ElfFile& elf);

}  // namespace kspan::tls
