#include "correlator/stitcher.h"

#include <algorithm>
#include <utility>

namespace kspan::correlator {

namespace {

enum class Kind : uint8_t { kServer, kClient, kExec, kSession };

std::string EndpointKey(const events::Endpoint& e) {
  return e.address + "#" + std::to_string(e.port);
}

// A connection as its server end sees it: "local|remote". A CLIENT registers under its
// mirror image, so the SERVER of the same connection finds it with its own view.
std::string ServerViewKey(const events::Endpoint& server_side, const events::Endpoint& client_side) {
  return EndpointKey(server_side) + "|" + EndpointKey(client_side);
}

size_t AttributeBytes(const std::vector<model::Attribute>& attrs) {
  size_t n = 0;
  for (const auto& a : attrs) {
    n += sizeof(a) + a.key.capacity();
    if (const auto* s = std::get_if<std::string>(&a.value)) n += s->capacity();
    if (const auto* arr = std::get_if<model::StringArray>(&a.value)) {
      for (const std::string& s : *arr) n += sizeof(s) + s.capacity();
    }
  }
  return n;
}

// What a held span costs, roughly: the struct and its strings (not the shared resource).
size_t SpanBytes(const model::Span& s) {
  size_t n = sizeof(s) + s.name.capacity() + s.trace_state.capacity() + s.status_message.capacity() +
             AttributeBytes(s.attributes);
  for (const auto& e : s.events) n += sizeof(e) + e.name.capacity() + AttributeBytes(e.attributes);
  for (const auto& l : s.links) n += sizeof(l) + l.trace_state.capacity() + AttributeBytes(l.attributes);
  return n;
}

}  // namespace

struct Stitcher::Group {
  model::TraceId trace_id;
  uint8_t flags = 1;
  std::string trace_state;
  std::vector<Node*> members;  // decided, not yet exported
  size_t open = 0;             // members still running
  uint64_t created_ns = 0;
  uint64_t last_change_ns = 0;
  uint64_t listed_ns = 0;    // when it joined groups_ (the list is in this order)
  bool passthrough = false;  // flushed early: later spans leave as soon as they end
  bool listed = false;
  std::list<std::shared_ptr<Group>>::iterator it;
};

struct Stitcher::Node {
  NodeKey key;
  Kind kind = Kind::kClient;
  uint32_t pid = 0;
  uint32_t tid = 0;           // request's first byte (SERVER: reader, CLIENT: writer)
  uint32_t response_tid = 0;  // SERVER: the thread that answered
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint64_t arrival_ns = 0;
  std::string pair_key;  // SERVER: its own view; CLIENT: the view of its server
  std::optional<model::TraceParent> incoming;
  std::string traceparent_raw, tracestate;
  uint32_t exec_parent_pid = 0, exec_parent_tid = 0;
  // The act that starts a CLIENT call, for rule 4: its thread, turn and time.
  uint32_t act_tid = 0, act_turn = 0;
  uint64_t act_ns = 0;

