#include "correlator/process_sessions.h"

#include <algorithm>
#include <utility>

namespace kspan::correlator {

ProcessSessions::ProcessSessions(size_t max_sessions, metrics::Registry* m, TraceWindow* window, Erase erase)
    : max_sessions_(max_sessions), window_(window), erase_(std::move(erase)) {
  // The same counters as the stitcher's (the registry hands out one per name and labels).
  parent_exec_ = m->GetCounter("kspan_stitch_parents_total", {{"rule", "exec"}});
  parent_session_ = m->GetCounter("kspan_stitch_parents_total", {{"rule", "session"}});
  roots_ = m->GetCounter("kspan_stitch_roots_total");
  sessions_opened_ = m->GetCounter("kspan_sessions_total", {{"outcome", "opened"}});
  sessions_dropped_ = m->GetCounter("kspan_sessions_total", {{"outcome", "dropped"}});
  sessions_cut_ = m->GetCounter("kspan_sessions_total", {{"outcome", "cut"}});
  sessions_exit_lost_ = m->GetCounter("kspan_sessions_total", {{"outcome", "exit_lost"}});
}

void ProcessSessions::EndExec(uint32_t pid, uint64_t ts_ns) {
  auto old = exec_by_pid_.find(pid);
  if (old == exec_by_pid_.end()) return;
  StitchNode* o = old->second;
  exec_by_pid_.erase(old);
  if (!o->complete) {
    model::Span done = std::move(o->span);
    done.end_time_unix_nano = std::max(ts_ns, done.start_time_unix_nano);
    window_->Complete(o, std::move(done));
  }
}

void ProcessSessions::SetExec(uint32_t pid, StitchNode* n) {
  exec_by_pid_[pid] = n;
}

bool ProcessSessions::TracksExec(uint32_t pid) const {
  auto it = exec_by_pid_.find(pid);
  return it != exec_by_pid_.end() && !it->second->complete;
}

void ProcessSessions::OnProcessEnd(uint32_t pid, uint64_t ts_ns, std::vector<model::Attribute> attributes,
                                   std::shared_ptr<const model::Resource> resource) {
  // The node stays indexed (until erased) for the process's calls still to be decided.
  auto it = exec_by_pid_.find(pid);
  if (it == exec_by_pid_.end()) return;
  StitchNode* n = it->second;
  if (n->complete) return;
  model::Span span = std::move(n->span);
  span.end_time_unix_nano = std::max(ts_ns, span.start_time_unix_nano);
  for (auto& a : attributes) span.attributes.push_back(std::move(a));
  span.resource = std::move(resource);
  for (const auto& a : span.attributes) {
    if (a.key == "error.type") span.status_code = model::StatusCode::kError;
  }
  window_->Complete(n, std::move(span));
}

bool ProcessSessions::HasSession(uint32_t pid) const {
  auto it = session_by_pid_.find(pid);
  return it != session_by_pid_.end() && !it->second->complete;
}

bool ProcessSessions::Admit() {
  if (open_sessions_ < max_sessions_) return true;
  sessions_dropped_->Add();
  return false;
}

void ProcessSessions::Open(StitchNode* s) {
  session_by_pid_[s->pid] = s;  // an ended session of an earlier process with this pid stays until erased
  ++open_sessions_;
  sessions_opened_->Add();

  // Calls the process made before it was known to need a session (an agent found by its
  // first LLM call): each trace they started that is still held whole moves under it.
  std::vector<StitchNode*> roots;
  if (auto o = orphans_by_pid_.find(s->pid); o != orphans_by_pid_.end()) {
    for (StitchNode* n : o->second) {
      if (n->root_orphan && n->group && !n->group->passthrough && !n->exported &&
          (s->start_ns == 0 || n->start_ns >= s->start_ns)) {
        roots.push_back(n);
      }
    }
  }
  if (!roots.empty()) {
    std::sort(roots.begin(), roots.end(),
              [](const StitchNode* a, const StitchNode* b) { return a->start_ns < b->start_ns; });
    Place(s);
    for (StitchNode* n : roots) Rehome(n, s);
  }
}

StitchNode* ProcessSessions::SessionFor(uint32_t pid, uint64_t at_ns) {
  auto it = session_by_pid_.find(pid);
  if (it == session_by_pid_.end()) return nullptr;
  StitchNode* s = it->second;
  if (s->complete && at_ns > s->end_ns) return nullptr;  // a later process with the same pid
  if (s->exported) return nullptr;
  if (!s->decided) Place(s);
  return s;
}

void ProcessSessions::Place(StitchNode* s) {
  s->decided = true;
  // Under the process's exec span when it has one (it was started for traced work).
  StitchNode* e = ExecOf(s->pid);
  if (e && e->decided && e->group && !e->exported) {
    parent_exec_->Add();
    window_->Join(s, e, e->group, e->span_id);
    return;
  }
  roots_->Add();
  window_->Join(s, nullptr, window_->NewGroup(model::TraceId::Random(), 1, ""), model::SpanId{});
}

// A session starts no later than its calls (its start was unknown, or the clock read from
// /proc is coarser than the events').
void ProcessSessions::PullStart(StitchNode* s, uint64_t start_ns) {
  if (!s->complete && (s->start_ns == 0 || start_ns < s->start_ns)) {
    s->start_ns = start_ns;
    s->span.start_time_unix_nano = start_ns;
  }
}

void ProcessSessions::Join(StitchNode* n, StitchNode* s) {
  parent_session_->Add();
  window_->Join(n, s, s->group, s->span_id);
  PullStart(s, n->start_ns);
}

void ProcessSessions::NoteOrphan(StitchNode* n) {
  n->root_orphan = true;
  orphans_by_pid_[n->pid].push_back(n);
}

void ProcessSessions::Rehome(StitchNode* root, StitchNode* s) {
  if (!window_->MoveUnder(root, s)) return;
  root->root_orphan = false;
  if (auto o = orphans_by_pid_.find(root->pid); o != orphans_by_pid_.end()) {
    std::erase(o->second, root);
    if (o->second.empty()) orphans_by_pid_.erase(o);
  }
  parent_session_->Add();
  PullStart(s, root->start_ns);
}

void ProcessSessions::CompleteSession(StitchNode* s, uint64_t ts_ns, const FinishSession& finish, bool cut) {
  if (!s->decided) {
    erase_(s);  // no call needed it: no span
    return;
  }
  --open_sessions_;
  model::Span span = std::move(s->span);
  span.end_time_unix_nano = std::max(ts_ns, span.start_time_unix_nano);
  if (cut) {
    span.attributes.push_back({"kspan.span.cut", true});
  }
  if (finish) finish(s->pid, &span);
  if (span.Find("error.type")) span.status_code = model::StatusCode::kError;
  window_->Complete(s, std::move(span));
}

void ProcessSessions::EndSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish) {
  auto it = session_by_pid_.find(pid);
  if (it == session_by_pid_.end() || it->second->complete) return;
  CompleteSession(it->second, ts_ns, finish, /*cut=*/false);
}

