// Memcached records -> CLIENT spans (correlator/db_span.h): every attribute checked.
#include "correlator/db_span.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "correlator/span_builder.h"
#include "correlator/stitcher.h"
#include "process/process_table.h"
#include "processors/processor_chain.h"
#include "protocols/http1/spec.h"
#include "protocols/memcache/spec.h"

namespace kspan::correlator {
namespace {

namespace mc = protocols::memcache;

constexpr uint64_t kT0 = 1'700'000'000'000'000'000ULL;

DbConnContext Client(std::string address = "127.0.0.1", uint16_t port = 11211) {
  DbConnContext c;
  c.is_server = false;
  c.tuple.family = AF_INET;
  c.tuple.local = {"127.0.0.1", 40000};
  c.tuple.remote = {std::move(address), port};
  return c;
}

mc::Record Rec(mc::Command c, mc::Result r, uint32_t keys = 1) {
  mc::Record rec;
  rec.seq = 1;
  rec.command = c;
  rec.keys = keys;
  rec.result = r;
  rec.request = {kT0, kT0 + 1'000, 7, 0, 7, 0};
  rec.response = {kT0 + 50'000, kT0 + 60'000, 7, 0, 7, 0};
  return rec;
}

// The attributes as "key=value" strings, sorted, so a case lists exactly what it expects.
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

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

const std::vector<std::string> kPeer = {"server.address=127.0.0.1", "server.port=11211",
                                        "network.peer.address=127.0.0.1", "network.peer.port=11211",
                                        "db.system.name=memcached"};

std::vector<std::string> With(std::vector<std::string> extra) {
  extra.insert(extra.end(), kPeer.begin(), kPeer.end());
  return Sorted(extra);
}

struct SpanCase {
  const char* name;
  mc::Record record;
  std::string span_name;
  model::StatusCode status;
  std::string status_message;
  std::vector<std::string> attributes;
};

mc::Record Hits(uint32_t keys, uint32_t hits) {
  mc::Record r = Rec(mc::Command::kGet, mc::Result::kValues, keys);
  r.hits = hits;
  r.response_value_bytes = 10;
  return r;
}

mc::Record Error(mc::Command c, mc::Result r, std::string message) {
  mc::Record rec = Rec(c, r);
  rec.message = std::move(message);
  return rec;
}

mc::Record NoReply() {
  mc::Record r = Rec(mc::Command::kSet, mc::Result::kNone);
  r.noreply = true;
  r.response = {};
  return r;
}

mc::Record Missing(protocols::Unanswered why) {
  mc::Record r = Rec(mc::Command::kDelete, mc::Result::kNone);
  r.response_missing = true;
  r.unanswered = why;
  r.response = {};
  return r;
}

const SpanCase kCases[] = {
    {"set_stored", Rec(mc::Command::kSet, mc::Result::kStored), "set 127.0.0.1:11211",
     model::StatusCode::kUnset, "", With({"db.operation.name=set", "db.response.status_code=STORED"})},
    {"get_hit", Hits(1, 1), "get 127.0.0.1:11211", model::StatusCode::kUnset, "",
     With({"db.operation.name=get", "db.response.returned_rows=1", "memcached.keys=1"})},
    {"get_miss", Hits(1, 0), "get 127.0.0.1:11211", model::StatusCode::kUnset, "",
     With({"db.operation.name=get", "db.response.returned_rows=0", "memcached.keys=1"})},
    // One command with several keys, not a batch: no db.operation.batch.size.
    {"get_multi", Hits(3, 2), "get 127.0.0.1:11211", model::StatusCode::kUnset, "",
     With({"db.operation.name=get", "db.response.returned_rows=2", "memcached.keys=3"})},
    {"add_not_stored_is_no_error", Rec(mc::Command::kAdd, mc::Result::kNotStored), "add 127.0.0.1:11211",
     model::StatusCode::kUnset, "", With({"db.operation.name=add", "db.response.status_code=NOT_STORED"})},
    {"cas_exists", Rec(mc::Command::kCas, mc::Result::kExists), "cas 127.0.0.1:11211",
     model::StatusCode::kUnset, "", With({"db.operation.name=cas", "db.response.status_code=EXISTS"})},
    {"delete_deleted", Rec(mc::Command::kDelete, mc::Result::kDeleted), "delete 127.0.0.1:11211",
     model::StatusCode::kUnset, "", With({"db.operation.name=delete", "db.response.status_code=DELETED"})},
    {"delete_not_found", Rec(mc::Command::kDelete, mc::Result::kNotFound), "delete 127.0.0.1:11211",
     model::StatusCode::kUnset, "", With({"db.operation.name=delete", "db.response.status_code=NOT_FOUND"})},
    {"touch_touched", Rec(mc::Command::kTouch, mc::Result::kTouched), "touch 127.0.0.1:11211",
     model::StatusCode::kUnset, "", With({"db.operation.name=touch", "db.response.status_code=TOUCHED"})},
    {"incr_number", Rec(mc::Command::kIncr, mc::Result::kNumber), "incr 127.0.0.1:11211",
     model::StatusCode::kUnset, "", With({"db.operation.name=incr"})},
    {"flush_all_ok", Rec(mc::Command::kFlushAll, mc::Result::kOk, 0), "flush_all 127.0.0.1:11211",
     model::StatusCode::kUnset, "", With({"db.operation.name=flush_all", "db.response.status_code=OK"})},
    {"version", Error(mc::Command::kVersion, mc::Result::kVersion, "1.6.18"), "version 127.0.0.1:11211",
     model::StatusCode::kUnset, "", With({"db.operation.name=version"})},
    {"error", Error(mc::Command::kStats, mc::Result::kError, ""), "stats 127.0.0.1:11211",
     model::StatusCode::kError, "",
     With({"db.operation.name=stats", "db.response.status_code=ERROR", "error.type=ERROR"})},
    {"client_error",
     Error(mc::Command::kIncr, mc::Result::kClientError, "cannot increment or decrement non-numeric value"),
     "incr 127.0.0.1:11211", model::StatusCode::kError, "cannot increment or decrement non-numeric value",
     With({"db.operation.name=incr", "db.response.status_code=CLIENT_ERROR", "error.type=CLIENT_ERROR"})},
    {"server_error", Error(mc::Command::kSet, mc::Result::kServerError, "out of memory storing object"),
     "set 127.0.0.1:11211", model::StatusCode::kError, "out of memory storing object",
     With({"db.operation.name=set", "db.response.status_code=SERVER_ERROR", "error.type=SERVER_ERROR"})},
    {"noreply", NoReply(), "set 127.0.0.1:11211", model::StatusCode::kUnset, "",
     With({"db.operation.name=set"})},
    // A clean close with no answer: the server failed. kspan not seeing the answer: no error.
    {"response_missing", Missing(protocols::Unanswered::kNoResponse), "delete 127.0.0.1:11211",
     model::StatusCode::kError, "no response before the connection ended",
     With({"db.operation.name=delete", "error.type=response_missing"})},
    {"response_not_captured", Missing(protocols::Unanswered::kNotCaptured), "delete 127.0.0.1:11211",
     model::StatusCode::kUnset, "",
     With({"db.operation.name=delete", "kspan.incomplete=response_not_captured"})},
    {"evicted", Missing(protocols::Unanswered::kEvicted), "delete 127.0.0.1:11211", model::StatusCode::kUnset,
     "", With({"db.operation.name=delete", "kspan.incomplete=evicted"})},
};

class DbSpanTest : public testing::TestWithParam<SpanCase> {};

TEST_P(DbSpanTest, BuildsTheClientSpan) {
  const SpanCase& c = GetParam();
  const std::optional<model::Span> span = BuildMemcacheSpan(c.record, Client(), nullptr);
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->name, c.span_name);
  EXPECT_EQ(span->kind, model::SpanKind::kClient);
  EXPECT_EQ(span->status_code, c.status);
  EXPECT_EQ(span->status_message, c.status_message);
  EXPECT_EQ(Attributes(*span), c.attributes);
  EXPECT_EQ(span->start_time_unix_nano, c.record.request.start_ns);
  const bool answered = c.record.result != mc::Result::kNone;
  EXPECT_EQ(span->end_time_unix_nano, answered ? c.record.response.end_ns : c.record.request.end_ns);
  EXPECT_TRUE(span->span_id.IsValid());
  EXPECT_TRUE(span->trace_id.IsValid());
  EXPECT_EQ(span->trace_flags, 0x01);
}

INSTANTIATE_TEST_SUITE_P(Cases, DbSpanTest, testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DbSpan, TheDataStoresOwnSideMakesNoSpan) {
  DbConnContext server = Client();
  server.is_server = true;
  EXPECT_FALSE(BuildMemcacheSpan(Rec(mc::Command::kGet, mc::Result::kValues), server, nullptr).has_value());
}

TEST(DbSpan, Ipv6ServerIsBracketedInTheName) {
  const auto span =
      BuildMemcacheSpan(Rec(mc::Command::kSet, mc::Result::kStored), Client("::1", 11311), nullptr);
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->name, "set [::1]:11311");
}

TEST(DbSpan, TheDataStoresOwnSideIsNoSpan) {
  EXPECT_FALSE(protocols::memcache::Spec().callee_spans);
  EXPECT_TRUE(protocols::http1::Spec().callee_spans);
}

// Through the span builder and the stitcher: memcached's own side of a command opens no
// node (one that never completes would hold the client's trace until max_hold_ns) and
// makes no span; the client's side makes one.
class DbSpanBuilderTest : public testing::Test {
 protected:
  DbSpanBuilderTest()
      : processes_({.proc_root = "/nonexistent-kspan-test", .host_name = "test", .resource_attributes = {}}),
        stitcher_(StitcherOptions{}, &metrics_,
                  [this](model::Span&& s) { emitted_.push_back(std::move(s)); }),
        chain_(&metrics_, [](model::Span&&) {}),
        builder_(SpanBuilderOptions{}, &metrics_, &processes_, &stitcher_, &chain_) {}

