// Trace stitching: turns the spans of one host into traces. Every request gets its span
// id the moment it is seen whole (RequestStart, before any response), and its parent is
// decided a short reorder delay later from what was in flight then; finished spans wait
// in a bounded assembly window so each trace leaves whole and consistent (a span is never
// exported with a parent id or trace id that later changes).
//
// Parent rules, in order of precedence (docs/tracing.md says the same, with limits):
//
//   SERVER span S (pid P received a request)
//     1. a valid `traceparent` in the request wins: S joins that trace under that parent
//        (keeping the sampled flag and a valid `tracestate`); when the same-host CLIENT
//        span that sent the request saw the same header, S is that CLIENT span's child
//        instead (same trace, one more hop).
//     2. same-host pairing: the client end of S's connection is a CLIENT span on this host
//        (the mirrored 4-tuple, also across network namespaces; for a pipe or socketpair,
//        RequestSeen::pair_key): S is its child. When that CLIENT's request reaches the
//        stitcher more than a reorder delay after S's (its thread was preempted between
//        the send and the syscall's exit on a busy host), S was decided by rule 3; while
//        S's trace is held, it moves under the CLIENT as it is decided (rule "same_host_late").
//     2b. wire context: the request came with a context a carrier on the calling host put
//        on the wire (StitcherOptions::wire_context): S joins that trace under that CLIENT
//        span (the calling host's kspan exports it with that span id).
//     3. otherwise S starts a trace.
//
//   CLIENT span C (pid P, thread T, sent a request at time t)
//     1. a valid `traceparent` the program itself put in the request wins.
//     2. thread causality: exactly one SERVER span of P was in flight on T at t: its child.
//     3. event loop / hand-off: none on T, exactly one in flight in P: its child.
//     4. loop turn: several candidates, but T is an event loop (it waits in epoll/poll/
//        select): the work between two waits continues what that wait delivered, so C's
//        first act (the connect of a new connection, else the request write) belongs to
//        the request whose bytes T read last before it in the same turn, either a
//        candidate's request or the response of an earlier call made for a candidate.
//     5. ambiguous (still several): no parent is guessed. C starts its own trace with
//        links to the candidates (at most max_links) and kspan.parent.ambiguous=true.
//     6. session: P has a session span (OnSession: an agent's process lifetime): C is its
//        child. The session is placed when first needed: under P's exec span (rule 7's),
//        else as the root of a new trace.
//     7. exec'd child: P was exec'd while its parent's thread served a request: the
//        INTERNAL `exec {executable}` span of P (see OnExec) is C's parent.
//     8. otherwise C starts a trace. If P gets a session later (an agent found by its
//        first LLM call), such a trace still held whole moves under the session.
//     Wire context (StitcherOptions::wire_context): when the kernel put ids on the wire
//     for C's request, C takes that span id whatever its parent (the serving host names
//     it as parent), and a trace C starts takes that trace id. Under rules 2-7 the trace
//     is the parent's; when it is not the one on the wire (the kernel follows only the
//     thread that read a carried request, the stitcher sees more) C stays in its parent's
//     trace and the mismatch is counted: the serving host's spans then form a trace of
//     their own under C's span id. Rule 1 ignores the wire (the program's header wins).
//
//   EXEC span E (pid P exec'd by thread T of its parent Q, see OnExec): the child of the
//   one SERVER span of Q in flight on T (else in Q); with none, of Q's session, else of
//   Q's own exec span; otherwise no span at all.
//
//   Follows-from: a child CLIENT span that ends after its parent SERVER span finished its
//   response (fire-and-forget) is moved, with everything under it, to a trace of its
//   own, linked to that SERVER span (done by the window, below).
//
// The window (trace_window.h): a trace is exported when every span in it has ended and
// none changed for `window_ns`. Bounds: a trace still open after `max_hold_ns` is
// exported as far as it has ended (later spans follow at once); past `max_held_spans` /
// `max_held_bytes` held, or `max_nodes` requests tracked, the oldest traces are flushed
// early. Each early flush is counted by reason (kspan_traces_flushed_total).
//
// Where each idea lives: this class keeps the parent rules (the reorder delay, the
// in-flight and pairing indexes, the decisions and their counters) and owns every node
// (stitch_node.h); TraceWindow (trace_window.h) holds decided nodes by trace and exports
// them; ProcessSessions (process_sessions.h) keeps exec and session spans by pid, places,
// ends and cuts sessions, and moves a process's held root calls under a late session.
// Both hold pointers to nodes owned here, and are told before a node is destroyed.
//
// Single-threaded: the pipeline thread. `emit` runs on it, inside whichever call made a
// span leave (a bound can force a trace out from OnRequest too).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "correlator/node_map.h"
#include "correlator/process_sessions.h"
#include "correlator/stitch_node.h"
#include "correlator/trace_window.h"
#include "correlator/wire_request.h"
#include "events/events.h"
#include "model/span.h"
#include "protocols/common/timing.h"

