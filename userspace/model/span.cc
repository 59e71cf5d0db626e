#include "model/span.h"

#include <sys/random.h>

#include <cstring>
#include <random>

#include "common/strings.h"

namespace kspan::model {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string ToHex(const uint8_t* b, size_t n) {
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[b[i] >> 4];
    s[2 * i + 1] = kHex[b[i] & 0xF];
  }
  return s;
}

bool AllZero(const uint8_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (b[i]) return false;
  }
  return true;
}

// Ids come from a per-thread generator seeded from the kernel's CSPRNG: ids must be
// unpredictable enough not to collide across hosts, and getrandom per span is too slow.
void FillRandom(uint8_t* out, size_t n) {
  thread_local std::mt19937_64 gen = [] {
    std::seed_seq::result_type seed[8];
    if (getrandom(seed, sizeof(seed), 0) != sizeof(seed)) {
      std::random_device rd;
      for (auto& s : seed) s = rd();
    }
    std::seed_seq seq(std::begin(seed), std::end(seed));
    return std::mt19937_64(seq);
  }();
  do {
    for (size_t i = 0; i < n; i += 8) {
      const uint64_t r = gen();
      std::memcpy(out + i, &r, std::min<size_t>(8, n - i));
    }
  } while (AllZero(out, n));
}

}  // namespace

bool TraceId::IsValid() const {
  return !AllZero(bytes.data(), bytes.size());
}
std::string TraceId::Hex() const {
  return ToHex(bytes.data(), bytes.size());
}
TraceId TraceId::Random() {
  TraceId id;
  FillRandom(id.bytes.data(), id.bytes.size());
  return id;
}

bool SpanId::IsValid() const {
  return !AllZero(bytes.data(), bytes.size());
}
std::string SpanId::Hex() const {
  return ToHex(bytes.data(), bytes.size());
}
SpanId SpanId::Random() {
  SpanId id;
  FillRandom(id.bytes.data(), id.bytes.size());
  return id;
}

bool ParseHexId(std::string_view hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// W3C Trace Context §3.2: version "-" trace-id "-" parent-id "-" trace-flags, all lowercase
// hex. Version ff is invalid; version 00 must be exactly 55 characters; a higher version
// may append "-" and more fields, which we ignore.
std::optional<TraceParent> ParseTraceParent(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.size() < 55) return std::nullopt;
  for (size_t i = 0; i < 55; ++i) {
    if (i == 2 || i == 35 || i == 52) {
      if (v[i] != '-') return std::nullopt;
    } else if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'))) {
      return std::nullopt;  // uppercase is invalid per the spec
    }
  }
  uint8_t version;
  if (!ParseHexId(v.substr(0, 2), &version, 1) || version == 0xff) return std::nullopt;
  if (version == 0 && v.size() != 55) return std::nullopt;
  if (version > 0 && v.size() > 55 && v[55] != '-') return std::nullopt;
  TraceParent tp;
  ParseHexId(v.substr(3, 32), tp.trace_id.bytes.data(), 16);
  ParseHexId(v.substr(36, 16), tp.parent_id.bytes.data(), 8);
  ParseHexId(v.substr(53, 2), &tp.flags, 1);
  if (!tp.trace_id.IsValid() || !tp.parent_id.IsValid()) return std::nullopt;
  return tp;
}

std::string FormatTraceParent(const TraceId& trace, const SpanId& span, uint8_t flags) {
  std::string s = "00-";
  s += trace.Hex();
  s += '-';
  s += span.Hex();
  s += '-';
  s += ToHex(&flags, 1);
  return s;
}

std::string_view SpanKindName(SpanKind kind) {
  switch (kind) {
    case SpanKind::kUnspecified: return "UNSPECIFIED";
    case SpanKind::kInternal: return "INTERNAL";
    case SpanKind::kServer: return "SERVER";
    case SpanKind::kClient: return "CLIENT";
    case SpanKind::kProducer: return "PRODUCER";
    case SpanKind::kConsumer: return "CONSUMER";
  }
  return "UNSPECIFIED";
}

const AttributeValue* Span::Find(std::string_view key) const {
  for (const auto& a : attributes) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

const std::string* Span::FindString(std::string_view key) const {
  const AttributeValue* v = Find(key);
  return v ? std::get_if<std::string>(v) : nullptr;
}

void Span::Set(std::string_view key, AttributeValue value) {
  for (Attribute& a : attributes) {
    if (a.key == key) {
      a.value = std::move(value);
      return;
    }
  }
  attributes.push_back({std::string(key), std::move(value)});
}

}  // namespace kspan::model
