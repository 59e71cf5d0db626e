// HTTP record -> gen_ai span (correlator/genai_span.h): which records become gen_ai spans,
// their attributes, the stream timing from the body's syscall marks, the tail of a long
// stream, errors, opt-in content, and the client metrics.
#include "correlator/genai_span.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace kspan::correlator {
namespace {

using protocols::http1::Message;
using protocols::http1::Record;

constexpr uint64_t kT0 = 1'700'000'000'000'000'000ULL;
constexpr uint64_t kMs = 1'000'000;

const char* kChatRequest =
    R"({"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},)"
    R"({"role":"user","content":"hi, my key is sk-abcdefghijklmnopqrstuvwx"}],"temperature":0.2,"max_tokens":64})";
const char* kChatResponse =
    R"({"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,)"
    R"("message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":17,"completion_tokens":9,"total_tokens":26}})";

Record LlmRecord(std::string target, std::string request_body, int status, std::string response_body,
                 std::string content_type = "application/json") {
  Record r;
  r.request.set_method("POST");
  r.request.set_target(std::move(target));
  r.request.set_version("1.1");
  r.request.SetHeaders({{"Host", "api.openai.com"},
                        {"Content-Type", "application/json"},
                        {"Authorization", "Bearer sk-secret"}});
  r.request.body_prefix = std::move(request_body);
  r.request.body_size = r.request.body_prefix.size();
  r.request.timing.start_ns = kT0;
  r.request.timing.end_ns = kT0 + 1'000;
  r.response.status_code = status;
  r.response.set_version("1.1");
  r.response.SetHeaders({{"Content-Type", std::move(content_type)}});
  r.response.body_prefix = std::move(response_body);
  r.response.body_size = r.response.body_prefix.size();
  r.response.timing.start_ns = kT0 + 30 * kMs;
  r.response.timing.end_ns = kT0 + 90 * kMs;
  return r;
}

HttpConnContext Client() {
  HttpConnContext c;
  c.is_server = false;
  c.pid = 43;
  c.tls = true;
  return c;
}

// The span BuildHttpSpan makes, then GenAiSpans::Apply.
struct Applied {
  bool gen_ai = false;
  model::Span span;
};

Applied Apply(GenAiSpans* g, const Record& r, const HttpConnContext& c = Client()) {
  Applied a;
  a.span = BuildHttpSpan(r, c, nullptr, {});
  a.gen_ai = g->Apply(r, c, &a.span);
  return a;
}

std::string Str(const model::Span& s, std::string_view key) {
  const model::AttributeValue* v = s.Find(key);
  const std::string* str = v ? std::get_if<std::string>(v) : nullptr;
  return str ? *str : "<missing>";
}

int64_t Int(const model::Span& s, std::string_view key) {
  const model::AttributeValue* v = s.Find(key);
  const int64_t* i = v ? std::get_if<int64_t>(v) : nullptr;
  return i ? *i : -1;
}

double Double(const model::Span& s, std::string_view key) {
  const model::AttributeValue* v = s.Find(key);
  const double* d = v ? std::get_if<double>(v) : nullptr;
  return d ? *d : -1;
}

model::StringArray Strings(const model::Span& s, std::string_view key) {
  const model::AttributeValue* v = s.Find(key);
  const model::StringArray* a = v ? std::get_if<model::StringArray>(v) : nullptr;
  return a ? *a : model::StringArray{};
}

// Histogram count and sum by series name + labels, as "name{k=v,...}".
std::map<std::string, metrics::Histogram::Data> Histograms(const metrics::Registry& m) {
  std::map<std::string, metrics::Histogram::Data> out;
  for (const auto& h : m.HistogramSnapshot()) out[metrics::SeriesName({h.name, h.labels, 0})] = h.data;
  return out;
}

class GenAiSpanTest : public ::testing::Test {
 protected:
  metrics::Registry metrics_;
  GenAiSpans spans_{GenAiOptions{}, &metrics_};
};

