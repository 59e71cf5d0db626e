#include "protocols/http2/spec.h"

#include "protocols/http2/connection.h"
#include "protocols/http2/frame.h"

namespace kspan::protocols::http2 {
namespace {

// The client's first bytes are the preface (RFC 9113 §3.4) whichever way HTTP/2 was
// chosen (prior knowledge, ALPN "h2"); an HTTP/1.1 Upgrade to h2c is not followed.
Detection Detect(std::string_view request_bytes) {
  if (request_bytes.starts_with(kPreface)) return Detection::kMatch;
  if (!request_bytes.empty() && kPreface.starts_with(request_bytes)) return Detection::kNeedMoreData;
  return Detection::kNoMatch;
}

std::unique_ptr<ProtocolConnection> Make(bool client, const ProtocolOptions&) {
  return std::make_unique<Connection>(client, Limits{});
}

}  // namespace

const ProtocolSpec& Spec() {
  static const ProtocolSpec spec{
      .name = "http2", .scope = Scope::kConnection, .transports = kTcp, .detect = Detect, .make = Make};
  return spec;
}

}  // namespace kspan::protocols::http2
