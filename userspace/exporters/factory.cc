#include "exporters/factory.h"

#include <string>

#include "exporters/console_exporter.h"
#include "exporters/file_exporter.h"

namespace kspan::exporters {
namespace {

constexpr std::string_view kAccepted = "console, file:PATH";

}  // namespace

Result<std::unique_ptr<SpanExporter>> MakeExporter(std::string_view spec) {
  if (spec == "console") return std::unique_ptr<SpanExporter>(std::make_unique<ConsoleExporter>());
  if (spec.starts_with("file:")) {
    const std::string_view path = spec.substr(5);
    if (path.empty()) {
      return InvalidArgument("exporter \"file:\" needs a path, e.g. file:/var/log/kspan/spans.jsonl");
    }
    auto file = FileExporter::Create(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<SpanExporter>(std::move(file).value());
  }
  return InvalidArgument("unknown exporter \"" + std::string(spec) + "\": expected one of " +
                         std::string(kAccepted));
}

}  // namespace kspan::exporters
