// The network exporters end to end: the real agent traces curl against python3's
// http.server on loopback and sends its spans to receivers written with other people's
// code (tests/receivers: the OpenTelemetry JS SDK's own decoder, @grpc/grpc-js, genkit's
// telemetry server, OpenTelemetry's own Zipkin exporter). Each test compares what the
// receiver got with what the agent wrote to its file output in the same run, and reads
// the agent's exit counters to check that every span was either sent or counted as
// dropped.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "testing/otlp_reader.h"
#include "testing/otlp_receiver.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kServer = 2, kClient = 3;
const std::string kReceivers = ReceiversDir();

// One series of the exit counters, failing the test when the agent never reported it.
uint64_t Counter(const std::map<std::string, uint64_t>& c, const std::string& series) {
  auto it = c.find(series);
  if (it == c.end()) {
    ADD_FAILURE() << "no counter " << series;
    return 0;
  }
  return it->second;
}

uint64_t Dropped(const std::map<std::string, uint64_t>& c, const std::string& exporter,
                 const std::string& reason) {
  return Counter(
      c, "kspan_exporter_spans_dropped_total{exporter=\"" + exporter + "\",reason=\"" + reason + "\"}");
}

uint64_t AllDropped(const std::map<std::string, uint64_t>& c, const std::string& exporter) {
  uint64_t n = 0;
  for (const char* r :
       {"queue_full", "rejected", "non_retryable", "retries_exhausted", "too_large", "shutdown"}) {
    n += Dropped(c, exporter, r);
  }
  return n;
}

// Retries of `exporter`, every reason; the agent always reports each reason.
uint64_t Retries(const std::map<std::string, uint64_t>& c, const std::string& exporter) {
  uint64_t n = 0;
  for (const char* r : {"not_sent", "throttled", "unavailable", "timeout", "connection_lost"}) {
    n += Counter(c, "kspan_exporter_retries_total{exporter=\"" + exporter + "\",reason=\"" + r + "\"}");
  }
  return n;
}

uint64_t Sent(const std::map<std::string, uint64_t>& c, const std::string& exporter) {
  return Counter(c, "kspan_exporter_spans_sent_total{exporter=\"" + exporter + "\"}");
}

// Spans the export pipeline handed to `exporter`: those it queued plus those in batches
// it could only partly queue (export_pipeline.h counts a failed batch whole).
uint64_t HandedTo(const std::map<std::string, uint64_t>& c, const std::string& exporter) {
  return Counter(c, "kspan_spans_exported_total{exporter=\"" + exporter + "\"}") +
         Counter(c, "kspan_spans_export_failed_total{exporter=\"" + exporter + "\"}");
}

