// Trace stitching end to end: real multi-tier services (python3 threads, a node.js event
// loop, nginx, exec'd curl) on loopback, none of which forwards trace context. kspan alone
// must put each request's spans into one tree:
//
//   curl ──► front (python) ──► node ──► back (python) ──► nginx
//   CLIENT   SERVER  CLIENT     SERVER CLIENT  SERVER CLIENT  SERVER
//
// A span is identified by (kind, server.port, request path): SERVER spans carry
// server.port = the port they listen on and url.path; CLIENT spans carry server.port =
// the port they called and url.full (whose path is compared). Every request gets its own
// path, so the spans of one request are found without trusting the ids under test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kInternal = 1, kServer = 2, kClient = 3;
constexpr char kAmbiguous[] = "kspan.parent.ambiguous";
// The agent links an ambiguous span to at most this many candidates (the stitcher's
// max_links); past it, the right candidate may be among those left out.
constexpr size_t kMaxLinks = 8;
// Spans are held for a ~1 s assembly window before export; 20 s leaves room for a slow CI.
constexpr std::chrono::seconds kSpanDeadline(20);
const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";

std::string Url(int port, const std::string& path = "") {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

// One line per span for failure messages.
std::string Describe(const FlatSpan* s) {
  if (!s) return "(none)";
  std::ostringstream o;
  o << "kind=" << s->kind << " port=" << s->Int("server.port") << " path=" << s->Path() << " name='"
    << s->name << "' svc=" << s->ResourceStr("service.name") << " trace=" << s->trace_id
    << " span=" << s->span_id << " parent=" << (s->parent_span_id.empty() ? "-" : s->parent_span_id)
    << " links=" << s->links.size() << (s->Bool(kAmbiguous) ? " ambiguous" : "");
  return o.str();
}

bool IsChildOf(const FlatSpan& child, const FlatSpan& parent) {
  return !child.parent_span_id.empty() && child.parent_span_id == parent.span_id &&
         child.trace_id == parent.trace_id;
}

bool LinksTo(const FlatSpan& s, const FlatSpan& target) {
  return std::any_of(s.links.begin(), s.links.end(), [&](const FlatLink& l) {
    return l.span_id == target.span_id && l.trace_id == target.trace_id;
  });
}

// A hop of a request's path through the tiers.
struct Hop {
  std::string label;  // for messages: "node CLIENT"
  int kind;
  int port;  // server.port
};

std::vector<const FlatSpan*> Find(const std::vector<FlatSpan>& all, int kind, int port,
                                  const std::string& path) {
  std::vector<const FlatSpan*> out;
  for (const auto& s : all) {
    if (s.kind == kind && s.Int("server.port") == port && s.Path() == path) out.push_back(&s);
  }
  return out;
}

// The span of every hop for `path`; nullptr (and a problem) where there is not exactly one.
std::vector<const FlatSpan*> Resolve(const std::vector<FlatSpan>& all, const std::vector<Hop>& hops,
                                     const std::string& path, std::vector<std::string>* problems) {
  std::vector<const FlatSpan*> out;
  for (const auto& h : hops) {
    auto found = Find(all, h.kind, h.port, path);
    if (found.size() == 1) {
      out.push_back(found[0]);
    } else {
      out.push_back(nullptr);
      problems->push_back(path + ": " + std::to_string(found.size()) + " spans for " + h.label + ", want 1");
    }
  }
  return out;
}

// True once every hop of every path has at least one span.
bool AllPresent(const std::vector<FlatSpan>& all, const std::vector<Hop>& hops,
                const std::vector<std::string>& paths) {
  for (const auto& p : paths) {
    for (const auto& h : hops) {
      if (Find(all, h.kind, h.port, p).empty()) return false;
    }
  }
  return true;
}

// Every trace that holds spans of more than one of `paths` (among spans of `ports`): a
// span stitched into another request's tree.
std::vector<std::string> MixedTraces(const std::vector<FlatSpan>& all, const std::set<int>& ports,
                                     const std::set<std::string>& paths) {
  std::map<std::string, std::set<std::string>> paths_of_trace;
  for (const auto& s : all) {
    const std::string p = s.Path();
    if (ports.count(static_cast<int>(s.Int("server.port"))) && paths.count(p))
      paths_of_trace[s.trace_id].insert(p);
  }
  std::vector<std::string> out;
  for (const auto& [trace, ps] : paths_of_trace) {
    if (ps.size() < 2) continue;
    std::string msg = "trace " + trace + " mixes paths:";
    for (const auto& p : ps) msg += " " + p;
    out.push_back(msg);
  }
  return out;
}

std::string FirstFew(const std::vector<std::string>& problems, size_t n = 25) {
  std::string out;
  for (size_t i = 0; i < problems.size() && i < n; ++i) out += "\n  " + problems[i];
  if (problems.size() > n) out += "\n  ... and " + std::to_string(problems.size() - n) + " more";
  return out;
}

// Runs every command at once and waits for all of them under one deadline; whatever is
// still running then is killed (Subprocess's destructor).
std::vector<CommandResult> RunConcurrently(const std::vector<std::vector<std::string>>& cmds,
                                           std::chrono::milliseconds timeout) {
  std::vector<std::unique_ptr<Subprocess>> procs;
  std::vector<bool> started;
  for (const auto& c : cmds) {
    procs.push_back(std::make_unique<Subprocess>());
    started.push_back(procs.back()->Start(c));
  }
  const auto deadline = Clock::now() + timeout;
  std::vector<CommandResult> out(cmds.size());
  for (size_t i = 0; i < procs.size(); ++i) {
    if (!started[i]) continue;
    const auto left =
        std::max(std::chrono::milliseconds(0),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    const int st = procs[i]->Wait(left);
    out[i].exit_code = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
    out[i].out = procs[i]->Stdout();
    out[i].err = procs[i]->Stderr();
  }
  return out;
}

// curl fetching each URL in turn on one keep-alive connection, printing each status.
std::vector<std::string> CurlArgs(const std::vector<std::string>& urls,
                                  const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"curl", "-sS", "--max-time", "10", "-w", "%{http_code}\\n"};
  args.insert(args.end(), extra.begin(), extra.end());
  for (const auto& u : urls) args.insert(args.end(), {"-o", "/dev/null", u});
  return args;
}

std::string Repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

class TraceStitching : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(agent_.Start()) << "kspan did not become ready:\n" << agent_.Logs();
    dir_ = MakeTempDir("kspan-trace-");
  }
  void TearDown() override {
    ExpectCleanStop(agent_);
    apps_.clear();  // each Subprocess kills its whole process group (exec'd curls too)
  }

  // A test app (tier_service.py or .js) named `service`; returns once it printed "ready".
  void StartApp(const std::string& service, std::vector<std::string> argv) {
    apps_.push_back(std::make_unique<Subprocess>());
    Subprocess& p = *apps_.back();
    ASSERT_TRUE(p.Start(argv, {{"OTEL_SERVICE_NAME", service}})) << argv[0];
    ASSERT_TRUE(WaitFor([&] { return p.Stdout().find("ready") != std::string::npos || !p.Running(); },
                        std::chrono::seconds(10)) &&
                p.Running())
        << service << " did not start:\n"
        << p.Stderr();
  }
  // tier_service.py PORT [args...]
  void StartPython(const std::string& service, int port, const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv = {"/usr/bin/python3", kApps + "tier_service.py", std::to_string(port)};
    argv.insert(argv.end(), args.begin(), args.end());
    StartApp(service, argv);
  }
  // tier_service.js PORT DOWNSTREAM [args...]
  void StartNode(const std::string& service, int port, const std::string& downstream,
                 const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv = {"/usr/bin/node", kApps + "tier_service.js", std::to_string(port),
                                     downstream};
    argv.insert(argv.end(), args.begin(), args.end());
    StartApp(service, argv);
  }

  // nginx answering 200 "ok" on every path.
  void StartNginx(int port) {
    std::ofstream(dir_ + "/nginx.conf") << "worker_processes 1;\n"
                                           "daemon off;\n"
                                           "pid "
                                        << dir_
                                        << "/nginx.pid;\n"
                                           "error_log "
                                        << dir_
                                        << "/error.log;\n"
                                           "events { worker_connections 256; }\n"
                                           "http {\n"
                                           "  access_log off;\n"
                                           "  client_body_temp_path "
                                        << dir_
                                        << "/tmp;\n"
                                           "  keepalive_requests 1000;\n"
                                           "  server {\n"
                                           "    listen 127.0.0.1:"
                                        << port
                                        << ";\n"
                                           "    location / { return 200 \"ok\\n\"; }\n"
                                           "  }\n"
                                           "}\n";
    apps_.push_back(std::make_unique<Subprocess>());
    ASSERT_TRUE(apps_.back()->Start({"/usr/sbin/nginx", "-c", dir_ + "/nginx.conf", "-p", dir_}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10)))
        << apps_.back()->Stderr() << ReadFileOrEmpty(dir_ + "/error.log");
  }

  // The whole chain curl → front → node → back → nginx on fresh ports.
  void StartThreeTiers() {
    front_ = FreePort();
    node_ = FreePort();
    back_ = FreePort();
    nginx_ = FreePort();
    ASSERT_NO_FATAL_FAILURE(StartNginx(nginx_));
    ASSERT_NO_FATAL_FAILURE(StartPython("back", back_, {Url(nginx_)}));
    ASSERT_NO_FATAL_FAILURE(StartNode("node-tier", node_, Url(back_)));
    ASSERT_NO_FATAL_FAILURE(StartPython("front", front_, {Url(node_)}));
  }
  std::vector<Hop> ThreeTierHops() const {
    return {{"curl CLIENT", kClient, front_}, {"front SERVER", kServer, front_},
            {"front CLIENT", kClient, node_}, {"node SERVER", kServer, node_},
            {"node CLIENT", kClient, back_},  {"back SERVER", kServer, back_},
            {"back CLIENT", kClient, nginx_}, {"nginx SERVER", kServer, nginx_}};
  }

  std::vector<FlatSpan> WaitForSpans(const std::function<bool(const std::vector<FlatSpan>&)>& pred) {
    std::vector<FlatSpan> spans;
    WaitFor(
        [&] {
          spans = ReadSpans(agent_.SpansPath());
          return pred(spans);
        },
        kSpanDeadline);
    return spans;
  }

  KspanAgent agent_;
  std::string dir_;
  std::vector<std::unique_ptr<Subprocess>> apps_;
  int front_ = 0, node_ = 0, back_ = 0, nginx_ = 0;
};

