// Typed events: what the event source hands the rest of the pipeline. Plain values with
// Unix-epoch nanosecond timestamps (the one boot-time → wall-clock conversion happens in
// the event source). Nothing here knows about libbpf or the ring buffer layout.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kspan::events {

enum class Direction : uint8_t { kEgress = 1, kIngress = 2 };
enum class Role : uint8_t { kUnknown = 0, kClient = 1, kServer = 2 };

std::string_view RoleName(Role role);

// What a connection is (include/kspan/bpf/events.h enum kspan_conn_kind). Every watched
// process's TCP sockets are tracked; the other kinds only for processes marked as agents
// or MCP servers (BpfEventSource::MarkAgent).
enum class ConnKind : uint8_t {
  kTcp = 0,
  kUnix = 1,    // AF_UNIX stream socket: node's child_process stdio, local servers
  kPipe = 2,    // pipe or FIFO: python's subprocess stdio
  kStdout = 3,  // fd 1 that is none of the above (tty, file, ...): egress only
  kStderr = 4,  // fd 2, likewise
};

std::string_view ConnKindName(ConnKind kind);  // "tcp", "unix", "pipe", "stdout", "stderr"

// (pid, fd, generation): one connection as one process sees it.
struct ConnKey {
  uint32_t pid = 0;
  int32_t fd = -1;
  uint64_t generation = 0;

  bool operator==(const ConnKey&) const = default;
};

struct ConnKeyHash {
  size_t operator()(const ConnKey& k) const {
    return std::hash<uint64_t>()((uint64_t{k.pid} << 32 | static_cast<uint32_t>(k.fd)) ^
                                 (k.generation * 0x9E3779B97F4A7C15ULL));
  }
};

struct Endpoint {
  std::string address;  // textual, "127.0.0.1" or "::1"; v4-mapped v6 shown as v4
  uint16_t port = 0;

  bool operator==(const Endpoint&) const = default;
};

// The addresses of a connection. Only TCP has any: for the other kinds family is AF_UNIX
// (kUnix) or 0 (AF_UNSPEC) and both endpoints are empty ("" and port 0), so never pair
// or key on the tuple of a connection that is not kTcp.
struct SocketTuple {
  int family = 0;  // AF_INET or AF_INET6; AF_UNIX or 0 for other kinds
  Endpoint local;
  Endpoint remote;
};

struct ConnOpenEvent {
  ConnKey key;
  uint32_t tid = 0;
  uint32_t turn = 0;  // see DataEvent::turn
  uint64_t ts_ns = 0;
  Role role = Role::kUnknown;
  bool midstream = false;  // first seen in a data syscall; open before kspan, or missed
  // An accepted TCP connection: the listening socket's accept queue as the accept left it
  // (connections still waiting) and its bound, each capped at 65535.
  bool listen_queue_known = false;
  uint16_t listen_queue = 0;
  uint16_t listen_queue_max = 0;
  ConnKind kind = ConnKind::kTcp;
  SocketTuple tuple;  // addresses only for kTcp
  // kUnix and kPipe: the channel, as both of its ends name it. local_id is this end's
  // inode number, peer_id the other end's (a pipe: the same; a Unix socket: its peer
  // socket's, 0 when unconnected). 0 for the other kinds.
  uint64_t local_id = 0;
  uint64_t peer_id = 0;
};

struct DataEvent {
  ConnKey key;
  uint32_t tid = 0;
  // The thread's event-loop turn: waits (epoll/poll/select) it had returned from, 0 if it
  // never waited. Same non-zero turn of one thread = between the same two waits.
  uint32_t turn = 0;
  uint64_t enter_ns = 0;  // syscall entry
  uint64_t exit_ns = 0;   // syscall exit
  Direction direction = Direction::kEgress;
  Role role = Role::kUnknown;
  uint64_t position = 0;   // stream offset of the first byte in this direction
  uint32_t total_len = 0;  // bytes the syscall moved
  // Plaintext from the TLS library (SSL_read/SSL_write), not the socket. The connection's
  // positions count plaintext from 0 once it is TLS.
  bool tls = false;
  // A TLS write whose socket is not known yet: key.fd is -1, key.generation the TLS
  // object's address, position counts from its first unbound byte; a TlsBindEvent
  // places it later.
  bool unbound = false;
  // The captured prefix (data.size() <= total_len). Points into the ring buffer: valid
  // only while the handler that received the event runs; copy to keep.
  std::string_view data;
};

struct ConnCloseEvent {
  ConnKey key;
  uint32_t tid = 0;
  uint64_t ts_ns = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
};

// Unbound TLS writes of one TLS object found their connection: `bytes` bytes, starting at
// egress position `position` of `key`.
struct TlsBindEvent {
  ConnKey key;
  uint32_t tid = 0;
  uint64_t ts_ns = 0;
  uint64_t ssl = 0;
  uint64_t position = 0;
  uint64_t bytes = 0;
};

// A regular file a marked process (an agent or a tool server) opened for writing, wrote
// and closed (kspan_file_write_event); ts_ns is the close.
struct FileWriteEvent {
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint64_t ts_ns = 0;
  int32_t fd = -1;
  uint32_t writes = 0;
  uint64_t bytes = 0;
  uint64_t first_ns = 0, last_ns = 0;  // the first and last write
  std::string path;                    // as opened, at most KSPAN_PATH_LEN - 1 bytes
};

// listen() by a process skipped until it listens (kspan_listen_event): the socket's port.
struct ListenEvent {
  uint32_t pid = 0;
  uint64_t ts_ns = 0;
  int32_t fd = -1;
  uint16_t port = 0;
};

struct ProcessExecEvent {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint32_t parent_tid = 0;  // the thread of ppid that forked it
  uint64_t ts_ns = 0;
  std::string comm;
  std::string filename;           // as passed to execve
  std::string exe_name;           // basename of the file run, symlinks resolved; may be empty
  std::vector<std::string> argv;  // may be cut short (KSPAN_ARGS_LEN)
  uint32_t netns = 0;             // network namespace inode at exec; 0: unknown
  // Its cgroups at exec as /proc/PID/cgroup lines ("0::/a/b\n1:memory:/a/b\n": the
  // cgroup v2 path, then the memory controller's); a root is left out, so "" when both are.
  std::string cgroup;
};

// A new process (kspan_fork_event): sent only with selection rules, for a parent not skipped.
struct ProcessForkEvent {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint64_t ts_ns = 0;
};

struct ProcessExitEvent {
  uint32_t pid = 0;
  uint64_t ts_ns = 0;
  int32_t exit_code = 0;  // wait(2) status
};

using Event =
    std::variant<ConnOpenEvent, DataEvent, ConnCloseEvent, ProcessExecEvent, ProcessExitEvent, TlsBindEvent>;

}  // namespace kspan::events
