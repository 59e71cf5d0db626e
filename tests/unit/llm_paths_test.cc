// The kernel's LLM hint (kspan/bpf/llm_paths.h, run by bpf/llm.bpf.h) must mark every
// request that user space takes for an LLM call (genai::RecognizeRequest): a request it
// misses is captured at the default size, and the model, usage and finish reasons past
// those bytes are lost. The kernel may mark more (user space decides), never less.
//
// User space is the oracle: every request target built from a vocabulary of path
// segments, API roots and endings (trailing '/', query, fragment, absolute form) that it
// recognises must be marked by the kernel's own code, compiled here from the shared header.
#include "kspan/bpf/llm_paths.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "genai/llm.h"

namespace kspan {
namespace {

// The kernel's decision for a request whose first bytes are `request`, as bpf/llm.bpf.h
// ks_llm_request makes it (a loop where the kernel has bpf_loop).
bool KernelMarks(std::string_view request) {
  std::array<__u8, KSPAN_MAX_CAPTURE> d{};  // the scratch slot
  const size_t captured = std::min(request.size(), d.size());
  std::memcpy(d.data(), request.data(), captured);
  if (!kspan_llm_is_post(d.data(), static_cast<__u32>(captured))) return false;
  kspan_llm_path_scan scan{static_cast<__u32>(captured), 0, 0};
  for (__u32 i = 0; i < KSPAN_LLM_PATH_SCAN; ++i) {
    if (kspan_llm_path_step(&scan, d.data(), i)) break;
  }
  if (!scan.found || scan.end >= KSPAN_LLM_PATH_SCAN + 5) return false;
  return kspan_llm_path_matches(d.data(), scan.end) != 0;
}

std::string RequestHead(std::string_view target) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\n\r\n";
}

// Targets: 1 to 4 segments from the vocabulary, each with every ending.
std::vector<std::string> CandidateTargets() {
  const std::vector<std::string> segments = {
      "v1",       "v1beta",      "v4",        "openai",       "deployments", "gpt-4o",
      "chat",     "completions", "responses", "embeddings",   "messages",    "api",
      "generate", "embed",       "ollama",    "count_tokens", "surveys",     "7"};
  const std::vector<std::string> endings = {"", "/", "//", "?api-version=2024-10-21", "/?a=b", "#frag"};
  std::vector<std::string> paths = {""};
  std::vector<std::string> out;
  for (int depth = 1; depth <= 4; ++depth) {
    std::vector<std::string> longer;
    for (const std::string& p : paths) {
      for (const std::string& s : segments) longer.push_back(p + "/" + s);
    }
    paths = std::move(longer);
    for (const std::string& p : paths) {
      for (const std::string& e : endings) out.push_back(p + e);
    }
  }
  return out;
}

TEST(LlmPathsTest, KernelMarksEveryRequestUserSpaceRecognises) {
  // With the headers that make an Anthropic call of any root, so user space says yes as
  // often as it can.
  const genai::HeaderLookup anthropic = [](std::string_view name) -> std::string_view {
    return name == "anthropic-version" ? "2023-06-01" : "";
  };
  const genai::HeaderLookup none = [](std::string_view) -> std::string_view { return ""; };
  std::set<genai::Api> seen;
  size_t recognised = 0;
  for (const std::string& path : CandidateTargets()) {
    for (const std::string& target : {path, "http://api.example.com" + path}) {
      for (const genai::HeaderLookup* headers : {&none, &anthropic}) {
        const std::optional<genai::Api> api = genai::RecognizeRequest("POST", target, *headers);
        if (!api) continue;
        ++recognised;
        seen.insert(*api);
        ASSERT_LT(target.size(), KSPAN_LLM_PATH_SCAN) << "a candidate past the kernel's scan: shorten it";
        EXPECT_TRUE(KernelMarks(RequestHead(target)))
            << "user space recognises POST " << target << " as an LLM call, the kernel does not mark it";
      }
    }
  }
  // Not vacuous: every API, and many ways of writing each.
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_GT(recognised, 1000u);
}

TEST(LlmPathsTest, KernelMarksOnlyPostRequestLines) {
  EXPECT_TRUE(KernelMarks(RequestHead("/v1/chat/completions")));
  EXPECT_TRUE(KernelMarks(RequestHead("/v1/chat/completions/")));
  EXPECT_TRUE(KernelMarks(RequestHead("/api/embeddings?x=1")));
  EXPECT_FALSE(KernelMarks("GET /v1/chat/completions HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(KernelMarks(RequestHead("/v1/models")));
  EXPECT_FALSE(KernelMarks(RequestHead("/completions.json")));
  EXPECT_FALSE(KernelMarks("POST /v1/chat/completions"));  // the path's end not seen yet
  EXPECT_FALSE(KernelMarks(RequestHead("/")));
}

// The documented limit: a path whose end lies past the scan is not marked.
TEST(LlmPathsTest, PathEndPastTheScanIsNotMarked) {
  const std::string inside = "/" + std::string(KSPAN_LLM_PATH_SCAN - 2 - 12, 'a') + "/completions";
  ASSERT_EQ(inside.size(), KSPAN_LLM_PATH_SCAN - 1u);
  EXPECT_TRUE(KernelMarks(RequestHead(inside)));
  const std::string past = "/" + std::string(KSPAN_LLM_PATH_SCAN, 'a') + "/completions";
  EXPECT_FALSE(KernelMarks(RequestHead(past)));
}

}  // namespace
}  // namespace kspan
