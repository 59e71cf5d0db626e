// The agent's life: load and attach, drain the ring buffer on a short timer through the
// pipeline, stop on SIGINT/SIGTERM or --duration, detach every probe, flush every
// output, and report counters.
#pragma once

#include "agent/config.h"

namespace kspan::agent {

// Runs until stopped; returns the process exit code (0 on a clean stop).
int Run(const Config& config);

}  // namespace kspan::agent
