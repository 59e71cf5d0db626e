// OTLP/JSON conversion (no transport): the output is parsed back with nlohmann::json and
// every field is checked against the OTLP JSON Protobuf Encoding.
#include "exporters/otlp_json.h"

#include <gtest/gtest.h>
#include <kspan/version.h>

#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testing/model_builders.h"

namespace kspan::exporters {
namespace {

using nlohmann::json;

using testing::MakeResource;
using testing::SpanIdFrom;
using testing::TraceIdFrom;

// A server span with everything set.
model::Span FullSpan(std::shared_ptr<const model::Resource> resource) {
  model::Span s;
  s.trace_id = TraceIdFrom("4BF92F3577B34DA6A3CE929D0E0E4736");  // written back lowercase
  s.span_id = SpanIdFrom("00f067aa0ba902b7");
  s.parent_span_id = SpanIdFrom("b7ad6b7169203331");
  s.trace_flags = 0x01;
  s.trace_state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
  s.name = "GET /api/{id}";
  s.kind = model::SpanKind::kServer;
  s.start_time_unix_nano = 1'700'000'000'123'456'789ULL;
  s.end_time_unix_nano = 18'446'744'073'709'551'615ULL;  // uint64 max survives as a string
  s.attributes.push_back({"http.request.method", std::string("GET")});
  s.attributes.push_back({"http.response.status_code", int64_t{500}});
  s.attributes.push_back({"big.negative", std::numeric_limits<int64_t>::min()});
  s.attributes.push_back({"ratio", 0.25});
  s.attributes.push_back({"flag", true});
  s.attributes.push_back({"quote\"key", std::string("line\nbreak \"q\" \\ \x01")});
  s.events.push_back({"exception", 1'700'000'000'200'000'000ULL, {{"exception.type", std::string("E")}}});
  s.events.push_back({"bare", 5, {}});
  s.links.push_back({TraceIdFrom("0af7651916cd43dd8448eb211c80319c"),
                     SpanIdFrom("00f067aa0ba902b8"),
                     "k=v",
                     {{"link.kind", std::string("follows_from")}}});
  s.links.push_back(
      {TraceIdFrom("0af7651916cd43dd8448eb211c80319d"), SpanIdFrom("00f067aa0ba902b9"), "", {}});
  s.status_code = model::StatusCode::kError;
  s.status_message = "boom";
  s.resource = std::move(resource);
  return s;
}

json Convert(const std::vector<model::Span>& spans) {
  std::string out;
  AppendTracesDataJson(spans, &out);
  EXPECT_EQ(out.find('\n'), std::string::npos) << "one line per batch";
  return json::parse(out);  // throws (fails the test) on invalid JSON
}

TEST(OtlpJsonTest, EveryFieldOfOneSpan) {
  const auto resource = MakeResource("checkout", 4242);
  const json doc = Convert({FullSpan(resource)});

  ASSERT_EQ(doc.size(), 1u);
  ASSERT_EQ(doc["resourceSpans"].size(), 1u);
  const json& rs = doc["resourceSpans"][0];
  EXPECT_EQ(rs["resource"], json::parse(R"({"attributes":[
      {"key":"service.name","value":{"stringValue":"checkout"}},
      {"key":"process.pid","value":{"intValue":"4242"}}]})"));
  ASSERT_EQ(rs["scopeSpans"].size(), 1u);
  const json& ss = rs["scopeSpans"][0];
  EXPECT_EQ(ss["scope"], (json{{"name", "kspan"}, {"version", KSPAN_VERSION}}));
  ASSERT_EQ(ss["spans"].size(), 1u);
  const json& span = ss["spans"][0];

  EXPECT_EQ(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span["spanId"], "00f067aa0ba902b7");
  EXPECT_EQ(span["parentSpanId"], "b7ad6b7169203331");
  EXPECT_EQ(span["traceState"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  EXPECT_EQ(span["flags"], 1);
  EXPECT_EQ(span["name"], "GET /api/{id}");
  EXPECT_EQ(span["kind"], 2);
  EXPECT_TRUE(span["kind"].is_number_integer());
  EXPECT_EQ(span["startTimeUnixNano"], "1700000000123456789");
  EXPECT_EQ(span["endTimeUnixNano"], "18446744073709551615");
  EXPECT_EQ(span["status"], (json{{"code", 2}, {"message", "boom"}}));

  const json want_attributes = json::parse(R"([
      {"key":"http.request.method","value":{"stringValue":"GET"}},
      {"key":"http.response.status_code","value":{"intValue":"500"}},
      {"key":"big.negative","value":{"intValue":"-9223372036854775808"}},
      {"key":"ratio","value":{"doubleValue":0.25}},
      {"key":"flag","value":{"boolValue":true}},
      {"key":"quote\"key","value":{"stringValue":"line\nbreak \"q\" \\ \u0001"}}])");
  EXPECT_EQ(span["attributes"], want_attributes);

  EXPECT_EQ(span["events"], json::parse(R"([
      {"timeUnixNano":"1700000000200000000","name":"exception",
       "attributes":[{"key":"exception.type","value":{"stringValue":"E"}}]},
      {"timeUnixNano":"5","name":"bare"}])"));
  EXPECT_EQ(span["links"], json::parse(R"([
      {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"00f067aa0ba902b8","traceState":"k=v",
       "attributes":[{"key":"link.kind","value":{"stringValue":"follows_from"}}]},
      {"traceId":"0af7651916cd43dd8448eb211c80319d","spanId":"00f067aa0ba902b9"}])"));

  // Nothing we did not mean to write; every key is lowerCamelCase.
  std::vector<std::string> keys;
  for (const auto& [k, v] : span.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"attributes", "endTimeUnixNano", "events", "flags", "kind",
                                            "links", "name", "parentSpanId", "spanId", "startTimeUnixNano",
                                            "status", "traceId", "traceState"}));
}

