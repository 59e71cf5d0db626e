#include "genai/sse.h"

namespace kspan::genai {

namespace {

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

}  // namespace

SseReader::SseReader(std::string_view body) : body_(body) {
  if (body_.substr(0, kByteOrderMark.size()) == kByteOrderMark) pos_ = kByteOrderMark.size();
}

bool SseReader::Next(SseEvent* event) {
  event->type.clear();
  event->data.clear();
  bool in_event = false;  // a field line was read since the last blank line
  bool has_data = false;
  while (pos_ < body_.size()) {
    const size_t line_start = pos_;
    const size_t eol = body_.find_first_of("\r\n", pos_);
    if (eol == std::string_view::npos) {
      // A line the cut fell in: it would have been part of an event unless a comment.
      incomplete_ = in_event || body_[line_start] != ':';
      pos_ = body_.size();
      return false;
    }
    const std::string_view line = body_.substr(line_start, eol - line_start);
    pos_ = eol + (body_.compare(eol, 2, "\r\n") == 0 ? 2 : 1);

    if (line.empty()) {
      if (has_data) {
        event->data.pop_back();  // the '\n' after the last data line
        if (event->type.empty()) event->type = "message";
        return true;
      }
      event->type.clear();  // a block without data dispatches nothing
      in_event = false;
      continue;
    }
    if (line[0] == ':') continue;  // a comment

    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (!in_event) {
      event->offset = line_start;
      in_event = true;
    }
    if (name == "event") {
      event->type.assign(value);
    } else if (name == "data") {
      event->data.append(value);
      event->data.push_back('\n');
      has_data = true;
    }
  }
  incomplete_ = in_event;
  return false;
}

}  // namespace kspan::genai
