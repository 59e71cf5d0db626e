// Connection tracker: turns open/data/close events into per-connection byte streams and
// hands them to the protocol that recognises them (protocols/registry.h). It owns every
// kind of connection the kernel reports: TCP connections here; agents' local channels
// (pipes, Unix sockets) and stdout/stderr in LocalChannels (local_channels.h).
//
// A connection is (pid, fd, generation): the kernel bumps the generation whenever an fd
// starts a new socket, so fd reuse never merges two connections. The role comes from
// connect (client) or accept (server); for sockets open before kspan started it is
// inferred from which direction carries the first request.
//
//   event ──▶ Conn{tuple, role, per-direction accounting} ──▶ detect protocol on the
//             first bytes of the request direction (each registered TCP protocol's
//             detect, in registry order) ──▶ ProtocolConnection ──▶ requests, records
//
// TLS: plaintext events from the TLS uprobes (DataEvent::tls) restart the connection's
// streams at 0 as a TLS connection (url.scheme https); ciphertext is recognised by its
// record header and never reaches a parser (no parse failures from it). A connection
// that shows TLS records but never plaintext is reported to `on_ciphertext` once, so the
// TLS module can say which binary it could not see into. Writes of a TLS object whose
// socket is not yet known (DataEvent::unbound) wait, bounded, for their TlsBindEvent.
//
// Bounded: at most max_connections; idle ones are dropped after idle_timeout, and when
// the table is full the least recently active are evicted (counted).
// Single-threaded: the pipeline thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "conntrack/conn_info.h"
#include "conntrack/local_channels.h"
#include "events/events.h"
#include "protocols/registry.h"

namespace kspan::conntrack {

struct TrackerOptions {
  size_t max_connections = 65536;
  uint64_t idle_timeout_ns = 300ull * 1'000'000'000;
  protocols::http1::Limits http;
  protocols::SqlOptions sql;
  // Chunks of a mid-stream connection examined for a protocol before giving up on it.
  int max_detect_attempts = 8;
  // Chunks (and their captured bytes) held while the protocol is undecided, so chunks that
  // arrive before the stream's first bytes (other CPUs) are not lost. Past either bound
  // the connection is given up as unrecognised.
  size_t max_detect_chunks = 16;
  size_t max_detect_bytes = 64 * 1024;
  // The same, summed over every connection: the true bound on held memory.
  size_t max_detect_bytes_total = 16 << 20;
  // Bytes a protocol buffers for frames not yet whole (a head written slowly or in
  // pieces), summed over every connection. Each stream also has its own cap
  // (http.max_buffered_bytes). Past this one, the connections holding the oldest such
  // bytes drop them (counted in kspan_parse_buffers_evicted_total and
  // kspan_parse_bytes_dropped_total) until three quarters of it is held: a slow client
  // holding half-written requests cannot grow the agent, and fresh traffic keeps room.
  size_t max_parse_bytes_total = 32 << 20;
  // Unbound TLS writes held until their socket is known: per TLS object and in all; and
  // how long they may wait.
  size_t max_unbound_bytes = 256 * 1024;
  size_t max_unbound_bytes_total = 16 << 20;
  uint64_t unbound_timeout_ns = 2'000'000'000;
};

// Per-direction byte accounting, used to detect gaps (bytes the kernel moved that kspan
// never saw an event for).
struct DirectionAccount {
  uint64_t bytes_seen = 0;      // sum of total_len of events received
  uint64_t end = 0;             // highest position + length seen
  uint64_t start = UINT64_MAX;  // lowest position seen
};

class ConnTracker {
 public:
  ConnTracker(TrackerOptions options, metrics::Registry* metrics, TrackerSinks sinks);
  ~ConnTracker();

  void OnOpen(const events::ConnOpenEvent& e);
  // Buffers the bytes; parsing happens in DrainPending().
  void OnData(const events::DataEvent& e);
  // Parses every connection that got bytes since the last call and emits its records.
  // Call once per batch of events (one ring-buffer poll): the parser treats one call as one
  // drain cycle, and waits one cycle for chunks that arrive out of order across CPUs.
  void DrainPending();
  void OnClose(const events::ConnCloseEvent& e);
  // Unbound TLS writes of e.ssl belong to e.key: feeds them to that connection.
  void OnTlsBind(const events::TlsBindEvent& e);
  // The process ended (at ts_ns, 0: unknown): its sockets are closed by the kernel without
  // close() events.
  void OnProcessExit(uint32_t pid, uint64_t ts_ns = 0);
  // Evicts idle connections; call about once a second.
  void Tick(uint64_t now_ns);
  // Closes every connection (at shutdown) so pending records come out.
  void CloseAll();

  size_t size() const { return conns_.size(); }
  // What the protocols buffer for frames not yet whole, over every connection (as of each
  // connection's last drain; see TrackerOptions::max_parse_bytes_total).
  size_t parse_bytes_held() const { return parse_held_total_; }
  uint64_t gaps_detected() const { return gaps_->Value(); }

