#include "exporters/factory.h"

#include <string>

#include "exporters/console_exporter.h"
#include "exporters/file_exporter.h"
#include "exporters/otlp_grpc.h"
#include "exporters/otlp_http.h"
#include "exporters/queued_exporter.h"
#include "exporters/zipkin_http.h"

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

Result<std::unique_ptr<SpanExporter>> MakeExporter(const ExporterSettings& settings,
                                                   metrics::Registry* registry) {
  if (const auto* c = std::get_if<ConsoleSettings>(&settings)) {
    return std::unique_ptr<SpanExporter>(
        std::make_unique<ConsoleExporter>(STDOUT_FILENO, std::nullopt, c->tree));
  }
  if (const auto* f = std::get_if<FileSettings>(&settings)) {
    if (f->path.empty()) {
      return InvalidArgument("exporter \"file:\" needs a path, e.g. file:/var/log/kspan/spans.jsonl");
    }
    auto file = FileExporter::Create(f->path, FileExporter::kDefaultMaxBytes, registry);
    if (!file.ok()) return file.status();
    return std::unique_ptr<SpanExporter>(std::move(file).value());
  }

  QueuedExporter::Options options;
  std::unique_ptr<Transport> transport;
  if (const auto* o = std::get_if<OtlpSettings>(&settings)) {
    options.name = "otlp";
    options.queue = o->queue;
    options.attempt_timeout = o->timeout;
    if (o->protocol == OtlpProtocol::kGrpc) {
      auto t = OtlpGrpcTransport::Create(*o);
      if (!t.ok()) return t.status();
      transport = std::move(t).value();
    } else {
      auto t = OtlpHttpTransport::Create(*o);
      if (!t.ok()) return t.status();
      transport = std::move(t).value();
    }
  } else {
    const auto& z = std::get<ZipkinSettings>(settings);
    options.name = "zipkin";
    options.queue = z.queue;
    options.attempt_timeout = z.timeout;
    auto t = ZipkinTransport::Create(z);
    if (!t.ok()) return t.status();
    transport = std::move(t).value();
  }
  return std::unique_ptr<SpanExporter>(
      std::make_unique<QueuedExporter>(std::move(options), std::move(transport), registry));
}

}  // namespace kspan::exporters
