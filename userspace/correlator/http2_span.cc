#include "correlator/http2_span.h"

#include <algorithm>
#include <array>
#include <string>

#include "correlator/http_span.h"

namespace kspan::correlator {
namespace {

using protocols::http2::Record;
using protocols::http2::StreamEnd;

void Erase(model::Span* span, std::string_view key) {
  auto& a = span->attributes;
  a.erase(std::remove_if(a.begin(), a.end(), [&](const model::Attribute& x) { return x.key == key; }),
          a.end());
}

std::string_view FieldOf(const protocols::http1::Message& m, std::string_view name) {
  for (const auto& [n, v] : m.headers()) {
    if (n == name) return v;
  }
  return {};
}

bool IsGrpc(const Record& r) {
  std::string_view ct = FieldOf(r.http.request, "content-type");
  if (ct.empty() && !r.http.response_missing) ct = FieldOf(r.http.response, "content-type");
  if (!ct.starts_with("application/grpc")) return false;
  return ct.size() == 16 || ct[16] == '+' || ct[16] == ';';
}

// grpc-status: a decimal number (gRPC PROTOCOL-HTTP2.md); -1 when absent or malformed.
int ParseGrpcStatus(std::string_view v) {
  if (v.empty() || v.size() > 3) return -1;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// grpc-message is percent-encoded UTF-8 (PROTOCOL-HTTP2.md); a bad escape stays as sent.
std::string PercentDecode(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size()) {
      const int hi = Hex(v[i + 1]), lo = Hex(v[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(v[i]);
  }
  return out;
}

// The gRPC status a client sees for a stream reset with this HTTP/2 error code
// (PROTOCOL-HTTP2.md "Errors"); -1 when gRPC defines none.
int GrpcStatusForReset(uint32_t code) {
  switch (code) {
    case 0x0:             // NO_ERROR
    case 0x1:             // PROTOCOL_ERROR
    case 0x2:             // INTERNAL_ERROR
    case 0x3:             // FLOW_CONTROL_ERROR
    case 0x4:             // SETTINGS_TIMEOUT
    case 0x6:             // FRAME_SIZE_ERROR
    case 0x9:             // COMPRESSION_ERROR
    case 0xa: return 13;  // CONNECT_ERROR -> INTERNAL
    case 0x7: return 14;  // REFUSED_STREAM -> UNAVAILABLE
    case 0x8: return 1;   // CANCEL -> CANCELLED
    case 0xb: return 8;   // ENHANCE_YOUR_CALM -> RESOURCE_EXHAUSTED
    case 0xc: return 7;   // INADEQUATE_SECURITY -> PERMISSION_DENIED
    default: return -1;
  }
}

bool ServerError(int code) {
  return code == 2 || code == 4 || code == 12 || code == 13 || code == 14 || code == 15;
}

void ApplyGrpc(const Record& r, bool is_server, model::Span* span) {
  // What the RPC conventions keep of the HTTP span.
  static constexpr std::array<std::string_view, 9> kKeep = {
      "server.address",       "server.port",       "client.address",        "client.port",
      "network.peer.address", "network.peer.port", "network.protocol.name", "network.protocol.version",
      "kspan.incomplete"};
  std::vector<model::Attribute> kept;
  for (model::Attribute& a : span->attributes) {
    if (std::find(kKeep.begin(), kKeep.end(), a.key) != kKeep.end()) kept.push_back(std::move(a));
  }
  span->attributes = std::move(kept);
  span->status_code = model::StatusCode::kUnset;
  span->status_message.clear();

  std::string_view path = r.http.request.target();
  std::string method;
  if (path.size() > 1 && path[0] == '/') method = std::string(path.substr(1));
  span->name = method.empty() ? "grpc" : method;
  span->Set("rpc.system.name", std::string("grpc"));
  if (!method.empty()) span->Set("rpc.method", method);
  if (r.headers_incomplete) span->Set("kspan.http2.headers_incomplete", true);

  int code = ParseGrpcStatus(r.TrailerOrHeader("grpc-status"));
  std::string message = PercentDecode(r.TrailerOrHeader("grpc-message"));
  if (code < 0 && r.end == StreamEnd::kReset) {
    code = GrpcStatusForReset(r.error_code);
    message = "RST_STREAM " + protocols::http2::ErrorCodeName(r.error_code) + " from " +
              (r.reset_by_client ? "client" : "server");
  } else if (code < 0 && r.end == StreamEnd::kGoAway) {
    code = 14;  // UNAVAILABLE: the server will not process the call
    message = "GOAWAY " + protocols::http2::ErrorCodeName(r.error_code) + ": not processed";
  }
  if (code >= 0) {
    const std::string_view name = GrpcStatusName(code);
    span->Set("rpc.response.status_code", name.empty() ? std::to_string(code) : std::string(name));
    const bool error = is_server ? ServerError(code) : code != 0;
    if (error) {
      span->status_code = model::StatusCode::kError;
      span->status_message = message;
      span->Set("error.type", name.empty() ? std::to_string(code) : std::string(name));
    }
  } else if (r.http.response_missing) {
    // No status and no answer: as for any request (correlator/unanswered.h).
    if (r.http.unanswered == protocols::Unanswered::kNoResponse) {
      span->status_code = model::StatusCode::kError;
      span->status_message = "no response before the connection ended";
      span->Set("error.type", std::string("response_missing"));
    }
  }
  if (!r.request_messages.lost) {
    span->Set("kspan.rpc.request.messages", static_cast<int64_t>(r.request_messages.messages));
  }
  if (!r.http.response_missing && !r.response_messages.lost) {
    span->Set("kspan.rpc.response.messages", static_cast<int64_t>(r.response_messages.messages));
  }
}

}  // namespace

std::string_view GrpcStatusName(int code) {
  static constexpr std::array<std::string_view, 17> kNames = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  if (code < 0 || code >= static_cast<int>(kNames.size())) return {};
  return kNames[code];
}

void ApplyHttp2(const Record& r, bool is_server, model::Span* span) {
  if (IsGrpc(r)) {
    ApplyGrpc(r, is_server, span);
    return;
  }
  if (r.headers_incomplete) {
    span->Set("kspan.http2.headers_incomplete", true);
    if (r.http.request.target().empty()) {
      // :path unknown: no path at all, not "/" (which an empty target reads as).
      for (std::string_view key : {"url.full", "url.path", "url.template", "url.query"}) Erase(span, key);
      span->name = r.http.request.method().empty()
                       ? "HTTP"
                       : std::string(NormalizeHttpMethod(r.http.request.method()));
    }
    if (r.http.request.method().empty()) {
      // Unknown, not "_OTHER": the method may well be a known one.
      Erase(span, "http.request.method");
      Erase(span, "http.request.method_original");
      if (span->name.starts_with("HTTP")) span->name = "HTTP" + span->name.substr(4);
    }
    if (!r.http.response_missing && r.http.response.status_code == 0) {
      Erase(span, "http.response.status_code");
      if (const std::string* e = span->FindString("error.type"); e && *e == "0") {
        Erase(span, "error.type");
        span->status_code = model::StatusCode::kUnset;
        span->status_message.clear();
      }
    }
  }
  if (r.end == StreamEnd::kReset || r.end == StreamEnd::kGoAway) {
    const bool reset = r.end == StreamEnd::kReset;
    const std::string code = protocols::http2::ErrorCodeName(r.error_code);
    span->status_code = model::StatusCode::kError;
    span->status_message = reset ? "RST_STREAM " + code + " from " + (r.reset_by_client ? "client" : "server")
                                 : "GOAWAY " + code + ": stream not processed";
    span->Set("error.type", code);
    span->Set("kspan.http2.end", std::string(reset ? "rst_stream" : "goaway"));
  }
}

}  // namespace kspan::correlator
