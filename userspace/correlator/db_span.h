// Database (data store) records -> OpenTelemetry CLIENT spans, per the database client
// span conventions (semantic-conventions v1.44.0, docs/db/database-spans.md; stable).
//
// A data store's own side is not a span: when the traced process is the server (memcached
// itself), there is no span, and the correlator does not open one for its requests
// (its registry row says callee_spans = false). PostgreSQL is the exception: its server
// makes a SERVER span of each operation (BuildPostgresSpan), so that the caller's context,
// carried across hosts (docs/tracing.md), reaches the database.
//
// Memcached (text protocol, protocols/memcache/):
//
//   name    "{db.operation.name} {server.address}:{server.port}": memcached has no
//           collection or namespace, so the target is the server (v1.44 "Name")
//   kind    CLIENT
//   start   the command's first byte        end   the answer's last byte (the command's
//                                                 last when there is no answer)
//   status  ERROR for ERROR, CLIENT_ERROR and SERVER_ERROR answers, with the server's
//           message as the status message; UNSET otherwise, also when no answer came
//           (noreply, quit, or the connection ended first: kspan.response.missing)
//
//   db.system.name            "memcached"
//   db.operation.name         the command as sent (lower case): get, set, incr, ...
//   db.response.status_code   the answer's status word: STORED, NOT_STORED, EXISTS,
//                             NOT_FOUND, DELETED, TOUCHED, OK, RESET, ERROR,
//                             CLIENT_ERROR, SERVER_ERROR; absent for data answers (VALUE
//                             items, a number, VERSION, a stats report)
//   error.type                the status word, for the three error answers
//   db.response.returned_rows retrieval commands: the VALUE items returned (hits)
//   memcached.keys            retrieval commands: the keys asked for (misses = keys -
//                             returned rows)
//   server.address/.port      the socket's remote end (what the client connected to)
//   network.peer.address/.port the same
//   kspan.response.missing    true when an answer was expected and never came
//
// Keys, values and numbers are never exported: they may hold user data. A multi-key get
// is one command, not a batch (v1.44 Redis note on MGET), so db.operation.batch.size is
// not set.
//
// Redis (RESP2/RESP3, protocols/redis/; v1.44 docs/db/redis.md, development status):
//
//   name    "{db.operation.name} {server.address}:{server.port}" (db.namespace is a number:
//           the Redis page says to keep it out of the name)
//   kind    CLIENT; start, end as memcached
//   status  ERROR for an error reply (-ERR ..., RESP3 bulk error), and for EXEC whose
//           results hold one; UNSET otherwise. No status message: Redis quotes the
//           command's arguments in its messages.
//
//   db.system.name            "redis"
//   db.operation.name         the command as sent (no case normalisation)
//   db.query.text             sanitised: the command, a container command's subcommand
//                             (CLIENT SETNAME), one "?" per other argument (at most 16,
//                             then "..."): never an argument, so AUTH/HELLO secrets and
//                             keys are not exported
//   db.namespace              the database index (SELECT seen, or 0 on a connection seen
//                             from its start); absent when unknown
//   db.response.status_code   the error's prefix (ERR, WRONGTYPE, NOAUTH, ...; "_OTHER"
//                             when it is not an upper-case word)
//   error.type                the same
//   db.operation.batch.size   EXEC: the commands queued since MULTI (unless exactly one)
//   redis.queued              true for a command sent between MULTI and EXEC (answered
//                             QUEUED: executed at EXEC)
//   server.*, network.peer.*, kspan.response.missing as memcached
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "events/events.h"
#include "model/span.h"
#include "protocols/memcache/types.h"
#include "protocols/mysql/types.h"
#include "protocols/postgres/types.h"
#include "protocols/redis/types.h"

namespace kspan::correlator {

// The connection a record came from, as the process that owns the socket sees it.
struct DbConnContext {
  bool is_server = false;     // this process is the data store
  events::SocketTuple tuple;  // local = this process's end, remote = the peer
};

// The CLIENT span of one memcached command; nullopt on the server's side.
std::optional<model::Span> BuildMemcacheSpan(const protocols::memcache::Record& record,
                                             const DbConnContext& conn,
                                             std::shared_ptr<const model::Resource> resource);

// The CLIENT span of one Redis command; nullopt on the server's side.
std::optional<model::Span> BuildRedisSpan(const protocols::redis::Record& record, const DbConnContext& conn,
                                          std::shared_ptr<const model::Resource> resource);

// The span of one PostgreSQL unit of work (a query, an extended-query unit up to its Sync):
// CLIENT on the client's side, SERVER on the server's; nullopt for units that are no
// operation of their own (startup, SSLRequest, password, COPY data, Terminate, Cancel:
// postgres::IsOperation) and, on the server's side, for a replication connection's (a
// walsender's START_REPLICATION streams for the session's life). Per v1.44
// docs/db/postgresql.md and sql.md (which define the client's span; the server's has the
// same name and db.* attributes, its local end as server.address/.port and the caller as
// client.address/.port and network.peer.*):
//   name    "{db.operation.name} {target}": db.collection.name (the one table a simple
//           statement names, sql::CollectionName), else db.namespace
//   db.system.name "postgresql"; db.namespace the database of the StartupMessage (absent
//   when joined mid-stream); db.operation.name the statement's first keyword as written,
//   "BATCH {op}" for a unit with several Executes; db.query.text the sanitised text;
//   db.operation.batch.size the Executes when more than one; db.response.status_code and
//   error.type the SQLSTATE of an ErrorResponse (status ERROR; no message: it quotes
//   values); db.response.returned_rows the DataRows received (COPY TO STDOUT: the rows of
//   CommandComplete "COPY n"); kspan.db.response.affected_rows the rows of a COPY FROM
//   STDIN; kspan.db.query.truncated when db.query.text is a prefix (a query longer than
//   the capture, or than the read bounds).
std::optional<model::Span> BuildPostgresSpan(const protocols::postgres::Record& record,
                                             const DbConnContext& conn,
                                             std::shared_ptr<const model::Resource> resource);

// The CLIENT span of one MySQL/MariaDB command that is an operation (COM_QUERY,
// COM_STMT_PREPARE, COM_STMT_EXECUTE); nullopt on the server's side and for the rest
// (handshake, COM_INIT_DB, COM_STMT_CLOSE, COM_PING, ...). Per v1.44 docs/db/mariadb.md,
// mysql.md and sql.md:
//   name    "{db.operation.name} {target}": db.collection.name, else db.namespace, else the
//           operation
//   db.system.name "mariadb" when the server's greeting names MariaDB, else "mysql";
//   db.namespace the schema in use (handshake, COM_INIT_DB, USE); db.operation.name the
//   statement's first keyword as written, "PREPARE" for COM_STMT_PREPARE; db.query.text
//   the sanitised text (an execute: its statement's, by statement id);
//   db.response.status_code and error.type the ERR packet's error code as a string
//   (status ERROR; the message is not kept: it quotes values); db.response.returned_rows
//   the result rows received.
std::optional<model::Span> BuildMysqlSpan(const protocols::mysql::Record& record, const DbConnContext& conn,
                                          std::shared_ptr<const model::Resource> resource);

}  // namespace kspan::correlator