// ---- A: three tiers, sequential then concurrent ---------------------------------------

TEST_F(TraceStitching, ThreeTiers) {
  ASSERT_NO_FATAL_FAILURE(StartThreeTiers());
  const auto hops = ThreeTierHops();
  constexpr int kRequests = 50;

  // Sequential: one request in flight at a time, so every parent is known exactly.
  std::vector<std::string> seq_paths;
  for (int i = 0; i < kRequests; ++i) {
    seq_paths.push_back("/r/" + std::to_string(i));
    auto r = RunCommand(CurlArgs({Url(front_, seq_paths.back())}), std::chrono::seconds(20));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.out, "200\n") << seq_paths.back();
  }
  auto spans = WaitForSpans([&](const auto& s) { return AllPresent(s, hops, seq_paths); });
  std::vector<std::string> problems;
  for (const auto& path : seq_paths) {
    auto chain = Resolve(spans, hops, path, &problems);
    if (std::find(chain.begin(), chain.end(), nullptr) != chain.end()) continue;
    if (!chain[0]->parent_span_id.empty())
      problems.push_back(path + ": curl CLIENT is not a root: " + Describe(chain[0]));
    for (size_t i = 1; i < chain.size(); ++i) {
      if (!IsChildOf(*chain[i], *chain[i - 1])) {
        problems.push_back(path + ": " + hops[i].label + " is not the child of " + hops[i - 1].label + ": " +
                           Describe(chain[i]) + " / parent wanted: " + Describe(chain[i - 1]));
      }
    }
    const std::string& trace = chain[0]->trace_id;
    const auto in_trace =
        std::count_if(spans.begin(), spans.end(), [&](const FlatSpan& s) { return s.trace_id == trace; });
    if (in_trace != static_cast<long>(hops.size())) {
      problems.push_back(path + ": trace " + trace + " holds " + std::to_string(in_trace) + " spans, want " +
                         std::to_string(hops.size()));
    }
  }
  EXPECT_TRUE(problems.empty()) << "sequential: " << problems.size() << " problems:" << FirstFew(problems);

  // Concurrent: 10 curl processes at once, 5 requests each on one keep-alive connection.
  // Python tiers answer each connection on its own thread (parents stay exact); node
  // has up to 10 requests in flight on one thread, where a CLIENT span may be ambiguous.
  std::vector<std::string> conc_paths;
  std::vector<std::vector<std::string>> cmds;
  for (int c = 0; c < 10; ++c) {
    std::vector<std::string> urls;
    for (int k = 0; k < kRequests / 10; ++k) {
      conc_paths.push_back("/c/" + std::to_string(c * (kRequests / 10) + k));
      urls.push_back(Url(front_, conc_paths.back()));
    }
    cmds.push_back(CurlArgs(urls));
  }
  for (const auto& r : RunConcurrently(cmds, std::chrono::seconds(60))) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.out, Repeat("200\n", kRequests / 10));
  }
  spans = WaitForSpans([&](const auto& s) { return AllPresent(s, hops, conc_paths); });

  problems = MixedTraces(spans, {front_, node_, back_, nginx_}, {conc_paths.begin(), conc_paths.end()});
  std::map<std::string, const FlatSpan*> node_servers;  // span id -> span
  for (const auto& s : spans) {
    if (s.kind == kServer && s.Int("server.port") == node_) node_servers[s.span_id] = &s;
  }
  int complete = 0, ambiguous = 0;
  constexpr size_t kNodeClient = 4;
  for (const auto& path : conc_paths) {
    auto chain = Resolve(spans, hops, path, &problems);
    if (std::find(chain.begin(), chain.end(), nullptr) != chain.end()) continue;
    bool exact = chain[0]->parent_span_id.empty();
    if (!exact) problems.push_back(path + ": curl CLIENT is not a root: " + Describe(chain[0]));
    for (size_t i = 1; i < chain.size(); ++i) {
      const FlatSpan& s = *chain[i];
      if (IsChildOf(s, *chain[i - 1])) {
        if (s.Bool(kAmbiguous))
          problems.push_back(path + ": has a parent yet is marked ambiguous: " + Describe(&s));
        continue;
      }
      exact = false;
      if (i == kNodeClient && s.parent_span_id.empty()) {
        // Ambiguous in node's event loop: a root of its own trace, linked to every
        // candidate node SERVER span, the right one among them.
        ++ambiguous;
        if (!s.Bool(kAmbiguous)) problems.push_back(path + ": parentless node CLIENT without " + kAmbiguous);
        if (!LinksTo(s, *chain[i - 1]) && s.links.size() < kMaxLinks) {
          problems.push_back(path + ": ambiguous node CLIENT lacks a link to its SERVER: " + Describe(&s));
        }
        if (s.links.size() > kMaxLinks)
          problems.push_back(path + ": more than " + std::to_string(kMaxLinks) + " links");
        if (s.trace_id == chain[i - 1]->trace_id)
          problems.push_back(path + ": ambiguous node CLIENT kept its SERVER's trace");
        for (const auto& l : s.links) {
          auto it = node_servers.find(l.span_id);
          if (it == node_servers.end() || it->second->trace_id != l.trace_id) {
            problems.push_back(path + ": ambiguous node CLIENT links to " + l.trace_id + "/" + l.span_id +
                               ", not a node SERVER span");
          }
        }
        continue;
      }
      problems.push_back(path + ": " + hops[i].label + " has a wrong parent: " + Describe(&s) +
                         " / parent wanted: " + Describe(chain[i - 1]));
    }
    complete += exact ? 1 : 0;
  }
  std::cout << "[ThreeTiers] concurrent: " << complete << "/" << kRequests << " trees complete, " << ambiguous
            << " node CLIENT spans ambiguous\n";
  RecordProperty("concurrent_complete_trees", complete);
  RecordProperty("concurrent_ambiguous_node_clients", ambiguous);
  EXPECT_TRUE(problems.empty()) << "concurrent: " << problems.size() << " problems:" << FirstFew(problems);
}

