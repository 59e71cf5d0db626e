// The agent's half of the TCP-option carrier without a kernel: carrier::WireContexts ties
// the kernel's reports to requests, and the stitcher's wire rules (correlator/stitcher.h)
// make one trace across two hosts, each with its own stitcher and matcher.
#include <gtest/gtest.h>

#include <memory>

#include "carrier/wire_contexts.h"
#include "correlator/stitcher.h"

namespace kspan {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kUs = 1'000;
constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;

carrier::WireContext Ctx(uint8_t trace, uint8_t span) {
  carrier::WireContext c;
  c.trace_id.fill(trace);
  c.span_id.fill(span);
  return c;
}

model::TraceId TraceOf(uint8_t b) {
  model::TraceId t;
  t.bytes.fill(b);
  return t;
}

model::SpanId SpanOf(uint8_t b) {
  model::SpanId s;
  s.bytes.fill(b);
  return s;
}

uint64_t Count(const metrics::Registry& m, const std::string& name, const metrics::Labels& labels) {
  for (const auto& s : m.Snapshot()) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return 0;
}

uint64_t Contexts(const metrics::Registry& m, const char* side, const char* outcome) {
  return Count(m, "kspan_carrier_contexts_total", {{"side", side}, {"outcome", outcome}});
}

TEST(WireContexts, TakesTheReportOfTheSameSyscallOnce) {
  metrics::Registry m;
  carrier::WireContexts w({}, &m);
  // Two requests on one keep-alive connection, each with its own context, and a report of
  // another thread and another fd at the same time.
  w.AddSent(7, 3, 70, kT0 + 1 * kUs, Ctx(1, 1));
  w.AddSent(7, 3, 70, kT0 + 5 * kMs + 1 * kUs, Ctx(1, 2));
  w.AddSent(7, 3, 71, kT0, Ctx(9, 9));
  w.AddSent(7, 4, 70, kT0, Ctx(8, 8));
  auto first = w.Take({.pid = 7, .fd = 3, .tid = 70, .start_ns = kT0, .server = false});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->trace_id, TraceOf(1));
  EXPECT_EQ(first->parent_id, SpanOf(1));
  auto second = w.Take({.pid = 7, .fd = 3, .tid = 70, .start_ns = kT0 + 5 * kMs, .server = false});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->parent_id, SpanOf(2));
  // Each is used once; a pipelined request after the first has none.
  EXPECT_FALSE(w.Take({.pid = 7, .fd = 3, .tid = 70, .start_ns = kT0, .server = false}));
  // A server's read of the same fd is another side.
  EXPECT_FALSE(w.Take({.pid = 7, .fd = 4, .tid = 70, .start_ns = kT0, .server = true}));
  // Too far from the request's syscall: not its report.
  w.AddRead(7, 5, 70, kT0, Ctx(3, 3));
  EXPECT_FALSE(w.Take({.pid = 7, .fd = 5, .tid = 70, .start_ns = kT0 + 200 * kUs, .server = true}));
  auto read = w.Take({.pid = 7, .fd = 5, .tid = 70, .start_ns = kT0 + 2 * kUs, .server = true});
  ASSERT_TRUE(read);
  EXPECT_EQ(read->parent_id, SpanOf(3));
  EXPECT_EQ(Contexts(m, "client", "used"), 2u);
  EXPECT_EQ(Contexts(m, "server", "used"), 1u);
  // The two nobody took age out, counted.
  w.Prune(kT0 + 31'000 * kMs);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(Contexts(m, "client", "unmatched"), 2u);
}

TEST(WireContexts, NearestReportWins) {
  metrics::Registry m;
  carrier::WireContexts w({}, &m);
  w.AddRead(1, 3, 1, kT0 + 60 * kUs, Ctx(1, 1));
  w.AddRead(1, 3, 1, kT0 + 2 * kUs, Ctx(2, 2));
  auto r = w.Take({.pid = 1, .fd = 3, .tid = 1, .start_ns = kT0, .server = true});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->parent_id, SpanOf(2));
}

