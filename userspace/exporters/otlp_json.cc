#include "exporters/otlp_json.h"

#include <kspan/version.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "exporters/span_groups.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kspan::exporters {
namespace {

// One pass straight into the output: the structure is fixed, so keys and punctuation are
// literal fragments and commas are placed by the code's shape, not tracked per container.
// Each span (and each resource) first reserves an upper bound of its encoded size, then is
// written through a raw cursor: no fragment checks capacity or grows the string. Only
// text from spans goes through the escaper.
//
// The bounds: a string takes at most kJsonEscapeMaxExpansion bytes per input byte plus
// its quotes; every other byte is a literal key or punctuation, or a number at most 24
// characters wide (uint64 is 20 digits; int64 is 20 with its sign; "%.17g" is at most 24,
// "-1.2345678901234567e-308"). The constants below are those literals and numbers counted
// at their widest, rounded up; kSlack covers the 8-byte stores of the digit writer, which
// may run up to 7 bytes past a number's last digit.

constexpr size_t kEscape = kJsonEscapeMaxExpansion;
constexpr size_t kSlack = 16;
// {"traceId":"<32>","spanId":"<16>","traceState":"","parentSpanId":"<16>","flags":<3>,
// "name":"","kind":<11>,"startTimeUnixNano":"<20>","endTimeUnixNano":"<20>","events":[],
// "links":[],"status":{"code":<11>,"message":""}} and a comma: 316 bytes.
constexpr size_t kSpanFixed = 384;
// ,{"key":"","value":{"doubleValue":<24>}}: 60, the widest (an array's frame is 48).
constexpr size_t kAttributeFixed = 64;
// ,{"stringValue":""}: 19.
constexpr size_t kArrayElementFixed = 24;
// ,"attributes":[]: 16.
constexpr size_t kAttributesFixed = 16;
// ,{"timeUnixNano":"<20>","name":""}: 50.
constexpr size_t kEventFixed = 64;
// ,{"traceId":"<32>","spanId":"<16>","traceState":""}: 91.
constexpr size_t kLinkFixed = 96;
// ,{"resource":{}: 15, and the group's closing ]}]}: 4 (the closing goes in a Room of its own).
constexpr size_t kGroupFixed = 32;

// A literal fragment: a fixed-size copy, so the compiler emits moves.
template <size_t N>
inline char* Lit(char* p, const char (&s)[N]) {
  std::memcpy(p, s, N - 1);
  return p + N - 1;
}

inline char* Bytes(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// Lowercase hex of `bytes` (8 or 16 of them) in quotes.
template <size_t N>
inline char* QuotedHex(char* p, const std::array<uint8_t, N>& bytes) {
  static_assert(N == 8 || N == 16);
  *p++ = '"';
#if defined(__SSE2__)
  // Each byte's two nibbles side by side, then '0' + n, plus 'a' - '0' - 10 where n > 9.
  const __m128i nibble = _mm_set1_epi8(0x0F), nine = _mm_set1_epi8(9), zero = _mm_set1_epi8('0'),
                letters = _mm_set1_epi8('a' - '0' - 10);
  const auto ascii = [&](__m128i n) {
    return _mm_add_epi8(_mm_add_epi8(n, zero), _mm_and_si128(_mm_cmpgt_epi8(n, nine), letters));
  };
  const __m128i v = N == 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes.data()))
                            : _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes.data()));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), nibble), lo = _mm_and_si128(v, nibble);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), ascii(_mm_unpacklo_epi8(hi, lo)));
  if constexpr (N == 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 16), ascii(_mm_unpackhi_epi8(hi, lo)));
  p += 2 * N;
#else
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < N; ++i) {
    *p++ = kHex[bytes[i] >> 4];
    *p++ = kHex[bytes[i] & 0xF];
  }
