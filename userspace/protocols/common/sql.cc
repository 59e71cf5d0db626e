#include "protocols/common/sql.h"

#include <algorithm>
#include <vector>

namespace kspan::protocols::sql {
namespace {

bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsIdentChar(char c) {
  return IsIdentStart(c) || IsDigit(c) || c == '$';
}
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// The end of a quoted literal starting at `q[i]` (the opening quote), or npos when the text
// ends first. `backslash`: a backslash escapes the next character (E'…', MySQL strings).
size_t QuotedEnd(std::string_view q, size_t i, char quote, bool backslash) {
  for (size_t j = i + 1; j < q.size(); ++j) {
    if (backslash && q[j] == '\\') {
      ++j;
      continue;
    }
    if (q[j] == quote) {
      if (j + 1 < q.size() && q[j + 1] == quote) {
        ++j;  // a doubled quote is part of the literal
        continue;
      }
      return j + 1;
    }
  }
  return std::string_view::npos;
}

// A dollar-quote tag at q[i] ("$$" or "$tag$"); its length, or 0.
size_t DollarTag(std::string_view q, size_t i) {
  if (q[i] != '$') return 0;
  size_t j = i + 1;
  if (j < q.size() && IsIdentStart(q[j])) {
    while (j < q.size() && IsIdentChar(q[j]) && q[j] != '$') ++j;
  }
  return j < q.size() && q[j] == '$' ? j - i + 1 : 0;
}

// The end of a /* comment */ at q[i], or npos. PostgreSQL nests them.
size_t BlockCommentEnd(std::string_view q, size_t i, bool nested) {
  int depth = 0;
  size_t j = i;
  while (j + 1 < q.size()) {
    if (q[j] == '/' && q[j + 1] == '*' && (nested || depth == 0)) {
      ++depth;
      j += 2;
    } else if (q[j] == '*' && q[j + 1] == '/') {
      j += 2;
      if (--depth == 0) return j;
    } else {
      ++j;
    }
  }
  return std::string_view::npos;
}

class Writer {
 public:
  explicit Writer(size_t max) : max_(max) {}
  // One token; a space before it when white space or a removed comment came between.
  void Token(std::string_view t) {
    if (full_) return;
    // The space counts against the bound too: at the bound, a space then "..." would be
    // one byte over (mysql_fuzz finding space_at_the_bound).
    const bool space = space_ && !out_.empty();
    space_ = false;
    if (out_.size() + (space ? 1 : 0) + t.size() > max_) {
      out_ += "...";
      full_ = true;
      return;
    }
    if (space) out_.push_back(' ');
    out_.append(t);
  }
  void Space() { space_ = true; }
  bool full() const { return full_; }
  std::string Take() { return std::move(out_); }
  std::string& out() { return out_; }

 private:
  size_t max_;
  std::string out_;
  bool space_ = false;
  bool full_ = false;
};

// "IN (?, ?, ?)" -> "IN (?)" over the sanitised text (which holds no literal any more).
std::string CollapseInLists(std::string s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const bool word_start = i == 0 || !IsIdentChar(s[i - 1]);
    if (word_start && i + 2 < s.size() && Lower(s[i]) == 'i' && Lower(s[i + 1]) == 'n' &&
        !IsIdentChar(s[i + 2])) {
      size_t j = i + 2;
      while (j < s.size() && s[j] == ' ') ++j;
      if (j < s.size() && s[j] == '(') {
        // Only ?, commas and spaces up to the closing parenthesis.
        size_t k = j + 1;
        bool only_marks = false;
        while (k < s.size() && (s[k] == '?' || s[k] == ',' || s[k] == ' ')) {
          only_marks = only_marks || s[k] == '?';
          ++k;
        }
        if (only_marks && k < s.size() && s[k] == ')') {
          out.append(s, i, j - i);
          out += "(?)";
          i = k + 1;
          continue;
        }
      }
    }
    out.push_back(s[i]);
    ++i;
  }
  return out;
}

}  // namespace