// The carrier's program runs after the capture's on the same tracepoint; an interrupt or a
// descheduled virtual CPU between the two (seen past 100 µs on a busy CI machine) makes
// the report late, not someone else's.
TEST(WireContexts, AReportLateByAnInterruptIsStillItsOwn) {
  metrics::Registry m;
  carrier::WireContexts w({}, &m);
  w.AddRead(1, 3, 1, kT0 + 2 * kMs, Ctx(1, 1));
  auto r = w.Take({.pid = 1, .fd = 3, .tid = 1, .start_ns = kT0, .server = true});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->parent_id, SpanOf(1));
  w.AddSent(1, 4, 1, kT0 + 4 * kMs, Ctx(2, 2));
  auto c =
      w.Take({.pid = 1, .fd = 4, .tid = 1, .start_ns = kT0, .server = false, .answer_ns = kT0 + 9 * kMs});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->parent_id, SpanOf(2));
  // Past the late tolerance (5 ms), or more than 100 µs early: not its own.
  w.AddRead(1, 5, 1, kT0 + 6 * kMs, Ctx(3, 3));
  EXPECT_FALSE(w.Take({.pid = 1, .fd = 5, .tid = 1, .start_ns = kT0, .server = true}));
  w.AddRead(1, 6, 1, kT0, Ctx(4, 4));
  EXPECT_FALSE(w.Take({.pid = 1, .fd = 6, .tid = 1, .start_ns = kT0 + 150 * kUs, .server = true}));
}

// A late report is bounded by what the thread did next: its request's answer, or the
// connection's next request, come after both programs of the request's own syscall ran,
// so a report from then on is another request's (a request that came without one gets a
// missing parent, never the next request's).
TEST(WireContexts, ALateReportIsNotOneAfterTheAnswerOrTheNextRequest) {
  metrics::Registry m;
  carrier::WireContexts w({}, &m);
  w.AddRead(1, 3, 1, kT0 + 1 * kMs + 2 * kUs, Ctx(1, 1));
  EXPECT_FALSE(
      w.Take({.pid = 1, .fd = 3, .tid = 1, .start_ns = kT0, .server = true, .answer_ns = kT0 + 1 * kMs}));
  EXPECT_FALSE(
      w.Take({.pid = 1, .fd = 3, .tid = 1, .start_ns = kT0, .server = true, .next_start_ns = kT0 + 1 * kMs}));
  // The next request's own.
  auto r = w.Take({.pid = 1, .fd = 3, .tid = 1, .start_ns = kT0 + 1 * kMs, .server = true});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->parent_id, SpanOf(1));
  // A client's send after its answer was read is the next request's too.
  w.AddSent(1, 4, 1, kT0 + 300 * kUs, Ctx(2, 2));
  EXPECT_FALSE(
      w.Take({.pid = 1, .fd = 4, .tid = 1, .start_ns = kT0, .server = false, .answer_ns = kT0 + 200 * kUs}));
}

TEST(WireContexts, InvalidIdsAreRejectedAndCounted) {
  metrics::Registry m;
  carrier::WireContexts w({}, &m);
  w.AddRead(1, 3, 1, kT0, Ctx(0, 5));  // all-zero trace id
  w.AddRead(1, 4, 1, kT0, Ctx(5, 0));  // all-zero span id
  EXPECT_FALSE(w.Take({.pid = 1, .fd = 3, .tid = 1, .start_ns = kT0, .server = true}));
  EXPECT_FALSE(w.Take({.pid = 1, .fd = 4, .tid = 1, .start_ns = kT0, .server = true}));
  EXPECT_EQ(Contexts(m, "server", "rejected"), 2u);
  EXPECT_EQ(Contexts(m, "server", "used"), 0u);
}

