// libFuzzer harness for the memcached text protocol: drives the registered connection
// (protocols/memcache/spec.h) the way the tracker does, with the input cut into
// syscall-sized chunks in both directions.
//
// The input and the three ways each input runs (whole, split, chaos) are
// fuzz/connection_harness.h's.
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
#include "protocols/memcache/parse.h"
#include "protocols/memcache/spec.h"
#include "protocols/memcache/types.h"

namespace kspan::fuzz {
const char* const kHarness = "memcache_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;

namespace p = kspan::protocols;
namespace mc = kspan::protocols::memcache;

std::string Describe(const p::Record& env) {
  const auto& r = std::get<mc::Record>(env.body);
  return std::to_string(r.seq) + ' ' + std::string(mc::CommandName(r.command)) + ' ' +
         std::to_string(r.keys) + (r.noreply ? " noreply " : " - ") + std::to_string(r.request_value_bytes) +
         " => " + std::to_string(static_cast<int>(r.result)) + ' ' + std::to_string(r.hits) + ' ' +
         std::to_string(r.response_value_bytes) + ' ' + std::to_string(r.number) + ' ' + r.message +
         (r.response_missing ? " missing" : "");
}

// What every record must satisfy, however the bytes came.
void CheckRecords(const kspan::fuzz::ConnectionRun& run) {
  uint64_t last_seq = 0;
  for (const p::Record& env : run.records) {
    const auto* r = std::get_if<mc::Record>(&env.body);
    Check(r != nullptr, "record body is not memcache");
    Check(env.seq == r->seq && env.seq > last_seq, "records out of order");
    last_seq = env.seq;
    Check(r->message.size() <= mc::Record::kMaxMessageBytes, "message over its bound");
    Check(r->request_value_bytes <= (uint64_t{1} << 30), "value size over its bound");
    if (r->response_missing || r->noreply || r->command == mc::Command::kQuit) {
      Check(r->result == mc::Result::kNone, "an answer on a record that has none");
    }
    Check(env.response_missing == r->response_missing, "envelope and body disagree");
    if (r->result != mc::Result::kNone)
      Check(mc::Fits(r->command, r->result), "answer does not fit its command");
    // An error may cut a list of VALUE items short: the items before it stay counted.
    const bool error = r->result == mc::Result::kError || r->result == mc::Result::kClientError ||
                       r->result == mc::Result::kServerError;
    if (r->result != mc::Result::kValues && !error) Check(r->hits == 0, "hits without VALUE items");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  kspan::fuzz::FuzzConnection(mc::Spec(), input, Describe, CheckRecords);
  return 0;
}
