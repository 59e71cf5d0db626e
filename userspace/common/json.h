// A small streaming JSON writer for the agent's own output (logs, OTLP/JSON lines,
// console). It appends to a caller-owned std::string, so a whole line is built without
// intermediate allocations. Strings are escaped per RFC 8259; bytes that are not valid
// UTF-8 are replaced with U+FFFD, so whatever a traced process sent, the line stays valid.
//
//   std::string out;
//   JsonWriter w(&out);
//   w.BeginObject(); w.Key("level"); w.String("info"); w.EndObject();
//
// The writer inserts commas itself; it does not check that keys and values alternate.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/utf8.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kspan {

// Appends `s` to `out` as the inside of a JSON string (no quotes).
void AppendJsonEscaped(std::string* out, std::string_view s);

// ---- Writing into reserved space: the span encoders' path ----
//
// An encoder that knows an upper bound of what it is about to write reserves that much
// (WriteBuffer::Room) and writes through a raw cursor, with no capacity check per
// fragment; strings are bounded by kJsonEscapeMaxExpansion bytes per input byte.

// The most bytes escaping writes for one input byte: a control byte becomes \u00XX.
// (An invalid UTF-8 byte becomes U+FFFD, 3 bytes; valid UTF-8 is copied.)
inline constexpr size_t kJsonEscapeMaxExpansion = 6;

namespace json_internal {

// Bytes the escaper does not copy as they are: controls, DEL, '"', '\\', non-ASCII.
constexpr bool IsSlowByte(unsigned char c) {
  return c < 0x20 || c >= 0x7F || c == '"' || c == '\\';
}

#if defined(__SSE2__)
// 0xFF in each byte of v that IsSlowByte. Compared signed, controls and non-ASCII bytes
// are both below 0x20.
inline __m128i SlowBytes(__m128i v) {
  return _mm_or_si128(
      _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F))),
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
}
#endif

// Whether any of s[0, n) IsSlowByte. Short text (most attribute values) is read as two
// overlapping words, so any length is one or two vector compares.
[[gnu::always_inline]] inline bool AnySlowByte(const char* s, size_t n) {
#if defined(__SSE2__)
  __m128i slow;
  if (n >= 16) {
    // The last 16 bytes, then the rest 16 at a time (once for n <= 32, most keys).
    slow = SlowBytes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + n - 16)));
    slow = _mm_or_si128(slow, SlowBytes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s))));
    for (size_t i = 16; i + 16 < n; i += 16)
      slow = _mm_or_si128(slow, SlowBytes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  } else if (n >= 8) {
    int64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    slow = SlowBytes(_mm_set_epi64x(b, a));
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    slow = SlowBytes(_mm_set1_epi64x(static_cast<int64_t>(a | uint64_t{b} << 32)));
  } else {
    for (size_t i = 0; i < n; ++i) {
      if (IsSlowByte(static_cast<unsigned char>(s[i]))) return true;
    }
    return false;
  }
  return _mm_movemask_epi8(slow) != 0;
#else
  for (size_t i = 0; i < n; ++i) {
    if (IsSlowByte(static_cast<unsigned char>(s[i]))) return true;
  }
  return false;
#endif
}

// WriteJsonEscaped for text that has a slow byte.
char* WriteEscapedSlow(char* p, std::string_view s);

}  // namespace json_internal

// Copies `s` to `p` and returns the end. Short text goes as overlapping words: a few
// moves rather than a call to memcpy (most span strings are under 32 bytes).
[[gnu::always_inline]] inline char* CopyBytes(char* p, std::string_view s) {
  const char* in = s.data();
  const size_t n = s.size();
  if (n > 32) {
    std::memcpy(p, in, n);
  } else if (n >= 16) {
    std::memcpy(p, in, 16);
    std::memcpy(p + n - 16, in + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(p, in, 8);
    std::memcpy(p + n - 8, in + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(p, in, 4);
    std::memcpy(p + n - 4, in + n - 4, 4);
  } else if (n > 0) {
    p[0] = in[0];
    p[n / 2] = in[n / 2];
    p[n - 1] = in[n - 1];
  }
  return p + n;
}

// What AppendJsonEscaped appends, written at `p`, which must have room for
// kJsonEscapeMaxExpansion * s.size() bytes. Writes nothing past the escaped text; returns
// its end. Inline: clean text (nearly all of it) is one check and one copy.
[[gnu::always_inline]] inline char* WriteJsonEscaped(char* p, std::string_view s) {
  const char* in = s.data();
  const size_t n = s.size();
  if (json_internal::AnySlowByte(in, n)) return json_internal::WriteEscapedSlow(p, s);
  return CopyBytes(p, s);
}

// A growable byte buffer written through raw pointers. Unlike std::string it never
// zero-fills the room it hands out, so reserving an upper bound costs nothing but the
// bytes then written. Not thread-safe; reuse one per writer to keep its capacity.
//
//   char* p = buf.Room(bound);   // at least `bound` writable bytes at p
//   p = Write...(p, ...);        // write at most `bound` of them
//   buf.Commit(p);               // they are now part of view()
class WriteBuffer {
 public:
  WriteBuffer() = default;
  WriteBuffer(WriteBuffer&&) noexcept = default;
  WriteBuffer& operator=(WriteBuffer&&) noexcept = default;

  // Where the next `n` bytes go. Grows (geometrically, copying what was written) when
  // fewer than `n` are free. Invalidates earlier cursors.
  char* Room(size_t n) {
    if (capacity_ - size_ < n) Grow(n);
    limit_ = size_ + n;
    return data_.get() + size_;
  }
  // Everything up to `end`, a cursor into the last Room's n bytes, is written.
  void Commit(const char* end);
  void Append(std::string_view s) {
    char* p = Room(s.size());
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    size_ += s.size();
  }
  // Forgets the content, keeps the memory.
  void Clear() { size_ = 0; }
  // Forgets the content and frees the memory.
  void Release();

  std::string_view view() const { return {data_.get(), size_}; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

 private:
  void Grow(size_t n);

  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t limit_ = 0;  // the end of the last Room: Commit checks the writer kept to it
};

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(std::string_view key);
  void String(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Double(double value);
  void Bool(bool value);
  void Null();
  // Appends already-serialised JSON as one value.
  void Raw(std::string_view json);

 private:
  void BeforeValue();

  std::string* out_;
  // One entry per open container: true once it holds an element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

}  // namespace kspan
