// The embedded trace store (userspace/store/trace_store.h): what is written reads back
// whole, search finds exactly the traces asked for, a reopened file keeps its traces,
// and the size and age bounds hold while far more than the bound is written.
#include "store/trace_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/metrics.h"
#include "store/store_sink.h"
#include "testing/subprocess.h"

namespace kspan::store {
namespace {

constexpr uint64_t kT0 = 1'800'000'000'000'000'000ull;  // Unix ns, 2027
constexpr uint64_t kMs = 1'000'000;

std::shared_ptr<const model::Resource> Service(const std::string& name) {
  auto r = std::make_shared<model::Resource>();
  r->attributes.push_back({"service.name", name});
  r->attributes.push_back({"process.pid", int64_t{42}});
  return r;
}

model::TraceId Tid(uint8_t n) {
  model::TraceId t;
  t.bytes[0] = 0xab;
  t.bytes[15] = n;
  return t;
}

model::SpanId Sid(uint8_t trace, uint8_t n) {
  model::SpanId s;
  s.bytes[0] = trace;
  s.bytes[7] = n;
  return s;
}

model::Span MakeSpan(uint8_t trace, uint8_t id, uint8_t parent, std::shared_ptr<const model::Resource> r,
                     std::string name, uint64_t start, uint64_t dur, model::SpanKind kind) {
  model::Span s;
  s.trace_id = Tid(trace);
  s.span_id = Sid(trace, id);
  if (parent) s.parent_span_id = Sid(trace, parent);
  s.resource = std::move(r);
  s.name = std::move(name);
  s.start_time_unix_nano = start;
  s.end_time_unix_nano = start + dur;
  s.kind = kind;
  return s;
}

// A three-tier chain: frontend SERVER -> frontend CLIENT -> api SERVER -> api CLIENT ->
// db SERVER, lasting `dur`, erroring at the db when `error`.
std::vector<model::Span> Chain(uint8_t trace, uint64_t start, uint64_t dur, bool error,
                               const std::string& route = "/checkout") {
  auto fe = Service("frontend"), api = Service("api"), db = Service("db");
  std::vector<model::Span> v;
  v.push_back(MakeSpan(trace, 1, 0, fe, "GET " + route, start, dur, model::SpanKind::kServer));
  v.back().attributes.push_back({"http.request.method", std::string("GET")});
  v.back().attributes.push_back({"http.route", route});
  v.back().attributes.push_back({"http.response.status_code", int64_t{error ? 500 : 200}});
  v.push_back(MakeSpan(trace, 2, 1, fe, "GET", start + 1 * kMs, dur - 2 * kMs, model::SpanKind::kClient));
  v.push_back(
      MakeSpan(trace, 3, 2, api, "GET /items", start + 2 * kMs, dur - 4 * kMs, model::SpanKind::kServer));
  v.push_back(
      MakeSpan(trace, 4, 3, api, "SELECT items", start + 3 * kMs, dur - 6 * kMs, model::SpanKind::kClient));
  v.push_back(
      MakeSpan(trace, 5, 4, db, "SELECT items", start + 3 * kMs, dur - 7 * kMs, model::SpanKind::kServer));
  if (error) {
    v.back().status_code = model::StatusCode::kError;
    v.back().status_message = "relation does not exist";
    v.front().status_code = model::StatusCode::kError;
  }
  v.back().events.push_back({"exception", start + 4 * kMs, {{"exception.type", std::string("DbError")}}});
  v[2].links.push_back({Tid(99), Sid(99, 1), "k=v", {{"kspan.link", std::string("follows_from")}}});
  v[2].attributes.push_back({"gen_ai.response.finish_reasons", model::StringArray{"stop", "length"}});
  v[2].attributes.push_back({"ratio", 0.25});
  v[2].attributes.push_back({"kspan.parent.ambiguous", true});
  return v;
}

class TraceStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = testing::MakeTempDir("kspan-store-") + "/traces.db"; }
  void TearDown() override { std::filesystem::remove_all(std::filesystem::path(path_).parent_path()); }