TEST(WireContexts, BoundedByCountOldestFirst) {
  metrics::Registry m;
  carrier::WireContexts w({.max_reports = 4}, &m);
  for (uint32_t i = 0; i < 10; ++i) w.AddSent(1, static_cast<int32_t>(i), 1, kT0 + i, Ctx(1, 1));
  EXPECT_EQ(w.size(), 4u);
  EXPECT_EQ(Contexts(m, "client", "unmatched"), 6u);
  EXPECT_FALSE(w.Take({.pid = 1, .fd = 0, .tid = 1, .start_ns = kT0, .server = false}));
  EXPECT_TRUE(w.Take({.pid = 1, .fd = 9, .tid = 1, .start_ns = kT0 + 9, .server = false}));
  // Held reports stay bounded however many are taken and added.
  for (uint32_t i = 0; i < 1000; ++i) {
    w.AddSent(2, 3, 1, kT0 + i * kMs, Ctx(1, 1));
    EXPECT_TRUE(w.Take({.pid = 2, .fd = 3, .tid = 1, .start_ns = kT0 + i * kMs, .server = false}));
  }
  w.Prune(kT0 + 2000 * kMs);
  EXPECT_LE(w.size(), 4u);
}

// TLS, the connection's first request on both hosts (curl -> a TLS server). The client's
// kernel set c1 on the ClientHello and c2 on the Finished (each write after something
// arrived); the request went out in the same flight as the Finished, so its segments carry
// none: c2 is the context in force, and both ends take it. c1 is taken by nobody, counted.
TEST(WireContexts, TlsFirstRequestTakesTheLastContextBeforeIt) {
  metrics::Registry m;
  carrier::WireContexts w({}, &m);
  const uint64_t open = kT0;
  // Another connection that had the same fd before, and a report of another fd.
  w.AddSent(7, 3, 70, open - 1 * kMs, Ctx(9, 9));
  w.AddSent(7, 4, 70, open + 1 * kMs, Ctx(8, 8));
  w.AddSent(7, 3, 70, open + 50 * kUs, Ctx(1, 1));  // ClientHello
  w.AddSent(7, 3, 70, open + 2 * kMs, Ctx(2, 2));   // Finished
  const correlator::WireRequest client = {.pid = 7,
                                          .fd = 3,
                                          .tid = 70,
                                          .start_ns = open + 2 * kMs + 300 * kUs,  // SSL_write's entry
                                          .server = false,
                                          .tls = true,
                                          .first = true,
                                          .open_ns = open};
  // Not TLS, or not the first request, or a connection opened before kspan looked: only a
  // report of the request's own syscall counts, and there is none.
  auto plaintext = client, later = client, unseen_open = client;
  plaintext.tls = false;
  later.first = false;
  unseen_open.open_ns = 0;
  for (const auto& q : {plaintext, later, unseen_open}) EXPECT_FALSE(w.Take(q));
  auto c = w.Take(client);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->trace_id, TraceOf(2));
  EXPECT_EQ(c->parent_id, SpanOf(2));
  EXPECT_EQ(Contexts(m, "client", "unmatched"), 1u) << "the ClientHello's, at once";

  // The server: its main thread read both contexts in the handshake; a worker thread
  // serves the request (SSL_read returned at the request's start).
  w.AddRead(20, 5, 200, open + 300 * kUs, Ctx(1, 1));
  w.AddRead(20, 5, 200, open + 2 * kMs + 40 * kUs, Ctx(2, 2));
  correlator::WireRequest server = {.pid = 20,
                                    .fd = 5,
                                    .tid = 201,
                                    .start_ns = open + 2 * kMs + 90 * kUs,
                                    .server = true,
                                    .tls = true,
                                    .first = true,
                                    .open_ns = open + 200 * kUs};  // its accept
  auto s = w.Take(server);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->parent_id, SpanOf(2)) << "the same context as the client's";
  EXPECT_EQ(Contexts(m, "server", "unmatched"), 1u);
  // Taken once: the connection's next request does not fall back to anything.
  server.first = false;
  server.start_ns += 5 * kMs;
  EXPECT_FALSE(w.Take(server));
}

