#include "common/redact.h"

#include <array>
#include <cstddef>

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
    if (s.substr(i, p.size()) == p) {
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
    if (!StartsWithIgnoreCase(s.substr(i), key)) continue;
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

}  // namespace

std::string RedactSecrets(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    // Tokens start at a word boundary.
    const bool boundary = i == 0 || !IsKeyChar(text[i - 1]);
    size_t n = 0, start = 0, len = 0;
    if (boundary && ((n = VendorKeyAt(text, i)) > 0 || (n = JwtAt(text, i)) > 0)) {
      out += kRedacted;
      i += n;
      continue;
    }
    if (boundary && (AuthSchemeAt(text, i, &start, &len) || SecretValueAt(text, i, &start, &len))) {
      out.append(text.substr(i, start - i));
      out += kRedacted;
      i = start + len;
      continue;
    }
    out += text[i++];
  }
  return out;
}

}  // namespace kspan
