// LLM API calls read from HTTP/1 requests and responses, for OpenTelemetry gen_ai spans
// (semantic conventions for generative AI, "gen-ai-spans", with the OpenAI and Anthropic
// pages of open-telemetry/semantic-conventions-genai). Pure functions over bytes a traced
// process sent: any input is valid input, nothing fails louder than an empty field. Lists
// and content text are bounded by the k* constants below; other strings are copies of
// fields of the body.
//
// Bodies are the bounded prefixes the HTTP/1 parser keeps (de-chunked, not decompressed):
// a body may stop anywhere, and then what completed before the cut is read.
// `body_truncated` says the body holds less than the whole payload (a hole in the capture,
// or the capture limit: body_prefix shorter than body_size). A stream reports its usage
// and finish reasons at its end; an event stream or NDJSON read from the middle (a kept
// tail) resynchronises at the first whole event or line.
//
// The APIs (request and response shapes as their references document them):
//
//   Api                 endpoint                      response (stream)
//   ------------------  ----------------------------  ------------------------------------
//   kOpenAiChat         POST …/chat/completions       chat.completion (SSE chunks, [DONE])
//   kOpenAiResponses    POST …/responses              response (SSE response.* events)
//   kOpenAiEmbeddings   POST …/embeddings             list of embeddings
//   kOpenAiCompletions  POST …/completions (legacy)   text_completion (SSE chunks, [DONE])
//   kAnthropicMessages  POST …/v1/messages            message (SSE message_start … stop)
//   kOllamaChat         POST …/api/chat               NDJSON chunks, done:true last
//   kOllamaGenerate     POST …/api/generate           NDJSON chunks, done:true last
//   kOllamaEmbed        POST …/api/embed, /embeddings embeddings
//
// OpenAI-compatible servers (Azure OpenAI, Gemini's /v1beta/openai, Groq, Mistral,
// DeepSeek, xAI, vLLM, LiteLLM, Ollama's /v1, …) speak the OpenAI shapes and are read as
// such.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kspan::genai {

enum class Api {
  kOpenAiChat,
  kOpenAiResponses,
  kOpenAiEmbeddings,
  kOpenAiCompletions,
  kAnthropicMessages,
  kOllamaChat,
  kOllamaGenerate,
  kOllamaEmbed,
};

// Bounds on what the parsers return.
// An error message is a sentence or two ("You exceeded your current quota, please check
// your plan and billing details…" is about 200 bytes); longer ones are cut.
inline constexpr size_t kMaxErrorMessageBytes = 256;
// Opt-in content: the text of the output, and of the input messages plus system
// instructions together. Captured bodies are usually far smaller (a few KiB by default).
inline constexpr size_t kMaxOutputTextBytes = 64 * 1024;
inline constexpr size_t kMaxInputContentBytes = 64 * 1024;
// List lengths: input messages, tool calls, stop sequences, choices. Real requests stay
// far below (OpenAI allows 4 stop sequences and 128 tools); these only bound hostile input.
inline constexpr size_t kMaxListItems = 256;

// A request header's value by name, or "" when the request has none. Names are given in
// lower case; matching them case-insensitively is the caller's job.
using HeaderLookup = std::function<std::string_view(std::string_view name)>;

// Which LLM API a request calls, from its method (POST only), its request-target's path
// (origin- or absolute-form; the query and a trailing '/' are ignored) and, for Anthropic,
// its headers. Endpoints are matched on the path's last segments, so any prefix works
// (Azure's /openai/deployments/{name}/chat/completions?api-version=…, Gemini's
// /v1beta/openai/chat/completions, a proxy's /ollama/api/chat):
//
//   path ends with                 Api                 also needs
//   -----------------------------  ------------------  -----------------------------------
//   /chat/completions              kOpenAiChat
//   /api/chat                      kOllamaChat
//   /api/generate                  kOllamaGenerate
//   /api/embed, /api/embeddings    kOllamaEmbed
//   /completions                   kOpenAiCompletions  an API root before it (*)
//   /embeddings                    kOpenAiEmbeddings   an API root before it (*)
//   /responses                     kOpenAiResponses    an API root before it (*)
//   /messages                      kAnthropicMessages  an API root before it (*), and the
//                                                      root is "v1" or the request has an
//                                                      anthropic-version or x-api-key header
//
// (*) These names are common in other APIs (POST /surveys/7/responses), so the segment
// before them must be a version ("v1", "v1beta", "v4"), "openai", a deployment
// (deployments/{name}), or nothing (LiteLLM's /chat/completions-style root paths). Not
// calls: /v1/responses/{id} (GET, or POST …/cancel), /v1/messages/count_tokens,
// /v1/messages/batches.
//
// "/api/chat" is also a common application route (chat front-ends): callers should take a
// recognised request as an LLM call only once ParseRequest() finds a model in it.
std::optional<Api> RecognizeRequest(std::string_view method, std::string_view target,
                                    const HeaderLookup& headers);

