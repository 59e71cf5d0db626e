#include "protocols/redis/parse.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>
#include <vector>

#include "protocols/common/in_order_stitch.h"

namespace kspan::protocols::redis {
namespace {

using std::string_view;

// Command names kspan recognises a connection by, upper case and sorted (a unit test checks
// the order). Any plausible name parses once the connection is known to be Redis.
constexpr string_view kKnownCommands[] = {
    "ACL",         "APPEND",        "AUTH",         "BGREWRITEAOF", "BGSAVE",       "BITCOUNT",
    "BITFIELD",    "BITOP",         "BITPOS",       "BLMOVE",       "BLMPOP",       "BLPOP",
    "BRPOP",       "BRPOPLPUSH",    "BZMPOP",       "BZPOPMAX",     "BZPOPMIN",     "CLIENT",
    "CLUSTER",     "COMMAND",       "CONFIG",       "COPY",         "DBSIZE",       "DEBUG",
    "DECR",        "DECRBY",        "DEL",          "DISCARD",      "DUMP",         "ECHO",
    "EVAL",        "EVALSHA",       "EVALSHA_RO",   "EVAL_RO",      "EXEC",         "EXISTS",
    "EXPIRE",      "EXPIREAT",      "EXPIRETIME",   "FCALL",        "FCALL_RO",     "FLUSHALL",
    "FLUSHDB",     "FUNCTION",      "GEOADD",       "GEODIST",      "GEOHASH",      "GEOPOS",
    "GEORADIUS",   "GEOSEARCH",     "GET",          "GETBIT",       "GETDEL",       "GETEX",
    "GETRANGE",    "GETSET",        "HDEL",         "HELLO",        "HEXISTS",      "HGET",
    "HGETALL",     "HINCRBY",       "HINCRBYFLOAT", "HKEYS",        "HLEN",         "HMGET",
    "HMSET",       "HRANDFIELD",    "HSCAN",        "HSET",         "HSETNX",       "HSTRLEN",
    "HVALS",       "INCR",          "INCRBY",       "INCRBYFLOAT",  "INFO",         "KEYS",
    "LASTSAVE",    "LATENCY",       "LCS",          "LINDEX",       "LINSERT",      "LLEN",
    "LMOVE",       "LMPOP",         "LOLWUT",       "LPOP",         "LPOS",         "LPUSH",
    "LPUSHX",      "LRANGE",        "LREM",         "LSET",         "LTRIM",        "MEMORY",
    "MGET",        "MIGRATE",       "MODULE",       "MONITOR",      "MOVE",         "MSET",
    "MSETNX",      "MULTI",         "OBJECT",       "PERSIST",      "PEXPIRE",      "PEXPIREAT",
    "PEXPIRETIME", "PFADD",         "PFCOUNT",      "PFMERGE",      "PING",         "PSETEX",
    "PSUBSCRIBE",  "PTTL",          "PUBLISH",      "PUBSUB",       "PUNSUBSCRIBE", "QUIT",
    "RANDOMKEY",   "READONLY",      "READWRITE",    "RENAME",       "RENAMENX",     "REPLICAOF",
    "RESET",       "RESTORE",       "ROLE",         "RPOP",         "RPOPLPUSH",    "RPUSH",
    "RPUSHX",      "SADD",          "SAVE",         "SCAN",         "SCARD",        "SCRIPT",
    "SDIFF",       "SDIFFSTORE",    "SELECT",       "SET",          "SETBIT",       "SETEX",
    "SETNX",       "SETRANGE",      "SINTER",       "SINTERCARD",   "SINTERSTORE",  "SISMEMBER",
    "SLOWLOG",     "SMEMBERS",      "SMISMEMBER",   "SMOVE",        "SORT",         "SORT_RO",
    "SPOP",        "SPUBLISH",      "SRANDMEMBER",  "SREM",         "SSCAN",        "SSUBSCRIBE",
    "STRLEN",      "SUBSCRIBE",     "SUNION",       "SUNIONSTORE",  "SUNSUBSCRIBE", "SWAPDB",
    "TIME",        "TOUCH",         "TTL",          "TYPE",         "UNLINK",       "UNSUBSCRIBE",
    "UNWATCH",     "WAIT",          "WATCH",        "XACK",         "XADD",         "XAUTOCLAIM",
    "XCLAIM",      "XDEL",          "XGROUP",       "XINFO",        "XLEN",         "XPENDING",
    "XRANGE",      "XREAD",         "XREADGROUP",   "XREVRANGE",    "XTRIM",        "ZADD",
    "ZCARD",       "ZCOUNT",        "ZDIFF",        "ZINCRBY",      "ZINTER",       "ZINTERSTORE",
    "ZRANGE",      "ZRANGEBYSCORE", "ZRANK",        "ZREM",         "ZREVRANGE",    "ZSCORE",
    "ZUNION",      "ZUNIONSTORE",
};
static_assert(std::is_sorted(std::begin(kKnownCommands), std::end(kKnownCommands)));

// Commands whose first argument is a fixed subcommand word (kept: CLIENT SETNAME).
constexpr std::array<string_view, 16> kContainers = {
    "ACL",    "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG",   "FUNCTION", "LATENCY",
    "MEMORY", "MODULE", "OBJECT",  "PUBSUB",  "SCRIPT", "SLOWLOG", "XGROUP",   "XINFO",
};

constexpr std::array<string_view, 6> kConfirmations = {"subscribe",    "unsubscribe", "psubscribe",
                                                       "punsubscribe", "ssubscribe",  "sunsubscribe"};

char Upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}
char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool EqualsUpper(string_view s, string_view upper) {
  if (s.size() != upper.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (Upper(s[i]) != upper[i]) return false;
  }
  return true;
}

bool IsContainer(string_view command) {
  return std::any_of(kContainers.begin(), kContainers.end(),
                     [&](string_view c) { return EqualsUpper(command, c); });
}

// SUBSCRIBE, PSUBSCRIBE, ... as the lower-case kind their confirmations carry; "" otherwise.
string_view SubscribeKind(string_view command) {
  for (string_view k : kConfirmations) {
    if (command.size() != k.size()) continue;
    bool eq = true;
    for (size_t i = 0; i < k.size() && eq; ++i) eq = Lower(command[i]) == k[i];
    if (eq) return k;
  }
  return "";
}

bool NameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-' || c == '|' || c == ':';
}

