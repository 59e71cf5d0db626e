// The HTTP/1 head scanners (protocols/http1/scan.h): the block-at-a-time versions must find
// what the byte-at-a-time references find, at every offset, length and block boundary, and
// never read past `end`.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "protocols/http1/scan.h"

namespace kspan::protocols::http1::scan {
namespace {

using Scanner = size_t (*)(const char*, size_t, size_t);

struct Pair {
  const char* name;
  Scanner fast;
  Scanner reference;
};

const Pair kPairs[] = {
    {"SkipToken", SkipToken, SkipTokenBytewise},
    {"FindCtl", FindCtl, FindCtlBytewise},
    {"SkipTarget", SkipTarget, SkipTargetBytewise},
};

// Every (from, end) of `s`, the bytes after `end` poisoned with ones that would extend a
// run of any class (so reading past `end` changes the answer) and kept in a buffer exactly
// `end` long (so reading past it is caught by ASan).
void CheckAll(const std::string& s) {
  for (const Pair& p : kPairs) {
    for (size_t end = 0; end <= s.size(); ++end) {
      std::vector<char> exact(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(end));
      for (size_t from = 0; from <= end; ++from) {
        const size_t want = p.reference(exact.data(), from, end);
        ASSERT_EQ(p.fast(exact.data(), from, end), want)
            << p.name << " from " << from << " end " << end << " in \"" << s << '"';
        ASSERT_GE(want, from);
        ASSERT_LE(want, end);
      }
      // Past the end: nothing to scan.
      ASSERT_EQ(p.fast(exact.data(), end + 1, end), end + 1) << p.name;
    }
  }
}

TEST(Http1Scan, ClassesMatchTheGrammar) {
  for (unsigned c = 0; c < 256; ++c) {
    const bool letter_or_digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool punct =
        c != 0 && std::string("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string::npos;
    EXPECT_EQ(IsTChar(c), letter_or_digit || punct) << c;
    EXPECT_EQ(IsCtl(c), c <= 0x1f || c == 0x7f) << c;
    EXPECT_EQ(IsTargetChar(c), c >= 0x21 && c != 0x7f) << c;
  }
}

TEST(Http1Scan, EachByteValueAtEachPositionOfABlock) {
  // A run of plain bytes of each class, one byte of every value placed at every position
  // up to past the second block: the scanners stop there exactly when the class says so.
  for (const char* base :
       {"Content-Length-Content-Length-Content-Length", "value text value text value text val",
        "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u"}) {
    const std::string run(base);
    for (unsigned c = 0; c < 256; ++c) {
      for (size_t at = 0; at < run.size(); at += (at < 40 ? 1 : 7)) {
        std::string s = run;
        s[at] = static_cast<char>(c);
        for (const Pair& p : kPairs) {
          for (size_t from : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}}) {
            if (from > s.size()) continue;
            ASSERT_EQ(p.fast(s.data(), from, s.size()), p.reference(s.data(), from, s.size()))
                << p.name << " byte " << c << " at " << at << " from " << from;
          }
        }
      }
    }
  }
}

TEST(Http1Scan, HeadsWithEveryEdge) {
  // CRLF and bare LF line ends, obs-fold, NUL, DEL, 8-bit bytes, tabs, a colon right away,
  // names with tchar punctuation, and lines cut at every point.
  const char* heads[] = {
      "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n\r\n",
      "HTTP/1.1 200 OK\nServer: x\n\n",
      "X-Folded: first\r\n second line\r\n\tthird\r\n\r\n",
      "Del: a\x7f"
      "b\r\n\r\n",
      "Utf8: caf\xc3\xa9 \xe2\x82\xac\r\nRaw: \x80\x81\xfe\xff\r\n",
      "Tabs:\tvalue\twith\ttabs\t\r\n",
      ":empty-name\r\nx_y.z!#$%&'*+-^`|~: v\r\n",
      "Bad Name: v\r\nBad\"Quote: v\r\nBad(Paren): v\r\nBad/Slash: v\r\nBad@At: v\r\n",
      "GET /caf\xc3\xa9/\x7f HTTP/1.1\r\n",
      "\r\n\r\n\n\n",
  };
  for (const char* h : heads) {
    CheckAll(h);
  }
  CheckAll(std::string("Name: a\0b\r\nX: \0\0\0\r\n", 19));
}

TEST(Http1Scan, LongRunsUpToTheLimits) {
  // Runs of a class as long as a line may be (16 KiB) and a head (64 KiB), then the byte
  // that ends them; started at every offset within a block.
  for (size_t len : {size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{32}, size_t{33},
                     size_t{16 * 1024}, size_t{64 * 1024}}) {
    const std::string name(len, 'a'), value(len, 'v'), target(len, '/');
    for (size_t off = 0; off < 17; ++off) {
      const std::string n = std::string(off, 'x') + name + ":";
      EXPECT_EQ(SkipToken(n.data(), off, n.size()), off + len);
      EXPECT_EQ(SkipToken(n.data(), off, n.size() - 1), off + len);  // cut before the ':'
      const std::string v = std::string(off, ' ') + value + "\r\n";
      EXPECT_EQ(FindCtl(v.data(), off, v.size()), off + len);
      const std::string t = std::string(off, 'x') + target + " HTTP/1.1";
      EXPECT_EQ(SkipTarget(t.data(), off, t.size()), off + len);
    }
  }
}

TEST(Http1Scan, RandomBytesAgreeWithTheReference) {
  std::mt19937 rng(17);
  // Mostly bytes of each class, some of anything.
  constexpr char kCommon[] = "abcXYZ019-_.:; \t\r\n\x7f\x80\xff\0/?\"";
  const std::string common(kCommon, sizeof kCommon - 1);
  for (int round = 0; round < 300; ++round) {
    std::string s(rng() % 70, '\0');
    for (char& c : s) {
      c = rng() % 4 == 0 ? static_cast<char>(rng() % 256) : common[rng() % common.size()];
    }
    CheckAll(s);
  }
}

}  // namespace
}  // namespace kspan::protocols::http1::scan
