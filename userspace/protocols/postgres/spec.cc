#include "protocols/postgres/spec.h"

#include <memory>
#include <utility>

#include "protocols/common/request_response.h"
#include "protocols/postgres/parse.h"

namespace kspan::protocols::postgres {
namespace {

// One PostgreSQL connection as one process sees it: the generic two-stream driver
// (protocols/common/request_response.h) over protocol 3.0 messages. Commands are announced as
// RequestStarts as soon as they are whole; records come out in command order. The server's
// side is a span too (a SERVER span of each operation, correlator/db_span.h), so that a
// caller on another host's context, carried on the wire, reaches the database.
struct Registered : Protocol {
  static void Announce(const Frame& f, RequestStart* out) {
    AnnounceSeqAndTiming(f, out);
    out->no_span = !IsOperation(f.unit);  // as BuildPostgresSpan
    out->callee_no_span = f.replication;
  }
  static Record RecordWithoutAnswer(Frame* f) { return postgres::RecordWithoutAnswer(f); }
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
  static const ProtocolSpec spec{.name = "postgres",
                                 .scope = Scope::kConnection,
                                 .transports = kTcp,
                                 .detect = Detect,
                                 .make = Make,
                                 .callee_spans = true};
  return spec;
}

}  // namespace kspan::protocols::postgres
