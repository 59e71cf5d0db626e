// What the connection tracker tells the stages after it about a connection, and the sinks
// it hands requests, records and output to.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "events/events.h"
#include "protocols/record.h"
#include "protocols/registry.h"

namespace kspan::conntrack {

struct ConnInfo {
  events::ConnKey key;
  events::ConnKind kind = events::ConnKind::kTcp;
  events::Role role = events::Role::kUnknown;
  events::SocketTuple tuple;
  bool tuple_known = false;  // false when the open event was lost
  bool role_inferred = false;
  // The connect/accept that opened it, when seen: time, thread and its event-loop turn.
  uint64_t open_ns = 0;
  uint32_t open_tid = 0;
  uint32_t open_turn = 0;
  bool tls = false;  // its bytes are TLS plaintext from the TLS uprobes
  // kUnix and kPipe: the channel as both of its ends name it (events::ConnOpenEvent);
  // 0 when unknown.
  uint64_t local_id = 0;
  uint64_t peer_id = 0;
  std::string_view protocol;  // the registered protocol's name once detected, else ""
  // protocols::ProtocolSpec::callee_spans of that protocol: false when this process
  // answering a request of it is not a span (a data store's own side).
  bool callee_spans = true;
};

// The same key for the caller's and the callee's side of one call on one local channel
// (the reading end's view of the channel, and the call's id), so same-host pairing finds
// both ends without a 4-tuple; "" when the channel or the id is not known.
std::string LocalPairKey(const ConnInfo& channel, bool outgoing, std::string_view call_id);

// Where the tracker's output goes. Called on the pipeline thread, from OnData, DrainPending,
// OnClose, OnProcessExit, Tick or CloseAll; a sink must not call back into the tracker.
struct TrackerSinks {
  // A request seen whole, before the record of the same request (same channel and seq).
  std::function<void(const ConnInfo&, protocols::RequestStart&&)> on_request = nullptr;
  // A finished exchange.
  std::function<void(const ConnInfo&, protocols::Record&&)> on_record = nullptr;
  // Once for a connection whose first bytes are TLS records and no plaintext came.
  std::function<void(const ConnInfo&)> on_ciphertext = nullptr;
  // A write of an agent process to its stdout (`err` false) or stderr, at `ns`.
  std::function<void(uint32_t pid, bool err, std::string_view bytes, uint64_t ns)> on_output = nullptr;
};

// A protocol's parse counters, labelled by its registered name.
struct ProtocolCounters {
  ProtocolCounters(metrics::Registry* m, std::string_view protocol);
  // What a connection's Drain reported.
  void Add(const protocols::ConnectionStats& stats);

  metrics::Counter* invalid;
  metrics::Counter* bytes_dropped;
  metrics::Counter* unmatched;
  metrics::Counter* unmatched_at_close;
  std::array<metrics::Counter*, protocols::kUnansweredReasons> unanswered;
  metrics::Counter* gaps;
  metrics::Counter* records;
  metrics::Counter* evicted;    // connections whose buffered frames went at the global bound
  metrics::Counter* cut;        // messages a connection's close cut short
  metrics::Counter* truncated;  // messages kept as a prefix (a query past the capture)
};

}  // namespace kspan::conntrack
