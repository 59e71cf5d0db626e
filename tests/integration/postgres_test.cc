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

#include <cstdio>
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

  // A PostgreSQL 15 cluster of its own in a temporary directory (SCRAM for TCP logins) on
  // a free loopback port; `extra` are more `-c` settings. `tls`: ssl=on with a self-signed
  // certificate made here.
  void StartServer(const std::vector<std::string>& extra = {}, bool tls = false) {
    char tmpl[] = "/tmp/kspan-pg-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    {
      std::ofstream pw(dir_ + "/pw");
      pw << kPassword << "\n";
    }
    ASSERT_EQ(RunCommand({"chown", "-R", "postgres:postgres", dir_}, std::chrono::seconds(10)).exit_code, 0);
    const CommandResult init = RunCommand(
        {"runuser", "-u", "postgres", "--", std::string(kBin) + "initdb", "-D", dir_ + "/data", "-U",
         "postgres", "--pwfile=" + dir_ + "/pw", "--auth-host=scram-sha-256", "--auth-local=trust"},
        std::chrono::seconds(120));
    ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
    if (tls) {
      const std::string data = dir_ + "/data";
      const CommandResult cert =
          RunCommand({"openssl", "req", "-new", "-x509", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                      "-newkey", "rsa:2048", "-keyout", data + "/server.key", "-out", data + "/server.crt"},
                     std::chrono::seconds(60));
      ASSERT_EQ(cert.exit_code, 0) << cert.err;
      ASSERT_EQ(RunCommand({"chown", "postgres:postgres", data + "/server.key", data + "/server.crt"},
                           std::chrono::seconds(10))
                    .exit_code,
                0);
      ASSERT_EQ(RunCommand({"chmod", "600", data + "/server.key"}, std::chrono::seconds(10)).exit_code, 0);
    }
    port_ = FreePort();
    std::vector<std::string> argv = {"runuser",
                                     "-u",
                                     "postgres",
                                     "--",
                                     std::string(kBin) + "postgres",
                                     "-D",
                                     dir_ + "/data",
                                     "-p",
                                     std::to_string(port_),
                                     "-k",
                                     dir_,
                                     "-c",
                                     "listen_addresses=127.0.0.1",
                                     "-c",
                                     "fsync=off"};
    std::vector<std::string> settings = extra;
    if (tls) settings.push_back("ssl=on");  // server.crt and server.key in the data directory
    for (const std::string& e : settings) {
      argv.push_back("-c");
      argv.push_back(e);
    }
    ASSERT_TRUE(server_.Start(argv));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port_, std::chrono::seconds(30))) << server_.Stderr();
    // The password goes only into a file and the environment, never into an argv (kspan
    // reports command lines of processes it sees).
    std::ofstream env(dir_ + "/env.sh");
    env << "export PGPASSWORD=" << kPassword << " PGHOST=127.0.0.1 PGPORT=" << port_
        << " PGUSER=postgres PGDATABASE=postgres\n";
  }
  std::vector<std::string> WithEnv(const std::string& cmd) const {
    return {"/bin/sh", "-c", ". " + dir_ + "/env.sh && " + cmd};
  }

  KspanAgent agent_;
  Subprocess server_;
  std::string dir_;
  int port_ = 0;
};

