// The embedded trace store: recent spans on disk in one SQLite file, bounded by size and
// age, searchable by service, span name, status, duration, time and attribute. It is
// what the local web UI and the Jaeger query API read (ui/), and what StoreSink
// (store_sink.h) writes from its own thread.
//
// Tables (schema version in PRAGMA user_version; another version is moved aside, never
// read):
//
//   traces     id (rowid: arrival order) │ trace_key (the id folded to 64 bits, indexed)
//              trace_id │ start_ns end_ns │ root_service root_name (the span without a
//              parent, else the earliest) │ span_count error_count
//   spans      trace_row (traces.id) span_id parent_id │ service name kind start_ns
//              duration_ns status
//              │ resource_id │ body: the span as an OTLP protobuf Span (otlp_proto.h)
//              │ attrs: "\nkey=value\n..." of its string, int and bool attributes (values
//              of at most kMaxIndexedValue bytes), for attribute search (not indexed)
//   resources  id │ service │ body: an OTLP protobuf Resource
//
// Cost. Rows go in arrival order, and a trace's row is found through a cache of recent
// traces, so a span's write touches the tail of each table and index; the only random
// B-tree insert is traces_key, once per trace (bench/README.md, section store).
//
// Bounds. After each write the store checks, at most once a second, the bytes the
// database holds ((page_count - freelist_count) x page_size): over max_bytes, it deletes
// the oldest traces (by start) until it is under 90 % of it; SQLite reuses the freed
// pages, so the file stays near max_bytes. Traces whose last span ended more than max_age
// ago are deleted on the same check. WAL mode with journal_size_limit keeps the log file
// small. Deletions are counted (kspan_store_traces_evicted_total{reason=size|age}).
//
// Threading: Write from one thread at a time (the sink's); the query methods from any
// thread (a second connection, serialised by a mutex; WAL lets it read while a write is
// in progress). Failure: a Status, never an exception; a failed write rolls back whole.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "model/span.h"

struct sqlite3;

namespace kspan::store {

struct StoreOptions {
  std::string path;                                    // the database file; its folder is created
  uint64_t max_bytes = uint64_t{256} << 20;            // 256 MiB: a laptop's share
  uint64_t max_age_ns = 24ull * 3600 * 1'000'000'000;  // a day
};

// Values longer than this are not indexed for attribute search (a URL or a query text
// can be long; they are still in the span's body).
inline constexpr size_t kMaxIndexedValue = 256;

// A trace as lists show it.
struct TraceSummary {
  model::TraceId trace_id;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  std::string root_service;
  std::string root_name;
  uint64_t span_count = 0;
  uint64_t error_count = 0;
};

// What a search asks for. Every condition given must hold for one span of the trace
// (as Jaeger's search does), except `error_only`, which asks for a span with status
// ERROR anywhere in the trace. Times are Unix ns; 0 means no bound.
struct TraceQuery {
  std::string service;
  std::string operation;                                        // a span name
  std::vector<std::pair<std::string, std::string>> attributes;  // key = value, all of them
  uint64_t min_duration_ns = 0;
  uint64_t max_duration_ns = 0;
  uint64_t start_min_ns = 0;  // the span started at or after
  uint64_t start_max_ns = 0;  // ... and at or before
  bool error_only = false;
  size_t limit = 20;  // most recent first; at most 1000
};

// Calls between services, from parent/child spans of different services (Jaeger's
// /api/dependencies).
struct Dependency {
  std::string parent;
  std::string child;
  uint64_t call_count = 0;
  uint64_t error_count = 0;  // child spans with status ERROR
};

class TraceStore {
 public:
  // Opens (creating if needed) the database at options.path. `registry` may be null.
  static Result<std::unique_ptr<TraceStore>> Open(StoreOptions options, metrics::Registry* registry);
  ~TraceStore();
  TraceStore(const TraceStore&) = delete;
  TraceStore& operator=(const TraceStore&) = delete;