TEST_F(GenAiSpanTest, ChatCompletionEveryField) {
  const Applied a = Apply(&spans_, LlmRecord("/v1/chat/completions", kChatRequest, 200, kChatResponse));
  ASSERT_TRUE(a.gen_ai);
  const model::Span& s = a.span;
  EXPECT_EQ(s.name, "chat gpt-4o");
  EXPECT_EQ(Str(s, "gen_ai.operation.name"), "chat");
  EXPECT_EQ(Str(s, "gen_ai.provider.name"), "openai");
  EXPECT_EQ(Str(s, "gen_ai.request.model"), "gpt-4o");
  EXPECT_DOUBLE_EQ(Double(s, "gen_ai.request.temperature"), 0.2);
  EXPECT_EQ(Int(s, "gen_ai.request.max_tokens"), 64);
  EXPECT_EQ(Str(s, "gen_ai.response.id"), "chatcmpl-1");
  EXPECT_EQ(Str(s, "gen_ai.response.model"), "gpt-4o-2024-08-06");
  EXPECT_EQ(Strings(s, "gen_ai.response.finish_reasons"), model::StringArray{"stop"});
  EXPECT_EQ(Int(s, "gen_ai.usage.input_tokens"), 17);
  EXPECT_EQ(Int(s, "gen_ai.usage.output_tokens"), 9);
  EXPECT_EQ(s.status_code, model::StatusCode::kUnset);
  // The HTTP attributes stay; no content without the opt-in.
  EXPECT_EQ(Str(s, "http.request.method"), "POST");
  EXPECT_EQ(Int(s, "http.response.status_code"), 200);
  EXPECT_TRUE(s.events.empty());
  EXPECT_EQ(s.Find("gen_ai.response.time_to_first_chunk"), nullptr);

  const auto h = Histograms(metrics_);
  const std::string labels =
      "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o\","
      "gen_ai_response_model=\"gpt-4o-2024-08-06\",server_address=\"api.openai.com\"";
  ASSERT_EQ(h.count("gen_ai_client_token_usage{" + labels + ",gen_ai_token_type=\"input\"}"), 1u);
  EXPECT_EQ(h.at("gen_ai_client_token_usage{" + labels + ",gen_ai_token_type=\"input\"}").sum, 17);
  EXPECT_EQ(h.at("gen_ai_client_token_usage{" + labels + ",gen_ai_token_type=\"output\"}").sum, 9);
  const auto& d = h.at("gen_ai_client_operation_duration_seconds{" + labels + ",error_type=\"\"}");
  EXPECT_EQ(d.count, 1u);
  EXPECT_NEAR(d.sum, 0.090, 1e-9);
  EXPECT_EQ(metrics_.Sum("kspan_genai_calls_total"), 1u);
}

// Model names and addresses come from traffic: the gen_ai histograms' labels go through
// the registry's redactor (the pipeline's redaction rules), as the span's attributes do.
TEST_F(GenAiSpanTest, MetricLabelsGoThroughTheRegistrysRedactor) {
  metrics_.SetLabelRedactor([](std::string* v) {
    if (const size_t at = v->find("gpt-4o"); at != std::string::npos) v->replace(at, 6, "REDACTED");
  });
  ASSERT_TRUE(Apply(&spans_, LlmRecord("/v1/chat/completions", kChatRequest, 200, kChatResponse)).gen_ai);
  const auto h = Histograms(metrics_);
  ASSERT_FALSE(h.empty());
  for (const auto& [series, data] : h) EXPECT_EQ(series.find("gpt-4o"), std::string::npos) << series;
  EXPECT_EQ(h.count("gen_ai_client_operation_duration_seconds{gen_ai_operation_name=\"chat\","
                    "gen_ai_provider_name=\"openai\",gen_ai_request_model=\"REDACTED\","
                    "gen_ai_response_model=\"REDACTED-2024-08-06\",server_address=\"api.openai.com\","
                    "error_type=\"\"}"),
            1u);
}

