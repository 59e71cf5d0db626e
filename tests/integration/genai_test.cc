// LLM calls end to end: the real `openai` and `@anthropic-ai/sdk` npm SDKs (node's
// OpenSSL) and python's urllib (libssl) call tests/apps/llm_mock.js over HTTPS on
// loopback; kspan, started first, turns each call into a gen_ai CLIENT span with the
// model, the token counts the mock returned, finish reasons, time to first chunk for
// streams, the API's error for a 429, and the gen_ai client metrics. By default neither a
// prompt nor an API key appears in anything kspan writes; with --genai-capture-content the
// prompt and completion appear, still without the key.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "testing/otlp_reader.h"
#include "testing/subprocess.h"

namespace kspan::testing {
namespace {

constexpr int kClient = 3;
// What the clients send (tests/apps/llm_*_client.*): never to be seen by default.
constexpr const char* kOpenAiKey = "sk-kspan-test-SECRET-0123456789";
constexpr const char* kAnthropicKey = "sk-ant-kspan-test-SECRET-0123456789";
constexpr const char* kPrompt = "PROMPT-SECRET-kspan-7f3a";

std::string Apps() {
  return std::string(KSPAN_SOURCE_DIR) + "/tests/apps/";
}

// gen_ai CLIENT spans to the mock, oldest first.
std::vector<FlatSpan> LlmSpans(const std::vector<FlatSpan>& all, int port) {
  std::vector<FlatSpan> out;
  for (const auto& s : all) {
    if (s.kind == kClient && s.Int("server.port") == port && s.Has("gen_ai.operation.name")) out.push_back(s);
  }
  std::sort(out.begin(), out.end(),
            [](const FlatSpan& a, const FlatSpan& b) { return a.start_ns < b.start_ns; });
  return out;
}

// The sum of every series of a stopped agent's histogram summary whose name (with its
// _count or _sum) and labels contain every one of `parts`.
double HistogramTotal(const std::map<std::string, double>& all, const std::vector<std::string>& parts) {
  double total = 0;
  for (const auto& [series, value] : all) {
    if (std::all_of(parts.begin(), parts.end(),
                    [&](const std::string& p) { return series.find(p) != std::string::npos; })) {
      total += value;
    }
  }
  return total;
}

class GenAiIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("kspan-genai-");
    const std::string error = MakeTestCertificate(dir_);
    ASSERT_TRUE(error.empty()) << error;
  }

  // kspan first (with `args`), then the mock: everything TLS starts after kspan.
  // `mock_mode` "h2": the mock also speaks HTTP/2 (ALPN).
  void StartAll(const std::vector<std::string>& args = {}, const std::string& mock_mode = "") {
    std::vector<std::string> all = {"--output", "console"};
    all.insert(all.end(), args.begin(), args.end());
    ASSERT_TRUE(agent_.Start(all)) << "kspan did not become ready:\n" << agent_.Logs();
    port_ = FreePort();
    std::vector<std::string> mock = {"node", Apps() + "llm_mock.js", std::to_string(port_),
                                     dir_ + "/cert.pem", dir_ + "/key.pem"};
    if (!mock_mode.empty()) mock.push_back(mock_mode);
    ASSERT_TRUE(mock_.Start(mock));
    ASSERT_TRUE(WaitForPort("127.0.0.1", port_, std::chrono::seconds(15))) << mock_.Stderr();
  }

  // Runs one client scenario to completion; `program` is a file in tests/apps.
  void RunClient(const std::string& program, const std::string& scenario) {
    std::vector<std::string> argv;
    if (program.ends_with(".py")) {
      argv = {"/usr/bin/python3", Apps() + program};
    } else {
      argv = {"node", Apps() + program};
    }
    argv.insert(argv.end(), {std::to_string(port_), dir_ + "/cert.pem", scenario});
    Subprocess client;
    ASSERT_TRUE(client.Start(argv, {{"NODE_EXTRA_CA_CERTS", dir_ + "/cert.pem"}}));
    const int st = client.Wait(std::chrono::seconds(60));
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
        << program << " " << scenario << " failed (" << st << "):\n"
        << client.Stdout() << client.Stderr();
  }

  std::vector<FlatSpan> WaitForLlmSpans(size_t n) {
    std::vector<FlatSpan> spans;
    WaitFor([&] { return (spans = LlmSpans(ReadSpans(agent_.SpansPath()), port_)).size() >= n; },
            std::chrono::seconds(20));
    EXPECT_EQ(spans.size(), n) << agent_.Logs();
    return spans;
  }

