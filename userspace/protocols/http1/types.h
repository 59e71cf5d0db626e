// HTTP/1.x frames and records: what the HTTP/1 parser hands the correlator.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/common/timing.h"
#include "protocols/common/unanswered.h"

namespace kspan::protocols::http1 {

struct TraceContextFields;
class Message;
TraceContextFields TraceContextOf(const Message& m);

// One request or response as seen on the wire.
//
// The head's text (start line fields, header names and values) and the table of where
// each field is live in one buffer the message owns: the parser copies a head's bytes
// there once and appends the table, so a message costs one allocation and moves as
// cheaply as a string. The accessors return views into that buffer: valid until the
// message is modified, moved or destroyed. The setters (HTTP/2, tests) append to it.
class Message {
 public:
  // Request line (requests only): the method as sent, e.g. "GET"; the request-target as
  // sent, e.g. "/a/b?x=1".
  std::string_view method() const { return View(method_); }
  std::string_view target() const { return View(target_); }
  // Status line (responses only).
  int status_code = 0;
  std::string_view reason() const { return View(reason_); }
  // "1.0" or "1.1" ("2" for HTTP/2).
  std::string_view version() const { return View(version_); }

  void set_method(std::string_view v) { method_ = Append(v); }
  void set_target(std::string_view v) { target_ = Append(v); }
  void set_reason(std::string_view v) { reason_ = Append(v); }
  void set_version(std::string_view v) { version_ = Append(v); }

  // The header fields in wire order, names as sent: a range of (name, value) views.
  // Use Header() for case-insensitive lookup.
  class Headers;
  Headers headers() const;
  std::pair<std::string_view, std::string_view> HeaderAt(size_t i) const;
  void AddHeader(std::string_view name, std::string_view value);
  void ClearHeaders();
  void SetHeaders(std::initializer_list<std::pair<std::string_view, std::string_view>> fields);
  template <typename Range>
  void SetHeaders(const Range& fields) {
    ClearHeaders();
    for (const auto& [name, value] : fields) AddHeader(name, value);
  }

  // The value of the first header with this name (ASCII case-insensitive), or empty.
  // Names the consumers ask for (Host, Content-Length, traceparent…) are indexed as the
  // fields are added: no scan.
  std::string_view Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;

  // For a parser: where a field or start-line part lies in the head given to SetHead.
  // Trivial types (no initialisers: Slice{} is empty), so a parser's array of them on the
  // stack costs nothing until used.
  struct Slice {
    uint32_t off;
    uint32_t len;
  };
  struct HeadField {
    Slice name, value;
  };
  // Header names the message indexes (the ones consumers ask for), so Header() finds them
  // without a scan; bit k of known_repeated_ is name k.
  enum KnownName : uint8_t {
    kHost,
    kUserAgent,
    kContentLength,
    kTransferEncoding,
    kContentType,
    kContentEncoding,
    kTraceparent,
    kTracestate,
    kForwarded,
    kXForwardedFor,
    kXForwardedHost,
    kXForwardedProto,
    kUpgrade,
    kMcpMethod,
    kMcpName,
    kMcpSessionId,
    kMcpProtocolVersion,
    kA2aVersion,
    kGrpcStatus,
    kGrpcMessage,
  };
  static constexpr uint8_t kOtherName = 0xff;
  // Which known name `name` is (ASCII case-insensitive), or kOtherName.
  static uint8_t ClassifyName(std::string_view name);

  // Replaces the head: `head`'s bytes are copied once, the parts are slices of it.
  // `names`, when given, holds ClassifyName of each field's name (a parser that classified
  // them already); otherwise they are classified here.
  void SetHead(std::string_view head, Slice method, Slice target, Slice reason, Slice version,
               const HeadField* fields, size_t field_count, const uint8_t* names = nullptr);

  // Payload size in bytes: Content-Length, the sum of chunk sizes for chunked, or the
  // bytes up to close for a response delimited by close. Counted even where kspan did not
  // capture the bytes (holes).
  uint64_t body_size = 0;
  // The first bytes of the payload (decoded if chunked), at most the parser's body
  // capture limit; shorter when bytes fell in holes.
  std::string body_prefix;
  // Part of the body fell in a hole (not captured); body_prefix may be short.
  bool body_truncated = false;
  // The head's framing fields are invalid (Content-Length values that differ or are not
  // numbers, a request Transfer-Encoding whose last coding is not chunked): where the
  // message ends is unknown, so nothing after it in its direction is parsed (RFC 9112
  // §6.3: the recipient must treat it as an unrecoverable error and close).
  bool framing_invalid = false;

