// Memcached text protocol records: what the memcache parser hands the correlator. See
// README.md for the protocol and what is supported.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/common/timing.h"
#include "protocols/common/unanswered.h"

namespace kspan::protocols::memcache {

// The commands kspan parses, as their lower-case wire word (CommandName). Numbered for
// tables and tests only; never shared with the kernel.
enum class Command : uint8_t {
  kGet,
  kGets,
  kGat,
  kGats,
  kSet,
  kAdd,
  kReplace,
  kAppend,
  kPrepend,
  kCas,
  kIncr,
  kDecr,
  kDelete,
  kTouch,
  kVersion,
  kStats,
  kFlushAll,
  kVerbosity,
  kQuit,
};

std::string_view CommandName(Command c);

// get, gets, gat, gats: answered by VALUE items and END.
bool IsRetrieval(Command c);
// set, add, replace, append, prepend, cas: a data block follows the command line.
bool IsStorage(Command c);

// What the server answered, from its first line (protocol.txt, "Error strings" and each
// command's section).
enum class Result : uint8_t {
  kNone,         // no answer (noreply, quit, or it never came)
  kStored,       // STORED
  kNotStored,    // NOT_STORED
  kExists,       // EXISTS
  kNotFound,     // NOT_FOUND
  kDeleted,      // DELETED
  kTouched,      // TOUCHED
  kValues,       // zero or more VALUE items, then END (a bare END: no item)
  kStats,        // STAT (or ITEM / PREFIX) lines, then END
  kNumber,       // incr/decr: the new value
  kOk,           // OK
  kReset,        // RESET (stats reset)
  kVersion,      // VERSION <version>
  kError,        // ERROR: an unknown command name
  kClientError,  // CLIENT_ERROR <message>
  kServerError,  // SERVER_ERROR <message>
};

// The answer's status word as sent ("STORED", "CLIENT_ERROR", ...); "" for answers that
// are data rather than a status (kNone, kValues, kStats, kNumber, kVersion).
std::string_view ResultWord(Result r);

// A command and its answer. Keys and values are never kept: they may hold user data.
struct Record {
  uint64_t seq = 0;  // the command's number on its connection (protocols::RequestStart::seq)
  Command command = Command::kGet;
  uint32_t keys = 0;     // keys the command names (a multi-key get names several)
  bool noreply = false;  // the client asked for no answer
  // Storage commands: the size of the data block sent.
  uint64_t request_value_bytes = 0;

  Result result = Result::kNone;
  uint32_t hits = 0;                  // kValues: VALUE items returned
  uint64_t response_value_bytes = 0;  // kValues: sum of their data block sizes
  uint64_t number = 0;                // kNumber: the value incr/decr left
  // kError / kClientError / kServerError: the server's message (at most kMaxMessageBytes);
  // kVersion: the version string.
  std::string message;
  static constexpr size_t kMaxMessageBytes = 256;

  Timing request;
  Timing response;                                  // all 0 when no answer came
  bool response_missing = false;                    // an answer was expected and never came
  Unanswered unanswered = Unanswered::kNoResponse;  // why, when response_missing
};

}  // namespace kspan::protocols::memcache
