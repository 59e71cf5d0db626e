// The stitching rules on synthetic requests: every rule of correlator/stitcher.h, the
// reorder delay, the assembly window and its bounds.
#include "correlator/stitcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace kspan::correlator {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;

events::SocketTuple Tuple(const std::string& local, uint16_t lport, const std::string& remote,
                          uint16_t rport) {
  events::SocketTuple t;
  t.family = 2;
  t.local = {local, lport};
  t.remote = {remote, rport};
  return t;
}

class StitcherTest : public ::testing::Test {
 protected:
  StitcherTest() { Make({}); }

  void Make(StitcherOptions o) {
    options_ = o;
    out_.clear();
    stitcher_ =
        std::make_unique<Stitcher>(o, &metrics_, [this](model::Span&& s) { out_.push_back(std::move(s)); });
  }

  // A request seen on connection (pid, fd) at t0 + at_ms; returns its key.
  events::ConnKey Request(bool server, uint32_t pid, int fd, uint32_t tid, uint64_t at_ms,
                          const events::SocketTuple& tuple, const std::string& traceparent = "",
                          const std::string& tracestate = "", uint64_t seq = 1) {
    RequestSeen r;
    r.conn = {pid, fd, 1};
    r.seq = seq;
    r.server = server;
    r.tuple = tuple;
    r.tuple_known = true;
    r.timing.tid = tid;
    r.timing.start_ns = kT0 + at_ms * kMs;
    r.traceparent = traceparent;
    r.tracestate = tracestate;
    stitcher_->OnRequest(std::move(r));
    return r.conn;
  }

  void Done(const events::ConnKey& k, const std::string& name, uint64_t start_ms, uint64_t end_ms,
            uint32_t response_tid = 0, uint64_t seq = 1, bool unanswered = false) {
    model::Span s;
    s.name = name;
    s.trace_id = model::TraceId::Random();
    s.span_id = model::SpanId::Random();
    s.start_time_unix_nano = kT0 + start_ms * kMs;
    s.end_time_unix_nano = kT0 + end_ms * kMs;
    stitcher_->OnSpan({.conn = k, .seq = seq, .response = {.tid = response_tid}, .unanswered = unanswered},
                      std::move(s));
  }

  void At(uint64_t ms) { stitcher_->Advance(kT0 + ms * kMs); }

  const model::Span& Out(const std::string& name) {
    for (const auto& s : out_) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no span " << name;
    static model::Span none;
    return none;
  }
  uint64_t Count(const std::string& name, const metrics::Labels& labels = {}) {
    for (const auto& s : metrics_.Snapshot()) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return 0;
  }

  StitcherOptions options_;
  metrics::Registry metrics_;
  std::vector<model::Span> out_;
  std::unique_ptr<Stitcher> stitcher_;
};

// Front (pid 10) serves on :8000 and, on the same thread, calls back (pid 20) on :9000.
TEST_F(StitcherTest, ThreadCausalityAndSameHostPairingMakeOneTree) {
  auto curl = Request(false, 5, 3, 5, 0, Tuple("127.0.0.1", 40000, "127.0.0.1", 8000));
  auto front = Request(true, 10, 4, 11, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000));
  auto call = Request(false, 10, 5, 11, 2, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  auto back = Request(true, 20, 6, 21, 3, Tuple("127.0.0.1", 9000, "127.0.0.1", 40001));
  At(100);
  Done(back, "back", 3, 5);
  Done(call, "call", 2, 6);
  Done(front, "front", 1, 7);
  Done(curl, "curl", 0, 8);
  At(200);
  EXPECT_TRUE(out_.empty()) << "held for the window";
  At(800);
  ASSERT_EQ(out_.size(), 4u);
  const auto &c = Out("curl"), &f = Out("front"), &k = Out("call"), &b = Out("back");
  EXPECT_FALSE(c.parent_span_id.IsValid());
  EXPECT_EQ(f.parent_span_id, c.span_id);
  EXPECT_EQ(k.parent_span_id, f.span_id);
  EXPECT_EQ(b.parent_span_id, k.span_id);
  for (const auto* s : {&f, &k, &b}) EXPECT_EQ(s->trace_id, c.trace_id);
  EXPECT_EQ(out_[0].name, "curl") << "a trace leaves parents first";
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "same_host"}}), 2u);
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "thread"}}), 1u);
  EXPECT_EQ(Count("kspan_traces_flushed_total", {{"reason", "complete"}}), 1u);
}

// The server's read can reach user space before the client's write (other CPU): within
// the reorder delay, decisions still go in order of start.
TEST_F(StitcherTest, PeerSeenLateWithinTheReorderDelayStillPairs) {
  auto back = Request(true, 20, 6, 21, 3, Tuple("127.0.0.1", 9000, "127.0.0.1", 40001));
  At(10);
  auto call = Request(false, 10, 5, 11, 2, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  At(20);
  Done(back, "back", 3, 5);
  Done(call, "call", 2, 6);
  At(100);
  At(1000);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(Out("back").parent_span_id, Out("call").span_id);
  EXPECT_EQ(Out("back").trace_id, Out("call").trace_id);
}

// Past the reorder delay: the client's thread was preempted between its send and the
// syscall's exit (a busy host), so its request reached user space 40 ms after the
// server's, which was decided by then as the root of a trace of its own. The server's
// trace is still held: it moves under the client as the client is decided. (The service
// graph lost such pairs: MetricsIntegration once counted 397 of 400.)
TEST_F(StitcherTest, PeerSeenLateBeyondTheReorderDelayAdoptsTheHeldServer) {
  auto back = Request(true, 20, 6, 21, 3, Tuple("127.0.0.1", 9000, "127.0.0.1", 40001));
  At(40);
  EXPECT_EQ(Count("kspan_stitch_roots_total"), 1u) << "decided alone, a reorder delay after it came";
  auto call = Request(false, 10, 5, 11, 2, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  Done(back, "back", 3, 5);
  At(80);
  Done(call, "call", 2, 6);
  At(200);
  At(1000);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(Out("back").parent_span_id, Out("call").span_id);
  EXPECT_EQ(Out("back").trace_id, Out("call").trace_id);
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "same_host_late"}}), 1u);
  EXPECT_EQ(Count("kspan_traces_flushed_total", {{"reason", "complete"}}), 1u) << "one trace left";
}

