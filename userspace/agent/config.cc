#include "agent/config.h"

#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "common/http_server.h"
#include "common/log.h"
#include "kspan/bpf/events.h"

extern char** environ;

namespace kspan::agent {
namespace {

using std::chrono::milliseconds;
using KeyValues = std::vector<std::pair<std::string, std::string>>;

// ---------------------------------------------------------------------------------------
// Values and where they came from.
//
// Exporter and resource settings come from three sources, each read into a Layer; the
// resolved value of a setting is the flags' if set, else the environment's, else the
// file's, else the default. `source` names the flag, variable or file key, so an error
// found only after merging (a batch larger than the queue, a CA file that is not there)
// still names what to fix.

template <typename T>
struct Setting {
  T value;
  std::string source;
};
template <typename T>
using Opt = std::optional<Setting<T>>;

struct Layer {
  Opt<std::vector<std::string>> outputs;  // checked specs: console, file:PATH, otlp, zipkin, none
  Opt<std::string> otlp_endpoint;         // a base URL: http/* appends v1/traces
  Opt<std::string> otlp_traces_endpoint;  // used as is
  Opt<exporters::OtlpProtocol> otlp_protocol;
  Opt<KeyValues> otlp_headers;  // names lowercased; the whole list replaces a lower layer's
  Opt<milliseconds> otlp_timeout;
  Opt<exporters::Compression> otlp_compression;
  Opt<std::string> otlp_certificate;
  Opt<std::string> zipkin_endpoint;
  Opt<milliseconds> zipkin_timeout;
  Opt<size_t> queue_max_spans;
  Opt<size_t> queue_max_batch;
  Opt<milliseconds> queue_schedule_delay;
  Opt<milliseconds> queue_export_timeout;
  KeyValues resource_attributes;  // merged key by key across layers

  bool HasOtlpSettings() const {
    return otlp_endpoint || otlp_traces_endpoint || otlp_protocol || otlp_headers || otlp_timeout ||
           otlp_compression || otlp_certificate;
  }
  bool HasZipkinSettings() const { return zipkin_endpoint || zipkin_timeout; }
};

// Bounds. Timeouts and delays: 1 ms to 10 minutes. A queue holds at most 2^20 spans (at
// ~0.5-2 KB a span, up to 2 GB under a stalled backend: the ceiling for a user who asks,
// not a default; the default is exporters::QueueSettings').
constexpr uint32_t kMaxMillis = 600000;
constexpr size_t kMaxQueueSpans = size_t{1} << 20;

constexpr std::string_view kOutputsExpected = "console, file:PATH, otlp, zipkin or none";
constexpr std::string_view kProtocolsExpected = "grpc, http/protobuf or http/json";
constexpr std::string_view kCompressionsExpected = "gzip or none";

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> SplitComma(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    const size_t comma = s.find(',');
    out.push_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

template <typename T>
Status ParseUnsigned(std::string_view what, std::string_view text, T min, T max, T* out) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return InvalidArgument(std::string(what) + ": '" + std::string(text) + "' is not a whole number from " +
                           std::to_string(min) + " to " + std::to_string(max));
  }
  *out = static_cast<T>(v);
  return Status::Ok();
}

Status ParseMillis(const std::string& where, std::string_view text, Opt<milliseconds>* out) {
  uint32_t v = 0;
  RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where + " (milliseconds)", text, 1, kMaxMillis, &v));
  *out = Setting<milliseconds>{milliseconds(v), where};
  return Status::Ok();
}

Status ParseCount(const std::string& where, std::string_view text, Opt<size_t>* out) {
  size_t v = 0;
  RETURN_IF_ERROR(ParseUnsigned<size_t>(where, text, 1, kMaxQueueSpans, &v));
  *out = Setting<size_t>{v, where};
  return Status::Ok();
}

Status ParseDuration(std::string_view where, std::string_view text, double* out) {
  try {
    size_t used = 0;
    const double v = std::stod(std::string(text), &used);
    if (used != text.size() || !std::isfinite(v) || v < 0) throw std::invalid_argument("");
    *out = v;
    return Status::Ok();
  } catch (...) {
    return InvalidArgument(std::string(where) + ": '" + std::string(text) +
                           "' is not a number of seconds >= 0");
  }
}

Status CheckLogLevel(std::string_view where, const std::string& level) {
  log::Level l;
  if (!log::ParseLevel(level, &l)) {
    return InvalidArgument(std::string(where) + ": '" + level + "' is not one of debug, info, warn, error");
  }
  return Status::Ok();
}

Status CheckListen(std::string_view where, const std::string& address) {
  return http::ParseListenAddress(where, address).status();
}

