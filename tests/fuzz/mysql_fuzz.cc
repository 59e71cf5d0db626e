// libFuzzer harness for MySQL/MariaDB (client/server protocol): drives the registered connection
// (protocols/mysql/spec.h) the way the tracker does, with the input cut into
// syscall-sized chunks in both directions.
//
// The input and the three ways each input runs (whole, split, chaos) are
// fuzz/connection_harness.h's.
// Invariants include that no literal leaks into a record (a query text holds no quote
// character: MySQL's double quotes delimit strings) and the SQLSTATE is five characters.
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
#include "protocols/common/sql.h"
#include "protocols/mysql/parse.h"
#include "protocols/mysql/spec.h"
#include "protocols/mysql/types.h"

namespace kspan::fuzz {
const char* const kHarness = "mysql_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;

namespace p = kspan::protocols;
namespace my = kspan::protocols::mysql;

std::string Describe(const p::Record& env) {
  const auto& r = std::get<my::Record>(env.body);
  return std::to_string(r.seq) + ' ' + std::to_string(static_cast<int>(r.unit)) + ' ' +
         std::to_string(r.command) + ' ' + r.database + ' ' + r.user + ' ' + r.query + ' ' + r.operation +
         ' ' + std::to_string(r.statement_id) + (r.query_unknown ? " unknown" : "") + " => " +
         (r.errored ? "error " : "") + std::to_string(r.error_code) + ' ' + r.sqlstate + ' ' +
         std::to_string(r.data_rows) + ' ' + std::to_string(r.result_sets) + (r.mariadb ? " mariadb" : "") +
         (r.response_missing ? " missing" : "");
}

// The text outside `...` identifiers (kept as written, quotes and all).
std::string OutsideIdentifiers(const std::string& q) {
  std::string out;
  bool in = false;
  for (char c : q) {
    if (c == '`') in = !in;
    if (!in && c != '`') out.push_back(c);
  }
  return out;
}

// What every record must satisfy, however the bytes came.
void CheckRecords(const kspan::fuzz::ConnectionRun& run) {
  uint64_t last_seq = 0;
  for (const p::Record& env : run.records) {
    const auto* r = std::get_if<my::Record>(&env.body);
    Check(r != nullptr, "record body is not mysql");
    Check(env.seq == r->seq && env.seq > last_seq, "records out of order");
    last_seq = env.seq;
    Check(r->database.size() <= my::Record::kMaxNameBytes && r->user.size() <= my::Record::kMaxNameBytes,
          "name over its bound");
    Check(r->query.size() <= 2048 + 3, "query text over its bound");
    const std::string outside = OutsideIdentifiers(r->query);
    Check(outside.find('\'') == std::string::npos && outside.find('"') == std::string::npos,
          "a quote in the sanitised text");
    Check(r->sqlstate.empty() || r->sqlstate.size() == 5, "SQLSTATE not five characters");
    const std::string_view table = kspan::protocols::sql::CollectionName(r->query);
    Check(table.empty() || r->query.find(table) != std::string::npos, "a collection name not in the text");
    if (r->response_missing) Check(!r->errored && r->data_rows == 0, "an answer on a record that has none");
    Check(env.response_missing == r->response_missing, "envelope and body disagree");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  kspan::fuzz::FuzzConnection(my::Spec(), input, Describe, CheckRecords);
  return 0;
}
