// libFuzzer harness for JSON-RPC: the line reader that pairs MCP stdio calls
// (userspace/protocols/jsonrpc/line_stream.h) and the JSON-RPC body readers of MCP and A2A
// over HTTP (userspace/genai/jsonrpc.h). Seeds are MCP and A2A exchanges, one message a
// line.
//
// Input: lines. A PRNG seeded by a hash of the input puts each line on one of two channels,
// in one of the two directions, and picks the cuts below. The same lines are fed three ways:
//   whole   one syscall a line;
//   cut     each run of lines going the same way cut into syscalls of 1 to 64 bytes, one in
//           four repeating up to 16 bytes already sent (as a retried read may): the calls,
//           the requests announced and the counts must be exactly those of `whole`;
//   holes   the same cuts, with some syscalls only partly captured and some lost: every
//           request and response that still comes out is one of the input's lines (a hole
//           drops a line, never joins the pieces of two), and no count runs backwards.
// Each run then closes: every request announced comes out once, answered, missing its
// answer, or counted as given up. Every line also goes through the body readers: their
// strings stay within genai/jsonrpc.h's bounds, and a line read as a JSON body reads the
// same as that line sent as the one event of a text/event-stream.
// In a campaign an input gets one of three (the body readers, whole and cut compared, or
// holes), picked by a hash of the input, so it costs a third of the parsing and libFuzzer's
// coverage feedback is per part; the PRNG's draws do not depend on the pick, and the corpus
// replay (KSPAN_FUZZ_REPLAY) runs all three with the same cuts.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "genai/jsonrpc.h"
#include "genai/llm.h"
#include "protocols/jsonrpc/line_stream.h"

namespace kspan::fuzz {
const char* const kHarness = "jsonrpc_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;
using kspan::fuzz::Fnv1a;
using kspan::fuzz::Rng;
namespace jsonrpc = kspan::protocols::jsonrpc;
namespace genai = kspan::genai;

struct Line {
  uint64_t channel;
  bool egress;
  size_t begin, end;  // in the input, with its '\n' when it has one
};

// One syscall: bytes [begin, end) of the input are the stream's bytes from `position`.
struct Piece {
  uint64_t channel;
  bool egress;
  uint64_t position;
  size_t begin, end;
  size_t captured;  // of end - begin
};

struct Outcome {
  std::vector<jsonrpc::Call> calls;
  std::vector<jsonrpc::Started> started;
  jsonrpc::LineStats stats;
};

Outcome Feed(std::string_view input, const std::vector<Piece>& pieces) {
  jsonrpc::LineStream stream;
  Outcome out;
  uint64_t ns = 1;
  for (const Piece& p : pieces) {
    stream.Add(p.channel, p.egress, p.position, input.substr(p.begin, p.captured), p.end - p.begin, ns++, 1,
               0);
    stream.Drain(&out.calls, &out.stats, &out.started);
  }
  stream.Close();
  stream.Drain(&out.calls, &out.stats, &out.started);
  return out;
}

// What holds for any run: bounds, timing order, and every request accounted for.
void CheckOutcome(const Outcome& o) {
  for (size_t i = 0; i < o.started.size(); ++i) {
    Check(o.started[i].seq == i + 1, "started: not numbered 1, 2, ...");
    Check(!o.started[i].id.empty(), "started: a request without an id");
  }
  std::unordered_set<uint64_t> seen;
  for (const jsonrpc::Call& c : o.calls) {
    Check(c.seq >= 1 && c.seq <= o.started.size(), "calls: a call never announced");
    Check(seen.insert(c.seq).second, "calls: a request came out twice");
    Check(c.request.size() <= jsonrpc::kMaxLineBytes && c.response.size() <= jsonrpc::kMaxLineBytes,
          "calls: a line past kMaxLineBytes");
    Check(c.response_missing == c.response.empty(), "calls: response_missing but a response, or neither");
    Check(c.request_timing.start_ns <= c.request_timing.end_ns, "calls: request ends before it starts");
    if (!c.response_missing) {
      Check(c.response_timing.start_ns <= c.response_timing.end_ns, "calls: response ends before it starts");
      Check(c.request_timing.end_ns <= c.response_timing.end_ns, "calls: answered before the request ended");
    }
    const jsonrpc::Started& s = o.started[c.seq - 1];
    Check(c.id == s.id && c.request == s.request && c.channel == s.channel && c.outgoing == s.outgoing,
          "calls: a call differs from its announced request");
  }
  // calls_given_up counts the calls dropped at the bound, which have no record; those still
  // waiting at close come out as calls with response_missing.
  Check(o.started.size() == o.calls.size() + o.stats.calls_given_up,
        "stats: requests neither answered, missing nor given up");
}

bool SameCall(const jsonrpc::Call& a, const jsonrpc::Call& b) {
  return a.seq == b.seq && a.channel == b.channel && a.outgoing == b.outgoing && a.id == b.id &&
         a.request == b.request && a.response == b.response && a.response_missing == b.response_missing;
}

bool SameStarted(const jsonrpc::Started& a, const jsonrpc::Started& b) {
  return a.seq == b.seq && a.channel == b.channel && a.outgoing == b.outgoing && a.id == b.id &&
         a.request == b.request;
}

void CheckSame(const Outcome& a, const Outcome& b) {
  Check(a.calls.size() == b.calls.size(), "cut: a different number of calls");
  for (size_t i = 0; i < a.calls.size(); ++i) Check(SameCall(a.calls[i], b.calls[i]), "cut: a call differs");
  Check(a.started.size() == b.started.size(), "cut: a different number of requests");
  for (size_t i = 0; i < a.started.size(); ++i) {
    Check(SameStarted(a.started[i], b.started[i]), "cut: an announced request differs");
  }
  Check(a.stats.lines_dropped == b.stats.lines_dropped && a.stats.calls_given_up == b.stats.calls_given_up &&
            a.stats.responses_unmatched == b.stats.responses_unmatched,
        "cut: the counts differ");
}

bool SameResponse(const genai::RpcResponse& a, const genai::RpcResponse& b) {
  return a.found == b.found && a.error == b.error && a.error_code == b.error_code &&
         a.error_message == b.error_message && a.tool_error == b.tool_error && a.task_state == b.task_state;
}

void CheckResponse(const genai::RpcResponse& r) {
  Check(r.error_message.size() <= genai::kMaxErrorMessageBytes, "body: error message too long");
  Check(r.task_state.size() <= genai::kMaxRpcTargetBytes, "body: task state too long");
  Check(r.found || (!r.error && !r.tool_error && r.task_state.empty()),
        "body: fields of a response not found");
}

// The HTTP body readers over one line.
void FuzzBody(std::string_view line) {
  std::string id;
  if (const auto req = genai::ParseRpcRequest(line)) {
    Check(!req->method.empty() && req->method.size() <= genai::kMaxRpcTargetBytes, "body: method length");
    Check(req->target.size() <= genai::kMaxRpcTargetBytes, "body: target too long");
    Check(req->protocol == genai::RpcProtocol::kMcp || req->target.empty(),
          "body: an A2A call with a target");
    id = req->id;
  }
  Check(genai::AgentCardName(line).size() <= genai::kMaxRpcTargetBytes, "body: agent name too long");
  // The response to the line's own id when it is a request (none: a message is one or the
  // other), else the first response to any id.
  const genai::RpcResponse as_json = genai::ParseRpcResponse("application/json", line, id);
  CheckResponse(as_json);
  if (line.find_first_of("\r\n") != std::string_view::npos) return;
  const std::string event = "data: " + std::string(line) + "\n\n";
  const genai::RpcResponse as_sse = genai::ParseRpcResponse("text/event-stream; charset=utf-8", event, id);
  CheckResponse(as_sse);
  Check(SameResponse(as_json, as_sse), "body: a line reads differently as an event");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (64 << 10)) return 0;
  // An exactly-sized copy, so ASan sees any read past the end.
  const std::string copy(reinterpret_cast<const char*>(data), size);
  const std::string_view input = copy;
  const uint64_t hash = Fnv1a(input);
  Rng rng(hash);
#ifdef KSPAN_FUZZ_REPLAY
  const bool bodies = true, compare = true, with_holes = true;
#else
  const uint64_t pick = (hash >> 32) % 3;
  const bool bodies = pick == 0, compare = pick == 1, with_holes = pick == 2;
#endif

