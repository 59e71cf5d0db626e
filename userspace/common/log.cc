#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

#include "common/json.h"

namespace kspan::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_fd{2};

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

void AppendTime(std::string* out) {
  const auto now = std::chrono::system_clock::now();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  out->append(buf, n);
  char frac[16];
  std::snprintf(frac, sizeof(frac), ".%06lldZ", static_cast<long long>(us % 1000000));
  out->append(frac);
}

}  // namespace

void SetLevel(Level level) {
  g_level.store(static_cast<int>(level));
}
Level GetLevel() {
  return static_cast<Level>(g_level.load());
}
void SetOutputFd(int fd) {
  g_fd.store(fd);
}

bool ParseLevel(std::string_view name, Level* out) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (name == LevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  std::string line;
  line.reserve(128);
  JsonWriter w(&line);
  w.BeginObject();
  w.Key("time");
  std::string ts;
  AppendTime(&ts);
  w.String(ts);
  w.Key("level");
  w.String(LevelName(level));
  w.Key("msg");
  w.String(msg);
  for (const Field& f : fields) {
    w.Key(f.key);
    std::visit(
        [&w](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::string_view>)
            w.String(v);
          else if constexpr (std::is_same_v<V, int64_t>)
            w.Int(v);
          else if constexpr (std::is_same_v<V, uint64_t>)
            w.Uint(v);
          else if constexpr (std::is_same_v<V, double>)
            w.Double(v);
          else
            w.Bool(v);
        },
        f.value);
  }
  w.EndObject();
  line.push_back('\n');
  // One write per line keeps lines whole when threads log at once.
  const int fd = g_fd.load(std::memory_order_relaxed);
  size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::write(fd, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace kspan::log
