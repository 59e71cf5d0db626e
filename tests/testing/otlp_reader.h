// Reads kspan's OTLP/JSON-lines output back into flat spans for assertions, with an
// independent JSON parser (nlohmann), so tests check the wire format, not our structs.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kspan::testing {

// One entry of a span's "links": another span this one relates to without being its child.
struct FlatLink {
  std::string trace_id, span_id, trace_state;
  std::map<std::string, nlohmann::json> attributes;  // the AnyValue object
};

// One entry of a span's "events".
struct FlatEvent {
  std::string name;
  uint64_t time_ns = 0;
  std::map<std::string, nlohmann::json> attributes;  // the AnyValue object
};

struct FlatSpan {
  std::string trace_id, span_id, parent_span_id, trace_state, name;
  int kind = 0;
  uint32_t flags = 0;  // the OTLP span "flags": W3C trace flags in bits 0-7
  uint64_t start_ns = 0, end_ns = 0;
  int status_code = 0;
  std::string status_message;
  std::map<std::string, nlohmann::json> attributes;  // the AnyValue object
  std::map<std::string, nlohmann::json> resource;
  std::vector<FlatLink> links;
  std::vector<FlatEvent> events;

  std::string Str(const std::string& key) const;  // stringValue or ""
  int64_t Int(const std::string& key) const;      // intValue or -1
  bool Bool(const std::string& key) const;        // boolValue, false when absent or not a bool
  double Double(const std::string& key) const;    // doubleValue (or intValue), NaN when absent
  // arrayValue of stringValues; empty when absent or not such an array.
  std::vector<std::string> Strings(const std::string& key) const;
  // The first event with this name, or nullptr.
  const FlatEvent* Event(const std::string& name) const;
  bool Has(const std::string& key) const { return attributes.count(key) > 0; }
  std::string ResourceStr(const std::string& key) const;
  // The request path: url.path, else the path part of url.full; without query or fragment.
  std::string Path() const;
};

// Every span in the file; malformed lines fail the calling test (ADD_FAILURE).
std::vector<FlatSpan> ReadSpans(const std::string& path);

}  // namespace kspan::testing