  std::vector<Line> lines;
  std::unordered_set<std::string_view> whole_lines;  // without the '\n'
  for (size_t pos = 0; pos < input.size();) {
    const size_t nl = input.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? input.size() : nl + 1;
    const uint64_t way = rng.In(0, 3);
    lines.push_back(Line{1 + way / 2, (way & 1) != 0, pos, end});
    if (nl != std::string_view::npos) {
      const std::string_view text = input.substr(pos, nl - pos);
      if (with_holes) whole_lines.insert(text.substr(0, jsonrpc::kMaxLineBytes));
      if (bodies) FuzzBody(text);
    }
    pos = end;
  }

  // Stream positions per channel and direction, for each way of feeding.
  auto key = [](const Line& l) { return l.channel * 2 + (l.egress ? 1 : 0); };
  std::vector<Piece> whole, cut, holes;
  uint64_t next[6] = {};
  for (const Line& l : lines) {
    whole.push_back(Piece{l.channel, l.egress, next[key(l)], l.begin, l.end, l.end - l.begin});
    next[key(l)] += l.end - l.begin;
  }
  uint64_t cut_next[6] = {};
  for (size_t i = 0; i < lines.size();) {
    // A run: the lines in a row that go the same way, contiguous in the input.
    size_t j = i + 1;
    while (j < lines.size() && key(lines[j]) == key(lines[i])) ++j;
    const Line& first = lines[i];
    const size_t begin = first.begin, end = lines[j - 1].end;
    const uint64_t stream_begin = cut_next[key(first)];
    for (size_t at = begin; at < end;) {
      size_t from = at;
      if (rng.OneIn(4)) from -= std::min<uint64_t>(rng.In(1, 16), at - begin);  // a repeat
      const size_t to = std::min<uint64_t>(at + rng.In(1, 64), end);
      const Piece p{first.channel, first.egress, stream_begin + (from - begin), from, to, to - from};
      cut.push_back(p);
      if (!rng.OneIn(8)) {  // else lost: `holes` never sees it
        Piece h = p;
        if (rng.OneIn(6)) h.captured = rng.In(0, h.end - h.begin);
        holes.push_back(h);
      }
      at = to;
    }
    cut_next[key(first)] = stream_begin + (end - begin);
    i = j;
  }

  if (compare) {
    const Outcome a = Feed(input, whole);
    CheckOutcome(a);
    const Outcome b = Feed(input, cut);
    CheckOutcome(b);
    CheckSame(a, b);
  }
  if (!with_holes) return 0;
  const Outcome c = Feed(input, holes);
  CheckOutcome(c);
  for (const jsonrpc::Call& call : c.calls) {
    Check(whole_lines.contains(call.request), "holes: a request that is no line of the input");
    Check(call.response_missing || whole_lines.contains(call.response), "holes: a response that is no line");
  }
  Check(c.stats.lines_dropped <= lines.size(), "holes: more lines dropped than there were");
  return 0;
}
