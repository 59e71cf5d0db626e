#include "protocols/jsonrpc/spec.h"

#include <unordered_set>
#include <utility>

#include "genai/jsonrpc.h"
#include "protocols/jsonrpc/line_stream.h"

namespace kspan::protocols::jsonrpc {
namespace {

Side SideOf(bool outgoing) {
  return outgoing ? Side::kCaller : Side::kCallee;
}

// LineStream behind the registry's interface. Every record's request is announced: a
// request the stream dropped unannounced (more than kMaxPendingCalls between two drains)
// is announced right before its record.
class RegisteredStream final : public ProtocolConnection {
 public:
  void AddData(const Chunk& c) override {
    lines_.Add(c.channel, c.egress, c.position, c.data, c.total_len, c.first_ns, c.tid, c.turn);
  }
  void CloseChannel(uint64_t channel) override { lines_.CloseChannel(channel); }
  void Close(Unanswered waiting) override { lines_.Close(waiting); }
  void Drain(std::vector<RequestStart>* started, std::vector<Record>* records,
             ConnectionStats* stats) override {
    calls_.clear();
    started_.clear();
    LineStats s;
    lines_.Drain(&calls_, &s, &started_);
    stats->gaps += s.lines_dropped;
    stats->requests_unanswered[Unanswered::kNotCaptured] += s.calls_given_up;
    stats->responses_unmatched += s.responses_unmatched;
    for (Started& st : started_) {
      if (announced_.size() >= kMaxPendingCalls) announced_.clear();  // re-announced, harmless
      announced_.insert(st.seq);
      started->push_back(StartOf(st.seq, st.channel, st.outgoing, st.id, std::move(st.request), st.timing));
    }
    for (Call& c : calls_) {
      if (!announced_.erase(c.seq)) {
        started->push_back(StartOf(c.seq, c.channel, c.outgoing, c.id, c.request, c.request_timing));
      }
      Record& r = records->emplace_back();
      r.seq = c.seq;
      r.channel = c.channel;
      r.side = SideOf(c.outgoing);
      r.request = c.request_timing;
      r.response_missing = c.response_missing;
      r.unanswered = c.unanswered;
      if (c.response_missing) ++stats->requests_unanswered[c.unanswered];
      if (!c.response_missing) r.response = c.response_timing;
      r.body = std::move(c);
    }
    calls_.clear();
    started_.clear();
  }

 private:
  static RequestStart StartOf(uint64_t seq, uint64_t channel, bool outgoing, const std::string& id,
                              std::string head, const Timing& timing) {
    RequestStart r;
    r.seq = seq;
    r.channel = channel;
    r.timing = timing;
    r.side = SideOf(outgoing);
    r.call_id = id;
    // MCP's trace context rides in params._meta (the OpenTelemetry MCP conventions): the
    // call's parent when the agent's own instrumentation put one there.
    if (head.find("\"traceparent\"") != std::string::npos) {
      if (const auto call = genai::ParseRpcRequest(head);
          call && call->protocol == genai::RpcProtocol::kMcp) {
        r.traceparent = call->traceparent;
        r.tracestate = call->tracestate;
      }
    }
    r.head = std::move(head);
    return r;
  }

  LineStream lines_;
  std::unordered_set<uint64_t> announced_;  // seqs announced whose calls have not come out
  std::vector<Call> calls_;                 // reused scratch
  std::vector<Started> started_;
};

std::unique_ptr<ProtocolConnection> Make(bool, const ProtocolOptions&) {
  return std::make_unique<RegisteredStream>();
}

}  // namespace

const ProtocolSpec& Spec() {
  static const ProtocolSpec spec{
      .name = "jsonrpc", .scope = Scope::kProcess, .transports = kLocal, .detect = nullptr, .make = Make};
  return spec;
}

}  // namespace kspan::protocols::jsonrpc
