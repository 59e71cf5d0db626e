#include "genai/llm.h"

#include <algorithm>
#include <utility>

#include "common/strings.h"
#include "genai/json.h"
#include "genai/sse.h"

namespace kspan::genai {

namespace {

using json::Type;
using json::Value;

// ---- Text ----------------------------------------------------------------------------

// Appends as much of `s` as `*budget` bytes allow, cutting before a UTF-8 sequence rather
// than inside one, and takes what it appended from the budget.
void AppendBounded(std::string* out, std::string_view s, size_t* budget) {
  size_t n = std::min(s.size(), *budget);
  if (n < s.size()) {
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // a continuation byte
  }
  out->append(s.substr(0, n));
  *budget -= n;
}

std::string Bounded(std::string_view s, size_t max_bytes) {
  std::string out;
  AppendBounded(&out, s, &max_bytes);
  return out;
}

std::string_view StringOrEmpty(Value v) {
  return v.AsString().value_or(std::string_view());
}

// A string, or an array of strings (OpenAI's "stop" takes both), appended to a bounded list.
void AppendStrings(Value v, std::vector<std::string>* out) {
  if (const auto s = v.AsString()) {
    out->emplace_back(*s);
    return;
  }
  for (const Value item : v.children()) {
    if (out->size() >= kMaxListItems) return;
    if (const auto s = item.AsString()) out->emplace_back(*s);
  }
}

// Stores a number that is present; a later chunk without it (or with null) keeps the
// earlier value.
void Assign(std::optional<int64_t>* field, Value v) {
  if (const auto n = v.AsInt64()) *field = n;
}

void AssignIfEmpty(std::string* field, Value v) {
  if (field->empty()) field->assign(StringOrEmpty(v));
}

// ---- Request recognition ---------------------------------------------------------------

// The path of a request-target (origin- or absolute-form), without query, fragment and
// trailing slashes.
std::string_view TargetPath(std::string_view target) {
  if (!target.starts_with('/')) {
    if (const size_t scheme_end = target.find("://"); scheme_end != std::string_view::npos) {
      const size_t path = target.find_first_of("/?#", scheme_end + 3);
      target = path == std::string_view::npos ? std::string_view() : target.substr(path);
    }
  }
  target = target.substr(0, target.find_first_of("?#"));
  while (target.ends_with('/')) target.remove_suffix(1);
  return target;
}

// Removes the last segment from `*path` and returns it; "" when none is left.
std::string_view PopSegment(std::string_view* path) {
  const size_t slash = path->rfind('/');
  std::string_view segment = *path;
  if (slash == std::string_view::npos) {
    *path = {};
  } else {
    segment = path->substr(slash + 1);
    *path = path->substr(0, slash);
  }
  return segment;
}

// What may come before an endpoint with a common name (see RecognizeRequest): nothing, a
// version ("v1", "v1beta", "v4"), "openai", or an Azure deployment.
bool IsApiRoot(std::string_view before) {
  const std::string_view prev = PopSegment(&before);
  if (prev.empty()) return before.empty();
  if (prev == "openai") return true;
  if (prev.size() >= 2 && prev[0] == 'v' && IsDigit(prev[1])) return true;
  return PopSegment(&before) == "deployments";
}

bool IsOllama(Api api) {
  return api == Api::kOllamaChat || api == Api::kOllamaGenerate || api == Api::kOllamaEmbed;
}

// ---- Provider ----------------------------------------------------------------------------

// `host` is `domain` or one of its subdomains.
bool InDomain(std::string_view host, std::string_view domain) {
  return EndsWithIgnoreCase(host, domain) &&
         (host.size() == domain.size() || host[host.size() - domain.size() - 1] == '.');
}

struct DomainProvider {
  std::string_view domain;
  std::string_view provider;
};

// The table in llm.h; values from the conventions' gen_ai.provider.name list.
constexpr DomainProvider kDomainProviders[] = {
    {"openai.com", "openai"},
    {"openai.azure.com", "azure.ai.openai"},
    {"cognitiveservices.azure.com", "azure.ai.openai"},
    {"services.ai.azure.com", "azure.ai.inference"},
    {"inference.ai.azure.com", "azure.ai.inference"},
    {"anthropic.com", "anthropic"},
    {"generativelanguage.googleapis.com", "gcp.gemini"},
    {"aiplatform.googleapis.com", "gcp.vertex_ai"},
    {"groq.com", "groq"},
    {"mistral.ai", "mistral_ai"},
    {"deepseek.com", "deepseek"},
    {"x.ai", "x_ai"},
    {"perplexity.ai", "perplexity"},
    {"cohere.com", "cohere"},
    {"cohere.ai", "cohere"},
    {"ml.cloud.ibm.com", "ibm.watsonx.ai"},
    {"moonshot.ai", "moonshot_ai"},
    {"moonshot.cn", "moonshot_ai"},
};

// ---- Request content -----------------------------------------------------------------------

Message WithRole(std::string_view role) {
  Message m;
  m.role = role;
  return m;
}

// Reads opt-in input content within one byte budget shared by all messages and the
// system instructions.
class ContentReader {
 public:
  explicit ContentReader(RequestInfo* info) : info_(info) {}

