// The outcome of one attempt to parse a frame. Not an error: bad traffic is normal input,
// counted by the caller and never fatal.
#pragma once

#include <string_view>

namespace kspan::protocols {

enum class ParseState {
  kSuccess,        // a frame (or, when allowed, a frame's next part) was consumed
  kNeedsMoreData,  // what is there is a consistent start; wait for more bytes
  kInvalid,        // not this protocol (or a framing error): resynchronise
  kIgnored,        // bytes consumed that carry no frame (e.g. stray CRLF between messages)
  kEndOfStream,    // a frame was consumed after which this protocol ends (HTTP upgrade)
};

constexpr std::string_view ParseStateName(ParseState s) {
  switch (s) {
    case ParseState::kSuccess: return "success";
    case ParseState::kNeedsMoreData: return "needs_more_data";
    case ParseState::kInvalid: return "invalid";
    case ParseState::kIgnored: return "ignored";
    case ParseState::kEndOfStream: return "end_of_stream";
  }
  return "unknown";
}

}  // namespace kspan::protocols