  // Wide bodies: a request that Limits::wide_body_request picks (an LLM API call), and its
  // response, keep up to Limits::max_wide_body_prefix bytes in body_prefix, then the last
  // Limits::max_wide_body_tail bytes of the rest in body_tail (decoded offset
  // body_tail_offset), and body_marks: where in the decoded body each syscall's bytes
  // begin and when they moved (at most kMaxBodyMarks, oldest first), so a stream's events
  // can be timed.
  struct BodyMark {
    uint64_t offset = 0;  // decoded body offset
    uint64_t ns = 0;      // Unix ns of the syscall that moved it (as timing.start_ns)
  };
  static constexpr size_t kMaxBodyMarks = 1024;
  bool wide_body = false;
  std::string body_tail;
  uint64_t body_tail_offset = 0;
  std::vector<BodyMark> body_marks;

  // The syscalls that moved the first and last byte of this message (the first is the
  // entry of a send or the exit of a receive), their threads and event-loop turns.
  Timing timing;

 private:
  friend TraceContextFields TraceContextOf(const Message& m);
  static constexpr size_t kKnownFields = kGrpcMessage + 1;
  static constexpr uint8_t kNoField = 0xff;

  std::string_view View(Slice s) const { return std::string_view(text_.data() + s.off, s.len); }
  size_t field_count() const { return field_count_; }
  HeadField FieldAt(size_t i) const;
  // Appends text; returns where it went.
  Slice Append(std::string_view v);
  void IndexField(uint8_t name, size_t index);
  // The first field with this name (ASCII case-insensitive), or npos.
  size_t FindField(std::string_view name) const;

  // Text and the field table (HeadField each, unaligned) at table_off_, with room for
  // table_cap_ fields. A parsed message: the head, then the table. A built one
  // (AddHeader): text appended as it comes; a full table moves to the end with twice the
  // room, so building n fields copies O(n) bytes (the old table stays behind, unused).
  std::string text_;
  uint32_t table_off_ = 0;
  uint32_t field_count_ = 0;
  uint32_t table_cap_ = 0;
  Slice method_{}, target_{}, reason_{}, version_{};
  // Index of the first field with each known name, kNoField if none (or the field's index
  // is kNoField or more: then the name is searched); bit k of known_repeated_: known name
  // k appears more than once.
  std::array<uint8_t, kKnownFields> known_ = NoKnownFields();
  uint32_t known_repeated_ = 0;

  static constexpr std::array<uint8_t, kKnownFields> NoKnownFields() {
    std::array<uint8_t, kKnownFields> a{};
    a.fill(kNoField);
    return a;
  }
};

// A message's header fields as (name, value) views, in wire order.
class Message::Headers {
 public:
  using value_type = std::pair<std::string_view, std::string_view>;
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Headers::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = value_type;
    iterator() = default;
    iterator(const Message* m, size_t i) : m_(m), i_(i) {}
    value_type operator*() const { return m_->HeaderAt(i_); }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    iterator operator++(int) {
      iterator t = *this;
      ++i_;
      return t;
    }
    bool operator==(const iterator& o) const { return i_ == o.i_; }

   private:
    const Message* m_ = nullptr;
    size_t i_ = 0;
  };

  explicit Headers(const Message* m) : m_(m) {}
  iterator begin() const { return iterator(m_, 0); }
  iterator end() const { return iterator(m_, size()); }
  size_t size() const { return m_->field_count(); }
  bool empty() const { return size() == 0; }
  value_type operator[](size_t i) const { return m_->HeaderAt(i); }

 private:
  const Message* m_;
};

inline Message::Headers Message::headers() const {
  return Headers(this);
}

// A message's W3C Trace Context fields (Level 2, "traceparent Header" and "tracestate
// Header"; names ASCII case-insensitive). `traceparent`: the value of the one traceparent
// field, without OWS; empty when there is none or there are two or more (ambiguous: the
// W3C suite's test_traceparent_duplicated expects a new trace). `tracestate`: every
// tracestate field joined in order with ',' (RFC 9110 §5.3), only when `traceparent` is
// set; its grammar is model::ParseTraceState's, applied once the traceparent proved valid.
struct TraceContextFields {
  std::string traceparent;
  std::string tracestate;
};
TraceContextFields TraceContextOf(const Message& m);

// A request and the final (non-1xx) response to it. `response_missing` is set when the
// connection closed, or the stream became unparseable, before a response came; then
// `unanswered` says whether the server failed to answer or kspan did not see the answer.
struct Record {
  uint64_t seq = 0;  // the request's number on its connection (protocols::RequestStart::seq)
  Message request;
  Message response;
  bool response_missing = false;
  Unanswered unanswered = Unanswered::kNoResponse;
  // Informational (1xx) responses seen before the final one, e.g. 100 Continue.
  std::vector<int> informational_statuses;
};

}  // namespace kspan::protocols::http1
