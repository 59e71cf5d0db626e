#include "agent/config_values.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <unordered_map>

#include "common/http_server.h"
#include "common/log.h"

namespace kspan::agent {

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

Status ParseUnsigned(std::string_view what, std::string_view text, uint64_t min, uint64_t max,
                     uint64_t* out) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return InvalidArgument(std::string(what) + ": '" + std::string(text) + "' is not a whole number from " +
                           std::to_string(min) + " to " + std::to_string(max));
  }
  *out = v;
  return Status::Ok();
}

Status ParseMillis(std::string_view where, std::string_view text, std::chrono::milliseconds* out) {
  uint32_t v = 0;
  RETURN_IF_ERROR(ParseUnsigned<uint32_t>(std::string(where) + " (milliseconds)", text, 1, kMaxMillis, &v));
  *out = std::chrono::milliseconds(v);
  return Status::Ok();
}

Status ParseCount(std::string_view where, std::string_view text, size_t* out) {
  return ParseUnsigned<size_t>(where, text, 1, kMaxQueueSpans, out);
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

Status CheckLogLevel(std::string_view where, std::string_view level) {
  log::Level l;
  if (!log::ParseLevel(std::string(level), &l)) {
    return InvalidArgument(std::string(where) + ": '" + std::string(level) +
                           "' is not one of debug, info, warn, error");
  }
  return Status::Ok();
}

Status CheckListen(std::string_view where, std::string_view address) {
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

Status ParseOutputs(std::string_view where_view, const std::vector<std::string>& items,
                    std::vector<std::string>* out) {
  const std::string where(where_view);
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
  *out = std::move(specs);
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

Status ParseProtocol(std::string_view where, std::string_view text, exporters::OtlpProtocol* out) {
  const std::string v = Lower(Trim(text));
  for (auto p : {exporters::OtlpProtocol::kGrpc, exporters::OtlpProtocol::kHttpProtobuf,
                 exporters::OtlpProtocol::kHttpJson}) {
    if (v == ProtocolName(p)) {
      *out = p;
      return Status::Ok();
    }
  }
  return InvalidArgument(std::string(where) + ": '" + std::string(text) +
                         "' is not a known OTLP protocol; expected " + std::string(kProtocolsExpected));
}

Status ParseCompression(std::string_view where, std::string_view text, exporters::Compression* out) {
  const std::string v = Lower(Trim(text));
  if (v == "gzip" || v == "none") {
    *out = v == "gzip" ? exporters::Compression::kGzip : exporters::Compression::kNone;
    return Status::Ok();
  }
  return InvalidArgument(std::string(where) + ": '" + std::string(text) +
                         "' is not a known compression; expected " + std::string(kCompressionsExpected));
}

// ---------------------------------------------------------------------------------------
// Endpoint URLs.

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

std::string AppendMetricsPath(const std::string& base) {
  std::string url = AppendTracesPath(base);
  const size_t at = url.rfind("v1/traces");
  return url.replace(at, 9, "v1/metrics");
}

std::string LoggableEndpoint(const std::string& url) {
  return url.substr(0, url.find('?'));
}

// ---------------------------------------------------------------------------------------
// key=value lists: OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES.

static int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool PercentDecode(std::string_view s, std::string* out) {
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
Status ParseKeyValueList(std::string_view where_view, std::string_view text, bool secret_values,
                         KeyValues* out) {
  const std::string where(where_view);
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
Status CheckHeaders(std::string_view where_view, KeyValues* headers) {
  const std::string where(where_view);
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

// Agent-wide resource attributes. service.name names each watched process (its own
// OTEL_SERVICE_NAME, else its executable), so one value for every process is refused
// from a flag or the file, and dropped, with a warning, from OTEL_RESOURCE_ATTRIBUTES
// (where an orchestrator may have put the agent's own name).
Status CheckResourceAttributes(std::string_view where_view, bool drop_service_name, KeyValues* attrs,
                               std::vector<std::string>* warnings) {
  const std::string where(where_view);
  if (attrs->size() > kMaxResourceAttributes) {
    return InvalidArgument(where + ": " + std::to_string(attrs->size()) + " resource attributes; at most " +
                           std::to_string(kMaxResourceAttributes) +
                           " are accepted (each is added to every watched process's resource)");
  }
  const auto is_service_name = [](const auto& kv) { return kv.first == "service.name"; };
  if (std::none_of(attrs->begin(), attrs->end(), is_service_name)) return Status::Ok();
  if (!drop_service_name) {
    return InvalidArgument(where + ": service.name cannot be set for every process; each watched process " +
                           "is named by its own OTEL_SERVICE_NAME, else its executable");
  }
  warnings->push_back(where + ": service.name is ignored; each watched process is named by its own " +
                      "OTEL_SERVICE_NAME, else its executable");
  attrs->erase(std::remove_if(attrs->begin(), attrs->end(), is_service_name), attrs->end());
  return Status::Ok();
}

Status CheckAgentRule(std::string_view where, const std::string& name, const std::string& match) {
  if (name.empty() || match.empty()) {
    return InvalidArgument(std::string(where) + ": an agent rule is NAME=MATCH, both non-empty (got '" +
                           name + "=" + match + "')");
  }
  return Status::Ok();
}

Status ParseBool(std::string_view where, std::string_view s, bool* out) {
  if (s == "true" || s == "1" || s == "yes" || s == "on") {
    *out = true;
  } else if (s == "false" || s == "0" || s == "no" || s == "off") {
    *out = false;
  } else {
    return InvalidArgument(std::string(where) + ": '" + std::string(s) + "' is not true or false");
  }
  return Status::Ok();
}

Status CheckReadableFile(std::string_view where_view, const std::string& path) {
  const std::string where(where_view);
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return InvalidArgument(where + ": cannot read '" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgument(where + ": '" + path + "' is not a regular file");
  std::ifstream f(path);
  if (!f) return InvalidArgument(where + ": cannot read '" + path + "': " + std::strerror(errno));
  return Status::Ok();
}

// An index from key to position keeps a merge linear; searching `into` for each key made
// 200,000 attributes take 50 s (issue 16). The index holds views: into `into`'s keys,
// which stay put because `into` never grows past the capacity reserved first, and into
// `from`'s.
void MergeByKey(const KeyValues& from, KeyValues* into) {
  into->reserve(into->size() + from.size());
  std::unordered_map<std::string_view, size_t> index;
  index.reserve(into->size() + from.size());
  for (size_t i = 0; i < into->size(); ++i) index.emplace((*into)[i].first, i);
  for (const auto& [k, v] : from) {
    auto [it, inserted] = index.emplace(k, into->size());
    if (inserted) {
      into->emplace_back(k, v);
    } else {
      (*into)[it->second].second = v;
    }
  }
}

}  // namespace kspan::agent