  std::unique_ptr<TraceStore> Open(StoreOptions o = {}) {
    o.path = path_;
    auto s = TraceStore::Open(o, &metrics_);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string path_;
  metrics::Registry metrics_;
};

// A database file holding what `sql` makes, as another program (or kspan) left it.
bool MakeDatabase(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  const bool ok = sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
                  sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(db);
  return ok;
}

std::vector<uint8_t> Ids(const std::vector<TraceSummary>& v) {
  std::vector<uint8_t> out;
  for (const auto& t : v) out.push_back(t.trace_id.bytes[15]);
  return out;
}

TEST_F(TraceStoreTest, ReadsBackEverySpanFieldAndTheSummary) {
  auto store = Open();
  ASSERT_TRUE(store);
  const std::vector<model::Span> chain = Chain(1, kT0, 100 * kMs, true);
  // Out of order and in two batches, as traces leave the window.
  ASSERT_TRUE(store->Write(std::span(chain).subspan(2), kT0).ok());
  ASSERT_TRUE(store->Write(std::span(chain).first(2), kT0).ok());

  auto got = store->GetTrace(Tid(1));
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 5u);
  std::vector<model::Span> spans = *got;
  std::sort(spans.begin(), spans.end(),
            [](const auto& a, const auto& b) { return a.span_id.Hex() < b.span_id.Hex(); });
  for (size_t i = 0; i < 5; ++i) {
    const model::Span& w = chain[i];
    const model::Span& g = spans[i];
    EXPECT_EQ(g.trace_id, w.trace_id);
    EXPECT_EQ(g.span_id, w.span_id);
    EXPECT_EQ(g.parent_span_id, w.parent_span_id);
    EXPECT_EQ(g.name, w.name);
    EXPECT_EQ(g.kind, w.kind);
    EXPECT_EQ(g.start_time_unix_nano, w.start_time_unix_nano);
    EXPECT_EQ(g.end_time_unix_nano, w.end_time_unix_nano);
    EXPECT_EQ(g.status_code, w.status_code);
    EXPECT_EQ(g.status_message, w.status_message);
    ASSERT_EQ(g.attributes.size(), w.attributes.size());
    for (size_t a = 0; a < w.attributes.size(); ++a) {
      EXPECT_EQ(g.attributes[a].key, w.attributes[a].key);
      EXPECT_EQ(g.attributes[a].value, w.attributes[a].value) << w.attributes[a].key;
    }
    ASSERT_EQ(g.events.size(), w.events.size());
    ASSERT_EQ(g.links.size(), w.links.size());
    ASSERT_TRUE(g.resource);
    EXPECT_EQ(g.resource->attributes.size(), 2u);
    for (size_t a = 0; a < 2; ++a) {
      EXPECT_EQ(g.resource->attributes[a].key, w.resource->attributes[a].key);
      EXPECT_EQ(g.resource->attributes[a].value, w.resource->attributes[a].value);
    }
  }
  EXPECT_EQ(spans[4].events[0].name, "exception");
  EXPECT_EQ(spans[2].links[0].trace_id, Tid(99));
  EXPECT_EQ(spans[2].links[0].trace_state, "k=v");

  auto sum = store->GetSummary(Tid(1));
  ASSERT_TRUE(sum.ok() && sum->has_value());
  EXPECT_EQ((*sum)->root_service, "frontend") << "the root names the trace, though it came last";
  EXPECT_EQ((*sum)->root_name, "GET /checkout");
  EXPECT_EQ((*sum)->span_count, 5u);
  EXPECT_EQ((*sum)->error_count, 2u);
  EXPECT_EQ((*sum)->start_ns, kT0);
  EXPECT_EQ((*sum)->end_ns, kT0 + 100 * kMs);

