#include "protocols/http1/connection.h"

#include <cstdint>
#include <iterator>
#include <utility>
#include <variant>
#include <vector>

#include "common/fifo.h"
#include "common/strings.h"
#include "genai/jsonrpc.h"
#include "protocols/common/data_stream.h"
#include "protocols/common/event_parser.h"
#include "protocols/http1/parse.h"
#include "protocols/http1/stitch.h"

namespace kspan::protocols::http1 {

namespace {

// A 101 answering an Upgrade to h2c (RFC 7540 §3.2; RFC 9113 dropped the mechanism, but
// servers such as Apache's mod_http2 and Go's h2c package still answer it).
bool IsH2cSwitch(const protocols::Record& record) {
  const Record& r = std::get<Record>(record.body);
  return !r.response_missing && r.response.status_code == 101 &&
         EqualsIgnoreCase(TrimOws(r.response.Header("upgrade")), "h2c");
}

// Appends `from`'s elements to `to` and empties `from` (a swap when `to` is empty).
template <typename T>
void MoveAll(std::vector<T>* from, std::vector<T>* to) {
  if (to->empty()) {
    to->swap(*from);
  } else {
    to->insert(to->end(), std::make_move_iterator(from->begin()), std::make_move_iterator(from->end()));
  }
  from->clear();
}

DataStream::Options StreamOptions(const Limits& limits) {
  DataStream::Options o;
  o.max_buffered_bytes = limits.max_buffered_bytes;
  return o;
}

}  // namespace

struct Connection::Impl {
  Impl(bool egress_is_request, const Limits& limits)
      : egress_is_request(egress_is_request),
        limits(limits),
        requests(MessageType::kRequest, StreamOptions(limits)),
        responses(MessageType::kResponse, StreamOptions(limits)) {
    state.max_body_prefix = limits.max_body_prefix;
    state.wide_body_request = limits.wide_body_request;
    state.max_wide_body_prefix = limits.max_wide_body_prefix;
    state.max_wide_body_tail = limits.max_wide_body_tail;
    state.max_pending = limits.max_pending_requests;
    state.unmatched_ok_below = 0;  // a response with no request waits one drain for it
  }

  // Parses both directions, requests first (a response needs its request's method), and
  // pairs what it can. An Upgrade/CONNECT request pauses the request side until its
  // response says whether the protocol changed.
  //
  // Requests are parsed at most as many at a time as can wait for an answer
  // (state.max_pending), then the responses: a keep-alive connection can carry hundreds of
  // exchanges between two drains, and parsing all its requests first would push the oldest
  // out of `pending` and leave their responses unmatched. When the responses cannot free
  // room (not captured yet, or the server is not answering), the rest waits buffered; only
  // at the connection's end or near the request stream's buffer cap do further requests
  // push the oldest out.
  void Run(bool closed) {
    // Each round after the first either resumes past one more declined upgrade request
    // (paused_seq only grows, and last_final_seq must catch up with it each time), or
    // parses more requests after responses answered some (both streams only move forward),
    // or lifts the bound once; so the loop ends.
    bool unbounded = false;
    while (!stopped) {
      ParseStats ps;
      bool held_back = false;
      if (!requests.ended()) {
        const size_t room = unbounded || state.pending.size() >= state.max_pending
                                ? 0
                                : state.max_pending - state.pending.size();
        held_back = requests.Parse(&state, &request_frames, &ps, closed, unbounded ? SIZE_MAX : room);
        if (requests.ended()) paused_seq = state.next_seq - 1;
        Announce();
      }
      const size_t waiting = state.pending.size();
      state.requests_held_back = held_back;
      responses.Parse(&state, &response_frames, &ps, closed);
      state.requests_held_back = false;
      Count(ps);
      Stitch();
      if (responses.ended()) {
        // 101 or a 2xx to CONNECT: the rest of both streams is another protocol. A response
        // with invalid framing: the rest cannot be followed (the client must close).
        upgraded = !state.response_framing_lost;
        stopped = true;
        if (!upgraded && !state.request_framing_lost) ParseUnanswerable(closed);
        if (upgraded && !ready.empty() && IsH2cSwitch(ready.back())) {
          h2c = true;  // the rest is HTTP/2's (TakeRest)
          return;
        }
        stats.bytes_dropped += requests.Discard() + responses.Discard();
        return;
      }
      if (state.request_framing_lost) {
        // A request with invalid framing: what follows it on the request side is a body of
        // unknown length, never parsed (its bytes are dropped, counted); answers still are.
        if (!requests_stopped) ++stats.frames_invalid;
        requests_stopped = true;
        stats.bytes_dropped += requests.Discard();
        return;
      }
      if (requests.ended() && state.last_final_seq >= paused_seq) {
        requests.Resume();  // the server declined the upgrade
        continue;
      }
      if (held_back) {
        if (state.pending.size() < waiting) continue;  // answers made room
        // No answer made room: the requests held back stay buffered, unparsed, until
        // answers come. Giving the oldest up now would make the pairing depend on where
        // the drains fell (whether the answers were captured by this drain or the next).
        // Only the end of the connection, or a request stream nearing its buffer cap (a
        // client that pipelines without reading), lets them push the oldest out (counted).
        if (!closed && !requests.stream().under_pressure()) return;
        unbounded = true;
        continue;
      }
      return;
    }
  }

