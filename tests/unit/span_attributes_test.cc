// Enrichment and redaction (userspace/processors/span_attributes.h): attributes from the
// configuration, RE2 patterns over every string a span exports, and the built-in secrets
// rule over the text read off the wire only.
#include "processors/span_attributes.h"

#include <gtest/gtest.h>

namespace kspan::processors {
namespace {

const std::string& Str(const model::Span& s, std::string_view key) {
  static const std::string kNone = "(none)";
  const std::string* v = s.FindString(key);
  return v ? *v : kNone;
}

model::Span HttpSpan() {
  model::Span s;
  s.name = "GET /users/{id}";
  s.attributes = {
      {"url.path", std::string("/users/alice@example.com/reset")},
      {"url.full", std::string("http://api/v1?token=REDACTED&x=sk-abcdefghijklmnopqrstu")},
      {"http.request.header.authorization", model::StringArray{"Bearer abcdefghijklmnopqrstuvwxyz0123"}},
      {"http.route", std::string("/users/{id}")},
      {"server.port", int64_t{8080}},
      {"app.note", std::string("sk-abcdefghijklmnopqrstu in a field no wire parser fills")}};
  s.events.push_back(
      {"exception", 1, {{"exception.message", std::string("auth failed for password=hunter2")}}});
  s.status_message = "card 4111111111111111 declined";
  return s;
}

TEST(SpanAttributes, AddsConfiguredAttributesWithoutOverwriting) {
  metrics::Registry m;
  SpanAttributes p({.add = {{"deployment.environment.name", "prod"}, {"http.route", "/other"}}}, &m);
  model::Span s = HttpSpan();
  ASSERT_TRUE(p.OnExport(s));
  EXPECT_EQ(Str(s, "deployment.environment.name"), "prod");
  EXPECT_EQ(Str(s, "http.route"), "/users/{id}") << "the span's own value wins";
}

TEST(SpanAttributes, TheSecretsRuleCoversWireTextOnly) {
  metrics::Registry m;
  SpanAttributes p({}, &m);  // defaults: secrets on, no patterns
  model::Span s = HttpSpan();
  ASSERT_TRUE(p.OnExport(s));
  EXPECT_EQ(Str(s, "url.full"), "http://api/v1?token=REDACTED&x=REDACTED");
  const auto* auth = std::get_if<model::StringArray>(s.Find("http.request.header.authorization"));
  ASSERT_TRUE(auth);
  EXPECT_EQ((*auth)[0], "Bearer REDACTED");
  EXPECT_EQ(std::get<std::string>(s.events[0].attributes[0].value), "auth failed for password=REDACTED");
  EXPECT_EQ(Str(s, "url.path"), "/users/alice@example.com/reset") << "no credential in it";
  EXPECT_EQ(Str(s, "app.note"), "sk-abcdefghijklmnopqrstu in a field no wire parser fills")
      << "not text kspan read off the wire";
  EXPECT_EQ(m.Sum("kspan_redactions_total"), 3u);
}

TEST(SpanAttributes, PatternsReplaceEveryMatchEverywhere) {
  metrics::Registry m;
  SpanAttributes p(
      {.redact = {"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+", "\\b[0-9]{13,16}\\b"}, .redact_secrets = false}, &m);
  model::Span s = HttpSpan();
  s.name = "notify bob@example.org and carol@example.org";
  ASSERT_TRUE(p.OnExport(s));
  EXPECT_EQ(s.name, "notify REDACTED and REDACTED");
  EXPECT_EQ(Str(s, "url.path"), "/users/REDACTED/reset");
  EXPECT_EQ(s.status_message, "card REDACTED declined");
  EXPECT_EQ(Str(s, "url.full"), "http://api/v1?token=REDACTED&x=sk-abcdefghijklmnopqrstu")
      << "secrets rule off";
  EXPECT_EQ(m.Sum("kspan_redactions_total"), 4u);
  EXPECT_EQ(m.GetCounter("kspan_redactions_total", {{"rule", "\\b[0-9]{13,16}\\b"}})->Value(), 1u);
}

TEST(SpanAttributes, RefusesBadPatternsAndSpecs) {
  EXPECT_FALSE(CheckRedactPattern("--redact", "(unclosed").ok());
  EXPECT_FALSE(CheckRedactPattern("--redact", "").ok());
  Status empty = CheckRedactPattern("--redact", "a*");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.message().find("empty string"), std::string::npos) << empty.message();
  EXPECT_FALSE(CheckRedactPattern("--redact", "(a)\\1").ok()) << "RE2 has no back-references";
  EXPECT_FALSE(CheckRedactPattern("--redact", "a\tb").ok()) << "control characters are written as escapes";
  EXPECT_TRUE(CheckRedactPattern("--redact", "a\\tb").ok());
  EXPECT_TRUE(CheckRedactPattern("--redact", "secret-[a-z]+").ok());
  EXPECT_FALSE(ParseSpanAttribute("--span-attribute", "novalue").ok());
  EXPECT_FALSE(ParseSpanAttribute("--span-attribute", "=v").ok());
  auto kv = ParseSpanAttribute("--span-attribute", "team=a=b");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "team");
  EXPECT_EQ(kv->second, "a=b");
}

}  // namespace
}  // namespace kspan::processors