Status CheckRingBuffer(std::string_view where, uint32_t v) {
  if (v < 4096 || (v & (v - 1)) != 0) {
    return InvalidArgument(std::string(where) + ": " + std::to_string(v) + " must be a power of two >= 4096");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Outputs.

// Checks a list of output names (from --output, OTEL_TRACES_EXPORTER or `outputs:`) and
// normalises the keywords to lower case (the OpenTelemetry spec reads enum values
// case-insensitively); a file path is kept as written.
Status ParseOutputs(const std::string& where, const std::vector<std::string>& items,
                    Opt<std::vector<std::string>>* out) {
  std::vector<std::string> specs;
  for (const std::string& raw : items) {
    const std::string item(Trim(raw));
    const std::string lower = Lower(item);
    std::string spec;
    if (lower == "console" || lower == "otlp" || lower == "zipkin" || lower == "none") {
      spec = lower;
    } else if (lower.starts_with("file:") && item.size() > 5) {
      spec = "file:" + item.substr(5);
    } else {
      return InvalidArgument(where + ": '" + item + "' is not a known output; expected " +
                             std::string(kOutputsExpected) + " (file:PATH needs a path)");
    }
    if (std::find(specs.begin(), specs.end(), spec) != specs.end()) {
      return InvalidArgument(where + ": '" + item + "' is listed twice");
    }
    specs.push_back(std::move(spec));
  }
  if (specs.empty())
    return InvalidArgument(where + ": no output named; expected " + std::string(kOutputsExpected));
  if (specs.size() > 1 && std::find(specs.begin(), specs.end(), "none") != specs.end()) {
    return InvalidArgument(where + ": 'none' cannot be combined with other outputs");
  }
  *out = Setting<std::vector<std::string>>{std::move(specs), where};
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Enumerations.

std::string_view ProtocolName(exporters::OtlpProtocol p) {
  switch (p) {
    case exporters::OtlpProtocol::kGrpc: return "grpc";
    case exporters::OtlpProtocol::kHttpProtobuf: return "http/protobuf";
    case exporters::OtlpProtocol::kHttpJson: return "http/json";
  }
  return "?";
}

Status ParseProtocol(const std::string& where, std::string_view text, Opt<exporters::OtlpProtocol>* out) {
  const std::string v = Lower(Trim(text));
  for (auto p : {exporters::OtlpProtocol::kGrpc, exporters::OtlpProtocol::kHttpProtobuf,
                 exporters::OtlpProtocol::kHttpJson}) {
    if (v == ProtocolName(p)) {
      *out = Setting<exporters::OtlpProtocol>{p, where};
      return Status::Ok();
    }
  }
  return InvalidArgument(where + ": '" + std::string(text) + "' is not a known OTLP protocol; expected " +
                         std::string(kProtocolsExpected));
}

Status ParseCompression(const std::string& where, std::string_view text, Opt<exporters::Compression>* out) {
  const std::string v = Lower(Trim(text));
  if (v == "gzip" || v == "none") {
    *out = Setting<exporters::Compression>{
        v == "gzip" ? exporters::Compression::kGzip : exporters::Compression::kNone, where};
    return Status::Ok();
  }
  return InvalidArgument(where + ": '" + std::string(text) + "' is not a known compression; expected " +
                         std::string(kCompressionsExpected));
}

// ---------------------------------------------------------------------------------------
// Endpoint URLs.

struct UrlParts {
  std::string_view path;   // from the first '/' after the authority, up to '?'; may be empty
  std::string_view query;  // after '?', without it
  bool has_query = false;
};

// An endpoint is http[s]://host[:port][/path][?query]: the scheme http or https (any
// case), a host (a name, an IPv4 address or a bracketed IPv6 address), a port 1..65535 if
// given. Rejected: credentials in the URL (the URL is logged; put them in a header), a
// #fragment (meaningless for a POST target), spaces and control characters.
Status ParseEndpoint(std::string_view where, std::string_view url, UrlParts* parts) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument(std::string(where) + ": '" + std::string(url) +
                           "' is not a valid endpoint URL: " + std::string(why));
  };
  for (char ch : url) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f)
      return bad("it contains a space or control character");
  }
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad("expected http://HOST[:PORT][/PATH] or https://...");
  const std::string scheme = Lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") return bad("the scheme must be http or https");
  std::string_view rest = url.substr(sep + 3);
  const size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  const std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return bad("credentials in the URL are not supported (the URL is logged); send them in a header");
  }
  if (tail.find('#') != std::string_view::npos) return bad("a #fragment has no meaning for an endpoint");
  std::string_view host = authority;
  std::string_view port;
  bool has_port = false;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("the IPv6 address has no closing ']'");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("expected ':PORT' after the IPv6 address");
      port = after.substr(1);
      has_port = true;
    }
    if (host.empty()) return bad("a host is required");
    for (char ch : host) {
      if (!std::isxdigit(static_cast<unsigned char>(ch)) && ch != ':' && ch != '.') {
        return bad("'" + std::string(host) + "' is not an IPv6 address");
      }
    }
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return bad("a host is required");
    for (char ch : host) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.' && ch != '_') {
        return bad("the host '" + std::string(host) + "' has a character a host name cannot have");
      }
    }
  }
  if (has_port) {
    uint32_t p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p < 1 || p > 65535) {
      return bad("the port '" + std::string(port) + "' is not a number from 1 to 65535");
    }
  }
  const size_t q = tail.find('?');
  parts->path = tail.substr(0, q);
  parts->has_query = q != std::string_view::npos;
  if (parts->has_query) parts->query = tail.substr(q + 1);
  return Status::Ok();
}

Status CheckEndpoint(std::string_view where, std::string_view url) {
  UrlParts parts;
  return ParseEndpoint(where, url, &parts);
}

// OTLP/HTTP from a base URL: the signal path goes after the base URL's path, with exactly
// one '/' between them (http://c:4318 and http://c:4318/ both give http://c:4318/v1/traces;
// http://c/otlp gives http://c/otlp/v1/traces). A query string stays at the end.
std::string AppendTracesPath(const std::string& base) {
  const size_t q = base.find('?');
  std::string head = base.substr(0, q);
  const std::string query = q == std::string::npos ? "" : base.substr(q);
  if (!head.ends_with('/')) head += '/';
  return head + "v1/traces" + query;
}

// The endpoint without its query string, for logs (a query may carry a key).
std::string LoggableEndpoint(const std::string& url) {
  return url.substr(0, url.find('?'));
}

// ---------------------------------------------------------------------------------------
// key=value lists: OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES.

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(std::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    const int hi = HexDigit(s[i + 1]), lo = HexDigit(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  return true;
}

// "k1=v1,k2=v2" as the OpenTelemetry spec has it for OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_RESOURCE_ATTRIBUTES (the W3C Baggage list form, without properties): spaces and
// tabs around items, keys and values are dropped, values are percent-decoded (a '+' stays
// a '+'), empty items are skipped. Unlike an SDK, which skips what it cannot parse, kspan
// refuses the whole value: a half-applied auth header is worse than a clear error.
// `secret_values`: errors never quote a value (an Authorization header's, say).
Status ParseKeyValueList(const std::string& where, std::string_view text, bool secret_values,
                         KeyValues* out) {
  const auto items = SplitComma(text);
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string_view item = Trim(items[i]);
    if (item.empty()) continue;
    const std::string item_name =
        secret_values ? "item " + std::to_string(i + 1) : "'" + std::string(item) + "'";
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument(where + ": " + item_name +
                             " is not key=value (expected key1=value1,key2=value2" +
                             " with values percent-encoded)");
    }
    const std::string_view key = Trim(item.substr(0, eq));
    if (key.empty()) return InvalidArgument(where + ": " + item_name + " has an empty key");
    std::string decoded_key, value;
    if (!PercentDecode(key, &decoded_key)) {
      return InvalidArgument(where + ": the key '" + std::string(key) + "' has a bad percent-encoding");
    }
    if (!PercentDecode(Trim(item.substr(eq + 1)), &value)) {
      return InvalidArgument(where + ": the value of '" + decoded_key +
                             "' has a bad percent-encoding (expected %XX with two hex digits)");
    }
    out->emplace_back(std::move(decoded_key), std::move(value));
  }
  return Status::Ok();
}

