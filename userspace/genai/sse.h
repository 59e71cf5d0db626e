// Server-Sent Events split out of a response body kspan captured (text/event-stream), per
// the WHATWG HTML Standard, §9.2.6 "Interpreting an event stream". The body may stop
// anywhere: the events that completed before the cut are read, the one the cut fell in is
// not.
//
//   event: message_start            field "event": the event's type
//   data: {"type":"message_start"   field "data": one line of its data
//   data: ,"x":1}                   more data: the lines are joined with '\n'
//   : comment                       ignored
//   <blank line>                    dispatches the event (if it has data)
//
// As the standard says: lines end with CRLF, LF or CR; one leading U+FEFF is skipped; a
// field's value loses one leading space; a line without ':' is a field with an empty
// value; a block without a "data" field dispatches nothing; the type defaults to
// "message". Fields other than "event" and "data" ("id", "retry", unknown ones) are
// ignored: kspan never reconnects. What the standard leaves to the end of the stream (an
// event without its blank line is discarded) is reported here as incomplete().
//
// Not thread-safe; the body must outlive the reader.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kspan::genai {

struct SseEvent {
  std::string type;   // the "event" field; "message" when it has none
  std::string data;   // the "data" fields' values joined with '\n'
  size_t offset = 0;  // where the event's first field line starts in the body
};

class SseReader {
 public:
  explicit SseReader(std::string_view body);

  // The next complete event into `*event` (its strings are reused). False at the end of
  // the body: then incomplete() says whether it ended inside an event.
  bool Next(SseEvent* event);

  // The body ended after a field line of an event that no blank line dispatched (or inside
  // a field line). Comments alone at the end do not count.
  bool incomplete() const { return incomplete_; }

 private:
  std::string_view body_;
  size_t pos_ = 0;
  bool incomplete_ = false;
};

}  // namespace kspan::genai