// gen_ai.operation.name: "chat" for chat and the Responses API (the OpenAI page of the
// conventions gives both the operation "chat" and tells them apart by openai.api.type),
// "text_completion" for the legacy completions and Ollama's /api/generate, "embeddings".
std::string_view OperationName(Api api);

// gen_ai.provider.name, one of the conventions' well-known values when the server's host
// name says which vendor it is (case-insensitive; a subdomain counts; `host` without a
// port):
//
//   host                                             provider
//   -----------------------------------------------  ------------------
//   openai.com                                       openai
//   openai.azure.com, cognitiveservices.azure.com    azure.ai.openai
//   services.ai.azure.com, inference.ai.azure.com    azure.ai.inference
//   anthropic.com                                    anthropic
//   generativelanguage.googleapis.com                gcp.gemini
//   aiplatform.googleapis.com, {region}-aiplatform…  gcp.vertex_ai
//   bedrock-runtime*.{region}.amazonaws.com(.cn)     aws.bedrock
//   groq.com / mistral.ai / deepseek.com / x.ai      groq / mistral_ai / deepseek / x_ai
//   perplexity.ai / cohere.com, cohere.ai            perplexity / cohere
//   ml.cloud.ibm.com / moonshot.ai, moonshot.cn      ibm.watsonx.ai / moonshot_ai
//
// Any other host (localhost, a gateway, a self-hosted server) gets the provider whose
// telemetry flavour the API shape is, as the conventions describe the attribute: "openai"
// for the OpenAI shapes, "anthropic" for Messages, and "ollama" for Ollama's own API. The
// conventions have no value for Ollama and allow a custom one when none applies.
std::string_view ProviderName(Api api, std::string_view host);

// One input message (opt-in content).
struct Message {
  std::string role;                     // as sent: system, developer, user, assistant, tool
  std::string text;                     // text parts joined with '\n'; other parts as
                                        // "[image]", "[audio]", "[file]" or "[<type>]"
  std::vector<std::string> tool_calls;  // names of the tools an assistant message called
};

// gen_ai.request.* from a request body.
struct RequestInfo {
  std::string model;
  // Whether the response streams, as the server decides it: the "stream" member, or when
  // absent the API's default (Ollama chat/generate stream, everything else does not);
  // unknown when absent from a truncated body.
  std::optional<bool> stream;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<double> top_k;
  std::optional<double> frequency_penalty;
  std::optional<double> presence_penalty;
  // max_completion_tokens, max_tokens, max_output_tokens (Responses), or Ollama's
  // options.num_predict when not negative (-1 and -2 mean "no limit" there).
  std::optional<int64_t> max_tokens;
  std::optional<int64_t> seed;
  std::optional<int64_t> choice_count;  // "n"
  std::vector<std::string> stop_sequences;
  std::vector<std::string> encoding_formats;  // embeddings' encoding_format
  // The body was cut (body_truncated, or its JSON did not end): absent fields may have
  // been past the cut.
  bool truncated = false;
  // The ids of the tool results this request sends back, in order (OpenAI chat's
  // messages[role=tool].tool_call_id, the Responses API's function_call_output call_id,
  // Anthropic's tool_result tool_use_id), at most kMaxListItems, each at most
  // kMaxToolCallIdBytes. Read whether or not content is wanted: ids are not content. The
  // whole history is resent each turn, so a request names earlier rounds' results too.
  std::vector<std::string> tool_results;

  // Opt-in content (want_content), at most kMaxInputContentBytes of text in all.
  // Messages in the order sent; system messages that are part of the chat history stay
  // there, as the conventions ask.
  std::vector<Message> input_messages;
  // Instructions given apart from the history: Anthropic's "system", the Responses API's
  // "instructions", Ollama generate's "system".
  std::string system_instructions;
};

