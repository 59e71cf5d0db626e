// kspan's one error type. Fallible code returns Status (no value) or Result<T>
// (a value or a Status); nothing on the data path throws.
//
//   Result<Config> c = LoadConfig(path);
//   if (!c.ok()) return c.status();
//   RETURN_IF_ERROR(DoThing());
//   ASSIGN_OR_RETURN(auto fd, OpenSomething());
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kspan {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,    // bad configuration, flag or input value
  kNotFound = 2,           // a file, symbol or process that is not there
  kPermissionDenied = 3,   // not root, lockdown, EPERM from the kernel
  kUnavailable = 4,        // a kernel feature or service that is missing
  kResourceExhausted = 5,  // a bound was hit
  kInternal = 6,           // a bug or an unexpected system failure
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid argument: <message>", or "ok".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string msg) {
  return {StatusCode::kInvalidArgument, std::move(msg)};
}
inline Status NotFound(std::string msg) {
  return {StatusCode::kNotFound, std::move(msg)};
}
inline Status PermissionDenied(std::string msg) {
  return {StatusCode::kPermissionDenied, std::move(msg)};
}
inline Status Unavailable(std::string msg) {
  return {StatusCode::kUnavailable, std::move(msg)};
}
inline Status ResourceExhausted(std::string msg) {
  return {StatusCode::kResourceExhausted, std::move(msg)};
}
inline Status Internal(std::string msg) {
  return {StatusCode::kInternal, std::move(msg)};
}

// A value or the reason there is none. Constructing from an OK Status is a bug.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kspan

#define KSPAN_CONCAT_INNER(a, b) a##b
#define KSPAN_CONCAT(a, b) KSPAN_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::kspan::Status kspan_status_ = (expr);        \
    if (!kspan_status_.ok()) return kspan_status_; \
  } while (0)

#define KSPAN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  KSPAN_ASSIGN_OR_RETURN_IMPL(KSPAN_CONCAT(kspan_result_, __LINE__), lhs, expr)
