// The web UI's /graph page end to end (docs/ui.md, issue 22 acceptance 2): real kspan with
// --listen, the agents of tests/apps/agents (an orchestrator and a sub-agent on the real
// openai SDK, an MCP tool server on the real @modelcontextprotocol/sdk, A2A between the
// agents, the LLM mock over HTTPS; none of it instrumented), then Debian's chromium driven
// headless by tests/apps/ui/graph.mjs over /graph. The agent call graph it shows must hold
// exactly the agents, models and tools the scenario called, with the counts, errors and
// tokens it made (each task: two chats with gpt-4o (17/9 and 21/5 tokens), a stdio MCP tool,
// the weather tool over HTTP, the sub-agent over A2A, whose chat with gpt-4o-mini is 17/9).
// The page draws the graph too (SVG, laid out by the vendored dagre): a labelled node per
// agent, model and tool, an edge per call edge labelled with its counts, no two nodes
// overlapping, in the light and the dark theme. Screenshots of both are saved in the
// test's temp dir.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

using nlohmann::json;

const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";

std::string Url(int port, const std::string& path = "") {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

// One edge as the page or the API shows it.
struct Edge {
  uint64_t calls = 0, errors = 0, tokens_in = 0, tokens_out = 0;
  bool operator==(const Edge&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Edge& e) {
  return os << "{calls " << e.calls << ", errors " << e.errors << ", tokens " << e.tokens_in << "/"
            << e.tokens_out << "}";
}

// "from -kind-> to" -> edge, without the service edges (start-up calls: MCP initialize and
// tools/list, the agent card, whose count depends on the SDKs, not on the scenario).
std::map<std::string, Edge> ApiEdges(int port) {
  std::map<std::string, Edge> out;
  CommandResult r =
      RunCommand({"curl", "-sS", "--max-time", "5", Url(port, "/api/agent-graph")}, std::chrono::seconds(10));
  const json g = json::parse(r.out, nullptr, false);
  if (!g.is_object()) return out;
  for (const json& e : g.value("edges", json::array())) {
    if (e.value("kind", "") == "service") continue;
    out[e.value("from", "") + " -" + e.value("kind", "") + "-> " + e.value("to", "")] = {
        e.value("calls", uint64_t{0}), e.value("errors", uint64_t{0}), e.value("input_tokens", uint64_t{0}),
        e.value("output_tokens", uint64_t{0})};
  }
  return out;
}

// An edge's label starts with its calls: "1 call", "4 calls".
std::string Calls(uint64_t n) {
  return std::to_string(n) + (n == 1 ? " call" : " calls");
}

class UiGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("kspan-ui-graph-");
    const std::string error = MakeTestCertificate(dir_);
    ASSERT_TRUE(error.empty()) << error;
  }
  void TearDown() override { ExpectCleanStop(agent_); }

  void StartServer(Subprocess* p, const std::vector<std::string>& argv, int port) {
    ASSERT_TRUE(p->Start(argv, {{"NODE_EXTRA_CA_CERTS", dir_ + "/cert.pem"}}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(20))) << argv[1] << ":\n" << p->Stderr();
  }

  void RunTasks(int n, const std::string& mode = "") {
    std::vector<std::string> argv = {"node", kApps + "agents/run_tasks.js", std::to_string(orch_port_),
                                     std::to_string(n)};
    if (!mode.empty()) argv.push_back(mode);
    CommandResult r = RunCommand(argv, std::chrono::seconds(120));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\norchestrator:\n" << orch_.Stderr();
  }

  std::string dir_;
  KspanAgent agent_;
  Subprocess llm_, mcp_, sub_, orch_;
  int ui_port_ = 0, orch_port_ = 0;
};

