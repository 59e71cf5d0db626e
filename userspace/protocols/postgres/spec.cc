#include "protocols/postgres/spec.h"

#include <utility>

#include "protocols/common/request_response.h"
#include "protocols/postgres/parse.h"

namespace kspan::protocols::postgres {
namespace {

// One PostgreSQL connection as one process sees it: the generic two-stream driver
// (protocols/common/request_response.h) over protocol 3.0 messages. Commands are announced as
// RequestStarts as soon as they are whole; records come out in command order.
struct Registered : Protocol {
  static void Announce(const Frame& f, RequestStart* out) {
    out->seq = f.seq;
    out->timing = f.timing;
  }
  static Record RecordWithoutAnswer(Frame* f) { return postgres::RecordWithoutAnswer(f); }
  static void ToRecord(Record&& r, protocols::Record* out) {
    out->seq = r.seq;
    out->request = r.request;
    out->response = r.response;
    out->response_missing = r.response_missing;
    out->unanswered = r.unanswered;
    out->body = std::move(r);
  }
};

Detection Detect(std::string_view request_bytes) {
  switch (LooksLikeRequest(request_bytes)) {
    case Start::kYes: return Detection::kMatch;
    case Start::kMaybe: return Detection::kNeedMoreData;
    case Start::kNo: break;
  }
  return Detection::kNoMatch;
}

std::unique_ptr<ProtocolConnection> Make(bool client, const ProtocolOptions&) {
  return std::make_unique<RequestResponseConnection<Registered>>(client, DataStream::Options{});
}

}  // namespace

const ProtocolSpec& Spec() {
  static const ProtocolSpec spec{.name = "postgres",
                                 .scope = Scope::kConnection,
                                 .transports = kTcp,
                                 .detect = Detect,
                                 .make = Make,
                                 .callee_spans = false};
  return spec;
}

}  // namespace kspan::protocols::postgres
