#include "protocols/memcache/spec.h"

#include <iterator>
#include <utility>
#include <vector>

#include "common/fifo.h"
#include "protocols/common/data_stream.h"
#include "protocols/common/event_parser.h"
#include "protocols/memcache/parse.h"

namespace kspan::protocols::memcache {
namespace {

// One memcached connection as one process sees it: the command and answer streams, their
// frame parsers (the generic StreamParser) and the pairing. Commands are announced as
// RequestStarts as soon as they are whole; records come out in command order.
class Connection final : public ProtocolConnection {
 public:
  explicit Connection(bool client)
      : egress_is_request_(client),
        requests_(MessageType::kRequest, DataStream::Options{}),
        responses_(MessageType::kResponse, DataStream::Options{}) {}

  void AddData(const Chunk& c) override {
    // Bytes may still come after Close() (events from another CPU): taken until the
    // drain that finalises the connection.
    if (finalized_) return;
    StreamParser<Protocol>& parser = c.egress == egress_is_request_ ? requests_ : responses_;
    parser.stream().Add(c.position, c.data, c.total_len, ChunkTiming{c.first_ns, c.last_ns, c.tid, c.turn});
    // Parse early rather than let a busy connection hit the buffer cap between drains.
    if (parser.stream().under_pressure()) Run(false);
  }

  HeldData Held() const override { return HeldBy(requests_.stream(), responses_.stream()); }
  uint64_t DropHeld() override {
    if (finalized_) return 0;
    return requests_.Evict(&state_) + responses_.Evict(&state_);
  }

  void Close(Unanswered waiting) override {
    closed_ = true;
    close_reason_ = waiting;
  }

  void Drain(std::vector<RequestStart>* started, std::vector<protocols::Record>* records,
             ConnectionStats* stats) override {
    if (!finalized_) {
      if (closed_) {
        requests_.stream().FillGaps();
        responses_.stream().FillGaps();
      } else {
        requests_.stream().AgeGaps();
        responses_.stream().AgeGaps();
      }
      Run(closed_);
      if (closed_) Finalize();
    }
    started->insert(started->end(), std::make_move_iterator(started_.begin()),
                    std::make_move_iterator(started_.end()));
    started_.clear();
    for (Record& r : ready_) {
      protocols::Record& out = records->emplace_back();
      out.seq = r.seq;
      out.request = r.request;
      out.response = r.response;
      out.response_missing = r.response_missing;
      out.unanswered = r.unanswered;
      out.body = std::move(r);
    }
    ready_.clear();
    *stats += std::exchange(stats_, {});
  }

 private:
  // Commands first (answers pair with them), then answers, then the pairing.
  void Run(bool closed) {
    ParseStats ps;
    requests_.Parse(&state_, &request_frames_, &ps, closed);
    Announce();
    responses_.Parse(&state_, &response_frames_, &ps, closed);
    stats_.frames_invalid += ps.frames_invalid;
    stats_.frames_cut += ps.frames_cut;
    stats_.bytes_dropped += ps.bytes_dropped;
    stats_.gaps += ps.gaps;
    Stitch();
  }

  // Commands parsed since the last call, before the pairing can take them.
  void Announce() {
    auto it = request_frames_.end();
    while (it != request_frames_.begin() && std::prev(it)->seq > announced_seq_) --it;
    for (; it != request_frames_.end(); ++it) {
      RequestStart& r = started_.emplace_back();
      r.seq = it->seq;
      r.timing = it->timing;
      announced_seq_ = it->seq;
    }
  }

  void Stitch() {
    RecordsWithErrorCount<Record> r = StitchFrames(&request_frames_, &response_frames_, &state_);
    stats_.responses_unmatched += static_cast<uint64_t>(r.error_count);
    for (Record& rec : r.records) {
      if (rec.response_missing) ++stats_.requests_unanswered[rec.unanswered];
      ready_.push_back(std::move(rec));
    }
  }

  // After the last parse of a closed connection: what is left never completes.
  void Finalize() {
    const uint64_t response_bytes_cut = responses_.Discard();
    stats_.bytes_dropped += requests_.Discard() + response_bytes_cut;
    stats_.responses_unmatched_at_close += response_frames_.size();
    response_frames_.clear();
    Stitch();  // commands without an answer to wait for leave in order
    // Answer bytes lost or cut off since the last answer may have been the answers.
    const Unanswered why =
        state_.response_loss || response_bytes_cut > 0 ? Unanswered::kNotCaptured : close_reason_;
    for (Frame& f : request_frames_) {
      Record rec = RecordWithoutAnswer(&f);
      rec.unanswered = why;
      if (rec.response_missing) ++stats_.requests_unanswered[why];
      ready_.push_back(std::move(rec));
    }
    request_frames_.clear();
    finalized_ = true;
  }

  const bool egress_is_request_;
  State state_;
  StreamParser<Protocol> requests_;
  StreamParser<Protocol> responses_;
  Fifo<Frame> request_frames_;
  Fifo<Frame> response_frames_;
  std::vector<Record> ready_;
  std::vector<RequestStart> started_;
  uint64_t announced_seq_ = 0;
  ConnectionStats stats_;
  bool closed_ = false;
  Unanswered close_reason_ = Unanswered::kNoResponse;
  bool finalized_ = false;
};

Detection Detect(std::string_view request_bytes) {
  switch (LooksLikeRequest(request_bytes)) {
    case Start::kYes: return Detection::kMatch;
    case Start::kMaybe: return Detection::kNeedMoreData;
    case Start::kNo: break;
  }
  return Detection::kNoMatch;
}

std::unique_ptr<ProtocolConnection> Make(bool client, const ProtocolOptions&) {
  return std::make_unique<Connection>(client);
}

}  // namespace

const ProtocolSpec& Spec() {
  static const ProtocolSpec spec{.name = "memcache",
                                 .scope = Scope::kConnection,
                                 .transports = kTcp,
                                 .detect = Detect,
                                 .make = Make,
                                 .callee_spans = false};
  return spec;
}

}  // namespace kspan::protocols::memcache
