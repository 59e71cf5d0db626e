// libFuzzer harness for Redis (RESP2/RESP3): drives the registered connection
// (protocols/redis/spec.h) the way the tracker does, with the input cut into syscall-sized
// chunks in both directions.
//
// The input and the three ways each input runs (whole, split, chaos) are
// fuzz/connection_harness.h's.
// Invariants include that no argument leaks into a record: every kept name is a plausible
// command word and the query text is names and `?` only.
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
#include "protocols/redis/parse.h"
#include "protocols/redis/spec.h"
#include "protocols/redis/types.h"

namespace kspan::fuzz {
const char* const kHarness = "redis_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;

namespace p = kspan::protocols;
namespace rd = kspan::protocols::redis;

std::string Describe(const p::Record& env) {
  const auto& r = std::get<rd::Record>(env.body);
  return std::to_string(r.seq) + ' ' + r.command + ' ' + r.subcommand + ' ' + std::to_string(r.args) + ' ' +
         std::to_string(r.db) + (r.inline_command ? " inline" : "") + " => " +
         std::to_string(static_cast<int>(r.reply)) + ' ' + r.error_prefix +
         (r.nested_error ? " nested " : " ") + std::to_string(r.elements) + ' ' + std::to_string(r.queued) +
         (r.exec ? " exec" : "") + (r.in_transaction ? " queued" : "") +
         (r.response_missing ? " missing" : "");
}

bool Plausible(std::string_view s) {
  if (s.size() > rd::Record::kMaxNameBytes) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-' || c == '|' || c == ':';
    if (!ok) return false;
  }
  return true;
}

// What every record must satisfy, however the bytes came.
void CheckRecords(const kspan::fuzz::ConnectionRun& run) {
  uint64_t last_seq = 0;
  for (const p::Record& env : run.records) {
    const auto* r = std::get_if<rd::Record>(&env.body);
    Check(r != nullptr, "record body is not redis");
    Check(env.seq == r->seq && env.seq > last_seq, "records out of order");
    last_seq = env.seq;
    Check(!r->command.empty() && Plausible(r->command), "command name not a plausible name");
    Check(Plausible(r->subcommand), "subcommand not a plausible name");
    Check(Plausible(r->error_prefix), "error prefix not a plausible word");
    Check(r->db >= -1, "database index below -1");
    const std::string q = rd::QueryText(*r);
    Check(q.size() <= 2 * rd::Record::kMaxNameBytes + 2 + 2 * rd::kMaxPlaceholders + 4,
          "query text over its bound");
    if (r->response_missing) Check(r->reply == rd::Reply::kNone, "an answer on a record that has none");
    Check(env.response_missing == r->response_missing, "envelope and body disagree");
    if (r->reply == rd::Reply::kError)
      Check(!r->error_prefix.empty() && !r->nested_error, "error without prefix");
    if (r->exec) Check(r->reply != rd::Reply::kNone, "EXEC counted without its answer");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  kspan::fuzz::FuzzConnection(rd::Spec(), input, Describe, CheckRecords);
  return 0;
}
