#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "genai/llm.h"

namespace kspan::genai {
namespace {

using namespace std::string_view_literals;
using Strings = std::vector<std::string>;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kSse = "text/event-stream; charset=utf-8";
constexpr std::string_view kNdjson = "application/x-ndjson";

// ---- RecognizeRequest ------------------------------------------------------------------------

struct RecognizeCase {
  const char* name;
  std::string_view method;
  std::string_view target;
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::optional<Api> want;
};

// Tests print their parameter: the name is what says which case it is.
void PrintTo(const RecognizeCase& c, std::ostream* os) {
  *os << c.name;
}

class GenaiRecognizeTest : public testing::TestWithParam<RecognizeCase> {};

TEST_P(GenaiRecognizeTest, Recognizes) {
  const RecognizeCase& c = GetParam();
  const HeaderLookup headers = [&c](std::string_view name) {
    for (const auto& [k, v] : c.headers) {
      if (k == name) return v;
    }
    return ""sv;
  };
  EXPECT_EQ(RecognizeRequest(c.method, c.target, headers), c.want);
}

constexpr std::optional<Api> kNone = std::nullopt;

const RecognizeCase kRecognizeCases[] = {
    {"openai_chat", "POST", "/v1/chat/completions", {}, Api::kOpenAiChat},
    {"azure_chat",
     "POST",
     "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
     {},
     Api::kOpenAiChat},
    {"gemini_compat_chat", "POST", "/v1beta/openai/chat/completions", {}, Api::kOpenAiChat},
    {"groq_chat", "POST", "/openai/v1/chat/completions", {}, Api::kOpenAiChat},
    {"openrouter_chat", "POST", "/api/v1/chat/completions", {}, Api::kOpenAiChat},
    {"litellm_root_chat", "POST", "/chat/completions", {}, Api::kOpenAiChat},
    {"absolute_form", "POST", "https://api.openai.com/v1/chat/completions", {}, Api::kOpenAiChat},
    {"trailing_slash", "POST", "/v1/chat/completions/", {}, Api::kOpenAiChat},
    {"fragment_ignored", "POST", "/v1/chat/completions#x", {}, Api::kOpenAiChat},
    {"responses", "POST", "/v1/responses", {}, Api::kOpenAiResponses},
    {"azure_responses",
     "POST",
     "/openai/responses?api-version=2025-04-01-preview",
     {},
     Api::kOpenAiResponses},
    {"root_responses", "POST", "/responses", {}, Api::kOpenAiResponses},
    {"embeddings", "POST", "/v1/embeddings", {}, Api::kOpenAiEmbeddings},
    {"azure_embeddings",
     "POST",
     "/openai/deployments/emb-3/embeddings?api-version=2024-10-21",
     {},
     Api::kOpenAiEmbeddings},
    {"gemini_embeddings", "POST", "/v1beta/openai/embeddings", {}, Api::kOpenAiEmbeddings},
    {"completions", "POST", "/v1/completions", {}, Api::kOpenAiCompletions},
    {"absolute_completions_query",
     "POST",
     "http://localhost:8000/v1/completions?x=1",
     {},
     Api::kOpenAiCompletions},
    {"azure_completions", "POST", "/openai/deployments/davinci/completions", {}, Api::kOpenAiCompletions},
    {"zhipu_v4_completions", "POST", "/api/paas/v4/completions", {}, Api::kOpenAiCompletions},
    {"anthropic", "POST", "/v1/messages", {}, Api::kAnthropicMessages},
    {"anthropic_behind_prefix", "POST", "/anthropic/v1/messages", {}, Api::kAnthropicMessages},
    {"anthropic_version_header",
     "POST",
     "/messages",
     {{"anthropic-version", "2023-06-01"}},
     Api::kAnthropicMessages},
    {"anthropic_api_key_header",
     "POST",
     "/v2/messages",
     {{"x-api-key", "sk-ant-…"}},
     Api::kAnthropicMessages},
    {"ollama_chat", "POST", "/api/chat", {}, Api::kOllamaChat},
    {"ollama_generate", "POST", "/api/generate", {}, Api::kOllamaGenerate},
    {"ollama_embed", "POST", "/api/embed", {}, Api::kOllamaEmbed},
    {"ollama_legacy_embeddings", "POST", "/api/embeddings", {}, Api::kOllamaEmbed},
    {"ollama_behind_proxy", "POST", "http://webui:8080/ollama/api/chat", {}, Api::kOllamaChat},

    {"get_is_not_a_call", "GET", "/v1/chat/completions", {}, kNone},
    {"method_is_case_sensitive", "post", "/v1/chat/completions", {}, kNone},
    {"get_response_by_id", "GET", "/v1/responses/resp_123", {}, kNone},
    {"post_response_by_id", "POST", "/v1/responses/resp_123", {}, kNone},
    {"cancel_response", "POST", "/v1/responses/resp_123/cancel", {}, kNone},
    {"count_tokens", "POST", "/v1/messages/count_tokens", {{"anthropic-version", "2023-06-01"}}, kNone},
    {"message_batches", "POST", "/v1/messages/batches", {{"anthropic-version", "2023-06-01"}}, kNone},
    {"messages_without_evidence", "POST", "/messages", {}, kNone},
    {"chat_app_messages", "POST", "/rooms/7/messages", {{"x-api-key", "k"}}, kNone},
    {"survey_responses", "POST", "/surveys/7/responses", {}, kNone},
    {"app_completions", "POST", "/forms/completions", {}, kNone},
    {"chat_completions_lookalike", "POST", "/v1/chat/completions-beta", {}, kNone},
    {"models", "POST", "/v1/models", {}, kNone},
    {"root", "POST", "/", {}, kNone},
    {"empty", "POST", "", {}, kNone},
    {"asterisk", "POST", "*", {}, kNone},
    {"authority_only", "POST", "https://api.openai.com", {}, kNone},
};

INSTANTIATE_TEST_SUITE_P(Cases, GenaiRecognizeTest, testing::ValuesIn(kRecognizeCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GenaiRecognizeTest, MissingHeaderLookup) {
  EXPECT_EQ(RecognizeRequest("POST", "/v1/messages", nullptr), Api::kAnthropicMessages);
  EXPECT_EQ(RecognizeRequest("POST", "/messages", nullptr), kNone);
}

// ---- OperationName, ProviderName -----------------------------------------------------------

TEST(GenaiOperationNameTest, PerApi) {
  EXPECT_EQ(OperationName(Api::kOpenAiChat), "chat");
  EXPECT_EQ(OperationName(Api::kOpenAiResponses), "chat");
  EXPECT_EQ(OperationName(Api::kAnthropicMessages), "chat");
  EXPECT_EQ(OperationName(Api::kOllamaChat), "chat");
  EXPECT_EQ(OperationName(Api::kOpenAiCompletions), "text_completion");
  EXPECT_EQ(OperationName(Api::kOllamaGenerate), "text_completion");
  EXPECT_EQ(OperationName(Api::kOpenAiEmbeddings), "embeddings");
  EXPECT_EQ(OperationName(Api::kOllamaEmbed), "embeddings");
}

struct ProviderCase {
  const char* name;
  Api api;
  std::string_view host;
  std::string_view want;
};

void PrintTo(const ProviderCase& c, std::ostream* os) {
  *os << c.name;
}

class GenaiProviderTest : public testing::TestWithParam<ProviderCase> {};

TEST_P(GenaiProviderTest, Maps) {
  EXPECT_EQ(ProviderName(GetParam().api, GetParam().host), GetParam().want);
}

const ProviderCase kProviderCases[] = {
    {"openai", Api::kOpenAiChat, "api.openai.com", "openai"},
    {"openai_case_and_dot", Api::kOpenAiChat, "API.OpenAI.com.", "openai"},
    {"openai_regional", Api::kOpenAiResponses, "eu.api.openai.com", "openai"},
    {"azure_openai", Api::kOpenAiChat, "my-res.openai.azure.com", "azure.ai.openai"},
    {"azure_cognitive", Api::kOpenAiEmbeddings, "my-res.cognitiveservices.azure.com", "azure.ai.openai"},
    {"azure_foundry", Api::kOpenAiChat, "proj.services.ai.azure.com", "azure.ai.inference"},
    {"anthropic", Api::kAnthropicMessages, "api.anthropic.com", "anthropic"},
    {"groq", Api::kOpenAiChat, "api.groq.com", "groq"},
    {"mistral", Api::kOpenAiChat, "api.mistral.ai", "mistral_ai"},
    {"codestral", Api::kOpenAiCompletions, "codestral.mistral.ai", "mistral_ai"},
    {"deepseek", Api::kOpenAiChat, "api.deepseek.com", "deepseek"},
    {"deepseek_anthropic_shape", Api::kAnthropicMessages, "api.deepseek.com", "deepseek"},
    {"xai", Api::kOpenAiChat, "api.x.ai", "x_ai"},
    {"perplexity", Api::kOpenAiChat, "api.perplexity.ai", "perplexity"},
    {"gemini", Api::kOpenAiChat, "generativelanguage.googleapis.com", "gcp.gemini"},
    {"vertex_global", Api::kOpenAiChat, "aiplatform.googleapis.com", "gcp.vertex_ai"},
    {"vertex_regional", Api::kOpenAiChat, "us-central1-aiplatform.googleapis.com", "gcp.vertex_ai"},
    {"bedrock", Api::kOpenAiChat, "bedrock-runtime.us-east-1.amazonaws.com", "aws.bedrock"},
    {"bedrock_fips", Api::kOpenAiChat, "bedrock-runtime-fips.us-west-2.amazonaws.com", "aws.bedrock"},
    {"bedrock_china", Api::kOpenAiChat, "bedrock-runtime.cn-north-1.amazonaws.com.cn", "aws.bedrock"},
    {"cohere", Api::kOpenAiChat, "api.cohere.com", "cohere"},
    {"cohere_ai", Api::kOpenAiEmbeddings, "api.cohere.ai", "cohere"},
    {"watsonx", Api::kOpenAiChat, "us-south.ml.cloud.ibm.com", "ibm.watsonx.ai"},
    {"moonshot", Api::kOpenAiChat, "api.moonshot.ai", "moonshot_ai"},
    {"moonshot_cn", Api::kOpenAiChat, "api.moonshot.cn", "moonshot_ai"},
    {"unknown_host_openai_shape", Api::kOpenAiChat, "127.0.0.1", "openai"},
    {"unknown_host_anthropic_shape", Api::kAnthropicMessages, "localhost", "anthropic"},
    {"unknown_host_ollama_shape", Api::kOllamaChat, "localhost", "ollama"},
    {"ollama_embed_shape", Api::kOllamaEmbed, "gpu-box.lan", "ollama"},
    {"not_a_subdomain", Api::kAnthropicMessages, "notopenai.com", "anthropic"},
    {"suffix_is_not_a_domain", Api::kAnthropicMessages, "max.ai", "anthropic"},
    {"vendor_name_inside", Api::kAnthropicMessages, "openai.com.evil.example", "anthropic"},
    {"bedrock_elsewhere", Api::kAnthropicMessages, "bedrock-runtime.example.com", "anthropic"},
    {"empty_host", Api::kOllamaGenerate, "", "ollama"},
};

INSTANTIATE_TEST_SUITE_P(Cases, GenaiProviderTest, testing::ValuesIn(kProviderCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- ParseRequest ------------------------------------------------------------------------------

std::string Describe(const std::vector<Message>& messages) {
  std::string out;
  for (const Message& m : messages) {
    out += m.role + ": " + m.text;
    for (const std::string& t : m.tool_calls) out += " <" + t + ">";
    out += "\n";
  }
  return out;
}

constexpr std::string_view kOpenAiChatRequest = R"({"model":"gpt-4o-mini","messages":[
  {"role":"system","content":"You are terse."},
  {"role":"user","content":[{"type":"text","text":"What is in this image?"},
    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
    {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]},
  {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
    "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
  {"role":"tool","tool_call_id":"call_1","content":"rainy, 14\u00b0C"}],
 "temperature":0.2,"top_p":0.9,"n":2,"stop":["END","STOP"],"max_completion_tokens":256,
 "frequency_penalty":0.5,"presence_penalty":-0.5,"seed":42,"stream":true,
 "stream_options":{"include_usage":true},
 "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
   "properties":{"city":{"type":"string"}},"required":["city"]}}}]})";

