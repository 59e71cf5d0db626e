#include "common/redact.h"

#include <gtest/gtest.h>

namespace kspan {
namespace {

TEST(RedactTest, VendorKeys) {
  EXPECT_EQ(RedactSecrets("use sk-proj-abcdefghijklmnop1234 now"), "use REDACTED now");
  EXPECT_EQ(RedactSecrets("sk-ant-api03-abcdefghijklmnopqrst"), "REDACTED");
  EXPECT_EQ(RedactSecrets("token ghp_0123456789abcdefghij0123456789abcdef."), "token REDACTED.");
  EXPECT_EQ(RedactSecrets("AKIAIOSFODNN7EXAMPLE1"), "REDACTED");
  // Too short to be a key, or inside a word: left alone.
  EXPECT_EQ(RedactSecrets("sk-short"), "sk-short");
  EXPECT_EQ(RedactSecrets("task-abcdefghijklmnopqrstu"), "task-abcdefghijklmnopqrstu");
}

TEST(RedactTest, AuthorizationCredentialsAndJwts) {
  EXPECT_EQ(RedactSecrets("Authorization: Bearer abc.def-123456789"), "Authorization: Bearer REDACTED");
  EXPECT_EQ(RedactSecrets("basic dXNlcjpwYXNzd29yZA=="), "basic REDACTED");
  EXPECT_EQ(RedactSecrets("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlX2hlcmU end"),
            "jwt REDACTED end");
  EXPECT_EQ(RedactSecrets("a bearer of news"), "a bearer of news");
}

TEST(RedactTest, SecretKeysAndValues) {
  EXPECT_EQ(RedactSecrets("password=hunter2&user=bob"), "password=REDACTED&user=bob");
  EXPECT_EQ(RedactSecrets(R"({"api_key": "abc123", "n": 1})"), R"({"api_key": "REDACTED", "n": 1})");
  EXPECT_EQ(RedactSecrets("Token: 'xyz' ok"), "Token: 'REDACTED' ok");
  // A key name inside another word, or without a value, is not a secret key.
  EXPECT_EQ(RedactSecrets("tokens=5 passwords are hashed"), "tokens=5 passwords are hashed");
  EXPECT_EQ(RedactSecrets("password="), "password=");
}

TEST(RedactTest, PlainTextIsUntouched) {
  const std::string text = "Say hello in French. Temperature 0.2, max 64 tokens. ünïcödé ✓";
  EXPECT_EQ(RedactSecrets(text), text);
  EXPECT_EQ(RedactSecrets(""), "");
}

// Text shorter than a vendor key or a JWT is scanned only when it has the separator an
// auth scheme or a secret key needs: the shortest of each still found, the rest untouched.
TEST(RedactTest, ShortTextAtTheLengthsTheQuickCheckTrusts) {
  EXPECT_EQ(RedactSecrets("pwd=x"), "pwd=REDACTED");                     // 5 bytes
  EXPECT_EQ(RedactSecrets("token: abc"), "token: REDACTED");             // ':' then a space
  EXPECT_EQ(RedactSecrets("Basic dXNlcjpw"), "Basic REDACTED");          // 14 bytes
  EXPECT_EQ(RedactSecrets("sk-abcdefghijklmnop"), "REDACTED");           // 19: a vendor key
  EXPECT_EQ(RedactSecrets("sk-abcdefghijklmno"), "sk-abcdefghijklmno");  // 18: too short
  for (const char* plain : {"bench", "/item/1000", "curl/8.5.0", "x", "secret", "Bearer"}) {
    EXPECT_EQ(RedactSecrets(plain), plain);
    std::string in_place = plain;
    EXPECT_FALSE(RedactSecretsInPlace(&in_place));
    EXPECT_EQ(in_place, plain);
  }
}

}  // namespace
}  // namespace kspan
