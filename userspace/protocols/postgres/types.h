// PostgreSQL (frontend/backend protocol 3.0) records: what the PostgreSQL parser hands on.
// See README.md for the protocol and what is supported.
#pragma once

#include <cstdint>
#include <string>

#include "protocols/common/timing.h"
#include "protocols/common/unanswered.h"

namespace kspan::protocols::postgres {

// What a client's unit of work was: one message, or the extended-query messages up to
// their Sync (the server answers each with messages ending in ReadyForQuery).
enum class Unit : uint8_t {
  kStartup,     // StartupMessage: answered by authentication ... ReadyForQuery
  kSslRequest,  // SSLRequest / GSSENCRequest: answered by one byte
  kCancel,      // CancelRequest (on its own connection): no answer
  kPassword,    // PasswordMessage / SASL responses: part of the startup's exchange
  kQuery,       // simple query ('Q')
  kExtended,    // Parse / Bind / Describe / Execute / Close ... Sync
  kFunction,    // FunctionCall ('F')
  kCopyData,    // CopyData / CopyDone / CopyFail from the client (COPY FROM STDIN)
  kTerminate,   // Terminate ('X')
};

// Whether a unit is an operation of its own (a span on either side): a query, an
// extended-query unit up to its Sync, a function call. The rest (startup, SSLRequest,
// password, COPY data, Terminate, Cancel) belongs to the connection or to another unit.
inline bool IsOperation(Unit unit) {
  return unit == Unit::kQuery || unit == Unit::kExtended || unit == Unit::kFunction;
}

// A unit of work and its answer. The query text is sanitised (protocols/common/sql.h) as
// soon as it is parsed: literals never stay in memory past the parse, and the password
// message's content is never read.
struct Record {
  uint64_t seq = 0;
  Unit unit = Unit::kQuery;
  // kStartup: the database and user asked for (startup parameters "database", "user").
  std::string database;
  std::string user;
  // The connection's StartupMessage asked for replication ("replication" other than
  // false/off/no/0): a walsender's session (physical or logical), whose START_REPLICATION
  // streams until the end of the session.
  bool replication = false;
  // kQuery / kExtended: the sanitised text of the statement run (the last one executed in
  // the unit), its first keyword (SELECT, INSERT, ...), and how many Executes the unit
  // held (more than one: a batch).
  std::string query;
  std::string operation;
  uint32_t executes = 0;
  bool prepared = false;       // kExtended: the statement was prepared by name earlier
  bool query_unknown = false;  // Execute of a statement parsed before kspan looked
  // The query text is a prefix: the message was longer than what kspan read of it (a
  // capture hole: the query was longer than --capture-bytes; or the 64 KiB read bound, or
  // the 2 KiB bound of the sanitised text). `query` is the sanitised prefix, ending "...".
  bool query_truncated = false;

  // The answer.
  bool errored = false;
  std::string sqlstate;     // ErrorResponse field C (five characters), when errored
  std::string severity;     // ErrorResponse field V (or S): ERROR, FATAL, PANIC
  std::string command_tag;  // the last CommandComplete's command word (SELECT, INSERT, COPY)
  int64_t tag_rows = -1;    // its row count, -1 when the tag has none
  uint64_t data_rows = 0;   // DataRow messages received
  char ssl_answer = 0;      // kSslRequest: 'S', 'N' or 'G'
  // The answer was a COPY: CopyInResponse (COPY FROM STDIN: the client sent the rows) or
  // CopyOutResponse (COPY TO STDOUT: the server sent them). The rows are CommandComplete's
  // count (tag_rows), not DataRows.
  bool copy_in = false;
  bool copy_out = false;
  // A capture hole took the answer's framing (a SELECT answer larger than the capture):
  // data_rows is CommandComplete's count when its end was found and trusted, else 0, and the
  // status and tag are absent unless trusted (parse.h).
  bool framing_lost = false;

  Timing request;
  Timing response;
  bool response_missing = false;
  Unanswered unanswered = Unanswered::kNoResponse;

  static constexpr size_t kMaxNameBytes = 63;  // NAMEDATALEN - 1
};

}  // namespace kspan::protocols::postgres