// Late adoption takes the exchange the client made, never an earlier or later one on the
// same kept-alive connection, and never a server whose trace has left already.
TEST_F(StitcherTest, LateAdoptionTakesOnlyTheClientsOwnHeldExchange) {
  const auto server_tuple = Tuple("127.0.0.1", 9000, "127.0.0.1", 40001);
  const auto client_tuple = Tuple("127.0.0.1", 40001, "127.0.0.1", 9000);
  // Exchange 1: the server alone (its client's event lost), exported long before.
  auto s1 = Request(true, 20, 6, 21, 3, server_tuple, "", "", 1);
  At(40);
  Done(s1, "s1", 3, 5);
  At(700);
  ASSERT_EQ(out_.size(), 1u);
  // Exchange 2: the server first, then, late, the client, whose request came before it.
  auto s2 = Request(true, 20, 6, 21, 703, server_tuple, "", "", 2);
  At(740);
  auto c2 = Request(false, 10, 5, 11, 702, client_tuple, "", "", 2);
  Done(s2, "s2", 703, 705, 0, 2);
  At(780);
  Done(c2, "c2", 702, 706, 0, 2);
  At(1600);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_FALSE(Out("s1").parent_span_id.IsValid());
  EXPECT_EQ(Out("s2").parent_span_id, Out("c2").span_id);
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "same_host_late"}}), 1u);
}

