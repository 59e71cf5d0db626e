// The local web UI (docs/ui.md), served beside the agent's status routes on --listen:
//
//   GET /                      recent traces and search            (assets/index.html)
//   GET /traces/{traceId}      a trace's waterfall                 (the same page)
//   GET /tail                  spans as they arrive                (the same page)
//   GET /graph                 service map and agent call graph, as tables (the same page;
//                              /api/dependencies and /api/agent-graph)
//   GET /ui/{file}             the page's script and style, embedded (ui/assets.h)
//   GET /api/ui/traces?...     trace summaries for the list: service, operation,
//                              status=error, minDuration, maxDuration (Go durations),
//                              attr=KEY=VALUE (repeatable), start, end (Unix µs), limit
//   GET /api/ui/tail?after=N   spans written after sequence N (none: the last 100)
//   and the Jaeger query API (jaeger_api.h): the page reads a trace as Jaeger JSON.
//
// Everything comes from the trace store; nothing is fetched from the network. Handlers run
// on the server's thread; `store` must outlive it.
#pragma once

#include "common/http_server.h"
#include "store/trace_store.h"

namespace kspan::ui {

void AddUiRoutes(http::HttpServer* server, store::TraceStore* store);

// The /api/ui/traces document: {"traces":[{"traceID":…,"rootService":…,"rootName":…,
// "startTime":µs,"duration":µs,"spanCount":…,"errorCount":…}]}.
std::string TraceListJson(const std::vector<store::TraceSummary>& traces);

// A /api/ui/traces query: InvalidArgument naming the bad parameter.
Result<store::TraceQuery> ParseUiSearch(std::string_view query);

}  // namespace kspan::ui