  model::SpanId span_id;
  bool decided = false, complete = false, exported = false, paired = false;
  Node* parent = nullptr;
  bool in_process_parent = false;  // parent is a SERVER span of the same process
  bool in_servers = false;         // SERVER, listed in servers_by_pid_
  std::vector<Node*> children;
  std::shared_ptr<Group> group;
  size_t group_index = 0;
  model::SpanId parent_span_id;
  std::vector<model::SpanLink> links;
  bool ambiguous = false;
  bool root_orphan = false;  // CLIENT that started a trace by rule 8: a session may adopt it
  bool in_order = true;      // in order_ (sessions are not: bounded apart, never evicted)
  model::Span span;
  size_t bytes = 0;
  std::list<Node*>::iterator order_it;
};

Stitcher::Stitcher(StitcherOptions options, metrics::Registry* m, Emit emit)
    : options_(options), emit_(std::move(emit)) {
  auto parent = [m](const char* rule) {
    return m->GetCounter("kspan_stitch_parents_total", {{"rule", rule}});
  };
  parent_traceparent_ = parent("traceparent");
  parent_same_host_ = parent("same_host");
  parent_thread_ = parent("thread");
  parent_event_loop_ = parent("event_loop");
  parent_loop_turn_ = parent("loop_turn");
  parent_exec_ = parent("exec");
  parent_session_ = parent("session");
  sessions_opened_ = m->GetCounter("kspan_sessions_total", {{"outcome", "opened"}});
  sessions_dropped_ = m->GetCounter("kspan_sessions_total", {{"outcome", "dropped"}});
  sessions_cut_ = m->GetCounter("kspan_sessions_total", {{"outcome", "cut"}});
  sessions_exit_lost_ = m->GetCounter("kspan_sessions_total", {{"outcome", "exit_lost"}});
  roots_ = m->GetCounter("kspan_stitch_roots_total");
  ambiguous_ = m->GetCounter("kspan_stitch_ambiguous_total");
  follows_from_ = m->GetCounter("kspan_stitch_follows_from_total");
  unannounced_ = m->GetCounter("kspan_stitch_unannounced_total");
  forgotten_ = m->GetCounter("kspan_stitch_forgotten_total");
  auto flushed = [m](const char* reason) {
    return m->GetCounter("kspan_traces_flushed_total", {{"reason", reason}});
  };
  flushed_complete_ = flushed("complete");
  flushed_max_age_ = flushed("max_age");
  flushed_max_spans_ = flushed("max_held_spans");
  flushed_max_bytes_ = flushed("max_held_bytes");
  flushed_max_nodes_ = flushed("max_nodes");
  flushed_shutdown_ = flushed("shutdown");
}

Stitcher::~Stitcher() = default;

size_t Stitcher::nodes() const {
  return nodes_.size();
}

Stitcher::Node* Stitcher::NewNode(const NodeKey& key) {
  while (nodes_.size() >= options_.max_nodes && !order_.empty()) {
    Node* oldest = order_.front();
    if (oldest->complete && oldest->group && !oldest->exported) {
      FlushGroup(oldest->group.get(), "max_nodes");
    } else if (!oldest->exported) {
      forgotten_->Add();
    }
    Erase(oldest);
  }
  auto [it, inserted] = nodes_.try_emplace(key, nullptr);
  if (!inserted) {
    Erase(it->second.get());  // the same request again: keep the newer (Erase drops the entry)
    it = nodes_.try_emplace(key, nullptr).first;
  }
  it->second = std::make_unique<Node>();
  Node* n = it->second.get();
  n->key = key;
  n->arrival_ns = now_ns_;  // set by Advance; raised to the start time in OnRequest
  n->span_id = model::SpanId::Random();
  n->order_it = order_.insert(order_.end(), n);
  undecided_.push_back(n);
  return n;
}

void Stitcher::OnRequest(RequestSeen&& r) {
  Node* n = NewNode({r.conn, r.seq});
  n->kind = r.server ? Kind::kServer : Kind::kClient;
  n->pid = r.conn.pid;
  n->tid = r.tid;
  n->start_ns = r.start_ns;
  n->arrival_ns = std::max(n->arrival_ns, r.start_ns);
  if (r.server) {
    // What the thread read: the handler runs after the request's last byte.
    NoteActivity(r.tid, r.turn, r.start_ns, n->key);
    NoteActivity(r.end_tid, r.end_turn, r.end_ns, n->key);
  } else if (r.open_ns != 0 && r.seq == 1) {
    n->act_tid = r.open_tid;
    n->act_turn = r.open_turn;
    n->act_ns = r.open_ns;
  } else {
    n->act_tid = r.tid;
    n->act_turn = r.turn;
    n->act_ns = r.start_ns;
  }
  if (r.tuple_known) {
    n->pair_key = r.server ? ServerViewKey(r.tuple.local, r.tuple.remote)
                           : ServerViewKey(r.tuple.remote, r.tuple.local);
  } else {
    n->pair_key = std::move(r.pair_key);
  }
  if (!r.traceparent.empty()) {
    n->incoming = model::ParseTraceParent(r.traceparent);
    if (n->incoming) {
      n->traceparent_raw = std::move(r.traceparent);
      n->tracestate = std::move(r.tracestate);
    }
  }
}

void Stitcher::OnSpan(const RequestDone& d, model::Span&& span) {
  auto it = nodes_.find({d.conn, d.seq});
  if (it == nodes_.end() || it->second->complete) {
    EmitStandalone(std::move(span));
    return;
  }
  Node* n = it->second.get();
  n->response_tid = d.response_tid;
  if (n->kind == Kind::kClient) {
    // A response read is an event a loop turn continues (rule 4).
    NoteActivity(d.response_tid, d.response_turn, d.response_start_ns, n->key);
    NoteActivity(d.response_end_tid, d.response_end_turn, d.response_end_ns, n->key);
  }
  Complete(n, std::move(span));
}

void Stitcher::OnExec(const ExecSeen& e, model::Span&& span) {
  // exec again (a shell that execs its command): the old image's span ends here.
  auto old = exec_by_pid_.find(e.pid);
  if (old != exec_by_pid_.end()) {
    Node* o = old->second;
    exec_by_pid_.erase(old);
    if (!o->complete) {
      model::Span done = std::move(o->span);
      done.end_time_unix_nano = std::max(e.ts_ns, done.start_time_unix_nano);
      Complete(o, std::move(done));
    }
  }
  // Keyed apart from connections: fd -2 never names a socket.
  Node* n = NewNode({{e.pid, -2, e.ts_ns}, 0});
  exec_by_pid_[e.pid] = n;
  n->kind = Kind::kExec;
  n->pid = e.pid;
  n->tid = e.pid;
  n->start_ns = e.ts_ns;
  n->arrival_ns = std::max(n->arrival_ns, e.ts_ns);
  n->exec_parent_pid = e.parent_pid;
  n->exec_parent_tid = e.parent_tid;
  n->span = std::move(span);
}

bool Stitcher::TracksExec(uint32_t pid) const {
  auto it = exec_by_pid_.find(pid);
  return it != exec_by_pid_.end() && !it->second->complete;
}

void Stitcher::OnProcessEnd(uint32_t pid, uint64_t ts_ns, std::vector<model::Attribute> attributes,
                            std::shared_ptr<const model::Resource> resource) {
  // The node stays indexed (until erased) for the process's calls still to be decided.
  auto it = exec_by_pid_.find(pid);
  if (it == exec_by_pid_.end()) return;
  Node* n = it->second;
  if (n->complete) return;
  model::Span span = std::move(n->span);
  span.end_time_unix_nano = std::max(ts_ns, span.start_time_unix_nano);
  for (auto& a : attributes) span.attributes.push_back(std::move(a));
  span.resource = std::move(resource);
  for (const auto& a : span.attributes) {
    if (a.key == "error.type") span.status_code = model::StatusCode::kError;
  }
  Complete(n, std::move(span));
}

bool Stitcher::OnSession(uint32_t pid, model::Span&& span) {
  if (auto it = session_by_pid_.find(pid); it != session_by_pid_.end() && !it->second->complete) return true;
  if (open_sessions_ >= options_.max_sessions) {
    sessions_dropped_->Add();
    return false;
  }
  // Keyed apart from connections and exec spans: fd -3 never names a socket. Not in
  // order_: a session is as old as its process and must not be the first evicted.
  const NodeKey key{{pid, -3, span.start_time_unix_nano}, ++session_seq_};
  auto node = std::make_unique<Node>();
  Node* s = node.get();
  nodes_[key] = std::move(node);
  s->key = key;
  s->kind = Kind::kSession;
  s->pid = s->tid = pid;
  s->start_ns = span.start_time_unix_nano;
  s->arrival_ns = now_ns_;
  s->span_id = model::SpanId::Random();
  s->in_order = false;
  s->span = std::move(span);
  session_by_pid_[pid] = s;  // an ended session of an earlier process with this pid stays until erased
  ++open_sessions_;
  sessions_opened_->Add();

  // Calls the process made before it was known to need a session (an agent found by its
  // first LLM call): each trace they started that is still held whole moves under it.
  std::vector<Node*> roots;
  if (auto o = orphans_by_pid_.find(pid); o != orphans_by_pid_.end()) {
    for (Node* n : o->second) {
      if (n->root_orphan && n->group && !n->group->passthrough && !n->exported &&
          (s->start_ns == 0 || n->start_ns >= s->start_ns)) {
        roots.push_back(n);
      }
    }
  }
  if (!roots.empty()) {
    std::sort(roots.begin(), roots.end(),
              [](const Node* a, const Node* b) { return a->start_ns < b->start_ns; });
    DecideSession(s);
    for (Node* n : roots) Rehome(n, s);
  }
  return true;
}

bool Stitcher::HasSession(uint32_t pid) const {
  auto it = session_by_pid_.find(pid);
  return it != session_by_pid_.end() && !it->second->complete;
}

Stitcher::Node* Stitcher::SessionFor(uint32_t pid, uint64_t at_ns) {
  auto it = session_by_pid_.find(pid);
  if (it == session_by_pid_.end()) return nullptr;
  Node* s = it->second;
  if (s->complete && at_ns > s->end_ns) return nullptr;  // a later process with the same pid
  if (s->exported) return nullptr;
  if (!s->decided) DecideSession(s);
  return s;
}

void Stitcher::DecideSession(Node* s) {
  s->decided = true;
  // Under the process's exec span when it has one (it was started for traced work).
  auto exec = exec_by_pid_.find(s->pid);
  if (exec != exec_by_pid_.end() && exec->second->decided && exec->second->group && !exec->second->exported) {
    Node* e = exec->second;
    parent_exec_->Add();
    Join(s, e, e->group, e->span_id);
    return;
  }
  roots_->Add();
  Join(s, nullptr, NewGroup(model::TraceId::Random(), 1, ""), model::SpanId{});
}

void Stitcher::JoinSession(Node* n, Node* s) {
  parent_session_->Add();
  Join(n, s, s->group, s->span_id);
  // A session starts no later than its calls (its start was unknown, or the clock read
  // from /proc is coarser than the events').
  if (!s->complete && (s->start_ns == 0 || n->start_ns < s->start_ns)) {
    s->start_ns = n->start_ns;
    s->span.start_time_unix_nano = n->start_ns;
  }
}

void Stitcher::Rehome(Node* root, Node* s) {
  const std::shared_ptr<Group> from = root->group;
  if (from == s->group) return;
  MoveSubtree(root, s->group);
  root->parent = s;
  root->parent_span_id = s->span_id;
  root->root_orphan = false;
  if (auto o = orphans_by_pid_.find(root->pid); o != orphans_by_pid_.end()) {
    std::erase(o->second, root);
    if (o->second.empty()) orphans_by_pid_.erase(o);
  }
  s->children.push_back(root);
  parent_session_->Add();
  if (!s->complete && (s->start_ns == 0 || root->start_ns < s->start_ns)) {
    s->start_ns = root->start_ns;
    s->span.start_time_unix_nano = root->start_ns;
  }
  // The old trace is empty now: off the list the scans walk.
  if (from->members.empty() && from->listed) {
    from->listed = false;
    groups_.erase(from->it);
  }
}

void Stitcher::CompleteSession(Node* s, uint64_t ts_ns, const FinishSession& finish, bool cut) {
  if (!s->decided) {
    Erase(s);  // no call needed it: no span
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
  Complete(s, std::move(span));
}

void Stitcher::EndSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish) {
  auto it = session_by_pid_.find(pid);
  if (it == session_by_pid_.end() || it->second->complete) return;
  CompleteSession(it->second, ts_ns, finish, /*cut=*/false);
}

std::vector<uint32_t> Stitcher::OpenSessions() const {
  std::vector<uint32_t> out;
  for (const auto& [pid, s] : session_by_pid_) {
    if (!s->complete) out.push_back(pid);
  }
  return out;
}

void Stitcher::LoseSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish) {
  auto it = session_by_pid_.find(pid);
  if (it == session_by_pid_.end() || it->second->complete) return;
  sessions_exit_lost_->Add();
  CompleteSession(it->second, ts_ns, finish, /*cut=*/true);
}

