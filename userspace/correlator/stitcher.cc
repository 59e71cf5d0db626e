#include "correlator/stitcher.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <new>
#include <utility>

#include "common/text_hash.h"

namespace kspan::correlator {

namespace {

using Kind = NodeKind;

// "address#port" at `out` (room for the address and 6 bytes); returns the end.
char* PutEndpointKey(char* out, const events::Endpoint& e) {
  std::memcpy(out, e.address.data(), e.address.size());
  out += e.address.size();
  *out++ = '#';
  return std::to_chars(out, out + 5, e.port).ptr;
}

// A connection as its server end sees it: "local|remote". A CLIENT registers under its
// mirror image, so the SERVER of the same connection finds it with its own view. Made for
// every request: written on the stack, then one assignment.
void ServerViewKey(const events::Endpoint& server_side, const events::Endpoint& client_side,
                   std::string* key) {
  const size_t most = server_side.address.size() + client_side.address.size() + 13;  // 2 x "#65535", "|"
  char stack[160];
  std::string heap;
  char* buf = stack;
  if (most > sizeof stack) {
    heap.resize(most);
    buf = heap.data();
  }
  char* end = PutEndpointKey(buf, server_side);
  *end++ = '|';
  end = PutEndpointKey(end, client_side);
  key->assign(buf, static_cast<size_t>(end - buf));
}

TraceWindowOptions WindowOptions(const StitcherOptions& o) {
  return {.window_ns = o.window_ns,
          .max_hold_ns = o.max_hold_ns,
          .max_held_spans = o.max_held_spans,
          .max_held_bytes = o.max_held_bytes,
          // An exported node stays while a decision may still name it (see Stale).
          .retire_after_ns = 4 * o.reorder_slack_ns,
          .decide = o.decide};
}

}  // namespace

void StitchNode::Reset() {
  static_cast<StitchNodeScalars&>(*this) = StitchNodeScalars();
  pair_key.clear();
  traceparent_raw = std::string();
  tracestate = std::string();
  links.clear();
  pending_links.clear();
  children.clear();
  group = nullptr;
  // Destroyed and made anew in place: the same state as assigning a new Span, without
  // moving each of its members over from a temporary (an exported span is empty already).
  span.~Span();
  new (&span) model::Span();
}

Stitcher::Stitcher(StitcherOptions options, metrics::Registry* m, Emit emit)
    : options_(options),
      emit_(emit),
      window_(WindowOptions(options), m, std::move(emit)),
      sessions_(options.max_sessions, m, &window_, [this](StitchNode* n) { Erase(n); }) {
  auto parent = [m](const char* rule) {
    return m->GetCounter("kspan_stitch_parents_total", {{"rule", rule}});
  };
  parent_traceparent_ = parent("traceparent");
  parent_same_host_ = parent("same_host");
  parent_same_host_late_ = parent("same_host_late");
  parent_thread_ = parent("thread");
  parent_event_loop_ = parent("event_loop");
  parent_loop_turn_ = parent("loop_turn");
  parent_exec_ = parent("exec");
  parent_wire_ = parent("wire");
  wire_mismatch_ =
      m->GetCounter("kspan_carrier_contexts_total", {{"side", "client"}, {"outcome", "trace_mismatch"}});
  roots_ = m->GetCounter("kspan_stitch_roots_total");
  ambiguous_ = m->GetCounter("kspan_stitch_ambiguous_total");
  unannounced_ = m->GetCounter("kspan_stitch_unannounced_total");
  forgotten_ = m->GetCounter("kspan_stitch_forgotten_total");
  links_resolved_ = m->GetCounter("kspan_stitch_links_total", {{"outcome", "resolved"}});
  links_lost_ = m->GetCounter("kspan_stitch_links_total", {{"outcome", "lost"}});
}

Stitcher::~Stitcher() {
  nodes_.ForEach([](Node* n) { delete n; });
  for (Node* n : spare_) delete n;
}

size_t Stitcher::nodes() const {
  return nodes_.size();
}

Stitcher::Node* Stitcher::NewNode(const NodeKey& key) {
  while (nodes_.size() >= options_.max_nodes && order_head_) {
    Node* oldest = order_head_;
    if (oldest->complete && oldest->group && !oldest->exported) {
      window_.Flush(oldest->group.get(), FlushReason::kMaxNodes);
    } else if (!oldest->exported) {
      forgotten_->Add();
    }
    Erase(oldest);
  }
  if (Node* old = nodes_.Find(key)) Erase(old);  // the same request again: keep the newer
  Node* n = TakeNode();
  nodes_.Insert(key, n);
  n->key = key;
  n->serial = ++next_serial_;
  n->arrival_ns = now_ns_;  // set by Advance; raised to the start time in OnRequest
  n->span_id = model::SpanId::Random();
  n->order_prev = order_tail_;
  (order_tail_ ? order_tail_->order_next : order_head_) = n;
  order_tail_ = n;
  undecided_.push_back(n);
  return n;
}

Stitcher::Node* Stitcher::TakeNode() {
  if (spare_.empty()) return new Node();
  Node* n = spare_.back();
  spare_.pop_back();
  return n;
}

void Stitcher::Recycle(Node* n) {
  if (spare_.size() >= kMaxSpareNodes) {
    delete n;
    return;
  }
  n->Reset();  // as a new node, keeping the room of its key and lists
  spare_.push_back(n);
}

void Stitcher::OnRequest(RequestSeen&& r) {
  Node* n = NewNode({r.conn, r.seq});
  n->kind = r.server ? Kind::kServer : Kind::kClient;
  n->pid = r.conn.pid;
  n->tid = r.timing.tid;
  n->start_ns = r.timing.start_ns;
  n->arrival_ns = std::max(n->arrival_ns, r.timing.start_ns);
  n->tls = r.tls;
  n->open_ns = r.open_ns;
  if (r.server) {
    // What the thread read: the handler runs after the request's last byte.
    NoteActivity(r.timing.tid, r.timing.turn, r.timing.start_ns, n->key);
    NoteActivity(r.timing.end_tid, r.timing.end_turn, r.timing.end_ns, n->key);
  } else if (r.open_ns != 0 && r.seq == 1) {
    n->act_tid = r.open_tid;
    n->act_turn = r.open_turn;
    n->act_ns = r.open_ns;
  } else {
    n->act_tid = r.timing.tid;
    n->act_turn = r.timing.turn;
    n->act_ns = r.timing.start_ns;
  }
  if (r.tuple_known) {
    if (r.server) {
      ServerViewKey(r.tuple.local, r.tuple.remote, &n->pair_key);
    } else {
      ServerViewKey(r.tuple.remote, r.tuple.local, &n->pair_key);
    }
    if (!r.pair_key.empty()) {
      n->pair_key += "#" + r.pair_key;
      n->pair_key_one_exchange = true;
    }
  } else {
    n->pair_key = std::move(r.pair_key);
  }
  n->pair_hash = HashText(0, n->pair_key);  // once a request (the indexes hash nothing)
  if (!r.traceparent.empty()) {
    n->incoming = model::ParseTraceParent(r.traceparent);
    if (n->incoming) {
      n->traceparent_raw = std::move(r.traceparent);
      // Only after a valid traceparent (W3C: "MUST NOT attempt to parse tracestate"
      // otherwise); an invalid list is dropped whole.
      const std::string_view state = r.tracestate;
      n->tracestate = model::ParseTraceState({&state, 1}).value_or("");
    }
  }
}

void Stitcher::OnSpan(const RequestDone& d, model::Span&& span) {
  Node* n = nodes_.Find({d.conn, d.seq});
  if (!n || n->complete) {
    links_lost_->Add(d.links.size());
    EmitStandalone(std::move(span));
    return;
  }
  if (!d.links.empty()) {
    n->pending_links = d.links;
    links_pending_.push_back(n->key);
  }
  // The pipeline saw it end in the batch being drained: the Advance that follows gives
  // that batch's clock (now_ns_ is still the previous batch's, maybe long before).
  n->completed_seen_ns = now_ns_;
  completed_this_batch_.push_back(n->key);
  n->response_tid = d.response.tid;
  n->answer_ns = d.response.start_ns;
  n->unanswered = d.unanswered;
  if (n->kind == Kind::kClient) {
    // A response read is an event a loop turn continues (rule 4).
    NoteActivity(d.response.tid, d.response.turn, d.response.start_ns, n->key);
    NoteActivity(d.response.end_tid, d.response.end_turn, d.response.end_ns, n->key);
  }
  window_.Complete(n, std::move(span));
}

void Stitcher::OnExec(const ExecSeen& e, model::Span&& span) {
  // exec again (a shell that execs its command): the old image's span ends here.
  sessions_.EndExec(e.pid, e.ts_ns);
  // Keyed apart from connections: fd -2 never names a socket.
  Node* n = NewNode({{e.pid, -2, e.ts_ns}, 0});
  sessions_.SetExec(e.pid, n);
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
  return sessions_.TracksExec(pid);
}

void Stitcher::OnProcessEnd(uint32_t pid, uint64_t ts_ns, std::vector<model::Attribute> attributes,
                            std::shared_ptr<const model::Resource> resource) {
  sessions_.OnProcessEnd(pid, ts_ns, std::move(attributes), std::move(resource));
}

bool Stitcher::OnSession(uint32_t pid, model::Span&& span) {
  if (sessions_.HasSession(pid)) return true;
  if (!sessions_.Admit()) return false;
  // Keyed apart from connections and exec spans: fd -3 never names a socket. Not in
  // order_: a session is as old as its process and must not be the first evicted.
  const NodeKey key{{pid, -3, span.start_time_unix_nano}, ++session_seq_};
  if (Node* old = nodes_.Find(key)) Erase(old);  // not reached: session_seq_ makes keys unique
  Node* s = TakeNode();
  nodes_.Insert(key, s);
  s->key = key;
  s->serial = ++next_serial_;
  s->kind = Kind::kSession;
  s->pid = s->tid = pid;
  s->start_ns = span.start_time_unix_nano;
  s->arrival_ns = now_ns_;
  s->span_id = model::SpanId::Random();
  s->in_order = false;
  s->span = std::move(span);
  sessions_.Open(s);  // adopts the process's held root calls
  return true;
}

bool Stitcher::HasSession(uint32_t pid) const {
  return sessions_.HasSession(pid);
}

void Stitcher::EndSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish) {
  sessions_.EndSession(pid, ts_ns, finish);
}

