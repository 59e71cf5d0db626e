#include "exporters/otlp_proto.h"

#include <kspan/version.h>

#include <cassert>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "common/utf8.h"
#include "exporters/span_groups.h"

namespace kspan::exporters {
namespace {

using otlp_pb::common::v1::AnyValue;
using otlp_pb::common::v1::KeyValue;

template <size_t N>
void SetBytes(const std::array<uint8_t, N>& id, std::string* out) {
  out->assign(reinterpret_cast<const char*>(id.data()), N);
}

void SetAnyValue(const model::AttributeValue& value, AnyValue* out) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    out->set_string_value(ValidUtf8(*s));
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    out->set_int_value(*i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    out->set_double_value(*d);
  } else if (const auto* b = std::get_if<bool>(&value)) {
    out->set_bool_value(*b);
  } else if (const auto* arr = std::get_if<model::StringArray>(&value)) {
    auto* values = out->mutable_array_value()->mutable_values();
    for (const std::string& s : *arr) values->Add()->set_string_value(ValidUtf8(s));
  }
}

void AddAttributes(const std::vector<model::Attribute>& attributes,
                   google::protobuf::RepeatedPtrField<KeyValue>* out) {
  out->Reserve(static_cast<int>(attributes.size()));
  for (const auto& a : attributes) {
    KeyValue* kv = out->Add();
    kv->set_key(ValidUtf8(a.key));
    SetAnyValue(a.value, kv->mutable_value());
  }
}

}  // namespace

void ToProtoSpan(const model::Span& span, otlp_pb::trace::v1::Span* out) {
  SetBytes(span.trace_id.bytes, out->mutable_trace_id());
  SetBytes(span.span_id.bytes, out->mutable_span_id());
  if (!span.trace_state.empty()) out->set_trace_state(ValidUtf8(span.trace_state));
  if (span.parent_span_id.IsValid()) SetBytes(span.parent_span_id.bytes, out->mutable_parent_span_id());
  out->set_flags(span.trace_flags);
  out->set_name(ValidUtf8(span.name));
  out->set_kind(static_cast<otlp_pb::trace::v1::Span::SpanKind>(span.kind));
  out->set_start_time_unix_nano(span.start_time_unix_nano);
  out->set_end_time_unix_nano(span.end_time_unix_nano);
  AddAttributes(span.attributes, out->mutable_attributes());
  for (const auto& e : span.events) {
    auto* pe = out->add_events();
    pe->set_time_unix_nano(e.time_unix_nano);
    pe->set_name(ValidUtf8(e.name));
    AddAttributes(e.attributes, pe->mutable_attributes());
  }
  for (const auto& l : span.links) {
    auto* pl = out->add_links();
    SetBytes(l.trace_id.bytes, pl->mutable_trace_id());
    SetBytes(l.span_id.bytes, pl->mutable_span_id());
    if (!l.trace_state.empty()) pl->set_trace_state(ValidUtf8(l.trace_state));
    AddAttributes(l.attributes, pl->mutable_attributes());
  }
  auto* status = out->mutable_status();
  status->set_code(static_cast<otlp_pb::trace::v1::Status::StatusCode>(span.status_code));
  if (!span.status_message.empty()) status->set_message(ValidUtf8(span.status_message));
}

void ToExportRequest(std::span<const model::Span> spans,
                     otlp_pb::collector::trace::v1::ExportTraceServiceRequest* request) {
  request->Clear();
  const ResourceGroups groups = GroupByResource(spans);
  for (size_t g = 0; g < groups.resources.size(); ++g) {
    auto* rs = request->add_resource_spans();
    auto* resource = rs->mutable_resource();  // present, possibly empty: as the JSON writes it
    if (groups.resources[g] != nullptr)
      AddAttributes(groups.resources[g]->attributes, resource->mutable_attributes());
    auto* ss = rs->add_scope_spans();
    ss->mutable_scope()->set_name(std::string(model::kScopeName));
    ss->mutable_scope()->set_version(KSPAN_VERSION);
    auto* out = ss->mutable_spans();
    out->Reserve(static_cast<int>(groups.start[g + 1] - groups.start[g]));
    for (uint32_t k = groups.start[g]; k < groups.start[g + 1]; ++k)
      ToProtoSpan(spans[groups.order[k]], out->Add());
  }
}