void Stitcher::CutSessions(uint64_t ts_ns, const FinishSession& finish) {
  std::vector<Node*> open;
  for (const auto& [pid, s] : session_by_pid_) {
    (void)pid;
    if (!s->complete) open.push_back(s);
  }
  for (Node* s : open) {
    if (s->decided) sessions_cut_->Add();
    CompleteSession(s, ts_ns, finish, /*cut=*/true);
  }
}

void Stitcher::Advance(uint64_t now_ns) {
  now_ns_ = now_ns;
  // Decide, in order of start, every request that started no later than the newest one
  // that has waited out the reorder delay: a parent always starts before its child, so it
  // is decided first, and a late-arriving earlier event still takes its place in line.
  uint64_t horizon = 0;
  bool due = false;
  for (const Node* n : undecided_) {
    if (n->arrival_ns + options_.reorder_slack_ns <= now_ns) {
      horizon = std::max(horizon, n->start_ns);
      due = true;
    }
  }
  if (due) {
    std::vector<Node*> now_due, later;
    for (Node* n : undecided_) (n->start_ns <= horizon ? now_due : later).push_back(n);
    std::sort(now_due.begin(), now_due.end(), [](const Node* a, const Node* b) {
      return a->start_ns != b->start_ns ? a->start_ns < b->start_ns : a->kind < b->kind;
    });
    undecided_ = std::move(later);
    for (Node* n : now_due) Decide(n);
  }

  if (now_ns - last_activity_prune_ns_ >= 1'000'000'000) {
    last_activity_prune_ns_ = now_ns;
    for (auto it = activity_.begin(); it != activity_.end();) {
      const bool old = it->second.empty() || it->second.back().ns + 10'000'000'000ull < now_ns;
      it = old ? activity_.erase(it) : std::next(it);
    }
  }
  while (!retired_.empty() && retired_.front().first <= now_ns) {
    auto it = nodes_.find(retired_.front().second);
    if (it != nodes_.end() && it->second->exported) Erase(it->second.get());
    retired_.pop_front();
  }

  if (now_ns - last_flush_scan_ns_ >= 20'000'000) {
    last_flush_scan_ns_ = now_ns;
    // groups_ is in listing order, and a group changes (last_change_ns) no earlier than
    // it was listed: past the first group listed less than a window ago none is complete.
    // (A max_age flush of a group relisted late waits at most that long.)
    const uint64_t due_before = now_ns - std::min(options_.window_ns, options_.max_hold_ns);
    for (auto it = groups_.begin(); it != groups_.end();) {
      Group* g = (it++)->get();  // FlushGroup may unlist g
      if (g->listed_ns > due_before) break;
      if (g->members.empty()) continue;
      if (g->open == 0 && g->last_change_ns + options_.window_ns <= now_ns) {
        FlushGroup(g, "complete");
      } else if (!g->passthrough && g->created_ns + options_.max_hold_ns <= now_ns) {
        FlushGroup(g, "max_age");
      }
    }
  }
}

