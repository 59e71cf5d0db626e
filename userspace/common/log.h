// The agent's own logs: one JSON object a line on stderr, each with a time, a level and
// a msg, plus structured fields. Thread-safe; a line is written with one write(2).
//
//   log::Info("ready", {{"programs", 27}, {"ring_buffer_bytes", 8 << 20}});
//
// Never log per packet or per event: count instead (metrics.h).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace kspan::log {

enum class Level : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct Field {
  using Value = std::variant<std::string_view, int64_t, uint64_t, double, bool>;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  template <typename I, typename = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>>
  Field(std::string_view k, I v) : key(k) {
    if constexpr (std::is_signed_v<I>)
      value = static_cast<int64_t>(v);
    else
      value = static_cast<uint64_t>(v);
  }
  std::string_view key;
  Value value;
};

void SetLevel(Level level);
Level GetLevel();
// Parses debug|info|warn|error.
bool ParseLevel(std::string_view name, Level* out);
// Redirects output to `fd` (default 2). For tests.
void SetOutputFd(int fd);

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});
inline void Debug(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kDebug, msg, f);
}
inline void Info(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, msg, f);
}
inline void Warn(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, msg, f);
}
inline void Error(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kError, msg, f);
}

}  // namespace kspan::log