// ---- traffic --------------------------------------------------------------------------

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(RequireReceivers());
    www_ = MakeTempDir("kspan-www-");
    std::ofstream(www_ + "/index.html") << "<html>hello kspan</html>\n";
    web_port_ = FreePort();
    ASSERT_TRUE(web_.Start({"/usr/bin/python3", "-m", "http.server", std::to_string(web_port_), "--bind",
                            "127.0.0.1", "--directory", www_},
                           {{"OTEL_SERVICE_NAME", "py-files"}}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", web_port_, seconds(10))) << web_.Stderr();
  }

  // One curl run fetching `n` URLs (a 200 and a 404 in turn) from the web server.
  void Traffic(int n) {
    std::vector<std::string> args = {"curl", "-sS", "--max-time", "10"};
    for (int i = 0; i < n; ++i) {
      args.insert(args.end(),
                  {"-o", "/dev/null", Url(i % 2 == 0 ? "/index.html" : "/missing/" + std::to_string(i))});
    }
    const CommandResult r = RunCommand(args, seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(web_port_) + path;
  }

  std::vector<FlatSpan> WebSpans(const std::vector<FlatSpan>& all, int kind) const {
    std::vector<FlatSpan> out;
    for (const auto& s : all) {
      if (s.kind == kind && s.Int("server.port") == web_port_) out.push_back(s);
    }
    return out;
  }

  std::string www_;
  int web_port_ = 0;
  Subprocess web_;
};

std::map<std::string, FlatSpan> ById(const std::vector<FlatSpan>& spans) {
  std::map<std::string, FlatSpan> out;
  for (const auto& s : spans) {
    EXPECT_TRUE(out.emplace(s.span_id, s).second) << "span " << s.span_id << " seen twice";
  }
  return out;
}

// Every field the OTLP span carries.
void ExpectSameSpan(const FlatSpan& want, const FlatSpan& got) {
  SCOPED_TRACE("span " + want.span_id + " " + want.name);
  EXPECT_EQ(got.trace_id, want.trace_id);
  EXPECT_EQ(got.span_id, want.span_id);
  EXPECT_EQ(got.parent_span_id, want.parent_span_id);
  EXPECT_EQ(got.trace_state, want.trace_state);
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.flags, want.flags);
  EXPECT_EQ(got.start_ns, want.start_ns);
  EXPECT_EQ(got.end_ns, want.end_ns);
  EXPECT_EQ(got.status_code, want.status_code);
  EXPECT_EQ(got.status_message, want.status_message);
  EXPECT_EQ(got.attributes, want.attributes);
  EXPECT_EQ(got.resource, want.resource);
  ASSERT_EQ(got.links.size(), want.links.size());
  for (size_t i = 0; i < want.links.size(); ++i) {
    EXPECT_EQ(got.links[i].trace_id, want.links[i].trace_id);
    EXPECT_EQ(got.links[i].span_id, want.links[i].span_id);
    EXPECT_EQ(got.links[i].trace_state, want.links[i].trace_state);
    EXPECT_EQ(got.links[i].attributes, want.links[i].attributes);
  }
}

// The receiver got exactly the spans of the file output, each identical.
void ExpectSameSpanSets(const std::vector<FlatSpan>& file, const std::vector<FlatSpan>& received) {
  const auto want = ById(file);
  const auto got = ById(received);
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [id, s] : want) {
    auto it = got.find(id);
    if (it == got.end()) {
      ADD_FAILURE() << "span " << id << " (" << s.name << ") never reached the receiver";
      continue;
    }
    ExpectSameSpan(s, it->second);
  }
  for (const auto& [id, s] : got) {
    EXPECT_TRUE(want.count(id)) << "the receiver got span " << id << " that the file output does not have";
  }
}

// ---- a, b: OTLP protobuf over HTTP and gRPC -------------------------------------------

TEST_F(ExportTest, OtlpHttpProtobufIsDecodedByTheOpenTelemetryJsDecoder) {
  const int port = FreePort();
  Receiver receiver;
  ASSERT_TRUE(receiver.Start("http", port)) << receiver.Stderr();
  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--output", "otlp", "--otlp-protocol", "http/protobuf", "--otlp-endpoint",
                           "http://127.0.0.1:" + std::to_string(port), "--otlp-compression", "gzip",
                           "--otlp-headers", "x-kspan-test=secret-1"}))
      << agent.Logs();
  ASSERT_NO_FATAL_FAILURE(Traffic(4));
  ASSERT_TRUE(WaitFor([&] { return WebSpans(ReadSpans(receiver.out()), kServer).size() >= 4; }, seconds(30)))
      << receiver.Stderr() << agent.Logs();
  ExpectCleanStop(agent);

  const auto file = ReadSpans(agent.SpansPath());
  const auto received = ReadSpans(receiver.out());
  ASSERT_EQ(WebSpans(file, kServer).size(), 4u);
  ASSERT_EQ(WebSpans(file, kClient).size(), 4u);
  ExpectSameSpanSets(file, received);
  // What a server span of this run looks like through the official decoder.
  const FlatSpan s = WebSpans(received, kServer)[0];
  EXPECT_EQ(s.Str("http.request.method"), "GET");
  EXPECT_EQ(s.Int("http.response.status_code"), 200);
  EXPECT_EQ(s.ResourceStr("service.name"), "py-files");
  EXPECT_EQ(s.flags & 0xff, 1u);

  const auto c = agent.StoppedCounters();
  EXPECT_EQ(Sent(c, "otlp"), received.size());
  EXPECT_EQ(AllDropped(c, "otlp"), 0u);
  const json stats = receiver.Stats();
  EXPECT_EQ(stats["lastHeaders"]["x-kspan-test"], "secret-1");
  EXPECT_EQ(stats["lastHeaders"]["content-type"], "application/x-protobuf");
  EXPECT_EQ(stats["lastHeaders"]["content-encoding"], "gzip");
  receiver.Stop();
}