void Stitcher::FlushAll() {
  std::sort(undecided_.begin(), undecided_.end(),
            [](const Node* a, const Node* b) { return a->start_ns < b->start_ns; });
  std::vector<Node*> pending = std::move(undecided_);
  undecided_.clear();
  for (Node* n : pending) Decide(n);
  // Sessions have no end but this one (the pipeline cuts them first, with their output).
  CutSessions(now_ns_, nullptr);
  // Still running at shutdown (a process with an exec span that outlives kspan): no end to
  // report, so no span; counted.
  for (const auto& [key, node] : nodes_) {
    (void)key;
    if (node->decided && node->group && !node->complete) forgotten_->Add();
  }
  while (!groups_.empty()) {
    auto g = groups_.front();
    if (!g->members.empty()) FlushGroup(g.get(), g->open == 0 ? "complete" : "shutdown");
    if (g->listed) {
      groups_.erase(g->it);
      g->listed = false;
    }
  }
}

std::shared_ptr<Stitcher::Group> Stitcher::NewGroup(const model::TraceId& trace, uint8_t flags,
                                                    std::string trace_state) {
  auto g = std::make_shared<Group>();
  g->trace_id = trace;
  g->flags = flags;
  g->trace_state = std::move(trace_state);
  g->created_ns = g->last_change_ns = now_ns_;
  return g;
}

