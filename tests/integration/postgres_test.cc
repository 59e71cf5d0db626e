// End to end on real processes: kspan (the built binary) traces a real PostgreSQL 15 server
// (a cluster of its own in a temporary directory, SCRAM password authentication) driven by
// psql (simple queries, an error), python3 psycopg2 (a server-side prepared statement
// executed 100 times) and pgbench -M prepared (the extended protocol with named
// statements); the test checks the spans whose server.port is its own server, and that
// the password and the literals appear nowhere in kspan's output.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr const char* kPassword = "pg-s3cret-9917";
constexpr const char* kLiteral = "literal-alice-4412";
constexpr const char* kBin = "/usr/lib/postgresql/15/bin/";

std::vector<FlatSpan> PgSpans(const std::vector<FlatSpan>& all, int port, const std::string& exe) {
  std::vector<FlatSpan> out;
  for (const FlatSpan& s : all) {
    if (s.Str("db.system.name") == "postgresql" && s.Int("server.port") == port &&
        s.ResourceStr("process.executable.name").rfind(exe, 0) == 0) {
      out.push_back(s);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const FlatSpan& a, const FlatSpan& b) { return a.start_ns < b.start_ns; });
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class PostgresIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(agent_.Start()) << "kspan did not become ready:\n" << agent_.Logs(); }
  void TearDown() override {
    if (server_.pid() > 0) server_.Stop(SIGINT, std::chrono::seconds(20));  // fast shutdown
    if (!dir_.empty()) RunCommand({"rm", "-rf", dir_}, std::chrono::seconds(20));
    ExpectCleanStop(agent_);
  }

  KspanAgent agent_;
  Subprocess server_;
  std::string dir_;
  int port_ = 0;
};

