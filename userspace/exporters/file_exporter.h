// `file:PATH` — OTLP/JSON lines: each exported batch is appended to PATH as one
// TracesData JSON object on one line (otlp_json.h), the format of the OpenTelemetry
// Collector's file exporter, so `otelcol`'s otlpjsonfile receiver, jq, or any OTLP tool
// reads it.
//
// The file is opened once, at construction, with O_APPEND|O_CREAT (mode 0644, then the
// umask): several writers never interleave inside a line, and an existing file is
// continued, never truncated. Each batch is one write(2) of a complete line (looping on
// short writes), so there is no user-space buffer: what Export returned success for is
// in the kernel's page cache, and a reader tailing the file never sees half a line
// unless the disk fills. ForceFlush does not fsync: surviving a power cut is not worth a
// disk flush per batch here.
//
// Bounded on disk: once the file would pass `max_bytes`, it is renamed to PATH.1
// (replacing an older PATH.1) and a new PATH is started, so kspan never holds more than
// about 2 x max_bytes of spans on disk. Only a regular file is rotated (not /dev/null, a
// FIFO or a terminal).
//
// Replacing PATH.1 deletes the spans in it: that is data loss, so it is counted and
// logged (one warning per rotation that deletes a file: path, spans, bytes).
//
//   kspan_file_rotations_total{path}       PATH renamed to PATH.1
//   kspan_file_files_deleted_total{path}   an older PATH.1 replaced by a rotation
//   kspan_file_bytes_deleted_total{path}   its size
//   kspan_file_spans_deleted_total{path}   the spans in it this process wrote (each batch
//                                          is counted into the file it went to)
//
// A file left by an earlier run (PATH continued at start, then rotated) holds spans this
// process did not count: its bytes are counted, its spans are not, and the log line says
// `"earlier_run":true`.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/metrics.h"
#include "common/status.h"
#include "exporters/exporter.h"

namespace kspan::exporters {

class FileExporter final : public SpanExporter {
 public:
  static constexpr uint64_t kDefaultMaxBytes = 256ull << 20;

  // Opens (creating if needed) `path` for appending. The error names the path and why.
  // `registry` may be null (private counters); otherwise it must outlive the exporter.
  static Result<std::unique_ptr<FileExporter>> Create(std::string_view path,
                                                      uint64_t max_bytes = kDefaultMaxBytes,
                                                      metrics::Registry* registry = nullptr);
  ~FileExporter() override;

  FileExporter(const FileExporter&) = delete;
  FileExporter& operator=(const FileExporter&) = delete;

  std::string_view Name() const noexcept override { return "file"; }
  ExportResult Export(std::span<const model::Span> batch) noexcept override;
  bool ForceFlush() noexcept override;
  void Shutdown() noexcept override;

  const std::string& path() const { return path_; }
  uint64_t rotations() const { return rotations_total_->Value(); }

 private:
  FileExporter(std::string path, int fd, uint64_t size, uint64_t max_bytes, metrics::Registry* registry);
  // Renames the full file to PATH.1 and opens a fresh PATH. False if that failed (the
  // exporter then keeps appending to the file it has).
  bool Rotate() noexcept;

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;  // bytes in the current file
  uint64_t max_bytes_;
  uint64_t spans_ = 0;         // spans this process wrote to the current file
  uint64_t backup_spans_ = 0;  // ... to PATH.1
  bool earlier_run_ = false;   // the current file held data when it was opened
  bool backup_earlier_run_ = false;
  WriteBuffer line_;  // reused between batches: one allocation at the high-water mark

  std::unique_ptr<metrics::Registry> own_registry_;
  metrics::Counter* rotations_total_;
  metrics::Counter* files_deleted_;
  metrics::Counter* bytes_deleted_;
  metrics::Counter* spans_deleted_;
};

}  // namespace kspan::exporters
