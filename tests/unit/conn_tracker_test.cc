// The connection tracker driven by synthetic events: no kernel, a hand-made clock.
#include "conntrack/conn_tracker.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "testing/clock.h"
#include "testing/event_generator.h"

namespace kspan::conntrack {
namespace {

using events::ConnKey;
using events::Direction;
using events::Role;

// One end of a connection as the kernel reports it, its events built by the shared
// generator (testing/event_generator.h): stream positions per direction, one mock clock.
// The tests name their connections' keys.
class Conn {
 public:
  Conn(testing::EventGenerator* gen, ConnKey key, Role role) : gen_(gen) {
    const bool server = role == Role::kServer;
    end_ = gen->Tcp(key.pid, key.fd, role, {"127.0.0.1", static_cast<uint16_t>(server ? 8080 : 50000)},
                    {"127.0.0.1", static_cast<uint16_t>(server ? 50000 : 8080)});
    end_.key = key;
  }
  events::ConnOpenEvent Open(bool midstream = false) { return gen_->Open(end_, midstream); }
  // One syscall: `data` captured, `total` moved (a hole when larger).
  events::DataEvent Data(Direction dir, std::string_view data, uint32_t total = 0) {
    return dir == Direction::kEgress ? gen_->Send(&end_, data, total) : gen_->Recv(&end_, data, total);
  }
  // Bytes the kernel moved whose event never reached user space.
  void Skip(Direction dir, uint64_t n) { (dir == Direction::kEgress ? end_.sent : end_.received) += n; }
  events::ConnCloseEvent Close() { return gen_->Close(end_); }