TEST(GenaiParseRequestTest, OpenAiChat) {
  const RequestInfo r = ParseRequest(Api::kOpenAiChat, kOpenAiChatRequest, false, true);
  EXPECT_EQ(r.model, "gpt-4o-mini");
  EXPECT_EQ(r.stream, true);
  EXPECT_EQ(r.temperature, 0.2);
  EXPECT_EQ(r.top_p, 0.9);
  EXPECT_EQ(r.top_k, std::nullopt);
  EXPECT_EQ(r.frequency_penalty, 0.5);
  EXPECT_EQ(r.presence_penalty, -0.5);
  EXPECT_EQ(r.max_tokens, 256);
  EXPECT_EQ(r.seed, 42);
  EXPECT_EQ(r.choice_count, 2);
  EXPECT_EQ(r.stop_sequences, (Strings{"END", "STOP"}));
  EXPECT_TRUE(r.encoding_formats.empty());
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(Describe(r.input_messages),
            "system: You are terse.\n"
            "user: What is in this image?\n[image]\n[audio]\n"
            "assistant:  <get_weather>\n"
            "tool: rainy, 14\xC2\xB0"
            "C\n");
  EXPECT_EQ(r.system_instructions, "");  // system messages stay in the history
}

TEST(GenaiParseRequestTest, ContentOnlyWhenAsked) {
  const RequestInfo r = ParseRequest(Api::kOpenAiChat, kOpenAiChatRequest, false, false);
  EXPECT_EQ(r.model, "gpt-4o-mini");
  EXPECT_TRUE(r.input_messages.empty());
  EXPECT_TRUE(r.system_instructions.empty());
}