std::vector<uint32_t> Stitcher::OpenSessions() const {
  return sessions_.OpenSessions();
}

void Stitcher::LoseSession(uint32_t pid, uint64_t ts_ns, const FinishSession& finish) {
  sessions_.LoseSession(pid, ts_ns, finish);
}

void Stitcher::CutSessions(uint64_t ts_ns, const FinishSession& finish) {
  sessions_.CutSessions(ts_ns, finish);
}

void Stitcher::Advance(uint64_t now_ns) {
  now_ns_ = now_ns;
  const bool in_order = completed_unarmed_.empty() || completed_unarmed_.back().stamp_ns <= now_ns;
  for (const NodeKey& key : completed_this_batch_) {
    Node* n = nodes_.Find(key);
    if (!n) continue;  // gone before its stamp: nothing to arm
    n->completed_seen_ns = now_ns;
    if (in_order) {
      completed_unarmed_.push_back({now_ns, key, n->serial});
      ++n->unarmed_entries;
    } else {
      completed_unarmed_late_.push_back(key);
    }
  }
  completed_this_batch_.clear();
  window_.SetNow(now_ns);
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
  // A node seen complete a reorder delay ago has now been through the decisions of every
  // request that arrived before it ended (they were due in this Advance at the latest):
  // from here on it may go stale.
  while (!completed_unarmed_.empty() &&
         completed_unarmed_.front().stamp_ns + options_.reorder_slack_ns <= now_ns) {
    const Unarmed u = completed_unarmed_.front();
    completed_unarmed_.pop_front();
    Node* n = nodes_.Find(u.key);
    if (!n || n->serial != u.serial) continue;  // erased: its key went to the late list
    --n->unarmed_entries;
    if (n->completed_seen_ns + options_.reorder_slack_ns > now_ns) {
      completed_unarmed_late_.push_back(u.key);  // stamped again since
      continue;
    }
    n->retire_armed = true;
  }
  std::erase_if(completed_unarmed_late_, [&](const NodeKey& key) {
    Node* n = nodes_.Find(key);
    if (!n) return true;
    if (n->completed_seen_ns + options_.reorder_slack_ns > now_ns) return false;
    n->retire_armed = true;
    return true;
  });
  ResolveLinks();
  // Exported nodes retire (erased when due), and traces that are due leave.
  window_.ExportDue([this](const NodeKey& key) {
    Node* n = nodes_.Find(key);
    if (n && n->exported) Erase(n);
  });
}

