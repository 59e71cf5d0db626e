// End to end on real processes: kspan (the built binary) traces a real MariaDB server (a
// data directory of its own made by mariadb-install-db, a loopback port it owns, password
// authentication) driven by the mariadb client (text queries, an error, USE), python3
// pymysql (queries with literals, SQL-level PREPARE/EXECUTE) and perl DBD::MariaDB with
// server-side prepared statements (COM_STMT_PREPARE once, COM_STMT_EXECUTE 100 times,
// COM_STMT_CLOSE); the test checks the spans whose server.port is its own server, and that
// the password and the literals appear nowhere in kspan's output.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr const char* kPassword = "my-s3cret-2231";
constexpr const char* kLiteral = "literal-bob-7781";

std::vector<FlatSpan> MySpans(const std::vector<FlatSpan>& all, int port, const std::string& exe) {
  std::vector<FlatSpan> out;
  for (const FlatSpan& s : all) {
    if (s.Str("db.system.name") == "mariadb" && s.Int("server.port") == port &&
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

class MysqlIntegration : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(agent_.Start()) << "kspan did not become ready:\n" << agent_.Logs(); }
  void TearDown() override {
    if (server_.pid() > 0) server_.Stop(SIGTERM, std::chrono::seconds(30));
    if (!dir_.empty()) RunCommand({"rm", "-rf", dir_}, std::chrono::seconds(20));
    ExpectCleanStop(agent_);
  }

  KspanAgent agent_;
  Subprocess server_;
  std::string dir_;
  int port_ = 0;
};

TEST_F(MysqlIntegration, MariadbClientPymysqlAndServerSidePreparedStatementsBecomeClientSpans) {
  char tmpl[] = "/tmp/kspan-my-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  ASSERT_EQ(RunCommand({"chown", "mysql:mysql", dir_}, std::chrono::seconds(10)).exit_code, 0);
  const CommandResult init =
      RunCommand({"mariadb-install-db", "--no-defaults", "--user=mysql", "--datadir=" + dir_ + "/data",
                  "--auth-root-authentication-method=normal", "--skip-test-db"},
                 std::chrono::seconds(120));
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  port_ = FreePort();
  const std::string port = std::to_string(port_);
  ASSERT_TRUE(
      server_.Start({"mariadbd", "--no-defaults", "--user=mysql", "--datadir=" + dir_ + "/data",
                     "--port=" + port, "--bind-address=127.0.0.1", "--socket=" + dir_ + "/sock",
                     "--pid-file=" + dir_ + "/pid", "--skip-log-bin", "--innodb-buffer-pool-size=16M"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port_, std::chrono::seconds(60))) << server_.Stderr();

  // The password and the literal go only into files, never into an argv (kspan reports
  // command lines of processes it sees).
  {
    std::ofstream setup(dir_ + "/setup.sql");
    setup << "CREATE DATABASE shop;\nCREATE DATABASE other;\n"
          << "CREATE USER 'kuser'@'127.0.0.1' IDENTIFIED BY '" << kPassword << "';\n"
          << "GRANT ALL ON *.* TO 'kuser'@'127.0.0.1';\n";
    std::ofstream cnf(dir_ + "/client.cnf");
    cnf << "[client]\nuser=kuser\npassword=" << kPassword << "\nhost=127.0.0.1\nport=" << port
        << "\ndatabase=shop\nprotocol=TCP\n";
    std::ofstream sql(dir_ + "/q.sql");
    sql << "CREATE TABLE users (id int, name text);\n"
        << "INSERT INTO users VALUES (1, '" << kLiteral << "');\n"
        << "SELECT name FROM users WHERE id IN (1, 2, 3);\n"
        << "SELECT * FROM nope;\n"
        << "USE other;\n"
        << "SELECT 7 AS seven;\n";
    std::ofstream py(dir_ + "/client.py");
    py << "import pymysql\n"
       << "c = pymysql.connect(host='127.0.0.1', port=" << port << ", user='kuser', password='" << kPassword
       << "', database='shop', autocommit=True)\n"
       << R"PY(cur = c.cursor()
cur.execute("SELECT name FROM users WHERE name = %s", ("literal-bob-7781",))
assert cur.fetchall()[0][0] == "literal-bob-7781"
cur.execute("PREPARE q FROM 'SELECT name FROM users WHERE id = ?'")
for i in range(100):
    cur.execute("SET @i = %s", (i,))
    cur.execute("EXECUTE q USING @i")
    cur.fetchall()
try:
    cur.execute("INSERT INTO nope VALUES (1)")
except pymysql.err.ProgrammingError as e:
    print("error", e.args[0])
c.close()
print("ok")
)PY";
    std::ofstream pl(dir_ + "/prepared.pl");
    pl << "use DBI;\n"
       << "my $d = DBI->connect('DBI:MariaDB:database=shop;host=127.0.0.1;port=" << port << "', 'kuser', '"
       << kPassword << "', {RaiseError => 1, mariadb_server_prepare => 1});\n"
       << R"PL(my $s = $d->prepare('SELECT name FROM users WHERE id = ? OR name = ?');
my $n = 0;
for my $i (1..100) { $s->execute($i, 'x'); while (my @r = $s->fetchrow_array) { $n++; } }
$s->finish;
undef $s;
$d->disconnect;
print "rows $n\n";
)PL";
  }
  const CommandResult setup = RunCommand(
      {"/bin/sh", "-c", "mariadb --no-defaults -S " + dir_ + "/sock -u root < " + dir_ + "/setup.sql"},
      std::chrono::seconds(60));
  ASSERT_EQ(setup.exit_code, 0) << setup.out << setup.err;

  // The mariadb client: text queries, one failing (--force goes on), USE.
  const CommandResult cli = RunCommand(
      {"/bin/sh", "-c", "mariadb --defaults-file=" + dir_ + "/client.cnf --force < " + dir_ + "/q.sql"},
      std::chrono::seconds(60));
  ASSERT_NE(cli.err.find("1146"), std::string::npos) << cli.out << cli.err;

  // A compressed session (--compress: CLIENT_COMPRESS): its packets after the login are
  // not parsed; no span and no parse failure comes of them.
  const CommandResult compressed =
      RunCommand({"/bin/sh", "-c",
                  "mariadb --defaults-file=" + dir_ +
                      "/client.cnf --compress -e 'SELECT 42 AS compressed_one; SELECT 43'"},
                 std::chrono::seconds(60));
  ASSERT_EQ(compressed.exit_code, 0) << compressed.out << compressed.err;
  ASSERT_NE(compressed.out.find("compressed_one"), std::string::npos) << compressed.out;

  // pymysql: text protocol, client-side parameters, SQL-level prepared statements.
  const CommandResult pyrun = RunCommand({"/usr/bin/python3", dir_ + "/client.py"}, std::chrono::seconds(60));
  ASSERT_EQ(pyrun.exit_code, 0) << pyrun.out << pyrun.err;
  ASSERT_NE(pyrun.out.find("error 1146"), std::string::npos) << pyrun.out;

  // DBD::MariaDB (libmariadb): COM_STMT_PREPARE once, COM_STMT_EXECUTE 100 times.
  const CommandResult plrun = RunCommand({"perl", dir_ + "/prepared.pl"}, std::chrono::seconds(60));
  ASSERT_EQ(plrun.exit_code, 0) << plrun.out << plrun.err;
  ASSERT_NE(plrun.out.find("rows 1"), std::string::npos) << plrun.out;

  std::vector<FlatSpan> perl_spans;
  WaitFor(
      [&] {
        perl_spans = MySpans(ReadSpans(agent_.SpansPath()), port_, "perl");
        return perl_spans.size() >= 101;
      },
      std::chrono::seconds(20));
  ASSERT_EQ(agent_.Stop(), 0) << agent_.Logs();
  const std::vector<FlatSpan> all = ReadSpans(agent_.SpansPath());

  // mariadb: the statements, sanitised, the failing one with its error code, the schema
  // following USE.
  std::map<std::string, const FlatSpan*> by_text;
  std::string texts;
  const std::vector<FlatSpan> cli_spans = MySpans(all, port_, "mariadb");
  for (const FlatSpan& s : cli_spans) {
    by_text[s.Str("db.query.text")] = &s;
    texts += s.name + " | " + s.Str("db.query.text") + "\n";
  }
  ASSERT_TRUE(by_text.count("INSERT INTO users VALUES (?, ?)")) << texts;
  ASSERT_TRUE(by_text.count("SELECT name FROM users WHERE id IN (?)")) << texts;
  ASSERT_TRUE(by_text.count("SELECT * FROM nope")) << texts;
  ASSERT_TRUE(by_text.count("SELECT ? AS seven")) << texts;
  EXPECT_EQ(texts.find("compressed_one"), std::string::npos) << texts;
  const FlatSpan& failed = *by_text.at("SELECT * FROM nope");
  EXPECT_EQ(failed.status_code, 2);
  EXPECT_EQ(failed.Str("db.response.status_code"), "1146");
  EXPECT_EQ(failed.Str("error.type"), "1146");
  const FlatSpan& select = *by_text.at("SELECT name FROM users WHERE id IN (?)");
  EXPECT_EQ(select.name, "SELECT users");
  EXPECT_EQ(select.Str("db.collection.name"), "users");
  EXPECT_EQ(by_text.at("SELECT ? AS seven")->name, "SELECT other");
  EXPECT_EQ(select.kind, 3);
  EXPECT_EQ(select.Str("db.namespace"), "shop");
  EXPECT_EQ(select.Str("db.operation.name"), "SELECT");
  EXPECT_EQ(select.Int("db.response.returned_rows"), 1);
  EXPECT_EQ(select.status_code, 0);
  EXPECT_EQ(by_text.at("SELECT ? AS seven")->Str("db.namespace"), "other");

  // pymysql: literals sanitised, 100 EXECUTE spans, the failing INSERT.
  int executes = 0, sets = 0, insert_errors = 0;
  std::string py_texts;
  for (const FlatSpan& s : MySpans(all, port_, "python3")) {
    const std::string text = s.Str("db.query.text");
    py_texts += text + "\n";
    if (text == "EXECUTE q USING @i") ++executes;
    if (text == "SET @i = ?") ++sets;
    if (text == "INSERT INTO nope VALUES (?)" && s.Str("error.type") == "1146" && s.status_code == 2) {
      ++insert_errors;
    }
  }
  EXPECT_EQ(executes, 100) << py_texts.substr(0, 2000);
  EXPECT_EQ(sets, 100);
  EXPECT_EQ(insert_errors, 1) << py_texts.substr(0, 2000);

  // perl: one PREPARE and 100 executes with the statement's text, by statement id.
  int prepares = 0, stmt_executes = 0;
  std::string pl_texts;
  for (const FlatSpan& s : MySpans(all, port_, "perl")) {
    pl_texts += s.Str("db.operation.name") + " | " + s.Str("db.query.text") + "\n";
    if (s.Str("db.query.text") != "SELECT name FROM users WHERE id = ? OR name = ?") continue;
    if (s.Str("db.operation.name") == "PREPARE") ++prepares;
    if (s.Str("db.operation.name") == "SELECT") {
      ++stmt_executes;
      EXPECT_EQ(s.Str("db.namespace"), "shop");
    }
  }
  EXPECT_EQ(prepares, 1) << pl_texts.substr(0, 2000);
  EXPECT_EQ(stmt_executes, 100) << pl_texts.substr(0, 2000);

  // Nothing secret in the output or the agent's logs.
  const std::string text = ReadAll(agent_.SpansPath());
  for (const std::string secret : {std::string(kPassword), std::string(kLiteral)}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret;
    EXPECT_EQ(agent_.Logs().find(secret), std::string::npos) << secret;
  }
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"mysql\"}"), 0) << agent_.Logs();
  EXPECT_EQ(
      agent_.StoppedCounter("kspan_records_dropped_total{protocol=\"mysql\",reason=\"unmatched_response\"}"),
      0);
  EXPECT_GT(agent_.StoppedCounter("kspan_records_total{protocol=\"mysql\"}"), 300);
}

}  // namespace
}  // namespace kspan::testing
