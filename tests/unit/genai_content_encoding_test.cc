#include <brotli/encode.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "genai/content_encoding.h"

namespace kspan::genai {
namespace {

using namespace std::string_view_literals;

// ---- Encoders: the real libraries, so the decoder reads what servers write ---------------

// An encoded body and, for each input piece, where its encoding ends: pieces are flushed
// one by one, as a server streaming events does, so each end is a point where all the
// pieces before it can be decoded.
struct Encoded {
  std::string bytes;
  std::vector<size_t> flushed_at;
};

// windowBits as zlib takes them: 15 + 16 gzip, 15 zlib, -15 raw deflate.
Encoded DeflateStream(const std::vector<std::string_view>& pieces, int window_bits,
                      int level = Z_DEFAULT_COMPRESSION) {
  Encoded e;
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const bool last = i + 1 == pieces.size();
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(pieces[i].data()));
    z.avail_in = static_cast<uInt>(pieces[i].size());
    int rc;
    do {
      char out[16384];
      z.next_out = reinterpret_cast<Bytef*>(out);
      z.avail_out = sizeof out;
      rc = deflate(&z, last ? Z_FINISH : Z_SYNC_FLUSH);
      e.bytes.append(out, sizeof out - z.avail_out);
    } while (z.avail_out == 0 || (last && rc != Z_STREAM_END));
    e.flushed_at.push_back(e.bytes.size());
  }
  deflateEnd(&z);
  return e;
}

Encoded BrotliStream(const std::vector<std::string_view>& pieces, int quality = 5, int lgwin = 22) {
  Encoded e;
  BrotliEncoderState* s = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
  BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, quality);
  BrotliEncoderSetParameter(s, BROTLI_PARAM_LGWIN, lgwin);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const BrotliEncoderOperation op =
        i + 1 == pieces.size() ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
    size_t avail_in = pieces[i].size();
    auto* next_in = reinterpret_cast<const uint8_t*>(pieces[i].data());
    do {
      uint8_t out[16384];
      size_t avail_out = sizeof out;
      uint8_t* next_out = out;
      EXPECT_TRUE(BrotliEncoderCompressStream(s, op, &avail_in, &next_in, &avail_out, &next_out, nullptr));
      e.bytes.append(reinterpret_cast<char*>(out), sizeof out - avail_out);
    } while (avail_in > 0 || BrotliEncoderHasMoreOutput(s) ||
             (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(s)));
    e.flushed_at.push_back(e.bytes.size());
  }
  BrotliEncoderDestroyInstance(s);
  return e;
}

std::string Gzip(std::string_view in) {
  return DeflateStream({in}, 15 + 16).bytes;
}
std::string Zlib(std::string_view in) {
  return DeflateStream({in}, 15).bytes;
}
std::string RawDeflate(std::string_view in) {
  return DeflateStream({in}, -15).bytes;
}
std::string Brotli(std::string_view in) {
  return BrotliStream({in}).bytes;
}

// ---- Bodies ---------------------------------------------------------------------------------

const std::string kChatCompletion = R"({
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [{"index": 0, "message": {"role": "assistant",
    "content": "Hello! How can I assist you today?", "refusal": null, "annotations": []},
    "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
  "service_tier": "default"
})";

// An Anthropic stream, one event a piece.
std::vector<std::string> SseEvents(int deltas) {
  std::vector<std::string> events = {
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"model\":"
      "\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"};
  for (int i = 0; i < deltas; ++i) {
    events.push_back(
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"word" +
        std::to_string(i * 7919 % 1000) + " \"}}\n\n");
  }
  events.push_back(
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
      "\"usage\":{\"output_tokens\":15}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  return events;
}

std::string Join(const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& p : pieces) out += p;
  return out;
}

// Bytes no encoder can shrink (a fixed xorshift sequence): deflate writes stored blocks,
// brotli uncompressed metablocks.
std::string Incompressible(size_t size) {
  std::string out(size, '\0');
  uint64_t x = 0x9E3779B97F4A7C15;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x >> 56);
  }
  return out;
}

// ---- Each coding, each body: whole, every prefix, capped ----------------------------------

