#include "protocols/memcache/parse.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "protocols/common/in_order_stitch.h"

namespace kspan::protocols::memcache {
namespace {

using std::string_view;

struct CommandWord {
  string_view word;
  Command command;
};

constexpr std::array<CommandWord, 19> kCommands = {{
    {"get", Command::kGet},
    {"gets", Command::kGets},
    {"gat", Command::kGat},
    {"gats", Command::kGats},
    {"set", Command::kSet},
    {"add", Command::kAdd},
    {"replace", Command::kReplace},
    {"append", Command::kAppend},
    {"prepend", Command::kPrepend},
    {"cas", Command::kCas},
    {"incr", Command::kIncr},
    {"decr", Command::kDecr},
    {"delete", Command::kDelete},
    {"touch", Command::kTouch},
    {"version", Command::kVersion},
    {"stats", Command::kStats},
    {"flush_all", Command::kFlushAll},
    {"verbosity", Command::kVerbosity},
    {"quit", Command::kQuit},
}};

// Words that may start an answer; a digit starts one too (incr/decr).
constexpr std::array<string_view, 17> kAnswerWords = {
    "VALUE",   "END",     "STAT", "ITEM",  "PREFIX",  "STORED", "NOT_STORED",   "EXISTS",       "NOT_FOUND",
    "DELETED", "TOUCHED", "OK",   "RESET", "VERSION", "ERROR",  "CLIENT_ERROR", "SERVER_ERROR",
};
constexpr string_view kServerError = "SERVER_ERROR";

// The longest word of either table, so a run of letters longer than it is no start.
constexpr size_t kMaxWordBytes = 12;

const CommandWord* FindCommand(string_view word) {
  for (const CommandWord& c : kCommands) {
    if (c.word == word) return &c;
  }
  return nullptr;
}

bool IsAnswerWord(string_view word) {
  return std::find(kAnswerWords.begin(), kAnswerWords.end(), word) != kAnswerWords.end();
}

bool IsDelimiter(char c) {
  return c == ' ' || c == '\r' || c == '\n';
}

// Does `s` start with a known word (per `known` / `prefix_of_known`) and a delimiter?
// kMaybe when `s` ends inside the word or between its CR and LF. `bare_lf`: a lone LF ends
// a line (memcached accepts it from clients); without it only CRLF does.
template <typename Known, typename PrefixOfKnown>
Start MatchWord(string_view s, Known known, PrefixOfKnown prefix_of_known, bool bare_lf) {
  size_t i = 0;
  while (i < s.size() && !IsDelimiter(s[i])) {
    if (++i > kMaxWordBytes) return Start::kNo;
  }
  const string_view word = s.substr(0, i);
  if (i == s.size()) return prefix_of_known(word) ? Start::kMaybe : Start::kNo;
  if (word.empty() || !known(word)) return Start::kNo;
  switch (s[i]) {
    case ' ': return Start::kYes;
    case '\n': return bare_lf ? Start::kYes : Start::kNo;
    default: break;  // '\r'
  }
  if (i + 1 == s.size()) return Start::kMaybe;
  return s[i + 1] == '\n' ? Start::kYes : Start::kNo;
}

Start MatchCommandWord(string_view s, bool bare_lf) {
  return MatchWord(
      s, [](string_view w) { return FindCommand(w) != nullptr; },
      [](string_view w) {
        for (const CommandWord& c : kCommands) {
          if (c.word.substr(0, w.size()) == w) return true;
        }
        return false;
      },
      bare_lf);
}

Start MatchAnswerStart(string_view s) {
  if (!s.empty() && s[0] >= '0' && s[0] <= '9') return Start::kYes;
  return MatchWord(
      s, IsAnswerWord,
      [](string_view w) {
        for (string_view a : kAnswerWords) {
          if (a.substr(0, w.size()) == w) return true;
        }
        return false;
      },
      /*bare_lf=*/true);
}

// ---- Lines and tokens --------------------------------------------------------------------

enum class LineStatus : uint8_t { kFound, kNeedMore, kTooLong };

// The line at the start of `buf`: terminated by LF, an optional CR before it dropped.
// `used` is the line with its terminator.
LineStatus ReadLine(string_view buf, size_t max, string_view* line, size_t* used) {
  const size_t lf = buf.substr(0, max + 2).find('\n');
  if (lf == string_view::npos) return buf.size() >= max + 2 ? LineStatus::kTooLong : LineStatus::kNeedMore;
  size_t end = lf;
  if (end > 0 && buf[end - 1] == '\r') --end;
  if (end > max) return LineStatus::kTooLong;
  *line = buf.substr(0, end);
  *used = lf + 1;
  return LineStatus::kFound;
}

// Space-separated tokens of a line (memcached splits on spaces only; runs of them count
// as one).
class Tokens {
 public:
  explicit Tokens(string_view line) : rest_(line) {}
  bool Next(string_view* token) {
    while (!rest_.empty() && rest_.front() == ' ') rest_.remove_prefix(1);
    if (rest_.empty()) return false;
    const size_t end = std::min(rest_.find(' '), rest_.size());
    *token = rest_.substr(0, end);
    rest_.remove_prefix(end);
    return true;
  }