  void Read(Api api, Value root);

 private:
  void ReadChatMessages(Value messages);  // OpenAI chat, Anthropic, Ollama chat
  void ReadResponsesInput(Value input);
  void AddMessage(Message message);
  bool full() const { return info_->input_messages.size() >= kMaxListItems; }
  // A content value: a string or an array of parts; tool_use parts become tool calls,
  // tool_result parts contribute their own content.
  void AppendContent(Value content, Message* message);
  // A string, or parts whose text is taken and the rest summarised.
  void AppendFlatContent(Value content, std::string* out);
  void AppendPart(Value part, std::string* out);
  void AppendText(std::string_view text, std::string* out);
  void AddToolCall(Value name, Message* message);

  RequestInfo* info_;
  size_t budget_ = kMaxInputContentBytes;
};

void ContentReader::Read(Api api, Value root) {
  switch (api) {
    case Api::kOpenAiChat:
    case Api::kOllamaChat: ReadChatMessages(root.Find("messages")); break;
    case Api::kAnthropicMessages:
      AppendFlatContent(root.Find("system"), &info_->system_instructions);
      ReadChatMessages(root.Find("messages"));
      break;
    case Api::kOpenAiResponses:
      AppendFlatContent(root.Find("instructions"), &info_->system_instructions);
      ReadResponsesInput(root.Find("input"));
      break;
    case Api::kOpenAiCompletions: {
      const Value prompt = root.Find("prompt");
      if (prompt.type() == Type::kString) {
        Message m = WithRole("user");
        AppendText(*prompt.AsString(), &m.text);
        AddMessage(std::move(m));
      }
      for (const Value p : prompt.children()) {  // a batch of prompts
        if (full()) break;
        if (p.type() != Type::kString) continue;  // token arrays
        Message m = WithRole("user");
        AppendText(*p.AsString(), &m.text);
        AddMessage(std::move(m));
      }
      break;
    }
    case Api::kOllamaGenerate: {
      AppendFlatContent(root.Find("system"), &info_->system_instructions);
      Message m = WithRole("user");
      AppendFlatContent(root.Find("prompt"), &m.text);
      for (size_t i = 0; i < root.Find("images").size(); ++i) AppendText("[image]", &m.text);
      if (!m.text.empty()) AddMessage(std::move(m));
      break;
    }
    case Api::kOpenAiEmbeddings:
    case Api::kOllamaEmbed: break;  // the conventions record no input messages for embeddings
  }
}

void ContentReader::ReadChatMessages(Value messages) {
  for (const Value m : messages.children()) {
    if (full()) return;
    Message message = WithRole(StringOrEmpty(m.Find("role")));
    AppendContent(m.Find("content"), &message);
    for (size_t i = 0; i < m.Find("images").size(); ++i) AppendText("[image]", &message.text);  // Ollama
    for (const Value call : m.Find("tool_calls").children())
      AddToolCall(call.At({"function", "name"}), &message);
    AddMessage(std::move(message));
  }
}

// "input": a string (one user message) or a list of items: messages, and the function
// calls and their outputs of earlier turns. Other items (reasoning, references) are skipped.
void ContentReader::ReadResponsesInput(Value input) {
  if (const auto text = input.AsString()) {
    Message m = WithRole("user");
    AppendText(*text, &m.text);
    AddMessage(std::move(m));
    return;
  }
  for (const Value item : input.children()) {
    if (full()) return;
    const std::string_view type = StringOrEmpty(item.Find("type"));
    if (type == "function_call") {
      Message m = WithRole("assistant");
      AddToolCall(item.Find("name"), &m);
      AddMessage(std::move(m));
    } else if (type == "function_call_output") {
      Message m = WithRole("tool");
      AppendFlatContent(item.Find("output"), &m.text);
      AddMessage(std::move(m));
    } else if (const auto role = item.Find("role").AsString()) {
      Message m = WithRole(*role);
      AppendContent(item.Find("content"), &m);
      AddMessage(std::move(m));
    }
  }
}

void ContentReader::AddMessage(Message message) {
  if (!full()) info_->input_messages.push_back(std::move(message));
}

void ContentReader::AppendContent(Value content, Message* message) {
  if (content.type() != Type::kArray) {
    AppendFlatContent(content, &message->text);
    return;
  }
  for (const Value part : content.children()) {
    const std::string_view type = StringOrEmpty(part.Find("type"));
    if (type == "tool_use") {
      AddToolCall(part.Find("name"), message);
    } else if (type == "tool_result") {
      AppendFlatContent(part.Find("content"), &message->text);
    } else {
      AppendPart(part, &message->text);
    }
  }
}

void ContentReader::AppendFlatContent(Value content, std::string* out) {
  if (const auto text = content.AsString()) {
    AppendText(*text, out);
    return;
  }
  for (const Value part : content.children()) AppendPart(part, out);
}

// Text parts ("text", "input_text", "output_text") and refusals give their text; other
// parts a summary of their type.
void ContentReader::AppendPart(Value part, std::string* out) {
  if (const auto text = part.Find("text").AsString()) {
    AppendText(*text, out);
    return;
  }
  if (const auto refusal = part.Find("refusal").AsString()) {
    AppendText(*refusal, out);
    return;
  }
  const std::string_view type = StringOrEmpty(part.Find("type"));
  if (type.find("image") != std::string_view::npos) {
    AppendText("[image]", out);
  } else if (type.find("audio") != std::string_view::npos) {
    AppendText("[audio]", out);
  } else if (type.find("file") != std::string_view::npos || type == "document") {
    AppendText("[file]", out);
  } else {
    AppendText("[" + std::string(type.empty() ? "part" : type) + "]", out);
  }
}

void ContentReader::AppendText(std::string_view text, std::string* out) {
  if (text.empty()) return;
  if (!out->empty()) AppendBounded(out, "\n", &budget_);
  AppendBounded(out, text, &budget_);
}

void ContentReader::AddToolCall(Value name, Message* message) {
  const std::string_view n = StringOrEmpty(name);
  if (!n.empty() && message->tool_calls.size() < kMaxListItems) message->tool_calls.emplace_back(n);
}

// ---- Responses -------------------------------------------------------------------------------

bool IsMediaType(std::string_view content_type, std::string_view media_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (content_type.starts_with(' ') || content_type.starts_with('\t')) content_type.remove_prefix(1);
  while (content_type.ends_with(' ') || content_type.ends_with('\t')) content_type.remove_suffix(1);
  return EqualsIgnoreCase(content_type, media_type);
}

// Reads one response: a whole JSON body, or the events of a stream one by one. `offset`
// is where a stream's event starts in the body; absent for a whole body.
class ResponseReader {
 public:
  ResponseReader(Api api, bool want_content) : api_(api), want_content_(want_content) {}

