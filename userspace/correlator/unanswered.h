// How a span of a request with no answer says so, for every protocol alike.
#pragma once

#include "model/span.h"
#include "protocols/common/unanswered.h"

namespace kspan::correlator {

// kNoResponse: the peer failed to answer (the connection ended cleanly, every byte seen):
// status ERROR, error.type "response_missing". Any other reason: kspan did not see the end,
// so the span claims no error: status UNSET and kspan.incomplete naming the reason
// ("response_not_captured", "evicted", "process_exit", "shutdown").
inline void MarkUnanswered(protocols::Unanswered why, model::Span* span) {
  if (why == protocols::Unanswered::kNoResponse) {
    span->status_code = model::StatusCode::kError;
    span->status_message = "no response before the connection ended";
    span->Set("error.type", std::string("response_missing"));
    return;
  }
  span->status_code = model::StatusCode::kUnset;
  span->status_message.clear();
  span->Set("kspan.incomplete", std::string(protocols::UnansweredName(why)));
}

}  // namespace kspan::correlator
