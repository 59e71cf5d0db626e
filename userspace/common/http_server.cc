#include "common/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/log.h"
#include "protocols/http1/parse.h"

namespace kspan::http {
namespace {

using Clock = std::chrono::steady_clock;

// The length of the request head at the start of `s`, its blank line included, or 0 if no
// blank line ends it in `s`. For a head the http1 parser accepted this is exact: its lines
// hold no CR but the one before LF, so the first LF followed by LF or CRLF ends the head.
size_t HeadLength(std::string_view s) {
  for (size_t lf = s.find('\n'); lf != std::string_view::npos; lf = s.find('\n', lf + 1)) {
    const std::string_view rest = s.substr(lf + 1);
    if (rest.starts_with('\n')) return lf + 2;
    if (rest.starts_with("\r\n")) return lf + 3;
  }
  return 0;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The largest request head the server reads: the http1 parser's line bound (16 KiB), so
// that a head over ServerOptions::max_head_bytes is always answered 431, never 400.
constexpr size_t kMaxHeadLimit = protocols::http1::kMaxLineBytes;
// Connections accepted per poll round: a flood of connects cannot starve the others.
constexpr int kAcceptBatch = 64;
// Bytes read and thrown away while draining: past it, close anyway.
constexpr size_t kMaxDrainBytes = 64 * 1024;

}  // namespace

// ---------------------------------------------------------------------------------------
// Addresses.

std::string ListenAddress::ToString() const {
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<ListenAddress> ParseListenAddress(std::string_view where, std::string_view text) {
  auto bad = [&](std::string_view why) -> Status {
    return InvalidArgument(std::string(where) + ": '" + std::string(text) + "' " + std::string(why));
  };
  constexpr std::string_view kExpected =
      "; expected ADDRESS:PORT such as 127.0.0.1:9464 (this host only, recommended), [::1]:9464, or "
      "0.0.0.0:9464 / [::]:9464 for every address";
  ListenAddress a;
  std::string_view host, port;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos)
      return bad(std::string("has no ']' after the IPv6 address") + kExpected.data());
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return bad(std::string("has no :PORT") + kExpected.data());
    port = text.substr(close + 2);
    a.ipv6 = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad(std::string("has no :PORT") + kExpected.data());
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad("has an IPv6 address without brackets; write it as [ADDRESS]:PORT, such as [::1]:9464");
    }
    if (host.empty()) return bad(std::string("has no address") + kExpected.data());
    if (host == "localhost") host = "127.0.0.1";
  }
  unsigned char buf[sizeof(in6_addr)];
  const std::string host_str(host);
  if (inet_pton(a.ipv6 ? AF_INET6 : AF_INET, host_str.c_str(), buf) != 1) {
    return bad(std::string("has '") + host_str + "', which is not a numeric " + (a.ipv6 ? "IPv6" : "IPv4") +
               " address" + std::string(kExpected));
  }
  uint32_t p = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p > 65535) {
    return bad("has the port '" + std::string(port) +
               "', which is not a number from 0 to 65535 (0: any free port)");
  }
  a.host = host_str;
  a.port = static_cast<uint16_t>(p);
  return a;
}

// ---------------------------------------------------------------------------------------
// Requests and responses.

