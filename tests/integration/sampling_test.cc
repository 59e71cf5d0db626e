// Sampling end to end (docs/sampling.md, issue 20's acceptance 1, 2, 3 and 4): a real
// two-tier python service on loopback, a real client, kspan with a sampler, and the spans
// it exported. Every count is of this test's own paths and ports (other traffic on the
// host is traced too); the statistics use the binomial 99.9 % interval.
//
//   paced_client.py ──► front (sampling_tier.py) ──► back (sampling_tier.py, the leaf)
//   CLIENT              SERVER  CLIENT               SERVER        = 4 spans a trace
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kServer = 2, kClient = 3;
const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";

struct Interval {
  double lo, hi;
};
Interval Binomial999(double n, double p) {
  const double sd = std::sqrt(n * p * (1 - p));
  return {n * p - 3.2905 * sd, n * p + 3.2905 * sd};
}

// The low 56 bits of a trace id (hex), the randomness the OpenTelemetry consistent
// samplers compare with their threshold.
uint64_t Randomness(const std::string& trace_id) {
  return std::stoull(trace_id.substr(18), nullptr, 16);
}
// 2^56 - round(ratio * 2^56).
uint64_t Threshold(double ratio) {
  return (uint64_t{1} << 56) - static_cast<uint64_t>(std::llround(ratio * 72057594037927936.0));
}

std::string PathOf(const FlatSpan& s) {
  std::string p = s.Str("url.path");
  if (p.empty()) {
    const std::string full = s.Str("url.full");
    const size_t scheme = full.find("://");
    const size_t slash = scheme == std::string::npos ? std::string::npos : full.find('/', scheme + 3);
    if (slash != std::string::npos) p = full.substr(slash);
  }
  return p.substr(0, p.find('?'));
}

// The spans of one request, by path.
struct Request {
  std::vector<const FlatSpan*> spans;
};

class Sampling : public ::testing::Test {
 protected:
  void TearDown() override { apps_.clear(); }