// A command or subcommand name as Redis and its modules spell them (GET, JSON.SET,
// FT.SEARCH): a letter, then name characters, at most Record::kMaxNameBytes.
bool PlausibleName(string_view s) {
  if (s.empty() || s.size() > Record::kMaxNameBytes) return false;
  if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) return false;
  return std::all_of(s.begin(), s.end(), NameChar);
}

// A command name of `len` bytes of which `name` holds what has arrived: kNo at the first
// byte no name has (however little arrived), kMaybe while cut, kYes once whole and
// plausible. One rule for the resynchronisation candidate (MatchRequestStart) and the
// strict name after garbage (StepValue), so where the bytes are cut never decides.
Start MatchName(string_view name, size_t len) {
  if (!std::all_of(name.begin(), name.end(), NameChar)) return Start::kNo;
  if (name.size() < len) return Start::kMaybe;
  return PlausibleName(name) ? Start::kYes : Start::kNo;
}

bool ParseInt(string_view s, int64_t* out) {
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = neg ? -v : v;
  return true;
}

enum class LineStatus : uint8_t { kFound, kNeedMore, kTooLong };

// The line at the start of `buf`, without its end. RESP lines end with CRLF; an inline
// command may end with a bare LF (Redis accepts it). `used` counts the line end.
LineStatus ReadLine(string_view buf, size_t max, bool bare_lf, string_view* line, size_t* used) {
  const size_t limit = std::min(buf.size(), max + 2);
  const size_t lf = buf.substr(0, limit).find('\n');
  if (lf == string_view::npos) return buf.size() >= max + 2 ? LineStatus::kTooLong : LineStatus::kNeedMore;
  if (lf > 0 && buf[lf - 1] == '\r') {
    *line = buf.substr(0, lf - 1);
  } else if (bare_lf) {
    *line = buf.substr(0, lf);
  } else {
    return LineStatus::kTooLong;  // a RESP line without its CR: not RESP
  }
  if (line->find('\r') != string_view::npos) return LineStatus::kTooLong;
  *used = lf + 1;
  return LineStatus::kFound;
}

// An error's first word, kept when it looks like Redis's upper-case prefixes (ERR,
// WRONGTYPE, NOAUTH, ...); "_OTHER" for anything else (it could be a script's text).
std::string ErrorPrefix(string_view message) {
  const string_view word = message.substr(0, message.find(' '));
  if (word.empty() || word.size() > Record::kMaxNameBytes) return "_OTHER";
  for (char c : word) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return "_OTHER";
  }
  return std::string(word);
}

enum class Step : uint8_t { kProgress, kDone, kNeedMore, kInvalid, kIgnored };

bool IsAttribute(const Frame& f, size_t level) {
  return (f.attribute_levels >> level) & 1u;
}

// The value at the current position is element `top_index` of the top aggregate (not
// inside an attribute).
bool AtTopElement(const Frame& f) {
  return f.depth == 1 && !IsAttribute(f, 0);
}