  // The answers cannot be followed any more (a response's framing was invalid): every
  // request already captured is parsed now, to be reported unanswered (not captured) at
  // close, rather than dropped with its bytes. Whether a request had been parsed before
  // the loss must not depend on when the drains came (requests held back for room, or
  // paused behind an upgrade the lost response had already declined).
  void ParseUnanswerable(bool closed) {
    if (requests.ended() && state.last_final_seq >= paused_seq) requests.Resume();
    if (requests.ended()) return;
    ParseStats ps;
    requests.Parse(&state, &request_frames, &ps, closed, SIZE_MAX);
    Count(ps);
    Announce();
  }

  void Count(const ParseStats& ps) {
    stats.frames_invalid += ps.frames_invalid;
    stats.frames_cut += ps.frames_cut;
    stats.bytes_dropped += ps.bytes_dropped;
    stats.gaps += ps.gaps;
  }

  // Requests parsed since the last call, before the stitcher can pair (and move) them.
  void Announce() {
    auto it = request_frames.end();
    while (it != request_frames.begin() && std::prev(it)->seq > announced_seq) --it;
    for (; it != request_frames.end(); ++it) {
      const Message& m = it->msg;
      RequestStart& r = started.emplace_back();
      r.seq = it->seq;
      r.timing = m.timing;
      TraceContextFields tc = TraceContextOf(m);
      r.traceparent = std::move(tc.traceparent);
      r.tracestate = std::move(tc.tracestate);
      // An MCP request's own context (params._meta) is its parent, over the HTTP one's.
      if (m.body_prefix.find("\"traceparent\"") != std::string::npos) {
        const auto call =
            genai::ParseRpcRequest(m.body_prefix, {.mcp_method = m.Header("mcp-method"), .mcp_name = {}});
        if (call && call->protocol == genai::RpcProtocol::kMcp && !call->traceparent.empty()) {
          r.traceparent = call->traceparent;
          r.tracestate = call->tracestate;
        }
      }
      announced_seq = it->seq;
    }
  }

  void Stitch() {
    const size_t before = ready.size();
    stats.responses_unmatched +=
        static_cast<uint64_t>(StitchFramesInto(&request_frames, &response_frames, &state, &ready));
    for (size_t i = before; i < ready.size(); ++i) {
      if (ready[i].response_missing) ++stats.requests_unanswered[ready[i].unanswered];
    }
  }

  // After the last parse of a closed connection: what is left never completes.
  void Finalize() {
    const uint64_t response_bytes_cut = responses.Discard();
    stats.bytes_dropped += requests.Discard() + response_bytes_cut;
    state.open_request_seq = 0;
    Stitch();
    stats.responses_unmatched_at_close += response_frames.size();
    response_frames.clear();
    // Bytes lost or left unparsed on the response side since its last answer may have been
    // the answers: kspan did not see the end of these requests.
    const Unanswered why =
        state.response_loss || response_bytes_cut > 0 || stopped ? Unanswered::kNotCaptured : close_reason;
    for (Frame& f : request_frames) {
      AppendUnanswered(&ready, &f, why);
      ++stats.requests_unanswered[why];
    }
    request_frames.clear();
    state.pending.clear();
    finalized = true;
  }

