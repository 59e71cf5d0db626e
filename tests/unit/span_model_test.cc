// The span model: ids and W3C Trace Context `traceparent` parsing (W3C Trace Context
// Level 1 §3.2 and the forward-compatibility rules of §3.2.4; cases follow the W3C test
// suite, test/test.py, in our own words).
#include <gtest/gtest.h>

#include <array>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model/span.h"

namespace kspan::model {
namespace {

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kParent[] = "00f067aa0ba902b7";

std::string Tp(std::string_view version, std::string_view trace, std::string_view parent,
               std::string_view flags) {
  std::string s(version);
  s += '-';
  s += trace;
  s += '-';
  s += parent;
  s += '-';
  s += flags;
  return s;
}

// ---- valid ---------------------------------------------------------------------------

struct ValidCase {
  const char* name;
  std::string value;
  uint8_t flags;
};

class TraceParentValidTest : public testing::TestWithParam<ValidCase> {};

TEST_P(TraceParentValidTest, Parses) {
  const auto tp = ParseTraceParent(GetParam().value);
  ASSERT_TRUE(tp.has_value()) << GetParam().value;
  EXPECT_EQ(tp->trace_id.Hex(), kTrace);
  EXPECT_EQ(tp->parent_id.Hex(), kParent);
  EXPECT_EQ(tp->flags, GetParam().flags);
}

const ValidCase kValidCases[] = {
    {"sampled", Tp("00", kTrace, kParent, "01"), 0x01},
    {"not_sampled", Tp("00", kTrace, kParent, "00"), 0x00},
    // Unknown flag bits are kept as sent; a reader uses the ones it knows (§3.2.2.5).
    {"unknown_flags", Tp("00", kTrace, kParent, "ff"), 0xff},
    {"random_trace_id_flag", Tp("00", kTrace, kParent, "03"), 0x03},
    // Surrounding optional whitespace of the header value (RFC 9110 OWS).
    {"ows_around", " \t" + Tp("00", kTrace, kParent, "01") + " \t", 0x01},
    // A higher version is parsed as version 00 is (§3.2.4) ...
    {"future_version", Tp("cc", kTrace, kParent, "01"), 0x01},
    {"future_version_01", Tp("01", kTrace, kParent, "00"), 0x00},
    {"future_version_fe", Tp("fe", kTrace, kParent, "01"), 0x01},
    // ... and fields it adds after a '-' are ignored.
    {"future_version_more_fields", Tp("cc", kTrace, kParent, "01") + "-what-the-future-will-be-like", 0x01},
    {"future_version_trailing_dash", Tp("cc", kTrace, kParent, "01") + "-", 0x01},
};

INSTANTIATE_TEST_SUITE_P(Cases, TraceParentValidTest, testing::ValuesIn(kValidCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- invalid: every form the spec says to ignore --------------------------------------

struct InvalidCase {
  const char* name;
  std::string value;
};

class TraceParentInvalidTest : public testing::TestWithParam<InvalidCase> {};

TEST_P(TraceParentInvalidTest, Rejected) {
  EXPECT_FALSE(ParseTraceParent(GetParam().value).has_value()) << GetParam().value;
}

const InvalidCase kInvalidCases[] = {
    {"empty", ""},
    {"whitespace_only", "   "},
    // version
    {"version_ff", Tp("ff", kTrace, kParent, "01")},
    {"version_uppercase", Tp("0A", kTrace, kParent, "01")},
    {"version_non_hex", Tp("0g", kTrace, kParent, "01")},
    {"version_dot", Tp(".0", kTrace, kParent, "01")},
    {"version_one_char", Tp("0", kTrace, kParent, "01")},
    {"version_three_chars", Tp("000", kTrace, kParent, "01")},
    // trace-id
    {"trace_all_zero", Tp("00", "00000000000000000000000000000000", kParent, "01")},
    {"trace_uppercase", Tp("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kParent, "01")},
    {"trace_non_hex", Tp("00", "4bf92f3577b34da6a3ce929d0e0e473z", kParent, "01")},
    {"trace_dot", Tp("00", "4bf92f3577b34da6a3ce929d0e0e473.", kParent, "01")},
    {"trace_31", Tp("00", "4bf92f3577b34da6a3ce929d0e0e473", kParent, "01")},
    {"trace_33", Tp("00", "4bf92f3577b34da6a3ce929d0e0e47360", kParent, "01")},
    // parent-id
    {"parent_all_zero", Tp("00", kTrace, "0000000000000000", "01")},
    {"parent_uppercase", Tp("00", kTrace, "00F067AA0BA902B7", "01")},
    {"parent_non_hex", Tp("00", kTrace, "00f067aa0ba902bz", "01")},
    {"parent_15", Tp("00", kTrace, "00f067aa0ba902b", "01")},
    {"parent_17", Tp("00", kTrace, "00f067aa0ba902b70", "01")},
    // trace-flags
    {"flags_uppercase", Tp("00", kTrace, kParent, "0A")},
    {"flags_non_hex", Tp("00", kTrace, kParent, "0x")},
    {"flags_one_char", Tp("00", kTrace, kParent, "1")},
    {"flags_three_chars", Tp("00", kTrace, kParent, "010")},
    // separators
    {"separator_underscore", "00_" + std::string(kTrace) + "-" + kParent + "-01"},
    {"separator_missing", "00" + std::string(kTrace) + "-" + kParent + "-01-"},
    {"separator_space", "00-" + std::string(kTrace) + " " + kParent + "-01"},
    // version 00 is exactly 55 characters
    {"v00_extra_field", Tp("00", kTrace, kParent, "01") + "-extra"},
    {"v00_trailing_dash", Tp("00", kTrace, kParent, "01") + "-"},
    {"v00_trailing_char", Tp("00", kTrace, kParent, "01") + "0"},
    // a future version still needs the 55 known characters, and a '-' before more
    {"future_too_short", Tp("cc", kTrace, kParent, "0")},
    {"future_extra_without_dash", Tp("cc", kTrace, kParent, "01") + ".what"},
    {"future_all_zero_trace", Tp("cc", "00000000000000000000000000000000", kParent, "01")},
    // junk
    {"leading_junk", "x" + Tp("00", kTrace, kParent, "01")},
    {"inner_whitespace", Tp("00", kTrace, kParent, " 01")},
};

INSTANTIATE_TEST_SUITE_P(Cases, TraceParentInvalidTest, testing::ValuesIn(kInvalidCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TraceParentTest, EveryTruncatedPrefixIsRejected) {
  const std::string full = Tp("00", kTrace, kParent, "01");
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(ParseTraceParent(full.substr(0, n)).has_value()) << n;
  }
}

TEST(TraceParentTest, FormatRoundTrips) {
  TraceParent in;
  ASSERT_TRUE(ParseHexId(kTrace, in.trace_id.bytes.data(), 16));
  ASSERT_TRUE(ParseHexId(kParent, in.parent_id.bytes.data(), 8));
  const std::string s = FormatTraceParent(in.trace_id, in.parent_id, 0x01);
  EXPECT_EQ(s, Tp("00", kTrace, kParent, "01"));
  const auto out = ParseTraceParent(s);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->trace_id, in.trace_id);
  EXPECT_EQ(out->parent_id, in.parent_id);
  EXPECT_EQ(out->flags, 0x01);
  EXPECT_EQ(FormatTraceParent(in.trace_id, in.parent_id, 0xab).substr(53), "ab");
}

// ---- ids -----------------------------------------------------------------------------

TEST(IdTest, HexIsLowercaseAndFixedWidth) {
  TraceId t;
  t.bytes[0] = 0xAB;
  t.bytes[15] = 0x01;
  EXPECT_EQ(t.Hex(), "ab000000000000000000000000000001");
  SpanId s;
  s.bytes[7] = 0xFF;
  EXPECT_EQ(s.Hex(), "00000000000000ff");
}

TEST(IdTest, ValidityIsNotAllZero) {
  EXPECT_FALSE(TraceId{}.IsValid());
  EXPECT_FALSE(SpanId{}.IsValid());
  TraceId t;
  t.bytes[9] = 1;
  EXPECT_TRUE(t.IsValid());
}

TEST(IdTest, RandomIdsAreValidAndDistinct) {
  std::set<std::string> traces, spans;
  for (int i = 0; i < 1000; ++i) {
    const TraceId t = TraceId::Random();
    const SpanId s = SpanId::Random();
    ASSERT_TRUE(t.IsValid());
    ASSERT_TRUE(s.IsValid());
    traces.insert(t.Hex());
    spans.insert(s.Hex());
  }
  EXPECT_EQ(traces.size(), 1000u);
  EXPECT_EQ(spans.size(), 1000u);
}

// Every bit of a trace id is a coin flip (a weak generator or a stuck byte shows here), and
// each thread's generator has its own seed.
TEST(IdTest, RandomIdBitsAreBalancedAndThreadsDiffer) {
  constexpr int kIds = 4000;
  std::array<int, 128> ones{};
  for (int i = 0; i < kIds; ++i) {
    const TraceId t = TraceId::Random();
    for (int b = 0; b < 128; ++b) ones[b] += (t.bytes[b / 8] >> (b % 8)) & 1;
  }
  for (int b = 0; b < 128; ++b) {
    EXPECT_GT(ones[b], kIds * 45 / 100) << "bit " << b;
    EXPECT_LT(ones[b], kIds * 55 / 100) << "bit " << b;
  }
  std::set<std::string> seen;
  std::vector<std::string> other(100);
  std::thread worker([&other] {
    for (auto& h : other) h = SpanId::Random().Hex();
  });
  worker.join();
  for (int i = 0; i < 100; ++i) seen.insert(SpanId::Random().Hex());
  for (const auto& h : other) EXPECT_EQ(seen.count(h), 0u) << h;
}

TEST(IdTest, ParseHexId) {
  uint8_t out[2] = {};
  EXPECT_TRUE(ParseHexId("aBcD", out, 2));
  EXPECT_EQ(out[0], 0xAB);
  EXPECT_EQ(out[1], 0xCD);
  EXPECT_FALSE(ParseHexId("abc", out, 2));
  EXPECT_FALSE(ParseHexId("abcde", out, 2));
  EXPECT_FALSE(ParseHexId("abcg", out, 2));
  EXPECT_FALSE(ParseHexId("", out, 1));
}

TEST(SpanTest, KindNamesAndFind) {
  EXPECT_EQ(SpanKindName(SpanKind::kServer), "SERVER");
  EXPECT_EQ(SpanKindName(SpanKind::kClient), "CLIENT");
  EXPECT_EQ(SpanKindName(SpanKind::kInternal), "INTERNAL");
  EXPECT_EQ(SpanKindName(SpanKind::kProducer), "PRODUCER");
  EXPECT_EQ(SpanKindName(SpanKind::kConsumer), "CONSUMER");
  EXPECT_EQ(SpanKindName(SpanKind::kUnspecified), "UNSPECIFIED");
  // OTLP's enum numbers.
  EXPECT_EQ(static_cast<int>(SpanKind::kServer), 2);
  EXPECT_EQ(static_cast<int>(SpanKind::kClient), 3);
  EXPECT_EQ(static_cast<int>(StatusCode::kError), 2);

  Span s;
  s.attributes.push_back({"a", int64_t{7}});
  s.attributes.push_back({"b", std::string("x")});
  ASSERT_NE(s.Find("a"), nullptr);
  EXPECT_EQ(std::get<int64_t>(*s.Find("a")), 7);
  EXPECT_EQ(std::get<std::string>(*s.Find("b")), "x");
  EXPECT_EQ(s.Find("c"), nullptr);
}

// Literal keys are views of themselves; run-time keys own a copy that outlives the source.
TEST(AttrKeyTest, LiteralsAreViewsAndRuntimeKeysAreCopies) {
  const AttrKey lit = "http.request.method";
  EXPECT_TRUE(lit.is_static());
  EXPECT_EQ(lit.heap_bytes(), 0u);
  EXPECT_EQ(lit, "http.request.method");
  EXPECT_EQ(lit.size(), 19u);

  std::string source = "http.request.header.x-tenant";
  AttrKey owned = source;
  EXPECT_FALSE(owned.is_static());
  EXPECT_EQ(owned.heap_bytes(), source.size() + 1);
  source.assign("overwritten and longer than before, to move the buffer");
  EXPECT_EQ(owned, "http.request.header.x-tenant");

  char buffer[] = "k8s.pod.label.app";  // a char array is not a literal: copied
  const AttrKey from_buffer = std::string_view(buffer);
  buffer[0] = 'X';
  EXPECT_EQ(from_buffer, "k8s.pod.label.app");
  EXPECT_FALSE(from_buffer.is_static());
}

TEST(AttrKeyTest, CopyMoveAndCompare) {
  AttrKey a = std::string("db.query.text");
  AttrKey b = a;  // deep copy
  EXPECT_NE(a.data(), b.data());
  EXPECT_EQ(a, b);
  AttrKey c = std::move(a);
  EXPECT_EQ(c, "db.query.text");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  a = c;
  EXPECT_EQ(a, "db.query.text");
  c = "server.port";
  EXPECT_TRUE(c.is_static());
  const AttrKey& same = c;
  c = same;  // self-assignment keeps it
  EXPECT_EQ(c, "server.port");
  EXPECT_LT(AttrKey("a.b"), AttrKey("a.c"));
  std::ostringstream os;
  os << b;
  EXPECT_EQ(os.str(), "db.query.text");
  EXPECT_EQ(std::string(b), "db.query.text");
}

TEST(AttrKeyTest, SpanSetKeepsLiteralKeysAndReplacesByValue) {
  Span s;
  s.Set("url.path", std::string("/a"));
  s.Set(std::string("url.path"), std::string("/b"));  // the same key, run-time spelling
  ASSERT_EQ(s.attributes.size(), 1u);
  EXPECT_TRUE(s.attributes[0].key.is_static());
  EXPECT_EQ(*s.FindString("url.path"), "/b");
}

}  // namespace
}  // namespace kspan::model
