#include "genai/json.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace kspan::genai::json {

namespace {

constexpr uint32_t kNoNode = std::numeric_limits<uint32_t>::max();
// Offsets into the text and the string buffer are 32-bit.
constexpr size_t kMaxTextBytes = std::numeric_limits<uint32_t>::max() - 1;
// Doubles hold every integer up to 2^53 exactly.
constexpr double kMaxExactInteger = 9007199254740992.0;

}  // namespace

// Nodes are stored in text order, so nodes[0] is the root; children are linked through
// first_child / next_sibling.
struct Node {
  Type type = Type::kNull;
  bool boolean = false;
  bool truncated = false;
  uint32_t key_offset = 0;  // into Storage::strings
  uint32_t key_size = 0;
  uint32_t text_offset = 0;  // a string's unescaped bytes, a number's text
  uint32_t text_size = 0;
  uint32_t first_child = kNoNode;
  uint32_t next_sibling = kNoNode;
  uint32_t size = 0;
  double number = 0;  // NaN when no double holds the number
};
static_assert(sizeof(Node) == 40, "Limits::max_nodes is sized for 40-byte nodes");

struct Storage {
  std::vector<Node> nodes;
  std::string strings;  // keys, unescaped strings and number texts, back to back

  std::string_view Slice(uint32_t offset, uint32_t size) const {
    return std::string_view(strings).substr(offset, size);
  }
};

// One pass over the text with a stack of open containers. A value is added to the tree
// when it is complete (scalars) or when it opens (containers), so stopping at any byte
// leaves exactly the complete values, and the open containers to mark truncated.
class Parser {
 public:
  Parser(std::string_view text, const Limits& limits, bool whole)
      : text_(text.substr(0, kMaxTextBytes)), limits_(limits), whole_(whole) {}

  Document Run();

 private:
  struct Open {
    uint32_t node;
    uint32_t last_child;
  };

  // Each returns false after Stop(): the caller unwinds and Run() finishes.
  bool ReadValue();
  bool Stop(ParseStatus status);
  bool OpenContainer(Type type);
  bool ReadKey();
  bool ReadScalar();
  bool ReadString(uint32_t* offset, uint32_t* size);
  bool ReadEscape();
  bool ReadHex4(uint32_t* code_unit);
  bool ReadLiteral(std::string_view literal);
  bool ReadNumber();
  bool AddNode(const Node& node);

  void SkipWhitespace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  bool InObject() const { return storage_->nodes[stack_.back().node].type == Type::kObject; }
  void AppendUtf8(uint32_t code_point);

  std::string_view text_;
  const Limits limits_;
  const bool whole_;  // Parse(): the text must hold exactly the value
  size_t pos_ = 0;
  std::unique_ptr<Storage> storage_ = std::make_unique<Storage>();
  std::vector<Open> stack_;
  // The name of the member whose value comes next (the innermost open container is an
  // object).
  uint32_t key_offset_ = 0;
  uint32_t key_size_ = 0;
  ParseStatus status_ = ParseStatus::kOk;
};

Document Parser::Run() {
  if (ReadValue() && whole_) {
    SkipWhitespace();
    if (!AtEnd()) Stop(ParseStatus::kInvalid);  // something after the value
  }
  if (whole_ && status_ != ParseStatus::kOk) storage_->nodes.clear();

  Document doc;
  doc.status_ = status_;
  doc.consumed_ = pos_;
  doc.storage_ = std::move(storage_);
  return doc;
}

