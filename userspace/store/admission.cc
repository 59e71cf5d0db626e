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

bool* TraceAdmission::Decisions::Find(const model::TraceId& id) {
  if (slots_.empty()) return nullptr;
  const size_t mask = slots_.size() - 1;
  for (size_t i = model::TraceIdHash{}(id)&mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (!s.id.IsValid()) return nullptr;
    if (s.id == id) return &s.taken;
  }
}

bool* TraceAdmission::Decisions::Insert(const model::TraceId& id, bool taken) {
  if (!id.IsValid()) return nullptr;
  if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
  const size_t mask = slots_.size() - 1;
  size_t i = model::TraceIdHash{}(id)&mask;
  while (slots_[i].id.IsValid()) i = (i + 1) & mask;
  slots_[i] = {id, taken};
  ++size_;
  return &slots_[i].taken;
}

void TraceAdmission::Decisions::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(std::max(kMinSlots, old.size() * 2), Slot{});
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (!s.id.IsValid()) continue;
    size_t i = model::TraceIdHash{}(s.id) & mask;
    while (slots_[i].id.IsValid()) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void TraceAdmission::Decisions::Clear() {
  // Given back when under a sixteenth used (after a burst); else kept for the next
  // generation, which likely needs as much.
  if (slots_.size() > kMinSlots && size_ * 16 < slots_.size()) {
    std::vector<Slot>().swap(slots_);
  } else {
    std::fill(slots_.begin(), slots_.end(), Slot{});
  }
  size_ = 0;
}

bool* TraceAdmission::Remembered(const model::TraceId& id, uint64_t now_ns) {
  if (now_ns >= generation_start_ns_ + 2 * kGenerationNs) {
    // Two generations with no span at all: nothing is remembered.
    previous_.Clear();
    current_.Clear();
    generation_start_ns_ = now_ns;
  } else if (current_.size() >= kMaxRemembered || now_ns >= generation_start_ns_ + kGenerationNs) {
    std::swap(previous_, current_);
    current_.Clear();
    generation_start_ns_ = now_ns;
  }
  if (bool* taken = current_.Find(id)) return taken;
  if (const bool* taken = previous_.Find(id)) {
    // Still alive: carried into this generation.
    return current_.Insert(id, *taken);
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
    current_.Insert(span.trace_id, take);
  }
  if (take) tokens_ -= 1;
  return take;
}

}  // namespace kspan::store
