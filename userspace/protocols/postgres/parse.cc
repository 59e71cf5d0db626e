#include "protocols/postgres/parse.h"

#include <algorithm>
#include <utility>

#include "protocols/common/in_order_stitch.h"
#include "protocols/common/sql.h"

namespace kspan::protocols::postgres {
namespace {

using std::string_view;

constexpr uint32_t kSslCode = 80877103;
constexpr uint32_t kGssCode = 80877104;
constexpr uint32_t kCancelCode = 80877102;

uint32_t ReadInt32(string_view b) {
  return (uint32_t{static_cast<uint8_t>(b[0])} << 24) | (uint32_t{static_cast<uint8_t>(b[1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[2])} << 8) | uint32_t{static_cast<uint8_t>(b[3])};
}

// The NUL-terminated string at the start of `b` (all of `b` when it has no NUL), and moves
// `b` past it.
string_view CString(string_view* b) {
  const size_t nul = b->find('\0');
  const string_view s = b->substr(0, nul);
  b->remove_prefix(nul == string_view::npos ? b->size() : nul + 1);
  return s;
}

std::string Name(string_view s) {
  return std::string(s.substr(0, Record::kMaxNameBytes));
}

constexpr string_view kResponseTypes = "RSKZTDCENI123ntsGHWdcAvV";
constexpr string_view kRequestTypes = "QPBDEHSCFpdcfX";

enum class Step : uint8_t { kProgress, kDone, kNeedMore, kInvalid };

// The bytes handed to ParseFrame end where a capture hole begins: what is missing of a
// message there never comes. Only known when the stream driver calls (ctx.stream set).
bool HoleFollows(const State& st) {
  return st.ctx.stream != nullptr && st.ctx.stream->HoleAfterHead();
}

// A query text (Query, Parse) from the bytes read of it: all of it up to its NUL, or a
// prefix (cut by a hole or the read bound). A prefix is sanitised as a whole text would be
// (a literal or comment it cuts becomes `?` or nothing) and ends in "...", so that
// sql::CollectionName takes nothing from it; a first word it cuts is no operation.
Statement QueryText(string_view b, const State& state) {
  const size_t nul = b.find('\0');
  const string_view text = b.substr(0, nul);
  Statement st;
  st.query = sql::QueryText(text, sql::Dialect::kPostgres, state.raw_query_text);
  const string_view op = sql::FirstKeyword(text);
  const bool cut = nul == string_view::npos;
  const bool capped = st.query.size() >= 3 && st.query.compare(st.query.size() - 3, 3, "...") == 0;
  if (!cut || op.data() + op.size() != text.data() + text.size()) st.operation = std::string(op);
  st.truncated = cut || capped;
  if (cut && !capped) st.query += "...";
  return st;
}

// The bytes of a Query or Parse body to read: its text up to `cap`, or, when a capture hole
// cuts the message, what there is before the hole (the text is then a prefix).
size_t TextRead(string_view buf, uint64_t body, uint64_t cap, const State& st) {
  size_t read = static_cast<size_t>(std::min<uint64_t>(body, cap));
  if (buf.size() < 5 + read && HoleFollows(st)) read = buf.size() - 5;
  return read;
}

// COPY mode (parse.h): what a header at b[0] is. kCopy: a message of the COPY data (request
// d, c, f; answer d, c, C "COPY n"); kOther: a message that starts another unit or answer;
// kNone: not a header; kShort: too few bytes to say.
enum class CopyHeader : uint8_t { kCopy, kOther, kNone, kShort };
Start MatchMessage(MessageType type, string_view b);

CopyHeader ClassifyCopy(MessageType type, string_view b) {
  if (b.size() < 5) return CopyHeader::kShort;
  const char t = b[0];
  const uint32_t len = ReadInt32(b.substr(1));
  const bool sized = len >= 4 && len < (uint32_t{1} << 24);
  if (t == 'd' && sized) return CopyHeader::kCopy;
  if (t == 'c' && len == 4) return CopyHeader::kCopy;
  if (type == MessageType::kRequest && t == 'f' && sized) return CopyHeader::kCopy;
  if (type == MessageType::kResponse && t == 'C' && len >= 9 && len <= 68) {
    if (b.size() < 10) return CopyHeader::kShort;
    if (b.substr(5, 5) == "COPY ") return CopyHeader::kCopy;
  }
  return MatchMessage(type, b) == Start::kYes ? CopyHeader::kOther : CopyHeader::kNone;
}

// Searching an answer's COPY data for its end: an ErrorResponse or ReadyForQuery inside the
// same syscall's bytes is this answer's (a new answer starts a new syscall). -1: too short.
int AnswerEndAt(string_view b) {
  if (b.size() < 6) return -1;
  const uint32_t len = ReadInt32(b.substr(1));
  if (b[0] == 'Z') return len == 5 && (b[5] == 'I' || b[5] == 'T' || b[5] == 'E');
  if (b[0] == 'E') return len >= 5 && len < (1u << 16) && (b[5] == 'S' || b[5] == 'V' || b[5] == 'C');
  return 0;
}

// A frame in COPY mode at a message boundary it is not sure of: after a hole (the next byte
// starts a syscall) or while searching. kDone: the frame ended before *buf (nothing
// consumed); kProgress: the next message is the frame's (or bytes were skipped);
// kNeedMore: too few bytes to say.
Step CopyResync(MessageType type, string_view* buf, Frame* f, const State& st) {
  if (f->after_hole) {
    switch (ClassifyCopy(type, *buf)) {
      case CopyHeader::kCopy: f->after_hole = false; return Step::kProgress;
      case CopyHeader::kOther:
        // A new unit (request) or answer starts at a syscall's start: this frame's end
        // (CopyDone; CommandComplete and ReadyForQuery) was in the hole.
        f->end_lost = type == MessageType::kResponse;
        f->after_hole = false;
        f->phase = Phase::kDone;
        return Step::kDone;
      case CopyHeader::kShort:
        if (!HoleFollows(st)) return Step::kNeedMore;
        buf->remove_prefix(buf->size());  // the next hole decides again
        return Step::kProgress;
      case CopyHeader::kNone:
        f->after_hole = false;
        f->searching = true;
        break;
    }
  }
  // Searching: skip to the next header of the COPY data; in the request direction a new
  // unit ends the data, in the answer a ReadyForQuery or ErrorResponse is its end.
  size_t p = 0;
  for (; p < buf->size(); ++p) {
    const string_view at = buf->substr(p);
    const CopyHeader h = ClassifyCopy(type, at);
    if (h == CopyHeader::kShort) break;
    if (h == CopyHeader::kCopy || (type == MessageType::kRequest && h == CopyHeader::kOther)) {
      buf->remove_prefix(p);
      f->searching = false;
      if (h == CopyHeader::kOther) {
        if (p > 0) return Step::kProgress;  // the unit ends at the next call, before it
        f->phase = Phase::kDone;
        return Step::kDone;
      }
      return Step::kProgress;
    }
    if (type == MessageType::kResponse) {
      const int end = AnswerEndAt(at);
      if (end < 0) break;
      if (end == 1) {
        buf->remove_prefix(p);
        f->searching = false;
        return Step::kProgress;
      }
    }
  }
  if (p == buf->size() || HoleFollows(st)) p = buf->size();
  if (p == 0) return Step::kNeedMore;
  buf->remove_prefix(p);
  return Step::kProgress;
}

// CommandComplete's tag: its command word and row count (the last number).
void ReadTag(string_view b, Frame* f) {
  const string_view tag = CString(&b);
  const size_t sp = tag.find(' ');
  f->command_tag = Name(tag.substr(0, sp));
  f->tag_rows = -1;
  if (sp != string_view::npos) {
    const string_view n = tag.substr(tag.rfind(' ') + 1);
    // At most 18 digits fit an int64_t; stop at the first byte that is not one (a tag of
    // 19 or more digits, or letters, multiplied on would overflow).
    int64_t v = 0;
    bool ok = !n.empty() && n.size() <= 18;
    for (size_t i = 0; ok && i < n.size(); ++i) {
      ok = n[i] >= '0' && n[i] <= '9';
      v = v * 10 + (n[i] - '0');
    }
    if (ok) f->tag_rows = v;
  }
}

// ErrorResponse's fields: the SQLSTATE and the severity (never the message: it quotes values).
void ReadError(string_view b, Frame* f) {
  f->errored = true;
  while (!b.empty() && b[0] != '\0') {
    const char field = b[0];
    b.remove_prefix(1);
    const string_view v = CString(&b);
    if (field == 'C' && v.size() == 5) f->sqlstate = std::string(v);
    if (field == 'V' || (field == 'S' && f->severity.empty())) f->severity = Name(v.substr(0, 16));
  }
}

bool Printable(string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// Is `body` a well-formed body of a `type` message an answer starts or ends with? Strict:
// after a hole it decides what DataRow bytes could fake (parse.h, lost answers).
bool WellFormed(char type, string_view b) {
  switch (type) {
    case '1':
    case '2':
    case '3':
    case 'n':
    case 'I': return b.empty();
    case 'Z': return b.size() == 1 && (b[0] == 'I' || b[0] == 'T' || b[0] == 'E');
    case 'C':
      // A command tag: "SELECT 5", "INSERT 0 1", "CREATE TABLE".
      return b.size() >= 2 && b.size() <= 64 && b.back() == '\0' && b[0] >= 'A' && b[0] <= 'Z' &&
             Printable(b.substr(0, b.size() - 1));
    case 'E':
    case 'N': {
      // Fields (a letter, a NUL-terminated string) ending in a NUL; a severity and a
      // five-character SQLSTATE among them.
      bool severity = false, sqlstate = false;
      while (!b.empty() && b[0] != '\0') {
        const char field = b[0];
        if (!((field >= 'A' && field <= 'Z') || (field >= 'a' && field <= 'z'))) return false;
        b.remove_prefix(1);
        const size_t nul = b.find('\0');
        if (nul == string_view::npos) return false;
        const string_view v = b.substr(0, nul);
        severity = severity || ((field == 'S' || field == 'V') && !v.empty() && Printable(v));
        sqlstate = sqlstate || (field == 'C' && v.size() == 5 && std::all_of(v.begin(), v.end(), [](char c) {
                                  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
                                }));
        b.remove_prefix(nul + 1);
      }
      return b.size() == 1 && severity && sqlstate;
    }
    case 'T': {
      // Int16 fields, each a NUL-terminated name (at most 63 bytes) and 18 bytes.
      if (b.size() < 2) return false;
      size_t n = (size_t{static_cast<uint8_t>(b[0])} << 8) | static_cast<uint8_t>(b[1]);
      b.remove_prefix(2);
      for (; n > 0; --n) {
        const size_t nul = b.find('\0');
        if (nul == string_view::npos || nul > Record::kMaxNameBytes || b.size() < nul + 1 + 18) return false;
        b.remove_prefix(nul + 1 + 18);
      }
      return b.empty();
    }
    case 't': {
      if (b.size() < 2) return false;
      const size_t n = (size_t{static_cast<uint8_t>(b[0])} << 8) | static_cast<uint8_t>(b[1]);
      return b.size() == 2 + 4 * n;
    }
    case 'G':
    case 'H':
    case 'W': {
      if (b.size() < 3 || (b[0] != 0 && b[0] != 1)) return false;
      const size_t n = (size_t{static_cast<uint8_t>(b[1])} << 8) | static_cast<uint8_t>(b[2]);
      return b.size() == 3 + 2 * n;
    }
    default: return false;
  }
}

// The answerable requests that started in (after, upto].
size_t RequestsBetween(const State& st, uint64_t after, uint64_t upto) {
  size_t n = 0;
  for (const uint64_t t : st.request_times) n += t > after && t <= upto;
  return n;
}

// A lost answer, at a syscall's first byte after a hole: does a whole, well-formed message
// an answer starts with begin here, followed by a plausible header? kMaybe: more bytes of
// this syscall are to come.
Start AnswerStartsAt(string_view b, bool hole_follows) {
  auto more = [&] { return hole_follows ? Start::kNo : Start::kMaybe; };
  if (b.size() < 5) return more();
  const char t = b[0];
  if (string_view("123nICETtGHWZ").find(t) == string_view::npos) return Start::kNo;
  const uint32_t len = ReadInt32(b.substr(1));
  if (len < 4 || len > kMaxEndMessage) return Start::kNo;
  if (b.size() < 1 + len) return more();
  if (!WellFormed(t, b.substr(5, len - 4))) return Start::kNo;
  b.remove_prefix(1 + len);
  if (t == 'Z') return b.empty() ? Start::kYes : Start::kNo;
  if (b.empty()) return more();
  if (b.size() < 5) return hole_follows ? Start::kYes : Start::kMaybe;
  const uint32_t next = ReadInt32(b.substr(1));
  return kResponseTypes.find(b[0]) != string_view::npos && next >= 4 && next < (uint32_t{1} << 24)
             ? Start::kYes
             : Start::kNo;
}

// A lost answer: do the bytes `c` (a whole syscall's end, no hole in them) end in a
// well-formed CommandComplete, EmptyQueryResponse or ErrorResponse and ReadyForQuery? Then
// the end is kept in `f` when it is trusted (parse.h) and true is returned.
bool AnswerEndsAt(string_view c, Frame* f, const State& st, uint64_t syscall_ns) {
  if (c.size() < 6 + 5) return false;
  const size_t z = c.size() - 6;
  if (c[z] != 'Z' || ReadInt32(c.substr(z + 1)) != 5 || !WellFormed('Z', c.substr(z + 5))) return false;
  size_t q = z;
  for (size_t back = 5; back <= std::min(z, kMaxEndMessage); ++back) {
    const size_t at = z - back;
    const char t = c[at];
    if ((t == 'C' || t == 'I' || t == 'E') && ReadInt32(c.substr(at + 1)) == back - 1 &&
        WellFormed(t, c.substr(at + 5, back - 5))) {
      q = at;
      break;
    }
  }
  if (q == z) return false;
  const bool trusted = !st.pipelined && f->timing.start_ns > st.request_times_floor &&
                       st.last_answer_start_ns >= st.request_times_floor &&
                       RequestsBetween(st, st.last_answer_start_ns, f->timing.start_ns) == 1 &&
                       RequestsBetween(st, f->timing.start_ns, syscall_ns) == 0;
  const uint64_t rows_before = f->data_rows;
  f->data_rows = 0;
  if (!trusted) {
    // Perhaps a later answer's end: nothing of it is kept, and the next answer pairs by time.
    f->errored = false;
    f->sqlstate.clear();
    f->severity.clear();
    f->command_tag.clear();
    f->tag_rows = -1;
    f->end_lost = true;
    return true;
  }
  const string_view body = c.substr(q + 5, z - q - 5);
  if (c[q] == 'C') {
    ReadTag(body, f);
    // A SELECT's (FETCH's) rows are its count; a RETURNING's when DataRows were seen.
    const bool rows = f->command_tag == "SELECT" || f->command_tag == "FETCH" ||
                      (rows_before > 0 && (f->command_tag == "INSERT" || f->command_tag == "UPDATE" ||
                                           f->command_tag == "DELETE" || f->command_tag == "MERGE"));
    if (rows && f->tag_rows >= 0) f->data_rows = static_cast<uint64_t>(f->tag_rows);
  } else if (c[q] == 'E') {
    ReadError(body, f);
  }
  return true;
}

// A lost answer's bytes (parse.h): skipped syscall by syscall until its end is found. Every
// call starts at a syscall's first byte (the previous one took all it was given, up to a
// hole or the end of what came).
Step LostStep(string_view* buf, Frame* f, const State& st) {
  f->after_hole = false;
  const DataStream* s = st.ctx.stream;
  if (s == nullptr) {
    buf->remove_prefix(buf->size());
    return Step::kProgress;
  }
  const uint64_t base = st.ctx.position + static_cast<uint64_t>(buf->data() - st.call_base);
  size_t p = 0;
  while (p < buf->size()) {
    uint64_t chunk_end = 0;
    const ChunkTiming t = s->TimingAt(base + p, &chunk_end);
    if (RequestsBetween(st, f->last_chunk_ns, t.first_ns) > 0) {
      // A request went out since this answer's last syscall: a new answer may start here.
      const Start a = AnswerStartsAt(buf->substr(p), HoleFollows(st) || st.ctx.end_of_stream);
      if (a == Start::kMaybe) {
        buf->remove_prefix(p);
        return p > 0 ? Step::kProgress : Step::kNeedMore;
      }
      if (a == Start::kYes) {
        // This answer ended before it, in a hole.
        buf->remove_prefix(p);
        f->end_lost = true;
        f->data_rows = 0;
        f->command_tag.clear();
        f->tag_rows = -1;
        f->phase = Phase::kDone;
        return Step::kDone;
      }
    }
    f->last_chunk_ns = t.first_ns;
    const uint64_t end = chunk_end - base;
    if (end > buf->size()) break;  // the syscall's tail is in a hole
    if (AnswerEndsAt(buf->substr(0, static_cast<size_t>(end)), f, st, t.first_ns)) {
      buf->remove_prefix(static_cast<size_t>(end));
      f->phase = Phase::kDone;
      return Step::kDone;
    }
    p = static_cast<size_t>(end);
  }
  buf->remove_prefix(buf->size());
  return Step::kProgress;
}

// The message's body: `read` bytes of it are handed to `use`, the rest skipped.
template <typename Use>
Step Body(string_view* buf, Frame* f, uint64_t body_len, size_t read, bool last, Use use) {
  if (buf->size() < 5 + read) return Step::kNeedMore;
  use(buf->substr(5, read));
  buf->remove_prefix(5 + read);
  f->remaining = body_len - read;
  f->finish_after_skip = last;
  f->phase = Phase::kSkip;
  f->started = true;
  return Step::kProgress;
}

Step StepUntyped(string_view* buf, Frame* f) {
  if (buf->size() < 8) return Step::kNeedMore;
  const uint32_t len = ReadInt32(*buf);
  const uint32_t code = ReadInt32(buf->substr(4));
  if (code == kSslCode || code == kGssCode) {
    if (len != 8) return Step::kInvalid;
    f->unit = Unit::kSslRequest;
  } else if (code == kCancelCode) {
    if (len != 16) return Step::kInvalid;
    f->unit = Unit::kCancel;
  } else if ((code >> 16) == 3) {
    if (len < 9 || len > kMaxStartup) return Step::kInvalid;
    if (buf->size() < len) return Step::kNeedMore;
    string_view params = buf->substr(8, len - 8);
    if (params.back() != '\0') return Step::kInvalid;
    while (!params.empty() && params[0] != '\0') {
      const string_view key = CString(&params);
      const string_view value = CString(&params);
      if (key == "user") f->user = Name(value);
      if (key == "database") f->database = Name(value);
      if (key == "replication")
        f->replication = value != "false" && value != "off" && value != "no" && value != "0";
    }
    f->unit = Unit::kStartup;
  } else {
    return Step::kInvalid;
  }
  if (buf->size() < 8) return Step::kNeedMore;
  buf->remove_prefix(8);
  f->remaining = len - 8;
  f->finish_after_skip = true;
  f->phase = Phase::kSkip;
  f->started = true;
  return Step::kProgress;
}

// The next message of a COPY data unit (d ... c|f), framing known: CopyData goes on,
// CopyDone and CopyFail end the unit, anything else ends it before that message.
Step StepCopyData(string_view* buf, Frame* f, const State& st) {
  if (f->after_hole || f->searching) {
    const Step s = CopyResync(MessageType::kRequest, buf, f, st);
    if (s != Step::kProgress || f->after_hole || f->searching || buf->empty()) return s;
  }
  const CopyHeader h = ClassifyCopy(MessageType::kRequest, *buf);
  if (!f->started && h != CopyHeader::kCopy) return Step::kInvalid;
  if (h == CopyHeader::kShort) {
    if (!HoleFollows(st)) return Step::kNeedMore;
    buf->remove_prefix(buf->size());
    f->after_hole = true;  // the header is cut: decide after the hole
    return Step::kProgress;
  }
  if (h != CopyHeader::kCopy) {
    f->phase = Phase::kDone;
    return Step::kDone;
  }
  const char t = (*buf)[0];
  f->unit = Unit::kCopyData;
  f->copy = true;
  return Body(buf, f, ReadInt32(buf->substr(1)) - 4, 0, t != 'd', [](string_view) {});
}

Step StepRequest(string_view* buf, Frame* f, const State& st) {
  if (!f->started && (*buf)[0] == '\0') return StepUntyped(buf, f);
  if (f->started && f->unit == Unit::kCopyData) return StepCopyData(buf, f, st);
  if (buf->size() < 5) return Step::kNeedMore;
  const char t = (*buf)[0];
  const uint32_t len = ReadInt32(buf->substr(1));
  if (kRequestTypes.find(t) == string_view::npos || len < 4 || len > kMaxMessage) return Step::kInvalid;
  const uint64_t body = len - 4;
  const bool extended = f->started && f->unit == Unit::kExtended;
  auto single = [&](Unit u) -> Step {
    if (f->started) return Step::kInvalid;  // inside an extended unit without its Sync
    f->unit = u;
    return Body(buf, f, body, 0, true, [](string_view) {});
  };
  auto part = [&](size_t read, auto use) -> Step {
    if (f->started && !extended) return Step::kInvalid;
    f->unit = Unit::kExtended;
    return Body(buf, f, body, read, false, use);
  };
  switch (t) {
    case 'Q': {
      if (f->started) return Step::kInvalid;
      f->unit = Unit::kQuery;
      return Body(buf, f, body, TextRead(*buf, body, kMaxQueryRead, st), true, [&](string_view b) {
        Statement text = QueryText(b, st);
        f->query = std::move(text.query);
        f->operation = std::move(text.operation);
        f->query_truncated = text.truncated;
      });
    }
    case 'P':
      return part(TextRead(*buf, body, kMaxQueryRead + 64, st), [&](string_view b) {
        Frame::Op op;
        op.type = 'P';
        op.name = Name(CString(&b));
        op.statement = QueryText(b, st);
        f->ops.push_back(std::move(op));
      });
    case 'B':
      return part(static_cast<size_t>(std::min<uint64_t>(body, kMaxPrefixRead)), [&](string_view b) {
        Frame::Op op;
        op.type = 'B';
        op.name = Name(CString(&b));
        op.target = Name(CString(&b));
        f->ops.push_back(std::move(op));
      });
    case 'E':
      return part(static_cast<size_t>(std::min<uint64_t>(body, kMaxPrefixRead)), [&](string_view b) {
        Frame::Op op;
        op.type = 'E';
        op.name = Name(CString(&b));
        f->ops.push_back(std::move(op));
        ++f->executes;
      });
    case 'C':
      return part(static_cast<size_t>(std::min<uint64_t>(body, kMaxPrefixRead)), [&](string_view b) {
        if (b.empty()) return;
        Frame::Op op;
        op.type = 'C';
        op.close_kind = b[0];
        b.remove_prefix(1);
        op.name = Name(CString(&b));
        f->ops.push_back(std::move(op));
      });
    case 'D':
    case 'H': return part(0, [](string_view) {});
    case 'S':
      if (f->started && !extended) return Step::kInvalid;
      f->unit = Unit::kExtended;
      return Body(buf, f, body, 0, true, [](string_view) {});
    case 'F': return single(Unit::kFunction);
    case 'p': return single(Unit::kPassword);  // never read: a password or SASL data
    case 'd':
    case 'c':
    case 'f':
      if (f->started) return Step::kInvalid;
      return StepCopyData(buf, f, st);
    case 'X': return single(Unit::kTerminate);
    default: return Step::kInvalid;
  }
}

Step StepResponse(string_view* buf, Frame* f, const State& st) {
  // The answer to an SSLRequest/GSSENCRequest is one byte, and comes before the server's
  // first typed message (the request is the client's first): decided on this stream alone,
  // whatever the request side has parsed so far.
  if (!f->started && !st.response_typed_seen && ((*buf)[0] == 'S' || (*buf)[0] == 'N' || (*buf)[0] == 'G')) {
    const char a = (*buf)[0];
    f->ssl_answer = a;
    f->ends_stream = a != 'N';
    f->started = true;
    buf->remove_prefix(1);
    f->phase = Phase::kDone;
    return Step::kDone;
  }
  if (f->lost) return LostStep(buf, f, st);
  if (f->copy && (f->after_hole || f->searching)) {
    const Step s = CopyResync(MessageType::kResponse, buf, f, st);
    if (s != Step::kProgress || f->after_hole || f->searching || buf->empty()) return s;
  }
  if (buf->size() < 5) {
    if (!f->started || !HoleFollows(st)) return Step::kNeedMore;
    buf->remove_prefix(buf->size());  // a header cut by a hole: decide after it
    f->after_hole = true;
    f->lost = !f->copy;
    return Step::kProgress;
  }
  const char t = (*buf)[0];
  const uint32_t len = ReadInt32(buf->substr(1));
  if (kResponseTypes.find(t) == string_view::npos || len < 4 || len > kMaxMessage) return Step::kInvalid;
  const uint64_t body = len - 4;
  const size_t prefix = static_cast<size_t>(std::min<uint64_t>(body, kMaxPrefixRead));
  if ((t == 'E' || t == 'C') && buf->size() < 5 + std::min<size_t>(prefix, t == 'C' ? 64 : prefix) &&
      HoleFollows(st)) {
    // An error or CommandComplete a hole cuts: skipped unread (a cut count or SQLSTATE
    // would be wrong), the error still an error.
    f->errored = f->errored || t == 'E';
    return Body(buf, f, body, 0, false, [](string_view) {});
  }
  if (!f->started && (t == 'A' || t == 'N' || t == 'S')) {
    f->async = true;  // while idle: no answer to anything
    return Body(buf, f, body, 0, true, [](string_view) {});
  }
  switch (t) {
    case 'Z':
      if (len != 5) return Step::kInvalid;
      return Body(buf, f, body, 0, true, [](string_view) {});
    case 'E': return Body(buf, f, body, prefix, false, [&](string_view b) { ReadError(b, f); });
    case 'C':
      return Body(buf, f, body, std::min<size_t>(prefix, 64), false, [&](string_view b) { ReadTag(b, f); });
    case 'D': ++f->data_rows; return Body(buf, f, body, 0, false, [](string_view) {});
    case 'G':
    case 'H':
    case 'W':
      // CopyIn/CopyOut/CopyBothResponse: COPY data follows (from the client for G, in this
      // answer for H and W) until CopyDone, then CommandComplete "COPY n".
      f->copy = true;
      f->copy_in = f->copy_in || t == 'G';
      f->copy_out = f->copy_out || t == 'H';
      return Body(buf, f, body, 0, false, [](string_view) {});
    default: return Body(buf, f, body, 0, false, [](string_view) {});
  }
}

Step StepFrame(MessageType type, string_view* buf, Frame* f, const State& st) {
  if (f->phase == Phase::kDone) return Step::kDone;
  if (f->phase == Phase::kSkip) {
    if (f->remaining > 0) {
      if (buf->empty()) return Step::kNeedMore;
      const uint64_t n = std::min<uint64_t>(buf->size(), f->remaining);
      buf->remove_prefix(n);
      f->remaining -= n;
      if (f->remaining > 0) return Step::kProgress;
    }
    f->phase = f->finish_after_skip ? Phase::kDone : Phase::kMessage;
    return f->phase == Phase::kDone ? Step::kDone : Step::kProgress;
  }
  if (buf->empty()) {
    // The server closed after a message that ends nothing (a FATAL error): the close ends
    // the answer.
    if ((type == MessageType::kResponse || f->unit == Unit::kCopyData) && f->started &&
        st.ctx.end_of_stream) {
      if (f->lost) {
        // A lost answer the close ended before its end was found: no rows, no tag.
        f->data_rows = 0;
        f->command_tag.clear();
        f->tag_rows = -1;
      }
      f->phase = Phase::kDone;
      return Step::kDone;
    }
    return Step::kNeedMore;
  }
  return type == MessageType::kRequest ? StepRequest(buf, f, st) : StepResponse(buf, f, st);
}

// Does a message that could start a frame begin at b[0]? kMaybe when too short to say.
Start MatchMessage(MessageType type, string_view b) {
  if (b.empty()) return Start::kMaybe;
  const string_view starts = type == MessageType::kRequest ? string_view("QPBFX") : kResponseTypes;
  if (starts.find(b[0]) == string_view::npos) return Start::kNo;
  if (b.size() < 5) {
    // The length's high byte is 0 for any message under 16 MiB.
    return b.size() < 2 || b[1] == '\0' ? Start::kMaybe : Start::kNo;
  }
  // Under 16 MiB, as the high byte's check above assumes: the two must agree, or where a
  // syscall cuts a candidate would decide whether it is one.
  const uint32_t len = ReadInt32(b.substr(1));
  if (len < 4 || len >= (uint32_t{1} << 24)) return Start::kNo;
  if (b[0] == 'Z' && len != 5) return Start::kNo;
  if (b[0] == 'X' && len != 4) return Start::kNo;
  return Start::kYes;
}

struct Pairing {
  using Frame = postgres::Frame;
  using State = postgres::State;
  using Record = postgres::Record;

  static bool ExpectsAnswer(const Frame& request) { return request.ExpectsAnswer(); }
  static bool Fits(const Frame& request, const Frame& answer) {
    return (request.unit == Unit::kSslRequest) == (answer.ssl_answer != 0);
  }
  static Screen ScreenAnswer(const Fifo<Frame>&, const Frame& answer, State*) {
    return answer.async ? Screen::kSkip : Screen::kPair;
  }
  static Record Paired(Frame* request, Frame* answer, State*) {
    Record r = postgres::RecordWithoutAnswer(request);
    r.response_missing = false;
    r.response = answer->timing;
    r.errored = answer->errored;
    r.sqlstate = std::move(answer->sqlstate);
    r.severity = std::move(answer->severity);
    r.command_tag = std::move(answer->command_tag);
    r.tag_rows = answer->tag_rows;
    r.data_rows = answer->data_rows;
    r.ssl_answer = answer->ssl_answer;
    r.copy_in = answer->copy_in;
    r.copy_out = answer->copy_out;
    r.framing_lost = answer->lost;
    return r;
  }
  static Record RecordWithoutAnswer(Frame* request) { return postgres::RecordWithoutAnswer(request); }
};

}  // namespace

ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
  if (!frame->started && frame->phase == Phase::kMessage) frame->is_response = type == MessageType::kResponse;
  if (type == MessageType::kRequest && state->ssl_requested && !frame->started &&
      frame->phase == Phase::kMessage && !buf->empty() && (state->request_encrypted || (*buf)[0] == '\x16')) {
    // The TLS handshake after SSLRequest/'S' (a StartupMessage starts with 0): its bytes
    // and everything after on this socket are ciphertext; the plaintext comes through the
    // TLS probes as a new stream.
    state->request_encrypted = true;
    buf->remove_prefix(buf->size());
    return ParseState::kIgnored;
  }
  state->call_base = buf->data();
  if (!state->ctx.partial_ok) {
    Frame f = *frame;
    string_view b = *buf;
    for (;;) {
      switch (StepFrame(type, &b, &f, *state)) {
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
  const size_t before = buf->size();
  // The syscall of the last byte an answer took (lost answers: was a request sent since?).
  auto took = [&] {
    if (type == MessageType::kResponse && buf->size() != before && state->ctx.stream != nullptr) {
      frame->last_chunk_ns =
          state->ctx.stream->TimingAt(state->ctx.position + (before - buf->size()) - 1).first_ns;
    }
  };
  for (;;) {
    switch (StepFrame(type, buf, frame, *state)) {
      case Step::kProgress: continue;
      case Step::kDone: took(); return ParseState::kSuccess;
      case Step::kNeedMore:
        took();
        return buf->size() != before ? ParseState::kSuccess : ParseState::kNeedsMoreData;
      case Step::kInvalid: took(); return buf->size() != before ? ParseState::kSuccess : ParseState::kInvalid;
    }
  }
}

size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State*) {
  for (size_t pos = start; pos < buf.size(); ++pos) {
    if (MatchMessage(type, buf.substr(pos)) != Start::kNo) return pos;
  }
  return string_view::npos;
}

bool FrameComplete(const Frame& frame) {
  return frame.phase == Phase::kDone;
}

uint64_t OpaqueRemaining(const Frame& frame) {
  if (frame.phase == Phase::kSkip) return frame.remaining;
  // COPY data, or an answer whose next header a hole took (parse.h): runs on, unknown.
  const bool runs_on =
      frame.copy || (frame.is_response && frame.started && !frame.async && frame.ssl_answer == 0);
  return frame.phase == Phase::kMessage && runs_on ? kCopyUnknown : 0;
}

void SkipHole(Frame* frame, uint64_t n) {
  if (frame->phase == Phase::kMessage && frame->copy) {
    // COPY data runs on past the hole; the byte after it starts a syscall (parse.h).
    frame->after_hole = true;
    frame->searching = false;
    return;
  }
  if (frame->phase == Phase::kMessage && frame->is_response && frame->started) {
    // The next header is in the hole: the answer's framing is lost (parse.h).
    frame->lost = true;
    frame->after_hole = true;
    return;
  }
  if (frame->phase != Phase::kSkip) return;
  frame->remaining -= std::min(n, frame->remaining);
  if (frame->remaining == 0) frame->phase = frame->finish_after_skip ? Phase::kDone : Phase::kMessage;
}

bool TruncateAtHole(MessageType type, Frame* frame) {
  if (type != MessageType::kRequest || frame->unit != Unit::kExtended || frame->phase != Phase::kMessage) {
    return false;
  }
  frame->phase = Phase::kDone;
  return true;
}

void FinishFrame(MessageType type, Frame* frame, State* state) {
  if (type == MessageType::kResponse) {
    if (!frame->async && frame->ssl_answer == 0) {
      // Lost answers look back to here: request times before this answer began are done.
      state->last_answer_start_ns = frame->timing.start_ns;
      while (!state->request_times.empty() && state->request_times.front() <= frame->timing.start_ns) {
        state->request_times.pop_front();
      }
    }
    frame->after_loss = std::exchange(state->response_loss, false);
    // The answer's end was in a hole: the next answer pairs by time, as after a loss.
    if (frame->end_lost) state->response_loss = true;
    if (frame->ssl_answer != 0 && state->ssl_pending > 0) --state->ssl_pending;
    if (frame->ssl_answer == 0) state->response_typed_seen = true;
    return;
  }
  frame->seq = state->next_seq++;
  frame->after_loss = std::exchange(state->request_loss, false);
  if (frame->ExpectsAnswer()) {
    if (state->request_times.size() >= kMaxRequestTimes) {
      state->request_times_floor = state->request_times.front();
      state->request_times.pop_front();
    }
    state->request_times.push_back(frame->timing.start_ns);
  }
  if (frame->unit == Unit::kSslRequest) {
    ++state->ssl_pending;
    state->ssl_requested = true;
  }
  if (frame->unit == Unit::kStartup && !frame->database.empty()) state->database = frame->database;
  if (frame->unit == Unit::kStartup && frame->database.empty()) state->database = frame->user;  // the default
  if (frame->database.empty()) frame->database = state->database;
  if (frame->unit == Unit::kStartup) state->replication = frame->replication;
  frame->replication = state->replication;
  if (frame->unit == Unit::kQuery && frame->query_truncated) ++state->frames_truncated;
  // The extended-query messages, in order: remember statements and portals, and take the
  // text of what the unit executed.
  for (Frame::Op& op : frame->ops) {
    switch (op.type) {
      case 'P':
        if (op.statement.truncated) ++state->frames_truncated;
        if (state->statements.size() >= kMaxStatements && !state->statements.count(op.name)) {
          state->statements.erase(state->statements.begin());
        }
        state->statements[op.name] = std::move(op.statement);
        break;
      case 'B':
        if (state->portals.size() >= kMaxStatements && !state->portals.count(op.name)) {
          state->portals.erase(state->portals.begin());
        }
        state->portals[op.name] = op.target;
        break;
      case 'E': {
        const auto portal = state->portals.find(op.name);
        const auto stmt =
            portal == state->portals.end() ? state->statements.end() : state->statements.find(portal->second);
        if (stmt == state->statements.end()) {
          frame->query_unknown = true;
          frame->query.clear();
          frame->operation.clear();
          frame->query_truncated = false;
        } else {
          frame->query_unknown = false;
          frame->query = stmt->second.query;
          frame->operation = stmt->second.operation;
          frame->query_truncated = stmt->second.truncated;
          frame->prepared = !portal->second.empty();
        }
        break;
      }
      case 'C':
        if (op.close_kind == 'S') state->statements.erase(op.name);
        if (op.close_kind == 'P') state->portals.erase(op.name);
        break;
      default: break;
    }
  }
  // A unit that only prepared (Parse, Describe, Sync): the statement it prepared.
  if (frame->unit == Unit::kExtended && frame->executes == 0) {
    for (const Frame::Op& op : frame->ops) {
      if (op.type != 'P') continue;
      const auto stmt = state->statements.find(op.name);
      if (stmt != state->statements.end()) {
        frame->query = stmt->second.query;
        frame->operation = stmt->second.operation;
        frame->query_truncated = stmt->second.truncated;
      }
    }
  }
  frame->ops.clear();
}

void OnLoss(MessageType type, State* state) {
  if (type == MessageType::kRequest) {
    state->request_loss = true;
  } else {
    state->response_loss = true;
    state->response_typed_seen = true;  // joined or resynchronised: no longer the stream's start
  }
}

Record RecordWithoutAnswer(Frame* request) {
  Record r;
  r.seq = request->seq;
  r.unit = request->unit;
  r.database = std::move(request->database);
  r.user = std::move(request->user);
  r.replication = request->replication;
  r.query = std::move(request->query);
  r.operation = std::move(request->operation);
  r.executes = request->executes;
  r.prepared = request->prepared;
  r.query_unknown = request->query_unknown;
  r.query_truncated = request->query_truncated;
  r.request = request->timing;
  r.response_missing = request->ExpectsAnswer();
  r.unanswered = Unanswered::kNotCaptured;
  return r;
}

RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state) {
  return StitchInOrder<Pairing>(requests, responses, state);
}

Start LooksLikeRequest(std::string_view b) {
  if (b.size() < 8) {
    // Int32 length (< 10000: two zero bytes first), then the code.
    if (!b.empty() && b[0] != '\0') return Start::kNo;
    if (b.size() >= 2 && b[1] != '\0') return Start::kNo;
    return Start::kMaybe;
  }
  const uint32_t len = ReadInt32(b);
  const uint32_t code = ReadInt32(b.substr(4));
  if (code == kSslCode || code == kGssCode) return len == 8 ? Start::kYes : Start::kNo;
  if (code != 196608 && code != 196610) return Start::kNo;  // protocol 3.0 or 3.2
  if (len < 9 || len > kMaxStartup) return Start::kNo;
  // Parameters: NUL-terminated pairs; a "user" among them (the server requires it).
  string_view params = b.substr(8, std::min<size_t>(len - 8, b.size() - 8));
  const bool whole = b.size() >= len;
  while (!params.empty() && params[0] != '\0') {
    const size_t nul = params.find('\0');
    if (nul == string_view::npos) return whole ? Start::kNo : Start::kMaybe;
    const string_view key = params.substr(0, nul);
    if (key == "user") return Start::kYes;
    params.remove_prefix(nul + 1);
    const size_t vnul = params.find('\0');
    if (vnul == string_view::npos) return whole ? Start::kNo : Start::kMaybe;
    params.remove_prefix(vnul + 1);
  }
  return whole ? Start::kNo : Start::kMaybe;
}

}  // namespace kspan::protocols::postgres
