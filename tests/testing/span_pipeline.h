// A protocol connection's RequestStarts and Records through the span builder and the
// stitcher, as the agent drives them: how many stitcher nodes the requests opened, how
// many are left after the window passed, and the spans exported. For tests that check a
// protocol opens a node only for what makes a span (a node that never completes would
// hold its trace until max_hold).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "conntrack/conn_tracker.h"
#include "correlator/span_builder.h"
#include "correlator/stitcher.h"
#include "model/span.h"
#include "process/process_table.h"
#include "processors/processor_chain.h"
#include "protocols/registry.h"

namespace kspan::testing {

struct SpanPipelineRun {
  size_t nodes_opened = 0;  // after every RequestStart
  size_t nodes_left = 0;    // after every Record and 2 s of stitcher time
  std::vector<model::Span> emitted;
};

// `now_ns`: the time of the session's last event; the stitcher advances 2 s past it.
inline SpanPipelineRun RunThroughSpanPipeline(const protocols::ProtocolSpec& spec, bool server,
                                              const events::SocketTuple& tuple,
                                              std::vector<protocols::RequestStart> started,
                                              std::vector<protocols::Record> records, uint64_t now_ns) {
  SpanPipelineRun run;
  metrics::Registry metrics;
  process::ProcessTable processes(
      {.proc_root = "/nonexistent-kspan-test", .host_name = "test", .resource_attributes = {}});
  correlator::Stitcher stitcher(correlator::StitcherOptions{}, &metrics,
                                [&](model::Span&& s) { run.emitted.push_back(std::move(s)); });
  processors::ProcessorChain chain(&metrics, [](model::Span&&) {});
  correlator::SpanBuilder builder(correlator::SpanBuilderOptions{}, &metrics, &processes, &stitcher, &chain);
  conntrack::ConnInfo conn;
  conn.key = {.pid = 100, .fd = 9, .generation = 1};
  conn.role = server ? events::Role::kServer : events::Role::kClient;
  conn.tuple = tuple;
  conn.tuple_known = true;
  conn.protocol = spec.name;
  conn.callee_spans = spec.callee_spans;
  for (protocols::RequestStart& s : started) builder.OnRequest(conn, std::move(s));
  run.nodes_opened = stitcher.nodes();
  for (protocols::Record& r : records) builder.OnRecord(conn, std::move(r));
  for (uint64_t ms : {100, 1'000, 2'000}) stitcher.Advance(now_ns + ms * 1'000'000);
  run.nodes_left = stitcher.nodes();
  return run;
}

}  // namespace kspan::testing
