#include "exporters/otlp_grpc.h"

#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <kspan/version.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <sstream>

#include "common/log.h"
#include "exporters/otlp_proto.h"
#include "exporters/retry.h"

namespace kspan::exporters {
namespace {

namespace collector = ::opentelemetry::proto::collector::trace::v1;

void GrpcLogToKspan(gpr_log_func_args* args) {
  log::Debug("grpc", {{"message", args->message != nullptr ? args->message : ""},
                      {"severity", gpr_log_severity_string(args->severity)}});
}

void RouteGrpcLogsOnce() {
  static std::once_flag once;
  std::call_once(once, [] { gpr_set_log_function(&GrpcLogToKspan); });
}

std::string_view GrpcCodeName(grpc::StatusCode code) {
  static constexpr std::string_view kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < static_cast<int>(std::size(kNames)) ? kNames[i] : "UNKNOWN";
}

}  // namespace

Result<std::string> GrpcTargetFromEndpoint(const std::string& endpoint, bool* tls) {
  std::string_view rest = endpoint;
  if (rest.starts_with("http://")) {
    *tls = false;
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    *tls = true;
    rest.remove_prefix(8);
  } else {
    return InvalidArgument("OTLP/gRPC endpoint \"" + endpoint +
                           "\": expected http://host:port (plaintext) or https://host:port (TLS)");
  }
  rest = rest.substr(0, rest.find('/'));
  if (rest.empty()) return InvalidArgument("OTLP/gRPC endpoint \"" + endpoint + "\" has no host");
  // A port is there when the text ends in :digits after any [IPv6] bracket.
  const size_t bracket = rest.rfind(']');
  const size_t colon = rest.rfind(':');
  const bool has_port =
      colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
  return has_port ? std::string(rest) : std::string(rest) + ":4317";
}

namespace {

Result<OtlpGrpcClient> MakeGrpcClient(const OtlpSettings& settings) {
  bool tls = false;
  auto target = GrpcTargetFromEndpoint(settings.endpoint, &tls);
  if (!target.ok()) return target.status();
  RouteGrpcLogsOnce();

  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!settings.certificate_file.empty()) {
      std::ifstream f(settings.certificate_file);
      if (!f) return InvalidArgument("certificate file \"" + settings.certificate_file + "\" cannot be read");
      std::stringstream pem;
      pem << f.rdbuf();
      ssl.pem_root_certs = pem.str();
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);  // the queue caps requests itself
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  args.SetUserAgentPrefix("kspan/" KSPAN_VERSION);

  OtlpGrpcClient c;
  c.endpoint = settings.endpoint;
  c.gzip = settings.compression == Compression::kGzip;
  for (const auto& [k, v] : settings.headers) {
    std::string key = k;
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char ch) { return std::tolower(ch); });
    c.metadata.emplace_back(std::move(key), v);
  }
  c.channel = grpc::CreateCustomChannel(*target, credentials, args);
  return c;
}

// Connects first (see the header): a channel still connecting at the deadline, or one in
// TRANSIENT_FAILURE, fails the call without sending anything. Returns whether it is READY.
bool WaitConnected(grpc::Channel* channel, std::chrono::system_clock::time_point deadline) {
  grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
  while ((state == GRPC_CHANNEL_IDLE || state == GRPC_CHANNEL_CONNECTING) &&
         channel->WaitForStateChange(state, deadline)) {
    state = channel->GetState(/*try_to_connect=*/true);
  }
  return state == GRPC_CHANNEL_READY;
}

void PrepareContext(const OtlpGrpcClient& c, std::chrono::system_clock::time_point deadline,
                    grpc::ClientContext* context) {
  context->set_deadline(deadline);
  for (const auto& [k, v] : c.metadata) context->AddMetadata(k, v);
  if (c.gzip) context->set_compression_algorithm(GRPC_COMPRESS_GZIP);
}

