// The trace assembly window's contract (correlator/trace_window.h), driven directly: nodes
// are placed by hand, as the stitcher's rules would place them.
#include "correlator/trace_window.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace kspan::correlator {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;

class TraceWindowTest : public ::testing::Test {
 protected:
  TraceWindowTest() { Make({}); }

  void Make(TraceWindowOptions o) {
    out_.clear();
    window_ = std::make_unique<TraceWindow>(o, &metrics_,
                                            [this](model::Span&& s) { out_.push_back(std::move(s)); });
    window_->SetNow(kT0);
  }

  // A node of the caller (this test owns it, as the stitcher owns its nodes).
  StitchNode* Node(const std::string& name, uint64_t start_ms) {
    auto& n = nodes_.emplace_back(std::make_unique<StitchNode>());
    n->key = {{1, static_cast<int32_t>(nodes_.size()), 1}, 1};
    n->span_id = model::SpanId::Random();
    n->start_ns = kT0 + start_ms * kMs;
    n->span.name = name;
    return n.get();
  }
  // A node placed now, as a root of a new trace or as `parent`'s child in its trace.
  StitchNode* Root(const std::string& name, uint64_t start_ms) {
    StitchNode* n = Node(name, start_ms);
    window_->Join(n, nullptr, window_->NewGroup(model::TraceId::Random(), 1, ""), model::SpanId{});
    window_->Placed(n);
    return n;
  }
  StitchNode* Child(StitchNode* parent, const std::string& name, uint64_t start_ms, bool in_process = false) {
    StitchNode* n = Node(name, start_ms);
    window_->Join(n, parent, parent->group, parent->span_id);
    n->in_process_parent = in_process;
    window_->Placed(n);
    return n;
  }
  void End(StitchNode* n, uint64_t end_ms) {
    model::Span s;
    s.name = n->span.name;
    s.start_time_unix_nano = n->start_ns;
    s.end_time_unix_nano = kT0 + end_ms * kMs;
    window_->Complete(n, std::move(s));
  }
  // The clock moves to t0 + ms and what is due leaves; retired keys are collected.
  void At(uint64_t ms) {
    window_->SetNow(kT0 + ms * kMs);
    window_->ExportDue([this](const NodeKey& k) { retired_.push_back(k); });
  }

  const model::Span& Out(const std::string& name) {
    for (const auto& s : out_) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no span " << name;
    static model::Span none;
    return none;
  }
  uint64_t Flushed(const std::string& reason) {
    for (const auto& s : metrics_.Snapshot()) {
      if (s.name == "kspan_traces_flushed_total" && s.labels == metrics::Labels{{"reason", reason}})
        return s.value;
    }
    return 0;
  }
  uint64_t Count(const std::string& name) {
    for (const auto& s : metrics_.Snapshot()) {
      if (s.name == name && s.labels.empty()) return s.value;
    }
    return 0;
  }

  metrics::Registry metrics_;
  std::vector<model::Span> out_;
  std::vector<NodeKey> retired_;
  std::vector<std::unique_ptr<StitchNode>> nodes_;  // outlive the window, as the contract asks
  std::unique_ptr<TraceWindow> window_;
};

TEST_F(TraceWindowTest, RegistersEveryFlushReasonAndTheFollowsFromCounter) {
  for (const char* reason :
       {"complete", "max_age", "max_held_spans", "max_held_bytes", "max_nodes", "shutdown"}) {
    bool found = false;
    for (const auto& s : metrics_.Snapshot()) {
      found |= s.name == "kspan_traces_flushed_total" && s.labels == metrics::Labels{{"reason", reason}};
    }
    EXPECT_TRUE(found) << reason;
  }
  bool follows = false;
  for (const auto& s : metrics_.Snapshot()) follows |= s.name == "kspan_stitch_follows_from_total";
  EXPECT_TRUE(follows);
}

// A trace leaves when every span in it has ended and none changed for window_ns, parents
// first, every span with its group's trace id and its own parent.
TEST_F(TraceWindowTest, ATraceLeavesWholeOnceEverySpanEndedAndNothingChangedForTheWindow) {
  StitchNode* root = Root("root", 0);
  StitchNode* child = Child(root, "child", 1);
  window_->SetNow(kT0 + 10 * kMs);
  End(child, 10);
  At(400);
  EXPECT_TRUE(out_.empty()) << "the root still runs";
  window_->SetNow(kT0 + 450 * kMs);
  End(root, 450);
  EXPECT_EQ(window_->held_spans(), 2u);
  At(900);
  EXPECT_TRUE(out_.empty()) << "changed 450 ms ago: the window is 500 ms";
  At(960);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].name, "root") << "parents first";
  EXPECT_EQ(Out("child").parent_span_id, Out("root").span_id);
  EXPECT_EQ(Out("root").span_id, root->span_id);
  EXPECT_EQ(Out("child").trace_id, Out("root").trace_id);
  EXPECT_FALSE(Out("root").parent_span_id.IsValid());
  EXPECT_EQ(Flushed("complete"), 1u);
  EXPECT_EQ(window_->held_spans(), 0u);
  EXPECT_EQ(window_->held_bytes(), 0u);
}

