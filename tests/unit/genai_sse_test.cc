#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "genai/sse.h"

namespace kspan::genai {
namespace {

struct Event {
  std::string type;
  std::string data;
  size_t offset;
  bool operator==(const Event&) const = default;
};

void PrintTo(const Event& e, std::ostream* os) {
  *os << "{" << e.type << ", \"" << e.data << "\", @" << e.offset << "}";
}

struct Split {
  std::vector<Event> events;
  bool incomplete;
};

Split SplitAll(std::string_view body) {
  SseReader reader(body);
  Split out;
  SseEvent e;
  while (reader.Next(&e)) out.events.push_back(Event{e.type, e.data, e.offset});
  out.incomplete = reader.incomplete();
  return out;
}

struct SseCase {
  const char* name;
  std::string_view body;
  std::vector<Event> want;
  bool incomplete;
};

// Tests print their parameter: the name is what says which case it is.
void PrintTo(const SseCase& c, std::ostream* os) {
  *os << c.name;
}

class GenaiSseTest : public testing::TestWithParam<SseCase> {};

TEST_P(GenaiSseTest, Splits) {
  const Split got = SplitAll(GetParam().body);
  EXPECT_EQ(got.events, GetParam().want);
  EXPECT_EQ(got.incomplete, GetParam().incomplete);
}

const SseCase kCases[] = {
    {"one_event", "data: hi\n\n", {{"message", "hi", 0}}, false},
    {"named_event", "event: ping\ndata: {}\n\n", {{"ping", "{}", 0}}, false},
    {"multi_data_joined", "data: a\ndata: b\ndata:\n\n", {{"message", "a\nb\n", 0}}, false},
    {"two_events_offsets", "data: 1\n\nevent: x\ndata: 2\n\n", {{"message", "1", 0}, {"x", "2", 9}}, false},
    {"crlf", "event: e\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n", {{"e", "1", 0}, {"message", "2", 21}}, false},
    {"cr_only", "data: 1\r\rdata: 2\r\r", {{"message", "1", 0}, {"message", "2", 9}}, false},
    {"mixed_line_ends", "data: 1\r\ndata: 2\n\r\n", {{"message", "1\n2", 0}}, false},
    {"one_space_removed", "data:  two spaces\n\n", {{"message", " two spaces", 0}}, false},
    {"no_space", "data:x\n\n", {{"message", "x", 0}}, false},
    {"colon_in_value", "data: a: b\n\n", {{"message", "a: b", 0}}, false},
    {"field_without_colon", "data\n\n", {{"message", "", 0}}, false},
    {"comments_ignored", ": hi\ndata: 1\n: mid\ndata: 2\n\n", {{"message", "1\n2", 5}}, false},
    {"comment_block_dispatches_nothing", ": keep-alive\n\ndata: 1\n\n", {{"message", "1", 14}}, false},
    {"no_data_dispatches_nothing", "event: ping\n\ndata: 1\n\n", {{"message", "1", 13}}, false},
    {"type_does_not_leak", "event: a\n\ndata: 1\n\n", {{"message", "1", 10}}, false},
    {"id_retry_unknown_ignored", "id: 7\nretry: 10\nfoo: bar\ndata: 1\n\n", {{"message", "1", 0}}, false},
    {"empty_event_name_is_message", "event:\ndata: 1\n\n", {{"message", "1", 0}}, false},
    {"last_event_field_wins", "event: a\nevent: b\ndata: 1\n\n", {{"b", "1", 0}}, false},
    {"byte_order_mark",
     "\xEF\xBB\xBF"
     "data: 1\n\n",
     {{"message", "1", 3}},
     false},
    {"extra_blank_lines", "\n\n\ndata: 1\n\n\n", {{"message", "1", 3}}, false},
    {"cut_after_fields", "data: 1\n\ndata: 2\n", {{"message", "1", 0}}, true},
    {"cut_inside_line", "data: 1\n\ndata: 2", {{"message", "1", 0}}, true},
    {"cut_inside_field_name", "data: 1\n\nev", {{"message", "1", 0}}, true},
    {"cut_in_comment_after_event", "data: 1\n\n: keep", {{"message", "1", 0}}, false},
    {"cut_in_comment_inside_event", "data: 1\n: keep", {}, true},
    {"trailing_comment_line", "data: 1\n\n: bye\n", {{"message", "1", 0}}, false},
    {"dispatching_cr_at_end", "data: 1\r\r", {{"message", "1", 0}}, false},
    {"empty_body", "", {}, false},
};

INSTANTIATE_TEST_SUITE_P(Cases, GenaiSseTest, testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// A stream like an LLM API's, cut at every byte: the prefix yields exactly the events
// whose blank line it holds, equal to what the whole stream yields, and is incomplete
// exactly when the cut falls inside an event.
TEST(GenaiSseTest, EveryPrefix) {
  struct Block {
    std::string_view text;
    bool is_event;  // else a comment block
  };
  const Block blocks[] = {
      {": OPENROUTER PROCESSING\n\n", false},
      {"event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n", true},
      {"event: ping\ndata: {\"type\": \"ping\"}\n\n", true},
      {"data: {\"a\":\ndata: 1}\n\n", true},
      {"data: [DONE]\n\n", true},
  };
  std::string body;
  struct Span {
    size_t start;
    size_t dispatched_at;  // the shortest prefix that yields it
  };
  std::vector<Span> spans;
  for (const Block& b : blocks) {
    // A CR alone already ends the blank line; the LF after it belongs to the same line end.
    const size_t crlf = b.text.ends_with("\r\n") ? 1 : 0;
    if (b.is_event) spans.push_back(Span{body.size(), body.size() + b.text.size() - crlf});
    body += b.text;
  }
  const Split whole = SplitAll(body);
  ASSERT_EQ(whole.events.size(), spans.size());
  ASSERT_FALSE(whole.incomplete);

  for (size_t len = 0; len <= body.size(); ++len) {
    SCOPED_TRACE("prefix length " + std::to_string(len));
    const Split got = SplitAll(std::string_view(body).substr(0, len));
    size_t want = 0;
    bool inside = false;
    for (const Span& span : spans) {
      want += len >= span.dispatched_at;
      inside |= len > span.start && len < span.dispatched_at;
    }
    ASSERT_EQ(got.events.size(), want);
    for (size_t i = 0; i < want; ++i) EXPECT_EQ(got.events[i], whole.events[i]);
    EXPECT_EQ(got.incomplete, inside);
  }
}

TEST(GenaiSseTest, ReusesTheEvent) {
  SseReader reader("event: a\ndata: long long long\n\ndata: 2\n\n");
  SseEvent e;
  ASSERT_TRUE(reader.Next(&e));
  EXPECT_EQ(e.type, "a");
  ASSERT_TRUE(reader.Next(&e));
  EXPECT_EQ(e.type, "message");
  EXPECT_EQ(e.data, "2");
  EXPECT_FALSE(reader.Next(&e));
  EXPECT_FALSE(reader.Next(&e));  // stays at the end
  EXPECT_FALSE(reader.incomplete());
}

}  // namespace
}  // namespace kspan::genai