// The pipeline running half a second behind, and both ends of an exchange arriving whole
// in one batch (HTTP/2 streams do: their records come when the stream ends): the client
// ended long ago by the events' clock, but it is still the server's peer.
TEST_F(StitcherTest, ABatchArrivingLateStillPairs) {
  At(500);
  auto call = Request(false, 10, 5, 11, 0, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  auto back = Request(true, 20, 6, 21, 1, Tuple("127.0.0.1", 9000, "127.0.0.1", 40001));
  Done(back, "back", 1, 5);
  Done(call, "call", 0, 8);
  At(600);
  At(2000);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(Out("back").parent_span_id, Out("call").span_id);
  EXPECT_EQ(Out("back").trace_id, Out("call").trace_id);
}

// As the pipeline drives it: the batch's records come before the Advance that closes
// the batch, and the previous Advance was long before (an idle agent drains a burst that
// took 300 ms to reach it). The client is seen to end at the Advance after its record,
// not at the previous one: h2load's 2000 streams all lost their pairing this way.
TEST_F(StitcherTest, ABurstAfterAnIdleSpellStillPairs) {
  At(5);
  auto call = Request(false, 10, 5, 11, 10, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  auto back = Request(true, 20, 6, 21, 11, Tuple("127.0.0.1", 9000, "127.0.0.1", 40001));
  Done(back, "back", 11, 15);
  Done(call, "call", 10, 16);
  At(310);
  At(2000);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(Out("back").parent_span_id, Out("call").span_id);
  EXPECT_EQ(Out("back").trace_id, Out("call").trace_id);
}

// The pipeline stalls between two batches (a busy host): the client's span came in the
// batch before, and the Advance that decides the server comes 280 ms later, past the
// client's 4 reorder delays. The client is not retired before that Advance decided what
// had arrived before its end.
TEST_F(StitcherTest, AStallBetweenBatchesStillPairs) {
  At(5);
  auto call = Request(false, 10, 5, 11, 10, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  auto back = Request(true, 20, 6, 21, 11, Tuple("127.0.0.1", 9000, "127.0.0.1", 40001));
  Done(call, "call", 10, 16);
  At(20);
  At(300);
  Done(back, "back", 11, 15);
  At(2000);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(Out("back").parent_span_id, Out("call").span_id);
  EXPECT_EQ(Out("back").trace_id, Out("call").trace_id);
}

// The wall clock steps back between two batches: the clients stamped after the step are
// armed for retirement on their own stamps (completed_unarmed_late_), so a server decided
// then still pairs with its client, and a client stamped before the step retires as usual.
TEST_F(StitcherTest, AClockSteppingBackStillPairs) {
  At(5);
  auto c1 = Request(false, 10, 5, 11, 10, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  Done(c1, "c1", 10, 16);
  At(100);  // c1 stamped at 100
  At(60);   // the clock steps back 40 ms
  auto c2 = Request(false, 10, 7, 11, 61, Tuple("127.0.0.1", 40002, "127.0.0.1", 9000));
  auto s2 = Request(true, 20, 6, 21, 63, Tuple("127.0.0.1", 9000, "127.0.0.1", 40002));
  Done(c2, "c2", 61, 66);
  At(70);  // c2 stamped at 70, before c1's stamp
  Done(s2, "s2", 63, 64);
  At(110);
  // Long after: a server on c1's connection finds c1 retired and starts a trace.
  auto s1 = Request(true, 20, 8, 21, 900, Tuple("127.0.0.1", 9000, "127.0.0.1", 40001));
  Done(s1, "s1", 900, 901);
  At(1000);
  At(3000);
  ASSERT_EQ(out_.size(), 4u);
  EXPECT_EQ(Out("s2").parent_span_id, Out("c2").span_id);
  EXPECT_EQ(Out("s2").trace_id, Out("c2").trace_id);
  EXPECT_FALSE(Out("s1").parent_span_id.IsValid());
}

// The same request announced again after its first node ended (the newer wins): the
// first's pending retirement follows the key to the new node, which still pairs.
TEST_F(StitcherTest, ARequestAnnouncedAgainStillPairs) {
  At(5);
  const auto ct = Tuple("127.0.0.1", 40001, "127.0.0.1", 9000);
  auto call = Request(false, 10, 5, 11, 10, ct);
  Done(call, "first", 10, 12);
  At(20);                                    // "first" stamped, not yet armed
  call = Request(false, 10, 5, 11, 21, ct);  // same connection and sequence: replaces it
  auto back = Request(true, 20, 6, 21, 22, Tuple("127.0.0.1", 9000, "127.0.0.1", 40001));
  Done(back, "back", 22, 24);
  Done(call, "again", 21, 25);
  At(60);
  At(3000);
  EXPECT_EQ(Out("back").parent_span_id, Out("again").span_id);
  EXPECT_EQ(Out("back").trace_id, Out("again").trace_id);
}

// An HTTP/2 stream whose answer the client side did not capture: its CLIENT span ends at
// its request, before the server read it. The stream id names one exchange, so the
// server still pairs with it (over one key there is no earlier exchange to confuse).
TEST_F(StitcherTest, AStreamWhoseAnswerWasNotCapturedStillPairs) {
  At(5);
  RequestSeen r;
  r.conn = {10, 5, 1};
  r.seq = 1;
  r.tuple = Tuple("127.0.0.1", 40001, "127.0.0.1", 9000);
  r.tuple_known = true;
  r.timing.tid = 11;
  r.timing.start_ns = kT0 + 10 * kMs;
  r.pair_key = "7";
  RequestSeen s = r;
  s.conn = {20, 6, 1};
  s.server = true;
  s.tuple = Tuple("127.0.0.1", 9000, "127.0.0.1", 40001);
  s.timing.tid = 21;
  s.timing.start_ns = kT0 + 12 * kMs;
  stitcher_->OnRequest(std::move(r));
  stitcher_->OnRequest(std::move(s));
  Done({10, 5, 1}, "call", 10, 11);  // no answer seen: it ends at its request
  Done({20, 6, 1}, "back", 12, 15);
  At(50);
  At(2000);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(Out("back").parent_span_id, Out("call").span_id);
}

// An HTTP/1 client that read part of its answer and closed (or gave up waiting): no answer
// was seen, so its span ends with its request, before the server's request was even read.
// It is still the server's peer, decided in either order: the server first when the
// client's request reaches the stitcher past the reorder delay.
TEST_F(StitcherTest, AClientWhoseAnswerWasNotSeenStillPairs) {
  for (const bool server_first : {false, true}) {
    SCOPED_TRACE(server_first ? "server decided first" : "in order");
    Make({});
    const uint64_t t = server_first ? 2000 : 0;
    const auto ct = Tuple("127.0.0.1", 40001, "127.0.0.1", 9000),
               st = Tuple("127.0.0.1", 9000, "127.0.0.1", 40001);
    const auto s = Request(true, 20, 6, 21, t + 12, st);
    if (server_first) At(t + 50);
    const auto c = Request(false, 10, 5, 11, t + 10, ct);
    Done(c, "call", t + 10, t + 10, 0, 1, /*unanswered=*/true);
    Done(s, "back", t + 12, t + 15, 21);
    At(t + 100);
    At(t + 2000);
    ASSERT_EQ(out_.size(), 2u);
    EXPECT_EQ(Out("back").parent_span_id, Out("call").span_id);
    EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", server_first ? "same_host_late" : "same_host"}}),
              1u);
  }
}

// Such a client's exchange ends where the connection's next request begins: a server whose
// own client came after it (the server's first request lost to kspan) is that client's.
TEST_F(StitcherTest, AClientWhoseAnswerWasNotSeenDoesNotTakeTheNextExchange) {
  const auto ct = Tuple("127.0.0.1", 40001, "127.0.0.1", 9000),
             st = Tuple("127.0.0.1", 9000, "127.0.0.1", 40001);
  auto c1 = Request(false, 10, 5, 11, 10, ct, "", "", 1);
  Done(c1, "c1", 10, 10, 0, 1, /*unanswered=*/true);
  auto c2 = Request(false, 10, 5, 11, 20, ct, "", "", 2);
  auto s2 = Request(true, 20, 6, 21, 21, st, "", "", 2);
  Done(s2, "s2", 21, 22, 21, 2);
  Done(c2, "c2", 20, 23, 0, 2);
  At(100);
  At(2000);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(Out("s2").parent_span_id, Out("c2").span_id);
  EXPECT_FALSE(Out("c1").parent_span_id.IsValid());
}

// Keep-alive: each request on one connection pairs with its own client request.
TEST_F(StitcherTest, KeepAliveRequestsPairInOrder) {
  const auto ct = Tuple("127.0.0.1", 40001, "127.0.0.1", 9000),
             st = Tuple("127.0.0.1", 9000, "127.0.0.1", 40001);
  for (uint64_t i = 1; i <= 3; ++i) {
    auto c = Request(false, 10, 5, 11, i * 10, ct, "", "", i);
    auto s = Request(true, 20, 6, 21, i * 10 + 1, st, "", "", i);
    Done(s, "s" + std::to_string(i), i * 10 + 1, i * 10 + 2, 21, i);
    Done(c, "c" + std::to_string(i), i * 10, i * 10 + 3, 0, i);
  }
  At(100);
  At(1000);
  ASSERT_EQ(out_.size(), 6u);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(Out("s" + std::to_string(i)).parent_span_id, Out("c" + std::to_string(i)).span_id) << i;
  }
}

TEST_F(StitcherTest, EventLoopOneRequestInFlightIsTheParent) {
  auto s = Request(true, 10, 4, 11, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000));
  auto c = Request(false, 10, 5, 12, 2, Tuple("127.0.0.1", 40001, "10.0.0.9", 80));  // another thread
  At(100);
  Done(c, "c", 2, 3);
  Done(s, "s", 1, 4);
  At(1000);
  EXPECT_EQ(Out("c").parent_span_id, Out("s").span_id);
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "event_loop"}}), 1u);
}