TEST(GenaiParseRequestTest, OpenAiStreamDefaults) {
  EXPECT_EQ(ParseRequest(Api::kOpenAiChat, R"({"model":"m","messages":[]})", false, false).stream, false);
  EXPECT_EQ(ParseRequest(Api::kOpenAiChat, R"({"model":"m","stream":false})", false, false).stream, false);
  // Cut before "stream" could be seen: unknown.
  EXPECT_EQ(ParseRequest(Api::kOpenAiChat, R"({"model":"m","messages":[)", false, false).stream,
            std::nullopt);
  EXPECT_EQ(ParseRequest(Api::kOpenAiChat, R"({"model":"m"})", true, false).stream, std::nullopt);
  // Seen before the cut: known.
  EXPECT_EQ(ParseRequest(Api::kOpenAiChat, R"({"stream":true,"model":"m","mess)", false, false).stream, true);
}

TEST(GenaiParseRequestTest, MaxTokensSpellings) {
  EXPECT_EQ(ParseRequest(Api::kOpenAiChat, R"({"max_tokens":10})", false, false).max_tokens, 10);
  EXPECT_EQ(ParseRequest(Api::kOpenAiChat, R"({"max_tokens":10,"max_completion_tokens":20})", false, false)
                .max_tokens,
            20);
  EXPECT_EQ(ParseRequest(Api::kOpenAiResponses, R"({"max_output_tokens":30})", false, false).max_tokens, 30);
  EXPECT_EQ(ParseRequest(Api::kOpenAiChat, R"({"max_tokens":null})", false, false).max_tokens, std::nullopt);
  EXPECT_EQ(ParseRequest(Api::kOpenAiChat, R"({"stop":"\n"})", false, false).stop_sequences, Strings{"\n"});
}

TEST(GenaiParseRequestTest, OpenAiResponses) {
  constexpr std::string_view body = R"({"model":"gpt-4.1","instructions":"Talk like a pirate.",
    "input":[{"role":"user","content":[{"type":"input_text","text":"What is in this image?"},
                                       {"type":"input_image","image_url":"https://example.com/a.png"},
                                       {"type":"input_file","file_id":"file-1"}]},
             {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{}"},
             {"type":"function_call_output","call_id":"call_1","output":"sunny"},
             {"type":"reasoning","id":"rs_1","summary":[]},
             {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Arr."}]}],
    "max_output_tokens":1024,"temperature":1.0,"top_p":1,"stream":true,"store":false})";
  const RequestInfo r = ParseRequest(Api::kOpenAiResponses, body, false, true);
  EXPECT_EQ(r.model, "gpt-4.1");
  EXPECT_EQ(r.max_tokens, 1024);
  EXPECT_EQ(r.temperature, 1.0);
  EXPECT_EQ(r.top_p, 1.0);
  EXPECT_EQ(r.stream, true);
  EXPECT_EQ(r.system_instructions, "Talk like a pirate.");
  EXPECT_EQ(Describe(r.input_messages),
            "user: What is in this image?\n[image]\n[file]\n"
            "assistant:  <get_weather>\n"
            "tool: sunny\n"
            "assistant: Arr.\n");

  const RequestInfo plain =
      ParseRequest(Api::kOpenAiResponses, R"({"model":"o3","input":"Hi"})", false, true);
  EXPECT_EQ(Describe(plain.input_messages), "user: Hi\n");
  EXPECT_EQ(plain.stream, false);
}

TEST(GenaiParseRequestTest, OpenAiCompletionsAndEmbeddings) {
  const RequestInfo c = ParseRequest(
      Api::kOpenAiCompletions,
      R"({"model":"gpt-3.5-turbo-instruct","prompt":["Say this is a test",[1,2,3],"Again"],"max_tokens":7,)"
      R"("temperature":0,"n":1,"stream":false})",
      false, true);
  EXPECT_EQ(c.model, "gpt-3.5-turbo-instruct");
  EXPECT_EQ(c.max_tokens, 7);
  EXPECT_EQ(c.temperature, 0.0);
  EXPECT_EQ(c.choice_count, 1);
  EXPECT_EQ(Describe(c.input_messages), "user: Say this is a test\nuser: Again\n");

  const RequestInfo e = ParseRequest(
      Api::kOpenAiEmbeddings,
      R"({"input":["The food was delicious"],"model":"text-embedding-3-small","encoding_format":"float","dimensions":256})",
      false, true);
  EXPECT_EQ(e.model, "text-embedding-3-small");
  EXPECT_EQ(e.encoding_formats, Strings{"float"});
  EXPECT_EQ(e.stream, false);
  EXPECT_TRUE(e.input_messages.empty());  // no input messages for embeddings
}

TEST(GenaiParseRequestTest, Anthropic) {
  constexpr std::string_view body = R"({"model":"claude-sonnet-4-5","max_tokens":1024,
    "system":[{"type":"text","text":"You are a weather bot.","cache_control":{"type":"ephemeral"}}],
    "messages":[{"role":"user","content":"Weather in Paris?"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"s"},
                                               {"type":"text","text":"Let me check."},
                                               {"type":"tool_use","id":"toolu_01","name":"get_weather",
                                                "input":{"city":"Paris"}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01",
                                           "content":[{"type":"text","text":"rainy"}]},
                                          {"type":"image","source":{"type":"base64","media_type":"image/png",
                                                                    "data":"AAAA"}},
                                          {"type":"document","source":{"type":"text","data":"x"}}]}],
    "temperature":0.5,"top_k":40,"top_p":0.95,"stop_sequences":["\n\nHuman:"],"stream":true})";
  const RequestInfo r = ParseRequest(Api::kAnthropicMessages, body, false, true);
  EXPECT_EQ(r.model, "claude-sonnet-4-5");
  EXPECT_EQ(r.max_tokens, 1024);
  EXPECT_EQ(r.temperature, 0.5);
  EXPECT_EQ(r.top_k, 40.0);
  EXPECT_EQ(r.top_p, 0.95);
  EXPECT_EQ(r.stop_sequences, Strings{"\n\nHuman:"});
  EXPECT_EQ(r.stream, true);
  EXPECT_EQ(r.system_instructions, "You are a weather bot.");
  EXPECT_EQ(Describe(r.input_messages),
            "user: Weather in Paris?\n"
            "assistant: [thinking]\nLet me check. <get_weather>\n"
            "user: rainy\n[image]\n[file]\n");

  const RequestInfo plain =
      ParseRequest(Api::kAnthropicMessages,
                   R"({"model":"claude-3-5-haiku-latest","system":"Be brief.","messages":[]})", false, true);
  EXPECT_EQ(plain.system_instructions, "Be brief.");
  EXPECT_EQ(plain.stream, false);
}

TEST(GenaiParseRequestTest, OllamaChat) {
  constexpr std::string_view body = R"({"model":"llama3.2","messages":[
      {"role":"user","content":"why is the sky blue?","images":["iVBORw0KGgo="]},
      {"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_current_weather",
                                                                  "arguments":{"location":"Paris"}}}]}],
    "options":{"temperature":0.7,"top_k":40,"top_p":0.9,"num_predict":128,"seed":7,"stop":["\n\n"],
               "frequency_penalty":0.1,"presence_penalty":0.2},
    "temperature":9,"think":false})";
  const RequestInfo r = ParseRequest(Api::kOllamaChat, body, false, true);
  EXPECT_EQ(r.model, "llama3.2");
  EXPECT_EQ(r.stream, true);      // Ollama streams unless told not to
  EXPECT_EQ(r.temperature, 0.7);  // options win; a top-level one is not Ollama's
  EXPECT_EQ(r.top_k, 40.0);
  EXPECT_EQ(r.top_p, 0.9);
  EXPECT_EQ(r.max_tokens, 128);
  EXPECT_EQ(r.seed, 7);
  EXPECT_EQ(r.frequency_penalty, 0.1);
  EXPECT_EQ(r.presence_penalty, 0.2);
  EXPECT_EQ(r.stop_sequences, Strings{"\n\n"});
  EXPECT_EQ(Describe(r.input_messages),
            "user: why is the sky blue?\n[image]\n"
            "assistant:  <get_current_weather>\n");
}

TEST(GenaiParseRequestTest, OllamaGenerateAndEmbed) {
  const RequestInfo g = ParseRequest(
      Api::kOllamaGenerate,
      R"({"model":"llama3.2","prompt":"Why is the sky blue?","system":"Be brief.","stream":false,)"
      R"("images":["AAAA"],"options":{"num_predict":-1}})",
      false, true);
  EXPECT_EQ(g.stream, false);
  EXPECT_EQ(g.max_tokens, std::nullopt);  // -1: no limit
  EXPECT_EQ(g.system_instructions, "Be brief.");
  EXPECT_EQ(Describe(g.input_messages), "user: Why is the sky blue?\n[image]\n");
  EXPECT_EQ(ParseRequest(Api::kOllamaGenerate, R"({"model":"m","prompt":"p"})", false, false).stream, true);

  const RequestInfo e =
      ParseRequest(Api::kOllamaEmbed, R"({"model":"all-minilm","input":["a","b"]})", false, true);
  EXPECT_EQ(e.model, "all-minilm");
  EXPECT_EQ(e.stream, false);
  EXPECT_TRUE(e.input_messages.empty());
}

TEST(GenaiParseRequestTest, NotJson) {
  for (const std::string_view body : {""sv, "<html>"sv, "model=gpt-4"sv, "[1,2]"sv, "\"s\""sv}) {
    const RequestInfo r = ParseRequest(Api::kOpenAiChat, body, false, true);
    EXPECT_EQ(r.model, "") << body;
    EXPECT_TRUE(r.truncated || r.stream == false) << body;
    EXPECT_TRUE(r.input_messages.empty()) << body;
  }
}

// Every prefix of a request: what was sent before the cut is right, the rest absent.
TEST(GenaiParseRequestTest, EveryPrefix) {
  const RequestInfo whole = ParseRequest(Api::kOpenAiChat, kOpenAiChatRequest, false, true);
  const std::string_view body = kOpenAiChatRequest;
  const size_t model_at = body.find(R"("gpt-4o-mini")") + 13;
  const size_t stop_at = body.find(R"("STOP"])") + 7;
  for (size_t len = 0; len < body.size(); ++len) {
    SCOPED_TRACE("prefix length " + std::to_string(len));
    const RequestInfo r = ParseRequest(Api::kOpenAiChat, body.substr(0, len), false, true);
    EXPECT_TRUE(r.truncated);
    EXPECT_EQ(r.model, len >= model_at ? whole.model : "");
    if (len >= stop_at) {
      EXPECT_EQ(r.stop_sequences, whole.stop_sequences);
    }
    EXPECT_TRUE(!r.temperature || r.temperature == whole.temperature);
    EXPECT_TRUE(!r.max_tokens || r.max_tokens == whole.max_tokens);
    EXPECT_TRUE(!r.seed || r.seed == whole.seed);
    EXPECT_TRUE(!r.stream || r.stream == whole.stream);
    ASSERT_LE(r.input_messages.size(), whole.input_messages.size());
    for (size_t i = 0; i + 1 < r.input_messages.size(); ++i) {
      EXPECT_EQ(Describe({r.input_messages[i]}), Describe({whole.input_messages[i]}));
    }
  }
}

