// When and how long to wait before sending a request again, per the OTLP specification
// (opentelemetry-proto docs/specification.md, "Failures" for OTLP/gRPC and OTLP/HTTP).
// Pure functions: the exporter's send loop (queued_exporter.h) applies them.
//
//   HTTP status      gRPC code                               verdict
//   ──────────────   ─────────────────────────────────────   ──────────────────────────────
//   2xx              OK                                      sent (partial success: the
//                                                            rejected spans are dropped,
//                                                            never resent)
//   429 502 503 504  UNAVAILABLE CANCELLED DEADLINE_EXCEEDED  retry, after the server's
//                    ABORTED OUT_OF_RANGE DATA_LOSS           delay hint if it gave one,
//                    RESOURCE_EXHAUSTED with RetryInfo        else after a backoff
//   other 4xx, 5xx   everything else (INVALID_ARGUMENT,       dropped, not retried
//                    UNAUTHENTICATED, RESOURCE_EXHAUSTED
//                    without RetryInfo, ...)
//   no response      -                                        retry (connection refused,
//   (network error)                                           reset, timeout)
//
// Backoff: exponential with jitter, wait n (0-based) is drawn from
// [base_n / 2, base_n] with base_n = min(initial * multiplier^n, max_backoff): the jitter
// keeps many agents that lost one backend together from retrying in lockstep, and the
// floor of half keeps a retry from coming back at once. A server's own hint
// (Retry-After, RetryInfo) replaces the backoff, without jitter.
//
// Budget: a request is retried until `max_elapsed` has passed since its first attempt;
// a wait that would end past the budget is not taken and the request's spans are dropped
// (counted as retries_exhausted). With the defaults (1 s doubling to 5 s, 60 s budget)
// one request is tried about 14 times and a backend that is back is noticed within 5 s.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace kspan::exporters {

struct RetryPolicy {
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{5000};
  double multiplier = 2.0;
  std::chrono::milliseconds max_elapsed{60000};  // the retry budget of one request
};

// True for the HTTP statuses OTLP says to retry: 429, 502, 503, 504.
bool IsRetryableHttpStatus(long status);

// True for the gRPC status codes OTLP says to retry (numbers as grpc::StatusCode).
// RESOURCE_EXHAUSTED only when the server sent RetryInfo (it is then a throttle, not a
// limit the request can never fit).
bool IsRetryableGrpcStatus(int code, bool has_retry_info);

// The wait before retry number `retry` (0 = the first retry); `rand01` in [0, 1) is the
// jitter draw.
std::chrono::milliseconds Backoff(const RetryPolicy& policy, int retry, double rand01);

// A Retry-After header value: delay-seconds ("120") or an HTTP-date
// ("Sun, 06 Nov 1994 08:49:37 GMT", and the two obsolete forms RFC 9110 still accepts),
// relative to `now`. A date in the past gives zero; anything else malformed gives nullopt.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         std::chrono::system_clock::time_point now);

// The retry_delay of a google.rpc.RetryInfo inside a serialized google.rpc.Status (the
// `grpc-status-details-bin` trailer, grpc::Status::error_details()); nullopt when there
// is none or the bytes are malformed.
std::optional<std::chrono::milliseconds> RetryDelayFromGrpcStatusDetails(std::string_view details);

}  // namespace kspan::exporters