// The grammar as a loop with two states: a value is expected (the root, an element, a
// member's value), or one just ended (then a ',', a closing bracket, or, with no container
// open, the end of the value).
bool Parser::ReadValue() {
  bool want_value = true;
  while (true) {
    if (want_value) {
      SkipWhitespace();
      if (AtEnd()) return Stop(ParseStatus::kTruncated);
      const char c = text_[pos_];
      if (c != '{' && c != '[') {
        if (!ReadScalar()) return false;
        want_value = false;
        continue;
      }
      const bool object = c == '{';
      if (!OpenContainer(object ? Type::kObject : Type::kArray)) return false;
      SkipWhitespace();
      if (AtEnd()) return Stop(ParseStatus::kTruncated);
      if (text_[pos_] == (object ? '}' : ']')) {
        ++pos_;
        stack_.pop_back();
        want_value = false;
      } else if (object && !ReadKey()) {
        return false;
      }
      continue;
    }
    if (stack_.empty()) return true;
    SkipWhitespace();
    if (AtEnd()) return Stop(ParseStatus::kTruncated);
    const char c = text_[pos_];
    if (c == ',') {
      ++pos_;
      if (InObject() && !ReadKey()) return false;
      want_value = true;
    } else if (c == (InObject() ? '}' : ']')) {
      ++pos_;
      stack_.pop_back();
    } else {
      return Stop(ParseStatus::kInvalid);
    }
  }
}

bool Parser::Stop(ParseStatus status) {
  status_ = status;
  for (const Open& open : stack_) storage_->nodes[open.node].truncated = true;
  return false;
}

bool Parser::AddNode(const Node& node) {
  std::vector<Node>& nodes = storage_->nodes;
  if (nodes.size() >= limits_.max_nodes) return Stop(ParseStatus::kTooManyNodes);
  const auto index = static_cast<uint32_t>(nodes.size());
  nodes.push_back(node);
  if (stack_.empty()) return true;  // the root
  Open& parent = stack_.back();
  Node& parent_node = nodes[parent.node];
  if (parent_node.type == Type::kObject) {
    nodes[index].key_offset = key_offset_;
    nodes[index].key_size = key_size_;
  }
  if (parent.last_child == kNoNode) {
    parent_node.first_child = index;
  } else {
    nodes[parent.last_child].next_sibling = index;
  }
  parent.last_child = index;
  ++parent_node.size;
  return true;
}

bool Parser::OpenContainer(Type type) {
  if (stack_.size() >= limits_.max_depth) return Stop(ParseStatus::kTooDeep);
  Node node;
  node.type = type;
  if (!AddNode(node)) return false;
  ++pos_;
  stack_.push_back(Open{static_cast<uint32_t>(storage_->nodes.size() - 1), kNoNode});
  return true;
}

bool Parser::ReadKey() {
  SkipWhitespace();
  if (AtEnd()) return Stop(ParseStatus::kTruncated);
  if (text_[pos_] != '"') return Stop(ParseStatus::kInvalid);
  if (!ReadString(&key_offset_, &key_size_)) return false;
  SkipWhitespace();
  if (AtEnd()) return Stop(ParseStatus::kTruncated);
  if (text_[pos_] != ':') return Stop(ParseStatus::kInvalid);
  ++pos_;
  return true;
}

bool Parser::ReadScalar() {
  Node node;
  switch (text_[pos_]) {
    case '"':
      node.type = Type::kString;
      if (!ReadString(&node.text_offset, &node.text_size)) return false;
      return AddNode(node);
    case 't':
      node.type = Type::kBool;
      node.boolean = true;
      return ReadLiteral("true") && AddNode(node);
    case 'f': node.type = Type::kBool; return ReadLiteral("false") && AddNode(node);
    case 'n': node.type = Type::kNull; return ReadLiteral("null") && AddNode(node);
    default: return ReadNumber();
  }
}

bool Parser::ReadLiteral(std::string_view literal) {
  const std::string_view rest = text_.substr(pos_, literal.size());
  if (rest != literal.substr(0, rest.size())) return Stop(ParseStatus::kInvalid);
  if (rest.size() < literal.size()) return Stop(ParseStatus::kTruncated);
  pos_ += literal.size();
  return true;
}

// RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
bool Parser::ReadNumber() {
  const size_t start = pos_;
  const auto digit = [this] { return pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9'; };
  const auto digits = [&] {
    if (!digit()) return false;
    while (digit()) ++pos_;
    return true;
  };
  // A part the grammar requires is missing: the text ended (cut) or holds something else.
  const auto missing = [this] { return Stop(AtEnd() ? ParseStatus::kTruncated : ParseStatus::kInvalid); };

  if (text_[pos_] == '-') ++pos_;
  if (pos_ < text_.size() && text_[pos_] == '0') {
    ++pos_;
  } else if (!digits()) {
    return missing();
  }
  if (pos_ < text_.size() && text_[pos_] == '.') {
    ++pos_;
    if (!digits()) return missing();
  }
  if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
    if (!digits()) return missing();
  }
  // In a prefix, a number that runs to the end of the text may go on past it.
  if (AtEnd() && !whole_) return Stop(ParseStatus::kTruncated);

  const std::string_view raw = text_.substr(start, pos_ - start);
  Node node;
  node.type = Type::kNumber;
  const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), node.number);
  if (ec != std::errc() || end != raw.data() + raw.size()) node.number = std::nan("");
  node.text_offset = static_cast<uint32_t>(storage_->strings.size());
  node.text_size = static_cast<uint32_t>(raw.size());
  storage_->strings.append(raw);
  return AddNode(node);
}

// At the opening quote. Appends the unescaped bytes to the string buffer; on failure they
// are taken back out.
bool Parser::ReadString(uint32_t* offset, uint32_t* size) {
  std::string& out = storage_->strings;
  const size_t start = out.size();
  ++pos_;
  while (true) {
    size_t run = pos_;
    while (run < text_.size() && text_[run] != '"' && text_[run] != '\\' &&
           static_cast<unsigned char>(text_[run]) >= 0x20) {
      ++run;
    }
    out.append(text_.substr(pos_, run - pos_));
    pos_ = run;
    bool ok = true;
    if (AtEnd()) {
      ok = Stop(ParseStatus::kTruncated);
    } else if (text_[pos_] == '"') {
      ++pos_;
      *offset = static_cast<uint32_t>(start);
      *size = static_cast<uint32_t>(out.size() - start);
      return true;
    } else if (text_[pos_] != '\\') {
      ok = Stop(ParseStatus::kInvalid);  // a raw control character
    } else {
      ok = ReadEscape();
    }
    if (!ok) {
      out.resize(start);
      return false;
    }
  }
}

// At a backslash.
bool Parser::ReadEscape() {
  if (pos_ + 1 >= text_.size()) return Stop(ParseStatus::kTruncated);
  const char c = text_[pos_ + 1];
  pos_ += 2;
  std::string& out = storage_->strings;
  switch (c) {
    case '"': out.push_back('"'); return true;
    case '\\': out.push_back('\\'); return true;
    case '/': out.push_back('/'); return true;
    case 'b': out.push_back('\b'); return true;
    case 'f': out.push_back('\f'); return true;
    case 'n': out.push_back('\n'); return true;
    case 'r': out.push_back('\r'); return true;
    case 't': out.push_back('\t'); return true;
    case 'u': break;
    default: return Stop(ParseStatus::kInvalid);
  }
  uint32_t unit;
  if (!ReadHex4(&unit)) return false;
  constexpr uint32_t kReplacement = 0xFFFD;
  if (unit >= 0xDC00 && unit <= 0xDFFF) {  // a low surrogate with no high one before it
    AppendUtf8(kReplacement);
    return true;
  }
  if (unit < 0xD800 || unit > 0xDBFF) {
    AppendUtf8(unit);
    return true;
  }
  // A high surrogate: it makes a code point only with a "\uDC00".."\uDFFF" right after.
  if (pos_ < text_.size() && text_[pos_] == '\\') {
    if (pos_ + 1 >= text_.size()) return Stop(ParseStatus::kTruncated);
    if (text_[pos_ + 1] == 'u') {
      const size_t escape = pos_;
      pos_ += 2;
      uint32_t low;
      if (!ReadHex4(&low)) return false;
      if (low >= 0xDC00 && low <= 0xDFFF) {
        AppendUtf8(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
        return true;
      }
      pos_ = escape;  // not a low surrogate: read it again as an escape of its own
    }
  }
  AppendUtf8(kReplacement);
  return true;
}

bool Parser::ReadHex4(uint32_t* code_unit) {
  *code_unit = 0;
  for (int i = 0; i < 4; ++i, ++pos_) {
    if (AtEnd()) return Stop(ParseStatus::kTruncated);
    const char c = text_[pos_];
    uint32_t v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      return Stop(ParseStatus::kInvalid);
    }
    *code_unit = *code_unit << 4 | v;
  }
  return true;
}