  void StartApp(const std::string& service, const std::vector<std::string>& argv) {
    apps_.push_back(std::make_unique<Subprocess>());
    Subprocess& p = *apps_.back();
    ASSERT_TRUE(p.Start(argv, {{"OTEL_SERVICE_NAME", service}})) << argv[1];
    ASSERT_TRUE(WaitFor([&] { return p.Stdout().find("ready") != std::string::npos || !p.Running(); },
                        std::chrono::seconds(10)) &&
                p.Running())
        << service << " did not start:\n"
        << p.Stderr();
  }
  void StartTwoTiers() {
    front_ = FreePort();
    back_ = FreePort();
    ASSERT_NO_FATAL_FAILURE(
        StartApp("sampling-back", {"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(back_)}));
    ASSERT_NO_FATAL_FAILURE(
        StartApp("sampling-front", {"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(front_),
                                    "http://127.0.0.1:" + std::to_string(back_)}));
  }

  // paced_client.py against `port`: "sent N ok M seconds S".
  static std::vector<std::string> Client(int port, const std::string& prefix, int count, double rate) {
    return {"/usr/bin/python3",    kApps + "paced_client.py", std::to_string(port), prefix,
            std::to_string(count), std::to_string(rate)};
  }
  struct ClientResult {
    int sent = -1, ok = -1;
    double seconds = 0;
  };
  static ClientResult RunClients(const std::vector<std::vector<std::string>>& cmds,
                                 std::vector<ClientResult>* each = nullptr) {
    std::vector<std::unique_ptr<Subprocess>> procs;
    for (const auto& c : cmds) {
      procs.push_back(std::make_unique<Subprocess>());
      EXPECT_TRUE(procs.back()->Start(c, {{"OTEL_SERVICE_NAME", "sampling-client"}}));
    }
    ClientResult total{0, 0, 0};
    for (auto& p : procs) {
      p->Wait(std::chrono::seconds(150));
      ClientResult r;
      std::istringstream in(p->Stdout());
      std::string w1, w2, w3;
      in >> w1 >> r.sent >> w2 >> r.ok >> w3 >> r.seconds;
      EXPECT_EQ(w1, "sent") << p->Stdout() << p->Stderr();
      total.sent += r.sent;
      total.ok += r.ok;
      total.seconds = std::max(total.seconds, r.seconds);
      if (each) each->push_back(r);
    }
    return total;
  }

  // Stops the agent once the window has passed and returns the requests seen under
  // `prefix`, by path: the spans of the two tiers' ports only.
  std::map<std::string, Request> StopAndCollect(const std::string& prefix) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the 500 ms window, and slack
    ExpectCleanStop(agent_);
    spans_ = ReadSpans(agent_.SpansPath());
    std::map<std::string, Request> out;
    for (const FlatSpan& s : spans_) {
      const int64_t port = s.Int("server.port");
      if (port != front_ && port != back_) continue;
      const std::string path = PathOf(s);
      if (path.rfind(prefix, 0) != 0) continue;
      out[path].spans.push_back(&s);
    }
    return out;
  }

  // Sampling's own guarantees over the spans of `requests`: no span whose parent is
  // missing (a parent sampled out while its child was kept), and the spans of one trace
  // carry one decision (flags, tracestate). Returns the problems.
  std::vector<std::string> Torn(const std::map<std::string, Request>& requests) const {
    std::set<std::string> ids;
    for (const FlatSpan& s : spans_) ids.insert(s.trace_id + "/" + s.span_id);
    std::map<std::string, std::pair<uint32_t, std::string>> decision;
    std::vector<std::string> out;
    for (const auto& [path, r] : requests) {
      for (const FlatSpan* s : r.spans) {
        if (!s->parent_span_id.empty() && !ids.count(s->trace_id + "/" + s->parent_span_id)) {
          out.push_back(path + ": orphan span (kind " + std::to_string(s->kind) + ") of trace " +
                        s->trace_id);
        }
        auto [it, fresh] = decision.emplace(s->trace_id, std::make_pair(s->flags, s->trace_state));
        if (!fresh && it->second != std::make_pair(s->flags, s->trace_state)) {
          out.push_back(path + ": trace " + s->trace_id + " carries two decisions");
        }
      }
    }
    return out;
  }
  // The span of `kind` at `port` of a request, or nullptr.
  static const FlatSpan* Hop(const Request& r, int kind, int port) {
    for (const FlatSpan* s : r.spans) {
      if (s->kind == kind && s->Int("server.port") == port) return s;
    }
    return nullptr;
  }
  // First start to last end of the spans of `trace_id`, in ms.
  double TraceMs(const std::string& trace_id) const {
    uint64_t first = UINT64_MAX, last = 0;
    for (const FlatSpan& s : spans_) {
      if (s.trace_id != trace_id) continue;
      first = std::min(first, s.start_ns);
      last = std::max(last, s.end_ns);
    }
    return last > first ? static_cast<double>(last - first) / 1e6 : 0;
  }
  // The agent's drop counters, for messages: a stitching problem under load often follows
  // lost events.
  std::string Drops() const {
    std::string out;
    for (const auto& [series, v] : agent_.StoppedCounters()) {
      if (v > 0 &&
          (series.find("drop") != std::string::npos || series.find("lost") != std::string::npos ||
           series.find("gap") != std::string::npos || series.find("ambiguous") != std::string::npos)) {
        out += " " + series + "=" + std::to_string(v);
      }
    }
    return out.empty() ? " none" : out;
  }

  // Whole: the four spans of the chain, one trace, each the child of the one before.
  std::string Whole(const std::string& path, const Request& r) const {
    auto find = [&](int kind, int port) -> const FlatSpan* {
      const FlatSpan* found = nullptr;
      for (const FlatSpan* s : r.spans) {
        if (s->kind == kind && s->Int("server.port") == port) {
          if (found) return nullptr;
          found = s;
        }
      }
      return found;
    };
    const FlatSpan* hops[] = {find(kClient, front_), find(kServer, front_), find(kClient, back_),
                              find(kServer, back_)};
    for (const FlatSpan* h : hops) {
      if (!h) {
        std::string msg = path + ": " + std::to_string(r.spans.size()) + " spans, not the 4 of the chain:";
        for (const FlatSpan* s : r.spans) {
          msg += " [kind=" + std::to_string(s->kind) + " port=" + std::to_string(s->Int("server.port")) +
                 " trace=" + s->trace_id +
                 " parent=" + (s->parent_span_id.empty() ? "-" : s->parent_span_id) +
                 " links=" + std::to_string(s->links.size()) +
                 (s->Bool("kspan.parent.ambiguous") ? " ambiguous" : "") + "]";
        }
        return msg;
      }
    }
    if (r.spans.size() != 4) return path + ": " + std::to_string(r.spans.size()) + " spans";
    for (int i = 1; i < 4; ++i) {
      if (hops[i]->trace_id != hops[0]->trace_id || hops[i]->parent_span_id != hops[i - 1]->span_id) {
        return path + ": hop " + std::to_string(i) + " is not the child of hop " + std::to_string(i - 1);
      }
    }
    if (!hops[0]->parent_span_id.empty()) return path + ": the client span has a parent";
    for (const FlatSpan* h : hops) {
      if ((h->flags & 1) != 1) return path + ": a span without the sampled flag";
    }
    return "";
  }

  KspanAgent agent_;
  std::vector<std::unique_ptr<Subprocess>> apps_;
  std::vector<FlatSpan> spans_;
  int front_ = 0, back_ = 0;
};

// Acceptance 1: traceidratio 0.25, 2,000 requests through two tiers.
TEST_F(Sampling, TraceIdRatioKeepsAQuarterOfWholeTraces) {
  ASSERT_TRUE(
      agent_.Start({}, {{"OTEL_TRACES_SAMPLER", "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "0.25"}}))
      << agent_.Logs();
  EXPECT_NE(agent_.Logs().find("\"sampler\":\"traceidratio(0.25)\""), std::string::npos) << agent_.Logs();
  ASSERT_NO_FATAL_FAILURE(StartTwoTiers());
  constexpr int kRequests = 2000;
  const ClientResult c = RunClients({Client(front_, "/h", kRequests, 100000)});
  ASSERT_EQ(c.ok, kRequests);
  const auto requests = StopAndCollect("/h/");

  // Each request's first span (the client's) starts its trace: exported with probability
  // 0.25 by its trace id, whatever the stitcher made of the rest of the request.
  std::vector<std::string> problems = Torn(requests);
  int kept = 0, whole = 0;
  for (const auto& [path, r] : requests) {
    if (Hop(r, kClient, front_)) ++kept;
    if (Whole(path, r).empty()) ++whole;
    for (const FlatSpan* s : r.spans) {
      if (Randomness(s->trace_id) < Threshold(0.25)) problems.push_back(path + ": kept below the threshold");
      if (s->trace_state != "ot=th:c") problems.push_back(path + ": tracestate '" + s->trace_state + "'");
      if ((s->flags & 1) != 1) problems.push_back(path + ": exported without the sampled flag");
    }
  }
  std::string all;
  for (size_t i = 0; i < problems.size() && i < 20; ++i) all += "\n  " + problems[i];
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems:" << all;
  const Interval in = Binomial999(kRequests, 0.25);
  EXPECT_GE(kept, in.lo);
  EXPECT_LE(kept, in.hi);
  std::cout << "traceidratio 0.25: " << kept << " of " << kRequests << " traces exported (99.9 % " << in.lo
            << ".." << in.hi << "); " << whole << " of " << requests.size()
            << " requests seen exported as the whole 4-span chain; drops:" << Drops() << "\n";
  EXPECT_GE(agent_.StoppedCounter(
                "kspan_sampling_traces_total{decision=\"dropped\",rule=\"ratio\",sampler=\"head\"}"),
            static_cast<int64_t>(kRequests - kept));
}

// Acceptance 3: errors + latency > 50 ms + 5 % of the rest.
TEST_F(Sampling, TailKeepsEveryErrorAndSlowTraceAndAFewOfTheRest) {
  ASSERT_TRUE(agent_.Start(
      {"--tail-policy", "error", "--tail-policy", "latency>50ms", "--tail-policy", "probabilistic:0.05"}))
      << agent_.Logs();
  ASSERT_NO_FATAL_FAILURE(StartTwoTiers());
  constexpr int kRest = 1000, kErrors = 40, kSlow = 40;
  std::vector<ClientResult> each;
  RunClients({Client(front_, "/t/ok", kRest, 100000), Client(front_, "/t/err", kErrors, 100),
              Client(front_, "/t/slow", kSlow, 100)},
             &each);
  ASSERT_EQ(each.size(), 3u);
  ASSERT_EQ(each[0].ok, kRest);
  ASSERT_EQ(each[1].sent, kErrors);
  ASSERT_EQ(each[1].ok, 0) << "every /t/err request fails";
  ASSERT_EQ(each[2].ok, kSlow);
  const auto requests = StopAndCollect("/t/");

  std::vector<std::string> problems = Torn(requests);
  int rest = 0, rest_by_ratio = 0, errors = 0, slow = 0;
  for (const auto& [path, r] : requests) {
    if (path.rfind("/t/ok/", 0) == 0) {
      const FlatSpan* client = Hop(r, kClient, front_);
      if (!client) continue;
      ++rest;
      if (Randomness(client->trace_id) >= Threshold(0.05)) {
        ++rest_by_ratio;
      } else if (TraceMs(client->trace_id) <= 50) {
        problems.push_back(path + ": kept, neither in the 5 % nor over 50 ms (" +
                           std::to_string(TraceMs(client->trace_id)) + " ms)");
      }
      continue;
    }
    // Every span of a failing or slow request is ERROR or over 50 ms itself: all four are
    // exported, even if the stitcher had split the request.
    for (int kind : {kClient, kServer}) {
      for (int port : {front_, back_}) {
        if (!Hop(r, kind, port)) problems.push_back(path + ": a span is missing");
      }
    }
    if (path.rfind("/t/err/", 0) == 0) {
      ++errors;
      for (const FlatSpan* s : r.spans) {
        if (s->status_code != 2) problems.push_back(path + ": a span that is not ERROR");
      }
    } else if (path.rfind("/t/slow/", 0) == 0) {
      ++slow;
    }
  }
  std::string all;
  for (size_t i = 0; i < problems.size() && i < 20; ++i) all += "\n  " + problems[i];
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems:" << all;
  EXPECT_EQ(errors, kErrors) << "every trace with an ERROR span";
  EXPECT_EQ(slow, kSlow) << "every trace over 50 ms";
  // The 5 % keeps exactly the requests whose trace id passes its threshold (exported
  // whatever their latency): binomial.
  const Interval in = Binomial999(kRest, 0.05);
  EXPECT_GE(rest_by_ratio, in.lo);
  EXPECT_LE(rest_by_ratio, in.hi);
  std::cout << "tail: " << errors << "/" << kErrors << " error, " << slow << "/" << kSlow << " slow, "
            << rest_by_ratio << "/" << kRest << " of the rest by the 5 % (99.9 % " << in.lo << ".." << in.hi
            << "), " << rest - rest_by_ratio << " more of the rest over 50 ms; drops:" << Drops() << "\n";
  EXPECT_GE(
      agent_.StoppedCounter("kspan_sampling_traces_total{decision=\"kept\",rule=\"error\",sampler=\"tail\"}"),
      kErrors);
  EXPECT_GE(agent_.StoppedCounter(
                "kspan_sampling_traces_total{decision=\"kept\",rule=\"latency>50ms\",sampler=\"tail\"}"),
            kSlow);
}

// Acceptance 4: a rate limit of 10 traces/s under 500 requests/s for 20 s. The agent
// traces the leaf alone (--pid), so the overall limit sees this test's traces only.
TEST_F(Sampling, RateLimitTenTracesASecond) {
  back_ = FreePort();
  ASSERT_NO_FATAL_FAILURE(
      StartApp("sampling-leaf", {"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(back_)}));
  constexpr int kBurst = 10;
  ASSERT_TRUE(agent_.Start({"--pid", std::to_string(apps_.back()->pid()), "--sampler", "always_on",
                            "--rate-limit", "10", "--rate-limit-burst", std::to_string(kBurst)}))
      << agent_.Logs();
  const ClientResult c = RunClients({Client(back_, "/rl", 10000, 500)});
  ASSERT_GE(c.ok, 5000) << "the leaf answered fewer than 250 requests a second";
  const auto requests = StopAndCollect("/rl/");
  const int kept = static_cast<int>(requests.size());
  std::cout << "rate limit 10/s: " << kept << " traces of " << c.sent << " in " << c.seconds << " s\n";
  // The bucket starts full and then refills 10 a second while decisions are made (they
  // follow the requests by the 500 ms window: the same length of time).
  EXPECT_LE(kept, kBurst + static_cast<int>(10 * c.seconds) + 2);
  EXPECT_GE(kept, static_cast<int>(10 * c.seconds) - kBurst);
  // The figure, when the client kept 500 a second for the 20 s.
  ASSERT_LE(c.seconds, 20.5) << "the client could not keep 500 requests a second";
  EXPECT_GE(kept, 200 - kBurst);
  EXPECT_LE(kept, 200 + kBurst + 2);
  const int64_t limited = agent_.StoppedCounter(
      "kspan_sampling_traces_total{decision=\"dropped\",rule=\"overall\",sampler=\"rate_limit\"}");
  EXPECT_EQ(limited + kept, c.sent) << "every trace of the leaf kept or counted as rate-limited";
}

// An incoming traceparent's sampled flag decides under a parent-based sampler; without
// one, the root sampler (here: always_off) does. The decision is in the exported flags.
TEST_F(Sampling, ParentBasedSamplersFollowTheIncomingTraceparent) {
  back_ = FreePort();
  ASSERT_NO_FATAL_FAILURE(
      StartApp("sampling-leaf", {"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(back_)}));
  ASSERT_TRUE(agent_.Start({"--sampler", "parentbased_always_off"})) << agent_.Logs();
  const std::string url = "http://127.0.0.1:" + std::to_string(back_);
  const std::string sampled = "4bf92f3577b34da6a3ce929d0e0e4736",
                    unsampled = "5bf92f3577b34da6a3ce929d0e0e4737";
  for (const auto& [path, header] : std::vector<std::pair<std::string, std::string>>{
           {"/pb/sampled", "00-" + sampled + "-00f067aa0ba902b7-01"},
           {"/pb/unsampled", "00-" + unsampled + "-00f067aa0ba902b7-00"},
           {"/pb/none", ""}}) {
    std::vector<std::string> args = {"curl", "-sS", "--max-time", "10", "-o", "/dev/null"};
    if (!header.empty()) args.insert(args.end(), {"-H", "traceparent: " + header});
    args.push_back(url + path);
    EXPECT_EQ(RunCommand(args, std::chrono::seconds(15)).exit_code, 0) << path;
  }
  const auto requests = StopAndCollect("/pb/");
  ASSERT_EQ(requests.count("/pb/sampled"), 1u) << "a sampled parent is honoured";
  for (const FlatSpan* s : requests.at("/pb/sampled").spans) {
    EXPECT_EQ(s->trace_id, sampled);
    EXPECT_EQ(s->flags & 1, 1u);
  }
  EXPECT_EQ(requests.count("/pb/unsampled"), 0u) << "an unsampled parent is honoured";
  EXPECT_EQ(requests.count("/pb/none"), 0u) << "a root under parentbased_always_off";
  EXPECT_GE(agent_.StoppedCounter(
                "kspan_sampling_traces_total{decision=\"kept\",rule=\"parent_sampled\",sampler=\"head\"}"),
            1);
}

// Health checks dropped by a rule, the rest kept.
TEST_F(Sampling, AHealthCheckRouteIsFiltered) {
  back_ = FreePort();
  ASSERT_NO_FATAL_FAILURE(
      StartApp("sampling-leaf", {"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(back_)}));
  ASSERT_TRUE(agent_.Start({"--drop", "route=/healthz"})) << agent_.Logs();
  const std::string url = "http://127.0.0.1:" + std::to_string(back_);
  std::vector<std::string> args = {"curl", "-sS", "--max-time", "10"};
  for (int i = 0; i < 10; ++i)
    args.insert(args.end(),
                {"-o", "/dev/null", url + "/healthz", "-o", "/dev/null", url + "/hc/" + std::to_string(i)});
  EXPECT_EQ(RunCommand(args, std::chrono::seconds(30)).exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ExpectCleanStop(agent_);
  spans_ = ReadSpans(agent_.SpansPath());
  int healthz = 0, other = 0;
  for (const FlatSpan& s : spans_) {
    if (s.Int("server.port") != back_) continue;
    const std::string path = PathOf(s);
    healthz += path == "/healthz";
    other += path.rfind("/hc/", 0) == 0;
  }
  EXPECT_EQ(healthz, 0);
  EXPECT_EQ(other, 20) << "the client's and the server's span of each other request";
  // Each /healthz request is curl's span and the server's under it: the first by the rule,
  // the second as its descendant.
  EXPECT_EQ(agent_.StoppedCounter("kspan_filter_spans_dropped_total{rule=\"route=/healthz\"}"), 10);
  EXPECT_EQ(agent_.StoppedCounter("kspan_filter_spans_dropped_total{rule=\"descendant\"}"), 10);
}

// kspan exports to a real OTLP receiver; the receiver is traced like any server. The spans
// of its export requests must never come back as spans (which the next export would carry,
// a loop that never goes idle). With --trace-telemetry the loop shows: the same check
// catches it.
class ExportLoop : public Sampling {
 protected:
  struct Seen {
    int receiver_spans = 0;       // spans of the receiver's port, in all
    int receiver_spans_idle = 0;  // ... that started after our traffic ended
    int ours = 0;                 // spans of this test's own requests
    int64_t filtered = 0;         // kspan_filter_spans_dropped_total{rule="telemetry"}
  };
  Seen Run(bool trace_telemetry) {
    Seen seen;
    const std::string receivers = std::string(KSPAN_SOURCE_DIR) + "/tests/receivers";
    EXPECT_TRUE(std::filesystem::exists(receivers + "/node_modules/@opentelemetry/otlp-transformer"))
        << "tests/receivers/node_modules is missing: run scripts/install-deps.sh";
    const int port = FreePort();
    const std::string dir = MakeTempDir("kspan-loop-");
    Subprocess receiver;
    EXPECT_TRUE(receiver.Start({"node", receivers + "/otlp_receiver.js", "--protocol", "http", "--port",
                                std::to_string(port), "--out", dir + "/received.jsonl"}));
    EXPECT_TRUE(WaitFor([&] { return receiver.Stdout().find("listening") != std::string::npos; },
                        std::chrono::seconds(20)))
        << receiver.Stderr();
    back_ = FreePort();
    StartApp("sampling-leaf", {"/usr/bin/python3", kApps + "sampling_tier.py", std::to_string(back_)});
    std::vector<std::string> args = {"--output", "otlp", "--otlp-endpoint",
                                     "http://127.0.0.1:" + std::to_string(port)};
    if (trace_telemetry) args.push_back("--trace-telemetry");
    EXPECT_TRUE(agent_.Start(args, {{"OTEL_BSP_SCHEDULE_DELAY", "200"}})) << agent_.Logs();
    RunClients({Client(back_, "/loop", 5, 100)});
    const uint64_t traffic_end_ns =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    std::this_thread::sleep_for(std::chrono::seconds(5));  // idle: only exports (and their echoes) now
    ExpectCleanStop(agent_);
    for (const FlatSpan& s : ReadSpans(agent_.SpansPath())) {
      if (s.Int("server.port") == port) {
        ++seen.receiver_spans;
        if (s.start_ns > traffic_end_ns + 1'500'000'000) ++seen.receiver_spans_idle;
      }
      if (s.Int("server.port") == back_ && PathOf(s).rfind("/loop/", 0) == 0) ++seen.ours;
    }
    seen.filtered = agent_.StoppedCounter("kspan_filter_spans_dropped_total{rule=\"telemetry\"}");
    receiver.Stop(SIGTERM, std::chrono::seconds(10));
    return seen;
  }
};

TEST_F(ExportLoop, KspansOwnExportsNeverComeBackAsSpans) {
  const Seen s = Run(false);
  EXPECT_EQ(s.ours, 10) << "the client's and the server's span of each of the test's requests";
  EXPECT_EQ(s.receiver_spans, 0) << "an export request came back as a span";
  EXPECT_GE(s.filtered, 1) << "the receiver's spans were seen and dropped (else this test proves nothing)";
}

TEST_F(ExportLoop, WithTelemetryTracedTheLoopShows) {
  const Seen s = Run(true);
  EXPECT_GE(s.receiver_spans, 1);
  EXPECT_GE(s.receiver_spans_idle, 1) << "exports of export spans keep going while the host is idle";
  std::cout << "--trace-telemetry: " << s.receiver_spans << " receiver spans, " << s.receiver_spans_idle
            << " while idle\n";
}

// Acceptance 2: two agents, each the agent of one network namespace (as on two hosts),
// with the same traceidratio. A client in namespace A sends each request with a
// traceparent of its own to a server in namespace B: the agent of A (watching the client,
// --pid) and the agent of B (watching the server) keep the same requests, every one.
// eBPF is host-wide, so --pid is what makes each agent see only its own namespace's side.
struct Namespaces {
  std::vector<std::string> created;
  std::vector<std::unique_ptr<Subprocess>> procs;
  ~Namespaces() {
    procs.clear();  // a namespace with a process left in it outlives `ip netns del`
    for (const auto& ns : created) RunCommand({"ip", "netns", "del", ns}, std::chrono::seconds(10));
  }
};

TEST(SamplingAcrossAgents, TwoAgentsKeepTheSameTracesAtTheSameRatio) {
  const auto kIp = std::chrono::seconds(10);
  const std::string pid = std::to_string(getpid()), short_pid = std::to_string(getpid() % 100000);
  Namespaces net;
  const std::string ns_a = "kss-a-" + pid, ns_b = "kss-b-" + pid;
  const std::string veth_a = "kssa" + short_pid, veth_b = "kssb" + short_pid;  // <= 15 chars
  const std::string addr_b = "10.214.0.2";
  auto ip = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = RunCommand(argv, kIp);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << args[1] << ": " << r.err;
    return r.exit_code == 0;
  };
  for (const auto& ns : {ns_a, ns_b}) {
    ASSERT_TRUE(ip({"netns", "add", ns}));
    net.created.push_back(ns);
  }
  ASSERT_TRUE(
      ip({"link", "add", veth_a, "netns", ns_a, "type", "veth", "peer", "name", veth_b, "netns", ns_b}));
  ASSERT_TRUE(ip({"-n", ns_a, "addr", "add", "10.214.0.1/24", "dev", veth_a}));
  ASSERT_TRUE(ip({"-n", ns_b, "addr", "add", addr_b + "/24", "dev", veth_b}));
  for (const auto& [ns, dev] : {std::pair{ns_a, veth_a}, std::pair{ns_b, veth_b}}) {
    ASSERT_TRUE(ip({"-n", ns, "link", "set", "lo", "up"}));
    ASSERT_TRUE(ip({"-n", ns, "link", "set", dev, "up"}));
  }

  const std::string dir = MakeTempDir("kspan-two-agents-");
  std::ofstream(dir + "/index.txt") << "hello\n";
  const std::string port = std::to_string(FreePort());
  net.procs.push_back(std::make_unique<Subprocess>());
  Subprocess& server = *net.procs.back();
  ASSERT_TRUE(server.Start({"ip", "netns", "exec", ns_b, "/usr/bin/python3", "-m", "http.server", port,
                            "--bind", addr_b, "--directory", dir},
                           {{"OTEL_SERVICE_NAME", "two-agents-server"}}));
  ASSERT_TRUE(WaitFor(
                  [&] {
                    const auto r = RunCommand(
                        {"ip", "netns", "exec", ns_b, "ss", "-Hltn", "sport", "=", ":" + port}, kIp);
                    return !server.Running() || r.out.find(addr_b + ":" + port) != std::string::npos;
                  },
                  std::chrono::seconds(10)) &&
              server.Running())
      << server.Stderr();
  constexpr int kRequests = 200;
  // Fixed ids: each one is checked against the ratio's threshold exactly; with random ids
  // the binomial interval below would fail one run in a thousand by design.
  constexpr int kSeed = 20261205;
  net.procs.push_back(std::make_unique<Subprocess>());
  Subprocess& client = *net.procs.back();
  ASSERT_TRUE(client.Start({"ip", "netns", "exec", ns_a, "/usr/bin/python3", kApps + "traceparent_client.py",
                            "http://" + addr_b + ":" + port + "/index.txt", std::to_string(kRequests),
                            dir + "/ids.txt", dir + "/go", std::to_string(kSeed)},
                           {{"OTEL_SERVICE_NAME", "two-agents-client"}}));

  // `ip netns exec` execs the program: the pids are the client's and the server's own.
  const std::map<std::string, std::string> env = {{"OTEL_TRACES_SAMPLER", "traceidratio"},
                                                  {"OTEL_TRACES_SAMPLER_ARG", "0.5"}};
  KspanAgent agent_a, agent_b;
  ASSERT_TRUE(agent_a.Start({"--pid", std::to_string(client.pid())}, env)) << agent_a.Logs();
  ASSERT_TRUE(agent_b.Start({"--pid", std::to_string(server.pid())}, env)) << agent_b.Logs();
  std::ofstream(dir + "/go") << "go\n";
  client.Wait(std::chrono::seconds(120));
  ASSERT_EQ(client.Stdout(), "sent " + std::to_string(kRequests) + " ok " + std::to_string(kRequests) + "\n")
      << client.Stderr();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ExpectCleanStop(agent_a);
  ExpectCleanStop(agent_b);

  std::set<std::string> sent;
  {
    std::ifstream in(dir + "/ids.txt");
    std::string id;
    while (in >> id) sent.insert(id);
  }
  ASSERT_EQ(sent.size(), static_cast<size_t>(kRequests));
  auto kept = [&](KspanAgent& agent, int kind) {
    std::set<std::string> out;
    for (const FlatSpan& s : ReadSpans(agent.SpansPath())) {
      if (s.kind == kind && s.Int("server.port") == std::stoi(port) && sent.count(s.trace_id))
        out.insert(s.trace_id);
    }
    return out;
  };
  const std::set<std::string> by_a = kept(agent_a, kClient), by_b = kept(agent_b, kServer);
  int both = 0, neither = 0;
  std::vector<std::string> problems;
  for (const std::string& id : sent) {
    const bool a = by_a.count(id) > 0, b = by_b.count(id) > 0;
    both += a && b;
    neither += !a && !b;
    if (a != b) problems.push_back(id + (a ? ": kept by A only" : ": kept by B only"));
    if ((a || b) != (Randomness(id) >= Threshold(0.5)))
      problems.push_back(id + ": against the ratio's threshold");
  }
  std::string all;
  for (size_t i = 0; i < problems.size() && i < 20; ++i) all += "\n  " + problems[i];
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems:" << all;
  EXPECT_EQ(both + neither, kRequests);
  const Interval in = Binomial999(kRequests, 0.5);
  EXPECT_GE(both, in.lo);
  EXPECT_LE(both, in.hi);
  // Every request was decided (and seen) by each agent: kept, or counted as dropped.
  for (KspanAgent* agent : {&agent_a, &agent_b}) {
    EXPECT_GE(agent->StoppedCounter(
                  "kspan_sampling_traces_total{decision=\"dropped\",rule=\"ratio\",sampler=\"head\"}"),
              neither);
  }
  std::cout << "two agents at 0.5: " << both << " of " << kRequests << " kept by both, " << neither
            << " by neither, " << problems.size() << " by one only\n";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kspan::testing
