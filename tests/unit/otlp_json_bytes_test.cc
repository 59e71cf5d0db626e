// The exact bytes of the OTLP/JSON encoding (otlp_json.h): the other tests parse the
// output back, this one pins it, so a faster encoder stays byte-identical to the one the
// format was reviewed with. The expected text was written by that encoder (main at
// 9e6e9c4) for this batch.
#include <gtest/gtest.h>
#include <kspan/version.h>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "exporters/otlp_json.h"
#include "testing/model_builders.h"

namespace kspan::exporters {
namespace {

// Every field and value kind, text that needs each escape, and two resources (one null).
std::vector<model::Span> GoldenBatch() {
  auto resource = std::make_shared<model::Resource>();
  resource->attributes.push_back({"service.name", std::string("checkout \"eu\"")});
  resource->attributes.push_back({"process.pid", int64_t{4242}});
  std::vector<model::Span> spans(3);
  model::Span& s = spans[0];
  s.trace_id = testing::TraceIdFrom("4bf92f3577b34da6a3ce929d0e0e4736");
  s.span_id = testing::SpanIdFrom("00f067aa0ba902b7");
  s.parent_span_id = testing::SpanIdFrom("b7ad6b7169203331");
  s.trace_flags = 0x81;
  s.trace_state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
  s.name = "GET /api/{id}";
  s.kind = model::SpanKind::kServer;
  s.start_time_unix_nano = 1'700'000'000'123'456'789ULL;
  s.end_time_unix_nano = 18'446'744'073'709'551'615ULL;
  s.attributes.push_back({"http.request.method", std::string("GET")});
  s.attributes.push_back({"http.response.status_code", int64_t{500}});
  s.attributes.push_back({"big.negative", std::numeric_limits<int64_t>::min()});
  s.attributes.push_back({"zero", int64_t{0}});
  s.attributes.push_back({"ratio", 0.1});
  s.attributes.push_back({"tiny", 5e-324});
  s.attributes.push_back({"huge", -1.7976931348623157e308});
  s.attributes.push_back({"nan", std::numeric_limits<double>::quiet_NaN()});
  s.attributes.push_back({"inf", -std::numeric_limits<double>::infinity()});
  s.attributes.push_back({"flag", true});
  s.attributes.push_back({"off", false});
  s.attributes.push_back({"quote\"key\\", std::string("line\nbreak\r\t\b\f \x01\x1f\x7f \"q\" \\")});
  s.attributes.push_back(
      {"utf8", std::string("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 bad \xFF \xC3 \xED\xA0\x80 end")});
  s.attributes.push_back(
      {"a.longer.key.that.takes.the.sixteen.byte.path", std::string(40, 'x') + "\"" + std::string(20, 'y')});
  s.attributes.push_back({"list", model::StringArray{"stop", "", "len\"gth"}});
  s.attributes.push_back({"empty.list", model::StringArray{}});
  s.events.push_back({"exception", 1'700'000'000'200'000'000ULL, {{"exception.type", std::string("E\n")}}});
  s.events.push_back({"bare", 5, {}});
  s.links.push_back({testing::TraceIdFrom("0af7651916cd43dd8448eb211c80319c"),
                     testing::SpanIdFrom("00f067aa0ba902b8"),
                     "k=v",
                     {{"link.kind", std::string("follows_from")}}});
  s.links.push_back({testing::TraceIdFrom("0af7651916cd43dd8448eb211c80319d"),
                     testing::SpanIdFrom("00f067aa0ba902b9"),
                     "",
                     {}});
  s.status_code = model::StatusCode::kError;
  s.status_message = "boom \"x\"";
  s.resource = resource;

  model::Span& root = spans[1];
  root.trace_id = testing::TraceIdFrom("0123456789abcdef0123456789abcdef");
  root.span_id = testing::SpanIdFrom("fedcba9876543210");
  root.trace_flags = 0;
  root.name = "";
  root.kind = model::SpanKind::kClient;
  root.start_time_unix_nano = 99'999'999;
  root.end_time_unix_nano = 100'000'000;

  model::Span& third = spans[2];
  third.trace_id = testing::TraceIdFrom("ffffffffffffffffffffffffffffffff");
  third.span_id = testing::SpanIdFrom("0000000000000001");
  third.name = "x";
  third.start_time_unix_nano = 9'999'999'999'999'999ULL;
  third.end_time_unix_nano = 10'000'000'000'000'000ULL;
  third.attributes.push_back({"n", int64_t{-7}});
  third.resource = resource;
  return spans;
}

const std::string kGolden =
    R"json({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"check)json"
    R"json(out \"eu\""}},{"key":"process.pid","value":{"intValue":"4242"}}]},"scopeSpans":[{"scope":{"name")json"
    R"json(:"kspan","version":")json" KSPAN_VERSION
    R"json("},"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","traceStat)json"
    R"json(e":"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE","parentSpanId":"b7ad6b7169203331","flags":129,"name)json"
    R"json(":"GET /api/{id}","kind":2,"startTimeUnixNano":"1700000000123456789","endTimeUnixNano":"18446744)json"
    R"json(073709551615","attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},{"key":")json"
    R"json(http.response.status_code","value":{"intValue":"500"}},{"key":"big.negative","value":{"intValue")json"
    R"json(:"-9223372036854775808"}},{"key":"zero","value":{"intValue":"0"}},{"key":"ratio","value":{"doubl)json"
    R"json(eValue":0.10000000000000001}},{"key":"tiny","value":{"doubleValue":4.9406564584124654e-324}},{"k)json"
    R"json(ey":"huge","value":{"doubleValue":-1.7976931348623157e+308}},{"key":"nan","value":{"doubleValue")json"
    R"json(:"NaN"}},{"key":"inf","value":{"doubleValue":"-Infinity"}},{"key":"flag","value":{"boolValue":tr)json"
    R"json(ue}},{"key":"off","value":{"boolValue":false}},{"key":"quote\"key\\","value":{"stringValue":"lin)json"
    R"json(e\nbreak\r\t\b\f \u0001\u001f\u007f \"q\" \\"}},{"key":"utf8","value":{"stringValue":"café € 😀 b)json"
    R"json(ad � � ��� end"}},{"key":"a.longer.key.that.takes.the.sixteen.byte.path","value":{"stringValue":)json"
    R"json("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"yyyyyyyyyyyyyyyyyyyy"}},{"key":"list","value":{"array)json"
    R"json(Value":{"values":[{"stringValue":"stop"},{"stringValue":""},{"stringValue":"len\"gth"}]}}},{"key)json"
    R"json(":"empty.list","value":{"arrayValue":{"values":[]}}}],"events":[{"timeUnixNano":"170000000020000)json"
    R"json(0000","name":"exception","attributes":[{"key":"exception.type","value":{"stringValue":"E\n"}}]},)json"
    R"json({"timeUnixNano":"5","name":"bare"}],"links":[{"traceId":"0af7651916cd43dd8448eb211c80319c","span)json"
    R"json(Id":"00f067aa0ba902b8","traceState":"k=v","attributes":[{"key":"link.kind","value":{"stringValue)json"
    R"json(":"follows_from"}}]},{"traceId":"0af7651916cd43dd8448eb211c80319d","spanId":"00f067aa0ba902b9"}])json"
    R"json(,"status":{"code":2,"message":"boom \"x\""}},{"traceId":"ffffffffffffffffffffffffffffffff","span)json"
    R"json(Id":"0000000000000001","flags":1,"name":"x","kind":1,"startTimeUnixNano":"9999999999999999","end)json"
    R"json(TimeUnixNano":"10000000000000000","attributes":[{"key":"n","value":{"intValue":"-7"}}],"status":)json"
    R"json({"code":0}}]}]},{"resource":{},"scopeSpans":[{"scope":{"name":"kspan","version":")json" KSPAN_VERSION
    R"json("},"spans":[{"traceId":"0123456789abcdef0123456789abcdef","spanId":"fedcba9876543210","flags":0,)json"
    R"json("name":"","kind":3,"startTimeUnixNano":"99999999","endTimeUnixNano":"100000000","status":{"code")json"
    R"json(:0}}]}]}]})json";

TEST(OtlpJsonBytesTest, BatchEncodesToThePinnedBytes) {
  std::string out;
  AppendTracesDataJson(GoldenBatch(), &out);
  EXPECT_EQ(out, kGolden);
}

TEST(OtlpJsonBytesTest, WriteBufferAppendsAfterWhatItHolds) {
  WriteBuffer buffer;
  buffer.Append("prefix ");
  AppendTracesDataJson(GoldenBatch(), &buffer);
  EXPECT_EQ(buffer.view(), "prefix " + kGolden);
  // Reused, as the file exporter does: the same bytes again.
  buffer.Clear();
  AppendTracesDataJson(GoldenBatch(), &buffer);
  EXPECT_EQ(buffer.view(), kGolden);
}

TEST(OtlpJsonBytesTest, SpanJsonIsTheSpanInsideTheBatch) {
  const std::vector<model::Span> spans = GoldenBatch();
  for (const model::Span& span : spans) {
    std::string one = "x";
    AppendSpanJson(span, &one);
    ASSERT_GT(one.size(), 1u);
    EXPECT_NE(kGolden.find(one.substr(1)), std::string::npos) << one;
  }
}

}  // namespace
}  // namespace kspan::exporters