// ---- ParseResponse: whole bodies ------------------------------------------------------------

constexpr std::string_view kOpenAiChatResponse =
    R"({"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,)"
    R"("model":"gpt-4o-mini-2024-07-18","choices":[)"
    R"({"index":1,"message":{"role":"assistant","content":"Second.","refusal":null},"logprobs":null,)"
    R"("finish_reason":"length"},)"
    R"({"index":0,"message":{"role":"assistant","content":"Let me look.","tool_calls":[{"id":"call_abc",)"
    R"("type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},)"
    R"("logprobs":null,"finish_reason":"tool_calls"}],)"
    R"("usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,)"
    R"("prompt_tokens_details":{"cached_tokens":64,"audio_tokens":0},)"
    R"("completion_tokens_details":{"reasoning_tokens":5,"audio_tokens":0,"accepted_prediction_tokens":0,)"
    R"("rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_06737a9306"})";

TEST(GenaiParseResponseTest, OpenAiChat) {
  const ResponseInfo r = ParseResponse(Api::kOpenAiChat, 200, kJson, kOpenAiChatResponse, false, true);
  EXPECT_EQ(r.id, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
  EXPECT_EQ(r.model, "gpt-4o-mini-2024-07-18");
  EXPECT_EQ(r.finish_reasons, (Strings{"tool_calls", "length"}));  // by choice index
  EXPECT_EQ(r.input_tokens, 82);
  EXPECT_EQ(r.output_tokens, 17);
  EXPECT_EQ(r.cache_read_input_tokens, 64);
  EXPECT_EQ(r.cache_creation_input_tokens, std::nullopt);
  EXPECT_EQ(r.reasoning_output_tokens, 5);
  EXPECT_FALSE(r.streamed);
  EXPECT_EQ(r.first_chunk_offset, std::nullopt);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.error_type, "");
  EXPECT_EQ(r.output_text, "Let me look.");  // choice 0
  EXPECT_EQ(r.output_tool_calls, Strings{"get_weather"});

  const ResponseInfo quiet = ParseResponse(Api::kOpenAiChat, 200, kJson, kOpenAiChatResponse, false, false);
  EXPECT_EQ(quiet.output_text, "");
  EXPECT_TRUE(quiet.output_tool_calls.empty());
  EXPECT_EQ(quiet.finish_reasons, r.finish_reasons);
}

TEST(GenaiParseResponseTest, OpenAiCompletionsAndEmbeddings) {
  const ResponseInfo c = ParseResponse(
      Api::kOpenAiCompletions, 200, kJson,
      R"({"id":"cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7","object":"text_completion","created":1589478378,)"
      R"("model":"gpt-3.5-turbo-instruct","choices":[{"text":"\n\nThis is indeed a test","index":0,)"
      R"("logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})",
      false, true);
  EXPECT_EQ(c.id, "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7");
  EXPECT_EQ(c.finish_reasons, Strings{"length"});
  EXPECT_EQ(c.input_tokens, 5);
  EXPECT_EQ(c.output_tokens, 7);
  EXPECT_EQ(c.output_text, "\n\nThis is indeed a test");

  const ResponseInfo e = ParseResponse(
      Api::kOpenAiEmbeddings, 200, "application/json; charset=utf-8",
      R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292]}],)"
      R"("model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})",
      false, true);
  EXPECT_EQ(e.model, "text-embedding-3-small");
  EXPECT_EQ(e.input_tokens, 8);
  EXPECT_EQ(e.output_tokens, std::nullopt);
  EXPECT_TRUE(e.finish_reasons.empty());
  EXPECT_TRUE(e.complete);
}

constexpr std::string_view kResponsesResponse =
    R"({"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response",)"
    R"("created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,)"
    R"("instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[)"
    R"({"type":"reasoning","id":"rs_1","summary":[]},)"
    R"({"type":"message","id":"msg_67cc","status":"completed","role":"assistant","content":[)"
    R"({"type":"output_text","text":"In a peaceful grove beneath a silver moon...","annotations":[]}]}],)"
    R"("parallel_tool_calls":true,"temperature":1.0,"tool_choice":"auto","tools":[],"top_p":1.0,)"
    R"("usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":12},"output_tokens":87,)"
    R"("output_tokens_details":{"reasoning_tokens":20},"total_tokens":123},"user":null,"metadata":{}})";

TEST(GenaiParseResponseTest, OpenAiResponses) {
  const ResponseInfo r = ParseResponse(Api::kOpenAiResponses, 200, kJson, kResponsesResponse, false, true);
  EXPECT_EQ(r.id, "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b");
  EXPECT_EQ(r.model, "gpt-4.1-2025-04-14");
  EXPECT_EQ(r.finish_reasons, Strings{"stop"});
  EXPECT_EQ(r.input_tokens, 36);
  EXPECT_EQ(r.output_tokens, 87);
  EXPECT_EQ(r.cache_read_input_tokens, 12);
  EXPECT_EQ(r.reasoning_output_tokens, 20);
  EXPECT_EQ(r.error_type, "");
  EXPECT_EQ(r.output_text, "In a peaceful grove beneath a silver moon...");
  EXPECT_TRUE(r.complete);
}

TEST(GenaiParseResponseTest, OpenAiResponsesStatuses) {
  const ResponseInfo tool = ParseResponse(
      Api::kOpenAiResponses, 200, kJson,
      R"({"id":"resp_2","status":"completed","model":"gpt-4.1","output":[{"type":"function_call","id":"fc_1",)"
      R"("call_id":"call_1","name":"get_weather","arguments":"{}","status":"completed"}]})",
      false, true);
  EXPECT_EQ(tool.finish_reasons, Strings{"tool_calls"});
  EXPECT_EQ(tool.output_tool_calls, Strings{"get_weather"});

  const ResponseInfo incomplete = ParseResponse(
      Api::kOpenAiResponses, 200, kJson,
      R"({"id":"resp_3","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]})",
      false, false);
  EXPECT_EQ(incomplete.finish_reasons, Strings{"max_output_tokens"});

  const ResponseInfo failed = ParseResponse(
      Api::kOpenAiResponses, 200, kJson,
      R"({"id":"resp_4","status":"failed","error":{"code":"server_error","message":"The model failed."},"output":[]})",
      false, false);
  EXPECT_EQ(failed.finish_reasons, Strings{"failed"});
  EXPECT_EQ(failed.error_type, "server_error");
  EXPECT_EQ(failed.error_message, "The model failed.");

  const ResponseInfo in_progress =
      ParseResponse(Api::kOpenAiResponses, 200, kJson,
                    R"({"id":"resp_5","status":"in_progress","background":true})", false, false);
  EXPECT_TRUE(in_progress.finish_reasons.empty());
}

constexpr std::string_view kAnthropicResponse =
    R"({"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant",)"
    R"("model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"I'll check the weather."},)"
    R"({"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather",)"
    R"("input":{"location":"San Francisco, CA"}}],"stop_reason":"tool_use","stop_sequence":null,)"
    R"("usage":{"input_tokens":2095,"cache_creation_input_tokens":100,"cache_read_input_tokens":1800,)"
    R"("output_tokens":503,"service_tier":"standard"}})";

