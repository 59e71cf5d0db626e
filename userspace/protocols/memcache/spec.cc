#include "protocols/memcache/spec.h"

#include <utility>

#include "protocols/common/request_response.h"
#include "protocols/memcache/parse.h"

namespace kspan::protocols::memcache {
namespace {

// One memcached connection as one process sees it: the generic two-stream driver
// (protocols/common/request_response.h) over the memcached frames. Commands are announced
// as RequestStarts as soon as they are whole; records come out in command order.
struct Registered : Protocol {
  static void Announce(const Frame& f, RequestStart* out) { AnnounceSeqAndTiming(f, out); }
  static Record RecordWithoutAnswer(Frame* f) { return memcache::RecordWithoutAnswer(f); }
  static void ToRecord(Record&& r, protocols::Record* out) { ToEnvelope(std::move(r), out); }
};

Detection Detect(std::string_view request_bytes) {
  return DetectionOf(LooksLikeRequest(request_bytes));
}

}  // namespace

const ProtocolSpec& Spec() {
  static const ProtocolSpec spec{.name = "memcache",
                                 .scope = Scope::kConnection,
                                 .transports = kTcp,
                                 .detect = Detect,
                                 .make = MakeRequestResponseConnection<Registered>,
                                 .callee_spans = false};
  return spec;
}

}  // namespace kspan::protocols::memcache
