// Duplicates and the "nothing lost silently" equation of the network exporters
// (queued_exporter.h, transport.h), against real backends on loopback that misbehave the
// ways a frozen or slow collector does: they read the whole request and then never
// answer, answer too late, reset the connection, or answer 200 and cut the body.
//
// Each backend counts what it *stored*: every span of a request it read whole and did
// not refuse (a request it never answered may have been processed: for a duplicate, that
// is the worst case, so it counts). The exporter's counters must account for every copy:
//   stored copies  = sent + possibly_duplicated + possibly_delivered
//   spans made     = sent + every dropped reason
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "exporters/otlp_grpc.h"
#include "exporters/otlp_http.h"
#include "exporters/queued_exporter.h"
#include "exporters/zipkin_http.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "testing/log_capture.h"
#include "testing/subprocess.h"

namespace kspan::exporters {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
namespace collector = ::opentelemetry::proto::collector::trace::v1;

// What a backend does with the n-th request (0-based) it has read whole.
struct Action {
  enum Kind { kAnswer, kFreeze, kReset, kCutBody } kind = kAnswer;
  int status = 200;       // kAnswer
  milliseconds delay{0};  // kAnswer: wait this long first
  bool Stores() const { return kind != kAnswer || (status >= 200 && status < 300); }
};
using Script = std::function<Action(int n)>;

// Span names per stored request; what every fake backend reports.
class Stored {
 public:
  void Add(std::vector<std::string> names) {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(std::move(names));
  }
  size_t Copies() const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& r : requests_) n += r.size();
    return n;
  }
  size_t Unique() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, int> seen;
    for (const auto& r : requests_)
      for (const auto& s : r) ++seen[s];
    return seen.size();
  }
  size_t Requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<std::string>> requests_;
};

std::vector<std::string> NamesFromOtlpProtobuf(const std::string& body) {
  collector::ExportTraceServiceRequest req;
  std::vector<std::string> names;
  if (!req.ParseFromString(body)) return names;
  for (const auto& rs : req.resource_spans())
    for (const auto& ss : rs.scope_spans())
      for (const auto& s : ss.spans()) names.push_back(s.name());
  return names;
}

std::vector<std::string> NamesFromZipkinJson(const std::string& body) {
  std::vector<std::string> names;
  const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return names;
  for (const auto& s : j) names.push_back(s.value("name", ""));
  return names;
}

// HTTP/1.1 on 127.0.0.1:<ephemeral>, one thread per connection, every loop bounded by
// Stop(). Requests need a Content-Length (libcurl sends one for a POST body).
class HttpBackend {
 public:
  HttpBackend(Script script, std::function<std::vector<std::string>(const std::string&)> decode)
      : script_(std::move(script)), decode_(std::move(decode)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(listen_fd_, 16);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~HttpBackend() { Stop(); }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    accept_thread_.join();
    for (auto& t : conn_threads_) t.join();
    close(listen_fd_);
  }

  int port() const { return port_; }
  const Stored& stored() const { return stored_; }

 private:
  bool Stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }

  void AcceptLoop() {
    while (!Stopped()) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      conn_threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  // Reads until `buf` holds a whole request; false on EOF, error or Stop().
  bool ReadRequest(int fd, std::string* buf, std::string* body) {
    const auto until = Clock::now() + 10s;
    while (!Stopped() && Clock::now() < until) {
      const size_t head_end = buf->find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length = 0;
        const std::string head = buf->substr(0, head_end);
        for (const char* key : {"Content-Length: ", "content-length: "}) {
          const size_t at = head.find(key);
          if (at != std::string::npos) length = std::stoul(head.substr(at + std::strlen(key)));
        }
        if (buf->size() >= head_end + 4 + length) {
          *body = buf->substr(head_end + 4, length);
          buf->erase(0, head_end + 4 + length);
          return true;
        }
      }
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char chunk[65536];
      const ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n <= 0) return false;
      buf->append(chunk, static_cast<size_t>(n));
    }
    return false;
  }

  void Serve(int fd) {
    std::string buf, body;
    while (ReadRequest(fd, &buf, &body)) {
      int n;
      {
        std::lock_guard<std::mutex> lock(mu_);
        n = requests_++;
      }
      const Action a = script_(n);
      if (a.Stores()) stored_.Add(decode_(body));
      if (a.kind == Action::kFreeze) {
        // Hold the connection open and silent until the test ends.
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, 30s, [&] { return stopped_; });
        break;
      }
      if (a.kind == Action::kReset) {
        linger l{1, 0};  // close with RST
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        break;
      }
      if (a.kind == Action::kCutBody) {
        const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}";
        send(fd, r.data(), r.size(), MSG_NOSIGNAL);
        break;
      }
      if (a.delay.count() > 0) {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, a.delay, [&] { return stopped_; })) break;
      }
      const std::string r = "HTTP/1.1 " + std::to_string(a.status) + " X\r\nContent-Length: 0\r\n\r\n";
      if (send(fd, r.data(), r.size(), MSG_NOSIGNAL) < 0) break;
    }
    close(fd);
  }

  const Script script_;
  const std::function<std::vector<std::string>(const std::string&)> decode_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread accept_thread_;
  std::vector<std::thread> conn_threads_;  // accept thread only, joined by Stop
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  int requests_ = 0;
  Stored stored_;
};

