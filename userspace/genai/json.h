// A small JSON reader for the bodies kspan captures from LLM API calls: one RFC 8259 value
// into a read-only tree, with what a bounded capture that may stop anywhere needs.
//
//   json::Document doc = json::ParsePrefix(body);   // body may be cut off anywhere
//   std::optional<int64_t> cached =
//       doc.root().At({"usage", "prompt_tokens_details", "cached_tokens"}).AsInt64();
//
// Parse() takes exactly one value, with nothing but whitespace around it. ParsePrefix()
// reads one value from the start of a text that may end anywhere (what follows the value
// is not read) and keeps what was complete:
//
//   text (ends where shown)   root after ParsePrefix     why
//   ------------------------  -------------------------  ------------------------------------
//   {"a":1,"b":[1,2,          {"a":1,"b":[1,2]}          b and the root are truncated()
//   {"a":1,"b":"hel           {"a":1}                    a cut string is dropped
//   {"a":1,"b":12             {"a":1}                    a number at the end may go on ("123")
//   {"a":1,"b                 {"a":1}                    a cut key drops its member
//   [1,{"x":tr                [1,{}]                     the inner object is truncated()
//   "hel   12   tr            (none)                     a cut scalar root is nothing
//
// That is: a member or element is kept once its value is complete; an object or array that
// was cut is kept with what completed inside it, marked truncated() (as is every container
// around it). A syntax error or a bound (Limits) stops the reading like the end of the text
// does, and status() says which it was; Parse() keeps nothing unless status() is kOk.
//
// Strict: the RFC 8259 grammar only (no comments, trailing commas, single quotes, NaN,
// leading '+' or zeros); a raw control character inside a string is invalid.
// Tolerant: a \u escape that is a lone surrogate becomes U+FFFD; bytes that are not valid
// UTF-8 are kept as they are (kspan's JsonWriter replaces them on output); duplicate member
// names are all kept and Find() returns the last, as JavaScript's JSON.parse and Python's
// json module do, so kspan reads what the server read.
//
// Bounds: no recursion (an explicit stack of open containers); at most Limits::max_depth
// nested containers and Limits::max_nodes values; nothing read outside the text; unescaped
// strings (never longer than their escaped form) go into one buffer no larger than the
// text. Nothing throws but allocation.
//
// Thread safety: a Document is immutable once returned; Values are views into it, valid
// while the Document lives (moving the Document keeps them valid).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string_view>

namespace kspan::genai::json {

enum class Type : uint8_t {
  kMissing,  // no such value: a member that is not there, a lookup on a non-object
  kNull,
  kBool,
  kNumber,
  kString,
  kArray,
  kObject,
};

struct Limits {
  // Containers open at once. Real API bodies nest a dozen deep (a tool's JSON schema is
  // the deepest part); 64 leaves room for odd schemas and is what the reader's stack costs
  // at most, 64 * 8 bytes.
  size_t max_depth = 64;
  // Values (scalars and containers) in one document. A value takes at least two bytes of
  // text ("0,"), so only texts over 400 KB can reach it; at 40 bytes a value the tree then
  // costs 8 MB.
  size_t max_nodes = 200'000;
};

enum class ParseStatus : uint8_t {
  kOk,            // one whole value (Parse: and only whitespace after it)
  kTruncated,     // the text ended inside the value (or held only whitespace)
  kInvalid,       // a byte the grammar does not allow, at consumed()
  kTooDeep,       // a container would have been nested deeper than Limits::max_depth
  kTooManyNodes,  // the value would have had more than Limits::max_nodes values
};

struct Storage;  // the tree of one Document; defined in json.cc

// One value of a Document, or a missing one. Cheap to copy (a pointer and an index).
// Lookups on a missing value give missing values, so paths chain without checks:
// `v.Find("a").Find("b").AsString()` is std::nullopt when any step is absent.
class Value {
 public:
  Value() = default;  // missing

  Type type() const;
  explicit operator bool() const { return storage_ != nullptr; }  // present

  // The value when it has that type; std::nullopt otherwise (and when missing).
  std::optional<bool> AsBool() const;
  std::optional<std::string_view> AsString() const;  // unescaped
  // Numbers a double holds: std::nullopt beyond ±1.8e308 and for subnormal underflow.
  std::optional<double> AsDouble() const;
  // Integral numbers: an integer literal within int64, or a fraction/exponent form whose
  // value is a whole number within ±2^53 (so exact): "100", "1e3", "100.0" -> 100.
  std::optional<int64_t> AsInt64() const;
  // A number's text as sent ("1.50e3"); empty for other types.
  std::string_view raw_number() const;

  // For a member of an object: its name (unescaped); empty otherwise.
  std::string_view key() const;
  // An object or array that the text ended (or parsing stopped) inside.
  bool truncated() const;
  // Members of an object, elements of an array; 0 for anything else.
  size_t size() const;

  // The last member named `key` (see above on duplicates); missing when there is none or
  // this is not an object.
  Value Find(std::string_view key) const;
  // Find() along a path of member names.
  Value At(std::initializer_list<std::string_view> path) const;

  // Members or elements in text order (nothing for scalars and missing values):
  //   for (json::Value choice : root.Find("choices").children()) ...
  class Children;
  Children children() const;

 private:
  friend class Document;
  Value(const Storage* storage, uint32_t index) : storage_(storage), index_(index) {}

  const Storage* storage_ = nullptr;
  uint32_t index_ = 0;
};

class Value::Children {
 public:
  class Iterator {
   public:
    Value operator*() const { return Value(storage_, index_); }
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return index_ == other.index_; }
    bool operator!=(const Iterator& other) const { return index_ != other.index_; }

   private:
    friend class Children;
    Iterator(const Storage* storage, uint32_t index) : storage_(storage), index_(index) {}
    const Storage* storage_;
    uint32_t index_;
  };

  Iterator begin() const { return Iterator(storage_, first_); }
  Iterator end() const;

 private:
  friend class Value;
  Children(const Storage* storage, uint32_t first) : storage_(storage), first_(first) {}
  const Storage* storage_;
  uint32_t first_;
};

class Document {
 public:
  Document();
  ~Document();
  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;

  // The value read; missing when nothing complete was read (and for Parse(), unless
  // status() is kOk).
  Value root() const;
  ParseStatus status() const { return status_; }
  // Bytes read: up to the end of the value when status() is kOk (for Parse(), including
  // the whitespace after it), else to where reading stopped.
  size_t consumed() const { return consumed_; }

 private:
  friend class Parser;
  std::unique_ptr<Storage> storage_;
  ParseStatus status_ = ParseStatus::kTruncated;
  size_t consumed_ = 0;
};

// A text longer than 4 GiB - 1 (offsets inside the tree are 32-bit) is read as its first
// 4 GiB - 1 bytes.
Document Parse(std::string_view text, const Limits& limits = {});
Document ParsePrefix(std::string_view text, const Limits& limits = {});

}  // namespace kspan::genai::json
