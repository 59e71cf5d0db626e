// Trace context across hosts with nothing instrumented (issue 23, acceptance 1): two
// network namespaces joined by a veth pair stand for two hosts, each with its own kspan
// (run in that namespace: `--include netns=self` traces only its processes, so nothing is
// paired on one host, and `--carrier tcp-option --carrier-netns self` writes and reads the
// TCP-option carrier there):
//
//   namespace A                       namespace B
//   curl ── CLIENT ─────────────────▶ carrier_forward.py (python http.server) SERVER
//                                        │ same handling thread
//   nginx ◀── SERVER ──────────────── CLIENT (urllib)
//
// Every request must come out as one trace across both agents' output with the right
// parents: curl CLIENT (root) → python SERVER → python CLIENT → nginx SERVER, 100 of 100,
// in plaintext and (acceptance 2) with both hops HTTPS. Spans are found by (kind,
// server.port, path): each request has its own path, and the middle service appends it
// to its call, so nothing here trusts the ids under test. The last test (acceptance 3)
// sends a fuzzed mix of requests through nginx as a reverse proxy and compares bytes.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kServer = 2, kClient = 3;
constexpr int kRequests = 100;
const std::string kApps = std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";

std::string Describe(const FlatSpan* s) {
  if (!s) return "(none)";
  std::ostringstream o;
  o << "kind=" << s->kind << " port=" << s->Int("server.port") << " path=" << s->Path()
    << " trace=" << s->trace_id << " span=" << s->span_id
    << " parent=" << (s->parent_span_id.empty() ? "-" : s->parent_span_id);
  return o.str();
}

// Two namespaces and a veth pair; the processes inside die first (a namespace with a
// process left in it outlives `ip netns del`).
struct Namespaces {
  std::string a, b;
  std::vector<std::string> created;
  std::vector<std::unique_ptr<Subprocess>> procs;
  ~Namespaces() {
    procs.clear();
    for (const auto& ns : created) RunCommand({"ip", "netns", "del", ns}, 10s);
  }
};

class WireContextTest : public ::testing::Test {
 protected:
  bool Ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv, 10s);
    EXPECT_EQ(r.exit_code, 0) << argv[1] << " " << argv[2] << ": " << r.err;
    return r.exit_code == 0;
  }
  void SetUp() override {
    const std::string id = std::to_string(getpid() % 100000);
    net_.a = "kswA" + id;
    net_.b = "kswB" + id;
    for (const auto& ns : {net_.a, net_.b}) {
      ASSERT_TRUE(Ip({"netns", "add", ns}));
      net_.created.push_back(ns);
    }
    const std::string va = "kwA" + id, vb = "kwB" + id;
    ASSERT_TRUE(
        Ip({"link", "add", va, "netns", net_.a, "type", "veth", "peer", "name", vb, "netns", net_.b}));
    ASSERT_TRUE(Ip({"-n", net_.a, "addr", "add", addr_a_ + "/24", "dev", va}));
    ASSERT_TRUE(Ip({"-n", net_.b, "addr", "add", addr_b_ + "/24", "dev", vb}));
    for (const auto& [ns, dev] : {std::pair{net_.a, va}, std::pair{net_.b, vb}}) {
      ASSERT_TRUE(Ip({"-n", ns, "link", "set", dev, "up"}));
      ASSERT_TRUE(Ip({"-n", ns, "link", "set", "lo", "up"}));
    }
    dir_ = MakeTempDir("kspan-wire-");
  }

  // A kspan inside namespace `ns` that traces only that namespace's processes.
  void StartAgent(KspanAgent* agent, const std::string& ns) {
    agent->set_launcher({"nsenter", "--net=/var/run/netns/" + ns});
    ASSERT_TRUE(agent->Start(
        {"--include", "netns=self", "--carrier", "tcp-option", "--carrier-netns", "self", "--ui", "false"}))
        << "kspan in " << ns << " did not become ready:\n"
        << agent->Logs();
    EXPECT_NE(agent->Logs().find("\"active\":\"tcp-option\""), std::string::npos) << agent->Logs();
  }

  Subprocess& Proc() {
    net_.procs.push_back(std::make_unique<Subprocess>());
    return *net_.procs.back();
  }

  // Listening in `ns` (ss opens no connection, so the probe makes no span).
  bool Listening(const std::string& ns, const std::string& addr, int port) {
    return WaitFor(
        [&] {
          auto r = RunCommand(
              {"ip", "netns", "exec", ns, "ss", "-Hltn", "sport", "=", ":" + std::to_string(port)}, 10s);
          return r.exit_code == 0 && r.out.find(addr + ":" + std::to_string(port)) != std::string::npos;
        },
        10s);
  }

  void RunChain(bool tls);

  // 100 requests from curl in A to `base` in B: 20 curls of one request, 4 of 20 on one
  // keep-alive connection; `path(run, i)` names request i of curl run `run` (0-19 single,
  // 20-23 keep-alive). Returns the paths in order.
  std::vector<std::string> Curl100(const std::string& base, bool tls,
                                   const std::function<std::string(int run, int i)>& path);

  // The four spans of one request: curl's CLIENT (A), the middle's SERVER and CLIENT (B),
  // the callee's SERVER (A).
  struct Chain {
    const FlatSpan *curl = nullptr, *server = nullptr, *call = nullptr, *callee = nullptr;
  };
  // Whether each request's chain is whole with the right parents (curl a root, each the
  // next one's parent, one trace); `problems` says what is not, and names traces that mix
  // requests (those requests do not count as whole).
  std::map<std::string, bool> Judge(const std::vector<std::string>& paths,
                                    std::map<std::string, Chain>& chains, const std::string& callee,
                                    std::vector<std::string>* problems);

  Namespaces net_;
  std::string dir_;
  const std::string addr_a_ = "10.214.0.1", addr_b_ = "10.214.0.2";
};