std::string Sanitize(std::string_view q, Dialect dialect, size_t max_bytes) {
  const bool pg = dialect == Dialect::kPostgres;
  Writer w(max_bytes);
  size_t i = 0;
  while (i < q.size() && !w.full()) {
    const char c = q[i];
    if (IsSpace(c)) {
      w.Space();
      ++i;
      continue;
    }
    // Comments: removed.
    if ((c == '-' && i + 1 < q.size() && q[i + 1] == '-') || (!pg && c == '#')) {
      const size_t nl = q.find('\n', i);
      if (nl == std::string_view::npos) break;
      w.Space();
      i = nl + 1;
      continue;
    }
    if (c == '/' && i + 1 < q.size() && q[i + 1] == '*') {
      const size_t end = BlockCommentEnd(q, i, pg);
      if (end == std::string_view::npos) break;
      w.Space();
      i = end;
      continue;
    }
    // String literals, with their prefixes (E'', U&'', B'', X'', N'', _utf8'').
    size_t quote = std::string_view::npos;
    bool backslash = !pg;
    if (c == '\'') {
      quote = i;
    } else if (pg && (c == 'E' || c == 'e') && i + 1 < q.size() && q[i + 1] == '\'') {
      quote = i + 1;
      backslash = true;
    } else if ((c == 'B' || c == 'b' || c == 'X' || c == 'x' || c == 'N' || c == 'n') && i + 1 < q.size() &&
               q[i + 1] == '\'') {
      quote = i + 1;
    } else if (pg && (c == 'U' || c == 'u') && i + 2 < q.size() && q[i + 1] == '&' && q[i + 2] == '\'') {
      quote = i + 2;
    } else if (!pg && c == '"') {
      quote = i;
    }
    if (quote != std::string_view::npos && (i == 0 || quote == i || !IsIdentChar(q[i - 1]))) {
      const size_t end = QuotedEnd(q, quote, q[quote], backslash);
      w.Token("?");
      if (end == std::string_view::npos) break;  // cut off: nothing of it is kept
      i = end;
      continue;
    }
    if (pg && c == '$') {
      if (const size_t tag = DollarTag(q, i); tag > 0) {
        const size_t close = q.find(q.substr(i, tag), i + tag);
        w.Token("?");
        if (close == std::string_view::npos) break;
        i = close + tag;
        continue;
      }
      if (i + 1 < q.size() && IsDigit(q[i + 1])) {  // $1: a parameter
        size_t j = i + 1;
        while (j < q.size() && IsDigit(q[j])) ++j;
        w.Token(q.substr(i, j - i));
        i = j;
        continue;
      }
    }
    // Numbers: a digit (or .digit) not inside an identifier; the whole run of digits,
    // letters (0x1F, 1e5), dots and an exponent's sign.
    if (IsDigit(c) || (c == '.' && i + 1 < q.size() && IsDigit(q[i + 1]))) {
      size_t j = i + 1;
      while (j < q.size()) {
        if (IsDigit(q[j]) || IsIdentStart(q[j]) || q[j] == '.' || q[j] == '_') {
          ++j;
        } else if ((q[j] == '+' || q[j] == '-') && (q[j - 1] == 'e' || q[j - 1] == 'E') &&
                   !(q[i] == '0' && i + 1 < j && (q[i + 1] == 'x' || q[i + 1] == 'X'))) {
          ++j;
        } else {
          break;
        }
      }
      w.Token("?");
      i = j;
      continue;
    }
    // Identifiers and keywords, kept (double-quoted ones in PostgreSQL too, `…` in MySQL).
    if (IsIdentStart(c)) {
      size_t j = i + 1;
      while (j < q.size() && IsIdentChar(q[j])) ++j;
      w.Token(q.substr(i, j - i));
      i = j;
      continue;
    }
    if ((pg && c == '"') || (!pg && c == '`')) {
      const size_t end = QuotedEnd(q, i, c, false);
      if (end == std::string_view::npos) {
        w.Token("?");  // cut off: kept out like a literal
        break;
      }
      w.Token(q.substr(i, end - i));
      i = end;
      continue;
    }
    // Punctuation and operators, one character a token; no space added around them
    // beyond what the query had.
    w.Token(q.substr(i, 1));
    ++i;
  }
  return CollapseInLists(w.Take());
}

std::string QueryText(std::string_view q, Dialect dialect, bool raw, size_t max_bytes) {
  if (!raw) return Sanitize(q, dialect, max_bytes);
  if (q.size() <= max_bytes) return std::string(q);
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(q[n]) & 0xC0) == 0x80) --n;  // not inside a character
  return std::string(q.substr(0, n)) + "...";
}