 private:
  string_view rest_;
};

bool ParseUint(string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// An expiration time or delay: a decimal integer, negative allowed (expire at once).
bool IsInt(string_view s) {
  if (!s.empty() && s.front() == '-') s.remove_prefix(1);
  uint64_t ignored = 0;
  return ParseUint(s, &ignored);
}

bool IsKey(string_view s) {
  if (s.empty() || s.size() > kMaxKeyBytes) return false;
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return false;  // no control characters
  }
  return true;
}

// A command line (without its terminator) into `f`; false when it is not one kspan parses.
bool ParseCommandLine(string_view line, Frame* f) {
  Tokens tokens(line);
  string_view word;
  if (!tokens.Next(&word)) return false;
  const CommandWord* cw = FindCommand(word);
  if (!cw) return false;
  // Arguments: the first few kept, all counted, the last remembered (noreply).
  constexpr size_t kKept = 6;
  std::array<string_view, kKept> arg{};
  size_t n = 0;
  string_view last;
  const bool retrieval = IsRetrieval(cw->command);
  for (string_view t; tokens.Next(&t);) {
    if (n < kKept) arg[n] = t;
    // Keys of a retrieval: after gat/gats' exptime.
    const bool is_key =
        retrieval && !(n == 0 && (cw->command == Command::kGat || cw->command == Command::kGats));
    if (is_key && !IsKey(t)) return false;
    if (!retrieval && n >= kKept) return false;  // no other command takes this many
    last = t;
    ++n;
  }
  Frame out;
  out.command = cw->command;
  const bool noreply = n > 0 && last == "noreply";
  uint64_t u = 0;
  switch (cw->command) {
    case Command::kGet:
    case Command::kGets:
      if (n < 1) return false;
      out.keys = static_cast<uint32_t>(n);
      break;
    case Command::kGat:
    case Command::kGats:
      if (n < 2 || !IsInt(arg[0])) return false;
      out.keys = static_cast<uint32_t>(n - 1);
      break;
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas: {
      // <key> <flags> <exptime> <bytes> [<cas unique>] [noreply]
      const size_t want = cw->command == Command::kCas ? 5 : 4;
      if (n != want + (noreply ? 1 : 0)) return false;
      if (!IsKey(arg[0]) || !ParseUint(arg[1], &u) || u > UINT32_MAX || !IsInt(arg[2])) return false;
      if (!ParseUint(arg[3], &u) || u > kMaxValueBytes) return false;
      out.value_bytes = u;
      if (cw->command == Command::kCas && !ParseUint(arg[4], &u)) return false;
      out.keys = 1;
      out.noreply = noreply;
      break;
    }
    case Command::kIncr:
    case Command::kDecr:
      if (n != 2 + (noreply ? 1 : 0) || !IsKey(arg[0]) || !ParseUint(arg[1], &u)) return false;
      out.keys = 1;
      out.noreply = noreply;
      break;
    case Command::kDelete:
      // delete <key> [0] [noreply]: the 0 is a relic memcached still accepts.
      if (n < 1 || n > 3 || !IsKey(arg[0])) return false;
      if (n - (noreply ? 1 : 0) == 2 && arg[1] != "0") return false;
      if (n == 3 && !noreply) return false;
      out.keys = 1;
      out.noreply = noreply;
      break;
    case Command::kTouch:
      if (n != 2 + (noreply ? 1 : 0) || !IsKey(arg[0]) || !IsInt(arg[1])) return false;
      out.keys = 1;
      out.noreply = noreply;
      break;
    case Command::kFlushAll:
      if (n - (noreply ? 1 : 0) > 1) return false;
      if (n - (noreply ? 1 : 0) == 1 && !IsInt(arg[0])) return false;
      out.noreply = noreply;
      break;
    case Command::kVerbosity:
      if (n - (noreply ? 1 : 0) != 1) return false;
      out.noreply = noreply;
      break;
    case Command::kVersion:
    case Command::kQuit:
      if (n != 0) return false;
      break;
    case Command::kStats: break;  // stats [<args>]: the arguments select a report
  }
  *f = std::move(out);
  return true;
}

// ---- Steps -------------------------------------------------------------------------------

// One step of a frame's parse. A step that does not succeed leaves the frame and the
// bytes as they were.
enum class Step : uint8_t { kProgress, kDone, kNeedMore, kInvalid };

bool StartsWith(string_view s, string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

string_view Bounded(string_view s) {
  return s.substr(0, Record::kMaxMessageBytes);
}

// An answer line that is an error ends any answer: its kind and message.
bool ErrorLine(string_view line, Result* r, string_view* message) {
  auto match = [&](string_view word, Result kind) {
    if (line == word) {
      *r = kind;
      *message = {};
      return true;
    }
    if (line.size() > word.size() && StartsWith(line, word) && line[word.size()] == ' ') {
      *r = kind;
      *message = line.substr(word.size() + 1);
      return true;
    }
    return false;
  };
  return match("ERROR", Result::kError) || match("CLIENT_ERROR", Result::kClientError) ||
         match(kServerError, Result::kServerError);
}

// "VALUE <key> <flags> <bytes> [<cas unique>]": the data block's size.
bool ValueHeader(string_view line, uint64_t* bytes) {
  Tokens t(line);
  std::array<string_view, 6> tok{};
  size_t n = 0;
  for (string_view s; t.Next(&s);) {
    if (n == tok.size()) return false;
    tok[n++] = s;
  }
  uint64_t u = 0;
  if (n != 4 && n != 5) return false;
  if (tok[0] != "VALUE" || !IsKey(tok[1]) || !ParseUint(tok[2], &u) || u > UINT32_MAX) return false;
  if (!ParseUint(tok[3], bytes) || *bytes > kMaxValueBytes) return false;
  return n == 4 || ParseUint(tok[4], &u);
}

bool ListLine(string_view line) {
  return StartsWith(line, "STAT ") || StartsWith(line, "ITEM ") || StartsWith(line, "PREFIX ");
}

Step StepData(string_view* buf, Frame* f) {
  if (f->remaining > 2) {
    const uint64_t n = std::min<uint64_t>(f->remaining - 2, buf->size());
    if (n == 0) return Step::kNeedMore;
    buf->remove_prefix(n);
    f->remaining -= n;
    return Step::kProgress;
  }
  // The block's closing CRLF, checked where it was captured.
  if (buf->empty()) return Step::kNeedMore;
  if ((*buf)[0] != (f->remaining == 2 ? '\r' : '\n')) return Step::kInvalid;
  buf->remove_prefix(1);
  if (--f->remaining > 0) return Step::kProgress;
  if (f->is_response) {
    f->phase = Phase::kList;
    return Step::kProgress;
  }
  f->phase = Phase::kDone;
  return Step::kDone;
}

Step StepRequest(string_view* buf, Frame* f) {
  if (f->phase == Phase::kData) return StepData(buf, f);
  string_view line;
  size_t used = 0;
  switch (ReadLine(*buf, kMaxRequestLine, &line, &used)) {
    case LineStatus::kNeedMore: return Step::kNeedMore;
    case LineStatus::kTooLong: return Step::kInvalid;
    case LineStatus::kFound: break;
  }
  Frame parsed;
  if (!ParseCommandLine(line, &parsed)) return Step::kInvalid;
  parsed.timing = f->timing;
  *f = std::move(parsed);
  buf->remove_prefix(used);
  if (IsStorage(f->command)) {
    f->phase = Phase::kData;
    f->remaining = f->value_bytes + 2;
    return Step::kProgress;
  }
  f->phase = Phase::kDone;
  return Step::kDone;
}

Step StepResponse(string_view* buf, Frame* f) {
  if (f->phase == Phase::kData) return StepData(buf, f);
  string_view line;
  size_t used = 0;
  switch (ReadLine(*buf, kMaxResponseLine, &line, &used)) {
    case LineStatus::kNeedMore: return Step::kNeedMore;
    case LineStatus::kTooLong: return Step::kInvalid;
    case LineStatus::kFound: break;
  }
  Result err = Result::kNone;
  string_view message;
  uint64_t bytes = 0;

  if (f->phase == Phase::kList) {
    // Between the items of a list: another item, END, or an error that cuts it short.
    if (line == "END") {
      f->phase = Phase::kDone;
    } else if (f->result == Result::kValues && StartsWith(line, "VALUE ")) {
      if (!ValueHeader(line, &bytes)) return Step::kInvalid;
      ++f->values;
      f->value_bytes += bytes;
      f->phase = Phase::kData;
      f->remaining = bytes + 2;
    } else if (f->result == Result::kStats && ListLine(line)) {
      // another line of the report
    } else if (ErrorLine(line, &err, &message)) {
      f->result = err;
      f->message = Bounded(message);
      f->phase = Phase::kDone;
    } else {
      return Step::kInvalid;
    }
    buf->remove_prefix(used);
    return f->phase == Phase::kDone ? Step::kDone : Step::kProgress;
  }

  // The first line says what the answer is.
  Frame out;
  out.is_response = true;
  out.timing = f->timing;
  out.phase = Phase::kDone;
  struct Word {
    string_view word;
    Result result;
  };
  static constexpr std::array<Word, 9> kStatus = {{
      {"STORED", Result::kStored},
      {"NOT_STORED", Result::kNotStored},
      {"EXISTS", Result::kExists},
      {"NOT_FOUND", Result::kNotFound},
      {"DELETED", Result::kDeleted},
      {"TOUCHED", Result::kTouched},
      {"OK", Result::kOk},
      {"RESET", Result::kReset},
      {"END", Result::kValues},
  }};
  bool known = false;
  for (const Word& w : kStatus) {
    if (line == w.word) {
      out.result = w.result;
      known = true;
      break;
    }
  }
  if (known) {
    // a status line
  } else if (StartsWith(line, "VALUE ")) {
    if (!ValueHeader(line, &bytes)) return Step::kInvalid;
    out.result = Result::kValues;
    out.values = 1;
    out.value_bytes = bytes;
    out.phase = Phase::kData;
    out.remaining = bytes + 2;
  } else if (ListLine(line)) {
    out.result = Result::kStats;
    out.phase = Phase::kList;
  } else if (line == "VERSION" || StartsWith(line, "VERSION ")) {
    out.result = Result::kVersion;
    out.message = Bounded(line.substr(std::min<size_t>(line.size(), 8)));
  } else if (ErrorLine(line, &err, &message)) {
    out.result = err;
    out.message = Bounded(message);
  } else {
    // incr/decr: the new value, perhaps padded with spaces.
    string_view digits = line;
    while (!digits.empty() && digits.back() == ' ') digits.remove_suffix(1);
    if (!ParseUint(digits, &out.number)) return Step::kInvalid;
    out.result = Result::kNumber;
  }
  *f = std::move(out);
  buf->remove_prefix(used);
  return f->phase == Phase::kDone ? Step::kDone : Step::kProgress;
}

Step StepFrame(MessageType type, string_view* buf, Frame* f) {
  return type == MessageType::kRequest ? StepRequest(buf, f) : StepResponse(buf, f);
}

Record Paired(Frame* req, Frame* resp) {
  Record r = RecordWithoutAnswer(req);
  r.response_missing = false;
  r.result = resp->result;
  r.hits = resp->values;
  r.response_value_bytes = resp->value_bytes;
  r.number = resp->number;
  r.message = std::move(resp->message);
  r.response = resp->timing;
  return r;
}

}  // namespace

std::string_view CommandName(Command c) {
  for (const CommandWord& w : kCommands) {
    if (w.command == c) return w.word;
  }
  return "unknown";
}

bool IsRetrieval(Command c) {
  return c == Command::kGet || c == Command::kGets || c == Command::kGat || c == Command::kGats;
}

bool IsStorage(Command c) {
  switch (c) {
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas: return true;
    default: return false;
  }
}

std::string_view ResultWord(Result r) {
  switch (r) {
    case Result::kStored: return "STORED";
    case Result::kNotStored: return "NOT_STORED";
    case Result::kExists: return "EXISTS";
    case Result::kNotFound: return "NOT_FOUND";
    case Result::kDeleted: return "DELETED";
    case Result::kTouched: return "TOUCHED";
    case Result::kOk: return "OK";
    case Result::kReset: return "RESET";
    case Result::kError: return "ERROR";
    case Result::kClientError: return "CLIENT_ERROR";
    case Result::kServerError: return "SERVER_ERROR";
    case Result::kNone:
    case Result::kValues:
    case Result::kStats:
    case Result::kNumber:
    case Result::kVersion: return "";
  }
  return "";
}

bool Fits(Command c, Result r) {
  if (r == Result::kError || r == Result::kClientError || r == Result::kServerError) return true;
  switch (c) {
    case Command::kGet:
    case Command::kGets:
    case Command::kGat:
    case Command::kGats: return r == Result::kValues;
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
      return r == Result::kStored || r == Result::kNotStored || r == Result::kExists ||
             r == Result::kNotFound;
    case Command::kIncr:
    case Command::kDecr: return r == Result::kNumber || r == Result::kNotFound;
    case Command::kDelete: return r == Result::kDeleted || r == Result::kNotFound;
    case Command::kTouch: return r == Result::kTouched || r == Result::kNotFound;
    case Command::kVersion: return r == Result::kVersion;
    // A bare END is an empty report.
    case Command::kStats:
      return r == Result::kStats || r == Result::kValues || r == Result::kReset || r == Result::kOk;
    case Command::kFlushAll:
    case Command::kVerbosity: return r == Result::kOk;
    case Command::kQuit: return false;
  }
  return false;
}

ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
  if (!state->ctx.partial_ok) {
    // Whole frames only: work on copies, commit on completion.
    Frame f = *frame;
    string_view b = *buf;
    for (;;) {
      switch (StepFrame(type, &b, &f)) {
        case Step::kProgress: continue;
        case Step::kDone:
          *frame = std::move(f);
          *buf = b;
          return ParseState::kSuccess;
        case Step::kNeedMore: return ParseState::kNeedsMoreData;
        case Step::kInvalid: return ParseState::kInvalid;
      }
    }
  }
  // In parts: every step taken is kept; a framing error after progress is reported by the
  // next call, as if the bytes had come one by one.
  const size_t before = buf->size();
  for (;;) {
    switch (StepFrame(type, buf, frame)) {
      case Step::kProgress: continue;
      case Step::kDone: return ParseState::kSuccess;
      case Step::kNeedMore: return buf->size() != before ? ParseState::kSuccess : ParseState::kNeedsMoreData;
      case Step::kInvalid: return buf->size() != before ? ParseState::kSuccess : ParseState::kInvalid;
    }
  }
}

size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state) {
  bool& mid_line = type == MessageType::kRequest ? state->request_mid_line : state->response_mid_line;
  // Frames start at line starts: buf[0] is one unless the bytes before it, already
  // skipped, ended inside a line.
  auto line_start = [&](size_t pos) { return pos == 0 ? !mid_line : buf[pos - 1] == '\n'; };
  size_t pos = start;
  while (pos < buf.size()) {
    if (line_start(pos)) {
      const string_view rest = buf.substr(pos);
      const Start s =
          type == MessageType::kRequest ? MatchCommandWord(rest, /*bare_lf=*/true) : MatchAnswerStart(rest);
      if (s != Start::kNo) {
        mid_line = false;
        return pos;
      }
    }
    const size_t lf = buf.find('\n', pos);
    if (lf == string_view::npos) break;
    pos = lf + 1;
  }
  // Everything from `start` on is skipped: the next byte continues this line, if it ended
  // inside one.
  if (!buf.empty()) mid_line = buf.back() != '\n';
  return string_view::npos;
}

