// HTTP/2 records: one stream (a request and its response) as the HTTP/2 parser hands it to
// the correlator.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/http1/types.h"

namespace kspan::protocols::http2 {

// RFC 9113 §7 error codes, by name ("CANCEL"); "0x…" for one outside the registry.
std::string ErrorCodeName(uint32_t code);

// How a stream ended.
enum class StreamEnd : uint8_t {
  kComplete,    // END_STREAM on the response (trailers included)
  kReset,       // RST_STREAM (either side; see Record::reset_by_client)
  kGoAway,      // the server's GOAWAY said the stream was never processed
  kConnection,  // the connection closed (or kspan lost the stream) before it ended
};

// gRPC length-prefixed messages (gRPC over HTTP/2, "Length-Prefixed-Message") in one
// direction of a stream, counted from the DATA frames.
struct MessageCount {
  uint64_t messages = 0;
  // A hole fell on a message prefix: `messages` is a lower bound, not reported.
  bool lost = false;
};

struct Record {
  uint64_t seq = 0;  // protocols::RequestStart::seq
  uint32_t stream_id = 0;
  // The stream as HTTP messages: request method and target from :method and :path
  // (:authority as a Host field when no Host was sent), response status from :status;
  // version "2"; regular fields in wire order; body sizes from DATA frames.
  http1::Record http;
  // Trailer fields of the response (gRPC status travels here), in wire order.
  std::vector<std::pair<std::string, std::string>> trailers;
  // Some field of the request or response could not be decoded (HPACK dynamic table
  // unknown after a loss, see hpack.h): what is there is right, what is missing is unknown.
  bool headers_incomplete = false;
  StreamEnd end = StreamEnd::kComplete;
  uint32_t error_code = 0;        // RST_STREAM / GOAWAY error code
  bool reset_by_client = false;   // kReset: the client sent the RST_STREAM
  MessageCount request_messages;  // gRPC only (content-type application/grpc…)
  MessageCount response_messages;

  // The value of the first trailer (else response field) with this lower-case name.
  std::string_view TrailerOrHeader(std::string_view name) const;
};

}  // namespace kspan::protocols::http2
