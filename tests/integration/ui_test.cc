// The web UI end to end (docs/ui.md): real kspan, three real python3 tiers on loopback,
// Debian's chromium driven headless by tests/apps/ui/drive.mjs (playwright-core, no
// browser download). After a three-tier request chain `/` lists its trace; clicking it
// opens the waterfall with every span nested as the exported spans say (read from the
// DOM); searches by service, status=error and minimum duration return exactly the traces
// made for them; a screenshot is saved; and after a restart on the same store the
// traces are still served.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

using nlohmann::json;

const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";
constexpr auto kDeadline = std::chrono::seconds(20);

std::string Url(int port, const std::string& path = "") {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

// GET through curl (bounded): the status and body.
std::pair<int, std::string> HttpGet(const std::string& url) {
  CommandResult r =
      RunCommand({"curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}", url}, std::chrono::seconds(10));
  const size_t nl = r.out.rfind('\n');
  if (r.exit_code != 0 || nl == std::string::npos) return {0, ""};
  return {std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
}

class UiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("kspan-ui-");
    store_ = dir_ + "/traces.db";
    ui_port_ = FreePort();
    suffix_ = std::to_string(getpid());
    ASSERT_TRUE(agent_.Start({"--listen", "127.0.0.1:" + std::to_string(ui_port_), "--store-path", store_}))
        << "kspan did not become ready:\n"
        << agent_.Logs();
  }
  void TearDown() override {
    if (!stopped_) ExpectCleanStop(agent_);
    apps_.clear();
  }

  void StartTier(const std::string& service, int port, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/python3", kApps + "tier_service.py", std::to_string(port)};
    argv.insert(argv.end(), args.begin(), args.end());
    apps_.push_back(std::make_unique<Subprocess>());
    Subprocess& p = *apps_.back();
    ASSERT_TRUE(p.Start(argv, {{"OTEL_SERVICE_NAME", service}}));
    ASSERT_TRUE(WaitFor([&] { return p.Stdout().find("ready") != std::string::npos || !p.Running(); },
                        std::chrono::seconds(10)) &&
                p.Running())
        << service << ": " << p.Stderr();
  }

  // The trace of the SERVER span of `service` whose url.path is `path`, once every span of
  // it is in the spans file and has been for a second (the trace left the window whole).
  std::string TraceOf(const std::string& service, const std::string& path, size_t min_spans,
                      std::vector<FlatSpan>* spans) {
    std::string id;
    size_t last = 0;
    auto stable_since = std::chrono::steady_clock::now();
    WaitFor(
        [&] {
          std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());
          for (const FlatSpan& s : all) {
            if (s.kind == 2 && s.ResourceStr("service.name") == service && s.Str("url.path") == path)
              id = s.trace_id;
          }
          spans->clear();
          for (const FlatSpan& s : all) {
            if (!id.empty() && s.trace_id == id) spans->push_back(s);
          }
          if (spans->size() != last) {
            last = spans->size();
            stable_since = std::chrono::steady_clock::now();
          }
          return spans->size() >= min_spans &&
                 std::chrono::steady_clock::now() - stable_since > std::chrono::seconds(1);
        },
        kDeadline);
    return id;
  }

  // Waits until the store serves `n` spans of the trace.
  bool Stored(const std::string& id, size_t n) {
    return WaitFor(
        [&] {
          auto [code, body] = HttpGet(Url(ui_port_, "/api/traces/" + id));
          if (code != 200) return false;
          const json j = json::parse(body, nullptr, false);
          return j.is_object() && j["data"].size() == 1 && j["data"][0]["spans"].size() == n;
        },
        kDeadline);
  }

  KspanAgent agent_;
  bool stopped_ = false;
  std::string dir_, store_, suffix_;
  int ui_port_ = 0;
  std::vector<std::unique_ptr<Subprocess>> apps_;
};

