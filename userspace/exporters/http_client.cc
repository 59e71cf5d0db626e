#include "exporters/http_client.h"

#include <curl/curl.h>
#include <kspan/version.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "common/strings.h"
#include "exporters/retry.h"

namespace kspan::exporters {
namespace {

// libcurl's global state, once, before any handle (and before threads use it).
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* r = static_cast<HttpResponse*>(user);
  const size_t n = size * nmemb;
  const size_t room = HttpResponse::kMaxBody - std::min(HttpResponse::kMaxBody, r->body.size());
  r->body.append(data, std::min(n, room));
  return n;  // the rest is read and discarded, not an error
}

size_t OnHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* r = static_cast<HttpResponse*>(user);
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  // A new status line starts a new response (after a 1xx): forget the earlier headers.
  if (line.starts_with("HTTP/")) r->retry_after.clear();
  constexpr std::string_view kRetryAfter = "retry-after:";
  if (StartsWithIgnoreCase(line, kRetryAfter)) {
    line.remove_prefix(kRetryAfter.size());
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    r->retry_after.assign(line);
  }
  return n;
}

// The request body, handed to libcurl through a read callback rather than
// CURLOPT_POSTFIELDS so that libcurl cannot send it twice behind our back: when a reused
// keep-alive connection dies after the request went out and before any answer, libcurl
// silently resends the request on a fresh connection ("Connection died, retrying a fresh
// connect"), which it needs to rewind the body for. Refusing that rewind turns the resend
// into an error the exporter's own retry loop sees, counts, and marks as a possible
// duplicate (transport.h).
struct Body {
  std::string_view data;
  size_t offset = 0;
  size_t most_read = 0;  // the furthest libcurl got: all of data means it was all written
  bool rewind_refused = false;
};

size_t ReadBody(char* out, size_t size, size_t nitems, void* user) {
  auto* b = static_cast<Body*>(user);
  const size_t n = std::min(size * nitems, b->data.size() - b->offset);
  std::memcpy(out, b->data.data() + b->offset, n);
  b->offset += n;
  b->most_read = std::max(b->most_read, b->offset);
  return n;
}

int SeekBody(void* user, curl_off_t offset, int origin) {
  auto* b = static_cast<Body*>(user);
  // A rewind before anything was read is harmless (a new connection before sending).
  if (origin == SEEK_SET && offset == 0 && b->most_read == 0) return CURL_SEEKFUNC_OK;
  b->rewind_refused = true;
  return CURL_SEEKFUNC_CANTSEEK;
}

// Failures that another attempt with the same configuration cannot fix.
bool IsPermanentCurlError(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_TOO_MANY_REDIRECTS: return true;
    default: return false;
  }
}

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::Create(HttpClientOptions options) {
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://")) {
    return InvalidArgument("endpoint \"" + options.url + "\": expected an http:// or https:// URL");
  }
  if (!options.certificate_file.empty() && access(options.certificate_file.c_str(), R_OK) != 0) {
    return InvalidArgument("certificate file \"" + options.certificate_file + "\" cannot be read");
  }
  InitCurlOnce();
  std::unique_ptr<HttpClient> client(new HttpClient(std::move(options)));
  if (client->curl_ == nullptr) return Internal("libcurl could not create a handle");
  return client;
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  CURL* curl = curl_easy_init();
  curl_ = curl;
  if (curl == nullptr) return;
  curl_slist* list = nullptr;
  list = curl_slist_append(list, ("Content-Type: " + options_.content_type).c_str());
  if (options_.gzip) list = curl_slist_append(list, "Content-Encoding: gzip");
  list = curl_slist_append(list, "Expect:");
  for (const auto& [k, v] : options_.headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  header_list_ = list;

  curl_easy_setopt(curl, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "kspan/" KSPAN_VERSION);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.certificate_file.empty())
    curl_easy_setopt(curl, CURLOPT_CAINFO, options_.certificate_file.c_str());
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, &ReadBody);
  curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, &SeekBody);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
}

HttpClient::~HttpClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
  if (header_list_ != nullptr) curl_slist_free_all(static_cast<curl_slist*>(header_list_));
}

HttpResponse HttpClient::Post(std::string_view body, Transport::Clock::time_point deadline) noexcept {
  HttpResponse r;
  CURL* curl = static_cast<CURL*>(curl_);
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Transport::Clock::now());
  if (left.count() <= 0) {
    r.error = "deadline passed before the request was sent";
    r.retryable_error = true;
    return r;
  }
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  Body reader{body};
  curl_easy_setopt(curl, CURLOPT_READDATA, &reader);
  curl_easy_setopt(curl, CURLOPT_SEEKDATA, &reader);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(left.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, nullptr);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, nullptr);
  curl_easy_setopt(curl, CURLOPT_READDATA, nullptr);
  curl_easy_setopt(curl, CURLOPT_SEEKDATA, nullptr);
  long code = 0;  // the last status line received, 0 for none
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK) {
    r.error = error[0] != '\0' ? std::string(error) : std::string(curl_easy_strerror(rc));
    if (code >= 200 && code < 300) {
      // The server said it took the request; only the rest of its answer is missing.
      // Retrying would store the spans twice, so this is an answer, not a failure.
      r.status = code;
      r.truncated = true;
      return r;
    }
    r.status = 0;
    r.retryable_error = !IsPermanentCurlError(rc);
    r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    r.request_written = reader.most_read >= body.size();
    if (reader.rewind_refused) r.error = "connection lost after the request was sent (" + r.error + ")";
    return r;
  }
  r.status = code;
  return r;
}

SendResult ClassifyHttpResponse(const HttpResponse& response, std::chrono::system_clock::time_point now) {
  SendResult r;
  if (response.status == 0) {
    r.outcome = response.retryable_error ? SendResult::Outcome::kRetryable : SendResult::Outcome::kPermanent;
    r.detail = response.error;
    if (response.request_written) {
      r.reason =
          response.timed_out ? SendResult::RetryReason::kTimeout : SendResult::RetryReason::kConnectionLost;
      r.maybe_delivered = true;
    }
    return r;
  }
  r.detail = "HTTP " + std::to_string(response.status);
  if (response.status >= 200 && response.status < 300) {
    r.outcome = SendResult::Outcome::kSent;
    r.detail.clear();
    return r;
  }
  if (IsRetryableHttpStatus(response.status)) {
    r.outcome = SendResult::Outcome::kRetryable;
    r.reason =
        response.status == 429 ? SendResult::RetryReason::kThrottled : SendResult::RetryReason::kUnavailable;
    r.maybe_delivered = response.status == 504;
    if (!response.retry_after.empty()) r.retry_after = ParseRetryAfter(response.retry_after, now);
    return r;
  }
  r.outcome = SendResult::Outcome::kPermanent;
  // The body of a refusal usually says why (OTLP: a google.rpc.Status); a short, printable
  // prefix is enough for the one log line it gets.
  std::string why;
  for (const char c : std::string_view(response.body).substr(0, 200)) {
    why += (c >= 0x20 && c < 0x7f) ? c : '.';
  }
  if (!why.empty()) r.detail += ": " + why;
  return r;
}

std::string Gzip(std::string_view in) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out;
  out.resize(deflateBound(&z, static_cast<uLong>(in.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : std::string();
}

}  // namespace kspan::exporters
