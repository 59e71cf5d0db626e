// HTTP span -> gen_ai span, for calls to LLM APIs (OpenAI-compatible, Anthropic, Ollama;
// genai/llm.h says which requests those are and how their bodies read), per the
// OpenTelemetry semantic conventions for generative AI (client spans and metrics).
//
// A CLIENT span whose request is an LLM API call keeps every HTTP attribute and gains:
//
//   name    "{gen_ai.operation.name} {gen_ai.request.model}", e.g. "chat gpt-4o"
//   status  ERROR when the HTTP span is one, or the body or stream reports an error; the
//           message is the API's error message (bounded), error.type its error code/type
//
//   gen_ai.operation.name, gen_ai.provider.name            always
//   gen_ai.request.model, .temperature, .top_p, .top_k,    as the request sent them
//     .max_tokens, .frequency_penalty, .presence_penalty,
//     .seed, .choice.count, .stop_sequences,
//     .encoding_formats, .stream
//   gen_ai.response.id, .model, .finish_reasons            as the response sent them
//   gen_ai.usage.input_tokens, .output_tokens,             as the response counted them
//     .cache_read.input_tokens, .cache_creation.input_tokens,
//     .reasoning.output_tokens
//   gen_ai.response.time_to_first_chunk (s)                streams: request start to the
//                                                          syscall that brought the first
//                                                          event with output; also a span
//                                                          event "gen_ai.first_chunk"
//
// Content (prompts, completions, system instructions) is never read unless
// GenAiOptions::capture_content: then a "gen_ai.client.inference.operation.details" event
// carries gen_ai.input.messages, gen_ai.output.messages and gen_ai.system_instructions (the
// conventions' JSON shapes), with secrets redacted (common/redact.h).
//
// Metrics (the conventions' client instruments, as Registry histograms named with '_'):
//   gen_ai_client_token_usage{…, gen_ai_token_type}          tokens per call
//   gen_ai_client_operation_duration_seconds{…, error_type}  call duration
//   gen_ai_client_operation_time_to_first_chunk_seconds{…}   streams only
// labelled gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model,
// gen_ai_response_model, server_address.
#pragma once

#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "correlator/http_span.h"
#include "genai/llm.h"
#include "model/span.h"
#include "protocols/http1/types.h"

namespace kspan::correlator {

struct GenAiOptions {
  // Opt-in: prompt and completion content as a span event (redacted). Off by default.
  bool capture_content = false;
  // A compressed response body (gzip, deflate, br) is decoded up to this many bytes.
  size_t max_decoded_bytes = 1 << 20;
};

class GenAiSpans {
 public:
  GenAiSpans(const GenAiOptions& options, metrics::Registry* metrics);

  // When `record` is an LLM API call this process made, turns its HTTP span into a
  // gen_ai span and records the metrics; returns whether it did. `asked`, when given, gets
  // the tool calls the response asked for (genai::ResponseInfo::tool_calls_asked);
  // `results`, when given, the ids of the tool results the request sent back
  // (genai::RequestInfo::tool_results).
  bool Apply(const protocols::http1::Record& record, const HttpConnContext& conn, model::Span* span,
             std::vector<genai::ToolCallAsked>* asked = nullptr, std::vector<std::string>* results = nullptr);

  // For http1::Limits::wide_body_request: a request head that may be an LLM API call,
  // whose body and response body are worth keeping wide.
  static bool MayBeLlmCall(const protocols::http1::Message& head);

 private:
  GenAiOptions options_;
  metrics::Registry* metrics_;
  metrics::Counter* calls_;
  metrics::Counter* unreadable_encoded_;
};

}  // namespace kspan::correlator