// A value finished: close the aggregates it completed.
Step ValueDone(Frame* f) {
  for (;;) {
    if (f->depth == 0) {
      f->phase = Phase::kDone;
      return Step::kDone;
    }
    const size_t level = f->depth - 1;
    if (level == 0 && !IsAttribute(*f, 0)) ++f->top_index;
    if (--f->left[level] > 0) {
      f->phase = Phase::kType;
      return Step::kProgress;
    }
    const bool attribute = IsAttribute(*f, level);
    f->attribute_levels &= static_cast<uint16_t>(~(1u << level));
    --f->depth;
    if (attribute) {
      // The value it describes follows and is the one that counts.
      f->phase = Phase::kType;
      return Step::kProgress;
    }
  }
}

// What a kept bulk string (or simple string) at the current position means.
void Keep(Frame* f, char type, string_view s) {
  if (type == '!' || (type == '-' && f->is_response)) {
    if (f->error_prefix.empty()) {
      f->error_prefix = ErrorPrefix(s);
      f->nested_error = f->depth > 0;
    }
    return;
  }
  if (!f->is_response) {
    if (f->top_index == 0) {
      f->command = PlausibleName(s) ? std::string(s) : "_OTHER";
    } else if (f->top_index == 1) {
      if (EqualsUpper(f->command, "SELECT")) {
        int64_t db = 0;
        if (s.size() <= 10 && !s.empty() && s[0] != '-' && s[0] != '+' && ParseInt(s, &db)) f->select_db = db;
      } else if (IsContainer(f->command) && PlausibleName(s)) {
        f->subcommand = std::string(s);
      }
    } else if (f->top_index == 2 && EqualsUpper(f->command, "CLIENT") &&
               EqualsUpper(f->subcommand, "REPLY")) {
      if (EqualsUpper(s, "ON")) f->reply_mode = ReplyMode::kOn;
      if (EqualsUpper(s, "OFF")) f->reply_mode = ReplyMode::kOff;
      if (EqualsUpper(s, "SKIP")) f->reply_mode = ReplyMode::kSkip;
    }
    return;
  }
  // A reply's first element: a pub/sub kind or a PING's "pong" (at most 16 letters).
  if (AtTopElement(*f) && f->top_index == 0 && s.size() <= 16 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      })) {
    f->head_word.assign(s);
    for (char& c : f->head_word) c = Lower(c);
  }
}

// Whether a bulk string at the current position is read whole to keep part of it.
bool WantKept(const Frame& f, char type) {
  if (type == '!') return f.error_prefix.empty();
  if (!f.is_response) {
    if (f.top_index == 0) return true;
    if (f.top_index == 1) return EqualsUpper(f.command, "SELECT") || IsContainer(f.command);
    return f.top_index == 2 && EqualsUpper(f.command, "CLIENT") && EqualsUpper(f.subcommand, "REPLY");
  }
  return type == '$' && AtTopElement(f) && f.top_index == 0 && (f.type == '*' || f.type == '>');
}