TEST_F(PostgresIntegration, PsqlPsycopg2AndPgbenchQueriesBecomeClientSpans) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // The literal goes only into files, never into an argv.
  {
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
  auto with_env = [&](const std::string& cmd) { return WithEnv(cmd); };

  // psql: simple queries, one of them failing.
  const CommandResult psql =
      RunCommand(with_env("psql -X -q -v ON_ERROR_STOP=0 -f " + dir_ + "/q.sql"), std::chrono::seconds(60));
  ASSERT_NE(psql.err.find("does not exist"), std::string::npos) << psql.out << psql.err;

  // psycopg2: a server-side prepared statement executed 100 times.
  const CommandResult pyrun =
      RunCommand(with_env("/usr/bin/python3 " + dir_ + "/prepared.py"), std::chrono::seconds(60));
  ASSERT_EQ(pyrun.exit_code, 0) << pyrun.out << pyrun.err;

  // pgbench: the extended protocol with named prepared statements (tables filled
  // server-side, -I G: the client-side COPY is CopyAndLongQueries' part).
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

// COPY in both directions, small and past the capture (psql \copy, psycopg2 copy_expert,
// pgbench -i's client-side COPY of 100000 rows), and a query longer than the capture.
TEST_F(PostgresIntegration, CopyAndLongQueries) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  constexpr int kBulk = 20000;  // ~400 KiB of rows: most of each 8 KiB write is a hole
  {
    std::ofstream rows(dir_ + "/rows.txt");
    for (int i = 0; i < kBulk; ++i) rows << i << "\tname-" << i << "\n";
    std::ofstream sql(dir_ + "/copy.sql");
    sql << "CREATE TABLE users (id int, name text);\n"
        << "\\copy users FROM '" << dir_ << "/rows.txt'\n"
        << "\\copy (SELECT * FROM users WHERE id < 50) TO '" << dir_ << "/out-small.txt'\n"
        << "\\copy users TO '" << dir_ << "/out-bulk.txt'\n"
        << "SELECT count(*) FROM users;\n";
    // A query whose text is longer than the capture (4096 bytes), a literal in its
    // captured prefix.
    sql << "SELECT name FROM users WHERE name = '" << kLiteral << "' OR id IN (";
    for (int i = 0; i < 2000; ++i) sql << 100000 + i << ", ";  // no such rows: a short answer
    sql << "-1);\n";
    std::ofstream py(dir_ + "/copy.py");
    py << R"PY(
import io, psycopg2
c = psycopg2.connect(host="127.0.0.1")
c.autocommit = True
cur = c.cursor()
cur.execute("CREATE TABLE items (id int, label text)")
data = "".join("%d\titem-%d\n" % (i, i) for i in range(20000))
cur.copy_expert("COPY items FROM STDIN", io.StringIO(data))
out = io.StringIO()
cur.copy_expert("COPY items TO STDOUT", out)
assert out.getvalue().count("\n") == 20000
cur.copy_expert("COPY (SELECT * FROM items WHERE id < 7) TO STDOUT", io.StringIO())
cur.execute("SELECT 1")
c.close()
print("ok")
)PY";
  }
  const CommandResult psql = RunCommand(WithEnv("psql -X -q -v ON_ERROR_STOP=1 -f " + dir_ + "/copy.sql"),
                                        std::chrono::seconds(120));
  ASSERT_EQ(psql.exit_code, 0) << psql.out << psql.err;
  const CommandResult pyrun =
      RunCommand(WithEnv("/usr/bin/python3 " + dir_ + "/copy.py"), std::chrono::seconds(120));
  ASSERT_EQ(pyrun.exit_code, 0) << pyrun.out << pyrun.err;
  const CommandResult pginit =
      RunCommand(WithEnv(std::string(kBin) + "pgbench -i -I dtgp -q -s 1"), std::chrono::seconds(180));
  ASSERT_EQ(pginit.exit_code, 0) << pginit.out << pginit.err;

  std::vector<FlatSpan> py_spans;
  WaitFor(
      [&] {
        py_spans = PgSpans(ReadSpans(agent_.SpansPath()), port_, "python3");
        return !py_spans.empty() && py_spans.back().Str("db.query.text") == "SELECT ?";
      },
      std::chrono::seconds(20));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  const std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());
  auto dump = [](const std::vector<FlatSpan>& spans) {
    std::string out;
    for (const FlatSpan& s : spans) out += s.name + " | " + s.Str("db.query.text") + "\n";
    return out;
  };

  // psql: \copy FROM and TO are COPY ... FROM STDIN / TO STDOUT, one span each.
  const std::vector<FlatSpan> psql_spans = PgSpans(all, port_, "psql");
  std::vector<const FlatSpan*> copies;
  const FlatSpan* count = nullptr;
  const FlatSpan* long_query = nullptr;
  for (const FlatSpan& s : psql_spans) {
    if (s.Str("db.operation.name") == "COPY") copies.push_back(&s);
    if (s.Str("db.query.text") == "SELECT count(*) FROM users;") count = &s;
    if (s.Bool("kspan.db.query.truncated")) long_query = &s;
  }
  ASSERT_EQ(copies.size(), 3u) << dump(psql_spans);
  EXPECT_EQ(copies[0]->name, "COPY users");
  EXPECT_EQ(copies[0]->Str("db.query.text"), "COPY users FROM STDIN");
  EXPECT_EQ(copies[0]->Int("kspan.db.response.affected_rows"), kBulk);
  EXPECT_EQ(copies[0]->status_code, 0);
  // psql rebuilds a \copy's query from its words: spacing as it writes it.
  EXPECT_NE(copies[1]->Str("db.query.text").find("SELECT * FROM users WHERE id < ?"), std::string::npos)
      << copies[1]->Str("db.query.text");
  EXPECT_EQ(copies[1]->name, "COPY postgres");
  EXPECT_EQ(copies[1]->Int("db.response.returned_rows"), 50);
  EXPECT_EQ(copies[2]->Str("db.query.text"), "COPY users TO STDOUT");
  // The bulk answer's end may fall in a capture hole: the count is then unknown, never wrong.
  if (copies[2]->Has("db.response.returned_rows"))
    EXPECT_EQ(copies[2]->Int("db.response.returned_rows"), kBulk);
  ASSERT_NE(count, nullptr) << dump(psql_spans);
  EXPECT_EQ(count->Int("db.response.returned_rows"), 1);
  ASSERT_NE(long_query, nullptr) << dump(psql_spans);
  const std::string text = long_query->Str("db.query.text");
  EXPECT_EQ(text.rfind("SELECT name FROM users WHERE name = ? OR id IN (?, ?,", 0), 0u) << text;
  EXPECT_EQ(text.substr(text.size() - 3), "...");
  EXPECT_EQ(long_query->Str("db.operation.name"), "SELECT");
  EXPECT_FALSE(long_query->Has("db.collection.name"));
  EXPECT_FALSE(long_query->Has("db.response.returned_rows"));

  // psycopg2: copy_expert's COPY FROM and TO, then a query paired as it should be.
  py_spans = PgSpans(all, port_, "python3");
  std::map<std::string, const FlatSpan*> py_by_text;
  for (const FlatSpan& s : py_spans) py_by_text[s.Str("db.query.text")] = &s;
  ASSERT_TRUE(py_by_text.count("COPY items FROM STDIN")) << dump(py_spans);
  EXPECT_EQ(py_by_text.at("COPY items FROM STDIN")->Int("kspan.db.response.affected_rows"), kBulk);
  EXPECT_EQ(py_by_text.at("COPY items FROM STDIN")->name, "COPY items");
  ASSERT_TRUE(py_by_text.count("COPY items TO STDOUT")) << dump(py_spans);
  const FlatSpan& bulk_out = *py_by_text.at("COPY items TO STDOUT");
  if (bulk_out.Has("db.response.returned_rows")) EXPECT_EQ(bulk_out.Int("db.response.returned_rows"), kBulk);
  ASSERT_TRUE(py_by_text.count("COPY (SELECT * FROM items WHERE id < ?) TO STDOUT")) << dump(py_spans);
  EXPECT_EQ(
      py_by_text.at("COPY (SELECT * FROM items WHERE id < ?) TO STDOUT")->Int("db.response.returned_rows"),
      7);
  ASSERT_TRUE(py_by_text.count("SELECT ?")) << dump(py_spans);
  EXPECT_EQ(py_by_text.at("SELECT ?")->Int("db.response.returned_rows"), 1);

  // pgbench -i: its client-side COPY of 100000 rows.
  bool pgbench_copy = false;
  for (const FlatSpan& s : PgSpans(all, port_, "pgbench")) {
    if (s.name != "copy pgbench_accounts") continue;
    pgbench_copy = true;
    EXPECT_EQ(s.Int("kspan.db.response.affected_rows"), 100000);
  }
  EXPECT_TRUE(pgbench_copy) << dump(PgSpans(all, port_, "pgbench"));

  const std::string output = ReadAll(agent_.SpansPath());
  EXPECT_EQ(output.find(kLiteral), std::string::npos);
  EXPECT_EQ(agent_.Logs().find(kLiteral), std::string::npos);
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"postgres\"}"), 0) << agent_.Logs();
  EXPECT_EQ(agent_.StoppedCounter(
                "kspan_records_dropped_total{protocol=\"postgres\",reason=\"unmatched_response\"}"),
            0);
  EXPECT_GE(agent_.StoppedCounter("kspan_parse_messages_truncated_total{protocol=\"postgres\"}"), 1);
}

