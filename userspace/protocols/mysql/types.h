// MySQL / MariaDB client/server protocol records: what the MySQL parser hands on.
// See README.md for the protocol and what is supported.
#pragma once

#include <cstdint>
#include <string>

#include "protocols/common/timing.h"
#include "protocols/common/unanswered.h"

namespace kspan::protocols::mysql {

// What a client's packet was. Every command starts a new sequence (sequence id 0); a
// client packet with any other sequence id continues an exchange the server started
// (authentication data, a LOCAL INFILE's file) and expects no answer of its own.
enum class Unit : uint8_t {
  kHandshake,   // HandshakeResponse41: answered by the authentication exchange's OK or ERR
  kSslRequest,  // the short HandshakeResponse asking for TLS: the rest is encrypted
  kData,        // a client packet that is no command (auth switch data, LOCAL INFILE data)
  kQuery,       // COM_QUERY
  kInitDb,      // COM_INIT_DB
  kPrepare,     // COM_STMT_PREPARE
  kExecute,     // COM_STMT_EXECUTE
  kStmtClose,   // COM_STMT_CLOSE: no answer
  kLongData,    // COM_STMT_SEND_LONG_DATA: no answer
  kQuit,        // COM_QUIT: no answer (the server closes)
  kOther,       // any other command (COM_PING, COM_STMT_RESET, ...): answered
};

// Whether a unit is an operation of its own (a span): a query, a prepare, an execute. The
// rest (the handshake, TLS request, authentication data, COM_INIT_DB, COM_PING, closing a
// statement, quitting) belongs to the connection.
inline bool IsOperation(Unit unit) {
  return unit == Unit::kQuery || unit == Unit::kPrepare || unit == Unit::kExecute;
}

// A client packet and its answer. The query text is sanitised (protocols/common/sql.h) as
// soon as it is parsed; the authentication response (password hash, plugin data) is never
// read.
struct Record {
  uint64_t seq = 0;
  Unit unit = Unit::kQuery;
  uint8_t command = 0;  // the command byte (kOther: which one)
  // The schema the connection uses: the HandshakeResponse's database, then each successful
  // COM_INIT_DB or USE; empty when none was chosen.
  std::string database;
  std::string user;  // kHandshake only
  // kQuery, kPrepare: the statement's sanitised text and first keyword. kExecute: those of
  // the statement it executes (remembered by statement id from its prepare's answer).
  std::string query;
  std::string operation;
  uint32_t statement_id = 0;   // kPrepare (from its answer), kExecute, kStmtClose
  bool query_unknown = false;  // kExecute of a statement prepared before kspan looked

  // The answer.
  bool errored = false;
  uint16_t error_code = 0;  // ERR packet's error code, when errored
  std::string sqlstate;     // its SQLSTATE (five characters), when the server sent one
  uint64_t data_rows = 0;   // result set rows received (text or binary)
  uint32_t result_sets = 0;
  bool mariadb = false;  // the server's greeting named MariaDB

  Timing request;
  Timing response;
  bool response_missing = false;
  Unanswered unanswered = Unanswered::kNoResponse;

  static constexpr size_t kMaxNameBytes = 64;  // MySQL's identifier length
};

}  // namespace kspan::protocols::mysql