  void ReadErrorBody(std::string_view body, bool body_truncated);
  void ReadJsonBody(std::string_view body, bool body_truncated);
  void ReadEventStream(std::string_view body);
  void ReadNdjson(std::string_view body);
  ResponseInfo Finish() &&;

 private:
  void ReadStreamChunk(std::string_view event_type, Value chunk, size_t offset);
  // {"error": {...}} or {"error": "message"}.
  void ReadError(Value holder) { ReadErrorObject(holder.Find("error")); }
  void ReadErrorObject(Value error);
  void ReadOpenAi(Value object, std::optional<size_t> offset);
  void ReadResponseObject(Value response, bool from_stream);
  void ReadResponsesEvent(std::string_view type, Value event, size_t offset);
  void ReadAnthropicMessage(Value message, bool from_stream);
  void ReadAnthropicEvent(std::string_view type, Value event, size_t offset);
  void ReadAnthropicUsage(Value usage);
  void ReadOllama(Value object, std::optional<size_t> offset);

  void SetFinishReason(int64_t choice, std::string_view reason);
  void MarkOutput(size_t offset) {
    if (!info_.first_chunk_offset) info_.first_chunk_offset = offset;
  }
  void AppendOutput(std::string_view text) {
    if (want_content_) AppendBounded(&info_.output_text, text, &output_budget_);
  }
  void AddToolCall(Value name, Value id) {
    const std::string_view n = StringOrEmpty(name);
    const std::string_view i = StringOrEmpty(id);
    if (want_content_ && !n.empty() && info_.output_tool_calls.size() < kMaxListItems) {
      info_.output_tool_calls.emplace_back(n);
    }
    // A stream's later deltas of a call carry neither (only its arguments).
    if ((!n.empty() || !i.empty()) && info_.tool_calls_asked.size() < kMaxListItems) {
      info_.tool_calls_asked.push_back(
          {std::string(i.substr(0, kMaxToolCallIdBytes)), std::string(n.substr(0, kMaxToolCallIdBytes))});
    }
  }