void Parser::AppendUtf8(uint32_t cp) {
  std::string& out = storage_->strings;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | cp >> 6));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | cp >> 12));
    out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | cp >> 18));
    out.push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// ---- Document ------------------------------------------------------------------------

Document::Document() = default;
Document::~Document() = default;
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;

Value Document::root() const {
  if (storage_ == nullptr || storage_->nodes.empty()) return Value();
  return Value(storage_.get(), 0);
}

Document Parse(std::string_view text, const Limits& limits) {
  return Parser(text, limits, /*whole=*/true).Run();
}

Document ParsePrefix(std::string_view text, const Limits& limits) {
  return Parser(text, limits, /*whole=*/false).Run();
}

// ---- Value ---------------------------------------------------------------------------

Type Value::type() const {
  return storage_ == nullptr ? Type::kMissing : storage_->nodes[index_].type;
}

std::optional<bool> Value::AsBool() const {
  if (type() != Type::kBool) return std::nullopt;
  return storage_->nodes[index_].boolean;
}

std::optional<std::string_view> Value::AsString() const {
  if (type() != Type::kString) return std::nullopt;
  const Node& n = storage_->nodes[index_];
  return storage_->Slice(n.text_offset, n.text_size);
}

std::optional<double> Value::AsDouble() const {
  if (type() != Type::kNumber) return std::nullopt;
  const double d = storage_->nodes[index_].number;
  if (std::isnan(d)) return std::nullopt;
  return d;
}

std::optional<int64_t> Value::AsInt64() const {
  if (type() != Type::kNumber) return std::nullopt;
  const std::string_view raw = raw_number();
  if (raw.find_first_of(".eE") == std::string_view::npos) {
    int64_t v;
    const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
    if (ec != std::errc() || end != raw.data() + raw.size()) return std::nullopt;
    return v;
  }
  const double d = storage_->nodes[index_].number;
  if (std::isnan(d) || std::fabs(d) > kMaxExactInteger || d != std::trunc(d)) return std::nullopt;
  return static_cast<int64_t>(d);
}

std::string_view Value::raw_number() const {
  if (type() != Type::kNumber) return {};
  const Node& n = storage_->nodes[index_];
  return storage_->Slice(n.text_offset, n.text_size);
}

std::string_view Value::key() const {
  if (storage_ == nullptr) return {};
  const Node& n = storage_->nodes[index_];
  return storage_->Slice(n.key_offset, n.key_size);
}

bool Value::truncated() const {
  return storage_ != nullptr && storage_->nodes[index_].truncated;
}

size_t Value::size() const {
  return storage_ == nullptr ? 0 : storage_->nodes[index_].size;
}

Value Value::Find(std::string_view name) const {
  if (type() != Type::kObject) return Value();
  Value found;
  for (const Value member : children()) {
    if (member.key() == name) found = member;
  }
  return found;
}

Value Value::At(std::initializer_list<std::string_view> path) const {
  Value v = *this;
  for (const std::string_view name : path) v = v.Find(name);
  return v;
}

Value::Children Value::children() const {
  if (storage_ == nullptr) return Children(nullptr, kNoNode);
  return Children(storage_, storage_->nodes[index_].first_child);
}

Value::Children::Iterator& Value::Children::Iterator::operator++() {
  index_ = storage_->nodes[index_].next_sibling;
  return *this;
}

Value::Children::Iterator Value::Children::end() const {
  return Iterator(storage_, kNoNode);
}

}  // namespace kspan::genai::json