TEST(GenaiParseResponseTest, Anthropic) {
  const ResponseInfo r = ParseResponse(Api::kAnthropicMessages, 200, kJson, kAnthropicResponse, false, true);
  EXPECT_EQ(r.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
  EXPECT_EQ(r.model, "claude-sonnet-4-5-20250929");
  EXPECT_EQ(r.finish_reasons, Strings{"tool_use"});
  EXPECT_EQ(r.input_tokens, 2095 + 100 + 1800);  // the conventions' Anthropic rule
  EXPECT_EQ(r.cache_read_input_tokens, 1800);
  EXPECT_EQ(r.cache_creation_input_tokens, 100);
  EXPECT_EQ(r.output_tokens, 503);
  EXPECT_EQ(r.output_text, "I'll check the weather.");
  EXPECT_EQ(r.output_tool_calls, Strings{"get_weather"});
  EXPECT_TRUE(r.complete);
}

TEST(GenaiParseResponseTest, AnthropicTokenSumOverflowIsDropped) {
  const ResponseInfo r = ParseResponse(
      Api::kAnthropicMessages, 200, kJson,
      R"({"usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":1,"output_tokens":1}})",
      false, false);
  EXPECT_EQ(r.input_tokens, std::nullopt);
  EXPECT_EQ(r.cache_read_input_tokens, 1);
}

TEST(GenaiParseResponseTest, Ollama) {
  const ResponseInfo g = ParseResponse(
      Api::kOllamaGenerate, 200, "application/json; charset=utf-8",
      R"({"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","response":"The sky is blue because...",)"
      R"("done":true,"done_reason":"stop","context":[1,2,3],"total_duration":5043500667,"load_duration":5025959,)"
      R"("prompt_eval_count":26,"prompt_eval_duration":325953000,"eval_count":290,"eval_duration":4709213000})",
      false, true);
  EXPECT_EQ(g.model, "llama3.2");
  EXPECT_EQ(g.id, "");
  EXPECT_EQ(g.finish_reasons, Strings{"stop"});
  EXPECT_EQ(g.input_tokens, 26);
  EXPECT_EQ(g.output_tokens, 290);
  EXPECT_EQ(g.output_text, "The sky is blue because...");
  EXPECT_TRUE(g.complete);
  EXPECT_FALSE(g.streamed);

  const ResponseInfo e = ParseResponse(
      Api::kOllamaEmbed, 200, kJson,
      R"({"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862],[-0.0098027075,0.06042469]],)"
      R"("total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8})",
      false, false);
  EXPECT_EQ(e.model, "all-minilm");
  EXPECT_EQ(e.input_tokens, 8);
  EXPECT_EQ(e.output_tokens, std::nullopt);
}

// ---- ParseResponse: errors --------------------------------------------------------------------

struct ErrorCase {
  const char* name;
  Api api;
  int status;
  std::string_view content_type;
  std::string_view body;
  std::string_view type;
  std::string_view message;
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.name;
}

class GenaiErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(GenaiErrorTest, ReadsTheError) {
  const ErrorCase& c = GetParam();
  const ResponseInfo r = ParseResponse(c.api, c.status, c.content_type, c.body, false, false);
  EXPECT_EQ(r.error_type, c.type);
  EXPECT_EQ(r.error_message, c.message);
}

const ErrorCase kErrorCases[] = {
    {"openai_code", Api::kOpenAiChat, 429, kJson,
     R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.",)"
     R"("type":"insufficient_quota","param":null,"code":"insufficient_quota"}})",
     "insufficient_quota", "You exceeded your current quota, please check your plan and billing details."},
    {"openai_null_code_uses_type", Api::kOpenAiChat, 400, kJson,
     R"({"error":{"message":"Invalid 'messages[0].role'","type":"invalid_request_error",)"
     R"("param":"messages[0].role","code":null}})",
     "invalid_request_error", "Invalid 'messages[0].role'"},
    {"openai_empty_code_uses_type", Api::kOpenAiEmbeddings, 400, kJson,
     R"({"error":{"message":"m","type":"invalid_request_error","code":""}})", "invalid_request_error", "m"},
    {"azure_content_filter", Api::kOpenAiChat, 400, kJson,
     R"({"error":{"message":"The response was filtered","type":null,"param":"prompt","status":400,)"
     R"("code":"content_filter","innererror":{"code":"ResponsibleAIPolicyViolation"}}})",
     "content_filter", "The response was filtered"},
    {"anthropic", Api::kAnthropicMessages, 529, kJson,
     R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},)"
     R"("request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"})",
     "overloaded_error", "Overloaded"},
    {"error_status_ignores_content_type", Api::kAnthropicMessages, 400, kSse,
     R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}})",
     "invalid_request_error", "max_tokens: Field required"},
    {"ollama_string", Api::kOllamaChat, 404, kJson,
     R"({"error":"model \"llama9\" not found, try pulling it first"})", "",
     "model \"llama9\" not found, try pulling it first"},
    {"html_from_a_proxy", Api::kOpenAiChat, 502, "text/html", "<html><body>Bad gateway</body></html>", "",
     ""},
    {"openai_in_stream", Api::kOpenAiChat, 200, kSse,
     "data: {\"error\":{\"message\":\"The server had an "
     "error\",\"type\":\"server_error\",\"code\":null}}\n\n",
     "server_error", "The server had an error"},
    {"anthropic_in_stream", Api::kAnthropicMessages, 200, kSse,
     "event: message_start\ndata: "
     "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\"}}\n\n"
     "event: error\ndata: "
     "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
     "overloaded_error", "Overloaded"},
    {"responses_error_event", Api::kOpenAiResponses, 200, kSse,
     "event: error\ndata: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"Rate limit "
     "reached\","
     "\"param\":null,\"sequence_number\":2}\n\n",
     "rate_limit_exceeded", "Rate limit reached"},
    {"responses_failed_event", Api::kOpenAiResponses, 200, kSse,
     "event: response.failed\ndata: "
     "{\"type\":\"response.failed\",\"response\":{\"id\":\"resp_1\",\"status\":\"failed\","
     "\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n",
     "server_error", "boom"},
    {"ollama_in_stream", Api::kOllamaChat, 200, kNdjson,
     "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"done\":false}\n"
     "{\"error\":\"an error was encountered while running the model\"}\n",
     "", "an error was encountered while running the model"},
};

INSTANTIATE_TEST_SUITE_P(Cases, GenaiErrorTest, testing::ValuesIn(kErrorCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- ParseResponse: streams -------------------------------------------------------------------

constexpr std::string_view kOpenAiChatStream =
    R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06",)"
    R"("system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},)"
    R"("logprobs":null,"finish_reason":null}],"usage":null})"
    "\n\n"
    R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06",)"
    R"("choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}],"usage":null})"
    "\n\n"
    R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06",)"
    R"("choices":[{"index":0,"delta":{"content":"lo \u00e9"},"logprobs":null,"finish_reason":null}],"usage":null})"
    "\n\n"
    R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06",)"
    R"("choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null})"
    "\n\n"
    R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06",)"
    R"("choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,)"
    R"("prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}})"
    "\n\n"
    "data: [DONE]\n\n";

TEST(GenaiParseStreamTest, OpenAiChat) {
  const ResponseInfo r = ParseResponse(Api::kOpenAiChat, 200, kSse, kOpenAiChatStream, false, true);
  EXPECT_TRUE(r.streamed);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.id, "chatcmpl-1");
  EXPECT_EQ(r.model, "gpt-4o-2024-08-06");
  EXPECT_EQ(r.finish_reasons, Strings{"stop"});
  EXPECT_EQ(r.input_tokens, 9);
  EXPECT_EQ(r.output_tokens, 3);
  EXPECT_EQ(r.cache_read_input_tokens, 0);
  EXPECT_EQ(r.reasoning_output_tokens, 0);
  // The first chunk only announces the role: the second carries the first text.
  EXPECT_EQ(r.first_chunk_offset, kOpenAiChatStream.find("data:", 1));
  EXPECT_EQ(r.output_text, "Hello \xC3\xA9");
}

constexpr std::string_view kOpenAiToolStream =
    R"(data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null,)"
    R"("tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},)"
    R"("finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,)"
    R"("function":{"arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":1,"delta":{"content":"B"},"finish_reason":"stop"}]})"
    "\n\n"
    R"(data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"
    "\n\n"
    "data: [DONE]\n\n";

TEST(GenaiParseStreamTest, OpenAiToolCallsAndChoices) {
  const ResponseInfo r = ParseResponse(Api::kOpenAiChat, 200, kSse, kOpenAiToolStream, false, true);
  EXPECT_EQ(r.first_chunk_offset, 0u);  // a tool call is output
  EXPECT_EQ(r.output_tool_calls, Strings{"get_weather"});
  EXPECT_EQ(r.output_text, "");  // choice 1's text is not choice 0's
  EXPECT_EQ(r.finish_reasons, (Strings{"tool_calls", "stop"}));
  EXPECT_EQ(r.input_tokens, std::nullopt);  // no include_usage
}

