// The span model every stage after the correlator speaks: the OpenTelemetry trace data
// model as plain values (enum numbers are OTLP's). Exporters turn it into wire formats.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kspan::model {

struct TraceId {
  std::array<uint8_t, 16> bytes{};
  // Not all zero (two word loads: asked for on every span, and per probe by hash tables
  // that keep the zero id as their free slot).
  bool IsValid() const {
    uint64_t w[2];
    std::memcpy(w, bytes.data(), sizeof w);
    return (w[0] | w[1]) != 0;
  }
  std::string Hex() const;  // 32 lowercase hex digits
  static TraceId Random();  // W3C-valid: random, never all zero
  bool operator==(const TraceId&) const = default;
};

// A hash of a trace id for the daemon's tables: its right half, which W3C asks to be
// random (and every id kspan makes is random throughout).
struct TraceIdHash {
  size_t operator()(const TraceId& t) const {
    uint64_t h;
    std::memcpy(&h, t.bytes.data() + 8, sizeof h);
    return static_cast<size_t>(h);
  }
};

struct SpanId {
  std::array<uint8_t, 8> bytes{};
  bool IsValid() const {
    uint64_t w;
    std::memcpy(&w, bytes.data(), sizeof w);
    return w != 0;
  }
  std::string Hex() const;  // 16 lowercase hex digits
  static SpanId Random();
  bool operator==(const SpanId&) const = default;
};

// Parses `hex` (exactly 2*N lowercase or uppercase hex digits) into out. False if malformed.
bool ParseHexId(std::string_view hex, uint8_t* out, size_t n);

// W3C trace context from a `traceparent` header value (version 00 and future versions
// per the spec's forward-compatibility rules). Invalid input gives nullopt, never an error.
struct TraceParent {
  TraceId trace_id;
  SpanId parent_id;
  uint8_t flags = 0;
};
std::optional<TraceParent> ParseTraceParent(std::string_view value);
std::string FormatTraceParent(const TraceId& trace, const SpanId& span, uint8_t flags);

// W3C Trace Context Level 2 `tracestate`: the values of every `tracestate` field of one
// message, in wire order (RFC 9110 §5.3 combines them with ','). Returns the list
// normalised ("k=v,k2=v2": OWS around members and empty members gone, later duplicates of
// a key dropped, cut to kMaxTraceStateBytes by whole members), "" for an empty list, or
// nullopt when any member breaks the grammar or there are more than 32: then the whole
// tracestate is discarded. Call it only when the message's traceparent was valid.
inline constexpr size_t kMaxTraceStateBytes = 4096;
std::optional<std::string> ParseTraceState(std::span<const std::string_view> fields);

enum class SpanKind : int {
  kUnspecified = 0,
  kInternal = 1,
  kServer = 2,
  kClient = 3,
  kProducer = 4,
  kConsumer = 5,
};
std::string_view SpanKindName(SpanKind kind);  // "SERVER", ...

enum class StatusCode : int { kUnset = 0, kOk = 1, kError = 2 };

// A string array (gen_ai.response.finish_reasons, say) is the one array type spans carry.
using StringArray = std::vector<std::string>;
using AttributeValue = std::variant<std::string, int64_t, double, bool, StringArray>;

// An attribute's key. Nearly every key is a name the code knows at compile time (the
// semantic conventions' "http.request.method", "db.system.name", ...): a string literal is
// held as a view of itself, with no allocation or copy, however many spans carry it. A key
// made at run time (a configured header or label name) owns a copy of its bytes.
//
// The literal constructor is consteval, so only a constant string can take the no-copy
// path: a char buffer, a std::string or a string_view always goes through the copy.
class AttrKey {
 public:
  AttrKey() = default;
  template <size_t N>
  consteval AttrKey(const char (&literal)[N])  // NOLINT(google-explicit-constructor)
      : data_(literal), size_(static_cast<uint32_t>(N - 1)) {}
  AttrKey(std::string_view s) { Copy(s); }    // NOLINT(google-explicit-constructor)
  AttrKey(const std::string& s) { Copy(s); }  // NOLINT(google-explicit-constructor)
  AttrKey(const AttrKey& o) : data_(o.data_), size_(o.size_) {
    if (o.owned_) Copy(o.view());
  }
  AttrKey(AttrKey&& o) noexcept : data_(o.data_), size_(o.size_), owned_(o.owned_) {
    o.data_ = "";
    o.size_ = 0;
    o.owned_ = false;
  }
  AttrKey& operator=(const AttrKey& o) {
    if (this != &o) *this = AttrKey(o);
    return *this;
  }
  AttrKey& operator=(AttrKey&& o) noexcept {
    if (this != &o) {
      Release();
      data_ = o.data_;
      size_ = o.size_;
      owned_ = o.owned_;
      o.data_ = "";
      o.size_ = 0;
      o.owned_ = false;
    }
    return *this;
  }
  ~AttrKey() { Release(); }

  std::string_view view() const { return {data_, size_}; }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Whether this key views a literal (no allocation); for tests.
  bool is_static() const { return !owned_; }
  // Bytes allocated for the key (0 for a literal): for memory accounting.
  size_t heap_bytes() const { return owned_ ? size_ + 1 : 0; }

  friend bool operator==(const AttrKey& a, const AttrKey& b) { return a.view() == b.view(); }
  friend bool operator==(const AttrKey& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(const AttrKey& a, const std::string& b) { return a.view() == b; }
  friend bool operator==(const AttrKey& a, const char* b) { return a.view() == b; }
  friend auto operator<=>(const AttrKey& a, const AttrKey& b) { return a.view() <=> b.view(); }

 private:
  void Copy(std::string_view s);
  void Release() {
    if (owned_) delete[] data_;
  }

  const char* data_ = "";
  uint32_t size_ = 0;
  bool owned_ = false;
};

std::ostream& operator<<(std::ostream& os, const AttrKey& key);

struct Attribute {
  AttrKey key;
  AttributeValue value;
};

struct SpanEvent {
  std::string name;
  uint64_t time_unix_nano = 0;
  std::vector<Attribute> attributes;
};

struct SpanLink {
  TraceId trace_id;
  SpanId span_id;
  std::string trace_state;
  std::vector<Attribute> attributes;
};

// Resource attributes of one watched process (service.name, process.pid, ...). Shared by
// every span of that process; immutable once built.
struct Resource {
  std::vector<Attribute> attributes;
};

struct Span {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;    // invalid (all zero) for a root span
  uint8_t trace_flags = 1;  // W3C flags; bit 0 = sampled
  std::string trace_state;
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  uint64_t start_time_unix_nano = 0;
  uint64_t end_time_unix_nano = 0;
  std::vector<Attribute> attributes;
  std::vector<SpanEvent> events;
  std::vector<SpanLink> links;
  StatusCode status_code = StatusCode::kUnset;
  std::string status_message;
  std::shared_ptr<const Resource> resource;

  // The attribute with this key, or nullptr.
  const AttributeValue* Find(std::string_view key) const;
  // The string attribute with this key, or nullptr (absent, or of another type).
  const std::string* FindString(std::string_view key) const;
  // Sets the attribute: replaces the value of an existing key, else appends.
  void Set(AttrKey key, AttributeValue value);
};

// The instrumentation scope kspan reports spans under.
inline constexpr std::string_view kScopeName = "kspan";

}  // namespace kspan::model
