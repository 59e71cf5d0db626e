// The reserved-space writers of common/json.h: WriteJsonEscaped against a byte-at-a-time
// model of the escaping rules at every length and position the word-wise fast path
// distinguishes, and WriteBuffer's contract.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace kspan {
namespace {

// The escaping rules one byte at a time (RFC 8259; invalid UTF-8 becomes U+FFFD).
std::string ModelEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      out += n == 0 ? std::string("\xEF\xBF\xBD") : std::string(s.substr(i, n));
      i += n == 0 ? 1 : n;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out;
}

// WriteJsonEscaped into exactly the room it may use, with guard bytes after it.
std::string Written(std::string_view s) {
  const size_t room = kJsonEscapeMaxExpansion * s.size();
  std::vector<char> buf(room + 16, '#');
  char* end = WriteJsonEscaped(buf.data(), s);
  EXPECT_LE(static_cast<size_t>(end - buf.data()), room) << "past its room: " << s;
  for (size_t i = static_cast<size_t>(end - buf.data()); i < buf.size(); ++i) {
    EXPECT_EQ(buf[i], '#') << "wrote past the escaped text at " << i << ": " << s;
  }
  return std::string(buf.data(), end);
}

TEST(WriteJsonEscaped, EveryLengthAndPositionMatchesTheRules) {
  // Lengths around the 4-, 8- and 16-byte word paths; one byte of each kind at every
  // position, including the overlap of the two words.
  const std::vector<std::string> specials = {"\"",   "\\",   "\n",       "\x01",         "\x1f",
                                             "\x7f", "\xff", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                             "\xc3", " ",    "~"};
  for (size_t len = 0; len <= 40; ++len) {
    const std::string clean(len, 'a');
    ASSERT_EQ(Written(clean), clean);
    for (size_t pos = 0; pos < len; ++pos) {
      for (const std::string& sp : specials) {
        std::string s = clean;
        s.replace(pos, 1, sp);
        ASSERT_EQ(Written(s), ModelEscape(s)) << "len " << len << " pos " << pos;
      }
    }
  }
}

TEST(WriteJsonEscaped, WorstCaseFillsItsRoomExactly) {
  const std::string controls(33, '\x02');
  EXPECT_EQ(Written(controls).size(), kJsonEscapeMaxExpansion * controls.size());
}

TEST(WriteJsonEscaped, AppendJsonEscapedWritesTheSame) {
  for (const std::string s : {std::string(""), std::string("plain text over sixteen bytes"),
                              std::string("tab\there \"q\" \xff \xe2\x82\xac", 21)}) {
    std::string appended = "pre";
    AppendJsonEscaped(&appended, s);
    EXPECT_EQ(appended, "pre" + ModelEscape(s));
    EXPECT_EQ(Written(s), ModelEscape(s));
  }
}

TEST(WriteBuffer, RoomCommitAppend) {
  WriteBuffer b;
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.view(), "");
  char* p = b.Room(5);
  std::memcpy(p, "abc", 3);
  b.Commit(p + 3);  // less than the room asked for
  b.Append("def");
  EXPECT_EQ(b.view(), "abcdef");
  b.Append("");
  EXPECT_EQ(b.size(), 6u);
}

TEST(WriteBuffer, GrowingKeepsTheContent) {
  WriteBuffer b;
  std::string want;
  for (int i = 0; i < 2000; ++i) {
    const std::string piece = std::to_string(i) + ",";
    char* p = b.Room(piece.size() + 100 * (i % 7));  // rooms larger than what is written
    std::memcpy(p, piece.data(), piece.size());
    b.Commit(p + piece.size());
    want += piece;
  }
  EXPECT_EQ(b.view(), want);
  EXPECT_GE(b.capacity(), want.size());
}

TEST(WriteBuffer, ClearKeepsTheMemoryReleaseFreesIt) {
  WriteBuffer b;
  b.Append(std::string(10000, 'x'));
  const size_t capacity = b.capacity();
  b.Clear();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), capacity);
  b.Append("y");
  EXPECT_EQ(b.view(), "y");
  b.Release();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), 0u);
  b.Append("z");
  EXPECT_EQ(b.view(), "z");
}

TEST(WriteBuffer, Moves) {
  WriteBuffer a;
  a.Append("moved");
  WriteBuffer b = std::move(a);
  EXPECT_EQ(b.view(), "moved");
}

}  // namespace
}  // namespace kspan
