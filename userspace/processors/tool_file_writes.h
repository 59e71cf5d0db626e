// Files an agent's tool run wrote, as events of that run (the agents issue: side effects
// under the tool call that caused them; docs/agents.md). The kernel reports, for processes
// marked as agents or tool servers only (bpf/file_write.bpf.c), each regular file they
// opened for writing, wrote and closed: its path as opened, bytes and write calls, and the
// time of the first and last write.
//
// Each report goes to the first execute_tool span of its process to end whose time range
// holds its last write (the tool server's SERVER span while it serves the call, or the
// agent's CLIENT span for a write the agent made itself during the run), as a span event
// "kspan.file.write" at the last write, with file.path (redacted like any text),
// kspan.file.bytes_written and kspan.file.writes. Writes made outside any tool run are
// not kept. Bounded: reports per process, events per span, processes, and age; dropped
// reports are counted in kspan_agent_file_writes_total{outcome="dropped"}, attached ones
// in outcome="attached", and those no tool run held in outcome="no_tool_run" (counted at
// the process's exit or when they age out).
//
// A span processor (span_processor.h): reports go onto spans at OnEnd (spans of a process
// come innermost first there); a process's are dropped at OnProcessExit. The pipeline feeds
// Add (events::EventSink::OnFileWrite). Single-threaded: the pipeline thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "common/metrics.h"
#include "events/events.h"
#include "model/span.h"
#include "processors/span_processor.h"

namespace kspan::processors {

class ToolFileWrites : public SpanProcessor {
 public:
  struct Limits {
    size_t max_per_process = 64;
    size_t max_events_per_span = 16;
    size_t max_processes = 1024;
    uint64_t max_age_ns = 60'000'000'000;
  };

  ToolFileWrites(const Limits& limits, metrics::Registry* metrics);

  void Add(const events::FileWriteEvent& e);
  // Moves the reports of `pid` whose last write lies in an execute_tool span's time range
  // onto it.
  void Attach(uint32_t pid, model::Span* span);
  void OnExit(uint32_t pid);

  void OnEnd(uint32_t pid, model::Span& span) noexcept override { Attach(pid, &span); }
  void OnProcessExit(uint32_t pid) noexcept override { OnExit(pid); }

 private:
  Limits limits_;
  metrics::Counter* attached_;
  metrics::Counter* dropped_;
  metrics::Counter* no_tool_run_;
  std::unordered_map<uint32_t, std::deque<events::FileWriteEvent>> processes_;
};

}  // namespace kspan::processors