  const Api api_;
  const bool want_content_;
  ResponseInfo info_;
  size_t output_budget_ = kMaxOutputTextBytes;
  std::vector<std::pair<int64_t, std::string>> finish_reasons_;  // by choice index
  std::optional<int64_t> anthropic_input_tokens_;                // without the cached ones
};

void ResponseReader::ReadErrorBody(std::string_view body, bool body_truncated) {
  const json::Document doc = json::ParsePrefix(body);
  info_.complete = !body_truncated && doc.status() == json::ParseStatus::kOk;
  ReadError(doc.root());
}

void ResponseReader::ReadJsonBody(std::string_view body, bool body_truncated) {
  const json::Document doc = json::ParsePrefix(body);
  const Value root = doc.root();
  info_.complete = !body_truncated && doc.status() == json::ParseStatus::kOk;
  ReadError(root);
  switch (api_) {
    case Api::kOpenAiChat:
    case Api::kOpenAiCompletions:
    case Api::kOpenAiEmbeddings: ReadOpenAi(root, std::nullopt); break;
    case Api::kOpenAiResponses: ReadResponseObject(root, /*from_stream=*/false); break;
    case Api::kAnthropicMessages: ReadAnthropicMessage(root, /*from_stream=*/false); break;
    case Api::kOllamaChat:
    case Api::kOllamaGenerate:
    case Api::kOllamaEmbed: ReadOllama(root, std::nullopt); break;
  }
}

void ResponseReader::ReadEventStream(std::string_view body) {
  info_.streamed = true;
  SseReader reader(body);
  SseEvent event;
  while (reader.Next(&event)) {
    if (event.data == "[DONE]") {  // OpenAI's end of stream
      info_.complete = true;
      continue;
    }
    const json::Document doc = json::ParsePrefix(event.data);
    ReadStreamChunk(event.type, doc.root(), event.offset);
  }
}

void ResponseReader::ReadNdjson(std::string_view body) {
  info_.streamed = true;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t offset = pos;
    const size_t eol = body.find('\n', pos);
    const std::string_view line = body.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    pos = eol == std::string_view::npos ? body.size() : eol + 1;
    // The last line has no '\n' when the body was cut: read it only if it is whole.
    const json::Document doc = eol == std::string_view::npos ? json::Parse(line) : json::ParsePrefix(line);
    ReadStreamChunk("", doc.root(), offset);
  }
}

void ResponseReader::ReadStreamChunk(std::string_view event_type, Value chunk, size_t offset) {
  ReadError(chunk);
  // Anthropic and the Responses API repeat the SSE event type as "type" in the data.
  const std::string_view type = chunk.Find("type").AsString().value_or(event_type);
  switch (api_) {
    case Api::kOpenAiChat:
    case Api::kOpenAiCompletions:
    case Api::kOpenAiEmbeddings: ReadOpenAi(chunk, offset); break;
    case Api::kOpenAiResponses: ReadResponsesEvent(type, chunk, offset); break;
    case Api::kAnthropicMessages: ReadAnthropicEvent(type, chunk, offset); break;
    case Api::kOllamaChat:
    case Api::kOllamaGenerate:
    case Api::kOllamaEmbed: ReadOllama(chunk, offset); break;
  }
}

void ResponseReader::ReadErrorObject(Value error) {
  if (const auto message = error.AsString()) {  // Ollama
    info_.error_message = Bounded(*message, kMaxErrorMessageBytes);
    return;
  }
  if (error.type() != Type::kObject) return;
  const std::string_view code = StringOrEmpty(error.Find("code"));
  info_.error_type = code.empty() ? StringOrEmpty(error.Find("type")) : code;
  info_.error_message = Bounded(StringOrEmpty(error.Find("message")), kMaxErrorMessageBytes);
}

// A chat.completion, text_completion or embeddings list, or one chunk of their streams
// (choices[].delta instead of choices[].message).
void ResponseReader::ReadOpenAi(Value object, std::optional<size_t> offset) {
  AssignIfEmpty(&info_.id, object.Find("id"));
  AssignIfEmpty(&info_.model, object.Find("model"));
  const Value usage = object.Find("usage");
  Assign(&info_.input_tokens, usage.Find("prompt_tokens"));
  Assign(&info_.output_tokens, usage.Find("completion_tokens"));
  Assign(&info_.cache_read_input_tokens, usage.At({"prompt_tokens_details", "cached_tokens"}));
  Assign(&info_.reasoning_output_tokens, usage.At({"completion_tokens_details", "reasoning_tokens"}));

  for (const Value choice : object.Find("choices").children()) {
    const int64_t index = choice.Find("index").AsInt64().value_or(0);
    if (const auto reason = choice.Find("finish_reason").AsString()) SetFinishReason(index, *reason);
    const Value message = choice.Find(offset ? "delta" : "message");
    const std::string_view text = api_ == Api::kOpenAiCompletions ? StringOrEmpty(choice.Find("text"))
                                                                  : StringOrEmpty(message.Find("content"));
    const Value tool_calls = message.Find("tool_calls");
    // Reasoning text: "reasoning_content" (DeepSeek, vLLM), "reasoning" (OpenRouter, Ollama).
    const bool other_output = !StringOrEmpty(message.Find("refusal")).empty() ||
                              !StringOrEmpty(message.Find("reasoning_content")).empty() ||
                              !StringOrEmpty(message.Find("reasoning")).empty();
    if (offset && (!text.empty() || tool_calls.size() > 0 || other_output)) MarkOutput(*offset);
    if (index != 0) continue;
    AppendOutput(text);
    for (const Value call : tool_calls.children())
      AddToolCall(call.At({"function", "name"}), call.Find("id"));
  }
}

// A Responses API "response" object: a whole body, or inside response.* stream events
// (whose output the stream's deltas already gave).
void ResponseReader::ReadResponseObject(Value response, bool from_stream) {
  AssignIfEmpty(&info_.id, response.Find("id"));
  AssignIfEmpty(&info_.model, response.Find("model"));
  const Value usage = response.Find("usage");
  Assign(&info_.input_tokens, usage.Find("input_tokens"));
  Assign(&info_.output_tokens, usage.Find("output_tokens"));
  Assign(&info_.cache_read_input_tokens, usage.At({"input_tokens_details", "cached_tokens"}));
  Assign(&info_.reasoning_output_tokens, usage.At({"output_tokens_details", "reasoning_tokens"}));

  bool called_function = false;
  for (const Value item : response.Find("output").children()) {
    const std::string_view type = StringOrEmpty(item.Find("type"));
    if (type == "function_call") {
      called_function = true;
      if (!from_stream) AddToolCall(item.Find("name"), item.Find("call_id"));
    } else if (type == "message" && !from_stream) {
      for (const Value part : item.Find("content").children()) {
        if (StringOrEmpty(part.Find("type")) == "output_text") AppendOutput(StringOrEmpty(part.Find("text")));
      }
    }
  }
  const std::string_view status = StringOrEmpty(response.Find("status"));
  if (status == "completed") {
    SetFinishReason(0, called_function ? "tool_calls" : "stop");
  } else if (status == "incomplete") {
    const std::string_view reason = StringOrEmpty(response.At({"incomplete_details", "reason"}));
    SetFinishReason(0, reason.empty() ? status : reason);
  } else if (status == "failed" || status == "cancelled") {
    SetFinishReason(0, status);
  }
}

void ResponseReader::ReadResponsesEvent(std::string_view type, Value event, size_t offset) {
  if (type == "response.created" || type == "response.in_progress") {
    ReadResponseObject(event.Find("response"), /*from_stream=*/true);
  } else if (type == "response.completed" || type == "response.incomplete" || type == "response.failed") {
    ReadError(event.Find("response"));
    ReadResponseObject(event.Find("response"), /*from_stream=*/true);
    info_.complete = true;
  } else if (type == "error") {  // {"type":"error","code":…,"message":…}
    ReadErrorObject(event);
  } else if (type == "response.output_item.added") {
    const Value item = event.Find("item");
    if (StringOrEmpty(item.Find("type")) == "function_call") {
      MarkOutput(offset);
      AddToolCall(item.Find("name"), item.Find("call_id"));
    }
  } else if (type.ends_with(".delta") && !StringOrEmpty(event.Find("delta")).empty()) {
    // output_text, refusal, reasoning text and summaries, function call arguments
    MarkOutput(offset);
    if (type == "response.output_text.delta") AppendOutput(StringOrEmpty(event.Find("delta")));
  }
}

// A Messages API "message": a whole body, or in message_start (content still empty).
void ResponseReader::ReadAnthropicMessage(Value message, bool from_stream) {
  AssignIfEmpty(&info_.id, message.Find("id"));
  AssignIfEmpty(&info_.model, message.Find("model"));
  ReadAnthropicUsage(message.Find("usage"));
  if (const auto reason = message.Find("stop_reason").AsString()) SetFinishReason(0, *reason);
  if (from_stream) return;
  for (const Value block : message.Find("content").children()) {
    const std::string_view type = StringOrEmpty(block.Find("type"));
    if (type == "text") AppendOutput(StringOrEmpty(block.Find("text")));
    if (type == "tool_use") AddToolCall(block.Find("name"), block.Find("id"));
  }
}

void ResponseReader::ReadAnthropicEvent(std::string_view type, Value event, size_t offset) {
  if (type == "message_start") {
    ReadAnthropicMessage(event.Find("message"), /*from_stream=*/true);
  } else if (type == "content_block_start") {
    const Value block = event.Find("content_block");
    if (StringOrEmpty(block.Find("type")) == "tool_use") AddToolCall(block.Find("name"), block.Find("id"));
  } else if (type == "content_block_delta") {
    MarkOutput(offset);
    const Value delta = event.Find("delta");
    if (StringOrEmpty(delta.Find("type")) == "text_delta") AppendOutput(StringOrEmpty(delta.Find("text")));
  } else if (type == "message_delta") {
    if (const auto reason = event.At({"delta", "stop_reason"}).AsString()) SetFinishReason(0, *reason);
    ReadAnthropicUsage(event.Find("usage"));  // output_tokens, and cumulative input counts
  } else if (type == "message_stop") {
    info_.complete = true;
  }
  // "error" events were read by ReadStreamChunk; "ping" and content_block_stop carry nothing.
}

// Anthropic's input count is a sum of three fields (see llm.h), so a usage object the
// body was cut inside is not read at all: a partial sum would be wrong, not just missing.
void ResponseReader::ReadAnthropicUsage(Value usage) {
  if (usage.truncated()) return;
  Assign(&anthropic_input_tokens_, usage.Find("input_tokens"));
  Assign(&info_.output_tokens, usage.Find("output_tokens"));
  Assign(&info_.cache_read_input_tokens, usage.Find("cache_read_input_tokens"));
  Assign(&info_.cache_creation_input_tokens, usage.Find("cache_creation_input_tokens"));
}

// One /api/chat, /api/generate or /api/embed object: a whole body or one NDJSON line.
void ResponseReader::ReadOllama(Value object, std::optional<size_t> offset) {
  AssignIfEmpty(&info_.model, object.Find("model"));
  const Value message = object.Find("message");
  const bool generate = api_ == Api::kOllamaGenerate;
  const std::string_view text = StringOrEmpty(generate ? object.Find("response") : message.Find("content"));
  const std::string_view thinking =
      StringOrEmpty(generate ? object.Find("thinking") : message.Find("thinking"));
  const Value tool_calls = message.Find("tool_calls");
  if (offset && (!text.empty() || !thinking.empty() || tool_calls.size() > 0)) MarkOutput(*offset);
  AppendOutput(text);
  for (const Value call : tool_calls.children()) AddToolCall(call.At({"function", "name"}), call.Find("id"));
  if (const auto reason = object.Find("done_reason").AsString()) SetFinishReason(0, *reason);
  if (offset && object.Find("done").AsBool() == true) info_.complete = true;
  Assign(&info_.input_tokens, object.Find("prompt_eval_count"));
  Assign(&info_.output_tokens, object.Find("eval_count"));
}

void ResponseReader::SetFinishReason(int64_t choice, std::string_view reason) {
  for (auto& [index, r] : finish_reasons_) {
    if (index == choice) {
      r.assign(reason);
      return;
    }
  }
  if (finish_reasons_.size() < kMaxListItems) finish_reasons_.emplace_back(choice, reason);
}

ResponseInfo ResponseReader::Finish() && {
  std::stable_sort(finish_reasons_.begin(), finish_reasons_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [index, reason] : finish_reasons_) info_.finish_reasons.push_back(std::move(reason));
  if (anthropic_input_tokens_) {
    int64_t total = *anthropic_input_tokens_;
    bool overflow = false;
    for (const auto& cached : {info_.cache_read_input_tokens, info_.cache_creation_input_tokens}) {
      overflow |= __builtin_add_overflow(total, cached.value_or(0), &total);
    }
    if (!overflow) info_.input_tokens = total;
  }
  return std::move(info_);
}

}  // namespace