// TLS with a report of its own: a write inside SSL_write after the request's start (the
// client received a session ticket before it), a read inside SSL_read before the server's
// start. Its own wins over the handshake's; a report of the next request, after the
// answer, is not its own.
TEST(WireContexts, TlsRequestTakesTheReportOfItsOwnCiphertext) {
  metrics::Registry m;
  carrier::WireContexts w({}, &m);
  const uint64_t open = kT0, start = kT0 + 2 * kMs;
  w.AddSent(7, 3, 70, open + 1 * kMs, Ctx(2, 2));    // Finished
  w.AddSent(7, 3, 70, start + 6 * kUs, Ctx(3, 3));   // the request's write
  w.AddSent(7, 3, 70, start + 80 * kUs, Ctx(4, 4));  // the next request's, after the answer
  correlator::WireRequest q = {.pid = 7,
                               .fd = 3,
                               .tid = 70,
                               .start_ns = start,
                               .server = false,
                               .tls = true,
                               .first = true,
                               .open_ns = open,
                               .answer_ns = start + 60 * kUs};
  auto c = w.Take(q);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->parent_id, SpanOf(3));
  // The next request on the keep-alive connection: its own write, after its start.
  q = {.pid = 7, .fd = 3, .tid = 70, .start_ns = start + 75 * kUs, .server = false, .tls = true};
  c = w.Take(q);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->parent_id, SpanOf(4));

  // A client's report before its start, on its thread, is not its own ciphertext (it is
  // the handshake's), nor is one past the TLS tolerance (5 ms: encrypting, preempted);
  // without `first` nothing else counts.
  w.AddSent(8, 3, 80, start - 5 * kUs, Ctx(5, 5));
  w.AddSent(8, 3, 80, start + 6 * kMs, Ctx(6, 6));
  EXPECT_FALSE(w.Take({.pid = 8, .fd = 3, .tid = 80, .start_ns = start, .server = false, .tls = true}));
  // Nor the answer's time: a write after it belongs to the next request.
  w.AddSent(9, 3, 90, start + 20 * kUs, Ctx(7, 7));
  EXPECT_FALSE(w.Take({.pid = 9,
                       .fd = 3,
                       .tid = 90,
                       .start_ns = start,
                       .server = false,
                       .tls = true,
                       .answer_ns = start + 10 * kUs}));

  // A server's: the read inside SSL_read, before its return; one after it is the next
  // request's.
  w.AddRead(20, 5, 200, start - 30 * kUs, Ctx(3, 3));
  w.AddRead(20, 5, 200, start + 3 * kUs, Ctx(4, 4));
  auto s = w.Take({.pid = 20, .fd = 5, .tid = 200, .start_ns = start, .server = true, .tls = true});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->parent_id, SpanOf(3));
}

// One host: a stitcher fed by its own matcher, as the agent wires them.
struct Host {
  Host() {
    correlator::StitcherOptions o;
    o.wire_context = [this](const correlator::WireRequest& r) { return wire.Take(r); };
    stitcher = std::make_unique<correlator::Stitcher>(
        o, &metrics, [this](model::Span&& s) { out.push_back(std::move(s)); });
  }
  events::ConnKey Request(bool server, uint32_t pid, int fd, uint32_t tid, uint64_t at_ms, uint16_t lport,
                          uint16_t rport, const std::string& traceparent = "") {
    correlator::RequestSeen r;
    r.conn = {pid, fd, 1};
    r.seq = seq;
    r.server = server;
    r.tuple.family = 2;
    r.tuple.local = {server ? "10.0.0.2" : "10.0.0.1", lport};
    r.tuple.remote = {server ? "10.0.0.1" : "10.0.0.2", rport};
    r.tuple_known = true;
    r.timing.tid = tid;
    r.timing.start_ns = kT0 + at_ms * kMs + at_us_;
    r.traceparent = traceparent;
    r.tls = tls;
    r.open_ns = open_ns;
    stitcher->OnRequest(std::move(r));
    return r.conn;
  }
  // The first request of a TLS connection opened at `open_ns`, starting `at_us` after kT0.
  events::ConnKey TlsRequest(bool server, uint32_t pid, int fd, uint32_t tid, uint64_t at_us, uint16_t lport,
                             uint16_t rport, uint64_t open_ns) {
    tls = true;
    this->open_ns = open_ns;
    at_us_ = at_us * kUs;
    auto k = Request(server, pid, fd, tid, 0, lport, rport);
    at_us_ = 0;
    tls = false;
    this->open_ns = 0;
    return k;
  }
  bool tls = false;
  uint64_t open_ns = 0, at_us_ = 0, seq = 1;  // the next Request's, on its connection
  void Done(const events::ConnKey& k, const std::string& name, uint64_t start_ms, uint64_t end_ms,
            uint64_t seq = 1) {
    model::Span s;
    s.name = name;
    s.trace_id = model::TraceId::Random();
    s.span_id = model::SpanId::Random();
    s.start_time_unix_nano = kT0 + start_ms * kMs;
    s.end_time_unix_nano = kT0 + end_ms * kMs;
    stitcher->OnSpan({.conn = k, .seq = seq, .response = {}}, std::move(s));
  }
  const model::Span& Out(const std::string& name) {
    for (const auto& s : out) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no span " << name;
    static model::Span none;
    return none;
  }
  metrics::Registry metrics;
  carrier::WireContexts wire{{}, &metrics};
  std::vector<model::Span> out;
  std::unique_ptr<correlator::Stitcher> stitcher;
};