 private:
  testing::EventGenerator* gen_;
  testing::ConnEnd end_;
};

const std::string kReq = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const std::string kResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

class TrackerTest : public ::testing::Test {
 protected:
  TrackerTest()
      : tracker_(TrackerOptions{}, &metrics_,
                 {.on_request =
                      [this](const ConnInfo&, protocols::RequestStart&& r) {
                        order_.push_back("request " + std::to_string(r.seq));
                        started_.push_back(std::move(r));
                      },
                  .on_record =
                      [this](const ConnInfo& c, protocols::Record&& r) {
                        order_.push_back("record " + std::to_string(r.seq));
                        out_.emplace_back(c, std::get<protocols::http1::Record>(std::move(r.body)));
                      }}) {}
  // One batch of events, then the drain the agent does after each ring-buffer poll.
  template <typename... E>
  void Batch(const E&... events) {
    (Feed(events), ...);
    tracker_.DrainPending();
  }
  void Feed(const events::ConnOpenEvent& e) { tracker_.OnOpen(e); }
  void Feed(const events::DataEvent& e) { tracker_.OnData(e); }
  void Feed(const events::ConnCloseEvent& e) { tracker_.OnClose(e); }
  testing::MockClock clock_;
  testing::EventGenerator gen_{&clock_};
  metrics::Registry metrics_;
  std::vector<std::pair<ConnInfo, protocols::http1::Record>> out_;
  std::vector<protocols::RequestStart> started_;
  std::vector<std::string> order_;
  ConnTracker tracker_;
};

// The stitcher opens a span when its request is seen whole, before the response: each
// request is announced once, with its thread, time and trace headers, before its record.
TEST_F(TrackerTest, RequestsAreAnnouncedBeforeTheirRecords) {
  Conn g(&gen_, {100, 5, 1}, Role::kClient);
  tracker_.OnOpen(g.Open());
  const std::string traced =
      "GET /b HTTP/1.1\r\nHost: x\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
      "tracestate: a=b\r\n\r\n";
  Batch(g.Data(Direction::kEgress, kReq));
  ASSERT_EQ(started_.size(), 1u);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(started_[0].seq, 1u);
  EXPECT_GT(started_[0].timing.start_ns, 0u);
  EXPECT_TRUE(started_[0].traceparent.empty());
  Batch(g.Data(Direction::kIngress, kResp), g.Data(Direction::kEgress, traced));
  Batch(g.Data(Direction::kIngress, kResp));
  ASSERT_EQ(started_.size(), 2u);
  EXPECT_EQ(started_[1].seq, 2u);
  EXPECT_EQ(started_[1].traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(started_[1].tracestate, "a=b");
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].second.seq, 2u);
  // Request 2 came in the batch that completed record 1: a drain announces first.
  EXPECT_EQ(order_, (std::vector<std::string>{"request 1", "request 2", "record 1", "record 2"}));
}

TEST_F(TrackerTest, ClientRequestResponseBecomesOneRecord) {
  Conn g(&gen_, {100, 5, 1}, Role::kClient);
  tracker_.OnOpen(g.Open());
  Batch(g.Data(Direction::kEgress, kReq));
  Batch(g.Data(Direction::kIngress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].first.role, Role::kClient);
  EXPECT_FALSE(out_[0].first.role_inferred);
  EXPECT_EQ(out_[0].first.tuple.remote.port, 8080);
  EXPECT_EQ(out_[0].second.request.method(), "GET");
  EXPECT_EQ(out_[0].second.response.status_code, 200);
  tracker_.OnClose(g.Close());
  EXPECT_EQ(tracker_.size(), 0u);
  EXPECT_EQ(tracker_.gaps_detected(), 0u);
}

// A first request written in pieces shorter than its method and a space ("GE", then the
// rest), or a byte at a time, is still recognised: detection waits for more bytes while
// what came is the start of a known method (issue: such connections went untraced).
TEST_F(TrackerTest, FirstRequestInPiecesShorterThanItsMethodIsTraced) {
  Conn g(&gen_, {100, 7, 1}, Role::kServer);
  tracker_.OnOpen(g.Open());
  Batch(g.Data(Direction::kIngress, "GE"));
  Batch(g.Data(Direction::kIngress, kReq.substr(2)));
  Batch(g.Data(Direction::kEgress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].second.request.method(), "GET");
  EXPECT_EQ(out_[0].second.request.target(), "/a");
  EXPECT_EQ(metrics_.Sum("kspan_connections_unrecognised_total"), 0u);
}

TEST_F(TrackerTest, FirstRequestOneByteAtATimeIsTraced) {
  Conn g(&gen_, {100, 8, 1}, Role::kServer);
  tracker_.OnOpen(g.Open());
  for (char ch : kReq) Batch(g.Data(Direction::kIngress, std::string(1, ch)));
  Batch(g.Data(Direction::kEgress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].second.request.target(), "/a");
  EXPECT_EQ(out_[0].second.response.status_code, 200);
}

// Pieces that arrive out of order (other CPUs) are put back in stream order first.
TEST_F(TrackerTest, FirstRequestPiecesOutOfOrderAreTraced) {
  Conn g(&gen_, {100, 9, 1}, Role::kServer);
  tracker_.OnOpen(g.Open());
  const auto first = g.Data(Direction::kIngress, "P");
  const auto second = g.Data(Direction::kIngress, "OST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  Batch(second, first);
  Batch(g.Data(Direction::kEgress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].second.request.method(), "POST");
}

// Bytes that cannot start any known method are given up at once, counted.
TEST_F(TrackerTest, ShortBytesThatStartNoMethodAreUnrecognised) {
  Conn g(&gen_, {100, 10, 1}, Role::kServer);
  tracker_.OnOpen(g.Open());
  Batch(g.Data(Direction::kIngress, "GX"));
  EXPECT_EQ(metrics_.Sum("kspan_connections_unrecognised_total"), 1u);
}

TEST_F(TrackerTest, ChunksReorderedWithinABatchStillParse) {
  Conn g(&gen_, {100, 6, 3}, Role::kClient);
  tracker_.OnOpen(g.Open());
  auto head = g.Data(Direction::kEgress, "GET /split HTTP/1.1\r\n");
  auto tail = g.Data(Direction::kEgress, "Host: x\r\n\r\n");
  auto resp = g.Data(Direction::kIngress, kResp);
  Batch(tail, resp, head);  // another CPU's event came later in the ring
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].second.request.target(), "/split");
  EXPECT_EQ(metrics_.Sum("kspan_parse_failures_total"), 0u);
}

