#include "carrier/wire_contexts.h"

#include <algorithm>

namespace kspan::carrier {

namespace {

bool Valid(const WireContext& c) {
  return std::any_of(c.trace_id.begin(), c.trace_id.end(), [](uint8_t b) { return b != 0; }) &&
         std::any_of(c.span_id.begin(), c.span_id.end(), [](uint8_t b) { return b != 0; });
}

uint64_t Distance(uint64_t a, uint64_t b) {
  return a > b ? a - b : b - a;
}

}  // namespace

WireContexts::WireContexts(WireContextsOptions options, metrics::Registry* m) : options_(options) {
  auto contexts = [m](const char* side, const char* outcome) {
    return m->GetCounter("kspan_carrier_contexts_total", {{"side", side}, {"outcome", outcome}});
  };
  used_client_ = contexts("client", "used");
  used_server_ = contexts("server", "used");
  fresh_server_ = contexts("server", "fresh_root");
  unmatched_client_ = contexts("client", "unmatched");
  unmatched_server_ = contexts("server", "unmatched");
  rejected_ = contexts("server", "rejected");
}

void WireContexts::AddSent(uint32_t pid, int32_t fd, uint32_t tid, uint64_t ts_ns, const WireContext& ctx) {
  Add({pid, fd, false}, tid, ts_ns, ctx);
}

void WireContexts::AddRead(uint32_t pid, int32_t fd, uint32_t tid, uint64_t ts_ns, const WireContext& ctx,
                           bool fresh) {
  Add({pid, fd, true}, tid, ts_ns, ctx, fresh);
}

void WireContexts::Add(const Key& key, uint32_t tid, uint64_t ts_ns, const WireContext& ctx, bool fresh) {
  while (held_ >= options_.max_reports && !order_.empty()) {
    const Arrival a = order_.front();
    order_.pop_front();
    DropFront(a.key, a.seq);
  }
  const uint64_t seq = next_seq_++;
  reports_[key].push_back({seq, tid, ts_ns, ctx, fresh && key.server});
  order_.push_back({seq, ts_ns, key});
  ++held_;
}

void WireContexts::DropFront(const Key& key, uint64_t seq) {
  auto it = reports_.find(key);
  if (it == reports_.end() || it->second.empty() || it->second.front().seq != seq) return;
  if (!it->second.front().used) (key.server ? unmatched_server_ : unmatched_client_)->Add();
  it->second.pop_front();
  --held_;
  if (it->second.empty()) reports_.erase(it);
}

WireContexts::Report* WireContexts::Own(std::deque<Report>& reports, const WireQuery& q) {
  Report* best = nullptr;
  for (Report& r : reports) {
    if (r.used || r.tid != q.tid) continue;
    if (q.tls) {
      // The ciphertext syscall runs inside the library call: after a client's start
      // (the first such write, before the answer was read), before a server's.
      if (q.server ? (r.ts_ns > q.start_ns || q.start_ns - r.ts_ns > options_.tls_tolerance_ns)
                   : (r.ts_ns < q.start_ns || r.ts_ns - q.start_ns > options_.tls_tolerance_ns ||
                      (q.answer_ns != 0 && r.ts_ns >= q.answer_ns)))
        continue;
      if (!best || (q.server ? r.ts_ns > best->ts_ns : r.ts_ns < best->ts_ns)) best = &r;
      continue;
    }
    // Late (the capture's program ran first): bounded by what the thread did next.
    const bool late = r.ts_ns >= q.start_ns;
    const uint64_t d = Distance(r.ts_ns, q.start_ns);
    if (d > (late ? options_.late_tolerance_ns : options_.tolerance_ns)) continue;
    if (late && ((q.answer_ns != 0 && r.ts_ns >= q.answer_ns) ||
                 (q.next_start_ns > q.start_ns && r.ts_ns >= q.next_start_ns)))
      continue;
    if (!best || d < Distance(best->ts_ns, q.start_ns)) best = &r;
  }
  return best;
}

WireContexts::Report* WireContexts::LastBefore(std::deque<Report>& reports, const WireQuery& q) {
  if (!q.tls || !q.first || q.open_ns == 0) return nullptr;
  Report* last = nullptr;
  for (Report& r : reports) {
    // Before the connection opened: another connection that had the same fd.
    if (r.ts_ns <= q.open_ns || r.ts_ns > q.start_ns) continue;
    if (!last || r.ts_ns >= last->ts_ns) last = &r;
  }
  // Taken already (by a report of its own elsewhere): the last one is not free to take.
  return last && !last->used ? last : nullptr;
}

std::optional<model::TraceParent> WireContexts::Take(const WireQuery& q) {
  auto it = reports_.find({q.pid, q.fd, q.server});
  if (it == reports_.end()) return std::nullopt;
  std::deque<Report>& reports = it->second;
  Report* best = Own(reports, q);
  if (!best) best = LastBefore(reports, q);
  if (!best) return std::nullopt;
  if (q.tls && q.first && q.open_ns != 0) {
    // The handshake's contexts before it: no request of this connection will take them.
    for (Report& r : reports) {
      if (&r == best || r.used || r.ts_ns <= q.open_ns || r.ts_ns >= best->ts_ns) continue;
      r.used = true;
      (q.server ? unmatched_server_ : unmatched_client_)->Add();
    }
  }
  best->used = true;
  const WireContext ctx = best->ctx;  // read now: `best` may go with the front below
  const bool fresh = best->fresh;
  // Used reports at the front go now: a busy keep-alive connection keeps few.
  while (!reports.empty() && reports.front().used) {
    reports.pop_front();
    --held_;
  }
  if (reports.empty()) reports_.erase(it);
  model::TraceParent tp;
  tp.trace_id.bytes = ctx.trace_id;
  if (fresh) {
    // The trace the kernel started for a request that came without one: the SERVER span
    // is its root (no parent id), in the trace its calls carry.
    if (!tp.trace_id.IsValid()) {
      rejected_->Add();
      return std::nullopt;
    }
    fresh_server_->Add();
    tp.flags = 1;
    return tp;
  }
  if (!Valid(ctx)) {
    rejected_->Add();
    return std::nullopt;
  }
  (q.server ? used_server_ : used_client_)->Add();
  tp.parent_id.bytes = ctx.span_id;
  tp.flags = 1;
  return tp;
}

void WireContexts::Prune(uint64_t now_ns) {
  while (!order_.empty() && order_.front().ts_ns + options_.max_age_ns < now_ns) {
    const Arrival a = order_.front();
    order_.pop_front();
    DropFront(a.key, a.seq);
  }
  // Arrivals whose report a Take already removed: drop them from the front too.
  while (!order_.empty()) {
    auto it = reports_.find(order_.front().key);
    if (it != reports_.end() && !it->second.empty() && it->second.front().seq <= order_.front().seq) break;
    order_.pop_front();
  }
}

}  // namespace kspan::carrier
