#include "conntrack/conn_tracker.h"

#include <algorithm>
#include <vector>

namespace kspan::conntrack {

using events::Direction;
using events::Role;
using protocols::Detection;
using protocols::ProtocolSpec;

namespace {

// A TLS record header: content type change_cipher_spec/alert/handshake/application_data,
// protocol version 3.x (SSL 3.0 to TLS 1.3 all say 3.1-3.3 here), a length a record can
// have. Plain HTTP never starts so (its first byte is a letter).
bool LooksLikeTlsRecord(std::string_view d) {
  if (d.size() < 5) return false;
  const auto type = static_cast<uint8_t>(d[0]);
  const auto major = static_cast<uint8_t>(d[1]);
  const auto minor = static_cast<uint8_t>(d[2]);
  const size_t len = (static_cast<uint8_t>(d[3]) << 8) | static_cast<uint8_t>(d[4]);
  return type >= 0x14 && type <= 0x17 && major == 3 && minor <= 4 && len > 0 && len <= (1 << 14) + 2048;
}

}  // namespace

ConnTracker::ConnTracker(TrackerOptions options, metrics::Registry* m, TrackerSinks sinks)
    : options_(std::move(options)), sinks_(std::move(sinks)), local_(m, &sinks_, &protocol_counters_) {
  protocol_options_.http1 = options_.http;
  protocol_options_.sql = options_.sql;
  opened_ = m->GetCounter("kspan_connections_total");
  missing_open_ = m->GetCounter("kspan_connections_missing_open_total");
  evicted_idle_ = m->GetCounter("kspan_connections_evicted_total", {{"reason", "idle"}});
  evicted_full_ = m->GetCounter("kspan_connections_evicted_total", {{"reason", "table_full"}});
  not_http_ = m->GetCounter("kspan_connections_unrecognised_total");
  gaps_ = m->GetCounter("kspan_stream_gaps_total");
  bytes_ignored_ = m->GetCounter("kspan_bytes_ignored_total");
  protocol_counters_.reserve(protocols::Protocols().size());
  for (const ProtocolSpec& spec : protocols::Protocols()) protocol_counters_.emplace_back(m, spec.name);
  tls_plaintext_conns_ = m->GetCounter("kspan_tls_connections_total", {{"plaintext", "captured"}});
  tls_ciphertext_conns_ = m->GetCounter("kspan_tls_connections_total", {{"plaintext", "not_captured"}});
  tls_ciphertext_bytes_ = m->GetCounter("kspan_tls_ciphertext_bytes_ignored_total");
  tls_unbound_dropped_ = m->GetCounter("kspan_tls_plaintext_dropped_total", {{"reason", "socket_unknown"}});
}

ConnTracker::~ConnTracker() = default;

ConnTracker::Conn& ConnTracker::Create(const events::ConnKey& key, uint64_t now_ns) {
  if (conns_.size() >= options_.max_connections) EvictOldest();
  auto [it, inserted] = conns_.try_emplace(key);
  Conn& c = it->second;
  if (inserted) by_pid_[key.pid].push_back(key);
  c.info.key = key;
  c.last_activity_ns = now_ns;
  opened_->Add();
  return c;
}

ConnTracker::ConnMap::iterator ConnTracker::Erase(ConnMap::iterator it) {
  held_total_ -= it->second.held_bytes;
  parse_held_total_ -= it->second.parse_held;
  auto p = by_pid_.find(it->first.pid);
  if (p != by_pid_.end()) {
    auto& keys = p->second;
    auto k = std::find(keys.begin(), keys.end(), it->first);
    if (k != keys.end()) {
      *k = keys.back();
      keys.pop_back();
    }
    if (keys.empty()) by_pid_.erase(p);
  }
  return conns_.erase(it);
}

void ConnTracker::OnOpen(const events::ConnOpenEvent& e) {
  if (LocalChannels::Owns(e.kind)) {
    local_.OnOpen(e);
    return;
  }
  auto it = conns_.find(e.key);
  if (it != conns_.end()) {
    // Same generation twice cannot happen; be safe and start over (its close was lost).
    Finish(it->second, nullptr, protocols::Unanswered::kNotCaptured);
    Erase(it);
  }
  Conn& c = Create(e.key, e.ts_ns);
  c.info.role = e.role;
  c.info.tuple = e.tuple;
  c.info.tuple_known = true;
  c.saw_start = !e.midstream;
  if (c.saw_start) {
    c.info.open_ns = e.ts_ns;
    c.info.open_tid = e.tid;
    c.info.open_turn = e.turn;
  }
}

void ConnTracker::OnData(const events::DataEvent& e) {
  if (e.unbound) {
    HoldUnbound(e);
    return;
  }
  auto it = conns_.find(e.key);
  if (it == conns_.end()) {
    // Not a TCP connection of ours: an agent's local channel or stdio (looked up only
    // now: most events are TCP), else a TCP connection whose open event was lost.
    if (local_.OnData(e)) return;
    // The open event was lost (ring buffer full): track it without a tuple.
    missing_open_->Add();
    Conn& c = Create(e.key, e.exit_ns);
    c.info.role = e.role;
    it = conns_.find(e.key);
  }
  Conn& c = it->second;
  c.last_activity_ns = e.exit_ns;
  if (e.tls && !c.info.tls) StartTls(c);
  if (!e.tls && (c.info.tls || c.protocol == Protocol::kTlsCiphertext)) {
    // Ciphertext: sent before the kernel knew the connection was TLS (handshake, or a
    // record read before the first SSL_read), or of a binary kspan cannot see into.
    tls_ciphertext_bytes_->Add(e.total_len);
    return;
  }
  if (!e.tls && c.protocol == Protocol::kUnknown && LooksLikeTlsRecord(e.data) &&
      (!c.saw_start || e.position == 0)) {
    c.protocol = Protocol::kTlsCiphertext;
    held_total_ -= c.held_bytes;
    c.held.clear();
    c.held_bytes = 0;
    tls_ciphertext_bytes_->Add(e.total_len);
    if (sinks_.on_ciphertext) sinks_.on_ciphertext(c.info);
    return;
  }
  DirectionAccount& acct = e.direction == Direction::kEgress ? c.egress : c.ingress;
  acct.bytes_seen += e.total_len;
  acct.end = std::max(acct.end, e.position + e.total_len);
  acct.start = std::min(acct.start, e.position);

  const bool egress = e.direction == Direction::kEgress;
  const ChunkView chunk{egress,    e.position, e.data, e.total_len, egress ? e.enter_ns : e.exit_ns,
                        e.exit_ns, e.tid,      e.turn};
  if (c.protocol == Protocol::kDetected) {
    Feed(c, chunk);  // the common case: no copy here, the stream copies what it keeps
    return;
  }
  if (c.protocol == Protocol::kOther) {
    bytes_ignored_->Add(e.total_len);
    return;
  }
  // Undecided: hold a copy (the event's bytes live only as long as this call).
  c.held.push_back({chunk, std::string(e.data)});
  c.held_bytes += e.data.size();
  held_total_ += e.data.size();
  if (!Detect(c)) return;
  // Decided: replay what was held, in arrival order (the stream reorders by position).
  for (const HeldChunk& h : c.held) {
    if (c.protocol == Protocol::kDetected) {
      Feed(c, h.View());
    } else {
      bytes_ignored_->Add(h.meta.total_len);
    }
  }
  c.held.clear();
  held_total_ -= c.held_bytes;
  c.held_bytes = 0;
}

void ConnTracker::StartTls(Conn& c) {
  c.info.tls = true;
  c.protocol = Protocol::kUnknown;
  c.parser.reset();
  c.info.protocol = {};
  c.info.callee_spans = true;
  held_total_ -= c.held_bytes;
  c.held.clear();
  c.held_bytes = 0;
  c.detect_attempts = 0;
  c.saw_start = true;  // the plaintext streams start at 0
  c.egress = {};
  c.ingress = {};
  tls_plaintext_conns_->Add();
}

void ConnTracker::HoldUnbound(const events::DataEvent& e) {
  const auto key = std::make_pair(e.key.pid, e.key.generation);
  Unbound& u = unbound_[key];
  if (e.position == 0 && !u.writes.empty()) {
    // The kernel starts counting anew when earlier writes never found their socket (a
    // later turn): those will never be placed.
    for (const UnboundWrite& w : u.writes) tls_unbound_dropped_->Add(w.meta.total_len);
    unbound_total_ -= u.bytes;
    u = {};
  }
  if (u.writes.empty()) u.first_ns = e.exit_ns;
  if (u.bytes + e.data.size() > options_.max_unbound_bytes ||
      unbound_total_ + e.data.size() > options_.max_unbound_bytes_total) {
    tls_unbound_dropped_->Add(e.total_len);
    return;
  }
  UnboundWrite w{e, std::string(e.data)};
  w.meta.data = {};
  u.writes.push_back(std::move(w));
  u.bytes += e.data.size();
  unbound_total_ += e.data.size();
}

void ConnTracker::OnTlsBind(const events::TlsBindEvent& e) {
  auto it = unbound_.find({e.key.pid, e.ssl});
  if (it == unbound_.end()) return;
  Unbound u = std::move(it->second);
  unbound_.erase(it);
  unbound_total_ -= u.bytes;
  for (UnboundWrite& w : u.writes) {
    if (w.meta.position >= e.bytes) {  // not among the bytes placed: from another turn
      tls_unbound_dropped_->Add(w.meta.total_len);
      continue;
    }
    events::DataEvent d = w.meta;
    d.key = e.key;
    d.position = e.position + w.meta.position;
    d.unbound = false;
    d.data = w.bytes;
    OnData(d);
  }
}

void ConnTracker::ExpireUnbound(uint64_t now_ns) {
  for (auto it = unbound_.begin(); it != unbound_.end();) {
    if (now_ns > it->second.first_ns + options_.unbound_timeout_ns) {
      for (const UnboundWrite& w : it->second.writes) tls_unbound_dropped_->Add(w.meta.total_len);
      unbound_total_ -= it->second.bytes;
      it = unbound_.erase(it);
    } else {
      ++it;
    }
  }
}

void ConnTracker::Feed(Conn& c, const ChunkView& h) {
  c.parser->AddData({.egress = h.egress,
                     .position = h.position,
                     .data = h.data,
                     .total_len = h.total_len,
                     .first_ns = h.first_ns,
                     .last_ns = h.last_ns,
                     .tid = h.tid,
                     .turn = h.turn});
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(c.info.key);
  }
}

