// Where SSL_read and SSL_write are in a binary that carries a TLS library without their
// symbols (BoringSSL inside Bun's single stripped binary): found by byte patterns, one
// row per function and build, in a table users can extend.
//
// The table is text, one row a line (docs/tls.md, "Byte-pattern table"):
//
//   FUNCTION  BUILD_ID  PATTERN...  [# NOTE]
//
//   FUNCTION  SSL_read or SSL_write (BoringSSL's, same signatures as OpenSSL's)
//   BUILD_ID  the binary's GNU build id as `readelf -n` prints it (40 lowercase hex digits)
//   PATTERN   the function's first bytes, in hex, in as many tokens as wanted; `..` is a
//             byte that may differ (an address, a call's displacement). The function
//             starts at the first byte; the pattern must match exactly once in .text,
//             else the row is refused and the binary reported as not captured
//   NOTE      after `#`: which program and version (for the log)
//
// A line that is empty or starts with `#` is a comment. Rows are only tried on the binary
// whose build id they name: a build id is checked in microseconds at each exec, a pattern
// scan of Bun's 80 MB of code takes ~0.1 s, once per binary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tls/attach_plan.h"
#include "tls/elf_file.h"

namespace kspan::tls {

struct PatternRow {
  std::string function;  // "SSL_read" or "SSL_write"
  std::string build_id;
  std::vector<int16_t> bytes;  // 0..255, or -1 for `..`
  std::string note;
  int line = 0;  // in its table, for errors
};

// The rows kspan ships (the Bun releases its tests install).
std::string_view BuiltinPatternTable();

// Parses a table; InvalidArgument names the line and what is wrong with it. `source`
// names the table in errors ("built-in", a file's path).
Result<std::vector<PatternRow>> ParsePatternTable(std::string_view text, const std::string& source);

// Where the row's pattern matches in the file's .text: the file offset of its one match;
// NotFound when it matches nowhere or more than once (the message says which).
Result<uint64_t> MatchPattern(const ElfFile& elf, const PatternRow& row);

// True when some row names the binary's build id.
bool HasPatternRows(const ElfFile& elf, const std::vector<PatternRow>& rows);

// Probes for the rows of this binary's build id: SSL_read and SSL_write at their entries
// and returns, as for OpenSSL inside node (WriteCapture::kEntryAndReturn: Bun's sockets
// feed BoringSSL custom BIOs). NotFound when the table has no row for the build id (the
// message says so), or a row's pattern does not match (the message names the row).
Result<AttachPlan> PlanPatternProbes(const ElfFile& elf, const std::vector<PatternRow>& rows);

}  // namespace kspan::tls