TEST_F(StitcherTest, SeveralInFlightIsAmbiguousLinksNoParent) {
  auto s1 = Request(true, 10, 4, 11, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000));
  auto s2 = Request(true, 10, 7, 11, 2, Tuple("127.0.0.1", 8000, "127.0.0.1", 40002));
  auto c = Request(false, 10, 5, 11, 3, Tuple("127.0.0.1", 40001, "10.0.0.9", 80));
  At(100);
  Done(c, "c", 3, 4);
  Done(s1, "s1", 1, 5);
  Done(s2, "s2", 2, 6);
  At(1000);
  const auto& cs = Out("c");
  EXPECT_FALSE(cs.parent_span_id.IsValid());
  EXPECT_NE(cs.trace_id, Out("s1").trace_id);
  EXPECT_NE(cs.trace_id, Out("s2").trace_id);
  ASSERT_EQ(cs.links.size(), 2u);
  EXPECT_EQ(cs.links[0].span_id, Out("s1").span_id);
  EXPECT_EQ(cs.links[0].trace_id, Out("s1").trace_id);
  EXPECT_EQ(cs.links[1].span_id, Out("s2").span_id);
  const auto* amb = cs.Find("kspan.parent.ambiguous");
  ASSERT_NE(amb, nullptr);
  EXPECT_TRUE(std::get<bool>(*amb));
  EXPECT_EQ(Count("kspan_stitch_ambiguous_total"), 1u);
}

// node: one thread reads two requests in one loop turn and calls out for each; then a
// second call is made in the turn that read the first call's response.
TEST_F(StitcherTest, LoopTurnPicksTheRequestReadLastBeforeTheCall) {
  auto read = [&](int fd, uint64_t at_ms, uint32_t turn) {
    RequestSeen r;
    r.conn = {10, fd, 1};
    r.seq = 1;
    r.server = true;
    r.tuple = Tuple("127.0.0.1", 8000, "127.0.0.1", static_cast<uint16_t>(40000 + fd));
    r.tuple_known = true;
    r.timing.tid = r.timing.end_tid = 11;
    r.timing.turn = r.timing.end_turn = turn;
    r.timing.start_ns = r.timing.end_ns = kT0 + at_ms * kMs;
    stitcher_->OnRequest(std::move(r));
    return r.conn;
  };
  auto call = [&](int fd, uint64_t connect_ms, uint32_t turn, uint64_t write_ms) {
    RequestSeen r;
    r.conn = {10, fd, 1};
    r.seq = 1;
    r.tuple = Tuple("127.0.0.1", static_cast<uint16_t>(50000 + fd), "10.0.0.9", 80);
    r.tuple_known = true;
    r.timing.tid = 11;
    r.timing.turn = turn + 1;  // the write comes in a later turn, once connected
    r.timing.start_ns = r.timing.end_ns = kT0 + write_ms * kMs;
    r.open_ns = kT0 + connect_ms * kMs;
    r.open_tid = 11;
    r.open_turn = turn;
    stitcher_->OnRequest(std::move(r));
    return r.conn;
  };
  auto s1 = read(4, 1, 5);
  auto c1 = call(20, 2, 5, 6);  // connected right after s1 was read
  auto s2 = read(7, 3, 5);
  auto c2 = call(21, 4, 5, 7);  // right after s2
  At(100);
  // c1's response comes back in turn 9; the handler of s1 calls again in that turn.
  model::Span c1span;
  c1span.name = "c1";
  c1span.start_time_unix_nano = kT0 + 6 * kMs;
  c1span.end_time_unix_nano = kT0 + 20 * kMs;
  stitcher_->OnSpan({.conn = c1,
                     .seq = 1,
                     .response = {.start_ns = kT0 + 20 * kMs,
                                  .end_ns = kT0 + 20 * kMs,
                                  .tid = 11,
                                  .turn = 9,
                                  .end_tid = 11,
                                  .end_turn = 9}},
                    std::move(c1span));
  RequestSeen again;
  again.conn = {10, 22, 1};
  again.seq = 2;  // a pooled connection: its write is its first act
  again.tuple = Tuple("127.0.0.1", 50022, "10.0.0.9", 80);
  again.tuple_known = true;
  again.timing.tid = 11;
  again.timing.turn = 9;
  again.timing.start_ns = kT0 + 21 * kMs;
  stitcher_->OnRequest(std::move(again));
  At(200);
  Done(c2, "c2", 7, 30);
  Done({10, 22, 1}, "again", 21, 25, 0, 2);
  Done(s1, "s1", 1, 40);
  Done(s2, "s2", 3, 41);
  At(2000);
  EXPECT_EQ(Out("c1").parent_span_id, Out("s1").span_id);
  EXPECT_EQ(Out("c2").parent_span_id, Out("s2").span_id);
  EXPECT_EQ(Out("again").parent_span_id, Out("s1").span_id) << "continues the response it followed";
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "loop_turn"}}), 3u);
  EXPECT_EQ(Count("kspan_stitch_ambiguous_total"), 0u);
}

TEST_F(StitcherTest, AServerThatAnsweredIsNoLongerACandidate) {
  auto s1 = Request(true, 10, 4, 11, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000));
  Done(s1, "s1", 1, 2, 11);
  auto s2 = Request(true, 10, 7, 11, 3, Tuple("127.0.0.1", 8000, "127.0.0.1", 40002));
  auto c = Request(false, 10, 5, 11, 4, Tuple("127.0.0.1", 40001, "10.0.0.9", 80));
  At(100);
  Done(c, "c", 4, 5);
  Done(s2, "s2", 3, 6);
  At(1000);
  EXPECT_EQ(Out("c").parent_span_id, Out("s2").span_id);
}

