#include <gtest/gtest.h>

#include <map>
#include <tuple>

#include "protocols/jsonrpc/line_stream.h"

namespace kspan::protocols::jsonrpc {
namespace {

std::vector<Call> Drain(LineStream* s, LineStats* stats) {
  std::vector<Call> out;
  s->Drain(&out, stats);
  return out;
}

// One syscall on `channel` that moved `total_len` bytes, of which `bytes` were captured, at
// the next position of that direction (positions kept per stream, channel and direction).
// Reset before each test: a stream of a later test may live at an earlier one's address.
std::map<std::tuple<LineStream*, uint64_t, bool>, uint64_t>& Positions() {
  static std::map<std::tuple<LineStream*, uint64_t, bool>, uint64_t> positions;
  return positions;
}

class JsonRpcLineStream : public ::testing::Test {
 protected:
  void SetUp() override { Positions().clear(); }
};

void Feed(LineStream* s, uint64_t channel, bool egress, std::string_view bytes, uint64_t total_len,
          uint64_t ns, uint32_t tid, uint32_t turn) {
  uint64_t& pos = Positions()[{s, channel, egress}];
  s->Add(channel, egress, pos, bytes, total_len, ns, tid, turn);
  pos += total_len;
}

// One syscall that moved exactly `bytes`.
void Add(LineStream* s, bool egress, std::string_view bytes, uint64_t ns, uint32_t tid, uint32_t turn) {
  Feed(s, /*channel=*/egress ? 1 : 2, egress, bytes, bytes.size(), ns, tid, turn);
}

TEST_F(JsonRpcLineStream, PairsCallsBothWaysByIdAcrossSplitsAndBatches) {
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

TEST_F(JsonRpcLineStream, LongResponseFindsItsIdInTheTail) {
  LineStream s;
  LineStats stats;
  Feed(&s, 1, true,
       R"({"jsonrpc":"2.0","id":12,"method":"tools/call"})"
       "\n",
       47, 1, 1, 1);
  const std::string big = R"({"result":{"content":[{"type":"text","text":")" + std::string(100000, 'x') +
                          R"("}]},"jsonrpc":"2.0","id":12})" + "\n";
  Feed(&s, 2, false, big, big.size(), 2, 1, 1);
  const auto calls = Drain(&s, &stats);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_LE(calls[0].response.size(), kMaxLineBytes);
}

TEST_F(JsonRpcLineStream, HoleDropsItsLineAndCloseGivesUpTheRest) {
  LineStream s;
  LineStats stats;
  Feed(&s, 1, true, R"({"jsonrpc":"2.0","id":1,"meth)", 100, 1, 1, 1);  // the rest was not captured
  Feed(&s, 1, true, "ignored tail of that line\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n", 65, 2,
       1, 1);
  s.Close(protocols::Unanswered::kProcessExit);
  const auto calls = Drain(&s, &stats);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].response_missing);
  EXPECT_EQ(calls[0].unanswered, protocols::Unanswered::kProcessExit);
  EXPECT_EQ(calls[0].request, R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  EXPECT_EQ(stats.lines_dropped, 1u);
  EXPECT_EQ(stats.calls_given_up, 0u) << "only calls dropped at the bound, which have no record";
}

// The first chunk a stream shows past position 0 follows lost events, like any later gap:
// it may start inside a line, whose rest must not be read as a message of its own (here a
// forged call 7 out of a request's arguments). Skip to the next newline, counted.
TEST_F(JsonRpcLineStream, FirstChunkPastPositionZeroSkipsToTheNextLine) {
  LineStream s;
  LineStats stats;
  const std::string line =
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"id":7,"method":"ping"}}})"
      "\n";
  const std::string next = R"({"jsonrpc":"2.0","id":2,"method":"ping"})"
                           "\n";
  const size_t inner = line.find(R"({"id":7)");
  const std::string seen = line.substr(inner) + next;
  s.Add(1, true, inner, seen, seen.size(), 10, 1, 1);
  s.Close();
  const auto calls = Drain(&s, &stats);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].id, "2");
  EXPECT_EQ(stats.lines_dropped, 1u);
}