HeadState ParseRequestHead(std::string_view buf, size_t max_head_bytes, Request* out, size_t* head_bytes) {
  namespace http1 = protocols::http1;
  using protocols::ParseState;
  // Only the first `limit` bytes may hold the head. The http1 parser's own bounds (16 KiB a
  // line, 64 KiB a head) answer kInvalid, which would be a 400 where the size is the
  // problem: keeping the limit at or under its line bound makes every oversized head a 431.
  const size_t limit = std::min(max_head_bytes, kMaxHeadLimit);
  std::string_view view = buf.substr(0, std::min(buf.size(), limit));

  http1::Frame frame;
  http1::State state;
  // In parts: a request's head is taken as soon as it is whole, whatever follows (a body
  // the server will not read, cut off at `limit`). No body bytes are kept.
  state.ctx.partial_ok = true;
  state.max_body_prefix = 0;
  ParseState s;
  size_t head_start = 0;  // where the request line starts
  do {
    head_start = std::min(buf.size(), limit) - view.size();
    s = http1::ParseFrame(protocols::MessageType::kRequest, &view, &frame, &state);
  } while (s == ParseState::kIgnored);  // empty lines before the request line, consumed
  switch (s) {
    case ParseState::kNeedsMoreData:
      // A consistent start: more may come, unless `limit` bytes came without its end.
      return buf.size() > limit ? HeadState::kTooLarge : HeadState::kIncomplete;
    case ParseState::kInvalid:
      // Past the limit without a blank line within it is too large whatever the bytes are
      // (the contract in the header); a whole head that is malformed is invalid. (More than
      // 128 fields within the limit is the parser's kInvalid too: a 400, not a 431.)
      if (buf.size() > limit && HeadLength(buf.substr(head_start, limit - head_start)) == 0)
        return HeadState::kTooLarge;
      return HeadState::kInvalid;
    case ParseState::kSuccess:
    case ParseState::kEndOfStream:  // an Upgrade or CONNECT request: its head is all we read
      break;
    case ParseState::kIgnored: return HeadState::kInvalid;  // not reached: looped over above
  }
  const http1::Message& m = frame.msg;
  // Invalid framing (bad or conflicting Content-Length, a Transfer-Encoding not ending in
  // chunked): the tracer reports such a message and stops; a server answers 400 (RFC 9112
  // §6.3).
  if (m.framing_invalid) return HeadState::kInvalid;

  // What the http1 parser accepts (it reads any traffic) and this server does not: a
  // request-target that is neither origin-form (/path?query), absolute-form
  // (scheme://authority/path?query) nor "*" (authority-form is CONNECT's, which is not served).
  const std::string_view target = m.target();
  std::string_view path_and_query = target;
  if (target != "*" && !target.starts_with('/')) {
    const size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0) return HeadState::kInvalid;
    const size_t slash = target.find('/', scheme_end + 3);
    path_and_query = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  path_and_query = path_and_query.substr(0, path_and_query.find('#'));

  Request r;
  r.method = m.method();
  r.target = m.target();
  const size_t q = path_and_query.find('?');
  r.path = std::string(path_and_query.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(path_and_query.substr(q + 1));
  r.minor_version = m.version() == "1.0" ? 0 : 1;  // the parser accepts only "1.0" and "1.1"
  r.headers.reserve(m.headers().size());
  for (const auto& [name, value] : m.headers()) r.headers.emplace_back(Lower(name), value);
  *out = std::move(r);
  *head_bytes = head_start + HeadLength(buf.substr(head_start));
  return HeadState::kComplete;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string SerializeResponse(const Response& r, bool head_only) {
  std::string out;
  out.reserve(160 + (head_only ? 0 : r.body.size()));
  out += "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(ReasonPhrase(r.status)) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n";
  out += "Cache-Control: no-store\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

// ---------------------------------------------------------------------------------------
// The server.

struct HttpServer::Conn {
  enum class Phase { kReading, kWriting, kDraining };
  int fd = -1;
  Phase phase = Phase::kReading;
  std::string in;
  std::string out;
  size_t out_off = 0;
  size_t drained = 0;
  Clock::time_point deadline;
  ~Conn() {
    if (fd >= 0) ::close(fd);
  }
};

HttpServer::HttpServer(ServerOptions options, metrics::Registry* metrics)
    : options_(std::move(options)), metrics_(metrics) {
  bound_ = options_.address;
}

HttpServer::~HttpServer() {
  Stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void HttpServer::Handle(std::string path, Handler handler) {
  routes_[std::move(path)] = std::move(handler);
}

Status HttpServer::Listen() {
  const ListenAddress& a = options_.address;
  const int family = a.ipv6 ? AF_INET6 : AF_INET;
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal("cannot create a socket for " + a.ToString() + ": " + std::strerror(errno));
  const int one = 1;
  // A restarted agent must not fail on the old one's connections in TIME_WAIT.
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (a.ipv6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(a.port);
    inet_pton(AF_INET6, a.host.c_str(), &sa->sin6_addr);
    len = sizeof(*sa);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(a.port);
    inet_pton(AF_INET, a.host.c_str(), &sa->sin_addr);
    len = sizeof(*sa);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int err = errno;
    ::close(fd);
    std::string hint;
    if (err == EADDRINUSE)
      hint = " (another process listens there; pick another port, or 0 for any free one)";
    if (err == EADDRNOTAVAIL) hint = " (not an address of this host)";
    return Unavailable("cannot listen on " + a.ToString() + ": " + std::strerror(err) + hint);
  }
  if (::listen(fd, 128) != 0) {
    const int err = errno;
    ::close(fd);
    return Unavailable("cannot listen on " + a.ToString() + ": " + std::strerror(err));
  }
  sockaddr_storage got{};
  socklen_t got_len = sizeof(got);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&got), &got_len) == 0) {
    bound_.port = ntohs(a.ipv6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                               : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  }
  listen_fd_ = fd;
  return Status::Ok();
}

Status HttpServer::Start() {
  if (listen_fd_ < 0) return Internal("HttpServer::Start before Listen");
  if (thread_.joinable()) return Status::Ok();
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Internal(std::string("eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), options_.thread_name.substr(0, 15).c_str());
    Loop();
  });
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
  (void)ignored;
  thread_.join();
  // New connections are refused from now on, rather than left waiting in the backlog.
  ::close(listen_fd_);
  listen_fd_ = -1;
}

const std::pair<const std::string, Handler>* HttpServer::Route(const std::string& path) const {
  if (auto it = routes_.find(path); it != routes_.end()) return &*it;
  const std::pair<const std::string, Handler>* best = nullptr;
  for (const auto& route : routes_) {
    if (route.first.ends_with('/') && path.starts_with(route.first) &&
        (best == nullptr || route.first.size() > best->first.size())) {
      best = &route;
    }
  }
  return best;
}

void HttpServer::CountResponse(const std::string& route, int status) {
  // Bounded label values: the registered routes, "other", and the few codes sent here.
  metrics_->GetCounter("kspan_http_requests_total", {{"path", route}, {"code", std::to_string(status)}})
      ->Add();
}

void HttpServer::CountDropped(const char* reason) {
  metrics_->GetCounter("kspan_http_connections_dropped_total", {{"reason", reason}})->Add();
}

void HttpServer::Respond(Conn* c, const std::string& route, Response response, bool head_only,
                         Clock::time_point now) {
  CountResponse(route, response.status);
  c->out = SerializeResponse(response, head_only);
  c->out_off = 0;
  c->in.clear();
  c->in.shrink_to_fit();
  c->phase = Conn::Phase::kWriting;
  c->deadline = now + options_.write_timeout;
}

void HttpServer::Dispatch(Conn* c, const Request& req, Clock::time_point now) {
  const auto* route = Route(req.path);
  if (route == nullptr) {
    Respond(c, "other", {404, "text/plain; charset=utf-8", "not found\n", {}}, req.method == "HEAD", now);
    return;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    Respond(c, route->first,
            {405, "text/plain; charset=utf-8", "method not allowed\n", {{"Allow", "GET, HEAD"}}}, false, now);
    return;
  }
  Response r;
  try {
    r = route->second(req);
  } catch (...) {
    // A handler that throws (out of memory building a body) costs one 500, not the agent.
    r = {500, "text/plain; charset=utf-8", "internal error\n", {}};
  }
  Respond(c, route->first, std::move(r), req.method == "HEAD", now);
}

bool HttpServer::OnReadable(Conn* c, Clock::time_point now) {
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(c->fd, buf, sizeof(buf), 0);
    if (n > 0) {
      if (c->phase == Conn::Phase::kDraining) {
        c->drained += static_cast<size_t>(n);
        if (c->drained > kMaxDrainBytes) return false;
        continue;
      }
      if (c->phase != Conn::Phase::kReading) return true;  // input after the head: read while draining
      c->in.append(buf, static_cast<size_t>(n));
      Request req;
      size_t head_bytes = 0;
      switch (ParseRequestHead(c->in, options_.max_head_bytes, &req, &head_bytes)) {
        case HeadState::kIncomplete: continue;
        case HeadState::kComplete: Dispatch(c, req, now); return OnWritable(c, now);
        case HeadState::kInvalid:
          Respond(c, "other", {400, "text/plain; charset=utf-8", "bad request\n", {}}, false, now);
          return OnWritable(c, now);
        case HeadState::kTooLarge:
          Respond(c, "other", {431, "text/plain; charset=utf-8", "request head too large\n", {}}, false, now);
          return OnWritable(c, now);
      }
    }
    if (n == 0) {
      if (c->phase == Conn::Phase::kReading) CountDropped("client_closed");
      return false;  // EOF: while draining, the normal end
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    if (c->phase == Conn::Phase::kReading) CountDropped("client_closed");
    return false;  // reset
  }
}

bool HttpServer::OnWritable(Conn* c, Clock::time_point now) {
  while (c->out_off < c->out.size()) {
    const ssize_t n = ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    CountDropped("write_failed");
    return false;
  }
  // All sent: half-close and wait briefly for the client's EOF.
  c->out.clear();
  c->out.shrink_to_fit();
  ::shutdown(c->fd, SHUT_WR);
  c->phase = Conn::Phase::kDraining;
  c->deadline = now + options_.linger;
  return true;
}

void HttpServer::Accept(Clock::time_point now) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: the connection stays in the backlog and the
        // listening socket stays readable. Pause accepting briefly rather than spin.
        CountDropped("accept_failed");
        accept_resume_ = now + std::chrono::milliseconds(100);
      }
      return;  // EAGAIN, or an error of that one connection (ECONNABORTED)
    }
    if (conns_.size() >= options_.max_connections) {
      // Over the limit: a best-effort 503 on the fresh socket (its send buffer is empty),
      // then close.
      CountResponse("other", 503);
      const std::string r =
          SerializeResponse({503, "text/plain; charset=utf-8", "too many connections\n", {}}, false);
      ssize_t ignored = ::send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)ignored;
      ::close(fd);
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->deadline = now + options_.read_timeout;
    conns_.push_back(std::move(c));
  }
}