  const bool egress_is_request;
  const Limits limits;
  State state;
  StreamParser<Protocol> requests;
  StreamParser<Protocol> responses;
  Fifo<Frame> request_frames;
  Fifo<Frame> response_frames;
  std::vector<protocols::Record> ready;
  std::vector<RequestStart> started;
  uint64_t announced_seq = 0;
  Stats stats;
  uint64_t paused_seq = 0;
  bool closed = false;
  Unanswered close_reason = Unanswered::kNoResponse;
  bool finalized = false;
  bool upgraded = false;
  bool h2c = false;               // upgraded to h2c, the rest not taken yet
  bool stopped = false;           // upgraded, or a response's framing was invalid
  bool requests_stopped = false;  // a request's framing was invalid
};

Connection::Connection(bool egress_is_request, const Limits& limits)
    : impl_(std::make_unique<Impl>(egress_is_request, limits)) {}

Connection::~Connection() = default;

void Connection::AddData(bool egress, uint64_t position, std::string_view captured, uint32_t total_len,
                         uint64_t first_ns, uint64_t last_ns, uint32_t tid, uint32_t turn) {
  Impl& c = *impl_;
  // Bytes may still come after Close() (events from another CPU): taken until the drain
  // that finalises the connection.
  if (c.finalized || (c.stopped && !c.h2c)) return;
  const bool request_side = egress == c.egress_is_request;
  if (request_side && c.requests_stopped) return;
  StreamParser<Protocol>& parser = request_side ? c.requests : c.responses;
  parser.stream().Add(position, captured, total_len, ChunkTiming{first_ns, last_ns, tid, turn});
  // Parse early rather than let a busy connection hit the buffer cap between drains;
  // records wait in `ready` for the next Drain().
  if (parser.stream().under_pressure() && !c.stopped) c.Run(false);
}

void Connection::Close(Unanswered waiting) {
  impl_->closed = true;
  impl_->close_reason = waiting;
}

void Connection::Drain(std::vector<Record>* out, Stats* stats,
                       std::vector<protocols::RequestStart>* started) {
  std::vector<protocols::Record> records;
  Drain(&records, stats, started);
  for (protocols::Record& r : records) out->push_back(std::move(std::get<Record>(r.body)));
}

void Connection::Drain(std::vector<protocols::Record>* out, Stats* stats,
                       std::vector<protocols::RequestStart>* started) {
  Impl& c = *impl_;
  if (!c.finalized) {
    if (!c.stopped) {
      if (c.closed) {
        c.requests.stream().FillGaps();
        c.responses.stream().FillGaps();
        c.state.unmatched_ok_below = ~uint64_t{0};
      } else {
        c.requests.stream().AgeGaps();
        c.responses.stream().AgeGaps();
      }
      c.Run(c.closed);
      if (!c.closed && c.responses.waiting_at_frame_start() && c.state.pending.empty()) {
        // A response with no request to answer: if its request has not come by the next
        // drain, it never will (it was sent before kspan looked, or was lost).
        c.state.unmatched_ok_below = c.responses.stream().end();
      }
    }
    if (c.closed && !c.h2c) c.Finalize();  // h2c: after the rest is taken
  }
  MoveAll(&c.ready, out);
  if (started) {
    MoveAll(&c.started, started);
  } else {
    c.started.clear();
  }
  *stats = std::exchange(c.stats, Stats{});
}

bool Connection::upgraded() const {
  return impl_->upgraded;
}

bool Connection::h2c_pending() const {
  return impl_->h2c;
}

uint64_t Connection::switch_position(bool egress) const {
  const Impl& c = *impl_;
  return (egress == c.egress_is_request ? c.requests : c.responses).stream().position();
}

void Connection::TakeRest(const std::function<void(bool egress, uint64_t position, std::string_view bytes,
                                                   const ChunkTiming& timing)>& f) {
  Impl& c = *impl_;
  if (!c.h2c) return;
  for (const bool request_side : {true, false}) {
    DataStream& s = (request_side ? c.requests : c.responses).stream();
    const bool egress = request_side == c.egress_is_request;
    const uint64_t base = s.position();
    while (s.position() < s.end()) {
      const std::string_view head = s.Head();
      if (head.empty()) {
        s.Consume(s.HoleAtHead());  // HTTP/2 sees the gap in the positions
        continue;
      }
      // One piece per syscall, with its timing.
      uint64_t chunk_end = 0;
      const ChunkTiming t = s.TimingAt(s.position(), &chunk_end);
      const size_t n = static_cast<size_t>(std::min<uint64_t>(head.size(), chunk_end - s.position()));
      f(egress, s.position() - base, head.substr(0, n), t);
      s.Consume(n);
    }
    s.DiscardKnown();
  }
  c.h2c = false;
}

HeldData Connection::Held() const {
  return HeldBy(impl_->requests.stream(), impl_->responses.stream());
}

uint64_t Connection::DropHeld() {
  Impl& c = *impl_;
  if (c.finalized || c.stopped) return 0;
  return c.requests.Evict(&c.state) + c.responses.Evict(&c.state);
}

}  // namespace kspan::protocols::http1