// Requests are announced as soon as they are whole, before their answers, once each.
TEST_F(JsonRpcLineStream, AnnouncesEachRequestWhenItIsWhole) {
  LineStream s;
  LineStats stats;
  std::vector<Call> calls;
  std::vector<Started> started;
  Feed(&s, 1, true,
       R"({"jsonrpc":"2.0","id":4,"method":"tools/call"})"
       "\n",
       47, 100, 1, 1);
  Feed(&s, 2, false,
       R"({"jsonrpc":"2.0","id":"a","method":"ping"})"
       "\n",
       43, 110, 2, 2);
  Feed(&s, 2, false,
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
  Feed(&s, 2, false,
       R"({"jsonrpc":"2.0","id":4,"result":{}})"
       "\n",
       36, 200, 1, 3);
  started.clear();
  s.Drain(&calls, &stats, &started);
  EXPECT_TRUE(started.empty()) << "announced once";
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].id, "4");
}

// Stream positions, as the kernel counts them per channel and direction: a chunk that
// starts past the last one's end follows a lost event, and the line it cut is dropped; a
// chunk repeating bytes already seen is ignored. Requests are numbered in order.
TEST_F(JsonRpcLineStream, PositionsFindLostEventsAndRepeats) {
  LineStream s;
  LineStats stats;
  const std::string a = R"({"jsonrpc":"2.0","id":1,"method":"ping"})"
                        "\n";
  const std::string b = R"({"jsonrpc":"2.0","id":2,"method":"ping"})"
                        "\n";
  const std::string c = R"({"jsonrpc":"2.0","id":3,"method":"ping"})"
                        "\n";
  s.Add(1, true, 0, a.substr(0, 10), 10, 100, 1, 1);
  // Bytes 10..a.size() were moved by a syscall whose event was lost; b comes whole after.
  s.Add(1, true, a.size(), b, b.size(), 110, 1, 1);
  s.Add(1, true, a.size(), b, b.size(), 111, 1, 1);  // the same event twice: ignored
  s.Add(1, true, a.size() + b.size(), c, c.size(), 120, 1, 1);
  std::vector<Call> calls;
  std::vector<Started> started;
  s.Drain(&calls, &stats, &started);
  ASSERT_EQ(started.size(), 1u) << "line 1 was cut by the lost event; b's lost head drops it too";
  EXPECT_EQ(started[0].id, "3");
  EXPECT_EQ(started[0].seq, 1u);
  EXPECT_EQ(stats.lines_dropped, 1u);
}

TEST_F(JsonRpcLineStream, RequestsAreNumberedAndCallsKeepTheirNumber) {
  LineStream s;
  LineStats stats;
  Add(&s, true,
      R"({"jsonrpc":"2.0","id":7,"method":"a"})"
      "\n",
      100, 1, 1);
  Add(&s, true,
      R"({"jsonrpc":"2.0","id":8,"method":"b"})"
      "\n",
      101, 1, 1);
  Add(&s, false,
      R"({"jsonrpc":"2.0","id":8,"result":{}})"
      "\n",
      102, 1, 1);
  Add(&s, false,
      R"({"jsonrpc":"2.0","id":7,"result":{}})"
      "\n",
      103, 1, 1);
  std::vector<Call> calls;
  std::vector<Started> started;
  s.Drain(&calls, &stats, &started);
  ASSERT_EQ(started.size(), 2u);
  EXPECT_EQ(started[0].seq, 1u);
  EXPECT_EQ(started[1].seq, 2u);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].id, "8");
  EXPECT_EQ(calls[0].seq, 2u);
  EXPECT_EQ(calls[1].seq, 1u);
}

}  // namespace
}  // namespace kspan::protocols::jsonrpc