void Stitcher::Join(Node* n, Node* parent, const std::shared_ptr<Group>& g,
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
    g->it = groups_.insert(groups_.end(), g);
    g->listed = true;
    g->listed_ns = now_ns_;
  }
}

void Stitcher::Decide(Node* n) {
  n->decided = true;
  switch (n->kind) {
    case Kind::kServer: DecideServer(n); break;
    case Kind::kClient: DecideClient(n); break;
    case Kind::kSession:  // decided when first needed (SessionFor), never queued
      DecideSession(n);
      break;
    case Kind::kExec: {
      // Only processes started on behalf of traced work get a span: the forking thread's
      // request in flight, else the parent's session, or a parent that is itself such a
      // process.
      bool same_thread = false;
      std::vector<Node*> servers =
          InFlightServers(n->exec_parent_pid, n->exec_parent_tid, n->start_ns, &same_thread);
      Node* parent = nullptr;
      if (servers.size() == 1) {
        parent = servers[0];
      } else if (servers.empty()) {
        auto it = exec_by_pid_.find(n->exec_parent_pid);
        if (Node* session = SessionFor(n->exec_parent_pid, n->start_ns)) {
          parent = session;  // a command, tool server or sub-agent an agent started
        } else if (it != exec_by_pid_.end() && it->second->decided && it->second->group &&
                   !it->second->complete) {
          parent = it->second;
        }
      }
      if (!parent) {
        // Not traced work (or ambiguous): no span. Erased at once; the process may still
        // be a context for nothing.
        Erase(n);
        return;
      }
      parent_exec_->Add();
      Join(n, parent, parent->group, parent->span_id);
      n->in_process_parent = false;
      break;
    }
  }
  if (n->complete && n->group && n->group->passthrough) Export(n);
  EnforceBounds();
}