// Ollama's model parameters are read from "options", everything else from the body's top
// level. Never fails: a body that is not JSON gives an empty RequestInfo.
RequestInfo ParseRequest(Api api, std::string_view body, bool body_truncated, bool want_content);

// gen_ai.response.* and gen_ai.usage.* from a response.
//
// Tokens, as the conventions define them:
//   input_tokens     all input tokens, cached ones included. OpenAI's prompt_tokens /
//                    input_tokens already include them; Anthropic's input_tokens does not,
//                    so there input_tokens = input_tokens + cache_read_input_tokens +
//                    cache_creation_input_tokens (the Anthropic page of the conventions:
//                    "This value MUST be added to the Anthropic input_tokens").
//   cache_read_input_tokens      gen_ai.usage.cache_read.input_tokens: OpenAI's
//                                *_tokens_details.cached_tokens, Anthropic's
//                                cache_read_input_tokens.
//   cache_creation_input_tokens  gen_ai.usage.cache_creation.input_tokens (Anthropic).
//   reasoning_output_tokens      gen_ai.usage.reasoning.output_tokens: OpenAI's
//                                *_tokens_details.reasoning_tokens; part of output_tokens.
//   Ollama: prompt_eval_count and eval_count. Embeddings have no output tokens.
// A tool call the model asked for: the API's id for it (OpenAI tool_calls[].id, the
// Responses API's call_id, Anthropic's tool_use id; empty for Ollama, whose calls have none)
// and the tool's name, each at most kMaxToolCallIdBytes.
struct ToolCallAsked {
  std::string id;
  std::string name;
};
inline constexpr size_t kMaxToolCallIdBytes = 256;

struct ResponseInfo {
  std::string id;
  std::string model;
  // One a choice, in choice index order: OpenAI's finish_reason, Anthropic's stop_reason,
  // Ollama's done_reason. The Responses API has none: a completed response gives "stop"
  // (or "tool_calls" when it called a function, as chat completions would say), an
  // incomplete one its incomplete_details.reason, a failed or cancelled one its status.
  std::vector<std::string> finish_reasons;
  std::optional<int64_t> input_tokens;
  std::optional<int64_t> output_tokens;
  std::optional<int64_t> cache_read_input_tokens;
  std::optional<int64_t> cache_creation_input_tokens;
  std::optional<int64_t> reasoning_output_tokens;
  // The body was an event stream (text/event-stream) or NDJSON (application/x-ndjson).
  bool streamed = false;
  // In a stream: where the first event (or NDJSON line) that carries output starts in the
  // body: output text, reasoning text or a tool call (for Anthropic, the first
  // content_block_delta). Absent when no event does.
  std::optional<uint64_t> first_chunk_offset;
  // The response is whole: a JSON body that parsed to its end, or a stream that reached
  // its last event ([DONE], message_stop, response.completed / .incomplete / .failed,
  // done:true).
  bool complete = false;
  // From an error body or an in-stream error event. error_type: the error's "code" when it
  // is a non-empty string, else its "type" (Anthropic's error.type); empty when the body
  // names none (Ollama sends only a message), so the caller falls back to the HTTP status.
  std::string error_type;
  std::string error_message;  // at most kMaxErrorMessageBytes

  // Opt-in content (want_content): the output text (OpenAI chat and completions: the
  // choice with index 0), at most kMaxOutputTextBytes, and the names of the tools called.
  std::string output_text;
  std::vector<std::string> output_tool_calls;

  // The tool calls asked for, in order (OpenAI chat: choice 0's; a stream names each call
  // in its first delta), at most kMaxListItems. Read whether or not content is wanted: ids
  // and tool names are not content.
  std::vector<ToolCallAsked> tool_calls_asked;
};

// Reads a response to a request of `api`. A status of 400 or more reads only the error in
// the body (any content type). Otherwise `content_type` picks the format:
// text/event-stream and application/x-ndjson are streams, anything else one JSON body.
ResponseInfo ParseResponse(Api api, int status_code, std::string_view content_type, std::string_view body,
                           bool body_truncated, bool want_content);

}  // namespace kspan::genai