TEST(GenaiParseStreamTest, OpenAiReasoningCountsAsOutput) {
  const std::string body =
      "data: "
      "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
      "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Let me "
      "think\"}}]}\n\n";
  const ResponseInfo r = ParseResponse(Api::kOpenAiChat, 200, kSse, body, false, false);
  EXPECT_EQ(r.first_chunk_offset, body.find("data:", 1));
  EXPECT_FALSE(r.complete);
}

constexpr std::string_view kCompletionsStream =
    R"(data: {"id":"cmpl-1","object":"text_completion","created":1,"choices":[{"text":"This","index":0,)"
    R"("logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"})"
    "\n\n"
    R"(data: {"id":"cmpl-1","object":"text_completion","created":1,"choices":[{"text":" is","index":0,)"
    R"("logprobs":null,"finish_reason":"stop"}],"model":"gpt-3.5-turbo-instruct"})"
    "\n\n"
    "data: [DONE]\n\n";

TEST(GenaiParseStreamTest, OpenAiCompletions) {
  const ResponseInfo r = ParseResponse(Api::kOpenAiCompletions, 200, kSse, kCompletionsStream, false, true);
  EXPECT_EQ(r.id, "cmpl-1");
  EXPECT_EQ(r.model, "gpt-3.5-turbo-instruct");
  EXPECT_EQ(r.finish_reasons, Strings{"stop"});
  EXPECT_EQ(r.first_chunk_offset, 0u);
  EXPECT_EQ(r.output_text, "This is");
  EXPECT_TRUE(r.complete);
}

constexpr std::string_view kResponsesStream =
    "event: response.created\n"
    R"(data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response",)"
    R"("created_at":1,"status":"in_progress","model":"gpt-4.1-2025-04-14","output":[],"usage":null}})"
    "\n\n"
    "event: response.in_progress\n"
    R"(data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","status":"in_progress",)"
    R"("model":"gpt-4.1-2025-04-14","output":[]}})"
    "\n\n"
    "event: response.output_item.added\n"
    R"(data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1",)"
    R"("type":"message","status":"in_progress","role":"assistant","content":[]}})"
    "\n\n"
    "event: response.output_text.delta\n"
    R"(data: {"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_1","output_index":0,)"
    R"("content_index":0,"delta":"Hi"})"
    "\n\n"
    "event: response.output_text.delta\n"
    R"(data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,)"
    R"("content_index":0,"delta":" there"})"
    "\n\n"
    "event: response.output_item.added\n"
    R"(data: {"type":"response.output_item.added","sequence_number":5,"output_index":1,"item":{"id":"fc_1",)"
    R"("type":"function_call","status":"in_progress","call_id":"call_1","name":"get_weather","arguments":""}})"
    "\n\n"
    "event: response.completed\n"
    R"(data: {"type":"response.completed","sequence_number":6,"response":{"id":"resp_1","object":"response",)"
    R"("status":"completed","model":"gpt-4.1-2025-04-14","output":[{"id":"msg_1","type":"message",)"
    R"("status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there",)"
    R"("annotations":[]}]},{"id":"fc_1","type":"function_call","call_id":"call_1","name":"get_weather",)"
    R"("arguments":"{}"}],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},)"
    R"("output_tokens":3,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":15}}})"
    "\n\n";

TEST(GenaiParseStreamTest, OpenAiResponses) {
  const ResponseInfo r = ParseResponse(Api::kOpenAiResponses, 200, kSse, kResponsesStream, false, true);
  EXPECT_EQ(r.id, "resp_1");
  EXPECT_EQ(r.model, "gpt-4.1-2025-04-14");
  EXPECT_EQ(r.first_chunk_offset, kResponsesStream.find("event: response.output_text.delta"));
  EXPECT_EQ(r.output_text, "Hi there");  // from the deltas, not again from response.completed
  EXPECT_EQ(r.output_tool_calls, Strings{"get_weather"});
  EXPECT_EQ(r.finish_reasons, Strings{"tool_calls"});
  EXPECT_EQ(r.input_tokens, 12);
  EXPECT_EQ(r.output_tokens, 3);
  EXPECT_EQ(r.cache_read_input_tokens, 4);
  EXPECT_EQ(r.reasoning_output_tokens, 1);
  EXPECT_TRUE(r.complete);
}

constexpr std::string_view kAnthropicStream =
    "event: message_start\n"
    R"(data: {"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message",)"
    R"("role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,)"
    R"("stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,)"
    R"("cache_read_input_tokens":10,"output_tokens":1}}})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
    "\n\n"
    "event: ping\n"
    R"(data: {"type": "ping"})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":0})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1",)"
    R"("name":"get_weather","input":{}}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",)"
    R"("partial_json":"{\"location\": \"San Fra"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":1})"
    "\n\n"
    "event: message_delta\n"
    R"(data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},)"
    R"("usage":{"output_tokens":15}})"
    "\n\n"
    "event: message_stop\n"
    R"(data: {"type":"message_stop"})"
    "\n\n";

TEST(GenaiParseStreamTest, Anthropic) {
  const ResponseInfo r = ParseResponse(Api::kAnthropicMessages, 200, kSse, kAnthropicStream, false, true);
  EXPECT_EQ(r.id, "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
  EXPECT_EQ(r.model, "claude-sonnet-4-5-20250929");
  EXPECT_EQ(r.first_chunk_offset, kAnthropicStream.find("event: content_block_delta"));
  EXPECT_EQ(r.finish_reasons, Strings{"tool_use"});
  EXPECT_EQ(r.input_tokens, 35);
  EXPECT_EQ(r.cache_read_input_tokens, 10);
  EXPECT_EQ(r.cache_creation_input_tokens, 0);
  EXPECT_EQ(r.output_tokens, 15);
  EXPECT_EQ(r.output_text, "Hello!");
  EXPECT_EQ(r.output_tool_calls, Strings{"get_weather"});
  EXPECT_TRUE(r.complete);
}

// The tool calls asked for, by id, whether or not content is wanted.
std::vector<std::pair<std::string, std::string>> Asked(const ResponseInfo& r) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& a : r.tool_calls_asked) out.emplace_back(a.id, a.name);
  return out;
}

TEST(GenaiParseResponseTest, ToolCallsAskedByIdWithoutContent) {
  using Calls = std::vector<std::pair<std::string, std::string>>;
  for (bool content : {false, true}) {
    EXPECT_EQ(Asked(ParseResponse(Api::kOpenAiChat, 200, kJson, kOpenAiChatResponse, false, content)),
              (Calls{{"call_abc", "get_weather"}}));
    EXPECT_EQ(Asked(ParseResponse(Api::kOpenAiChat, 200, kSse, kOpenAiToolStream, false, content)),
              (Calls{{"call_1", "get_weather"}}))
        << "a stream names a call in its first delta only";
    EXPECT_EQ(Asked(ParseResponse(Api::kAnthropicMessages, 200, kSse, kAnthropicStream, false, content)),
              (Calls{{"toolu_1", "get_weather"}}));
    EXPECT_EQ(Asked(ParseResponse(Api::kAnthropicMessages, 200, kJson, kAnthropicResponse, false, content)),
              (Calls{{"toolu_01A09q90qw90lq917835lq9", "get_weather"}}));
  }
  const ResponseInfo two = ParseResponse(
      Api::kOpenAiChat, 200, kJson,
      R"({"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[)"
      R"({"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{}"}},)"
      R"({"id":"call_2","type":"function","function":{"name":"write_note","arguments":"{}"}}]},"finish_reason":"tool_calls"}]})",
      false, false);
  EXPECT_EQ(Asked(two), (Calls{{"call_1", "lookup"}, {"call_2", "write_note"}}));
  EXPECT_TRUE(two.output_tool_calls.empty()) << "names as content only when asked";
}

