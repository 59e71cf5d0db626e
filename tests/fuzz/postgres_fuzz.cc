// libFuzzer harness for PostgreSQL (protocol 3.0): drives the registered connection
// (protocols/postgres/spec.h) the way the tracker does, with the input cut into
// syscall-sized chunks in both directions.
//
// The input and the three ways each input runs (whole, split, chaos) are
// fuzz/connection_harness.h's.
// Invariants include that no literal leaks into a record: a query text holds no quote
// character outside a double-quoted identifier, and the SQLSTATE is five characters.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz/connection_harness.h"
#include "fuzz/fuzz_support.h"
#include "protocols/postgres/parse.h"
#include "protocols/postgres/spec.h"
#include "protocols/postgres/types.h"

namespace kspan::fuzz {
const char* const kHarness = "postgres_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;

namespace p = kspan::protocols;
namespace pg = kspan::protocols::postgres;

std::string Describe(const p::Record& env) {
  const auto& r = std::get<pg::Record>(env.body);
  return std::to_string(r.seq) + ' ' + std::to_string(static_cast<int>(r.unit)) + ' ' + r.database + ' ' +
         r.user + ' ' + r.query + ' ' + r.operation + ' ' + std::to_string(r.executes) +
         (r.prepared ? " prepared" : "") + (r.query_unknown ? " unknown" : "") + " => " +
         (r.errored ? "error " : "") + r.sqlstate + ' ' + r.severity + ' ' + r.command_tag + ' ' +
         std::to_string(r.tag_rows) + ' ' + std::to_string(r.data_rows) + ' ' + std::to_string(r.ssl_answer) +
         (r.response_missing ? " missing" : "");
}

// Whether `text` holds a single quote outside a double-quoted identifier: in PostgreSQL
// "it's" is a name and is kept; a quote anywhere else would be a literal's.
bool QuoteOutsideIdentifier(std::string_view text) {
  bool in_identifier = false;
  for (const char c : text) {
    if (c == '"') in_identifier = !in_identifier;  // "" inside a name toggles twice
    if (c == '\'' && !in_identifier) return true;
  }
  return false;
}

// What every record must satisfy, however the bytes came.
void CheckRecords(const kspan::fuzz::ConnectionRun& run) {
  uint64_t last_seq = 0;
  for (const p::Record& env : run.records) {
    const auto* r = std::get_if<pg::Record>(&env.body);
    Check(r != nullptr, "record body is not postgres");
    Check(env.seq == r->seq && env.seq > last_seq, "records out of order");
    last_seq = env.seq;
    Check(r->database.size() <= pg::Record::kMaxNameBytes && r->user.size() <= pg::Record::kMaxNameBytes,
          "name over its bound");
    Check(r->query.size() <= 2048 + 3, "query text over its bound");
    Check(!QuoteOutsideIdentifier(r->query), "a quote in the sanitised text outside an identifier");
    Check(r->sqlstate.empty() || r->sqlstate.size() == 5, "SQLSTATE not five characters");
    if (r->response_missing) Check(!r->errored && r->data_rows == 0, "an answer on a record that has none");
    Check(env.response_missing == r->response_missing, "envelope and body disagree");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  kspan::fuzz::FuzzConnection(pg::Spec(), input, Describe, CheckRecords);
  return 0;
}
