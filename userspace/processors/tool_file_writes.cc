#include "processors/tool_file_writes.h"

#include <utility>

#include "common/redact.h"

namespace kspan::processors {

ToolFileWrites::ToolFileWrites(const Limits& limits, metrics::Registry* metrics)
    : limits_(limits),
      attached_(metrics->GetCounter("kspan_agent_file_writes_total", {{"outcome", "attached"}})),
      dropped_(metrics->GetCounter("kspan_agent_file_writes_total", {{"outcome", "dropped"}})),
      no_tool_run_(metrics->GetCounter("kspan_agent_file_writes_total", {{"outcome", "no_tool_run"}})) {}

void ToolFileWrites::Add(const events::FileWriteEvent& e) {
  auto it = processes_.find(e.pid);
  if (it == processes_.end()) {
    if (processes_.size() >= limits_.max_processes) {
      dropped_->Add();
      return;
    }
    it = processes_.emplace(e.pid, std::deque<events::FileWriteEvent>{}).first;
  }
  auto& q = it->second;
  // Reports no run claimed in time: a write outside any tool run.
  while (!q.empty() && q.front().last_ns + limits_.max_age_ns < e.last_ns) {
    q.pop_front();
    no_tool_run_->Add();
  }
  if (q.size() >= limits_.max_per_process) {
    q.pop_front();
    dropped_->Add();
  }
  q.push_back(e);
}

void ToolFileWrites::Attach(uint32_t pid, model::Span* span) {
  auto it = processes_.find(pid);
  if (it == processes_.end()) return;
  const std::string* operation = span->FindString("gen_ai.operation.name");
  if (!operation || *operation != "execute_tool") return;
  auto& q = it->second;
  size_t added = 0;
  for (auto w = q.begin(); w != q.end();) {
    if (w->last_ns < span->start_time_unix_nano || w->last_ns > span->end_time_unix_nano ||
        added >= limits_.max_events_per_span) {
      ++w;
      continue;
    }
    span->events.push_back({"kspan.file.write",
                            w->last_ns,
                            {{"file.path", RedactSecrets(w->path)},
                             {"kspan.file.bytes_written", static_cast<int64_t>(w->bytes)},
                             {"kspan.file.writes", int64_t{w->writes}}}});
    attached_->Add();
    ++added;
    w = q.erase(w);
  }
  if (q.empty()) processes_.erase(it);
}

void ToolFileWrites::OnExit(uint32_t pid) {
  auto it = processes_.find(pid);
  if (it == processes_.end()) return;
  no_tool_run_->Add(it->second.size());
  processes_.erase(it);
}

}  // namespace kspan::processors
