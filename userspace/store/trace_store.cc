#include "store/trace_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "common/log.h"
#include "exporters/otlp_proto.h"
#include "store/span_codec.h"

namespace kspan::store {
namespace {

// Version 2: the tables in trace_store.h. Version 1 keyed traces and the spans' trace
// index by the random trace id itself, so every span dirtied a random page of two B-trees
// (about 20 us a span); a version 1 file is moved aside when found (Init).
constexpr int kSchemaVersion = 2;
constexpr size_t kMaxCachedResources = 4096;
constexpr size_t kMaxCachedTraces = 65536;
constexpr uint64_t kPruneEveryNs = 1'000'000'000;
constexpr size_t kMaxLimit = 1000;

// Rows are in arrival order (rowid), so what a write touches is the tail of each table and
// of the indexes keyed by time; only traces_key takes a random key, once per trace.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS traces(
  id INTEGER PRIMARY KEY, trace_key INTEGER, trace_id BLOB, start_ns INTEGER, end_ns INTEGER,
  root_service TEXT, root_name TEXT, root_is_root INTEGER, span_count INTEGER, error_count INTEGER);
CREATE INDEX IF NOT EXISTS traces_key ON traces(trace_key);
CREATE INDEX IF NOT EXISTS traces_start ON traces(start_ns);
CREATE TABLE IF NOT EXISTS resources(id INTEGER PRIMARY KEY, service TEXT, body BLOB);
CREATE TABLE IF NOT EXISTS spans(
  trace_row INTEGER, span_id BLOB, parent_id BLOB, service TEXT, name TEXT, kind INTEGER,
  start_ns INTEGER, duration_ns INTEGER, status INTEGER, resource_id INTEGER, attrs TEXT, body BLOB);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_row);
CREATE INDEX IF NOT EXISTS spans_service ON spans(service, name, start_ns);
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
  // Not copied: the bytes must stay as they are until the statement is Reset (which
  // clears the bindings), so only for a Step and Reset that follow at once.
  void BindUncopied(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void BindUncopiedBlob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
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

// Appends "key=value\n" of an indexed attribute (strings of at most kMaxIndexedValue
// bytes, integers, booleans) to `out`; others are not indexed.
void AppendIndexed(const model::Attribute& a, std::string* out) {
  const std::string_view key = a.key;
  if (const auto* s = std::get_if<std::string>(&a.value)) {
    if (s->size() > kMaxIndexedValue) return;
    out->append(key).append(1, '=').append(*s) += '\n';
  } else if (const auto* i = std::get_if<int64_t>(&a.value)) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, *i);
    out->append(key).append(1, '=').append(digits, end) += '\n';
  } else if (const auto* b = std::get_if<bool>(&a.value)) {
    out->append(key).append(*b ? "=true\n" : "=false\n");
  }
}

// The traces_key column: the trace id folded to 64 bits (W3C ids are random on the right,
// and a few producers make the left half random only).
int64_t TraceKey(const model::TraceId& id) {
  uint64_t lo, hi;
  std::memcpy(&hi, id.bytes.data(), 8);
  std::memcpy(&lo, id.bytes.data() + 8, 8);
  return static_cast<int64_t>(lo ^ hi);
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
  unreadable_spans_ = registry->GetCounter("kspan_store_rows_unreadable_total", {{"kind", "span"}});
  unreadable_resources_ = registry->GetCounter("kspan_store_rows_unreadable_total", {{"kind", "resource"}});
}

struct TraceStore::WriteStatements {
  explicit WriteStatements(sqlite3* db)
      : span_ins(db,
                 "INSERT INTO spans(trace_row, span_id, parent_id, service, name, kind, start_ns, "
                 "duration_ns, status, resource_id, attrs, body) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"),
        find(db, "SELECT id FROM traces WHERE trace_key = ?1 AND trace_id = ?2"),
        trace_ins(db,
                  "INSERT INTO traces(trace_key, trace_id, start_ns, end_ns, root_service, root_name, "
                  "root_is_root, span_count, error_count) VALUES(?1,?2,?3,?4,?5,?6,0,0,0)"),
        // One update per trace a batch touches. The root wins the trace's name; until it
        // comes, the earliest span holds it. (Right-hand sides read the row as it was.)
        trace_up(db,
                 "UPDATE traces SET "
                 "root_service = CASE WHEN root_is_root = 0 AND (?6 = 1 OR ?2 < start_ns) THEN ?4 "
                 "ELSE root_service END, "
                 "root_name = CASE WHEN root_is_root = 0 AND (?6 = 1 OR ?2 < start_ns) THEN ?5 "
                 "ELSE root_name END, "
                 "root_is_root = max(root_is_root, ?6), start_ns = min(start_ns, ?9), "
                 "end_ns = max(end_ns, ?3), "
                 "span_count = span_count + ?7, error_count = error_count + ?8 WHERE id = ?1"),
        resource_ins(db, "INSERT INTO resources(service, body) VALUES(?, ?)") {}
  bool ok() const {
    return span_ins.ok() && find.ok() && trace_ins.ok() && trace_up.ok() && resource_ins.ok();
  }
  // A write that failed midway may have left one of them stepped and bound.
  void ResetAll() {
    for (Stmt* s : {&span_ins, &find, &trace_ins, &trace_up, &resource_ins}) s->Reset();
  }
  Stmt span_ins, find, trace_ins, trace_up, resource_ins;
};

