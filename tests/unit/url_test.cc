#include "correlator/url.h"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <string>
#include <string_view>

namespace kspan::correlator {
namespace {

// ---- UrlTemplate -------------------------------------------------------------------

struct TemplateCase {
  const char* name;
  const char* path;
  const char* want;
};

class UrlTemplateTest : public testing::TestWithParam<TemplateCase> {};

TEST_P(UrlTemplateTest, Template) {
  EXPECT_EQ(UrlTemplate(GetParam().path), GetParam().want);
}

// One case a line, each a braced struct: a missing comma between two cases is a compile
// error here, not two cases silently merged.
const TemplateCase kTemplateCases[] = {
    {"empty", "", "/"},
    {"root", "/", "/"},
    {"root_query", "/?a=1", "/"},
    {"static", "/api/users", "/api/users"},
    {"query_cut", "/api/users?id=7&x=1", "/api/users"},
    {"fragment_cut", "/docs/page#section-2", "/docs/page"},
    {"digits", "/users/12345", "/users/{id}"},
    {"digits_middle", "/users/42/orders/7/items", "/users/{id}/orders/{id}/items"},
    {"single_digit", "/page/1", "/page/{id}"},
    {"uuid_lower", "/u/0f8fad5b-d9cb-469f-a165-70867728950e", "/u/{id}"},
    {"uuid_upper", "/u/0F8FAD5B-D9CB-469F-A165-70867728950E/x", "/u/{id}/x"},
    {"uuid_misplaced_dash_is_token", "/u/0f8fad5bd-9cb-469f-a165-70867728950e", "/u/{id}"},
    {"hex16", "/blobs/0123456789abcdef", "/blobs/{id}"},
    {"hex15_kept", "/blobs/0123456789abcde", "/blobs/0123456789abcde"},
    {"hex_sha256", "/b/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "/b/{id}"},
    {"mongo_objectid", "/items/507f1f77bcf86cd799439011", "/items/{id}"},
    {"base64url_token", "/s/dGhpcyBpcyBhIHRva2VuMTIz", "/s/{id}"},
    {"ulid", "/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/runs/{id}"},
    {"token20", "/s/abcdefghijklmnopqr12", "/s/{id}"},
    {"token19_kept", "/s/abcdefghijklmnopq12", "/s/abcdefghijklmnopq12"},
    {"long_word_no_digit_kept", "/docs/internationalization-guide", "/docs/internationalization-guide"},
    {"version_kept", "/api/v2/users", "/api/v2/users"},
    {"date_slug", "/blog/2024-01-15-release-notes-v2", "/blog/{id}"},
    {"file_with_dot_kept", "/static/app.bundle.min.js", "/static/app.bundle.min.js"},
    {"trailing_slash", "/users/12/", "/users/{id}/"},
    {"double_slash", "/a//12", "/a//{id}"},
    {"percent_digits", "/users/%31%32%33", "/users/{id}"},
    {"percent_kept_as_sent", "/files/my%20report", "/files/my%20report"},
    {"percent_malformed", "/files/%zz12", "/files/%zz12"},
    {"percent_truncated", "/files/%4", "/files/%4"},
    {"relative_garbage", "foo/123", "foo/{id}"},
    {"only_digits_no_slash", "123", "{id}"},
};

INSTANTIATE_TEST_SUITE_P(Cases, UrlTemplateTest, testing::ValuesIn(kTemplateCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(UrlTemplateTest, CardinalityCollapses) {
  // The point of the heuristic: many concrete paths, one template.
  EXPECT_EQ(UrlTemplate("/orders/1/lines/0f8fad5b-d9cb-469f-a165-70867728950e"),
            UrlTemplate("/orders/99999/lines/7c9e6679-7425-40de-944b-e07fc1f90ae7"));
}

TEST(UrlTemplateTest, AppendsToWhatIsThere) {
  std::string out = "GET ";
  EXPECT_EQ(&AppendUrlTemplate(&out, "/users/12/x?q=1"), &out);
  EXPECT_EQ(out, "GET /users/{id}/x");
  out = "x";
  AppendUrlTemplate(&out, "");
  EXPECT_EQ(out, "x/");
}

// The template by its definition (url.h), segment by segment through LooksLikeId on the
// percent-decoded segment: UrlTemplate classifies in one pass and must agree on any path.
std::string ReferenceTemplate(std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  if (path.empty() || path == "/") return "/";
  const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view seg = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    std::string decoded;
    for (size_t i = 0; i < seg.size(); ++i) {
      if (seg[i] == '%' && i + 2 < seg.size() && hex(seg[i + 1]) && hex(seg[i + 2])) {
        decoded += static_cast<char>(std::stoi(std::string(seg.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        decoded += seg[i];
      }
    }
    out += LooksLikeId(decoded) ? std::string_view("{id}") : seg;
    if (slash == std::string_view::npos) return out;
    out += '/';
    start = slash + 1;
  }
}

TEST(UrlTemplateTest, AgreesWithTheDefinitionOnRandomPaths) {
  // Bytes that matter to the classes (digits, hex, token bytes, '%' escapes, separators)
  // and some that do not; segment lengths around the 16/20/36-byte thresholds.
  const std::string_view alphabet = "/0123456789abcdefABCDEFxyzXYZ-_+=%.~?#";
  std::mt19937 rng(17);
  for (int n = 0; n < 20000; ++n) {
    std::string path = n % 2 ? "/" : "";
    const size_t len = rng() % 48;
    for (size_t i = 0; i < len; ++i) {
      if (rng() % 8 == 0) {  // a run of one class, to reach the long-segment cases
        const std::string_view run = rng() % 2 ? "0123456789" : "abcdef0123456789";
        for (size_t k = rng() % 24; k > 0; --k) path += run[rng() % run.size()];
      } else {
        path += alphabet[rng() % alphabet.size()];
      }
    }
    ASSERT_EQ(UrlTemplate(path), ReferenceTemplate(path)) << path;
  }
  // A UUID, and one with the dashes moved, classified in a longer path.
  const std::string uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
  for (const std::string& p : {"/a/" + uuid + "/b", "/a/" + uuid.substr(1) + "x/b", "/" + uuid}) {
    EXPECT_EQ(UrlTemplate(p), ReferenceTemplate(p)) << p;
  }
}

// ---- RedactQuery -------------------------------------------------------------------

struct RedactCase {
  const char* name;
  const char* query;
  const char* want;
};

class RedactQueryTest : public testing::TestWithParam<RedactCase> {};

TEST_P(RedactQueryTest, Redact) {
  EXPECT_EQ(RedactQuery(GetParam().query), GetParam().want);
}

const RedactCase kRedactCases[] = {
    {"empty", "", ""},
    {"two_pairs", "a=1&b=2", "a=REDACTED&b=REDACTED"},
    {"one_pair", "token=s3cr3t", "token=REDACTED"},
    {"bare_key_kept", "debug", "debug"},
    {"empty_value_kept", "a=&b=2", "a=&b=REDACTED"},
    {"value_with_equals", "sig=abc==", "sig=REDACTED"},
    {"empty_parts_kept", "a=1&&b=2&", "a=REDACTED&&b=REDACTED&"},
    {"encoded_key_kept", "na%20me=x", "na%20me=REDACTED"},
    {"semicolon_not_separator", "a=1;b=2", "a=REDACTED"},
};

INSTANTIATE_TEST_SUITE_P(Cases, RedactQueryTest, testing::ValuesIn(kRedactCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- ParseHostPort -----------------------------------------------------------------

struct HostCase {
  const char* name;
  const char* value;
  bool ok;
  const char* host;
  int port;  // -1: no port
};

class ParseHostPortTest : public testing::TestWithParam<HostCase> {};

TEST_P(ParseHostPortTest, Parse) {
  const HostCase& c = GetParam();
  const auto hp = ParseHostPort(c.value);
  ASSERT_EQ(hp.has_value(), c.ok);
  if (!c.ok) return;
  EXPECT_EQ(hp->host, c.host);
  EXPECT_EQ(hp->has_port, c.port >= 0);
  EXPECT_EQ(hp->port, c.port >= 0 ? c.port : 0);
}

const HostCase kHostCases[] = {
    {"name", "example.com", true, "example.com", -1},
    {"name_port", "example.com:8080", true, "example.com", 8080},
    {"ipv4", "127.0.0.1", true, "127.0.0.1", -1},
    {"ipv4_port", "127.0.0.1:80", true, "127.0.0.1", 80},
    {"ipv6", "[::1]", true, "::1", -1},
    {"ipv6_port", "[2001:db8::17]:4711", true, "2001:db8::17", 4711},
    {"ipv6_bare", "2001:db8::17", true, "2001:db8::17", -1},
    {"whitespace_trimmed", "  example.com:81 \t", true, "example.com", 81},
    {"empty_port", "example.com:", true, "example.com", -1},
    {"max_port", "h:65535", true, "h", 65535},
    {"empty", "", false, "", -1},
    {"only_space", "   ", false, "", -1},
    {"port_zero", "h:0", false, "", -1},
    {"port_too_big", "h:65536", false, "", -1},
    {"port_too_long", "h:000080", false, "", -1},
    {"port_not_digits", "h:8o", false, "", -1},
    {"no_host", ":80", false, "", -1},
    {"unclosed_bracket", "[::1:80", false, "", -1},
    {"empty_brackets", "[]:80", false, "", -1},
    {"junk_after_bracket", "[::1]x", false, "", -1},
    {"inner_space", "exa mple.com", false, "", -1},
    {"slash", "example.com/x", false, "", -1},
    {"userinfo", "user@example.com", false, "", -1},
    {"control_byte", "exa\x01mple", false, "", -1},
};

INSTANTIATE_TEST_SUITE_P(Cases, ParseHostPortTest, testing::ValuesIn(kHostCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(AppendUrlHostTest, BracketsIpv6Only) {
  std::string out;
  AppendUrlHost(&out, "::1");
  out += '|';
  AppendUrlHost(&out, "10.0.0.1");
  out += '|';
  AppendUrlHost(&out, "example.com");
  EXPECT_EQ(out, "[::1]|10.0.0.1|example.com");
}

// ---- SplitTarget -------------------------------------------------------------------

struct TargetCase {
  const char* name;
  const char* target;
  TargetForm form;
  const char* scheme;
  const char* userinfo;
  const char* authority;
  const char* path;
  const char* query;
  bool has_query;
};

class SplitTargetTest : public testing::TestWithParam<TargetCase> {};

TEST_P(SplitTargetTest, Split) {
  const TargetCase& c = GetParam();
  const RequestTarget t = SplitTarget(c.target);
  EXPECT_EQ(t.form, c.form);
  EXPECT_EQ(t.scheme, c.scheme);
  EXPECT_EQ(t.userinfo, c.userinfo);
  EXPECT_EQ(t.authority, c.authority);
  EXPECT_EQ(t.path, c.path);
  EXPECT_EQ(t.query, c.query);
  EXPECT_EQ(t.has_query, c.has_query);
}

constexpr TargetForm kO = TargetForm::kOrigin;
constexpr TargetForm kA = TargetForm::kAbsolute;

const TargetCase kTargetCases[] = {
    {"origin", "/a/b", kO, "", "", "", "/a/b", "", false},
    {"origin_query", "/a?x=1&y", kO, "", "", "", "/a", "x=1&y", true},
    {"origin_empty_query", "/a?", kO, "", "", "", "/a", "", true},
    {"origin_fragment", "/a?x=1#frag", kO, "", "", "", "/a", "x=1", true},
    {"origin_question_in_query", "/a?x=?1", kO, "", "", "", "/a", "x=?1", true},
    {"absolute", "http://example.com:8080/p?q=1", kA, "http", "", "example.com:8080", "/p", "q=1", true},
    {"absolute_no_path", "http://example.com", kA, "http", "", "example.com", "/", "", false},
    {"absolute_query_no_path", "http://example.com?q", kA, "http", "", "example.com", "/", "q", true},
    {"absolute_userinfo", "https://u:p@h/x", kA, "https", "u:p", "h", "/x", "", false},
    {"absolute_ipv6", "http://[::1]:81/", kA, "http", "", "[::1]:81", "/", "", false},
    {"absolute_upper_scheme", "HTTP://H/", kA, "HTTP", "", "H", "/", "", false},
    {"authority", "example.com:443", TargetForm::kAuthority, "", "", "example.com:443", "", "", false},
    {"asterisk", "*", TargetForm::kAsterisk, "", "", "", "", "", false},
    {"empty", "", kO, "", "", "", "", "", false},
    {"garbage_kept_as_path", "not a url", kO, "", "", "", "not a url", "", false},
    {"host_without_port_is_not_authority", "example.com", kO, "", "", "", "example.com", "", false},
};

INSTANTIATE_TEST_SUITE_P(Cases, SplitTargetTest, testing::ValuesIn(kTargetCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(LooksLikeIdTest, Classes) {
  EXPECT_TRUE(LooksLikeId("0"));
  EXPECT_TRUE(LooksLikeId("550e8400-e29b-41d4-a716-446655440000"));
  EXPECT_TRUE(LooksLikeId("abcdefab-cdef-abcd-efab-cdefabcdefab"));  // a UUID with no digit
  EXPECT_FALSE(LooksLikeId(""));
  EXPECT_FALSE(LooksLikeId("users"));
  EXPECT_FALSE(LooksLikeId("v1"));
  EXPECT_FALSE(LooksLikeId("deadbeef"));  // 8 hex digits: could be a word-ish name
}

}  // namespace
}  // namespace kspan::correlator