// curl (host A) -> service (host B) -> nginx (host A), nothing paired on one host: the ids
// the kernels wrote and read make one trace with the right parents.
TEST(WireStitching, OneTraceAcrossTwoHosts) {
  Host a, b;
  // Host A: curl's send set (T7, S1); nginx's read came with (T7, S2).
  a.wire.AddSent(5, 3, 5, kT0 + 1 * kUs, Ctx(7, 1));
  auto curl = a.Request(false, 5, 3, 5, 0, 40000, 8000);
  a.wire.AddRead(30, 9, 30, kT0 + 3 * kMs + 1 * kUs, Ctx(7, 2));
  auto nginx = a.Request(true, 30, 9, 30, 3, 80, 41000);
  // Host B: the service read (T7, S1); its call to nginx, on the same thread, set (T7, S2).
  b.wire.AddRead(10, 4, 11, kT0 + 1 * kMs, Ctx(7, 1));
  auto server = b.Request(true, 10, 4, 11, 1, 8000, 40000);
  b.wire.AddSent(10, 5, 11, kT0 + 2 * kMs + 3 * kUs, Ctx(7, 2));
  auto call = b.Request(false, 10, 5, 11, 2, 41000, 80);
  for (Host* h : {&a, &b}) h->stitcher->Advance(kT0 + 100 * kMs);
  a.Done(nginx, "nginx", 3, 4);
  a.Done(curl, "curl", 0, 8);
  b.Done(call, "call", 2, 5);
  b.Done(server, "server", 1, 7);
  for (Host* h : {&a, &b}) h->stitcher->Advance(kT0 + 1000 * kMs);
  ASSERT_EQ(a.out.size(), 2u);
  ASSERT_EQ(b.out.size(), 2u);
  const auto &c = a.Out("curl"), &n = a.Out("nginx"), &s = b.Out("server"), &k = b.Out("call");
  EXPECT_EQ(c.trace_id, TraceOf(7));
  EXPECT_EQ(c.span_id, SpanOf(1)) << "the CLIENT span has the id its kernel wrote";
  EXPECT_FALSE(c.parent_span_id.IsValid());
  EXPECT_EQ(s.trace_id, TraceOf(7));
  EXPECT_EQ(s.parent_span_id, SpanOf(1));
  EXPECT_EQ(k.trace_id, TraceOf(7));
  EXPECT_EQ(k.span_id, SpanOf(2));
  EXPECT_EQ(k.parent_span_id, s.span_id) << "thread causality inside host B";
  EXPECT_EQ(n.trace_id, TraceOf(7));
  EXPECT_EQ(n.parent_span_id, SpanOf(2));
  EXPECT_EQ(Count(b.metrics, "kspan_stitch_parents_total", {{"rule", "wire"}}), 1u);
  EXPECT_EQ(Count(a.metrics, "kspan_stitch_parents_total", {{"rule", "wire"}}), 1u);
  EXPECT_EQ(Contexts(b.metrics, "client", "trace_mismatch"), 0u);
}