  // Stops kspan, checks a clean stop with no parse failure, and that nothing it wrote
  // (spans file, console, logs) holds an API key, or a prompt unless `prompts_allowed`.
  void StopAndCheckOutputs(bool prompts_allowed = false) {
    ExpectCleanStop(agent_);
    EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http1\"}"), 0) << agent_.Logs();
    const std::string everything =
        ReadFileOrEmpty(agent_.SpansPath()) + agent_.process().Stdout() + agent_.Logs();
    EXPECT_EQ(everything.find(kOpenAiKey), std::string::npos) << "an OpenAI key left kspan";
    EXPECT_EQ(everything.find(kAnthropicKey), std::string::npos) << "an Anthropic key left kspan";
    EXPECT_EQ(everything.find("SECRET-0123456789"), std::string::npos) << "part of a key left kspan";
    if (!prompts_allowed) EXPECT_EQ(everything.find(kPrompt), std::string::npos) << "a prompt left kspan";
  }

  // The attributes of the mock's non-streaming OpenAI chat answer (tests/apps/llm_mock.js).
  static void ExpectOpenAiChat(const FlatSpan& s) {
    EXPECT_EQ(s.name, "chat gpt-4o");
    EXPECT_EQ(s.Str("gen_ai.operation.name"), "chat");
    EXPECT_EQ(s.Str("gen_ai.provider.name"), "openai");
    EXPECT_EQ(s.Str("gen_ai.request.model"), "gpt-4o");
    EXPECT_EQ(s.Str("gen_ai.response.model"), "gpt-4o-2024-08-06");
    EXPECT_EQ(s.Str("gen_ai.response.id"), "chatcmpl-mock-1");
    EXPECT_EQ(s.Strings("gen_ai.response.finish_reasons"), std::vector<std::string>{"stop"});
    EXPECT_EQ(s.Int("gen_ai.usage.input_tokens"), 17);
    EXPECT_EQ(s.Int("gen_ai.usage.output_tokens"), 9);
    EXPECT_EQ(s.Int("gen_ai.usage.cache_read.input_tokens"), 3);
    EXPECT_EQ(s.Int("gen_ai.usage.reasoning.output_tokens"), 2);
    EXPECT_DOUBLE_EQ(s.Double("gen_ai.request.temperature"), 0.2);
    EXPECT_DOUBLE_EQ(s.Double("gen_ai.request.top_p"), 0.9);
    EXPECT_EQ(s.Int("gen_ai.request.max_tokens"), 64);
    EXPECT_FALSE(s.Bool("gen_ai.request.stream"));
    EXPECT_EQ(s.status_code, 0);
    // The HTTP attributes stay.
    EXPECT_EQ(s.Str("http.request.method"), "POST");
    EXPECT_EQ(s.Int("http.response.status_code"), 200);
    EXPECT_TRUE(s.Str("url.full").starts_with("https://localhost:")) << s.Str("url.full");
  }

  // The streaming answer: its own usage chunk and finish reason, and a time to first chunk
  // of at least the mock's 40 ms pause, recorded as an attribute and an event.
  static void ExpectOpenAiStream(const FlatSpan& s) {
    EXPECT_EQ(s.name, "chat gpt-4o");
    EXPECT_TRUE(s.Bool("gen_ai.request.stream"));
    EXPECT_EQ(s.Str("gen_ai.response.model"), "gpt-4o-2024-08-06");
    EXPECT_EQ(s.Strings("gen_ai.response.finish_reasons"), std::vector<std::string>{"length"});
    EXPECT_EQ(s.Int("gen_ai.usage.input_tokens"), 21);
    EXPECT_EQ(s.Int("gen_ai.usage.output_tokens"), 5);
    ExpectFirstChunk(s);
  }

  static void ExpectFirstChunk(const FlatSpan& s) {
    const double ttfc = s.Double("gen_ai.response.time_to_first_chunk");
    const double duration = static_cast<double>(s.end_ns - s.start_ns) / 1e9;
    EXPECT_GE(ttfc, 0.035) << "the mock pauses 40 ms before the first content";
    EXPECT_LT(ttfc, duration) << "the stream goes on after its first content chunk";
    const FlatEvent* e = s.Event("gen_ai.first_chunk");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->time_ns, s.start_ns + static_cast<uint64_t>(std::llround(ttfc * 1e9)));
  }

  static std::string dir_;
  KspanAgent agent_;
  Subprocess mock_;
  int port_ = 0;
};

std::string GenAiIntegration::dir_;

