// JSON-RPC 2.0 over local byte streams, one message per line (MCP's stdio transport:
// newline-delimited JSON on the pipes or socketpairs between an agent and the tool server
// it spawned). One LineStream per process: requests and answers travel on different
// channels (the agent writes the child's stdin and reads its stdout), so a request is
// paired by id with an answer going the other way on any of the process's channels. The
// process that writes a request is the caller of that call. (Two tool servers of one
// process answering the same id at the same moment could be paired crosswise; MCP clients
// number their requests per server from 0, so this needs concurrent calls with equal ids.)
//
//   egress  {"jsonrpc":"2.0","id":3,"method":"tools/call",…}\n      ─┐ outgoing call 3
//   ingress {"result":{…},"jsonrpc":"2.0","id":3}\n                  ─┘ (start: the write,
//                                                                      end: the read)
//   ingress {"jsonrpc":"2.0","id":9,"method":"roots/list"}\n        ─┐ incoming call 9
//   egress  {"jsonrpc":"2.0","id":9,"result":{…}}\n                  ─┘
//
// Notifications (no id) make no call. A line longer than kMaxLineBytes keeps its first
// kMaxLineBytes and last kTailBytes (a response's id may come after a long result); bytes
// kspan did not capture drop the line they fall in, and parsing resumes after the next
// newline. Bounded: kMaxPendingCalls requests wait for their responses; past it the oldest
// is given up (counted).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocols/common/timing.h"
#include "protocols/common/unanswered.h"

namespace kspan::protocols::jsonrpc {

inline constexpr size_t kMaxLineBytes = 64 * 1024;
inline constexpr size_t kTailBytes = 512;
inline constexpr size_t kMaxPendingCalls = 1024;

// Where a line was moved: the syscall that brought its first byte and the one that brought
// its last.
using LineTiming = protocols::Timing;

struct Call {
  uint64_t seq = 0;       // the request's number in this stream, as Started::seq
  uint64_t channel = 0;   // the channel the request came on
  bool outgoing = false;  // this process wrote the request
  std::string id;         // the request's id, as text
  std::string request;    // the request line (bounded as above)
  std::string response;   // the response line; empty when none came
  bool response_missing = false;
  protocols::Unanswered unanswered = protocols::Unanswered::kNoResponse;  // why, when missing
  LineTiming request_timing, response_timing;
};

// A request seen whole, before its answer: enough to place its call while it runs (the
// stitcher decides a span's parent from what was in flight when it started). A Call was
// announced so once, in an earlier or the same Drain (unless more than kMaxPendingCalls
// requests came between two Drains).
struct Started {
  uint64_t seq = 0;  // 1, 2, … per LineStream, in request order
  uint64_t channel = 0;
  bool outgoing = false;
  std::string id;
  std::string request;  // the request line (bounded as above)
  LineTiming timing;
};

struct LineStats {
  uint64_t lines_dropped = 0;   // cut by a hole (bytes not captured, or events lost)
  uint64_t calls_given_up = 0;  // pending past the bound (no record; those at close have one)
  uint64_t responses_unmatched = 0;
};

class LineStream {
 public:
  // One syscall on `channel` (the caller's id for one fd): `captured` of its `total_len`
  // bytes (the rest is a hole), at stream position `position` of that direction, at `ns`.
  // A chunk that starts past where the last one ended follows lost bytes (a lost event):
  // the line they fall in is dropped, as for a hole; so is a direction's first chunk when
  // it starts past position 0 (its first events lost). One that repeats bytes already seen
  // is ignored (as far as it repeats them).
  void Add(uint64_t channel, bool egress, uint64_t position, std::string_view captured, uint64_t total_len,
           uint64_t ns, uint32_t tid, uint32_t turn);
  // A channel closed: its unfinished lines are dropped.
  void CloseChannel(uint64_t channel);
  // Every channel closed: calls still waiting come out with response_missing, for `why`.
  void Close(protocols::Unanswered why = protocols::Unanswered::kNoResponse);
  // Calls completed since the last Drain, in completion order, and the counts; and, when
  // `started` is given, the requests seen since the last Drain (at most kMaxPendingCalls:
  // older ones are dropped unannounced, their calls still come out).
  void Drain(std::vector<Call>* out, LineStats* stats, std::vector<Started>* started = nullptr);

 private:
  struct Direction {
    std::string line;  // the line being assembled (its head)
    std::string tail;  // its last kTailBytes once it outgrew kMaxLineBytes
    bool long_line = false;
    bool skipping = false;    // a hole cut the current line: drop until the next newline
    bool positioned = false;  // `next` is known (a chunk was seen)
    uint64_t next = 0;        // the stream position after the last chunk seen
    LineTiming timing;
  };
  struct Pending {
    uint64_t seq = 0;
    uint64_t channel = 0;
    std::string id;
    bool outgoing = false;
    std::string request;
    LineTiming timing;
  };

  void OnLine(uint64_t channel, bool egress, const Direction& d, std::string line);
  // A hole (bytes not captured) at the current position of `d`.
  void Hole(Direction& d);

  std::unordered_map<uint64_t, Direction> dirs_;  // by channel * 2 + egress
  std::deque<Pending> pending_;
  std::vector<Call> done_;
  std::deque<Started> started_;
  LineStats stats_;
  uint64_t next_seq_ = 1;
};

}  // namespace kspan::protocols::jsonrpc