// A traceparent the program sent wins on both sides; the wire's ids are not used.
TEST(WireStitching, ApplicationTraceparentWins) {
  Host h;
  const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  h.wire.AddRead(10, 4, 11, kT0, Ctx(7, 1));
  auto server = h.Request(true, 10, 4, 11, 0, 8000, 40000, tp);
  h.wire.AddSent(20, 5, 21, kT0 + 1 * kMs, Ctx(7, 2));
  auto client = h.Request(false, 20, 5, 21, 1, 41000, 80, tp);
  h.stitcher->Advance(kT0 + 100 * kMs);
  h.Done(server, "server", 0, 3);
  h.Done(client, "client", 1, 2);
  h.stitcher->Advance(kT0 + 1000 * kMs);
  ASSERT_EQ(h.out.size(), 2u);
  for (const char* name : {"server", "client"}) {
    EXPECT_EQ(h.Out(name).trace_id.Hex(), "0af7651916cd43dd8448eb211c80319c");
    EXPECT_EQ(h.Out(name).parent_span_id.Hex(), "b7ad6b7169203331");
  }
  EXPECT_NE(h.Out("client").span_id, SpanOf(2));
  EXPECT_EQ(Count(h.metrics, "kspan_stitch_parents_total", {{"rule", "wire"}}), 0u);
}

// A context with zero ids (hostile or broken) starts a new trace, counted.
TEST(WireStitching, InvalidContextStartsANewTrace) {
  Host h;
  h.wire.AddRead(10, 4, 11, kT0, Ctx(0, 1));
  auto server = h.Request(true, 10, 4, 11, 0, 8000, 40000);
  h.stitcher->Advance(kT0 + 100 * kMs);
  h.Done(server, "server", 0, 3);
  h.stitcher->Advance(kT0 + 1000 * kMs);
  ASSERT_EQ(h.out.size(), 1u);
  EXPECT_FALSE(h.out[0].parent_span_id.IsValid());
  EXPECT_NE(h.out[0].trace_id, TraceOf(0));
  EXPECT_EQ(Contexts(h.metrics, "server", "rejected"), 1u);
  EXPECT_EQ(Count(h.metrics, "kspan_stitch_roots_total", {}), 1u);
}

// A request that came without a context (its caller has no kspan): the kernel started a
// trace for it (a fresh report, span id zero) and the thread's call carries that trace id,
// so the SERVER span roots the same trace and the CLIENT span stays in it: the hosts the
// call reaches continue this trace, not one of their own.
TEST(WireStitching, RequestWithoutContextRootsTheTraceItsCallsCarry) {
  Host h;
  h.wire.AddRead(10, 4, 11, kT0, Ctx(7, 0), /*fresh=*/true);
  auto server = h.Request(true, 10, 4, 11, 0, 8000, 40000);
  h.wire.AddSent(10, 5, 11, kT0 + 1 * kMs, Ctx(7, 3));
  auto client = h.Request(false, 10, 5, 11, 1, 41000, 80);
  h.stitcher->Advance(kT0 + 100 * kMs);
  h.Done(client, "client", 1, 2);
  h.Done(server, "server", 0, 3);
  h.stitcher->Advance(kT0 + 1000 * kMs);
  ASSERT_EQ(h.out.size(), 2u);
  const auto &s = h.Out("server"), &c = h.Out("client");
  EXPECT_FALSE(s.parent_span_id.IsValid());
  EXPECT_EQ(s.trace_id, TraceOf(7));
  EXPECT_EQ(c.trace_id, TraceOf(7));
  EXPECT_EQ(c.parent_span_id, s.span_id);
  EXPECT_EQ(c.span_id, SpanOf(3));
  EXPECT_EQ(Contexts(h.metrics, "server", "fresh_root"), 1u);
  EXPECT_EQ(Contexts(h.metrics, "client", "trace_mismatch"), 0u);
  EXPECT_EQ(Count(h.metrics, "kspan_stitch_roots_total", {}), 1u);
  EXPECT_EQ(Count(h.metrics, "kspan_stitch_parents_total", {{"rule", "wire"}}), 0u);
}