// ---- B: the client's own traceparent ------------------------------------------------

TEST_F(TraceStitching, ClientTraceparent) {
  ASSERT_NO_FATAL_FAILURE(StartThreeTiers());
  const auto hops = ThreeTierHops();
  const std::string trace = "0af7651916cd43dd8448eb211c80319c", parent = "b7ad6b7169203331";
  const std::string path = "/tp/1";
  auto r =
      RunCommand(CurlArgs({Url(front_, path)}, {"-H", "traceparent: 00-" + trace + "-" + parent + "-01"}),
                 std::chrono::seconds(20));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out, "200\n");

  auto spans = WaitForSpans([&](const auto& s) { return AllPresent(s, hops, {path}); });
  std::vector<std::string> problems;
  auto chain = Resolve(spans, hops, path, &problems);
  ASSERT_TRUE(problems.empty()) << FirstFew(problems);
  for (size_t i = 0; i < chain.size(); ++i) {
    SCOPED_TRACE(hops[i].label + ": " + Describe(chain[i]));
    EXPECT_EQ(chain[i]->trace_id, trace) << "every span of the tree is in the header's trace";
    EXPECT_EQ(chain[i]->flags & 0xffu, 0x01u) << "sampled, as the header says";
  }
  // curl saw the header it sent: its span continues the caller's context.
  EXPECT_EQ(chain[0]->parent_span_id, parent) << Describe(chain[0]);
  // front read the same header; it may name it as parent, or curl's span seen on this host.
  EXPECT_TRUE(chain[1]->parent_span_id == parent || chain[1]->parent_span_id == chain[0]->span_id)
      << Describe(chain[1]) << " / curl: " << Describe(chain[0]);
  for (size_t i = 2; i < chain.size(); ++i) {
    EXPECT_TRUE(IsChildOf(*chain[i], *chain[i - 1]))
        << hops[i].label << ": " << Describe(chain[i]) << " / parent wanted: " << Describe(chain[i - 1]);
  }
  const auto in_trace =
      std::count_if(spans.begin(), spans.end(), [&](const FlatSpan& s) { return s.trace_id == trace; });
  EXPECT_EQ(in_trace, static_cast<long>(hops.size()));
}