TEST_F(StitcherTest, IncomingTraceparentWinsForTheServer) {
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736", parent = "00f067aa0ba902b7";
  auto s = Request(true, 10, 4, 11, 1, Tuple("10.0.0.1", 8000, "10.0.0.2", 40000),
                   "00-" + trace + "-" + parent + "-00", "congo=t61rcWkgMzE");
  auto c = Request(false, 10, 5, 11, 2, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  At(100);
  Done(c, "c", 2, 3);
  Done(s, "s", 1, 4);
  At(1000);
  const auto& ss = Out("s");
  EXPECT_EQ(ss.trace_id.Hex(), trace);
  EXPECT_EQ(ss.parent_span_id.Hex(), parent);
  EXPECT_EQ(ss.trace_flags, 0) << "not sampled upstream: kept";
  EXPECT_EQ(ss.trace_state, "congo=t61rcWkgMzE");
  EXPECT_EQ(Out("c").trace_id.Hex(), trace);
  EXPECT_EQ(Out("c").trace_flags, 0);
  EXPECT_EQ(Out("c").parent_span_id, ss.span_id);
}

TEST_F(StitcherTest, InvalidTraceparentIsIgnored) {
  auto s = Request(true, 10, 4, 11, 1, Tuple("10.0.0.1", 8000, "10.0.0.2", 40000),
                   "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
  At(100);
  Done(s, "s", 1, 4);
  At(1000);
  EXPECT_FALSE(Out("s").parent_span_id.IsValid());
  EXPECT_TRUE(Out("s").trace_id.IsValid());
}

// A program that sends its own traceparent: its CLIENT span continues it, and the server
// that read the same header from it sits under that CLIENT span.
TEST_F(StitcherTest, ClientSentTraceparentCarriesTheWholeTree) {
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736", parent = "00f067aa0ba902b7";
  const std::string tp = "00-" + trace + "-" + parent + "-01";
  auto c = Request(false, 5, 3, 5, 0, Tuple("127.0.0.1", 40000, "127.0.0.1", 8000), tp);
  auto s = Request(true, 10, 4, 11, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000), tp);
  auto d = Request(false, 10, 5, 11, 2, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  At(100);
  Done(d, "d", 2, 3);
  Done(s, "s", 1, 4);
  Done(c, "c", 0, 5);
  At(1000);
  EXPECT_EQ(Out("c").parent_span_id.Hex(), parent);
  EXPECT_EQ(Out("s").parent_span_id, Out("c").span_id);
  EXPECT_EQ(Out("d").parent_span_id, Out("s").span_id);
  for (const char* n : {"c", "s", "d"}) EXPECT_EQ(Out(n).trace_id.Hex(), trace) << n;
}

// Fire-and-forget: the response went out before the call it started ended. The call and
// everything under it (the downstream server) move to a trace of their own, linked.
TEST_F(StitcherTest, CallOutlivingItsRequestFollowsFromIt) {
  auto s = Request(true, 10, 4, 11, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000));
  auto c = Request(false, 10, 5, 11, 2, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  auto d = Request(true, 20, 6, 21, 3, Tuple("127.0.0.1", 9000, "127.0.0.1", 40001));
  At(100);
  Done(s, "s", 1, 4, 11);
  Done(d, "d", 3, 300);
  Done(c, "c", 2, 301);
  At(1000);
  ASSERT_EQ(out_.size(), 3u);
  const auto &ss = Out("s"), &cs = Out("c"), &ds = Out("d");
  EXPECT_FALSE(cs.parent_span_id.IsValid());
  EXPECT_NE(cs.trace_id, ss.trace_id);
  ASSERT_EQ(cs.links.size(), 1u);
  EXPECT_EQ(cs.links[0].span_id, ss.span_id);
  EXPECT_EQ(cs.links[0].trace_id, ss.trace_id);
  EXPECT_EQ(ds.parent_span_id, cs.span_id);
  EXPECT_EQ(ds.trace_id, cs.trace_id) << "the subtree follows its root";
  EXPECT_EQ(Count("kspan_stitch_follows_from_total"), 1u);
}

// An open parent holds its finished children: a trace leaves whole.
TEST_F(StitcherTest, RunningParentHoldsChildrenUntilMaxHold) {
  Make({.window_ns = 500 * kMs, .max_hold_ns = 5000 * kMs});
  auto s = Request(true, 10, 4, 11, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000));
  auto c = Request(false, 10, 5, 11, 2, Tuple("127.0.0.1", 40001, "10.0.0.9", 80));
  At(100);
  Done(c, "c", 2, 3);
  At(2000);
  EXPECT_TRUE(out_.empty());
  At(5200);
  ASSERT_EQ(out_.size(), 1u) << "max hold: what has ended leaves";
  EXPECT_EQ(Count("kspan_traces_flushed_total", {{"reason", "max_age"}}), 1u);
  Done(s, "s", 1, 5300);
  ASSERT_EQ(out_.size(), 2u) << "the rest leaves as it ends";
  EXPECT_EQ(Out("c").parent_span_id, Out("s").span_id);
  EXPECT_EQ(Out("c").trace_id, Out("s").trace_id);
}

// 10k traces that never finish (a front that never answers while its calls did): the held
// spans and bytes stay under their caps, the oldest traces leave early, counted.
TEST_F(StitcherTest, TenThousandUnfinishedTracesStayUnderTheCaps) {
  Make({.max_held_spans = 1000, .max_held_bytes = 512 * 1024});
  size_t peak_spans = 0, peak_bytes = 0;
  for (uint32_t i = 0; i < 10000; ++i) {
    const uint16_t port = static_cast<uint16_t>(20000 + i % 40000);
    Request(true, 10, static_cast<int>(1000 + i), 11 + i, i, Tuple("127.0.0.1", 8000, "127.0.0.1", port));
    auto c =
        Request(false, 10, static_cast<int>(50000 + i), 11 + i, i, Tuple("127.0.0.1", port, "10.0.0.9", 80));
    At(i + 100);
    model::Span s;
    s.name = "c";
    s.attributes.push_back({"url.full", std::string(200, 'x')});
    s.start_time_unix_nano = kT0 + i * kMs;
    s.end_time_unix_nano = kT0 + (i + 1) * kMs;
    stitcher_->OnSpan({c, 1, 0}, std::move(s));
    peak_spans = std::max(peak_spans, stitcher_->held_spans());
    peak_bytes = std::max(peak_bytes, stitcher_->held_bytes());
  }
  EXPECT_LE(peak_spans, 1000u);
  EXPECT_LE(peak_bytes, 512u * 1024);
  const uint64_t early = Count("kspan_traces_flushed_total", {{"reason", "max_held_spans"}}) +
                         Count("kspan_traces_flushed_total", {{"reason", "max_held_bytes"}});
  EXPECT_GT(early, 8000u);
  EXPECT_EQ(out_.size(), early) << "each early flush exported its finished span";
}

TEST_F(StitcherTest, NodeCapForgetsTheOldestRequests) {
  Make({.max_nodes = 100});
  for (int i = 0; i < 300; ++i) Request(true, 10, i, 11, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 1000 + i));
  EXPECT_LE(stitcher_->nodes(), 100u);
  EXPECT_EQ(Count("kspan_stitch_forgotten_total"), 200u);
  // The record of a forgotten request still becomes a span, on its own.
  Done({10, 0, 1}, "late", 1, 2);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(Count("kspan_stitch_unannounced_total"), 1u);
}

