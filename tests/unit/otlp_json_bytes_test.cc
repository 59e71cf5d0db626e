// The exact bytes of the OTLP/JSON encoding (otlp_json.h): the other tests parse the
// output back, this one pins it, so a faster encoder stays byte-identical to the one the
// format was reviewed with. The expected text was written by that encoder (main at
// 9e6e9c4) for this batch.
#include <gtest/gtest.h>
#include <kspan/version.h>

#include <string>
#include <vector>

#include "common/json.h"
#include "exporters/otlp_json.h"
#include "golden_batch.h"

namespace kspan::exporters {
namespace {

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
