#include "tls/byte_patterns.h"

#include <algorithm>
#include <cctype>
#include <functional>

namespace kspan::tls {
namespace {

// Bun 1.4.5 (npm `bun`, tests/apps/bun): BoringSSL's SSL_read (SSL_peek and ssl_read_impl's
// caller inlined) and SSL_write, both built with frame pointers (`push %rbp`: a probe the
// kernel emulates). Each pattern runs through the QUIC check's
// OPENSSL_PUT_ERROR(SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED) with its ssl_lib.cc line
// (0x3a3: SSL_peek's, 0x3b9: SSL_write's), which tells the two functions from every other
// of the library; `..` stands for the file name's address and call displacements.
// Claude Code 2.1.332 (npm `@anthropic-ai/claude-code-linux-x64`, tests/apps/claude) is
// built on Bun 1.4.6: the same code, its ssl_lib.cc two lines longer (0x3a5, 0x3bb), and
// SSL_write with a stack protector (`mov %fs:0x28,%rax; mov %rax,-0x30(%rbp)`).
constexpr std::string_view kBuiltin =
    R"(# kspan built-in TLS byte patterns (userspace/tls/byte_patterns.h has the format).
SSL_read  b5188e4f53b53f3a346614bd78ba53f2ff234402  55 4889e5 4157 4156 53 50 4883bf9800000000 74.. b9........ bf10000000 31f6 ba42000000 41b8a3030000 e8........ bbffffffff 89d8 4883c408 5b 415e 415f 5d c3 89d3 4989f6 4989ff e8........ 85c0 0f8e........ 85db  # Bun v1.4.5 (Linux x64)
SSL_write b5188e4f53b53f3a346614bd78ba53f2ff234402  55 4889e5 4157 4156 4155 4154 53 4883ec18 4189d7 4989f6 4889fb 488b4730 c780c400000000000000 e8........ e8........ c70000000000 4883bb9800000000 74.. b9........ bf10000000 31f6 ba42000000 41b8b9030000 e8........  # Bun v1.4.5 (Linux x64)
SSL_read  24889a915d13b00c65a2ee107976d2fea709352c  55 4889e5 4157 4156 53 50 4883bf9800000000 74.. b9........ bf10000000 31f6 ba42000000 41b8a5030000 e8........ bbffffffff 89d8 4883c408 5b 415e 415f 5d c3 89d3 4989f6 4989ff e8........ 85c0 0f8e........ 85db  # Claude Code 2.1.332 (Bun v1.4.6, Linux x64)
SSL_write 24889a915d13b00c65a2ee107976d2fea709352c  55 4889e5 4157 4156 4155 4154 53 4883ec18 4189d7 4989f6 4889fb 64488b042528000000 488945d0 488b4730 c780c400000000000000 e8........ e8........ c70000000000 4883bb9800000000 74.. b9........ bf10000000 31f6 ba42000000 41b8bb030000 e8........  # Claude Code 2.1.332 (Bun v1.4.6, Linux x64)
)";

// A pattern shorter than this could match by chance in 80 MB of code.
constexpr size_t kMinFixedBytes = 16;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> Tokens(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::string_view BuiltinPatternTable() {
  return kBuiltin;
}

Result<std::vector<PatternRow>> ParsePatternTable(std::string_view text, const std::string& source) {
  std::vector<PatternRow> rows;
  int number = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    auto bad = [&](const std::string& what) {
      return InvalidArgument(source + ":" + std::to_string(number) + ": " + what +
                             " (expected: FUNCTION BUILD_ID HEX-BYTES... [# NOTE])");
    };
    std::string note;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
      note = std::string(line.substr(hash + 1));
      line = line.substr(0, hash);
      note.erase(0, note.find_first_not_of(' '));
      while (!note.empty() && std::isspace(static_cast<unsigned char>(note.back()))) note.pop_back();
    }
    const std::vector<std::string_view> tokens = Tokens(line);
    if (tokens.empty()) continue;
    if (tokens.size() < 3) return bad("too few fields");
    PatternRow row;
    row.line = number;
    row.note = note;
    row.function = std::string(tokens[0]);
    if (row.function != "SSL_read" && row.function != "SSL_write") {
      return bad("unknown function '" + row.function + "' (SSL_read or SSL_write)");
    }
    row.build_id = std::string(tokens[1]);
    if (row.build_id.size() < 16 || row.build_id.size() > 128 || row.build_id.size() % 2 != 0 ||
        !std::all_of(row.build_id.begin(), row.build_id.end(), [](char c) { return HexDigit(c) >= 0; })) {
      return bad("build id '" + row.build_id + "' is not hex as readelf -n prints it");
    }
    std::transform(row.build_id.begin(), row.build_id.end(), row.build_id.begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    size_t fixed = 0;
    for (size_t t = 2; t < tokens.size(); ++t) {
      const std::string_view tok = tokens[t];
      if (tok.size() % 2 != 0) return bad("odd number of hex digits in '" + std::string(tok) + "'");
      for (size_t i = 0; i < tok.size(); i += 2) {
        if (tok[i] == '.' && tok[i + 1] == '.') {
          row.bytes.push_back(-1);
          continue;
        }
        const int hi = HexDigit(tok[i]), lo = HexDigit(tok[i + 1]);
        if (hi < 0 || lo < 0)
          return bad("'" + std::string(tok.substr(i, 2)) + "' is neither a hex byte nor ..");
        row.bytes.push_back(static_cast<int16_t>(hi * 16 + lo));
        ++fixed;
      }
    }
    if (row.bytes.empty() || row.bytes.front() < 0) return bad("a pattern must begin with a fixed byte");
    if (fixed < kMinFixedBytes) {
      return bad("only " + std::to_string(fixed) + " fixed bytes (at least " +
                 std::to_string(kMinFixedBytes) + ": a shorter pattern can match by chance)");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<uint64_t> MatchPattern(const ElfFile& elf, const PatternRow& row) {
  const std::string_view text = elf.Section(".text");
  if (text.empty()) return NotFound("no .text section");
  // The longest run of fixed bytes is searched for (Boyer-Moore-Horspool), the rest
  // compared at each place it is found.
  size_t best_at = 0, best_len = 0;
  for (size_t i = 0; i < row.bytes.size();) {
    if (row.bytes[i] < 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < row.bytes.size() && row.bytes[j] >= 0) ++j;
    if (j - i > best_len) best_at = i, best_len = j - i;
    i = j;
  }
  std::string anchor;
  for (size_t i = best_at; i < best_at + best_len; ++i) anchor.push_back(static_cast<char>(row.bytes[i]));
  const std::boyer_moore_horspool_searcher searcher(anchor.begin(), anchor.end());
  std::vector<size_t> matches;
  for (auto it = text.begin(); matches.size() < 2;) {
    const auto found = std::search(it, text.end(), searcher);
    if (found == text.end()) break;
    it = found + 1;
    const size_t anchor_pos = static_cast<size_t>(found - text.begin());
    if (anchor_pos < best_at) continue;
    const size_t start = anchor_pos - best_at;
    if (start + row.bytes.size() > text.size()) continue;
    bool all = true;
    for (size_t k = 0; k < row.bytes.size() && all; ++k) {
      all = row.bytes[k] < 0 || static_cast<uint8_t>(text[start + k]) == row.bytes[k];
    }
    if (all) matches.push_back(start);
  }
  const std::string which = row.function + " (table line " + std::to_string(row.line) + ")";
  if (matches.empty()) return NotFound("the pattern for " + which + " matches nowhere in .text");
  if (matches.size() > 1) return NotFound("the pattern for " + which + " matches more than once in .text");
  return static_cast<uint64_t>(text.data() - elf.Contents().data()) + matches[0];
}

bool HasPatternRows(const ElfFile& elf, const std::vector<PatternRow>& rows) {
  if (rows.empty()) return false;
  const std::string id = elf.BuildId();
  return !id.empty() &&
         std::any_of(rows.begin(), rows.end(), [&](const PatternRow& r) { return r.build_id == id; });
}

Result<AttachPlan> PlanPatternProbes(const ElfFile& elf, const std::vector<PatternRow>& rows) {
  const std::string id = elf.BuildId();
  const PatternRow *read = nullptr, *write = nullptr;
  for (const PatternRow& r : rows) {
    if (id.empty() || r.build_id != id) continue;
    (r.function == "SSL_read" ? read : write) = &r;  // a later row (a user's) wins
  }
  if (!read && !write) return NotFound("no byte-pattern row for build id " + (id.empty() ? "(none)" : id));
  if (!read || !write) {
    return NotFound(std::string("the byte-pattern table has no ") + (read ? "SSL_write" : "SSL_read") +
                    " row for build id " + id);
  }
  if (!elf.is_x86_64()) return NotFound("byte patterns are matched on x86-64 only");
  AttachPlan plan;
  plan.write_capture = WriteCapture::kEntryAndReturn;
  struct Want {
    const PatternRow* row;
    const char* enter;
    const char* ret;
  };
  for (const Want& w :
       {Want{read, "ks_ssl_read", "ks_ssl_rd_ret"}, Want{write, "ks_ssl_write", "ks_ssl_wr_ret"}}) {
    auto at = MatchPattern(elf, *w.row);
    if (!at.ok()) return at.status();
    std::string what;
    const ProbeCost cost = ProbeCostOf(elf.BytesAt(at.value(), 16), &what);
    plan.slow |= cost == ProbeCost::kSingleStep;
    plan.probes.push_back({w.enter, at.value(), false});
    plan.probes.push_back({w.ret, at.value(), true});
    plan.description += w.row->function + "@entry(" + what + ", byte pattern, table line " +
                        std::to_string(w.row->line) + ") ";
  }
  plan.description += "for " + (read->note.empty() ? "build id " + id : read->note);
  return plan;
}

}  // namespace kspan::tls