#endif
  *p++ = '"';
  return p;
}

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
// The eight decimal digits of x < 10^8, leading zeros included, as byte values 0-9 with
// the most significant digit in the lowest byte: split in lanes (4+4, then 2+2 per lane,
// then 1+1), each split a multiply and shift that is exact in its range (x * 10486 >> 20
// is x / 100 for x < 10^4; x * 103 >> 10 is x / 10 for x < 100).
inline uint64_t EightDigits(uint32_t x) {
  uint64_t v = (x / 10000) | (uint64_t{x % 10000} << 32);
  uint64_t q = ((v * 10486) >> 20) & 0x0000007F0000007FULL;
  v = q | ((v - q * 100) << 16);
  q = ((v * 103) >> 10) & 0x000F000F000F000FULL;
  return q | ((v - q * 10) << 8);
}

inline void Store8(char* p, uint64_t digits) {
  digits |= 0x3030303030303030ULL;
  std::memcpy(p, &digits, 8);
}

// x < 10^8 without leading zeros. Stores 8 bytes whatever the length.
inline char* Under1e8(char* p, uint32_t x) {
  if (x == 0) {
    *p = '0';
    return p + 1;
  }
  const uint64_t d = EightDigits(x);
  const int zeros = __builtin_ctzll(d) / 8;  // leading zero digits sit in the low bytes
  Store8(p, d >> (8 * zeros));
  return p + 8 - zeros;
}