TEST_F(TrackerTest, ALostEventAgesIntoAHoleEvenIfTheConnectionGoesQuiet) {
  Conn g(&gen_, {100, 7, 4}, Role::kClient);
  tracker_.OnOpen(g.Open());
  Batch(g.Data(Direction::kEgress, kReq));
  // The first response chunk was lost (ring buffer full); the second arrives, then nothing.
  g.Skip(Direction::kIngress, 20);
  Batch(g.Data(Direction::kIngress, kResp));
  tracker_.OnData(g.Data(Direction::kEgress, kReq));  // a second request, seen
  tracker_.DrainPending();
  tracker_.DrainPending();  // quiet batches: no new bytes on this connection
  tracker_.DrainPending();
  // The gap was given up as a hole and parsing went on past it: the response after the
  // gap belongs to no request the parser can prove, and nothing is held forever.
  EXPECT_EQ(tracker_.size(), 1u);
  EXPECT_GE(metrics_.Sum("kspan_parse_gaps_total"), 1u);
}

TEST_F(TrackerTest, FdReuseGivesTwoConnections) {
  Conn first(&gen_, {100, 5, 1}, Role::kServer), second(&gen_, {100, 5, 2}, Role::kServer);
  tracker_.OnOpen(first.Open());
  Batch(first.Data(Direction::kIngress, kReq));
  tracker_.OnOpen(second.Open());  // same pid and fd, new generation, before the first closed
  Batch(second.Data(Direction::kIngress, "POST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(tracker_.size(), 2u);
  Batch(first.Data(Direction::kEgress, kResp));
  Batch(second.Data(Direction::kEgress, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].first.key.generation, 1u);
  EXPECT_EQ(out_[0].second.request.target(), "/a");
  EXPECT_EQ(out_[0].second.response.status_code, 200);
  EXPECT_EQ(out_[1].first.key.generation, 2u);
  EXPECT_EQ(out_[1].second.request.method(), "POST");
  EXPECT_EQ(out_[1].second.response.status_code, 201);
}

TEST_F(TrackerTest, GapInPositionsIsDetected) {
  Conn g(&gen_, {7, 3, 9}, Role::kClient);
  tracker_.OnOpen(g.Open());
  Batch(g.Data(Direction::kEgress, kReq));
  g.Skip(Direction::kIngress, 100);  // an event the kernel produced but we never got
  Batch(g.Data(Direction::kIngress, "more bytes"));
  tracker_.OnClose(g.Close());
  EXPECT_EQ(tracker_.gaps_detected(), 1u);
}

TEST_F(TrackerTest, MissingTailAtCloseIsAGap) {
  Conn g(&gen_, {7, 3, 9}, Role::kClient);
  tracker_.OnOpen(g.Open());
  Batch(g.Data(Direction::kEgress, kReq));
  g.Skip(Direction::kEgress, 10);  // the kernel's close totals say 10 more bytes went out
  tracker_.OnClose(g.Close());
  EXPECT_EQ(tracker_.gaps_detected(), 1u);
}

TEST_F(TrackerTest, CapturedPrefixWithHoleIsNotAGap) {
  Conn g(&gen_, {7, 3, 9}, Role::kClient);
  tracker_.OnOpen(g.Open());
  Batch(g.Data(Direction::kEgress, kReq));
  Batch(g.Data(Direction::kIngress, "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\nxx", 42 + 10000));
  tracker_.OnClose(g.Close());
  EXPECT_EQ(tracker_.gaps_detected(), 0u) << "bytes the kernel saw but did not capture are a hole, not a gap";
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].second.response.body_size, 10000u);
}

