// Zipkin v2 over HTTP: each request POSTs a JSON array of spans (zipkin_json.h) to the
// collector's /api/v2/spans with Content-Type: application/json; Zipkin answers 202. The
// OTLP retry rules (retry.h) apply to its HTTP statuses as well: Zipkin has no partial
// success, so a 2xx means every span was taken.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "exporters/http_client.h"
#include "exporters/settings.h"
#include "exporters/transport.h"

namespace kspan::exporters {

class ZipkinTransport final : public Transport {
 public:
  static Result<std::unique_ptr<ZipkinTransport>> Create(const ZipkinSettings& settings);

  size_t Encode(std::span<const model::Span> spans) override;
  SendResult Send(Clock::time_point deadline) noexcept override;
  std::string Endpoint() const override { return client_->url(); }

 private:
  explicit ZipkinTransport(std::unique_ptr<HttpClient> client) : client_(std::move(client)) {}

  std::unique_ptr<HttpClient> client_;
  std::string body_;
};

}  // namespace kspan::exporters
