#include "protocols/http2/spec.h"

#include "protocols/http2/connection.h"
#include "protocols/http2/frame.h"

namespace kspan::protocols::http2 {
namespace {

// What the first field lines of a header block say without any HPACK state: a request
// (a static :method/:path/:scheme/:authority), a response (a static :status), or nothing
// (a dynamic reference, a Huffman-coded name). Pseudo-header fields come first (RFC 9113
// §8.3), so the first decidable line decides.
enum class BlockKind : uint8_t { kRequest, kResponse, kUnknown };

// An HPACK integer with an N-bit prefix at b[*i] (RFC 7541 §5.1); false when cut off.
bool SkipInt(std::string_view b, size_t* i, int prefix_bits, uint64_t* v) {
  if (*i >= b.size()) return false;
  const uint64_t max = (1u << prefix_bits) - 1;
  *v = static_cast<uint8_t>(b[(*i)++]) & max;
  if (*v < max) return true;
  for (int shift = 0; shift <= 28; shift += 7) {
    if (*i >= b.size()) return false;
    const uint8_t c = static_cast<uint8_t>(b[(*i)++]);
    *v += static_cast<uint64_t>(c & 0x7f) << shift;
    if (!(c & 0x80)) return true;
  }
  return false;
}

BlockKind KindOfBlock(std::string_view b) {
  size_t i = 0;
  for (int lines = 0; lines < 16 && i < b.size(); ++lines) {
    const uint8_t c = static_cast<uint8_t>(b[i]);
    uint64_t index = 0;
    const bool indexed = c & 0x80;
    if ((c & 0xe0) == 0x20) {  // table size update (§6.3)
      if (!SkipInt(b, &i, 5, &index)) return BlockKind::kUnknown;
      continue;
    }
    const int prefix = indexed ? 7 : (c & 0x40) ? 6 : 4;
    if (!SkipInt(b, &i, prefix, &index)) return BlockKind::kUnknown;
    if (!indexed && index == 0) return BlockKind::kUnknown;  // a literal name: not read here
    if (index >= 1 && index <= 7) return BlockKind::kRequest;
    if (index >= 8 && index <= 14) return BlockKind::kResponse;
    if (index <= 61) return BlockKind::kUnknown;  // a regular field: the pseudo-fields are over
    // A dynamic entry (unknown here) may be a pseudo-field: skip the line.
    if (!indexed) {
      uint64_t len = 0;
      if (!SkipInt(b, &i, 7, &len) || len > b.size() - i) return BlockKind::kUnknown;
      i += len;
    }
  }
  return BlockKind::kUnknown;
}

// A connection kspan joined mid-stream (opened before it started): the bytes of one
// syscall are whole plausible frames from its first byte, and one of them is a HEADERS
// frame on a client stream whose block starts like a request. Strict on purpose: it runs
// on the first bytes of connections of any protocol.
bool LooksLikeRequestFrames(std::string_view bytes) {
  size_t off = 0;
  bool request = false;
  while (off + kFrameHeaderSize <= bytes.size()) {
    const FrameHeader h = DecodeFrameHeader(bytes.substr(off));
    if (!PlausibleFrameHeader(h, 16384)) return false;
    const size_t end = off + kFrameHeaderSize + h.length;
    if (h.type == kHeaders && h.stream_id % 2 == 1 && end <= bytes.size()) {
      size_t at = off + kFrameHeaderSize;
      size_t pad = 0;
      if (h.flags & kPadded) pad = static_cast<uint8_t>(bytes[at++]);
      if (h.flags & kPriorityFlag) at += 5;
      if (at + pad > end) return false;
      const BlockKind k = KindOfBlock(bytes.substr(at, end - at - pad));
      if (k == BlockKind::kResponse) return false;
      request = request || k == BlockKind::kRequest;
    }
    if (end > bytes.size()) return request;  // the rest of the syscall was not captured
    off = end;
  }
  return request && off == bytes.size();
}

// The client's first bytes are the preface (RFC 9113 §3.4) whichever way HTTP/2 was
// chosen (prior knowledge, ALPN "h2"); an HTTP/1.1 Upgrade to h2c starts as HTTP/1 and is
// handed over at the 101 (http1/spec.cc). A connection already open when kspan started is
// recognised by its frames.
Detection Detect(std::string_view request_bytes) {
  if (request_bytes.starts_with(kPreface)) return Detection::kMatch;
  if (!request_bytes.empty() && kPreface.starts_with(request_bytes)) return Detection::kNeedMoreData;
  return LooksLikeRequestFrames(request_bytes) ? Detection::kMatch : Detection::kNoMatch;
}

std::unique_ptr<ProtocolConnection> Make(bool client, const ProtocolOptions& options) {
  return std::make_unique<Connection>(client, LimitsFrom(options));
}

}  // namespace

// Body capture follows the HTTP/1 settings: what a body is kept for (the gen_ai
// recogniser, LLM calls read wide) does not depend on the HTTP version.
Limits LimitsFrom(const ProtocolOptions& options) {
  Limits limits;
  limits.max_body_prefix = options.http1.max_body_prefix;
  limits.wide_body_request = options.http1.wide_body_request;
  limits.max_wide_body_prefix = options.http1.max_wide_body_prefix;
  limits.max_wide_body_tail = options.http1.max_wide_body_tail;
  return limits;
}

const ProtocolSpec& Spec() {
  static const ProtocolSpec spec{
      .name = "http2", .scope = Scope::kConnection, .transports = kTcp, .detect = Detect, .make = Make};
  return spec;
}

}  // namespace kspan::protocols::http2
