// HTTP/1 state of one connection as one process sees it: its two byte streams (with
// holes where kspan did not capture bytes), the frame parsers and the stitcher that pairs
// requests with responses. The connection tracker owns one per HTTP/1 connection and
// calls it from a single thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "protocols/common/data_stream.h"
#include "protocols/http1/types.h"
#include "protocols/record.h"

namespace kspan::protocols::http1 {

// Cheap checks on the first bytes of a stream; used to recognise HTTP/1 and to infer the
// role of connections that were open before kspan started. `prefix` may be short: these
// return true only when what is there is consistent with a request line / status line and
// at least the method / "HTTP/1." is present.
bool LooksLikeRequest(std::string_view prefix);
// `prefix` is too short to say, but is the start of a known method and its space ("GE",
// "POST"): a first request written in pieces.
bool MayBecomeRequest(std::string_view prefix);
bool LooksLikeResponse(std::string_view prefix);

struct Limits {
  // Bytes a stream buffers while waiting for a frame to complete. Past it the stream
  // drops what it holds and resynchronises (counted in Stats::bytes_dropped).
  size_t max_buffered_bytes = 1 << 20;
  // Body bytes kept in Message::body_prefix.
  size_t max_body_prefix = 4096;
  // Requests (and their responses) whose bodies are kept wide (Message::wide_body):
  // decided on the request's head; null keeps none.
  bool (*wide_body_request)(const Message& head) = nullptr;
  size_t max_wide_body_prefix = 1 << 20;
  size_t max_wide_body_tail = 64 << 10;
  // Requests waiting for a response (pipelining) before the oldest is given up. Heads are
  // at most 64 KiB, so this bounds one connection's parsed-but-unanswered requests to
  // 8 MiB even against a client that pipelines without reading.
  size_t max_pending_requests = 128;
};

// Counts since the last Drain(); the tracker adds them to the agent's metrics.
struct Stats {
  uint64_t frames_invalid = 0;                // bytes that did not parse as HTTP/1 (each resync)
  uint64_t frames_cut = 0;                    // messages the connection's close cut short
  uint64_t bytes_dropped = 0;                 // bytes thrown away: buffer cap or unparseable
  uint64_t responses_unmatched = 0;           // a response with no request waiting
  uint64_t responses_unmatched_at_close = 0;  // one still waiting for its request at the end
  UnansweredCounts requests_unanswered{};     // requests given up with no response, by reason
  uint64_t gaps = 0;                          // holes no frame boundary could be found across
};

class Connection {
 public:
  // `egress_is_request`: true when this process is the client (it sends requests).
  Connection(bool egress_is_request, const Limits& limits);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One syscall's bytes. `position` is the offset of the first byte in this direction's
  // stream; `captured` is the prefix kspan saw of the `total_len` bytes moved (the rest is
  // a hole of known size). Chunks may arrive out of order (threads on several CPUs);
  // overlapping or duplicate chunks are ignored. first_ns/last_ns: see Message.
  void AddData(bool egress, uint64_t position, std::string_view captured, uint32_t total_len,
               uint64_t first_ns, uint64_t last_ns, uint32_t tid, uint32_t turn = 0);

  // The connection closed: a response delimited by close is complete, and requests
  // without a response are returned as Records with response_missing set, `waiting` their
  // reason (kNotCaptured instead when the response stream lost bytes since its last
  // answer: the answer may have been among them).
  void Close(Unanswered waiting = Unanswered::kNoResponse);

  // Parses what is buffered; appends completed records, oldest first, and, when `started`
  // is given, every request parsed whole since the last call (each before its record).
  void Drain(std::vector<Record>* out, Stats* stats, std::vector<protocols::RequestStart>* started = nullptr);
  // The same with the records as the correlator takes them (the body an http1::Record, the
  // envelope its timing): built that way in place, nothing moved again.
  void Drain(std::vector<protocols::Record>* out, Stats* stats,
             std::vector<protocols::RequestStart>* started = nullptr);

  // The connection switched protocol (101, CONNECT 2xx): nothing more will be parsed.
  bool upgraded() const;

  // An upgrade to h2c (a 101 whose Upgrade field names h2c, RFC 7540 §3.2): the bytes
  // past the switch are kept, not dropped, for HTTP/2 to take with TakeRest.
  bool h2c_pending() const;
  // Hands every byte captured past the switch, in each direction, to `f` (`egress` as
  // AddData's; `position` counted from the switch; `timing` of the syscall that moved the
  // bytes), then drops them. Bytes given to AddData afterwards are ignored.
  void TakeRest(const std::function<void(bool egress, uint64_t position, std::string_view bytes,
                                         const ChunkTiming& timing)>& f);
  // Where the switch happened in each direction's stream (valid once h2c_pending()).
  uint64_t switch_position(bool egress) const;

  // Bytes buffered in both directions for messages not parsed yet, and dropping them
  // (protocols::ProtocolConnection::Held, DropHeld).
  HeldData Held() const;
  uint64_t DropHeld();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kspan::protocols::http1