TEST_F(ExportTest, OtlpGrpcIsReceivedByGrpcJsAndDecodedByTheOpenTelemetryJsDecoder) {
  const int port = FreePort();
  Receiver receiver;
  ASSERT_TRUE(receiver.Start("grpc", port)) << receiver.Stderr();
  KspanAgent agent;
  ASSERT_TRUE(
      agent.Start({"--output", "otlp", "--otlp-protocol", "grpc", "--otlp-endpoint",
                   "http://127.0.0.1:" + std::to_string(port), "--otlp-headers", "x-kspan-test=secret-2"}))
      << agent.Logs();
  ASSERT_NO_FATAL_FAILURE(Traffic(4));
  ASSERT_TRUE(WaitFor([&] { return WebSpans(ReadSpans(receiver.out()), kServer).size() >= 4; }, seconds(30)))
      << receiver.Stderr() << agent.Logs();
  ExpectCleanStop(agent);

  const auto file = ReadSpans(agent.SpansPath());
  const auto received = ReadSpans(receiver.out());
  ASSERT_EQ(WebSpans(file, kServer).size(), 4u);
  ExpectSameSpanSets(file, received);
  const auto c = agent.StoppedCounters();
  EXPECT_EQ(Sent(c, "otlp"), received.size());
  EXPECT_EQ(AllDropped(c, "otlp"), 0u);
  const json stats = receiver.Stats();
  EXPECT_EQ(stats["lastHeaders"]["x-kspan-test"], "secret-2") << "headers travel as gRPC metadata";
  EXPECT_EQ(stats["lastHeaders"].value("user-agent", "").rfind("kspan/", 0), 0u) << stats.dump();
  receiver.Stop();
}

// ---- https and gRPC over TLS with a custom CA ------------------------------------------

// A throwaway CA and a server certificate for 127.0.0.1 it signed, made with openssl(1).
struct TestPki {
  std::string ca, cert, key;
};
TestPki MakePki(const std::string& dir) {
  const auto run = [](const std::vector<std::string>& argv) {
    const CommandResult r = RunCommand(argv, seconds(60));
    EXPECT_EQ(r.exit_code, 0) << argv[1] << ": " << r.err;
  };
  run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/ca.key", "-out",
       dir + "/ca.pem", "-days", "1", "-subj", "/CN=kspan test CA"});
  run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/server.key", "-out",
       dir + "/server.csr", "-subj", "/CN=127.0.0.1"});
  std::ofstream(dir + "/san.ext") << "subjectAltName=IP:127.0.0.1\n";
  run({"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.pem", "-CAkey",
       dir + "/ca.key", "-CAcreateserial", "-out", dir + "/server.pem", "-days", "1", "-extfile",
       dir + "/san.ext"});
  return {dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"};
}