namespace {

// ---- The wire format, written directly (AppendExportRequestProto) ----
//
// Field for field what the generated code serializes for the messages ToProtoSpan and
// ToExportRequest fill: fields in number order; proto3 scalars and strings only when not
// zero / empty; oneof members (AnyValue) and the submessages those functions create
// (KeyValue.value, Span.status, ResourceSpans.resource, ScopeSpans.scope) always. Each
// message's size is computed by a *Size function mirroring its writer. Text is made valid
// UTF-8 on the way (TextField), as ToProtoSpan makes it.

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

constexpr uint32_t Tag(uint32_t field, WireType type) {
  return field << 3 | type;
}

inline size_t VarintSize(uint64_t v) {
  return static_cast<size_t>((63 - __builtin_clzll(v | 1)) * 9 + 73) / 64;
}

inline char* Varint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

// A length-delimited field of a one-byte tag (fields 1-15) holding n bytes.
inline size_t LenFieldSize(size_t n) {
  return 1 + VarintSize(n) + n;
}

inline char* LenHeader(char* p, uint32_t field, size_t n) {
  *p++ = static_cast<char>(Tag(field, kLen));
  if (n < 0x80) {
    *p++ = static_cast<char>(n);
    return p;
  }
  return Varint(p, n);
}

inline char* LenField(char* p, uint32_t field, std::string_view bytes) {
  return CopyBytes(LenHeader(p, field, bytes.size()), bytes);
}

// A `string` field: its text made valid UTF-8 (common/utf8.h), as protobuf requires.
inline size_t TextFieldSize(std::string_view text) {
  return LenFieldSize(ValidUtf8Size(text));
}

inline char* TextField(char* p, uint32_t field, std::string_view text) {
  const size_t n = ValidUtf8Size(text);  // text.size() exactly when it is valid already
  p = LenHeader(p, field, n);
  return n == text.size() ? CopyBytes(p, text) : CopyValidUtf8(p, text);
}

inline char* Fixed64Field(char* p, uint32_t field, uint64_t v) {
  *p++ = static_cast<char>(Tag(field, kFixed64));
  std::memcpy(p, &v, 8);  // little-endian, as the wire is (x86-64, arm64)
  return p + 8;
}

// An enum or int64 as protobuf writes it: negative values sign-extended to 10 bytes.
inline uint64_t VarintValue(int64_t v) {
  return static_cast<uint64_t>(v);
}

// Array elements' content: each an AnyValue holding a string.
size_t ArrayValueSize(const model::StringArray& arr) {
  size_t n = 0;
  for (const std::string& e : arr) n += LenFieldSize(TextFieldSize(e));
  return n;
}

// AnyValue's content. One dispatch on the variant's index, as in Attributes.
[[gnu::always_inline]] inline size_t AnyValueSize(const model::AttributeValue& value) {
  switch (value.index()) {
    case 0: return TextFieldSize(std::get<0>(value));
    case 1: return 1 + VarintSize(VarintValue(std::get<1>(value)));
    case 2: return 9;
    case 3: return 2;
    case 4: return LenFieldSize(ArrayValueSize(std::get<4>(value)));
    default: return 0;
  }
}
static_assert(std::is_same_v<std::variant_alternative_t<0, model::AttributeValue>, std::string> &&
              std::is_same_v<std::variant_alternative_t<1, model::AttributeValue>, int64_t> &&
              std::is_same_v<std::variant_alternative_t<2, model::AttributeValue>, double> &&
              std::is_same_v<std::variant_alternative_t<3, model::AttributeValue>, bool> &&
              std::is_same_v<std::variant_alternative_t<4, model::AttributeValue>, model::StringArray>);

// KeyValue's content.
inline size_t KeyValueSize(const model::Attribute& a) {
  const std::string_view key(a.key);
  return (key.empty() ? 0 : TextFieldSize(key)) + LenFieldSize(AnyValueSize(a.value));
}

size_t AttributesSize(const std::vector<model::Attribute>& attributes) {
  size_t n = 0;
  for (const model::Attribute& a : attributes) n += LenFieldSize(KeyValueSize(a));
  return n;
}

// Each attribute as a KeyValue in `field`: the KeyValue's header, its key, then its
// AnyValue, sized and written in one dispatch.
char* Attributes(char* p, uint32_t field, const std::vector<model::Attribute>& attributes) {
  for (const model::Attribute& a : attributes) {
    const std::string_view key(a.key);
    const size_t key_field = key.empty() ? 0 : TextFieldSize(key);
    const model::AttributeValue& v = a.value;
    const size_t value = AnyValueSize(v);
    p = LenHeader(p, field, key_field + LenFieldSize(value));
    if (!key.empty()) p = TextField(p, 1, key);
    p = LenHeader(p, 2, value);
    switch (v.index()) {
      case 0: p = TextField(p, 1, std::get<0>(v)); break;
      case 1:
        *p++ = static_cast<char>(Tag(3, kVarint));
        p = Varint(p, VarintValue(std::get<1>(v)));
        break;
      case 2: {
        uint64_t bits;
        std::memcpy(&bits, &std::get<2>(v), 8);
        p = Fixed64Field(p, 4, bits);
        break;
      }
      case 3:
        *p++ = static_cast<char>(Tag(2, kVarint));
        *p++ = std::get<3>(v) ? 1 : 0;
        break;
      case 4: {
        const model::StringArray& arr = std::get<4>(v);
        p = LenHeader(p, 5, ArrayValueSize(arr));
        for (const std::string& e : arr) {
          p = LenHeader(p, 1, TextFieldSize(e));
          p = TextField(p, 1, e);
        }
        break;
      }
      default: break;
    }
  }
  return p;
}

size_t EventSize(const model::SpanEvent& e) {
  return (e.time_unix_nano != 0 ? 9 : 0) + (e.name.empty() ? 0 : TextFieldSize(e.name)) +
         AttributesSize(e.attributes);
}

size_t LinkSize(const model::SpanLink& l) {
  return LenFieldSize(16) + LenFieldSize(8) + (l.trace_state.empty() ? 0 : TextFieldSize(l.trace_state)) +
         AttributesSize(l.attributes);
}

size_t StatusSize(const model::Span& span) {
  const auto code = static_cast<int64_t>(span.status_code);
  return (span.status_message.empty() ? 0 : TextFieldSize(span.status_message)) +
         (code != 0 ? 1 + VarintSize(VarintValue(code)) : 0);
}

// Span's content.
size_t SpanSize(const model::Span& span) {
  const auto kind = static_cast<int64_t>(span.kind);
  size_t n = LenFieldSize(16) + LenFieldSize(8);
  if (!span.trace_state.empty()) n += TextFieldSize(span.trace_state);
  if (span.parent_span_id.IsValid()) n += LenFieldSize(8);
  if (!span.name.empty()) n += TextFieldSize(span.name);
  if (kind != 0) n += 1 + VarintSize(VarintValue(kind));
  if (span.start_time_unix_nano != 0) n += 9;
  if (span.end_time_unix_nano != 0) n += 9;
  n += AttributesSize(span.attributes);
  for (const model::SpanEvent& e : span.events) n += LenFieldSize(EventSize(e));
  for (const model::SpanLink& l : span.links) n += LenFieldSize(LinkSize(l));
  n += LenFieldSize(StatusSize(span));
  if (span.trace_flags != 0) n += 2 + 4;  // field 16: a two-byte tag
  return n;
}

template <size_t N>
inline char* Id(char* p, uint32_t field, const std::array<uint8_t, N>& bytes) {
  return LenField(p, field, std::string_view(reinterpret_cast<const char*>(bytes.data()), N));
}

// Span's content, SpanSize(span) bytes.
char* SpanContent(char* p, const model::Span& span) {
  const auto kind = static_cast<int64_t>(span.kind);
  p = Id(p, 1, span.trace_id.bytes);
  p = Id(p, 2, span.span_id.bytes);
  if (!span.trace_state.empty()) p = TextField(p, 3, span.trace_state);
  if (span.parent_span_id.IsValid()) p = Id(p, 4, span.parent_span_id.bytes);
  if (!span.name.empty()) p = TextField(p, 5, span.name);
  if (kind != 0) {
    *p++ = static_cast<char>(Tag(6, kVarint));
    p = Varint(p, VarintValue(kind));
  }
  if (span.start_time_unix_nano != 0) p = Fixed64Field(p, 7, span.start_time_unix_nano);
  if (span.end_time_unix_nano != 0) p = Fixed64Field(p, 8, span.end_time_unix_nano);
  p = Attributes(p, 9, span.attributes);
  for (const model::SpanEvent& e : span.events) {
    p = LenHeader(p, 11, EventSize(e));
    if (e.time_unix_nano != 0) p = Fixed64Field(p, 1, e.time_unix_nano);
    if (!e.name.empty()) p = TextField(p, 2, e.name);
    p = Attributes(p, 3, e.attributes);
  }
  for (const model::SpanLink& l : span.links) {
    p = LenHeader(p, 13, LinkSize(l));
    p = Id(p, 1, l.trace_id.bytes);
    p = Id(p, 2, l.span_id.bytes);
    if (!l.trace_state.empty()) p = TextField(p, 3, l.trace_state);
    p = Attributes(p, 4, l.attributes);
  }
  p = LenHeader(p, 15, StatusSize(span));
  if (!span.status_message.empty()) p = TextField(p, 2, span.status_message);
  if (span.status_code != model::StatusCode::kUnset) {
    *p++ = static_cast<char>(Tag(3, kVarint));
    p = Varint(p, VarintValue(static_cast<int64_t>(span.status_code)));
  }
  if (span.trace_flags != 0) {
    *p++ = static_cast<char>(0x80 | (Tag(16, kFixed32) & 0x7F));
    *p++ = static_cast<char>(Tag(16, kFixed32) >> 7);
    const uint32_t flags = span.trace_flags;
    std::memcpy(p, &flags, 4);
    p += 4;
  }
  return p;
}

}  // namespace

