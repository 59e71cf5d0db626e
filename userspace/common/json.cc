#include "common/json.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace kspan {

namespace {

// json_internal::IsSlowByte as a table, for the byte-at-a-time loops.
constexpr std::array<bool, 256> kSlowByte = [] {
  std::array<bool, 256> t{};
  for (int b = 0; b < 256; ++b) t[b] = json_internal::IsSlowByte(static_cast<unsigned char>(b));
  return t;
}();

// Length of the run at the start of s that needs no escape.
size_t PlainRun(std::string_view s) {
  size_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= s.size(); i += 16) {
    const int mask = _mm_movemask_epi8(
        json_internal::SlowBytes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i))));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < s.size() && !kSlowByte[static_cast<unsigned char>(s[i])]) ++i;
  return i;
}

}  // namespace

namespace json_internal {

// The general case, a byte at a time between plain runs. `p` has room for
// kJsonEscapeMaxExpansion * s.size() bytes.
char* WriteEscapedSlow(char* p, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < s.size()) {
    const size_t run = PlainRun(s.substr(i));
    std::memcpy(p, s.data() + i, run);
    p += run;
    i += run;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        std::memcpy(p, "\xEF\xBF\xBD", 3);  // U+FFFD
        p += 3;
        ++i;
      } else {
        std::memcpy(p, s.data() + i, n);
        p += n;
        i += n;
      }
      continue;
    }
    char e = 0;
    switch (c) {
      case '"': e = '"'; break;
      case '\\': e = '\\'; break;
      case '\n': e = 'n'; break;
      case '\r': e = 'r'; break;
      case '\t': e = 't'; break;
      case '\b': e = 'b'; break;
      case '\f': e = 'f'; break;
      default: break;
    }
    if (e != 0) {
      *p++ = '\\';
      *p++ = e;
    } else {  // the other controls and DEL: PlainRun stops only at those here
      std::memcpy(p, "\\u00", 4);
      p[4] = kHex[c >> 4];
      p[5] = kHex[c & 0xF];
      p += 6;
    }
    ++i;
  }
  return p;
}

}  // namespace json_internal

void AppendJsonEscaped(std::string* out, std::string_view s) {
  if (!json_internal::AnySlowByte(s.data(), s.size())) {
    out->append(s);
    return;
  }
  const size_t old = out->size();
  out->resize(old + kJsonEscapeMaxExpansion * s.size());
  char* end = json_internal::WriteEscapedSlow(out->data() + old, s);
  out->resize(static_cast<size_t>(end - out->data()));
}

void WriteBuffer::Commit(const char* end) {
  size_ = static_cast<size_t>(end - data_.get());
  assert(size_ <= limit_ && "wrote past the room reserved");
}

void WriteBuffer::Release() {
  data_.reset();
  size_ = capacity_ = limit_ = 0;
}

void WriteBuffer::Grow(size_t n) {
  const size_t capacity = std::max({size_ + n, 2 * capacity_, size_t{4096}});
  auto data = std::make_unique_for_overwrite<char[]>(capacity);
  if (size_ > 0) std::memcpy(data.get(), data_.get(), size_);
  data_ = std::move(data);
  capacity_ = capacity;
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_element_.empty()) {
    if (has_element_.back()) out_->push_back(',');
    has_element_.back() = true;
  }
}

void JsonWriter::BeginObject() {
  BeforeValue();
  out_->push_back('{');
  has_element_.push_back(false);
}

void JsonWriter::EndObject() {
  out_->push_back('}');
  has_element_.pop_back();
}

void JsonWriter::BeginArray() {
  BeforeValue();
  out_->push_back('[');
  has_element_.push_back(false);
}

void JsonWriter::EndArray() {
  out_->push_back(']');
  has_element_.pop_back();
}

void JsonWriter::Key(std::string_view key) {
  BeforeValue();
  out_->push_back('"');
  AppendJsonEscaped(out_, key);
  out_->append("\":");
  after_key_ = true;
}

void JsonWriter::String(std::string_view value) {
  BeforeValue();
  out_->push_back('"');
  AppendJsonEscaped(out_, value);
  out_->push_back('"');
}

void JsonWriter::Int(int64_t value) {
  BeforeValue();
  out_->append(std::to_string(value));
}

void JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  out_->append(std::to_string(value));
}

void JsonWriter::Double(double value) {
  BeforeValue();
  if (!std::isfinite(value)) {  // JSON has no NaN/Inf
    out_->append("null");
    return;
  }
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.17g", value);
  out_->append(buf, static_cast<size_t>(n));
}

void JsonWriter::Bool(bool value) {
  BeforeValue();
  out_->append(value ? "true" : "false");
}

void JsonWriter::Null() {
  BeforeValue();
  out_->append("null");
}

void JsonWriter::Raw(std::string_view json) {
  BeforeValue();
  out_->append(json);
}

}  // namespace kspan
