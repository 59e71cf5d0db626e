#include "correlator/url.h"

#include <array>

#include "common/strings.h"

namespace kspan::correlator {
namespace {

// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). Returns the length
// of "scheme://" at the start of `s`, or 0.
size_t SchemePrefixLength(std::string_view s) {
  if (s.empty() || !IsAlpha(s[0])) return 0;
  size_t i = 1;
  while (i < s.size() && (IsAlpha(s[i]) || IsDigit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) ++i;
  if (s.substr(i, 3) != "://") return 0;
  return i + 3;
}

// Splits "path?query#fragment" (the fragment is dropped) into `out`.
void SplitPathQuery(std::string_view s, RequestTarget* out) {
  if (const size_t hash = s.find('#'); hash != std::string_view::npos) s = s.substr(0, hash);
  const size_t q = s.find('?');
  if (q == std::string_view::npos) {
    out->path = s;
    return;
  }
  out->path = s.substr(0, q);
  out->query = s.substr(q + 1);
  out->has_query = true;
}

// Percent-decodes `s` into `buf` (which must hold s.size() bytes). Malformed escapes are
// copied as they are. Returns the decoded length.
size_t PercentDecode(std::string_view s, char* buf) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      buf[n++] = static_cast<char>(HexValue(s[i + 1]) << 4 | HexValue(s[i + 2]));
      i += 2;
    } else {
      buf[n++] = s[i];
    }
  }
  return n;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!IsHexDigit(s[i])) {
      return false;
    }
  }
  return true;
}

// Thresholds: a 16-hex-digit segment is a 64-bit id (span ids, Mongo-ish object ids are
// 24); English words made only of a-f stay under 16 letters. A 20-char token from the
// base64 alphabet with a digit in it is past any plausible word or short version string
// ("v2", "2024-01") yet short of most random ids (22 chars for 128 bits in base64url,
// 26 for a ULID).
constexpr size_t kMinHexIdLength = 16;
constexpr size_t kMinTokenIdLength = 20;

// ParseHostPort's byte classes: bytes no host can hold (whitespace, '/', '@', '?', '#',
// '\\', control bytes) and ':'.
enum : uint8_t { kNotHost = 1, kColon = 2 };
constexpr std::array<uint8_t, 256> kHostClass = [] {
  std::array<uint8_t, 256> t{};
  for (int u = 0; u < 256; ++u) {
    const char c = static_cast<char>(u);
    if (u <= 0x20 || u == 0x7F || c == '/' || c == '@' || c == '?' || c == '#' || c == '\\') t[u] = kNotHost;
  }
  t[':'] = kColon;
  return t;
}();

// AppendUrlTemplate's byte classes: what LooksLikeId asks of every byte of a segment
// (IsDigit, IsHexDigit, a token byte), '%' absent, and the bytes that end a segment ('/')
// or the path ('?', '#').
enum : uint8_t { kDigit = 1, kHex = 2, kToken = 4, kNoPercent = 8, kEnd = 16 };
constexpr std::array<uint8_t, 256> kPathClass = [] {
  std::array<uint8_t, 256> t{};
  for (int i = 0; i < 256; ++i) {
    const char c = static_cast<char>(i);
    uint8_t k = c == '%' ? 0 : kNoPercent;
    if (IsDigit(c)) k |= kDigit;
    if (IsHexDigit(c)) k |= kHex;
    if (IsDigit(c) || IsAlpha(c) || c == '-' || c == '_' || c == '+' || c == '=') k |= kToken;
    if (c == '/' || c == '?' || c == '#') k |= kEnd;
    t[i] = k;
  }
  return t;
}();

}  // namespace

RequestTarget SplitTarget(std::string_view target) {
  RequestTarget t;
  if (target == "*") {
    t.form = TargetForm::kAsterisk;
    return t;
  }
  if (target.empty() || target[0] == '/') {
    SplitPathQuery(target, &t);
    return t;
  }
  if (const size_t prefix = SchemePrefixLength(target); prefix > 0) {
    t.form = TargetForm::kAbsolute;
    t.scheme = target.substr(0, prefix - 3);
    std::string_view rest = target.substr(prefix);
    const size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
      t.userinfo = authority.substr(0, at);
      authority = authority.substr(at + 1);
    }
    t.authority = authority;
    if (end != std::string_view::npos) SplitPathQuery(rest.substr(end), &t);
    if (t.path.empty()) t.path = "/";
    return t;
  }
  if (const auto hp = ParseHostPort(target);
      hp && hp->has_port && target.find('/') == std::string_view::npos) {
    t.form = TargetForm::kAuthority;
    t.authority = target;
    return t;
  }
  SplitPathQuery(target, &t);  // not a valid form: keep what is there as a path
  return t;
}

