#include "protocols/http1/parse.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>

#include "common/strings.h"
#include "protocols/http1/connection.h"
#include "protocols/http1/scan.h"

namespace kspan::protocols::http1 {
namespace {

using std::string_view;

// ---- Character classes (RFC 9110 §5.6.2, RFC 9112 §3) ----------------------------------

// Methods are tokens; we accept the upper-case ones (every registered method is), which
// keeps text that merely looks like a word from passing as a request line.
constexpr bool IsMethodChar(unsigned c) {
  return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}
// field-value, reason-phrase: VCHAR, SP, HTAB, obs-text; no other control characters.
constexpr bool IsTextChar(unsigned c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

using scan::internal::kTargetChar;
using scan::internal::kTChar;
using scan::internal::Table;
constexpr auto kMethodChar = Table<IsMethodChar>();
constexpr auto kTextChar = Table<IsTextChar>();

inline unsigned char U(char c) {
  return static_cast<unsigned char>(c);
}

bool AllText(string_view v) {
  // Eight bytes at a time: none below 0x20 and none 0x7f is all text; a word with a tab (or
  // a bad byte) is checked byte by byte.
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  size_t i = 0;
  for (; i + 8 <= v.size(); i += 8) {
    uint64_t x;
    std::memcpy(&x, v.data() + i, 8);
    const uint64_t del = x ^ (0x7f * kOnes);
    if ((((x - 0x20 * kOnes) & ~x) | ((del - kOnes) & ~del)) & kHigh) {
      for (size_t j = i; j < i + 8; ++j) {
        if (!kTextChar[U(v[j])]) return false;
      }
    }
  }
  for (; i < v.size(); ++i) {
    if (!kTextChar[U(v[i])]) return false;
  }
  return true;
}

// Where the next line ends: the LF's index in `in` from `from`, searching at most `window`
// bytes; npos if none.
size_t FindLf(string_view in, size_t from, size_t window) {
  const size_t n = std::min(in.size() - from, window);
  const void* p = std::memchr(in.data() + from, '\n', n);
  return p ? static_cast<size_t>(static_cast<const char*>(p) - in.data()) : string_view::npos;
}

string_view StripCr(string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// ---- Start lines ------------------------------------------------------------------------
//
// Both checkers take the line without its LF. `complete`: the LF was seen. For an
// incomplete line they say whether it is still consistent (kNeedsMoreData) or cannot
// become valid (kInvalid), so garbage is rejected without waiting for a line end.

constexpr string_view kVersionPrefix = "HTTP/1.";

// HTTP-version = "HTTP/1.0" / "HTTP/1.1" at the start of v (only part of it if !complete).
ParseState CheckVersion(string_view v, bool complete) {
  const size_t k = std::min(v.size(), kVersionPrefix.size());
  if (v.substr(0, k) != kVersionPrefix.substr(0, k)) return ParseState::kInvalid;
  if (v.size() <= kVersionPrefix.size()) return complete ? ParseState::kInvalid : ParseState::kNeedsMoreData;
  if (v[7] != '0' && v[7] != '1') return ParseState::kInvalid;
  return ParseState::kSuccess;
}

struct RequestLine {
  string_view method, target, version;
};

// request-line = method SP request-target SP HTTP-version
ParseState CheckRequestLine(string_view line, bool complete, RequestLine* out) {
  if (!complete && !line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t n = line.size();
  const ParseState more = complete ? ParseState::kInvalid : ParseState::kNeedsMoreData;
  size_t i = 0;
  while (i < n && i <= kMaxMethodBytes && kMethodChar[U(line[i])]) ++i;
  if (i > kMaxMethodBytes) return ParseState::kInvalid;
  if (i == n) return more;
  if (i == 0 || line[i] != ' ') return ParseState::kInvalid;
  const size_t t = i + 1;
  size_t j = t;
  while (j < n && kTargetChar[U(line[j])]) ++j;
  if (j == n) return more;
  if (j == t || line[j] != ' ') return ParseState::kInvalid;
  const string_view version = line.substr(j + 1);
  const ParseState v = CheckVersion(version, complete);
  if (v != ParseState::kSuccess) return v;
  if (version.size() != 8) return ParseState::kInvalid;
  if (!complete) return ParseState::kNeedsMoreData;
  if (out) *out = RequestLine{line.substr(0, i), line.substr(t, j - t), version.substr(5)};
  return ParseState::kSuccess;
}

struct StatusLine {
  int code = 0;
  string_view reason, version;
};

// status-line = HTTP-version SP status-code SP [ reason-phrase ]; a missing SP before an
// empty reason is tolerated (seen in the wild).
ParseState CheckStatusLine(string_view line, bool complete, StatusLine* out) {
  if (!complete && !line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t n = line.size();
  const ParseState more = complete ? ParseState::kInvalid : ParseState::kNeedsMoreData;
  const ParseState v = CheckVersion(line, complete);
  if (v != ParseState::kSuccess) return v;
  if (n == 8) return more;
  if (line[8] != ' ') return ParseState::kInvalid;
  int code = 0;
  for (size_t k = 9; k < 12; ++k) {
    if (k == n) return more;
    const char c = line[k];
    if (c < '0' || c > '9') return ParseState::kInvalid;
    if (k == 9 && (c < '1' || c > '5')) return ParseState::kInvalid;
    code = code * 10 + (c - '0');
  }
  string_view reason;
  if (n > 12) {
    if (line[12] != ' ') return ParseState::kInvalid;
    reason = line.substr(13);
    if (!AllText(reason)) return ParseState::kInvalid;
  }
  if (!complete) return ParseState::kNeedsMoreData;
  if (out) *out = StatusLine{code, reason, line.substr(5, 3)};
  return ParseState::kSuccess;
}

// field-line = field-name ":" OWS field-value OWS. A line starting with whitespace (obs-fold)
// or with whitespace before the colon is rejected, as RFC 9112 §5 tells servers to.
bool ParseFieldLine(string_view line, string_view* name, string_view* value) {
  size_t i = 0;
  while (i < line.size() && kTChar[U(line[i])]) ++i;
  if (i == 0 || i == line.size() || line[i] != ':') return false;
  *name = line.substr(0, i);
  *value = TrimOws(line.substr(i + 1));
  return AllText(*value);
}

// An incomplete field line (no LF yet) that could still become valid. An empty line or a
// lone CR is the start of the blank line that ends the head.
bool FieldLinePrefixOk(string_view partial) {
  size_t i = 0;
  while (i < partial.size() && kTChar[U(partial[i])]) ++i;
  if (i == partial.size()) return true;
  if (i == 0) return partial == "\r";
  if (partial[i] != ':') return false;
  string_view rest = partial.substr(i + 1);
  if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
  return AllText(rest);
}

// ---- Framing fields ---------------------------------------------------------------------

// Content-Length = 1*DIGIT; a list of identical values ("5, 5") is accepted as one
// (RFC 9110 §8.6). Anything else, or a value over kMaxBodyBytes, is invalid.
bool ParseContentLength(string_view v, uint64_t* out) {
  bool have = false;
  uint64_t value = 0;
  while (true) {
    const size_t comma = v.find(',');
    const string_view item = TrimOws(v.substr(0, comma));
    if (item.empty() || item.size() > 16) return false;
    uint64_t x = 0;
    for (char c : item) {
      if (c < '0' || c > '9') return false;
      x = x * 10 + static_cast<uint64_t>(c - '0');
    }
    if (x > kMaxBodyBytes || (have && x != value)) return false;
    value = x;
    have = true;
    if (comma == string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  *out = value;
  return true;
}

// What the head says about the body.
struct HeadInfo {
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool has_transfer_encoding = false;
  bool chunked = false;          // "chunked" is the final transfer coding
  bool upgrade = false;          // an Upgrade field
  bool framing_invalid = false;  // a framing field malformed, or framing fields in conflict
};

// Notes a framing field (`name` classified by Message::ClassifyName); false if it is
// malformed or conflicts with one before it.
[[gnu::always_inline]] inline bool NoteField(uint8_t name, string_view value, HeadInfo* info) {
  switch (name) {
    case Message::kContentLength: {
      uint64_t n = 0;
      if (!ParseContentLength(value, &n)) return false;
      if (info->has_content_length && n != info->content_length) return false;
      info->has_content_length = true;
      info->content_length = n;
      break;
    }
    case Message::kTransferEncoding: {
      // Several fields form one list; only the last coding decides (RFC 9112 §6.1).
      info->has_transfer_encoding = true;
      const size_t comma = value.rfind(',');
      const string_view last = TrimOws(comma == string_view::npos ? value : value.substr(comma + 1));
      info->chunked = EqualsIgnoreCase(last, "chunked");
      break;
    }
    case Message::kUpgrade: info->upgrade = true; break;
    default: break;
  }
  return true;
}

// The quick paths below read a start line or a field line that is whole, well-formed and
// within the bounds, in one pass with the scanners (scan.h), and say where the next line
// starts. For anything else (cut off, malformed, long) they return false and ParseHead's
// general path decides, so the outcome is the same either way: they never accept a line
// the general path would not accept as the same parts.

// The line end at in[j] (CR LF or LF, before `limit`): where the next line starts, or 0.
[[gnu::always_inline]] inline size_t LineEnd(string_view in, size_t j, size_t limit) {
  if (j < limit && in[j] == '\n') return j + 1;
  if (j + 1 < limit && in[j] == '\r' && in[j + 1] == '\n') return j + 2;
  return 0;
}

// The end of text (no CTL but HTAB) from in[j], before `limit`.
[[gnu::always_inline]] inline size_t TextEnd(string_view in, size_t j, size_t limit) {
  while (true) {
    j = scan::FindCtl(in.data(), j, limit);
    if (j >= limit || in[j] != '\t') return j;
    ++j;
  }
}

// "HTTP/1.0" or "HTTP/1.1" at in[at] (before `limit`).
bool VersionAt(string_view in, size_t at, size_t limit) {
  return at + 8 <= limit && in.substr(at, 7) == kVersionPrefix && (in[at + 7] == '0' || in[at + 7] == '1');
}

bool QuickRequestLine(string_view in, RequestLine* out, size_t* next) {
  // Its LF before `limit`: inside the window ParseHead searches, and the line is short.
  const size_t limit = std::min({in.size(), kMaxHeadBytes, kMaxLineBytes});
  size_t i = 0;
  while (i < limit && i <= kMaxMethodBytes && kMethodChar[U(in[i])]) ++i;
  if (i == 0 || i > kMaxMethodBytes || i >= limit || in[i] != ' ') return false;
  const size_t t = i + 1;
  const size_t j = scan::SkipTarget(in.data(), t, limit);
  if (j == t || j >= limit || in[j] != ' ' || !VersionAt(in, j + 1, limit)) return false;
  *next = LineEnd(in, j + 9, limit);
  if (*next == 0) return false;
  *out = RequestLine{in.substr(0, i), in.substr(t, j - t), in.substr(j + 6, 3)};
  return true;
}

bool QuickStatusLine(string_view in, StatusLine* out, size_t* next) {
  const size_t limit = std::min({in.size(), kMaxHeadBytes, kMaxLineBytes});
  if (!VersionAt(in, 0, limit) || limit < 12 || in[8] != ' ') return false;
  int code = 0;
  for (size_t k = 9; k < 12; ++k) {
    const char c = in[k];
    if (c < '0' || c > '9' || (k == 9 && (c < '1' || c > '5'))) return false;
    code = code * 10 + (c - '0');
  }
  string_view reason;
  size_t end = 12;
  if (end < limit && in[end] == ' ') {
    end = TextEnd(in, 13, limit);
    reason = in.substr(13, end - 13);
  }
  *next = LineEnd(in, end, limit);
  if (*next == 0) return false;
  *out = StatusLine{code, reason, in.substr(5, 3)};
  return true;
}

[[gnu::always_inline]] inline bool QuickFieldLine(string_view in, size_t pos, string_view* name,
                                                  string_view* value, size_t* next) {
  const size_t limit = std::min({in.size(), kMaxHeadBytes, pos + kMaxLineBytes});
  const size_t i = scan::SkipToken(in.data(), pos, limit);
  if (i == pos || i >= limit || in[i] != ':') return false;
  *name = in.substr(pos, i - pos);
  size_t v = i + 1;
  if (v < limit && in[v] == ' ') ++v;  // the usual single SP
  while (v < limit && (in[v] == ' ' || in[v] == '\t')) ++v;
  size_t end = TextEnd(in, v, limit);  // the value's (and the line's) end, CR excluded
  *next = LineEnd(in, end, limit);
  if (*next == 0) return false;
  while (end > v && (in[end - 1] == ' ' || in[end - 1] == '\t')) --end;
  *value = in.substr(v, end - v);
  return true;
}

// Where `part`, a view into `in`, lies in it.
[[gnu::always_inline]] inline Message::Slice SliceOf(string_view in, string_view part) {
  if (part.empty()) return {};
  return Message::Slice{static_cast<uint32_t>(part.data() - in.data()), static_cast<uint32_t>(part.size())};
}

// Notes a field at `*count` of the head being parsed: where it is, its name's class, and
// what it says about framing.
[[gnu::always_inline]] inline void AddField(string_view in, string_view name, string_view value,
                                            HeadInfo* info, Message::HeadField* fields, uint8_t* names,
                                            size_t* count) {
  const uint8_t k = Message::ClassifyName(name);
  // A malformed or conflicting framing field still leaves a real message (its start line
  // and fields parse): it is reported, and its direction ends after it (ParseNewFrame).
  if (!NoteField(k, value, info)) info->framing_invalid = true;
  names[*count] = k;
  fields[*count] = Message::HeadField{SliceOf(in, name), SliceOf(in, value)};
  ++*count;
}

// Parses the head (start line + fields + blank line) at the start of `in`. Only on kSuccess
// is `msg` written (and *head_len set): a head that is not all here costs no allocation.
ParseState ParseHead(MessageType type, string_view in, Message* msg, HeadInfo* info, size_t* head_len) {
  RequestLine rl;
  StatusLine sl;
  // Where each field is in `in`, and its name's class, until the head is known to be whole:
  // 128 × 17 bytes of stack, left uninitialised (trivial types) so a short head does not
  // pay for clearing it.
  Message::HeadField fields[kMaxHeaders];
  uint8_t names[kMaxHeaders];
  size_t nfields = 0;
  size_t pos = 0;
  bool first = true;
  if (type == MessageType::kRequest ? QuickRequestLine(in, &rl, &pos) : QuickStatusLine(in, &sl, &pos)) {
    first = false;
  }
  const size_t head_end = std::min(in.size(), kMaxHeadBytes);
  while (true) {
    if (!first) {
      // The common case in one pass; anything else takes the general path below.
      if (pos < head_end && (in[pos] == '\r' || in[pos] == '\n')) {
        const size_t next = LineEnd(in, pos, head_end);
        if (next != 0) {
          pos = next;  // the blank line
          break;
        }
      } else if (nfields < kMaxHeaders) {
        string_view name, value;
        size_t next = 0;
        if (QuickFieldLine(in, pos, &name, &value, &next)) {
          AddField(in, name, value, info, fields, names, &nfields);
          pos = next;
          continue;
        }
      }
    }
    const size_t window = head_end - std::min(pos, kMaxHeadBytes);
    const size_t lf = pos < in.size() ? FindLf(in, pos, window) : string_view::npos;
    if (lf == string_view::npos) {
      // The head is not all here. Past the bounds it never will be; otherwise check that what
      // is there is consistent, so garbage is rejected now rather than at the bound.
      if (in.size() >= kMaxHeadBytes || in.size() - pos > kMaxLineBytes) return ParseState::kInvalid;
      const string_view partial = in.substr(pos);
      if (first) {
        return type == MessageType::kRequest ? CheckRequestLine(partial, false, nullptr)
                                             : CheckStatusLine(partial, false, nullptr);
      }
      return FieldLinePrefixOk(partial) ? ParseState::kNeedsMoreData : ParseState::kInvalid;
    }
    const string_view line = StripCr(in.substr(pos, lf - pos));
    pos = lf + 1;
    if (line.size() > kMaxLineBytes) return ParseState::kInvalid;
    if (first) {
      first = false;
      const ParseState s = type == MessageType::kRequest ? CheckRequestLine(line, true, &rl)
                                                         : CheckStatusLine(line, true, &sl);
      if (s != ParseState::kSuccess) return ParseState::kInvalid;
      continue;
    }
    if (line.empty()) break;
    if (nfields == kMaxHeaders) return ParseState::kInvalid;
    string_view name, value;
    if (!ParseFieldLine(line, &name, &value)) return ParseState::kInvalid;
    AddField(in, name, value, info, fields, names, &nfields);
  }
  *head_len = pos;
  if (type == MessageType::kRequest) {
    msg->SetHead(in.substr(0, pos), SliceOf(in, rl.method), SliceOf(in, rl.target), {},
                 SliceOf(in, rl.version), fields, nfields, names);
  } else {
    msg->status_code = sl.code;
    msg->SetHead(in.substr(0, pos), {}, {}, SliceOf(in, sl.reason), SliceOf(in, sl.version), fields, nfields,
                 names);
  }
  return ParseState::kSuccess;
}

// chunk-size [ chunk-ext ] as one line without its LF: 1*HEXDIG *( BWS ";" ... ). Extensions
// are checked for control characters only. `complete`: the LF was seen (CR stripped).
bool CheckChunkLine(string_view line, bool complete, uint64_t* size) {
  if (!complete && !line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t i = 0;
  uint64_t v = 0;
  while (i < line.size()) {
    const char c = line[i];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
      d = (c | 0x20) - 'a' + 10;
    } else {
      break;
    }
    v = v * 16 + static_cast<uint64_t>(d);
    if (v > kMaxBodyBytes) return false;
    ++i;
  }
  if (i == 0) return !complete && line.empty();
  size_t j = i;
  while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
  if (j < line.size() && (line[j] != ';' || !AllText(line.substr(j + 1)))) return false;
  *size = v;
  return true;
}

// ---- Bodies -----------------------------------------------------------------------------

// The parts of a Frame a body parse changes, copied so a parse that stops without progress
// leaves the frame as it was.
struct Progress {
  Phase phase;
  uint64_t remaining;
  uint64_t body_size;
  uint32_t trailer_count;
  uint32_t trailer_bytes;
};

// Decodes body bytes from `in` into `p`, appending payload to `prefix` while it is short of
// `max_prefix` and no byte was lost before. Returns kSuccess when the frame is done,
// kNeedsMoreData when `in` ran out, kInvalid on a framing error; *used is always the bytes
// of whole elements consumed before that point.
ParseState DecodeBody(string_view in, Progress* p, const BodySink& sink, bool end_of_stream, size_t* used) {
  const size_t n = in.size();
  size_t i = 0;  // start of the element being decoded: everything before it is done
  // `offset`: the decoded body offset of bytes[0], which start at in[i].
  auto keep = [&](string_view bytes, uint64_t offset) {
    KeepBody(sink, bytes, offset, sink.in_position + i);
  };
  auto stop = [&](ParseState s) {
    *used = i;
    return s;
  };
  while (true) {
    switch (p->phase) {
      case Phase::kHead:
      case Phase::kDone: return stop(ParseState::kSuccess);
      case Phase::kFixedBody:
      case Phase::kChunkData: {
        const uint64_t take = std::min<uint64_t>(p->remaining, n - i);
        keep(in.substr(i, take), p->body_size - p->remaining);
        i += take;
        p->remaining -= take;
        if (p->remaining > 0) return stop(ParseState::kNeedsMoreData);
        if (p->phase == Phase::kFixedBody) {
          p->phase = Phase::kDone;
        } else {
          p->phase = Phase::kChunkDataEnd;
          p->remaining = 2;  // CRLF; see SkipHole
        }
        break;
      }
      case Phase::kUntilClose:
        keep(in.substr(i), p->body_size);
        p->body_size += n - i;
        i = n;
        if (!end_of_stream) return stop(ParseState::kNeedsMoreData);
        p->phase = Phase::kDone;
        break;
      case Phase::kChunkSize: {
        const size_t lf = i < n ? FindLf(in, i, kMaxChunkLineBytes + 2) : string_view::npos;
        uint64_t size = 0;
        if (lf == string_view::npos) {
          const bool ok = n - i <= kMaxChunkLineBytes && CheckChunkLine(in.substr(i), false, &size);
          return stop(ok ? ParseState::kNeedsMoreData : ParseState::kInvalid);
        }
        const string_view line = StripCr(in.substr(i, lf - i));
        if (line.size() > kMaxChunkLineBytes || !CheckChunkLine(line, true, &size) ||
            size > kMaxBodyBytes - p->body_size) {
          return stop(ParseState::kInvalid);
        }
        i = lf + 1;
        if (size == 0) {
          p->phase = Phase::kTrailers;
        } else {
          p->body_size += size;
          p->remaining = size;
          p->phase = Phase::kChunkData;
        }
        break;
      }
      case Phase::kChunkDataEnd: {
        // CRLF (or a bare LF). remaining == 1: the CR fell in a hole, only the LF is left.
        size_t j = i;
        if (j < n && in[j] == '\r' && p->remaining == 2) ++j;
        if (j == n) return stop(ParseState::kNeedsMoreData);
        if (in[j] != '\n') return stop(ParseState::kInvalid);
        i = j + 1;
        p->remaining = 0;
        p->phase = Phase::kChunkSize;
        break;
      }
      case Phase::kTrailers: {
        const size_t lf = i < n ? FindLf(in, i, kMaxLineBytes + 2) : string_view::npos;
        if (lf == string_view::npos) {
          const bool ok = n - i <= kMaxLineBytes && FieldLinePrefixOk(in.substr(i));
          return stop(ok ? ParseState::kNeedsMoreData : ParseState::kInvalid);
        }
        const string_view line = StripCr(in.substr(i, lf - i));
        if (line.empty()) {
          i = lf + 1;
          p->phase = Phase::kDone;
          break;
        }
        string_view name, value;
        p->trailer_bytes += static_cast<uint32_t>(line.size() + 2);
        if (++p->trailer_count > kMaxHeaders || p->trailer_bytes > kMaxHeadBytes ||
            !ParseFieldLine(line, &name, &value)) {
          return stop(ParseState::kInvalid);
        }
        i = lf + 1;
        break;
      }
    }
  }
}

// ---- Pairing a response with a request ---------------------------------------------------

// Which pending request a response answers, worked out before committing to it.
struct Match {
  uint64_t seq = 0;
  uint64_t drop_through = 0;
  size_t pop = 0;
  MethodKind method = MethodKind::kOther;
  bool wide_body = false;  // the request's body was wide: so is the response's
  bool pipelined = false;
  bool clear_loss = false;
  // Decided by the syscall times over every waiting request that started before the
  // response (after a loss): requests not parsed yet may have too.
  bool by_time_over_all = false;
};

// `t`: when the response's first byte moved. `final`: not a 1xx (101 is final).
Match PeekMatch(const State& st, uint64_t t, bool final) {
  Match m;
  const Fifo<PendingRequest>& q = st.pending;
  m.clear_loss = final;
  if (q.empty()) return m;  // answers a request we never saw
  // Requests that started before the response did: the only ones it can answer.
  auto started_before = [&] {
    size_t k = 0;
    while (k < q.size() && q[k].start_ns <= t) ++k;
    return k;
  };
  if (!st.response_loss) {
    const PendingRequest& front = q.front();
    if (front.start_ns > t) return m;  // began before the oldest waiting request
    if (front.after_loss && st.pipelined) {
      // Responses to lost pipelined requests may come first, or not: undecidable. Give up
      // the requests this response could answer.
      if (final) {
        m.pop = started_before();
        m.drop_through = q[m.pop - 1].seq;
        m.by_time_over_all = m.pop == q.size();
      }
      return m;
    }
    m.seq = front.seq;
    m.method = front.method;
    m.wide_body = front.wide_body;
    if (final) {
      m.pop = 1;
      // The next request was sent before this response began: the client pipelines.
      m.pipelined = q.size() > 1 && q[1].start_ns < t;
    }
    return m;
  }
  // Responses were lost. Without pipelining each request waits for the previous response,
  // so this one answers the latest request that started before it.
  const size_t k = started_before();
  if (k == 0) return m;
  m.by_time_over_all = k == q.size();
  if (st.pipelined) {
    if (final) {
      m.pop = k;
      m.drop_through = q[k - 1].seq;
    }
    return m;
  }
  m.seq = q[k - 1].seq;
  m.method = q[k - 1].method;
  m.wide_body = q[k - 1].wide_body;
  if (final) {
    m.pop = k;
    m.drop_through = k >= 2 ? q[k - 2].seq : 0;
  } else {
    m.clear_loss = false;
  }
  return m;
}

void ApplyMatch(const Match& m, bool final, Frame* f, State* st) {
  f->seq = m.seq;
  f->drop_through = m.drop_through;
  for (size_t i = 0; i < m.pop; ++i) st->pending.pop_front();
  if (m.pipelined) st->pipelined = true;
  if (m.clear_loss) st->response_loss = false;
  if (final) st->last_final_seq = std::max({st->last_final_seq, m.seq, m.drop_through});
}

MethodKind KindOf(string_view method) {
  if (method == "HEAD") return MethodKind::kHead;
  if (method == "CONNECT") return MethodKind::kConnect;
  return MethodKind::kOther;
}

// ---- Frames -----------------------------------------------------------------------------

Progress ProgressOf(const Frame& f) {
  return Progress{f.phase, f.remaining, f.msg.body_size, f.trailer_count, f.trailer_bytes};
}

void Commit(const Progress& p, Frame* f) {
  f->phase = p.phase;
  f->remaining = p.remaining;
  f->msg.body_size = p.body_size;
  f->trailer_count = p.trailer_count;
  f->trailer_bytes = p.trailer_bytes;
}

ParseState Done(const Frame& f) {
  return f.ends_stream ? ParseState::kEndOfStream : ParseState::kSuccess;
}

// Stray CRLFs between messages: RFC 9112 §2.2 asks servers to ignore at least one before a
// request line; clients sending them after a body exist.
ParseState SkipEmptyLines(string_view* buf) {
  const string_view in = *buf;
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] == '\n') {
      ++i;
    } else if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') {
      i += 2;
    } else {
      break;
    }
  }
  if (i == 0) return in == "\r" ? ParseState::kNeedsMoreData : ParseState::kInvalid;
  buf->remove_prefix(i);
  return ParseState::kIgnored;
}

// Where a frame's body bytes go; its input starts `skip` bytes into the parser's buffer.
BodySink SinkFor(Frame* f, const State& st, size_t skip) {
  BodySink k;
  k.msg = &f->msg;
  k.max_prefix = f->msg.wide_body ? st.max_wide_body_prefix : st.max_body_prefix;
  k.max_tail = st.max_wide_body_tail;
  k.stream = st.ctx.stream;
  k.in_position = st.ctx.position + skip;
  return k;
}

ParseState ParseNewFrame(MessageType type, string_view* buf, Frame* f, State* st) {
  const string_view in = *buf;
  if (!in.empty() && (in[0] == '\r' || in[0] == '\n')) return SkipEmptyLines(buf);
  if (in.empty()) return ParseState::kNeedsMoreData;

  HeadInfo info;
  size_t head_len = 0;
  ParseState s = ParseHead(type, in, &f->msg, &info, &head_len);
  if (s != ParseState::kSuccess) return s;

  // Where the body ends (RFC 9112 §6.3).
  Progress p{Phase::kDone, 0, 0, 0, 0};
  Match match;
  bool final = true;
  // A request body must be delimited (§6.3 rule 4): a Transfer-Encoding not ending in
  // chunked is a framing error.
  if (type == MessageType::kRequest && info.has_transfer_encoding && !info.chunked)
    info.framing_invalid = true;
  if (info.framing_invalid) {
    // The message is real but where it ends is not known: report its head (no body) and
    // end the direction, never resynchronise inside its body.
    f->msg.framing_invalid = true;
    f->ends_stream = true;
    (type == MessageType::kRequest ? st->request_framing_lost : st->response_framing_lost) = true;
  }
  if (type == MessageType::kRequest) {
    if (info.framing_invalid) {
      // no body
    } else if (info.has_transfer_encoding) {
      p.phase = Phase::kChunkSize;
    } else if (info.content_length > 0) {
      p = Progress{Phase::kFixedBody, info.content_length, info.content_length, 0, 0};
    }
    f->ends_stream = info.framing_invalid || info.upgrade || f->msg.method() == "CONNECT";
    f->msg.wide_body = st->wide_body_request != nullptr && st->wide_body_request(f->msg);
  } else {
    if (st->pending.empty() && (st->requests_held_back || st->ctx.position >= st->unmatched_ok_below)) {
      f->msg = Message();  // its request may still be on the way
      return ParseState::kNeedsMoreData;
    }
    const int code = f->msg.status_code;
    final = code >= 200 || code == 101;
    match = PeekMatch(*st, st->ctx.first.first_ns, final);
    if (match.by_time_over_all && st->requests_held_back) {
      // Every waiting request started before it, and so may those held back unparsed: which
      // it answers, or gives up, is decided once they are parsed (room, or the connection's
      // end), not by where the drains fell.
      f->msg = Message();
      return ParseState::kNeedsMoreData;
    }
    f->msg.wide_body = match.wide_body;
    if (info.framing_invalid) {
      // no body; ends_stream set above
    } else if (code == 101 || (match.method == MethodKind::kConnect && code / 100 == 2)) {
      f->ends_stream = true;
    } else if (code < 200 || code == 204 || code == 304 || match.method == MethodKind::kHead) {
      // no body
    } else if (info.has_transfer_encoding) {
      p.phase = info.chunked ? Phase::kChunkSize : Phase::kUntilClose;
    } else if (info.has_content_length) {
      if (info.content_length > 0)
        p = Progress{Phase::kFixedBody, info.content_length, info.content_length, 0, 0};
    } else {
      p.phase = Phase::kUntilClose;
    }
  }

  size_t used = 0;
  s = DecodeBody(in.substr(head_len), &p, SinkFor(f, *st, head_len), st->ctx.end_of_stream, &used);
  // Parsing in parts, the head and the body up to a framing error are taken now and the
  // error is reported by the next call, exactly as if the bytes had arrived one by one: the
  // outcome must not depend on where syscalls cut the stream.
  if (s != ParseState::kSuccess && !st->ctx.partial_ok) {
    *f = Frame();
    return s;
  }
  // Committed: the head, and what of the body was there.
  Commit(p, f);
  buf->remove_prefix(head_len + used);
  if (type == MessageType::kRequest) {
    f->seq = st->next_seq++;
    st->pending.push_back(PendingRequest{f->seq, st->ctx.first.first_ns, KindOf(f->msg.method()),
                                         st->request_loss, f->msg.wide_body});
    st->request_loss = false;
    if (st->pending.size() > st->max_pending) {
      // Too many requests without responses: forget the oldest; its response, if it comes,
      // is placed by time like after a loss.
      st->pending.pop_front();
      st->response_loss = true;
    }
    if (s != ParseState::kSuccess) st->open_request_seq = f->seq;
  } else {
    ApplyMatch(match, final, f, st);
  }
  return s == ParseState::kSuccess ? Done(*f) : ParseState::kSuccess;
}

ParseState ContinueFrame(MessageType type, string_view* buf, Frame* f, State* st) {
  Progress p = ProgressOf(*f);
  const size_t prefix_size = f->msg.body_prefix.size();
  const size_t marks_size = f->msg.body_marks.size();
  size_t used = 0;
  const ParseState s = DecodeBody(*buf, &p, SinkFor(f, *st, 0), st->ctx.end_of_stream, &used);
  if (s == ParseState::kInvalid && st->ctx.partial_ok) {
    // A framing error inside the body (a chunk-size line that is not one, no CRLF after a
    // chunk's data, a bad trailer): where this message ends, and so where the next one
    // begins, is unknowable. As for a head with invalid framing (RFC 9112 §6.3), the
    // message is reported with what was read of it and nothing after it in this direction
    // is parsed: resynchronising here would read the body's bytes as messages (forged
    // spans).
    Commit(p, f);
    buf->remove_prefix(used);
    f->phase = Phase::kDone;
    f->msg.framing_invalid = true;
    f->ends_stream = true;
    (type == MessageType::kRequest ? st->request_framing_lost : st->response_framing_lost) = true;
    return Done(*f);
  }
  // As in ParseNewFrame: in parts, progress before a framing error is kept and the error
  // comes next call. (A tail kept meanwhile stays: the frame is abandoned after the error.)
  if (s != ParseState::kSuccess && (used == 0 || !st->ctx.partial_ok)) {
    f->msg.body_prefix.resize(prefix_size);
    f->msg.body_marks.resize(marks_size);
    return s;
  }
  Commit(p, f);
  buf->remove_prefix(used);
  return s == ParseState::kSuccess ? Done(*f) : ParseState::kSuccess;
}

// "METHOD " for the methods we look for when resynchronising.
constexpr string_view kKnownMethods[] = {"GET ",   "POST ",    "PUT ",     "DELETE ", "HEAD ",
                                         "PATCH ", "OPTIONS ", "CONNECT ", "TRACE "};

enum class MethodMatch { kNone, kCutOff, kFull };

MethodMatch MatchKnownMethod(string_view s) {
  for (string_view m : kKnownMethods) {
    // Most candidates differ at once: resynchronisation calls this at every byte that is a
    // method's first letter, so the cheap test comes first.
    if (!s.empty() && s[0] != m[0]) continue;
    if (s.size() >= m.size()) {
      if (s.substr(0, m.size()) == m) return MethodMatch::kFull;
    } else if (m.substr(0, s.size()) == s) {
      return MethodMatch::kCutOff;
    }
  }
  return MethodMatch::kNone;
}

// The first line of `prefix`, bounded; `complete` says whether its LF is there.
string_view FirstLine(string_view prefix, bool* complete) {
  const size_t lf = FindLf(prefix, 0, kMaxLineBytes + 2);
  *complete = lf != string_view::npos;
  return *complete ? StripCr(prefix.substr(0, lf)) : prefix.substr(0, kMaxLineBytes);
}

// Resynchronisation asks at every known method (every "HTTP/1.") whether a start line
// begins there; searching each candidate's line end up to kMaxLineBytes made garbage
// full of candidates cost up to 16 KiB of memchr per candidate. Most false candidates
// fail in their first bytes, and the checkers are prefix-closed (an incomplete line they
// reject cannot become valid), so the first kQuickLook bytes decide first.
constexpr size_t kQuickLook = 64;

template <typename Check>
bool StartLineOk(string_view prefix, Check check) {
  bool complete = false;
  if (prefix.size() > kQuickLook) {
    const string_view look = FirstLine(prefix.substr(0, kQuickLook), &complete);
    const ParseState s = check(look, complete);
    if (complete || s == ParseState::kInvalid) return s != ParseState::kInvalid;
  }
  const string_view line = FirstLine(prefix, &complete);
  return check(line, complete) != ParseState::kInvalid;
}

bool RequestStartOk(string_view prefix) {
  return StartLineOk(prefix, [](string_view l, bool c) { return CheckRequestLine(l, c, nullptr); });
}

bool StatusStartOk(string_view prefix) {
  return StartLineOk(prefix, [](string_view l, bool c) { return CheckStatusLine(l, c, nullptr); });
}

}  // namespace

// Adds the decoded bytes at body offset `offset`, which start at stream position
// `position`, to what the sink keeps.
void KeepBody(const BodySink& k, string_view bytes, uint64_t offset, uint64_t position) {
  Message& m = *k.msg;
  if (m.wide_body && k.stream) {
    // One mark per syscall the bytes came in.
    const uint64_t end = position + bytes.size();
    for (uint64_t pos = position; pos < end && m.body_marks.size() < Message::kMaxBodyMarks;) {
      uint64_t chunk_end = 0;
      const uint64_t ns = k.stream->TimingAt(pos, &chunk_end).first_ns;
      if (m.body_marks.empty() || m.body_marks.back().ns != ns)
        m.body_marks.push_back({offset + (pos - position), ns});
      pos = chunk_end;
    }
  }
  if (!m.body_truncated && m.body_prefix.size() < k.max_prefix) {
    const size_t n = std::min(bytes.size(), k.max_prefix - m.body_prefix.size());
    m.body_prefix.append(bytes.substr(0, n));
    bytes.remove_prefix(n);
    offset += n;
  }
  if (!m.wide_body || bytes.empty() || k.max_tail == 0) return;
  // The tail is contiguous: bytes after a hole start it over.
  if (m.body_tail.empty() || m.body_tail_offset + m.body_tail.size() != offset) {
    m.body_tail.clear();
    m.body_tail_offset = offset;
  }
  m.body_tail.append(bytes);
  if (m.body_tail.size() > 2 * k.max_tail) {  // trimmed to max_tail at FinishFrame
    const size_t drop = m.body_tail.size() - k.max_tail;
    m.body_tail.erase(0, drop);
    m.body_tail_offset += drop;
  }
}

void TrimBodyTail(Message* m, size_t max_tail) {
  if (m->body_tail.size() <= max_tail) return;
  const size_t drop = m->body_tail.size() - max_tail;
  m->body_tail.erase(0, drop);
  m->body_tail_offset += drop;
}

// ---- Public -----------------------------------------------------------------------------

ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
  if (frame->phase == Phase::kHead) return ParseNewFrame(type, buf, frame, state);
  if (frame->phase == Phase::kDone) return Done(*frame);
  return ContinueFrame(type, buf, frame, state);
}

size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* /*state*/) {
  for (size_t p = start; p < buf.size(); ++p) {
    if (type == MessageType::kResponse) {
      p = buf.find('H', p);
      if (p == string_view::npos) return p;
      const string_view s = buf.substr(p);
      if (s.size() < kVersionPrefix.size() ? kVersionPrefix.substr(0, s.size()) == s : StatusStartOk(s)) {
        return p;
      }
    } else {
      switch (buf[p]) {
        case 'G':
        case 'P':
        case 'D':
        case 'H':
        case 'O':
        case 'C':
        case 'T': {
          const string_view s = buf.substr(p);
          const MethodMatch m = MatchKnownMethod(s);
          if (m == MethodMatch::kCutOff || (m == MethodMatch::kFull && RequestStartOk(s))) return p;
          break;
        }
        default: break;
      }
    }
  }
  return string_view::npos;
}

bool FrameComplete(const Frame& frame) {
  return frame.phase == Phase::kDone;
}

uint64_t OpaqueRemaining(const Frame& frame) {
  switch (frame.phase) {
    case Phase::kFixedBody:
    case Phase::kChunkData:
    case Phase::kChunkDataEnd:  // the CRLF after chunk data is fixed: a hole may hold it
      return frame.remaining;
    case Phase::kUntilClose: return ~uint64_t{0};
    default: return 0;
  }
}

void SkipHole(Frame* frame, uint64_t n) {
  switch (frame->phase) {
    case Phase::kFixedBody:
    case Phase::kChunkData:
      frame->msg.body_truncated = true;
      n = std::min(n, frame->remaining);
      frame->remaining -= n;
      if (frame->remaining > 0) break;
      if (frame->phase == Phase::kFixedBody) {
        frame->phase = Phase::kDone;
      } else {
        frame->phase = Phase::kChunkDataEnd;
        frame->remaining = 2;
      }
      break;
    case Phase::kChunkDataEnd:
      // Assumes the hole held CRLF, as valid framing must (a bare LF here would be off by one
      // and fail at the next size line, which resynchronises).
      frame->remaining -= std::min(n, frame->remaining);
      if (frame->remaining == 0) frame->phase = Phase::kChunkSize;
      break;
    case Phase::kUntilClose:
      frame->msg.body_truncated = true;
      frame->msg.body_size += n;
      break;
    default: break;
  }
}

void FinishFrame(MessageType type, Frame* frame, State* state) {
  Message& m = frame->msg;
  TrimBodyTail(&m, state->max_wide_body_tail);
  if (type == MessageType::kRequest && frame->seq == state->open_request_seq) state->open_request_seq = 0;
}

void OnLoss(MessageType type, State* state) {
  if (type == MessageType::kRequest) {
    state->request_loss = true;
    state->open_request_seq = 0;
  } else {
    state->response_loss = true;
  }
}

bool LooksLikeRequest(std::string_view prefix) {
  return MatchKnownMethod(prefix) == MethodMatch::kFull && RequestStartOk(prefix);
}

bool MayBecomeRequest(std::string_view prefix) {
  return !prefix.empty() && MatchKnownMethod(prefix) == MethodMatch::kCutOff;
}

bool LooksLikeResponse(std::string_view prefix) {
  return prefix.size() >= kVersionPrefix.size() && StatusStartOk(prefix);
}

}  // namespace kspan::protocols::http1
