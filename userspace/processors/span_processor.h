// The processors stage: what happens to a span between the correlator and the exporters
// (enrich, attach, aggregate, and later sample and filter). Like OpenTelemetry's
// SpanProcessor, with two moments instead of one because kspan assembles traces first:
//
//   correlator: record ──▶ span built ──OnEnd──▶ trace window (stitcher) ──OnExport──▶ exporters
//                                       (end order,            (trace and parent final,
//                                        ids not yet set)       a whole trace at a time)
//
// Threading contract: every method is called on the pipeline thread, one call at a time,
// in the order the chain holds the processors; a processor needs no lock for its own
// per-span state. A processor whose state another thread reads (the agent graph, read by
// the status server) guards that state itself. Calls must not block and never throw
// (noexcept): a processor that fails keeps the span as it was.
//
// Ownership: the span is the caller's; a processor may change it in place during the call
// and keeps no pointer to it afterwards.
#pragma once

#include <cstdint>

#include "model/span.h"

namespace kspan::processors {

class SpanProcessor {
 public:
  virtual ~SpanProcessor() = default;

  // The span of process `pid` ended (a record's span, or an exec or session span at the
  // process's end), before it waits in the trace window: spans of one process come
  // innermost first. May add attributes and events; its ids are not assigned yet.
  virtual void OnEnd(uint32_t pid, model::Span& span) noexcept {
    (void)pid;
    (void)span;
  }
  // The span leaves the trace window on its way to the exporters: trace id, parent and
  // links are final. May change attributes and events (not ids). False drops the span
  // (the chain counts it by processor).
  virtual bool OnExport(model::Span& span) noexcept {
    (void)span;
    return true;
  }
  // Process `pid` ended and every span it will get has passed OnEnd.
  virtual void OnProcessExit(uint32_t pid) noexcept { (void)pid; }
  // Shutdown: nothing more will come.
  virtual void Shutdown() noexcept {}
};

}  // namespace kspan::processors