  auto none = store->GetTrace(Tid(7));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(TraceStoreTest, SearchFindsExactlyTheTracesAsked) {
  auto store = Open();
  ASSERT_TRUE(store);
  // 1: ok 100 ms, 2: error 100 ms, 3: ok 900 ms (/slow), 4: only the api (no frontend).
  for (auto [id, dur, err] :
       {std::tuple<uint8_t, uint64_t, bool>{1, 100 * kMs, false}, {2, 100 * kMs, true}}) {
    ASSERT_TRUE(store->Write(Chain(id, kT0 + id * 1000 * kMs, dur, err), kT0).ok());
  }
  ASSERT_TRUE(store->Write(Chain(3, kT0 + 3000 * kMs, 900 * kMs, false, "/slow"), kT0).ok());
  std::vector<model::Span> api_only = Chain(4, kT0 + 4000 * kMs, 50 * kMs, false);
  api_only.erase(api_only.begin(), api_only.begin() + 2);
  api_only.front().parent_span_id = {};
  ASSERT_TRUE(store->Write(api_only, kT0).ok());

  auto find = [&](TraceQuery q) {
    auto r = store->FindTraces(q);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? Ids(*r) : std::vector<uint8_t>{};
  };
  EXPECT_EQ(find({}), (std::vector<uint8_t>{4, 3, 2, 1})) << "most recent first";
  EXPECT_EQ(find({.service = "frontend"}), (std::vector<uint8_t>{3, 2, 1}));
  EXPECT_EQ(find({.service = "api"}), (std::vector<uint8_t>{4, 3, 2, 1}));
  EXPECT_EQ(find({.error_only = true}), (std::vector<uint8_t>{2}));
  EXPECT_EQ(find({.min_duration_ns = 500 * kMs}), (std::vector<uint8_t>{3}));
  EXPECT_EQ(find({.service = "db", .min_duration_ns = 500 * kMs}), (std::vector<uint8_t>{3}));
  EXPECT_EQ(find({.service = "db", .min_duration_ns = 895 * kMs}), (std::vector<uint8_t>{}))
      << "the db span lasts 893 ms: one span must meet every condition";
  EXPECT_EQ(find({.max_duration_ns = 60 * kMs}), (std::vector<uint8_t>{4}));
  EXPECT_EQ(find({.service = "frontend", .operation = "GET /slow"}), (std::vector<uint8_t>{3}));
  EXPECT_EQ(find({.attributes = {{"http.route", "/slow"}}}), (std::vector<uint8_t>{3}));
  EXPECT_EQ(find({.attributes = {{"http.response.status_code", "500"}}}), (std::vector<uint8_t>{2}));
  EXPECT_EQ(find({.service = "api", .attributes = {{"http.route", "/slow"}}}), (std::vector<uint8_t>{}))
      << "the attribute is on a frontend span";
  EXPECT_EQ(find({.start_min_ns = kT0 + 2000 * kMs, .start_max_ns = kT0 + 3500 * kMs}),
            (std::vector<uint8_t>{3, 2}));
  EXPECT_EQ(find({.limit = 2}), (std::vector<uint8_t>{4, 3}));

  auto services = store->Services();
  ASSERT_TRUE(services.ok());
  EXPECT_EQ(*services, (std::vector<std::string>{"api", "db", "frontend"}));
  auto ops = store->Operations("frontend");
  ASSERT_TRUE(ops.ok());
  EXPECT_EQ(*ops, (std::vector<std::pair<std::string, std::string>>{
                      {"GET", "CLIENT"}, {"GET /checkout", "SERVER"}, {"GET /slow", "SERVER"}}));
  auto deps = store->Dependencies(0, UINT64_MAX);
  ASSERT_TRUE(deps.ok());
  ASSERT_EQ(deps->size(), 2u);
  EXPECT_EQ((*deps)[0].parent, "api");
  EXPECT_EQ((*deps)[0].child, "db");
  EXPECT_EQ((*deps)[0].call_count, 4u);
  EXPECT_EQ((*deps)[0].error_count, 1u);
  EXPECT_EQ((*deps)[1].parent, "frontend");
  EXPECT_EQ((*deps)[1].child, "api");
  EXPECT_EQ((*deps)[1].call_count, 3u);
}

// Text a traced process sent that is not UTF-8 (a Latin-1 path, a command line) is read
// back made valid, as every output has it: rows are protobuf, whose parser refuses a
// `string` that is not UTF-8. A row that cannot be read is left out and counted.
TEST_F(TraceStoreTest, TextThatIsNotUtf8IsReadBackAndAnUnreadableRowIsCounted) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    std::vector<model::Span> chain = Chain(1, kT0, 100 * kMs, false, "/caf\xE9");
    auto latin1 = std::make_shared<model::Resource>();
    latin1->attributes.push_back({"process.command_line", std::string("grep caf\xE9")});
    for (model::Span& s : chain) s.resource = latin1;
    ASSERT_TRUE(store->Write(chain, kT0).ok());
    auto got = store->GetTrace(Tid(1));
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), 5u);
    EXPECT_EQ(got->front().name, "GET /caf\xEF\xBF\xBD");
    ASSERT_TRUE(got->front().resource);
    ASSERT_EQ(got->front().resource->attributes.size(), 1u);
    EXPECT_EQ(got->front().resource->attributes[0].value,
              model::AttributeValue(std::string("grep caf\xEF\xBF\xBD")));
    EXPECT_EQ(metrics_.Sum("kspan_store_rows_unreadable_total"), 0u);
  }
  ASSERT_TRUE(MakeDatabase(path_,
                           "UPDATE spans SET body = x'ff' WHERE rowid = (SELECT min(rowid) FROM spans);"
                           "UPDATE resources SET body = x'ff';"));
  auto store = Open();
  ASSERT_TRUE(store);
  auto got = store->GetTrace(Tid(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), 4u);
  EXPECT_EQ(metrics_.Sum("kspan_store_rows_unreadable_total"), 2u);
}

