#include "store/span_codec.h"

#include <algorithm>

#include "exporters/otlp_proto.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"

namespace kspan::store {
namespace {

namespace pb = ::opentelemetry::proto;

template <size_t N>
void CopyId(const std::string& from, std::array<uint8_t, N>* to) {
  if (from.size() == N) std::copy(from.begin(), from.end(), to->begin());
}

model::AttributeValue FromAnyValue(const pb::common::v1::AnyValue& v) {
  switch (v.value_case()) {
    case pb::common::v1::AnyValue::kIntValue: return v.int_value();
    case pb::common::v1::AnyValue::kDoubleValue: return v.double_value();
    case pb::common::v1::AnyValue::kBoolValue: return v.bool_value();
    case pb::common::v1::AnyValue::kArrayValue: {
      model::StringArray out;
      for (const auto& e : v.array_value().values()) out.push_back(e.string_value());
      return out;
    }
    default: return v.string_value();
  }
}

void FromKeyValues(const google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>& kvs,
                   std::vector<model::Attribute>* out) {
  out->reserve(static_cast<size_t>(kvs.size()));
  for (const auto& kv : kvs) out->push_back({kv.key(), FromAnyValue(kv.value())});
}

}  // namespace

void EncodeSpan(const model::Span& span, WriteBuffer* out) {
  exporters::AppendSpanProto(span, out);
}

bool DecodeSpan(std::string_view bytes, model::Span* out) {
  pb::trace::v1::Span p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  if (p.trace_id().size() != 16 || p.span_id().size() != 8) return false;
  CopyId(p.trace_id(), &out->trace_id.bytes);
  CopyId(p.span_id(), &out->span_id.bytes);
  CopyId(p.parent_span_id(), &out->parent_span_id.bytes);
  out->trace_flags = static_cast<uint8_t>(p.flags() & 0xff);
  out->trace_state = p.trace_state();
  out->name = p.name();
  out->kind = static_cast<model::SpanKind>(p.kind());
  out->start_time_unix_nano = p.start_time_unix_nano();
  out->end_time_unix_nano = p.end_time_unix_nano();
  FromKeyValues(p.attributes(), &out->attributes);
  for (const auto& e : p.events()) {
    model::SpanEvent ev;
    ev.name = e.name();
    ev.time_unix_nano = e.time_unix_nano();
    FromKeyValues(e.attributes(), &ev.attributes);
    out->events.push_back(std::move(ev));
  }
  for (const auto& l : p.links()) {
    model::SpanLink link;
    CopyId(l.trace_id(), &link.trace_id.bytes);
    CopyId(l.span_id(), &link.span_id.bytes);
    link.trace_state = l.trace_state();
    FromKeyValues(l.attributes(), &link.attributes);
    out->links.push_back(std::move(link));
  }
  out->status_code = static_cast<model::StatusCode>(p.status().code());
  out->status_message = p.status().message();
  return true;
}

void EncodeResource(const model::Resource& resource, std::string* out) {
  // A span carrying the resource's attributes encodes them exactly as the exporters do.
  model::Span carrier;
  carrier.attributes = resource.attributes;
  pb::trace::v1::Span p;
  exporters::ToProtoSpan(carrier, &p);
  pb::resource::v1::Resource r;
  *r.mutable_attributes() = p.attributes();
  r.AppendToString(out);
}

bool DecodeResource(std::string_view bytes, model::Resource* out) {
  pb::resource::v1::Resource r;
  if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  FromKeyValues(r.attributes(), &out->attributes);
  return true;
}

}  // namespace kspan::store