TEST_F(ExportTest, HttpsAndGrpcTlsTrustTheConfiguredCaOnly) {
  const TestPki pki = MakePki(MakeTempDir("kspan-pki-"));
  ASSERT_FALSE(::testing::Test::HasFailure());
  for (const std::string protocol : {"http/protobuf", "grpc"}) {
    SCOPED_TRACE(protocol);
    const int port = FreePort();
    Receiver receiver;
    ASSERT_TRUE(receiver.Start(protocol == "grpc" ? "grpc" : "http", port, "ok", {pki.cert, pki.key}))
        << receiver.Stderr();
    KspanAgent agent;
    ASSERT_TRUE(agent.Start({"--output", "otlp", "--otlp-protocol", protocol, "--otlp-endpoint",
                             "https://127.0.0.1:" + std::to_string(port), "--otlp-certificate", pki.ca}))
        << agent.Logs();
    ASSERT_NO_FATAL_FAILURE(Traffic(2));
    ASSERT_TRUE(
        WaitFor([&] { return WebSpans(ReadSpans(receiver.out()), kServer).size() >= 2; }, seconds(30)))
        << receiver.Stderr() << agent.Logs();
    ExpectCleanStop(agent);
    ExpectSameSpanSets(ReadSpans(agent.SpansPath()), ReadSpans(receiver.out()));
    EXPECT_EQ(AllDropped(agent.StoppedCounters(), "otlp"), 0u);
    receiver.Stop();
  }

  // Without our CA the server's certificate does not verify: nothing is sent, and the
  // spans are counted as dropped, never retried forever.
  const int port = FreePort();
  Receiver receiver;
  ASSERT_TRUE(receiver.Start("http", port, "ok", {pki.cert, pki.key})) << receiver.Stderr();
  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--output", "otlp", "--otlp-protocol", "http/protobuf", "--otlp-endpoint",
                           "https://127.0.0.1:" + std::to_string(port)},
                          {{"OTEL_BSP_SCHEDULE_DELAY", "100"}}))
      << agent.Logs();
  ASSERT_NO_FATAL_FAILURE(Traffic(2));
  ASSERT_TRUE(
      WaitFor([&] { return agent.Logs().find("export backend refused a request") != std::string::npos; },
              seconds(20)))
      << agent.Logs();
  ExpectCleanStop(agent);
  const auto c = agent.StoppedCounters();
  EXPECT_EQ(Sent(c, "otlp"), 0u);
  EXPECT_GE(Dropped(c, "otlp", "non_retryable"), 4u);
  EXPECT_EQ(receiver.Stats()["accepted"], 0);
  receiver.Stop();
}

// ---- c: OTLP/HTTP JSON into genkit's telemetry server ---------------------------------

TEST_F(ExportTest, OtlpHttpJsonIsAcceptedAndReadBackByGenkitTelemetryServer) {
  const int port = FreePort();
  const std::string store = MakeTempDir("kspan-genkit-");
  Subprocess genkit;
  ASSERT_TRUE(genkit.Start(
      {"node", kReceivers + "/genkit_receiver.js", "--port", std::to_string(port), "--dir", store}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, seconds(30))) << genkit.Stdout() << genkit.Stderr();
  KspanAgent agent;
  // Genkit takes OTLP at /api/otlp/v1/traces: the base endpoint gets v1/traces appended.
  ASSERT_TRUE(agent.Start({"--output", "otlp", "--otlp-protocol", "http/json", "--otlp-endpoint",
                           "http://127.0.0.1:" + std::to_string(port) + "/api/otlp"}))
      << agent.Logs();
  ASSERT_NO_FATAL_FAILURE(Traffic(2));
  std::vector<FlatSpan> web;
  ASSERT_TRUE(WaitFor(
      [&] {
        web = WebSpans(ReadSpans(agent.SpansPath()), kServer);
        const auto clients = WebSpans(ReadSpans(agent.SpansPath()), kClient);
        web.insert(web.end(), clients.begin(), clients.end());
        return web.size() >= 4;
      },
      seconds(30)))
      << agent.Logs();

  // Read each trace back from genkit's API and find every span of it there.
  const std::string api = "http://127.0.0.1:" + std::to_string(port) + "/api/traces/";
  for (const FlatSpan& want : web) {
    SCOPED_TRACE("span " + want.span_id + " " + want.name);
    json stored;
    const bool found = WaitFor(
        [&] {
          const CommandResult r =
              RunCommand({"curl", "-sS", "--max-time", "5", api + want.trace_id}, seconds(10));
          stored = json::parse(r.out, nullptr, false);
          return stored.is_object() && stored.contains("spans") && stored["spans"].contains(want.span_id);
        },
        seconds(20));
    ASSERT_TRUE(found) << "genkit never stored it; last answer: " << stored.dump() << "\n"
                       << genkit.Stderr() << agent.Logs();
    const json& g = stored["spans"][want.span_id];
    EXPECT_EQ(stored["traceId"], want.trace_id);
    EXPECT_EQ(g["traceId"], want.trace_id);
    EXPECT_EQ(g["spanId"], want.span_id);
    EXPECT_EQ(g.value("parentSpanId", ""), want.parent_span_id);
    EXPECT_EQ(g["displayName"], want.name);
    EXPECT_EQ(g["spanKind"], want.kind == kServer ? "SERVER" : "CLIENT");
    // Genkit keeps milliseconds.
    EXPECT_EQ(g["startTime"].get<double>(), std::round(static_cast<double>(want.start_ns) / 1e6));
    EXPECT_EQ(g["endTime"].get<double>(), std::round(static_cast<double>(want.end_ns) / 1e6));
    EXPECT_EQ(g["instrumentationLibrary"]["name"], "kspan");
    EXPECT_EQ(g["attributes"]["http.request.method"], "GET");
    if (want.kind == kServer) {
      EXPECT_EQ(g["attributes"]["url.path"], want.Str("url.path"));
    } else {
      EXPECT_EQ(g["attributes"]["url.full"], want.Str("url.full"));
    }
    // intValue arrives as the OTLP/JSON decimal string and genkit keeps it as given.
    EXPECT_EQ(g["attributes"]["http.response.status_code"],
              std::to_string(want.Int("http.response.status_code")));
    if (want.status_code != 0) {
      EXPECT_EQ(g["status"]["code"], want.status_code);
    } else {
      EXPECT_FALSE(g.contains("status"));
    }
  }
  ExpectCleanStop(agent);
  const auto c = agent.StoppedCounters();
  EXPECT_GT(Sent(c, "otlp"), 0u);
  EXPECT_EQ(AllDropped(c, "otlp"), 0u);
  genkit.Stop(SIGTERM, seconds(10));
}

