// Rate limiting of kept traces: token buckets, one overall and one per service (the
// service.name of the trace's first span), each `per_second` tokens a second up to `burst`.
// A trace passes when every bucket that applies has a token, and then takes one from each;
// so over T seconds at most burst + rate * T traces pass a bucket.
//
// Bounded: at most `max_services` service buckets; services seen after that share one
// more bucket. The clock is the caller's (Unix ns; a step back refills nothing).
//
// Single-threaded: the pipeline thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kspan::processors {

class TokenBucket {
 public:
  TokenBucket() = default;
  // Starts full.
  TokenBucket(double per_second, double burst) : rate_(per_second), burst_(burst), tokens_(burst) {}
  // Refills up to now; true when a whole token is there (not taken).
  bool Has(uint64_t now_ns);
  void Take() { tokens_ -= 1; }

 private:
  double rate_ = 0, burst_ = 0, tokens_ = 0;
  uint64_t last_ns_ = 0;
  bool started_ = false;
};

struct RateLimitConfig {
  double per_second = 0;              // overall; 0: no limit
  double burst = 0;                   // 0: one second's worth (at least 1)
  double per_service_per_second = 0;  // 0: no per-service limit
  double per_service_burst = 0;
  size_t max_services = 1024;
  bool enabled() const { return per_second > 0 || per_service_per_second > 0; }
};

class RateLimiter {
 public:
  enum class Verdict : uint8_t { kPass, kOverall, kService };
  explicit RateLimiter(RateLimitConfig config);
  Verdict Admit(std::string_view service, uint64_t now_ns);

 private:
  TokenBucket* ServiceBucket(std::string_view service);

  RateLimitConfig config_;
  TokenBucket overall_;
  std::unordered_map<std::string, TokenBucket> services_;
  TokenBucket other_;
};

}  // namespace kspan::processors
