#include "common/redact.h"

#include <array>
#include <cstddef>
#include <string>
#include <utility>

#include "common/strings.h"

namespace kspan {
namespace {

bool IsKeyChar(char c) {
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

// Bytes a token can start with (the first byte of a vendor prefix, "eyJ", either case of an
// auth scheme's or a secret key's first letter): every other position is skipped after
// one table look-up, so text without secrets costs a scan, not 30 prefix tests a word.
constexpr std::array<bool, 256> kTokenStart = [] {
  std::array<bool, 256> t{};
  auto both_cases = [&t](char c) {
    t[static_cast<unsigned char>(c)] = true;
    if (c >= 'a' && c <= 'z') t[static_cast<unsigned char>(c - 'a' + 'A')] = true;
    if (c >= 'A' && c <= 'Z') t[static_cast<unsigned char>(c - 'A' + 'a')] = true;
  };
  for (std::string_view p : kKeyPrefixes) t[static_cast<unsigned char>(p[0])] = true;
  t[static_cast<unsigned char>('e')] = true;  // JwtAt
  both_cases('b');                            // AuthSchemeAt: bearer, basic
  for (std::string_view k : kSecretKeys) both_cases(k[0]);
  return t;
}();

// The one scan behind RedactSecrets: the redacted text goes to `out` (replacing what it
// held) only once a first secret is found; false, `out` untouched, when there is none.
bool RedactInto(std::string_view text, std::string* out) {
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
  size_t i = 0;
  while (i < text.size()) {
    // Tokens start at a word boundary.
    if (!kTokenStart[static_cast<unsigned char>(text[i])] || (i > 0 && IsKeyChar(text[i - 1]))) {
      ++i;
      continue;
    }
    size_t n = 0, start = 0, len = 0;
    if ((n = VendorKeyAt(text, i)) > 0 || (n = JwtAt(text, i)) > 0) {
      redact(i, i + n);
      i += n;
      continue;
    }
    if (AuthSchemeAt(text, i, &start, &len) || SecretValueAt(text, i, &start, &len)) {
      redact(start, start + len);
      i = start + len;
      continue;
    }
    ++i;
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