// SELECT answers far larger than the capture (4096 bytes of each receive): psql and
// psycopg2 read 50,000 rows whose values end in bytes a message header starts with (Z, C,
// T, 1, D) and are followed by lengths, so after a capture hole they could pass for headers.
// Each query is one span whose returned rows are right or absent (the answer's end in a
// hole), never wrong; the queries after it pair with their own answers; no parse failure.
TEST_F(PostgresIntegration, SelectAnswersLargerThanTheCapture) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  constexpr int kRows = 50000;
  {
    std::ofstream sql(dir_ + "/big.sql");
    sql << "CREATE TABLE big AS SELECT i AS id, 'name-' || i || (ARRAY['Z','C','T','1','D'])[1 + i % 5] AS "
           "a,\n"
        << "  'Iab' || (i % 10) AS b FROM generate_series(1, " << kRows << ") i;\n"
        << "SELECT * FROM big;\n"
        << "SELECT count(*) FROM big;\n"
        << "SELECT id, a FROM big WHERE id <= 30000;\n"
        << "SELECT id FROM big WHERE id <= 100;\n"
        << "\\set FETCH_COUNT 5000\n"
        << "SELECT a, b FROM big;\n"
        << "\\unset FETCH_COUNT\n"
        << "SELECT 'after' AS last;\n";
    std::ofstream py(dir_ + "/big.py");
    py << R"PY(
import psycopg2
c = psycopg2.connect(host="127.0.0.1")
cur = c.cursor()
cur.execute("SELECT * FROM big WHERE id <= %s", (40000,))
assert len(cur.fetchall()) == 40000
cur.execute("SELECT * FROM big")
assert len(cur.fetchall()) == 50000
cur.execute("SELECT 1")
c.close()
print("ok")
)PY";
  }
  const CommandResult psql =
      RunCommand(WithEnv("psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -f " + dir_ + "/big.sql"),
                 std::chrono::seconds(180));
  ASSERT_EQ(psql.exit_code, 0) << psql.out << psql.err;
  const CommandResult pyrun =
      RunCommand(WithEnv("/usr/bin/python3 " + dir_ + "/big.py"), std::chrono::seconds(180));
  ASSERT_EQ(pyrun.exit_code, 0) << pyrun.out << pyrun.err;

  std::vector<FlatSpan> py_spans;
  WaitFor(
      [&] {
        py_spans = PgSpans(ReadSpans(agent_.SpansPath()), port_, "python3");
        return !py_spans.empty() && py_spans.back().Str("db.query.text") == "SELECT ?";
      },
      std::chrono::seconds(30));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  const std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());
  auto dump = [](const std::vector<FlatSpan>& spans) {
    std::string out;
    for (const FlatSpan& s : spans) {
      out += s.name + " | " + s.Str("db.query.text") + " | rows " +
             std::to_string(s.Int("db.response.returned_rows")) + "\n";
    }
    return out;
  };
  // The spans of one text: exactly `n`, each with `rows` returned rows or none, none failed.
  int with_rows = 0, without_rows = 0;
  auto check = [&](const std::vector<FlatSpan>& spans, const std::string& text, size_t n, int64_t rows) {
    SCOPED_TRACE(text);
    size_t seen = 0;
    for (const FlatSpan& s : spans) {
      if (s.Str("db.query.text") != text) continue;
      ++seen;
      EXPECT_EQ(s.status_code, 0);
      EXPECT_FALSE(s.Has("error.type"));
      if (s.Has("db.response.returned_rows")) {
        EXPECT_EQ(s.Int("db.response.returned_rows"), rows);
        ++with_rows;
      } else {
        ++without_rows;
      }
    }
    EXPECT_EQ(seen, n) << dump(spans);
  };

  const std::vector<FlatSpan> psql_spans = PgSpans(all, port_, "psql");
  check(psql_spans, "SELECT * FROM big;", 1, kRows);
  check(psql_spans, "SELECT id, a FROM big WHERE id <= ?;", 1, 30000);
  // psql with FETCH_COUNT: a cursor read 5000 rows a FETCH; the eleventh finds none.
  check(psql_spans, "FETCH FORWARD ? FROM _psql_cursor", 11, 5000);
  // Small answers after the big ones pair with their own queries, rows exact.
  std::map<std::string, const FlatSpan*> by_text;
  for (const FlatSpan& s : psql_spans) by_text[s.Str("db.query.text")] = &s;
  ASSERT_TRUE(by_text.count("SELECT count(*) FROM big;")) << dump(psql_spans);
  EXPECT_EQ(by_text.at("SELECT count(*) FROM big;")->Int("db.response.returned_rows"), 1);
  ASSERT_TRUE(by_text.count("SELECT id FROM big WHERE id <= ?;")) << dump(psql_spans);
  EXPECT_EQ(by_text.at("SELECT id FROM big WHERE id <= ?;")->Int("db.response.returned_rows"), 100);
  ASSERT_TRUE(by_text.count("SELECT ? AS last;")) << dump(psql_spans);
  EXPECT_EQ(by_text.at("SELECT ? AS last;")->Int("db.response.returned_rows"), 1);

  py_spans = PgSpans(all, port_, "python3");
  check(py_spans, "SELECT * FROM big WHERE id <= ?", 1, 40000);
  check(py_spans, "SELECT * FROM big", 1, kRows);
  check(py_spans, "SELECT ?", 1, 1);
  std::printf("large answers: %d with their rows, %d without (end in a capture hole)\n", with_rows - 1,
              without_rows);

  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"postgres\"}"), 0) << agent_.Logs();
  EXPECT_EQ(agent_.StoppedCounter(
                "kspan_records_dropped_total{protocol=\"postgres\",reason=\"unmatched_response\"}"),
            0);
}

