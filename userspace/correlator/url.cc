#include "correlator/url.h"

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
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F || c == '/' || c == '@' || c == '?' || c == '#' || c == '\\') {
      return std::nullopt;
    }
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
    const size_t colon = value.find(':');
    if (colon != std::string_view::npos && value.find(':', colon + 1) != std::string_view::npos) {
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
  const size_t cut = path.find_first_of("?#");
  if (cut != std::string_view::npos) path = path.substr(0, cut);
  if (path.empty() || path == "/") return "/";

  std::string out;
  out.reserve(path.size());
  std::string decoded;  // only used for segments with a '%'
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view seg = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    bool is_id;
    if (seg.find('%') != std::string_view::npos) {
      decoded.resize(seg.size());
      decoded.resize(PercentDecode(seg, decoded.data()));
      is_id = LooksLikeId(decoded);
    } else {
      is_id = LooksLikeId(seg);
    }
    out.append(is_id ? std::string_view("{id}") : seg);
    if (slash == std::string_view::npos) break;
    out.push_back('/');
    start = slash + 1;
  }
  return out;
}

}  // namespace kspan::correlator
