// SQL sanitisation for db.query.text (protocols/common/sql.h): literals never survive.
#include <gtest/gtest.h>

#include <string>

#include "protocols/common/sql.h"

namespace kspan::protocols::sql {
namespace {

struct Case {
  const char* name;
  Dialect dialect;
  std::string query;
  std::string want;
};

constexpr Dialect kPg = Dialect::kPostgres;
constexpr Dialect kMy = Dialect::kMySql;

const Case kCases[] = {
    {"string", kPg, "SELECT * FROM users WHERE email = 'alice@example.com'",
     "SELECT * FROM users WHERE email = ?"},
    {"doubled_quote", kPg, "SELECT 'it''s' AS x", "SELECT ? AS x"},
    {"numbers", kPg, "SELECT a FROM t WHERE id = 42 AND score > 3.5 AND r < 1e-3 AND f = .5",
     "SELECT a FROM t WHERE id = ? AND score > ? AND r < ? AND f = ?"},
    {"hex_number", kPg, "SELECT 0x1F", "SELECT ?"},
    {"identifiers_with_digits_kept", kPg, "SELECT col1, t2.c3 FROM t2", "SELECT col1, t2.c3 FROM t2"},
    {"parameters_kept", kPg, "SELECT * FROM t WHERE a = $1 AND b = $2",
     "SELECT * FROM t WHERE a = $1 AND b = $2"},
    {"escape_string", kPg, "SELECT E'a\\'b\\\\' , 1", "SELECT ? , ?"},
    {"unicode_and_bit_strings", kPg, "SELECT U&'d\\0061t', B'1010', X'1F'", "SELECT ?, ?, ?"},
    {"dollar_quoted", kPg, "SELECT $$secret value$$, $tag$ it's $$ here $tag$", "SELECT ?, ?"},
    {"pg_double_quotes_are_identifiers", kPg, "SELECT \"Name\" FROM \"My Table\"",
     "SELECT \"Name\" FROM \"My Table\""},
    // A quote inside a double-quoted identifier is part of the name, not a literal.
    {"pg_quote_inside_identifier", kPg, "SELECT \"it's\" FROM t WHERE a = 'x'",
     "SELECT \"it's\" FROM t WHERE a = ?"},
    {"mysql_double_quotes_are_strings", kMy, "SELECT * FROM t WHERE a = \"secret\"",
     "SELECT * FROM t WHERE a = ?"},
    {"mysql_backslash_escape", kMy, "SELECT 'a\\'b' FROM t", "SELECT ? FROM t"},
    {"mysql_backticks_kept", kMy, "SELECT `col` FROM `db`.`t`", "SELECT `col` FROM `db`.`t`"},
    {"mysql_hash_comment", kMy, "SELECT 1 # the answer\nFROM t", "SELECT ? FROM t"},
    {"line_comment", kPg, "SELECT a -- the user's name\nFROM t", "SELECT a FROM t"},
    {"block_comment", kPg, "SELECT /* hint: 'x' */ a FROM t", "SELECT a FROM t"},
    {"nested_block_comment_pg", kPg, "SELECT /* a /* b */ 'c' */ 1", "SELECT ?"},
    {"in_list_collapsed", kPg, "SELECT * FROM t WHERE id IN (1, 2, 3) AND s in ('a','b')",
     "SELECT * FROM t WHERE id IN (?) AND s in (?)"},
    {"in_list_with_params_kept", kPg, "SELECT * FROM t WHERE id IN ($1, $2)",
     "SELECT * FROM t WHERE id IN ($1, $2)"},
    {"insert_values", kPg, "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
     "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"},
    {"white_space_collapsed", kPg, "  SELECT\n\ta\r\n  FROM   t  ", "SELECT a FROM t"},
    {"casts_kept", kPg, "SELECT '5'::int, now()::date", "SELECT ?::int, now()::date"},
    {"negative_number", kPg, "SELECT -5", "SELECT -?"},
    // Cut off by the end of the captured text: nothing of the literal or comment stays.
    {"cut_in_string", kPg, "SELECT * FROM t WHERE password = 'hunter", "SELECT * FROM t WHERE password = ?"},
    {"cut_in_dollar_string", kPg, "SELECT $$hunter", "SELECT ?"},
    {"cut_in_comment", kPg, "SELECT 1 /* hunter", "SELECT ?"},
    {"cut_in_quoted_identifier", kPg, "SELECT \"hunt", "SELECT ?"},
    {"empty", kPg, "", ""},
};

class SqlSanitizeTest : public testing::TestWithParam<Case> {};

TEST_P(SqlSanitizeTest, Sanitizes) {
  const Case& c = GetParam();
  EXPECT_EQ(Sanitize(c.query, c.dialect), c.want);
}

INSTANTIATE_TEST_SUITE_P(Cases, SqlSanitizeTest, testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Every prefix of a query with secrets in literals: no piece of a secret survives, however
// the capture cut the text.
TEST(SqlSanitize, NoPrefixLeaksALiteral) {
  const std::pair<Dialect, std::string> queries[] = {
      {kPg,
       "INSERT INTO users (name, pw, note) VALUES ('zed-secret', E'x\\'zed-secret', $q$zed-secret$q$, "
       "U&'zed-secret', 12345) /* zed-secret */ -- zed-secret"},
      {kMy,
       "INSERT INTO users (name, pw) VALUES ('zed-secret', \"zed-secret\", 'x\\'zed-secret', 12345) "
       "/* zed-secret */ # zed-secret"},
  };
  for (const auto& [d, q] : queries) {
    for (size_t n = 0; n <= q.size(); ++n) {
      const std::string out = Sanitize(q.substr(0, n), d);
      EXPECT_EQ(out.find("zed"), std::string::npos) << n << ": " << out;
      EXPECT_EQ(out.find("secret"), std::string::npos) << n << ": " << out;
      EXPECT_EQ(out.find("12345"), std::string::npos) << n << ": " << out;
    }
  }
}

TEST(SqlSanitize, LongTextIsCutAtATokenBoundary) {
  std::string q = "SELECT ";
  for (int i = 0; i < 1000; ++i) q += "col" + std::to_string(i) + ", ";
  q += "x FROM t";
  const std::string out = Sanitize(q, kPg, 100);
  EXPECT_LE(out.size(), 103u);
  EXPECT_EQ(out.substr(out.size() - 3), "...");
  EXPECT_EQ(out.rfind("SELECT col0,", 0), 0u);
}

// The text reaches the bound exactly, then a space and a token: "..." follows the bound
// with no space before it (mysql_fuzz finding space_at_the_bound: 2,052 bytes of 2,048).
TEST(SqlSanitize, ASpaceAtTheBoundIsNotKeptBeforeTheCut) {
  for (const size_t max : {size_t{10}, size_t{11}, size_t{12}, size_t{2048}}) {
    SCOPED_TRACE(max);
    const std::string q = "CALL " + std::string(max - 5, 'p') + " x y";  // "CALL ppp" is `max` bytes
    const std::string out = Sanitize(q, kMy, max);
    EXPECT_LE(out.size(), max + 3);
    EXPECT_EQ(out, "CALL " + std::string(max - 5, 'p') + "...");
  }
}

TEST(SqlSanitize, FirstKeyword) {
  EXPECT_EQ(FirstKeyword("  select * from t"), "select");
  EXPECT_EQ(FirstKeyword("/* app=web */ INSERT INTO t VALUES (1)"), "INSERT");
  EXPECT_EQ(FirstKeyword("-- c\nWITH x AS (SELECT 1) SELECT * FROM x"), "WITH");
  EXPECT_EQ(FirstKeyword("(SELECT 1)"), "SELECT");
  EXPECT_EQ(FirstKeyword("'x'"), "");
  EXPECT_EQ(FirstKeyword("/* never closed"), "");
  EXPECT_EQ(FirstKeyword("SELECT1"), "");
}

}  // namespace
}  // namespace kspan::protocols::sql

namespace kspan::protocols::sql {
namespace {

TEST(SqlCollection, OneTableOfASimpleStatement) {
  EXPECT_EQ(CollectionName("SELECT name FROM users WHERE id IN (?)"), "users");
  EXPECT_EQ(CollectionName("select * from public.users;"), "public.users");
  EXPECT_EQ(CollectionName("SELECT count(*) FROM \"Users\""), "Users");
  EXPECT_EQ(CollectionName("INSERT INTO users VALUES (?, ?)"), "users");
  EXPECT_EQ(CollectionName("REPLACE INTO `t` VALUES (?)"), "t");
  EXPECT_EQ(CollectionName("UPDATE accounts SET a = a + ? WHERE id = ?"), "accounts");
  EXPECT_EQ(CollectionName("DELETE FROM sessions WHERE t < ?"), "sessions");
  EXPECT_EQ(CollectionName("SELECT a, b FROM t ORDER BY a, b"), "t");
  // Not one collection, or not known.
  EXPECT_EQ(CollectionName("SELECT * FROM a JOIN b ON a.id = b.id"), "");
  EXPECT_EQ(CollectionName("SELECT * FROM a, b"), "");
  EXPECT_EQ(CollectionName("SELECT * FROM a x, b y"), "");
  EXPECT_EQ(CollectionName("SELECT * FROM (SELECT ? ) s"), "");
  EXPECT_EQ(CollectionName("SELECT ? AS seven"), "");
  EXPECT_EQ(CollectionName("INSERT INTO t SELECT * FROM u"), "");
  EXPECT_EQ(CollectionName("SELECT * FROM t..."), "");
  EXPECT_EQ(CollectionName("SELECT * FROM ?"), "");
  EXPECT_EQ(CollectionName("BEGIN"), "");
  EXPECT_EQ(CollectionName("EXECUTE q(?)"), "");
  EXPECT_EQ(CollectionName(""), "");
}

}  // namespace
}  // namespace kspan::protocols::sql
