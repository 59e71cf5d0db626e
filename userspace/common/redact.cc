#include "common/redact.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "common/strings.h"

namespace kspan {
namespace {

constexpr bool IsKeyChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool IsWordChar(char c) {
  return IsKeyChar(c) || c == '.';
}

size_t KeyRun(std::string_view s, size_t from) {
  size_t i = from;
  while (i < s.size() && IsKeyChar(s[i])) ++i;
  return i - from;
}

// Vendor key prefixes, case-sensitive, each followed by at least kMinKeyChars key chars.
constexpr std::array<std::string_view, 16> kKeyPrefixes = {
    "sk-",    "pk-",   "rk-",   "ghp_",  "gho_", "ghu_", "ghs_", "github_pat_",
    "glpat-", "xoxb-", "xoxp-", "xoxa-", "hf_",  "AIza", "AKIA", "ASIA"};
constexpr size_t kMinKeyChars = 16;

// Keys whose value is a secret in key=value, key: value and "key": "value".
constexpr std::array<std::string_view, 12> kSecretKeys = {
    "password", "passwd",       "pwd",           "secret", "api_key",       "apikey",
    "api-key",  "access_token", "refresh_token", "token",  "client_secret", "private_key"};

// Length of a vendor key at s[i], or 0.
size_t VendorKeyAt(std::string_view s, size_t i) {
  for (std::string_view p : kKeyPrefixes) {
    if (s[i] == p[0] && s.substr(i, p.size()) == p) {
      const size_t run = KeyRun(s, i + p.size());
      if (run >= kMinKeyChars) return p.size() + run;
    }
  }
  return 0;
}

// Length of a JWT (three base64url parts, the first two starting "eyJ") at s[i], or 0.
size_t JwtAt(std::string_view s, size_t i) {
  if (s.substr(i, 3) != "eyJ") return 0;
  size_t j = i;
  for (int part = 0; part < 3; ++part) {
    const size_t run = KeyRun(s, j);
    if (run < 8) return 0;
    j += run;
    if (part < 2) {
      if (j >= s.size() || s[j] != '.') return 0;
      ++j;
    }
  }
  return j - i;
}

// "Bearer " / "Basic " then credentials: returns where they start and their length.
bool AuthSchemeAt(std::string_view s, size_t i, size_t* start, size_t* len) {
  for (std::string_view scheme : {std::string_view("bearer "), std::string_view("basic ")}) {
    if (StartsWithIgnoreCase(s.substr(i), scheme)) {
      size_t j = i + scheme.size();
      while (j < s.size() && s[j] == ' ') ++j;
      size_t k = j;
      while (k < s.size() && (IsKeyChar(s[k]) || s[k] == '.' || s[k] == '+' || s[k] == '/' || s[k] == '='))
        ++k;
      if (k - j >= 8) {
        *start = j;
        *len = k - j;
        return true;
      }
    }
  }
  return false;
}

// A secret key name at s[i] (a whole word), then `=`, `:` or `": "`: where its value
// starts and how long it is.
bool SecretValueAt(std::string_view s, size_t i, size_t* start, size_t* len) {
  if (i > 0 && IsWordChar(s[i - 1])) return false;
  for (std::string_view key : kSecretKeys) {
    if ((s[i] | 0x20) != key[0] || !StartsWithIgnoreCase(s.substr(i), key)) continue;
    size_t j = i + key.size();
    if (j < s.size() && IsWordChar(s[j])) continue;
    if (j < s.size() && s[j] == '"') ++j;  // "key": "value"
    while (j < s.size() && s[j] == ' ') ++j;
    if (j >= s.size() || (s[j] != '=' && s[j] != ':')) continue;
    ++j;
    while (j < s.size() && s[j] == ' ') ++j;
    const bool quoted = j < s.size() && (s[j] == '"' || s[j] == '\'');
    const char quote = quoted ? s[j] : 0;
    if (quoted) ++j;
    size_t k = j;
    while (k < s.size() && (quoted ? s[k] != quote
                                   : !(s[k] == ' ' || s[k] == ',' || s[k] == '&' || s[k] == ';' ||
                                       s[k] == '\n' || s[k] == '}' || s[k] == '"'))) {
      ++k;
    }
    if (k == j) continue;
    *start = j;
    *len = k - j;
    return true;
  }
  return false;
}

// What each byte can start, as bits: a token starts only at the first byte of a run of key
// characters, and each test below is tried only where its first byte can begin it (the
// first byte of a vendor prefix, "eyJ", either case of an auth scheme's or a secret key's
// first letter). Text without secrets costs one table look-up a byte, not 30 prefix tests
// a word.
enum : uint8_t { kKey = 1, kVendor = 2, kJwt = 4, kAuth = 8, kSecretKey = 16, kSeparator = 32 };
constexpr std::array<uint8_t, 256> kByteClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if (IsKeyChar(static_cast<char>(c))) t[c] |= kKey;
  }
  auto both_cases = [&t](char c, uint8_t bit) {
    t[static_cast<unsigned char>(c)] |= bit;
    if (c >= 'a' && c <= 'z') t[static_cast<unsigned char>(c - 'a' + 'A')] |= bit;
  };
  for (std::string_view p : kKeyPrefixes) t[static_cast<unsigned char>(p[0])] |= kVendor;
  t[static_cast<unsigned char>('e')] |= kJwt;
  both_cases('b', kAuth);  // bearer, basic
  for (std::string_view k : kSecretKeys) both_cases(k[0], kSecretKey);
  // What an auth scheme (its space) or a secret key (its '=' or ':') needs after its word.
  for (char c : {' ', '=', ':'}) t[static_cast<unsigned char>(c)] |= kSeparator;
  return t;
}();