// A request whose path is not UTF-8 (a Latin-1 \xE9, as old clients send it) is stored
// and served like any other, its text made valid (U+FFFD) as the spans file has it. The
// store keeps protobuf rows, and a protobuf parser refuses a `string` that is not UTF-8:
// before the encoder made text valid, such a trace was written, counted, and never served.
TEST_F(UiTest, ARequestWhosePathIsNotUtf8IsServedLikeAnyOther) {
  const std::string service = "ui-latin1-" + suffix_;
  const int port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartTier(service, port, {}));
  const CommandResult sent =
      RunCommand({"/usr/bin/python3", "-c",
                  "import os, socket, sys\n"
                  "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)\n"
                  "s.sendall(b'GET ' + os.fsencode(sys.argv[2]) + b' HTTP/1.1\\r\\nHost: x\\r\\nConnection: "
                  "close\\r\\n\\r\\n')\n"
                  "answer = b''\n"
                  "while chunk := s.recv(4096): answer += chunk\n"
                  "print(answer[:12].decode())\n",
                  std::to_string(port), "/caf\xE9-" + suffix_},
                 std::chrono::seconds(15));
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  EXPECT_NE(sent.out.find(" 200"), std::string::npos) << sent.out;

  const std::string path = "/caf\xEF\xBF\xBD-" + suffix_;  // U+FFFD for the \xE9
  std::vector<FlatSpan> spans;
  const std::string id = TraceOf(service, path, 2, &spans);
  ASSERT_FALSE(id.empty()) << agent_.Logs();
  ASSERT_EQ(spans.size(), 2u);  // the raw client's CLIENT span and the tier's SERVER span
  ASSERT_TRUE(Stored(id, spans.size())) << HttpGet(Url(ui_port_, "/api/traces/" + id)).second;
  const json j = json::parse(HttpGet(Url(ui_port_, "/api/traces/" + id)).second);
  std::multiset<std::string> names;
  for (const json& s : j["data"][0]["spans"]) names.insert(s["operationName"].get<std::string>());
  EXPECT_EQ(names, (std::multiset<std::string>{"GET " + path, "GET " + path}));
}