TEST_F(GenAiIntegration, OpenAiSdkChatStreamAndEmbeddings) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_openai_client.js", "all"));
  const auto spans = WaitForLlmSpans(3);
  ASSERT_EQ(spans.size(), 3u);
  ExpectOpenAiChat(spans[0]);
  ExpectOpenAiStream(spans[1]);

  const FlatSpan& e = spans[2];
  EXPECT_EQ(e.name, "embeddings text-embedding-3-small");
  EXPECT_EQ(e.Str("gen_ai.operation.name"), "embeddings");
  EXPECT_EQ(e.Str("gen_ai.response.model"), "text-embedding-3-small");
  EXPECT_EQ(e.Int("gen_ai.usage.input_tokens"), 8);
  EXPECT_FALSE(e.Has("gen_ai.usage.output_tokens"));
  EXPECT_EQ(e.Strings("gen_ai.request.encoding_formats"), std::vector<std::string>{"base64"});

  StopAndCheckOutputs();
  // The client metrics: one duration per call, tokens as the mock counted them, one time
  // to first chunk (the stream).
  const auto h = agent_.StoppedHistograms();
  EXPECT_EQ(HistogramTotal(h, {"gen_ai_client_operation_duration_seconds_count"}), 3) << agent_.Logs();
  EXPECT_EQ(HistogramTotal(h, {"gen_ai_client_token_usage_sum", "gen_ai_token_type=\"input\""}), 17 + 21 + 8);
  EXPECT_EQ(HistogramTotal(h, {"gen_ai_client_token_usage_sum", "gen_ai_token_type=\"output\""}), 9 + 5);
  EXPECT_EQ(HistogramTotal(h, {"gen_ai_client_operation_time_to_first_chunk_seconds_count"}), 1);
  EXPECT_EQ(agent_.StoppedCounter("kspan_genai_calls_total"), 3);
}

TEST_F(GenAiIntegration, AnthropicSdkChatAndStream) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_anthropic_client.js", "chat"));
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_anthropic_client.js", "stream"));
  const auto spans = WaitForLlmSpans(2);
  ASSERT_EQ(spans.size(), 2u);
  for (const FlatSpan& s : spans) {
    EXPECT_EQ(s.name, "chat claude-sonnet-4-5");
    EXPECT_EQ(s.Str("gen_ai.provider.name"), "anthropic");
    EXPECT_EQ(s.Str("gen_ai.response.id"), "msg_mock_1");
    EXPECT_EQ(s.Str("gen_ai.response.model"), "claude-sonnet-4-5");
    EXPECT_EQ(s.Strings("gen_ai.response.finish_reasons"), std::vector<std::string>{"end_turn"});
    // message_start says output_tokens 1; message_delta's 11 is the total.
    EXPECT_EQ(s.Int("gen_ai.usage.input_tokens"), 25);
    EXPECT_EQ(s.Int("gen_ai.usage.output_tokens"), 11);
    EXPECT_EQ(s.Int("gen_ai.request.max_tokens"), 128);
  }
  EXPECT_FALSE(spans[0].Bool("gen_ai.request.stream"));
  EXPECT_TRUE(spans[1].Bool("gen_ai.request.stream"));
  ExpectFirstChunk(spans[1]);
  StopAndCheckOutputs();
}

TEST_F(GenAiIntegration, PythonUrllibThroughLibssl) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_client.py", "chat"));
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_client.py", "stream"));
  const auto spans = WaitForLlmSpans(2);
  ASSERT_EQ(spans.size(), 2u);
  ExpectOpenAiChat(spans[0]);
  ExpectOpenAiStream(spans[1]);
  StopAndCheckOutputs();
}

// The same calls over HTTP/2 (httpx with h2, as the openai python SDK can be set up): the
// HTTP/2 parser keeps an LLM call's bodies as wide as HTTP/1's, so the span reads the same,
// time to first chunk included.
TEST_F(GenAiIntegration, PythonHttpxOverHttp2) {
  ASSERT_NO_FATAL_FAILURE(StartAll({}, "h2"));
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_h2_client.py", "chat"));
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_h2_client.py", "stream"));
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_h2_client.py", "big"));
  const auto spans = WaitForLlmSpans(3);
  ASSERT_EQ(spans.size(), 3u);
  ExpectOpenAiChat(spans[0]);
  ExpectOpenAiStream(spans[1]);
  // 40 KB each way. The answer (gzip, as httpx asks) is read whole. The request's model
  // lies 40 KB into a body the kernel captured 4 KiB per write of: on HTTP/2 the kernel
  // cannot see an LLM path to widen the capture (docs/genai.md), so the span is named by
  // its operation alone (the conventions' name without a request model).
  EXPECT_EQ(spans[2].name, "chat");
  EXPECT_FALSE(spans[2].Has("gen_ai.request.model"));
  EXPECT_EQ(spans[2].Str("gen_ai.response.model"), "gpt-4o-big-2024-08-06");
  EXPECT_EQ(spans[2].Strings("gen_ai.response.finish_reasons"), std::vector<std::string>{"stop"});
  EXPECT_EQ(spans[2].Int("gen_ai.usage.output_tokens"), 9);
  for (const FlatSpan& s : spans) EXPECT_EQ(s.Str("network.protocol.version"), "2") << s.name;
  StopAndCheckOutputs();
  EXPECT_EQ(agent_.StoppedCounter("kspan_parse_failures_total{protocol=\"http2\"}"), 0) << agent_.Logs();
}

