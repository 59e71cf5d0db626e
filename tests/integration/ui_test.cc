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

}  // namespace
}  // namespace kspan::testing
