// HTTP/2 as a registered protocol (protocols/registry.h): detected by the client's
// connection preface, over TCP (h2c with prior knowledge) and over TLS (the plaintext the
// OpenSSL probes capture, h2 negotiated by ALPN). h2c reached by an HTTP/1.1 Upgrade
// starts as HTTP/1 (http1/spec.cc hands the connection over). See README.md.
#pragma once

#include "protocols/http2/connection.h"
#include "protocols/registry.h"

namespace kspan::protocols::http2 {

const ProtocolSpec& Spec();

// The limits an HTTP/2 connection gets from the protocol settings.
Limits LimitsFrom(const ProtocolOptions& options);

}  // namespace kspan::protocols::http2
