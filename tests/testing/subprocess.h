// Helpers for privileged tests: run real programs, wait on deadlines (never on poll
// counts), and drive the kspan binary.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kspan::testing {

using Clock = std::chrono::steady_clock;

// Polls `pred` every 20 ms until it is true or `timeout` passes.
bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// A child process with stdout and stderr redirected to files in a temp dir.
class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess();  // kills (SIGKILL) and reaps if still running
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // argv[0] is looked up on PATH. `env` entries are added to the inherited environment.
  bool Start(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
             const std::string& cwd = "");
  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `sig` and waits up to `timeout` for exit; returns the wait status or -1.
  int Stop(int sig, std::chrono::milliseconds timeout);
  // Waits for exit; returns the wait status or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  std::string Stdout() const;
  std::string Stderr() const;
  const std::string& dir() const { return dir_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string dir_;
};

// Runs a command to completion (bounded), returning its exit status and stdout.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();
// A TCP connection to 127.0.0.1:port (a close-on-exec fd), or -1.
int ConnectLoopback(int port);
// True once something accepts TCP connections on host:port.
bool WaitForPort(const std::string& host, int port, std::chrono::milliseconds timeout);
std::string ReadFileOrEmpty(const std::string& path);
// A self-signed certificate for localhost and 127.0.0.1, valid a day: dir/cert.pem and
// dir/key.pem. Returns "" on success, else why openssl failed.
std::string MakeTestCertificate(const std::string& dir);
std::string MakeTempDir(const std::string& prefix);

// The kspan agent under test: started with --output file:<dir>/spans.jsonl and extra
// args; Start() returns once it logged "ready" (or fails with its stderr).
class KspanAgent {
 public:
  // `env` entries are added to the agent's environment (OTEL_* settings).
  bool Start(const std::vector<std::string>& extra_args = {},
             const std::map<std::string, std::string>& env = {});
  // SIGTERM and wait (exporters drain within their own bound); returns the exit status.
  int Stop();
  std::string SpansPath() const { return dir_ + "/spans.jsonl"; }
  std::string Logs() const { return proc_.Stderr(); }
  // Every counter of the {"msg":"stopped"} log line (after Stop): series name as the log
  // prints it, e.g. kspan_parse_failures_total{protocol="http1"} -> value.
  std::map<std::string, uint64_t> StoppedCounters() const;
  // One of them; -1 when the line or the series is missing.
  int64_t StoppedCounter(const std::string& series) const;
  // The histograms' NAME_count and NAME_sum series of the same line, e.g.
  // gen_ai_client_token_usage_sum{...,gen_ai_token_type="input"} -> 38.
  std::map<std::string, double> StoppedHistograms() const;
  pid_t pid() const { return proc_.pid(); }
  // Started with `--listen 127.0.0.1:0`: the port its {"msg":"listening"} line names, else 0.
  int ListenPort() const;
  // GET /metrics of a running agent started with --listen (curl, bounded): the Prometheus
  // text, or "" when it could not be read.
  std::string ScrapeMetrics() const;
  Subprocess& process() { return proc_; }
  // A command that execs kspan (e.g. setpriv as another user); its output directory is
  // then writable by every user. Set before Start().
  void set_launcher(std::vector<std::string> launcher) { launcher_ = std::move(launcher); }

 private:
  Subprocess proc_;
  std::string dir_;
  std::vector<std::string> launcher_;
};

// Stops the agent and checks what every test of a real agent expects: exit status 0 and
// no error in its log.
void ExpectCleanStop(KspanAgent& agent);

}  // namespace kspan::testing
