#include "store/trace_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "exporters/otlp_proto.h"
#include "store/span_codec.h"

namespace kspan::store {
namespace {

// Version 1: the tables in trace_store.h.
constexpr int kSchemaVersion = 1;
constexpr size_t kMaxCachedResources = 4096;
constexpr uint64_t kPruneEveryNs = 1'000'000'000;
constexpr size_t kMaxLimit = 1000;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS traces(
  trace_id BLOB PRIMARY KEY, start_ns INTEGER, end_ns INTEGER,
  root_service TEXT, root_name TEXT, root_is_root INTEGER,
  span_count INTEGER, error_count INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS traces_start ON traces(start_ns);
CREATE INDEX IF NOT EXISTS traces_end ON traces(end_ns);
CREATE TABLE IF NOT EXISTS resources(id INTEGER PRIMARY KEY, service TEXT, body BLOB);
CREATE TABLE IF NOT EXISTS spans(
  trace_id BLOB, span_id BLOB, parent_id BLOB, service TEXT, name TEXT, kind INTEGER,
  start_ns INTEGER, duration_ns INTEGER, status INTEGER, resource_id INTEGER, attrs TEXT, body BLOB);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id);
CREATE INDEX IF NOT EXISTS spans_service ON spans(service, name, start_ns);
CREATE INDEX IF NOT EXISTS spans_start ON spans(start_ns);
)sql";

Status SqlError(sqlite3* db, const std::string& what) {
  return Internal("trace store: " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Internal(std::string("trace store: ") + msg);
  }
  return Status::Ok();
}

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql) : db_(db) {
    ok_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s_, nullptr) == SQLITE_OK;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return ok_; }
  Status Error(const std::string& what) const { return SqlError(db_, what); }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s_, i, p, static_cast<int>(n), SQLITE_TRANSIENT);
  }
  // SQLITE_ROW, SQLITE_DONE, or an error.
  int Step() { return sqlite3_step(s_); }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t Int(int c) const { return sqlite3_column_int64(s_, c); }
  std::string Text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }
  std::string_view Blob(int c) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, c));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string_view();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  bool ok_ = false;
};

std::string ServiceOf(const model::Resource* r) {
  if (r) {
    for (const model::Attribute& a : r->attributes) {
      if (a.key == "service.name") {
        if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
      }
    }
  }
  return "unknown_service";
}

// The indexed text of an attribute value, or nullopt when it is not indexed.
std::optional<std::string> IndexedValue(const model::AttributeValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    if (s->size() > kMaxIndexedValue) return std::nullopt;
    return *s;
  }
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* b = std::get_if<bool>(&v)) return std::string(*b ? "true" : "false");
  return std::nullopt;
}

Result<sqlite3*> OpenDb(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s =
        Unavailable("trace store: cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory") +
                    " (set --store-path to a writable file, or --ui false)");
    sqlite3_close(db);
    return s;
  }
  // Another writer (a second kspan on the same file) waits this long, then the batch fails
  // and is counted.
  sqlite3_busy_timeout(db, 2000);
  return db;
}

}  // namespace

TraceStore::TraceStore(StoreOptions options, metrics::Registry* registry) : options_(std::move(options)) {
  if (!registry) {
    own_registry_ = std::make_unique<metrics::Registry>();
    registry = own_registry_.get();
  }
  evicted_size_ = registry->GetCounter("kspan_store_traces_evicted_total", {{"reason", "size"}});
  evicted_age_ = registry->GetCounter("kspan_store_traces_evicted_total", {{"reason", "age"}});
  bytes_gauge_ = registry->GetCounter("kspan_store_bytes");
}

TraceStore::~TraceStore() {
  resource_ids_.clear();
  sqlite3_close(writer_);
  sqlite3_close(reader_);
}

Result<std::unique_ptr<TraceStore>> TraceStore::Open(StoreOptions options, metrics::Registry* registry) {
  if (options.path.empty()) return InvalidArgument("trace store: no path (--store-path)");
  std::unique_ptr<TraceStore> store(new TraceStore(std::move(options), registry));
  RETURN_IF_ERROR(store->Init());
  return store;
}