std::string_view FirstKeyword(std::string_view q) {
  size_t i = 0;
  for (;;) {
    while (i < q.size() && (IsSpace(q[i]) || q[i] == '(')) ++i;
    if (i + 1 < q.size() && q[i] == '-' && q[i + 1] == '-') {
      const size_t nl = q.find('\n', i);
      if (nl == std::string_view::npos) return {};
      i = nl + 1;
      continue;
    }
    if (i + 1 < q.size() && q[i] == '/' && q[i + 1] == '*') {
      const size_t end = BlockCommentEnd(q, i, true);
      if (end == std::string_view::npos) return {};
      i = end;
      continue;
    }
    break;
  }
  size_t j = i;
  while (j < q.size() && ((q[j] >= 'a' && q[j] <= 'z') || (q[j] >= 'A' && q[j] <= 'Z'))) ++j;
  if (j == i || j - i > 32 || (j < q.size() && IsIdentChar(q[j]))) return {};
  return q.substr(i, j - i);
}

namespace {

// The words of a sanitised text (split at spaces, commas, parentheses and semicolons; a
// comma is a word of its own), enough to find the one table a simple statement names.
std::vector<std::string_view> Words(std::string_view q) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < q.size() && out.size() < 4096) {
    const char c = q[i];
    if (c == ' ' || c == '(' || c == ')' || c == ';') {
      ++i;
      continue;
    }
    if (c == ',') {
      out.push_back(q.substr(i, 1));
      ++i;
      continue;
    }
    size_t j = i;
    while (j < q.size() && q[j] != ' ' && q[j] != ',' && q[j] != '(' && q[j] != ')' && q[j] != ';') ++j;
    out.push_back(q.substr(i, j - i));
    i = j;
  }
  return out;
}

bool Is(std::string_view word, std::string_view upper) {
  if (word.size() != upper.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != upper[i]) return false;
  }
  return true;
}

// A table name as written: letters, digits, _, $, a schema dot, or one quoted identifier
// ("…" or `…`, quotes removed).
std::string_view TableName(std::string_view w) {
  if (w.size() >= 2 && (w.front() == '"' || w.front() == '`') && w.back() == w.front()) {
    w = w.substr(1, w.size() - 2);
    return w.find_first_of("\"`") == std::string_view::npos && !w.empty() ? w : std::string_view();
  }
  if (w.empty() || w.size() > 128 || (w[0] >= '0' && w[0] <= '9') || w[0] == '?' || w[0] == '$') return {};
  for (char c : w) {
    if (!IsIdentChar(c) && c != '.') return {};
  }
  return w;
}

}  // namespace

std::string_view CollectionName(std::string_view q) {
  if (q.size() >= 3 && q.substr(q.size() - 3) == "...") return {};  // cut: the rest is unknown
  const std::vector<std::string_view> w = Words(q);
  if (w.empty()) return {};
  // One statement over one table: no subquery, join, union or second statement.
  size_t selects = 0;
  for (std::string_view x : w) {
    if (Is(x, "SELECT")) ++selects;
    if (Is(x, "JOIN") || Is(x, "UNION") || Is(x, "INTERSECT") || Is(x, "EXCEPT") || Is(x, "USING")) return {};
  }
  // COPY t [(columns)] FROM|TO …: its table (a COPY of a query, "COPY (SELECT …)", names
  // none here: its SELECT is counted above).
  if (Is(w[0], "COPY")) return selects == 0 && w.size() > 1 ? TableName(w[1]) : std::string_view();
  size_t at = 0;  // index of the table word
  if (Is(w[0], "SELECT")) {
    if (selects != 1) return {};
    for (size_t i = 1; i < w.size(); ++i) {
      if (Is(w[i], "FROM")) {
        at = i + 1;
        break;
      }
    }
  } else if ((Is(w[0], "INSERT") || Is(w[0], "REPLACE")) && selects == 0) {
    at = w.size() > 1 && Is(w[1], "INTO") ? 2 : 1;
  } else if (Is(w[0], "UPDATE") && selects == 0) {
    at = 1;
  } else if (Is(w[0], "DELETE") && selects == 0 && w.size() > 1 && Is(w[1], "FROM")) {
    at = 2;
  }
  if (at == 0 || at >= w.size()) return {};
  // A second table after it ("FROM a, b" or "FROM a x, b y"): not one collection.
  for (size_t i = at + 1; i < w.size() && i <= at + 3; ++i) {
    if (w[i] == ",") return {};
    if (Is(w[i], "WHERE") || Is(w[i], "SET") || Is(w[i], "VALUES") || Is(w[i], "ORDER") ||
        Is(w[i], "GROUP") || Is(w[i], "LIMIT")) {
      break;
    }
  }
  return TableName(w[at]);
}

}  // namespace kspan::protocols::sql
