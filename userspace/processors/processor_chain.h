// The processors in order, between the correlator and the export pipeline: each span
// passes every processor's OnEnd (when it ends) and OnExport (when it leaves the trace
// window), then goes to `next` (the exporters). Like opentelemetry-cpp's
// MultiSpanProcessor, but a chain: a processor that drops a span at OnExport stops it
// there, counted in kspan_processor_spans_dropped_total{processor=NAME}.
//
// Threading: as SpanProcessor (span_processor.h): the pipeline thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "processors/span_processor.h"

namespace kspan::processors {

class ProcessorChain {
 public:
  using Next = std::function<void(model::Span&&)>;
  ProcessorChain(metrics::Registry* metrics, Next next);

  // Appends a processor (not owned: it must outlive the chain) under `name`, the label of
  // its drop counter.
  void Add(std::string name, SpanProcessor* processor);

  void OnEnd(uint32_t pid, model::Span& span);
  // Runs every OnExport, then hands the span on, unless one dropped it.
  void Export(model::Span&& span);
  void OnProcessExit(uint32_t pid);
  void Shutdown();

 private:
  struct Entry {
    SpanProcessor* processor;
    metrics::Counter* dropped;
  };
  metrics::Registry* metrics_;
  Next next_;
  std::vector<Entry> chain_;
  metrics::Counter* exported_;
};

}  // namespace kspan::processors