std::vector<uint32_t> ProcessSessions::OpenSessions() const {
  std::vector<uint32_t> out;
  for (const auto& [pid, s] : session_by_pid_) {
    if (!s->complete) out.push_back(pid);
  }
  return out;
}

void ProcessSessions::LoseSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish) {
  auto it = session_by_pid_.find(pid);
  if (it == session_by_pid_.end() || it->second->complete) return;
  sessions_exit_lost_->Add();
  CompleteSession(it->second, ts_ns, finish, /*cut=*/true);
}

void ProcessSessions::CutSessions(uint64_t ts_ns, const FinishSession& finish) {
  std::vector<StitchNode*> open;
  for (const auto& [pid, s] : session_by_pid_) {
    (void)pid;
    if (!s->complete) open.push_back(s);
  }
  for (StitchNode* s : open) {
    if (s->decided) sessions_cut_->Add();
    CompleteSession(s, ts_ns, finish, /*cut=*/true);
  }
}

void ProcessSessions::Forget(StitchNode* n) {
  if (n->root_orphan) {
    auto it = orphans_by_pid_.find(n->pid);
    if (it != orphans_by_pid_.end()) {
      auto& v = it->second;
      auto at = std::find(v.begin(), v.end(), n);  // near the front: the oldest leave first
      if (at != v.end()) v.erase(at);
      if (v.empty()) orphans_by_pid_.erase(it);
    }
  }
  if (n->kind == NodeKind::kExec) {
    auto it = exec_by_pid_.find(n->pid);
    if (it != exec_by_pid_.end() && it->second == n) exec_by_pid_.erase(it);
  }
  if (n->kind == NodeKind::kSession) {
    if (!n->complete) --open_sessions_;
    auto it = session_by_pid_.find(n->pid);
    if (it != session_by_pid_.end() && it->second == n) session_by_pid_.erase(it);
  }
}

}  // namespace kspan::correlator