std::optional<Api> RecognizeRequest(std::string_view method, std::string_view target,
                                    const HeaderLookup& headers) {
  if (method != "POST") return std::nullopt;
  std::string_view rest = TargetPath(target);
  const std::string_view last = PopSegment(&rest);
  const std::string_view before = rest;
  const std::string_view prev = PopSegment(&rest);

  if (prev == "chat" && last == "completions") return Api::kOpenAiChat;
  if (prev == "api") {
    if (last == "chat") return Api::kOllamaChat;
    if (last == "generate") return Api::kOllamaGenerate;
    if (last == "embed" || last == "embeddings") return Api::kOllamaEmbed;
  }
  if (!IsApiRoot(before)) return std::nullopt;
  if (last == "completions") return Api::kOpenAiCompletions;
  if (last == "embeddings") return Api::kOpenAiEmbeddings;
  if (last == "responses") return Api::kOpenAiResponses;
  if (last == "messages") {
    const bool anthropic_headers =
        headers && (!headers("anthropic-version").empty() || !headers("x-api-key").empty());
    if (prev == "v1" || anthropic_headers) return Api::kAnthropicMessages;
  }
  return std::nullopt;
}

std::string_view OperationName(Api api) {
  switch (api) {
    case Api::kOpenAiChat:
    case Api::kOpenAiResponses:
    case Api::kAnthropicMessages:
    case Api::kOllamaChat: return "chat";
    case Api::kOpenAiCompletions:
    case Api::kOllamaGenerate: return "text_completion";
    case Api::kOpenAiEmbeddings:
    case Api::kOllamaEmbed: return "embeddings";
  }
  return {};  // not an Api value
}