std::vector<std::string> WireContextTest::Curl100(const std::string& base, bool tls,
                                                  const std::function<std::string(int run, int i)>& path) {
  std::vector<std::string> paths;
  for (int run = 0; run < 24; ++run) {
    std::vector<std::string> argv = {"ip",  "netns",      "exec", net_.a, "curl",
                                     "-sS", "--max-time", "10",   "-w",   "%{http_code}\\n"};
    if (tls) argv.push_back("-k");
    const int n = run < 20 ? 1 : 20;
    for (int i = 0; i < n; ++i) {
      paths.push_back(path(run, i));
      argv.insert(argv.end(), {"-o", "/dev/null", base + paths.back()});
    }
    auto r = RunCommand(argv, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string want;
    for (int i = 0; i < n; ++i) want += "200\n";
    EXPECT_EQ(r.out, want) << paths.back();
    if (r.exit_code != 0 || r.out != want) return {};
  }
  return paths;
}

std::map<std::string, bool> WireContextTest::Judge(const std::vector<std::string>& paths,
                                                   std::map<std::string, Chain>& chains,
                                                   const std::string& callee,
                                                   std::vector<std::string>* problems) {
  std::map<std::string, bool> ok;
  std::map<std::string, std::set<std::string>> paths_of_trace;
  for (const auto& p : paths) {
    const Chain& c = chains[p];
    ok[p] = false;
    if (!c.curl || !c.server || !c.call || !c.callee) {
      problems->push_back(p + ": missing spans: curl " + Describe(c.curl) + " | server " +
                          Describe(c.server) + " | call " + Describe(c.call) + " | " + callee + " " +
                          Describe(c.callee));
      continue;
    }
    for (const FlatSpan* s : {c.curl, c.server, c.call, c.callee}) paths_of_trace[s->trace_id].insert(p);
    std::vector<std::string> wrong;
    if (!c.curl->parent_span_id.empty()) wrong.push_back("curl CLIENT is not a root");
    if (c.server->trace_id != c.curl->trace_id || c.server->parent_span_id != c.curl->span_id)
      wrong.push_back("python SERVER is not curl's child");
    if (c.call->trace_id != c.server->trace_id || c.call->parent_span_id != c.server->span_id)
      wrong.push_back("python CLIENT is not the SERVER's child");
    if (c.callee->trace_id != c.call->trace_id || c.callee->parent_span_id != c.call->span_id)
      wrong.push_back(callee + " SERVER is not python CLIENT's child");
    if (wrong.empty()) {
      ok[p] = true;
    } else {
      std::string msg = p + ":";
      for (const auto& w : wrong) msg += " " + w + ";";
      problems->push_back(msg + "\n    curl " + Describe(c.curl) + "\n    server " + Describe(c.server) +
                          "\n    call " + Describe(c.call) + "\n    " + callee + " " + Describe(c.callee));
    }
  }
  for (const auto& [trace, ps] : paths_of_trace) {
    if (ps.size() < 2) continue;
    problems->push_back("trace " + trace + " mixes " + std::to_string(ps.size()) + " requests");
    for (const auto& p : ps) ok[p] = false;
  }
  return ok;
}

// curl (A) -> carrier_forward.py (B) -> nginx (A), 100 requests, every one a trace of its
// own with the right parents; with `tls`, both hops are HTTPS.
void WireContextTest::RunChain(bool tls) {
  KspanAgent agent_a, agent_b;
  StartAgent(&agent_a, net_.a);
  StartAgent(&agent_b, net_.b);

  const int nginx_port = 18080 + getpid() % 1000, py_port = nginx_port + 1000;
  if (tls) {
    const std::string error = MakeTestCertificate(dir_);
    ASSERT_TRUE(error.empty()) << error;
  }
  const std::string ssl = tls ? " ssl;\n    ssl_certificate " + dir_ +
                                    "/cert.pem;\n    ssl_certificate_key " + dir_ + "/key.pem;\n"
                              : ";\n";
  const std::string scheme = tls ? "https://" : "http://";
  std::ofstream(dir_ + "/nginx.conf") << "worker_processes 1;\ndaemon off;\npid " << dir_ << "/nginx.pid;\n"
                                      << "error_log " << dir_ << "/error.log;\n"
                                      << "events { worker_connections 256; }\nhttp {\n  access_log off;\n"
                                      << "  client_body_temp_path " << dir_ << "/tmp;\n"
                                      << "  server {\n    listen " << addr_a_ << ":" << nginx_port << ssl
                                      << "    location / { return 200 \"ok\\n\"; }\n  }\n}\n";
  Subprocess& nginx = Proc();
  ASSERT_TRUE(nginx.Start(
      {"ip", "netns", "exec", net_.a, "/usr/sbin/nginx", "-c", dir_ + "/nginx.conf", "-p", dir_}));
  ASSERT_TRUE(Listening(net_.a, addr_a_, nginx_port))
      << nginx.Stderr() << ReadFileOrEmpty(dir_ + "/error.log");
  Subprocess& middle = Proc();
  std::vector<std::string> middle_argv = {"ip",
                                          "netns",
                                          "exec",
                                          net_.b,
                                          "/usr/bin/python3",
                                          kApps + "carrier_forward.py",
                                          addr_b_,
                                          std::to_string(py_port),
                                          scheme + addr_a_ + ":" + std::to_string(nginx_port),
                                          "append"};
  if (tls) middle_argv.insert(middle_argv.end(), {"tls", dir_ + "/cert.pem", dir_ + "/key.pem"});
  ASSERT_TRUE(middle.Start(middle_argv, {{"OTEL_SERVICE_NAME", "middle"}}));
  ASSERT_TRUE(Listening(net_.b, addr_b_, py_port)) << middle.Stderr();

  const std::string base = scheme + addr_b_ + ":" + std::to_string(py_port);
  const std::vector<std::string> paths = Curl100(base, tls, [](int run, int i) {
    return run < 20 ? "/one/" + std::to_string(run)
                    : "/ka" + std::to_string(run - 20) + "/" + std::to_string(i);
  });
  ASSERT_EQ(paths.size(), static_cast<size_t>(kRequests));

  std::vector<FlatSpan> spans_a, spans_b;
  std::map<std::string, Chain> chains;
  auto collect = [&] {
    spans_a = ReadSpans(agent_a.SpansPath());
    spans_b = ReadSpans(agent_b.SpansPath());
    chains.clear();
    for (const auto& s : spans_a) {
      if (s.kind == kClient && s.Int("server.port") == py_port) chains[s.Path()].curl = &s;
      if (s.kind == kServer && s.Int("server.port") == nginx_port) chains[s.Path()].callee = &s;
    }
    for (const auto& s : spans_b) {
      if (s.kind == kServer && s.Int("server.port") == py_port) chains[s.Path()].server = &s;
      if (s.kind == kClient && s.Int("server.port") == nginx_port) chains[s.Path()].call = &s;
    }
    for (const auto& p : paths) {
      const Chain& c = chains[p];
      if (!c.curl || !c.server || !c.call || !c.callee) return false;
    }
    return true;
  };
  WaitFor(collect, 30s);
  collect();

  std::vector<std::string> problems;
  const std::map<std::string, bool> ok = Judge(paths, chains, "nginx", &problems);
  int whole = 0;
  for (const auto& [p, good] : ok) {
    if (!good) continue;
    const Chain& c = chains[p];
    if (tls && (c.server->Str("url.scheme") != "https" || c.callee->Str("url.scheme") != "https")) {
      problems.push_back(p + ": not HTTPS");
      continue;
    }
    ++whole;
  }
  std::string first;
  for (size_t i = 0; i < problems.size() && i < 10; ++i) first += "\n  " + problems[i];
  EXPECT_EQ(whole, kRequests) << problems.size() << " problems:" << first;

  ExpectCleanStop(agent_a);
  ExpectCleanStop(agent_b);
  // Each agent wrote and read the options, and its metrics say so.
  for (KspanAgent* agent : {&agent_a, &agent_b}) {
    EXPECT_GE(agent->StoppedCounter("kspan_carrier_options_total{outcome=\"written\"}"), kRequests)
        << agent->Logs();
    EXPECT_GE(agent->StoppedCounter("kspan_carrier_options_total{outcome=\"parsed\"}"), kRequests);
    EXPECT_EQ(agent->StoppedCounter("kspan_carrier_options_total{outcome=\"rejected\"}"), 0);
    EXPECT_GE(agent->StoppedCounter("kspan_stitch_parents_total{rule=\"wire\"}"), kRequests);
  }
}

TEST_F(WireContextTest, CurlPythonNginxAcrossTwoAgentsOneTracePerRequest) {
  RunChain(false);
}

// Acceptance 2, the TLS hop: the same chain over HTTPS on both hops (curl and python's ssl
// as clients, python's ssl and nginx as servers, all the system libssl): the TCP option
// rides under the ciphertext, and each request takes the context in force for it.
TEST_F(WireContextTest, TlsCurlPythonNginxAcrossTwoAgentsOneTracePerRequest) {
  RunChain(true);
}

// Acceptance 2, the PostgreSQL hop: curl (A) -> carrier_forward.py (B), which runs one query
// per request with psycopg2 -> PostgreSQL 15 (A, a cluster of its own, SCRAM logins):
//
//   curl CLIENT (root) -> python SERVER -> python db CLIENT -> postgres SERVER
//
// Half the requests (paths under /new/) open a connection of their own (startup, SCRAM,
// one query, Terminate); the other half share one psycopg2 connection kept open across
// requests and handling threads. The query names its request in a column alias
// (`SELECT 1 AS r_<path>`), which the sanitised db.query.text keeps.
TEST_F(WireContextTest, CurlPythonPostgresAcrossTwoAgentsOneTracePerRequest) {
  KspanAgent agent_a, agent_b;
  StartAgent(&agent_a, net_.a);
  StartAgent(&agent_b, net_.b);
  const int pg_port = 15432 + getpid() % 1000, py_port = pg_port + 1000;
  const std::string password = "wire-pg-" + std::to_string(getpid());
  const char* bin = "/usr/lib/postgresql/15/bin/";

  // The cluster, owned by the postgres user, in a directory of its own; B's address may log
  // in with the password.
  const std::string pg_dir = MakeTempDir("kspan-wire-pg-");
  ASSERT_FALSE(pg_dir.empty());
  struct Cleanup {
    std::string dir;
    ~Cleanup() { RunCommand({"rm", "-rf", dir}, 20s); }
  } cleanup{pg_dir};
  std::ofstream(pg_dir + "/pw") << password << "\n";
  ASSERT_EQ(RunCommand({"chown", "-R", "postgres:postgres", pg_dir}, 10s).exit_code, 0);
  const CommandResult init = RunCommand(
      {"runuser", "-u", "postgres", "--", std::string(bin) + "initdb", "-D", pg_dir + "/data", "-U",
       "postgres", "--pwfile=" + pg_dir + "/pw", "--auth-host=scram-sha-256", "--auth-local=trust"},
      120s);
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  std::ofstream(pg_dir + "/data/pg_hba.conf", std::ios::app)
      << "host all all " << addr_b_ << "/32 scram-sha-256\n";
  Subprocess& pg = Proc();
  ASSERT_TRUE(pg.Start({"ip", "netns", "exec", net_.a, "runuser", "-u", "postgres", "--",
                        std::string(bin) + "postgres", "-D", pg_dir + "/data", "-p", std::to_string(pg_port),
                        "-k", pg_dir, "-c", "listen_addresses=" + addr_a_, "-c", "fsync=off"}));
  ASSERT_TRUE(Listening(net_.a, addr_a_, pg_port)) << pg.Stderr();

  // The password only in the environment, never in an argv (kspan reports command lines).
  Subprocess& middle = Proc();
  ASSERT_TRUE(middle.Start({"ip", "netns", "exec", net_.b, "/usr/bin/python3", kApps + "carrier_forward.py",
                            addr_b_, std::to_string(py_port),
                            "postgresql://postgres@" + addr_a_ + ":" + std::to_string(pg_port) + "/postgres"},
                           {{"OTEL_SERVICE_NAME", "middle"}, {"PGPASSWORD", password}}));
  ASSERT_TRUE(Listening(net_.b, addr_b_, py_port)) << middle.Stderr();

  // Half the requests on a new database connection each, half on the kept one, on single
  // and keep-alive curls alike.
  const std::vector<std::string> paths =
      Curl100("http://" + addr_b_ + ":" + std::to_string(py_port), false, [](int run, int i) {
        const std::string mode = (run + i) % 2 == 0 ? "/new/" : "/keep/";
        return mode + (run < 20 ? "one" + std::to_string(run)
                                : "ka" + std::to_string(run - 20) + "_" + std::to_string(i));
      });
  ASSERT_EQ(paths.size(), static_cast<size_t>(kRequests)) << middle.Stderr();

  // A request's name in its query's column alias: "SELECT ? AS r_new_one4".
  auto tag_of_path = [](std::string p) {
    for (char& c : p)
      if (!isalnum(static_cast<unsigned char>(c))) c = '_';
    return "r_" + p;
  };
  auto tag_of_query = [](const std::string& q) {
    const size_t at = q.find(" AS r_");
    if (at == std::string::npos) return std::string();
    size_t end = at + 4;
    while (end < q.size() && (isalnum(static_cast<unsigned char>(q[end])) || q[end] == '_')) ++end;
    return q.substr(at + 4, end - at - 4);
  };
  std::map<std::string, std::string> path_of_tag;
  for (const auto& p : paths) path_of_tag[tag_of_path(p)] = p;

  std::vector<FlatSpan> spans_a, spans_b;
  std::map<std::string, Chain> chains;
  auto collect = [&] {
    spans_a = ReadSpans(agent_a.SpansPath());
    spans_b = ReadSpans(agent_b.SpansPath());
    chains.clear();
    auto db_path = [&](const FlatSpan& s) -> std::string {
      if (s.Str("db.system.name") != "postgresql" || s.Int("server.port") != pg_port) return "";
      auto it = path_of_tag.find(tag_of_query(s.Str("db.query.text")));
      return it == path_of_tag.end() ? "" : it->second;
    };
    for (const auto& s : spans_a) {
      if (s.kind == kClient && s.Int("server.port") == py_port) chains[s.Path()].curl = &s;
      if (const std::string p = db_path(s); s.kind == kServer && !p.empty()) chains[p].callee = &s;
    }
    for (const auto& s : spans_b) {
      if (s.kind == kServer && s.Int("server.port") == py_port) chains[s.Path()].server = &s;
      if (const std::string p = db_path(s); s.kind == kClient && !p.empty()) chains[p].call = &s;
    }
    for (const auto& p : paths) {
      const Chain& c = chains[p];
      if (!c.curl || !c.server || !c.call || !c.callee) return false;
    }
    return true;
  };
  const auto wait_start = std::chrono::steady_clock::now();
  const bool before_stop = WaitFor(collect, 30s);
  std::cout << "every chain exported while the agents ran: " << (before_stop ? "yes" : "no") << ", after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                     wait_start)
                   .count()
            << " ms\n";
  ExpectCleanStop(agent_a);
  ExpectCleanStop(agent_b);
  collect();

  std::vector<std::string> problems;
  const std::map<std::string, bool> ok = Judge(paths, chains, "postgres", &problems);
  int whole_new = 0, whole_keep = 0, n_new = 0;
  for (const auto& [p, good] : ok) {
    const bool fresh = p.rfind("/new/", 0) == 0;
    n_new += fresh;
    if (!good) continue;
    const FlatSpan& db = *chains[p].callee;
    // The SERVER span: its own end and the caller, the database, the sanitised query.
    std::vector<std::string> wrong;
    if (db.Str("server.address") != addr_a_ || db.Int("client.port") <= 0 ||
        db.Str("network.peer.address") != addr_b_ || db.Str("client.address") != addr_b_)
      wrong.push_back("addresses");
    if (db.Str("db.namespace") != "postgres" || db.Str("db.operation.name") != "SELECT" ||
        db.Str("db.query.text") != "SELECT ? AS " + tag_of_path(p))
      wrong.push_back("db attributes: " + db.Str("db.namespace") + " " + db.Str("db.operation.name") + " " +
                      db.Str("db.query.text"));
    if (db.ResourceStr("process.executable.name") != "postgres")
      wrong.push_back("process " + db.ResourceStr("process.executable.name"));
    if (!wrong.empty()) {
      problems.push_back(p + ": postgres SERVER " + wrong[0]);
      continue;
    }
    ++(fresh ? whole_new : whole_keep);
  }
  std::cout << "postgres hop: " << whole_new << " of " << n_new << " whole on a new connection each, "
            << whole_keep << " of " << kRequests - n_new << " on the kept connection\n";
  std::string first;
  for (size_t i = 0; i < problems.size() && i < 10; ++i) first += "\n  " + problems[i];
  EXPECT_EQ(whole_new + whole_keep, kRequests) << problems.size() << " problems:" << first;
  EXPECT_EQ(n_new, kRequests / 2);

  // The password in no span and no log; every context read valid; the parsers lost nothing.
  const std::string text = ReadFileOrEmpty(agent_a.SpansPath()) + ReadFileOrEmpty(agent_b.SpansPath());
  EXPECT_EQ(text.find(password), std::string::npos);
  for (KspanAgent* agent : {&agent_a, &agent_b}) {
    std::cout << (agent == &agent_a ? "namespace A" : "namespace B");
    for (const char* outcome : {"written", "parsed", "no_space", "too_big"})
      std::cout << " options " << outcome << "="
                << agent->StoppedCounter("kspan_carrier_options_total{outcome=\"" + std::string(outcome) +
                                         "\"}");
    std::cout << " parents wire=" << agent->StoppedCounter("kspan_stitch_parents_total{rule=\"wire\"}")
              << "\n";
    EXPECT_EQ(agent->Logs().find(password), std::string::npos);
    EXPECT_GE(agent->StoppedCounter("kspan_carrier_options_total{outcome=\"written\"}"), kRequests)
        << agent->Logs();
    EXPECT_GE(agent->StoppedCounter("kspan_carrier_options_total{outcome=\"parsed\"}"), kRequests);
    EXPECT_EQ(agent->StoppedCounter("kspan_carrier_options_total{outcome=\"rejected\"}"), 0);
    EXPECT_GE(agent->StoppedCounter("kspan_stitch_parents_total{rule=\"wire\"}"), kRequests);
    EXPECT_EQ(agent->StoppedCounter("kspan_parse_failures_total{protocol=\"postgres\"}"), 0);
  }
  pg.Stop(SIGINT, 20s);  // fast shutdown
}

// Acceptance 3: a seeded mix of request shapes through nginx as a reverse proxy comes out
// byte-identical with the carrier on, on both hops, as with kspan off:
//
//   namespace A                                   namespace B
//   carrier_fuzz_client.py ──────────────────▶ nginx (proxy_pass)
//   carrier_fuzz_backend.py ◀──────────────── (a new connection per request)
//
// The client (tests/apps/carrier_fuzz_client.py) sends methods with and without bodies,
// up to 30 header fields, Content-Length and chunked bodies up to 384 KiB, pipelined
// requests, writes cut at random points into write() and sendmsg() calls; the backend
// records every byte it receives and answers from them alone. The run with both agents
// on must give exactly the bytes of the run with kspan off (same seed), at the backend and
// at the client, and the agents must have written and read options on both hops.
TEST_F(WireContextTest, ReverseProxyFuzzedRequestsByteIdenticalWithTheCarrier) {
  const int proxy_port = 19080 + getpid() % 1000, backend_port = proxy_port + 1000;
  const int seed = 20261206, connections = 60;
  // nginx's worker (nobody) writes request bodies under dir_/tmp, which its master makes.
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                         std::filesystem::perms::group_exec |
                                         std::filesystem::perms::others_read |
                                         std::filesystem::perms::others_exec);
  std::ofstream(dir_ + "/nginx.conf")
      << "worker_processes 1;\ndaemon off;\npid " << dir_ << "/nginx.pid;\n"
      << "error_log " << dir_ << "/error.log;\n"
      << "events { worker_connections 256; }\nhttp {\n  access_log off;\n"
      << "  client_body_temp_path " << dir_ << "/tmp;\n"
      << "  proxy_temp_path " << dir_ << "/tmp;\n"
      << "  client_max_body_size 8m;\n"
      << "  server {\n    listen " << addr_b_ << ":" << proxy_port << ";\n"
      << "    location / {\n      proxy_pass http://" << addr_a_ << ":" << backend_port << ";\n"
      << "      proxy_pass_header Date;\n      proxy_pass_header Server;\n"
      << "    }\n  }\n}\n";
  Subprocess& nginx = Proc();
  ASSERT_TRUE(nginx.Start(
      {"ip", "netns", "exec", net_.b, "/usr/sbin/nginx", "-c", dir_ + "/nginx.conf", "-p", dir_}));
  ASSERT_TRUE(Listening(net_.b, addr_b_, proxy_port))
      << nginx.Stderr() << ReadFileOrEmpty(dir_ + "/error.log");

  // One run: a fresh backend recording to backend_<name>, the client to client_<name>.
  // Returns the requests sent, 0 on failure (reported).
  auto run = [&](const std::string& name) -> int {
    const std::string backend_out = dir_ + "/backend_" + name, client_out = dir_ + "/client_" + name;
    auto backend = std::make_unique<Subprocess>();
    if (!backend->Start({"ip", "netns", "exec", net_.a, "/usr/bin/python3", kApps + "carrier_fuzz_backend.py",
                         addr_a_, std::to_string(backend_port), backend_out})) {
      ADD_FAILURE() << "backend did not start";
      return 0;
    }
    if (!Listening(net_.a, addr_a_, backend_port)) {
      ADD_FAILURE() << "backend not listening: " << backend->Stderr();
      return 0;
    }
    auto r = RunCommand(
        {"ip", "netns", "exec", net_.a, "/usr/bin/python3", kApps + "carrier_fuzz_client.py",
         std::to_string(seed), std::to_string(connections), addr_b_, std::to_string(proxy_port), client_out},
        120s);
    if (r.exit_code != 0) {
      ADD_FAILURE() << name << ": client failed: " << r.err << ReadFileOrEmpty(dir_ + "/error.log");
      return 0;
    }
    const int requests = std::atoi(r.out.c_str());
    // The backend writes a connection's record when nginx closes it: one per request.
    auto records = [&] {
      const std::string all = ReadFileOrEmpty(backend_out);
      int n = 0;
      for (size_t at = 0; at < all.size();) {
        const size_t nl = all.find('\n', at);
        if (nl == std::string::npos || all.compare(at, 5, "conn ") != 0) break;
        at = nl + 1 + std::stoul(all.substr(at + 5, nl - at - 5));
        ++n;
      }
      return n;
    };
    WaitFor([&] { return records() >= requests; }, 20s);
    EXPECT_EQ(records(), requests) << name;
    backend->Stop(SIGTERM, 5s);
    return requests;
  };

  const int off = run("off");
  ASSERT_GT(off, connections);
  KspanAgent agent_a, agent_b;
  StartAgent(&agent_a, net_.a);
  StartAgent(&agent_b, net_.b);
  const int on = run("on");
  EXPECT_EQ(on, off);
  ExpectCleanStop(agent_a);
  ExpectCleanStop(agent_b);

  // Byte for byte. The backend's records are sorted first: connections to it may finish
  // in another order, which is not a change of any byte.
  auto records_of = [](const std::string& all) {
    std::vector<std::string> out;
    for (size_t at = 0; at < all.size();) {
      const size_t nl = all.find('\n', at);
      const size_t len = std::stoul(all.substr(at + 5, nl - at - 5));
      out.push_back(all.substr(nl + 1, len));
      at = nl + 1 + len;
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto first_difference = [](const std::string& x, const std::string& y) {
    size_t i = 0;
    while (i < x.size() && i < y.size() && x[i] == y[i]) ++i;
    return "sizes " + std::to_string(x.size()) + " and " + std::to_string(y.size()) +
           ", first difference at byte " + std::to_string(i);
  };
  const std::string client_off = ReadFileOrEmpty(dir_ + "/client_off"),
                    client_on = ReadFileOrEmpty(dir_ + "/client_on");
  EXPECT_GT(client_off.size(), 100'000u);
  EXPECT_TRUE(client_on == client_off)
      << "what the client received: " << first_difference(client_off, client_on);
  const auto backend_off = records_of(ReadFileOrEmpty(dir_ + "/backend_off")),
             backend_on = records_of(ReadFileOrEmpty(dir_ + "/backend_on"));
  ASSERT_EQ(backend_on.size(), backend_off.size());
  for (size_t i = 0; i < backend_off.size(); ++i) {
    EXPECT_TRUE(backend_on[i] == backend_off[i]) << "what the backend received, request " << i << ": "
                                                 << first_difference(backend_off[i], backend_on[i]);
  }

  // Not vacuous: contexts were set and options on the wire of both hops. A first segment
  // that is already a full MSS (large header fields) goes without, counted as too_big.
  auto contexts = [](KspanAgent* agent) {
    int64_t n = 0;
    for (const char* outcome : {"written", "too_big", "no_space"})
      n += agent->StoppedCounter("kspan_carrier_options_total{outcome=\"" + std::string(outcome) + "\"}");
    return n;
  };
  for (KspanAgent* agent : {&agent_a, &agent_b}) {
    std::cout << (agent == &agent_a ? "namespace A" : "namespace B") << ": options";
    for (const char* outcome : {"written", "too_big", "no_space", "parsed"})
      std::cout << " " << outcome << "="
                << agent->StoppedCounter("kspan_carrier_options_total{outcome=\"" + std::string(outcome) +
                                         "\"}");
    std::cout << "\n";
  }
  std::cout << "compared: " << on << " requests, " << client_off.size() << " bytes at the client, "
            << backend_off.size() << " backend connections\n";
  EXPECT_GE(contexts(&agent_a), connections) << "the client's first requests at least";
  EXPECT_GE(contexts(&agent_b), on) << "nginx's calls to the backend, one connection each";
  for (KspanAgent* agent : {&agent_a, &agent_b}) {
    EXPECT_GT(agent->StoppedCounter("kspan_carrier_options_total{outcome=\"written\"}"), 0) << agent->Logs();
    EXPECT_GT(agent->StoppedCounter("kspan_carrier_options_total{outcome=\"parsed\"}"), 0);
    EXPECT_EQ(agent->StoppedCounter("kspan_carrier_options_total{outcome=\"rejected\"}"), 0);
  }
}

}  // namespace
}  // namespace kspan::testing
