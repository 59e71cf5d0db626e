#include "protocols/mysql/parse.h"

#include <algorithm>
#include <utility>

#include "protocols/common/in_order_stitch.h"
#include "protocols/common/sql.h"

namespace kspan::protocols::mysql {
namespace {

using std::string_view;

constexpr uint16_t kServerMoreResults = 0x0008;
constexpr uint16_t kServerCursorExists = 0x0040;
constexpr uint32_t kLastPrepared = 0xFFFFFFFF;  // MariaDB: the statement prepared last

uint32_t Le(string_view b, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n && i < b.size(); ++i) v |= uint32_t{static_cast<uint8_t>(b[i])} << (8 * i);
  return v;
}

uint8_t Byte(string_view b, size_t i) {
  return i < b.size() ? static_cast<uint8_t>(b[i]) : 0;
}

// A length-encoded integer at the start of `b`; false when it is not one or is cut off.
bool Lenenc(string_view* b, uint64_t* v) {
  if (b->empty()) return false;
  const uint8_t c = static_cast<uint8_t>((*b)[0]);
  size_t n = 0;
  if (c < 0xFB) {
    *v = c;
    b->remove_prefix(1);
    return true;
  }
  if (c == 0xFC) n = 2;
  if (c == 0xFD) n = 3;
  if (c == 0xFE) n = 8;
  if (n == 0 || b->size() < 1 + n) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; ++i) x |= uint64_t{static_cast<uint8_t>((*b)[1 + i])} << (8 * i);
  *v = x;
  b->remove_prefix(1 + n);
  return true;
}

// The NUL-terminated string at the start of `b` (all of `b` when it has no NUL); moves past.
string_view CString(string_view* b) {
  const size_t nul = b->find('\0');
  const string_view s = b->substr(0, nul);
  b->remove_prefix(nul == string_view::npos ? b->size() : nul + 1);
  return s;
}

std::string Name(string_view s) {
  return std::string(s.substr(0, Record::kMaxNameBytes));
}

enum class Step : uint8_t { kProgress, kDone, kNeedMore, kInvalid };

// The packet at the start of *buf: `read` bytes of its payload handed to `use`, the rest
// skipped. `last`: the frame ends with this packet (and its continuations).
template <typename Use>
Step Packet(string_view* buf, Frame* f, uint32_t len, size_t read, bool last, Use use) {
  if (buf->size() < 4 + read) return Step::kNeedMore;
  const uint8_t seq = static_cast<uint8_t>((*buf)[3]);
  use(buf->substr(4, read));
  buf->remove_prefix(4 + read);
  f->remaining = len - read;
  f->continued = len == kMaxPayload;
  f->next_seq = static_cast<uint8_t>(seq + 1);
  f->phase = Phase::kSkip;
  f->started = true;
  f->done_after_skip = last;
  return Step::kProgress;
}

void ReadError(string_view p, Frame* f) {
  f->errored = true;
  f->error_code = static_cast<uint16_t>(Le(p.substr(1), 2));
  if (p.size() >= 9 && p[3] == '#') f->sqlstate = std::string(p.substr(4, 5));
}

// The status flags of an OK packet (0x00 or 0xFE header), 0 when cut off.
uint16_t OkStatus(string_view p) {
  p.remove_prefix(1);
  uint64_t v = 0;
  if (!Lenenc(&p, &v) || !Lenenc(&p, &v) || p.size() < 2) return 0;
  return static_cast<uint16_t>(Le(p, 2));
}

// An EOF packet's status flags (0xFE, warnings, status).
uint16_t EofStatus(string_view p) {
  return p.size() >= 5 ? static_cast<uint16_t>(Le(p.substr(3), 2)) : 0;
}

