// libFuzzer harness for the HTTP/1 connection parser: drives http1::Connection the way the
// tracker does, with the input cut into syscall-sized chunks in both directions.
//
// Input: the request stream's bytes, then the marker "\n~~~~\n", then the response stream's
// bytes (without the marker both directions get the whole input), so seeds are readable
// HTTP. How the streams are cut, reordered and holed comes from a PRNG seeded by a hash of
// the input: every mutation also changes the cuts.
//
// Each input runs three ways:
//   whole  - each stream as one syscall, all captured;
//   split  - the same bytes in random small syscalls with random drains (requests first,
//            so every response's request is there): must give exactly the records `whole`
//            gives, since the parse may not depend on where syscalls cut the bytes;
//   chaos  - interleaved directions, holes, reordering, lost chunks, a small buffer cap:
//            must not crash and must keep the record invariants.
// In a campaign an input gets one of the two (whole and split compared, or chaos), picked
// by a hash of the input, each with its own PRNG, so an input costs half the parsing and
// libFuzzer's coverage feedback is per run; the corpus replay (KSPAN_FUZZ_REPLAY) runs
// both, with the same cuts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "protocols/http1/connection.h"

namespace kspan::fuzz {
const char* const kHarness = "http1_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;
using kspan::fuzz::Fail;
using kspan::fuzz::Fnv1a;
using kspan::fuzz::Rng;

using kspan::protocols::http1::Connection;
using kspan::protocols::http1::Limits;
using kspan::protocols::http1::Message;
using kspan::protocols::http1::Record;
using kspan::protocols::http1::Stats;

constexpr std::string_view kMarker = "\n~~~~\n";

void Drain(Connection* c, std::vector<Record>* out) {
  Stats stats;
  c->Drain(out, &stats);
}

// Everything about a record except where and when its bytes moved.
std::string Describe(const Message& m) {
  std::string s = std::string(m.method()) + ' ' + std::string(m.target()) + ' ' +
                  std::to_string(m.status_code) + ' ' + std::string(m.reason()) + ' ' +
                  std::string(m.version()) + ' ' + std::to_string(m.body_size) +
                  (m.body_truncated ? " T " : " - ") + m.body_prefix + '|';
  for (const auto& [k, v] : m.headers()) s += std::string(k) + ':' + std::string(v) + '|';
  return s;
}

std::string Describe(const Record& r) {
  std::string s =
      Describe(r.request) + "=>" + (r.response_missing ? std::string("missing") : Describe(r.response));
  for (int i : r.informational_statuses) s += '+' + std::to_string(i);
  return s;
}

void CheckRecord(const Record& r, const Limits& limits) {
  for (const Message* m : {&r.request, &r.response}) {
    Check(m->body_prefix.size() <= limits.max_body_prefix, "body_prefix over the limit");
    Check(m->body_prefix.size() <= m->body_size, "body_prefix longer than body_size");
    Check(m->body_truncated ||
              m->body_prefix.size() == std::min<uint64_t>(m->body_size, limits.max_body_prefix),
          "untruncated body_prefix short");
  }
  Check(!r.request.method().empty(), "record without a request method");
  if (!r.response_missing)
    Check(r.response.status_code >= 100 && r.response.status_code <= 599, "bad status");
}

std::vector<Record> RunWhole(std::string_view req, std::string_view resp) {
  Connection c(true, Limits{});
  std::vector<Record> out;
  if (!req.empty()) c.AddData(true, 0, req, static_cast<uint32_t>(req.size()), 1, 1, 1);
  if (!resp.empty()) c.AddData(false, 0, resp, static_cast<uint32_t>(resp.size()), 2, 2, 2);
  Drain(&c, &out);
  c.Close();
  Drain(&c, &out);
  return out;
}

std::vector<Record> RunSplit(std::string_view req, std::string_view resp, Rng* rng) {
  Connection c(true, Limits{});
  std::vector<Record> out;
  uint64_t t = 1;
  const uint64_t max_cut = rng->In(1, 64);
  for (auto [egress, bytes] : {std::pair{true, req}, std::pair{false, resp}}) {
    uint64_t pos = 0;
    while (pos < bytes.size()) {
      const size_t n = std::min<uint64_t>(rng->In(1, max_cut), bytes.size() - pos);
      c.AddData(egress, pos, bytes.substr(pos, n), static_cast<uint32_t>(n), t, t, 1);
      ++t;
      pos += n;
      if (rng->OneIn(3)) Drain(&c, &out);
    }
  }
  Drain(&c, &out);
  c.Close();
  Drain(&c, &out);
  return out;
}

void RunChaos(std::string_view req, std::string_view resp, Rng* rng) {
  Limits limits;
  if (rng->OneIn(2)) limits.max_buffered_bytes = rng->In(16, 4096);
  limits.max_body_prefix = rng->In(0, 64);
  limits.max_pending_requests = rng->In(1, 8);
  const bool client = rng->OneIn(2);
  Connection c(client, limits);

  // Both streams cut into syscalls, some partly captured, a little out of order.
  const std::vector<kspan::fuzz::StreamPiece> chunks = kspan::fuzz::CutIntoSyscalls(rng, req, resp, client);
  std::vector<Record> out;
  uint64_t t = 1;
  for (const kspan::fuzz::StreamPiece& ch : chunks) {
    if (rng->OneIn(40)) continue;  // a lost event
    c.AddData(ch.egress, ch.pos, ch.bytes.substr(0, ch.captured), static_cast<uint32_t>(ch.bytes.size()), t,
              t + 1, static_cast<uint32_t>(t));
    t += 2;
    if (rng->OneIn(4)) Drain(&c, &out);
  }
  Drain(&c, &out);
  c.Close();
  Drain(&c, &out);
  for (const Record& r : out) CheckRecord(r, limits);
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
  const uint64_t hash = Fnv1a(input);
#ifdef KSPAN_FUZZ_REPLAY
  const bool compare = true, chaos = true;
#else
  const bool compare = (hash >> 32) % 2 == 0, chaos = !compare;
#endif

  if (compare) {
    Rng rng(hash);
    const std::vector<Record> whole = RunWhole(req, resp);
    for (const Record& r : whole) CheckRecord(r, Limits{});
    const std::vector<Record> split = RunSplit(req, resp, &rng);
    bool same = whole.size() == split.size();
    for (size_t i = 0; same && i < whole.size(); ++i) same = Describe(whole[i]) == Describe(split[i]);
    if (!same) {
      for (const Record& r : whole) std::fprintf(stderr, "whole: %s\n", Describe(r).c_str());
      for (const Record& r : split) std::fprintf(stderr, "split: %s\n", Describe(r).c_str());
      Fail("split gives different records than whole");
    }
  }
  if (chaos) {
    Rng rng(hash ^ 0x6368616F73ULL);  // "chaos": cuts of its own, whatever ran before
    RunChaos(req, resp, &rng);
  }
  return 0;
}
