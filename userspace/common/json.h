// A small streaming JSON writer for the agent's own output (logs, OTLP/JSON lines,
// console). It appends to a caller-owned std::string, so a whole line is built without
// intermediate allocations. Strings are escaped per RFC 8259; bytes that are not valid
// UTF-8 are replaced with U+FFFD, so whatever a traced process sent, the line stays valid.
//
//   std::string out;
//   JsonWriter w(&out);
//   w.BeginObject(); w.Key("level"); w.String("info"); w.EndObject();
//
// The writer inserts commas itself; it does not check that keys and values alternate.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kspan {

// Length of the valid UTF-8 sequence starting at s[i] (i < s.size()), or 0 when it is not
// valid (overlong, a surrogate, past U+10FFFF, or cut short).
size_t Utf8SequenceLength(std::string_view s, size_t i);

// Appends `s` to `out` as the inside of a JSON string (no quotes).
void AppendJsonEscaped(std::string* out, std::string_view s);

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(std::string_view key);
  void String(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Double(double value);
  void Bool(bool value);
  void Null();
  // Appends already-serialised JSON as one value.
  void Raw(std::string_view json);

 private:
  void BeforeValue();

  std::string* out_;
  // One entry per open container: true once it holds an element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

}  // namespace kspan