// The same sessions in plaintext and over TLS (sslmode=require: SSLRequest, 'S', then the
// handshake on the raw socket; the plaintext from the OpenSSL probes in libpq's libssl)
// give the same spans, and the SSLRequest exchange is no parse failure.
TEST_F(PostgresIntegration, TlsSessionsGiveTheSameSpansAsPlaintext) {
  ASSERT_NO_FATAL_FAILURE(StartServer({}, true));
  {
    std::ofstream sql(dir_ + "/q.sql");
    sql << "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();\n"
        << "CREATE TEMP TABLE users (id int, name text);\n"
        << "INSERT INTO users VALUES (1, '" << kLiteral << "'), (2, 'b');\n"
        << "SELECT name FROM users WHERE id IN (1, 2, 3);\n"
        << "SELECT * FROM nope;\n";
    std::ofstream py(dir_ + "/q.py");
    py << R"PY(
import psycopg2
c = psycopg2.connect(host="127.0.0.1")  # sslmode from PGSSLMODE
c.autocommit = True
cur = c.cursor()
cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
print("ssl", cur.fetchone()[0])
cur.execute("PREPARE q(int) AS SELECT relname FROM pg_class WHERE oid = $1")
for i in range(20):
    cur.execute("EXECUTE q(%s)", (1259,))
    cur.fetchall()
try:
    cur.execute("SELECT * FROM nope")
except psycopg2.Error as e:
    print("failed", e.pgcode)
c.close()
)PY";
  }
  std::map<std::string, std::string> psql_out, py_out;
  for (const std::string mode : {"disable", "require"}) {
    const CommandResult psql = RunCommand(
        WithEnv("PGSSLMODE=" + mode + " psql -X -q -t -A -v ON_ERROR_STOP=0 -f " + dir_ + "/q.sql"),
        std::chrono::seconds(60));
    ASSERT_NE(psql.err.find("does not exist"), std::string::npos) << psql.out << psql.err;
    psql_out[mode] = psql.out;
    const CommandResult py = RunCommand(WithEnv("PGSSLMODE=" + mode + " /usr/bin/python3 " + dir_ + "/q.py"),
                                        std::chrono::seconds(60));
    ASSERT_EQ(py.exit_code, 0) << py.out << py.err;
    py_out[mode] = py.out;
  }
  // The sessions were what they say: TLS with require, plaintext with disable.
  EXPECT_EQ(psql_out["disable"].rfind("f\n", 0), 0u) << psql_out["disable"];
  EXPECT_EQ(psql_out["require"].rfind("t\n", 0), 0u) << psql_out["require"];
  EXPECT_NE(py_out["disable"].find("ssl False"), std::string::npos) << py_out["disable"];
  EXPECT_NE(py_out["require"].find("ssl True"), std::string::npos) << py_out["require"];

  // Each client process's spans, in order, as the fields that must not depend on TLS.
  auto sessions = [&](const std::vector<FlatSpan>& all, const std::string& exe) {
    std::map<uint64_t, std::vector<std::string>> by_pid;  // the first span's start -> its process's spans
    std::map<std::string, uint64_t> first;
    for (const FlatSpan& s : PgSpans(all, port_, exe)) {
      const std::string pid = s.resource.count("process.pid") ? s.resource.at("process.pid").dump() : "";
      if (!first.count(pid)) first[pid] = s.start_ns;
      by_pid[first[pid]].push_back(s.name + " | " + s.Str("db.operation.name") + " | " +
                                   s.Str("db.query.text") + " | " + s.Str("db.namespace") + " | " +
                                   s.Str("db.collection.name") + " | " +
                                   std::to_string(s.Int("db.response.returned_rows")) + " | " +
                                   std::to_string(s.status_code) + " | " + s.Str("error.type"));
    }
    std::vector<std::vector<std::string>> out;
    for (auto& [start, spans] : by_pid) out.push_back(std::move(spans));
    return out;
  };
  std::vector<std::vector<std::string>> psql, py;
  WaitFor(
      [&] {
        const std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());
        psql = sessions(all, "psql");
        py = sessions(all, "python3");
        return psql.size() == 2 && py.size() == 2 && psql[1].size() >= 5 && py[1].size() >= 23;
      },
      std::chrono::seconds(20));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  const std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());
  psql = sessions(all, "psql");
  py = sessions(all, "python3");
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += s + "\n";
    return out;
  };
  ASSERT_EQ(psql.size(), 2u);
  ASSERT_EQ(py.size(), 2u);
  EXPECT_EQ(psql[0].size(), 5u) << join(psql[0]);
  EXPECT_EQ(join(psql[1]), join(psql[0]));      // TLS (the second run) as plaintext
  EXPECT_GE(py[0].size(), 23u) << join(py[0]);  // the ssl query, PREPARE, 20 EXECUTEs, the error
  EXPECT_EQ(join(py[1]), join(py[0]));
  EXPECT_NE(join(psql[1]).find("INSERT INTO users VALUES (?, ?), (?, ?);"), std::string::npos)
      << join(psql[1]);
  EXPECT_NE(join(psql[1]).find("42P01"), std::string::npos) << join(psql[1]);

  const std::string output = ReadAll(agent_.SpansPath());
  EXPECT_EQ(output.find(kLiteral), std::string::npos);
  EXPECT_EQ(output.find(kPassword), std::string::npos);
  EXPECT_EQ(agent_.Logs().find(kPassword), std::string::npos);
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"postgres\"}"), 0) << agent_.Logs();
  EXPECT_EQ(agent_.StoppedCounter(
                "kspan_records_dropped_total{protocol=\"postgres\",reason=\"unmatched_response\"}"),
            0);
}

}  // namespace
}  // namespace kspan::testing
