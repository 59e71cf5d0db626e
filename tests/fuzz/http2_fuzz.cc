// libFuzzer harness for HTTP/2 (protocols/http2): the frame parser, the streams and HPACK
// (nghttp2's inflater and the fail-closed decoder), driven through the registered
// connection the way the tracker does.
//
// Input: the client's bytes (starting with the preface, or not), then the marker
// "\n~~~~\n", then the server's bytes (without the marker both directions get the whole
// input). How the streams are cut, reordered and holed comes from a PRNG seeded by a hash
// of the input.
//
// Each input runs three ways:
//   whole  - each stream as one syscall, all captured;
//   split  - the same bytes in random small syscalls with random drains (requests first):
//            must give exactly the records `whole` gives (the parse may not depend on
//            where syscalls cut the bytes);
//   chaos  - interleaved directions, holes, reordering, lost chunks: must not crash and
//            must keep the record invariants.
// And the client's bytes as one HPACK block, to an in-step decoder and a fail-closed one:
// the bounds hold, and every field the fail-closed decoder gives, the in-step one gives
// too when it did not fail (fail closed never invents a field).
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "protocols/http2/hpack.h"
#include "protocols/http2/spec.h"
#include "protocols/http2/types.h"

namespace kspan::fuzz {
const char* const kHarness = "http2_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;
using kspan::fuzz::Fail;
using kspan::fuzz::Fnv1a;
using kspan::fuzz::Rng;

namespace p = kspan::protocols;
namespace h2 = kspan::protocols::http2;

constexpr std::string_view kMarker = "\n~~~~\n";

struct Run {
  std::unique_ptr<p::ProtocolConnection> conn;
  std::vector<p::RequestStart> started;
  std::vector<p::Record> records;
  explicit Run(bool client) : conn(h2::Spec().make(client, p::ProtocolOptions{})) {}
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
    conn->Close(p::Unanswered::kNoResponse);
    Drain();
  }
};

std::string Describe(const p::Record& env) {
  const auto& r = std::get<h2::Record>(env.body);
  std::string s =
      std::to_string(r.stream_id) + ' ' + r.http.request.method + ' ' + r.http.request.target + " => " +
      std::to_string(r.http.response.status_code) + ' ' + std::to_string(r.http.request.body_size) + '/' +
      std::to_string(r.http.response.body_size) + " end=" + std::to_string(static_cast<int>(r.end)) +
      " code=" + std::to_string(r.error_code) + (r.headers_incomplete ? " incomplete" : "") +
      (r.http.response_missing ? " missing" : "") + " msgs=" + std::to_string(r.request_messages.messages) +
      '/' + std::to_string(r.response_messages.messages);
  for (const auto& [n, v] : r.http.request.headers) s += " " + n + ":" + v;
  for (const auto& [n, v] : r.trailers) s += " t:" + n + ":" + v;
  return s;
}

void CheckRecords(const Run& run) {
  for (const p::Record& env : run.records) {
    const auto* r = std::get_if<h2::Record>(&env.body);
    Check(r != nullptr, "record body is not http2");
    Check(env.seq == r->seq && r->http.seq == r->seq, "envelope and body disagree on seq");
    Check(env.response_missing == r->http.response_missing, "envelope and body disagree");
    Check(r->stream_id % 2 == 1, "a record for a stream the client did not open");
    Check(r->http.request.version == "2", "request version is not 2");
    Check(r->http.request.body_prefix.size() <= 4096, "body prefix over its bound");
    Check(r->http.response.body_prefix.size() <= 4096, "body prefix over its bound");
    size_t bytes = 0;
    for (const auto& [n, v] : r->http.request.headers) bytes += n.size() + v.size();
    Check(bytes <= 2 * h2::HpackDecoder::kMaxDecodedBytes + 4096, "decoded fields over their bound");
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

void RunHpack(std::string_view block) {
  h2::HpackDecoder in_step;
  h2::HpackDecoder closed;
  closed.Lose();
  for (int i = 0; i < 2; ++i) {  // twice: the second block may refer to entries the first made
    const h2::HpackDecoder::Block a = in_step.Decode(block);
    const h2::HpackDecoder::Block b = closed.Decode(block);
    for (const auto* x : {&a, &b}) {
      size_t bytes = 0;
      for (const auto& [n, v] : x->fields) bytes += n.size() + v.size();
      Check(bytes <= h2::HpackDecoder::kMaxDecodedBytes, "decoded block over its bound");
    }
    if (i == 0 && !a.inflater_failed && !a.incomplete) {
      // Each field fail-closed decoding gave is one the in-step decoder gave, in order.
      size_t j = 0;
      for (const auto& f : b.fields) {
        while (j < a.fields.size() && a.fields[j] != f) ++j;
        if (j == a.fields.size()) Fail("fail-closed HPACK gave a field the in-step decoder did not");
        ++j;
      }
    }
  }
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
  RunHpack(req.substr(0, 4096));
  return 0;
}