std::optional<HostPort> ParseHostPort(std::string_view value) {
  value = TrimOws(value);
  if (value.empty()) return std::nullopt;
  // One pass: bytes no host holds, and where the first two ':' are.
  size_t colon = std::string_view::npos;
  bool second_colon = false;
  for (size_t i = 0; i < value.size(); ++i) {
    const uint8_t k = kHostClass[static_cast<unsigned char>(value[i])];
    if (k == 0) continue;
    if (k == kNotHost) return std::nullopt;
    second_colon |= colon != std::string_view::npos;
    if (colon == std::string_view::npos) colon = i;
  }
  HostPort hp;
  std::string_view port;
  if (value[0] == '[') {
    const size_t close = value.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    hp.host = value.substr(1, close - 1);
    std::string_view rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    if (second_colon) {
      hp.host = value;  // a bare IPv6 address; no port can be told apart
      return hp;
    }
    hp.host = value.substr(0, colon);
    if (colon != std::string_view::npos) port = value.substr(colon + 1);
    if (hp.host.empty()) return std::nullopt;
  }
  if (port.empty()) return hp;
  if (port.size() > 5) return std::nullopt;
  uint32_t p = 0;
  for (const char c : port) {
    if (!IsDigit(c)) return std::nullopt;
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p == 0 || p > 65535) return std::nullopt;
  hp.port = static_cast<uint16_t>(p);
  hp.has_port = true;
  return hp;
}

void AppendUrlHost(std::string* out, std::string_view host) {
  if (host.find(':') != std::string_view::npos) {
    out->push_back('[');
    out->append(host);
    out->push_back(']');
  } else {
    out->append(host);
  }
}

void AppendRedactedQuery(std::string* out, std::string_view query) {
  size_t start = 0;
  while (true) {
    const size_t amp = query.find('&', start);
    const std::string_view part = query.substr(start, amp == std::string_view::npos ? amp : amp - start);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos || eq + 1 == part.size()) {
      out->append(part);  // a bare key, or a key with an empty value: nothing to hide
    } else {
      out->append(part.substr(0, eq + 1));
      out->append("REDACTED");
    }
    if (amp == std::string_view::npos) break;
    out->push_back('&');
    start = amp + 1;
  }
}

std::string RedactQuery(std::string_view query) {
  std::string out;
  out.reserve(query.size() + 16);
  AppendRedactedQuery(&out, query);
  return out;
}

bool LooksLikeId(std::string_view s) {
  if (s.empty()) return false;
  bool all_digits = true;
  bool all_hex = true;
  bool all_token = true;
  bool has_digit = false;
  for (const char c : s) {
    const bool digit = IsDigit(c);
    has_digit |= digit;
    all_digits &= digit;
    all_hex &= IsHexDigit(c);
    all_token &= digit || IsAlpha(c) || c == '-' || c == '_' || c == '+' || c == '=';
  }
  if (all_digits) return true;
  if (all_hex && s.size() >= kMinHexIdLength) return true;
  if (IsUuid(s)) return true;
  return all_token && has_digit && s.size() >= kMinTokenIdLength;
}

std::string UrlTemplate(std::string_view path) {
  std::string out;
  AppendUrlTemplate(&out, path);
  return out;
}

// One pass over the path: each segment is classified as its bytes go by (LooksLikeId's
// tests, kept as running flags), and the text between identifiers is copied in runs.
std::string& AppendUrlTemplate(std::string* out, std::string_view path) {
  const size_t base = out->size();
  out->reserve(base + path.size());
  std::string decoded;  // only used for segments with a '%'
  size_t run = 0;       // start of the text not yet copied
  size_t start = 0;     // start of the current segment
  size_t i = 0;
  while (true) {
    uint8_t all = kDigit | kHex | kToken | kNoPercent;
    uint8_t any = 0;
    for (; i < path.size(); ++i) {
      const uint8_t c = kPathClass[static_cast<unsigned char>(path[i])];
      if (c & kEnd) break;
      all &= c;
      any |= c;
    }
    const std::string_view seg = path.substr(start, i - start);
    bool is_id;
    if (!(all & kNoPercent)) {  // a '%': classify the decoded segment
      decoded.resize(seg.size());
      decoded.resize(PercentDecode(seg, decoded.data()));
      is_id = LooksLikeId(decoded);
    } else if (seg.empty()) {
      is_id = false;
    } else if (all & kDigit) {
      is_id = true;
    } else if ((all & kHex) && seg.size() >= kMinHexIdLength) {
      is_id = true;
    } else if (seg.size() == 36 && IsUuid(seg)) {
      is_id = true;
    } else {
      is_id = (all & kToken) && (any & kDigit) && seg.size() >= kMinTokenIdLength;
    }
    if (is_id) {
      out->append(path.substr(run, start - run));
      out->append("{id}");
      run = i;
    }
    if (i == path.size() || path[i] != '/') break;  // the end, or the query or fragment
    start = ++i;
  }
  if (i == 0) {  // the empty path is "/"
    out->push_back('/');
    return *out;
  }
  out->append(path.substr(run, i - run));
  return *out;
}

}  // namespace kspan::correlator