// ---- d: Zipkin, against OpenTelemetry's own Zipkin exporter ---------------------------

TEST_F(ExportTest, ZipkinMatchesOpenTelemetryJsZipkinExporter) {
  const int port = FreePort();
  Receiver receiver;
  ASSERT_TRUE(receiver.Start("zipkin", port)) << receiver.Stderr();
  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--output", "zipkin", "--zipkin-endpoint",
                           "http://127.0.0.1:" + std::to_string(port) + "/api/v2/spans"}))
      << agent.Logs();
  ASSERT_NO_FATAL_FAILURE(Traffic(4));
  ASSERT_TRUE(WaitFor(
      [&] {
        return WebSpans(ReadSpans(agent.SpansPath()), kServer).size() >= 4 &&
               WebSpans(ReadSpans(agent.SpansPath()), kClient).size() >= 4;
      },
      seconds(30)))
      << agent.Logs();
  ExpectCleanStop(agent);

  std::vector<FlatSpan> web = WebSpans(ReadSpans(agent.SpansPath()), kServer);
  const auto clients = WebSpans(ReadSpans(agent.SpansPath()), kClient);
  web.insert(web.end(), clients.begin(), clients.end());
  ASSERT_EQ(web.size(), 8u);
  std::string ids;
  for (const auto& s : web) ids += (ids.empty() ? "" : ",") + s.span_id;

  // What @opentelemetry/exporter-zipkin sends for the same spans.
  const CommandResult ref = RunCommand(
      {"node", kReceivers + "/zipkin_reference.js", "--spans", agent.SpansPath(), "--ids", ids}, seconds(30));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  const json reference = json::parse(ref.out, nullptr, false);
  ASSERT_TRUE(reference.is_array()) << ref.out;
  ASSERT_EQ(reference.size(), web.size());

  std::map<std::string, json> ours;
  std::istringstream lines(ReadFileOrEmpty(receiver.out()));
  std::string line;
  while (std::getline(lines, line)) {
    for (const json& s : json::parse(line)) ours[s["id"].get<std::string>()] = s;
  }
  for (const json& js : reference) {
    const std::string id = js["id"];
    SCOPED_TRACE("span " + id + " " + js["name"].get<std::string>());
    ASSERT_TRUE(ours.count(id)) << "kspan never sent it";
    const json& k = ours[id];
    EXPECT_EQ(k["traceId"], js["traceId"]);
    EXPECT_EQ(k["id"], js["id"]);
    EXPECT_EQ(k.value("parentId", ""), js.value("parentId", ""));
    EXPECT_EQ(k["name"], js["name"]);
    EXPECT_EQ(k.value("kind", ""), js.value("kind", ""));
    // The JS exporter writes the start in fractional µs; Zipkin's schema and kspan use
    // whole µs.
    EXPECT_NEAR(k["timestamp"].get<double>(), js["timestamp"].get<double>(), 1.0);
    EXPECT_EQ(k["duration"], js["duration"]);
    EXPECT_EQ(k["localEndpoint"]["serviceName"], js["localEndpoint"]["serviceName"]);
    EXPECT_EQ(k["tags"], js["tags"]);
    EXPECT_EQ(k.value("annotations", json()), js.value("annotations", json()));
  }
  const auto c = agent.StoppedCounters();
  EXPECT_EQ(Sent(c, "zipkin"), receiver.Stats()["spans"].get<uint64_t>());
  EXPECT_EQ(AllDropped(c, "zipkin"), 0u);
  receiver.Stop();
}