void Stitcher::FlushAll() {
  std::sort(undecided_.begin(), undecided_.end(),
            [](const Node* a, const Node* b) { return a->start_ns < b->start_ns; });
  std::vector<Node*> pending = std::move(undecided_);
  undecided_.clear();
  for (Node* n : pending) Decide(n);
  ResolveLinks();
  // Sessions have no end but this one (the pipeline cuts them first, with their output).
  CutSessions(now_ns_, nullptr);
  // Still running at shutdown (a process with an exec span that outlives kspan): no end to
  // report, so no span; counted.
  nodes_.ForEach([this](const Node* node) {
    if (node->decided && node->group && !node->complete) forgotten_->Add();
  });
  window_.FlushAll();
}

void Stitcher::Decide(Node* n) {
  n->decided = true;
  switch (n->kind) {
    case Kind::kServer: DecideServer(n); break;
    case Kind::kClient: DecideClient(n); break;
    case Kind::kSession:  // decided when first needed (SessionFor), never queued
      sessions_.Place(n);
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
        Node* exec = sessions_.ExecOf(n->exec_parent_pid);
        if (Node* session = sessions_.SessionFor(n->exec_parent_pid, n->start_ns)) {
          parent = session;  // a command, tool server or sub-agent an agent started
        } else if (exec && exec->decided && exec->group && !exec->complete) {
          parent = exec;
        }
      }
      if (!parent) {
        // Not traced work (or ambiguous): no span. Erased at once; the process may still
        // be a context for nothing.
        Erase(n);
        return;
      }
      parent_exec_->Add();
      window_.Join(n, parent, parent->group, parent->span_id);
      n->in_process_parent = false;
      break;
    }
  }
  window_.Placed(n);
}

