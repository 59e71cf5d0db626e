// Spans -> Zipkin v2 JSON (zipkin-api's zipkin2-api.yaml, `ListOfSpans`), mapped the way
// OpenTelemetry's own Zipkin exporter for JavaScript (@opentelemetry/exporter-zipkin,
// transform.ts) maps them, so either produces the same span for the same data:
//
//   [{"traceId":"<32 hex>","id":"<16 hex>","parentId":"<16 hex>",   parentId: non-root only
//     "name":"GET /","kind":"SERVER",                                kind: omitted for INTERNAL
//     "timestamp":1700000000123457,"duration":8123,                  µs, rounded to nearest
//     "localEndpoint":{"serviceName":"checkout"},
//     "remoteEndpoint":{"ipv4":"10.0.0.7","port":8080},               when the span has a peer
//     "tags":{"http.request.method":"GET","http.response.status_code":"200",
//             "otel.status_code":"ERROR","error":"timeout", "service.name":"checkout",...},
//     "annotations":[{"timestamp":1700000000124000,"value":"event name"}]}]
//
// Tags: every span attribute as a string (numbers as JavaScript's String() prints them,
// booleans "true"/"false"); otel.status_code "OK"/"ERROR" unless the status is unset;
// error = the status message for an ERROR with one; then every resource attribute
// (overriding a span attribute of the same key, as the JS exporter does).
// localEndpoint.serviceName: the span's service.name attribute, else the resource's,
// else "unknown_service".
//
// Where we add to the JS exporter: remoteEndpoint (zipkin2-api's field for the other
// side) from network.peer.address / network.peer.port, with serviceName from
// peer.service; the JS exporter leaves it out. Neither emits otel.scope.name: the JS
// exporter does not, and we follow it so the two agree. Links have no Zipkin form and
// are left out, as there.
#pragma once

#include <span>
#include <string>

#include "model/span.h"

namespace kspan::exporters {

// Appends the JSON array of `spans` to `out`.
void AppendZipkinJson(std::span<const model::Span> spans, std::string* out);

// `v` as JavaScript's String(v) prints it ("200", "0.5", "1e+21", "NaN"), so tags match
// byte for byte what a JS exporter writes.
std::string JsNumberString(double v);

}  // namespace kspan::exporters
