// OTLP protobuf conversion (no transport): the ExportTraceServiceRequest must say, field
// by field, what the OTLP/JSON encoder (otlp_json.h) writes for the same batch, so file
// and network outputs of one run agree. The protobuf side is turned into OTLP/JSON-shaped
// nlohmann::json here, with the generated accessors only, and compared whole.
#include "exporters/otlp_proto.h"

#include <gtest/gtest.h>
#include <kspan/version.h>

#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "exporters/otlp_json.h"
#include "testing/model_builders.h"

namespace kspan::exporters {
namespace {

using nlohmann::json;
namespace pb = ::opentelemetry::proto;

std::string Hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

json AnyValueJson(const pb::common::v1::AnyValue& v) {
  switch (v.value_case()) {
    case pb::common::v1::AnyValue::kStringValue: return {{"stringValue", v.string_value()}};
    case pb::common::v1::AnyValue::kIntValue: return {{"intValue", std::to_string(v.int_value())}};
    case pb::common::v1::AnyValue::kBoolValue: return {{"boolValue", v.bool_value()}};
    case pb::common::v1::AnyValue::kDoubleValue: {
      const double d = v.double_value();
      if (std::isnan(d)) return {{"doubleValue", "NaN"}};
      if (std::isinf(d)) return {{"doubleValue", d > 0 ? "Infinity" : "-Infinity"}};
      return {{"doubleValue", d}};
    }
    default: ADD_FAILURE() << "unexpected AnyValue case " << v.value_case(); return json::object();
  }
}

void PutAttributes(const google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>& attributes,
                   json* out) {
  if (attributes.empty()) return;
  json a = json::array();
  for (const auto& kv : attributes) a.push_back({{"key", kv.key()}, {"value", AnyValueJson(kv.value())}});
  (*out)["attributes"] = a;
}

json SpanJson(const pb::trace::v1::Span& s) {
  json j;
  j["traceId"] = Hex(s.trace_id());
  j["spanId"] = Hex(s.span_id());
  if (!s.trace_state().empty()) j["traceState"] = s.trace_state();
  if (!s.parent_span_id().empty()) j["parentSpanId"] = Hex(s.parent_span_id());
  j["flags"] = s.flags();
  j["name"] = s.name();
  j["kind"] = static_cast<int>(s.kind());
  j["startTimeUnixNano"] = std::to_string(s.start_time_unix_nano());
  j["endTimeUnixNano"] = std::to_string(s.end_time_unix_nano());
  PutAttributes(s.attributes(), &j);
  EXPECT_EQ(s.dropped_attributes_count(), 0u);
  if (!s.events().empty()) {
    json events = json::array();
    for (const auto& e : s.events()) {
      json je = {{"timeUnixNano", std::to_string(e.time_unix_nano())}, {"name", e.name()}};
      PutAttributes(e.attributes(), &je);
      events.push_back(je);
    }
    j["events"] = events;
  }
  if (!s.links().empty()) {
    json links = json::array();
    for (const auto& l : s.links()) {
      json jl = {{"traceId", Hex(l.trace_id())}, {"spanId", Hex(l.span_id())}};
      if (!l.trace_state().empty()) jl["traceState"] = l.trace_state();
      PutAttributes(l.attributes(), &jl);
      EXPECT_EQ(l.flags(), 0u) << "the JSON encoder writes no link flags";
      links.push_back(jl);
    }
    j["links"] = links;
  }
  EXPECT_TRUE(s.has_status()) << "the JSON encoder always writes a status";
  j["status"] = {{"code", static_cast<int>(s.status().code())}};
  if (!s.status().message().empty()) j["status"]["message"] = s.status().message();
  return j;
}

json RequestJson(const pb::collector::trace::v1::ExportTraceServiceRequest& r) {
  json rs = json::array();
  for (const auto& resource_spans : r.resource_spans()) {
    EXPECT_TRUE(resource_spans.has_resource());
    json resource = json::object();
    PutAttributes(resource_spans.resource().attributes(), &resource);
    json scopes = json::array();
    for (const auto& ss : resource_spans.scope_spans()) {
      json spans = json::array();
      for (const auto& s : ss.spans()) spans.push_back(SpanJson(s));
      scopes.push_back(
          {{"scope", {{"name", ss.scope().name()}, {"version", ss.scope().version()}}}, {"spans", spans}});
    }
    rs.push_back({{"resource", resource}, {"scopeSpans", scopes}});
  }
  return {{"resourceSpans", rs}};
}

using testing::MakeResource;
using testing::SpanIdFrom;
using testing::TraceIdFrom;

// Every field and value type the model has.
model::Span FullSpan(std::shared_ptr<const model::Resource> resource) {
  model::Span s;
  s.trace_id = TraceIdFrom("4bf92f3577b34da6a3ce929d0e0e4736");
  s.span_id = SpanIdFrom("00f067aa0ba902b7");
  s.parent_span_id = SpanIdFrom("b7ad6b7169203331");
  s.trace_flags = 0x01;
  s.trace_state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
  s.name = "GET /api/{id}";
  s.kind = model::SpanKind::kServer;
  s.start_time_unix_nano = 1'700'000'000'123'456'789ULL;
  s.end_time_unix_nano = 18'446'744'073'709'551'615ULL;
  s.attributes.push_back({"http.request.method", std::string("GET")});
  s.attributes.push_back({"http.response.status_code", int64_t{500}});
  s.attributes.push_back({"big.negative", std::numeric_limits<int64_t>::min()});
  s.attributes.push_back({"ratio", 0.25});
  s.attributes.push_back({"nan", std::numeric_limits<double>::quiet_NaN()});
  s.attributes.push_back({"inf", -std::numeric_limits<double>::infinity()});
  s.attributes.push_back({"flag", true});
  s.attributes.push_back({"unicode", std::string("caf\xc3\xa9 \xe2\x9c\x93")});
  s.events.push_back({"exception", 1'700'000'000'200'000'000ULL, {{"exception.type", std::string("E")}}});
  s.events.push_back({"bare", 5, {}});
  s.links.push_back({TraceIdFrom("0af7651916cd43dd8448eb211c80319c"),
                     SpanIdFrom("00f067aa0ba902b8"),
                     "k=v",
                     {{"kspan.link.reason", std::string("ambiguous_parent")}}});
  s.links.push_back(
      {TraceIdFrom("0af7651916cd43dd8448eb211c80319d"), SpanIdFrom("00f067aa0ba902b9"), "", {}});
  s.status_code = model::StatusCode::kError;
  s.status_message = "upstream timed out";
  s.resource = std::move(resource);
  return s;
}

model::Span BareSpan(std::shared_ptr<const model::Resource> resource, uint8_t last) {
  model::Span s;
  s.trace_id.bytes[15] = last;
  s.span_id.bytes[7] = last;
  s.trace_flags = 0;
  s.name = "bare";
  s.kind = model::SpanKind::kClient;
  s.start_time_unix_nano = 1;
  s.end_time_unix_nano = 2;
  s.status_code = model::StatusCode::kOk;
  s.resource = std::move(resource);
  return s;
}

TEST(OtlpProto, MatchesTheJsonEncoderFieldByField) {
  auto a = MakeResource("checkout", 42);
  auto b = MakeResource("inventory", 7);
  std::vector<model::Span> spans = {FullSpan(a), BareSpan(b, 1), BareSpan(a, 2), BareSpan(nullptr, 3),
                                    BareSpan(b, 4)};
  std::string text;
  AppendTracesDataJson(spans, &text);
  pb::collector::trace::v1::ExportTraceServiceRequest request;
  ToExportRequest(spans, &request);

  // What goes on the wire must parse back to the same message.
  std::string wire;
  ASSERT_TRUE(request.SerializeToString(&wire));
  pb::collector::trace::v1::ExportTraceServiceRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));