std::vector<Stitcher::Node*>& Stitcher::ListOf(PairIndex* index, const Node* n) {
  auto it = index->find(PairOf(n));
  if (it == index->end()) it = index->emplace(PairKey{n->pair_key, n->pair_hash}, std::vector<Node*>()).first;
  return it->second;
}

bool Stitcher::SameExchange(const Node* client, const Node* server) const {
  if (client->start_ns > server->start_ns) return false;
  // Still going when this request came, or a key of one exchange (an HTTP/2 stream): its
  // client may end before the server's request did when its answer was not captured.
  if (!client->complete || client->end_ns >= server->start_ns || client->pair_key_one_exchange) return true;
  // Over before this request came: an earlier exchange on the connection. Unless no answer
  // was seen (it read part of one and closed, gave up waiting, or the answer was lost): its
  // end may be its request's, and the exchange is the connection's until its next request.
  if (!client->unanswered) return false;
  auto it = clients_by_tuple_.find(PairOf(client));
  if (it == clients_by_tuple_.end()) return true;
  for (const Node* next : it->second) {
    if (next != client && next->start_ns > client->start_ns && next->start_ns <= server->start_ns)
      return false;
  }
  return true;
}

Stitcher::Node* Stitcher::PairedClient(const Node* server) {
  if (server->pair_key.empty()) return nullptr;
  auto it = clients_by_tuple_.find(PairOf(server));
  if (it == clients_by_tuple_.end()) return nullptr;
  auto& v = it->second;
  v.erase(std::remove_if(v.begin(), v.end(), [this](const Node* c) { return Stale(c); }), v.end());
  if (v.empty()) {
    clients_by_tuple_.erase(it);
    return nullptr;
  }
  for (Node* c : v) {
    if (!SameExchange(c, server)) continue;
    // Paired now: off the index (MarkPaired's, without a second look-up).
    c->paired = true;
    std::erase(v, c);
    return c;
  }
  return nullptr;
}

// A paired client is no one else's peer: off the pairing index, so the index holds the
// unpaired only and PairedClient does not walk every exchange of a busy connection. The
// entry stays while empty (the connection's next client comes soon); Erase drops it.
void Stitcher::MarkPaired(Node* client) {
  client->paired = true;
  if (auto it = clients_by_tuple_.find(PairOf(client)); it != clients_by_tuple_.end()) {
    std::erase(it->second, client);
  }
}