// python's subprocess.run(["curl", ...]) inside a request: exec span under the request,
// curl's call under the exec span, the process end closes it with its exit code.
TEST_F(StitcherTest, ExecDuringARequestContinuesItsTrace) {
  auto s = Request(true, 10, 4, 12, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000));
  model::Span exec;
  exec.name = "exec curl";
  exec.kind = model::SpanKind::kInternal;
  exec.start_time_unix_nano = kT0 + 2 * kMs;
  stitcher_->OnExec({.pid = 30, .parent_pid = 10, .parent_tid = 12, .ts_ns = kT0 + 2 * kMs}, std::move(exec));
  auto c = Request(false, 30, 3, 30, 3, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  At(100);
  Done(c, "c", 3, 4);
  EXPECT_TRUE(stitcher_->TracksExec(30));
  stitcher_->OnProcessEnd(30, kT0 + 5 * kMs, {{"process.exit.code", int64_t{0}}}, nullptr);
  Done(s, "s", 1, 6);
  At(1000);
  ASSERT_EQ(out_.size(), 3u);
  const auto& e = Out("exec curl");
  EXPECT_EQ(e.parent_span_id, Out("s").span_id);
  EXPECT_EQ(e.trace_id, Out("s").trace_id);
  EXPECT_EQ(e.end_time_unix_nano, kT0 + 5 * kMs);
  EXPECT_EQ(Out("c").parent_span_id, e.span_id);
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "exec"}}), 2u);
}

TEST_F(StitcherTest, ExecOutsideTracedWorkMakesNoSpan) {
  model::Span exec;
  exec.name = "exec ls";
  stitcher_->OnExec({.pid = 30, .parent_pid = 1, .parent_tid = 1, .ts_ns = kT0}, std::move(exec));
  At(100);
  EXPECT_FALSE(stitcher_->TracksExec(30));
  stitcher_->OnProcessEnd(30, kT0 + kMs, {}, nullptr);
  At(2000);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(stitcher_->nodes(), 0u);
}

TEST_F(StitcherTest, ExportedNodesAreErasedAndShutdownFlushesEverything) {
  auto s = Request(true, 10, 4, 11, 1, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000));
  Done(s, "s", 1, 2);
  At(100);
  At(1000);
  ASSERT_EQ(out_.size(), 1u);
  At(2000);
  EXPECT_EQ(stitcher_->nodes(), 0u);
  EXPECT_EQ(stitcher_->held_spans(), 0u);
  auto s2 = Request(true, 10, 5, 11, 2100, Tuple("127.0.0.1", 8000, "127.0.0.1", 40001));
  Done(s2, "s2", 2100, 2101);
  stitcher_->FlushAll();
  EXPECT_EQ(out_.size(), 2u) << "undecided and held spans leave at shutdown";
}

// ---- Sessions: an agent's process lifetime as the parent of its calls outside any task ----

model::Span SessionSpan(uint64_t start_ns) {
  model::Span s;
  s.name = "invoke_agent cli";
  s.kind = model::SpanKind::kInternal;
  s.start_time_unix_nano = start_ns;
  return s;
}

Stitcher::FinishSession ExitCode(int64_t code) {
  return [code](uint32_t, model::Span* s) {
    s->Set("process.exit.code", code);
    if (code != 0) s->Set("error.type", std::string("exit_code"));
  };
}

// A CLI agent (pid 50) calls an LLM on this host (pid 60 answers) and then a tool, with no
// request of its own in flight: both calls are children of its session, the LLM server's
// span joins the same trace by same-host pairing, and the session spans the process.
TEST_F(StitcherTest, SessionParentsAnAgentsCallsOutsideAnyTask) {
  ASSERT_TRUE(stitcher_->OnSession(50, SessionSpan(kT0)));
  EXPECT_TRUE(stitcher_->HasSession(50));
  auto chat = Request(false, 50, 3, 50, 10, Tuple("127.0.0.1", 40000, "127.0.0.1", 8443));
  auto llm = Request(true, 60, 4, 60, 11, Tuple("127.0.0.1", 8443, "127.0.0.1", 40000));
  auto tool = Request(false, 50, 5, 50, 30, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  At(100);
  Done(llm, "llm", 11, 19);
  Done(chat, "chat", 10, 20);
  Done(tool, "tool", 30, 40);
  At(150);
  stitcher_->EndSession(50, kT0 + 60 * kMs, ExitCode(0));
  EXPECT_FALSE(stitcher_->HasSession(50));
  At(1000);
  ASSERT_EQ(out_.size(), 4u);
  const auto& session = Out("invoke_agent cli");
  EXPECT_EQ(out_[0].name, "invoke_agent cli") << "parents first";
  EXPECT_EQ(session.kind, model::SpanKind::kInternal);
  EXPECT_FALSE(session.parent_span_id.IsValid());
  EXPECT_EQ(session.start_time_unix_nano, kT0);
  EXPECT_EQ(session.end_time_unix_nano, kT0 + 60 * kMs);
  EXPECT_EQ(session.status_code, model::StatusCode::kUnset);
  EXPECT_EQ(Out("chat").parent_span_id, session.span_id);
  EXPECT_EQ(Out("tool").parent_span_id, session.span_id);
  EXPECT_EQ(Out("llm").parent_span_id, Out("chat").span_id);
  for (const auto* s : {&Out("chat"), &Out("tool"), &Out("llm")}) EXPECT_EQ(s->trace_id, session.trace_id);
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "session"}}), 2u);
  EXPECT_EQ(Count("kspan_stitch_roots_total"), 1u) << "one trace";
  EXPECT_EQ(Count("kspan_sessions_total", {{"outcome", "opened"}}), 1u);
}