// ---- C: a child process exec'd while a request is served ------------------------------

TEST_F(TraceStitching, ExecChild) {
  const int front = FreePort(), nginx = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartNginx(nginx));
  const std::string target = Url(nginx, "/x");
  ASSERT_NO_FATAL_FAILURE(StartPython("exec-front", front, {"--exec-curl", target}));
  const std::string path = "/e/1";
  auto r = RunCommand(CurlArgs({Url(front, path)}), std::chrono::seconds(20));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out, "200\n");

  auto exec_spans = [&](const std::vector<FlatSpan>& all) {
    std::vector<const FlatSpan*> out;
    for (const auto& s : all) {
      if (s.kind == kInternal && s.name == "exec curl" &&
          s.Str("process.command_line").find(target) != std::string::npos) {
        out.push_back(&s);
      }
    }
    return out;
  };
  const std::vector<Hop> outer = {{"curl CLIENT", kClient, front}, {"front SERVER", kServer, front}};
  const std::vector<Hop> inner = {{"exec'd curl CLIENT", kClient, nginx}, {"nginx SERVER", kServer, nginx}};
  auto spans = WaitForSpans([&](const auto& s) {
    return AllPresent(s, outer, {path}) && AllPresent(s, inner, {"/x"}) && !exec_spans(s).empty();
  });
  std::vector<std::string> problems;
  auto o = Resolve(spans, outer, path, &problems);
  auto in = Resolve(spans, inner, "/x", &problems);
  auto ex = exec_spans(spans);
  if (ex.size() != 1) problems.push_back(std::to_string(ex.size()) + " 'exec curl' INTERNAL spans, want 1");
  ASSERT_TRUE(problems.empty()) << FirstFew(problems);
  const FlatSpan &curl = *o[0], &server = *o[1], &exec = *ex[0], &child_curl = *in[0], &ngx = *in[1];

  EXPECT_TRUE(IsChildOf(server, curl)) << Describe(&server) << " / " << Describe(&curl);
  EXPECT_TRUE(IsChildOf(exec, server)) << Describe(&exec) << " / " << Describe(&server);
  EXPECT_TRUE(IsChildOf(child_curl, exec)) << Describe(&child_curl) << " / " << Describe(&exec);
  EXPECT_TRUE(IsChildOf(ngx, child_curl)) << Describe(&ngx) << " / " << Describe(&child_curl);

  const std::string cmdline = exec.Str("process.command_line");
  EXPECT_NE(cmdline.find("curl"), std::string::npos) << cmdline;
  EXPECT_NE(cmdline.find("-o /dev/null"), std::string::npos) << cmdline;
  EXPECT_EQ(exec.Int("process.exit.code"), 0);
  // subprocess.run waits for curl: the process lived inside the request it served.
  EXPECT_GE(exec.start_ns, server.start_ns);
  EXPECT_LE(exec.end_ns, server.end_ns);
  EXPECT_GE(child_curl.start_ns, exec.start_ns);
  EXPECT_LE(child_curl.end_ns, exec.end_ns);
}