namespace kspan::correlator {

struct StitcherOptions {
  // How long after a request is seen its parent is decided: events of other CPUs (the
  // peer's write may come after our read) arrive within a drain cycle or two.
  uint64_t reorder_slack_ns = 30'000'000;
  // A trace whose spans have all ended is held this long for late spans, then exported.
  uint64_t window_ns = 500'000'000;
  // A trace with spans still running after this is exported as far as it has ended.
  uint64_t max_hold_ns = 30'000'000'000;
  size_t max_held_spans = 65536;
  size_t max_held_bytes = 64u << 20;
  // Requests tracked (running or held), across every trace.
  size_t max_nodes = 131072;
  size_t max_links = 8;
  // Session spans open at once (OnSession); past it, new sessions are refused, counted.
  size_t max_sessions = 1024;
  // The context a trace-context carrier reported for a request (carrier/wire_contexts.h),
  // asked once per SERVER and CLIENT request as its parent is decided; empty: no carrier.
  // CLIENT: the trace id and span id (TraceParent::parent_id) the kernel wrote for it.
  // SERVER: the caller's trace and CLIENT span id.
  std::function<std::optional<model::TraceParent>(const WireRequest&)> wire_context;
  // The sampling decision of each trace (TraceWindowOptions::decide); empty: none.
  std::function<void(const HeldTrace&, uint8_t* flags, std::string* trace_state)> decide;
};

// A request seen whole: identifies the span that its record will fill.
struct RequestSeen {
  events::ConnKey conn;
  uint64_t seq = 0;
  bool server = false;
  events::SocketTuple tuple;  // local = this process's end
  bool tuple_known = false;
  // When the request crossed the socket: first byte moved (tid, its event-loop turn then,
  // 0: unknown), last byte moved (end_tid in end_turn); Unix ns.
  protocols::Timing timing;
  // The first request of a connection seen from its connect (CLIENT) or accept (SERVER):
  // that syscall.
  uint64_t open_ns = 0;
  uint32_t open_tid = 0;
  uint32_t open_turn = 0;
  std::string traceparent, tracestate;
  bool tls = false;  // the bytes are TLS plaintext (conntrack::ConnInfo::tls)
  // Without a tuple (a local channel: pipe, socketpair): a key both ends of the channel
  // give the same request, for same-host pairing; "" when none. With a tuple: the
  // request's id within its connection when the protocol multiplexes (an HTTP/2 stream
  // id), which both ends see alike; "" pairs by the tuple alone.
  std::string pair_key;
};

// What the stitcher needs of a finished request besides its span.
struct RequestDone {
  events::ConnKey conn;
  uint64_t seq = 0;
  // When the response crossed the socket (its first and last byte); all 0 when none came.
  protocols::Timing response;
  // No answer was seen (protocols::Record::response_missing): the span may end with its
  // request (Record::given_up_ns), so its end says nothing of when the server read it.
  bool unanswered = false;
  // Links to the spans of other requests (an agent's tool run to the LLM call that asked
  // for it): each gets that span's ids once it is placed (its trace id then), before this
  // span leaves; one whose target is gone or never placed is dropped, counted in
  // kspan_stitch_links_total{outcome="lost"}.
  std::vector<NodeLink> links;
};

// A process exec'd (for rule 7) and its end.
struct ExecSeen {
  uint32_t pid = 0;
  uint32_t parent_pid = 0;
  uint32_t parent_tid = 0;  // the thread that forked it
  uint64_t ts_ns = 0;
};

class Stitcher {
 public:
  using Emit = std::function<void(model::Span&&)>;
  Stitcher(StitcherOptions options, metrics::Registry* metrics, Emit emit);
  ~Stitcher();
  Stitcher(const Stitcher&) = delete;
  Stitcher& operator=(const Stitcher&) = delete;

  void OnRequest(RequestSeen&& r);
  // The finished span of a request. One never announced by OnRequest (or forgotten under
  // the bounds) is exported as it is, counted.
  void OnSpan(const RequestDone& d, model::Span&& span);

