// The daemon's user-space cost per request, without a kernel: synthetic events for HTTP/1.1
// keep-alive traffic between a client and a server process on loopback (both ends traced,
// as nginx driven by wrk) go through the agent's whole pipeline (connection tracking,
// HTTP/1 parsing, span building, stitching, export to an exporter), and the process's CPU
// time is divided by the requests. Events arrive in batches as from the ring buffer; the
// clock advances with them, so the stitcher's windows and bounds behave as on a host. The
// events come from the tests' synthetic generator (tests/testing/event_generator.h), so the
// bench and the tests build them one way; building them is inside the measured CPU time,
// as it was with the bench's own builders (a few copies of small structs per request).
//
//   kspan-pipeline-bench [--requests N] [--connections C] [--rate R] [--output SPEC] [--runs K]
//                        [--span-metrics true|false] [--sampler-ratio R] [--check true]
//   kspan-pipeline-bench --metrics-only N
//
// --rate is requests per second of simulated time (what the stitcher sees); the figure is
// CPU per request at that rate. --output is an exporter spec as for kspan (default
// file:/dev/null, the OTLP/JSON file exporter). --span-metrics false turns span metrics and
// the service graph off (they are on by default, as in kspan); --sampler-ratio R samples
// traces with traceidratio R. Prints one line per run and the median, per request and per
// span (the figure issue 17's goals are read against). --check true exits 1 unless every
// run built two spans a request (the CTest bench.pipeline_cost: a regression guard that
// records the figure in the test log and asserts only that spans came out). --metrics-only N
// times the span-metrics and service-graph processors alone on N requests (a CLIENT and a
// SERVER span of one trace each, as kspan builds them for HTTP/1.1) and prints CPU ns per
// span: their cost without the rest of the pipeline's noise.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "agent/pipeline.h"
#include "common/metrics.h"
#include "exporters/export_pipeline.h"
#include "exporters/factory.h"
#include "processors/service_graph.h"
#include "processors/span_metrics.h"
#include "testing/clock.h"
#include "testing/event_generator.h"

// As kspan's own (userspace/agent/main.cc).
extern "C" const char* malloc_conf;
const char* malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";

