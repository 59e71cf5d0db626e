// kspan: the command-line entry point. Everything else lives in kspan_core.
#include <unistd.h>

#include <cstdio>

#include <kspan/version.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "common/log.h"

int main(int argc, char** argv) {
  auto config = kspan::agent::ParseCommandLine(argc, argv);
  if (!config.ok()) {
    kspan::log::Error("bad configuration", {{"error", config.status().message()}});
    std::fprintf(stderr, "kspan: %s\n", config.status().message().c_str());
    return 2;
  }
  if (config->show_help) {
    std::fputs(kspan::agent::HelpText().c_str(), stdout);
    return 0;
  }
  if (config->show_version) {
    std::printf("kspan %s\n", KSPAN_VERSION);
    return 0;
  }
  return kspan::agent::Run(*config);
}