// OTLP/gRPC on 127.0.0.1:<ephemeral>: kAnswer (after its delay) answers OK, kFreeze holds
// the call until the client gives up or the test ends. kReset and kCutBody are HTTP-only.
class GrpcBackend final : public collector::TraceService::Service {
 public:
  explicit GrpcBackend(Script script) : script_(std::move(script)) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~GrpcBackend() override { Stop(); }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    server_->Shutdown(std::chrono::system_clock::now() + 2s);
  }

  grpc::Status Export(grpc::ServerContext* context, const collector::ExportTraceServiceRequest* request,
                      collector::ExportTraceServiceResponse*) override {
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = requests_++;
    }
    const Action a = script_(n);
    if (a.Stores()) stored_.Add(NamesFromOtlpProtobuf(request->SerializeAsString()));
    const milliseconds hold = a.kind == Action::kFreeze ? milliseconds(30000) : a.delay;
    std::unique_lock<std::mutex> lock(mu_);
    const auto until = Clock::now() + hold;
    while (!stopped_ && Clock::now() < until && !context->IsCancelled()) cv_.wait_for(lock, 20ms);
    if (a.kind == Action::kAnswer && a.status != 200) return {grpc::StatusCode::UNAVAILABLE, "busy"};
    return grpc::Status::OK;
  }

  int port() const { return port_; }
  const Stored& stored() const { return stored_; }

 private:
  const Script script_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  int requests_ = 0;
  Stored stored_;
};

std::vector<model::Span> Spans(size_t n, const std::string& prefix) {
  std::vector<model::Span> out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i].name = prefix + std::to_string(i);
    out[i].trace_id = model::TraceId::Random();
    out[i].span_id = model::SpanId::Random();
    out[i].start_time_unix_nano = 1'000'000'000;
    out[i].end_time_unix_nano = 2'000'000'000;
  }
  return out;
}

class ExportDuplicatesTest : public ::testing::Test {
 protected:
  // Short clocks so a whole retry budget fits a unit test: a 300 ms attempt timeout,
  // backoff 50-100 ms, 2.5 s budget.
  QueuedExporter::Options Options(milliseconds timeout = 300ms) {
    QueuedExporter::Options o;
    o.name = "otlp";
    o.queue.max_queue_spans = 1000;
    o.queue.max_batch_spans = 100;
    o.queue.schedule_delay = 20ms;
    o.attempt_timeout = timeout;
    o.retry.initial_backoff = 50ms;
    o.retry.max_backoff = 100ms;
    o.retry.max_elapsed = 2500ms;
    o.drain_timeout = 3000ms;
    return o;
  }

  std::unique_ptr<Transport> OtlpHttp(int port) {
    OtlpSettings s;
    s.protocol = OtlpProtocol::kHttpProtobuf;
    s.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces";
    return std::move(OtlpHttpTransport::Create(s)).value();
  }
  std::unique_ptr<Transport> OtlpGrpc(int port) {
    OtlpSettings s;
    s.protocol = OtlpProtocol::kGrpc;
    s.endpoint = "http://127.0.0.1:" + std::to_string(port);
    return std::move(OtlpGrpcTransport::Create(s)).value();
  }
  std::unique_ptr<Transport> Zipkin(int port) {
    ZipkinSettings s;
    s.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/api/v2/spans";
    return std::move(ZipkinTransport::Create(s)).value();
  }

