#include "exporters/console_exporter.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace kspan::exporters {
namespace {

constexpr std::string_view kReset = "\x1b[0m";
constexpr std::string_view kRed = "\x1b[31m";
constexpr std::string_view kBoldRed = "\x1b[1;31m";
constexpr std::string_view kGreen = "\x1b[32m";
constexpr std::string_view kYellow = "\x1b[33m";
constexpr std::string_view kCyan = "\x1b[36m";
constexpr std::string_view kMagenta = "\x1b[35m";
constexpr std::string_view kDim = "\x1b[2m";

// Column widths; longer values push the rest of the line right rather than being cut.
constexpr size_t kKindWidth = 6;
constexpr size_t kServiceWidth = 12;
constexpr size_t kNameWidth = 28;
constexpr size_t kStatusWidth = 3;
constexpr size_t kDurationWidth = 7;

// Length of the valid UTF-8 sequence at s[i] that is printable (not a C1 control,
// U+0080..U+009F, which some terminals obey), or 0.
size_t PrintableUtf8Length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
  } else {
    return 0;
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  uint32_t cp = b0 & (0x7F >> len);
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (b & 0x3F);
  }
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp <= 0x9F) return 0;
  return len;
}

// Appends text from traffic with anything a terminal could act on replaced by '?'.
// Returns the display width appended (one column per character: good enough for
// padding, which is all it is used for).
size_t AppendSafe(std::string* out, std::string_view s) {
  size_t width = 0;
  for (size_t i = 0; i < s.size(); ++width) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (const size_t n = c >= 0x80 ? PrintableUtf8Length(s, i) : 0; n > 0) {
      out->append(s.substr(i, n));
      i += n;
    } else {
      out->push_back('?');
      ++i;
    }
  }
  return width;
}

void Pad(std::string* out, size_t width, size_t want) {
  if (width < want) out->append(want - width, ' ');
}

void Colored(std::string* out, bool color, std::string_view code, std::string_view text) {
  if (color) out->append(code);
  out->append(text);
  if (color) out->append(kReset);
}

const std::string* FindString(const std::vector<model::Attribute>& attrs, std::string_view key) {
  for (const auto& a : attrs) {
    if (a.key == key) return std::get_if<std::string>(&a.value);
  }
  return nullptr;
}

const int64_t* FindInt(const model::Span& span, std::string_view key) {
  const model::AttributeValue* v = span.Find(key);
  return v ? std::get_if<int64_t>(v) : nullptr;
}

void AppendClock(std::string* out, uint64_t unix_ns) {
  const time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000);
  struct tm tm {};
  localtime_r(&secs, &tm);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03u", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(unix_ns / 1'000'000 % 1000));
  out->append(buf);
}

// Three significant digits in `unit`; nullopt when rounding reaches 1000 (next unit).
std::optional<std::string> ThreeDigits(double v, const char* unit) {
  char buf[32];
  if (v < 9.995) {
    std::snprintf(buf, sizeof(buf), "%.2f%s", v, unit);
  } else if (v < 99.95) {
    std::snprintf(buf, sizeof(buf), "%.1f%s", v, unit);
  } else if (v < 999.5) {
    std::snprintf(buf, sizeof(buf), "%.0f%s", v, unit);
  } else {
    return std::nullopt;
  }
  return std::string(buf);
}

}  // namespace

