#include "processors/rate_limiter.h"

#include <algorithm>

namespace kspan::processors {

bool TokenBucket::Has(uint64_t now_ns) {
  if (!started_) {
    started_ = true;
    last_ns_ = now_ns;
  } else if (now_ns > last_ns_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ns - last_ns_) / 1e9);
    last_ns_ = now_ns;
  }
  return tokens_ >= 1.0;
}

namespace {
double BurstOf(double rate, double burst) {
  return burst > 0 ? burst : std::max(1.0, rate);
}
}  // namespace

RateLimiter::RateLimiter(RateLimitConfig config)
    : config_(config),
      overall_(config.per_second, BurstOf(config.per_second, config.burst)),
      other_(config.per_service_per_second,
             BurstOf(config.per_service_per_second, config.per_service_burst)) {}

TokenBucket* RateLimiter::ServiceBucket(std::string_view service) {
  auto it = services_.find(std::string(service));
  if (it != services_.end()) return &it->second;
  if (services_.size() >= config_.max_services) return &other_;
  return &services_
              .emplace(std::string(service),
                       TokenBucket(config_.per_service_per_second,
                                   BurstOf(config_.per_service_per_second, config_.per_service_burst)))
              .first->second;
}

RateLimiter::Verdict RateLimiter::Admit(std::string_view service, uint64_t now_ns) {
  TokenBucket* svc = config_.per_service_per_second > 0 ? ServiceBucket(service) : nullptr;
  if (svc && !svc->Has(now_ns)) return Verdict::kService;
  if (config_.per_second > 0 && !overall_.Has(now_ns)) return Verdict::kOverall;
  if (svc) svc->Take();
  if (config_.per_second > 0) overall_.Take();
  return Verdict::kPass;
}

}  // namespace kspan::processors
