#include "processors/span_attributes.h"

#include <re2/re2.h>

#include "common/redact.h"

namespace kspan::processors {
namespace {

// Attributes whose text comes off the wire as the peer sent it: where a credential can
// hide that no parser put there on purpose.
[[gnu::always_inline]] inline bool WireText(std::string_view key) {
  // By first byte, so the other keys (most of a span's) cost one comparison.
  switch (key.empty() ? '\0' : key[0]) {
    case 'u':
      return key == "url.full" || key == "url.path" || key == "url.query" || key == "user_agent.original";
    case 'd': return key == "db.query.text";
    case 'e': return key == "exception.message";
    case 'h': return key.starts_with("http.request.header.") || key.starts_with("http.response.header.");
    default: return false;
  }
}

}  // namespace

Result<std::pair<std::string, std::string>> ParseSpanAttribute(std::string_view where,
                                                               std::string_view spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InvalidArgument(std::string(where) + ": '" + std::string(spec) +
                           "' is not KEY=VALUE; expected e.g. deployment.environment.name=prod");
  }
  if (eq > 256) return InvalidArgument(std::string(where) + ": an attribute key is at most 256 bytes");
  return std::pair<std::string, std::string>(spec.substr(0, eq), spec.substr(eq + 1));
}

Status CheckRedactPattern(std::string_view where, std::string_view pattern) {
  if (pattern.empty())
    return InvalidArgument(std::string(where) + ": an empty pattern would match everywhere");
  for (const char c : pattern) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return InvalidArgument(std::string(where) +
                             ": a control character in a pattern; write it as an escape (\\x01, \\n)");
    }
  }
  RE2::Options o;
  o.set_log_errors(false);
  RE2 re(pattern, o);
  if (!re.ok()) {
    return InvalidArgument(std::string(where) + ": '" + std::string(pattern) +
                           "' is not an RE2 pattern: " + re.error());
  }
  if (RE2::FullMatch("", re)) {
    return InvalidArgument(std::string(where) + ": '" + std::string(pattern) +
                           "' matches the empty string, so it would match between every two characters");
  }
  return Status::Ok();
}

SpanAttributes::SpanAttributes(const AttributeRules& rules, metrics::Registry* m)
    : add_(rules.add), secrets_(rules.redact_secrets) {
  secrets_hits_ = m->GetCounter("kspan_redactions_total", {{"rule", "secrets"}});
  RE2::Options o;
  o.set_log_errors(false);
  for (const std::string& p : rules.redact) {
    auto re = std::make_unique<RE2>(p, o);
    if (!re->ok() || RE2::FullMatch("", *re)) continue;  // settings refused it (CheckRedactPattern)
    patterns_.push_back({std::move(re), m->GetCounter("kspan_redactions_total", {{"rule", p}})});
  }
}

SpanAttributes::~SpanAttributes() = default;

void SpanAttributes::Redact(std::string* s) {
  for (Pattern& p : patterns_) {
    if (const int n = RE2::GlobalReplace(s, *p.re, kRedacted); n > 0) p.hits->Add(static_cast<uint64_t>(n));
  }
}

void SpanAttributes::RedactValue(std::string_view key, model::AttributeValue* v) {
  const bool wire = secrets_ && WireText(key);
  if (!wire && patterns_.empty()) return;  // no rule applies to it
  auto one = [&](std::string* s) {
    if (wire && RedactSecretsInPlace(s)) secrets_hits_->Add();
    Redact(s);
  };
  if (auto* s = std::get_if<std::string>(v)) {
    one(s);
  } else if (auto* a = std::get_if<model::StringArray>(v)) {
    for (std::string& s : *a) one(&s);
  }
}

void SpanAttributes::RedactLabel(std::string* value) {
  if (secrets_ && RedactSecretsInPlace(value)) secrets_hits_->Add();
  Redact(value);
}

const std::shared_ptr<const model::Resource>& SpanAttributes::RedactedResource(
    const std::shared_ptr<const model::Resource>& r) {
  return redacted_.Get(
      r, [this](const std::shared_ptr<const model::Resource>& res) { return RedactResource(res); });
}

std::shared_ptr<const model::Resource> SpanAttributes::RedactResource(
    const std::shared_ptr<const model::Resource>& r) {
  if (auto it = resources_.find(r.get()); it != resources_.end()) return it->second.second;
  if (resources_.size() >= 4096) resources_.clear();
  auto copy = std::make_shared<model::Resource>(*r);
  bool changed = false;
  for (model::Attribute& a : copy->attributes) {
    auto* s = std::get_if<std::string>(&a.value);
    if (!s) continue;
    const std::string before = *s;
    if (secrets_ && a.key == "process.command_line" && RedactSecretsInPlace(s)) secrets_hits_->Add();
    Redact(s);
    changed |= *s != before;
  }
  std::shared_ptr<const model::Resource> out = changed ? std::shared_ptr<const model::Resource>(copy) : r;
  resources_.emplace(r.get(), std::make_pair(r, out));
  return out;
}

bool SpanAttributes::OnExport(model::Span& span) noexcept {
  for (const auto& [key, value] : add_) {
    if (!span.Find(key)) span.attributes.push_back({key, value});
  }
  if (!secrets_ && patterns_.empty()) return true;
  if (span.resource) {
    if (const auto& redacted = RedactedResource(span.resource); redacted != span.resource)
      span.resource = redacted;
  }
  if (secrets_ && !span.status_message.empty() && RedactSecretsInPlace(&span.status_message))
    secrets_hits_->Add();
  if (!patterns_.empty()) {
    Redact(&span.name);
    Redact(&span.status_message);
  }
  for (model::Attribute& a : span.attributes) {
    // Without patterns only the secrets rule is on: most keys are not wire text.
    if (patterns_.empty() && !WireText(a.key)) continue;
    RedactValue(a.key, &a.value);
  }
  for (model::SpanEvent& e : span.events) {
    for (model::Attribute& a : e.attributes) RedactValue(a.key, &a.value);
  }
  for (model::SpanLink& l : span.links) {
    for (model::Attribute& a : l.attributes) RedactValue(a.key, &a.value);
  }
  return true;
}

}  // namespace kspan::processors