// An inline command: one line of words (Redis's processInlineBuffer), LF or CRLF ended.
Step StepInline(string_view* buf, Frame* f) {
  const char c0 = (*buf)[0];
  const bool blank = c0 == '\r' || c0 == '\n' || c0 == ' ' || c0 == '\t';
  if (!blank && !((c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z'))) return Step::kInvalid;
  string_view line;
  size_t used = 0;
  switch (ReadLine(*buf, kMaxLine, /*bare_lf=*/true, &line, &used)) {
    case LineStatus::kNeedMore: return Step::kNeedMore;
    case LineStatus::kTooLong: return Step::kInvalid;
    case LineStatus::kFound: break;
  }
  std::vector<string_view> words;
  size_t i = 0;
  while (i < line.size() && words.size() < 4) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  if (words.empty()) {
    buf->remove_prefix(used);  // an empty line: Redis skips it
    return Step::kIgnored;
  }
  if (!PlausibleName(words[0])) return Step::kInvalid;
  // Count every word (the loop above stopped at four).
  uint64_t count = 0;
  bool in_word = false;
  for (char c : line) {
    const bool space = c == ' ' || c == '\t';
    if (!space && !in_word) ++count;
    in_word = !space;
  }
  f->inline_command = true;
  f->args = count - 1;
  f->type = '*';
  f->depth = 1;  // Keep() reads the words as the elements of a command array
  for (size_t w = 0; w < words.size() && w < 3; ++w) {
    f->top_index = w;
    Keep(f, '$', words[w]);
  }
  f->depth = 0;
  f->top_index = count;
  buf->remove_prefix(used);
  f->phase = Phase::kDone;
  return Step::kDone;
}

Step StepValue(string_view* buf, Frame* f) {
  if (buf->empty()) return Step::kNeedMore;
  const char t = (*buf)[0];
  const bool top = f->depth == 0;
  if (!f->is_response) {
    if (top && t != '*') return StepInline(buf, f);
    if (!top && t != '$') return Step::kInvalid;  // Redis: "expected '$'"
  }
  string_view line;
  size_t used = 0;
  switch (ReadLine(*buf, kMaxLine, /*bare_lf=*/false, &line, &used)) {
    case LineStatus::kNeedMore: return Step::kNeedMore;
    case LineStatus::kTooLong: return Step::kInvalid;
    case LineStatus::kFound: break;
  }
  if (line.empty()) return Step::kInvalid;  // "\r\n" where a type byte belongs
  const string_view body = line.substr(1);
  int64_t n = 0;
  switch (t) {
    case '+':
      if (top) {
        f->type = t;
        f->ok = body == "OK";
        f->queued = body == "QUEUED";
      } else {
        Keep(f, t, body);
      }
      buf->remove_prefix(used);
      return ValueDone(f);
    case '-':
      if (top) f->type = t;
      Keep(f, t, body);
      buf->remove_prefix(used);
      return ValueDone(f);
    case ':':
      if (!ParseInt(body, &n)) return Step::kInvalid;
      if (top) f->type = t;
      if (AtTopElement(*f) && f->top_index == 2) {
        f->third_is_int = true;
        f->third_int = n;
      }
      buf->remove_prefix(used);
      return ValueDone(f);
    case '_':
      if (!body.empty()) return Step::kInvalid;
      if (top) {
        f->type = t;
        f->null = true;
      }
      buf->remove_prefix(used);
      return ValueDone(f);
    case '#':
      if (body != "t" && body != "f") return Step::kInvalid;
      if (top) f->type = t;
      buf->remove_prefix(used);
      return ValueDone(f);
    case ',':
    case '(':
      if (body.empty() || body.find(' ') != string_view::npos) return Step::kInvalid;
      if (t == '(' && !ParseInt(body.substr(0, std::min<size_t>(body.size(), 2)), &n)) return Step::kInvalid;
      if (top) f->type = t;
      buf->remove_prefix(used);
      return ValueDone(f);
    case '$':
    case '!':
    case '=': {
      if (t == '$' && body == "-1" && f->is_response) {  // RESP2 null bulk
        if (top) {
          f->type = t;
          f->null = true;
        }
        buf->remove_prefix(used);
        return ValueDone(f);
      }
      if (!ParseInt(body, &n) || n < 0 || static_cast<uint64_t>(n) > kMaxBulk || body[0] == '+' ||
          body[0] == '-') {
        return Step::kInvalid;
      }
      if (!f->is_response && f->top_index == 0 && f->strict_name) {
        // After garbage, the command name is held to what a resynchronisation candidate's
        // must be (MatchRequestStart), so whether the bytes make a command never depends on
        // where a syscall cut the candidate (a cut-off candidate's first line is consumed
        // before its name arrives). On a clean stream an odd name is a command, "_OTHER".
        // Judged as its bytes arrive (MatchName): waiting for the whole length could hide
        // the next command behind a long one.
        if (body.size() > 2 || n < 1 || static_cast<size_t>(n) > Record::kMaxNameBytes) return Step::kInvalid;
        switch (MatchName(buf->substr(used, static_cast<size_t>(n)), static_cast<size_t>(n))) {
          case Start::kNo: return Step::kInvalid;
          case Start::kMaybe: return Step::kNeedMore;
          case Start::kYes: break;
        }
      }
      if (t == '=' && n < 4) return Step::kInvalid;  // "txt:" comes first
      const uint64_t len = static_cast<uint64_t>(n);
      if (top) f->type = t;
      if (WantKept(*f, t) && len <= kMaxKeptBulk) {
        if (buf->size() < used + len + 2) return Step::kNeedMore;
        if ((*buf)[used + len] != '\r' || (*buf)[used + len + 1] != '\n') return Step::kInvalid;
        Keep(f, t, buf->substr(used, len));
        buf->remove_prefix(used + len + 2);
        return ValueDone(f);
      }
      if (!f->is_response && f->top_index == 0) return Step::kInvalid;  // no command is that long
      if (t == '!' && f->error_prefix.empty()) {
        f->error_prefix = "_OTHER";  // too long to read whole
        f->nested_error = !top;
      }
      buf->remove_prefix(used);
      f->remaining = len + 2;
      f->phase = Phase::kBulk;
      return Step::kProgress;
    }
    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
      if (t == '*' && body == "-1" && f->is_response) {  // RESP2 null array
        if (top) {
          f->type = t;
          f->null = true;
        }
        buf->remove_prefix(used);
        return ValueDone(f);
      }
      if (!ParseInt(body, &n) || body[0] == '+' || (body[0] == '-' && f->is_response)) return Step::kInvalid;
      if (!f->is_response && n <= 0) {
        buf->remove_prefix(used);  // Redis ignores an empty command array
        return Step::kIgnored;
      }
      if (static_cast<uint64_t>(n) > kMaxElements) return Step::kInvalid;
      if (t == '>' && !top) return Step::kInvalid;  // pushes are top-level only
      const uint64_t values =
          (t == '%' || t == '|') ? 2 * static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
      if (top && t != '|') {
        f->type = t;
        f->elements = static_cast<uint64_t>(n);
        if (!f->is_response) f->args = static_cast<uint64_t>(n) - 1;
      }
      if (values > 0 && f->depth >= kMaxDepth) return Step::kInvalid;
      buf->remove_prefix(used);
      if (values == 0) {
        if (t == '|') {
          f->phase = Phase::kType;  // an empty attribute: the value follows
          return Step::kProgress;
        }
        return ValueDone(f);
      }
      f->left[f->depth] = values;
      if (t == '|') f->attribute_levels |= static_cast<uint16_t>(1u << f->depth);
      ++f->depth;
      f->phase = Phase::kType;
      return Step::kProgress;
    }
    default: return Step::kInvalid;
  }
}

Step StepBulk(string_view* buf, Frame* f) {
  if (buf->empty()) return Step::kNeedMore;
  if (f->remaining > 2) {
    const uint64_t n = std::min<uint64_t>(buf->size(), f->remaining - 2);
    buf->remove_prefix(n);
    f->remaining -= n;
    return Step::kProgress;
  }
  // The closing CRLF (checked where it was captured).
  const char want = f->remaining == 2 ? '\r' : '\n';
  if ((*buf)[0] != want) return Step::kInvalid;
  buf->remove_prefix(1);
  if (--f->remaining > 0) return Step::kProgress;
  return ValueDone(f);
}

Step StepFrame(string_view* buf, Frame* f) {
  switch (f->phase) {
    case Phase::kType: return StepValue(buf, f);
    case Phase::kBulk: return StepBulk(buf, f);
    case Phase::kDone: return Step::kDone;
  }
  return Step::kInvalid;
}

// Whether `s` (at a line start) begins a command array "*<n>\r\n$<len>\r\n<name>\r\n" with
// a plausible name (a known one when `known`). kMaybe: a consistent strict prefix.
Start MatchRequestStart(string_view s, bool known) {
  size_t i = 0;
  auto digits = [&](size_t max_digits) -> Start {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (i - from >= max_digits) return Start::kNo;
      ++i;
    }
    if (i == s.size()) return Start::kMaybe;
    return i > from ? Start::kYes : Start::kNo;
  };
  auto crlf = [&]() -> Start {
    for (char c : {'\r', '\n'}) {
      if (i == s.size()) return Start::kMaybe;
      if (s[i++] != c) return Start::kNo;
    }
    return Start::kYes;
  };
  if (s.empty()) return Start::kMaybe;
  if (s[i++] != '*') return Start::kNo;
  if (i < s.size() && s[i] == '0') return Start::kNo;
  if (Start r = digits(10); r != Start::kYes) return r;
  if (Start r = crlf(); r != Start::kYes) return r;
  if (i == s.size()) return Start::kMaybe;
  if (s[i++] != '$') return Start::kNo;
  const size_t len_at = i;
  if (Start r = digits(2); r != Start::kYes) return r;
  int64_t len = 0;
  if (!ParseInt(s.substr(len_at, i - len_at), &len) || len < 1 ||
      static_cast<size_t>(len) > Record::kMaxNameBytes) {
    return Start::kNo;
  }
  if (Start r = crlf(); r != Start::kYes) return r;
  const string_view name = s.substr(i, static_cast<size_t>(len));
  if (Start r = MatchName(name, static_cast<size_t>(len)); r != Start::kYes) return r;
  if (known && !IsKnownCommand(name)) return Start::kNo;
  i += name.size();
  if (Start r = crlf(); r != Start::kYes) return r;
  return Start::kYes;
}

// Whether `s` (at a line start) begins a reply: a type byte and a first line that fits it.
Start MatchReplyStart(string_view s) {
  static constexpr string_view kTypes = "+-:$*_#,(!=%~>|";
  if (s.empty()) return Start::kMaybe;
  if (kTypes.find(s[0]) == string_view::npos) return Start::kNo;
  // Simple strings and errors may be long; every other first line is a number or less.
  const size_t max = s[0] == '+' || s[0] == '-' ? kMaxLine : 24;
  string_view line;
  size_t used = 0;
  switch (ReadLine(s, max, /*bare_lf=*/false, &line, &used)) {
    case LineStatus::kNeedMore: return Start::kMaybe;
    case LineStatus::kTooLong: return Start::kNo;
    case LineStatus::kFound: break;
  }
  Frame f;
  f.is_response = true;
  std::string copy(line);
  copy += "\r\n";
  string_view b = copy;
  const Step st = StepValue(&b, &f);
  return st == Step::kInvalid || st == Step::kIgnored ? Start::kNo : Start::kYes;
}

// The in-order pairing (protocols/common/in_order_stitch.h) with Redis's hooks.
struct Pairing {
  using Frame = redis::Frame;
  using State = redis::State;
  using Record = redis::Record;

  static bool ExpectsAnswer(const Frame& request) { return request.ExpectsAnswer(); }

  // A SUBSCRIBE-family command is answered by its confirmation (or an error); anything
  // else by any reply.
  static bool Fits(const Frame& request, const Frame& answer) {
    if (!answer.error_prefix.empty() && !answer.nested_error) return true;
    if (!SubscribeKind(request.command).empty()) {
      return answer.shape == Shape::kConfirmation && answer.head_word == SubscribeKind(request.command);
    }
    return true;
  }

  static Screen ScreenAnswer(const Fifo<Frame>& requests, const Frame& answer, State* state) {
    const Frame* front = nullptr;
    for (const Frame& f : requests) {
      if (f.ExpectsAnswer()) {
        front = &f;
        break;
      }
    }
    const bool push = answer.type == '>';
    if (answer.shape == Shape::kConfirmation) {
      state->subscribed = answer.third_int > 0;
      if (answer.head_word == state->absorb_kind && (state->absorb_left > 0 || state->absorb_until_zero)) {
        // Another channel of the command already answered.
        if (state->absorb_left > 0) --state->absorb_left;
        if (answer.third_int == 0) state->absorb_until_zero = false;
        return Screen::kSkip;
      }
      if (front && SubscribeKind(front->command) == answer.head_word) return Screen::kPair;
      return push ? Screen::kDrop : Screen::kPair;  // RESP2: perhaps a plain array
    }
    if (push) {
      ++state->pushes;  // a message, an invalidation, ...: answers no command
      return Screen::kSkip;
    }
    if (answer.shape == Shape::kMessage && (state->subscribed || front == nullptr)) {
      state->subscribed = true;
      ++state->pushes;
      return Screen::kSkip;
    }
    return Screen::kPair;
  }

  static Record Paired(Frame* request, Frame* answer, State* state) {
    Record r = RecordWithoutAnswer(request);
    r.response_missing = false;
    r.response = answer->timing;
    r.error_prefix = std::move(answer->error_prefix);
    r.nested_error = answer->nested_error;
    r.elements = answer->elements;
    r.reply_truncated = answer->truncated;
    const bool error = !r.error_prefix.empty() && !r.nested_error;
    switch (answer->type) {
      case '+': r.reply = Reply::kSimple; break;
      case '-':
      case '!': r.reply = Reply::kError; break;
      case ':': r.reply = Reply::kInteger; break;
      case '$':
      case '=': r.reply = answer->null ? Reply::kNull : Reply::kBulk; break;
      case '_': r.reply = Reply::kNull; break;
      case '*':
      case '>': r.reply = answer->null ? Reply::kNull : Reply::kArray; break;
      case '%': r.reply = Reply::kMap; break;
      case '~': r.reply = Reply::kSet; break;
      default: r.reply = Reply::kScalar; break;
    }
    if (answer->shape == Shape::kConfirmation) {
      r.reply = Reply::kSubscribe;
      // One confirmation per channel named; UNSUBSCRIBE with none: one per subscription,
      // until the count reaches 0.
      state->absorb_kind = answer->head_word;
      state->absorb_left = request->args > 0 ? request->args - 1 : 0;
      state->absorb_until_zero = request->args == 0 && answer->third_int > 0;
    } else {
      state->absorb_kind.clear();
      state->absorb_left = 0;
      state->absorb_until_zero = false;
    }
    const string_view cmd = r.command;
    if (EqualsUpper(cmd, "MULTI")) {
      if (answer->ok) {
        state->in_multi = true;
        state->queued = 0;
      }
    } else if (EqualsUpper(cmd, "EXEC") || EqualsUpper(cmd, "DISCARD")) {
      if (EqualsUpper(cmd, "EXEC")) {
        r.exec = true;
        r.queued = state->queued;
      }
      state->in_multi = false;
      state->queued = 0;
    } else if (EqualsUpper(cmd, "RESET")) {
      state->in_multi = false;
      state->queued = 0;
      state->subscribed = false;
    } else if (state->in_multi && answer->queued) {
      r.in_transaction = true;
      ++state->queued;
    }
    (void)error;
    return r;
  }

  static Record RecordWithoutAnswer(Frame* request) { return redis::RecordWithoutAnswer(request); }
};

}  // namespace