void Stitcher::DecideServer(Node* n) {
  Node* client = PairedClient(n);
  if (n->incoming) {
    if (client && client->traceparent_raw == n->traceparent_raw && client->group) {
      parent_same_host_->Add();
      window_.Join(n, client, client->group, client->span_id);
    } else {
      parent_traceparent_->Add();
      window_.Join(n, nullptr,
                   window_.NewGroup(n->incoming->trace_id, n->incoming->flags, n->tracestate, true),
                   n->incoming->parent_id);
    }
  } else if (client && client->group) {
    parent_same_host_->Add();
    window_.Join(n, client, client->group, client->span_id);
  } else if (const std::optional<model::TraceParent> wire = WireContextOf(n);
             wire && wire->parent_id.IsValid()) {
    // Decided from the trace id like a root (no sampled flag travels: docs/sampling.md),
    // so both hosts keep or drop the trace alike.
    parent_wire_->Add();
    window_.Join(n, nullptr, window_.NewGroup(wire->trace_id, 1, ""), wire->parent_id);
  } else {
    // A root. When the request came without a context and the kernel started a trace for
    // it (a fresh report: the trace id its calls carry to the hosts they reach), the root
    // takes that trace, so the trace continues there; else a new one.
    roots_->Add();
    window_.Join(n, nullptr, window_.NewGroup(wire ? wire->trace_id : model::TraceId::Random(), 1, ""),
                 model::SpanId{});
    if (!n->pair_key.empty()) {
      ListOf(&root_servers_by_tuple_, n).push_back(n);
      n->in_root_servers = true;
    }
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
  Node* read = nodes_.Find(last->node);
  if (!read) return nullptr;
  // A request read: that request. A response read: the request its call was made for.
  Node* owner = read->kind == Kind::kServer ? read : (read->in_process_parent ? read->parent : nullptr);
  if (owner && std::find(candidates.begin(), candidates.end(), owner) != candidates.end()) return owner;
  return nullptr;
}

// A complete CLIENT stays pairable 4 reorder delays past its end, counted from when the
// pipeline saw it end if that was later: the server's record of the same exchange may be
// drained in the same batch (HTTP/2 streams come whole), and a pipeline running behind
// must not retire the client before it decides that server. Nor may a pipeline that
// stalls between two batches (a busy host: 250 ms with 4000 HTTP/2 streams at once): a
// node is stale only once an Advance a reorder delay after its end was seen has decided
// what arrived before it (retire_armed).
bool Stitcher::Stale(const Node* n) const {
  return n->complete && n->retire_armed &&
         std::max(n->end_ns, n->completed_seen_ns) + 4 * options_.reorder_slack_ns < now_ns_;
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

std::optional<model::TraceParent> Stitcher::WireContextOf(const Node* n) const {
  if (!options_.wire_context || n->key.conn.fd < 0) return std::nullopt;
  const Node* next = nodes_.Find({n->key.conn, n->key.seq + 1});
  return options_.wire_context({.pid = n->pid,
                                .fd = n->key.conn.fd,
                                .tid = n->tid,
                                .start_ns = n->start_ns,
                                .server = n->kind == Kind::kServer,
                                .tls = n->tls,
                                .first = n->key.seq == 1,
                                .open_ns = n->open_ns,
                                .answer_ns = n->answer_ns,
                                .next_start_ns = next ? next->start_ns : 0});
}

void Stitcher::DecideClient(Node* n) {
  if (!n->pair_key.empty()) ListOf(&clients_by_tuple_, n).push_back(n);
  // Before it is placed: no child has named its span id yet (they are decided after it).
  const std::optional<model::TraceParent> wire = n->incoming ? std::nullopt : WireContextOf(n);
  if (wire) n->span_id = wire->parent_id;
  PlaceClient(n, wire ? wire->trace_id : model::TraceId::Random());
  if (wire && n->group && n->group->trace_id != wire->trace_id) wire_mismatch_->Add();
  AdoptLateServer(n);
}

void Stitcher::AdoptLateServer(Node* client) {
  if (client->pair_key.empty() || !client->group || client->paired) return;
  auto it = root_servers_by_tuple_.find(PairOf(client));
  if (it == root_servers_by_tuple_.end()) return;
  auto& v = it->second;
  for (auto at = v.begin(); at != v.end(); ++at) {
    Node* server = *at;
    // The client's own exchange on the connection (PairedClient's test, from the other
    // side).
    if (server->exported || !SameExchange(client, server)) continue;
    if (!window_.MoveUnder(server, client)) return;
    server->in_root_servers = false;
    v.erase(at);
    if (v.empty()) root_servers_by_tuple_.erase(it);
    MarkPaired(client);
    parent_same_host_late_->Add();
    return;
  }
}

void Stitcher::PlaceClient(Node* n, const model::TraceId& fresh) {
  if (n->incoming) {
    parent_traceparent_->Add();
    window_.Join(n, nullptr, window_.NewGroup(n->incoming->trace_id, n->incoming->flags, n->tracestate, true),
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
    window_.Join(n, chosen, chosen->group, chosen->span_id);
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
    window_.Join(n, nullptr, window_.NewGroup(fresh, 1, ""), model::SpanId{});
    return;
  }
  // An agent's call outside any task: its session's.
  if (Node* session = sessions_.SessionFor(n->pid, n->start_ns)) {
    sessions_.Join(n, session);
    return;
  }
  // A process exec'd for traced work: its calls belong to that work.
  Node* e = sessions_.ExecOf(n->pid);
  if (e && e->decided && e->group && e->start_ns <= n->start_ns &&
      (!e->complete || n->start_ns <= e->end_ns)) {
    parent_exec_->Add();
    window_.Join(n, e, e->group, e->span_id);
    return;
  }
  roots_->Add();
  sessions_.NoteOrphan(n);
  window_.Join(n, nullptr, window_.NewGroup(fresh, 1, ""), model::SpanId{});
}

void Stitcher::Erase(Node* n) {
  links_lost_->Add(n->pending_links.size());
  // Its entries in completed_unarmed_ now name whatever node its key finds at each Advance.
  if (n->unarmed_entries > 0) completed_unarmed_late_.push_back(n->key);
  if (n->in_servers) {
    auto it = servers_by_pid_.find(n->pid);
    if (it != servers_by_pid_.end()) {
      auto& v = it->second;
      auto at = std::find(v.begin(), v.end(), n);  // near the front: the oldest leave first
      if (at != v.end()) v.erase(at);
      if (v.empty()) servers_by_pid_.erase(it);
    }
  } else if (n->kind == Kind::kClient && !n->pair_key.empty()) {
    auto it = clients_by_tuple_.find(PairOf(n));
    if (it != clients_by_tuple_.end()) {
      std::erase(it->second, n);
      if (it->second.empty()) clients_by_tuple_.erase(it);
    }
  }
  if (n->in_root_servers) {
    auto it = root_servers_by_tuple_.find(PairOf(n));
    if (it != root_servers_by_tuple_.end()) {
      std::erase(it->second, n);
      if (it->second.empty()) root_servers_by_tuple_.erase(it);
    }
  }
  if (!n->decided) std::erase(undecided_, n);
  if (n->root_orphan || n->kind == Kind::kExec || n->kind == Kind::kSession) sessions_.Forget(n);
  window_.Remove(n);  // out of its tree and trace, no longer held
  if (n->in_order) {
    (n->order_prev ? n->order_prev->order_next : order_head_) = n->order_next;
    (n->order_next ? n->order_next->order_prev : order_tail_) = n->order_prev;
  }
  nodes_.Erase(n->key);
  Recycle(n);
}

bool Stitcher::AddLink(const NodeKey& from, NodeLink link) {
  Node* n = nodes_.Find(from);
  if (!n || n->exported) {
    links_lost_->Add();
    return false;
  }
  if (n->pending_links.empty()) links_pending_.push_back(n->key);
  n->pending_links.push_back(std::move(link));
  return true;
}

void Stitcher::ResolveLinks() {
  // A target is placed within a reorder delay of its arrival, and a complete node waits in
  // the window at least window_ns: links are resolved before their span leaves, unless a
  // bound flushed it early.
  std::erase_if(links_pending_, [&](const NodeKey& key) {
    Node* n = nodes_.Find(key);
    if (!n) return true;  // counted when erased
    std::erase_if(n->pending_links, [&](NodeLink& l) {
      const Node* t = nodes_.Find(l.to);
      if (n->exported || !t || (t->decided && !t->group)) {
        links_lost_->Add();
        return true;
      }
      if (!t->group) return false;  // not placed yet
      n->links.push_back({.trace_id = t->group->trace_id,
                          .span_id = t->span_id,
                          .trace_state = {},
                          .attributes = std::move(l.attributes)});
      links_resolved_->Add();
      return true;
    });
    return n->pending_links.empty();
  });
}

void Stitcher::EmitStandalone(model::Span&& span) {
  unannounced_->Add();
  // A trace of one span as far as the stitcher knows: decided like any other.
  if (options_.decide) {
    const std::vector<const model::Span*> spans = {&span};
    options_.decide({.trace_id = span.trace_id,
                     .remote_parent = span.parent_span_id.IsValid(),
                     .whole = true,
                     .now_ns = now_ns_,
                     .spans = spans},
                    &span.trace_flags, &span.trace_state);
  }
  emit_(std::move(span));
}

}  // namespace kspan::correlator
