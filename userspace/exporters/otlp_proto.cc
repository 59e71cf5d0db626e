#include "exporters/otlp_proto.h"

#include <kspan/version.h>

#include <string>
#include <variant>
#include <vector>

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
    out->set_string_value(*s);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    out->set_int_value(*i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    out->set_double_value(*d);
  } else if (const auto* b = std::get_if<bool>(&value)) {
    out->set_bool_value(*b);
  } else if (const auto* arr = std::get_if<model::StringArray>(&value)) {
    auto* values = out->mutable_array_value()->mutable_values();
    for (const std::string& s : *arr) values->Add()->set_string_value(s);
  }
}

void AddAttributes(const std::vector<model::Attribute>& attributes,
                   google::protobuf::RepeatedPtrField<KeyValue>* out) {
  out->Reserve(static_cast<int>(attributes.size()));
  for (const auto& a : attributes) {
    KeyValue* kv = out->Add();
    kv->set_key(a.key.data(), a.key.size());
    SetAnyValue(a.value, kv->mutable_value());
  }
}

}  // namespace

void ToProtoSpan(const model::Span& span, otlp_pb::trace::v1::Span* out) {
  SetBytes(span.trace_id.bytes, out->mutable_trace_id());
  SetBytes(span.span_id.bytes, out->mutable_span_id());
  if (!span.trace_state.empty()) out->set_trace_state(span.trace_state);
  if (span.parent_span_id.IsValid()) SetBytes(span.parent_span_id.bytes, out->mutable_parent_span_id());
  out->set_flags(span.trace_flags);
  out->set_name(span.name);
  out->set_kind(static_cast<otlp_pb::trace::v1::Span::SpanKind>(span.kind));
  out->set_start_time_unix_nano(span.start_time_unix_nano);
  out->set_end_time_unix_nano(span.end_time_unix_nano);
  AddAttributes(span.attributes, out->mutable_attributes());
  for (const auto& e : span.events) {
    auto* pe = out->add_events();
    pe->set_time_unix_nano(e.time_unix_nano);
    pe->set_name(e.name);
    AddAttributes(e.attributes, pe->mutable_attributes());
  }
  for (const auto& l : span.links) {
    auto* pl = out->add_links();
    SetBytes(l.trace_id.bytes, pl->mutable_trace_id());
    SetBytes(l.span_id.bytes, pl->mutable_span_id());
    if (!l.trace_state.empty()) pl->set_trace_state(l.trace_state);
    AddAttributes(l.attributes, pl->mutable_attributes());
  }
  auto* status = out->mutable_status();
  status->set_code(static_cast<otlp_pb::trace::v1::Status::StatusCode>(span.status_code));
  if (!span.status_message.empty()) status->set_message(span.status_message);
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

}  // namespace kspan::exporters