// Two requests on one keep-alive connection to a server: the first came without a context
// (its client's kernel had no room for the option), the second with one, read 1 ms later
// and reported late (300 µs after its read). The first, decided while its answer is not
// known yet, must not take the second's report: the stitcher bounds it by the next
// request's start.
TEST(WireStitching, ALateReportGoesToItsOwnRequestNotTheOneBefore) {
  Host h;
  auto first = h.Request(true, 10, 4, 11, 0, 8000, 40000);
  h.seq = 2;
  auto second = h.Request(true, 10, 4, 11, 1, 8000, 40000);  // the same connection, its next request
  h.wire.AddRead(10, 4, 11, kT0 + 1 * kMs + 300 * kUs, Ctx(7, 1));
  h.stitcher->Advance(kT0 + 100 * kMs);
  h.Done(first, "first", 0, 1, 1);
  h.Done(second, "second", 1, 2, 2);
  h.stitcher->Advance(kT0 + 1000 * kMs);
  ASSERT_EQ(h.out.size(), 2u);
  const auto &a = h.Out("first"), &b = h.Out("second");
  EXPECT_FALSE(a.parent_span_id.IsValid());
  EXPECT_NE(a.trace_id, TraceOf(7));
  EXPECT_EQ(b.trace_id, TraceOf(7));
  EXPECT_EQ(b.parent_span_id, SpanOf(1));
  EXPECT_EQ(Count(h.metrics, "kspan_stitch_parents_total", {{"rule", "wire"}}), 1u);
}

// A fresh report with a zero trace id (nothing the kernel sends) is refused: a new trace.
TEST(WireContexts, FreshReportWithoutTraceIsRejected) {
  metrics::Registry m;
  carrier::WireContexts w({}, &m);
  w.AddRead(1, 3, 1, kT0, Ctx(0, 0), /*fresh=*/true);
  EXPECT_FALSE(w.Take({.pid = 1, .fd = 3, .tid = 1, .start_ns = kT0, .server = true}).has_value());
  EXPECT_EQ(Contexts(m, "server", "rejected"), 1u);
  EXPECT_EQ(Contexts(m, "server", "fresh_root"), 0u);
}

// The kernel followed another trace than the stitcher (an event loop): the CLIENT span
// keeps its stitched parent and the wire's span id, and the mismatch is counted.
TEST(WireStitching, TraceMismatchKeepsTheStitchedParent) {
  Host h;
  auto server = h.Request(true, 10, 4, 11, 0, 8000, 40000);
  h.wire.AddSent(10, 5, 11, kT0 + 1 * kMs, Ctx(9, 3));
  auto client = h.Request(false, 10, 5, 11, 1, 41000, 80);
  h.stitcher->Advance(kT0 + 100 * kMs);
  h.Done(client, "client", 1, 2);
  h.Done(server, "server", 0, 3);
  h.stitcher->Advance(kT0 + 1000 * kMs);
  ASSERT_EQ(h.out.size(), 2u);
  const auto &s = h.Out("server"), &c = h.Out("client");
  EXPECT_EQ(c.parent_span_id, s.span_id);
  EXPECT_EQ(c.trace_id, s.trace_id);
  EXPECT_EQ(c.span_id, SpanOf(3));
  EXPECT_EQ(Contexts(h.metrics, "client", "trace_mismatch"), 1u);
}

// Same host, both ends traced: pairing and the wire agree (the server's parent is the
// client span, whose id is the one on the wire).
TEST(WireStitching, SameHostPairingAndWireAgree) {
  Host h;
  h.wire.AddSent(5, 3, 5, kT0, Ctx(4, 4));
  auto client = h.Request(false, 5, 3, 5, 0, 40000, 8000);
  h.wire.AddRead(10, 4, 11, kT0 + 1 * kMs, Ctx(4, 4));
  correlator::RequestSeen r;  // the server end of the same connection (mirrored tuple)
  r.conn = {10, 4, 1};
  r.seq = 1;
  r.server = true;
  r.tuple.family = 2;
  r.tuple.local = {"10.0.0.2", 8000};
  r.tuple.remote = {"10.0.0.1", 40000};
  r.tuple_known = true;
  r.timing.tid = 11;
  r.timing.start_ns = kT0 + 1 * kMs;
  h.stitcher->OnRequest(std::move(r));
  h.stitcher->Advance(kT0 + 100 * kMs);
  h.Done({10, 4, 1}, "server", 1, 2);
  h.Done(client, "client", 0, 3);
  h.stitcher->Advance(kT0 + 1000 * kMs);
  ASSERT_EQ(h.out.size(), 2u);
  EXPECT_EQ(h.Out("client").span_id, SpanOf(4));
  EXPECT_EQ(h.Out("server").parent_span_id, SpanOf(4));
  EXPECT_EQ(h.Out("server").trace_id, TraceOf(4));
}

