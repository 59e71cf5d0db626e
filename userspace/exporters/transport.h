// What a network exporter's queue (queued_exporter.h) drives: a wire format and a way to
// deliver it. One Transport per exporter, used only by that exporter's own thread, so it
// keeps its connection and scratch buffers without locks.
//
//   Encode(spans) ── size ──► the queue splits a request over max_request_bytes
//   Send(deadline) ── SendResult ──► sent / retry (after retry_after or a backoff) / drop
//
// Send never throws and never retries by itself; it makes exactly one attempt and gives
// up at `deadline`.
//
// A failed attempt is not always a request the backend did not get. OTLP has no
// idempotency key, so when the whole request was written and no answer came back (a
// timeout, a connection lost after the write, a proxy's 504), the backend may have taken
// it, and sending it again may store it twice. Send says so in `maybe_delivered`; the
// queue sends it again anyway (OTLP accepts duplicates over loss) but counts the spans.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "model/span.h"

namespace kspan::exporters {

struct SendResult {
  // Why a kRetryable attempt failed: the `reason` label of kspan_exporter_retries_total.
  enum class RetryReason {
    kNotSent,         // no connection, or the request was not fully written
    kThrottled,       // HTTP 429; gRPC RESOURCE_EXHAUSTED with RetryInfo
    kUnavailable,     // HTTP 502/503/504; a retryable gRPC code the backend answered with
    kTimeout,         // written whole, no answer before the deadline
    kConnectionLost,  // written whole, the connection closed or reset before an answer
  };
  enum class Outcome {
    kSent,       // the server took the request (maybe rejecting some spans)
    kRetryable,  // a failure worth trying again (retry.h)
    kPermanent,  // the server refused the request: sending it again cannot help
  };
  Outcome outcome = Outcome::kSent;
  // kSent: spans the server said it rejected (OTLP partial success); never resent.
  int64_t rejected_spans = 0;
  // kRetryable: the server's own delay (Retry-After, gRPC RetryInfo), if it gave one.
  std::optional<std::chrono::milliseconds> retry_after;
  // For a person: "HTTP 503", "UNAVAILABLE: failed to connect", "partial success: ...".
  std::string detail;
  // kRetryable only.
  RetryReason reason = RetryReason::kNotSent;
  // kRetryable only: the backend may have received the whole request and kept its spans.
  bool maybe_delivered = false;
};

// "not_sent", "throttled", "unavailable", "timeout", "connection_lost".
std::string_view RetryReasonName(SendResult::RetryReason reason);

class Transport {
 public:
  using Clock = std::chrono::steady_clock;

  virtual ~Transport() = default;

  // Encodes `spans` as the request the next Send()s carry, replacing the previous one.
  // Returns its size in bytes, before any compression: what max_request_bytes bounds.
  virtual size_t Encode(std::span<const model::Span> spans) = 0;

  // One attempt to deliver the encoded request, abandoned at `deadline`.
  virtual SendResult Send(Clock::time_point deadline) noexcept = 0;

  // Where the requests go, for logs ("http://127.0.0.1:4318/v1/traces").
  virtual std::string Endpoint() const = 0;
};

}  // namespace kspan::exporters
