// HTTP POST for the network exporters (OTLP/HTTP, Zipkin), over libcurl. One client per
// exporter, used only by that exporter's thread: the easy handle keeps its connection
// alive between requests, and nothing is shared, so nothing is locked.
//
// What is sent, every time:  POST <url>
//   Content-Type: <content_type>            Content-Encoding: gzip (when compressed)
//   User-Agent: kspan/<version>             the configured headers, as given
//   Expect: (none; no 100-continue round trip)
// https uses the system's trust store, or only `certificate_file` (PEM) when set; the
// peer and host name are always verified. Redirects are not followed, and only http and
// https are allowed. Proxies come from the usual environment (https_proxy, no_proxy),
// as curl(1) reads them.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "exporters/transport.h"

namespace kspan::exporters {

struct HttpClientOptions {
  std::string url;
  std::string content_type;
  bool gzip = false;  // the body given to Post is already gzip-compressed
  std::vector<std::pair<std::string, std::string>> headers;
  std::string certificate_file;  // PEM CA bundle; empty: the system's
};

struct HttpResponse {
  long status = 0;               // 0: no HTTP response at all (see error)
  std::string body;              // the first kMaxBody bytes
  std::string retry_after;       // the Retry-After header, if the response had one
  std::string error;             // when status == 0: libcurl's message
  bool retryable_error = false;  // when status == 0: a network failure worth retrying
  // When status == 0: the whole body was handed to the connection before the failure, so
  // the server may have the request (a retry may duplicate it).
  bool request_written = false;
  bool timed_out = false;  // when status == 0: the deadline passed
  // A 2xx status line came and the rest of the response was lost (error says how): the
  // server took the request. Its body (an OTLP partial_success) may be cut.
  bool truncated = false;
  static constexpr size_t kMaxBody = 1 << 20;
};

class HttpClient {
 public:
  // Checks the URL scheme and that certificate_file is readable; errors name the value.
  static Result<std::unique_ptr<HttpClient>> Create(HttpClientOptions options);
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One POST of `body`, abandoned at `deadline`. Never throws.
  HttpResponse Post(std::string_view body, Transport::Clock::time_point deadline) noexcept;

  const std::string& url() const { return options_.url; }

 private:
  explicit HttpClient(HttpClientOptions options);

  HttpClientOptions options_;
  void* curl_ = nullptr;         // CURL*
  void* header_list_ = nullptr;  // curl_slist*
};

// The retry verdict for a response (retry.h): 2xx sent, 429/502/503/504 and network
// errors retryable (with Retry-After when present), everything else permanent. A network
// error after the whole body was written, and a 504 (a gateway gave up waiting for the
// server behind it), are marked maybe_delivered (transport.h).
SendResult ClassifyHttpResponse(const HttpResponse& response, std::chrono::system_clock::time_point now);

// `in` as a gzip member (RFC 1952), for Content-Encoding: gzip.
std::string Gzip(std::string_view in);

}  // namespace kspan::exporters