  void Command(events::Role role) {
    conntrack::ConnInfo conn;
    conn.key = {.pid = 100, .fd = 5, .generation = 1};
    conn.role = role;
    conn.tuple = Client().tuple;
    conn.tuple_known = true;
    conn.protocol = mc::Spec().name;  // as the tracker fills it in at detection
    conn.callee_spans = mc::Spec().callee_spans;
    const mc::Record rec = Rec(mc::Command::kGet, mc::Result::kValues);
    protocols::RequestStart start;
    start.seq = 1;
    start.timing = rec.request;
    builder_.OnRequest(conn, std::move(start));
    protocols::Record env;
    env.seq = 1;
    env.request = rec.request;
    env.response = rec.response;
    env.body = rec;
    builder_.OnRecord(conn, std::move(env));
    // Past the reorder slack, then past the assembly window.
    for (uint64_t ms : {100, 1'000, 2'000}) stitcher_.Advance(kT0 + ms * 1'000'000);
  }

  metrics::Registry metrics_;
  process::ProcessTable processes_;
  Stitcher stitcher_;
  processors::ProcessorChain chain_;
  SpanBuilder builder_;
  std::vector<model::Span> emitted_;
};

TEST_F(DbSpanBuilderTest, MemcachedsOwnSideOpensNothing) {
  Command(events::Role::kServer);
  EXPECT_EQ(stitcher_.nodes(), 0u);
  EXPECT_TRUE(emitted_.empty());
}

TEST_F(DbSpanBuilderTest, TheClientsCommandIsExportedAtOnce) {
  Command(events::Role::kClient);
  ASSERT_EQ(emitted_.size(), 1u);
  EXPECT_EQ(emitted_[0].name, "get 127.0.0.1:11211");
  EXPECT_EQ(emitted_[0].kind, model::SpanKind::kClient);
}

}  // namespace
}  // namespace kspan::correlator
