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

// What leaves with the span beyond its attributes: the resource (one redacted copy per
// resource, the original untouched) and, through RedactLabel, the span metrics' labels.
TEST(SpanAttributes, ResourcesAndMetricLabelsAreRedactedToo) {
  metrics::Registry m;
  SpanAttributes p({.redact = {"cust-[0-9]{6}"}}, &m);
  auto resource = std::make_shared<model::Resource>();
  resource->attributes = {
      {"service.name", std::string("shop")},
      {"process.command_line", std::string("client --user cust-123456 --key sk-abcdefghijklmnopqrstu")},
      {"app.owner", std::string("cust-654321")}};
  const std::shared_ptr<const model::Resource> original = resource;
  model::Span a = HttpSpan(), b = HttpSpan();
  a.resource = b.resource = original;
  ASSERT_TRUE(p.OnExport(a));
  ASSERT_TRUE(p.OnExport(b));
  ASSERT_NE(a.resource, original);
  EXPECT_EQ(a.resource, b.resource) << "one copy per resource";
  EXPECT_EQ(std::get<std::string>(a.resource->attributes[1].value), "client --user REDACTED --key REDACTED");
  EXPECT_EQ(std::get<std::string>(a.resource->attributes[2].value), "REDACTED");
  EXPECT_EQ(std::get<std::string>(a.resource->attributes[0].value), "shop");
  EXPECT_EQ(std::get<std::string>(original->attributes[2].value), "cust-654321") << "the original stays";

  std::string label = "/orders/cust-111111/items", plain = "/items/{id}";
  p.RedactLabel(&label);
  p.RedactLabel(&plain);
  EXPECT_EQ(label, "/orders/REDACTED/items");
  EXPECT_EQ(plain, "/items/{id}");
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
