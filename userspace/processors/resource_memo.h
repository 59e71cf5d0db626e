// What a processor derives from a span's resource (its service.name, a redacted copy),
// remembered for the last few resources by address. Spans come by process and a trace
// alternates between a few (a CLIENT's, then its SERVER's), so a handful of entries covers
// the traffic, and a hit costs a pointer comparison with no reference count change. Each
// entry holds its resource, so the address is not reused while it is remembered.
//
// Single-threaded: the owner's (the pipeline thread for processors).
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string_view>
#include <variant>

#include "model/span.h"

namespace kspan::processors {

template <typename V, size_t N = 4>
class ResourceMemo {
 public:
  // The value for `r` (which may be null), made by `make(r)` on a miss, replacing the
  // oldest entry.
  template <typename Make>
  const V& Get(const std::shared_ptr<const model::Resource>& r, const Make& make) {
    for (Entry& e : entries_) {
      if (e.used && e.resource == r) return e.value;
    }
    Entry& e = entries_[next_];
    next_ = (next_ + 1) % N;
    e.resource = r;
    e.value = make(r);
    e.used = true;
    return e.value;
  }

 private:
  struct Entry {
    bool used = false;
    std::shared_ptr<const model::Resource> resource;
    V value{};
  };
  std::array<Entry, N> entries_;
  size_t next_ = 0;
};

// The resource's service.name ("unknown_service" when it has none), a view into it.
inline std::string_view ServiceNameOf(const model::Resource* resource) {
  if (resource) {
    for (const model::Attribute& a : resource->attributes) {
      if (std::string_view(a.key) != "service.name") continue;
      if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
    }
  }
  return "unknown_service";
}

}  // namespace kspan::processors
