// A small HTTP/1.x server for the agent's own endpoints (/metrics, /api/..., later a web
// UI): GET and HEAD only, one response per connection (Connection: close), no TLS, no
// keep-alive, no request bodies. It is not on the data path and must never endanger it:
//
//   - one thread, poll(2) over non-blocking sockets; handlers run on that thread;
//   - bounded: at most max_connections open at once (one more is answered 503 and closed),
//     a request head of at most max_head_bytes (else 431), the whole head within
//     read_timeout of the accept (else 408: a slow client holds a slot that long at most),
//     the response written within write_timeout (else the connection is closed);
//   - bad input is a 4xx response and a counter, never a crash or a log line per request.
//
// A connection's life:
//
//   accept ─▶ reading ─head complete─▶ handler ─▶ writing ─all sent─▶ draining ─▶ close
//               │  └─ too large / invalid / timeout ─▶ 431/400/408 ─┘
//               └─ peer closed or reset ─▶ close (counted)
//
// Draining: shutdown(SHUT_WR), then read and throw away until the peer's EOF (at most
// `linger`), because closing a socket with unread input makes the kernel send a reset,
// which can destroy a response the client has not read yet.
//
// Counted: kspan_http_requests_total{path,code}, every response begun, path being the
// route that matched or "other"; kspan_http_connections_dropped_total{reason}, every
// connection closed without a whole response (client_closed, write_failed, write_timeout),
// or not accepted (accept_failed: out of file descriptors).
//
// Threading: Handle() before Start(); Listen(), Start() and Stop() from one thread (the
// owner's). Handlers run on the server thread and must be thread-safe with respect to
// the rest of the agent.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace kspan::http {

// Where to listen: a numeric IPv4 address or a bracketed IPv6 one, and a port.
struct ListenAddress {
  std::string host;  // "127.0.0.1", "::1" (no brackets)
  uint16_t port = 0;
  bool ipv6 = false;
  // "127.0.0.1:9464", "[::1]:9464".
  std::string ToString() const;
};

// Parses HOST:PORT: 127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464, [::]:9464, localhost:9464
// (= 127.0.0.1). The address is required (":9464" is an error that says how to listen on
// every address), so that exposing the endpoint beyond the host is a decision someone
// wrote down. Port 0 asks the kernel for a free port. `where` names the flag or key in
// the error.
Result<ListenAddress> ParseListenAddress(std::string_view where, std::string_view text);

struct Request {
  std::string method;                                        // as sent: GET, HEAD, POST...
  std::string target;                                        // as sent: /metrics?x=1
  std::string path;                                          // the target up to '?'
  std::string query;                                         // after '?', without it
  int minor_version = 1;                                     // HTTP/1.x
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// How much of a request head `buf` holds.
enum class HeadState {
  kIncomplete,  // no blank line yet, within max_head_bytes: read more
  kComplete,    // *out filled; *head_bytes is the head's length with its blank line
  kInvalid,     // not an HTTP/1.x request head (400)
  kTooLarge,    // no blank line within max_head_bytes, or a head longer than that (431)
};
// Reads a request head with the project's HTTP/1 parser (protocols/http1/parse.h, the one
// that reads captured traffic, fuzzed there and here: tests/fuzz/http_server_fuzz.cc), so the
// agent's own endpoint accepts exactly the request heads the tracer parses: request line
// `METHOD SP TARGET SP HTTP/1.x` (METHOD upper case, at most 20 characters), header fields
// `name: value` (at most 128), a blank line. Lines end in CRLF or a bare LF; empty lines
// before the request line are skipped (RFC 9112 §2.2). Obsolete line folding, control
// characters, a malformed Content-Length and a request body that is not delimited are
// invalid. On top of that parser, the server's own rules: TARGET is origin-form
// (/path?query), or absolute-form (http://host/path), whose path is used, or "*"; the head
// must end within max_head_bytes (at most 16 KiB in effect, the parser's line bound). A pure
// function of its arguments; *out and *head_bytes are written only on kComplete.
HeadState ParseRequestHead(std::string_view buf, size_t max_head_bytes, Request* out, size_t* head_bytes);

// "HTTP/1.1 404 Not Found\r\n...": status line, Content-Type, Content-Length,
// Connection: close, Cache-Control: no-store, the extra headers, and the body unless
// `head_only` (a HEAD request: the same headers, no body).
std::string SerializeResponse(const Response& r, bool head_only);
std::string_view ReasonPhrase(int status);

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  ListenAddress address;
  size_t max_connections = 64;
  size_t max_head_bytes = 8192;
  std::chrono::milliseconds read_timeout{5000};   // from accept to a complete head
  std::chrono::milliseconds write_timeout{5000};  // from the handler's return to the last byte
  std::chrono::milliseconds linger{1000};         // draining after the response, at most
  std::string thread_name = "kspan-http";
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, metrics::Registry* metrics);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes GET and HEAD of `path` to `handler`. A path that ends in '/' matches every path
  // under it too ("/ui/" serves "/ui/app.js"), the longest match wins. Other methods on a
  // known path get 405 (with Allow: GET, HEAD); unknown paths 404. Before Start() only.
  void Handle(std::string path, Handler handler);

  // Binds and listens; afterwards bound() is the real address (the kernel's port for
  // port 0). Connections wait in the backlog until Start(). Errors name the address and
  // errno (address in use, not an address of this host, permission).
  Status Listen();
  const ListenAddress& bound() const { return bound_; }
  // Starts the server thread (after Listen()).
  Status Start();
  // Stops the thread and closes every socket, the listening one too (connects are refused
  // from then on): connections in progress are cut. Idempotent; returns at once (the
  // thread is woken, not waited out).
  void Stop();

  size_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }

 private:
  struct Conn;
  void Loop();
  void Accept(std::chrono::steady_clock::time_point now);
  // Reads what is there and advances the state machine; false: close the connection.
  bool OnReadable(Conn* c, std::chrono::steady_clock::time_point now);
  bool OnWritable(Conn* c, std::chrono::steady_clock::time_point now);
  void Respond(Conn* c, const std::string& route, Response response, bool head_only,
               std::chrono::steady_clock::time_point now);
  void Dispatch(Conn* c, const Request& req, std::chrono::steady_clock::time_point now);
  // The route for `path`: exact, else the longest prefix route; nullptr if none.
  const std::pair<const std::string, Handler>* Route(const std::string& path) const;
  void CountResponse(const std::string& route, int status);
  void CountDropped(const char* reason);

  ServerOptions options_;
  metrics::Registry* metrics_;
  std::map<std::string, Handler> routes_;
  ListenAddress bound_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;                                       // eventfd: Stop() wakes the loop
  std::chrono::steady_clock::time_point accept_resume_{};  // after accept ran out of fds
  std::thread thread_;
  std::vector<std::unique_ptr<Conn>> conns_;  // the loop thread only
  std::atomic<size_t> open_connections_{0};
};

}  // namespace kspan::http