Step StepRequest(string_view* buf, Frame* f, const State& st) {
  const uint32_t len = Le(*buf, 3);
  const uint8_t seq = static_cast<uint8_t>((*buf)[3]);
  if (f->started) return Step::kInvalid;  // (continuations are handled by the caller)
  const bool done = true;                 // a request is one packet (and its continuations)
  if (!st.handshake_seen && seq == 1) {
    if (len < 32) return Step::kInvalid;
    if (buf->size() < 8) return Step::kNeedMore;
    if (!(Le(buf->substr(4), 4) & kClientProtocol41)) return Step::kInvalid;
    const size_t read = std::min<size_t>(len, kMaxHandshakeRead);
    const Step s = Packet(buf, f, len, read, done, [&](string_view p) {
      f->caps = Le(p, 4);
      if (len == 32 && (f->caps & kClientSsl)) {
        f->unit = Unit::kSslRequest;
        return;
      }
      f->unit = Unit::kHandshake;
      if (!(f->caps & 1)) f->ext_caps = Le(p.substr(28), 4);  // MariaDB: no CLIENT_MYSQL bit
      string_view rest = p.substr(32);
      f->user = Name(CString(&rest));
      // The authentication response: skipped unread.
      uint64_t n = 0;
      if (f->caps & kClientPluginAuthLenenc) {
        if (!Lenenc(&rest, &n)) return;
      } else if (f->caps & kClientSecureConnection) {
        if (rest.empty()) return;
        n = static_cast<uint8_t>(rest[0]);
        rest.remove_prefix(1);
      } else {
        CString(&rest);
      }
      if (n > rest.size()) return;
      rest.remove_prefix(n);
      if (f->caps & kClientConnectWithDb) f->database = Name(CString(&rest));
    });
    if (s == Step::kProgress && f->unit == Unit::kSslRequest) f->ends_stream = true;
    return s;
  }
  if (seq != 0) {
    f->unit = Unit::kData;  // never read: auth data, a file's bytes
    return Packet(buf, f, len, 0, done, [](string_view) {});
  }
  if (len == 0) return Step::kInvalid;
  if (buf->size() < 5) return Step::kNeedMore;
  const uint8_t cmd = static_cast<uint8_t>((*buf)[4]);
  f->command = cmd;
  const size_t prefix = std::min<size_t>(len, kMaxPrefixRead);
  auto text = [&](string_view p) {
    p.remove_prefix(1);
    if (cmd == 0x03 && (st.caps & kClientQueryAttributes)) {
      uint64_t params = 0, sets = 0;
      if (!Lenenc(&p, &params) || !Lenenc(&p, &sets) || params != 0) {
        f->query_unknown = true;
        return;
      }
    }
    f->query = sql::QueryText(p, sql::Dialect::kMySql, st.raw_query_text);
    f->operation = std::string(sql::FirstKeyword(p));
  };
  switch (cmd) {
    case 0x03:
      f->unit = Unit::kQuery;
      return Packet(buf, f, len, std::min<size_t>(len, kMaxQueryRead + 1), done, text);
    case 0x16:
      f->unit = Unit::kPrepare;
      return Packet(buf, f, len, std::min<size_t>(len, kMaxQueryRead + 1), done, text);
    case 0x17:
    case 0x18:
    case 0x19:
      f->unit = cmd == 0x17 ? Unit::kExecute : cmd == 0x18 ? Unit::kLongData : Unit::kStmtClose;
      if (len < 5) return Step::kInvalid;
      return Packet(buf, f, len, prefix, done, [&](string_view p) { f->statement_id = Le(p.substr(1), 4); });
    case 0x02:
      f->unit = Unit::kInitDb;
      return Packet(buf, f, len, std::min<size_t>(len, 1 + Record::kMaxNameBytes), done,
                    [&](string_view p) { f->database = Name(p.substr(1)); });
    case 0x01: f->unit = Unit::kQuit; return Packet(buf, f, len, 0, done, [](string_view) {});
    default:
      if (cmd > 0x1F && cmd != 0xFA && cmd != 0xFE) return Step::kInvalid;  // no such command
      f->unit = Unit::kOther;
      return Packet(buf, f, len, 0, done, [](string_view) {});
  }
}

// The state after a prepare's parameter definitions: its column definitions, or the end.
bool AfterParams(Frame* f) {
  if (f->prep_columns == 0) return true;
  f->answer = Answer::kPrepColumns;
  f->count = f->prep_columns;
  return false;
}

