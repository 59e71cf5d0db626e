// http1::Message's one-buffer storage: the parser's SetHead, the builders (set_*, AddHeader)
// and the index of the names consumers look up.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/http1/types.h"

namespace kspan::protocols::http1 {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

Fields FieldsOf(const Message& m) {
  Fields out;
  for (const auto& [name, value] : m.headers()) out.emplace_back(name, value);
  return out;
}

// A head as the parser hands it over: slices of the bytes, copied once.
Message Parsed() {
  const std::string head = "GET /a?b=1 HTTP/1.1\r\nHost: x.y\r\nTraceparent: tp\r\nX-A: 1\r\n\r\n";
  const auto at = [&](std::string_view part) {
    return Message::Slice{static_cast<uint32_t>(head.find(part)), static_cast<uint32_t>(part.size())};
  };
  const Message::HeadField fields[] = {
      {at("Host"), at("x.y")}, {at("Traceparent"), at("tp")}, {at("X-A"), at("1")}};
  Message m;
  m.SetHead(head, at("GET"), at("/a?b=1"), Message::Slice{}, at("1.1"), fields, 3);
  return m;
}

TEST(Http1MessageTest, SetHeadCopiesTheHeadAndKeepsItsFields) {
  const Message m = Parsed();  // the head's string is gone: the message owns a copy
  EXPECT_EQ(m.method(), "GET");
  EXPECT_EQ(m.target(), "/a?b=1");
  EXPECT_EQ(m.reason(), "");
  EXPECT_EQ(m.version(), "1.1");
  EXPECT_EQ(FieldsOf(m), (Fields{{"Host", "x.y"}, {"Traceparent", "tp"}, {"X-A", "1"}}));
  EXPECT_EQ(m.headers().size(), 3u);
  EXPECT_EQ(m.headers()[2], (std::pair<std::string_view, std::string_view>("X-A", "1")));
  EXPECT_EQ(m.Header("HOST"), "x.y");
  EXPECT_EQ(m.Header("x-a"), "1");
  EXPECT_TRUE(m.HasHeader("traceparent"));
  EXPECT_FALSE(m.HasHeader("User-Agent"));
  EXPECT_EQ(m.Header("user-agent"), "");
  EXPECT_EQ(TraceContextOf(m).traceparent, "tp");
}

TEST(Http1MessageTest, CopiesAndMovesKeepTheirOwnText) {
  Message a = Parsed();
  Message b = a;
  Message c = std::move(a);
  a = Message();
  b.set_target("/other");
  EXPECT_EQ(c.target(), "/a?b=1");
  EXPECT_EQ(b.target(), "/other");
  EXPECT_EQ(b.Header("Host"), "x.y");
  EXPECT_EQ(c.Header("Host"), "x.y");
  EXPECT_TRUE(a.method().empty());
  EXPECT_TRUE(a.headers().empty());
}

TEST(Http1MessageTest, BuildersKeepWireOrderAndFirstValue) {
  Message m;
  m.set_method("POST");
  m.AddHeader("content-type", "a");
  m.set_version("2");
  m.AddHeader("Content-Type", "b");
  for (int i = 0; i < 300; ++i) m.AddHeader("x-" + std::to_string(i), std::to_string(i));
  m.AddHeader("User-Agent", "late");  // past the index's 255 entries: found by a scan
  EXPECT_EQ(m.method(), "POST");
  EXPECT_EQ(m.version(), "2");
  ASSERT_EQ(m.headers().size(), 303u);
  EXPECT_EQ(m.headers()[1].second, "b");
  EXPECT_EQ(m.headers()[150].first, "x-148");
  EXPECT_EQ(m.Header("CONTENT-TYPE"), "a");
  EXPECT_EQ(m.Header("user-agent"), "late");
  EXPECT_EQ(m.Header("x-299"), "299");
  EXPECT_EQ(m.Header("x-300"), "");
}

TEST(Http1MessageTest, ViewsOfItsOwnTextCanBeAddedBack) {
  Message m = Parsed();
  // Each field added again from views into the message itself, taken just before the
  // call (a view lasts until the message changes; the appends may move its text).
  const Fields before = FieldsOf(m);
  for (size_t i = 0; i < before.size(); ++i) {
    const auto [n, v] = m.headers()[i];
    m.AddHeader(n, v);
  }
  m.set_method(m.target());
  Fields twice = before;
  twice.insert(twice.end(), before.begin(), before.end());
  EXPECT_EQ(FieldsOf(m), twice);
  EXPECT_EQ(m.method(), "/a?b=1");
  EXPECT_EQ(m.Header("host"), "x.y");
}

TEST(Http1MessageTest, SetHeadersReplacesTheFieldsAndTheIndex) {
  Message m = Parsed();
  m.SetHeaders({{"traceparent", "a"}, {"Traceparent", "b"}, {"tracestate", "x=1"}, {"TraceState", "y=2"}});
  EXPECT_EQ(m.Header("host"), "");
  EXPECT_FALSE(m.HasHeader("x-a"));
  EXPECT_EQ(m.Header("traceparent"), "a");
  // Two traceparent fields: ambiguous, none taken.
  EXPECT_EQ(TraceContextOf(m).traceparent, "");
  m.SetHeaders(Fields{{"traceparent", " t "}, {"tracestate", "x=1"}, {"TraceState", "y=2"}});
  const TraceContextFields tc = TraceContextOf(m);
  EXPECT_EQ(tc.traceparent, "t");
  EXPECT_EQ(tc.tracestate, "x=1,y=2");
}

// Names of the index's lengths that differ from the indexed ones by case only, or in a byte
// that case folding must not equate.
TEST(Http1MessageTest, IndexedNamesMatchIgnoringCaseOnly) {
  Message m;
  m.SetHeaders({{"Content\rLength", "1"},
                {"A2A-VERSION", "2"},
                {"a\x12"
                 "a-version",
                 "3"},
                {"HOST", "h"}});
  EXPECT_EQ(m.Header("content-length"), "");
  EXPECT_EQ(m.Header("a2a-version"), "2");
  EXPECT_EQ(m.Header("host"), "h");
  EXPECT_EQ(m.Header("Content\rLength"), "1");
}

}  // namespace
}  // namespace kspan::protocols::http1