bool IsKnownCommand(std::string_view name) {
  if (name.empty() || name.size() > Record::kMaxNameBytes) return false;
  char upper[Record::kMaxNameBytes];
  for (size_t i = 0; i < name.size(); ++i) upper[i] = Upper(name[i]);
  return std::binary_search(std::begin(kKnownCommands), std::end(kKnownCommands),
                            string_view(upper, name.size()));
}

ParseState ParseFrame(MessageType type, std::string_view* buf, Frame* frame, State* state) {
  const bool fresh = frame->phase == Phase::kType && frame->depth == 0 && frame->type == 0;
  if (fresh) {
    frame->is_response = type == MessageType::kResponse;
    frame->strict_name = type == MessageType::kRequest && state->request_loss;
  }
  if (fresh && type == MessageType::kResponse && state->response_tail) {
    // The tail of a truncated reply: every chunk that moved before the first command sent
    // after that reply began (the client reads a whole reply before its next command).
    const ParseContext& ctx = state->ctx;
    uint64_t next = 0;
    for (uint64_t t : state->request_starts) {
      if (t > state->tail_started_ns) {
        next = t;
        break;
      }
    }
    if (ctx.stream != nullptr && !buf->empty() && (next == 0 || ctx.first.first_ns < next)) {
      uint64_t chunk_end = 0;
      ctx.stream->TimingAt(ctx.position, &chunk_end);
      const uint64_t n =
          std::min<uint64_t>(buf->size(), chunk_end > ctx.position ? chunk_end - ctx.position : 1);
      buf->remove_prefix(n);
      return ParseState::kIgnored;
    }
    if (ctx.stream != nullptr && !buf->empty()) state->response_tail = false;
  }
  if (!state->ctx.partial_ok) {
    // Whole frames only: work on copies, commit on completion.
    Frame f = *frame;
    string_view b = *buf;
    for (;;) {
      switch (StepFrame(&b, &f)) {
        case Step::kProgress: continue;
        case Step::kDone:
          *frame = std::move(f);
          *buf = b;
          return ParseState::kSuccess;
        case Step::kIgnored: *buf = b; return ParseState::kIgnored;
        case Step::kNeedMore: return ParseState::kNeedsMoreData;
        case Step::kInvalid: return ParseState::kInvalid;
      }
    }
  }
  // In parts: every step taken is kept; a framing error after progress is reported by the
  // next call, as if the bytes had come one by one.
  const size_t before = buf->size();
  for (;;) {
    switch (StepFrame(buf, frame)) {
      case Step::kProgress: continue;
      case Step::kDone: return ParseState::kSuccess;
      case Step::kIgnored: return ParseState::kIgnored;  // only at a frame's start
      case Step::kNeedMore: return buf->size() != before ? ParseState::kSuccess : ParseState::kNeedsMoreData;
      case Step::kInvalid: return buf->size() != before ? ParseState::kSuccess : ParseState::kInvalid;
    }
  }
}