bool FrameComplete(const Frame& frame) {
  return frame.phase == Phase::kDone;
}

// A server writes a VALUE item and the END after it with one syscall, so when the kernel
// captured only a prefix, the hole that swallows the block's tail swallows "END\r\n" too.
// Inside a data block an answer therefore offers the block and an END as opaque: a hole
// that covers both ends the answer (exact for a one-key get; a multi-key get whose later
// items fell in the hole too keeps the items counted so far). A hole that ends with the
// block leaves the END to be parsed from the bytes that follow.
constexpr uint64_t kEndLine = 5;  // "END\r\n"

uint64_t OpaqueRemaining(const Frame& frame) {
  if (frame.phase != Phase::kData) return 0;
  return frame.remaining + (frame.is_response ? kEndLine : 0);
}

void SkipHole(Frame* frame, uint64_t n) {
  if (frame->phase != Phase::kData) return;
  if (n > frame->remaining && frame->is_response) {
    frame->remaining = 0;
    frame->phase = Phase::kDone;  // the END fell in the hole with the block
    return;
  }
  frame->remaining -= std::min(n, frame->remaining);
  if (frame->remaining == 0) frame->phase = frame->is_response ? Phase::kList : Phase::kDone;
}

void FinishFrame(MessageType type, Frame* frame, State* state) {
  if (type == MessageType::kRequest) {
    frame->seq = state->next_seq++;
    frame->after_loss = std::exchange(state->request_loss, false);
  } else {
    frame->after_loss = std::exchange(state->response_loss, false);
  }
}

