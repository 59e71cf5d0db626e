// AppendExportRequestProto writes the protobuf wire bytes itself: they must be exactly
// what libprotobuf serializes for the message ToExportRequest builds, so a receiver sees
// no difference. Checked byte for byte on every field and value kind, on lengths that
// take multi-byte varints, and on values protobuf treats specially (zero, empty,
// negative enums, oneof members at their default).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "exporters/otlp_proto.h"
#include "golden_batch.h"

namespace kspan::exporters {
namespace {

std::string LibProtobufBytes(const std::vector<model::Span>& spans) {
  otlp_pb::collector::trace::v1::ExportTraceServiceRequest request;
  ToExportRequest(spans, &request);
  std::string bytes;
  EXPECT_TRUE(request.SerializeToString(&bytes));
  return bytes;
}

std::string WireBytes(const std::vector<model::Span>& spans) {
  WriteBuffer buffer;
  AppendExportRequestProto(spans, &buffer);
  return std::string(buffer.view());
}

TEST(OtlpProtoWire, EveryFieldAsLibProtobufWritesIt) {
  // The golden batch's invalid UTF-8 is left out: libprotobuf logs an error for it (and
  // still writes the bytes, as AppendExportRequestProto does).
  std::vector<model::Span> spans = GoldenBatch();
  for (model::Span& s : spans) std::erase_if(s.attributes, [](const auto& a) { return a.key == "utf8"; });
  const std::string want = LibProtobufBytes(spans);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(WireBytes(spans), want);
}

TEST(OtlpProtoWire, EmptyBatchIsAnEmptyRequest) {
  EXPECT_EQ(WireBytes({}), "");
  EXPECT_EQ(LibProtobufBytes({}), "");
}

TEST(OtlpProtoWire, DefaultsZeroesAndNegativeEnums) {
  std::vector<model::Span> spans(4);
  // spans[0]: all defaults (ids zero, flags 1): ids still go as 16 and 8 zero bytes.
  spans[1].trace_flags = 0;
  spans[1].kind = static_cast<model::SpanKind>(-1);  // sign-extended to a 10-byte varint
  spans[1].status_code = static_cast<model::StatusCode>(-2);
  spans[2].attributes = {{"", std::string()},
                         {"zero", int64_t{0}},
                         {"neg", int64_t{-1}},
                         {"d", 0.0},
                         {"f", false},
                         {"empty", model::StringArray{}},
                         {"one", model::StringArray{""}}};
  spans[3].events = {{"", 0, {}}, {"e", 1, {{"k", true}}}};
  spans[3].links = {{}, {model::TraceId{}, model::SpanId{}, "ts", {{"k", 1.5}}}};
  spans[3].status_message = "m";
  EXPECT_EQ(WireBytes(spans), LibProtobufBytes(spans));
}

TEST(OtlpProtoWire, LongLengthsTakeMultiByteVarints) {
  model::Span s;
  s.name = std::string(300, 'n');  // a 2-byte length
  for (int i = 0; i < 200; ++i) s.attributes.push_back({"key." + std::to_string(i), std::string(i, 'v')});
  s.attributes.push_back({"big", std::string(20000, 'b')});  // a 3-byte length, in every enclosing message
  std::vector<model::Span> spans(3, s);
  EXPECT_EQ(WireBytes(spans), LibProtobufBytes(spans));
}

TEST(OtlpProtoWire, AppendsAfterWhatTheBufferHolds) {
  const std::vector<model::Span> spans(2);
  WriteBuffer buffer;
  buffer.Append("head");
  AppendExportRequestProto(spans, &buffer);
  EXPECT_EQ(buffer.view(), "head" + LibProtobufBytes(spans));
}

// One Span message on its own (the trace store's row body): the same bytes as the
// message ToProtoSpan fills, for every span of the golden batch and the special values.
TEST(OtlpProtoWire, OneSpanAsLibProtobufWritesIt) {
  std::vector<model::Span> spans = GoldenBatch();
  for (model::Span& s : spans) std::erase_if(s.attributes, [](const auto& a) { return a.key == "utf8"; });
  spans.emplace_back();  // all defaults
  spans.back().kind = static_cast<model::SpanKind>(-1);
  ASSERT_GT(spans.size(), 2u);
  for (const model::Span& span : spans) {
    otlp_pb::trace::v1::Span p;
    ToProtoSpan(span, &p);
    std::string want;
    ASSERT_TRUE(p.SerializeToString(&want));
    WriteBuffer buffer;
    buffer.Append("x");
    AppendSpanProto(span, &buffer);
    EXPECT_EQ(buffer.view(), "x" + want) << span.name;
  }
}

}  // namespace
}  // namespace kspan::exporters