TEST_F(TraceStoreTest, TracesSurviveAReopen) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(Chain(1, kT0, 100 * kMs, false), kT0).ok());
  }
  auto store = Open();
  ASSERT_TRUE(store);
  auto got = store->GetTrace(Tid(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), 5u);
  // New writes after the reopen join the same file (resources are stored anew).
  ASSERT_TRUE(store->Write(Chain(2, kT0 + kMs, 100 * kMs, false), kT0).ok());
  auto all = store->FindTraces({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), (std::vector<uint8_t>{2, 1}));
}

TEST_F(TraceStoreTest, RefusesAFileOfAnotherSchemaOrNotADatabase) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  { std::ofstream(path_) << std::string(4096, 'x'); }
  StoreOptions o;
  o.path = path_;
  auto s = TraceStore::Open(o, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--store-path"), std::string::npos) << s.status().message();
}

TEST_F(TraceStoreTest, MovesAnEarlierSchemasFileAsideAndRefusesANewerOne) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  // A file as an earlier kspan left it: its version, one table.
  ASSERT_TRUE(MakeDatabase(path_, "CREATE TABLE traces(trace_id BLOB); PRAGMA user_version=1;"));
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_TRUE(std::filesystem::exists(path_ + ".v1")) << "kept for a person to look at";
  ASSERT_TRUE(store->Write(Chain(1, kT0, 100 * kMs, false), kT0).ok());
  EXPECT_EQ(store->GetTrace(Tid(1))->size(), 5u);
  store.reset();

  // A newer kspan's file is not ours to move or read.
  std::filesystem::remove(path_);
  ASSERT_TRUE(MakeDatabase(path_, "CREATE TABLE x(a); PRAGMA user_version=99;"));
  StoreOptions o;
  o.path = path_;
  auto refused = TraceStore::Open(o, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("schema version 99"), std::string::npos)
      << refused.status().message();
}

