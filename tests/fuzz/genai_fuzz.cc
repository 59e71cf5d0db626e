// libFuzzer harness for the LLM body readers (userspace/genai): the same bytes go through
// the JSON reader, the SSE splitter, and an API's request and response parsers. Seeds are
// API bodies, so mutations stay close to real traffic.
//
// Which API and which response reading (status, content type) an input gets: in a
// campaign, one of each, picked by a hash of the input, so every input costs one real
// parse rather than forty (the forty made the harness run at ~700 inputs/s) and
// libFuzzer's coverage feedback is per reading; mutations of a seed reach every API and
// reading over a campaign. The corpus replay (KSPAN_FUZZ_REPLAY, tests/CMakeLists.txt) runs
// every input through every API and reading, as before.
//
// Checks, beyond "no crash, no out-of-bounds read" (the replay build runs under ASan when
// built as a fuzzer):
//   json  a prefix read that completed is what a whole read of those bytes gives, and a
//         text Parse() accepts reads the same as a prefix once a space ends it;
//   sse   events start inside the body, in order;
//   llm   every returned string and list stays within the bounds llm.h promises, and a
//         first-output offset lies inside the body.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>

#include "fuzz/fuzz_support.h"
#include "genai/json.h"
#include "genai/llm.h"
#include "genai/sse.h"

namespace kspan::fuzz {
const char* const kHarness = "genai_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;

using kspan::genai::Api;
namespace json = kspan::genai::json;

// A canonical rendering, to compare two trees (depth is bounded by json::Limits).
std::string Render(json::Value v) {
  switch (v.type()) {
    case json::Type::kMissing: return "-";
    case json::Type::kNull: return "n";
    case json::Type::kBool: return *v.AsBool() ? "t" : "f";
    case json::Type::kNumber: return "#" + std::string(v.raw_number());
    case json::Type::kString: return "\"" + std::string(*v.AsString()) + "\"";
    case json::Type::kArray:
    case json::Type::kObject: {
      std::string out = v.type() == json::Type::kObject ? "{" : "[";
      for (const json::Value c : v.children()) out += std::string(c.key()) + ":" + Render(c) + ",";
      return out + (v.truncated() ? "~" : "") + "}";
    }
  }
  return "?";
}

void FuzzJson(std::string_view text) {
  const json::Document prefix = json::ParsePrefix(text);
  Check(prefix.consumed() <= text.size(), "json: consumed past the text");
  if (prefix.status() == json::ParseStatus::kOk) {
    const json::Document again = json::Parse(text.substr(0, prefix.consumed()));
    Check(again.status() == json::ParseStatus::kOk, "json: a completed prefix does not parse whole");
    Check(Render(again.root()) == Render(prefix.root()), "json: prefix and whole reads differ");
  }
  const json::Document whole = json::Parse(text);
  if (whole.status() == json::ParseStatus::kOk) {
    const json::Document spaced = json::ParsePrefix(std::string(text) + " ");
    Check(spaced.status() == json::ParseStatus::kOk, "json: a whole text fails as a prefix");
    Check(Render(spaced.root()) == Render(whole.root()), "json: whole and prefix reads differ");
  } else {
    Check(!whole.root(), "json: a failed Parse() kept a root");
  }
}

void FuzzSse(std::string_view body) {
  kspan::genai::SseReader reader(body);
  kspan::genai::SseEvent event;
  size_t next_start = 0;
  while (reader.Next(&event)) {
    Check(event.offset >= next_start && event.offset < body.size(), "sse: event offset out of order");
    Check(event.data.size() <= body.size(), "sse: data longer than the body");
    next_start = event.offset + 1;
  }
}

void CheckResponse(const kspan::genai::ResponseInfo& r, std::string_view body) {
  Check(r.error_message.size() <= kspan::genai::kMaxErrorMessageBytes, "llm: error message too long");
  Check(r.output_text.size() <= kspan::genai::kMaxOutputTextBytes, "llm: output text too long");
  Check(r.finish_reasons.size() <= kspan::genai::kMaxListItems, "llm: too many finish reasons");
  Check(r.output_tool_calls.size() <= kspan::genai::kMaxListItems, "llm: too many tool calls");
  Check(!r.first_chunk_offset || *r.first_chunk_offset < body.size(), "llm: first chunk outside the body");
}

void CheckRequest(const kspan::genai::RequestInfo& r) {
  size_t text = r.system_instructions.size();
  for (const auto& m : r.input_messages) text += m.text.size();
  Check(text <= kspan::genai::kMaxInputContentBytes, "llm: input content too long");
  Check(r.input_messages.size() <= kspan::genai::kMaxListItems, "llm: too many messages");
  Check(r.stop_sequences.size() <= kspan::genai::kMaxListItems, "llm: too many stop sequences");
  Check(r.tool_results.size() <= kspan::genai::kMaxListItems, "llm: too many tool results");
  for (const auto& id : r.tool_results) {
    Check(!id.empty() && id.size() <= kspan::genai::kMaxToolCallIdBytes, "llm: tool result id out of bounds");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  // An exactly-sized copy, so ASan sees any read past the end.
  const std::string copy(reinterpret_cast<const char*>(data), size);
  const std::string_view body = copy;

  FuzzJson(body);
  FuzzSse(body);
  constexpr Api kApis[] = {Api::kOpenAiChat,        Api::kOpenAiResponses,   Api::kOpenAiEmbeddings,
                           Api::kOpenAiCompletions, Api::kAnthropicMessages, Api::kOllamaChat,
                           Api::kOllamaGenerate,    Api::kOllamaEmbed};
  struct Reading {
    int status;
    std::string_view content_type;
  };
  constexpr Reading kReadings[] = {{200, "application/json"},
                                   {200, "text/event-stream"},
                                   {200, "application/x-ndjson"},
                                   {500, "application/json"}};
  constexpr size_t kApiCount = std::size(kApis), kReadingCount = std::size(kReadings);
#ifdef KSPAN_FUZZ_REPLAY
  for (size_t pick = 0; pick < kApiCount * kReadingCount; ++pick) {
#else
  {
    const uint64_t pick = kspan::fuzz::Fnv1a(body) % (kApiCount * kReadingCount);
#endif
    const Api api = kApis[pick % kApiCount];
    const Reading& reading = kReadings[pick / kApiCount];
    if (reading.status == 200 && reading.content_type == kReadings[0].content_type) {
      CheckRequest(kspan::genai::ParseRequest(api, body, false, true));
    }
    CheckResponse(kspan::genai::ParseResponse(api, reading.status, reading.content_type, body, false, true),
                  body);
  }
  return 0;
}
