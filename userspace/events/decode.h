// Decoding of raw ring-buffer records (include/kspan/bpf/events.h) into typed events.
// Pure functions, no libbpf: unit-tested and fuzzed apart from the kernel.
#pragma once

#include <cstddef>
#include <cstdint>

#include "events/event_sink.h"

namespace kspan::events {

// Converts CLOCK_BOOTTIME ns (what every BPF event carries) to Unix-epoch ns. The offset
// is measured once at start-up; the kernel's clocks share a tick, so it holds as long as
// wall time is not stepped.
class BootClock {
 public:
  BootClock();  // measures the offset now
  explicit BootClock(int64_t offset_ns) : offset_ns_(offset_ns) {}
  uint64_t ToUnixNs(uint64_t boot_ns) const { return boot_ns + static_cast<uint64_t>(offset_ns_); }
  int64_t offset_ns() const { return offset_ns_; }

 private:
  int64_t offset_ns_;
};

enum class DecodeResult { kOk, kTooShort, kUnknownType, kBadLength };

// Decodes one record and hands it to `sink`. A record that is malformed (size or length
// fields inconsistent) is not delivered and the reason is returned.
DecodeResult DecodeRecord(const void* data, size_t size, const BootClock& clock, EventSink* sink);

}  // namespace kspan::events