// curl (host A) -> a TLS service (B) -> a TLS server (A), each hop a new connection whose
// first request's segments carry no context (the last one rode the handshake's Finished):
// one trace with the right parents, and the handshake's ClientHello contexts unused.
TEST(WireStitching, TlsFirstRequestsJoinAcrossTwoHosts) {
  Host a, b;
  // Hop 1: curl (A: pid 5, fd 3) connected at 0; ClientHello c(1,1), Finished c(7,2).
  a.wire.AddSent(5, 3, 5, kT0 + 100 * kUs, Ctx(1, 1));
  a.wire.AddSent(5, 3, 5, kT0 + 900 * kUs, Ctx(7, 2));
  auto curl = a.TlsRequest(false, 5, 3, 5, 1000, 40000, 8443, kT0);
  // B accepted at 150 µs on its main thread 10, which read both; worker 11 serves.
  b.wire.AddRead(10, 4, 10, kT0 + 300 * kUs, Ctx(1, 1));
  b.wire.AddRead(10, 4, 10, kT0 + 1000 * kUs, Ctx(7, 2));
  auto server = b.TlsRequest(true, 10, 4, 11, 1200, 8443, 40000, kT0 + 150 * kUs);
  // Hop 2: the worker connects at 1.5 ms; its kernel continued trace 7 on that thread.
  b.wire.AddSent(10, 5, 11, kT0 + 1600 * kUs, Ctx(7, 3));
  b.wire.AddSent(10, 5, 11, kT0 + 2400 * kUs, Ctx(7, 4));
  auto call = b.TlsRequest(false, 10, 5, 11, 2500, 41000, 443, kT0 + 1500 * kUs);
  a.wire.AddRead(30, 9, 30, kT0 + 1700 * kUs, Ctx(7, 3));
  a.wire.AddRead(30, 9, 30, kT0 + 2550 * kUs, Ctx(7, 4));
  auto nginx = a.TlsRequest(true, 30, 9, 30, 2700, 443, 41000, kT0 + 1650 * kUs);
  for (Host* h : {&a, &b}) h->stitcher->Advance(kT0 + 100 * kMs);
  a.Done(nginx, "nginx", 3, 4);
  a.Done(curl, "curl", 1, 8);
  b.Done(call, "call", 2, 5);
  b.Done(server, "server", 1, 7);
  for (Host* h : {&a, &b}) h->stitcher->Advance(kT0 + 1000 * kMs);
  ASSERT_EQ(a.out.size(), 2u);
  ASSERT_EQ(b.out.size(), 2u);
  const auto &c = a.Out("curl"), &n = a.Out("nginx"), &s = b.Out("server"), &k = b.Out("call");
  EXPECT_EQ(c.trace_id, TraceOf(7));
  EXPECT_EQ(c.span_id, SpanOf(2));
  EXPECT_FALSE(c.parent_span_id.IsValid());
  EXPECT_EQ(s.trace_id, TraceOf(7));
  EXPECT_EQ(s.parent_span_id, SpanOf(2));
  EXPECT_EQ(k.trace_id, TraceOf(7));
  EXPECT_EQ(k.span_id, SpanOf(4));
  EXPECT_EQ(k.parent_span_id, s.span_id);
  EXPECT_EQ(n.trace_id, TraceOf(7));
  EXPECT_EQ(n.parent_span_id, SpanOf(4));
  EXPECT_EQ(Contexts(a.metrics, "client", "unmatched"), 1u);
  EXPECT_EQ(Contexts(b.metrics, "server", "unmatched"), 1u);
  EXPECT_EQ(Contexts(b.metrics, "client", "trace_mismatch"), 0u);
}

}  // namespace
}  // namespace kspan