// An unsigned integer in decimal, as std::to_chars writes it. May store up to 7 bytes
// past the last digit.
inline char* Decimal(char* p, uint64_t v) {
  if (v < 100'000'000) return Under1e8(p, static_cast<uint32_t>(v));
  if (v < 10'000'000'000'000'000ULL) {
    p = Under1e8(p, static_cast<uint32_t>(v / 100'000'000));
    Store8(p, EightDigits(static_cast<uint32_t>(v % 100'000'000)));
    return p + 8;
  }
  const uint64_t low16 = v % 10'000'000'000'000'000ULL;  // a timestamp's path: 19 digits
  p = Under1e8(p, static_cast<uint32_t>(v / 10'000'000'000'000'000ULL));
  Store8(p, EightDigits(static_cast<uint32_t>(low16 / 100'000'000)));
  Store8(p + 8, EightDigits(static_cast<uint32_t>(low16 % 100'000'000)));
  return p + 16;
}
#else
inline char* Decimal(char* p, uint64_t v) {
  return std::to_chars(p, p + 20, v).ptr;
}
#endif

inline char* Decimal(char* p, int64_t v) {
  if (v >= 0) return Decimal(p, static_cast<uint64_t>(v));
  *p++ = '-';
  return Decimal(p, uint64_t{0} - static_cast<uint64_t>(v));
}

// A 64-bit integer as proto3 JSON maps it: a decimal string.
template <typename T>
inline char* QuotedDecimal(char* p, T v) {
  *p++ = '"';
  p = Decimal(p, v);
  *p++ = '"';
  return p;
}

// A JSON string from arbitrary text: escaped, invalid UTF-8 replaced (common/json.h).
inline char* String(char* p, std::string_view s) {
  *p++ = '"';
  p = WriteJsonEscaped(p, s);
  *p++ = '"';
  return p;
}

size_t AttributesBound(const std::vector<model::Attribute>& attributes) {
  size_t n = kAttributesFixed;
  for (const model::Attribute& a : attributes) {
    n += kAttributeFixed + kEscape * std::string_view(a.key).size();
    if (const auto* s = std::get_if<std::string>(&a.value)) {
      n += kEscape * s->size();
    } else if (const auto* arr = std::get_if<model::StringArray>(&a.value)) {
      for (const std::string& e : *arr) n += kArrayElementFixed + kEscape * e.size();
    }
  }
  return n;
}

// The most bytes AppendSpan writes for `span`, kSlack included.
size_t SpanBound(const model::Span& span) {
  size_t n = kSpanFixed + kSlack +
             kEscape * (span.trace_state.size() + span.name.size() + span.status_message.size());
  if (!span.attributes.empty()) n += AttributesBound(span.attributes);
  for (const model::SpanEvent& e : span.events)
    n += kEventFixed + kEscape * e.name.size() + AttributesBound(e.attributes);
  for (const model::SpanLink& l : span.links)
    n += kLinkFixed + kEscape * l.trace_state.size() + AttributesBound(l.attributes);
  return n;
}

// An AnyValue object without its closing brace, so the caller closes it together with
// whatever encloses it.
char* OpenAnyValue(char* p, const model::AttributeValue& value) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    p = Lit(p, R"({"stringValue":")");
    p = WriteJsonEscaped(p, *s);
    *p++ = '"';
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    p = Lit(p, R"({"intValue":)");
    p = QuotedDecimal(p, *i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    p = Lit(p, R"({"doubleValue":)");
    if (std::isnan(*d)) {
      p = Lit(p, R"("NaN")");
    } else if (std::isinf(*d)) {
      p = *d > 0 ? Lit(p, R"("Infinity")") : Lit(p, R"("-Infinity")");
    } else {
      // What "%.17g" prints (std::to_chars with a precision is specified as printf's).
      p = std::to_chars(p, p + 32, *d, std::chars_format::general, 17).ptr;
    }
  } else if (const auto* b = std::get_if<bool>(&value)) {
    p = *b ? Lit(p, R"({"boolValue":true)") : Lit(p, R"({"boolValue":false)");
  } else if (const auto* arr = std::get_if<model::StringArray>(&value)) {
    p = Lit(p, R"({"arrayValue":{"values":[)");
    for (size_t k = 0; k < arr->size(); ++k) {
      p = k > 0 ? Lit(p, R"(,{"stringValue":")") : Lit(p, R"({"stringValue":")");
      p = WriteJsonEscaped(p, (*arr)[k]);
      p = Lit(p, R"("})");
    }
    p = Lit(p, "]}");
  } else {
    *p++ = '{';
  }
  return p;
}

// "attributes":[{"key":…,"value":{…}},…]; the caller omits it when empty.
char* Attributes(char* p, const std::vector<model::Attribute>& attributes) {
  p = Lit(p, R"("attributes":[)");
  for (size_t k = 0; k < attributes.size(); ++k) {
    p = k > 0 ? Lit(p, R"(,{"key":")") : Lit(p, R"({"key":")");
    p = WriteJsonEscaped(p, attributes[k].key);
    p = Lit(p, R"(","value":)");
    p = OpenAnyValue(p, attributes[k].value);
    p = Lit(p, "}}");
  }
  *p++ = ']';
  return p;
}

// ,"attributes":[…] when there are any.
inline char* MoreAttributes(char* p, const std::vector<model::Attribute>& attributes) {
  if (attributes.empty()) return p;
  *p++ = ',';
  return Attributes(p, attributes);
}

char* Event(char* p, const model::SpanEvent& e) {
  p = Lit(p, R"({"timeUnixNano":)");
  p = QuotedDecimal(p, e.time_unix_nano);
  p = Lit(p, R"(,"name":)");
  p = String(p, e.name);
  p = MoreAttributes(p, e.attributes);
  *p++ = '}';
  return p;
}

// {"traceId":…,"spanId":…[,"traceState":…]: how a Span and a Link start.
char* OpenWithIds(char* p, const model::TraceId& trace_id, const model::SpanId& span_id,
                  const std::string& trace_state) {
  p = Lit(p, R"({"traceId":)");
  p = QuotedHex(p, trace_id.bytes);
  p = Lit(p, R"(,"spanId":)");
  p = QuotedHex(p, span_id.bytes);
  if (!trace_state.empty()) {
    p = Lit(p, R"(,"traceState":)");
    p = String(p, trace_state);
  }
  return p;
}

char* Link(char* p, const model::SpanLink& l) {
  p = OpenWithIds(p, l.trace_id, l.span_id, l.trace_state);
  p = MoreAttributes(p, l.attributes);
  *p++ = '}';
  return p;
}

// Writes one Span object; `p` has room for SpanBound(span) bytes.
char* SpanObject(char* p, const model::Span& span) {
  p = OpenWithIds(p, span.trace_id, span.span_id, span.trace_state);
  if (span.parent_span_id.IsValid()) {
    p = Lit(p, R"(,"parentSpanId":)");
    p = QuotedHex(p, span.parent_span_id.bytes);
  }
  // Bits 0-7: the W3C trace flags. Bits 8-9 (parent is remote) stay 0, "unknown": the
  // model does not record where the parent ran.
  p = Lit(p, R"(,"flags":)");
  p = Decimal(p, uint64_t{span.trace_flags});
  p = Lit(p, R"(,"name":)");
  p = String(p, span.name);
  p = Lit(p, R"(,"kind":)");
  p = Decimal(p, int64_t{static_cast<int>(span.kind)});
  p = Lit(p, R"(,"startTimeUnixNano":)");
  p = QuotedDecimal(p, span.start_time_unix_nano);
  p = Lit(p, R"(,"endTimeUnixNano":)");
  p = QuotedDecimal(p, span.end_time_unix_nano);
  p = MoreAttributes(p, span.attributes);
  if (!span.events.empty()) {
    p = Lit(p, R"(,"events":[)");
    for (size_t k = 0; k < span.events.size(); ++k) {
      if (k > 0) *p++ = ',';
      p = Event(p, span.events[k]);
    }
    *p++ = ']';
  }
  if (!span.links.empty()) {
    p = Lit(p, R"(,"links":[)");
    for (size_t k = 0; k < span.links.size(); ++k) {
      if (k > 0) *p++ = ',';
      p = Link(p, span.links[k]);
    }
    *p++ = ']';
  }
  p = Lit(p, R"(,"status":{"code":)");
  p = Decimal(p, int64_t{static_cast<int>(span.status_code)});
  if (!span.status_message.empty()) {
    p = Lit(p, R"(,"message":)");
    p = String(p, span.status_message);
  }
  return Lit(p, "}}");
}

}  // namespace

void AppendSpanJson(const model::Span& span, std::string* out) {
  const size_t old = out->size();
  out->resize(old + SpanBound(span));
  char* end = SpanObject(out->data() + old, span);
  out->resize(static_cast<size_t>(end - out->data()));
}

void AppendTracesDataJson(std::span<const model::Span> spans, WriteBuffer* out) {
  const ResourceGroups groups = GroupByResource(spans);
  // The scope is the same in every group: escaped once.
  std::string scope = R"(,"scopeSpans":[{"scope":{"name":")";
  AppendJsonEscaped(&scope, model::kScopeName);
  scope += R"(","version":")";
  AppendJsonEscaped(&scope, KSPAN_VERSION);
  scope += R"("},"spans":[)";
  out->Append(R"({"resourceSpans":[)");
  for (size_t g = 0; g < groups.resources.size(); ++g) {
    const model::Resource* resource = groups.resources[g];
    const bool attributes = resource != nullptr && !resource->attributes.empty();
    char* p = out->Room(kGroupFixed + kSlack + scope.size() +
                        (attributes ? AttributesBound(resource->attributes) : 0));
    if (g > 0) *p++ = ',';
    p = Lit(p, R"({"resource":{)");
    if (attributes) p = Attributes(p, resource->attributes);
    *p++ = '}';
    out->Commit(Bytes(p, scope));
    for (uint32_t k = groups.start[g]; k < groups.start[g + 1]; ++k) {
      const model::Span& span = spans[groups.order[k]];
      p = out->Room(SpanBound(span));
      if (k > groups.start[g]) *p++ = ',';
      out->Commit(SpanObject(p, span));
    }
    out->Append("]}]}");
  }
  out->Append("]}");
}

void AppendTracesDataJson(std::span<const model::Span> spans, std::string* out) {
  WriteBuffer buffer;
  AppendTracesDataJson(spans, &buffer);
  out->append(buffer.view());
}

}  // namespace kspan::exporters