struct Coding {
  const char* name;
  std::string_view header;
  std::string (*encode)(std::string_view);
};

struct Body {
  const char* name;
  std::string text;
};

// Tests print their parameters: the names say which case it is.
void PrintTo(const Coding& c, std::ostream* os) {
  *os << c.name;
}
void PrintTo(const Body& b, std::ostream* os) {
  *os << b.name;
}

const Coding kCodings[] = {
    {"gzip", "gzip", Gzip},
    {"x_gzip", "x-gzip", Gzip},
    {"deflate_zlib", "deflate", Zlib},
    {"deflate_raw", "deflate", RawDeflate},
    {"br", "br", Brotli},
};

const Body kBodies[] = {
    {"chat_completion", kChatCompletion},
    {"sse_stream", Join(SseEvents(300))},  // about 30 KiB: more than one 16 KiB buffer
    {"incompressible", Incompressible(70'000)},
    {"empty_text", ""},
};

class ContentEncodingTest : public testing::TestWithParam<std::tuple<Coding, Body>> {
 protected:
  const Coding& coding() const { return std::get<0>(GetParam()); }
  const std::string& text() const { return std::get<1>(GetParam()).text; }
};

TEST_P(ContentEncodingTest, RoundTrip) {
  const std::string encoded = coding().encode(text());
  const Decoded d = DecodeContentEncoding(coding().header, encoded, 1 << 20);
  EXPECT_TRUE(d.ok);
  EXPECT_FALSE(d.truncated);
  EXPECT_EQ(d.body, text());
}

// Each prefix of the encoded body decodes, without an error, to a prefix of the text that
// grows with it; only the whole body is not truncated. Small bodies try every length;
// larger ones every length near the ends and about 600 spread between.
TEST_P(ContentEncodingTest, EveryPrefixDecodesToAPrefix) {
  const std::string encoded = coding().encode(text());
  const size_t stride = encoded.size() <= 4096 ? 1 : encoded.size() / 600;
  size_t last_size = 0;
  for (size_t n = 0; n <= encoded.size(); ++n) {
    if (n > 64 && n + 64 < encoded.size() && n % stride != 0) continue;
    const Decoded d = DecodeContentEncoding(coding().header, std::string_view(encoded).substr(0, n), 1 << 20);
    ASSERT_TRUE(d.ok) << "prefix " << n << " of " << encoded.size();
    ASSERT_EQ(d.truncated, n > 0 && n < encoded.size()) << "prefix " << n << " of " << encoded.size();
    ASSERT_LE(d.body.size(), text().size()) << "prefix " << n;
    ASSERT_EQ(d.body, text().substr(0, d.body.size())) << "prefix " << n;
    ASSERT_GE(d.body.size(), last_size) << "prefix " << n;
    last_size = d.body.size();
  }
  EXPECT_EQ(last_size, text().size());
}

TEST_P(ContentEncodingTest, OutputStopsAtMaxOut) {
  const std::string encoded = coding().encode(text());
  const size_t size = text().size();
  for (const size_t max_out : {size_t{0}, size_t{1}, size_t{100}, size / 2, size - 1, size, size + 1}) {
    if (max_out > size + 1) continue;  // size - 1 of an empty text
    const Decoded d = DecodeContentEncoding(coding().header, encoded, max_out);
    EXPECT_TRUE(d.ok) << "max_out " << max_out;
    EXPECT_EQ(d.truncated, max_out < size) << "max_out " << max_out;
    EXPECT_EQ(d.body, text().substr(0, max_out)) << "max_out " << max_out;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ContentEncodingTest,
                         testing::Combine(testing::ValuesIn(kCodings), testing::ValuesIn(kBodies)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) + "_" +
                                  std::get<1>(info.param).name;
                         });

// ---- Streams flushed per event ---------------------------------------------------------------

// A server streaming a compressed response flushes after each event: the bytes up to a
// flush decode to exactly the events before it, so a capture cut there loses nothing.
TEST(ContentEncodingStreamTest, FlushedPrefixesDecodeToTheirEvents) {
  const std::vector<std::string> events = SseEvents(20);
  const std::vector<std::string_view> pieces(events.begin(), events.end());
  const std::string text = Join(events);
  for (const auto& [header, encoded] :
       {std::pair{"gzip"sv, DeflateStream(pieces, 15 + 16)},
        std::pair{"deflate"sv, DeflateStream(pieces, 15)}, std::pair{"br"sv, BrotliStream(pieces)}}) {
    size_t text_end = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      text_end += events[i].size();
      const Decoded d =
          DecodeContentEncoding(header, encoded.bytes.substr(0, encoded.flushed_at[i]), 1 << 20);
      EXPECT_TRUE(d.ok) << header << " event " << i;
      EXPECT_EQ(d.truncated, i + 1 < events.size()) << header << " event " << i;
      EXPECT_EQ(d.body, text.substr(0, text_end)) << header << " event " << i;
    }
  }
}

// ---- Lists of codings --------------------------------------------------------------------------

TEST(ContentEncodingListTest, StackedCodingsAreUndoneLastFirst) {
  const std::string text = Join(SseEvents(50));
  const std::string gzip_then_br = Brotli(Gzip(text));
  Decoded d = DecodeContentEncoding("gzip, br", gzip_then_br, 1 << 20);
  EXPECT_TRUE(d.ok);
  EXPECT_FALSE(d.truncated);
  EXPECT_EQ(d.body, text);

  d = DecodeContentEncoding("deflate, gzip", Gzip(Zlib(text)), 1 << 20);
  EXPECT_TRUE(d.ok);
  EXPECT_EQ(d.body, text);

  // The same bytes in the wrong order: brotli cannot read a gzip header.
  d = DecodeContentEncoding("br, gzip", gzip_then_br, 1 << 20);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.body, "");
}