  // exec'd processes: `span` is the INTERNAL span that will describe the process (its
  // end time and exit code come in OnProcessEnd); it gets a parent by the rules above.
  void OnExec(const ExecSeen& e, model::Span&& span);
  // True while `pid` has an exec span waiting for its end (so the caller builds the end
  // attributes only for those).
  bool TracksExec(uint32_t pid) const;
  // The process ended: its exec span (if any) ends at `ts_ns` with these attributes.
  void OnProcessEnd(uint32_t pid, uint64_t ts_ns, std::vector<model::Attribute> attributes,
                    std::shared_ptr<const model::Resource> resource);

  // Sessions: the INTERNAL span of a process's own work, from its start to its exit (an
  // agent's process lifetime: docs/agents.md), parent of its CLIENT calls that have no
  // other (rule 6). `span` carries name, kind, attributes, resource and start time (0:
  // unknown, then its first call's start); the span always starts no later than its
  // children. Nothing is exported for a session no call needed. A second session for a
  // running pid is ignored. Returns false when max_sessions are open (counted in
  // kspan_sessions_total{outcome="dropped"}).
  bool OnSession(uint32_t pid, model::Span&& span);
  bool HasSession(uint32_t pid) const;
  // One more link of the span of request `from`, already given (OnSpan) and not exported
  // yet: resolved like RequestDone::links. False (counted lost) when that span is gone.
  bool AddLink(const NodeKey& from, NodeLink link);
  // Fills in a session's last details (name, attributes, events) at its end; the span's
  // times are final when it is called.
  using FinishSession = std::function<void(uint32_t pid, model::Span*)>;
  // The process ended: its session ends at `ts_ns`, ERROR when `finish` sets error.type.
  void EndSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish);
  // Shutdown: every session still open ends at `ts_ns` with kspan.span.cut=true.
  void CutSessions(uint64_t ts_ns, const FinishSession& finish);
  // The pids of the sessions still open.
  std::vector<uint32_t> OpenSessions() const;
  // The process is gone but its exit event was lost (ring buffer full): its session ends
  // at `ts_ns` with kspan.span.cut=true, counted as kspan_sessions_total{outcome="exit_lost"}.
  void LoseSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish);

  // Decides parents that are due and exports traces that are due. Call after each batch
  // of events and at least every few hundred ms; `now_ns` is Unix ns.
  void Advance(uint64_t now_ns);
  // Decides everything and exports every span held, running ones excepted (shutdown:
  // the tracker has already closed every connection, so none should be left).
  void FlushAll();

  size_t nodes() const;
  size_t held_spans() const { return window_.held_spans(); }
  size_t held_bytes() const { return window_.held_bytes(); }

 private:
  using Node = StitchNode;

  Node* NewNode(const NodeKey& key);
  // A fresh node under `key` (not yet in nodes_): a spare one reset, else a new one.
  Node* TakeNode();
  // Frees an erased node: kept as a spare (reset) up to kMaxSpareNodes, else deleted.
  void Recycle(Node* n);
  static constexpr size_t kMaxSpareNodes = 1024;
  void Decide(Node* n);
  void DecideServer(Node* n);
  void DecideClient(Node* n);
  // The carrier's context for a SERVER or CLIENT node; nullopt without one.
  std::optional<model::TraceParent> WireContextOf(const Node* n) const;
  // The parent rules of a CLIENT without its wire context; a trace it starts has `fresh`.
  void PlaceClient(Node* n, const model::TraceId& fresh);
  // The unpaired CLIENT that sent `server`'s request, marked paired (MarkPaired), or null.
  Node* PairedClient(const Node* server);
  // Whether `server`'s request is the one `client` sent on their connection (same pair
  // key): it came after the client's, and before the client's exchange was over.
  bool SameExchange(const Node* client, const Node* server) const;
  void MarkPaired(Node* client);
  // Rule 2, late: moves the held trace of a SERVER that started one by rule 3 under
  // `client`, its peer whose request reached the stitcher after the server was decided.
  void AdoptLateServer(Node* client);
  // What a thread of an event loop read, turn by turn (see rule 4).
  struct Activity {
    uint64_t ns;
    uint32_t turn;
    NodeKey node;
  };
  void NoteActivity(uint32_t tid, uint32_t turn, uint64_t ns, const NodeKey& node);
  Node* ParentByLoopTurn(const Node* client, const std::vector<Node*>& candidates);
  std::vector<Node*> InFlightServers(uint32_t pid, uint32_t tid, uint64_t at_ns, bool* same_thread);
  // True when nothing decided from now on can still choose `n` as parent or peer.
  bool Stale(const Node* n) const;
  // Destroys `n` after every index, the window and the sessions have let go of it.
  void Erase(Node* n);
  void EmitStandalone(model::Span&& span);
  // Turns the NodeLinks of complete nodes into span links whose targets are placed.
  void ResolveLinks();
  std::vector<NodeKey> links_pending_;
  metrics::Counter* links_resolved_;
  metrics::Counter* links_lost_;

  StitcherOptions options_;
  Emit emit_;
  uint64_t now_ns_ = 0;
  // Every node, owned here (allocated by TakeNode, freed by Recycle); the window and the
  // sessions hold pointers (stitch_node.h).
  NodeMap nodes_;
  // Erased nodes kept for reuse, reset: a node is made and erased twice a request, and
  // its allocation, zeroing and member frees cost more than a reset.
  std::vector<Node*> spare_;
  TraceWindow window_;        // where decided nodes wait, grouped by trace, until exported
  ProcessSessions sessions_;  // exec and session nodes by pid; orphans a session adopts
  uint64_t session_seq_ = 0;
  std::vector<Node*> undecided_;
  // Nodes whose span came since the last Advance: it stamps their completed_seen_ns with
  // its clock, the batch's (Stale counts a client's retirement from there).
  std::vector<NodeKey> completed_this_batch_;
  // Complete nodes not yet retire_armed (see Stale), in the order of the Advance that
  // stamped them (its clock, their completed_seen_ns): each Advance arms the front ones
  // that are due and looks at no other. An entry names its node by key and serial (a key
  // can come back under a new node). Keys that need a look at every Advance (as every
  // entry once had) go to completed_unarmed_late_: a node erased while listed (its key may
  // come back under a new node), a node stamped again since, and a batch stamped before
  // the last one listed (the clock went back).
  struct Unarmed {
    uint64_t stamp_ns;
    NodeKey key;
    uint64_t serial;
  };
  std::deque<Unarmed> completed_unarmed_;
  std::vector<NodeKey> completed_unarmed_late_;
  uint64_t next_serial_ = 0;  // StitchNode::serial
  // Every node but sessions, oldest first (max_nodes eviction): linked through the nodes
  // (StitchNode::order_prev, order_next).
  Node* order_head_ = nullptr;
  Node* order_tail_ = nullptr;
  std::unordered_map<uint32_t, std::deque<Activity>> activity_;  // by thread, oldest first
  uint64_t last_activity_prune_ns_ = 0;
  // SERVER nodes by pid (in-process candidates) and unpaired CLIENT nodes by their 4-tuple
  // as the server sees it (pairing); both drop a node when it is erased. A busy server has
  // thousands held: they come and go about in order, so a deque erased near its front.
  std::unordered_map<uint32_t, std::deque<Node*>> servers_by_pid_;
  // Keyed by a node's pair_key with its hash (StitchNode::pair_hash, computed once when the
  // key is made): a look-up hashes nothing.
  struct PairKey {
    std::string text;
    size_t hash;
  };
  struct PairKeyView {
    std::string_view text;
    size_t hash;
  };
  struct PairKeyHash {
    using is_transparent = void;
    size_t operator()(const PairKey& k) const { return k.hash; }
    size_t operator()(const PairKeyView& k) const { return k.hash; }
  };
  struct PairKeyEq {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return a.hash == b.hash && std::string_view(a.text) == std::string_view(b.text);
    }
  };
  using PairIndex = std::unordered_map<PairKey, std::vector<Node*>, PairKeyHash, PairKeyEq>;
  static PairKeyView PairOf(const Node* n) { return {n->pair_key, n->pair_hash}; }
  // The list under n's pair_key, made empty when there is none.
  static std::vector<Node*>& ListOf(PairIndex* index, const Node* n);
  PairIndex clients_by_tuple_;
  // SERVER nodes that started a trace by rule 3, by their 4-tuple (AdoptLateServer), until
  // adopted or erased.
  PairIndex root_servers_by_tuple_;

  metrics::Counter* parent_traceparent_;
  metrics::Counter* parent_same_host_;
  metrics::Counter* parent_same_host_late_;
  metrics::Counter* parent_thread_;
  metrics::Counter* parent_event_loop_;
  metrics::Counter* parent_loop_turn_;
  metrics::Counter* parent_exec_;
  metrics::Counter* parent_wire_;
  metrics::Counter* wire_mismatch_;
  metrics::Counter* roots_;
  metrics::Counter* ambiguous_;
  metrics::Counter* unannounced_;
  metrics::Counter* forgotten_;
};

}  // namespace kspan::correlator