void OnLoss(MessageType type, State* state) {
  if (type == MessageType::kRequest) {
    state->request_loss = true;
    state->request_mid_line = false;
  } else {
    state->response_loss = true;
    state->response_mid_line = false;
  }
}

Record RecordWithoutAnswer(Frame* request) {
  Record r;
  r.seq = request->seq;
  r.command = request->command;
  r.keys = request->keys;
  r.noreply = request->noreply;
  r.request_value_bytes = request->value_bytes;
  r.request = request->timing;
  r.response_missing = request->ExpectsAnswer();
  // Given up while parsing: its answer was lost, or kspan stopped waiting for it. At close
  // the connection's reason replaces this one (spec.cc).
  r.unanswered = Unanswered::kNotCaptured;
  return r;
}

// The in-order pairing (protocols/common/in_order_stitch.h) with memcached's hooks.
struct Pairing {
  using Frame = memcache::Frame;
  using State = memcache::State;
  using Record = memcache::Record;
  static bool ExpectsAnswer(const Frame& request) { return request.ExpectsAnswer(); }
  static bool Fits(const Frame& request, const Frame& answer) {
    return memcache::Fits(request.command, answer.result);
  }
  static Record Paired(Frame* request, Frame* answer, State*) { return memcache::Paired(request, answer); }
  static Record RecordWithoutAnswer(Frame* request) { return memcache::RecordWithoutAnswer(request); }
};

RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state) {
  return StitchInOrder<Pairing>(requests, responses, state);
}

Start LooksLikeRequest(std::string_view prefix) {
  const Start word = MatchCommandWord(prefix, /*bare_lf=*/false);
  if (word != Start::kYes) return word;
  string_view line;
  size_t used = 0;
  switch (ReadLine(prefix, kMaxRequestLine, &line, &used)) {
    case LineStatus::kNeedMore: return Start::kYes;  // a known word and a space: enough
    case LineStatus::kTooLong: return Start::kNo;
    case LineStatus::kFound: break;
  }
  Frame f;
  return ParseCommandLine(line, &f) ? Start::kYes : Start::kNo;
}

}  // namespace kspan::protocols::memcache