  // Exports `n` spans and waits until the exporter has settled them all (bounded).
  void Run(QueuedExporter* e, size_t n) {
    ASSERT_EQ(e->Export(Spans(n, "span-")), ExportResult::kSuccess);
    ASSERT_TRUE(kspan::testing::WaitFor([&] { return e->Pending() == 0; }, 15s)) << "still pending";
  }

  uint64_t C(const std::string& name, const std::string& exporter, metrics::Labels extra = {}) {
    extra.insert(extra.begin(), {"exporter", exporter});
    return registry_.GetCounter(name, extra)->Value();
  }
  uint64_t Sent(const std::string& x = "otlp") { return C("kspan_exporter_spans_sent_total", x); }
  uint64_t Dropped(const std::string& reason, const std::string& x = "otlp") {
    return C("kspan_exporter_spans_dropped_total", x, {{"reason", reason}});
  }
  uint64_t Retries(const std::string& reason, const std::string& x = "otlp") {
    return C("kspan_exporter_retries_total", x, {{"reason", reason}});
  }
  uint64_t Duplicated(const std::string& x = "otlp") {
    return C("kspan_exporter_spans_possibly_duplicated_total", x);
  }
  uint64_t MaybeDelivered(const std::string& x = "otlp") {
    return C("kspan_exporter_spans_possibly_delivered_total", x);
  }
  uint64_t Requests(const std::string& x = "otlp") { return C("kspan_exporter_requests_total", x); }

  // The two equations of the header, for `made` spans handed to exporter `x`.
  void ExpectAccounted(const Stored& stored, size_t made, const std::string& x = "otlp") {
    EXPECT_EQ(Sent(x) + registry_.Sum("kspan_exporter_spans_dropped_total"), made) << "made = sent + dropped";
    EXPECT_EQ(stored.Copies(), Sent(x) + Duplicated(x) + MaybeDelivered(x))
        << "every copy the backend stored is counted";
    EXPECT_EQ(stored.Unique(), Sent(x) + MaybeDelivered(x));
  }

  metrics::Registry registry_;
};

// The case: a backend that accepts, reads, and never answers. Every attempt is a
// copy the backend may process once it thaws: all of them are counted.
TEST_F(ExportDuplicatesTest, OtlpHttpFrozenBackendCopiesAreCounted) {
  kspan::testing::LogCapture logs;
  HttpBackend backend([](int) { return Action{Action::kFreeze}; }, NamesFromOtlpProtobuf);
  {
    QueuedExporter e(Options(), OtlpHttp(backend.port()), &registry_);
    Run(&e, 10);
  }
  backend.Stop();
  const size_t attempts = backend.stored().Requests();
  ASSERT_GE(attempts, 2u);
  EXPECT_EQ(Requests(), attempts);
  EXPECT_EQ(Retries("timeout"), attempts - 1);
  EXPECT_EQ(Retries("not_sent"), 0u);
  EXPECT_EQ(Duplicated(), 10 * (attempts - 1));
  EXPECT_EQ(Dropped("retries_exhausted"), 10u);
  EXPECT_EQ(MaybeDelivered(), 10u);
  // Each timed-out attempt waits twice as long as the one before (300, 600, 1200 ms ...
  // within the 2.5 s budget): at most 4 attempts, where a fixed 300 ms made about 7.
  EXPECT_LE(attempts, 4u);
  ExpectAccounted(backend.stored(), 10);
  const auto lines = logs.Lines("export backend may hold spans twice");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["spans"], 10 * (attempts - 1));
  EXPECT_EQ(lines[0]["reason"], "timeout");
}

// A backend slower than the timeout but alive: before, every attempt was abandoned and
// stored (a copy each), and the spans were still counted dropped. Now the second attempt
// waits long enough: two copies, one counted as a possible duplicate, all sent.
TEST_F(ExportDuplicatesTest, OtlpHttpSlowBackendGetsOneDuplicateNotOneAPerAttempt) {
  HttpBackend backend([](int) { return Action{Action::kAnswer, 200, 450ms}; }, NamesFromOtlpProtobuf);
  {
    QueuedExporter e(Options(), OtlpHttp(backend.port()), &registry_);
    Run(&e, 10);
  }
  backend.Stop();
  EXPECT_EQ(backend.stored().Requests(), 2u);
  EXPECT_EQ(Sent(), 10u);
  EXPECT_EQ(Retries("timeout"), 1u);
  EXPECT_EQ(Duplicated(), 10u);
  EXPECT_EQ(MaybeDelivered(), 0u);
  ExpectAccounted(backend.stored(), 10);
}

