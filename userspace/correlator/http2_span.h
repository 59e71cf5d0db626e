// HTTP/2 stream record -> OpenTelemetry span. The HTTP part is BuildHttpSpan's (the stream
// is handed over as HTTP messages, version "2"); this adds what HTTP/2 and gRPC change.
//
// HTTP/2 (semantic-conventions v1.44.0 docs/http/http-spans.md):
//   network.protocol.version "2"; server.address / server.port from :authority.
//   A stream ended by RST_STREAM or by the server's GOAWAY (never processed): ERROR,
//   error.type the RFC 9113 error code name ("CANCEL", "REFUSED_STREAM", …), the message
//   says which frame and which side; kspan.http2.end = "rst_stream" | "goaway".
//   Headers not all decodable (HPACK table unknown after a loss, protocols/http2/hpack.h):
//   kspan.http2.headers_incomplete = true; an unknown method or status is left out, never
//   guessed (no http.request.method, no http.response.status_code, no error from it).
//
// gRPC (content-type application/grpc, application/grpc+…; semantic-conventions v1.44.0
// docs/rpc/grpc.md and rpc-spans.md, "Release Candidate"):
//   name                      {rpc.method} ("grpc" when the path is unknown)
//   rpc.system.name           "grpc"
//   rpc.method                the path without its '/': "package.Service/Method"
//   rpc.response.status_code  the grpc-status name ("OK", "NOT_FOUND", …) from the trailers
//                             or a trailers-only response; for a stream reset with no
//                             grpc-status, the code gRPC maps its RST_STREAM error to
//                             (gRPC PROTOCOL-HTTP2.md: CANCEL -> CANCELLED, REFUSED_STREAM
//                             -> UNAVAILABLE, …); a GOAWAY-refused stream: UNAVAILABLE
//   status                    CLIENT: ERROR for every code but OK; SERVER: ERROR for UNKNOWN,
//                             DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
//                             DATA_LOSS only. The message is grpc-message (percent-decoded).
//   error.type                the status code name, when ERROR
//   kspan.rpc.request.messages / kspan.rpc.response.messages
//                             length-prefixed messages each way (streaming RPCs: one span
//                             with the counts); left out when a hole hid a message prefix
//   kept from HTTP            server.address/port, client.address/port, network.peer.*,
//                             network.protocol.name/version; the http.* and url.* attributes
//                             are dropped (the RPC conventions replace them)
// (The unreleased semantic-conventions main renames rpc.response.status_code to
// rpc.status_code; we follow the latest release.)
#pragma once

#include "model/span.h"
#include "protocols/http2/types.h"

namespace kspan::correlator {

// `span` is BuildHttpSpan's for record.http; `is_server`: the span is the SERVER side.
void ApplyHttp2(const protocols::http2::Record& record, bool is_server, model::Span* span);

// gRPC status codes by number ("OK", "CANCELLED", … "UNAUTHENTICATED"); "" outside 0..16.
std::string_view GrpcStatusName(int code);

}  // namespace kspan::correlator
