// The Jaeger query API over the trace store (userspace/ui/jaeger_api.h): served by a real
// HttpServer on loopback, read back with nlohmann::json, checked field by field against
// the shape of Jaeger's published examples: its query service's model (jaegertracing/jaeger
// model/json/model.go) and the UI fixture model/converter/json/fixtures/ui_01.json, whose
// every key and JSON type is listed below as Jaeger writes them.
#include "ui/jaeger_api.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/http_server.h"
#include "testing/servers.h"
#include "testing/subprocess.h"
#include "ui/ui_routes.h"

namespace kspan::ui {
namespace {

using nlohmann::json;

constexpr uint64_t kT0 = 1'800'000'000'000'000'000ull;
constexpr uint64_t kMs = 1'000'000;

// Jaeger's keys and their JSON types (ui_01.json): a trace, a span, a reference, a tag, a
// log, a process, and the query service's envelope (cmd/query/app/http_handler.go).
const std::map<std::string, json::value_t> kTraceKeys = {{"traceID", json::value_t::string},
                                                         {"spans", json::value_t::array},
                                                         {"processes", json::value_t::object},
                                                         {"warnings", json::value_t::null}};
const std::map<std::string, json::value_t> kSpanKeys = {{"traceID", json::value_t::string},
                                                        {"spanID", json::value_t::string},
                                                        {"flags", json::value_t::number_unsigned},
                                                        {"operationName", json::value_t::string},
                                                        {"references", json::value_t::array},
                                                        {"startTime", json::value_t::number_unsigned},
                                                        {"duration", json::value_t::number_unsigned},
                                                        {"tags", json::value_t::array},
                                                        {"logs", json::value_t::array},
                                                        {"processID", json::value_t::string},
                                                        {"warnings", json::value_t::null}};
const std::map<std::string, json::value_t> kRefKeys = {{"refType", json::value_t::string},
                                                       {"traceID", json::value_t::string},
                                                       {"spanID", json::value_t::string}};
const std::set<std::string> kTagKeys = {"key", "type", "value"};
const std::map<std::string, json::value_t> kLogKeys = {{"timestamp", json::value_t::number_unsigned},
                                                       {"fields", json::value_t::array}};
const std::map<std::string, json::value_t> kProcessKeys = {{"serviceName", json::value_t::string},
                                                           {"tags", json::value_t::array}};

void ExpectShape(const json& j, const std::map<std::string, json::value_t>& keys, const std::string& where) {
  ASSERT_TRUE(j.is_object()) << where;
  std::set<std::string> got;
  for (const auto& [k, v] : j.items()) {
    got.insert(k);
    auto it = keys.find(k);
    ASSERT_NE(it, keys.end()) << where << ": key " << k << " is not Jaeger's";
    EXPECT_EQ(v.type(), it->second) << where << "." << k;
  }
  EXPECT_EQ(got.size(), keys.size()) << where << ": every key Jaeger writes";
}

void ExpectTag(const json& t, const std::string& where) {
  ASSERT_TRUE(t.is_object()) << where;
  std::set<std::string> got;
  for (const auto& [k, v] : t.items()) got.insert(k);
  EXPECT_EQ(got, kTagKeys) << where;
  const std::string type = t["type"];
  if (type == "string")
    EXPECT_TRUE(t["value"].is_string()) << where;
  else if (type == "int64")
    EXPECT_TRUE(t["value"].is_number_integer()) << where;
  else if (type == "float64")
    EXPECT_TRUE(t["value"].is_number()) << where;
  else if (type == "bool")
    EXPECT_TRUE(t["value"].is_boolean()) << where;
  else
    ADD_FAILURE() << where << ": type " << type;
}

std::shared_ptr<const model::Resource> Service(const std::string& name) {
  auto r = std::make_shared<model::Resource>();
  r->attributes.push_back({"service.name", name});
  r->attributes.push_back({"process.pid", int64_t{7}});
  return r;
}

model::Span MakeSpan(uint8_t trace, uint8_t id, uint8_t parent, std::shared_ptr<const model::Resource> r,
                     std::string name, uint64_t start, uint64_t dur, model::SpanKind kind) {
  model::Span s;
  s.trace_id.bytes[15] = trace;
  s.span_id.bytes[7] = id;
  if (parent) s.parent_span_id.bytes[7] = parent;
  s.resource = std::move(r);
  s.name = std::move(name);
  s.start_time_unix_nano = start;
  s.end_time_unix_nano = start + dur;
  s.kind = kind;
  return s;
}

std::vector<model::Span> Chain(uint8_t trace, uint64_t start, uint64_t dur, bool error) {
  auto fe = Service("frontend"), api = Service("api");
  std::vector<model::Span> v;
  v.push_back(MakeSpan(trace, 1, 0, fe, "GET /checkout", start, dur, model::SpanKind::kServer));
  v.back().attributes = {{"http.request.method", std::string("GET")},
                         {"http.response.status_code", int64_t{error ? 500 : 200}},
                         {"ratio", 0.5},
                         {"kspan.parent.ambiguous", false},
                         {"gen_ai.response.finish_reasons", model::StringArray{"stop"}}};
  v.push_back(MakeSpan(trace, 2, 1, fe, "GET", start + kMs, dur - 2 * kMs, model::SpanKind::kClient));
  v.push_back(
      MakeSpan(trace, 3, 2, api, "GET /items", start + 2 * kMs, dur - 4 * kMs, model::SpanKind::kServer));
  v.back().links.push_back({v.front().trace_id, v.front().span_id, "", {}});
  v.back().events.push_back({"exception", start + 3 * kMs, {{"exception.type", std::string("E")}}});
  if (error) {
    v.back().status_code = model::StatusCode::kError;
    v.back().status_message = "boom";
  }
  return v;
}

class JaegerApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("kspan-jaeger-");
    auto s = store::TraceStore::Open({.path = dir_ + "/t.db"}, nullptr);
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->Write(Chain(1, kT0, 100 * kMs, false), kT0).ok());
    ASSERT_TRUE(store_->Write(Chain(2, kT0 + 1000 * kMs, 900 * kMs, true), kT0).ok());
    http::ServerOptions o;
    o.address = {"127.0.0.1", 0, false};
    server_ = std::make_unique<http::HttpServer>(o, &metrics_);
    AddUiRoutes(server_.get(), store_.get());  // the UI's routes and the Jaeger API
    ASSERT_TRUE(server_->Listen().ok());
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    server_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The status code and the parsed body.
  std::pair<int, json> Get(const std::string& target) {
    const int fd = testing::ConnectLoopback(server_->bound().port);
    if (fd < 0) return {0, json()};
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[65536];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 5000) > 0) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    const size_t sp = out.find(' ');
    const size_t body = out.find("\r\n\r\n");
    if (sp == std::string::npos || body == std::string::npos) return {0, json()};
    return {std::stoi(out.substr(sp + 1, 3)), json::parse(out.substr(body + 4), nullptr, false)};
  }

  std::string dir_;
  metrics::Registry metrics_;
  std::unique_ptr<store::TraceStore> store_;
  std::unique_ptr<http::HttpServer> server_;
};