size_t FindFrameBoundary(MessageType type, std::string_view buf, size_t start, State* state) {
  bool& mid_line = type == MessageType::kRequest ? state->request_mid_line : state->response_mid_line;
  auto line_start = [&](size_t pos) { return pos == 0 ? !mid_line : buf[pos - 1] == '\n'; };
  size_t pos = start;
  while (pos < buf.size()) {
    if (line_start(pos)) {
      const string_view rest = buf.substr(pos);
      const Start s =
          type == MessageType::kRequest ? MatchRequestStart(rest, /*known=*/false) : MatchReplyStart(rest);
      if (s != Start::kNo) {
        mid_line = false;
        return pos;
      }
    }
    const size_t lf = buf.find('\n', pos);
    if (lf == string_view::npos) break;
    pos = lf + 1;
  }
  if (!buf.empty()) mid_line = buf.back() != '\n';
  return string_view::npos;
}

bool FrameComplete(const Frame& frame) {
  return frame.phase == Phase::kDone;
}

uint64_t OpaqueRemaining(const Frame& frame) {
  // The closing CRLF is checked where it was captured, but may fall in the hole too.
  return frame.phase == Phase::kBulk ? frame.remaining : 0;
}

void SkipHole(Frame* frame, uint64_t n) {
  if (frame->phase != Phase::kBulk) return;
  frame->remaining -= std::min(n, frame->remaining);
  if (frame->remaining == 0) ValueDone(frame);
}

