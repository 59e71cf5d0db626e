// A batch with every field and value kind the model has, text that needs each JSON
// escape and invalid UTF-8, and two resources (one null): the input the encoders' exact
// output tests (otlp_json_bytes_test, otlp_proto_wire_test) pin.
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "model/span.h"
#include "testing/model_builders.h"

namespace kspan::exporters {

inline std::vector<model::Span> GoldenBatch() {
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

}  // namespace kspan::exporters
