#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "genai/json.h"

namespace kspan::genai::json {
namespace {

using namespace std::string_view_literals;

// A compact rendering of a tree, to compare whole documents: objects and arrays as
// written, strings quoted (unescaped bytes as they are), numbers by their raw text, a '~'
// after every truncated container.
std::string Render(Value v) {
  switch (v.type()) {
    case Type::kMissing: return "<missing>";
    case Type::kNull: return "null";
    case Type::kBool: return *v.AsBool() ? "true" : "false";
    case Type::kNumber: return std::string(v.raw_number());
    case Type::kString: return "\"" + std::string(*v.AsString()) + "\"";
    case Type::kArray:
    case Type::kObject: {
      const bool object = v.type() == Type::kObject;
      std::string out = object ? "{" : "[";
      bool first = true;
      for (const Value c : v.children()) {
        if (!first) out += ",";
        first = false;
        if (object) out += "\"" + std::string(c.key()) + "\":";
        out += Render(c);
      }
      out += object ? "}" : "]";
      if (v.truncated()) out += "~";
      return out;
    }
  }
  return "?";
}

// `partial` is what a prefix of `whole`'s text may give: `whole` itself, or a truncated
// container whose children are the first ones of `whole`, equal to them but for the last,
// which may be partial in turn.
bool IsPartialOf(Value partial, Value whole) {
  if (Render(partial) == Render(whole)) return true;
  if (!partial.truncated() || partial.type() != whole.type() || partial.size() > whole.size()) return false;
  auto p = partial.children().begin();
  auto w = whole.children().begin();
  for (size_t i = 0; i < partial.size(); ++i, ++p, ++w) {
    if ((*p).key() != (*w).key()) return false;
    const bool last = i + 1 == partial.size();
    if (last ? !IsPartialOf(*p, *w) : Render(*p) != Render(*w)) return false;
  }
  return true;
}

// ---- Well-formed documents ---------------------------------------------------------------

struct GoodCase {
  const char* name;
  std::string_view text;
  std::string_view rendered;
};

// Tests print their parameter: the name is what says which case it is.
void PrintTo(const GoodCase& c, std::ostream* os) {
  *os << c.name;
}

class GenaiJsonGoodTest : public testing::TestWithParam<GoodCase> {};

TEST_P(GenaiJsonGoodTest, ParsesWhole) {
  const Document doc = Parse(GetParam().text);
  ASSERT_EQ(doc.status(), ParseStatus::kOk);
  EXPECT_EQ(doc.consumed(), GetParam().text.size());
  EXPECT_EQ(Render(doc.root()), GetParam().rendered);
}

const GoodCase kGoodCases[] = {
    {"null", "null", "null"},
    {"true", "true", "true"},
    {"false", "false", "false"},
    {"zero", "0", "0"},
    {"negative", "-12", "-12"},
    {"fraction_exponent", "-1.5e+3", "-1.5e+3"},
    {"exponent_upper", "2E-2", "2E-2"},
    {"string", R"("hi")", R"("hi")"},
    {"empty_string", R"("")", R"("")"},
    {"escapes", R"("a\"b\\c\/d\b\f\n\r\t")", "\"a\"b\\c/d\b\f\n\r\t\""},
    {"empty_object", "{}", "{}"},
    {"empty_array", "[]", "[]"},
    {"whitespace_everywhere", " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } }\n ", R"({"a":[1,2],"b":{}})"},
    {"nested", R"({"a":{"b":{"c":[true,false,null]}}})", R"({"a":{"b":{"c":[true,false,null]}}})"},
    {"array_of_objects", R"([{"x":1},{"y":"2"}])", R"([{"x":1},{"y":"2"}])"},
    {"escaped_key", R"({"k\u0065y":1})", R"({"key":1})"},
    {"raw_utf8_kept", "\"h\xC3\xA9llo\"", "\"h\xC3\xA9llo\""},
    {"invalid_utf8_kept", "\"\xFF\xFE\"", "\"\xFF\xFE\""},
};

INSTANTIATE_TEST_SUITE_P(Cases, GenaiJsonGoodTest, testing::ValuesIn(kGoodCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- Invalid documents ---------------------------------------------------------------------

struct BadCase {
  const char* name;
  std::string_view text;
  ParseStatus status;
  size_t consumed;  // where reading stopped
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

class GenaiJsonBadTest : public testing::TestWithParam<BadCase> {};

TEST_P(GenaiJsonBadTest, ParseFailsAndKeepsNothing) {
  const Document doc = Parse(GetParam().text);
  EXPECT_EQ(doc.status(), GetParam().status);
  EXPECT_EQ(doc.consumed(), GetParam().consumed);
  EXPECT_FALSE(doc.root());
}

const BadCase kBadCases[] = {
    {"empty", "", ParseStatus::kTruncated, 0},
    {"only_space", "  ", ParseStatus::kTruncated, 2},
    {"leading_zero", "01", ParseStatus::kInvalid, 1},
    {"leading_plus", "+1", ParseStatus::kInvalid, 0},
    {"bare_dot", ".5", ParseStatus::kInvalid, 0},
    {"dot_without_digits", "1.x", ParseStatus::kInvalid, 2},
    {"exponent_without_digits", "1ex", ParseStatus::kInvalid, 2},
    {"cut_fraction", "1.", ParseStatus::kTruncated, 2},
    {"cut_exponent", "1e+", ParseStatus::kTruncated, 3},
    {"minus_alone", "-", ParseStatus::kTruncated, 1},
    {"nan", "NaN", ParseStatus::kInvalid, 0},
    {"infinity", "-Infinity", ParseStatus::kInvalid, 1},
    {"single_quotes", "'a'", ParseStatus::kInvalid, 0},
    {"trailing_comma_array", "[1,]", ParseStatus::kInvalid, 3},
    {"trailing_comma_object", R"({"a":1,})", ParseStatus::kInvalid, 7},
    {"missing_colon", R"({"a" 1})", ParseStatus::kInvalid, 5},
    {"unquoted_key", "{a:1}", ParseStatus::kInvalid, 1},
    {"missing_comma", "[1 2]", ParseStatus::kInvalid, 3},
    {"wrong_bracket", "[1}", ParseStatus::kInvalid, 2},
    {"misspelt_literal", "tru e", ParseStatus::kInvalid, 0},
    {"cut_literal", "nul", ParseStatus::kTruncated, 0},
    {"control_char_in_string", "\"a\x01\"", ParseStatus::kInvalid, 2},
    {"bad_escape", R"("\x")", ParseStatus::kInvalid, 3},
    {"bad_hex", R"("\u12G4")", ParseStatus::kInvalid, 5},
    {"trailing_garbage", "{} x", ParseStatus::kInvalid, 3},
    {"two_values", "1 2", ParseStatus::kInvalid, 2},
    {"comment", "[1 /* c */]", ParseStatus::kInvalid, 3},
    {"unclosed_array", "[1,2", ParseStatus::kTruncated, 4},
    {"unclosed_string", R"("abc)", ParseStatus::kTruncated, 4},
};

INSTANTIATE_TEST_SUITE_P(Cases, GenaiJsonBadTest, testing::ValuesIn(kBadCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- Numbers -----------------------------------------------------------------------------------

TEST(GenaiJsonNumberTest, Int64) {
  EXPECT_EQ(Parse("9223372036854775807").root().AsInt64(), INT64_MAX);
  EXPECT_EQ(Parse("-9223372036854775808").root().AsInt64(), INT64_MIN);
  EXPECT_EQ(Parse("9223372036854775808").root().AsInt64(), std::nullopt);  // one past
  EXPECT_EQ(Parse("-0").root().AsInt64(), 0);
  EXPECT_EQ(Parse("1e3").root().AsInt64(), 1000);
  EXPECT_EQ(Parse("100.0").root().AsInt64(), 100);
  EXPECT_EQ(Parse("1.5").root().AsInt64(), std::nullopt);
  EXPECT_EQ(Parse("1e16").root().AsInt64(), std::nullopt);   // past 2^53: not exact
  EXPECT_EQ(Parse("\"7\"").root().AsInt64(), std::nullopt);  // a string is not a number
}

TEST(GenaiJsonNumberTest, HugeNumbersKeepTheirText) {
  const Document big = Parse("1e400");
  ASSERT_EQ(big.status(), ParseStatus::kOk);
  EXPECT_EQ(big.root().type(), Type::kNumber);
  EXPECT_EQ(big.root().AsDouble(), std::nullopt);
  EXPECT_EQ(big.root().raw_number(), "1e400");

  const std::string digits(400, '9');
  const Document long_int = Parse(digits);
  ASSERT_EQ(long_int.status(), ParseStatus::kOk);
  EXPECT_EQ(long_int.root().AsInt64(), std::nullopt);
  EXPECT_EQ(long_int.root().raw_number(), digits);

  EXPECT_EQ(Parse("1e-400").root().AsDouble(), std::nullopt);  // underflows
  EXPECT_DOUBLE_EQ(*Parse("1.7976931348623157e308").root().AsDouble(), 1.7976931348623157e308);
}

TEST(GenaiJsonNumberTest, Doubles) {
  EXPECT_DOUBLE_EQ(*Parse("0.7").root().AsDouble(), 0.7);
  EXPECT_DOUBLE_EQ(*Parse("-2.5E-1").root().AsDouble(), -0.25);
  EXPECT_DOUBLE_EQ(*Parse("3").root().AsDouble(), 3.0);
  EXPECT_EQ(Parse("true").root().AsDouble(), std::nullopt);
}

// ---- Strings and Unicode ---------------------------------------------------------------------

struct UnicodeCase {
  const char* name;
  std::string_view text;
  std::string_view want;  // UTF-8
};

void PrintTo(const UnicodeCase& c, std::ostream* os) {
  *os << c.name;
}

class GenaiJsonUnicodeTest : public testing::TestWithParam<UnicodeCase> {};

TEST_P(GenaiJsonUnicodeTest, Unescapes) {
  const Document doc = Parse(GetParam().text);
  ASSERT_EQ(doc.status(), ParseStatus::kOk);
  EXPECT_EQ(doc.root().AsString(), GetParam().want);
}

const UnicodeCase kUnicodeCases[] = {
    {"ascii", R"("\u0041")", "A"},
    {"two_bytes", R"("\u00e9")", "\xC3\xA9"},
    {"three_bytes", R"("\u20AC")", "\xE2\x82\xAC"},
    {"surrogate_pair", R"("\uD83D\uDE00")", "\xF0\x9F\x98\x80"},
    {"surrogate_pair_lower_hex", R"("\ud83d\ude00")", "\xF0\x9F\x98\x80"},
    {"nul", R"("a\u0000b")", "a\0b"sv},
    {"lone_high_at_end", R"("\uD83D")", "\xEF\xBF\xBD"},
    {"lone_high_then_text", R"("\uD83Dx")", "\xEF\xBF\xBDx"},
    {"lone_high_then_other_escape", R"("\uD83D\n")", "\xEF\xBF\xBD\n"},
    {"high_then_non_surrogate", R"("\uD83D\u0041")",
     "\xEF\xBF\xBD"
     "A"},
    {"two_highs", R"("\uD83D\uD83D\uDE00")", "\xEF\xBF\xBD\xF0\x9F\x98\x80"},
    {"lone_low", R"("\uDE00")", "\xEF\xBF\xBD"},
    {"max_bmp", R"("\uFFFF")", "\xEF\xBF\xBF"},
};

INSTANTIATE_TEST_SUITE_P(Cases, GenaiJsonUnicodeTest, testing::ValuesIn(kUnicodeCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- Lookups -------------------------------------------------------------------------------------

TEST(GenaiJsonLookupTest, FindAtAndChildren) {
  const Document doc = Parse(R"({"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":4}},
                                  "choices":[{"index":1},{"index":0}],"model":"gpt-4o"})");
  const Value root = doc.root();
  EXPECT_EQ(root.type(), Type::kObject);
  EXPECT_EQ(root.size(), 3u);
  EXPECT_EQ(root.Find("model").AsString(), "gpt-4o");
  EXPECT_EQ(root.At({"usage", "prompt_tokens_details", "cached_tokens"}).AsInt64(), 4);
  EXPECT_EQ(root.At({"usage", "nope", "cached_tokens"}).type(), Type::kMissing);
  EXPECT_FALSE(root.Find("model").Find("x"));  // lookup in a string
  EXPECT_FALSE(Value().At({"a"}));

  std::vector<int64_t> indexes;
  for (const Value c : root.Find("choices").children()) indexes.push_back(*c.Find("index").AsInt64());
  EXPECT_EQ(indexes, (std::vector<int64_t>{1, 0}));

  std::vector<std::string_view> keys;
  for (const Value m : root.children()) keys.push_back(m.key());
  EXPECT_EQ(keys, (std::vector<std::string_view>{"usage", "choices", "model"}));
  EXPECT_EQ(root.key(), "");
  EXPECT_EQ(root.Find("model").children().begin(), root.Find("model").children().end());
}

TEST(GenaiJsonLookupTest, DuplicateKeysFindTheLast) {
  const Document doc = Parse(R"({"a":1,"b":2,"a":3})");
  EXPECT_EQ(doc.root().size(), 3u);
  EXPECT_EQ(doc.root().Find("a").AsInt64(), 3);
}

TEST(GenaiJsonLookupTest, ValuesSurviveMovingTheDocument) {
  Document doc = Parse(R"({"k":"v"})");
  const Value v = doc.root().Find("k");
  const Document moved = std::move(doc);
  EXPECT_EQ(v.AsString(), "v");
  EXPECT_EQ(moved.root().Find("k").AsString(), "v");
}

// ---- Prefixes ------------------------------------------------------------------------------------

struct PrefixCase {
  const char* name;
  std::string_view text;
  std::string_view rendered;  // "<missing>" when nothing completed
  ParseStatus status;
};

void PrintTo(const PrefixCase& c, std::ostream* os) {
  *os << c.name;
}

class GenaiJsonPrefixTest : public testing::TestWithParam<PrefixCase> {};

TEST_P(GenaiJsonPrefixTest, KeepsWhatCompleted) {
  const Document doc = ParsePrefix(GetParam().text);
  EXPECT_EQ(doc.status(), GetParam().status);
  EXPECT_EQ(Render(doc.root()), GetParam().rendered);
}

// The table in json.h, and more.
const PrefixCase kPrefixCases[] = {
    {"cut_array_member", R"({"a":1,"b":[1,2,)", R"({"a":1,"b":[1,2]~}~)", ParseStatus::kTruncated},
    {"cut_number_element", R"({"a":1,"b":[1,2)", R"({"a":1,"b":[1]~}~)", ParseStatus::kTruncated},
    {"cut_string_member", R"({"a":1,"b":"hel)", R"({"a":1}~)", ParseStatus::kTruncated},
    {"cut_number_member", R"({"a":1,"b":12)", R"({"a":1}~)", ParseStatus::kTruncated},
    {"cut_key", R"({"a":1,"b)", R"({"a":1}~)", ParseStatus::kTruncated},
    {"cut_after_colon", R"({"a":1,"b":)", R"({"a":1}~)", ParseStatus::kTruncated},
    {"cut_literal_in_nested", R"([1,{"x":tr)", R"([1,{}~]~)", ParseStatus::kTruncated},
    {"cut_string_root", R"("hel)", "<missing>", ParseStatus::kTruncated},
    {"cut_number_root", "12", "<missing>", ParseStatus::kTruncated},
    {"cut_literal_root", "tr", "<missing>", ParseStatus::kTruncated},
    {"whole_literal_root", "true", "true", ParseStatus::kOk},
    {"number_then_space", "12 ", "12", ParseStatus::kOk},
    {"cut_after_open", "{", "{}~", ParseStatus::kTruncated},
    {"cut_escape", R"({"a":"x\)", "{}~", ParseStatus::kTruncated},
    {"cut_unicode_escape", R"({"a":"\u00)", "{}~", ParseStatus::kTruncated},
    {"cut_between_surrogates", R"({"a":"\uD83D\)", "{}~", ParseStatus::kTruncated},
    {"rest_is_not_read", R"({"a":1} garbage)", R"({"a":1})", ParseStatus::kOk},
    {"syntax_error_keeps_before", R"({"a":1,"b":2 "c":3})", R"({"a":1,"b":2}~)", ParseStatus::kInvalid},
    {"empty", "", "<missing>", ParseStatus::kTruncated},
};

INSTANTIATE_TEST_SUITE_P(Cases, GenaiJsonPrefixTest, testing::ValuesIn(kPrefixCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Every prefix of a document: nothing crashes, a member is present exactly when its value
// completed before the cut, and what is present is never a partial value.
TEST(GenaiJsonPrefixTest, EveryPrefix) {
  const std::string text =
      R"({"id":"x\"y","n":123,"arr":[1,-2.5e1,{"k":"v"}],"s":"h\u00e9\uD83D\uDE00","t":true,)"
      R"("z":null,"obj":{"a":{"b":[]}},"last":7})";
  const Document whole = Parse(text);
  ASSERT_EQ(whole.status(), ParseStatus::kOk);

  struct Member {
    std::string_view key;
    size_t complete_at;  // the shortest prefix that holds the whole value
  };
  // A number is complete only once the byte after it is there.
  const auto end_of = [&](std::string_view value_text, bool number) {
    return text.find(value_text) + value_text.size() + (number ? 1 : 0);
  };
  const Member members[] = {
      {"id", end_of(R"("x\"y")", false)},
      {"n", end_of("123", true)},
      {"arr", end_of(R"([1,-2.5e1,{"k":"v"}])", false)},
      {"s", end_of(R"("h\u00e9\uD83D\uDE00")", false)},
      {"t", end_of("true", false)},
      {"z", end_of("null", false)},
      {"obj", end_of(R"({"a":{"b":[]}})", false)},
      {"last", end_of("7", true)},
  };

  for (size_t len = 0; len <= text.size(); ++len) {
    SCOPED_TRACE("prefix length " + std::to_string(len));
    const Document doc = ParsePrefix(std::string_view(text).substr(0, len));
    EXPECT_EQ(doc.status(), len == text.size() ? ParseStatus::kOk : ParseStatus::kTruncated);
    const Value root = doc.root();
    EXPECT_EQ(static_cast<bool>(root), len > 0);
    if (!root) continue;
    EXPECT_EQ(root.truncated(), len < text.size());
    for (const Member& m : members) {
      const Value v = root.Find(m.key);
      const Value want = whole.root().Find(m.key);
      if (len >= m.complete_at) {
        EXPECT_EQ(Render(v), Render(want)) << m.key;
      } else if (v) {
        // Only a container shows up before it is complete, as a truncated prefix of it.
        EXPECT_TRUE(v.truncated()) << m.key;
        EXPECT_TRUE(IsPartialOf(v, want)) << m.key << ": " << Render(v);
      }
    }
  }
}

// ---- Bounds ----------------------------------------------------------------------------------------

TEST(GenaiJsonBoundsTest, Depth) {
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_EQ(Parse(ok).status(), ParseStatus::kOk);

  const std::string deep = std::string(65, '[') + std::string(65, ']');
  const Document bad = Parse(deep);
  EXPECT_EQ(bad.status(), ParseStatus::kTooDeep);
  EXPECT_EQ(bad.consumed(), 64u);
  EXPECT_FALSE(bad.root());

  const Document prefix = ParsePrefix(deep);
  EXPECT_EQ(prefix.status(), ParseStatus::kTooDeep);
  ASSERT_TRUE(prefix.root());
  EXPECT_TRUE(prefix.root().truncated());

  // A smaller limit, and members before the deep part are kept.
  Limits shallow;
  shallow.max_depth = 3;
  const Document limited = ParsePrefix(R"({"model":"m","tools":[[[1]]],"after":1})", shallow);
  EXPECT_EQ(limited.status(), ParseStatus::kTooDeep);
  EXPECT_EQ(limited.root().Find("model").AsString(), "m");
  EXPECT_FALSE(limited.root().Find("after"));
}

TEST(GenaiJsonBoundsTest, VeryDeepInputDoesNotRecurse) {
  const std::string deep(1 << 20, '[');
  EXPECT_EQ(Parse(deep).status(), ParseStatus::kTooDeep);
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  EXPECT_EQ(ParsePrefix(objects).status(), ParseStatus::kTooDeep);
}

TEST(GenaiJsonBoundsTest, Nodes) {
  std::string list = "[";
  for (int i = 0; i < 20; ++i) list += (i ? ",1" : "1");
  list += "]";
  Limits limits;
  limits.max_nodes = 10;
  EXPECT_EQ(Parse(list, limits).status(), ParseStatus::kTooManyNodes);
  const Document prefix = ParsePrefix(list, limits);
  EXPECT_EQ(prefix.status(), ParseStatus::kTooManyNodes);
  EXPECT_EQ(prefix.root().size(), 9u);  // the array and 9 elements
  EXPECT_TRUE(prefix.root().truncated());
}

TEST(GenaiJsonBoundsTest, DefaultNodeLimit) {
  std::string list = "[0";
  for (int i = 1; i < 200'000; ++i) list += ",0";
  list += "]";
  EXPECT_EQ(Parse(list).status(), ParseStatus::kTooManyNodes);  // 200k elements + the array
  list.erase(list.size() - 3);                                  // drop one element
  list += "]";
  const Document doc = Parse(list);
  ASSERT_EQ(doc.status(), ParseStatus::kOk);
  EXPECT_EQ(doc.root().size(), 199'999u);
}

}  // namespace
}  // namespace kspan::genai::json