// ---- D: several requests in flight in node's single thread ----------------------------

TEST_F(TraceStitching, NodeSeveralInFlight) {
  const int node = FreePort(), back = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPython("slow-back", back, {"--delay-ms", "300"}));
  ASSERT_NO_FATAL_FAILURE(StartNode("node-tier", node, Url(back)));
  constexpr int kInFlight = 8;
  std::vector<std::string> paths;
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < kInFlight; ++i) {
    paths.push_back("/d/" + std::to_string(i));
    cmds.push_back(CurlArgs({Url(node, paths.back())}));
  }
  for (const auto& r : RunConcurrently(cmds, std::chrono::seconds(30))) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.out, "200\n");
  }
  const std::vector<Hop> hops = {{"curl CLIENT", kClient, node},
                                 {"node SERVER", kServer, node},
                                 {"node CLIENT", kClient, back},
                                 {"back SERVER", kServer, back}};
  auto spans = WaitForSpans([&](const auto& s) { return AllPresent(s, hops, paths); });

  std::vector<std::string> problems = MixedTraces(spans, {node, back}, {paths.begin(), paths.end()});
  std::set<std::string> node_server_ids;
  for (const auto& s : spans) {
    if (s.kind == kServer && s.Int("server.port") == node) node_server_ids.insert(s.span_id);
  }
  int ambiguous = 0, parented = 0;
  for (const auto& path : paths) {
    auto chain = Resolve(spans, hops, path, &problems);
    if (std::find(chain.begin(), chain.end(), nullptr) != chain.end()) continue;
    const FlatSpan &server = *chain[1], &client = *chain[2], &down = *chain[3];
    if (!client.parent_span_id.empty()) {
      ++parented;
      if (!IsChildOf(client, server)) {
        problems.push_back(path + ": node CLIENT has a wrong parent: " + Describe(&client) +
                           " / parent wanted: " + Describe(&server));
      }
      if (client.Bool(kAmbiguous)) problems.push_back(path + ": has a parent yet is marked ambiguous");
    } else {
      ++ambiguous;
      if (!client.Bool(kAmbiguous))
        problems.push_back(path + ": parentless node CLIENT without " + kAmbiguous);
      if (client.links.empty()) problems.push_back(path + ": ambiguous node CLIENT has no links");
      // 8 in flight fit under the link cap: the right SERVER span is always among them.
      if (!LinksTo(client, server))
        problems.push_back(path + ": ambiguous node CLIENT lacks a link to its SERVER");
      for (const auto& l : client.links) {
        if (!node_server_ids.count(l.span_id))
          problems.push_back(path + ": link to " + l.span_id + ", not a node SERVER");
      }
    }
    if (!IsChildOf(down, client)) {
      problems.push_back(path + ": back SERVER is not the child of node CLIENT: " + Describe(&down) + " / " +
                         Describe(&client));
    }
  }
  std::cout << "[NodeSeveralInFlight] node CLIENT spans: " << parented << " parented, " << ambiguous
            << " ambiguous\n";
  RecordProperty("ambiguous_node_clients", ambiguous);
  EXPECT_EQ(parented + ambiguous, kInFlight);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems:" << FirstFew(problems);
}

