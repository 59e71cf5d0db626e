#include "correlator/genai_span.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/redact.h"
#include "genai/content_encoding.h"
#include "genai/llm.h"

namespace kspan::correlator {
namespace {

using protocols::http1::Message;
using protocols::http1::Record;

// The conventions' explicit bucket boundaries for the client instruments.
const std::vector<double> kTokenBuckets = {1,     4,     16,     64,      256,     1024,     4096,
                                           16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
const std::vector<double> kSecondsBuckets = {0.01, 0.02, 0.04, 0.08,  0.16,  0.32,  0.64,
                                             1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};

genai::HeaderLookup HeadersOf(const Message& m) {
  return [&m](std::string_view name) { return m.Header(name); };
}

std::string_view StringAttr(const model::Span& span, std::string_view key) {
  const std::string* s = span.FindString(key);
  return s ? std::string_view(*s) : std::string_view();
}

template <typename T>
void SetIf(model::Span* span, std::string_view key, const std::optional<T>& v) {
  if (v) span->Set(key, model::AttributeValue(*v));
}

// The response as one reading: the kept prefix (decoded when compressed), and for a stream
// that outgrew it, what its kept tail says about the end (usage, finish reasons,
// completion, a late error). A compressed body's tail is the middle of a compressed stream:
// unreadable. Returns nullopt when the body's coding cannot be decoded.
std::optional<genai::ResponseInfo> ReadResponse(genai::Api api, const Message& resp, bool want_content,
                                                size_t max_decoded) {
  const std::string_view type = resp.Header("content-type");
  const std::string_view encoding = resp.Header("content-encoding");
  const bool cut = resp.body_truncated || resp.body_tail.size() > 0;
  if (!encoding.empty() && encoding != "identity") {
    const genai::Decoded body = genai::DecodeContentEncoding(encoding, resp.body_prefix, max_decoded);
    if (!body.ok) return std::nullopt;
    return genai::ParseResponse(api, resp.status_code, type, body.body, cut || body.truncated, want_content);
  }
  genai::ResponseInfo info =
      genai::ParseResponse(api, resp.status_code, type, resp.body_prefix, cut, want_content);
  if (resp.body_tail.empty() || !info.streamed) return info;
  const genai::ResponseInfo end =
      genai::ParseResponse(api, resp.status_code, type, resp.body_tail, resp.body_truncated, false);
  if (!end.finish_reasons.empty()) info.finish_reasons = end.finish_reasons;
  if (end.input_tokens) info.input_tokens = end.input_tokens;
  if (end.output_tokens) info.output_tokens = end.output_tokens;
  if (end.cache_read_input_tokens) info.cache_read_input_tokens = end.cache_read_input_tokens;
  if (end.cache_creation_input_tokens) info.cache_creation_input_tokens = end.cache_creation_input_tokens;
  if (end.reasoning_output_tokens) info.reasoning_output_tokens = end.reasoning_output_tokens;
  if (!end.error_type.empty() || !end.error_message.empty()) {
    info.error_type = end.error_type;
    info.error_message = end.error_message;
  }
  info.complete = end.complete;
  return info;
}

// When the syscall that brought decoded body offset `offset` moved, or 0.
uint64_t TimeAtBodyOffset(const Message& m, uint64_t offset) {
  const auto& marks = m.body_marks;
  auto it = std::upper_bound(marks.begin(), marks.end(), offset,
                             [](uint64_t o, const Message::BodyMark& mark) { return o < mark.offset; });
  return it == marks.begin() ? 0 : std::prev(it)->ns;
}

// The conventions' message shape: [{"role":…,"parts":[{"type":"text","content":…},
// {"type":"tool_call","name":…}]}], content redacted.
void AppendMessage(JsonWriter* w, std::string_view role, std::string_view text,
                   const std::vector<std::string>& tool_calls, std::string_view finish_reason) {
  w->BeginObject();
  w->Key("role");
  w->String(role);
  w->Key("parts");
  w->BeginArray();
  if (!text.empty()) {
    w->BeginObject();
    w->Key("type");
    w->String("text");
    w->Key("content");
    w->String(RedactSecrets(text));
    w->EndObject();
  }
  for (const std::string& name : tool_calls) {
    w->BeginObject();
    w->Key("type");
    w->String("tool_call");
    w->Key("name");
    w->String(name);
    w->EndObject();
  }
  w->EndArray();
  if (!finish_reason.empty()) {
    w->Key("finish_reason");
    w->String(finish_reason);
  }
  w->EndObject();
}

model::SpanEvent ContentEvent(const genai::RequestInfo& req, const genai::ResponseInfo& resp,
                              uint64_t at_ns) {
  model::SpanEvent e;
  e.name = "gen_ai.client.inference.operation.details";
  e.time_unix_nano = at_ns;
  std::string input;
  JsonWriter in(&input);
  in.BeginArray();
  for (const genai::Message& m : req.input_messages) AppendMessage(&in, m.role, m.text, m.tool_calls, "");
  in.EndArray();
  e.attributes.push_back({"gen_ai.input.messages", std::move(input)});
  if (!resp.output_text.empty() || !resp.output_tool_calls.empty()) {
    std::string output;
    JsonWriter out(&output);
    out.BeginArray();
    AppendMessage(&out, "assistant", resp.output_text, resp.output_tool_calls,
                  resp.finish_reasons.empty() ? "" : resp.finish_reasons.front());
    out.EndArray();
    e.attributes.push_back({"gen_ai.output.messages", std::move(output)});
  }
  if (!req.system_instructions.empty()) {
    std::string system;
    JsonWriter sys(&system);
    sys.BeginArray();
    sys.BeginObject();
    sys.Key("type");
    sys.String("text");
    sys.Key("content");
    sys.String(RedactSecrets(req.system_instructions));
    sys.EndObject();
    sys.EndArray();
    e.attributes.push_back({"gen_ai.system_instructions", std::move(system)});
  }
  return e;
}

}  // namespace

GenAiSpans::GenAiSpans(const GenAiOptions& options, metrics::Registry* metrics)
    : options_(options),
      metrics_(metrics),
      calls_(metrics->GetCounter("kspan_genai_calls_total")),
      unreadable_encoded_(
          metrics->GetCounter("kspan_genai_bodies_unread_total", {{"reason", "content_encoding"}})) {}

bool GenAiSpans::MayBeLlmCall(const Message& head) {
  return genai::RecognizeRequest(head.method(), head.target(), HeadersOf(head)).has_value();
}

bool GenAiSpans::Apply(const Record& record, const HttpConnContext& conn, model::Span* span,
                       std::vector<genai::ToolCallAsked>* asked, std::vector<std::string>* results) {
  if (conn.is_server) return false;
  const Message& rq = record.request;
  const std::optional<genai::Api> api = genai::RecognizeRequest(rq.method(), rq.target(), HeadersOf(rq));
  if (!api) return false;

  const bool content = options_.capture_content;
  const genai::RequestInfo req = genai::ParseRequest(*api, rq.body_prefix, rq.body_truncated, content);
  const Message& rs = record.response;
  // A body in a coding kspan cannot decode (zstd, say) is counted as unread.
  genai::ResponseInfo resp;
  bool unread = false;
  if (!record.response_missing) {
    if (auto r = ReadResponse(*api, rs, content, options_.max_decoded_bytes)) {
      resp = std::move(*r);
    } else {
      unread = true;
    }
  }
  // "/api/chat" and the like are also ordinary application routes: a call names a model.
  if (req.model.empty() && resp.model.empty()) return false;
  if (unread) unreadable_encoded_->Add();
  calls_->Add();
  if (asked) *asked = resp.tool_calls_asked;
  if (results) *results = req.tool_results;

  const std::string_view operation = genai::OperationName(*api);
  // A copy: the attributes vector grows below.
  const std::string server(StringAttr(*span, "server.address"));
  const std::string_view provider = genai::ProviderName(*api, server);
  span->name = std::string(operation);
  if (!req.model.empty()) span->name += " " + req.model;

  span->Set("gen_ai.operation.name", std::string(operation));
  span->Set("gen_ai.provider.name", std::string(provider));
  if (!req.model.empty()) span->Set("gen_ai.request.model", req.model);
  SetIf(span, "gen_ai.request.temperature", req.temperature);
  SetIf(span, "gen_ai.request.top_p", req.top_p);
  SetIf(span, "gen_ai.request.top_k", req.top_k);
  SetIf(span, "gen_ai.request.frequency_penalty", req.frequency_penalty);
  SetIf(span, "gen_ai.request.presence_penalty", req.presence_penalty);
  SetIf(span, "gen_ai.request.max_tokens", req.max_tokens);
  SetIf(span, "gen_ai.request.seed", req.seed);
  SetIf(span, "gen_ai.request.choice.count", req.choice_count);
  SetIf(span, "gen_ai.request.stream", req.stream);
  if (!req.stop_sequences.empty()) span->Set("gen_ai.request.stop_sequences", req.stop_sequences);
  if (!req.encoding_formats.empty()) span->Set("gen_ai.request.encoding_formats", req.encoding_formats);

  if (!resp.id.empty()) span->Set("gen_ai.response.id", resp.id);
  if (!resp.model.empty()) span->Set("gen_ai.response.model", resp.model);
  if (!resp.finish_reasons.empty()) span->Set("gen_ai.response.finish_reasons", resp.finish_reasons);
  SetIf(span, "gen_ai.usage.input_tokens", resp.input_tokens);
  SetIf(span, "gen_ai.usage.output_tokens", resp.output_tokens);
  SetIf(span, "gen_ai.usage.cache_read.input_tokens", resp.cache_read_input_tokens);
  SetIf(span, "gen_ai.usage.cache_creation.input_tokens", resp.cache_creation_input_tokens);
  SetIf(span, "gen_ai.usage.reasoning.output_tokens", resp.reasoning_output_tokens);

  std::optional<double> ttfc;
  if (resp.streamed && resp.first_chunk_offset) {
    const uint64_t at = TimeAtBodyOffset(rs, *resp.first_chunk_offset);
    if (at >= span->start_time_unix_nano && at > 0) {
      ttfc = static_cast<double>(at - span->start_time_unix_nano) / 1e9;
      span->Set("gen_ai.response.time_to_first_chunk", *ttfc);
      span->events.push_back({"gen_ai.first_chunk", at, {{"gen_ai.response.time_to_first_chunk", *ttfc}}});
    }
  }

  // The API's own error beats the HTTP status: "rate_limit_exceeded" says more than "429".
  if (!resp.error_type.empty() || !resp.error_message.empty()) {
    span->status_code = model::StatusCode::kError;
    span->status_message = resp.error_message;
    if (!resp.error_type.empty()) span->Set("error.type", resp.error_type);
  }
  if (content) span->events.push_back(ContentEvent(req, resp, span->end_time_unix_nano));

  // Metrics.
  const std::string response_model = resp.model;
  // Through the registry's redactor once (model names and addresses come from traffic).
  const metrics::Labels labels = metrics_->Redacted({{"gen_ai_operation_name", std::string(operation)},
                                                     {"gen_ai_provider_name", std::string(provider)},
                                                     {"gen_ai_request_model", req.model},
                                                     {"gen_ai_response_model", response_model},
                                                     {"server_address", server}});
  auto with = [&labels](std::string key, std::string value) {
    metrics::Labels l = labels;
    l.emplace_back(std::move(key), std::move(value));
    return l;
  };
  if (resp.input_tokens) {
    metrics_->GetHistogram("gen_ai_client_token_usage", with("gen_ai_token_type", "input"), kTokenBuckets)
        ->Record(static_cast<double>(*resp.input_tokens));
  }
  if (resp.output_tokens) {
    metrics_->GetHistogram("gen_ai_client_token_usage", with("gen_ai_token_type", "output"), kTokenBuckets)
        ->Record(static_cast<double>(*resp.output_tokens));
  }
  const metrics::Labels error_type =
      metrics_->Redacted({{"error_type", span->status_code == model::StatusCode::kError
                                             ? std::string(StringAttr(*span, "error.type"))
                                             : std::string()}});
  const uint64_t end = std::max(span->end_time_unix_nano, span->start_time_unix_nano);
  metrics_
      ->GetHistogram("gen_ai_client_operation_duration_seconds", with("error_type", error_type[0].second),
                     kSecondsBuckets)
      ->Record(static_cast<double>(end - span->start_time_unix_nano) / 1e9);
  if (ttfc) {
    metrics_->GetHistogram("gen_ai_client_operation_time_to_first_chunk_seconds", labels, kSecondsBuckets)
        ->Record(*ttfc);
  }
  return true;
}

}  // namespace kspan::correlator