namespace {

using kspan::testing::EventGenerator;
using kspan::testing::MockClock;
using kspan::testing::TcpPair;

struct Args {
  uint64_t requests = 200'000;
  uint32_t connections = 32;
  uint64_t rate = 20'000;
  std::string output = "file:/dev/null";
  int runs = 5;
  bool span_metrics = true;
  double sampler_ratio = -1;  // < 0: the default sampler (keeps everything)
  bool check = false;         // exit 1 unless every run built 2 spans a request
};

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Runs `a.requests` requests through a fresh pipeline; returns CPU seconds spent.
double RunOnce(const Args& a, uint64_t* spans_out) {
  kspan::metrics::Registry metrics;
  auto exporter = kspan::exporters::MakeExporter(a.output);
  if (!exporter.ok()) {
    std::fprintf(stderr, "kspan-pipeline-bench: --output %s: %s\n", a.output.c_str(),
                 exporter.status().message().c_str());
    std::exit(2);
  }
  std::vector<std::unique_ptr<kspan::exporters::SpanExporter>> outs;
  outs.push_back(std::move(exporter).value());
  const double cpu0 = CpuSeconds();
  {
    kspan::exporters::ExportPipeline exports(std::move(outs), kspan::exporters::ExportPipeline::Options{},
                                             &metrics);
    kspan::agent::PipelineOptions options;
    options.span_metrics = a.span_metrics;
    if (a.sampler_ratio >= 0) {
      auto head = kspan::processors::ParseHeadSampler("--sampler-ratio", "traceidratio",
                                                      std::to_string(a.sampler_ratio));
      if (!head.ok()) {
        std::fprintf(stderr, "kspan-pipeline-bench: %s\n", head.status().message().c_str());
        std::exit(2);
      }
      options.sampling.head = *head;
    }
    kspan::agent::Pipeline pipeline(options, &metrics, &exports);

    const uint64_t t0 = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count());
    MockClock clock(t0);
    EventGenerator gen(&clock);
    // Connection i: client pid 4001 fd 10+i port 40000+i to server pid 4002 fd 10+i port 8080.
    std::vector<TcpPair> conns;
    conns.reserve(a.connections);
    for (uint32_t i = 0; i < a.connections; ++i) {
      conns.push_back(gen.LoopbackPair({.client_pid = 4001,
                                        .client_fd = static_cast<int32_t>(10 + i),
                                        .client_port = static_cast<uint16_t>(40000 + i),
                                        .server_pid = 4002,
                                        .server_fd = static_cast<int32_t>(10 + i),
                                        .server_port = 8080}));
      pipeline.OnConnOpen(gen.Open(conns[i].client));
      pipeline.OnConnOpen(gen.Open(conns[i].server));
    }

    // Requests as wrk sends them to nginx `return 200` (the bench's plaintext row), interned
    // once so the loop hands out views.
    std::vector<kspan::testing::Payload> requests;
    for (int i = 0; i < 16; ++i) {
      requests.push_back(
          gen.Keep("GET /item/" + std::to_string(1000 + i) +
                   " HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"));
    }
    const kspan::testing::Payload response = gen.Keep(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 24 Nov 2026 16:00:00 GMT\r\n"
        "Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n");

    // A batch is what one ring-buffer drain brings: 10 ms of traffic, as the agent's default.
    const uint64_t gap_ns = 1'000'000'000ull / std::max<uint64_t>(a.rate, 1);
    const uint64_t batch_ns = 10'000'000;
    uint64_t now = t0 + 1'000'000, next_batch = now + batch_ns, last_tick = now;
    for (uint64_t r = 0; r < a.requests; ++r) {
      // client write, server read, server write, client read: 5 µs each way, 20 µs of
      // service time. Request r starts at its own time whatever the others took (at high
      // rates, exchanges of different connections overlap, as on a host).
      clock.Set(now);
      gen.HttpExchange(&conns[r % a.connections], requests[r % requests.size()], response, &pipeline,
                       {.network_ns = 5'000, .service_ns = 20'000});
      now += gap_ns;
      if (now >= next_batch) {
        pipeline.AfterBatch(now);
        next_batch = now + batch_ns;
        if (now - last_tick >= 1'000'000'000ull) {
          pipeline.Tick(now);
          last_tick = now;
        }
      }
    }
    clock.Set(now);
    for (const TcpPair& c : conns) {
      pipeline.OnConnClose(gen.Close(c.client));
      pipeline.OnConnClose(gen.Close(c.server));
    }
    pipeline.AfterBatch(now);
    pipeline.Finish();
    exports.Shutdown();
  }
  const double cpu = CpuSeconds() - cpu0;
  *spans_out = static_cast<uint64_t>(metrics.GetCounter("kspan_spans_total", {})->Value());
  return cpu;
}

