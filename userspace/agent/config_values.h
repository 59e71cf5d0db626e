// One configuration value at a time: parse and check the text of a flag, variable or YAML
// scalar. Every function here is pure; each failure is one InvalidArgument that starts
// with `where` (the flag, the variable, or "--config FILE: key"), quotes the bad value
// (never a secret one) and says what is expected. The setting table (agent/settings.h)
// says which setting uses which of these.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "exporters/settings.h"

namespace kspan::agent {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// Bounds. Timeouts and delays: 1 ms to 10 minutes. A queue holds at most 2^20 spans (at
// ~0.5-2 KB a span, up to 2 GB under a stalled backend: the ceiling for a user who asks,
// not a default; the default is exporters::QueueSettings').
inline constexpr uint32_t kMaxMillis = 600000;
inline constexpr size_t kMaxQueueSpans = size_t{1} << 20;
// Largest Linux pid (PID_MAX_LIMIT on 64-bit).
inline constexpr uint32_t kMaxPid = 4194304;
// Agent-wide resource attributes, at most. They are copied into the resource of every
// watched process, and ProcessTable::BuildResource de-duplicates a resource's keys
// pairwise: 1024 keys cost ~0.5 M comparisons per process (about a millisecond), and the
// resource goes out with every export request. Real deployments use a dozen.
inline constexpr size_t kMaxResourceAttributes = 1024;

std::string Lower(std::string_view s);
std::string_view Trim(std::string_view s);
// "a,b,,c" -> {"a", "b", "", "c"}; "" -> {""}.
std::vector<std::string_view> SplitComma(std::string_view s);

// A whole number from min to max.
Status ParseUnsigned(std::string_view where, std::string_view text, uint64_t min, uint64_t max,
                     uint64_t* out);
template <typename T>
Status ParseUnsigned(std::string_view where, std::string_view text, T min, T max, T* out) {
  uint64_t v = 0;
  RETURN_IF_ERROR(ParseUnsigned(where, text, uint64_t{min}, uint64_t{max}, &v));
  *out = static_cast<T>(v);
  return Status::Ok();
}
// 1..kMaxMillis milliseconds.
Status ParseMillis(std::string_view where, std::string_view text, std::chrono::milliseconds* out);
// A span count, 1..kMaxQueueSpans.
Status ParseCount(std::string_view where, std::string_view text, size_t* out);
// Seconds, a finite number >= 0.
Status ParseDuration(std::string_view where, std::string_view text, double* out);
// true/1/yes/on or false/0/no/off.
Status ParseBool(std::string_view where, std::string_view text, bool* out);
Status CheckLogLevel(std::string_view where, std::string_view level);
Status CheckListen(std::string_view where, std::string_view address);
Status CheckRingBuffer(std::string_view where, uint32_t bytes);
// The path names a regular file this process can read.
Status CheckReadableFile(std::string_view where, const std::string& path);

// Checks a list of output names and normalises the keywords to lower case (the
// OpenTelemetry spec reads enum values case-insensitively); a file path is kept as
// written: console, file:PATH, otlp, zipkin, none (alone).
Status ParseOutputs(std::string_view where, const std::vector<std::string>& items,
                    std::vector<std::string>* specs);

std::string_view ProtocolName(exporters::OtlpProtocol p);
Status ParseProtocol(std::string_view where, std::string_view text, exporters::OtlpProtocol* out);
Status ParseCompression(std::string_view where, std::string_view text, exporters::Compression* out);

// An endpoint URL, http[s]://host[:port][/path][?query].
struct UrlParts {
  std::string_view path;   // from the first '/' after the authority, up to '?'; may be empty
  std::string_view query;  // after '?', without it
  bool has_query = false;
};
Status ParseEndpoint(std::string_view where, std::string_view url, UrlParts* parts);
Status CheckEndpoint(std::string_view where, std::string_view url);
// OTLP/HTTP from a base URL: "http://c:4318" -> "http://c:4318/v1/traces".
std::string AppendTracesPath(const std::string& base);
// The same with v1/metrics.
std::string AppendMetricsPath(const std::string& base);
// The endpoint without its query string, for logs (a query may carry a key).
std::string LoggableEndpoint(const std::string& url);

// "k1=v1,k2=v2", the OpenTelemetry list form of OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_RESOURCE_ATTRIBUTES; appended to `out`. `secret_values`: errors never quote a value.
Status ParseKeyValueList(std::string_view where, std::string_view text, bool secret_values, KeyValues* out);
// Header names are HTTP tokens, lowercased here; values hold no CR, LF or NUL.
Status CheckHeaders(std::string_view where, KeyValues* headers);
// service.name cannot be set for every process: an error, or with `drop_service_name` (the
// standard OTEL_RESOURCE_ATTRIBUTES) dropped with a warning. At most kMaxResourceAttributes.
Status CheckResourceAttributes(std::string_view where, bool drop_service_name, KeyValues* attrs,
                               std::vector<std::string>* warnings);
// NAME=MATCH, both non-empty.
Status CheckAgentRule(std::string_view where, const std::string& name, const std::string& match);

// Each key of `from` replaces the value of the same key in `into`, or is appended; linear
// in the size of both.
void MergeByKey(const KeyValues& from, KeyValues* into);

}  // namespace kspan::agent