Stitcher::Node* Stitcher::PairedClient(const Node* server) {
  if (server->pair_key.empty()) return nullptr;
  auto it = clients_by_tuple_.find(server->pair_key);
  if (it == clients_by_tuple_.end()) return nullptr;
  auto& v = it->second;
  v.erase(std::remove_if(v.begin(), v.end(), [this](const Node* c) { return Stale(c); }), v.end());
  if (v.empty()) {
    clients_by_tuple_.erase(it);
    return nullptr;
  }
  for (Node* c : v) {
    if (c->paired || c->start_ns > server->start_ns) continue;
    if (c->complete && c->end_ns < server->start_ns) continue;  // over before this request came
    return c;
  }
  return nullptr;
}

void Stitcher::DecideServer(Node* n) {
  Node* client = PairedClient(n);
  if (client) client->paired = true;
  if (n->incoming) {
    if (client && client->traceparent_raw == n->traceparent_raw && client->group) {
      parent_same_host_->Add();
      Join(n, client, client->group, client->span_id);
    } else {
      parent_traceparent_->Add();
      Join(n, nullptr, NewGroup(n->incoming->trace_id, n->incoming->flags, n->tracestate),
           n->incoming->parent_id);
    }
  } else if (client && client->group) {
    parent_same_host_->Add();
    Join(n, client, client->group, client->span_id);
  } else {
    roots_->Add();
    Join(n, nullptr, NewGroup(model::TraceId::Random(), 1, ""), model::SpanId{});
  }
  auto& servers = servers_by_pid_[n->pid];
  // A server that makes no calls is never searched (InFlightServers prunes): drop what is
  // stale here, or Erase would walk past it.
  while (!servers.empty() && Stale(servers.front())) {
    servers.front()->in_servers = false;
    servers.pop_front();
  }
  servers.push_back(n);
  n->in_servers = true;
}

void Stitcher::NoteActivity(uint32_t tid, uint32_t turn, uint64_t ns, const NodeKey& node) {
  if (turn == 0 || tid == 0) return;  // not an event loop
  auto& log = activity_[tid];
  if (!log.empty() && log.back().turn == turn && log.back().ns == ns && log.back().node == node) return;
  log.push_back({ns, turn, node});
  if (log.size() > 256) log.pop_front();  // a loop turn that read more is ambiguous anyway
}

Stitcher::Node* Stitcher::ParentByLoopTurn(const Node* client, const std::vector<Node*>& candidates) {
  if (client->act_turn == 0) return nullptr;
  auto it = activity_.find(client->act_tid);
  if (it == activity_.end()) return nullptr;
  // The last read of the same turn before the call's first act.
  const Activity* last = nullptr;
  for (const Activity& a : it->second) {
    if (a.turn != client->act_turn || a.ns > client->act_ns) continue;
    if (!last || a.ns >= last->ns) last = &a;
  }
  if (!last) return nullptr;
  auto n = nodes_.find(last->node);
  if (n == nodes_.end()) return nullptr;
  Node* read = n->second.get();
  // A request read: that request. A response read: the request its call was made for.
  Node* owner = read->kind == Kind::kServer ? read : (read->in_process_parent ? read->parent : nullptr);
  if (owner && std::find(candidates.begin(), candidates.end(), owner) != candidates.end()) return owner;
  return nullptr;
}

bool Stitcher::Stale(const Node* n) const {
  return n->complete && n->end_ns + 4 * options_.reorder_slack_ns < now_ns_;
}

std::vector<Stitcher::Node*> Stitcher::InFlightServers(uint32_t pid, uint32_t tid, uint64_t at_ns,
                                                       bool* same_thread) {
  std::vector<Node*> on_thread, in_process;
  auto it = servers_by_pid_.find(pid);
  if (it != servers_by_pid_.end()) {
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(),
                           [this](Node* s) {
                             if (!Stale(s)) return false;
                             s->in_servers = false;
                             return true;
                           }),
            v.end());
    for (Node* s : v) {
      if (!s->group || s->start_ns > at_ns) continue;
      if (s->complete && s->end_ns < at_ns) continue;
      in_process.push_back(s);
      if (s->tid == tid || (s->response_tid != 0 && s->response_tid == tid)) on_thread.push_back(s);
    }
    if (v.empty()) servers_by_pid_.erase(it);
  }
  *same_thread = !on_thread.empty();
  return on_thread.empty() ? in_process : on_thread;
}

