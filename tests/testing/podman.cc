#include "testing/podman.h"

#include <fstream>

namespace kspan::testing {

std::string TrimEnd(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Podman::Podman() : dir_(MakeTempDir("kspan-podman")) {
  std::ofstream(dir_ + "/containers.conf")
      << "[containers]\n"
         "default_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n"
         "[engine]\n"
         "runtime = \"runc\"\n"
         "cgroup_manager = \"cgroupfs\"\n"
         "events_logger = \"file\"\n";
}

Podman::~Podman() {
  for (const std::string& id : started_) Run({"rm", "-f", "-t", "2", id}, std::chrono::seconds(30));
  RunCommand({"rm", "-rf", dir_}, std::chrono::seconds(10));
}

CommandResult Podman::Run(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  args.insert(args.begin(), {"/usr/bin/env", "CONTAINERS_CONF=" + dir_ + "/containers.conf", "podman"});
  return RunCommand(args, timeout);
}

std::string Podman::Start(const std::vector<std::string>& command, std::string* error) {
  return StartWith({"--network", "host"}, command, error);
}

std::string Podman::StartWith(const std::vector<std::string>& options,
                              const std::vector<std::string>& command, std::string* error) {
  std::vector<std::string> args = {"run", "-d"};
  args.insert(args.end(), options.begin(), options.end());
  // --rootfs takes the first argument after it: the options go before it.
  args.insert(args.end(), {"--rootfs", "/:O"});
  args.insert(args.end(), command.begin(), command.end());
  const CommandResult r = Run(args, std::chrono::seconds(60));
  if (r.exit_code != 0) {
    *error = "podman run failed: " + r.out + r.err;
    return "";
  }
  const std::string id = TrimEnd(r.out);
  started_.push_back(id);
  return id;
}

CommandResult Podman::RunToEnd(const std::vector<std::string>& command, std::string* id,
                               std::chrono::milliseconds timeout) {
  const std::string cidfile = dir_ + "/run-" + std::to_string(++runs_) + ".cid";
  std::vector<std::string> args = {"run", "--cidfile", cidfile, "--network", "host", "--rootfs", "/:O"};
  args.insert(args.end(), command.begin(), command.end());
  CommandResult r = Run(args, timeout);
  *id = TrimEnd(ReadFileOrEmpty(cidfile));
  if (!id->empty()) started_.push_back(*id);
  return r;
}

}  // namespace kspan::testing
