// HTTP/1.x frames and records: what the HTTP/1 parser hands the correlator.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/common/timing.h"
#include "protocols/common/unanswered.h"

namespace kspan::protocols::http1 {

// One request or response as seen on the wire.
struct Message {
  // Request line (requests only).
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // request-target as sent, e.g. "/a/b?x=1"
  // Status line (responses only).
  int status_code = 0;
  std::string reason;
  // "1.0" or "1.1".
  std::string version;
  // In wire order, names as sent. Use Header() for case-insensitive lookup.
  std::vector<std::pair<std::string, std::string>> headers;

  // Payload size in bytes: Content-Length, the sum of chunk sizes for chunked, or the
  // bytes up to close for a response delimited by close. Counted even where kspan did not
  // capture the bytes (holes).
  uint64_t body_size = 0;
  // The first bytes of the payload (decoded if chunked), at most the parser's body
  // capture limit; shorter when bytes fell in holes.
  std::string body_prefix;
  // Part of the body fell in a hole (not captured); body_prefix may be short.
  bool body_truncated = false;
  // The head's framing fields are invalid (Content-Length values that differ or are not
  // numbers, a request Transfer-Encoding whose last coding is not chunked): where the
  // message ends is unknown, so nothing after it in its direction is parsed (RFC 9112
  // §6.3: the recipient must treat it as an unrecoverable error and close).
  bool framing_invalid = false;

  // Wide bodies: a request that Limits::wide_body_request picks (an LLM API call), and its
  // response, keep up to Limits::max_wide_body_prefix bytes in body_prefix, then the last
  // Limits::max_wide_body_tail bytes of the rest in body_tail (decoded offset
  // body_tail_offset), and body_marks: where in the decoded body each syscall's bytes
  // begin and when they moved (at most kMaxBodyMarks, oldest first), so a stream's events
  // can be timed.
  struct BodyMark {
    uint64_t offset = 0;  // decoded body offset
    uint64_t ns = 0;      // Unix ns of the syscall that moved it (as timing.start_ns)
  };
  static constexpr size_t kMaxBodyMarks = 1024;
  bool wide_body = false;
  std::string body_tail;
  uint64_t body_tail_offset = 0;
  std::vector<BodyMark> body_marks;

  // The syscalls that moved the first and last byte of this message (the first is the
  // entry of a send or the exit of a receive), their threads and event-loop turns.
  Timing timing;

  // The value of the first header with this name (ASCII case-insensitive), or empty.
  std::string_view Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

// A message's W3C Trace Context fields (Level 2, "traceparent Header" and "tracestate
// Header"; names ASCII case-insensitive). `traceparent`: the value of the one traceparent
// field, without OWS; empty when there is none or there are two or more (ambiguous: the
// W3C suite's test_traceparent_duplicated expects a new trace). `tracestate`: every
// tracestate field joined in order with ',' (RFC 9110 §5.3), only when `traceparent` is
// set; its grammar is model::ParseTraceState's, applied once the traceparent proved valid.
struct TraceContextFields {
  std::string traceparent;
  std::string tracestate;
};
TraceContextFields TraceContextOf(const Message& m);

// A request and the final (non-1xx) response to it. `response_missing` is set when the
// connection closed, or the stream became unparseable, before a response came; then
// `unanswered` says whether the server failed to answer or kspan did not see the answer.
struct Record {
  uint64_t seq = 0;  // the request's number on its connection (protocols::RequestStart::seq)
  Message request;
  Message response;
  bool response_missing = false;
  Unanswered unanswered = Unanswered::kNoResponse;
  // Informational (1xx) responses seen before the final one, e.g. 100 Continue.
  std::vector<int> informational_statuses;
};

}  // namespace kspan::protocols::http1
