#include "processors/tool_file_writes.h"

#include <gtest/gtest.h>

namespace kspan::processors {
namespace {

model::Span ToolSpan(uint64_t start, uint64_t end, bool tool = true) {
  model::Span s;
  s.start_time_unix_nano = start;
  s.end_time_unix_nano = end;
  if (tool) s.Set("gen_ai.operation.name", std::string("execute_tool"));
  return s;
}

events::FileWriteEvent Write(uint32_t pid, std::string path, uint64_t bytes, uint64_t last_ns) {
  events::FileWriteEvent e;
  e.pid = pid;
  e.path = std::move(path);
  e.bytes = bytes;
  e.writes = 1;
  e.first_ns = e.last_ns = last_ns;
  e.ts_ns = last_ns + 1;
  return e;
}

uint64_t Count(metrics::Registry& m, const char* outcome) {
  return m.GetCounter("kspan_agent_file_writes_total", {{"outcome", outcome}})->Value();
}

TEST(ToolFileWritesTest, AWriteGoesToTheToolRunOfItsProcessThatHoldsIt) {
  metrics::Registry m;
  ToolFileWrites w({}, &m);
  w.Add(Write(7, "/tmp/note.txt", 5, 150));
  w.Add(Write(8, "/tmp/other.txt", 9, 150));  // another process
  w.Add(Write(7, "/tmp/later.txt", 3, 400));  // after the run

  model::Span task = ToolSpan(100, 500, /*tool=*/false);  // not a tool run: takes none
  w.Attach(7, &task);
  EXPECT_TRUE(task.events.empty());

  model::Span run = ToolSpan(100, 200);
  w.Attach(7, &run);
  ASSERT_EQ(run.events.size(), 1u);
  const model::SpanEvent& e = run.events[0];
  EXPECT_EQ(e.name, "kspan.file.write");
  EXPECT_EQ(e.time_unix_nano, 150u);
  ASSERT_EQ(e.attributes.size(), 3u);
  EXPECT_EQ(std::get<std::string>(e.attributes[0].value), "/tmp/note.txt");
  EXPECT_EQ(std::get<int64_t>(e.attributes[1].value), 5);
  EXPECT_EQ(std::get<int64_t>(e.attributes[2].value), 1);
  model::Span again = ToolSpan(100, 200);
  w.Attach(7, &again);
  EXPECT_TRUE(again.events.empty()) << "each write goes to one span";
  EXPECT_EQ(Count(m, "attached"), 1u);
  w.OnExit(7);
  EXPECT_EQ(Count(m, "no_tool_run"), 1u) << "the later write no run held";
}

TEST(ToolFileWritesTest, Bounded) {
  metrics::Registry m;
  ToolFileWrites w({.max_per_process = 2, .max_events_per_span = 16, .max_processes = 1, .max_age_ns = 1000},
                   &m);
  w.Add(Write(7, "/a", 1, 100));
  w.Add(Write(7, "/b", 1, 110));
  w.Add(Write(7, "/c", 1, 120));  // pushes /a out
  w.Add(Write(9, "/d", 1, 120));  // a second process: over the bound
  EXPECT_EQ(Count(m, "dropped"), 2u);
  w.Add(Write(7, "/e", 1, 5000));  // /b and /c aged out
  EXPECT_EQ(Count(m, "no_tool_run"), 2u);
  model::Span run = ToolSpan(0, 10000);
  w.Attach(7, &run);
  ASSERT_EQ(run.events.size(), 1u);
  EXPECT_EQ(std::get<std::string>(run.events[0].attributes[0].value), "/e");
}

}  // namespace
}  // namespace kspan::processors
