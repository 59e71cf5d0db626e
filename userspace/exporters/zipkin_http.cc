#include "exporters/zipkin_http.h"

#include "exporters/zipkin_json.h"

namespace kspan::exporters {

Result<std::unique_ptr<ZipkinTransport>> ZipkinTransport::Create(const ZipkinSettings& settings) {
  HttpClientOptions options;
  options.url = settings.endpoint;
  options.content_type = "application/json";
  auto client = HttpClient::Create(std::move(options));
  if (!client.ok()) return client.status();
  return std::unique_ptr<ZipkinTransport>(new ZipkinTransport(std::move(client).value()));
}

size_t ZipkinTransport::Encode(std::span<const model::Span> spans) {
  body_.clear();
  AppendZipkinJson(spans, &body_);
  return body_.size();
}

SendResult ZipkinTransport::Send(Clock::time_point deadline) noexcept {
  return ClassifyHttpResponse(client_->Post(body_, deadline), std::chrono::system_clock::now());
}

}  // namespace kspan::exporters
