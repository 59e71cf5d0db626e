// The record the stitcher keeps for each span it places: a request (SERVER or CLIENT), an
// exec'd process (EXEC) or a process's session (SESSION). Three classes work on it, each on
// its own fields:
//
//   Stitcher (stitcher.h)          owns every node (creates and erases it), fills what
//                                  the parent rules read, and decides each node's parent.
//   TraceWindow (trace_window.h)   the tree and trace a node is held in until it leaves:
//                                  group, parent/children links, held span and bytes.
//   ProcessSessions                the per-pid indexes of exec and session nodes and of
//   (process_sessions.h)           the root calls a late session adopts.
//
// A node is destroyed only by its owner, which first tells the window (Remove) and the
// sessions (Forget) so neither keeps a pointer to it. Single-threaded: the pipeline thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "events/events.h"
#include "model/span.h"

namespace kspan::correlator {

enum class NodeKind : uint8_t { kServer, kClient, kExec, kSession };

// A request is (connection, sequence on it). Exec and session nodes use an fd no socket
// has (-2, -3) so they never collide with one.
struct NodeKey {
  events::ConnKey conn;
  uint64_t seq;
  bool operator==(const NodeKey&) const = default;
};

struct NodeKeyHash {
  size_t operator()(const NodeKey& k) const {
    return events::ConnKeyHash()(k.conn) ^ (k.seq * 0x9E3779B97F4A7C15ULL);
  }
};

// A link a span asks for to the span of another request, by its key: the stitcher fills in
// that span's ids once it is placed (Stitcher::OnSpan).
struct NodeLink {
  NodeKey to;
  std::vector<model::Attribute> attributes;
};

struct TraceGroup;  // trace_window.h

// A counted reference to a trace group (trace_window.h): each member node holds one, and
// the window's list one while the group is listed; the group is freed with its last. A
// plain count, not shared_ptr's atomic one: groups live on the pipeline thread only. A
// template so that TraceGroup need be complete only where a reference is copied or
// dropped.
template <typename G>
class CountedRef {
 public:
  CountedRef() = default;
  CountedRef(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): as a null pointer
  explicit CountedRef(G* g) : g_(g) {
    if (g_) ++g_->refs;
  }
  CountedRef(const CountedRef& o) : g_(o.g_) {
    if (g_) ++g_->refs;
  }
  CountedRef(CountedRef&& o) noexcept : g_(o.g_) { o.g_ = nullptr; }
  CountedRef& operator=(const CountedRef& o) {
    CountedRef(o).swap(*this);
    return *this;
  }
  CountedRef& operator=(CountedRef&& o) noexcept {
    CountedRef(std::move(o)).swap(*this);
    return *this;
  }
  ~CountedRef() {
    if (g_ && --g_->refs == 0) delete g_;
  }
  void swap(CountedRef& o) noexcept { std::swap(g_, o.g_); }
  G* get() const { return g_; }
  G* operator->() const { return g_; }
  G& operator*() const { return *g_; }
  explicit operator bool() const { return g_ != nullptr; }
  friend bool operator==(const CountedRef& a, const CountedRef& b) { return a.g_ == b.g_; }

 private:
  G* g_ = nullptr;
};
using GroupRef = CountedRef<TraceGroup>;

struct StitchNode;

// A node's fields without an allocation of their own (trivially copyable): StitchNode::Reset
// assigns them whole. The groups below say who fills what; the owned fields (strings,
// lists, the group reference and the span) are StitchNode's own, under the same headings.
struct StitchNodeScalars {
  // ---- What was seen (filled by the stitcher when it creates the node) ----
  NodeKey key;
  NodeKind kind = NodeKind::kClient;
  uint32_t pid = 0;
  uint32_t tid = 0;           // request's first byte (SERVER: reader, CLIENT: writer)
  uint32_t response_tid = 0;  // SERVER: the thread that answered
  uint64_t start_ns = 0;      // a session's is pulled back to its first child's
  uint64_t arrival_ns = 0;
  uint64_t completed_seen_ns = 0;  // the pipeline's clock when its span came (0: not yet)
  // For a trace-context carrier (Stitcher::WireContextOf): TLS plaintext, the connection's
  // connect or accept (0: not seen), a CLIENT's answer's first byte (0: not yet).
  bool tls = false;
  uint64_t open_ns = 0, answer_ns = 0;
  bool retire_armed = false;           // complete, and may go stale (Stitcher::Stale)
  uint32_t unarmed_entries = 0;        // its entries in the stitcher's completed_unarmed_
  uint64_t serial = 0;                 // the stitcher's count of nodes made, at this one
  bool pair_key_one_exchange = false;  // the key (StitchNode::pair_key) names one request
  bool unanswered = false;             // complete with no answer seen: end_ns may be its request's
  size_t pair_hash = 0;                // the hash of pair_key, for the stitcher's indexes
  std::optional<model::TraceParent> incoming;
  uint32_t exec_parent_pid = 0, exec_parent_tid = 0;
  // The act that starts a CLIENT call, for rule 4: its thread, turn and time.
  uint32_t act_tid = 0, act_turn = 0;
  uint64_t act_ns = 0;
  model::SpanId span_id;
  bool in_order = true;              // in the stitcher's eviction order (sessions are not)
  StitchNode* order_prev = nullptr;  // its neighbours there (a list through the nodes:
  StitchNode* order_next = nullptr;  // no allocation a node)

  // ---- The decision (the parent rules', in the stitcher and ProcessSessions) ----
  bool decided = false, paired = false;
  bool in_process_parent = false;  // parent is a SERVER span of the same process
  bool in_servers = false;         // SERVER, listed in the stitcher's servers by pid
  bool in_root_servers = false;    // SERVER that started a trace by rule 3, listed by tuple
  bool ambiguous = false;          // exported with kspan.parent.ambiguous=true
  bool root_orphan = false;        // CLIENT that started a trace by rule 8: a session may adopt it

  // ---- Where it is held (changed only through TraceWindow) ----
  bool complete = false, exported = false;
  uint64_t end_ns = 0;  // set when it completes
  StitchNode* parent = nullptr;
  size_t group_index = 0;
  model::SpanId parent_span_id;
  size_t bytes = 0;  // SpanBytes of the held span
};
static_assert(std::is_trivially_copyable_v<StitchNodeScalars>);

struct StitchNode : StitchNodeScalars {
  // ---- What was seen ----
  std::string pair_key;  // SERVER: its own view; CLIENT: the view of its server
  std::string traceparent_raw, tracestate;

  // ---- The decision ----
  std::vector<model::SpanLink> links;   // the window adds a follows_from link
  std::vector<NodeLink> pending_links;  // asked for at OnSpan, resolved once their targets are placed

  // ---- Where it is held ----
  std::vector<StitchNode*> children;
  GroupRef group;  // its trace; null until placed
  // An exec or session span while it runs (filled by its owner); from Complete to export,
  // the finished span.
  model::Span span;

  // As a new node (what StitchNode() holds), keeping the room of pair_key and of the lists
  // (a spare node is reused for the next request: most clients get one child, and every
  // request a pairing key longer than a short string). Cheaper than assigning a new node:
  // the scalars are one assignment, and no temporary node is built and destroyed. A field
  // added here (an owned one) must be reset here too.
  // (Defined in stitcher.cc, where TraceGroup is complete.)
  void Reset();
};

}  // namespace kspan::correlator