TEST(ContentEncodingListTest, StackedPrefixesDecodeToPrefixes) {
  const std::string text = Join(SseEvents(30));
  const std::string encoded = Brotli(Gzip(text));
  size_t last_size = 0;
  for (size_t n = 0; n <= encoded.size(); ++n) {
    const Decoded d = DecodeContentEncoding("gzip, br", std::string_view(encoded).substr(0, n), 1 << 20);
    ASSERT_TRUE(d.ok) << "prefix " << n;
    ASSERT_EQ(d.truncated, n > 0 && n < encoded.size()) << "prefix " << n;
    ASSERT_EQ(d.body, text.substr(0, d.body.size())) << "prefix " << n;
    ASSERT_GE(d.body.size(), last_size) << "prefix " << n;
    last_size = d.body.size();
  }
  EXPECT_EQ(last_size, text.size());
}

TEST(ContentEncodingListTest, StackedOutputStopsAtMaxOut) {
  const std::string text = Join(SseEvents(50));
  const Decoded d = DecodeContentEncoding("gzip, br", Brotli(Gzip(text)), 1000);
  EXPECT_TRUE(d.ok);
  EXPECT_TRUE(d.truncated);
  EXPECT_EQ(d.body, text.substr(0, 1000));
}

// An inner stream that decodes to nothing (empty stored blocks, 5 bytes each) squeezed by
// the outer coding: the outer one stops at its cap instead of inflating it all.
TEST(ContentEncodingListTest, InnerStreamOfNothingStopsAtTheInnerCap) {
  std::string empty_blocks;
  for (int i = 0; i < 400'000; ++i) empty_blocks += "\x00\x00\x00\xff\xff"sv;  // 2 MB
  const Decoded d = DecodeContentEncoding("deflate, gzip", Gzip(empty_blocks), 1000);
  EXPECT_TRUE(d.ok);
  EXPECT_TRUE(d.truncated);
  EXPECT_EQ(d.body, "");
}

TEST(ContentEncodingListTest, NamesAreCaseInsensitiveWithSpacesAndEmptyElements) {
  const std::string gz = Gzip(kChatCompletion);
  for (const std::string_view header : {"GZIP"sv, "Gzip"sv, "X-GZip"sv, " gzip "sv, "\tgzip\t"sv, ", gzip,"sv,
                                        "identity, gzip"sv, "gzip, IDENTITY"sv}) {
    const Decoded d = DecodeContentEncoding(header, gz, 1 << 20);
    EXPECT_TRUE(d.ok) << header;
    EXPECT_EQ(d.body, kChatCompletion) << header;
  }
  for (const auto& [header, encoded] :
       {std::pair{"BR"sv, Brotli(kChatCompletion)}, std::pair{"DeFlate"sv, Zlib(kChatCompletion)},
        std::pair{" Gzip ,\t bR "sv, Brotli(gz)}, std::pair{"gzip,,br"sv, Brotli(gz)}}) {
    const Decoded d = DecodeContentEncoding(header, encoded, 1 << 20);
    EXPECT_TRUE(d.ok) << header;
    EXPECT_EQ(d.body, kChatCompletion) << header;
  }
}

TEST(ContentEncodingListTest, IdentityAndEmptyKeepTheBytes) {
  for (const std::string_view header : {""sv, "identity"sv, " Identity "sv, ","sv, "identity, identity"sv}) {
    Decoded d = DecodeContentEncoding(header, "hello", 100);
    EXPECT_TRUE(d.ok) << header;
    EXPECT_FALSE(d.truncated) << header;
    EXPECT_EQ(d.body, "hello") << header;
    d = DecodeContentEncoding(header, "hello", 3);
    EXPECT_TRUE(d.ok) << header;
    EXPECT_TRUE(d.truncated) << header;
    EXPECT_EQ(d.body, "hel") << header;
  }
}

TEST(ContentEncodingListTest, UnknownCodingsAreNotOk) {
  const std::string gz = Gzip(kChatCompletion);
  for (const std::string_view header :
       {"zstd"sv, "compress"sv, "x-compress"sv, "gzip, zstd"sv, "zstd, gzip"sv, "dcb"sv, "aes128gcm"sv,
        "gzip;q=1"sv, "g zip"sv, "gzipx"sv}) {
    const Decoded d = DecodeContentEncoding(header, gz, 1 << 20);
    EXPECT_FALSE(d.ok) << header;
    EXPECT_FALSE(d.truncated) << header;
    EXPECT_EQ(d.body, "") << header;
  }
  EXPECT_FALSE(DecodeContentEncoding("zstd", "", 100).ok);
}

TEST(ContentEncodingListTest, AtMostMaxCodings) {
  std::string encoded(kChatCompletion);
  std::string header;
  for (size_t i = 0; i < kMaxContentCodings; ++i) {
    encoded = Gzip(encoded);
    header += i == 0 ? "gzip" : ", gzip";
  }
  Decoded d = DecodeContentEncoding(header + ", identity", encoded, 1 << 20);
  EXPECT_TRUE(d.ok);
  EXPECT_EQ(d.body, kChatCompletion);

  d = DecodeContentEncoding(header + ", gzip", Gzip(encoded), 1 << 20);
  EXPECT_FALSE(d.ok);
}

// ---- Bodies that are not what the header says, and the odd valid one -------------------------

TEST(ContentEncodingDataTest, EmptyBodyIsEmptyAndComplete) {
  for (const std::string_view header : {"gzip"sv, "deflate"sv, "br"sv, "gzip, br"sv}) {
    const Decoded d = DecodeContentEncoding(header, "", 100);
    EXPECT_TRUE(d.ok) << header;
    EXPECT_FALSE(d.truncated) << header;
    EXPECT_EQ(d.body, "") << header;
  }
}

TEST(ContentEncodingDataTest, GarbageIsNotOk) {
  const std::string gz = Gzip(kChatCompletion);
  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 6] ^= 0x01;  // the CRC-32 is the trailer's first 4 of 8 bytes
  std::string bad_size = gz;
  bad_size[bad_size.size() - 1] ^= 0x01;  // ISIZE, the input's length
  std::string bad_adler = Zlib(kChatCompletion);
  bad_adler.back() ^= 0x01;
  const std::pair<std::string_view, std::string> cases[] = {
      {"gzip", std::string(kChatCompletion)},        // not compressed at all
      {"gzip", std::string("\x1f\x8b\x09\x00", 4)},  // a compression method that is not deflate
      {"gzip", bad_crc},
      {"gzip", bad_size},
      {"deflate", bad_adler},
      {"deflate", "\xff\xff\xff\xff"},                          // raw deflate, block type 3: reserved
      {"deflate", std::string("\x78\xbb\x00\x00\x00\x01", 6)},  // a zlib header asking for a dictionary
      {"br", std::string(kChatCompletion)},
      {"br", "\xff\xff\xff\xff\xff\xff\xff\xff"},
      {"gzip", Zlib(kChatCompletion)},  // the wrong wrapper
      {"br", gz},
  };
  for (const auto& [header, body] : cases) {
    const Decoded d = DecodeContentEncoding(header, body, 1 << 20);
    EXPECT_FALSE(d.ok) << header << " " << testing::PrintToString(body.substr(0, 16));
    EXPECT_EQ(d.body, "") << header;
  }
}

