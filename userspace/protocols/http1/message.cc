#include <algorithm>
#include <cstring>
#include <string>

#include "common/strings.h"
#include "protocols/http1/types.h"

namespace kspan::protocols::http1 {
namespace {

// The names Message::KnownName lists are the ones consumers look up
// (correlator/http_span.cc, agent_spans.cc, genai_span.cc, http2_span.cc; TraceContextOf;
// the parser's framing fields), lower case below.
constexpr uint8_t kOther = Message::kOtherName;

// Eight bytes of a name equal eight of a known (lower-case) one, ignoring ASCII case: the
// name's bytes get 0x20 set where the known one has a letter (its bytes >= 'a' are all
// letters), then compare as one word.
inline bool Same8(const char* name, const char* lower) {
  uint64_t a, b;
  std::memcpy(&a, name, 8);
  std::memcpy(&b, lower, 8);
  const uint64_t letters = ((b + 0x1f1f1f1f1f1f1f1fULL) & 0x8080808080808080ULL) >> 2;
  return (a | letters) == b;
}

// `name` (N bytes) equals the known name `lower` ignoring ASCII case.
template <size_t N>
bool Same(std::string_view name, const char (&lower)[N + 1]) {
  if constexpr (N < 8) {
    char a[8] = {}, b[8] = {};
    std::memcpy(a, name.data(), N);
    std::memcpy(b, lower, N);
    return Same8(a, b);
  } else {
    for (size_t i = 0; i + 8 <= N; i += 8) {
      if (!Same8(name.data() + i, lower + i)) return false;
    }
    return N % 8 == 0 || Same8(name.data() + N - 8, lower + N - 8);  // the last 8, overlapping
  }
}

template <size_t N>
uint8_t Is(std::string_view name, const char (&lower)[N + 1], uint8_t k) {
  return Same<N>(name, lower) ? k : kOther;
}

}  // namespace

uint8_t Message::ClassifyName(std::string_view name) {
  switch (name.size()) {
    case 4: return Is<4>(name, "host", kHost);
    case 7: return Is<7>(name, "upgrade", kUpgrade);
    case 8: return Is<8>(name, "mcp-name", kMcpName);
    case 9: return Is<9>(name, "forwarded", kForwarded);
    case 10:
      switch (AsciiLower(name[0])) {
        case 'u': return Is<10>(name, "user-agent", kUserAgent);
        case 't': return Is<10>(name, "tracestate", kTracestate);
        case 'm': return Is<10>(name, "mcp-method", kMcpMethod);
        default: return kOther;
      }
    case 11:
      switch (AsciiLower(name[0])) {
        case 't': return Is<11>(name, "traceparent", kTraceparent);
        case 'a': return Is<11>(name, "a2a-version", kA2aVersion);
        case 'g': return Is<11>(name, "grpc-status", kGrpcStatus);
        default: return kOther;
      }
    case 12:
      switch (AsciiLower(name[0])) {
        case 'c': return Is<12>(name, "content-type", kContentType);
        case 'g': return Is<12>(name, "grpc-message", kGrpcMessage);
        default: return kOther;
      }
    case 14:
      switch (AsciiLower(name[0])) {
        case 'c': return Is<14>(name, "content-length", kContentLength);
        case 'm': return Is<14>(name, "mcp-session-id", kMcpSessionId);
        default: return kOther;
      }
    case 15: return Is<15>(name, "x-forwarded-for", kXForwardedFor);
    case 16:
      switch (AsciiLower(name[0])) {
        case 'c': return Is<16>(name, "content-encoding", kContentEncoding);
        case 'x': return Is<16>(name, "x-forwarded-host", kXForwardedHost);
        default: return kOther;
      }
    case 17:
      switch (AsciiLower(name[0])) {
        case 't': return Is<17>(name, "transfer-encoding", kTransferEncoding);
        case 'x': return Is<17>(name, "x-forwarded-proto", kXForwardedProto);
        default: return kOther;
      }
    case 20: return Is<20>(name, "mcp-protocol-version", kMcpProtocolVersion);
    default: return kOther;
  }
}

Message::HeadField Message::FieldAt(size_t i) const {
  HeadField f;
  std::memcpy(&f, text_.data() + table_off_ + i * sizeof(HeadField), sizeof f);
  return f;
}

std::pair<std::string_view, std::string_view> Message::HeaderAt(size_t i) const {
  const HeadField f = FieldAt(i);
  return {View(f.name), View(f.value)};
}

Message::Slice Message::Append(std::string_view v) {
  const Slice s{static_cast<uint32_t>(text_.size()), static_cast<uint32_t>(v.size())};
  text_.append(v);  // safe when v views text_ itself
  return s;
}

void Message::IndexField(uint8_t k, size_t index) {
  static_assert(kKnownFields <= 32);
  if (k == kOther) return;
  if (known_[k] != kNoField) {
    known_repeated_ |= uint32_t{1} << k;
  } else if (index < kNoField) {
    known_[k] = static_cast<uint8_t>(index);
  }
}

void Message::AddHeader(std::string_view name, std::string_view value) {
  const auto owned = [this](std::string_view v) {
    return v.data() >= text_.data() && v.data() < text_.data() + text_.size();
  };
  if (owned(name) || owned(value)) {
    // Views of this message's own text: the appends below may move it.
    const std::string n(name), v(value);
    AddHeader(n, v);
    return;
  }
  HeadField f;
  f.name = Append(name);
  f.value = Append(value);
  if (field_count_ == table_cap_) {
    // Full: the table moves to the end with twice the room.
    const uint32_t cap = std::max<uint32_t>(8, 2 * table_cap_);
    const size_t off = text_.size();
    text_.resize(off + size_t{cap} * sizeof(HeadField));
    std::memmove(text_.data() + off, text_.data() + table_off_, size_t{field_count_} * sizeof(HeadField));
    table_off_ = static_cast<uint32_t>(off);
    table_cap_ = cap;
  }
  std::memcpy(text_.data() + table_off_ + size_t{field_count_} * sizeof(HeadField), &f, sizeof f);
  ++field_count_;
  IndexField(ClassifyName(View(f.name)), field_count_ - 1);
}

void Message::ClearHeaders() {
  field_count_ = 0;
  known_ = NoKnownFields();
  known_repeated_ = 0;
}

void Message::SetHeaders(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  ClearHeaders();
  for (const auto& [name, value] : fields) AddHeader(name, value);
}

void Message::SetHead(std::string_view head, Slice method, Slice target, Slice reason, Slice version,
                      const HeadField* fields, size_t field_count, const uint8_t* names) {
  const size_t table = field_count * sizeof(HeadField);
  text_.clear();
  text_.reserve(head.size() + table);  // one allocation
  text_.append(head);
  text_.append(reinterpret_cast<const char*>(fields), table);
  table_off_ = static_cast<uint32_t>(head.size());
  field_count_ = static_cast<uint32_t>(field_count);
  table_cap_ = field_count_;
  method_ = method;
  target_ = target;
  reason_ = reason;
  version_ = version;
  known_ = NoKnownFields();
  known_repeated_ = 0;
  for (size_t i = 0; i < field_count; ++i)
    IndexField(names ? names[i] : ClassifyName(View(fields[i].name)), i);
}

size_t Message::FindField(std::string_view name) const {
  const uint8_t k = ClassifyName(name);
  if (k != kOther) {
    if (known_[k] != kNoField) return known_[k];
    if (field_count() <= kNoField) return std::string_view::npos;  // every field is indexed
  }
  const size_t n = field_count();
  for (size_t i = 0; i < n; ++i) {
    const HeadField f = FieldAt(i);
    if (f.name.len == name.size() && EqualsIgnoreCase(View(f.name), name)) return i;
  }
  return std::string_view::npos;
}

std::string_view Message::Header(std::string_view name) const {
  const size_t i = FindField(name);
  return i == std::string_view::npos ? std::string_view() : View(FieldAt(i).value);
}

bool Message::HasHeader(std::string_view name) const {
  return FindField(name) != std::string_view::npos;
}

TraceContextFields TraceContextOf(const Message& m) {
  TraceContextFields out;
  // Most requests carry no traceparent: the index says so without a scan.
  const bool indexed = m.field_count() <= Message::kNoField;
  if (indexed && m.known_[Message::kTraceparent] == Message::kNoField) return out;
  std::string_view traceparent;
  int traceparents = 0;
  if (indexed && !(m.known_repeated_ & (uint32_t{1} << Message::kTraceparent))) {
    traceparent = m.View(m.FieldAt(m.known_[Message::kTraceparent]).value);
    traceparents = 1;
  } else {
    for (const auto& [name, value] : m.headers()) {
      if (EqualsIgnoreCase(name, "traceparent")) {
        traceparent = value;
        ++traceparents;
      }
    }
  }
  if (traceparents != 1) return out;
  out.traceparent = std::string(TrimOws(traceparent));
  if (indexed && m.known_[Message::kTracestate] == Message::kNoField) return out;
  if (indexed && !(m.known_repeated_ & (uint32_t{1} << Message::kTracestate))) {
    out.tracestate = std::string(m.View(m.FieldAt(m.known_[Message::kTracestate]).value));
    return out;
  }
  for (const auto& [name, value] : m.headers()) {
    if (!EqualsIgnoreCase(name, "tracestate")) continue;
    if (!out.tracestate.empty()) out.tracestate += ',';
    out.tracestate.append(value);
  }
  return out;
}

}  // namespace kspan::protocols::http1
