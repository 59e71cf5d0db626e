// Redis (RESP2 and RESP3) records: what the Redis parser hands the correlator. See
// README.md for the protocol and what is supported.
#pragma once

#include <cstdint>
#include <string>

#include "protocols/common/timing.h"
#include "protocols/common/unanswered.h"

namespace kspan::protocols::redis {

// What the server answered, by the reply's RESP type (its first byte).
enum class Reply : uint8_t {
  kNone,       // no answer (CLIENT REPLY OFF/SKIP, or it never came)
  kSimple,     // +OK, +QUEUED, ...
  kError,      // -ERR ... or RESP3 !<len> (a bulk error)
  kInteger,    // :<n>
  kBulk,       // $<len> (RESP3 =<len> verbatim too)
  kNull,       // $-1, *-1 (RESP2) or _ (RESP3)
  kArray,      // *<n>
  kMap,        // %<n> (RESP3)
  kSet,        // ~<n> (RESP3)
  kScalar,     // RESP3 boolean #, double ',' or big number '('
  kSubscribe,  // a SUBSCRIBE-family confirmation (RESP2 array or RESP3 push)
};

// A command and its reply. Only the command's name (and the subcommand of a container
// command such as CLIENT or CONFIG) is kept: arguments may hold keys, values and secrets
// (AUTH, HELLO ... AUTH, MIGRATE ... AUTH), and are never copied out of the stream.
struct Record {
  uint64_t seq = 0;             // the command's number on its connection (protocols::RequestStart::seq)
  std::string command;          // as sent (no case normalisation), at most kMaxNameBytes
  std::string subcommand;       // container commands only (CLIENT SETNAME, CONFIG GET, ...)
  uint32_t args = 0;            // arguments after the command name (the subcommand included)
  bool inline_command = false;  // sent as an inline (telnet-style) line, not a RESP array
  // The connection's database index when the command was sent (SELECT seen or the
  // connection seen from its start, when it is 0); -1 when unknown.
  int64_t db = -1;
  int64_t select_db = -1;  // SELECT: its index argument, when a number
  // EXEC answered (EXECABORT included): the commands queued since MULTI
  // (db.operation.batch.size).
  bool exec = false;
  uint32_t queued = 0;
  bool in_transaction = false;  // sent between MULTI and EXEC/DISCARD (answered QUEUED)

  Reply reply = Reply::kNone;
  // kError: the error's prefix, its first word (ERR, WRONGTYPE, NOAUTH, ...), at most
  // kMaxNameBytes; the message after it is never kept (Redis quotes arguments in it). For
  // a reply that is not an error but holds one (EXEC's results), the first such prefix.
  std::string error_prefix;
  bool nested_error = false;     // error_prefix came from inside an aggregate reply
  bool reply_truncated = false;  // a hole cut the reply's framing: its rest was not read
  uint64_t elements = 0;         // aggregate replies: elements (map: pairs)

  Timing request;
  Timing response;                                  // all 0 when no answer came
  bool response_missing = false;                    // an answer was expected and never came
  Unanswered unanswered = Unanswered::kNoResponse;  // why, when response_missing

  static constexpr size_t kMaxNameBytes = 32;
};

}  // namespace kspan::protocols::redis
