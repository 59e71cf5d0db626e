#include "processors/process_output.h"

#include <utility>

#include "common/redact.h"

namespace kspan::processors {

ProcessOutput::ProcessOutput(const Limits& limits, metrics::Registry* metrics)
    : limits_(limits),
      attached_(metrics->GetCounter("kspan_process_output_lines_total", {{"outcome", "attached"}})),
      dropped_(metrics->GetCounter("kspan_process_output_dropped_total")) {}

void ProcessOutput::Push(Process* p, bool err, std::string text, uint64_t ns) {
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) return;
  if (text.size() > limits_.max_line_bytes) text.resize(limits_.max_line_bytes);
  // Old lines no span claimed go first.
  while (!p->lines.empty() && (p->lines.size() >= limits_.max_lines_per_process ||
                               p->lines.front().ns + limits_.max_age_ns < ns)) {
    p->lines.pop_front();
    dropped_->Add();
  }
  p->lines.push_back(Line{ns, err, std::move(text)});
}

void ProcessOutput::Add(uint32_t pid, bool err, std::string_view bytes, uint64_t ns) {
  auto it = processes_.find(pid);
  if (it == processes_.end()) {
    if (processes_.size() >= limits_.max_processes) {
      dropped_->Add();
      return;
    }
    it = processes_.emplace(pid, Process{}).first;
  }
  Process& p = it->second;
  std::string& partial = p.partial[err ? 1 : 0];
  uint64_t& partial_ns = p.partial_ns[err ? 1 : 0];
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    if (partial.empty()) partial_ns = ns;
    const std::string_view part = bytes.substr(0, nl);
    if (partial.size() < limits_.max_line_bytes)
      partial.append(part.substr(0, limits_.max_line_bytes - partial.size()));
    if (nl == std::string_view::npos) break;
    Push(&p, err, std::exchange(partial, std::string()), partial_ns);
    bytes.remove_prefix(nl + 1);
  }
}

void ProcessOutput::Attach(uint32_t pid, model::Span* span) {
  auto it = processes_.find(pid);
  if (it == processes_.end()) return;
  std::deque<Line>& lines = it->second.lines;
  size_t added = 0;
  for (auto l = lines.begin(); l != lines.end();) {
    if (l->ns < span->start_time_unix_nano || l->ns > span->end_time_unix_nano ||
        added >= limits_.max_events_per_span) {
      ++l;
      continue;
    }
    span->events.push_back({"process.output",
                            l->ns,
                            {{"log.iostream", std::string(l->err ? "stderr" : "stdout")},
                             {"log.record.original", RedactSecrets(l->text)}}});
    attached_->Add();
    ++added;
    l = lines.erase(l);
  }
}

void ProcessOutput::OnExit(uint32_t pid) {
  auto it = processes_.find(pid);
  if (it == processes_.end()) return;
  dropped_->Add(it->second.lines.size());
  processes_.erase(it);
}

}  // namespace kspan::processors
