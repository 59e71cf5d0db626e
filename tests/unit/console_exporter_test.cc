#include "exporters/console_exporter.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace kspan::exporters {
namespace {

class ConsoleTest : public testing::Test {
 protected:
  void SetUp() override {
    // Times print in local time; pin it.
    setenv("TZ", "UTC", 1);
    tzset();
  }
};

model::Span ServerSpan() {
  auto resource = std::make_shared<model::Resource>();
  resource->attributes.push_back({"service.name", std::string("checkout")});
  model::Span s;
  model::ParseHexId("4bf92f3577b34da6a3ce929d0e0e4736", s.trace_id.bytes.data(), 16);
  model::ParseHexId("00f067aa0ba902b7", s.span_id.bytes.data(), 8);
  s.kind = model::SpanKind::kServer;
  s.name = "GET /api/orders/{id}";
  s.start_time_unix_nano = 1'700'000'000'123'456'789ULL;  // 2023-11-14T22:13:20.123Z
  s.end_time_unix_nano = s.start_time_unix_nano + 12'345'678;
  s.attributes.push_back({"http.response.status_code", int64_t{200}});
  s.attributes.push_back({"network.peer.address", std::string("10.0.0.9")});
  s.attributes.push_back({"network.peer.port", int64_t{51234}});
  s.resource = resource;
  return s;
}

std::string Line(const model::Span& s, bool color) {
  std::string out;
  AppendConsoleLine(s, color, &out);
  return out;
}

TEST_F(ConsoleTest, ServerLine) {
  EXPECT_EQ(Line(ServerSpan(), false),
            "22:13:20.123 SERVER checkout     GET /api/orders/{id}         200  12.3ms  "
            "trace=4bf92f35 span=00f067aa peer=10.0.0.9:51234");
}

TEST_F(ConsoleTest, ClientErrorLine) {
  model::Span s = ServerSpan();
  s.kind = model::SpanKind::kClient;
  s.name = "GET /inventory/{id}";
  s.status_code = model::StatusCode::kError;
  s.attributes = {{"http.response.status_code", int64_t{503}},
                  {"network.peer.address", std::string("::1")},
                  {"network.peer.port", int64_t{8080}},
                  {"error.type", std::string("503")}};
  s.end_time_unix_nano = s.start_time_unix_nano + 850;
  EXPECT_EQ(Line(s, false),
            "22:13:20.123 CLIENT checkout     GET /inventory/{id}          503   850ns  "
            "trace=4bf92f35 span=00f067aa peer=[::1]:8080 error=503");
}

TEST_F(ConsoleTest, LlmCallShowsTokensAndFirstChunk) {
  model::Span s = ServerSpan();
  s.kind = model::SpanKind::kClient;
  s.name = "chat gpt-4o";
  s.attributes.push_back({"gen_ai.usage.input_tokens", int64_t{1200}});
  s.attributes.push_back({"gen_ai.usage.output_tokens", int64_t{85}});
  s.attributes.push_back({"gen_ai.response.time_to_first_chunk", 0.41});
  EXPECT_EQ(Line(s, false),
            "22:13:20.123 CLIENT checkout     chat gpt-4o                  200  12.3ms  "
            "trace=4bf92f35 span=00f067aa peer=10.0.0.9:51234 tokens=1200/85 first_chunk=410ms");
}

TEST_F(ConsoleTest, MissingResponseAndNoServiceName) {
  model::Span s = ServerSpan();
  s.resource = nullptr;
  s.status_code = model::StatusCode::kError;
  s.attributes = {{"server.address", std::string("db.internal")},
                  {"server.port", int64_t{5432}},
                  {"error.type", std::string("response_missing")}};
  s.end_time_unix_nano = s.start_time_unix_nano + 2'500'000'000ULL;
  EXPECT_EQ(Line(s, false),
            "22:13:20.123 SERVER -            GET /api/orders/{id}         ERR   2.50s  "
            "trace=4bf92f35 span=00f067aa peer=db.internal:5432 error=response_missing");
}

TEST_F(ConsoleTest, ColourOnlyWhenAsked) {
  const std::string plain = Line(ServerSpan(), false);
  EXPECT_EQ(plain.find('\x1b'), std::string::npos);

  const std::string ok = Line(ServerSpan(), true);
  EXPECT_NE(ok.find("\x1b[32m200\x1b[0m"), std::string::npos) << ok;  // success green
  EXPECT_NE(ok.find("\x1b[36mSERVER\x1b[0m"), std::string::npos) << ok;
  EXPECT_NE(ok.find("\x1b[2mtrace=4bf92f35 span=00f067aa\x1b[0m"), std::string::npos) << ok;

  model::Span err = ServerSpan();
  err.status_code = model::StatusCode::kError;
  err.attributes[0].value = int64_t{500};
  err.attributes.push_back({"error.type", std::string("500")});
  const std::string red = Line(err, true);
  EXPECT_NE(red.find("\x1b[31m500\x1b[0m"), std::string::npos) << red;
  EXPECT_NE(red.find("\x1b[1;31mGET /api/orders/{id}\x1b[0m"), std::string::npos) << red;
  EXPECT_NE(red.find("\x1b[31merror=500\x1b[0m"), std::string::npos) << red;

  model::Span warn = ServerSpan();
  warn.attributes[0].value = int64_t{404};  // a server 4xx is not an error: yellow
  EXPECT_NE(Line(warn, true).find("\x1b[33m404\x1b[0m"), std::string::npos);
}

TEST_F(ConsoleTest, TrafficCannotDriveTheTerminal) {
  model::Span s = ServerSpan();
  s.name =
      "GET /\x1b]0;pwned\x07/\xc2\x9b"
      "31m/caf\xc3\xa9/\xff";  // OSC, C1 CSI, é, junk
  const std::string line = Line(s, false);
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_EQ(line.find('\x07'), std::string::npos);
  EXPECT_EQ(line.find("\xc2\x9b"), std::string::npos);
  EXPECT_NE(line.find("GET /?]0;pwned?/??31m/caf\xc3\xa9/?"), std::string::npos) << line;
}

struct DurationCase {
  uint64_t ns;
  const char* want;
};

class FormatDurationTest : public testing::TestWithParam<DurationCase> {};

TEST_P(FormatDurationTest, Format) {
  EXPECT_EQ(FormatDuration(GetParam().ns), GetParam().want);
}

const DurationCase kDurationCases[] = {
    {0, "0ns"},
    {999, "999ns"},
    {1'000, "1.00µs"},
    {1'234, "1.23µs"},
    {12'345, "12.3µs"},
    {123'456, "123µs"},
    {999'499, "999µs"},
    {999'600, "1.00ms"},  // rounds up into the next unit, never "1000µs"
    {12'345'678, "12.3ms"},
    {999'999'999, "1.00s"},
    {2'500'000'000ULL, "2.50s"},
    {59'400'000'000ULL, "59.4s"},
    {59'600'000'000ULL, "1m00s"},
    {123'000'000'000ULL, "2m03s"},
    {3'600'000'000'000ULL, "1h00m"},
    {5'000'000'000'000ULL, "1h23m"},
};

INSTANTIATE_TEST_SUITE_P(Cases, FormatDurationTest, testing::ValuesIn(kDurationCases));

TEST_F(ConsoleTest, ExportWritesOneLinePerSpanToTheFd) {
  char path[] = "/tmp/kspan_console_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  ConsoleExporter exporter(fd);
  EXPECT_FALSE(exporter.color());  // a file is not a TTY
  EXPECT_EQ(exporter.Name(), "console");
  std::vector<model::Span> batch = {ServerSpan(), ServerSpan()};
  batch[1].name = "POST /x";
  ASSERT_EQ(exporter.Export(batch), ExportResult::kSuccess);
  EXPECT_TRUE(exporter.ForceFlush());

  std::string got(4096, '\0');
  const ssize_t n = pread(fd, got.data(), got.size(), 0);
  ASSERT_GT(n, 0);
  got.resize(static_cast<size_t>(n));
  EXPECT_EQ(got, Line(batch[0], false) + "\n" + Line(batch[1], false) + "\n");

  exporter.Shutdown();
  EXPECT_EQ(exporter.Export(batch), ExportResult::kFailure);
  close(fd);
}

TEST_F(ConsoleTest, ColourCanBeForced) {
  ConsoleExporter on(STDOUT_FILENO, true);
  ConsoleExporter off(STDOUT_FILENO, false);
  EXPECT_TRUE(on.color());
  EXPECT_FALSE(off.color());
}

TEST_F(ConsoleTest, WriteErrorIsAFailure) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[1]);  // writing to the read end fails with EBADF
  ConsoleExporter exporter(fds[0], false);
  const std::vector<model::Span> batch = {ServerSpan()};
  EXPECT_EQ(exporter.Export(batch), ExportResult::kFailure);
  close(fds[0]);
}

}  // namespace
}  // namespace kspan::exporters

namespace kspan::exporters {
namespace {

// The tree option: one header per trace, spans under their parents by start time, the
// guides ("├─", "└─", "│") as a person draws a tree; a span whose parent is elsewhere
// starts its own tree, marked.
TEST_F(ConsoleTest, TreesNestSpansUnderTheirParents) {
  const model::Span root = ServerSpan();  // 12.3 ms from .123
  auto child = [&](const char* id, const model::SpanId& parent, const char* name, uint64_t start_ms) {
    model::Span s = ServerSpan();
    model::ParseHexId(id, s.span_id.bytes.data(), 8);
    s.parent_span_id = parent;
    s.kind = model::SpanKind::kClient;
    s.name = name;
    s.start_time_unix_nano = root.start_time_unix_nano + start_ms * 1'000'000;
    s.end_time_unix_nano = s.start_time_unix_nano + 1'000'000;
    s.attributes = {};
    return s;
  };
  const model::Span a = child("00000000000000a1", root.span_id, "GET /a", 5);
  const model::Span b = child("00000000000000b1", root.span_id, "GET /b", 1);  // earlier: printed first
  const model::Span a1 = child("00000000000000a2", a.span_id, "SELECT", 6);
  model::SpanId gone;
  gone.bytes[7] = 0x99;
  model::Span orphan = child("00000000000000c1", gone, "GET /late", 8);
  model::Span other = ServerSpan();
  other.trace_id.bytes[0] ^= 0xff;
  const std::vector<model::Span> batch = {a1, root, other, a, b, orphan};
  std::string out;
  AppendConsoleTrees(batch, false, &out);
  EXPECT_EQ(out,
            "trace 4bf92f35 · 5 spans · 12.3ms · checkout GET /api/orders/{id}\n"
            "├─ " +
                Line(root, false) + "\n" + "│  ├─ " + Line(b, false) + "\n" + "│  └─ " + Line(a, false) +
                "\n" + "│     └─ " + Line(a1, false) + "\n" + "└─ " + Line(orphan, false) +
                " (parent elsewhere)\n" +
                "trace b4f92f35 · 1 span · 12.3ms · checkout GET /api/orders/{id}\n" + "└─ " +
                Line(other, false) + "\n");
}

}  // namespace
}  // namespace kspan::exporters