TEST_F(GenAiSpanTest, StreamTimesItsFirstChunkFromTheSyscallMarks) {
  const std::string role =
      "data: "
      "{\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
      "\"content\":\"\"}}]}\n\n";
  const std::string first =
      "data: "
      "{\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
  const std::string last =
      "data: "
      "{\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]"
      "}\n\n"
      "data: "
      "{\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":"
      "5}}\n\n"
      "data: [DONE]\n\n";
  Record r = LlmRecord("/v1/chat/completions", R"({"model":"m","stream":true,"messages":[]})", 200,
                       role + first + last, "text/event-stream");
  // Three reads: the role chunk at 30 ms, the first content at 75 ms, the end at 90 ms.
  r.response.wide_body = true;
  r.response.body_marks = {
      {0, kT0 + 30 * kMs}, {role.size(), kT0 + 75 * kMs}, {role.size() + first.size(), kT0 + 90 * kMs}};
  const Applied a = Apply(&spans_, r);
  ASSERT_TRUE(a.gen_ai);
  EXPECT_NEAR(Double(a.span, "gen_ai.response.time_to_first_chunk"), 0.075, 1e-9);
  ASSERT_EQ(a.span.events.size(), 1u);
  EXPECT_EQ(a.span.events[0].name, "gen_ai.first_chunk");
  EXPECT_EQ(a.span.events[0].time_unix_nano, kT0 + 75 * kMs);
  EXPECT_EQ(Strings(a.span, "gen_ai.response.finish_reasons"), model::StringArray{"length"});
  EXPECT_EQ(Int(a.span, "gen_ai.usage.input_tokens"), 21);
  const auto h = Histograms(metrics_);
  size_t ttfc = 0;
  for (const auto& [name, data] : h) {
    if (name.starts_with("gen_ai_client_operation_time_to_first_chunk_seconds")) ttfc += data.count;
  }
  EXPECT_EQ(ttfc, 1u);
}

TEST_F(GenAiSpanTest, LongStreamTakesItsEndFromTheTail) {
  // The kept prefix ends mid-stream; the tail starts mid-event and holds the end.
  const std::string head =
      "data: {\"id\":\"c9\",\"model\":\"m-9\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
      "data: {\"id\":\"c9\",\"model\":\"m-9\",\"choi";
  const std::string tail =
      "\"content\":\"z\"}}]}\n\n"
      "data: "
      "{\"id\":\"c9\",\"model\":\"m-9\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}"
      "\n\n"
      "data: "
      "{\"id\":\"c9\",\"model\":\"m-9\",\"choices\":[],\"usage\":{\"prompt_tokens\":1000,\"completion_"
      "tokens\":4000}}\n\n"
      "data: [DONE]\n\n";
  Record r =
      LlmRecord("/v1/chat/completions", R"({"model":"m","stream":true})", 200, head, "text/event-stream");
  r.response.wide_body = true;
  r.response.body_tail = tail;
  r.response.body_tail_offset = 5'000'000;
  r.response.body_size = 5'000'000 + tail.size();
  const Applied a = Apply(&spans_, r);
  ASSERT_TRUE(a.gen_ai);
  EXPECT_EQ(Str(a.span, "gen_ai.response.id"), "c9");
  EXPECT_EQ(Strings(a.span, "gen_ai.response.finish_reasons"), model::StringArray{"stop"});
  EXPECT_EQ(Int(a.span, "gen_ai.usage.input_tokens"), 1000);
  EXPECT_EQ(Int(a.span, "gen_ai.usage.output_tokens"), 4000);
}