Step StepResponse(string_view* buf, Frame* f, const State& st) {
  const uint32_t len = Le(*buf, 3);
  const uint8_t seq = static_cast<uint8_t>((*buf)[3]);
  const bool deprecate_eof = (st.caps & kClientDeprecateEof) != 0;
  if (!f->started) {
    if (!st.greeting_seen && seq == 0) {
      f->kind = Kind::kGreeting;
      return Packet(buf, f, len, std::min<size_t>(len, kMaxPrefixRead), true,
                    [&](string_view p) { f->mariadb = p.find("MariaDB") != string_view::npos; });
    }
    if (!st.auth_done && st.greeting_seen) {
      f->answer = Answer::kAuth;
    } else if (seq != 1) {
      f->kind = Kind::kStray;
      return Packet(buf, f, len, 0, true, [](string_view) {});
    }
  } else if (f->answer != Answer::kAuth && f->answer != Answer::kInfile && seq != f->next_seq) {
    f->phase = Phase::kDone;  // the next answer begins: this one ended (read wrong)
    return Step::kDone;
  }
  if (len == 0) {
    if (!f->started) return Step::kInvalid;
    return Packet(buf, f, len, 0, false, [](string_view) {});
  }
  if (buf->size() < 5) return Step::kNeedMore;
  const uint8_t h = static_cast<uint8_t>((*buf)[4]);
  const bool in_list = f->answer == Answer::kColumns || f->answer == Answer::kRows ||
                       f->answer == Answer::kParams || f->answer == Answer::kPrepColumns;
  // A definition or a row is skipped unread; anything else is small and its prefix read.
  const size_t read = in_list && h != 0xFE && h != 0xFF ? 0 : std::min<size_t>(len, kMaxPrefixRead);
  bool last = false;
  auto decide = [&](string_view p) {
    const bool eof_like = h == 0xFE && len < 9;
    switch (f->answer) {
      case Answer::kAuth:
        if (h == 0x00) f->auth_ok = true;
        if (h == 0xFF) ReadError(p, f);
        last = h == 0x00 || h == 0xFF;
        return;
      case Answer::kInfile:
        if (h == 0xFF) ReadError(p, f);
        last = true;
        return;
      case Answer::kFirst:
        if (h == 0x00 && len == 12 && f->result_sets == 0 && Byte(p, 9) == 0) {
          // A prepare's answer: statement id, columns, parameters, a zero, warnings.
          f->prepare_ok = true;
          f->statement_id = Le(p.substr(1), 4);
          f->prep_columns = static_cast<uint16_t>(Le(p.substr(5), 2));
          f->count = Le(p.substr(7), 2);
          if (f->count > 0) {
            f->answer = Answer::kParams;
          } else {
            last = AfterParams(f);
          }
          return;
        }
        if (h == 0x00 && len >= 7) {
          ++f->result_sets;
          last = !(OkStatus(p) & kServerMoreResults);
          return;
        }
        if (h == 0xFF) {
          if (Le(p.substr(1), 2) == 0xFFFF) return;  // a MariaDB progress report: more follows
          ReadError(p, f);
          last = true;
          return;
        }
        if (eof_like) {
          last = !(EofStatus(p) & kServerMoreResults);
          return;
        }
        if (h == 0xFB) {
          f->answer = Answer::kInfile;
          return;
        }
        {
          // A column count: a packet holding only a length-encoded integer (and, with
          // MariaDB's metadata cache, whether the definitions follow). Anything else is a
          // string answer (COM_STATISTICS).
          string_view q = p;
          uint64_t n = 0;
          const bool cache = (st.ext_caps & kMariaDbCacheMetadata) != 0;
          if (!Lenenc(&q, &n) || n == 0 || q.size() != (cache ? 1u : 0u) || p.size() != len) {
            last = true;
            return;
          }
          ++f->result_sets;
          f->count = n;
          // Definitions skipped (the client cached them): their EOF still comes.
          const bool skipped = cache && q[0] == 0;
          f->answer = !skipped ? Answer::kColumns : deprecate_eof ? Answer::kRows : Answer::kColumnsEof;
        }
        return;
      case Answer::kColumns:
        if (h == 0xFF) {
          ReadError(p, f);
          last = true;
          return;
        }
        if (--f->count == 0) f->answer = deprecate_eof ? Answer::kRows : Answer::kColumnsEof;
        return;
      case Answer::kColumnsEof:
        if (h == 0xFF) {
          ReadError(p, f);
          last = true;
          return;
        }
        if (eof_like && (EofStatus(p) & kServerCursorExists)) {
          last = true;  // rows come with COM_STMT_FETCH
          return;
        }
        if (!eof_like) ++f->data_rows;
        f->answer = Answer::kRows;
        return;
      case Answer::kRows:
        if (h == 0xFF) {
          if (Le(p.substr(1), 2) == 0xFFFF) return;
          ReadError(p, f);
          last = true;
          return;
        }
        if (h == 0xFE && len < kMaxPayload) {
          const uint16_t status = deprecate_eof ? OkStatus(p) : EofStatus(p);
          if (status & kServerMoreResults) {
            f->answer = Answer::kFirst;
          } else {
            last = true;
          }
          return;
        }
        ++f->data_rows;
        return;
      case Answer::kParams:
        if (--f->count == 0) {
          if (deprecate_eof) {
            last = AfterParams(f);
          } else {
            f->answer = Answer::kParamsEof;
          }
        }
        return;
      case Answer::kParamsEof: last = AfterParams(f); return;
      case Answer::kPrepColumns:
        if (--f->count == 0) {
          if (deprecate_eof) {
            last = true;
          } else {
            f->answer = Answer::kPrepColumnsEof;
          }
        }
        return;
      case Answer::kPrepColumnsEof: last = true; return;
    }
  };
  if (buf->size() < 4 + read) return Step::kNeedMore;
  decide(buf->substr(4, read));
  return Packet(buf, f, len, read, last, [](string_view) {});
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
    if (!f->continued && f->done_after_skip) {
      f->phase = Phase::kDone;
      return Step::kDone;
    }
    f->phase = Phase::kPacket;
    return Step::kProgress;
  }
  const bool response = type == MessageType::kResponse;
  if (buf->size() < 4) {
    // The server closed after a packet that ends nothing: the close ends the answer.
    if (response && f->started && !f->continued && buf->empty() && st.ctx.end_of_stream) {
      f->phase = Phase::kDone;
      return Step::kDone;
    }
    return Step::kNeedMore;
  }
  if (f->continued) {
    // The rest of a payload of 0xFFFFFF bytes: opaque.
    const uint32_t len = Le(*buf, 3);
    const uint8_t seq = static_cast<uint8_t>((*buf)[3]);
    if (seq != f->next_seq) return Step::kInvalid;
    return Packet(buf, f, len, 0, f->done_after_skip, [](string_view) {});
  }
  if (response && !f->started && !st.auth_done && st.greeting_seen && st.tls) {
    f->kind = Kind::kTls;  // the server's TLS handshake: nothing more to read
    f->ends_stream = true;
    f->started = true;
    f->phase = Phase::kDone;
    return Step::kDone;
  }
  return response ? StepResponse(buf, f, st) : StepRequest(buf, f, st);
}