// Header names are HTTP tokens (RFC 9110 §5.6.2); kspan lowercases them (HTTP names are
// case-insensitive, gRPC metadata keys must be lowercase). A value must not hold CR, LF or
// NUL: they would end the header and start another.
Status CheckHeaders(const std::string& where, KeyValues* headers) {
  static constexpr std::string_view kTokenPunct = "!#$%&'*+-.^_`|~";
  for (auto& [name, value] : *headers) {
    for (char ch : name) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && kTokenPunct.find(ch) == std::string_view::npos) {
        return InvalidArgument(where + ": '" + name + "' is not a valid HTTP header name");
      }
    }
    name = Lower(name);
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return InvalidArgument(where + ": the value of header '" + name + "' contains a line break or NUL");
    }
  }
  return Status::Ok();
}

Status ParseHeaders(const std::string& where, std::string_view text, KeyValues* out) {
  KeyValues headers;
  RETURN_IF_ERROR(ParseKeyValueList(where, text, /*secret_values=*/true, &headers));
  RETURN_IF_ERROR(CheckHeaders(where, &headers));
  out->insert(out->end(), headers.begin(), headers.end());
  return Status::Ok();
}

// Agent-wide resource attributes. service.name names each watched process (its own
// OTEL_SERVICE_NAME, else its executable), so one value for every process is refused
// from a flag or the file, and dropped, with a warning, from OTEL_RESOURCE_ATTRIBUTES
// (where an orchestrator may have put the agent's own name).
Status CheckResourceAttributes(const std::string& where, bool from_env, KeyValues* attrs,
                               std::vector<std::string>* warnings) {
  for (auto it = attrs->begin(); it != attrs->end();) {
    if (it->first == "service.name") {
      if (!from_env) {
        return InvalidArgument(where +
                               ": service.name cannot be set for every process; each watched process " +
                               "is named by its own OTEL_SERVICE_NAME, else its executable");
      }
      warnings->push_back(where + ": service.name is ignored; each watched process is named by its own " +
                          "OTEL_SERVICE_NAME, else its executable");
      it = attrs->erase(it);
      continue;
    }
    ++it;
  }
  return Status::Ok();
}

