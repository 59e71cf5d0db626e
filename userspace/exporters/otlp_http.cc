#include "exporters/otlp_http.h"

#include <google/protobuf/util/json_util.h>

#include "exporters/otlp_json.h"
#include "exporters/otlp_proto.h"

namespace kspan::exporters {
namespace {

// Past this the encoding buffer is freed after a request: 4 MiB holds a 512-span batch.
constexpr size_t kKeepEncodedCapacity = 4 << 20;

}  // namespace

Result<std::unique_ptr<OtlpHttpTransport>> OtlpHttpTransport::Create(const OtlpSettings& settings) {
  if (settings.protocol == OtlpProtocol::kGrpc)
    return InvalidArgument("OtlpHttpTransport is for http/* protocols");
  const bool json = settings.protocol == OtlpProtocol::kHttpJson;
  const bool gzip = settings.compression == Compression::kGzip;
  HttpClientOptions options;
  options.url = settings.endpoint;
  options.content_type = json ? "application/json" : "application/x-protobuf";
  options.gzip = gzip;
  options.headers = settings.headers;
  options.certificate_file = settings.certificate_file;
  auto client = HttpClient::Create(std::move(options));
  if (!client.ok()) return client.status();
  return std::unique_ptr<OtlpHttpTransport>(new OtlpHttpTransport(json, gzip, std::move(client).value()));
}

size_t OtlpHttpTransport::Encode(std::span<const model::Span> spans) {
  encoded_.Clear();
  if (json_) {
    AppendTracesDataJson(spans, &encoded_);
  } else {
    AppendExportRequestProto(spans, &encoded_);  // the bytes SerializeToString would give
  }
  body_ = gzip_ ? Gzip(encoded_.view()) : std::string(encoded_.view());
  const size_t size = encoded_.size();
  // A burst's request is not kept for the agent's lifetime (as the file exporter's line).
  if (encoded_.capacity() > kKeepEncodedCapacity) encoded_.Release();
  return size;
}

SendResult OtlpHttpTransport::Send(Clock::time_point deadline) noexcept {
  if (body_.empty()) {
    SendResult r;
    r.outcome = SendResult::Outcome::kPermanent;
    r.detail = "the request could not be encoded";
    return r;
  }
  const HttpResponse response = client_->Post(body_, deadline);
  SendResult r = ClassifyHttpResponse(response, std::chrono::system_clock::now());
  if (r.outcome == SendResult::Outcome::kSent) {
    int64_t rejected = 0;
    std::string message;
    if (ParsePartialSuccess(response.body, json_, &rejected, &message) &&
        (rejected > 0 || !message.empty())) {
      r.rejected_spans = rejected;
      r.detail =
          "partial success: " + (message.empty() ? std::to_string(rejected) + " spans rejected" : message);
    }
  }
  return r;
}

bool ParsePartialSuccess(const std::string& body, bool json, int64_t* rejected_spans, std::string* message) {
  *rejected_spans = 0;
  message->clear();
  if (body.empty()) return false;
  ::opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
  if (json) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (!google::protobuf::util::JsonStringToMessage(body, &response, options).ok()) return false;
  } else if (!response.ParseFromString(body)) {
    return false;
  }
  if (!response.has_partial_success()) return true;
  *rejected_spans = response.partial_success().rejected_spans();
  *message = response.partial_success().error_message();
  return true;
}

}  // namespace kspan::exporters