void Stitcher::DecideClient(Node* n) {
  if (!n->pair_key.empty()) clients_by_tuple_[n->pair_key].push_back(n);
  if (n->incoming) {
    parent_traceparent_->Add();
    Join(n, nullptr, NewGroup(n->incoming->trace_id, n->incoming->flags, n->tracestate),
         n->incoming->parent_id);
    return;
  }
  bool same_thread = false;
  std::vector<Node*> candidates = InFlightServers(n->pid, n->tid, n->start_ns, &same_thread);
  Node* chosen = nullptr;
  if (candidates.size() == 1) {
    chosen = candidates[0];
    (same_thread ? parent_thread_ : parent_event_loop_)->Add();
  } else if (candidates.size() > 1 && (chosen = ParentByLoopTurn(n, candidates)) != nullptr) {
    parent_loop_turn_->Add();
  }
  if (chosen) {
    Join(n, chosen, chosen->group, chosen->span_id);
    n->in_process_parent = true;
    return;
  }
  if (candidates.size() > 1) {
    // Several requests in flight could have made this call: link them all, guess none.
    ambiguous_->Add();
    n->ambiguous = true;
    for (size_t i = 0; i < candidates.size() && i < options_.max_links; ++i) {
      model::SpanLink& l = n->links.emplace_back();
      l.trace_id = candidates[i]->group->trace_id;
      l.span_id = candidates[i]->span_id;
      l.attributes.push_back({"kspan.link.reason", std::string("ambiguous_parent")});
    }
    Join(n, nullptr, NewGroup(model::TraceId::Random(), 1, ""), model::SpanId{});
    return;
  }
  // An agent's call outside any task: its session's.
  if (Node* session = SessionFor(n->pid, n->start_ns)) {
    JoinSession(n, session);
    return;
  }
  // A process exec'd for traced work: its calls belong to that work.
  auto exec = exec_by_pid_.find(n->pid);
  if (exec != exec_by_pid_.end() && exec->second->decided && exec->second->group &&
      exec->second->start_ns <= n->start_ns &&
      (!exec->second->complete || n->start_ns <= exec->second->end_ns)) {
    Node* e = exec->second;
    parent_exec_->Add();
    Join(n, e, e->group, e->span_id);
    return;
  }
  roots_->Add();
  n->root_orphan = true;
  orphans_by_pid_[n->pid].push_back(n);
  Join(n, nullptr, NewGroup(model::TraceId::Random(), 1, ""), model::SpanId{});
}

void Stitcher::Complete(Node* n, model::Span&& span) {
  n->span = std::move(span);
  n->end_ns = n->span.end_time_unix_nano;
  n->complete = true;
  n->bytes = SpanBytes(n->span);
  ++held_spans_;
  held_bytes_ += n->bytes;
  if (n->group) {
    Group* g = n->group.get();
    --g->open;
    g->last_change_ns = now_ns_;
    CheckFollowsFrom(n);
    for (Node* c : std::vector<Node*>(n->children)) CheckFollowsFrom(c);
    if (n->group->passthrough && !n->exported) Export(n);
  }
  EnforceBounds();
}

// A call still running when the request that made it has been answered did not hold that
// request up: it follows from it.
void Stitcher::CheckFollowsFrom(Node* child) {
  Node* parent = child->parent;
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

void Stitcher::MoveSubtree(Node* root, const std::shared_ptr<Group>& to) {
  const std::shared_ptr<Group> from = root->group;
  std::vector<Node*> stack{root};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->group != from || n->exported) continue;
    LeaveGroup(n);
    Node* keep_parent = n->parent;
    Join(n, nullptr, to, n->parent_span_id);
    n->parent = keep_parent;
    for (Node* c : n->children) stack.push_back(c);
  }
  from->last_change_ns = now_ns_;
}

// Out of its group's members (swap-remove), keeping the group's open count.
void Stitcher::LeaveGroup(Node* n) {
  Group* g = n->group.get();
  Node* last = g->members.back();
  g->members[n->group_index] = last;
  last->group_index = n->group_index;
  g->members.pop_back();
  if (!n->complete) --g->open;
}