void MergeByKey(const KeyValues& from, KeyValues* into) {
  for (const auto& [k, v] : from) {
    auto it = std::find_if(into->begin(), into->end(), [&](const auto& kv) { return kv.first == k; });
    if (it != into->end()) {
      it->second = v;
    } else {
      into->emplace_back(k, v);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The environment.

// The first of `names` that is set (signal-specific before generic), with its name.
std::optional<std::pair<std::string, std::string>> FirstSet(const Environment& env,
                                                            std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (auto v = env.Get(name)) return std::make_pair(std::string(name), *v);
  }
  return std::nullopt;
}

Status ReadEnvironment(const Environment& env, Layer* l, std::vector<std::string>* warnings) {
  if (auto v = FirstSet(env, {"OTEL_TRACES_EXPORTER"})) {
    std::vector<std::string> items;
    for (std::string_view item : SplitComma(v->second)) {
      if (!Trim(item).empty()) items.emplace_back(item);
    }
    RETURN_IF_ERROR(ParseOutputs(v->first, items, &l->outputs));
  }
  if (auto v = FirstSet(env, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"})) {
    RETURN_IF_ERROR(CheckEndpoint(v->first, v->second));
    l->otlp_traces_endpoint = Setting<std::string>{v->second, v->first};
  }
  if (auto v = FirstSet(env, {"OTEL_EXPORTER_OTLP_ENDPOINT"})) {
    RETURN_IF_ERROR(CheckEndpoint(v->first, v->second));
    l->otlp_endpoint = Setting<std::string>{v->second, v->first};
  }
  if (auto v = FirstSet(env, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"})) {
    RETURN_IF_ERROR(ParseProtocol(v->first, v->second, &l->otlp_protocol));
  }
  if (auto v = FirstSet(env, {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"})) {
    KeyValues headers;
    RETURN_IF_ERROR(ParseHeaders(v->first, v->second, &headers));
    l->otlp_headers = Setting<KeyValues>{std::move(headers), v->first};
  }
  if (auto v = FirstSet(env, {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"})) {
    RETURN_IF_ERROR(ParseMillis(v->first, v->second, &l->otlp_timeout));
  }
  if (auto v = FirstSet(env, {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"})) {
    RETURN_IF_ERROR(ParseCompression(v->first, v->second, &l->otlp_compression));
  }
  if (auto v = FirstSet(env, {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"})) {
    l->otlp_certificate = Setting<std::string>{v->second, v->first};
  }
  if (auto v = FirstSet(env, {"OTEL_EXPORTER_ZIPKIN_ENDPOINT"})) {
    RETURN_IF_ERROR(CheckEndpoint(v->first, v->second));
    l->zipkin_endpoint = Setting<std::string>{v->second, v->first};
  }
  if (auto v = FirstSet(env, {"OTEL_EXPORTER_ZIPKIN_TIMEOUT"})) {
    RETURN_IF_ERROR(ParseMillis(v->first, v->second, &l->zipkin_timeout));
  }
  if (auto v = FirstSet(env, {"OTEL_BSP_MAX_QUEUE_SIZE"})) {
    RETURN_IF_ERROR(ParseCount(v->first, v->second, &l->queue_max_spans));
  }
  if (auto v = FirstSet(env, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE"})) {
    RETURN_IF_ERROR(ParseCount(v->first, v->second, &l->queue_max_batch));
  }
  if (auto v = FirstSet(env, {"OTEL_BSP_SCHEDULE_DELAY"})) {
    RETURN_IF_ERROR(ParseMillis(v->first, v->second, &l->queue_schedule_delay));
  }
  if (auto v = FirstSet(env, {"OTEL_BSP_EXPORT_TIMEOUT"})) {
    RETURN_IF_ERROR(ParseMillis(v->first, v->second, &l->queue_export_timeout));
  }
  if (auto v = FirstSet(env, {"OTEL_RESOURCE_ATTRIBUTES"})) {
    KeyValues attrs;
    RETURN_IF_ERROR(ParseKeyValueList(v->first, v->second, /*secret_values=*/false, &attrs));
    RETURN_IF_ERROR(CheckResourceAttributes(v->first, /*from_env=*/true, &attrs, warnings));
    MergeByKey(attrs, &l->resource_attributes);
  }
  // Standard variables kspan does not implement: say so rather than ignore them silently.
  for (const char* name : {"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE"}) {
    if (env.Get(name)) {
      warnings->push_back(std::string(name) +
                          " is ignored: the endpoint's scheme (http or https) decides TLS");
    }
  }
  for (const char* name :
       {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"}) {
    if (env.Get(name)) {
      warnings->push_back(std::string(name) +
                          " is ignored: client certificates (mutual TLS) are not supported");
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// The YAML file.

constexpr std::string_view kTopKeys =
    "outputs, duration, pids, capture_bytes, ring_buffer_bytes, drain_interval_ms, trace_window_ms, "
    "trace_max_held_mib, log_level, listen, otlp, zipkin, queue, resource_attributes, genai, agents";
constexpr std::string_view kOtlpKeys =
    "endpoint, traces_endpoint, protocol, headers, timeout_ms, compression, certificate";
constexpr std::string_view kZipkinKeys = "endpoint, timeout_ms";
constexpr std::string_view kGenaiKeys = "capture_content, capture_bytes, max_body_bytes";
constexpr std::string_view kQueueKeys = "max_spans, max_batch, schedule_delay_ms, export_timeout_ms";

bool KeyIn(std::string_view key, std::string_view list) {
  for (std::string_view k : SplitComma(list)) {
    if (Trim(k) == key) return true;
  }
  return false;
}

class YamlReader {
 public:
  explicit YamlReader(std::string path) : path_(std::move(path)) {}

  std::string Where(const std::string& key) const { return "--config " + path_ + ": " + key; }

  Status UnknownKey(const std::string& key, std::string_view expected) const {
    return InvalidArgument("--config " + path_ + ": unknown key '" + key + "'; expected one of " +
                           std::string(expected));
  }

  Status Scalar(const YAML::Node& v, const std::string& key, std::string* out) const {
    if (!v.IsScalar()) return InvalidArgument(Where(key) + " must be a single value");
    *out = v.Scalar();
    return Status::Ok();
  }

  // A mapping (or nothing: `otlp:` alone is an empty mapping), its keys checked.
  Status Map(const YAML::Node& v, const std::string& key, std::string_view allowed) const {
    if (v.IsNull()) return Status::Ok();
    if (!v.IsMap())
      return InvalidArgument(Where(key) + " must be a mapping of settings (" + std::string(allowed) + ")");
    for (const auto& kv : v) {
      const std::string sub = kv.first.Scalar();
      if (!KeyIn(sub, allowed)) return UnknownKey(key + "." + sub, allowed);
    }
    return Status::Ok();
  }

  // A mapping of free-form names to single values (headers, resource attributes).
  Status Pairs(const YAML::Node& v, const std::string& key, std::string_view what, KeyValues* out) const {
    if (v.IsNull()) return Status::Ok();
    if (!v.IsMap()) return InvalidArgument(Where(key) + " must be a mapping of " + std::string(what));
    for (const auto& kv : v) {
      const std::string name = kv.first.Scalar();
      std::string value;
      if (name.empty()) return InvalidArgument(Where(key) + " has an empty name");
      RETURN_IF_ERROR(Scalar(kv.second, key + "." + name, &value));
      out->emplace_back(name, value);
    }
    return Status::Ok();
  }

 private:
  std::string path_;
};

Status ReadOtlp(const YamlReader& r, const YAML::Node& node, Layer* l) {
  RETURN_IF_ERROR(r.Map(node, "otlp", kOtlpKeys));
  if (node.IsNull()) return Status::Ok();
  for (const auto& kv : node) {
    const std::string key = "otlp." + kv.first.Scalar();
    const std::string where = r.Where(key);
    const YAML::Node& v = kv.second;
    if (key == "otlp.headers") {
      KeyValues headers;
      RETURN_IF_ERROR(r.Pairs(v, key, "header names to values", &headers));
      RETURN_IF_ERROR(CheckHeaders(where, &headers));
      l->otlp_headers = Setting<KeyValues>{std::move(headers), where};
      continue;
    }
    std::string s;
    RETURN_IF_ERROR(r.Scalar(v, key, &s));
    if (key == "otlp.endpoint") {
      RETURN_IF_ERROR(CheckEndpoint(where, s));
      l->otlp_endpoint = Setting<std::string>{s, where};
    } else if (key == "otlp.traces_endpoint") {
      RETURN_IF_ERROR(CheckEndpoint(where, s));
      l->otlp_traces_endpoint = Setting<std::string>{s, where};
    } else if (key == "otlp.protocol") {
      RETURN_IF_ERROR(ParseProtocol(where, s, &l->otlp_protocol));
    } else if (key == "otlp.timeout_ms") {
      RETURN_IF_ERROR(ParseMillis(where, s, &l->otlp_timeout));
    } else if (key == "otlp.compression") {
      RETURN_IF_ERROR(ParseCompression(where, s, &l->otlp_compression));
    } else if (key == "otlp.certificate") {
      l->otlp_certificate = Setting<std::string>{s, where};
    }
  }
  return Status::Ok();
}

Status ReadZipkin(const YamlReader& r, const YAML::Node& node, Layer* l) {
  RETURN_IF_ERROR(r.Map(node, "zipkin", kZipkinKeys));
  if (node.IsNull()) return Status::Ok();
  for (const auto& kv : node) {
    const std::string key = "zipkin." + kv.first.Scalar();
    const std::string where = r.Where(key);
    std::string s;
    RETURN_IF_ERROR(r.Scalar(kv.second, key, &s));
    if (key == "zipkin.endpoint") {
      RETURN_IF_ERROR(CheckEndpoint(where, s));
      l->zipkin_endpoint = Setting<std::string>{s, where};
    } else if (key == "zipkin.timeout_ms") {
      RETURN_IF_ERROR(ParseMillis(where, s, &l->zipkin_timeout));
    }
  }
  return Status::Ok();
}

Status ReadQueue(const YamlReader& r, const YAML::Node& node, Layer* l) {
  RETURN_IF_ERROR(r.Map(node, "queue", kQueueKeys));
  if (node.IsNull()) return Status::Ok();
  for (const auto& kv : node) {
    const std::string key = "queue." + kv.first.Scalar();
    const std::string where = r.Where(key);
    std::string s;
    RETURN_IF_ERROR(r.Scalar(kv.second, key, &s));
    if (key == "queue.max_spans") {
      RETURN_IF_ERROR(ParseCount(where, s, &l->queue_max_spans));
    } else if (key == "queue.max_batch") {
      RETURN_IF_ERROR(ParseCount(where, s, &l->queue_max_batch));
    } else if (key == "queue.schedule_delay_ms") {
      RETURN_IF_ERROR(ParseMillis(where, s, &l->queue_schedule_delay));
    } else if (key == "queue.export_timeout_ms") {
      RETURN_IF_ERROR(ParseMillis(where, s, &l->queue_export_timeout));
    }
  }
  return Status::Ok();
}

Status ParseBool(const std::string& where, std::string_view s, bool* out) {
  if (s == "true" || s == "1" || s == "yes" || s == "on") {
    *out = true;
  } else if (s == "false" || s == "0" || s == "no" || s == "off") {
    *out = false;
  } else {
    return InvalidArgument(where + ": '" + std::string(s) + "' is not true or false");
  }
  return Status::Ok();
}

Status AddAgentRule(const std::string& where, const std::string& name, const std::string& match,
                    std::vector<std::pair<std::string, std::string>>* rules) {
  if (name.empty() || match.empty()) {
    return InvalidArgument(where + ": an agent rule is NAME=MATCH, both non-empty (got '" + name + "=" +
                           match + "')");
  }
  rules->emplace_back(name, match);
  return Status::Ok();
}

Status ReadGenai(const YamlReader& r, const YAML::Node& node, Config* c) {
  RETURN_IF_ERROR(r.Map(node, "genai", kGenaiKeys));
  if (node.IsNull()) return Status::Ok();
  for (const auto& kv : node) {
    const std::string key = "genai." + kv.first.Scalar();
    const std::string where = r.Where(key);
    std::string s;
    RETURN_IF_ERROR(r.Scalar(kv.second, key, &s));
    if (key == "genai.capture_content") {
      RETURN_IF_ERROR(ParseBool(where, s, &c->genai_capture_content));
    } else if (key == "genai.capture_bytes") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, s, 0, KSPAN_MAX_CAPTURE, &c->genai_capture_bytes));
    } else if (key == "genai.max_body_bytes") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, s, 0, 64u << 20, &c->genai_max_body_bytes));
    }
  }
  return Status::Ok();
}

// Agent settings go straight into `c` (flags, read later, override them); exporter and
// resource settings into the file's layer.
Status ApplyConfigFile(const std::string& path, Config* c, Layer* l, std::vector<std::string>* warnings) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return InvalidArgument("--config: cannot read '" + path + "'");
  } catch (const YAML::Exception& e) {
    return InvalidArgument("--config: '" + path + "' is not valid YAML: " + e.what());
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument("--config: '" + path + "' must be a mapping of settings");
  const YamlReader r(path);
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      const std::string where = r.Where(key);
      if (!KeyIn(key, kTopKeys)) return r.UnknownKey(key, kTopKeys);
      if (key == "otlp") {
        RETURN_IF_ERROR(ReadOtlp(r, v, l));
        continue;
      }
      if (key == "zipkin") {
        RETURN_IF_ERROR(ReadZipkin(r, v, l));
        continue;
      }
      if (key == "queue") {
        RETURN_IF_ERROR(ReadQueue(r, v, l));
        continue;
      }
      if (key == "genai") {
        RETURN_IF_ERROR(ReadGenai(r, v, c));
        continue;
      }
      if (key == "agents") {
        KeyValues rules;
        RETURN_IF_ERROR(
            r.Pairs(v, key, "agent names to a substring of the executable path or command line", &rules));
        for (auto& [name, match] : rules) RETURN_IF_ERROR(AddAgentRule(where, name, match, &c->agent_rules));
        continue;
      }
      if (key == "resource_attributes") {
        KeyValues attrs;
        RETURN_IF_ERROR(r.Pairs(v, key, "attribute names to values", &attrs));
        RETURN_IF_ERROR(CheckResourceAttributes(where, /*from_env=*/false, &attrs, warnings));
        MergeByKey(attrs, &l->resource_attributes);
        continue;
      }
      if (key == "outputs" || key == "pids") {
        if (!v.IsSequence()) {
          return InvalidArgument(
              where + (key == "outputs" ? " must be a list of outputs" : " must be a list of process ids"));
        }
        std::vector<std::string> items;
        for (const auto& item : v) {
          std::string s;
          RETURN_IF_ERROR(r.Scalar(item, key + "[]", &s));
          items.push_back(std::move(s));
        }
        if (key == "outputs") {
          RETURN_IF_ERROR(ParseOutputs(where, items, &l->outputs));
        } else {
          c->pids.clear();
          for (const std::string& s : items) {
            uint32_t pid;
            RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, s, 1, 4194304, &pid));
            c->pids.push_back(pid);
          }
        }
        continue;
      }
      std::string s;
      RETURN_IF_ERROR(r.Scalar(v, key, &s));
      if (key == "duration") {
        RETURN_IF_ERROR(ParseDuration(where, s, &c->duration_seconds));
      } else if (key == "capture_bytes") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, s, 0, KSPAN_MAX_CAPTURE, &c->capture_bytes));
      } else if (key == "ring_buffer_bytes") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, s, 4096, 1u << 30, &c->ring_buffer_bytes));
        RETURN_IF_ERROR(CheckRingBuffer(where, c->ring_buffer_bytes));
      } else if (key == "drain_interval_ms") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, s, 1, 1000, &c->drain_interval_ms));
      } else if (key == "trace_window_ms") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, s, 0, 60000, &c->trace_window_ms));
      } else if (key == "trace_max_held_mib") {
        RETURN_IF_ERROR(ParseUnsigned<uint32_t>(where, s, 1, 4096, &c->trace_max_held_mib));
      } else if (key == "log_level") {
        RETURN_IF_ERROR(CheckLogLevel(where, s));
        c->log_level = s;
      } else if (key == "listen") {
        RETURN_IF_ERROR(CheckListen(where, s));
        c->listen = s;
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument("--config " + path + ": " + e.what());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Resolution: flags > environment > file > default, per setting.

Status CheckReadableFile(const std::string& where, const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return InvalidArgument(where + ": cannot read '" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgument(where + ": '" + path + "' is not a regular file");
  std::ifstream f(path);
  if (!f) return InvalidArgument(where + ": cannot read '" + path + "': " + std::strerror(errno));
  return Status::Ok();
}

Status Resolve(const Layer& flags, const Layer& env, const Layer& file, Config* c) {
  const Layer* const layers[] = {&flags, &env, &file};
  auto pick = [&](auto member) -> decltype(&(flags.*member)) {
    for (const Layer* l : layers) {
      if (l->*member) return &(l->*member);
    }
    return nullptr;
  };

  // Queue: every network exporter gets a queue of these sizes.
  exporters::QueueSettings queue;
  std::string max_spans_source = "the default queue size";
  std::string max_batch_source = "the default batch size";
  if (auto* v = pick(&Layer::queue_max_spans)) {
    queue.max_queue_spans = (*v)->value;
    max_spans_source = (*v)->source;
  }
  if (auto* v = pick(&Layer::queue_max_batch)) {
    queue.max_batch_spans = (*v)->value;
    max_batch_source = (*v)->source;
  }
  if (auto* v = pick(&Layer::queue_schedule_delay)) queue.schedule_delay = (*v)->value;
  if (queue.max_batch_spans > queue.max_queue_spans) {
    // Both from one file: name the file once.
    const size_t colon = max_batch_source.find(": ");
    if (max_batch_source.starts_with("--config ") && colon != std::string::npos &&
        max_spans_source.starts_with(max_batch_source.substr(0, colon + 2))) {
      max_spans_source.erase(0, colon + 2);
    }
    return InvalidArgument(max_batch_source + " (" + std::to_string(queue.max_batch_spans) +
                           ") must not exceed " + max_spans_source + " (" +
                           std::to_string(queue.max_queue_spans) + ")");
  }

  // OTLP.
  exporters::OtlpSettings otlp;
  otlp.queue = queue;
  if (auto* v = pick(&Layer::otlp_protocol)) otlp.protocol = (*v)->value;
  const bool grpc = otlp.protocol == exporters::OtlpProtocol::kGrpc;
  // The first source that names an endpoint in either form decides; within one source the
  // traces endpoint (used as is) beats the base endpoint.
  std::string endpoint_source;
  otlp.endpoint = grpc ? "http://localhost:4317" : "http://localhost:4318/v1/traces";
  for (const Layer* l : layers) {
    if (l->otlp_traces_endpoint) {
      otlp.endpoint = l->otlp_traces_endpoint->value;
      endpoint_source = l->otlp_traces_endpoint->source;
      break;
    }
    if (l->otlp_endpoint) {
      otlp.endpoint = grpc ? l->otlp_endpoint->value : AppendTracesPath(l->otlp_endpoint->value);
      endpoint_source = l->otlp_endpoint->source;
      break;
    }
  }
  if (grpc && !endpoint_source.empty()) {
    UrlParts parts;
    RETURN_IF_ERROR(ParseEndpoint(endpoint_source, otlp.endpoint, &parts));
    if ((!parts.path.empty() && parts.path != "/") || parts.has_query) {
      return InvalidArgument(endpoint_source + ": '" + otlp.endpoint +
                             "' has a path, which OTLP/gRPC has no use for; expected http[s]://HOST:PORT "
                             "(or choose an http/* protocol)");
    }
  }
  if (auto* v = pick(&Layer::otlp_headers)) otlp.headers = (*v)->value;
  if (auto* v = pick(&Layer::otlp_timeout)) otlp.timeout = (*v)->value;
  if (auto* v = pick(&Layer::otlp_compression)) otlp.compression = (*v)->value;
  const Opt<std::string>* certificate = pick(&Layer::otlp_certificate);
  if (certificate) otlp.certificate_file = (*certificate)->value;

  // Zipkin.
  exporters::ZipkinSettings zipkin;
  zipkin.queue = queue;
  if (auto* v = pick(&Layer::zipkin_endpoint)) zipkin.endpoint = (*v)->value;
  if (auto* v = pick(&Layer::zipkin_timeout)) zipkin.timeout = (*v)->value;

  // Outputs.
  std::vector<std::string> specs = {"console", std::string("file:") + kDefaultFile};
  if (auto* v = pick(&Layer::outputs)) specs = (*v)->value;
  bool has_otlp = false, has_zipkin = false;
  c->outputs.clear();
  for (const std::string& spec : specs) {
    if (spec == "none") continue;
    if (spec == "console") {
      c->outputs.push_back({"console", exporters::ConsoleSettings{}});
    } else if (spec.starts_with("file:")) {
      c->outputs.push_back({spec, exporters::FileSettings{spec.substr(5)}});
    } else if (spec == "otlp") {
      has_otlp = true;
      if (certificate) {
        RETURN_IF_ERROR(CheckReadableFile((*certificate)->source, otlp.certificate_file));
        if (!Lower(otlp.endpoint).starts_with("https://")) {
          c->warnings.push_back((*certificate)->source + " is set but the OTLP endpoint " +
                                LoggableEndpoint(otlp.endpoint) + " is not https, so it is not used");
        }
      }
      c->outputs.push_back(
          {"otlp(" + std::string(ProtocolName(otlp.protocol)) + " " + LoggableEndpoint(otlp.endpoint) + ")",
           otlp});
    } else if (spec == "zipkin") {
      has_zipkin = true;
      c->outputs.push_back({"zipkin(" + LoggableEndpoint(zipkin.endpoint) + ")", zipkin});
    }
  }
  if (!has_otlp && std::any_of(std::begin(layers), std::end(layers),
                               [](const Layer* l) { return l->HasOtlpSettings(); })) {
    c->warnings.push_back(
        "OTLP settings are configured but otlp is not an output, so nothing is sent over OTLP; add --output "
        "otlp "
        "(or otlp in OTEL_TRACES_EXPORTER or the file's outputs)");
  }
  if (!has_zipkin && std::any_of(std::begin(layers), std::end(layers),
                                 [](const Layer* l) { return l->HasZipkinSettings(); })) {
    c->warnings.push_back(
        "Zipkin settings are configured but zipkin is not an output, so nothing is sent to Zipkin; add "
        "--output "
        "zipkin (or zipkin in OTEL_TRACES_EXPORTER or the file's outputs)");
  }
  if (std::any_of(std::begin(layers), std::end(layers),
                  [](const Layer* l) { return l->queue_export_timeout.has_value(); })) {
    c->warnings.push_back(
        "OTEL_BSP_EXPORT_TIMEOUT / queue.export_timeout_ms is checked but not used yet; each export attempt "
        "is "
        "bounded by the exporter's own timeout");
  }

  // Resource attributes: key by key, the file's, then the environment's, then the flags'.
  c->resource_attributes.clear();
  MergeByKey(file.resource_attributes, &c->resource_attributes);
  MergeByKey(env.resource_attributes, &c->resource_attributes);
  MergeByKey(flags.resource_attributes, &c->resource_attributes);
  return Status::Ok();
}

}  // namespace

Environment::Environment(std::map<std::string, std::string> vars) {
  for (auto& [k, v] : vars) vars_.emplace(k, std::move(v));
}

Environment Environment::FromProcess() {
  std::map<std::string, std::string> vars;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view var(*e);
    const size_t eq = var.find('=');
    if (eq == std::string_view::npos || !var.starts_with("OTEL_")) continue;
    vars.emplace(std::string(var.substr(0, eq)), std::string(var.substr(eq + 1)));
  }
  return Environment(std::move(vars));
}