TEST_F(UiGraphTest, TheAgentCallGraphPageShowsTheRunsAgentsModelsAndToolsWithTheirCounts) {
  ui_port_ = FreePort();
  ASSERT_TRUE(agent_.Start({"--listen", "127.0.0.1:" + std::to_string(ui_port_), "--agent",
                            "orchestrator=orchestrator.js", "--agent", "sub-agent=sub_agent.js"}))
      << agent_.Logs();
  const int llm_port = FreePort(), mcp_port = FreePort(), sub_port = FreePort();
  orch_port_ = FreePort();
  const std::string a = kApps + "agents/", cert = dir_ + "/cert.pem";
  ASSERT_NO_FATAL_FAILURE(StartServer(
      &llm_, {"node", kApps + "llm_mock.js", std::to_string(llm_port), cert, dir_ + "/key.pem"}, llm_port));
  ASSERT_NO_FATAL_FAILURE(
      StartServer(&mcp_, {"node", a + "mcp_http_server.js", std::to_string(mcp_port)}, mcp_port));
  ASSERT_NO_FATAL_FAILURE(StartServer(
      &sub_, {"node", a + "sub_agent.js", std::to_string(sub_port), std::to_string(llm_port), cert},
      sub_port));
  ASSERT_NO_FATAL_FAILURE(
      StartServer(&orch_,
                  {"node", a + "orchestrator.js", std::to_string(orch_port_), std::to_string(llm_port), cert,
                   std::to_string(sub_port), std::to_string(mcp_port)},
                  orch_port_));

  // Three tasks, then one whose stdio tool fails (fail_tool: a JSON-RPC error); the task goes on.
  constexpr uint64_t kOk = 3, kTasks = kOk + 1;
  ASSERT_NO_FATAL_FAILURE(RunTasks(kOk));
  ASSERT_NO_FATAL_FAILURE(RunTasks(1, "fail"));

  const std::map<std::string, Edge> expected = {
      {"orchestrator -model-> gpt-4o", {2 * kTasks, 0, (17 + 21) * kTasks, (9 + 5) * kTasks}},
      {"orchestrator -tool-> weather", {kTasks, 0, 0, 0}},
      {"orchestrator -tool-> lookup", {kOk, 0, 0, 0}},
      {"orchestrator -tool-> fail_tool", {1, 1, 0, 0}},
      {"orchestrator -agent-> sub-agent", {kTasks, 0, 0, 0}},
      {"sub-agent -model-> gpt-4o-mini", {kTasks, 0, 17 * kTasks, 9 * kTasks}},
  };
  // The graph is fed as spans are built: wait until kspan has seen every call (the page is
  // then checked against the scenario, not against the API).
  std::map<std::string, Edge> api;
  WaitFor(
      [&] {
        api = ApiEdges(ui_port_);
        return api == expected;
      },
      std::chrono::seconds(30));
  ASSERT_EQ(api, expected) << agent_.Logs();

  const json spec = {{"base", Url(ui_port_)},
                     {"screenshot", dir_ + "/graph.png"},
                     {"screenshotDark", dir_ + "/graph-dark.png"}};
  CommandResult r =
      RunCommand({"/usr/bin/node", kApps + "ui/graph.mjs", spec.dump()}, std::chrono::seconds(90));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json out = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.out;
  EXPECT_EQ(out["pageErrors"], json::array()) << "no script error on the page";
  EXPECT_EQ(out["url"], Url(ui_port_, "/graph")) << "reached by the navigation's Graphs link";

  std::map<std::string, Edge> shown;
  std::map<std::string, std::string> p95;
  for (const json& e : out["agentEdges"]) {
    if (e["kind"] == "service") continue;
    const std::string key = e["from"].get<std::string>() + " -" + e["kind"].get<std::string>() + "-> " +
                            e["to"].get<std::string>();
    EXPECT_EQ(shown.count(key), 0u) << key << ": one row per edge";
    shown[key] = {e["calls"].get<uint64_t>(), e["errors"].get<uint64_t>(), e["tokensIn"].get<uint64_t>(),
                  e["tokensOut"].get<uint64_t>()};
    p95[key] = e["p95"].get<std::string>();
  }
  EXPECT_EQ(shown, expected) << out["agentText"];
  for (const auto& [key, text] : p95) {
    // A latency in milliseconds: a number then " ms".
    EXPECT_TRUE(text.size() > 3 && text.ends_with(" ms") && std::isdigit(static_cast<unsigned char>(text[0])))
        << key << ": p95 \"" << text << "\"";
  }

  // The drawing: a node per agent, model and tool, labelled; an edge per call edge, from the
  // caller's node to the callee's, labelled with its calls (and tokens, errors, p95).
  const json& drawn = out["drawn"]["agents"];
  ASSERT_TRUE(drawn.is_object()) << out["drawn"];
  EXPECT_EQ(drawn["hidden"], "true") << "the table is the accessible view";
  std::map<std::string, std::string> labels;
  std::vector<std::array<double, 4>> boxes;
  for (const json& n : drawn["nodes"]) {
    if (n["kind"] == "service") continue;
    labels[n["id"].get<std::string>()] = n["label"].get<std::string>();
    boxes.push_back(n["box"].get<std::array<double, 4>>());
  }
  const std::map<std::string, std::string> expected_nodes = {
      {"agent:orchestrator", "orchestrator"}, {"agent:sub-agent", "sub-agent"},
      {"model:gpt-4o", "model: gpt-4o"},      {"model:gpt-4o-mini", "model: gpt-4o-mini"},
      {"tool:weather", "tool: weather"},      {"tool:lookup", "tool: lookup"},
      {"tool:fail_tool", "tool: fail_tool"},
  };
  EXPECT_EQ(labels, expected_nodes) << drawn;
  for (size_t i = 0; i < boxes.size(); ++i) {
    EXPECT_GT(boxes[i][2], 20.0) << drawn;
    EXPECT_GT(boxes[i][3], 10.0) << drawn;
    for (size_t j = i + 1; j < boxes.size(); ++j) {
      const auto& a = boxes[i];
      const auto& b = boxes[j];
      const bool apart =
          a[0] + a[2] <= b[0] || b[0] + b[2] <= a[0] || a[1] + a[3] <= b[1] || b[1] + b[3] <= a[1];
      EXPECT_TRUE(apart) << "nodes " << i << " and " << j << " overlap: " << drawn;
    }
  }
  std::map<std::string, std::string> edge_labels;
  for (const json& e : drawn["edges"]) {
    const std::string from = e["from"], to = e["to"];
    if (to.starts_with("service:")) continue;
    EXPECT_GT(e["length"].get<double>(), 10.0) << from << " -> " << to << ": a drawn line";
    edge_labels[from.substr(from.find(':') + 1) + " -" + to.substr(0, to.find(':')) + "-> " +
                to.substr(to.find(':') + 1)] = e["label"];
  }
  ASSERT_EQ(edge_labels.size(), expected.size()) << drawn;
  for (const auto& [key, edge] : expected) {
    ASSERT_TRUE(edge_labels.count(key)) << key << " is not drawn: " << drawn;
    const std::string& label = edge_labels[key];
    EXPECT_TRUE(label.starts_with(Calls(edge.calls))) << key << ": " << label;
    if (edge.tokens_in) {
      EXPECT_NE(label.find(std::to_string(edge.tokens_in) + "/" + std::to_string(edge.tokens_out) + " tok"),
                std::string::npos)
          << key << ": " << label;
    }
    EXPECT_EQ(label.find(" err") != std::string::npos, edge.errors > 0) << key << ": " << label;
    if (edge.errors) {
      EXPECT_NE(label.find(std::to_string(edge.errors) + " err"), std::string::npos) << label;
    }
    EXPECT_NE(label.find("p95 "), std::string::npos) << key << ": " << label;
  }
  // The service map: whatever its table lists, its drawing has the same edges and counts.
  std::map<std::string, std::string> service_drawn;
  for (const json& e : out["drawn"].value("services", json::object()).value("edges", json::array())) {
    service_drawn[e["from"].get<std::string>() + ">" + e["to"].get<std::string>()] = e["label"];
  }
  EXPECT_EQ(service_drawn.size(), out["serviceEdges"].size()) << out["drawn"];
  for (const json& row : out["serviceEdges"]) {
    EXPECT_EQ(service_drawn[row[0].get<std::string>()], Calls(row[1].get<uint64_t>())) << row;
  }
  // Dark: the theme's dark colours reach the drawing (style.css, 4.5:1 text contrast).
  EXPECT_EQ(out["dark"]["bodyBg"], "rgb(13, 17, 23)") << out["dark"];
  EXPECT_EQ(out["dark"]["nodeFill"], "rgb(13, 17, 23)") << out["dark"];
  EXPECT_EQ(out["dark"]["nodeText"], "rgb(230, 237, 243)") << out["dark"];

  EXPECT_GT(std::filesystem::file_size(dir_ + "/graph.png"), 10000u) << "the screenshot was saved";
  EXPECT_GT(std::filesystem::file_size(dir_ + "/graph-dark.png"), 10000u);
  std::cout << "screenshots: " << dir_ << "/graph.png, graph-dark.png\n";
}

}  // namespace
}  // namespace kspan::testing
