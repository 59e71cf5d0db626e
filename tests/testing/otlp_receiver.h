// tests/receivers/otlp_receiver.js, a real OTLP (and Zipkin) receiver built on the
// OpenTelemetry JS decoders: what it accepts goes to out() as OTLP/JSON lines (or Zipkin
// JSON arrays), which testing/otlp_reader.h reads; counts in out() + ".stats".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testing/subprocess.h"

namespace kspan::testing {

// Where the receiver lives; its node_modules come from scripts/install-deps.sh.
std::string ReceiversDir();
// Fails the calling test (gtest ASSERT) when the receiver's decoders are not installed.
void RequireReceivers();

class Receiver {
 public:
  // `protocol`: http, grpc or zipkin. `behaviour`: ok, or a failure mode the script knows.
  // `tls`: {certificate, key} PEM files to serve https / gRPC over TLS with.
  bool Start(const std::string& protocol, int port, const std::string& behaviour = "ok",
             const std::vector<std::string>& tls = {});
  void Stop();
  std::string out() const { return dir_ + "/received.jsonl"; }
  nlohmann::json Stats() const;
  std::string Stderr() const { return proc_.Stderr(); }

 private:
  Subprocess proc_;
  std::string dir_;
};

}  // namespace kspan::testing
