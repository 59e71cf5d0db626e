#include "exporters/file_exporter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "exporters/otlp_json.h"

namespace kspan::exporters {
namespace {

// Writes all of `data`, retrying on EINTR and short writes. False on any other error.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Past this the line buffer is released after a batch, so one burst does not pin its
// high-water mark for the agent's lifetime. 4 MiB holds a 512-span batch (~1.3 KB a span).
constexpr size_t kKeepLineCapacity = 4 << 20;

}  // namespace

Result<std::unique_ptr<FileExporter>> FileExporter::Create(std::string_view path, uint64_t max_bytes,
                                                           metrics::Registry* registry) {
  if (path.empty()) return InvalidArgument("file exporter: empty path (expected file:PATH)");
  std::string p(path);
  const int fd = ::open(p.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    std::string msg = "file exporter: cannot open \"" + p + "\" for appending: " + std::strerror(err);
    if (err == ENOENT) return NotFound(std::move(msg));
    if (err == EACCES || err == EPERM || err == EROFS) return PermissionDenied(std::move(msg));
    return InvalidArgument(std::move(msg));
  }
  struct stat st {};
  const bool stat_ok = fstat(fd, &st) == 0;
  const uint64_t size = stat_ok ? static_cast<uint64_t>(st.st_size) : 0;
  // Only a regular file is rotated: renaming /dev/null, a FIFO or a terminal would put a
  // regular file in its place.
  if (!stat_ok || !S_ISREG(st.st_mode)) max_bytes = 0;
  return std::unique_ptr<FileExporter>(new FileExporter(std::move(p), fd, size, max_bytes, registry));
}

FileExporter::FileExporter(std::string path, int fd, uint64_t size, uint64_t max_bytes,
                           metrics::Registry* registry)
    : path_(std::move(path)), fd_(fd), size_(size), max_bytes_(max_bytes), earlier_run_(size > 0) {
  if (registry == nullptr) {
    own_registry_ = std::make_unique<metrics::Registry>();
    registry = own_registry_.get();
  }
  const metrics::Labels labels = {{"path", path_}};
  rotations_total_ = registry->GetCounter("kspan_file_rotations_total", labels);
  files_deleted_ = registry->GetCounter("kspan_file_files_deleted_total", labels);
  bytes_deleted_ = registry->GetCounter("kspan_file_bytes_deleted_total", labels);
  spans_deleted_ = registry->GetCounter("kspan_file_spans_deleted_total", labels);
}

bool FileExporter::Rotate() noexcept {
  const std::string backup = path_ + ".1";
  // What the rename is about to delete. A race with another writer of PATH.1 only makes
  // the count a little off; nothing else renames or deletes it.
  struct stat old {};
  const bool replaces = ::stat(backup.c_str(), &old) == 0 && S_ISREG(old.st_mode);
  if (::rename(path_.c_str(), backup.c_str()) != 0) return false;
  rotations_total_->Add();
  if (replaces) {
    files_deleted_->Add();
    bytes_deleted_->Add(static_cast<uint64_t>(old.st_size));
    spans_deleted_->Add(backup_spans_);
    log::Warn("file output rotated: the older file and its spans were deleted",
              {{"path", backup},
               {"spans", backup_spans_},
               {"bytes", static_cast<uint64_t>(old.st_size)},
               {"earlier_run", backup_earlier_run_},
               {"max_bytes", max_bytes_}});
  }
  // The current file is PATH.1 now, whether or not a new PATH can be opened.
  backup_spans_ = spans_;
  backup_earlier_run_ = earlier_run_;
  spans_ = 0;
  earlier_run_ = false;
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::close(fd_);
  fd_ = fd;
  size_ = 0;
  return true;
}

FileExporter::~FileExporter() {
  Shutdown();
}

ExportResult FileExporter::Export(std::span<const model::Span> batch) noexcept {
  if (fd_ < 0) return ExportResult::kFailure;
  if (batch.empty()) return ExportResult::kSuccess;  // OTLP: senders do not send empty envelopes
  line_.Clear();
  AppendTracesDataJson(batch, &line_);
  line_.Append("\n");
  if (max_bytes_ > 0 && size_ > 0 && size_ + line_.size() > max_bytes_) Rotate();
  const bool ok = WriteAll(fd_, line_.view());
  if (ok) {
    size_ += line_.size();
    spans_ += batch.size();
  }
  if (line_.capacity() > kKeepLineCapacity) line_.Release();
  return ok ? ExportResult::kSuccess : ExportResult::kFailure;
}

bool FileExporter::ForceFlush() noexcept {
  return fd_ >= 0;
}

void FileExporter::Shutdown() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace kspan::exporters
