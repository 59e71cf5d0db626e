#include "protocols/http2/connection.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "protocols/common/data_stream.h"
#include "protocols/http1/parse.h"
#include "protocols/http2/frame.h"
#include "protocols/http2/hpack.h"
#include "protocols/http2/types.h"

namespace kspan::protocols::http2 {
namespace {

// The largest frame any peer can allow (RFC 9113 §6.5.2): in step, lengths up to this are
// framing; whether the receiver allowed them is not kspan's to enforce (its SETTINGS may
// be parsed after the frames they allowed).
constexpr uint32_t kMaxFrameSize = (1u << 24) - 1;
constexpr uint32_t kDefaultMaxFrameSize = 16384;

uint32_t Be32(std::string_view b, size_t at) {
  const auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(b[at + i])); };
  return (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
}

// gRPC Length-Prefixed-Message framing (1-byte compressed flag, 4-byte length, message)
// over the DATA payloads of one direction of a stream.
struct GrpcFramer {
  uint8_t prefix[5] = {};
  uint8_t have = 0;
  uint64_t left = 0;  // message bytes still to come
  MessageCount count;

  void Feed(std::string_view b) {
    while (!b.empty() && !count.lost) {
      if (left > 0) {
        const uint64_t n = std::min<uint64_t>(left, b.size());
        left -= n;
        b.remove_prefix(n);
        continue;
      }
      const size_t take = std::min<size_t>(5 - have, b.size());
      for (size_t i = 0; i < take; ++i) prefix[have + i] = static_cast<uint8_t>(b[i]);
      have += static_cast<uint8_t>(take);
      b.remove_prefix(take);
      if (have == 5) {
        ++count.messages;
        left = Be32(std::string_view(reinterpret_cast<const char*>(prefix), 5), 1);
        have = 0;
      }
    }
  }
  // n body bytes fell in a hole: fine inside a message, lost on a prefix.
  void Skip(uint64_t n) {
    if (n == 0) return;
    if (have == 0 && n <= left) {
      left -= n;
      return;
    }
    count.lost = true;
  }
};

struct Side {
  http1::Message msg;
  bool head_seen = false;
  bool ended = false;
  GrpcFramer framer;
};

struct Stream {
  uint32_t id = 0;
  uint64_t seq = 0;
  Side req, resp;
  std::vector<Field> trailers;
  std::vector<int> informational;
  bool incomplete = false;
  bool response_lossy = false;  // the response direction lost bytes while this was open
};

uint32_t DecodeLength(std::string_view b) {
  const auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(b[i])); };
  return (u(0) << 16) | (u(1) << 8) | u(2);
}

bool AtChunkStart(const DataStream& s, uint64_t pos) {
  if (pos == 0) return true;
  uint64_t chunk_end = 0;
  s.TimingAt(pos - 1, &chunk_end);
  return chunk_end == pos;
}

// Where the chunk holding `pos` ends (the next syscall's first byte).
uint64_t ChunkEnd(const DataStream& s, uint64_t pos) {
  uint64_t chunk_end = 0;
  s.TimingAt(pos, &chunk_end);
  return chunk_end;
}

Timing TimingOf(const ChunkTiming& first, const ChunkTiming& last) {
  Timing t{first.first_ns, first.first_ns, first.tid, first.turn, first.tid, first.turn};
  t.ExtendTo(last.last_ns, last.tid, last.turn);
  return t;
}

