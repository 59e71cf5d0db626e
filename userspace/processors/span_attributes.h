// Enrichment and redaction on the way out: attributes from the configuration added to
// every span, and rules that replace what they match with "REDACTED" before any output
// (exporters, the trace store) sees the span.
//
//   setting                          does
//   --span-attribute KEY=VALUE       adds KEY (a string) to every span that has no KEY
//   --redact REGEX                   every match of REGEX (RE2 syntax: linear time, no
//                                    back-references) in the span's name, status message
//                                    and string attribute values (of the span, its events
//                                    and links; each element of a string array) becomes
//                                    REDACTED
//   --redact-secrets BOOL (true)     the built-in "secrets" rule: common/redact.h's
//                                    credential tokens (vendor API keys, Bearer/Basic
//                                    credentials, JWTs, password=... pairs) in the text
//                                    kspan reads off the wire: url.full, url.path,
//                                    url.query, db.query.text, user_agent.original,
//                                    http.{request,response}.header.*, and the status
//                                    message and exception.message
//
// What kspan already does without a rule: URL query values are REDACTED when spans are
// built (correlator/url.h), database queries are sanitized (literals become ?), LLM
// content is exported only on request and then through common/redact.h, and the command
// line's secrets are hidden (process/process_table.h).
//
// Runs after sampling, so only exported spans pay. Counted per rule:
// kspan_redactions_total{rule="secrets"|"<pattern>"} (values changed).
//
// Single-threaded: the pipeline thread (SpanProcessor's contract).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "processors/resource_memo.h"
#include "processors/span_processor.h"

namespace re2 {
class RE2;
}

namespace kspan::processors {

inline constexpr size_t kMaxSpanAttributes = 64;
inline constexpr size_t kMaxRedactPatterns = 64;

struct AttributeRules {
  std::vector<std::pair<std::string, std::string>> add;  // key, value
  std::vector<std::string> redact;                       // RE2 patterns
  bool redact_secrets = true;
};

// "KEY=VALUE": a non-empty key of at most 256 bytes, the value as written.
Result<std::pair<std::string, std::string>> ParseSpanAttribute(std::string_view where, std::string_view spec);
// The pattern compiles as RE2 and is not empty; else why not.
Status CheckRedactPattern(std::string_view where, std::string_view pattern);

class SpanAttributes : public SpanProcessor {
 public:
  SpanAttributes(const AttributeRules& rules, metrics::Registry* metrics);
  ~SpanAttributes() override;

  bool OnExport(model::Span& span) noexcept override;
  // The rules on a metric label value taken from traffic (span metrics run before this
  // processor, on every span): the secrets rule and the patterns, counted alike.
  void RedactLabel(std::string* value);

 private:
  // The span's resource with the rules applied to its string values (the secrets rule to
  // process.command_line, the patterns to every one), made once per resource.
  const std::shared_ptr<const model::Resource>& RedactedResource(
      const std::shared_ptr<const model::Resource>& r);
  // RedactedResource past its memo: by the map below, else made.
  std::shared_ptr<const model::Resource> RedactResource(const std::shared_ptr<const model::Resource>& r);

  struct Pattern {
    std::unique_ptr<re2::RE2> re;
    metrics::Counter* hits;
  };
  // Applies the user's patterns to one string; true when it changed.
  void Redact(std::string* s);
  void RedactValue(std::string_view key, model::AttributeValue* v);

  std::vector<std::pair<std::string, std::string>> add_;
  std::vector<Pattern> patterns_;
  bool secrets_;
  metrics::Counter* secrets_hits_;
  // Resource → its redacted copy (the original kept so its address is not reused); cleared
  // past 4096 resources.
  std::unordered_map<const model::Resource*, std::pair<std::shared_ptr<const model::Resource>,
                                                       std::shared_ptr<const model::Resource>>>
      resources_;
  // The last few found or made.
  ResourceMemo<std::shared_ptr<const model::Resource>> redacted_;
};

}  // namespace kspan::processors