TEST(OtlpJsonTest, DefaultsAreOmitted) {
  model::Span s;
  s.trace_id = TraceIdFrom("0af7651916cd43dd8448eb211c80319c");
  s.span_id = SpanIdFrom("00f067aa0ba902b7");
  s.trace_flags = 0;
  s.name = "root";
  s.kind = model::SpanKind::kClient;
  s.start_time_unix_nano = 1;
  s.end_time_unix_nano = 2;
  const json span = Convert({s})["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_FALSE(span.contains("parentSpanId"));  // a root span
  EXPECT_FALSE(span.contains("traceState"));
  EXPECT_FALSE(span.contains("attributes"));
  EXPECT_FALSE(span.contains("events"));
  EXPECT_FALSE(span.contains("links"));
  EXPECT_EQ(span["kind"], 3);
  EXPECT_EQ(span["flags"], 0);
  EXPECT_EQ(span["status"], (json{{"code", 0}}));
}

TEST(OtlpJsonTest, NullResourceIsAnEmptyResource) {
  model::Span s = FullSpan(nullptr);
  const json doc = Convert({s});
  EXPECT_EQ(doc["resourceSpans"][0]["resource"], json::object());
}

TEST(OtlpJsonTest, SpansGroupedByResourceInFirstSeenOrder) {
  const auto a = MakeResource("a", 1);
  const auto b = MakeResource("b", 2);
  std::vector<model::Span> spans;
  for (const auto& [res, name] : std::vector<std::pair<std::shared_ptr<const model::Resource>, std::string>>{
           {b, "b1"}, {a, "a1"}, {b, "b2"}, {nullptr, "n1"}, {a, "a2"}, {b, "b3"}}) {
    model::Span s = FullSpan(res);
    s.name = name;
    spans.push_back(std::move(s));
  }
  const json doc = Convert(spans);
  ASSERT_EQ(doc["resourceSpans"].size(), 3u);
  auto names = [&](size_t i) {
    std::vector<std::string> out;
    for (const auto& s : doc["resourceSpans"][i]["scopeSpans"][0]["spans"]) out.push_back(s["name"]);
    return out;
  };
  auto service = [&](size_t i) {
    return doc["resourceSpans"][i]["resource"]["attributes"][0]["value"]["stringValue"];
  };
  EXPECT_EQ(service(0), "b");
  EXPECT_EQ(names(0), (std::vector<std::string>{"b1", "b2", "b3"}));
  EXPECT_EQ(service(1), "a");
  EXPECT_EQ(names(1), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(doc["resourceSpans"][2]["resource"], json::object());
  EXPECT_EQ(names(2), (std::vector<std::string>{"n1"}));
}

TEST(OtlpJsonTest, EmptyBatch) {
  std::string out;
  AppendTracesDataJson({}, &out);
  EXPECT_EQ(out, R"({"resourceSpans":[]})");
}

TEST(OtlpJsonTest, AppendsWithoutClobbering) {
  std::string out = "prefix ";
  AppendTracesDataJson({}, &out);
  EXPECT_EQ(out, R"(prefix {"resourceSpans":[]})");
}

TEST(OtlpJsonTest, NonFiniteDoublesUseProto3Strings) {
  model::Span s = FullSpan(nullptr);
  s.attributes = {{"nan", std::numeric_limits<double>::quiet_NaN()},
                  {"inf", std::numeric_limits<double>::infinity()},
                  {"ninf", -std::numeric_limits<double>::infinity()},
                  {"exact", 0.1}};
  const json attrs = Convert({s})["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"];
  EXPECT_EQ(attrs[0]["value"]["doubleValue"], "NaN");
  EXPECT_EQ(attrs[1]["value"]["doubleValue"], "Infinity");
  EXPECT_EQ(attrs[2]["value"]["doubleValue"], "-Infinity");
  EXPECT_EQ(attrs[3]["value"]["doubleValue"].get<double>(), 0.1);  // round-trips exactly
}

TEST(OtlpJsonTest, InvalidUtf8FromTrafficStaysValidJson) {
  model::Span s = FullSpan(nullptr);
  s.name = std::string("GET /\xff\xfe");
  s.attributes = {{"url.path", std::string("/caf\xc3\xa9/\xc3")}};
  const json span = Convert({s})["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["name"], "GET /\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(span["attributes"][0]["value"]["stringValue"], "/caf\xc3\xa9/\xEF\xBF\xBD");
}

TEST(OtlpJsonTest, ManySpansOneDocument) {
  const auto r = MakeResource("svc", 7);
  std::vector<model::Span> spans(300, FullSpan(r));
  const json doc = Convert(spans);
  ASSERT_EQ(doc["resourceSpans"].size(), 1u);
  EXPECT_EQ(doc["resourceSpans"][0]["scopeSpans"][0]["spans"].size(), 300u);
}

}  // namespace
}  // namespace kspan::exporters
