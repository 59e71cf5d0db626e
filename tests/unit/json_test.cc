#include "common/json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kspan {
namespace {

TEST(JsonWriter, NestedStructureParses) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("a");
  w.Int(-5);
  w.Key("b");
  w.BeginArray();
  w.Uint(1);
  w.Bool(true);
  w.Null();
  w.Double(1.5);
  w.EndArray();
  w.Key("c");
  w.String("x\"y\\z\n\t\x01");
  w.EndObject();
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["a"], -5);
  EXPECT_EQ(j["b"][0], 1);
  EXPECT_EQ(j["b"][1], true);
  EXPECT_TRUE(j["b"][2].is_null());
  EXPECT_EQ(j["b"][3], 1.5);
  EXPECT_EQ(j["c"], "x\"y\\z\n\t\x01");
}

TEST(JsonEscape, InvalidUtf8BecomesReplacementCharacter) {
  std::string out;
  AppendJsonEscaped(&out, std::string("ok \xC3\xA9 bad \xFF \xC3 end", 17));
  auto j = nlohmann::json::parse("\"" + out + "\"");
  EXPECT_EQ(j.get<std::string>(), "ok \xC3\xA9 bad \xEF\xBF\xBD \xEF\xBF\xBD end");
}

TEST(JsonEscape, OverlongAndSurrogatesRejected) {
  std::string out;
  AppendJsonEscaped(&out, std::string("\xC0\xAF\xED\xA0\x80", 5));
  EXPECT_NO_THROW(nlohmann::json::parse("\"" + out + "\""));
  EXPECT_EQ(out.find('\xC0'), std::string::npos);
}

TEST(JsonWriter, NonFiniteDoubleIsNull) {
  std::string out;
  JsonWriter w(&out);
  w.Double(1.0 / 0.0);
  EXPECT_EQ(out, "null");
}

}  // namespace
}  // namespace kspan
