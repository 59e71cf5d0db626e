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

// One host: a stitcher fed by its own matcher, as the agent wires them.
struct Host {
  Host() {
    correlator::StitcherOptions o;
    o.wire_context = [this](const correlator::WireRequest& r) {
      return wire.Take({.pid = r.pid, .fd = r.fd, .tid = r.tid, .start_ns = r.start_ns, .server = r.server});
    };
    stitcher = std::make_unique<correlator::Stitcher>(
        o, &metrics, [this](model::Span&& s) { out.push_back(std::move(s)); });
  }
  events::ConnKey Request(bool server, uint32_t pid, int fd, uint32_t tid, uint64_t at_ms, uint16_t lport,
                          uint16_t rport, const std::string& traceparent = "") {
    correlator::RequestSeen r;
    r.conn = {pid, fd, 1};
    r.seq = 1;
    r.server = server;
    r.tuple.family = 2;
    r.tuple.local = {server ? "10.0.0.2" : "10.0.0.1", lport};
    r.tuple.remote = {server ? "10.0.0.1" : "10.0.0.2", rport};
    r.tuple_known = true;
    r.timing.tid = tid;
    r.timing.start_ns = kT0 + at_ms * kMs;
    r.traceparent = traceparent;
    stitcher->OnRequest(std::move(r));
    return r.conn;
  }
  void Done(const events::ConnKey& k, const std::string& name, uint64_t start_ms, uint64_t end_ms) {
    model::Span s;
    s.name = name;
    s.trace_id = model::TraceId::Random();
    s.span_id = model::SpanId::Random();
    s.start_time_unix_nano = kT0 + start_ms * kMs;
    s.end_time_unix_nano = kT0 + end_ms * kMs;
    stitcher->OnSpan({.conn = k, .seq = 1, .response = {}}, std::move(s));
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

}  // namespace
}  // namespace kspan
