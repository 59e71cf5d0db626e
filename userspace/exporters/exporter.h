// The exporter interface: where finished spans leave the agent (a terminal, a file, an
// OTLP endpoint). Modelled on the OpenTelemetry SDK's SpanExporter.
//
// Threading contract: an exporter is driven by exactly one thread, the ExportPipeline's
// export thread (export_pipeline.h). Export, ForceFlush and Shutdown are never called
// concurrently and never from the capture path, so an exporter may block (write(2), a
// network round trip) and keeps its state without locks. Name() may be called from any
// thread at any time and must not change.
//
// Ownership: the batch is borrowed for the duration of Export only; an exporter that needs
// the spans later copies what it needs.
//
// Failure: every method is noexcept. Export returns kFailure when the batch (or part of
// it) did not reach its destination; the pipeline counts it and moves on: there are no
// retries at this layer (an exporter with a network transport retries inside Export,
// within its own time budget, if it wants to).
#pragma once

#include <span>
#include <string_view>

#include "model/span.h"

namespace kspan::exporters {

enum class ExportResult { kSuccess, kFailure };

class SpanExporter {
 public:
  virtual ~SpanExporter() = default;

  // A short, stable label for metrics and logs: "console", "file", "otlp".
  virtual std::string_view Name() const noexcept = 0;

  // Sends one batch. Never called after Shutdown.
  virtual ExportResult Export(std::span<const model::Span> batch) noexcept = 0;

  // Pushes anything the exporter buffers to its destination. True when done.
  virtual bool ForceFlush() noexcept = 0;

  // Flushes and releases resources; the last call the exporter gets.
  virtual void Shutdown() noexcept = 0;
};

}  // namespace kspan::exporters
