// Zipkin v2 JSON conversion (no transport): the shape @opentelemetry/exporter-zipkin
// writes, parsed back with nlohmann::json.
#include "exporters/zipkin_json.h"

#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kspan::exporters {
namespace {

using nlohmann::json;

model::Span ServerSpan() {
  auto r = std::make_shared<model::Resource>();
  r->attributes.push_back({"service.name", std::string("checkout")});
  r->attributes.push_back({"process.pid", int64_t{42}});
  r->attributes.push_back({"http.route", std::string("from-resource")});
  model::Span s;
  model::ParseHexId("4bf92f3577b34da6a3ce929d0e0e4736", s.trace_id.bytes.data(), 16);
  model::ParseHexId("00f067aa0ba902b7", s.span_id.bytes.data(), 8);
  model::ParseHexId("b7ad6b7169203331", s.parent_span_id.bytes.data(), 8);
  s.name = "GET /api/{id}";
  s.kind = model::SpanKind::kServer;
  s.start_time_unix_nano = 1'700'000'000'123'456'789ULL;  // µs: ...123457 (rounded)
  s.end_time_unix_nano = 1'700'000'000'131'580'289ULL;    // 8123.5 µs later: 8124
  s.attributes.push_back({"http.request.method", std::string("GET")});
  s.attributes.push_back({"http.response.status_code", int64_t{500}});
  s.attributes.push_back({"ratio", 0.25});
  s.attributes.push_back({"flag", true});
  s.attributes.push_back({"http.route", std::string("from-span")});
  s.attributes.push_back({"network.peer.address", std::string("10.0.0.7")});
  s.attributes.push_back({"network.peer.port", int64_t{8080}});
  s.events.push_back({"exception", 1'700'000'000'200'000'499ULL, {}});
  s.status_code = model::StatusCode::kError;
  s.status_message = "upstream timed out";
  s.resource = r;
  return s;
}

json Convert(const std::vector<model::Span>& spans) {
  std::string out;
  AppendZipkinJson(spans, &out);
  return json::parse(out);
}

TEST(ZipkinJson, ServerSpanShape) {
  const json j = Convert({ServerSpan()});
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 1u);
  const json& s = j[0];
  EXPECT_EQ(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s["id"], "00f067aa0ba902b7");
  EXPECT_EQ(s["parentId"], "b7ad6b7169203331");
  EXPECT_EQ(s["name"], "GET /api/{id}");
  EXPECT_EQ(s["kind"], "SERVER");
  EXPECT_EQ(s["timestamp"], 1'700'000'000'123'457ULL);
  EXPECT_EQ(s["duration"], 8124u);
  EXPECT_EQ(s["localEndpoint"], json({{"serviceName", "checkout"}}));
  EXPECT_EQ(s["remoteEndpoint"], json({{"ipv4", "10.0.0.7"}, {"port", 8080}}));
  const json& tags = s["tags"];
  EXPECT_EQ(tags["http.request.method"], "GET");
  EXPECT_EQ(tags["http.response.status_code"], "500") << "every tag is a string";
  EXPECT_EQ(tags["ratio"], "0.25");
  EXPECT_EQ(tags["flag"], "true");
  EXPECT_EQ(tags["otel.status_code"], "ERROR");
  EXPECT_EQ(tags["error"], "upstream timed out");
  EXPECT_EQ(tags["service.name"], "checkout") << "resource attributes are tags too";
  EXPECT_EQ(tags["process.pid"], "42");
  EXPECT_EQ(tags["http.route"], "from-resource") << "the resource wins, as in the JS exporter";
  EXPECT_FALSE(tags.contains("otel.scope.name")) << "the JS exporter writes none";
  EXPECT_EQ(s["annotations"], json::parse(R"([{"timestamp":1700000000200000,"value":"exception"}])"));
}

TEST(ZipkinJson, KindsStatusAndRoots) {
  model::Span s = ServerSpan();
  s.parent_span_id = model::SpanId{};
  s.events.clear();
  s.attributes.clear();
  s.status_code = model::StatusCode::kOk;
  const std::pair<model::SpanKind, const char*> kinds[] = {{model::SpanKind::kClient, "CLIENT"},
                                                           {model::SpanKind::kProducer, "PRODUCER"},
                                                           {model::SpanKind::kConsumer, "CONSUMER"},
                                                           {model::SpanKind::kInternal, nullptr},
                                                           {model::SpanKind::kUnspecified, nullptr}};
  for (const auto& [kind, name] : kinds) {
    s.kind = kind;
    const json j = Convert({s})[0];
    if (name) {
      EXPECT_EQ(j["kind"], name);
    } else {
      EXPECT_FALSE(j.contains("kind")) << "INTERNAL has no Zipkin kind";
    }
    EXPECT_FALSE(j.contains("parentId")) << "root span";
    EXPECT_FALSE(j.contains("annotations"));
    EXPECT_FALSE(j.contains("remoteEndpoint"));
    EXPECT_EQ(j["tags"]["otel.status_code"], "OK");
    EXPECT_FALSE(j["tags"].contains("error"));
  }
  s.status_code = model::StatusCode::kUnset;
  EXPECT_FALSE(Convert({s})[0]["tags"].contains("otel.status_code"));
  s.status_code = model::StatusCode::kError;
  s.status_message.clear();
  EXPECT_FALSE(Convert({s})[0]["tags"].contains("error")) << "only with a message, as the JS exporter";
}

TEST(ZipkinJson, ServiceNameFallbacksAndIpv6Peer) {
  model::Span s = ServerSpan();
  s.attributes = {{"service.name", std::string("from-span")},
                  {"network.peer.address", std::string("::1")},
                  {"peer.service", std::string("db")}};
  json j = Convert({s})[0];
  EXPECT_EQ(j["localEndpoint"]["serviceName"], "from-span");
  EXPECT_EQ(j["remoteEndpoint"], json({{"serviceName", "db"}, {"ipv6", "::1"}}));
  s.attributes.clear();
  s.resource = nullptr;
  j = Convert({s})[0];
  EXPECT_EQ(j["localEndpoint"]["serviceName"], "unknown_service");
  EXPECT_EQ(Convert({}), json::array());
}

TEST(ZipkinJson, NumbersPrintLikeJavaScript) {
  const std::pair<double, const char*> cases[] = {
      {0.0, "0"},
      {-0.0, "0"},
      {1.0, "1"},
      {200.0, "200"},
      {-2.5, "-2.5"},
      {0.1, "0.1"},
      {1.0 / 3, "0.3333333333333333"},
      {123456789.125, "123456789.125"},
      {1e21, "1e+21"},
      {1.5e21, "1.5e+21"},
      {123456789012345680000.0, "123456789012345680000"},
      {1e-6, "0.000001"},
      {1e-7, "1e-7"},
      {1.5e-10, "1.5e-10"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},
      {std::numeric_limits<double>::infinity(), "Infinity"},
      {-std::numeric_limits<double>::infinity(), "-Infinity"},
  };
  for (const auto& [v, s] : cases) EXPECT_EQ(JsNumberString(v), s) << v;
}

}  // namespace
}  // namespace kspan::exporters