// ---- e: the backend is down for 30 s --------------------------------------------------

uint64_t RssKiB(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

TEST_F(ExportTest, BackendDownThirtySecondsThenBackLosesOnlyWhatDidNotFitTheQueue) {
  const int port = FreePort();  // nothing listens there for the first 30 s
  KspanAgent agent;
  // A small queue, so 30 s of traffic overflows it; the default 60 s retry budget keeps
  // the batch in hand alive through the outage.
  ASSERT_TRUE(agent.Start({"--output", "otlp", "--otlp-protocol", "http/protobuf", "--otlp-endpoint",
                           "http://127.0.0.1:" + std::to_string(port), "--otlp-timeout-ms", "2000"},
                          {{"OTEL_BSP_MAX_QUEUE_SIZE", "300"},
                           {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100"},
                           {"OTEL_BSP_SCHEDULE_DELAY", "200"}}))
      << agent.Logs();
  const uint64_t rss_ready = RssKiB(agent.pid());
  uint64_t rss_max = rss_ready;

  // 30 s of traffic: a curl run of 40 requests (80 spans) every 3 s, 800 spans in all.
  const auto down_until = Clock::now() + seconds(30);
  int runs = 0;
  while (Clock::now() < down_until && runs < 10) {
    ASSERT_NO_FATAL_FAILURE(Traffic(40));
    ++runs;
    rss_max = std::max(rss_max, RssKiB(agent.pid()));
    // Pacing, not a wait for an event: a run every 3 s through the outage.
    std::this_thread::sleep_until(std::min(down_until, Clock::now() + seconds(3)));
  }
  // The outage lasts its 30 s whatever happens meanwhile: the scenario under test.
  std::this_thread::sleep_until(down_until);
  rss_max = std::max(rss_max, RssKiB(agent.pid()));

  // The backend comes back on the same port.
  Receiver receiver;
  ASSERT_TRUE(receiver.Start("http", port)) << receiver.Stderr();
  // The batch in hand retries within 5 s (the backoff cap), then the queue drains.
  uint64_t last = 0;
  WaitFor(
      [&] {
        const uint64_t now = receiver.Stats()["spans"].get<uint64_t>();
        const bool settled = now >= 300 && now == last;
        last = now;
        return settled;
      },
      seconds(15));
  ExpectCleanStop(agent);
  receiver.Stop();

  const auto c = agent.StoppedCounters();
  const auto received = ReadSpans(receiver.out());
  const auto file = ReadSpans(agent.SpansPath());
  const uint64_t handed = HandedTo(c, "otlp");
  EXPECT_EQ(handed, file.size()) << "the file output got every span, the OTLP exporter was offered each";
  EXPECT_EQ(Sent(c, "otlp"), received.size()) << "every span counted as sent arrived";
  EXPECT_EQ(Sent(c, "otlp") + AllDropped(c, "otlp"), handed) << "every other span is counted as dropped";
  EXPECT_GT(Dropped(c, "otlp", "queue_full"), 0u) << "30 s of traffic must overflow a 300-span queue";
  EXPECT_EQ(Dropped(c, "otlp", "retries_exhausted"), 0u) << "the batch in hand outlived the outage";
  EXPECT_EQ(Dropped(c, "otlp", "non_retryable"), 0u);
  EXPECT_GE(received.size(), 300u) << "at least the queue's worth arrived after recovery";
  EXPECT_GT(Retries(c, "otlp"), 3u);
  // Received spans are the file's spans, unchanged.
  const auto want = ById(file);
  for (const auto& s : received) {
    auto it = want.find(s.span_id);
    ASSERT_NE(it, want.end()) << s.span_id;
    ExpectSameSpan(it->second, s);
  }
  // Memory: the queue's bound, not the outage's length, decides what is held.
  EXPECT_LT(rss_max - rss_ready, 64u * 1024u)
      << "RSS grew from " << rss_ready << " KiB to " << rss_max << " KiB";
  const std::string logs = agent.Logs();
  size_t downs = 0;
  for (size_t at = 0; (at = logs.find("export backend unavailable", at)) != std::string::npos; ++at) ++downs;
  EXPECT_EQ(downs, 1u) << "the outage is logged once, not per failure";
  EXPECT_NE(logs.find("export backend is back"), std::string::npos);
}

// ---- e2: a backend that stalls: the copies a retry leaves are counted ------------------

// The first request is recorded by the backend, but answered only after 3 s, when the
// agent (1 s timeout) has given up on it and sent it again: the backend holds that batch
// twice. Every copy is counted (spans received = sent + possibly duplicated), the retry
// is counted as a timeout, and one warning says so.
class StalledBackendTest : public ExportTest {
 protected:
  void CopiesAreCounted(const std::string& protocol);
};

void StalledBackendTest::CopiesAreCounted(const std::string& protocol) {
  const int port = FreePort();
  Receiver receiver;
  ASSERT_TRUE(receiver.Start(protocol == "grpc" ? "grpc" : "http", port, "stall-first")) << receiver.Stderr();
  KspanAgent agent;
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(port);
  // Only the web server is traced: other work on the host (and the receiver's own
  // traffic) would add spans that could overflow the queue and blur the count.
  ASSERT_TRUE(agent.Start({"--output", "otlp", "--otlp-protocol", protocol, "--otlp-endpoint", endpoint,
                           "--otlp-timeout-ms", "1000", "--pid", std::to_string(web_.pid())},
                          {{"OTEL_BSP_SCHEDULE_DELAY", "200"}}))
      << agent.Logs();
  ASSERT_NO_FATAL_FAILURE(Traffic(10));
  // The stalled batch is resent after about 1.5-2 s; wait until it has arrived twice.
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto got = ReadSpans(receiver.out());
        std::set<std::string> ids;
        for (const auto& s : got) ids.insert(s.span_id);
        return receiver.Stats().value("stalled", 0) == 1 && got.size() > ids.size();
      },
      seconds(15)))
      << agent.Logs();
  ExpectCleanStop(agent);
  receiver.Stop();

  const auto c = agent.StoppedCounters();
  const auto received = ReadSpans(receiver.out());
  std::set<std::string> unique;
  for (const auto& s : received) unique.insert(s.span_id);
  const uint64_t duplicated = Counter(c, "kspan_exporter_spans_possibly_duplicated_total{exporter=\"otlp\"}");
  EXPECT_GT(duplicated, 0u);
  EXPECT_EQ(received.size(), Sent(c, "otlp") + duplicated) << "every copy the backend holds is counted";
  EXPECT_EQ(unique.size(), Sent(c, "otlp"));
  EXPECT_EQ(Counter(c, "kspan_exporter_spans_possibly_delivered_total{exporter=\"otlp\"}"), 0u);
  EXPECT_EQ(Counter(c, "kspan_exporter_retries_total{exporter=\"otlp\",reason=\"timeout\"}"), 1u);
  EXPECT_EQ(Sent(c, "otlp") + AllDropped(c, "otlp"), HandedTo(c, "otlp"));
  EXPECT_EQ(AllDropped(c, "otlp"), 0u);
  EXPECT_EQ(HandedTo(c, "otlp"), ReadSpans(agent.SpansPath()).size());
  EXPECT_EQ(WebSpans(ReadSpans(agent.SpansPath()), kServer).size(), 10u);
  const std::string logs = agent.Logs();
  EXPECT_NE(logs.find("export backend may hold spans twice"), std::string::npos) << logs;
}