// The ids of the tool results a request sends back, per API, whether or not content is
// wanted; results without an id and other messages are skipped.
TEST(GenaiParseRequestTest, ToolResultIdsWithoutContent) {
  for (bool content : {false, true}) {
    EXPECT_EQ(ParseRequest(Api::kOpenAiChat,
                           R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"},)"
                           R"({"role":"assistant","tool_calls":[{"id":"call_1","type":"function",)"
                           R"("function":{"name":"lookup","arguments":"{}"}}]},)"
                           R"({"role":"tool","tool_call_id":"call_1","content":"a"},)"
                           R"({"role":"tool","content":"no id"},)"
                           R"({"role":"tool","tool_call_id":"call_2","content":"b"}]})",
                           false, content)
                  .tool_results,
              (Strings{"call_1", "call_2"}));
    EXPECT_EQ(
        ParseRequest(
            Api::kAnthropicMessages,
            R"({"model":"claude","messages":[{"role":"assistant","content":[{"type":"tool_use",)"
            R"("id":"toolu_1","name":"lookup","input":{}}]},{"role":"user","content":[)"
            R"({"type":"tool_result","tool_use_id":"toolu_1","content":"a"},{"type":"text","text":"x"}]}]})",
            false, content)
            .tool_results,
        (Strings{"toolu_1"}));
    EXPECT_EQ(ParseRequest(
                  Api::kOpenAiResponses,
                  R"({"model":"gpt-4o","input":[{"type":"function_call","call_id":"fc_1","name":"lookup"},)"
                  R"({"type":"function_call_output","call_id":"fc_1","output":"a"}]})",
                  false, content)
                  .tool_results,
              (Strings{"fc_1"}));
  }
  EXPECT_TRUE(ParseRequest(Api::kOpenAiChat,
                           R"({"model":"gpt-4o","messages":[{"role":"tool","tool_call_id":)", true, false)
                  .tool_results.empty())
      << "a cut id is not taken";
}

TEST(GenaiParseStreamTest, AnthropicCumulativeUsageInMessageDelta) {
  const std::string body =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":"
      "{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
      "\"usage\":{\"input_tokens\":7,\"cache_read_input_tokens\":100,\"output_tokens\":20}}\n\n";
  const ResponseInfo r = ParseResponse(Api::kAnthropicMessages, 200, kSse, body, false, false);
  EXPECT_EQ(r.input_tokens, 107);
  EXPECT_EQ(r.output_tokens, 20);
  EXPECT_EQ(r.finish_reasons, Strings{"end_turn"});
  EXPECT_FALSE(r.complete);  // no message_stop
  EXPECT_EQ(r.first_chunk_offset, std::nullopt);
}

constexpr std::string_view kOllamaChatStream =
    R"({"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant",)"
    R"("content":""},"done":false})"
    "\n"
    R"({"model":"llama3.2","created_at":"2023-08-04T08:52:19.405406455-07:00","message":{"role":"assistant",)"
    R"("content":"The"},"done":false})"
    "\n"
    R"({"model":"llama3.2","created_at":"2023-08-04T08:52:19.425406455-07:00","message":{"role":"assistant",)"
    R"("content":" sky"},"done":false})"
    "\n"
    R"({"model":"llama3.2","created_at":"2023-08-04T08:52:19.445406455-07:00","message":{"role":"assistant",)"
    R"("content":"","tool_calls":[{"function":{"name":"get_current_weather","arguments":{"location":"Paris"}}}]},)"
    R"("done":false})"
    "\n"
    R"({"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":"assistant","content":""},)"
    R"("done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,)"
    R"("prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000})"
    "\n";

TEST(GenaiParseStreamTest, OllamaChat) {
  const ResponseInfo r = ParseResponse(Api::kOllamaChat, 200, kNdjson, kOllamaChatStream, false, true);
  EXPECT_TRUE(r.streamed);
  EXPECT_EQ(r.model, "llama3.2");
  EXPECT_EQ(r.first_chunk_offset, kOllamaChatStream.find('\n') + 1);
  EXPECT_EQ(r.output_text, "The sky");
  EXPECT_EQ(r.output_tool_calls, Strings{"get_current_weather"});
  EXPECT_EQ(r.finish_reasons, Strings{"stop"});
  EXPECT_EQ(r.input_tokens, 26);
  EXPECT_EQ(r.output_tokens, 282);
  EXPECT_TRUE(r.complete);
}

TEST(GenaiParseStreamTest, OllamaGenerateLastLineWithoutNewline) {
  const std::string body =
      "{\"model\":\"m\",\"response\":\"A\",\"done\":false}\r\n"
      "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":3,"
      "\"eval_count\":4}";
  const ResponseInfo r = ParseResponse(Api::kOllamaGenerate, 200, kNdjson, body, false, true);
  EXPECT_EQ(r.first_chunk_offset, 0u);
  EXPECT_EQ(r.output_text, "A");
  EXPECT_EQ(r.finish_reasons, Strings{"length"});
  EXPECT_EQ(r.output_tokens, 4);
  EXPECT_TRUE(r.complete);
  // Cut inside the last line: that line is not read.
  const ResponseInfo cut =
      ParseResponse(Api::kOllamaGenerate, 200, kNdjson, body.substr(0, body.size() - 1), true, true);
  EXPECT_FALSE(cut.complete);
  EXPECT_TRUE(cut.finish_reasons.empty());
  EXPECT_EQ(cut.output_tokens, std::nullopt);
}

// ---- Every prefix of every body -----------------------------------------------------------------

// A body cut at every byte: nothing crashes, nothing is ever wrong (a field is absent or
// equal to the whole body's; text and lists are prefixes of the whole body's), and each
// field is right once the prefix holds the text that completes it.
struct PrefixCase {
  const char* name;
  Api api;
  std::string_view content_type;
  std::string_view body;
  // The whole body's fields are all right in any prefix that holds the end of:
  std::string_view ids_by;      // id and model
  std::string_view usage_by;    // every token count
  std::string_view reasons_by;  // every finish reason
  // Anthropic streams: message_start reports an output count that message_delta replaces.
  bool output_tokens_grow = false;
};

void PrintTo(const PrefixCase& c, std::ostream* os) {
  *os << c.name;
}

class GenaiEveryPrefixTest : public testing::TestWithParam<PrefixCase> {};

