#include "correlator/http_span.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/strings.h"
#include "correlator/unanswered.h"
#include "correlator/url.h"

namespace kspan::correlator {
namespace {

using protocols::http1::Message;
using protocols::http1::Record;

// The first item of a comma-separated list header (X-Forwarded-For: "client, proxy1").
std::string_view FirstListItem(std::string_view v) {
  return TrimOws(v.substr(0, v.find(',')));
}

// The value of parameter `name` in the first element of a Forwarded header (RFC 7239 §4):
//   Forwarded: for="[2001:db8::17]:4711";proto=https;host=example.com, for=10.0.0.1
// Quoted strings may hold ',' and ';'. Returns the value unquoted, or empty.
std::string_view ForwardedParam(std::string_view header, std::string_view name) {
  size_t i = 0;
  while (i < header.size()) {
    const size_t pair_start = i;
    bool quoted = false;
    size_t eq = std::string_view::npos;
    for (; i < header.size(); ++i) {
      const char c = header[i];
      if (c == '"') quoted = !quoted;
      if (quoted) continue;
      if (c == '=' && eq == std::string_view::npos) eq = i;
      if (c == ';' || c == ',') break;
    }
    const bool element_ends = i >= header.size() || header[i] == ',';
    if (eq != std::string_view::npos) {
      const std::string_view key = TrimOws(header.substr(pair_start, eq - pair_start));
      if (EqualsIgnoreCase(key, name)) {
        std::string_view value = TrimOws(header.substr(eq + 1, i - eq - 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
          value = value.substr(1, value.size() - 2);
        }
        return value;
      }
    }
    if (element_ends) break;  // only the element nearest the client counts
    ++i;
  }
  return {};
}

uint16_t DefaultPort(std::string_view scheme) {
  if (scheme == "http") return 80;
  if (scheme == "https") return 443;
  return 0;
}

// Appends v in decimal.
void AppendDecimal(std::string* out, uint32_t v) {
  char buf[10];
  char* p = buf + sizeof(buf);
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out->append(p, buf + sizeof(buf));
}

// A body was announced in the head, so a 0 size is a fact worth reporting.
bool BodyDeclared(const Message& m) {
  return m.HasHeader("Content-Length") || m.HasHeader("Transfer-Encoding");
}

const size_t kInlineChars = std::string().capacity();  // libstdc++: 15

// Appends attributes constructed in place in the span's vector: no temporary key, value
// or Attribute is made and moved (the vector is reserved for the span's attributes).
class AttributeAdder {
 public:
  explicit AttributeAdder(std::vector<model::Attribute>* out) : out_(out) {}
  // A string attribute whose value the caller writes into the returned string, before the
  // next attribute is added (that may move it).
  std::string& Str(model::AttrKey&& key) { return *std::get_if<std::string>(&Add(std::move(key)).value); }
  // A value that fits the string's own buffer is appended into it (not assigned: the
  // string is empty, and assign's aliasing checks cost twice as much); a longer one is
  // allocated at its exact size (append would round the capacity up to 30, and held
  // spans are bounded by their capacities, trace_window.cc SpanBytes).
  void Str(model::AttrKey&& key, std::string_view value) {
    if (value.size() <= kInlineChars) {
      Str(std::move(key)).append(value);
    } else {
      Add(std::move(key)).value.emplace<std::string>(value);
    }
  }
  void Own(model::AttrKey&& key, std::string&& value) {
    *std::get_if<std::string>(&Add(std::move(key)).value) = std::move(value);
  }
  void Int(model::AttrKey&& key, int64_t value) { Add(std::move(key)).value.emplace<int64_t>(value); }

 private:
  // A default Attribute (an empty string value) given its key. Attribute is an aggregate,
  // and emplace_back's parenthesised aggregate initialisation is a C++20 feature clang 14
  // (the fuzz build's compiler) does not have.
  model::Attribute& Add(model::AttrKey&& key) {
    model::Attribute& a = out_->emplace_back();
    a.key = std::move(key);
    return a;
  }

  std::vector<model::Attribute>* out_;
};

// W3C Trace Context on a SERVER span. Exactly one valid traceparent header gives the
// context (two of them make it ambiguous, hence invalid, as the W3C test suite expects);
// every tracestate header is one list (model::ParseTraceState), only when the traceparent
// was valid.
void ContinueIncomingTrace(const Message& request, model::Span* span) {
  const protocols::http1::TraceContextFields fields = protocols::http1::TraceContextOf(request);
  std::optional<model::TraceParent> tp;
  if (!fields.traceparent.empty()) tp = model::ParseTraceParent(fields.traceparent);
  if (!tp) {
    span->trace_id = model::TraceId::Random();
    span->trace_flags = 0x01;  // sampled: kspan traces everything it sees
    return;
  }
  span->trace_id = tp->trace_id;
  span->parent_span_id = tp->parent_id;
  span->trace_flags = tp->flags;
  const std::string_view state = fields.tracestate;
  span->trace_state = model::ParseTraceState({&state, 1}).value_or("");
}

}  // namespace

std::string_view NormalizeHttpMethod(std::string_view method) {
  // The known methods (RFC 9110 + PATCH) by length, then a fixed-size compare: a few
  // instructions, not a memcmp call per name.
  const auto is = [&](std::string_view known) {
    return method.size() == known.size() && std::memcmp(method.data(), known.data(), known.size()) == 0;
  };
  switch (method.size()) {
    case 3:
      if (is("GET")) return "GET";
      if (is("PUT")) return "PUT";
      break;
    case 4:
      if (is("POST")) return "POST";
      if (is("HEAD")) return "HEAD";
      break;
    case 5:
      if (is("PATCH")) return "PATCH";
      if (is("TRACE")) return "TRACE";
      break;
    case 6:
      if (is("DELETE")) return "DELETE";
      break;
    case 7:
      if (is("CONNECT")) return "CONNECT";
      if (is("OPTIONS")) return "OPTIONS";
      break;
    default: break;
  }
  return "_OTHER";
}

void BuildHttpSpan(const Record& record, const HttpConnContext& conn,
                   std::shared_ptr<const model::Resource> resource, const HttpSpanOptions& options,
                   model::Span* out) {
  const Message& req = record.request;
  const Message& resp = record.response;
  const bool has_response = !record.response_missing;
  const bool server = conn.is_server;

  model::Span& span = *out;
  span.kind = server ? model::SpanKind::kServer : model::SpanKind::kClient;
  span.resource = std::move(resource);
  span.span_id = model::SpanId::Random();
  if (server) {
    ContinueIncomingTrace(req, &span);
  } else {
    span.trace_id = model::TraceId::Random();
    span.trace_flags = 0x01;
  }
  span.start_time_unix_nano = req.timing.start_ns;
  span.end_time_unix_nano =
      std::max(has_response ? resp.timing.end_ns : req.timing.end_ns, req.timing.start_ns);

  const RequestTarget target = SplitTarget(req.target());
  const bool has_path = target.form == TargetForm::kOrigin || target.form == TargetForm::kAbsolute;

  // Method, then the name "{method} {url.template}" (the template never is empty: "/" for
  // an empty path), written once into the attribute and copied into the name.
  const std::string_view method = NormalizeHttpMethod(req.method());
  const bool known_method = method != "_OTHER";
  const std::string_view name_method = known_method ? method : std::string_view("HTTP");
  // Room for every attribute a span of its side commonly gets, sized to an allocator class:
  // a SERVER span has 15 (18 x 56 B = 1 KiB), a CLIENT span 12 (16: 896 B). A span held in
  // the trace window costs this while its trace assembles: 20 (1,280 B) was ~2 MB at 10k
  // spans/s.
  span.attributes.reserve(server ? 18 : 16);
  AttributeAdder add(&span.attributes);
  add.Str("http.request.method", method);
  if (!known_method) add.Str("http.request.method_original", req.method());
  if (has_response) add.Int("http.response.status_code", resp.status_code);
  if (has_path) {
    // Built in a reused buffer, then copied at its size (the attribute's capacity is its
    // size, as held-span accounting expects, and a long path with a short template
    // allocates nothing).
    thread_local std::string url_template;
    url_template.clear();
    AppendUrlTemplate(&url_template, target.path);
    add.Str("url.template", url_template);
    span.name.reserve(name_method.size() + 1 + url_template.size());
    span.name.append(name_method).push_back(' ');
    span.name.append(url_template);
    if (url_template.capacity() > 4096) std::string().swap(url_template);  // keep no huge buffer
  } else {
    span.name.assign(name_method);
  }

  static const events::SocketTuple kNoTuple;
  const events::SocketTuple& tuple = conn.tuple ? *conn.tuple : kNoTuple;
  const events::Endpoint& local = tuple.local;
  const events::Endpoint& remote = tuple.remote;
  std::string_view scheme = conn.tls ? "https" : "http";

  if (server) {
    // What a proxy in front told us about the original request (semantic conventions
    // "Setting server.address and server.port"; client.address note).
    const std::string_view forwarded = req.Header("Forwarded");
    std::string_view proto = ForwardedParam(forwarded, "proto");
    if (proto.empty()) proto = FirstListItem(req.Header("X-Forwarded-Proto"));
    if (EqualsIgnoreCase(proto, "http")) {
      scheme = "http";
    } else if (EqualsIgnoreCase(proto, "https")) {
      scheme = "https";
    }
    add.Str("url.scheme", scheme);
    if (has_path && !target.path.empty()) add.Str("url.path", target.path);
    if (target.has_query) {
      add.Own("url.query",
              options.redact_query_values ? RedactQuery(target.query) : std::string(target.query));
    }

    // A port the client named explicitly wins. Without one, a host a proxy reported or an
    // absolute-form target implies the scheme's default port; a bare Host header gets the
    // port the request actually arrived on.
    std::optional<HostPort> host;
    bool implies_default_port = true;
    if (auto v = ForwardedParam(forwarded, "host"); !v.empty()) host = ParseHostPort(v);
    if (!host) host = ParseHostPort(FirstListItem(req.Header("X-Forwarded-Host")));
    if (!host && target.form == TargetForm::kAbsolute) host = ParseHostPort(target.authority);
    if (!host) {
      implies_default_port = false;
      host = ParseHostPort(req.Header("Host"));
    }
    if (host) {
      add.Str("server.address", host->host);
      if (host->has_port) {
        add.Int("server.port", host->port);
      } else if (implies_default_port) {
        if (const uint16_t p = DefaultPort(scheme)) add.Int("server.port", p);
      } else if (local.port) {
        add.Int("server.port", local.port);
      }
    } else {
      if (!local.address.empty()) add.Str("server.address", local.address);
      if (local.port) add.Int("server.port", local.port);
    }

    std::optional<HostPort> client;
    std::string_view fwd_for = ForwardedParam(forwarded, "for");
    if (fwd_for.empty()) fwd_for = FirstListItem(req.Header("X-Forwarded-For"));
    // "unknown" and "_obfuscated" identifiers (RFC 7239 §6) name no address.
    if (!fwd_for.empty() && fwd_for != "unknown" && fwd_for.front() != '_') client = ParseHostPort(fwd_for);
    if (client) {
      add.Str("client.address", client->host);
      if (client->has_port) add.Int("client.port", client->port);
    } else if (!remote.address.empty()) {
      add.Str("client.address", remote.address);
      if (remote.port) add.Int("client.port", remote.port);
    }
  } else {
    // Where the client meant to go: an absolute-form target (a forward proxy is in the
    // way), else the Host header, else the socket's remote end.
    std::string_view userinfo;
    std::optional<HostPort> host;
    if (target.form == TargetForm::kAbsolute) {
      if (EqualsIgnoreCase(target.scheme, "http")) {
        scheme = "http";
      } else if (EqualsIgnoreCase(target.scheme, "https")) {
        scheme = "https";
      }
      userinfo = target.userinfo;
      host = ParseHostPort(target.authority);
    } else if (target.form == TargetForm::kAuthority) {
      host = ParseHostPort(target.authority);
    }
    if (!host) host = ParseHostPort(req.Header("Host"));
    std::string_view address;
    uint16_t port = 0;
    if (host) {
      address = host->host;
      port = host->has_port ? host->port : DefaultPort(scheme);
    } else {
      address = remote.address;
      port = remote.port;
    }

    std::string& full = add.Str("url.full");
    full.reserve(scheme.size() + address.size() + req.target().size() + 32);
    full += scheme;
    full += "://";
    if (!userinfo.empty()) full += "REDACTED:REDACTED@";  // url.full must not carry credentials
    AppendUrlHost(&full, address);
    if (port != 0 && port != DefaultPort(scheme)) {
      full.push_back(':');
      AppendDecimal(&full, port);
    }
    if (has_path) {
      full += target.path.empty() ? std::string_view("/") : target.path;
      if (target.has_query) {
        full.push_back('?');
        if (options.redact_query_values) {
          AppendRedactedQuery(&full, target.query);
        } else {
          full += target.query;
        }
      }
    }
    if (!address.empty()) add.Str("server.address", address);
    if (port) add.Int("server.port", port);
  }

  if (!remote.address.empty()) {
    add.Str("network.peer.address", remote.address);
    if (remote.port) add.Int("network.peer.port", remote.port);
  }
  add.Str("network.protocol.name", "http");
  const std::string_view version = !req.version().empty() ? req.version() : resp.version();
  if (!version.empty()) add.Str("network.protocol.version", version);
  if (const std::string_view ua = req.Header("User-Agent"); !ua.empty()) add.Str("user_agent.original", ua);
  if (req.body_size > 0 || BodyDeclared(req)) {
    add.Int("http.request.body.size", static_cast<int64_t>(req.body_size));
  }
  if (has_response && (resp.body_size > 0 || BodyDeclared(resp))) {
    add.Int("http.response.body.size", static_cast<int64_t>(resp.body_size));
  }

  // Invalid framing (Message::framing_invalid): the message was reported, what followed it
  // on its connection was not parsed.
  if (req.framing_invalid || (has_response && resp.framing_invalid)) {
    span.attributes.push_back({"kspan.http.invalid_framing", true});
  }

  // Status (semantic conventions "Status"): the code speaks for itself, so no message.
  if (!has_response) {
    MarkUnanswered(record.unanswered, &span);
  } else {
    const int code = resp.status_code;
    const bool error = code < 100 || code > 599 || code >= 500 || (!server && code >= 400);
    if (error) {
      span.status_code = model::StatusCode::kError;
      add.Own("error.type", std::to_string(code));
    }
  }
}

}  // namespace kspan::correlator