TEST(ContentEncodingDataTest, GzipMembersAreJoined) {
  const Decoded d = DecodeContentEncoding("gzip", Gzip("hello, ") + Gzip("world"), 100);
  EXPECT_TRUE(d.ok);
  EXPECT_FALSE(d.truncated);
  EXPECT_EQ(d.body, "hello, world");
}

TEST(ContentEncodingDataTest, BytesAfterTheEndAreIgnored) {
  for (const auto& [header, encoded] :
       {std::pair{"gzip"sv, Gzip(kChatCompletion)}, std::pair{"deflate"sv, Zlib(kChatCompletion)},
        std::pair{"deflate"sv, RawDeflate(kChatCompletion)}, std::pair{"br"sv, Brotli(kChatCompletion)}}) {
    const Decoded d = DecodeContentEncoding(header, encoded + "\r\n0\r\n\r\n", 1 << 20);
    EXPECT_TRUE(d.ok) << header;
    EXPECT_FALSE(d.truncated) << header;
    EXPECT_EQ(d.body, kChatCompletion) << header;
  }
}

// Output that ends near a multiple of the decoder's buffer: zlib may have read all the
// input and still hold output (and the end of the stream) for the next call.
TEST(ContentEncodingDataTest, OutputPendingAfterTheLastInputByte) {
  for (const size_t buffers : {1, 2, 3}) {
    for (const int delta : {-100, -1, 0, 1, 100}) {
      const std::string zeros(buffers * 16384 + delta, '\0');
      for (const auto& [header, encoded] :
           {std::pair{"deflate"sv, RawDeflate(zeros)}, std::pair{"deflate"sv, Zlib(zeros)},
            std::pair{"gzip"sv, Gzip(zeros)}, std::pair{"br"sv, Brotli(zeros)}}) {
        const Decoded d = DecodeContentEncoding(header, encoded, 1 << 20);
        EXPECT_TRUE(d.ok) << header << " " << zeros.size();
        EXPECT_FALSE(d.truncated) << header << " " << zeros.size();
        EXPECT_EQ(d.body, zeros) << header << " " << zeros.size();
      }
    }
  }
}