// A failed call's outcome: retryable or not, and whether it may have been delivered.
SendResult FailedCall(const grpc::Status& status, bool connected, grpc::Channel* channel) {
  SendResult r;
  r.retry_after = RetryDelayFromGrpcStatusDetails(status.error_details());
  r.outcome = IsRetryableGrpcStatus(status.error_code(), r.retry_after.has_value())
                  ? SendResult::Outcome::kRetryable
                  : SendResult::Outcome::kPermanent;
  r.detail = std::string(GrpcCodeName(status.error_code())) + ": " + status.error_message();
  if (!connected) {
    r.reason = SendResult::RetryReason::kNotSent;
  } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    r.reason = SendResult::RetryReason::kTimeout;
    r.maybe_delivered = true;
  } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    r.reason = SendResult::RetryReason::kThrottled;
  } else if (!r.retry_after && channel->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY) {
    // The connection the call went out on is gone: it broke before the answer came.
    r.reason = SendResult::RetryReason::kConnectionLost;
    r.maybe_delivered = true;
  } else {
    r.reason = SendResult::RetryReason::kUnavailable;  // the backend's own answer
  }
  return r;
}

}  // namespace

Result<std::unique_ptr<OtlpGrpcTransport>> OtlpGrpcTransport::Create(const OtlpSettings& settings) {
  auto client = MakeGrpcClient(settings);
  if (!client.ok()) return client.status();
  std::unique_ptr<OtlpGrpcTransport> t(new OtlpGrpcTransport());
  t->client_ = std::move(client).value();
  t->stub_ = collector::TraceService::NewStub(t->client_.channel);
  return t;
}

size_t OtlpGrpcTransport::Encode(std::span<const model::Span> spans) {
  ToExportRequest(spans, &request_);
  return request_.ByteSizeLong();
}

SendResult OtlpGrpcTransport::Send(Clock::time_point deadline) noexcept {
  const auto wall_deadline = std::chrono::system_clock::now() + (deadline - Clock::now());
  const bool connected = WaitConnected(client_.channel.get(), wall_deadline);
  grpc::ClientContext context;
  PrepareContext(client_, wall_deadline, &context);
  collector::ExportTraceServiceResponse response;
  const grpc::Status status = stub_->Export(&context, request_, &response);
  if (!status.ok()) return FailedCall(status, connected, client_.channel.get());
  SendResult r;
  r.outcome = SendResult::Outcome::kSent;
  if (response.has_partial_success()) {
    const auto& p = response.partial_success();
    r.rejected_spans = p.rejected_spans();
    if (p.rejected_spans() > 0 || !p.error_message().empty()) {
      r.detail = "partial success: " + (p.error_message().empty()
                                            ? std::to_string(p.rejected_spans()) + " spans rejected"
                                            : p.error_message());
    }
  }
  return r;
}

Result<std::unique_ptr<OtlpGrpcMetricsSender>> OtlpGrpcMetricsSender::Create(const OtlpSettings& settings) {
  auto client = MakeGrpcClient(settings);
  if (!client.ok()) return client.status();
  std::unique_ptr<OtlpGrpcMetricsSender> t(new OtlpGrpcMetricsSender());
  t->client_ = std::move(client).value();
  t->stub_ = ::opentelemetry::proto::collector::metrics::v1::MetricsService::NewStub(t->client_.channel);
  return t;
}

SendResult OtlpGrpcMetricsSender::Send(
    const ::opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest& request,
    Clock::time_point deadline) noexcept {
  const auto wall_deadline = std::chrono::system_clock::now() + (deadline - Clock::now());
  const bool connected = WaitConnected(client_.channel.get(), wall_deadline);
  grpc::ClientContext context;
  PrepareContext(client_, wall_deadline, &context);
  ::opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceResponse response;
  const grpc::Status status = stub_->Export(&context, request, &response);
  if (!status.ok()) return FailedCall(status, connected, client_.channel.get());
  SendResult r;
  r.outcome = SendResult::Outcome::kSent;
  if (response.has_partial_success()) {
    const auto& p = response.partial_success();
    if (p.rejected_data_points() > 0 || !p.error_message().empty()) {
      r.detail = "partial success: " + (p.error_message().empty() ? std::to_string(p.rejected_data_points()) +
                                                                        " data points rejected"
                                                                  : p.error_message());
    }
  }
  return r;
}

}  // namespace kspan::exporters