// ---- E: a downstream call that outlives the request that started it --------------------

TEST_F(TraceStitching, FireAndForget) {
  const int node = FreePort(), back = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPython("slow-back", back, {"--delay-ms", "300"}));
  ASSERT_NO_FATAL_FAILURE(StartNode("node-ff", node, Url(back), {"--fire-and-forget"}));
  std::vector<std::string> paths;
  for (int i = 0; i < 3; ++i) {
    paths.push_back("/f/" + std::to_string(i));
    auto r = RunCommand(CurlArgs({Url(node, paths.back())}), std::chrono::seconds(20));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.out, "200\n");
  }
  const std::vector<Hop> hops = {
      {"node SERVER", kServer, node}, {"node CLIENT", kClient, back}, {"back SERVER", kServer, back}};
  auto spans = WaitForSpans([&](const auto& s) { return AllPresent(s, hops, paths); });
  for (const auto& path : paths) {
    SCOPED_TRACE(path);
    std::vector<std::string> problems;
    auto chain = Resolve(spans, hops, path, &problems);
    ASSERT_TRUE(problems.empty()) << FirstFew(problems);
    const FlatSpan &server = *chain[0], &client = *chain[1], &down = *chain[2];
    EXPECT_LT(server.end_ns, client.end_ns) << "the call outlived the response";
    EXPECT_TRUE(client.parent_span_id.empty()) << Describe(&client);
    EXPECT_NE(client.trace_id, server.trace_id) << "a trace of its own";
    EXPECT_TRUE(LinksTo(client, server)) << Describe(&client) << " / " << Describe(&server);
    EXPECT_TRUE(IsChildOf(down, client)) << Describe(&down) << " / " << Describe(&client);
  }
}

