#include "protocols/http1/stitch.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace kspan::protocols::http1 {

Record UnansweredRecord(Frame* request, Unanswered why) {
  Record r;
  r.seq = request->seq;
  r.request = std::move(request->msg);
  r.informational_statuses = std::move(request->informational);
  r.response_missing = true;
  r.unanswered = why;
  return r;
}

int StitchFramesInto(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state,
                     std::vector<Record>* records) {
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
        records->push_back(UnansweredRecord(&requests->front(), Unanswered::kNotCaptured));
        requests->pop_front();
      }
      if (seq != 0 && !requests->empty() && requests->front().seq == seq) {
        Frame& req = requests->front();
        Record& r = records->emplace_back();
        r.seq = req.seq;
        r.request = std::move(req.msg);
        r.response = std::move(resp.msg);
        r.informational_statuses = std::move(req.informational);
        requests->pop_front();
      } else {
        ++errors;
      }
    }
    responses->pop_front();
  }
  while (requests->size() > state->max_pending) {
    // Given up waiting: an answer may still come (it will then be unmatched).
    records->push_back(UnansweredRecord(&requests->front(), Unanswered::kNotCaptured));
    requests->pop_front();
  }
  return errors;
}

RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state) {
  RecordsWithErrorCount<Record> out;
  out.error_count = StitchFramesInto(requests, responses, state, &out.records);
  return out;
}

}  // namespace kspan::protocols::http1
