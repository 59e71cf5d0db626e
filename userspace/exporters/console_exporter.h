// `console` — one human-readable line per span, for someone watching a terminal (each
// example is one line on the terminal, wrapped here):
//
//   14:03:07.512 SERVER checkout     GET /api/orders/{id}         200  12.3ms  trace=4bf92f35 span=00f067aa
//       peer=10.0.0.9:51234
//   14:03:07.498 CLIENT checkout     GET /inventory/{id}          503  8.10ms  trace=4bf92f35 span=9a1c0e77
//       peer=10.0.0.7:8080 error=503
//   14:03:08.120 CLIENT agent        chat gpt-4o                  200  1.92s   trace=4bf92f35 span=77d2a1c0
//       peer=10.0.0.3:443 tokens=1200/85 first_chunk=410ms
//
//   start time (local, ms) · kind · service.name · span name · HTTP status code (or
//   OK / ERR / - from the span status) · duration in human units · the first 8 hex digits
//   of the trace and span ids (enough to grep a file exporter's output) · the peer · for
//   LLM calls, tokens in/out and a stream's time to first chunk · error.type when the span
//   failed
//
// Colour (ANSI) only when the output is a terminal and NO_COLOR is unset
// (https://no-color.org), unless forced either way: errors red, 4xx yellow, success green,
// ids dim. Bytes a traced process sent (names, addresses) are printed with control
// characters replaced, so traffic cannot drive the terminal.
#pragma once

#include <unistd.h>

#include <optional>
#include <span>
#include <string>

#include "exporters/exporter.h"

namespace kspan::exporters {

class ConsoleExporter final : public SpanExporter {
 public:
  // Writes to `fd` (not owned; stdout by default). `color`: force colour on or off;
  // unset means "when fd is a TTY and NO_COLOR is not set".
  // `tree`: print each batch's spans grouped by trace, as indented trees (below).
  explicit ConsoleExporter(int fd = STDOUT_FILENO, std::optional<bool> color = std::nullopt,
                           bool tree = false);

  std::string_view Name() const noexcept override { return "console"; }
  ExportResult Export(std::span<const model::Span> batch) noexcept override;
  bool ForceFlush() noexcept override { return true; }  // nothing is buffered
  void Shutdown() noexcept override { shut_down_ = true; }

  bool color() const { return color_; }

 private:
  int fd_;
  bool color_;
  bool tree_;
  bool shut_down_ = false;
  std::string buf_;
};

// The tree option (--console-tree): the spans of each trace together, a header line, then
// every span's line indented under its parent, children by start time:
//
//   trace 4bf92f35 · 4 spans · 26.8ms · checkout GET /api/orders/{id}
//   ├─ 14:03:07.512 SERVER checkout  GET /api/orders/{id}  200  12.3ms  trace=… span=…
//   │  └─ 14:03:07.498 CLIENT checkout  GET /inventory/{id}  503  8.10ms ...
//
// A trace is printed with the spans one export batch holds (the window hands traces on
// whole, but a batch boundary can split one): a span whose parent is not among them starts
// a tree of its own, marked "(parent elsewhere)".
void AppendConsoleTrees(std::span<const model::Span> spans, bool color, std::string* out);

// Appends the line for one span, without the newline.
void AppendConsoleLine(const model::Span& span, bool color, std::string* out);

// "850ns", "12.3µs", "12.3ms", "1.25s", "2m03s".
std::string FormatDuration(uint64_t ns);

}  // namespace kspan::exporters
