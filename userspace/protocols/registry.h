// The protocol registry: the one place a protocol is made known to the agent.
//
// A protocol is a folder under protocols/ that implements ProtocolConnection (byte chunks
// in, RequestStarts and Records out) and one ProtocolSpec row in registry.cc. The
// connection tracker (conntrack/) detects protocols and drives connections only through
// this interface, and labels every parse counter with ProtocolSpec::name; the correlator
// builds spans from the protocol's Record body (protocols/record.h).
//
//   conntrack ── Chunk ──▶ ProtocolConnection ── Drain ──▶ RequestStart, Record ──▶ correlator
//                 (position, timing)        (parser, pairing)
//
// How to add a protocol: docs/architecture.md, "Adding a protocol"; the few other places a
// protocol must touch carry a marker comment that grep finds (the page names it).
//
// Threads: a ProtocolConnection belongs to one connection (or one process, see Scope) and
// is driven from the pipeline thread only. The registry itself is immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "protocols/common/unanswered.h"
#include "protocols/http1/connection.h"
#include "protocols/record.h"

namespace kspan::protocols {

// One syscall's bytes on their way to a parser. `data` is the captured prefix of the
// `total_len` bytes moved (the rest is a hole of known size); borrowed for the call.
struct Chunk {
  uint64_t channel = 0;   // Scope::kProcess: which of the process's channels; else 0
  bool egress = false;    // this process sent the bytes
  uint64_t position = 0;  // stream offset of data[0] in this direction of the channel
  std::string_view data;
  uint32_t total_len = 0;
  uint64_t first_ns = 0;  // the syscall's entry (egress) or exit (ingress), Unix ns
  uint64_t last_ns = 0;   // its exit
  uint32_t tid = 0;
  uint32_t turn = 0;
};

// What a connection threw away since its last Drain; the tracker adds it to the metrics
// labelled by protocol.
struct ConnectionStats {
  uint64_t frames_invalid = 0;  // bytes that did not parse (each resynchronisation)
  uint64_t frames_cut = 0;      // messages the connection's close cut short
  uint64_t bytes_dropped = 0;   // captured bytes thrown away (garbage, buffer caps)
  // Answers paired with no request: none was waiting (sent before kspan looked, its bytes
  // lost, or past a bound), or one still waited for its request when the connection ended.
  uint64_t responses_unmatched = 0;
  uint64_t responses_unmatched_at_close = 0;
  UnansweredCounts requests_unanswered{};  // requests given up with no answer, by reason
  uint64_t gaps = 0;                       // holes (bytes not captured) that cut a frame
  // Messages kept though what the parser reads of them was cut (a capture hole, a read
  // bound): a SQL query text longer than --capture-bytes. Their records say so.
  uint64_t frames_truncated = 0;

  ConnectionStats& operator+=(const ConnectionStats& o) {
    frames_invalid += o.frames_invalid;
    frames_cut += o.frames_cut;
    bytes_dropped += o.bytes_dropped;
    responses_unmatched += o.responses_unmatched;
    responses_unmatched_at_close += o.responses_unmatched_at_close;
    requests_unanswered += o.requests_unanswered;
    gaps += o.gaps;
    frames_truncated += o.frames_truncated;
    return *this;
  }
};

class ProtocolConnection {
 public:
  virtual ~ProtocolConnection() = default;
  // One syscall's bytes. Chunks may arrive out of order (threads on several CPUs).
  virtual void AddData(const Chunk& chunk) = 0;
  // Scope::kProcess: one of the process's channels closed; its unfinished frames go.
  virtual void CloseChannel(uint64_t channel) { (void)channel; }
  // Everything closed: what is delimited by close completes, requests still waiting come
  // out as records with response_missing and `waiting` as their reason (kNoResponse for a
  // clean close with no bytes lost), unless the protocol knows their answers were lost
  // (kNotCaptured).
  virtual void Close(Unanswered waiting) = 0;
  // Parses what was added. Appends each request seen whole since the last call to
  // `started` (before its record, in the same or an earlier call; every record's request
  // is announced so) and each finished exchange to `records`, oldest first.
  virtual void Drain(std::vector<RequestStart>* started, std::vector<Record>* records,
                     ConnectionStats* stats) = 0;
  // What is buffered for frames not yet whole, for the tracker's global bound on it.
  virtual HeldData Held() const { return {}; }
  // Drops it (the tracker is over its bound and this is among the oldest): the frames it
  // held are lost, parsing resumes at the next frame start. Returns the captured bytes
  // dropped (the caller counts them).
  virtual uint64_t DropHeld() { return 0; }
};

enum class Detection : uint8_t {
  kMatch,         // the bytes start a request of this protocol
  kNoMatch,       // they cannot
  kNeedMoreData,  // too few bytes to say
};

// What one connection object covers.
enum class Scope : uint8_t {
  kConnection,  // one TCP connection (its two directions)
  kProcess,     // every local channel (pipe, Unix socket) of one process: requests and
                // answers travel on different channels (an agent writes its tool server's
                // stdin and reads its stdout)
};

enum Transport : uint32_t {
  kTcp = 1u << 0,
  kLocal = 1u << 1,  // pipes and Unix stream sockets of agent processes
};

// Settings of the protocols that have some.
// SQL databases (PostgreSQL, MySQL/MariaDB): their query text as sent instead of sanitised
// (--db-raw-query-text; protocols/common/sql.h QueryText).
struct SqlOptions {
  bool raw_query_text = false;
};

struct ProtocolOptions {
  // PROTOCOL_LIST: a protocol with settings adds its struct here (from TrackerOptions).
  http1::Limits http1;
  SqlOptions sql;
};

struct ProtocolSpec {
  std::string_view name;  // metric label and span attribute value, e.g. "http1"
  Scope scope = Scope::kConnection;
  uint32_t transports = kTcp;
  // Looks at the first captured bytes of the request direction (a chunk at stream
  // position 0, or for a connection joined mid-stream, a chunk from the middle). Null:
  // every channel of the transports is this protocol.
  Detection (*detect)(std::string_view request_bytes) = nullptr;
  // `client`: this process sends the requests (Scope::kConnection).
  std::unique_ptr<ProtocolConnection> (*make)(bool client, const ProtocolOptions& options) = nullptr;
  // Whether the side that answers a request is a span too. False for a data store: its
  // own side of a command is not a span (only the client's CLIENT span is), and the
  // correlator opens nothing for requests it receives.
  bool callee_spans = true;
};

// Every protocol, in detection order (the first to match a connection wins).
std::span<const ProtocolSpec> Protocols();
// The index of `spec` in Protocols(); stable for the process's lifetime.
size_t ProtocolIndex(const ProtocolSpec& spec);

}  // namespace kspan::protocols
