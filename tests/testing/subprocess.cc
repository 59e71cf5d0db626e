#include "testing/subprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace kspan::testing {

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "XXXXXX";
  char* d = mkdtemp(tmpl.data());
  return d ? std::string(d) : std::string();
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Subprocess::~Subprocess() {
  if (pid_ <= 0) return;
  // The child leads its own process group: end the whole group, so a server's workers
  // (nginx forks them) never outlive the test as orphans.
  if (status_ == -1) {
    kill(-pid_, SIGTERM);
    if (Wait(std::chrono::seconds(5)) == -1) {
      kill(-pid_, SIGKILL);
      if (Wait(std::chrono::seconds(30)) == -1) {
        std::fprintf(stderr, "subprocess %d still alive 30 s after SIGKILL\n", static_cast<int>(pid_));
      }
    }
  }
  kill(-pid_, SIGKILL);  // anything of the group left behind after the leader exited
}

bool Subprocess::Start(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                       const std::string& cwd) {
  dir_ = MakeTempDir("kspan-proc-");
  const std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    setpgid(0, 0);
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return true;
}

bool Subprocess::Running() {
  if (pid_ <= 0 || status_ != -1) return false;
  int st;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

int Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (status_ != -1) return status_;
  WaitFor([&] { return !Running(); }, timeout);
  return status_;
}

int Subprocess::Stop(int sig, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (Running()) kill(pid_, sig);
  const int st = Wait(timeout);
  if (st == -1) {
    kill(pid_, SIGKILL);
    // Bounded: a process stuck in the kernel (uprobe detach under load) must not hang the
    // test until ctest's timeout with nothing said.
    if (Wait(std::chrono::seconds(30)) == -1) {
      std::fprintf(stderr, "subprocess %d still alive 30 s after SIGKILL\n", static_cast<int>(pid_));
    }
    return -1;
  }
  return st;
}

std::string Subprocess::Stdout() const {
  return ReadFileOrEmpty(dir_ + "/stdout");
}
std::string Subprocess::Stderr() const {
  return ReadFileOrEmpty(dir_ + "/stderr");
}

std::string MakeTestCertificate(const std::string& dir) {
  const CommandResult r =
      RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                  "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout",
                  dir + "/key.pem", "-out", dir + "/cert.pem"},
                 std::chrono::seconds(30));
  return r.exit_code == 0 ? "" : "openssl could not make the test certificate: " + r.err;
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  Subprocess p;
  CommandResult r;
  if (!p.Start(argv)) return r;
  const int st = p.Wait(timeout);
  if (st == -1) p.Stop(SIGKILL, std::chrono::seconds(5));
  r.exit_code = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
  r.out = p.Stdout();
  r.err = p.Stderr();
  return r;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool WaitForPort(const std::string& host, int port, std::chrono::milliseconds timeout) {
  return WaitFor(
      [&] {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        inet_pton(AF_INET, host.c_str(), &a.sin_addr);
        const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
        close(fd);
        return ok;
      },
      timeout);
}

bool KspanAgent::Start(const std::vector<std::string>& extra_args,
                       const std::map<std::string, std::string>& env) {
  dir_ = MakeTempDir("kspan-agent-");
  std::vector<std::string> argv = launcher_;
  if (!launcher_.empty()) chmod(dir_.c_str(), 0777);
  // Each agent its own trace store: tests never share (or leave behind) /var/lib/kspan.
  argv.insert(argv.end(), {KSPAN_BINARY, "--output", "file:" + SpansPath(), "--log-level", "info",
                           "--store-path", dir_ + "/traces.db"});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  if (!proc_.Start(argv, env)) return false;
  return WaitFor([&] { return Logs().find("\"msg\":\"ready\"") != std::string::npos || !proc_.Running(); },
                 std::chrono::seconds(30)) &&
         proc_.Running();
}

int KspanAgent::Stop() {
  return proc_.Stop(SIGTERM, std::chrono::seconds(60));
}

namespace {

// "series=value series=value …" of one field of the {"msg":"stopped"} log line.
std::map<std::string, std::string> StoppedSeries(const std::string& logs, const std::string& field) {
  std::map<std::string, std::string> out;
  std::istringstream lines(logs);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("\"msg\":\"stopped\"") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains(field)) continue;
    // Split at spaces outside quotes: a label value may hold one (Prometheus quotes it).
    const std::string all = j[field].get<std::string>();
    std::string one;
    bool quoted = false;
    for (size_t i = 0; i <= all.size(); ++i) {
      const char c = i < all.size() ? all[i] : ' ';
      if (c == '"' && (i == 0 || all[i - 1] != '\\')) quoted = !quoted;
      if (c != ' ' || quoted) {
        one += c;
        continue;
      }
      const size_t eq = one.rfind('=');
      if (eq != std::string::npos) out[one.substr(0, eq)] = one.substr(eq + 1);
      one.clear();
    }
  }
  return out;
}

}  // namespace

std::map<std::string, uint64_t> KspanAgent::StoppedCounters() const {
  std::map<std::string, uint64_t> out;
  for (const auto& [series, value] : StoppedSeries(Logs(), "counters")) out[series] = std::stoull(value);
  return out;
}

std::map<std::string, double> KspanAgent::StoppedHistograms() const {
  std::map<std::string, double> out;
  for (const auto& [series, value] : StoppedSeries(Logs(), "histograms")) out[series] = std::stod(value);
  return out;
}

int64_t KspanAgent::StoppedCounter(const std::string& series) const {
  const auto all = StoppedCounters();
  auto it = all.find(series);
  return it == all.end() ? -1 : static_cast<int64_t>(it->second);
}

int KspanAgent::ListenPort() const {
  std::istringstream lines(Logs());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("\"msg\":\"listening\"") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("port") && j["port"].is_number_integer()) return j["port"].get<int>();
  }
  return 0;
}

std::string KspanAgent::ScrapeMetrics() const {
  const int port = ListenPort();
  if (port <= 0) return "";
  const CommandResult r =
      RunCommand({"curl", "-sS", "--max-time", "10", "http://127.0.0.1:" + std::to_string(port) + "/metrics"},
                 std::chrono::seconds(20));
  return r.exit_code == 0 ? r.out : "";
}

void ExpectCleanStop(KspanAgent& agent) {
  const int st = agent.Stop();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "kspan exit status " << st << "\n" << agent.Logs();
  EXPECT_EQ(agent.Logs().find("\"level\":\"error\""), std::string::npos) << agent.Logs();
}

}  // namespace kspan::testing