int ParseStatus(std::string_view v) {
  if (v.size() != 3) return 0;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

std::string ErrorCodeName(uint32_t code) {
  static constexpr std::string_view kNames[] = {"NO_ERROR",
                                                "PROTOCOL_ERROR",
                                                "INTERNAL_ERROR",
                                                "FLOW_CONTROL_ERROR",
                                                "SETTINGS_TIMEOUT",
                                                "STREAM_CLOSED",
                                                "FRAME_SIZE_ERROR",
                                                "REFUSED_STREAM",
                                                "CANCEL",
                                                "COMPRESSION_ERROR",
                                                "CONNECT_ERROR",
                                                "ENHANCE_YOUR_CALM",
                                                "INADEQUATE_SECURITY",
                                                "HTTP_1_1_REQUIRED"};
  if (code < std::size(kNames)) return std::string(kNames[code]);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s.push_back(kHex[(code >> shift) & 0xf]);
  return s;
}

std::string_view Record::TrailerOrHeader(std::string_view name) const {
  for (const auto& [n, v] : trailers) {
    if (n == name) return v;
  }
  for (const auto& [n, v] : http.response.headers()) {
    if (n == name) return v;
  }
  return {};
}

struct Connection::Impl {
  struct Direction {
    Direction(bool is_request, const Limits& l)
        : request(is_request),
          stream(DataStream::Options{.max_buffered_bytes = l.max_buffered_bytes}),
          hpack(l.max_table_size),
          preface_pending(is_request) {}
    const bool request;  // carries the client's frames
    DataStream stream;
    HpackDecoder hpack;
    bool preface_pending;
    bool resync = false;
    // Framing lost at least once (a capture loss, a late join, a framing error).
    bool lost = false;
    // A framing error in bytes seen whole from the connection's start: the peer broke
    // RFC 9113 (a connection error, §5.4.1: the receiver closes). Nothing after it is
    // HTTP/2 the peer processed, so nothing is parsed until the next capture loss. (A
    // resync here would depend on where syscalls cut the bytes, and guess.)
    bool gave_up = false;
    uint64_t drops_seen = 0;
    uint32_t allowed_frame_size = kDefaultMaxFrameSize;  // what the receiver allowed
    // A DATA frame being consumed.
    bool in_data = false;
    uint32_t data_stream = 0;
    uint64_t data_left = 0;    // payload bytes still to come, padding included
    uint64_t body_left = 0;    // of which data (not padding)
    bool pad_pending = false;  // PADDED and its Pad Length byte not read yet
    bool data_end_stream = false;
    // A header block waiting for CONTINUATION.
    bool in_block = false;
    uint32_t block_stream = 0;
    bool block_end_stream = false;
    bool block_push = false;
    std::string block;
    ChunkTiming block_first;
  };

  Impl(bool client, const Limits& l) : egress_is_request(client), limits(l), req(true, l), resp(false, l) {}

  const bool egress_is_request;
  const Limits limits;
  Direction req, resp;
  std::map<uint32_t, Stream> streams;  // open streams by id
  uint64_t next_seq = 0;
  std::vector<RequestStart> started;
  std::vector<protocols::Record> ready;
  ConnectionStats stats;
  bool closed = false;
  bool from_start = false;  // the client preface was seen at position 0
  Unanswered close_reason = Unanswered::kNoResponse;
  bool finalized = false;

  Direction& Other(const Direction& d) { return d.request ? resp : req; }

  // ---- Losses ----------------------------------------------------------------------------
  // Frames of `d` were lost (their framing may be kept). The HPACK table is unknown, a
  // header block in progress is gone, and the open streams may have lost frames.
  void LoseContent(Direction& d) {
    d.hpack.Lose();
    d.in_block = false;
    d.block.clear();
    for (auto& [id, s] : streams) {
      if (d.request) {
        s.req.framer.count.lost = true;
      } else {
        s.resp.framer.count.lost = true;
        s.response_lossy = true;
      }
    }
  }
  // Framing lost too: look for a frame start again.
  void LoseFraming(Direction& d) {
    LoseContent(d);
    d.in_data = false;
    d.preface_pending = false;
    d.resync = true;
    d.lost = true;
    d.gave_up = false;
  }
  // Bytes that break RFC 9113's framing rules. In step from the connection's start, the
  // direction gives up until its next capture loss; after a loss (kspan's resync may have
  // guessed a frame start wrong) it resynchronises again.
  void FramingError(Direction& d) {
    ++stats.frames_invalid;
    const bool in_step = from_start && !d.lost;
    LoseFraming(d);
    d.gave_up = in_step;
  }

  // ---- Streams ---------------------------------------------------------------------------
  void Finish(std::map<uint32_t, Stream>::iterator it, StreamEnd end, uint32_t code, bool by_client,
              Unanswered unanswered) {
    Stream& s = it->second;
    protocols::Record& out = ready.emplace_back();
    Record body;
    body.seq = s.seq;
    body.stream_id = s.id;
    body.http.seq = s.seq;
    http1::TrimBodyTail(&s.req.msg, limits.max_wide_body_tail);
    http1::TrimBodyTail(&s.resp.msg, limits.max_wide_body_tail);
    body.http.request = std::move(s.req.msg);
    body.http.informational_statuses = std::move(s.informational);
    body.http.response_missing = !s.resp.head_seen;
    if (s.resp.head_seen) body.http.response = std::move(s.resp.msg);
    body.trailers = std::move(s.trailers);
    body.headers_incomplete = s.incomplete;
    body.end = end;
    body.error_code = code;
    body.reset_by_client = by_client;
    body.request_messages = s.req.framer.count;
    body.response_messages = s.resp.framer.count;
    if (body.http.response_missing) {
      // A reset or GOAWAY is the server's (or client's) answer; otherwise say why none came.
      body.http.unanswered = s.response_lossy ? Unanswered::kNotCaptured : unanswered;
      // Counted as every span that says so: the connection ended the stream, or its
      // answer's HEADERS were lost (its END_STREAM may still be seen after the loss).
      if (end == StreamEnd::kConnection || body.http.unanswered == Unanswered::kNotCaptured) {
        ++stats.requests_unanswered[body.http.unanswered];
      }
    }
    out.seq = s.seq;
    out.request = body.http.request.timing;
    out.response_missing = body.http.response_missing;
    out.unanswered = body.http.unanswered;
    if (!body.http.response_missing) out.response = body.http.response.timing;
    out.body = std::move(body);
    streams.erase(it);
  }

  void NewRequest(uint32_t id, bool end_stream, HpackDecoder::Block&& block, const Timing& timing) {
    if (id % 2 == 0) return;  // server-initiated (push): not a request of this client
    if (streams.size() >= limits.max_streams) {
      Finish(streams.begin(), StreamEnd::kConnection, 0, false, Unanswered::kEvicted);
    }
    Stream& s = streams[id];
    s.id = id;
    s.seq = ++next_seq;
    s.incomplete = block.incomplete;
    http1::Message& m = s.req.msg;
    m.set_version("2");
    std::string authority;
    bool has_host = false;
    for (Field& f : block.fields) {
      if (!f.first.empty() && f.first[0] == ':') {
        if (f.first == ":method") {
          m.set_method(f.second);
        } else if (f.first == ":path") {
          m.set_target(f.second);
        } else if (f.first == ":authority") {
          authority = std::move(f.second);
        }
        continue;
      }
      if (f.first == "host") has_host = true;
      m.AddHeader(f.first, f.second);
    }
    if (m.method() == "CONNECT" && m.target().empty()) m.set_target(authority);
    if (!has_host && !authority.empty()) m.AddHeader("host", authority);
    m.wide_body = limits.wide_body_request != nullptr && limits.wide_body_request(m);
    m.timing = timing;
    s.req.head_seen = true;
    s.req.ended = end_stream;

    RequestStart& r = started.emplace_back();
    r.seq = s.seq;
    r.timing = timing;
    r.call_id = std::to_string(id);  // same-host pairing: the connection pair plus the stream
    http1::TraceContextFields tc = http1::TraceContextOf(m);
    r.traceparent = std::move(tc.traceparent);
    r.tracestate = std::move(tc.tracestate);
  }

  void OnHeaderBlock(Direction& d, uint32_t id, bool end_stream, HpackDecoder::Block&& block,
                     const Timing& timing) {
    if (block.inflater_failed) ++stats.frames_invalid;
    auto it = streams.find(id);
    if (d.request) {
      if (it == streams.end()) {
        NewRequest(id, end_stream, std::move(block), timing);
        return;
      }
      // Request trailers: nothing kspan reports, but they may end the request.
      Stream& s = it->second;
      s.incomplete |= block.incomplete;
      s.req.msg.timing.ExtendTo(timing.end_ns, timing.end_tid, timing.end_turn);
      if (end_stream) s.req.ended = true;
      return;
    }
    if (it == streams.end()) {
      // The request was before kspan looked, or lost: nothing to pair with.
      ++stats.responses_unmatched;
      return;
    }
    Stream& s = it->second;
    s.incomplete |= block.incomplete;
    if (!s.resp.head_seen) {
      int status = 0;
      for (const Field& f : block.fields) {
        if (f.first == ":status") status = ParseStatus(f.second);
      }
      if (status >= 100 && status < 200 && !end_stream) {
        s.informational.push_back(status);
        return;
      }
      http1::Message& m = s.resp.msg;
      m.set_version("2");
      m.status_code = status;
      m.wide_body = s.req.msg.wide_body;  // the answer to an LLM call is kept as wide as it
      for (Field& f : block.fields) {
        if (f.first.empty() || f.first[0] != ':') m.AddHeader(f.first, f.second);
      }
      m.timing = timing;
      s.resp.head_seen = true;
    } else {
      for (Field& f : block.fields) s.trailers.push_back(std::move(f));
      s.resp.msg.timing.ExtendTo(timing.end_ns, timing.end_tid, timing.end_turn);
    }
    if (end_stream) Finish(it, StreamEnd::kComplete, 0, false, Unanswered::kNoResponse);
  }

  // DATA payload bytes of `d`'s current frame: `data` captured (starting at stream position
  // `position`), or `hole` bytes not.
  void OnData(Direction& d, std::string_view data, uint64_t position, uint64_t hole) {
    auto it = streams.find(d.data_stream);
    if (it == streams.end()) return;
    Side& side = d.request ? it->second.req : it->second.resp;
    if (!data.empty()) {
      const http1::BodySink sink{
          .msg = &side.msg,
          .max_prefix = side.msg.wide_body ? limits.max_wide_body_prefix : limits.max_body_prefix,
          .max_tail = limits.max_wide_body_tail,
          .stream = &d.stream,
          .in_position = position};
      http1::KeepBody(sink, data, side.msg.body_size, position);
      side.msg.body_size += data.size();
      side.framer.Feed(data);
    }
    if (hole > 0) {
      side.msg.body_size += hole;
      side.msg.body_truncated = true;
      side.framer.Skip(hole);
    }
  }

  void EndData(Direction& d, const ChunkTiming& last) {
    d.in_data = false;
    auto it = streams.find(d.data_stream);
    if (it == streams.end()) return;
    Side& side = d.request ? it->second.req : it->second.resp;
    side.msg.timing.ExtendTo(last.last_ns, last.tid, last.turn);
    if (!d.data_end_stream) return;
    side.ended = true;
    if (!d.request) Finish(it, StreamEnd::kComplete, 0, false, Unanswered::kNoResponse);
  }

  // ---- Frames ----------------------------------------------------------------------------
  // A whole non-DATA frame. Returns false on a framing error (a connection error for the
  // receiver): the caller resynchronises.
  bool OnFrame(Direction& d, const FrameHeader& h, std::string_view p, const ChunkTiming& first,
               const ChunkTiming& last) {
    if (d.in_block && h.type != kContinuation) return false;  // §6.10: must be CONTINUATION
    switch (h.type) {
      case kHeaders:
      case kPushPromise: {
        size_t off = 0, pad = 0;
        if (h.flags & kPadded) {
          pad = static_cast<uint8_t>(p[0]);
          off = 1;
        }
        if (h.type == kHeaders && (h.flags & kPriorityFlag)) off += 5;
        if (h.type == kPushPromise) off += 4;
        if (off + pad > p.size()) return false;
        d.in_block = true;
        d.block_stream = h.stream_id;
        d.block_end_stream = h.type == kHeaders && (h.flags & kEndStream);
        d.block_push = h.type == kPushPromise;
        d.block.assign(p.substr(off, p.size() - off - pad));
        d.block_first = first;
        break;
      }
      case kContinuation:
        if (!d.in_block || h.stream_id != d.block_stream) return false;
        if (d.block.size() + p.size() > limits.max_header_block) {
          ++stats.gaps;
          LoseContent(d);
          return true;
        }
        d.block.append(p);
        break;
      case kRstStream:
        if (auto it = streams.find(h.stream_id); it != streams.end()) {
          Finish(it, StreamEnd::kReset, Be32(p, 0), d.request, Unanswered::kNoResponse);
        }
        return true;
      case kGoAway:
        if (!d.request) {
          // Streams above the last one the server processed were never processed.
          const uint32_t last_id = Be32(p, 0) & 0x7fffffffu;
          const uint32_t code = Be32(p, 4);
          for (auto it = streams.upper_bound(last_id); it != streams.end();) {
            auto next = std::next(it);
            Finish(it, StreamEnd::kGoAway, code, false, Unanswered::kNoResponse);
            it = next;
          }
        }
        return true;
      case kSettings:
        if (h.flags & kAck) return true;
        for (size_t i = 0; i + 6 <= p.size(); i += 6) {
          const uint16_t id =
              static_cast<uint16_t>((static_cast<uint8_t>(p[i]) << 8) | static_cast<uint8_t>(p[i + 1]));
          const uint32_t value = Be32(p, i + 2);
          // Each setting governs what its sender receives: the other direction.
          if (id == kHeaderTableSize) Other(d).hpack.AllowTableSize(value);
          if (id == kSettingsMaxFrameSize && value >= kDefaultMaxFrameSize && value <= kMaxFrameSize) {
            Other(d).allowed_frame_size = value;
          }
        }
        return true;
      default: return true;  // PRIORITY, PING, WINDOW_UPDATE, extensions: nothing to report
    }
    if (!(h.flags & kEndHeaders)) {
      if (d.block.size() > limits.max_header_block) {
        ++stats.gaps;
        LoseContent(d);
      }
      return true;
    }
    d.in_block = false;
    HpackDecoder::Block block = d.hpack.Decode(d.block);
    d.block.clear();
    if (d.block_push) return true;  // decoded for the table's sake; pushes are not reported
    OnHeaderBlock(d, d.block_stream, d.block_end_stream, std::move(block), TimingOf(d.block_first, last));
    return true;
  }

  // A frame start after a loss: a plausible header at a syscall's first byte, followed by
  // another plausible one when the bytes reach that far.
  bool ResyncCandidate(const Direction& d, std::string_view head) const {
    const uint32_t max = std::max(d.allowed_frame_size, kDefaultMaxFrameSize);
    const FrameHeader h = DecodeFrameHeader(head);
    if (!PlausibleFrameHeader(h, max)) return false;
    const size_t next = kFrameHeaderSize + h.length;
    if (head.size() >= next + kFrameHeaderSize)
      return PlausibleFrameHeader(DecodeFrameHeader(head.substr(next)), max);
    return true;
  }

  // Parses what `d` holds.
  void Parse(Direction& d, bool is_closed) {
    DataStream& s = d.stream;
    const DataStream::Counters counters = s.TakeCounters();
    stats.bytes_dropped += counters.bytes_dropped;
    stats.gaps += counters.gaps;
    if (s.drop_count() != d.drops_seen) {
      d.drops_seen = s.drop_count();
      LoseFraming(d);
    }
    while (true) {
      const uint64_t pos = s.position();
      if (pos == s.end()) return;
      const std::string_view head = s.Head();
      if (d.gave_up && !head.empty()) {
        stats.bytes_dropped += head.size();
        s.Consume(head.size());
        continue;
      }
      if (head.empty()) {
        const uint64_t hole = s.HoleAtHead();
        if (d.in_data) {
          // Inside a DATA payload: only body bytes are lost.
          const uint64_t n = std::min(hole, d.data_left);
          if (d.pad_pending) {
            d.pad_pending = false;
            d.body_left = d.data_left;  // where the padding starts is unknown: count it all
            if (auto it = streams.find(d.data_stream); it != streams.end()) {
              (d.request ? it->second.req : it->second.resp).framer.count.lost = true;
            }
          }
          const uint64_t body = std::min(n, d.body_left);
          OnData(d, {}, 0, body);
          d.body_left -= body;
          d.data_left -= n;
          s.Consume(n);
          if (d.data_left == 0) EndData(d, s.TimingAt(s.position() - 1));
          continue;
        }
        if (!d.resync) ++stats.gaps;  // else the loss was counted where framing was lost
        LoseFraming(d);
        s.Consume(hole);
        continue;
      }
      if (d.in_data) {
        std::string_view b = head.substr(0, std::min<uint64_t>(head.size(), d.data_left));
        const size_t used = b.size();
        if (d.pad_pending) {
          const uint8_t pad = static_cast<uint8_t>(b[0]);
          d.pad_pending = false;
          b.remove_prefix(1);
          --d.data_left;
          if (pad > d.data_left) {  // §6.1: PROTOCOL_ERROR
            FramingError(d);
            s.Consume(used);
            continue;
          }
          d.body_left = d.data_left - pad;
        }
        const size_t body = static_cast<size_t>(std::min<uint64_t>(b.size(), d.body_left));
        OnData(d, b.substr(0, body), s.position() + (used - b.size()), 0);
        d.body_left -= body;
        d.data_left -= b.size();
        s.Consume(used);
        if (d.data_left == 0) EndData(d, s.TimingAt(s.position() - 1));
        continue;
      }
      if (d.preface_pending) {
        if (head.size() < kPreface.size() && kPreface.starts_with(head)) {
          if (!s.HoleAfterHead() && !is_closed) return;  // wait for the rest
        }
        d.preface_pending = false;
        if (head.starts_with(kPreface)) {
          from_start = pos == 0;
          s.Consume(kPreface.size());
          continue;
        }
        // No preface at position 0: a connection opened before kspan looked (detected by
        // its frames), or garbage; either way the HPACK state is unknown. Resync decides.
        ++stats.gaps;
        LoseFraming(d);
        Other(d).hpack.Lose();  // the server's table was built before kspan looked, too
        continue;
      }
      if (d.resync) {
        // Only a syscall's first byte, and only a plausible header there.
        if (!AtChunkStart(s, pos) || (head.size() >= kFrameHeaderSize && !ResyncCandidate(d, head)) ||
            (head.size() < kFrameHeaderSize && (s.HoleAfterHead() || is_closed))) {
          const uint64_t skip = std::min<uint64_t>(ChunkEnd(s, pos) - pos, head.size());
          stats.bytes_dropped += skip;
          s.Consume(skip);
          continue;
        }
        if (head.size() < kFrameHeaderSize) return;  // wait for the header
        d.resync = false;
      }
      if (head.size() < kFrameHeaderSize) {
        // The header runs into a hole. Its length (the first 3 bytes) is enough to keep
        // the framing when the bytes after the frame are known; the frame itself is lost.
        if (s.HoleAfterHead() && head.size() >= 3) {
          const uint64_t size = kFrameHeaderSize + DecodeLength(head);
          if (s.end() - pos >= size) {
            ++stats.gaps;
            LoseContent(d);
            d.in_data = false;
            stats.bytes_dropped += head.size();
            s.Consume(size);
            continue;
          }
        }
        if (s.HoleAfterHead()) {
          ++stats.gaps;
          LoseFraming(d);
          stats.bytes_dropped += head.size();
          s.Consume(head.size());
          continue;
        }
        if (is_closed) {
          ++stats.frames_cut;
          stats.bytes_dropped += head.size();
          s.Consume(head.size());
        }
        return;
      }
      const FrameHeader h = DecodeFrameHeader(head);
      if (CheckFrameHeader(h, kMaxFrameSize) != HeaderCheck::kValid) {
        FramingError(d);
        continue;  // the resync above skips this syscall's bytes
      }
      const ChunkTiming first = s.TimingAt(pos);
      if (h.type == kData) {
        if (d.in_block) {
          FramingError(d);
          continue;
        }
        s.Consume(kFrameHeaderSize);
        d.in_data = true;
        d.data_stream = h.stream_id;
        d.data_left = h.length;
        d.body_left = h.length;
        d.pad_pending = (h.flags & kPadded) != 0;
        d.data_end_stream = (h.flags & kEndStream) != 0;
        if (h.length == 0) EndData(d, first);
        continue;
      }
      const uint64_t size = kFrameHeaderSize + uint64_t{h.length};
      if (head.size() < size) {
        if (!s.HoleAfterHead() && pos + head.size() == s.end() && !is_closed &&
            size <= limits.max_buffered_bytes / 2) {
          return;  // the rest is coming
        }
        if (s.end() - pos >= size) {
          // The frame's bytes are partly in a hole (or too big to hold): the framing
          // holds, the frame is lost.
          ++stats.gaps;
          LoseContent(d);
          stats.bytes_dropped += head.size();
          s.Consume(size);
          continue;
        }
        if (is_closed) {
          ++stats.frames_cut;
          stats.bytes_dropped += head.size();
          s.Consume(s.end() - pos);
          return;
        }
        return;  // the bytes after the hole have not come yet
      }
      const ChunkTiming last = s.TimingAt(pos + size - 1);
      if (!OnFrame(d, h, head.substr(kFrameHeaderSize, h.length), first, last)) {
        FramingError(d);
        stats.bytes_dropped += size;
        s.Consume(size);
        continue;
      }
      s.Consume(size);
    }
  }

  void Run(bool is_closed) {
    // Requests first: a response pairs with a stream its request opened.
    Parse(req, is_closed);
    Parse(resp, is_closed);
  }

  void Finalize() {
    const uint64_t held = req.stream.DiscardKnown() + resp.stream.DiscardKnown();
    stats.bytes_dropped += held;
    const bool cut = resp.in_data || resp.in_block || req.in_data || req.in_block;
    if (cut) ++stats.frames_cut;
    const Unanswered why = cut ? Unanswered::kNotCaptured : close_reason;
    while (!streams.empty()) Finish(streams.begin(), StreamEnd::kConnection, 0, false, why);
    finalized = true;
  }
};

Connection::Connection(bool client, const Limits& limits) : impl_(std::make_unique<Impl>(client, limits)) {}
Connection::~Connection() = default;

void Connection::AddData(const Chunk& c) {
  Impl& m = *impl_;
  if (m.finalized) return;
  Impl::Direction& d = c.egress == m.egress_is_request ? m.req : m.resp;
  d.stream.Add(c.position, c.data, c.total_len, ChunkTiming{c.first_ns, c.last_ns, c.tid, c.turn});
  if (d.stream.under_pressure()) m.Parse(d, false);
}

void Connection::AdoptUpgradeRequest(uint64_t seq, http1::Message request) {
  Impl& m = *impl_;
  Stream& s = m.streams[1];
  s.id = 1;
  s.seq = seq;
  s.req.msg = std::move(request);
  // Sent as HTTP/1.1, answered in HTTP/2: the exchange's version is the one it ended on,
  // as curl reports it (%{http_version} "2").
  s.req.msg.set_version("2");
  s.req.head_seen = true;
  s.req.ended = true;
  m.next_seq = std::max(m.next_seq, seq);
}

void Connection::Close(Unanswered waiting) {
  impl_->closed = true;
  impl_->close_reason = waiting;
}

void Connection::Drain(std::vector<RequestStart>* started, std::vector<protocols::Record>* records,
                       ConnectionStats* stats) {
  Impl& m = *impl_;
  if (!m.finalized) {
    if (m.closed) {
      m.req.stream.FillGaps();
      m.resp.stream.FillGaps();
    } else {
      m.req.stream.AgeGaps();
      m.resp.stream.AgeGaps();
    }
    m.Run(m.closed);
    if (m.closed) m.Finalize();
  }
  started->insert(started->end(), std::make_move_iterator(m.started.begin()),
                  std::make_move_iterator(m.started.end()));
  m.started.clear();
  records->insert(records->end(), std::make_move_iterator(m.ready.begin()),
                  std::make_move_iterator(m.ready.end()));
  m.ready.clear();
  *stats += std::exchange(m.stats, {});
}

HeldData Connection::Held() const {
  HeldData h = HeldBy(impl_->req.stream, impl_->resp.stream);
  h.bytes += impl_->req.block.size() + impl_->resp.block.size();
  return h;
}

uint64_t Connection::DropHeld() {
  Impl& m = *impl_;
  if (m.finalized) return 0;
  uint64_t dropped = m.req.block.size() + m.resp.block.size();
  for (Impl::Direction* d : {&m.req, &m.resp}) {
    d->stream.FillGaps();
    dropped += d->stream.DiscardKnown();
    m.LoseFraming(*d);
  }
  return dropped;
}

}  // namespace kspan::protocols::http2