void HttpServer::Loop() {
  std::vector<pollfd> fds;
  while (true) {
    open_connections_.store(conns_.size(), std::memory_order_relaxed);
    const Clock::time_point now = Clock::now();
    // Expire deadlines first, so a slow client gets its 408 even when nothing else happens.
    for (auto& c : conns_) {
      if (now < c->deadline) continue;
      switch (c->phase) {
        case Conn::Phase::kReading:
          Respond(c.get(), "other", {408, "text/plain; charset=utf-8", "request timeout\n", {}}, false, now);
          if (!OnWritable(c.get(), now)) c.reset();
          break;
        case Conn::Phase::kWriting:
          CountDropped("write_timeout");
          c.reset();
          break;
        case Conn::Phase::kDraining: c.reset(); break;
      }
    }
    conns_.erase(std::remove(conns_.begin(), conns_.end(), nullptr), conns_.end());

    Clock::time_point next = now + std::chrono::seconds(1);
    for (const auto& c : conns_) next = std::min(next, c->deadline);
    const bool accepting = now >= accept_resume_;
    if (!accepting) next = std::min(next, accept_resume_);
    const int timeout_ms = static_cast<int>(
        std::max<int64_t>(1, std::chrono::ceil<std::chrono::milliseconds>(next - now).count()));

    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, static_cast<short>(accepting ? POLLIN : 0), 0});
    for (const auto& c : conns_) {
      fds.push_back({c->fd, static_cast<short>(c->phase == Conn::Phase::kWriting ? POLLOUT : POLLIN), 0});
    }
    const int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {  // cannot happen with valid fds; end rather than spin
      log::Error("http server stopped", {{"error", std::strerror(errno)}});
      break;
    }
    if (n <= 0) continue;
    if (fds[0].revents) break;  // Stop()
    const Clock::time_point t = Clock::now();
    for (size_t i = 0; i < conns_.size(); ++i) {
      const short re = fds[i + 2].revents;
      if (re == 0) continue;
      Conn* c = conns_[i].get();
      bool keep = true;
      if (c->phase == Conn::Phase::kWriting) {
        keep = (re & (POLLOUT | POLLERR | POLLHUP)) ? OnWritable(c, t) : true;
      } else {
        keep = OnReadable(c, t);
      }
      if (!keep) conns_[i].reset();
    }
    conns_.erase(std::remove(conns_.begin(), conns_.end(), nullptr), conns_.end());
    if (fds[1].revents & POLLIN) Accept(t);
  }
  conns_.clear();
  open_connections_.store(0, std::memory_order_relaxed);
}

}  // namespace kspan::http
