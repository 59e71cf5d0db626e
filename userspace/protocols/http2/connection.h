// HTTP/2 state of one connection as one process sees it: the two directions' frame
// parsers (each with its HPACK decoder), the streams between them, and the records they
// become. The connection tracker owns one per HTTP/2 connection (protocols/registry.h)
// and drives it from the pipeline thread.
//
//   request direction (client → server)          response direction (server → client)
//   preface, SETTINGS, HEADERS (+CONTINUATION),   SETTINGS, HEADERS (1xx, final, trailers),
//   DATA, RST_STREAM, …                           DATA, RST_STREAM, GOAWAY, …
//          │ HPACK (hpack.h)                             │ HPACK
//          └──────────────► streams by id ◄──────────────┘
//                  RequestStart at the request's HEADERS; Record when the response
//                  ends (END_STREAM), a RST_STREAM or GOAWAY ends it, or the connection
//
// Losses: a hole inside a DATA payload costs nothing but the body bytes (and gRPC message
// counts when it covers a message prefix); a hole inside any other frame whose header was
// seen keeps the framing (the length is known) but loses the frame: the direction's HPACK
// table becomes unknown (hpack.h: fail closed). A hole over a frame header loses the
// framing: the direction resynchronises at a later syscall's first byte, on a frame header
// that passes PlausibleFrameHeader followed by another that does (or the end of the
// bytes). Every loss is counted (ConnectionStats::gaps, frames_invalid, bytes_dropped).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "protocols/registry.h"

namespace kspan::protocols::http2 {

struct Limits {
  size_t max_buffered_bytes = 1 << 20;  // per direction (DataStream)
  size_t max_body_prefix = 4096;        // body bytes kept per message (gen_ai recogniser)
  // Requests whose bodies, and their responses', are kept wide (http1::Message::wide_body:
  // an LLM API call), as http1::Limits says; null keeps none.
  bool (*wide_body_request)(const http1::Message& head) = nullptr;
  size_t max_wide_body_prefix = 1 << 20;
  size_t max_wide_body_tail = 64 << 10;
  // Streams open at once. RFC 9113 recommends SETTINGS_MAX_CONCURRENT_STREAMS >= 100;
  // nginx allows 128, gRPC servers 100..unbounded. Past it the oldest is given up
  // (counted as requests_unanswered{reason="evicted"}).
  size_t max_streams = 1024;
  // One header block (HEADERS + CONTINUATION): past it the block is lost (counted) and
  // the HPACK table becomes unknown. nginx limits a request's headers to 32 KiB by default.
  size_t max_header_block = 256 << 10;
  // The largest HPACK dynamic table kept per direction (RFC 7541 §4.2 sizes).
  uint32_t max_table_size = 65536;
};

class Connection final : public ProtocolConnection {
 public:
  // `client`: this process sent the connection preface (it makes the requests).
  Connection(bool client, const Limits& limits);
  ~Connection() override;

  void AddData(const Chunk& chunk) override;
  void Close(Unanswered waiting) override;
  void Drain(std::vector<RequestStart>* started, std::vector<protocols::Record>* records,
             ConnectionStats* stats) override;
  HeldData Held() const override;
  uint64_t DropHeld() override;

  // HTTP/2 reached by an HTTP/1.1 Upgrade to h2c (RFC 7540 §3.2): this connection's stream
  // positions start where HTTP/1 ended in each direction (the client preface, the server's
  // SETTINGS), and `request`, the upgrade request HTTP/1 parsed and announced as `seq`,
  // is stream 1, half-closed by the client, whose response comes in HTTP/2 frames. Later
  // streams number on from `seq`. Call before any AddData.
  void AdoptUpgradeRequest(uint64_t seq, http1::Message request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kspan::protocols::http2
