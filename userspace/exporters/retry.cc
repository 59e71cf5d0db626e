#include "exporters/retry.h"

#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/support/status_code_enum.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

#include "common/strings.h"
#include "exporters/transport.h"

namespace kspan::exporters {
namespace {

using std::chrono::milliseconds;

// The length-delimited field `number` of a message, or nullptr.
const std::string* FindBytesField(const google::protobuf::UnknownFieldSet& set, int number, int nth = 0) {
  int seen = 0;
  for (int i = 0; i < set.field_count(); ++i) {
    const auto& f = set.field(i);
    if (f.number() == number && f.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED &&
        seen++ == nth) {
      return &f.length_delimited();
    }
  }
  return nullptr;
}

}  // namespace

std::string_view RetryReasonName(SendResult::RetryReason reason) {
  switch (reason) {
    case SendResult::RetryReason::kNotSent: return "not_sent";
    case SendResult::RetryReason::kThrottled: return "throttled";
    case SendResult::RetryReason::kUnavailable: return "unavailable";
    case SendResult::RetryReason::kTimeout: return "timeout";
    case SendResult::RetryReason::kConnectionLost: return "connection_lost";
  }
  return "not_sent";
}

bool IsRetryableHttpStatus(long status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

bool IsRetryableGrpcStatus(int code, bool has_retry_info) {
  switch (static_cast<grpc::StatusCode>(code)) {
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DATA_LOSS: return true;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return has_retry_info;
    default: return false;
  }
}

milliseconds Backoff(const RetryPolicy& policy, int retry, double rand01) {
  const double initial = static_cast<double>(std::max<int64_t>(policy.initial_backoff.count(), 1));
  const double cap = static_cast<double>(std::max(policy.max_backoff, policy.initial_backoff).count());
  // multiplier^retry overflows to inf for a large retry, which min() then caps.
  const double base = std::min(initial * std::pow(std::max(policy.multiplier, 1.0), std::max(retry, 0)), cap);
  const double jitter = 0.5 + 0.5 * std::clamp(rand01, 0.0, 1.0);
  return milliseconds(static_cast<int64_t>(base * jitter));
}

std::optional<milliseconds> ParseRetryAfter(std::string_view value,
                                            std::chrono::system_clock::time_point now) {
  value = TrimSpace(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    uint64_t seconds = 0;
    const auto r = std::from_chars(value.data(), value.data() + value.size(), seconds);
    // Saturate absurd values: a day is as good as forever to a retry budget.
    if (r.ec == std::errc::result_out_of_range || seconds > 86400) seconds = 86400;
    return milliseconds(seconds * 1000);
  }
  // HTTP-date: IMF-fixdate, then RFC 850 and asctime (RFC 9110 section 5.6.7). Always GMT.
  const std::string s(value);
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = strptime(s.c_str(), format, &tm);
    if (end == nullptr || *end != '\0') continue;
    const time_t t = timegm(&tm);
    if (t == static_cast<time_t>(-1)) return std::nullopt;
    const auto at = std::chrono::system_clock::from_time_t(t);
    if (at <= now) return milliseconds(0);
    return std::min(std::chrono::duration_cast<milliseconds>(at - now), milliseconds(86400 * 1000));
  }
  return std::nullopt;
}

std::optional<milliseconds> RetryDelayFromGrpcStatusDetails(std::string_view details) {
  // google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  // google.protobuf.Any { string type_url = 1; bytes value = 2; }
  // google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1; }
  // google.protobuf.Duration { int64 seconds = 1; int32 nanos = 2; }
  // Walked as raw wire format: no generated code for four fields.
  constexpr std::string_view kRetryInfo = "type.googleapis.com/google.rpc.RetryInfo";
  google::protobuf::UnknownFieldSet status;
  if (details.empty() || !status.ParseFromArray(details.data(), static_cast<int>(details.size()))) {
    return std::nullopt;
  }
  for (int n = 0;; ++n) {
    const std::string* any_bytes = FindBytesField(status, 3, n);
    if (any_bytes == nullptr) return std::nullopt;
    google::protobuf::UnknownFieldSet any;
    if (!any.ParseFromString(*any_bytes)) continue;
    const std::string* type_url = FindBytesField(any, 1);
    const std::string* value = FindBytesField(any, 2);
    if (type_url == nullptr || *type_url != kRetryInfo) continue;
    google::protobuf::UnknownFieldSet retry_info, duration;
    if (value == nullptr || !retry_info.ParseFromString(*value)) return std::nullopt;
    const std::string* delay = FindBytesField(retry_info, 1);
    if (delay == nullptr) return milliseconds(0);  // RetryInfo without a delay: retry now
    if (!duration.ParseFromString(*delay)) return std::nullopt;
    int64_t seconds = 0, nanos = 0;
    for (int i = 0; i < duration.field_count(); ++i) {
      const auto& f = duration.field(i);
      if (f.type() != google::protobuf::UnknownField::TYPE_VARINT) continue;
      if (f.number() == 1) seconds = static_cast<int64_t>(f.varint());
      if (f.number() == 2) nanos = static_cast<int32_t>(f.varint());
    }
    if (seconds < 0 || nanos < 0) return milliseconds(0);
    return milliseconds(std::min<int64_t>(seconds, 86400) * 1000 + nanos / 1'000'000);
  }
}

}  // namespace kspan::exporters
