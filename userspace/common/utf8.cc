#include "common/utf8.h"

#include <cstdint>
#include <cstring>

namespace kspan {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t min;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  uint32_t cp = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool IsAscii(std::string_view s) {
  size_t i = 0;
  uint64_t high = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, s.data() + i, 8);
    high |= word;
  }
  for (; i < s.size(); ++i) high |= static_cast<unsigned char>(s[i]);
  return (high & 0x8080808080808080ull) == 0;
}

size_t ValidUtf8Size(std::string_view s) {
  if (IsAscii(s)) return s.size();
  size_t n = s.size();
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
    } else if (const size_t len = Utf8SequenceLength(s, i); len > 0) {
      i += len;
    } else {
      n += kReplacement.size() - 1;
      ++i;
    }
  }
  return n;
}

char* CopyValidUtf8(char* p, std::string_view s) {
  if (IsAscii(s)) {
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    return p + s.size();
  }
  for (size_t i = 0; i < s.size();) {
    const size_t len = static_cast<unsigned char>(s[i]) < 0x80 ? 1 : Utf8SequenceLength(s, i);
    if (len == 0) {
      std::memcpy(p, kReplacement.data(), kReplacement.size());
      p += kReplacement.size();
      ++i;
    } else {
      std::memcpy(p, s.data() + i, len);
      p += len;
      i += len;
    }
  }
  return p;
}

std::string ValidUtf8(std::string_view s) {
  if (IsAscii(s)) return std::string(s);
  std::string out(ValidUtf8Size(s), '\0');
  CopyValidUtf8(out.data(), s);
  return out;
}

}  // namespace kspan