// The one scan behind RedactSecrets: the redacted text goes to `out` (replacing what it
// held) only once a first secret is found; false, `out` untouched, when there is none.
bool RedactInto(std::string_view text, std::string* out) {
  // A vendor key is at least 19 bytes and a JWT 26; an auth scheme's credentials need the
  // space after it, a secret key's value the '=' or ':' after it. Short text without such a
  // separator (a user agent, most URL paths) holds no token: one look-up a byte, not a scan.
  if (text.size() < 19) {
    uint8_t seen = 0;
    for (const char ch : text) seen |= kByteClass[static_cast<unsigned char>(ch)];
    if (!(seen & kSeparator)) return false;
  }
  bool found = false;
  size_t copied = 0;  // text[0, copied) is in out
  auto redact = [&](size_t keep_to, size_t resume) {
    if (!found) {
      found = true;
      out->clear();
      out->reserve(text.size());
    }
    out->append(text.substr(copied, keep_to - copied));
    out->append(kRedacted);
    copied = resume;
  };
  auto cls = [&text](size_t i) { return kByteClass[static_cast<unsigned char>(text[i])]; };
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Tokens start at a word boundary: past the rest of a run of key characters, then to
    // the next one's first byte.
    if (i > 0 && (cls(i - 1) & kKey)) {
      while (i < n && (cls(i) & kKey)) ++i;
    }
    while (i < n && !(cls(i) & kKey)) ++i;
    if (i >= n) break;
    const uint8_t c = cls(i);
    size_t run = 1;  // the run of key characters from i
    while (i + run < n && (cls(i + run) & kKey)) ++run;
    // Each test only where the run can hold its token: a vendor prefix (key characters)
    // and 16 more, a JWT's first part of 8, an auth scheme's word then a space, a secret
    // key's whole word (3 to 13 characters).
    size_t k = 0, start = 0, len = 0;
    if (((c & kVendor) && run >= 19 && (k = VendorKeyAt(text, i)) > 0) ||
        ((c & kJwt) && run >= 8 && (k = JwtAt(text, i)) > 0)) {
      redact(i, i + k);
      i += k;
      continue;
    }
    if (((c & kAuth) && (run == 5 || run == 6) && i + run < n && text[i + run] == ' ' &&
         AuthSchemeAt(text, i, &start, &len)) ||
        ((c & kSecretKey) && run >= 3 && run <= 13 && SecretValueAt(text, i, &start, &len))) {
      redact(start, start + len);
      i = start + len;
      continue;
    }
    i += run;  // no token starts inside the run
  }
  if (found) out->append(text.substr(copied));
  return found;
}

}  // namespace

std::string RedactSecrets(std::string_view text) {
  std::string out;
  if (!RedactInto(text, &out)) out.assign(text);
  return out;
}

bool RedactSecretsInPlace(std::string* text) {
  std::string out;
  // A secret already reading REDACTED ("password=REDACTED") leaves the text as it was:
  // not a change.
  if (!RedactInto(*text, &out) || out == *text) return false;
  *text = std::move(out);
  return true;
}

}  // namespace kspan