TEST_F(StalledBackendTest, OtlpHttp) {
  CopiesAreCounted("http/protobuf");
}

TEST_F(StalledBackendTest, OtlpGrpc) {
  CopiesAreCounted("grpc");
}

// ---- f: a flaky backend and a refusing one --------------------------------------------

TEST_F(ExportTest, BackendAnswering503ToHalfTheRequestsLosesNothing) {
  const int port = FreePort();
  Receiver receiver;
  ASSERT_TRUE(receiver.Start("http", port, "alternate-503")) << receiver.Stderr();
  KspanAgent agent;
  // Only the web server: every other span on the host (a load test next door) would wait
  // behind the 503s and overflow the queue.
  ASSERT_TRUE(agent.Start({"--output", "otlp", "--otlp-protocol", "http/protobuf", "--otlp-endpoint",
                           "http://127.0.0.1:" + std::to_string(port), "--pid", std::to_string(web_.pid())},
                          {{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20"}, {"OTEL_BSP_SCHEDULE_DELAY", "100"}}))
      << agent.Logs();
  for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(Traffic(20));
  ASSERT_TRUE(WaitFor([&] { return WebSpans(ReadSpans(receiver.out()), kServer).size() >= 60; }, seconds(40)))
      << agent.Logs();
  ExpectCleanStop(agent);
  receiver.Stop();

  const auto c = agent.StoppedCounters();
  const auto file = ReadSpans(agent.SpansPath());
  const auto received = ReadSpans(receiver.out());
  ExpectSameSpanSets(file, received);
  EXPECT_EQ(Sent(c, "otlp"), received.size());
  EXPECT_EQ(AllDropped(c, "otlp"), 0u);
  const json stats = receiver.Stats();
  EXPECT_GT(stats["refused"].get<int>(), 0);
  EXPECT_EQ(Retries(c, "otlp"), stats["refused"].get<uint64_t>()) << "each 503 cost exactly one retry";
}

TEST_F(ExportTest, BackendAnswering400IsNotRetriedAndTheDropIsCounted) {
  const int port = FreePort();
  Receiver receiver;
  ASSERT_TRUE(receiver.Start("http", port, "always-400")) << receiver.Stderr();
  KspanAgent agent;
  ASSERT_TRUE(agent.Start({"--output", "otlp", "--otlp-protocol", "http/protobuf", "--otlp-endpoint",
                           "http://127.0.0.1:" + std::to_string(port)},
                          {{"OTEL_BSP_SCHEDULE_DELAY", "100"}}))
      << agent.Logs();
  ASSERT_NO_FATAL_FAILURE(Traffic(6));
  ASSERT_TRUE(WaitFor([&] { return receiver.Stats()["requests"].get<int>() > 0; }, seconds(20)))
      << agent.Logs();
  ExpectCleanStop(agent);
  receiver.Stop();

  const auto c = agent.StoppedCounters();
  const uint64_t handed = HandedTo(c, "otlp");
  EXPECT_GE(handed, 12u);
  EXPECT_EQ(Sent(c, "otlp"), 0u);
  EXPECT_EQ(Dropped(c, "otlp", "non_retryable"), handed) << "every span refused, every one counted";
  EXPECT_EQ(Retries(c, "otlp"), 0u) << "a 400 is never retried";
  EXPECT_EQ(Counter(c, "kspan_exporter_requests_total{exporter=\"otlp\"}"),
            receiver.Stats()["requests"].get<uint64_t>());
  EXPECT_EQ(receiver.Stats()["accepted"], 0);
  EXPECT_NE(agent.Logs().find("export backend refused a request"), std::string::npos);
}

}  // namespace
}  // namespace kspan::testing
