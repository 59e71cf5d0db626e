#include "testing/event_generator.h"

#include <sys/socket.h>

#include <algorithm>
#include <type_traits>
#include <variant>

namespace kspan::testing {

using events::ConnKind;
using events::Direction;
using events::Role;

EventGenerator::EventGenerator(MockClock* clock, uint64_t step_ns, uint64_t syscall_ns)
    : clock_(clock), step_ns_(step_ns), syscall_ns_(syscall_ns) {}

uint64_t EventGenerator::Stamp() {
  const uint64_t t = clock_->now_ns();
  clock_->Advance(step_ns_);
  return t;
}

Payload EventGenerator::Keep(std::string_view bytes) {
  auto it = kept_.find(bytes);
  if (it == kept_.end()) it = kept_.emplace(bytes).first;
  return Payload(*it);
}

// ---- Ends ---------------------------------------------------------------------------------

ConnEnd EventGenerator::NewEnd(uint32_t pid, int32_t fd, Role role, ConnKind kind) {
  ConnEnd e;
  e.key = {pid, fd, next_generation_++};
  e.tid = pid;
  e.role = role;
  e.kind = kind;
  return e;
}

ConnEnd EventGenerator::Tcp(uint32_t pid, int32_t fd, Role role, events::Endpoint local,
                            events::Endpoint remote, bool ipv6) {
  ConnEnd e = NewEnd(pid, fd, role, ConnKind::kTcp);
  e.tuple.family = ipv6 ? AF_INET6 : AF_INET;
  e.tuple.local = std::move(local);
  e.tuple.remote = std::move(remote);
  return e;
}

TcpPair EventGenerator::LoopbackPair(const TcpPairOptions& o) {
  const std::string host = o.ipv6 ? "::1" : "127.0.0.1";
  const events::Endpoint client{host, o.client_port}, server{host, o.server_port};
  TcpPair p;
  p.client = Tcp(o.client_pid, o.client_fd, Role::kClient, client, server, o.ipv6);
  p.server = Tcp(o.server_pid, o.server_fd, Role::kServer, server, client, o.ipv6);
  return p;
}

ChannelPair EventGenerator::Pipe(uint32_t writer_pid, int32_t write_fd, uint32_t reader_pid, int32_t read_fd,
                                 uint64_t inode) {
  ChannelPair p;
  p.a = NewEnd(writer_pid, write_fd, Role::kUnknown, ConnKind::kPipe);
  p.b = NewEnd(reader_pid, read_fd, Role::kUnknown, ConnKind::kPipe);
  p.a.local_id = p.a.peer_id = p.b.local_id = p.b.peer_id = inode;
  return p;
}

ChannelPair EventGenerator::UnixPair(uint32_t pid_a, int32_t fd_a, uint64_t inode_a, uint32_t pid_b,
                                     int32_t fd_b, uint64_t inode_b) {
  ChannelPair p;
  p.a = NewEnd(pid_a, fd_a, Role::kUnknown, ConnKind::kUnix);
  p.b = NewEnd(pid_b, fd_b, Role::kUnknown, ConnKind::kUnix);
  p.a.tuple.family = p.b.tuple.family = AF_UNIX;
  p.a.local_id = p.b.peer_id = inode_a;
  p.b.local_id = p.a.peer_id = inode_b;
  return p;
}

ConnEnd EventGenerator::Stdout(uint32_t pid) {
  return NewEnd(pid, 1, Role::kUnknown, ConnKind::kStdout);
}

ConnEnd EventGenerator::Stderr(uint32_t pid) {
  return NewEnd(pid, 2, Role::kUnknown, ConnKind::kStderr);
}

// ---- Single events ----------------------------------------------------------------------

events::ConnOpenEvent EventGenerator::Open(const ConnEnd& end, bool midstream) {
  events::ConnOpenEvent e;
  e.key = end.key;
  e.tid = end.tid;
  e.turn = end.turn;
  e.ts_ns = Stamp();
  e.role = end.role;
  e.midstream = midstream;
  e.kind = end.kind;
  e.tuple = end.tuple;
  e.local_id = end.local_id;
  e.peer_id = end.peer_id;
  return e;
}

events::DataEvent EventGenerator::Data(ConnEnd* end, Direction dir, std::string_view bytes,
                                       uint32_t total_len) {
  events::DataEvent e;
  e.key = end->key;
  e.tid = end->tid;
  e.turn = end->turn;
  e.enter_ns = Stamp();
  e.exit_ns = e.enter_ns + syscall_ns_;
  e.direction = dir;
  e.role = end->role;
  e.total_len = std::max<uint32_t>(total_len, static_cast<uint32_t>(bytes.size()));
  uint64_t& pos = dir == Direction::kEgress ? end->sent : end->received;
  e.position = pos;
  pos += e.total_len;
  e.data = bytes;
  return e;
}

events::DataEvent EventGenerator::Send(ConnEnd* end, std::string_view bytes, uint32_t total_len) {
  return Data(end, Direction::kEgress, Keep(bytes).bytes(), total_len);
}
events::DataEvent EventGenerator::Send(ConnEnd* end, Payload bytes, uint32_t total_len) {
  return Data(end, Direction::kEgress, bytes.bytes(), total_len);
}
events::DataEvent EventGenerator::Recv(ConnEnd* end, std::string_view bytes, uint32_t total_len) {
  return Data(end, Direction::kIngress, Keep(bytes).bytes(), total_len);
}
events::DataEvent EventGenerator::Recv(ConnEnd* end, Payload bytes, uint32_t total_len) {
  return Data(end, Direction::kIngress, bytes.bytes(), total_len);
}

events::ConnCloseEvent EventGenerator::Close(const ConnEnd& end) {
  events::ConnCloseEvent e;
  e.key = end.key;
  e.tid = end.tid;
  e.ts_ns = Stamp();
  e.bytes_sent = end.sent;
  e.bytes_received = end.received;
  return e;
}

events::ProcessExecEvent EventGenerator::Exec(uint32_t pid, uint32_t ppid, std::vector<std::string> argv,
                                              uint32_t parent_tid) {
  events::ProcessExecEvent e;
  e.pid = pid;
  e.ppid = ppid;
  e.parent_tid = parent_tid != 0 ? parent_tid : ppid;
  e.ts_ns = Stamp();
  e.filename = argv.empty() ? std::string() : argv.front();
  const size_t slash = e.filename.rfind('/');
  e.exe_name = slash == std::string::npos ? e.filename : e.filename.substr(slash + 1);
  e.comm = e.exe_name.substr(0, 15);  // TASK_COMM_LEN 16, with its NUL
  e.argv = std::move(argv);
  return e;
}

events::ProcessExitEvent EventGenerator::Exit(uint32_t pid, int32_t exit_code) {
  events::ProcessExitEvent e;
  e.pid = pid;
  e.ts_ns = Stamp();
  e.exit_code = exit_code;
  return e;
}

// ---- HTTP/1 -----------------------------------------------------------------------------

template <typename Emit>
void EventGenerator::Exchange(TcpPair* pair, Payload request, Payload response, const ExchangeTiming& timing,
                              Emit&& emit) {
  // Four events at fixed offsets from the start; Stamp() moves the clock step_ns after each,
  // so place each one explicitly.
  const uint64_t t0 = clock_->now_ns();
  emit(Send(&pair->client, request));
  clock_->Set(t0 + timing.network_ns);
  emit(Recv(&pair->server, request));
  clock_->Set(t0 + timing.network_ns + timing.service_ns);
  emit(Send(&pair->server, response));
  clock_->Set(t0 + 2 * timing.network_ns + timing.service_ns);
  emit(Recv(&pair->client, response));
}

std::vector<events::DataEvent> EventGenerator::HttpExchange(TcpPair* pair, Payload request, Payload response,
                                                            const ExchangeTiming& timing) {
  std::vector<events::DataEvent> out;
  out.reserve(4);
  Exchange(pair, request, response, timing, [&out](const events::DataEvent& e) { out.push_back(e); });
  return out;
}

void EventGenerator::HttpExchange(TcpPair* pair, Payload request, Payload response, events::EventSink* sink,
                                  const ExchangeTiming& timing) {
  Exchange(pair, request, response, timing, [sink](const events::DataEvent& e) { sink->OnData(e); });
}

std::vector<events::DataEvent> EventGenerator::HttpExchange(TcpPair* pair, std::string_view request,
                                                            std::string_view response,
                                                            const ExchangeTiming& timing) {
  return HttpExchange(pair, Keep(request), Keep(response), timing);
}

std::vector<events::DataEvent> EventGenerator::HttpExchange(ConnEnd* end, std::string_view request,
                                                            std::string_view response,
                                                            const ExchangeTiming& timing) {
  const bool client = end->role != Role::kServer;
  const uint64_t t0 = clock_->now_ns();
  std::vector<events::DataEvent> out;
  out.reserve(2);
  out.push_back(client ? Send(end, request) : Recv(end, request));
  // A client sees the answer a round trip plus the service time later; a server answers
  // after its service time.
  clock_->Set(t0 + (client ? 2 * timing.network_ns + timing.service_ns : timing.service_ns));
  out.push_back(client ? Recv(end, response) : Send(end, response));
  return out;
}

std::vector<events::DataEvent> EventGenerator::KeepAlive(
    TcpPair* pair, const std::vector<std::pair<std::string, std::string>>& exchanges, uint64_t gap_ns,
    const ExchangeTiming& timing) {
  std::vector<events::DataEvent> out;
  for (const auto& [request, response] : exchanges) {
    const uint64_t start = clock_->now_ns();
    for (events::DataEvent& e : HttpExchange(pair, request, response, timing)) out.push_back(e);
    clock_->Set(std::max(clock_->now_ns(), start + gap_ns));
  }
  return out;
}

std::string EventGenerator::HttpRequest(std::string_view method, std::string_view target,
                                        const std::vector<std::pair<std::string, std::string>>& headers,
                                        std::string_view body) {
  std::string s = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\n";
  const bool has_host = std::any_of(headers.begin(), headers.end(), [](const auto& h) {
    return h.first.size() == 4 && (h.first[0] | 0x20) == 'h' && (h.first[1] | 0x20) == 'o' &&
           (h.first[2] | 0x20) == 's' && (h.first[3] | 0x20) == 't';
  });
  if (!has_host) s += "Host: 127.0.0.1:8080\r\n";
  for (const auto& [name, value] : headers) s += name + ": " + value + "\r\n";
  if (!body.empty()) s += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  s += "\r\n";
  s += body;
  return s;
}

std::string EventGenerator::HttpResponse(int status, std::string_view body,
                                         const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string_view reason = "Status";
  switch (status) {
    case 200: reason = "OK"; break;
    case 201: reason = "Created"; break;
    case 204: reason = "No Content"; break;
    case 400: reason = "Bad Request"; break;
    case 404: reason = "Not Found"; break;
    case 500: reason = "Internal Server Error"; break;
    case 503: reason = "Service Unavailable"; break;
    default: break;
  }
  std::string s = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  for (const auto& [name, value] : headers) s += name + ": " + value + "\r\n";
  s += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  s += body;
  return s;
}

void Feed(events::EventSink* sink, const events::Event& e) {
  std::visit(
      [sink](const auto& ev) {
        using T = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<T, events::ConnOpenEvent>) {
          sink->OnConnOpen(ev);
        } else if constexpr (std::is_same_v<T, events::DataEvent>) {
          sink->OnData(ev);
        } else if constexpr (std::is_same_v<T, events::ConnCloseEvent>) {
          sink->OnConnClose(ev);
        } else if constexpr (std::is_same_v<T, events::ProcessExecEvent>) {
          sink->OnExec(ev);
        } else if constexpr (std::is_same_v<T, events::ProcessExitEvent>) {
          sink->OnExit(ev);
        } else {
          sink->OnTlsBind(ev);
        }
      },
      e);
}

}  // namespace kspan::testing