std::string FormatDuration(uint64_t ns) {
  if (ns < 1000) return std::to_string(ns) + "ns";
  if (auto s = ThreeDigits(static_cast<double>(ns) / 1e3, "µs")) return *s;
  if (auto s = ThreeDigits(static_cast<double>(ns) / 1e6, "ms")) return *s;
  const uint64_t secs_total = (ns + 500'000'000) / 1'000'000'000;  // rounded to whole s
  if (ns < 59'500'000'000ULL) {
    if (auto s = ThreeDigits(static_cast<double>(ns) / 1e9, "s")) return *s;
  }
  char buf[32];
  if (secs_total < 3600) {
    std::snprintf(buf, sizeof(buf), "%um%02us", static_cast<unsigned>(secs_total / 60),
                  static_cast<unsigned>(secs_total % 60));
  } else {
    const uint64_t mins = (ns + 30'000'000'000ULL) / 60'000'000'000ULL;
    std::snprintf(buf, sizeof(buf), "%lluh%02um", static_cast<unsigned long long>(mins / 60),
                  static_cast<unsigned>(mins % 60));
  }
  return buf;
}

void AppendConsoleLine(const model::Span& span, bool color, std::string* out) {
  const bool error = span.status_code == model::StatusCode::kError;

  AppendClock(out, span.start_time_unix_nano);
  out->push_back(' ');

  const std::string_view kind = model::SpanKindName(span.kind);
  Colored(out, color,
          span.kind == model::SpanKind::kServer   ? kCyan
          : span.kind == model::SpanKind::kClient ? kMagenta
                                                  : std::string_view(),
          kind);
  Pad(out, kind.size(), kKindWidth);
  out->push_back(' ');

  const std::string* service =
      span.resource ? FindString(span.resource->attributes, "service.name") : nullptr;
  Pad(out, AppendSafe(out, service && !service->empty() ? std::string_view(*service) : "-"), kServiceWidth);
  out->push_back(' ');

  if (color && error) out->append(kBoldRed);
  const size_t name_width = AppendSafe(out, span.name);
  if (color && error) out->append(kReset);
  Pad(out, name_width, kNameWidth);
  out->push_back(' ');

  // Status: the HTTP code when there is one, else the span status.
  std::string status;
  std::string_view status_color;
  if (const int64_t* code = FindInt(span, "http.response.status_code")) {
    status = std::to_string(*code);
    status_color = error ? kRed : *code >= 400 ? kYellow : kGreen;
  } else if (error) {
    status = "ERR";
    status_color = kRed;
  } else if (span.status_code == model::StatusCode::kOk) {
    status = "OK";
    status_color = kGreen;
  } else {
    status = "-";
  }
  Colored(out, color, status_color, status);
  Pad(out, status.size(), kStatusWidth);
  out->push_back(' ');

  const uint64_t ns = span.end_time_unix_nano > span.start_time_unix_nano
                          ? span.end_time_unix_nano - span.start_time_unix_nano
                          : 0;
  const std::string duration = FormatDuration(ns);
  const size_t duration_width =
      duration.find("µ") != std::string::npos ? duration.size() - 1 : duration.size();
  Pad(out, duration_width, kDurationWidth);  // right-aligned: durations line up by unit
  out->append(duration);
  out->append("  ");

  if (color) out->append(kDim);
  out->append("trace=");
  out->append(span.trace_id.Hex().substr(0, 8));
  out->append(" span=");
  out->append(span.span_id.Hex().substr(0, 8));
  if (color) out->append(kReset);

  const std::string* peer = FindString(span.attributes, "network.peer.address");
  const int64_t* peer_port = FindInt(span, "network.peer.port");
  if (!peer) {
    peer = FindString(span.attributes, "server.address");
    peer_port = FindInt(span, "server.port");
  }
  if (peer) {
    out->append(" peer=");
    const bool v6 = peer->find(':') != std::string::npos;
    if (v6 && peer_port) out->push_back('[');
    AppendSafe(out, *peer);
    if (v6 && peer_port) out->push_back(']');
    if (peer_port) {
      out->push_back(':');
      out->append(std::to_string(*peer_port));
    }
  }
  // LLM calls: tokens in/out and, for a stream, the time to its first chunk.
  const int64_t* in = FindInt(span, "gen_ai.usage.input_tokens");
  const int64_t* out_tokens = FindInt(span, "gen_ai.usage.output_tokens");
  if (in || out_tokens) {
    out->append(" tokens=");
    out->append(in ? std::to_string(*in) : "?");
    out->push_back('/');
    out->append(out_tokens ? std::to_string(*out_tokens) : "?");
  }
  const model::AttributeValue* ttfc = span.Find("gen_ai.response.time_to_first_chunk");
  if (const double* seconds = ttfc ? std::get_if<double>(ttfc) : nullptr) {
    out->append(" first_chunk=");
    out->append(FormatDuration(static_cast<uint64_t>(*seconds * 1e9)));
  }
  if (error) {
    if (const std::string* type = FindString(span.attributes, "error.type")) {
      out->push_back(' ');
      if (color) out->append(kRed);
      out->append("error=");
      AppendSafe(out, *type);
      if (color) out->append(kReset);
    }
  }
}

void AppendConsoleTrees(std::span<const model::Span> spans, bool color, std::string* out) {
  // Traces in order of first appearance; within one, children by start time.
  std::vector<std::pair<model::TraceId, std::vector<size_t>>> traces;
  for (size_t i = 0; i < spans.size(); ++i) {
    auto it = std::find_if(traces.begin(), traces.end(),
                           [&](const auto& t) { return t.first == spans[i].trace_id; });
    if (it == traces.end()) {
      traces.push_back({spans[i].trace_id, {}});
      it = traces.end() - 1;
    }
    it->second.push_back(i);
  }
  for (auto& [id, members] : traces) {
    std::map<std::string, std::vector<size_t>> children;  // parent span id hex -> spans
    std::vector<size_t> roots;
    std::set<std::string> present;
    for (size_t i : members) present.insert(spans[i].span_id.Hex());
    for (size_t i : members) {
      const model::Span& s = spans[i];
      if (s.parent_span_id.IsValid() && present.count(s.parent_span_id.Hex())) {
        children[s.parent_span_id.Hex()].push_back(i);
      } else {
        roots.push_back(i);
      }
    }
    auto by_start = [&](size_t a, size_t b) {
      return spans[a].start_time_unix_nano < spans[b].start_time_unix_nano;
    };
    std::sort(roots.begin(), roots.end(), by_start);
    for (auto& [p, c] : children) std::sort(c.begin(), c.end(), by_start);
    uint64_t start = UINT64_MAX, end = 0;
    for (size_t i : members) {
      start = std::min(start, spans[i].start_time_unix_nano);
      end = std::max(end, spans[i].end_time_unix_nano);
    }
    const model::Span& first = spans[roots.front()];
    if (color) out->append(kDim);
    out->append("trace ");
    out->append(id.Hex().substr(0, 8));
    out->append(" · " + std::to_string(members.size()) + (members.size() == 1 ? " span" : " spans") + " · ");
    out->append(FormatDuration(end > start ? end - start : 0));
    out->append(" · ");
    if (color) out->append(kReset);
    const std::string* service =
        first.resource ? FindString(first.resource->attributes, "service.name") : nullptr;
    AppendSafe(out, service ? std::string_view(*service) : "-");
    out->push_back(' ');
    AppendSafe(out, first.name);
    out->push_back('\n');
    // Depth first; `prefix` holds the guides of the levels above ("│  " or "   ").
    struct Item {
      size_t span;
      std::string prefix;
      bool last;
    };
    std::vector<Item> stack;
    for (size_t r = roots.size(); r-- > 0;) stack.push_back({roots[r], "", r + 1 == roots.size()});
    while (!stack.empty()) {
      Item it = std::move(stack.back());
      stack.pop_back();
      const model::Span& s = spans[it.span];
      out->append(it.prefix);
      out->append(it.last ? "└─ " : "├─ ");
      AppendConsoleLine(s, color, out);
      if (s.parent_span_id.IsValid() && !present.count(s.parent_span_id.Hex()))
        out->append(" (parent elsewhere)");
      out->push_back('\n');
      const auto c = children.find(s.span_id.Hex());
      if (c == children.end()) continue;
      const std::string prefix = it.prefix + (it.last ? "   " : "│  ");
      for (size_t k = c->second.size(); k-- > 0;)
        stack.push_back({c->second[k], prefix, k + 1 == c->second.size()});
    }
  }
}

ConsoleExporter::ConsoleExporter(int fd, std::optional<bool> color, bool tree) : fd_(fd), tree_(tree) {
  if (color) {
    color_ = *color;
  } else {
    const char* no_color = std::getenv("NO_COLOR");
    color_ = ::isatty(fd) == 1 && (no_color == nullptr || *no_color == '\0');
  }
}

ExportResult ConsoleExporter::Export(std::span<const model::Span> batch) noexcept {
  if (shut_down_) return ExportResult::kFailure;
  buf_.clear();
  if (tree_) {
    AppendConsoleTrees(batch, color_, &buf_);
  } else {
    for (const model::Span& span : batch) {
      AppendConsoleLine(span, color_, &buf_);
      buf_.push_back('\n');
    }
  }
  std::string_view data = buf_;
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ExportResult::kFailure;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ExportResult::kSuccess;
}

}  // namespace kspan::exporters
