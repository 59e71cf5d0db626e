// What agent processes write to stdout and stderr, held briefly so the span of theirs that
// was in progress at the time can carry it (the agents issue: a failing step shows its own
// error text). The kernel captures fd 1 and 2 writes of agent processes only.
//
// Lines are attached as span events "process.output" with log.iostream ("stdout" or
// "stderr") and log.record.original (the line, secrets redacted, at most
// Limits::max_line_bytes), at the time of the write. Spans end innermost first, so each
// line goes to the first span of its process to end whose time range holds it: the tool
// call it was printed in, else the task around it. Everything is bounded: lines per
// process, line length, events per span, processes, and age (older lines are dropped).
// Dropped lines are counted in kspan_process_output_dropped_total.
//
// A span processor (span_processor.h): lines go onto spans at OnEnd (spans of a process
// come innermost first there), and a process's lines are dropped at OnProcessExit. The
// connection tracker feeds Add (TrackerSinks::on_output). Single-threaded: the pipeline
// thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/metrics.h"
#include "model/span.h"
#include "processors/span_processor.h"

namespace kspan::processors {

class ProcessOutput : public SpanProcessor {
 public:
  struct Limits {
    size_t max_lines_per_process = 64;
    size_t max_line_bytes = 512;
    size_t max_events_per_span = 16;
    size_t max_processes = 1024;
    uint64_t max_age_ns = 60'000'000'000;
  };

  ProcessOutput(const Limits& limits, metrics::Registry* metrics);

  // One write of `pid` to its stdout (`err` false) or stderr, at `ns`.
  void Add(uint32_t pid, bool err, std::string_view bytes, uint64_t ns);
  // Moves the lines `pid` wrote within the span's time range onto the span.
  void Attach(uint32_t pid, model::Span* span);
  void OnExit(uint32_t pid);

  void OnEnd(uint32_t pid, model::Span& span) noexcept override { Attach(pid, &span); }
  void OnProcessExit(uint32_t pid) noexcept override { OnExit(pid); }

 private:
  struct Line {
    uint64_t ns = 0;
    bool err = false;
    std::string text;
  };
  struct Process {
    std::deque<Line> lines;
    std::string partial[2];  // a line not ended yet, per stream
    uint64_t partial_ns[2] = {0, 0};
  };
  void Push(Process* p, bool err, std::string text, uint64_t ns);

  Limits limits_;
  metrics::Counter* attached_;
  metrics::Counter* dropped_;
  std::unordered_map<uint32_t, Process> processes_;
};

}  // namespace kspan::processors
