#include "protocols/http1/spec.h"

#include <utility>

#include "protocols/http1/connection.h"

namespace kspan::protocols::http1 {
namespace {

// Connection behind the registry's interface: records keep their HTTP/1 body, the
// envelope gets the request's and response's timing.
class RegisteredConnection final : public ProtocolConnection {
 public:
  RegisteredConnection(bool client, const Limits& limits) : conn_(client, limits) {}

  void AddData(const Chunk& c) override {
    conn_.AddData(c.egress, c.position, c.data, c.total_len, c.first_ns, c.last_ns, c.tid, c.turn);
  }
  void Close(Unanswered waiting) override { conn_.Close(waiting); }
  HeldData Held() const override { return conn_.Held(); }
  uint64_t DropHeld() override { return conn_.DropHeld(); }
  void Drain(std::vector<RequestStart>* started, std::vector<protocols::Record>* records,
             ConnectionStats* stats) override {
    scratch_.clear();
    Stats s;
    conn_.Drain(&scratch_, &s, started);
    stats->frames_invalid += s.frames_invalid;
    stats->frames_cut += s.frames_cut;
    stats->bytes_dropped += s.bytes_dropped;
    stats->responses_unmatched += s.responses_unmatched;
    stats->responses_unmatched_at_close += s.responses_unmatched_at_close;
    stats->requests_unanswered += s.requests_unanswered;
    stats->gaps += s.gaps;
    for (Record& r : scratch_) {
      protocols::Record& out = records->emplace_back();
      out.seq = r.seq;
      out.request = r.request.timing;
      out.response_missing = r.response_missing;
      out.unanswered = r.unanswered;
      if (!r.response_missing) out.response = r.response.timing;
      out.body = std::move(r);
    }
    scratch_.clear();
  }

 private:
  Connection conn_;
  std::vector<Record> scratch_;
};

Detection Detect(std::string_view request_bytes) {
  if (LooksLikeRequest(request_bytes)) return Detection::kMatch;
  return MayBecomeRequest(request_bytes) ? Detection::kNeedMoreData : Detection::kNoMatch;
}

std::unique_ptr<ProtocolConnection> Make(bool client, const ProtocolOptions& options) {
  return std::make_unique<RegisteredConnection>(client, options.http1);
}

}  // namespace

const ProtocolSpec& Spec() {
  static const ProtocolSpec spec{
      .name = "http1", .scope = Scope::kConnection, .transports = kTcp, .detect = Detect, .make = Make};
  return spec;
}

}  // namespace kspan::protocols::http1
