#include "protocols/http1/stitch.h"

#include <algorithm>
#include <utility>
#include <variant>
#include <vector>

namespace kspan::protocols::http1 {

namespace {

// The record of `request` and its `response` (null: none, for `why`), built in place at the
// end of `records`: the envelope takes the timing, the body the messages.
void Append(std::vector<protocols::Record>* records, Frame* request, Frame* response, Unanswered why) {
  protocols::Record& out = records->emplace_back();
  Record& r = std::get<Record>(out.body);  // the variant's first alternative, constructed
  out.seq = r.seq = request->seq;
  out.request = request->msg.timing;
  r.request = std::move(request->msg);
  r.informational_statuses = std::move(request->informational);
  if (response != nullptr) {
    out.response = response->msg.timing;
    r.response = std::move(response->msg);
  } else {
    out.response_missing = r.response_missing = true;
    out.unanswered = r.unanswered = why;
  }
}

}  // namespace

void AppendUnanswered(std::vector<protocols::Record>* records, Frame* request, Unanswered why) {
  Append(records, request, nullptr, why);
}

int StitchFramesInto(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state,
                     std::vector<protocols::Record>* records) {
  int errors = 0;
  while (!responses->empty()) {
    Frame& resp = responses->front();
    const uint64_t seq = resp.seq;
    if (seq != 0 && seq == state->open_request_seq) {
      // Its request is still arriving. Only 1xx can pile up behind it; bound them.
      if (responses->size() <= state->max_pending) break;
      ++errors;
      responses->pop_front();
      continue;
    }
    const int code = resp.msg.status_code;
    const bool informational = code < 200 && code != 101;
    if (informational) {
      Frame* req = nullptr;
      for (Frame& f : *requests) {
        if (seq != 0 && f.seq == seq) req = &f;
      }
      if (req) {
        req->informational.push_back(code);
      } else {
        ++errors;
      }
    } else {
      // Requests before the one answered, or given up through, will get no response.
      const uint64_t through = std::max(resp.drop_through, seq == 0 ? 0 : seq - 1);
      while (!requests->empty() && requests->front().seq <= through) {
        // Their answers were lost (or the client pipelined across a loss): not seen.
        AppendUnanswered(records, &requests->front(), Unanswered::kNotCaptured);
        requests->pop_front();
      }
      if (seq != 0 && !requests->empty() && requests->front().seq == seq) {
        Append(records, &requests->front(), &resp, Unanswered::kNoResponse);
        requests->pop_front();
      } else {
        ++errors;
      }
    }
    responses->pop_front();
  }
  // Requests whose final answer has begun (its head parsed, its body still to come) wait
  // for nothing but that answer: they are not counted against the bound. The caller parses
  // requests up to the bound on those still waiting for an answer (State::pending), so
  // counting these would give up the oldest, the one being answered, depending on whether
  // a drain fell inside its answer.
  size_t answering = 0;
  while (answering < requests->size() && (*requests)[answering].seq <= state->last_final_seq) ++answering;
  while (requests->size() > state->max_pending + answering) {
    // Given up waiting: an answer may still come (it will then be unmatched).
    AppendUnanswered(records, &requests->front(), Unanswered::kNotCaptured);
    requests->pop_front();
    if (answering > 0) --answering;
  }
  return errors;
}

RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state) {
  std::vector<protocols::Record> records;
  RecordsWithErrorCount<Record> out;
  out.error_count = StitchFramesInto(requests, responses, state, &records);
  out.records.reserve(records.size());
  for (protocols::Record& r : records) out.records.push_back(std::move(std::get<Record>(r.body)));
  return out;
}

}  // namespace kspan::protocols::http1