TEST_F(UiTest, ListWaterfallSearchInChromiumAndTracesSurviveARestart) {
  const std::string front = "ui-front-" + suffix_, mid = "ui-mid-" + suffix_, back = "ui-back-" + suffix_;
  const int back_port = FreePort(), mid_port = FreePort(), front_port = FreePort();
  const int err_port = FreePort(), slow_port = FreePort(), closed_port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartTier(back, back_port, {}));
  ASSERT_NO_FATAL_FAILURE(StartTier(mid, mid_port, {Url(back_port)}));
  ASSERT_NO_FATAL_FAILURE(StartTier(front, front_port, {Url(mid_port)}));
  // The same service twice more: one whose downstream is refused (502: an error trace),
  // one that answers after 400 ms (the slow trace).
  ASSERT_NO_FATAL_FAILURE(StartTier(front, err_port, {Url(closed_port)}));
  ASSERT_NO_FATAL_FAILURE(StartTier(front, slow_port, {Url(mid_port), "--delay-ms", "400"}));

  const std::string ok_path = "/ui/ok-" + suffix_, err_path = "/ui/err-" + suffix_,
                    slow_path = "/ui/slow-" + suffix_;
  EXPECT_EQ(HttpGet(Url(front_port, ok_path)).first, 200);
  EXPECT_EQ(HttpGet(Url(err_port, err_path)).first, 502);
  EXPECT_EQ(HttpGet(Url(slow_port, slow_path)).first, 200);

  // What kspan exported (the file), to compare the UI with.
  std::vector<FlatSpan> ok_spans, err_spans, slow_spans;
  const std::string ok_id = TraceOf(front, ok_path, 6, &ok_spans);
  const std::string err_id = TraceOf(front, err_path, 2, &err_spans);
  const std::string slow_id = TraceOf(front, slow_path, 6, &slow_spans);
  ASSERT_FALSE(ok_id.empty()) << agent_.Logs();
  ASSERT_FALSE(err_id.empty());
  ASSERT_FALSE(slow_id.empty());
  // curl CLIENT -> front SERVER -> front CLIENT -> mid SERVER -> mid CLIENT -> back SERVER.
  ASSERT_EQ(ok_spans.size(), 6u);
  ASSERT_TRUE(Stored(ok_id, ok_spans.size()));
  ASSERT_TRUE(Stored(err_id, err_spans.size()));
  ASSERT_TRUE(Stored(slow_id, slow_spans.size()));

  // Depths from the exported parents.
  std::map<std::string, std::string> parent;
  for (const FlatSpan& s : ok_spans) parent[s.span_id] = s.parent_span_id;
  auto depth = [&](std::string id) {
    int d = 0;
    while (!parent[id].empty() && parent.count(parent[id])) id = parent[id], ++d;
    return d;
  };

  const json spec = {{"base", Url(ui_port_)},
                     {"trace", ok_id},
                     {"spans", ok_spans.size()},
                     {"service", front},
                     {"screenshot", dir_ + "/waterfall.png"},
                     {"searches",
                      {"service=" + front, "service=" + front + "&status=error",
                       "service=" + front + "&minDuration=300ms", "service=" + back}},
                     {"form", {{"service", front}, {"status", "error"}}}};
  CommandResult r =
      RunCommand({"/usr/bin/node", kApps + "ui/drive.mjs", spec.dump()}, std::chrono::seconds(90));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json out = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.out;
  EXPECT_EQ(out["pageErrors"], json::array()) << "no script error on any page";

  // 1. The list has the trace; the click opened its waterfall, every span nested right.
  EXPECT_NE(std::find(out["listed"].begin(), out["listed"].end(), ok_id), out["listed"].end())
      << out["listed"];
  EXPECT_EQ(out["url"], Url(ui_port_, "/traces/" + ok_id));
  ASSERT_EQ(out["rows"].size(), ok_spans.size());
  std::map<std::string, size_t> row_of;
  for (size_t i = 0; i < out["rows"].size(); ++i) row_of[out["rows"][i]["spanId"]] = i;
  for (const FlatSpan& s : ok_spans) {
    ASSERT_TRUE(row_of.count(s.span_id)) << "span " << s.name << " has a row";
    const json& row = out["rows"][row_of[s.span_id]];
    EXPECT_EQ(row["parentId"], s.parent_span_id) << s.name;
    EXPECT_EQ(row["depth"], depth(s.span_id)) << s.name;
    EXPECT_EQ(row["indent"], 8 + 16 * depth(s.span_id)) << s.name << ": indented by its depth";
    EXPECT_EQ(row["service"], s.ResourceStr("service.name"));
    EXPECT_EQ(row["name"], s.name);
    if (!s.parent_span_id.empty()) {
      EXPECT_LT(row_of[s.parent_span_id], row_of[s.span_id]) << s.name << ": below its parent";
    }
    EXPECT_GE(row["left"].get<double>(), 0.0);
    EXPECT_LE(row["left"].get<double>() + row["width"].get<double>(), 100.5) << s.name;
  }
  EXPECT_EQ(out["rows"][0]["depth"], 0) << "the root first";
  EXPECT_EQ(std::set<int>({0, 1, 2, 3, 4, 5}), [&] {
    std::set<int> d;
    for (const json& row : out["rows"]) d.insert(row["depth"].get<int>());
    return d;
  }()) << "six levels: a chain";
  EXPECT_NE(out["details"].get<std::string>().find("Attributes"), std::string::npos) << out["details"];
  EXPECT_TRUE(std::filesystem::file_size(dir_ + "/waterfall.png") > 10000) << "the screenshot was saved";

  // 3. Searches return exactly the traces made for them.
  const json& s = out["searches"];
  EXPECT_EQ(std::set<std::string>(s["service=" + front].begin(), s["service=" + front].end()),
            (std::set<std::string>{ok_id, err_id, slow_id}));
  EXPECT_EQ(s["service=" + front + "&status=error"], json({err_id}));
  EXPECT_EQ(s["service=" + front + "&minDuration=300ms"], json({slow_id}));
  EXPECT_EQ(std::set<std::string>(s["service=" + back].begin(), s["service=" + back].end()),
            (std::set<std::string>{ok_id, slow_id}));
  EXPECT_EQ(out["form"], json({err_id})) << "the search form: service and status=error";

  // The graphs page: the chain's calls between services, from the store.
  std::map<std::string, int> edges;
  for (const json& e : out["serviceEdges"]) edges[e[0].get<std::string>()] = e[1].get<int>();
  EXPECT_EQ(edges[front + ">" + mid], 2) << out["serviceEdges"] << ": the ok and the slow request";
  EXPECT_EQ(edges[mid + ">" + back], 2) << out["serviceEdges"];

  // 5 (part). Restarted on the same store: the traces are still there.
  ExpectCleanStop(agent_);
  stopped_ = true;
  KspanAgent again;
  ASSERT_TRUE(again.Start({"--listen", "127.0.0.1:" + std::to_string(ui_port_), "--store-path", store_}))
      << again.Logs();
  auto [code, body] = HttpGet(Url(ui_port_, "/api/traces/" + ok_id));
  EXPECT_EQ(code, 200);
  const json j = json::parse(body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << body;
  EXPECT_EQ(j["data"][0]["spans"].size(), ok_spans.size());
  ExpectCleanStop(again);
}