// The span-metrics and service-graph processors alone: CPU ns per span.
int MetricsOnly(uint64_t requests) {
  kspan::metrics::Registry registry;
  kspan::processors::SpanMetrics span_metrics(&registry);
  kspan::processors::ServiceGraph graph(&registry);
  auto resource = [](const char* service) {
    auto r = std::make_shared<kspan::model::Resource>();
    r->attributes.push_back({"service.name", std::string(service)});
    r->attributes.push_back({"process.pid", int64_t{4242}});
    return r;
  };
  const auto front = resource("front"), back = resource("back");
  auto http = [](kspan::model::Span* s, int i) {
    s->Set("http.request.method", std::string("GET"));
    s->Set("url.path", "/items/" + std::to_string(i));
    s->Set("url.template", std::string("/items/{id}"));
    s->Set("http.response.status_code", int64_t{200});
    s->Set("server.address", std::string("127.0.0.1"));
    s->Set("server.port", int64_t{8080});
    s->Set("network.peer.address", std::string("127.0.0.1"));
    s->Set("network.peer.port", int64_t{40000 + i % 1000});
    s->Set("network.protocol.version", std::string("1.1"));
    s->Set("user_agent.original", std::string("bench/1.0"));
  };
  std::vector<kspan::model::Span> spans;
  spans.reserve(2 * requests);
  for (uint64_t i = 0; i < requests; ++i) {
    kspan::model::Span c;
    c.kind = kspan::model::SpanKind::kClient;
    c.trace_id = kspan::model::TraceId::Random();
    c.span_id = kspan::model::SpanId::Random();
    c.start_time_unix_nano = 1'000'000'000 + i * 50'000;
    c.end_time_unix_nano = c.start_time_unix_nano + 900'000;
    c.resource = front;
    http(&c, static_cast<int>(i));
    kspan::model::Span v = c;
    v.kind = kspan::model::SpanKind::kServer;
    v.parent_span_id = c.span_id;
    v.span_id = kspan::model::SpanId::Random();
    v.start_time_unix_nano += 100'000;
    v.end_time_unix_nano -= 100'000;
    v.resource = back;
    spans.push_back(std::move(c));
    spans.push_back(std::move(v));
  }
  const double cpu0 = CpuSeconds();
  for (kspan::model::Span& s : spans) {
    span_metrics.OnExport(s);
    graph.OnExport(s);
  }
  const double cpu = CpuSeconds() - cpu0;
  const auto edges = graph.Edges();
  std::printf(
      "metrics only: %llu spans, %.3f CPU s, %.0f ns per span (span metrics and service graph); %zu "
      "edge(s), %llu requests on them\n",
      static_cast<unsigned long long>(spans.size()), cpu, cpu * 1e9 / static_cast<double>(spans.size()),
      edges.size(), static_cast<unsigned long long>(edges.empty() ? 0 : edges.begin()->second.requests));
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: kspan-pipeline-bench [--requests N] [--connections C] [--rate R] [--output SPEC] "
               "[--runs K] [--span-metrics true|false] [--sampler-ratio R] [--check true]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (i + 1 >= argc) return Usage();
    const char* v = argv[++i];
    if (f == "--requests") {
      a.requests = std::strtoull(v, nullptr, 10);
    } else if (f == "--connections") {
      a.connections = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (f == "--rate") {
      a.rate = std::strtoull(v, nullptr, 10);
    } else if (f == "--output") {
      a.output = v;
    } else if (f == "--runs") {
      a.runs = std::atoi(v);
    } else if (f == "--metrics-only") {
      return MetricsOnly(std::strtoull(v, nullptr, 10));
    } else if (f == "--span-metrics") {
      a.span_metrics = std::string(v) != "false";
    } else if (f == "--sampler-ratio") {
      a.sampler_ratio = std::strtod(v, nullptr);
    } else if (f == "--check") {
      a.check = std::string(v) != "false";
    } else {
      return Usage();
    }
  }
  if (a.requests == 0 || a.connections == 0 || a.rate == 0 || a.runs <= 0) return Usage();
  std::vector<double> per_request;
  bool spans_ok = true;
  for (int run = 0; run < a.runs; ++run) {
    uint64_t spans = 0;
    const double cpu = RunOnce(a, &spans);
    per_request.push_back(cpu * 1e6 / static_cast<double>(a.requests));
    std::printf("run %d: %llu requests, %llu spans, %.3f CPU s, %.2f us per request\n", run + 1,
                static_cast<unsigned long long>(a.requests), static_cast<unsigned long long>(spans), cpu,
                per_request.back());
    if (spans != 2 * a.requests) spans_ok = false;
  }
  std::sort(per_request.begin(), per_request.end());
  const double median = per_request[per_request.size() / 2];
  // Both ends of every request are traced: two spans a request.
  std::printf(
      "median: %.2f us CPU per request, %.2f us per span (%u connections, %llu req/s simulated, output %s, "
      "span metrics %s, sampler %s)\n",
      median, median / 2, a.connections, static_cast<unsigned long long>(a.rate), a.output.c_str(),
      a.span_metrics ? "on" : "off",
      a.sampler_ratio < 0 ? "default" : std::to_string(a.sampler_ratio).c_str());
  if (a.check && !spans_ok) {
    std::fprintf(stderr, "kspan-pipeline-bench: a run did not build 2 spans a request (%llu requests)\n",
                 static_cast<unsigned long long>(a.requests));
    return 1;
  }
  return 0;
}