// A late span joining the trace restarts its wait.
TEST_F(TraceWindowTest, AChangeRestartsTheWindow) {
  StitchNode* root = Root("root", 0);
  End(root, 5);
  At(300);
  StitchNode* late = Child(root, "late", 250);
  End(late, 300);
  At(600);
  EXPECT_TRUE(out_.empty());
  At(820);
  EXPECT_EQ(out_.size(), 2u);
}

TEST_F(TraceWindowTest, ExportCarriesTheTraceContextLinksAndAmbiguity) {
  const auto trace = model::TraceId::Random();
  const auto outside = model::SpanId::Random();
  StitchNode* n = Node("n", 0);
  n->ambiguous = true;
  model::SpanLink& l = n->links.emplace_back();
  l.trace_id = model::TraceId::Random();
  l.span_id = model::SpanId::Random();
  window_->Join(n, nullptr, window_->NewGroup(trace, 0, "congo=t61rcWkgMzE"), outside);
  window_->Placed(n);
  End(n, 1);
  At(1000);
  ASSERT_EQ(out_.size(), 1u);
  const model::Span& s = out_[0];
  EXPECT_EQ(s.trace_id, trace);
  EXPECT_EQ(s.parent_span_id, outside);
  EXPECT_EQ(s.trace_flags, 0);
  EXPECT_EQ(s.trace_state, "congo=t61rcWkgMzE");
  ASSERT_EQ(s.links.size(), 1u);
  EXPECT_EQ(s.links[0].span_id, l.span_id);
  ASSERT_NE(s.Find("kspan.parent.ambiguous"), nullptr);
  EXPECT_TRUE(std::get<bool>(*s.Find("kspan.parent.ambiguous")));
}

// max_hold: what has ended leaves ("max_age"); the rest follows as it ends.
TEST_F(TraceWindowTest, MaxHoldExportsWhatEndedThenPassesTheRestThrough) {
  Make({.window_ns = 500 * kMs, .max_hold_ns = 5000 * kMs});
  StitchNode* root = Root("root", 0);
  StitchNode* child = Child(root, "child", 1);
  End(child, 10);
  At(2000);
  At(4970);
  EXPECT_TRUE(out_.empty());
  At(5000);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].name, "child");
  EXPECT_EQ(Flushed("max_age"), 1u);
  EXPECT_TRUE(root->group->passthrough);
  window_->SetNow(kT0 + 5100 * kMs);
  End(root, 5100);
  ASSERT_EQ(out_.size(), 2u) << "passthrough: leaves as it ends";
  EXPECT_EQ(Out("child").parent_span_id, Out("root").span_id);
  EXPECT_EQ(Out("child").trace_id, Out("root").trace_id);
  // A span placed later in that trace leaves as soon as it has ended, too.
  StitchNode* late = Node("late", 5000);
  End(late, 5050);
  window_->Join(late, root, root->group, root->span_id);
  window_->Placed(late);
  EXPECT_EQ(out_.size(), 3u);
  EXPECT_EQ(Flushed("max_age"), 1u) << "counted once per trace";
}

// Past max_held_spans the oldest trace that has an ended span leaves; one whose spans all
// still run is skipped (nothing of it could leave).
TEST_F(TraceWindowTest, HeldSpansBoundFlushesTheOldestTraceWithAnEndedSpan) {
  Make({.max_held_spans = 2});
  Root("running", 0);
  StitchNode* a = Root("a", 1);
  StitchNode* b = Root("b", 2);
  StitchNode* c = Root("c", 3);
  End(a, 4);
  End(b, 5);
  EXPECT_TRUE(out_.empty());
  End(c, 6);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].name, "a");
  EXPECT_EQ(Flushed("max_held_spans"), 1u);
  EXPECT_EQ(Flushed("max_held_bytes"), 0u);
  EXPECT_EQ(window_->held_spans(), 2u);
}

TEST_F(TraceWindowTest, HeldBytesBoundFlushesTheOldestTrace) {
  model::Span probe;
  probe.name = "a";
  Make({.max_held_bytes = SpanBytes(probe) * 3 / 2});
  StitchNode* a = Root("a", 1);
  StitchNode* b = Root("b", 2);
  End(a, 3);
  EXPECT_TRUE(out_.empty());
  End(b, 4);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].name, "a");
  EXPECT_EQ(Flushed("max_held_bytes"), 1u);
  EXPECT_LE(window_->held_bytes(), SpanBytes(probe) * 3 / 2);
}

// The owner's own bound (max_nodes), and shutdown: "complete" when all ended, else
// "shutdown" with what has ended; a running span is never exported.
TEST_F(TraceWindowTest, OwnerAndShutdownFlushesAreCountedByReason) {
  StitchNode* a = Root("a", 0);
  StitchNode* a2 = Child(a, "a2", 1);
  End(a2, 2);
  window_->Flush(a->group.get(), FlushReason::kMaxNodes);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(Flushed("max_nodes"), 1u);
  End(a, 3);
  EXPECT_EQ(out_.size(), 2u) << "the rest of a flushed trace leaves as it ends";

  StitchNode* done = Root("done", 10);
  End(done, 11);
  StitchNode* open = Root("open", 12);
  StitchNode* open_child = Child(open, "open_child", 13);
  End(open_child, 14);
  window_->FlushAll();
  EXPECT_EQ(out_.size(), 4u);
  EXPECT_EQ(Flushed("complete"), 1u);
  EXPECT_EQ(Flushed("shutdown"), 1u);
  EXPECT_FALSE(open->exported);
  for (const auto& s : out_) EXPECT_NE(s.name, "open");
}

