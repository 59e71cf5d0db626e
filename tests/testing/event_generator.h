// Synthetic events as the event source hands them on (userspace/events/events.h), for
// driving the tracker, parsers, correlator and the whole Pipeline without a kernel: unit
// tests and bench/src/pipeline_bench.cc use the same builders.
//
// What the generator keeps right, so a test states only what it is about:
//   - stream positions: each end counts the bytes it sent (egress) and received (ingress),
//     as the kernel does; a data event carries the position of its first byte and moves
//     its direction on by total_len (also when only a prefix was captured);
//   - identity: every end gets its own generation, so (pid, fd, generation) never repeats;
//   - time: each event is stamped from a MockClock (testing/clock.h) and the clock moves on,
//     by `step_ns` after a single event, by the exchange's timing inside an HTTP exchange;
//   - the two ends of one same-host TCP connection: mirrored tuples (the client's local
//     endpoint is the server's remote one and back), the client's and the server's pid;
//   - local channels: a pipe's two ends share one inode (local_id = peer_id); a Unix socket
//     pair's ends each name their own inode and the other's; stdout/stderr ends have none.
//
// Payload bytes: DataEvent::data is a view. The string_view overloads copy the bytes into
// the generator (one copy per distinct content), so an event stays valid as long as its
// generator. A hot loop (the bench) interns its payloads once with Keep() and passes the
// Payload, which is not copied or looked up again.
//
// Not thread-safe; one generator per test. Ends (ConnEnd) are plain values the caller owns;
// the generator only reads and advances them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "events/event_sink.h"
#include "events/events.h"
#include "testing/clock.h"

namespace kspan::testing {

// One end of a connection or channel, as one process sees it.
struct ConnEnd {
  events::ConnKey key;
  uint32_t tid = 0;   // the thread its events carry (default: the main thread, tid = pid)
  uint32_t turn = 0;  // the event-loop turn its events carry; 0: unknown (NextTurn)
  events::Role role = events::Role::kUnknown;
  events::ConnKind kind = events::ConnKind::kTcp;
  events::SocketTuple tuple;  // kTcp only
  uint64_t local_id = 0;      // kPipe / kUnix: inodes (events::ConnOpenEvent)
  uint64_t peer_id = 0;
  // Stream positions: bytes sent (egress) and received (ingress) so far.
  uint64_t sent = 0;
  uint64_t received = 0;

  // The thread's next wait returned: later events are in a new event-loop turn.
  void NextTurn() { ++turn; }
};

// The two same-host ends of one TCP connection.
struct TcpPair {
  ConnEnd client;
  ConnEnd server;
};

struct TcpPairOptions {
  uint32_t client_pid = 4001;
  int32_t client_fd = 10;
  uint16_t client_port = 40000;
  uint32_t server_pid = 4002;
  int32_t server_fd = 10;
  uint16_t server_port = 8080;
  bool ipv6 = false;  // 127.0.0.1, or ::1
};

// The two ends of a pipe or Unix socket pair: `a` is the first end asked for (a pipe's
// writer), `b` the other (a pipe's reader).
struct ChannelPair {
  ConnEnd a;
  ConnEnd b;
};

// When the events of one HTTP exchange happen, from the clock's time at the start: the
// request leaves the client, reaches the server network_ns later, the server answers
// service_ns after that, the answer reaches the client network_ns later.
struct ExchangeTiming {
  uint64_t network_ns = 5'000;
  uint64_t service_ns = 20'000;
};

// A payload interned by EventGenerator::Keep(): its bytes live as long as the generator.
class Payload {
 public:
  std::string_view bytes() const { return bytes_; }

 private:
  friend class EventGenerator;
  explicit Payload(std::string_view b) : bytes_(b) {}
  std::string_view bytes_;
};

class EventGenerator {
 public:
  // `clock` must outlive the generator. `step_ns`: how far the clock moves after each single
  // event; `syscall_ns`: a data event's exit_ns - enter_ns.
  explicit EventGenerator(MockClock* clock, uint64_t step_ns = 1'000, uint64_t syscall_ns = 2'000);

  MockClock& clock() { return *clock_; }

  // ---- Ends -------------------------------------------------------------------------
  // A TCP end with the tuple as `pid` sees it (local = its own endpoint).
  ConnEnd Tcp(uint32_t pid, int32_t fd, events::Role role, events::Endpoint local, events::Endpoint remote,
              bool ipv6 = false);
  // Both ends of one loopback TCP connection, tuples mirrored.
  TcpPair LoopbackPair(const TcpPairOptions& options = {});
  // A pipe: `writer_pid`'s write end and `reader_pid`'s read end, both naming `inode`.
  ChannelPair Pipe(uint32_t writer_pid, int32_t write_fd, uint32_t reader_pid, int32_t read_fd,
                   uint64_t inode);
  // A connected Unix socket pair (socketpair(2), or a listener's accepted socket and its
  // client): end a is inode_a in pid_a, end b inode_b in pid_b; each names the other as peer.
  ChannelPair UnixPair(uint32_t pid_a, int32_t fd_a, uint64_t inode_a, uint32_t pid_b, int32_t fd_b,
                       uint64_t inode_b);
  // fd 1 or fd 2 of `pid` when it is neither a socket nor a pipe (a tty, a file).
  ConnEnd Stdout(uint32_t pid);
  ConnEnd Stderr(uint32_t pid);