// Clients that gave up before their answer was seen: a client that read 12 bytes of the
// answer and closed, and curl timing out on a slow server. With no answer seen, their spans
// end with their requests, before the server even read them; the server's span is still
// theirs (same-host pairing, docs/tracing.md). The quick one was a root of its own before:
// its client's span was over by the time the server's was decided. Each span lasts as long
// as its side waited: curl's until it gave up, the slow server's until it wrote its answer.
TEST_F(TraceStitching, AClientThatGaveUpIsStillTheServersParent) {
  const int quick = FreePort(), slow = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartPython("quick-gave-up", quick));
  ASSERT_NO_FATAL_FAILURE(StartPython("slow-gave-up", slow, {"--delay-ms", "1500"}));
  const std::vector<std::string> paths = {"/gave-up/partial", "/gave-up/timeout"};
  const CommandResult partial =
      RunCommand({"/usr/bin/python3", "-c",
                  "import socket, sys\n"
                  "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)\n"
                  "s.sendall(b'GET ' + sys.argv[2].encode() + b' HTTP/1.1\\r\\nHost: 127.0.0.1:' + "
                  "sys.argv[1].encode() + b'\\r\\n\\r\\n')\n"
                  "print(s.recv(12).decode())\n",
                  std::to_string(quick), paths[0]},
                 std::chrono::seconds(20));
  ASSERT_EQ(partial.exit_code, 0) << partial.err;
  const CommandResult timed_out = RunCommand(
      {"curl", "-sS", "--max-time", "0.5", "-o", "/dev/null", Url(slow, paths[1])}, std::chrono::seconds(20));
  EXPECT_EQ(timed_out.exit_code, 28) << "curl did not time out: " << timed_out.err;
  const std::map<std::string, int> port_of = {{paths[0], quick}, {paths[1], slow}};
  std::vector<FlatSpan> spans = WaitForSpans([&](const auto& all) {
    for (const auto& [path, port] : port_of) {
      if (!AllPresent(all, {{"client", kClient, port}, {"server", kServer, port}}, {path})) return false;
    }
    return true;
  });
  for (const auto& [path, port] : port_of) {
    SCOPED_TRACE(path);
    std::vector<std::string> problems;
    auto chain = Resolve(spans, {{"client", kClient, port}, {"server", kServer, port}}, path, &problems);
    ASSERT_TRUE(problems.empty()) << FirstFew(problems);
    const FlatSpan &client = *chain[0], &server = *chain[1];
    EXPECT_TRUE(IsChildOf(server, client)) << Describe(&server) << " / " << Describe(&client);
    if (port == slow) {
      EXPECT_GE(client.end_ns - client.start_ns, 450'000'000u) << "curl waited 0.5 s";
      EXPECT_GE(server.end_ns - server.start_ns, 1'400'000'000u) << "the server answered after 1.5 s";
    }
  }
}

// ---- F: two network namespaces joined by a veth pair -----------------------------------

// Two network namespaces of this test, a veth pair between them, and the processes run
// inside: the destructor kills the processes first (a namespace with a process left in it
// outlives `ip netns del`), then deletes both namespaces, which also destroys the veth.
struct NetnsPair {
  std::string a, b;  // namespace names
  std::vector<std::unique_ptr<Subprocess>> procs;
  std::vector<std::string> created;  // the namespaces actually added
  ~NetnsPair() {
    procs.clear();  // each Subprocess kills its whole process group
    for (const auto& ns : created) {
      auto r = RunCommand({"ip", "netns", "del", ns}, std::chrono::seconds(10));
      if (r.exit_code != 0) std::cerr << "ip netns del " << ns << " failed: " << r.err << "\n";
    }
  }
};