TEST_F(TrackerTest, MidstreamRoleIsInferredFromTheRequestDirection) {
  Conn g(&gen_, {50, 8, 4}, Role::kUnknown);
  tracker_.OnOpen(g.Open(/*midstream=*/true));
  Batch(g.Data(Direction::kIngress, kReq));
  Batch(g.Data(Direction::kEgress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].first.role, Role::kServer);
  EXPECT_TRUE(out_[0].first.role_inferred);
}

TEST_F(TrackerTest, MidstreamJoinsAfterABodyThenFindsTheNextRequest) {
  Conn g(&gen_, {50, 8, 4}, Role::kUnknown);
  tracker_.OnOpen(g.Open(/*midstream=*/true));
  Batch(g.Data(Direction::kEgress, "tail of some earlier body"));
  Batch(g.Data(Direction::kEgress, kReq));
  Batch(g.Data(Direction::kIngress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].first.role, Role::kClient);
}

TEST_F(TrackerTest, NonHttpConnectionIsIgnoredAndCounted) {
  Conn g(&gen_, {60, 9, 5}, Role::kClient);
  tracker_.OnOpen(g.Open());
  // An SSH banner exchange: no registered protocol (Redis, which this test used, now is).
  Batch(g.Data(Direction::kEgress, "SSH-2.0-OpenSSH_9.2p1\r\n"));
  Batch(g.Data(Direction::kIngress, "SSH-2.0-OpenSSH_9.2p1 Debian\r\n"));
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(metrics_.Sum("kspan_connections_unrecognised_total"), 1u);
  EXPECT_EQ(metrics_.Sum("kspan_bytes_ignored_total"), 23u + 30u);
}

TEST_F(TrackerTest, ProcessExitFlushesARequestWithoutResponse) {
  Conn g(&gen_, {70, 4, 6}, Role::kClient);
  tracker_.OnOpen(g.Open());
  Batch(g.Data(Direction::kEgress, kReq));
  EXPECT_TRUE(out_.empty());
  tracker_.OnProcessExit(70);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(out_[0].second.response_missing);
  EXPECT_EQ(tracker_.size(), 0u);
}

TEST_F(TrackerTest, ProcessExitEndsOnlyThatProcessesConnections) {
  Conn a(&gen_, {71, 4, 11}, Role::kClient), b(&gen_, {71, 5, 12}, Role::kClient),
      other(&gen_, {72, 4, 13}, Role::kClient);
  for (auto* g : {&a, &b, &other}) {
    tracker_.OnOpen(g->Open());
    Batch(g->Data(Direction::kEgress, kReq));
  }
  tracker_.OnClose(b.Close());  // already gone before the exit
  tracker_.OnProcessExit(71);
  EXPECT_EQ(tracker_.size(), 1u);
  tracker_.OnProcessExit(71);  // a second exit for the same pid is harmless
  tracker_.OnProcessExit(999);
  EXPECT_EQ(tracker_.size(), 1u);
  tracker_.OnProcessExit(72);
  EXPECT_EQ(tracker_.size(), 0u);
  EXPECT_EQ(out_.size(), 3u) << "each unanswered request comes out once";
}

