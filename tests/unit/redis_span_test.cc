// Redis records -> CLIENT spans (correlator/db_span.h): every attribute checked.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <vector>

#include "correlator/db_span.h"
#include "protocols/redis/spec.h"

namespace kspan::correlator {
namespace {

namespace rd = protocols::redis;

constexpr uint64_t kT0 = 1'700'000'000'000'000'000ULL;

DbConnContext Client() {
  DbConnContext c;
  c.tuple.family = AF_INET;
  c.tuple.local = {"127.0.0.1", 40000};
  c.tuple.remote = {"127.0.0.1", 6379};
  return c;
}

rd::Record Rec(std::string command, uint32_t args, rd::Reply reply) {
  rd::Record r;
  r.seq = 1;
  r.command = std::move(command);
  r.args = args;
  r.reply = reply;
  r.db = 0;
  r.request = {kT0, kT0 + 1'000, 7, 0, 7, 0};
  r.response = {kT0 + 50'000, kT0 + 60'000, 7, 0, 7, 0};
  return r;
}

std::vector<std::string> Attributes(const model::Span& s) {
  std::vector<std::string> out;
  for (const model::Attribute& a : s.attributes) {
    std::string v;
    if (const auto* str = std::get_if<std::string>(&a.value)) v = *str;
    if (const auto* i = std::get_if<int64_t>(&a.value)) v = std::to_string(*i);
    if (const auto* b = std::get_if<bool>(&a.value)) v = *b ? "true" : "false";
    out.push_back(std::string(a.key) + "=" + v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> With(std::vector<std::string> extra) {
  for (const char* p : {"server.address=127.0.0.1", "server.port=6379", "network.peer.address=127.0.0.1",
                        "network.peer.port=6379", "db.system.name=redis"}) {
    extra.push_back(p);
  }
  std::sort(extra.begin(), extra.end());
  return extra;
}

TEST(RedisSpan, ACommandIsAClientSpanWithSanitisedText) {
  const auto span = BuildRedisSpan(Rec("SET", 2, rd::Reply::kSimple), Client(), nullptr);
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->name, "SET 127.0.0.1:6379");
  EXPECT_EQ(span->kind, model::SpanKind::kClient);
  EXPECT_EQ(span->status_code, model::StatusCode::kUnset);
  EXPECT_EQ(span->start_time_unix_nano, kT0);
  EXPECT_EQ(span->end_time_unix_nano, kT0 + 60'000);
  EXPECT_EQ(Attributes(*span), With({"db.operation.name=SET", "db.query.text=SET ? ?", "db.namespace=0"}));
}

TEST(RedisSpan, AnErrorReplyIsAnErrorWithItsPrefixAndNoMessage) {
  rd::Record r = Rec("INCR", 1, rd::Reply::kError);
  r.error_prefix = "WRONGTYPE";
  r.db = 3;
  const auto span = BuildRedisSpan(r, Client(), nullptr);
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->status_code, model::StatusCode::kError);
  EXPECT_EQ(span->status_message, "");
  EXPECT_EQ(Attributes(*span), With({"db.operation.name=INCR", "db.query.text=INCR ?", "db.namespace=3",
                                     "db.response.status_code=WRONGTYPE", "error.type=WRONGTYPE"}));
}

TEST(RedisSpan, ExecCarriesItsBatchAndAFailedCommandInside) {
  rd::Record r = Rec("EXEC", 0, rd::Reply::kArray);
  r.exec = true;
  r.queued = 3;
  r.error_prefix = "WRONGTYPE";
  r.nested_error = true;
  r.db = -1;
  const auto span = BuildRedisSpan(r, Client(), nullptr);
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->status_code, model::StatusCode::kError);
  EXPECT_EQ(Attributes(*span),
            With({"db.operation.name=EXEC", "db.query.text=EXEC", "db.operation.batch.size=3",
                  "db.response.status_code=WRONGTYPE", "error.type=WRONGTYPE"}));
  // A transaction of one command is not a batch.
  r.queued = 1;
  r.error_prefix.clear();
  const auto one = BuildRedisSpan(r, Client(), nullptr);
  EXPECT_EQ(Attributes(*one), With({"db.operation.name=EXEC", "db.query.text=EXEC"}));
}

TEST(RedisSpan, AQueuedCommandSaysSo) {
  rd::Record r = Rec("CLIENT", 2, rd::Reply::kSimple);
  r.subcommand = "SETNAME";
  r.in_transaction = true;
  const auto span = BuildRedisSpan(r, Client(), nullptr);
  EXPECT_EQ(Attributes(*span), With({"db.operation.name=CLIENT", "db.query.text=CLIENT SETNAME ?",
                                     "db.namespace=0", "redis.queued=true"}));
}

TEST(RedisSpan, NoAnswerAtACleanCloseIsAnError) {
  rd::Record r = Rec("BLPOP", 2, rd::Reply::kNone);
  r.response_missing = true;
  r.unanswered = protocols::Unanswered::kNoResponse;
  const auto span = BuildRedisSpan(r, Client(), nullptr);
  EXPECT_EQ(span->status_code, model::StatusCode::kError);
  EXPECT_EQ(span->end_time_unix_nano, kT0 + 1'000);
  EXPECT_EQ(Attributes(*span), With({"db.operation.name=BLPOP", "db.query.text=BLPOP ? ?", "db.namespace=0",
                                     "error.type=response_missing"}));
}

TEST(RedisSpan, TheServersSideIsNoSpan) {
  DbConnContext server = Client();
  server.is_server = true;
  EXPECT_FALSE(BuildRedisSpan(Rec("GET", 1, rd::Reply::kBulk), server, nullptr).has_value());
  EXPECT_FALSE(protocols::redis::Spec().callee_spans);
}

}  // namespace
}  // namespace kspan::correlator