TEST_F(TraceStoreTest, ASpanArrivingAfterItsTraceWasDeletedStartsTheTraceAgain) {
  StoreOptions o;
  o.max_age_ns = 60'000 * kMs;
  auto store = Open(o);
  ASSERT_TRUE(store);
  std::vector<model::Span> chain = Chain(1, kT0, 100 * kMs, false);
  const model::Span late = chain.back();
  chain.pop_back();
  ASSERT_TRUE(store->Write(chain, kT0).ok());
  ASSERT_TRUE(store->Prune(kT0 + 61'000 * kMs).ok());
  ASSERT_TRUE(store->GetTrace(Tid(1))->empty());
  // The writer remembered the trace's row; that row is gone, so the span makes a new one.
  ASSERT_TRUE(store->Write({&late, 1}, kT0 + 61'000 * kMs).ok());
  auto spans = store->GetTrace(Tid(1));
  ASSERT_TRUE(spans.ok());
  ASSERT_EQ(spans->size(), 1u);
  auto summary = store->GetSummary(Tid(1));
  ASSERT_TRUE(summary.ok() && summary->has_value());
  EXPECT_EQ((*summary)->span_count, 1u);
  EXPECT_EQ((*summary)->root_name, "SELECT items");
}

TEST_F(TraceStoreTest, StaysUnderItsSizeBoundWhileTenTimesItIsWritten) {
  StoreOptions o;
  o.max_bytes = 2u << 20;  // 2 MiB
  auto store = Open(o);
  ASSERT_TRUE(store);
  // Each trace ~5 spans with a 200-byte attribute: write until 10x the bound went in.
  uint64_t written = 0;
  uint64_t now = kT0;
  uint32_t n = 0;
  uint64_t peak = 0;
  while (written < 10 * o.max_bytes) {
    std::vector<model::Span> batch;
    for (int t = 0; t < 50; ++t, ++n) {
      std::vector<model::Span> c = Chain(static_cast<uint8_t>(n), now, 10 * kMs, n % 7 == 0);
      for (auto& s : c) {
        s.trace_id.bytes[1] = static_cast<uint8_t>(n >> 8);
        s.trace_id.bytes[2] = static_cast<uint8_t>(n >> 16);
        s.attributes.push_back({"payload", std::string(200, static_cast<char>('a' + n % 26))});
        written += 400;
      }
      batch.insert(batch.end(), c.begin(), c.end());
      now += kMs;
    }
    ASSERT_TRUE(store->Write(batch, now).ok());
    ASSERT_TRUE(store->Prune(now).ok());
    auto used = store->UsedBytes();
    ASSERT_TRUE(used.ok());
    peak = std::max(peak, *used);
  }
  EXPECT_LE(peak, o.max_bytes + (512u << 10)) << "a batch over the bound at most";
  const uint64_t file = std::filesystem::file_size(path_);
  EXPECT_LE(file, o.max_bytes + (1u << 20)) << "freed pages are reused and given back";
  EXPECT_GT(metrics_.Sum("kspan_store_traces_evicted_total"), 0u);
  // The newest traces are the ones kept.
  auto recent = store->FindTraces({.limit = 1});
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 1u);
  EXPECT_EQ((*recent)[0].start_ns, now - kMs);
}

TEST_F(TraceStoreTest, ForgetsTracesOlderThanItsAge) {
  StoreOptions o;
  o.max_age_ns = 60'000 * kMs;  // a minute
  auto store = Open(o);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Write(Chain(1, kT0, 100 * kMs, false), kT0).ok());
  ASSERT_TRUE(store->Write(Chain(2, kT0 + 30'000 * kMs, 100 * kMs, false), kT0).ok());
  ASSERT_TRUE(store->Prune(kT0 + 61'000 * kMs).ok());
  auto all = store->FindTraces({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), (std::vector<uint8_t>{2}));
  EXPECT_TRUE(store->GetTrace(Tid(1))->empty());
  EXPECT_EQ(metrics_.Sum("kspan_store_traces_evicted_total"), 1u);
}

// Rows of the resources table, read straight from the file.
int64_t ResourceRows(const std::string& path) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM resources", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
      n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return n;
}

// Resources no span refers to any more are deleted, but only once enough were stored for
// the scan over every span to be worth it (kResourceSweepEvery): orphans stay bounded.
TEST_F(TraceStoreTest, OrphanedResourcesAreSweptOnceEnoughWereStored) {
  StoreOptions o;
  o.max_age_ns = 60'000 * kMs;
  auto store = Open(o);
  ASSERT_TRUE(store);
  // Two chains (each makes its three services' resources anew): too few to sweep.
  ASSERT_TRUE(store->Write(Chain(1, kT0, 10 * kMs, false), kT0).ok());
  ASSERT_TRUE(store->Write(Chain(2, kT0 + 30'000 * kMs, 10 * kMs, false), kT0).ok());
  ASSERT_TRUE(store->Prune(kT0 + 61'000 * kMs).ok());
  EXPECT_EQ(store->GetTrace(Tid(1))->size(), 0u);
  EXPECT_EQ(ResourceRows(path_), 6);
  // 100 chains more, all but the last old enough to go: 306 resources stored, swept.
  for (uint8_t t = 3; t < 102; ++t)
    ASSERT_TRUE(store->Write(Chain(t, kT0 + t * kMs, 10 * kMs, false), kT0).ok());
  ASSERT_TRUE(store->Write(Chain(102, kT0 + 40'000 * kMs, 10 * kMs, false), kT0).ok());
  ASSERT_TRUE(store->Prune(kT0 + 62'000 * kMs).ok());
  EXPECT_EQ(store->GetTrace(Tid(50))->size(), 0u);
  EXPECT_EQ(store->GetTrace(Tid(102))->size(), 5u);
  EXPECT_EQ(ResourceRows(path_), 6) << "traces 2 and 102 keep their three resources each";
  // What is left reads back whole.
  auto trace = store->GetTrace(Tid(102));
  ASSERT_TRUE(trace.ok());
  for (const model::Span& span : *trace) EXPECT_NE(span.resource, nullptr);
}

TEST_F(TraceStoreTest, SinkWritesOffTheCallersThreadAndDropsWhatDoesNotFit) {
  auto opened = Open();
  ASSERT_TRUE(opened);
  std::shared_ptr<TraceStore> store(std::move(opened));
  StoreSink sink(store,
                 {.max_queue_spans = 8, .max_batch = 4, .flush_interval = std::chrono::milliseconds(10)},
                 &metrics_);
  std::vector<model::Span> two = Chain(1, kT0, 100 * kMs, false);
  two.resize(2);
  EXPECT_EQ(sink.Export(two), exporters::ExportResult::kSuccess);
  ASSERT_TRUE(sink.ForceFlush());
  EXPECT_EQ(store->GetTrace(Tid(1))->size(), 2u);
  EXPECT_EQ(metrics_.Sum("kspan_store_spans_written_total"), 2u);
  // 20 spans at once into a queue of 8: 12 dropped, counted.
  std::vector<model::Span> many;
  for (uint8_t t = 10; t < 14; ++t) {
    auto c = Chain(t, kT0, 100 * kMs, false);
    many.insert(many.end(), c.begin(), c.end());
  }
  EXPECT_EQ(sink.Export(many), exporters::ExportResult::kFailure);
  ASSERT_TRUE(sink.ForceFlush());
  EXPECT_EQ(metrics_.Sum("kspan_store_spans_dropped_total"), 12u);
  EXPECT_EQ(metrics_.Sum("kspan_store_spans_written_total"), 10u);
  sink.Shutdown();
}

}  // namespace
}  // namespace kspan::store
