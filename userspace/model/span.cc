#include "model/span.h"

#include <sys/random.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <ostream>
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

// Ids come from a per-thread xoshiro256++ generator (Blackman and Vigna) seeded from the
// kernel's CSPRNG: ids must be unpredictable enough not to collide across hosts, and
// getrandom per span is too slow. xoshiro256++ passes the statistical test suites and is
// a few instructions per 64 bits (std::mt19937_64 was ~300 per span's ids).
class IdGenerator {
 public:
  IdGenerator() {
    if (getrandom(s_, sizeof(s_), 0) != sizeof(s_)) {
      std::random_device rd;
      for (uint64_t& w : s_) w = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 0x9e3779b97f4a7c15ull;  // never all zero
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// An id of N bytes (a multiple of 8), never all zero.
template <size_t N>
void FillRandom(std::array<uint8_t, N>* out) {
  static_assert(N % 8 == 0);
  thread_local IdGenerator gen;
  uint64_t words[N / 8];
  uint64_t any;
  do {
    any = 0;
    for (uint64_t& w : words) {
      w = gen.Next();
      any |= w;
    }
  } while (any == 0);
  std::memcpy(out->data(), words, N);
}

}  // namespace

void AttrKey::Copy(std::string_view s) {
  char* p = new char[s.size() + 1];
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  data_ = p;
  size_ = static_cast<uint32_t>(s.size());
  owned_ = true;
}

std::ostream& operator<<(std::ostream& os, const AttrKey& key) {
  return os << key.view();
}

std::string TraceId::Hex() const {
  return ToHex(bytes.data(), bytes.size());
}
TraceId TraceId::Random() {
  TraceId id;
  FillRandom(&id.bytes);
  return id;
}

std::string SpanId::Hex() const {
  return ToHex(bytes.data(), bytes.size());
}
SpanId SpanId::Random() {
  SpanId id;
  FillRandom(&id.bytes);
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

namespace {

constexpr bool IsLcAlphaOrDigit(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// W3C Trace Context Level 2, "Key":
//   key     = ( lcalpha / DIGIT ) 0*255 ( keychar )
//   keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
// Level 2 dropped Level 1's tenant@system form: "@" is an ordinary key character, so
// "foo@", "foo@@bar" and "t@vvvvvvvvvvvvvvv" are keys (the W3C suite's
// test_tracestate_key_illegal_vendor_format and _key_length_limit), "@foo" is not.
bool ValidKey(std::string_view k) {
  if (k.empty() || k.size() > 256 || !IsLcAlphaOrDigit(k[0])) return false;
  for (const char c : k.substr(1)) {
    if (!IsLcAlphaOrDigit(c) && c != '_' && c != '-' && c != '*' && c != '/' && c != '@') return false;
  }
  return true;
}

// W3C Trace Context Level 2, "Value":
//   value    = 0*255(chr) nblk-chr
//   nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
//   chr      = %x20 / nblk-chr
// Leading spaces belong to the value; a trailing one would be OWS and is trimmed before.
bool ValidValue(std::string_view v) {
  if (v.empty() || v.size() > 256 || v.back() == ' ') return false;
  for (const char c : v) {
    if (c < 0x20 || c > 0x7E || c == ',' || c == '=') return false;
  }
  return true;
}

struct TraceStateMember {
  std::string_view key, value;
  size_t Size() const { return key.size() + 1 + value.size(); }
};

}  // namespace

// W3C Trace Context Level 2, "tracestate Header Field Values" and "list": the fields are
// one list (RFC 9110 §5.3), members separated by OWS "," OWS, empty and whitespace-only
// members allowed, at most 32 members. A malformed member makes the whole list invalid
// (the W3C suite: "expects the tracestate to be discarded"), and so do 33 members
// (test_tracestate_member_count_limit): the spec's "remove the right-most member" rule is
// for a vendor adding an entry, not for a list received too long.
std::optional<std::string> ParseTraceState(std::span<const std::string_view> fields) {
  constexpr size_t kMaxMembers = 32;
  std::vector<TraceStateMember> members;
  size_t received = 0;
  for (std::string_view field : fields) {
    while (true) {
      const size_t comma = field.find(',');
      const std::string_view member = TrimOws(field.substr(0, comma));
      if (!member.empty()) {
        const size_t eq = member.find('=');
        if (eq == std::string_view::npos) return std::nullopt;
        const TraceStateMember m{member.substr(0, eq), member.substr(eq + 1)};
        if (!ValidKey(m.key) || !ValidValue(m.value) || ++received > kMaxMembers) return std::nullopt;
        // "Mutating the tracestate Field": a vendor MAY discard duplicate keys. The leftmost
        // is the most recent position, so it stays (the suite accepts either choice).
        const bool duplicate = std::any_of(members.begin(), members.end(),
                                           [&](const TraceStateMember& o) { return o.key == m.key; });
        if (!duplicate) members.push_back(m);
      }
      if (comma == std::string_view::npos) break;
      field.remove_prefix(comma + 1);
    }
  }
  // "tracestate Limits": vendors SHOULD propagate at least 512 characters and document
  // their maximum; a cut removes whole entries, those over 128 characters first, then from
  // the end. 32 members of 256 + 1 + 256 characters and 31 commas are 16,447 bytes, copied
  // into every span of the trace; kspan keeps at most kMaxTraceStateBytes (4 KiB).
  size_t total = members.empty() ? 0 : members.size() - 1;
  for (const TraceStateMember& m : members) total += m.Size();
  while (total > kMaxTraceStateBytes) {
    auto victim = std::find_if(members.rbegin(), members.rend(),
                               [](const TraceStateMember& m) { return m.Size() > 128; });
    if (victim == members.rend()) victim = members.rbegin();
    total -= victim->Size() + (members.size() > 1 ? 1 : 0);
    members.erase(std::next(victim).base());
  }
  std::string out;
  out.reserve(total);
  for (const TraceStateMember& m : members) {
    if (!out.empty()) out += ',';
    out.append(m.key);
    out += '=';
    out.append(m.value);
  }
  return out;
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

void Span::Set(AttrKey key, AttributeValue value) {
  for (Attribute& a : attributes) {
    if (a.key == key.view()) {
      a.value = std::move(value);
      return;
    }
  }
  attributes.push_back({std::move(key), std::move(value)});
}

}  // namespace kspan::model