// Fire-and-forget: an in-process child that ends after its parent moves, with its subtree,
// to a trace of its own linked to the parent.
TEST_F(TraceWindowTest, AChildOutlivingItsInProcessParentFollowsFromIt) {
  StitchNode* s = Root("s", 1);
  StitchNode* c = Child(s, "c", 2, /*in_process=*/true);
  StitchNode* d = Child(c, "d", 3);
  End(s, 4);
  End(d, 300);
  EXPECT_EQ(c->group, s->group);
  End(c, 301);
  EXPECT_NE(c->group, s->group);
  EXPECT_EQ(d->group, c->group) << "the subtree follows its root";
  EXPECT_EQ(Count("kspan_stitch_follows_from_total"), 1u);
  At(1000);
  ASSERT_EQ(out_.size(), 3u);
  const auto &ss = Out("s"), &cs = Out("c"), &ds = Out("d");
  EXPECT_FALSE(cs.parent_span_id.IsValid());
  EXPECT_NE(cs.trace_id, ss.trace_id);
  ASSERT_EQ(cs.links.size(), 1u);
  EXPECT_EQ(cs.links[0].span_id, ss.span_id);
  EXPECT_EQ(cs.links[0].trace_id, ss.trace_id);
  ASSERT_EQ(cs.links[0].attributes.size(), 1u);
  EXPECT_EQ(std::get<std::string>(cs.links[0].attributes[0].value), "follows_from");
  EXPECT_EQ(ds.parent_span_id, cs.span_id);
  EXPECT_EQ(ds.trace_id, cs.trace_id);
}

// Only a child placed under an in-process parent follows from it: a peer's span (same-host
// pairing) that outlives its parent stays in the trace.
TEST_F(TraceWindowTest, AChildOfAnotherProcessStaysInTheTrace) {
  StitchNode* c = Root("c", 1);
  StitchNode* s = Child(c, "s", 2);
  End(c, 3);
  End(s, 10);
  At(1000);
  EXPECT_EQ(Out("s").trace_id, Out("c").trace_id);
  EXPECT_EQ(Out("s").parent_span_id, Out("c").span_id);
  EXPECT_EQ(Count("kspan_stitch_follows_from_total"), 0u);
}

TEST_F(TraceWindowTest, MoveUnderCarriesAHeldSubtreeIntoTheParentsTrace) {
  StitchNode* session = Root("session", 0);
  StitchNode* orphan = Root("orphan", 5);
  StitchNode* below = Child(orphan, "below", 6);
  End(below, 7);
  End(orphan, 8);
  ASSERT_TRUE(window_->MoveUnder(orphan, session));
  EXPECT_FALSE(window_->MoveUnder(orphan, session)) << "already in that trace";
  EXPECT_EQ(orphan->group, session->group);
  EXPECT_EQ(below->group, session->group);
  At(1000);
  EXPECT_TRUE(out_.empty()) << "the session still runs";
  End(session, 1000);
  At(1600);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(out_[0].name, "session");
  EXPECT_EQ(Out("orphan").parent_span_id, Out("session").span_id);
  EXPECT_EQ(Out("below").parent_span_id, Out("orphan").span_id);
  for (const char* n : {"orphan", "below"}) EXPECT_EQ(Out(n).trace_id, Out("session").trace_id) << n;
  EXPECT_EQ(Flushed("complete"), 1u) << "the emptied trace is not flushed on its own";
}

// An exported node stays retire_after_ns (late decisions may still name it), then its key
// is handed back to the owner.
TEST_F(TraceWindowTest, ExportedNodesRetireAfterTheirDelay) {
  Make({.window_ns = 100 * kMs, .retire_after_ns = 200 * kMs});
  StitchNode* n = Root("n", 0);
  End(n, 1);
  At(100);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(n->exported);
  At(250);
  EXPECT_TRUE(retired_.empty());
  At(300);
  ASSERT_EQ(retired_.size(), 1u);
  EXPECT_EQ(retired_[0], n->key);
}

TEST_F(TraceWindowTest, RemoveForgetsAHeldNodeAndItsTreeLinks) {
  StitchNode* root = Root("root", 0);
  StitchNode* child = Child(root, "child", 1);
  End(child, 2);
  EXPECT_EQ(window_->held_spans(), 1u);
  window_->Remove(child);
  EXPECT_EQ(window_->held_spans(), 0u);
  EXPECT_EQ(window_->held_bytes(), 0u);
  EXPECT_TRUE(root->children.empty());
  End(root, 3);
  At(1000);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].name, "root");
}

}  // namespace
}  // namespace kspan::correlator
