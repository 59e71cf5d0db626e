#include "protocols/mysql/spec.h"

#include <memory>
#include <utility>

#include "protocols/common/request_response.h"
#include "protocols/mysql/parse.h"

namespace kspan::protocols::mysql {
namespace {

// One MySQL/MariaDB connection as one process sees it: the generic two-stream driver
// (protocols/common/request_response.h) over protocol packets. Commands are announced as
// RequestStarts as soon as they are whole; records come out in command order.
struct Registered : Protocol {
  // A unit that makes no span (the handshake, COM_PING, closing a statement, ...) opens
  // no stitcher node: one that never completes would hold its trace until max_hold.
  static void Announce(const Frame& f, RequestStart* out) {
    AnnounceSeqAndTiming(f, out);
    out->no_span = !IsOperation(f.unit);  // as BuildMysqlSpan
  }
  static Record RecordWithoutAnswer(Frame* f) { return mysql::RecordWithoutAnswer(f); }
  static void ToRecord(Record&& r, protocols::Record* out) { ToEnvelope(std::move(r), out); }
};

std::unique_ptr<ProtocolConnection> Make(bool client, const ProtocolOptions& options) {
  State state;
  state.raw_query_text = options.sql.raw_query_text;
  return std::make_unique<RequestResponseConnection<Registered>>(client, DataStream::Options{},
                                                                 std::move(state));
}

Detection Detect(std::string_view request_bytes) {
  return DetectionOf(LooksLikeRequest(request_bytes));
}

}  // namespace

const ProtocolSpec& Spec() {
  static const ProtocolSpec spec{.name = "mysql",
                                 .scope = Scope::kConnection,
                                 .transports = kTcp,
                                 .detect = Detect,
                                 .make = Make,
                                 .callee_spans = false};
  return spec;
}

}  // namespace kspan::protocols::mysql
