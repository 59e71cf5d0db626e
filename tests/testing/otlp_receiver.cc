#include "testing/otlp_receiver.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>

namespace kspan::testing {

std::string ReceiversDir() {
  return std::string(KSPAN_SOURCE_DIR) + "/tests/receivers";
}

void RequireReceivers() {
  ASSERT_TRUE(std::filesystem::exists(ReceiversDir() + "/node_modules/@opentelemetry/otlp-transformer"))
      << "tests/receivers/node_modules is missing: run scripts/install-deps.sh (npm ci in tests/receivers)";
}

bool Receiver::Start(const std::string& protocol, int port, const std::string& behaviour,
                     const std::vector<std::string>& tls) {
  if (dir_.empty()) dir_ = MakeTempDir("kspan-recv-");
  std::vector<std::string> argv = {"node",        ReceiversDir() + "/otlp_receiver.js",
                                   "--protocol",  protocol,
                                   "--port",      std::to_string(port),
                                   "--out",       out(),
                                   "--behaviour", behaviour};
  if (tls.size() == 2) argv.insert(argv.end(), {"--tls-cert", tls[0], "--tls-key", tls[1]});
  if (!proc_.Start(argv)) return false;
  return WaitFor([&] { return proc_.Stdout().find("listening") != std::string::npos || !proc_.Running(); },
                 std::chrono::seconds(20)) &&
         proc_.Running();
}

void Receiver::Stop() {
  proc_.Stop(SIGTERM, std::chrono::seconds(10));
}

nlohmann::json Receiver::Stats() const {
  const nlohmann::json j = nlohmann::json::parse(ReadFileOrEmpty(out() + ".stats"), nullptr, false);
  return j.is_object() ? j : nlohmann::json{{"requests", 0}, {"accepted", 0}, {"refused", 0}, {"spans", 0}};
}

}  // namespace kspan::testing
