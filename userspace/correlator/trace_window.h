// The trace assembly window: decided spans wait here, grouped by trace, so each trace leaves
// whole and consistent (a span is never exported with a parent id or trace id that later
// changes). The parent rules (stitcher.h) decide where a node goes; the window holds it
// there, moves subtrees when told or when a call follows from its parent, and exports.
//
// Contract:
//  - A group is one trace (id, flags, state) and the nodes placed in it (Join). It is
//    exported when every member has ended (Complete) and none changed for `window_ns`:
//    reason "complete". Members leave parents first (by start time), each span carrying
//    its group's trace id, flags and state, its node's span id, parent span id and links,
//    and kspan.parent.ambiguous=true when the node is ambiguous.
//  - A group still open `max_hold_ns` after it was created is exported as far as it has
//    ended ("max_age"); it is then passthrough: each later member leaves as it ends.
//  - Bounds: past `max_held_spans` or `max_held_bytes` of ended, unexported spans, the
//    oldest listed groups with an ended member are flushed ("max_held_spans",
//    "max_held_bytes"). The owner flushes a group for its own bound with Flush
//    ("max_nodes"); FlushAll at shutdown ("complete" or "shutdown"). Each flush counts
//    once in kspan_traces_flushed_total{reason}.
//  - Decision: at a group's first flush, `decide` (options) sees its ended spans and sets
//    the flags and tracestate every member leaves with, then and later.
//  - Follows-from: a node placed under an in-process parent (in_process_parent) that ends
//    after that parent ended is moved, with its subtree, to a new trace of its own with a
//    follows_from link to the parent (kspan_stitch_follows_from_total).
//  - An exported node retires: `retire_after_ns` later ExportDue hands its key to the
//    owner to erase (late decisions may still name it as parent until then).
//  - Due work (max_age, complete, retirement) happens only in ExportDue; the group scan
//    runs at most every 20 ms of the clock.
//
// Ownership: the caller owns every node; the window keeps pointers to the members of its
// groups and to their tree links, so the caller calls Remove before destroying a node.
// The window owns the groups (shared with their member nodes). The clock is the caller's:
// SetNow before the calls that follow.
//
// Single-threaded: the caller's thread (the pipeline thread).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "correlator/stitch_node.h"
#include "model/span.h"

namespace kspan::correlator {

struct TraceGroup {
  uint32_t refs = 0;  // GroupRefs to it (stitch_node.h): freed with the last
  model::TraceId trace_id;
  uint8_t flags = 1;
  std::string trace_state;
  std::vector<StitchNode*> members;  // decided, not yet exported
  size_t open = 0;                   // members still running
  uint64_t created_ns = 0;
  uint64_t last_change_ns = 0;
  uint64_t listed_ns = 0;    // when it was listed (the window's list is in this order)
  bool passthrough = false;  // flushed early: later spans leave as soon as they end
  bool listed = false;
  bool remote_parent = false;       // its root came with a valid traceparent
  bool decided = false;             // TraceWindowOptions::decide has run (at the first flush)
  TraceGroup* list_prev = nullptr;  // its neighbours in the window's list, while listed
  TraceGroup* list_next = nullptr;
};

// A trace at its first flush, for TraceWindowOptions::decide.
struct HeldTrace {
  const model::TraceId& trace_id;
  bool remote_parent;
  bool whole;  // flushed complete (not early at a bound, max_age or shutdown)
  uint64_t now_ns;
  const std::vector<const model::Span*>& spans;  // ended so far, by start time; ids not set
};

struct TraceWindowOptions {
  uint64_t window_ns = 500'000'000;
  uint64_t max_hold_ns = 30'000'000'000;
  size_t max_held_spans = 65536;
  size_t max_held_bytes = 64u << 20;
  // How long an exported node stays before ExportDue hands it back to be erased.
  uint64_t retire_after_ns = 120'000'000;
  // Called once per trace, at its first flush, before any of its spans leaves: may change
  // the trace's flags and tracestate, which every span of the trace then carries (the
  // sampling decision: processors/trace_sampler.h). Empty: flags and state stay as made.
  std::function<void(const HeldTrace&, uint8_t* flags, std::string* trace_state)> decide;
};

// Why a group left before (or at) its time; the label of kspan_traces_flushed_total.
enum class FlushReason : uint8_t { kComplete, kMaxAge, kMaxHeldSpans, kMaxHeldBytes, kMaxNodes, kShutdown };

// What a held span costs, roughly: the struct and its strings (not the shared resource).
size_t SpanBytes(const model::Span& s);

class TraceWindow {
 public:
  using Emit = std::function<void(model::Span&&)>;
  TraceWindow(TraceWindowOptions options, metrics::Registry* metrics, Emit emit);
  ~TraceWindow();
  TraceWindow(const TraceWindow&) = delete;
  TraceWindow& operator=(const TraceWindow&) = delete;

