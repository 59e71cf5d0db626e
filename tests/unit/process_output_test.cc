#include "processors/process_output.h"

#include <gtest/gtest.h>

namespace kspan::processors {
namespace {

model::Span SpanAt(uint64_t start, uint64_t end) {
  model::Span s;
  s.start_time_unix_nano = start;
  s.end_time_unix_nano = end;
  return s;
}

std::string Text(const model::SpanEvent& e, const std::string& key) {
  for (const auto& a : e.attributes) {
    if (a.key == key) return std::get<std::string>(a.value);
  }
  return "";
}

TEST(ProcessOutputTest, LinesGoToTheFirstSpanToEndThatHoldsThem) {
  metrics::Registry m;
  ProcessOutput out({}, &m);
  out.Add(7, true, "tool fail_tool failed: backend unavailable, key sk-abcdefghijklmnopqrstu\n", 150);
  out.Add(7, true, "half ", 170);
  out.Add(7, true, "a line\r\n", 180);
  out.Add(7, false, "started\n", 50);
  out.Add(8, false, "another process\n", 150);

  model::Span tool = SpanAt(140, 155);  // ends first: the inner call
  out.Attach(7, &tool);
  ASSERT_EQ(tool.events.size(), 1u);
  EXPECT_EQ(tool.events[0].name, "process.output");
  EXPECT_EQ(tool.events[0].time_unix_nano, 150u);
  EXPECT_EQ(Text(tool.events[0], "log.iostream"), "stderr");
  EXPECT_EQ(Text(tool.events[0], "log.record.original"),
            "tool fail_tool failed: backend unavailable, key REDACTED");

  model::Span task = SpanAt(100, 200);
  out.Attach(7, &task);
  ASSERT_EQ(task.events.size(), 1u) << "the tool's line is not repeated; 'started' was before the task";
  EXPECT_EQ(Text(task.events[0], "log.record.original"), "half a line");
  EXPECT_EQ(task.events[0].time_unix_nano, 170u) << "a line is timed by its first write";
  EXPECT_EQ(m.Sum("kspan_process_output_lines_total"), 2u);
}

TEST(ProcessOutputTest, Bounded) {
  metrics::Registry m;
  ProcessOutput out({.max_lines_per_process = 4, .max_line_bytes = 8, .max_events_per_span = 2}, &m);
  for (int i = 0; i < 10; ++i) out.Add(1, false, "line number " + std::to_string(i) + "\n", 100 + i);
  model::Span s = SpanAt(0, 1000);
  out.Attach(1, &s);
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_EQ(Text(s.events[0], "log.record.original"), "line num");
  EXPECT_EQ(m.Sum("kspan_process_output_dropped_total"), 6u);
  out.OnExit(1);
  EXPECT_EQ(m.Sum("kspan_process_output_dropped_total"), 8u);
}

}  // namespace
}  // namespace kspan::processors
