#include "protocols/jsonrpc/line_stream.h"

#include <algorithm>
#include <utility>

#include "genai/json.h"

namespace kspan::protocols::jsonrpc {
namespace {

// A message's id as text ("" when none), and whether it is a request (has a method) or a
// response (has result or error). Reads the head; an id past a long line's head is looked
// for in its tail (`"id":` then a number or a string).
struct Shape {
  std::string id;
  bool request = false;
  bool response = false;
};

std::string IdText(genai::json::Value id) {
  if (auto s = id.AsString()) return std::string(s->substr(0, 256));
  return std::string(id.raw_number());
}

std::string IdInTail(std::string_view tail) {
  const size_t at = tail.rfind("\"id\":");
  if (at == std::string_view::npos) return "";
  std::string_view rest = tail.substr(at + 5);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (!rest.empty() && rest.front() == '"') {
    const size_t end = rest.find('"', 1);
    return end == std::string_view::npos ? "" : std::string(rest.substr(1, end - 1));
  }
  size_t n = 0;
  while (n < rest.size() && (rest[n] == '-' || (rest[n] >= '0' && rest[n] <= '9'))) ++n;
  return std::string(rest.substr(0, n));
}

Shape ShapeOf(std::string_view line, std::string_view tail) {
  Shape s;
  const genai::json::Document doc = genai::json::ParsePrefix(line);
  const genai::json::Value root = doc.root();
  if (root.type() != genai::json::Type::kObject) return s;
  s.request = root.Find("method").type() == genai::json::Type::kString;
  s.response = !s.request && (root.Find("result") || root.Find("error") || root.truncated());
  s.id = IdText(root.Find("id"));
  if (s.id.empty() && !tail.empty()) s.id = IdInTail(tail);
  return s;
}

}  // namespace

void LineStream::Hole(Direction& d) {
  if (!d.skipping && (!d.line.empty() || d.long_line)) ++stats_.lines_dropped;
  d.line.clear();
  d.tail.clear();
  d.long_line = false;
  d.skipping = true;
}

void LineStream::Add(uint64_t channel, bool egress, uint64_t position, std::string_view captured,
                     uint64_t total_len, uint64_t ns, uint32_t tid, uint32_t turn) {
  Direction& d = dirs_[channel * 2 + (egress ? 1 : 0)];
  std::string_view bytes = captured;
  const uint64_t end = position + total_len;
  if (d.positioned) {
    if (end <= d.next) return;  // bytes seen already
    if (position > d.next) {
      Hole(d);  // bytes between the last chunk and this one never came
    } else if (position < d.next) {
      const uint64_t seen = d.next - position;  // overlaps what was seen: the rest is new
      bytes.remove_prefix(std::min<uint64_t>(seen, bytes.size()));
      total_len -= seen;
    }
  } else if (position > 0) {
    // The stream's first events were lost: this chunk may start inside a line, whose rest
    // is no message. Dropped as after any gap.
    ++stats_.lines_dropped;
    d.skipping = true;
  }
  d.positioned = true;
  d.next = end;
  const bool cut = total_len > bytes.size();  // the syscall's rest was not captured
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    const std::string_view part = bytes.substr(0, nl);
    if (!d.skipping) {
      if (d.line.empty() && !d.long_line) d.timing = LineTiming{ns, ns, tid, turn, tid, turn};
      d.timing.end_ns = ns;
      d.timing.end_tid = tid;
      d.timing.end_turn = turn;
      const size_t room = kMaxLineBytes - std::min(kMaxLineBytes, d.line.size());
      d.line.append(part.substr(0, room));
      if (part.size() > room) {
        d.long_line = true;
        d.tail.append(part.substr(room));
        if (d.tail.size() > 2 * kTailBytes) d.tail.erase(0, d.tail.size() - kTailBytes);
      }
    }
    if (nl == std::string_view::npos) break;
    if (!d.skipping && !d.line.empty()) {
      if (d.tail.size() > kTailBytes) d.tail.erase(0, d.tail.size() - kTailBytes);
      OnLine(channel, egress, d, std::move(d.line));
    }
    d.line.clear();
    d.tail.clear();
    d.long_line = false;
    d.skipping = false;
    bytes.remove_prefix(nl + 1);
  }
  if (cut) Hole(d);  // the line the uncaptured rest falls in is lost
}

void LineStream::OnLine(uint64_t channel, bool egress, const Direction& d, std::string line) {
  const LineTiming& timing = d.timing;
  const Shape shape = ShapeOf(line, d.tail);
  if (shape.id.empty()) return;  // a notification, or not JSON-RPC
  if (shape.request) {
    if (pending_.size() >= kMaxPendingCalls) {
      pending_.pop_front();
      ++stats_.calls_given_up;
    }
    if (started_.size() >= kMaxPendingCalls) started_.pop_front();
    const uint64_t seq = next_seq_++;
    started_.push_back(Started{seq, channel, egress, shape.id, line, timing});
    pending_.push_back(Pending{seq, channel, shape.id, egress, std::move(line), timing});
    return;
  }
  if (!shape.response) return;
  // The answer travels the other way from its request.
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const Pending& p) { return p.id == shape.id && p.outgoing != egress; });
  if (it == pending_.end()) {
    ++stats_.responses_unmatched;
    return;
  }
  Call c;
  c.seq = it->seq;
  c.channel = it->channel;
  c.outgoing = it->outgoing;
  c.id = std::move(it->id);
  c.request = std::move(it->request);
  c.request_timing = it->timing;
  c.response = std::move(line);
  c.response_timing = timing;
  pending_.erase(it);
  done_.push_back(std::move(c));
}

void LineStream::CloseChannel(uint64_t channel) {
  dirs_.erase(channel * 2);
  dirs_.erase(channel * 2 + 1);
}

void LineStream::Close(protocols::Unanswered why) {
  dirs_.clear();
  for (Pending& p : pending_) {
    Call c;
    c.seq = p.seq;
    c.channel = p.channel;
    c.outgoing = p.outgoing;
    c.id = std::move(p.id);
    c.request = std::move(p.request);
    c.request_timing = p.timing;
    c.response_missing = true;
    c.unanswered = why;
    done_.push_back(std::move(c));
  }
  pending_.clear();
}

void LineStream::Drain(std::vector<Call>* out, LineStats* stats, std::vector<Started>* started) {
  if (started) {
    for (Started& s : started_) started->push_back(std::move(s));
  }
  started_.clear();
  for (Call& c : done_) out->push_back(std::move(c));
  done_.clear();
  stats->lines_dropped += stats_.lines_dropped;
  stats->calls_given_up += stats_.calls_given_up;
  stats->responses_unmatched += stats_.responses_unmatched;
  stats_ = LineStats{};
}

}  // namespace kspan::protocols::jsonrpc
