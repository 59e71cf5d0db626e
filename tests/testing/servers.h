// Real servers the integration tests run on loopback, each started the same way wherever
// it is needed.
#pragma once

#include <string>

#include "testing/subprocess.h"

namespace kspan::testing {

// nginx (Debian's nginx-light) in the foreground on 127.0.0.1:`port`, one worker, its
// files under `dir`; `locations` is the server block's body (e.g. `location /ok { return
// 200; }`). Returns an empty string when it listens, else what went wrong (its stderr and
// error log). The caller owns `proc` (killed and reaped by its destructor).
std::string StartNginx(Subprocess* proc, const std::string& dir, int port, const std::string& locations);

}  // namespace kspan::testing