TEST_F(GenAiSpanTest, ApiErrorBeatsTheStatusCode) {
  const Applied a =
      Apply(&spans_,
            LlmRecord("/v1/chat/completions", kChatRequest, 429,
                      R"({"error":{"message":"Slow down","type":"requests","code":"rate_limit_exceeded"}})"));
  ASSERT_TRUE(a.gen_ai);
  EXPECT_EQ(a.span.status_code, model::StatusCode::kError);
  EXPECT_EQ(a.span.status_message, "Slow down");
  EXPECT_EQ(Str(a.span, "error.type"), "rate_limit_exceeded");
  bool found = false;
  for (const auto& [name, data] : Histograms(metrics_)) {
    if (name.starts_with("gen_ai_client_operation_duration_seconds") &&
        name.find("error_type=\"rate_limit_exceeded\"") != std::string::npos) {
      found = data.count == 1;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(GenAiSpanTest, OnlyClientCallsThatNameAModel) {
  // The server side of the same call stays an HTTP span.
  HttpConnContext server = Client();
  server.is_server = true;
  EXPECT_FALSE(
      Apply(&spans_, LlmRecord("/v1/chat/completions", kChatRequest, 200, kChatResponse), server).gen_ai);
  // An application's own /api/chat route, with no model on either side.
  const Applied app = Apply(&spans_, LlmRecord("/api/chat", R"({"text":"hi"})", 200, R"({"reply":"yo"})"));
  EXPECT_FALSE(app.gen_ai);
  EXPECT_EQ(app.span.name, "POST /api/chat");
  // Not an LLM path at all.
  EXPECT_FALSE(Apply(&spans_, LlmRecord("/v1/orders", kChatRequest, 200, kChatResponse)).gen_ai);
  EXPECT_EQ(metrics_.Sum("kspan_genai_calls_total"), 0u);
  EXPECT_TRUE(metrics_.HistogramSnapshot().empty());
}

TEST_F(GenAiSpanTest, CompressedResponseIsCountedAndTheRequestStillRead) {
  Record r = LlmRecord("/v1/chat/completions", kChatRequest, 200, std::string("\x1f\x8b\x08\x00garbage", 11));
  r.response.AddHeader("Content-Encoding", "zstd");
  const Applied a = Apply(&spans_, r);
  ASSERT_TRUE(a.gen_ai);
  EXPECT_EQ(Str(a.span, "gen_ai.request.model"), "gpt-4o");
  EXPECT_EQ(a.span.Find("gen_ai.usage.input_tokens"), nullptr);
  EXPECT_EQ(metrics_.Sum("kspan_genai_bodies_unread_total"), 1u);
  // An application's own /api/chat route with a body kspan cannot decode is no LLM call:
  // not counted as an unread LLM body.
  Record app = LlmRecord("/api/chat", R"({"text":"hi"})", 200, std::string("\x28\xb5\x2f\xfd", 4));
  app.response.AddHeader("Content-Encoding", "zstd");
  EXPECT_FALSE(Apply(&spans_, app).gen_ai);
  EXPECT_EQ(metrics_.Sum("kspan_genai_bodies_unread_total"), 1u);
}

TEST_F(GenAiSpanTest, GzippedResponseIsDecoded) {
  // kChatResponse, gzipped (what `gzip -c` writes), built here with zlib.
  std::string gz(compressBound(strlen(kChatResponse)) + 64, '\0');
  z_stream z{};
  ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(kChatResponse));
  z.avail_in = static_cast<uInt>(strlen(kChatResponse));
  z.next_out = reinterpret_cast<Bytef*>(gz.data());
  z.avail_out = static_cast<uInt>(gz.size());
  ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  gz.resize(z.total_out);
  deflateEnd(&z);
  Record r = LlmRecord("/v1/chat/completions", kChatRequest, 200, gz);
  r.response.AddHeader("Content-Encoding", "gzip");
  const Applied a = Apply(&spans_, r);
  ASSERT_TRUE(a.gen_ai);
  EXPECT_EQ(Str(a.span, "gen_ai.response.id"), "chatcmpl-1");
  EXPECT_EQ(Int(a.span, "gen_ai.usage.output_tokens"), 9);
  EXPECT_EQ(metrics_.Sum("kspan_genai_bodies_unread_total"), 0u);
}

TEST(GenAiSpanContent, OptInAddsRedactedMessagesAsAnEvent) {
  metrics::Registry m;
  GenAiSpans spans(GenAiOptions{.capture_content = true}, &m);
  const Applied a = Apply(&spans, LlmRecord("/v1/chat/completions", kChatRequest, 200, kChatResponse));
  ASSERT_TRUE(a.gen_ai);
  ASSERT_EQ(a.span.events.size(), 1u);
  const model::SpanEvent& e = a.span.events[0];
  EXPECT_EQ(e.name, "gen_ai.client.inference.operation.details");
  std::map<std::string, std::string> attrs;
  for (const auto& at : e.attributes) attrs[std::string(at.key)] = std::get<std::string>(at.value);
  EXPECT_EQ(attrs["gen_ai.input.messages"],
            R"([{"role":"system","parts":[{"type":"text","content":"Be brief."}]},)"
            R"({"role":"user","parts":[{"type":"text","content":"hi, my key is REDACTED"}]}])");
  EXPECT_EQ(attrs["gen_ai.output.messages"],
            R"([{"role":"assistant","parts":[{"type":"text","content":"hello"}],"finish_reason":"stop"}])");
}

TEST(GenAiSpanWideBodies, WhichRequestsKeepWideBodies) {
  auto head = [](std::string method, std::string target) {
    Message m;
    m.set_method(std::move(method));
    m.set_target(std::move(target));
    return m;
  };
  EXPECT_TRUE(GenAiSpans::MayBeLlmCall(head("POST", "/v1/chat/completions")));
  EXPECT_TRUE(GenAiSpans::MayBeLlmCall(head("POST", "/api/generate")));
  EXPECT_FALSE(GenAiSpans::MayBeLlmCall(head("GET", "/v1/chat/completions")));
  EXPECT_FALSE(GenAiSpans::MayBeLlmCall(head("POST", "/upload")));
}

}  // namespace
}  // namespace kspan::correlator
