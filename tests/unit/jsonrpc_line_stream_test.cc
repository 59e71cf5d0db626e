#include <gtest/gtest.h>

#include "protocols/jsonrpc/line_stream.h"

namespace kspan::protocols::jsonrpc {
namespace {

std::vector<Call> Drain(LineStream* s, LineStats* stats) {
  std::vector<Call> out;
  s->Drain(&out, stats);
  return out;
}

// One syscall that moved exactly `bytes`.
void Add(LineStream* s, bool egress, std::string_view bytes, uint64_t ns, uint32_t tid, uint32_t turn) {
  s->Add(/*channel=*/egress ? 1 : 2, egress, bytes, bytes.size(), ns, tid, turn);
}

TEST(JsonRpcLineStream, PairsCallsBothWaysByIdAcrossSplitsAndBatches) {
  LineStream ls;
  LineStream* s = &ls;
  LineStats stats;
  // An outgoing call split over two writes, and a notification (no call).
  Add(s, true, R"({"jsonrpc":"2.0","id":3,"method":"tools/c)", 100, 1, 7);
  Add(s, true,
      "all\",\"params\":{\"name\":\"lookup\"}}\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n", 110,
      1, 7);
  // An incoming call from the server, answered.
  Add(s, false,
      R"({"jsonrpc":"2.0","id":"s1","method":"roots/list"})"
      "\n",
      150, 2, 8);
  Add(s, true,
      R"({"jsonrpc":"2.0","id":"s1","result":{"roots":[]}})"
      "\n",
      160, 2, 8);
  // Two answers in one read; the first answers nothing we saw.
  Add(s, false,
      "{\"result\":{},\"jsonrpc\":\"2.0\",\"id\":99}\n{\"result\":{\"content\":[]},\"jsonrpc\":\"2.0\","
      "\"id\":3}\n",
      200, 3, 9);
  const auto calls = Drain(s, &stats);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_FALSE(calls[0].outgoing);
  EXPECT_EQ(calls[0].request, R"({"jsonrpc":"2.0","id":"s1","method":"roots/list"})");
  EXPECT_TRUE(calls[1].outgoing);
  EXPECT_EQ(calls[1].request, R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"lookup"}})");
  EXPECT_EQ(calls[1].response, R"({"result":{"content":[]},"jsonrpc":"2.0","id":3})");
  EXPECT_EQ(calls[1].request_timing.start_ns, 100u);
  EXPECT_EQ(calls[1].request_timing.end_ns, 110u);
  EXPECT_EQ(calls[1].request_timing.turn, 7u);
  EXPECT_EQ(calls[1].response_timing.end_ns, 200u);
  EXPECT_EQ(stats.responses_unmatched, 1u);
}

TEST(JsonRpcLineStream, LongResponseFindsItsIdInTheTail) {
  LineStream s;
  LineStats stats;
  s.Add(1, true,
        R"({"jsonrpc":"2.0","id":12,"method":"tools/call"})"
        "\n",
        47, 1, 1, 1);
  const std::string big = R"({"result":{"content":[{"type":"text","text":")" + std::string(100000, 'x') +
                          R"("}]},"jsonrpc":"2.0","id":12})" + "\n";
  s.Add(2, false, big, big.size(), 2, 1, 1);
  const auto calls = Drain(&s, &stats);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_LE(calls[0].response.size(), kMaxLineBytes);
}

TEST(JsonRpcLineStream, HoleDropsItsLineAndCloseGivesUpTheRest) {
  LineStream s;
  LineStats stats;
  s.Add(1, true, R"({"jsonrpc":"2.0","id":1,"meth)", 100, 1, 1, 1);  // the rest was not captured
  s.Add(1, true, "ignored tail of that line\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n", 65, 2, 1,
        1);
  s.Close();
  const auto calls = Drain(&s, &stats);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].response_missing);
  EXPECT_EQ(calls[0].request, R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  EXPECT_EQ(stats.lines_dropped, 1u);
  EXPECT_EQ(stats.calls_given_up, 1u);
}

// Requests are announced as soon as they are whole, before their answers, once each.
TEST(JsonRpcLineStream, AnnouncesEachRequestWhenItIsWhole) {
  LineStream s;
  LineStats stats;
  std::vector<Call> calls;
  std::vector<Started> started;
  s.Add(1, true,
        R"({"jsonrpc":"2.0","id":4,"method":"tools/call"})"
        "\n",
        47, 100, 1, 1);
  s.Add(2, false,
        R"({"jsonrpc":"2.0","id":"a","method":"ping"})"
        "\n",
        43, 110, 2, 2);
  s.Add(2, false,
        R"({"jsonrpc":"2.0","method":"notifications/x"})"
        "\n",
        44, 115, 2, 2);
  s.Drain(&calls, &stats, &started);
  EXPECT_TRUE(calls.empty());
  ASSERT_EQ(started.size(), 2u) << "no notification";
  EXPECT_TRUE(started[0].outgoing);
  EXPECT_EQ(started[0].id, "4");
  EXPECT_EQ(started[0].channel, 1u);
  EXPECT_EQ(started[0].request, R"({"jsonrpc":"2.0","id":4,"method":"tools/call"})");
  EXPECT_EQ(started[0].timing.start_ns, 100u);
  EXPECT_FALSE(started[1].outgoing);
  EXPECT_EQ(started[1].id, "a");
  s.Add(2, false,
        R"({"jsonrpc":"2.0","id":4,"result":{}})"
        "\n",
        36, 200, 1, 3);
  started.clear();
  s.Drain(&calls, &stats, &started);
  EXPECT_TRUE(started.empty()) << "announced once";
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].id, "4");
}

}  // namespace
}  // namespace kspan::protocols::jsonrpc