std::string_view ProviderName(Api api, std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);  // a fully qualified name
  for (const DomainProvider& d : kDomainProviders) {
    if (InDomain(host, d.domain)) return d.provider;
  }
  if (EndsWithIgnoreCase(host, "-aiplatform.googleapis.com")) return "gcp.vertex_ai";  // regional
  if (StartsWithIgnoreCase(host, "bedrock-runtime") &&
      (InDomain(host, "amazonaws.com") || InDomain(host, "amazonaws.com.cn"))) {
    return "aws.bedrock";
  }
  if (api == Api::kAnthropicMessages) return "anthropic";
  if (IsOllama(api)) return "ollama";
  return "openai";
}

namespace {

void AddToolResult(Value id, std::vector<std::string>* out) {
  const std::string_view v = StringOrEmpty(id);
  if (v.empty() || v.size() > kMaxToolCallIdBytes || out->size() >= kMaxListItems) return;
  out->emplace_back(v);
}

// The ids of the tool results a request sends back (RequestInfo::tool_results).
void ReadToolResults(Api api, Value root, std::vector<std::string>* out) {
  switch (api) {
    case Api::kOpenAiChat:
      for (const Value m : root.Find("messages").children()) {
        if (StringOrEmpty(m.Find("role")) == "tool") AddToolResult(m.Find("tool_call_id"), out);
      }
      break;
    case Api::kAnthropicMessages:
      for (const Value m : root.Find("messages").children()) {
        for (const Value part : m.Find("content").children()) {
          if (StringOrEmpty(part.Find("type")) == "tool_result") AddToolResult(part.Find("tool_use_id"), out);
        }
      }
      break;
    case Api::kOpenAiResponses:
      for (const Value item : root.Find("input").children()) {
        if (StringOrEmpty(item.Find("type")) == "function_call_output")
          AddToolResult(item.Find("call_id"), out);
      }
      break;
    default: break;  // Ollama's tool messages carry no id; the others have no tools
  }
}

}  // namespace