// Could a packet that starts a frame begin at b[0]? kMaybe when too short to say. Each
// field is judged as soon as its bytes are there: a cut-off candidate must be one
// ParseFrame waits on too (event_parser.h). A 4-byte header with length 0 or another
// sequence id would otherwise parse at once (an empty data packet, a stray answer) when a
// syscall ends after it, and be rejected when the next byte comes with it.
Start MatchPacket(MessageType type, string_view b) {
  if (b.size() < 3) return Start::kMaybe;
  if (b[2] != '\0' && static_cast<uint8_t>(b[2]) != 0xFF) return Start::kNo;  // < 64 KiB, or a full packet
  const uint32_t len = Le(b, 3);
  if (len == 0) return Start::kNo;
  if (b.size() < 4) return Start::kMaybe;
  const uint8_t seq = static_cast<uint8_t>(b[3]);
  if (seq != (type == MessageType::kRequest ? 0 : 1)) return Start::kNo;
  if (b.size() < 5) return Start::kMaybe;  // ParseFrame waits for the command or header byte
  const uint8_t h = static_cast<uint8_t>(b[4]);
  if (type == MessageType::kRequest) {
    const bool known = (h >= 0x01 && h <= 0x1F) || h == 0xFA;
    return known ? Start::kYes : Start::kNo;
  }
  if (h == 0x00) return len >= 7 ? Start::kYes : Start::kNo;
  if (h == 0xFF) return len >= 3 ? Start::kYes : Start::kNo;
  if (h == 0xFE) return len < 9 ? Start::kYes : Start::kNo;
  if (h >= 0x01 && h < 0xFB) return len <= 2 ? Start::kYes : Start::kNo;
  return Start::kNo;
}

// The statement an execute (request seq `seq`) runs: prepared, and not closed before it.
const Statement* Resolve(const State& st, uint32_t id, uint64_t seq) {
  const auto it = st.statements.find(id == kLastPrepared ? st.last_prepared : id);
  if (it == st.statements.end() || !it->second.prepared) return nullptr;
  if (it->second.closed_at != 0 && it->second.closed_at < seq) return nullptr;
  return &it->second;
}

// Makes room for one more statement: past the bound the lowest id is forgotten.
Statement& StatementFor(State* st, uint32_t id) {
  if (st->statements.size() >= kMaxStatements && !st->statements.count(id)) {
    st->statements.erase(st->statements.begin());
  }
  return st->statements[id];
}

