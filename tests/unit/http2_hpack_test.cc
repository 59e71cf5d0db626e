#include <gtest/gtest.h>

#include <string>

#include "http2_wire.h"
#include "protocols/http2/hpack.h"

namespace kspan::protocols::http2 {
namespace {

using testing::h2::Encoder;
using testing::h2::Fields;

Fields Decoded(const HpackDecoder::Block& b) {
  return Fields(b.fields.begin(), b.fields.end());
}

TEST(HpackDecoder, InStepDecodesWhatTheEncoderIndexed) {
  Encoder enc;
  HpackDecoder dec;
  const Fields f = {{":method", "POST"}, {":path", "/pkg.Svc/M"}, {"x-custom", "value-1"}};
  for (int i = 0; i < 3; ++i) {
    const HpackDecoder::Block b = dec.Decode(enc.Encode(f));
    EXPECT_FALSE(b.incomplete);
    EXPECT_EQ(Decoded(b), f);
  }
  EXPECT_TRUE(dec.table_known());
}

// RFC 7541 C.4.1–C.4.3: requests with Huffman coding, decoded by a decoder that lost the
// table before the first: static and literal fields come out, and so do references to
// entries inserted since the loss.
TEST(HpackDecoder, FailClosedDecodesLiteralsAndEntriesInsertedSinceTheLoss) {
  HpackDecoder dec;
  dec.Lose();
  const std::string c41 = "\x82\x86\x84\x41\x8c\xf1\xe3\xc2\xe5\xf2\x3a\x6b\xa0\xab\x90\xf4\xff";
  HpackDecoder::Block b = dec.Decode(c41);
  EXPECT_FALSE(b.incomplete);
  EXPECT_EQ(
      Decoded(b),
      (Fields{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"}}));
  // C.4.2 refers to index 62 (":authority: www.example.com", inserted by C.4.1).
  const std::string c42 = "\x82\x86\x84\xbe\x58\x86\xa8\xeb\x10\x64\x9c\xbf";
  b = dec.Decode(c42);
  EXPECT_FALSE(b.incomplete);
  EXPECT_EQ(Decoded(b), (Fields{{":method", "GET"},
                                {":scheme", "http"},
                                {":path", "/"},
                                {":authority", "www.example.com"},
                                {"cache-control", "no-cache"}}));
  EXPECT_FALSE(dec.table_known());
}

TEST(HpackDecoder, FailClosedNeverGuessesAnUnknownEntry) {
  Encoder enc;
  HpackDecoder in_step;
  const Fields f = {{":method", "POST"}, {":path", "/pkg.Svc/Secret"}, {"x-user", "alice"}};
  in_step.Decode(enc.Encode(f));
  // A decoder that joins now: the entries the first block inserted are unknown to it.
  HpackDecoder late;
  late.Lose();
  const HpackDecoder::Block b = late.Decode(enc.Encode(f));
  EXPECT_TRUE(b.incomplete);
  for (const auto& [n, v] : b.fields) {
    if (n == ":path") EXPECT_EQ(v, "/pkg.Svc/Secret");
    if (n == ":method") EXPECT_EQ(v, "POST");
    if (n == "x-user") EXPECT_EQ(v, "alice");
  }
}

TEST(HpackDecoder, AnInflaterErrorTurnsFailClosed) {
  HpackDecoder dec;
  // Index 70 does not exist in a fresh table: a decoding error.
  const HpackDecoder::Block b = dec.Decode("\x82\xc6");
  EXPECT_TRUE(b.inflater_failed);
  EXPECT_TRUE(b.incomplete);
  ASSERT_EQ(b.fields.size(), 1u);
  EXPECT_EQ(b.fields[0], (std::pair<std::string, std::string>{":method", "GET"}));
  EXPECT_FALSE(dec.table_known());
}

TEST(HpackDecoder, MalformedBlocksAreIncompleteNotFatal) {
  HpackDecoder dec;
  dec.Lose();
  for (std::string bad :
       {std::string("\x80"), std::string("\x7f\xff\xff\xff\xff\xff"), std::string("\x40\x85"),
        std::string("\x00\x03"
                    "ab",
                    4),
        std::string("\x3f")}) {
    const HpackDecoder::Block b = dec.Decode(bad);
    EXPECT_TRUE(b.incomplete) << ::testing::PrintToString(bad);
  }
}

}  // namespace
}  // namespace kspan::protocols::http2