RequestInfo ParseRequest(Api api, std::string_view body, bool body_truncated, bool want_content) {
  RequestInfo info;
  const json::Document doc = json::ParsePrefix(body);
  const Value root = doc.root();
  info.truncated = body_truncated || doc.status() != json::ParseStatus::kOk;
  info.model = StringOrEmpty(root.Find("model"));
  if (const auto stream = root.Find("stream").AsBool()) {
    info.stream = stream;
  } else if (!info.truncated) {
    info.stream = api == Api::kOllamaChat || api == Api::kOllamaGenerate;
  }

  const Value params = IsOllama(api) ? root.Find("options") : root;
  info.temperature = params.Find("temperature").AsDouble();
  info.top_p = params.Find("top_p").AsDouble();
  info.top_k = params.Find("top_k").AsDouble();
  info.frequency_penalty = params.Find("frequency_penalty").AsDouble();
  info.presence_penalty = params.Find("presence_penalty").AsDouble();
  info.seed = params.Find("seed").AsInt64();
  if (IsOllama(api)) {
    if (const auto n = params.Find("num_predict").AsInt64(); n && *n >= 0) info.max_tokens = n;
    AppendStrings(params.Find("stop"), &info.stop_sequences);
  } else {
    for (const std::string_view name : {"max_completion_tokens", "max_tokens", "max_output_tokens"}) {
      info.max_tokens = root.Find(name).AsInt64();
      if (info.max_tokens) break;
    }
    info.choice_count = root.Find("n").AsInt64();
    AppendStrings(root.Find(api == Api::kAnthropicMessages ? "stop_sequences" : "stop"),
                  &info.stop_sequences);
    if (const auto format = root.Find("encoding_format").AsString())
      info.encoding_formats.emplace_back(*format);
  }
  ReadToolResults(api, root, &info.tool_results);
  if (want_content) ContentReader(&info).Read(api, root);
  return info;
}

ResponseInfo ParseResponse(Api api, int status_code, std::string_view content_type, std::string_view body,
                           bool body_truncated, bool want_content) {
  ResponseReader reader(api, want_content);
  if (status_code >= 400) {
    reader.ReadErrorBody(body, body_truncated);
  } else if (IsMediaType(content_type, "text/event-stream")) {
    reader.ReadEventStream(body);
  } else if (IsMediaType(content_type, "application/x-ndjson")) {
    reader.ReadNdjson(body);
  } else {
    reader.ReadJsonBody(body, body_truncated);
  }
  return std::move(reader).Finish();
}

}  // namespace kspan::genai
