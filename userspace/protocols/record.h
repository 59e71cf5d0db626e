// What every protocol hands the correlator, whatever it parsed: a request seen whole
// (RequestStart, before any answer) and a finished exchange (Record). The envelope is
// protocol-neutral (sequence number, timing); the body is the protocol's own record.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "protocols/common/timing.h"
#include "protocols/common/unanswered.h"
#include "protocols/http1/types.h"
#include "protocols/http2/types.h"
#include "protocols/jsonrpc/line_stream.h"
#include "protocols/memcache/types.h"
#include "protocols/mysql/types.h"
#include "protocols/postgres/types.h"
#include "protocols/redis/types.h"

namespace kspan::protocols {

// Which end of a request this process is, when the protocol knows it per request. On a
// TCP connection the connection's role decides (kByConnection); on an agent's local
// channel either end may call the other (JSON-RPC: whoever writes the request).
enum class Side : uint8_t { kByConnection, kCaller, kCallee };

// A request seen whole, before any answer to it: the correlator opens the request's span
// here, at the moment the request crossed the socket, so spans started while it is in
// flight can find it. The Record of the same request (same channel and seq) follows.
struct RequestStart {
  uint64_t seq = 0;      // 1, 2, … per connection (per process for process-wide protocols)
  uint64_t channel = 0;  // process-wide protocols: the channel it came on; else 0
  Timing timing;
  Side side = Side::kByConnection;
  // W3C context as sent, empty when absent: the one traceparent field's value (empty when
  // there were two or more); every tracestate field joined with ',', unvalidated (the
  // correlator applies model::ParseTraceState).
  std::string traceparent;
  std::string tracestate;
  std::string call_id;  // the protocol's own request id (JSON-RPC "id"), or empty
  // What the correlator needs to see of the request before its answer to decide whether
  // it makes a span (a JSON-RPC request line: MCP, A2A or neither); empty when not needed.
  std::string head;
  // The request makes no span on either side (a database's startup, password or
  // Terminate message: part of the connection, not an operation), or none on the answering
  // side though its protocol's callee makes spans for others (ProtocolSpec::callee_spans; a
  // replication session's commands). The correlator opens no node for it there: a node
  // that never completes would hold its trace until max_hold.
  bool no_span = false;
  bool callee_no_span = false;
};

// PROTOCOL_LIST: a new protocol's record type joins this variant (correlator/span_builder.cc
// then fails to compile until it builds a span for it).
using RecordBody = std::variant<http1::Record, jsonrpc::Call, memcache::Record, redis::Record,
                                postgres::Record, http2::Record, mysql::Record>;

// A request and its answer (or the lack of one).
struct Record {
  uint64_t seq = 0;  // as RequestStart::seq
  uint64_t channel = 0;
  Side side = Side::kByConnection;
  Timing request;
  Timing response;  // all 0 when response_missing
  bool response_missing = false;
  Unanswered unanswered = Unanswered::kNoResponse;  // why, when response_missing
  // When response_missing: when the exchange was over without its answer, as far as kspan
  // saw (the connection's close for kNoResponse, the process's exit for kProcessExit, the
  // connection's last bytes for an answer cut by its end), where its span ends; 0 when not
  // known (it ends with its request). Set by the connection tracker and local channels
  // (conntrack/), never by a parser.
  uint64_t given_up_ns = 0;
  RecordBody body;
};

}  // namespace kspan::protocols