Status TraceStore::Init() {
  const std::filesystem::path path(options_.path);
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return Unavailable("trace store: cannot create " + path.parent_path().string() + ": " + ec.message() +
                         " (set --store-path to a writable file, or --ui false)");
    }
  }
  ASSIGN_OR_RETURN(writer_, OpenDb(options_.path));
  // A file written by another schema version is moved aside (kept for a person to look
  // at), never read as if it were ours.
  {
    Stmt v(writer_, "PRAGMA user_version");
    if (!v.ok() || v.Step() != SQLITE_ROW) {
      return Unavailable("trace store: " + options_.path + " is not a SQLite database: " +
                         sqlite3_errmsg(writer_) + " (move it away or set --store-path)");
    }
    const int64_t version = v.Int(0);
    Stmt t(writer_, "SELECT count(*) FROM sqlite_master");
    const bool empty = t.ok() && t.Step() == SQLITE_ROW && t.Int(0) == 0;
    if (!empty && version != kSchemaVersion) {
      return Unavailable("trace store: " + options_.path + " has schema version " + std::to_string(version) +
                         ", this kspan writes " + std::to_string(kSchemaVersion) +
                         " (move the file away or set --store-path)");
    }
  }
  // auto_vacuum must be set before the first table exists; INCREMENTAL keeps the freed
  // pages listed so the file can be shrunk, and they are reused first anyway.
  RETURN_IF_ERROR(
      Exec(writer_,
           "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
           "PRAGMA journal_size_limit=8388608; PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;"));
  RETURN_IF_ERROR(Exec(writer_, kSchema));
  RETURN_IF_ERROR(Exec(writer_, ("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()));
  ASSIGN_OR_RETURN(reader_, OpenDb(options_.path));
  return Status::Ok();
}

Result<int64_t> TraceStore::ResourceId(const std::shared_ptr<const model::Resource>& r) {
  if (auto it = resource_ids_.find(r); it != resource_ids_.end()) return it->second;
  if (resource_ids_.size() >= kMaxCachedResources) resource_ids_.clear();
  std::string body;
  if (r) EncodeResource(*r, &body);
  Stmt ins(writer_, "INSERT INTO resources(service, body) VALUES(?, ?)");
  if (!ins.ok()) return ins.Error("prepare resources");
  ins.Bind(1, ServiceOf(r.get()));
  ins.BindBlob(2, body.data(), body.size());
  if (ins.Step() != SQLITE_DONE) return ins.Error("insert resource");
  const int64_t id = sqlite3_last_insert_rowid(writer_);
  resource_ids_.emplace(r, id);
  return id;
}

Status TraceStore::Write(std::span<const model::Span> spans, uint64_t now_ns) {
  if (spans.empty()) return Status::Ok();
  RETURN_IF_ERROR(Exec(writer_, "BEGIN IMMEDIATE"));
  Status failed = Status::Ok();
  {
    Stmt span_ins(
        writer_,
        "INSERT INTO spans(trace_id, span_id, parent_id, service, name, kind, start_ns, duration_ns, "
        "status, resource_id, attrs, body) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    // The root wins the trace's name; until it comes, the earliest span holds it.
    Stmt trace_up(writer_,
                  "INSERT INTO traces(trace_id, start_ns, end_ns, root_service, root_name, root_is_root, "
                  "span_count, error_count) VALUES(?1,?2,?3,?4,?5,?6,1,?7) "
                  "ON CONFLICT(trace_id) DO UPDATE SET "
                  "root_service = CASE WHEN root_is_root = 0 AND (?6 = 1 OR ?2 < start_ns) THEN ?4 "
                  "ELSE root_service END, "
                  "root_name = CASE WHEN root_is_root = 0 AND (?6 = 1 OR ?2 < start_ns) THEN ?5 "
                  "ELSE root_name END, "
                  "root_is_root = max(root_is_root, ?6), "
                  "start_ns = min(start_ns, ?2), end_ns = max(end_ns, ?3), "
                  "span_count = span_count + 1, error_count = error_count + ?7");
    if (!span_ins.ok() || !trace_up.ok()) {
      failed = SqlError(writer_, "prepare");
    }
    std::string body, attrs;
    for (size_t i = 0; failed.ok() && i < spans.size(); ++i) {
      const model::Span& s = spans[i];
      auto rid = ResourceId(s.resource);
      if (!rid.ok()) {
        failed = rid.status();
        break;
      }
      body.clear();
      EncodeSpan(s, &body);
      const std::string service = ServiceOf(s.resource.get());
      const auto start = static_cast<int64_t>(s.start_time_unix_nano);
      const auto duration = static_cast<int64_t>(
          s.end_time_unix_nano > s.start_time_unix_nano ? s.end_time_unix_nano - s.start_time_unix_nano : 0);
      const bool error = s.status_code == model::StatusCode::kError;
      span_ins.BindBlob(1, s.trace_id.bytes.data(), 16);
      span_ins.BindBlob(2, s.span_id.bytes.data(), 8);
      if (s.parent_span_id.IsValid()) span_ins.BindBlob(3, s.parent_span_id.bytes.data(), 8);
      span_ins.Bind(4, service);
      span_ins.Bind(5, s.name);
      span_ins.Bind(6, static_cast<int64_t>(s.kind));
      span_ins.Bind(7, start);
      span_ins.Bind(8, duration);
      span_ins.Bind(9, static_cast<int64_t>(s.status_code));
      span_ins.Bind(10, *rid);
      // "\nkey=value\n..." of the searchable attributes: a search looks for "\nkey=value\n".
      attrs.assign(1, '\n');
      for (const model::Attribute& a : s.attributes) {
        if (std::optional<std::string> v = IndexedValue(a.value)) attrs += a.key + "=" + *v + "\n";
      }
      span_ins.Bind(11, attrs);
      span_ins.BindBlob(12, body.data(), body.size());
      if (span_ins.Step() != SQLITE_DONE) {
        failed = span_ins.Error("insert span");
        break;
      }
      span_ins.Reset();
      trace_up.BindBlob(1, s.trace_id.bytes.data(), 16);
      trace_up.Bind(2, start);
      trace_up.Bind(3, static_cast<int64_t>(std::max(s.end_time_unix_nano, s.start_time_unix_nano)));
      trace_up.Bind(4, service);
      trace_up.Bind(5, s.name);
      trace_up.Bind(6, int64_t{s.parent_span_id.IsValid() ? 0 : 1});
      trace_up.Bind(7, int64_t{error ? 1 : 0});
      if (trace_up.Step() != SQLITE_DONE) {
        failed = trace_up.Error("update trace");
        break;
      }
      trace_up.Reset();
    }
  }
  if (!failed.ok()) {
    (void)Exec(writer_, "ROLLBACK");
    // Rows of resources inserted in this transaction are gone: forget their ids.
    resource_ids_.clear();
    return failed;
  }
  RETURN_IF_ERROR(Exec(writer_, "COMMIT"));
  if (now_ns >= last_prune_ns_ + kPruneEveryNs) return Prune(now_ns);
  return Status::Ok();
}

Result<uint64_t> TraceStore::UsedBytes() {
  // The writer's connection is busy on its own thread; read through the reader's.
  std::lock_guard lock(read_mu_);
  Stmt s(reader_,
         "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM "
         "pragma_freelist_count()), (SELECT page_size FROM pragma_page_size())");
  if (!s.ok() || s.Step() != SQLITE_ROW) return s.Error("page count");
  return static_cast<uint64_t>(s.Int(0)) * static_cast<uint64_t>(s.Int(1));
}

Status TraceStore::EvictOldest(size_t n) {
  const std::string oldest =
      "(SELECT trace_id FROM traces ORDER BY start_ns LIMIT " + std::to_string(n) + ")";
  RETURN_IF_ERROR(Exec(writer_, "BEGIN IMMEDIATE"));
  Status s = Exec(writer_, ("DELETE FROM spans WHERE trace_id IN " + oldest +
                            "; DELETE FROM traces WHERE trace_id IN " + oldest + ";")
                               .c_str());
  if (!s.ok()) {
    (void)Exec(writer_, "ROLLBACK");
    return s;
  }
  evicted_size_->Add(static_cast<uint64_t>(sqlite3_changes(writer_)));
  return Exec(writer_, "COMMIT");
}

Status TraceStore::Prune(uint64_t now_ns) {
  last_prune_ns_ = now_ns;
  // Age: traces whose last span ended before the horizon.
  if (options_.max_age_ns > 0 && now_ns > options_.max_age_ns) {
    const std::string old =
        "(SELECT trace_id FROM traces WHERE end_ns < " + std::to_string(now_ns - options_.max_age_ns) + ")";
    RETURN_IF_ERROR(Exec(writer_, "BEGIN IMMEDIATE"));
    Status s =
        Exec(writer_, ("DELETE FROM spans WHERE trace_id IN " + old + "; DELETE FROM traces WHERE end_ns < " +
                       std::to_string(now_ns - options_.max_age_ns) + ";")
                          .c_str());
    if (!s.ok()) {
      (void)Exec(writer_, "ROLLBACK");
      return s;
    }
    evicted_age_->Add(static_cast<uint64_t>(sqlite3_changes(writer_)));
    RETURN_IF_ERROR(Exec(writer_, "COMMIT"));
  }
  // Size: the oldest traces go, a tenth of them at a time, until under 90 % of the bound.
  for (int round = 0; round < 64; ++round) {
    Stmt used(writer_,
              "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM "
              "pragma_freelist_count()), (SELECT page_size FROM pragma_page_size()), (SELECT count(*) FROM "
              "traces)");
    if (!used.ok() || used.Step() != SQLITE_ROW) return used.Error("page count");
    const uint64_t bytes = static_cast<uint64_t>(used.Int(0)) * static_cast<uint64_t>(used.Int(1));
    const auto traces = static_cast<uint64_t>(used.Int(2));
    bytes_gauge_->Set(bytes);
    const uint64_t target = round == 0 ? options_.max_bytes : options_.max_bytes / 10 * 9;
    if (bytes <= target || traces == 0) break;
    RETURN_IF_ERROR(EvictOldest(static_cast<size_t>(std::max<uint64_t>(1, traces / 10))));
  }
  // Resources no span refers to any more (the cache forgets them too).
  RETURN_IF_ERROR(
      Exec(writer_, "DELETE FROM resources WHERE id NOT IN (SELECT DISTINCT resource_id FROM spans)"));
  if (sqlite3_changes(writer_) > 0) resource_ids_.clear();
  // Give back what the file holds beyond the bound's worth of free pages, a little at a
  // time (incremental_vacuum moves pages; a few hundred at once keeps the write short).
  return Exec(writer_, "PRAGMA incremental_vacuum(512)");
}

Result<std::vector<std::string>> TraceStore::Services() {
  std::lock_guard lock(read_mu_);
  Stmt s(reader_, "SELECT DISTINCT service FROM spans ORDER BY service");
  if (!s.ok()) return s.Error("services");
  std::vector<std::string> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(s.Text(0));
  if (rc != SQLITE_DONE) return s.Error("services");
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> TraceStore::Operations(const std::string& service) {
  std::lock_guard lock(read_mu_);
  Stmt s(reader_, "SELECT DISTINCT name, kind FROM spans WHERE service = ? ORDER BY name, kind");
  if (!s.ok()) return s.Error("operations");
  s.Bind(1, service);
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.emplace_back(s.Text(0), std::string(model::SpanKindName(static_cast<model::SpanKind>(s.Int(1)))));
  }
  if (rc != SQLITE_DONE) return s.Error("operations");
  return out;
}

namespace {

TraceSummary ReadSummary(const Stmt& s, int c) {
  TraceSummary t;
  const std::string_view id = s.Blob(c);
  if (id.size() == 16) std::copy(id.begin(), id.end(), t.trace_id.bytes.begin());
  t.start_ns = static_cast<uint64_t>(s.Int(c + 1));
  t.end_ns = static_cast<uint64_t>(s.Int(c + 2));
  t.root_service = s.Text(c + 3);
  t.root_name = s.Text(c + 4);
  t.span_count = static_cast<uint64_t>(s.Int(c + 5));
  t.error_count = static_cast<uint64_t>(s.Int(c + 6));
  return t;
}

constexpr const char* kSummaryColumns =
    "t.trace_id, t.start_ns, t.end_ns, t.root_service, t.root_name, t.span_count, t.error_count";

}  // namespace

Result<std::vector<TraceSummary>> TraceStore::FindTraces(const TraceQuery& q) {
  // One span must meet every span condition (Jaeger's rule); the trace's own columns
  // answer error_only.
  std::string span_where;
  std::vector<std::string> texts;
  std::vector<int64_t> ints;
  // Parameters are numbered: texts first (?1..), then ints.
  auto text = [&](const std::string& v) {
    texts.push_back(v);
    return "?" + std::to_string(texts.size());
  };
  std::vector<std::pair<std::string, int64_t>> int_conds;
  if (!q.service.empty()) span_where += " AND s.service = " + text(q.service);
  if (!q.operation.empty()) span_where += " AND s.name = " + text(q.operation);
  for (const auto& [k, v] : q.attributes) {
    // Not indexed: the other conditions narrow the spans first, and an index on every
    // attribute cost more per span written than the whole rest of the store (bench/).
    span_where += " AND instr(s.attrs, " + text("\n" + k + "=" + v + "\n") + ") > 0";
  }
  if (q.min_duration_ns) int_conds.emplace_back("s.duration_ns >= ", static_cast<int64_t>(q.min_duration_ns));
  if (q.max_duration_ns) int_conds.emplace_back("s.duration_ns <= ", static_cast<int64_t>(q.max_duration_ns));
  if (q.start_min_ns) int_conds.emplace_back("s.start_ns >= ", static_cast<int64_t>(q.start_min_ns));
  if (q.start_max_ns) int_conds.emplace_back("s.start_ns <= ", static_cast<int64_t>(q.start_max_ns));
  for (const auto& [cond, v] : int_conds) {
    ints.push_back(v);
    span_where += " AND " + cond + "?" + std::to_string(100 + ints.size());
  }
  std::string sql = std::string("SELECT ") + kSummaryColumns + " FROM traces t WHERE 1=1";
  if (!span_where.empty()) {
    sql += " AND t.trace_id IN (SELECT s.trace_id FROM spans s WHERE 1=1" + span_where + ")";
  }
  if (q.error_only) sql += " AND t.error_count > 0";
  sql += " ORDER BY t.start_ns DESC LIMIT " + std::to_string(std::clamp<size_t>(q.limit, 1, kMaxLimit));

  std::lock_guard lock(read_mu_);
  Stmt s(reader_, sql);
  if (!s.ok()) return s.Error("search");
  for (size_t i = 0; i < texts.size(); ++i) s.Bind(static_cast<int>(i + 1), texts[i]);
  for (size_t i = 0; i < ints.size(); ++i) s.Bind(static_cast<int>(101 + i), ints[i]);
  std::vector<TraceSummary> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadSummary(s, 0));
  if (rc != SQLITE_DONE) return s.Error("search");
  return out;
}

Result<std::optional<TraceSummary>> TraceStore::GetSummary(const model::TraceId& id) {
  std::lock_guard lock(read_mu_);
  Stmt s(reader_, std::string("SELECT ") + kSummaryColumns + " FROM traces t WHERE t.trace_id = ?");
  if (!s.ok()) return s.Error("trace");
  s.BindBlob(1, id.bytes.data(), 16);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<TraceSummary>();
  if (rc != SQLITE_ROW) return s.Error("trace");
  return std::optional<TraceSummary>(ReadSummary(s, 0));
}

Result<std::vector<model::Span>> TraceStore::GetTrace(const model::TraceId& id) {
  std::lock_guard lock(read_mu_);
  Stmt s(reader_,
         "SELECT s.body, s.resource_id, r.body FROM spans s LEFT JOIN resources r ON r.id = s.resource_id "
         "WHERE s.trace_id = ? ORDER BY s.start_ns, s.rowid");
  if (!s.ok()) return s.Error("trace");
  s.BindBlob(1, id.bytes.data(), 16);
  std::vector<model::Span> out;
  // Spans of one process share one Resource, as they did when written.
  std::map<int64_t, std::shared_ptr<const model::Resource>> resources;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    model::Span span;
    if (!DecodeSpan(s.Blob(0), &span)) continue;  // not ours: skipped rather than guessed
    const int64_t rid = s.Int(1);
    auto it = resources.find(rid);
    if (it == resources.end()) {
      auto r = std::make_shared<model::Resource>();
      DecodeResource(s.Blob(2), r.get());
      it = resources.emplace(rid, std::move(r)).first;
    }
    span.resource = it->second;
    out.push_back(std::move(span));
  }
  if (rc != SQLITE_DONE) return s.Error("trace");
  return out;
}

Result<std::vector<TraceStore::TailRow>> TraceStore::Tail(int64_t after_seq, size_t limit) {
  std::lock_guard lock(read_mu_);
  // With no starting point, the last `limit` spans.
  Stmt s(reader_, after_seq < 0
                      ? "SELECT * FROM (SELECT rowid, trace_id, span_id, service, name, kind, start_ns, "
                        "duration_ns, status FROM spans ORDER BY rowid DESC LIMIT ?2) ORDER BY rowid"
                      : "SELECT rowid, trace_id, span_id, service, name, kind, start_ns, duration_ns, "
                        "status FROM spans WHERE rowid > ?1 ORDER BY rowid LIMIT ?2");
  if (!s.ok()) return s.Error("tail");
  s.Bind(1, after_seq);
  s.Bind(2, static_cast<int64_t>(std::clamp<size_t>(limit, 1, kMaxLimit)));
  std::vector<TailRow> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    TailRow r;
    r.seq = s.Int(0);
    const std::string_view t = s.Blob(1), sp = s.Blob(2);
    if (t.size() == 16) std::copy(t.begin(), t.end(), r.trace_id.bytes.begin());
    if (sp.size() == 8) std::copy(sp.begin(), sp.end(), r.span_id.bytes.begin());
    r.service = s.Text(3);
    r.name = s.Text(4);
    r.kind = static_cast<model::SpanKind>(s.Int(5));
    r.start_ns = static_cast<uint64_t>(s.Int(6));
    r.duration_ns = static_cast<uint64_t>(s.Int(7));
    r.status = static_cast<model::StatusCode>(s.Int(8));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return s.Error("tail");
  return out;
}

Result<std::vector<Dependency>> TraceStore::Dependencies(uint64_t from_ns, uint64_t to_ns) {
  std::lock_guard lock(read_mu_);
  Stmt s(reader_,
         "SELECT p.service, c.service, count(*), sum(c.status = 2) FROM spans c "
         "JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_id "
         "WHERE c.start_ns >= ?1 AND c.start_ns <= ?2 AND p.service <> c.service "
         "GROUP BY p.service, c.service ORDER BY p.service, c.service");
  if (!s.ok()) return s.Error("dependencies");
  s.Bind(1, static_cast<int64_t>(from_ns));
  s.Bind(2, static_cast<int64_t>(std::min<uint64_t>(to_ns, INT64_MAX)));
  std::vector<Dependency> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back({s.Text(0), s.Text(1), static_cast<uint64_t>(s.Int(2)), static_cast<uint64_t>(s.Int(3))});
  }
  if (rc != SQLITE_DONE) return s.Error("dependencies");
  return out;
}

}  // namespace kspan::store