// Read whole, then reset: the request may have been processed.
TEST_F(ExportDuplicatesTest, OtlpHttpResetAfterTheRequestIsAPossibleDuplicate) {
  HttpBackend backend([](int n) { return n == 0 ? Action{Action::kReset} : Action{}; },
                      NamesFromOtlpProtobuf);
  {
    QueuedExporter e(Options(), OtlpHttp(backend.port()), &registry_);
    Run(&e, 10);
  }
  backend.Stop();
  EXPECT_EQ(backend.stored().Requests(), 2u);
  EXPECT_EQ(Sent(), 10u);
  EXPECT_EQ(Retries("connection_lost"), 1u);
  EXPECT_EQ(Duplicated(), 10u);
  ExpectAccounted(backend.stored(), 10);
}

// "200 OK" and then the connection drops mid-body: the backend took the request, so it
// is sent, not retried (before: retried, a certain duplicate).
TEST_F(ExportDuplicatesTest, OtlpHttpTwoHundredWithACutBodyIsSentNotRetried) {
  HttpBackend backend([](int n) { return n == 0 ? Action{Action::kCutBody} : Action{}; },
                      NamesFromOtlpProtobuf);
  {
    QueuedExporter e(Options(), OtlpHttp(backend.port()), &registry_);
    Run(&e, 10);
  }
  backend.Stop();
  EXPECT_EQ(backend.stored().Requests(), 1u);
  EXPECT_EQ(Sent(), 10u);
  EXPECT_EQ(Requests(), 1u);
  EXPECT_EQ(Duplicated(), 0u);
  ExpectAccounted(backend.stored(), 10);
}

// Answers the backend gave (503, 429) and connections refused are not duplicates.
TEST_F(ExportDuplicatesTest, OtlpHttpRefusalsAndAnswersAreNotPossibleDuplicates) {
  HttpBackend backend(
      [](int n) {
        if (n == 0) return Action{Action::kAnswer, 503};
        if (n == 1) return Action{Action::kAnswer, 429};
        return Action{};
      },
      NamesFromOtlpProtobuf);
  {
    QueuedExporter e(Options(), OtlpHttp(backend.port()), &registry_);
    Run(&e, 10);
  }
  {
    QueuedExporter refused(Options(), OtlpHttp(1), &registry_);  // port 1: nothing listens
    Run(&refused, 5);
  }
  backend.Stop();
  EXPECT_EQ(Retries("unavailable"), 1u);
  EXPECT_EQ(Retries("throttled"), 1u);
  EXPECT_GE(Retries("not_sent"), 1u);
  EXPECT_EQ(Duplicated(), 0u);
  EXPECT_EQ(MaybeDelivered(), 0u);
  EXPECT_EQ(Sent(), 10u);
  EXPECT_EQ(Dropped("retries_exhausted"), 5u);
  ExpectAccounted(backend.stored(), 15);
}

TEST_F(ExportDuplicatesTest, OtlpGrpcFrozenBackendCopiesAreCounted) {
  GrpcBackend backend([](int) { return Action{Action::kFreeze}; });
  {
    QueuedExporter e(Options(), OtlpGrpc(backend.port()), &registry_);
    Run(&e, 10);
  }
  backend.Stop();
  const size_t attempts = backend.stored().Requests();
  ASSERT_GE(attempts, 2u);
  EXPECT_EQ(Requests(), attempts);
  EXPECT_EQ(Retries("timeout"), attempts - 1);
  EXPECT_EQ(Duplicated(), 10 * (attempts - 1));
  EXPECT_EQ(Dropped("retries_exhausted"), 10u);
  EXPECT_EQ(MaybeDelivered(), 10u);
  EXPECT_LE(attempts, 4u);
  ExpectAccounted(backend.stored(), 10);
}

TEST_F(ExportDuplicatesTest, OtlpGrpcSlowBackendGetsOneDuplicate) {
  GrpcBackend backend([](int) { return Action{Action::kAnswer, 200, 450ms}; });
  {
    QueuedExporter e(Options(), OtlpGrpc(backend.port()), &registry_);
    Run(&e, 10);
  }
  backend.Stop();
  EXPECT_EQ(backend.stored().Requests(), 2u);
  EXPECT_EQ(Sent(), 10u);
  EXPECT_EQ(Retries("timeout"), 1u);
  EXPECT_EQ(Duplicated(), 10u);
  ExpectAccounted(backend.stored(), 10);
}

