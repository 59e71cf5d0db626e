#include "tls/attach_plan.h"

#include <cstring>
#include <optional>

namespace kspan::tls {
namespace {

constexpr std::string_view kEndbr64 = "\xf3\x0f\x1e\xfa";

struct Direction {
  const char* api;       // SSL_read
  const char* api_ex;    // SSL_read_ex
  const char* internal;  // ssl_read_internal
  const char* enter;     // ks_ssl_read
  const char* enter_ex;  // ks_ssl_read_ex
  const char* ret;       // ks_ssl_rd_ret, or nullptr: no return probe
};

constexpr Direction kRead{"SSL_read",    "SSL_read_ex",    "ssl_read_internal",
                          "ks_ssl_read", "ks_ssl_read_ex", "ks_ssl_rd_ret"};
constexpr Direction kWrite{"SSL_write",    "SSL_write_ex",    "ssl_write_internal",
                           "ks_ssl_write", "ks_ssl_write_ex", "ks_ssl_wr_ret"};
// Writes whose socket writes stand in for the return (bpf/tls.bpf.h): entry probes only.
constexpr Direction kWriteEntryOnly{"SSL_write",    "SSL_write_ex",    "ssl_write_internal",
                                    "ks_ssl_sockw", "ks_ssl_sockw_ex", nullptr};

// A probe point at a function's entry: past an endbr64, which leaves the stack alone, so
// a return probe there still finds the return address on top.
struct Entry {
  uint64_t offset = 0;
  ProbeCost cost = ProbeCost::kSingleStep;
  std::string what;
};

Entry EntryOf(const ElfFile& elf, const ElfSymbol& sym) {
  Entry e;
  e.offset = sym.file_offset;
  std::string_view code = elf.BytesAt(e.offset, 16);
  if (elf.is_x86_64() && code.starts_with(kEndbr64)) {
    e.offset += kEndbr64.size();
    code.remove_prefix(kEndbr64.size());
  }
  e.cost = elf.is_x86_64() ? ProbeCostOf(code, &e.what) : ProbeCost::kSingleStep;
  if (!elf.is_x86_64()) e.what = "entry";
  return e;
}

// The target of the first `call rel32` in the first `window` bytes of a function, as a
// file offset. Bytes are scanned, not decoded: callers confirm the result independently.
std::optional<uint64_t> FirstCallTarget(const ElfFile& elf, const ElfSymbol& sym, size_t window) {
  const std::string_view code = elf.BytesAt(sym.file_offset, window);
  for (size_t i = 0; i + 5 <= code.size(); ++i) {
    if (static_cast<uint8_t>(code[i]) != 0xe8) continue;
    int32_t rel;
    std::memcpy(&rel, code.data() + i + 1, sizeof(rel));
    const uint64_t target = sym.address + i + 5 + static_cast<int64_t>(rel);
    if (auto off = elf.FileOffsetOf(target)) return off;
  }
  return std::nullopt;
}

// True when the function calls the file offset `target` within its first `window` bytes.
bool Calls(const ElfFile& elf, const ElfSymbol& sym, uint64_t target, size_t window) {
  const std::string_view code = elf.BytesAt(sym.file_offset, window);
  for (size_t i = 0; i + 5 <= code.size(); ++i) {
    if (static_cast<uint8_t>(code[i]) != 0xe8) continue;
    int32_t rel;
    std::memcpy(&rel, code.data() + i + 1, sizeof(rel));
    const auto off = elf.FileOffsetOf(sym.address + i + 5 + static_cast<int64_t>(rel));
    if (off && *off == target) return true;
  }
  return false;
}

bool Cheap(ProbeCost c) {
  return c != ProbeCost::kSingleStep;
}

// Probes for one direction, appended to `plan`. NotFound when it has no functions.
Status PlanDirection(const ElfFile& elf, const Direction& d, AttachPlan* plan) {
  const auto api = elf.FindFunction(d.api);
  const auto api_ex = elf.FindFunction(d.api_ex);
  if (!api && !api_ex) return NotFound(std::string("no ") + d.api + " or " + d.api_ex + " symbol");
  std::optional<Entry> e_api, e_ex;
  if (api) e_api = EntryOf(elf, *api);
  if (api_ex) e_ex = EntryOf(elf, *api_ex);
  // "@entry(push)", and ", no return probe" for writes without one.
  const std::string how = d.ret ? "" : ", no return probe";
  auto add = [&](const char* program, uint64_t offset) {
    plan->probes.push_back({program, offset, false});
    if (d.ret) plan->probes.push_back({d.ret, offset, true});
  };
  auto add_api = [&] {
    if (e_api) {
      add(d.enter, e_api->offset);
      plan->description += std::string(d.api) + "@entry(" + e_api->what + how + ") ";
      plan->slow |= !Cheap(e_api->cost);
    }
    if (e_ex) {
      add(d.enter_ex, e_ex->offset);
      plan->description += std::string(d.api_ex) + "@entry(" + e_ex->what + how + ") ";
      plan->slow |= !Cheap(e_ex->cost);
    }
  };
  if ((!e_api || Cheap(e_api->cost)) && (!e_ex || Cheap(e_ex->cost))) {
    add_api();
    return Status::Ok();
  }
  // The internal function both forms call, when it starts cheaply.
  if (elf.is_x86_64() && api && api_ex) {
    std::optional<uint64_t> target;
    if (auto named = elf.FindFunction(d.internal)) target = named->file_offset;
    if (!target) target = FirstCallTarget(elf, *api_ex, 32);
    if (target && Calls(elf, *api, *target, 96) && Calls(elf, *api_ex, *target, 32)) {
      std::string what;
      uint64_t at = *target;
      std::string_view code = elf.BytesAt(at, 16);
      if (code.starts_with(kEndbr64)) {
        at += kEndbr64.size();
        code.remove_prefix(kEndbr64.size());
      }
      if (Cheap(ProbeCostOf(code, &what))) {
        add(d.enter_ex, at);
        plan->description += std::string(d.internal) + "@entry(" + what + ", called by " + d.api + " and " +
                             d.api_ex + how + ") ";
        return Status::Ok();
      }
    }
  }
  add_api();
  return Status::Ok();
}

}  // namespace

ProbeCost ProbeCostOf(std::string_view code, std::string* what) {
  auto byte = [&](size_t i) { return i < code.size() ? static_cast<uint8_t>(code[i]) : 0; };
  auto say = [&](const char* w, ProbeCost c) {
    if (what) *what = w;
    return c;
  };
  if (code.size() >= 5 && code.substr(0, 5) == std::string_view("\x0f\x1f\x44\x00\x00", 5)) {
    return say("nop5", ProbeCost::kNop);
  }
  const uint8_t b0 = byte(0);
  if (b0 >= 0x50 && b0 <= 0x57) return say("push", ProbeCost::kEmulated);
  if (b0 == 0x41 && byte(1) >= 0x50 && byte(1) <= 0x57) return say("push", ProbeCost::kEmulated);
  if (b0 == 0xe8) return say("call", ProbeCost::kEmulated);
  if (b0 == 0xe9 || b0 == 0xeb) return say("jmp", ProbeCost::kEmulated);
  if (b0 >= 0x70 && b0 <= 0x7f) return say("jcc", ProbeCost::kEmulated);
  if (b0 == 0x0f && byte(1) >= 0x80 && byte(1) <= 0x8f) return say("jcc", ProbeCost::kEmulated);
  return say("single-step", ProbeCost::kSingleStep);
}

WriteCapture WriteCaptureFor(const ElfFile& elf) {
  return elf.SoName().starts_with("libssl.") ? WriteCapture::kEntryOnly : WriteCapture::kEntryAndReturn;
}

Result<AttachPlan> PlanTlsProbes(const ElfFile& elf) {
  AttachPlan plan;
  plan.write_capture = WriteCaptureFor(elf);
  const Status read = PlanDirection(elf, kRead, &plan);
  const Status write =
      PlanDirection(elf, plan.write_capture == WriteCapture::kEntryOnly ? kWriteEntryOnly : kWrite, &plan);
  if (!read.ok() && !write.ok()) return NotFound("no SSL_read/SSL_write function symbols");
  if (!read.ok() || !write.ok()) {
    // Half a TLS library is of no use for HTTP: say so rather than capture one direction.
    return NotFound(!read.ok() ? read.message() : write.message());
  }
  if (!plan.description.empty()) plan.description.pop_back();
  return plan;
}

}  // namespace kspan::tls
