// The Jaeger query HTTP API over the trace store (store/trace_store.h), so Grafana's
// Jaeger data source and the Jaeger UI can read a node's kspan. The routes and the JSON
// are Jaeger's query service's (jaeger cmd/query/app/http_handler.go, model/json/model.go;
// compared field by field with its fixture model/converter/json/fixtures/ui_01.json in
// tests/unit/jaeger_api_test.cc):
//
//   GET /api/services                          {"data":["api","db",...],"total":N,...}
//   GET /api/services/{service}/operations     {"data":["GET /items",...],...}
//   GET /api/operations?service=S[&spanKind=K] {"data":[{"name":..,"spanKind":"server"}],...}
//   GET /api/traces?service=S[&operation=O][&tags={"k":"v"}][&tag=k:v]
//                  [&minDuration=1.2s][&maxDuration=2s][&start=µs][&end=µs]
//                  [&lookback=1h][&limit=20]                   {"data":[Trace,...],...}
//   GET /api/traces?traceID=ID[&traceID=ID2]                    the traces named
//   GET /api/traces/{traceID}                  {"data":[Trace]}, or 404 "trace not found"
//   GET /api/dependencies?endTs=ms&lookback=ms {"data":[{"parent":..,"child":..,"callCount":N}]}
//
// Every answer is the envelope {"data":…,"total":N,"limit":0,"offset":0,"errors":null};
// a bad request gets data null and "errors":[{"code":400,"msg":"…"}].
//
// OpenTelemetry spans become Jaeger spans as Jaeger's own OTLP translator does it:
//   trace/span ids             lowercase hex, 32 / 16 digits
//   parent span id             a CHILD_OF reference, first
//   links                      FOLLOWS_FROM references
//   start, duration            microseconds
//   attributes                 tags: string, int64, float64, bool; a string array is a
//                              string holding its JSON text
//   kind                       tag span.kind (server, client, producer, consumer, internal)
//   status                     tags otel.status_code (OK, ERROR), otel.status_description,
//                              and error=true on ERROR
//   events                     logs: timestamp µs, fields event=NAME then its attributes
//   resource                   a process: serviceName from service.name, the other
//                              attributes as its tags; "p1", "p2", ... in order of use
// Search: the tag error=true asks for traces with an ERROR span (status, not attribute);
// every other tag is an attribute of the same span as the other conditions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/http_server.h"
#include "common/status.h"
#include "model/span.h"
#include "store/trace_store.h"

namespace kspan::ui {

// name=value pairs of a query string, percent-decoded ('+' is a space), in order.
std::vector<std::pair<std::string, std::string>> ParseQueryString(std::string_view query);

// A Go duration ("1.2s", "300ms", "500us", "1m30s", "2h"): nanoseconds. Invalid: nullopt.
std::optional<uint64_t> ParseGoDuration(std::string_view text);

// A /api/traces search (the parameters above), against `now_ns` (Unix ns) for lookback.
Result<store::TraceQuery> ParseJaegerSearch(const std::vector<std::pair<std::string, std::string>>& params,
                                            uint64_t now_ns);

// Appends one Jaeger Trace object for `spans` (all of one trace) to `out`.
void AppendJaegerTrace(std::span<const model::Span> spans, std::string* out);

// Adds the routes above. `store` must outlive the server's thread.
void AddJaegerRoutes(http::HttpServer* server, store::TraceStore* store);

}  // namespace kspan::ui