void AppendSpanProto(const model::Span& span, WriteBuffer* out) {
  const size_t n = SpanSize(span);
  char* const start = out->Room(n);
  char* const end = SpanContent(start, span);
  assert(static_cast<size_t>(end - start) == n && "SpanSize disagrees with SpanContent");
  out->Commit(end);
}

void AppendExportRequestProto(std::span<const model::Span> spans, WriteBuffer* out) {
  const ResourceGroups groups = GroupByResource(spans);
  const std::string_view version = KSPAN_VERSION;
  static_assert(!model::kScopeName.empty() && sizeof(KSPAN_VERSION) > 1,
                "scope strings are written unconditionally");
  const size_t scope = LenFieldSize(model::kScopeName.size()) + LenFieldSize(version.size());
  // Pass 1: every size. Span sizes are kept for pass 2; the rest is cheap to redo.
  std::vector<uint32_t> span_size(spans.size());
  std::vector<size_t> scope_spans(groups.resources.size());
  size_t total = 0;
  for (size_t g = 0; g < groups.resources.size(); ++g) {
    const model::Resource* r = groups.resources[g];
    size_t ss = LenFieldSize(scope);
    for (uint32_t k = groups.start[g]; k < groups.start[g + 1]; ++k) {
      const uint32_t i = groups.order[k];
      span_size[i] = static_cast<uint32_t>(SpanSize(spans[i]));
      ss += LenFieldSize(span_size[i]);
    }
    scope_spans[g] = ss;
    total += LenFieldSize(LenFieldSize(r != nullptr ? AttributesSize(r->attributes) : 0) + LenFieldSize(ss));
  }
  // Pass 2: the bytes, in exactly `total` of them.
  char* const start = out->Room(total);
  char* p = start;
  for (size_t g = 0; g < groups.resources.size(); ++g) {
    const model::Resource* r = groups.resources[g];
    const size_t resource = r != nullptr ? AttributesSize(r->attributes) : 0;
    p = LenHeader(p, 1, LenFieldSize(resource) + LenFieldSize(scope_spans[g]));  // ResourceSpans
    p = LenHeader(p, 1, resource);                                               // .resource
    if (r != nullptr) p = Attributes(p, 1, r->attributes);
    p = LenHeader(p, 2, scope_spans[g]);  // .scope_spans[0]
    p = LenHeader(p, 1, scope);           // .scope
    p = LenField(p, 1, model::kScopeName);
    p = LenField(p, 2, version);
    for (uint32_t k = groups.start[g]; k < groups.start[g + 1]; ++k) {
      const uint32_t i = groups.order[k];
      p = LenHeader(p, 2, span_size[i]);  // .spans
      p = SpanContent(p, spans[i]);
    }
  }
  assert(static_cast<size_t>(p - start) == total && "a size function disagrees with its writer");
  out->Commit(p);
}

}  // namespace kspan::exporters