// Past the default capture: a 40 KB prompt before "model" (the openai python SDK's body
// order) and a 40 KB answer with its usage at the end. LLM connections capture up to
// 4 x 16 KiB per write and keep 1 MiB of each body (docs/genai.md).
TEST_F(GenAiIntegration, LargeBodiesAreReadPastTheDefaultCapture) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_client.py", "big"));
  const auto spans = WaitForLlmSpans(1);
  ASSERT_EQ(spans.size(), 1u);
  const FlatSpan& s = spans[0];
  EXPECT_EQ(s.name, "chat gpt-4o-big");
  EXPECT_EQ(s.Str("gen_ai.request.model"), "gpt-4o-big");
  EXPECT_EQ(s.Int("gen_ai.request.max_tokens"), 64);
  EXPECT_EQ(s.Str("gen_ai.response.model"), "gpt-4o-big-2024-08-06");
  EXPECT_EQ(s.Strings("gen_ai.response.finish_reasons"), std::vector<std::string>{"stop"});
  EXPECT_EQ(s.Int("gen_ai.usage.input_tokens"), 17);
  EXPECT_EQ(s.Int("gen_ai.usage.output_tokens"), 9);
  EXPECT_GT(s.Int("http.request.body.size"), 40000);
  EXPECT_GT(s.Int("http.response.body.size"), 40000);
  StopAndCheckOutputs();
}

TEST_F(GenAiIntegration, ApiErrorMarksTheSpan) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_openai_client.js", "error"));
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_anthropic_client.js", "error"));
  const auto spans = WaitForLlmSpans(2);
  ASSERT_EQ(spans.size(), 2u);
  for (const FlatSpan& s : spans) {
    EXPECT_EQ(s.name, "chat rate-limited-model");
    EXPECT_EQ(s.status_code, 2) << "ERROR";
    EXPECT_EQ(s.status_message, "Rate limit reached for mock");
    EXPECT_EQ(s.Int("http.response.status_code"), 429);
  }
  EXPECT_EQ(spans[0].Str("error.type"), "rate_limit_exceeded");  // OpenAI: the error's code
  EXPECT_EQ(spans[1].Str("error.type"), "rate_limit_error");     // Anthropic: error.type
  StopAndCheckOutputs();
  EXPECT_EQ(HistogramTotal(agent_.StoppedHistograms(),
                           {"gen_ai_client_operation_duration_seconds_count", "error_type=\"rate_limit"}),
            2);
}

TEST_F(GenAiIntegration, ContentOnlyWhenAskedAndNeverTheKey) {
  ASSERT_NO_FATAL_FAILURE(StartAll({"--genai-capture-content"}));
  ASSERT_NO_FATAL_FAILURE(RunClient("llm_openai_client.js", "chat"));
  const auto spans = WaitForLlmSpans(1);
  ASSERT_EQ(spans.size(), 1u);
  const FlatEvent* e = spans[0].Event("gen_ai.client.inference.operation.details");
  ASSERT_NE(e, nullptr);
  const std::string input = e->attributes.count("gen_ai.input.messages")
                                ? e->attributes.at("gen_ai.input.messages").value("stringValue", "")
                                : "";
  const std::string output = e->attributes.count("gen_ai.output.messages")
                                 ? e->attributes.at("gen_ai.output.messages").value("stringValue", "")
                                 : "";
  EXPECT_NE(input.find(kPrompt), std::string::npos) << input;
  EXPECT_NE(input.find("\"role\":\"user\""), std::string::npos) << input;
  EXPECT_NE(output.find("MOCK_COMPLETION_TEXT"), std::string::npos) << output;
  StopAndCheckOutputs(/*prompts_allowed=*/true);
}

}  // namespace
}  // namespace kspan::testing
