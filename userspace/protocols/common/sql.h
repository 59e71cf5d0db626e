// SQL text for db.query.text, sanitised: what the SQL database protocols (PostgreSQL, and
// MySQL/MariaDB after it) put on a span instead of the query as sent. Per the database
// span conventions (semantic-conventions v1.44.0, docs/db/database-spans.md, "Sanitization
// of db.query.text"): every literal becomes `?`, so values, e-mail addresses and secrets in
// a query never leave the host.
//
//   'text', E'…', U&'…', B'…', X'…', N'…'  -> ?     (doubled quotes and E-string escapes
//   $$…$$, $tag$…$tag$                    -> ?      inside them are part of the literal)
//   42, 3.5, 1e-3, 0x1F, .5               -> ?
//   "…" (double quotes)                    kept in PostgreSQL (an identifier), -> ? in MySQL
//                                          (a string unless ANSI_QUOTES)
//   -- …, # … (MySQL), /* … */ (nested in PostgreSQL)   removed
//   IN (?, ?, ?)                          -> IN (?)
//   runs of white space                   -> one space
//   $1, :name, ? (parameters)             kept: they are placeholders, not values
//
// A literal or comment cut off by the end of the text (a query longer than the capture)
// becomes `?` (or nothing) and ends the text: no prefix of a value is ever kept. Pure
// functions; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kspan::protocols::sql {

enum class Dialect : unsigned char { kPostgres, kMySql };

// The sanitised text, at most `max_bytes` (then cut at a token boundary and "..." appended).
std::string Sanitize(std::string_view query, Dialect dialect, size_t max_bytes = 2048);

// db.query.text: Sanitize()'s text, or with `raw` the query as sent, cut at `max_bytes`
// (then "..." appended; a UTF-8 sequence is not split) for an operator who opted in.
std::string QueryText(std::string_view query, Dialect dialect, bool raw, size_t max_bytes = 2048);

// The query's first keyword as written (SELECT, insert, WITH, …), for db.operation.name
// when the protocol has no better source; empty when the text does not start with a word
// (after comments and white space). At most 32 bytes.
std::string_view FirstKeyword(std::string_view query);

// The one table a simple statement of a sanitised text names, for db.collection.name
// (v1.44: only when the query targets a single collection): SELECT … FROM t, INSERT
// [INTO] t, REPLACE INTO t, UPDATE t, DELETE FROM t, COPY t, as written (schema-qualified names
// kept, quotes removed). Empty for anything else: joins, several tables, subqueries,
// unions, other statements. Points into `query`.
std::string_view CollectionName(std::string_view query);

}  // namespace kspan::protocols::sql
