// libFuzzer harness for Redis (RESP2/RESP3): drives the registered connection
// (protocols/redis/spec.h) the way the tracker does, with the input cut into syscall-sized
// chunks in both directions.
//
// Input: the command stream's bytes, then the marker "\n~~~~\n", then the answer stream's
// bytes (without the marker both directions get the whole input), so seeds are readable.
// How the streams are cut, reordered and holed comes from a PRNG seeded by a hash of the
// input: every mutation also changes the cuts.
//
// Each input runs three ways:
//   whole  - each stream as one syscall, all captured;
//   split  - the same bytes in random small syscalls with random drains (commands first,
//            so every answer's command is there): must give exactly the records `whole`
//            gives, since the parse may not depend on where syscalls cut the bytes;
//   chaos  - interleaved directions, holes, reordering, lost chunks: must not crash and
//            must keep the record invariants.
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

#include "fuzz/fuzz_support.h"
#include "protocols/redis/parse.h"
#include "protocols/redis/spec.h"
#include "protocols/redis/types.h"

namespace kspan::fuzz {
const char* const kHarness = "redis_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;
using kspan::fuzz::Fail;
using kspan::fuzz::Fnv1a;
using kspan::fuzz::Rng;

namespace p = kspan::protocols;
namespace rd = kspan::protocols::redis;

constexpr std::string_view kMarker = "\n~~~~\n";

struct Run {
  std::unique_ptr<p::ProtocolConnection> conn;
  std::vector<p::RequestStart> started;
  std::vector<p::Record> records;
  explicit Run(bool client) : conn(rd::Spec().make(client, p::ProtocolOptions{})) {}
  void Add(bool egress, uint64_t pos, std::string_view captured, uint32_t total, uint64_t t) {
    p::Chunk c;
    c.egress = egress;
    c.position = pos;
    c.data = captured;
    c.total_len = total;
    c.first_ns = t;
    c.last_ns = t;
    c.tid = 1;
    conn->AddData(c);
  }
  void Drain() {
    p::ConnectionStats stats;
    conn->Drain(&started, &records, &stats);
  }
  void Finish() {
    Drain();
    conn->Close(kspan::protocols::Unanswered::kNoResponse);
    Drain();
  }
};

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
void CheckRecords(const Run& run) {
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
  // Every record's command was announced first.
  for (const p::Record& env : run.records) {
    bool seen = false;
    for (const p::RequestStart& s : run.started) seen = seen || s.seq == env.seq;
    Check(seen, "record without its RequestStart");
  }
}

Run RunWhole(std::string_view req, std::string_view resp) {
  Run run(true);
  if (!req.empty()) run.Add(true, 0, req, static_cast<uint32_t>(req.size()), 1);
  if (!resp.empty()) run.Add(false, 0, resp, static_cast<uint32_t>(resp.size()), 2);
  run.Finish();
  return run;
}

Run RunSplit(std::string_view req, std::string_view resp, Rng* rng) {
  Run run(true);
  uint64_t t = 1;
  const uint64_t max_cut = rng->In(1, 64);
  for (auto [egress, bytes] : {std::pair{true, req}, std::pair{false, resp}}) {
    uint64_t pos = 0;
    while (pos < bytes.size()) {
      const size_t n = std::min<uint64_t>(rng->In(1, max_cut), bytes.size() - pos);
      run.Add(egress, pos, bytes.substr(pos, n), static_cast<uint32_t>(n), t++);
      pos += n;
      if (rng->OneIn(3)) run.Drain();
    }
  }
  run.Finish();
  return run;
}

void RunChaos(std::string_view req, std::string_view resp, Rng* rng) {
  const bool client = rng->OneIn(2);
  Run run(client);
  const std::vector<kspan::fuzz::StreamPiece> pieces = kspan::fuzz::CutIntoSyscalls(rng, req, resp, client);
  uint64_t t = 1;
  for (const kspan::fuzz::StreamPiece& pc : pieces) {
    if (rng->OneIn(40)) continue;  // a lost event
    run.Add(pc.egress, pc.pos, pc.bytes.substr(0, pc.captured), static_cast<uint32_t>(pc.bytes.size()), t);
    t += 2;
    if (rng->OneIn(4)) run.Drain();
  }
  run.Finish();
  CheckRecords(run);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view req = input, resp = input;
  if (const size_t m = input.find(kMarker); m != std::string_view::npos) {
    req = input.substr(0, m);
    resp = input.substr(m + kMarker.size());
  }
  Rng rng(Fnv1a(input));

  const Run whole = RunWhole(req, resp);
  CheckRecords(whole);
  const Run split = RunSplit(req, resp, &rng);
  CheckRecords(split);
  bool same = whole.records.size() == split.records.size();
  for (size_t i = 0; same && i < whole.records.size(); ++i) {
    same = Describe(whole.records[i]) == Describe(split.records[i]);
  }
  if (!same) {
    for (const auto& r : whole.records) std::fprintf(stderr, "whole: %s\n", Describe(r).c_str());
    for (const auto& r : split.records) std::fprintf(stderr, "split: %s\n", Describe(r).c_str());
    Fail("split gives different records than whole");
  }
  RunChaos(req, resp, &rng);
  return 0;
}
