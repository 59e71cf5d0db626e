// The harness every registered two-stream protocol shares (memcache, redis, postgres,
// http2): a connection made by the protocol's ProtocolSpec, driven as the tracker drives it.
//
// Input: the request stream's bytes, then the marker "\n~~~~\n", then the response stream's
// (without the marker both directions get the whole input), so seeds are readable. How the
// streams are cut, reordered and holed comes from a PRNG seeded by a hash of the input.
// Each input runs three ways:
//   whole  - each stream as one syscall, all captured;
//   split  - the same bytes in random small syscalls with random drains (requests first):
//            must give records that Describe() the same as whole's, since the parse may not
//            depend on where syscalls cut the bytes; except after a loss the parser presumed
//            (ConnectionStats::gaps: HTTP/2 without its preface is a connection joined late),
//            where resynchronisation looks for a message start at syscall boundaries by
//            design, so the cut matters;
//   chaos  - both directions cut and interleaved, one in six partly captured, some
//            reordered, one in forty lost, as the client or the server: the harness's own
//            record checks must hold.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "protocols/registry.h"

namespace kspan::fuzz {

constexpr std::string_view kStreamMarker = "\n~~~~\n";

// The request and response streams of an input (see above).
inline std::pair<std::string_view, std::string_view> SplitStreams(std::string_view input) {
  if (const size_t m = input.find(kStreamMarker); m != std::string_view::npos) {
    return {input.substr(0, m), input.substr(m + kStreamMarker.size())};
  }
  return {input, input};
}

// One connection of a registered protocol, fed chunks and drained.
struct ConnectionRun {
  std::unique_ptr<protocols::ProtocolConnection> conn;
  std::vector<protocols::RequestStart> started;
  std::vector<protocols::Record> records;
  protocols::ConnectionStats stats;

  ConnectionRun(const protocols::ProtocolSpec& spec, bool client)
      : conn(spec.make(client, protocols::ProtocolOptions{})) {}
  void Add(bool egress, uint64_t pos, std::string_view captured, uint32_t total, uint64_t t) {
    protocols::Chunk c;
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
    protocols::ConnectionStats s;
    conn->Drain(&started, &records, &s);
    stats += s;
  }
  void Finish() {
    Drain();
    conn->Close(protocols::Unanswered::kNoResponse);
    Drain();
  }
};

using DescribeRecord = std::function<std::string(const protocols::Record&)>;
using CheckRun = std::function<void(const ConnectionRun&)>;

// Every protocol: each record's request was announced (a RequestStart of its seq) first.
// A set, not a scan of the starts per record: on an 8 KiB input of 900 memcached commands
// that scan took most of the input's time.
inline void CheckEveryRecordAnnounced(const ConnectionRun& run) {
  std::unordered_set<uint64_t> started;
  for (const protocols::RequestStart& s : run.started) started.insert(s.seq);
  for (const protocols::Record& r : run.records) {
    Check(started.count(r.seq) != 0, "record without its RequestStart");
  }
}

// Runs `input` whole, split and in chaos (above) on connections of `spec`; `check` (and
// CheckEveryRecordAnnounced) runs on every run's records, `describe` compares whole's and
// split's.
inline void FuzzConnection(const protocols::ProtocolSpec& spec, std::string_view input,
                           const DescribeRecord& describe, const CheckRun& check_protocol) {
  const auto check = [&check_protocol](const ConnectionRun& run) {
    check_protocol(run);
    CheckEveryRecordAnnounced(run);
  };
  const auto [req, resp] = SplitStreams(input);
  Rng rng(Fnv1a(input));

  ConnectionRun whole(spec, true);
  if (!req.empty()) whole.Add(true, 0, req, static_cast<uint32_t>(req.size()), 1);
  if (!resp.empty()) whole.Add(false, 0, resp, static_cast<uint32_t>(resp.size()), 2);
  whole.Finish();
  check(whole);

  ConnectionRun split(spec, true);
  uint64_t t = 1;
  const uint64_t max_cut = rng.In(1, 64);
  for (auto [egress, bytes] : {std::pair{true, req}, std::pair{false, resp}}) {
    uint64_t pos = 0;
    while (pos < bytes.size()) {
      const size_t n = std::min<uint64_t>(rng.In(1, max_cut), bytes.size() - pos);
      split.Add(egress, pos, bytes.substr(pos, n), static_cast<uint32_t>(n), t++);
      pos += n;
      if (rng.OneIn(3)) split.Drain();
    }
  }
  split.Finish();
  check(split);
  const bool presumed_loss = whole.stats.gaps != 0 || split.stats.gaps != 0;
  bool same = presumed_loss || whole.records.size() == split.records.size();
  for (size_t i = 0; same && !presumed_loss && i < whole.records.size(); ++i) {
    same = describe(whole.records[i]) == describe(split.records[i]);
  }
  if (!same) {
    for (const auto& r : whole.records) std::fprintf(stderr, "whole: %s\n", describe(r).c_str());
    for (const auto& r : split.records) std::fprintf(stderr, "split: %s\n", describe(r).c_str());
    Fail("split gives different records than whole");
  }

  const bool client = rng.OneIn(2);
  ConnectionRun chaos(spec, client);
  t = 1;
  for (const StreamPiece& pc : CutIntoSyscalls(&rng, req, resp, client)) {
    if (rng.OneIn(40)) continue;  // a lost event
    chaos.Add(pc.egress, pc.pos, pc.bytes.substr(0, pc.captured), static_cast<uint32_t>(pc.bytes.size()), t);
    t += 2;
    if (rng.OneIn(4)) chaos.Drain();
  }
  chaos.Finish();
  check(chaos);
}

}  // namespace kspan::fuzz