void ExpectEnvelope(const json& j, size_t total) {
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 5u);
  EXPECT_EQ(j["total"], total);
  EXPECT_EQ(j["limit"], 0);
  EXPECT_EQ(j["offset"], 0);
  EXPECT_TRUE(j["errors"].is_null());
}

TEST_F(JaegerApiTest, TraceByIdIsJaegersShapeFieldByField) {
  auto [code, j] = Get("/api/traces/00000000000000000000000000000002");
  ASSERT_EQ(code, 200);
  ExpectEnvelope(j, 1);
  ASSERT_EQ(j["data"].size(), 1u);
  const json& t = j["data"][0];
  ExpectShape(t, kTraceKeys, "trace");
  EXPECT_EQ(t["traceID"], "00000000000000000000000000000002");
  ASSERT_EQ(t["spans"].size(), 3u);
  for (const json& s : t["spans"]) {
    ExpectShape(s, kSpanKeys, "span " + s.value("spanID", ""));
    for (const json& r : s["references"]) ExpectShape(r, kRefKeys, "reference");
    for (const json& tag : s["tags"]) ExpectTag(tag, "tag " + tag.value("key", ""));
    for (const json& l : s["logs"]) {
      ExpectShape(l, kLogKeys, "log");
      for (const json& f : l["fields"]) ExpectTag(f, "log field");
    }
    EXPECT_TRUE(t["processes"].contains(s["processID"].get<std::string>()));
  }
  for (const auto& [id, p] : t["processes"].items()) {
    ExpectShape(p, kProcessKeys, "process " + id);
    for (const json& tag : p["tags"]) ExpectTag(tag, "process tag");
  }

  // The values, as Jaeger's OTLP translator writes them.
  const json& root = t["spans"][0];
  EXPECT_EQ(root["spanID"], "0000000000000001");
  EXPECT_EQ(root["operationName"], "GET /checkout");
  EXPECT_EQ(root["startTime"], (kT0 + 1000 * kMs) / 1000) << "microseconds";
  EXPECT_EQ(root["duration"], 900'000u);
  EXPECT_EQ(root["flags"], 1u);
  EXPECT_TRUE(root["references"].empty());
  EXPECT_EQ(root["processID"], "p1");
  auto tag = [](const json& span, const std::string& key) {
    for (const json& t : span["tags"])
      if (t["key"] == key) return t;
    return json();
  };
  EXPECT_EQ(tag(root, "http.request.method"),
            json({{"key", "http.request.method"}, {"type", "string"}, {"value", "GET"}}));
  EXPECT_EQ(tag(root, "http.response.status_code"),
            json({{"key", "http.response.status_code"}, {"type", "int64"}, {"value", 500}}));
  EXPECT_EQ(tag(root, "ratio"), json({{"key", "ratio"}, {"type", "float64"}, {"value", 0.5}}));
  EXPECT_EQ(tag(root, "kspan.parent.ambiguous"),
            json({{"key", "kspan.parent.ambiguous"}, {"type", "bool"}, {"value", false}}));
  EXPECT_EQ(tag(root, "gen_ai.response.finish_reasons")["value"], "[\"stop\"]");
  EXPECT_EQ(tag(root, "span.kind")["value"], "server");
  EXPECT_TRUE(tag(root, "error").is_null()) << "no error tag on a span without ERROR";

  const json& api = t["spans"][2];
  EXPECT_EQ(api["processID"], "p2");
  ASSERT_EQ(api["references"].size(), 2u);
  EXPECT_EQ(api["references"][0], json({{"refType", "CHILD_OF"},
                                        {"traceID", "00000000000000000000000000000002"},
                                        {"spanID", "0000000000000002"}}));
  EXPECT_EQ(api["references"][1]["refType"], "FOLLOWS_FROM");
  EXPECT_EQ(tag(api, "error"), json({{"key", "error"}, {"type", "bool"}, {"value", true}}));
  EXPECT_EQ(tag(api, "otel.status_code")["value"], "ERROR");
  EXPECT_EQ(tag(api, "otel.status_description")["value"], "boom");
  ASSERT_EQ(api["logs"].size(), 1u);
  EXPECT_EQ(api["logs"][0]["timestamp"], (kT0 + 1003 * kMs) / 1000);
  EXPECT_EQ(api["logs"][0]["fields"][0],
            json({{"key", "event"}, {"type", "string"}, {"value", "exception"}}));
  EXPECT_EQ(t["processes"]["p2"]["serviceName"], "api");
  EXPECT_EQ(t["processes"]["p2"]["tags"][0], json({{"key", "process.pid"}, {"type", "int64"}, {"value", 7}}));

  auto [missing, m] = Get("/api/traces/00000000000000000000000000000063");
  EXPECT_EQ(missing, 404);
  EXPECT_TRUE(m["data"].is_null());
  EXPECT_EQ(m["errors"][0]["code"], 404);
  EXPECT_EQ(m["errors"][0]["msg"], "trace not found");
  EXPECT_EQ(Get("/api/traces/zz").first, 400);
}

TEST_F(JaegerApiTest, ServicesOperationsAndDependencies) {
  auto [c1, services] = Get("/api/services");
  ASSERT_EQ(c1, 200);
  ExpectEnvelope(services, 2);
  EXPECT_EQ(services["data"], json({"api", "frontend"}));
  auto [c2, ops] = Get("/api/services/frontend/operations");
  ASSERT_EQ(c2, 200);
  EXPECT_EQ(ops["data"], json({"GET", "GET /checkout"}));
  auto [c3, kinds] = Get("/api/operations?service=frontend&spanKind=server");
  ASSERT_EQ(c3, 200);
  EXPECT_EQ(kinds["data"], json::parse(R"([{"name":"GET /checkout","spanKind":"server"}])"));
  auto [c4, deps] = Get("/api/dependencies?endTs=" + std::to_string(kT0 / kMs + 5000) + "&lookback=60000");
  ASSERT_EQ(c4, 200);
  EXPECT_EQ(deps["data"], json::parse(R"([{"parent":"frontend","child":"api","callCount":2}])"));
  auto [c5, none] = Get("/api/dependencies?endTs=" + std::to_string(kT0 / kMs - 10000) + "&lookback=1000");
  EXPECT_EQ(none["data"], json::array());
}

TEST_F(JaegerApiTest, SearchTakesJaegersParameters) {
  auto ids = [&](const std::string& q) {
    auto [code, j] = Get("/api/traces?" + q);
    EXPECT_EQ(code, 200) << q << ": " << j.dump();
    std::vector<std::string> out;
    for (const json& t : j["data"]) out.push_back(t["traceID"]);
    return out;
  };
  const std::string t1 = "00000000000000000000000000000001", t2 = "00000000000000000000000000000002";
  EXPECT_EQ(ids("service=frontend"), (std::vector<std::string>{t2, t1}));
  EXPECT_EQ(ids("service=frontend&minDuration=500ms"), (std::vector<std::string>{t2}));
  EXPECT_EQ(ids("service=frontend&maxDuration=0.2s"), (std::vector<std::string>{t1}));
  EXPECT_EQ(ids("service=api&tags=%7B%22error%22%3A%22true%22%7D"), (std::vector<std::string>{t2}));
  EXPECT_EQ(ids("service=frontend&tag=http.response.status_code:200"), (std::vector<std::string>{t1}));
  EXPECT_EQ(ids("service=frontend&operation=GET+%2Fcheckout&limit=1"), (std::vector<std::string>{t2}));
  EXPECT_EQ(ids("service=frontend&start=" + std::to_string(kT0 / 1000 + 500'000)),
            (std::vector<std::string>{t2}));
  EXPECT_EQ(ids("traceID=1&traceID=" + t2), (std::vector<std::string>{t1, t2}));
  EXPECT_EQ(Get("/api/traces?operation=x").first, 400) << "service is required";
  EXPECT_EQ(Get("/api/traces?service=a&minDuration=fast").first, 400);
}

TEST_F(JaegerApiTest, UiPageAssetsListAndTail) {
  for (const char* page : {"/", "/traces/00000000000000000000000000000002", "/tail", "/graph"}) {
    const int fd = testing::ConnectLoopback(server_->bound().port);
    ASSERT_GE(fd, 0);
    const std::string req = std::string("GET ") + page + " HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[65536];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 5000) > 0) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200")) << page;
    EXPECT_NE(out.find("text/html"), std::string::npos) << page;
    EXPECT_NE(out.find("<script src=\"/ui/app.js\">"), std::string::npos) << page;
  }
  EXPECT_EQ(Get("/nothing").first, 404);
  EXPECT_EQ(Get("/ui/nothing.js").first, 404);

  auto list = [&](const std::string& q) {
    auto [code, j] = Get("/api/ui/traces?" + q);
    EXPECT_EQ(code, 200) << q << ": " << j.dump();
    std::vector<std::string> out;
    for (const json& t : j["traces"]) out.push_back(t["traceID"]);
    return out;
  };
  const std::string t1 = "00000000000000000000000000000001", t2 = "00000000000000000000000000000002";
  EXPECT_EQ(list(""), (std::vector<std::string>{t2, t1}));
  EXPECT_EQ(list("status=error"), (std::vector<std::string>{t2}));
  EXPECT_EQ(list("minDuration=500ms"), (std::vector<std::string>{t2}));
  EXPECT_EQ(list("service=api&maxDuration=200ms"), (std::vector<std::string>{t1}));
  EXPECT_EQ(list("attr=http.response.status_code%3D500"), (std::vector<std::string>{t2}));
  EXPECT_EQ(Get("/api/ui/traces?minDuration=soon").first, 400);
  auto [code, j] = Get("/api/ui/traces?limit=1");
  ASSERT_EQ(code, 200);
  EXPECT_EQ(j["traces"][0], json({{"traceID", t2},
                                  {"rootService", "frontend"},
                                  {"rootName", "GET /checkout"},
                                  {"startTime", (kT0 + 1000 * kMs) / 1000},
                                  {"duration", 900'000},
                                  {"spanCount", 3},
                                  {"errorCount", 1}}));

  auto [c1, tail] = Get("/api/ui/tail");
  ASSERT_EQ(c1, 200);
  ASSERT_EQ(tail["spans"].size(), 6u);
  const int64_t third = tail["spans"][2]["seq"];
  auto [c2, rest] = Get("/api/ui/tail?after=" + std::to_string(third));
  ASSERT_EQ(rest["spans"].size(), 3u);
  EXPECT_EQ(rest["spans"][0]["traceID"], t2);
  EXPECT_EQ(rest["spans"][2]["error"], true);
  EXPECT_EQ(rest["spans"][2]["kind"], "SERVER");
}

TEST(JaegerParams, GoDurationsAndQueryStrings) {
  EXPECT_EQ(ParseGoDuration("1.2s"), 1'200'000'000u);
  EXPECT_EQ(ParseGoDuration("300ms"), 300'000'000u);
  EXPECT_EQ(ParseGoDuration("500us"), 500'000u);
  EXPECT_EQ(ParseGoDuration("1m30s"), 90'000'000'000u);
  EXPECT_EQ(ParseGoDuration("2h"), 7'200'000'000'000u);
  EXPECT_EQ(ParseGoDuration("0"), 0u);
  EXPECT_EQ(ParseGoDuration("12"), std::nullopt);
  EXPECT_EQ(ParseGoDuration("s"), std::nullopt);
  EXPECT_EQ(ParseGoDuration("1x"), std::nullopt);
  auto q = ParseQueryString("a=1&b=x%20y+z&&c&d=%zz");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>{"b", "x y z"}));
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>{"c", ""}));
  EXPECT_EQ(q[3].second, "%zz");
}

}  // namespace
}  // namespace kspan::ui
