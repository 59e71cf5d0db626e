#include "correlator/trace_window.h"

#include <algorithm>
#include <utility>

namespace kspan::correlator {

namespace {

size_t AttributeBytes(const std::vector<model::Attribute>& attrs) {
  size_t n = attrs.size() * sizeof(model::Attribute);
  for (const auto& a : attrs) {
    n += a.key.heap_bytes();
    // One look at the value's type: most are strings, the rest numbers and booleans.
    if (const auto* s = std::get_if<std::string>(&a.value)) {
      n += s->capacity();
    } else if (const auto* arr = std::get_if<model::StringArray>(&a.value)) {
      for (const std::string& s : *arr) n += sizeof(s) + s.capacity();
    }
  }
  return n;
}

}  // namespace

size_t SpanBytes(const model::Span& s) {
  size_t n = sizeof(s) + s.name.capacity() + s.trace_state.capacity() + s.status_message.capacity() +
             AttributeBytes(s.attributes);
  for (const auto& e : s.events) n += sizeof(e) + e.name.capacity() + AttributeBytes(e.attributes);
  for (const auto& l : s.links) n += sizeof(l) + l.trace_state.capacity() + AttributeBytes(l.attributes);
  return n;
}

TraceWindow::TraceWindow(TraceWindowOptions options, metrics::Registry* m, Emit emit)
    : options_(options), emit_(std::move(emit)) {
  follows_from_ = m->GetCounter("kspan_stitch_follows_from_total");
  auto flushed = [m](const char* reason) {
    return m->GetCounter("kspan_traces_flushed_total", {{"reason", reason}});
  };
  flushed_[static_cast<int>(FlushReason::kComplete)] = flushed("complete");
  flushed_[static_cast<int>(FlushReason::kMaxAge)] = flushed("max_age");
  flushed_[static_cast<int>(FlushReason::kMaxHeldSpans)] = flushed("max_held_spans");
  flushed_[static_cast<int>(FlushReason::kMaxHeldBytes)] = flushed("max_held_bytes");
  flushed_[static_cast<int>(FlushReason::kMaxNodes)] = flushed("max_nodes");
  flushed_[static_cast<int>(FlushReason::kShutdown)] = flushed("shutdown");
}

TraceWindow::~TraceWindow() {
  while (groups_head_) Unlist(groups_head_);
}

GroupRef TraceWindow::NewGroup(const model::TraceId& trace, uint8_t flags, std::string_view trace_state,
                               bool remote_parent) {
  GroupRef g(new TraceGroup());
  g->remote_parent = remote_parent;
  g->trace_id = trace;
  g->flags = flags;
  g->trace_state = trace_state;
  // Room for a client and its server and a call or two more: one allocation, where growing
  // from empty takes one a doubling.
  g->members.reserve(4);
  g->created_ns = g->last_change_ns = now_ns_;
  return g;
}

void TraceWindow::Join(StitchNode* n, StitchNode* parent, const GroupRef& g,
                       const model::SpanId& parent_span) {
  n->group = g;
  n->parent = parent;
  n->parent_span_id = parent_span;
  if (parent) parent->children.push_back(n);
  n->group_index = g->members.size();
  g->members.push_back(n);
  if (!n->complete) ++g->open;
  g->last_change_ns = now_ns_;
  if (!g->listed && !g->passthrough) {
    ++g->refs;  // the list's
    g->list_prev = groups_tail_;
    g->list_next = nullptr;
    (groups_tail_ ? groups_tail_->list_next : groups_head_) = g.get();
    groups_tail_ = g.get();
    g->listed = true;
    g->listed_ns = now_ns_;
  }
}

void TraceWindow::Placed(StitchNode* n) {
  if (n->complete && n->group && n->group->passthrough) Export(n);
  EnforceBounds();
}

void TraceWindow::Complete(StitchNode* n, model::Span&& span) {
  n->span = std::move(span);
  n->end_ns = n->span.end_time_unix_nano;
  n->complete = true;
  n->bytes = SpanBytes(n->span);
  ++held_spans_;
  held_bytes_ += n->bytes;
  if (n->group) {
    TraceGroup* g = n->group.get();
    --g->open;
    g->last_change_ns = now_ns_;
    CheckFollowsFrom(n);
    // CheckFollowsFrom(c) may take c (and only c) out of n's children: walk them in order
    // without a copy of the list.
    for (size_t i = 0; i < n->children.size();) {
      StitchNode* c = n->children[i];
      CheckFollowsFrom(c);
      if (i < n->children.size() && n->children[i] == c) ++i;
    }
    if (n->group->passthrough && !n->exported) Export(n);
  }
  EnforceBounds();
}

// A call still running when the request that made it has been answered did not hold that
// request up: it follows from it.
void TraceWindow::CheckFollowsFrom(StitchNode* child) {
  StitchNode* parent = child->parent;
  if (!parent || !child->in_process_parent || !parent->complete || !child->complete) return;
  if (child->end_ns <= parent->end_ns) return;
  if (child->exported || !child->group || child->group->passthrough) return;
  follows_from_->Add();
  model::SpanLink& l = child->links.emplace_back();
  l.trace_id = parent->group->trace_id;
  l.span_id = parent->span_id;
  l.attributes.push_back({"kspan.link.reason", std::string("follows_from")});
  auto& siblings = parent->children;
  siblings.erase(std::remove(siblings.begin(), siblings.end(), child), siblings.end());
  child->parent = nullptr;
  child->in_process_parent = false;
  child->parent_span_id = model::SpanId{};
  MoveSubtree(child, NewGroup(model::TraceId::Random(), parent->group->flags, ""));
}

bool TraceWindow::MoveUnder(StitchNode* root, StitchNode* parent) {
  const GroupRef from = root->group;
  if (from == parent->group) return false;
  MoveSubtree(root, parent->group);
  root->parent = parent;
  root->parent_span_id = parent->span_id;
  parent->children.push_back(root);
  // The old trace is empty now: off the list the scans walk.
  if (from->members.empty()) Unlist(from.get());
  return true;
}

void TraceWindow::MoveSubtree(StitchNode* root, const GroupRef& to) {
  const GroupRef from = root->group;
  std::vector<StitchNode*> stack{root};
  while (!stack.empty()) {
    StitchNode* n = stack.back();
    stack.pop_back();
    if (n->group != from || n->exported) continue;
    LeaveGroup(n);
    StitchNode* keep_parent = n->parent;
    Join(n, nullptr, to, n->parent_span_id);
    n->parent = keep_parent;
    for (StitchNode* c : n->children) stack.push_back(c);
  }
  from->last_change_ns = now_ns_;
}

// Out of its group's members (swap-remove), keeping the group's open count.
void TraceWindow::LeaveGroup(StitchNode* n) {
  TraceGroup* g = n->group.get();
  StitchNode* last = g->members.back();
  g->members[n->group_index] = last;
  last->group_index = n->group_index;
  g->members.pop_back();
  if (!n->complete) --g->open;
}

// Off the list the scans walk; may destroy g if no node holds it.
void TraceWindow::Unlist(TraceGroup* g) {
  if (!g->listed) return;
  g->listed = false;
  (g->list_prev ? g->list_prev->list_next : groups_head_) = g->list_next;
  (g->list_next ? g->list_next->list_prev : groups_tail_) = g->list_prev;
  g->list_prev = g->list_next = nullptr;
  if (--g->refs == 0) delete g;  // the list's reference was the last
}

void TraceWindow::Export(StitchNode* n) {
  // Handed on from the node (emit moves it out, or drops it): no move into a local first.
  model::Span& span = n->span;
  TraceGroup* g = n->group.get();
  span.trace_id = g->trace_id;
  span.span_id = n->span_id;
  span.parent_span_id = n->parent_span_id;
  span.trace_flags = g->flags;
  span.trace_state = g->trace_state;
  for (auto& l : n->links) span.links.push_back(std::move(l));
  n->links.clear();
  if (n->ambiguous) span.attributes.push_back({"kspan.parent.ambiguous", true});
  n->exported = true;
  --held_spans_;
  held_bytes_ -= n->bytes;
  LeaveGroup(n);  // complete: the open count is unchanged
  retired_.emplace_back(now_ns_ + options_.retire_after_ns, n->key);
  emit_(std::move(span));
}

void TraceWindow::Flush(TraceGroup* g, FlushReason reason) {
  flushed_[static_cast<int>(reason)]->Add();
  // Parents before children, so a reader of the output meets the tree top-down. The lists
  // reuse the last flush's buffers (taken, so a nested flush would make its own).
  std::vector<StitchNode*> done = std::move(scratch_done_);
  done.clear();
  for (StitchNode* n : g->members) {
    if (n->complete) done.push_back(n);
  }
  std::sort(done.begin(), done.end(),
            [](const StitchNode* a, const StitchNode* b) { return a->start_ns < b->start_ns; });
  if (!g->decided && options_.decide) {
    std::vector<const model::Span*> spans = std::move(scratch_spans_);
    spans.clear();
    for (const StitchNode* n : done) spans.push_back(&n->span);
    options_.decide({.trace_id = g->trace_id,
                     .remote_parent = g->remote_parent,
                     .whole = reason == FlushReason::kComplete,
                     .now_ns = now_ns_,
                     .spans = spans},
                    &g->flags, &g->trace_state);
    scratch_spans_ = std::move(spans);
  }
  g->decided = true;
  for (StitchNode* n : done) Export(n);
  scratch_done_ = std::move(done);
  // The rest leaves as it ends: no more window, so off the list the scans walk.
  if (!g->members.empty()) g->passthrough = true;
  Unlist(g);
}

void TraceWindow::EnforceBounds() {
  while (held_spans_ > options_.max_held_spans || held_bytes_ > options_.max_held_bytes) {
    const FlushReason reason =
        held_spans_ > options_.max_held_spans ? FlushReason::kMaxHeldSpans : FlushReason::kMaxHeldBytes;
    TraceGroup* oldest = nullptr;
    for (TraceGroup* g = groups_head_; g; g = g->list_next) {
      if (std::any_of(g->members.begin(), g->members.end(),
                      [](const StitchNode* n) { return n->complete; })) {
        oldest = g;
        break;
      }
    }
    if (!oldest) break;  // what is held is undecided: decided within the reorder delay
    Flush(oldest, reason);
  }
}

void TraceWindow::Remove(StitchNode* n) {
  auto drop = [n](std::vector<StitchNode*>& v) { v.erase(std::remove(v.begin(), v.end(), n), v.end()); };
  if (n->parent) drop(n->parent->children);
  for (StitchNode* c : n->children) c->parent = nullptr;
  if (n->group && !n->exported) {
    TraceGroup* g = n->group.get();
    LeaveGroup(n);
    if (g->members.empty()) Unlist(g);
  }
  if (n->complete && !n->exported) {
    --held_spans_;
    held_bytes_ -= n->bytes;
  }
}

void TraceWindow::FlushDue() {
  if (now_ns_ - last_flush_scan_ns_ >= 20'000'000) {
    last_flush_scan_ns_ = now_ns_;
    // groups_ is in listing order, and a group changes (last_change_ns) no earlier than
    // it was listed: past the first group listed less than a window ago none is complete.
    // (A max_age flush of a group relisted late waits at most that long.)
    const uint64_t due_before = now_ns_ - std::min(options_.window_ns, options_.max_hold_ns);
    for (TraceGroup *g = groups_head_, *next; g; g = next) {
      next = g->list_next;  // Flush may unlist g (and free it), never another group
      if (g->listed_ns > due_before) break;
      if (g->members.empty()) continue;
      if (g->open == 0 && g->last_change_ns + options_.window_ns <= now_ns_) {
        Flush(g, FlushReason::kComplete);
      } else if (!g->passthrough && g->created_ns + options_.max_hold_ns <= now_ns_) {
        Flush(g, FlushReason::kMaxAge);
      }
    }
  }
}

void TraceWindow::FlushAll() {
  while (groups_head_) {
    const GroupRef g(groups_head_);  // kept while it is flushed and unlisted
    if (!g->members.empty()) Flush(g.get(), g->open == 0 ? FlushReason::kComplete : FlushReason::kShutdown);
    Unlist(g.get());
  }
}

}  // namespace kspan::correlator
