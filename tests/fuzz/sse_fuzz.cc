// libFuzzer harness for the Server-Sent Events reader (userspace/genai/sse.h), which splits
// the event-stream bodies of LLM and MCP responses kspan captured.
//
// Input: a response body. Checks, beyond "no crash, no out-of-bounds read":
//   model    the reader's events and its incomplete() flag are those of a second, plainer
//            reading of the WHATWG rules written here (one pass over the lines, no reuse);
//   prefix   a body cut anywhere (the capture may stop anywhere) yields exactly the
//            events of the whole body whose blank line came before the cut, and the
//            reader says incomplete() when the cut fell inside an event;
//   shape    offsets lie in the body and increase, an event's type holds no line break
//            and its data no CR, and neither is longer than the body.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "genai/sse.h"

namespace kspan::fuzz {
const char* const kHarness = "sse_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;
using kspan::fuzz::Fnv1a;
using kspan::fuzz::Rng;
using kspan::genai::SseEvent;
using kspan::genai::SseReader;

struct ModelEvent {
  std::string type, data;
  size_t offset = 0;
  size_t dispatched_at = 0;  // one past the first byte of the blank line's line break
};

struct ModelResult {
  std::vector<ModelEvent> events;
  bool incomplete = false;
};

// The standard's algorithm, step by step: collect lines, then interpret each.
ModelResult Model(std::string_view body) {
  ModelResult out;
  size_t pos = body.starts_with("\xEF\xBB\xBF") ? 3 : 0;
  std::string type, data;
  bool have_data = false, in_event = false;
  size_t offset = 0;
  while (pos < body.size()) {
    size_t end = pos;
    while (end < body.size() && body[end] != '\r' && body[end] != '\n') ++end;
    if (end == body.size()) {  // the body stopped inside this line
      out.incomplete = in_event || body[pos] != ':';
      return out;
    }
    const std::string_view line = body.substr(pos, end - pos);
    const size_t line_start = pos;
    pos = end + 1;
    if (body[end] == '\r' && pos < body.size() && body[pos] == '\n') ++pos;
    if (line.empty()) {
      if (have_data) {
        data.pop_back();
        out.events.push_back(ModelEvent{type.empty() ? "message" : type, data, offset, end + 1});
      }
      type.clear();
      data.clear();
      have_data = in_event = false;
      continue;
    }
    if (line.front() == ':') continue;
    std::string_view name = line, value;
    if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
      name = line.substr(0, colon);
      value = line.substr(colon + 1);
      if (value.starts_with(' ')) value.remove_prefix(1);
    }
    if (!in_event) offset = line_start;
    in_event = true;
    if (name == "event") type = value;
    if (name == "data") {
      data += value;
      data += '\n';
      have_data = true;
    }
  }
  out.incomplete = in_event;
  return out;
}

// Reads `body` with the reader under test and checks each event's shape.
std::vector<SseEvent> Read(std::string_view body, bool* incomplete) {
  SseReader reader(body);
  std::vector<SseEvent> events;
  SseEvent e;
  while (reader.Next(&e)) {
    Check(e.offset < body.size(), "shape: offset outside the body");
    Check(events.empty() || e.offset > events.back().offset, "shape: offsets do not increase");
    Check(e.type.find_first_of("\r\n") == std::string::npos, "shape: a line break in the type");
    Check(e.data.find('\r') == std::string::npos, "shape: a CR in the data");
    Check(e.type == "message" || e.type.size() < body.size(), "shape: a type longer than the body");
    Check(e.data.size() < body.size(), "shape: data longer than the body");
    events.push_back(e);
  }
  *incomplete = reader.incomplete();
  return events;
}

bool Same(const SseEvent& a, const ModelEvent& b) {
  return a.type == b.type && a.data == b.data && a.offset == b.offset;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (256 << 10)) return 0;
  // An exactly-sized copy, so ASan sees any read past the end.
  const std::string copy(reinterpret_cast<const char*>(data), size);
  const std::string_view body = copy;

  const ModelResult model = Model(body);
  bool incomplete = false;
  const std::vector<SseEvent> events = Read(body, &incomplete);
  Check(events.size() == model.events.size(), "model: a different number of events");
  for (size_t i = 0; i < events.size(); ++i)
    Check(Same(events[i], model.events[i]), "model: an event differs");
  Check(incomplete == model.incomplete, "model: incomplete() differs");

  // Cuts: two random ones, and two just after an event's blank line (each cut costs a copy
  // and two readings: four keep the harness fast).
  Rng rng(Fnv1a(body));
  std::vector<size_t> cuts;
  for (int i = 0; i < 2 && !body.empty(); ++i) cuts.push_back(rng.In(0, body.size() - 1));
  if (!model.events.empty()) {  // just after a random event's blank line, and the first's
    cuts.push_back(model.events[rng.In(0, model.events.size() - 1)].dispatched_at);
    cuts.push_back(model.events.front().dispatched_at);
  }
  for (const size_t cut : cuts) {
    const std::string prefix_copy(body.substr(0, cut));  // exactly sized, as above
    bool prefix_incomplete = false;
    const std::vector<SseEvent> got = Read(prefix_copy, &prefix_incomplete);
    size_t expected = 0;
    while (expected < model.events.size() && model.events[expected].dispatched_at <= cut) ++expected;
    Check(got.size() == expected, "prefix: not the events dispatched before the cut");
    for (size_t i = 0; i < got.size(); ++i) Check(Same(got[i], model.events[i]), "prefix: an event differs");
    Check(prefix_incomplete == Model(prefix_copy).incomplete, "prefix: incomplete() differs from the model");
    // A cut inside an event whose data line was read is always incomplete.
    if (expected < model.events.size() && model.events[expected].offset < cut) {
      Check(prefix_incomplete, "prefix: cut inside an event, not incomplete");
    }
  }
  return 0;
}
