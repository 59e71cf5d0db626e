// OTLP/HTTP (opentelemetry-proto docs/specification.md, "OTLP/HTTP"): each request is an
// ExportTraceServiceRequest POSTed to the traces URL, either
//   http/protobuf   Content-Type: application/x-protobuf   binary protobuf (otlp_proto.h)
//   http/json       Content-Type: application/json         the JSON mapping (otlp_json.h)
// optionally gzip-compressed (Content-Encoding: gzip). A 2xx answer may carry an
// ExportTraceServiceResponse, in the request's encoding, whose partial_success counts
// spans the server rejected; those are reported as rejected, never sent again.
#pragma once

#include <memory>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "exporters/http_client.h"
#include "exporters/settings.h"
#include "exporters/transport.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace kspan::exporters {

class OtlpHttpTransport final : public Transport {
 public:
  // `settings.protocol` must be kHttpProtobuf or kHttpJson; `settings.endpoint` is the
  // full traces URL.
  static Result<std::unique_ptr<OtlpHttpTransport>> Create(const OtlpSettings& settings);

  size_t Encode(std::span<const model::Span> spans) override;
  SendResult Send(Clock::time_point deadline) noexcept override;
  std::string Endpoint() const override { return client_->url(); }

 private:
  OtlpHttpTransport(bool json, bool gzip, std::unique_ptr<HttpClient> client)
      : json_(json), gzip_(gzip), client_(std::move(client)) {}

  const bool json_;
  const bool gzip_;
  std::unique_ptr<HttpClient> client_;
  WriteBuffer encoded_;  // reused: the request before compression
  std::string body_;     // what Send posts: encoded_, compressed when gzip_
};

// The partial_success of an OTLP/HTTP response body, protobuf or JSON. False when the
// body is empty or not an ExportTraceServiceResponse (then nothing was rejected).
bool ParsePartialSuccess(const std::string& body, bool json, int64_t* rejected_spans, std::string* message);

}  // namespace kspan::exporters
