#include <gtest/gtest.h>

#include <string>

#include "common/fifo.h"
#include "protocols/http1/parse.h"
#include "protocols/http1/stitch.h"

namespace kspan::protocols::http1 {
namespace {

using std::string;

Frame Req(uint64_t seq, const string& target) {
  Frame f;
  f.phase = Phase::kDone;
  f.seq = seq;
  f.msg.set_method("GET");
  f.msg.set_target(target);
  return f;
}

Frame Resp(uint64_t seq, int status, uint64_t drop_through = 0) {
  Frame f;
  f.phase = Phase::kDone;
  f.seq = seq;
  f.drop_through = drop_through;
  f.msg.status_code = status;
  return f;
}

// "target→status" per record, "target→-" when the response is missing.
string Summary(const RecordsWithErrorCount<Record>& r) {
  string s;
  for (const Record& rec : r.records) {
    if (!s.empty()) s += ' ';
    s += std::string(rec.request.target()) + "→" +
         (rec.response_missing ? "-" : std::to_string(rec.response.status_code));
    for (int i : rec.informational_statuses) s += "+" + std::to_string(i);
  }
  return s;
}

TEST(Http1StitchTest, PairsInOrder) {
  State st;
  Fifo<Frame> reqs = {Req(1, "/a"), Req(2, "/b"), Req(3, "/c")};
  Fifo<Frame> resps = {Resp(1, 200), Resp(2, 404)};
  const auto r = StitchFrames(&reqs, &resps, &st);
  EXPECT_EQ(Summary(r), "/a→200 /b→404");
  EXPECT_EQ(r.error_count, 0);
  ASSERT_EQ(reqs.size(), 1u);  // /c waits for its response
  EXPECT_TRUE(resps.empty());
}

TEST(Http1StitchTest, InformationalNotedOnItsRequest) {
  State st;
  Fifo<Frame> reqs = {Req(1, "/up")};
  Fifo<Frame> resps = {Resp(1, 100), Resp(1, 103)};
  auto r = StitchFrames(&reqs, &resps, &st);
  EXPECT_TRUE(r.records.empty());
  ASSERT_EQ(reqs.size(), 1u);
  resps.push_back(Resp(1, 201));
  r = StitchFrames(&reqs, &resps, &st);
  EXPECT_EQ(Summary(r), "/up→201+100+103");
}

TEST(Http1StitchTest, LaterAnswerEndsEarlierRequests) {
  State st;
  Fifo<Frame> reqs = {Req(1, "/a"), Req(2, "/b"), Req(3, "/c")};
  Fifo<Frame> resps = {Resp(3, 200)};
  const auto r = StitchFrames(&reqs, &resps, &st);
  EXPECT_EQ(Summary(r), "/a→- /b→- /c→200");
}

TEST(Http1StitchTest, GiveUpWithoutAnswer) {
  State st;
  Fifo<Frame> reqs = {Req(1, "/a"), Req(2, "/b"), Req(3, "/c")};
  Fifo<Frame> resps = {Resp(0, 200, 2)};
  const auto r = StitchFrames(&reqs, &resps, &st);
  EXPECT_EQ(Summary(r), "/a→- /b→-");
  EXPECT_EQ(r.error_count, 1);
  EXPECT_EQ(reqs.size(), 1u);
}

TEST(Http1StitchTest, ResponseToNothingIsAnError) {
  State st;
  Fifo<Frame> reqs;
  Fifo<Frame> resps = {Resp(0, 200), Resp(5, 200), Resp(0, 100)};
  const auto r = StitchFrames(&reqs, &resps, &st);
  EXPECT_TRUE(r.records.empty());
  EXPECT_EQ(r.error_count, 3);
  EXPECT_TRUE(resps.empty());
}

TEST(Http1StitchTest, ResponseWaitsForARequestStillArriving) {
  State st;
  st.open_request_seq = 2;
  Fifo<Frame> reqs = {Req(1, "/a")};
  Fifo<Frame> resps = {Resp(1, 200), Resp(2, 100), Resp(2, 413)};
  auto r = StitchFrames(&reqs, &resps, &st);
  EXPECT_EQ(Summary(r), "/a→200");
  EXPECT_EQ(resps.size(), 2u);
  st.open_request_seq = 0;
  reqs.push_back(Req(2, "/big"));
  r = StitchFrames(&reqs, &resps, &st);
  EXPECT_EQ(Summary(r), "/big→413+100");
}

TEST(Http1StitchTest, InformationalFloodBehindAnOpenRequestIsBounded) {
  State st;
  st.max_pending = 4;
  st.open_request_seq = 1;
  Fifo<Frame> reqs;
  Fifo<Frame> resps;
  for (int i = 0; i < 10; ++i) resps.push_back(Resp(1, 102));
  const auto r = StitchFrames(&reqs, &resps, &st);
  EXPECT_EQ(resps.size(), 4u);
  EXPECT_EQ(r.error_count, 6);
}

TEST(Http1StitchTest, TooManyWaitingRequestsGivenUpOldestFirst) {
  State st;
  st.max_pending = 2;
  Fifo<Frame> reqs = {Req(1, "/1"), Req(2, "/2"), Req(3, "/3"), Req(4, "/4")};
  Fifo<Frame> resps;
  const auto r = StitchFrames(&reqs, &resps, &st);
  EXPECT_EQ(Summary(r), "/1→- /2→-");
  EXPECT_EQ(reqs.size(), 2u);
}

TEST(Http1StitchTest, SwitchingProtocolsIsFinal) {
  State st;
  Fifo<Frame> reqs = {Req(1, "/ws")};
  Fifo<Frame> resps = {Resp(1, 101)};
  EXPECT_EQ(Summary(StitchFrames(&reqs, &resps, &st)), "/ws→101");
}

// ---- Which request a response answers (the response parser's pairing) -----------------------

// Parses "HTTP/1.1 <status>" at time t against `st`; returns the request seq it answers.
uint64_t Answer(State* st, uint64_t t, int status = 200, uint64_t* drop_through = nullptr) {
  const string wire = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\n\r\n";
  std::string_view buf = wire;
  Frame f;
  st->ctx.first.first_ns = t;
  EXPECT_EQ(ParseFrame(MessageType::kResponse, &buf, &f, st), ParseState::kSuccess);
  if (drop_through) *drop_through = f.drop_through;
  return f.seq;
}

void AddRequest(State* st, uint64_t t, bool after_loss = false) {
  st->pending.push_back(PendingRequest{st->next_seq++, t, MethodKind::kOther, after_loss});
}

TEST(Http1PairingTest, Fifo) {
  State st;
  AddRequest(&st, 10);
  AddRequest(&st, 30);
  EXPECT_EQ(Answer(&st, 20), 1u);
  EXPECT_EQ(Answer(&st, 40), 2u);
  EXPECT_FALSE(st.pipelined);
}

TEST(Http1PairingTest, ResponseOlderThanEveryRequestAnswersNone) {
  State st;
  AddRequest(&st, 50);
  EXPECT_EQ(Answer(&st, 40), 0u);  // e.g. the request was sent before kspan looked
  EXPECT_EQ(st.pending.size(), 1u);
  EXPECT_EQ(Answer(&st, 60), 1u);
}

TEST(Http1PairingTest, PipeliningDetected) {
  State st;
  AddRequest(&st, 10);
  AddRequest(&st, 11);
  EXPECT_EQ(Answer(&st, 20), 1u);
  EXPECT_TRUE(st.pipelined);
  EXPECT_EQ(Answer(&st, 21), 2u);
}

TEST(Http1PairingTest, LostResponseWithoutPipelining) {
  // Request 1 at 10, its response lost; request 2 at 30; the response at 40 answers 2.
  State st;
  AddRequest(&st, 10);
  AddRequest(&st, 30);
  OnLoss(MessageType::kResponse, &st);
  uint64_t dropped = 0;
  EXPECT_EQ(Answer(&st, 40, 200, &dropped), 2u);
  EXPECT_EQ(dropped, 1u);
  EXPECT_FALSE(st.response_loss);
  EXPECT_TRUE(st.pending.empty());
}

TEST(Http1PairingTest, LostResponseWithPipeliningGivesUp) {
  State st;
  st.pipelined = true;
  AddRequest(&st, 10);
  AddRequest(&st, 11);
  AddRequest(&st, 50);
  OnLoss(MessageType::kResponse, &st);
  uint64_t dropped = 0;
  EXPECT_EQ(Answer(&st, 20, 200, &dropped), 0u);  // 1 or 2? not guessed
  EXPECT_EQ(dropped, 2u);
  ASSERT_EQ(st.pending.size(), 1u);
  EXPECT_EQ(Answer(&st, 60), 3u);  // back in step
}

TEST(Http1PairingTest, LostRequestIsSkippedByTime) {
  // Request 1's bytes were lost; its response (at 20) comes before request 2 (at 30).
  State st;
  AddRequest(&st, 30, /*after_loss=*/true);
  EXPECT_EQ(Answer(&st, 20), 0u);
  EXPECT_EQ(Answer(&st, 40), 1u);
}

TEST(Http1PairingTest, LostPipelinedRequestGivesUp) {
  State st;
  st.pipelined = true;
  AddRequest(&st, 30, /*after_loss=*/true);
  uint64_t dropped = 0;
  EXPECT_EQ(Answer(&st, 40, 200, &dropped), 0u);
  EXPECT_EQ(dropped, 1u);
}

TEST(Http1PairingTest, InformationalUnderLossKeepsWaiting) {
  State st;
  AddRequest(&st, 10);
  AddRequest(&st, 30);
  OnLoss(MessageType::kResponse, &st);
  EXPECT_EQ(Answer(&st, 40, 100), 2u);
  EXPECT_TRUE(st.response_loss);
  EXPECT_EQ(st.pending.size(), 2u);
  EXPECT_EQ(Answer(&st, 41, 200), 2u);
  EXPECT_TRUE(st.pending.empty());
}

}  // namespace
}  // namespace kspan::protocols::http1
