// The shared synthetic event generator and mock clock (tests/testing/): positions per
// direction, identities, mirrored tuples of a same-host pair, local channels, timing, and
// that a generated exchange is what the pipeline turns into a client and a server span.
#include "testing/event_generator.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <memory>
#include <vector>

#include "agent/pipeline.h"
#include "common/metrics.h"
#include "exporters/export_pipeline.h"
#include "exporters/factory.h"
#include "testing/clock.h"

namespace kspan::testing {
namespace {

using events::ConnKind;
using events::Direction;
using events::Role;

TEST(MockClock, MovesOnlyWhenTold) {
  MockClock clock;
  EXPECT_EQ(clock.now_ns(), MockClock::kDefaultStartNs);
  clock.Advance(5);
  EXPECT_EQ(clock.now_ns(), MockClock::kDefaultStartNs + 5);
  clock.Set(1000);
  EXPECT_EQ(clock.now_ns(), 1000u);
  EXPECT_EQ(MockClock(7).now_ns(), 7u);
}

TEST(EventGenerator, EachEventIsStampedAndMovesTheClock) {
  MockClock clock(1'000'000);
  EventGenerator gen(&clock, /*step_ns=*/100, /*syscall_ns=*/30);
  ConnEnd end = gen.Tcp(7, 3, Role::kClient, {"127.0.0.1", 40000}, {"127.0.0.1", 80});
  EXPECT_EQ(gen.Open(end).ts_ns, 1'000'000u);
  const events::DataEvent d = gen.Send(&end, "abc");
  EXPECT_EQ(d.enter_ns, 1'000'100u);
  EXPECT_EQ(d.exit_ns, 1'000'130u);
  EXPECT_EQ(gen.Close(end).ts_ns, 1'000'200u);
  EXPECT_EQ(clock.now_ns(), 1'000'300u);
}

TEST(EventGenerator, PositionsAdvancePerDirectionByTheBytesMoved) {
  MockClock clock;
  EventGenerator gen(&clock);
  ConnEnd end = gen.Tcp(7, 3, Role::kServer, {"127.0.0.1", 80}, {"127.0.0.1", 40000});
  const events::DataEvent r1 = gen.Recv(&end, "GET / HTTP/1.1\r\n");
  const events::DataEvent s1 = gen.Send(&end, "HTTP/1.1 200 OK\r\n");
  const events::DataEvent r2 = gen.Recv(&end, "\r\n");
  // Captured prefix shorter than what the syscall moved: the position counts all of it.
  const events::DataEvent s2 = gen.Send(&end, "xyz", /*total_len=*/1000);
  const events::DataEvent s3 = gen.Send(&end, "end");
  EXPECT_EQ(r1.position, 0u);
  EXPECT_EQ(r1.direction, Direction::kIngress);
  EXPECT_EQ(s1.position, 0u);
  EXPECT_EQ(s1.direction, Direction::kEgress);
  EXPECT_EQ(r2.position, 16u);
  EXPECT_EQ(s2.position, 17u);
  EXPECT_EQ(s2.total_len, 1000u);
  EXPECT_EQ(s2.data, "xyz");
  EXPECT_EQ(s3.position, 1017u);
  EXPECT_EQ(end.received, 18u);
  EXPECT_EQ(end.sent, 1020u);
  const events::ConnCloseEvent c = gen.Close(end);
  EXPECT_EQ(c.bytes_sent, 1020u);
  EXPECT_EQ(c.bytes_received, 18u);
  for (const auto* e : {&r1, &s1, &r2, &s2, &s3}) {
    EXPECT_EQ(e->key, end.key);
    EXPECT_EQ(e->role, Role::kServer);
    EXPECT_EQ(e->tid, 7u);
  }
}

TEST(EventGenerator, ThreadAndTurnComeFromTheEnd) {
  MockClock clock;
  EventGenerator gen(&clock);
  ConnEnd end = gen.Tcp(7, 3, Role::kClient, {"127.0.0.1", 40000}, {"127.0.0.1", 80});
  EXPECT_EQ(gen.Send(&end, "a").turn, 0u);
  end.tid = 9;
  end.NextTurn();
  const events::DataEvent d = gen.Send(&end, "b");
  EXPECT_EQ(d.tid, 9u);
  EXPECT_EQ(d.turn, 1u);
  EXPECT_EQ(gen.Open(end).turn, 1u);
}

TEST(EventGenerator, LoopbackPairHasMirroredTuplesAndDistinctIdentities) {
  MockClock clock;
  EventGenerator gen(&clock);
  const TcpPair p = gen.LoopbackPair({.client_pid = 100,
                                      .client_fd = 5,
                                      .client_port = 41000,
                                      .server_pid = 200,
                                      .server_fd = 6,
                                      .server_port = 9000});
  EXPECT_EQ(p.client.key.pid, 100u);
  EXPECT_EQ(p.client.key.fd, 5);
  EXPECT_EQ(p.server.key.pid, 200u);
  EXPECT_EQ(p.server.key.fd, 6);
  EXPECT_NE(p.client.key.generation, p.server.key.generation);
  EXPECT_EQ(p.client.role, Role::kClient);
  EXPECT_EQ(p.server.role, Role::kServer);
  EXPECT_EQ(p.client.tuple.family, AF_INET);
  EXPECT_EQ(p.client.tuple.local, (events::Endpoint{"127.0.0.1", 41000}));
  EXPECT_EQ(p.client.tuple.remote, (events::Endpoint{"127.0.0.1", 9000}));
  EXPECT_EQ(p.client.tuple.local, p.server.tuple.remote);
  EXPECT_EQ(p.client.tuple.remote, p.server.tuple.local);

  const TcpPair v6 = gen.LoopbackPair({.ipv6 = true});
  EXPECT_EQ(v6.client.tuple.family, AF_INET6);
  EXPECT_EQ(v6.server.tuple.local, (events::Endpoint{"::1", 8080}));
  // Another connection of the same processes and fds is another connection.
  EXPECT_NE(v6.client.key, gen.LoopbackPair({.ipv6 = true}).client.key);

  const events::ConnOpenEvent open = gen.Open(p.server);
  EXPECT_EQ(open.role, Role::kServer);
  EXPECT_EQ(open.kind, ConnKind::kTcp);
  EXPECT_EQ(open.tuple.local, p.server.tuple.local);
  EXPECT_EQ(open.tid, 200u);
}

TEST(EventGenerator, HttpExchangeMovesBothEndsInOrder) {
  MockClock clock(1'000'000);
  EventGenerator gen(&clock, /*step_ns=*/100);
  TcpPair p = gen.LoopbackPair();
  const std::string req = EventGenerator::HttpRequest("GET", "/a");
  const std::string resp = EventGenerator::HttpResponse(200, "ok");
  EXPECT_EQ(req, "GET /a HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
  EXPECT_EQ(resp, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  const auto ev = gen.HttpExchange(&p, req, resp, {.network_ns = 10, .service_ns = 1000});
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].key, p.client.key);
  EXPECT_EQ(ev[0].direction, Direction::kEgress);
  EXPECT_EQ(ev[1].key, p.server.key);
  EXPECT_EQ(ev[1].direction, Direction::kIngress);
  EXPECT_EQ(ev[2].key, p.server.key);
  EXPECT_EQ(ev[2].direction, Direction::kEgress);
  EXPECT_EQ(ev[3].key, p.client.key);
  EXPECT_EQ(ev[3].direction, Direction::kIngress);
  EXPECT_EQ(ev[0].enter_ns, 1'000'000u);
  EXPECT_EQ(ev[1].enter_ns, 1'000'010u);
  EXPECT_EQ(ev[2].enter_ns, 1'001'010u);
  EXPECT_EQ(ev[3].enter_ns, 1'001'020u);
  EXPECT_EQ(clock.now_ns(), 1'001'120u);
  EXPECT_EQ(ev[0].data, req);
  EXPECT_EQ(ev[3].data, resp);

  // Keep-alive: positions continue, requests start gap_ns apart.
  const auto more = gen.KeepAlive(&p, {{req, resp}, {req, resp}}, /*gap_ns=*/50'000);
  ASSERT_EQ(more.size(), 8u);
  EXPECT_EQ(more[0].position, req.size());
  EXPECT_EQ(more[4].position, 2 * req.size());
  EXPECT_EQ(more[7].position, 2 * resp.size());
  EXPECT_EQ(more[4].enter_ns - more[0].enter_ns, 50'000u);
  EXPECT_EQ(p.client.sent, 3 * req.size());
  EXPECT_EQ(p.server.received, 3 * req.size());
  EXPECT_EQ(p.server.sent, 3 * resp.size());
  EXPECT_EQ(p.client.received, 3 * resp.size());

  // One end only.
  ConnEnd server = gen.Tcp(9, 4, Role::kServer, {"127.0.0.1", 80}, {"10.0.0.1", 5555});
  const auto one = gen.HttpExchange(&server, req, resp);
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one[0].direction, Direction::kIngress);
  EXPECT_EQ(one[1].direction, Direction::kEgress);
  EXPECT_LT(one[0].enter_ns, one[1].enter_ns);
}

TEST(EventGenerator, PayloadsOutliveTheCallersStrings) {
  MockClock clock;
  EventGenerator gen(&clock);
  ConnEnd end = gen.Tcp(7, 3, Role::kClient, {"127.0.0.1", 40000}, {"127.0.0.1", 80});
  events::DataEvent d;
  {
    std::string temp(100, 'q');
    d = gen.Send(&end, temp);
  }
  EXPECT_EQ(d.data, std::string(100, 'q'));
  // One copy per distinct content.
  const Payload a = gen.Keep(std::string(50, 'z'));
  const Payload b = gen.Keep(std::string(50, 'z'));
  EXPECT_EQ(a.bytes().data(), b.bytes().data());
  EXPECT_EQ(gen.Send(&end, a).data.data(), a.bytes().data());
}

TEST(EventGenerator, LocalChannelsNameTheirInodes) {
  MockClock clock;
  EventGenerator gen(&clock);
  ChannelPair pipe = gen.Pipe(10, 4, 11, 0, 777);
  EXPECT_EQ(pipe.a.kind, ConnKind::kPipe);
  EXPECT_EQ(pipe.a.local_id, 777u);
  EXPECT_EQ(pipe.a.peer_id, 777u);
  EXPECT_EQ(pipe.b.local_id, 777u);
  EXPECT_EQ(pipe.b.key, (events::ConnKey{11, 0, pipe.b.key.generation}));
  EXPECT_EQ(pipe.a.tuple.family, 0);
  EXPECT_EQ(gen.Send(&pipe.a, "{}\n").position, 0u);
  EXPECT_EQ(gen.Recv(&pipe.b, "{}\n").direction, Direction::kIngress);

  const ChannelPair unix_pair = gen.UnixPair(10, 5, 100, 11, 1, 101);
  EXPECT_EQ(unix_pair.a.kind, ConnKind::kUnix);
  EXPECT_EQ(unix_pair.a.tuple.family, AF_UNIX);
  EXPECT_EQ(unix_pair.a.local_id, 100u);
  EXPECT_EQ(unix_pair.a.peer_id, 101u);
  EXPECT_EQ(unix_pair.b.local_id, 101u);
  EXPECT_EQ(unix_pair.b.peer_id, 100u);
  const events::ConnOpenEvent open = gen.Open(unix_pair.b, /*midstream=*/true);
  EXPECT_EQ(open.kind, ConnKind::kUnix);
  EXPECT_EQ(open.local_id, 101u);
  EXPECT_EQ(open.peer_id, 100u);
  EXPECT_TRUE(open.midstream);

  EXPECT_EQ(gen.Stdout(12).kind, ConnKind::kStdout);
  EXPECT_EQ(gen.Stdout(12).key.fd, 1);
  EXPECT_EQ(gen.Stderr(12).kind, ConnKind::kStderr);
  EXPECT_EQ(gen.Stderr(12).key.fd, 2);
  EXPECT_EQ(gen.Stderr(12).local_id, 0u);
}

TEST(EventGenerator, ExecAndExit) {
  MockClock clock(500);
  EventGenerator gen(&clock);
  const events::ProcessExecEvent e = gen.Exec(20, 10, {"/usr/bin/python3.11-with-a-long-name", "-c", "x"});
  EXPECT_EQ(e.pid, 20u);
  EXPECT_EQ(e.ppid, 10u);
  EXPECT_EQ(e.parent_tid, 10u);
  EXPECT_EQ(e.ts_ns, 500u);
  EXPECT_EQ(e.filename, "/usr/bin/python3.11-with-a-long-name");
  EXPECT_EQ(e.exe_name, "python3.11-with-a-long-name");
  EXPECT_EQ(e.comm, "python3.11-with");
  EXPECT_EQ(e.argv.size(), 3u);
  EXPECT_EQ(gen.Exec(21, 10, {"sh"}, /*parent_tid=*/15).parent_tid, 15u);
  const events::ProcessExitEvent x = gen.Exit(20, 256);
  EXPECT_EQ(x.pid, 20u);
  EXPECT_EQ(x.exit_code, 256);
  EXPECT_GT(x.ts_ns, e.ts_ns);
}

// The events are realistic enough for the whole pipeline: a traced client and server of one
// loopback connection give one span each per request.
TEST(EventGenerator, PipelineMakesAClientAndAServerSpanPerExchange) {
  metrics::Registry metrics;
  auto exporter = exporters::MakeExporter("file:/dev/null");
  ASSERT_TRUE(exporter.ok()) << exporter.status().message();
  std::vector<std::unique_ptr<exporters::SpanExporter>> outs;
  outs.push_back(std::move(exporter).value());
  exporters::ExportPipeline exports(std::move(outs), exporters::ExportPipeline::Options{}, &metrics);
  {
    agent::Pipeline pipeline(agent::PipelineOptions{}, &metrics, &exports);
    MockClock clock;
    EventGenerator gen(&clock);
    TcpPair p = gen.LoopbackPair();
    Feed(&pipeline, std::vector<events::Event>{gen.Open(p.client), gen.Open(p.server)});
    const std::string req = EventGenerator::HttpRequest("GET", "/item/1");
    const std::string resp = EventGenerator::HttpResponse(200, "ok\n");
    Feed(&pipeline, gen.KeepAlive(&p, {{req, resp}, {req, resp}, {req, resp}}));
    Feed(&pipeline, std::vector<events::Event>{gen.Close(p.client), gen.Close(p.server)});
    pipeline.AfterBatch(clock.now_ns());
    pipeline.Finish();
  }
  exports.Shutdown();
  EXPECT_EQ(metrics.GetCounter("kspan_spans_total", {})->Value(), 6u);
}

}  // namespace
}  // namespace kspan::testing
