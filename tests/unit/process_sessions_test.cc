// The contract of correlator/process_sessions.h, driven directly: the test owns the nodes
// and plays the stitcher's part (creating nodes, erasing them through Forget and Remove).
#include "correlator/process_sessions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace kspan::correlator {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;

class ProcessSessionsTest : public ::testing::Test {
 protected:
  ProcessSessionsTest() { Make(1024); }

  void Make(size_t max_sessions) {
    out_.clear();
    window_ = std::make_unique<TraceWindow>(TraceWindowOptions{}, &metrics_,
                                            [this](model::Span&& s) { out_.push_back(std::move(s)); });
    window_->SetNow(kT0);
    sessions_ =
        std::make_unique<ProcessSessions>(max_sessions, &metrics_, window_.get(), [this](StitchNode* n) {
          erased_.push_back(n);
          sessions_->Forget(n);
          window_->Remove(n);
        });
  }

  StitchNode* NewNode(NodeKind kind, uint32_t pid, uint64_t start_ms, const std::string& name) {
    auto& n = nodes_.emplace_back(std::make_unique<StitchNode>());
    n->key = {{pid, static_cast<int32_t>(nodes_.size()), 1}, 1};
    n->kind = kind;
    n->pid = n->tid = pid;
    n->start_ns = start_ms == 0 ? 0 : kT0 + start_ms * kMs;
    n->span_id = model::SpanId::Random();
    n->span.name = name;
    n->span.start_time_unix_nano = n->start_ns;
    return n.get();
  }
  // The stitcher's OnSession: admitted, a SESSION node, opened.
  StitchNode* Session(uint32_t pid, uint64_t start_ms) {
    if (!sessions_->Admit()) return nullptr;
    StitchNode* s = NewNode(NodeKind::kSession, pid, start_ms, "session " + std::to_string(pid));
    s->in_order = false;
    sessions_->Open(s);
    return s;
  }
  // A CLIENT call of pid decided as a root (rule 8), noted as an orphan.
  StitchNode* OrphanCall(uint32_t pid, uint64_t start_ms, const std::string& name) {
    StitchNode* n = NewNode(NodeKind::kClient, pid, start_ms, name);
    n->decided = true;
    sessions_->NoteOrphan(n);
    window_->Join(n, nullptr, window_->NewGroup(model::TraceId::Random(), 1, ""), model::SpanId{});
    return n;
  }
  // A CLIENT call of pid decided as the child of its session (rule 6).
  StitchNode* SessionCall(uint32_t pid, uint64_t start_ms, const std::string& name) {
    StitchNode* n = NewNode(NodeKind::kClient, pid, start_ms, name);
    StitchNode* s = sessions_->SessionFor(pid, n->start_ns);
    EXPECT_NE(s, nullptr);
    n->decided = true;
    if (s) sessions_->Join(n, s);
    return n;
  }
  void End(StitchNode* n, uint64_t end_ms) {
    model::Span s;
    s.name = n->span.name;
    s.start_time_unix_nano = n->start_ns;
    s.end_time_unix_nano = kT0 + end_ms * kMs;
    window_->Complete(n, std::move(s));
  }

  const model::Span& Out(const std::string& name) {
    for (const auto& s : out_) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no span " << name;
    static model::Span none;
    return none;
  }
  uint64_t Count(const std::string& name, const metrics::Labels& labels = {}) {
    for (const auto& s : metrics_.Snapshot()) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return 0;
  }
  static ProcessSessions::FinishSession ExitCode(int64_t code) {
    return [code](uint32_t, model::Span* s) {
      s->Set("process.exit.code", code);
      if (code != 0) s->Set("error.type", std::string("exit_code"));
    };
  }

  metrics::Registry metrics_;
  std::vector<model::Span> out_;
  std::vector<StitchNode*> erased_;
  std::vector<std::unique_ptr<StitchNode>> nodes_;  // outlive the window and the sessions
  std::unique_ptr<TraceWindow> window_;
  std::unique_ptr<ProcessSessions> sessions_;
};

TEST_F(ProcessSessionsTest, OpenSessionsAreBoundedAndCounted) {
  Make(2);
  ASSERT_NE(Session(50, 1), nullptr);
  ASSERT_NE(Session(51, 1), nullptr);
  EXPECT_TRUE(sessions_->HasSession(50));
  EXPECT_FALSE(sessions_->HasSession(52));
  EXPECT_FALSE(sessions_->Admit());
  EXPECT_EQ(Count("kspan_sessions_total", {{"outcome", "dropped"}}), 1u);
  EXPECT_EQ(Count("kspan_sessions_total", {{"outcome", "opened"}}), 2u);
  auto open = sessions_->OpenSessions();
  std::sort(open.begin(), open.end());
  EXPECT_EQ(open, (std::vector<uint32_t>{50, 51}));
  sessions_->EndSession(50, kT0 + 5 * kMs, ExitCode(0));
  EXPECT_FALSE(sessions_->HasSession(50));
  EXPECT_TRUE(sessions_->Admit()) << "an ended session frees its place";
}

