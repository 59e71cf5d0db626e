#include "processors/processor_chain.h"

#include <utility>

namespace kspan::processors {

ProcessorChain::ProcessorChain(metrics::Registry* m, Next next)
    : metrics_(m), next_(std::move(next)), exported_(m->GetCounter("kspan_spans_total")) {}

void ProcessorChain::Add(std::string name, SpanProcessor* processor) {
  chain_.push_back(
      {processor, metrics_->GetCounter("kspan_processor_spans_dropped_total", {{"processor", name}})});
}

void ProcessorChain::OnEnd(uint32_t pid, model::Span& span) {
  for (const Entry& e : chain_) e.processor->OnEnd(pid, span);
}

void ProcessorChain::Export(model::Span&& span) {
  for (const Entry& e : chain_) {
    if (!e.processor->OnExport(span)) {
      e.dropped->Add();
      // Freed now, whatever the caller keeps the moved-from span in (the trace window
      // exports from its node, which lives on a while).
      const model::Span gone = std::move(span);
      return;
    }
  }
  exported_->Add();
  next_(std::move(span));
}

void ProcessorChain::OnProcessExit(uint32_t pid) {
  for (const Entry& e : chain_) e.processor->OnProcessExit(pid);
}

void ProcessorChain::Shutdown() {
  for (const Entry& e : chain_) e.processor->Shutdown();
}

}  // namespace kspan::processors