TraceStore::~TraceStore() {
  write_stmts_.reset();
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

Result<int64_t> TraceStore::SchemaVersion() {
  // 0: an empty file, ours to create. A non-empty database without a version is not ours.
  Stmt v(writer_, "PRAGMA user_version");
  if (!v.ok() || v.Step() != SQLITE_ROW) {
    return Unavailable("trace store: " + options_.path + " is not a SQLite database: " +
                       sqlite3_errmsg(writer_) + " (move it away or set --store-path)");
  }
  const int64_t version = v.Int(0);
  Stmt t(writer_, "SELECT count(*) FROM sqlite_master");
  const bool empty = t.ok() && t.Step() == SQLITE_ROW && t.Int(0) == 0;
  if (version == 0 && !empty) {
    return Unavailable("trace store: " + options_.path +
                       " is a database kspan did not write (move it away or set --store-path)");
  }
  return version;
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
  // A file of an earlier kspan schema is moved aside (kept for a person to look at, never
  // read as if it were ours); a newer one, or a database that is not ours, is refused.
  ASSIGN_OR_RETURN(const int64_t version, SchemaVersion());
  if (version > 0 && version < kSchemaVersion) {
    sqlite3_close(writer_);
    writer_ = nullptr;
    const std::string aside = options_.path + ".v" + std::to_string(version);
    std::error_code ec;
    std::filesystem::rename(options_.path, aside, ec);
    if (ec) {
      return Unavailable("trace store: cannot move " + options_.path + " (schema version " +
                         std::to_string(version) + ") aside: " + ec.message() + " (set --store-path)");
    }
    // Its log goes with it, under the name SQLite looks for beside the moved file.
    std::filesystem::rename(options_.path + "-wal", aside + "-wal", ec);
    std::filesystem::remove(options_.path + "-shm", ec);
    log::Info("trace store: a file of an earlier kspan was moved aside; traces start anew",
              {{"path", options_.path}, {"moved_to", aside}, {"schema_version", std::to_string(version)}});
    ASSIGN_OR_RETURN(writer_, OpenDb(options_.path));
    ASSIGN_OR_RETURN(const int64_t fresh, SchemaVersion());
    if (fresh != 0) return Unavailable("trace store: " + options_.path + " reappeared while moving it aside");
  } else if (version != 0 && version != kSchemaVersion) {
    return Unavailable("trace store: " + options_.path + " has schema version " + std::to_string(version) +
                       ", this kspan writes " + std::to_string(kSchemaVersion) +
                       " (move the file away or set --store-path)");
  }
  // auto_vacuum must be set before the first table exists; INCREMENTAL keeps the freed
  // pages listed so the file can be shrunk, and they are reused first anyway.
  // The writer's page cache is 4 MiB: writes touch the tails of the tables and indexes
  // and one random leaf of traces_key a trace (about 2 MiB of index for a full 256 MiB
  // store). 16 MiB cost the agent 12 MiB of RSS under load for no CPU kspan-store-bench
  // could tell apart (200,000 spans, three alternating runs each).
  // 16 KiB pages (a new file only; an existing one keeps its size): a commit writes a
  // quarter as many WAL frames, each a pwrite, and the B-trees are shallower.
  // kspan-store-bench, two alternating pairs: 12.8/12.6 -> 8.9/9.3 us a span, and with
  // evictions (--max-mib 64) 16.0/19.6 -> 11.0/12.0; 8 KiB pages gave 12.8/13.0 there.
  RETURN_IF_ERROR(
      Exec(writer_,
           "PRAGMA page_size=16384; PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA "
           "synchronous=NORMAL; "
           "PRAGMA journal_size_limit=8388608; PRAGMA cache_size=-4096; PRAGMA temp_store=MEMORY;"));
  RETURN_IF_ERROR(Exec(writer_, kSchema));
  RETURN_IF_ERROR(Exec(writer_, ("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()));
  ASSIGN_OR_RETURN(reader_, OpenDb(options_.path));
  return Status::Ok();
}

Result<const TraceStore::ResourceRow*> TraceStore::StoredResource(
    const std::shared_ptr<const model::Resource>& r) {
  if (auto it = resource_ids_.find(r); it != resource_ids_.end()) return &it->second;
  if (resource_ids_.size() >= kMaxCachedResources) resource_ids_.clear();
  std::string body;
  if (r) EncodeResource(*r, &body);
  std::string service = ServiceOf(r.get());
  Stmt& ins = write_stmts_->resource_ins;
  ins.Bind(1, service);
  ins.BindBlob(2, body.data(), body.size());
  if (ins.Step() != SQLITE_DONE) return ins.Error("insert resource");
  ins.Reset();
  const int64_t id = sqlite3_last_insert_rowid(writer_);
  ++resources_since_sweep_;
  return &resource_ids_.emplace(r, ResourceRow{id, std::move(service)}).first->second;
}

Status TraceStore::Write(std::span<const model::Span> spans, uint64_t now_ns) {
  if (spans.empty()) return Status::Ok();
  RETURN_IF_ERROR(Exec(writer_, "BEGIN IMMEDIATE"));
  if (Status s = WriteSpans(spans); !s.ok()) {
    (void)Exec(writer_, "ROLLBACK");
    // Rows inserted in this transaction are gone: forget their ids.
    resource_ids_.clear();
    trace_rows_.clear();
    return s;
  }
  RETURN_IF_ERROR(Exec(writer_, "COMMIT"));
  if (now_ns >= last_prune_ns_ + kPruneEveryNs) return Prune(now_ns);
  return Status::Ok();
}

Status TraceStore::WriteSpans(std::span<const model::Span> spans) {
  if (!write_stmts_) {
    auto stmts = std::make_unique<WriteStatements>(writer_);
    if (!stmts->ok()) return SqlError(writer_, "prepare");
    write_stmts_ = std::move(stmts);
  }
  write_stmts_->ResetAll();
  Stmt& span_ins = write_stmts_->span_ins;
  Stmt& find = write_stmts_->find;
  Stmt& trace_ins = write_stmts_->trace_ins;
  Stmt& trace_up = write_stmts_->trace_up;

  // What this batch adds to each trace it touches, keyed by the trace's row.
  struct Touched {
    uint64_t start = UINT64_MAX, end = 0, count = 0, errors = 0;
    const model::Span* root = nullptr;  // the batch's candidate for the trace's name
  };
  std::unordered_map<int64_t, Touched> touched;
  WriteBuffer body;
  std::string attrs;
  for (const model::Span& s : spans) {
    ASSIGN_OR_RETURN(const ResourceRow* resource, StoredResource(s.resource));
    const std::string_view service = resource->service;
    const auto start = static_cast<int64_t>(s.start_time_unix_nano);
    const uint64_t end = std::max(s.end_time_unix_nano, s.start_time_unix_nano);

    int64_t row = 0;
    if (auto it = trace_rows_.find(s.trace_id); it != trace_rows_.end()) {
      row = it->second;
    } else {
      const int64_t key = TraceKey(s.trace_id);
      find.Bind(1, key);
      find.BindBlob(2, s.trace_id.bytes.data(), 16);
      const int rc = find.Step();
      if (rc == SQLITE_ROW) {
        row = find.Int(0);
      } else if (rc == SQLITE_DONE) {
        trace_ins.Bind(1, key);
        trace_ins.BindBlob(2, s.trace_id.bytes.data(), 16);
        trace_ins.Bind(3, start);
        trace_ins.Bind(4, static_cast<int64_t>(end));
        trace_ins.Bind(5, service);
        trace_ins.Bind(6, s.name);
        if (trace_ins.Step() != SQLITE_DONE) return trace_ins.Error("insert trace");
        trace_ins.Reset();
        row = sqlite3_last_insert_rowid(writer_);
      } else {
        return find.Error("find trace");
      }
      find.Reset();
      if (trace_rows_.size() >= kMaxCachedTraces) trace_rows_.clear();
      trace_rows_.emplace(s.trace_id, row);
    }
    Touched& t = touched[row];
    t.start = std::min<uint64_t>(t.start, s.start_time_unix_nano);
    t.end = std::max(t.end, end);
    ++t.count;
    if (s.status_code == model::StatusCode::kError) ++t.errors;
    if (!t.root || (t.root->parent_span_id.IsValid() &&
                    (!s.parent_span_id.IsValid() || s.start_time_unix_nano < t.root->start_time_unix_nano))) {
      t.root = &s;
    }

    body.Clear();
    EncodeSpan(s, &body);
    span_ins.Bind(1, row);
    span_ins.BindBlob(2, s.span_id.bytes.data(), 8);
    if (s.parent_span_id.IsValid()) span_ins.BindBlob(3, s.parent_span_id.bytes.data(), 8);
    span_ins.BindUncopied(4, service);
    span_ins.BindUncopied(5, s.name);
    span_ins.Bind(6, static_cast<int64_t>(s.kind));
    span_ins.Bind(7, start);
    span_ins.Bind(8, static_cast<int64_t>(end - s.start_time_unix_nano));
    span_ins.Bind(9, static_cast<int64_t>(s.status_code));
    span_ins.Bind(10, resource->id);
    // "\nkey=value\n..." of the searchable attributes: a search looks for "\nkey=value\n".
    attrs.assign(1, '\n');
    for (const model::Attribute& a : s.attributes) AppendIndexed(a, &attrs);
    span_ins.BindUncopied(11, attrs);
    span_ins.BindUncopiedBlob(12, body.view());
    if (span_ins.Step() != SQLITE_DONE) return span_ins.Error("insert span");
    span_ins.Reset();
  }
  for (const auto& [row, t] : touched) {
    trace_up.Bind(1, row);
    trace_up.Bind(2, static_cast<int64_t>(t.root->start_time_unix_nano));
    trace_up.Bind(3, static_cast<int64_t>(t.end));
    trace_up.Bind(4, ServiceOf(t.root->resource.get()));
    trace_up.Bind(5, t.root->name);
    trace_up.Bind(6, int64_t{t.root->parent_span_id.IsValid() ? 0 : 1});
    trace_up.Bind(7, static_cast<int64_t>(t.count));
    trace_up.Bind(8, static_cast<int64_t>(t.errors));
    trace_up.Bind(9, static_cast<int64_t>(t.start));
    if (trace_up.Step() != SQLITE_DONE) return trace_up.Error("update trace");
    trace_up.Reset();
  }
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

Result<uint64_t> TraceStore::DeleteTraces(const std::string& which) {
  // `which` selects traces' ids; it is read twice within one transaction, so both
  // statements see the same traces.
  RETURN_IF_ERROR(Exec(writer_, "BEGIN IMMEDIATE"));
  Status s = Exec(writer_, ("DELETE FROM spans WHERE trace_row IN (" + which +
                            "); DELETE FROM traces WHERE id IN (" + which + ");")
                               .c_str());
  if (!s.ok()) {
    (void)Exec(writer_, "ROLLBACK");
    return s;
  }
  const auto deleted = static_cast<uint64_t>(sqlite3_changes(writer_));
  RETURN_IF_ERROR(Exec(writer_, "COMMIT"));
  // A span arriving later for a deleted trace must make a new row, not join a gone one.
  if (deleted > 0) trace_rows_.clear();
  return deleted;
}

Status TraceStore::Prune(uint64_t now_ns) {
  last_prune_ns_ = now_ns;
  uint64_t deleted = 0;
  // Age: traces whose last span ended before the horizon (they started before it too,
  // which the start index finds).
  if (options_.max_age_ns > 0 && now_ns > options_.max_age_ns) {
    const std::string horizon = std::to_string(now_ns - options_.max_age_ns);
    ASSIGN_OR_RETURN(const uint64_t n, DeleteTraces("SELECT id FROM traces WHERE start_ns < " + horizon +
                                                    " AND end_ns < " + horizon));
    evicted_age_->Add(n);
    deleted += n;
  }
  // Size: the oldest traces go, a tenth of them at a time, until under 90 % of the bound.
  for (int round = 0; round < 64; ++round) {
    Stmt used(writer_,
              "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM "
              "pragma_freelist_count()), (SELECT page_size FROM pragma_page_size())");
    if (!used.ok() || used.Step() != SQLITE_ROW) return used.Error("page count");
    const uint64_t bytes = static_cast<uint64_t>(used.Int(0)) * static_cast<uint64_t>(used.Int(1));
    bytes_gauge_->Set(bytes);
    const uint64_t target = round == 0 ? options_.max_bytes : options_.max_bytes / 10 * 9;
    if (bytes <= target) break;
    // Counted only when over the bound: count(*) reads a whole index.
    Stmt count(writer_, "SELECT count(*) FROM traces");
    if (!count.ok() || count.Step() != SQLITE_ROW) return count.Error("count traces");
    const auto traces = static_cast<uint64_t>(count.Int(0));
    if (traces == 0) break;
    ASSIGN_OR_RETURN(const uint64_t n, DeleteTraces("SELECT id FROM traces ORDER BY start_ns LIMIT " +
                                                    std::to_string(std::max<uint64_t>(1, traces / 10))));
    evicted_size_->Add(n);
    deleted += n;
  }
  if (deleted == 0) return Status::Ok();
  // Resources no span refers to any more (the cache forgets them too): a scan of every
  // span (~0.17 s at 200,000 spans), so only once kResourceSweepEvery resources were stored
  // since the last: a host's processes are few, and an orphaned row is a few hundred bytes.
  if (resources_since_sweep_ >= kResourceSweepEvery) {
    RETURN_IF_ERROR(
        Exec(writer_, "DELETE FROM resources WHERE id NOT IN (SELECT DISTINCT resource_id FROM spans)"));
    if (sqlite3_changes(writer_) > 0) resource_ids_.clear();
    resources_since_sweep_ = 0;
  }
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
  // A span in the time range means its trace overlaps the range: the start index narrows.
  if (q.start_max_ns) sql += " AND t.start_ns <= ?" + std::to_string(100 + ints.size() + 1);
  if (q.start_max_ns) ints.push_back(static_cast<int64_t>(q.start_max_ns));
  if (q.start_min_ns) sql += " AND t.end_ns >= ?" + std::to_string(100 + ints.size() + 1);
  if (q.start_min_ns) ints.push_back(static_cast<int64_t>(q.start_min_ns));
  if (!span_where.empty() && !q.service.empty()) {
    // By service: its index finds the spans.
    sql += " AND t.id IN (SELECT s.trace_row FROM spans s WHERE 1=1" + span_where + ")";
  } else if (!span_where.empty()) {
    // Else newest traces first, each checked through its spans, until the limit is met.
    sql += " AND EXISTS (SELECT 1 FROM spans s WHERE s.trace_row = t.id" + span_where + ")";
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
  Stmt s(reader_, std::string("SELECT ") + kSummaryColumns +
                      " FROM traces t WHERE t.trace_key = ?1 AND t.trace_id = ?2 ORDER BY t.id LIMIT 1");
  if (!s.ok()) return s.Error("trace");
  s.Bind(1, TraceKey(id));
  s.BindBlob(2, id.bytes.data(), 16);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<TraceSummary>();
  if (rc != SQLITE_ROW) return s.Error("trace");
  return std::optional<TraceSummary>(ReadSummary(s, 0));
}

Result<std::vector<model::Span>> TraceStore::GetTrace(const model::TraceId& id) {
  std::lock_guard lock(read_mu_);
  Stmt s(reader_,
         "SELECT s.body, s.resource_id, r.body FROM spans s LEFT JOIN resources r ON r.id = s.resource_id "
         "WHERE s.trace_row IN (SELECT id FROM traces WHERE trace_key = ?1 AND trace_id = ?2) "
         "ORDER BY s.start_ns, s.rowid");
  if (!s.ok()) return s.Error("trace");
  s.Bind(1, TraceKey(id));
  s.BindBlob(2, id.bytes.data(), 16);
  std::vector<model::Span> out;
  // Spans of one process share one Resource, as they did when written.
  std::map<int64_t, std::shared_ptr<const model::Resource>> resources;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    model::Span span;
    if (!DecodeSpan(s.Blob(0), &span)) {  // not ours: skipped rather than guessed, counted
      unreadable_spans_->Add(1);
      continue;
    }
    const int64_t rid = s.Int(1);
    auto it = resources.find(rid);
    if (it == resources.end()) {
      auto r = std::make_shared<model::Resource>();
      if (!DecodeResource(s.Blob(2), r.get())) unreadable_resources_->Add(1);
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
  Stmt s(reader_,
         after_seq < 0
             ? "SELECT * FROM (SELECT s.rowid, t.trace_id, s.span_id, s.service, s.name, s.kind, "
               "s.start_ns, s.duration_ns, s.status FROM spans s JOIN traces t ON t.id = s.trace_row "
               "ORDER BY s.rowid DESC LIMIT ?2) ORDER BY 1"
             : "SELECT s.rowid, t.trace_id, s.span_id, s.service, s.name, s.kind, s.start_ns, "
               "s.duration_ns, s.status FROM spans s JOIN traces t ON t.id = s.trace_row "
               "WHERE s.rowid > ?1 ORDER BY s.rowid LIMIT ?2");
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
         "JOIN spans p ON p.trace_row = c.trace_row AND p.span_id = c.parent_id "
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
