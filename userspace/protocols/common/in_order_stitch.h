// Pairing for protocols whose server answers a connection's requests in the order it got
// them (memcached, Redis, …), written once. What it decides:
//   - a request that expects no answer becomes a record when it reaches the front, without
//     one;
//   - an answer that began before the oldest waiting request did answers a request kspan
//     did not see: dropped (error_count);
//   - after answers were lost (a hole, a resync: the answer's after_loss, or a request given
//     up at the bound), an answer pairs with the latest request that started before it (a
//     client that does not pipeline waits for each answer) and the requests before it are
//     given up (response_missing). With pipelining seen, which request it answers is
//     undecidable: those requests are given up and the answer dropped. Such a decision by
//     times covers every request that started before the answer; when all those waiting
//     did and more are held back unparsed (State::requests_held_back: they may have started
//     before it too), the answer waits until they are parsed (room, or the connection's
//     end), so what it pairs with or gives up does not depend on where the drains fell;
//   - an answer that does not fit its request (H::Fits) is dropped, never paired wrong;
//   - answers with no request waiting wait for it (its bytes may still be on another CPU's
//     way), up to max_pending; requests past max_pending are given up, oldest first.
//
// H, the protocol's pairing hooks:
//   using Frame, State, Record;
//   static bool ExpectsAnswer(const Frame& request);
//   static bool Fits(const Frame& request, const Frame& answer);
//   static Record Paired(Frame* request, Frame* answer, State*);
//   static Record RecordWithoutAnswer(Frame* request);
//   Optional: static Screen ScreenAnswer(const Fifo<Frame>& requests, const Frame& answer, State*);
//     before the answer at the front is paired: kPair (go on), kSkip (not an answer to any
//     request, e.g. a pub/sub message: removed, not counted) or kDrop (removed, counted).
//   Frame::timing.start_ns, Frame::after_loss; State::pipelined, stitch_loss, max_pending,
//   requests_held_back (set by the driver before each call: request frames are held back
//   unparsed, common/request_response.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/fifo.h"
#include "protocols/common/event_parser.h"

namespace kspan::protocols {

enum class Screen : uint8_t { kPair, kSkip, kDrop };

template <typename H>
RecordsWithErrorCount<typename H::Record> StitchInOrder(Fifo<typename H::Frame>* requests,
                                                        Fifo<typename H::Frame>* responses,
                                                        typename H::State* state) {
  using Frame = typename H::Frame;
  RecordsWithErrorCount<typename H::Record> out;
  auto drop_answer = [&] {
    ++out.error_count;
    responses->pop_front();
  };
  auto leave_unanswerable = [&] {
    while (!requests->empty() && !H::ExpectsAnswer(requests->front())) {
      out.records.push_back(H::RecordWithoutAnswer(&requests->front()));
      requests->pop_front();
    }
  };
  // The answerable requests at the front that started no later than `t`.
  auto started_before = [&](uint64_t t) {
    size_t k = 0;
    for (const Frame& f : *requests) {
      if (f.timing.start_ns > t) break;
      if (H::ExpectsAnswer(f)) ++k;
    }
    return k;
  };
  auto answerable = [&] {
    size_t k = 0;
    for (const Frame& f : *requests) k += H::ExpectsAnswer(f) ? 1 : 0;
    return k;
  };
  // A decision by times over every waiting request, while more are held back unparsed
  // (they may have started before `t` too): not yet.
  auto undecided = [&](size_t k) { return state->requests_held_back && k == answerable(); };
  // Emits the front of `requests` until `n` answerable requests were given up.
  auto give_up = [&](size_t n) {
    while (n > 0 && !requests->empty()) {
      if (H::ExpectsAnswer(requests->front())) --n;
      out.records.push_back(H::RecordWithoutAnswer(&requests->front()));
      requests->pop_front();
    }
  };
  for (;;) {
    leave_unanswerable();
    if (responses->empty()) break;
    Frame& resp = responses->front();
    if constexpr (requires { H::ScreenAnswer(*requests, resp, state); }) {
      const Screen s = H::ScreenAnswer(*requests, resp, state);
      if (s == Screen::kSkip) {
        responses->pop_front();
        continue;
      }
      if (s == Screen::kDrop) {
        drop_answer();
        continue;
      }
    }
    if (requests->empty()) {
      // Its request may still be on its way (another CPU); past the bound, it is not.
      if (responses->size() <= state->max_pending) break;
      drop_answer();
      continue;
    }
    const uint64_t t = resp.timing.start_ns;
    if (resp.after_loss || state->stitch_loss) {
      const size_t k = started_before(t);
      if (k != 0 && undecided(k)) break;
      state->stitch_loss = false;
      if (k == 0) {
        drop_answer();
        continue;
      }
      if (state->pipelined) {
        give_up(k);
        drop_answer();
        continue;
      }
      give_up(k - 1);
      leave_unanswerable();
    } else {
      const Frame& front = requests->front();
      if (front.timing.start_ns > t) {
        drop_answer();  // it answers a request sent before kspan saw the stream
        continue;
      }
      if (front.after_loss && state->pipelined) {
        // Answers to lost pipelined requests may come first, or not: undecidable.
        const size_t k = started_before(t);
        if (undecided(k)) break;
        give_up(k);
        drop_answer();
        continue;
      }
    }
    Frame& req = requests->front();
    if (!H::Fits(req, resp)) {
      drop_answer();
      continue;
    }
    out.records.push_back(H::Paired(&req, &resp, state));
    requests->pop_front();
    responses->pop_front();
    // The next request was sent before this answer began: the client pipelines.
    for (const Frame& f : *requests) {
      if (!H::ExpectsAnswer(f)) continue;
      if (f.timing.start_ns < t) state->pipelined = true;
      break;
    }
  }
  while (requests->size() > state->max_pending) {
    out.records.push_back(H::RecordWithoutAnswer(&requests->front()));
    requests->pop_front();
    state->stitch_loss = true;
  }
  return out;
}

}  // namespace kspan::protocols
