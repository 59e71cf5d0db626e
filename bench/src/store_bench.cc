// The trace store's cost per span (userspace/store/): spans shaped as kspan builds them for
// HTTP/1.1 (a CLIENT and a SERVER span a request, 15 attributes each, two processes)
// written through TraceStore::Write in the batches the store sink takes (1024 spans), into
// a fresh file under /tmp, with its bounds applied as in kspan (size and age checked once
// a second of the spans' time). The figure is the writing thread's CPU time per span (the
// store's own thread in kspan, off the capture path) and the file's bytes per span.
//
//   kspan-store-bench [--spans N] [--runs K] [--max-mib M] [--batch B]
//
// --batch: spans per transaction (default 1024, the sink's largest). Under a steady load the
// sink takes what arrived in one flush interval, e.g. 1,000 spans/s (the default rate bound)
// every second: 1,000.
//
// Prints one line per run and the median: "median: X us/span ...".
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "store/trace_store.h"

namespace {

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::shared_ptr<const kspan::model::Resource> Process(const std::string& service, int64_t pid) {
  auto r = std::make_shared<kspan::model::Resource>();
  r->attributes = {{"service.name", service},
                   {"process.pid", pid},
                   {"process.executable.name", std::string("nginx")},
                   {"process.executable.path", std::string("/usr/sbin/nginx")},
                   {"host.name", std::string("vm")},
                   {"telemetry.distro.name", std::string("kspan")}};
  return r;
}

// The two spans of request `i`, as kspan's HTTP/1 spans carry them.
void Request(uint64_t i, uint64_t t0, const std::shared_ptr<const kspan::model::Resource>& client,
             const std::shared_ptr<const kspan::model::Resource>& server,
             std::vector<kspan::model::Span>* out) {
  using kspan::model::Span;
  Span c;
  c.trace_id = kspan::model::TraceId::Random();
  c.span_id = kspan::model::SpanId::Random();
  c.kind = kspan::model::SpanKind::kClient;
  c.name = "GET";
  c.start_time_unix_nano = t0 + i * 50'000;
  c.end_time_unix_nano = c.start_time_unix_nano + 180'000;
  c.resource = client;
  const std::string path = "/items/" + std::to_string(i % 1000);
  c.attributes = {{"http.request.method", std::string("GET")},
                  {"http.response.status_code", int64_t{200}},
                  {"url.full", "http://127.0.0.1:8080" + path},
                  {"server.address", std::string("127.0.0.1")},
                  {"server.port", int64_t{8080}},
                  {"network.peer.address", std::string("127.0.0.1")},
                  {"network.peer.port", int64_t{8080}},
                  {"network.protocol.name", std::string("http")},
                  {"network.protocol.version", std::string("1.1")},
                  {"user_agent.original", std::string("wrk")},
                  {"http.response.body.size", int64_t{612}},
                  {"url.scheme", std::string("http")},
                  {"url.path", path},
                  {"client.address", std::string("127.0.0.1")},
                  {"client.port", static_cast<int64_t>(40000 + i % 20000)}};
  Span s = c;
  s.span_id = kspan::model::SpanId::Random();
  s.parent_span_id = c.span_id;
  s.kind = kspan::model::SpanKind::kServer;
  s.name = "GET /items/{id}";
  s.start_time_unix_nano += 20'000;
  s.end_time_unix_nano -= 20'000;
  s.resource = server;
  s.Set("http.route", std::string("/items/{id}"));
  out->push_back(std::move(c));
  out->push_back(std::move(s));
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t spans = 200'000;
  int runs = 5;
  uint64_t max_mib = 256;
  size_t batch_spans = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--spans"))
      spans = strtoull(argv[i + 1], nullptr, 10);
    else if (!strcmp(argv[i], "--runs"))
      runs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--max-mib"))
      max_mib = strtoull(argv[i + 1], nullptr, 10);
    else if (!strcmp(argv[i], "--batch"))
      batch_spans = std::max<size_t>(2, strtoull(argv[i + 1], nullptr, 10));
    else {
      fprintf(stderr, "usage: kspan-store-bench [--spans N] [--runs K] [--max-mib M] [--batch B]\n");
      return 2;
    }
  }
  const auto client = Process("wrk", 100), server = Process("nginx", 200);
  std::vector<double> us;
  for (int run = 0; run < runs; ++run) {
    char dir[] = "/tmp/kspan-store-bench-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    const std::string path = std::string(dir) + "/traces.db";
    kspan::metrics::Registry m;
    auto store = kspan::store::TraceStore::Open({.path = path, .max_bytes = max_mib << 20}, &m);
    if (!store.ok()) {
      fprintf(stderr, "%s\n", store.status().message().c_str());
      return 1;
    }
    const uint64_t t0 = 1'800'000'000'000'000'000ull;
    std::vector<kspan::model::Span> batch;
    uint64_t written = 0, req = 0;
    double cpu = 0;
    while (written < spans) {
      batch.clear();
      while (batch.size() < batch_spans) Request(req++, t0, client, server, &batch);
      const double c0 = ThreadCpuSeconds();
      const kspan::Status s = (*store)->Write(batch, t0 + req * 50'000);
      cpu += ThreadCpuSeconds() - c0;
      if (!s.ok()) {
        fprintf(stderr, "write: %s\n", s.message().c_str());
        return 1;
      }
      written += batch.size();
    }
    const uint64_t bytes = *(*store)->UsedBytes();
    store->reset();
    const double per = cpu / static_cast<double>(written) * 1e6;
    us.push_back(per);
    printf("run %d: %.2f us/span, %llu spans, %.0f bytes/span, evicted %llu traces\n", run + 1, per,
           static_cast<unsigned long long>(written),
           static_cast<double>(bytes) / static_cast<double>(written),
           static_cast<unsigned long long>(m.Sum("kspan_store_traces_evicted_total")));
    std::filesystem::remove_all(dir);
  }
  std::sort(us.begin(), us.end());
  printf("median: %.2f us/span over %d runs of %llu spans\n", us[us.size() / 2], runs,
         static_cast<unsigned long long>(spans));
  return 0;
}