TEST_F(TraceStitching, TwoNetworkNamespacesOneTrace) {
  const auto kIpTimeout = std::chrono::seconds(10);
  const std::string pid = std::to_string(getpid()), short_pid = std::to_string(getpid() % 100000);
  NetnsPair net;
  net.a = "ks-a-" + pid;
  net.b = "ks-b-" + pid;
  const std::string veth_a = "ksa" + short_pid, veth_b = "ksb" + short_pid;  // <= 15 chars
  const std::string addr_a = "10.213.0.1", addr_b = "10.213.0.2";

  auto ip = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv, kIpTimeout);
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.err;
    return r.exit_code == 0;
  };
  for (const auto& ns : {net.a, net.b}) {
    ASSERT_TRUE(ip({"netns", "add", ns}));
    net.created.push_back(ns);
  }
  // Both ends are created inside the namespaces: nothing ever appears in the host's.
  ASSERT_TRUE(
      ip({"link", "add", veth_a, "netns", net.a, "type", "veth", "peer", "name", veth_b, "netns", net.b}));
  ASSERT_TRUE(ip({"-n", net.a, "addr", "add", addr_a + "/24", "dev", veth_a}));
  ASSERT_TRUE(ip({"-n", net.b, "addr", "add", addr_b + "/24", "dev", veth_b}));
  ASSERT_TRUE(ip({"-n", net.a, "link", "set", "lo", "up"}));
  ASSERT_TRUE(ip({"-n", net.b, "link", "set", "lo", "up"}));
  ASSERT_TRUE(ip({"-n", net.a, "link", "set", veth_a, "up"}));
  ASSERT_TRUE(ip({"-n", net.b, "link", "set", veth_b, "up"}));

  // tier_service.py only binds 127.0.0.1: ns B serves files with python's http.server on
  // its veth address, and ns A just runs curl.
  constexpr int kRequests = 5;
  const std::string www = dir_ + "/www";
  ASSERT_TRUE(RunCommand({"mkdir", "-p", www}, kIpTimeout).exit_code == 0);
  for (int i = 0; i < kRequests; ++i)
    std::ofstream(www + "/file" + std::to_string(i) + ".txt") << "file " << i << "\n";
  const int port = FreePort();  // any port is free in a fresh namespace
  const std::string port_s = std::to_string(port);
  net.procs.push_back(std::make_unique<Subprocess>());
  Subprocess& server = *net.procs.back();
  ASSERT_TRUE(server.Start({"ip", "netns", "exec", net.b, "/usr/bin/python3", "-m", "http.server", port_s,
                            "--bind", addr_b, "--directory", www},
                           {{"OTEL_SERVICE_NAME", "netns-b-server"}}));
  // Listening in ns B (WaitForPort would probe the test's own namespace); ss opens no
  // connection, so the probe makes no span.
  const bool listening = WaitFor(
      [&] {
        if (!server.Running()) return false;
        auto r =
            RunCommand({"ip", "netns", "exec", net.b, "ss", "-Hltn", "sport", "=", ":" + port_s}, kIpTimeout);
        return r.exit_code == 0 && r.out.find(addr_b + ":" + port_s) != std::string::npos;
      },
      std::chrono::seconds(10));
  ASSERT_TRUE(listening && server.Running()) << "http.server in " << net.b << " did not start:\n"
                                             << server.Stderr();

  std::vector<std::string> paths;
  for (int i = 0; i < kRequests; ++i) {
    paths.push_back("/file" + std::to_string(i) + ".txt");
    auto r =
        RunCommand({"ip", "netns", "exec", net.a, "curl", "-sS", "--max-time", "10", "-w", "%{http_code}\\n",
                    "-o", "/dev/null", "http://" + addr_b + ":" + port_s + paths.back()},
                   std::chrono::seconds(20));
    ASSERT_EQ(r.exit_code, 0) << paths.back() << ": " << r.err;
    ASSERT_EQ(r.out, "200\n") << paths.back();
  }

  const std::vector<Hop> hops = {{"curl CLIENT (ns A)", kClient, port},
                                 {"python SERVER (ns B)", kServer, port}};
  auto spans = WaitForSpans([&](const auto& s) { return AllPresent(s, hops, paths); });
  std::vector<std::string> problems = MixedTraces(spans, {port}, {paths.begin(), paths.end()});
  for (const auto& path : paths) {
    auto pair = Resolve(spans, hops, path, &problems);
    if (!pair[0] || !pair[1]) continue;
    const FlatSpan &client = *pair[0], &srv = *pair[1];
    if (client.Str("server.address") != addr_b) {
      problems.push_back(path + ": curl CLIENT server.address '" + client.Str("server.address") + "', want " +
                         addr_b);
    }
    if (!client.parent_span_id.empty())
      problems.push_back(path + ": curl CLIENT is not a root: " + Describe(&client));
    if (srv.trace_id != client.trace_id) {
      problems.push_back(path + ": two traces: " + Describe(&client) + " / " + Describe(&srv));
    } else if (srv.parent_span_id != client.span_id) {
      problems.push_back(path + ": python SERVER is not the child of curl CLIENT: " + Describe(&srv) +
                         " / parent wanted: " + Describe(&client));
    }
  }
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems:" << FirstFew(problems);
}

}  // namespace
}  // namespace kspan::testing
