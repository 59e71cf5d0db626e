#include "store/admission.h"

#include <algorithm>

namespace kspan::store {

TraceAdmission::TraceAdmission(uint32_t spans_per_second)
    : rate_(static_cast<double>(spans_per_second)), tokens_(rate_) {}

void TraceAdmission::Refill(uint64_t now_ns) {
  if (last_ns_ != 0 && now_ns > last_ns_) {
    tokens_ = std::min(rate_, tokens_ + rate_ * static_cast<double>(now_ns - last_ns_) / 1e9);
  }
  last_ns_ = std::max(last_ns_, now_ns);
}

bool* TraceAdmission::Remembered(const model::TraceId& id, uint64_t now_ns) {
  if (now_ns >= generation_start_ns_ + 2 * kGenerationNs) {
    // Two generations with no span at all: nothing is remembered.
    previous_.clear();
    current_.clear();
    generation_start_ns_ = now_ns;
  } else if (current_.size() >= kMaxRemembered || now_ns >= generation_start_ns_ + kGenerationNs) {
    previous_ = std::move(current_);
    current_.clear();
    generation_start_ns_ = now_ns;
  }
  if (auto it = current_.find(id); it != current_.end()) return &it->second;
  if (auto it = previous_.find(id); it != previous_.end()) {
    // Still alive: carried into this generation.
    return &current_.emplace(id, it->second).first->second;
  }
  return nullptr;
}

bool TraceAdmission::Admit(const model::Span& span, uint64_t now_ns) {
  if (rate_ <= 0) return true;
  Refill(now_ns);
  const bool error = span.status_code == model::StatusCode::kError;
  // Spans of taken traces, and errors, may spend down to a second's worth below zero.
  const bool within_ceiling = tokens_ > -rate_;
  bool* taken = Remembered(span.trace_id, now_ns);
  bool take;
  if (taken) {
    take = within_ceiling && (*taken || error);
    if (take) *taken = true;
  } else {
    take = tokens_ >= 1 || (error && within_ceiling);
    current_.emplace(span.trace_id, take);
  }
  if (take) tokens_ -= 1;
  return take;
}

}  // namespace kspan::store
