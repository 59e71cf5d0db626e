#include "conntrack/local_channels.h"

#include <utility>

namespace kspan::conntrack {

using protocols::ProtocolSpec;

LocalChannels::LocalChannels(metrics::Registry* m, const TrackerSinks* sinks,
                             std::vector<ProtocolCounters>* counters)
    : sinks_(sinks), counters_(counters) {
  for (const ProtocolSpec& s : protocols::Protocols()) {
    if ((s.transports & protocols::kLocal) && s.scope == protocols::Scope::kProcess) {
      spec_ = &s;
      proto_ = protocols::ProtocolIndex(s);
      channel_closed_ = m->GetCounter("kspan_records_dropped_total",
                                      {{"protocol", std::string(s.name)}, {"reason", "channel_closed"}});
      break;
    }
  }
}

LocalChannels::~LocalChannels() = default;

bool LocalChannels::Owns(events::ConnKind kind) {
  return kind != events::ConnKind::kTcp;
}

void LocalChannels::OnOpen(const events::ConnOpenEvent& e) {
  switch (e.kind) {
    case events::ConnKind::kUnix:
    case events::ConnKind::kPipe: {
      if (!spec_) return;
      Channel& ch = channels_[e.key];
      ch.id = next_channel_++;
      ch.info.key = e.key;
      ch.info.kind = e.kind;
      ch.info.role = e.role;
      ch.info.local_id = e.local_id;
      ch.info.peer_id = e.peer_id;
      ch.info.protocol = spec_->name;
      ch.info.callee_spans = spec_->callee_spans;
      channel_keys_[ch.id] = e.key;
      Process& p = processes_[e.key.pid];
      if (!p.parser) p.parser = spec_->make(/*client=*/false, {});
      return;
    }
    case events::ConnKind::kStdout:
    case events::ConnKind::kStderr: stdio_[e.key] = e.kind == events::ConnKind::kStderr; return;
    case events::ConnKind::kTcp: return;
  }
}

bool LocalChannels::OnData(const events::DataEvent& e) {
  if (auto it = channels_.find(e.key); it != channels_.end()) {
    auto p = processes_.find(e.key.pid);
    if (p == processes_.end()) return true;
    const bool egress = e.direction == events::Direction::kEgress;
    p->second.parser->AddData({.channel = it->second.id,
                               .egress = egress,
                               .position = e.position,
                               .data = e.data,
                               .total_len = e.total_len,
                               .first_ns = egress ? e.enter_ns : e.exit_ns,
                               .last_ns = e.exit_ns,
                               .tid = e.tid,
                               .turn = e.turn});
    if (!p->second.dirty) {
      p->second.dirty = true;
      dirty_.push_back(e.key.pid);
    }
    return true;
  }
  if (auto it = stdio_.find(e.key); it != stdio_.end()) {
    if (sinks_->on_output) sinks_->on_output(e.key.pid, it->second, e.data, e.enter_ns);
    return true;
  }
  return false;
}

void LocalChannels::Drain(uint32_t pid, Process& p, uint64_t exited_ns) {
  p.dirty = false;
  started_.clear();
  records_.clear();
  protocols::ConnectionStats stats;
  p.parser->Drain(&started_, &records_, &stats);
  ProtocolCounters& c = (*counters_)[proto_];
  c.Add(stats);
  auto channel = [this, pid](uint64_t id) -> const ConnInfo* {
    auto k = channel_keys_.find(id);
    if (k == channel_keys_.end() || k->second.pid != pid) return nullptr;
    auto ch = channels_.find(k->second);
    return ch == channels_.end() ? nullptr : &ch->second.info;
  };
  // A call is announced at its request, so what it makes meanwhile (a tool server's own
  // calls) finds it in flight. A request whose channel closed already has no span to open.
  for (protocols::RequestStart& r : started_) {
    if (const ConnInfo* info = channel(r.channel); info && sinks_->on_request) {
      sinks_->on_request(*info, std::move(r));
    }
  }
  for (protocols::Record& r : records_) {
    const ConnInfo* info = channel(r.channel);
    if (!info) {
      channel_closed_->Add();  // its request's channel closed before the answer came
      continue;
    }
    c.records->Add();
    if (exited_ns != 0 && r.response_missing && r.unanswered == protocols::Unanswered::kProcessExit) {
      r.given_up_ns = exited_ns;  // waited for until the process was gone (as ConnTracker's)
    }
    if (sinks_->on_record) sinks_->on_record(*info, std::move(r));
  }
  started_.clear();
  records_.clear();
}

void LocalChannels::DrainPending() {
  for (uint32_t pid : std::exchange(dirty_, {})) {
    auto it = processes_.find(pid);
    if (it != processes_.end() && it->second.dirty) Drain(pid, it->second);
  }
}

bool LocalChannels::OnClose(const events::ConnCloseEvent& e) {
  if (auto it = channels_.find(e.key); it != channels_.end()) {
    // Its finished calls first; a call still waiting for an answer on another channel is
    // given up when that answer comes (counted), so closed channels cost no memory.
    if (auto p = processes_.find(e.key.pid); p != processes_.end()) {
      Drain(e.key.pid, p->second);
      p->second.parser->CloseChannel(it->second.id);
    }
    channel_keys_.erase(it->second.id);
    channels_.erase(it);
    return true;
  }
  return stdio_.erase(e.key) > 0;
}

void LocalChannels::EraseProcess(uint32_t pid) {
  processes_.erase(pid);
  std::erase_if(channels_, [&](const auto& kv) {
    if (kv.first.pid != pid) return false;
    channel_keys_.erase(kv.second.id);
    return true;
  });
  std::erase_if(stdio_, [&](const auto& kv) { return kv.first.pid == pid; });
}

void LocalChannels::OnProcessExit(uint32_t pid, uint64_t ts_ns) {
  CloseProcess(pid, protocols::Unanswered::kProcessExit, ts_ns);
}

void LocalChannels::CloseProcess(uint32_t pid, protocols::Unanswered waiting, uint64_t exited_ns) {
  if (auto p = processes_.find(pid); p != processes_.end()) {
    p->second.parser->Close(waiting);
    Drain(pid, p->second, exited_ns);
  }
  EraseProcess(pid);
}

void LocalChannels::CloseAll() {
  while (!processes_.empty()) CloseProcess(processes_.begin()->first, protocols::Unanswered::kShutdown);
  channels_.clear();
  channel_keys_.clear();
  stdio_.clear();
  dirty_.clear();
}

}  // namespace kspan::conntrack