bool IsPrefix(const Strings& a, const Strings& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

TEST_P(GenaiEveryPrefixTest, NeverWrongAndRightOnceComplete) {
  const PrefixCase& c = GetParam();
  const ResponseInfo whole = ParseResponse(c.api, 200, c.content_type, c.body, false, true);
  const auto end_of = [&](std::string_view needle) {
    const size_t at = c.body.find(needle);
    EXPECT_NE(at, std::string_view::npos) << needle;
    return at + needle.size();
  };
  const size_t ids_at = end_of(c.ids_by);
  const size_t usage_at = end_of(c.usage_by);
  const size_t reasons_at = end_of(c.reasons_by);

  for (size_t len = 0; len <= c.body.size(); ++len) {
    SCOPED_TRACE("prefix length " + std::to_string(len));
    const bool cut = len < c.body.size();
    const ResponseInfo r = ParseResponse(c.api, 200, c.content_type, c.body.substr(0, len), cut, true);
    EXPECT_TRUE(r.id.empty() || r.id == whole.id);
    EXPECT_TRUE(r.model.empty() || r.model == whole.model);
    for (const auto& [got, want] :
         {std::pair{r.input_tokens, whole.input_tokens},
          std::pair{r.cache_read_input_tokens, whole.cache_read_input_tokens},
          std::pair{r.cache_creation_input_tokens, whole.cache_creation_input_tokens},
          std::pair{r.reasoning_output_tokens, whole.reasoning_output_tokens}}) {
      EXPECT_TRUE(!got || got == want);
    }
    if (c.output_tokens_grow) {
      EXPECT_TRUE(!r.output_tokens || *r.output_tokens <= *whole.output_tokens);
    } else {
      EXPECT_TRUE(!r.output_tokens || r.output_tokens == whole.output_tokens);
    }
    for (const std::string& reason : r.finish_reasons) {
      EXPECT_NE(std::find(whole.finish_reasons.begin(), whole.finish_reasons.end(), reason),
                whole.finish_reasons.end());
    }
    EXPECT_TRUE(!r.first_chunk_offset || r.first_chunk_offset == whole.first_chunk_offset);
    EXPECT_EQ(whole.output_text.substr(0, r.output_text.size()), r.output_text);
    EXPECT_TRUE(IsPrefix(r.output_tool_calls, whole.output_tool_calls));
    EXPECT_EQ(r.streamed, whole.streamed);
    EXPECT_TRUE(!r.complete || whole.complete);
    EXPECT_TRUE(r.streamed || !cut || !r.complete);

    if (len >= ids_at) {
      EXPECT_EQ(r.id, whole.id);
      EXPECT_EQ(r.model, whole.model);
    }
    if (len >= usage_at) {
      EXPECT_EQ(r.input_tokens, whole.input_tokens);
      EXPECT_EQ(r.output_tokens, whole.output_tokens);
      EXPECT_EQ(r.cache_read_input_tokens, whole.cache_read_input_tokens);
      EXPECT_EQ(r.cache_creation_input_tokens, whole.cache_creation_input_tokens);
      EXPECT_EQ(r.reasoning_output_tokens, whole.reasoning_output_tokens);
    }
    if (len >= reasons_at) {
      EXPECT_EQ(r.finish_reasons, whole.finish_reasons);
    }
    if (whole.first_chunk_offset && len > *whole.first_chunk_offset + 512) {
      // Every first output event here is shorter than 512 bytes.
      EXPECT_EQ(r.first_chunk_offset, whole.first_chunk_offset);
    }
  }
}

const PrefixCase kPrefixCases[] = {
    {"openai_chat_json", Api::kOpenAiChat, kJson, kOpenAiChatResponse, R"("gpt-4o-mini-2024-07-18")",
     R"("rejected_prediction_tokens":0}})", R"("finish_reason":"tool_calls"})"},
    {"openai_chat_sse", Api::kOpenAiChat, kSse, kOpenAiChatStream, "\n\n",
     R"("reasoning_tokens":0}}})"
     "\n\n",
     R"("finish_reason":"stop"}],"usage":null})"
     "\n\n"},
    {"openai_tool_sse", Api::kOpenAiChat, kSse, kOpenAiToolStream, "\n\n", "\n\n",
     R"("finish_reason":"tool_calls"}]})"
     "\n\n"},
    {"completions_sse", Api::kOpenAiCompletions, kSse, kCompletionsStream, "\n\n", "\n\n",
     R"("model":"gpt-3.5-turbo-instruct"})"
     "\n\ndata: [DONE]"},
    {"responses_json", Api::kOpenAiResponses, kJson, kResponsesResponse, R"("gpt-4.1-2025-04-14")",
     R"("total_tokens":123})", R"("status":"completed")"},
    {"responses_sse", Api::kOpenAiResponses, kSse, kResponsesStream, "\n\n",
     R"("total_tokens":15}}})"
     "\n\n",
     R"("total_tokens":15}}})"
     "\n\n"},
    {"anthropic_json", Api::kAnthropicMessages, kJson, kAnthropicResponse, R"("claude-sonnet-4-5-20250929")",
     R"("service_tier":"standard"})", R"("stop_reason":"tool_use")"},
    {"anthropic_sse", Api::kAnthropicMessages, kSse, kAnthropicStream, "\n\n",
     R"("usage":{"output_tokens":15}})"
     "\n\n",
     R"("usage":{"output_tokens":15}})"
     "\n\n",
     true},
    {"ollama_ndjson", Api::kOllamaChat, kNdjson, kOllamaChatStream, "\n", R"("eval_duration":4535599000})",
     R"("eval_duration":4535599000})"},
};

INSTANTIATE_TEST_SUITE_P(Cases, GenaiEveryPrefixTest, testing::ValuesIn(kPrefixCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- Bounds and malformed input -------------------------------------------------------------------

TEST(GenaiResponseBoundsTest, ErrorMessageIsCutOnACharacter) {
  std::string message;
  for (int i = 0; i < 200; ++i) message += "\xC3\xA9";  // 400 bytes of 'é'
  const std::string body = R"({"error":{"type":"t","message":")" + message + R"("}})";
  const ResponseInfo r = ParseResponse(Api::kOpenAiChat, 500, kJson, body, false, false);
  EXPECT_EQ(r.error_message.size(), kMaxErrorMessageBytes);  // 128 whole characters
  EXPECT_EQ(r.error_message, message.substr(0, kMaxErrorMessageBytes));

  const std::string odd = "x" + message;  // the limit now falls inside a character
  const ResponseInfo r2 = ParseResponse(Api::kOpenAiChat, 500, kJson,
                                        R"({"error":{"type":"t","message":")" + odd + R"("}})", false, false);
  EXPECT_EQ(r2.error_message, odd.substr(0, kMaxErrorMessageBytes - 1));
}

TEST(GenaiResponseBoundsTest, OutputTextAndListsAreBounded) {
  std::string body;
  for (int i = 0; i < 3000; ++i) {
    body += R"(data: {"choices":[{"index":0,"delta":{"content":")" + std::string(64, 'x') +
            R"(","tool_calls":[{"index":0,"function":{"name":"f"}}]}}]})"
            "\n\n";
  }
  const ResponseInfo r = ParseResponse(Api::kOpenAiChat, 200, kSse, body, false, true);
  EXPECT_EQ(r.output_text.size(), kMaxOutputTextBytes);
  EXPECT_EQ(r.output_tool_calls.size(), kMaxListItems);

  std::string reasons;
  for (int i = 0; i < 1000; ++i) {
    reasons += "data: {\"choices\":[{\"index\":" + std::to_string(i) + ",\"finish_reason\":\"stop\"}]}\n\n";
  }
  EXPECT_EQ(ParseResponse(Api::kOpenAiChat, 200, kSse, reasons, false, false).finish_reasons.size(),
            kMaxListItems);
}

TEST(GenaiRequestBoundsTest, ContentIsBounded) {
  std::string body = R"({"model":"m","stop":[)";
  for (int i = 0; i < 1000; ++i) body += (i ? ",\"s\"" : "\"s\"");
  body += R"(],"messages":[)";
  for (int i = 0; i < 1000; ++i) {
    body += std::string(i ? "," : "") + R"({"role":"user","content":")" + std::string(300, 'y') + R"("})";
  }
  body += "]}";
  const RequestInfo r = ParseRequest(Api::kOpenAiChat, body, false, true);
  EXPECT_EQ(r.stop_sequences.size(), kMaxListItems);
  EXPECT_EQ(r.input_messages.size(), kMaxListItems);
  size_t text = 0;
  for (const Message& m : r.input_messages) text += m.text.size();
  EXPECT_EQ(text, kMaxInputContentBytes);  // 256 messages of 300 bytes would be more
}

// Garbage in every format for every API: nothing crashes and nothing is read.
TEST(GenaiMalformedTest, GarbageGivesNothing) {
  const std::string_view bodies[] = {
      "",
      "\x00\x01\x02"sv,
      "null",
      "[]",
      "[{\"model\":\"m\"}]",
      "{\"choices\":{\"index\":\"0\"}}",
      "{\"usage\":[1,2]}",
      "data: {\n\n",
      "event: message_start\ndata: [\n\n",
      "data: \"str\"\n\n",
      "{\"model\":7,\"id\":[],\"usage\":{\"prompt_tokens\":\"9\"}}",
      "\n\n\n",
      std::string_view("\xFF\xFE\xFD", 3),
  };
  for (const Api api :
       {Api::kOpenAiChat, Api::kOpenAiResponses, Api::kOpenAiEmbeddings, Api::kOpenAiCompletions,
        Api::kAnthropicMessages, Api::kOllamaChat, Api::kOllamaGenerate, Api::kOllamaEmbed}) {
    for (const std::string_view body : bodies) {
      for (const std::string_view type : {kJson, kSse, kNdjson}) {
        const ResponseInfo r = ParseResponse(api, 200, type, body, false, true);
        EXPECT_EQ(r.id, "");
        EXPECT_TRUE(r.model.empty() || r.model == "m") << body;
        EXPECT_EQ(r.input_tokens, std::nullopt);
        EXPECT_TRUE(r.finish_reasons.empty());
        EXPECT_EQ(r.first_chunk_offset, std::nullopt);
      }
      const RequestInfo q = ParseRequest(api, body, false, true);
      EXPECT_EQ(q.model, "");
      EXPECT_EQ(q.max_tokens, std::nullopt);
    }
  }
}

}  // namespace
}  // namespace kspan::genai