  const json expected = json::parse(text);
  const json actual = RequestJson(parsed);
  EXPECT_EQ(actual, expected) << "proto:\n" << actual.dump(1) << "\njson:\n" << expected.dump(1);
}

TEST(OtlpProto, GroupsByResourceInOrderOfFirstAppearance) {
  auto a = MakeResource("a", 1);
  auto b = MakeResource("b", 2);
  std::vector<model::Span> spans = {BareSpan(b, 1), BareSpan(a, 2), BareSpan(b, 3), BareSpan(a, 4)};
  pb::collector::trace::v1::ExportTraceServiceRequest request;
  ToExportRequest(spans, &request);
  ASSERT_EQ(request.resource_spans_size(), 2);
  EXPECT_EQ(request.resource_spans(0).resource().attributes(0).value().string_value(), "b");
  EXPECT_EQ(request.resource_spans(1).resource().attributes(0).value().string_value(), "a");
  for (const auto& rs : request.resource_spans()) {
    ASSERT_EQ(rs.scope_spans_size(), 1);
    EXPECT_EQ(rs.scope_spans(0).scope().name(), "kspan");
    EXPECT_EQ(rs.scope_spans(0).scope().version(), KSPAN_VERSION);
    ASSERT_EQ(rs.scope_spans(0).spans_size(), 2);
  }
  EXPECT_EQ(static_cast<uint8_t>(request.resource_spans(0).scope_spans(0).spans(1).span_id()[7]), 3);
  EXPECT_EQ(static_cast<uint8_t>(request.resource_spans(1).scope_spans(0).spans(1).span_id()[7]), 4);
}

TEST(OtlpProto, IdsAreRawBytesAndTimesUnixNanos) {
  auto a = MakeResource("a", 1);
  const model::Span s = FullSpan(a);
  pb::trace::v1::Span p;
  ToProtoSpan(s, &p);
  ASSERT_EQ(p.trace_id().size(), 16u);
  ASSERT_EQ(p.span_id().size(), 8u);
  ASSERT_EQ(p.parent_span_id().size(), 8u);
  EXPECT_EQ(Hex(p.trace_id()), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(p.start_time_unix_nano(), 1'700'000'000'123'456'789ULL);
  EXPECT_EQ(p.kind(), pb::trace::v1::Span::SPAN_KIND_SERVER);
  EXPECT_EQ(p.status().code(), pb::trace::v1::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(p.flags() & pb::trace::v1::SPAN_FLAGS_TRACE_FLAGS_MASK, 1u);

  model::Span root = BareSpan(a, 9);
  pb::trace::v1::Span r;
  ToProtoSpan(root, &r);
  EXPECT_TRUE(r.parent_span_id().empty()) << "a root span has no parent id at all";
  EXPECT_TRUE(r.trace_state().empty());
}

TEST(OtlpProto, EmptyBatchIsAnEmptyRequest) {
  pb::collector::trace::v1::ExportTraceServiceRequest request;
  ToExportRequest({}, &request);
  EXPECT_EQ(request.resource_spans_size(), 0);
  EXPECT_EQ(request.ByteSizeLong(), 0u);
}

}  // namespace
}  // namespace kspan::exporters