TEST_F(TrackerTest, DataWithoutOpenIsTrackedAndCounted) {
  Conn g(&gen_, {80, 4, 7}, Role::kClient);
  Batch(g.Data(Direction::kEgress, kReq));
  Batch(g.Data(Direction::kIngress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_FALSE(out_[0].first.tuple_known);
  EXPECT_EQ(metrics_.Sum("kspan_connections_missing_open_total"), 1u);
}

TEST(TrackerBounds, TableIsBoundedAndEvictionsCounted) {
  metrics::Registry m;
  TrackerOptions o;
  o.max_connections = 16;
  ConnTracker t(o, &m, TrackerSinks{});
  testing::MockClock clock;
  testing::EventGenerator gen(&clock);
  for (uint32_t i = 0; i < 100; ++i) {
    Conn g(&gen, {1, static_cast<int32_t>(i), i + 1}, Role::kClient);
    t.OnOpen(g.Open());
    EXPECT_LE(t.size(), 16u);
  }
  EXPECT_GE(m.Sum("kspan_connections_evicted_total"), 84u);
}

TEST(TrackerBounds, IdleConnectionsExpire) {
  metrics::Registry m;
  TrackerOptions o;
  o.idle_timeout_ns = 1'000'000'000;
  ConnTracker t(o, &m, TrackerSinks{});
  testing::MockClock clock;
  testing::EventGenerator gen(&clock);
  Conn g(&gen, {1, 3, 1}, Role::kClient);
  auto open = g.Open();
  t.OnOpen(open);
  t.Tick(open.ts_ns + 500'000'000);
  EXPECT_EQ(t.size(), 1u);
  t.Tick(open.ts_ns + 2'000'000'000);
  EXPECT_EQ(t.size(), 0u);
}

// Slowloris: a client holding half-written request heads on many connections cannot grow
// what the parsers buffer past max_parse_bytes_total. The connections holding the oldest
// bytes drop them (counted); what such a client sends next is not a frame start and is
// dropped as it comes; a fresh exchange on another connection is still paired.
TEST(TrackerBounds, HalfWrittenHeadsAreEvictedOldestFirstAtTheGlobalBound) {
  testing::MockClock clock;
  testing::EventGenerator gen{&clock};
  metrics::Registry metrics;
  TrackerOptions options;
  options.max_parse_bytes_total = 64 * 1024;
  std::vector<protocols::http1::Record> out;
  ConnTracker tracker(options, &metrics, {.on_record = [&](const ConnInfo&, protocols::Record&& r) {
                        out.push_back(std::get<protocols::http1::Record>(std::move(r.body)));
                      }});
  std::string head = "GET /slow HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 16; ++i) head += "X-Pad-" + std::to_string(i) + ": " + std::string(1000, 'p') + "\r\n";
  std::deque<Conn> slow;  // the head never ends
  for (int i = 0; i < 20; ++i) {
    slow.emplace_back(&gen, ConnKey{200, 10 + i, 1}, Role::kServer);
    tracker.OnOpen(slow.back().Open());
    tracker.OnData(slow.back().Data(Direction::kIngress, head));
    tracker.DrainPending();
    EXPECT_LE(tracker.parse_bytes_held(), options.max_parse_bytes_total) << i;
  }
  auto counter = [&](const char* name) { return metrics.GetCounter(name, {{"protocol", "http1"}})->Value(); };
  const uint64_t evicted = counter("kspan_parse_buffers_evicted_total");
  EXPECT_GE(evicted, 20u - 4u) << "at most four 16 KiB heads fit in 64 KiB";
  EXPECT_GE(counter("kspan_parse_bytes_dropped_total"), evicted * head.size());
  EXPECT_GT(tracker.parse_bytes_held(), 0u) << "the newest heads are still held";

  // The oldest connection goes on with its head: not a frame start, dropped as it comes.
  for (int i = 0; i < 8; ++i) {
    tracker.OnData(slow[0].Data(Direction::kIngress, "X-More: " + std::string(1000, 'q') + "\r\n"));
    tracker.DrainPending();
  }
  EXPECT_LE(tracker.parse_bytes_held(), options.max_parse_bytes_total);

  Conn fresh(&gen, {300, 5, 1}, Role::kClient);
  tracker.OnOpen(fresh.Open());
  tracker.OnData(fresh.Data(Direction::kEgress, kReq));
  tracker.OnData(fresh.Data(Direction::kIngress, kResp));
  tracker.DrainPending();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response.status_code, 200);
  EXPECT_EQ(out[0].request.target(), "/a");
}

}  // namespace
}  // namespace kspan::conntrack