void FinishFrame(MessageType type, Frame* frame, State* state) {
  if (type == MessageType::kResponse) {
    frame->after_loss = std::exchange(state->response_loss, false);
    const uint64_t n = frame->elements;
    const string_view w = frame->head_word;
    if ((frame->type == '*' || frame->type == '>') && !frame->null) {
      if (n == 3 && frame->third_is_int &&
          std::find(kConfirmations.begin(), kConfirmations.end(), w) != kConfirmations.end()) {
        frame->shape = Shape::kConfirmation;
      } else if (((w == "message" || w == "smessage") && n == 3) || (w == "pmessage" && n == 4)) {
        frame->shape = Shape::kMessage;
      }
    }
    return;
  }
  frame->seq = state->next_seq++;
  state->request_starts.push_back(frame->timing.start_ns);
  while (state->request_starts.size() > state->max_pending) state->request_starts.pop_front();
  frame->after_loss = std::exchange(state->request_loss, false);
  // The database, as far as parsing knows it: 0 on a connection seen from its start; unknown
  // after lost bytes (a SELECT may have been among them); else what the commands before it
  // left, which only the pairing knows (StitchFrames).
  const bool first = std::exchange(state->first_request, false);
  frame->db = frame->after_loss ? -1 : (first ? 0 : kInheritDb);
  if (EqualsUpper(frame->command, "RESET")) {
    state->reply_off = false;
    state->skip_next = false;
  }
  // CLIENT REPLY OFF / SKIP: the server stops answering (OFF and SKIP are not answered).
  switch (frame->reply_mode) {
    case ReplyMode::kOn:
      state->reply_off = false;
      frame->expects_answer = true;
      return;
    case ReplyMode::kOff:
      state->reply_off = true;
      frame->expects_answer = false;
      return;
    case ReplyMode::kSkip:
      frame->expects_answer = false;
      if (!state->reply_off) state->skip_next = true;
      return;
    case ReplyMode::kNone: break;
  }
  frame->expects_answer = !state->reply_off && !std::exchange(state->skip_next, false);
}