void Stitcher::Export(Node* n) {
  model::Span span = std::move(n->span);
  Group* g = n->group.get();
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
  retired_.emplace_back(now_ns_ + 4 * options_.reorder_slack_ns, n->key);
  emit_(std::move(span));
}

void Stitcher::FlushGroup(Group* g, const char* reason) {
  const std::string_view r(reason);
  (r == "complete"         ? flushed_complete_
   : r == "max_age"        ? flushed_max_age_
   : r == "max_held_spans" ? flushed_max_spans_
   : r == "max_held_bytes" ? flushed_max_bytes_
   : r == "max_nodes"      ? flushed_max_nodes_
                           : flushed_shutdown_)
      ->Add();
  // Parents before children, so a reader of the output meets the tree top-down.
  std::vector<Node*> done;
  for (Node* n : g->members) {
    if (n->complete) done.push_back(n);
  }
  std::sort(done.begin(), done.end(), [](const Node* a, const Node* b) { return a->start_ns < b->start_ns; });
  for (Node* n : done) Export(n);
  // The rest leaves as it ends: no more window, so off the list the scans walk.
  if (!g->members.empty()) g->passthrough = true;
  if (g->listed) {
    g->listed = false;
    groups_.erase(g->it);  // may destroy g if no node holds it
  }
}

void Stitcher::EnforceBounds() {
  while (held_spans_ > options_.max_held_spans || held_bytes_ > options_.max_held_bytes) {
    const char* reason = held_spans_ > options_.max_held_spans ? "max_held_spans" : "max_held_bytes";
    Group* oldest = nullptr;
    for (const auto& g : groups_) {
      if (std::any_of(g->members.begin(), g->members.end(), [](const Node* n) { return n->complete; })) {
        oldest = g.get();
        break;
      }
    }
    if (!oldest) break;  // what is held is undecided: decided within the reorder delay
    FlushGroup(oldest, reason);
  }
}

void Stitcher::Erase(Node* n) {
  auto drop = [n](std::vector<Node*>& v) { v.erase(std::remove(v.begin(), v.end(), n), v.end()); };
  if (n->in_servers) {
    auto it = servers_by_pid_.find(n->pid);
    if (it != servers_by_pid_.end()) {
      auto& v = it->second;
      auto at = std::find(v.begin(), v.end(), n);  // near the front: the oldest leave first
      if (at != v.end()) v.erase(at);
      if (v.empty()) servers_by_pid_.erase(it);
    }
  } else if (n->kind == Kind::kClient && !n->pair_key.empty()) {
    auto it = clients_by_tuple_.find(n->pair_key);
    if (it != clients_by_tuple_.end()) {
      drop(it->second);
      if (it->second.empty()) clients_by_tuple_.erase(it);
    }
  }
  if (n->root_orphan) {
    auto it = orphans_by_pid_.find(n->pid);
    if (it != orphans_by_pid_.end()) {
      auto& v = it->second;
      auto at = std::find(v.begin(), v.end(), n);  // near the front: the oldest leave first
      if (at != v.end()) v.erase(at);
      if (v.empty()) orphans_by_pid_.erase(it);
    }
  }
  if (n->parent) drop(n->parent->children);
  for (Node* c : n->children) c->parent = nullptr;
  if (!n->decided) drop(undecided_);
  if (n->kind == Kind::kExec) {
    auto it = exec_by_pid_.find(n->pid);
    if (it != exec_by_pid_.end() && it->second == n) exec_by_pid_.erase(it);
  }
  if (n->kind == Kind::kSession) {
    if (!n->complete) --open_sessions_;
    auto it = session_by_pid_.find(n->pid);
    if (it != session_by_pid_.end() && it->second == n) session_by_pid_.erase(it);
  }
  if (n->group && !n->exported) {
    Group* g = n->group.get();
    LeaveGroup(n);
    if (g->members.empty() && g->listed) {
      g->listed = false;
      groups_.erase(g->it);
    }
  }
  if (n->complete && !n->exported) {
    --held_spans_;
    held_bytes_ -= n->bytes;
  }
  if (n->in_order) order_.erase(n->order_it);
  nodes_.erase(n->key);
}

void Stitcher::EmitStandalone(model::Span&& span) {
  unannounced_->Add();
  emit_(std::move(span));
}

}  // namespace kspan::correlator
