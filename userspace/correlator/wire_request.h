// A request as a trace-context carrier identifies it (carrier/wire_contexts.h): the
// syscall that moved its first byte (StitchNode::tid, start_ns: a send's entry, a read's
// exit; for TLS plaintext the library call's: SSL_write's entry, SSL_read's return), and
// what bounds the reports that can be its own. Filled by the stitcher, read by the matcher.
#pragma once

#include <cstdint>

namespace kspan::correlator {

struct WireRequest {
  uint32_t pid = 0;
  int32_t fd = -1;
  uint32_t tid = 0;
  uint64_t start_ns = 0;  // Unix ns
  bool server = false;
  bool tls = false;      // TLS plaintext: start_ns is the library call's
  bool first = false;    // the connection's first request
  uint64_t open_ns = 0;  // the connection's connect or accept, Unix ns (0: not seen)
  // Its answer's first byte moved (CLIENT: read, SERVER: written), Unix ns (0: not yet).
  uint64_t answer_ns = 0;
  // The connection's next request started, Unix ns (0: none known).
  uint64_t next_start_ns = 0;
};

}  // namespace kspan::correlator