std::optional<std::string> Environment::Get(std::string_view name) const {
  auto it = vars_.find(name);
  if (it == vars_.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

std::string HelpText() {
  return R"(kspan: host-wide eBPF tracing agent. Turns what crosses the sockets of every
unmodified process into OpenTelemetry spans (HTTP/1.x today).

Usage: sudo kspan [options]

Outputs:
  --output SPEC          Where spans go; repeatable. SPEC is one of:
                           console      one readable line per span on stdout
                           file:PATH    OTLP/JSON lines (one TracesData per line), the
                                        OpenTelemetry Collector file-exporter format;
                                        at 256 MiB it moves to PATH.1 and starts anew
                           otlp         OTLP to a collector or backend (--otlp-*)
                           zipkin       Zipkin v2 JSON (--zipkin-*)
                           none         build and count spans, export nothing
                         Default: console and file:kspan-spans.jsonl.
                         Env: OTEL_TRACES_EXPORTER, a comma list of the same.
  --otlp-endpoint URL    Base URL; http/* protocols append /v1/traces. Default:
                         http://localhost:4318 (grpc: http://localhost:4317).
                         https uses TLS. Env: OTEL_EXPORTER_OTLP_ENDPOINT.
  --otlp-traces-endpoint URL
                         Full URL, used as is; beats --otlp-endpoint.
                         Env: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
  --otlp-protocol P      grpc, http/protobuf or http/json. Default: http/protobuf.
                         Env: OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL.
  --otlp-headers K=V,... Sent with every request; values percent-encoded;
                         repeatable. Env: OTEL_EXPORTER_OTLP_(TRACES_)HEADERS.
  --otlp-timeout-ms N    One export attempt, at most, 1..600000. Default: 10000.
                         Env: OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT.
  --otlp-compression C   gzip or none. Default: none.
                         Env: OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION.
  --otlp-certificate FILE
                         PEM CA bundle trusted for https; must be readable.
                         Default: the system's CAs.
                         Env: OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE.
  --zipkin-endpoint URL  Default: http://localhost:9411/api/v2/spans.
                         Env: OTEL_EXPORTER_ZIPKIN_ENDPOINT.
  --zipkin-timeout-ms N  1..600000. Default: 10000.
                         Env: OTEL_EXPORTER_ZIPKIN_TIMEOUT.
  --resource-attributes K=V,...
                         Added to every watched process's resource (its own
                         attributes win; service.name is not allowed); values
                         percent-encoded; repeatable.
                         Env: OTEL_RESOURCE_ATTRIBUTES.
  Queues of network exporters: OTEL_BSP_MAX_QUEUE_SIZE (2048),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512), OTEL_BSP_SCHEDULE_DELAY (5000 ms).

Capture:
  --duration SECONDS     Run this long, flush every output, exit 0. Default: until
                         SIGINT or SIGTERM.
  --pid PID              Trace only this process; repeatable. Default: every process
                         except kspan itself.
  --capture-bytes N      Payload bytes captured per syscall, 0..16384. Default: 4096.
  --ring-buffer-bytes N  Kernel ring buffer size, a power of two. Default: 8388608.
  --drain-interval-ms N  How often the ring buffer is drained, 1..1000. Default: 10.
  --trace-window-ms N    How long a trace whose spans have all ended waits for late
                         spans before it is exported whole, 0..60000. Default: 500.
  --trace-max-held-mib N Memory for spans held while their traces assemble, 1..4096;
                         past it the oldest traces leave early (counted in
                         kspan_traces_flushed_total). Default: 64.
  --log-level LEVEL      debug, info, warn or error. Default: info.

kspan's own state (docs/metrics.md):
  --listen ADDRESS:PORT  Serve /metrics (Prometheus text), /api/agent-graph,
                         /api/status and /healthz over HTTP, no authentication:
                         127.0.0.1:9464 (this host only, recommended), [::1]:9464,
                         0.0.0.0:9464 or [::]:9464 (every address). Port 0: any
                         free port (logged). Default: off, no socket.

LLM calls (docs/genai.md):
  --genai-capture-bytes N
                         Bytes captured per syscall on connections that carry LLM
                         API calls, 0..16384; at or below --capture-bytes they
                         are not told apart. Default: 16384.
  --genai-max-body-bytes N
                         Body bytes kept of each LLM request and response (then
                         the last 64 KiB of a longer one), 0..67108864.
                         Default: 1048576.
  --genai-capture-content
                         Export prompts, completions and system instructions as
                         a span event, secrets redacted. Default: off.
                         Env: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT.
  --agent NAME=MATCH     A process whose executable path or command line contains
                         MATCH is the agent NAME (default: its service.name);
                         repeatable, the first match wins. See docs/agents.md.

  --config FILE          YAML file with the same settings (keys: outputs, duration,
                         pids, capture_bytes, ring_buffer_bytes, drain_interval_ms,
                         trace_window_ms, trace_max_held_mib, log_level, listen,
                         otlp, zipkin, queue, resource_attributes, genai, agents).
  --version              Print the version and exit.
  -h, --help             Print this help and exit.

Each setting is taken from a flag, else the environment, else the file, else its
default. See docs/configuration.md.

Logs are JSON lines on stderr. Once every probe is attached kspan logs
{"msg":"ready",...}; on exit it logs {"msg":"stopped",...} with its counters.
)";
}

Result<Config> ParseCommandLine(int argc, char** argv) {
  return ParseCommandLine(argc, argv, Environment::FromProcess());
}

Result<Config> ParseCommandLine(int argc, char** argv, const Environment& env) {
  Config c;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  // Accept both "--flag value" and "--flag=value".
  std::vector<std::pair<std::string, std::string>> flags;
  // clang-format off
  static const std::set<std::string> kValueFlags = {
      "--output", "--duration", "--pid", "--capture-bytes", "--config", "--ring-buffer-bytes",
      "--drain-interval-ms", "--trace-window-ms", "--trace-max-held-mib", "--log-level",
      "--otlp-endpoint", "--otlp-traces-endpoint", "--otlp-protocol", "--otlp-headers",
      "--otlp-timeout-ms", "--otlp-compression", "--otlp-certificate", "--zipkin-endpoint",
      "--zipkin-timeout-ms", "--resource-attributes", "--genai-capture-bytes",
      "--genai-max-body-bytes", "--agent", "--listen"};
  // clang-format on
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a(args[i]);
    if (a == "-h" || a == "--help") {
      c.show_help = true;
      continue;
    }
    if (a == "--version") {
      c.show_version = true;
      continue;
    }
    if (a == "--genai-capture-content") {
      flags.emplace_back(a, "true");
      continue;
    }
    std::string value;
    const size_t eq = a.find('=');
    if (a.starts_with("--") && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      if (!kValueFlags.count(a)) return InvalidArgument("unknown option '" + a + "' (see --help)");
    } else {
      if (!kValueFlags.count(a)) return InvalidArgument("unknown option '" + a + "' (see --help)");
      if (i + 1 >= args.size()) return InvalidArgument("option " + a + " needs a value (see --help)");
      value = std::string(args[++i]);
    }
    flags.emplace_back(a, value);
  }
  if (c.show_help || c.show_version) return c;

  Layer file_layer, env_layer, flag_layer;
  for (const auto& [flag, value] : flags) {
    if (flag == "--config") RETURN_IF_ERROR(ApplyConfigFile(value, &c, &file_layer, &c.warnings));
  }
  RETURN_IF_ERROR(ReadEnvironment(env, &env_layer, &c.warnings));
  if (auto v = env.Get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")) {
    RETURN_IF_ERROR(
        ParseBool("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", *v, &c.genai_capture_content));
  }

  std::vector<std::string> outputs;
  bool pids_from_flags = false;
  KeyValues headers;
  bool headers_from_flags = false;
  std::vector<std::pair<std::string, std::string>> flag_agent_rules;
  for (const auto& [flag, value] : flags) {
    if (flag == "--output") {
      outputs.push_back(value);
    } else if (flag == "--pid") {
      uint32_t pid;
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--pid", value, 1, 4194304, &pid));
      if (!pids_from_flags) c.pids.clear();
      pids_from_flags = true;
      c.pids.push_back(pid);
    } else if (flag == "--duration") {
      RETURN_IF_ERROR(ParseDuration("--duration", value, &c.duration_seconds));
    } else if (flag == "--capture-bytes") {
      RETURN_IF_ERROR(
          ParseUnsigned<uint32_t>("--capture-bytes", value, 0, KSPAN_MAX_CAPTURE, &c.capture_bytes));
    } else if (flag == "--ring-buffer-bytes") {
      RETURN_IF_ERROR(
          ParseUnsigned<uint32_t>("--ring-buffer-bytes", value, 4096, 1u << 30, &c.ring_buffer_bytes));
      RETURN_IF_ERROR(CheckRingBuffer("--ring-buffer-bytes", c.ring_buffer_bytes));
    } else if (flag == "--drain-interval-ms") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--drain-interval-ms", value, 1, 1000, &c.drain_interval_ms));
    } else if (flag == "--trace-window-ms") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--trace-window-ms", value, 0, 60000, &c.trace_window_ms));
    } else if (flag == "--trace-max-held-mib") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>("--trace-max-held-mib", value, 1, 4096, &c.trace_max_held_mib));
    } else if (flag == "--log-level") {
      RETURN_IF_ERROR(CheckLogLevel("--log-level", value));
      c.log_level = value;
    } else if (flag == "--listen") {
      RETURN_IF_ERROR(CheckListen(flag, value));
      c.listen = value;
    } else if (flag == "--otlp-endpoint") {
      RETURN_IF_ERROR(CheckEndpoint(flag, value));
      flag_layer.otlp_endpoint = Setting<std::string>{value, flag};
    } else if (flag == "--otlp-traces-endpoint") {
      RETURN_IF_ERROR(CheckEndpoint(flag, value));
      flag_layer.otlp_traces_endpoint = Setting<std::string>{value, flag};
    } else if (flag == "--otlp-protocol") {
      RETURN_IF_ERROR(ParseProtocol(flag, value, &flag_layer.otlp_protocol));
    } else if (flag == "--otlp-headers") {
      RETURN_IF_ERROR(ParseHeaders(flag, value, &headers));
      headers_from_flags = true;
    } else if (flag == "--otlp-timeout-ms") {
      RETURN_IF_ERROR(ParseMillis(flag, value, &flag_layer.otlp_timeout));
    } else if (flag == "--otlp-compression") {
      RETURN_IF_ERROR(ParseCompression(flag, value, &flag_layer.otlp_compression));
    } else if (flag == "--otlp-certificate") {
      flag_layer.otlp_certificate = Setting<std::string>{value, flag};
    } else if (flag == "--zipkin-endpoint") {
      RETURN_IF_ERROR(CheckEndpoint(flag, value));
      flag_layer.zipkin_endpoint = Setting<std::string>{value, flag};
    } else if (flag == "--zipkin-timeout-ms") {
      RETURN_IF_ERROR(ParseMillis(flag, value, &flag_layer.zipkin_timeout));
    } else if (flag == "--agent") {
      const size_t eq = value.find('=');
      RETURN_IF_ERROR(AddAgentRule(flag, value.substr(0, eq),
                                   eq == std::string::npos ? "" : value.substr(eq + 1), &flag_agent_rules));
    } else if (flag == "--genai-capture-content") {
      c.genai_capture_content = true;
    } else if (flag == "--genai-capture-bytes") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>(flag, value, 0, KSPAN_MAX_CAPTURE, &c.genai_capture_bytes));
    } else if (flag == "--genai-max-body-bytes") {
      RETURN_IF_ERROR(ParseUnsigned<uint32_t>(flag, value, 0, 64u << 20, &c.genai_max_body_bytes));
    } else if (flag == "--resource-attributes") {
      KeyValues attrs;
      RETURN_IF_ERROR(ParseKeyValueList(flag, value, /*secret_values=*/false, &attrs));
      RETURN_IF_ERROR(CheckResourceAttributes(flag, /*from_env=*/false, &attrs, &c.warnings));
      MergeByKey(attrs, &flag_layer.resource_attributes);
    }
  }
  if (!outputs.empty()) RETURN_IF_ERROR(ParseOutputs("--output", outputs, &flag_layer.outputs));
  // The first rule that matches wins: the flags' before the file's.
  c.agent_rules.insert(c.agent_rules.begin(), flag_agent_rules.begin(), flag_agent_rules.end());
  if (headers_from_flags) flag_layer.otlp_headers = Setting<KeyValues>{std::move(headers), "--otlp-headers"};

  RETURN_IF_ERROR(Resolve(flag_layer, env_layer, file_layer, &c));
  return c;
}

}  // namespace kspan::agent