struct Pairing {
  using Frame = mysql::Frame;
  using State = mysql::State;
  using Record = mysql::Record;

  static bool ExpectsAnswer(const Frame& request) { return request.ExpectsAnswer(); }
  static bool Fits(const Frame& request, const Frame& answer) {
    return (request.unit == Unit::kHandshake) == (answer.answer == Answer::kAuth);
  }
  static Screen ScreenAnswer(const Fifo<Frame>&, const Frame& answer, State*) {
    switch (answer.kind) {
      case Kind::kAnswer: return Screen::kPair;
      case Kind::kStray: return Screen::kDrop;
      case Kind::kGreeting:
      case Kind::kTls: break;
    }
    return Screen::kSkip;
  }
  static Record Paired(Frame* request, Frame* answer, State* st) {
    Record r = mysql::RecordWithoutAnswer(request);
    r.response_missing = false;
    r.response = answer->timing;
    r.errored = answer->errored;
    r.error_code = answer->error_code;
    r.sqlstate = std::move(answer->sqlstate);
    r.data_rows = answer->data_rows;
    r.result_sets = answer->result_sets;
    r.mariadb = answer->mariadb;
    const bool ok = !answer->errored;
    switch (request->unit) {
      case Unit::kPrepare:
        if (ok && answer->prepare_ok) {
          Statement& stmt = StatementFor(st, answer->statement_id);
          stmt.query = r.query;
          stmt.operation = r.operation;
          stmt.prepared = true;
          st->last_prepared = answer->statement_id;
          r.statement_id = answer->statement_id;
        }
        break;
      case Unit::kExecute:
        if (r.query_unknown) {
          if (const Statement* stmt = Resolve(*st, r.statement_id, r.seq)) {
            r.query = stmt->query;
            r.operation = stmt->operation;
            r.query_unknown = false;
          }
        }
        break;
      case Unit::kInitDb:
        if (ok) st->database = r.database;
        break;
      case Unit::kQuery:
        if (ok && !request->use_schema.empty()) st->database = request->use_schema;
        break;
      case Unit::kHandshake:
        if (ok && answer->auth_ok && !r.database.empty()) st->database = r.database;
        break;
      default: break;
    }
    if (request->unit != Unit::kInitDb && request->unit != Unit::kHandshake) r.database = st->database;
    return r;
  }
  static Record RecordWithoutAnswer(Frame* request) { return mysql::RecordWithoutAnswer(request); }
};

// "USE name" (sanitised text): the schema it switches to, else empty.
std::string UseSchema(string_view query) {
  if (query.size() < 5) return {};
  const string_view kw = query.substr(0, 4);
  if (!(kw == "USE " || kw == "use " || kw == "Use ")) return {};
  string_view name = query.substr(4);
  while (!name.empty() && (name.back() == ';' || name.back() == ' ')) name.remove_suffix(1);
  if (name.size() >= 2 && name.front() == '`' && name.back() == '`') name = name.substr(1, name.size() - 2);
  if (name.empty() || name.find_first_of(" `?") != string_view::npos) return {};
  return Name(name);
}

}  // namespace

ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
  if (!frame->started && frame->phase == Phase::kPacket) frame->is_response = type == MessageType::kResponse;
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
  for (;;) {
    switch (StepFrame(type, buf, frame, *state)) {
      case Step::kProgress: continue;
      case Step::kDone: return ParseState::kSuccess;
      case Step::kNeedMore: return buf->size() != before ? ParseState::kSuccess : ParseState::kNeedsMoreData;
      case Step::kInvalid: return buf->size() != before ? ParseState::kSuccess : ParseState::kInvalid;
    }
  }
}

size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State*) {
  for (size_t pos = start; pos < buf.size(); ++pos) {
    if (MatchPacket(type, buf.substr(pos)) != Start::kNo) return pos;
  }
  return string_view::npos;
}

bool FrameComplete(const Frame& frame) {
  return frame.phase == Phase::kDone;
}

uint64_t OpaqueRemaining(const Frame& frame) {
  return frame.phase == Phase::kSkip ? frame.remaining : 0;
}

void SkipHole(Frame* frame, uint64_t n) {
  if (frame->phase != Phase::kSkip) return;
  frame->remaining -= std::min(n, frame->remaining);
  if (frame->remaining == 0) {
    frame->phase = !frame->continued && frame->done_after_skip ? Phase::kDone : Phase::kPacket;
  }
}