// The store under load (acceptance 5 of the UI issue, and the rate bound of docs/ui.md): a
// python server driven by `ab` (bounded in count and time), kspan scoped to that server's
// port so the counters are the test's own.
class StoreLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("kspan-store-load-");
    port_ = FreePort();
    ui_port_ = FreePort();
    service_ = "store-load-" + std::to_string(getpid());
  }
  void TearDown() override { server_.reset(); }

  bool StartAgent(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--listen",     "127.0.0.1:" + std::to_string(ui_port_),
                                     "--store-path", dir_ + "/traces.db",
                                     "--include",    "port=" + std::to_string(port_)};
    args.insert(args.end(), extra.begin(), extra.end());
    return agent_.Start(args);
  }
  bool StartServer() {
    server_ = std::make_unique<Subprocess>();
    return server_->Start({"/usr/bin/python3", kApps + "tier_service.py", std::to_string(port_)},
                          {{"OTEL_SERVICE_NAME", service_}}) &&
           WaitFor([&] { return server_->Stdout().find("ready") != std::string::npos; },
                   std::chrono::seconds(10));
  }
  // `n` requests, 4 at a time, a connection each (ab -k waits forever on python's HTTP/1.0
  // keep-alive answers): ab's own count; 0 on failure.
  uint64_t Load(int n, const std::string& path) {
    CommandResult r =
        RunCommand({"ab", "-q", "-s", "10", "-n", std::to_string(n), "-c", "4", Url(port_, path)},
                   std::chrono::seconds(120));
    const size_t at = r.out.find("Complete requests:");
    return r.exit_code == 0 && at != std::string::npos ? std::strtoull(r.out.c_str() + at + 18, nullptr, 10)
                                                       : 0;
  }
  // A counter or gauge of /metrics (summed over its series), -1 when not served.
  double Metric(const std::string& name, const std::string& labels = "") {
    auto [code, body] = HttpGet(Url(ui_port_, "/metrics"));
    if (code != 200) return -1;
    double sum = 0;
    const std::string series = name + labels;
    for (size_t at = 0; (at = body.find("\n" + series, at)) != std::string::npos; ++at) {
      const size_t sp = body.find(' ', at + 1 + series.size());
      if (sp == std::string::npos) break;
      const std::string key = body.substr(at + 1, sp - at - 1);
      if (key != series && !(labels.empty() && key.size() > series.size() && key[series.size()] == '{'))
        continue;
      sum += std::strtod(body.c_str() + sp + 1, nullptr);
    }
    return sum;
  }
  // Server spans of this test's service in the spans file.
  size_t ExportedServerSpans() {
    size_t n = 0;
    for (const FlatSpan& s : ReadSpans(agent_.SpansPath())) {
      if (s.kind == 2 && s.ResourceStr("service.name") == service_) ++n;
    }
    return n;
  }

  KspanAgent agent_;
  std::unique_ptr<Subprocess> server_;
  std::string dir_, service_;
  int port_ = 0, ui_port_ = 0;
};

