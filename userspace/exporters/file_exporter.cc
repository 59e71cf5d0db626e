#include "exporters/file_exporter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

Result<std::unique_ptr<FileExporter>> FileExporter::Create(std::string_view path, uint64_t max_bytes) {
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
  return std::unique_ptr<FileExporter>(new FileExporter(std::move(p), fd, size, max_bytes));
}

bool FileExporter::Rotate() noexcept {
  const std::string backup = path_ + ".1";
  if (::rename(path_.c_str(), backup.c_str()) != 0) return false;
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::close(fd_);
  fd_ = fd;
  size_ = 0;
  ++rotations_;
  return true;
}

FileExporter::~FileExporter() {
  Shutdown();
}

ExportResult FileExporter::Export(std::span<const model::Span> batch) noexcept {
  if (fd_ < 0) return ExportResult::kFailure;
  if (batch.empty()) return ExportResult::kSuccess;  // OTLP: senders do not send empty envelopes
  line_.clear();
  AppendTracesDataJson(batch, &line_);
  line_.push_back('\n');
  if (max_bytes_ > 0 && size_ > 0 && size_ + line_.size() > max_bytes_) Rotate();
  const bool ok = WriteAll(fd_, line_);
  if (ok) size_ += line_.size();
  if (line_.capacity() > kKeepLineCapacity) std::string().swap(line_);
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