bool TruncateAtHole(MessageType type, Frame* frame, State* state) {
  if (type != MessageType::kResponse || frame->type == 0 || frame->phase == Phase::kDone) return false;
  frame->phase = Phase::kDone;
  frame->truncated = true;
  // A blob error cut before its text was read: an error all the same, its prefix unknown,
  // as one too long to read whole (redis_fuzz finding blob_error_cut_by_a_hole).
  if (frame->type == '!' && frame->error_prefix.empty()) frame->error_prefix = "_OTHER";
  state->response_tail = true;
  state->tail_started_ns = frame->timing.start_ns;
  return true;
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
  r.command = std::move(request->command);
  r.subcommand = std::move(request->subcommand);
  r.args = static_cast<uint32_t>(std::min<uint64_t>(request->args, UINT32_MAX));
  r.inline_command = request->inline_command;
  r.db = request->db;
  r.select_db = request->select_db;
  r.request = request->timing;
  r.response_missing = request->ExpectsAnswer();
  r.unanswered = Unanswered::kNotCaptured;  // at close the connection's reason replaces it
  return r;
}

RecordsWithErrorCount<Record> StitchFrames(Fifo<Frame>* requests, Fifo<Frame>* responses, State* state) {
  RecordsWithErrorCount<Record> out = StitchInOrder<Pairing>(requests, responses, state);
  // The database each command ran in, in command order: what SELECT and RESET answered
  // before it (a failed SELECT changes nothing; one whose answer is missing leaves it
  // unknown; one that expects no answer, under CLIENT REPLY OFF, is taken as done).
  for (Record& r : out.records) {
    if (r.db != kInheritDb) state->db = r.db;
    r.db = state->db;
    const bool answered = !r.response_missing && r.reply != Reply::kNone;
    const bool failed = answered && r.reply == Reply::kError;
    if (EqualsUpper(r.command, "SELECT") && !failed) {
      state->db = r.response_missing ? -1 : r.select_db;
    } else if (EqualsUpper(r.command, "RESET") && !failed) {
      state->db = r.response_missing ? -1 : 0;
    }
  }
  return out;
}

Start LooksLikeRequest(std::string_view prefix) {
  return MatchRequestStart(prefix, /*known=*/true);
}

std::string QueryText(const Record& record) {
  std::string q = record.command.empty() ? std::string("_OTHER") : record.command;
  uint64_t rest = record.args;
  if (!record.subcommand.empty() && rest > 0) {
    q += ' ';
    q += record.subcommand;
    --rest;
  }
  for (uint64_t i = 0; i < rest; ++i) {
    if (i == kMaxPlaceholders) {
      q += " ...";
      break;
    }
    q += " ?";
  }
  return q;
}

}  // namespace kspan::protocols::redis