TEST_F(StitcherTest, ASessionEndingNonZeroIsAnError) {
  stitcher_->OnSession(50, SessionSpan(kT0));
  auto c = Request(false, 50, 3, 50, 10, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  At(100);
  Done(c, "c", 10, 20);
  stitcher_->EndSession(50, kT0 + 30 * kMs, ExitCode(1));
  At(1000);
  ASSERT_EQ(out_.size(), 2u);
  const auto& session = Out("invoke_agent cli");
  EXPECT_EQ(session.status_code, model::StatusCode::kError);
  ASSERT_NE(session.Find("process.exit.code"), nullptr);
  EXPECT_EQ(std::get<int64_t>(*session.Find("process.exit.code")), 1);
}

// A session no call needed (an agent whose every call had a task around it) makes no span.
TEST_F(StitcherTest, ASessionNothingNeededMakesNoSpan) {
  stitcher_->OnSession(50, SessionSpan(kT0));
  auto task = Request(true, 50, 4, 51, 5, Tuple("127.0.0.1", 8000, "127.0.0.1", 40000));
  auto call = Request(false, 50, 5, 51, 6, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  At(100);
  Done(call, "call", 6, 7);
  Done(task, "task", 5, 8);
  stitcher_->EndSession(50, kT0 + 200 * kMs, ExitCode(0));
  At(1000);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(Out("call").parent_span_id, Out("task").span_id) << "a task's call stays the task's";
  At(3000);
  EXPECT_EQ(stitcher_->nodes(), 0u);
}

// An agent found by its first LLM call: its earlier calls, still held, and that call itself
// (decided as a root before the answer told it was an LLM call) move under the session,
// with what hangs below them.
TEST_F(StitcherTest, ASessionOpenedLateAdoptsTheProcessesHeldRootCalls) {
  auto early = Request(false, 50, 3, 50, 5, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  auto server = Request(true, 60, 4, 60, 6, Tuple("127.0.0.1", 9000, "127.0.0.1", 40000));
  auto chat = Request(false, 50, 5, 50, 20, Tuple("127.0.0.1", 40001, "127.0.0.1", 8443));
  At(100);
  Done(server, "server", 6, 7);
  Done(early, "early", 5, 8);
  EXPECT_EQ(Count("kspan_stitch_roots_total"), 2u);
  ASSERT_TRUE(stitcher_->OnSession(50, SessionSpan(kT0 + 1 * kMs)));
  Done(chat, "chat", 20, 200);
  auto after = Request(false, 50, 6, 50, 210, Tuple("127.0.0.1", 40002, "127.0.0.1", 9000));
  At(300);
  Done(after, "after", 210, 220);
  stitcher_->EndSession(50, kT0 + 250 * kMs, ExitCode(0));
  At(2000);
  ASSERT_EQ(out_.size(), 5u);
  const auto& session = Out("invoke_agent cli");
  for (const char* name : {"early", "chat", "after"}) {
    EXPECT_EQ(Out(name).parent_span_id, session.span_id) << name;
    EXPECT_EQ(Out(name).trace_id, session.trace_id) << name;
  }
  EXPECT_EQ(Out("server").parent_span_id, Out("early").span_id);
  EXPECT_EQ(Out("server").trace_id, session.trace_id);
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "session"}}), 3u);
}

