// AppendExportRequestProto writes the protobuf wire bytes itself: they must be exactly
// what libprotobuf serializes for the message ToExportRequest builds, so a receiver sees
// no difference. Checked byte for byte on every field and value kind, on lengths that
// take multi-byte varints, and on values protobuf treats specially (zero, empty,
// negative enums, oneof members at their default).
#include <gtest/gtest.h>

#include <memory>
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
  // The golden batch's invalid UTF-8 included: both make it valid the same way.
  const std::vector<model::Span> spans = GoldenBatch();
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

// Bytes a traced process sent need not be UTF-8; a protobuf `string` must be, and a parser
// refuses the whole request otherwise (libprotobuf's, as a Go or Python receiver's): one
// request with a Latin-1 path would lose every span exported with it. Each byte that does
// not start a valid sequence arrives as U+FFFD, as in the JSON encoding.
TEST(OtlpProtoWire, TextThatIsNotUtf8ArrivesAsUtf8) {
  const std::string bad = "caf\xE9 \xC3\xA9 \xF0\x9F\x98 \xED\xA0\x80!";
  const std::string good = "caf\uFFFD \u00E9 \uFFFD\uFFFD\uFFFD \uFFFD\uFFFD\uFFFD!";
  ASSERT_EQ(good,
            "caf\xEF\xBF\xBD \xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD!");
  auto resource = std::make_shared<model::Resource>();
  resource->attributes.push_back({"process.command_line", bad});
  model::Span s;
  s.resource = resource;
  s.name = "GET /" + bad;
  s.trace_state = bad;
  s.attributes = {{"url.path", "/" + bad}, {bad, int64_t{1}}, {"list", model::StringArray{"ok", bad}}};
  s.events = {{bad, 1, {{"m", bad}}}};
  s.links = {{model::TraceId{}, model::SpanId{}, bad, {{"l", bad}}}};
  s.status_code = model::StatusCode::kError;
  s.status_message = bad;
  const std::vector<model::Span> spans = {s};

  const std::string wire = WireBytes(spans);
  EXPECT_EQ(wire, LibProtobufBytes(spans));
  otlp_pb::collector::trace::v1::ExportTraceServiceRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire)) << "a receiver would refuse the request";
  ASSERT_EQ(parsed.resource_spans_size(), 1);
  EXPECT_EQ(parsed.resource_spans(0).resource().attributes(0).value().string_value(), good);
  const auto& p = parsed.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(p.name(), "GET /" + good);
  EXPECT_EQ(p.trace_state(), good);
  EXPECT_EQ(p.attributes(0).value().string_value(), "/" + good);
  EXPECT_EQ(p.attributes(1).key(), good);
  EXPECT_EQ(p.attributes(2).value().array_value().values(1).string_value(), good);
  EXPECT_EQ(p.events(0).name(), good);
  EXPECT_EQ(p.events(0).attributes(0).value().string_value(), good);
  EXPECT_EQ(p.links(0).trace_state(), good);
  EXPECT_EQ(p.links(0).attributes(0).value().string_value(), good);
  EXPECT_EQ(p.status().message(), good);

  // The trace store's row body, read back as the web UI reads it.
  WriteBuffer row;
  AppendSpanProto(s, &row);
  otlp_pb::trace::v1::Span one;
  ASSERT_TRUE(one.ParseFromString(std::string(row.view())));
  EXPECT_EQ(one.name(), "GET /" + good);
}

}  // namespace
}  // namespace kspan::exporters
