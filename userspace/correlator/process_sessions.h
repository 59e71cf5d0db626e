// A process's own spans, by pid: its exec span (the INTERNAL `exec {executable}` span of a
// process exec'd for traced work) and its session span (an agent's process lifetime,
// docs/agents.md), and the root calls a session opened late adopts. The stitcher
// (stitcher.h) decides which calls and processes belong here (rules 6 to 8); this class
// keeps the indexes, places a session, ends and cuts sessions, and rehomes held traces.
//
// Contract:
//  - Exec: SetExec makes a node pid's exec node; it stays indexed after it ends (its
//    calls still to be decided may need it) until EndExec (an exec again) or Forget.
//    TracksExec is true while it runs; OnProcessEnd ends it (ERROR on error.type).
//  - Sessions: at most `max_sessions` open; Admit refuses past it and counts
//    kspan_sessions_total{outcome="dropped"}. Open counts "opened". A session is placed
//    (Place: under pid's placed, unexported exec span, else as the root of a new trace)
//    only when first needed: a call's parent (SessionFor) or held root calls to adopt.
//  - Open adopts the held root calls of pid (NoteOrphan) that started no earlier than the
//    session and whose trace is still held whole (not flushed early, not exported): each
//    moves, with its subtree, under the session (kspan_stitch_parents_total{rule=session}).
//  - A session starts no later than its children (Join and adoption pull its start back).
//  - End / Cut / Lose: a session that was never placed makes no span and its node is
//    handed to the owner's `erase`; else the span ends at `ts_ns` (never before its start)
//    and `finish` fills in its last details; error.type makes it ERROR. Cut and Lose mark
//    it kspan.span.cut=true; CutSessions counts "cut" for each that makes a span,
//    LoseSession counts "exit_lost" either way.
//  - SessionFor(pid, t) is pid's session unless it ended before t (a later process with
//    the same pid) or was exported.
//
// Ownership: the stitcher owns every node (exec and session nodes included) and calls
// Forget before it destroys one; this class keeps pointers only. Spans are placed and
// completed through the TraceWindow it was given, which must outlive it.
//
// Single-threaded: the caller's thread (the pipeline thread).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "correlator/stitch_node.h"
#include "correlator/trace_window.h"
#include "model/span.h"

namespace kspan::correlator {

class ProcessSessions {
 public:
  // Fills in a session's last details (name, attributes, events) at its end; the span's
  // times are final when it is called.
  using FinishSession = std::function<void(uint32_t pid, model::Span*)>;
  // The owner's erase (it ends with Forget), for a session that made no span.
  using Erase = std::function<void(StitchNode*)>;
  ProcessSessions(size_t max_sessions, metrics::Registry* metrics, TraceWindow* window, Erase erase);
  ProcessSessions(const ProcessSessions&) = delete;
  ProcessSessions& operator=(const ProcessSessions&) = delete;

  // ---- exec spans ----
  // pid exec'd again: the span of its old image, if still running, ends at `ts_ns`, and
  // pid has no exec node until SetExec.
  void EndExec(uint32_t pid, uint64_t ts_ns);
  void SetExec(uint32_t pid, StitchNode* n);
  // pid's exec node (running or ended, until erased), or nullptr.
  StitchNode* ExecOf(uint32_t pid) const {
    auto it = exec_by_pid_.find(pid);
    return it == exec_by_pid_.end() ? nullptr : it->second;
  }
  bool TracksExec(uint32_t pid) const;
  void OnProcessEnd(uint32_t pid, uint64_t ts_ns, std::vector<model::Attribute> attributes,
                    std::shared_ptr<const model::Resource> resource);

  // ---- sessions ----
  bool HasSession(uint32_t pid) const;
  // Room for one more open session; false (counted "dropped") when max_sessions are open.
  bool Admit();
  // `s` (a new SESSION node of its pid, its span set) is pid's session from now on; pid's
  // held root calls move under it.
  void Open(StitchNode* s);
  // The session of `pid` that a call starting at `at_ns` belongs to, placed; or nullptr.
  StitchNode* SessionFor(uint32_t pid, uint64_t at_ns);
  // Places `s` in a trace (see the contract).
  void Place(StitchNode* s);
  // `n` (decided now) becomes a child of session `s` (rule 6).
  void Join(StitchNode* n, StitchNode* s);
  // A CLIENT `n` (decided now) that started a trace by rule 8: a later session adopts it.
  void NoteOrphan(StitchNode* n);
  void EndSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish);
  void CutSessions(uint64_t ts_ns, const FinishSession& finish);
  std::vector<uint32_t> OpenSessions() const;
  void LoseSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish);

  // Drops every pointer to `n` before its owner destroys it.
  void Forget(StitchNode* n);

 private:
  void Rehome(StitchNode* root, StitchNode* s);
  void PullStart(StitchNode* s, uint64_t start_ns);
  void CompleteSession(StitchNode* s, uint64_t ts_ns, const FinishSession& finish, bool cut);

  size_t max_sessions_;
  TraceWindow* window_;
  Erase erase_;
  std::unordered_map<uint32_t, StitchNode*> exec_by_pid_;  // pid -> its exec span
  // pid -> its session span; kept after it ends (until erased) for late decisions.
  std::unordered_map<uint32_t, StitchNode*> session_by_pid_;
  size_t open_sessions_ = 0;
  // CLIENT nodes that started a trace by rule 8, by pid: what a late session adopts. A
  // busy client (wrk) has thousands held; they leave about in order, as servers do.
  std::unordered_map<uint32_t, std::deque<StitchNode*>> orphans_by_pid_;

  metrics::Counter* parent_exec_;
  metrics::Counter* parent_session_;
  metrics::Counter* roots_;
  metrics::Counter* sessions_opened_;
  metrics::Counter* sessions_dropped_;
  metrics::Counter* sessions_cut_;
  metrics::Counter* sessions_exit_lost_;
};

}  // namespace kspan::correlator
