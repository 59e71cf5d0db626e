#include "conntrack/conn_info.h"

namespace kspan::conntrack {

std::string LocalPairKey(const ConnInfo& ch, bool outgoing, std::string_view call_id) {
  if (ch.local_id == 0 || ch.peer_id == 0 || call_id.empty()) return "";
  // A pipe is one inode at both ends. A socketpair is two sockets, each the other's
  // peer: named as the reading end sees it, "reader|writer".
  if (ch.kind == events::ConnKind::kPipe) {
    return "pipe:" + std::to_string(ch.local_id) + "#" + std::string(call_id);
  }
  const uint64_t reader = outgoing ? ch.peer_id : ch.local_id;
  const uint64_t writer = outgoing ? ch.local_id : ch.peer_id;
  return "unix:" + std::to_string(reader) + "|" + std::to_string(writer) + "#" + std::string(call_id);
}

ProtocolCounters::ProtocolCounters(metrics::Registry* m, std::string_view protocol) {
  const std::string p(protocol);
  invalid = m->GetCounter("kspan_parse_failures_total", {{"protocol", p}});
  bytes_dropped = m->GetCounter("kspan_parse_bytes_dropped_total", {{"protocol", p}});
  unmatched =
      m->GetCounter("kspan_records_dropped_total", {{"protocol", p}, {"reason", "unmatched_response"}});
  unmatched_at_close =
      m->GetCounter("kspan_records_dropped_total", {{"protocol", p}, {"reason", "unmatched_at_close"}});
  for (size_t i = 0; i < protocols::kUnansweredReasons; ++i) {
    const std::string_view reason = protocols::UnansweredName(static_cast<protocols::Unanswered>(i));
    unanswered[i] =
        m->GetCounter("kspan_requests_unanswered_total", {{"protocol", p}, {"reason", std::string(reason)}});
  }
  gaps = m->GetCounter("kspan_parse_gaps_total", {{"protocol", p}});
  records = m->GetCounter("kspan_records_total", {{"protocol", p}});
  evicted = m->GetCounter("kspan_parse_buffers_evicted_total", {{"protocol", p}});
  cut = m->GetCounter("kspan_parse_messages_cut_total", {{"protocol", p}});
  truncated = m->GetCounter("kspan_parse_messages_truncated_total", {{"protocol", p}});
}

void ProtocolCounters::Add(const protocols::ConnectionStats& stats) {
  invalid->Add(stats.frames_invalid);
  cut->Add(stats.frames_cut);
  truncated->Add(stats.frames_truncated);
  bytes_dropped->Add(stats.bytes_dropped);
  unmatched->Add(stats.responses_unmatched);
  unmatched_at_close->Add(stats.responses_unmatched_at_close);
  for (size_t i = 0; i < protocols::kUnansweredReasons; ++i)
    unanswered[i]->Add(stats.requests_unanswered.by_reason[i]);
  gaps->Add(stats.gaps);
}

}  // namespace kspan::conntrack
