// Containers for integration tests: Debian's podman with runc and the cgroupfs manager
// (podman's default crun refuses this machine's hybrid cgroup hierarchy; the systemd
// manager needs systemd as PID 1) and ulimits within the hard limits granted here, in a
// containers.conf of the test's own (docs/deploy.md). Each container's root is an overlay
// of the host's (`--rootfs /:O`): the host's binaries, no image needed, while the cgroup,
// mount and pid namespaces are the container's own. Network: the host's.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "testing/subprocess.h"

namespace kspan::testing {

// podman's output without its trailing newline (and spaces): an id, a format's value.
std::string TrimEnd(std::string s);

class Podman {
 public:
  Podman();
  ~Podman();  // removes every container it started, and its directory
  Podman(const Podman&) = delete;
  Podman& operator=(const Podman&) = delete;

  // `podman ARGS...`
  CommandResult Run(std::vector<std::string> args, std::chrono::milliseconds timeout);
  // Starts `command` in a new container in the background; returns its 64-hex id, or ""
  // (the reason in *error).
  std::string Start(const std::vector<std::string>& command, std::string* error);
  // As Start, with `options` of `podman run` (e.g. --privileged, --network none) in place
  // of the host's network.
  std::string StartWith(const std::vector<std::string>& options, const std::vector<std::string>& command,
                        std::string* error);
  // Runs `command` in a new container to its end; *id is the container's.
  CommandResult RunToEnd(const std::vector<std::string>& command, std::string* id,
                         std::chrono::milliseconds timeout);

 private:
  std::string dir_;
  std::vector<std::string> started_;
  int runs_ = 0;
};

}  // namespace kspan::testing