  // Writes the spans in one transaction, then applies the bounds if due. `now_ns` is
  // Unix ns, for the age bound. One thread at a time.
  Status Write(std::span<const model::Span> spans, uint64_t now_ns);
  // Applies both bounds now (tests; the sink calls it through Write).
  Status Prune(uint64_t now_ns);

  // Queries: any thread.
  Result<std::vector<std::string>> Services();
  // Span names of `service`, with their kinds (SpanKindName).
  Result<std::vector<std::pair<std::string, std::string>>> Operations(const std::string& service);
  Result<std::vector<TraceSummary>> FindTraces(const TraceQuery& q);
  // Every span of the trace, by start time; empty when it is not (or no longer) there.
  Result<std::vector<model::Span>> GetTrace(const model::TraceId& id);
  Result<std::optional<TraceSummary>> GetSummary(const model::TraceId& id);
  // Spans that started in [from_ns, to_ns].
  Result<std::vector<Dependency>> Dependencies(uint64_t from_ns, uint64_t to_ns);

  // Spans written after `after_seq` (a sequence the store gives each span, increasing),
  // oldest first, at most `limit`: the UI's live tail polls with the last seq it saw.
  struct TailRow {
    int64_t seq = 0;
    model::TraceId trace_id;
    model::SpanId span_id;
    std::string service;
    std::string name;
    model::SpanKind kind = model::SpanKind::kUnspecified;
    uint64_t start_ns = 0;
    uint64_t duration_ns = 0;
    model::StatusCode status = model::StatusCode::kUnset;
  };
  Result<std::vector<TailRow>> Tail(int64_t after_seq, size_t limit);

  // The bytes the database holds (pages in use x page size). Any thread.
  Result<uint64_t> UsedBytes();
  const StoreOptions& options() const { return options_; }

 private:
  TraceStore(StoreOptions options, metrics::Registry* registry);
  Status Init();
  Result<int64_t> SchemaVersion();
  Status WriteSpans(std::span<const model::Span> spans);
  // A resource's row and service.name, stored first if new.
  struct ResourceRow {
    int64_t id = 0;
    std::string service;
  };
  Result<const ResourceRow*> StoredResource(const std::shared_ptr<const model::Resource>& r);
  // The writer's statements, prepared at its first write and kept (preparing them for
  // every batch was a tenth of the writer's time).
  struct WriteStatements;
  // Deletes the traces (and their spans) whose ids `which` selects; how many went.
  Result<uint64_t> DeleteTraces(const std::string& which);

  StoreOptions options_;
  std::unique_ptr<metrics::Registry> own_registry_;
  metrics::Counter* evicted_size_;
  metrics::Counter* evicted_age_;
  metrics::Counter* bytes_gauge_;
  metrics::Counter* unreadable_spans_;
  metrics::Counter* unreadable_resources_;
  sqlite3* writer_ = nullptr;                     // the writing thread only
  std::unique_ptr<WriteStatements> write_stmts_;  // on writer_, finalized before it closes
  std::mutex read_mu_;
  sqlite3* reader_ = nullptr;  // guarded by read_mu_
  // Writer only: resources already stored, by pointer (the shared_ptr keeps the address
  // from being reused by another Resource). At most kMaxCachedResources, then cleared.
  std::map<std::shared_ptr<const model::Resource>, ResourceRow> resource_ids_;
  // Writer only: the rows of traces written recently (at most kMaxCachedTraces, then
  // cleared; cleared too when traces are deleted or a write rolls back).
  std::unordered_map<model::TraceId, int64_t, model::TraceIdHash> trace_rows_;
  uint64_t last_prune_ns_ = 0;
  // Writer only: resources stored since Prune last deleted the orphaned ones.
  static constexpr uint64_t kResourceSweepEvery = 256;
  uint64_t resources_since_sweep_ = 0;
};

}  // namespace kspan::store
