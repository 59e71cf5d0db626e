// HTTP/2 as a registered protocol (protocols/registry.h): detected by the client's
// connection preface, over TCP (h2c with prior knowledge) and over TLS (the plaintext the
// OpenSSL probes capture, h2 negotiated by ALPN). See README.md.
#pragma once

#include "protocols/registry.h"

namespace kspan::protocols::http2 {

const ProtocolSpec& Spec();

}  // namespace kspan::protocols::http2