TEST(ContentEncodingDataTest, BrotliLargestStandardWindow) {
  const std::string text = Join(SseEvents(100));
  const Decoded d = DecodeContentEncoding("br", BrotliStream({text}, 11, 24).bytes, 1 << 20);
  EXPECT_TRUE(d.ok);
  EXPECT_EQ(d.body, text);
}

// 8 MiB of zeros squeeze to a few KiB; the decoder stops at max_out.
TEST(ContentEncodingDataTest, ZipBombStopsAtMaxOut) {
  const std::string zeros(8 << 20, '\0');
  for (const auto& [header, encoded] :
       {std::pair{"gzip"sv, DeflateStream({zeros}, 15 + 16, 9).bytes},
        std::pair{"br"sv, BrotliStream({zeros}, 1).bytes}, std::pair{"gzip, gzip"sv, Gzip(Gzip(zeros))}}) {
    ASSERT_LT(encoded.size(), 64u << 10) << header;
    const Decoded d = DecodeContentEncoding(header, encoded, 100'000);
    EXPECT_TRUE(d.ok) << header;
    EXPECT_TRUE(d.truncated) << header;
    EXPECT_EQ(d.body, zeros.substr(0, 100'000)) << header;
  }
}

}  // namespace
}  // namespace kspan::genai
