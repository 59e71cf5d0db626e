#include "protocols/http1/spec.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>
#include <variant>

#include "protocols/http1/connection.h"
#include "protocols/http2/spec.h"

namespace kspan::protocols::http1 {
namespace {

// Connection behind the registry's interface: records keep their HTTP/1 body, the
// envelope gets the request's and response's timing.
//
// An Upgrade to h2c hands the connection over to HTTP/2 (RFC 7540 §3.2): the upgrade
// request becomes stream 1, answered in HTTP/2 frames, and every byte past the 101 goes to
// an http2::Connection whose positions start at the switch. Its records and counts are
// this connection's from then on.
class RegisteredConnection final : public ProtocolConnection {
 public:
  RegisteredConnection(bool client, const ProtocolOptions& options)
      : client_(client), options_(options), conn_(client, options.http1) {}

  void AddData(const Chunk& c) override {
    if (h2_) {
      ToHttp2(c);
      return;
    }
    conn_.AddData(c.egress, c.position, c.data, c.total_len, c.first_ns, c.last_ns, c.tid, c.turn);
  }
  void Close(Unanswered waiting) override {
    closed_ = waiting;
    conn_.Close(waiting);
    if (h2_) h2_->Close(waiting);
  }
  HeldData Held() const override {
    HeldData held = conn_.Held();
    if (h2_) {
      const HeldData h2 = h2_->Held();
      held.bytes += h2.bytes;
      if (h2.oldest_ns != 0 && (held.oldest_ns == 0 || h2.oldest_ns < held.oldest_ns))
        held.oldest_ns = h2.oldest_ns;
    }
    return held;
  }
  uint64_t DropHeld() override { return conn_.DropHeld() + (h2_ ? h2_->DropHeld() : 0); }
  void Drain(std::vector<RequestStart>* started, std::vector<protocols::Record>* records,
             ConnectionStats* stats) override {
    DrainHttp1(started, records, stats);
    if (conn_.h2c_pending()) SwitchToHttp2(records);
    if (h2_) h2_->Drain(started, records, stats);
  }

 private:
  // The 101's record leaves `records`; its request is stream 1 of the HTTP/2 connection,
  // which takes every byte past the switch.
  void SwitchToHttp2(std::vector<protocols::Record>* records) {
    auto it = std::find_if(records->rbegin(), records->rend(), [](const protocols::Record& r) {
      const auto* h1 = std::get_if<Record>(&r.body);
      return h1 != nullptr && !h1->response_missing && h1->response.status_code == 101;
    });
    if (it == records->rend()) {
      // Cannot happen (the 101's record comes in the drain that sees the switch); if it
      // did, the rest is dropped rather than held.
      conn_.TakeRest([](bool, uint64_t, std::string_view, const ChunkTiming&) {});
      return;
    }
    h2_ = std::make_unique<http2::Connection>(client_, http2::LimitsFrom(options_));
    Record& upgrade = std::get<Record>(it->body);
    h2_->AdoptUpgradeRequest(upgrade.seq, std::move(upgrade.request));
    if (closed_) h2_->Close(*closed_);  // the close came before the drain that saw the switch
    records->erase(std::next(it).base());
    for (const bool egress : {true, false}) switch_[egress] = conn_.switch_position(egress);
    conn_.TakeRest([this](bool egress, uint64_t position, std::string_view bytes, const ChunkTiming& t) {
      h2_->AddData({.channel = 0,
                    .egress = egress,
                    .position = position,
                    .data = bytes,
                    .total_len = static_cast<uint32_t>(bytes.size()),
                    .first_ns = t.first_ns,
                    .last_ns = t.last_ns,
                    .tid = t.tid,
                    .turn = t.turn});
    });
  }

  // A chunk in stream positions from the switch; the part before it (an event that came
  // late from another CPU) was HTTP/1's.
  void ToHttp2(const Chunk& c) {
    const uint64_t base = switch_[c.egress];
    if (c.position + c.total_len <= base) return;
    Chunk moved = c;
    const uint64_t skip = base > c.position ? base - c.position : 0;
    moved.position = c.position + skip - base;
    moved.data = c.data.substr(std::min<uint64_t>(skip, c.data.size()));
    moved.total_len = static_cast<uint32_t>(c.total_len - skip);
    h2_->AddData(moved);
  }

  void DrainHttp1(std::vector<RequestStart>* started, std::vector<protocols::Record>* records,
                  ConnectionStats* stats) {
    Stats s;
    conn_.Drain(records, &s, started);
    stats->frames_invalid += s.frames_invalid;
    stats->frames_cut += s.frames_cut;
    stats->bytes_dropped += s.bytes_dropped;
    stats->responses_unmatched += s.responses_unmatched;
    stats->responses_unmatched_at_close += s.responses_unmatched_at_close;
    stats->requests_unanswered += s.requests_unanswered;
    stats->gaps += s.gaps;
  }

  const bool client_;
  const ProtocolOptions options_;
  Connection conn_;
  std::unique_ptr<http2::Connection> h2_;  // after an Upgrade to h2c
  std::optional<Unanswered> closed_;       // Close() was called, with this reason
  uint64_t switch_[2] = {0, 0};            // stream position of the switch, by egress
};

Detection Detect(std::string_view request_bytes) {
  if (LooksLikeRequest(request_bytes)) return Detection::kMatch;
  return MayBecomeRequest(request_bytes) ? Detection::kNeedMoreData : Detection::kNoMatch;
}

std::unique_ptr<ProtocolConnection> Make(bool client, const ProtocolOptions& options) {
  return std::make_unique<RegisteredConnection>(client, options);
}

}  // namespace

const ProtocolSpec& Spec() {
  static const ProtocolSpec spec{
      .name = "http1", .scope = Scope::kConnection, .transports = kTcp, .detect = Detect, .make = Make};
  return spec;
}

}  // namespace kspan::protocols::http1