// A session no call needed is never placed: its end makes no span and hands the node back.
TEST_F(ProcessSessionsTest, ASessionNothingNeededIsHandedBackWithoutASpan) {
  StitchNode* s = Session(50, 1);
  sessions_->EndSession(50, kT0 + 5 * kMs, ExitCode(0));
  ASSERT_EQ(erased_.size(), 1u);
  EXPECT_EQ(erased_[0], s);
  window_->FlushAll();
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(sessions_->OpenSessions(), std::vector<uint32_t>{});
}

// Placed when first needed, as the root of a trace; its calls are its children, and its
// span ends at the exit with what `finish` adds, ERROR on error.type.
TEST_F(ProcessSessionsTest, ASessionParentsItsCallsAndEndsAtTheExit) {
  StitchNode* s = Session(50, 1);
  EXPECT_FALSE(s->decided);
  StitchNode* a = SessionCall(50, 10, "a");
  EXPECT_TRUE(s->decided);
  StitchNode* b = SessionCall(50, 20, "b");
  End(a, 15);
  End(b, 25);
  sessions_->EndSession(50, kT0 + 30 * kMs, ExitCode(2));
  window_->FlushAll();
  ASSERT_EQ(out_.size(), 3u);
  const auto& span = Out("session 50");
  EXPECT_FALSE(span.parent_span_id.IsValid());
  EXPECT_EQ(span.start_time_unix_nano, kT0 + 1 * kMs);
  EXPECT_EQ(span.end_time_unix_nano, kT0 + 30 * kMs);
  EXPECT_EQ(span.status_code, model::StatusCode::kError);
  ASSERT_NE(span.Find("process.exit.code"), nullptr);
  EXPECT_EQ(std::get<int64_t>(*span.Find("process.exit.code")), 2);
  EXPECT_EQ(span.Find("kspan.span.cut"), nullptr);
  for (const char* n : {"a", "b"}) {
    EXPECT_EQ(Out(n).parent_span_id, span.span_id) << n;
    EXPECT_EQ(Out(n).trace_id, span.trace_id) << n;
  }
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "session"}}), 2u);
  EXPECT_EQ(Count("kspan_stitch_roots_total"), 1u);
}

// Start unknown (0) or later than a call: the session starts with its first call.
TEST_F(ProcessSessionsTest, ASessionStartsNoLaterThanItsCalls) {
  StitchNode* s = Session(50, 0);
  SessionCall(50, 10, "a");
  EXPECT_EQ(s->start_ns, kT0 + 10 * kMs);
  SessionCall(50, 5, "earlier");
  EXPECT_EQ(s->start_ns, kT0 + 5 * kMs);
  EXPECT_EQ(s->span.start_time_unix_nano, kT0 + 5 * kMs);
  SessionCall(50, 20, "later");
  EXPECT_EQ(s->start_ns, kT0 + 5 * kMs);
}

// A process exec'd for traced work: its session goes under its exec span.
TEST_F(ProcessSessionsTest, ASessionIsPlacedUnderItsProcessExecSpan) {
  StitchNode* exec = NewNode(NodeKind::kExec, 50, 1, "exec agent");
  sessions_->SetExec(50, exec);
  exec->decided = true;
  window_->Join(exec, nullptr, window_->NewGroup(model::TraceId::Random(), 1, ""), model::SpanId{});
  StitchNode* s = Session(50, 2);
  ASSERT_EQ(sessions_->SessionFor(50, kT0 + 3 * kMs), s);
  EXPECT_EQ(s->parent, exec);
  EXPECT_EQ(s->group, exec->group);
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "exec"}}), 1u);
  EXPECT_EQ(Count("kspan_stitch_roots_total"), 0u);
}

// A pid that comes back is another process: a call after the session ended is not its.
TEST_F(ProcessSessionsTest, SessionForIsNoneAfterTheSessionEnded) {
  StitchNode* s = Session(50, 1);
  SessionCall(50, 10, "a");
  sessions_->EndSession(50, kT0 + 30 * kMs, ExitCode(0));
  EXPECT_EQ(sessions_->SessionFor(50, kT0 + 20 * kMs), s) << "a call made before the end, decided late";
  EXPECT_EQ(sessions_->SessionFor(50, kT0 + 40 * kMs), nullptr);
  EXPECT_EQ(sessions_->SessionFor(51, kT0 + 20 * kMs), nullptr);
}