// A trace already exported cannot move: a session opened after it leaves it alone.
TEST_F(StitcherTest, ASessionOpenedLateLeavesExportedTracesAlone) {
  auto early = Request(false, 50, 3, 50, 5, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  At(100);
  Done(early, "early", 5, 8);
  At(1000);
  ASSERT_EQ(out_.size(), 1u);
  stitcher_->OnSession(50, SessionSpan(kT0));
  auto c = Request(false, 50, 4, 50, 1100, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  At(1200);
  Done(c, "c", 1100, 1110);
  stitcher_->EndSession(50, kT0 + 1200 * kMs, ExitCode(0));
  At(3000);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_FALSE(Out("early").parent_span_id.IsValid());
  EXPECT_EQ(Out("c").parent_span_id, Out("invoke_agent cli").span_id);
}

// Start unknown (no exec seen, no /proc): the session starts with its first call.
TEST_F(StitcherTest, ASessionOfUnknownStartStartsWithItsFirstCall) {
  stitcher_->OnSession(50, SessionSpan(0));
  auto c = Request(false, 50, 3, 50, 10, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  At(100);
  Done(c, "c", 10, 20);
  stitcher_->EndSession(50, kT0 + 30 * kMs, ExitCode(0));
  At(1000);
  EXPECT_EQ(Out("invoke_agent cli").start_time_unix_nano, kT0 + 10 * kMs);
}

// Commands and tool servers an agent starts outside any task hang below its session, and
// their own calls below them.
TEST_F(StitcherTest, AProcessAnAgentStartsIsUnderItsSession) {
  stitcher_->OnSession(50, SessionSpan(kT0));
  model::Span exec;
  exec.name = "exec tool";
  exec.kind = model::SpanKind::kInternal;
  exec.start_time_unix_nano = kT0 + 5 * kMs;
  stitcher_->OnExec({.pid = 70, .parent_pid = 50, .parent_tid = 50, .ts_ns = kT0 + 5 * kMs}, std::move(exec));
  auto c = Request(false, 70, 3, 70, 10, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  At(100);
  Done(c, "c", 10, 20);
  stitcher_->OnProcessEnd(70, kT0 + 25 * kMs, {{"process.exit.code", int64_t{0}}}, nullptr);
  stitcher_->EndSession(50, kT0 + 30 * kMs, ExitCode(0));
  At(1000);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(Out("exec tool").parent_span_id, Out("invoke_agent cli").span_id);
  EXPECT_EQ(Out("c").parent_span_id, Out("exec tool").span_id);
  EXPECT_EQ(Out("c").trace_id, Out("invoke_agent cli").trace_id);
}

// A session outlives the window bounds: its calls leave as they end (max hold), parented
// to the session, which leaves at its end in the same trace.
TEST_F(StitcherTest, ALongSessionsCallsLeaveBeforeIt) {
  StitcherOptions o;
  o.max_hold_ns = 1'000'000'000;
  Make(o);
  stitcher_->OnSession(50, SessionSpan(kT0));
  auto c = Request(false, 50, 3, 50, 10, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  At(100);
  Done(c, "c", 10, 20);
  At(1500);
  ASSERT_EQ(out_.size(), 1u);
  auto d = Request(false, 50, 4, 50, 1600, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  At(1700);
  Done(d, "d", 1600, 1650);
  At(1800);
  ASSERT_EQ(out_.size(), 2u) << "past max hold, spans leave as they end";
  stitcher_->EndSession(50, kT0 + 5000 * kMs, ExitCode(0));
  At(5100);
  ASSERT_EQ(out_.size(), 3u);
  const auto& session = Out("invoke_agent cli");
  EXPECT_EQ(Out("c").parent_span_id, session.span_id);
  EXPECT_EQ(Out("d").parent_span_id, session.span_id);
  EXPECT_EQ(Out("d").trace_id, session.trace_id);
  EXPECT_EQ(Out("c").trace_id, session.trace_id);
}

// Shutdown: a session still open ends then, marked as cut, and nothing it holds is lost.
TEST_F(StitcherTest, ShutdownCutsOpenSessions) {
  stitcher_->OnSession(50, SessionSpan(kT0));
  auto c = Request(false, 50, 3, 50, 10, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  At(100);
  Done(c, "c", 10, 20);
  At(200);
  stitcher_->FlushAll();
  ASSERT_EQ(out_.size(), 2u);
  const auto& session = Out("invoke_agent cli");
  EXPECT_EQ(session.end_time_unix_nano, kT0 + 200 * kMs);
  ASSERT_NE(session.Find("kspan.span.cut"), nullptr);
  EXPECT_TRUE(std::get<bool>(*session.Find("kspan.span.cut")));
  EXPECT_EQ(session.status_code, model::StatusCode::kUnset);
  EXPECT_EQ(Count("kspan_sessions_total", {{"outcome", "cut"}}), 1u);
}

TEST_F(StitcherTest, SessionsAreBounded) {
  StitcherOptions o;
  o.max_sessions = 2;
  Make(o);
  EXPECT_TRUE(stitcher_->OnSession(50, SessionSpan(kT0)));
  EXPECT_TRUE(stitcher_->OnSession(51, SessionSpan(kT0)));
  EXPECT_TRUE(stitcher_->OnSession(51, SessionSpan(kT0))) << "the same process again: kept";
  EXPECT_FALSE(stitcher_->OnSession(52, SessionSpan(kT0)));
  EXPECT_EQ(Count("kspan_sessions_total", {{"outcome", "dropped"}}), 1u);
  stitcher_->EndSession(50, kT0 + kMs, ExitCode(0));
  EXPECT_TRUE(stitcher_->OnSession(52, SessionSpan(kT0 + kMs))) << "an ended one frees its place";
}

// A pid that comes back is another process: calls after the session ended are not its.
TEST_F(StitcherTest, ACallAfterTheSessionEndedIsNotItsChild) {
  stitcher_->OnSession(50, SessionSpan(kT0));
  auto a = Request(false, 50, 3, 50, 10, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  At(100);
  Done(a, "a", 10, 20);
  stitcher_->EndSession(50, kT0 + 30 * kMs, ExitCode(0));
  auto b = Request(false, 50, 4, 50, 120, Tuple("127.0.0.1", 40001, "127.0.0.1", 9000));
  At(200);
  Done(b, "b", 120, 130);
  At(2000);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_FALSE(Out("b").parent_span_id.IsValid());
  EXPECT_NE(Out("b").trace_id, Out("a").trace_id);
}

// A local channel (stdio pipe or socketpair) has no 4-tuple: both ends give the request the
// same pair key, and the callee's side is the caller's child in its trace.
TEST_F(StitcherTest, LocalChannelsPairByTheirKey) {
  auto request = [this](bool server, uint32_t pid, int fd, uint64_t at_ms, const std::string& key) {
    RequestSeen r;
    r.conn = {pid, fd, 1};
    r.seq = 1;
    r.server = server;
    r.timing.tid = pid;
    r.timing.start_ns = kT0 + at_ms * kMs;
    r.pair_key = key;
    stitcher_->OnRequest(std::move(r));
    return r.conn;
  };
  auto call = request(false, 50, 7, 10, "unix:200|100#3");
  auto other = request(true, 61, 0, 11, "unix:300|101#3");  // another server, same id
  auto serve = request(true, 60, 0, 12, "unix:200|100#3");
  auto inner = Request(false, 60, 5, 60, 13, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  At(100);
  Done(inner, "inner", 13, 14);
  Done(serve, "serve", 12, 15);
  Done(other, "other", 11, 16);
  Done(call, "call", 10, 17);
  At(1000);
  ASSERT_EQ(out_.size(), 4u);
  EXPECT_EQ(Out("serve").parent_span_id, Out("call").span_id);
  EXPECT_EQ(Out("serve").trace_id, Out("call").trace_id);
  EXPECT_EQ(Out("inner").parent_span_id, Out("serve").span_id) << "the callee's own call";
  EXPECT_FALSE(Out("other").parent_span_id.IsValid()) << "another channel does not pair";
}

// A process gone without an exit event (the ring buffer was full): its session ends when
// told, cut, counted apart; its pid is no longer among the open ones.
TEST_F(StitcherTest, ASessionWhoseExitWasLostEndsCut) {
  stitcher_->OnSession(50, SessionSpan(kT0));
  stitcher_->OnSession(51, SessionSpan(kT0));
  auto c = Request(false, 50, 3, 50, 10, Tuple("127.0.0.1", 40000, "127.0.0.1", 9000));
  At(100);
  Done(c, "c", 10, 20);
  auto open = stitcher_->OpenSessions();
  std::sort(open.begin(), open.end());
  EXPECT_EQ(open, (std::vector<uint32_t>{50, 51}));
  stitcher_->LoseSession(50, kT0 + 2000 * kMs, nullptr);
  EXPECT_EQ(stitcher_->OpenSessions(), std::vector<uint32_t>{51});
  At(3000);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_TRUE(std::get<bool>(*Out("invoke_agent cli").Find("kspan.span.cut")));
  EXPECT_EQ(Count("kspan_sessions_total", {{"outcome", "exit_lost"}}), 1u);
  EXPECT_EQ(Count("kspan_sessions_total", {{"outcome", "cut"}}), 0u);
}

}  // namespace
}  // namespace kspan::correlator