TEST_F(PostgresIntegration, PsqlPsycopg2AndPgbenchQueriesBecomeClientSpans) {
  char tmpl[] = "/tmp/kspan-pg-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  {
    std::ofstream pw(dir_ + "/pw");
    pw << kPassword << "\n";
  }
  ASSERT_EQ(RunCommand({"chown", "-R", "postgres:postgres", dir_}, std::chrono::seconds(10)).exit_code, 0);
  const CommandResult init =
      RunCommand({"runuser", "-u", "postgres", "--", std::string(kBin) + "initdb", "-D", dir_ + "/data", "-U",
                  "postgres", "--pwfile=" + dir_ + "/pw", "--auth-host=scram-sha-256", "--auth-local=trust"},
                 std::chrono::seconds(120));
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  port_ = FreePort();
  ASSERT_TRUE(server_.Start({"runuser", "-u", "postgres", "--", std::string(kBin) + "postgres", "-D",
                             dir_ + "/data", "-p", std::to_string(port_), "-k", dir_, "-c",
                             "listen_addresses=127.0.0.1", "-c", "fsync=off"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port_, std::chrono::seconds(30))) << server_.Stderr();
  const std::string port = std::to_string(port_);
  // The password and the literal go only into files and the environment, never into an
  // argv (kspan reports command lines of processes it sees).
  {
    std::ofstream env(dir_ + "/env.sh");
    env << "export PGPASSWORD=" << kPassword << " PGHOST=127.0.0.1 PGPORT=" << port
        << " PGUSER=postgres PGDATABASE=postgres\n";
    std::ofstream sql(dir_ + "/q.sql");
    sql << "CREATE TABLE users (id int, name text);\n"
        << "INSERT INTO users VALUES (1, '" << kLiteral << "');\n"
        << "SELECT name FROM users WHERE id IN (1, 2, 3);\n"
        << "SELECT * FROM nope;\n";
    std::ofstream py(dir_ + "/prepared.py");
    py << R"PY(
import psycopg2
c = psycopg2.connect(host="127.0.0.1")  # the rest from PG* variables
c.autocommit = True
cur = c.cursor()
cur.execute("PREPARE q(int) AS SELECT name FROM users WHERE id = $1")
for i in range(100):
    cur.execute("EXECUTE q(%s)", (i,))
    cur.fetchall()
c.close()
print("ok")
)PY";
  }
  auto with_env = [&](const std::string& cmd) {
    return std::vector<std::string>{"/bin/sh", "-c", ". " + dir_ + "/env.sh && " + cmd};
  };

  // psql: simple queries, one of them failing.
  const CommandResult psql =
      RunCommand(with_env("psql -X -q -v ON_ERROR_STOP=0 -f " + dir_ + "/q.sql"), std::chrono::seconds(60));
  ASSERT_NE(psql.err.find("does not exist"), std::string::npos) << psql.out << psql.err;

  // psycopg2: a server-side prepared statement executed 100 times.
  const CommandResult pyrun =
      RunCommand(with_env("/usr/bin/python3 " + dir_ + "/prepared.py"), std::chrono::seconds(60));
  ASSERT_EQ(pyrun.exit_code, 0) << pyrun.out << pyrun.err;

  // pgbench: the extended protocol with named prepared statements.
  // Tables filled server-side (-I G): a client-side COPY of 100000 rows is written in
  // buffers cut mid-message, and CopyData framing lost in capture holes counts as parse
  // failures (README, "Not supported").
  const CommandResult pginit =
      RunCommand(with_env(std::string(kBin) + "pgbench -i -I dtGp -q -s 1"), std::chrono::seconds(120));
  ASSERT_EQ(pginit.exit_code, 0) << pginit.out << pginit.err;
  const CommandResult bench = RunCommand(with_env(std::string(kBin) + "pgbench -n -M prepared -S -c 1 -t 50"),
                                         std::chrono::seconds(120));
  ASSERT_EQ(bench.exit_code, 0) << bench.out << bench.err;

  std::vector<FlatSpan> bench_spans;
  WaitFor(
      [&] {
        bench_spans = PgSpans(ReadSpans(agent_.SpansPath()), port_, "pgbench");
        return bench_spans.size() >= 50;
      },
      std::chrono::seconds(20));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  const std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());

  // psql: the four statements, sanitised, the failing one with its SQLSTATE.
  std::map<std::string, const FlatSpan*> by_text;
  const std::vector<FlatSpan> psql_spans = PgSpans(all, port_, "psql");
  std::string texts;
  for (const FlatSpan& s : psql_spans) {
    by_text[s.Str("db.query.text")] = &s;
    texts += s.Str("db.query.text") + "\n";
  }
  ASSERT_TRUE(by_text.count("INSERT INTO users VALUES (?, ?);")) << texts;
  ASSERT_TRUE(by_text.count("SELECT name FROM users WHERE id IN (?);")) << texts;
  ASSERT_TRUE(by_text.count("SELECT * FROM nope;")) << texts;
  const FlatSpan& failed = *by_text.at("SELECT * FROM nope;");
  EXPECT_EQ(failed.status_code, 2);
  EXPECT_EQ(failed.Str("db.response.status_code"), "42P01");
  EXPECT_EQ(failed.Str("error.type"), "42P01");
  const FlatSpan& select = *by_text.at("SELECT name FROM users WHERE id IN (?);");
  EXPECT_EQ(select.name, "SELECT users");
  EXPECT_EQ(select.Str("db.collection.name"), "users");
  EXPECT_EQ(select.kind, 3);
  EXPECT_EQ(select.Str("db.namespace"), "postgres");
  EXPECT_EQ(select.Str("db.operation.name"), "SELECT");
  EXPECT_EQ(select.Int("db.response.returned_rows"), 1);
  EXPECT_EQ(select.status_code, 0);

  // psycopg2: 100 EXECUTE spans with the statement's text.
  int executes = 0;
  for (const FlatSpan& s : PgSpans(all, port_, "python3")) {
    if (s.Str("db.query.text") == "EXECUTE q(?)") {
      ++executes;
      EXPECT_EQ(s.Str("db.operation.name"), "EXECUTE");
    }
  }
  EXPECT_EQ(executes, 100);

  // pgbench -M prepared -S: 50 transactions, each one Execute of its named statement.
  bench_spans = PgSpans(all, port_, "pgbench");
  int selects = 0, prepares = 0;
  for (const FlatSpan& s : bench_spans) {
    if (s.Str("db.query.text") != "SELECT abalance FROM pgbench_accounts WHERE aid = $1;") continue;
    if (s.Str("db.operation.name") == "SELECT") ++selects;
    if (s.Str("db.operation.name") == "PREPARE") ++prepares;
  }
  EXPECT_EQ(selects, 50) << bench_spans.size();
  EXPECT_EQ(prepares, 1);  // the Parse, Describe, Sync before the first Execute

  // Nothing secret in the output or the agent's logs.
  const std::string text = ReadAll(agent_.SpansPath());
  for (const std::string secret : {std::string(kPassword), std::string(kLiteral)}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret;
    EXPECT_EQ(agent_.Logs().find(secret), std::string::npos) << secret;
  }
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"postgres\"}"), 0) << agent_.Logs();
  EXPECT_EQ(agent_.StoppedCounter(
                "kspan_records_dropped_total{protocol=\"postgres\",reason=\"unmatched_response\"}"),
            0);
}

}  // namespace
}  // namespace kspan::testing