TEST_F(StoreLoadTest, StaysUnderItsBoundWhileTenTimesItIsWrittenAndKeepsTheNewest) {
  ASSERT_TRUE(StartAgent({"--store-max-mib", "1", "--store-max-spans-per-second", "0"})) << agent_.Logs();
  ASSERT_TRUE(StartServer()) << server_->Stderr();
  // A one-span trace of this server takes 0.5-1 KB in the store (docs/ui.md: 1.1 KB for
  // richer spans): 25,000 are over 10 MiB.
  constexpr int kRequests = 25000;
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t done = Load(kRequests, "/load/" + service_);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(done, static_cast<uint64_t>(kRequests)) << "ab did not complete";
  EXPECT_EQ(HttpGet(Url(port_, "/last/" + service_)).first, 200);
  ASSERT_TRUE(WaitFor([&] { return Metric("kspan_store_spans_written_total") >= kRequests + 1; },
                      std::chrono::seconds(30)))
      << "written " << Metric("kspan_store_spans_written_total") << ", dropped "
      << Metric("kspan_store_spans_dropped_total");
  // The newest trace is served; the bound held.
  std::string newest;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto [code, body] = HttpGet(Url(ui_port_, "/api/traces?service=" + service_ + "&limit=1"));
        const json j = json::parse(body, nullptr, false);
        if (code != 200 || !j.is_object() || j["data"].size() != 1) return false;
        for (const json& tag : j["data"][0]["spans"][0]["tags"]) {
          if (tag["key"] == "url.path") newest = tag["value"].get<std::string>();
        }
        return newest == "/last/" + service_;
      },
      kDeadline))
      << newest;
  auto [code, body] = HttpGet(Url(ui_port_, "/api/traces?service=" + service_ + "&limit=1000"));
  ASSERT_EQ(code, 200);
  EXPECT_GT(json::parse(body)["data"].size(), 100u);
  // Each trace is one span (only the server is traced): the store holds what was written
  // less what was evicted, at about a KB a span.
  const double evicted = Metric("kspan_store_traces_evicted_total");
  const double kept = Metric("kspan_store_spans_written_total") - evicted;
  const double held = Metric("kspan_store_bytes");
  EXPECT_GT(evicted, 0);
  EXPECT_GT(kept, 100);
  EXPECT_LT(kept, 4000) << "1 MiB holds one to two thousand of these spans (0.5-1 KB)";
  EXPECT_LE(held, (1u << 20) + (512u << 10)) << "a batch over the bound at most";
  // Ten times the bound written: every span at the bytes a kept one takes.
  const double written_bytes = (kRequests + 1) * held / kept;
  EXPECT_GE(written_bytes, 10.0 * (1u << 20)) << kept << " spans in " << held << " bytes";
  // The bound is checked once a second, so up to about two seconds' writes (at the rate of
  // this load) may pass it before the oldest traces go; the file grows by that much at most
  // and no further, since freed pages are reused, not added to.
  const double file = static_cast<double>(std::filesystem::file_size(dir_ + "/traces.db"));
  const double per_second = kRequests / seconds * (held / kept);
  EXPECT_LE(file, (1u << 20) + 2 * per_second + (512u << 10))
      << kRequests / seconds << " spans/s at " << held / kept << " bytes each";
  EXPECT_LE(file, written_bytes / 2) << "freed pages are reused";
  EXPECT_EQ(Metric("kspan_store_spans_dropped_total"), 0) << "no rate bound, and the queue kept up";
  ExpectCleanStop(agent_);
}

TEST_F(StoreLoadTest, TheRateBoundStoresWholeTracesAtItsRateAndCountsTheRest) {
  ASSERT_TRUE(StartAgent({"--store-max-spans-per-second", "100"})) << agent_.Logs();
  ASSERT_TRUE(StartServer()) << server_->Stderr();
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t done = Load(3000, "/rate/" + service_);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(done, 3000u);
  // Every span either stored or refused, counted.
  double written = 0, refused = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        written = Metric("kspan_store_spans_written_total");
        refused = Metric("kspan_store_spans_dropped_total", "{reason=\"rate\"}");
        return written + refused >= 3000 && ExportedServerSpans() >= 3000;
      },
      std::chrono::seconds(30)))
      << "written " << written << " refused " << refused << " exported " << ExportedServerSpans() << "\n"
      << agent_.Logs();
  EXPECT_EQ(written + refused, static_cast<double>(ExportedServerSpans()))
      << "the file output got every span";
  EXPECT_GE(written, 100) << "a second's burst at least";
  EXPECT_LE(written, 100 * (seconds + 2) + 1) << "the rate, over " << seconds << " s";
  EXPECT_GT(refused, 0);
  EXPECT_EQ(Metric("kspan_store_spans_dropped_total", "{reason=\"queue_full\"}"), 0);
  ExpectCleanStop(agent_);
}

}  // namespace
}  // namespace kspan::testing