// An agent found by its first LLM call: its root calls still held whole, started after the
// session, move under it with their subtrees; the others stay where they are.
TEST_F(ProcessSessionsTest, OpeningLateAdoptsTheHeldRootCallsOnly) {
  StitchNode* before = OrphanCall(50, 1, "before");  // started before the session
  StitchNode* early = OrphanCall(50, 5, "early");
  StitchNode* below = NewNode(NodeKind::kServer, 60, 6, "below");  // its peer's span
  window_->Join(below, early, early->group, early->span_id);
  StitchNode* flushed = OrphanCall(50, 7, "flushed");
  window_->Flush(flushed->group.get(), FlushReason::kMaxNodes);  // running: passthrough now
  StitchNode* other = OrphanCall(51, 8, "other");                // another process
  End(below, 7);
  End(early, 8);
  StitchNode* s = Session(50, 2);
  EXPECT_TRUE(s->decided) << "placed to adopt";
  EXPECT_EQ(early->parent, s);
  EXPECT_EQ(early->group, s->group);
  EXPECT_EQ(below->group, s->group);
  EXPECT_FALSE(early->root_orphan);
  EXPECT_TRUE(before->root_orphan);
  EXPECT_NE(before->group, s->group);
  EXPECT_NE(flushed->group, s->group);
  EXPECT_NE(other->group, s->group);
  EXPECT_EQ(Count("kspan_stitch_parents_total", {{"rule", "session"}}), 1u);
  End(before, 9);
  End(flushed, 9);
  End(other, 9);
  sessions_->EndSession(50, kT0 + 20 * kMs, ExitCode(0));
  window_->FlushAll();
  EXPECT_EQ(Out("early").parent_span_id, Out("session 50").span_id);
  EXPECT_EQ(Out("below").parent_span_id, Out("early").span_id);
  EXPECT_EQ(Out("below").trace_id, Out("session 50").trace_id);
  EXPECT_FALSE(Out("before").parent_span_id.IsValid());
}

// Shutdown cuts every open session (counted "cut" when it makes a span); a lost exit cuts
// one, counted "exit_lost".
TEST_F(ProcessSessionsTest, CutAndLostSessionsEndMarkedCut) {
  Session(50, 1);
  StitchNode* a50 = SessionCall(50, 2, "a50");
  Session(51, 1);
  StitchNode* a51 = SessionCall(51, 2, "a51");
  Session(52, 1);  // never needed
  sessions_->LoseSession(51, kT0 + 100 * kMs, nullptr);
  EXPECT_EQ(Count("kspan_sessions_total", {{"outcome", "exit_lost"}}), 1u);
  sessions_->CutSessions(kT0 + 200 * kMs, nullptr);
  EXPECT_EQ(Count("kspan_sessions_total", {{"outcome", "cut"}}), 1u);
  EXPECT_TRUE(sessions_->OpenSessions().empty());
  ASSERT_EQ(erased_.size(), 1u);
  EXPECT_EQ(erased_[0]->pid, 52u);
  End(a50, 3);
  End(a51, 3);
  window_->FlushAll();
  for (const char* n : {"session 50", "session 51"}) {
    ASSERT_NE(Out(n).Find("kspan.span.cut"), nullptr) << n;
    EXPECT_TRUE(std::get<bool>(*Out(n).Find("kspan.span.cut"))) << n;
    EXPECT_EQ(Out(n).status_code, model::StatusCode::kUnset) << n;
  }
  EXPECT_EQ(Out("session 51").end_time_unix_nano, kT0 + 100 * kMs);
  EXPECT_EQ(Out("session 50").end_time_unix_nano, kT0 + 200 * kMs);
}

TEST_F(ProcessSessionsTest, AnExecSpanIsTrackedUntilItsProcessEnds) {
  StitchNode* exec = NewNode(NodeKind::kExec, 30, 1, "exec curl");
  sessions_->SetExec(30, exec);
  EXPECT_TRUE(sessions_->TracksExec(30));
  EXPECT_EQ(sessions_->ExecOf(30), exec);
  sessions_->OnProcessEnd(30, kT0 + 5 * kMs, {{"error.type", std::string("signal")}}, nullptr);
  EXPECT_FALSE(sessions_->TracksExec(30));
  EXPECT_EQ(sessions_->ExecOf(30), exec) << "kept for calls still to be decided";
  EXPECT_TRUE(exec->complete);
  EXPECT_EQ(exec->span.end_time_unix_nano, kT0 + 5 * kMs);
  EXPECT_EQ(exec->span.status_code, model::StatusCode::kError);
  sessions_->Forget(exec);
  EXPECT_EQ(sessions_->ExecOf(30), nullptr);
}

// exec again (a shell that execs its command): the old image's span ends there.
TEST_F(ProcessSessionsTest, ExecAgainEndsTheOldImagesSpan) {
  StitchNode* old = NewNode(NodeKind::kExec, 30, 1, "exec sh");
  sessions_->SetExec(30, old);
  sessions_->EndExec(30, kT0 + 4 * kMs);
  EXPECT_TRUE(old->complete);
  EXPECT_EQ(old->end_ns, kT0 + 4 * kMs);
  EXPECT_EQ(sessions_->ExecOf(30), nullptr);
  StitchNode* next = NewNode(NodeKind::kExec, 30, 4, "exec curl");
  sessions_->SetExec(30, next);
  EXPECT_TRUE(sessions_->TracksExec(30));
}

// The owner erasing a session node (its own bounds) frees its place.
TEST_F(ProcessSessionsTest, ForgetDropsASessionAndFreesItsPlace) {
  Make(1);
  StitchNode* s = Session(50, 1);
  EXPECT_FALSE(sessions_->Admit());
  sessions_->Forget(s);
  window_->Remove(s);
  EXPECT_FALSE(sessions_->HasSession(50));
  EXPECT_TRUE(sessions_->Admit());
}

}  // namespace
}  // namespace kspan::correlator