void ConnTracker::DrainPending() {
  ++drain_round_;
  auto drain = [this](const events::ConnKey& key) {
    auto it = conns_.find(key);  // gone already if it closed in this batch
    if (it == conns_.end() || it->second.drained_in == drain_round_ || !it->second.parser) return false;
    it->second.dirty = false;
    it->second.drained_in = drain_round_;
    Drain(it->second);
    return true;
  };
  std::vector<events::ConnKey> drained;
  drained.reserve(dirty_.size());
  for (const auto& key : dirty_) {
    if (drain(key)) drained.push_back(key);
  }
  for (const auto& key : previous_) drain(key);  // second cycle: no new bytes needed
  dirty_.clear();
  previous_.swap(drained);
  if (parse_held_total_ > options_.max_parse_bytes_total) EvictParseHeld();
  local_.DrainPending();
}

void ConnTracker::NoteParseHeld(Conn& c) {
  const size_t now = c.parser ? c.parser->Held().bytes : 0;
  parse_held_total_ = parse_held_total_ - c.parse_held + now;
  c.parse_held = now;
}

void ConnTracker::EvictParseHeld() {
  // Oldest first: a slow client's half-written head has been held longest; fresh traffic
  // moves through within a drain or two.
  std::vector<std::pair<uint64_t, events::ConnKey>> by_age;
  for (const auto& [key, c] : conns_) {
    if (c.parse_held > 0) by_age.emplace_back(c.parser->Held().oldest_ns, key);
  }
  std::sort(by_age.begin(), by_age.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const size_t target = options_.max_parse_bytes_total / 4 * 3;
  for (const auto& [oldest, key] : by_age) {
    if (parse_held_total_ <= target) break;
    Conn& c = conns_.find(key)->second;
    ProtocolCounters& counters = protocol_counters_[c.proto];
    counters.bytes_dropped->Add(c.parser->DropHeld());
    counters.evicted->Add();
    NoteParseHeld(c);
  }
}

std::string_view ConnTracker::ContiguousStart(const Conn& c, bool egress) {
  // Held chunks come in arrival order, which may not be stream order (other CPUs).
  std::vector<const HeldChunk*> dir;
  for (const HeldChunk& h : c.held) {
    if (h.meta.egress == egress) dir.push_back(&h);
  }
  std::sort(dir.begin(), dir.end(),
            [](const HeldChunk* a, const HeldChunk* b) { return a->meta.position < b->meta.position; });
  detect_scratch_.clear();
  for (const HeldChunk* h : dir) {
    if (h->meta.position != detect_scratch_.size()) break;  // a gap, or an overlap: stop here
    detect_scratch_ += h->bytes;
    if (h->bytes.size() < h->meta.total_len) break;  // the rest was not captured
  }
  return detect_scratch_;
}

// Looks at the first bytes of the request direction and asks each registered TCP
// protocol, in registry order, whether they start one of its requests. Requests start a
// stream, so for a connection seen from its start the chunk at position 0 decides (chunks
// that beat it through the ring buffer wait, held); one joined mid-stream may be in the
// middle of a body, so a few chunks are tried in arrival order.
bool ConnTracker::Detect(Conn& c) {
  const Role role = c.info.role;
  auto request_direction = [role](bool egress) {
    return role == Role::kUnknown || (role == Role::kClient && egress) || (role == Role::kServer && !egress);
  };
  // The first protocol that matches, or nullptr; `*more` when one needs more bytes.
  auto match = [](std::string_view bytes, bool* more) -> const ProtocolSpec* {
    for (const ProtocolSpec& spec : protocols::Protocols()) {
      if (!(spec.transports & protocols::kTcp) || !spec.detect) continue;
      const Detection d = spec.detect(bytes);
      if (d == Detection::kMatch) return &spec;
      if (d == Detection::kNeedMoreData) *more = true;
    }
    return nullptr;
  };
  auto decide = [&](const ProtocolSpec& spec, bool egress) {
    if (role == Role::kUnknown) {
      c.info.role = egress ? Role::kClient : Role::kServer;
      c.info.role_inferred = true;
    }
    c.protocol = Protocol::kDetected;
    c.proto = protocols::ProtocolIndex(spec);
    c.info.protocol = spec.name;
    c.info.callee_spans = spec.callee_spans;
    c.parser = spec.make(c.info.role == Role::kClient, protocol_options_);
    return true;
  };
  auto give_up = [&] {
    c.protocol = Protocol::kOther;
    not_http_->Add();
    return true;
  };
  bool more = false;
  if (c.saw_start) {
    for (const HeldChunk& held : c.held) {
      const ChunkView h = held.View();
      if (!request_direction(h.egress) || h.position != 0) continue;
      // The direction's bytes from position 0 as far as they are contiguous: a first
      // request may come in pieces ("GE", then "T / HTTP/1.1…"), one syscall each.
      const std::string_view start = ContiguousStart(c, h.egress);
      if (const ProtocolSpec* spec = match(start, &more)) return decide(*spec, h.egress);
      if (!more) return give_up();
      break;  // wait for more bytes, within the bounds below
    }
  } else {
    const ChunkView h = c.held.back().View();  // the chunk that just arrived
    if (request_direction(h.egress)) {
      if (const ProtocolSpec* spec = match(h.data, &more)) return decide(*spec, h.egress);
      if (++c.detect_attempts >= options_.max_detect_attempts) return give_up();
    }
  }
  if (c.held.size() > options_.max_detect_chunks || c.held_bytes > options_.max_detect_bytes ||
      held_total_ > options_.max_detect_bytes_total) {
    return give_up();
  }
  return false;
}

void ConnTracker::Drain(Conn& c, uint64_t ended_ns, uint64_t seen_until_ns) {
  records_.clear();
  started_.clear();
  protocols::ConnectionStats stats;
  c.parser->Drain(&started_, &records_, &stats);
  NoteParseHeld(c);
  if (sinks_.on_request) {
    for (auto& r : started_) sinks_.on_request(c.info, std::move(r));
  }
  started_.clear();
  ProtocolCounters& counters = protocol_counters_[c.proto];
  counters.Add(stats);
  for (auto& r : records_) {
    counters.records->Add();
    // Left unanswered when the connection or its process ended: waited for until then
    // (every byte seen, or the process gone); or, an answer cut by that end (a client that
    // read part of it and closed, a server whose write failed), until the connection's
    // last bytes. Bytes kspan missed say nothing of when: it ends with its request.
    if (ended_ns != 0 && r.response_missing) {
      if (r.unanswered == protocols::Unanswered::kNoResponse ||
          r.unanswered == protocols::Unanswered::kProcessExit) {
        r.given_up_ns = ended_ns;
      } else if (r.unanswered == protocols::Unanswered::kNotCaptured) {
        r.given_up_ns = seen_until_ns;
      }
    }
    if (sinks_.on_record) sinks_.on_record(c.info, std::move(r));
  }
  records_.clear();
}

void ConnTracker::Finish(Conn& c, const events::ConnCloseEvent* close, protocols::Unanswered waiting,
                         uint64_t ended_ns) {
  // Bytes the kernel moved that no event reached us for: a gap. A stream seen from its
  // start begins at 0; one joined mid-stream at the lowest position seen.
  const bool from_zero = c.saw_start;
  auto missing = [from_zero](const DirectionAccount& a, uint64_t kernel_total) {
    const uint64_t end = std::max(a.end, kernel_total);
    const uint64_t start = from_zero ? 0 : (a.start == UINT64_MAX ? end : a.start);
    return end - start > a.bytes_seen;
  };
  // Ciphertext is not accounted (it is skipped, not lost): no gap to find there.
  const bool gap =
      c.protocol != Protocol::kTlsCiphertext && (missing(c.egress, close ? close->bytes_sent : 0) ||
                                                 missing(c.ingress, close ? close->bytes_received : 0));
  if (gap) gaps_->Add();
  if (c.protocol == Protocol::kTlsCiphertext) tls_ciphertext_conns_->Add();
  if (c.parser) {
    // A clean close with every byte seen: a request still waiting was never answered.
    // With bytes missing its answer may have been among them.
    if (waiting == protocols::Unanswered::kNoResponse && gap) waiting = protocols::Unanswered::kNotCaptured;
    c.parser->Close(waiting);
    Drain(c, ended_ns, gap ? 0 : c.last_activity_ns);
  }
}

void ConnTracker::DrainProcess(uint32_t pid) {
  auto p = by_pid_.find(pid);
  if (p == by_pid_.end()) return;
  for (const auto& key : p->second) {
    auto it = conns_.find(key);
    if (it != conns_.end() && it->second.dirty && it->second.parser) Drain(it->second);
  }
}

void ConnTracker::OnClose(const events::ConnCloseEvent& e) {
  auto it = conns_.find(e.key);
  if (it == conns_.end()) {
    // A local channel's close gives out its finished calls now, before this batch's drain:
    // the process's TCP bytes of this batch first (an agent's LLM answer read before the
    // tool run it asked for, then the pipe closed), so records leave in the order of their
    // bytes.
    DrainProcess(e.key.pid);
    local_.OnClose(e);
    return;
  }
  Finish(it->second, &e, protocols::Unanswered::kNoResponse, e.ts_ns);
  Erase(it);
}

void ConnTracker::OnProcessExit(uint32_t pid, uint64_t ts_ns) {
  DrainProcess(pid);  // as at a local channel's close (OnClose)
  local_.OnProcessExit(pid, ts_ns);
  auto p = by_pid_.find(pid);
  if (p == by_pid_.end()) return;
  const std::vector<events::ConnKey> keys = p->second;  // Erase edits the index
  for (const auto& key : keys) {
    auto it = conns_.find(key);
    if (it == conns_.end()) continue;
    Finish(it->second, nullptr, protocols::Unanswered::kProcessExit, ts_ns);
    Erase(it);
  }
}

void ConnTracker::Tick(uint64_t now_ns) {
  ExpireUnbound(now_ns);
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (now_ns > it->second.last_activity_ns + options_.idle_timeout_ns) {
      evicted_idle_->Add();
      Finish(it->second, nullptr, protocols::Unanswered::kEvicted);
      it = Erase(it);
    } else {
      ++it;
    }
  }
}

void ConnTracker::EvictOldest() {
  // Evict the least recently active eighth: O(n) once per n/8 insertions.
  std::vector<std::pair<uint64_t, events::ConnKey>> by_age;
  by_age.reserve(conns_.size());
  for (const auto& [key, c] : conns_) by_age.emplace_back(c.last_activity_ns, key);
  const size_t n = std::max<size_t>(1, by_age.size() / 8);
  std::nth_element(by_age.begin(), by_age.begin() + static_cast<long>(n - 1), by_age.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < n; ++i) {
    auto it = conns_.find(by_age[i].second);
    if (it == conns_.end()) continue;
    evicted_full_->Add();
    Finish(it->second, nullptr, protocols::Unanswered::kEvicted);
    Erase(it);
  }
}

void ConnTracker::CloseAll() {
  local_.CloseAll();
  for (auto& [key, c] : conns_) Finish(c, nullptr, protocols::Unanswered::kShutdown);
  conns_.clear();
  by_pid_.clear();
  dirty_.clear();
  previous_.clear();
  held_total_ = 0;
}

}  // namespace kspan::conntrack
