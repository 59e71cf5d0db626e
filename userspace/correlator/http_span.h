// HTTP/1 record -> OpenTelemetry span, per the stable HTTP semantic conventions
// (semantic-conventions docs/http/http-spans.md).
//
// What the builder decides, and what it leaves to later stages:
//   - SERVER spans continue an incoming W3C `traceparent` (and copy `tracestate`);
//     without a valid one they start a new trace with random ids, sampled.
//   - CLIENT spans always get a fresh random trace id and span id. Joining them to the
//     server span that made the call (thread / event-loop causality, same-host socket
//     pairing) is the stitcher's job; it rewrites trace_id / parent_span_id afterwards.
//     The builder never guesses parentage beyond the incoming header.
//
// Span shape:
//
//   name    "{method} {url.template}", "{method}" when there is no path (CONNECT
//           host:port, OPTIONS *); {method} is "HTTP" for a method outside the known set
//   start   request.start_ns        end   response.end_ns (request.end_ns if none)
//   status  ERROR for 5xx (SERVER), 4xx and 5xx (CLIENT), a code outside 100..599, or no
//           response; the message is left empty when the status code explains it
//
// error.type values this builder reports (low cardinality, as the conventions ask):
//   "<status code>"      e.g. "503": the response status is an error for this span kind
//   "response_missing"   the connection closed, or its stream became unparseable, before
//                        a response came
//
// Attributes, by kind (S = SERVER, C = CLIENT):
//
//   http.request.method (+ _original)   S C   known methods as sent, else _OTHER
//   http.response.status_code           S C   when a response came
//   url.template                        S C   correlator/url.h heuristic
//   url.scheme, url.path, url.query     S     query values redacted by default
//   url.full                            C     scheme://host[:port]/path?query (redacted)
//   server.address, server.port         S C   see BuildHttpSpan
//   client.address, client.port         S     original client if a proxy said, else peer
//   network.peer.address, .port         S C   the remote end of the socket
//   network.protocol.name/.version      S C   "http", "1.1" / "1.0"
//   user_agent.original                 S C
//   http.request.body.size              S C   when > 0 or declared (Content-Length,
//   http.response.body.size             S C   Transfer-Encoding)
//   error.type                          S C   see above
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "events/events.h"
#include "model/span.h"
#include "protocols/http1/types.h"

namespace kspan::correlator {

// The connection a record came from, as the process that owns the socket sees it.
struct HttpConnContext {
  bool is_server = false;  // this process answered the request (SERVER span)
  // local = this process's end, remote = the peer. Borrowed (the connection's own, valid
  // while the span is built): a span costs no copy of the addresses. Null: none known.
  const events::SocketTuple* tuple = nullptr;
  uint32_t pid = 0;
  // The bytes came from the TLS uprobes (plaintext of a TLS connection): url.scheme is
  // "https" and 443 the default port.
  bool tls = false;
};

struct HttpSpanOptions {
  // url.query and url.full carry "key=REDACTED" instead of query values.
  bool redact_query_values = true;
};

// Builds the span for one request/response pair. Never fails: whatever the traced
// process sent gives a span (a garbage target gives a garbage-but-bounded url.template).
//
// server.address / server.port:
//   SERVER  Forwarded host=, else X-Forwarded-Host, else Host (port: the one in that
//           value; for Host without one, the local socket port, which is where the
//           request arrived); with no such header, the local socket address and port.
//   CLIENT  the authority of an absolute-form target, else Host (port: the one given,
//           else the scheme's default), else the remote socket address and port.
//
// The span is built in `*out`, which must be a default-constructed span (the caller may
// hold it where it goes next, saving a move of the whole span).
void BuildHttpSpan(const protocols::http1::Record& record, const HttpConnContext& conn,
                   std::shared_ptr<const model::Resource> resource, const HttpSpanOptions& options,
                   model::Span* out);
inline model::Span BuildHttpSpan(const protocols::http1::Record& record, const HttpConnContext& conn,
                                 std::shared_ptr<const model::Resource> resource,
                                 const HttpSpanOptions& options) {
  model::Span span;
  BuildHttpSpan(record, conn, std::move(resource), options, &span);
  return span;
}

// The method as http.request.method reports it: itself when it is one of the known
// methods (case-sensitive, RFC 9110 + PATCH), else "_OTHER".
std::string_view NormalizeHttpMethod(std::string_view method);

}  // namespace kspan::correlator