void FinishFrame(MessageType type, Frame* frame, State* state) {
  if (type == MessageType::kResponse) {
    frame->after_loss = std::exchange(state->response_loss, false);
    if (frame->kind == Kind::kGreeting) {
      state->greeting_seen = true;
      state->mariadb = frame->mariadb;
    } else {
      // The greeting before this answer on the response stream, fixed now: at pairing the
      // state may already hold a later greeting's (how far that stream was parsed then
      // depends on where syscalls cut it).
      frame->mariadb = state->mariadb;
    }
    if (frame->kind == Kind::kAnswer && frame->answer == Answer::kAuth) {
      state->auth_done = true;
      // Compressed packets follow the login's answer: not parsed (README).
      if (state->compressed) frame->ends_stream = true;
    }
    return;
  }
  frame->seq = state->next_seq++;
  frame->after_loss = std::exchange(state->request_loss, false);
  switch (frame->unit) {
    case Unit::kHandshake:
    case Unit::kSslRequest:
      state->handshake_seen = true;
      state->caps = frame->caps;
      state->ext_caps = frame->ext_caps;
      if (frame->unit == Unit::kSslRequest) state->tls = true;
      if (frame->unit == Unit::kHandshake && (frame->caps & (kClientCompress | kClientZstd))) {
        // The client's packets after this one (auth data, then compressed commands) are
        // not parsed; the login's answer still pairs with it.
        state->compressed = true;
        frame->ends_stream = true;
      }
      break;
    case Unit::kStmtClose:
      // Executes sent before it may still wait for their answers: they keep its text.
      StatementFor(state, frame->statement_id).closed_at = frame->seq;
      break;
    case Unit::kExecute:
      if (const Statement* stmt = Resolve(*state, frame->statement_id, frame->seq)) {
        frame->query = stmt->query;
        frame->operation = stmt->operation;
      } else {
        frame->query_unknown = true;  // until its prepare's answer pairs (Pairing::Paired)
      }
      break;
    case Unit::kQuery: frame->use_schema = UseSchema(frame->query); break;
    default: break;
  }
  if (frame->unit != Unit::kInitDb && frame->unit != Unit::kHandshake) frame->database = state->database;
}

void OnLoss(MessageType type, State* state) {
  if (type == MessageType::kRequest) {
    state->request_loss = true;
    state->handshake_seen = true;  // joined or resynchronised: no longer the stream's start
  } else {
    state->response_loss = true;
    state->greeting_seen = true;
    state->auth_done = true;
  }
}

Record RecordWithoutAnswer(Frame* request) {
  Record r;
  r.seq = request->seq;
  r.unit = request->unit;
  r.command = request->command;
  r.database = std::move(request->database);
  r.user = std::move(request->user);
  r.query = std::move(request->query);
  r.operation = std::move(request->operation);
  r.statement_id = request->statement_id;
  r.query_unknown = request->query_unknown;
  r.request = request->timing;
  r.response_missing = request->ExpectsAnswer();
  r.unanswered = Unanswered::kNotCaptured;
  return r;
}

RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state) {
  return StitchInOrder<Pairing>(requests, responses, state);
}

Start LooksLikeRequest(std::string_view b) {
  // HandshakeResponse41 / SSLRequest: length (32 .. 8 KiB), sequence id 1, capabilities
  // with CLIENT_PROTOCOL_41, max packet size, charset, 19 zero bytes. 8 KiB holds the
  // user, auth data, database, plugin name and connection attributes of real clients
  // (under 1 KiB), and keeps the second byte below 0x20: no text protocol's first bytes
  // wait on this one.
  for (size_t i = 0; i < b.size() && i < 32; ++i) {
    const uint8_t c = static_cast<uint8_t>(b[i]);
    bool ok = true;
    if (i == 1) ok = c < 0x20;
    if (i == 2) ok = c == 0;
    if (i == 3) ok = c == 1;
    if (i == 5) ok = (c & (kClientProtocol41 >> 8)) != 0;
    if (i >= 13) ok = c == 0;
    if (!ok) return Start::kNo;
  }
  if (b.size() < 32) return Start::kMaybe;
  const uint32_t len = Le(b, 3);
  if (len < 32) return Start::kNo;
  if (len == 32) return (Le(b.substr(4), 4) & kClientSsl) ? Start::kYes : Start::kNo;
  return Start::kYes;
}

}  // namespace kspan::protocols::mysql