 private:
  // kTlsCiphertext: TLS records seen, no plaintext (yet); bytes are ignored.
  enum class Protocol { kUnknown, kDetected, kOther, kTlsCiphertext };
  // One syscall's bytes on their way to a parser; `data` is borrowed.
  struct ChunkView {
    bool egress;
    uint64_t position;
    std::string_view data;
    uint32_t total_len;
    uint64_t first_ns, last_ns;
    uint32_t tid;
    uint32_t turn;
  };
  // A chunk held (copied) while the protocol is undecided.
  struct HeldChunk {
    ChunkView meta;  // meta.data unused: View() points it at `bytes`
    std::string bytes;
    ChunkView View() const {
      ChunkView v = meta;
      v.data = bytes;
      return v;
    }
  };
  struct Conn {
    ConnInfo info;
    Protocol protocol = Protocol::kUnknown;
    int detect_attempts = 0;
    bool saw_start = false;   // opened by connect/accept: streams start at position 0
    bool dirty = false;       // got bytes since the last DrainPending()
    uint64_t drained_in = 0;  // DrainPending() round that last drained it
    uint64_t last_activity_ns = 0;
    DirectionAccount egress, ingress;
    size_t proto = 0;  // index in protocols::Protocols() once kDetected
    std::unique_ptr<protocols::ProtocolConnection> parser;
    std::vector<HeldChunk> held;  // while protocol == kUnknown (empty costs nothing)
    size_t held_bytes = 0;
    size_t parse_held = 0;  // parser->Held().bytes at its last drain
  };

  using ConnMap = std::unordered_map<events::ConnKey, Conn, events::ConnKeyHash>;
  Conn& Create(const events::ConnKey& key, uint64_t now_ns);
  // Every removal goes through here so the per-pid index stays exact.
  ConnMap::iterator Erase(ConnMap::iterator it);
  // Decides the protocol from held chunks when it can; returns true once decided.
  bool Detect(Conn& c);
  // The held bytes of one direction from stream position 0, as far as they are
  // contiguous (valid until the next call).
  std::string_view ContiguousStart(const Conn& c, bool egress);
  void Feed(Conn& c, const ChunkView& chunk);
  // Gives out what c's parser has ready. `ended_ns`: when the connection or its process
  // ended (0: it goes on); `seen_until_ns`: then, the last bytes of a connection with none
  // missing (0: some were). They end the records it leaves unanswered (Record::given_up_ns).
  void Drain(Conn& c, uint64_t ended_ns = 0, uint64_t seen_until_ns = 0);
  // Parses pid's TCP connections that got bytes this batch (before a local channel's close
  // or the process's exit gives out its local records).
  void DrainProcess(uint32_t pid);
  // Closes c's parser: requests still waiting become records unanswered for `waiting`
  // (kNoResponse on a clean close turns kNotCaptured when bytes were missed).
  // Keeps parse_held_total_ up to date with what c's parser holds now.
  void NoteParseHeld(Conn& c);
  // Over max_parse_bytes_total: drops the oldest held frames, connection by connection.
  void EvictParseHeld();
  void Finish(Conn& c, const events::ConnCloseEvent* close, protocols::Unanswered waiting,
              uint64_t ended_ns = 0);
  void EvictOldest();
  // The connection's plaintext now comes from the TLS uprobes: its streams restart.
  void StartTls(Conn& c);
  void HoldUnbound(const events::DataEvent& e);
  void ExpireUnbound(uint64_t now_ns);

  // Unbound TLS writes of one TLS object (pid, address), in arrival order.
  struct UnboundWrite {
    events::DataEvent meta;  // meta.data unused
    std::string bytes;
  };
  struct Unbound {
    std::vector<UnboundWrite> writes;
    size_t bytes = 0;
    uint64_t first_ns = 0;
  };
  struct PidSslHash {
    size_t operator()(const std::pair<uint32_t, uint64_t>& k) const {
      return std::hash<uint64_t>()(k.second ^ (uint64_t{k.first} * 0x9E3779B97F4A7C15ULL));
    }
  };

  TrackerOptions options_;
  protocols::ProtocolOptions protocol_options_;
  TrackerSinks sinks_;
  std::vector<ProtocolCounters> protocol_counters_;  // by protocol index
  LocalChannels local_;
  std::unordered_map<std::pair<uint32_t, uint64_t>, Unbound, PidSslHash> unbound_;
  size_t unbound_total_ = 0;
  std::vector<protocols::RequestStart> started_;  // reused scratch
  ConnMap conns_;
  // pid -> its connections, so a process exit costs O(its connections), not O(table):
  // hosts that run thousands of short processes a second must not scan 65k entries each.
  std::unordered_map<uint32_t, std::vector<events::ConnKey>> by_pid_;
  std::vector<protocols::Record> records_;  // reused scratch
  std::vector<events::ConnKey> dirty_;      // connections to parse at DrainPending()
  // Connections drained in the previous batch are drained once more in the next even
  // without new bytes: a gap ages into a hole over two drain cycles, and a connection
  // that goes quiet right after a lost event must not keep its records until close.
  std::vector<events::ConnKey> previous_;
  std::string detect_scratch_;   // ContiguousStart's
  size_t held_total_ = 0;        // sum of Conn::held_bytes
  size_t parse_held_total_ = 0;  // sum of Conn::parse_held
  uint64_t drain_round_ = 0;

  metrics::Counter* opened_;
  metrics::Counter* missing_open_;
  metrics::Counter* evicted_idle_;
  metrics::Counter* evicted_full_;
  metrics::Counter* not_http_;
  metrics::Counter* gaps_;
  metrics::Counter* bytes_ignored_;
  metrics::Counter* tls_plaintext_conns_;
  metrics::Counter* tls_ciphertext_conns_;
  metrics::Counter* tls_ciphertext_bytes_;
  metrics::Counter* tls_unbound_dropped_;
};

}  // namespace kspan::conntrack
