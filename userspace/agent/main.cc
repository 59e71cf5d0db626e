// kspan: the command-line entry point. Everything else lives in kspan_core.
#include <kspan/version.h>
#include <unistd.h>

#include <cstdio>

#include "agent/agent.h"
#include "agent/config.h"
#include "common/log.h"

// kspan links jemalloc (CMakeLists.txt): pages freed stay mapped for at most a second, so
// a burst of spans does not keep the agent's RSS up (jemalloc's default is 10 s).
// MALLOC_CONF in the environment still overrides it.
extern "C" const char* malloc_conf;
const char* malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";

int main(int argc, char** argv) {
  auto config = kspan::agent::ParseCommandLine(argc, argv);
  if (!config.ok()) {
    // One line, in the same JSON form as every other log line (a person reads the
    // "error" field; a log pipeline parses it like the rest).
    kspan::log::Error("bad configuration", {{"error", config.status().message()}});
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