// UNAVAILABLE from the backend itself (OTLP's gRPC throttling signal) is an answer, not
// a possible duplicate; a backend that is not there is "not sent".
TEST_F(ExportDuplicatesTest, OtlpGrpcUnavailableAnswerAndNoBackendAreNotDuplicates) {
  GrpcBackend backend([](int n) { return n == 0 ? Action{Action::kAnswer, 503} : Action{}; });
  {
    QueuedExporter e(Options(), OtlpGrpc(backend.port()), &registry_);
    Run(&e, 10);
  }
  {
    QueuedExporter refused(Options(), OtlpGrpc(kspan::testing::FreePort()), &registry_);
    Run(&refused, 5);
  }
  backend.Stop();
  EXPECT_EQ(Retries("unavailable"), 1u);
  EXPECT_GE(Retries("not_sent"), 1u);
  EXPECT_EQ(Duplicated(), 0u);
  EXPECT_EQ(MaybeDelivered(), 0u);
  EXPECT_EQ(Sent(), 10u);
  EXPECT_EQ(Dropped("retries_exhausted"), 5u);
  ExpectAccounted(backend.stored(), 15);
}

TEST_F(ExportDuplicatesTest, ZipkinSlowAndResettingBackendsAreCounted) {
  HttpBackend backend(
      [](int n) {
        if (n == 0) return Action{Action::kReset};
        return Action{Action::kAnswer, 200, n == 1 ? milliseconds(450) : milliseconds(0)};
      },
      NamesFromZipkinJson);
  auto o = Options();
  o.name = "zipkin";
  {
    QueuedExporter e(o, Zipkin(backend.port()), &registry_);
    Run(&e, 10);
  }
  backend.Stop();
  EXPECT_EQ(backend.stored().Requests(), 3u);
  EXPECT_EQ(Retries("connection_lost", "zipkin"), 1u);
  EXPECT_EQ(Retries("timeout", "zipkin"), 1u);
  EXPECT_EQ(Sent("zipkin"), 10u);
  EXPECT_EQ(Duplicated("zipkin"), 20u);
  ExpectAccounted(backend.stored(), 10, "zipkin");
}

// Every exit at once: a full queue, a refused request, a frozen backend at shutdown with
// the queue still full. Spans made = sent + dropped by reason, and every stored copy is
// counted.
TEST_F(ExportDuplicatesTest, OtlpHttpEveryExitPathIsCounted) {
  std::atomic<bool> freeze{false};
  HttpBackend backend(
      [&](int n) {
        if (freeze) return Action{Action::kFreeze};
        if (n == 1) return Action{Action::kAnswer, 400};
        if (n == 2) return Action{Action::kReset};
        return Action{};
      },
      NamesFromOtlpProtobuf);
  auto o = Options();
  o.queue.max_queue_spans = 50;
  o.queue.max_batch_spans = 10;
  o.drain_timeout = 1000ms;
  size_t made = 0;
  {
    QueuedExporter e(o, OtlpHttp(backend.port()), &registry_);
    for (int i = 0; i < 4; ++i) {
      e.Export(Spans(10, "b" + std::to_string(i) + "-"));
      made += 10;
      ASSERT_TRUE(kspan::testing::WaitFor([&] { return e.Pending() == 0; }, 10s));
    }
    freeze = true;
    e.Export(Spans(80, "late-"));  // 50 fit, 30 dropped: queue_full
    made += 80;
    // Shutdown: the batch in hand times out against the frozen backend, the rest of the
    // queue is dropped when the 1 s drain runs out.
  }
  // The backend reads on a thread of its own: on a loaded machine the last request, sent
  // before the exporter gave up on it, may still be in its socket. Stopping now would
  // leave a copy counted (maybe delivered) that the backend never stored.
  kspan::testing::WaitFor(
      [&] { return backend.stored().Copies() >= Sent() + Duplicated() + MaybeDelivered(); }, 10s);
  backend.Stop();
  EXPECT_EQ(Dropped("queue_full"), 30u);
  EXPECT_EQ(Dropped("non_retryable"), 10u);
  EXPECT_GT(Dropped("shutdown"), 0u);
  EXPECT_EQ(Sent(), 30u);
  EXPECT_EQ(Retries("connection_lost"), 1u);
  ExpectAccounted(backend.stored(), made);
}

}  // namespace
}  // namespace kspan::exporters