  // ---- Single events (each stamped now, then the clock moves step_ns) ------------------
  events::ConnOpenEvent Open(const ConnEnd& end, bool midstream = false);
  // `end` sends / receives `bytes`. total_len: the bytes the syscall moved, when more than
  // were captured (0: bytes.size()); the position moves by total_len.
  events::DataEvent Send(ConnEnd* end, std::string_view bytes, uint32_t total_len = 0);
  events::DataEvent Send(ConnEnd* end, Payload bytes, uint32_t total_len = 0);
  events::DataEvent Recv(ConnEnd* end, std::string_view bytes, uint32_t total_len = 0);
  events::DataEvent Recv(ConnEnd* end, Payload bytes, uint32_t total_len = 0);
  // bytes_sent / bytes_received from the end's positions.
  events::ConnCloseEvent Close(const ConnEnd& end);
  // `pid` exec'd argv[0] (argv must not be empty); comm and exe_name are its basename
  // (comm cut to 15 characters, as the kernel does). parent_tid 0: ppid's main thread.
  events::ProcessExecEvent Exec(uint32_t pid, uint32_t ppid, std::vector<std::string> argv,
                                uint32_t parent_tid = 0);
  events::ProcessExitEvent Exit(uint32_t pid, int32_t exit_code = 0);

  // ---- HTTP/1 ------------------------------------------------------------------------
  // One request and its response on both ends of a same-host connection: client send,
  // server receive, server send, client receive, timed by `timing`. Afterwards the clock
  // is at the client's receive plus step_ns.
  std::vector<events::DataEvent> HttpExchange(TcpPair* pair, Payload request, Payload response,
                                              const ExchangeTiming& timing = {});
  std::vector<events::DataEvent> HttpExchange(TcpPair* pair, std::string_view request,
                                              std::string_view response, const ExchangeTiming& timing = {});
  // The same four events handed straight to `sink` (no vector per exchange: the bench).
  void HttpExchange(TcpPair* pair, Payload request, Payload response, events::EventSink* sink,
                    const ExchangeTiming& timing = {});
  // The same seen from one end only (the other process is not traced): a client sends the
  // request and receives the response, a server the other way round; two events.
  std::vector<events::DataEvent> HttpExchange(ConnEnd* end, std::string_view request,
                                              std::string_view response, const ExchangeTiming& timing = {});
  // Keep-alive: the exchanges one after another on the same connection, `gap_ns` apart
  // (from one request's start to the next's).
  std::vector<events::DataEvent> KeepAlive(TcpPair* pair,
                                           const std::vector<std::pair<std::string, std::string>>& exchanges,
                                           uint64_t gap_ns = 100'000, const ExchangeTiming& timing = {});

  // A request ("GET /path HTTP/1.1", Host: 127.0.0.1:8080 unless `headers` has one, the
  // headers, Content-Length when there is a body, blank line, body) and a response (status
  // line, the headers, Content-Length, blank line, body), as a small client and server send them.
  static std::string HttpRequest(std::string_view method, std::string_view target,
                                 const std::vector<std::pair<std::string, std::string>>& headers = {},
                                 std::string_view body = "");
  static std::string HttpResponse(int status, std::string_view body = "",
                                  const std::vector<std::pair<std::string, std::string>>& headers = {});

  // Interns `bytes`: the view stays valid as long as the generator.
  Payload Keep(std::string_view bytes);

 private:
  events::DataEvent Data(ConnEnd* end, events::Direction dir, std::string_view bytes, uint32_t total_len);
  template <typename Emit>
  void Exchange(TcpPair* pair, Payload request, Payload response, const ExchangeTiming& timing, Emit&& emit);
  ConnEnd NewEnd(uint32_t pid, int32_t fd, events::Role role, events::ConnKind kind);
  uint64_t Stamp();  // now; then the clock moves step_ns

  MockClock* clock_;
  uint64_t step_ns_;
  uint64_t syscall_ns_;
  uint64_t next_generation_ = 1;
  // Looked up by view (no std::string built per lookup); node-based, so a kept string
  // never moves.
  struct ViewHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_set<std::string, ViewHash, std::equal_to<>> kept_;
};

// Hands `e` to the sink's handler for its type.
void Feed(events::EventSink* sink, const events::Event& e);
template <typename T>
void Feed(events::EventSink* sink, const std::vector<T>& events) {
  for (const T& e : events) Feed(sink, events::Event(e));
}

}  // namespace kspan::testing