  void SetNow(uint64_t now_ns) { now_ns_ = now_ns; }

  // A new trace, created now; listed when its first node joins. `remote_parent`: its root
  // continues a traceparent from outside.
  GroupRef NewGroup(const model::TraceId& trace, uint8_t flags, std::string_view trace_state,
                    bool remote_parent = false);
  // Places `n` in `g` as a child of `parent` (nullptr: a root whose parent span, if any,
  // is outside: `parent_span`).
  void Join(StitchNode* n, StitchNode* parent, const GroupRef& g, const model::SpanId& parent_span);
  // After a node was placed: it leaves at once if it has ended in a passthrough trace;
  // then the bounds are enforced.
  void Placed(StitchNode* n);
  // `n` ended with `span` (placed or not yet): held, checked for follows-from, exported at
  // once in a passthrough trace; then the bounds are enforced.
  void Complete(StitchNode* n, model::Span&& span);
  // Moves the held trace rooted at `root` (its unexported subtree) under `parent`, into
  // parent's trace. False, and nothing done, when it is in that trace already.
  bool MoveUnder(StitchNode* root, StitchNode* parent);
  // Exports what has ended in `g` now, counted under `reason`; the rest leaves as it ends.
  void Flush(TraceGroup* g, FlushReason reason);
  // Forgets `n` before its owner destroys it: out of its tree and group, no longer held.
  void Remove(StitchNode* n);
  // Exports the groups that are due, and hands each retired node's key to `erase` (a
  // callable taking a const NodeKey&: called once a retired node, inlined, no
  // std::function in the per-node path).
  template <typename Erase>
  void ExportDue(Erase&& erase) {
    while (!retired_.empty() && retired_.front().first <= now_ns_) {
      erase(retired_.front().second);
      retired_.pop_front();
    }
    FlushDue();
  }
  // Shutdown: every group leaves with what has ended.
  void FlushAll();

  size_t held_spans() const { return held_spans_; }
  size_t held_bytes() const { return held_bytes_; }

 private:
  void CheckFollowsFrom(StitchNode* child);
  void MoveSubtree(StitchNode* root, const GroupRef& to);
  void LeaveGroup(StitchNode* n);
  void Unlist(TraceGroup* g);
  void Export(StitchNode* n);
  void EnforceBounds();
  // ExportDue's scan of the groups: flushes those complete or past max_hold_ns.
  void FlushDue();

  TraceWindowOptions options_;
  Emit emit_;
  uint64_t now_ns_ = 0;
  uint64_t last_flush_scan_ns_ = 0;
  // Listed groups, oldest first: a list through the groups (TraceGroup::list_prev, next),
  // each holding a reference (a std::list of shared_ptrs allocated a list node a trace).
  TraceGroup* groups_head_ = nullptr;
  TraceGroup* groups_tail_ = nullptr;
  // Exported nodes stay a moment as parents of children decided late: erased when due.
  std::deque<std::pair<uint64_t, NodeKey>> retired_;
  size_t held_spans_ = 0, held_bytes_ = 0;
  std::vector<StitchNode*> scratch_done_;  // Flush's buffers, kept between flushes
  std::vector<const model::Span*> scratch_spans_;

  metrics::Counter* follows_from_;
  metrics::Counter* flushed_[6];  // by FlushReason
};

}  // namespace kspan::correlator
