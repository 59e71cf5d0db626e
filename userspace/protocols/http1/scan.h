// Byte scanners for HTTP/1 heads (RFC 9110 §5.6.2, RFC 9112 §3, §5): where a token, a
// request-target or a run of text ends. Each returns the index of the first byte in
// s[from, end) that does not belong, or `end` when they all do (`from` when from >= end);
// no byte outside s[0, end) is read.
//
// With SSE2 they look at 16 bytes at a time; otherwise, and as the reference the tests
// compare against, a byte at a time (the *Bytewise functions).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kspan::protocols::http1::scan {

// tchar (RFC 9110 §5.6.2): the bytes of a token such as a field name.
constexpr bool IsTChar(unsigned c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c < 0x80 && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
// CTL (RFC 5234 B.1): 0x00-0x1F and DEL; HTAB is one (text allows it, the caller decides).
constexpr bool IsCtl(unsigned c) {
  return c < 0x20 || c == 0x7f;
}
// request-target bytes: visible ASCII, and obs-text (raw UTF-8, which some clients send).
constexpr bool IsTargetChar(unsigned c) {
  return c > 0x20 && c != 0x7f;
}

namespace internal {
template <bool (*F)(unsigned)>
constexpr std::array<bool, 256> Table() {
  std::array<bool, 256> t{};
  for (unsigned c = 0; c < 256; ++c) t[c] = F(c);
  return t;
}
inline constexpr auto kTChar = Table<IsTChar>();
inline constexpr auto kCtl = Table<IsCtl>();
inline constexpr auto kTargetChar = Table<IsTargetChar>();

inline unsigned U(char c) {
  return static_cast<unsigned char>(c);
}
}  // namespace internal

// ---- A byte at a time -------------------------------------------------------------------

inline size_t SkipTokenBytewise(const char* s, size_t from, size_t end) {
  while (from < end && internal::kTChar[internal::U(s[from])]) ++from;
  return from;
}
inline size_t FindCtlBytewise(const char* s, size_t from, size_t end) {
  while (from < end && !internal::kCtl[internal::U(s[from])]) ++from;
  return from;
}
inline size_t SkipTargetBytewise(const char* s, size_t from, size_t end) {
  while (from < end && internal::kTargetChar[internal::U(s[from])]) ++from;
  return from;
}

#if defined(__SSE2__)
namespace internal {

// 0xFF where lo <= v <= lo + n - 1 (unsigned; n <= 128): moved so the range starts at -128.
inline __m128i InRange(__m128i v, int lo, int n) {
  const __m128i moved = _mm_add_epi8(v, _mm_set1_epi8(static_cast<char>(0x80 - lo)));
  return _mm_cmplt_epi8(moved, _mm_set1_epi8(static_cast<char>(-128 + n)));
}

// Bit k set where byte k of v is not a letter, a digit or '-' (nearly every field name is
// only those, all tchar).
inline unsigned NotPlainNameBytes(__m128i v) {
  const __m128i letter = InRange(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 26);
  const __m128i digit = InRange(v, '0', 10);
  const __m128i dash = _mm_cmpeq_epi8(v, _mm_set1_epi8('-'));
  return ~static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), dash))) & 0xffff;
}

// Bit k set where byte k of v is <= `Max` (unsigned) or DEL.
template <char Max>
inline unsigned AtMostOrDel(__m128i v) {
  const __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(Max)), v);
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(low, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)))));
}

// The first index in [from, end) whose byte Stops marks, else end; `from` when from >= end.
// Whole blocks from `from`; the last piece as the block that ends at `end`, its bytes before
// the piece shifted out (no read outside [0, end)); a buffer shorter than a block, Bytewise.
template <unsigned (*Stops)(__m128i), size_t (*Bytewise)(const char*, size_t, size_t)>
[[gnu::always_inline]] inline size_t FirstStop(const char* s, size_t from, size_t end) {
  if (from >= end) return from;
  size_t i = from;
  for (; end - i >= 16; i += 16) {
    const unsigned stops = Stops(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    if (stops != 0) return i + static_cast<size_t>(__builtin_ctz(stops));
  }
  if (i == end) return end;
  if (end < 16) return Bytewise(s, i, end);
  const unsigned stops =
      Stops(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + end - 16))) >> (16 - (end - i));
  return stops != 0 ? i + static_cast<size_t>(__builtin_ctz(stops)) : end;
}

}  // namespace internal

[[gnu::always_inline]] inline size_t SkipToken(const char* s, size_t from, size_t end) {
  const size_t at = internal::FirstStop<internal::NotPlainNameBytes, SkipTokenBytewise>(s, from, end);
  // A tchar that is not a letter, digit or '-' ('_', '.', …): the rest byte by byte.
  return at < end && internal::kTChar[internal::U(s[at])] ? SkipTokenBytewise(s, at, end) : at;
}

[[gnu::always_inline]] inline size_t FindCtl(const char* s, size_t from, size_t end) {
  return internal::FirstStop<internal::AtMostOrDel<0x1f>, FindCtlBytewise>(s, from, end);
}

[[gnu::always_inline]] inline size_t SkipTarget(const char* s, size_t from, size_t end) {
  return internal::FirstStop<internal::AtMostOrDel<0x20>, SkipTargetBytewise>(s, from, end);
}
#else
inline size_t SkipToken(const char* s, size_t from, size_t end) {
  return SkipTokenBytewise(s, from, end);
}
inline size_t FindCtl(const char* s, size_t from, size_t end) {
  return FindCtlBytewise(s, from, end);
}
inline size_t SkipTarget(const char* s, size_t from, size_t end) {
  return SkipTargetBytewise(s, from, end);
}
#endif

}  // namespace kspan::protocols::http1::scan
